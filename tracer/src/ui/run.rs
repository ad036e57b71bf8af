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
            let sender = model.sender(None);
            let mine: Vec<Step> = steps
                .iter()
                .filter(|s| sender.is_some_and(|t| s.transfer == Some(t.id)))
                .cloned()
                .collect();
            if !mine.is_empty() {
                drop(tx.send(Msg::Steps(mine)));
            }
            let sender = sender.map(|t| t.ledger.clone());
            let receiver = model.receiver(None).map(|t| t.ledger.clone());
            if let Some(sender) = sender {
                let secs = t0.elapsed().as_secs_f64().max(1e-3);
                drop(tx.send(Msg::Progress {
                    sender,
                    receiver,
                    events_per_s: (counts.events as f64 / secs) as u64,
                    drops: counts.drops,
                }));
            }
        };
        let msg = match lab.run_method(method, cold, None, &mut observer).await {
            Ok(r) => Msg::Done(Box::new(r)),
            Err(e) => Msg::Failed(format!("{e:#}")),
        };
        drop(tx.send(msg));
    }
}

/// Opens the TUI; returns the exit status.
pub async fn run(opts: TuiOptions) -> Result<i32> {
    // The terminal, privileges, probes and the input come first, so that their errors are
    // plain lines on a normal terminal.
    if !stdout().is_terminal() {
        bail!(match opts.kind {
            Kind::Live => {
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
                return Err(crate::probe::loader::ProbeError::Permission.into());
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
            let lab =
                match Lab::prepare(opts.file.clone(), opts.size, opts.chunk, Some(&mut signals))
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
        Kind::Lesson => None,
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
    let result = event_loop(&mut screen, &mut app, &mut rx, &start_tx).await;
    drop(screen);
    if let Some(r) = runner {
        // Dropping the runner's future detaches the probes and removes the scratch files.
        r.abort();
        drop(r.await);
    }
    result.map(|()| 0)
}

async fn event_loop(
    screen: &mut Screen,
    app: &mut App,
    rx: &mut UnboundedReceiver<Msg>,
    start: &UnboundedSender<Method>,
) -> Result<()> {
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
    let dispatch = |action: Option<Action>| -> bool {
        match action {
            Some(Action::Quit) => false,
            Some(Action::Start(m)) => {
                let _ = start.send(m);
                true
            }
            None => true,
        }
    };
    let first = initial_action(app);
    if !dispatch(first) {
        return Ok(());
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
            _ = sigterm.recv() => Msg::Quit,
            _ = sigint.recv() => Msg::Quit,
            _ = sighup.recv() => Msg::Quit,
        };
        if !dispatch(update(app, msg)) || app.quit {
            return Ok(());
        }
    }
}
