//! Transmits (`net_dev_start_xmit`) and loopback's deliveries of zero-copy skbs: keyed by
//! the socket's owner and `sk`, and by skb, never by the current task (softirq runs them in
//! whatever task is current).

use std::collections::HashMap;

use super::{Endpoint, Model, Pid, Sk, TransferId, step_of};
use crate::{
    event::Event,
    model::{Buffer, Engine, Evidence, Inference, Seen, Step, StepKind},
};

/// `skb_shinfo(skb)->flags` (the kernel's SKBFL_*, unchanged through the 6.x series): the
/// frags are the user's pinned pages, or page references (spliced).
const SKBFL_ZEROCOPY_ENABLE: u8 = 1;
const SKBFL_SHARED_FRAG: u8 = 2;
/// `dev->flags` of the loopback device.
const IFF_LOOPBACK: u32 = libc::IFF_LOOPBACK as u32;

/// One skb handed to a device, as `net_dev_start_xmit` saw it.
pub(super) struct Skb<'e> {
    pub skb: u64,
    /// The socket and its owner (the probe looked it up; not the current task).
    pub sk: Sk,
    pub owner_pid: Pid,
    /// Payload bytes (0: a pure ACK, SYN or FIN).
    pub data_len: u32,
    /// `skb_shinfo(skb)->flags` (SKBFL_*).
    pub shinfo_flags: u8,
    /// `dev->flags` (IFF_*).
    pub dev_flags: u32,
    pub dev: &'e str,
    /// `skb->len`, and the header bytes at the start of the linear part (0: unknown).
    pub len: u32,
    pub header_len: u32,
    /// The segment's TCP sequence number (known when `header_len` is).
    pub seq: u32,
    /// The device has no parent device (software: no DMA engine).
    pub software_dev: bool,
}

impl Skb<'_> {
    /// Payload bytes in the linear part: TCP puts every byte of a send in frags, so these
    /// were copied out of the frags after TCP, when the skb was segmented or linearized
    /// for a device without scatter-gather. 0 when the headers' length is unknown.
    fn linear_payload(&self) -> u64 {
        if self.header_len == 0 {
            return 0;
        }
        self.len
            .saturating_sub(self.data_len)
            .saturating_sub(self.header_len) as u64
    }
}

/// What an skb's frags held, as the transmit facts count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frags {
    Copied,
    Spliced,
    ZeroCopy,
}

/// A socket's last transmit with payload, without a sequence number: a retransmit of that
/// size reported after it is that one.
#[derive(Clone, Copy)]
struct Sent {
    bytes: u64,
    frags: Frags,
    transfer: TransferId,
}

/// The zero-copy skbs transmitted, until loopback delivers them; what each socket
/// transmitted (up to which sequence number, or its last transmit) and the retransmits
/// not matched to a transmit yet.
#[derive(Default)]
pub(super) struct Xmits {
    /// Zero-copy skb -> the transfer that transmitted it (loopback copies it later).
    transfer_by_zc_skb: HashMap<u64, TransferId>,
    /// (owner, `sk`) -> the connection (its transfer's socket) and the sequence number
    /// after the last payload byte it transmitted, for sockets whose transmits carry one:
    /// what a transmit resends is told by it. A freed socket's address may come back as
    /// another connection, with sequence numbers of its own.
    sent_end: HashMap<(Pid, Sk), (Endpoint, u32)>,
    /// Without sequence numbers (recordings made before the probe read them), retransmits
    /// are matched to transmits by size: (owner, `sk`) -> its last transmit with payload,
    /// until a retransmit takes it.
    last: HashMap<(Pid, Sk), Sent>,
    /// (owner, `sk`) -> retransmitted payload sizes whose transmit has not been seen yet
    /// (a real NIC's queue may send after `tcp_retransmit_skb` fired).
    owed: HashMap<(Pid, Sk), Vec<u64>>,
    /// Retransmits of the traced processes' sockets, and their bytes.
    retransmits: u64,
    retransmitted_bytes: u64,
}

impl Xmits {
    pub(super) fn retransmits(&self) -> (u64, u64) {
        (self.retransmits, self.retransmitted_bytes)
    }

    /// Of `payload` bytes connection `conn` transmitted at `skb`'s sequence number
    /// (known), how many were never transmitted before: the rest is resent (a
    /// retransmission).
    fn fresh(&mut self, key: (Pid, Sk), conn: Endpoint, skb: &Skb<'_>, payload: u64) -> u64 {
        let end = skb.seq.wrapping_add(payload as u32);
        match self.sent_end.get(&key) {
            // Sequence numbers wrap: `end` is ahead when the difference is positive.
            Some(&(c, prev)) if c == conn && (end.wrapping_sub(prev) as i32) <= 0 => 0,
            Some(&(c, prev)) if c == conn => {
                self.sent_end.insert(key, (conn, end));
                u64::from(end.wrapping_sub(prev)).min(payload)
            }
            _ => {
                self.sent_end.insert(key, (conn, end));
                payload
            }
        }
    }
}

impl Model {
    /// An skb with payload handed to a device: a DMA to the NIC, or loopback's hand-off.
    pub(super) fn transmit(&mut self, ev: &Event, skb: &Skb<'_>, out: &mut Vec<Step>) {
        let linear = skb.linear_payload();
        if skb.data_len == 0 && linear == 0 {
            return; // a pure ACK, SYN or FIN
        }
        let zc = skb.shinfo_flags & SKBFL_ZEROCOPY_ENABLE != 0;
        let spliced = skb.shinfo_flags & SKBFL_SHARED_FRAG != 0;
        // The socket's owner (the probe looked it up), not the current task.
        let key = (skb.owner_pid, skb.sk);
        // A segment copied out for the device no longer says what the send's frags held.
        if linear == 0 {
            self.sends.transmitted(key, zc, spliced);
        }
        // Without send tracepoints the socket is learned here: a transmit in its
        // owner's own send call.
        // (Again at every send call: a socket may carry one file, then another.)
        if ev.pid == skb.owner_pid
            && self.syscalls.get(ev.tid).is_some()
            && let Some(id) = self.transfer_of_send(ev.pid, ev.tid, skb.sk)
        {
            self.transfer_by_sk.insert(key, id);
        }
        let Some(&id) = self.transfer_by_sk.get(&key) else {
            return;
        };
        let payload = skb.data_len as u64 + linear;
        let frags = match (zc, spliced) {
            (true, _) => Frags::ZeroCopy,
            (false, true) => Frags::Spliced,
            _ => Frags::Copied,
        };
        // Bytes this transmit resends make no step (`tcp_retransmit_skb` counts the
        // retransmit): told by the sequence number where the probe read it.
        let (bytes, resent) = if skb.header_len != 0 {
            let conn = self.transfers[id].dst;
            let bytes = self.xmits.fresh(key, conn, skb, payload);
            if bytes == 0 {
                return;
            }
            (bytes, false)
        } else {
            // Without one, by size: a retransmit reported before its transmit (a NIC's
            // queue sent it later).
            let owed = self
                .xmits
                .owed
                .get_mut(&key)
                .and_then(|o| o.iter().position(|&b| b == payload).map(|i| o.remove(i)));
            (payload, owed.is_some())
        };
        if linear > 0 {
            self.linear_copy(ev, skb, id, linear.min(bytes), out);
        }
        let facts = &mut self.transfers[id].facts;
        if !facts.devices.contains(skb.dev) {
            facts.devices.insert(skb.dev.to_string());
        }
        if !resent {
            *xmit_bytes(facts, frags) += bytes;
            if skb.header_len == 0 {
                self.xmits.last.insert(
                    key,
                    Sent {
                        bytes,
                        frags,
                        transfer: id,
                    },
                );
            }
        }
        if zc {
            self.xmits.transfer_by_zc_skb.insert(skb.skb, id);
        }
        let kind = if skb.dev_flags & IFF_LOOPBACK != 0 {
            facts.loopback_xmits += 1;
            StepKind::Handoff { bytes, peer: false }
        } else if skb.software_dev {
            // veth: the skb goes to the peer device's receive path, no DMA.
            facts.peer_xmits += 1;
            StepKind::Handoff { bytes, peer: true }
        } else {
            facts.nic_xmits += 1;
            StepKind::Copy {
                engine: Engine::Dma,
                from: if linear > 0 {
                    Buffer::Socket
                } else if zc {
                    Buffer::User
                } else if spliced {
                    Buffer::PageCache
                } else {
                    Buffer::Socket
                },
                to: Buffer::Nic,
                bytes,
            }
        };
        let s = step_of(ev, kind, Evidence::Observed(Seen::NetDevStartXmit));
        self.place(ev, skb.owner_pid, id, s, out);
    }

    /// `tcp_retransmit_skb`: `len` payload bytes of `owner`'s socket `sk` went out again,
    /// counted for the traced processes and the socket's transfer (the one retransmit
    /// count). Which transmit at the device was the resent one, which makes no step,
    /// [`Model::transmit`] tells by its sequence number; without one, by size: where the
    /// device sends at once (loopback) the transmit of the clone came first, and is taken
    /// back out of the bytes transmitted; else the next transmit of that size is the
    /// resent one. Failed attempts (`err`, 6.12+) sent nothing.
    pub(super) fn retransmitted(&mut self, owner: Pid, sk: Sk, len: u32, err: i32) {
        if err != 0 || len == 0 {
            return;
        }
        let (key, bytes) = ((owner, sk), len as u64);
        self.xmits.retransmits += 1;
        self.xmits.retransmitted_bytes += bytes;
        let id = if self.xmits.sent_end.contains_key(&key) {
            self.transfer_by_sk.get(&key).copied()
        } else {
            match self.xmits.last.get(&key) {
                Some(sent) if sent.bytes == bytes => {
                    let sent = *sent;
                    self.xmits.last.remove(&key);
                    let counted = xmit_bytes(&mut self.transfers[sent.transfer].facts, sent.frags);
                    *counted = counted.saturating_sub(bytes);
                    Some(sent.transfer)
                }
                _ => {
                    self.xmits.owed.entry(key).or_default().push(bytes);
                    self.transfer_by_sk.get(&key).copied()
                }
            }
        };
        if let Some(id) = id {
            let facts = &mut self.transfers[id].facts;
            facts.retransmits += 1;
            facts.retransmitted_bytes += bytes;
        }
    }

    /// The CPU copy of a linear skb's payload, made at the device (segmentation or
    /// linearization for a device without scatter-gather): from what the send put in the
    /// frags (page-cache pages for sendfile and splice, pinned user pages, or the socket's
    /// own pages) into the new skb's linear socket buffer.
    fn linear_copy(
        &mut self,
        ev: &Event,
        skb: &Skb<'_>,
        id: TransferId,
        bytes: u64,
        out: &mut Vec<Step>,
    ) {
        let key = (skb.owner_pid, skb.sk);
        let from = if skb.shinfo_flags & SKBFL_ZEROCOPY_ENABLE != 0 {
            Buffer::User
        } else if skb.shinfo_flags & SKBFL_SHARED_FRAG != 0 {
            Buffer::PageCache
        } else {
            self.sends.frags_hold(key).unwrap_or_else(|| {
                if self.transfers[id].ledger.page_ref_bytes > 0 {
                    Buffer::PageCache
                } else {
                    Buffer::Socket
                }
            })
        };
        let facts = &mut self.transfers[id].facts;
        facts.linear_xmits += 1;
        facts.linear_xmit_bytes += bytes;
        let s = step_of(
            ev,
            StepKind::Copy {
                engine: Engine::Cpu,
                from,
                to: Buffer::Socket,
                bytes,
            },
            Evidence::Observed(Seen::LinearXmit),
        );
        self.place(ev, skb.owner_pid, id, s, out);
    }

    /// A zero-copy skb delivered on loopback: the kernel copies the pinned pages first
    /// (skb_copy_ubufs), a copy the sender's transfer pays.
    pub(super) fn zerocopy_receive(
        &mut self,
        ev: &Event,
        skb: u64,
        data_len: u32,
        fexit: bool,
        owner_pid: Pid,
        out: &mut Vec<Step>,
    ) {
        let Some(id) = self.xmits.transfer_by_zc_skb.remove(&skb) else {
            return;
        };
        let facts = &mut self.transfers[id].facts;
        facts.deferred_copies += 1;
        facts.deferred_copy_bytes += data_len as u64;
        let s = step_of(
            ev,
            StepKind::Copy {
                engine: Engine::Cpu,
                from: Buffer::User,
                to: Buffer::Socket,
                bytes: data_len as u64,
            },
            if fexit {
                Evidence::Observed(Seen::FexitSkbCopyUbufs)
            } else {
                Evidence::Inferred(Inference::LoopbackCopiesPins)
            },
        );
        // Loopback delivers during the sender's own send call: the copy comes out after
        // the read() that call waited for, in time order.
        self.place(ev, owner_pid, id, s, out);
    }

    /// A step of transfer `id` seen in whatever task the kernel ran (a transmit, a
    /// loopback delivery), named by its owner `owner`: in the owner's own syscall on this thread it joins that call's
    /// steps and keeps its place among them; in any other task it is emitted at once.
    fn place(&mut self, ev: &Event, owner: Pid, id: TransferId, mut s: Step, out: &mut Vec<Step>) {
        s.transfer = Some(id);
        // The owner's step, whichever task the kernel ran it in.
        s.pid = owner;
        match self.syscalls.get_mut(ev.tid) {
            Some(sys) if ev.pid == owner => sys.steps.push(s),
            _ => self.emit(id, s, out),
        }
    }
}

/// The transmit facts' bytes for what the frags held.
fn xmit_bytes(facts: &mut super::Facts, frags: Frags) -> &mut u64 {
    match frags {
        Frags::ZeroCopy => &mut facts.xmit_zerocopy_bytes,
        Frags::Spliced => &mut facts.xmit_spliced_bytes,
        Frags::Copied => &mut facts.xmit_copied_bytes,
    }
}
