//! The probe planner (pure): from what a kernel allows (`Caps`) and what this build has
//! programs for, choose for every step of KERNEL_PATHS.md the best hook of the table
//! (`probe::hooks`) — fentry/fexit, then kprobe/kretprobe, then a tracepoint — and say for
//! every better hook not used why not. `tracer doctor` prints the plan; the loader
//! attaches what it chooses ([`attach_choice`]).

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use serde::{Serialize, Serializer, ser::SerializeStruct as _};

use crate::model::Method;

use super::{
    hooks::{self, Hook, Role, Tier},
    steps::{Fallback, STEPS, Step},
    why::{FunctionLack, Lack, NoBtf, TrialError, Unusable, Unused},
};

/// What a kernel allows, as `probe::caps` measured it (or the loader found, or a test
/// made up).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Caps {
    pub kernel: String,
    /// `None` when the kernel has BTF.
    pub no_btf: Option<NoBtf>,
    /// fentry/fexit as a whole (BTF trampolines): refused here, or why not.
    pub fentry: Option<Lack>,
    /// kprobes as a whole: not built in, or why not.
    pub kprobes: Option<Lack>,
    /// BPF ring buffers (5.8+), which the tracer needs: `None` when supported.
    pub ringbuf: Option<Lack>,
    /// BPF program types and whether this kernel supports them ("yes", "no", or why it is
    /// not known; empty: not probed).
    pub program_types: BTreeMap<String, String>,
    /// Functions an fentry trial was refused on, and how (where fentry works elsewhere).
    pub fentry_refused: BTreeMap<String, TrialError>,
    /// Functions a kprobe trial was refused on, and how.
    pub kprobe_refused: BTreeMap<String, TrialError>,
    /// How many functions each tier was tried on (fentry, kprobe).
    pub tried: (usize, usize),
    /// The function the first fentry trial (fentry at all) was made on.
    pub fentry_tried_on: Option<String>,
    /// Tracepoints with BTF prototypes (`btf_trace_<name>`).
    pub tracepoints: BTreeSet<String>,
    /// Kernel functions: why one cannot be hooked (absent, inlined, notrace); absent from
    /// this map means it can.
    pub functions: BTreeMap<String, FunctionLack>,
    /// Tracepoints the loader's attach was refused on (`tracer doctor` does not try).
    #[serde(skip)]
    pub tracepoint_refused: BTreeMap<String, TrialError>,
}

impl Caps {
    /// The hooks of `tier` a trial (or the loader) was refused on.
    pub fn refused(&self, tier: Tier) -> &BTreeMap<String, TrialError> {
        match tier {
            Tier::Fentry => &self.fentry_refused,
            Tier::Kprobe => &self.kprobe_refused,
            Tier::Tracepoint => &self.tracepoint_refused,
        }
    }

    /// Records that the kernel refused `hook`.
    pub fn refuse(&mut self, hook: &Hook, why: TrialError) {
        let refused = match hook.tier {
            Tier::Fentry => &mut self.fentry_refused,
            Tier::Kprobe => &mut self.kprobe_refused,
            Tier::Tracepoint => &mut self.tracepoint_refused,
        };
        refused.insert(hook.target.to_string(), why);
    }
}

/// Hooks this build has kernel programs for.
#[derive(Clone, Debug, Default)]
pub struct Build {
    pub hooks: BTreeSet<(Tier, &'static str)>,
    /// Programs this build has but cannot attach on this kernel, and why (a struct layout
    /// or tracepoint prototype it cannot read).
    pub unusable: BTreeMap<(Tier, &'static str), Unusable>,
}

impl Build {
    /// This build's programs (the table's), none known to be unusable.
    pub fn programs() -> Self {
        Self {
            hooks: hooks::programs().map(|(h, _)| h.id()).collect(),
            unusable: BTreeMap::new(),
        }
    }

    /// A build of only these tracepoint programs.
    pub fn tracepoints(names: &[&'static str]) -> Self {
        Self {
            hooks: names.iter().map(|n| (Tier::Tracepoint, *n)).collect(),
            unusable: BTreeMap::new(),
        }
    }
}

/// A hook as a candidate for one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub hook: &'static Hook,
    /// What the step is, seen through this hook: observed, or only inferred.
    pub observes: bool,
    /// A kernel function whose presence means this hook does not see the step.
    pub unless: Option<&'static str>,
}

impl Candidate {
    fn new(hook: &'static Hook, role: &Role) -> Self {
        Self {
            hook,
            observes: role.observes,
            unless: role.unless,
        }
    }
}

impl Serialize for Candidate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Hook", 4)?;
        st.serialize_field("tier", &self.hook.tier)?;
        st.serialize_field("target", self.hook.target)?;
        st.serialize_field("observes", &self.observes)?;
        if let Some(unless) = self.unless {
            st.serialize_field("unless", unless)?;
        } else {
            st.skip_field("unless")?;
        }
        st.end()
    }
}

/// A step's choice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Planned {
    #[serde(skip)]
    pub id: Step,
    pub step: &'static str,
    pub methods: Vec<Method>,
    /// The hook used, if any.
    pub hook: Option<Candidate>,
    /// `observed` or `inferred`, and how.
    #[serde(serialize_with = "as_text")]
    pub evidence: PlanEvidence,
    /// Every better hook not used, and why.
    #[serde(serialize_with = "not_used_json")]
    pub not_used: Vec<(Candidate, Unused)>,
}

/// How a step is known with the hook the plan chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanEvidence {
    /// The hook sees the step itself.
    Observed,
    /// The hook lets the step be inferred, as the step's fallback says.
    Inferred(Fallback),
    /// No hook: the step is known only as its fallback says, or not at all.
    NoHook(Fallback),
}

impl fmt::Display for PlanEvidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Observed => f.write_str("observed"),
            Self::Inferred(fallback @ Fallback::Inferred(_)) => write!(f, "{fallback}"),
            Self::Inferred(Fallback::Otherwise(how)) => write!(f, "inferred: {how}"),
            Self::NoHook(fallback) => write!(f, "no hook: {fallback}"),
        }
    }
}

/// A value in JSON as its text (`Display`).
pub(crate) fn as_text<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// `not_used` in JSON: `[{"tier", "target", "why"}]`.
fn not_used_json<S: Serializer>(v: &[(Candidate, Unused)], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct NotUsed<'a> {
        tier: Tier,
        target: &'a str,
        why: &'a Unused,
    }
    s.collect_seq(v.iter().map(|(c, why)| NotUsed {
        tier: c.hook.tier,
        target: c.hook.target,
        why,
    }))
}

/// Why `hook` cannot be used on this kernel with this build (`unless`: for a step it
/// sees only on kernels without that function); `None` when it can.
fn refusal(
    hook: &Hook,
    unless: Option<&'static str>,
    caps: &Caps,
    build: &Build,
) -> Option<Unused> {
    match hook.tier {
        Tier::Fentry | Tier::Kprobe => {
            if let Some(why) = function_refusal(hook, caps) {
                return Some(why);
            }
            if let Some(other) = unless
                && present(caps, other)
            {
                return Some(Unused::GoesThrough {
                    function: other,
                    target: hook.target,
                });
            }
        }
        Tier::Tracepoint => {
            if !caps.tracepoints.contains(hook.target) {
                return Some(match hooks::other_name(hook.target) {
                    Some(here) if caps.tracepoints.contains(here) => Unused::Renamed {
                        tracepoint: hook.target,
                        note: hook.note,
                        here,
                    },
                    _ => Unused::TracepointMissing {
                        tracepoint: hook.target,
                        note: hook.note,
                    },
                });
            }
            if let Some(why) = caps.tracepoint_refused.get(hook.target) {
                return Some(Unused::Refused(why.clone()));
            }
        }
    }
    if let Some(why) = build.unusable.get(&hook.id()) {
        return Some(Unused::CannotAttach(why.clone()));
    }
    if !build.hooks.contains(&hook.id()) {
        return Some(Unused::NoProgram(hook.tier));
    }
    None
}

/// Why the kernel function of an fentry or kprobe hook cannot be hooked, if so.
fn function_refusal(hook: &Hook, caps: &Caps) -> Option<Unused> {
    let lack = caps.functions.get(hook.target);
    // A function the kernel does not have: that is the reason, whatever the tier.
    if let Some(lack) = lack.filter(|l| l.absent()) {
        return Some(Unused::Function(lack.clone()));
    }
    let tier_lack = match hook.tier {
        Tier::Fentry => {
            if let Some(why) = &caps.no_btf {
                return Some(Unused::NoBtf(why.clone()));
            }
            &caps.fentry
        }
        _ => &caps.kprobes,
    };
    if let Some(lack) = tier_lack {
        return Some(Unused::Tier {
            tier: hook.tier,
            lack: lack.clone(),
        });
    }
    if let Some(lack) = lack {
        return Some(Unused::Function(lack.clone()));
    }
    caps.refused(hook.tier)
        .get(hook.target)
        .map(|why| Unused::Refused(why.clone()))
}

/// Whether kernel function `name` exists (it may still be untraceable): `Caps::functions`
/// names the absent ones.
fn present(caps: &Caps, name: &str) -> bool {
    caps.functions.get(name).is_none_or(|why| !why.absent())
}

/// The plan for every step.
pub fn plan(caps: &Caps, build: &Build) -> Vec<Planned> {
    // Before 6.5 (no skb_splice_from_iter) sendfile and splice reach TCP through
    // ->sendpage, not tcp_sendmsg_locked: its hooks do not see them.
    let sendpage_era = !present(caps, "skb_splice_from_iter");
    STEPS
        .iter()
        .map(|spec| {
            let mut not_used = Vec::new();
            let mut chosen = None;
            for (hook, role) in hooks::candidates(spec.step) {
                let candidate = Candidate::new(hook, role);
                match refusal(hook, role.unless, caps, build) {
                    None => {
                        chosen = Some(candidate);
                        break;
                    }
                    Some(why) => not_used.push((candidate, why)),
                }
            }
            let evidence = match chosen {
                Some(c) if c.observes => PlanEvidence::Observed,
                Some(_) => PlanEvidence::Inferred(spec.fallback),
                None => PlanEvidence::NoHook(spec.fallback),
            };
            // Unless a ->sendpage hook sees the step in that era too.
            let through_sendmsg = hooks::candidates(spec.step)
                .any(|(h, _)| h.target == "tcp_sendmsg_locked")
                && !hooks::candidates(spec.step).any(|(h, _)| h.target == "do_tcp_sendpages");
            let methods = spec
                .methods
                .iter()
                .copied()
                .filter(|m| {
                    !(sendpage_era
                        && through_sendmsg
                        && matches!(*m, Method::Sendfile | Method::Splice))
                })
                .collect();
            Planned {
                id: spec.step,
                step: spec.name,
                methods,
                hook: chosen,
                evidence,
                not_used,
            }
        })
        .collect()
}

/// Whether the loader attaches `hook`'s program under `plan`: when the plan chose it for
/// a step, when a better hook chosen for its step leaves it attached, or when it serves
/// no step (the tracer's own bookkeeping: forks, execs, receives). Otherwise why not:
/// the kernel or the build does not allow it, or better tiers see all its steps.
pub fn attach_choice(
    hook: &'static Hook,
    plan: &[Planned],
    caps: &Caps,
    build: &Build,
) -> Result<(), Unused> {
    if let Some(why) = refusal(hook, None, caps, build) {
        return Err(why);
    }
    let mut better = None;
    let mut goes_through = None;
    for p in plan {
        let Some(role) = hook.role(p.id) else {
            continue;
        };
        if let Some(other) = role.unless.filter(|other| present(caps, other)) {
            // It does not see this step on this kernel.
            goes_through.get_or_insert(other);
            continue;
        }
        match p.hook {
            Some(c) if c.hook.id() == hook.id() => return Ok(()),
            Some(c) if c.hook.program.is_some_and(|p| p.keeps_worse) => return Ok(()),
            Some(c) => {
                better.get_or_insert(c.hook);
            }
            None => {}
        }
    }
    match (better, goes_through) {
        (Some(by), _) => Err(Unused::NotNeeded { by }),
        // It sees none of its steps here.
        (None, Some(function)) => Err(Unused::GoesThrough {
            function,
            target: hook.target,
        }),
        (None, None) => Ok(()),
    }
}

/// The hook of `tier` on `target` in the table.
#[cfg(test)]
pub(crate) fn find(tier: Tier, target: &str) -> Option<&'static Hook> {
    hooks::HOOKS
        .iter()
        .find(|h| h.tier == tier && h.target == target)
}

#[cfg(test)]
mod tests;
