//! `net_dev_start_xmit`: the skbs a traced process's sockets hand to a device, attributed
//! through `SOCKS` (the current task is often another process, or softirq).

use aya_ebpf::{
    helpers::bpf_probe_read_kernel_buf, macros::btf_tracepoint, programs::BtfTracePointContext,
};
use tracer_common::{DROP_READ_FAILED, EVENT_ARGS, NAME_LEN, kind};

use crate::{
    emit::{count_drop, emit},
    maps::{SOCKS, TRACED, ZC_SKBS},
    read::{SKBFL_ZEROCOPY_ENABLE, ld, rd},
};

#[btf_tracepoint(function = "net_dev_start_xmit")]
pub(crate) fn tracer_xmit(ctx: BtfTracePointContext) -> i32 {
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
    // Both arguments are BTF-typed: their fields are loaded directly.
    let sk: u64 = ld(skb, conf!(sk_buff_sk));
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
    let head: u64 = ld(skb, conf!(sk_buff_head));
    // On 64-bit, skb->end is an offset from head (NET_SKBUFF_DATA_USES_OFFSET).
    let end: u32 = ld(skb, conf!(sk_buff_end));
    let shinfo = head + end as u64;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::net_dev_start_xmit::SKB] = skb;
    args[kind::net_dev_start_xmit::SK] = sk;
    args[kind::net_dev_start_xmit::LEN] = ld::<u32>(skb, conf!(sk_buff_len)) as u64;
    args[kind::net_dev_start_xmit::DATA_LEN] = ld::<u32>(skb, conf!(sk_buff_data_len)) as u64;
    args[kind::net_dev_start_xmit::SHINFO_FLAGS] = rd::<u8>(shinfo, conf!(shinfo_flags))? as u64;
    args[kind::net_dev_start_xmit::NR_FRAGS] = rd::<u8>(shinfo, conf!(shinfo_nr_frags))? as u64;
    args[kind::net_dev_start_xmit::IFINDEX] = ld::<i32>(dev, conf!(net_device_ifindex)) as u64;
    let parent: u64 = ld(dev, conf!(net_device_parent));
    args[kind::net_dev_start_xmit::DEV_FLAGS] = ld::<u32>(dev, conf!(net_device_flags)) as u64
        | if parent == 0 {
            kind::net_dev_start_xmit::SOFTWARE_DEV
        } else {
            0
        };
    args[kind::net_dev_start_xmit::OWNER_TGID] = owner as u64;
    args[kind::net_dev_start_xmit::TCP] = tcp_header(skb, head).unwrap_or(0);
    if args[kind::net_dev_start_xmit::SHINFO_FLAGS] & SKBFL_ZEROCOPY_ENABLE as u64 != 0 {
        let _ = ZC_SKBS.insert(skb, owner, 0);
    }
    let mut name = [0u8; NAME_LEN];
    let name_ptr = (dev + conf!(net_device_name) as u64) as *const u8;
    // SAFETY: reads at most NAME_LEN bytes into a local array; errors leave it zeroed.
    let _ = unsafe { bpf_probe_read_kernel_buf(name_ptr, &mut name) };
    emit(kind::net_dev_start_xmit::ID, args, name);
    Ok(())
}

/// `skb->transport_header` of an skb that has none.
const NO_TRANSPORT_HEADER: u16 = 0xffff;

/// `kind::net_dev_start_xmit::TCP`: the bytes of headers at the start of a TCP skb's
/// linear part, from `skb->data` (the link-layer header at a transmit) to the end of the
/// TCP header (its data offset, in 32-bit words, is the high nibble of its 13th byte), and
/// the segment's sequence number (bytes 4-7, big-endian). What follows the headers in the
/// linear part is payload the CPU copied there (a device without scatter-gather gets
/// linear skbs).
fn tcp_header(skb: u64, head: u64) -> Option<u64> {
    let data: u64 = ld(skb, conf!(sk_buff_data));
    let transport: u16 = ld(skb, conf!(sk_buff_transport_header));
    if transport == NO_TRANSPORT_HEADER {
        return None;
    }
    let tcp = head + transport as u64;
    let doff: u8 = rd(tcp, 12).ok()?;
    let seq: u32 = rd(tcp, 4).ok()?;
    let before = tcp.checked_sub(data)?;
    let len = (before + ((doff >> 4) as u64) * 4) & 0xffff;
    Some(len | ((u32::from_be(seq) as u64) << 32))
}
