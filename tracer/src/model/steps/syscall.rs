//! Syscalls in flight: what each one does on the data path (its role, from the fd kinds
//! `sys_enter` read), the bytes the probes saw inside it, and at its exit the steps it
//! made, assigned to a transfer.

use std::collections::HashMap;

use super::{
    Endpoint, Ino, Model, Pid, Sk, Tid, TransferId, Waiting,
    mapping::{Sources, Src},
    send, step_of,
};
use crate::{
    event::{Event, FdRef, FileKind},
    model::{Buffer, Engine, Evidence, Inference, Mode, Seen, Step, StepKind},
    syscalls,
};

/// The syscalls the model gives a role, by the numbers `sys_enter` reports: the kernel
/// side's own constants (`tracer_common::sysno`), as wide as `Payload` carries them.
pub(super) mod sysno {
    use tracer_common::sysno as nr;

    pub(crate) const READ: u32 = nr::READ as u32;
    pub(crate) const PREAD64: u32 = nr::PREAD64 as u32;
    pub(crate) const READV: u32 = nr::READV as u32;
    pub(crate) const PREADV: u32 = nr::PREADV as u32;
    pub(crate) const RECVFROM: u32 = nr::RECVFROM as u32;
    pub(crate) const RECVMSG: u32 = nr::RECVMSG as u32;
    pub(crate) const WRITE: u32 = nr::WRITE as u32;
    pub(crate) const PWRITE64: u32 = nr::PWRITE64 as u32;
    pub(crate) const SENDTO: u32 = nr::SENDTO as u32;
    pub(crate) const WRITEV: u32 = nr::WRITEV as u32;
    pub(crate) const PWRITEV: u32 = nr::PWRITEV as u32;
    pub(crate) const SENDMSG: u32 = nr::SENDMSG as u32;
    pub(crate) const MMAP: u32 = nr::MMAP as u32;
    pub(crate) const MUNMAP: u32 = nr::MUNMAP as u32;
    pub(crate) const SENDFILE: u32 = nr::SENDFILE as u32;
    pub(crate) const SPLICE: u32 = nr::SPLICE as u32;
    pub(crate) const COPY_FILE_RANGE: u32 = nr::COPY_FILE_RANGE as u32;
    pub(crate) const IO_URING_ENTER: u32 = nr::IO_URING_ENTER as u32;
}

const MSG_ERRQUEUE: u64 = libc::MSG_ERRQUEUE as u64;
const MAP_SHARED: u64 = libc::MAP_SHARED as u64;
const PROT_WRITE: u64 = libc::PROT_WRITE as u64;

/// The bytes of a copy made inside a syscall: what `probe` saw, else (probe missing, or
/// a path it does not cover) the syscall's return value, inferred.
pub(super) fn seen_or_returned(
    seen: u64,
    returned: u64,
    probe: Seen,
    why: Inference,
) -> (u64, Evidence) {
    if seen > 0 {
        (seen, Evidence::Observed(probe))
    } else {
        (returned, Evidence::Inferred(why))
    }
}

/// What a syscall does on the data path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    FileRead { src: Ino, buf: Option<u64> },
    SockRecv { sock: Ino, buf: Option<u64> },
    ZcReap { sock: Ino },
    Send { sock: Ino, src: Src },
    FileWrite { dst: Ino, src: Src },
    Mmap { ino: Ino, len: u64 },
    Munmap { ino: Ino, addr: u64, len: u64 },
    Sendfile { src: Ino, dst: FdRef },
    SpliceIn { src: Ino, pipe: Ino },
    SpliceOut { pipe: Ino, sock: Ino },
    CopyRange { src: Ino, dst: Ino },
    IoUring { ring: Ino },
}

impl Role {
    /// The role of syscall `nr` of thread `tid`, from its arguments and the kinds of its
    /// fds; `None` for a syscall off the data path.
    fn of(
        sources: &Sources,
        pid: Pid,
        tid: Tid,
        nr: u32,
        args: &[u64; 6],
        fds: &[FdRef; 2],
    ) -> Option<Self> {
        let (a, b) = (fds[0], fds[1]);
        let src_of = |buf: Option<u64>| sources.of_buffer(pid, tid, buf);
        Some(match (nr, a.kind()) {
            (sysno::READ | sysno::PREAD64, FileKind::Regular) => Self::FileRead {
                src: a.ino,
                buf: Some(args[1]),
            },
            (sysno::READV | sysno::PREADV, FileKind::Regular) => Self::FileRead {
                src: a.ino,
                buf: None,
            },
            (sysno::READ | sysno::PREAD64 | sysno::RECVFROM, FileKind::Socket) => Self::SockRecv {
                sock: a.ino,
                buf: Some(args[1]),
            },
            (sysno::READV, FileKind::Socket) => Self::SockRecv {
                sock: a.ino,
                buf: None,
            },
            (sysno::RECVMSG, FileKind::Socket) if args[2] & MSG_ERRQUEUE != 0 => {
                Self::ZcReap { sock: a.ino }
            }
            (sysno::RECVMSG, FileKind::Socket) => Self::SockRecv {
                sock: a.ino,
                buf: None,
            },
            (sysno::WRITE | sysno::PWRITE64 | sysno::SENDTO, FileKind::Socket) => Self::Send {
                sock: a.ino,
                src: src_of(Some(args[1])),
            },
            // A vectored send names no buffer: it sends the thread's last read only on a
            // TCP socket (a server's response); on another socket it is a message of the
            // program's own (nginx's master tells its workers to reload on a socketpair
            // after reading its configuration).
            (sysno::WRITEV | sysno::SENDMSG, FileKind::Socket) => Self::Send {
                sock: a.ino,
                src: if a.not_tcp {
                    Src::Unknown
                } else {
                    src_of(None)
                },
            },
            (sysno::WRITE | sysno::PWRITE64, FileKind::Regular) => Self::FileWrite {
                dst: a.ino,
                src: src_of(Some(args[1])),
            },
            (sysno::WRITEV | sysno::PWRITEV, FileKind::Regular) => Self::FileWrite {
                dst: a.ino,
                src: src_of(None),
            },
            // Only a shared or read-only mapping shows the page cache itself: a private
            // writable one (a program's .data) is copied on write (KERNEL_PATHS.md §3c).
            (sysno::MMAP, FileKind::Regular)
                if args[3] & MAP_SHARED != 0 || args[2] & PROT_WRITE == 0 =>
            {
                Self::Mmap {
                    ino: a.ino,
                    len: args[1],
                }
            }
            (sysno::MUNMAP, _) => {
                let (addr, len) = (args[0], args[1]);
                let ino = sources.mapped_file(pid, addr, len)?;
                Self::Munmap { ino, addr, len }
            }
            (sysno::SENDFILE, _) if b.kind() == FileKind::Regular => {
                Self::Sendfile { src: b.ino, dst: a }
            }
            (sysno::SPLICE, FileKind::Regular) if b.kind() == FileKind::Pipe => Self::SpliceIn {
                src: a.ino,
                pipe: b.ino,
            },
            (sysno::SPLICE, FileKind::Pipe) if b.kind() == FileKind::Socket => Self::SpliceOut {
                pipe: a.ino,
                sock: b.ino,
            },
            (sysno::COPY_FILE_RANGE, FileKind::Regular) if b.kind() == FileKind::Regular => {
                Self::CopyRange {
                    src: a.ino,
                    dst: b.ino,
                }
            }
            (sysno::IO_URING_ENTER, _) if a.ino != 0 => Self::IoUring { ring: a.ino },
            _ => return None,
        })
    }

    /// The source file whose page-cache events happen inside this syscall.
    pub(super) fn source_file(self) -> Option<Ino> {
        match self {
            Self::FileRead { src, .. }
            | Self::Sendfile { src, .. }
            | Self::SpliceIn { src, .. }
            | Self::CopyRange { src, .. } => Some(src),
            Self::Mmap { ino, .. } | Self::Munmap { ino, .. } => Some(ino),
            Self::Send {
                src: Src::Mapped(ino),
                ..
            }
            | Self::FileWrite {
                src: Src::Mapped(ino),
                ..
            } => Some(ino),
            _ => None,
        }
    }
}

/// A syscall in flight on one thread.
pub(super) struct Syscall {
    nr: u32,
    pub(super) role: Role,
    /// Steps so far; those without a transfer get the syscall's at its exit.
    pub(super) steps: Vec<Step>,
    /// Bytes the probes saw copied inside (skb -> user, or into a file's page cache), and
    /// which probe saw them.
    copied: u64,
    copied_by: Option<Seen>,
    /// Bytes fexit skb_zerocopy_iter_stream saw pinned in this call, and on which socket.
    pub(super) pinned: u64,
    pub(super) pinned_sk: Option<Sk>,
    /// The ring's source file and socket learned from this call's submissions.
    pub(super) iou_src: Option<Ino>,
    pub(super) iou_sock: Option<Ino>,
    /// A send of this call was seen by the send tracepoints (else, on kernels without
    /// them, the send is inferred from the return value).
    pub(super) sent: bool,
    /// MSG_ZEROCOPY was asked for (sendto's or sendmsg's flags).
    pub(super) zerocopy: bool,
    /// The socket's zero-copy inputs at the call's entry (`kind::tcp_sendmsg_locked::ZC*`;
    /// 0 when not read).
    pub(super) send_zc: u8,
    /// A MSG_ZEROCOPY send decided at the syscall's return (no send hook): whether the
    /// kernel copied (some of) it instead of pinning.
    pub(super) zc_copied: Option<bool>,
    /// The socket a send goes to is TCP (the send inference is for TCP only).
    pub(super) tcp: bool,
    /// Bytes kretprobe do_tcp_sendpages saw referenced into the socket in this call.
    pub(super) referenced: u64,
    /// The return value, once the call exited.
    ret: i64,
    /// The bytes of each disk read into pages of no file (O_DIRECT) inside a read() of a
    /// file.
    direct: Vec<u64>,
}

impl Syscall {
    /// Syscall `nr` entered with these arguments and fds; `entry` is its mode switch.
    fn new(nr: u32, role: Role, entry: Step, args: &[u64; 6], fds: &[FdRef; 2]) -> Self {
        Self {
            nr,
            role,
            steps: vec![entry],
            copied: 0,
            copied_by: None,
            pinned: 0,
            pinned_sk: None,
            iou_src: None,
            iou_sock: None,
            sent: false,
            referenced: 0,
            ret: 0,
            direct: Vec::new(),
            tcp: match role {
                Role::SpliceOut { .. } => !fds[1].not_tcp,
                _ => !fds[0].not_tcp,
            },
            send_zc: fds[0].zc,
            zc_copied: None,
            zerocopy: tracer_common::send_flags_arg(nr as u64)
                .is_some_and(|i| args[i] & tracer_common::MSG_ZEROCOPY != 0),
        }
    }
}

impl Syscall {
    /// A disk read of `bytes` into pages of no file was issued in this call: in a read()
    /// of a file, an O_DIRECT read into the application's buffer.
    pub(super) fn direct_read(&mut self, bytes: u64) {
        if let Role::FileRead { .. } = self.role {
            self.direct.push(bytes);
        }
    }
}

/// The syscalls in flight, by thread.
#[derive(Default)]
pub(super) struct Syscalls {
    /// tid -> the syscall in flight on that thread.
    in_flight: HashMap<Tid, Syscall>,
}

impl Syscalls {
    pub(super) fn get(&self, tid: Tid) -> Option<&Syscall> {
        self.in_flight.get(&tid)
    }

    pub(super) fn get_mut(&mut self, tid: Tid) -> Option<&mut Syscall> {
        self.in_flight.get_mut(&tid)
    }

    /// The role of the syscall in flight on `tid`.
    pub(super) fn role(&self, tid: Tid) -> Option<Role> {
        self.in_flight.get(&tid).map(|sys| sys.role)
    }

    /// The syscalls that never exited (the trace ended inside them).
    pub(super) fn drain(&mut self) -> impl Iterator<Item = Syscall> + '_ {
        self.in_flight.drain().map(|(_, sys)| sys)
    }

    /// Bytes kretprobe do_tcp_sendpages saw referenced, in sendfile or splice into a
    /// socket.
    pub(super) fn sendpages(&mut self, tid: Tid, bytes: u64) {
        if let Some(sys) = self.in_flight.get_mut(&tid)
            && matches!(sys.role, Role::Sendfile { .. } | Role::SpliceOut { .. })
        {
            sys.referenced += bytes;
        }
    }

    /// Bytes a receive copied out of an skb (the `skb_copy_datagram_iovec` tracepoint, or
    /// fexit `skb_copy_datagram_iter`).
    pub(super) fn received(&mut self, tid: Tid, len: i32, fexit: bool) {
        if let Some(sys) = self.in_flight.get_mut(&tid)
            && let Role::SockRecv { .. } = sys.role
            && len > 0
        {
            sys.copied += len as u64;
            sys.copied_by = Some(if fexit {
                Seen::FexitSkbCopyDatagramIter
            } else {
                Seen::SkbCopyDatagramIovec
            });
        }
    }

    /// Bytes a buffered write copied into a file's page cache, seen by `probe`, inside a
    /// copy_file_range, write() to a file, or sendfile to a file.
    pub(super) fn file_write(&mut self, tid: Tid, bytes: u64, probe: Seen) {
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
}

impl Model {
    /// `sys_enter`: a data-path syscall starts its record with its mode switch.
    pub(super) fn syscall_enter(&mut self, ev: &Event, nr: u32, args: &[u64; 6], fds: &[FdRef; 2]) {
        let Some(role) = Role::of(&self.sources, ev.pid, ev.tid, nr, args, fds) else {
            return;
        };
        if let Role::SockRecv { .. }
        | Role::Mmap { .. }
        | Role::Munmap { .. }
        | Role::Sendfile { .. }
        | Role::SpliceIn { .. }
        | Role::SpliceOut { .. }
        | Role::CopyRange { .. } = role
        {
            self.sources.other_call(ev.tid);
        }
        let entry = step_of(
            ev,
            StepKind::ModeSwitch {
                to: Mode::Kernel,
                syscall: syscalls::name(nr).into_owned(),
            },
            Evidence::Observed(Seen::SysEnter),
        );
        // The application's own bytes sent on a TCP socket wait for the file sent next
        // on it (see `own`).
        if let Role::Send {
            sock,
            src: Src::Unknown,
        } = role
            && !fds[0].not_tcp
        {
            self.own_send_started(ev.pid, sock);
        }
        self.syscalls
            .in_flight
            .insert(ev.tid, Syscall::new(nr, role, entry, args, fds));
    }

    /// `sys_exit`: the syscall's steps inside (what the probes saw, else what its return
    /// value says) and its return, assigned to its transfer.
    pub(super) fn syscall_exit(&mut self, ev: &Event, nr: u32, ret: i64, out: &mut Vec<Step>) {
        let Some(mut sys) = self.syscalls.in_flight.remove(&ev.tid) else {
            return;
        };
        if sys.nr != nr {
            return;
        }
        // Pins no send hook took (a kernel without them): this call is over.
        if let Some(sk) = sys.pinned_sk {
            self.sends.call_over(ev.pid, sk);
        }
        let bytes = if ret > 0 { ret as u64 } else { 0 };
        sys.ret = ret;
        self.copy_at_exit(ev, &mut sys, ret, bytes);
        if let Some((kind, evidence)) = send::inferred_at_exit(&mut sys, bytes) {
            sys.steps.push(step_of(ev, kind, evidence));
        }
        sys.steps.push(step_of(
            ev,
            StepKind::ModeSwitch {
                to: Mode::User,
                syscall: syscalls::name(nr).into_owned(),
            },
            Evidence::Observed(Seen::SysExit),
        ));
        self.finish_syscall(ev.pid, sys, out);
    }

    /// At a syscall's exit, the copy or page references it made (a send's are
    /// `send::inferred_at_exit`'s), and what it changed of where buffers' bytes come from.
    fn copy_at_exit(&mut self, ev: &Event, sys: &mut Syscall, ret: i64, bytes: u64) {
        let file_to_file = match sys.role {
            Role::CopyRange { .. } => true,
            Role::Sendfile { dst, .. } => dst.kind() != FileKind::Socket,
            _ => false,
        };
        let mut inner = |kind, evidence| sys.steps.push(step_of(ev, kind, evidence));
        match sys.role {
            // O_DIRECT: the disk's DMA wrote the caller's buffer, one copy per request;
            // the page cache was not used.
            Role::FileRead { src, buf }
                if bytes > 0 && !sys.direct.is_empty() && sys.copied == 0 =>
            {
                for &b in &sys.direct {
                    inner(
                        StepKind::Copy {
                            engine: Engine::Dma,
                            from: Buffer::Disk,
                            to: Buffer::User,
                            bytes: b,
                        },
                        Evidence::Observed(Seen::BlockRqIssue),
                    );
                }
                self.sources
                    .filled(ev.tid, buf.unwrap_or(0), buf.map_or(0, |_| bytes), src);
                self.read_into_memory(ev.pid, src, bytes);
            }
            Role::FileRead { src, buf } if bytes > 0 => {
                // fexit filemap_read saw the copy where the kernel allows fentry; else the
                // return value says it (there is no tracepoint at it).
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
                // readv()/preadv() name no single buffer: a vectored send after them
                // sends the thread's last read (`Sources::of_buffer`).
                self.sources
                    .filled(ev.tid, buf.unwrap_or(0), buf.map_or(0, |_| bytes), src);
                self.read_into_memory(ev.pid, src, bytes);
            }
            Role::SockRecv { buf, .. } if sys.copied > 0 || bytes > 0 => {
                // The buffer now holds received bytes, not a file's.
                if let Some(addr) = buf {
                    self.sources.received(ev.tid, addr, bytes);
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
                self.sources.spliced(ev.pid, pipe, src);
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
                self.sources.mapped(ev.pid, ev.tid, ret as u64, len, ino)
            }
            Role::Munmap { addr, len, .. } if ret == 0 => self.sources.unmapped(ev.pid, addr, len),
            _ => {}
        }
    }

    /// The transfer a finished syscall belongs to; `None` while its destination is unknown.
    fn transfer_of_syscall(&mut self, pid: Pid, sys: &Syscall) -> Option<TransferId> {
        let transfers = &mut self.transfers;
        match sys.role {
            Role::FileRead { src, .. }
            | Role::Mmap { ino: src, .. }
            | Role::Munmap { ino: src, .. }
            | Role::SpliceIn { src, .. } => self.transfer_by_source_file.get(&(pid, src)).copied(),
            Role::SockRecv { sock, .. } => {
                Some(transfers.find_or_create(pid, Endpoint::Socket { ino: sock }, Endpoint::User))
            }
            Role::ZcReap { sock } => Some(
                self.transfer_by_dest_socket
                    .get(&(pid, sock))
                    .copied()
                    .unwrap_or_else(|| {
                        transfers.find_or_create(
                            pid,
                            Endpoint::Socket { ino: sock },
                            Endpoint::User,
                        )
                    }),
            ),
            Role::Send { sock, src } => {
                Some(transfers.find_or_create(pid, src.endpoint(), Endpoint::Socket { ino: sock }))
            }
            Role::FileWrite { dst, src } => {
                Some(transfers.find_or_create(pid, src.endpoint(), Endpoint::File { ino: dst }))
            }
            Role::Sendfile { src, dst } => {
                let to = if dst.kind() == FileKind::Socket {
                    Endpoint::Socket { ino: dst.ino }
                } else {
                    Endpoint::File { ino: dst.ino }
                };
                Some(transfers.find_or_create(pid, Endpoint::File { ino: src }, to))
            }
            Role::SpliceOut { .. } => self.transfer_of_send_call(pid, sys.role, (None, None)),
            Role::CopyRange { src, dst } => Some(transfers.find_or_create(
                pid,
                Endpoint::File { ino: src },
                Endpoint::File { ino: dst },
            )),
            Role::IoUring { ring } => self.transfer_of_ring(pid, ring, sys.iou_src, sys.iou_sock),
        }
    }

    /// Emits a finished syscall's steps to its transfer, with the steps of its source file
    /// that waited for it; while its destination is unknown, they wait with them.
    fn finish_syscall(&mut self, pid: Pid, mut sys: Syscall, out: &mut Vec<Step>) {
        // In time order (a send's copy is stamped with the start of its send loop, so
        // it comes before the transmits the loop made).
        sys.steps.sort_by_key(|s| s.ts_ns);
        let Some(id) = self.transfer_of_syscall(pid, &sys) else {
            // Steps that already know their transfer (a transmit of another transfer in
            // this call) do not wait with the rest.
            let mut rest = Vec::new();
            for s in sys.steps {
                match s.transfer {
                    Some(id) => self.emit(id, s, out),
                    None => rest.push(s),
                }
            }
            let Some(src) = sys.role.source_file().or(sys.iou_src) else {
                return;
            };
            let into_user = matches!(sys.role, Role::FileRead { .. });
            self.awaiting_destination
                .entry((pid, src))
                .or_default()
                .extend(rest.into_iter().map(|step| Waiting { step, into_user }));
            return;
        };
        if let Role::SockRecv { sock, .. } = sys.role {
            // A receive before any file went out: what the application sent on this
            // socket since was its own (see `own`).
            self.release_own(pid, sock, out);
        }
        // A file into a socket takes the application's own bytes sent on it before.
        self.claim_own(id, out);
        let t = &mut self.transfers[id];
        match sys.role {
            Role::ZcReap { .. } | Role::Mmap { .. } | Role::Munmap { .. } => {}
            // At the end of the file: the call that tells the program to stop.
            Role::FileRead { .. }
            | Role::Sendfile { .. }
            | Role::SpliceIn { .. }
            | Role::CopyRange { .. }
                if sys.ret == 0 =>
            {
                t.facts.eof_calls += 1
            }
            _ if sys.ret < 0 => t.facts.failed_calls += 1,
            _ => {}
        }
        if let Role::ZcReap { .. } = sys.role {
            t.facts.completion_reaps += 1;
        }
        if let Some(copied) = sys.zc_copied {
            t.facts.zerocopy_requested += 1;
            t.facts.zerocopy_ignored += copied as u64;
        }
        if let Some(src) = sys.role.source_file().or(sys.iou_src) {
            // sendfile, splice, copy_file_range and mappings read the file in the kernel:
            // an earlier read() of it into the application's memory is not on their path.
            if matches!(t.src, Endpoint::File { ino } if ino == src) {
                let through_user = matches!(sys.role, Role::FileRead { .. });
                self.attach_source(pid, src, id, through_user, out);
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
            if sys.ret > 0 {
                self.sent_from_file(id, pid, ino, sys.ret as u64);
            }
            self.attach_source(pid, ino, id, true, out);
        } else if let Role::SpliceOut { pipe, .. } = sys.role
            && let Some(ino) = self.sources.pipe_source(pid, pipe)
        {
            self.attach_source(pid, ino, id, false, out);
        }
        for s in sys.steps {
            self.emit(s.transfer.unwrap_or(id), s, out);
        }
    }

    /// fexit `filemap_read` copied `bytes` of file `ino` (into a pipe's iterator: `pipe`).
    pub(super) fn filemap_read(&mut self, ev: &Event, ino: Ino, bytes: u64, pipe: bool) {
        // An io_uring READ's copy, inline in io_uring_enter or in an io-wq worker (no
        // syscall): counted per (process, file) until its completion takes it
        // (filemap_read does not know the request). Only files a ring of this process
        // reads are counted.
        let role = self.syscalls.role(ev.tid);
        if !pipe
            && matches!(role, None | Some(Role::IoUring { .. }))
            && self.io_uring.reads_file(ev.pid, ino)
        {
            self.io_uring.read_copied(ev.pid, ino, bytes);
            return;
        }
        let Some(sys) = self.syscalls.get_mut(ev.tid) else {
            return;
        };
        match sys.role {
            Role::FileRead { src, .. } if src == ino && !pipe => sys.copied += bytes,
            // Before 6.5 a splice from a file reads through filemap_read into the pipe's
            // iterator, which takes page references.
            Role::SpliceIn { src, .. } if src == ino && pipe => sys.referenced += bytes,
            _ => {}
        }
    }
}
