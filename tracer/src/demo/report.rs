//! The demo's reports: one method's text, the `--method all` table, and the JSON form.

use std::fmt::Write as _;

use anyhow::Result;

use super::{MethodResult, Outcome};
use crate::model::{Ledger, Method, compare::Difference, fmt_field, human_bytes, textbook::Link};

/// What `tracer demo` prints on stdout: the JSON of the outcomes (`json`), else the table
/// (`all`) or the one method's report.
pub(crate) fn render(outcomes: &[Outcome], json: bool, all: bool) -> Result<String> {
    let mut out = String::new();
    if json {
        let text = if all {
            crate::ui::escape::to_json_pretty(outcomes)?
        } else {
            match outcomes.first() {
                Some(o) => crate::ui::escape::to_json_pretty(o)?,
                None => "null".into(),
            }
        };
        out.push_str(&text);
        out.push('\n');
    } else if all {
        out.push_str(&table(outcomes));
    } else if let Some(Outcome::Ran(r)) = outcomes.first() {
        out.push_str(&report_text(r));
    }
    Ok(out)
}

/// How the reports name a ledger field.
pub(crate) fn label(field: &str) -> &'static str {
    match field {
        "mode_switches" => "mode switches",
        "syscalls" => "syscalls",
        "cpu_copies" => "CPU copies",
        "cpu_copy_bytes" => "CPU-copied bytes",
        "dma_copies" => "DMA copies",
        "dma_bytes" => "DMA bytes",
        "page_refs" => "page references",
        "page_ref_bytes" => "referenced bytes",
        "cache_hits" => "page-cache hits (pages)",
        "cache_misses" => "page-cache misses (pages)",
        _ => "?",
    }
}

/// What the run's conditions were, as the probes saw them.
fn conditions_text(r: &MethodResult) -> String {
    let o = &r.sender.observed;
    let pages = o.cache_hits + o.cache_misses;
    let cache = match (o.cache_hits, o.cache_misses) {
        (0, 0) => "no page-cache lookups seen (tmpfs?)".to_string(),
        (_, 0) => "page cache warm (every page cached)".to_string(),
        (0, m) => format!("page cache cold (all {m} pages read from disk)"),
        (_, m) => format!("page cache partly warm ({m} of {pages} pages read from disk)"),
    };
    if r.method == Method::CopyFileRange {
        return cache;
    }
    let f = &r.sender.facts;
    let link = match r.sender.conditions.link {
        Link::Loopback if f.peer_xmits > 0 && f.linear_xmits > 0 => "a veth without scatter-gather",
        Link::Loopback if f.peer_xmits > 0 => "a veth",
        Link::Loopback => "loopback",
        Link::Nic => "a NIC",
    };
    format!("{cache}, {link}")
}

pub(crate) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The headless report of one method.
pub fn report_text(r: &MethodResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} in {} of {}, kernel {}, {}",
        r.method.name(),
        human_bytes(r.bytes),
        plural(r.bytes.div_ceil(r.chunk), "chunk", "chunks"),
        human_bytes(r.chunk),
        crate::ui::escape::escape(&r.kernel),
        conditions_text(r)
    );
    let _ = writeln!(s, "  {}", r.method.describe());
    if let Some(c) = &r.cold {
        if c.evicted {
            let _ = writeln!(
                s,
                "  --cold: all {} pages evicted from the page cache before the run",
                c.pages
            );
        } else {
            let _ = writeln!(
                s,
                "  --cold: eviction did not take: {} of {} pages stayed cached",
                c.resident_after, c.pages
            );
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "  {:<26} {:>12} {:>12}   (textbook: the article's model, cold cache and a real NIC)",
        "sender", "observed", "textbook"
    );
    for f in Ledger::FIELDS {
        let o = r.sender.observed.get(f).unwrap_or(0);
        let t = r.sender.textbook.get(f).unwrap_or(0);
        let _ = writeln!(
            s,
            "  {:<26} {:>12} {:>12}   {}",
            label(f),
            fmt_field(f, o),
            fmt_field(f, t),
            if o == t { "" } else { "differs" }
        );
    }
    let _ = writeln!(
        s,
        "  {:<26} {:>12} {:>12}",
        "wall time",
        r.sender.observed.wall_ns.map_or_else(|| "-".into(), fmt_ns),
        "-"
    );
    if let Some(rx) = &r.receiver.observed {
        let _ = writeln!(
            s,
            "\n  receiver (its own ledger; the {} peer): {} mode switches, {} syscalls, {} CPU copies ({})",
            if r.sender.facts.peer_xmits > 0 {
                "veth"
            } else {
                "loopback"
            },
            rx.mode_switches,
            rx.syscalls,
            rx.cpu_copies,
            human_bytes(rx.cpu_copy_bytes)
        );
    }
    let f = &r.sender.facts;
    if f.retransmits > 0 {
        let _ = writeln!(
            s,
            "  TCP retransmitted {} ({}): not counted in the ledger (the bytes had gone once)",
            human_bytes(f.retransmitted_bytes),
            plural(f.retransmits, "retransmit", "retransmits")
        );
    }
    if let Some(z) = &r.zerocopy {
        let _ = writeln!(
            s,
            "  zero-copy completions: {} notifications for {} sends, {} flagged as copied by the kernel",
            z.notifications, z.completed, z.copied
        );
    }
    if r.io_uring_send_zc == Some(false) {
        let _ = writeln!(s, "  io_uring: this kernel has no SEND_ZC; SEND was used");
    }
    let _ = writeln!(s);
    if r.differences.is_empty() {
        let _ = writeln!(s, "  no differences from the textbook");
    } else {
        let _ = writeln!(
            s,
            "  differences from the textbook (observed/textbook: why):"
        );
        for line in difference_lines(&r.differences) {
            let _ = writeln!(s, "  - {line}");
        }
    }
    let _ = writeln!(s, "  events dropped: {}", r.drops);
    s
}

/// One line per reason: fields whose reasons read the same share it (the sentence decides,
/// as in the TUI's "why they differ" pane: it leaves the field to the cells).
pub(crate) fn difference_lines(diffs: &[Difference]) -> Vec<String> {
    let mut lines: Vec<(String, String)> = Vec::new();
    for d in diffs {
        let reason = d.reasons.to_string();
        let cell = format!(
            "{} {}/{}",
            label(d.field),
            fmt_field(d.field, d.observed),
            fmt_field(d.field, d.textbook)
        );
        match lines.last_mut() {
            Some((cells, last)) if *last == reason => {
                cells.push_str(", ");
                cells.push_str(&cell);
            }
            _ => lines.push((cell, reason)),
        }
    }
    // A reason may name a network device, whose name is the kernel's.
    lines
        .into_iter()
        .map(|(cells, reason)| format!("{cells}: {}", crate::ui::escape::escape(&reason)))
        .collect()
}

fn fmt_ns(ns: u64) -> String {
    if ns >= 1_000_000_000 {
        format!("{:.2} s", ns as f64 / 1e9)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

/// The table's columns: a ledger field and its heading.
const COLUMNS: [(&str, &str); 7] = [
    ("mode_switches", "switches"),
    ("cpu_copies", "CPU copies"),
    ("cpu_copy_bytes", "CPU bytes"),
    ("dma_copies", "DMA copies"),
    ("dma_bytes", "DMA bytes"),
    ("page_refs", "page refs"),
    ("cache_misses", "cache misses"),
];

/// The `--method all` comparison table, then every difference.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let ran: Vec<&MethodResult> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Ran(r) => Some(r.as_ref()),
            _ => None,
        })
        .collect();
    if let Some(r) = ran.first() {
        let _ = writeln!(
            s,
            "{} in {} chunks, kernel {}, {}",
            human_bytes(r.bytes),
            human_bytes(r.chunk),
            crate::ui::escape::escape(&r.kernel),
            conditions_text(r)
        );
        let _ = writeln!(
            s,
            "cells: observed/textbook (the article's model: read from disk, sent by a NIC); \
             model here: the same model under this run's conditions\n"
        );
    }
    let widths: Vec<usize> = COLUMNS
        .iter()
        .map(|(f, h)| {
            ran.iter()
                .map(|r| cell(r, f).len())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let _ = write!(s, "{:<16}", "method");
    for ((_, h), w) in COLUMNS.iter().zip(&widths) {
        let _ = write!(s, "  {h:>w$}");
    }
    let _ = writeln!(s, "  {:>9}  model here", "wall");
    for o in outcomes {
        match o {
            Outcome::Ran(r) => {
                let _ = write!(s, "{:<16}", r.method.name());
                for ((f, _), w) in COLUMNS.iter().zip(&widths) {
                    let _ = write!(s, "  {:>w$}", cell(r, f));
                }
                let _ = writeln!(
                    s,
                    "  {:>9}  {}",
                    r.sender.observed.wall_ns.map_or_else(|| "-".into(), fmt_ns),
                    verdict(r)
                );
            }
            Outcome::NotRun(u) => {
                let _ = writeln!(
                    s,
                    "{:<16}  {}: {}",
                    u.method.name(),
                    if u.unsupported {
                        "unsupported here"
                    } else {
                        "failed"
                    },
                    u.not_run
                );
            }
        }
    }
    table_notes(&mut s, &ran);
    s
}

/// A cell of the table: observed/textbook of ledger field `f`.
fn cell(r: &MethodResult, f: &str) -> String {
    format!(
        "{}/{}",
        fmt_field(f, r.sender.observed.get(f).unwrap_or(0)),
        fmt_field(f, r.sender.textbook.get(f).unwrap_or(0))
    )
}

/// The "model here" column: how the run compares with the textbook under its own
/// conditions.
fn verdict(r: &MethodResult) -> String {
    let here_diffs: Vec<&Difference> = r
        .differences
        .iter()
        .filter(|d| r.sender.textbook_here.get(d.field) != Some(d.observed))
        .collect();
    let unexplained = here_diffs.iter().filter(|d| !d.explained()).count();
    if here_diffs.is_empty() {
        "matches".to_string()
    } else if unexplained == 0 {
        format!(
            "{} explained",
            plural(here_diffs.len() as u64, "field differs,", "fields differ,")
        )
    } else {
        format!(
            "{} not explained",
            plural(unexplained as u64, "field", "fields")
        )
    }
}

/// What follows the table: evictions that did not take, each method's differences, and
/// the events dropped.
fn table_notes(s: &mut String, ran: &[&MethodResult]) {
    for r in ran {
        if let Some(c) = r.cold.as_ref().filter(|c| !c.evicted) {
            let _ = writeln!(
                s,
                "--cold: eviction did not take for {}: {} of {} pages stayed cached",
                r.method.name(),
                c.resident_after,
                c.pages
            );
        }
    }
    let _ = writeln!(s);
    for r in ran {
        if r.differences.is_empty() {
            let _ = writeln!(s, "{}: matches the textbook", r.method.name());
            continue;
        }
        let _ = writeln!(s, "{}:", r.method.name());
        for line in difference_lines(&r.differences) {
            let _ = writeln!(s, "  {line}");
        }
    }
    let drops: u64 = ran.iter().map(|r| r.drops).sum();
    let _ = writeln!(s, "\nevents dropped: {drops}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::compare::{Reason, Reasons};

    #[test]
    fn a_device_name_in_a_reason_is_escaped() {
        // A device any root in a network namespace may name: a right-to-left override, a
        // C1 control and a newline that would forge a line of the report.
        let diffs = [Difference {
            field: "dma_copies",
            observed: 40,
            textbook: 32,
            reasons: Reasons(vec![Reason::NicTransmits {
                xmits: 40,
                devices: vec!["e\u{202e}0ht\u{9b}\n- fake".into()],
            }]),
        }];
        let lines = difference_lines(&diffs);
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].contains(r"e\xe2\x80\xae0ht\xc2\x9b\n- fake"),
            "{lines:?}"
        );
    }
}
