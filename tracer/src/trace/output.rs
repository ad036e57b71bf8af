//! Where `trace` and the demo's recording write their lines, and what a failed write is.
//!
//! Lines are written whole, from one buffer per batch, straight to the descriptor (no
//! second buffer in between): after a failed write the caller knows exactly which lines
//! are in the file, a file of ours is cut back to its last whole line (a reader never
//! meets half a JSON object), and the error names the file.

use std::{
    fs::File,
    io::{self, Write as _},
    os::fd::{AsFd as _, AsRawFd as _},
};

/// A write that failed. `Closed` (the reader went away) ends a command quietly, as it does
/// any Unix tool; the caller tells them apart by the variant, never by the text.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{name} was closed by its reader")]
    Closed { name: String },
    /// (`error` is in the message, so it is not the error's source too.)
    #[error("cannot write to {name}: {error}")]
    Write { name: String, error: io::Error },
}

impl OutputError {
    fn new(name: &str, source: io::Error) -> OutputError {
        if source.kind() == io::ErrorKind::BrokenPipe {
            OutputError::Closed { name: name.into() }
        } else {
            OutputError::Write {
                name: name.into(),
                error: source,
            }
        }
    }
}

/// What standard output is called in messages.
pub const STDOUT: &str = "standard output";

/// Writes `text` to standard output and flushes it; a closed pipe is
/// [`OutputError::Closed`], not a panic as with `print!`.
pub fn print(text: &str) -> Result<(), OutputError> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| OutputError::new(STDOUT, e))
}

/// A sink of whole lines: a file, or standard output.
pub struct Lines {
    file: File,
    name: String,
    /// Cut the file back to its last whole line after a failed write: only a regular file
    /// the tracer made, never standard output (a traced command may write there too).
    cut_back: bool,
    buf: Vec<u8>,
    /// Where each buffered line ends in `buf`, and whether it counts (see [`Lines::counted`]).
    ends: Vec<(usize, bool)>,
    /// Bytes of whole lines written so far (where a failed write cuts the file back to).
    written: u64,
    counted: u64,
    failed: bool,
}

impl Lines {
    /// Standard output (a copy of its descriptor).
    pub fn stdout() -> io::Result<Lines> {
        let fd = io::stdout().as_fd().try_clone_to_owned()?;
        Ok(Lines::new(File::from(fd), STDOUT.into(), false))
    }

    /// A file the tracer has just created (or truncated) for these lines; `name` is how
    /// messages call it.
    pub fn file(file: File, name: String) -> Lines {
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        Lines::new(file, name, regular)
    }

    fn new(file: File, name: String, cut_back: bool) -> Lines {
        Lines {
            file,
            name,
            cut_back,
            buf: Vec::with_capacity(1 << 16),
            ends: Vec::new(),
            written: 0,
            counted: 0,
            failed: false,
        }
    }

    /// How messages call the sink.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The buffer to append the next line to (without its newline).
    pub fn line(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Ends the line appended to [`Lines::line`]; `counts`: it is one of the things
    /// [`Lines::counted`] counts (events, as opposed to notes about them).
    pub fn end_line(&mut self, counts: bool) {
        self.buf.push(b'\n');
        self.ends.push((self.buf.len(), counts));
    }

    /// Counted lines known to be written (handed to the kernel whole).
    pub fn counted(&self) -> u64 {
        self.counted
    }

    /// Writes every buffered line. On an error, the lines written whole are counted, a
    /// file of ours is cut back to its last whole line, and nothing more is written.
    pub fn flush(&mut self) -> Result<(), OutputError> {
        if self.failed {
            self.buf.clear();
            self.ends.clear();
            return Ok(());
        }
        let mut done = 0;
        let result = loop {
            if done == self.buf.len() {
                break Ok(());
            }
            match self.file.write(&self.buf[done..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let whole = self.ends.iter().take_while(|(end, _)| *end <= done);
        self.counted += whole.clone().filter(|(_, counts)| *counts).count() as u64;
        let whole_bytes = whole.last().map_or(0, |(end, _)| *end);
        self.written += whole_bytes as u64;
        self.buf.clear();
        self.ends.clear();
        result.map_err(|e| {
            self.failed = true;
            if self.cut_back && done > whole_bytes {
                // Best effort: the error about the write is the one to report.
                // SAFETY: ftruncate on our own descriptor.
                unsafe { libc::ftruncate(self.file.as_raw_fd(), self.written as libc::off_t) };
            }
            OutputError::new(&self.name, e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(file: File) -> Lines {
        Lines::file(file, "the test file".into())
    }

    #[test]
    fn a_full_device_is_an_error_naming_it_and_nothing_counts() {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut out = lines_of(full);
        out.line().extend_from_slice(b"{\"event\":1}");
        out.end_line(true);
        let e = out.flush().unwrap_err();
        assert!(matches!(e, OutputError::Write { .. }));
        assert_eq!(
            e.to_string(),
            "cannot write to the test file: No space left on device (os error 28)"
        );
        assert_eq!(out.counted(), 0);
        // Nothing more is tried once a write failed.
        out.line().extend_from_slice(b"x");
        out.end_line(true);
        assert!(out.flush().is_ok());
        assert_eq!(out.counted(), 0);
    }

    #[test]
    fn a_closed_pipe_is_its_own_error() {
        let (r, w) = std::io::pipe().unwrap();
        drop(r);
        let mut out = lines_of(File::from(std::os::fd::OwnedFd::from(w)));
        out.line().extend_from_slice(b"x");
        out.end_line(true);
        assert!(matches!(out.flush(), Err(OutputError::Closed { .. })));
    }

    #[test]
    fn only_events_count_and_whole_lines_are_written() {
        let path = std::env::temp_dir().join(format!("tracer-lines-{}", std::process::id()));
        let mut out = lines_of(File::create(&path).unwrap());
        for (text, counts) in [("a", true), ("lost", false), ("b", true)] {
            out.line().extend_from_slice(text.as_bytes());
            out.end_line(counts);
        }
        out.flush().unwrap();
        assert_eq!(out.counted(), 2);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\nlost\nb\n");
        std::fs::remove_file(&path).unwrap();
    }
}
