//! Attribution cases the demo's workload does not exercise, as synthetic event
//! sequences (the recorded runs are in `tests/model.rs`).
use ::io_uring::opcode as op;

use super::{Endpoint, Model, syscall::sysno};
use crate::{
    event::{self, Event, FdRef, Payload, SockLength},
    model::{Buffer, Engine, Evidence, Inference, Ledger, LookupProbe, Seen, Step, StepKind},
};
use tracer_common::{S_IFREG, S_IFSOCK, kind::tcp_sendmsg_locked as k};

const PID: u32 = 100;
const FILE_A: FdRef = FdRef {
    ino: 11,
    mode: S_IFREG,
    not_tcp: false,
    zc: 0,
};
const SOCK_X: FdRef = FdRef {
    ino: 21,
    mode: S_IFSOCK,
    not_tcp: false,
    zc: 0,
};
const SOCK_Y: FdRef = FdRef {
    ino: 22,
    mode: S_IFSOCK,
    not_tcp: false,
    zc: 0,
};
const SK_X: u64 = 0xffff_0000_0000_1000;

struct Feed {
    model: Model,
    out: Vec<Step>,
    ts: u64,
}

impl Feed {
    fn new() -> Self {
        Self {
            model: Model::new(),
            out: Vec::new(),
            ts: 1000,
        }
    }
    fn ev(&mut self, tid: u32, payload: Payload) {
        self.ts += 10;
        let ev = Event {
            ts_ns: self.ts,
            cpu: 0,
            pid: PID,
            tid,
            comm: "t".into(),
            payload,
        };
        self.model.push(&ev, &mut self.out);
    }
    fn syscall(
        &mut self,
        tid: u32,
        nr: u32,
        args: [u64; 6],
        fds: [FdRef; 2],
        ret: i64,
        inside: Vec<Payload>,
    ) {
        self.ev(tid, Payload::SyscallEnter { nr, args, fds });
        for p in inside {
            self.ev(tid, p);
        }
        self.ev(tid, Payload::SyscallExit { nr, ret });
    }
    /// write() or sendto() (`nr`) of `len` bytes at `buf` on socket X, with the
    /// send's MSG flags and zero-copy inputs.
    fn send(&mut self, nr: u32, buf: u64, len: i32, flags: u32, zc: u8) {
        let send_flags = if nr == sysno::SENDTO { flags as u64 } else { 0 };
        self.syscall(
            1,
            nr,
            [5, buf, len as u64, send_flags, 0, 0],
            [SOCK_X, NONE],
            len as i64,
            tcp_send(SK_X, flags, zc, len),
        );
    }
    /// The ledger of the transfer `src -> dst`, which must exist (an empty ledger would
    /// pass any check of what it does not count).
    fn ledger(&self, src: Endpoint, dst: Endpoint) -> Ledger {
        self.model
            .find(PID, src, dst)
            .map(|t| t.ledger.clone())
            .unwrap_or_else(|| panic!("no {src:?} -> {dst:?} transfer"))
    }
}

fn tcp_send(sk: u64, flags: u32, zc: u8, bytes: i32) -> Vec<Payload> {
    vec![
        Payload::TcpSendmsgLocked {
            sk,
            skb: None,
            iter_type: 0,
            msg_flags: flags,
            msg_left: bytes as u64,
            size_goal: 65483,
            skb_len: 0,
            zc,
        },
        Payload::SockSendLength(SockLength {
            sk,
            ret: bytes,
            flags: 0,
            family: 2,
            protocol: 6,
        }),
    ]
}

const NONE: FdRef = FdRef {
    ino: 0,
    mode: 0,
    not_tcp: false,
    zc: 0,
};
const BUF: u64 = 0x7000_0000;
const A: Endpoint = Endpoint::File { ino: 11 };
const X: Endpoint = Endpoint::Socket { ino: 21 };

#[test]
fn a_proxy_forwarding_received_bytes_is_not_charged_to_the_file_read_before() {
    let mut f = Feed::new();
    f.syscall(
        1,
        sysno::READ,
        [3, BUF, 4096, 0, 0, 0],
        [FILE_A, NONE],
        4096,
        vec![],
    );
    f.send(sysno::WRITE, BUF, 4096, 0, 0);
    // recv into the same buffer, then forward it.
    f.syscall(
        1,
        sysno::RECVFROM,
        [6, BUF, 5000, 0, 0, 0],
        [SOCK_Y, NONE],
        5000,
        vec![],
    );
    f.send(sysno::WRITE, BUF, 5000, 0, 0);
    let a_x = f.ledger(A, X);
    assert_eq!((a_x.syscalls, a_x.cpu_copy_bytes), (2, 8192), "{a_x:?}");
    // Bytes from memory wait for a file sent next on their socket (a server's headers);
    // none comes.
    f.model.finish(&mut f.out);
    let user_x = f.ledger(Endpoint::User, X);
    assert_eq!(
        (user_x.syscalls, user_x.cpu_copy_bytes),
        (1, 5000),
        "{user_x:?}"
    );
}

#[test]
fn an_io_wq_worker_send_belongs_to_the_rings_transfer() {
    let mut f = Feed::new();
    const RING: FdRef = FdRef {
        ino: 31,
        mode: 0o100000,
        not_tcp: false,
        zc: 0,
    };
    let submit = |opcode, file, sk, req| Payload::IoUringSubmit {
        user_data: 0,
        opcode,
        fd: 3,
        flags: 0,
        file,
        sk,
        req,
    };
    // Both requests carry user_data 0: the kernel's request pointer tells them apart.
    f.syscall(
        1,
        sysno::IO_URING_ENTER,
        [4, 2, 2, 0, 0, 0],
        [RING, NONE],
        2,
        vec![
            submit(op::Read::CODE, FILE_A, 0, 0xa),
            submit(op::Send::CODE, SOCK_X, SK_X, 0xb),
        ],
    );
    f.ev(
        1,
        Payload::IoUringComplete {
            user_data: 0,
            res: 4096,
            cflags: 0,
            req: 0xa,
        },
    );
    // The worker thread (no syscall of its own) sends.
    for p in tcp_send(SK_X, 0x4040, 0, 4096) {
        f.ev(2, p);
    }
    let l = f.ledger(A, X);
    assert_eq!((l.cpu_copies, l.cpu_copy_bytes), (2, 8192), "{l:?}");
    assert_eq!(l.syscalls, 1);
}

#[test]
fn zerocopy_is_decided_by_the_kernels_inputs_not_by_when_skbs_leave() {
    let mut f = Feed::new();
    let known = (k::ZC_KNOWN | k::ZC_SG) as u8;
    f.syscall(
        1,
        sysno::READ,
        [3, BUF, 4096, 0, 0, 0],
        [FILE_A, NONE],
        4096,
        vec![],
    );
    // MSG_ZEROCOPY on a socket without SO_ZEROCOPY: a copy.
    f.send(sysno::SENDTO, BUF, 4096, event::MSG_ZEROCOPY, known);
    // With SO_ZEROCOPY: pinned, though no skb went out during the call.
    f.send(
        sysno::SENDTO,
        BUF,
        4096,
        event::MSG_ZEROCOPY,
        known | k::ZC_SOCK as u8,
    );
    let l = f.ledger(A, X);
    assert_eq!((l.cpu_copies, l.page_refs), (2, 1), "{l:?}");
    let t = f.model.find(PID, A, X).unwrap();
    assert_eq!(t.facts.zerocopy_ignored, 1);
}

#[test]
fn only_shared_or_read_only_mappings_are_page_cache_sources() {
    let mut f = Feed::new();
    let map = 0x5000_0000u64;
    // A private writable mapping (a program's .data): a write from it is a user copy.
    f.syscall(
        1,
        sysno::MMAP,
        [0, 8192, 0x3, 0x2, 3, 0],
        [FILE_A, NONE],
        map as i64,
        vec![],
    );
    f.send(sysno::WRITE, map, 4096, 0, 0);
    // A reply from memory: the next request arrives before any file is sent on X.
    f.syscall(
        1,
        sysno::RECVFROM,
        [5, BUF, 1024, 0, 0, 0],
        [SOCK_X, NONE],
        80,
        vec![],
    );
    assert_eq!(f.ledger(Endpoint::User, X).cpu_copy_bytes, 4096);
    // A shared one: the copy reads the page cache. munmap of its first page leaves
    // the second mapped.
    let shared = 0x6000_0000u64;
    f.syscall(
        1,
        sysno::MMAP,
        [0, 8192, 0x1, 0x1, 3, 0],
        [FILE_A, NONE],
        shared as i64,
        vec![],
    );
    f.syscall(
        1,
        sysno::MUNMAP,
        [shared, 4096, 0, 0, 0, 0],
        [NONE, NONE],
        0,
        vec![],
    );
    f.send(sysno::WRITE, shared + 4096, 4096, 0, 0);
    let l = f.ledger(A, X);
    assert_eq!(
        (l.cpu_copies, l.syscalls),
        (1, 3),
        "mmap, munmap, write: {l:?}"
    );
    assert!(f.out.iter().any(|s| matches!(
        s.kind,
        StepKind::Copy {
            from: Buffer::PageCache,
            to: Buffer::Socket,
            ..
        }
    )));
    // Unmapped: a write from the first page is not the file's any more.
    f.send(sysno::WRITE, shared, 100, 0, 0);
    f.model.finish(&mut f.out);
    assert_eq!(f.ledger(Endpoint::User, X).cpu_copy_bytes, 4196);
}

#[test]
fn a_transmit_in_another_threads_syscall_keeps_its_own_transfer() {
    let mut f = Feed::new();
    f.syscall(
        1,
        sysno::READ,
        [3, BUF, 4096, 0, 0, 0],
        [FILE_A, NONE],
        4096,
        vec![],
    );
    f.send(sysno::WRITE, BUF, 4096, 0, 0);
    // The receiver thread's read of another socket pushes the sender's queued data.
    let xmit = Payload::NetDevStartXmit {
        skb: 0x1,
        sk: SK_X,
        len: 4162,
        data_len: 4096,
        shinfo_flags: 0,
        nr_frags: 1,
        ifindex: 1,
        dev_flags: 0x8,
        dev: "lo".into(),
        owner_pid: PID,
        header_len: 0,
        seq: 0,
        software_dev: false,
    };
    f.syscall(
        2,
        sysno::READ,
        [7, BUF + 0x10000, 65536, 0, 0, 0],
        [SOCK_Y, NONE],
        4096,
        vec![xmit],
    );
    let t = f.model.find(PID, A, X).unwrap();
    assert_eq!(t.facts.loopback_xmits, 1);
    let rx = f
        .model
        .find(PID, Endpoint::Socket { ino: 22 }, Endpoint::User)
        .unwrap();
    assert_eq!(rx.facts.loopback_xmits, 0);
}

#[test]
fn a_transmit_or_disk_read_done_in_another_task_is_its_owners_step() {
    let mut f = Feed::new();
    f.syscall(
        1,
        sysno::READ,
        [3, BUF, 4096, 0, 0, 0],
        [FILE_A, NONE],
        4096,
        vec![],
    );
    f.send(sysno::WRITE, BUF, 4096, 0, 0);
    // Softirq transmits the sender's data while another process (pid 7) is current, and
    // a kernel worker (pid 9) reads more of the file for it.
    let other = |pid, payload| Event {
        ts_ns: 5000,
        cpu: 1,
        pid,
        tid: pid,
        comm: "swapper/1".into(),
        payload,
    };
    let mut out = Vec::new();
    f.model.push(
        &other(
            7,
            Payload::NetDevStartXmit {
                skb: 0x1,
                sk: SK_X,
                len: 4162,
                data_len: 4096,
                shinfo_flags: 0,
                nr_frags: 1,
                ifindex: 1,
                dev_flags: 0x8,
                dev: "lo".into(),
                owner_pid: PID,
                header_len: 0,
                seq: 0,
                software_dev: false,
            },
        ),
        &mut out,
    );
    f.model.push(
        &other(
            9,
            Payload::BlockRqIssue {
                rq: 0x2,
                bytes: 4096,
                sector: 0,
                op: 0,
                ino: FILE_A.ino,
                dev: 1,
                owner_pid: PID,
            },
        ),
        &mut out,
    );
    let pids: Vec<_> = out.iter().map(|s| (s.pid, s.tid)).collect();
    assert_eq!(pids, [(PID, 7), (PID, 9)], "{out:?}");
}

#[test]
fn a_read_into_memory_before_sendfile_is_not_on_its_path() {
    // A server reads the start of a file (to check it), then sendfile()s the file.
    let mut f = Feed::new();
    f.syscall(
        1,
        sysno::PREAD64,
        [3, BUF, 4096, 0, 0, 0],
        [FILE_A, NONE],
        4096,
        vec![],
    );
    let sendfile = |f: &mut Feed| {
        f.syscall(
            1,
            sysno::SENDFILE,
            [5, 3, 0, 8192, 0, 0],
            [SOCK_X, FILE_A],
            8192,
            tcp_send(SK_X, event::MSG_SPLICE_PAGES, 0, 8192),
        )
    };
    sendfile(&mut f);
    sendfile(&mut f);
    let l = f.ledger(A, X);
    assert_eq!(
        (l.syscalls, l.cpu_copies, l.page_refs, l.page_ref_bytes),
        (2, 0, 2, 16384),
        "{l:?}"
    );
    // The read is a transfer of its own, into the application's memory.
    f.model.finish(&mut f.out);
    let read = f.ledger(A, Endpoint::User);
    assert_eq!((read.syscalls, read.cpu_copy_bytes), (1, 4096), "{read:?}");
    // A write of a buffer read from the file still takes the reads before it.
    let mut f = Feed::new();
    for _ in 0..2 {
        f.syscall(
            1,
            sysno::READ,
            [3, BUF, 4096, 0, 0, 0],
            [FILE_A, NONE],
            4096,
            vec![],
        );
    }
    f.send(sysno::WRITE, BUF, 4096, 0, 0);
    assert_eq!(f.ledger(A, X).syscalls, 3);
}

#[test]
fn without_send_tracepoints_the_syscall_says_how_many_bytes_and_the_method_how() {
    // Debian's 6.1: no tcp_sendmsg_locked, no sock_send_length tracepoint.
    let mut f = Feed::new();
    f.syscall(
        1,
        sysno::READ,
        [3, BUF, 4096, 0, 0, 0],
        [FILE_A, NONE],
        4096,
        vec![],
    );
    f.syscall(
        1,
        sysno::WRITE,
        [5, BUF, 4096, 0, 0, 0],
        [SOCK_X, NONE],
        4096,
        vec![],
    );
    let l = f.ledger(A, X);
    assert_eq!((l.cpu_copies, l.cpu_copy_bytes), (2, 8192), "{l:?}");
    assert!(
        f.out
            .iter()
            .any(|s| matches!(s.evidence, Evidence::Inferred(Inference::SendReturned)))
    );
    // sendfile: page references, out_fd first and in_fd second.
    f.syscall(
        1,
        sysno::SENDFILE,
        [5, 3, 0, 4096, 0, 0],
        [SOCK_X, FILE_A],
        4096,
        vec![],
    );
    let l = f.ledger(A, X);
    assert_eq!(
        (l.page_refs, l.page_ref_bytes, l.cpu_copies),
        (1, 4096, 2),
        "{l:?}"
    );
    // With the tracepoints, nothing is inferred twice.
    f.send(sysno::WRITE, BUF + 0x10_0000, 100, 0, 0);
    f.model.finish(&mut f.out);
    assert_eq!(f.ledger(Endpoint::User, X).cpu_copies, 1);
}

#[test]
fn without_send_hooks_msg_zerocopy_is_decided_by_the_sockets_inputs_at_entry() {
    let flags = event::MSG_ZEROCOPY as u64;
    let zc_sock = FdRef {
        zc: (k::ZC_KNOWN | k::ZC_SOCK | k::ZC_SG) as u8,
        ..SOCK_X
    };
    // SO_ZEROCOPY off: the kernel copies, and the difference is explained.
    let no_so_zerocopy = FdRef {
        zc: (k::ZC_KNOWN | k::ZC_SG) as u8,
        ..SOCK_X
    };
    let mut f = Feed::new();
    // (socket, CPU copies, page references, zero-copy sends ignored) after each send.
    for (sock, copies, refs, ignored) in [(no_so_zerocopy, 2, 0, 1), (zc_sock, 3, 1, 1)] {
        f.syscall(
            1,
            sysno::READ,
            [3, BUF, 4096, 0, 0, 0],
            [FILE_A, NONE],
            4096,
            vec![],
        );
        f.syscall(
            1,
            sysno::SENDTO,
            [5, BUF, 4096, flags, 0, 0],
            [sock, NONE],
            4096,
            vec![],
        );
        let t = f.model.find(PID, A, X).unwrap();
        assert_eq!((t.ledger.cpu_copies, t.ledger.page_refs), (copies, refs));
        assert_eq!(t.facts.zerocopy_ignored, ignored);
    }
    let t = f.model.find(PID, A, X).unwrap();
    assert_eq!(
        (t.ledger.page_ref_bytes, t.facts.zerocopy_requested),
        (4096, 2)
    );
}

#[test]
fn fexit_tcp_sendmsg_locked_tells_a_send_once() {
    // A kernel with fentry and the send tracepoints: fexit comes before
    // sock_send_length, which is then redundant.
    let mut f = Feed::new();
    f.syscall(
        1,
        sysno::READ,
        [3, BUF, 4096, 0, 0, 0],
        [FILE_A, NONE],
        4096,
        vec![],
    );
    let mut inside = tcp_send(SK_X, 0, 0, 4096);
    inside.insert(
        1,
        Payload::TcpSendmsgExit {
            sk: SK_X,
            ret: 4096,
            msg_flags: 0,
            iter_type: 0,
            zc: 0,
        },
    );
    f.syscall(
        1,
        sysno::WRITE,
        [5, BUF, 4096, 0, 0, 0],
        [SOCK_X, NONE],
        4096,
        inside,
    );
    let l = f.ledger(A, X);
    assert_eq!((l.cpu_copies, l.cpu_copy_bytes), (2, 8192), "{l:?}");
    assert!(f.out.iter().any(|s| matches!(
        s.evidence,
        Evidence::Observed(Seen::TcpSendmsg { fexit: true, .. })
    )));
}

/// The steps `f` produced that `probe` observed.
fn observed_by(f: &Feed, probe: Seen) -> Vec<&StepKind> {
    f.out
        .iter()
        .filter(|s| s.evidence == Evidence::Observed(probe))
        .map(|s| &s.kind)
        .collect()
}

#[test]
fn before_6_5_a_splice_read_is_observed_as_page_references_by_fexit_filemap_read() {
    let pipe = FdRef {
        ino: 31,
        mode: tracer_common::S_IFIFO,
        not_tcp: false,
        zc: 0,
    };
    let mut f = Feed::new();
    // splice(file, NULL, pipe, NULL, 64 KiB, 0): filemap_read into the pipe iterator.
    f.syscall(
        1,
        sysno::SPLICE,
        [3, 0, 4, 0, 65536, 0],
        [FILE_A, pipe],
        65536,
        vec![Payload::FilemapRead {
            ino: 11,
            bytes: 65536,
            already: 0,
            pipe: true,
        }],
    );
    // Its steps join a transfer once the pipe's pages go out: splice(pipe, sock).
    f.syscall(
        1,
        sysno::SPLICE,
        [4, 0, 5, 0, 65536, 0],
        [pipe, SOCK_X],
        65536,
        tcp_send(SK_X, event::MSG_SPLICE_PAGES, 0, 65536),
    );
    let seen = observed_by(&f, Seen::FexitFilemapReadIntoPipe);
    assert!(
        matches!(
            seen.as_slice(),
            [StepKind::PageRef {
                from: Buffer::PageCache,
                to: Buffer::Pipe,
                bytes: 65536,
                pinned: false
            }]
        ),
        "{seen:?}"
    );
    // The same event during read() is not a copy into the reader's buffer: the read's
    // copy is still the one its return value tells (once its bytes go out).
    let mut g = Feed::new();
    g.syscall(
        1,
        sysno::READ,
        [3, BUF, 4096, 0, 0, 0],
        [FILE_A, NONE],
        4096,
        vec![Payload::FilemapRead {
            ino: 11,
            bytes: 4096,
            already: 0,
            pipe: true,
        }],
    );
    g.send(sysno::WRITE, BUF, 4096, 0, 0);
    assert!(observed_by(&g, Seen::FexitFilemapRead).is_empty());
    let copies: Vec<&Step> = g
        .out
        .iter()
        .filter(|s| {
            matches!(
                s.kind,
                StepKind::Copy {
                    from: Buffer::PageCache,
                    to: Buffer::User,
                    ..
                }
            )
        })
        .collect();
    assert!(
        matches!(
            copies.as_slice(),
            [Step {
                kind: StepKind::Copy { bytes: 4096, .. },
                evidence: Evidence::Inferred(_),
                ..
            }]
        ),
        "{copies:?}"
    );
}

#[test]
fn fexit_skb_zerocopy_iter_stream_observes_the_pins() {
    let zc = (k::ZC_KNOWN | k::ZC_SOCK | k::ZC_SG) as u8;
    let flags = event::MSG_ZEROCOPY;
    let mut f = Feed::new();
    // 6.1: fexit tcp_sendmsg_locked only. Two sends: every byte pinned in pieces
    // (observed), and one whose pin events were partly lost (still pinned: the kernel
    // decides once per call; inferred, never a copy).
    for pinned in [[32768, 32768], [61440, 0]] {
        f.syscall(
            1,
            sysno::READ,
            [3, BUF, 65536, 0, 0, 0],
            [FILE_A, NONE],
            65536,
            vec![],
        );
        let mut inside: Vec<Payload> = pinned
            .iter()
            .filter(|b| **b > 0)
            .map(|b| Payload::ZerocopyPinned {
                sk: SK_X,
                bytes: *b,
            })
            .collect();
        inside.push(Payload::TcpSendmsgExit {
            sk: SK_X,
            ret: 65536,
            msg_flags: flags,
            iter_type: 0,
            zc,
        });
        f.syscall(
            1,
            sysno::SENDTO,
            [5, BUF, 65536, flags as u64, 0, 0],
            [SOCK_X, NONE],
            65536,
            inside,
        );
    }
    let pins = observed_by(&f, Seen::FexitSkbZerocopyIterStream);
    assert!(
        matches!(
            pins.as_slice(),
            [StepKind::PageRef {
                from: Buffer::User,
                to: Buffer::Socket,
                bytes: 65536,
                pinned: true
            }]
        ),
        "{pins:?}"
    );
    assert!(
        f.out
            .iter()
            .any(|s| matches!(s.evidence, Evidence::Inferred(Inference::PinsPartlySeen)))
    );
    let t = f.model.find(PID, A, X).unwrap();
    // Only read()'s copies; both sends pinned.
    assert_eq!(
        (t.ledger.cpu_copies, t.ledger.cpu_copy_bytes),
        (2, 2 * 65536),
        "{:?}",
        t.ledger
    );
    assert_eq!(
        (t.ledger.page_refs, t.ledger.page_ref_bytes),
        (2, 2 * 65536)
    );
    assert_eq!(t.facts.zerocopy_ignored, 0);
}

#[test]
fn the_fentry_tier_names_its_probes_for_lookups_writes_and_receives() {
    let dst = FdRef {
        ino: 12,
        mode: S_IFREG,
        not_tcp: false,
        zc: 0,
    };
    let mut f = Feed::new();
    // copy_file_range(A, NULL, B, NULL, 8 KiB, 0), seen by fexit filemap_get_pages and
    // fexit generic_perform_write.
    f.syscall(
        1,
        sysno::COPY_FILE_RANGE,
        [3, 0, 4, 0, 8192, 0],
        [FILE_A, dst],
        8192,
        vec![
            Payload::FilemapGetPages {
                ino: 11,
                dev: 0,
                index: 0,
                last_index: 1,
                fexit: true,
            },
            Payload::PerformWrite {
                ino: 12,
                bytes: 8192,
            },
        ],
    );
    assert!(matches!(
        observed_by(
            &f,
            Seen::Lookup {
                probe: LookupProbe::FexitFilemapGetPages,
                with_adds: false
            }
        )
        .as_slice(),
        [StepKind::Lookup {
            hit_pages: 2,
            miss_pages: 0
        }]
    ));
    assert!(matches!(
        observed_by(&f, Seen::FexitGenericPerformWrite).as_slice(),
        [StepKind::Copy {
            engine: Engine::Cpu,
            from: Buffer::PageCache,
            to: Buffer::PageCache,
            bytes: 8192
        }]
    ));
    // recvfrom() whose copy fexit skb_copy_datagram_iter saw.
    f.syscall(
        2,
        sysno::RECVFROM,
        [5, BUF, 4096, 0, 0, 0],
        [SOCK_Y, NONE],
        4096,
        vec![Payload::SkbCopyDatagramIovec {
            skb: 1,
            len: 4096,
            fexit: true,
        }],
    );
    assert!(matches!(
        observed_by(&f, Seen::FexitSkbCopyDatagramIter).as_slice(),
        [StepKind::Copy {
            from: Buffer::Socket,
            to: Buffer::User,
            bytes: 4096,
            ..
        }]
    ));
}

/// sendfile() of `len` bytes of file A into socket X.
fn sendfile_x(f: &mut Feed, len: i64) {
    let inside = if len > 0 {
        tcp_send(SK_X, event::MSG_SPLICE_PAGES, 0, len as i32)
    } else {
        vec![]
    };
    f.syscall(
        1,
        sysno::SENDFILE,
        [5, 3, 0, 65536, 0, 0],
        [SOCK_X, FILE_A],
        len,
        inside,
    );
}

#[test]
fn a_servers_headers_go_with_the_file_it_sends_next_on_that_socket() {
    // nginx: the request, writev() of the headers from memory, then sendfile() of the body.
    let mut f = Feed::new();
    f.syscall(
        1,
        sysno::RECVFROM,
        [5, BUF, 1024, 0, 0, 0],
        [SOCK_X, NONE],
        80,
        vec![],
    );
    f.syscall(
        1,
        sysno::WRITEV,
        [5, BUF, 2, 0, 0, 0],
        [SOCK_X, NONE],
        246,
        tcp_send(SK_X, 0, 0, 246),
    );
    // Nothing is shown for the headers until the model knows where they go.
    assert!(
        f.model
            .find(PID, Endpoint::User, X)
            .is_none_or(|t| t.ledger.syscalls == 0)
    );
    sendfile_x(&mut f, 8192);
    sendfile_x(&mut f, 8192);
    let t = f.model.find(PID, A, X).expect("the file's transfer");
    assert_eq!(
        (
            t.ledger.syscalls,
            t.ledger.cpu_copies,
            t.ledger.cpu_copy_bytes,
            t.ledger.page_refs,
            t.ledger.page_ref_bytes
        ),
        (3, 1, 246, 2, 16384),
        "{:?}",
        t.ledger
    );
    assert_eq!(
        (
            t.facts.own_calls,
            t.facts.own_sends,
            t.facts.own_bytes,
            t.facts.sends
        ),
        (1, 1, 246, 2)
    );
    // The headers' transfer stays empty, and the headers' steps came out before the body's.
    let own = f
        .model
        .find(PID, Endpoint::User, X)
        .expect("made at the writev");
    assert_eq!(own.ledger, Ledger::default());
    let first_copy = f.out.iter().position(|s| {
        matches!(
            s.kind,
            StepKind::Copy {
                to: Buffer::Socket,
                ..
            }
        )
    });
    let first_ref = f
        .out
        .iter()
        .position(|s| matches!(s.kind, StepKind::PageRef { .. }));
    assert!(first_copy < first_ref);

    // A reply with no file (the next request on the keep-alive connection comes first):
    // the bytes are the application's own.
    f.syscall(
        1,
        sysno::WRITEV,
        [5, BUF, 2, 0, 0, 0],
        [SOCK_X, NONE],
        150,
        tcp_send(SK_X, 0, 0, 150),
    );
    f.syscall(
        1,
        sysno::RECVFROM,
        [5, BUF, 1024, 0, 0, 0],
        [SOCK_X, NONE],
        80,
        vec![],
    );
    let own = f.ledger(Endpoint::User, X);
    assert_eq!((own.syscalls, own.cpu_copy_bytes), (1, 150), "{own:?}");
    // And what waits at the end of the trace stays the application's too.
    f.syscall(
        1,
        sysno::WRITEV,
        [5, BUF, 2, 0, 0, 0],
        [SOCK_X, NONE],
        100,
        tcp_send(SK_X, 0, 0, 100),
    );
    f.model.finish(&mut f.out);
    assert_eq!(f.ledger(Endpoint::User, X).cpu_copy_bytes, 250);
    assert_eq!(f.ledger(A, X).cpu_copy_bytes, 246);
}

#[test]
fn end_of_file_reads_and_failed_sends_are_calls_without_bytes() {
    // python's http.server: read() until it returns 0; a non-blocking sendfile() that
    // finds the socket buffer full returns EAGAIN.
    let mut f = Feed::new();
    for ret in [4096, 0] {
        f.syscall(
            1,
            sysno::READ,
            [3, BUF, 65536, 0, 0, 0],
            [FILE_A, NONE],
            ret,
            vec![],
        );
        if ret > 0 {
            f.send(sysno::SENDTO, BUF, 4096, 0, 0);
        }
    }
    let l = f.ledger(A, X);
    // Two reads, one send; one copy per read that moved bytes.
    assert_eq!((l.syscalls, l.cpu_copies), (3, 2), "{l:?}");
    assert_eq!(f.model.find(PID, A, X).map(|t| t.facts.eof_calls), Some(1));

    let mut f = Feed::new();
    sendfile_x(&mut f, 8192);
    sendfile_x(&mut f, -(libc::EAGAIN as i64));
    sendfile_x(&mut f, 8192);
    let t = f.model.find(PID, A, X).expect("the file's transfer");
    assert_eq!((t.ledger.syscalls, t.ledger.page_refs), (3, 2));
    assert_eq!(t.facts.failed_calls, 1);
}

#[test]
fn retransmits_are_counted_apart_from_the_bytes_transmitted() {
    let xmit = |skb: u64, data_len: u32| Payload::NetDevStartXmit {
        skb,
        sk: SK_X,
        len: data_len + 66,
        data_len,
        shinfo_flags: 0x2,
        nr_frags: 2,
        ifindex: 1,
        dev_flags: 0x8,
        dev: "lo".into(),
        owner_pid: PID,
        // A recording made before the probe read the TCP header: matched by size.
        header_len: 0,
        seq: 0,
        software_dev: false,
    };
    let retransmit = |len: u32, err: i32| Payload::TcpRetransmit {
        sk: SK_X,
        skb: 0x99,
        len,
        err,
        owner_pid: PID,
    };
    let mut f = Feed::new();
    sendfile_x(&mut f, 8192);
    // Loopback: the clone's transmit, then the tracepoint (in softirq, task 0).
    f.ev(0, xmit(0x10, 8192));
    f.ev(0, xmit(0x11, 8192));
    f.ev(0, retransmit(8192, 0));
    // A failed attempt (6.12+ report them) sent nothing.
    f.ev(0, retransmit(8192, -105));
    // A NIC's queue may send after the tracepoint fired: the next transmit of that size.
    f.ev(0, retransmit(4096, 0));
    f.ev(0, xmit(0x12, 4096));
    let t = f.model.find(PID, A, X).expect("the file's transfer");
    assert_eq!(t.facts.xmit_spliced_bytes, 8192);
    assert_eq!(
        (t.facts.retransmits, t.facts.retransmitted_bytes),
        (2, 12288)
    );
    assert_eq!(f.model.retransmits(), (2, 12288));
    // A retransmit of a socket no transfer sends on is counted for the processes only.
    let mut f = Feed::new();
    f.ev(0, retransmit(100, 0));
    assert_eq!(f.model.retransmits(), (1, 100));
}

#[test]
fn headers_written_with_the_files_first_chunk_are_the_applications_own() {
    // nginx with `sendfile off;`: pread64() of a chunk, then one writev() of the headers
    // and that chunk; the next chunks carry the file's bytes only.
    let mut f = Feed::new();
    for (read, sent) in [(32768, 32768 + 246), (32768, 32768), (1000, 1000)] {
        f.syscall(
            1,
            sysno::PREAD64,
            [3, BUF, 32768, 0, 0, 0],
            [FILE_A, NONE],
            read,
            vec![],
        );
        f.syscall(
            1,
            sysno::WRITEV,
            [5, BUF, 2, 0, 0, 0],
            [SOCK_X, NONE],
            sent,
            tcp_send(SK_X, 0, 0, sent as i32),
        );
    }
    let t = f.model.find(PID, A, X).expect("the file's transfer");
    assert_eq!(
        (
            t.ledger.syscalls,
            t.ledger.cpu_copies,
            t.ledger.cpu_copy_bytes
        ),
        (6, 6, 2 * (32768 * 2 + 1000) + 246)
    );
    assert_eq!(
        (t.facts.own_bytes, t.facts.own_with_file, t.facts.own_sends),
        (246, 1, 0)
    );
}

#[test]
fn a_vectored_read_of_a_file_is_sent_by_the_next_vectored_send() {
    // preadv() into several buffers, writev() of them to the socket.
    let mut f = Feed::new();
    f.syscall(
        1,
        sysno::PREADV,
        [3, BUF, 2, 0, 0, 0],
        [FILE_A, NONE],
        8192,
        vec![],
    );
    f.syscall(
        1,
        sysno::WRITEV,
        [5, BUF, 2, 0, 0, 0],
        [SOCK_X, NONE],
        8192,
        tcp_send(SK_X, 0, 0, 8192),
    );
    let l = f.ledger(A, X);
    assert_eq!((l.syscalls, l.cpu_copies, l.cpu_copy_bytes), (2, 2, 16384));
    assert!(f.model.find(PID, Endpoint::User, X).is_none());
}

#[test]
fn a_copy_at_the_end_of_the_file_is_a_call_without_bytes() {
    // cp: copy_file_range() until it returns 0.
    const FILE_B: FdRef = FdRef {
        ino: 12,
        mode: S_IFREG,
        not_tcp: false,
        zc: 0,
    };
    let mut f = Feed::new();
    for ret in [4 << 20, 0] {
        f.syscall(
            1,
            sysno::COPY_FILE_RANGE,
            [3, 0, 4, 0, 1 << 30, 0],
            [FILE_A, FILE_B],
            ret,
            vec![],
        );
    }
    let t = f
        .model
        .find(PID, A, Endpoint::File { ino: 12 })
        .expect("the copy");
    assert_eq!((t.ledger.syscalls, t.ledger.cpu_copies), (2, 1));
    assert_eq!(t.facts.eof_calls, 1);
}

#[test]
fn the_loaders_read_of_a_library_is_not_what_the_program_sends_later() {
    // ld.so reads a library's ELF header into a stack buffer and maps the library; much
    // later the program receives a request and writev()s its own headers, or write()s
    // from a buffer at the same stack address.
    let mut f = Feed::new();
    f.syscall(
        1,
        sysno::READ,
        [3, BUF, 832, 0, 0, 0],
        [FILE_A, NONE],
        832,
        vec![],
    );
    f.syscall(
        1,
        sysno::MMAP,
        [
            0,
            8192,
            libc::PROT_READ as u64,
            libc::MAP_PRIVATE as u64,
            3,
            0,
        ],
        [FILE_A, NONE],
        0x7f00_0000_0000,
        vec![],
    );
    f.send(sysno::WRITE, BUF, 100, 0, 0);
    f.syscall(
        1,
        sysno::RECVFROM,
        [5, BUF + 4096, 1024, 0, 0, 0],
        [SOCK_X, NONE],
        80,
        vec![],
    );
    f.syscall(
        1,
        sysno::WRITEV,
        [5, BUF, 2, 0, 0, 0],
        [SOCK_X, NONE],
        246,
        tcp_send(SK_X, 0, 0, 246),
    );
    f.model.finish(&mut f.out);
    assert!(f.model.find(PID, A, X).is_none());
    let own = f.ledger(Endpoint::User, X);
    assert_eq!((own.syscalls, own.cpu_copy_bytes), (2, 346), "{own:?}");
}

#[test]
fn a_message_on_a_unix_socket_after_a_file_read_is_the_programs_own() {
    // nginx's master reads its configuration, then sendmsg()s a command to a worker on
    // a socketpair.
    const UNIX: FdRef = FdRef {
        ino: 23,
        mode: S_IFSOCK,
        not_tcp: true,
        zc: 0,
    };
    let mut f = Feed::new();
    f.syscall(
        1,
        sysno::READ,
        [3, BUF, 4096, 0, 0, 0],
        [FILE_A, NONE],
        1200,
        vec![],
    );
    f.syscall(
        1,
        sysno::SENDMSG,
        [5, BUF + 8192, 0, 0, 0, 0],
        [UNIX, NONE],
        32,
        vec![],
    );
    f.model.finish(&mut f.out);
    let sock = Endpoint::Socket { ino: 23 };
    assert!(f.model.find(PID, A, sock).is_none());
    assert_eq!(f.ledger(Endpoint::User, sock).syscalls, 1);
}

#[test]
fn a_page_another_process_read_from_disk_is_a_hit_for_the_next() {
    // One nginx worker reads a page from disk; after a reload the next worker finds it.
    let mut f = Feed::new();
    let add = Payload::FilemapAddToPageCache {
        ino: 11,
        dev: 1,
        index: 0,
        order: None,
    };
    let get = Payload::FilemapGetPages {
        ino: 11,
        dev: 1,
        index: 0,
        last_index: 0,
        fexit: false,
    };
    let read = |pid: u32, inside: Vec<Payload>, f: &mut Feed| {
        let mut events = vec![Payload::SyscallEnter {
            nr: sysno::READ,
            args: [3, BUF, 4096, 0, 0, 0],
            fds: [FILE_A, NONE],
        }];
        events.extend(inside);
        events.push(Payload::SyscallExit {
            nr: sysno::READ,
            ret: 4096,
        });
        for payload in events {
            f.ts += 10;
            let ev = Event {
                ts_ns: f.ts,
                cpu: 0,
                pid,
                tid: pid,
                comm: "nginx".into(),
                payload,
            };
            f.model.push(&ev, &mut f.out);
        }
    };
    read(PID, vec![add, get.clone()], &mut f);
    read(PID + 1, vec![get], &mut f);
    f.model.finish(&mut f.out);
    let cache = |pid| {
        let t = f.model.find(pid, A, Endpoint::User).expect("a read");
        (t.ledger.cache_hits, t.ledger.cache_misses)
    };
    assert_eq!((cache(PID), cache(PID + 1)), ((0, 1), (1, 0)));
}

#[test]
fn an_o_direct_read_is_the_disks_dma_into_the_applications_buffer() {
    // dd iflag=direct: read() of a file opened with O_DIRECT; the block layer reads into
    // the caller's pages (no file's), in two requests here.
    let rq = |rq: u64| Payload::BlockRqIssue {
        rq,
        bytes: 524288,
        sector: 8,
        op: 0,
        ino: 0,
        dev: 1,
        owner_pid: PID,
    };
    let mut f = Feed::new();
    for ret in [1 << 20, 0] {
        let inside = if ret > 0 { vec![rq(1), rq(2)] } else { vec![] };
        f.syscall(
            1,
            sysno::READ,
            [3, BUF, 1 << 20, 0, 0, 0],
            [FILE_A, NONE],
            ret,
            inside,
        );
    }
    f.model.finish(&mut f.out);
    let l = f.ledger(A, Endpoint::User);
    assert_eq!(
        (l.syscalls, l.cpu_copies, l.dma_copies, l.dma_bytes),
        (2, 0, 2, 1 << 20),
        "{l:?}"
    );
    assert!(f.out.iter().any(|s| matches!(
        s.kind,
        StepKind::Copy {
            engine: Engine::Dma,
            from: Buffer::Disk,
            to: Buffer::User,
            ..
        }
    )));
}

/// A transmit of socket X's skb on a veth (a software device): `len` bytes of which
/// `data_len` in frags and 66 of headers, at sequence number `seq`.
fn veth_xmit(skb: u64, len: u32, data_len: u32, seq: u32) -> Payload {
    Payload::NetDevStartXmit {
        skb,
        sk: SK_X,
        len,
        data_len,
        shinfo_flags: 0,
        nr_frags: 0,
        ifindex: 2,
        dev_flags: 0x1003,
        dev: "va".into(),
        owner_pid: PID,
        header_len: 66,
        seq,
        software_dev: true,
    }
}

#[test]
fn a_device_without_scatter_gather_copies_sendfiles_pages_once_per_byte() {
    let mut f = Feed::new();
    // sendfile of 4096 bytes: page references, then the device gets linear segments
    // (1448 + 1448 + 1200 bytes), the second one twice (a retransmission, which TCP
    // reports once the veth took it).
    let mut inside = tcp_send(SK_X, event::MSG_SPLICE_PAGES, 0, 4096);
    let length = inside.pop().unwrap();
    inside.extend([
        veth_xmit(0x1, 66 + 1448, 0, 1000),
        veth_xmit(0x2, 66 + 1448, 0, 2448),
        veth_xmit(0x3, 66 + 1448, 0, 2448),
        Payload::TcpRetransmit {
            sk: SK_X,
            skb: 0x2,
            len: 1448,
            err: 0,
            owner_pid: PID,
        },
        veth_xmit(0x4, 66 + 1200, 0, 3896),
        // A pure ACK: no payload.
        veth_xmit(0x5, 66, 0, 5096),
        length,
    ]);
    f.syscall(
        1,
        sysno::SENDFILE,
        [5, 3, 0, 4096, 0, 0],
        [SOCK_X, FILE_A],
        4096,
        inside,
    );
    let l = f.ledger(A, X);
    assert_eq!((l.page_refs, l.page_ref_bytes), (1, 4096), "{l:?}");
    assert_eq!((l.cpu_copies, l.cpu_copy_bytes), (3, 4096), "{l:?}");
    assert_eq!((l.dma_copies, l.dma_bytes), (0, 0), "{l:?}");
    let t = f.model.find(PID, A, X).unwrap();
    assert_eq!((t.facts.linear_xmits, t.facts.linear_xmit_bytes), (3, 4096));
    assert_eq!(
        (t.facts.retransmits, t.facts.retransmitted_bytes),
        (1, 1448)
    );
    assert_eq!((t.facts.peer_xmits, t.facts.nic_xmits), (3, 0));
    let copies: Vec<&Step> = f
        .out
        .iter()
        .filter(|s| matches!(s.kind, StepKind::Copy { .. }))
        .collect();
    assert!(copies.iter().all(|s| matches!(
        s.kind,
        StepKind::Copy {
            engine: Engine::Cpu,
            from: Buffer::PageCache,
            to: Buffer::Socket,
            ..
        }
    ) && s.evidence == Evidence::Observed(Seen::LinearXmit)));
    assert!(f.out.iter().any(|s| s.kind
        == StepKind::Handoff {
            bytes: 1200,
            peer: true
        }));
}

#[test]
fn the_sequence_number_tells_which_transmit_resent_what_tcp_retransmitted() {
    // Loopback with the TCP header read: transmits of 8192 bytes from sequence number 1000.
    let xmit = |skb: u64, data_len: u32, seq: u32, dev: &str| Payload::NetDevStartXmit {
        skb,
        sk: SK_X,
        len: data_len + 66,
        data_len,
        shinfo_flags: 0x2,
        nr_frags: 2,
        ifindex: 1,
        dev_flags: if dev == "lo" { 0x8 } else { 0x1003 },
        dev: dev.into(),
        owner_pid: PID,
        header_len: 66,
        seq,
        software_dev: dev == "lo",
    };
    let retransmit = |len: u32| Payload::TcpRetransmit {
        sk: SK_X,
        skb: 0x99,
        len,
        err: 0,
        owner_pid: PID,
    };
    let mut f = Feed::new();
    sendfile_x(&mut f, 8192);
    // The clone's transmit at the old sequence number makes no step, and the tracepoint
    // after it takes nothing back out again.
    f.ev(0, xmit(0x10, 8192, 1000, "lo"));
    f.ev(0, xmit(0x11, 8192, 1000, "lo"));
    f.ev(0, retransmit(8192));
    // A NIC's queue: TCP retransmits 4096 bytes before the queue sends them, and new data
    // of that very size goes out first; by size it would be taken for the resent one.
    sendfile_x(&mut f, 4096);
    f.ev(0, retransmit(4096));
    f.ev(0, xmit(0x12, 4096, 9192, "eth0"));
    f.ev(0, xmit(0x13, 4096, 5096, "eth0"));
    let t = f.model.find(PID, A, X).expect("the file's transfer");
    assert_eq!(t.facts.xmit_spliced_bytes, 8192 + 4096);
    assert_eq!(
        (t.facts.retransmits, t.facts.retransmitted_bytes),
        (2, 12288)
    );
    assert_eq!(f.model.retransmits(), (2, 12288));
    let moved: Vec<u64> = f
        .out
        .iter()
        .filter_map(|s| match s.kind {
            StepKind::Handoff { bytes, .. } => Some(bytes),
            StepKind::Copy {
                engine: Engine::Dma,
                bytes,
                ..
            } => Some(bytes),
            _ => None,
        })
        .collect();
    assert_eq!(moved, [8192, 4096], "one step per byte sent");

    // The socket's address comes back as another connection (socket Y), whose sequence
    // numbers start anywhere: behind X's, its bytes are new all the same.
    let y = Endpoint::Socket { ino: 22 };
    f.syscall(
        1,
        sysno::SENDFILE,
        [6, 3, 0, 4096, 0, 0],
        [SOCK_Y, FILE_A],
        4096,
        tcp_send(SK_X, event::MSG_SPLICE_PAGES, 0, 4096),
    );
    f.ev(0, xmit(0x14, 4096, 500, "lo"));
    let t = f
        .model
        .find(PID, A, y)
        .expect("the second connection's transfer");
    assert_eq!(t.facts.xmit_spliced_bytes, 4096);
    assert_eq!(t.facts.retransmits, 0);
}
