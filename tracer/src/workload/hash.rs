//! A fast 64-bit stream hash, to check that the receiver got the file's bytes and not just
//! as many. Word at a time (a multiply-rotate mix per 8 bytes, like FxHash), so hashing runs
//! well above loopback TCP's speed and does not become what a transfer's wall time measures
//! (byte-at-a-time FNV-1a did: about 0.9 GB/s). Not cryptographic; it catches lost,
//! reordered or changed bytes.

use std::{
    fs::{File, OpenOptions},
    io,
    os::unix::fs::{FileExt as _, OpenOptionsExt as _},
    path::Path,
};

use anyhow::{Context as _, Result};

use super::sys::shrank;

const SEED: u64 = 0xcbf2_9ce4_8422_2325;
const K: u64 = 0x517c_c1b7_2722_0a95;

/// Incremental hash of a byte stream: the same value however the stream is split.
#[derive(Clone, Copy, Debug)]
pub(super) struct StreamHash {
    h: u64,
    /// Bytes of a word not complete yet, and how many.
    tail: [u8; 8],
    tail_len: usize,
    len: u64,
}

impl StreamHash {
    pub(super) fn new() -> Self {
        Self {
            h: SEED,
            tail: [0; 8],
            tail_len: 0,
            len: 0,
        }
    }

    fn mix(h: u64, w: u64) -> u64 {
        (h.rotate_left(5) ^ w).wrapping_mul(K)
    }

    pub(super) fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.tail_len > 0 {
            let take = (8 - self.tail_len).min(bytes.len());
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&bytes[..take]);
            self.tail_len += take;
            bytes = &bytes[take..];
            if self.tail_len < 8 {
                return;
            }
            self.h = Self::mix(self.h, u64::from_le_bytes(self.tail));
            self.tail_len = 0;
        }
        let mut words = bytes.chunks_exact(8);
        let mut h = self.h;
        for w in &mut words {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            h = Self::mix(h, u64::from_le_bytes(a));
        }
        self.h = h;
        let rest = words.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    pub(super) fn finish(self) -> u64 {
        let mut last = [0u8; 8];
        last[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
        let h = Self::mix(Self::mix(self.h, u64::from_le_bytes(last)), self.len);
        // Final avalanche (the murmur3 finalizer).
        let mut x = h ^ (h >> 33);
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
}

const BLOCK: usize = 1 << 20;
/// O_DIRECT wants the buffer, the offset and the length aligned to the logical block size.
const ALIGN: usize = 4096;

/// The hash of the first `size` bytes of `path`.
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
    let mut hash = StreamHash::new();
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

/// The hash of `bytes` in one go.
#[cfg(test)]
pub(super) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = StreamHash::new();
    h.update(bytes);
    h.finish()
}
