//! Loads the embedded eBPF object, fills in the kernel layout, and attaches what the plan
//! chooses on this kernel (`probe::plan` over the table of `probe::hooks`), planning again
//! when the kernel refuses a program; the others are skipped and reported.
//!
//! Dropping [`Probes`] detaches and unloads everything: aya closes the link and program
//! file descriptors, so nothing of ours stays in the kernel after the tracer exits.

mod attach;
mod config;
mod trials;

use std::{collections::BTreeSet, fmt};

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{HashMap, MapData, PerCpuArray, RingBuf},
};
use tracer_common::{
    CONFIG_GLOBAL, DROP_READ_FAILED, DROP_RING_FULL, DROPS_MAP, EVENTS_MAP, NAME_LEN,
    TRACED_FROM_EXEC, TRACED_MAP,
};

pub use self::{config::build, trials::Trials};
use super::{
    btf::KernelBtf,
    hooks::{self, Hook, Program, Tier},
    plan::{self, Build, Caps},
    why::{FunctionLack, Lack, Unused},
};
use crate::event::KernelConsts;

/// The kernel programs, built by `build.rs` (empty when bpf-linker was missing).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));

/// Errors a caller must tell apart.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "this tracer was built without its eBPF programs (bpf-linker was not on PATH, or \
         AYA_BUILD_SKIP was set, at build time): run `cargo xtask setup`, then rebuild with \
         `cargo xtask build`"
    )]
    NotBuilt,
    #[error("{}", super::PRIVILEGE_HINT)]
    Permission,
    /// `demo` without the privileges: the lesson needs none.
    #[error(
        "{}; without root, `tracer lesson` plays the same methods from the textbook model",
        super::PRIVILEGE_HINT
    )]
    DemoPermission,
    #[error(
        "this kernel has no BTF at {path} (CONFIG_DEBUG_INFO_BTF): the tracer needs it to read kernel structs ({reason})"
    )]
    NoBtf { path: String, reason: String },
    #[error("this kernel cannot run the tracer: {0}")]
    Unsupported(String),
    #[error(
        "the kernel verifier rejected program {program} (tracepoint {tracepoint}): {error}\n--- end of the verifier log ---\n{log_tail}"
    )]
    Verifier {
        program: &'static str,
        tracepoint: &'static str,
        error: String,
        log_tail: String,
    },
    #[error("loading the eBPF object failed: {0}")]
    Load(String),
    #[error("attaching {program} to tracepoint {tracepoint} failed: {error}")]
    Attach {
        program: &'static str,
        tracepoint: &'static str,
        error: String,
    },
}

/// What to trace.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Trace children of traced processes (added in the kernel at fork).
    pub follow_forks: bool,
    /// Also start tracing any process that execs with this comm (at most 15 bytes).
    pub comm: Option<String>,
}

/// A program that was not attached, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub hook: &'static Hook,
    pub why: Unused,
    /// The kernel has this tracepoint or function (it was skipped for another reason: a
    /// layout, a refusal, a better tier), as opposed to lacking it.
    pub in_kernel: bool,
}

impl Skipped {
    /// The reason, as the attach report says it.
    pub fn reason(&self) -> SkipReason<'_> {
        SkipReason(self)
    }
}

impl fmt::Display for Skipped {
    /// The attach report's line: "fexit:filemap_read: fexit refused with EPERM at program
    /// load".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.hook, self.reason())
    }
}

/// Why a program was skipped, in the attach report's words (which name the program, where
/// `tracer doctor` names a step's hook).
pub struct SkipReason<'a>(&'a Skipped);

impl fmt::Display for SkipReason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = self.0.hook.target;
        match &self.0.why {
            Unused::Function(_) => write!(f, "{target} is not in this kernel"),
            Unused::Tier {
                lack: Lack::NotBuiltIn { .. },
                ..
            } => f.write_str("kprobes are not built into this kernel"),
            Unused::Refused(e) => write!(f, "{e}"),
            Unused::TracepointMissing { .. } => {
                write!(f, "tracepoint {target} is not in this kernel")
            }
            Unused::Renamed { here, .. } => {
                write!(f, "not in this kernel under this name: it is {here} here")
            }
            Unused::CannotAttach(why) => write!(f, "{why}"),
            other => write!(f, "{other}"),
        }
    }
}

/// The order programs are loaded in: best tier first, so that a refusal moves a step to a
/// worse hook before that hook's fate is decided.
const ATTACH_ORDER: [Tier; 3] = [Tier::Fentry, Tier::Kprobe, Tier::Tracepoint];

/// The order the attach report lists them in: fexit programs, tracepoints, kretprobes.
const REPORT_ORDER: [Tier; 3] = [Tier::Fentry, Tier::Tracepoint, Tier::Kprobe];

/// This build's programs of `tiers`, tier by tier, in the table's order.
fn programs_of(tiers: [Tier; 3]) -> impl Iterator<Item = (&'static Hook, &'static Program)> {
    tiers
        .into_iter()
        .flat_map(|t| hooks::programs().filter(move |(h, _)| h.tier == t))
}

/// What the loader knows of the kernel before it tries anything: which tracepoints and
/// functions BTF has, and whether kprobes are built in. Each tier is assumed to work
/// until the kernel refuses one of its programs.
fn caps_from_btf(kbtf: &KernelBtf) -> Caps {
    let mut caps = Caps::default();
    for hook in hooks::HOOKS {
        if hook.tier == Tier::Tracepoint {
            if kbtf.has_tracepoint(hook.target) {
                caps.tracepoints.insert(hook.target.to_string());
            }
            continue;
        }
        let functions =
            std::iter::once(hook.target).chain(hook.roles.iter().filter_map(|r| r.unless));
        for f in functions.filter(|f| !kbtf.has_function(f)) {
            caps.functions
                .insert(f.to_string(), FunctionLack::NotInBtf { era: None });
        }
    }
    if !super::kprobes_built_in() {
        caps.kprobes = Some(Lack::NotBuiltIn {
            evidence: super::NO_KPROBE_PMU,
        });
    }
    caps
}

/// The loaded and attached programs and their maps.
pub struct Probes {
    ebpf: Ebpf,
    /// Hooks attached, in the attach report's order.
    pub attached: Vec<&'static Hook>,
    /// Programs this kernel lacks or refused, or that a better tier made unnecessary,
    /// with the reason.
    pub skipped: Vec<Skipped>,
    /// Kernel constants the decoder needs.
    pub consts: KernelConsts,
}

fn verifier_tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn is_permission_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && matches!(io.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
        {
            return true;
        }
        cur = err.source();
    }
    false
}

impl Probes {
    /// Loads and attaches the programs this kernel supports.
    pub fn load(opts: &LoadOptions) -> Result<Self, ProbeError> {
        if OBJECT.is_empty() {
            return Err(ProbeError::NotBuilt);
        }
        if !cfg!(target_arch = "x86_64") {
            return Err(ProbeError::Unsupported(
                "only x86_64 is supported so far (syscall arguments are read from x86 pt_regs)"
                    .into(),
            ));
        }
        if !super::has_bpf_privileges() {
            return Err(ProbeError::Permission);
        }
        let path = super::VMLINUX_BTF;
        let kbtf =
            KernelBtf::from_file(std::path::Path::new(path)).map_err(|e| ProbeError::NoBtf {
                path: path.into(),
                reason: e.to_string(),
            })?;
        let aya_btf = Btf::from_sys_fs().map_err(|e| ProbeError::NoBtf {
            path: path.into(),
            reason: e.to_string(),
        })?;

        let config::Resolved {
            config: mut kconfig,
            missing,
        } = config::resolve_config(&kbtf);
        kconfig.follow_forks = opts.follow_forks as u32;
        if let Some(comm) = &opts.comm {
            let bytes = comm.as_bytes();
            let n = bytes.len().min(NAME_LEN - 1);
            kconfig.target_comm[..n].copy_from_slice(&bytes[..n]);
            kconfig.match_comm = 1;
        }

        let mut ebpf = EbpfLoader::new()
            .btf(Some(&aya_btf))
            .override_global(CONFIG_GLOBAL, &kconfig, true)
            .load(OBJECT)
            .map_err(|e| {
                if is_permission_error(&e) {
                    ProbeError::Permission
                } else {
                    ProbeError::Load(e.to_string())
                }
            })?;

        let mut build = Build::programs();
        config::build_on(&mut build, &kbtf, &missing);
        let mut caps = caps_from_btf(&kbtf);
        let attached = attach_the_plan(&mut ebpf, &mut caps, &build, &aya_btf)?;
        let (attached, skipped) = report(&attached, &caps, &build, &kbtf)?;
        Ok(Self {
            ebpf,
            attached,
            skipped,
            consts: config::kernel_consts(&kbtf),
        })
    }

    /// Starts tracing a process (by tgid).
    pub fn trace_pid(&mut self, tgid: u32) -> anyhow::Result<()> {
        self.insert_traced(tgid, 0)
    }

    /// Traces a process from its next exec on (a command we forked and hold).
    pub fn trace_pid_from_exec(&mut self, tgid: u32) -> anyhow::Result<()> {
        self.insert_traced(tgid, TRACED_FROM_EXEC)
    }

    /// The processes (tgids) traced now: those given, and their children when forks are
    /// followed. On kernels before 6.16 (no `group_dead` at exit) a process that exited
    /// stays until the trace ends, and its pid may have been reused since.
    pub fn traced(&self) -> anyhow::Result<Vec<u32>> {
        let map = self
            .ebpf
            .map(TRACED_MAP)
            .ok_or_else(|| anyhow::anyhow!("map {TRACED_MAP} missing"))?;
        let traced: HashMap<_, u32, u32> = HashMap::try_from(map)?;
        // A key the kernel removes while this reads is skipped, not an error.
        Ok(traced.keys().filter_map(Result::ok).collect())
    }

    fn insert_traced(&mut self, tgid: u32, flags: u32) -> anyhow::Result<()> {
        let map = self
            .ebpf
            .map_mut(TRACED_MAP)
            .ok_or_else(|| anyhow::anyhow!("map {TRACED_MAP} missing"))?;
        let mut traced: HashMap<_, u32, u32> = HashMap::try_from(map)?;
        traced.insert(tgid, flags, 0)?;
        Ok(())
    }

    /// Takes the event ring buffer (once).
    pub fn take_events(&mut self) -> anyhow::Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map(EVENTS_MAP)
            .ok_or_else(|| anyhow::anyhow!("map {EVENTS_MAP} missing or already taken"))?;
        Ok(RingBuf::try_from(map)?)
    }

    /// Events lost in the kernel: (ring buffer full, a kernel memory read failed).
    pub fn drops(&self) -> anyhow::Result<(u64, u64)> {
        let map = self
            .ebpf
            .map(DROPS_MAP)
            .ok_or_else(|| anyhow::anyhow!("map {DROPS_MAP} missing"))?;
        let drops: PerCpuArray<_, u64> = PerCpuArray::try_from(map)?;
        let sum = |slot: u32| -> anyhow::Result<u64> { Ok(drops.get(&slot, 0)?.iter().sum()) };
        Ok((sum(DROP_RING_FULL)?, sum(DROP_READ_FAILED)?))
    }
}

/// Attaches what the plan chooses, one program at a time, best tier first; a program the
/// kernel refuses is recorded in `caps` and the plan made again, so its steps move to
/// their next hook (an fexit program refused: its tracepoint is needed after all).
/// Returns the hooks attached.
fn attach_the_plan(
    ebpf: &mut Ebpf,
    caps: &mut Caps,
    build: &Build,
    btf: &Btf,
) -> Result<BTreeSet<(Tier, &'static str)>, ProbeError> {
    let mut attached = BTreeSet::new();
    let mut tried = BTreeSet::new();
    loop {
        let plan = plan::plan(caps, build);
        let next = programs_of(ATTACH_ORDER).find(|(hook, _)| {
            !tried.contains(&hook.id()) && plan::attach_choice(hook, &plan, caps, build).is_ok()
        });
        let Some((hook, program)) = next else {
            return Ok(attached);
        };
        tried.insert(hook.id());
        match attach::attach(ebpf, hook, program, btf)? {
            Ok(()) => {
                attached.insert(hook.id());
            }
            Err(why) => caps.refuse(hook, why),
        }
    }
}

/// The attach report: the hooks attached and the programs skipped, with the reason, in
/// [`REPORT_ORDER`]. A required program skipped stops the tracer.
fn report(
    attached: &BTreeSet<(Tier, &'static str)>,
    caps: &Caps,
    build: &Build,
    kbtf: &KernelBtf,
) -> Result<(Vec<&'static Hook>, Vec<Skipped>), ProbeError> {
    let plan = plan::plan(caps, build);
    let mut hooks = Vec::new();
    let mut skipped = Vec::new();
    for (hook, program) in programs_of(REPORT_ORDER) {
        if attached.contains(&hook.id()) {
            hooks.push(hook);
            continue;
        }
        // Not attached: refused, or not chosen (the plan says why).
        let Err(why) = plan::attach_choice(hook, &plan, caps, build) else {
            continue;
        };
        let skip = Skipped {
            hook,
            why,
            in_kernel: match hook.tier {
                Tier::Tracepoint => kbtf.has_tracepoint(hook.target),
                _ => kbtf.has_function(hook.target),
            },
        };
        if program.required {
            return Err(ProbeError::Unsupported(skip.reason().to_string()));
        }
        skipped.push(skip);
    }
    Ok((hooks, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_tail_keeps_the_last_lines() {
        let log = "a\n\nb\nc\nd\n";
        assert_eq!(verifier_tail(log, 2), "c\nd");
        assert_eq!(verifier_tail(log, 10), "a\nb\nc\nd");
    }

    #[test]
    fn a_renamed_tracepoint_is_skipped_under_the_name_this_kernel_does_not_use() {
        let btf = crate::probe::btf::running_kernel_btf();
        let (old, new) = hooks::RENAMED[0];
        let (absent, present) = if btf.has_tracepoint(new) {
            (old, new)
        } else {
            (new, old)
        };
        let caps = caps_from_btf(&btf);
        let build = build(Some(&btf));
        let hook = plan::find(Tier::Tracepoint, absent).unwrap();
        let why = plan::attach_choice(hook, &plan::plan(&caps, &build), &caps, &build).unwrap_err();
        let skip = Skipped {
            hook,
            why,
            in_kernel: false,
        };
        assert_eq!(
            skip.reason().to_string(),
            format!("not in this kernel under this name: it is {present} here")
        );
    }
}
