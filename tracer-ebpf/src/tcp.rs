//! TCP sends: the `tcp_sendmsg_locked` and `sock_{send,recv}_length` tracepoints, and the
//! fentry and kprobe tiers' views of the same path (fexit `tcp_sendmsg_locked` and
//! `skb_zerocopy_iter_stream`, kretprobe `do_tcp_sendpages`).

use aya_ebpf::{
    macros::{btf_tracepoint, fexit, kretprobe},
    programs::{BtfTracePointContext, FExitContext, RetProbeContext},
};
use tracer_common::{ABSENT, DROP_READ_FAILED, EVENT_ARGS, kind};

use crate::{
    emit::{NO_NAME, count_drop, emit},
    maps::current_traced,
    read::{Btf, IPPROTO_TCP, Kmem, Probe, ld, own_socket, rd, sock_zc_inputs},
};

/// The inputs of tcp_sendmsg_locked's copy / reference / pin decision (KERNEL_PATHS.md
/// §2.5): the socket's SOCK_ZEROCOPY flag (bit 18), `msg->msg_ubuf` (io_uring), and
/// NETIF_F_SG in the route's features; 0 when this kernel's layout is not known.
#[inline(always)]
fn zc_inputs<M: Kmem>(sk: u64, msg: u64) -> Result<u64, i64> {
    use kind::tcp_sendmsg_locked as k;
    let ubuf_off = conf!(msghdr_msg_ubuf);
    if ubuf_off == ABSENT {
        return Ok(0);
    }
    let mut zc = sock_zc_inputs::<M>(sk)?;
    if zc != 0 && M::get::<u64>(msg, ubuf_off)? != 0 {
        zc |= k::ZC_UBUF;
    }
    Ok(zc)
}

#[btf_tracepoint(function = "tcp_sendmsg_locked")]
pub(crate) fn tracer_tcp_sendmsg(ctx: BtfTracePointContext) -> i32 {
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
    own_socket(sk, tgid);
    // The arguments are BTF-typed pointers: their fields are loaded directly.
    let iter = msg + conf!(msghdr_msg_iter) as u64;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::tcp_sendmsg_locked::SK] = sk;
    args[kind::tcp_sendmsg_locked::SKB] = skb;
    args[kind::tcp_sendmsg_locked::ITER_TYPE] = ld::<u8>(iter, conf!(iov_iter_iter_type)) as u64;
    args[kind::tcp_sendmsg_locked::MSG_FLAGS] = ld::<u32>(msg, conf!(msghdr_msg_flags)) as u64;
    args[kind::tcp_sendmsg_locked::MSG_LEFT] = ld::<u64>(iter, conf!(iov_iter_count));
    args[kind::tcp_sendmsg_locked::SIZE_GOAL] = size_goal as i64 as u64;
    args[kind::tcp_sendmsg_locked::ZC] = zc_inputs::<Btf>(sk, msg)?;
    if skb != 0 {
        args[kind::tcp_sendmsg_locked::SKB_LEN] = ld::<u32>(skb, conf!(sk_buff_len)) as u64;
    }
    emit(kind::tcp_sendmsg_locked::ID, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "sock_send_length")]
pub(crate) fn tracer_sock_send(ctx: BtfTracePointContext) -> i32 {
    if try_sock_length(&ctx, kind::sock_send_length::ID).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

#[btf_tracepoint(function = "sock_recv_length")]
pub(crate) fn tracer_sock_recv(ctx: BtfTracePointContext) -> i32 {
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
        args[kind::sock_send_length::FAMILY] = ld::<u16>(sk, family) as u64;
    }
    let protocol = conf!(sock_protocol);
    if protocol != ABSENT {
        args[kind::sock_send_length::PROTOCOL] = ld::<u16>(sk, protocol) as u64;
    }
    // A TCP socket the process sends on is its own (SOCKS), as at sys_enter.
    let tcp = protocol == ABSENT || args[kind::sock_send_length::PROTOCOL] == IPPROTO_TCP as u64;
    if id == kind::sock_send_length::ID && tcp {
        own_socket(sk, tgid);
    }
    emit(id, args, NO_NAME);
    Ok(())
}

#[fexit(function = "tcp_sendmsg_locked")]
pub(crate) fn tracer_tcp_sendmsg_exit(ctx: FExitContext) -> u32 {
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
    own_socket(sk, tgid);
    let iter = msg + conf!(msghdr_msg_iter) as u64;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::tcp_sendmsg_exit::SK] = sk;
    args[kind::tcp_sendmsg_exit::RET] = ret as i64 as u64;
    args[kind::tcp_sendmsg_exit::MSG_FLAGS] = rd::<u32>(msg, conf!(msghdr_msg_flags))? as u64;
    args[kind::tcp_sendmsg_exit::ITER_TYPE] = rd::<u8>(iter, conf!(iov_iter_iter_type))? as u64;
    args[kind::tcp_sendmsg_exit::ZC] = zc_inputs::<Probe>(sk, msg)?;
    emit(kind::tcp_sendmsg_exit::ID, args, NO_NAME);
    Ok(())
}

/// The kprobe tier: kretprobe on do_tcp_sendpages (before 6.5, sendfile and splice send
/// page references one page per call through it).
#[kretprobe(function = "do_tcp_sendpages")]
pub(crate) fn tracer_sendpages_exit(ctx: RetProbeContext) -> u32 {
    do_tcp_sendpages_exit(&ctx);
    0
}

fn do_tcp_sendpages_exit(ctx: &RetProbeContext) {
    if current_traced().is_none() {
        return;
    }
    let ret: i64 = ctx.ret();
    if ret > 0 {
        let mut args = [0u64; EVENT_ARGS];
        args[kind::sendpages_exit::BYTES] = ret as u64;
        emit(kind::sendpages_exit::ID, args, NO_NAME);
    }
}

/// The fentry tier's pin: fexit skb_zerocopy_iter_stream returns the bytes of user pages
/// it pinned into an skb (MSG_ZEROCOPY, io_uring SEND_ZC).
#[fexit(function = "skb_zerocopy_iter_stream")]
pub(crate) fn tracer_zerocopy_pinned(ctx: FExitContext) -> u32 {
    if try_zerocopy_iter_stream_exit(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_zerocopy_iter_stream_exit(ctx: &FExitContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // int skb_zerocopy_iter_stream(struct sock *sk, struct sk_buff *skb, struct msghdr
    // *msg, int len, struct ubuf_info *uarg, ...)
    let ret: i32 = ctx.ret().map_err(|e| e as i64)?;
    if ret > 0 {
        let mut args = [0u64; EVENT_ARGS];
        args[kind::zerocopy_pinned::SK] = ctx.arg(0);
        args[kind::zerocopy_pinned::BYTES] = ret as u64;
        emit(kind::zerocopy_pinned::ID, args, NO_NAME);
    }
    Ok(())
}
