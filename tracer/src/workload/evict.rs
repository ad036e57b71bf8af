//! Dropping a file from the page cache, for cold runs.

use std::{fs::File, io, os::fd::AsRawFd as _, path::Path};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

/// A file's page-cache residency before and after [`evict`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Residency {
    /// Pages the file spans.
    pub pages: u64,
    pub resident_before: u64,
    /// Pages still cached after the eviction (the kernel keeps pages that are mapped,
    /// locked or under writeback; the caller reports them).
    pub resident_after: u64,
}

/// Writes back `path`'s dirty pages (fdatasync) and asks the kernel to drop its pages from
/// the page cache (`posix_fadvise(POSIX_FADV_DONTNEED)`), counting the resident pages
/// before and after with mincore(). Pages that stay resident are not an error.
pub fn evict(path: &Path) -> Result<Residency> {
    // Checked before opening: opening a FIFO would block until a writer comes.
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = meta.len();
    if size == 0 {
        bail!("{} is empty: there is nothing to evict", path.display());
    }
    file.sync_data()
        .with_context(|| format!("fdatasync of {}", path.display()))?;
    let (pages, resident_before) = resident(&file, size)?;
    // SAFETY: posix_fadvise on an open fd; offset 0 and length 0 mean the whole file.
    let err = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err))
            .with_context(|| format!("posix_fadvise(DONTNEED) of {}", path.display()));
    }
    let (_, resident_after) = resident(&file, size)?;
    Ok(Residency {
        pages,
        resident_before,
        resident_after,
    })
}

/// (pages the file spans, pages of it in the page cache), by mincore() on a fresh mapping
/// that is never touched (so it maps no page and cannot keep any resident).
fn resident(file: &File, size: u64) -> Result<(u64, u64)> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = u64::try_from(page).ok().filter(|p| *p > 0).unwrap_or(4096);
    let len = usize::try_from(size).context("the file is too large to map")?;
    let pages = size.div_ceil(page);
    let mut vec = vec![0u8; pages as usize];
    // SAFETY: a fresh shared read-only mapping of an open regular file; len > 0.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if map == libc::MAP_FAILED {
        return Err(io::Error::last_os_error()).context("mmap for mincore");
    }
    // SAFETY: map..map+len is our mapping; vec has one byte per page of it.
    let ret = unsafe { libc::mincore(map, len, vec.as_mut_ptr()) };
    let err = io::Error::last_os_error();
    // SAFETY: map is the mapping made above, of len bytes; nothing refers into it.
    unsafe { libc::munmap(map, len) };
    if ret < 0 {
        return Err(err).context("mincore");
    }
    Ok((pages, vec.iter().filter(|b| **b & 1 != 0).count() as u64))
}
