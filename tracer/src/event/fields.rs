//! The fields of each kind of event, in output order: what `trace --json` and the text
//! lines print after the common header.

use tracer_common::kind;

use super::{
    Event, FdRef, KernelConsts, Payload,
    display::Value::{self, *},
    flags::{
        IFF_LOOPBACK, MSG_FLAGS, REQ_F_FIXED_FILE, SKBFL, block_op_name, flag_names,
        io_uring_op_name, send_payload, skb_payload,
    },
};
use crate::syscalls;

/// An event's fields, after the common header.
type Fields = Vec<(&'static str, Value)>;

impl Event {
    /// The event's fields in output order, after the common header.
    pub fn fields(&self, consts: &KernelConsts) -> Vec<(&'static str, Value)> {
        let mut f: Fields = Vec::with_capacity(12);
        let p = &self.payload;
        match p {
            Payload::SyscallEnter { nr, args, fds } => syscall_enter(&mut f, *nr, args, fds),
            Payload::SyscallExit { nr, ret } => {
                f.push(("syscall", value(syscalls::exit_name(*nr))));
                f.push(("nr", U(*nr as u64)));
                f.push(("ret", I(*ret)));
            }
            Payload::TcpSendmsgLocked { .. } => tcp_sendmsg_locked(&mut f, p, consts),
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
            Payload::FilemapGetPages { .. } => filemap_get_pages(&mut f, p),
            Payload::FilemapAddToPageCache { .. } => filemap_add_to_page_cache(&mut f, p),
            Payload::NetDevStartXmit { .. } => net_dev_start_xmit(&mut f, p),
            Payload::BlockRqIssue { .. } => block_rq_issue(&mut f, p),
            Payload::BlockRqComplete { .. } => block_rq_complete(&mut f, p),
            Payload::ProcessFork {
                child_pid,
                child_tid,
            } => {
                f.push(("child_pid", U(*child_pid as u64)));
                f.push(("child_tid", U(*child_tid as u64)));
            }
            Payload::ProcessExec => {}
            Payload::IoUringSubmit { .. } => io_uring_submit(&mut f, p),
            Payload::IoUringComplete { .. } => io_uring_complete(&mut f, p),
            Payload::FilemapMapPages { .. } => filemap_map_pages(&mut f, p),
            Payload::FilemapFault { ino, dev, index } => {
                file(&mut f, *ino, *dev);
                f.push(("index", U(*index)));
            }
            Payload::Ext4DaWriteEnd { .. } => ext4_da_write_end(&mut f, p),
            Payload::SendpagesExit { bytes } => f.push(("bytes", U(*bytes))),
            Payload::PerformWrite { ino, bytes } => {
                f.push(("ino", U(*ino)));
                f.push(("bytes", U(*bytes)));
            }
            Payload::ZerocopyPinned { sk, bytes } => {
                f.push(("sk", Ptr(*sk)));
                f.push(("bytes", U(*bytes)));
            }
            Payload::TcpSendmsgExit { .. } => tcp_sendmsg_exit(&mut f, p),
            Payload::FilemapRead { .. } => filemap_read(&mut f, p),
            Payload::ZerocopyReceive { .. } => zerocopy_receive(&mut f, p),
            Payload::TcpRetransmit {
                sk,
                skb,
                len,
                err,
                owner_pid,
            } => {
                f.push(("sk", Ptr(*sk)));
                f.push(("skb", Ptr(*skb)));
                f.push(("len", U(*len as u64)));
                f.push(("err", I(*err as i64)));
                f.push(("owner_pid", U(*owner_pid as u64)));
            }
        }
        f
    }
}

// Each function below is called by `Event::fields` for its own kind only.

fn syscall_enter(f: &mut Fields, nr: u32, args: &[u64; 6], fds: &[FdRef; 2]) {
    let name = syscall_name(nr);
    let decoded = match &name {
        Static(n) => syscall_args(n),
        _ => None,
    };
    f.push(("syscall", name));
    f.push(("nr", U(nr as u64)));
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
    let (a, b) = tracer_common::fd_args(nr as u64);
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
        zc_fields(f, fds[0].zc, false);
    }
}

fn tcp_sendmsg_locked(f: &mut Fields, p: &Payload, consts: &KernelConsts) {
    let Payload::TcpSendmsgLocked {
        sk,
        skb,
        iter_type,
        msg_flags,
        msg_left,
        size_goal,
        skb_len,
        zc,
    } = p
    else {
        return;
    };
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
    send_flags(f, *msg_flags);
    f.push(("msg_left", U(*msg_left)));
    f.push(("size_goal", I(*size_goal as i64)));
    f.push(("skb_len", U(*skb_len as u64)));
    if *zc as u64 & kind::tcp_sendmsg_locked::ZC_KNOWN != 0 {
        zc_fields(f, *zc, true);
    }
}

fn tcp_sendmsg_exit(f: &mut Fields, p: &Payload) {
    let Payload::TcpSendmsgExit {
        sk,
        ret,
        msg_flags,
        iter_type,
        zc,
    } = p
    else {
        return;
    };
    f.push(("sk", Ptr(*sk)));
    f.push(("ret", I(*ret as i64)));
    f.push(("iter_type", U(*iter_type as u64)));
    send_flags(f, *msg_flags);
    f.push(("zc", Ptr(*zc as u64)));
}

/// A TCP send's `msg_flags`: the word, its bits by name, and what they make of the payload.
fn send_flags(f: &mut Fields, msg_flags: u32) {
    f.push(("msg_flags", Ptr(msg_flags as u64)));
    f.push(("flags", List(flag_names(msg_flags, MSG_FLAGS))));
    f.push(("payload", Static(send_payload(msg_flags))));
}

/// A zero-copy decision's inputs (`kind::tcp_sendmsg_locked::ZC*`) as fields; the
/// io_uring buffer only where the hook can see one (`with_buffer`).
fn zc_fields(f: &mut Fields, zc: u8, with_buffer: bool) {
    use kind::tcp_sendmsg_locked as k;
    let has = |bit: u64| Static(yes_no(zc as u64 & bit != 0));
    f.push(("so_zerocopy", has(k::ZC_SOCK)));
    if with_buffer {
        f.push(("zerocopy_buffer", has(k::ZC_UBUF)));
    }
    f.push(("scatter_gather", has(k::ZC_SG)));
}

fn net_dev_start_xmit(f: &mut Fields, p: &Payload) {
    let Payload::NetDevStartXmit {
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
        header_len,
        seq,
        software_dev,
    } = p
    else {
        return;
    };
    f.push(("skb", Ptr(*skb)));
    f.push(("sk", Ptr(*sk)));
    f.push(("dev", Str(dev.clone())));
    f.push(("ifindex", I(*ifindex as i64)));
    f.push(("loopback", Static(yes_no(dev_flags & IFF_LOOPBACK != 0))));
    f.push(("software_dev", Static(yes_no(*software_dev))));
    f.push(("len", U(*len as u64)));
    f.push(("data_len", U(*data_len as u64)));
    f.push(("header_len", U(*header_len as u64)));
    f.push(("seq", U(*seq as u64)));
    f.push(("nr_frags", U(*nr_frags as u64)));
    f.push(("shinfo_flags", Ptr(*shinfo_flags as u64)));
    f.push(("skbfl", List(flag_names(*shinfo_flags, SKBFL))));
    f.push(("payload", Static(skb_payload(*shinfo_flags))));
    f.push(("owner_pid", U(*owner_pid as u64)));
}

fn zerocopy_receive(f: &mut Fields, p: &Payload) {
    let Payload::ZerocopyReceive {
        skb,
        data_len,
        shinfo_flags,
        owner_pid,
        ..
    } = p
    else {
        return;
    };
    f.push(("skb", Ptr(*skb)));
    f.push(("data_len", U(*data_len as u64)));
    f.push(("shinfo_flags", Ptr(*shinfo_flags as u64)));
    f.push(("owner_pid", U(*owner_pid as u64)));
}

/// A file by inode number and device.
fn file(f: &mut Fields, ino: u64, dev: u32) {
    f.push(("ino", U(ino)));
    f.push(("dev", Str(dev_name(dev))));
}

fn filemap_get_pages(f: &mut Fields, p: &Payload) {
    let Payload::FilemapGetPages {
        ino,
        dev,
        index,
        last_index,
        ..
    } = p
    else {
        return;
    };
    file(f, *ino, *dev);
    f.push(("index", U(*index)));
    f.push(("last_index", U(*last_index)));
}

fn filemap_add_to_page_cache(f: &mut Fields, p: &Payload) {
    let Payload::FilemapAddToPageCache {
        ino,
        dev,
        index,
        order,
    } = p
    else {
        return;
    };
    file(f, *ino, *dev);
    f.push(("index", U(*index)));
    match order {
        Some(o) => {
            f.push(("order", U(*o as u64)));
            f.push(("bytes", U(4096u64 << o)));
        }
        None => f.push(("order", Static("unknown"))),
    }
}

fn filemap_map_pages(f: &mut Fields, p: &Payload) {
    let Payload::FilemapMapPages {
        ino,
        dev,
        start,
        end,
        ..
    } = p
    else {
        return;
    };
    file(f, *ino, *dev);
    f.push(("start", U(*start)));
    f.push(("end", U(*end)));
}

fn filemap_read(f: &mut Fields, p: &Payload) {
    let Payload::FilemapRead {
        ino,
        bytes,
        already,
        pipe,
    } = p
    else {
        return;
    };
    f.push(("ino", U(*ino)));
    f.push(("bytes", U(*bytes)));
    f.push(("already_read", U(*already)));
    f.push(("into", Static(if *pipe { "pipe" } else { "iterator" })));
}

fn ext4_da_write_end(f: &mut Fields, p: &Payload) {
    let Payload::Ext4DaWriteEnd {
        ino,
        dev,
        pos,
        len,
        copied,
    } = p
    else {
        return;
    };
    file(f, *ino, *dev);
    f.push(("pos", I(*pos)));
    f.push(("len", U(*len as u64)));
    f.push(("copied", U(*copied as u64)));
}

fn block_rq_issue(f: &mut Fields, p: &Payload) {
    let Payload::BlockRqIssue {
        rq,
        bytes,
        sector,
        op,
        ino,
        dev,
        owner_pid,
    } = p
    else {
        return;
    };
    f.push(("rq", Ptr(*rq)));
    f.push(("op", Static(block_op_name(*op))));
    f.push(("bytes", U(*bytes as u64)));
    f.push(("sector", U(*sector)));
    file(f, *ino, *dev);
    f.push(("owner_pid", U(*owner_pid as u64)));
}

fn block_rq_complete(f: &mut Fields, p: &Payload) {
    let Payload::BlockRqComplete {
        rq,
        nr_bytes,
        error,
        owner_pid,
    } = p
    else {
        return;
    };
    f.push(("rq", Ptr(*rq)));
    f.push(("nr_bytes", U(*nr_bytes as u64)));
    f.push(("error", U(*error as u64)));
    f.push(("owner_pid", U(*owner_pid as u64)));
}

fn io_uring_submit(f: &mut Fields, p: &Payload) {
    let Payload::IoUringSubmit {
        user_data,
        opcode,
        fd,
        flags,
        file,
        sk,
        req,
    } = p
    else {
        return;
    };
    f.push(("req", Ptr(*req)));
    f.push(("user_data", Ptr(*user_data)));
    f.push(("opcode", U(*opcode as u64)));
    f.push(("op", Static(io_uring_op_name(*opcode))));
    f.push(("fd", I(*fd as i64)));
    f.push(("fixed_file", Static(yes_no(flags & REQ_F_FIXED_FILE != 0))));
    f.push(("fd_kind", Static(file.kind_name())));
    f.push(("fd_ino", U(file.ino)));
    if *sk != 0 {
        f.push(("sk", Ptr(*sk)));
    }
}

fn io_uring_complete(f: &mut Fields, p: &Payload) {
    let Payload::IoUringComplete {
        user_data,
        res,
        cflags,
        req,
    } = p
    else {
        return;
    };
    f.push(("req", Ptr(*req)));
    f.push(("user_data", Ptr(*user_data)));
    f.push(("res", I(*res as i64)));
    f.push(("cflags", Ptr(*cflags as u64)));
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
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
    value(syscalls::name(nr))
}

fn value(name: std::borrow::Cow<'static, str>) -> Value {
    match name {
        std::borrow::Cow::Borrowed(n) => Static(n),
        std::borrow::Cow::Owned(n) => Str(n),
    }
}
