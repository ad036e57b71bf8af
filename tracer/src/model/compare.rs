//! Observed ledger vs textbook: every difference with its reason.
//!
//! Two textbook ledgers are involved: the article's (cold cache, a real NIC), which is the
//! column people compare against, and the same model under the run's own conditions (the
//! cache state the probes saw, loopback). A difference the conditions account for gets the
//! condition as its reason ("disk DMA skipped: page cache hit"); what is left is explained
//! from what the probes saw, or reported as not explained by the model.

use serde::Serialize;

use super::Method;
use super::{
    Ledger, fmt_field, human_bytes,
    steps::Facts,
    textbook::{Cache, Conditions, Link, PAGE},
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub field: &'static str,
    pub observed: u64,
    pub textbook: u64,
    pub reason: String,
    /// False when neither the run's conditions nor what the probes saw account for it.
    pub explained: bool,
}

/// What the comparison needs to know about the run.
pub struct Run<'a> {
    pub method: Method,
    /// Data calls the sender made (chunks).
    pub chunks: u64,
    pub observed: &'a Ledger,
    pub facts: &'a Facts,
    /// The article's ledger and the one under this run's conditions.
    pub article: &'a Ledger,
    pub here: &'a Ledger,
    pub here_conditions: Conditions,
}

pub fn differences(run: &Run<'_>) -> Vec<Difference> {
    let mut out = Vec::new();
    for field in Ledger::FIELDS {
        let (Some(observed), Some(textbook), Some(here)) = (
            run.observed.get(field),
            run.article.get(field),
            run.here.get(field),
        ) else {
            continue;
        };
        if observed == textbook {
            continue;
        }
        let mut reasons = Vec::new();
        if here != textbook {
            reasons.extend(condition_reasons(run, field));
        }
        let mut explained = true;
        if observed != here {
            match fact_reason(run, field, here) {
                Some(r) => reasons.push(r),
                None => {
                    explained = false;
                    let expected = fmt_field(field, here);
                    reasons.push(format!(
                        "not explained by the model: {expected} expected under this run's conditions"
                    ));
                }
            }
        }
        out.push(Difference {
            field,
            observed,
            textbook,
            reason: reasons.join("; "),
            explained,
        });
    }
    out
}

fn zc_method(m: Method) -> bool {
    matches!(m, Method::MsgZerocopy | Method::IoUring)
}

/// Why the run's conditions move `field` away from the article's assumptions.
fn condition_reasons(run: &Run<'_>, field: &str) -> Vec<String> {
    let c = run.here_conditions;
    // tmpfs (and O_DIRECT) show no page-cache lookups at all: "hit" would be untrue there.
    let lookups_seen = run.observed.cache_hits + run.observed.cache_misses > 0;
    let mut r = Vec::new();
    match field {
        "dma_copies" | "dma_bytes" => {
            if c.cache == Cache::Warm {
                r.push(if lookups_seen {
                    "disk DMA skipped: page cache hit".to_string()
                } else {
                    "no disk read seen: the file lives in memory (tmpfs), or O_DIRECT bypassed the page cache"
                        .to_string()
                });
            }
            if c.link == Link::Loopback && run.method != Method::CopyFileRange {
                r.push("no NIC DMA: loopback hands the socket buffer to the receiver".to_string());
            }
        }
        "cache_hits" | "cache_misses" if c.cache == Cache::Warm => {
            r.push(if lookups_seen {
                "page cache hit: the file was already in memory".to_string()
            } else {
                "no page-cache lookups seen (tmpfs keeps files in memory, O_DIRECT bypasses the cache, or this kernel lacks the mm_filemap tracepoints)"
                    .to_string()
            });
        }
        "cpu_copies" | "cpu_copy_bytes" => {
            if c.link == Link::Loopback && zc_method(run.method) && c.zc_send {
                r.push(format!(
                    "{} fell back to a copy: loopback (the kernel copies pinned pages before local delivery)",
                    if run.method == Method::IoUring {
                        "SEND_ZC"
                    } else {
                        "MSG_ZEROCOPY"
                    }
                ));
            }
            if run.method == Method::IoUring && !c.zc_send {
                r.push("this kernel has no io_uring SEND_ZC: SEND copies".to_string());
            }
        }
        "page_refs" | "page_ref_bytes" if run.method == Method::IoUring && !c.zc_send => {
            r.push("this kernel has no io_uring SEND_ZC: no pinned pages".to_string());
        }
        _ => {}
    }
    r
}

/// Why the observed value differs from the model under the run's conditions, from what
/// the probes saw; `None` when nothing they saw accounts for it.
fn fact_reason(run: &Run<'_>, field: &str, here: u64) -> Option<String> {
    let f = run.facts;
    let o = run.observed;
    // Each reason below is given only when the numbers it names account for the
    // difference exactly.
    let reaps = f.completion_reaps;
    let enters = f.syscalls.get("io_uring_enter").copied().unwrap_or(0);
    let disk_dma_only = f.nic_xmits == 0;
    match field {
        // Mostly cached, a few pages read from disk.
        "dma_copies" | "dma_bytes"
            if disk_dma_only && here == 0 && o.cache_misses > 0 && f.block_requests > 0 =>
        {
            Some(format!(
                "{} of {} pages were not cached and were read from disk ({} block requests)",
                o.cache_misses,
                o.cache_hits + o.cache_misses,
                f.block_requests
            ))
        }
        // Every missed page read from disk, in fewer (or more) requests than chunks.
        "dma_copies"
            if disk_dma_only
                && f.block_requests > 0
                && (o.dma_bytes == run.here.dma_bytes || o.dma_bytes == o.cache_misses * PAGE) =>
        {
            Some(if f.block_requests < run.chunks {
                format!(
                    "disk reads batched by readahead: {} block requests for {} chunks",
                    f.block_requests, run.chunks
                )
            } else {
                format!(
                    "disk reads split into {} block requests for {} chunks (device request size)",
                    f.block_requests, run.chunks
                )
            })
        }
        "dma_bytes" if f.block_requests > 0 && disk_dma_only && o.dma_bytes > here => {
            Some(format!(
                "readahead read {} more than this transfer's chunks needed",
                human_bytes(o.dma_bytes - here)
            ))
        }
        "dma_bytes" if f.block_requests > 0 && disk_dma_only && o.cache_hits > 0 => Some(format!(
            "{} of the file came from the page cache: partly cached before the run",
            human_bytes(here - o.dma_bytes)
        )),
        "dma_copies" | "dma_bytes" if f.nic_xmits > 0 => Some(format!(
            "{} transmits on {} (segment sizes, not chunks, set the DMA count)",
            f.nic_xmits,
            f.devices.iter().cloned().collect::<Vec<_>>().join(", ")
        )),
        "cache_hits" | "cache_misses"
            if o.cache_hits + o.cache_misses == run.here.cache_hits + run.here.cache_misses =>
        {
            Some(format!(
                "{} pages were already cached and {} were read from disk",
                o.cache_hits, o.cache_misses
            ))
        }
        "cache_hits" | "cache_misses" if o.cache_hits + o.cache_misses == 0 => Some(
            "no page-cache lookups seen (tmpfs, O_DIRECT, or mm_filemap tracepoints missing)"
                .to_string(),
        ),
        // The model's deferred copy covers the pinned bytes once; loopback copies what it
        // delivers, and a retransmitted zero-copy skb is delivered (and copied) again.
        "cpu_copy_bytes"
            if f.deferred_copies > 0
                && o.cpu_copy_bytes + run.here.page_ref_bytes == here + f.deferred_copy_bytes =>
        {
            Some(format!(
                "loopback copied {} of zero-copy skbs before delivery (a retransmitted skb is copied again)",
                human_bytes(f.deferred_copy_bytes)
            ))
        }
        // The model counts one deferred copy per chunk; loopback makes one per skb.
        "cpu_copies"
            if f.deferred_copies > 0 && o.cpu_copies + run.chunks == here + f.deferred_copies =>
        {
            Some(format!(
                "loopback copied {} zero-copy skbs ({}) before delivery: per skb, not per chunk",
                f.deferred_copies,
                human_bytes(f.deferred_copy_bytes)
            ))
        }
        "cpu_copies" | "cpu_copy_bytes" | "page_refs" | "page_ref_bytes"
            if f.zerocopy_ignored > 0 =>
        {
            Some(format!(
                "{} MSG_ZEROCOPY sends went out copied (SO_ZEROCOPY off, or no scatter-gather)",
                f.zerocopy_ignored
            ))
        }
        "cpu_copies" | "page_refs"
            if f.sends > run.chunks && o.get(field)? + run.chunks == here + f.sends =>
        {
            Some(format!(
                "the kernel sent each call in pieces: {} TCP sends for {} calls (sendfile and splice move at most one pipe, 64 KiB, per round)",
                f.sends, run.chunks
            ))
        }
        // The model has one completion reap (MSG_ZEROCOPY) or one io_uring_enter per chunk.
        "mode_switches" | "syscalls" if zc_method(run.method) => {
            let (calls, what) = if run.method == Method::MsgZerocopy {
                (
                    reaps,
                    "recvmsg(MSG_ERRQUEUE) calls to reap completions (an empty error queue answers EAGAIN, then the sender waits and asks again)",
                )
            } else {
                (
                    enters,
                    "io_uring_enter calls (waiting for the zero-copy notification can take a second call)",
                )
            };
            let per = if field == "mode_switches" { 2 } else { 1 };
            (o.get(field)? + per * run.chunks == here + per * calls)
                .then(|| format!("{calls} {what} for {} chunks", run.chunks))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::textbook::ledger;

    #[test]
    fn a_warm_loopback_read_write_differs_only_by_the_conditions() {
        let (bytes, chunk) = (1 << 20, 65536);
        let here_c = Conditions {
            cache: Cache::Warm,
            link: Link::Loopback,
            zc_send: true,
        };
        let article = ledger(Method::ReadWrite, bytes, chunk, &Conditions::ARTICLE);
        let here = ledger(Method::ReadWrite, bytes, chunk, &here_c);
        let mut observed = here.clone();
        observed.wall_ns = Some(5);
        let facts = Facts::default();
        let d = differences(&Run {
            method: Method::ReadWrite,
            chunks: 16,
            observed: &observed,
            facts: &facts,
            article: &article,
            here: &here,
            here_conditions: here_c,
        });
        let fields: Vec<_> = d.iter().map(|d| d.field).collect();
        assert_eq!(
            fields,
            ["dma_copies", "dma_bytes", "cache_hits", "cache_misses"]
        );
        assert!(d.iter().all(|d| d.explained));
        assert_eq!(
            d[0].reason,
            "disk DMA skipped: page cache hit; no NIC DMA: loopback hands the socket buffer to the receiver"
        );
        assert_eq!((d[0].observed, d[0].textbook), (0, 32));
    }

    #[test]
    fn an_unexplained_difference_says_so() {
        let here_c = Conditions {
            cache: Cache::Warm,
            link: Link::Loopback,
            zc_send: true,
        };
        let article = ledger(Method::Sendfile, 65536, 65536, &Conditions::ARTICLE);
        let here = ledger(Method::Sendfile, 65536, 65536, &here_c);
        let mut observed = here.clone();
        observed.cpu_copies = 1;
        observed.cpu_copy_bytes = 65536;
        let facts = Facts::default();
        let d = differences(&Run {
            method: Method::Sendfile,
            chunks: 1,
            observed: &observed,
            facts: &facts,
            article: &article,
            here: &here,
            here_conditions: here_c,
        });
        let cpu = d.iter().find(|d| d.field == "cpu_copies").unwrap();
        assert!(!cpu.explained);
        assert!(cpu.reason.contains("not explained"), "{}", cpu.reason);
    }

    #[test]
    fn a_retransmitted_zero_copy_skb_copied_again_is_explained() {
        let here_c = Conditions {
            cache: Cache::Warm,
            link: Link::Loopback,
            zc_send: true,
        };
        let (bytes, chunk) = (1 << 20, 65536);
        let article = ledger(Method::MsgZerocopy, bytes, chunk, &Conditions::ARTICLE);
        let here = ledger(Method::MsgZerocopy, bytes, chunk, &here_c);
        let mut observed = here.clone();
        observed.cpu_copy_bytes += 53;
        let facts = Facts {
            deferred_copies: 33,
            deferred_copy_bytes: bytes + 53,
            completion_reaps: 16,
            ..Facts::default()
        };
        observed.cpu_copies = here.cpu_copies - 16 + 33;
        let d = differences(&Run {
            method: Method::MsgZerocopy,
            chunks: 16,
            observed: &observed,
            facts: &facts,
            article: &article,
            here: &here,
            here_conditions: here_c,
        });
        let bytes_diff = d.iter().find(|d| d.field == "cpu_copy_bytes").unwrap();
        assert!(bytes_diff.explained, "{bytes_diff:?}");
        assert!(bytes_diff.reason.contains("copied again"), "{bytes_diff:?}");
        assert!(d.iter().all(|d| d.explained), "{d:?}");
    }
}
