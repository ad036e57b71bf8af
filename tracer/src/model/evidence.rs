//! How a step is known: observed by which probes, or inferred from what. The facts are
//! types that code and tests match on; their wording (the text, and the strings of the
//! JSON) comes from `Display` and is never matched back.

use std::fmt;

use serde::{Serialize, Serializer};

/// How a step is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evidence {
    /// Seen directly, by these probes.
    Observed(Seen),
    /// Derived, from what the inference says.
    Inferred(Inference),
}

/// The probes that saw a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// The `sys_enter` tracepoint: a syscall's entry.
    SysEnter,
    /// The `sys_exit` tracepoint: a syscall's return.
    SysExit,
    /// fexit `filemap_read`: a read's page cache -> user copy.
    FexitFilemapRead,
    /// fexit `filemap_read` into a pipe's iterator (a splice read before 6.5): page
    /// references, not a copy.
    FexitFilemapReadIntoPipe,
    /// The `skb_copy_datagram_iovec` tracepoint: a receive's skb -> user copy.
    SkbCopyDatagramIovec,
    /// fexit `skb_copy_datagram_iter`: a receive's skb -> user copy, once it succeeded.
    FexitSkbCopyDatagramIter,
    /// The `ext4_da_write_end` tracepoint: a buffered write into ext4's page cache.
    Ext4DaWriteEnd,
    /// fexit `generic_perform_write`: a buffered write into any filesystem's page cache.
    FexitGenericPerformWrite,
    /// fexit `skb_zerocopy_iter_stream`: the bytes a zero-copy send pinned.
    FexitSkbZerocopyIterStream,
    /// kretprobe `do_tcp_sendpages`: page references sent through ->sendpage (before 6.5).
    KretprobeDoTcpSendpages,
    /// The `net_dev_start_xmit` tracepoint: an skb handed to a device.
    NetDevStartXmit,
    /// fexit `skb_copy_ubufs`: loopback's copy of a zero-copy skb's pinned pages.
    FexitSkbCopyUbufs,
    /// The `net_dev_start_xmit` tracepoint saw the payload in the skb's linear part: the
    /// kernel copied it out of the frags for a device without scatter-gather.
    LinearXmit,
    /// The `block_rq_issue` tracepoint: a disk read.
    BlockRqIssue,
    /// A page-cache lookup, by `probe`; `with_adds`: some of its pages (its misses) were
    /// seen added by `mm_filemap_add_to_page_cache`.
    Lookup { probe: LookupProbe, with_adds: bool },
    /// A TCP send call's copy / reference / pin decision, by `tcp_sendmsg_locked`: fexit
    /// (the whole call), or the tracepoint with `sock_send_length`'s bytes.
    TcpSendmsg { fexit: bool, decision: SendDecision },
    /// A MSG_ZEROCOPY send (the `tcp_sendmsg_locked` tracepoint) whose skbs
    /// `net_dev_start_xmit` saw flagged zero-copy.
    TcpSendmsgZerocopyXmit,
}

/// The probe that saw a page-cache lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupProbe {
    /// The `mm_filemap_get_pages` tracepoint (read, splice, sendfile, copy_file_range).
    MmFilemapGetPages,
    /// fexit `filemap_get_pages`.
    FexitFilemapGetPages,
    /// The `mm_filemap_map_pages` tracepoint (mmap fault-around).
    MmFilemapMapPages,
    /// fexit `filemap_map_pages`.
    FexitFilemapMapPages,
}

/// What a TCP send call asked for and what the kernel decided, as `tcp_sendmsg_locked`
/// saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendDecision {
    /// MSG_SPLICE_PAGES: page references (sendfile, splice).
    SplicePages,
    /// No zero-copy flag: the kernel copies.
    Plain,
    /// MSG_ZEROCOPY, pinned (fexit sees the call's result).
    ZerocopyPinned,
    /// MSG_ZEROCOPY with an io_uring zero-copy buffer: pinned.
    ZerocopyUbuf,
    /// MSG_ZEROCOPY on an SO_ZEROCOPY socket (that can scatter-gather): pinned.
    ZerocopySocket,
    /// MSG_ZEROCOPY without SO_ZEROCOPY or scatter-gather: the kernel copies.
    ZerocopyCopied,
}

/// What a step is inferred from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inference {
    /// read() of a regular file returned its bytes (the copy has no tracepoint).
    FileReadReturned,
    /// A receive returned its bytes.
    ReceiveReturned,
    /// write() to a regular file returned its bytes.
    FileWriteReturned,
    /// splice() from a file into a pipe returned its bytes (page references).
    SpliceReadReturned,
    /// copy_file_range, or sendfile to a file, returned its bytes and no buffered write
    /// was seen.
    FileCopyReturned,
    /// A zero-copy send pins all its bytes, but fexit skb_zerocopy_iter_stream saw only
    /// part of them.
    PinsPartlySeen,
    /// send(MSG_ZEROCOPY) returned (no send hook) on a socket without SO_ZEROCOPY or
    /// scatter-gather: copied.
    ZerocopyReturnedCopied,
    /// send(MSG_ZEROCOPY) returned (no send hook) on an SO_ZEROCOPY socket that can
    /// scatter-gather: pinned.
    ZerocopyReturnedPinned,
    /// send(MSG_ZEROCOPY) returned (no send hook), the socket's inputs unknown: pinned
    /// if it has SO_ZEROCOPY.
    ZerocopyReturned,
    /// A plain send returned its bytes (no send tracepoint): a copy.
    SendReturned,
    /// sendfile() to a socket returned its bytes (no send tracepoint): page references.
    SendfileReturned,
    /// splice() into a socket returned its bytes (no send tracepoint): page references.
    SpliceSendReturned,
    /// A zero-copy skb reached netif_receive_skb on loopback: the kernel copies its
    /// pinned pages before delivery.
    LoopbackCopiesPins,
    /// An io_uring READ of a regular file completed with its bytes (the copy has no
    /// tracepoint).
    IoUringReadCompleted,
    /// MSG_ZEROCOPY, and the socket's skbs were transmitted zero-copy.
    ZerocopyTransmitted,
    /// MSG_ZEROCOPY, but the call's skbs went out copied.
    ZerocopyTransmittedCopied,
    /// sendfile or splice into a socket (no tcp_sendmsg_locked tracepoint): page
    /// references.
    SpliceSends,
    /// A plain send (no tcp_sendmsg_locked tracepoint): a copy.
    PlainSend,
}

impl SendDecision {
    /// The qualifier after the probe's name.
    fn words(self) -> &'static str {
        match self {
            Self::SplicePages => "MSG_SPLICE_PAGES",
            Self::Plain => "no zero-copy flag",
            Self::ZerocopyPinned => "MSG_ZEROCOPY, pinned",
            Self::ZerocopyUbuf => "MSG_ZEROCOPY with an io_uring zero-copy buffer",
            Self::ZerocopySocket => "MSG_ZEROCOPY on an SO_ZEROCOPY socket",
            Self::ZerocopyCopied => {
                "MSG_ZEROCOPY without SO_ZEROCOPY or scatter-gather: the kernel copies"
            }
        }
    }
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let probes = match self {
            Self::SysEnter => "sys_enter",
            Self::SysExit => "sys_exit",
            Self::FexitFilemapRead => "fexit filemap_read",
            Self::FexitFilemapReadIntoPipe => "fexit filemap_read (into the pipe: page references)",
            Self::SkbCopyDatagramIovec => "skb_copy_datagram_iovec",
            Self::FexitSkbCopyDatagramIter => "fexit skb_copy_datagram_iter",
            Self::Ext4DaWriteEnd => "ext4_da_write_end",
            Self::FexitGenericPerformWrite => "fexit generic_perform_write",
            Self::FexitSkbZerocopyIterStream => "fexit skb_zerocopy_iter_stream",
            Self::KretprobeDoTcpSendpages => "kretprobe do_tcp_sendpages",
            Self::NetDevStartXmit => "net_dev_start_xmit",
            Self::FexitSkbCopyUbufs => "fexit skb_copy_ubufs",
            Self::LinearXmit => {
                "net_dev_start_xmit (a linear skb: copied out of the frags for a device \
                 without scatter-gather)"
            }
            Self::BlockRqIssue => "block_rq_issue",
            Self::Lookup { probe, with_adds } => {
                f.write_str(match probe {
                    LookupProbe::MmFilemapGetPages => "mm_filemap_get_pages",
                    LookupProbe::FexitFilemapGetPages => "fexit filemap_get_pages",
                    LookupProbe::MmFilemapMapPages => "mm_filemap_map_pages",
                    LookupProbe::FexitFilemapMapPages => "fexit filemap_map_pages",
                })?;
                return if *with_adds {
                    f.write_str(", mm_filemap_add_to_page_cache")
                } else {
                    Ok(())
                };
            }
            Self::TcpSendmsg { fexit, decision } => {
                let what = decision.words();
                // The tracepoint's bytes come from sock_send_length; a copied MSG_ZEROCOPY
                // send has always been worded without it (the reports keep their text).
                return match (fexit, decision) {
                    (true, _) => write!(f, "fexit tcp_sendmsg_locked ({what})"),
                    (false, SendDecision::ZerocopyCopied) => {
                        write!(f, "tcp_sendmsg_locked ({what})")
                    }
                    (false, _) => write!(f, "tcp_sendmsg_locked ({what}), sock_send_length"),
                };
            }
            Self::TcpSendmsgZerocopyXmit => {
                "tcp_sendmsg_locked (MSG_ZEROCOPY), net_dev_start_xmit (skb zero-copy flag)"
            }
        };
        f.write_str(probes)
    }
}

impl fmt::Display for Inference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::FileReadReturned => {
                "read() of a regular file returned this many bytes (the page cache -> user copy has no tracepoint)"
            }
            Self::ReceiveReturned => "the receive returned this many bytes",
            Self::FileWriteReturned => "write() to a regular file returned this many bytes",
            Self::SpliceReadReturned => {
                "splice() from a file into a pipe returned this many bytes (the splice read takes page references, in filemap_splice_read or, before 6.5, filemap_read into the pipe; no tracepoint)"
            }
            Self::FileCopyReturned => {
                "the call returned this many bytes (no buffered write seen: the filesystem shared the extents, or its write path has no probe here)"
            }
            Self::PinsPartlySeen => {
                "a zero-copy send pins all its bytes; fexit skb_zerocopy_iter_stream saw only part of them (events lost?)"
            }
            Self::ZerocopyReturnedCopied => {
                "send(MSG_ZEROCOPY) returned this many bytes (no send hook on this kernel) on a socket without SO_ZEROCOPY or scatter-gather: the kernel copies"
            }
            Self::ZerocopyReturnedPinned => {
                "send(MSG_ZEROCOPY) returned this many bytes (no send hook on this kernel) on an SO_ZEROCOPY socket that can scatter-gather: pinned"
            }
            Self::ZerocopyReturned => {
                "send(MSG_ZEROCOPY) returned this many bytes (no send hook on this kernel; pinned if the socket has SO_ZEROCOPY)"
            }
            Self::SendReturned => {
                "the send returned this many bytes (no send tracepoint on this kernel): a plain send copies"
            }
            Self::SendfileReturned => {
                "sendfile() returned this many bytes (no send tracepoint on this kernel): it sends page references"
            }
            Self::SpliceSendReturned => {
                "splice() into the socket returned this many bytes (no send tracepoint on this kernel): it sends page references"
            }
            Self::LoopbackCopiesPins => {
                "a zero-copy skb reached netif_receive_skb on loopback: the kernel copies the pinned pages (skb_copy_ubufs) before local delivery"
            }
            Self::IoUringReadCompleted => {
                "an io_uring READ of a regular file completed with this many bytes (the copy has no tracepoint)"
            }
            Self::ZerocopyTransmitted => {
                "MSG_ZEROCOPY, and this socket's skbs were transmitted zero-copy"
            }
            Self::ZerocopyTransmittedCopied => {
                "MSG_ZEROCOPY, but this call's skbs went out copied"
            }
            Self::SpliceSends => {
                "sendfile/splice send page references (no tcp_sendmsg_locked tracepoint)"
            }
            Self::PlainSend => "a plain send copies (no tcp_sendmsg_locked tracepoint)",
        })
    }
}

/// The JSON of a fact is its text.
impl Serialize for Seen {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The JSON of a fact is its text.
impl Serialize for Inference {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
