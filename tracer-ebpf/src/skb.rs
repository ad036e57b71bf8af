//! Receive-side skb copies: `skb_copy_datagram_iovec` (the copy to the reader) and the
//! deferred copy of zero-copy skbs delivered locally (`netif_receive_skb`, fexit
//! `skb_copy_ubufs`), with fexit `skb_copy_datagram_iter` for the fentry tier.

use aya_ebpf::{
    macros::{btf_tracepoint, fexit},
    programs::{BtfTracePointContext, FExitContext},
};
use tracer_common::{DROP_READ_FAILED, EVENT_ARGS, kind};

use crate::{
    emit::{NO_NAME, count_drop, emit},
    maps::{ZC_SKBS, current_traced},
    read::{SKBFL_ZEROCOPY_ENABLE, rd},
};

#[btf_tracepoint(function = "skb_copy_datagram_iovec")]
pub(crate) fn tracer_skb_copy(ctx: BtfTracePointContext) -> i32 {
    skb_copy_datagram_iovec(&ctx);
    0
}

fn skb_copy_datagram_iovec(ctx: &BtfTracePointContext) {
    if current_traced().is_none() {
        return;
    }
    // skb_copy_datagram_iovec(const struct sk_buff *skb, int len)
    let skb: u64 = ctx.arg(0);
    let len: i32 = ctx.arg(1);
    let mut args = [0u64; EVENT_ARGS];
    args[kind::skb_copy_datagram_iovec::SKB] = skb;
    args[kind::skb_copy_datagram_iovec::LEN] = len as i64 as u64;
    emit(kind::skb_copy_datagram_iovec::ID, args, NO_NAME);
}

/// The fentry tier's receive copy: fexit skb_copy_datagram_iter, the function the
/// skb_copy_datagram_iovec tracepoint sits in; reported once the copy succeeded.
#[fexit(function = "skb_copy_datagram_iter")]
pub(crate) fn tracer_skb_copy_exit(ctx: FExitContext) -> u32 {
    if try_skb_copy_datagram_iter_exit(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_skb_copy_datagram_iter_exit(ctx: &FExitContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // int skb_copy_datagram_iter(const struct sk_buff *skb, int offset, struct iov_iter
    // *to, int len): 0 when all len bytes were copied.
    let ret: i32 = ctx.ret().map_err(|e| e as i64)?;
    if ret == 0 {
        let len: i32 = ctx.arg(3);
        let mut args = [0u64; EVENT_ARGS];
        args[kind::skb_copy_datagram_iovec::SKB] = ctx.arg(0);
        args[kind::skb_copy_datagram_iovec::LEN] = len as i64 as u64;
        args[kind::skb_copy_datagram_iovec::VIA] = kind::VIA_FEXIT;
        emit(kind::skb_copy_datagram_iovec::ID, args, NO_NAME);
    }
    Ok(())
}

#[btf_tracepoint(function = "netif_receive_skb")]
pub(crate) fn tracer_zc_receive(ctx: BtfTracePointContext) -> i32 {
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
    if flags & SKBFL_ZEROCOPY_ENABLE == 0 {
        return Ok(());
    }
    emit_zc_copy(skb, owner, flags, 0)
}

/// The fentry tier's deferred copy: fexit skb_copy_ubufs, the copy of a zero-copy skb's
/// pinned pages (on loopback, before local delivery), for skbs a traced socket sent
/// zero-copy (`ZC_SKBS`, recorded at transmit).
#[fexit(function = "skb_copy_ubufs")]
pub(crate) fn tracer_copy_ubufs(ctx: FExitContext) -> u32 {
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
