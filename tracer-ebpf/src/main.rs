//! Kernel programs of the tracer: the tracepoint tier.
//!
//! Every program is a BTF-typed raw tracepoint (`tp_btf`), which this project's CI kernel
//! (6.18, no kprobes, fentry refused) allows. Struct fields are read with
//! `bpf_probe_read_kernel` at offsets resolved from the running kernel's BTF by user space
//! and passed in through the global `CONFIG` (aya has no CO-RE for Rust programs, and the
//! verifier refuses variable offsets on direct BTF pointer loads).
//!
//! Filtering happens here: a process-context program first looks the current tgid up in
//! `TRACED` and returns at once when it is not there, so an untraced process costs one
//! hash lookup per event. Transmit and block-completion events run in other tasks' or
//! interrupt context and are attributed through `SOCKS` (skb->sk) and `REQUESTS` (rq).
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task,
        bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_probe_read_kernel,
        bpf_probe_read_kernel_buf,
    },
    macros::{btf_tracepoint, fentry, fexit, kretprobe, map},
    maps::{HashMap, LruHashMap, PerCpuArray, RingBuf},
    programs::{BtfTracePointContext, FEntryContext, FExitContext, RetProbeContext},
};
use tracer_common::{
    ABSENT, Config, DROP_READ_FAILED, DROP_RING_FULL, EVENT_ARGS, EVENTS_BYTES, Event, FileKey,
    MSG_ZEROCOPY, NAME_LEN, PF_KTHREAD, S_IFMT, S_IFSOCK, TRACED_FROM_EXEC, kind,
};

/// Offsets and switches, filled in by the loader (`EbpfLoader::override_global`).
#[unsafe(no_mangle)]
static CONFIG: Config = Config::zeroed();

#[map(name = "EVENTS")]
static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

#[map(name = "DROPS")]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(2, 0);

#[map(name = "TRACED")]
static TRACED: HashMap<u32, u32> = HashMap::with_max_entries(16384, 0);

/// Sockets a traced process sends on (`struct sock *` -> tgid): transmits run in any
/// task's context and are attributed through it.
#[map(name = "SOCKS")]
static SOCKS: LruHashMap<u64, u32> = LruHashMap::with_max_entries(16384, 0);

/// Block requests issued for a traced process (`struct request *` -> tgid): completions
/// run in interrupt context and are attributed through it.
#[map(name = "REQUESTS")]
static REQUESTS: LruHashMap<u64, u32> = LruHashMap::with_max_entries(16384, 0);

/// Files whose pages a traced process added to the page cache ((dev, ino) -> tgid), so
/// block requests kernel workers issue for them can be attributed.
#[map(name = "FILES")]
static FILES: LruHashMap<FileKey, u32> = LruHashMap::with_max_entries(1024, 0);

/// Zero-copy skbs of traced sockets seen at transmit (skb -> owner tgid), so their local
/// delivery (`netif_receive_skb`, where loopback copies them) can be attributed.
#[map(name = "ZC_SKBS")]
static ZC_SKBS: LruHashMap<u64, u32> = LruHashMap::with_max_entries(4096, 0);

/// Reads one `CONFIG` field. Volatile so the compiler does not fold the zero the object
/// file holds; the verifier sees the frozen value the loader wrote.
macro_rules! conf {
    ($field:ident) => {
        // SAFETY: CONFIG is a static of plain integers.
        unsafe { core::ptr::read_volatile(core::ptr::addr_of!(CONFIG.$field)) }
    };
}

/// Reads a `T` at `base + off` in kernel memory.
#[inline(always)]
fn rd<T>(base: u64, off: u32) -> Result<T, i64> {
    // SAFETY: bpf_probe_read_kernel checks the address; a bad one returns an error.
    unsafe { bpf_probe_read_kernel((base + off as u64) as *const T) }.map_err(|e| e as i64)
}

/// Returns the tgid of the current task when its process is traced.
#[inline(always)]
fn current_traced() -> Option<u32> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    // SAFETY: the flags are copied out at once.
    match unsafe { TRACED.get(tgid) } {
        Some(flags) if *flags & TRACED_FROM_EXEC == 0 => Some(tgid),
        _ => None,
    }
}

#[inline(always)]
fn count_drop(why: u32) {
    if let Some(slot) = DROPS.get_ptr_mut(why) {
        // SAFETY: a per-CPU slot is only touched by programs on this CPU.
        unsafe { *slot += 1 };
    }
}

/// Unread bytes in the ring buffer above which a submit wakes the reader. Below it the
/// reader is not woken per event (a wakeup per event costs more than the event): it polls
/// on a short timer as well (`source::kernel`), so a trickle still arrives within a tick.
const WAKEUP_BYTES: u64 = 256 << 10;

/// Writes one event into the ring buffer, or counts a drop when it is full.
#[inline(always)]
fn emit(kind: u32, args: [u64; EVENT_ARGS], name: [u8; NAME_LEN]) {
    let pid_tgid = bpf_get_current_pid_tgid();
    match EVENTS.reserve::<Event>(0) {
        Some(mut entry) => {
            entry.write(Event {
                // SAFETY: helper calls without preconditions.
                ts_ns: unsafe { bpf_ktime_get_ns() },
                kind,
                // SAFETY: as above.
                cpu: unsafe { bpf_get_smp_processor_id() },
                tgid: (pid_tgid >> 32) as u32,
                tid: pid_tgid as u32,
                comm: bpf_get_current_comm().unwrap_or([0; NAME_LEN]),
                args,
                name,
            });
            let flags = if EVENTS.query(BPF_RB_AVAIL_DATA as u64) >= WAKEUP_BYTES {
                BPF_RB_FORCE_WAKEUP
            } else {
                BPF_RB_NO_WAKEUP
            };
            entry.submit(flags as u64);
        }
        None => count_drop(DROP_RING_FULL),
    }
}

const NO_NAME: [u8; NAME_LEN] = [0; NAME_LEN];

#[btf_tracepoint(function = "sys_enter")]
pub fn tracer_sys_enter(ctx: BtfTracePointContext) -> i32 {
    if try_sys_enter(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_sys_enter(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let Some(tgid) = current_traced() else {
        return Ok(());
    };
    // sys_enter(struct pt_regs *regs, long id)
    let regs: u64 = ctx.arg(0);
    let id: i64 = ctx.arg(1);
    let mut args = [0u64; EVENT_ARGS];
    args[kind::sys_enter::NR] = id as u64;
    args[kind::sys_enter::ARG0] = rd::<u64>(regs, conf!(pt_regs_di))?;
    args[kind::sys_enter::ARG0 + 1] = rd::<u64>(regs, conf!(pt_regs_si))?;
    args[kind::sys_enter::ARG0 + 2] = rd::<u64>(regs, conf!(pt_regs_dx))?;
    args[kind::sys_enter::ARG0 + 3] = rd::<u64>(regs, conf!(pt_regs_r10))?;
    args[kind::sys_enter::ARG0 + 4] = rd::<u64>(regs, conf!(pt_regs_r8))?;
    args[kind::sys_enter::ARG0 + 5] = rd::<u64>(regs, conf!(pt_regs_r9))?;
    // The kind of file behind each fd argument (regular file, socket, pipe) comes from the
    // kernel's fd table: the tracer never guesses it from fd numbers.
    let (a, b) = tracer_common::fd_args(id as u64);
    // The fd a send goes out through: write, pwrite64, writev, sendto, sendmsg and
    // sendfile's out_fd are the first; splice's fd_out the second.
    let (send_a, send_b) = match id {
        1 | 18 | 20 | 40 | 44 | 46 => (true, false),
        275 => (false, true),
        _ => (false, false),
    };
    // sendto(fd, buf, len, flags, ..) and sendmsg(fd, msg, flags) with MSG_ZEROCOPY.
    let zerocopy = match tracer_common::send_flags_arg(id as u64) {
        Some(i) => args[kind::sys_enter::ARG0 + (i & 7)] & MSG_ZEROCOPY != 0,
        None => false,
    };
    let mut modes = 0u64;
    if let Some(i) = a {
        let (ino, mode, not_tcp, zc) = fd_info(
            args[kind::sys_enter::ARG0 + (i & 7)] as i32,
            send_a,
            zerocopy,
            tgid,
        );
        args[kind::sys_enter::FD_A_INO] = ino;
        modes |= mode as u64;
        if not_tcp {
            modes |= kind::sys_enter::FD_A_NOT_TCP;
        }
        modes |= (zc as u64) << kind::sys_enter::FD_SEND_ZC_SHIFT;
    }
    if let Some(i) = b {
        let (ino, mode, not_tcp, _) = fd_info(
            args[kind::sys_enter::ARG0 + (i & 7)] as i32,
            send_b,
            false,
            tgid,
        );
        args[kind::sys_enter::FD_B_INO] = ino;
        modes |= (mode as u64) << 16;
        if not_tcp {
            modes |= kind::sys_enter::FD_B_NOT_TCP;
        }
    }
    args[kind::sys_enter::FD_MODES] = modes;
    emit(kind::sys_enter::ID, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "sys_exit")]
pub fn tracer_sys_exit(ctx: BtfTracePointContext) -> i32 {
    if try_sys_exit(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_sys_exit(ctx: &BtfTracePointContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // sys_exit(struct pt_regs *regs, long ret); the number is regs->orig_ax on x86.
    let regs: u64 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    let mut args = [0u64; EVENT_ARGS];
    args[kind::sys_exit::NR] = rd::<u64>(regs, conf!(pt_regs_orig_ax))?;
    args[kind::sys_exit::RET] = ret as u64;
    emit(kind::sys_exit::ID, args, NO_NAME);
    Ok(())
}

/// The inputs of tcp_sendmsg_locked's copy / reference / pin decision (KERNEL_PATHS.md
/// §2.5): the socket's SOCK_ZEROCOPY flag (bit 18), `msg->msg_ubuf` (io_uring), and
/// NETIF_F_SG in the route's features; 0 when this kernel's layout is not known.
#[inline(always)]
fn zc_inputs(sk: u64, msg: u64) -> Result<u64, i64> {
    use kind::tcp_sendmsg_locked as k;
    let ubuf_off = conf!(msghdr_msg_ubuf);
    if ubuf_off == ABSENT {
        return Ok(0);
    }
    let mut zc = sock_zc_inputs(sk)?;
    if zc != 0 && rd::<u64>(msg, ubuf_off)? != 0 {
        zc |= k::ZC_UBUF;
    }
    Ok(zc)
}

/// The socket's part of the zero-copy decision: SOCK_ZEROCOPY (bit 18 of `sk_flags`, set
/// by SO_ZEROCOPY) and NETIF_F_SG in `sk_route_caps`; 0 when this kernel's layout is not
/// known.
#[inline(always)]
fn sock_zc_inputs(sk: u64) -> Result<u64, i64> {
    use kind::tcp_sendmsg_locked as k;
    let (flags_off, caps_off) = (conf!(sock_flags), conf!(sock_route_caps));
    if flags_off == ABSENT || caps_off == ABSENT {
        return Ok(0);
    }
    let mut zc = k::ZC_KNOWN;
    if rd::<u64>(sk, flags_off)? & (1 << 18) != 0 {
        zc |= k::ZC_SOCK;
    }
    if rd::<u64>(sk, caps_off)? & 1 != 0 {
        zc |= k::ZC_SG;
    }
    Ok(zc)
}

#[btf_tracepoint(function = "tcp_sendmsg_locked")]
pub fn tracer_tcp_sendmsg(ctx: BtfTracePointContext) -> i32 {
    if try_tcp_sendmsg_locked(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_tcp_sendmsg_locked(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let Some(tgid) = current_traced() else {
        return Ok(());
    };
    // tcp_sendmsg_locked(const struct sock *sk, const struct msghdr *msg,
    //                    const struct sk_buff *skb /* may be NULL */, int size_goal)
    let sk: u64 = ctx.arg(0);
    let msg: u64 = ctx.arg(1);
    let skb: u64 = ctx.arg(2);
    let size_goal: i32 = ctx.arg(3);
    let _ = SOCKS.insert(sk, tgid, 0);
    let iter = msg + conf!(msghdr_msg_iter) as u64;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::tcp_sendmsg_locked::SK] = sk;
    args[kind::tcp_sendmsg_locked::SKB] = skb;
    args[kind::tcp_sendmsg_locked::ITER_TYPE] = rd::<u8>(iter, conf!(iov_iter_iter_type))? as u64;
    args[kind::tcp_sendmsg_locked::MSG_FLAGS] = rd::<u32>(msg, conf!(msghdr_msg_flags))? as u64;
    args[kind::tcp_sendmsg_locked::MSG_LEFT] = rd::<u64>(iter, conf!(iov_iter_count))?;
    args[kind::tcp_sendmsg_locked::SIZE_GOAL] = size_goal as i64 as u64;
    args[kind::tcp_sendmsg_locked::ZC] = zc_inputs(sk, msg)?;
    if skb != 0 {
        args[kind::tcp_sendmsg_locked::SKB_LEN] = rd::<u32>(skb, conf!(sk_buff_len))? as u64;
    }
    emit(kind::tcp_sendmsg_locked::ID, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "sock_send_length")]
pub fn tracer_sock_send(ctx: BtfTracePointContext) -> i32 {
    if try_sock_length(&ctx, kind::sock_send_length::ID).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

#[btf_tracepoint(function = "sock_recv_length")]
pub fn tracer_sock_recv(ctx: BtfTracePointContext) -> i32 {
    if try_sock_length(&ctx, kind::sock_recv_length::ID).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_sock_length(ctx: &BtfTracePointContext, id: u32) -> Result<(), i64> {
    let Some(tgid) = current_traced() else {
        return Ok(());
    };
    // sock_{send,recv}_length(struct sock *sk, int ret, int flags)
    let sk: u64 = ctx.arg(0);
    let ret: i32 = ctx.arg(1);
    let flags: i32 = ctx.arg(2);
    let mut args = [0u64; EVENT_ARGS];
    args[kind::sock_send_length::SK] = sk;
    args[kind::sock_send_length::RET] = ret as i64 as u64;
    args[kind::sock_send_length::FLAGS] = flags as u32 as u64;
    let family = conf!(sock_family);
    if family != ABSENT {
        args[kind::sock_send_length::FAMILY] = rd::<u16>(sk, family)? as u64;
    }
    let protocol = conf!(sock_protocol);
    if protocol != ABSENT {
        args[kind::sock_send_length::PROTOCOL] = rd::<u16>(sk, protocol)? as u64;
    }
    // A TCP socket the process sends on is its own (SOCKS), as at sys_enter.
    let tcp = protocol == ABSENT || args[kind::sock_send_length::PROTOCOL] == 6;
    if id == kind::sock_send_length::ID && tcp {
        let _ = SOCKS.insert(sk, tgid, 0);
    }
    emit(id, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "skb_copy_datagram_iovec")]
pub fn tracer_skb_copy(ctx: BtfTracePointContext) -> i32 {
    if current_traced().is_some() {
        // skb_copy_datagram_iovec(const struct sk_buff *skb, int len)
        let skb: u64 = ctx.arg(0);
        let len: i32 = ctx.arg(1);
        let mut args = [0u64; EVENT_ARGS];
        args[kind::skb_copy_datagram_iovec::SKB] = skb;
        args[kind::skb_copy_datagram_iovec::LEN] = len as i64 as u64;
        emit(kind::skb_copy_datagram_iovec::ID, args, NO_NAME);
    }
    0
}

/// (i_ino, i_mode, not TCP, zero-copy inputs) of the file behind `fd`; when `sending` and
/// it is a socket, its `sk` is recorded as the traced process's in `SOCKS`, so its
/// transmits are attributed on kernels without the send tracepoints (before 6.3 / 6.16)
/// too, and for a MSG_ZEROCOPY send (`zerocopy`) the socket's zero-copy inputs are read.
#[inline(always)]
fn fd_info(fd: i32, sending: bool, zerocopy: bool, tgid: u32) -> (u64, u16, bool, u8) {
    let Some(file) = fd_file(fd) else {
        return (0, 0, false, 0);
    };
    let mut zc = 0u8;
    let (ino, mode) = file_inode(file).unwrap_or((0, 0));
    let mut not_tcp = false;
    // Only for the fd a send goes out through: every other syscall skips these reads.
    if sending && mode & S_IFMT == S_IFSOCK {
        let (sk, tcp) = socket_sk(file, tgid);
        not_tcp = sk != 0 && !tcp;
        if tcp && zerocopy {
            zc = sock_zc_inputs(sk).unwrap_or(0) as u8;
        }
    }
    (ino, mode, not_tcp, zc)
}

/// The `sk` of a socket `file` a traced process sends through, and whether it is TCP
/// (assumed when this kernel's `sk_protocol` is not known); a TCP socket is entered in
/// `SOCKS` as the process's, so its transmits are attributed on kernels without the send
/// tracepoints (before 6.3 / 6.16) too. Only TCP sockets carry the data path the model
/// follows (unix and UDP sends are not copies into a TCP socket buffer).
#[inline(always)]
fn socket_sk(file: u64, tgid: u32) -> (u64, bool) {
    let sk = file_sk(file);
    if sk == 0 {
        return (0, false);
    }
    let protocol = conf!(sock_protocol);
    let tcp = protocol == ABSENT || rd::<u16>(sk, protocol).unwrap_or(0) == 6;
    if tcp {
        let _ = SOCKS.insert(sk, tgid, 0);
    }
    (sk, tcp)
}

/// The `sk` of a socket `file` (file->private_data->sk), 0 when it cannot be read.
#[inline(always)]
fn file_sk(file: u64) -> u64 {
    if conf!(file_private_data) == ABSENT {
        return 0;
    }
    let socket: u64 = rd(file, conf!(file_private_data)).unwrap_or(0);
    if socket == 0 {
        return 0;
    }
    rd(socket, conf!(socket_sk)).unwrap_or(0)
}

/// (i_ino, i_mode) of a `struct file`.
#[inline(always)]
fn file_inode(file: u64) -> Result<(u64, u16), i64> {
    let inode: u64 = rd(file, conf!(file_f_inode))?;
    if inode == 0 {
        return Ok((0, 0));
    }
    Ok((
        rd(inode, conf!(inode_i_ino))?,
        rd(inode, conf!(inode_i_mode))?,
    ))
}

/// The `struct file` behind `fd` in the current task (task->files->fdt->fd[fd]), if any: none
/// for a closed or out-of-range fd, or when a read fails (an fd argument may legitimately be
/// bad; the syscall's own error says so).
#[inline(always)]
fn fd_file(fd: i32) -> Option<u64> {
    fn walk(fd: i32) -> Result<u64, i64> {
        if fd < 0 || conf!(task_files) == ABSENT {
            return Ok(0);
        }
        // SAFETY: returns the current task pointer; it is only read through rd().
        let task = unsafe { bpf_get_current_task() };
        let files: u64 = rd(task, conf!(task_files))?;
        if files == 0 {
            return Ok(0);
        }
        let fdt: u64 = rd(files, conf!(files_struct_fdt))?;
        let max: u32 = rd(fdt, conf!(fdtable_max_fds))?;
        if fd as u32 >= max {
            return Ok(0);
        }
        let table: u64 = rd(fdt, conf!(fdtable_fd))?;
        rd(table, fd as u32 * 8)
    }
    match walk(fd) {
        Ok(0) | Err(_) => None,
        Ok(file) => Some(file),
    }
}

/// Reads (i_ino, s_dev) of an `address_space`'s host inode.
#[inline(always)]
fn mapping_inode(mapping: u64) -> Result<(u64, u64), i64> {
    if mapping == 0 {
        return Ok((0, 0));
    }
    inode_ino_dev(rd(mapping, conf!(address_space_host))?)
}

/// Reads (i_ino, s_dev) of an inode.
#[inline(always)]
fn inode_ino_dev(host: u64) -> Result<(u64, u64), i64> {
    if host == 0 {
        return Ok((0, 0));
    }
    let ino: u64 = rd(host, conf!(inode_i_ino))?;
    let sb: u64 = rd(host, conf!(inode_i_sb))?;
    let dev: u32 = if sb == 0 {
        0
    } else {
        rd(sb, conf!(super_block_s_dev))?
    };
    Ok((ino, dev as u64))
}

#[btf_tracepoint(function = "mm_filemap_get_pages")]
pub fn tracer_get_pages(ctx: BtfTracePointContext) -> i32 {
    if try_filemap_get_pages(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_filemap_get_pages(ctx: &BtfTracePointContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // mm_filemap_get_pages(struct address_space *mapping, pgoff_t index, pgoff_t last_index)
    let mapping: u64 = ctx.arg(0);
    let (ino, dev) = mapping_inode(mapping)?;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::filemap_get_pages::INO] = ino;
    args[kind::filemap_get_pages::DEV] = dev;
    args[kind::filemap_get_pages::INDEX] = ctx.arg(1);
    args[kind::filemap_get_pages::LAST_INDEX] = ctx.arg(2);
    emit(kind::filemap_get_pages::ID, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "mm_filemap_add_to_page_cache")]
pub fn tracer_add_page(ctx: BtfTracePointContext) -> i32 {
    if try_filemap_add_to_page_cache(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_filemap_add_to_page_cache(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let Some(tgid) = current_traced() else {
        return Ok(());
    };
    // mm_filemap_add_to_page_cache(struct folio *folio)
    let folio: u64 = ctx.arg(0);
    let mapping: u64 = rd(folio, conf!(folio_mapping))?;
    let (ino, dev) = mapping_inode(mapping)?;
    if ino != 0 {
        let _ = FILES.insert(FileKey { dev, ino }, tgid, 0);
    }
    let order = folio_order(folio)?;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::filemap_add_to_page_cache::INO] = ino;
    args[kind::filemap_add_to_page_cache::DEV] = dev;
    args[kind::filemap_add_to_page_cache::INDEX] = rd(folio, conf!(folio_index))?;
    args[kind::filemap_add_to_page_cache::ORDER] = order;
    emit(kind::filemap_add_to_page_cache::ID, args, NO_NAME);
    Ok(())
}

/// folio_order(): a large folio has PG_head set and its order in a byte of its first
/// tail page (`_folio_order` before 6.6, `_flags_1`'s low byte since); `u64::MAX` when
/// this kernel's folio layout is not known.
#[inline(always)]
fn folio_order(folio: u64) -> Result<u64, i64> {
    let order_byte = conf!(folio_order_byte);
    if order_byte == ABSENT || conf!(folio_flags) == ABSENT {
        return Ok(u64::MAX);
    }
    let flags: u64 = rd(folio, conf!(folio_flags))?;
    if flags & (1u64 << (conf!(pg_head) & 63)) != 0 {
        Ok(rd::<u8>(folio, order_byte)? as u64)
    } else {
        Ok(0)
    }
}

#[btf_tracepoint(function = "net_dev_start_xmit")]
pub fn tracer_xmit(ctx: BtfTracePointContext) -> i32 {
    if try_net_dev_start_xmit(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_net_dev_start_xmit(ctx: &BtfTracePointContext) -> Result<(), i64> {
    // net_dev_start_xmit(const struct sk_buff *skb, const struct net_device *dev)
    // Runs in whatever task pushed the queue (often the peer's, or softirq), so attribute
    // by the socket that owns the skb, learned when a traced process sent on it.
    let skb: u64 = ctx.arg(0);
    let dev: u64 = ctx.arg(1);
    let sk: u64 = rd(skb, conf!(sk_buff_sk))?;
    // SAFETY: the value is copied out at once.
    let owner = match unsafe { SOCKS.get(sk) } {
        Some(tgid) => *tgid,
        None => return Ok(()),
    };
    // A freed socket's memory can be reused by another process's socket: count it only
    // while its owner is still traced.
    // SAFETY: only tested for presence.
    if unsafe { TRACED.get(owner) }.is_none() {
        let _ = SOCKS.remove(sk);
        return Ok(());
    }
    let head: u64 = rd(skb, conf!(sk_buff_head))?;
    // On 64-bit, skb->end is an offset from head (NET_SKBUFF_DATA_USES_OFFSET).
    let end: u32 = rd(skb, conf!(sk_buff_end))?;
    let shinfo = head + end as u64;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::net_dev_start_xmit::SKB] = skb;
    args[kind::net_dev_start_xmit::SK] = sk;
    args[kind::net_dev_start_xmit::LEN] = rd::<u32>(skb, conf!(sk_buff_len))? as u64;
    args[kind::net_dev_start_xmit::DATA_LEN] = rd::<u32>(skb, conf!(sk_buff_data_len))? as u64;
    args[kind::net_dev_start_xmit::SHINFO_FLAGS] = rd::<u8>(shinfo, conf!(shinfo_flags))? as u64;
    args[kind::net_dev_start_xmit::NR_FRAGS] = rd::<u8>(shinfo, conf!(shinfo_nr_frags))? as u64;
    args[kind::net_dev_start_xmit::IFINDEX] = rd::<i32>(dev, conf!(net_device_ifindex))? as u64;
    args[kind::net_dev_start_xmit::DEV_FLAGS] = rd::<u32>(dev, conf!(net_device_flags))? as u64;
    args[kind::net_dev_start_xmit::OWNER_TGID] = owner as u64;
    if args[kind::net_dev_start_xmit::SHINFO_FLAGS] & 1 != 0 {
        let _ = ZC_SKBS.insert(skb, owner, 0);
    }
    let mut name = [0u8; NAME_LEN];
    let name_ptr = (dev + conf!(net_device_name) as u64) as *const u8;
    // SAFETY: reads at most NAME_LEN bytes into a local array; errors leave it zeroed.
    let _ = unsafe { bpf_probe_read_kernel_buf(name_ptr, &mut name) };
    emit(kind::net_dev_start_xmit::ID, args, name);
    Ok(())
}

/// (i_ino, s_dev) of the file a block request reads or writes:
/// rq->bio->bi_io_vec[0].bv_page->mapping->host; (0, 0) for none. Anonymous and movable
/// mappings tag the low bits of page->mapping; those have no inode.
#[inline(always)]
fn rq_file(rq: u64) -> Result<(u64, u64), i64> {
    let bio: u64 = rd(rq, conf!(request_bio))?;
    if bio == 0 {
        return Ok((0, 0));
    }
    let vec: u64 = rd(bio, conf!(bio_bi_io_vec))?;
    if vec == 0 {
        return Ok((0, 0));
    }
    let page: u64 = rd(vec, conf!(bio_vec_bv_page))?;
    if page == 0 {
        return Ok((0, 0));
    }
    let mapping: u64 = rd(page, conf!(page_mapping))?;
    if mapping & 3 != 0 {
        return Ok((0, 0));
    }
    mapping_inode(mapping)
}

#[btf_tracepoint(function = "block_rq_issue")]
pub fn tracer_rq_issue(ctx: BtfTracePointContext) -> i32 {
    if try_block_rq_issue(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_block_rq_issue(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let current = current_traced();
    if current.is_none() {
        // Only a kernel worker (kblockd flushing a plug) issues I/O on a traced
        // process's behalf; another process's requests cost this one read.
        // SAFETY: the current task pointer, only read through rd().
        let task = unsafe { bpf_get_current_task() };
        let flags: u32 = rd(task, conf!(task_flags))?;
        if flags & PF_KTHREAD == 0 {
            return Ok(());
        }
    }
    // block_rq_issue(struct request *rq)
    let rq: u64 = ctx.arg(0);
    let mut args = [0u64; EVENT_ARGS];
    args[kind::block_rq_issue::RQ] = rq;
    args[kind::block_rq_issue::BYTES] = rd::<u32>(rq, conf!(request_data_len))? as u64;
    args[kind::block_rq_issue::SECTOR] = rd::<u64>(rq, conf!(request_sector))?;
    args[kind::block_rq_issue::OP] = (rd::<u32>(rq, conf!(request_cmd_flags))? & 0xff) as u64;
    let (ino, dev) = rq_file(rq)?;
    args[kind::block_rq_issue::INO] = ino;
    args[kind::block_rq_issue::DEV] = dev;
    let tgid = match current {
        Some(tgid) => tgid,
        None => {
            // A kernel worker: the request counts when its file is a traced process's.
            if ino == 0 {
                return Ok(());
            }
            let key = FileKey { dev, ino };
            // SAFETY: the values are copied out at once.
            match unsafe { FILES.get(key) } {
                Some(&t) if unsafe { TRACED.get(t) }.is_some() => t,
                _ => return Ok(()),
            }
        }
    };
    let _ = REQUESTS.insert(rq, tgid, 0);
    args[kind::block_rq_issue::OWNER_TGID] = tgid as u64;
    emit(kind::block_rq_issue::ID, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "block_rq_complete")]
pub fn tracer_rq_done(ctx: BtfTracePointContext) -> i32 {
    // block_rq_complete(struct request *rq, blk_status_t error, unsigned int nr_bytes)
    // Runs in interrupt context: the owner comes from the issue.
    let rq: u64 = ctx.arg(0);
    // SAFETY: the value is copied out at once.
    let owner = match unsafe { REQUESTS.get(rq) } {
        Some(tgid) => *tgid,
        None => return 0,
    };
    let _ = REQUESTS.remove(rq);
    let error: u8 = ctx.arg(1);
    let nr_bytes: u32 = ctx.arg(2);
    let mut args = [0u64; EVENT_ARGS];
    args[kind::block_rq_complete::RQ] = rq;
    args[kind::block_rq_complete::NR_BYTES] = nr_bytes as u64;
    args[kind::block_rq_complete::ERROR] = error as u64;
    args[kind::block_rq_complete::OWNER_TGID] = owner as u64;
    emit(kind::block_rq_complete::ID, args, NO_NAME);
    0
}

#[btf_tracepoint(function = "netif_receive_skb")]
pub fn tracer_zc_receive(ctx: BtfTracePointContext) -> i32 {
    if try_netif_receive_skb(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_netif_receive_skb(ctx: &BtfTracePointContext) -> Result<(), i64> {
    // netif_receive_skb(struct sk_buff *skb), in softirq: only skbs recorded as zero-copy at
    // transmit are of interest (one hash lookup for every other packet).
    let skb: u64 = ctx.arg(0);
    let Some(owner) = zc_skb_owner(skb) else {
        return Ok(());
    };
    let head: u64 = rd(skb, conf!(sk_buff_head))?;
    let end: u32 = rd(skb, conf!(sk_buff_end))?;
    let flags: u8 = rd(head + end as u64, conf!(shinfo_flags))?;
    if flags & 1 == 0 {
        return Ok(());
    }
    emit_zc_copy(skb, owner, flags, 0)
}

/// The process whose socket sent `skb` zero-copy (recorded in `ZC_SKBS` at transmit), if
/// any; the record is taken (an skb's pinned pages are copied once).
#[inline(always)]
fn zc_skb_owner(skb: u64) -> Option<u32> {
    // SAFETY: the value is copied out at once.
    let owner = unsafe { ZC_SKBS.get(skb) }.copied()?;
    let _ = ZC_SKBS.remove(skb);
    Some(owner)
}

/// Reports that the kernel copies a zero-copy skb's pinned pages (`via`: 0 or
/// `kind::VIA_FEXIT`).
#[inline(always)]
fn emit_zc_copy(skb: u64, owner: u32, shinfo_flags: u8, via: u64) -> Result<(), i64> {
    let mut args = [0u64; EVENT_ARGS];
    args[kind::zerocopy_receive::SKB] = skb;
    args[kind::zerocopy_receive::DATA_LEN] = rd::<u32>(skb, conf!(sk_buff_data_len))? as u64;
    args[kind::zerocopy_receive::SHINFO_FLAGS] = shinfo_flags as u64;
    args[kind::zerocopy_receive::OWNER_TGID] = owner as u64;
    args[kind::zerocopy_receive::VIA] = via;
    emit(kind::zerocopy_receive::ID, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "mm_filemap_map_pages")]
pub fn tracer_map_pages(ctx: BtfTracePointContext) -> i32 {
    if try_filemap_map_pages(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_filemap_map_pages(ctx: &BtfTracePointContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // mm_filemap_map_pages(struct address_space *mapping, pgoff_t start, pgoff_t end)
    let (ino, dev) = mapping_inode(ctx.arg(0))?;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::filemap_map_pages::INO] = ino;
    args[kind::filemap_map_pages::DEV] = dev;
    args[kind::filemap_map_pages::START] = ctx.arg(1);
    args[kind::filemap_map_pages::END] = ctx.arg(2);
    emit(kind::filemap_map_pages::ID, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "mm_filemap_fault")]
pub fn tracer_fault(ctx: BtfTracePointContext) -> i32 {
    if try_filemap_fault(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_filemap_fault(ctx: &BtfTracePointContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // mm_filemap_fault(struct address_space *mapping, pgoff_t index)
    let (ino, dev) = mapping_inode(ctx.arg(0))?;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::filemap_fault::INO] = ino;
    args[kind::filemap_fault::DEV] = dev;
    args[kind::filemap_fault::INDEX] = ctx.arg(1);
    emit(kind::filemap_fault::ID, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "ext4_da_write_end")]
pub fn tracer_write_end(ctx: BtfTracePointContext) -> i32 {
    if try_ext4_da_write_end(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_ext4_da_write_end(ctx: &BtfTracePointContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // ext4_da_write_end(struct inode *inode, loff_t pos, unsigned int len, unsigned int copied)
    let (ino, dev) = inode_ino_dev(ctx.arg(0))?;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::ext4_da_write_end::INO] = ino;
    args[kind::ext4_da_write_end::DEV] = dev;
    args[kind::ext4_da_write_end::POS] = ctx.arg::<i64>(1) as u64;
    args[kind::ext4_da_write_end::LEN] = ctx.arg::<u32>(2) as u64;
    args[kind::ext4_da_write_end::COPIED] = ctx.arg::<u32>(3) as u64;
    emit(kind::ext4_da_write_end::ID, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "io_uring_submit_req")]
pub fn tracer_iou_submit(ctx: BtfTracePointContext) -> i32 {
    if try_io_uring_submit_req(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

/// The same tracepoint under its name before 6.4: io_uring_submit_sqe(struct io_kiocb
/// *req, bool force_nonblock).
#[btf_tracepoint(function = "io_uring_submit_sqe")]
pub fn tracer_iou_submit_sqe(ctx: BtfTracePointContext) -> i32 {
    if try_io_uring_submit_req(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_io_uring_submit_req(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let Some(tgid) = current_traced() else {
        return Ok(());
    };
    // io_uring_submit_req(struct io_kiocb *req), in the submitting task: req->file is not
    // assigned yet, so the fd is resolved through the submitter's fd table.
    let req: u64 = ctx.arg(0);
    // The low 32 bits (the field is 4 bytes before 6.10, 8 since).
    let flags = rd::<u32>(req, conf!(io_kiocb_flags))? as u64;
    let fd: i32 = rd(req, conf!(io_kiocb_fd))?;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::io_uring_submit_req::USER_DATA] = rd(req, conf!(io_kiocb_user_data))?;
    args[kind::io_uring_submit_req::OPCODE] = rd::<u8>(req, conf!(io_kiocb_opcode))? as u64;
    args[kind::io_uring_submit_req::FD] = fd as u32 as u64;
    args[kind::io_uring_submit_req::FLAGS] = flags;
    args[kind::io_uring_submit_req::REQ] = req;
    // REQ_F_FIXED_FILE (= IOSQE_FIXED_FILE, bit 0): fd indexes the registered files.
    if flags & 1 == 0
        && let Some(file) = fd_file(fd)
    {
        let (ino, mode) = file_inode(file)?;
        args[kind::io_uring_submit_req::INO] = ino;
        args[kind::io_uring_submit_req::MODE] = mode as u64;
        // A send (WRITEV, WRITE_FIXED, SENDMSG, WRITE, SEND, SEND_ZC, SENDMSG_ZC) on a TCP
        // socket: its transmits are the process's from now on, before the send itself
        // runs (kernels without the send tracepoints learn the socket nowhere earlier).
        let opcode = args[kind::io_uring_submit_req::OPCODE];
        if mode & S_IFMT == S_IFSOCK && matches!(opcode, 2 | 5 | 9 | 23 | 26 | 47 | 48) {
            args[kind::io_uring_submit_req::SK] = socket_sk(file, tgid).0;
        } else if mode & S_IFMT == S_IFSOCK {
            args[kind::io_uring_submit_req::SK] = file_sk(file);
        }
    }
    emit(kind::io_uring_submit_req::ID, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "io_uring_complete")]
pub fn tracer_iou_complete(ctx: BtfTracePointContext) -> i32 {
    if try_io_uring_complete(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_io_uring_complete(ctx: &BtfTracePointContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    let mut args = [0u64; EVENT_ARGS];
    args[kind::io_uring_complete::REQ] = ctx.arg(1);
    if conf!(io_uring_complete_cqe) == 1 {
        // io_uring_complete(struct io_ring_ctx *ctx, void *req, struct io_uring_cqe *cqe)
        let cqe: u64 = ctx.arg(2);
        args[kind::io_uring_complete::USER_DATA] = rd(cqe, conf!(io_uring_cqe_user_data))?;
        args[kind::io_uring_complete::RES] = rd::<i32>(cqe, conf!(io_uring_cqe_res))? as i64 as u64;
        args[kind::io_uring_complete::CFLAGS] = rd::<u32>(cqe, conf!(io_uring_cqe_flags))? as u64;
    } else {
        // Before ~6.10: io_uring_complete(void *ctx, void *req, u64 user_data, int res,
        // unsigned cflags, u64 extra1, u64 extra2). (The config is read-only: the verifier
        // drops the branch this kernel's prototype cannot take.)
        args[kind::io_uring_complete::USER_DATA] = ctx.arg(2);
        args[kind::io_uring_complete::RES] = ctx.arg::<i32>(3) as i64 as u64;
        args[kind::io_uring_complete::CFLAGS] = ctx.arg::<u32>(4) as u64;
    }
    emit(kind::io_uring_complete::ID, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "sched_process_fork")]
pub fn tracer_fork(ctx: BtfTracePointContext) -> i32 {
    if try_sched_process_fork(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_sched_process_fork(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let Some(tgid) = current_traced() else {
        return Ok(());
    };
    if conf!(follow_forks) == 0 {
        return Ok(());
    }
    // sched_process_fork(struct task_struct *parent, struct task_struct *child)
    let child: u64 = ctx.arg(1);
    let child_tgid: i32 = rd(child, conf!(task_tgid))?;
    let child_pid: i32 = rd(child, conf!(task_pid))?;
    let child_tgid = child_tgid as u32;
    if child_tgid == tgid {
        // A new thread of a traced process: already covered by its tgid.
        return Ok(());
    }
    let _ = TRACED.insert(child_tgid, 0, 0);
    let mut args = [0u64; EVENT_ARGS];
    args[kind::process_fork::CHILD_TGID] = child_tgid as u64;
    args[kind::process_fork::CHILD_PID] = child_pid as u32 as u64;
    emit(kind::process_fork::ID, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "sched_process_exec")]
pub fn tracer_exec(_ctx: BtfTracePointContext) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    // SAFETY: the flags are copied out at once.
    let flags = unsafe { TRACED.get(tgid) }.copied();
    let mut traced = flags.is_some();
    if flags.is_some_and(|f| f & TRACED_FROM_EXEC != 0) {
        // A command the tracer started: traced from here on.
        let _ = TRACED.insert(tgid, 0, 0);
    }
    if !traced && conf!(match_comm) != 0 {
        // The comm was just set from the new executable's name.
        let comm = bpf_get_current_comm().unwrap_or([0; NAME_LEN]);
        let mut same = true;
        let mut i = 0;
        while i < NAME_LEN {
            // SAFETY: reading a byte of a static array within bounds.
            let want =
                unsafe { core::ptr::read_volatile(core::ptr::addr_of!(CONFIG.target_comm[i])) };
            if comm[i] != want {
                same = false;
                break;
            }
            if want == 0 {
                break;
            }
            i += 1;
        }
        if same {
            let _ = TRACED.insert(tgid, 0, 0);
            traced = true;
        }
    }
    if traced {
        emit(kind::process_exec::ID, [0; EVENT_ARGS], NO_NAME);
    }
    0
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn tracer_exit(ctx: BtfTracePointContext) -> i32 {
    // Forget a traced process when its whole thread group is gone, so a reused pid is not
    // traced: sched_process_exit(struct task_struct *p, bool group_dead) on 6.16+. (The
    // group leader's exit alone is not the end: it may pthread_exit, or a thread may exec.)
    if conf!(exit_has_group_dead) == 0 {
        return 0;
    }
    let group_dead: u8 = ctx.arg(1);
    if group_dead != 0 {
        let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
        let _ = TRACED.remove(tgid);
    }
    0
}

#[fexit(function = "filemap_read")]
pub fn tracer_filemap_read(ctx: FExitContext) -> u32 {
    if try_filemap_read(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_filemap_read(ctx: &FExitContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // ssize_t filemap_read(struct kiocb *iocb, struct iov_iter *iter, ssize_t already_read):
    // its return is what it copied from the page cache (plus already_read).
    let ret: i64 = ctx.ret().map_err(|e| e as i64)?;
    if ret <= 0 {
        return Ok(());
    }
    let iocb: u64 = ctx.arg(0);
    let already: i64 = ctx.arg(2);
    let file: u64 = rd(iocb, conf!(kiocb_ki_filp))?;
    let (ino, _) = file_inode(file)?;
    let iter_type: u8 = rd(ctx.arg::<u64>(1), conf!(iov_iter_iter_type)).unwrap_or(0);
    let mut args = [0u64; EVENT_ARGS];
    args[kind::filemap_read::PIPE] = (iter_type as u32 == conf!(iter_pipe)) as u64;
    args[kind::filemap_read::INO] = ino;
    args[kind::filemap_read::BYTES] = ret as u64;
    args[kind::filemap_read::ALREADY] = already as u64;
    emit(kind::filemap_read::ID, args, NO_NAME);
    Ok(())
}

#[fexit(function = "tcp_sendmsg_locked")]
pub fn tracer_tcp_sendmsg_exit(ctx: FExitContext) -> u32 {
    if try_tcp_sendmsg_exit(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_tcp_sendmsg_exit(ctx: &FExitContext) -> Result<(), i64> {
    let Some(tgid) = current_traced() else {
        return Ok(());
    };
    // int tcp_sendmsg_locked(struct sock *sk, struct msghdr *msg, size_t size)
    let sk: u64 = ctx.arg(0);
    let msg: u64 = ctx.arg(1);
    let ret: i32 = ctx.ret().map_err(|e| e as i64)?;
    let _ = SOCKS.insert(sk, tgid, 0);
    let iter = msg + conf!(msghdr_msg_iter) as u64;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::tcp_sendmsg_exit::SK] = sk;
    args[kind::tcp_sendmsg_exit::RET] = ret as i64 as u64;
    args[kind::tcp_sendmsg_exit::MSG_FLAGS] = rd::<u32>(msg, conf!(msghdr_msg_flags))? as u64;
    args[kind::tcp_sendmsg_exit::ITER_TYPE] = rd::<u8>(iter, conf!(iov_iter_iter_type))? as u64;
    args[kind::tcp_sendmsg_exit::ZC] = zc_inputs(sk, msg)?;
    emit(kind::tcp_sendmsg_exit::ID, args, NO_NAME);
    Ok(())
}

/// The kprobe tier: kretprobe on do_tcp_sendpages (before 6.5, sendfile and splice send
/// page references one page per call through it).
#[kretprobe(function = "do_tcp_sendpages")]
pub fn tracer_sendpages_exit(ctx: RetProbeContext) -> u32 {
    if current_traced().is_none() {
        return 0;
    }
    let ret: i64 = ctx.ret();
    if ret > 0 {
        let mut args = [0u64; EVENT_ARGS];
        args[kind::sendpages_exit::BYTES] = ret as u64;
        emit(kind::sendpages_exit::ID, args, NO_NAME);
    }
    0
}

/// The fentry tier's page-cache lookup, for kernels without the mm_filemap_get_pages
/// tracepoint (before ~6.11): the pages the returned batch holds, clipped to the bytes
/// asked for (the range the tracepoint reports).
#[fexit(function = "filemap_get_pages")]
pub fn tracer_get_pages_exit(ctx: FExitContext) -> u32 {
    if try_get_pages_exit(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_get_pages_exit(ctx: &FExitContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // int filemap_get_pages(struct kiocb *iocb, struct iov_iter *iter, struct folio_batch
    // *fbatch) in 6.1; (iocb, size_t count, fbatch, bool need_uptodate) later.
    let ret: i32 = ctx.ret().map_err(|e| e as i64)?;
    if ret != 0 {
        return Ok(());
    }
    let iocb: u64 = ctx.arg(0);
    let fbatch: u64 = ctx.arg(2);
    let nr: u8 = rd(fbatch, conf!(folio_batch_nr))?;
    if nr == 0 {
        return Ok(());
    }
    let folios = conf!(folio_batch_folios);
    let first: u64 = rd(fbatch, folios)?;
    let last: u64 = rd(fbatch, folios + (nr as u32 - 1) * 8)?;
    let order = folio_order(last)?;
    let last_pages = if order > 20 { 1 } else { 1u64 << order };
    let got_first: u64 = rd(first, conf!(folio_index))?;
    let got_last: u64 = rd::<u64>(last, conf!(folio_index))? + last_pages - 1;
    let pos: i64 = rd(iocb, conf!(kiocb_ki_pos))?;
    let count: u64 = if conf!(get_pages_count_arg) == 1 {
        ctx.arg(1)
    } else {
        rd(ctx.arg::<u64>(1), conf!(iov_iter_count))?
    };
    let pos = pos.max(0) as u64;
    let want_first = pos >> 12;
    let want_last = (pos + count.max(1) - 1) >> 12;
    let index = got_first.max(want_first);
    let last_index = got_last.min(want_last);
    if last_index < index {
        return Ok(());
    }
    let file: u64 = rd(iocb, conf!(kiocb_ki_filp))?;
    // The mapping's host, as mm_filemap_add_to_page_cache names the file.
    let (ino, dev) = mapping_inode(rd(file, conf!(file_f_mapping))?)?;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::filemap_get_pages::INO] = ino;
    args[kind::filemap_get_pages::DEV] = dev;
    args[kind::filemap_get_pages::INDEX] = index;
    args[kind::filemap_get_pages::LAST_INDEX] = last_index;
    args[kind::filemap_get_pages::VIA] = kind::VIA_FEXIT;
    emit(kind::filemap_get_pages::ID, args, NO_NAME);
    Ok(())
}

/// The fentry tier's mmap fault-around, for kernels without the mm_filemap_map_pages
/// tracepoint (before ~6.11): reported where the tracepoint would fire, once the PTE table
/// was mapped (`vmf->pte` set; a fault-around that found no page up to date leaves it
/// unset and lets filemap_fault read the page).
#[fexit(function = "filemap_map_pages")]
pub fn tracer_map_pages_exit(ctx: FExitContext) -> u32 {
    if try_map_pages_exit(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_map_pages_exit(ctx: &FExitContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // vm_fault_t filemap_map_pages(struct vm_fault *vmf, pgoff_t start_pgoff, pgoff_t
    // end_pgoff)
    let vmf: u64 = ctx.arg(0);
    let pte: u64 = rd(vmf, conf!(vm_fault_pte))?;
    if pte == 0 {
        return Ok(());
    }
    let vma: u64 = rd(vmf, conf!(vm_fault_vma))?;
    let file: u64 = rd(vma, conf!(vma_vm_file))?;
    let mapping: u64 = rd(file, conf!(file_f_mapping))?;
    let host: u64 = rd(mapping, conf!(address_space_host))?;
    let (ino, dev) = inode_ino_dev(host)?;
    // The window stops at the file's last page, as the function clamps it (fexit sees
    // the arguments as they were passed).
    let size: i64 = if host == 0 {
        0
    } else {
        rd(host, conf!(inode_i_size))?
    };
    if size <= 0 {
        return Ok(());
    }
    let start: u64 = ctx.arg(1);
    let end = ctx.arg::<u64>(2).min((size as u64 - 1) >> 12);
    if end < start {
        return Ok(());
    }
    let mut args = [0u64; EVENT_ARGS];
    args[kind::filemap_map_pages::INO] = ino;
    args[kind::filemap_map_pages::DEV] = dev;
    args[kind::filemap_map_pages::START] = start;
    args[kind::filemap_map_pages::END] = end;
    args[kind::filemap_map_pages::VIA] = kind::VIA_FEXIT;
    emit(kind::filemap_map_pages::ID, args, NO_NAME);
    Ok(())
}

/// The fentry tier's receive copy: fexit skb_copy_datagram_iter, the function the
/// skb_copy_datagram_iovec tracepoint sits in; reported once the copy succeeded.
#[fexit(function = "skb_copy_datagram_iter")]
pub fn tracer_skb_copy_exit(ctx: FExitContext) -> u32 {
    if current_traced().is_none() {
        return 0;
    }
    // int skb_copy_datagram_iter(const struct sk_buff *skb, int offset, struct iov_iter
    // *to, int len): 0 when all len bytes were copied.
    let ret: i32 = match ctx.ret() {
        Ok(r) => r,
        Err(_) => {
            count_drop(DROP_READ_FAILED);
            return 0;
        }
    };
    if ret == 0 {
        let len: i32 = ctx.arg(3);
        let mut args = [0u64; EVENT_ARGS];
        args[kind::skb_copy_datagram_iovec::SKB] = ctx.arg(0);
        args[kind::skb_copy_datagram_iovec::LEN] = len as i64 as u64;
        args[kind::skb_copy_datagram_iovec::VIA] = kind::VIA_FEXIT;
        emit(kind::skb_copy_datagram_iovec::ID, args, NO_NAME);
    }
    0
}

/// The fentry tier's buffered-write copy (user or pipe pages -> page cache) on any
/// filesystem using the generic write path: fexit generic_perform_write.
#[fexit(function = "generic_perform_write")]
pub fn tracer_perform_write(ctx: FExitContext) -> u32 {
    if try_perform_write(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_perform_write(ctx: &FExitContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // ssize_t generic_perform_write(struct kiocb *iocb, struct iov_iter *i)
    let ret: i64 = ctx.ret().map_err(|e| e as i64)?;
    if ret <= 0 {
        return Ok(());
    }
    let iocb: u64 = ctx.arg(0);
    let (ino, _) = file_inode(rd(iocb, conf!(kiocb_ki_filp))?)?;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::perform_write::INO] = ino;
    args[kind::perform_write::BYTES] = ret as u64;
    emit(kind::perform_write::ID, args, NO_NAME);
    Ok(())
}

/// The fentry tier's pin: fexit skb_zerocopy_iter_stream returns the bytes of user pages
/// it pinned into an skb (MSG_ZEROCOPY, io_uring SEND_ZC).
#[fexit(function = "skb_zerocopy_iter_stream")]
pub fn tracer_zerocopy_pinned(ctx: FExitContext) -> u32 {
    if current_traced().is_none() {
        return 0;
    }
    // int skb_zerocopy_iter_stream(struct sock *sk, struct sk_buff *skb, struct msghdr
    // *msg, int len, struct ubuf_info *uarg, ...)
    let ret: i32 = match ctx.ret() {
        Ok(r) => r,
        Err(_) => {
            count_drop(DROP_READ_FAILED);
            return 0;
        }
    };
    if ret > 0 {
        let mut args = [0u64; EVENT_ARGS];
        args[kind::zerocopy_pinned::SK] = ctx.arg(0);
        args[kind::zerocopy_pinned::BYTES] = ret as u64;
        emit(kind::zerocopy_pinned::ID, args, NO_NAME);
    }
    0
}

/// The fentry tier's deferred copy: fexit skb_copy_ubufs, the copy of a zero-copy skb's
/// pinned pages (on loopback, before local delivery), for skbs a traced socket sent
/// zero-copy (`ZC_SKBS`, recorded at transmit).
#[fexit(function = "skb_copy_ubufs")]
pub fn tracer_copy_ubufs(ctx: FExitContext) -> u32 {
    if try_copy_ubufs(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_copy_ubufs(ctx: &FExitContext) -> Result<(), i64> {
    // int skb_copy_ubufs(struct sk_buff *skb, gfp_t gfp_mask): 0 once the frags are
    // copies (the zero-copy flag is cleared by then).
    let skb: u64 = ctx.arg(0);
    let ret: i32 = ctx.ret().map_err(|e| e as i64)?;
    if ret != 0 {
        return Ok(());
    }
    let Some(owner) = zc_skb_owner(skb) else {
        return Ok(());
    };
    // (The flags are 0: the copy cleared the zero-copy flags.)
    emit_zc_copy(skb, owner, 0, kind::VIA_FEXIT)
}

/// Does nothing: `tracer doctor` loads it against a kernel function to learn whether this
/// kernel lets fentry programs attach at all (this project's CI kernel refuses them).
#[fentry(function = "tcp_sendmsg_locked")]
pub fn tracer_fentry_probe(_ctx: FEntryContext) -> u32 {
    0
}

/// Does nothing: `tracer doctor` attaches it to each kernel function this build's kprobe
/// tier uses, to learn whether this kernel lets a kretprobe attach there.
#[kretprobe]
pub fn tracer_kretprobe_probe(_ctx: RetProbeContext) -> u32 {
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
