//! Files the transfers make for themselves, made so that no other user can read them and
//! nothing is left behind when the process dies (even by SIGKILL): unnamed files, opened
//! relative to a directory's descriptor, never through a symbolic link.

use std::{
    ffi::CString,
    fs::File,
    io,
    os::{
        fd::{AsRawFd as _, FromRawFd as _, IntoRawFd as _, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::{Path, PathBuf},
};

/// Mode of every file the tracer creates: its owner's only.
pub const PRIVATE: libc::mode_t = 0o600;

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_nul| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))
}

/// `open(2)` (EINTR retried) into an owned descriptor.
fn open(path: &CString, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    openat(libc::AT_FDCWD, path, flags, mode)
}

/// `openat(2)` (EINTR retried) into an owned descriptor; every descriptor is close-on-exec.
pub(crate) fn openat(
    dir: libc::c_int,
    name: &CString,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: name is NUL-terminated; the mode is read only with O_CREAT/O_TMPFILE.
        let fd = unsafe {
            libc::openat(
                dir,
                name.as_ptr(),
                flags | libc::O_CLOEXEC,
                libc::c_uint::from(mode),
            )
        };
        if fd >= 0 {
            // SAFETY: openat returned a new descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `len` random bytes as lowercase letters and digits (for names nobody can guess).
pub(crate) fn random_name(len: usize) -> io::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        // SAFETY: the buffer is valid for len - filled bytes from filled.
        let n = unsafe {
            libc::getrandom(
                bytes[filled..].as_mut_ptr().cast(),
                len - filled,
                libc::GRND_NONBLOCK,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += n as usize;
    }
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

/// A new read-write file in `dir` that has no name: `O_TMPFILE`, mode 0600. It is on
/// `dir`'s filesystem (what copy_file_range's in-kernel copy needs), no other user can
/// open it, and the kernel frees it when its last descriptor closes, however the process
/// ends. Where the filesystem has no `O_TMPFILE`, a file created with O_EXCL and
/// O_NOFOLLOW under a random name and unlinked at once.
pub fn unnamed_file(dir: &Path) -> io::Result<File> {
    let c = cstring(dir)?;
    match open(&c, libc::O_TMPFILE | libc::O_RDWR, PRIVATE) {
        Ok(fd) => return Ok(File::from(fd)),
        // EOPNOTSUPP: this filesystem has no O_TMPFILE; EISDIR: a kernel without it
        // (before 3.11) sees only O_DIRECTORY.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR)) => {}
        Err(e) => return Err(e),
    }
    let dirfd = open(&c, libc::O_DIRECTORY | libc::O_RDONLY, 0)?;
    let name = CString::new(format!(".tracer-{}", random_name(12)?))
        .map_err(|_nul| io::Error::other("a random name with a NUL byte"))?;
    let fd = openat(
        dirfd.as_raw_fd(),
        &name,
        libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_RDWR,
        PRIVATE,
    )?;
    // SAFETY: name is NUL-terminated; dirfd is the directory it was created in.
    if unsafe { libc::unlinkat(dirfd.as_raw_fd(), name.as_ptr(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(File::from(fd))
}

/// Prefix of the demo's scratch directories: `tracer-demo-PID-RANDOM`.
const PREFIX: &str = "tracer-demo-";

fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

fn fstat(fd: &OwnedFd) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: st is writable and the size of a struct stat.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat succeeded and filled the struct.
    Ok(unsafe { st.assume_init() })
}

/// Whether the scratch directory may go in a `$TMPDIR` owned by `owner`: always for an
/// unprivileged tracer (it is the user's own choice), and as root only in a directory
/// root owns. Through sudo, $TMPDIR is the user's: a user who can rename entries in it
/// could swap a symbolic link in and make root write where the user chooses.
fn tmpdir_trusted(euid: u32, owner: u32) -> bool {
    euid != 0 || owner == 0
}

/// The directory the scratch directory goes in, opened: `$TMPDIR` when set and trusted
/// ([`tmpdir_trusted`], checked on the opened descriptor, so it cannot change in
/// between), else /var/tmp (disk-backed on most systems, where /tmp is often tmpfs: no
/// page cache to evict and no disk DMA to see), else /tmp.
fn open_base() -> anyhow::Result<(OwnedFd, PathBuf)> {
    use anyhow::Context as _;
    let dir_flags = libc::O_DIRECTORY | libc::O_RDONLY;
    if let Some(tmpdir) = std::env::var_os("TMPDIR").filter(|t| !t.is_empty()) {
        let path = PathBuf::from(tmpdir);
        let fd = open(&cstring(&path)?, dir_flags, 0)
            .with_context(|| format!("TMPDIR={} cannot be opened", path.display()))?;
        let owner = fstat(&fd)?.st_uid;
        if tmpdir_trusted(geteuid(), owner) {
            return Ok((fd, path));
        }
        crate::say!(
            "tracer: note: TMPDIR={} is ignored: root only writes in a directory root owns",
            path.display()
        );
    }
    for base in ["/var/tmp", "/tmp"] {
        if let Ok(fd) = open(&cstring(Path::new(base))?, dir_flags, 0) {
            return Ok((fd, PathBuf::from(base)));
        }
    }
    anyhow::bail!(
        "neither /var/tmp nor /tmp can be opened: set TMPDIR to a directory for the demo's files"
    )
}

/// The pid in a scratch directory's name (`tracer-demo-PID-...`).
fn pid_of(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(PREFIX)?;
    rest.split('-').next()?.parse().ok()
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH))
}

/// Removes the scratch directories that runs killed with SIGKILL left in `base`: those
/// of dead pids, owned by this user, and what they hold (files of older versions; this
/// one unlinks its input once it is open). Nothing is followed: the directory is opened
/// with O_NOFOLLOW and its entries removed relative to it. Returns how many went.
fn clear_stale(base: &OwnedFd) -> usize {
    let Ok(dup) = base.try_clone() else { return 0 };
    // SAFETY: fdopendir takes ownership of the duplicate on success.
    let dirp = unsafe { libc::fdopendir(dup.as_raw_fd()) };
    if dirp.is_null() {
        return 0;
    }
    // The stream owns the duplicate now; closedir closes it.
    let _ = dup.into_raw_fd();
    let mut stale = Vec::new();
    loop {
        // SAFETY: dirp is an open directory stream.
        let entry = unsafe { libc::readdir(dirp) };
        if entry.is_null() {
            break;
        }
        // SAFETY: readdir returned a valid entry whose d_name is NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) };
        if let Some(pid) = name.to_str().ok().and_then(pid_of)
            && !alive(pid)
        {
            stale.push(name.to_owned());
        }
    }
    // SAFETY: closing the stream we opened (and the descriptor it owns).
    unsafe { libc::closedir(dirp) };
    stale
        .iter()
        .filter(|name| remove_stale(base, name).is_ok())
        .count()
}

/// Removes `base/name` if it is a directory of this user's, with the files in it.
fn remove_stale(base: &OwnedFd, name: &CString) -> io::Result<()> {
    let dir = openat(
        base.as_raw_fd(),
        name,
        libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_RDONLY,
        0,
    )?;
    if fstat(&dir)?.st_uid != geteuid() {
        return Err(io::Error::from(io::ErrorKind::PermissionDenied));
    }
    for entry in std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            let c = CString::new(entry.file_name().as_bytes())?;
            // SAFETY: c is NUL-terminated; the entry is relative to the directory's fd.
            unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) };
        }
    }
    // SAFETY: name is NUL-terminated and relative to base.
    if unsafe { libc::unlinkat(base.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The demo's private directory, `tracer-demo-PID-RANDOM` (mode 0700), and the directory
/// it is in, both held open: files are made relative to its descriptor, with O_EXCL and
/// O_NOFOLLOW. Removed when dropped; one left by a killed run is removed by the next.
pub struct ScratchDir {
    base: OwnedFd,
    base_path: PathBuf,
    dir: OwnedFd,
    name: CString,
    path: PathBuf,
}

impl ScratchDir {
    /// Makes the directory (see [`open_base`] for where), first removing those that
    /// killed runs left there.
    pub fn new() -> anyhow::Result<Self> {
        let (base, base_path) = open_base()?;
        Self::make_in(base, base_path)
    }

    /// Makes the directory in `base` (opened), after removing stale ones there.
    fn make_in(base: OwnedFd, base_path: PathBuf) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let cleared = clear_stale(&base);
        if cleared > 0 {
            crate::say!(
                "tracer: removed {cleared} scratch director{} left in {} by killed runs",
                if cleared == 1 { "y" } else { "ies" },
                base_path.display()
            );
        }
        let err = || format!("cannot create a directory in {}", base_path.display());
        for _ in 0..100 {
            let name = format!("{PREFIX}{}-{}", std::process::id(), random_name(8)?);
            let c = CString::new(name.clone()).with_context(err)?;
            // SAFETY: c is NUL-terminated and relative to the base's descriptor.
            if unsafe { libc::mkdirat(base.as_raw_fd(), c.as_ptr(), 0o700) } != 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::AlreadyExists {
                    continue;
                }
                return Err(e).with_context(err);
            }
            let dir = openat(
                base.as_raw_fd(),
                &c,
                libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_RDONLY,
                0,
            )
            .with_context(err)?;
            // Made by us a moment ago, unless someone swapped it: then it is not ours.
            let st = fstat(&dir).with_context(err)?;
            if st.st_uid != geteuid() || st.st_mode & 0o077 != 0 {
                anyhow::bail!(
                    "{}/{name} was replaced while it was made: refusing to use it",
                    base_path.display()
                );
            }
            return Ok(Self {
                base,
                path: base_path.join(name),
                base_path,
                dir,
                name: c,
            });
        }
        anyhow::bail!(
            "cannot create a scratch directory in {}",
            base_path.display()
        )
    }

    /// The directory's path (for messages, and for copy-file-range's unnamed copy).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates `name` in the directory, read-write: O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600.
    pub fn create(&self, name: &str) -> io::Result<File> {
        let c = CString::new(name)?;
        let fd = openat(
            self.dir.as_raw_fd(),
            &c,
            libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_RDWR,
            PRIVATE,
        )?;
        Ok(File::from(fd))
    }

    /// Removes `name` from the directory (an open file stays readable through its
    /// descriptor, and the kernel frees it when that closes).
    pub fn unlink(&self, name: &str) -> io::Result<()> {
        let c = CString::new(name)?;
        // SAFETY: c is NUL-terminated and relative to the directory's descriptor.
        if unsafe { libc::unlinkat(self.dir.as_raw_fd(), c.as_ptr(), 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Bytes an unprivileged user may still write on the directory's filesystem.
    pub fn available(&self) -> io::Result<u64> {
        let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
        // SAFETY: st is writable and the size of a struct statvfs.
        if unsafe { libc::fstatvfs(self.dir.as_raw_fd(), st.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fstatvfs succeeded and filled the struct.
        let st = unsafe { st.assume_init() };
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }
}

/// `n` bytes in MiB or GiB, for messages about room.
fn mib(n: u64) -> String {
    if n >= 1 << 30 {
        format!("{:.1} GiB", n as f64 / f64::from(1 << 30))
    } else {
        format!("{:.1} MiB", n as f64 / f64::from(1 << 20))
    }
}

/// A file made for one run that has no name: the kernel frees it when [`Unnamed::file`]
/// closes, however the process ends (SIGKILL included).
pub struct Unnamed {
    pub file: File,
    /// `/proc/self/fd/N`: a path that opens the file, for code that takes a path.
    pub path: PathBuf,
    /// A directory on the file's filesystem (where copy-file-range can put its copy).
    pub fs_dir: PathBuf,
}

/// Bytes the demo's input needs on its filesystem to send it with `methods`: its `size`,
/// twice that when copy-file-range is among them (its copy goes on the same filesystem).
pub fn room_for(methods: &[crate::model::Method], size: u64) -> u64 {
    if methods.contains(&crate::model::Method::CopyFileRange) {
        size.saturating_mul(2)
    } else {
        size
    }
}

/// Creates an empty file for `size` bytes in a fresh [`ScratchDir`] and unlinks it at once
/// (the directory goes too); fails with a one-line error, before anything is written,
/// when the filesystem has less than `room` bytes free ([`room_for`]).
pub fn unnamed_input(size: u64, room: u64) -> anyhow::Result<Unnamed> {
    use anyhow::Context as _;
    let scratch = ScratchDir::new()?;
    let base = scratch.base_path.clone();
    let free = scratch.available().unwrap_or(u64::MAX);
    if room.max(size) > free {
        let copy = if room > size {
            format!(
                " (and as much again for copy-file-range's copy: {})",
                mib(room)
            )
        } else {
            String::new()
        };
        anyhow::bail!(
            "--size {}{copy}: {} has only {} free: choose a smaller --size, or set TMPDIR to \
             a directory with room (as root, one root owns)",
            mib(size),
            base.display(),
            mib(free)
        );
    }
    let file = scratch
        .create("input")
        .with_context(|| format!("cannot create the input in {}", scratch.path().display()))?;
    scratch
        .unlink("input")
        .with_context(|| format!("cannot unlink the input in {}", scratch.path().display()))?;
    let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    Ok(Unnamed {
        file,
        path,
        fs_dir: base,
    })
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Empty by then: the input is unlinked once open.
        // SAFETY: the name is NUL-terminated and relative to the base's descriptor.
        unsafe {
            libc::unlinkat(
                self.base.as_raw_fd(),
                self.name.as_ptr(),
                libc::AT_REMOVEDIR,
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    #[test]
    fn an_unnamed_file_is_private_and_in_no_directory() {
        let dir = std::env::temp_dir().join(format!("tracer-unnamed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = unnamed_file(&dir).unwrap();
        let meta = f.metadata().unwrap();
        let entries = std::fs::read_dir(&dir).unwrap().count();
        std::fs::remove_dir(&dir).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(meta.nlink(), 0, "the file has no name");
        assert_eq!(entries, 0);
        let e = unnamed_file(&dir).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn copy_file_range_needs_room_for_its_copy_too() {
        use crate::model::Method;
        assert_eq!(room_for(&[Method::Sendfile], 8 << 20), 8 << 20);
        assert_eq!(room_for(&[Method::CopyFileRange], 8 << 20), 16 << 20);
        assert_eq!(room_for(&Method::ALL, 8 << 20), 16 << 20);
        // More than any filesystem has: refused before anything is made, saying why.
        let Err(e) = unnamed_input(1, u64::MAX) else {
            panic!("room for u64::MAX bytes");
        };
        let e = e.to_string();
        assert!(
            e.starts_with("--size 0.0 MiB (and as much again for copy-file-range's copy:"),
            "{e}"
        );
        assert!(e.contains("has only"), "{e}");
    }

    #[test]
    fn random_names_differ() {
        let (a, b) = (random_name(12).unwrap(), random_name(12).unwrap());
        assert_eq!(a.len(), 12);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_ne!(a, b);
    }

    #[test]
    fn root_trusts_only_a_tmpdir_root_owns() {
        assert!(tmpdir_trusted(0, 0));
        assert!(!tmpdir_trusted(0, 1000));
        assert!(tmpdir_trusted(1000, 1000));
        assert!(tmpdir_trusted(1000, 0));
    }

    #[test]
    fn stale_names_give_their_pid() {
        assert_eq!(pid_of("tracer-demo-1234-ab12cd34"), Some(1234));
        assert_eq!(pid_of("tracer-demo-1234-0"), Some(1234));
        assert_eq!(pid_of("tracer-demo-x"), None);
        assert_eq!(pid_of("other-1234"), None);
        assert!(alive(std::process::id() as i32));
        assert!(!alive(0));
    }

    #[test]
    fn the_scratch_directory_is_private_and_cleared_after_a_killed_run() {
        let base = std::env::temp_dir().join(format!("tracer-scratch-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        // What a run killed with SIGKILL left (pid_max is at most 2^22: never alive).
        let stale = base.join("tracer-demo-4194305-0");
        std::fs::create_dir_all(&stale).unwrap();
        std::fs::write(stale.join("input"), b"left over").unwrap();
        // Not a directory of a run: a symbolic link with the name is left alone.
        std::os::unix::fs::symlink(&base, base.join("tracer-demo-4194306-x")).unwrap();
        let fd = open(
            &cstring(&base).unwrap(),
            libc::O_DIRECTORY | libc::O_RDONLY,
            0,
        )
        .unwrap();
        let scratch = ScratchDir::make_in(fd, base.clone()).unwrap();
        assert!(!stale.exists(), "the stale directory is removed");
        assert!(base.join("tracer-demo-4194306-x").is_symlink());
        let meta = std::fs::symlink_metadata(scratch.path()).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.mode() & 0o777, 0o700);
        let f = scratch.create("input").unwrap();
        assert_eq!(f.metadata().unwrap().mode() & 0o777, 0o600);
        let e = scratch.create("input").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        scratch.unlink("input").unwrap();
        assert!(scratch.available().unwrap() > 0);
        let path = scratch.path().to_path_buf();
        drop(scratch);
        assert!(!path.exists(), "removed when dropped");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
