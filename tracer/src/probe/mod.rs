//! Loading the kernel programs: what this kernel has (BTF, tracepoints), the offsets the
//! programs need, and the attach itself.

pub mod btf;
pub mod caps;
pub mod hooks;
pub mod loader;
pub mod plan;
pub mod steps;
pub mod why;

pub use loader::{LoadOptions, ProbeError, Probes, Skipped};

use std::path::Path;

/// Where the kernel's own BTF lives.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
/// Where tracefs is mounted when we mount it.
pub const TRACEFS: &str = "/sys/kernel/tracing";

/// Whether this process may load and attach tracing programs: root, or CAP_BPF together
/// with CAP_PERFMON.
pub fn has_bpf_privileges() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    let Some(eff) = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    else {
        return false;
    };
    const CAP_SYS_ADMIN: u64 = 21;
    const CAP_PERFMON: u64 = 38;
    const CAP_BPF: u64 = 39;
    let has = |c: u64| eff & (1 << c) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

/// The running kernel's release (uname -r).
pub fn kernel_release() -> String {
    // SAFETY: utsname is plain bytes; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    let bytes: Vec<u8> = u
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// What shows that kprobes are not built in (see [`kprobes_built_in`]).
pub const NO_KPROBE_PMU: &str = "no kprobe PMU in /sys/bus/event_source/devices";

/// Whether kprobes are built into this kernel (its kprobe PMU exists).
pub fn kprobes_built_in() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe").exists()
}

/// The message for a user without the privileges to trace.
pub const PRIVILEGE_HINT: &str = "tracing needs root (or CAP_BPF and CAP_PERFMON): run it with sudo, e.g. `sudo tracer ...` or `cargo xtask run -- ...`";

/// Mounts tracefs at [`TRACEFS`] when it is not mounted (it is not at boot on some
/// kernels). The tp_btf programs do not need it, but users' tools (bpftool, perf) and the
/// tracepoint format files do. Returns whether it mounted it.
pub fn ensure_tracefs() -> std::io::Result<bool> {
    let events = Path::new(TRACEFS).join("events");
    if events.exists() {
        return Ok(false);
    }
    let src = c"tracefs";
    let target = c"/sys/kernel/tracing";
    // SAFETY: all pointers are valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            src.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(true)
    } else {
        Err(std::io::Error::last_os_error())
    }
}
