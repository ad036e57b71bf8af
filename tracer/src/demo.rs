//! `tracer demo`: run a built-in transfer traced, turn its events into steps and ledgers,
//! and compare them with the textbook.
//!
//! The workload runs in this process (sender on a thread of its own, receiver on another),
//! traced by tgid. Each method gets a fresh [`Model`]; the events of one run are drained
//! before the next starts. The tracer's own threads make no data-path syscalls while a
//! transfer runs (they wait on the ring buffer), so the model sees only the transfer.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, anyhow, bail};
use serde::Serialize;

use crate::{
    event::Event,
    model::{
        Ledger, Method, Model, Step,
        compare::{self, Difference},
        fmt_field, human_bytes,
        steps::{Endpoint, Facts},
        textbook::{self, Cache, Conditions, Link},
    },
    probe::{hooks::Tier, loader::LoadOptions},
    trace::{
        Session,
        lost::{DropWatch, Lost},
        output,
    },
    workload::{self, Report, Residency, WorkloadError},
};

/// A signal ended the demo; the exit status to use (128 + signal number).
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
struct Interrupted(i32);

/// SIGINT, SIGTERM and SIGHUP, caught for the whole demo.
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        })
    }

    /// Waits for one; says so on stderr and gives the exit status.
    pub async fn next(&mut self) -> i32 {
        let code = tokio::select! {
            _ = self.int.recv() => 130,
            _ = self.term.recv() => 143,
            _ = self.hup.recv() => 129,
        };
        crate::say!(
            "tracer: interrupted: stopping, removing the demo's files and detaching the probes"
        );
        code
    }
}

/// Default input size when no `--file` is given.
pub const DEFAULT_SIZE: u64 = 8 << 20;

/// One comparison on a sender ledger field, from `--expect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    pub field: String,
    pub op: Op,
    pub value: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
    fn holds(self, a: u64, b: u64) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        }
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{}", self.field, self.op.symbol(), self.value)
    }
}

/// Parses `--expect 'cpu_copy_bytes=0,mode_switches<=4'`.
pub fn parse_expect(text: &str) -> Result<Vec<Expect>> {
    let fields = || {
        let mut f: Vec<&str> = Ledger::FIELDS.to_vec();
        f.push("wall_ns");
        f.join(", ")
    };
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim) {
        if part.is_empty() {
            bail!(
                "--expect has an empty comparison in {text:?}: write FIELD<OP>VALUE, separated by commas"
            );
        }
        let pos = part
            .find(['=', '!', '<', '>'])
            .ok_or_else(|| anyhow!("--expect {part:?} has no comparison: write e.g. cpu_copy_bytes=0 or mode_switches<=4 (operators = != < <= > >=)"))?;
        let (field, rest) = part.split_at(pos);
        let field = field.trim();
        let (op, value) = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("!=", Op::Ne),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .iter()
        .find_map(|(s, op)| rest.strip_prefix(s).map(|v| (*op, v.trim())))
        .ok_or_else(|| anyhow!("--expect {part:?}: unknown operator (use = != < <= > >=)"))?;
        if field != "wall_ns" && !Ledger::FIELDS.contains(&field) {
            bail!(
                "--expect {part:?}: unknown field {field:?} (fields: {})",
                fields()
            );
        }
        let value = parse_size(value).map_err(|e| anyhow!("--expect {part:?}: {e}"))?;
        out.push(Expect {
            field: field.to_string(),
            op,
            value,
        });
    }
    Ok(out)
}

/// A `--chunk` value: bytes per call, from 1 byte to 1 GiB.
pub fn parse_chunk(text: &str) -> Result<u64> {
    let chunk = parse_size(text).map_err(|e| anyhow!("--chunk: {e}"))?;
    if chunk == 0 {
        bail!("--chunk must be at least 1 byte");
    }
    if chunk > 1 << 30 {
        bail!("--chunk: at most 1GiB per call");
    }
    Ok(chunk)
}

/// Parses a byte count: `8388608`, `64K`, `64KiB`, `8M`, `8MiB`, `1G` (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    if num.is_empty() {
        bail!("{text:?} is not a number (write e.g. 8388608, 64K or 8MiB)");
    }
    let n: u64 = num.parse().map_err(|_| anyhow!("{text:?} is too large"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => bail!("{text:?}: unknown unit {other:?} (use K, M or G, powers of 1024)"),
    };
    n.checked_mul(mult)
        .ok_or_else(|| anyhow!("{text:?} is too large"))
}

/// What `tracer demo` was asked to do.
#[derive(Clone, Debug)]
pub struct DemoArgs {
    pub methods: Vec<Method>,
    /// `--method all`: one comparison table.
    pub all: bool,
    pub size: Option<u64>,
    pub file: Option<PathBuf>,
    pub chunk: u64,
    pub cold: bool,
    /// TUI: keep the page cache.
    pub warm: bool,
    pub json: bool,
    pub expect: Vec<Expect>,
    /// Write every event of the runs here (the recording format: JSON lines).
    pub record: Option<PathBuf>,
    /// Overwrite an existing `record` file.
    pub force: bool,
}

/// The sender's side of a run.
#[derive(Clone, Debug, Serialize)]
pub struct SenderResult {
    pub observed: Ledger,
    /// The article's model: cold cache, a real NIC.
    pub textbook: Ledger,
    /// The same model under this run's conditions.
    pub textbook_here: Ledger,
    pub conditions: Conditions,
    pub facts: Facts,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReceiverResult {
    pub observed: Option<Ledger>,
    /// How the receiver's steps were known (observed by which probe, or inferred), with
    /// their counts.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub evidence: std::collections::BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ColdResult {
    pub pages: u64,
    pub resident_before: u64,
    pub resident_after: u64,
    /// False when pages stayed cached: the run is then partly warm.
    pub evicted: bool,
}

/// The result of one method's run.
#[derive(Clone, Debug, Serialize)]
pub struct MethodResult {
    pub method: Method,
    pub bytes: u64,
    pub chunk: u64,
    pub kernel: String,
    pub cold: Option<ColdResult>,
    pub sender: SenderResult,
    pub receiver: ReceiverResult,
    pub differences: Vec<Difference>,
    pub drops: u64,
    pub zerocopy: Option<workload::ZeroCopyReport>,
    pub io_uring_send_zc: Option<bool>,
}

/// A method that did not run: this kernel refused it, or its run failed.
#[derive(Clone, Debug, Serialize)]
pub struct NotRun {
    pub method: Method,
    /// Why: the kernel refused the method, or the run failed.
    pub not_run: String,
    /// True when the kernel refused it (the method is unsupported here).
    pub unsupported: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    Ran(Box<MethodResult>),
    NotRun(NotRun),
}

/// Checks the input before anything is loaded.
pub fn check_input(args: &DemoArgs) -> Result<()> {
    if args.chunk == 0 {
        bail!("--chunk must be at least 1 byte");
    }
    if args.size == Some(0) {
        bail!("--size must be at least 1 byte (the demo sends a file of that size)");
    }
    if let Some(path) = &args.file {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            bail!(
                "{} is a directory: --file needs a regular file",
                path.display()
            );
        }
        if !meta.is_file() {
            bail!("{} is not a regular file", path.display());
        }
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        workload::check_size(path, meta.len())?;
    }
    Ok(())
}

/// Runs the demo; returns the exit code (1 when an `--expect` comparison failed).
pub async fn run(args: DemoArgs) -> Result<i32> {
    check_input(&args)?;
    // Before making a possibly large input file for nothing.
    if !crate::probe::has_bpf_privileges() {
        return Err(crate::probe::loader::ProbeError::Permission.into());
    }
    // A recording path that cannot be written fails now, not after the input is made and
    // the probes are loaded.
    let record = match &args.record {
        Some(p) => Some((
            p.clone(),
            open_recording(p, args.file.as_deref(), args.force)?,
        )),
        None => None,
    };
    // First, so that Ctrl-C or SIGTERM at any point still removes the scratch directory
    // and detaches the probes (by unwinding through their destructors).
    let mut signals = Signals::new()?;
    let chunks = args
        .size
        .or_else(|| {
            args.file
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .map(|m| m.len())
        })
        .unwrap_or(DEFAULT_SIZE)
        .div_ceil(args.chunk);
    let size = args.size.unwrap_or(DEFAULT_SIZE);
    let mut lab =
        match Lab::prepare(args.file.clone(), size, args.chunk, Some(&mut signals)).await? {
            Ok(lab) => lab,
            Err(code) => return Ok(code),
        };
    if chunks > 1 << 20 {
        crate::say!(
            "tracer: note: {chunks} calls per method ({} chunks): this takes a while",
            human_bytes(args.chunk)
        );
    }
    if let Some((path, file)) = record {
        lab.record(&path, file);
    }
    let mut outcomes = Vec::new();
    let mut failed_runs = 0;
    for &method in &args.methods {
        match lab
            .run_method(method, args.cold, Some(&mut signals), &mut |_, _, _| {})
            .await
        {
            Ok(result) => outcomes.push(Outcome::Ran(Box::new(result))),
            Err(e) if e.is::<Interrupted>() => {
                return Ok(e.downcast::<Interrupted>().map_or(130, |i| i.0));
            }
            Err(e) if args.all => {
                // One method failing does not lose the others' results.
                let (not_run, unsupported) = match e.downcast_ref::<WorkloadError>() {
                    Some(WorkloadError::Unsupported { why, .. }) => (why.clone(), true),
                    None => {
                        failed_runs += 1;
                        (format!("{e:#}"), false)
                    }
                };
                outcomes.push(Outcome::NotRun(NotRun {
                    method,
                    not_run,
                    unsupported,
                }));
            }
            Err(e) => return Err(e),
        }
    }
    // A recording that failed is reported after the report, which stands on its own.
    let recorded = lab.finish_recording();
    let mut out = String::new();
    if args.json {
        let text = if args.all {
            serde_json::to_string_pretty(&outcomes)?
        } else {
            match outcomes.first() {
                Some(o) => serde_json::to_string_pretty(o)?,
                None => "null".into(),
            }
        };
        out.push_str(&text);
        out.push('\n');
    } else if args.all {
        out.push_str(&table(&outcomes));
    } else if let Some(Outcome::Ran(r)) = outcomes.first() {
        out.push_str(&report_text(r));
    }
    output::print(&out)?;
    let mut failed = false;
    for o in &outcomes {
        if let Outcome::Ran(r) = o {
            let failures: Vec<_> = args
                .expect
                .iter()
                .map(|e| (e, r.sender.observed.get(&e.field).unwrap_or(0)))
                .filter(|(e, value)| !e.op.holds(*value, e.value))
                .collect();
            for (e, value) in &failures {
                crate::say!(
                    "tracer: expectation failed for {}: {} (observed {}={})",
                    r.method.name(),
                    e,
                    e.field,
                    value
                );
            }
            failed |= !failures.is_empty();
            if failures.is_empty() && !args.expect.is_empty() {
                let list: Vec<String> = args.expect.iter().map(|e| e.to_string()).collect();
                crate::say!(
                    "tracer: {}: expectations hold: {}",
                    r.method.name(),
                    list.join(", ")
                );
            }
        }
    }
    let (drops, read_failures) = (lab.session.drops(), lab.session.read_failures());
    if drops > 0 || read_failures > 0 {
        crate::say!(
            "tracer: {drops} events were dropped (ring buffer full) and {read_failures} lost to failed kernel reads: the observed ledgers undercount"
        );
    }
    if failed_runs > 0 {
        crate::say!("tracer: {failed_runs} method(s) failed; their rows say why");
        failed = true;
    }
    drop(lab);
    recorded?;
    Ok(if failed { 1 } else { 0 })
}

/// Opens `--record`'s file ([`output::create`]), refusing the `--file` input itself
/// (same device and inode, whatever the path): truncating it would destroy the input.
fn open_recording(path: &Path, input: Option<&Path>, force: bool) -> Result<std::fs::File> {
    use std::os::unix::fs::MetadataExt as _;
    if let (Some(input), Ok(rec)) = (input, std::fs::symlink_metadata(path))
        && let Ok(inp) = std::fs::metadata(input)
        && (rec.dev(), rec.ino()) == (inp.dev(), inp.ino())
    {
        bail!(
            "--record {} is the --file input itself: choose another path for the recording",
            path.display()
        );
    }
    output::create(path, force)
        .with_context(|| format!("cannot create the recording {}", path.display()))
}

fn cold_result(r: &Residency) -> ColdResult {
    ColdResult {
        pages: r.pages,
        resident_before: r.resident_before,
        resident_after: r.resident_after,
        evicted: r.resident_after == 0,
    }
}

/// Runs one transfer on a thread of its own while feeding its events to a fresh model.
async fn run_one(
    lab: &mut Lab,
    method: Method,
    mut signals: Option<&mut Signals>,
    observer: &mut (dyn FnMut(&Model, &[Step], Counts) + Send),
) -> Result<(Report, Model, u64)> {
    // Events of what ran before (eviction's mmap/mincore, the previous run's tail) are
    // not this transfer's.
    let mut discard = Vec::new();
    lab.session.drain(&mut discard);
    drop(discard);
    let drops_before = lab.session.drops();
    let mut recorder = lab.recorder.as_mut();
    let mut model = Model::new();
    let mut steps = Vec::new();
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    let opts = workload::Options {
        chunk: usize::try_from(lab.chunk).context("--chunk is too large")?,
        scratch_dir: lab.input.copy_dir.clone(),
    };
    let path = lab.input.path.clone();
    let (marks_tx, marks) = std::sync::mpsc::channel();
    // In a Mutex so that this future is Send (the TUI runs it on a task).
    let marks = std::sync::Mutex::new(marks);
    // A plain thread, not spawn_blocking: on Ctrl-C the process exits without waiting.
    std::thread::Builder::new()
        .name("demo-sender".into())
        .spawn(move || {
            let _ = tx.send(workload::send_file_marked(&path, method, &opts, marks_tx));
        })
        .context("cannot start the sender thread")?;
    let mut batch: Vec<Event> = Vec::new();
    let mut window = Window::default();
    let mut fed = 0u64;
    let mut watch = DropWatch::new(drops_before);
    let mut feed = |batch: &mut Vec<Event>,
                    window: &mut Window,
                    model: &mut Model,
                    recorder: &mut Option<&mut Recorder>,
                    fed: &mut u64,
                    total_drops: u64|
     -> Result<()> {
        let drops = total_drops - drops_before;
        let lost = watch.check(total_drops);
        // Marks are read after the batch: a mark is sent before any event it excludes.
        if let Ok(marks) = marks.lock() {
            while let Ok(m) = marks.try_recv() {
                window.mark(m);
            }
        }
        for ev in window.pass(batch) {
            if let Some(r) = recorder.as_deref_mut() {
                r.event(method, &ev);
            }
            model.push(&ev, &mut steps);
            *fed += 1;
        }
        if let Some(r) = recorder.as_deref_mut() {
            if let Some(l) = lost {
                r.lost(method, l);
            }
            r.flush();
        }
        observer(
            model,
            &steps,
            Counts {
                events: *fed,
                drops,
            },
        );
        steps.clear();
        Ok(())
    };
    let report = loop {
        tokio::select! {
            res = lab.session.next_batch(&mut batch) => {
                res.context("reading kernel events")?;
                let drops = lab.session.drops();
                feed(&mut batch, &mut window, &mut model, &mut recorder, &mut fed, drops)?;
            }
            done = &mut rx => {
                break done.map_err(|_| anyhow!("the sender thread died"))??;
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
    lab.session.drain(&mut batch);
    let total_drops = lab.session.drops();
    let drops = total_drops - drops_before;
    feed(
        &mut batch,
        &mut window,
        &mut model,
        &mut recorder,
        &mut fed,
        total_drops,
    )?;
    if !window.held.is_empty() {
        bail!("the transfer never reported its start (a bug in the workload)");
    }
    model.finish(&mut steps);
    observer(&model, &steps, Counts { events: fed, drops });
    if let Some(r) = recorder {
        r.report(&report);
        r.flush();
    }
    Ok((report, model, lab.session.drops() - drops_before))
}

/// Loaded probes and the input: what runs transfers traced. `tracer demo` (headless and
/// TUI) drives one; dropping it detaches the probes and frees a made input.
pub struct Lab {
    pub session: Session,
    input: Input,
    pub chunk: u64,
    pub kernel: String,
    recorder: Option<Recorder>,
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
    fn start(input: Input, chunk: u64) -> Result<Lab> {
        let mut session = Session::start(&LoadOptions::default())?;
        session.trace_pid(std::process::id())?;
        Ok(Lab {
            session,
            input,
            chunk,
            kernel: crate::probe::kernel_release(),
            recorder: None,
        })
    }

    /// Makes the input (`size` bytes, unnamed) unless `file` is given, then starts.
    /// `Ok(Err(code))` when a signal came first.
    pub async fn prepare(
        file: Option<PathBuf>,
        size: u64,
        chunk: u64,
        signals: Option<&mut Signals>,
    ) -> Result<Result<Lab, i32>> {
        let input = match file {
            // copy-file-range makes its copy beside the given file: the same filesystem.
            Some(p) => Input {
                copy_dir: workload::dir_of(&p),
                path: p,
                _made: None,
            },
            None => {
                let made = workload::scratch::unnamed_input(size)?;
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
        Ok(Ok(Lab::start(input, chunk)?))
    }

    fn record(&mut self, path: &Path, file: std::fs::File) {
        self.recorder = Some(Recorder::create(path, file, &self.session, &self.kernel));
    }

    fn finish_recording(&mut self) -> Result<(), output::OutputError> {
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
        // io_uring's reads and sends are only seen through its tracepoints (the submission,
        // under either of its names, and the completion): say so rather than show an
        // empty ledger.
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
        if method == Method::IoUring && !(submit && complete) {
            let missing: &[&str] = if submit {
                &["io_uring_complete"]
            } else {
                &submits
            };
            // The skip that matters: of a tracepoint this kernel has, if any (not the
            // other name of a renamed one).
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
            return Err(WorkloadError::Unsupported {
                method: "io-uring",
                why: format!("io_uring cannot be traced on this kernel: {why}"),
            }
            .into());
        }
        let cold = if cold {
            // Pages still referenced (by the previous run's skbs until their sockets are
            // gone, for one) cannot be dropped yet: try again a few times.
            let mut r = workload::evict(&self.input.path)?;
            for _ in 0..10 {
                if r.resident_after == 0 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                let again = workload::evict(&self.input.path)?;
                r.resident_after = again.resident_after;
            }
            Some(cold_result(&r))
        } else {
            None
        };
        let (report, model, drops) = run_one(self, method, signals, observer).await?;
        summarize(&report, &model, &self.kernel, cold, drops, self.chunk)
    }
}

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
    fn mark(&mut self, m: workload::Mark) {
        match m {
            workload::Mark::Started {
                tid,
                receiver_tid,
                start_ns,
            } => self.started = Some((tid, receiver_tid, start_ns)),
            workload::Mark::Ended { end_ns } => self.end_ns = Some(end_ns),
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
                    crate::event::Payload::SyscallEnter { .. }
                        | crate::event::Payload::SyscallExit { .. }
                );
                !syscall
                    || (e.tid == sender && e.ts_ns >= start && e.ts_ns <= end)
                    || Some(e.tid) == receiver
            })
            .collect()
    }
}

/// The sender and receiver transfers of a run, found by the report's inodes.
pub fn pick<'m>(
    model: &'m Model,
    report: &Report,
) -> (
    Option<&'m crate::model::Transfer>,
    Option<&'m crate::model::Transfer>,
) {
    let dst = if report.method == Method::CopyFileRange {
        Endpoint::File {
            ino: report.dst_ino,
        }
    } else {
        Endpoint::Socket {
            ino: report.dst_ino,
        }
    };
    let src = Endpoint::File {
        ino: report.src_ino,
    };
    let sender = model.sender(Some((src, dst)));
    let receiver = report
        .receiver_ino
        .and_then(|ino| model.receiver(Some(ino)));
    (sender, receiver)
}

/// Builds the comparison of one run.
pub fn summarize(
    report: &Report,
    model: &Model,
    kernel: &str,
    cold: Option<ColdResult>,
    drops: u64,
    chunk: u64,
) -> Result<MethodResult> {
    let (sender, receiver) = pick(model, report);
    let sender = sender.ok_or_else(|| {
        anyhow!(
            "no {} transfer was seen in the kernel events (were the syscall probes attached?)",
            report.method.name()
        )
    })?;
    let mut observed = sender.ledger.clone();
    observed.wall_ns = Some(report.wall_ns);
    let conditions = conditions_of(&sender.ledger, &sender.facts, report);
    let article = textbook::ledger(report.method, report.bytes, chunk, &Conditions::ARTICLE);
    let here = textbook::ledger(report.method, report.bytes, chunk, &conditions);
    let differences = compare::differences(&compare::Run {
        method: report.method,
        chunks: report.bytes.div_ceil(chunk),
        observed: &observed,
        facts: &sender.facts,
        article: &article,
        here: &here,
        here_conditions: conditions,
    });
    Ok(MethodResult {
        method: report.method,
        bytes: report.bytes,
        chunk,
        kernel: kernel.to_string(),
        cold,
        sender: SenderResult {
            observed,
            textbook: article,
            textbook_here: here,
            conditions,
            facts: sender.facts.clone(),
        },
        receiver: ReceiverResult {
            observed: receiver.map(|r| r.ledger.clone()),
            evidence: receiver
                .map(|r| r.facts.evidence.clone())
                .unwrap_or_default(),
        },
        differences,
        drops,
        zerocopy: report.zerocopy.clone(),
        io_uring_send_zc: report.io_uring_send_zc,
    })
}

/// The conditions the run had, from what the probes saw.
///
/// The cache is cold when most pages came from disk; a few misses in a cached file (or a
/// few hits in an evicted one) are explained as such in the differences. No lookups at
/// all (tmpfs keeps files in memory; O_DIRECT bypasses the cache) means no disk reads.
pub fn conditions_of(l: &Ledger, f: &Facts, report: &Report) -> Conditions {
    // Without the lookup tracepoints (before ~6.11) the disk reads still tell.
    let no_lookups = l.cache_hits + l.cache_misses == 0;
    let cache = if l.cache_misses > l.cache_hits || (no_lookups && f.block_requests > 0) {
        Cache::Cold
    } else {
        Cache::Warm
    };
    let link = if f.nic_xmits > 0 {
        Link::Nic
    } else {
        Link::Loopback
    };
    Conditions {
        cache,
        link,
        zc_send: report.io_uring_send_zc.unwrap_or(true),
    }
}

fn label(field: &str) -> &'static str {
    match field {
        "mode_switches" => "mode switches",
        "syscalls" => "syscalls",
        "cpu_copies" => "CPU copies",
        "cpu_copy_bytes" => "CPU-copied bytes",
        "dma_copies" => "DMA copies",
        "dma_bytes" => "DMA bytes",
        "page_refs" => "page references",
        "page_ref_bytes" => "referenced bytes",
        "cache_hits" => "page-cache hits (pages)",
        "cache_misses" => "page-cache misses (pages)",
        _ => "?",
    }
}

/// What the run's conditions were, as the probes saw them.
fn conditions_text(r: &MethodResult) -> String {
    let o = &r.sender.observed;
    let pages = o.cache_hits + o.cache_misses;
    let cache = match (o.cache_hits, o.cache_misses) {
        (0, 0) => "no page-cache lookups seen (tmpfs?)".to_string(),
        (_, 0) => "page cache warm (every page cached)".to_string(),
        (0, m) => format!("page cache cold (all {m} pages read from disk)"),
        (_, m) => format!("page cache partly warm ({m} of {pages} pages read from disk)"),
    };
    if r.method == Method::CopyFileRange {
        return cache;
    }
    let link = match r.sender.conditions.link {
        Link::Loopback => "loopback",
        Link::Nic => "a NIC",
    };
    format!("{cache}, {link}")
}

pub(crate) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The headless report of one method.
pub fn report_text(r: &MethodResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} in {} of {}, kernel {}, {}",
        r.method.name(),
        human_bytes(r.bytes),
        plural(r.bytes.div_ceil(r.chunk), "chunk", "chunks"),
        human_bytes(r.chunk),
        crate::ui::escape::escape(&r.kernel),
        conditions_text(r)
    );
    let _ = writeln!(s, "  {}", r.method.describe());
    if let Some(c) = &r.cold {
        if c.evicted {
            let _ = writeln!(
                s,
                "  --cold: all {} pages evicted from the page cache before the run",
                c.pages
            );
        } else {
            let _ = writeln!(
                s,
                "  --cold: eviction did not take: {} of {} pages stayed cached",
                c.resident_after, c.pages
            );
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "  {:<26} {:>12} {:>12}   (textbook: the article's model, cold cache and a real NIC)",
        "sender", "observed", "textbook"
    );
    for f in Ledger::FIELDS {
        let o = r.sender.observed.get(f).unwrap_or(0);
        let t = r.sender.textbook.get(f).unwrap_or(0);
        let _ = writeln!(
            s,
            "  {:<26} {:>12} {:>12}   {}",
            label(f),
            fmt_field(f, o),
            fmt_field(f, t),
            if o == t { "" } else { "differs" }
        );
    }
    let _ = writeln!(
        s,
        "  {:<26} {:>12} {:>12}",
        "wall time",
        r.sender.observed.wall_ns.map_or("-".into(), fmt_ns),
        "-"
    );
    if let Some(rx) = &r.receiver.observed {
        let _ = writeln!(
            s,
            "\n  receiver (its own ledger; the loopback peer): {} mode switches, {} syscalls, {} CPU copies ({})",
            rx.mode_switches,
            rx.syscalls,
            rx.cpu_copies,
            human_bytes(rx.cpu_copy_bytes)
        );
    }
    if let Some(z) = &r.zerocopy {
        let _ = writeln!(
            s,
            "  zero-copy completions: {} notifications for {} sends, {} flagged as copied by the kernel",
            z.notifications, z.completed, z.copied
        );
    }
    if r.io_uring_send_zc == Some(false) {
        let _ = writeln!(s, "  io_uring: this kernel has no SEND_ZC; SEND was used");
    }
    let _ = writeln!(s);
    if r.differences.is_empty() {
        let _ = writeln!(s, "  no differences from the textbook");
    } else {
        let _ = writeln!(
            s,
            "  differences from the textbook (observed/textbook: why):"
        );
        for line in difference_lines(&r.differences) {
            let _ = writeln!(s, "  - {line}");
        }
    }
    let _ = writeln!(s, "  events dropped: {}", r.drops);
    s
}

/// One line per reason: fields that differ for the same reason share it.
fn difference_lines(diffs: &[Difference]) -> Vec<String> {
    let mut lines: Vec<(String, &str)> = Vec::new();
    for d in diffs {
        let cell = format!(
            "{} {}/{}",
            label(d.field),
            fmt_field(d.field, d.observed),
            fmt_field(d.field, d.textbook)
        );
        match lines.last_mut() {
            Some((cells, reason)) if *reason == d.reason => {
                cells.push_str(", ");
                cells.push_str(&cell);
            }
            _ => lines.push((cell, &d.reason)),
        }
    }
    lines
        .into_iter()
        .map(|(cells, reason)| format!("{cells}: {reason}"))
        .collect()
}

fn fmt_ns(ns: u64) -> String {
    if ns >= 1_000_000_000 {
        format!("{:.2} s", ns as f64 / 1e9)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

/// The `--method all` comparison table, then every difference.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let ran: Vec<&MethodResult> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Ran(r) => Some(r.as_ref()),
            _ => None,
        })
        .collect();
    if let Some(r) = ran.first() {
        let _ = writeln!(
            s,
            "{} in {} chunks, kernel {}, {}",
            human_bytes(r.bytes),
            human_bytes(r.chunk),
            crate::ui::escape::escape(&r.kernel),
            conditions_text(r)
        );
        let _ = writeln!(
            s,
            "cells: observed/textbook (the article's model: read from disk, sent by a NIC); \
             model here: the same model under this run's conditions\n"
        );
    }
    let cols = [
        ("mode_switches", "switches"),
        ("cpu_copies", "CPU copies"),
        ("cpu_copy_bytes", "CPU bytes"),
        ("dma_copies", "DMA copies"),
        ("dma_bytes", "DMA bytes"),
        ("page_refs", "page refs"),
        ("cache_misses", "cache misses"),
    ];
    let cell = |r: &MethodResult, f: &str| {
        format!(
            "{}/{}",
            fmt_field(f, r.sender.observed.get(f).unwrap_or(0)),
            fmt_field(f, r.sender.textbook.get(f).unwrap_or(0))
        )
    };
    let widths: Vec<usize> = cols
        .iter()
        .map(|(f, h)| {
            ran.iter()
                .map(|r| cell(r, f).len())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let _ = write!(s, "{:<16}", "method");
    for ((_, h), w) in cols.iter().zip(&widths) {
        let _ = write!(s, "  {h:>w$}");
    }
    let _ = writeln!(s, "  {:>9}  model here", "wall");
    for o in outcomes {
        match o {
            Outcome::Ran(r) => {
                let _ = write!(s, "{:<16}", r.method.name());
                for ((f, _), w) in cols.iter().zip(&widths) {
                    let _ = write!(s, "  {:>w$}", cell(r, f));
                }
                let here_diffs: Vec<&Difference> = r
                    .differences
                    .iter()
                    .filter(|d| r.sender.textbook_here.get(d.field) != Some(d.observed))
                    .collect();
                let unexplained = here_diffs.iter().filter(|d| !d.explained).count();
                let verdict = if here_diffs.is_empty() {
                    "matches".to_string()
                } else if unexplained == 0 {
                    format!(
                        "{} explained",
                        plural(here_diffs.len() as u64, "field differs,", "fields differ,")
                    )
                } else {
                    format!(
                        "{} not explained",
                        plural(unexplained as u64, "field", "fields")
                    )
                };
                let _ = writeln!(
                    s,
                    "  {:>9}  {}",
                    r.sender.observed.wall_ns.map_or("-".into(), fmt_ns),
                    verdict
                );
            }
            Outcome::NotRun(u) => {
                let _ = writeln!(
                    s,
                    "{:<16}  {}: {}",
                    u.method.name(),
                    if u.unsupported {
                        "unsupported here"
                    } else {
                        "failed"
                    },
                    u.not_run
                );
            }
        }
    }
    for r in &ran {
        if let Some(c) = r.cold.as_ref().filter(|c| !c.evicted) {
            let _ = writeln!(
                s,
                "--cold: eviction did not take for {}: {} of {} pages stayed cached",
                r.method.name(),
                c.resident_after,
                c.pages
            );
        }
    }
    let _ = writeln!(s);
    for r in &ran {
        if r.differences.is_empty() {
            let _ = writeln!(s, "{}: matches the textbook", r.method.name());
            continue;
        }
        let _ = writeln!(s, "{}:", r.method.name());
        for line in difference_lines(&r.differences) {
            let _ = writeln!(s, "  {line}");
        }
    }
    let drops: u64 = ran.iter().map(|r| r.drops).sum();
    let _ = writeln!(s, "\nevents dropped: {drops}");
    s
}

/// Writes the events of the runs as JSON lines: a header, then per method its events and
/// the workload's report. Fixtures for the model's tests are such recordings.
///
/// A failed write stops the recording, not the run: the error is kept for
/// [`Recorder::finish`], and the lines before it stay whole (see [`output::Lines`]).
pub struct Recorder {
    out: output::Lines,
    error: Option<output::OutputError>,
}

/// One line of a recording.
#[derive(Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RecordLine {
    Header {
        format: String,
        kernel: String,
        consts: crate::event::KernelConsts,
    },
    Event {
        method: Method,
        event: Event,
    },
    Report {
        report: Report,
    },
    /// Events the kernel dropped here, between two readings of its counter (see
    /// [`crate::trace::lost`]).
    Lost {
        method: Method,
        count: u64,
        since_ns: u64,
        until_ns: u64,
    },
}

impl Recorder {
    fn create(path: &Path, file: std::fs::File, session: &Session, kernel: &str) -> Recorder {
        let mut r = Recorder {
            out: output::Lines::file(file, format!("the recording {}", path.display())),
            error: None,
        };
        r.line(&RecordLine::Header {
            format: "tracer-recording-1".into(),
            kernel: kernel.to_string(),
            consts: session.consts().clone(),
        });
        r.flush();
        r
    }

    fn line(&mut self, l: &RecordLine) {
        // Serializing into a Vec cannot fail: every line is plain data.
        let _ = serde_json::to_writer(self.out.line(), l);
        self.out.end_line(true);
    }

    fn event(&mut self, method: Method, event: &Event) {
        self.line(&RecordLine::Event {
            method,
            event: event.clone(),
        })
    }

    fn lost(&mut self, method: Method, lost: Lost) {
        self.line(&RecordLine::Lost {
            method,
            count: lost.count,
            since_ns: lost.since_ns,
            until_ns: lost.until_ns,
        })
    }

    fn report(&mut self, report: &Report) {
        self.line(&RecordLine::Report {
            report: report.clone(),
        })
    }

    /// Writes the lines so far (after each batch); keeps the first error.
    fn flush(&mut self) {
        if let Err(e) = self.out.flush()
            && self.error.is_none()
        {
            self.error = Some(e);
        }
    }

    fn finish(&mut self) -> Result<(), output::OutputError> {
        self.flush();
        self.error.take().map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_parse_and_bad_ones_say_what_to_write() {
        let e = parse_expect("cpu_copy_bytes=0, mode_switches<=4,dma_bytes>=1MiB").unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[1].op, Op::Le);
        assert_eq!(e[2].value, 1 << 20);
        assert_eq!(e[0].to_string(), "cpu_copy_bytes=0");
        for (bad, says) in [
            ("cpu_copies", "no comparison"),
            ("copies=1", "unknown field"),
            ("cpu_copies=x", "not a number"),
            ("cpu_copies=1,", "empty comparison"),
            ("cpu_copies=>1", "not a number"),
        ] {
            let err = parse_expect(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert!(Op::Le.holds(4, 4) && !Op::Lt.holds(4, 4) && Op::Ne.holds(1, 2));
    }

    #[test]
    fn a_gap_is_a_line_of_the_recording() {
        let line = RecordLine::Lost {
            method: Method::Sendfile,
            count: 7,
            since_ns: 10,
            until_ns: 20,
        };
        let text = serde_json::to_string(&line).unwrap();
        assert_eq!(
            text,
            r#"{"type":"lost","method":"sendfile","count":7,"since_ns":10,"until_ns":20}"#
        );
        assert!(matches!(
            serde_json::from_str(&text).unwrap(),
            RecordLine::Lost { count: 7, .. }
        ));
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("8MiB").unwrap(), 8 << 20);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert_eq!(parse_size("123").unwrap(), 123);
        assert!(parse_size("1T").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }
}
