//! The socket methods that need no completion handling: read-write, read-send, mmap-write,
//! sendfile and splice. Each does its setup, takes `start_ns` just before its first
//! data-path syscall and `end_ns` just after its last one, and touches nothing else of the
//! file or the socket in between.

use std::{
    fs::File,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
};

use anyhow::{Context as _, Result, bail};

use super::{
    ZeroCopyReport,
    sys::{self, prefaulted, retry, shrank},
};

/// What every sender gets: the open source file, the connected socket, the size fstat gave
/// and the chunk (at least 1).
pub(super) struct Ctx<'a> {
    pub file: &'a File,
    pub sock: RawFd,
    pub size: u64,
    pub chunk: usize,
}

impl Ctx<'_> {
    /// The bytes of the call starting at `off`: a chunk, or what is left.
    pub(super) fn step(&self, off: u64) -> usize {
        (self.chunk as u64).min(self.size - off) as usize
    }

    /// The largest step: the size of a buffer (or pipe) that holds any chunk.
    pub(super) fn max_step(&self) -> usize {
        self.step(0)
    }

    pub(super) fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// read() the chunk at `off` into `buf`: its length, never 0 (a file that shrank
    /// under the transfer is an error).
    pub(super) fn read_chunk(&self, buf: &mut [u8], off: u64) -> Result<usize> {
        let n = sys::read(self.fd(), &mut buf[..self.step(off)]).context("read from the file")?;
        if n == 0 {
            return Err(shrank(off, self.size));
        }
        Ok(n)
    }
}

/// A sender's timestamps and method-specific findings.
pub(super) struct Timed {
    pub start_ns: u64,
    pub end_ns: u64,
    pub zerocopy: Option<ZeroCopyReport>,
    pub io_uring_send_zc: Option<bool>,
}

impl Timed {
    pub(super) fn plain(start_ns: u64, end_ns: u64) -> Self {
        Self {
            start_ns,
            end_ns,
            zerocopy: None,
            io_uring_send_zc: None,
        }
    }
}

/// read() a chunk into a user buffer, then write() it (`send_flags` `None`) or send() it
/// with those flags (the `sendto` syscall) to the socket. Reads exactly the file's size:
/// there is no read() returning 0 at the end.
pub(super) fn read_then_send(c: &Ctx<'_>, send_flags: Option<i32>) -> Result<Timed> {
    let mut buf = prefaulted(c.max_step());
    let sock = c.sock;
    let start_ns = sys::mark_start();
    let mut off = 0u64;
    while off < c.size {
        let n = c.read_chunk(&mut buf, off)?;
        // SAFETY: buf[..n] is initialised and lives across the call.
        unsafe { sys::send_all(sock, buf.as_ptr(), n, send_flags) }?;
        off += n as u64;
    }
    let end_ns = sys::mark_end();
    Ok(Timed::plain(start_ns, end_ns))
}

/// mmap() the whole file, write() chunk-sized slices of the mapping to the socket,
/// munmap(). The sender never reads the mapping itself: only the kernel does, in write().
pub(super) fn mmap_write(c: &Ctx<'_>) -> Result<Timed> {
    let len = usize::try_from(c.size).context("the file is too large to map")?;
    let (fd, sock) = (c.fd(), c.sock);
    let start_ns = sys::mark_start();
    // SAFETY: a fresh shared read-only mapping of an open regular file; len > 0.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if map == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error()).context("mmap of the file");
    }
    let base = map.cast::<u8>().cast_const();
    let mut sent: Result<()> = Ok(());
    let mut off = 0u64;
    while off < c.size {
        let want = c.step(off);
        // SAFETY: off + want <= len, inside the mapping, which lives until the munmap below.
        if let Err(e) = unsafe { sys::send_all(sock, base.add(off as usize), want, None) } {
            sent = Err(e);
            break;
        }
        off += want as u64;
    }
    // SAFETY: map is the mapping made above, of len bytes, and no reference into it remains.
    let unmapped = unsafe { libc::munmap(map, len) };
    let end_ns = sys::mark_end();
    sent?;
    if unmapped < 0 {
        return Err(std::io::Error::last_os_error()).context("munmap of the file");
    }
    Ok(Timed::plain(start_ns, end_ns))
}

/// sendfile() `chunk` bytes at a time from the file to the socket.
pub(super) fn sendfile(c: &Ctx<'_>) -> Result<Timed> {
    let (fd, sock) = (c.fd(), c.sock);
    let mut off: libc::off_t = 0;
    let start_ns = sys::mark_start();
    while (off as u64) < c.size {
        let want = c.step(off as u64);
        // SAFETY: valid fds; off is a valid off_t the kernel updates.
        let n =
            retry(|| unsafe { libc::sendfile(sock, fd, &mut off, want) }).context("sendfile")?;
        if n == 0 {
            return Err(shrank(off as u64, c.size));
        }
    }
    let end_ns = sys::mark_end();
    Ok(Timed::plain(start_ns, end_ns))
}

/// Default pipe capacity (16 pages).
const PIPE_DEFAULT: usize = 65536;

/// splice() a chunk from the file into a pipe, then from the pipe into the socket until
/// the pipe is empty.
pub(super) fn splice(c: &Ctx<'_>) -> Result<Timed> {
    let mut fds = [0; 2];
    // SAFETY: fds is a writable array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: pipe2 succeeded: both fds are open and owned by nothing else.
    let (pipe_r, pipe_w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // The pipe must hold a whole chunk (one that fits in the file: a larger one is never
    // asked for).
    let need = c.max_step();
    if need > PIPE_DEFAULT {
        let want = libc::c_int::try_from(need).context("the chunk is too large for a pipe")?;
        // SAFETY: F_SETPIPE_SZ on a pipe fd we own, with an int argument.
        let got = unsafe { libc::fcntl(pipe_w.as_raw_fd(), libc::F_SETPIPE_SZ, want) };
        if got < 0 {
            let e = std::io::Error::last_os_error();
            let max = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into());
            bail!(
                "splice: cannot grow the pipe to hold a {need}-byte chunk \
                 (fcntl F_SETPIPE_SZ: {e}; fs.pipe-max-size is {max} and only CAP_SYS_RESOURCE \
                 may exceed it): use a smaller chunk or raise fs.pipe-max-size"
            );
        }
        if (got as usize) < need {
            bail!("splice: the pipe holds {got} bytes, less than the {need}-byte chunk");
        }
    }
    let (fd, sock) = (c.fd(), c.sock);
    let (r, w) = (pipe_r.as_raw_fd(), pipe_w.as_raw_fd());
    let null = std::ptr::null_mut::<libc::loff_t>();
    let start_ns = sys::mark_start();
    let mut off = 0u64;
    while off < c.size {
        let want = c.step(off);
        // SAFETY: valid fds; null offsets use (and advance) the file position.
        let n = retry(|| unsafe {
            libc::splice(
                fd,
                null,
                w,
                null,
                want,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_MORE,
            )
        })
        .context("splice from the file into the pipe")?;
        if n == 0 {
            return Err(shrank(off, c.size));
        }
        let flags = if off + n as u64 == c.size {
            0
        } else {
            libc::SPLICE_F_MORE
        };
        let mut left = n;
        while left > 0 {
            // SAFETY: valid fds; pipes and sockets take null offsets.
            let m = retry(|| unsafe { libc::splice(r, null, sock, null, left, flags) })
                .context("splice from the pipe into the socket")?;
            if m == 0 {
                bail!("splice from the pipe into the socket moved 0 bytes");
            }
            left -= m;
        }
        off += n as u64;
    }
    let end_ns = sys::mark_end();
    Ok(Timed::plain(start_ns, end_ns))
}
