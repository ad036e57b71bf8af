//! What each command's output says, in one line for the report, and whether it shows
//! what the command expects: the JSON of `tracer doctor --json` and `tracer demo --json`
//! is parsed, not grepped.

use std::fmt::Write as _;

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::Value;

use super::{
    commands::{Check, Count, Evidence, Inferred, Side, Uses},
    console::Run,
};

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

/// The command's output in one line when it shows what `check` expects; otherwise why not.
pub(super) fn check(check: &Check, run: &Run) -> Result<String> {
    match check {
        Check::FirstLine => Ok(run
            .stdout
            .iter()
            .find(|l| !l.trim().is_empty())
            .map_or_else(|| "(no output)".to_string(), |l| l.trim().to_string())),
        Check::Trace => Ok(trace_summary(run)),
        Check::Doctor(uses) => {
            let v = json_of(run).context("stdout is not the doctor's JSON")?;
            doctor_caps(&v)?;
            for u in *uses {
                doctor_uses(&v, u)?;
            }
            Ok(doctor_summary(&v))
        }
        Check::Demo(evidence) => {
            let v = json_of(run).context("stdout is not the demo's JSON")?;
            let summary = demo_summary(&v)?;
            demo_evidence(&v, evidence)?;
            Ok(summary)
        }
    }
}

/// Stdout as JSON; kernel messages ("[   12.345678] ...") can land between its lines.
fn json_of(run: &Run) -> Result<Value> {
    let json: String = run
        .stdout
        .iter()
        .filter(|l| !is_printk(l))
        .map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    Ok(serde_json::from_str(&json)?)
}

/// `tracer trace`: the attach report and the event count, from stderr.
fn trace_summary(run: &Run) -> String {
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
    format!("{attached} attached, {skipped} skipped; {events}")
}

/// fentry, kprobes and ring buffers are there (a `null` reason), and every function a
/// tier was tried on attached.
fn doctor_caps(v: &Value) -> Result<()> {
    let caps = v.get("caps").ok_or_else(|| anyhow!("no caps"))?;
    for what in ["fentry", "kprobes", "ringbuf"] {
        match caps.get(what) {
            Some(Value::Null) => {}
            Some(why) => bail!("{what}: {why}"),
            None => bail!("caps has no {what}"),
        }
    }
    for (i, (tier, refused)) in [("fentry", "fentry_refused"), ("kprobes", "kprobe_refused")]
        .into_iter()
        .enumerate()
    {
        let tried = caps.pointer(&format!("/tried/{i}")).and_then(Value::as_u64);
        if tried.is_none_or(|n| n == 0) {
            bail!("{tier} was tried on no function ({:?})", caps.get("tried"));
        }
        match caps.get(refused).and_then(Value::as_object) {
            Some(r) if r.is_empty() => {}
            other => bail!("{tier} was refused on some functions: {other:?}"),
        }
    }
    Ok(())
}

/// The plan's step `u.step` uses `u.tier` `u.target`.
fn doctor_uses(v: &Value, u: &Uses) -> Result<()> {
    let step = v
        .get("plan")
        .and_then(Value::as_array)
        .and_then(|plan| plan.iter().find(|p| p["step"] == u.step))
        .ok_or_else(|| anyhow!("the plan has no step {:?}", u.step))?;
    let hook = &step["hook"];
    if hook["tier"] != u.tier || hook["target"] != u.target {
        bail!("{}: uses {hook}, not {} {}", u.step, u.tier, u.target);
    }
    Ok(())
}

/// The tiers' states and how many steps use a hook.
fn doctor_summary(v: &Value) -> String {
    let caps = &v["caps"];
    let state = |what: &str| match &caps[what] {
        Value::Null => "yes".to_string(),
        why => format!("no ({why})"),
    };
    let plan = v["plan"].as_array().map(Vec::as_slice).unwrap_or_default();
    let fentry = plan
        .iter()
        .filter(|p| p["hook"]["tier"] == "fentry")
        .count();
    format!(
        "fentry {} (tried on {}), kprobes {} (tried on {}), ring buffer {}; {fentry} of {} steps use fentry",
        state("fentry"),
        caps["tried"][0],
        state("kprobes"),
        caps["tried"][1],
        state("ringbuf"),
        plan.len()
    )
}

/// `tracer demo --json`: the sender's (and receiver's) observed ledger.
fn demo_summary(v: &Value) -> Result<String> {
    let ledger = |l: &Value| -> String {
        LEDGER_FIELDS
            .iter()
            .map(|f| {
                let value = l.get(*f).map_or_else(|| "-".to_string(), |v| v.to_string());
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
                .map_or_else(|| "-".to_string(), |v| v.to_string())
        )?;
    }
    if let Some(d) = v.get("differences").and_then(|d| d.as_array()) {
        let unexplained = d
            .iter()
            .filter(|d| d.get("explained") == Some(&Value::Bool(false)))
            .count();
        write!(s, "; {} differences ({unexplained} not explained)", d.len())?;
    }
    if let Some(drops) = v.get("drops").filter(|d| !d.is_null()) {
        write!(s, "; drops={drops}")?;
    }
    Ok(s)
}

/// A side's evidence: how many steps of each kind were known how.
fn evidence_of(v: &Value, side: Side) -> Option<&serde_json::Map<String, Value>> {
    match side {
        Side::Sender => v.pointer("/sender/facts/evidence"),
        Side::Receiver => v.pointer("/receiver/evidence"),
    }
    .and_then(Value::as_object)
}

/// The evidence counts `expected` says, and no step inferred where it says none is.
fn demo_evidence(v: &Value, expected: &Evidence) -> Result<()> {
    for seen in expected.seen {
        let n = evidence_of(v, seen.side)
            .and_then(|e| e.get(seen.what))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let ok = match seen.count {
            Count::Exactly(want) => n == want,
            Count::AtLeastOne => n > 0,
        };
        if !ok {
            bail!(
                "{:?} evidence \"{}\": {n}, expected {:?}",
                seen.side,
                seen.what,
                seen.count
            );
        }
    }
    let inferred = |key: &str| {
        key.strip_suffix(": inferred")
            .is_some_and(|what| match expected.inferred {
                Inferred::Allowed => false,
                Inferred::NotOf(path) => what == path,
                Inferred::Nothing => true,
            })
    };
    for side in [Side::Sender, Side::Receiver] {
        if let Some((key, n)) = evidence_of(v, side)
            .into_iter()
            .flatten()
            .find(|(key, _)| inferred(key))
        {
            bail!("{side:?} evidence \"{key}\": {n} inferred, expected none");
        }
    }
    Ok(())
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
    use crate::vm::commands::Seen;

    fn run_of(stdout: &[&str], stderr: &[&str]) -> Run {
        Run {
            name: "t".into(),
            stdout: stdout.iter().map(|l| l.to_string()).collect(),
            stderr: stderr.iter().map(|l| l.to_string()).collect(),
            ..Run::default()
        }
    }

    #[test]
    fn demo_json_summary_skips_kernel_messages() {
        let run = run_of(
            &[
                "{",
                "[   12.5] random: crng init done",
                r#""sender": {"observed": {"syscalls": 256, "cpu_copy_bytes": 16}},"#,
                r#""receiver": {"observed": null}, "differences": [{"explained": false}]"#,
                "}",
            ],
            &[],
        );
        let any = Evidence {
            seen: &[],
            inferred: Inferred::Allowed,
        };
        let s = check(&Check::Demo(any), &run).unwrap();
        assert!(
            s.starts_with("sender ledger: syscalls=256, mode_switches=-"),
            "{s}"
        );
        assert!(s.contains("cpu_copy_bytes=16"), "{s}");
        assert!(s.ends_with("1 differences (1 not explained)"), "{s}");
    }

    #[test]
    fn trace_summary_counts_skips() {
        let run = run_of(
            &[],
            &[
                "tracer: 12 probes attached; skipped:",
                "tracer:   tcp_sendmsg_locked: tracepoint tcp_sendmsg_locked is not in this kernel",
                "tracer: command exited: 33 events, 0 dropped",
            ],
        );
        assert_eq!(
            check(&Check::Trace, &run).unwrap(),
            "12 probes attached, 1 skipped; command exited: 33 events, 0 dropped"
        );
    }

    const DEMO: &str = r#"{"sender": {"observed": {"syscalls": 256},
        "facts": {"evidence": {"page-cache -> user: observed by fexit filemap_read": 128,
                               "user -> socket: inferred": 3}}},
        "receiver": {"observed": null,
                     "evidence": {"socket -> user: observed by fexit skb_copy_datagram_iter": 7}}}"#;

    fn demo(seen: &'static [Seen], inferred: Inferred) -> Result<String> {
        check(
            &Check::Demo(Evidence { seen, inferred }),
            &run_of(&[DEMO], &[]),
        )
    }

    #[test]
    fn demo_evidence_is_counted_per_side() {
        const READ: Seen = Seen {
            side: Side::Sender,
            what: "page-cache -> user: observed by fexit filemap_read",
            count: Count::Exactly(128),
        };
        const RECEIVE: Seen = Seen {
            side: Side::Receiver,
            what: "socket -> user: observed by fexit skb_copy_datagram_iter",
            count: Count::AtLeastOne,
        };
        demo(&[READ, RECEIVE], Inferred::Allowed).unwrap();
        const WRONG_SIDE: Seen = Seen {
            side: Side::Sender,
            ..RECEIVE
        };
        let e = demo(&[WRONG_SIDE], Inferred::Allowed).unwrap_err();
        assert!(e.to_string().contains(": 0, expected AtLeastOne"), "{e}");
        const FEWER: Seen = Seen {
            count: Count::Exactly(129),
            ..READ
        };
        assert!(demo(&[FEWER], Inferred::Allowed).is_err());
    }

    #[test]
    fn inferred_steps_fail_where_none_may_be() {
        demo(&[], Inferred::NotOf("page-cache -> user")).unwrap();
        let e = demo(&[], Inferred::NotOf("user -> socket")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Sender evidence \"user -> socket: inferred\": 3 inferred, expected none"
        );
        assert!(demo(&[], Inferred::Nothing).is_err());
    }

    const DOCTOR: &str = r#"{"caps": {"fentry": null, "kprobes": null, "ringbuf": null,
        "tried": [8, 1], "fentry_refused": {}, "kprobe_refused": {}},
        "plan": [{"step": "CPU copy page cache -> user (read)",
                  "hook": {"tier": "fentry", "target": "filemap_read", "observes": true}}]}"#;

    const READ_BY_FEXIT: &[Uses] = &[Uses {
        step: "CPU copy page cache -> user (read)",
        tier: "fentry",
        target: "filemap_read",
    }];

    #[test]
    fn doctor_json_shows_every_tier_and_the_hooks_used() {
        let s = check(&Check::Doctor(READ_BY_FEXIT), &run_of(&[DOCTOR], &[])).unwrap();
        assert_eq!(
            s,
            "fentry yes (tried on 8), kprobes yes (tried on 1), ring buffer yes; 1 of 1 steps use fentry"
        );
        let refused = DOCTOR.replace(
            r#""fentry_refused": {}"#,
            r#""fentry_refused": {"skb_copy_ubufs": "refused with EBUSY at attach"}"#,
        );
        let e = check(&Check::Doctor(READ_BY_FEXIT), &run_of(&[&refused], &[])).unwrap_err();
        assert!(
            e.to_string().starts_with("fentry was refused on some"),
            "{e}"
        );
        let no_kprobes = DOCTOR.replace(
            r#""kprobes": null"#,
            r#""kprobes": "kprobes are not built into this kernel""#,
        );
        assert!(check(&Check::Doctor(READ_BY_FEXIT), &run_of(&[&no_kprobes], &[])).is_err());
        let tracepoint = DOCTOR.replace(
            r#""tier": "fentry", "target": "filemap_read""#,
            r#""tier": "tracepoint", "target": "sys_exit""#,
        );
        let e = check(&Check::Doctor(READ_BY_FEXIT), &run_of(&[&tracepoint], &[])).unwrap_err();
        assert!(e.to_string().contains("not fentry filemap_read"), "{e}");
    }
}
