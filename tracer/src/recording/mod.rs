//! Recordings (`docs/RECORDING.md`): what their header says, which versions this build
//! reads, and the [`Reader`] that reads them back without trusting them. The writer is
//! `demo --record` / `watch --record` ([`crate::demo::Recorder`]); `tracer replay` and
//! `tracer export` read.

mod read;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use read::{Header, Item, MAX_LINE, ReadError, Reader};

use crate::{
    demo::{ColdResult, NotRun},
    model::Method,
    probe::hooks::{Hook, Tier},
};

/// The version this build writes.
pub const CURRENT: Version = Version { major: 2, minor: 0 };

/// The header's `format` of the recordings this build writes.
pub const FORMAT: &str = "tracer-recording-2.0";

/// What every header's `format` starts with.
const FORMAT_PREFIX: &str = "tracer-recording-";

/// A recording's format version: a reader reads every major up to its own (older ones
/// through their optional fields), and any minor of those (a minor only adds optional
/// fields, which older readers ignore).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl Version {
    /// The version a header's `format` names: `tracer-recording-1`, `tracer-recording-2.0`.
    pub fn parse(format: &str) -> Option<Self> {
        let v = format.strip_prefix(FORMAT_PREFIX)?;
        let (major, minor) = v.split_once('.').unwrap_or((v, "0"));
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return None;
        }
        Some(Self {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The lines format 2 added: how a demo method's run ended besides the workload's report.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RunLine {
    /// After a method's `report` line: the eviction before a `--cold` run and the events
    /// the kernel dropped during the run.
    Run {
        method: Method,
        #[serde(default)]
        cold: Option<ColdResult>,
        #[serde(default)]
        drops: u64,
    },
    /// A method of `--method all` that did not run, and why.
    NotRun(NotRun),
}

/// The probes a recording's events came from: the tiers, and each hook as `tier:target`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbesUsed {
    pub tiers: Vec<String>,
    pub hooks: Vec<String>,
}

impl ProbesUsed {
    pub fn of(attached: &[&Hook]) -> Self {
        let mut tiers: Vec<Tier> = attached.iter().map(|h| h.tier).collect();
        tiers.sort();
        tiers.dedup();
        Self {
            tiers: tiers.into_iter().map(|t| t.name().to_string()).collect(),
            hooks: attached
                .iter()
                .map(|h| format!("{}:{}", h.tier.name(), h.target))
                .collect(),
        }
    }

    /// Whether fentry/fexit programs were among them.
    pub fn fexit(&self) -> bool {
        self.tiers.iter().any(|t| t == Tier::Fentry.name())
    }
}

/// What the recording command was asked: the conditions its runs were made under.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// `demo` or `watch`.
    pub command: String,
    /// The demo's methods, in the order they ran (none under `watch`).
    #[serde(default)]
    pub methods: Vec<Method>,
    /// `--method all`: the demo printed one table (a JSON array).
    #[serde(default)]
    pub all: bool,
    /// Bytes per call, and the input's size when the demo made it.
    #[serde(default)]
    pub chunk: Option<u64>,
    #[serde(default)]
    pub size: Option<u64>,
    /// `--file` was given (its path is not recorded: it may name another user's file).
    #[serde(default)]
    pub file: bool,
    /// `--cold`: the input was evicted before each run.
    #[serde(default)]
    pub cold: bool,
}

impl RunInfo {
    pub fn demo(args: &crate::demo::DemoArgs) -> Self {
        Self {
            command: "demo".into(),
            methods: args.methods.clone(),
            all: args.all,
            chunk: Some(args.chunk),
            size: args.size,
            file: args.file.is_some(),
            cold: args.cold,
        }
    }

    pub fn watch() -> Self {
        Self {
            command: "watch".into(),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests;
