//! io-uring: per chunk, a READ of the file linked to a SEND_ZC (or SEND, where the kernel
//! has no SEND_ZC) of the same buffer, submitted together; the buffer is reused only once
//! every completion of the chunk is in, the zerocopy notification included.

use std::io;

use anyhow::{Context as _, Result, bail};
use io_uring::{IoUring, Probe, cqueue, opcode, squeue, types::Fd};

use super::{
    WorkloadError, ZeroCopyReport,
    methods::{Ctx, Timed},
    sys::{self, prefaulted},
};

/// `IORING_SEND_ZC_REPORT_USAGE` (6.2+), in the SEND_ZC `ioprio`: the notification's `res`
/// says whether the data was copied.
const SEND_ZC_REPORT_USAGE: u16 = 1 << 3;
/// `IORING_NOTIF_USAGE_ZC_COPIED`, in the notification's `res`.
const NOTIF_USAGE_ZC_COPIED: u32 = 1 << 31;

#[cfg(test)]
thread_local! {
    /// The report-usage flag SEND_ZC asks for first, on this thread: tests set a bit no
    /// kernel takes, to go through the fallback for kernels before 6.2.
    pub(super) static USAGE_FLAG: std::cell::Cell<u16> =
        const { std::cell::Cell::new(SEND_ZC_REPORT_USAGE) };
}

pub(super) fn io_uring(c: &Ctx<'_>) -> Result<Timed> {
    #[cfg(test)]
    let usage_flag = USAGE_FLAG.get();
    #[cfg(not(test))]
    let usage_flag = SEND_ZC_REPORT_USAGE;
    io_uring_with(c, usage_flag)
}

fn io_uring_with(c: &Ctx<'_>, usage_flag: u16) -> Result<Timed> {
    let step = c.max_step();
    if u32::try_from(step).is_err() {
        bail!("io-uring: a chunk must be under 4 GiB (one READ/SEND length is 32-bit)");
    }
    let mut ring = IoUring::new(8).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::ENOSYS) => " (this kernel has no io_uring)",
            Some(libc::EPERM) => " (is io_uring disabled by the kernel.io_uring_disabled sysctl?)",
            _ => "",
        };
        WorkloadError::Unsupported {
            method: "io-uring",
            why: format!("io_uring_setup: {e}{hint}"),
        }
    })?;
    let mut probe = Probe::new();
    let send_zc = ring.submitter().register_probe(&mut probe).is_ok()
        && probe.is_supported(opcode::SendZc::CODE);
    let mut state = State {
        send_zc,
        usage_flag: if send_zc { usage_flag } else { 0 },
        zc: ZeroCopyReport::default(),
        in_flight: false,
        pairs: 0,
    };
    let mut buf = prefaulted(step);
    let start_ns = sys::mark_start();
    let result = state.run(&mut ring, c, &mut buf);
    let end_ns = sys::mark_end();
    if state.in_flight {
        // An error left an op that may still read or write the buffer: never free it.
        #[expect(clippy::mem_forget, reason = "leaking the buffer is the safe choice")]
        std::mem::forget(buf);
    }
    result?;
    Ok(Timed {
        start_ns,
        end_ns,
        zerocopy: send_zc.then_some(state.zc),
        io_uring_send_zc: Some(send_zc),
    })
}

struct State {
    send_zc: bool,
    /// The report-usage flag SEND_ZC asks for; 0 once the kernel refused it (before 6.2).
    usage_flag: u16,
    zc: ZeroCopyReport,
    /// Some op of the current chunk may still use the buffer.
    in_flight: bool,
    /// READ + SEND pairs submitted: pair `n` has user_data `2n` (READ) and `2n + 1` (SEND,
    /// and its notification).
    pairs: u64,
}

/// The user_data of a chunk's two ops.
#[derive(Clone, Copy)]
struct Ids {
    read: u64,
    send: u64,
}

/// How a chunk ended.
enum Chunk {
    Done,
    /// The kernel refused the report-usage flag: the chunk's ops did nothing, do it again.
    Again,
}

impl State {
    fn send_entry(&self, c: &Ctx<'_>, buf: &[u8], len: u32, user_data: u64) -> squeue::Entry {
        if self.send_zc {
            opcode::SendZc::new(Fd(c.sock), buf.as_ptr(), len)
                .flags(libc::MSG_WAITALL)
                .zc_flags(self.usage_flag)
                .build()
                .user_data(user_data)
        } else {
            opcode::Send::new(Fd(c.sock), buf.as_ptr(), len)
                .flags(libc::MSG_WAITALL)
                .build()
                .user_data(user_data)
        }
    }

    fn send_name(&self) -> &'static str {
        if self.send_zc { "SEND_ZC" } else { "SEND" }
    }

    fn run(&mut self, ring: &mut IoUring, c: &Ctx<'_>, buf: &mut [u8]) -> Result<()> {
        let mut off = 0u64;
        let mut first = true;
        while off < c.size {
            let len = c.step(off) as u32;
            self.pairs += 1;
            let ids = Ids {
                read: 2 * self.pairs,
                send: 2 * self.pairs + 1,
            };
            let read = opcode::Read::new(Fd(c.fd()), buf.as_mut_ptr(), len)
                .offset(off)
                .build()
                .flags(squeue::Flags::IO_LINK)
                .user_data(ids.read);
            let send = self.send_entry(c, buf, len, ids.send);
            // SAFETY: the buffer outlives both ops: it is neither touched nor freed before
            // all their completions (the notification included) are reaped, or forgotten
            // on an error that leaves one in flight.
            unsafe { ring.submission().push_multiple(&[read, send]) }
                .map_err(|_full| anyhow::anyhow!("io_uring: the submission queue is full"))?;
            self.in_flight = true;
            let done = self.complete_chunk(ring, len, first, ids)?;
            self.in_flight = false;
            if matches!(done, Chunk::Again) {
                continue;
            }
            first = false;
            off += len as u64;
        }
        Ok(())
    }

    /// Waits for the chunk's READ, its SEND(_ZC) and, for SEND_ZC, the notification.
    fn complete_chunk(
        &mut self,
        ring: &mut IoUring,
        len: u32,
        first: bool,
        ids: Ids,
    ) -> Result<Chunk> {
        let (mut read_done, mut send_done, mut notif_pending) = (false, false, false);
        // The READ was cancelled: by a SEND_ZC that failed its preparation (a link fails
        // whole), or it came up short and cancelled the SEND.
        let mut read_cancelled = false;
        let mut again = false;
        // This chunk's notifications: (reaped, said copied).
        let (mut notifs, mut copied) = (0, 0);
        while !(read_done && send_done && !notif_pending) {
            match ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("io_uring_enter (submit and wait)"),
            }
            for cqe in ring.completion() {
                let (res, flags) = (cqe.result(), cqe.flags());
                match cqe.user_data() {
                    ud if ud == ids.read && res == -libc::ECANCELED => {
                        read_cancelled = true;
                        read_done = true;
                    }
                    ud if ud == ids.read => {
                        check("READ", res, len)?;
                        read_done = true;
                    }
                    ud if ud == ids.send && cqueue::notif(flags) => {
                        notif_pending = false;
                        notifs += 1;
                        if self.usage_flag != 0 && (res as u32) & NOTIF_USAGE_ZC_COPIED != 0 {
                            copied += 1;
                        }
                    }
                    ud if ud == ids.send
                        && res == -libc::EINVAL
                        && first
                        && self.usage_flag != 0
                        && !cqueue::more(flags) =>
                    {
                        // A kernel before 6.2 refuses IORING_SEND_ZC_REPORT_USAGE.
                        again = true;
                        send_done = true;
                    }
                    ud if ud == ids.send && res == -libc::ECANCELED && !read_done => {
                        // The READ came up short and broke the link: its completion says why.
                        send_done = true;
                    }
                    ud if ud == ids.send => {
                        notif_pending = cqueue::more(flags);
                        check(self.send_name(), res, len)?;
                        send_done = true;
                    }
                    ud if ud % 2 == 1 && ud < ids.send && cqueue::notif(flags) => {
                        // A late notification of an earlier SEND_ZC that failed (a kernel
                        // may post one even without IORING_CQE_F_MORE): no data of ours.
                    }
                    other => bail!("io_uring: a completion with unknown user_data {other}"),
                }
            }
        }
        if again {
            // (This kernel posts a notification for the refused SEND_ZC too: not counted.)
            self.usage_flag = 0;
            return Ok(Chunk::Again);
        }
        if read_cancelled {
            bail!("io_uring READ was cancelled");
        }
        self.zc.notifications += notifs;
        self.zc.completed += notifs;
        self.zc.copied += copied;
        Ok(Chunk::Done)
    }
}

/// A completion's `res` must be exactly `len`.
fn check(op: &str, res: i32, len: u32) -> Result<()> {
    if res < 0 {
        bail!(
            "io_uring {op} failed: {}",
            io::Error::from_raw_os_error(-res)
        );
    }
    if res as u32 != len {
        bail!("io_uring {op} moved {res} of {len} bytes");
    }
    Ok(())
}
