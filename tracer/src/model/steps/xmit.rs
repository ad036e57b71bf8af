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

/// The zero-copy skbs transmitted, until loopback delivers them.
#[derive(Default)]
pub(super) struct Xmits {
    /// Zero-copy skb -> the transfer that transmitted it (loopback copies it later).
    transfer_by_zc_skb: HashMap<u64, TransferId>,
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
        let facts = &mut self.transfers[id].facts;
        if !facts.devices.contains(skb.dev) {
            facts.devices.insert(skb.dev.to_string());
        }
        match (zc, spliced) {
            (true, _) => facts.xmit_zerocopy_bytes += bytes,
            (false, true) => facts.xmit_spliced_bytes += bytes,
            _ => facts.xmit_copied_bytes += bytes,
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
