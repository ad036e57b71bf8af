//! `tracer demo`: run a built-in transfer traced, turn its events into steps and ledgers,
//! and compare them with the textbook.
//!
//! The workload runs in this process (sender on a thread of its own, receiver on another),
//! traced by tgid. Each method gets a fresh [`Model`]; the events of one run are drained
//! before the next starts. The tracer's own threads make no data-path syscalls while a
//! transfer runs (they wait on the ring buffer), so the model sees only the transfer.

use std::{
    fmt::Write as _,
    io::{BufWriter, Write as _},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, anyhow, bail};
use serde::Serialize;

use crate::{
    event::Event,
    model::{
        Ledger, Model,
        compare::{self, Difference},
        human_bytes,
        steps::{Endpoint, Facts},
        textbook::{self, Cache, Conditions, Link},
    },
    probe::loader::LoadOptions,
    trace::Session,
    workload::{self, Method, Report, Residency, WorkloadError},
};

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
    pub json: bool,
    pub expect: Vec<Expect>,
    /// Write every event of the runs here (the recording format: JSON lines).
    pub record: Option<PathBuf>,
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

/// A method this kernel refused.
#[derive(Clone, Debug, Serialize)]
pub struct Unsupported {
    pub method: Method,
    pub unsupported: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    Ran(Box<MethodResult>),
    Unsupported(Unsupported),
}

/// A directory removed (with its contents) when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch> {
        let base = std::env::temp_dir();
        for i in 0..100u32 {
            let p = base.join(format!("tracer-demo-{}-{i}", std::process::id()));
            match std::fs::create_dir(&p) {
                Ok(()) => return Ok(Scratch(p)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot create a directory in {}", base.display())
                    });
                }
            }
        }
        bail!("cannot create a scratch directory in {}", base.display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The running kernel's release (uname -r).
pub fn kernel_release() -> String {
    // SAFETY: utsname is plain bytes; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    let bytes: Vec<u8> = u
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Checks the input before anything is loaded.
fn check_input(args: &DemoArgs) -> Result<()> {
    if args.chunk == 0 {
        bail!("--chunk must be at least 1 byte");
    }
    if let Some(size) = args.size {
        if size == 0 {
            bail!("--size must be at least 1 byte (the demo sends a file of that size)");
        }
        if args.file.is_some() {
            bail!("give either --size (the demo creates the file) or --file, not both");
        }
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
        if meta.len() == 0 {
            bail!("{} is empty: there is nothing to send", path.display());
        }
    }
    Ok(())
}

/// Runs the demo; returns the exit code (1 when an `--expect` comparison failed).
pub async fn run(args: DemoArgs) -> Result<i32> {
    check_input(&args)?;
    let scratch = Scratch::new()?;
    let input = match &args.file {
        Some(p) => p.clone(),
        None => {
            let p = scratch.0.join("input");
            workload::make_file(&p, args.size.unwrap_or(DEFAULT_SIZE))?;
            p
        }
    };
    let mut session = Session::start(&LoadOptions::default())?;
    session.trace_pid(std::process::id())?;
    let mut recorder = match &args.record {
        Some(p) => Some(Recorder::create(p, &session)?),
        None => None,
    };
    let kernel = kernel_release();
    let mut outcomes = Vec::new();
    for &method in &args.methods {
        let cold = if args.cold {
            let r = workload::evict(&input)?;
            Some(cold_result(&r))
        } else {
            None
        };
        match run_one(
            &mut session,
            method,
            &input,
            &scratch.0,
            &args,
            recorder.as_mut(),
        )
        .await
        {
            Ok((report, model, drops)) => {
                let result = summarize(&report, &model, &kernel, cold, drops, args.chunk)?;
                outcomes.push(Outcome::Ran(Box::new(result)));
            }
            Err(e) => match e.downcast_ref::<WorkloadError>() {
                Some(WorkloadError::Unsupported { why, .. }) if args.all => {
                    outcomes.push(Outcome::Unsupported(Unsupported {
                        method,
                        unsupported: why.clone(),
                    }));
                }
                _ => return Err(e),
            },
        }
    }
    if let Some(r) = recorder.as_mut() {
        r.finish()?;
    }
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
    std::io::stdout().write_all(out.as_bytes())?;
    std::io::stdout().flush()?;
    let mut failed = false;
    for o in &outcomes {
        if let Outcome::Ran(r) = o {
            for e in &args.expect {
                let value = r.sender.observed.get(&e.field).unwrap_or(0);
                if !e.op.holds(value, e.value) {
                    eprintln!(
                        "tracer: expectation failed for {}: {} (observed {}={})",
                        r.method.name(),
                        e,
                        e.field,
                        value
                    );
                    failed = true;
                }
            }
        }
    }
    if session.drops() > 0 {
        eprintln!(
            "tracer: {} events were dropped (ring buffer full): the observed ledgers undercount",
            session.drops()
        );
    }
    drop(session);
    drop(scratch);
    Ok(if failed { 1 } else { 0 })
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
    session: &mut Session,
    method: Method,
    input: &Path,
    scratch: &Path,
    args: &DemoArgs,
    mut recorder: Option<&mut Recorder>,
) -> Result<(Report, Model, u64)> {
    // Events of what ran before (eviction's mmap/mincore, the previous run's tail) are
    // not this transfer's.
    let mut discard = Vec::new();
    session.drain(&mut discard);
    drop(discard);
    let drops_before = session.drops();
    let mut model = Model::new();
    let mut steps = Vec::new();
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    let opts = workload::Options {
        chunk: usize::try_from(args.chunk).context("--chunk is too large")?,
        scratch_dir: scratch.to_path_buf(),
    };
    let path = input.to_path_buf();
    let (marks_tx, marks) = std::sync::mpsc::channel();
    // A plain thread, not spawn_blocking: on Ctrl-C the process exits without waiting.
    std::thread::Builder::new()
        .name("demo-sender".into())
        .spawn(move || {
            let _ = tx.send(workload::send_file_marked(&path, method, &opts, marks_tx));
        })
        .context("cannot start the sender thread")?;
    let mut batch: Vec<Event> = Vec::new();
    let mut window = Window::default();
    let mut feed = |batch: &mut Vec<Event>,
                    window: &mut Window,
                    model: &mut Model,
                    recorder: &mut Option<&mut Recorder>|
     -> Result<()> {
        // Marks are read after the batch: a mark is sent before any event it excludes.
        while let Ok(m) = marks.try_recv() {
            window.mark(m);
        }
        for ev in window.pass(batch) {
            if let Some(r) = recorder.as_deref_mut() {
                r.event(method, &ev)?;
            }
            model.push(&ev, &mut steps);
        }
        steps.clear();
        Ok(())
    };
    let report = loop {
        tokio::select! {
            res = session.next_batch(&mut batch) => {
                res.context("reading kernel events")?;
                feed(&mut batch, &mut window, &mut model, &mut recorder)?;
            }
            done = &mut rx => {
                break done.map_err(|_| anyhow!("the sender thread died"))??;
            }
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        }
    };
    // Everything the transfer's syscalls emitted is in the ring buffer by now.
    session.drain(&mut batch);
    feed(&mut batch, &mut window, &mut model, &mut recorder)?;
    if !window.held.is_empty() {
        bail!("the transfer never reported its start (a bug in the workload)");
    }
    model.finish(&mut steps);
    if let Some(r) = recorder {
        r.report(&report)?;
    }
    Ok((report, model, session.drops() - drops_before))
}

/// Keeps the sender thread's events outside its transfer window (file hashing, setup,
/// checks) away from the model. Events wait until the start is known.
#[derive(Default)]
struct Window {
    started: Option<(u32, u64)>,
    end_ns: Option<u64>,
    held: Vec<Event>,
}

impl Window {
    fn mark(&mut self, m: workload::Mark) {
        match m {
            workload::Mark::Started { tid, start_ns } => self.started = Some((tid, start_ns)),
            workload::Mark::Ended { end_ns } => self.end_ns = Some(end_ns),
        }
    }

    /// The events of `batch` (and those held) that the model may see, in order.
    fn pass(&mut self, batch: &mut Vec<Event>) -> Vec<Event> {
        self.held.append(batch);
        let Some((tid, start)) = self.started else {
            return Vec::new();
        };
        let end = self.end_ns.unwrap_or(u64::MAX);
        std::mem::take(&mut self.held)
            .into_iter()
            .filter(|e| e.tid != tid || (e.ts_ns >= start && e.ts_ns <= end))
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
    let pid = model
        .transfers()
        .iter()
        .find(|t| {
            t.src
                == Endpoint::File {
                    ino: report.src_ino,
                }
        })
        .map(|t| t.pid);
    let Some(pid) = pid else { return (None, None) };
    let dst = if report.method == Method::CopyFileRange {
        Endpoint::File {
            ino: report.dst_ino,
        }
    } else {
        Endpoint::Socket {
            ino: report.dst_ino,
        }
    };
    let sender = model.find(
        pid,
        Endpoint::File {
            ino: report.src_ino,
        },
        dst,
    );
    let receiver = report
        .receiver_ino
        .and_then(|ino| model.find(pid, Endpoint::Socket { ino }, Endpoint::User));
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
    let conditions = conditions_of(&sender.ledger, &sender.facts, cold.is_some(), report);
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
        },
        differences,
        drops,
        zerocopy: report.zerocopy.clone(),
        io_uring_send_zc: report.io_uring_send_zc,
    })
}

/// The conditions the run had, from what the probes saw.
pub fn conditions_of(l: &Ledger, f: &Facts, cold_requested: bool, report: &Report) -> Conditions {
    let cache = if l.cache_misses > 0 {
        Cache::Cold
    } else if l.cache_hits > 0 || !cold_requested {
        Cache::Warm
    } else {
        Cache::Cold
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

fn fmt_field(field: &str, v: u64) -> String {
    if field.ends_with("_bytes") {
        human_bytes(v)
    } else {
        v.to_string()
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

fn conditions_text(c: &Conditions) -> String {
    format!(
        "page cache {}, {}",
        match c.cache {
            Cache::Cold => "cold",
            Cache::Warm => "warm",
        },
        match c.link {
            Link::Loopback => "loopback",
            Link::Nic => "NIC",
        }
    )
}

/// The headless report of one method.
pub fn report_text(r: &MethodResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} in {} chunks of {}, kernel {}, {}",
        r.method.name(),
        human_bytes(r.bytes),
        r.bytes.div_ceil(r.chunk),
        human_bytes(r.chunk),
        r.kernel,
        conditions_text(&r.sender.conditions)
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
    let first = outcomes.iter().find_map(|o| match o {
        Outcome::Ran(r) => Some(r),
        _ => None,
    });
    if let Some(r) = first {
        let _ = writeln!(
            s,
            "{} in {} chunks, kernel {}, {}; each cell is observed/textbook (the article's model: cold cache, a real NIC)\n",
            human_bytes(r.bytes),
            human_bytes(r.chunk),
            r.kernel,
            conditions_text(&r.sender.conditions)
        );
    }
    let cols = [
        ("mode_switches", "switches"),
        ("syscalls", "syscalls"),
        ("cpu_copies", "CPU copies"),
        ("cpu_copy_bytes", "CPU bytes"),
        ("dma_copies", "DMA"),
        ("page_refs", "page refs"),
        ("cache_misses", "misses"),
    ];
    let _ = write!(s, "{:<16}", "method");
    for (_, h) in cols {
        let _ = write!(s, " {:>17}", h);
    }
    let _ = writeln!(s, " {:>10}  match", "wall");
    for o in outcomes {
        match o {
            Outcome::Ran(r) => {
                let _ = write!(s, "{:<16}", r.method.name());
                for (f, _) in cols {
                    let cell = format!(
                        "{}/{}",
                        fmt_field(f, r.sender.observed.get(f).unwrap_or(0)),
                        fmt_field(f, r.sender.textbook.get(f).unwrap_or(0))
                    );
                    let _ = write!(s, " {:>17}", cell);
                }
                let unexplained = r.differences.iter().filter(|d| !d.explained).count();
                let verdict = if r.differences.is_empty() {
                    "yes".to_string()
                } else if unexplained == 0 {
                    format!("no: {} fields, all explained", r.differences.len())
                } else {
                    format!("no: {unexplained} fields not explained")
                };
                let _ = writeln!(
                    s,
                    " {:>10}  {}",
                    r.sender.observed.wall_ns.map_or("-".into(), fmt_ns),
                    verdict
                );
            }
            Outcome::Unsupported(u) => {
                let _ = writeln!(
                    s,
                    "{:<16} unsupported here: {}",
                    u.method.name(),
                    u.unsupported
                );
            }
        }
    }
    let _ = writeln!(s);
    for o in outcomes {
        if let Outcome::Ran(r) = o {
            if r.differences.is_empty() {
                let _ = writeln!(s, "{}: matches the textbook", r.method.name());
                continue;
            }
            let _ = writeln!(s, "{}:", r.method.name());
            for line in difference_lines(&r.differences) {
                let _ = writeln!(s, "  {line}");
            }
        }
    }
    let drops: u64 = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Ran(r) => r.drops,
            _ => 0,
        })
        .sum();
    let _ = writeln!(s, "\nevents dropped: {drops}");
    s
}

/// Writes the events of the runs as JSON lines: a header, then per method its events and
/// the workload's report. Fixtures for the model's tests are such recordings.
pub struct Recorder {
    out: BufWriter<std::fs::File>,
    path: PathBuf,
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
}

impl Recorder {
    fn create(path: &Path, session: &Session) -> Result<Recorder> {
        let f = std::fs::File::create(path)
            .with_context(|| format!("cannot create the recording {}", path.display()))?;
        let mut r = Recorder {
            out: BufWriter::new(f),
            path: path.to_path_buf(),
        };
        r.line(&RecordLine::Header {
            format: "tracer-recording-1".into(),
            kernel: kernel_release(),
            consts: session.consts().clone(),
        })?;
        Ok(r)
    }

    fn line(&mut self, l: &RecordLine) -> Result<()> {
        serde_json::to_writer(&mut self.out, l)?;
        self.out
            .write_all(b"\n")
            .with_context(|| format!("writing {}", self.path.display()))
    }

    fn event(&mut self, method: Method, event: &Event) -> Result<()> {
        self.line(&RecordLine::Event {
            method,
            event: event.clone(),
        })
    }

    fn report(&mut self, report: &Report) -> Result<()> {
        self.line(&RecordLine::Report {
            report: report.clone(),
        })
    }

    fn finish(&mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))
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
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("8MiB").unwrap(), 8 << 20);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert_eq!(parse_size("123").unwrap(), 123);
        assert!(parse_size("1T").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }
}
