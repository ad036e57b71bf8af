//! Reads the kernel programs' ring buffer without blocking the runtime (tokio `AsyncFd`).

use aya::maps::{MapData, RingBuf};
use tokio::io::{Interest, unix::AsyncFd};

use crate::event::{Event, decode};

/// Most events taken from the ring buffer in one batch, so output and signals are handled
/// between batches even under a flood.
const BATCH: usize = 4096;

/// The kernel programs wake the reader only when a backlog builds up (per-event wakeups
/// would cost more than the events); below that, the reader looks every tick.
const TICK: std::time::Duration = std::time::Duration::from_millis(20);

/// The kernel event stream.
pub struct KernelSource {
    ring: AsyncFd<RingBuf<MapData>>,
    /// Records that did not decode (wrong length or unknown kind); counted, not fatal.
    pub malformed: u64,
    /// The last batch was full: more is waiting, take it without waiting for a wakeup
    /// (the kernel side wakes the reader only now and then).
    backlog: bool,
}

impl KernelSource {
    /// Registers the ring buffer with the current tokio runtime's reactor.
    pub fn new(ring: RingBuf<MapData>) -> std::io::Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(std::io::Error::other(
                "the kernel event source needs a tokio runtime",
            ));
        }
        // SAFETY: the fd belongs to the RingBuf, which the AsyncFd owns from here on, so it
        // stays open and the same for the AsyncFd's whole life.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Self {
            ring,
            malformed: 0,
            backlog: false,
        })
    }

    /// Waits until events are available (a wakeup, or the next tick finds some), then
    /// appends up to one batch to `out`.
    pub async fn next_batch(&mut self, out: &mut Vec<Event>) -> std::io::Result<()> {
        loop {
            if self.backlog {
                let (n, malformed) = take(self.ring.get_mut(), out, BATCH);
                self.malformed += malformed;
                self.backlog = n == BATCH;
                if n > 0 || malformed > 0 {
                    return Ok(());
                }
            }
            let (n, malformed) = match tokio::time::timeout(TICK, self.ring.readable_mut()).await {
                Ok(guard) => {
                    let mut guard = guard?;
                    let taken = take(guard.get_inner_mut(), out, BATCH);
                    if taken.0 < BATCH {
                        // Emptied: wait for the next wakeup. Otherwise more is left.
                        guard.clear_ready();
                    }
                    taken
                }
                Err(_tick) => take(self.ring.get_mut(), out, BATCH),
            };
            self.malformed += malformed;
            self.backlog = n == BATCH;
            if n > 0 || malformed > 0 {
                return Ok(());
            }
        }
    }

    /// Appends everything now in the ring buffer to `out`, without waiting.
    pub fn drain(&mut self, out: &mut Vec<Event>) {
        let (_, malformed) = take(self.ring.get_mut(), out, usize::MAX);
        self.malformed += malformed;
    }
}

fn take(ring: &mut RingBuf<MapData>, out: &mut Vec<Event>, max: usize) -> (usize, u64) {
    let mut n = 0;
    let mut malformed = 0;
    while n < max {
        let Some(item) = ring.next() else { break };
        match decode(&item) {
            Ok(e) => {
                out.push(e);
                n += 1;
            }
            Err(_) => malformed += 1,
        }
    }
    (n, malformed)
}
