//! Kernel programs of the tracer: the tracepoint tier.
//!
//! Every program is a BTF-typed raw tracepoint (`tp_btf`), which this project's CI kernel
//! (6.18, no kprobes, fentry refused) allows. Struct fields are read with
//! `bpf_probe_read_kernel` at offsets resolved from the running kernel's BTF by user space
//! and passed in through the global `CONFIG` (aya has no CO-RE for Rust programs, and the
//! verifier refuses variable offsets on direct BTF pointer loads).
//!
//! Filtering happens here: a process-context program first looks the current tgid up in
//! `TRACED` and returns at once when it is not there, so an untraced process costs one
//! hash lookup per event. Transmit and block-completion events run in other tasks' or
//! interrupt context and are attributed through `SOCKS` (skb->sk) and `REQUESTS` (rq).
//!
//! One module per hook family, all built into this one object: `syscalls`, `sched`,
//! `tcp`, `xmit`, `retransmit`, `skb`, `filemap`, `write`, `block`, `io_uring`, and
//! `doctor`'s attach probes; the fentry and kprobe tiers' programs sit with the
//! tracepoints of their family. `maps` holds the maps, `emit` the ring buffer, `read` the
//! kernel struct readers.
#![no_std]
#![no_main]

use tracer_common::Config;

/// Offsets and switches, filled in by the loader (`EbpfLoader::override_global`).
#[unsafe(no_mangle)]
static CONFIG: Config = Config::zeroed();

/// Reads one `CONFIG` field. Volatile so the compiler does not fold the zero the object
/// file holds; the verifier sees the frozen value the loader wrote.
macro_rules! conf {
    ($field:ident) => {
        // SAFETY: CONFIG is a static of plain integers.
        unsafe { core::ptr::read_volatile(core::ptr::addr_of!($crate::CONFIG.$field)) }
    };
}

mod block;
mod doctor;
mod emit;
mod filemap;
mod io_uring;
mod maps;
mod read;
mod retransmit;
mod sched;
mod skb;
mod syscalls;
mod tcp;
mod write;
mod xmit;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
