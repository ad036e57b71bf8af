//! `tracer trace`: stream the decoded kernel events of some processes.

pub mod lost;
pub mod output;
pub mod spawn;
pub mod target;

use std::{ffi::OsString, io, path::Path, time::Duration};

use anyhow::{Context as _, Result};
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    event::{Event, KernelConsts},
    probe::{self, LoadOptions, ProbeError, Probes, Skipped, hooks::Hook},
    source::KernelSource,
};
use output::Lines;
pub use output::OutputError;
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
    pub fn start(opts: &LoadOptions) -> Result<Self, ProbeError> {
        let mut probes = Probes::load(opts)?;
        let ring = probes
            .take_events()
            .map_err(|e| ProbeError::Load(e.to_string()))?;
        let source = KernelSource::new(ring).map_err(|e| ProbeError::Load(e.to_string()))?;
        Ok(Self { probes, source })
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

    /// The processes traced now (see [`Probes::traced`]); none when the map cannot be read.
    pub fn traced_pids(&self) -> Vec<u32> {
        self.probes.traced().unwrap_or_default()
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
    /// Overwrite an existing `output` file (see [`output::create`]).
    pub force: bool,
    pub follow_forks: bool,
    /// `-u USER`: run the command as this user (a name or a uid).
    pub user: Option<String>,
}

/// The resolved target: pids to trace now, and a command to start.
pub(crate) enum Plan {
    Pids(Vec<u32>),
    Command(Vec<OsString>, Option<spawn::RunAs>),
}

/// Resolves `target` before anything is loaded, so that a typo fails early.
pub(crate) fn plan(target: &Target, user: Option<&str>) -> Result<Plan> {
    let proc_root = Path::new("/proc");
    let me = std::process::id();
    Ok(match target {
        Target::Pid(pid) => {
            let tgid = target::tgid_of(proc_root, *pid)?;
            if tgid == me {
                anyhow::bail!("refusing to trace the tracer itself (pid {me})");
            }
            if target::is_kernel_thread(proc_root, tgid) {
                let comm = std::fs::read_to_string(proc_root.join(format!("{tgid}/comm")))
                    .unwrap_or_default();
                crate::say!(
                    "tracer: note: pid {tgid} ({}) is a kernel thread: it makes no syscalls, so \
                     only the kernel-side events it runs (block I/O, transmits) can appear",
                    comm.trim_end()
                );
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
            Plan::Command(argv.clone(), spawn::run_as(user)?)
        }
    })
}

/// tracefs, mounted by this trace: unmounted when dropped, or said to stay mounted.
pub(crate) struct MountedTracefs;

impl Drop for MountedTracefs {
    fn drop(&mut self) {
        let Ok(target) = std::ffi::CString::new(probe::TRACEFS) else {
            return;
        };
        // SAFETY: a NUL-terminated path; no flags.
        if unsafe { libc::umount2(target.as_ptr(), 0) } != 0 {
            crate::say!(
                "tracer: note: tracefs stays mounted at {} ({}): `umount {0}` removes it",
                probe::TRACEFS,
                io::Error::last_os_error()
            );
        }
    }
}

/// The command `trace` started: its pid, and where its exit status arrives.
pub(crate) struct Started {
    pub(crate) pid: u32,
    /// It leads a session and a process group of its own (it dropped privileges, see
    /// [`spawn::spawn_held`]): the terminal's signals do not reach it, the tracer passes
    /// them on.
    pub(crate) own_session: bool,
    exit: tokio::sync::oneshot::Receiver<i32>,
}

impl Started {
    /// Starts `argv` held (as `run_as`), traces it from its exec on, and releases it.
    fn spawn(
        session: &mut Session,
        argv: &[OsString],
        run_as: Option<&spawn::RunAs>,
        quiet: bool,
    ) -> Result<Self> {
        let held = spawn::spawn_held(argv, run_as, quiet)?;
        let own_session = held.new_session;
        session.trace_pid_from_exec(held.pid)?;
        let pid = held.release()?;
        let (tx, exit) = tokio::sync::oneshot::channel();
        // A plain thread: a blocking task would hold up runtime shutdown.
        std::thread::spawn(move || {
            let _ = tx.send(spawn::wait_exit_code(pid));
        });
        Ok(Self {
            pid,
            own_session,
            exit,
        })
    }

    /// Passes `sig` on as the terminal would: to the command's process group when it has
    /// a session of its own, else to the command (the terminal's own signals reach it).
    pub(crate) fn forward(&self, sig: libc::c_int) {
        let target = if self.own_session {
            -(self.pid as i32)
        } else {
            self.pid as i32
        };
        // SAFETY: signalling the command we started, or its process group.
        unsafe { libc::kill(target, sig) };
    }

    /// The session the command's processes are in: its own, or the tracer's.
    fn session_id(&self) -> libc::pid_t {
        if self.own_session {
            self.pid as libc::pid_t
        } else {
            // SAFETY: getsid(0) has no preconditions.
            unsafe { libc::getsid(0) }
        }
    }

    /// Sends `sig` to every process of the trace: the command's process group (when it
    /// has its own), the command, and every process the kernel traces for it (its
    /// children, forked since, which may have left the group). A traced pid is signalled
    /// only while it is in the command's session: on kernels where exited processes stay
    /// in the traced map, a pid reused by another process outside it is left alone.
    /// Returns whether any was there to signal.
    fn signal_all(&self, session: &Session, sig: libc::c_int) -> bool {
        let mut any = false;
        if self.own_session {
            // SAFETY: signalling the command's process group.
            any |= unsafe { libc::kill(-(self.pid as i32), sig) } == 0;
        }
        let sid = self.session_id();
        let me = std::process::id();
        let mut pids = session.traced_pids();
        pids.push(self.pid);
        pids.sort_unstable();
        pids.dedup();
        for pid in pids.into_iter().filter(|p| *p != me) {
            any |= signal_in_session(pid, sid, sig);
        }
        any
    }

    /// Stops the command and every process of the trace: `first` to all of them, then
    /// SIGKILL to those still there after 5 s (a background child that ignores SIGINT, as
    /// a shell's do, is not left running untraced). Says so; returns the command's exit
    /// status.
    pub(crate) async fn stop(&mut self, session: &Session, first: libc::c_int) -> i32 {
        crate::say!(
            "tracer: stopping the command (pid {}) and the processes it started with {}{}",
            self.pid,
            signal_name(first),
            if first == libc::SIGINT {
                ", as Ctrl-C would"
            } else {
                ""
            }
        );
        self.signal_all(session, first);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut status = None;
        loop {
            let tick = tokio::time::sleep(Duration::from_millis(100));
            match status {
                None => tokio::select! {
                    code = &mut self.exit => status = Some(code.unwrap_or(1)),
                    () = tick => {}
                },
                Some(_) => tick.await,
            }
            // Signal 0: whether any process of the trace is left.
            if status.is_some() && !self.signal_all(session, 0) {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                crate::say!(
                    "tracer: the command (pid {}) or its processes did not stop within 5 s of {}: killing them (SIGKILL)",
                    self.pid,
                    signal_name(first)
                );
                self.signal_all(session, libc::SIGKILL);
                break;
            }
        }
        match status {
            Some(code) => code,
            None => (&mut self.exit).await.unwrap_or(128 + libc::SIGKILL),
        }
    }
}

/// Sends `sig` to `pid` if it is in session `sid`, through a pidfd, so that the process
/// checked is the one signalled even if `pid` is reused in between. Returns whether it
/// was sent.
fn signal_in_session(pid: u32, sid: libc::pid_t, sig: libc::c_int) -> bool {
    let pid = pid as libc::pid_t;
    // SAFETY: pidfd_open takes a pid and flags; it returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        // No pidfd (before 5.3): the same check, with the pid itself.
        // SAFETY: getsid and kill take a pid.
        return unsafe { libc::getsid(pid) == sid && libc::kill(pid, sig) == 0 };
    }
    // SAFETY: pidfd_open returned a new descriptor that nothing else owns.
    let pidfd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    // SAFETY: getsid takes a pid. Should the process have exited and its pid been reused
    // since pidfd_open, the signal below fails (ESRCH): it goes to the process the pidfd
    // names, never to the new one.
    if unsafe { libc::getsid(pid) } != sid {
        return false;
    }
    // SAFETY: a pidfd we own; no siginfo; no flags.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            std::os::fd::AsRawFd::as_raw_fd(&pidfd),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        ) == 0
    }
}

/// `SIGINT`, `SIGTERM`, ... for messages.
fn signal_name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        libc::SIGKILL => "SIGKILL",
        _ => "a signal",
    }
}

/// Why the trace ended.
enum End {
    /// This signal (SIGINT, SIGTERM, SIGHUP) ended it.
    Signalled(libc::c_int),
    /// The command we started exited with this status.
    CommandExited(i32),
    ProcessExited,
    RingError,
    /// Writing the events failed.
    Output(OutputError),
}

impl End {
    fn why(&self) -> &'static str {
        match self {
            Self::Signalled(libc::SIGINT) => "interrupted",
            Self::Signalled(_) => "terminated",
            Self::CommandExited(_) => "command exited",
            Self::ProcessExited => "process exited",
            Self::RingError => "ring buffer error",
            Self::Output(OutputError::Closed { .. }) => "output closed",
            Self::Output(OutputError::Write { .. }) => "output failed",
        }
    }
}

/// Runs `tracer trace`; returns the process exit code: the traced command's when it
/// exits by itself, 128 + the signal's number when a signal ends the trace (130 for
/// SIGINT, 143 for SIGTERM, 129 for SIGHUP, as the demo and a shell). A failed write of
/// the events is an error (after the counts are printed and the command is stopped);
/// [`OutputError::Closed`] is one the caller keeps quiet.
pub async fn run(args: TraceArgs) -> Result<i32> {
    let plan = plan(&args.target, args.user.as_deref())?;
    if !probe::has_bpf_privileges() {
        return Err(ProbeError::Permission.into());
    }
    // Before the signal handlers: should opening it ever block, a signal still ends the
    // tracer (it never waits for a FIFO's reader: see output::create).
    let mut out = match &args.output {
        Some(path) => Lines::file(
            output::create(path, args.force)
                .with_context(|| format!("cannot write the events to {}", path.display()))?,
            path.display().to_string(),
        ),
        None => Lines::stdout().context("standard output")?,
    };
    // Before the probes, so that a signal during loading still ends the trace cleanly.
    let mut signals = Signals::new()?;
    // Before the session, so that it is unmounted after the probes are detached.
    let _tracefs = mount_tracefs();
    let mut session = load(&args)?;
    let mut targets = Targets::start(
        &mut session,
        plan,
        &args.target,
        args.user.as_deref(),
        false,
    )?;
    let end = follow(
        &mut session,
        &mut out,
        &mut targets,
        &mut signals,
        args.json,
    )
    .await;
    let (drops, read_failures, malformed) =
        (end.drops, session.read_failures(), session.malformed());
    // The output failed, or a second signal came, while the command runs: it would run on
    // untraced. (Before the probes go: they know its children.)
    let stopped = match (&end.why, targets.command.as_mut()) {
        (End::Output(_), Some(c)) => Some(c.stop(&session, libc::SIGINT).await),
        (End::Signalled(_), Some(c)) => Some(c.stop(&session, libc::SIGTERM).await),
        _ => None,
    };
    drop(session); // detaches and unloads every program
    let mut lost = String::new();
    if read_failures > 0 {
        lost += &format!(", {read_failures} lost to failed kernel reads");
    }
    if malformed > 0 {
        lost += &format!(", {malformed} malformed");
    }
    if let Some(code) = stopped {
        lost += &format!("; the command exited with status {code}");
    }
    crate::say!(
        "tracer: {}: {} events{}, {drops} dropped{lost}",
        end.why.why(),
        out.counted(),
        if matches!(end.why, End::Output(_)) {
            format!(" written to {}", out.name())
        } else {
            String::new()
        }
    );
    if !matches!(end.why, End::Output(_)) {
        out.keep();
    }
    match end.why {
        End::Output(e) => Err(e.into()),
        End::RingError => Ok(1),
        End::CommandExited(code) => Ok(code),
        End::Signalled(sig) => Ok(128 + sig),
        End::ProcessExited => Ok(0),
    }
}

/// SIGINT, SIGTERM and SIGHUP, caught for the whole trace.
pub(crate) struct Signals {
    pub(crate) int: tokio::signal::unix::Signal,
    pub(crate) term: tokio::signal::unix::Signal,
    pub(crate) hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            // A hangup (the terminal closed) ends the trace like SIGTERM: the output is
            // flushed and the counts printed.
            hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        })
    }

    /// Waits for one of them; its number.
    async fn next(&mut self) -> libc::c_int {
        tokio::select! {
            _ = self.int.recv() => libc::SIGINT,
            _ = self.term.recv() => libc::SIGTERM,
            _ = self.hup.recv() => libc::SIGHUP,
        }
    }
}

/// SIGTERM or SIGHUP (the fields of [`Signals`], borrowed apart from its SIGINT).
pub(crate) async fn terminated(
    term: &mut tokio::signal::unix::Signal,
    hup: &mut tokio::signal::unix::Signal,
) {
    tokio::select! {
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}

/// Mounts tracefs if it is not; the guard unmounts it.
pub(crate) fn mount_tracefs() -> Option<MountedTracefs> {
    match probe::ensure_tracefs() {
        Ok(true) => {
            crate::say!("tracer: mounted tracefs at {}", probe::TRACEFS);
            Some(MountedTracefs)
        }
        Ok(false) => None,
        Err(e) => {
            crate::say!(
                "tracer: note: could not mount tracefs at {}: {e}",
                probe::TRACEFS
            );
            None
        }
    }
}

/// Loads the probes and says what is attached and what was skipped.
fn load(args: &TraceArgs) -> Result<Session> {
    let comm = match &args.target {
        Target::Comm(name) => Some(name.clone()),
        _ => None,
    };
    let session = Session::start(&LoadOptions {
        follow_forks: args.follow_forks,
        comm,
    })?;
    crate::say!(
        "tracer: {} probes attached{}",
        session.attached().len(),
        if session.skipped().is_empty() {
            ""
        } else {
            "; skipped:"
        }
    );
    for s in session.skipped() {
        crate::say!("tracer:   {s}");
    }
    Ok(session)
}

/// What is traced: the command we started, or the processes whose end ends the trace.
pub(crate) struct Targets {
    pub(crate) command: Option<Started>,
    /// `--pid`: the trace ends when these are gone.
    pub(crate) watch_pids: Vec<u32>,
}

impl Targets {
    /// Traces the planned pids, or starts the command traced from its exec (`quiet`: with
    /// /dev/null for its standard input and outputs).
    pub(crate) fn start(
        session: &mut Session,
        plan: Plan,
        target: &Target,
        user: Option<&str>,
        quiet: bool,
    ) -> Result<Self> {
        let mut targets = Self {
            command: None,
            watch_pids: Vec::new(),
        };
        match plan {
            Plan::Pids(pids) => {
                for pid in &pids {
                    session.trace_pid(*pid)?;
                }
                match target {
                    Target::Comm(name) if pids.is_empty() => crate::say!(
                        "tracer: no process named \"{name}\" is running: waiting for one to \
                         start (names are the kernel's comm, see `ps -e -o comm`; Ctrl-C ends)"
                    ),
                    _ => crate::say!(
                        "tracer: tracing pid {}",
                        pids.iter()
                            .map(|p| p.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
                if matches!(target, Target::Pid(_)) {
                    targets.watch_pids = pids;
                }
            }
            Plan::Command(argv, run_as) => {
                if let Some(r) = &run_as
                    && user.is_none()
                {
                    crate::say!(
                        "tracer: running the command as {} (uid {}, from SUDO_UID; -u root runs it as root)",
                        r.name,
                        r.uid
                    );
                }
                targets.command = Some(Started::spawn(session, &argv, run_as.as_ref(), quiet)?);
            }
        }
        Ok(targets)
    }
}

/// How the trace ended, and the kernel's drop count then.
struct Ended {
    why: End,
    drops: u64,
}

/// Writes the events until the trace ends, then those still in the ring buffer.
async fn follow(
    session: &mut Session,
    out: &mut Lines,
    targets: &mut Targets,
    signals: &mut Signals,
    json: bool,
) -> Ended {
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    let mut batch = Vec::with_capacity(4096);
    let consts = session.consts().clone();
    let mut drops = lost::DropWatch::new(session.drops());
    // With a command of ours, the first signal goes to it (from the terminal, or passed
    // on by the tracer) and the trace goes on until it exits; a second one ends the trace
    // and stops the command.
    let mut stopping = false;
    let mut end = loop {
        tokio::select! {
            r = session.next_batch(&mut batch) => {
                if let Err(e) = r {
                    crate::say!("tracer: error: reading the event ring buffer: {e}");
                    break End::RingError;
                }
            }
            sig = signals.next() => {
                match &targets.command {
                    Some(c) if !stopping => {
                        stopping = true;
                        first_signal(c, sig);
                    }
                    Some(c) => {
                        crate::say!(
                            "tracer: {} again: the trace ends now, and the command (pid {}) with it",
                            if sig == libc::SIGINT { "interrupted" } else { "terminated" },
                            c.pid
                        );
                        break End::Signalled(sig);
                    }
                    None => break End::Signalled(sig),
                }
            }
            code = exit_of(&mut targets.command) => {
                targets.command = None;
                break End::CommandExited(code);
            }
            _ = poll.tick(), if !targets.watch_pids.is_empty() => {
                if targets.watch_pids.iter().all(|p| !target::alive(Path::new("/proc"), *p)) {
                    break End::ProcessExited;
                }
            }
        }
        let lost = drops.check(session.drops());
        if let Err(e) = write_batch(out, &mut batch, lost, &consts, json) {
            break End::Output(e);
        }
    };
    // Everything the targets did before the end is already in the ring buffer; what a
    // failed output could not take is dropped with it.
    session.drain(&mut batch);
    // One reading for the last gap and the total, so that they agree.
    let total = session.drops();
    let lost = drops.check(total);
    if !matches!(end, End::Output(_))
        && let Err(e) = write_batch(out, &mut batch, lost, &consts, json)
    {
        end = End::Output(e);
    }
    Ended {
        why: end,
        drops: total,
    }
}

/// Passes the first signal of a trace on to its command, as the terminal would have; says
/// so where the command did not get it from the terminal.
fn first_signal(c: &Started, sig: libc::c_int) {
    if c.own_session {
        c.forward(sig);
        if sig == libc::SIGINT {
            crate::say!(
                "tracer: interrupted: passed on to the command (pid {}), which has no terminal of its own; the trace ends when the command exits; interrupt again to stop it and the trace now",
                c.pid
            );
        }
    } else if sig == libc::SIGINT {
        // Ctrl-C at the terminal reached the command too: not sent twice.
        crate::say!(
            "tracer: interrupted: the trace ends when the command (pid {}) exits (Ctrl-C at a terminal interrupts it too); interrupt again to stop it and the trace now",
            c.pid
        );
    } else {
        c.forward(sig);
    }
}

/// The exit status of the command, when there is one (else never).
pub(crate) async fn exit_of(command: &mut Option<Started>) -> i32 {
    match command {
        Some(c) => (&mut c.exit).await.unwrap_or(1),
        None => std::future::pending().await,
    }
}

/// Writes a batch of events (one line each), then the gap the kernel's drop counter
/// showed after it, if any, and flushes them.
fn write_batch(
    out: &mut Lines,
    batch: &mut Vec<Event>,
    lost: Option<lost::Lost>,
    consts: &KernelConsts,
    json: bool,
) -> Result<(), OutputError> {
    for e in batch.drain(..) {
        if json {
            // Writing into a Vec cannot fail, and every value serializes.
            drop(e.write_json(consts, out.line()));
        } else {
            out.line().extend_from_slice(e.to_text(consts).as_bytes());
        }
        out.end_line(true);
    }
    if let Some(l) = lost {
        let line = if json { l.to_json() } else { l.to_text() };
        out.line().extend_from_slice(line.as_bytes());
        // Not an event: the counts line counts events written.
        out.end_line(false);
    }
    out.flush()
}
