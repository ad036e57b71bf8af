//! The board on recorded runs: every method's sender reported as the demo reports it, its
//! receiver as a receive; the newest chunk; names; rates.

use std::path::Path;

use super::*;
use crate::{
    demo::{self, RecordLine},
    model::Method,
    workload::Report,
};

/// The events of `tests/fixtures/<method>-<cache>.jsonl`, and the workload's report.
fn fixture(method: Method, cache: &str) -> (Vec<Event>, Report) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{}-{cache}.jsonl", method.name()));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut events = Vec::new();
    let mut report = None;
    for line in text.lines() {
        match serde_json::from_str(line).unwrap() {
            RecordLine::Event { event, .. } => events.push(event),
            RecordLine::Report { report: r } => report = Some(r),
            RecordLine::Header { .. } | RecordLine::Lost { .. } => {}
        }
    }
    (events, report.expect("a report"))
}

fn board_of(events: &[Event]) -> Board {
    let mut b = Board::new();
    for e in events {
        b.push(e);
    }
    b.finish();
    b
}

#[test]
fn every_recorded_sender_is_reported_as_the_demo_reports_it() {
    for method in Method::ALL {
        for cache in ["hit", "miss"] {
            let (events, report) = fixture(method, cache);
            let board = board_of(&events);
            let reports = board.reports();
            let mut model = Model::new();
            let mut steps = Vec::new();
            for e in &events {
                model.push(e, &mut steps);
            }
            model.finish(&mut steps);
            let demo = demo::summarize(&report, &model, "k", None, 0, report.chunk as u64).unwrap();
            let (sender, receiver) = demo::pick(&model, &report);
            let s = &reports[sender.unwrap().id.0];
            let name = format!("{}-{cache}", method.name());
            assert_eq!(s.method, method.name(), "{name}: {:?}", s.evidence);
            assert!(s.sends_file, "{name}");
            assert_eq!(
                (s.bytes, s.chunk),
                (report.bytes, report.chunk as u64),
                "{name}"
            );
            let mut observed = s.observed.clone();
            observed.wall_ns = demo.sender.observed.wall_ns;
            assert_eq!(observed, demo.sender.observed, "{name}");
            assert_eq!(s.textbook.as_ref(), Some(&demo.sender.textbook), "{name}");
            assert_eq!(
                s.textbook_here.as_ref(),
                Some(&demo.sender.textbook_here),
                "{name}"
            );
            assert_eq!(s.differences, demo.differences, "{name}");
            // The workload's threads are named; the process is the sender's thread group.
            assert_eq!(s.pid, report_pid(&events, report.sender_tid), "{name}");
            if let Some(r) = receiver {
                let r = &reports[r.id.0];
                assert_eq!(r.method, "other", "{name}");
                assert!(
                    r.reason.as_deref().unwrap().starts_with("a receive"),
                    "{name}"
                );
                assert_eq!((r.textbook.as_ref(), r.differences.len()), (None, 0));
                assert_eq!(r.bytes, report.bytes, "{name}");
            }
        }
    }
}

fn report_pid(events: &[Event], tid: u32) -> u32 {
    events.iter().find(|e| e.tid == tid).unwrap().pid
}

#[test]
fn the_json_of_a_report_has_the_fields_the_readme_lists() {
    let (events, _) = fixture(Method::Sendfile, "hit");
    let board = board_of(&events);
    let report = crate::watch::WatchReport {
        transfers: board.reports(),
        drops: 0,
        retransmits: 0,
        retransmitted_bytes: 0,
        namespace_retransmits: Some(0),
    };
    let json: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
    let t = &json["transfers"][0];
    for key in [
        "pid",
        "comm",
        "source",
        "destination",
        "bytes",
        "chunk",
        "bytes_per_s",
        "per_mib",
        "method",
        "evidence",
        "observed",
        "textbook",
        "textbook_here",
        "conditions",
        "differences",
    ] {
        assert!(!t[key].is_null(), "{key} in {t}");
    }
    assert_eq!(t["method"], "sendfile");
    assert_eq!(t["source"]["kind"], "file");
    assert_eq!(t["destination"]["name"], "socket inode 118977");
    assert_eq!(t["per_mib"]["cpu_copies"], 0.0);
    assert_eq!(t["per_mib"]["mode_switches"], 32.0);
    assert_eq!(t["observed"]["page_refs"], 16);
    assert_eq!(t["textbook"]["dma_copies"], 32);
    assert!(t.get("reason").is_none());
    assert_eq!(json["transfers"][1]["textbook"], serde_json::Value::Null);
    assert!(json["transfers"][1]["reason"].is_string());
    assert_eq!(
        (json["drops"].as_u64(), json["retransmits"].as_u64()),
        (Some(0), Some(0))
    );
    // The text report has every transfer, its method and its ledger.
    let text = report.text(None, true);
    assert!(
        text.starts_with("2 transfers, 0 events dropped, 0 TCP retransmits"),
        "{text}"
    );
    assert!(
        text.contains("behaves like sendfile: 1 MiB in 16 chunks of 64 KiB"),
        "{text}"
    );
    assert!(
        text.contains("other (a receive: socket -> the application's memory"),
        "{text}"
    );
    assert!(
        text.contains("  evidence: sendfile(): 16 calls\n"),
        "{text}"
    );
}

#[test]
fn new_transfers_are_handed_out_once_to_be_named() {
    let (events, _) = fixture(Method::ReadWrite, "hit");
    let mut b = Board::new();
    let half = events.len() / 2;
    for e in &events[..half] {
        b.push(e);
    }
    let first = b.unnamed();
    assert_eq!(first.len(), 1, "{first:?}");
    let (pid, ends) = &first[0];
    assert!(!ends.is_empty());
    let file = ends[0];
    b.name(*pid, file, Name::unresolved(file, Some("test".into())));
    for e in &events[half..] {
        b.push(e);
    }
    // Only ends not handed out before.
    for (_, ends) in b.unnamed() {
        assert!(!ends.contains(&file));
    }
    assert!(b.unnamed().is_empty());
    let r = b.reports();
    assert!(r.iter().any(|t| t.source.note.as_deref() == Some("test")));
}

#[test]
fn the_newest_complete_chunk_of_each_method_plays() {
    for (method, first, calls) in [
        (Method::ReadWrite, "read", ["read", "write"].as_slice()),
        (Method::Sendfile, "sendfile", ["sendfile"].as_slice()),
        (Method::Splice, "splice", ["splice", "splice"].as_slice()),
    ] {
        let (events, report) = fixture(method, "hit");
        let mut b = Board::new();
        for e in &events {
            b.push(e);
        }
        let rows = b.rows(events.last().unwrap().ts_ns, None);
        let sender = rows
            .iter()
            .find(|r| r.report.method == method.name())
            .expect("the sender");
        let entered: Vec<&str> = sender
            .recent
            .iter()
            .filter_map(|s| match &s.kind {
                StepKind::ModeSwitch {
                    to: Mode::Kernel,
                    syscall,
                } => Some(syscall.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(entered, calls, "{}", method.name());
        assert!(matches!(
            &sender.recent[0].kind,
            StepKind::ModeSwitch { syscall, .. } if syscall == first
        ));
        assert_eq!(
            sender.seq,
            report.bytes / report.chunk as u64 * calls.len() as u64
        );
    }
}

#[test]
fn the_rate_is_the_bytes_of_the_last_seconds() {
    let (events, _) = fixture(Method::Sendfile, "hit");
    let mut b = Board::new();
    let half = events.len() / 2;
    for e in &events[..half] {
        b.push(e);
    }
    let t0 = 1_000_000_000_000;
    let before = b.rows(t0, None)[0].report.bytes;
    for e in &events[half..] {
        b.push(e);
    }
    let rows = b.rows(t0 + 500_000_000, None);
    let after = rows[0].report.bytes;
    assert!(after > before);
    assert_eq!(rows[0].rate, (after - before) * 2);
    // Only the selected row has the textbook.
    assert!(rows.iter().all(|r| r.report.textbook.is_none()));
    let id = rows[0].report.id;
    let rows = b.rows(t0 + 600_000_000, Some(id));
    assert!(rows[0].report.textbook.is_some());
}

#[test]
fn a_process_is_named_by_its_main_thread_not_a_transmit_in_its_name() {
    let (mut events, _) = fixture(Method::Sendfile, "hit");
    let pid = events[0].pid;
    // A transmit run in softirq while swapper was current carries swapper's comm.
    for e in &mut events {
        if matches!(e.payload, Payload::NetDevStartXmit { .. }) {
            e.comm = "swapper/1".into();
        }
    }
    let b = board_of(&events);
    for t in b.reports().iter().filter(|t| t.pid == pid) {
        assert_ne!(t.comm, "swapper/1");
        assert!(!t.comm.is_empty());
    }
}

#[test]
fn small_transfers_that_send_no_file_are_one_line_unless_all() {
    let (events, _) = fixture(Method::Sendfile, "hit");
    let board = board_of(&events);
    let mut transfers = board.reports();
    // A library the loader read: 100 bytes into memory.
    let mut small = transfers[1].clone();
    small.bytes = 100;
    small.sends_file = false;
    transfers.push(small);
    let report = crate::watch::WatchReport {
        transfers,
        drops: 0,
        retransmits: 0,
        retransmitted_bytes: 0,
        namespace_retransmits: None,
    };
    let brief = report.text(None, false);
    assert!(brief.contains("behaves like sendfile"), "{brief}");
    assert!(
        brief.ends_with(
            "1 small transfer not listed: under 64 KiB each and sending no file (100 bytes in all; --all lists them, the JSON has them)\n"
        ),
        "{brief}"
    );
    let all = report.text(None, true);
    assert!(!all.contains("not listed"), "{all}");
    assert_eq!(all.matches("\npid ").count(), 3, "{all}");
    // The JSON keeps every transfer.
    let json: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
    assert_eq!(json["transfers"].as_array().map(Vec::len), Some(3));
}
