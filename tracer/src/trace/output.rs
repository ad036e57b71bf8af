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

/// `eprintln!` that does not panic when standard error is closed (`2>&1 | head`): a
/// message nobody can read any more is dropped.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        drop(writeln!(std::io::stderr(), $($arg)*));
    }};
}

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
    fn new(name: &str, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::BrokenPipe {
            Self::Closed { name: name.into() }
        } else {
            Self::Write {
                name: name.into(),
                error: source,
            }
        }
    }
}

/// Why an output file could not be opened. The caller says which file (and what for).
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("it exists: add --force to overwrite it")]
    Exists,
    #[error(
        "it is a symbolic link, which the tracer never writes through (it may run as root): \
         name the file itself, or a new one"
    )]
    Symlink,
    #[error("it is a directory: name a file")]
    Directory,
    #[error("it is not a regular file, a device or a FIFO")]
    Unusable,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Opens `path` for writing lines the way a tool running as root must, in directories
/// other users may write to: a new file is created with O_CREAT|O_EXCL|O_NOFOLLOW, mode
/// 0600. An existing regular file is refused unless `force` (then it is truncated, still
/// without following a symbolic link, and made 0600); a symbolic link is always refused;
/// a device or a FIFO (/dev/null, a named pipe) is written to as it is.
pub fn create(path: &std::path::Path, force: bool) -> Result<File, CreateError> {
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _, PermissionsExt as _};
    let new = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    match new {
        Ok(f) => return Ok(f),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e.into()),
    }
    let kind = std::fs::symlink_metadata(path)?.file_type();
    if kind.is_symlink() {
        return Err(CreateError::Symlink);
    }
    if kind.is_dir() {
        return Err(CreateError::Directory);
    }
    let regular = kind.is_file();
    if regular && !force {
        return Err(CreateError::Exists);
    }
    if !regular && !kind.is_char_device() && !kind.is_fifo() {
        return Err(CreateError::Unusable);
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(regular)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    // What was opened, in case the path changed since it was looked at.
    let opened = f.metadata()?.file_type();
    if opened.is_file() != regular {
        return Err(CreateError::Unusable);
    }
    if regular {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
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
    pub fn stdout() -> io::Result<Self> {
        let fd = io::stdout().as_fd().try_clone_to_owned()?;
        Ok(Self::new(File::from(fd), STDOUT.into(), false))
    }

    /// A file the tracer has just created (or truncated) for these lines; `name` is how
    /// messages call it.
    pub fn file(file: File, name: String) -> Self {
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        Self::new(file, name, regular)
    }

    fn new(file: File, name: String, cut_back: bool) -> Self {
        Self {
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
        let (r, w) = io::pipe().unwrap();
        drop(r);
        let mut out = lines_of(File::from(std::os::fd::OwnedFd::from(w)));
        out.line().extend_from_slice(b"x");
        out.end_line(true);
        assert!(matches!(out.flush(), Err(OutputError::Closed { .. })));
    }

    #[test]
    fn output_files_are_new_private_and_never_reached_through_a_link() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = std::env::temp_dir().join(format!("tracer-create-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let new = dir.join("new");
        create(&new, false).unwrap();
        assert_eq!(std::fs::metadata(&new).unwrap().mode() & 0o777, 0o600);
        // Existing: refused, unless forced (then truncated and made private).
        std::fs::write(&new, b"keep").unwrap();
        std::fs::set_permissions(&new, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        assert!(matches!(create(&new, false), Err(CreateError::Exists)));
        assert_eq!(std::fs::read(&new).unwrap(), b"keep");
        create(&new, true).unwrap();
        let meta = std::fs::metadata(&new).unwrap();
        assert_eq!((meta.len(), meta.mode() & 0o777), (0, 0o600));
        // A link planted where the output goes: never followed, forced or not.
        let target = dir.join("target");
        std::fs::write(&target, b"precious").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for force in [false, true] {
            assert!(matches!(create(&link, force), Err(CreateError::Symlink)));
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        let dangling = dir.join("dangling");
        std::os::unix::fs::symlink(dir.join("nowhere"), &dangling).unwrap();
        assert!(matches!(create(&dangling, true), Err(CreateError::Symlink)));
        assert!(!dir.join("nowhere").exists());
        assert!(matches!(create(&dir, true), Err(CreateError::Directory)));
        // Devices are written as they are.
        create(std::path::Path::new("/dev/null"), false).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            CreateError::Exists.to_string(),
            "it exists: add --force to overwrite it"
        );
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
