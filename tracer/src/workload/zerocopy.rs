//! msg-zerocopy: read() into a user buffer, send() it with MSG_ZEROCOPY, and wait for the
//! kernel's completion notification on the socket's error queue before reusing the buffer.

use std::{io, mem, os::fd::RawFd};

use anyhow::{Context as _, Result, bail};

use super::{
    WorkloadError, ZeroCopyReport,
    methods::{Ctx, Timed},
    sys::{self, prefaulted},
};

/// `SO_ZEROCOPY` (asm-generic/socket.h; libc does not export it for every target).
#[cfg(not(any(target_arch = "sparc64", target_arch = "sparc")))]
const SO_ZEROCOPY: libc::c_int = 60;
#[cfg(any(target_arch = "sparc64", target_arch = "sparc"))]
const SO_ZEROCOPY: libc::c_int = 0x3e;
/// `ee_origin` of a zerocopy completion.
const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
/// `ee_code` bit: the kernel copied the data instead of sending the user pages.
const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;
/// How long to wait for one completion before calling the transfer stuck.
const COMPLETION_TIMEOUT_MS: libc::c_int = 10_000;

pub(super) fn msg_zerocopy(c: &Ctx<'_>) -> Result<Timed> {
    let one: libc::c_int = 1;
    // SAFETY: c.sock is an open socket; the option value is a c_int of the given size.
    let ret = unsafe {
        libc::setsockopt(
            c.sock,
            libc::SOL_SOCKET,
            SO_ZEROCOPY,
            (&raw const one).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(WorkloadError::Unsupported {
            method: "msg-zerocopy",
            why: format!("setsockopt(SO_ZEROCOPY): {}", io::Error::last_os_error()),
        }
        .into());
    }
    let mut buf = prefaulted(c.max_step());
    let mut zc = Completions::default();
    let sock = c.sock;
    let start_ns = sys::mark_start();
    let mut off = 0u64;
    while off < c.size {
        let n = c.read_chunk(&mut buf, off)?;
        // SAFETY: buf[..n] is initialised; it is not touched again before every send id
        // issued here is completed (below), so the kernel may keep referring to its pages.
        zc.issued += unsafe { sys::send_all(sock, buf.as_ptr(), n, Some(libc::MSG_ZEROCOPY)) }
            .context("MSG_ZEROCOPY")?;
        while zc.report.completed < zc.issued {
            zc.reap(sock)?;
        }
        off += n as u64;
    }
    let end_ns = sys::mark_end();
    Ok(Timed {
        start_ns,
        end_ns,
        zerocopy: Some(zc.report),
        io_uring_send_zc: None,
    })
}

#[derive(Default)]
struct Completions {
    /// Send ids issued so far: one per send() that used MSG_ZEROCOPY and moved bytes.
    issued: u64,
    report: ZeroCopyReport,
}

impl Completions {
    /// Reads one notification from the socket's error queue, waiting for it if needed.
    fn reap(&mut self, sock: RawFd) -> Result<()> {
        // Room for one cmsghdr + sock_extended_err + the offender address, 8-aligned.
        let mut control = [0u64; 16];
        loop {
            // SAFETY: an all-zero msghdr is valid (no name, no iov).
            let mut msg: libc::msghdr = unsafe { mem::zeroed() };
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = size_of_val(&control);
            // SAFETY: msg points to a valid msghdr whose control buffer is ours and large
            // enough for the size it states.
            let ret =
                unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
            if ret < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => {
                        self.wait(sock)?;
                        continue;
                    }
                    _ => {
                        return Err(e).context("recvmsg(MSG_ERRQUEUE) for the zerocopy completion");
                    }
                }
            }
            if msg.msg_flags & libc::MSG_CTRUNC != 0 {
                bail!("the zerocopy completion's control message was truncated");
            }
            return self.parse(&msg);
        }
    }

    fn wait(&self, sock: RawFd) -> Result<()> {
        let mut pfd = libc::pollfd {
            fd: sock,
            events: libc::POLLERR,
            revents: 0,
        };
        // SAFETY: pfd is one valid pollfd.
        let ret = unsafe { libc::poll(&mut pfd, 1, COMPLETION_TIMEOUT_MS) };
        if ret < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(e).context("poll(POLLERR) for the zerocopy completion");
        }
        if ret == 0 {
            bail!(
                "no zerocopy completion within {} s ({} of {} send ids completed)",
                COMPLETION_TIMEOUT_MS / 1000,
                self.report.completed,
                self.issued
            );
        }
        Ok(())
    }

    fn parse(&mut self, msg: &libc::msghdr) -> Result<()> {
        let mut found = false;
        // SAFETY: msg is the msghdr recvmsg just filled; CMSG_* walk its control buffer
        // within msg_controllen.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
        while !cmsg.is_null() {
            // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR return a header inside the buffer, or null.
            let hdr = unsafe { &*cmsg };
            let recverr = (hdr.cmsg_level == libc::SOL_IP && hdr.cmsg_type == libc::IP_RECVERR)
                || (hdr.cmsg_level == libc::SOL_IPV6 && hdr.cmsg_type == libc::IPV6_RECVERR);
            // SAFETY: computing a length has no preconditions.
            let need = unsafe { libc::CMSG_LEN(size_of::<libc::sock_extended_err>() as u32) };
            if recverr && hdr.cmsg_len >= need as usize {
                // SAFETY: the header's data holds at least a sock_extended_err (checked);
                // read_unaligned makes no alignment assumption.
                let ee = unsafe {
                    std::ptr::read_unaligned(
                        libc::CMSG_DATA(cmsg).cast::<libc::sock_extended_err>(),
                    )
                };
                if ee.ee_errno != 0 || ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY {
                    bail!(
                        "unexpected message on the socket's error queue: errno {}, origin {}",
                        ee.ee_errno,
                        ee.ee_origin
                    );
                }
                // Send ids ee_info..=ee_data completed (a u32 counter: it may wrap).
                let ids = ee.ee_data.wrapping_sub(ee.ee_info) as u64 + 1;
                self.report.notifications += 1;
                self.report.completed += ids;
                if ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED != 0 {
                    self.report.copied += ids;
                }
                found = true;
            }
            // SAFETY: cmsg is a header of msg (see above).
            cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
        }
        if !found {
            bail!("an error-queue message without a sock_extended_err");
        }
        Ok(())
    }
}
