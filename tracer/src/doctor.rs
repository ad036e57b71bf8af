//! `tracer doctor`: what this kernel lets the tracer see, step by step, and why not more.

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use crate::{
    model::Method,
    probe::{
        caps, has_bpf_privileges, hooks, loader,
        plan::{self, Caps, Planned},
        why::Lack,
    },
    ui::escape::escape,
};

/// `tracer doctor --json`. In `caps`, a `null` reason (`no_btf`, `fentry`, `kprobes`,
/// `ringbuf`) means "available"; a string says why not.
#[derive(Serialize)]
struct Report<'a> {
    kernel: &'a str,
    lockdown: String,
    tracefs: bool,
    caps: &'a Caps,
    plan: Vec<&'a Planned>,
}

fn state(lack: Option<&Lack>) -> String {
    match lack {
        None => "yes".into(),
        Some(lack) if !lack.known() => format!("unknown: {lack}"),
        Some(lack) => format!("no: {lack}"),
    }
}

/// The report as text.
pub fn text(
    caps: &Caps,
    plan: &[Planned],
    method: Option<Method>,
    lockdown: &str,
    tracefs: bool,
) -> String {
    let mut s = String::new();
    // The kernel's and sysfs's strings, escaped as everywhere.
    let _ = writeln!(s, "kernel {}", escape(&caps.kernel));
    let btf = match &caps.no_btf {
        None => "yes".into(),
        Some(why) => format!("no: {why}"),
    };
    let _ = writeln!(s, "  BTF:          {btf}");
    let _ = writeln!(s, "  lockdown:     {}", escape(lockdown));
    let _ = writeln!(
        s,
        "  tracefs:      {}",
        if tracefs {
            "mounted"
        } else {
            "not mounted (the tracer mounts it when it traces)"
        }
    );
    let _ = writeln!(s, "  ring buffer:  {}", state(caps.ringbuf.as_ref()));
    if !caps.program_types.is_empty() {
        let types: Vec<String> = caps
            .program_types
            .iter()
            .map(|(t, answer)| format!("{t} {answer}"))
            .collect();
        let _ = writeln!(
            s,
            "  BPF programs: {} (the kernel loads them; where they attach is below)",
            types.join(", ")
        );
    }
    let tried = |n: usize, refused: usize| {
        if n == 0 {
            String::new()
        } else {
            let s = if n == 1 { "" } else { "s" };
            if refused == 0 {
                format!(" (tried on {n} function{s}: attached on all)")
            } else {
                format!(" (tried on {n} function{s}: refused on {refused})")
            }
        }
    };
    let fentry_on = match (&caps.fentry, &caps.fentry_tried_on) {
        (Some(_), Some(f)) => format!(" (an empty fentry program, tried on {f})"),
        _ => String::new(),
    };
    let _ = writeln!(
        s,
        "  fentry/fexit: {}{}{fentry_on}",
        state(caps.fentry.as_ref()),
        tried(caps.tried.0, caps.fentry_refused.len())
    );
    let _ = writeln!(
        s,
        "  kprobes:      {}{}",
        state(caps.kprobes.as_ref()),
        tried(caps.tried.1, caps.kprobe_refused.len())
    );
    // A renamed tracepoint counts once, under its new name, present under either.
    let wanted: std::collections::BTreeSet<&str> = hooks::step_tracepoints()
        .filter(|tp| !hooks::is_old_name(tp))
        .collect();
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|t| {
            !caps.tracepoints.contains(*t)
                && !hooks::other_name(t).is_some_and(|old| caps.tracepoints.contains(old))
        })
        .collect();
    let _ = writeln!(
        s,
        "  tracepoints:  {} of the {} the steps below can use{}",
        wanted.len() - missing.len(),
        wanted.len(),
        if missing.is_empty() {
            String::new()
        } else {
            format!(" (missing: {})", missing.join(", "))
        }
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{}",
        match method {
            Some(m) => format!(
                "steps of {} and their hooks (best first: fentry, kprobe, tracepoint):",
                m.name()
            ),
            None => "steps and their hooks (best first: fentry, kprobe, tracepoint):".into(),
        }
    );
    for p in plan {
        if let Some(m) = method
            && !p.methods.is_empty()
            && !p.methods.contains(&m)
        {
            continue;
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "{}", p.step);
        match p.hook {
            Some(c) => {
                let _ = writeln!(
                    s,
                    "  uses     {} {} ({})",
                    c.hook.tier.name(),
                    c.hook.target,
                    p.evidence
                );
            }
            None => {
                let _ = writeln!(s, "  uses     nothing ({})", p.evidence);
            }
        }
        for (c, why) in &p.not_used {
            let _ = writeln!(
                s,
                "  not {:<8} {}: {why}",
                c.hook.tier.name(),
                c.hook.target
            );
        }
    }
    s
}

/// The report as `--json` prints it.
pub fn json_text(
    caps: &Caps,
    plan: &[Planned],
    method: Option<Method>,
    lockdown: String,
    tracefs: bool,
) -> Result<String> {
    let report = Report {
        kernel: &caps.kernel,
        lockdown,
        tracefs,
        caps,
        plan: plan
            .iter()
            .filter(|p| method.is_none_or(|m| p.methods.is_empty() || p.methods.contains(&m)))
            .collect(),
    };
    Ok(crate::ui::escape::to_json_pretty(&report)?)
}

/// Measures this kernel and plans: (caps, plan).
fn measure_and_plan() -> (Caps, Vec<Planned>) {
    let (caps, kbtf) = caps::measure(has_bpf_privileges());
    let plan = plan::plan(&caps, &loader::build(kbtf.as_ref()));
    (caps, plan)
}

/// The text report for this kernel, one per method (the TUI's doctor page shows the one
/// of the method on screen). The kernel is measured once.
pub fn report_texts() -> Vec<(Method, String)> {
    let (caps, plan) = measure_and_plan();
    let (lockdown, tracefs) = (caps::lockdown(), caps::tracefs_mounted());
    Method::ALL
        .iter()
        .map(|m| (*m, text(&caps, &plan, Some(*m), &lockdown, tracefs)))
        .collect()
}

/// Runs `tracer doctor`.
pub fn run(json: bool, method: Option<Method>) -> Result<i32> {
    let root = has_bpf_privileges();
    let (caps, plan) = measure_and_plan();
    let lockdown = caps::lockdown();
    let tracefs = caps::tracefs_mounted();
    if json {
        let json = json_text(&caps, &plan, method, lockdown, tracefs)?;
        crate::trace::output::print(&format!("{json}\n"))?;
    } else {
        crate::trace::output::print(&text(&caps, &plan, method, &lockdown, tracefs))?;
        if !root {
            crate::say!("tracer: not root: fentry was not tried (run as root for the full answer)");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::why::{Answer, Refusal, Stage, TrialError};

    #[test]
    fn the_report_names_the_hook_and_every_reason() {
        let caps = Caps {
            kernel: "6.8.0-test".into(),
            fentry: Some(Lack::Refused(TrialError::Refused {
                by: None,
                refusal: Refusal {
                    at: Stage::ProgramLoad,
                    answer: Answer::Errno(libc::EPERM),
                },
            })),
            fentry_tried_on: Some("tcp_sendmsg_locked".into()),
            kprobes: Some(Lack::NotBuiltIn {
                evidence: crate::probe::NO_KPROBE_PMU,
            }),
            tracepoints: [
                "sys_enter",
                "sys_exit",
                "sock_send_length",
                "net_dev_start_xmit",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            ..Caps::default()
        };
        let build = loader::build(None);
        let p = plan::plan(&caps, &build);
        let t = text(&caps, &p, Some(Method::Sendfile), "none", true);
        assert!(
            t.contains("tracepoints:  4 of the 13 the steps below can use (missing: "),
            "{t}"
        );
        assert!(t.contains("copy / reference / pin decision of a TCP send\n  uses     nothing (no hook: inferred from the syscall"), "{t}");
        assert!(t.contains("  not tracepoint tcp_sendmsg_locked: this kernel has no tcp_sendmsg_locked tracepoint (added in 6.16)"), "{t}");
        assert!(
            t.contains(
                "  not fentry   tcp_sendmsg_locked: fentry refused with EPERM at program load"
            ),
            "{t}"
        );
        // Steps of other methods are left out.
        assert!(!t.contains("mmap faults"), "{t}");
        assert!(!t.contains("copy_file_range)"), "{t}");
    }

    #[test]
    fn page_references_and_pins_are_observed_by_the_hook_the_steps_name() {
        // A 6.16+ kernel: the steps say "observed by tcp_sendmsg_locked (...)"; so does
        // the report.
        use crate::model::{Seen, SendDecision};
        let caps = Caps {
            kernel: "6.18.0-test".into(),
            fentry: Some(Lack::Refused(TrialError::Refused {
                by: None,
                refusal: Refusal {
                    at: Stage::ProgramLoad,
                    answer: Answer::Errno(libc::EPERM),
                },
            })),
            kprobes: Some(Lack::NotBuiltIn {
                evidence: crate::probe::NO_KPROBE_PMU,
            }),
            tracepoints: [
                "sys_enter",
                "sys_exit",
                "tcp_sendmsg_locked",
                "net_dev_start_xmit",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            ..Caps::default()
        };
        let p = plan::plan(&caps, &loader::build(None));
        let seen = Seen::TcpSendmsg {
            fexit: false,
            decision: SendDecision::SplicePages,
        };
        assert!(
            seen.to_string().starts_with("tcp_sendmsg_locked "),
            "{seen}"
        );
        for (m, name) in [
            (
                Method::Sendfile,
                "page references into the skb (sendfile, splice)",
            ),
            (
                Method::MsgZerocopy,
                "pinned user pages into the skb (MSG_ZEROCOPY, SEND_ZC)",
            ),
        ] {
            let t = text(&caps, &p, Some(m), "none", true);
            let want = format!("{name}\n  uses     tracepoint tcp_sendmsg_locked (observed)\n");
            assert!(t.contains(&want), "{t}");
        }
    }
}
