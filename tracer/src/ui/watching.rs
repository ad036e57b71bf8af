//! The watch screen's state: every transfer of the watched processes (as the runner last
//! sent them) and the one on screen, whose newest chunk plays in the paced queue with the
//! same panes as a demo run; and the parts of `update` that change them.

use super::app::{Action, App, Kind, RunState, Shown};
use crate::{
    model::{Ledger, Method, TransferId, human_bytes, textbook},
    watch::Row,
};

/// What the runner sends after each batch of events (at most a few times a second).
#[derive(Clone, Debug, Default)]
pub struct WatchFrame {
    pub rows: Vec<Row>,
    pub events_per_s: u64,
    pub drops: u64,
    /// Why the watch ended (the command exited, the processes are gone), once it has.
    pub ended: Option<String>,
}

/// The transfers, and which one is on screen.
#[derive(Clone, Debug, Default)]
pub struct Watching {
    pub rows: Vec<Row>,
    /// The transfer on screen, kept by id as rows come.
    pub selected: Option<TransferId>,
    /// The `seq` of the chunk in the queue (a newer one plays once it has played).
    pub loaded_seq: Option<u64>,
    pub ended: Option<String>,
}

impl Watching {
    /// The row on screen.
    pub fn selected_row(&self) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| Some(r.report.id) == self.selected)
    }

    /// Where the row on screen is in the list.
    pub fn selected_index(&self) -> Option<usize> {
        self.rows
            .iter()
            .position(|r| Some(r.report.id) == self.selected)
    }
}

impl App {
    /// Takes the runner's frame: the rows, the counters; the transfer on screen follows
    /// its newest ledger, and gets its first chunk once it has one. A transfer selected
    /// for the first time is asked for in full.
    pub(super) fn watch_frame(&mut self, frame: WatchFrame) -> Option<Action> {
        let w = &mut self.watching;
        w.rows = frame.rows;
        // Transfers that send a file first (a program's loader and imports read dozens of
        // files into memory), each group in the order they appeared.
        w.rows.sort_by_key(|r| (!r.report.sends_file, r.report.id));
        w.ended = frame.ended;
        self.events_per_s = frame.events_per_s;
        self.drops = frame.drops;
        // A transfer selected for the first time: the first that sends a file, else the
        // first.
        let action = if w.selected_row().is_none() {
            w.selected = w
                .rows
                .iter()
                .find(|r| r.report.sends_file)
                .or_else(|| w.rows.first())
                .map(|r| r.report.id);
            w.loaded_seq = None;
            w.selected.map(Action::Select)
        } else {
            None
        };
        if self.watching.ended.is_some() {
            self.state = RunState::Done;
        }
        self.follow_selected();
        if self.watching.loaded_seq.is_none() {
            self.load_chunk();
        }
        action
    }

    /// The ledgers and the method of the transfer on screen, from its row.
    fn follow_selected(&mut self) {
        let Some(r) = self.watching.selected_row() else {
            return;
        };
        let report = &r.report;
        let method = report.classification.method();
        let observed = report.observed.clone();
        let textbook = report.textbook.clone().unwrap_or_default();
        let differences = report.differences.clone();
        let (bytes, chunk) = (report.bytes, report.chunk);
        if let Some(m) = method {
            self.method = m;
        }
        self.observed = Some(observed);
        self.textbook = textbook;
        self.differences = differences;
        self.bytes = bytes;
        self.chunk = chunk.max(1);
        // The chunk's last line sums up the transfer so far.
        if let Some(last) = self.queue.last_mut()
            && last.kind.is_none()
            && let Some(r) = self.watching.selected_row()
        {
            *last = watch_summary(r);
        }
    }

    /// Moves the selection `by` rows (wrapping) and plays that transfer's newest chunk.
    pub(super) fn select_next(&mut self, by: isize) -> Option<Action> {
        let n = self.watching.rows.len();
        if n == 0 {
            return None;
        }
        let at = self.watching.selected_index().unwrap_or(0) as isize;
        let next = (at + by).rem_euclid(n as isize) as usize;
        let id = self.watching.rows[next].report.id;
        self.watching.selected = Some(id);
        self.follow_selected();
        self.load_chunk();
        Some(Action::Select(id))
    }

    /// Puts the newest chunk of the transfer on screen in the paced queue, numbered like
    /// the first chunk of its method's textbook, then a summary of the rest.
    pub(super) fn load_chunk(&mut self) {
        let Some(row) = self.watching.selected_row().cloned() else {
            return;
        };
        self.queue.clear();
        self.shown = 0;
        self.step_ms = 0;
        self.skipped = 0;
        let method: Option<Method> = row.report.classification.method();
        let cond = self.conditions();
        let chunk = row.report.chunk.max(1);
        self.numbering = method
            .map(|m| {
                textbook::steps(m, chunk, chunk, &cond)
                    .into_iter()
                    .map(|s| (s.number, s.kind))
                    .collect()
            })
            .unwrap_or_default();
        self.returns_left = usize::MAX;
        self.take_steps(row.recent.clone());
        self.queue.push(watch_summary(&row));
        self.watching.loaded_seq = Some(row.seq);
    }

    /// At each frame: once the chunk on screen has played to its summary (and stayed
    /// there a step's time), a newer chunk of the same transfer takes its place.
    pub(super) fn watch_tick(&mut self) {
        let played = self.shown == self.queue.len() && self.step_ms >= self.interval_ms();
        let newer = self
            .watching
            .selected_row()
            .is_some_and(|r| Some(r.seq) != self.watching.loaded_seq);
        if self.kind == Kind::Watch && self.playing && played && newer {
            self.load_chunk();
        }
    }
}

/// The last line of a transfer's queue: what the one chunk stands for.
fn watch_summary(row: &Row) -> Shown {
    let r = &row.report;
    let l: &Ledger = &r.observed;
    let chunks = if r.chunk == 0 {
        0
    } else {
        r.bytes.div_ceil(r.chunk)
    };
    use crate::demo::plural;
    let text = format!(
        "That was the newest chunk. So far {} in {}: {}, {} ({}), {} ({}), {}.",
        human_bytes(r.bytes),
        plural(chunks, "chunk", "chunks"),
        plural(l.mode_switches, "mode switch", "mode switches"),
        plural(l.cpu_copies, "CPU copy", "CPU copies"),
        human_bytes(l.cpu_copy_bytes),
        plural(l.dma_copies, "DMA copy", "DMA copies"),
        human_bytes(l.dma_bytes),
        plural(l.page_refs, "page reference", "page references")
    );
    Shown {
        number: None,
        kind: None,
        text,
        evidence: format!(
            "{}; every step is counted in the ledger, ↑↓ picks another transfer",
            match &r.reason {
                Some(_) => "other".to_string(),
                None => format!("behaves like {}", r.method),
            }
        ),
    }
}
