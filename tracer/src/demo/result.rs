//! The result of a run: the sender's and receiver's transfers picked from the model, their
//! ledgers beside the textbook's, the run's conditions and the differences explained.

use anyhow::{Result, anyhow};
use serde::Serialize;

use crate::{
    model::{
        Ledger, Method, Model, Transfer, classify,
        compare::{self, Difference},
        steps::{Endpoint, Facts},
        textbook::{self, Conditions},
    },
    workload::{self, Report},
};

/// The sender's side of a run.
#[derive(Clone, Debug, Serialize)]
pub struct SenderResult {
    pub observed: Ledger,
    /// The article's model: cold cache, a real NIC.
    pub textbook: Ledger,
    /// The same model under this run's conditions.
    pub textbook_here: Ledger,
    pub conditions: Conditions,
    pub facts: Facts,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReceiverResult {
    pub observed: Option<Ledger>,
    /// How the receiver's steps were known (observed by which probe, or inferred), with
    /// their counts.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub evidence: std::collections::BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ColdResult {
    pub pages: u64,
    pub resident_before: u64,
    pub resident_after: u64,
    /// False when pages stayed cached: the run is then partly warm.
    pub evicted: bool,
}

/// The result of one method's run.
#[derive(Clone, Debug, Serialize)]
pub struct MethodResult {
    pub method: Method,
    pub bytes: u64,
    pub chunk: u64,
    pub kernel: String,
    pub cold: Option<ColdResult>,
    pub sender: SenderResult,
    pub receiver: ReceiverResult,
    pub differences: Vec<Difference>,
    pub drops: u64,
    pub zerocopy: Option<workload::ZeroCopyReport>,
    pub io_uring_send_zc: Option<bool>,
}

/// A method that did not run: this kernel refused it, or its run failed.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct NotRun {
    pub method: Method,
    /// Why: the kernel refused the method, or the run failed.
    pub not_run: String,
    /// True when the kernel refused it (the method is unsupported here).
    pub unsupported: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    Ran(Box<MethodResult>),
    NotRun(NotRun),
}

/// The sender and receiver transfers of a run, found by the report's inodes.
pub fn pick<'m>(model: &'m Model, report: &Report) -> (Option<&'m Transfer>, Option<&'m Transfer>) {
    let dst = if report.method == Method::CopyFileRange {
        Endpoint::File {
            ino: report.dst_ino,
        }
    } else {
        Endpoint::Socket {
            ino: report.dst_ino,
        }
    };
    let src = Endpoint::File {
        ino: report.src_ino,
    };
    let sender = model.sender(Some((src, dst)));
    let receiver = report
        .receiver_ino
        .and_then(|ino| model.receiver(Some(ino)));
    (sender, receiver)
}

/// Builds the comparison of one run.
pub fn summarize(
    report: &Report,
    model: &Model,
    kernel: &str,
    cold: Option<ColdResult>,
    drops: u64,
    chunk: u64,
) -> Result<MethodResult> {
    let (sender, receiver) = pick(model, report);
    let sender = sender.ok_or_else(|| {
        anyhow!(
            "no {} transfer was seen in the kernel events (were the syscall probes attached?)",
            report.method.name()
        )
    })?;
    let mut observed = sender.ledger.clone();
    observed.wall_ns = Some(report.wall_ns);
    let conditions = conditions_of(&sender.ledger, &sender.facts, report);
    let article = textbook::ledger(report.method, report.bytes, chunk, &Conditions::ARTICLE);
    let here = textbook::ledger(report.method, report.bytes, chunk, &conditions);
    let differences = compare::differences(&compare::Run {
        method: report.method,
        chunks: report.bytes.div_ceil(chunk),
        observed: &observed,
        facts: &sender.facts,
        article: &article,
        here: &here,
        here_conditions: conditions,
    });
    Ok(MethodResult {
        method: report.method,
        bytes: report.bytes,
        chunk,
        kernel: kernel.to_string(),
        cold,
        sender: SenderResult {
            observed,
            textbook: article,
            textbook_here: here,
            conditions,
            facts: sender.facts.clone(),
        },
        receiver: ReceiverResult {
            observed: receiver.map(|r| r.ledger.clone()),
            evidence: receiver
                .map(|r| r.facts.evidence.clone())
                .unwrap_or_default(),
        },
        differences,
        drops,
        zerocopy: report.zerocopy.clone(),
        io_uring_send_zc: report.io_uring_send_zc,
    })
}

/// The conditions the run had, from what the probes saw (see [`classify::conditions`]).
pub fn conditions_of(l: &Ledger, f: &Facts, report: &Report) -> Conditions {
    classify::conditions(l, f, report.io_uring_send_zc.unwrap_or(true))
}
