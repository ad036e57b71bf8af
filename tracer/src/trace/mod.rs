//! `tracer trace`: stream the decoded kernel events of some processes.

pub mod spawn;
pub mod target;

use std::{
    ffi::OsString,
    io::{self, Write as _},
    path::Path,
    time::Duration,
};

use anyhow::{Context as _, Result};
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    event::{Event, KernelConsts},
    probe::{self, LoadOptions, ProbeError, Probes, Skipped, hooks::Hook},
    source::KernelSource,
};
pub use target::Target;

/// Loaded probes and their event stream: what every live consumer (the `trace` command,
/// the demo, the TUI, tests) starts from.
pub struct Session {
    probes: Probes,
    source: KernelSource,
}

impl Session {
    /// Loads and attaches the probes. Must run inside a tokio runtime (the ring buffer is
    /// registered with its reactor).
    pub fn start(opts: &LoadOptions) -> Result<Session, ProbeError> {
        let mut probes = Probes::load(opts)?;
        let ring = probes
            .take_events()
            .map_err(|e| ProbeError::Load(e.to_string()))?;
        let source = KernelSource::new(ring).map_err(|e| ProbeError::Load(e.to_string()))?;
        Ok(Session { probes, source })
    }

    /// Starts tracing process `tgid` (and, with `follow_forks`, its future children).
    pub fn trace_pid(&mut self, tgid: u32) -> Result<()> {
        self.probes.trace_pid(tgid)
    }

    /// Traces a process from its next exec on (a command started with [`spawn::spawn_held`]).
    pub fn trace_pid_from_exec(&mut self, tgid: u32) -> Result<()> {
        self.probes.trace_pid_from_exec(tgid)
    }

    /// Waits for events, then appends a batch of them to `out`.
    pub async fn next_batch(&mut self, out: &mut Vec<Event>) -> io::Result<()> {
        self.source.next_batch(out).await
    }

    /// Appends every event now buffered, without waiting.
    pub fn drain(&mut self, out: &mut Vec<Event>) {
        self.source.drain(out)
    }

    /// Events lost in the kernel because the ring buffer was full.
    pub fn drops(&self) -> u64 {
        self.probes.drops().map(|d| d.0).unwrap_or(0)
    }

    /// Events abandoned in the kernel because a kernel memory read failed.
    pub fn read_failures(&self) -> u64 {
        self.probes.drops().map(|d| d.1).unwrap_or(0)
    }

    /// Records that did not decode.
    pub fn malformed(&self) -> u64 {
        self.source.malformed
    }

    pub fn consts(&self) -> &KernelConsts {
        &self.probes.consts
    }

    pub fn attached(&self) -> &[&'static Hook] {
        &self.probes.attached
    }

    pub fn skipped(&self) -> &[Skipped] {
        &self.probes.skipped
    }
}

/// Options of `tracer trace`.
#[derive(Clone, Debug)]
pub struct TraceArgs {
    pub target: Target,
    pub json: bool,
    /// Write events here instead of standard output (which a traced command shares).
    pub output: Option<std::path::PathBuf>,
    pub follow_forks: bool,
}

/// The resolved target: pids to trace now, and a command to start.
enum Plan {
    Pids(Vec<u32>),
    Command(Vec<OsString>),
}

fn plan(target: &Target) -> Result<Plan> {
    let proc_root = Path::new("/proc");
    let me = std::process::id();
    Ok(match target {
        Target::Pid(pid) => {
            let tgid = target::tgid_of(proc_root, *pid)?;
            if tgid == me {
                anyhow::bail!("refusing to trace the tracer itself (pid {me})");
            }
            Plan::Pids(vec![tgid])
        }
        Target::Comm(name) => Plan::Pids(target::pids_by_comm(proc_root, name, me)?),
        Target::Command(argv) => {
            let program = argv
                .first()
                .ok_or_else(|| anyhow::anyhow!("no command given after --"))?;
            // Checked now so that a typo fails before any probe is loaded.
            spawn::resolve_program(program)?;
            Plan::Command(argv.clone())
        }
    })
}

/// Runs `tracer trace`; returns the process exit code (the traced command's, when we
/// started one).
pub async fn run(args: TraceArgs) -> Result<i32> {
    // First, so that a signal during loading still ends the trace cleanly.
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    // A hangup (the terminal closed) ends the trace like SIGTERM: the output is flushed and
    // the counts printed.
    let mut sighup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let plan = plan(&args.target)?;
    if !probe::has_bpf_privileges() {
        return Err(ProbeError::Permission.into());
    }
    let sink: Box<dyn io::Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write the events to {}", path.display()))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    match probe::ensure_tracefs() {
        Ok(true) => eprintln!("tracer: mounted tracefs at {}", probe::TRACEFS),
        Ok(false) => {}
        Err(e) => eprintln!(
            "tracer: note: could not mount tracefs at {}: {e}",
            probe::TRACEFS
        ),
    }
    let comm = match &args.target {
        Target::Comm(name) => Some(name.clone()),
        _ => None,
    };
    let mut session = Session::start(&LoadOptions {
        follow_forks: args.follow_forks,
        comm,
    })?;
    eprintln!(
        "tracer: {} probes attached{}",
        session.attached().len(),
        if session.skipped().is_empty() {
            ""
        } else {
            "; skipped:"
        }
    );
    for s in session.skipped() {
        eprintln!("tracer:   {s}");
    }

    // Start the targets.
    let (child_exit_tx, mut child_exit) = tokio::sync::oneshot::channel::<i32>();
    let mut watch_pids = Vec::new();
    let mut child_pid = None;
    match plan {
        Plan::Pids(pids) => {
            for pid in &pids {
                session.trace_pid(*pid)?;
            }
            eprintln!(
                "tracer: tracing pid {}",
                pids.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if matches!(args.target, Target::Pid(_)) {
                watch_pids = pids;
            }
        }
        Plan::Command(argv) => {
            let held = spawn::spawn_held(&argv)?;
            session.trace_pid_from_exec(held.pid)?;
            let pid = held.release()?;
            child_pid = Some(pid);
            // A plain thread: a blocking task would hold up runtime shutdown.
            std::thread::spawn(move || {
                let _ = child_exit_tx.send(spawn::wait_exit_code(pid));
            });
        }
    }

    let mut poll = tokio::time::interval(Duration::from_millis(200));
    let mut out = io::BufWriter::with_capacity(1 << 16, sink);
    let mut batch = Vec::with_capacity(4096);
    let mut count: u64 = 0;
    let mut exit_code = 0;
    let mut output_closed = false;

    // With a command of ours, the first SIGINT/SIGTERM goes to it (the terminal already
    // sent it SIGINT) and the trace goes on until it exits; a second one ends the trace.
    let mut stopping = false;
    let why = loop {
        tokio::select! {
            r = session.next_batch(&mut batch) => {
                if let Err(e) = r {
                    eprintln!("tracer: error: reading the event ring buffer: {e}");
                    exit_code = 1;
                    break "ring buffer error";
                }
            }
            _ = sigint.recv() => {
                if child_pid.is_none() || stopping { break "interrupted" }
                stopping = true;
            }
            _ = async { tokio::select! { _ = sigterm.recv() => {}, _ = sighup.recv() => {} } } => {
                match child_pid {
                    Some(pid) if !stopping => {
                        stopping = true;
                        // SAFETY: signalling the child we started.
                        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
                    }
                    _ => break "terminated",
                }
            }
            code = &mut child_exit, if child_pid.is_some() => {
                exit_code = code.unwrap_or(1);
                break "command exited";
            }
            _ = poll.tick(), if !watch_pids.is_empty() => {
                if watch_pids.iter().all(|p| !target::alive(Path::new("/proc"), *p)) {
                    break "process exited";
                }
            }
        }
        if write_batch(
            &mut out,
            &mut batch,
            &mut count,
            session.consts(),
            args.json,
        )
        .is_err()
        {
            output_closed = true;
            break "output closed";
        }
    };
    // Everything the targets did before the end is already in the ring buffer.
    session.drain(&mut batch);
    if !output_closed {
        let _ = write_batch(
            &mut out,
            &mut batch,
            &mut count,
            session.consts(),
            args.json,
        );
        let _ = out.flush();
    }
    drop(out);
    let drops = session.drops();
    let read_failures = session.read_failures();
    let malformed = session.malformed();
    drop(session); // detaches and unloads every program
    let mut lost = String::new();
    if read_failures > 0 {
        lost += &format!(", {read_failures} lost to failed kernel reads");
    }
    if malformed > 0 {
        lost += &format!(", {malformed} malformed");
    }
    eprintln!("tracer: {why}: {count} events, {drops} dropped{lost}");
    Ok(exit_code)
}

fn write_batch(
    out: &mut impl io::Write,
    batch: &mut Vec<Event>,
    count: &mut u64,
    consts: &KernelConsts,
    json: bool,
) -> io::Result<()> {
    for e in batch.drain(..) {
        if json {
            e.write_json(consts, out)?;
        } else {
            out.write_all(e.to_text(consts).as_bytes())?;
        }
        out.write_all(b"\n")?;
        *count += 1;
    }
    out.flush()
}
