//! Page-cache lookups: a page looked up for the first time is a miss when this trace saw
//! it added to the page cache since it was last looked up, a hit otherwise.

use std::collections::{HashMap, HashSet};

use super::{Ino, Model, Pid, step_of};
use crate::{
    event::Event,
    model::{Evidence, LookupProbe, Seen, Step, StepKind},
};

/// What the trace saw of the page cache.
#[derive(Default)]
pub(super) struct PageCache {
    /// File ino -> page index -> when the page was added to the page cache during the
    /// trace (a miss's lookup began then), until a lookup finds it.
    added_at: HashMap<Ino, HashMap<u64, u64>>,
    /// (pid, file ino) -> the pages that process already looked up.
    looked_up: HashMap<(Pid, Ino), HashSet<u64>>,
}

impl PageCache {
    /// `mm_filemap_add_to_page_cache`: a folio of `2^order` pages of file `ino` at `index`
    /// was added at `ts_ns`.
    pub(super) fn added(&mut self, ts_ns: u64, ino: Ino, index: u64, order: Option<u8>) {
        let pages = 1u64 << order.unwrap_or(0).min(20);
        let added = self.added_at.entry(ino).or_default();
        for page in index..index + pages {
            added.entry(page).or_insert(ts_ns);
        }
    }

    /// Counts the pages `first..=last` of file `ino` that `pid` looks up for the first
    /// time: (hits, misses, when the lookup began). The probe fires once the pages are up
    /// to date; a miss's lookup began when its first page was added (before the disk
    /// read).
    fn look_up(
        &mut self,
        pid: Pid,
        ino: Ino,
        first: u64,
        last: u64,
        ts_ns: u64,
    ) -> (u64, u64, u64) {
        let mut added = self.added_at.get_mut(&ino);
        let seen = self.looked_up.entry((pid, ino)).or_default();
        let (mut hit, mut miss) = (0, 0);
        let mut began = ts_ns;
        for page in first..=last {
            if seen.insert(page) {
                // The first lookup after the page was added is the miss that read it; a
                // later one (another process, a later request) finds it cached.
                match added.as_mut().and_then(|a| a.remove(&page)) {
                    Some(ts) => {
                        miss += 1;
                        began = began.min(ts);
                    }
                    None => hit += 1,
                }
            }
        }
        (hit, miss, began)
    }
}

impl Model {
    /// A lookup of pages `first..=last` of file `ino`, seen by `probe`.
    pub(super) fn lookup(
        &mut self,
        ev: &Event,
        ino: Ino,
        first: u64,
        last: u64,
        probe: LookupProbe,
        out: &mut Vec<Step>,
    ) {
        if ino == 0 || last < first || last - first > (1 << 24) {
            return;
        }
        let (hit, miss, began) = self.page_cache.look_up(ev.pid, ino, first, last, ev.ts_ns);
        if hit + miss == 0 {
            return;
        }
        let mut s = step_of(
            ev,
            StepKind::Lookup {
                hit_pages: hit,
                miss_pages: miss,
            },
            // With the page-cache insertions when they made misses.
            Evidence::Observed(Seen::Lookup {
                probe,
                with_adds: miss > 0,
            }),
        );
        s.ts_ns = began;
        self.route(ev.pid, ev.tid, Some(ino), None, s, out);
    }
}
