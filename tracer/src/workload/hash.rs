//! 64-bit FNV-1a, to check that the receiver got the file's bytes and not just as many.

use std::{
    fs::{File, OpenOptions},
    io,
    os::unix::fs::{FileExt as _, OpenOptionsExt as _},
    path::Path,
};

use anyhow::{Context as _, Result};

use super::sys::shrank;

/// Incremental 64-bit FNV-1a.
#[derive(Clone, Copy, Debug)]
pub(super) struct Fnv(u64);

impl Fnv {
    pub(super) fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(super) fn update(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }

    pub(super) fn finish(self) -> u64 {
        self.0
    }
}

const BLOCK: usize = 1 << 20;
/// O_DIRECT wants the buffer, the offset and the length aligned to the logical block size.
const ALIGN: usize = 4096;

/// The FNV-1a of the first `size` bytes of `path`.
///
/// Read with O_DIRECT where the filesystem allows it, so hashing neither fills the page
/// cache (a file just evicted for a cold run stays cold) nor empties it; buffered reads
/// otherwise (tmpfs, for one, refuses O_DIRECT, and has no cold state anyway).
pub(super) fn hash_file(path: &Path, size: u64) -> Result<u64> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        Ok(f) => match hash_fd(&f, size, true) {
            Ok(h) => return Ok(h),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e).with_context(|| format!("hashing {}", path.display())),
        },
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    }
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    hash_fd(&f, size, false).with_context(|| format!("hashing {}", path.display()))
}

fn hash_fd(f: &File, size: u64, direct: bool) -> io::Result<u64> {
    let mut raw = vec![0u8; BLOCK + ALIGN];
    let start = raw.as_ptr().align_offset(ALIGN).min(ALIGN);
    let buf = &mut raw[start..start + BLOCK];
    let mut hash = Fnv::new();
    let mut off = 0u64;
    while off < size {
        // O_DIRECT reads whole blocks: ask for a full buffer and keep what is in the size.
        let want = if direct {
            BLOCK
        } else {
            BLOCK.min((size - off) as usize)
        };
        let n = match f.read_at(&mut buf[..want], off) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Err(io::Error::other(shrank(off, size)));
        }
        let n = n.min((size - off) as usize);
        if direct && n % ALIGN != 0 && off + (n as u64) < size {
            // A short direct read mid-file would leave the next offset unaligned.
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        hash.update(&buf[..n]);
        off += n as u64;
    }
    Ok(hash.finish())
}

/// The FNV-1a of `bytes` in one go.
#[cfg(test)]
pub(super) fn fnv(bytes: &[u8]) -> u64 {
    let mut h = Fnv::new();
    h.update(bytes);
    h.finish()
}
