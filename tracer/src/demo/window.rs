//! Which events belong to a run: the [`Window`] the workload's marks open and close, and
//! the [`Feed`] that passes each batch through it to the run's model, recording and
//! observer.

use std::sync::mpsc;

use anyhow::{Result, bail};

use super::Recorder;
use crate::{
    event::{Event, Payload},
    model::{Method, Model, Step},
    trace::lost::DropWatch,
    workload::Mark,
};

/// What an observer is told besides the steps: events fed to the model so far in this run,
/// and events the kernel dropped (ring buffer full).
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub events: u64,
    pub drops: u64,
}

/// Keeps syscalls that are not the transfer's away from the model: the sender thread's
/// outside its window (hashing the file, setup, the copy check) and any other thread's
/// but the receiver's (the tracer itself: reading the ring buffer, writing `--record`).
/// Kernel-side events (sends, transmits, page cache, block I/O) all pass: they are keyed
/// by socket, skb and file, and a close after the window may still transmit. Events wait
/// until the start is known.
#[derive(Default)]
struct Window {
    /// (sender tid, receiver tid, start)
    started: Option<(u32, Option<u32>, u64)>,
    end_ns: Option<u64>,
    held: Vec<Event>,
}

impl Window {
    fn mark(&mut self, m: Mark) {
        match m {
            Mark::Started {
                tid,
                receiver_tid,
                start_ns,
            } => self.started = Some((tid, receiver_tid, start_ns)),
            Mark::Ended { end_ns } => self.end_ns = Some(end_ns),
        }
    }

    /// The events of `batch` (and those held) that the model may see, in order.
    fn pass(&mut self, batch: &mut Vec<Event>) -> Vec<Event> {
        self.held.append(batch);
        let Some((sender, receiver, start)) = self.started else {
            return Vec::new();
        };
        let end = self.end_ns.unwrap_or(u64::MAX);
        std::mem::take(&mut self.held)
            .into_iter()
            .filter(|e| {
                let syscall = matches!(
                    e.payload,
                    Payload::SyscallEnter { .. } | Payload::SyscallExit { .. }
                );
                !syscall
                    || (e.tid == sender && e.ts_ns >= start && e.ts_ns <= end)
                    || Some(e.tid) == receiver
            })
            .collect()
    }
}

/// Feeds one run's events, batch by batch, through its [`Window`] to a fresh model, the
/// recording and the observer.
pub(super) struct Feed<'o> {
    method: Method,
    window: Window,
    model: Model,
    steps: Vec<Step>,
    /// Events fed to the model so far.
    fed: u64,
    /// The kernel's drop counter when the run started.
    drops_before: u64,
    watch: DropWatch,
    /// The workload's marks.
    marks: mpsc::Receiver<Mark>,
    /// Sees the model and the new steps after every batch, and once more at the end.
    observer: &'o mut (dyn FnMut(&Model, &[Step], Counts) + Send),
}

impl<'o> Feed<'o> {
    pub(super) fn new(
        method: Method,
        drops_before: u64,
        marks: mpsc::Receiver<Mark>,
        observer: &'o mut (dyn FnMut(&Model, &[Step], Counts) + Send),
    ) -> Self {
        Feed {
            method,
            window: Window::default(),
            model: Model::new(),
            steps: Vec::new(),
            fed: 0,
            drops_before,
            watch: DropWatch::new(drops_before),
            marks,
            observer,
        }
    }

    /// Feeds `batch` (emptied), the kernel's drop counter now at `total_drops`.
    pub(super) fn batch(
        &mut self,
        batch: &mut Vec<Event>,
        mut recorder: Option<&mut Recorder>,
        total_drops: u64,
    ) {
        let drops = total_drops - self.drops_before;
        let lost = self.watch.check(total_drops);
        // Marks are read after the batch: a mark is sent before any event it excludes.
        while let Ok(m) = self.marks.try_recv() {
            self.window.mark(m);
        }
        for ev in self.window.pass(batch) {
            if let Some(r) = recorder.as_deref_mut() {
                r.event(Some(self.method), &ev);
            }
            self.model.push(&ev, &mut self.steps);
            self.fed += 1;
        }
        if let Some(r) = recorder {
            if let Some(l) = lost {
                r.lost(Some(self.method), l);
            }
            r.flush();
        }
        (self.observer)(
            &self.model,
            &self.steps,
            Counts {
                events: self.fed,
                drops,
            },
        );
        self.steps.clear();
    }

    /// Ends the run after its last batch: the model's last steps go to the observer.
    pub(super) fn finish(mut self, total_drops: u64) -> Result<Model> {
        if !self.window.held.is_empty() {
            bail!("the transfer never reported its start (a bug in the workload)");
        }
        self.model.finish(&mut self.steps);
        let counts = Counts {
            events: self.fed,
            drops: total_drops - self.drops_before,
        };
        (self.observer)(&self.model, &self.steps, counts);
        Ok(self.model)
    }
}
