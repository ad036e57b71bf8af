//! `tracer demo`: run a built-in transfer traced, turn its events into steps and ledgers,
//! and compare them with the textbook.
//!
//! The workload runs in this process (sender on a thread of its own, receiver on another),
//! traced by tgid. Each method gets a fresh [`Model`](crate::model::Model); the events of
//! one run are drained before the next starts. The tracer's own threads make no data-path
//! syscalls while a transfer runs (they wait on the ring buffer), so the model sees only
//! the transfer.
//!
//! `args` is what the command is asked, `lab` runs the methods, `window` says which
//! events are a run's, `result` compares a run with the textbook, `report` prints it,
//! `expect` checks `--expect`, and `record` writes `--record`.

mod args;
mod expect;
mod lab;
mod record;
mod report;
mod result;
mod signals;
mod window;

use anyhow::Result;

pub use args::{DEFAULT_SIZE, DemoArgs, check_input, parse_chunk, parse_link, parse_size};
pub use expect::{Expect, Op, parse_expect};
pub use lab::Lab;
pub(crate) use record::open_recording;
pub use record::{RecordLine, Recorder};
pub(crate) use report::{difference_lines, label, plural, render};
pub use report::{report_text, table};
pub use result::{
    ColdResult, MethodResult, NotRun, Outcome, ReceiverResult, SenderResult, conditions_of, pick,
    summarize,
};
pub use signals::Signals;
pub use window::Counts;

use self::signals::Interrupted;
use crate::{model::human_bytes, recording::RunInfo, trace::output, workload::WorkloadError};

/// Runs the demo; returns the exit code (1 when an `--expect` comparison failed).
pub async fn run(args: DemoArgs) -> Result<i32> {
    check_input(&args)?;
    // Before making a possibly large input file for nothing.
    if !crate::probe::has_bpf_privileges() {
        return Err(crate::probe::loader::ProbeError::DemoPermission.into());
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
    // First, so that Ctrl-C or SIGTERM at any point still frees a made input and detaches
    // the probes (by unwinding through their destructors).
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
    let room = crate::workload::scratch::room_for(&args.methods, size);
    let mut lab = match Lab::prepare(
        args.file.clone(),
        size,
        room,
        args.chunk,
        args.link,
        Some(&mut signals),
    )
    .await?
    {
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
        lab.record(&path, file, RunInfo::demo(&args));
    }
    let (outcomes, failed_runs) = match run_methods(&mut lab, &args, &mut signals).await? {
        Ok(ran) => ran,
        Err(code) => return Ok(code),
    };
    // A recording that failed is reported after the report, which stands on its own.
    let recorded = lab.finish_recording();
    output::print(&render(&outcomes, args.json, args.all)?)?;
    let mut failed = expect::check(&args.expect, &outcomes);
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

/// Runs every method asked for: their outcomes and how many runs failed, or `Err(code)`
/// when a signal ended the demo. With `--method all`, a method that fails becomes a row
/// saying why; otherwise its error ends the demo.
async fn run_methods(
    lab: &mut Lab,
    args: &DemoArgs,
    signals: &mut Signals,
) -> Result<Result<(Vec<Outcome>, u64), i32>> {
    let mut outcomes = Vec::new();
    let mut failed_runs = 0;
    for &method in &args.methods {
        match lab
            .run_method(method, args.cold, Some(&mut *signals), &mut |_, _, _| {})
            .await
        {
            Ok(result) => outcomes.push(Outcome::Ran(Box::new(result))),
            Err(e) if e.is::<Interrupted>() => {
                return Ok(Err(e.downcast::<Interrupted>().map_or(130, |i| i.0)));
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
                let not_run = NotRun {
                    method,
                    not_run,
                    unsupported,
                };
                lab.record_not_run(&not_run);
                outcomes.push(Outcome::NotRun(not_run));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Ok((outcomes, failed_runs)))
}
