//! `tracer replay`: a recording read back (no root, no eBPF) through the same model as the
//! run that made it, so the report is the one `demo` printed then.
//!
//! Each method's recorded events are the ones its run fed to its model (the demo records
//! what passed its window), so feeding them to a fresh model in the same order rebuilds
//! the same steps, transfers and ledgers; the `report` and `run` lines give the rest of
//! the result (the workload's report, the eviction, the drops).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};

use crate::{
    demo::{self, Outcome},
    model::{Method, Model, Step},
    recording::{Header, Item, Reader},
    trace::output,
    workload::Report,
};

/// Events fed to the model between two looks of the observer (the TUI's batches).
pub const BATCH: usize = 64;

/// What `tracer replay` is asked.
#[derive(Clone, Debug)]
pub struct ReplayArgs {
    pub file: PathBuf,
    /// A second recording, compared with the first (the TUI only).
    pub compare: Option<PathBuf>,
    /// Only this method's run (a recording of `--method all` has several).
    pub method: Option<Method>,
    pub json: bool,
}

/// A recording read back: its header, and every method's outcome in the order it ran.
pub struct Replayed {
    pub header: Header,
    pub outcomes: Vec<Outcome>,
    /// The demo printed one table (a JSON array): `--method all`.
    pub all: bool,
}

/// One method's run as it is read (`None`: the events of a watch, which has no method).
struct Run {
    method: Option<Method>,
    model: Model,
    report: Option<Report>,
    cold: Option<demo::ColdResult>,
    /// Format 2 says; format 1 has only its `lost` lines.
    drops: Option<u64>,
    lost: u64,
}

/// What an observer of [`replay`] sees after every [`BATCH`] events of a method, and once
/// more at the end of its run: the method (`None` in a recording of `watch`), its model,
/// the new steps, events fed so far and the timestamp of the last one.
pub type Observer<'o> = dyn FnMut(Option<Method>, &Model, &[Step], u64, u64) + 'o;

/// Reads `path` and rebuilds each method's result (`only`: that method's alone). A
/// recording of `watch` has no result; `observe` sees its steps all the same (export).
pub fn replay(path: &Path, only: Option<Method>, observe: &mut Observer<'_>) -> Result<Replayed> {
    let mut reader = Reader::open(path)
        .with_context(|| format!("cannot read the recording {}", path.display()))?;
    let header = reader.header().clone();
    let mut runs: Vec<Run> = Vec::new();
    // Outcomes in the order the runs ended: a run by its index, until it is summarised.
    let mut order: Vec<Result<usize, demo::NotRun>> = Vec::new();
    let mut steps = Vec::new();
    let mut fed = 0u64;
    let wanted = |m: Option<Method>| only.is_none() || m == only;
    loop {
        let item = reader
            .next_item()
            .with_context(|| format!("reading the recording {}", path.display()))?;
        let Some(item) = item else { break };
        match item {
            Item::Event { method, event } if wanted(method) => {
                let run = run_of(&mut runs, method);
                run.model.push(&event, &mut steps);
                fed += 1;
                if fed.is_multiple_of(BATCH as u64) {
                    observe(method, &run.model, &steps, fed, event.ts_ns);
                    steps.clear();
                }
            }
            Item::Lost { method, count, .. } if wanted(method) => {
                run_of(&mut runs, method).lost += count;
            }
            Item::Report(report) if wanted(Some(report.method)) => {
                let i = index_of(&mut runs, Some(report.method));
                let run = &mut runs[i];
                run.model.finish(&mut steps);
                observe(run.method, &run.model, &steps, fed, report.end_ns);
                steps.clear();
                fed = 0;
                run.report = Some(report);
                order.push(Ok(i));
            }
            Item::Run {
                method,
                cold,
                drops,
            } if wanted(Some(method)) => {
                let run = run_of(&mut runs, Some(method));
                run.cold = cold;
                run.drops = Some(drops);
            }
            Item::NotRun(n) if wanted(Some(n.method)) => order.push(Err(n)),
            _ => {}
        }
    }
    // A watch's runs end with the file: their last steps.
    for run in runs.iter_mut().filter(|r| r.report.is_none()) {
        run.model.finish(&mut steps);
        observe(run.method, &run.model, &steps, fed, 0);
        steps.clear();
    }
    let mut outcomes = Vec::new();
    for o in order {
        outcomes.push(match o {
            Ok(i) => {
                let run = &runs[i];
                let Some(report) = &run.report else { continue };
                let result = demo::summarize(
                    report,
                    &run.model,
                    &header.kernel,
                    run.cold.clone(),
                    run.drops.unwrap_or(run.lost),
                    report.chunk as u64,
                )
                .with_context(|| format!("replaying {}", path.display()))?;
                Outcome::Ran(Box::new(result))
            }
            Err(n) => Outcome::NotRun(n),
        });
    }
    if outcomes.is_empty() {
        if runs.iter().any(|r| r.method.is_none()) {
            bail!(
                "{} is a recording of tracer watch: replay shows the demo's recordings (tracer export reads both)",
                path.display()
            );
        }
        return Err(match only {
            Some(m) => anyhow!(
                "{} has no run of {} (it has {})",
                path.display(),
                m.name(),
                methods_of(path)
            ),
            None => anyhow!("{} has no finished run", path.display()),
        });
    }
    let all = match (&header.run, only) {
        (_, Some(_)) => false,
        (Some(run), None) => run.all,
        (None, None) => outcomes.len() > 1,
    };
    Ok(Replayed {
        header,
        outcomes,
        all,
    })
}

/// The methods a recording has runs of, for an error message.
fn methods_of(path: &Path) -> String {
    let mut names: Vec<&str> = Vec::new();
    if let Ok(mut r) = Reader::open(path) {
        while let Ok(Some(item)) = r.next_item() {
            if let Item::Report(rep) = item {
                names.push(rep.method.name());
            }
        }
    }
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn index_of(runs: &mut Vec<Run>, method: Option<Method>) -> usize {
    match runs.iter().position(|r| r.method == method) {
        Some(i) => i,
        None => {
            runs.push(Run {
                method,
                model: Model::new(),
                report: None,
                cold: None,
                drops: None,
                lost: 0,
            });
            runs.len() - 1
        }
    }
}

fn run_of(runs: &mut Vec<Run>, method: Option<Method>) -> &mut Run {
    let i = index_of(runs, method);
    &mut runs[i]
}

/// `tracer replay --headless`: prints what `demo` printed (its JSON with `--json`).
pub fn run(args: &ReplayArgs) -> Result<i32> {
    let replayed = replay(&args.file, args.method, &mut |_, _, _, _, _| {})?;
    output::print(&demo::render(&replayed.outcomes, args.json, replayed.all)?)?;
    Ok(0)
}
