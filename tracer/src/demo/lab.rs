//! The lab: loaded probes, this process traced, and the input file; it runs one method
//! at a time with a fresh model and builds its result.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow};

use super::{
    ColdResult, Counts, Interrupted, MethodResult, NotRun, Recorder, Signals, summarize,
    window::Feed,
};
use crate::{
    event::Event,
    model::{Method, Model, Step},
    probe::{hooks::Tier, loader::LoadOptions},
    recording::RunInfo,
    trace::{Session, output},
    workload::{self, Report, Residency, WorkloadError},
};

/// Loaded probes and the input: what runs transfers traced. `tracer demo` (headless and
/// TUI) drives one; dropping it detaches the probes and frees a made input.
pub struct Lab {
    pub session: Session,
    input: Input,
    pub chunk: u64,
    pub kernel: String,
    recorder: Option<Recorder>,
    /// What the socket methods cross; a veth pair's namespaces live as long as the lab.
    link: workload::Link,
}

/// What the lab sends: the user's file, or one made for the run.
struct Input {
    path: PathBuf,
    /// A made input has no name (see [`workload::scratch::unnamed_input`]): this
    /// descriptor is what keeps it.
    _made: Option<std::fs::File>,
    /// Where copy-file-range makes its unnamed copy: on the input's filesystem.
    copy_dir: PathBuf,
}

impl Lab {
    /// Loads the probes and traces this process.
    fn start(input: Input, chunk: u64, link: workload::Link) -> Result<Self> {
        let mut session = Session::start(&LoadOptions::default())?;
        session.trace_pid(std::process::id())?;
        Ok(Self {
            session,
            input,
            chunk,
            kernel: crate::probe::kernel_release(),
            recorder: None,
            link,
        })
    }

    /// Makes the link and the input (`size` bytes, unnamed, where `room` bytes are free:
    /// see [`workload::scratch::room_for`]) unless `file` is given, then starts.
    /// `Ok(Err(code))` when a signal came first.
    pub async fn prepare(
        file: Option<PathBuf>,
        size: u64,
        room: u64,
        chunk: u64,
        link: workload::LinkKind,
        signals: Option<&mut Signals>,
    ) -> Result<Result<Self, i32>> {
        // First: a kernel without veth or a user without the privilege fails before the
        // input is made.
        let link = link.make()?;
        let input = match file {
            // copy-file-range makes its copy beside the given file: the same filesystem.
            Some(p) => Input {
                copy_dir: workload::dir_of(&p),
                path: p,
                _made: None,
            },
            None => {
                let made = workload::scratch::unnamed_input(size, room)?;
                let file = made.file;
                let write = tokio::task::spawn_blocking(move || {
                    workload::write_pattern(&file, size).map(|()| file)
                });
                let written = match signals {
                    Some(s) => tokio::select! {
                        written = write => written,
                        code = s.next() => return Ok(Err(code)),
                    },
                    None => write.await,
                };
                let file = written
                    .context("creating the input file")?
                    .with_context(|| {
                        format!("writing the demo's input in {}", made.fs_dir.display())
                    })?;
                Input {
                    path: made.path,
                    _made: Some(file),
                    copy_dir: made.fs_dir,
                }
            }
        };
        Ok(Ok(Self::start(input, chunk, link)?))
    }

    pub(super) fn record(&mut self, path: &Path, file: output::Output, run: RunInfo) {
        self.recorder = Some(Recorder::create_for(
            path,
            file,
            &self.session,
            &self.kernel,
            run,
        ));
    }

    /// Records a method of `--method all` that did not run.
    pub(super) fn record_not_run(&mut self, not_run: &NotRun) {
        if let Some(r) = self.recorder.as_mut() {
            r.not_run(not_run);
        }
    }

    pub(super) fn finish_recording(&mut self) -> Result<(), output::OutputError> {
        match self.recorder.as_mut() {
            Some(r) => r.finish(),
            None => Ok(()),
        }
    }

    /// Runs one method traced (evicting the input first when `cold`) and compares it with
    /// the textbook. `observer` sees the model and the new steps after every batch of
    /// events, and once more at the end.
    pub async fn run_method(
        &mut self,
        method: Method,
        cold: bool,
        signals: Option<&mut Signals>,
        observer: &mut (dyn FnMut(&Model, &[Step], Counts) + Send),
    ) -> Result<MethodResult> {
        if method == Method::IoUring {
            self.io_uring_traceable()?;
        }
        let cold = if cold {
            Some(self.evict_input().await?)
        } else {
            None
        };
        let (report, model, drops) = self
            .run_one(method, signals, observer, cold.as_ref())
            .await?;
        summarize(&report, &model, &self.kernel, cold, drops, self.chunk)
    }

    /// io_uring's reads and sends are only seen through its tracepoints (the submission,
    /// under either of its names, and the completion): an error that says which is missing
    /// rather than an empty ledger.
    fn io_uring_traceable(&self) -> Result<()> {
        let attached: Vec<&str> = self
            .session
            .attached()
            .iter()
            .filter(|h| h.tier == Tier::Tracepoint)
            .map(|h| h.target)
            .collect();
        let submits = [
            "io_uring_submit_req",
            crate::probe::hooks::other_name("io_uring_submit_req").unwrap_or_default(),
        ];
        let submit = attached.iter().any(|a| submits.contains(a));
        let complete = attached.contains(&"io_uring_complete");
        if submit && complete {
            return Ok(());
        }
        let missing: &[&str] = if submit {
            &["io_uring_complete"]
        } else {
            &submits
        };
        // The skip that matters: of a tracepoint this kernel has, if any (not the other
        // name of a renamed one).
        let why = self
            .session
            .skipped()
            .iter()
            .filter(|s| s.hook.tier == Tier::Tracepoint && missing.contains(&s.hook.target))
            .min_by_key(|s| !s.in_kernel)
            .map_or_else(
                || format!("{} is not attached", missing[0]),
                |s| s.to_string(),
            );
        Err(WorkloadError::Unsupported {
            method: "io-uring",
            why: format!("io_uring cannot be traced on this kernel: {why}"),
        }
        .into())
    }

    /// Evicts the input from the page cache for a `--cold` run.
    async fn evict_input(&self) -> Result<ColdResult> {
        // Pages still referenced (by the previous run's skbs until their sockets are gone,
        // for one) cannot be dropped yet: try again a few times.
        let mut r = workload::evict(&self.input.path)?;
        for _ in 0..10 {
            if r.resident_after == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let again = workload::evict(&self.input.path)?;
            r.resident_after = again.resident_after;
        }
        Ok(cold_result(&r))
    }

    /// Runs one transfer on a thread of its own while feeding its events to a fresh model
    /// (`cold`: the eviction before it, for the recording).
    async fn run_one(
        &mut self,
        method: Method,
        mut signals: Option<&mut Signals>,
        observer: &mut (dyn FnMut(&Model, &[Step], Counts) + Send),
        cold: Option<&ColdResult>,
    ) -> Result<(Report, Model, u64)> {
        // Events of what ran before (eviction's mmap/mincore, the previous run's tail) are
        // not this transfer's.
        let mut discard = Vec::new();
        self.session.drain(&mut discard);
        drop(discard);
        let drops_before = self.session.drops();
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let opts = workload::Options {
            chunk: usize::try_from(self.chunk).context("--chunk is too large")?,
            scratch_dir: self.input.copy_dir.clone(),
            link: self.link.clone(),
        };
        let path = self.input.path.clone();
        let (marks_tx, marks) = std::sync::mpsc::channel();
        // A plain thread, not spawn_blocking: on Ctrl-C the process exits without waiting.
        std::thread::Builder::new()
            .name("demo-sender".into())
            .spawn(move || {
                drop(tx.send(workload::send_file_marked(&path, method, &opts, marks_tx)));
            })
            .context("cannot start the sender thread")?;
        let mut feed = Feed::new(method, drops_before, marks, observer);
        let mut batch: Vec<Event> = Vec::new();
        let report = loop {
            tokio::select! {
                res = self.session.next_batch(&mut batch) => {
                    res.context("reading kernel events")?;
                    let drops = self.session.drops();
                    feed.batch(&mut batch, self.recorder.as_mut(), drops);
                }
                done = &mut rx => {
                    break done.map_err(|_dropped| anyhow!("the sender thread died"))??;
                }
                code = async {
                    match signals.as_deref_mut() {
                        Some(s) => s.next().await,
                        None => std::future::pending().await,
                    }
                } => return Err(Interrupted(code).into()),
            }
        };
        // Everything the transfer's syscalls emitted is in the ring buffer by now.
        self.session.drain(&mut batch);
        let total_drops = self.session.drops();
        feed.batch(&mut batch, self.recorder.as_mut(), total_drops);
        let model = feed.finish(total_drops)?;
        let drops = self.session.drops() - drops_before;
        if let Some(r) = self.recorder.as_mut() {
            r.report(&report, cold, drops);
            r.flush();
        }
        Ok((report, model, drops))
    }
}

fn cold_result(r: &Residency) -> ColdResult {
    ColdResult {
        pages: r.pages,
        resident_before: r.resident_before,
        resident_after: r.resident_after,
        evicted: r.resident_after == 0,
    }
}
