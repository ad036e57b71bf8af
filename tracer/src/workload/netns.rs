//! A private pair of network namespaces joined by a veth, for `demo --link veth` and
//! `--link veth-nosg`: the sender's socket in one, the receiver's in the other, so the
//! transfer crosses a device's transmit path instead of loopback's.
//!
//! The namespaces have no name: each is kept by a descriptor this process holds (as the
//! demo's unnamed input is), so the kernel removes them, and the veth pair inside, when
//! [`VethPair`] is dropped or the process dies in any way (SIGKILL too). Nothing is left
//! behind to clean up on the next run, and nothing outside them (the host's devices,
//! addresses and routes, `/run/netns`) is touched.
//!
//! The veth is made with one rtnetlink request (the peer created straight into the
//! receiver's namespace), addressed and brought up with the classic interface ioctls, and
//! scatter-gather is switched off with `SIOCETHTOOL` (`ETHTOOL_SSG`), what
//! `ethtool -K va sg off` does: no `ip` or `ethtool` program is needed.

use std::{
    ffi::CStr,
    fs::File,
    io,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

/// The sender's end of the veth, in the sender's namespace.
const SENDER_DEV: &CStr = c"va";
/// The receiver's end, in the receiver's namespace.
const RECEIVER_DEV: &CStr = c"vb";
/// Addresses of the two ends (a private /24: the namespaces have nothing else).
pub const SENDER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 1);
pub const RECEIVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 2);
const NETMASK: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 0);

/// `ETHTOOL_GSG` / `ETHTOOL_SSG` (linux/ethtool.h): get and set scatter-gather.
const ETHTOOL_GSG: u32 = 0x18;
const ETHTOOL_SSG: u32 = 0x19;
/// `struct ethtool_value` (linux/ethtool.h): a command and its one value.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `VETH_INFO_PEER` (linux/veth.h).
const VETH_INFO_PEER: u16 = 1;
/// `NLA_F_NESTED`.
const NLA_F_NESTED: u16 = 1 << 15;

/// Why the veth pair could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error(
        "--link veth needs CAP_SYS_ADMIN and CAP_NET_ADMIN (it makes two network namespaces \
         and a veth pair between them): run as root, or use --link lo"
    )]
    NotPermitted,
    #[error("this kernel has no veth devices (CONFIG_VETH): use --link lo")]
    NoVeth,
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

/// An `Io` error for `what`, from errno; EPERM (and EACCES) says what privilege is missing.
fn os_error(what: &'static str) -> NetnsError {
    classify(what, io::Error::last_os_error())
}

fn classify(what: &'static str, source: io::Error) -> NetnsError {
    match source.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => NetnsError::NotPermitted,
        _ => NetnsError::Io { what, source },
    }
}

/// Two network namespaces joined by a veth (`va` in the sender's, `vb` in the
/// receiver's); both are removed by the kernel when this is dropped.
#[derive(Debug)]
pub struct VethPair {
    sender: OwnedFd,
    receiver: OwnedFd,
    /// Whether the sender's end scatter-gathers (`--link veth`) or not (`veth-nosg`).
    pub scatter_gather: bool,
}

impl VethPair {
    /// Makes the namespaces and the veth; `scatter_gather: false` switches it off on the
    /// sender's end, as `ethtool -K va sg off` does.
    pub fn create(scatter_gather: bool) -> Result<Self, NetnsError> {
        // unshare and setns change only the calling thread's namespace: a thread of its
        // own, which ends with the setup, so no other thread of this process moves.
        std::thread::scope(|s| {
            s.spawn(|| Self::create_here(scatter_gather))
                .join()
                .unwrap_or_else(|_panic| {
                    Err(NetnsError::Io {
                        what: "setting up the veth pair",
                        source: io::Error::other("the setup thread panicked"),
                    })
                })
        })
    }

    /// [`Self::create`] on the calling thread, which it leaves in the receiver's namespace.
    fn create_here(scatter_gather: bool) -> Result<Self, NetnsError> {
        let sender = new_netns()?;
        let receiver = new_netns()?;
        enter(&sender)?;
        add_veth(&receiver)?;
        configure(SENDER_DEV, SENDER_ADDR, (!scatter_gather).then_some(false))?;
        enter(&receiver)?;
        configure(RECEIVER_DEV, RECEIVER_ADDR, None)?;
        Ok(Self {
            sender,
            receiver,
            scatter_gather,
        })
    }

    /// Runs `f` on a thread in the sender's namespace (a socket it makes stays there).
    pub fn in_sender<T: Send>(&self, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
        in_netns(&self.sender, f)
    }

    /// Runs `f` on a thread in the receiver's namespace.
    pub fn in_receiver<T: Send>(&self, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
        in_netns(&self.receiver, f)
    }

    /// Where the receiver listens: its end's address, on `port`.
    pub fn receiver_addr(port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(RECEIVER_ADDR, port))
    }

    /// Whether the sender's end scatter-gathers now, as the kernel says (`ETHTOOL_GSG`).
    pub fn sender_scatter_gather(&self) -> io::Result<bool> {
        self.in_sender(|| {
            let sock = inet_socket()?;
            let mut value = EthtoolValue {
                cmd: ETHTOOL_GSG,
                data: 0,
            };
            ethtool(&sock, SENDER_DEV, &mut value)?;
            Ok(value.data != 0)
        })
    }
}

/// Runs `f` on a new thread that first enters the namespace `ns`.
fn in_netns<T: Send>(ns: &OwnedFd, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: ns is an open namespace descriptor; setns changes this thread only.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            f()
        })
        .join()
        .unwrap_or_else(|_panic| Err(io::Error::other("a namespace thread panicked")))
    })
}

/// Moves this thread into a new network namespace and returns a descriptor that keeps it.
fn new_netns() -> Result<OwnedFd, NetnsError> {
    // SAFETY: unshare has no memory preconditions; CLONE_NEWNET affects this thread only.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(os_error("making a network namespace"));
    }
    let file = File::open("/proc/thread-self/ns/net").map_err(|source| NetnsError::Io {
        what: "opening the new network namespace",
        source,
    })?;
    Ok(OwnedFd::from(file))
}

/// Moves this thread into the namespace `ns`.
fn enter(ns: &OwnedFd) -> Result<(), NetnsError> {
    // SAFETY: ns is an open namespace descriptor.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(os_error("entering a network namespace"));
    }
    Ok(())
}

/// An rtnetlink request being built: a header, a body, and attributes (nested ones are
/// opened and closed with their length fixed up).
struct Request {
    buf: Vec<u8>,
}

impl Request {
    fn new(kind: u16, flags: u16) -> Self {
        let mut buf = vec![0u8; size_of::<libc::nlmsghdr>()];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        Self { buf }
    }

    /// Appends `bytes`, padded to 4 bytes (NLMSG_ALIGN / NLA_ALIGN).
    fn put(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// An empty `ifinfomsg` (any family, any device).
    fn ifinfomsg(&mut self) {
        self.put(&[0u8; size_of::<libc::ifinfomsg>()]);
    }

    fn attr(&mut self, kind: u16, value: &[u8]) {
        let len = (4 + value.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.put(value);
    }

    /// Opens a nested attribute; [`Self::close`] with the returned offset.
    fn open(&mut self, kind: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        at
    }

    fn close(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// Creates the veth pair in this thread's namespace, its peer straight in `peer_ns`.
fn add_veth(peer_ns: &OwnedFd) -> Result<(), NetnsError> {
    let mut r = Request::new(
        libc::RTM_NEWLINK,
        (libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16,
    );
    r.ifinfomsg();
    r.attr(libc::IFLA_IFNAME, SENDER_DEV.to_bytes_with_nul());
    let info = r.open(libc::IFLA_LINKINFO);
    r.attr(libc::IFLA_INFO_KIND, b"veth");
    let data = r.open(libc::IFLA_INFO_DATA);
    let peer = r.open(VETH_INFO_PEER);
    r.ifinfomsg();
    r.attr(libc::IFLA_IFNAME, RECEIVER_DEV.to_bytes_with_nul());
    r.attr(
        libc::IFLA_NET_NS_FD,
        &(peer_ns.as_raw_fd() as u32).to_ne_bytes(),
    );
    r.close(peer);
    r.close(data);
    r.close(info);
    match rtnetlink(&r.finish()) {
        Ok(()) => Ok(()),
        // The kind is unknown and no module provides it.
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Err(NetnsError::NoVeth),
        Err(e) => Err(classify("creating the veth pair", e)),
    }
}

/// Sends one request on a new rtnetlink socket and reads its acknowledgement.
fn rtnetlink(msg: &[u8]) -> io::Result<()> {
    // SAFETY: plain socket creation; the descriptor is owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just created and is owned by nothing else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: msg is a readable buffer of msg.len() bytes; the kernel is the peer (a
    // netlink socket's default destination).
    let sent = unsafe { libc::send(sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut reply = [0u8; 4096];
    // SAFETY: reply is writable for its length.
    let n = unsafe { libc::recv(sock.as_raw_fd(), reply.as_mut_ptr().cast(), reply.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let hdr = size_of::<libc::nlmsghdr>();
    let n = n as usize;
    if n < hdr + 4 {
        return Err(io::Error::other("a short rtnetlink reply"));
    }
    let kind = u16::from_ne_bytes([reply[4], reply[5]]);
    if kind != libc::NLMSG_ERROR as u16 {
        return Err(io::Error::other("an unexpected rtnetlink reply"));
    }
    // struct nlmsgerr: the (negative) errno first; 0 is the acknowledgement.
    let errno = i32::from_ne_bytes([reply[hdr], reply[hdr + 1], reply[hdr + 2], reply[hdr + 3]]);
    if errno == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(-errno))
    }
}

/// A datagram socket in this thread's namespace, for the interface ioctls.
fn inet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket creation; the descriptor is owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just created and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An `ifreq` naming `dev`.
fn ifreq(dev: &CStr) -> libc::ifreq {
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(dev.to_bytes()) {
        *d = *s as libc::c_char;
    }
    req
}

fn sockaddr(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr are the same size; the kernel reads it as the
    // family says.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

fn ioctl(sock: &OwnedFd, request: libc::Ioctl, req: &mut libc::ifreq) -> io::Result<()> {
    let req: *mut libc::ifreq = req;
    // SAFETY: req is a valid, writable ifreq for the interface ioctls.
    if unsafe { libc::ioctl(sock.as_raw_fd(), request, req) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `SIOCETHTOOL` on `dev` with `value` (a get fills it in).
fn ethtool(sock: &OwnedFd, dev: &CStr, value: &mut EthtoolValue) -> io::Result<()> {
    let mut req = ifreq(dev);
    let value: *mut EthtoolValue = value;
    req.ifr_ifru.ifru_data = value.cast();
    ioctl(sock, libc::SIOCETHTOOL, &mut req)
}

/// Addresses `dev` (in this thread's namespace), sets its scatter-gather when asked, and
/// brings it up.
fn configure(dev: &CStr, addr: Ipv4Addr, scatter_gather: Option<bool>) -> Result<(), NetnsError> {
    let step = |what: &'static str| move |e: io::Error| classify(what, e);
    let sock = inet_socket().map_err(step("opening a socket in the namespace"))?;
    let mut req = ifreq(dev);
    req.ifr_ifru.ifru_addr = sockaddr(addr);
    ioctl(&sock, libc::SIOCSIFADDR, &mut req).map_err(step("addressing the veth"))?;
    let mut req = ifreq(dev);
    req.ifr_ifru.ifru_netmask = sockaddr(NETMASK);
    ioctl(&sock, libc::SIOCSIFNETMASK, &mut req).map_err(step("addressing the veth"))?;
    if let Some(sg) = scatter_gather {
        let mut value = EthtoolValue {
            cmd: ETHTOOL_SSG,
            data: u32::from(sg),
        };
        ethtool(&sock, dev, &mut value).map_err(step("switching scatter-gather off"))?;
    }
    let mut req = ifreq(dev);
    ioctl(&sock, libc::SIOCGIFFLAGS, &mut req).map_err(step("bringing the veth up"))?;
    // SAFETY: SIOCGIFFLAGS filled the flags member.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    ioctl(&sock, libc::SIOCSIFFLAGS, &mut req).map_err(step("bringing the veth up"))?;
    Ok(())
}
