//! The steps of the data path (KERNEL_PATHS.md §3 and §7) the plan reports, with the
//! methods each matters for and how it is known when no hook observes it.

use std::fmt;

use crate::model::Method;

/// A step of the data path (KERNEL_PATHS.md §3 and §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    SyscallEntry,
    SyscallReturn,
    PageCacheLookup,
    DiskDma,
    ReadCopy,
    SendDecision,
    SendBytes,
    SkbPageRefs,
    SkbPins,
    Transmit,
    LoopbackCopy,
    ReceiveCopy,
    PipePageRefs,
    CopyFileRange,
    MmapFaults,
    IoUringRequests,
    IoUringCompletions,
    CopyHelpers,
}

/// A step as the plan reports it.
pub struct StepSpec {
    pub step: Step,
    pub name: &'static str,
    /// Methods it matters for (all when empty).
    pub methods: &'static [Method],
    /// How the step is known when no hook attaches.
    pub fallback: Fallback,
}

/// How a step is known without a hook that observes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// Inferred `from` something ("from read()'s return value").
    Inferred(&'static str),
    /// Not seen, or known another way.
    Otherwise(&'static str),
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inferred(from) => write!(f, "inferred {from}"),
            Self::Otherwise(how) => f.write_str(how),
        }
    }
}

/// Every method that sends over a socket (all but copy-file-range).
pub const SOCKET_METHODS: &[Method] = &[
    Method::ReadWrite,
    Method::ReadSend,
    Method::MmapWrite,
    Method::Sendfile,
    Method::Splice,
    Method::MsgZerocopy,
    Method::IoUring,
];

/// The steps, in the order the plan reports them.
pub const STEPS: &[StepSpec] = &[
    StepSpec {
        step: Step::SyscallEntry,
        name: "mode switch user -> kernel (syscall entry)",
        methods: &[],
        fallback: Fallback::Otherwise("none: the tracer needs the syscall tracepoints"),
    },
    StepSpec {
        step: Step::SyscallReturn,
        name: "mode switch kernel -> user (syscall return)",
        methods: &[],
        fallback: Fallback::Otherwise("none: the tracer needs the syscall tracepoints"),
    },
    StepSpec {
        step: Step::PageCacheLookup,
        name: "page-cache lookup (hit or miss)",
        methods: &[],
        fallback: Fallback::Otherwise("not seen: hits and misses are not counted"),
    },
    StepSpec {
        step: Step::DiskDma,
        name: "DMA disk -> page cache (miss)",
        methods: &[],
        fallback: Fallback::Otherwise("not seen"),
    },
    StepSpec {
        step: Step::ReadCopy,
        name: "CPU copy page cache -> user (read)",
        methods: &[
            Method::ReadWrite,
            Method::ReadSend,
            Method::MsgZerocopy,
            Method::IoUring,
        ],
        fallback: Fallback::Inferred("from read()'s return value"),
    },
    StepSpec {
        step: Step::SendDecision,
        name: "copy / reference / pin decision of a TCP send",
        methods: SOCKET_METHODS,
        fallback: Fallback::Inferred(
            "from the syscall (sendfile/splice reference pages, MSG_ZEROCOPY pins) and confirmed per skb at transmit",
        ),
    },
    StepSpec {
        step: Step::SendBytes,
        name: "bytes of a TCP send",
        methods: SOCKET_METHODS,
        fallback: Fallback::Inferred("from the syscall's return value"),
    },
    StepSpec {
        step: Step::SkbPageRefs,
        name: "page references into the skb (sendfile, splice)",
        methods: &[Method::Sendfile, Method::Splice],
        fallback: Fallback::Inferred("from the skb's SHARED_FRAG flag at transmit"),
    },
    StepSpec {
        step: Step::SkbPins,
        name: "pinned user pages into the skb (MSG_ZEROCOPY, SEND_ZC)",
        methods: &[Method::MsgZerocopy, Method::IoUring],
        fallback: Fallback::Inferred("from the skb's zero-copy flag at transmit"),
    },
    StepSpec {
        step: Step::Transmit,
        name: "transmit (DMA to the NIC, or the loopback hand-off)",
        methods: SOCKET_METHODS,
        fallback: Fallback::Otherwise("not seen"),
    },
    StepSpec {
        step: Step::LoopbackCopy,
        name: "loopback's deferred copy of pinned pages",
        methods: &[Method::MsgZerocopy, Method::IoUring],
        fallback: Fallback::Otherwise(
            "a zero-copy skb reaching netif_receive_skb is copied (skb_copy_ubufs)",
        ),
    },
    StepSpec {
        step: Step::ReceiveCopy,
        name: "CPU copy skb -> user (the receiver)",
        methods: SOCKET_METHODS,
        fallback: Fallback::Inferred("from the receive's return value"),
    },
    StepSpec {
        step: Step::PipePageRefs,
        name: "page references into a pipe (splice)",
        methods: &[Method::Splice],
        fallback: Fallback::Inferred("from splice()'s return value"),
    },
    StepSpec {
        step: Step::CopyFileRange,
        name: "CPU copy page cache -> page cache (copy_file_range)",
        methods: &[Method::CopyFileRange],
        fallback: Fallback::Inferred("from the syscall's return value"),
    },
    StepSpec {
        step: Step::MmapFaults,
        name: "mmap faults mapping page-cache pages",
        methods: &[Method::MmapWrite],
        fallback: Fallback::Otherwise("not seen: hits and misses of the mapping are not counted"),
    },
    StepSpec {
        step: Step::IoUringRequests,
        name: "io_uring requests",
        methods: &[Method::IoUring],
        fallback: Fallback::Otherwise("not seen: io_uring cannot be traced"),
    },
    StepSpec {
        step: Step::IoUringCompletions,
        name: "io_uring completions (and SEND_ZC's notifications)",
        methods: &[Method::IoUring],
        fallback: Fallback::Otherwise("not seen: io_uring cannot be traced"),
    },
    StepSpec {
        step: Step::CopyHelpers,
        name: "the copy helpers themselves (_copy_to_iter, _copy_from_iter, copy_page_to_iter, _copy_to_user, _copy_from_user)",
        methods: &[],
        fallback: Fallback::Otherwise("observed at their traceable callers instead"),
    },
];
