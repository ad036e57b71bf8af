//! Kernel events: the typed form of a ring-buffer record ([`Event`], [`Payload`]), how a
//! record is decoded ([`decode`]), and its JSON / text forms ([`Event::to_json`],
//! [`Event::to_text`]).
//!
//! A record is checked for its exact length and copied out with `read_unaligned`; its kind
//! selects how `args` are read (the layout lives in `tracer_common::kind`).

mod decode;
mod display;
mod fields;
mod flags;
#[cfg(test)]
mod tests;

use tracer_common::EVENT_SIZE;

pub use decode::{decode, decode_raw};
pub use display::Value;
pub use flags::{MSG_SPLICE_PAGES, MSG_ZEROCOPY, io_uring_op_name, send_payload, skb_payload};

/// Kernel constants the decoder needs that differ between kernels (from BTF).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KernelConsts {
    /// `enum iter_type` values by name (lower case, without `ITER_`), e.g. ("ubuf", 0).
    pub iter_types: Vec<(String, u8)>,
}

impl KernelConsts {
    /// The numbering of 6.7 and later kernels (UBUF 0, IOVEC 1, BVEC 2, KVEC 3, ...).
    /// Used by tests; the tracer reads the running kernel's values from BTF.
    pub fn linux_6_12() -> Self {
        let names = [
            "ubuf", "iovec", "bvec", "kvec", "folioq", "xarray", "discard",
        ];
        Self {
            iter_types: names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), i as u8))
                .collect(),
        }
    }

    fn iter_name(&self, value: u8) -> Option<&str> {
        self.iter_types
            .iter()
            .find(|(_, v)| *v == value)
            .map(|(n, _)| n.as_str())
    }
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("ring-buffer record of {got} bytes, expected {EVENT_SIZE}")]
    Length { got: usize },
    #[error("unknown event kind {0}")]
    Kind(u32),
}

/// One decoded event: who and when, then what. Its serde form (derived, lossless) is the
/// recording format; `to_json` is the readable form of `trace --json`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub ts_ns: u64,
    pub cpu: u32,
    /// Thread-group id of the task the probe ran in.
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub payload: Payload,
}

/// What an event says, by kind.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Payload {
    SyscallEnter {
        nr: u32,
        args: [u64; 6],
        /// The files behind the fd arguments (`tracer_common::fd_args`), from the kernel's
        /// fd table at entry.
        fds: [FdRef; 2],
    },
    SyscallExit {
        nr: u32,
        ret: i64,
    },
    TcpSendmsgLocked {
        sk: u64,
        skb: Option<u64>,
        iter_type: u8,
        msg_flags: u32,
        msg_left: u64,
        size_goal: i32,
        skb_len: u32,
        /// `tracer_common::kind::tcp_sendmsg_locked::ZC*` bits; 0 when not read.
        #[serde(default)]
        zc: u8,
    },
    SockSendLength(SockLength),
    SockRecvLength(SockLength),
    /// The receive copy: the `skb_copy_datagram_iovec` tracepoint, or (`fexit`) fexit
    /// `skb_copy_datagram_iter` once the copy succeeded.
    SkbCopyDatagramIovec {
        skb: u64,
        len: i32,
        #[serde(default)]
        fexit: bool,
    },
    /// A page-cache lookup: the `mm_filemap_get_pages` tracepoint, or (`fexit`) fexit
    /// `filemap_get_pages` (the pages its batch returned).
    FilemapGetPages {
        ino: u64,
        dev: u32,
        index: u64,
        last_index: u64,
        #[serde(default)]
        fexit: bool,
    },
    FilemapAddToPageCache {
        ino: u64,
        dev: u32,
        index: u64,
        order: Option<u8>,
    },
    NetDevStartXmit {
        skb: u64,
        sk: u64,
        len: u32,
        data_len: u32,
        shinfo_flags: u8,
        nr_frags: u8,
        ifindex: i32,
        dev_flags: u32,
        dev: String,
        owner_pid: u32,
        /// Header bytes at the start of the linear part (0: unknown; recordings made
        /// before it was read have none) and the TCP sequence number of the segment.
        #[serde(default)]
        header_len: u32,
        #[serde(default)]
        seq: u32,
        /// The device has no parent device: software (loopback, veth, tun), no DMA
        /// (recordings made before it was read have `false`).
        #[serde(default)]
        software_dev: bool,
    },
    BlockRqIssue {
        rq: u64,
        bytes: u32,
        sector: u64,
        op: u8,
        ino: u64,
        dev: u32,
        /// The traced process it reads for (a kernel worker may issue it).
        owner_pid: u32,
    },
    BlockRqComplete {
        rq: u64,
        nr_bytes: u32,
        error: u8,
        owner_pid: u32,
    },
    ProcessFork {
        child_pid: u32,
        child_tid: u32,
    },
    ProcessExec,
    IoUringSubmit {
        user_data: u64,
        opcode: u8,
        fd: i32,
        /// `io_kiocb.flags`; bit 0 means `fd` indexes the registered files.
        flags: u64,
        file: FdRef,
        /// For a socket, its `struct sock`.
        #[serde(default)]
        sk: u64,
        /// The `io_kiocb`.
        #[serde(default)]
        req: u64,
    },
    IoUringComplete {
        user_data: u64,
        res: i32,
        cflags: u32,
        #[serde(default)]
        req: u64,
    },
    /// mmap fault-around: the `mm_filemap_map_pages` tracepoint, or (`fexit`) fexit
    /// `filemap_map_pages`.
    FilemapMapPages {
        ino: u64,
        dev: u32,
        start: u64,
        end: u64,
        #[serde(default)]
        fexit: bool,
    },
    FilemapFault {
        ino: u64,
        dev: u32,
        index: u64,
    },
    Ext4DaWriteEnd {
        ino: u64,
        dev: u32,
        pos: i64,
        len: u32,
        copied: u32,
    },
    /// kretprobe `do_tcp_sendpages`: page-cache bytes referenced into a socket (before 6.5).
    SendpagesExit {
        bytes: u64,
    },
    /// fexit `generic_perform_write`: bytes a buffered write copied into the page cache.
    PerformWrite {
        ino: u64,
        bytes: u64,
    },
    /// fexit `skb_zerocopy_iter_stream`: user pages pinned into an skb of socket `sk`.
    ZerocopyPinned {
        sk: u64,
        bytes: u64,
    },
    /// fexit `tcp_sendmsg_locked`: a whole TCP send call.
    TcpSendmsgExit {
        sk: u64,
        ret: i32,
        msg_flags: u32,
        iter_type: u8,
        zc: u8,
    },
    /// fexit `filemap_read`: bytes copied from the page cache into the reader's buffer.
    FilemapRead {
        ino: u64,
        bytes: u64,
        already: u64,
        /// Into a pipe (a splice read before 6.5): page references, not a copy.
        #[serde(default)]
        pipe: bool,
    },
    /// A zero-copy skb of a traced socket delivered locally: the kernel copies its pinned
    /// pages now (`skb_copy_ubufs`).
    ZerocopyReceive {
        skb: u64,
        data_len: u32,
        shinfo_flags: u8,
        owner_pid: u32,
        /// Seen by fexit `skb_copy_ubufs` (the copy itself), not `netif_receive_skb`.
        #[serde(default)]
        fexit: bool,
    },
    /// TCP retransmitted `len` payload bytes of a traced socket (after transmitting a
    /// clone of the skb, which `NetDevStartXmit` reported as any transmit).
    TcpRetransmit {
        sk: u64,
        skb: u64,
        len: u32,
        /// The transmit's error (6.12+; 0 before, where only successes are reported).
        err: i32,
        owner_pid: u32,
    },
}

/// The file behind an fd, as the kernel's fd table had it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FdRef {
    /// Inode number (for a socket, the sockfs inode of `socket:[ino]`); 0 = unknown.
    pub ino: u64,
    /// `i_mode`; 0 = not looked up or the lookup failed.
    pub mode: u16,
    /// A socket of another protocol than TCP (unix, UDP, ...).
    #[serde(default)]
    pub not_tcp: bool,
    /// For the socket of a MSG_ZEROCOPY send: its zero-copy inputs at the syscall's entry
    /// (`kind::tcp_sendmsg_locked::ZC_*` bits; 0 = not read).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub zc: u8,
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

/// What kind of file an fd refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    Regular,
    Socket,
    Pipe,
    Other,
    Unknown,
}

impl FdRef {
    pub fn kind(self) -> FileKind {
        use tracer_common::{S_IFIFO, S_IFMT, S_IFREG, S_IFSOCK};
        match self.mode & S_IFMT {
            0 => FileKind::Unknown,
            S_IFREG => FileKind::Regular,
            S_IFSOCK => FileKind::Socket,
            S_IFIFO => FileKind::Pipe,
            _ => FileKind::Other,
        }
    }

    pub fn kind_name(self) -> &'static str {
        match self.kind() {
            FileKind::Regular => "file",
            FileKind::Socket => "socket",
            FileKind::Pipe => "pipe",
            FileKind::Other => "other",
            FileKind::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SockLength {
    pub sk: u64,
    pub ret: i32,
    pub flags: u32,
    pub family: u16,
    pub protocol: u16,
}

impl Payload {
    /// The `"event"` name of this kind in JSON and text output.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SyscallEnter { .. } => "syscall_enter",
            Self::SyscallExit { .. } => "syscall_exit",
            Self::TcpSendmsgLocked { .. } => "tcp_sendmsg_locked",
            Self::SockSendLength(_) => "sock_send_length",
            Self::SockRecvLength(_) => "sock_recv_length",
            Self::SkbCopyDatagramIovec { fexit: false, .. } => "skb_copy_datagram_iovec",
            Self::SkbCopyDatagramIovec { fexit: true, .. } => "skb_copy_datagram_iter_exit",
            Self::FilemapGetPages { fexit: false, .. } => "mm_filemap_get_pages",
            Self::FilemapGetPages { fexit: true, .. } => "filemap_get_pages_exit",
            Self::FilemapAddToPageCache { .. } => "mm_filemap_add_to_page_cache",
            Self::NetDevStartXmit { .. } => "net_dev_start_xmit",
            Self::BlockRqIssue { .. } => "block_rq_issue",
            Self::BlockRqComplete { .. } => "block_rq_complete",
            Self::ProcessFork { .. } => "process_fork",
            Self::ProcessExec => "process_exec",
            Self::IoUringSubmit { .. } => "io_uring_submit_req",
            Self::IoUringComplete { .. } => "io_uring_complete",
            Self::FilemapMapPages { fexit: false, .. } => "mm_filemap_map_pages",
            Self::FilemapMapPages { fexit: true, .. } => "filemap_map_pages_exit",
            Self::FilemapFault { .. } => "mm_filemap_fault",
            Self::Ext4DaWriteEnd { .. } => "ext4_da_write_end",
            Self::ZerocopyReceive { fexit: false, .. } => "zerocopy_receive",
            Self::ZerocopyReceive { fexit: true, .. } => "skb_copy_ubufs_exit",
            Self::FilemapRead { .. } => "filemap_read_exit",
            Self::TcpSendmsgExit { .. } => "tcp_sendmsg_exit",
            Self::SendpagesExit { .. } => "do_tcp_sendpages_exit",
            Self::PerformWrite { .. } => "generic_perform_write_exit",
            Self::ZerocopyPinned { .. } => "skb_zerocopy_iter_stream_exit",
            Self::TcpRetransmit { .. } => "tcp_retransmit_skb",
        }
    }
}
