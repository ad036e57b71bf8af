//! copy-file-range: the file copied into a new file by copy_file_range(), no socket and no
//! receiver; the copy is checked byte for byte afterwards. The copy has no name (see
//! [`unnamed_file`]): no other user can read it, and it is gone when the transfer ends,
//! however the process ends.

use std::{
    fs::File,
    io,
    os::{fd::AsRawFd as _, unix::fs::FileExt as _},
    path::Path,
};

use anyhow::{Context as _, Result, bail};

use super::{
    WorkloadError,
    hash::StreamHash,
    methods::Timed,
    scratch::unnamed_file,
    sys::{self, retry, shrank},
};

/// Copies `file` (`path`, `size` bytes whose 64-bit hash is `expected`) into a new, unnamed
/// file on `scratch_dir`'s filesystem, `chunk` bytes per call. Returns the timings and the
/// copy's inode.
pub(super) fn copy_file_range(
    path: &Path,
    file: &File,
    size: u64,
    chunk: usize,
    expected: u64,
    scratch_dir: &Path,
) -> Result<(Timed, u64)> {
    let dst = unnamed_file(scratch_dir).with_context(|| {
        format!(
            "copy-file-range: cannot create its destination in the scratch directory {}",
            scratch_dir.display()
        )
    })?;
    let dst_ino = sys::fstat(dst.as_raw_fd())
        .context("fstat of the copy")?
        .st_ino;
    let (src_fd, dst_fd) = (file.as_raw_fd(), dst.as_raw_fd());
    let null = std::ptr::null_mut::<libc::loff_t>();
    let start_ns = sys::mark_start();
    let mut off = 0u64;
    while off < size {
        let want = (chunk as u64).min(size - off) as usize;
        // SAFETY: valid fds; null offsets use (and advance) both file positions.
        let n =
            match retry(|| unsafe { libc::copy_file_range(src_fd, null, dst_fd, null, want, 0) }) {
                Ok(n) => n,
                Err(e) => return Err(copy_error(e, path, size, scratch_dir)),
            };
        if n == 0 {
            return Err(shrank(off, size));
        }
        off += n as u64;
    }
    let end_ns = sys::mark_end();
    verify(file, &dst, size, expected)?;
    Ok((Timed::plain(start_ns, end_ns), dst_ino))
}

fn copy_error(e: io::Error, src: &Path, size: u64, scratch_dir: &Path) -> anyhow::Error {
    match e.raw_os_error() {
        // Named by its directory, which the user knows (the demo's own input has no name
        // but /proc/self/fd/N).
        Some(libc::ENOSPC) => anyhow::anyhow!(
            "copy-file-range: no space left in {} for the copy ({size} bytes, as large as the \
             file copied): free some space there",
            scratch_dir.display(),
        ),
        Some(libc::EXDEV) => anyhow::anyhow!(
            "copy-file-range needs the source and the destination on one filesystem: {} and \
             the scratch directory {} are on different ones (EXDEV)",
            src.display(),
            scratch_dir.display()
        ),
        Some(libc::ENOSYS | libc::EOPNOTSUPP) => WorkloadError::Unsupported {
            method: "copy-file-range",
            why: format!("copy_file_range: {e}"),
        }
        .into(),
        _ => anyhow::Error::new(e).context("copy_file_range"),
    }
}

/// Reads the source and the copy back and compares them.
fn verify(src: &File, dst: &File, size: u64, expected: u64) -> Result<()> {
    let copied = dst.metadata().context("fstat of the copy")?.len();
    if copied != size {
        bail!("transfer lost bytes: the copy has {copied} of the file's {size} bytes");
    }
    const BLOCK: usize = 1 << 16;
    let (mut a, mut b) = (vec![0u8; BLOCK], vec![0u8; BLOCK]);
    let mut hash = StreamHash::new();
    let mut off = 0u64;
    while off < size {
        let n = BLOCK.min((size - off) as usize);
        src.read_exact_at(&mut a[..n], off)
            .context("reading the source back")?;
        dst.read_exact_at(&mut b[..n], off)
            .context("reading the copy back")?;
        if a[..n] != b[..n] {
            let at = off
                + a[..n]
                    .iter()
                    .zip(&b[..n])
                    .position(|(x, y)| x != y)
                    .unwrap_or(0) as u64;
            bail!("transfer corrupted: the copy differs from the source at byte {at}");
        }
        hash.update(&b[..n]);
        off += n as u64;
    }
    let got = hash.finish();
    if got != expected {
        bail!(
            "transfer corrupted: the copy hashes to {got:016x}, the file did to \
             {expected:016x} before the copy (did it change?)"
        );
    }
    Ok(())
}
