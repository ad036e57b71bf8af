//! Why a hook is not used, as types: what the kernel lacks or refused, what this build
//! cannot do there, and what a better tier already sees. Code decides on the variants;
//! `tracer doctor` (text and JSON) and the attach report print their `Display`.

use std::fmt;

use serde::{Serialize, Serializer};

use super::{
    btf::BtfLookupError,
    hooks::{Hook, Tier},
};

/// Serializes a reason as the sentence its `Display` says.
pub(super) fn as_text<T: fmt::Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// The kernel has no BTF: the error reading it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct NoBtf(pub String);

impl fmt::Display for NoBtf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where in a program's life the kernel answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    ProgramLoad,
    Attach,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ProgramLoad => "program load",
            Self::Attach => "attach",
        })
    }
}

/// What the kernel (or aya, on its way there) answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A refusal with this errno.
    Errno(i32),
    /// A refusal by an I/O error without an errno (its words).
    Io(String),
    /// Another failure, in aya's words.
    Failed(String),
}

/// How one program was refused: "refused with EPERM at program load".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub at: Stage,
    pub answer: Answer,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.answer {
            Answer::Errno(n) => write!(f, "refused with {} at {}", errno_name(*n), self.at),
            Answer::Io(e) => write!(f, "refused with {e} at {}", self.at),
            Answer::Failed(e) => write!(f, "failed at {}: {e}", self.at),
        }
    }
}

/// The errno's name where it is one the kernel gives tracing programs.
fn errno_name(n: i32) -> String {
    match n {
        libc::EPERM => "EPERM".into(),
        libc::EACCES => "EACCES".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::ENOENT => "ENOENT".into(),
        524 => "ENOTSUPP".into(),
        n => format!("errno {n}"),
    }
}

/// Why one program (a trial's empty one, or one of the tracer's) did not load and attach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrialError {
    /// The kernel's refusal; `by` names the program type where the report says it
    /// ("kprobe", "fexit", "kretprobe"; the fentry trial's is said without).
    Refused {
        by: Option<&'static str>,
        refusal: Refusal,
    },
    /// A tracepoint the kernel would not attach (aya's words).
    AttachRefused(String),
    /// Anything else, in its own words (the program missing from this build's object, or
    /// not of the type asked for).
    Other(String),
}

impl fmt::Display for TrialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused {
                by: Some(by),
                refusal,
            } => write!(f, "{by} {refusal}"),
            Self::Refused { by: None, refusal } => write!(f, "{refusal}"),
            Self::AttachRefused(e) => write!(f, "attach refused: {e}"),
            Self::Other(e) => f.write_str(e),
        }
    }
}

impl Serialize for TrialError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        as_text(self, s)
    }
}

/// Why a probe tier (fentry, kprobes) or BPF ring buffers cannot be used, or why that is
/// not known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lack {
    /// fentry needs the kernel's BTF, and there is none.
    NoBtf,
    /// The kernel refused the empty probe program.
    Refused(TrialError),
    /// Not built into this kernel; what shows it.
    NotBuiltIn { evidence: &'static str },
    /// BPF ring buffers are not supported (5.8+).
    NoRingbuf,
    /// Asking the kernel failed.
    ProbeFailed(String),
    /// Not tried (unknown): why, and what is known without trying.
    NotTried {
        because: &'static str,
        seen: Option<&'static str>,
    },
    /// Not tried (unknown): the trials could not be set up.
    TrialsUnavailable(String),
    /// Not probed (unknown), and why.
    NotProbed { because: Option<&'static str> },
}

impl Lack {
    /// Whether this is an answer (no) rather than an unknown.
    pub fn known(&self) -> bool {
        !matches!(
            self,
            Self::NotTried { .. } | Self::TrialsUnavailable(_) | Self::NotProbed { .. }
        )
    }
}

impl fmt::Display for Lack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoBtf => f.write_str("fentry needs BTF"),
            Self::Refused(e) => write!(f, "{e}"),
            Self::NotBuiltIn { evidence } => {
                write!(f, "kprobes are not built into this kernel ({evidence})")
            }
            Self::NoRingbuf => f.write_str("not supported (BPF ring buffers need 5.8+)"),
            Self::ProbeFailed(e) => write!(f, "could not probe: {e}"),
            Self::NotTried { because, seen } => {
                write!(f, "not tried ({because})")?;
                match seen {
                    Some(seen) => write!(f, "; {seen}"),
                    None => Ok(()),
                }
            }
            Self::TrialsUnavailable(e) => write!(f, "not tried: {e}"),
            Self::NotProbed { because: Some(b) } => write!(f, "not probed ({b})"),
            Self::NotProbed { because: None } => f.write_str("not probed"),
        }
    }
}

impl Serialize for Lack {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        as_text(self, s)
    }
}

/// Why a kernel function cannot be hooked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FunctionLack {
    /// Not in the kernel's BTF: absent, or inlined everywhere (or `era`, where known).
    NotInBtf { era: Option<&'static str> },
    /// In BTF but not a kernel symbol: absent, or inlined (or `era`, where known).
    NotSymbol { era: Option<&'static str> },
    /// ftrace cannot hook it.
    Notrace,
}

impl FunctionLack {
    /// Whether the kernel lacks the function (rather than only its hooking).
    pub fn absent(&self) -> bool {
        !matches!(self, Self::Notrace)
    }
}

impl fmt::Display for FunctionLack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInBtf { era } => write!(
                f,
                "not in this kernel's BTF ({})",
                era.unwrap_or("absent, or inlined everywhere")
            ),
            Self::NotSymbol { era } => write!(
                f,
                "not a kernel symbol ({})",
                era.unwrap_or("absent, or inlined")
            ),
            Self::Notrace => f.write_str("notrace: not in available_filter_functions"),
        }
    }
}

impl Serialize for FunctionLack {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        as_text(self, s)
    }
}

/// Why a `Config` offset could not be resolved on this kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldMissing {
    /// The struct member is not there (or not of the size the programs read).
    Btf(BtfLookupError),
    /// The function the offset depends on has another prototype.
    UnknownPrototype {
        function: &'static str,
        params: Vec<String>,
    },
    /// The function the offset depends on is not in BTF.
    NoFunction(&'static str),
    /// The tracepoint the offset depends on passes another number of arguments.
    UnknownArgs {
        tracepoint: &'static str,
        args: usize,
    },
}

impl fmt::Display for FieldMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Btf(e) => write!(f, "{e}"),
            Self::UnknownPrototype { function, params } => write!(
                f,
                "{function}({}) is a prototype this build does not know",
                params.join(", ")
            ),
            Self::NoFunction(function) => {
                write!(f, "{function} is not in this kernel's BTF")
            }
            Self::UnknownArgs { tracepoint, args } => write!(
                f,
                "{tracepoint} passes {args} arguments, a prototype this build does not know"
            ),
        }
    }
}

/// Why this build's program for a hook cannot attach on this kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unusable {
    /// An offset it reads is not resolved here.
    Layout(FieldMissing),
    /// The function's parameters are not the ones the program reads.
    Prototype {
        function: &'static str,
        params: Vec<String>,
    },
    /// The tracepoint passes another number of arguments than the program reads.
    Arguments {
        tracepoint: &'static str,
        args: usize,
        reads: &'static str,
        kernels: &'static str,
    },
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Layout(why) => write!(f, "kernel layout differs: {why}"),
            Self::Prototype { function, params } => write!(
                f,
                "{function}({}) is a prototype this build does not read",
                params.join(", ")
            ),
            Self::Arguments {
                tracepoint,
                args,
                reads,
                kernels,
            } => write!(
                f,
                "kernel layout differs: {tracepoint} passes {args} arguments, not ({reads}) ({kernels})"
            ),
        }
    }
}

/// Why a hook is not used: for a step (`tracer doctor`) or at all (the attach report).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unused {
    /// The kernel function is absent or cannot be hooked.
    Function(FunctionLack),
    /// The fentry tier needs BTF, and the kernel has none.
    NoBtf(NoBtf),
    /// The hook's tier cannot be used on this kernel at all.
    Tier { tier: Tier, lack: Lack },
    /// The kernel refused this very hook (a trial, or the loader's attempt).
    Refused(TrialError),
    /// This kernel has `function`, and the step goes through it instead of the hook.
    GoesThrough {
        function: &'static str,
        target: &'static str,
    },
    /// The tracepoint is not in this kernel (`note`: since when it is).
    TracepointMissing {
        tracepoint: &'static str,
        note: Option<&'static str>,
    },
    /// The tracepoint is in this kernel under its other name, `here`.
    Renamed {
        tracepoint: &'static str,
        note: Option<&'static str>,
        here: &'static str,
    },
    /// The kernel would allow it, but this build has no program for it.
    NoProgram(Tier),
    /// This build's program cannot attach on this kernel.
    CannotAttach(Unusable),
    /// Every step it serves is seen by `by`, a better tier.
    NotNeeded { by: &'static Hook },
}

impl fmt::Display for Unused {
    /// The reason as `tracer doctor` says it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Function(lack) => write!(f, "{lack}"),
            Self::NoBtf(why) => write!(f, "fentry needs BTF: {why}"),
            Self::Tier {
                tier: Tier::Fentry,
                lack,
            } => write!(f, "fentry {lack}"),
            Self::Tier { lack, .. } => write!(f, "{lack}"),
            Self::Refused(e) => write!(f, "tried here: {e}"),
            Self::GoesThrough { function, target } => write!(
                f,
                "{function} is in this kernel: the step goes through it, not {target}"
            ),
            Self::TracepointMissing { tracepoint, note }
            | Self::Renamed {
                tracepoint, note, ..
            } => {
                write!(f, "this kernel has no {tracepoint} tracepoint")?;
                match note {
                    Some(note) => write!(f, " ({note})"),
                    None => Ok(()),
                }
            }
            Self::NoProgram(tier) => write!(
                f,
                "this kernel would allow it, but this build has no {} program for it",
                tier.name()
            ),
            Self::CannotAttach(why) => {
                write!(f, "this build's program cannot attach here: {why}")
            }
            Self::NotNeeded { by } => {
                write!(f, "not needed: {by} sees the same step (a better tier)")
            }
        }
    }
}

impl Serialize for Unused {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        as_text(self, s)
    }
}
