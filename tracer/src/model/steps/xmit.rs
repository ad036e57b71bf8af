//! Transmits (`net_dev_start_xmit`) and loopback's deliveries of zero-copy skbs: keyed by
//! the socket's owner and `sk`, and by skb, never by the current task (softirq runs them in
//! whatever task is current).

use std::collections::HashMap;

use super::{Model, Pid, Sk, TransferId, step_of};
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
}

/// What an skb's frags held, as the transmit facts count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frags {
    Copied,
    Spliced,
    ZeroCopy,
}

/// A socket's last transmit with payload: a retransmit reported after it is that one.
#[derive(Clone, Copy)]
struct Sent {
    bytes: u64,
    payload: Frags,
    transfer: TransferId,
}

/// The zero-copy skbs transmitted, until loopback delivers them; the last transmit of
/// each socket and the retransmits not matched to one yet.
#[derive(Default)]
pub(super) struct Xmits {
    /// Zero-copy skb -> the transfer that transmitted it (loopback copies it later).
    transfer_by_zc_skb: HashMap<u64, TransferId>,
    /// (owner, `sk`) -> its last transmit with payload, until a retransmit takes it.
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
}

impl Model {
    /// An skb with payload handed to a device: a DMA to the NIC, or loopback's hand-off.
    pub(super) fn transmit(&mut self, ev: &Event, skb: &Skb<'_>, out: &mut Vec<Step>) {
        if skb.data_len == 0 {
            return; // a pure ACK, SYN or FIN
        }
        let zc = skb.shinfo_flags & SKBFL_ZEROCOPY_ENABLE != 0;
        let spliced = skb.shinfo_flags & SKBFL_SHARED_FRAG != 0;
        // The socket's owner (the probe looked it up), not the current task.
        let key = (skb.owner_pid, skb.sk);
        self.sends.transmitted(key, zc, spliced);
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
        let bytes = skb.data_len as u64;
        let payload = match (zc, spliced) {
            (true, _) => Frags::ZeroCopy,
            (false, true) => Frags::Spliced,
            _ => Frags::Copied,
        };
        // A retransmit reported before its transmit (a NIC's queue sent it later).
        let owed = self
            .xmits
            .owed
            .get_mut(&key)
            .and_then(|o| o.iter().position(|&b| b == bytes).map(|i| o.remove(i)));
        let facts = &mut self.transfers[id].facts;
        if !facts.devices.contains(skb.dev) {
            facts.devices.insert(skb.dev.to_string());
        }
        if owed.is_some() {
            facts.retransmits += 1;
            facts.retransmitted_bytes += bytes;
        } else {
            *xmit_bytes(facts, payload) += bytes;
            self.xmits.last.insert(
                key,
                Sent {
                    bytes,
                    payload,
                    transfer: id,
                },
            );
        }
        if zc {
            self.xmits.transfer_by_zc_skb.insert(skb.skb, id);
        }
        let kind = if skb.dev_flags & IFF_LOOPBACK != 0 {
            facts.loopback_xmits += 1;
            StepKind::Handoff { bytes }
        } else {
            facts.nic_xmits += 1;
            StepKind::Copy {
                engine: Engine::Dma,
                from: if zc {
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

    /// `tcp_retransmit_skb`: `len` payload bytes of `owner`'s socket `sk` went out again.
    /// The transmit of the clone came first where the device sends at once (loopback): it
    /// is taken back out of the bytes transmitted; else the next transmit of that size is
    /// the retransmit. Failed attempts (`err`, 6.12+) sent nothing.
    pub(super) fn retransmitted(&mut self, owner: Pid, sk: Sk, len: u32, err: i32) {
        if err != 0 || len == 0 {
            return;
        }
        let (key, bytes) = ((owner, sk), len as u64);
        self.xmits.retransmits += 1;
        self.xmits.retransmitted_bytes += bytes;
        match self.xmits.last.get(&key) {
            Some(sent) if sent.bytes == bytes => {
                let sent = *sent;
                self.xmits.last.remove(&key);
                let facts = &mut self.transfers[sent.transfer].facts;
                let counted = xmit_bytes(facts, sent.payload);
                *counted = counted.saturating_sub(bytes);
                facts.retransmits += 1;
                facts.retransmitted_bytes += bytes;
            }
            _ => self.xmits.owed.entry(key).or_default().push(bytes),
        }
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

/// The transmit facts' bytes for `payload`.
fn xmit_bytes(facts: &mut super::Facts, payload: Frags) -> &mut u64 {
    match payload {
        Frags::ZeroCopy => &mut facts.xmit_zerocopy_bytes,
        Frags::Spliced => &mut facts.xmit_spliced_bytes,
        Frags::Copied => &mut facts.xmit_copied_bytes,
    }
}
