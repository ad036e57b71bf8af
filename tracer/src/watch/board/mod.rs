//! The transfers of the watched processes as the events arrive: the model fed one event at
//! a time, and per transfer what the model does not keep (its behaviour, for
//! [`classify`], its recent steps, its names and rate); and each transfer's report, its
//! observed ledger beside the textbook of the method it behaves like. Pure: time comes from
//! the events or from the caller, names from the caller (who reads /proc).

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

use super::names::Name;
use crate::{
    event::{Event, Payload},
    model::{
        Buffer, Ledger, Mode, Model, Step, StepKind, Transfer, TransferId,
        classify::{self, Behaviour, Classification},
        compare::{self, Difference},
        steps::Endpoint,
        textbook::{self, Conditions},
    },
};

/// Steps kept per transfer for the animation (a chunk of a 1 MiB sendfile makes about 50).
const RECENT: usize = 128;
/// How far back the current rate looks.
const RATE_WINDOW_NS: u64 = 2_000_000_000;
/// Chunks above which the textbook of the transfer on screen is walked again only every
/// [`SLOW_TEXTBOOK_NS`] (the walk is linear in chunks: 2.6 million take 0.2 s).
const SLOW_TEXTBOOK_CHUNKS: u64 = 1 << 18;
const SLOW_TEXTBOOK_NS: u64 = 2_000_000_000;

const MIB: f64 = (1 << 20) as f64;

/// What the board keeps of one transfer besides the model's ledger and facts.
#[derive(Default)]
struct Tracked {
    behaviour: Behaviour,
    /// The newest steps, oldest first.
    recent: VecDeque<Step>,
    /// Syscalls entered so far: a newer chunk is there when it grows.
    entered: u64,
    /// (time, bytes) at each snapshot, for the current rate.
    samples: VecDeque<(u64, u64)>,
    /// The last full report of a transfer too long to walk every frame, and when.
    full: Option<(u64, TransferReport)>,
}

/// Every transfer of the watched processes, from their events.
#[derive(Default)]
pub struct Board {
    model: Model,
    steps: Vec<Step>,
    tracked: Vec<Tracked>,
    /// Each process's comm, as its own syscalls report it (not a transmit's, which runs in
    /// whatever task is current).
    comms: HashMap<u32, String>,
    names: HashMap<(u32, Endpoint), Name>,
    /// Transfers whose ends were handed out to be named.
    named: usize,
    events: u64,
}

/// The copies and mode switches a transfer makes per MiB it delivers.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PerMib {
    pub cpu_copies: f64,
    pub dma_copies: f64,
    pub mode_switches: f64,
}

/// One transfer as `watch` reports it (its JSON is one element of `transfers`).
#[derive(Clone, Debug, Serialize)]
pub struct TransferReport {
    #[serde(skip)]
    pub id: TransferId,
    pub pid: u32,
    pub comm: String,
    pub source: Name,
    pub destination: Name,
    /// Bytes that reached the destination.
    pub bytes: u64,
    /// Bytes per data call (what the textbook walks in).
    pub chunk: u64,
    /// Over the transfer's wall time so far.
    pub bytes_per_s: u64,
    pub per_mib: PerMib,
    /// The textbook method it behaves like, or `other`.
    pub method: &'static str,
    /// Why it is `other`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub evidence: Vec<String>,
    pub observed: Ledger,
    /// The method's textbook ledger for the same bytes and chunk size, under the article's
    /// conditions (a disk read, a NIC); `null` for `other`.
    pub textbook: Option<Ledger>,
    /// The same under the conditions the probes saw.
    pub textbook_here: Option<Ledger>,
    pub conditions: Option<Conditions>,
    pub differences: Vec<Difference>,
    /// Transmits TCP made again and their payload bytes (not in `bytes`, nor in the
    /// transmitted bytes the comparison reads).
    pub retransmits: u64,
    pub retransmitted_bytes: u64,
    #[serde(skip)]
    pub classification: Classification,
    /// A file's bytes going to a socket or another file (what `--expect` checks).
    #[serde(skip)]
    pub sends_file: bool,
}

/// A transfer as the TUI's list shows it: its report, its current rate and its newest
/// chunk of steps.
#[derive(Clone, Debug)]
pub struct Row {
    pub report: TransferReport,
    /// Bytes per second over the last two seconds.
    pub rate: u64,
    /// The newest complete chunk (the method's calls for one chunk), in order.
    pub recent: Vec<Step>,
    /// Grows when a newer chunk may be there.
    pub seq: u64,
}

impl Board {
    pub fn new() -> Self {
        Self::default()
    }

    /// TCP retransmits of the watched processes' sockets, and their payload bytes.
    pub fn retransmits(&self) -> (u64, u64) {
        self.model.retransmits()
    }

    /// Events taken so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Takes one event.
    pub fn push(&mut self, ev: &Event) {
        self.events += 1;
        // Only the task's own events name it (a transmit's comm is the current task's),
        // and its main thread's name is the process's (a thread may name itself).
        if matches!(
            ev.payload,
            Payload::SyscallEnter { .. } | Payload::ProcessExec | Payload::ProcessFork { .. }
        ) && (ev.tid == ev.pid || !self.comms.contains_key(&ev.pid))
            && self.comms.get(&ev.pid) != Some(&ev.comm)
        {
            self.comms.insert(ev.pid, ev.comm.clone());
        }
        self.model.push(ev, &mut self.steps);
        self.take_steps();
    }

    /// The end of the watch: what the model still held (a file read that went nowhere
    /// becomes a transfer into memory).
    pub fn finish(&mut self) {
        self.model.finish(&mut self.steps);
        self.take_steps();
    }

    fn take_steps(&mut self) {
        let n = self.model.transfers().len();
        if self.tracked.len() < n {
            self.tracked.resize_with(n, Tracked::default);
        }
        for s in self.steps.drain(..) {
            let Some(TransferId(i)) = s.transfer else {
                continue;
            };
            let t = &mut self.tracked[i];
            t.behaviour.record(&s);
            if matches!(
                s.kind,
                StepKind::ModeSwitch {
                    to: Mode::Kernel,
                    ..
                }
            ) {
                t.entered += 1;
            }
            if t.recent.len() == RECENT {
                t.recent.pop_front();
            }
            t.recent.push_back(s);
        }
    }

    /// The ends of the transfers that appeared since the last call, by process: the
    /// caller names them (see [`Board::name`]) while the process still has them open.
    pub fn unnamed(&mut self) -> Vec<(u32, Vec<Endpoint>)> {
        let mut by_pid: Vec<(u32, Vec<Endpoint>)> = Vec::new();
        for t in &self.model.transfers()[self.named..] {
            let ends = match by_pid.iter_mut().find(|(p, _)| *p == t.pid) {
                Some((_, ends)) => ends,
                None => {
                    by_pid.push((t.pid, Vec::new()));
                    &mut by_pid.last_mut().expect("just pushed").1
                }
            };
            for e in [t.src, t.dst] {
                if !self.names.contains_key(&(t.pid, e)) && !ends.contains(&e) {
                    ends.push(e);
                }
            }
        }
        self.named = self.model.transfers().len();
        by_pid.retain(|(_, ends)| !ends.is_empty());
        by_pid
    }

    /// Whether process `pid`'s end `end` has a name already.
    pub fn is_named(&self, pid: u32, end: Endpoint) -> bool {
        self.names.contains_key(&(pid, end))
    }

    /// Remembers the name of process `pid`'s end `end`.
    pub fn name(&mut self, pid: u32, end: Endpoint, name: Name) {
        self.names.insert((pid, end), name);
    }

    /// Every transfer's report, in the order they appeared.
    pub fn reports(&self) -> Vec<TransferReport> {
        (0..self.model.transfers().len())
            .filter(|&i| self.shown(i))
            .map(|i| self.report(TransferId(i)))
            .collect()
    }

    /// Whether transfer `i` has steps: the model makes the transfer of a server's headers
    /// before it knows that they go with the file sent next (then it stays empty).
    fn shown(&self, i: usize) -> bool {
        self.model.transfers()[i].ledger.wall_ns.is_some()
    }

    /// Transfer `id`'s report: its ledger, what it behaves like and the textbook's.
    pub fn report(&self, id: TransferId) -> TransferReport {
        self.report_of(id, true)
    }

    /// Every transfer for the TUI, its rate measured up to `now_ns` (the clock of the
    /// events' timestamps). Only `full`'s row (the one on screen) has its textbook and
    /// differences: walking the textbook is linear in the chunks, too slow for every
    /// transfer a few times a second.
    pub fn rows(&mut self, now_ns: u64, full: Option<TransferId>) -> Vec<Row> {
        let mut rows = Vec::with_capacity(self.tracked.len());
        for i in 0..self.model.transfers().len() {
            if !self.shown(i) {
                continue;
            }
            let id = TransferId(i);
            let mut report = self.report_of(id, false);
            let bytes = report.bytes;
            if Some(id) == full {
                let long = report.chunk > 0 && report.bytes / report.chunk > SLOW_TEXTBOOK_CHUNKS;
                report = match &self.tracked[i].full {
                    // Its ledger with the textbook it was compared with, not a newer one.
                    Some((at, r)) if long && now_ns.saturating_sub(*at) < SLOW_TEXTBOOK_NS => {
                        r.clone()
                    }
                    _ => {
                        let r = self.report_of(id, true);
                        self.tracked[i].full = long.then(|| (now_ns, r.clone()));
                        r
                    }
                };
            }
            let t = &mut self.tracked[i];
            t.samples.push_back((now_ns, bytes));
            while t.samples.len() > 2
                && t.samples
                    .get(1)
                    .is_some_and(|(ts, _)| now_ns.saturating_sub(*ts) >= RATE_WINDOW_NS)
            {
                t.samples.pop_front();
            }
            let rate = match t.samples.front() {
                Some(&(ts, then)) if now_ns > ts => {
                    (bytes.saturating_sub(then) as f64 * 1e9 / (now_ns - ts) as f64) as u64
                }
                _ => 0,
            };
            let (first, per_chunk) = chunk_shape(&report);
            rows.push(Row {
                recent: recent_chunk(&t.recent, first.as_deref(), per_chunk),
                seq: t.entered,
                rate,
                report,
            });
        }
        rows
    }

    /// Transfer `id`'s report; the textbook and the differences only `with_textbook`.
    fn report_of(&self, id: TransferId, with_textbook: bool) -> TransferReport {
        let t = &self.model.transfers()[id.0];
        let b = &self.tracked[id.0].behaviour;
        let (bytes, chunk) = file_bytes_and_chunk(t, b);
        let classification = classify::classify(t.src, t.dst, b);
        let observed = t.ledger.clone();
        let per_mib = if bytes == 0 {
            PerMib::default()
        } else {
            let per = |n: u64| (n as f64 * MIB / bytes as f64 * 100.0).round() / 100.0;
            PerMib {
                cpu_copies: per(observed.cpu_copies),
                dma_copies: per(observed.dma_copies),
                mode_switches: per(observed.mode_switches),
            }
        };
        let bytes_per_s = match observed.wall_ns {
            Some(ns) if ns > 0 => (bytes as f64 * 1e9 / ns as f64) as u64,
            _ => 0,
        };
        let (mut textbook, mut textbook_here, mut conditions) = (None, None, None);
        let mut differences = Vec::new();
        if let Some(method) = classification.method()
            && chunk > 0
            && with_textbook
        {
            let zc_send = classify::zero_copy_send(b);
            let cond = classify::conditions(&observed, &t.facts, zc_send);
            let article = textbook::ledger(method, bytes, chunk, &Conditions::ARTICLE);
            let here = textbook::ledger(method, bytes, chunk, &cond);
            differences = compare::differences(&compare::Run {
                method,
                chunks: bytes.div_ceil(chunk),
                observed: &observed,
                facts: &t.facts,
                article: &article,
                here: &here,
                here_conditions: cond,
            });
            textbook = Some(article);
            textbook_here = Some(here);
            conditions = Some(cond);
        }
        let name = |end: Endpoint| {
            self.names
                .get(&(t.pid, end))
                .cloned()
                .unwrap_or_else(|| Name::unresolved(end, None))
        };
        TransferReport {
            id,
            pid: t.pid,
            comm: self.comms.get(&t.pid).cloned().unwrap_or_default(),
            source: name(t.src),
            destination: name(t.dst),
            bytes,
            chunk,
            bytes_per_s,
            per_mib,
            method: classification.name(),
            reason: classification.reason(),
            evidence: classification.evidence.clone(),
            observed,
            textbook,
            textbook_here,
            conditions,
            differences,
            retransmits: t.facts.retransmits,
            retransmitted_bytes: t.facts.retransmitted_bytes,
            classification,
            sends_file: t.is_send(),
        }
    }
}

/// The bytes of the file that reached the destination and the bytes per call (what the
/// textbook walks in): without the application's own bytes sent before the file on its
/// socket (a server's headers: the model gives them to the file's transfer, and its facts
/// count them apart).
fn file_bytes_and_chunk(t: &Transfer, b: &Behaviour) -> (u64, u64) {
    let (bytes, chunks) = b.bytes_and_chunks(t.src, t.dst);
    let (bytes, chunks) = (
        bytes.saturating_sub(t.facts.own_bytes),
        chunks.saturating_sub(t.facts.own_sends),
    );
    let chunk = if chunks == 0 {
        0
    } else {
        bytes.div_ceil(chunks)
    };
    (bytes, chunk)
}

/// The syscall a chunk of the transfer's method starts with, and how many syscalls a
/// chunk makes (the textbook's, without mmap's setup); `None`, 1 for `other`.
fn chunk_shape(r: &TransferReport) -> (Option<String>, usize) {
    let Some(method) = r.classification.method() else {
        return (None, 1);
    };
    let chunk = r.chunk.max(1);
    let calls: Vec<String> = textbook::steps(method, chunk, chunk, &Conditions::ARTICLE)
        .into_iter()
        .filter_map(|s| match s.kind {
            StepKind::ModeSwitch {
                to: Mode::Kernel,
                syscall,
            } if syscall != "mmap" && syscall != "munmap" => Some(syscall),
            _ => None,
        })
        .collect();
    let n = calls.len().max(1);
    (calls.into_iter().next(), n)
}

/// The newest complete chunk among `steps`: from an entry of `first` through the
/// `per_chunk`-th syscall return after it, and the steps that follow before the next
/// syscall (a transmit in softirq). A chunk of several calls starts with one that puts
/// nothing into the socket (splice's two calls have one name). Without `first` (or when
/// no chunk is complete), the newest syscall and the steps after it.
pub fn recent_chunk(steps: &VecDeque<Step>, first: Option<&str>, per_chunk: usize) -> Vec<Step> {
    let is_entry = |s: &Step| {
        matches!(
            s.kind,
            StepKind::ModeSwitch {
                to: Mode::Kernel,
                ..
            }
        )
    };
    let is_return = |s: &Step| matches!(s.kind, StepKind::ModeSwitch { to: Mode::User, .. });
    let into_socket = |s: &Step| {
        matches!(
            s.kind,
            StepKind::Copy {
                to: Buffer::Socket,
                ..
            } | StepKind::PageRef {
                to: Buffer::Socket,
                ..
            }
        )
    };
    // The end of the chunk starting at `start`, when it is complete.
    let end_of = |start: usize| -> Option<usize> {
        let mut returns = 0;
        let mut i = start;
        while i < steps.len() {
            if is_return(&steps[i]) {
                returns += 1;
                if returns == per_chunk {
                    i += 1;
                    while i < steps.len() && !is_entry(&steps[i]) {
                        i += 1;
                    }
                    return Some(i);
                }
            }
            i += 1;
        }
        None
    };
    if let Some(first) = first {
        for start in (0..steps.len()).rev() {
            let StepKind::ModeSwitch {
                to: Mode::Kernel,
                syscall,
            } = &steps[start].kind
            else {
                continue;
            };
            if syscall != first {
                continue;
            }
            let call_end = (start..steps.len())
                .find(|&i| is_return(&steps[i]))
                .unwrap_or(steps.len());
            if per_chunk > 1 && steps.range(start..call_end).any(into_socket) {
                continue;
            }
            if let Some(end) = end_of(start) {
                return steps.range(start..end).cloned().collect();
            }
        }
    }
    let start = (0..steps.len())
        .rev()
        .find(|&i| is_entry(&steps[i]))
        .unwrap_or(0);
    steps.range(start..).cloned().collect()
}

#[cfg(test)]
mod tests;
