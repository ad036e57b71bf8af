//! Block requests: a disk read of a file is one DMA into the page cache, even when the
//! driver issues it twice; a read of no file's pages inside a read() of a file is O_DIRECT,
//! a DMA straight into the application's memory.

use std::collections::HashSet;

use super::{Ino, Model, Pid, step_of};
use crate::{
    event::Event,
    model::{Buffer, Engine, Evidence, Seen, Step, StepKind},
};

/// The kernel's `REQ_OP_READ`.
const REQ_OP_READ: u8 = 0;

/// A block request as `block_rq_issue` saw it.
pub(super) struct Request {
    pub rq: u64,
    /// `req_op(rq)`.
    pub op: u8,
    /// The file of its first page (0: a page with no file).
    pub ino: Ino,
    pub bytes: u32,
    /// The traced process that reads the file, when a kernel worker issued it (0: the
    /// issuing task's).
    pub owner_pid: Pid,
}

/// The block requests in flight.
#[derive(Default)]
pub(super) struct Block {
    /// Requests issued and not completed yet.
    issued: HashSet<u64>,
}

impl Block {
    /// `block_rq_complete`: request `rq` is done.
    pub(super) fn completed(&mut self, rq: u64) {
        self.issued.remove(&rq);
    }
}

impl Model {
    /// `block_rq_issue`: a disk read of a file, the DMA into its page cache.
    pub(super) fn block_rq_issue(&mut self, ev: &Event, rq: &Request, out: &mut Vec<Step>) {
        if rq.op != REQ_OP_READ {
            return; // writeback
        }
        if rq.ino == 0 {
            // A page with no file: an O_DIRECT read() of a file reads into the caller's
            // own pages, without the page cache.
            if let Some(sys) = self.syscalls.get_mut(ev.tid) {
                sys.direct_read(rq.bytes as u64);
            }
            return;
        }
        // A request the device could not take yet is issued again (requeued): it is one
        // DMA.
        if !self.block.issued.insert(rq.rq) {
            return;
        }
        let mut s = step_of(
            ev,
            StepKind::Copy {
                engine: Engine::Dma,
                from: Buffer::Disk,
                to: Buffer::PageCache,
                bytes: rq.bytes as u64,
            },
            Evidence::Observed(Seen::BlockRqIssue),
        );
        // A kernel worker may issue it: the owner is the process reading.
        if rq.owner_pid != 0 {
            s.pid = rq.owner_pid;
        }
        self.route(s.pid, ev.tid, Some(rq.ino), None, s, out);
    }
}
