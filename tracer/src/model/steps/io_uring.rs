//! io_uring: requests from submission to completion, and a ring's transfer (its READs'
//! file to its SENDs' socket). The reads and sends happen in io_uring_enter, in io-wq
//! workers or in an SQPOLL thread; the ring ties them to one transfer.

use std::collections::HashMap;

use ::io_uring::{cqueue, opcode as op};

use super::{Endpoint, Ino, Model, Pid, Sk, TransferId, step_of, syscall::Role};
use crate::{
    event::{Event, FdRef, FileKind},
    model::{Buffer, Engine, Evidence, Inference, Seen, Step, StepKind},
};

/// io_uring opcodes whose SQE fd the kernel reads (for the others the traced field is
/// stale): the data-path opcodes, those `event::io_uring_op_name` names.
fn takes_file(opcode: u8) -> bool {
    matches!(
        opcode,
        op::Readv::CODE
            | op::Writev::CODE
            | op::ReadFixed::CODE
            | op::WriteFixed::CODE
            | op::SendMsg::CODE
            | op::RecvMsg::CODE
            | op::Read::CODE
            | op::Write::CODE
            | op::Send::CODE
            | op::Recv::CODE
            | op::Splice::CODE
            | op::SendZc::CODE
            | op::SendMsgZc::CODE
    )
}

/// io_uring READV, READ_FIXED and READ.
fn is_read(opcode: u8) -> bool {
    matches!(
        opcode,
        op::Readv::CODE | op::ReadFixed::CODE | op::Read::CODE
    )
}

/// An io_uring request's key: its `io_kiocb`, or its user_data where the kernel does not
/// pass the request.
fn io_req_key(req: u64, user_data: u64) -> u64 {
    if req != 0 { req } else { user_data }
}

/// An io_uring request the model follows until its completion.
struct IoReq {
    opcode: u8,
    file: FdRef,
    ring: Ino,
}

/// The io_uring requests in flight and what is known of each ring.
#[derive(Default)]
pub(super) struct IoUring {
    /// Requests by (pid, io_kiocb), or by (pid, user_data) where the kernel does not pass
    /// the request.
    requests: HashMap<(Pid, u64), IoReq>,
    /// (pid, ring ino) -> the regular file its READs read.
    source_file_by_ring: HashMap<(Pid, Ino), Ino>,
    /// (pid, `sk`) -> the ring (its ino) the socket's requests came through.
    ring_by_sk: HashMap<(Pid, Sk), Ino>,
    /// (pid, ring ino) -> the ring's transfer.
    transfer_by_ring: HashMap<(Pid, Ino), TransferId>,
    /// (pid, file ino) -> bytes fexit filemap_read copied for READs not completed yet.
    read_bytes_by_file: HashMap<(Pid, Ino), u64>,
}

impl IoUring {
    /// Whether a ring of `pid` reads file `ino`.
    pub(super) fn reads_file(&self, pid: Pid, ino: Ino) -> bool {
        self.source_file_by_ring
            .iter()
            .any(|((p, _), src)| *p == pid && *src == ino)
    }

    /// fexit filemap_read copied `bytes` of file `ino` for a READ of `pid` (filemap_read
    /// does not know the request: its completion takes them).
    pub(super) fn read_copied(&mut self, pid: Pid, ino: Ino, bytes: u64) {
        *self.read_bytes_by_file.entry((pid, ino)).or_default() += bytes;
    }

    /// The ring `pid`'s requests on socket `sk` came through.
    pub(super) fn ring_of_sk(&self, pid: Pid, sk: Sk) -> Option<Ino> {
        self.ring_by_sk.get(&(pid, sk)).copied()
    }
}

impl Model {
    /// A request submitted (`io_uring_submit_req`): what it names tells the ring's source
    /// file and socket.
    pub(super) fn io_uring_submit(
        &mut self,
        ev: &Event,
        user_data: u64,
        opcode: u8,
        file: FdRef,
        sk: Sk,
        req: u64,
    ) {
        // The kernel fills the fd only for opcodes that take a file.
        let file = if takes_file(opcode) {
            file
        } else {
            FdRef::default()
        };
        let ring = match self.syscalls.role(ev.tid) {
            Some(Role::IoUring { ring }) => ring,
            _ => 0,
        };
        if let Some(sys) = self.syscalls.get_mut(ev.tid) {
            match file.kind() {
                FileKind::Regular => sys.iou_src = Some(file.ino),
                FileKind::Socket => sys.iou_sock = Some(file.ino),
                _ => {}
            }
        }
        let rings = &mut self.io_uring;
        if file.kind() == FileKind::Regular {
            rings.source_file_by_ring.insert((ev.pid, ring), file.ino);
        }
        if file.kind() == FileKind::Socket && sk != 0 && ring != 0 {
            rings.ring_by_sk.insert((ev.pid, sk), ring);
        }
        rings.requests.insert(
            (ev.pid, io_req_key(req, user_data)),
            IoReq { opcode, file, ring },
        );
    }

    /// A completion (`io_uring_complete`): counted on the ring's transfer; a READ of a
    /// regular file is its copy out of the page cache.
    pub(super) fn io_uring_complete(
        &mut self,
        ev: &Event,
        user_data: u64,
        res: i32,
        cflags: u32,
        req: u64,
        out: &mut Vec<Step>,
    ) {
        let rings = &mut self.io_uring;
        let key = (ev.pid, io_req_key(req, user_data));
        let Some(req) = rings.requests.get(&key) else {
            return;
        };
        let (opcode, file, ring) = (req.opcode, req.file, req.ring);
        if !cqueue::more(cflags) {
            rings.requests.remove(&key);
        }
        if let Some(&id) = rings.transfer_by_ring.get(&(ev.pid, ring)) {
            let facts = &mut self.transfers[id].facts;
            if cqueue::notif(cflags) {
                facts.io_uring_notifications += 1;
            } else {
                facts.io_uring_requests += 1;
            }
        }
        // READ / READV / READ_FIXED of a regular file: a CPU copy out of the page cache
        // (into user pages, or registered pages through a kernel mapping).
        if is_read(opcode) && file.kind() == FileKind::Regular && res > 0 {
            let bytes = res as u64;
            // fexit filemap_read saw the copy (inline, or in an io-wq worker).
            let seen = rings.read_bytes_by_file.get_mut(&(ev.pid, file.ino));
            let evidence = match seen {
                Some(seen) if *seen >= bytes => {
                    *seen -= bytes;
                    Evidence::Observed(Seen::FexitFilemapRead)
                }
                _ => Evidence::Inferred(Inference::IoUringReadCompleted),
            };
            let s = step_of(
                ev,
                StepKind::Copy {
                    engine: Engine::Cpu,
                    from: Buffer::PageCache,
                    to: Buffer::User,
                    bytes,
                },
                evidence,
            );
            self.route(ev.pid, ev.tid, Some(file.ino), None, s, out);
        }
    }

    /// The transfer of an io_uring ring: its file READs' source to its SENDs' socket
    /// (`src`, `sock`: what the current io_uring_enter's submissions named), made once
    /// both are known.
    pub(super) fn transfer_of_ring(
        &mut self,
        pid: Pid,
        ring: Ino,
        src: Option<Ino>,
        sock: Option<Ino>,
    ) -> Option<TransferId> {
        let rings = &mut self.io_uring;
        if let Some(&id) = rings.transfer_by_ring.get(&(pid, ring)) {
            return Some(id);
        }
        let src = src.or_else(|| rings.source_file_by_ring.get(&(pid, ring)).copied())?;
        let id = self.transfers.find_or_create(
            pid,
            Endpoint::File { ino: src },
            Endpoint::Socket { ino: sock? },
        );
        rings.transfer_by_ring.insert((pid, ring), id);
        Some(id)
    }
}
