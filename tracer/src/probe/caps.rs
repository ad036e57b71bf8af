//! What the running kernel allows, measured: BTF, lockdown, tracefs, whether fentry and
//! kprobes work at all (tried, where this build can), which tracepoints exist, and which
//! kernel functions can be hooked (in BTF, a kernel symbol, not notrace). A refusal is
//! data for the planner, not an error.

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    path::Path,
};

use super::{
    VMLINUX_BTF,
    btf::KernelBtf,
    loader,
    plan::{Caps, STEPS, Tier},
};

/// The kernel's lockdown mode ("none", "integrity", "confidentiality"), or "unknown".
pub fn lockdown() -> String {
    std::fs::read_to_string("/sys/kernel/security/lockdown")
        .ok()
        .and_then(|s| {
            let start = s.find('[')?;
            let end = s[start..].find(']')?;
            Some(s[start + 1..start + end].to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Kernel symbols (text and data) from /proc/kallsyms.
fn kallsyms() -> Option<HashSet<String>> {
    let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_whitespace().nth(2))
            // Module symbols are "name [module]"; local aliases like "name.cold" count as
            // the function's own.
            .map(|n| n.split('.').next().unwrap_or(n).to_string())
            .collect(),
    )
}

/// Functions ftrace can hook; `None` when the list cannot be read (it is root-only, and
/// refused with EPERM on this project's CI kernel).
fn traceable() -> Option<HashSet<String>> {
    for dir in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if let Ok(text) = std::fs::read_to_string(Path::new(dir).join("available_filter_functions"))
        {
            return Some(
                text.lines()
                    .filter_map(|l| l.split_whitespace().next())
                    .map(str::to_string)
                    .collect(),
            );
        }
    }
    None
}

/// Measures the running kernel. `try_fentry`: load and attach the fentry probe program
/// (needs root); without it, fentry is reported as not tried. The kernel's BTF comes back
/// too (when it has one), for the caller's own lookups.
pub fn measure(try_fentry: bool) -> (Caps, Option<KernelBtf>) {
    let mut caps = Caps {
        kernel: crate::demo::kernel_release(),
        ..Caps::default()
    };
    let btf = match KernelBtf::from_file(Path::new(VMLINUX_BTF)) {
        Ok(b) => Some(b),
        Err(e) => {
            caps.no_btf = Some(format!("{VMLINUX_BTF}: {e}"));
            None
        }
    };
    if let Some(btf) = &btf {
        for hook in STEPS.iter().flat_map(|s| s.hooks) {
            if hook.tier == Tier::Tracepoint && btf.has_tracepoint(hook.target) {
                caps.tracepoints.insert(hook.target.to_string());
            }
        }
    }
    if !Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        caps.kprobes = Some(
            "kprobes are not built into this kernel (no kprobe PMU in /sys/bus/event_source/devices)"
                .into(),
        );
    }
    caps.fentry = if caps.no_btf.is_some() {
        Some("fentry needs BTF".into())
    } else if !try_fentry {
        Some("not tried (needs root)".into())
    } else {
        match loader::try_fentry("tcp_sendmsg_locked") {
            Ok(()) => None,
            Err(e) => Some(format!("{e} (tried on tcp_sendmsg_locked)")),
        }
    };
    let syms = kallsyms();
    let ftrace = traceable();
    let targets: BTreeSet<&str> = STEPS
        .iter()
        .flat_map(|s| s.hooks)
        .filter(|h| h.tier != Tier::Tracepoint)
        .flat_map(|h| [Some(h.target), h.unless])
        .flatten()
        .collect();
    let mut functions = BTreeMap::new();
    for f in targets {
        let why = if let Some(btf) = &btf
            && !btf.has_function(f)
        {
            Some(format!(
                "{} (absent, or inlined everywhere)",
                super::plan::ABSENT_BTF
            ))
        } else if syms.as_ref().is_some_and(|s| !s.contains(f)) {
            Some(format!(
                "{} (absent, or inlined)",
                super::plan::ABSENT_SYMBOL
            ))
        } else if ftrace.as_ref().is_some_and(|t| !t.contains(f)) {
            Some("notrace: not in available_filter_functions".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            functions.insert(f.to_string(), why);
        }
    }
    caps.functions = functions;
    (caps, btf)
}
