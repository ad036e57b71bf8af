//! Files the transfers make for themselves, made so that no other user can read them and
//! nothing is left behind when the process dies (even by SIGKILL): unnamed files, opened
//! relative to a directory's descriptor, never through a symbolic link.

use std::{
    ffi::CString,
    fs::File,
    io,
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::Path,
};

/// Mode of every file the tracer creates: its owner's only.
pub const PRIVATE: libc::mode_t = 0o600;

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))
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
        .map_err(|_| io::Error::other("a random name with a NUL byte"))?;
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
    fn random_names_differ() {
        let (a, b) = (random_name(12).unwrap(), random_name(12).unwrap());
        assert_eq!(a.len(), 12);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_ne!(a, b);
    }
}
