//! Whole screens at 80x24 and 120x40, after each step of the lesson, for read-write and
//! sendfile (TestBackend + insta); panes rendered into a Buffer.

use ratatui::{Terminal, backend::TestBackend, buffer::Buffer, layout::Rect, widgets::Widget as _};

use super::{
    app::{App, Kind, Msg, initial_action, update},
    ledger::LedgerPane,
    timeline::lanes,
    view,
};
use crate::model::Method;

const KERNEL: &str = "6.18.0-test";

fn lesson(method: Method) -> App {
    let mut app = App::new(Kind::Lesson, Some(method), KERNEL, 8 << 20, 64 << 10, false);
    initial_action(&mut app);
    app
}

fn screen(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(f, app)).unwrap();
    t
}

fn text(buf: &Buffer) -> String {
    let mut s = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

#[test]
fn lesson_screens_after_each_step() {
    for method in [Method::ReadWrite, Method::Sendfile] {
        let mut app = lesson(method);
        // Half-way through each step, so the token sits mid-arrow.
        app.playing = false;
        for step in 0..=app.queue.len() {
            app.shown = step;
            app.step_ms = app.interval_ms() / 2;
            for (w, h) in [(80, 24), (120, 40)] {
                let t = screen(&app, w, h);
                insta::assert_snapshot!(
                    format!("lesson_{}_{w}x{h}_step{step:02}", method.name()),
                    t.backend()
                );
            }
        }
    }
}

#[test]
fn the_read_write_lesson_shows_four_copies_and_four_switches() {
    let mut app = lesson(Method::ReadWrite);
    app.shown = app.queue.len();
    let (_, _, _, switches) = lanes(&app);
    assert_eq!(switches, 4);
    let all = text(screen(&app, 120, 40).backend().buffer());
    assert!(all.contains("mode switches: 4 so far"), "{all}");
    let copies = app
        .queue
        .iter()
        .filter(|s| matches!(s.kind, Some(crate::model::StepKind::Copy { .. })))
        .count();
    assert_eq!(copies, 4);
    // The sendfile lesson: two switches, no CPU copy, a descriptor.
    let mut app = lesson(Method::Sendfile);
    app.shown = app.queue.len();
    assert_eq!(lanes(&app).3, 2);
    assert!(!app.queue.iter().any(|s| matches!(
        s.kind,
        Some(crate::model::StepKind::Copy {
            engine: crate::model::Engine::Cpu,
            ..
        })
    )));
}

#[test]
fn the_middle_stage_lesson_is_three_copies_one_by_the_cpu_and_two_switches() {
    let mut app = lesson(Method::SendfileNogather);
    app.shown = app.queue.len();
    assert_eq!(lanes(&app).3, 2);
    let copies: Vec<_> = app
        .queue
        .iter()
        .filter_map(|s| match s.kind {
            Some(crate::model::StepKind::Copy { engine, .. }) => Some(engine),
            _ => None,
        })
        .collect();
    assert_eq!(
        copies,
        [
            crate::model::Engine::Dma,
            crate::model::Engine::Cpu,
            crate::model::Engine::Dma
        ]
    );
    // The picker tells the stages in the article's order.
    assert_eq!(
        Method::LESSON[..3],
        [Method::ReadSend, Method::SendfileNogather, Method::Sendfile]
    );
}

#[test]
fn the_picker_the_help_and_a_small_terminal() {
    let mut app = App::new(Kind::Lesson, None, KERNEL, 8 << 20, 64 << 10, false);
    insta::assert_snapshot!("picker_80x24", screen(&app, 80, 24).backend());
    update(
        &mut app,
        Msg::Key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char('?'),
            crossterm::event::KeyModifiers::NONE,
        )),
    );
    insta::assert_snapshot!("help_80x24", screen(&app, 80, 24).backend());
    let small = text(screen(&app, 60, 20).backend().buffer());
    assert!(
        small.contains("The terminal is 60x20: the tracer needs at least 80x24."),
        "{small}"
    );
}

#[test]
fn the_ledger_pane_marks_observed_values_that_differ() {
    let mut app = App::new(
        Kind::Live,
        Some(Method::Sendfile),
        KERNEL,
        1 << 20,
        64 << 10,
        true,
    );
    initial_action(&mut app);
    let mut observed = app.textbook.clone();
    observed.dma_copies = 3;
    update(
        &mut app,
        Msg::Progress {
            sender: observed,
            receiver: None,
            events_per_s: 100,
            drops: 0,
        },
    );
    let area = Rect::new(0, 0, 30, 14);
    let mut buf = Buffer::empty(area);
    LedgerPane { app: &app }.render(area, &mut buf);
    let t = text(&buf);
    assert!(t.contains("observed textbook"), "{t}");
    let dma = t.lines().find(|l| l.contains("DMA copies")).unwrap();
    // While the run goes, partial counts are not flagged; once done, they are.
    assert!(!dma.contains("≠") && dma.contains("32"), "{dma}");
    app.state = super::app::RunState::Done;
    let mut buf = Buffer::empty(area);
    LedgerPane { app: &app }.render(area, &mut buf);
    let t = text(&buf);
    let dma = t.lines().find(|l| l.contains("DMA copies")).unwrap();
    assert!(dma.contains("3≠") && dma.contains("32"), "{dma}");
    let switches = t.lines().find(|l| l.contains("switches")).unwrap();
    assert!(
        !switches.contains("≠") && switches.contains("32"),
        "{switches}"
    );
}

#[test]
fn a_live_runs_last_step_explains_the_differences() {
    use crate::model::compare::{Difference, Reason, Reasons};
    let mut app = App::new(
        Kind::Live,
        Some(Method::ReadWrite),
        KERNEL,
        1 << 20,
        64 << 10,
        true,
    );
    initial_action(&mut app);
    // A finished run (the counts as a loopback, warm-cache run makes them).
    app.state = super::app::RunState::Done;
    app.differences = vec![Difference {
        field: "dma_copies",
        observed: 0,
        textbook: 32,
        reasons: Reasons(vec![Reason::DiskDmaSkipped, Reason::NoNicDma]),
    }];
    app.queue.push(super::app::Shown {
        number: None,
        kind: None,
        text: "The other 15 chunks go the same way.".into(),
        evidence: "summary".into(),
    });
    app.shown = app.queue.len();
    let all = text(screen(&app, 80, 24).backend().buffer());
    assert!(all.contains("why they differ"), "{all}");
    assert!(
        all.contains("≠ dma_copies 0/32: disk DMA skipped: page cache"),
        "{all}"
    );
}

#[test]
fn a_device_name_in_a_reason_is_escaped_in_the_why_pane() {
    use crate::model::compare::{Difference, Reason, Reasons};
    let mut app = App::new(
        Kind::Live,
        Some(Method::Sendfile),
        KERNEL,
        1 << 20,
        64 << 10,
        true,
    );
    initial_action(&mut app);
    app.state = super::app::RunState::Done;
    // A device any root in a namespace may name: a right-to-left override and ESC.
    app.differences = vec![Difference {
        field: "dma_copies",
        observed: 40,
        textbook: 32,
        reasons: Reasons(vec![Reason::NicTransmits {
            xmits: 40,
            devices: vec!["e\u{202e}0ht\u{1b}".into()],
        }]),
    }];
    app.queue.push(super::app::Shown {
        number: None,
        kind: None,
        text: "The other 15 chunks go the same way.".into(),
        evidence: "summary".into(),
    });
    app.shown = app.queue.len();
    let all = text(screen(&app, 120, 40).backend().buffer());
    assert!(all.contains(r"e\xe2\x80\xae0ht\x1b"), "{all}");
    assert!(
        !all.contains('\u{202e}') && !all.contains('\u{1b}'),
        "{all}"
    );
}

#[test]
fn the_doctor_page_shows_this_methods_report_scrolls_and_closes_with_any_other_key() {
    let mut app = lesson(Method::Sendfile);
    let report = |m: &str, n| {
        format!(
            "kernel 6.18.0-test ({m})\n  fentry/fexit: no: refused with EPERM at program load\n{}",
            (1..=n)
                .map(|i| format!("step line {i}\n"))
                .collect::<String>()
        )
    };
    update(
        &mut app,
        Msg::Doctor(vec![
            (Method::ReadWrite, report("read-write", 3)),
            (Method::Sendfile, report("sendfile", 60)),
        ]),
    );
    let key = |code| {
        Msg::Key(crossterm::event::KeyEvent::new(
            code,
            crossterm::event::KeyModifiers::NONE,
        ))
    };
    let ch = |c| key(crossterm::event::KeyCode::Char(c));
    update(&mut app, ch('d'));
    let all = text(screen(&app, 80, 24).backend().buffer());
    assert!(all.contains("doctor: the probes on this kernel"), "{all}");
    // The whole title fits at 80x24.
    assert!(
        all.contains("(↑↓ PgUp PgDn scroll; other keys close) ─"),
        "{all}"
    );
    assert!(all.contains("kernel 6.18.0-test (sendfile)"), "{all}");
    assert!(!all.contains("step line 40"), "{all}");
    // It scrolls to the end of a report longer than the screen.
    for _ in 0..4 {
        update(&mut app, key(crossterm::event::KeyCode::PageDown));
    }
    let all = text(screen(&app, 80, 24).backend().buffer());
    assert!(all.contains("step line 40"), "{all}");
    assert!(!all.contains("(sendfile)"), "{all}");
    // q closes the page, it does not quit.
    assert_eq!(update(&mut app, ch('q')), None);
    assert!(!app.doctor_shown && !app.quit);
}

#[test]
fn every_methods_lesson_at_its_last_step() {
    for method in Method::LESSON {
        let mut app = lesson(method);
        app.playing = false;
        app.shown = app.queue.len();
        for (w, h) in [(80, 24), (120, 40)] {
            let t = screen(&app, w, h);
            insta::assert_snapshot!(
                format!("lesson_{}_{w}x{h}_last", method.name()),
                t.backend()
            );
        }
    }
}

/// This project's CI kernel, made up: fentry refused at program load, no kprobes, every
/// tracepoint, no `do_tcp_sendpages` (gone in 6.5).
fn linux_6_18_caps() -> crate::probe::plan::Caps {
    use crate::probe::why::{Answer, FunctionLack, Lack, Refusal, Stage, TrialError};
    crate::probe::plan::Caps {
        kernel: KERNEL.into(),
        fentry: Some(Lack::Refused(TrialError::Refused {
            by: None,
            refusal: Refusal {
                at: Stage::ProgramLoad,
                answer: Answer::Errno(libc::EPERM),
            },
        })),
        fentry_tried_on: Some("tcp_sendmsg_locked".into()),
        kprobes: Some(Lack::NotBuiltIn {
            evidence: crate::probe::NO_KPROBE_PMU,
        }),
        program_types: [("tracepoint", "yes"), ("tp_btf", "yes"), ("kprobe", "yes")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        tracepoints: crate::probe::hooks::step_tracepoints()
            .map(str::to_string)
            .collect(),
        functions: std::iter::once((
            "do_tcp_sendpages".to_string(),
            FunctionLack::NotInBtf {
                era: Some("removed in 6.5"),
            },
        ))
        .collect(),
        ..Default::default()
    }
}

#[test]
fn the_doctor_page_snapshot() {
    // The doctor's report per method, as `doctor::report_texts` makes it, on a made-up
    // kernel with this build's programs.
    let caps = linux_6_18_caps();
    let plan = crate::probe::plan::plan(&caps, &crate::probe::loader::build(None));
    let texts = Method::ALL
        .iter()
        .map(|m| {
            (
                *m,
                crate::doctor::text(&caps, &plan, Some(*m), "none", true),
            )
        })
        .collect();
    let mut app = lesson(Method::Sendfile);
    app.playing = false;
    app.shown = app.queue.len();
    update(&mut app, Msg::Doctor(texts));
    update(
        &mut app,
        Msg::Key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char('d'),
            crossterm::event::KeyModifiers::NONE,
        )),
    );
    assert!(app.doctor_shown);
    for (w, h) in [(80, 24), (120, 40)] {
        let t = screen(&app, w, h);
        let all = text(t.backend().buffer());
        assert!(
            all.contains("kernel 6.18.0-test") && all.contains("EPERM"),
            "{all}"
        );
        insta::assert_snapshot!(format!("doctor_sendfile_{w}x{h}"), t.backend());
    }
}

/// A finished live run of `method`, fed as `ui::run`'s runner feeds the TUI, from the
/// recorded run `tests/fixtures/<method>-hit.jsonl`: the sender's new steps and the
/// ledgers so far after every batch of events, once more at the end, then the comparison.
fn replayed_live_run(method: Method) -> App {
    use crate::{
        demo::{self, RecordLine},
        model::Model,
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{}-hit.jsonl", method.name()));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut kernel = String::new();
    let mut events = Vec::new();
    let mut report = None;
    for (i, line) in text.lines().enumerate() {
        match serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1))
        {
            RecordLine::Header { kernel: k, .. } => kernel = k,
            RecordLine::Event { event, .. } => events.push(event),
            RecordLine::Report { report: r } => report = Some(r),
            RecordLine::Lost { .. } => panic!("{}: a recording with a gap", path.display()),
        }
    }
    let report = report.expect("the recording has the workload's report");
    let chunk = report.chunk as u64;
    let mut app = App::new(
        Kind::Live,
        Some(method),
        &kernel,
        report.bytes,
        chunk,
        false,
    );
    assert_eq!(
        initial_action(&mut app),
        Some(super::app::Action::Start(method))
    );
    // The event rate by the recording's clock, so that the screen is the same each time.
    let first_ns = events.first().map_or(0, |e| e.ts_ns);
    let mut model = Model::new();
    let observe =
        |app: &mut App, model: &Model, steps: &[crate::model::Step], fed: u64, ts_ns: u64| {
            // What `live_runner`'s observer sends.
            let sender = model.sender(None);
            let mine: Vec<_> = steps
                .iter()
                .filter(|s| sender.is_some_and(|t| s.transfer == Some(t.id)))
                .cloned()
                .collect();
            if !mine.is_empty() {
                update(app, Msg::Steps(mine));
            }
            if let Some(sender) = sender {
                let secs = ((ts_ns - first_ns) as f64 / 1e9).max(1e-3);
                update(
                    app,
                    Msg::Progress {
                        sender: sender.ledger.clone(),
                        receiver: model.receiver(None).map(|t| t.ledger.clone()),
                        events_per_s: (fed as f64 / secs) as u64,
                        drops: 0,
                    },
                );
            }
        };
    let mut fed = 0;
    let mut steps = Vec::new();
    for batch in events.chunks(64) {
        for e in batch {
            model.push(e, &mut steps);
        }
        fed += batch.len() as u64;
        observe(&mut app, &model, &steps, fed, batch[batch.len() - 1].ts_ns);
        steps.clear();
    }
    model.finish(&mut steps);
    let last_ns = events.last().map_or(0, |e| e.ts_ns);
    observe(&mut app, &model, &steps, fed, last_ns);
    let result = demo::summarize(&report, &model, &kernel, None, 0, chunk).unwrap();
    update(&mut app, Msg::Done(Box::new(result)));
    app
}

/// `tracer replay`'s screen: a format-2 recording fed as `ui::run`'s replay runner feeds
/// the TUI, then its result.
fn replayed_recording() -> App {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/recordings/v2-read-send-cold.jsonl");
    super::run::replayed_app(&path, None).unwrap()
}

#[test]
fn a_replayed_recording_shows_the_recorded_run() {
    let mut app = replayed_recording();
    assert_eq!(app.state, super::app::RunState::Done);
    app.playing = false;
    app.shown = app.queue.len();
    for (w, h) in [(80, 24), (120, 40)] {
        let all = text(screen(&app, w, h).backend().buffer());
        assert!(all.contains("replay"), "{all}");
        insta::assert_snapshot!(
            format!("replay_read-send_{w}x{h}_last"),
            screen(&app, w, h).backend()
        );
    }
}

fn press(app: &mut App, code: crossterm::event::KeyCode) {
    update(
        app,
        Msg::Key(crossterm::event::KeyEvent::new(
            code,
            crossterm::event::KeyModifiers::NONE,
        )),
    );
}

/// Stepping back is the screen of the step before, whatever the mode: after n, n, b the
/// screen is the one after n (diagram, narration, timeline, history, both ledgers).
#[test]
fn stepping_back_shows_the_screen_of_that_step() {
    use crossterm::event::KeyCode::{Char, End, Enter, Home, Left, Right};
    for name in ["lesson_read-send", "replay_read-send"] {
        let make = || match name {
            "lesson_read-send" => lesson(Method::ReadSend),
            _ => replayed_recording(),
        };
        for (w, h) in [(80, 24), (120, 40)] {
            let mut app = make();
            app.playing = false;
            app.shown = 0;
            press(&mut app, Char('n'));
            let after_n = text(screen(&app, w, h).backend().buffer());
            press(&mut app, Char('n'));
            assert_ne!(text(screen(&app, w, h).backend().buffer()), after_n);
            press(&mut app, Char('b'));
            assert_eq!(
                text(screen(&app, w, h).backend().buffer()),
                after_n,
                "{name}"
            );
            insta::assert_snapshot!(
                format!("step_back_{name}_{w}x{h}"),
                screen(&app, w, h).backend()
            );
            // The arrows do the same; back stops at the first step.
            press(&mut app, Right);
            press(&mut app, Left);
            press(&mut app, Left);
            assert_eq!(text(screen(&app, w, h).backend().buffer()), after_n);
            // g, a number, Enter; Home and End.
            for c in [Char('g'), Char('4'), Enter] {
                press(&mut app, c);
            }
            assert_eq!(app.shown, 4);
            press(&mut app, End);
            assert_eq!(app.shown, app.queue.len());
            press(&mut app, Home);
            assert_eq!(text(screen(&app, w, h).backend().buffer()), after_n);
            // A number out of range says so and moves nothing.
            for c in [Char('g'), Char('9'), Char('9'), Enter] {
                press(&mut app, c);
            }
            assert_eq!(app.shown, 1);
            assert!(
                app.notice
                    .as_deref()
                    .is_some_and(|n| n.starts_with("no step 99"))
            );
            // g then another key cancels; q is then a key like any other.
            press(&mut app, Char('g'));
            press(&mut app, Char('q'));
            assert!(!app.quit && app.goto.is_none());
        }
    }
}

/// The ledger's two scopes: read+send's first chunk is 4 switches, 2 CPU and 2 DMA
/// copies (the article's), the whole run the model's totals.
#[test]
fn the_ledger_has_this_chunk_so_far_and_the_whole_run() {
    let mut app = lesson(Method::ReadSend);
    app.shown = app.queue.len() - 1;
    let narrow = text(screen(&app, 80, 24).backend().buffer());
    assert!(narrow.contains("chunk so far: 4sw 2CPU 2DMA"), "{narrow}");
    assert!(narrow.contains("whole run  textbook"), "{narrow}");
    let wide = text(screen(&app, 120, 40).backend().buffer());
    assert!(
        wide.contains("this chunk so far: 4 sw, 2 CPU, 2 DMA, 0 refs"),
        "{wide}"
    );
    // Back two steps: the chunk's counts are those up to there.
    press(&mut app, crossterm::event::KeyCode::Char('b'));
    press(&mut app, crossterm::event::KeyCode::Char('b'));
    let back = text(screen(&app, 80, 24).backend().buffer());
    assert!(back.contains("chunk so far: 3sw 2CPU 1DMA"), "{back}");
    // At 80x24 the last steps are on the narration's border.
    assert!(back.contains("before: "), "{back}");
}

/// `lesson --compare read-send,sendfile`: the two paths stacked at 80x24 and side by side
/// at 120x40, stepping together by article number; Tab gives the keys to the other.
#[test]
fn two_lessons_compared_step_together() {
    use crossterm::event::KeyCode::{Char, End, Tab};
    let mut app = lesson(Method::ReadSend);
    let mut second = App::new(
        Kind::Lesson,
        Some(Method::Sendfile),
        KERNEL,
        8 << 20,
        64 << 10,
        false,
    );
    initial_action(&mut second);
    app.compare = Some(Box::new(second));
    app.playing = false;
    let second = |app: &App| app.compare.as_deref().map_or(0, |b| b.shown);
    // read-send's step 4 is the first of its number 2 (the CPU copy into the app);
    // sendfile's last step numbered 2 is its 5th (the DMA to the NIC, after the
    // descriptor).
    for _ in 0..4 {
        press(&mut app, Char('n'));
    }
    assert_eq!((app.shown, second(&app)), (4, 5));
    for (w, h) in [(80, 24), (120, 40)] {
        let all = text(screen(&app, w, h).backend().buffer());
        assert!(
            all.contains(
                "sendfile saves 2 mode switches and 2 CPU copies per chunk (256 and 256 per run)"
            ),
            "{all}"
        );
        insta::assert_snapshot!(
            format!("compare_read-send_sendfile_{w}x{h}_step04"),
            screen(&app, w, h).backend()
        );
    }
    // Tab: the keys step sendfile, read-send follows.
    press(&mut app, Tab);
    press(&mut app, Char('n'));
    assert_eq!((app.shown, second(&app)), (7, 6));
    assert_eq!(app.current().and_then(|s| s.number), Some(3));
    press(&mut app, End);
    assert_eq!((app.shown, second(&app)), (10, 7));
    for (w, h) in [(80, 24), (120, 40)] {
        insta::assert_snapshot!(
            format!("compare_read-send_sendfile_{w}x{h}_last"),
            screen(&app, w, h).backend()
        );
    }
    // r and m would restart one path: off here, with a word why.
    press(&mut app, Char('r'));
    assert!(
        app.notice
            .as_deref()
            .is_some_and(|n| n.starts_with("compare:"))
    );
    press(&mut app, Char('q'));
    assert!(app.quit);
}

/// `tracer replay A B`: two recordings side by side, the difference from their ledgers.
#[test]
fn two_recordings_compared() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut app =
        super::run::replayed_app(&dir.join("recordings/v2-read-send-cold.jsonl"), None).unwrap();
    let second = super::run::replayed_app(&dir.join("sendfile-miss.jsonl"), None).unwrap();
    app.compare = Some(Box::new(second));
    app.shown = 1;
    press(&mut app, crossterm::event::KeyCode::End);
    let all = text(screen(&app, 80, 24).backend().buffer());
    assert!(
        all.contains(
            "sendfile saves 2 mode switches and 2 CPU copies per chunk (32 and 32 per run)"
        ),
        "{all}"
    );
    insta::assert_snapshot!("compare_replays_80x24_last", screen(&app, 80, 24).backend());
}

#[test]
fn finished_live_runs_at_their_last_step() {
    for method in [Method::ReadSend, Method::Sendfile] {
        let mut app = replayed_live_run(method);
        assert_eq!(app.state, super::app::RunState::Done);
        app.playing = false;
        app.shown = app.queue.len();
        // The first chunk step by step, then the summary of the rest.
        assert!(app.queue.len() > 2, "{:?}", app.queue);
        let last = app.current().expect("a step on screen");
        assert!(last.text.starts_with("The other 15 chunks"), "{last:?}");
        for (w, h) in [(80, 24), (120, 40)] {
            let t = screen(&app, w, h);
            insta::assert_snapshot!(format!("live_{}_{w}x{h}_last", method.name()), t.backend());
        }
    }
}

/// `tracer watch`'s screen fed as its runner feeds it, from the recorded run
/// `tests/fixtures/<method>-hit.jsonl`: the board takes the events in batches, and after
/// each the rows go to the app (the selected one in full), then a last frame at the end.
fn replayed_watch(method: Method) -> App {
    use crate::{
        demo::RecordLine,
        model::TransferId,
        ui::{app::Action, watching::WatchFrame},
        watch::Board,
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{}-hit.jsonl", method.name()));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut kernel = String::new();
    let mut events = Vec::new();
    for line in text.lines() {
        match serde_json::from_str(line).unwrap() {
            RecordLine::Header { kernel: k, .. } => kernel = k,
            RecordLine::Event { event, .. } => events.push(event),
            RecordLine::Report { .. } | RecordLine::Lost { .. } => {}
        }
    }
    let mut app = App::new(Kind::Watch, None, &kernel, 0, 1, false);
    assert_eq!(initial_action(&mut app), None);
    let mut board = Board::new();
    let mut selected: Option<TransferId> = None;
    let mut frame = |app: &mut App, board: &mut Board, now: u64, ended: Option<String>| {
        let rows = board.rows(now, selected);
        let action = update(
            app,
            Msg::Watch(Box::new(WatchFrame {
                rows,
                events_per_s: 20_000,
                drops: 0,
                ended,
            })),
        );
        if let Some(Action::Select(id)) = action {
            selected = Some(id);
        }
    };
    for batch in events.chunks(64) {
        for e in batch {
            board.push(e);
        }
        frame(&mut app, &mut board, batch[batch.len() - 1].ts_ns, None);
    }
    board.finish();
    let last = events.last().map_or(0, |e| e.ts_ns);
    // Once more with the selection known, then the end.
    frame(&mut app, &mut board, last, None);
    frame(
        &mut app,
        &mut board,
        last,
        Some("the command exited with status 0".into()),
    );
    app
}

#[test]
fn the_watch_screen_plays_the_selected_transfers_newest_chunk() {
    for method in [Method::Sendfile, Method::ReadSend] {
        let mut app = replayed_watch(method);
        assert_eq!(app.watching.rows.len(), 2);
        // The sender is on screen, its textbook known.
        let row = app.watching.selected_row().unwrap();
        assert_eq!(row.report.method, method.name());
        assert!(row.report.textbook.is_some());
        app.playing = false;
        // Its first step, half-way, then the end of the chunk (the reasons).
        app.shown = 1;
        app.step_ms = app.interval_ms() / 2;
        for (w, h) in [(80, 24), (120, 40)] {
            let t = screen(&app, w, h);
            insta::assert_snapshot!(
                format!("watch_{}_{w}x{h}_first", method.name()),
                t.backend()
            );
        }
        app.shown = app.queue.len();
        for (w, h) in [(80, 24), (120, 40)] {
            let t = screen(&app, w, h);
            insta::assert_snapshot!(format!("watch_{}_{w}x{h}_last", method.name()), t.backend());
        }
    }
}

#[test]
fn up_and_down_pick_a_transfer_and_its_chunk_plays() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut app = replayed_watch(Method::Sendfile);
    let sender = app.watching.selected.unwrap();
    let key = |code| Msg::Key(KeyEvent::new(code, KeyModifiers::NONE));
    let action = update(&mut app, key(KeyCode::Down));
    let receiver = app.watching.selected.unwrap();
    assert_ne!(receiver, sender);
    assert_eq!(action, Some(super::app::Action::Select(receiver)));
    // The receiver's newest read, numbered by nothing (a receive is no method), then the
    // summary.
    assert!(app.queue.len() >= 3, "{:?}", app.queue);
    assert!(
        app.queue[0].text.starts_with("read() switches the CPU"),
        "{:?}",
        app.queue[0]
    );
    assert!(
        app.queue
            .last()
            .unwrap()
            .text
            .starts_with("That was the newest chunk. So far")
    );
    assert_eq!(app.shown, 0);
    // Wrapping back up; `m` says what watch does instead.
    update(&mut app, key(KeyCode::Down));
    assert_eq!(app.watching.selected, Some(sender));
    update(&mut app, key(KeyCode::Char('m')));
    assert!(
        app.notice
            .as_deref()
            .unwrap()
            .contains("↑↓ picks a transfer")
    );
    assert_eq!(app.screen, super::app::Screen::Run);
    // The help lists watch's keys.
    update(&mut app, key(KeyCode::Char('?')));
    let all = text(screen(&app, 80, 24).backend().buffer());
    assert!(all.contains("pick a transfer"), "{all}");
    assert!(!all.contains("method picker"), "{all}");
}

#[test]
fn a_newer_chunk_takes_the_place_of_one_that_has_played() {
    let mut app = replayed_watch(Method::Sendfile);
    let loaded = app.watching.loaded_seq;
    // Pretend the selected transfer made more calls since its chunk was loaded.
    let at = app.watching.selected_index().unwrap();
    app.watching.rows[at].seq += 1;
    // Not while it plays ...
    update(&mut app, Msg::Tick(10));
    assert_eq!(app.watching.loaded_seq, loaded);
    // ... but once its summary has been on screen for a step's time.
    app.shown = app.queue.len();
    app.step_ms = app.interval_ms();
    update(&mut app, Msg::Tick(10));
    assert_eq!(app.watching.loaded_seq, Some(app.watching.rows[at].seq));
    assert_eq!(app.shown, 0);
}
