//! Decoding ring-buffer records into typed events, and their JSON / text forms.
//!
//! A record is checked for its exact length and copied out with `read_unaligned`; its kind
//! selects how `args` are read (the layout lives in `tracer_common::kind`).

use std::fmt::Write as _;

use serde::ser::{Serialize, SerializeMap, Serializer};
use tracer_common::{EVENT_SIZE, Event as RawEvent, NAME_LEN, kind};

use crate::syscalls;

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
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
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
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
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

fn c_string(bytes: &[u8; NAME_LEN]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Decodes one ring-buffer record.
pub fn decode(record: &[u8]) -> Result<Event, DecodeError> {
    if record.len() != EVENT_SIZE {
        return Err(DecodeError::Length { got: record.len() });
    }
    // SAFETY: the length is exactly that of RawEvent, which is plain integers and byte
    // arrays (any bit pattern is valid); read_unaligned copes with any alignment.
    let raw: RawEvent = unsafe { std::ptr::read_unaligned(record.as_ptr().cast::<RawEvent>()) };
    decode_raw(&raw)
}

/// Decodes an event already copied out of the ring buffer.
pub fn decode_raw(raw: &RawEvent) -> Result<Event, DecodeError> {
    let a = &raw.args;
    let payload = match raw.kind {
        kind::sys_enter::ID => {
            let mut args = [0u64; 6];
            args.copy_from_slice(&a[kind::sys_enter::ARG0..kind::sys_enter::ARG0 + 6]);
            use kind::sys_enter as k;
            let modes = a[k::FD_MODES];
            Payload::SyscallEnter {
                nr: a[k::NR] as u32,
                args,
                fds: [
                    FdRef {
                        ino: a[k::FD_A_INO],
                        mode: modes as u16,
                        not_tcp: modes & k::FD_A_NOT_TCP != 0,
                        zc: (modes >> k::FD_SEND_ZC_SHIFT) as u8,
                    },
                    FdRef {
                        ino: a[k::FD_B_INO],
                        mode: (modes >> 16) as u16,
                        not_tcp: modes & k::FD_B_NOT_TCP != 0,
                        zc: 0,
                    },
                ],
            }
        }
        kind::sys_exit::ID => Payload::SyscallExit {
            nr: a[kind::sys_exit::NR] as u32,
            ret: a[kind::sys_exit::RET] as i64,
        },
        kind::tcp_sendmsg_locked::ID => {
            use kind::tcp_sendmsg_locked as k;
            Payload::TcpSendmsgLocked {
                sk: a[k::SK],
                skb: (a[k::SKB] != 0).then_some(a[k::SKB]),
                iter_type: a[k::ITER_TYPE] as u8,
                msg_flags: a[k::MSG_FLAGS] as u32,
                msg_left: a[k::MSG_LEFT],
                size_goal: a[k::SIZE_GOAL] as i64 as i32,
                skb_len: a[k::SKB_LEN] as u32,
                zc: a[k::ZC] as u8,
            }
        }
        kind::sock_send_length::ID | kind::sock_recv_length::ID => {
            use kind::sock_send_length as k;
            let s = SockLength {
                sk: a[k::SK],
                ret: a[k::RET] as i64 as i32,
                flags: a[k::FLAGS] as u32,
                family: a[k::FAMILY] as u16,
                protocol: a[k::PROTOCOL] as u16,
            };
            if raw.kind == kind::sock_send_length::ID {
                Payload::SockSendLength(s)
            } else {
                Payload::SockRecvLength(s)
            }
        }
        kind::skb_copy_datagram_iovec::ID => Payload::SkbCopyDatagramIovec {
            skb: a[kind::skb_copy_datagram_iovec::SKB],
            len: a[kind::skb_copy_datagram_iovec::LEN] as i64 as i32,
            fexit: a[kind::skb_copy_datagram_iovec::VIA] == kind::VIA_FEXIT,
        },
        kind::filemap_get_pages::ID => {
            use kind::filemap_get_pages as k;
            Payload::FilemapGetPages {
                ino: a[k::INO],
                dev: a[k::DEV] as u32,
                index: a[k::INDEX],
                last_index: a[k::LAST_INDEX],
                fexit: a[k::VIA] == kind::VIA_FEXIT,
            }
        }
        kind::filemap_add_to_page_cache::ID => {
            use kind::filemap_add_to_page_cache as k;
            Payload::FilemapAddToPageCache {
                ino: a[k::INO],
                dev: a[k::DEV] as u32,
                index: a[k::INDEX],
                order: (a[k::ORDER] != u64::MAX).then_some(a[k::ORDER] as u8),
            }
        }
        kind::net_dev_start_xmit::ID => {
            use kind::net_dev_start_xmit as k;
            Payload::NetDevStartXmit {
                skb: a[k::SKB],
                sk: a[k::SK],
                len: a[k::LEN] as u32,
                data_len: a[k::DATA_LEN] as u32,
                shinfo_flags: a[k::SHINFO_FLAGS] as u8,
                nr_frags: a[k::NR_FRAGS] as u8,
                ifindex: a[k::IFINDEX] as i64 as i32,
                dev_flags: a[k::DEV_FLAGS] as u32,
                dev: c_string(&raw.name),
                owner_pid: a[k::OWNER_TGID] as u32,
            }
        }
        kind::block_rq_issue::ID => {
            use kind::block_rq_issue as k;
            Payload::BlockRqIssue {
                rq: a[k::RQ],
                bytes: a[k::BYTES] as u32,
                sector: a[k::SECTOR],
                op: a[k::OP] as u8,
                ino: a[k::INO],
                dev: a[k::DEV] as u32,
                owner_pid: a[k::OWNER_TGID] as u32,
            }
        }
        kind::block_rq_complete::ID => {
            use kind::block_rq_complete as k;
            Payload::BlockRqComplete {
                rq: a[k::RQ],
                nr_bytes: a[k::NR_BYTES] as u32,
                error: a[k::ERROR] as u8,
                owner_pid: a[k::OWNER_TGID] as u32,
            }
        }
        kind::process_fork::ID => Payload::ProcessFork {
            child_pid: a[kind::process_fork::CHILD_TGID] as u32,
            child_tid: a[kind::process_fork::CHILD_PID] as u32,
        },
        kind::process_exec::ID => Payload::ProcessExec,
        kind::io_uring_submit_req::ID => {
            use kind::io_uring_submit_req as k;
            Payload::IoUringSubmit {
                user_data: a[k::USER_DATA],
                opcode: a[k::OPCODE] as u8,
                fd: a[k::FD] as u32 as i32,
                flags: a[k::FLAGS],
                file: FdRef {
                    ino: a[k::INO],
                    mode: a[k::MODE] as u16,
                    not_tcp: false,
                    zc: 0,
                },
                sk: a[k::SK],
                req: a[k::REQ],
            }
        }
        kind::io_uring_complete::ID => {
            use kind::io_uring_complete as k;
            Payload::IoUringComplete {
                user_data: a[k::USER_DATA],
                res: a[k::RES] as i64 as i32,
                cflags: a[k::CFLAGS] as u32,
                req: a[k::REQ],
            }
        }
        kind::filemap_map_pages::ID => {
            use kind::filemap_map_pages as k;
            Payload::FilemapMapPages {
                ino: a[k::INO],
                dev: a[k::DEV] as u32,
                start: a[k::START],
                end: a[k::END],
                fexit: a[k::VIA] == kind::VIA_FEXIT,
            }
        }
        kind::filemap_fault::ID => {
            use kind::filemap_fault as k;
            Payload::FilemapFault {
                ino: a[k::INO],
                dev: a[k::DEV] as u32,
                index: a[k::INDEX],
            }
        }
        kind::ext4_da_write_end::ID => {
            use kind::ext4_da_write_end as k;
            Payload::Ext4DaWriteEnd {
                ino: a[k::INO],
                dev: a[k::DEV] as u32,
                pos: a[k::POS] as i64,
                len: a[k::LEN] as u32,
                copied: a[k::COPIED] as u32,
            }
        }
        kind::sendpages_exit::ID => Payload::SendpagesExit {
            bytes: a[kind::sendpages_exit::BYTES],
        },
        kind::perform_write::ID => Payload::PerformWrite {
            ino: a[kind::perform_write::INO],
            bytes: a[kind::perform_write::BYTES],
        },
        kind::zerocopy_pinned::ID => Payload::ZerocopyPinned {
            sk: a[kind::zerocopy_pinned::SK],
            bytes: a[kind::zerocopy_pinned::BYTES],
        },
        kind::tcp_sendmsg_exit::ID => {
            use kind::tcp_sendmsg_exit as k;
            Payload::TcpSendmsgExit {
                sk: a[k::SK],
                ret: a[k::RET] as i64 as i32,
                msg_flags: a[k::MSG_FLAGS] as u32,
                iter_type: a[k::ITER_TYPE] as u8,
                zc: a[k::ZC] as u8,
            }
        }
        kind::filemap_read::ID => {
            use kind::filemap_read as k;
            Payload::FilemapRead {
                ino: a[k::INO],
                bytes: a[k::BYTES],
                already: a[k::ALREADY],
                pipe: a[k::PIPE] != 0,
            }
        }
        kind::zerocopy_receive::ID => {
            use kind::zerocopy_receive as k;
            Payload::ZerocopyReceive {
                skb: a[k::SKB],
                data_len: a[k::DATA_LEN] as u32,
                shinfo_flags: a[k::SHINFO_FLAGS] as u8,
                owner_pid: a[k::OWNER_TGID] as u32,
                fexit: a[k::VIA] == kind::VIA_FEXIT,
            }
        }
        other => return Err(DecodeError::Kind(other)),
    };
    Ok(Event {
        ts_ns: raw.ts_ns,
        cpu: raw.cpu,
        pid: raw.tgid,
        tid: raw.tid,
        comm: c_string(&raw.comm),
        payload,
    })
}

impl Payload {
    /// The `"event"` name of this kind in JSON and text output.
    pub fn name(&self) -> &'static str {
        match self {
            Payload::SyscallEnter { .. } => "syscall_enter",
            Payload::SyscallExit { .. } => "syscall_exit",
            Payload::TcpSendmsgLocked { .. } => "tcp_sendmsg_locked",
            Payload::SockSendLength(_) => "sock_send_length",
            Payload::SockRecvLength(_) => "sock_recv_length",
            Payload::SkbCopyDatagramIovec { fexit: false, .. } => "skb_copy_datagram_iovec",
            Payload::SkbCopyDatagramIovec { fexit: true, .. } => "skb_copy_datagram_iter_exit",
            Payload::FilemapGetPages { fexit: false, .. } => "mm_filemap_get_pages",
            Payload::FilemapGetPages { fexit: true, .. } => "filemap_get_pages_exit",
            Payload::FilemapAddToPageCache { .. } => "mm_filemap_add_to_page_cache",
            Payload::NetDevStartXmit { .. } => "net_dev_start_xmit",
            Payload::BlockRqIssue { .. } => "block_rq_issue",
            Payload::BlockRqComplete { .. } => "block_rq_complete",
            Payload::ProcessFork { .. } => "process_fork",
            Payload::ProcessExec => "process_exec",
            Payload::IoUringSubmit { .. } => "io_uring_submit_req",
            Payload::IoUringComplete { .. } => "io_uring_complete",
            Payload::FilemapMapPages { fexit: false, .. } => "mm_filemap_map_pages",
            Payload::FilemapMapPages { fexit: true, .. } => "filemap_map_pages_exit",
            Payload::FilemapFault { .. } => "mm_filemap_fault",
            Payload::Ext4DaWriteEnd { .. } => "ext4_da_write_end",
            Payload::ZerocopyReceive { fexit: false, .. } => "zerocopy_receive",
            Payload::ZerocopyReceive { fexit: true, .. } => "skb_copy_ubufs_exit",
            Payload::FilemapRead { .. } => "filemap_read_exit",
            Payload::TcpSendmsgExit { .. } => "tcp_sendmsg_exit",
            Payload::SendpagesExit { .. } => "do_tcp_sendpages_exit",
            Payload::PerformWrite { .. } => "generic_perform_write_exit",
            Payload::ZerocopyPinned { .. } => "skb_zerocopy_iter_stream_exit",
        }
    }
}

/// A field value in the output.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U(u64),
    I(i64),
    /// A kernel or user address, printed in hex.
    Ptr(u64),
    Str(String),
    Static(&'static str),
    List(Vec<&'static str>),
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::U(v) => s.serialize_u64(*v),
            Value::I(v) => s.serialize_i64(*v),
            Value::Ptr(v) => s.collect_str(&format_args!("{v:#x}")),
            Value::Str(v) => s.serialize_str(v),
            Value::Static(v) => s.serialize_str(v),
            Value::List(v) => v.serialize(s),
        }
    }
}

/// Names of the `MSG_*` bits (UAPI values; SPLICE_PAGES is the 6.5+ internal flag).
const MSG_FLAGS: &[(u32, &str)] = &[
    (0x1, "MSG_OOB"),
    (0x2, "MSG_PEEK"),
    (0x4, "MSG_DONTROUTE"),
    (0x8, "MSG_CTRUNC"),
    (0x10, "MSG_PROBE"),
    (0x20, "MSG_TRUNC"),
    (0x40, "MSG_DONTWAIT"),
    (0x80, "MSG_EOR"),
    (0x100, "MSG_WAITALL"),
    (0x200, "MSG_FIN"),
    (0x400, "MSG_SYN"),
    (0x800, "MSG_CONFIRM"),
    (0x1000, "MSG_RST"),
    (0x2000, "MSG_ERRQUEUE"),
    (0x4000, "MSG_NOSIGNAL"),
    (0x8000, "MSG_MORE"),
    (0x10000, "MSG_WAITFORONE"),
    (0x40000, "MSG_BATCH"),
    (0x80000, "MSG_NO_SHARED_FRAGS"),
    (0x100000, "MSG_SENDPAGE_DECRYPTED"),
    (0x2000000, "MSG_SOCK_DEVMEM"),
    (0x4000000, "MSG_ZEROCOPY"),
    (0x8000000, "MSG_SPLICE_PAGES"),
    (0x20000000, "MSG_FASTOPEN"),
    (0x40000000, "MSG_CMSG_CLOEXEC"),
];
pub const MSG_ZEROCOPY: u32 = tracer_common::MSG_ZEROCOPY as u32;
pub const MSG_SPLICE_PAGES: u32 = 0x8000000;

/// `skb_shinfo(skb)->flags` bits (SKBFL_*, unchanged through the 6.x series).
const SKBFL: &[(u8, &str)] = &[
    (1, "ZEROCOPY_ENABLE"),
    (2, "SHARED_FRAG"),
    (4, "PURE_ZEROCOPY"),
    (8, "DONT_ORPHAN"),
    (16, "MANAGED_FRAG_REFS"),
];

fn flag_names<T: Copy + Into<u64>>(value: T, table: &[(T, &'static str)]) -> Vec<&'static str> {
    let v: u64 = value.into();
    table
        .iter()
        .filter(|(bit, _)| v & (*bit).into() != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// How the payload of a TCP send is put into the socket buffer, from `msg_flags` (the
/// decision `tcp_sendmsg_locked` makes; the iterator type alone does not decide it).
pub fn send_payload(msg_flags: u32) -> &'static str {
    if msg_flags & MSG_SPLICE_PAGES != 0 {
        "splice_pages"
    } else if msg_flags & MSG_ZEROCOPY != 0 {
        "zerocopy_requested"
    } else {
        "copy"
    }
}

/// What the skb's frags hold at transmit, from `skb_shinfo(skb)->flags`.
pub fn skb_payload(shinfo_flags: u8) -> &'static str {
    if shinfo_flags & 1 != 0 {
        "zerocopy_pinned"
    } else if shinfo_flags & 2 != 0 {
        "spliced_pages"
    } else {
        "copied"
    }
}

/// io_uring opcodes the tracer names (UAPI values, stable across kernels).
pub fn io_uring_op_name(opcode: u8) -> &'static str {
    match opcode {
        0 => "NOP",
        1 => "READV",
        2 => "WRITEV",
        4 => "READ_FIXED",
        5 => "WRITE_FIXED",
        9 => "SENDMSG",
        10 => "RECVMSG",
        22 => "READ",
        23 => "WRITE",
        26 => "SEND",
        27 => "RECV",
        30 => "SPLICE",
        47 => "SEND_ZC",
        48 => "SENDMSG_ZC",
        _ => "other",
    }
}

/// A kernel `dev_t` (major << 20 | minor) as "major:minor".
fn dev_name(dev: u32) -> String {
    format!("{}:{}", dev >> 20, dev & 0xfffff)
}

/// How a syscall argument prints.
#[derive(Clone, Copy)]
enum Arg {
    /// A file descriptor: a signed int.
    Fd,
    /// An address or a flag word: hex.
    Hex,
    /// A count, length or by-value offset.
    Num,
}

/// The decoded arguments of the data-path syscalls, in register order.
fn syscall_args(name: &str) -> Option<&'static [(&'static str, Arg)]> {
    use Arg::*;
    Some(match name {
        "read" | "write" => &[("fd", Fd), ("buf", Hex), ("count", Num)],
        "pread64" | "pwrite64" => &[("fd", Fd), ("buf", Hex), ("count", Num), ("offset", Num)],
        "readv" | "writev" => &[("fd", Fd), ("iov", Hex), ("iovcnt", Num)],
        "sendfile" => &[
            ("out_fd", Fd),
            ("in_fd", Fd),
            ("offset", Hex),
            ("count", Num),
        ],
        "splice" | "copy_file_range" => &[
            ("fd_in", Fd),
            ("off_in", Hex),
            ("fd_out", Fd),
            ("off_out", Hex),
            ("len", Num),
            ("flags", Hex),
        ],
        "sendto" => &[
            ("fd", Fd),
            ("buf", Hex),
            ("len", Num),
            ("flags", Hex),
            ("dest_addr", Hex),
            ("addrlen", Num),
        ],
        "recvfrom" => &[
            ("fd", Fd),
            ("buf", Hex),
            ("len", Num),
            ("flags", Hex),
            ("src_addr", Hex),
            ("addrlen", Num),
        ],
        "sendmsg" | "recvmsg" => &[("fd", Fd), ("msg", Hex), ("flags", Hex)],
        "mmap" => &[
            ("addr", Hex),
            ("length", Num),
            ("prot", Hex),
            ("flags", Hex),
            ("fd", Fd),
            ("offset", Num),
        ],
        "munmap" => &[("addr", Hex), ("length", Num)],
        "io_uring_enter" => &[
            ("fd", Fd),
            ("to_submit", Num),
            ("min_complete", Num),
            ("flags", Hex),
            ("argp", Hex),
            ("argsz", Num),
        ],
        _ => return None,
    })
}

/// The syscall's name as a value, without allocating for the names in the table.
fn syscall_name(nr: u32) -> Value {
    match syscalls::name(nr) {
        std::borrow::Cow::Borrowed(n) => Value::Static(n),
        std::borrow::Cow::Owned(n) => Value::Str(n),
    }
}

impl Event {
    /// The event's fields in output order, after the common header.
    pub fn fields(&self, consts: &KernelConsts) -> Vec<(&'static str, Value)> {
        use Value::*;
        let mut f: Vec<(&'static str, Value)> = Vec::with_capacity(12);
        match &self.payload {
            Payload::SyscallEnter { nr, args, fds } => {
                let name = syscall_name(*nr);
                let decoded = match &name {
                    Static(n) => syscall_args(n),
                    _ => None,
                };
                f.push(("syscall", name));
                f.push(("nr", U(*nr as u64)));
                match decoded {
                    Some(decoded) => {
                        for ((n, kind), v) in decoded.iter().zip(args) {
                            let value = match kind {
                                Arg::Fd => I(*v as u32 as i32 as i64),
                                Arg::Hex => Ptr(*v),
                                Arg::Num => U(*v),
                            };
                            f.push((n, value));
                        }
                    }
                    None => {
                        for (i, v) in args.iter().enumerate() {
                            f.push((["a0", "a1", "a2", "a3", "a4", "a5"][i], Ptr(*v)));
                        }
                    }
                }
                let (a, b) = tracer_common::fd_args(*nr as u64);
                for (slot, names) in [(a, ("fd_kind", "fd_ino")), (b, ("fd2_kind", "fd2_ino"))]
                    .into_iter()
                    .zip(fds)
                    .filter_map(|((i, n), fd)| i.map(|_| (fd, n)))
                {
                    f.push((names.0, Static(slot.kind_name())));
                    f.push((names.1, U(slot.ino)));
                }
                if fds[0].zc != 0 {
                    // A MSG_ZEROCOPY send: its socket's zero-copy inputs.
                    zc_fields(&mut f, fds[0].zc, false);
                }
            }
            Payload::SyscallExit { nr, ret } => {
                f.push(("syscall", syscall_name(*nr)));
                f.push(("nr", U(*nr as u64)));
                f.push(("ret", I(*ret)));
            }
            Payload::TcpSendmsgLocked {
                sk,
                skb,
                iter_type,
                msg_flags,
                msg_left,
                size_goal,
                skb_len,
                zc,
            } => {
                f.push(("sk", Ptr(*sk)));
                f.push(("skb", skb.map_or(Static("null"), Ptr)));
                f.push(("iter_type", U(*iter_type as u64)));
                f.push((
                    "iter",
                    Str(consts
                        .iter_name(*iter_type)
                        .unwrap_or("unknown")
                        .to_string()),
                ));
                f.push(("msg_flags", Ptr(*msg_flags as u64)));
                f.push(("flags", List(flag_names(*msg_flags, MSG_FLAGS))));
                f.push(("payload", Static(send_payload(*msg_flags))));
                f.push(("msg_left", U(*msg_left)));
                f.push(("size_goal", I(*size_goal as i64)));
                f.push(("skb_len", U(*skb_len as u64)));
                if *zc as u64 & kind::tcp_sendmsg_locked::ZC_KNOWN != 0 {
                    zc_fields(&mut f, *zc, true);
                }
            }
            Payload::SockSendLength(s) | Payload::SockRecvLength(s) => {
                f.push(("sk", Ptr(s.sk)));
                f.push(("ret", I(s.ret as i64)));
                f.push(("flags", Ptr(s.flags as u64)));
                f.push(("family", U(s.family as u64)));
                f.push(("protocol", U(s.protocol as u64)));
            }
            Payload::SkbCopyDatagramIovec { skb, len, .. } => {
                f.push(("skb", Ptr(*skb)));
                f.push(("len", I(*len as i64)));
            }
            Payload::FilemapGetPages {
                ino,
                dev,
                index,
                last_index,
                ..
            } => {
                f.push(("ino", U(*ino)));
                f.push(("dev", Str(dev_name(*dev))));
                f.push(("index", U(*index)));
                f.push(("last_index", U(*last_index)));
            }
            Payload::FilemapAddToPageCache {
                ino,
                dev,
                index,
                order,
            } => {
                f.push(("ino", U(*ino)));
                f.push(("dev", Str(dev_name(*dev))));
                f.push(("index", U(*index)));
                match order {
                    Some(o) => {
                        f.push(("order", U(*o as u64)));
                        f.push(("bytes", U(4096u64 << o)));
                    }
                    None => f.push(("order", Static("unknown"))),
                }
            }
            Payload::NetDevStartXmit {
                skb,
                sk,
                len,
                data_len,
                shinfo_flags,
                nr_frags,
                ifindex,
                dev_flags,
                dev,
                owner_pid,
            } => {
                f.push(("skb", Ptr(*skb)));
                f.push(("sk", Ptr(*sk)));
                f.push(("dev", Str(dev.clone())));
                f.push(("ifindex", I(*ifindex as i64)));
                f.push(("loopback", Static(yes_no(dev_flags & 0x8 != 0))));
                f.push(("len", U(*len as u64)));
                f.push(("data_len", U(*data_len as u64)));
                f.push(("nr_frags", U(*nr_frags as u64)));
                f.push(("shinfo_flags", Ptr(*shinfo_flags as u64)));
                f.push(("skbfl", List(flag_names(*shinfo_flags, SKBFL))));
                f.push(("payload", Static(skb_payload(*shinfo_flags))));
                f.push(("owner_pid", U(*owner_pid as u64)));
            }
            Payload::BlockRqIssue {
                rq,
                bytes,
                sector,
                op,
                ino,
                dev,
                owner_pid,
            } => {
                f.push(("rq", Ptr(*rq)));
                f.push((
                    "op",
                    Static(match op {
                        0 => "read",
                        1 => "write",
                        _ => "other",
                    }),
                ));
                f.push(("bytes", U(*bytes as u64)));
                f.push(("sector", U(*sector)));
                f.push(("ino", U(*ino)));
                f.push(("dev", Str(dev_name(*dev))));
                f.push(("owner_pid", U(*owner_pid as u64)));
            }
            Payload::BlockRqComplete {
                rq,
                nr_bytes,
                error,
                owner_pid,
            } => {
                f.push(("rq", Ptr(*rq)));
                f.push(("nr_bytes", U(*nr_bytes as u64)));
                f.push(("error", U(*error as u64)));
                f.push(("owner_pid", U(*owner_pid as u64)));
            }
            Payload::ProcessFork {
                child_pid,
                child_tid,
            } => {
                f.push(("child_pid", U(*child_pid as u64)));
                f.push(("child_tid", U(*child_tid as u64)));
            }
            Payload::ProcessExec => {}
            Payload::IoUringSubmit {
                user_data,
                opcode,
                fd,
                flags,
                file,
                sk,
                req,
            } => {
                f.push(("req", Ptr(*req)));
                f.push(("user_data", Ptr(*user_data)));
                f.push(("opcode", U(*opcode as u64)));
                f.push(("op", Static(io_uring_op_name(*opcode))));
                f.push(("fd", I(*fd as i64)));
                f.push(("fixed_file", Static(yes_no(flags & 1 != 0))));
                f.push(("fd_kind", Static(file.kind_name())));
                f.push(("fd_ino", U(file.ino)));
                if *sk != 0 {
                    f.push(("sk", Ptr(*sk)));
                }
            }
            Payload::IoUringComplete {
                user_data,
                res,
                cflags,
                req,
            } => {
                f.push(("req", Ptr(*req)));
                f.push(("user_data", Ptr(*user_data)));
                f.push(("res", I(*res as i64)));
                f.push(("cflags", Ptr(*cflags as u64)));
            }
            Payload::FilemapMapPages {
                ino,
                dev,
                start,
                end,
                ..
            } => {
                f.push(("ino", U(*ino)));
                f.push(("dev", Str(dev_name(*dev))));
                f.push(("start", U(*start)));
                f.push(("end", U(*end)));
            }
            Payload::FilemapFault { ino, dev, index } => {
                f.push(("ino", U(*ino)));
                f.push(("dev", Str(dev_name(*dev))));
                f.push(("index", U(*index)));
            }
            Payload::Ext4DaWriteEnd {
                ino,
                dev,
                pos,
                len,
                copied,
            } => {
                f.push(("ino", U(*ino)));
                f.push(("dev", Str(dev_name(*dev))));
                f.push(("pos", I(*pos)));
                f.push(("len", U(*len as u64)));
                f.push(("copied", U(*copied as u64)));
            }
            Payload::SendpagesExit { bytes } => {
                f.push(("bytes", U(*bytes)));
            }
            Payload::PerformWrite { ino, bytes } => {
                f.push(("ino", U(*ino)));
                f.push(("bytes", U(*bytes)));
            }
            Payload::ZerocopyPinned { sk, bytes } => {
                f.push(("sk", Ptr(*sk)));
                f.push(("bytes", U(*bytes)));
            }
            Payload::TcpSendmsgExit {
                sk,
                ret,
                msg_flags,
                iter_type,
                zc,
            } => {
                f.push(("sk", Ptr(*sk)));
                f.push(("ret", I(*ret as i64)));
                f.push(("iter_type", U(*iter_type as u64)));
                f.push(("msg_flags", Ptr(*msg_flags as u64)));
                f.push(("flags", List(flag_names(*msg_flags, MSG_FLAGS))));
                f.push(("payload", Static(send_payload(*msg_flags))));
                f.push(("zc", Ptr(*zc as u64)));
            }
            Payload::FilemapRead {
                ino,
                bytes,
                already,
                pipe,
            } => {
                f.push(("ino", U(*ino)));
                f.push(("bytes", U(*bytes)));
                f.push(("already_read", U(*already)));
                f.push(("into", Static(if *pipe { "pipe" } else { "iterator" })));
            }
            Payload::ZerocopyReceive {
                skb,
                data_len,
                shinfo_flags,
                owner_pid,
                ..
            } => {
                f.push(("skb", Ptr(*skb)));
                f.push(("data_len", U(*data_len as u64)));
                f.push(("shinfo_flags", Ptr(*shinfo_flags as u64)));
                f.push(("owner_pid", U(*owner_pid as u64)));
            }
        }
        f
    }

    /// One JSON object (no trailing newline).
    pub fn to_json(&self, consts: &KernelConsts) -> String {
        let mut out = Vec::with_capacity(256);
        // Writing into a Vec cannot fail, and every value serializes.
        let _ = self.write_json(consts, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Writes one JSON object (no trailing newline) straight to `out`.
    pub fn write_json(
        &self,
        consts: &KernelConsts,
        out: &mut impl std::io::Write,
    ) -> std::io::Result<()> {
        let view = JsonView {
            event: self,
            consts,
        };
        serde_json::to_writer(out, &view).map_err(std::io::Error::from)
    }

    /// One human-readable line (no trailing newline). Strings from the kernel (the comm any
    /// process may set, device names) are escaped for a terminal.
    pub fn to_text(&self, consts: &KernelConsts) -> String {
        use crate::ui::escape::escape;
        let mut line = format!(
            "{:>6}.{:06} {:>7}/{:<7} {:<15} {}",
            self.ts_ns / 1_000_000_000,
            (self.ts_ns / 1000) % 1_000_000,
            self.pid,
            self.tid,
            escape(&self.comm),
            self.payload.name()
        );
        for (k, v) in self.fields(consts) {
            let _ = match v {
                Value::U(v) => write!(line, " {k}={v}"),
                Value::I(v) => write!(line, " {k}={v}"),
                Value::Ptr(v) => write!(line, " {k}={v:#x}"),
                Value::Str(v) => write!(line, " {k}={}", escape(&v)),
                Value::Static(v) => write!(line, " {k}={v}"),
                Value::List(v) => write!(line, " {k}={}", v.join("|")),
            };
        }
        line
    }
}

struct JsonView<'a> {
    event: &'a Event,
    consts: &'a KernelConsts,
}

impl Serialize for JsonView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.event;
        let fields = e.fields(self.consts);
        let mut m = s.serialize_map(Some(6 + fields.len()))?;
        m.serialize_entry("event", e.payload.name())?;
        m.serialize_entry("ts_ns", &e.ts_ns)?;
        m.serialize_entry("pid", &e.pid)?;
        m.serialize_entry("tid", &e.tid)?;
        m.serialize_entry("comm", &e.comm)?;
        m.serialize_entry("cpu", &e.cpu)?;
        for (k, v) in &fields {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// A zero-copy decision's inputs (`kind::tcp_sendmsg_locked::ZC*`) as fields; the
/// io_uring buffer only where the hook can see one (`with_buffer`).
fn zc_fields(f: &mut Vec<(&'static str, Value)>, zc: u8, with_buffer: bool) {
    use kind::tcp_sendmsg_locked as k;
    let has = |bit: u64| Value::Static(yes_no(zc as u64 & bit != 0));
    f.push(("so_zerocopy", has(k::ZC_SOCK)));
    if with_buffer {
        f.push(("zerocopy_buffer", has(k::ZC_UBUF)));
    }
    f.push(("scatter_gather", has(k::ZC_SG)));
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value as J;
    use tracer_common::sysno;

    fn raw(kind: u32, args: &[(usize, u64)]) -> RawEvent {
        let mut r = RawEvent::zeroed();
        r.ts_ns = 1_234_567_890;
        r.kind = kind;
        r.cpu = 1;
        r.tgid = 4242;
        r.tid = 4243;
        r.comm[..7].copy_from_slice(b"python3");
        for &(i, v) in args {
            r.args[i] = v;
        }
        r
    }

    fn bytes(r: &RawEvent) -> Vec<u8> {
        // SAFETY: RawEvent is plain old data without padding.
        unsafe { std::slice::from_raw_parts((r as *const RawEvent).cast::<u8>(), EVENT_SIZE) }
            .to_vec()
    }

    fn json(r: &RawEvent) -> J {
        let e = decode(&bytes(r)).expect("decodes");
        serde_json::from_str(&e.to_json(&KernelConsts::linux_6_12())).expect("valid JSON")
    }

    #[test]
    fn rejects_wrong_lengths() {
        let r = raw(kind::sys_exit::ID, &[]);
        let b = bytes(&r);
        assert_eq!(
            decode(&b[..EVENT_SIZE - 1]),
            Err(DecodeError::Length {
                got: EVENT_SIZE - 1
            })
        );
        let mut long = b.clone();
        long.push(0);
        assert_eq!(
            decode(&long),
            Err(DecodeError::Length {
                got: EVENT_SIZE + 1
            })
        );
        assert_eq!(decode(&[]), Err(DecodeError::Length { got: 0 }));
    }

    #[test]
    fn rejects_unknown_kinds() {
        assert_eq!(decode(&bytes(&raw(0, &[]))), Err(DecodeError::Kind(0)));
        assert_eq!(decode(&bytes(&raw(99, &[]))), Err(DecodeError::Kind(99)));
    }

    #[test]
    fn decodes_from_unaligned_records() {
        let r = raw(kind::sys_exit::ID, &[(0, sysno::SENDFILE), (1, 65536)]);
        let mut buf = [0u8; EVENT_SIZE + 1];
        buf[1..].copy_from_slice(&bytes(&r));
        let e = decode(&buf[1..]).unwrap();
        assert_eq!(
            e.payload,
            Payload::SyscallExit {
                nr: sysno::SENDFILE as u32,
                ret: 65536
            }
        );
    }

    #[test]
    fn header_fields_in_every_event() {
        for id in 1..=24 {
            let j = json(&raw(id, &[]));
            for key in ["event", "ts_ns", "pid", "tid", "comm"] {
                assert!(j.get(key).is_some(), "kind {id} lacks {key}: {j}");
            }
            assert_eq!(j["pid"], 4242);
            assert_eq!(j["tid"], 4243);
            assert_eq!(j["comm"], "python3");
            assert_eq!(j["ts_ns"], 1_234_567_890u64);
        }
    }

    #[test]
    fn syscall_enter_decodes_data_path_arguments() {
        use kind::sys_enter::{ARG0, NR};
        // sendfile(out_fd=5, in_fd=3, offset=NULL, count=10 MiB)
        let j = json(&raw(
            kind::sys_enter::ID,
            &[
                (NR, sysno::SENDFILE),
                (ARG0, 5),
                (ARG0 + 1, 3),
                (ARG0 + 2, 0),
                (ARG0 + 3, 10 << 20),
            ],
        ));
        assert_eq!(j["event"], "syscall_enter");
        assert_eq!(j["syscall"], "sendfile");
        assert_eq!(j["out_fd"], 5);
        assert_eq!(j["in_fd"], 3);
        assert_eq!(j["offset"], "0x0");
        assert_eq!(j["count"], 10 << 20);

        // read(fd=-1 as the kernel sees it, buf, count)
        let j = json(&raw(
            kind::sys_enter::ID,
            &[
                (NR, sysno::READ),
                (ARG0, u32::MAX as u64),
                (ARG0 + 1, 0x7fff_0000),
                (ARG0 + 2, 4096),
            ],
        ));
        assert_eq!(j["syscall"], "read");
        assert_eq!(j["fd"], -1);
        assert_eq!(j["buf"], "0x7fff0000");
        assert_eq!(j["count"], 4096);

        // pwrite64's offset is a value, not a pointer.
        let j = json(&raw(
            kind::sys_enter::ID,
            &[(NR, sysno::PWRITE64), (ARG0 + 3, 8192)],
        ));
        assert_eq!(j["syscall"], "pwrite64");
        assert_eq!(j["offset"], 8192);
    }

    #[test]
    fn syscall_enter_of_other_syscalls_keeps_raw_arguments() {
        use kind::sys_enter::{ARG0, NR};
        let j = json(&raw(kind::sys_enter::ID, &[(NR, sysno::CLOSE), (ARG0, 7)]));
        assert_eq!(j["syscall"], "close");
        assert_eq!(j["a0"], "0x7");
        let j = json(&raw(kind::sys_enter::ID, &[(NR, 9999)]));
        assert_eq!(j["syscall"], "syscall_9999");
    }

    #[test]
    fn syscall_exit_has_name_and_signed_ret() {
        let j = json(&raw(
            kind::sys_exit::ID,
            &[(0, sysno::WRITE), (1, (-32i64) as u64)],
        ));
        assert_eq!(j["event"], "syscall_exit");
        assert_eq!(j["syscall"], "write");
        assert_eq!(j["ret"], -32);
    }

    #[test]
    fn tcp_sendmsg_locked_classifies_the_payload() {
        use kind::tcp_sendmsg_locked as k;
        // sendfile: BVEC over page-cache pages, SPLICE_PAGES | MORE, skb NULL.
        let j = json(&raw(
            k::ID,
            &[
                (k::SK, 0xffff_8880_0000_1000),
                (k::ITER_TYPE, 2),
                (k::MSG_FLAGS, 0x8008000),
                (k::MSG_LEFT, 65536),
                (k::SIZE_GOAL, 32741),
            ],
        ));
        assert_eq!(j["event"], "tcp_sendmsg_locked");
        assert_eq!(j["iter"], "bvec");
        assert_eq!(j["skb"], "null");
        assert_eq!(j["payload"], "splice_pages");
        assert_eq!(
            j["flags"],
            serde_json::json!(["MSG_MORE", "MSG_SPLICE_PAGES"])
        );
        assert_eq!(j["msg_left"], 65536);
        assert_eq!(j["sk"], "0xffff888000001000");

        // write(): a user buffer, copied.
        let j = json(&raw(
            k::ID,
            &[(k::ITER_TYPE, 0), (k::SKB, 0xffff_0001), (k::SKB_LEN, 100)],
        ));
        assert_eq!(j["iter"], "ubuf");
        assert_eq!(j["payload"], "copy");
        assert_eq!(j["skb"], "0xffff0001");
        assert_eq!(j["skb_len"], 100);
        assert_eq!(j["flags"], serde_json::json!([]));

        // An iter_type this kernel's BTF does not name.
        let j = json(&raw(
            k::ID,
            &[(k::ITER_TYPE, 77), (k::MSG_FLAGS, MSG_ZEROCOPY as u64)],
        ));
        assert_eq!(j["iter"], "unknown");
        assert_eq!(j["payload"], "zerocopy_requested");
    }

    #[test]
    fn sock_lengths() {
        use kind::sock_send_length as k;
        let j = json(&raw(
            k::ID,
            &[
                (k::SK, 0x10),
                (k::RET, 65536),
                (k::FAMILY, 2),
                (k::PROTOCOL, 6),
            ],
        ));
        assert_eq!(j["event"], "sock_send_length");
        assert_eq!(
            (j["ret"].clone(), j["family"].clone(), j["protocol"].clone()),
            (65536.into(), 2.into(), 6.into())
        );
        let j = json(&raw(
            kind::sock_recv_length::ID,
            &[(k::RET, (-11i64) as u64), (k::FLAGS, 0x2000)],
        ));
        assert_eq!(j["event"], "sock_recv_length");
        assert_eq!(j["ret"], -11);
        assert_eq!(j["flags"], "0x2000");
    }

    #[test]
    fn receive_copy_and_page_cache_events() {
        let j = json(&raw(
            kind::skb_copy_datagram_iovec::ID,
            &[(0, 0xabc), (1, 32741)],
        ));
        assert_eq!(j["event"], "skb_copy_datagram_iovec");
        assert_eq!(j["len"], 32741);

        use kind::filemap_get_pages as g;
        let j = json(&raw(
            g::ID,
            &[
                (g::INO, 12),
                (g::DEV, (254 << 20) | 1),
                (g::INDEX, 16),
                (g::LAST_INDEX, 31),
            ],
        ));
        assert_eq!(j["event"], "mm_filemap_get_pages");
        assert_eq!(j["dev"], "254:1");
        assert_eq!(
            (j["index"].clone(), j["last_index"].clone()),
            (16.into(), 31.into())
        );

        use kind::filemap_add_to_page_cache as a;
        let j = json(&raw(a::ID, &[(a::INO, 12), (a::INDEX, 64), (a::ORDER, 2)]));
        assert_eq!(j["event"], "mm_filemap_add_to_page_cache");
        assert_eq!(j["bytes"], 16384);
        let j = json(&raw(a::ID, &[(a::ORDER, u64::MAX)]));
        assert_eq!(j["order"], "unknown");
        assert!(j.get("bytes").is_none());
    }

    #[test]
    fn transmit_reports_device_and_skb_ground_truth() {
        use kind::net_dev_start_xmit as k;
        let mut r = raw(
            k::ID,
            &[
                (k::SKB, 1),
                (k::SK, 2),
                (k::LEN, 32807),
                (k::DATA_LEN, 32741),
                (k::SHINFO_FLAGS, 2),
                (k::NR_FRAGS, 8),
                (k::IFINDEX, 1),
                (k::DEV_FLAGS, 0x49),
                (k::OWNER_TGID, 77),
            ],
        );
        r.name[..2].copy_from_slice(b"lo");
        let j = json(&r);
        assert_eq!(j["event"], "net_dev_start_xmit");
        assert_eq!(j["dev"], "lo");
        assert_eq!(j["loopback"], "yes");
        assert_eq!(j["payload"], "spliced_pages");
        assert_eq!(j["skbfl"], serde_json::json!(["SHARED_FRAG"]));
        assert_eq!(j["owner_pid"], 77);
        assert_eq!(j["data_len"], 32741);
        for (flags, payload) in [
            (0u64, "copied"),
            (0xf, "zerocopy_pinned"),
            (0x1f, "zerocopy_pinned"),
        ] {
            let j = json(&raw(k::ID, &[(k::SHINFO_FLAGS, flags)]));
            assert_eq!(j["payload"], payload);
            assert_eq!(j["loopback"], "no");
        }
    }

    #[test]
    fn block_and_process_events() {
        use kind::block_rq_issue as i;
        let j = json(&raw(
            i::ID,
            &[(i::RQ, 9), (i::BYTES, 262144), (i::OP, 0), (i::INO, 12)],
        ));
        assert_eq!(j["event"], "block_rq_issue");
        assert_eq!(
            (j["op"].clone(), j["bytes"].clone(), j["ino"].clone()),
            ("read".into(), 262144.into(), 12.into())
        );
        use kind::block_rq_complete as c;
        let j = json(&raw(
            c::ID,
            &[(c::RQ, 9), (c::NR_BYTES, 262144), (c::OWNER_TGID, 4242)],
        ));
        assert_eq!(j["event"], "block_rq_complete");
        assert_eq!(j["owner_pid"], 4242);
        let j = json(&raw(kind::process_fork::ID, &[(0, 5000), (1, 5000)]));
        assert_eq!(
            (j["event"].clone(), j["child_pid"].clone()),
            ("process_fork".into(), 5000.into())
        );
        let j = json(&raw(kind::process_exec::ID, &[]));
        assert_eq!(j["event"], "process_exec");
    }

    #[test]
    fn a_hostile_comm_is_escaped_in_text_and_valid_in_json() {
        for (name, escaped) in [
            (
                &b"\x1b]0;pwned\x07\x1b[2J"[..],
                "\\x1b]0;pwned\\x07\\x1b[2J",
            ),
            (b"a\nfake", "a\\nfake"),
        ] {
            let mut r = raw(kind::process_exec::ID, &[]);
            r.comm = [0; 16];
            r.comm[..name.len()].copy_from_slice(name);
            let e = decode(&bytes(&r)).unwrap();
            let line = e.to_text(&KernelConsts::linux_6_12());
            assert!(line.contains(escaped), "{line}");
            assert!(!line.chars().any(char::is_control), "{line:?}");
            assert_eq!(json(&r)["comm"], String::from_utf8_lossy(name).as_ref());
        }
    }

    #[test]
    fn text_form_is_one_line_with_every_field() {
        use kind::sys_exit as k;
        let e = decode(&bytes(&raw(
            k::ID,
            &[(k::NR, sysno::SENDFILE), (k::RET, 65536)],
        )))
        .unwrap();
        let line = e.to_text(&KernelConsts::linux_6_12());
        assert!(!line.contains('\n'));
        assert!(
            line.contains("syscall_exit syscall=sendfile nr=40 ret=65536"),
            "{line}"
        );
        assert!(line.contains("4242/4243"), "{line}");
    }
}
