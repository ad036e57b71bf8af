//! Reading a recording back, one line at a time: a file of any size costs one line's
//! memory (at most [`MAX_LINE`]), and bad input of any kind (truncated, wrong types, huge
//! numbers, binary, empty) is an error that names the line, never a panic.

use std::{
    fs::File,
    io::{BufRead, BufReader, Read as _},
    path::Path,
};

use serde::Deserialize;

use super::{CURRENT, ProbesUsed, RunInfo, RunLine, Version};
use crate::{
    demo::{ColdResult, NotRun, RecordLine},
    event::{Event, KernelConsts},
    model::Method,
    workload::Report,
};

/// The longest line a recording may have. An event's line is under 1 KiB; a header
/// names every hook (a few KiB).
pub const MAX_LINE: usize = 1 << 20;

/// Why a recording cannot be read; each says it in one line.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the file is empty: not a recording")]
    Empty,
    #[error("not a tracer recording: line 1 is not a recording's header ({why})")]
    NoHeader { why: String },
    #[error(
        "the recording is format {found}; this tracer ({tracer}) reads formats up to {supported}: read it with a newer tracer",
        tracer = env!("CARGO_PKG_VERSION"),
        supported = CURRENT.major
    )]
    Newer { found: Version },
    #[error("line {line}: {why}")]
    Line { line: u64, why: String },
    #[error("line {line} is longer than {} KiB: not a recording's line", MAX_LINE >> 10)]
    TooLong { line: u64 },
    #[error("line {line} is not UTF-8 text: not a recording (binary data?)")]
    NotText { line: u64 },
}

/// A recording's header, whatever its version (fields an older format lacks are `None`).
#[derive(Clone, Debug)]
pub struct Header {
    pub version: Version,
    pub tracer: Option<String>,
    pub kernel: String,
    pub consts: KernelConsts,
    pub probes: Option<ProbesUsed>,
    pub run: Option<RunInfo>,
}

/// One line after the header.
#[derive(Clone, Debug)]
pub enum Item {
    Event {
        method: Option<Method>,
        event: Event,
    },
    Lost {
        method: Option<Method>,
        count: u64,
        since_ns: u64,
        until_ns: u64,
    },
    /// The end of a demo method's run: the workload's report.
    Report(Report),
    /// Format 2: after a method's report, the eviction before it and the events dropped.
    Run {
        method: Method,
        cold: Option<ColdResult>,
        drops: u64,
    },
    NotRun(NotRun),
}

/// Reads a recording's lines in order.
pub struct Reader<R> {
    input: R,
    header: Header,
    /// The number of the last line read (1-based).
    line: u64,
    buf: Vec<u8>,
}

impl Reader<BufReader<File>> {
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        Self::new(BufReader::new(File::open(path)?))
    }
}

/// What the first line is asked before it is read as a header.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "type")]
    kind: Option<String>,
    format: Option<String>,
}

impl<R: BufRead> Reader<R> {
    /// Reads the header; refuses a file that is not a recording, or of a newer major format.
    pub fn new(input: R) -> Result<Self, ReadError> {
        let (mut input, mut buf, mut line) = (input, Vec::new(), 0);
        let first = match next_line(&mut input, &mut buf, &mut line)? {
            Some(l) => l,
            None => return Err(ReadError::Empty),
        };
        let probe: Probe = serde_json::from_str(first).map_err(|e| ReadError::NoHeader {
            why: format!("not JSON: {e}"),
        })?;
        let format = match (probe.kind.as_deref(), probe.format) {
            (Some("header"), Some(f)) => f,
            (Some("header"), None) => {
                return Err(ReadError::NoHeader {
                    why: "it has no format".into(),
                });
            }
            (kind, _) => {
                return Err(ReadError::NoHeader {
                    why: format!("a line of type {:?}", kind.unwrap_or("none")),
                });
            }
        };
        let version = Version::parse(&format).ok_or_else(|| ReadError::NoHeader {
            why: format!(
                "unknown format {:?}",
                format.chars().take(64).collect::<String>()
            ),
        })?;
        if version.major > CURRENT.major {
            return Err(ReadError::Newer { found: version });
        }
        let header = match serde_json::from_str(first) {
            Ok(RecordLine::Header {
                tracer,
                kernel,
                consts,
                probes,
                run,
                ..
            }) => Header {
                version,
                tracer,
                kernel,
                consts,
                probes,
                run,
            },
            // `type` said header: serde found nothing else.
            Ok(_) => {
                return Err(ReadError::NoHeader {
                    why: "not a header".into(),
                });
            }
            Err(e) => {
                return Err(ReadError::Line {
                    line: 1,
                    why: e.to_string(),
                });
            }
        };
        Ok(Self {
            input,
            header,
            line,
            buf,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next line after the header; `None` at the end.
    pub fn next_item(&mut self) -> Result<Option<Item>, ReadError> {
        let Some(text) = next_line(&mut self.input, &mut self.buf, &mut self.line)? else {
            return Ok(None);
        };
        let line = self.line;
        let bad = |e: serde_json::Error| ReadError::Line {
            line,
            why: e.to_string(),
        };
        let probe: Probe = serde_json::from_str(text).map_err(bad)?;
        if matches!(probe.kind.as_deref(), Some("run" | "not-run")) {
            return Ok(Some(match serde_json::from_str(text).map_err(bad)? {
                RunLine::Run {
                    method,
                    cold,
                    drops,
                } => Item::Run {
                    method,
                    cold,
                    drops,
                },
                RunLine::NotRun(n) => Item::NotRun(n),
            }));
        }
        Ok(Some(match serde_json::from_str(text).map_err(bad)? {
            RecordLine::Header { .. } => {
                return Err(ReadError::Line {
                    line,
                    why: "a second header".into(),
                });
            }
            RecordLine::Event { method, event } => Item::Event { method, event },
            RecordLine::Lost {
                method,
                count,
                since_ns,
                until_ns,
            } => Item::Lost {
                method,
                count,
                since_ns,
                until_ns,
            },
            RecordLine::Report { report } => Item::Report(report),
        }))
    }
}

/// The next non-empty line of `input` (its number in `line`), without its newline; at
/// most [`MAX_LINE`] bytes are read whatever the input holds.
fn next_line<'b, R: BufRead>(
    input: &mut R,
    buf: &'b mut Vec<u8>,
    line: &mut u64,
) -> Result<Option<&'b str>, ReadError> {
    loop {
        buf.clear();
        *line += 1;
        let n = (&mut *input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', buf)?;
        if n == 0 {
            return Ok(None);
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > MAX_LINE {
            return Err(ReadError::TooLong { line: *line });
        }
        if !buf.is_empty() {
            break;
        }
    }
    std::str::from_utf8(buf)
        .map(Some)
        .map_err(|_not_utf8| ReadError::NotText { line: *line })
}
