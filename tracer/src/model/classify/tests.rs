//! Classification of every recorded run (the sender transfer as its own method, the
//! receiver as a receive) and of transfers the demo's workload does not make.

use std::path::Path;

use super::*;
use crate::{
    demo::RecordLine,
    model::{Model, TransferId},
    workload::Report,
};

/// Replays `tests/fixtures/<method>-<cache>.jsonl`: the model, every transfer's behaviour,
/// and the workload's report.
fn replay(method: Method, cache: &str) -> (Model, Vec<Behaviour>, Report) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{}-{cache}.jsonl", method.name()));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut model = Model::new();
    let mut steps = Vec::new();
    let mut report = None;
    for line in text.lines() {
        match serde_json::from_str(line).unwrap() {
            RecordLine::Event { event, .. } => model.push(&event, &mut steps),
            RecordLine::Report { report: r } => report = Some(r),
            RecordLine::Header { .. } | RecordLine::Lost { .. } => {}
        }
    }
    model.finish(&mut steps);
    let mut behaviours = vec![Behaviour::new(); model.transfers().len()];
    for s in &steps {
        let TransferId(i) = s.transfer.expect("every emitted step has a transfer");
        behaviours[i].record(s);
    }
    (model, behaviours, report.expect("a report"))
}

#[test]
fn every_recorded_sender_behaves_like_its_method_and_the_receiver_receives() {
    for method in Method::ALL {
        for cache in ["hit", "miss"] {
            let (model, behaviours, report) = replay(method, cache);
            let (sender, receiver) = crate::demo::pick(&model, &report);
            let sender = sender.expect("a sender transfer");
            let b = &behaviours[sender.id.0];
            let c = classify(sender.src, sender.dst, b);
            assert_eq!(
                c.behaves,
                Behaves::Like(method),
                "{}-{cache}: {:?}",
                method.name(),
                c.evidence
            );
            assert_eq!(c.name(), method.name());
            assert_eq!(c.reason(), None);
            // The bytes the workload moved, in its chunks.
            assert_eq!(
                b.bytes_and_chunks(sender.src, sender.dst),
                (report.bytes, report.bytes / report.chunk as u64),
                "{}-{cache}",
                method.name()
            );
            assert_eq!(b.chunk(sender.src, sender.dst), report.chunk as u64);
            if let Some(r) = receiver {
                let c = classify(r.src, r.dst, &behaviours[r.id.0]);
                assert_eq!(c.behaves, Behaves::Other(Unlike::Receive));
                assert_eq!(c.name(), "other");
                assert_eq!(
                    behaviours[r.id.0].bytes_and_chunks(r.src, r.dst).0,
                    report.bytes
                );
            }
            // io-uring sent with SEND_ZC on the recording's kernel.
            if method == Method::IoUring {
                assert!(zero_copy_send(b));
            }
        }
    }
}

#[test]
fn the_evidence_names_the_calls_and_how_the_payload_went() {
    let (model, behaviours, report) = replay(Method::Sendfile, "hit");
    let sender = crate::demo::pick(&model, &report).0.unwrap();
    let c = classify(sender.src, sender.dst, &behaviours[sender.id.0]);
    assert_eq!(
        c.evidence,
        [
            "sendfile(): 16 calls",
            "page references into the socket (no copy): 1 MiB in 16 steps, observed by \
             tcp_sendmsg_locked (MSG_SPLICE_PAGES), sock_send_length",
        ]
    );
    let (model, behaviours, report) = replay(Method::MsgZerocopy, "hit");
    let sender = crate::demo::pick(&model, &report).0.unwrap();
    let c = classify(sender.src, sender.dst, &behaviours[sender.id.0]);
    assert_eq!(
        c.evidence[0],
        "read(): 16 calls, sendto(): 16 calls, recvmsg(): 31 calls"
    );
    assert!(
        c.evidence[1].starts_with(
            "the application's pages pinned into the socket (no copy): 1 MiB in 16 steps, \
             observed by tcp_sendmsg_locked (MSG_ZEROCOPY on an SO_ZEROCOPY socket)"
        ),
        "{:?}",
        c.evidence
    );
    // The read side comes after what reached the socket.
    assert!(
        c.evidence[2].starts_with(
            "copied by the CPU from the page cache into the application's buffer: 1 MiB"
        ),
        "{:?}",
        c.evidence
    );
}

fn step(kind: StepKind, evidence: Evidence) -> Step {
    Step {
        ts_ns: 1,
        pid: 1,
        tid: 1,
        transfer: Some(TransferId(0)),
        kind,
        evidence,
    }
}

fn call(b: &mut Behaviour, name: &str, inside: Vec<StepKind>) {
    let switch = |to| StepKind::ModeSwitch {
        to,
        syscall: name.into(),
    };
    b.record(&step(
        switch(Mode::Kernel),
        Evidence::Observed(Seen::SysEnter),
    ));
    for k in inside {
        b.record(&step(k, Evidence::Inferred(Inference::FileWriteReturned)));
    }
    b.record(&step(switch(Mode::User), Evidence::Observed(Seen::SysExit)));
}

fn cpu(from: Buffer, to: Buffer, bytes: u64) -> StepKind {
    StepKind::Copy {
        engine: Engine::Cpu,
        from,
        to,
        bytes,
    }
}

const FILE: Endpoint = Endpoint::File { ino: 1 };
const OTHER_FILE: Endpoint = Endpoint::File { ino: 2 };
const SOCK: Endpoint = Endpoint::Socket { ino: 3 };

#[test]
fn transfers_no_method_makes_are_other_with_the_reason() {
    // read()+write() between two files.
    let mut b = Behaviour::new();
    call(
        &mut b,
        "read",
        vec![cpu(Buffer::PageCache, Buffer::User, 4096)],
    );
    call(
        &mut b,
        "write",
        vec![cpu(Buffer::User, Buffer::PageCache, 4096)],
    );
    let c = classify(FILE, OTHER_FILE, &b);
    assert_eq!(c.behaves, Behaves::Other(Unlike::FileThroughMemory));
    assert!(
        c.reason()
            .unwrap()
            .starts_with("read()+write() between two files")
    );
    // sendfile() into a file copies like copy_file_range.
    let mut b = Behaviour::new();
    call(
        &mut b,
        "sendfile",
        vec![cpu(Buffer::PageCache, Buffer::PageCache, 4096)],
    );
    assert_eq!(
        classify(FILE, OTHER_FILE, &b).behaves,
        Behaves::Like(Method::CopyFileRange)
    );
    // A file read and kept, the application's own bytes sent.
    let mut b = Behaviour::new();
    call(
        &mut b,
        "pread64",
        vec![cpu(Buffer::PageCache, Buffer::User, 4096)],
    );
    assert_eq!(
        classify(FILE, Endpoint::User, &b).behaves,
        Behaves::Other(Unlike::ReadIntoMemory)
    );
    assert_eq!(b.bytes_and_chunks(FILE, Endpoint::User), (4096, 1));
    let mut b = Behaviour::new();
    call(
        &mut b,
        "writev",
        vec![cpu(Buffer::User, Buffer::Socket, 200)],
    );
    let c = classify(Endpoint::User, SOCK, &b);
    assert_eq!(
        c.behaves,
        Behaves::Other(Unlike::OwnBytes { into_file: false })
    );
    // sendfile whose payload was copied is not sendfile.
    let mut b = Behaviour::new();
    call(
        &mut b,
        "sendfile",
        vec![cpu(Buffer::PageCache, Buffer::Socket, 4096)],
    );
    let c = classify(FILE, SOCK, &b);
    assert_eq!(
        c.behaves,
        Behaves::Other(Unlike::Delivered {
            method: Method::Sendfile,
            how: Delivery::CopiedFromPageCache
        })
    );
    assert_eq!(
        c.reason().unwrap(),
        "sendfile's syscalls, but the payload was copied by the CPU from the page cache into the socket"
    );
    // A sendfile that has sent nothing yet.
    let mut b = Behaviour::new();
    call(&mut b, "sendfile", vec![]);
    assert_eq!(
        classify(FILE, SOCK, &b).behaves,
        Behaves::Other(Unlike::NothingDelivered)
    );
}

#[test]
fn a_call_sent_in_pieces_is_one_chunk_and_loopbacks_copies_are_not_the_payload() {
    let mut b = Behaviour::new();
    let r = |bytes| StepKind::PageRef {
        from: Buffer::PageCache,
        to: Buffer::Socket,
        bytes,
        pinned: false,
    };
    // A 1 MiB sendfile the kernel sent in 16 rounds, twice.
    for _ in 0..2 {
        call(
            &mut b,
            "sendfile",
            std::iter::repeat_n(r(65536), 16).collect(),
        );
    }
    assert_eq!(b.bytes_and_chunks(FILE, SOCK), (2 << 20, 2));
    assert_eq!(b.chunk(FILE, SOCK), 1 << 20);
    // Loopback's copy of pinned pages, after the send.
    let mut b = Behaviour::new();
    call(
        &mut b,
        "sendto",
        vec![StepKind::PageRef {
            from: Buffer::User,
            to: Buffer::Socket,
            bytes: 4096,
            pinned: true,
        }],
    );
    b.record(&step(
        cpu(Buffer::User, Buffer::Socket, 4096),
        Evidence::Inferred(Inference::LoopbackCopiesPins),
    ));
    assert_eq!(b.bytes_and_chunks(FILE, SOCK), (4096, 1));
    assert_eq!(
        classify(FILE, SOCK, &b).behaves,
        Behaves::Like(Method::MsgZerocopy)
    );
}
