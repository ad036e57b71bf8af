//! `tcp_retransmit_skb`: TCP sent an skb of a traced process's socket again. Counted
//! apart from the first transmits, so that the bytes a transfer sent are not inflated by
//! loopback's (or a lossy link's) retransmits; attributed through `SOCKS`, as transmits
//! are (timers and softirq retransmit in whatever task is current).

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use tracer_common::{EVENT_ARGS, kind};

use crate::{
    emit::{NO_NAME, emit},
    maps::{SOCKS, TRACED},
    read::ld,
};

#[btf_tracepoint(function = "tcp_retransmit_skb")]
pub(crate) fn tracer_retransmit(ctx: BtfTracePointContext) -> i32 {
    tcp_retransmit_skb(&ctx);
    0
}

fn tcp_retransmit_skb(ctx: &BtfTracePointContext) {
    // tcp_retransmit_skb(const struct sock *sk, const struct sk_buff *skb[, int err]):
    // both pointers are BTF-typed, their fields loaded directly.
    let sk: u64 = ctx.arg(0);
    // SAFETY: the value is copied out at once.
    let owner = match unsafe { SOCKS.get(sk) } {
        Some(tgid) => *tgid,
        None => return,
    };
    // SAFETY: only tested for presence (a freed socket's memory may be reused).
    if unsafe { TRACED.get(owner) }.is_none() {
        return;
    }
    let skb: u64 = ctx.arg(1);
    let mut args = [0u64; EVENT_ARGS];
    args[kind::tcp_retransmit::SK] = sk;
    args[kind::tcp_retransmit::SKB] = skb;
    args[kind::tcp_retransmit::LEN] = ld::<u32>(skb, conf!(sk_buff_len)) as u64;
    // 6.12+ pass the error (the tracepoint fires for failed attempts too); reading a third
    // argument where the prototype has two is refused by the verifier.
    if conf!(retransmit_has_err) != 0 {
        let err: i32 = ctx.arg(2);
        args[kind::tcp_retransmit::ERR] = err as i64 as u64;
    }
    args[kind::tcp_retransmit::OWNER_TGID] = owner as u64;
    emit(kind::tcp_retransmit::ID, args, NO_NAME);
}
