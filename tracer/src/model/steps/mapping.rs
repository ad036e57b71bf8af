//! Where the bytes of a buffer come from (KERNEL_PATHS.md §6): a shared or read-only
//! `mmap` of a file shows its page cache, a buffer the thread last filled with read() of
//! a file holds that file's bytes, and a pipe holds the file last spliced into it.

use std::collections::HashMap;

use super::{Endpoint, Ino, Pid, Tid};
use crate::model::Buffer;

/// Where the bytes of a send come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Src {
    /// The user buffer last filled by read() of this file.
    ReadFrom(Ino),
    /// A mapping of this file (mmap): the copy reads the page cache through it.
    Mapped(Ino),
    Unknown,
}

impl Src {
    pub(super) fn endpoint(self) -> Endpoint {
        match self {
            Self::ReadFrom(ino) | Self::Mapped(ino) => Endpoint::File { ino },
            Self::Unknown => Endpoint::User,
        }
    }

    pub(super) fn buffer(self) -> Buffer {
        match self {
            Self::Mapped(_) => Buffer::PageCache,
            _ => Buffer::User,
        }
    }
}

/// A user buffer a thread filled with read() from a file: a later send of bytes inside it
/// sends that file's data.
struct ReadBuf {
    addr: u64,
    len: u64,
    ino: Ino,
}

impl ReadBuf {
    fn overlaps(&self, addr: u64, len: u64) -> bool {
        addr < self.addr + self.len && self.addr < addr.saturating_add(len)
    }
}

/// How many filled buffers a thread's record keeps.
const READ_BUFS: usize = 16;

/// A file mapped into a process.
struct Mapping {
    addr: u64,
    len: u64,
    ino: Ino,
}

/// Removes `[addr, addr + len)` from a process's file mappings (munmap may cut one in
/// two, or cover several).
fn unmap(maps: &mut Vec<Mapping>, addr: u64, len: u64) {
    let end = addr.saturating_add(len);
    let mut kept = Vec::with_capacity(maps.len() + 1);
    for m in maps.drain(..) {
        let m_end = m.addr + m.len;
        if end <= m.addr || m_end <= addr {
            kept.push(m);
            continue;
        }
        if m.addr < addr {
            kept.push(Mapping {
                addr: m.addr,
                len: addr - m.addr,
                ino: m.ino,
            });
        }
        if end < m_end {
            kept.push(Mapping {
                addr: end,
                len: m_end - end,
                ino: m.ino,
            });
        }
    }
    *maps = kept;
}

/// The model's record of which file's bytes sit where.
#[derive(Default)]
pub(super) struct Sources {
    /// tid -> the buffers that thread filled from files (most recent last).
    filled_by_read: HashMap<Tid, Vec<ReadBuf>>,
    /// tid -> the file of the thread's last read, while no call that starts something
    /// else (a receive, a mapping, an in-kernel copy) came after it: what a vectored send
    /// (no single buffer) sends.
    last_read: HashMap<Tid, Ino>,
    /// pid -> that process's shared or read-only file mappings.
    file_mappings: HashMap<Pid, Vec<Mapping>>,
    /// (pid, pipe ino) -> the file last spliced into the pipe.
    source_file_by_pipe: HashMap<(Pid, Ino), Ino>,
}

impl Sources {
    /// Where the bytes a thread sends from `buf` come from; `None`: a vectored send (no
    /// single buffer).
    pub(super) fn of_buffer(&self, pid: Pid, tid: Tid, buf: Option<u64>) -> Src {
        if let Some(buf) = buf
            && let Some(m) = self
                .file_mappings
                .get(&pid)
                .and_then(|maps| maps.iter().find(|m| buf >= m.addr && buf < m.addr + m.len))
        {
            return Src::Mapped(m.ino);
        }
        // The file last read into the buffer being sent; for a vectored send (no single
        // buffer), the thread's last read.
        let hit = match buf {
            Some(buf) => self
                .filled_by_read
                .get(&tid)
                .and_then(|r| r.iter().rev().find(|r| r.overlaps(buf, 1)))
                .map(|r| r.ino),
            None => self.last_read.get(&tid).copied(),
        };
        match hit {
            Some(ino) => Src::ReadFrom(ino),
            None => Src::Unknown,
        }
    }

    /// The file a mapping of `pid` overlapping `[addr, addr + len)` maps, if any.
    pub(super) fn mapped_file(&self, pid: Pid, addr: u64, len: u64) -> Option<Ino> {
        let m = self
            .file_mappings
            .get(&pid)?
            .iter()
            .find(|m| addr < m.addr + m.len && m.addr < addr.saturating_add(len))?;
        Some(m.ino)
    }

    /// Thread `tid` of `pid` mapped file `ino` at `addr`. What the thread read of that
    /// file before was its header (the loader reads a library's ELF header, then maps
    /// it): that buffer no longer holds a file's bytes for a send.
    pub(super) fn mapped(&mut self, pid: Pid, tid: Tid, addr: u64, len: u64, ino: Ino) {
        if let Some(reads) = self.filled_by_read.get_mut(&tid) {
            reads.retain(|r| r.ino != ino);
        }
        self.file_mappings
            .entry(pid)
            .or_default()
            .push(Mapping { addr, len, ino });
    }

    /// `pid` unmapped `[addr, addr + len)`.
    pub(super) fn unmapped(&mut self, pid: Pid, addr: u64, len: u64) {
        if let Some(maps) = self.file_mappings.get_mut(&pid) {
            unmap(maps, addr, len);
        }
    }

    /// A thread's read() of file `ino` filled `[addr, addr + len)`.
    pub(super) fn filled(&mut self, tid: Tid, addr: u64, len: u64, ino: Ino) {
        let reads = self.filled_by_read.entry(tid).or_default();
        reads.retain(|r| !r.overlaps(addr, len));
        if reads.len() == READ_BUFS {
            reads.remove(0);
        }
        reads.push(ReadBuf { addr, len, ino });
        self.last_read.insert(tid, ino);
    }

    /// Thread `tid` started a call that is neither a read of a file nor a send of what it
    /// read (a receive, a mapping, an in-kernel copy): a vectored send after it no longer
    /// sends the thread's last read (nginx's writev() of the headers after the request).
    pub(super) fn other_call(&mut self, tid: Tid) {
        self.last_read.remove(&tid);
    }

    /// A thread received `len` bytes into `addr`: the buffer holds them now, not a file's.
    pub(super) fn received(&mut self, tid: Tid, addr: u64, len: u64) {
        if let Some(reads) = self.filled_by_read.get_mut(&tid) {
            reads.retain(|r| !r.overlaps(addr, len));
        }
    }

    /// `pid` spliced file `ino` into `pipe`.
    pub(super) fn spliced(&mut self, pid: Pid, pipe: Ino, ino: Ino) {
        self.source_file_by_pipe.insert((pid, pipe), ino);
    }

    /// The file last spliced into `pipe` by `pid`.
    pub(super) fn pipe_source(&self, pid: Pid, pipe: Ino) -> Option<Ino> {
        self.source_file_by_pipe.get(&(pid, pipe)).copied()
    }
}
