//! What the running kernel allows, measured: BTF, lockdown, tracefs, BPF ring buffers and
//! program types, whether fentry and kprobes work at all and on each function the plan
//! names (tried with empty programs, where this build can), which tracepoints exist, and
//! which kernel functions can be hooked (in BTF, a kernel symbol, not notrace). A refusal
//! is data for the planner, not an error.

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

/// The kernel's lockdown mode ("none", "integrity", "confidentiality"), or why it is not
/// known.
pub fn lockdown() -> String {
    const PATH: &str = "/sys/kernel/security/lockdown";
    match std::fs::read_to_string(PATH) {
        Ok(s) => s
            .find('[')
            .and_then(|start| {
                let end = s[start..].find(']')?;
                Some(s[start + 1..start + end].to_string())
            })
            .unwrap_or_else(|| format!("unknown ({PATH} reads {:?})", s.trim())),
        Err(_) if !Path::new("/sys/kernel/security/lsm").exists() => {
            "unknown (securityfs is not mounted at /sys/kernel/security)".into()
        }
        Err(e) => format!("unknown ({PATH}: {e}; no lockdown LSM?)"),
    }
}

/// Whether tracefs is mounted (from /proc/mounts: its files are root-only, so a
/// non-root caller cannot tell by looking).
pub fn tracefs_mounted() -> bool {
    std::fs::read_to_string("/proc/mounts").is_ok_and(|m| {
        m.lines()
            .any(|l| l.split_whitespace().nth(2) == Some("tracefs"))
    })
}

/// Which of `wanted` are kernel symbols (text and data) in /proc/kallsyms.
fn kallsyms<'a>(wanted: &BTreeSet<&'a str>) -> Option<HashSet<&'a str>> {
    let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_whitespace().nth(2))
            // Module symbols are "name [module]"; local aliases like "name.cold" count as
            // the function's own.
            .filter_map(|n| wanted.get(n.split('.').next().unwrap_or(n)).copied())
            .collect(),
    )
}

/// Which of `wanted` ftrace can hook; `None` when the list cannot be read (it is
/// root-only, and refused with EPERM on this project's CI kernel).
fn traceable<'a>(wanted: &BTreeSet<&'a str>) -> Option<HashSet<&'a str>> {
    for dir in [super::TRACEFS, "/sys/kernel/debug/tracing"] {
        if let Ok(text) = std::fs::read_to_string(Path::new(dir).join("available_filter_functions"))
        {
            return Some(
                text.lines()
                    .filter_map(|l| wanted.get(l.split_whitespace().next()?).copied())
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
    if !super::kprobes_built_in() {
        caps.kprobes = Some(
            "kprobes are not built into this kernel (no kprobe PMU in /sys/bus/event_source/devices)"
                .into(),
        );
    }
    let mut trials = None;
    caps.fentry = if caps.no_btf.is_some() {
        Some("fentry needs BTF".into())
    } else if !try_fentry {
        Some("not tried (needs root)".into())
    } else {
        match loader::Trials::new() {
            Err(e) => Some(format!("not tried: {e}")),
            Ok(mut t) => {
                let r = t.fentry("tcp_sendmsg_locked");
                trials = Some(t);
                caps.fentry_tried_on = Some("tcp_sendmsg_locked".into());
                r.err()
            }
        }
    };
    if caps.kprobes.is_none() && trials.is_none() {
        // The PMU is there, but nothing was attached: not known to work.
        caps.kprobes = Some("not tried (needs root); the kprobe PMU is present".into());
    }
    if try_fentry {
        caps.ringbuf = match aya::sys::is_map_supported(aya::maps::MapType::RingBuf) {
            Ok(true) => None,
            Ok(false) => Some("not supported (BPF ring buffers need 5.8+)".into()),
            Err(e) => Some(format!("could not probe: {e}")),
        };
        use aya::programs::ProgramType as P;
        if let Some(t) = trials.as_mut() {
            caps.program_types.insert(
                "tp_btf".into(),
                match t.tp_btf() {
                    Ok(()) => "yes".into(),
                    Err(e) => format!("no: {e}"),
                },
            );
        }
        for (name, ty) in [("kprobe", P::KProbe), ("raw_tracepoint", P::RawTracePoint)] {
            let answer = match aya::sys::is_program_supported(ty) {
                Ok(true) => "yes".to_string(),
                Ok(false) => "no".to_string(),
                Err(e) => format!("unknown (the probe failed: {e})"),
            };
            caps.program_types.insert(name.to_string(), answer);
        }
    } else {
        caps.ringbuf = Some("not probed (needs root)".into());
    }
    let targets: BTreeSet<&str> = STEPS
        .iter()
        .flat_map(|s| s.hooks)
        .filter(|h| h.tier != Tier::Tracepoint)
        .flat_map(|h| [Some(h.target), h.unless])
        .flatten()
        .collect();
    let syms = kallsyms(&targets);
    let ftrace = traceable(&targets);
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
    // Each function a hook of a usable tier names: does the kernel let it attach there?
    if let Some(t) = trials.as_mut() {
        for tier in [Tier::Fentry, Tier::Kprobe] {
            let usable = match tier {
                Tier::Fentry => caps.fentry.is_none(),
                _ => caps.kprobes.is_none(),
            };
            if !usable {
                continue;
            }
            // The functions this build has programs for (a trampoline or probe on the
            // others would sit on a hot path for nothing).
            let built = match tier {
                Tier::Fentry => loader::built_fexits(),
                _ => loader::built_kprobes(),
            };
            let targets: BTreeSet<&str> = STEPS
                .iter()
                .flat_map(|s| s.hooks)
                .filter(|h| h.tier == tier && !caps.functions.contains_key(h.target))
                .map(|h| h.target)
                .filter(|f| built.contains(f))
                .collect();
            for f in targets {
                if tier == Tier::Fentry && caps.fentry_tried_on.as_deref() == Some(f) {
                    // Tried already, and attached (fentry is usable).
                    caps.tried.0 += 1;
                    continue;
                }
                let (result, refused, tried) = match tier {
                    Tier::Fentry => (t.fentry(f), &mut caps.fentry_refused, &mut caps.tried.0),
                    _ => (t.kprobe(f), &mut caps.kprobe_refused, &mut caps.tried.1),
                };
                *tried += 1;
                if let Err(why) = result {
                    refused.insert(f.to_string(), why);
                }
            }
        }
    }
    (caps, btf)
}
