//! The pure model: kernel events become the steps of the article (mode switches, copies,
//! page references), grouped into transfers with a ledger each; textbook models of every
//! method; and the comparison of the two.
//!
//! Nothing here does I/O or reads a clock: time comes from event timestamps, so a replay
//! or a test gives the same steps as the live run did.

pub mod classify;
pub mod compare;
mod evidence;
mod method;
pub mod steps;
pub mod textbook;

use serde::Serialize;

pub use evidence::{Evidence, Inference, LookupProbe, Seen, SendDecision};
pub use method::Method;
pub use steps::{Model, Transfer, TransferId};

/// Where bytes live (DESIGN.md's vocabulary, plus the pipe that splice goes through).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Buffer {
    Disk,
    PageCache,
    User,
    Pipe,
    Socket,
    Nic,
}

impl Buffer {
    /// How narration names the buffer.
    pub fn label(self) -> &'static str {
        match self {
            Self::Disk => "the disk",
            Self::PageCache => "the page cache (the kernel read buffer)",
            Self::User => "the application's buffer",
            Self::Pipe => "the pipe",
            Self::Socket => "the socket buffer",
            Self::Nic => "the NIC",
        }
    }
}

/// The mode a switch goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    User,
    Kernel,
}

/// Who moves the bytes of a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    Dma,
    Cpu,
}

/// One thing on the data path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum StepKind {
    /// A user -> kernel (syscall entry) or kernel -> user (syscall return) switch.
    ModeSwitch { to: Mode, syscall: String },
    /// Bytes copied from one buffer to another, by the CPU or by a DMA engine.
    Copy {
        engine: Engine,
        from: Buffer,
        to: Buffer,
        bytes: u64,
    },
    /// A descriptor (page references, or pinned user pages) appended: no bytes copied.
    PageRef {
        from: Buffer,
        to: Buffer,
        bytes: u64,
        pinned: bool,
    },
    /// A page-cache lookup: pages found (hits) and pages that had to be read (misses).
    Lookup { hit_pages: u64, miss_pages: u64 },
    /// Loopback transmit: the skb is handed to the receiving socket (no NIC, no DMA);
    /// `peer`: a veth hands it to its peer device, in the receiver's network namespace.
    Handoff {
        bytes: u64,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        peer: bool,
    },
}

/// One step with who and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    pub ts_ns: u64,
    /// The process the step is for: the task's, or for what the kernel does on a process's
    /// behalf in whatever task is current (a transmit in softirq, a disk read a kernel
    /// worker issues, loopback's copy of a zero-copy skb), the owner's.
    pub pid: u32,
    /// The thread the probe ran in (for a step done on an owner's behalf, that task's).
    pub tid: u32,
    /// The step's transfer; `None` only while the model does not know it yet (every step
    /// it emits has one, serialized as the transfer's index).
    pub transfer: Option<TransferId>,
    #[serde(flatten)]
    pub kind: StepKind,
    pub evidence: Evidence,
}

/// Counted steps of one transfer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Ledger {
    pub mode_switches: u64,
    pub syscalls: u64,
    pub cpu_copies: u64,
    pub cpu_copy_bytes: u64,
    pub dma_copies: u64,
    pub dma_bytes: u64,
    pub page_refs: u64,
    pub page_ref_bytes: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Wall time of the transfer; `None` for a textbook ledger.
    pub wall_ns: Option<u64>,
}

impl Ledger {
    /// The counted fields, in output order (`wall_ns` is not counted).
    pub const FIELDS: [&'static str; 10] = [
        "mode_switches",
        "syscalls",
        "cpu_copies",
        "cpu_copy_bytes",
        "dma_copies",
        "dma_bytes",
        "page_refs",
        "page_ref_bytes",
        "cache_hits",
        "cache_misses",
    ];

    /// Counts one step.
    pub fn record(&mut self, kind: &StepKind) {
        match kind {
            StepKind::ModeSwitch { to, .. } => {
                self.mode_switches += 1;
                if *to == Mode::Kernel {
                    self.syscalls += 1;
                }
            }
            StepKind::Copy {
                engine: Engine::Cpu,
                bytes,
                ..
            } => {
                self.cpu_copies += 1;
                self.cpu_copy_bytes += bytes;
            }
            StepKind::Copy {
                engine: Engine::Dma,
                bytes,
                ..
            } => {
                self.dma_copies += 1;
                self.dma_bytes += bytes;
            }
            StepKind::PageRef { bytes, .. } => {
                self.page_refs += 1;
                self.page_ref_bytes += bytes;
            }
            StepKind::Lookup {
                hit_pages,
                miss_pages,
            } => {
                self.cache_hits += hit_pages;
                self.cache_misses += miss_pages;
            }
            StepKind::Handoff { .. } => {}
        }
    }

    /// A counted field by name (`wall_ns` too, when known).
    pub fn get(&self, field: &str) -> Option<u64> {
        Some(match field {
            "mode_switches" => self.mode_switches,
            "syscalls" => self.syscalls,
            "cpu_copies" => self.cpu_copies,
            "cpu_copy_bytes" => self.cpu_copy_bytes,
            "dma_copies" => self.dma_copies,
            "dma_bytes" => self.dma_bytes,
            "page_refs" => self.page_refs,
            "page_ref_bytes" => self.page_ref_bytes,
            "cache_hits" => self.cache_hits,
            "cache_misses" => self.cache_misses,
            "wall_ns" => return self.wall_ns,
            _ => return None,
        })
    }
}

/// A ledger field's value as the reports show it: bytes in units, counts as numbers.
pub fn fmt_field(field: &str, v: u64) -> String {
    if field.ends_with("_bytes") {
        human_bytes(v)
    } else {
        v.to_string()
    }
}

/// Bytes in the units narration uses ("64 KiB", "1.5 MiB", "100 bytes").
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    // Below 1 MiB a size that is not whole KiB is given exactly (a 32741-byte segment is
    // not "32.0 KiB").
    if n < 1 << 20 && !n.is_multiple_of(1 << 10) {
        return if n == 1 {
            "1 byte".into()
        } else {
            format!("{n} bytes")
        };
    }
    for (size, unit) in UNITS {
        if n >= size {
            return if n.is_multiple_of(size) {
                format!("{} {unit}", n / size)
            } else {
                format!("{:.1} {unit}", n as f64 / size as f64)
            };
        }
    }
    if n == 1 {
        "1 byte".into()
    } else {
        format!("{n} bytes")
    }
}

/// The plain sentence for a step: one source for the textbook, the live view and replays.
pub fn narrate(kind: &StepKind) -> String {
    match kind {
        StepKind::ModeSwitch {
            to: Mode::Kernel,
            syscall,
        } => format!("{syscall}() switches the CPU from user mode to kernel mode."),
        StepKind::ModeSwitch {
            to: Mode::User,
            syscall,
        } => format!("{syscall}() returns: the CPU switches from kernel mode back to user mode."),
        StepKind::Copy {
            engine: Engine::Dma,
            from: Buffer::Disk,
            to,
            bytes,
        } => format!(
            "The DMA engine copies {} from the disk into {}.",
            human_bytes(*bytes),
            to.label()
        ),
        StepKind::Copy {
            engine: Engine::Dma,
            from,
            to,
            bytes,
        } => format!(
            "The DMA engine copies {} from {} to {}{}.",
            human_bytes(*bytes),
            from.label(),
            to.label(),
            if *from == Buffer::Socket {
                ""
            } else {
                " directly (gather DMA)"
            }
        ),
        // copy_file_range: two files' pages, both in the page cache.
        StepKind::Copy {
            engine: Engine::Cpu,
            from: Buffer::PageCache,
            to: Buffer::PageCache,
            bytes,
        } => format!(
            "The CPU copies {} from the source file's pages into the destination file's pages, both in the page cache.",
            human_bytes(*bytes)
        ),
        StepKind::Copy {
            engine: Engine::Cpu,
            from,
            to,
            bytes,
        } => format!(
            "The CPU copies {} from {} into {}.",
            human_bytes(*bytes),
            from.label(),
            to.label()
        ),
        StepKind::PageRef {
            from,
            to,
            bytes,
            pinned: false,
        } => format!(
            "{} gets a descriptor (page references) for {} in {}: no bytes are copied.",
            capitalize(to.label()),
            human_bytes(*bytes),
            from.label()
        ),
        StepKind::PageRef {
            to,
            bytes,
            pinned: true,
            ..
        } => format!(
            "The kernel pins the application's pages holding {} and appends them to {}: no bytes are copied.",
            human_bytes(*bytes),
            to.label()
        ),
        StepKind::Lookup {
            hit_pages,
            miss_pages,
        } => match (hit_pages, miss_pages) {
            (h, 0) => {
                format!("The kernel finds all {h} pages in the page cache (hit): no disk read.")
            }
            (0, m) => format!(
                "None of the {m} pages are in the page cache (miss): the kernel reads them from disk."
            ),
            (h, m) => {
                format!("The kernel finds {h} pages in the page cache and reads {m} from disk.")
            }
        },
        StepKind::Handoff { bytes, peer: false } => format!(
            "Loopback: the socket buffer with {} is handed to the receiving socket; no NIC, no DMA.",
            human_bytes(*bytes)
        ),
        StepKind::Handoff { bytes, peer: true } => format!(
            "veth: the socket buffer with {} is handed to the peer device, in the receiver's \
             network namespace; no NIC, no DMA.",
            human_bytes(*bytes)
        ),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
