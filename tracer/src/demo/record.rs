//! `--record`: the events of the runs as JSON lines, the format the model's tests replay
//! from `tracer/tests/fixtures/` and `tracer replay` reads (`docs/RECORDING.md`; the
//! reader is [`crate::recording`]).

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use super::{ColdResult, NotRun};
use crate::{
    event::{Event, KernelConsts},
    model::Method,
    recording::{FORMAT, ProbesUsed, RunInfo, RunLine},
    trace::{Session, lost::Lost, output},
    workload::Report,
};

/// Opens `--record`'s file ([`output::create`]), refusing the `--file` input itself
/// (same device and inode, whatever the path): truncating it would destroy the input.
pub(crate) fn open_recording(
    path: &Path,
    input: Option<&Path>,
    force: bool,
) -> Result<output::Output> {
    use std::os::unix::fs::MetadataExt as _;
    if let (Some(input), Ok(rec)) = (input, std::fs::symlink_metadata(path))
        && let Ok(inp) = std::fs::metadata(input)
        && (rec.dev(), rec.ino()) == (inp.dev(), inp.ino())
    {
        bail!(
            "--record {} is the --file input itself: choose another path for the recording",
            path.display()
        );
    }
    output::create(path, force)
        .with_context(|| format!("cannot create the recording {}", path.display()))
}

/// Writes the events of the runs as JSON lines: a header, then per method its events and
/// the workload's report. Fixtures for the model's tests are such recordings. `watch`
/// records the same lines without a method (and without a report).
///
/// A failed write stops the recording, not the run: the error is kept for
/// [`Recorder::finish`], and the lines before it stay whole (see [`output::Lines`]).
pub struct Recorder {
    out: output::Lines,
    error: Option<output::OutputError>,
}

/// One line of a recording (`docs/RECORDING.md`) of the types format 1 has (format 2's
/// other lines are [`RunLine`]s). Fields added since format 1 are optional, so that every
/// older recording reads as one of these.
#[derive(Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RecordLine {
    Header {
        /// `tracer-recording-MAJOR[.MINOR]` (see [`crate::recording::Version`]).
        format: String,
        /// The tracer's version that wrote it (format 2 on).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tracer: Option<String>,
        kernel: String,
        consts: KernelConsts,
        /// The probe tiers and hooks the events came from (format 2 on).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        probes: Option<ProbesUsed>,
        /// What the command was asked (format 2 on).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run: Option<RunInfo>,
    },
    Event {
        /// The demo's method whose run this event is of (`None` under `watch`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<Method>,
        event: Event,
    },
    Report {
        report: Report,
    },
    /// Events the kernel dropped here, between two readings of its counter (see
    /// [`crate::trace::lost`]).
    Lost {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<Method>,
        count: u64,
        since_ns: u64,
        until_ns: u64,
    },
}

impl Recorder {
    /// A recording of `tracer watch` (see [`Recorder::create_for`]).
    pub(crate) fn create(
        path: &Path,
        file: output::Output,
        session: &Session,
        kernel: &str,
    ) -> Self {
        Self::create_for(path, file, session, kernel, RunInfo::watch())
    }

    /// Starts a recording in `file` with its header: the format, this tracer, the kernel,
    /// the probes `session` attached and `run`, what the command was asked.
    pub(crate) fn create_for(
        path: &Path,
        file: output::Output,
        session: &Session,
        kernel: &str,
        run: RunInfo,
    ) -> Self {
        let mut r = Self {
            out: output::Lines::file(file, format!("the recording {}", path.display())),
            error: None,
        };
        r.line(&RecordLine::Header {
            format: FORMAT.to_string(),
            tracer: Some(env!("CARGO_PKG_VERSION").to_string()),
            kernel: kernel.to_string(),
            consts: session.consts().clone(),
            probes: Some(ProbesUsed::of(session.attached())),
            run: Some(run),
        });
        r.flush();
        r
    }

    fn line(&mut self, l: &impl Serialize) {
        // Serializing into a Vec cannot fail: every line is plain data.
        drop(crate::ui::escape::write_json(self.out.line(), l));
        self.out.end_line(true);
    }

    pub(crate) fn event(&mut self, method: Option<Method>, event: &Event) {
        self.line(&RecordLine::Event {
            method,
            event: event.clone(),
        })
    }

    pub(crate) fn lost(&mut self, method: Option<Method>, lost: Lost) {
        self.line(&RecordLine::Lost {
            method,
            count: lost.count,
            since_ns: lost.since_ns,
            until_ns: lost.until_ns,
        })
    }

    /// The end of a method's run: the workload's report, the eviction before it and the
    /// events the kernel dropped during it.
    pub(super) fn report(&mut self, report: &Report, cold: Option<&ColdResult>, drops: u64) {
        self.line(&RecordLine::Report {
            report: report.clone(),
        });
        self.line(&RunLine::Run {
            method: report.method,
            cold: cold.cloned(),
            drops,
        });
    }

    /// A method of `--method all` that did not run.
    pub(super) fn not_run(&mut self, not_run: &NotRun) {
        self.line(&RunLine::NotRun(not_run.clone()));
        self.flush();
    }

    /// Writes the lines so far (after each batch); keeps the first error.
    pub(crate) fn flush(&mut self) {
        if let Err(e) = self.out.flush()
            && self.error.is_none()
        {
            self.error = Some(e);
        }
    }

    /// Writes what is left; the first error, if any. A recording without a line in it
    /// (its header could not be written) is removed when the run fails (see
    /// [`output::Lines::keep`]).
    pub(crate) fn finish(&mut self) -> Result<(), output::OutputError> {
        self.flush();
        let result = self.error.take().map_or(Ok(()), Err);
        if result.is_ok() {
            self.out.keep();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_is_a_line_of_the_recording() {
        let line = RecordLine::Lost {
            method: Some(Method::Sendfile),
            count: 7,
            since_ns: 10,
            until_ns: 20,
        };
        let text = serde_json::to_string(&line).unwrap();
        assert_eq!(
            text,
            r#"{"type":"lost","method":"sendfile","count":7,"since_ns":10,"until_ns":20}"#
        );
        // watch's lines have no method.
        let watched = RecordLine::Lost {
            method: None,
            count: 7,
            since_ns: 10,
            until_ns: 20,
        };
        let text = serde_json::to_string(&watched).unwrap();
        assert_eq!(
            text,
            r#"{"type":"lost","count":7,"since_ns":10,"until_ns":20}"#
        );
        assert!(matches!(
            serde_json::from_str(&text).unwrap(),
            RecordLine::Lost { method: None, .. }
        ));
        assert!(matches!(
            serde_json::from_str(&text).unwrap(),
            RecordLine::Lost { count: 7, .. }
        ));
    }
}
