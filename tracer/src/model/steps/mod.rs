//! From kernel events to steps, transfers and ledgers (KERNEL_PATHS.md §6's attribution
//! recipe for the tracepoint tier).
//!
//! - A syscall's steps (its two mode switches and what happened inside it) are collected
//!   in the thread's in-flight record and assigned to a transfer at its exit, when the
//!   transfer is known: a read() of a file belongs to the transfer its data goes to next.
//! - fd kinds (regular file, socket, pipe) come from the kernel's fd table at entry.
//! - TCP sends are keyed by socket (`sk`), transmits by `skb->sk` and zero-copy deliveries
//!   by skb, never by the current pid (softirq runs them in whatever task is current).
//! - Steps of a source file seen before its destination is known wait in
//!   `awaiting_destination`.
//!
//! [`Model`] keeps the transfers and what ties steps to them, and hands each event to the
//! part that owns its state: `syscall` (syscalls in flight, their roles, the bytes seen
//! inside them), `send` (TCP send calls, the zero-copy decision), `xmit` (transmits,
//! loopback deliveries), `page_cache` (lookups, pages added), `block` (block requests),
//! `io_uring` (requests, completions, a ring's transfer), `mapping` (where a buffer's
//! bytes come from: file mappings, buffers filled by read(), pipes) and `own` (the
//! application's own bytes sent on a socket, waiting for the file sent next on it).

mod block;
mod io_uring;
mod mapping;
mod own;
mod page_cache;
mod send;
mod syscall;
#[cfg(test)]
mod tests;
mod xmit;

use std::{
    collections::{BTreeSet, HashMap},
    fmt,
    ops::{Index, IndexMut},
};

use serde::Serialize;

use super::{Buffer, Engine, Evidence, Ledger, LookupProbe, Mode, Seen, Step, StepKind};
use crate::event::{Event, Payload};

/// A process (thread group) id, as events carry it.
type Pid = u32;
/// A thread id.
type Tid = u32;
/// An inode number (a file, a socket, a pipe, an io_uring ring).
type Ino = u64;
/// A kernel `struct sock *`: a socket as the network stack knows it.
type Sk = u64;

/// A transfer: its index in [`Model::transfers`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TransferId(pub usize);

/// The bare index, as the number it is (a transfer prints as its index).
impl fmt::Debug for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One end of a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Endpoint {
    File {
        ino: u64,
    },
    Socket {
        ino: u64,
    },
    /// The application's memory (a receive's destination, or a send of bytes that did not
    /// come from a file the model saw).
    User,
}

/// What the probes saw about a transfer beyond its ledger; the comparison uses it to say
/// why the ledger differs from the textbook.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Facts {
    /// Transmits with payload, on loopback and on other devices.
    pub loopback_xmits: u64,
    pub nic_xmits: u64,
    /// Transmits on a software device that hands the skb to its peer (veth): no DMA.
    #[serde(skip_serializing_if = "is_zero")]
    pub peer_xmits: u64,
    pub devices: BTreeSet<String>,
    /// Payload bytes at transmit by what the skb frags held (`skb_shinfo->flags`).
    pub xmit_copied_bytes: u64,
    pub xmit_spliced_bytes: u64,
    pub xmit_zerocopy_bytes: u64,
    /// TCP sends (sock_send_length calls) with bytes, and how many asked for MSG_ZEROCOPY.
    pub sends: u64,
    pub zerocopy_requested: u64,
    /// MSG_ZEROCOPY sends the kernel copied anyway (skbs transmitted as copies).
    pub zerocopy_ignored: u64,
    /// Transmits whose payload was in the linear part (copied out of the frags for a
    /// device without scatter-gather), and those bytes.
    #[serde(skip_serializing_if = "is_zero")]
    pub linear_xmits: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub linear_xmit_bytes: u64,
    /// Zero-copy skbs delivered locally, which the kernel copied (skb_copy_ubufs).
    pub deferred_copies: u64,
    pub deferred_copy_bytes: u64,
    /// Disk reads (block requests) of the source file.
    pub block_requests: u64,
    /// Zero-copy completion reaps: recvmsg(MSG_ERRQUEUE) calls.
    pub completion_reaps: u64,
    /// io_uring requests submitted and completion notifications (F_NOTIF) posted.
    pub io_uring_requests: u64,
    pub io_uring_notifications: u64,
    /// Data syscalls per kind (read, write, sendfile, ...), for chunk counts.
    pub syscalls: std::collections::BTreeMap<String, u64>,
    /// Copies and page references by how they are known ("observed by ...",
    /// "inferred"), e.g. whether a kernel let fexit see the page cache -> user copy.
    pub evidence: std::collections::BTreeMap<String, u64>,
    /// Calls at the end of the source file (read(), sendfile(), splice() or
    /// copy_file_range() returning 0): two mode switches, no bytes.
    #[serde(skip_serializing_if = "is_zero")]
    pub eof_calls: u64,
    /// Data calls that returned an error (EAGAIN from a full socket buffer of a
    /// non-blocking socket, EINTR, ...): two mode switches, no bytes.
    #[serde(skip_serializing_if = "is_zero")]
    pub failed_calls: u64,
    /// The application's own bytes sent on the destination socket before the file (a
    /// server's response headers, see `own`): calls, those that sent bytes, and the bytes.
    #[serde(skip_serializing_if = "is_zero")]
    pub own_calls: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub own_sends: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub own_bytes: u64,
    /// Sends of a buffer read from the file that carried more bytes than were read (nginx
    /// with `sendfile off;` writev()s its headers with the file's first chunk): the extra
    /// bytes are the application's own, counted in `own_bytes` too.
    #[serde(skip_serializing_if = "is_zero")]
    pub own_with_file: u64,
    /// Transmits TCP made again (`tcp_retransmit_skb`), and their payload bytes; the
    /// `xmit_*_bytes` above count each byte once. The transmit at the device that resent
    /// them makes no step where its TCP sequence number tells it (recordings without one
    /// match it by size, and keep its step).
    #[serde(skip_serializing_if = "is_zero")]
    pub retransmits: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub retransmitted_bytes: u64,
    /// Disk reads straight into the application's buffer (O_DIRECT), and their bytes:
    /// counted in `block_requests` too.
    #[serde(skip_serializing_if = "is_zero")]
    pub direct_reads: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub direct_read_bytes: u64,
}

/// Whether a counter is 0 (facts added later are left out of the JSON until they happen).
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Facts {
    /// Adds `other`'s counts to these.
    fn add(&mut self, other: &Self) {
        self.loopback_xmits += other.loopback_xmits;
        self.nic_xmits += other.nic_xmits;
        self.devices.extend(other.devices.iter().cloned());
        self.xmit_copied_bytes += other.xmit_copied_bytes;
        self.xmit_spliced_bytes += other.xmit_spliced_bytes;
        self.xmit_zerocopy_bytes += other.xmit_zerocopy_bytes;
        self.sends += other.sends;
        self.zerocopy_requested += other.zerocopy_requested;
        self.zerocopy_ignored += other.zerocopy_ignored;
        self.deferred_copies += other.deferred_copies;
        self.deferred_copy_bytes += other.deferred_copy_bytes;
        self.block_requests += other.block_requests;
        self.completion_reaps += other.completion_reaps;
        self.io_uring_requests += other.io_uring_requests;
        self.io_uring_notifications += other.io_uring_notifications;
        for (k, v) in &other.syscalls {
            *self.syscalls.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.evidence {
            *self.evidence.entry(k.clone()).or_default() += v;
        }
        self.eof_calls += other.eof_calls;
        self.failed_calls += other.failed_calls;
        self.own_calls += other.own_calls;
        self.own_sends += other.own_sends;
        self.own_bytes += other.own_bytes;
        self.own_with_file += other.own_with_file;
        self.retransmits += other.retransmits;
        self.retransmitted_bytes += other.retransmitted_bytes;
        self.direct_reads += other.direct_reads;
        self.direct_read_bytes += other.direct_read_bytes;
    }

    /// What was counted since `base` (an earlier copy of these facts); these go back to
    /// `base`.
    fn take_since(&mut self, base: &Self) -> Self {
        let mut taken = Self::default();
        let d = |now: u64, then: u64| now.saturating_sub(then);
        taken.loopback_xmits = d(self.loopback_xmits, base.loopback_xmits);
        taken.nic_xmits = d(self.nic_xmits, base.nic_xmits);
        taken.devices = self.devices.difference(&base.devices).cloned().collect();
        taken.xmit_copied_bytes = d(self.xmit_copied_bytes, base.xmit_copied_bytes);
        taken.xmit_spliced_bytes = d(self.xmit_spliced_bytes, base.xmit_spliced_bytes);
        taken.xmit_zerocopy_bytes = d(self.xmit_zerocopy_bytes, base.xmit_zerocopy_bytes);
        taken.sends = d(self.sends, base.sends);
        taken.zerocopy_requested = d(self.zerocopy_requested, base.zerocopy_requested);
        taken.zerocopy_ignored = d(self.zerocopy_ignored, base.zerocopy_ignored);
        taken.deferred_copies = d(self.deferred_copies, base.deferred_copies);
        taken.deferred_copy_bytes = d(self.deferred_copy_bytes, base.deferred_copy_bytes);
        taken.block_requests = d(self.block_requests, base.block_requests);
        taken.completion_reaps = d(self.completion_reaps, base.completion_reaps);
        taken.io_uring_requests = d(self.io_uring_requests, base.io_uring_requests);
        taken.io_uring_notifications = d(self.io_uring_notifications, base.io_uring_notifications);
        for (k, v) in &self.syscalls {
            let n = d(*v, base.syscalls.get(k).copied().unwrap_or(0));
            if n > 0 {
                taken.syscalls.insert(k.clone(), n);
            }
        }
        for (k, v) in &self.evidence {
            let n = d(*v, base.evidence.get(k).copied().unwrap_or(0));
            if n > 0 {
                taken.evidence.insert(k.clone(), n);
            }
        }
        taken.eof_calls = d(self.eof_calls, base.eof_calls);
        taken.failed_calls = d(self.failed_calls, base.failed_calls);
        taken.own_calls = d(self.own_calls, base.own_calls);
        taken.own_sends = d(self.own_sends, base.own_sends);
        taken.own_bytes = d(self.own_bytes, base.own_bytes);
        taken.own_with_file = d(self.own_with_file, base.own_with_file);
        taken.retransmits = d(self.retransmits, base.retransmits);
        taken.retransmitted_bytes = d(self.retransmitted_bytes, base.retransmitted_bytes);
        taken.direct_reads = d(self.direct_reads, base.direct_reads);
        taken.direct_read_bytes = d(self.direct_read_bytes, base.direct_read_bytes);
        *self = base.clone();
        taken
    }
}

/// One source -> destination flow of a process, with its ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Transfer {
    pub id: TransferId,
    pub pid: u32,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub ledger: Ledger,
    pub facts: Facts,
    pub first_ns: u64,
    pub last_ns: u64,
}

impl Transfer {
    /// Whether this is a sender's transfer: a file's bytes going to a socket, or to another
    /// file (copy_file_range); not a file read into the application's memory, nor a
    /// receive.
    pub fn is_send(&self) -> bool {
        matches!(self.src, Endpoint::File { .. }) && self.dst != Endpoint::User
    }

    /// Whether this is a receiver's transfer: a socket's bytes going to the application.
    pub fn is_receive(&self) -> bool {
        matches!(self.src, Endpoint::Socket { .. }) && self.dst == Endpoint::User
    }
}

/// Every transfer, by id and by its ends.
#[derive(Default)]
struct Transfers {
    all: Vec<Transfer>,
    /// (pid, source, destination) -> its transfer.
    by_ends: HashMap<(Pid, Endpoint, Endpoint), TransferId>,
}

impl Transfers {
    fn find(&self, pid: Pid, src: Endpoint, dst: Endpoint) -> Option<&Transfer> {
        self.by_ends.get(&(pid, src, dst)).map(|&id| &self[id])
    }

    /// The transfer from `src` to `dst` of process `pid`, made when it is the first step.
    fn find_or_create(&mut self, pid: Pid, src: Endpoint, dst: Endpoint) -> TransferId {
        if let Some(&id) = self.by_ends.get(&(pid, src, dst)) {
            return id;
        }
        let id = TransferId(self.all.len());
        self.all.push(Transfer {
            id,
            pid,
            src,
            dst,
            ledger: Ledger::default(),
            facts: Facts::default(),
            first_ns: 0,
            last_ns: 0,
        });
        self.by_ends.insert((pid, src, dst), id);
        id
    }

    /// Gives step `s` to transfer `id` (its ledger, facts and times) and emits it.
    fn emit(&mut self, id: TransferId, mut s: Step, out: &mut Vec<Step>) {
        s.transfer = Some(id);
        let t = &mut self[id];
        if t.first_ns == 0 || s.ts_ns < t.first_ns {
            t.first_ns = s.ts_ns;
        }
        t.last_ns = t.last_ns.max(s.ts_ns);
        t.ledger.record(&s.kind);
        match &s.kind {
            StepKind::ModeSwitch {
                to: Mode::Kernel,
                syscall,
            } => match t.facts.syscalls.get_mut(syscall) {
                Some(n) => *n += 1,
                None => {
                    t.facts.syscalls.insert(syscall.clone(), 1);
                }
            },
            StepKind::Copy {
                engine: Engine::Dma,
                from: Buffer::Disk,
                to,
                bytes,
            } => {
                t.facts.block_requests += 1;
                if *to == Buffer::User {
                    t.facts.direct_reads += 1;
                    t.facts.direct_read_bytes += bytes;
                }
            }
            _ => {}
        }
        let what = match &s.kind {
            StepKind::Copy { from, to, .. } | StepKind::PageRef { from, to, .. } => {
                Some(format!("{} -> {}", buffer_name(*from), buffer_name(*to)))
            }
            StepKind::Lookup { .. } => Some("page-cache lookup".to_string()),
            _ => None,
        };
        if let Some(what) = what {
            let how = match &s.evidence {
                Evidence::Observed(p) => format!("observed by {p}"),
                Evidence::Inferred(_) => "inferred".to_string(),
            };
            *t.facts
                .evidence
                .entry(format!("{what}: {how}"))
                .or_default() += 1;
        }
        t.ledger.wall_ns = Some(t.last_ns - t.first_ns);
        out.push(s);
    }
}

impl Index<TransferId> for Transfers {
    type Output = Transfer;
    fn index(&self, id: TransferId) -> &Transfer {
        &self.all[id.0]
    }
}

impl IndexMut<TransferId> for Transfers {
    fn index_mut(&mut self, id: TransferId) -> &mut Transfer {
        &mut self.all[id.0]
    }
}

/// How `Facts::evidence` keys name a buffer.
fn buffer_name(b: Buffer) -> &'static str {
    match b {
        Buffer::Disk => "disk",
        Buffer::PageCache => "page-cache",
        Buffer::User => "user",
        Buffer::Pipe => "pipe",
        Buffer::Socket => "socket",
        Buffer::Nic => "nic",
    }
}

/// A step of event `ev`, not assigned to a transfer yet.
fn step_of(ev: &Event, kind: StepKind, evidence: Evidence) -> Step {
    Step {
        ts_ns: ev.ts_ns,
        pid: ev.pid,
        tid: ev.tid,
        transfer: None,
        kind,
        evidence,
    }
}

/// A step of a source file waiting for the transfer its bytes go to.
struct Waiting {
    step: Step,
    /// A step of a read() of the file into the application's memory: it belongs only to a
    /// transfer whose bytes go through that memory (a write or send of a buffer read from
    /// the file), not to one that reads the file in the kernel (sendfile, splice,
    /// copy_file_range, a mapping).
    into_user: bool,
}

/// The event -> step state machine. Feed it events in ring-buffer order with
/// [`Model::push`], then call [`Model::finish`].
#[derive(Default)]
pub struct Model {
    transfers: Transfers,
    // What ties steps to transfers.
    /// (pid, source file ino) -> the transfer that file's bytes go to now.
    transfer_by_source_file: HashMap<(Pid, Ino), TransferId>,
    /// (pid, socket ino) -> the transfer sending into that socket.
    transfer_by_dest_socket: HashMap<(Pid, Ino), TransferId>,
    /// (owning pid, `sk`) -> the transfer sending through that socket.
    transfer_by_sk: HashMap<(Pid, Sk), TransferId>,
    /// (pid, source file ino) -> that file's steps whose destination is not known yet.
    awaiting_destination: HashMap<(Pid, Ino), Vec<Waiting>>,
    // The parts, each with the state of its domain.
    syscalls: syscall::Syscalls,
    sources: mapping::Sources,
    sends: send::Sends,
    xmits: xmit::Xmits,
    page_cache: page_cache::PageCache,
    block: block::Block,
    io_uring: io_uring::IoUring,
    own: own::OwnBytes,
}

impl Model {
    /// A model that has seen no event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every transfer so far, by id.
    pub fn transfers(&self) -> &[Transfer] {
        &self.transfers.all
    }

    /// TCP retransmits of the traced processes' sockets so far, and their payload bytes
    /// (those of sockets no transfer sent on too).
    pub fn retransmits(&self) -> (u64, u64) {
        self.xmits.retransmits()
    }

    /// The transfer from `src` to `dst` of process `pid`, if any.
    pub fn find(&self, pid: u32, src: Endpoint, dst: Endpoint) -> Option<&Transfer> {
        self.transfers.find(pid, src, dst)
    }

    /// The sender's transfer (see [`Transfer::is_send`]): the one with these ends (source
    /// file, destination) when they are known, as when a run's report is in; else the first
    /// one, as during a run.
    pub fn sender(&self, ends: Option<(Endpoint, Endpoint)>) -> Option<&Transfer> {
        self.transfers
            .all
            .iter()
            .filter(|t| t.is_send())
            .find(|t| ends.is_none_or(|(src, dst)| t.src == src && t.dst == dst))
    }

    /// The receiver's transfer (see [`Transfer::is_receive`]): from socket `sock` when it
    /// is known, else the first one.
    pub fn receiver(&self, sock: Option<u64>) -> Option<&Transfer> {
        self.transfers
            .all
            .iter()
            .filter(|t| t.is_receive())
            .find(|t| sock.is_none_or(|ino| t.src == Endpoint::Socket { ino }))
    }

    /// Takes one event; steps that become attributable are appended to `out` (a syscall's
    /// steps arrive together at its exit).
    pub fn push(&mut self, ev: &Event, out: &mut Vec<Step>) {
        match &ev.payload {
            Payload::SyscallEnter { nr, args, fds } => self.syscall_enter(ev, *nr, args, fds),
            Payload::SyscallExit { nr, ret } => self.syscall_exit(ev, *nr, *ret, out),
            Payload::TcpSendmsgLocked {
                sk, msg_flags, zc, ..
            } => self.tcp_sendmsg_locked(ev, *sk, *msg_flags, *zc),
            Payload::SockSendLength(s) => self.sock_send_length(ev, s.sk, s.ret, out),
            Payload::TcpSendmsgExit {
                sk,
                ret,
                msg_flags,
                zc,
                ..
            } => self.tcp_sendmsg_exit(ev, *sk, *ret, *msg_flags, *zc, out),
            Payload::ZerocopyPinned { sk, bytes } => self.zerocopy_pinned(ev, *sk, *bytes),
            Payload::NetDevStartXmit {
                skb,
                sk,
                data_len,
                shinfo_flags,
                dev_flags,
                dev,
                owner_pid,
                len,
                header_len,
                seq,
                software_dev,
                ..
            } => {
                let skb = xmit::Skb {
                    skb: *skb,
                    sk: *sk,
                    owner_pid: *owner_pid,
                    data_len: *data_len,
                    shinfo_flags: *shinfo_flags,
                    dev_flags: *dev_flags,
                    dev,
                    len: *len,
                    header_len: *header_len,
                    seq: *seq,
                    software_dev: *software_dev,
                };
                self.transmit(ev, &skb, out)
            }
            Payload::ZerocopyReceive {
                skb,
                data_len,
                fexit,
                owner_pid,
                ..
            } => self.zerocopy_receive(ev, *skb, *data_len, *fexit, *owner_pid, out),
            Payload::SendpagesExit { bytes } => self.syscalls.sendpages(ev.tid, *bytes),
            Payload::FilemapRead {
                ino,
                bytes,
                already,
                pipe,
            } => self.filemap_read(ev, *ino, bytes.saturating_sub(*already), *pipe),
            Payload::SkbCopyDatagramIovec { len, fexit, .. } => {
                self.syscalls.received(ev.tid, *len, *fexit)
            }
            Payload::Ext4DaWriteEnd { copied, .. } => {
                self.syscalls
                    .file_write(ev.tid, *copied as u64, Seen::Ext4DaWriteEnd)
            }
            Payload::PerformWrite { bytes, .. } => {
                self.syscalls
                    .file_write(ev.tid, *bytes, Seen::FexitGenericPerformWrite)
            }
            Payload::FilemapAddToPageCache {
                ino, index, order, ..
            } => self.page_cache.added(ev.ts_ns, *ino, *index, *order),
            Payload::FilemapGetPages {
                ino,
                index,
                last_index,
                fexit,
                ..
            } => {
                let probe = if *fexit {
                    LookupProbe::FexitFilemapGetPages
                } else {
                    LookupProbe::MmFilemapGetPages
                };
                self.lookup(ev, *ino, *index, *last_index, probe, out)
            }
            Payload::FilemapMapPages {
                ino,
                start,
                end,
                fexit,
                ..
            } => {
                let probe = if *fexit {
                    LookupProbe::FexitFilemapMapPages
                } else {
                    LookupProbe::MmFilemapMapPages
                };
                self.lookup(ev, *ino, *start, *end, probe, out)
            }
            Payload::BlockRqIssue {
                rq,
                op,
                ino,
                bytes,
                owner_pid,
                ..
            } => {
                let rq = block::Request {
                    rq: *rq,
                    op: *op,
                    ino: *ino,
                    bytes: *bytes,
                    owner_pid: *owner_pid,
                };
                self.block_rq_issue(ev, &rq, out)
            }
            Payload::BlockRqComplete { rq, .. } => self.block.completed(*rq),
            Payload::IoUringSubmit {
                user_data,
                opcode,
                file,
                sk,
                req,
                ..
            } => self.io_uring_submit(ev, *user_data, *opcode, *file, *sk, *req),
            Payload::IoUringComplete {
                user_data,
                res,
                cflags,
                req,
            } => self.io_uring_complete(ev, *user_data, *res, *cflags, *req, out),
            Payload::TcpRetransmit {
                sk,
                len,
                err,
                owner_pid,
                ..
            } => self.retransmitted(*owner_pid, *sk, *len, *err),
            Payload::SockRecvLength(_)
            | Payload::FilemapFault { .. }
            | Payload::ProcessFork { .. }
            | Payload::ProcessExec => {}
        }
    }

    /// Flushes what is still waiting: syscalls without an exit (the trace ended inside
    /// them) are dropped; source-file steps that never found a destination become
    /// transfers to the application's memory when they include syscalls.
    pub fn finish(&mut self, out: &mut Vec<Step>) {
        // A syscall still in flight is dropped, but not the steps of other transfers it
        // carried (a transmit in its context).
        let mut carried: Vec<(TransferId, Step)> = self
            .syscalls
            .drain()
            .flat_map(|sys| sys.steps)
            .filter_map(|s| Some((s.transfer?, s)))
            .collect();
        carried.sort_by_key(|(_, s)| s.ts_ns);
        for (id, s) in carried {
            self.emit(id, s, out);
        }
        let mut keys: Vec<_> = self.awaiting_destination.keys().copied().collect();
        keys.sort_unstable();
        for (pid, ino) in keys {
            // A file whose data went nowhere the model saw becomes a transfer to the
            // application when bytes moved (a plain read, an O_DIRECT one); an mmap that was never sent
            // from, or a library mapped by the loader, does not.
            let moved = self.awaiting_destination[&(pid, ino)].iter().any(|w| {
                matches!(
                    w.step.kind,
                    StepKind::Copy {
                        engine: Engine::Cpu,
                        ..
                    } | StepKind::Copy {
                        to: Buffer::User,
                        ..
                    } | StepKind::PageRef { .. }
                )
            });
            if moved {
                let id = self
                    .transfers
                    .find_or_create(pid, Endpoint::File { ino }, Endpoint::User);
                self.attach_source(pid, ino, id, true, out);
            } else {
                self.awaiting_destination.remove(&(pid, ino));
            }
        }
        self.release_all_own(out);
    }

    /// Makes `id` the current transfer of source file `ino` and hands it the steps that
    /// waited for it: those of earlier reads into the application's memory only when its
    /// bytes go `through_user` memory (the others wait on, for a transfer of their own).
    fn attach_source(
        &mut self,
        pid: Pid,
        ino: Ino,
        id: TransferId,
        through_user: bool,
        out: &mut Vec<Step>,
    ) {
        self.transfer_by_source_file.insert((pid, ino), id);
        if let Endpoint::Socket { ino: sock } = self.transfers[id].dst {
            self.transfer_by_dest_socket.insert((pid, sock), id);
        }
        let Some(waiting) = self.awaiting_destination.remove(&(pid, ino)) else {
            return;
        };
        let (taken, left): (Vec<_>, Vec<_>) = waiting
            .into_iter()
            .partition(|w| through_user || !w.into_user);
        for w in taken {
            self.emit(id, w.step, out);
        }
        if !left.is_empty() {
            self.awaiting_destination.insert((pid, ino), left);
        }
    }

    /// Sends a step to the syscall in flight on `tid` when it belongs there, else to
    /// transfer `id` or the transfer of source file `ino`, else to the steps of `ino`
    /// awaiting their destination.
    fn route(
        &mut self,
        pid: Pid,
        tid: Tid,
        ino: Option<Ino>,
        id: Option<TransferId>,
        s: Step,
        out: &mut Vec<Step>,
    ) {
        if let Some(sys) = self.syscalls.get_mut(tid) {
            let belongs = match ino {
                Some(ino) => sys.role.source_file() == Some(ino) || sys.iou_src == Some(ino),
                None => id.is_some(),
            };
            if belongs {
                sys.steps.push(s);
                return;
            }
        }
        let id = id.or_else(|| {
            let i = ino?;
            self.transfer_by_source_file.get(&(pid, i)).copied()
        });
        match (id, ino) {
            (Some(id), _) => self.emit(id, s, out),
            (None, Some(i)) => {
                self.awaiting_destination
                    .entry((pid, i))
                    .or_default()
                    .push(Waiting {
                        step: s,
                        into_user: false,
                    })
            }
            (None, None) => {}
        }
    }
}
