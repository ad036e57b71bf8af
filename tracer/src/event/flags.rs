//! Names of the flag bits and codes events carry: `MSG_*`, `skb_shinfo` flags, io_uring
//! opcodes, block operations.
//!
//! UAPI values come from `libc` and the `io-uring` crate where they have them; the others
//! are kernel-internal and written here with where they come from.

use ::io_uring::opcode as op;

/// `MSG_SPLICE_PAGES` (6.5+): kernel-internal, not in the UAPI headers.
pub const MSG_SPLICE_PAGES: u32 = 0x800_0000;
/// `MSG_ZEROCOPY` of send(2)'s flags.
pub const MSG_ZEROCOPY: u32 = libc::MSG_ZEROCOPY as u32;
// The kernel side tests the flag with tracer-common's constant: the same bit.
const _: () = assert!(tracer_common::MSG_ZEROCOPY == MSG_ZEROCOPY as u64);

/// Names of the `MSG_*` bits, in bit order. Those libc lacks are the kernel's own
/// (`include/linux/socket.h`).
pub(super) const MSG_FLAGS: &[(u32, &str)] = &[
    (libc::MSG_OOB as u32, "MSG_OOB"),
    (libc::MSG_PEEK as u32, "MSG_PEEK"),
    (libc::MSG_DONTROUTE as u32, "MSG_DONTROUTE"),
    (libc::MSG_CTRUNC as u32, "MSG_CTRUNC"),
    (0x10, "MSG_PROBE"),
    (libc::MSG_TRUNC as u32, "MSG_TRUNC"),
    (libc::MSG_DONTWAIT as u32, "MSG_DONTWAIT"),
    (libc::MSG_EOR as u32, "MSG_EOR"),
    (libc::MSG_WAITALL as u32, "MSG_WAITALL"),
    (libc::MSG_FIN as u32, "MSG_FIN"),
    (libc::MSG_SYN as u32, "MSG_SYN"),
    (libc::MSG_CONFIRM as u32, "MSG_CONFIRM"),
    (libc::MSG_RST as u32, "MSG_RST"),
    (libc::MSG_ERRQUEUE as u32, "MSG_ERRQUEUE"),
    (libc::MSG_NOSIGNAL as u32, "MSG_NOSIGNAL"),
    (libc::MSG_MORE as u32, "MSG_MORE"),
    (libc::MSG_WAITFORONE as u32, "MSG_WAITFORONE"),
    (0x4_0000, "MSG_BATCH"),
    (0x8_0000, "MSG_NO_SHARED_FRAGS"),
    (0x10_0000, "MSG_SENDPAGE_DECRYPTED"),
    (0x200_0000, "MSG_SOCK_DEVMEM"),
    (MSG_ZEROCOPY, "MSG_ZEROCOPY"),
    (MSG_SPLICE_PAGES, "MSG_SPLICE_PAGES"),
    (libc::MSG_FASTOPEN as u32, "MSG_FASTOPEN"),
    (libc::MSG_CMSG_CLOEXEC as u32, "MSG_CMSG_CLOEXEC"),
];

/// `SKBFL_ZEROCOPY_ENABLE`: the skb's frags are pinned user pages.
const SKBFL_ZEROCOPY_ENABLE: u8 = 1;
/// `SKBFL_SHARED_FRAG`: the frags reference pages others may change (the page cache).
const SKBFL_SHARED_FRAG: u8 = 2;

/// `skb_shinfo(skb)->flags` bits (SKBFL_*, kernel-internal, unchanged through the 6.x
/// series).
pub(super) const SKBFL: &[(u8, &str)] = &[
    (SKBFL_ZEROCOPY_ENABLE, "ZEROCOPY_ENABLE"),
    (SKBFL_SHARED_FRAG, "SHARED_FRAG"),
    (4, "PURE_ZEROCOPY"),
    (8, "DONT_ORPHAN"),
    (16, "MANAGED_FRAG_REFS"),
];

/// `IFF_LOOPBACK` of a device's flags.
pub(super) const IFF_LOOPBACK: u32 = libc::IFF_LOOPBACK as u32;

/// `REQ_F_FIXED_FILE`, bit 0 of `io_kiocb.flags`: the fd indexes the registered files.
pub(super) const REQ_F_FIXED_FILE: u64 = 1;

/// The names of the bits of `value` set in `table`.
pub(super) fn flag_names<T: Copy + Into<u64>>(
    value: T,
    table: &[(T, &'static str)],
) -> Vec<&'static str> {
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
    if shinfo_flags & SKBFL_ZEROCOPY_ENABLE != 0 {
        "zerocopy_pinned"
    } else if shinfo_flags & SKBFL_SHARED_FRAG != 0 {
        "spliced_pages"
    } else {
        "copied"
    }
}

/// io_uring opcodes the tracer names (UAPI values, stable across kernels).
const IO_URING_OPS: &[(u8, &str)] = &[
    (op::Nop::CODE, "NOP"),
    (op::Readv::CODE, "READV"),
    (op::Writev::CODE, "WRITEV"),
    (op::ReadFixed::CODE, "READ_FIXED"),
    (op::WriteFixed::CODE, "WRITE_FIXED"),
    (op::SendMsg::CODE, "SENDMSG"),
    (op::RecvMsg::CODE, "RECVMSG"),
    (op::Read::CODE, "READ"),
    (op::Write::CODE, "WRITE"),
    (op::Send::CODE, "SEND"),
    (op::Recv::CODE, "RECV"),
    (op::Splice::CODE, "SPLICE"),
    (op::SendZc::CODE, "SEND_ZC"),
    (op::SendMsgZc::CODE, "SENDMSG_ZC"),
];

/// The name of an io_uring opcode, or "other" for one the tracer does not name.
pub fn io_uring_op_name(opcode: u8) -> &'static str {
    IO_URING_OPS
        .iter()
        .find(|(code, _)| *code == opcode)
        .map_or("other", |(_, name)| name)
}

/// A block request's operation (`REQ_OP_READ` 0, `REQ_OP_WRITE` 1, kernel-internal).
pub(super) fn block_op_name(op: u8) -> &'static str {
    match op {
        0 => "read",
        1 => "write",
        _ => "other",
    }
}
