//! The event ABI shared by the kernel programs (`tracer-ebpf`) and the user side (`tracer`).
//!
//! Every kernel program writes one fixed-size [`Event`] into the ring buffer [`EVENTS_MAP`].
//! The meaning of `Event::args` depends on `Event::kind`; the `arg` index constants in
//! each `kind` module below are the single description of that layout, used by the
//! writer (eBPF) and the reader (user side) alike.
//!
//! Kernel struct field offsets are not compiled in (aya has no CO-RE relocations for Rust
//! eBPF programs): user space resolves them from `/sys/kernel/btf/vmlinux` and passes a
//! [`Config`] in as the global [`CONFIG_GLOBAL`].
#![no_std]

pub mod config;

pub use config::{Config, FIELDS, Field, FieldSpec};

/// Name of the `RingBuf` map that carries [`Event`]s.
pub const EVENTS_MAP: &str = "EVENTS";
/// Name of the per-CPU `u64` array counting lost events: slot [`DROP_RING_FULL`] for failed
/// ring-buffer reserves, slot [`DROP_READ_FAILED`] for events abandoned because a kernel
/// memory read failed.
pub const DROPS_MAP: &str = "DROPS";
pub const DROP_RING_FULL: u32 = 0;
pub const DROP_READ_FAILED: u32 = 1;
/// Name of the hash map `tgid (u32) -> flags (u32)` of traced processes. Children are added
/// by the kernel on fork.
pub const TRACED_MAP: &str = "TRACED";
/// `TRACED` flag: the process is held until its next exec (a command the tracer forked);
/// its events count from the exec on, so the tracer's own pre-exec code is not reported.
pub const TRACED_FROM_EXEC: u32 = 1;
/// Marks a `Config` field (an offset or a switch) this kernel does not have.
pub const ABSENT: u32 = u32::MAX;
/// `MSG_ZEROCOPY` of send(2)'s flags.
pub const MSG_ZEROCOPY: u64 = 0x0400_0000;

/// Which argument of a send syscall holds its MSG_* flags: sendto's fourth, sendmsg's
/// third; `None` for other syscalls.
pub const fn send_flags_arg(nr: u64) -> Option<usize> {
    match nr {
        sysno::SENDTO => Some(3),
        sysno::SENDMSG => Some(2),
        _ => None,
    }
}

/// The x86_64 syscall numbers the programs and the decoder tell apart (the stable ABI of
/// `asm/unistd_64.h`; the user side checks them against `libc::SYS_*`), as wide as an
/// event carries them (`kind::sys_enter::NR`). Names for every number come from the
/// `syscalls` crate on the user side.
pub mod sysno {
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
    pub const CLOSE: u64 = 3;
    pub const MMAP: u64 = 9;
    pub const MUNMAP: u64 = 11;
    pub const PREAD64: u64 = 17;
    pub const PWRITE64: u64 = 18;
    pub const READV: u64 = 19;
    pub const WRITEV: u64 = 20;
    pub const SENDFILE: u64 = 40;
    pub const SENDTO: u64 = 44;
    pub const RECVFROM: u64 = 45;
    pub const SENDMSG: u64 = 46;
    pub const RECVMSG: u64 = 47;
    pub const FADVISE64: u64 = 221;
    pub const SPLICE: u64 = 275;
    pub const PREADV: u64 = 295;
    pub const PWRITEV: u64 = 296;
    pub const COPY_FILE_RANGE: u64 = 326;
    pub const IO_URING_ENTER: u64 = 426;
}

/// Name of the global [`Config`].
pub const CONFIG_GLOBAL: &str = "CONFIG";

/// Ring buffer size in bytes (a power of two, a multiple of the page size).
pub const EVENTS_BYTES: u32 = 32 << 20;

/// Number of `u64` arguments an event carries.
pub const EVENT_ARGS: usize = 10;
/// Length of the `comm` and `name` fields (TASK_COMM_LEN, IFNAMSIZ).
pub const NAME_LEN: usize = 16;

/// One event from a kernel program. Fixed size, no padding holes, no `bool`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// One of the `kind::*::ID` values.
    pub kind: u32,
    /// CPU the program ran on.
    pub cpu: u32,
    /// Current thread-group id (the process id) of the task the program ran in.
    pub tgid: u32,
    /// Current thread id.
    pub tid: u32,
    /// Current task's `comm`, NUL-padded.
    pub comm: [u8; NAME_LEN],
    /// Kind-specific arguments; see the `kind` modules.
    pub args: [u64; EVENT_ARGS],
    /// Kind-specific name (the device name for `net_dev_start_xmit`), NUL-padded.
    pub name: [u8; NAME_LEN],
}

/// Size of [`Event`] in bytes; a ring-buffer record of any other length is malformed.
pub const EVENT_SIZE: usize = size_of::<Event>();
const _: () = assert!(EVENT_SIZE == 8 + 4 * 4 + NAME_LEN + 8 * EVENT_ARGS + NAME_LEN);
const _: () = assert!(EVENT_SIZE.is_multiple_of(8));

impl Event {
    /// An all-zero event.
    pub const fn zeroed() -> Self {
        Self {
            ts_ns: 0,
            kind: 0,
            cpu: 0,
            tgid: 0,
            tid: 0,
            comm: [0; NAME_LEN],
            args: [0; EVENT_ARGS],
            name: [0; NAME_LEN],
        }
    }
}

/// Event kinds and the layout of their `args`.
pub mod kind {
    /// A kind that both a tracepoint and a fentry-tier program report (the loader attaches
    /// one of them) says which in its `VIA` argument: this value for the fentry tier.
    pub const VIA_FEXIT: u64 = 1;
    /// `raw_syscalls:sys_enter`: a user -> kernel mode switch.
    pub mod sys_enter {
        pub const ID: u32 = 1;
        /// Syscall number (x86_64 numbering).
        pub const NR: usize = 0;
        /// First of six consecutive syscall arguments (di, si, dx, r10, r8, r9).
        pub const ARG0: usize = 1;
        /// Inode number of the file behind the syscall's first fd argument (see
        /// [`super::fd_args`]), 0 when it has none or the lookup failed.
        pub const FD_A_INO: usize = 7;
        /// Inode number of the second fd argument (sendfile's in_fd, splice's and
        /// copy_file_range's fd_out).
        pub const FD_B_INO: usize = 8;
        /// `i_mode` of the first fd's inode in bits 0..16, of the second in 16..32
        /// (S_IFREG, S_IFSOCK, S_IFIFO, ...; 0 = not looked up); bit 32 (first) and 33
        /// (second) mark a socket that is not TCP.
        pub const FD_MODES: usize = 9;
        pub const FD_A_NOT_TCP: u64 = 1 << 32;
        pub const FD_B_NOT_TCP: u64 = 1 << 33;
        /// Bits 40..48 of `FD_MODES`: for a send with MSG_ZEROCOPY, the zero-copy inputs of
        /// its TCP socket (`tcp_sendmsg_locked::ZC_KNOWN | ZC_SOCK | ZC_SG`), read at the
        /// syscall's entry, so the copy-or-pin decision is known on kernels with no send
        /// hook at all.
        pub const FD_SEND_ZC_SHIFT: u32 = 40;
    }
    /// `raw_syscalls:sys_exit`: a kernel -> user mode switch.
    pub mod sys_exit {
        pub const ID: u32 = 2;
        /// Syscall number (`regs->orig_ax`).
        pub const NR: usize = 0;
        /// Return value (a signed `long`).
        pub const RET: usize = 1;
    }
    /// `tcp:tcp_sendmsg_locked` (6.16+): one iteration of the TCP send loop.
    pub mod tcp_sendmsg_locked {
        pub const ID: u32 = 3;
        pub const SK: usize = 0;
        /// The write-queue tail skb, 0 when the kernel passed NULL.
        pub const SKB: usize = 1;
        /// `msg->msg_iter.iter_type` (numbering differs between kernels; see `Config`).
        pub const ITER_TYPE: usize = 2;
        /// `msg->msg_flags`.
        pub const MSG_FLAGS: usize = 3;
        /// `msg_data_left(msg)`: `msg->msg_iter.count`.
        pub const MSG_LEFT: usize = 4;
        pub const SIZE_GOAL: usize = 5;
        /// `skb->len` of the tail skb, 0 when it is NULL.
        pub const SKB_LEN: usize = 6;
        /// What decides a MSG_ZEROCOPY send (KERNEL_PATHS.md §2.5): `ZC_SOCK` (the socket
        /// has SOCK_ZEROCOPY, from SO_ZEROCOPY), `ZC_UBUF` (`msg->msg_ubuf` is set:
        /// io_uring), `ZC_SG` (the route can scatter-gather); `ZC_KNOWN` when read.
        pub const ZC: usize = 7;
        pub const ZC_SOCK: u64 = 1;
        pub const ZC_UBUF: u64 = 2;
        pub const ZC_SG: u64 = 4;
        pub const ZC_KNOWN: u64 = 0x80;
    }
    /// `sock:sock_send_length`: the return of a socket send (6.3+).
    pub mod sock_send_length {
        pub const ID: u32 = 4;
        pub const SK: usize = 0;
        /// Bytes sent or a negative errno (signed `int`).
        pub const RET: usize = 1;
        pub const FLAGS: usize = 2;
        /// `sk->sk_family`.
        pub const FAMILY: usize = 3;
        /// `sk->sk_protocol`.
        pub const PROTOCOL: usize = 4;
    }
    /// `sock:sock_recv_length`: the return of a socket receive (6.3+). Same layout as
    /// `sock_send_length`.
    pub mod sock_recv_length {
        pub const ID: u32 = 5;
    }
    /// `skb:skb_copy_datagram_iovec`: a CPU copy from an skb to the receiver's iterator.
    pub mod skb_copy_datagram_iovec {
        pub const ID: u32 = 6;
        pub const SKB: usize = 0;
        pub const LEN: usize = 1;
        /// [`super::VIA_FEXIT`] when fexit `skb_copy_datagram_iter` reported it (after the
        /// copy succeeded), 0 from the tracepoint.
        pub const VIA: usize = 2;
    }
    /// `filemap:mm_filemap_get_pages`: pages of a file found (or made) up to date in the
    /// page cache, after any I/O completed.
    pub mod filemap_get_pages {
        pub const ID: u32 = 7;
        pub const INO: usize = 0;
        /// `s_dev` of the file's super block (kernel `dev_t` encoding: major << 20 | minor).
        pub const DEV: usize = 1;
        pub const INDEX: usize = 2;
        pub const LAST_INDEX: usize = 3;
        /// [`super::VIA_FEXIT`] when fexit `filemap_get_pages` reported it (the pages its
        /// batch returned), 0 from the tracepoint.
        pub const VIA: usize = 4;
    }
    /// `filemap:mm_filemap_add_to_page_cache`: a new folio inserted in the page cache.
    pub mod filemap_add_to_page_cache {
        pub const ID: u32 = 8;
        pub const INO: usize = 0;
        pub const DEV: usize = 1;
        pub const INDEX: usize = 2;
        /// Folio order (bytes = 4096 << order); `u64::MAX` when this kernel's folio layout
        /// is not known.
        pub const ORDER: usize = 3;
    }
    /// `net:net_dev_start_xmit`: an skb handed to a device driver.
    pub mod net_dev_start_xmit {
        pub const ID: u32 = 9;
        pub const SKB: usize = 0;
        /// `skb->sk` (0 when orphaned).
        pub const SK: usize = 1;
        pub const LEN: usize = 2;
        /// `skb->data_len`: the bytes in page frags (TCP puts all payload there).
        pub const DATA_LEN: usize = 3;
        /// `skb_shinfo(skb)->flags`: 0 copied, 0x2 spliced page cache, bit 0 zero-copy.
        pub const SHINFO_FLAGS: usize = 4;
        pub const NR_FRAGS: usize = 5;
        pub const IFINDEX: usize = 6;
        /// `dev->flags` (IFF_LOOPBACK = 0x8) in the low 32 bits, and [`SOFTWARE_DEV`].
        pub const DEV_FLAGS: usize = 7;
        /// A bit of [`DEV_FLAGS`] above `dev->flags`: the device has no parent device (no
        /// bus, so no DMA engine: loopback, veth, tun).
        pub const SOFTWARE_DEV: u64 = 1 << 32;
        /// The traced process that owns `skb->sk` (from `SOCKS`).
        pub const OWNER_TGID: usize = 8;
        /// The TCP header: bits 0-15 the bytes of headers in the linear part, link layer
        /// to the end of the TCP header (0: unknown); bits 32-63 the segment's sequence
        /// number. A linear skb (a device without scatter-gather) carries
        /// `len - data_len - header bytes` of payload there, copied by the CPU; the
        /// sequence number tells a retransmission.
        pub const TCP: usize = 9;
    }
    /// `block:block_rq_issue`: a block request sent to the device (DMA starts).
    pub mod block_rq_issue {
        pub const ID: u32 = 10;
        pub const RQ: usize = 0;
        /// `rq->__data_len`.
        pub const BYTES: usize = 1;
        pub const SECTOR: usize = 2;
        /// `rq->cmd_flags & 0xff` (REQ_OP_READ = 0, REQ_OP_WRITE = 1).
        pub const OP: usize = 3;
        /// Inode of the first bio page's file, 0 when it has none.
        pub const INO: usize = 4;
        pub const DEV: usize = 5;
        /// The traced process the request reads for: the current one, or, when a kernel
        /// worker issues it (mmap readahead is often flushed by kblockd), the process that
        /// added that file's pages to the page cache (`FILES`).
        pub const OWNER_TGID: usize = 6;
    }
    /// `block:block_rq_complete`: a block request completed (DMA done). Runs in interrupt
    /// context; attributed through `REQUESTS`.
    pub mod block_rq_complete {
        pub const ID: u32 = 11;
        pub const RQ: usize = 0;
        pub const NR_BYTES: usize = 1;
        /// `blk_status_t` (0 = ok).
        pub const ERROR: usize = 2;
        pub const OWNER_TGID: usize = 3;
    }
    /// `sched:sched_process_fork`: a traced task forked; the child is traced from now on.
    pub mod process_fork {
        pub const ID: u32 = 12;
        pub const CHILD_TGID: usize = 0;
        pub const CHILD_PID: usize = 1;
    }
    /// `sched:sched_process_exec`: a process whose comm matches the `--comm` filter
    /// started (or a traced one exec'd).
    pub mod process_exec {
        pub const ID: u32 = 13;
    }
    /// `io_uring:io_uring_submit_req`: a request entered the ring's submission path, in
    /// the submitting task.
    pub mod io_uring_submit_req {
        pub const ID: u32 = 14;
        pub const USER_DATA: usize = 0;
        pub const OPCODE: usize = 1;
        /// The SQE's fd (an index into the registered files when FLAGS has bit 0).
        pub const FD: usize = 2;
        /// The low 32 bits of `req->flags` (REQ_F_*).
        pub const FLAGS: usize = 3;
        /// Inode number and `i_mode` of the fd's file, 0 when it is a registered file.
        /// Meaningful only for opcodes that take a file (the kernel leaves the field
        /// stale for others).
        pub const INO: usize = 4;
        pub const MODE: usize = 5;
        /// For a socket, its `struct sock` (`file->private_data->sk`): sends that an
        /// io-wq worker makes later are matched to the request by it.
        pub const SK: usize = 6;
        /// The `io_kiocb` (also passed to `io_uring_complete`).
        pub const REQ: usize = 7;
    }
    /// `io_uring:io_uring_complete`: a completion was posted.
    pub mod io_uring_complete {
        pub const ID: u32 = 15;
        pub const USER_DATA: usize = 0;
        pub const RES: usize = 1;
        pub const CFLAGS: usize = 2;
        /// The `io_kiocb` (a send's zero-copy notification comes from another one).
        pub const REQ: usize = 3;
    }
    /// `filemap:mm_filemap_map_pages`: page-cache pages mapped into a process (mmap fault-around).
    pub mod filemap_map_pages {
        pub const ID: u32 = 16;
        pub const INO: usize = 0;
        pub const DEV: usize = 1;
        pub const START: usize = 2;
        pub const END: usize = 3;
        /// [`super::VIA_FEXIT`] when fexit `filemap_map_pages` reported it, 0 from the
        /// tracepoint.
        pub const VIA: usize = 4;
    }
    /// `filemap:mm_filemap_fault`: a page fault on a file mapping had to look a page up.
    pub mod filemap_fault {
        pub const ID: u32 = 17;
        pub const INO: usize = 0;
        pub const DEV: usize = 1;
        pub const INDEX: usize = 2;
    }
    /// `ext4:ext4_da_write_end`: bytes copied into a file's page cache by a buffered write.
    pub mod ext4_da_write_end {
        pub const ID: u32 = 18;
        pub const INO: usize = 0;
        pub const DEV: usize = 1;
        pub const POS: usize = 2;
        pub const LEN: usize = 3;
        pub const COPIED: usize = 4;
    }
    /// `net:netif_receive_skb` for an skb whose frags are pinned user pages (zero-copy) of a
    /// traced socket: delivering it locally makes the kernel copy them (`skb_copy_ubufs`).
    pub mod zerocopy_receive {
        pub const ID: u32 = 19;
        pub const SKB: usize = 0;
        pub const DATA_LEN: usize = 1;
        pub const SHINFO_FLAGS: usize = 2;
        pub const OWNER_TGID: usize = 3;
        /// [`super::VIA_FEXIT`] when fexit `skb_copy_ubufs` reported the copy itself, 0
        /// from the `netif_receive_skb` tracepoint (which implies it).
        pub const VIA: usize = 4;
    }
    /// fexit `filemap_read`: bytes copied from the page cache to the reader's iterator
    /// (the fentry tier: observed where tracepoints can only infer it).
    pub mod filemap_read {
        pub const ID: u32 = 20;
        pub const INO: usize = 0;
        pub const BYTES: usize = 1;
        /// The `already_read` argument (bytes a caller had read before this call).
        pub const ALREADY: usize = 2;
        /// 1 when the iterator is a pipe (before 6.5, a splice from a file reads through
        /// filemap_read into a pipe iterator, which takes page references, not copies).
        pub const PIPE: usize = 3;
    }
    /// kretprobe `do_tcp_sendpages` (kernels before 6.5, whose sendfile and splice reach
    /// TCP through ->sendpage): page-cache bytes referenced into the socket, one page per
    /// call, in the sending task.
    pub mod sendpages_exit {
        pub const ID: u32 = 22;
        pub const BYTES: usize = 0;
    }
    /// fexit `generic_perform_write`: bytes a buffered write copied into a file's page
    /// cache (any filesystem that uses the generic write path; ext4 does).
    pub mod perform_write {
        pub const ID: u32 = 23;
        pub const INO: usize = 0;
        pub const BYTES: usize = 1;
    }
    /// fexit `skb_zerocopy_iter_stream`: user pages pinned into a TCP skb (MSG_ZEROCOPY,
    /// io_uring SEND_ZC) by one call; the bytes it pinned.
    pub mod zerocopy_pinned {
        pub const ID: u32 = 24;
        pub const SK: usize = 0;
        pub const BYTES: usize = 1;
    }
    /// `tcp:tcp_retransmit_skb`: TCP retransmitted an skb of a traced socket (its write
    /// queue's, after the transmit of a clone: `net_dev_start_xmit` saw that one first,
    /// as any transmit). Runs in softirq or a timer as often as in the owner.
    pub mod tcp_retransmit {
        pub const ID: u32 = 25;
        pub const SK: usize = 0;
        pub const SKB: usize = 1;
        /// `skb->len`: the payload bytes sent again (a write-queue skb has no headers yet).
        pub const LEN: usize = 2;
        /// The transmit's error (6.12+; 0 on older kernels, which report successes only).
        pub const ERR: usize = 3;
        /// The traced process that owns `sk` (from `SOCKS`).
        pub const OWNER_TGID: usize = 4;
    }
    /// fexit `tcp_sendmsg_locked`: one whole TCP send call, with its decision inputs
    /// (the fentry tier's view of what the tracepoints split over tcp_sendmsg_locked and
    /// sock_send_length).
    pub mod tcp_sendmsg_exit {
        pub const ID: u32 = 21;
        pub const SK: usize = 0;
        /// The return: bytes queued (negative: an error).
        pub const RET: usize = 1;
        pub const MSG_FLAGS: usize = 2;
        pub const ITER_TYPE: usize = 3;
        /// `tcp_sendmsg_locked::ZC*` bits.
        pub const ZC: usize = 4;
    }
}

/// Which arguments of a syscall are file descriptors the kernel side resolves to an inode:
/// `(first, second)` argument indexes, `None` for none.
pub const fn fd_args(nr: u64) -> (Option<usize>, Option<usize>) {
    use sysno::*;
    match nr {
        READ | WRITE | PREAD64 | PWRITE64 | READV | WRITEV | PREADV | PWRITEV | SENDTO
        | RECVFROM | SENDMSG | RECVMSG | FADVISE64 | IO_URING_ENTER => (Some(0), None),
        // mmap(addr, len, prot, flags, fd, off)
        MMAP => (Some(4), None),
        // sendfile(out_fd, in_fd, ..)
        SENDFILE => (Some(0), Some(1)),
        // splice(fd_in, off_in, fd_out, ..), copy_file_range(fd_in, off_in, fd_out, ..)
        SPLICE | COPY_FILE_RANGE => (Some(0), Some(2)),
        _ => (None, None),
    }
}

/// Key of the `FILES` map: a file by device and inode number.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
}

/// `task_struct.flags` bit of kernel threads.
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// `S_IFMT` and the file types the model tells apart.
pub const S_IFMT: u16 = 0o170000;
pub const S_IFREG: u16 = 0o100000;
pub const S_IFSOCK: u16 = 0o140000;
pub const S_IFIFO: u16 = 0o010000;

#[cfg(feature = "user")]
// SAFETY: Event and Config are #[repr(C)], Copy, made only of integers and byte arrays, and
// have no padding (checked by the size assertions above), so any byte pattern is valid.
unsafe impl aya::Pod for Event {}
#[cfg(feature = "user")]
// SAFETY: see above.
unsafe impl aya::Pod for Config {}
