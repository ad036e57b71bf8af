//! The verdict: one line per command (PASS or FAIL, its exit status, time and what its
//! output shows), each command's output under `target/vm/results/`, and an error listing
//! what went wrong.

use std::{fs, path::Path};

use anyhow::{Context as _, Result, bail};

use super::{
    checks,
    commands::{COMMANDS, Check},
    console::{Boot, Console},
};

/// Prints the summary; an error when the VM did not boot, a command is missing or failed.
pub(super) fn report(dir: &Path, boot: &Boot, console: &Console) -> Result<()> {
    let mut problems = Vec::new();
    match (&console.init, console.init_at) {
        (Some((uptime, kernel)), Some(at)) => println!(
            "vm-test: booted kernel {kernel}: /init started {:.1} s after qemu (guest uptime {uptime:.1} s)",
            at.as_secs_f64()
        ),
        _ => problems.push("the VM did not boot (no `=== INIT` marker on the console)".to_string()),
    }
    for note in &console.notes {
        println!("vm-test: note: {note}");
    }
    for fail in &console.fails {
        problems.push(format!("guest setup failed: {fail}"));
    }
    let results = dir.join("results");
    fs::create_dir_all(&results).with_context(|| format!("creating {}", results.display()))?;
    for cmd in COMMANDS {
        let Some(run) = console.runs.iter().find(|r| r.name == cmd.name) else {
            if console.init.is_some() {
                problems.push(format!("{}: no output markers (did not run)", cmd.name));
            }
            continue;
        };
        // Each command's output, to read or diff later.
        fs::write(
            results.join(format!("{}.stdout", cmd.name)),
            format!("{}\n", run.stdout.join("\n")),
        )?;
        fs::write(
            results.join(format!("{}.stderr", cmd.name)),
            format!("{}\n", run.stderr.join("\n")),
        )?;
        let Some(rc) = run.rc else {
            problems.push(format!("{}: started but no END marker", cmd.name));
            println!("vm-test: {}: did not finish", cmd.name);
            continue;
        };
        let secs = run
            .secs()
            .map_or_else(|| "? s".to_string(), |s| format!("{s:.1} s"));
        let timeout_note = if rc == 143 {
            " (killed by its timeout?)"
        } else {
            ""
        };
        let detail = checks::check(&cmd.check, run);
        let verdict = if rc == 0 && detail.is_ok() {
            "PASS"
        } else {
            "FAIL"
        };
        match &detail {
            Ok(d) => println!(
                "vm-test: {verdict} {}: rc={rc}{timeout_note}, {secs}, {d}",
                cmd.name
            ),
            Err(e) => println!(
                "vm-test: {verdict} {}: rc={rc}{timeout_note}, {secs}, {e:#}",
                cmd.name
            ),
        }
        if cmd.check == Check::Trace {
            // The attach report, whole: which tracepoints this kernel lacks, and why.
            for l in run.stderr.iter().filter(|l| l.starts_with("tracer:")) {
                println!("vm-test:   {l}");
            }
        }
        if rc != 0 {
            let last = run.stderr.iter().rfind(|l| !l.trim().is_empty());
            problems.push(format!(
                "{}: exit status {rc}{timeout_note}{}",
                cmd.name,
                last.map(|l| format!(": {}", l.trim())).unwrap_or_default()
            ));
        } else if let Err(e) = detail {
            problems.push(format!("{}: {e:#}", cmd.name));
        }
    }
    if console.init.is_some() && !console.done && !boot.timed_out {
        problems.push("/init did not reach its end (no `=== DONE` marker)".to_string());
    }
    if boot.timed_out {
        problems.push(format!(
            "the VM was killed after {:.0} s without powering off",
            boot.elapsed.as_secs_f64()
        ));
    }
    println!(
        "vm-test: qemu ran {:.1} s{}; console: {}",
        boot.elapsed.as_secs_f64(),
        boot.exit.map(|s| format!(" ({s})")).unwrap_or_default(),
        dir.join("console.log").display()
    );
    if problems.is_empty() {
        println!("vm-test: ok ({} commands)", COMMANDS.len());
        return Ok(());
    }
    if console.init.is_none() {
        // Without /init there is nothing else to go by: show how far the boot got.
        let tail: Vec<&str> = boot
            .lines
            .iter()
            .rev()
            .take(25)
            .map(|(_, l)| l.as_str())
            .collect();
        eprintln!("vm-test: the console's last lines:");
        for l in tail.iter().rev() {
            eprintln!("  {l}");
        }
    }
    bail!("vm-test failed:\n  {}", problems.join("\n  "))
}
