//! Writing events into the ring buffer, and counting those lost.

use aya_ebpf::{
    bindings::{BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_smp_processor_id, bpf_ktime_get_ns,
    },
};
use tracer_common::{DROP_RING_FULL, EVENT_ARGS, Event, NAME_LEN};

use crate::maps::{DROPS, EMITTED, EVENTS};

/// Counts one lost event in `DROPS` slot `why` (`DROP_RING_FULL`, `DROP_READ_FAILED`).
#[inline(always)]
pub(crate) fn count_drop(why: u32) {
    if let Some(slot) = DROPS.get_ptr_mut(why) {
        // SAFETY: a per-CPU slot is only touched by programs on this CPU.
        unsafe { *slot += 1 };
    }
}

/// Every this many events a CPU writes, its submit wakes the reader; the others do not (a
/// wakeup per event costs more than the event). The reader also looks every tick
/// (`source::kernel`), so a trickle arrives within one. Counted per CPU: asking the ring
/// how much is unread instead reads the reader's position, a cache line the reader keeps
/// writing, at every event.
const WAKEUP_EVERY: u64 = 1024;

/// Writes one event into the ring buffer, or counts a drop when it is full.
#[inline(always)]
pub(crate) fn emit(kind: u32, args: [u64; EVENT_ARGS], name: [u8; NAME_LEN]) {
    let pid_tgid = bpf_get_current_pid_tgid();
    match EVENTS.reserve::<Event>(0) {
        Some(mut entry) => {
            entry.write(Event {
                // SAFETY: helper calls without preconditions.
                ts_ns: unsafe { bpf_ktime_get_ns() },
                kind,
                // SAFETY: as above.
                cpu: unsafe { bpf_get_smp_processor_id() },
                tgid: (pid_tgid >> 32) as u32,
                tid: pid_tgid as u32,
                comm: bpf_get_current_comm().unwrap_or([0; NAME_LEN]),
                args,
                name,
            });
            let wake = match EMITTED.get_ptr_mut(0) {
                Some(n) => {
                    // SAFETY: a per-CPU slot is only touched by programs on this CPU.
                    unsafe {
                        *n += 1;
                        *n % WAKEUP_EVERY == 0
                    }
                }
                None => true,
            };
            let flags = if wake {
                BPF_RB_FORCE_WAKEUP
            } else {
                BPF_RB_NO_WAKEUP
            };
            entry.submit(flags as u64);
        }
        None => count_drop(DROP_RING_FULL),
    }
}

/// The `name` of an event kind that carries none.
pub(crate) const NO_NAME: [u8; NAME_LEN] = [0; NAME_LEN];
