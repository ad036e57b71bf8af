//! The model on recorded runs (no root needed): every method, page cache warm ("hit") and
//! evicted ("miss"), recorded on this project's CI kernel (6.18, loopback, ext4) with
//! `tracer demo --method M --size 1M [--cold] --record tracer/tests/fixtures/M-{hit,miss}.jsonl`.
//!
//! The assertions are what each method must cost whatever the timing: syscall and copy
//! counts the kernel makes deterministically, bytes, and page-cache hits and misses; and
//! that the mode switches the model counts are, one by one, the syscalls the recording
//! holds for the sender and the receiver.

use std::path::Path;

use tracer::{
    demo::{self, MethodResult, RecordLine},
    event::{Event, Payload},
    model::{Buffer, Engine, Evidence, Ledger, Method, Mode, Model, Seen, Step, StepKind},
    workload::Report,
};

const SIZE: u64 = 1 << 20;
const CHUNK: u64 = 64 << 10;
const N: u64 = SIZE / CHUNK;
const PAGES: u64 = SIZE / 4096;

struct Run {
    result: MethodResult,
    /// The sender transfer's steps, in order.
    steps: Vec<Step>,
    /// The receiver transfer's steps, in order (none for copy-file-range).
    receiver_steps: Vec<Step>,
    /// Every event of the recording, as the kernel reported it.
    events: Vec<Event>,
    report: Report,
}

fn replay(method: Method, cache: &str) -> Run {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{}-{cache}.jsonl", method.name()));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut model = Model::new();
    let mut steps = Vec::new();
    let mut report: Option<Report> = None;
    let mut kernel = String::new();
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line: RecordLine = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
        match line {
            RecordLine::Header { kernel: k, .. } => kernel = k,
            RecordLine::Event { method: m, event } => {
                assert_eq!(m, Some(method));
                model.push(&event, &mut steps);
                events.push(event);
            }
            RecordLine::Report { report: r } => report = Some(r),
            // Exact ledgers need every event.
            RecordLine::Lost { count, .. } => panic!(
                "{}:{}: the kernel dropped {count} events in this recording: record it again",
                path.display(),
                i + 1
            ),
        }
    }
    model.finish(&mut steps);
    let report = report.expect("the recording has the workload's report");
    assert_eq!((report.bytes, report.chunk as u64), (SIZE, CHUNK));
    let result = demo::summarize(&report, &model, &kernel, None, 0, CHUNK).unwrap();
    let (sender, receiver) = demo::pick(&model, &report);
    let of = |id| -> Vec<Step> {
        steps
            .iter()
            .filter(|s| s.transfer == Some(id))
            .cloned()
            .collect()
    };
    Run {
        result,
        steps: of(sender.unwrap().id),
        receiver_steps: receiver.map(|t| of(t.id)).unwrap_or_default(),
        events,
        report,
    }
}

/// A mode switch: the syscall and the mode it switches to.
type Switch = (String, Mode);

/// The mode switches among `steps`, in order.
fn step_switches(steps: &[Step]) -> Vec<Switch> {
    steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::ModeSwitch { to, syscall } => Some((syscall.clone(), *to)),
            _ => None,
        })
        .collect()
}

/// Thread `tid`'s syscall entries and exits in the recording (within `window` when
/// given), as the kernel reported them: what the model's mode switches must match.
fn recorded_switches(
    events: &[Event],
    tid: u32,
    window: Option<std::ops::RangeInclusive<u64>>,
) -> Vec<Switch> {
    events
        .iter()
        .filter(|e| e.tid == tid && window.as_ref().is_none_or(|w| w.contains(&e.ts_ns)))
        .filter_map(|e| match &e.payload {
            Payload::SyscallEnter { nr, .. } => {
                Some((tracer::syscalls::name(*nr).into_owned(), Mode::Kernel))
            }
            Payload::SyscallExit { nr, .. } => {
                Some((tracer::syscalls::name(*nr).into_owned(), Mode::User))
            }
            _ => None,
        })
        .collect()
}

/// The syscalls each method's transfer is made of (the workload's own choice of calls).
fn transfer_syscalls(method: Method) -> &'static [&'static str] {
    match method {
        Method::ReadWrite => &["read", "write"],
        Method::ReadSend => &["read", "sendto"],
        Method::MmapWrite => &["mmap", "write", "munmap"],
        Method::Sendfile | Method::SendfileNogather => &["sendfile"],
        Method::Splice => &["splice"],
        // The completion notifications are reaped from the error queue.
        Method::MsgZerocopy => &["read", "sendto", "recvmsg"],
        Method::IoUring => &["io_uring_enter"],
        Method::CopyFileRange => &["copy_file_range"],
    }
}

/// The sender's and the receiver's mode switches are the syscalls the recording holds
/// for them, one by one, and the ledgers count exactly those.
fn check_switches(run: &Run, method: Method, cache: &str) {
    let r = &run.report;
    let (transfer, other): (Vec<Switch>, Vec<Switch>) =
        recorded_switches(&run.events, r.sender_tid, Some(r.start_ns..=r.end_ns))
            .into_iter()
            .partition(|(name, _)| transfer_syscalls(method).contains(&name.as_str()));
    assert_eq!(
        step_switches(&run.steps),
        transfer,
        "{method:?} {cache}: the sender's mode switches are not its syscalls in the recording"
    );
    // The sender's other syscalls in its window are not the transfer's: the start mark's
    // gettid, and msg-zerocopy's wait for its notifications.
    for (name, _) in &other {
        assert!(
            name == "gettid" || (method == Method::MsgZerocopy && name == "poll"),
            "{method:?} {cache}: the sender's {name} is in no transfer"
        );
    }
    let o = &run.result.sender.observed;
    let entries = |s: &[Switch]| s.iter().filter(|(_, to)| *to == Mode::Kernel).count() as u64;
    assert_eq!(
        (o.syscalls, o.mode_switches),
        (entries(&transfer), transfer.len() as u64),
        "{method:?} {cache}"
    );
    let Some(tid) = r.receiver_tid else {
        assert!(run.receiver_steps.is_empty(), "{method:?} {cache}");
        return;
    };
    // The receiver's reads of the socket, every one of them (the last returns 0).
    let reads: Vec<Switch> = recorded_switches(&run.events, tid, None)
        .into_iter()
        .filter(|(name, _)| name == "read")
        .collect();
    assert_eq!(
        step_switches(&run.receiver_steps),
        reads,
        "{method:?} {cache}: the receiver's mode switches are not its reads in the recording"
    );
    let rx = run
        .result
        .receiver
        .observed
        .as_ref()
        .expect("a receiver transfer");
    assert_eq!(
        (rx.syscalls, rx.mode_switches),
        (entries(&reads), reads.len() as u64),
        "{method:?} {cache}"
    );
}

fn check_cache(o: &Ledger, cache: &str) {
    match cache {
        "hit" => {
            assert_eq!((o.cache_hits, o.cache_misses), (PAGES, 0), "{o:?}");
            assert_eq!((o.dma_copies, o.dma_bytes), (0, 0), "{o:?}");
        }
        _ => {
            assert_eq!((o.cache_hits, o.cache_misses), (0, PAGES), "{o:?}");
            // Readahead batches the disk reads: fewer requests than chunks, every byte.
            assert!((1..=N).contains(&o.dma_copies), "{o:?}");
            assert_eq!(o.dma_bytes, SIZE, "{o:?}");
        }
    }
}

fn check(method: Method, cache: &str, f: impl Fn(&Ledger)) -> Run {
    let run = replay(method, cache);
    let r = &run.result;
    let o = &r.sender.observed;
    check_cache(o, cache);
    f(o);
    // The loopback receiver copies every byte out of the socket, seen per skb.
    if method != Method::CopyFileRange {
        let rx = r.receiver.observed.as_ref().expect("a receiver transfer");
        assert_eq!(rx.cpu_copy_bytes, SIZE, "{rx:?}");
    }
    // Every difference from the article's model has a reason the model accounts for.
    for d in &r.differences {
        assert!(d.explained(), "{method:?} {cache}: {d:?}");
        assert!(!d.reasons.is_empty());
    }
    check_switches(&run, method, cache);
    run
}

#[test]
fn read_write_is_four_switches_and_two_cpu_copies_per_chunk() {
    for cache in ["hit", "miss"] {
        let run = check(Method::ReadWrite, cache, |o| {
            assert_eq!((o.syscalls, o.mode_switches), (2 * N, 4 * N));
            assert_eq!((o.cpu_copies, o.cpu_copy_bytes), (2 * N, 2 * SIZE));
            assert_eq!(o.page_refs, 0);
        });
        // The article's order: read enters, (disk), the copy to the user, read returns,
        // write enters, the copy to the socket, (hand-off), write returns.
        let kinds: Vec<String> = run
            .steps
            .iter()
            .take_while(|s| !matches!(&s.kind, StepKind::ModeSwitch { to: Mode::User, syscall } if syscall == "write"))
            .filter_map(|s| match &s.kind {
                StepKind::ModeSwitch { to, syscall } => Some(format!("{syscall}:{to:?}")),
                StepKind::Copy { engine: Engine::Cpu, from, to, .. } => Some(format!("{from:?}->{to:?}")),
                StepKind::Handoff { .. } => Some("handoff".into()),
                _ => None,
            })
            .collect();
        // write() copies, then loopback hands the skbs over (as many as the segments).
        let handoffs = kinds.len().saturating_sub(5);
        assert!(handoffs >= 1, "{kinds:?}");
        let mut want = vec![
            "read:Kernel",
            "PageCache->User",
            "read:User",
            "write:Kernel",
            "User->Socket",
        ];
        want.extend(std::iter::repeat_n("handoff", handoffs));
        assert_eq!(kinds, want, "{cache}");
        // The page cache -> user copy has no tracepoint: inferred. The send is observed.
        let evidence = |from, to| {
            run.steps
                .iter()
                .find_map(|s| match &s.kind {
                    StepKind::Copy { from: f, to: t, .. } if *f == from && *t == to => {
                        Some(s.evidence)
                    }
                    _ => None,
                })
                .unwrap()
        };
        assert!(matches!(
            evidence(Buffer::PageCache, Buffer::User),
            Evidence::Inferred(_)
        ));
        assert!(matches!(
            evidence(Buffer::User, Buffer::Socket),
            Evidence::Observed(Seen::TcpSendmsg { .. })
        ));
    }
}

#[test]
fn read_send_costs_the_same_as_read_write() {
    for cache in ["hit", "miss"] {
        check(Method::ReadSend, cache, |o| {
            assert_eq!((o.syscalls, o.mode_switches), (2 * N, 4 * N));
            assert_eq!((o.cpu_copies, o.cpu_copy_bytes), (2 * N, 2 * SIZE));
        });
    }
}

#[test]
fn mmap_write_drops_the_copy_to_user() {
    for cache in ["hit", "miss"] {
        let run = check(Method::MmapWrite, cache, |o| {
            // mmap, one write per chunk, munmap.
            assert_eq!(o.syscalls, N + 2);
            assert_eq!((o.cpu_copies, o.cpu_copy_bytes), (N, SIZE));
        });
        // The copy reads the page cache through the mapping.
        assert!(run.steps.iter().any(|s| matches!(
            s.kind,
            StepKind::Copy {
                engine: Engine::Cpu,
                from: Buffer::PageCache,
                to: Buffer::Socket,
                ..
            }
        )));
    }
}

#[test]
fn sendfile_is_two_switches_and_no_cpu_copy() {
    for cache in ["hit", "miss"] {
        check(Method::Sendfile, cache, |o| {
            assert_eq!((o.syscalls, o.mode_switches), (N, 2 * N));
            assert_eq!((o.cpu_copies, o.cpu_copy_bytes), (0, 0));
            assert_eq!((o.page_refs, o.page_ref_bytes), (N, SIZE));
        });
    }
}

#[test]
fn splice_references_pages_twice_and_copies_nothing() {
    for cache in ["hit", "miss"] {
        check(Method::Splice, cache, |o| {
            assert_eq!((o.syscalls, o.mode_switches), (2 * N, 4 * N));
            assert_eq!((o.cpu_copies, o.cpu_copy_bytes), (0, 0));
            assert_eq!((o.page_refs, o.page_ref_bytes), (2 * N, 2 * SIZE));
        });
    }
}

#[test]
fn msg_zerocopy_pins_and_loopback_copies_later() {
    for cache in ["hit", "miss"] {
        let run = check(Method::MsgZerocopy, cache, |o| {
            // read + send per chunk, and at least one completion reap per chunk.
            assert!(o.syscalls >= 3 * N, "{o:?}");
            assert_eq!((o.page_refs, o.page_ref_bytes), (N, SIZE));
            // The read's copy plus the deferred copy of every pinned byte on loopback.
            assert_eq!(o.cpu_copy_bytes, 2 * SIZE);
        });
        let f = &run.result.sender.facts;
        assert_eq!(f.deferred_copy_bytes, SIZE);
        assert!(f.completion_reaps >= N);
        assert!(
            run.steps
                .iter()
                .any(|s| matches!(s.kind, StepKind::PageRef { pinned: true, .. }))
        );
        // The first chunk in the article's order: the read (entry, copy out of the page
        // cache), the pin, and only then loopback's copy of the pinned pages (which
        // happens inside the send call): never a copy before the first read.
        let first_read = run
            .steps
            .iter()
            .position(|s| matches!(&s.kind, StepKind::ModeSwitch { to: Mode::Kernel, syscall } if syscall == "read"))
            .unwrap();
        let first_pin = run
            .steps
            .iter()
            .position(|s| matches!(s.kind, StepKind::PageRef { pinned: true, .. }))
            .unwrap();
        let first_deferred = run
            .steps
            .iter()
            .position(|s| {
                matches!(
                    s.kind,
                    StepKind::Copy {
                        from: Buffer::User,
                        to: Buffer::Socket,
                        ..
                    }
                )
            })
            .unwrap();
        assert!(
            first_read < first_pin && first_pin < first_deferred,
            "{cache}: read {first_read}, pin {first_pin}, deferred copy {first_deferred}"
        );
    }
}

#[test]
fn io_uring_reads_copies_and_pins_without_per_op_syscalls() {
    for cache in ["hit", "miss"] {
        check(Method::IoUring, cache, |o| {
            assert!((N..=3 * N).contains(&o.syscalls), "{o:?}");
            assert_eq!((o.page_refs, o.page_ref_bytes), (N, SIZE));
            assert_eq!(o.cpu_copy_bytes, 2 * SIZE);
        });
    }
}

#[test]
fn copy_file_range_copies_page_cache_to_page_cache() {
    for cache in ["hit", "miss"] {
        let run = check(Method::CopyFileRange, cache, |o| {
            assert_eq!((o.syscalls, o.mode_switches), (N, 2 * N));
            assert_eq!((o.cpu_copies, o.cpu_copy_bytes), (N, SIZE));
            assert_eq!(o.page_refs, 0);
        });
        // ext4 reports the bytes it copied into the destination's page cache.
        assert!(
            run.steps
                .iter()
                .any(|s| s.evidence == Evidence::Observed(Seen::Ext4DaWriteEnd))
        );
    }
}

/// Recordings of real programs under `tracer watch --record` (this project's CI kernel,
/// 6.18, loopback, ext4, cached files), replayed through watch's board: the ledgers the
/// root tests in `realprogs.rs` assert on 64 MiB, exactly, on 1 MiB (4 MiB for cp).
///
/// - `realprog-nginx-sendfile-{on,off}`: `watch --pid` of an nginx 1.22 worker while
///   curl fetched a 1 MiB file (`sendfile on;`, then `off;`).
/// - `realprog-python-http-server`: `watch --pid` of `python3 -m http.server` (3.11)
///   while curl fetched the same file.
/// - `realprog-cp`: `watch -- cp` of a 4 MiB file (coreutils 9.1).
/// - `realprog-curl`: `watch -- curl -o FILE` of the 1 MiB file from nginx.
mod real_programs {
    use std::path::Path;

    use serde_json::Value;
    use tracer::{
        demo::RecordLine,
        watch::{Board, WatchReport},
    };

    const MIB: u64 = 1 << 20;

    /// The report watch gives on the recording `realprog-{name}.jsonl`, as JSON.
    fn report(name: &str) -> WatchReport {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(format!("realprog-{name}.jsonl"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut board = Board::new();
        for (i, line) in text.lines().enumerate() {
            match serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1))
            {
                RecordLine::Event { event, .. } => board.push(&event),
                RecordLine::Lost { count, .. } => {
                    panic!("{}: {count} events lost: record it again", path.display())
                }
                RecordLine::Header { .. } | RecordLine::Report { .. } => {}
            }
        }
        board.finish();
        let (retransmits, retransmitted_bytes) = board.retransmits();
        WatchReport {
            transfers: board.reports(),
            drops: 0,
            retransmits,
            retransmitted_bytes,
            namespace_retransmits: None,
        }
    }

    /// The report's transfers, as JSON, whose source and destination kinds are these and
    /// that moved more than 64 KiB.
    fn big(report: &WatchReport, src: &str, dst: &str) -> Vec<Value> {
        report
            .transfers
            .iter()
            .map(|t| serde_json::to_value(t).unwrap())
            .filter(|t| {
                t["source"]["kind"] == src
                    && t["destination"]["kind"] == dst
                    && t["bytes"].as_u64() > Some(64 << 10)
            })
            .collect()
    }

    fn one(report: &WatchReport, src: &str, dst: &str) -> Value {
        let all = big(report, src, dst);
        assert_eq!(all.len(), 1, "one {src} -> {dst} transfer: {all:?}");
        all.into_iter().next().unwrap()
    }

    /// The ledger fields, in `tracer::model::Ledger::FIELDS` order without the time.
    fn ledger(t: &Value) -> [u64; 10] {
        let f = |name: &str| t["observed"][name].as_u64().unwrap();
        [
            f("mode_switches"),
            f("syscalls"),
            f("cpu_copies"),
            f("cpu_copy_bytes"),
            f("dma_copies"),
            f("dma_bytes"),
            f("page_refs"),
            f("page_ref_bytes"),
            f("cache_hits"),
            f("cache_misses"),
        ]
    }

    fn all_explained(t: &Value) {
        let left: Vec<_> = t["differences"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["explained"] == false)
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn nginx_with_sendfile_on_copies_only_its_headers() {
        let r = report("nginx-sendfile-on");
        let t = one(&r, "file", "socket");
        assert_eq!(
            (t["method"].as_str(), t["bytes"].as_u64()),
            (Some("sendfile"), Some(MIB))
        );
        // writev() of the 246 bytes of headers, one sendfile() of the whole file (the
        // socket buffer took it), 16 TCP sends of 64 KiB of page references.
        assert_eq!(t["evidence"][0], "writev(): 1 call, sendfile(): 1 call");
        assert_eq!(ledger(&t), [4, 2, 1, 246, 0, 0, 16, MIB, 256, 0]);
        all_explained(&t);
        // The request: received into nginx's memory.
        let requests = r
            .transfers
            .iter()
            .filter(|t| t.classification.name() == "other" && t.bytes == 83)
            .count();
        assert_eq!(requests, 1);
    }

    #[test]
    fn nginx_with_sendfile_off_copies_each_chunk_twice() {
        let r = report("nginx-sendfile-off");
        let t = one(&r, "file", "socket");
        assert_eq!(
            (t["method"].as_str(), t["bytes"].as_u64()),
            (Some("read-write"), Some(MIB))
        );
        // 32 pread64() of 32 KiB, 32 writev() of them, the first with the headers: two
        // CPU copies per chunk, the file's bytes twice and the headers once.
        assert_eq!(t["evidence"][0], "pread64(): 32 calls, writev(): 32 calls");
        assert_eq!(t["chunk"], 32 << 10);
        assert_eq!(ledger(&t), [128, 64, 64, 2 * MIB + 246, 0, 0, 0, 0, 256, 0]);
        assert_eq!(t["per_mib"]["cpu_copies"], 64.0);
        all_explained(&t);
    }

    #[test]
    fn pythons_http_server_reads_and_sends_each_chunk() {
        let r = report("python-http-server");
        let t = one(&r, "file", "socket");
        assert_eq!(
            (t["method"].as_str(), t["bytes"].as_u64()),
            (Some("read-send"), Some(MIB))
        );
        // sendto() of the 205 bytes of headers, then read()/sendto() of 64 KiB 16 times
        // and the read() that returns 0.
        assert_eq!(t["evidence"][0], "sendto(): 17 calls, read(): 17 calls");
        assert_eq!(t["chunk"], 64 << 10);
        assert_eq!(ledger(&t), [68, 34, 33, 2 * MIB + 205, 0, 0, 0, 0, 256, 0]);
        all_explained(&t);
        assert!(
            t["differences"]
                .to_string()
                .contains("1 calls at the end of the file returned 0")
        );
    }

    #[test]
    fn cp_copies_page_cache_to_page_cache_in_one_call() {
        let r = report("cp");
        let t = one(&r, "file", "file");
        assert_eq!(
            (t["method"].as_str(), t["bytes"].as_u64()),
            (Some("copy-file-range"), Some(4 * MIB))
        );
        // One copy_file_range() of the whole file, one at its end that returns 0.
        assert_eq!(t["evidence"][0], "copy_file_range(): 2 calls");
        assert_eq!(ledger(&t), [4, 2, 1, 4 * MIB, 0, 0, 0, 0, 1024, 0]);
        all_explained(&t);
    }

    #[test]
    fn curl_receives_into_its_memory_and_writes_the_file() {
        let r = report("curl");
        // The response (the 246 bytes of headers and the file) copied once out of the
        // socket per recvfrom(), then written from curl's memory in 8 KiB pieces.
        let rx = one(&r, "socket", "user");
        assert_eq!(rx["bytes"], MIB + 246);
        assert_eq!(rx["evidence"][0], "recvfrom(): 11 calls");
        assert_eq!(ledger(&rx), [22, 11, 11, MIB + 246, 0, 0, 0, 0, 0, 0]);
        let w = one(&r, "user", "file");
        assert_eq!(w["bytes"], MIB);
        assert_eq!(w["evidence"][0], "write(): 123 calls");
        assert_eq!(ledger(&w), [246, 123, 123, MIB, 0, 0, 0, 0, 0, 0]);
        assert_eq!(r.drops, 0);
    }
}
