//! From kernel events to steps, transfers and ledgers (KERNEL_PATHS.md §6's attribution
//! recipe for the tracepoint tier).
//!
//! - A syscall's steps (its two mode switches and what happened inside it) are collected
//!   in the thread's in-flight record and assigned to a transfer at its exit, when the
//!   transfer is known: a read() of a file belongs to the transfer its data goes to next.
//! - fd kinds (regular file, socket, pipe) come from the kernel's fd table at entry.
//! - TCP sends are keyed by socket (`sk`), transmits by `skb->sk` and zero-copy deliveries
//!   by skb, never by the current pid (softirq runs them in whatever task is current).
//! - Steps of a source file seen before its destination is known wait in `pending`.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    fmt,
};

use serde::Serialize;

use super::{
    Buffer, Engine, Evidence, Inference, Ledger, LookupProbe, Mode, Seen, SendDecision, Step,
    StepKind,
};
use crate::{
    event::{self, Event, FdRef, FileKind, Payload},
    syscalls,
};

/// The bytes of a copy made inside a syscall: what `probe` saw, else (probe missing, or
/// a path it does not cover) the syscall's return value, inferred.
fn seen_or_returned(seen: u64, returned: u64, probe: Seen, why: Inference) -> (u64, Evidence) {
    if seen > 0 {
        (seen, Evidence::Observed(probe))
    } else {
        (returned, Evidence::Inferred(why))
    }
}

/// An io_uring request's key: its `io_kiocb`, or its user_data where the kernel does not
/// pass the request.
fn io_req_key(req: u64, user_data: u64) -> u64 {
    if req != 0 { req } else { user_data }
}

/// A step of event `ev`, not assigned to a transfer yet.
fn step_of(ev: &Event, kind: StepKind, evidence: Evidence) -> Step {
    Step {
        ts_ns: ev.ts_ns,
        pid: ev.pid,
        tid: ev.tid,
        transfer: None,
        kind,
        evidence,
    }
}

/// The kernel's zero-copy decision from its inputs (`kind::tcp_sendmsg_locked::ZC*`), when
/// they were read: a user buffer needs SO_ZEROCOPY, io_uring's does not; both need
/// scatter-gather.
fn zc_pins(zc: u64) -> Option<bool> {
    use tracer_common::kind::tcp_sendmsg_locked as k;
    (zc & k::ZC_KNOWN != 0).then_some(zc & (k::ZC_SOCK | k::ZC_UBUF) != 0 && zc & k::ZC_SG != 0)
}

/// A MSG_ZEROCOPY send of `bytes` of which fexit skb_zerocopy_iter_stream saw `pinned`:
/// tcp_sendmsg_locked decides zero-copy once per call and then pins every byte through
/// that function (save TCP Fast Open's SYN data), so a shortfall is events not seen, not
/// a copy.
fn pinned_seen_step(bytes: u64, pinned: u64) -> (StepKind, Evidence) {
    let kind = StepKind::PageRef {
        from: Buffer::User,
        to: Buffer::Socket,
        bytes,
        pinned: true,
    };
    if pinned >= bytes {
        (kind, Evidence::Observed(Seen::FexitSkbZerocopyIterStream))
    } else {
        (kind, Evidence::Inferred(Inference::PinsPartlySeen))
    }
}

/// Page references into the socket buffer: from the pipe (splice) or from the page cache
/// (sendfile).
fn reference_from(src: Buffer, bytes: u64) -> StepKind {
    StepKind::PageRef {
        from: if src == Buffer::Pipe {
            Buffer::Pipe
        } else {
            Buffer::PageCache
        },
        to: Buffer::Socket,
        bytes,
        pinned: false,
    }
}

fn buffer_name(b: Buffer) -> &'static str {
    match b {
        Buffer::Disk => "disk",
        Buffer::PageCache => "page-cache",
        Buffer::User => "user",
        Buffer::Pipe => "pipe",
        Buffer::Socket => "socket",
        Buffer::Nic => "nic",
    }
}

/// A transfer: its index in [`Model::transfers`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TransferId(pub usize);

/// The bare index, as the number it is (a transfer prints as its index).
impl fmt::Debug for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One end of a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Endpoint {
    File {
        ino: u64,
    },
    Socket {
        ino: u64,
    },
    /// The application's memory (a receive's destination, or a send of bytes that did not
    /// come from a file the model saw).
    User,
}

/// What the probes saw about a transfer beyond its ledger; the comparison uses it to say
/// why the ledger differs from the textbook.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Facts {
    /// Transmits with payload, on loopback and on other devices.
    pub loopback_xmits: u64,
    pub nic_xmits: u64,
    pub devices: BTreeSet<String>,
    /// Payload bytes at transmit by what the skb frags held (`skb_shinfo->flags`).
    pub xmit_copied_bytes: u64,
    pub xmit_spliced_bytes: u64,
    pub xmit_zerocopy_bytes: u64,
    /// TCP sends (sock_send_length calls) with bytes, and how many asked for MSG_ZEROCOPY.
    pub sends: u64,
    pub zerocopy_requested: u64,
    /// MSG_ZEROCOPY sends the kernel copied anyway (skbs transmitted as copies).
    pub zerocopy_ignored: u64,
    /// Zero-copy skbs delivered locally, which the kernel copied (skb_copy_ubufs).
    pub deferred_copies: u64,
    pub deferred_copy_bytes: u64,
    /// Disk reads (block requests) of the source file.
    pub block_requests: u64,
    /// Zero-copy completion reaps: recvmsg(MSG_ERRQUEUE) calls.
    pub completion_reaps: u64,
    /// io_uring requests submitted and completion notifications (F_NOTIF) posted.
    pub io_uring_requests: u64,
    pub io_uring_notifications: u64,
    /// Data syscalls per kind (read, write, sendfile, ...), for chunk counts.
    pub syscalls: std::collections::BTreeMap<String, u64>,
    /// Copies and page references by how they are known ("observed by ...",
    /// "inferred"), e.g. whether a kernel let fexit see the page cache -> user copy.
    pub evidence: std::collections::BTreeMap<String, u64>,
}

/// One source -> destination flow of a process, with its ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Transfer {
    pub id: TransferId,
    pub pid: u32,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub ledger: Ledger,
    pub facts: Facts,
    pub first_ns: u64,
    pub last_ns: u64,
}

/// The syscalls the model gives a role, by the numbers `sys_enter` reports.
mod sysno {
    pub const READ: u32 = libc::SYS_read as u32;
    pub const PREAD64: u32 = libc::SYS_pread64 as u32;
    pub const READV: u32 = libc::SYS_readv as u32;
    pub const RECVFROM: u32 = libc::SYS_recvfrom as u32;
    pub const RECVMSG: u32 = libc::SYS_recvmsg as u32;
    pub const WRITE: u32 = libc::SYS_write as u32;
    pub const PWRITE64: u32 = libc::SYS_pwrite64 as u32;
    pub const SENDTO: u32 = libc::SYS_sendto as u32;
    pub const WRITEV: u32 = libc::SYS_writev as u32;
    pub const SENDMSG: u32 = libc::SYS_sendmsg as u32;
    pub const MMAP: u32 = libc::SYS_mmap as u32;
    pub const MUNMAP: u32 = libc::SYS_munmap as u32;
    pub const SENDFILE: u32 = libc::SYS_sendfile as u32;
    pub const SPLICE: u32 = libc::SYS_splice as u32;
    pub const COPY_FILE_RANGE: u32 = libc::SYS_copy_file_range as u32;
    pub const IO_URING_ENTER: u32 = libc::SYS_io_uring_enter as u32;
}

const MSG_ERRQUEUE: u64 = libc::MSG_ERRQUEUE as u64;
const MAP_SHARED: u64 = libc::MAP_SHARED as u64;
const PROT_WRITE: u64 = libc::PROT_WRITE as u64;

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

/// io_uring opcodes whose SQE fd the kernel reads (for the others the traced field is
/// stale): the data-path opcodes, those `event::io_uring_op_name` names.
fn takes_file(opcode: u8) -> bool {
    use io_uring::opcode as op;
    matches!(
        opcode,
        op::Readv::CODE
            | op::Writev::CODE
            | op::ReadFixed::CODE
            | op::WriteFixed::CODE
            | op::SendMsg::CODE
            | op::RecvMsg::CODE
            | op::Read::CODE
            | op::Write::CODE
            | op::Send::CODE
            | op::Recv::CODE
            | op::Splice::CODE
            | op::SendZc::CODE
            | op::SendMsgZc::CODE
    )
}

/// io_uring READV, READ_FIXED and READ.
fn is_read(opcode: u8) -> bool {
    use io_uring::opcode as op;
    matches!(
        opcode,
        op::Readv::CODE | op::ReadFixed::CODE | op::Read::CODE
    )
}

/// Where the bytes of a send come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    /// The user buffer last filled by read() of this file.
    ReadFrom(u64),
    /// A mapping of this file (mmap): the copy reads the page cache through it.
    Mapped(u64),
    Unknown,
}

impl Src {
    fn endpoint(self) -> Endpoint {
        match self {
            Src::ReadFrom(ino) | Src::Mapped(ino) => Endpoint::File { ino },
            Src::Unknown => Endpoint::User,
        }
    }
    fn buffer(self) -> Buffer {
        match self {
            Src::Mapped(_) => Buffer::PageCache,
            _ => Buffer::User,
        }
    }
}

/// What a syscall does on the data path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    FileRead { src: u64, buf: Option<u64> },
    SockRecv { sock: u64, buf: Option<u64> },
    ZcReap { sock: u64 },
    Send { sock: u64, src: Src },
    FileWrite { dst: u64, src: Src },
    Mmap { ino: u64, len: u64 },
    Munmap { ino: u64, addr: u64, len: u64 },
    Sendfile { src: u64, dst: FdRef },
    SpliceIn { src: u64, pipe: u64 },
    SpliceOut { pipe: u64, sock: u64 },
    CopyRange { src: u64, dst: u64 },
    IoUring { ring: u64 },
}

impl Role {
    /// The source file whose page-cache events happen inside this syscall.
    fn source_file(self) -> Option<u64> {
        match self {
            Role::FileRead { src, .. }
            | Role::Sendfile { src, .. }
            | Role::SpliceIn { src, .. }
            | Role::CopyRange { src, .. } => Some(src),
            Role::Mmap { ino, .. } | Role::Munmap { ino, .. } => Some(ino),
            Role::Send {
                src: Src::Mapped(ino),
                ..
            }
            | Role::FileWrite {
                src: Src::Mapped(ino),
                ..
            } => Some(ino),
            _ => None,
        }
    }
}

/// A syscall in flight on one thread.
struct Syscall {
    nr: u32,
    role: Role,
    /// Steps so far, without a transfer yet.
    steps: Vec<Step>,
    /// Bytes the probes saw copied inside (skb -> user, or into a file's page cache), and
    /// which probe saw them.
    copied: u64,
    copied_by: Option<Seen>,
    /// Bytes fexit skb_zerocopy_iter_stream saw pinned in this call, and on which socket.
    pinned: u64,
    pinned_sk: Option<u64>,
    /// The ring's source file and socket learned from this call's submissions.
    iou_src: Option<u64>,
    iou_sock: Option<u64>,
    /// A send of this call was seen by the send tracepoints (else, on kernels without
    /// them, the send is inferred from the return value).
    sent: bool,
    /// MSG_ZEROCOPY was asked for (sendto's or sendmsg's flags).
    zerocopy: bool,
    /// The socket's zero-copy inputs at the call's entry (`kind::tcp_sendmsg_locked::ZC*`;
    /// 0 when not read).
    send_zc: u8,
    /// A MSG_ZEROCOPY send decided at the syscall's return (no send hook): whether the
    /// kernel copied (some of) it instead of pinning.
    zc_copied: Option<bool>,
    /// The socket a send goes to is TCP (the send inference is for TCP only).
    tcp: bool,
    /// Bytes kretprobe do_tcp_sendpages saw referenced into the socket in this call.
    referenced: u64,
}

/// A TCP send call in progress on a socket (between tcp_sendmsg_locked and
/// sock_send_length).
#[derive(Default)]
struct SendCall {
    /// When the call's first send-loop iteration began: its copy starts there.
    ts_ns: u64,
    msg_flags: u32,
    /// The zero-copy decision inputs `tcp_sendmsg_locked` saw (`kind::tcp_sendmsg_locked::ZC*`).
    zc: u8,
    xmit_zerocopy: bool,
    xmit_copied: bool,
}

/// A user buffer a thread filled with read() from a file: a later send of bytes inside it
/// sends that file's data.
struct ReadBuf {
    addr: u64,
    len: u64,
    ino: u64,
}

impl ReadBuf {
    fn overlaps(&self, addr: u64, len: u64) -> bool {
        addr < self.addr + self.len && self.addr < addr.saturating_add(len)
    }
}

/// How many filled buffers a thread's record keeps.
const READ_BUFS: usize = 16;

struct Mapping {
    addr: u64,
    len: u64,
    ino: u64,
}

/// An io_uring request the model follows until its completion.
struct IoReq {
    opcode: u8,
    file: FdRef,
    ring: u64,
}

/// The event -> step state machine. Feed it events in ring-buffer order with
/// [`Model::push`], then call [`Model::finish`].
#[derive(Default)]
pub struct Model {
    /// Every transfer, by id.
    transfers: Vec<Transfer>,
    /// (pid, source, destination) -> its transfer (see `find_or_create`).
    by_ends: HashMap<(u32, Endpoint, Endpoint), TransferId>,
    /// tid -> the syscall in flight on that thread.
    in_flight: HashMap<u32, Syscall>,
    /// (pid, source file ino) -> the transfer that file's bytes go to now.
    transfer_by_source_file: HashMap<(u32, u64), TransferId>,
    /// (pid, socket ino) -> the transfer sending into that socket.
    transfer_by_dest_socket: HashMap<(u32, u64), TransferId>,
    /// (pid, source file ino) -> that file's steps whose destination is not known yet.
    awaiting_destination: HashMap<(u32, u64), Vec<Step>>,
    /// tid -> the buffers that thread filled from files (most recent last).
    filled_by_read: HashMap<u32, Vec<ReadBuf>>,
    /// pid -> that process's shared or read-only file mappings.
    file_mappings: HashMap<u32, Vec<Mapping>>,
    /// (pid, pipe ino) -> the file last spliced into the pipe.
    source_file_by_pipe: HashMap<(u32, u64), u64>,
    /// (owning pid, kernel `sk` pointer) -> the transfer sending through that socket.
    transfer_by_sk: HashMap<(u32, u64), TransferId>,
    /// (pid, `sk`) -> the TCP send call in progress on it.
    send_calls: HashMap<(u32, u64), SendCall>,
    /// (pid, file ino) -> bytes fexit filemap_read copied for io_uring READs not
    /// completed yet.
    read_bytes_by_file: HashMap<(u32, u64), u64>,
    /// (pid, `sk`) -> bytes fexit skb_zerocopy_iter_stream pinned into the socket's skbs
    /// in the send call in progress.
    pinned_by_sk: HashMap<(u32, u64), u64>,
    /// (pid, `sk`) of the sockets on which a zero-copy skb was transmitted.
    sk_with_zc_xmit: HashSet<(u32, u64)>,
    /// (pid, `sk`) -> the io_uring ring (its ino) the socket's requests came through.
    ring_by_sk: HashMap<(u32, u64), u64>,
    /// Zero-copy skb -> the transfer that transmitted it (loopback copies it later).
    transfer_by_zc_skb: HashMap<u64, TransferId>,
    /// File ino -> page index -> when the page was added to the page cache during the
    /// trace (a miss's lookup began then).
    added_at: HashMap<u64, HashMap<u64, u64>>,
    /// (pid, file ino) -> the pages that process already looked up.
    looked_up: HashMap<(u32, u64), HashSet<u64>>,
    /// io_uring requests by (pid, io_kiocb), or by (pid, user_data) where the kernel
    /// does not pass the request.
    io_requests: HashMap<(u32, u64), IoReq>,
    /// Block requests issued and not completed yet.
    block_requests: HashSet<u64>,
    /// fexit tcp_sendmsg_locked reports sends here (sock_send_length is then redundant).
    fexit_sees_sends: bool,
    /// (pid, ring ino) -> the regular file its READs read.
    source_file_by_ring: HashMap<(u32, u64), u64>,
    /// (pid, ring ino) -> the ring's transfer (its READs' file to its SENDs' socket).
    transfer_by_ring: HashMap<(u32, u64), TransferId>,
}

impl Model {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn transfers(&self) -> &[Transfer] {
        &self.transfers
    }

    /// The transfer from `src` to `dst` of process `pid`, if any.
    pub fn find(&self, pid: u32, src: Endpoint, dst: Endpoint) -> Option<&Transfer> {
        self.by_ends
            .get(&(pid, src, dst))
            .map(|&i| &self.transfers[i.0])
    }

    /// Takes one event; steps that become attributable are appended to `out` (a syscall's
    /// steps arrive together at its exit).
    pub fn push(&mut self, ev: &Event, out: &mut Vec<Step>) {
        let step = |kind, evidence| step_of(ev, kind, evidence);
        match &ev.payload {
            Payload::SyscallEnter { nr, args, fds } => {
                let Some(role) = self.role(ev.pid, ev.tid, *nr, args, fds) else {
                    return;
                };
                let name = syscalls::name(*nr).into_owned();
                let s = step(
                    StepKind::ModeSwitch {
                        to: Mode::Kernel,
                        syscall: name,
                    },
                    Evidence::Observed(Seen::SysEnter),
                );
                self.in_flight.insert(
                    ev.tid,
                    Syscall {
                        nr: *nr,
                        role,
                        steps: vec![s],
                        copied: 0,
                        copied_by: None,
                        pinned: 0,
                        pinned_sk: None,
                        iou_src: None,
                        iou_sock: None,
                        sent: false,
                        referenced: 0,
                        tcp: match role {
                            Role::SpliceOut { .. } => !fds[1].not_tcp,
                            _ => !fds[0].not_tcp,
                        },
                        send_zc: fds[0].zc,
                        zc_copied: None,
                        zerocopy: tracer_common::send_flags_arg(*nr as u64)
                            .is_some_and(|i| args[i] & tracer_common::MSG_ZEROCOPY != 0),
                    },
                );
            }
            Payload::SyscallExit { nr, ret } => {
                let Some(mut sys) = self.in_flight.remove(&ev.tid) else {
                    return;
                };
                if sys.nr != *nr {
                    return;
                }
                // Pins no send hook took (a kernel without them): this call is over.
                if let Some(sk) = sys.pinned_sk {
                    self.pinned_by_sk.remove(&(ev.pid, sk));
                }
                let ret = *ret;
                let bytes = if ret > 0 { ret as u64 } else { 0 };
                let file_to_file = match sys.role {
                    Role::CopyRange { .. } => true,
                    Role::Sendfile { dst, .. } => dst.kind() != FileKind::Socket,
                    _ => false,
                };
                let mut inner = |kind, evidence| sys.steps.push(step(kind, evidence));
                match sys.role {
                    Role::FileRead { src, buf } if bytes > 0 => {
                        // fexit filemap_read saw the copy where the kernel allows fentry;
                        // else the return value says it (there is no tracepoint at it).
                        let (b, evidence) = seen_or_returned(
                            sys.copied,
                            bytes,
                            Seen::FexitFilemapRead,
                            Inference::FileReadReturned,
                        );
                        inner(
                            StepKind::Copy {
                                engine: Engine::Cpu,
                                from: Buffer::PageCache,
                                to: Buffer::User,
                                bytes: b,
                            },
                            evidence,
                        );
                        if let Some(addr) = buf {
                            let reads = self.filled_by_read.entry(ev.tid).or_default();
                            reads.retain(|r| !r.overlaps(addr, bytes));
                            if reads.len() == READ_BUFS {
                                reads.remove(0);
                            }
                            reads.push(ReadBuf {
                                addr,
                                len: bytes,
                                ino: src,
                            });
                        }
                    }
                    Role::SockRecv { buf, .. } if sys.copied > 0 || bytes > 0 => {
                        // The buffer now holds received bytes, not a file's.
                        if let (Some(addr), Some(reads)) =
                            (buf, self.filled_by_read.get_mut(&ev.tid))
                        {
                            reads.retain(|r| !r.overlaps(addr, bytes));
                        }
                        let (b, evidence) = seen_or_returned(
                            sys.copied,
                            bytes,
                            sys.copied_by.unwrap_or(Seen::SkbCopyDatagramIovec),
                            Inference::ReceiveReturned,
                        );
                        inner(
                            StepKind::Copy {
                                engine: Engine::Cpu,
                                from: Buffer::Socket,
                                to: Buffer::User,
                                bytes: b,
                            },
                            evidence,
                        );
                    }
                    Role::FileWrite { src, .. } if bytes > 0 => {
                        let (b, evidence) = seen_or_returned(
                            sys.copied,
                            bytes,
                            sys.copied_by.unwrap_or(Seen::Ext4DaWriteEnd),
                            Inference::FileWriteReturned,
                        );
                        inner(
                            StepKind::Copy {
                                engine: Engine::Cpu,
                                from: src.buffer(),
                                to: Buffer::PageCache,
                                bytes: b,
                            },
                            evidence,
                        );
                    }
                    Role::SpliceIn { src, pipe } if bytes > 0 => {
                        let (b, evidence) = seen_or_returned(
                            sys.referenced,
                            bytes,
                            Seen::FexitFilemapReadIntoPipe,
                            Inference::SpliceReadReturned,
                        );
                        inner(
                            StepKind::PageRef {
                                from: Buffer::PageCache,
                                to: Buffer::Pipe,
                                bytes: b,
                                pinned: false,
                            },
                            evidence,
                        );
                        self.source_file_by_pipe.insert((ev.pid, pipe), src);
                    }
                    // copy_file_range, or sendfile into a file: page cache to page cache.
                    Role::CopyRange { .. } | Role::Sendfile { .. } if bytes > 0 && file_to_file => {
                        let (b, evidence) = seen_or_returned(
                            sys.copied,
                            bytes,
                            sys.copied_by.unwrap_or(Seen::Ext4DaWriteEnd),
                            Inference::FileCopyReturned,
                        );
                        inner(
                            StepKind::Copy {
                                engine: Engine::Cpu,
                                from: Buffer::PageCache,
                                to: Buffer::PageCache,
                                bytes: b,
                            },
                            evidence,
                        );
                    }
                    Role::Mmap { ino, len } if ret > 0 => {
                        self.file_mappings.entry(ev.pid).or_default().push(Mapping {
                            addr: ret as u64,
                            len,
                            ino,
                        });
                    }
                    Role::Munmap { addr, len, .. } if ret == 0 => {
                        if let Some(maps) = self.file_mappings.get_mut(&ev.pid) {
                            unmap(maps, addr, len);
                        }
                    }
                    // No send tracepoint saw this call (kernels before 6.3 have neither
                    // sock_send_length nor tcp_sendmsg_locked): the syscall says how many
                    // bytes went, and the method says how (KERNEL_PATHS.md §2.5).
                    Role::Send { src, .. } if bytes > 0 && !sys.sent && sys.tcp => {
                        if sys.zerocopy && sys.pinned > 0 {
                            sys.zc_copied = Some(false);
                            let (kind, evidence) = pinned_seen_step(bytes, sys.pinned);
                            inner(kind, evidence);
                        } else if sys.zerocopy {
                            // The socket's inputs, read at the call's entry: SO_ZEROCOPY
                            // and scatter-gather pin, else the kernel copies.
                            let decided = zc_pins(sys.send_zc as u64);
                            let copies = decided == Some(false);
                            sys.zc_copied = Some(copies);
                            if copies {
                                inner(
                                    StepKind::Copy {
                                        engine: Engine::Cpu,
                                        from: src.buffer(),
                                        to: Buffer::Socket,
                                        bytes,
                                    },
                                    Evidence::Inferred(Inference::ZerocopyReturnedCopied),
                                );
                            } else {
                                inner(
                                    StepKind::PageRef {
                                        from: Buffer::User,
                                        to: Buffer::Socket,
                                        bytes,
                                        pinned: true,
                                    },
                                    Evidence::Inferred(if decided.is_some() {
                                        Inference::ZerocopyReturnedPinned
                                    } else {
                                        Inference::ZerocopyReturned
                                    }),
                                );
                            }
                        } else {
                            inner(
                                StepKind::Copy {
                                    engine: Engine::Cpu,
                                    from: src.buffer(),
                                    to: Buffer::Socket,
                                    bytes,
                                },
                                Evidence::Inferred(Inference::SendReturned),
                            );
                        }
                    }
                    Role::Sendfile { dst, .. }
                        if bytes > 0 && !sys.sent && sys.tcp && dst.kind() == FileKind::Socket =>
                    {
                        // kretprobe do_tcp_sendpages saw the references (before 6.5).
                        let (b, evidence) = seen_or_returned(
                            sys.referenced,
                            bytes,
                            Seen::KretprobeDoTcpSendpages,
                            Inference::SendfileReturned,
                        );
                        inner(
                            StepKind::PageRef {
                                from: Buffer::PageCache,
                                to: Buffer::Socket,
                                bytes: b,
                                pinned: false,
                            },
                            evidence,
                        );
                    }
                    Role::SpliceOut { .. } if bytes > 0 && !sys.sent && sys.tcp => {
                        let (b, evidence) = seen_or_returned(
                            sys.referenced,
                            bytes,
                            Seen::KretprobeDoTcpSendpages,
                            Inference::SpliceSendReturned,
                        );
                        inner(
                            StepKind::PageRef {
                                from: Buffer::Pipe,
                                to: Buffer::Socket,
                                bytes: b,
                                pinned: false,
                            },
                            evidence,
                        );
                    }
                    _ => {}
                }
                let name = syscalls::name(*nr).into_owned();
                sys.steps.push(step(
                    StepKind::ModeSwitch {
                        to: Mode::User,
                        syscall: name,
                    },
                    Evidence::Observed(Seen::SysExit),
                ));
                self.finish_syscall(ev.pid, sys, out);
            }
            Payload::TcpSendmsgLocked {
                sk, msg_flags, zc, ..
            } => {
                // Fires per loop iteration: the first one of a call opens it, and learns the
                // socket's transfer now (its first skbs go out within this call; a socket
                // may carry one file, then another).
                if self.open_send(ev, *sk, *msg_flags, *zc)
                    && let Some(flow) = self.transfer_of_send(ev.pid, ev.tid, *sk)
                {
                    self.transfer_by_sk.insert((ev.pid, *sk), flow);
                }
            }
            Payload::SockSendLength(s) => {
                if self.fexit_sees_sends {
                    // fexit tcp_sendmsg_locked already told this call (and closed it; a
                    // record open now is another thread's next call).
                    return;
                }
                self.send_length(ev, s.sk, s.ret, false, out);
            }
            Payload::TcpSendmsgExit {
                sk,
                ret,
                msg_flags,
                zc,
                ..
            } => {
                self.fexit_sees_sends = true;
                self.open_send(ev, *sk, *msg_flags, *zc);
                self.send_length(ev, *sk, *ret, true, out);
            }
            Payload::NetDevStartXmit {
                skb,
                sk,
                data_len,
                shinfo_flags,
                dev_flags,
                dev,
                owner_pid,
                ..
            } => {
                if *data_len == 0 {
                    return; // a pure ACK, SYN or FIN
                }
                let zc = shinfo_flags & 1 != 0;
                // The socket's owner (the probe looked it up), not the current task.
                let key = (*owner_pid, *sk);
                if let Some(call) = self.send_calls.get_mut(&key) {
                    if zc {
                        call.xmit_zerocopy = true;
                    } else if shinfo_flags & 2 == 0 {
                        call.xmit_copied = true;
                    }
                }
                if zc {
                    self.sk_with_zc_xmit.insert(key);
                }
                // Without send tracepoints the socket is learned here: a transmit in its
                // owner's own send call.
                // (Again at every send call: a socket may carry one file, then another.)
                if ev.pid == *owner_pid
                    && self.in_flight.contains_key(&ev.tid)
                    && let Some(flow) = self.transfer_of_send(ev.pid, ev.tid, *sk)
                {
                    self.transfer_by_sk.insert(key, flow);
                }
                let Some(&flow) = self.transfer_by_sk.get(&key) else {
                    return;
                };
                let bytes = *data_len as u64;
                let t = &mut self.transfers[flow.0];
                let facts = &mut t.facts;
                if !facts.devices.contains(dev) {
                    facts.devices.insert(dev.clone());
                }
                match (zc, shinfo_flags & 2 != 0) {
                    (true, _) => facts.xmit_zerocopy_bytes += bytes,
                    (false, true) => facts.xmit_spliced_bytes += bytes,
                    _ => facts.xmit_copied_bytes += bytes,
                }
                if zc {
                    self.transfer_by_zc_skb.insert(*skb, flow);
                }
                let kind = if dev_flags & 0x8 != 0 {
                    facts.loopback_xmits += 1;
                    StepKind::Handoff { bytes }
                } else {
                    facts.nic_xmits += 1;
                    StepKind::Copy {
                        engine: Engine::Dma,
                        from: if zc {
                            Buffer::User
                        } else if shinfo_flags & 2 != 0 {
                            Buffer::PageCache
                        } else {
                            Buffer::Socket
                        },
                        to: Buffer::Nic,
                        bytes,
                    }
                };
                let s = step(kind, Evidence::Observed(Seen::NetDevStartXmit));
                self.place(ev, *owner_pid, flow, s, out);
            }
            Payload::ZerocopyReceive {
                skb,
                data_len,
                fexit,
                owner_pid,
                ..
            } => {
                let Some(flow) = self.transfer_by_zc_skb.remove(skb) else {
                    return;
                };
                let facts = &mut self.transfers[flow.0].facts;
                facts.deferred_copies += 1;
                facts.deferred_copy_bytes += *data_len as u64;
                let s = step(
                    StepKind::Copy {
                        engine: Engine::Cpu,
                        from: Buffer::User,
                        to: Buffer::Socket,
                        bytes: *data_len as u64,
                    },
                    if *fexit {
                        Evidence::Observed(Seen::FexitSkbCopyUbufs)
                    } else {
                        Evidence::Inferred(Inference::LoopbackCopiesPins)
                    },
                );
                // Loopback delivers during the sender's own send call: the copy comes out
                // after the read() that call waited for, in time order.
                self.place(ev, *owner_pid, flow, s, out);
            }
            Payload::SendpagesExit { bytes } => {
                if let Some(sys) = self.in_flight.get_mut(&ev.tid)
                    && matches!(sys.role, Role::Sendfile { .. } | Role::SpliceOut { .. })
                {
                    sys.referenced += bytes;
                }
            }
            Payload::FilemapRead {
                ino,
                bytes,
                already,
                pipe,
            } => {
                let bytes = bytes.saturating_sub(*already);
                // An io_uring READ's copy, inline in io_uring_enter or in an io-wq worker
                // (no syscall): counted per (process, file) until its completion takes it
                // (filemap_read does not know the request). Only files a ring of this
                // process reads are counted.
                let role = self.in_flight.get(&ev.tid).map(|s| s.role);
                if !pipe
                    && matches!(role, None | Some(Role::IoUring { .. }))
                    && self
                        .source_file_by_ring
                        .iter()
                        .any(|((pid, _), src)| *pid == ev.pid && src == ino)
                {
                    *self.read_bytes_by_file.entry((ev.pid, *ino)).or_default() += bytes;
                    return;
                }
                let Some(sys) = self.in_flight.get_mut(&ev.tid) else {
                    return;
                };
                match sys.role {
                    Role::FileRead { src, .. } if src == *ino && !pipe => sys.copied += bytes,
                    // Before 6.5 a splice from a file reads through filemap_read into the
                    // pipe's iterator, which takes page references.
                    Role::SpliceIn { src, .. } if src == *ino && *pipe => sys.referenced += bytes,
                    _ => {}
                }
            }
            Payload::SkbCopyDatagramIovec { len, fexit, .. } => {
                if let Some(sys) = self.in_flight.get_mut(&ev.tid)
                    && let Role::SockRecv { .. } = sys.role
                    && *len > 0
                {
                    sys.copied += *len as u64;
                    sys.copied_by = Some(if *fexit {
                        Seen::FexitSkbCopyDatagramIter
                    } else {
                        Seen::SkbCopyDatagramIovec
                    });
                }
            }
            Payload::Ext4DaWriteEnd { copied, .. } => {
                self.file_write(ev.tid, *copied as u64, Seen::Ext4DaWriteEnd)
            }
            Payload::PerformWrite { bytes, .. } => {
                self.file_write(ev.tid, *bytes, Seen::FexitGenericPerformWrite)
            }
            Payload::ZerocopyPinned { sk, bytes } => {
                if let Some(sys) = self.in_flight.get_mut(&ev.tid) {
                    sys.pinned += bytes;
                    sys.pinned_sk = Some(*sk);
                }
                *self.pinned_by_sk.entry((ev.pid, *sk)).or_default() += bytes;
            }
            Payload::FilemapAddToPageCache {
                ino, index, order, ..
            } => {
                let pages = 1u64 << order.unwrap_or(0).min(20);
                let added = self.added_at.entry(*ino).or_default();
                for page in *index..*index + pages {
                    added.entry(page).or_insert(ev.ts_ns);
                }
            }
            Payload::FilemapGetPages {
                ino,
                index: first,
                last_index: last,
                fexit,
                ..
            }
            | Payload::FilemapMapPages {
                ino,
                start: first,
                end: last,
                fexit,
                ..
            } => {
                let map_pages = matches!(ev.payload, Payload::FilemapMapPages { .. });
                let probe = match (map_pages, *fexit) {
                    (false, false) => LookupProbe::MmFilemapGetPages,
                    (false, true) => LookupProbe::FexitFilemapGetPages,
                    (true, false) => LookupProbe::MmFilemapMapPages,
                    (true, true) => LookupProbe::FexitFilemapMapPages,
                };
                self.lookup(ev, *ino, *first, *last, probe, out)
            }
            Payload::BlockRqIssue {
                rq,
                op,
                ino,
                bytes,
                owner_pid,
                ..
            } => {
                if *op != 0 || *ino == 0 {
                    return; // writeback, or a page with no file
                }
                // A request the device could not take yet is issued again (requeued):
                // it is one DMA.
                if !self.block_requests.insert(*rq) {
                    return;
                }
                let s = step(
                    StepKind::Copy {
                        engine: Engine::Dma,
                        from: Buffer::Disk,
                        to: Buffer::PageCache,
                        bytes: *bytes as u64,
                    },
                    Evidence::Observed(Seen::BlockRqIssue),
                );
                // A kernel worker may issue it: the owner is the process reading.
                let pid = if *owner_pid != 0 { *owner_pid } else { ev.pid };
                self.route(pid, ev.tid, Some(*ino), None, s, out);
            }
            Payload::IoUringSubmit {
                user_data,
                opcode,
                file,
                sk,
                req,
                ..
            } => {
                // The kernel fills the fd only for opcodes that take a file.
                let file = if takes_file(*opcode) {
                    *file
                } else {
                    FdRef::default()
                };
                let ring = match self.in_flight.get(&ev.tid) {
                    Some(Syscall {
                        role: Role::IoUring { ring },
                        ..
                    }) => *ring,
                    _ => 0,
                };
                if let Some(sys) = self.in_flight.get_mut(&ev.tid) {
                    match file.kind() {
                        FileKind::Regular => sys.iou_src = Some(file.ino),
                        FileKind::Socket => sys.iou_sock = Some(file.ino),
                        _ => {}
                    }
                }
                if file.kind() == FileKind::Regular {
                    self.source_file_by_ring.insert((ev.pid, ring), file.ino);
                }
                if file.kind() == FileKind::Socket && *sk != 0 && ring != 0 {
                    self.ring_by_sk.insert((ev.pid, *sk), ring);
                }
                self.io_requests.insert(
                    (ev.pid, io_req_key(*req, *user_data)),
                    IoReq {
                        opcode: *opcode,
                        file,
                        ring,
                    },
                );
            }
            Payload::IoUringComplete {
                user_data,
                res,
                cflags,
                req,
            } => {
                let key = (ev.pid, io_req_key(*req, *user_data));
                let Some(req) = self.io_requests.get(&key) else {
                    return;
                };
                let (opcode, file, ring) = (req.opcode, req.file, req.ring);
                if !io_uring::cqueue::more(*cflags) {
                    self.io_requests.remove(&key);
                }
                let flow = self.transfer_by_ring.get(&(ev.pid, ring)).copied();
                if let Some(flow) = flow {
                    let facts = &mut self.transfers[flow.0].facts;
                    if io_uring::cqueue::notif(*cflags) {
                        facts.io_uring_notifications += 1;
                    } else {
                        facts.io_uring_requests += 1;
                    }
                }
                // READ / READV / READ_FIXED of a regular file: a CPU copy out of the page
                // cache (into user pages, or registered pages through a kernel mapping).
                if is_read(opcode) && file.kind() == FileKind::Regular && *res > 0 {
                    let bytes = *res as u64;
                    // fexit filemap_read saw the copy (inline, or in an io-wq worker).
                    let seen = self.read_bytes_by_file.get_mut(&(ev.pid, file.ino));
                    let evidence = match seen {
                        Some(seen) if *seen >= bytes => {
                            *seen -= bytes;
                            Evidence::Observed(Seen::FexitFilemapRead)
                        }
                        _ => Evidence::Inferred(Inference::IoUringReadCompleted),
                    };
                    let s = step(
                        StepKind::Copy {
                            engine: Engine::Cpu,
                            from: Buffer::PageCache,
                            to: Buffer::User,
                            bytes,
                        },
                        evidence,
                    );
                    self.route(ev.pid, ev.tid, Some(file.ino), None, s, out);
                }
            }
            Payload::BlockRqComplete { rq, .. } => {
                self.block_requests.remove(rq);
            }
            Payload::SockRecvLength(_)
            | Payload::FilemapFault { .. }
            | Payload::ProcessFork { .. }
            | Payload::ProcessExec => {}
        }
    }

    /// A TCP send call ended: `sock_send_length`, or fexit `tcp_sendmsg_locked` (`fexit`),
    /// which sees the whole call and makes the tracepoint's step redundant.
    fn send_length(&mut self, ev: &Event, sk: u64, ret: i32, fexit: bool, out: &mut Vec<Step>) {
        let key = (ev.pid, sk);
        let call = self.send_calls.remove(&key);
        let pinned_seen = self.pinned_by_sk.remove(&key).unwrap_or(0);
        if ret <= 0 {
            return;
        }
        let bytes = ret as u64;
        let role = self.in_flight.get(&ev.tid).map(|sys| sys.role);
        let Some(flow) = self.transfer_of_send(ev.pid, ev.tid, sk) else {
            return;
        };
        self.transfer_by_sk.insert(key, flow);
        if let Some(sys) = self.in_flight.get_mut(&ev.tid) {
            sys.sent = true;
        }
        let src = match role {
            Some(Role::Send { src, .. }) => src.buffer(),
            Some(Role::SpliceOut { .. }) => Buffer::Pipe,
            _ => Buffer::User,
        };
        let in_splice = matches!(role, Some(Role::Sendfile { .. } | Role::SpliceOut { .. }));
        let flags = call.as_ref().map(|c| c.msg_flags);
        let facts = &mut self.transfers[flow.0].facts;
        facts.sends += 1;
        let (kind, evidence) = match flags {
            Some(f) if f & event::MSG_SPLICE_PAGES != 0 => (
                reference_from(src, bytes),
                Evidence::Observed(Seen::TcpSendmsg {
                    fexit,
                    decision: SendDecision::SplicePages,
                }),
            ),
            Some(f) if f & event::MSG_ZEROCOPY != 0 => {
                use tracer_common::kind::tcp_sendmsg_locked as k;
                facts.zerocopy_requested += 1;
                let c = call.as_ref();
                let zc = c.map_or(0, |c| c.zc as u64);
                // The kernel's own decision when its inputs were read; else what the
                // transmitted skbs held.
                let decided = zc_pins(zc).is_some();
                let pinned = zc_pins(zc).unwrap_or_else(|| {
                    c.is_some_and(|c| c.xmit_zerocopy)
                        || (!c.is_some_and(|c| c.xmit_copied)
                            && self.sk_with_zc_xmit.contains(&key))
                });
                if pinned_seen > 0 {
                    // fexit skb_zerocopy_iter_stream saw the pins themselves.
                    pinned_seen_step(bytes, pinned_seen)
                } else if pinned && decided {
                    (
                        StepKind::PageRef {
                            from: Buffer::User,
                            to: Buffer::Socket,
                            bytes,
                            pinned: true,
                        },
                        Evidence::Observed(Seen::TcpSendmsg {
                            fexit,
                            decision: if fexit {
                                SendDecision::ZerocopyPinned
                            } else if zc & k::ZC_UBUF != 0 {
                                SendDecision::ZerocopyUbuf
                            } else {
                                SendDecision::ZerocopySocket
                            },
                        }),
                    )
                } else if !pinned && decided {
                    facts.zerocopy_ignored += 1;
                    (
                        StepKind::Copy {
                            engine: Engine::Cpu,
                            from: src,
                            to: Buffer::Socket,
                            bytes,
                        },
                        Evidence::Observed(Seen::TcpSendmsg {
                            fexit,
                            decision: SendDecision::ZerocopyCopied,
                        }),
                    )
                } else if pinned {
                    (
                        StepKind::PageRef {
                            from: Buffer::User,
                            to: Buffer::Socket,
                            bytes,
                            pinned: true,
                        },
                        if c.is_some_and(|c| c.xmit_zerocopy) {
                            Evidence::Observed(Seen::TcpSendmsgZerocopyXmit)
                        } else {
                            Evidence::Inferred(Inference::ZerocopyTransmitted)
                        },
                    )
                } else {
                    facts.zerocopy_ignored += 1;
                    (
                        StepKind::Copy {
                            engine: Engine::Cpu,
                            from: src,
                            to: Buffer::Socket,
                            bytes,
                        },
                        Evidence::Inferred(Inference::ZerocopyTransmittedCopied),
                    )
                }
            }
            Some(_) => (
                StepKind::Copy {
                    engine: Engine::Cpu,
                    from: src,
                    to: Buffer::Socket,
                    bytes,
                },
                Evidence::Observed(Seen::TcpSendmsg {
                    fexit,
                    decision: SendDecision::Plain,
                }),
            ),
            // No tcp_sendmsg_locked tracepoint (kernels before 6.16): the syscall
            // decides (KERNEL_PATHS.md §2.5), and transmits confirm.
            None if in_splice => (
                reference_from(src, bytes),
                Evidence::Inferred(Inference::SpliceSends),
            ),
            None => (
                StepKind::Copy {
                    engine: Engine::Cpu,
                    from: src,
                    to: Buffer::Socket,
                    bytes,
                },
                Evidence::Inferred(Inference::PlainSend),
            ),
        };
        let mut s = step_of(ev, kind, evidence);
        // The bytes moved from the start of the call on, before its transmits.
        if let Some(c) = &call {
            s.ts_ns = c.ts_ns;
        }
        self.route(ev.pid, ev.tid, None, Some(flow), s, out);
    }

    /// Flushes what is still waiting: syscalls without an exit (the trace ended inside
    /// them) are dropped; source-file steps that never found a destination become
    /// transfers to the application's memory when they include syscalls.
    pub fn finish(&mut self, out: &mut Vec<Step>) {
        // A syscall still in flight is dropped, but not the steps of other transfers it
        // carried (a transmit in its context).
        let mut carried: Vec<(TransferId, Step)> = self
            .in_flight
            .drain()
            .flat_map(|(_, sys)| sys.steps)
            .filter_map(|s| Some((s.transfer?, s)))
            .collect();
        carried.sort_by_key(|(_, s)| s.ts_ns);
        for (flow, s) in carried {
            self.emit(flow, s, out);
        }
        let mut keys: Vec<_> = self.awaiting_destination.keys().copied().collect();
        keys.sort_unstable();
        for (pid, ino) in keys {
            // A file whose data went nowhere the model saw becomes a transfer to the
            // application when bytes moved (a plain read); an mmap that was never sent
            // from, or a library mapped by the loader, does not.
            let moved = self.awaiting_destination[&(pid, ino)].iter().any(|s| {
                matches!(
                    s.kind,
                    StepKind::Copy {
                        engine: Engine::Cpu,
                        ..
                    } | StepKind::PageRef { .. }
                )
            });
            if moved {
                let flow = self.find_or_create(pid, Endpoint::File { ino }, Endpoint::User);
                self.attach_source(pid, ino, flow, out);
            } else {
                self.awaiting_destination.remove(&(pid, ino));
            }
        }
    }

    fn role(
        &mut self,
        pid: u32,
        tid: u32,
        nr: u32,
        args: &[u64; 6],
        fds: &[FdRef; 2],
    ) -> Option<Role> {
        let (a, b) = (fds[0], fds[1]);
        let src_of = |model: &Self, buf: Option<u64>| -> Src {
            if let Some(buf) = buf
                && let Some(m) = model
                    .file_mappings
                    .get(&pid)
                    .and_then(|maps| maps.iter().find(|m| buf >= m.addr && buf < m.addr + m.len))
            {
                return Src::Mapped(m.ino);
            }
            // The file last read into the buffer being sent; for a vectored send (no
            // single buffer), the thread's last read.
            let reads = model.filled_by_read.get(&tid);
            let hit = match buf {
                Some(buf) => reads.and_then(|r| r.iter().rev().find(|r| r.overlaps(buf, 1))),
                None => reads.and_then(|r| r.last()),
            };
            match hit {
                Some(r) => Src::ReadFrom(r.ino),
                None => Src::Unknown,
            }
        };
        Some(match (nr, a.kind()) {
            (sysno::READ | sysno::PREAD64, FileKind::Regular) => Role::FileRead {
                src: a.ino,
                buf: Some(args[1]),
            },
            (sysno::READV, FileKind::Regular) => Role::FileRead {
                src: a.ino,
                buf: None,
            },
            (sysno::READ | sysno::PREAD64 | sysno::RECVFROM, FileKind::Socket) => Role::SockRecv {
                sock: a.ino,
                buf: Some(args[1]),
            },
            (sysno::READV, FileKind::Socket) => Role::SockRecv {
                sock: a.ino,
                buf: None,
            },
            (sysno::RECVMSG, FileKind::Socket) if args[2] & MSG_ERRQUEUE != 0 => {
                Role::ZcReap { sock: a.ino }
            }
            (sysno::RECVMSG, FileKind::Socket) => Role::SockRecv {
                sock: a.ino,
                buf: None,
            },
            (sysno::WRITE | sysno::PWRITE64 | sysno::SENDTO, FileKind::Socket) => Role::Send {
                sock: a.ino,
                src: src_of(self, Some(args[1])),
            },
            (sysno::WRITEV | sysno::SENDMSG, FileKind::Socket) => Role::Send {
                sock: a.ino,
                src: src_of(self, None),
            },
            (sysno::WRITE | sysno::PWRITE64, FileKind::Regular) => Role::FileWrite {
                dst: a.ino,
                src: src_of(self, Some(args[1])),
            },
            (sysno::WRITEV, FileKind::Regular) => Role::FileWrite {
                dst: a.ino,
                src: src_of(self, None),
            },
            // Only a shared or read-only mapping shows the page cache itself: a private
            // writable one (a program's .data) is copied on write (KERNEL_PATHS.md §3c).
            (sysno::MMAP, FileKind::Regular)
                if args[3] & MAP_SHARED != 0 || args[2] & PROT_WRITE == 0 =>
            {
                Role::Mmap {
                    ino: a.ino,
                    len: args[1],
                }
            }
            (sysno::MUNMAP, _) => {
                let (addr, len) = (args[0], args[1]);
                let ino = self
                    .file_mappings
                    .get(&pid)?
                    .iter()
                    .find(|m| addr < m.addr + m.len && m.addr < addr.saturating_add(len))?
                    .ino;
                Role::Munmap { ino, addr, len }
            }
            (sysno::SENDFILE, _) if b.kind() == FileKind::Regular => {
                Role::Sendfile { src: b.ino, dst: a }
            }
            (sysno::SPLICE, FileKind::Regular) if b.kind() == FileKind::Pipe => Role::SpliceIn {
                src: a.ino,
                pipe: b.ino,
            },
            (sysno::SPLICE, FileKind::Pipe) if b.kind() == FileKind::Socket => Role::SpliceOut {
                pipe: a.ino,
                sock: b.ino,
            },
            (sysno::COPY_FILE_RANGE, FileKind::Regular) if b.kind() == FileKind::Regular => {
                Role::CopyRange {
                    src: a.ino,
                    dst: b.ino,
                }
            }
            (sysno::IO_URING_ENTER, _) if a.ino != 0 => Role::IoUring { ring: a.ino },
            _ => return None,
        })
    }

    /// The transfer of a TCP send on `sk` by `tid`: from the syscall the thread is in, else
    /// what is known of the socket (io-wq workers and SQPOLL threads send outside any
    /// syscall of theirs; the ring their request came through says which transfer).
    fn transfer_of_send(&mut self, pid: u32, tid: u32, sk: u64) -> Option<TransferId> {
        let ctx = self
            .in_flight
            .get(&tid)
            .map(|sys| (sys.role, (sys.iou_src, sys.iou_sock)));
        if let Some((role, iou)) = ctx
            && let Some(flow) = self.transfer_of_send_call(pid, role, iou)
        {
            return Some(flow);
        }
        if let Some(&flow) = self.transfer_by_sk.get(&(pid, sk)) {
            return Some(flow);
        }
        let ring = *self.ring_by_sk.get(&(pid, sk))?;
        self.transfer_of_ring(pid, ring, None, None)
    }

    /// The transfer a send belongs to, from the syscall it runs in.
    fn transfer_of_send_call(
        &mut self,
        pid: u32,
        role: Role,
        iou: (Option<u64>, Option<u64>),
    ) -> Option<TransferId> {
        match role {
            Role::Send { sock, src } => {
                Some(self.find_or_create(pid, src.endpoint(), Endpoint::Socket { ino: sock }))
            }
            Role::Sendfile { src, dst } => Some(self.find_or_create(
                pid,
                Endpoint::File { ino: src },
                Endpoint::Socket { ino: dst.ino },
            )),
            Role::SpliceOut { pipe, sock } => {
                let src = self
                    .source_file_by_pipe
                    .get(&(pid, pipe))
                    .map_or(Endpoint::User, |&ino| Endpoint::File { ino });
                Some(self.find_or_create(pid, src, Endpoint::Socket { ino: sock }))
            }
            Role::IoUring { ring } => self.transfer_of_ring(pid, ring, iou.0, iou.1),
            _ => None,
        }
    }

    /// The transfer a finished syscall belongs to; `None` while its destination is unknown.
    fn transfer_of_syscall(&mut self, pid: u32, sys: &Syscall) -> Option<TransferId> {
        match sys.role {
            Role::FileRead { src, .. }
            | Role::Mmap { ino: src, .. }
            | Role::Munmap { ino: src, .. }
            | Role::SpliceIn { src, .. } => self.transfer_by_source_file.get(&(pid, src)).copied(),
            Role::SockRecv { sock, .. } => {
                Some(self.find_or_create(pid, Endpoint::Socket { ino: sock }, Endpoint::User))
            }
            Role::ZcReap { sock } => Some(
                self.transfer_by_dest_socket
                    .get(&(pid, sock))
                    .copied()
                    .unwrap_or_else(|| {
                        self.find_or_create(pid, Endpoint::Socket { ino: sock }, Endpoint::User)
                    }),
            ),
            Role::Send { sock, src } => {
                Some(self.find_or_create(pid, src.endpoint(), Endpoint::Socket { ino: sock }))
            }
            Role::FileWrite { dst, src } => {
                Some(self.find_or_create(pid, src.endpoint(), Endpoint::File { ino: dst }))
            }
            Role::Sendfile { src, dst } => {
                let to = if dst.kind() == FileKind::Socket {
                    Endpoint::Socket { ino: dst.ino }
                } else {
                    Endpoint::File { ino: dst.ino }
                };
                Some(self.find_or_create(pid, Endpoint::File { ino: src }, to))
            }
            Role::SpliceOut { .. } => self.transfer_of_send_call(pid, sys.role, (None, None)),
            Role::CopyRange { src, dst } => Some(self.find_or_create(
                pid,
                Endpoint::File { ino: src },
                Endpoint::File { ino: dst },
            )),
            Role::IoUring { ring } => self.transfer_of_ring(pid, ring, sys.iou_src, sys.iou_sock),
        }
    }

    /// The transfer of an io_uring ring: its file READs' source to its SENDs' socket.
    fn transfer_of_ring(
        &mut self,
        pid: u32,
        ring: u64,
        src: Option<u64>,
        sock: Option<u64>,
    ) -> Option<TransferId> {
        if let Some(&f) = self.transfer_by_ring.get(&(pid, ring)) {
            return Some(f);
        }
        let src = src.or_else(|| self.source_file_by_ring.get(&(pid, ring)).copied())?;
        let f = self.find_or_create(
            pid,
            Endpoint::File { ino: src },
            Endpoint::Socket { ino: sock? },
        );
        self.transfer_by_ring.insert((pid, ring), f);
        Some(f)
    }

    fn finish_syscall(&mut self, pid: u32, mut sys: Syscall, out: &mut Vec<Step>) {
        // In time order (a send's copy is stamped with the start of its send loop, so
        // it comes before the transmits the loop made).
        sys.steps.sort_by_key(|s| s.ts_ns);
        match self.transfer_of_syscall(pid, &sys) {
            Some(flow) => {
                let t = &mut self.transfers[flow.0];
                if let Role::ZcReap { .. } = sys.role {
                    t.facts.completion_reaps += 1;
                }
                if let Some(copied) = sys.zc_copied {
                    t.facts.zerocopy_requested += 1;
                    t.facts.zerocopy_ignored += copied as u64;
                }
                if let Some(src) = sys.role.source_file().or(sys.iou_src) {
                    if matches!(t.src, Endpoint::File { ino } if ino == src) {
                        self.attach_source(pid, src, flow, out);
                    }
                } else if let Role::Send {
                    src: Src::ReadFrom(ino),
                    ..
                }
                | Role::FileWrite {
                    src: Src::ReadFrom(ino),
                    ..
                } = sys.role
                {
                    self.attach_source(pid, ino, flow, out);
                } else if let Role::SpliceOut { pipe, .. } = sys.role
                    && let Some(&ino) = self.source_file_by_pipe.get(&(pid, pipe))
                {
                    self.attach_source(pid, ino, flow, out);
                }
                for s in sys.steps {
                    self.emit(s.transfer.unwrap_or(flow), s, out);
                }
            }
            None => {
                // Steps that already know their transfer (a transmit of another transfer
                // in this call) do not wait with the rest.
                let mut rest = Vec::new();
                for s in sys.steps {
                    match s.transfer {
                        Some(flow) => self.emit(flow, s, out),
                        None => rest.push(s),
                    }
                }
                let Some(src) = sys.role.source_file().or(sys.iou_src) else {
                    return;
                };
                self.awaiting_destination
                    .entry((pid, src))
                    .or_default()
                    .extend(rest);
            }
        }
    }

    /// Makes `flow` the current transfer of source file `ino` and hands it the steps that
    /// waited for it.
    fn attach_source(&mut self, pid: u32, ino: u64, flow: TransferId, out: &mut Vec<Step>) {
        self.transfer_by_source_file.insert((pid, ino), flow);
        if let Endpoint::Socket { ino: sock } = self.transfers[flow.0].dst {
            self.transfer_by_dest_socket.insert((pid, sock), flow);
        }
        if let Some(steps) = self.awaiting_destination.remove(&(pid, ino)) {
            for s in steps {
                self.emit(flow, s, out);
            }
        }
    }

    /// Sends a step to the syscall in flight on `tid` when it belongs there, else to the
    /// transfer of `flow` or of source file `ino`, else to the pending steps of `ino`.
    /// Returns the transfer when it was known.
    fn route(
        &mut self,
        pid: u32,
        tid: u32,
        ino: Option<u64>,
        flow: Option<TransferId>,
        s: Step,
        out: &mut Vec<Step>,
    ) {
        if let Some(sys) = self.in_flight.get_mut(&tid) {
            let belongs = match ino {
                Some(ino) => sys.role.source_file() == Some(ino) || sys.iou_src == Some(ino),
                None => flow.is_some(),
            };
            if belongs {
                sys.steps.push(s);
                return;
            }
        }
        let flow =
            flow.or_else(|| ino.and_then(|i| self.transfer_by_source_file.get(&(pid, i)).copied()));
        match (flow, ino) {
            (Some(f), _) => self.emit(f, s, out),
            (None, Some(i)) => self
                .awaiting_destination
                .entry((pid, i))
                .or_default()
                .push(s),
            (None, None) => {}
        }
    }

    /// A step of transfer `flow` seen in whatever task the kernel ran (a transmit, a
    /// loopback delivery): in the owner's own syscall on this thread it joins that call's
    /// steps and keeps its place among them; in any other task it is emitted at once.
    fn place(
        &mut self,
        ev: &Event,
        owner: u32,
        flow: TransferId,
        mut s: Step,
        out: &mut Vec<Step>,
    ) {
        s.transfer = Some(flow);
        match self.in_flight.get_mut(&ev.tid) {
            Some(sys) if ev.pid == owner => sys.steps.push(s),
            _ => self.emit(flow, s, out),
        }
    }

    fn lookup(
        &mut self,
        ev: &Event,
        ino: u64,
        first: u64,
        last: u64,
        probe: LookupProbe,
        out: &mut Vec<Step>,
    ) {
        if ino == 0 || last < first || last - first > (1 << 24) {
            return;
        }
        let added = self.added_at.get(&ino);
        let seen = self.looked_up.entry((ev.pid, ino)).or_default();
        let (mut hit, mut miss) = (0, 0);
        // The tracepoint fires once the pages are up to date; a miss's lookup began when
        // its first page was added (before the disk read), and is stamped so.
        let mut began = ev.ts_ns;
        for page in first..=last {
            if seen.insert(page) {
                match added.and_then(|a| a.get(&page)) {
                    Some(&ts) => {
                        miss += 1;
                        began = began.min(ts);
                    }
                    None => hit += 1,
                }
            }
        }
        if hit + miss == 0 {
            return;
        }
        let mut s = step_of(
            ev,
            StepKind::Lookup {
                hit_pages: hit,
                miss_pages: miss,
            },
            // With the page-cache insertions when they made misses.
            Evidence::Observed(Seen::Lookup {
                probe,
                with_adds: miss > 0,
            }),
        );
        s.ts_ns = began;
        self.route(ev.pid, ev.tid, Some(ino), None, s, out);
    }

    /// Opens the record of a TCP send call on `sk` unless one is open; whether it did.
    fn open_send(&mut self, ev: &Event, sk: u64, msg_flags: u32, zc: u8) -> bool {
        match self.send_calls.entry((ev.pid, sk)) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(SendCall {
                    ts_ns: ev.ts_ns,
                    msg_flags,
                    zc,
                    ..SendCall::default()
                });
                true
            }
            std::collections::hash_map::Entry::Occupied(_) => false,
        }
    }

    /// Bytes a buffered write copied into a file's page cache, seen by `probe`, inside a
    /// copy_file_range, write() to a file, or sendfile to a file.
    fn file_write(&mut self, tid: u32, bytes: u64, probe: Seen) {
        if let Some(sys) = self.in_flight.get_mut(&tid)
            && matches!(
                sys.role,
                Role::CopyRange { .. } | Role::FileWrite { .. } | Role::Sendfile { .. }
            )
        {
            sys.copied += bytes;
            sys.copied_by = Some(probe);
        }
    }

    fn find_or_create(&mut self, pid: u32, src: Endpoint, dst: Endpoint) -> TransferId {
        if let Some(&i) = self.by_ends.get(&(pid, src, dst)) {
            return i;
        }
        let id = TransferId(self.transfers.len());
        self.transfers.push(Transfer {
            id,
            pid,
            src,
            dst,
            ledger: Ledger::default(),
            facts: Facts::default(),
            first_ns: 0,
            last_ns: 0,
        });
        self.by_ends.insert((pid, src, dst), id);
        id
    }

    fn emit(&mut self, flow: TransferId, mut s: Step, out: &mut Vec<Step>) {
        s.transfer = Some(flow);
        let t = &mut self.transfers[flow.0];
        if t.first_ns == 0 || s.ts_ns < t.first_ns {
            t.first_ns = s.ts_ns;
        }
        t.last_ns = t.last_ns.max(s.ts_ns);
        t.ledger.record(&s.kind);
        match &s.kind {
            StepKind::ModeSwitch {
                to: Mode::Kernel,
                syscall,
            } => match t.facts.syscalls.get_mut(syscall) {
                Some(n) => *n += 1,
                None => {
                    t.facts.syscalls.insert(syscall.clone(), 1);
                }
            },
            StepKind::Copy {
                engine: Engine::Dma,
                from: Buffer::Disk,
                ..
            } => t.facts.block_requests += 1,
            _ => {}
        }
        let what = match &s.kind {
            StepKind::Copy { from, to, .. } | StepKind::PageRef { from, to, .. } => {
                Some(format!("{} -> {}", buffer_name(*from), buffer_name(*to)))
            }
            StepKind::Lookup { .. } => Some("page-cache lookup".to_string()),
            _ => None,
        };
        if let Some(what) = what {
            let how = match &s.evidence {
                Evidence::Observed(p) => format!("observed by {p}"),
                Evidence::Inferred(_) => "inferred".to_string(),
            };
            *t.facts
                .evidence
                .entry(format!("{what}: {how}"))
                .or_default() += 1;
        }
        t.ledger.wall_ns = Some(t.last_ns - t.first_ns);
        out.push(s);
    }
}

#[cfg(test)]
mod tests {
    //! Attribution cases the demo's workload does not exercise, as synthetic event
    //! sequences (the recorded runs are in `tests/model.rs`).
    use super::*;
    use crate::event::SockLength;
    use tracer_common::{S_IFREG, S_IFSOCK, kind::tcp_sendmsg_locked as k};

    const PID: u32 = 100;
    const FILE_A: FdRef = FdRef {
        ino: 11,
        mode: S_IFREG,
        not_tcp: false,
        zc: 0,
    };
    const SOCK_X: FdRef = FdRef {
        ino: 21,
        mode: S_IFSOCK,
        not_tcp: false,
        zc: 0,
    };
    const SOCK_Y: FdRef = FdRef {
        ino: 22,
        mode: S_IFSOCK,
        not_tcp: false,
        zc: 0,
    };
    const SK_X: u64 = 0xffff_0000_0000_1000;

    struct Feed {
        model: Model,
        out: Vec<Step>,
        ts: u64,
    }

    impl Feed {
        fn new() -> Feed {
            Feed {
                model: Model::new(),
                out: Vec::new(),
                ts: 1000,
            }
        }
        fn ev(&mut self, tid: u32, payload: Payload) {
            self.ts += 10;
            let ev = Event {
                ts_ns: self.ts,
                cpu: 0,
                pid: PID,
                tid,
                comm: "t".into(),
                payload,
            };
            self.model.push(&ev, &mut self.out);
        }
        fn syscall(
            &mut self,
            tid: u32,
            nr: u32,
            args: [u64; 6],
            fds: [FdRef; 2],
            ret: i64,
            inside: Vec<Payload>,
        ) {
            self.ev(tid, Payload::SyscallEnter { nr, args, fds });
            for p in inside {
                self.ev(tid, p);
            }
            self.ev(tid, Payload::SyscallExit { nr, ret });
        }
        /// write() (nr 1) or send() (44) of `len` bytes at `buf` on socket X, with the
        /// send's MSG flags and zero-copy inputs.
        fn send(&mut self, nr: u32, buf: u64, len: i32, flags: u32, zc: u8) {
            let send_flags = if nr == 44 { flags as u64 } else { 0 };
            self.syscall(
                1,
                nr,
                [5, buf, len as u64, send_flags, 0, 0],
                [SOCK_X, NONE],
                len as i64,
                tcp_send(SK_X, flags, zc, len),
            );
        }
        fn ledger(&self, src: Endpoint, dst: Endpoint) -> Ledger {
            self.model
                .find(PID, src, dst)
                .map(|t| t.ledger.clone())
                .unwrap_or_default()
        }
    }

    fn tcp_send(sk: u64, flags: u32, zc: u8, bytes: i32) -> Vec<Payload> {
        vec![
            Payload::TcpSendmsgLocked {
                sk,
                skb: None,
                iter_type: 0,
                msg_flags: flags,
                msg_left: bytes as u64,
                size_goal: 65483,
                skb_len: 0,
                zc,
            },
            Payload::SockSendLength(SockLength {
                sk,
                ret: bytes,
                flags: 0,
                family: 2,
                protocol: 6,
            }),
        ]
    }

    const NONE: FdRef = FdRef {
        ino: 0,
        mode: 0,
        not_tcp: false,
        zc: 0,
    };
    const BUF: u64 = 0x7000_0000;
    const A: Endpoint = Endpoint::File { ino: 11 };
    const X: Endpoint = Endpoint::Socket { ino: 21 };

    #[test]
    fn a_proxy_forwarding_received_bytes_is_not_charged_to_the_file_read_before() {
        let mut f = Feed::new();
        f.syscall(1, 0, [3, BUF, 4096, 0, 0, 0], [FILE_A, NONE], 4096, vec![]);
        f.send(1, BUF, 4096, 0, 0);
        // recv into the same buffer, then forward it.
        f.syscall(1, 45, [6, BUF, 5000, 0, 0, 0], [SOCK_Y, NONE], 5000, vec![]);
        f.send(1, BUF, 5000, 0, 0);
        let a_x = f.ledger(A, X);
        assert_eq!((a_x.syscalls, a_x.cpu_copy_bytes), (2, 8192), "{a_x:?}");
        let user_x = f.ledger(Endpoint::User, X);
        assert_eq!(
            (user_x.syscalls, user_x.cpu_copy_bytes),
            (1, 5000),
            "{user_x:?}"
        );
    }

    #[test]
    fn an_io_wq_worker_send_belongs_to_the_rings_transfer() {
        let mut f = Feed::new();
        const RING: FdRef = FdRef {
            ino: 31,
            mode: 0o100000,
            not_tcp: false,
            zc: 0,
        };
        let submit = |opcode, file, sk, req| Payload::IoUringSubmit {
            user_data: 0,
            opcode,
            fd: 3,
            flags: 0,
            file,
            sk,
            req,
        };
        // Both requests carry user_data 0: the kernel's request pointer tells them apart.
        f.syscall(
            1,
            426,
            [4, 2, 2, 0, 0, 0],
            [RING, NONE],
            2,
            vec![submit(22, FILE_A, 0, 0xa), submit(26, SOCK_X, SK_X, 0xb)],
        );
        f.ev(
            1,
            Payload::IoUringComplete {
                user_data: 0,
                res: 4096,
                cflags: 0,
                req: 0xa,
            },
        );
        // The worker thread (no syscall of its own) sends.
        for p in tcp_send(SK_X, 0x4040, 0, 4096) {
            f.ev(2, p);
        }
        let l = f.ledger(A, X);
        assert_eq!((l.cpu_copies, l.cpu_copy_bytes), (2, 8192), "{l:?}");
        assert_eq!(l.syscalls, 1);
    }

    #[test]
    fn zerocopy_is_decided_by_the_kernels_inputs_not_by_when_skbs_leave() {
        let mut f = Feed::new();
        let known = (k::ZC_KNOWN | k::ZC_SG) as u8;
        f.syscall(1, 0, [3, BUF, 4096, 0, 0, 0], [FILE_A, NONE], 4096, vec![]);
        // MSG_ZEROCOPY on a socket without SO_ZEROCOPY: a copy.
        f.send(44, BUF, 4096, 0x4000000, known);
        // With SO_ZEROCOPY: pinned, though no skb went out during the call.
        f.send(44, BUF, 4096, 0x4000000, known | k::ZC_SOCK as u8);
        let l = f.ledger(A, X);
        assert_eq!((l.cpu_copies, l.page_refs), (2, 1), "{l:?}");
        let t = f.model.find(PID, A, X).unwrap();
        assert_eq!(t.facts.zerocopy_ignored, 1);
    }

    #[test]
    fn only_shared_or_read_only_mappings_are_page_cache_sources() {
        let mut f = Feed::new();
        let map = 0x5000_0000u64;
        // A private writable mapping (a program's .data): a write from it is a user copy.
        f.syscall(
            1,
            9,
            [0, 8192, 0x3, 0x2, 3, 0],
            [FILE_A, NONE],
            map as i64,
            vec![],
        );
        f.send(1, map, 4096, 0, 0);
        assert_eq!(f.ledger(Endpoint::User, X).cpu_copy_bytes, 4096);
        // A shared one: the copy reads the page cache. munmap of its first page leaves
        // the second mapped.
        let shared = 0x6000_0000u64;
        f.syscall(
            1,
            9,
            [0, 8192, 0x1, 0x1, 3, 0],
            [FILE_A, NONE],
            shared as i64,
            vec![],
        );
        f.syscall(1, 11, [shared, 4096, 0, 0, 0, 0], [NONE, NONE], 0, vec![]);
        f.send(1, shared + 4096, 4096, 0, 0);
        let l = f.ledger(A, X);
        assert_eq!(
            (l.cpu_copies, l.syscalls),
            (1, 3),
            "mmap, munmap, write: {l:?}"
        );
        assert!(f.out.iter().any(|s| matches!(
            s.kind,
            StepKind::Copy {
                from: Buffer::PageCache,
                to: Buffer::Socket,
                ..
            }
        )));
        // Unmapped: a write from the first page is not the file's any more.
        f.send(1, shared, 100, 0, 0);
        assert_eq!(f.ledger(Endpoint::User, X).cpu_copy_bytes, 4196);
    }

    #[test]
    fn a_transmit_in_another_threads_syscall_keeps_its_own_transfer() {
        let mut f = Feed::new();
        f.syscall(1, 0, [3, BUF, 4096, 0, 0, 0], [FILE_A, NONE], 4096, vec![]);
        f.send(1, BUF, 4096, 0, 0);
        // The receiver thread's read of another socket pushes the sender's queued data.
        let xmit = Payload::NetDevStartXmit {
            skb: 0x1,
            sk: SK_X,
            len: 4162,
            data_len: 4096,
            shinfo_flags: 0,
            nr_frags: 1,
            ifindex: 1,
            dev_flags: 0x8,
            dev: "lo".into(),
            owner_pid: PID,
        };
        f.syscall(
            2,
            0,
            [7, BUF + 0x10000, 65536, 0, 0, 0],
            [SOCK_Y, NONE],
            4096,
            vec![xmit],
        );
        let t = f.model.find(PID, A, X).unwrap();
        assert_eq!(t.facts.loopback_xmits, 1);
        let rx = f
            .model
            .find(PID, Endpoint::Socket { ino: 22 }, Endpoint::User)
            .unwrap();
        assert_eq!(rx.facts.loopback_xmits, 0);
    }

    #[test]
    fn without_send_tracepoints_the_syscall_says_how_many_bytes_and_the_method_how() {
        // Debian's 6.1: no tcp_sendmsg_locked, no sock_send_length tracepoint.
        let mut f = Feed::new();
        f.syscall(1, 0, [3, BUF, 4096, 0, 0, 0], [FILE_A, NONE], 4096, vec![]);
        f.syscall(1, 1, [5, BUF, 4096, 0, 0, 0], [SOCK_X, NONE], 4096, vec![]);
        let l = f.ledger(A, X);
        assert_eq!((l.cpu_copies, l.cpu_copy_bytes), (2, 8192), "{l:?}");
        assert!(
            f.out
                .iter()
                .any(|s| matches!(s.evidence, Evidence::Inferred(Inference::SendReturned)))
        );
        // sendfile: page references, out_fd first and in_fd second.
        f.syscall(1, 40, [5, 3, 0, 4096, 0, 0], [SOCK_X, FILE_A], 4096, vec![]);
        let l = f.ledger(A, X);
        assert_eq!(
            (l.page_refs, l.page_ref_bytes, l.cpu_copies),
            (1, 4096, 2),
            "{l:?}"
        );
        // With the tracepoints, nothing is inferred twice.
        f.send(1, BUF + 0x10_0000, 100, 0, 0);
        assert_eq!(f.ledger(Endpoint::User, X).cpu_copies, 1);
    }

    #[test]
    fn without_send_hooks_msg_zerocopy_is_decided_by_the_sockets_inputs_at_entry() {
        let flags = event::MSG_ZEROCOPY as u64;
        let zc_sock = FdRef {
            zc: (k::ZC_KNOWN | k::ZC_SOCK | k::ZC_SG) as u8,
            ..SOCK_X
        };
        // SO_ZEROCOPY off: the kernel copies, and the difference is explained.
        let no_so_zerocopy = FdRef {
            zc: (k::ZC_KNOWN | k::ZC_SG) as u8,
            ..SOCK_X
        };
        let mut f = Feed::new();
        // (socket, CPU copies, page references, zero-copy sends ignored) after each send.
        for (sock, copies, refs, ignored) in [(no_so_zerocopy, 2, 0, 1), (zc_sock, 3, 1, 1)] {
            f.syscall(1, 0, [3, BUF, 4096, 0, 0, 0], [FILE_A, NONE], 4096, vec![]);
            f.syscall(
                1,
                44,
                [5, BUF, 4096, flags, 0, 0],
                [sock, NONE],
                4096,
                vec![],
            );
            let t = f.model.find(PID, A, X).unwrap();
            assert_eq!((t.ledger.cpu_copies, t.ledger.page_refs), (copies, refs));
            assert_eq!(t.facts.zerocopy_ignored, ignored);
        }
        let t = f.model.find(PID, A, X).unwrap();
        assert_eq!(
            (t.ledger.page_ref_bytes, t.facts.zerocopy_requested),
            (4096, 2)
        );
    }

    #[test]
    fn fexit_tcp_sendmsg_locked_tells_a_send_once() {
        // A kernel with fentry and the send tracepoints: fexit comes before
        // sock_send_length, which is then redundant.
        let mut f = Feed::new();
        f.syscall(1, 0, [3, BUF, 4096, 0, 0, 0], [FILE_A, NONE], 4096, vec![]);
        let mut inside = tcp_send(SK_X, 0, 0, 4096);
        inside.insert(
            1,
            Payload::TcpSendmsgExit {
                sk: SK_X,
                ret: 4096,
                msg_flags: 0,
                iter_type: 0,
                zc: 0,
            },
        );
        f.syscall(1, 1, [5, BUF, 4096, 0, 0, 0], [SOCK_X, NONE], 4096, inside);
        let l = f.ledger(A, X);
        assert_eq!((l.cpu_copies, l.cpu_copy_bytes), (2, 8192), "{l:?}");
        assert!(f.out.iter().any(|s| matches!(
            s.evidence,
            Evidence::Observed(Seen::TcpSendmsg { fexit: true, .. })
        )));
    }

    /// The steps `f` produced that `probe` observed.
    fn observed_by(f: &Feed, probe: Seen) -> Vec<&StepKind> {
        f.out
            .iter()
            .filter(|s| s.evidence == Evidence::Observed(probe))
            .map(|s| &s.kind)
            .collect()
    }

    #[test]
    fn before_6_5_a_splice_read_is_observed_as_page_references_by_fexit_filemap_read() {
        let pipe = FdRef {
            ino: 31,
            mode: tracer_common::S_IFIFO,
            not_tcp: false,
            zc: 0,
        };
        let mut f = Feed::new();
        // splice(file, NULL, pipe, NULL, 64 KiB, 0): filemap_read into the pipe iterator.
        f.syscall(
            1,
            275,
            [3, 0, 4, 0, 65536, 0],
            [FILE_A, pipe],
            65536,
            vec![Payload::FilemapRead {
                ino: 11,
                bytes: 65536,
                already: 0,
                pipe: true,
            }],
        );
        // Its steps join a transfer once the pipe's pages go out: splice(pipe, sock).
        f.syscall(
            1,
            275,
            [4, 0, 5, 0, 65536, 0],
            [pipe, SOCK_X],
            65536,
            tcp_send(SK_X, event::MSG_SPLICE_PAGES, 0, 65536),
        );
        let seen = observed_by(&f, Seen::FexitFilemapReadIntoPipe);
        assert!(
            matches!(
                seen.as_slice(),
                [StepKind::PageRef {
                    from: Buffer::PageCache,
                    to: Buffer::Pipe,
                    bytes: 65536,
                    pinned: false
                }]
            ),
            "{seen:?}"
        );
        // The same event during read() is not a copy into the reader's buffer.
        let mut g = Feed::new();
        g.syscall(
            1,
            0,
            [3, BUF, 4096, 0, 0, 0],
            [FILE_A, NONE],
            4096,
            vec![Payload::FilemapRead {
                ino: 11,
                bytes: 4096,
                already: 0,
                pipe: true,
            }],
        );
        assert!(observed_by(&g, Seen::FexitFilemapRead).is_empty());
    }

    #[test]
    fn fexit_skb_zerocopy_iter_stream_observes_the_pins() {
        let zc = (k::ZC_KNOWN | k::ZC_SOCK | k::ZC_SG) as u8;
        let flags = event::MSG_ZEROCOPY;
        let mut f = Feed::new();
        // 6.1: fexit tcp_sendmsg_locked only. Two sends: every byte pinned in pieces
        // (observed), and one whose pin events were partly lost (still pinned: the kernel
        // decides once per call; inferred, never a copy).
        for pinned in [[32768, 32768], [61440, 0]] {
            f.syscall(
                1,
                0,
                [3, BUF, 65536, 0, 0, 0],
                [FILE_A, NONE],
                65536,
                vec![],
            );
            let mut inside: Vec<Payload> = pinned
                .iter()
                .filter(|b| **b > 0)
                .map(|b| Payload::ZerocopyPinned {
                    sk: SK_X,
                    bytes: *b,
                })
                .collect();
            inside.push(Payload::TcpSendmsgExit {
                sk: SK_X,
                ret: 65536,
                msg_flags: flags,
                iter_type: 0,
                zc,
            });
            f.syscall(
                1,
                44,
                [5, BUF, 65536, flags as u64, 0, 0],
                [SOCK_X, NONE],
                65536,
                inside,
            );
        }
        let pins = observed_by(&f, Seen::FexitSkbZerocopyIterStream);
        assert!(
            matches!(
                pins.as_slice(),
                [StepKind::PageRef {
                    from: Buffer::User,
                    to: Buffer::Socket,
                    bytes: 65536,
                    pinned: true
                }]
            ),
            "{pins:?}"
        );
        assert!(
            f.out
                .iter()
                .any(|s| matches!(s.evidence, Evidence::Inferred(Inference::PinsPartlySeen)))
        );
        let t = f.model.find(PID, A, X).unwrap();
        // Only read()'s copies; both sends pinned.
        assert_eq!(
            (t.ledger.cpu_copies, t.ledger.cpu_copy_bytes),
            (2, 2 * 65536),
            "{:?}",
            t.ledger
        );
        assert_eq!(
            (t.ledger.page_refs, t.ledger.page_ref_bytes),
            (2, 2 * 65536)
        );
        assert_eq!(t.facts.zerocopy_ignored, 0);
    }

    #[test]
    fn the_fentry_tier_names_its_probes_for_lookups_writes_and_receives() {
        let dst = FdRef {
            ino: 12,
            mode: S_IFREG,
            not_tcp: false,
            zc: 0,
        };
        let mut f = Feed::new();
        // copy_file_range(A, NULL, B, NULL, 8 KiB, 0), seen by fexit filemap_get_pages and
        // fexit generic_perform_write.
        f.syscall(
            1,
            326,
            [3, 0, 4, 0, 8192, 0],
            [FILE_A, dst],
            8192,
            vec![
                Payload::FilemapGetPages {
                    ino: 11,
                    dev: 0,
                    index: 0,
                    last_index: 1,
                    fexit: true,
                },
                Payload::PerformWrite {
                    ino: 12,
                    bytes: 8192,
                },
            ],
        );
        assert!(matches!(
            observed_by(
                &f,
                Seen::Lookup {
                    probe: LookupProbe::FexitFilemapGetPages,
                    with_adds: false
                }
            )
            .as_slice(),
            [StepKind::Lookup {
                hit_pages: 2,
                miss_pages: 0
            }]
        ));
        assert!(matches!(
            observed_by(&f, Seen::FexitGenericPerformWrite).as_slice(),
            [StepKind::Copy {
                engine: Engine::Cpu,
                from: Buffer::PageCache,
                to: Buffer::PageCache,
                bytes: 8192
            }]
        ));
        // recvfrom() whose copy fexit skb_copy_datagram_iter saw.
        f.syscall(
            2,
            45,
            [5, BUF, 4096, 0, 0, 0],
            [SOCK_Y, NONE],
            4096,
            vec![Payload::SkbCopyDatagramIovec {
                skb: 1,
                len: 4096,
                fexit: true,
            }],
        );
        assert!(matches!(
            observed_by(&f, Seen::FexitSkbCopyDatagramIter).as_slice(),
            [StepKind::Copy {
                from: Buffer::Socket,
                to: Buffer::User,
                bytes: 4096,
                ..
            }]
        ));
    }
}
