//! Textbook models: the steps the article's reasoning predicts for each method, per chunk,
//! under given conditions (page cache cold or warm, a real NIC or loopback).
//!
//! Numbers follow the article: read()+send() is steps 1-4 (each a mode switch and a copy),
//! sendfile() with gather DMA is steps 1-2 plus its return. Methods the article does not
//! cover are numbered the same way, one number per thing the application asks for.

use serde::Serialize;

use super::{Buffer, Engine, Ledger, Method, Mode, StepKind, narrate};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cache {
    /// The file is read from disk (the article's assumption).
    Cold,
    /// The file is already in the page cache: no disk DMA.
    Warm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Link {
    /// A real NIC: DMA from the socket buffer (or the referenced pages) to the device.
    Nic,
    /// Loopback: the skb is handed to the receiving socket, no NIC and no DMA; zero-copy
    /// pages are copied by the kernel before local delivery.
    Loopback,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Conditions {
    pub cache: Cache,
    pub link: Link,
    /// io-uring sends with SEND_ZC (pinned pages) rather than SEND (a copy).
    pub zc_send: bool,
}

impl Conditions {
    /// What the article assumes: data read from disk, sent through a NIC.
    pub const ARTICLE: Self = Self {
        cache: Cache::Cold,
        link: Link::Nic,
        zc_send: true,
    };
}

/// One textbook step with its article-style number and its sentence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TextStep {
    pub number: u32,
    #[serde(flatten)]
    pub kind: StepKind,
    pub text: String,
}

pub(crate) const PAGE: u64 = 4096;

/// Calls `f(number, step)` for every textbook step of `method` moving `bytes` in `chunk`
/// byte calls.
pub fn walk(
    method: Method,
    bytes: u64,
    chunk: u64,
    cond: &Conditions,
    f: &mut dyn FnMut(u32, StepKind),
) {
    let chunk = chunk.max(1);
    let mut w = Walk { cond, f };
    if method == Method::MmapWrite {
        w.enter(1, "mmap");
        w.leave(1, "mmap");
    }
    let mut off = 0;
    while off < bytes {
        let c = chunk.min(bytes - off);
        w.chunk(method, off, c);
        off += c;
    }
    if method == Method::MmapWrite {
        w.enter(4, "munmap");
        w.leave(4, "munmap");
    }
}

/// A walk under given conditions, handing each step to `f`.
struct Walk<'a> {
    cond: &'a Conditions,
    f: &'a mut dyn FnMut(u32, StepKind),
}

impl Walk<'_> {
    /// `syscall` switches the CPU to kernel mode.
    fn enter(&mut self, n: u32, syscall: &str) {
        self.switch(n, Mode::Kernel, syscall);
    }

    /// `syscall` returns: the CPU switches back to user mode.
    fn leave(&mut self, n: u32, syscall: &str) {
        self.switch(n, Mode::User, syscall);
    }

    fn switch(&mut self, n: u32, to: Mode, syscall: &str) {
        (self.f)(
            n,
            StepKind::ModeSwitch {
                to,
                syscall: syscall.to_string(),
            },
        );
    }

    fn copy(&mut self, n: u32, engine: Engine, from: Buffer, to: Buffer, bytes: u64) {
        (self.f)(
            n,
            StepKind::Copy {
                engine,
                from,
                to,
                bytes,
            },
        );
    }

    fn cpu(&mut self, n: u32, from: Buffer, to: Buffer, bytes: u64) {
        self.copy(n, Engine::Cpu, from, to, bytes);
    }

    fn page_ref(&mut self, n: u32, from: Buffer, to: Buffer, bytes: u64, pinned: bool) {
        (self.f)(
            n,
            StepKind::PageRef {
                from,
                to,
                bytes,
                pinned,
            },
        );
    }

    /// The page-cache lookup of a chunk, and its disk read when cold.
    fn read_in(&mut self, n: u32, off: u64, c: u64) {
        let pages = (off + c).div_ceil(PAGE) - off.div_ceil(PAGE);
        match self.cond.cache {
            Cache::Cold => {
                (self.f)(
                    n,
                    StepKind::Lookup {
                        hit_pages: 0,
                        miss_pages: pages,
                    },
                );
                self.copy(n, Engine::Dma, Buffer::Disk, Buffer::PageCache, c);
            }
            Cache::Warm => (self.f)(
                n,
                StepKind::Lookup {
                    hit_pages: pages,
                    miss_pages: 0,
                },
            ),
        }
    }

    /// The transmit of a chunk whose frags hold `from`'s pages.
    fn transmit(&mut self, n: u32, from: Buffer, c: u64) {
        match self.cond.link {
            Link::Nic => self.copy(n, Engine::Dma, from, Buffer::Nic, c),
            Link::Loopback => {
                if from == Buffer::User {
                    // Pinned user pages cannot be handed to a local socket: copied first.
                    self.cpu(n, Buffer::User, Buffer::Socket, c);
                }
                (self.f)(
                    n,
                    StepKind::Handoff {
                        bytes: c,
                        peer: false,
                    },
                )
            }
        }
    }

    /// The steps of one chunk of `c` bytes at `off`.
    fn chunk(&mut self, method: Method, off: u64, c: u64) {
        use Buffer::{PageCache, Pipe, Socket, User};
        match method {
            Method::ReadWrite | Method::ReadSend => {
                let send = if method == Method::ReadWrite {
                    "write"
                } else {
                    "sendto"
                };
                self.enter(1, "read");
                self.read_in(1, off, c);
                self.cpu(2, PageCache, User, c);
                self.leave(2, "read");
                self.enter(3, send);
                self.cpu(3, User, Socket, c);
                self.leave(4, send);
                self.transmit(4, Socket, c);
            }
            Method::MmapWrite => {
                self.enter(2, "write");
                self.read_in(2, off, c);
                self.cpu(2, PageCache, Socket, c);
                self.leave(3, "write");
                self.transmit(3, Socket, c);
            }
            Method::Sendfile => {
                self.enter(1, "sendfile");
                self.read_in(1, off, c);
                self.page_ref(2, PageCache, Socket, c, false);
                self.transmit(2, PageCache, c);
                self.leave(3, "sendfile");
            }
            Method::SendfileNogather => {
                self.enter(1, "sendfile");
                self.read_in(1, off, c);
                self.cpu(1, PageCache, Socket, c);
                self.transmit(2, Socket, c);
                self.leave(3, "sendfile");
            }
            Method::Splice => {
                self.enter(1, "splice");
                self.read_in(1, off, c);
                self.page_ref(1, PageCache, Pipe, c, false);
                self.leave(1, "splice");
                self.enter(2, "splice");
                self.page_ref(2, Pipe, Socket, c, false);
                self.transmit(2, PageCache, c);
                self.leave(2, "splice");
            }
            Method::MsgZerocopy => {
                self.enter(1, "read");
                self.read_in(1, off, c);
                self.cpu(2, PageCache, User, c);
                self.leave(2, "read");
                self.enter(3, "sendto");
                self.page_ref(3, User, Socket, c, true);
                self.transmit(3, User, c);
                self.leave(3, "sendto");
                self.enter(4, "recvmsg");
                self.leave(4, "recvmsg");
            }
            Method::IoUring => {
                self.enter(1, "io_uring_enter");
                self.read_in(2, off, c);
                self.cpu(2, PageCache, User, c);
                if self.cond.zc_send {
                    self.page_ref(3, User, Socket, c, true);
                    self.transmit(3, User, c);
                } else {
                    self.cpu(3, User, Socket, c);
                    self.transmit(3, Socket, c);
                }
                self.leave(4, "io_uring_enter");
            }
            Method::CopyFileRange => {
                self.enter(1, "copy_file_range");
                self.read_in(1, off, c);
                self.cpu(2, PageCache, PageCache, c);
                self.leave(3, "copy_file_range");
            }
        }
    }
}

/// The textbook steps with their sentences (one chunk's worth is what a lesson shows).
pub fn steps(method: Method, bytes: u64, chunk: u64, cond: &Conditions) -> Vec<TextStep> {
    let mut out = Vec::new();
    walk(method, bytes, chunk, cond, &mut |number, kind| {
        let text = format!("{number}. {}", narrate(&kind));
        out.push(TextStep { number, kind, text });
    });
    out
}

/// The textbook ledger (no wall time: the model has no clock).
pub fn ledger(method: Method, bytes: u64, chunk: u64, cond: &Conditions) -> Ledger {
    let mut l = Ledger::default();
    walk(method, bytes, chunk, cond, &mut |_, kind| l.record(&kind));
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn read_write_is_the_articles_four_copies_and_four_switches_per_chunk() {
        let l = ledger(Method::ReadWrite, 8 * MIB, 64 << 10, &Conditions::ARTICLE);
        assert_eq!(l.mode_switches, 4 * 128);
        assert_eq!(l.syscalls, 2 * 128);
        assert_eq!((l.cpu_copies, l.cpu_copy_bytes), (2 * 128, 16 * MIB));
        assert_eq!((l.dma_copies, l.dma_bytes), (2 * 128, 16 * MIB));
        assert_eq!((l.cache_hits, l.cache_misses), (0, 2048));
        assert_eq!(l.wall_ns, None);
    }

    #[test]
    fn sendfile_with_gather_dma_has_two_switches_and_no_cpu_copy() {
        let l = ledger(Method::Sendfile, 64 << 10, 64 << 10, &Conditions::ARTICLE);
        assert_eq!(
            (l.mode_switches, l.cpu_copies, l.dma_copies, l.page_refs),
            (2, 0, 2, 1)
        );
        let s = steps(Method::Sendfile, 64 << 10, 64 << 10, &Conditions::ARTICLE);
        assert_eq!(
            s.iter().map(|s| s.text.as_str()).collect::<Vec<_>>(),
            [
                "1. sendfile() switches the CPU from user mode to kernel mode.",
                "1. None of the 16 pages are in the page cache (miss): the kernel reads them from disk.",
                "1. The DMA engine copies 64 KiB from the disk into the page cache (the kernel read buffer).",
                "2. The socket buffer gets a descriptor (page references) for 64 KiB in the page cache (the kernel read buffer): no bytes are copied.",
                "2. The DMA engine copies 64 KiB from the page cache (the kernel read buffer) to the NIC directly (gather DMA).",
                "3. sendfile() returns: the CPU switches from kernel mode back to user mode.",
            ]
        );
    }

    #[test]
    fn sendfile_without_gather_is_three_copies_one_by_the_cpu_and_two_switches() {
        let l = ledger(
            Method::SendfileNogather,
            64 << 10,
            64 << 10,
            &Conditions::ARTICLE,
        );
        assert_eq!(
            (l.mode_switches, l.cpu_copies, l.dma_copies, l.page_refs),
            (2, 1, 2, 0)
        );
    }

    #[test]
    fn conditions_change_the_ledger_as_the_kernel_documents() {
        let warm_lo = Conditions {
            cache: Cache::Warm,
            link: Link::Loopback,
            zc_send: true,
        };
        let l = ledger(Method::ReadWrite, 100_000, 65536, &warm_lo);
        // No DMA at all: cached, and loopback has no NIC. The last chunk is partial.
        assert_eq!(
            (l.dma_copies, l.cpu_copies, l.cpu_copy_bytes),
            (0, 4, 200_000)
        );
        assert_eq!((l.cache_hits, l.cache_misses), (25, 0));
        // MSG_ZEROCOPY over loopback: pinned, then copied before delivery.
        let z = ledger(Method::MsgZerocopy, 65536, 65536, &warm_lo);
        assert_eq!((z.page_refs, z.cpu_copies, z.mode_switches), (1, 2, 6));
        let nic = ledger(Method::MsgZerocopy, 65536, 65536, &Conditions::ARTICLE);
        assert_eq!((nic.cpu_copies, nic.dma_copies), (1, 2));
        let no_zc = Conditions {
            zc_send: false,
            ..Conditions::ARTICLE
        };
        assert_eq!(ledger(Method::IoUring, 65536, 65536, &no_zc).cpu_copies, 2);
        assert_eq!(
            ledger(Method::IoUring, 65536, 65536, &Conditions::ARTICLE).cpu_copies,
            1
        );
    }

    #[test]
    fn every_method_has_a_model() {
        for m in Method::ALL {
            let l = ledger(m, 3 * 65536 + 1, 65536, &Conditions::ARTICLE);
            assert!(l.syscalls >= 4, "{m:?}: {l:?}");
            assert_eq!(l.cache_misses, 49, "{m:?}");
        }
        let cfr = ledger(Method::CopyFileRange, 65536, 65536, &Conditions::ARTICLE);
        assert_eq!(
            (cfr.cpu_copies, cfr.dma_copies, cfr.mode_switches),
            (1, 1, 2)
        );
        let mm = ledger(Method::MmapWrite, 2 * 65536, 65536, &Conditions::ARTICLE);
        assert_eq!((mm.syscalls, mm.cpu_copies, mm.dma_copies), (4, 2, 4));
    }

    #[test]
    fn copy_file_range_names_both_files_pages() {
        let s = steps(Method::CopyFileRange, 65536, 65536, &Conditions::ARTICLE);
        let copy: Vec<_> = s.iter().filter(|s| s.text.contains("CPU copies")).collect();
        assert_eq!(copy.len(), 1);
        assert_eq!(
            copy[0].text,
            "2. The CPU copies 64 KiB from the source file's pages into the destination file's pages, both in the page cache."
        );
    }
}
