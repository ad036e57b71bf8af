//! `--record`: the events of the runs as JSON lines, the format the model's tests replay
//! from `tracer/tests/fixtures/`.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use crate::{
    event::{Event, KernelConsts},
    model::Method,
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

/// One line of a recording.
#[derive(Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RecordLine {
    Header {
        format: String,
        kernel: String,
        consts: KernelConsts,
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
    pub(crate) fn create(
        path: &Path,
        file: output::Output,
        session: &Session,
        kernel: &str,
    ) -> Self {
        let mut r = Self {
            out: output::Lines::file(file, format!("the recording {}", path.display())),
            error: None,
        };
        r.line(&RecordLine::Header {
            format: "tracer-recording-1".into(),
            kernel: kernel.to_string(),
            consts: session.consts().clone(),
        });
        r.flush();
        r
    }

    fn line(&mut self, l: &RecordLine) {
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

    pub(super) fn report(&mut self, report: &Report) {
        self.line(&RecordLine::Report {
            report: report.clone(),
        })
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
