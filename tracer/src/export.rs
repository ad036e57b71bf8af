//! `tracer export`: a recording's steps for the viewers engineers already use: Chrome
//! trace-event JSON (ui.perfetto.dev, chrome://tracing) or CSV, one row per step.
//!
//! The steps are the model's, replayed from the recording ([`crate::replay`]). In the
//! trace, each thread is a track with its syscalls as slices (the time between the two
//! mode switches); each place the bytes pass (disk, page cache, the application's buffer,
//! pipe, socket, NIC) is a track of a "kernel and devices" process, where copies and page
//! references are short slices with their bytes, kind and evidence in `args`, joined by a
//! flow arrow from their source to their destination; page-cache lookups and loopback
//! hand-offs are instants.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use crate::{
    model::{Buffer, Engine, Evidence, Method, Mode, Step, StepKind},
    replay,
    trace::output,
};

/// The formats `--format` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Chrome,
    Csv,
}

impl Format {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "chrome" => Some(Self::Chrome),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }
}

/// What `tracer export` is asked.
#[derive(Clone, Debug)]
pub struct ExportArgs {
    pub file: PathBuf,
    pub format: Format,
    pub method: Option<Method>,
    pub output: Option<PathBuf>,
    pub force: bool,
}

/// A step with the demo method whose run it is of (none under `watch`).
pub type Stepped = (Option<Method>, Step);

/// The pid of the tracks of the places bytes pass (no process has pid 0 in a recording's
/// steps: the kernel's own work is attributed to the process it is done for).
const PLACES_PID: u32 = 0;

fn place_track(b: Buffer) -> (u32, &'static str) {
    match b {
        Buffer::Disk => (1, "disk"),
        Buffer::PageCache => (2, "page cache"),
        Buffer::User => (3, "application buffer"),
        Buffer::Pipe => (4, "pipe"),
        Buffer::Socket => (5, "socket buffer"),
        Buffer::Nic => (6, "NIC"),
    }
}

fn evidence(e: &Evidence) -> String {
    match e {
        Evidence::Observed(p) => format!("observed by {p}"),
        Evidence::Inferred(why) => format!("inferred: {why}"),
    }
}

/// Microseconds since `t0`, the trace format's unit.
fn us(ts_ns: u64, t0: u64) -> f64 {
    ts_ns.saturating_sub(t0) as f64 / 1000.0
}

/// The kernel the recording was made on, and its steps in order with their method
/// (none under `watch`).
fn steps(args: &ExportArgs) -> Result<(String, Vec<Stepped>)> {
    let kernel = crate::recording::Reader::open(&args.file)
        .with_context(|| format!("cannot read the recording {}", args.file.display()))?
        .header()
        .kernel
        .clone();
    let mut all = Vec::new();
    let replayed = replay::replay(&args.file, args.method, &mut |m, _, steps, _, _| {
        all.extend(steps.iter().map(|s| (m, s.clone())));
    });
    // A watch's recording has steps and no demo result: that is no error here.
    if let Err(e) = replayed
        && all.is_empty()
    {
        return Err(e);
    }
    Ok((kernel, all))
}

/// The Chrome trace-event JSON of `steps`.
pub fn chrome(kernel: &str, steps: &[Stepped]) -> Value {
    let t0 = steps.iter().map(|(_, s)| s.ts_ns).min().unwrap_or(0);
    let mut events = vec![json!({
        "name": "process_name", "ph": "M", "pid": PLACES_PID, "tid": 0,
        "args": {"name": "kernel and devices"}
    })];
    for b in [
        Buffer::Disk,
        Buffer::PageCache,
        Buffer::User,
        Buffer::Pipe,
        Buffer::Socket,
        Buffer::Nic,
    ] {
        let (tid, name) = place_track(b);
        events.push(json!({
            "name": "thread_name", "ph": "M", "pid": PLACES_PID, "tid": tid,
            "args": {"name": name}
        }));
    }
    let mut threads: BTreeMap<(u32, u32), ()> = BTreeMap::new();
    // Each thread's syscall in progress: (name, start).
    let mut open: BTreeMap<u32, (String, u64, u32)> = BTreeMap::new();
    let mut flow = 0u64;
    for (method, s) in steps {
        threads.insert((s.pid, s.tid), ());
        let ts = us(s.ts_ns, t0);
        let args = |mut v: Value| {
            if let Some(m) = method {
                v["method"] = json!(m.name());
            }
            v["evidence"] = json!(evidence(&s.evidence));
            v
        };
        match &s.kind {
            StepKind::ModeSwitch {
                to: Mode::Kernel,
                syscall,
            } => {
                open.insert(s.tid, (syscall.clone(), s.ts_ns, s.pid));
            }
            StepKind::ModeSwitch {
                to: Mode::User,
                syscall,
            } => {
                // A return whose entry came before the recording has no slice.
                if let Some((name, start, pid)) = open.remove(&s.tid) {
                    events.push(json!({
                        "name": name, "cat": "syscall", "ph": "X", "pid": pid, "tid": s.tid,
                        "ts": us(start, t0), "dur": us(s.ts_ns, start),
                        "args": args(json!({"returned": syscall, "mode_switches": 2}))
                    }));
                }
            }
            StepKind::Copy {
                engine,
                from,
                to,
                bytes,
            } => {
                let what = match engine {
                    Engine::Cpu => ("CPU copy", "cpu-copy"),
                    Engine::Dma => ("DMA copy", "dma-copy"),
                };
                flow += 1;
                let a = args(moved(what.1, *from, *to, *bytes, s));
                moved_events(&mut events, flow, what, (*from, *to), ts, &a);
            }
            StepKind::PageRef {
                from,
                to,
                bytes,
                pinned,
            } => {
                let what = if *pinned {
                    ("pinned pages", "pin")
                } else {
                    ("page references", "page-ref")
                };
                flow += 1;
                let a = args(moved(what.1, *from, *to, *bytes, s));
                moved_events(&mut events, flow, what, (*from, *to), ts, &a);
            }
            StepKind::Lookup {
                hit_pages,
                miss_pages,
            } => events.push(json!({
                "name": if *miss_pages > 0 { "page-cache miss" } else { "page-cache hit" },
                "cat": "lookup", "ph": "i", "s": "t", "pid": PLACES_PID,
                "tid": place_track(Buffer::PageCache).0, "ts": ts,
                "args": args(json!({"hit_pages": hit_pages, "miss_pages": miss_pages}))
            })),
            StepKind::Handoff { bytes, peer } => events.push(json!({
                "name": if *peer { "veth hand-off" } else { "loopback hand-off" },
                "cat": "handoff", "ph": "i", "s": "t",
                "pid": PLACES_PID, "tid": place_track(Buffer::Socket).0, "ts": ts,
                "args": args(json!({"bytes": bytes, "peer_device": peer}))
            })),
        }
    }
    let mut pids: Vec<u32> = threads.keys().map(|(p, _)| *p).collect();
    pids.dedup();
    for pid in pids {
        events.push(json!({
            "name": "process_name", "ph": "M", "pid": pid, "tid": 0,
            "args": {"name": format!("process {pid}")}
        }));
    }
    for (pid, tid) in threads.keys() {
        events.push(json!({
            "name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
            "args": {"name": format!("thread {tid}")}
        }));
    }
    json!({
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "otherData": {"kernel": kernel, "source": "tracer export"}
    })
}

/// The `args` of bytes moved (or referenced) from one place to another.
fn moved(kind: &str, from: Buffer, to: Buffer, bytes: u64, s: &Step) -> Value {
    json!({
        "bytes": bytes, "kind": kind, "from": from.label(), "to": to.label(),
        "pid": s.pid, "tid": s.tid
    })
}

/// A copy or page references: a short slice on the source's track and one on the
/// destination's, joined by flow `id` (`s` at the source, `f` at the destination).
fn moved_events(
    events: &mut Vec<Value>,
    id: u64,
    (name, cat): (&str, &str),
    (from, to): (Buffer, Buffer),
    ts: f64,
    args: &Value,
) {
    for (place, ph) in [(from, "s"), (to, "f")] {
        let tid = place_track(place).0;
        events.push(json!({
            "name": name, "cat": cat, "ph": "X", "pid": PLACES_PID, "tid": tid,
            "ts": ts, "dur": 1, "args": args
        }));
        let mut f = json!({
            "name": name, "cat": cat, "ph": ph, "id": id, "pid": PLACES_PID, "tid": tid, "ts": ts
        });
        if ph == "f" {
            f["bp"] = json!("e");
        }
        events.push(f);
    }
}

/// A CSV field, quoted when it must be.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row per step.
pub fn csv(steps: &[Stepped]) -> String {
    let mut out = String::from(
        "method,step,ts_ns,pid,tid,transfer,kind,syscall,engine,from,to,bytes,hit_pages,miss_pages,evidence\n",
    );
    for (i, (method, s)) in steps.iter().enumerate() {
        let (kind, syscall, engine, from, to, bytes, hits, misses) = match &s.kind {
            StepKind::ModeSwitch { to, syscall } => (
                match to {
                    Mode::Kernel => "enter",
                    Mode::User => "return",
                },
                syscall.as_str(),
                "",
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ),
            StepKind::Copy {
                engine,
                from,
                to,
                bytes,
            } => (
                "copy",
                "",
                match engine {
                    Engine::Cpu => "cpu",
                    Engine::Dma => "dma",
                },
                from.label().to_string(),
                to.label().to_string(),
                bytes.to_string(),
                String::new(),
                String::new(),
            ),
            StepKind::PageRef {
                from,
                to,
                bytes,
                pinned,
            } => (
                if *pinned { "pin" } else { "page-ref" },
                "",
                "",
                from.label().to_string(),
                to.label().to_string(),
                bytes.to_string(),
                String::new(),
                String::new(),
            ),
            StepKind::Lookup {
                hit_pages,
                miss_pages,
            } => (
                "lookup",
                "",
                "",
                String::new(),
                String::new(),
                String::new(),
                hit_pages.to_string(),
                miss_pages.to_string(),
            ),
            StepKind::Handoff { bytes, .. } => (
                "handoff",
                "",
                "",
                String::new(),
                String::new(),
                bytes.to_string(),
                String::new(),
                String::new(),
            ),
        };
        let cells = [
            method.map_or("", Method::name).to_string(),
            (i + 1).to_string(),
            s.ts_ns.to_string(),
            s.pid.to_string(),
            s.tid.to_string(),
            s.transfer.map_or(String::new(), |t| t.0.to_string()),
            kind.to_string(),
            syscall.to_string(),
            engine.to_string(),
            from,
            to,
            bytes,
            hits,
            misses,
            evidence(&s.evidence),
        ];
        let row: Vec<String> = cells.iter().map(|c| field(c)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// `tracer export`: writes the recording's steps to `-o` (a new private file) or
/// standard output.
pub fn run(args: &ExportArgs) -> Result<i32> {
    if let Some(out) = &args.output {
        use std::os::unix::fs::MetadataExt as _;
        if let (Ok(o), Ok(i)) = (std::fs::metadata(out), std::fs::metadata(&args.file))
            && (o.dev(), o.ino()) == (i.dev(), i.ino())
        {
            bail!(
                "-o {} is the recording itself: choose another path",
                out.display()
            );
        }
    }
    let (kernel, steps) = steps(args)?;
    let text = match args.format {
        Format::Chrome => {
            let mut t = serde_json::to_string(&chrome(&kernel, &steps))?;
            t.push('\n');
            t
        }
        Format::Csv => csv(&steps),
    };
    match &args.output {
        Some(path) => {
            let out = output::create(path, args.force)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut lines = output::Lines::file(out, path.display().to_string());
            for line in text.lines() {
                lines.line().extend_from_slice(line.as_bytes());
                lines.end_line(true);
            }
            lines.flush()?;
        }
        None => output::print(&text)?,
    }
    Ok(0)
}
