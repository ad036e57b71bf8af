//! Ring-buffer records to [`Event`]s: the length checked, the record copied out with
//! `read_unaligned`, then one function per kind reads its `args` (the layout lives in
//! `tracer_common::kind`).

use tracer_common::{EVENT_ARGS, EVENT_SIZE, Event as RawEvent, NAME_LEN, kind};

use super::{DecodeError, Event, FdRef, Payload, SockLength};

/// An event's arguments, as the kernel program wrote them.
type Args = [u64; EVENT_ARGS];

fn c_string(bytes: &[u8; NAME_LEN]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Decodes one ring-buffer record.
pub fn decode(record: &[u8]) -> Result<Event, DecodeError> {
    if record.len() != EVENT_SIZE {
        return Err(DecodeError::Length { got: record.len() });
    }
    // SAFETY: the length is exactly that of RawEvent, which is plain integers and byte
    // arrays (any bit pattern is valid); read_unaligned copes with any alignment.
    let raw: RawEvent = unsafe { std::ptr::read_unaligned(record.as_ptr().cast::<RawEvent>()) };
    decode_raw(&raw)
}

/// Decodes an event already copied out of the ring buffer.
pub fn decode_raw(raw: &RawEvent) -> Result<Event, DecodeError> {
    let a = &raw.args;
    let payload = match raw.kind {
        kind::sys_enter::ID => sys_enter(a),
        kind::sys_exit::ID => Payload::SyscallExit {
            nr: a[kind::sys_exit::NR] as u32,
            ret: a[kind::sys_exit::RET] as i64,
        },
        kind::tcp_sendmsg_locked::ID => tcp_sendmsg_locked(a),
        kind::sock_send_length::ID => Payload::SockSendLength(sock_length(a)),
        kind::sock_recv_length::ID => Payload::SockRecvLength(sock_length(a)),
        kind::skb_copy_datagram_iovec::ID => Payload::SkbCopyDatagramIovec {
            skb: a[kind::skb_copy_datagram_iovec::SKB],
            len: a[kind::skb_copy_datagram_iovec::LEN] as i64 as i32,
            fexit: a[kind::skb_copy_datagram_iovec::VIA] == kind::VIA_FEXIT,
        },
        kind::filemap_get_pages::ID => filemap_get_pages(a),
        kind::filemap_add_to_page_cache::ID => filemap_add_to_page_cache(a),
        kind::net_dev_start_xmit::ID => net_dev_start_xmit(a, &raw.name),
        kind::block_rq_issue::ID => block_rq_issue(a),
        kind::block_rq_complete::ID => block_rq_complete(a),
        kind::process_fork::ID => Payload::ProcessFork {
            child_pid: a[kind::process_fork::CHILD_TGID] as u32,
            child_tid: a[kind::process_fork::CHILD_PID] as u32,
        },
        kind::process_exec::ID => Payload::ProcessExec,
        kind::io_uring_submit_req::ID => io_uring_submit_req(a),
        kind::io_uring_complete::ID => io_uring_complete(a),
        kind::filemap_map_pages::ID => filemap_map_pages(a),
        kind::filemap_fault::ID => filemap_fault(a),
        kind::ext4_da_write_end::ID => ext4_da_write_end(a),
        kind::sendpages_exit::ID => Payload::SendpagesExit {
            bytes: a[kind::sendpages_exit::BYTES],
        },
        kind::perform_write::ID => Payload::PerformWrite {
            ino: a[kind::perform_write::INO],
            bytes: a[kind::perform_write::BYTES],
        },
        kind::zerocopy_pinned::ID => Payload::ZerocopyPinned {
            sk: a[kind::zerocopy_pinned::SK],
            bytes: a[kind::zerocopy_pinned::BYTES],
        },
        kind::tcp_sendmsg_exit::ID => tcp_sendmsg_exit(a),
        kind::filemap_read::ID => filemap_read(a),
        kind::zerocopy_receive::ID => zerocopy_receive(a),
        kind::tcp_retransmit::ID => Payload::TcpRetransmit {
            sk: a[kind::tcp_retransmit::SK],
            skb: a[kind::tcp_retransmit::SKB],
            len: a[kind::tcp_retransmit::LEN] as u32,
            err: a[kind::tcp_retransmit::ERR] as i64 as i32,
            owner_pid: a[kind::tcp_retransmit::OWNER_TGID] as u32,
        },
        other => return Err(DecodeError::Kind(other)),
    };
    Ok(Event {
        ts_ns: raw.ts_ns,
        cpu: raw.cpu,
        pid: raw.tgid,
        tid: raw.tid,
        comm: c_string(&raw.comm),
        payload,
    })
}

fn sys_enter(a: &Args) -> Payload {
    use kind::sys_enter as k;
    let mut args = [0u64; 6];
    args.copy_from_slice(&a[k::ARG0..k::ARG0 + 6]);
    let modes = a[k::FD_MODES];
    Payload::SyscallEnter {
        nr: a[k::NR] as u32,
        args,
        fds: [
            FdRef {
                ino: a[k::FD_A_INO],
                mode: modes as u16,
                not_tcp: modes & k::FD_A_NOT_TCP != 0,
                zc: (modes >> k::FD_SEND_ZC_SHIFT) as u8,
            },
            FdRef {
                ino: a[k::FD_B_INO],
                mode: (modes >> 16) as u16,
                not_tcp: modes & k::FD_B_NOT_TCP != 0,
                zc: 0,
            },
        ],
    }
}

fn tcp_sendmsg_locked(a: &Args) -> Payload {
    use kind::tcp_sendmsg_locked as k;
    Payload::TcpSendmsgLocked {
        sk: a[k::SK],
        skb: (a[k::SKB] != 0).then_some(a[k::SKB]),
        iter_type: a[k::ITER_TYPE] as u8,
        msg_flags: a[k::MSG_FLAGS] as u32,
        msg_left: a[k::MSG_LEFT],
        size_goal: a[k::SIZE_GOAL] as i64 as i32,
        skb_len: a[k::SKB_LEN] as u32,
        zc: a[k::ZC] as u8,
    }
}

/// `sock_send_length` and `sock_recv_length` share their layout.
fn sock_length(a: &Args) -> SockLength {
    use kind::sock_send_length as k;
    SockLength {
        sk: a[k::SK],
        ret: a[k::RET] as i64 as i32,
        flags: a[k::FLAGS] as u32,
        family: a[k::FAMILY] as u16,
        protocol: a[k::PROTOCOL] as u16,
    }
}

fn filemap_get_pages(a: &Args) -> Payload {
    use kind::filemap_get_pages as k;
    Payload::FilemapGetPages {
        ino: a[k::INO],
        dev: a[k::DEV] as u32,
        index: a[k::INDEX],
        last_index: a[k::LAST_INDEX],
        fexit: a[k::VIA] == kind::VIA_FEXIT,
    }
}

fn filemap_add_to_page_cache(a: &Args) -> Payload {
    use kind::filemap_add_to_page_cache as k;
    Payload::FilemapAddToPageCache {
        ino: a[k::INO],
        dev: a[k::DEV] as u32,
        index: a[k::INDEX],
        order: (a[k::ORDER] != u64::MAX).then_some(a[k::ORDER] as u8),
    }
}

fn net_dev_start_xmit(a: &Args, name: &[u8; NAME_LEN]) -> Payload {
    use kind::net_dev_start_xmit as k;
    Payload::NetDevStartXmit {
        skb: a[k::SKB],
        sk: a[k::SK],
        len: a[k::LEN] as u32,
        data_len: a[k::DATA_LEN] as u32,
        shinfo_flags: a[k::SHINFO_FLAGS] as u8,
        nr_frags: a[k::NR_FRAGS] as u8,
        ifindex: a[k::IFINDEX] as i64 as i32,
        dev_flags: a[k::DEV_FLAGS] as u32,
        dev: c_string(name),
        owner_pid: a[k::OWNER_TGID] as u32,
        header_len: (a[k::TCP] & 0xffff) as u32,
        seq: (a[k::TCP] >> 32) as u32,
        software_dev: a[k::DEV_FLAGS] & k::SOFTWARE_DEV != 0,
    }
}

fn block_rq_issue(a: &Args) -> Payload {
    use kind::block_rq_issue as k;
    Payload::BlockRqIssue {
        rq: a[k::RQ],
        bytes: a[k::BYTES] as u32,
        sector: a[k::SECTOR],
        op: a[k::OP] as u8,
        ino: a[k::INO],
        dev: a[k::DEV] as u32,
        owner_pid: a[k::OWNER_TGID] as u32,
    }
}

fn block_rq_complete(a: &Args) -> Payload {
    use kind::block_rq_complete as k;
    Payload::BlockRqComplete {
        rq: a[k::RQ],
        nr_bytes: a[k::NR_BYTES] as u32,
        error: a[k::ERROR] as u8,
        owner_pid: a[k::OWNER_TGID] as u32,
    }
}

fn io_uring_submit_req(a: &Args) -> Payload {
    use kind::io_uring_submit_req as k;
    Payload::IoUringSubmit {
        user_data: a[k::USER_DATA],
        opcode: a[k::OPCODE] as u8,
        fd: a[k::FD] as u32 as i32,
        flags: a[k::FLAGS],
        file: FdRef {
            ino: a[k::INO],
            mode: a[k::MODE] as u16,
            not_tcp: false,
            zc: 0,
        },
        sk: a[k::SK],
        req: a[k::REQ],
    }
}

fn io_uring_complete(a: &Args) -> Payload {
    use kind::io_uring_complete as k;
    Payload::IoUringComplete {
        user_data: a[k::USER_DATA],
        res: a[k::RES] as i64 as i32,
        cflags: a[k::CFLAGS] as u32,
        req: a[k::REQ],
    }
}

fn filemap_map_pages(a: &Args) -> Payload {
    use kind::filemap_map_pages as k;
    Payload::FilemapMapPages {
        ino: a[k::INO],
        dev: a[k::DEV] as u32,
        start: a[k::START],
        end: a[k::END],
        fexit: a[k::VIA] == kind::VIA_FEXIT,
    }
}

fn filemap_fault(a: &Args) -> Payload {
    use kind::filemap_fault as k;
    Payload::FilemapFault {
        ino: a[k::INO],
        dev: a[k::DEV] as u32,
        index: a[k::INDEX],
    }
}

fn ext4_da_write_end(a: &Args) -> Payload {
    use kind::ext4_da_write_end as k;
    Payload::Ext4DaWriteEnd {
        ino: a[k::INO],
        dev: a[k::DEV] as u32,
        pos: a[k::POS] as i64,
        len: a[k::LEN] as u32,
        copied: a[k::COPIED] as u32,
    }
}

fn tcp_sendmsg_exit(a: &Args) -> Payload {
    use kind::tcp_sendmsg_exit as k;
    Payload::TcpSendmsgExit {
        sk: a[k::SK],
        ret: a[k::RET] as i64 as i32,
        msg_flags: a[k::MSG_FLAGS] as u32,
        iter_type: a[k::ITER_TYPE] as u8,
        zc: a[k::ZC] as u8,
    }
}

fn filemap_read(a: &Args) -> Payload {
    use kind::filemap_read as k;
    Payload::FilemapRead {
        ino: a[k::INO],
        bytes: a[k::BYTES],
        already: a[k::ALREADY],
        pipe: a[k::PIPE] != 0,
    }
}

fn zerocopy_receive(a: &Args) -> Payload {
    use kind::zerocopy_receive as k;
    Payload::ZerocopyReceive {
        skb: a[k::SKB],
        data_len: a[k::DATA_LEN] as u32,
        shinfo_flags: a[k::SHINFO_FLAGS] as u8,
        owner_pid: a[k::OWNER_TGID] as u32,
        fexit: a[k::VIA] == kind::VIA_FEXIT,
    }
}
