//! Built-in transfers: a file moved with one of eight methods, for tracing and benchmarks.
//!
//! Every method but copy-file-range sends the file over a fresh TCP connection (on
//! loopback, or across a veth between two private network namespaces: [`Link`]) to a
//! receiver thread in this process (or to a `tracer sink` on another machine, which
//! checks the same way and replies with what it got: [`sink`]), which reads it with read() into a 64 KiB buffer and
//! checks both the byte count and the content (a 64-bit hash of the stream against the
//! file's, computed before the transfer). copy-file-range copies the file into a new,
//! unnamed file (mode 0600) on the scratch directory's filesystem and checks the copy,
//! which the kernel frees when the transfer closes it.
//!
//! The transfer's data-path syscalls all run on the calling (sender) thread between
//! [`Report::start_ns`] and [`Report::end_ns`] (CLOCK_MONOTONIC, the clock of
//! `bpf_ktime_get_ns`); opening, connecting and per-method setup happen before, cleanup and
//! checks after, and nothing else touches the file, the sender's socket or the destination
//! in between. So the events of a traced transfer are exactly the sender thread's events in
//! that window (plus the receiver's and the kernel's own).

mod copy;
mod evict;
mod hash;
mod methods;
pub mod netns;
pub mod scratch;
pub mod sink;
mod sys;
mod uring;
mod zerocopy;

#[cfg(test)]
mod tests;

use std::{
    fs::File,
    io::Write as _,
    net::{SocketAddr, TcpListener, TcpStream},
    os::fd::{AsRawFd as _, RawFd},
    path::{Path, PathBuf},
    sync::{Arc, mpsc},
    thread,
};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

pub use evict::{Residency, evict};
pub use netns::{NetnsError, VethPair};

use crate::model::Method;

use self::{
    hash::StreamHash,
    methods::{Ctx, Timed},
    sys::gettid,
};

/// How to run a transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Bytes per data-path call (at least 1; may exceed the file).
    pub chunk: usize,
    /// Where copy-file-range creates its destination, an unnamed file
    /// ([`scratch::unnamed_file`]): it must be on the source file's filesystem.
    pub scratch_dir: PathBuf,
    /// What the socket methods' bytes cross.
    pub link: Link,
}

/// Which link `--link` names: loopback, a veth, or a veth whose sender's end does not
/// scatter-gather (the article's middle stage: the CPU copies at the device); or the
/// `tracer sink` that `--peer` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinkKind {
    #[default]
    Lo,
    Veth,
    VethNosg,
    Peer(SocketAddr),
}

impl LinkKind {
    pub const ALL: [Self; 3] = [Self::Lo, Self::Veth, Self::VethNosg];

    pub fn name(self) -> &'static str {
        match self {
            Self::Lo => "lo",
            Self::Veth => "veth",
            Self::VethNosg => "veth-nosg",
            Self::Peer(_) => "peer",
        }
    }

    /// The link called `name` (as `name()` spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.name() == name)
    }

    /// Makes the link: nothing for loopback, the namespaces and the veth otherwise.
    pub fn make(self) -> Result<Link, NetnsError> {
        Ok(match self {
            Self::Lo => Link::Loopback,
            Self::Veth => Link::Veth(Arc::new(VethPair::create(true)?)),
            Self::VethNosg => Link::Veth(Arc::new(VethPair::create(false)?)),
            Self::Peer(addr) => Link::Peer(addr),
        })
    }
}

/// What a socket method's connection crosses.
#[derive(Clone, Debug, Default)]
pub enum Link {
    /// A loopback connection in this process's namespace.
    #[default]
    Loopback,
    /// From one private namespace to another across a veth (kept while this is).
    Veth(Arc<VethPair>),
    /// To a `tracer sink` at this address (on another machine: a real NIC).
    Peer(SocketAddr),
}

impl PartialEq for Link {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Loopback, Self::Loopback) => true,
            (Self::Veth(a), Self::Veth(b)) => Arc::ptr_eq(a, b),
            (Self::Peer(a), Self::Peer(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Link {}

impl Link {
    /// A connected pair: the sender's socket and the receiver's accepted one (none for a
    /// sink: it is elsewhere).
    fn connect(&self) -> Result<(TcpStream, Option<TcpStream>)> {
        let (sock, listener) = match self {
            Self::Loopback => {
                let listener =
                    TcpListener::bind("127.0.0.1:0").context("binding a loopback receiver")?;
                let addr = listener.local_addr()?;
                let sock =
                    TcpStream::connect(addr).context("connecting to the loopback receiver")?;
                (sock, listener)
            }
            Self::Veth(pair) => {
                let listener = pair
                    .in_receiver(|| TcpListener::bind(VethPair::receiver_addr(0)))
                    .context("binding the receiver in its network namespace")?;
                let addr = listener.local_addr()?;
                let sock = pair
                    .in_sender(|| TcpStream::connect(addr))
                    .context("connecting to the receiver across the veth")?;
                (sock, listener)
            }
            Self::Peer(addr) => {
                let sock = TcpStream::connect(addr)
                    .with_context(|| format!("connecting to the tracer sink at {addr}"))?;
                return Ok((sock, None));
            }
        };
        let (conn, _) = listener.accept().context("accepting the connection")?;
        Ok((sock, Some(conn)))
    }
}

/// The directory `file` is in (`.` for a bare name): where copy-file-range can put its
/// copy on the same filesystem.
pub fn dir_of(file: &Path) -> PathBuf {
    file.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
        .to_path_buf()
}

/// Zerocopy completions: for msg-zerocopy, the socket's error-queue notifications; for
/// io-uring with SEND_ZC, the notification CQEs (one per SEND_ZC).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ZeroCopyReport {
    /// Notifications reaped.
    pub notifications: u64,
    /// Sends completed (a msg-zerocopy notification may cover a range of send ids).
    pub completed: u64,
    /// Of those, the ones the kernel said it copied rather than sent from the user pages
    /// (for io-uring, known only where IORING_SEND_ZC_REPORT_USAGE is, 6.2+; 0 otherwise).
    pub copied: u64,
}

/// What a transfer did, for matching it with its events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Report {
    pub method: Method,
    pub bytes: u64,
    pub chunk: usize,
    /// The thread that made every data-path syscall (the caller of [`send_file`]).
    pub sender_tid: u32,
    /// The receiver thread; `None` for copy-file-range.
    pub receiver_tid: Option<u32>,
    /// st_ino of the source file (fstat of the open fd).
    pub src_ino: u64,
    /// st_ino of the sender's socket (its sockfs inode), or of copy-file-range's copy.
    pub dst_ino: u64,
    /// st_ino of the receiver's accepted socket.
    pub receiver_ino: Option<u64>,
    /// CLOCK_MONOTONIC (the clock of `bpf_ktime_get_ns`) on the sender thread just before
    /// the first data-path syscall (before mmap for mmap-write) ...
    pub start_ns: u64,
    /// ... and just after the last one (after munmap; after the last completion is reaped).
    pub end_ns: u64,
    /// `end_ns - start_ns`.
    pub wall_ns: u64,
    /// msg-zerocopy, and io-uring with SEND_ZC.
    pub zerocopy: Option<ZeroCopyReport>,
    /// Some for io-uring: whether it used SEND_ZC (else SEND).
    pub io_uring_send_zc: Option<bool>,
}

/// The kernel refuses a method (callers downcast the `anyhow::Error` to it).
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("{method} is not supported here: {why}")]
    Unsupported { method: &'static str, why: String },
}

/// A moment of a running transfer, sent as it happens to whoever traces it (the tracer
/// drops the sender thread's events outside the window: hashing, setup, checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Just before the first data-path syscall, on the sender thread; the receiver
    /// thread (socket methods) is running by then.
    Started {
        tid: u32,
        receiver_tid: Option<u32>,
        start_ns: u64,
    },
    /// Just after the last one.
    Ended { end_ns: u64 },
}

/// [`send_file`], telling `marks` when the transfer starts and ends.
pub fn send_file_marked(
    path: &Path,
    method: Method,
    opts: &Options,
    marks: mpsc::Sender<Mark>,
) -> Result<Report> {
    sys::MARKS.with_borrow_mut(|m| *m = Some(marks));
    sys::RECEIVER_TID.set(None);
    let r = send_file(path, method, opts);
    sys::MARKS.with_borrow_mut(|m| *m = None);
    sys::RECEIVER_TID.set(None);
    r
}

/// Moves `path` with `method`, `opts.chunk` bytes per call, and checks the destination got
/// exactly the file's bytes.
pub fn send_file(path: &Path, method: Method, opts: &Options) -> Result<Report> {
    let chunk = opts.chunk;
    if chunk == 0 {
        bail!("the chunk size must be at least 1 byte");
    }
    // Before opening: opening a FIFO would block until a writer comes.
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let st =
        sys::fstat(file.as_raw_fd()).with_context(|| format!("fstat of {}", path.display()))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        bail!("{} is not a regular file", path.display());
    }
    let size = st.st_size as u64;
    check_size(path, size)?;
    let src_ino = st.st_ino;
    let expected = hash::hash_file(path, size)?;
    let sender_tid = gettid();

    if method == Method::CopyFileRange {
        let (t, dst_ino) =
            copy::copy_file_range(path, &file, size, chunk, expected, &opts.scratch_dir)?;
        return Ok(report(
            method, size, chunk, sender_tid, src_ino, dst_ino, None, t,
        ));
    }

    // Connect and accept here, then hand the accepted socket to the receiver thread: no
    // thread is left blocked in accept() if connecting fails.
    let (mut sock, conn) = opts.link.connect()?;
    let dst_ino = sys::fstat(sock.as_raw_fd())
        .context("fstat of the socket")?
        .st_ino;
    let Some(conn) = conn else {
        // A sink elsewhere receives: told what to expect, it replies with what it got.
        let header = sink::Header {
            size,
            hash: expected,
        };
        sink::send_header(&mut sock, header)?;
        let ctx = Ctx {
            file: &file,
            sock: sock.as_raw_fd(),
            size,
            chunk,
        };
        let t = send(&ctx, method)?;
        let (bytes, hash) = sink::read_verdict(&mut sock)?;
        check_received(bytes, hash, size, expected).context("the sink")?;
        return Ok(report(
            method, size, chunk, sender_tid, src_ino, dst_ino, None, t,
        ));
    };
    let (ready_tx, ready_rx) = mpsc::channel();
    let receiver = thread::Builder::new()
        .name("tracer-receiver".into())
        .spawn(move || receive(conn, ready_tx))
        .context("starting the receiver thread")?;
    // The receiver's own setup (gettid, fstat) is done before the transfer starts.
    let receiver_tid = ready_rx.recv().ok();
    let receiver_ready = receiver_tid.is_some();
    sys::RECEIVER_TID.set(receiver_tid);

    let ctx = Ctx {
        file: &file,
        sock: sock.as_raw_fd(),
        size,
        chunk,
    };
    let sent = if receiver_ready {
        send(&ctx, method)
    } else {
        Err(anyhow::anyhow!("the receiver failed to start"))
    };
    // Closing the socket ends the receiver's stream.
    drop(sock);
    let received = receiver
        .join()
        .map_err(|_panic| anyhow::anyhow!("the receiver thread panicked"))?;
    if !receiver_ready {
        return Err(match received {
            Err(e) => e.context("the receiver failed to start"),
            Ok(_) => anyhow::anyhow!("the receiver failed to start"),
        });
    }
    // The sender's error first: it explains the receiver's short stream.
    let t = sent?;
    let r = received.context("the receiver")?;
    r.check(size, expected)?;
    Ok(report(
        method,
        size,
        chunk,
        sender_tid,
        src_ino,
        dst_ino,
        Some((r.tid, r.ino)),
        t,
    ))
}

#[expect(
    clippy::too_many_arguments,
    reason = "one argument per measured field of the Report"
)]
fn report(
    method: Method,
    bytes: u64,
    chunk: usize,
    sender_tid: u32,
    src_ino: u64,
    dst_ino: u64,
    receiver: Option<(u32, u64)>,
    t: Timed,
) -> Report {
    Report {
        method,
        bytes,
        chunk,
        sender_tid,
        receiver_tid: receiver.map(|r| r.0),
        src_ino,
        dst_ino,
        receiver_ino: receiver.map(|r| r.1),
        start_ns: t.start_ns,
        end_ns: t.end_ns,
        wall_ns: t.end_ns.saturating_sub(t.start_ns),
        zerocopy: t.zerocopy,
        io_uring_send_zc: t.io_uring_send_zc,
    }
}

/// Runs the sender of a socket method.
fn send(c: &Ctx<'_>, method: Method) -> Result<Timed> {
    match method {
        Method::ReadWrite => methods::read_then_send(c, None),
        Method::ReadSend => methods::read_then_send(c, Some(0)),
        Method::MmapWrite => methods::mmap_write(c),
        Method::Sendfile => methods::sendfile(c),
        Method::SendfileNogather => bail!(
            "sendfile-nogather is the textbook's: run sendfile across a device without \
             scatter-gather (demo --method sendfile --link veth-nosg)"
        ),
        Method::Splice => methods::splice(c),
        Method::MsgZerocopy => zerocopy::msg_zerocopy(c),
        Method::IoUring => uring::io_uring(c),
        Method::CopyFileRange => bail!("copy-file-range has no socket"),
    }
}

/// What the receiver got.
struct Received {
    tid: u32,
    ino: u64,
    bytes: u64,
    hash: u64,
}

impl Received {
    fn check(&self, size: u64, expected: u64) -> Result<()> {
        check_received(self.bytes, self.hash, size, expected)
    }
}

/// Checks that a receiver got `bytes` hashing to `hash` of a file of `size` bytes hashing
/// to `expected`.
fn check_received(bytes: u64, hash: u64, size: u64, expected: u64) -> Result<()> {
    if bytes < size {
        bail!("transfer lost bytes: the file has {size}, the receiver got {bytes}");
    }
    if bytes > size {
        bail!("transfer corrupted: the receiver got {bytes} bytes, more than the file's {size}");
    }
    if hash != expected {
        bail!(
            "transfer corrupted: the received bytes hash to {hash:016x}, the file to \
             {expected:016x}"
        );
    }
    Ok(())
}

/// The receiver thread: records its tid and socket inode, reports ready, then read()s the
/// stream until EOF, counting and hashing it.
fn receive(conn: TcpStream, ready: mpsc::Sender<u32>) -> Result<Received> {
    let tid = gettid();
    let fd: RawFd = conn.as_raw_fd();
    let ino = sys::fstat(fd)
        .context("fstat of the accepted socket")?
        .st_ino;
    // The sender may have given up already; it joins us either way.
    let _ = ready.send(tid);
    let mut buf = vec![0u8; 1 << 16];
    let mut hash = StreamHash::new();
    let mut bytes = 0u64;
    loop {
        let n = sys::read(fd, &mut buf).context("read from the accepted socket")?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(Received {
        tid,
        ino,
        bytes,
        hash: hash.finish(),
    })
}

/// Whether `path` is on procfs or sysfs, whose files the kernel reports as 0 bytes long
/// whatever reading them gives.
fn on_proc_or_sys(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: c is a NUL-terminated path; st is writable and the size of a struct statfs.
    if unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: statfs succeeded and filled the struct.
    let kind = unsafe { st.assume_init() }.f_type;
    kind == libc::PROC_SUPER_MAGIC || kind == libc::SYSFS_MAGIC
}

/// Checks that `path`'s `size` (from stat) is something to send: not 0, and not the size
/// of a /proc or /sys file (0, or a page, whatever reading the file gives).
pub fn check_size(path: &Path, size: u64) -> Result<()> {
    if on_proc_or_sys(path) {
        bail!(
            "{} is a /proc or /sys file whose size the kernel reports as {size}, whatever \
             reading it gives: copy it to a regular file first (cp {0} /var/tmp/) and send that",
            path.display()
        );
    }
    if size == 0 {
        bail!("{} is empty: there is nothing to send", path.display());
    }
    Ok(())
}

/// Writes `size` bytes of a repeating pattern to `file`, from its current offset.
pub fn write_pattern(file: &File, size: u64) -> std::io::Result<()> {
    // 64 KiB writes (the block), as before: the write size shapes the page cache's folios,
    // which the mmap-write ledger counts in.
    let mut f = std::io::BufWriter::new(file);
    let block: Vec<u8> = (0..65536u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.flush()
}
