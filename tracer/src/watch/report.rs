//! What `watch --headless` prints: every transfer's ledger beside its method's textbook,
//! as text or as one JSON object.

use std::fmt::Write as _;

use serde::Serialize;

use super::board::TransferReport;
use crate::{
    demo::{difference_lines, label},
    model::{Ledger, fmt_field, human_bytes},
    ui::escape::escape,
};

/// One report of the watch: every transfer so far, and what was lost.
#[derive(Clone, Debug, Serialize)]
pub struct WatchReport {
    pub transfers: Vec<TransferReport>,
    /// Events the kernel dropped (ring buffer full): the ledgers undercount when not 0.
    pub drops: u64,
    /// TCP retransmits of the watched processes' sockets (`tcp_retransmit_skb`), and their
    /// payload bytes: the transfers' transmitted bytes count each byte once.
    pub retransmits: u64,
    pub retransmitted_bytes: u64,
    /// TCP segments the kernel retransmitted in the watched processes' network namespace
    /// while the watch ran (all of its processes: the kernel's `RetransSegs`); `null` when
    /// it could not be read.
    pub namespace_retransmits: Option<u64>,
}

impl WatchReport {
    /// One JSON object on one line.
    pub fn json(&self) -> String {
        // Plain data: serializing it cannot fail.
        let mut line = crate::ui::escape::to_json(self).unwrap_or_default();
        line.push('\n');
        line
    }

    /// The text report; `at`: the time into the watch, for interval reports; `all`: list
    /// the small transfers too (see [`SMALL`]).
    pub fn text(&self, at: Option<f64>, all: bool) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "{}{} transfer{}, {} events dropped",
            at.map_or_else(String::new, |t| format!("after {t:.1} s: ")),
            self.transfers.len(),
            if self.transfers.len() == 1 { "" } else { "s" },
            self.drops
        );
        let _ = write!(
            s,
            ", {} TCP retransmits by the watched processes ({})",
            self.retransmits,
            human_bytes(self.retransmitted_bytes)
        );
        match self.namespace_retransmits {
            Some(r) => {
                let _ = writeln!(s, ", {r} segments in the network namespace");
            }
            None => s.push('\n'),
        }
        let (mut hidden, mut hidden_bytes) = (0, 0);
        for t in &self.transfers {
            if !all && is_small(t) {
                hidden += 1;
                hidden_bytes += t.bytes;
                continue;
            }
            s.push('\n');
            transfer_text(&mut s, t);
        }
        if hidden > 0 {
            let _ = writeln!(
                s,
                "\n{} not listed: under {} each and sending no file ({} in all; --all lists them, the JSON has them)",
                crate::demo::plural(hidden, "small transfer", "small transfers"),
                human_bytes(SMALL),
                human_bytes(hidden_bytes)
            );
        }
        s
    }
}

/// Below this many bytes, a transfer that sends no file is left out of the text report
/// unless `--all`: the dynamic loader's and an interpreter's reads of libraries and
/// modules, a server's requests, a reply without a file.
pub const SMALL: u64 = 64 << 10;

fn is_small(t: &TransferReport) -> bool {
    !t.sends_file && t.bytes < SMALL
}

/// A transfer's heading, lines of facts, its ledger and its differences.
fn transfer_text(s: &mut String, t: &TransferReport) {
    let _ = writeln!(
        s,
        "pid {} ({}): {} -> {}",
        t.pid,
        escape(&t.comm),
        escape(&t.source.name),
        escape(&t.destination.name)
    );
    for n in [&t.source, &t.destination] {
        if let Some(note) = &n.note {
            let _ = writeln!(s, "  ({}: {})", escape(&n.name), escape(note));
        }
    }
    let chunks = if t.chunk == 0 {
        0
    } else {
        t.bytes.div_ceil(t.chunk)
    };
    let _ = writeln!(
        s,
        "  {}: {} in {} of {}, {}/s; per MiB: {} CPU copies, {} DMA copies, {} mode switches",
        match &t.reason {
            Some(why) => format!("other ({why})"),
            None => format!("behaves like {}", t.method),
        },
        human_bytes(t.bytes),
        crate::demo::plural(chunks, "chunk", "chunks"),
        human_bytes(t.chunk),
        human_bytes(t.bytes_per_s),
        t.per_mib.cpu_copies,
        t.per_mib.dma_copies,
        t.per_mib.mode_switches
    );
    for (i, e) in t.evidence.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {} {e}",
            if i == 0 { "evidence:" } else { "         " }
        );
    }
    ledger_text(s, &t.observed, t.textbook.as_ref());
    if t.textbook.is_some() {
        if t.differences.is_empty() {
            let _ = writeln!(s, "  no differences from the textbook");
        } else {
            let _ = writeln!(
                s,
                "  differences from the textbook (observed/textbook: why):"
            );
            for line in difference_lines(&t.differences) {
                let _ = writeln!(s, "  - {line}");
            }
        }
    }
}

fn ledger_text(s: &mut String, observed: &Ledger, textbook: Option<&Ledger>) {
    match textbook {
        Some(_) => {
            let _ = writeln!(
                s,
                "  {:<26} {:>12} {:>12}   (textbook: the article's model, cold cache and a real NIC)",
                "", "observed", "textbook"
            );
        }
        None => {
            let _ = writeln!(s, "  {:<26} {:>12}", "", "observed");
        }
    }
    for f in Ledger::FIELDS {
        let o = observed.get(f).unwrap_or(0);
        let _ = write!(s, "  {:<26} {:>12}", label(f), fmt_field(f, o));
        if let Some(t) = textbook.and_then(|l| l.get(f)) {
            let _ = write!(
                s,
                " {:>12}   {}",
                fmt_field(f, t),
                if o == t { "" } else { "differs" }
            );
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
    }
}
