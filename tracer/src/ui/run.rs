//! The TUI's runtime: the terminal (restored on quit, on panic and on SIGTERM), the event
//! loop turning keys, frame ticks, signals and runner output into messages, and the runners:
//! live transfers on a task that owns the probes, or the textbook for a lesson.

use std::{
    io::{IsTerminal as _, Stdout, stdout},
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use crossterm::{
    cursor::{Hide, Show},
    event::{Event, EventStream, KeyEventKind},
    execute,
    terminal::{
        Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode,
        enable_raw_mode,
    },
};
use futures_util::StreamExt as _;
use ratatui::{Terminal, backend::CrosstermBackend};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::{
    app::{Action, App, Kind, Msg, Probes, initial_action, update},
    view,
};
use crate::{
    demo::{self, Lab},
    model::{Method, Model, Step},
};

/// What the TUI was asked to show.
#[derive(Clone, Debug)]
pub struct TuiOptions {
    pub kind: Kind,
    pub method: Option<Method>,
    pub size: u64,
    pub file: Option<PathBuf>,
    pub chunk: u64,
    /// Live runs: evict the file first (the default), so the disk DMA is real.
    pub cold: bool,
    /// Live runs: what the socket methods cross.
    pub link: crate::workload::LinkKind,
    /// A second method shown beside the first (`lesson --compare A,B`).
    pub compare: Option<Method>,
}

/// Restores the terminal when dropped, and from the panic hook.
struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

fn restore() {
    drop(disable_raw_mode());
    // Cleared first: some terminals keep the alternate screen's last frame when it grew.
    drop(execute!(
        stdout(),
        Clear(ClearType::All),
        LeaveAlternateScreen,
        Show
    ));
}

impl Screen {
    fn enter() -> Result<Self> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        enable_raw_mode().context("switching the terminal to raw mode")?;
        // Keys typed while the probes loaded were meant for a screen that was not there
        // yet (an Enter would start the picker's method): drop them.
        // SAFETY: tcflush on standard input; a failure (not a terminal) is harmless.
        unsafe { libc::tcflush(libc::STDIN_FILENO, libc::TCIFLUSH) };
        let screen = execute!(stdout(), EnterAlternateScreen, Hide)
            .context("switching to the alternate screen")
            .and_then(|_| {
                Terminal::new(CrosstermBackend::new(stdout())).context("opening the terminal")
            });
        match screen {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Runs the methods the app asks for, one at a time, and reports in messages. Owns the
/// probes: when the task ends (or is aborted), they are detached and the scratch
/// directory is removed.
async fn live_runner(
    mut lab: Lab,
    mut starts: UnboundedReceiver<Method>,
    tx: UnboundedSender<Msg>,
    cold: bool,
) {
    while let Some(method) = starts.recv().await {
        let t0 = Instant::now();
        let mut observer = |model: &Model, steps: &[Step], counts: demo::Counts| {
            let secs = t0.elapsed().as_secs_f64().max(1e-3);
            let rate = (counts.events as f64 / secs) as u64;
            for msg in observed(model, steps, rate, counts.drops) {
                drop(tx.send(msg));
            }
        };
        let msg = match lab.run_method(method, cold, None, &mut observer).await {
            Ok(r) => Msg::Done(Box::new(r)),
            Err(e) => Msg::Failed(format!("{e:#}")),
        };
        drop(tx.send(msg));
    }
}

/// What a run's observer saw, as messages to the app: the sender transfer's new steps,
/// and the exact ledgers so far with the event rate and drops.
pub(super) fn observed(model: &Model, steps: &[Step], events_per_s: u64, drops: u64) -> Vec<Msg> {
    let mut msgs = Vec::new();
    let sender = model.sender(None);
    let mine: Vec<Step> = steps
        .iter()
        .filter(|s| sender.is_some_and(|t| s.transfer == Some(t.id)))
        .cloned()
        .collect();
    if !mine.is_empty() {
        msgs.push(Msg::Steps(mine));
    }
    if let Some(sender) = sender {
        msgs.push(Msg::Progress {
            sender: sender.ledger.clone(),
            receiver: model.receiver(None).map(|t| t.ledger.clone()),
            events_per_s,
            drops,
        });
    }
    msgs
}

/// The event rate of a replay by the recording's clock (`first_ns`: its first batch).
pub(super) fn recorded_rate(first_ns: &mut Option<u64>, fed: u64, ts_ns: u64) -> u64 {
    let first = *first_ns.get_or_insert(ts_ns);
    let secs = (ts_ns.saturating_sub(first) as f64 / 1e9).max(1e-3);
    (fed as f64 / secs) as u64
}

/// Replays the runs the app asks for from the recording, as [`live_runner`] runs them:
/// the same messages, the event rate by the recording's clock.
async fn replay_runner(
    path: PathBuf,
    mut starts: UnboundedReceiver<Method>,
    tx: UnboundedSender<Msg>,
) {
    while let Some(method) = starts.recv().await {
        let (path, runner_tx) = (path.clone(), tx.clone());
        let replayed = tokio::task::spawn_blocking(move || {
            let mut first_ns = None;
            let mut observer = |_, model: &Model, steps: &[Step], fed: u64, ts_ns: u64| {
                let rate = recorded_rate(&mut first_ns, fed, ts_ns);
                for msg in observed(model, steps, rate, 0) {
                    drop(runner_tx.send(msg));
                }
            };
            crate::replay::replay(&path, Some(method), &mut observer)
        })
        .await;
        let msg = match replayed {
            Ok(Ok(r)) => match r.outcomes.into_iter().next() {
                Some(demo::Outcome::Ran(result)) => Msg::Done(result),
                Some(demo::Outcome::NotRun(n)) => Msg::Failed(n.not_run),
                None => Msg::Failed(format!("the recording has no run of {}", method.name())),
            },
            Ok(Err(e)) => Msg::Failed(format!("{e:#}")),
            Err(e) => Msg::Failed(format!("the replay failed: {e}")),
        };
        drop(tx.send(msg));
    }
}

/// The demo's screen at the end of the recorded run of `method` (the first one when
/// `None`) in `path`: fed the messages the replay runner sends, all at once.
pub(super) fn replayed_app(path: &std::path::Path, method: Option<Method>) -> Result<App> {
    let header = crate::recording::Reader::open(path)
        .with_context(|| format!("cannot read the recording {}", path.display()))?
        .header()
        .clone();
    let mut msgs = Vec::new();
    let mut first_ns = None;
    let replayed = crate::replay::replay(path, method, &mut |_, model, steps, fed, ts_ns| {
        let rate = recorded_rate(&mut first_ns, fed, ts_ns);
        msgs.extend(observed(model, steps, rate, 0));
    })?;
    let Some(result) = replayed.outcomes.into_iter().find_map(|o| match o {
        demo::Outcome::Ran(r) => Some(r),
        demo::Outcome::NotRun(_) => None,
    }) else {
        bail!(
            "{} has no run to replay: every method in it failed",
            path.display()
        );
    };
    let mut app = App::new(
        Kind::Live,
        Some(result.method),
        &header.kernel,
        result.bytes,
        result.chunk,
        result.sender.conditions.cache == crate::model::textbook::Cache::Cold,
    );
    app.probes = Probes::Recorded {
        fexit: header.probes.as_ref().is_some_and(|p| p.fexit()),
    };
    initial_action(&mut app);
    // Only the method's own messages: `replay` fed just that method.
    for msg in msgs {
        update(&mut app, msg);
    }
    update(&mut app, Msg::Done(result));
    app.playing = false;
    Ok(app)
}

/// Opens two recordings side by side (`tracer replay A B`), stepping together.
async fn replay_compare(first: PathBuf, second: PathBuf, method: Option<Method>) -> Result<i32> {
    let mut app = tokio::task::spawn_blocking(move || -> Result<App> {
        let mut app = replayed_app(&first, method)?;
        app.compare = Some(Box::new(replayed_app(&second, method)?));
        Ok(app)
    })
    .await
    .context("reading the recordings")??;
    app.shown = 1.min(app.queue.len());
    if let Some(second) = app.compare.as_deref_mut() {
        second.shown = 1.min(second.queue.len());
    }
    let (_tx, mut rx) = unbounded_channel::<Msg>();
    let mut screen = Screen::enter()?;
    let result = event_loop(&mut screen, &mut app, &mut rx, &mut |_| {}).await;
    drop(screen);
    result
}

/// Opens the demo's TUI on a recording (`tracer replay FILE`): no root, no probes.
pub async fn replay(args: crate::replay::ReplayArgs) -> Result<i32> {
    if !stdout().is_terminal() {
        bail!("the TUI needs a terminal on standard output: add --headless (or --json) for text");
    }
    if let Some(second) = args.compare {
        return replay_compare(args.file, second, args.method).await;
    }
    // Read once first: a bad file is a plain line on a normal terminal, and the first
    // run's sizes and conditions set the screen.
    let path = args.file.clone();
    let replayed = tokio::task::spawn_blocking(move || {
        crate::replay::replay(&path, args.method, &mut |_, _, _, _, _| {})
    })
    .await
    .context("reading the recording")??;
    let Some(first) = replayed.outcomes.iter().find_map(|o| match o {
        demo::Outcome::Ran(r) => Some(r),
        demo::Outcome::NotRun(_) => None,
    }) else {
        bail!(
            "{} has no run to replay: every method in it failed",
            args.file.display()
        );
    };
    let mut app = App::new(
        Kind::Live,
        Some(first.method),
        &replayed.header.kernel,
        first.bytes,
        first.chunk,
        first.sender.conditions.cache == crate::model::textbook::Cache::Cold,
    );
    app.probes = Probes::Recorded {
        fexit: replayed.header.probes.as_ref().is_some_and(|p| p.fexit()),
    };
    let (tx, mut rx) = unbounded_channel::<Msg>();
    let (start_tx, start_rx) = unbounded_channel::<Method>();
    let runner = tokio::spawn(replay_runner(args.file.clone(), start_rx, tx.clone()));
    let mut screen = Screen::enter()?;
    let mut dispatch = |action| {
        if let Action::Start(m) = action {
            let _ = start_tx.send(m);
        }
    };
    let result = event_loop(&mut screen, &mut app, &mut rx, &mut dispatch).await;
    drop(screen);
    runner.abort();
    drop(runner.await);
    result
}

/// Opens the TUI; returns the exit status.
pub async fn run(opts: TuiOptions) -> Result<i32> {
    // The terminal, privileges, probes and the input come first, so that their errors are
    // plain lines on a normal terminal.
    if !stdout().is_terminal() {
        bail!(match opts.kind {
            Kind::Live | Kind::Watch => {
                "the TUI needs a terminal on standard output: add --headless (or --json) for text"
            }
            Kind::Lesson => {
                "tracer lesson is a TUI: run it in a terminal (standard output is not one)"
            }
        });
    }
    let lab = match opts.kind {
        Kind::Live => {
            if !crate::probe::has_bpf_privileges() {
                return Err(crate::probe::loader::ProbeError::DemoPermission.into());
            }
            // A signal while the input is made or the probes load still cleans up.
            let mut signals = demo::Signals::new()?;
            let making = if opts.file.is_none() {
                format!(
                    " and making the {} input file",
                    crate::model::human_bytes(opts.size)
                )
            } else {
                String::new()
            };
            crate::say!("tracer: loading the probes{making}…");
            // Any method may be picked here, copy-file-range too.
            let room = crate::workload::scratch::room_for(&Method::ALL, opts.size);
            let lab = match Lab::prepare(
                opts.file.clone(),
                opts.size,
                room,
                opts.chunk,
                opts.link,
                Some(&mut signals),
            )
            .await?
            {
                Ok(lab) => lab,
                Err(code) => return Ok(code),
            };
            // A signal that came while the probes loaded: honour it now.
            tokio::select! {
                biased;
                code = signals.next() => return Ok(code),
                _ = std::future::ready(()) => {}
            }
            Some(lab)
        }
        Kind::Lesson | Kind::Watch => None,
    };
    let kernel = lab
        .as_ref()
        .map_or_else(crate::probe::kernel_release, |l| l.kernel.clone());
    let probes = lab.as_ref().map(|l| Probes::Tracepoints {
        fexit: l
            .session
            .attached()
            .iter()
            .any(|h| h.tier == crate::probe::hooks::Tier::Fentry),
    });
    let mut app = App::new(
        opts.kind,
        opts.method,
        &kernel,
        opts.size,
        opts.chunk,
        opts.cold,
    );
    if let Some(probes) = probes {
        app.probes = probes;
    }
    if let Some(m) = opts.compare {
        let second = App::new(
            opts.kind,
            Some(m),
            &kernel,
            opts.size,
            opts.chunk,
            opts.cold,
        );
        app.compare = Some(Box::new(second));
    }
    let (tx, mut rx) = unbounded_channel::<Msg>();
    // Measured once, in the background (it tries an fentry program, as root): the screen
    // does not wait for it.
    let doctor_tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        drop(doctor_tx.send(Msg::Doctor(crate::doctor::report_texts())));
    });
    let (start_tx, start_rx) = unbounded_channel::<Method>();
    let runner = lab.map(|lab| tokio::spawn(live_runner(lab, start_rx, tx.clone(), opts.cold)));
    let mut screen = Screen::enter()?;
    let mut dispatch = |action| {
        if let Action::Start(m) = action {
            let _ = start_tx.send(m);
        }
    };
    let result = event_loop(&mut screen, &mut app, &mut rx, &mut dispatch).await;
    drop(screen);
    if let Some(r) = runner {
        // Dropping the runner's future detaches the probes and removes the scratch files.
        r.abort();
        drop(r.await);
    }
    result
}

/// Draws frames and turns keys, ticks, signals and the runner's messages into `update`s
/// until the app quits; `dispatch` carries out every other action. Returns the exit
/// status: 0, or 128 + the signal that ended it (Ctrl-C counts as SIGINT).
async fn event_loop(
    screen: &mut Screen,
    app: &mut App,
    rx: &mut UnboundedReceiver<Msg>,
    dispatch: &mut (dyn FnMut(Action) + Send),
) -> Result<i32> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    // The terminal went away (a closed window, `tmux kill-session`): quit and clean up.
    let mut sighup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut keys = EventStream::new();
    // Frames at 20 per second; the kernel side never blocks drawing (its steps arrive on
    // the channel and are drawn at the next frame).
    let mut frames = tokio::time::interval(Duration::from_millis(50));
    let mut last = Instant::now();
    let mut dispatch = |action: Option<Action>| -> bool {
        match action {
            Some(Action::Quit) => false,
            Some(a) => {
                dispatch(a);
                true
            }
            None => true,
        }
    };
    let first = initial_action(app);
    if !dispatch(first) {
        return Ok(app.status);
    }
    loop {
        let msg = tokio::select! {
            _ = frames.tick() => {
                let now = Instant::now();
                let ms = now.duration_since(last).as_millis() as u64;
                last = now;
                screen
                    .terminal
                    .draw(|f| view::draw(f, app))
                    .context("drawing the screen")?;
                Msg::Tick(ms)
            }
            ev = keys.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind == KeyEventKind::Press => Msg::Key(k),
                Some(Ok(Event::Resize(..))) => {
                    screen.terminal.autoresize().context("resizing")?;
                    continue;
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e).context("reading the terminal"),
                None => Msg::Quit,
            },
            Some(m) = rx.recv() => m,
            _ = sigterm.recv() => Msg::Signal(128 + libc::SIGTERM),
            _ = sigint.recv() => Msg::Signal(128 + libc::SIGINT),
            _ = sighup.recv() => Msg::Signal(128 + libc::SIGHUP),
        };
        if !dispatch(update(app, msg)) || app.quit {
            return Ok(app.status);
        }
    }
}

/// Opens `tracer watch`'s TUI: the list of the watched processes' transfers and the
/// panes of a run for the one selected; returns the exit status (the command's, when it
/// exited).
pub async fn watch(args: crate::watch::WatchArgs) -> Result<i32> {
    use crate::{demo::open_recording, trace, watch::Live};
    // The terminal, the target, privileges and the recording first, so that their errors
    // are plain lines on a normal terminal.
    if !stdout().is_terminal() {
        bail!("the TUI needs a terminal on standard output: add --headless (or --json) for text");
    }
    let mut signals = trace::Signals::new()?;
    let plan = trace::plan(&args.target, args.user.as_deref())?;
    if !crate::probe::has_bpf_privileges() {
        return Err(crate::probe::loader::ProbeError::Permission.into());
    }
    let recording = match &args.record {
        Some(p) => Some((p.clone(), open_recording(p, None, args.force)?)),
        None => None,
    };
    // Before the probes, so that it is unmounted after they are detached.
    let _tracefs = trace::mount_tracefs();
    crate::say!("tracer: loading the probes…");
    if matches!(args.target, trace::Target::Command(_)) {
        crate::say!(
            "tracer: the command gets /dev/null for its input and output while the TUI has the terminal"
        );
    }
    let (live, mut targets) = Live::start(&args, plan, recording, true)?;
    // A signal that came while the probes loaded: honour it now.
    let early = tokio::select! {
        biased;
        _ = signals.int.recv() => Some(130),
        _ = trace::terminated(&mut signals.term, &mut signals.hup) => Some(143),
        _ = std::future::ready(()) => None,
    };
    if let Some(code) = early {
        if let Some(c) = targets.command.as_mut() {
            live.stop(c).await;
        }
        return Ok(code);
    }
    let mut app = App::new(Kind::Watch, None, &live.kernel, 0, 1, false);
    app.probes = live.probes();
    let (tx, mut rx) = unbounded_channel::<Msg>();
    let doctor_tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        drop(doctor_tx.send(Msg::Doctor(crate::doctor::report_texts())));
    });
    let (select_tx, select_rx) = unbounded_channel();
    let (quit_tx, quit_rx) = tokio::sync::oneshot::channel();
    let runner = tokio::spawn(watch_runner(live, targets, tx, select_rx, quit_rx));
    let mut screen = Screen::enter()?;
    let mut dispatch = |action| {
        if let Action::Select(id) = action {
            let _ = select_tx.send(id);
        }
    };
    let result = event_loop(&mut screen, &mut app, &mut rx, &mut dispatch).await;
    drop(screen);
    // The runner stops a command still running (SIGINT, then SIGKILL after 5 s) and
    // detaches the probes.
    let _ = quit_tx.send(());
    let (recorded, code) = match runner.await {
        Ok(done) => done,
        Err(e) => bail!("the watch's runner failed: {e}"),
    };
    let status = result?;
    recorded?;
    // A signal (or Ctrl-C) ended the watch: its status, as a headless watch gives.
    Ok(if status != 0 { status } else { code })
}

/// Feeds the board from the probes and sends the rows a few times a second, with the full
/// report (textbook, differences) of the transfer the screen shows; at the end of the
/// watch (the command exited, the processes are gone) a last frame that says so. Returns
/// when the user quits: how the recording went, and the command's exit status.
async fn watch_runner(
    mut live: crate::watch::Live,
    mut targets: crate::trace::Targets,
    tx: UnboundedSender<Msg>,
    mut select: UnboundedReceiver<crate::model::TransferId>,
    mut quit: tokio::sync::oneshot::Receiver<()>,
) -> (Result<(), crate::trace::OutputError>, i32) {
    use crate::{trace, ui::watching::WatchFrame};
    let mut frames = tokio::time::interval(Duration::from_millis(250));
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    let mut selected = None;
    let mut code = 0;
    let send = |live: &mut crate::watch::Live, selected, ended| {
        drop(tx.send(Msg::Watch(Box::new(WatchFrame {
            rows: live.rows(selected),
            events_per_s: live.events_per_s(),
            drops: live.drops(),
            ended,
        }))));
    };
    let ended = loop {
        tokio::select! {
            r = live.next_batch() => {
                if let Err(e) = r {
                    break format!("reading the event ring buffer failed: {e}");
                }
            }
            _ = frames.tick() => send(&mut live, selected, None),
            Some(id) = select.recv() => {
                selected = Some(id);
                send(&mut live, selected, None);
            }
            c = trace::exit_of(&mut targets.command) => {
                targets.command = None;
                code = c;
                break format!("the command exited with status {c}");
            }
            _ = poll.tick(), if !targets.watch_pids.is_empty() => {
                if targets.watch_pids.iter().all(|p| !trace::target::alive(std::path::Path::new("/proc"), *p)) {
                    break "the process exited".to_string();
                }
            }
            _ = &mut quit => {
                if let Some(c) = targets.command.as_mut() {
                    code = live.stop(c).await;
                }
                live.finish();
                return (live.finish_recording(), code);
            }
        }
    };
    live.finish();
    send(&mut live, selected, Some(ended));
    let recorded = live.finish_recording();
    // The watch is over: the probes go, the screen stays until the user quits.
    drop(live);
    drop(quit.await);
    (recorded, code)
}
