//! TCP send calls: the copy, page references or pins of each call, decided as the kernel
//! does (`tcp_sendmsg_locked`'s flags and zero-copy inputs, fexit where it attaches), or
//! inferred at the syscall's return where no send hook exists (KERNEL_PATHS.md §2.5).

use std::collections::{HashMap, HashSet};

use tracer_common::kind::tcp_sendmsg_locked as k;

use super::{
    Endpoint, Facts, Ino, Model, Pid, Sk, Tid, TransferId, step_of,
    syscall::{Role, Syscall, seen_or_returned},
};
use crate::{
    event::{self, Event, FileKind},
    model::{Buffer, Engine, Evidence, Inference, Seen, SendDecision, Step, StepKind},
};

/// The kernel's zero-copy decision from its inputs (`kind::tcp_sendmsg_locked::ZC*`), when
/// they were read: a user buffer needs SO_ZEROCOPY, io_uring's does not; both need
/// scatter-gather.
fn zc_pins(zc: u64) -> Option<bool> {
    (zc & k::ZC_KNOWN != 0).then_some(zc & (k::ZC_SOCK | k::ZC_UBUF) != 0 && zc & k::ZC_SG != 0)
}

/// A MSG_ZEROCOPY send of `bytes` of which fexit skb_zerocopy_iter_stream saw `pinned`:
/// tcp_sendmsg_locked decides zero-copy once per call and then pins every byte through
/// that function (save TCP Fast Open's SYN data), so a shortfall is events not seen, not
/// a copy.
fn pinned_seen_step(bytes: u64, pinned: u64) -> (StepKind, Evidence) {
    let kind = StepKind::PageRef {
        from: Buffer::User,
        to: Buffer::Socket,
        bytes,
        pinned: true,
    };
    if pinned >= bytes {
        (kind, Evidence::Observed(Seen::FexitSkbZerocopyIterStream))
    } else {
        (kind, Evidence::Inferred(Inference::PinsPartlySeen))
    }
}

/// Page references into the socket buffer: from the pipe (splice) or from the page cache
/// (sendfile).
fn reference_from(src: Buffer, bytes: u64) -> StepKind {
    StepKind::PageRef {
        from: if src == Buffer::Pipe {
            Buffer::Pipe
        } else {
            Buffer::PageCache
        },
        to: Buffer::Socket,
        bytes,
        pinned: false,
    }
}

/// The user's pages pinned into the socket buffer (zero-copy).
fn pinned_step(bytes: u64) -> StepKind {
    StepKind::PageRef {
        from: Buffer::User,
        to: Buffer::Socket,
        bytes,
        pinned: true,
    }
}

/// A CPU copy from `src` into the socket buffer.
fn copy_step(src: Buffer, bytes: u64) -> StepKind {
    StepKind::Copy {
        engine: Engine::Cpu,
        from: src,
        to: Buffer::Socket,
        bytes,
    }
}

/// A TCP send call in progress on a socket (between tcp_sendmsg_locked and
/// sock_send_length).
#[derive(Default)]
struct SendCall {
    /// When the call's first send-loop iteration began: its copy starts there.
    ts_ns: u64,
    msg_flags: u32,
    /// The zero-copy decision inputs `tcp_sendmsg_locked` saw (`kind::tcp_sendmsg_locked::ZC*`).
    zc: u8,
    xmit_zerocopy: bool,
    xmit_copied: bool,
}

/// The TCP send calls in progress and what is known of their sockets.
#[derive(Default)]
pub(super) struct Sends {
    /// (pid, `sk`) -> the TCP send call in progress on it.
    calls: HashMap<(Pid, Sk), SendCall>,
    /// (pid, `sk`) -> bytes fexit skb_zerocopy_iter_stream pinned into the socket's skbs
    /// in the send call in progress.
    pinned_by_sk: HashMap<(Pid, Sk), u64>,
    /// (pid, `sk`) of the sockets on which a zero-copy skb was transmitted.
    sk_with_zc_xmit: HashSet<(Pid, Sk)>,
    /// fexit tcp_sendmsg_locked reports sends here (sock_send_length is then redundant).
    fexit_sees_sends: bool,
    /// (pid, `sk`) -> what the skbs' frags held at the socket's last send decided: page
    /// cache (references), the user's pages (pinned) or the socket's own (copied).
    held_by_sk: HashMap<(Pid, Sk), Buffer>,
}

impl Sends {
    /// Opens the record of a TCP send call on `sk` unless one is open; whether it did.
    fn open(&mut self, ev: &Event, sk: Sk, msg_flags: u32, zc: u8) -> bool {
        match self.calls.entry((ev.pid, sk)) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(SendCall {
                    ts_ns: ev.ts_ns,
                    msg_flags,
                    zc,
                    ..SendCall::default()
                });
                true
            }
            std::collections::hash_map::Entry::Occupied(_) => false,
        }
    }

    /// An skb of socket `key` was transmitted: zero-copy, page references (`spliced`),
    /// or copied bytes.
    pub(super) fn transmitted(&mut self, key: (Pid, Sk), zc: bool, spliced: bool) {
        if let Some(call) = self.calls.get_mut(&key) {
            if zc {
                call.xmit_zerocopy = true;
            } else if !spliced {
                call.xmit_copied = true;
            }
        }
        if zc {
            self.sk_with_zc_xmit.insert(key);
        }
    }

    /// What socket `key`'s skbs hold in their frags: by the send call in progress (its
    /// flags), else by the last one decided; `None` when neither is known.
    pub(super) fn frags_hold(&self, key: (Pid, Sk)) -> Option<Buffer> {
        let in_progress = self.calls.get(&key).and_then(|c| {
            if c.msg_flags & event::MSG_SPLICE_PAGES != 0 {
                Some(Buffer::PageCache)
            } else if c.msg_flags & event::MSG_ZEROCOPY != 0 {
                zc_pins(c.zc as u64).map(|pins| if pins { Buffer::User } else { Buffer::Socket })
            } else {
                Some(Buffer::Socket)
            }
        });
        in_progress.or_else(|| self.held_by_sk.get(&key).copied())
    }

    /// The syscall that pinned into `sk` returned: its pins are told (or inferred) there.
    pub(super) fn call_over(&mut self, pid: Pid, sk: Sk) {
        self.pinned_by_sk.remove(&(pid, sk));
    }
}

/// A TCP send call that ended, with what is known of it.
struct Ended<'a> {
    call: Option<&'a SendCall>,
    bytes: u64,
    /// Where its bytes come from: the user's buffer (or the page cache through a
    /// mapping), or the pipe.
    src: Buffer,
    /// sendfile or splice: page references.
    in_splice: bool,
    /// Bytes fexit skb_zerocopy_iter_stream saw pinned in it.
    pinned_seen: u64,
    /// A zero-copy skb of this socket was transmitted.
    zc_xmit_seen: bool,
    /// fexit tcp_sendmsg_locked saw the whole call.
    fexit: bool,
}

impl Ended<'_> {
    /// The call's step: what its flags say, and for MSG_ZEROCOPY what the kernel decided.
    fn step(&self, facts: &mut Facts) -> (StepKind, Evidence) {
        let (src, bytes, fexit) = (self.src, self.bytes, self.fexit);
        let observed = |decision| Evidence::Observed(Seen::TcpSendmsg { fexit, decision });
        match self.call.map(|c| c.msg_flags) {
            Some(f) if f & event::MSG_SPLICE_PAGES != 0 => (
                reference_from(src, bytes),
                observed(SendDecision::SplicePages),
            ),
            Some(f) if f & event::MSG_ZEROCOPY != 0 => self.zerocopy_step(facts),
            Some(_) => (copy_step(src, bytes), observed(SendDecision::Plain)),
            // No tcp_sendmsg_locked tracepoint (kernels before 6.16): the syscall
            // decides (KERNEL_PATHS.md §2.5), and transmits confirm.
            None if self.in_splice => (
                reference_from(src, bytes),
                Evidence::Inferred(Inference::SpliceSends),
            ),
            None => (
                copy_step(src, bytes),
                Evidence::Inferred(Inference::PlainSend),
            ),
        }
    }

    /// A MSG_ZEROCOPY call: pinned or copied, by the kernel's own decision when its
    /// inputs were read, else by what the transmitted skbs held.
    fn zerocopy_step(&self, facts: &mut Facts) -> (StepKind, Evidence) {
        let (src, bytes, fexit) = (self.src, self.bytes, self.fexit);
        facts.zerocopy_requested += 1;
        let c = self.call;
        let zc = c.map_or(0, |c| c.zc as u64);
        let decided = zc_pins(zc).is_some();
        let pinned = zc_pins(zc).unwrap_or_else(|| {
            c.is_some_and(|c| c.xmit_zerocopy)
                || (!c.is_some_and(|c| c.xmit_copied) && self.zc_xmit_seen)
        });
        if self.pinned_seen > 0 {
            // fexit skb_zerocopy_iter_stream saw the pins themselves.
            pinned_seen_step(bytes, self.pinned_seen)
        } else if pinned && decided {
            let decision = if fexit {
                SendDecision::ZerocopyPinned
            } else if zc & k::ZC_UBUF != 0 {
                SendDecision::ZerocopyUbuf
            } else {
                SendDecision::ZerocopySocket
            };
            (
                pinned_step(bytes),
                Evidence::Observed(Seen::TcpSendmsg { fexit, decision }),
            )
        } else if !pinned && decided {
            facts.zerocopy_ignored += 1;
            (
                copy_step(src, bytes),
                Evidence::Observed(Seen::TcpSendmsg {
                    fexit,
                    decision: SendDecision::ZerocopyCopied,
                }),
            )
        } else if pinned {
            (
                pinned_step(bytes),
                if c.is_some_and(|c| c.xmit_zerocopy) {
                    Evidence::Observed(Seen::TcpSendmsgZerocopyXmit)
                } else {
                    Evidence::Inferred(Inference::ZerocopyTransmitted)
                },
            )
        } else {
            facts.zerocopy_ignored += 1;
            (
                copy_step(src, bytes),
                Evidence::Inferred(Inference::ZerocopyTransmittedCopied),
            )
        }
    }
}

/// The send a syscall made when no send tracepoint saw it (kernels before 6.3 have
/// neither sock_send_length nor tcp_sendmsg_locked): the syscall says how many bytes
/// went, and the method says how (KERNEL_PATHS.md §2.5).
pub(super) fn inferred_at_exit(sys: &mut Syscall, bytes: u64) -> Option<(StepKind, Evidence)> {
    if bytes == 0 || sys.sent || !sys.tcp {
        return None;
    }
    match sys.role {
        Role::Send { .. } if sys.zerocopy && sys.pinned > 0 => {
            sys.zc_copied = Some(false);
            Some(pinned_seen_step(bytes, sys.pinned))
        }
        Role::Send { src, .. } if sys.zerocopy => {
            // The socket's inputs, read at the call's entry: SO_ZEROCOPY and
            // scatter-gather pin, else the kernel copies.
            let decided = zc_pins(sys.send_zc as u64);
            let copies = decided == Some(false);
            sys.zc_copied = Some(copies);
            Some(if copies {
                (
                    copy_step(src.buffer(), bytes),
                    Evidence::Inferred(Inference::ZerocopyReturnedCopied),
                )
            } else {
                (
                    pinned_step(bytes),
                    Evidence::Inferred(if decided.is_some() {
                        Inference::ZerocopyReturnedPinned
                    } else {
                        Inference::ZerocopyReturned
                    }),
                )
            })
        }
        Role::Send { src, .. } => Some((
            copy_step(src.buffer(), bytes),
            Evidence::Inferred(Inference::SendReturned),
        )),
        Role::Sendfile { dst, .. } if dst.kind() == FileKind::Socket => {
            // kretprobe do_tcp_sendpages saw the references (before 6.5).
            let (b, evidence) = seen_or_returned(
                sys.referenced,
                bytes,
                Seen::KretprobeDoTcpSendpages,
                Inference::SendfileReturned,
            );
            Some((reference_from(Buffer::PageCache, b), evidence))
        }
        Role::SpliceOut { .. } => {
            let (b, evidence) = seen_or_returned(
                sys.referenced,
                bytes,
                Seen::KretprobeDoTcpSendpages,
                Inference::SpliceSendReturned,
            );
            Some((reference_from(Buffer::Pipe, b), evidence))
        }
        _ => None,
    }
}

impl Model {
    /// `tcp_sendmsg_locked` fires per loop iteration: the first one of a call opens it,
    /// and learns the socket's transfer now (its first skbs go out within this call; a
    /// socket may carry one file, then another).
    pub(super) fn tcp_sendmsg_locked(&mut self, ev: &Event, sk: Sk, msg_flags: u32, zc: u8) {
        if self.sends.open(ev, sk, msg_flags, zc)
            && let Some(id) = self.transfer_of_send(ev.pid, ev.tid, sk)
        {
            self.transfer_by_sk.insert((ev.pid, sk), id);
        }
    }

    /// `sock_send_length`: a TCP send call ended (unless fexit tells the calls).
    pub(super) fn sock_send_length(&mut self, ev: &Event, sk: Sk, ret: i32, out: &mut Vec<Step>) {
        if self.sends.fexit_sees_sends {
            // fexit tcp_sendmsg_locked already told this call (and closed it; a record
            // open now is another thread's next call).
            return;
        }
        self.send_length(ev, sk, ret, false, out);
    }

    /// fexit `tcp_sendmsg_locked`: a whole TCP send call.
    pub(super) fn tcp_sendmsg_exit(
        &mut self,
        ev: &Event,
        sk: Sk,
        ret: i32,
        msg_flags: u32,
        zc: u8,
        out: &mut Vec<Step>,
    ) {
        self.sends.fexit_sees_sends = true;
        self.sends.open(ev, sk, msg_flags, zc);
        self.send_length(ev, sk, ret, true, out);
    }

    /// fexit `skb_zerocopy_iter_stream` pinned `bytes` into `sk`'s skbs.
    pub(super) fn zerocopy_pinned(&mut self, ev: &Event, sk: Sk, bytes: u64) {
        if let Some(sys) = self.syscalls.get_mut(ev.tid) {
            sys.pinned += bytes;
            sys.pinned_sk = Some(sk);
        }
        *self.sends.pinned_by_sk.entry((ev.pid, sk)).or_default() += bytes;
    }

    /// A TCP send call ended: `sock_send_length`, or fexit `tcp_sendmsg_locked` (`fexit`),
    /// which sees the whole call and makes the tracepoint's step redundant.
    fn send_length(&mut self, ev: &Event, sk: Sk, ret: i32, fexit: bool, out: &mut Vec<Step>) {
        let key = (ev.pid, sk);
        let call = self.sends.calls.remove(&key);
        let pinned_seen = self.sends.pinned_by_sk.remove(&key).unwrap_or(0);
        if ret <= 0 {
            return;
        }
        let role = self.syscalls.role(ev.tid);
        let Some(id) = self.transfer_of_send(ev.pid, ev.tid, sk) else {
            return;
        };
        self.transfer_by_sk.insert(key, id);
        if let Some(sys) = self.syscalls.get_mut(ev.tid) {
            sys.sent = true;
        }
        let ended = Ended {
            call: call.as_ref(),
            bytes: ret as u64,
            src: match role {
                Some(Role::Send { src, .. }) => src.buffer(),
                Some(Role::SpliceOut { .. }) => Buffer::Pipe,
                _ => Buffer::User,
            },
            in_splice: matches!(role, Some(Role::Sendfile { .. } | Role::SpliceOut { .. })),
            pinned_seen,
            zc_xmit_seen: self.sends.sk_with_zc_xmit.contains(&key),
            fexit,
        };
        let facts = &mut self.transfers[id].facts;
        facts.sends += 1;
        let (kind, evidence) = ended.step(facts);
        let held = match &kind {
            StepKind::PageRef { pinned: true, .. } => Buffer::User,
            StepKind::PageRef { .. } => Buffer::PageCache,
            _ => Buffer::Socket,
        };
        self.sends.held_by_sk.insert(key, held);
        let mut s = step_of(ev, kind, evidence);
        // The bytes moved from the start of the call on, before its transmits.
        if let Some(c) = &call {
            s.ts_ns = c.ts_ns;
        }
        self.route(ev.pid, ev.tid, None, Some(id), s, out);
    }

    /// The transfer of a TCP send on `sk` by `tid`: from the syscall the thread is in,
    /// else what is known of the socket (io-wq workers and SQPOLL threads send outside any
    /// syscall of theirs; the ring their request came through says which transfer).
    pub(super) fn transfer_of_send(&mut self, pid: Pid, tid: Tid, sk: Sk) -> Option<TransferId> {
        let ctx = self
            .syscalls
            .get(tid)
            .map(|sys| (sys.role, (sys.iou_src, sys.iou_sock)));
        if let Some((role, iou)) = ctx
            && let Some(id) = self.transfer_of_send_call(pid, role, iou)
        {
            return Some(id);
        }
        if let Some(&id) = self.transfer_by_sk.get(&(pid, sk)) {
            return Some(id);
        }
        let ring = self.io_uring.ring_of_sk(pid, sk)?;
        self.transfer_of_ring(pid, ring, None, None)
    }

    /// The transfer a send belongs to, from the syscall it runs in (`iou`: the source file
    /// and socket an io_uring_enter's submissions named).
    pub(super) fn transfer_of_send_call(
        &mut self,
        pid: Pid,
        role: Role,
        iou: (Option<Ino>, Option<Ino>),
    ) -> Option<TransferId> {
        match role {
            Role::Send { sock, src } => Some(self.transfers.find_or_create(
                pid,
                src.endpoint(),
                Endpoint::Socket { ino: sock },
            )),
            Role::Sendfile { src, dst } => Some(self.transfers.find_or_create(
                pid,
                Endpoint::File { ino: src },
                Endpoint::Socket { ino: dst.ino },
            )),
            Role::SpliceOut { pipe, sock } => {
                let src = self
                    .sources
                    .pipe_source(pid, pipe)
                    .map_or(Endpoint::User, |ino| Endpoint::File { ino });
                Some(
                    self.transfers
                        .find_or_create(pid, src, Endpoint::Socket { ino: sock }),
                )
            }
            Role::IoUring { ring } => self.transfer_of_ring(pid, ring, iou.0, iou.1),
            _ => None,
        }
    }
}
