//! Thin wrappers over the few libc calls the transfers share: clocks, thread ids, inode
//! numbers, EINTR retries and full writes.

use std::{io, mem::MaybeUninit, os::fd::RawFd};

use anyhow::{Context as _, Result, bail};

/// `clock_gettime(CLOCK_MONOTONIC)` in nanoseconds: the clock `bpf_ktime_get_ns` reads.
pub(super) fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

thread_local! {
    /// Where this thread's transfer reports its start and end as they happen.
    pub(super) static MARKS: std::cell::RefCell<Option<std::sync::mpsc::Sender<super::Mark>>> =
        const { std::cell::RefCell::new(None) };
    /// The receiver thread of the transfer this thread is sending, for the start mark.
    pub(super) static RECEIVER_TID: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
}

/// The transfer starts now: returns the time and tells the listener, if any.
pub(super) fn mark_start() -> u64 {
    let ns = now_ns();
    MARKS.with_borrow(|m| {
        if let Some(tx) = m {
            let _ = tx.send(super::Mark::Started {
                tid: gettid(),
                receiver_tid: RECEIVER_TID.get(),
                start_ns: ns,
            });
        }
    });
    ns
}

/// The transfer's last data-path syscall has returned.
pub(super) fn mark_end() -> u64 {
    let ns = now_ns();
    MARKS.with_borrow(|m| {
        if let Some(tx) = m {
            let _ = tx.send(super::Mark::Ended { end_ns: ns });
        }
    });
    ns
}

/// The calling thread's id.
pub(super) fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// `fstat(fd)`.
pub(super) fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: st points to writable memory the size of a struct stat.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat succeeded, so it filled the struct (and it was zeroed before anyway).
    Ok(unsafe { st.assume_init() })
}

/// Calls `f` (a raw syscall wrapper returning -1 and setting errno on failure) again while
/// it fails with EINTR; returns its non-negative result or the error.
pub(super) fn retry(mut f: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let ret = f();
        if ret >= 0 {
            return Ok(ret as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// One `read(fd, buf)` (again on EINTR).
pub(super) fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for writes of buf.len() bytes.
    retry(|| unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

/// Sends `len` bytes from `ptr` to the socket `fd`, looping on short writes: `write()` when
/// `flags` is `None`, else `send(fd, .., flags)` (the `sendto` syscall). Returns the number
/// of calls that moved bytes.
///
/// # Safety
/// `ptr` must be valid for reads of `len` bytes for the duration of the call.
pub(super) unsafe fn send_all(
    fd: RawFd,
    ptr: *const u8,
    len: usize,
    flags: Option<i32>,
) -> Result<u64> {
    let mut off = 0;
    let mut calls = 0;
    while off < len {
        // SAFETY: the caller guarantees ptr..ptr+len is readable; off < len.
        let p = unsafe { ptr.add(off) }.cast::<libc::c_void>();
        let n = match flags {
            // SAFETY: p is valid for len - off bytes (see above).
            None => {
                retry(|| unsafe { libc::write(fd, p, len - off) }).context("write to the socket")?
            }
            Some(flags) => retry(|| {
                // SAFETY: p is valid for len - off bytes; a null address means a connected socket.
                unsafe { libc::sendto(fd, p, len - off, flags, std::ptr::null(), 0) }
            })
            .context("send to the socket")?,
        };
        if n == 0 {
            bail!("the socket took 0 bytes");
        }
        off += n;
        calls += 1;
    }
    Ok(calls)
}

/// A buffer of `len` bytes whose pages are already faulted in (so the transfer's first
/// syscalls do not pay for it).
pub(super) fn prefaulted(len: usize) -> Vec<u8> {
    vec![0xa5; len]
}

/// The error for a file that ended before the size fstat gave.
pub(super) fn shrank(off: u64, size: u64) -> anyhow::Error {
    anyhow::anyhow!("the file ended at byte {off} of {size}: was it truncated during the transfer?")
}
