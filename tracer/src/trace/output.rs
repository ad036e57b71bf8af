//! Where `trace` and the demo's recording write their lines, and what a failed write is.
//!
//! Lines are written whole, from one buffer per batch, straight to the descriptor (no
//! second buffer in between): after a failed write the caller knows exactly which lines
//! are in the file, a file of ours is cut back to its last whole line (a reader never
//! meets half a JSON object), and the error names the file.

use std::{
    ffi::CString,
    fs::File,
    io::{self, Write as _},
    os::{
        fd::{AsFd as _, AsRawFd as _, FromRawFd as _, RawFd},
        unix::{
            ffi::OsStrExt as _,
            fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _},
        },
    },
    path::{Path, PathBuf},
};

use crate::workload::scratch::{PRIVATE, openat};

/// `eprintln!` that does not panic when standard error is closed (`2>&1 | head`): a
/// message nobody can read any more is dropped. Every message is one line, escaped
/// ([`crate::ui::escape::escape`]): the names and paths in it (a process's, a device's,
/// a file's, in an error) cannot drive the terminal or forge a line.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!($($arg)*);
        drop(writeln!(std::io::stderr(), "{}", $crate::ui::escape::escape(&line)));
    }};
}

/// A write that failed. `Closed` (the reader of standard output went away) ends a command
/// quietly, as it does any Unix tool; the caller tells them apart by the variant, never by
/// the text.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{name} was closed by its reader")]
    Closed { name: String },
    /// (`error` is in the message, so it is not the error's source too.) A closed pipe
    /// that is not standard output (a recording's, `-o /dev/fd/3`'s) is one of these: the
    /// output the user asked for is incomplete, and the message says which.
    #[error("cannot write to {name}: {error}")]
    Write { name: String, error: io::Error },
}

impl OutputError {
    /// `stdout`: the sink is standard output, whose closing by its reader is quiet.
    fn new(name: &str, source: io::Error, stdout: bool) -> Self {
        if stdout && source.kind() == io::ErrorKind::BrokenPipe {
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
    #[error(
        "it is a named pipe (FIFO), which the tracer does not write to (anyone may be its \
         reader): name a new file, or give /dev/stdout and pipe it"
    )]
    Fifo,
    #[error(
        "it belongs to uid {owner}, not to the tracer's uid {euid} (who owns it could read \
         the trace): remove it, or name a new file"
    )]
    NotOwned { owner: u32, euid: u32 },
    #[error(
        "it has {links} hard links (the trace would be readable under the other names): \
         remove it, or name a new file"
    )]
    HardLinks { links: u64 },
    #[error(
        "it is a device that belongs to uid {owner}, not to root: name a file, or a device \
         of root's such as /dev/null"
    )]
    UserDevice { owner: u32 },
    #[error("it is not a regular file or a character device")]
    Unusable,
    #[error("descriptor {fd} is not open for writing")]
    NotWritable { fd: RawFd },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// An output opened by [`create`], for [`Lines::file`].
#[derive(Debug)]
pub struct Output {
    file: File,
    /// A regular file the tracer made (created, or truncated with --force): a failed write
    /// cuts it back to its last whole line.
    ours: bool,
    /// The path of the file this run created, until a line is in it (or the run is kept,
    /// [`Lines::keep`]): a run that fails before that removes it, so that trying again
    /// needs no --force.
    made: Option<PathBuf>,
    /// It is the tracer's standard output (`/dev/stdout`), whose reader may end it quietly.
    stdout: bool,
}

impl Output {
    fn inherited(file: File, stdout: bool) -> Self {
        Self {
            file,
            ours: false,
            made: None,
            stdout,
        }
    }
}

impl Drop for Output {
    /// Removes a file this run created and wrote nothing to: still the same file (a name
    /// another user replaced in a shared directory is left alone).
    fn drop(&mut self) {
        let Some(path) = self.made.take() else { return };
        let same = match (std::fs::symlink_metadata(&path), self.file.metadata()) {
            (Ok(named), Ok(ours)) => (named.dev(), named.ino()) == (ours.dev(), ours.ino()),
            _ => false,
        };
        if same {
            drop(std::fs::remove_file(&path));
        }
    }
}

fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// The descriptor `path` names when it is one of the tracer's own (inherited from its
/// caller): `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`. Those are
/// symbolic links, which [`create`] never follows: the descriptor itself is written to.
fn inherited_fd(path: &Path) -> Option<RawFd> {
    let path = path.to_str()?;
    match path {
        "/dev/stdout" => Some(1),
        "/dev/stderr" => Some(2),
        _ => {
            let n = path
                .strip_prefix("/dev/fd/")
                .or_else(|| path.strip_prefix("/proc/self/fd/"))?;
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            n.parse().ok()
        }
    }
}

/// A duplicate of descriptor `fd`, which must be open for writing.
fn duplicate(fd: RawFd) -> Result<Output, CreateError> {
    // SAFETY: F_GETFL only reads the descriptor's flags (EBADF when it is not open).
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || flags & libc::O_ACCMODE == libc::O_RDONLY {
        return Err(CreateError::NotWritable { fd });
    }
    // SAFETY: duplicating an open descriptor; the new one is ours alone.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return Err(io::Error::last_os_error().into());
    }
    // SAFETY: dup is a new descriptor that nothing else owns.
    let file = unsafe { File::from_raw_fd(dup) };
    Ok(Output::inherited(file, fd == libc::STDOUT_FILENO))
}

/// Clears O_NONBLOCK (set to open without waiting for a FIFO's reader or a device).
fn set_blocking(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: reading and setting the flags of our own descriptor.
    let ok = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Opens `path` for writing lines the way a tool running as root must, in directories
/// other users may write to:
/// - a new file is created with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600;
/// - an existing file is opened without following a symbolic link, without O_TRUNC and
///   without waiting (O_NONBLOCK), then what was opened is checked: a regular file is
///   used only with `force`, only when the tracer's user owns it and it has no other
///   name (hard link), and only then truncated and made 0600; a character device is
///   written to as it is when root owns it (`/dev/null`); anything else (a FIFO, another
///   user's file or device) is refused with the reason;
/// - `/dev/stdout`, `/dev/stderr`, `/dev/fd/N` and `/proc/self/fd/N` are the descriptors
///   the tracer inherited, written to as they are.
pub fn create(path: &Path, force: bool) -> Result<Output, CreateError> {
    if let Some(fd) = inherited_fd(path) {
        return duplicate(fd);
    }
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_nul| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
    let excl = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
    match openat(libc::AT_FDCWD, &c, excl, PRIVATE) {
        Ok(fd) => {
            return Ok(Output {
                file: File::from(fd),
                ours: true,
                made: Some(path.to_path_buf()),
                stdout: false,
            });
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e.into()),
    }
    let kind = || std::fs::symlink_metadata(path).map(|m| m.file_type());
    let existing = libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let file = match openat(libc::AT_FDCWD, &c, existing, 0) {
        Ok(fd) => File::from(fd),
        Err(e) => {
            return Err(match e.raw_os_error() {
                Some(libc::ELOOP) if kind().is_ok_and(|k| k.is_symlink()) => CreateError::Symlink,
                Some(libc::EISDIR) => CreateError::Directory,
                // A FIFO nobody reads (O_NONBLOCK: the open does not wait for one).
                Some(libc::ENXIO) if kind().is_ok_and(|k| k.is_fifo()) => CreateError::Fifo,
                _ => e.into(),
            });
        }
    };
    // What was opened, whatever the path names by now.
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if kind.is_char_device() {
        if meta.uid() != 0 {
            return Err(CreateError::UserDevice { owner: meta.uid() });
        }
        set_blocking(&file)?;
        return Ok(Output::inherited(file, false));
    }
    if kind.is_fifo() {
        return Err(CreateError::Fifo);
    }
    if !kind.is_file() {
        return Err(CreateError::Unusable);
    }
    let euid = geteuid();
    if meta.uid() != euid {
        return Err(CreateError::NotOwned {
            owner: meta.uid(),
            euid,
        });
    }
    if meta.nlink() != 1 {
        return Err(CreateError::HardLinks {
            links: meta.nlink(),
        });
    }
    if !force {
        return Err(CreateError::Exists);
    }
    file.set_len(0)?;
    file.set_permissions(std::fs::Permissions::from_mode(PRIVATE))?;
    set_blocking(&file)?;
    Ok(Output {
        file,
        ours: true,
        made: None,
        stdout: false,
    })
}

/// What standard output is called in messages.
pub const STDOUT: &str = "standard output";

/// Writes `text` to standard output and flushes it; a closed pipe is
/// [`OutputError::Closed`], not a panic as with `print!`.
pub fn print(text: &str) -> Result<(), OutputError> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| OutputError::new(STDOUT, e, true))
}

/// A sink of whole lines: a file, or standard output.
pub struct Lines {
    /// Cut back to its last whole line after a failed write when it is a regular file the
    /// tracer made ([`Output::ours`]), never standard output (a traced command may write
    /// there too) or a descriptor the tracer inherited.
    out: Output,
    name: String,
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
        Ok(Self::file(
            Output::inherited(File::from(fd), true),
            STDOUT.into(),
        ))
    }

    /// An output [`create`] opened for these lines; `name` is how messages call it.
    pub fn file(out: Output, name: String) -> Self {
        Self {
            out,
            name,
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

    /// The run went as asked: a file it created stays even when no line is in it (else
    /// dropping the lines removes it, see [`Output::made`]).
    pub fn keep(&mut self) {
        self.out.made = None;
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
            match self.out.file.write(&self.buf[done..]) {
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
        if self.written > 0 {
            // Lines are in it: the file stays, however the run ends.
            self.keep();
        }
        self.buf.clear();
        self.ends.clear();
        result.map_err(|e| {
            self.failed = true;
            if self.out.ours && done > whole_bytes {
                // Best effort: the error about the write is the one to report.
                // SAFETY: ftruncate on our own descriptor.
                unsafe { libc::ftruncate(self.out.file.as_raw_fd(), self.written as libc::off_t) };
            }
            OutputError::new(&self.name, e, self.out.stdout)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::OpenOptionsExt as _;

    use super::*;

    fn lines_of(file: File) -> Lines {
        let ours = file.metadata().is_ok_and(|m| m.is_file());
        let out = Output {
            file,
            ours,
            made: None,
            stdout: false,
        };
        Lines::file(out, "the test file".into())
    }

    /// A fresh directory for one test, removed when dropped.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("tracer-{name}-{}", std::process::id()));
            drop(std::fs::remove_dir_all(&dir));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            drop(std::fs::remove_dir_all(&self.0));
        }
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
        // Standard output: quiet, as any Unix tool (`| head`).
        let (r, w) = io::pipe().unwrap();
        drop(r);
        let file = File::from(std::os::fd::OwnedFd::from(w));
        let mut out = Lines::file(Output::inherited(file, true), STDOUT.into());
        out.line().extend_from_slice(b"x");
        out.end_line(true);
        assert!(matches!(out.flush(), Err(OutputError::Closed { .. })));
        // Any other output (a recording's pipe): an error that names it.
        let (r, w) = io::pipe().unwrap();
        drop(r);
        let mut out = lines_of(File::from(std::os::fd::OwnedFd::from(w)));
        out.line().extend_from_slice(b"x");
        out.end_line(true);
        let e = out.flush().unwrap_err();
        assert!(matches!(e, OutputError::Write { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "cannot write to the test file: Broken pipe (os error 32)"
        );
    }

    #[test]
    fn output_files_are_new_private_and_never_reached_through_a_link() {
        let dir = Dir::new("create");
        let new = dir.join("new");
        let made = create(&new, false).unwrap();
        assert_eq!(std::fs::metadata(&new).unwrap().mode() & 0o777, 0o600);
        drop(made);
        // Existing: refused, unless forced (then truncated and made private).
        std::fs::write(&new, b"keep").unwrap();
        std::fs::set_permissions(&new, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        assert!(matches!(create(&new, false), Err(CreateError::Exists)));
        assert_eq!(std::fs::read(&new).unwrap(), b"keep");
        let forced = create(&new, true).unwrap();
        assert!(forced.ours && forced.made.is_none());
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
        assert!(matches!(create(&dir.0, true), Err(CreateError::Directory)));
        // Devices are written as they are.
        create(Path::new("/dev/null"), false).unwrap();
        assert_eq!(
            CreateError::Exists.to_string(),
            "it exists: add --force to overwrite it"
        );
    }

    #[test]
    fn a_hard_link_or_a_fifo_is_refused_and_left_as_it_was() {
        let dir = Dir::new("planted");
        // A second name of a file: writing it would show the trace there too.
        let precious = dir.join("precious");
        std::fs::write(&precious, b"precious").unwrap();
        let linked = dir.join("linked");
        std::fs::hard_link(&precious, &linked).unwrap();
        let e = create(&linked, true).unwrap_err();
        assert!(matches!(e, CreateError::HardLinks { links: 2 }), "{e:?}");
        assert!(e.to_string().starts_with("it has 2 hard links"), "{e}");
        assert_eq!(std::fs::read(&precious).unwrap(), b"precious");
        // A FIFO, with no reader: refused at once, not waited on.
        let fifo = dir.join("fifo");
        let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
        for force in [false, true] {
            let e = create(&fifo, force).unwrap_err();
            assert!(matches!(e, CreateError::Fifo), "{e:?}");
        }
        // With a reader: refused all the same.
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        assert!(matches!(create(&fifo, true), Err(CreateError::Fifo)));
        drop(reader);
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo()
        );
    }

    #[test]
    fn the_descriptors_the_tracer_inherited_are_written_as_they_are() {
        for (path, fd) in [
            ("/dev/stdout", Some(1)),
            ("/dev/stderr", Some(2)),
            ("/dev/fd/7", Some(7)),
            ("/proc/self/fd/12", Some(12)),
            ("/proc/self/fd/", None),
            ("/proc/self/fd/+1", None),
            ("/dev/fd/1/x", None),
            ("/proc/1/fd/1", None),
            ("/dev/stdout2", None),
        ] {
            assert_eq!(inherited_fd(Path::new(path)), fd, "{path}");
        }
        let out = create(Path::new("/dev/stderr"), false).unwrap();
        assert!(!out.ours && out.made.is_none() && !out.stdout);
        let out = create(Path::new("/dev/stdout"), false).unwrap();
        assert!(!out.ours && out.stdout);
        // Not open, or open for reading only.
        let e = create(Path::new("/proc/self/fd/999999"), false).unwrap_err();
        assert!(
            matches!(e, CreateError::NotWritable { fd: 999_999 }),
            "{e:?}"
        );
        let read_only = File::open("/dev/null").unwrap();
        let path = format!("/dev/fd/{}", read_only.as_raw_fd());
        let e = create(Path::new(&path), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "descriptor {} is not open for writing",
                read_only.as_raw_fd()
            )
        );
    }

    #[test]
    fn a_file_the_run_made_and_wrote_nothing_to_is_removed_unless_kept() {
        let dir = Dir::new("made");
        let path = dir.join("out");
        // A run that failed before it wrote a line: the file goes.
        drop(Lines::file(create(&path, false).unwrap(), "out".into()));
        assert!(!path.exists());
        // Kept (a run that went as asked), or with a line in it: the file stays.
        let mut kept = Lines::file(create(&path, false).unwrap(), "out".into());
        kept.keep();
        drop(kept);
        assert!(path.exists());
        std::fs::remove_file(&path).unwrap();
        let mut written = Lines::file(create(&path, false).unwrap(), "out".into());
        written.line().extend_from_slice(b"x");
        written.end_line(true);
        written.flush().unwrap();
        drop(written);
        assert_eq!(std::fs::read(&path).unwrap(), b"x\n");
        // A file it did not make (forced over an existing one) stays, empty or not.
        drop(Lines::file(create(&path, true).unwrap(), "out".into()));
        assert!(path.exists());
        // A name replaced since it was made is not the run's: left alone.
        std::fs::remove_file(&path).unwrap();
        let made = create(&path, false).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"someone else's").unwrap();
        drop(made);
        assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
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
