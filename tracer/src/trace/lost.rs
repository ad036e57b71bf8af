//! Gaps in the stream: events the kernel dropped (the ring buffer was full), as a record
//! where they were lost, not only a total at exit.
//!
//! The kernel counts a failed ring-buffer reserve in the per-CPU `DROPS` map. The reader
//! reads the total after every batch; when it grew, the events were lost between the
//! previous reading and this one, and a [`Lost`] record goes into the stream there.

use std::fmt::Write as _;

use serde::Serialize;

/// `count` events lost between `since_ns` and `until_ns` (CLOCK_MONOTONIC, the clock of
/// the events' `ts_ns`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Lost {
    pub count: u64,
    pub since_ns: u64,
    pub until_ns: u64,
}

/// `ns` as the text output writes a time: seconds and microseconds.
fn secs(ns: u64) -> String {
    format!("{}.{:06}", ns / 1_000_000_000, (ns / 1000) % 1_000_000)
}

impl Lost {
    /// `{"event":"lost","count":N,"since_ns":S,"until_ns":U}`.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"event\":\"lost\",\"count\":{},\"since_ns\":{},\"until_ns\":{}}}",
            self.count, self.since_ns, self.until_ns
        )
    }

    /// A line in the columns of the events' text form (time, pid/tid and comm are the
    /// end of the gap and `-`), then what was lost.
    pub fn to_text(&self) -> String {
        let mut line = format!(
            "{:>13} {:>7}/{:<7} {:<15} lost",
            secs(self.until_ns),
            "-",
            "-",
            "-"
        );
        let _ = write!(
            line,
            " count={} since={} until={} (the ring buffer was full: the events of this \
             interval are incomplete)",
            self.count,
            secs(self.since_ns),
            secs(self.until_ns)
        );
        line
    }
}

/// `clock_gettime(CLOCK_MONOTONIC)` in nanoseconds: the clock `bpf_ktime_get_ns` reads.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The drop counter as last read, and when.
#[derive(Clone, Copy, Debug)]
pub struct DropWatch {
    seen: u64,
    since_ns: u64,
}

impl DropWatch {
    /// Starts from the counter's value now (`drops`).
    pub fn new(drops: u64) -> Self {
        Self {
            seen: drops,
            since_ns: monotonic_ns(),
        }
    }

    /// After a batch, with the counter's value now: the gap since the last reading, if
    /// the counter grew.
    pub fn check(&mut self, drops: u64) -> Option<Lost> {
        self.check_at(drops, monotonic_ns())
    }

    fn check_at(&mut self, drops: u64, now_ns: u64) -> Option<Lost> {
        let lost = (drops > self.seen).then(|| Lost {
            count: drops - self.seen,
            since_ns: self.since_ns,
            until_ns: now_ns,
        });
        self.seen = self.seen.max(drops);
        self.since_ns = now_ns;
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_is_reported_once_between_the_readings_around_it() {
        let mut w = DropWatch {
            seen: 5,
            since_ns: 1_000,
        };
        assert_eq!(w.check_at(5, 2_000), None);
        assert_eq!(
            w.check_at(12, 3_000),
            Some(Lost {
                count: 7,
                since_ns: 2_000,
                until_ns: 3_000
            })
        );
        assert_eq!(w.check_at(12, 4_000), None);
    }

    #[test]
    fn lost_records_in_json_and_text() {
        let l = Lost {
            count: 3,
            since_ns: 1_500_000_000,
            until_ns: 2_000_001_000,
        };
        let j: serde_json::Value = serde_json::from_str(&l.to_json()).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"event": "lost", "count": 3, "since_ns": 1_500_000_000u64, "until_ns": 2_000_001_000u64})
        );
        let t = l.to_text();
        assert!(
            t.starts_with("     2.000001       -/-       -               lost count=3 since=1.500000 until=2.000001"),
            "{t}"
        );
    }
}
