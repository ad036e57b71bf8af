//! The maps the programs share with user space and with each other, under the names the
//! loader looks up.
//!
//! A process-context program looks the current tgid up in `TRACED` first
//! ([`current_traced`]) and returns at once when it is not there, so an untraced process
//! costs one hash lookup per event.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use tracer_common::{EVENTS_BYTES, FileKey, TRACED_FROM_EXEC};

/// Every event, for the user side's reader (`tracer_common::EVENTS_MAP`).
#[map(name = "EVENTS")]
pub(crate) static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// Lost events per CPU, by cause (`tracer_common::DROPS_MAP`).
#[map(name = "DROPS")]
pub(crate) static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(2, 0);

/// Events written per CPU, for the wakeup policy of `emit`.
#[map(name = "EMITTED")]
pub(crate) static EMITTED: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Traced processes (tgid -> `TRACED_FROM_EXEC` or 0), filled by the loader and by
/// `sched` (`tracer_common::TRACED_MAP`).
#[map(name = "TRACED")]
pub(crate) static TRACED: HashMap<u32, u32> = HashMap::with_max_entries(16384, 0);

/// Sockets a traced process sends on (`struct sock *` -> tgid): transmits run in any
/// task's context and are attributed through it.
#[map(name = "SOCKS")]
pub(crate) static SOCKS: LruHashMap<u64, u32> = LruHashMap::with_max_entries(16384, 0);

/// Block requests issued for a traced process (`struct request *` -> tgid): completions
/// run in interrupt context and are attributed through it.
#[map(name = "REQUESTS")]
pub(crate) static REQUESTS: LruHashMap<u64, u32> = LruHashMap::with_max_entries(16384, 0);

/// Files whose pages a traced process added to the page cache ((dev, ino) -> tgid), so
/// block requests kernel workers issue for them can be attributed.
#[map(name = "FILES")]
pub(crate) static FILES: LruHashMap<FileKey, u32> = LruHashMap::with_max_entries(1024, 0);

/// Zero-copy skbs of traced sockets seen at transmit (skb -> owner tgid), so their local
/// delivery (`netif_receive_skb`, where loopback copies them) can be attributed.
#[map(name = "ZC_SKBS")]
pub(crate) static ZC_SKBS: LruHashMap<u64, u32> = LruHashMap::with_max_entries(4096, 0);

/// Returns the tgid of the current task when its process is traced.
#[inline(always)]
pub(crate) fn current_traced() -> Option<u32> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    // SAFETY: the flags are copied out at once.
    match unsafe { TRACED.get(tgid) } {
        Some(flags) if *flags & TRACED_FROM_EXEC == 0 => Some(tgid),
        _ => None,
    }
}
