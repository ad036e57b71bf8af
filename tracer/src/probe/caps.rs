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
    hooks::{self, HOOKS, Tier},
    loader::Trials,
    plan::Caps,
    why::{FunctionLack, Lack, NoBtf},
};

/// The function the first fentry trial (fentry at all) is made on.
const FENTRY_TRIAL: &str = "tcp_sendmsg_locked";

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
        kernel: super::kernel_release(),
        ..Caps::default()
    };
    let btf = match KernelBtf::from_file(Path::new(VMLINUX_BTF)) {
        Ok(b) => Some(b),
        Err(e) => {
            caps.no_btf = Some(NoBtf(format!("{VMLINUX_BTF}: {e}")));
            None
        }
    };
    if let Some(btf) = &btf {
        caps.tracepoints = hooks::step_tracepoints()
            .filter(|tp| btf.has_tracepoint(tp))
            .map(str::to_string)
            .collect();
    }
    if !super::kprobes_built_in() {
        caps.kprobes = Some(Lack::NotBuiltIn {
            evidence: super::NO_KPROBE_PMU,
        });
    }
    let mut trials = try_fentry_at_all(&mut caps, try_fentry);
    if caps.kprobes.is_none() && trials.is_none() {
        // The PMU is there, but nothing was attached: not known to work.
        caps.kprobes = Some(Lack::NotTried {
            because: "needs root",
            seen: Some("the kprobe PMU is present"),
        });
    }
    if try_fentry {
        measure_program_types(&mut caps, trials.as_mut());
    } else {
        caps.ringbuf = Some(Lack::NotProbed {
            because: Some("needs root"),
        });
    }
    caps.functions = function_lacks(btf.as_ref());
    if let Some(t) = trials.as_mut() {
        try_each_function(&mut caps, t);
    }
    (caps, btf)
}

/// Whether an (empty) fentry program loads and attaches at all: sets `caps.fentry`, and
/// returns the trials where they could be set up.
fn try_fentry_at_all(caps: &mut Caps, try_fentry: bool) -> Option<Trials> {
    if caps.no_btf.is_some() {
        caps.fentry = Some(Lack::NoBtf);
        return None;
    }
    if !try_fentry {
        caps.fentry = Some(Lack::NotTried {
            because: "needs root",
            seen: None,
        });
        return None;
    }
    match Trials::new() {
        Err(e) => {
            caps.fentry = Some(Lack::TrialsUnavailable(e));
            None
        }
        Ok(mut t) => {
            caps.fentry = t.fentry(FENTRY_TRIAL).err().map(Lack::Refused);
            caps.fentry_tried_on = Some(FENTRY_TRIAL.into());
            Some(t)
        }
    }
}

/// BPF ring buffers and program types (aya's feature probes; `tp_btf` by loading the
/// sys_exit program).
fn measure_program_types(caps: &mut Caps, trials: Option<&mut Trials>) {
    caps.ringbuf = match aya::sys::is_map_supported(aya::maps::MapType::RingBuf) {
        Ok(true) => None,
        Ok(false) => Some(Lack::NoRingbuf),
        Err(e) => Some(Lack::ProbeFailed(e.to_string())),
    };
    use aya::programs::ProgramType as P;
    if let Some(t) = trials {
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
}

/// Why each kernel function the steps name cannot be hooked (absent from BTF, not a
/// kernel symbol, notrace); the others are left out.
fn function_lacks(btf: Option<&KernelBtf>) -> BTreeMap<String, FunctionLack> {
    let targets: BTreeSet<&str> = hooks::step_functions().collect();
    let syms = kallsyms(&targets);
    let ftrace = traceable(&targets);
    let mut functions = BTreeMap::new();
    for f in targets {
        let why = if let Some(btf) = btf
            && !btf.has_function(f)
        {
            Some(FunctionLack::NotInBtf { era: None })
        } else if syms.as_ref().is_some_and(|s| !s.contains(f)) {
            Some(FunctionLack::NotSymbol { era: None })
        } else if ftrace.as_ref().is_some_and(|t| !t.contains(f)) {
            Some(FunctionLack::Notrace)
        } else {
            None
        };
        if let Some(why) = why {
            functions.insert(f.to_string(), why);
        }
    }
    functions
}

/// Each function a hook of a usable tier names and this build has a program for: does
/// the kernel let it attach there? (A trampoline or probe on the others would sit on a
/// hot path for nothing.)
fn try_each_function(caps: &mut Caps, t: &mut Trials) {
    for tier in [Tier::Fentry, Tier::Kprobe] {
        let usable = match tier {
            Tier::Fentry => caps.fentry.is_none(),
            _ => caps.kprobes.is_none(),
        };
        if !usable {
            continue;
        }
        let built: BTreeSet<&str> = hooks::programs()
            .filter(|(h, _)| h.tier == tier)
            .map(|(h, _)| h.target)
            .collect();
        let targets: BTreeSet<&str> = HOOKS
            .iter()
            .filter(|h| h.tier == tier && !h.roles.is_empty())
            .map(|h| h.target)
            .filter(|f| !caps.functions.contains_key(*f) && built.contains(f))
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
