//! Programs that do nothing: `tracer doctor` loads them to learn which attach types this
//! kernel allows.

use aya_ebpf::{
    macros::{fentry, kretprobe},
    programs::{FEntryContext, RetProbeContext},
};

/// Does nothing: `tracer doctor` loads it against a kernel function to learn whether this
/// kernel lets fentry programs attach at all (this project's CI kernel refuses them).
#[fentry(function = "tcp_sendmsg_locked")]
pub(crate) fn tracer_fentry_probe(_ctx: FEntryContext) -> u32 {
    0
}

/// Does nothing: `tracer doctor` attaches it to each kernel function this build's kprobe
/// tier uses, to learn whether this kernel lets a kretprobe attach there.
#[kretprobe]
pub(crate) fn tracer_kretprobe_probe(_ctx: RetProbeContext) -> u32 {
    0
}
