//! What each command's output says, in one line for the report.

use std::fmt::Write as _;

use anyhow::{Context as _, Result, anyhow};

use super::{commands::Report, console::Run};

const LEDGER_FIELDS: &[&str] = &[
    "syscalls",
    "mode_switches",
    "cpu_copies",
    "cpu_copy_bytes",
    "dma_copies",
    "dma_bytes",
    "page_refs",
    "page_ref_bytes",
    "cache_hits",
    "cache_misses",
    "wall_ns",
];

/// The command's output in one line.
pub(super) fn summarize(report: Report, run: &Run) -> Result<String> {
    match report {
        Report::FirstLine => Ok(run
            .stdout
            .iter()
            .find(|l| !l.trim().is_empty())
            .map_or("(no output)".to_string(), |l| l.trim().to_string())),
        Report::Trace => {
            let attached = run
                .stderr
                .iter()
                .find_map(|l| l.strip_prefix("tracer: ")?.split(" attached").next())
                .filter(|a| a.ends_with("probes") || a.ends_with("tracepoints"))
                .unwrap_or("no attach report");
            // Skips are listed one per line, indented, after the attach line.
            let skipped = run
                .stderr
                .iter()
                .filter(|l| l.starts_with("tracer:   "))
                .count();
            let events = run
                .stderr
                .iter()
                .rev()
                .find(|l| l.contains(" events, "))
                .map_or("no event count", |l| l.trim_start_matches("tracer: "));
            Ok(format!("{attached} attached, {skipped} skipped; {events}"))
        }
        Report::DemoJson => {
            // Kernel messages ("[   12.345678] ...") can land between the JSON lines.
            let json: String = run
                .stdout
                .iter()
                .filter(|l| !is_printk(l))
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            let v: serde_json::Value =
                serde_json::from_str(&json).context("stdout is not the demo's JSON")?;
            let ledger = |l: &serde_json::Value| -> String {
                LEDGER_FIELDS
                    .iter()
                    .map(|f| {
                        let value = l.get(*f).map_or("-".to_string(), |v| v.to_string());
                        format!("{f}={value}")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let sender = v
                .pointer("/sender/observed")
                .ok_or_else(|| anyhow!("the demo's JSON has no sender.observed"))?;
            let mut s = format!("sender ledger: {}", ledger(sender));
            if let Some(r) = v.pointer("/receiver/observed").filter(|r| !r.is_null()) {
                // The receiver's path is the same for every method: its copy is enough.
                write!(
                    s,
                    "; receiver: cpu_copy_bytes={}",
                    r.get("cpu_copy_bytes")
                        .map_or("-".to_string(), |v| v.to_string())
                )?;
            }
            if let Some(d) = v.get("differences").and_then(|d| d.as_array()) {
                let unexplained = d
                    .iter()
                    .filter(|d| d.get("explained") == Some(&serde_json::Value::Bool(false)))
                    .count();
                write!(s, "; {} differences ({unexplained} not explained)", d.len())?;
            }
            if let Some(drops) = v.get("drops").filter(|d| !d.is_null()) {
                write!(s, "; drops={drops}")?;
            }
            Ok(s)
        }
    }
}

fn is_printk(line: &str) -> bool {
    let l = line.trim_start();
    l.starts_with('[')
        && l[1..]
            .trim_start()
            .split(']')
            .next()
            .is_some_and(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_json_summary_skips_kernel_messages() {
        let run = Run {
            name: "rw".into(),
            stdout: vec![
                "{".into(),
                "[   12.5] random: crng init done".into(),
                r#""sender": {"observed": {"syscalls": 256, "cpu_copy_bytes": 16}},"#.into(),
                r#""receiver": {"observed": null}, "differences": [{"explained": false}]"#.into(),
                "}".into(),
            ],
            ..Run::default()
        };
        let s = summarize(Report::DemoJson, &run).unwrap();
        assert!(
            s.starts_with("sender ledger: syscalls=256, mode_switches=-"),
            "{s}"
        );
        assert!(s.contains("cpu_copy_bytes=16"), "{s}");
        assert!(s.ends_with("1 differences (1 not explained)"), "{s}");
    }

    #[test]
    fn trace_summary_counts_skips() {
        let run = Run {
            name: "t".into(),
            stderr: vec![
                "tracer: 12 probes attached; skipped:".into(),
                "tracer:   tcp_sendmsg_locked: tracepoint tcp_sendmsg_locked is not in this kernel"
                    .into(),
                "tracer: command exited: 33 events, 0 dropped".into(),
            ],
            ..Run::default()
        };
        assert_eq!(
            summarize(Report::Trace, &run).unwrap(),
            "12 probes attached, 1 skipped; command exited: 33 events, 0 dropped"
        );
    }
}
