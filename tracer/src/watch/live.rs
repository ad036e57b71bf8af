//! The live side of `watch`: the probes and the watched processes feeding a [`Board`],
//! the names read from /proc as transfers appear, the recording; and the headless loop
//! that prints the ledgers at the end and every interval.

use std::{
    collections::HashSet,
    io,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Result;

use super::{Board, WatchArgs, WatchReport, expect, names::Resolver};
use crate::{
    demo::{Recorder, open_recording},
    event::{Event, FileKind, Payload},
    model::steps::Endpoint,
    probe::{self, LoadOptions, ProbeError, hooks::Tier},
    trace::{
        self, OutputError, Plan, Session, Target, Targets,
        lost::{DropWatch, monotonic_ns},
        output,
    },
    ui::app::Probes,
};

/// How the probes are loaded for `watch`: the one place its event source is chosen.
///
/// Today every event of the watched processes streams to user space and the model counts
/// them all; the kernel's exact counters with details for the first calls only ("summary
/// mode") are switched on here once the loader has them.
pub fn load_options(target: &Target) -> LoadOptions {
    LoadOptions {
        // A server's workers are its children: their transfers are its transfers.
        follow_forks: true,
        comm: match target {
            Target::Comm(name) => Some(name.clone()),
            _ => None,
        },
    }
}

/// The probes, and the board their events feed.
pub struct Live {
    session: Session,
    pub board: Board,
    resolver: Resolver,
    /// Ends looked up on arrival already (each once: a /proc scan per batch is enough).
    tried: HashSet<(u32, Endpoint)>,
    recorder: Option<Recorder>,
    lost: DropWatch,
    drops_before: u64,
    retransmits_before: Option<u64>,
    batch: Vec<Event>,
    started: Instant,
    pub kernel: String,
}

impl Live {
    /// Loads the probes and starts the targets: traces the planned pids, or starts the
    /// command (`quiet`: with /dev/null for its standard files). `recording`: the
    /// `--record` file, opened already.
    pub(crate) fn start(
        args: &WatchArgs,
        plan: Plan,
        recording: Option<(PathBuf, output::Output)>,
        quiet: bool,
    ) -> Result<(Self, Targets)> {
        let mut session = Session::start(&load_options(&args.target))?;
        say_attached(&session);
        let kernel = probe::kernel_release();
        let recorder =
            recording.map(|(path, file)| Recorder::create(&path, file, &session, &kernel));
        let drops_before = session.drops();
        let targets = Targets::start(
            &mut session,
            plan,
            &args.target,
            args.user.as_deref(),
            quiet,
        )?;
        Ok((
            Self {
                lost: DropWatch::new(drops_before),
                drops_before,
                retransmits_before: retransmits(),
                session,
                board: Board::new(),
                resolver: Resolver::new(Path::new("/proc")),
                tried: HashSet::new(),
                recorder,
                batch: Vec::with_capacity(4096),
                started: Instant::now(),
                kernel,
            },
            targets,
        ))
    }

    /// Waits for events, then takes a batch of them.
    pub async fn next_batch(&mut self) -> io::Result<()> {
        self.session.next_batch(&mut self.batch).await?;
        self.take();
        Ok(())
    }

    /// Takes what is still in the ring buffer (the watched processes' last events are
    /// there once they are gone), then what the model still held.
    pub fn finish(&mut self) {
        self.session.drain(&mut self.batch);
        self.take();
        self.board.finish();
        self.name_new_transfers();
    }

    fn take(&mut self) {
        let lost = self.lost.check(self.session.drops());
        self.name_on_arrival();
        for ev in self.batch.drain(..) {
            if let Some(r) = self.recorder.as_mut() {
                r.event(None, &ev);
            }
            self.board.push(&ev);
        }
        if let Some(r) = self.recorder.as_mut() {
            if let Some(l) = lost {
                r.lost(None, l);
            }
            r.flush();
        }
        self.name_new_transfers();
    }

    /// Names the files and sockets the batch's syscalls name, once each, as soon as the
    /// batch arrives: a server opens a file, sends it and closes it (and the connection)
    /// within milliseconds, often before the transfer's first syscall has returned to the
    /// model. A name that does not resolve now is tried again when its transfer appears
    /// (it may have been mapped).
    fn name_on_arrival(&mut self) {
        let mut wanted: Vec<(u32, Vec<Endpoint>)> = Vec::new();
        for ev in &self.batch {
            let Payload::SyscallEnter { fds, .. } = &ev.payload else {
                continue;
            };
            for fd in fds {
                let end = match fd.kind() {
                    FileKind::Regular => Endpoint::File { ino: fd.ino },
                    FileKind::Socket => Endpoint::Socket { ino: fd.ino },
                    _ => continue,
                };
                if fd.ino == 0
                    || self.board.is_named(ev.pid, end)
                    || !self.tried.insert((ev.pid, end))
                {
                    continue;
                }
                match wanted.iter_mut().find(|(p, _)| *p == ev.pid) {
                    Some((_, ends)) if ends.contains(&end) => {}
                    Some((_, ends)) => ends.push(end),
                    None => wanted.push((ev.pid, vec![end])),
                }
            }
        }
        for (pid, ends) in wanted {
            let names = self.resolver.resolve(pid, &ends);
            for (end, name) in ends.into_iter().zip(names) {
                if name.note.is_none() {
                    self.board.name(pid, end, name);
                }
            }
        }
    }

    /// Names the ends of new transfers now, while their processes have them open.
    fn name_new_transfers(&mut self) {
        for (pid, ends) in self.board.unnamed() {
            let names = self.resolver.resolve(pid, &ends);
            for (end, name) in ends.into_iter().zip(names) {
                self.board.name(pid, end, name);
            }
        }
    }

    /// Events the kernel dropped since the watch started.
    pub fn drops(&self) -> u64 {
        self.session.drops() - self.drops_before
    }

    pub fn events_per_s(&self) -> u64 {
        (self.board.events() as f64 / self.started.elapsed().as_secs_f64().max(1e-3)) as u64
    }

    /// The probe tier in use, as the status line says it.
    pub fn probes(&self) -> Probes {
        Probes::Tracepoints {
            fexit: self
                .session
                .attached()
                .iter()
                .any(|h| h.tier == Tier::Fentry),
        }
    }

    /// Every transfer so far, what was dropped and retransmitted.
    pub fn report(&self) -> WatchReport {
        let (own, own_bytes) = self.board.retransmits();
        WatchReport {
            transfers: self.board.reports(),
            drops: self.drops(),
            retransmits: own,
            retransmitted_bytes: own_bytes,
            namespace_retransmits: retransmits()
                .zip(self.retransmits_before)
                .map(|(now, before)| now.saturating_sub(before)),
        }
    }

    /// The rows of the TUI's list, their rates as of now; `full`: the transfer on screen,
    /// whose row has its textbook and differences.
    pub fn rows(&mut self, full: Option<crate::model::TransferId>) -> Vec<super::Row> {
        self.board.rows(monotonic_ns(), full)
    }

    /// Stops the command and every process it started ([`trace::Started::stop`]), with
    /// SIGINT first; the probes, still loaded, know its children. Its exit status.
    pub(crate) async fn stop(&self, command: &mut trace::Started) -> i32 {
        command.stop(&self.session, libc::SIGINT).await
    }

    /// Writes the rest of the recording; its first error, if any.
    pub fn finish_recording(&mut self) -> Result<(), OutputError> {
        match self.recorder.as_mut() {
            Some(r) => r.finish(),
            None => Ok(()),
        }
    }
}

/// Says what is attached and what was skipped, as `trace` does.
fn say_attached(session: &Session) {
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
}

/// TCP segments retransmitted so far in this network namespace (`RetransSegs` of
/// /proc/net/snmp).
fn retransmits() -> Option<u64> {
    retrans_segs(&std::fs::read_to_string("/proc/self/net/snmp").ok()?)
}

/// `RetransSegs` from the text of /proc/net/snmp: a `Tcp:` line of names, then one of
/// values.
fn retrans_segs(snmp: &str) -> Option<u64> {
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let at = names.split_whitespace().position(|n| n == "RetransSegs")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// Why the headless watch ended.
enum End {
    Interrupted,
    Terminated,
    CommandExited(i32),
    ProcessExited,
    RingError,
    Output(OutputError),
}

/// `watch --headless`: prints the ledgers every interval (when asked) and at the end;
/// returns the exit status (1 when an expectation failed, else the command's).
pub async fn headless(args: WatchArgs) -> Result<i32> {
    // First, so that a signal during loading still ends the watch cleanly.
    let mut signals = trace::Signals::new()?;
    let plan = trace::plan(&args.target, args.user.as_deref())?;
    if !probe::has_bpf_privileges() {
        return Err(ProbeError::Permission.into());
    }
    let recording = match &args.record {
        Some(p) => Some((p.clone(), open_recording(p, None, args.force)?)),
        None => None,
    };
    // Before the probes, so that it is unmounted after they are detached.
    let _tracefs = trace::mount_tracefs();
    let (mut live, mut targets) = Live::start(&args, plan, recording, false)?;
    let end = follow(&mut live, &mut targets, &mut signals, &args).await;
    if let (End::Output(_), Some(c)) = (&end, targets.command.as_mut()) {
        // The command would run on unwatched.
        live.stop(c).await;
    }
    live.finish();
    let report = live.report();
    let recorded = live.finish_recording();
    drop(live); // detaches and unloads every program
    let end = match end {
        End::Output(e) => return Err(e.into()),
        end => end,
    };
    let text = if args.json {
        report.json()
    } else {
        report.text(None, args.all)
    };
    output::print(&text)?;
    if report.drops > 0 {
        crate::say!(
            "tracer: {} events were dropped (ring buffer full): the observed ledgers undercount",
            report.drops
        );
    }
    let failed = expect::check(&args.expect, &report.transfers);
    recorded?;
    Ok(match end {
        _ if failed => 1,
        End::CommandExited(code) => code,
        End::RingError => 1,
        End::Interrupted | End::Terminated | End::ProcessExited | End::Output(_) => 0,
    })
}

/// Feeds the board until the watch ends, printing a report every interval.
async fn follow(
    live: &mut Live,
    targets: &mut Targets,
    signals: &mut trace::Signals,
    args: &WatchArgs,
) -> End {
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    let period = args.interval.unwrap_or(Duration::MAX);
    let mut every = tokio::time::interval_at(
        tokio::time::Instant::now() + period.min(Duration::from_secs(86_400 * 365)),
        period.min(Duration::from_secs(86_400 * 365)),
    );
    let started = Instant::now();
    // With a command of ours, the first SIGINT/SIGTERM goes to it (the terminal already
    // sent it SIGINT) and the watch goes on until it exits; a second one ends the watch.
    let mut stopping = false;
    loop {
        tokio::select! {
            r = live.next_batch() => {
                if let Err(e) = r {
                    crate::say!("tracer: error: reading the event ring buffer: {e}");
                    return End::RingError;
                }
            }
            _ = signals.int.recv() => match &targets.command {
                Some(c) if !stopping => {
                    stopping = true;
                    // A command in a session of its own did not get the terminal's.
                    if c.own_session {
                        c.forward(libc::SIGINT);
                    }
                    crate::say!(
                        "tracer: interrupted: the watch ends when the command (pid {}) exits (Ctrl-C at a terminal interrupts it too); interrupt again to stop watching now",
                        c.pid
                    );
                }
                Some(c) => {
                    crate::say!("tracer: interrupted again: the command (pid {}) runs on unwatched", c.pid);
                    return End::Interrupted;
                }
                None => return End::Interrupted,
            },
            _ = trace::terminated(&mut signals.term, &mut signals.hup) => match &targets.command {
                Some(c) if !stopping => {
                    stopping = true;
                    c.forward(libc::SIGTERM);
                }
                _ => return End::Terminated,
            },
            code = trace::exit_of(&mut targets.command) => {
                targets.command = None;
                return End::CommandExited(code);
            }
            _ = poll.tick(), if !targets.watch_pids.is_empty() => {
                if targets.watch_pids.iter().all(|p| !trace::target::alive(Path::new("/proc"), *p)) {
                    return End::ProcessExited;
                }
            }
            _ = every.tick(), if args.interval.is_some() => {
                let report = live.report();
                let text = if args.json {
                    report.json()
                } else {
                    let mut t = report.text(Some(started.elapsed().as_secs_f64()), args.all);
                    t.push('\n');
                    t
                };
                if let Err(e) = output::print(&text) {
                    return End::Output(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmits_are_read_from_the_tcp_lines_of_snmp() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                    Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n\
                    Tcp: 1 200 120000 -1 10 5 0 0 2 1000 900 17 0 3 0\n";
        assert_eq!(retrans_segs(snmp), Some(17));
        assert_eq!(retrans_segs("Ip: 1\n"), None);
    }

    #[test]
    fn a_comm_target_is_matched_at_exec_and_children_are_followed() {
        let o = load_options(&Target::Comm("nginx".into()));
        assert!(o.follow_forks);
        assert_eq!(o.comm.as_deref(), Some("nginx"));
        assert_eq!(load_options(&Target::Pid(1)).comm, None);
    }
}
