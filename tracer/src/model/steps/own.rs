//! The application's own bytes sent on a TCP socket: bytes that did not come from a file
//! the model saw (a server's response headers, written from memory before the file it
//! sends: nginx's writev() before sendfile(), python's sendto() before its read()/send()
//! loop). They belong with the file sent next on that socket, so they wait for it: the
//! next transfer of a file into that socket takes them (its ledger counts them, its facts
//! say how many calls and bytes they were). When none comes (a receive on that socket
//! first, as the next request of a keep-alive connection, or the end of the trace), they
//! stay the application's own bytes (`user memory -> socket`).
//!
//! A program may also send its own bytes in the same call as the file's: nginx with
//! `sendfile off;` writev()s the headers together with the first chunk it read. What a
//! send from a buffer read from the file carries beyond the bytes read from it is the
//! application's own too (counted in the file's facts, the ledger has the copy).

use std::collections::HashMap;

use super::{Endpoint, Facts, Ino, Model, Pid, TransferId};
use crate::model::{Buffer, Mode, Step, StepKind};

/// The steps of an own-bytes transfer waiting for a file, and its facts when it began
/// to wait (what was counted since moves with the steps).
struct Held {
    steps: Vec<Step>,
    base: Facts,
}

/// Own-bytes transfers waiting for the file sent next on their socket, by transfer.
#[derive(Default)]
pub(super) struct OwnBytes {
    waiting: HashMap<TransferId, Held>,
    /// (pid, file) -> bytes read from it into memory and not sent yet.
    unsent: HashMap<(Pid, Ino), u64>,
}

impl Model {
    /// The own-bytes transfer of `pid` into TCP socket `sock`: a send of bytes from the
    /// application's memory starts; its steps (and those of later such sends) wait for
    /// the file sent next on that socket.
    pub(super) fn own_send_started(&mut self, pid: Pid, sock: Ino) {
        let id = self
            .transfers
            .find_or_create(pid, Endpoint::User, Endpoint::Socket { ino: sock });
        if !self.own.waiting.contains_key(&id) {
            let base = self.transfers[id].facts.clone();
            self.own.waiting.insert(
                id,
                Held {
                    steps: Vec::new(),
                    base,
                },
            );
        }
    }

    /// Gives step `s` to transfer `id`: it waits when `id` is an own-bytes transfer
    /// waiting for a file, else it is emitted.
    pub(super) fn emit(&mut self, id: TransferId, mut s: Step, out: &mut Vec<Step>) {
        match self.own.waiting.get_mut(&id) {
            Some(held) => {
                s.transfer = Some(id);
                held.steps.push(s);
            }
            None => self.transfers.emit(id, s, out),
        }
    }

    /// Transfer `id` sent a file's bytes: when it goes into a socket whose own bytes wait,
    /// it takes them (before its own steps, which come after them).
    pub(super) fn claim_own(&mut self, id: TransferId, out: &mut Vec<Step>) {
        let t = &self.transfers[id];
        let (Endpoint::File { .. }, Endpoint::Socket { ino }) = (t.src, t.dst) else {
            return;
        };
        let pid = t.pid;
        let Some(own) = self
            .transfers
            .find(pid, Endpoint::User, Endpoint::Socket { ino })
            .map(|t| t.id)
        else {
            return;
        };
        let Some(held) = self.own.waiting.remove(&own) else {
            return;
        };
        let mut moved = self.transfers[own].facts.take_since(&held.base);
        // The file's TCP sends are what `sends` compares with its chunks.
        moved.sends = 0;
        moved.own_calls = 0;
        moved.own_sends = 0;
        moved.own_bytes = 0;
        let mut in_call = false;
        let mut delivered = false;
        for s in &held.steps {
            match &s.kind {
                StepKind::ModeSwitch {
                    to: Mode::Kernel, ..
                } => {
                    moved.own_calls += 1;
                    in_call = true;
                    delivered = false;
                }
                StepKind::ModeSwitch { to: Mode::User, .. } => in_call = false,
                StepKind::Copy {
                    to: Buffer::Socket,
                    bytes,
                    ..
                }
                | StepKind::PageRef {
                    to: Buffer::Socket,
                    bytes,
                    ..
                } => {
                    moved.own_bytes += bytes;
                    if !(in_call && delivered) {
                        moved.own_sends += 1;
                    }
                    delivered = true;
                }
                _ => {}
            }
        }
        self.transfers[id].facts.add(&moved);
        // Transmits of the socket still queued go to the file's transfer too.
        for v in self.transfer_by_sk.values_mut() {
            if *v == own {
                *v = id;
            }
        }
        for s in held.steps {
            self.transfers.emit(id, s, out);
        }
    }

    /// A receive on `pid`'s socket `sock` came before any file was sent on it: the bytes
    /// that waited are the application's own (a reply without a file).
    pub(super) fn release_own(&mut self, pid: Pid, sock: Ino, out: &mut Vec<Step>) {
        if let Some(own) = self
            .transfers
            .find(pid, Endpoint::User, Endpoint::Socket { ino: sock })
            .map(|t| t.id)
        {
            self.release(own, out);
        }
    }

    /// The end of the trace: every own-bytes send still waiting stays the application's.
    pub(super) fn release_all_own(&mut self, out: &mut Vec<Step>) {
        let mut ids: Vec<TransferId> = self.own.waiting.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.release(id, out);
        }
    }

    /// `pid` read `bytes` of file `ino` into its memory.
    pub(super) fn read_into_memory(&mut self, pid: Pid, ino: Ino, bytes: u64) {
        *self.own.unsent.entry((pid, ino)).or_default() += bytes;
    }

    /// Transfer `id` sent `bytes` from a buffer read from file `ino`: what goes beyond the
    /// bytes read from it and not sent yet is the application's own.
    pub(super) fn sent_from_file(&mut self, id: TransferId, pid: Pid, ino: Ino, bytes: u64) {
        let unsent = self.own.unsent.entry((pid, ino)).or_default();
        let file = bytes.min(*unsent);
        *unsent -= file;
        let own = bytes - file;
        if own > 0 {
            let facts = &mut self.transfers[id].facts;
            facts.own_bytes += own;
            facts.own_with_file += 1;
        }
    }

    fn release(&mut self, own: TransferId, out: &mut Vec<Step>) {
        if let Some(held) = self.own.waiting.remove(&own) {
            for s in held.steps {
                self.transfers.emit(own, s, out);
            }
        }
    }
}
