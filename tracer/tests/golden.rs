//! Golden outputs of the model on every recorded fixture (no root needed): every step of
//! every transfer with its evidence, the transfers with their ledgers and facts, and the
//! headless report as JSON and as text, exactly as `tracer demo` printed them.
//!
//! A change that is meant to change no behaviour (a refactor) must leave these snapshots
//! byte for byte as they are; a change that is meant to change an output shows here what
//! it changed, fixture by fixture.

use std::{fmt::Write as _, path::Path};

use tracer::{
    demo::{self, RecordLine},
    model::{Method, Model},
    workload::Report,
};

const CHUNK: u64 = 64 << 10;

/// Replays one fixture and renders everything the model and the report made of it.
fn golden(method: Method, cache: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{}-{cache}.jsonl", method.name()));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut model = Model::new();
    let mut steps = Vec::new();
    let mut report: Option<Report> = None;
    let mut kernel = String::new();
    for (i, line) in text.lines().enumerate() {
        let line: RecordLine = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
        match line {
            RecordLine::Header { kernel: k, .. } => kernel = k,
            RecordLine::Event { event, .. } => model.push(&event, &mut steps),
            RecordLine::Report { report: r } => report = Some(r),
            // A gap in the stream (the fixtures have none).
            RecordLine::Lost { .. } => {}
        }
    }
    model.finish(&mut steps);
    let report = report.expect("the recording has the workload's report");
    let result = demo::summarize(&report, &model, &kernel, None, 0, CHUNK).unwrap();
    let (sender, receiver) = demo::pick(&model, &report);
    let mut out = String::new();
    writeln!(
        out,
        "sender transfer: {:?}, receiver transfer: {:?}",
        sender.map(|t| t.id),
        receiver.map(|t| t.id)
    )
    .unwrap();
    out.push_str("--- report (text)\n");
    out.push_str(&demo::report_text(&result));
    out.push_str("\n--- report (json)\n");
    out.push_str(&serde_json::to_string_pretty(&result).unwrap());
    out.push_str("\n--- transfers\n");
    for t in model.transfers() {
        writeln!(out, "{}", serde_json::to_string(t).unwrap()).unwrap();
    }
    out.push_str("--- steps\n");
    for s in &steps {
        writeln!(out, "{}", serde_json::to_string(s).unwrap()).unwrap();
    }
    out
}

#[test]
fn every_fixture_gives_the_same_steps_transfers_and_report() {
    for method in Method::ALL {
        for cache in ["hit", "miss"] {
            let name = format!("{}-{cache}", method.name());
            insta::assert_snapshot!(name, golden(method, cache));
        }
    }
}

/// `tracer watch`'s text report (every transfer, `--all`) of a recording of a real program
/// (`fixtures/realprog-*.jsonl`, see `tests/model.rs`), replayed through its board.
fn watch_golden(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("realprog-{name}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut board = tracer::watch::Board::new();
    for (i, line) in text.lines().enumerate() {
        let line: RecordLine = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
        if let RecordLine::Event { event, .. } = line {
            board.push(&event);
        }
    }
    board.finish();
    let (retransmits, retransmitted_bytes) = board.retransmits();
    tracer::watch::WatchReport {
        transfers: board.reports(),
        drops: 0,
        retransmits,
        retransmitted_bytes,
        namespace_retransmits: None,
    }
    .text(None, true)
}

#[test]
fn every_real_program_recording_gives_the_same_watch_report() {
    for name in [
        "nginx-sendfile-on",
        "nginx-sendfile-off",
        "python-http-server",
        "cp",
        "curl",
    ] {
        insta::assert_snapshot!(format!("realprog-{name}"), watch_golden(name));
    }
}

mod doctor {
    //! `tracer doctor`'s report (text and JSON) on made-up kernels, with this build's
    //! programs: what the planner chose and why it refused every better hook.

    use std::collections::{BTreeMap, BTreeSet};

    use tracer::{
        doctor,
        model::Method,
        probe::{
            hooks, loader,
            plan::{self, Caps},
            why::{Answer, FunctionLack, Lack, NoBtf, Refusal, Stage, TrialError},
        },
    };

    fn all_tracepoints() -> BTreeSet<String> {
        hooks::step_tracepoints().map(str::to_string).collect()
    }

    /// This project's CI kernel: no kprobes, fentry refused, every tracepoint.
    fn linux_6_18() -> Caps {
        Caps {
            kernel: "6.18.0-test".into(),
            fentry: Some(Lack::Refused(TrialError::Refused {
                by: None,
                refusal: Refusal {
                    at: Stage::ProgramLoad,
                    answer: Answer::Errno(libc::EPERM),
                },
            })),
            fentry_tried_on: Some("tcp_sendmsg_locked".into()),
            kprobes: Some(Lack::NotBuiltIn {
                evidence: "no kprobe PMU",
            }),
            program_types: [("tracepoint", "yes"), ("tp_btf", "yes"), ("kprobe", "yes")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            tracepoints: all_tracepoints(),
            functions: std::iter::once((
                "do_tcp_sendpages".to_string(),
                FunctionLack::NotInBtf {
                    era: Some("removed in 6.5"),
                },
            ))
            .collect(),
            ..Caps::default()
        }
    }

    /// Debian's 6.1: fentry and kprobes work; no send tracepoints, no lookups tracepoints,
    /// the pre-6.5 sendpage era, the copy helpers notrace, one fentry trial refused.
    fn linux_6_1() -> Caps {
        let mut tracepoints = all_tracepoints();
        for tp in [
            "tcp_sendmsg_locked",
            "mm_filemap_get_pages",
            "sock_send_length",
            "mm_filemap_map_pages",
            "mm_filemap_fault",
            "io_uring_submit_req",
        ] {
            tracepoints.remove(tp);
        }
        let mut functions = BTreeMap::new();
        for absent in ["skb_splice_from_iter", "splice_folio_into_pipe"] {
            functions.insert(
                absent.to_string(),
                FunctionLack::NotInBtf {
                    era: Some("before 6.5"),
                },
            );
        }
        functions.insert(
            "filemap_splice_read".to_string(),
            FunctionLack::NotInBtf { era: None },
        );
        for helper in [
            "_copy_to_iter",
            "_copy_from_iter",
            "copy_page_to_iter",
            "_copy_to_user",
            "_copy_from_user",
        ] {
            functions.insert(helper.to_string(), FunctionLack::Notrace);
        }
        Caps {
            kernel: "6.1.0-test".into(),
            tracepoints,
            functions,
            tried: (8, 1),
            fentry_refused: std::iter::once((
                "skb_copy_ubufs".to_string(),
                // A made-up kernel's words (a measured refusal says "refused with ...").
                TrialError::Other("attach refused with EBUSY".to_string()),
            ))
            .collect(),
            ..Caps::default()
        }
    }

    fn no_btf() -> Caps {
        Caps {
            kernel: "5.4.0-test".into(),
            no_btf: Some(NoBtf("no /sys/kernel/btf/vmlinux".into())),
            fentry: Some(Lack::TrialsUnavailable("no BTF".into())),
            kprobes: Some(Lack::NotTried {
                because: "not root",
                seen: None,
            }),
            ringbuf: Some(Lack::NotProbed { because: None }),
            tracepoints: ["sys_enter", "sys_exit"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ..Caps::default()
        }
    }

    #[test]
    fn doctor_reports_are_the_same_on_made_up_kernels() {
        let build = loader::build(None);
        for (name, caps) in [
            ("6.18", linux_6_18()),
            ("6.1", linux_6_1()),
            ("no-btf", no_btf()),
        ] {
            let plan = plan::plan(&caps, &build);
            let mut out = doctor::text(&caps, &plan, None, "none", false);
            for m in [Method::ReadSend, Method::Sendfile, Method::CopyFileRange] {
                out.push_str(&format!("--- --method {}\n", m.name()));
                out.push_str(&doctor::text(&caps, &plan, Some(m), "integrity", true));
            }
            out.push_str("--- json\n");
            out.push_str(&doctor::json_text(&caps, &plan, None, "none".into(), false).unwrap());
            out.push_str("\n--- json --method splice\n");
            out.push_str(
                &doctor::json_text(&caps, &plan, Some(Method::Splice), "none".into(), true)
                    .unwrap(),
            );
            insta::assert_snapshot!(format!("doctor-{name}"), out);
        }
    }
}

/// `trace`'s JSON and text lines for the first event of each kind (and of each syscall)
/// in every fixture.
#[test]
fn trace_lines_of_every_event_kind_are_the_same() {
    use std::collections::BTreeSet;
    use tracer::event::{KernelConsts, Payload};
    let consts = KernelConsts::linux_6_12();
    let mut seen = BTreeSet::new();
    let mut out = String::new();
    for method in Method::ALL {
        for cache in ["hit", "miss"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(format!("{}-{cache}.jsonl", method.name()));
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines() {
                let Ok(RecordLine::Event { event, .. }) = serde_json::from_str(line) else {
                    continue;
                };
                let nr = match &event.payload {
                    Payload::SyscallEnter { nr, .. } | Payload::SyscallExit { nr, .. } => *nr,
                    _ => 0,
                };
                if seen.insert((event.payload.name(), nr)) {
                    writeln!(out, "{}", event.to_json(&consts)).unwrap();
                    writeln!(out, "{}", event.to_text(&consts)).unwrap();
                }
            }
        }
    }
    insta::assert_snapshot!("trace-lines", out);
}
