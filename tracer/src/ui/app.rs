//! The TUI's state and its one entry point for change: `update(&mut App, Msg)`. No I/O
//! here: keys, ticks, steps from the kernel (or from the textbook, in a lesson) all come in
//! as messages, and what needs doing outside (start a run, quit) goes out as an `Action`.

use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::{
    demo::MethodResult,
    model::{
        Evidence, Ledger, Method, Mode, Step, StepKind,
        compare::Difference,
        human_bytes, narrate,
        textbook::{self, Cache, Conditions, Link},
    },
};

/// Where the steps come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No root, no eBPF: the textbook model of each method.
    Lesson,
    /// A built-in transfer, traced.
    Live,
    /// The transfers of watched processes (`tracer watch`), one on screen at a time.
    Watch,
}

/// The probes a run reads, as the status line names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probes {
    /// A lesson: none, the textbook model.
    Model,
    /// Tracepoints (tp_btf), and fexit programs where the kernel allows them.
    Tracepoints { fexit: bool },
    /// A replay: the probes of the recorded run (no probe is loaded).
    Recorded { fexit: bool },
}

impl fmt::Display for Probes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Model => "none (model)",
            Self::Tracepoints { fexit: false } => "tracepoints (tp_btf)",
            Self::Tracepoints { fexit: true } => "tracepoints (tp_btf) + fexit",
            Self::Recorded { fexit: false } => "recorded by tracepoints (tp_btf)",
            Self::Recorded { fexit: true } => "recorded by tracepoints (tp_btf) + fexit",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Picker,
    Run,
}

/// One step as the animation shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    /// The article-style number, when the step is one of the textbook's.
    pub number: Option<u32>,
    /// `None` for the summary of the chunks not shown one by one.
    pub kind: Option<StepKind>,
    pub text: String,
    pub evidence: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunState {
    Idle,
    Running,
    Done,
    Failed(String),
}

/// Playback speeds: milliseconds per step, from one step per two seconds to real time.
pub const SPEEDS: [(u64, &str); 6] = [
    (2000, "1 step/2s"),
    (1000, "1 step/s"),
    (500, "2 steps/s"),
    (200, "5 steps/s"),
    (50, "20 steps/s"),
    (0, "real time"),
];

/// Everything on screen.
#[derive(Clone, Debug)]
pub struct App {
    pub kind: Kind,
    pub screen: Screen,
    pub method: Method,
    /// Highlighted line of the method picker.
    pub picker: usize,
    pub kernel: String,
    /// The probes in use, or what replaces them in a lesson.
    pub probes: Probes,
    pub bytes: u64,
    pub chunk: u64,
    /// Evict the file before each live run, so the disk DMA is real.
    pub cold: bool,
    /// The paced selection of steps, and how many of them are on screen.
    pub queue: Vec<Shown>,
    pub shown: usize,
    /// Time spent on the current step (drives the animation along its arrow).
    pub step_ms: u64,
    pub playing: bool,
    pub speed: usize,
    /// The sender's ledger as measured (exact, updated as events arrive); `None` in a lesson.
    pub observed: Option<Ledger>,
    pub receiver: Option<Ledger>,
    pub textbook: Ledger,
    pub differences: Vec<Difference>,
    pub events_per_s: u64,
    pub drops: u64,
    pub state: RunState,
    pub help: bool,
    pub quit: bool,
    /// The exit status once the app quits: 0, or 128 + the number of the signal that
    /// ended it (Ctrl-C is SIGINT's 130), as headless runs give.
    pub status: i32,
    /// A one-line note for the status line (e.g. why a key did nothing).
    pub notice: Option<String>,
    /// The step number typed after `g`, until Enter jumps there.
    pub goto: Option<String>,
    /// `tracer doctor`'s report for this kernel per method, whether it is on screen (key
    /// d), and how far it is scrolled (lines).
    pub doctor: Vec<(Method, String)>,
    pub doctor_shown: bool,
    pub doctor_scroll: u16,
    /// Watch: the transfers, and which one is on screen.
    pub watching: super::watching::Watching,
    /// Live runs: how many more syscall returns of the sender are shown step by step
    /// (the first chunk); the rest is summarised.
    pub(super) returns_left: usize,
    /// The first chunk's textbook steps, to number observed steps like the article.
    pub(super) numbering: Vec<(u32, StepKind)>,
    /// Steps left out of the paced selection (counted in the ledger all the same).
    pub(super) skipped: u64,
    /// Compare: the second path, shown beside (or under) this one, stepping with it by
    /// the article's step numbers.
    pub compare: Option<Box<Self>>,
    /// Compare: the keys step the second path (Tab swaps).
    pub focus_second: bool,
}

/// What `update` asks the runner to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Start(Method),
    /// Watch: this transfer is on screen (its full report is wanted).
    Select(crate::model::TransferId),
    Quit,
}

/// Everything that changes the app.
#[derive(Clone, Debug)]
pub enum Msg {
    Key(KeyEvent),
    /// A frame tick: this many milliseconds passed.
    Tick(u64),
    /// New steps of the sender's transfer, in order.
    Steps(Vec<Step>),
    /// The live counters: exact ledgers so far, the event rate and drops.
    Progress {
        sender: Ledger,
        receiver: Option<Ledger>,
        events_per_s: u64,
        drops: u64,
    },
    /// The run finished: the observed and textbook ledgers and their differences.
    Done(Box<MethodResult>),
    Failed(String),
    /// `tracer doctor`'s report for this kernel, per method (for the `d` page).
    Doctor(Vec<(Method, String)>),
    /// Watch: every transfer so far, with the counters of the watch.
    Watch(Box<super::watching::WatchFrame>),
    Quit,
    /// A signal ends the TUI: the exit status, 128 + its number.
    Signal(i32),
}

impl App {
    pub fn new(
        kind: Kind,
        method: Option<Method>,
        kernel: &str,
        bytes: u64,
        chunk: u64,
        cold: bool,
    ) -> Self {
        let method_given = method.is_some();
        let method = method.unwrap_or_else(|| methods_of(kind)[0]);
        Self {
            kind,
            screen: if method_given {
                Screen::Run
            } else {
                Screen::Picker
            },
            method,
            picker: picker_index(kind, method),
            kernel: kernel.to_string(),
            probes: match kind {
                Kind::Lesson => Probes::Model,
                Kind::Live | Kind::Watch => Probes::Tracepoints { fexit: false },
            },
            bytes,
            chunk: chunk.max(1),
            cold,
            queue: Vec::new(),
            shown: 0,
            step_ms: 0,
            playing: true,
            speed: 1,
            observed: None,
            receiver: None,
            textbook: Ledger::default(),
            differences: Vec::new(),
            events_per_s: 0,
            drops: 0,
            state: RunState::Idle,
            help: false,
            quit: false,
            status: 0,
            notice: None,
            goto: None,
            doctor: Vec::new(),
            doctor_shown: false,
            doctor_scroll: 0,
            watching: Default::default(),
            returns_left: 0,
            numbering: Vec::new(),
            skipped: 0,
            compare: None,
            focus_second: false,
        }
    }

    /// The conditions the pictures assume: a lesson tells the article's story (data read
    /// from disk, sent by a NIC); a live run here is on loopback, cold unless `--warm`.
    pub fn conditions(&self) -> Conditions {
        let live = Conditions {
            cache: if self.cold { Cache::Cold } else { Cache::Warm },
            link: Link::Loopback,
            zc_send: true,
        };
        match self.kind {
            Kind::Lesson => Conditions::ARTICLE,
            Kind::Live => live,
            // The conditions the probes saw for the transfer on screen.
            Kind::Watch => self
                .watching
                .selected_row()
                .and_then(|r| r.report.conditions)
                .unwrap_or(live),
        }
    }

    /// Whether the NIC has no part in the transfer on screen (loopback).
    pub fn nic_unused(&self) -> bool {
        match self.kind {
            Kind::Lesson => false,
            Kind::Live | Kind::Watch => self.conditions().link == Link::Loopback,
        }
    }

    pub fn chunks(&self) -> u64 {
        self.bytes.div_ceil(self.chunk)
    }

    /// The step on screen.
    pub fn current(&self) -> Option<&Shown> {
        let i = self.shown.checked_sub(1)?;
        self.queue.get(i)
    }

    /// The ledger of the steps on screen so far (the chunk the queue plays, up to the
    /// current step): folded again from the queue, so it is right after a step back too.
    pub fn chunk_so_far(&self) -> Ledger {
        let mut l = Ledger::default();
        for kind in self.queue[..self.shown]
            .iter()
            .filter_map(|s| s.kind.as_ref())
        {
            l.record(kind);
        }
        l
    }

    /// Shows step `n` (1-based, clamped to the queue), paused, its animation complete.
    fn step_to(&mut self, n: usize) {
        self.playing = false;
        self.shown = n.min(self.queue.len());
        self.step_ms = self.interval_ms();
    }

    pub fn interval_ms(&self) -> u64 {
        SPEEDS[self.speed].0
    }

    /// How far the current step's animation is, 0..=1.
    pub fn progress(&self) -> f64 {
        match self.interval_ms() {
            0 => 1.0,
            i => (self.step_ms as f64 / i as f64).min(1.0),
        }
    }

    /// Resets the screen for a run of `method` (the runner then feeds it).
    fn begin(&mut self, method: Method) {
        self.method = method;
        self.screen = Screen::Run;
        self.queue.clear();
        self.shown = 0;
        self.step_ms = 0;
        self.playing = true;
        self.observed = None;
        self.receiver = None;
        self.differences.clear();
        self.events_per_s = 0;
        self.drops = 0;
        self.skipped = 0;
        let cond = self.conditions();
        // The ledger's textbook column is the article's model throughout (the same as
        // the headless report's); `cond` only shapes the first chunk's numbering.
        self.textbook = textbook::ledger(method, self.bytes, self.chunk, &Conditions::ARTICLE);
        self.notice = None;
        let first = textbook::steps(method, self.chunk.min(self.bytes), self.chunk, &cond);
        self.returns_left = first
            .iter()
            .filter(|s| matches!(s.kind, StepKind::ModeSwitch { to: Mode::User, .. }))
            .count();
        self.numbering = first.iter().map(|s| (s.number, s.kind.clone())).collect();
        match self.kind {
            Kind::Lesson => {
                // The first chunk's textbook steps one by one, then the rest in one
                // summary (a lesson's conditions are the article's: `self.textbook`).
                self.state = RunState::Done;
                let mut queue: Vec<Shown> = first
                    .into_iter()
                    .map(|s| Shown {
                        number: Some(s.number),
                        kind: Some(s.kind),
                        text: s.text,
                        evidence: "the textbook model, not a measurement".into(),
                    })
                    .collect();
                queue.push(self.summary(&self.textbook));
                self.queue = queue;
            }
            Kind::Live | Kind::Watch => self.state = RunState::Running,
        }
    }

    /// The article number of an observed step: the first unused textbook step of the
    /// first chunk with the same shape.
    pub(super) fn number_of(&mut self, kind: &StepKind) -> Option<u32> {
        let same = |t: &StepKind| match (t, kind) {
            (
                StepKind::ModeSwitch { to: a, syscall: x },
                StepKind::ModeSwitch { to: b, syscall: y },
            ) => a == b && x == y,
            (
                StepKind::Copy {
                    engine: e1,
                    from: f1,
                    to: t1,
                    ..
                },
                StepKind::Copy {
                    engine: e2,
                    from: f2,
                    to: t2,
                    ..
                },
            ) => e1 == e2 && f1 == f2 && t1 == t2,
            (
                StepKind::PageRef {
                    from: f1, to: t1, ..
                },
                StepKind::PageRef {
                    from: f2, to: t2, ..
                },
            ) => f1 == f2 && t1 == t2,
            (StepKind::Lookup { .. }, StepKind::Lookup { .. }) => true,
            (StepKind::Handoff { .. }, StepKind::Handoff { .. }) => true,
            _ => false,
        };
        let i = self.numbering.iter().position(|(_, t)| same(t))?;
        Some(self.numbering.remove(i).0)
    }

    /// Takes live steps into the paced selection while the first chunk lasts.
    pub(super) fn take_steps(&mut self, steps: Vec<Step>) {
        for s in steps {
            if self.returns_left == 0 {
                self.skipped += 1;
                continue;
            }
            if let StepKind::ModeSwitch { to: Mode::User, .. } = s.kind {
                self.returns_left -= 1;
            }
            let number = self.number_of(&s.kind);
            let evidence = match &s.evidence {
                Evidence::Observed(p) => format!("observed by {p}"),
                Evidence::Inferred(why) => format!("inferred: {why}"),
            };
            self.queue.push(Shown {
                number,
                text: numbered(number, &narrate(&s.kind)),
                kind: Some(s.kind),
                evidence,
            });
        }
    }

    fn summary(&self, l: &Ledger) -> Shown {
        let rest = self.chunks().saturating_sub(1);
        let totals = format!(
            "In all: {} mode switches, {} CPU copies ({}), {} DMA copies ({}), {} page references.",
            l.mode_switches,
            l.cpu_copies,
            human_bytes(l.cpu_copy_bytes),
            l.dma_copies,
            human_bytes(l.dma_bytes),
            l.page_refs
        );
        let text = match rest {
            0 => format!(
                "Done: {} in one chunk; the ledger on the right counts every step.",
                human_bytes(self.bytes)
            ),
            1 => format!("The other chunk goes the same way. {totals}"),
            n => format!("The other {n} chunks go the same way. {totals}"),
        };
        Shown {
            number: None,
            kind: None,
            text,
            evidence: match self.kind {
                Kind::Lesson => "the textbook model, not a measurement".into(),
                Kind::Live | Kind::Watch => format!(
                    "summary: {} more steps were counted, not animated",
                    self.skipped
                ),
            },
        }
    }
}

fn numbered(number: Option<u32>, text: &str) -> String {
    match number {
        Some(n) => format!("{n}. {text}"),
        None => text.to_string(),
    }
}

/// Where `method` is in the picker of `kind`.
fn picker_index(kind: Kind, method: Method) -> usize {
    methods_of(kind)
        .iter()
        .position(|m| *m == method)
        .unwrap_or(0)
}

/// The methods the picker of `kind` offers: the lesson's in the article's order (with
/// its middle stage, which only the textbook has), the runnable ones otherwise.
fn methods_of(kind: Kind) -> &'static [Method] {
    match kind {
        Kind::Lesson => &Method::LESSON,
        Kind::Live | Kind::Watch => &Method::ALL,
    }
}

/// Applies one message; returns what the runner must do, if anything.
pub fn update(app: &mut App, msg: Msg) -> Option<Action> {
    if app.compare.is_some() {
        return super::compare::update(app, msg);
    }
    update_one(app, msg)
}

/// [`update`] of one path.
pub(super) fn update_one(app: &mut App, msg: Msg) -> Option<Action> {
    match msg {
        Msg::Quit => {
            app.quit = true;
            Some(Action::Quit)
        }
        Msg::Signal(status) => {
            app.quit = true;
            app.status = status;
            Some(Action::Quit)
        }
        Msg::Key(key) => on_key(app, key),
        Msg::Tick(ms) => {
            if app.screen != Screen::Run || !app.playing {
                return None;
            }
            if app.interval_ms() == 0 {
                app.shown = app.queue.len();
                if app.kind == Kind::Watch {
                    app.watch_tick();
                }
                return None;
            }
            app.step_ms += ms;
            if app.shown == 0 && !app.queue.is_empty() {
                app.shown = 1;
                app.step_ms = 0;
            } else if app.step_ms >= app.interval_ms() && app.shown < app.queue.len() {
                app.shown += 1;
                app.step_ms = 0;
            }
            if app.kind == Kind::Watch {
                app.watch_tick();
            }
            None
        }
        Msg::Steps(steps) => {
            if app.kind == Kind::Live && app.state == RunState::Running {
                app.take_steps(steps);
            }
            None
        }
        Msg::Progress {
            sender,
            receiver,
            events_per_s,
            drops,
        } => {
            app.observed = Some(sender);
            app.receiver = receiver;
            app.events_per_s = events_per_s;
            app.drops = drops;
            None
        }
        Msg::Done(r) => {
            let r = *r;
            let summary = app.summary(&r.sender.observed);
            app.queue.push(summary);
            app.observed = Some(r.sender.observed);
            app.receiver = r.receiver.observed;
            app.textbook = r.sender.textbook;
            app.differences = r.differences;
            app.drops = r.drops;
            app.state = RunState::Done;
            None
        }
        Msg::Failed(why) => {
            app.state = RunState::Failed(why);
            None
        }
        Msg::Doctor(texts) => {
            app.doctor = texts;
            None
        }
        Msg::Watch(frame) => app.watch_frame(*frame),
    }
}

impl App {
    /// The methods the picker offers, in its order.
    pub fn methods(&self) -> &'static [Method] {
        methods_of(self.kind)
    }

    /// The doctor report of the method on screen ("" while the kernel is being measured).
    pub fn doctor_text(&self) -> &str {
        let method = if self.screen == Screen::Picker {
            self.methods()[self.picker]
        } else {
            self.method
        };
        self.doctor
            .iter()
            .find(|(m, _)| *m == method)
            .map_or("", |(_, t)| t.as_str())
    }
}

fn on_key(app: &mut App, key: KeyEvent) -> Option<Action> {
    app.notice = None;
    let ctrl_c = key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
    if ctrl_c {
        // The terminal is raw: Ctrl-C is a key, not SIGINT, but ends the TUI as SIGINT
        // ends a headless run.
        app.quit = true;
        app.status = 128 + libc::SIGINT;
        return Some(Action::Quit);
    }
    if app.doctor_shown {
        // Arrows and pages scroll the report; any other key (q too) closes it.
        let lines = app.doctor_text().lines().count() as u16;
        let scroll = &mut app.doctor_scroll;
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => *scroll = scroll.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => *scroll = (*scroll + 1).min(lines),
            KeyCode::PageUp => *scroll = scroll.saturating_sub(10),
            KeyCode::PageDown | KeyCode::Char(' ') => *scroll = (*scroll + 10).min(lines),
            KeyCode::Home => *scroll = 0,
            _ => app.doctor_shown = false,
        }
        return None;
    }
    if app.help {
        // Any key (q too) closes the overlay.
        app.help = false;
        return None;
    }
    if let Some(typed) = app.goto.as_mut() {
        // `g` then a step number and Enter; any other key (q and Esc too) cancels.
        match key.code {
            KeyCode::Char(c @ '0'..='9') if typed.len() < 6 => typed.push(c),
            KeyCode::Backspace => drop(typed.pop()),
            KeyCode::Enter => {
                let n = typed.parse::<usize>().unwrap_or(0);
                app.goto = None;
                if n == 0 || n > app.queue.len() {
                    app.notice = Some(format!("no step {n}: steps 1 to {}", app.queue.len()));
                } else {
                    app.step_to(n);
                }
            }
            _ => app.goto = None,
        }
        return None;
    }
    if key.code == KeyCode::Char('q') {
        app.quit = true;
        return Some(Action::Quit);
    }
    match (app.screen, key.code) {
        // The picker opened with `m` over a run: Esc goes back to that run.
        (Screen::Picker, KeyCode::Esc) if app.state != RunState::Idle => {
            app.screen = Screen::Run;
            None
        }
        (_, KeyCode::Esc) => {
            app.quit = true;
            Some(Action::Quit)
        }
        (_, KeyCode::Char('?')) => {
            app.help = true;
            None
        }
        (_, KeyCode::Char('d')) => {
            app.doctor_shown = true;
            app.doctor_scroll = 0;
            None
        }
        (Screen::Picker, KeyCode::Up | KeyCode::Char('k')) => {
            app.picker = app
                .picker
                .checked_sub(1)
                .unwrap_or_else(|| app.methods().len() - 1);
            None
        }
        (Screen::Picker, KeyCode::Down | KeyCode::Char('j')) => {
            app.picker = (app.picker + 1) % app.methods().len();
            None
        }
        (Screen::Picker, KeyCode::Char(c @ '1'..='9'))
            if (c as usize - '1' as usize) < app.methods().len() =>
        {
            app.picker = c as usize - '1' as usize;
            start(app)
        }
        (Screen::Picker, KeyCode::Enter) => start(app),
        (Screen::Run, KeyCode::Up | KeyCode::Char('k')) if app.kind == Kind::Watch => {
            app.select_next(-1)
        }
        (Screen::Run, KeyCode::Down | KeyCode::Char('j')) if app.kind == Kind::Watch => {
            app.select_next(1)
        }
        (Screen::Run, KeyCode::Char('r')) if app.kind == Kind::Watch => {
            app.load_chunk();
            None
        }
        (Screen::Run, KeyCode::Char('m')) if app.kind == Kind::Watch => {
            app.notice = Some("watch follows the processes: ↑↓ picks a transfer".into());
            None
        }
        (Screen::Run, KeyCode::Char('m')) => {
            app.screen = Screen::Picker;
            app.picker = picker_index(app.kind, app.method);
            None
        }
        (Screen::Run, KeyCode::Char(' ')) => {
            app.playing = !app.playing;
            None
        }
        (Screen::Run, KeyCode::Right | KeyCode::Char('n')) => {
            app.playing = false;
            if app.shown < app.queue.len() {
                app.shown += 1;
                app.step_ms = app.interval_ms();
            }
            None
        }
        (Screen::Run, KeyCode::Left | KeyCode::Char('b')) => {
            let back = app.shown.saturating_sub(1).max(1);
            app.step_to(back);
            None
        }
        (Screen::Run, KeyCode::Home) => {
            app.step_to(1);
            None
        }
        (Screen::Run, KeyCode::End) => {
            app.step_to(app.queue.len());
            None
        }
        (Screen::Run, KeyCode::Char('g')) => {
            app.goto = Some(String::new());
            None
        }
        (Screen::Run, KeyCode::Char('-')) => {
            app.speed = app.speed.saturating_sub(1);
            None
        }
        (Screen::Run, KeyCode::Char('+' | '=')) => {
            app.speed = (app.speed + 1).min(SPEEDS.len() - 1);
            None
        }
        (Screen::Run, KeyCode::Char('r')) => {
            if app.state == RunState::Running {
                app.notice = Some("one run at a time: this one is still going".into());
                return None;
            }
            let m = app.method;
            app.begin(m);
            Some(Action::Start(m))
        }
        _ => None,
    }
}

fn start(app: &mut App) -> Option<Action> {
    if app.state == RunState::Running {
        app.notice = Some(format!(
            "{} is still running: wait for it to finish (or q to quit)",
            app.method.name()
        ));
        return None;
    }
    let m = app.methods()[app.picker];
    app.begin(m);
    Some(Action::Start(m))
}

/// Starts the method the app was opened with (when `--method` was given). Watch starts
/// nothing: the processes run on their own.
pub fn initial_action(app: &mut App) -> Option<Action> {
    if let Some(second) = app.compare.as_deref_mut() {
        // Both paths start; only the first's run is asked of a runner (a compared pair
        // is fed before the screen opens).
        initial_action(second);
    }
    if app.state != RunState::Idle {
        // Fed already (a replayed comparison).
        return None;
    }
    if app.kind == Kind::Watch {
        app.screen = Screen::Run;
        app.state = RunState::Running;
        return None;
    }
    (app.screen == Screen::Run).then(|| {
        let m = app.method;
        app.begin(m);
        Action::Start(m)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: char) -> Msg {
        Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    #[test]
    fn a_lesson_plays_the_first_chunk_step_by_step_then_a_summary() {
        let mut app = App::new(
            Kind::Lesson,
            Some(Method::ReadWrite),
            "6.18",
            8 << 20,
            65536,
            false,
        );
        assert_eq!(
            initial_action(&mut app),
            Some(Action::Start(Method::ReadWrite))
        );
        // read-write, cold, NIC: 4 switches, 2 CPU and 2 DMA copies, a lookup; a summary.
        assert_eq!(app.queue.len(), 10);
        assert_eq!(
            app.queue[0].text,
            "1. read() switches the CPU from user mode to kernel mode."
        );
        assert!(app.queue[9].text.starts_with("The other 127 chunks go the same way. In all: 512 mode switches, 256 CPU copies (16 MiB), 256 DMA copies (16 MiB)"));
        // At 1 step/s: the first tick shows step 1, then one more per second.
        update(&mut app, Msg::Tick(50));
        assert_eq!(app.shown, 1);
        update(&mut app, Msg::Tick(600));
        assert_eq!(app.shown, 1);
        update(&mut app, Msg::Tick(400));
        assert_eq!(app.shown, 2);
        // Paused: ticks do nothing, `n` steps.
        update(&mut app, key(' '));
        update(&mut app, Msg::Tick(5000));
        assert_eq!(app.shown, 2);
        update(&mut app, key('n'));
        assert_eq!(app.shown, 3);
        // Real time shows everything.
        for _ in 0..10 {
            update(&mut app, key('+'));
        }
        assert_eq!(SPEEDS[app.speed].1, "real time");
        update(&mut app, key(' '));
        update(&mut app, Msg::Tick(50));
        assert_eq!(app.shown, app.queue.len());
        // Restart, method picker, help, quit.
        assert_eq!(
            update(&mut app, key('r')),
            Some(Action::Start(Method::ReadWrite))
        );
        assert_eq!(app.shown, 0);
        update(&mut app, key('m'));
        assert_eq!(app.screen, Screen::Picker);
        // Esc there goes back to the run, not out of the program.
        let esc = Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        assert_eq!(update(&mut app, esc), None);
        assert!(!app.quit);
        assert_eq!(app.screen, Screen::Run);
        update(&mut app, key('m'));
        // The lesson's picker tells the article's story: read-send, sendfile without
        // gather, sendfile, then read-write (where it opened) and the others.
        update(
            &mut app,
            Msg::Key(KeyEvent::new(KeyCode::Up, KeyModifiers::NONE)),
        );
        assert_eq!(
            update(
                &mut app,
                Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE))
            ),
            Some(Action::Start(Method::Sendfile))
        );
        update(&mut app, key('?'));
        assert!(app.help);
        update(&mut app, key('x'));
        assert!(!app.help);
        assert_eq!(
            update(
                &mut app,
                Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL))
            ),
            Some(Action::Quit)
        );
        assert!(app.quit);
    }

    #[test]
    fn esc_quits_from_the_first_picker_and_goes_back_from_the_one_over_a_run() {
        let esc = || Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        let mut app = App::new(Kind::Lesson, None, "6.18", 8 << 20, 65536, false);
        assert_eq!(initial_action(&mut app), None);
        assert_eq!(app.screen, Screen::Picker);
        assert_eq!(update(&mut app, esc()), Some(Action::Quit));
        assert!(app.quit);
        let mut app = App::new(Kind::Lesson, None, "6.18", 8 << 20, 65536, false);
        let (second, first) = (app.methods()[1], app.methods()[0]);
        update(&mut app, key('2'));
        assert_eq!(app.method, second);
        update(&mut app, key('m'));
        update(&mut app, key('1'));
        assert_eq!(app.method, first);
        update(&mut app, key('m'));
        assert_eq!(update(&mut app, esc()), None);
        assert_eq!(
            (app.screen, app.method, app.quit),
            (Screen::Run, first, false)
        );
    }

    #[test]
    fn a_one_chunk_summary_points_at_the_ledger_where_it_is() {
        // Every layout puts the ledger to the right of the diagram, above the narration.
        let mut app = App::new(
            Kind::Lesson,
            Some(Method::Sendfile),
            "6.18",
            4096,
            65536,
            false,
        );
        initial_action(&mut app);
        let last = app.queue.last().map(|s| s.text.as_str());
        assert_eq!(
            last,
            Some("Done: 4 KiB in one chunk; the ledger on the right counts every step.")
        );
    }

    #[test]
    fn ctrl_c_and_signals_quit_with_128_plus_the_signal() {
        let ctrl_c = || Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        for (msg, status) in [
            (key('q'), 0),
            (Msg::Quit, 0),
            (ctrl_c(), 130),
            (Msg::Signal(143), 143),
            (Msg::Signal(129), 129),
        ] {
            let mut app = App::new(
                Kind::Lesson,
                Some(Method::Sendfile),
                "6.18",
                1 << 20,
                65536,
                false,
            );
            initial_action(&mut app);
            assert_eq!(update(&mut app, msg), Some(Action::Quit));
            assert_eq!((app.quit, app.status), (true, status));
        }
    }

    #[test]
    fn live_steps_are_numbered_like_the_article_and_the_rest_summarised() {
        use crate::model::{Buffer, Engine};
        let mut app = App::new(
            Kind::Live,
            Some(Method::ReadWrite),
            "6.18",
            1 << 20,
            65536,
            true,
        );
        initial_action(&mut app);
        let st = |kind| Step {
            ts_ns: 1,
            pid: 1,
            tid: 1,
            transfer: Some(crate::model::TransferId(0)),
            kind,
            evidence: Evidence::Observed(crate::model::Seen::SysEnter),
        };
        let ms = |to, s: &str| StepKind::ModeSwitch {
            to,
            syscall: s.into(),
        };
        let cpu = |from, to| StepKind::Copy {
            engine: Engine::Cpu,
            from,
            to,
            bytes: 65536,
        };
        let chunk = vec![
            st(ms(Mode::Kernel, "read")),
            st(cpu(Buffer::PageCache, Buffer::User)),
            st(ms(Mode::User, "read")),
            st(ms(Mode::Kernel, "write")),
            st(cpu(Buffer::User, Buffer::Socket)),
            st(StepKind::Handoff {
                bytes: 65536,
                peer: false,
            }),
            st(ms(Mode::User, "write")),
        ];
        update(&mut app, Msg::Steps(chunk.clone()));
        update(&mut app, Msg::Steps(chunk));
        // Only the first chunk is animated.
        assert_eq!(app.queue.len(), 7);
        let numbers: Vec<_> = app.queue.iter().map(|s| s.number).collect();
        assert_eq!(
            numbers,
            [
                Some(1),
                Some(2),
                Some(2),
                Some(3),
                Some(3),
                Some(4),
                Some(4)
            ]
        );
        assert_eq!(
            app.queue[4].text,
            "3. The CPU copies 64 KiB from the application's buffer into the socket buffer."
        );
        assert_eq!(app.queue[0].evidence, "observed by sys_enter");
    }
}
