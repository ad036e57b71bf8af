use super::*;
use serde_json::Value as J;
use tracer_common::{Event as RawEvent, kind, sysno};

fn raw(kind: u32, args: &[(usize, u64)]) -> RawEvent {
    let mut r = RawEvent::zeroed();
    r.ts_ns = 1_234_567_890;
    r.kind = kind;
    r.cpu = 1;
    r.tgid = 4242;
    r.tid = 4243;
    r.comm[..7].copy_from_slice(b"python3");
    for &(i, v) in args {
        r.args[i] = v;
    }
    r
}

fn bytes(r: &RawEvent) -> Vec<u8> {
    // SAFETY: RawEvent is plain old data without padding.
    unsafe { std::slice::from_raw_parts(std::ptr::from_ref(r).cast::<u8>(), EVENT_SIZE) }.to_vec()
}

fn json(r: &RawEvent) -> J {
    let e = decode(&bytes(r)).expect("decodes");
    serde_json::from_str(&e.to_json(&KernelConsts::linux_6_12())).expect("valid JSON")
}

#[test]
fn rejects_wrong_lengths() {
    let r = raw(kind::sys_exit::ID, &[]);
    let b = bytes(&r);
    assert_eq!(
        decode(&b[..EVENT_SIZE - 1]),
        Err(DecodeError::Length {
            got: EVENT_SIZE - 1
        })
    );
    let mut long = b;
    long.push(0);
    assert_eq!(
        decode(&long),
        Err(DecodeError::Length {
            got: EVENT_SIZE + 1
        })
    );
    assert_eq!(decode(&[]), Err(DecodeError::Length { got: 0 }));
}

#[test]
fn rejects_unknown_kinds() {
    assert_eq!(decode(&bytes(&raw(0, &[]))), Err(DecodeError::Kind(0)));
    assert_eq!(decode(&bytes(&raw(99, &[]))), Err(DecodeError::Kind(99)));
}

#[test]
fn decodes_from_unaligned_records() {
    let r = raw(kind::sys_exit::ID, &[(0, sysno::SENDFILE), (1, 65536)]);
    let mut buf = [0u8; EVENT_SIZE + 1];
    buf[1..].copy_from_slice(&bytes(&r));
    let e = decode(&buf[1..]).unwrap();
    assert_eq!(
        e.payload,
        Payload::SyscallExit {
            nr: sysno::SENDFILE as u32,
            ret: 65536
        }
    );
}

#[test]
fn rt_sigreturn_returns_by_name() {
    // Its sys_exit reads orig_ax after the registers were restored with orig_ax = -1.
    let j = json(&raw(kind::sys_exit::ID, &[(kind::sys_exit::NR, u64::MAX)]));
    assert_eq!(j["syscall"], "rt_sigreturn");
}

#[test]
fn header_fields_in_every_event() {
    for id in 1..=24 {
        let j = json(&raw(id, &[]));
        for key in ["event", "ts_ns", "pid", "tid", "comm"] {
            assert!(j.get(key).is_some(), "kind {id} lacks {key}: {j}");
        }
        assert_eq!(j["pid"], 4242);
        assert_eq!(j["tid"], 4243);
        assert_eq!(j["comm"], "python3");
        assert_eq!(j["ts_ns"], 1_234_567_890u64);
    }
}

#[test]
fn syscall_enter_decodes_data_path_arguments() {
    use kind::sys_enter::{ARG0, NR};
    // sendfile(out_fd=5, in_fd=3, offset=NULL, count=10 MiB)
    let j = json(&raw(
        kind::sys_enter::ID,
        &[
            (NR, sysno::SENDFILE),
            (ARG0, 5),
            (ARG0 + 1, 3),
            (ARG0 + 2, 0),
            (ARG0 + 3, 10 << 20),
        ],
    ));
    assert_eq!(j["event"], "syscall_enter");
    assert_eq!(j["syscall"], "sendfile");
    assert_eq!(j["out_fd"], 5);
    assert_eq!(j["in_fd"], 3);
    assert_eq!(j["offset"], "0x0");
    assert_eq!(j["count"], 10 << 20);

    // read(fd=-1 as the kernel sees it, buf, count)
    let j = json(&raw(
        kind::sys_enter::ID,
        &[
            (NR, sysno::READ),
            (ARG0, u32::MAX as u64),
            (ARG0 + 1, 0x7fff_0000),
            (ARG0 + 2, 4096),
        ],
    ));
    assert_eq!(j["syscall"], "read");
    assert_eq!(j["fd"], -1);
    assert_eq!(j["buf"], "0x7fff0000");
    assert_eq!(j["count"], 4096);

    // pwrite64's offset is a value, not a pointer.
    let j = json(&raw(
        kind::sys_enter::ID,
        &[(NR, sysno::PWRITE64), (ARG0 + 3, 8192)],
    ));
    assert_eq!(j["syscall"], "pwrite64");
    assert_eq!(j["offset"], 8192);
}

#[test]
fn syscall_enter_of_other_syscalls_keeps_raw_arguments() {
    use kind::sys_enter::{ARG0, NR};
    let j = json(&raw(kind::sys_enter::ID, &[(NR, sysno::CLOSE), (ARG0, 7)]));
    assert_eq!(j["syscall"], "close");
    assert_eq!(j["a0"], "0x7");
    let j = json(&raw(kind::sys_enter::ID, &[(NR, 9999)]));
    assert_eq!(j["syscall"], "syscall_9999");
}

#[test]
fn syscall_exit_has_name_and_signed_ret() {
    let j = json(&raw(
        kind::sys_exit::ID,
        &[(0, sysno::WRITE), (1, (-32i64) as u64)],
    ));
    assert_eq!(j["event"], "syscall_exit");
    assert_eq!(j["syscall"], "write");
    assert_eq!(j["ret"], -32);
}

#[test]
fn tcp_sendmsg_locked_classifies_the_payload() {
    use kind::tcp_sendmsg_locked as k;
    // sendfile: BVEC over page-cache pages, SPLICE_PAGES | MORE, skb NULL.
    let j = json(&raw(
        k::ID,
        &[
            (k::SK, 0xffff_8880_0000_1000),
            (k::ITER_TYPE, 2),
            (k::MSG_FLAGS, 0x8008000),
            (k::MSG_LEFT, 65536),
            (k::SIZE_GOAL, 32741),
        ],
    ));
    assert_eq!(j["event"], "tcp_sendmsg_locked");
    assert_eq!(j["iter"], "bvec");
    assert_eq!(j["skb"], "null");
    assert_eq!(j["payload"], "splice_pages");
    assert_eq!(
        j["flags"],
        serde_json::json!(["MSG_MORE", "MSG_SPLICE_PAGES"])
    );
    assert_eq!(j["msg_left"], 65536);
    assert_eq!(j["sk"], "0xffff888000001000");

    // write(): a user buffer, copied.
    let j = json(&raw(
        k::ID,
        &[(k::ITER_TYPE, 0), (k::SKB, 0xffff_0001), (k::SKB_LEN, 100)],
    ));
    assert_eq!(j["iter"], "ubuf");
    assert_eq!(j["payload"], "copy");
    assert_eq!(j["skb"], "0xffff0001");
    assert_eq!(j["skb_len"], 100);
    assert_eq!(j["flags"], serde_json::json!([]));

    // An iter_type this kernel's BTF does not name.
    let j = json(&raw(
        k::ID,
        &[(k::ITER_TYPE, 77), (k::MSG_FLAGS, MSG_ZEROCOPY as u64)],
    ));
    assert_eq!(j["iter"], "unknown");
    assert_eq!(j["payload"], "zerocopy_requested");
}

#[test]
fn sock_lengths() {
    use kind::sock_send_length as k;
    let j = json(&raw(
        k::ID,
        &[
            (k::SK, 0x10),
            (k::RET, 65536),
            (k::FAMILY, 2),
            (k::PROTOCOL, 6),
        ],
    ));
    assert_eq!(j["event"], "sock_send_length");
    assert_eq!(
        (j["ret"].clone(), j["family"].clone(), j["protocol"].clone()),
        (65536.into(), 2.into(), 6.into())
    );
    let j = json(&raw(
        kind::sock_recv_length::ID,
        &[(k::RET, (-11i64) as u64), (k::FLAGS, 0x2000)],
    ));
    assert_eq!(j["event"], "sock_recv_length");
    assert_eq!(j["ret"], -11);
    assert_eq!(j["flags"], "0x2000");
}

#[test]
fn receive_copy_and_page_cache_events() {
    let j = json(&raw(
        kind::skb_copy_datagram_iovec::ID,
        &[(0, 0xabc), (1, 32741)],
    ));
    assert_eq!(j["event"], "skb_copy_datagram_iovec");
    assert_eq!(j["len"], 32741);

    use kind::filemap_get_pages as g;
    let j = json(&raw(
        g::ID,
        &[
            (g::INO, 12),
            (g::DEV, (254 << 20) | 1),
            (g::INDEX, 16),
            (g::LAST_INDEX, 31),
        ],
    ));
    assert_eq!(j["event"], "mm_filemap_get_pages");
    assert_eq!(j["dev"], "254:1");
    assert_eq!(
        (j["index"].clone(), j["last_index"].clone()),
        (16.into(), 31.into())
    );

    use kind::filemap_add_to_page_cache as a;
    let j = json(&raw(a::ID, &[(a::INO, 12), (a::INDEX, 64), (a::ORDER, 2)]));
    assert_eq!(j["event"], "mm_filemap_add_to_page_cache");
    assert_eq!(j["bytes"], 16384);
    let j = json(&raw(a::ID, &[(a::ORDER, u64::MAX)]));
    assert_eq!(j["order"], "unknown");
    assert!(j.get("bytes").is_none());
}

#[test]
fn transmit_reports_device_and_skb_ground_truth() {
    use kind::net_dev_start_xmit as k;
    let mut r = raw(
        k::ID,
        &[
            (k::SKB, 1),
            (k::SK, 2),
            (k::LEN, 32807),
            (k::DATA_LEN, 32741),
            (k::SHINFO_FLAGS, 2),
            (k::NR_FRAGS, 8),
            (k::IFINDEX, 1),
            (k::DEV_FLAGS, 0x49),
            (k::OWNER_TGID, 77),
        ],
    );
    r.name[..2].copy_from_slice(b"lo");
    let j = json(&r);
    assert_eq!(j["event"], "net_dev_start_xmit");
    assert_eq!(j["dev"], "lo");
    assert_eq!(j["loopback"], "yes");
    assert_eq!(j["payload"], "spliced_pages");
    assert_eq!(j["skbfl"], serde_json::json!(["SHARED_FRAG"]));
    assert_eq!(j["owner_pid"], 77);
    assert_eq!(j["data_len"], 32741);
    for (flags, payload) in [
        (0u64, "copied"),
        (0xf, "zerocopy_pinned"),
        (0x1f, "zerocopy_pinned"),
    ] {
        let j = json(&raw(k::ID, &[(k::SHINFO_FLAGS, flags)]));
        assert_eq!(j["payload"], payload);
        assert_eq!(j["loopback"], "no");
    }
}

#[test]
fn a_retransmit_names_its_socket_owner_and_error() {
    use kind::tcp_retransmit as k;
    let r = raw(
        k::ID,
        &[
            (k::SK, 2),
            (k::SKB, 3),
            (k::LEN, 65483),
            (k::ERR, (-105i64) as u64),
            (k::OWNER_TGID, 77),
        ],
    );
    let j = json(&r);
    assert_eq!(j["event"], "tcp_retransmit_skb");
    assert_eq!(
        (j["sk"].clone(), j["skb"].clone()),
        ("0x2".into(), "0x3".into())
    );
    assert_eq!(
        (j["len"].clone(), j["err"].clone()),
        (65483.into(), (-105).into())
    );
    // The owner of the socket, whatever task softirq or the timer ran in.
    assert_eq!(
        (j["pid"].clone(), j["owner_pid"].clone()),
        (4242.into(), 77.into())
    );
}

#[test]
fn block_and_process_events() {
    use kind::block_rq_issue as i;
    let j = json(&raw(
        i::ID,
        &[(i::RQ, 9), (i::BYTES, 262144), (i::OP, 0), (i::INO, 12)],
    ));
    assert_eq!(j["event"], "block_rq_issue");
    assert_eq!(
        (j["op"].clone(), j["bytes"].clone(), j["ino"].clone()),
        ("read".into(), 262144.into(), 12.into())
    );
    use kind::block_rq_complete as c;
    let j = json(&raw(
        c::ID,
        &[(c::RQ, 9), (c::NR_BYTES, 262144), (c::OWNER_TGID, 4242)],
    ));
    assert_eq!(j["event"], "block_rq_complete");
    assert_eq!(j["owner_pid"], 4242);
    let j = json(&raw(kind::process_fork::ID, &[(0, 5000), (1, 5000)]));
    assert_eq!(
        (j["event"].clone(), j["child_pid"].clone()),
        ("process_fork".into(), 5000.into())
    );
    let j = json(&raw(kind::process_exec::ID, &[]));
    assert_eq!(j["event"], "process_exec");
}

#[test]
fn a_hostile_comm_is_escaped_in_text_and_valid_in_json() {
    for (name, escaped) in [
        (
            &b"\x1b]0;pwned\x07\x1b[2J"[..],
            "\\x1b]0;pwned\\x07\\x1b[2J",
        ),
        (b"a\nfake", "a\\nfake"),
        // A C1 control, a right-to-left override, an Arabic letter mark.
        (
            "x\u{9b}\u{202e}gpj\u{61c}".as_bytes(),
            "x\\xc2\\x9b\\xe2\\x80\\xaegpj\\xd8\\x9c",
        ),
    ] {
        let mut r = raw(kind::process_exec::ID, &[]);
        r.comm = [0; 16];
        r.comm[..name.len()].copy_from_slice(name);
        let e = decode(&bytes(&r)).unwrap();
        let line = e.to_text(&KernelConsts::linux_6_12());
        assert!(line.contains(escaped), "{line}");
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert_eq!(json(&r)["comm"], String::from_utf8_lossy(name).as_ref());
        // The JSON line itself holds none of them raw (serde_json leaves all but C0).
        let text = e.to_json(&KernelConsts::linux_6_12());
        assert!(
            text.chars()
                .all(|c| c == ' ' || !(c.is_control() || c > '\u{7e}')),
            "{text:?}"
        );
    }
}

#[test]
fn text_form_is_one_line_with_every_field() {
    use kind::sys_exit as k;
    let e = decode(&bytes(&raw(
        k::ID,
        &[(k::NR, sysno::SENDFILE), (k::RET, 65536)],
    )))
    .unwrap();
    let line = e.to_text(&KernelConsts::linux_6_12());
    assert!(!line.contains('\n'));
    assert!(
        line.contains("syscall_exit syscall=sendfile nr=40 ret=65536"),
        "{line}"
    );
    assert!(line.contains("4242/4243"), "{line}");
}

#[test]
fn flag_names_keep_their_uapi_values() {
    // The io-uring crate's opcode codes and libc's MSG_* are the numbers the kernel uses.
    for (code, name) in [
        (0, "NOP"),
        (1, "READV"),
        (2, "WRITEV"),
        (4, "READ_FIXED"),
        (5, "WRITE_FIXED"),
        (9, "SENDMSG"),
        (10, "RECVMSG"),
        (22, "READ"),
        (23, "WRITE"),
        (26, "SEND"),
        (27, "RECV"),
        (30, "SPLICE"),
        (47, "SEND_ZC"),
        (48, "SENDMSG_ZC"),
        (3, "other"),
    ] {
        assert_eq!(io_uring_op_name(code), name, "opcode {code}");
    }
    let msg: Vec<u32> = flags::MSG_FLAGS.iter().map(|(bit, _)| *bit).collect();
    assert_eq!(
        msg,
        [
            0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x80, 0x100, 0x200, 0x400, 0x800, 0x1000, 0x2000,
            0x4000, 0x8000, 0x10000, 0x40000, 0x80000, 0x100000, 0x2000000, 0x4000000, 0x8000000,
            0x20000000, 0x40000000,
        ]
    );
    assert_eq!(flags::IFF_LOOPBACK, 0x8);
}
