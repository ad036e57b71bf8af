//! Which textbook method a transfer behaves like, from what the kernel did: the syscalls
//! that moved its bytes, and how its bytes reached the destination (copied by the CPU,
//! page references, pinned pages), with the evidence of each.
//!
//! A [`Behaviour`] takes a transfer's steps as the model emits them; [`classify`] reads
//! it with the transfer's ends. A transfer that matches no method is [`Behaves::Other`]
//! with the reason, a type whose wording comes from `Display`.

use std::{collections::BTreeMap, fmt};

use super::{
    Buffer, Engine, Evidence, Inference, Ledger, Method, Mode, Seen, Step, StepKind, human_bytes,
    steps::{Endpoint, Facts},
    textbook::{Cache, Conditions, Link},
};

/// How bytes reached a place on a transfer's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Delivery {
    /// The CPU copied them into the socket buffer from the application's buffer.
    CopiedFromUser,
    /// The CPU copied them into the socket buffer straight from the page cache (a write
    /// of a file mapping).
    CopiedFromPageCache,
    /// Page references (of the page cache, or of a pipe's pages) went into the socket: no
    /// copy.
    Referenced,
    /// The application's pages were pinned into the socket: no copy.
    Pinned,
    /// The CPU copied them from one file's page cache into another's.
    FileCopied,
    /// The CPU copied them from the application's buffer into a file's page cache.
    WrittenToFile,
    /// The CPU copied them out of a socket into the application's buffer (a receive).
    Received,
    /// The CPU copied them from a file's page cache into the application's buffer.
    ReadIntoUser,
    /// Page references of the page cache went into a pipe (the first half of splice).
    IntoPipe,
    /// The disk's DMA wrote them into the application's buffer (O_DIRECT: no page cache).
    DmaIntoUser,
}

impl Delivery {
    /// The kind of a step that moves bytes, if it is one. Loopback's later copy of pinned
    /// pages is not how the bytes were sent (it is counted in the ledger all the same).
    fn of(step: &Step) -> Option<Self> {
        use Buffer::{Disk, PageCache, Pipe, Socket, User};
        let deferred = matches!(
            step.evidence,
            Evidence::Inferred(Inference::LoopbackCopiesPins)
                | Evidence::Observed(Seen::FexitSkbCopyUbufs)
        );
        Some(match step.kind {
            StepKind::Copy {
                engine: Engine::Cpu,
                from,
                to,
                ..
            } => match (from, to) {
                (User, Socket) if deferred => return None,
                (User, Socket) => Self::CopiedFromUser,
                (PageCache, Socket) => Self::CopiedFromPageCache,
                (PageCache, PageCache) => Self::FileCopied,
                (User, PageCache) => Self::WrittenToFile,
                (Socket, User) => Self::Received,
                (PageCache, User) => Self::ReadIntoUser,
                _ => return None,
            },
            StepKind::PageRef {
                to: Socket, pinned, ..
            } => {
                if pinned {
                    Self::Pinned
                } else {
                    Self::Referenced
                }
            }
            StepKind::PageRef { to: Pipe, .. } => Self::IntoPipe,
            StepKind::Copy {
                engine: Engine::Dma,
                from: Disk,
                to: User,
                ..
            } => Self::DmaIntoUser,
            _ => return None,
        })
    }

    /// The kinds that deliver to `dst` (coming from `src`).
    fn into(src: Endpoint, dst: Endpoint) -> &'static [Self] {
        match (src, dst) {
            (_, Endpoint::Socket { .. }) => &[
                Self::CopiedFromUser,
                Self::CopiedFromPageCache,
                Self::Referenced,
                Self::Pinned,
            ],
            (_, Endpoint::File { .. }) => &[Self::FileCopied, Self::WrittenToFile],
            (Endpoint::Socket { .. }, Endpoint::User) => &[Self::Received],
            (_, Endpoint::User) => &[Self::ReadIntoUser, Self::DmaIntoUser],
        }
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CopiedFromUser => {
                "copied by the CPU from the application's buffer into the socket"
            }
            Self::CopiedFromPageCache => "copied by the CPU from the page cache into the socket",
            Self::Referenced => "page references into the socket (no copy)",
            Self::Pinned => "the application's pages pinned into the socket (no copy)",
            Self::FileCopied => "copied by the CPU from page cache to page cache",
            Self::WrittenToFile => "copied by the CPU from the application's buffer into the file",
            Self::Received => "copied by the CPU out of the socket into the application's buffer",
            Self::ReadIntoUser => {
                "copied by the CPU from the page cache into the application's buffer"
            }
            Self::IntoPipe => "page references into the pipe (no copy)",
            Self::DmaIntoUser => {
                "read by the disk's DMA straight into the application's buffer (O_DIRECT: no page cache, no CPU copy)"
            }
        })
    }
}

/// What steps of one kind of delivery added up to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    pub bytes: u64,
    pub steps: u64,
    /// Syscalls with steps of this kind (a step outside any syscall, as an io-wq worker
    /// makes, counts as one).
    pub calls: u64,
    /// How the steps are known, with how many each.
    pub evidence: Vec<(Evidence, u64)>,
}

/// What a transfer's steps say about how it moves its bytes. Feed it the transfer's steps
/// in the order the model emits them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// Syscalls made, by name, in the order first seen.
    calls: Vec<(String, u64)>,
    delivered: BTreeMap<Delivery, Delivered>,
    /// Syscalls entered so far, and the one in progress (its number).
    entered: u64,
    in_call: Option<u64>,
    /// The call each kind of delivery was last counted in.
    counted_in: BTreeMap<Delivery, u64>,
}

impl Behaviour {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one step of the transfer.
    pub fn record(&mut self, step: &Step) {
        match &step.kind {
            StepKind::ModeSwitch {
                to: Mode::Kernel,
                syscall,
            } => {
                match self.calls.iter_mut().find(|(name, _)| name == syscall) {
                    Some((_, n)) => *n += 1,
                    None => self.calls.push((syscall.clone(), 1)),
                }
                self.entered += 1;
                self.in_call = Some(self.entered);
            }
            StepKind::ModeSwitch { to: Mode::User, .. } => self.in_call = None,
            kind => {
                let Some(how) = Delivery::of(step) else {
                    return;
                };
                let bytes = match kind {
                    StepKind::Copy { bytes, .. } | StepKind::PageRef { bytes, .. } => *bytes,
                    _ => 0,
                };
                let d = self.delivered.entry(how).or_default();
                d.bytes += bytes;
                d.steps += 1;
                match d.evidence.iter_mut().find(|(e, _)| *e == step.evidence) {
                    Some((_, n)) => *n += 1,
                    None => d.evidence.push((step.evidence, 1)),
                }
                match self.in_call {
                    Some(call) if self.counted_in.get(&how) == Some(&call) => {}
                    Some(call) => {
                        self.counted_in.insert(how, call);
                        d.calls += 1;
                    }
                    None => d.calls += 1,
                }
            }
        }
    }

    /// How many calls of `syscall` the transfer made.
    pub fn calls_of(&self, syscall: &str) -> u64 {
        self.calls
            .iter()
            .find(|(name, _)| name == syscall)
            .map_or(0, |(_, n)| *n)
    }

    /// What deliveries of kind `how` added up to.
    pub fn delivered(&self, how: Delivery) -> Option<&Delivered> {
        self.delivered.get(&how)
    }

    /// The bytes that reached `dst` (from `src`), and in how many chunks: the calls (or
    /// steps outside calls) that delivered them.
    pub fn bytes_and_chunks(&self, src: Endpoint, dst: Endpoint) -> (u64, u64) {
        Delivery::into(src, dst)
            .iter()
            .filter_map(|how| self.delivered.get(how))
            .fold((0, 0), |(b, c), d| (b + d.bytes, c + d.calls))
    }

    /// Bytes per chunk (the last chunk may be shorter): what the textbook walks in.
    pub fn chunk(&self, src: Endpoint, dst: Endpoint) -> u64 {
        let (bytes, chunks) = self.bytes_and_chunks(src, dst);
        if chunks == 0 {
            0
        } else {
            bytes.div_ceil(chunks)
        }
    }

    fn has(&self, how: Delivery) -> bool {
        self.delivered.get(&how).is_some_and(|d| d.bytes > 0)
    }

    fn called(&self, syscall: &str) -> bool {
        self.calls_of(syscall) > 0
    }
}

/// The textbook method a transfer behaves like, or why none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaves {
    Like(Method),
    Other(Unlike),
}

/// Why a transfer behaves like none of the textbook methods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unlike {
    /// A socket's bytes received into the application's memory.
    Receive,
    /// A file read into the application's memory and not sent anywhere the model saw.
    ReadIntoMemory,
    /// The application's own bytes (not read from a file the model saw), sent or written.
    OwnBytes { into_file: bool },
    /// read()+write() between two files: through the application's memory.
    FileThroughMemory,
    /// The syscalls are `method`'s, but the kernel delivered the bytes `how`.
    Delivered { method: Method, how: Delivery },
    /// No bytes reached the destination yet.
    NothingDelivered,
    /// No method makes these calls deliver these bytes.
    Unmatched,
}

impl fmt::Display for Unlike {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Receive => f.write_str(
                "a receive: socket -> the application's memory (the other end of a transfer)",
            ),
            Self::ReadIntoMemory => f.write_str(
                "a file read into the application's memory, not sent anywhere the tracer saw",
            ),
            Self::OwnBytes { into_file: false } => f.write_str(
                "the application's own bytes sent (not read from a file the tracer saw)",
            ),
            Self::OwnBytes { into_file: true } => f.write_str(
                "the application's own bytes written to a file (not read from a file the tracer saw)",
            ),
            Self::FileThroughMemory => f.write_str(
                "read()+write() between two files: a copy through the application's memory, which no textbook method makes",
            ),
            Self::Delivered { method, how } => write!(
                f,
                "{}'s syscalls, but the payload was {how}",
                method.name()
            ),
            Self::NothingDelivered => f.write_str("no bytes reached the destination yet"),
            Self::Unmatched => f.write_str("no textbook method moves bytes with these calls"),
        }
    }
}

/// What a transfer behaves like, and why the model says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classification {
    pub behaves: Behaves,
    /// The facts behind it, one sentence each: the calls, then each kind of delivery.
    pub evidence: Vec<String>,
}

impl Classification {
    /// The method, if the transfer behaves like one.
    pub fn method(&self) -> Option<Method> {
        match self.behaves {
            Behaves::Like(m) => Some(m),
            Behaves::Other(_) => None,
        }
    }

    /// The method's name, or `other`.
    pub fn name(&self) -> &'static str {
        self.method().map_or("other", Method::name)
    }

    /// Why the transfer is `other` (`None` when it behaves like a method).
    pub fn reason(&self) -> Option<String> {
        match &self.behaves {
            Behaves::Like(_) => None,
            Behaves::Other(why) => Some(why.to_string()),
        }
    }
}

/// The method a transfer from `src` to `dst` behaves like, from its behaviour `b`.
pub fn classify(src: Endpoint, dst: Endpoint, b: &Behaviour) -> Classification {
    Classification {
        behaves: behaves(src, dst, b),
        evidence: evidence(src, dst, b),
    }
}

fn behaves(src: Endpoint, dst: Endpoint, b: &Behaviour) -> Behaves {
    use Behaves::{Like, Other};
    use Delivery::*;
    match (src, dst) {
        (Endpoint::Socket { .. }, _) => Other(Unlike::Receive),
        (Endpoint::File { .. }, Endpoint::User) => Other(Unlike::ReadIntoMemory),
        (Endpoint::User, dst) => Other(Unlike::OwnBytes {
            into_file: matches!(dst, Endpoint::File { .. }),
        }),
        (Endpoint::File { .. }, Endpoint::File { .. }) => {
            if !b.has(FileCopied) && !b.has(WrittenToFile) {
                Other(Unlike::NothingDelivered)
            } else if b.has(WrittenToFile) {
                Other(Unlike::FileThroughMemory)
            } else if b.called("copy_file_range") || b.called("sendfile") {
                // sendfile() into a file makes the same page cache -> page cache copy.
                Like(Method::CopyFileRange)
            } else {
                Other(Unlike::Unmatched)
            }
        }
        (Endpoint::File { .. }, Endpoint::Socket { .. }) => {
            let copied = [CopiedFromUser, CopiedFromPageCache]
                .into_iter()
                .find(|d| b.has(*d));
            // The calls name the method; the payload must be the one that method sends.
            let expect = |method: Method, ok: &[Delivery]| {
                if ok.iter().any(|d| b.has(*d)) {
                    Like(method)
                } else {
                    match [Referenced, Pinned]
                        .into_iter()
                        .find(|d| b.has(*d))
                        .or(copied)
                    {
                        Some(how) => Other(Unlike::Delivered { method, how }),
                        None => Other(Unlike::NothingDelivered),
                    }
                }
            };
            if b.called("io_uring_enter") {
                // SEND_ZC pins; where the kernel lacks it, SEND copies.
                expect(Method::IoUring, &[Pinned, CopiedFromUser])
            } else if b.called("sendfile") {
                expect(Method::Sendfile, &[Referenced])
            } else if b.called("splice") {
                expect(Method::Splice, &[Referenced])
            } else if b.has(Pinned) {
                Like(Method::MsgZerocopy)
            } else if b.has(CopiedFromPageCache) {
                Like(Method::MmapWrite)
            } else if b.has(CopiedFromUser) {
                let writes = ["write", "writev", "pwrite64"]
                    .iter()
                    .map(|s| b.calls_of(s))
                    .sum::<u64>();
                let sends = ["sendto", "sendmsg"]
                    .iter()
                    .map(|s| b.calls_of(s))
                    .sum::<u64>();
                if sends > writes {
                    Like(Method::ReadSend)
                } else {
                    Like(Method::ReadWrite)
                }
            } else if b.has(Referenced) {
                Other(Unlike::Unmatched)
            } else {
                Other(Unlike::NothingDelivered)
            }
        }
    }
}

/// One sentence per fact: the calls (`sendfile(): 128 calls`), then each kind of delivery
/// with its bytes and how it is known.
fn evidence(src: Endpoint, dst: Endpoint, b: &Behaviour) -> Vec<String> {
    let mut out = Vec::new();
    if !b.calls.is_empty() {
        let calls: Vec<String> = b
            .calls
            .iter()
            .map(|(name, n)| format!("{name}(): {}", plural(*n, "call", "calls")))
            .collect();
        out.push(calls.join(", "));
    }
    let into = Delivery::into(src, dst);
    // What reached the destination first, then the rest of the path.
    let mut kinds: Vec<(&Delivery, &Delivered)> = b.delivered.iter().collect();
    kinds.sort_by_key(|(how, _)| !into.contains(how));
    for (how, d) in kinds {
        let known: Vec<String> = d
            .evidence
            .iter()
            .map(|(e, n)| {
                let how = match e {
                    Evidence::Observed(seen) => format!("observed by {seen}"),
                    Evidence::Inferred(why) => format!("inferred: {why}"),
                };
                if d.evidence.len() > 1 {
                    format!("{how} ({n})")
                } else {
                    how
                }
            })
            .collect();
        out.push(format!(
            "{how}: {} in {}, {}",
            human_bytes(d.bytes),
            plural(d.steps, "step", "steps"),
            known.join("; ")
        ));
    }
    out
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The conditions a transfer ran under, from what the probes saw: the cache is cold when
/// most pages came from disk (a few misses in a cached file, or hits in an evicted one,
/// are explained as such by the comparison); no lookups at all (tmpfs, O_DIRECT, or a
/// kernel without the lookup tracepoints) means cold only when disk reads were seen. A
/// transmit on a device other than loopback means a NIC. `zc_send`: io_uring sent with
/// SEND_ZC (pinned pages) rather than SEND.
pub fn conditions(l: &Ledger, f: &Facts, zc_send: bool) -> Conditions {
    let no_lookups = l.cache_hits + l.cache_misses == 0;
    let cache = if l.cache_misses > l.cache_hits || (no_lookups && f.block_requests > 0) {
        Cache::Cold
    } else {
        Cache::Warm
    };
    let link = if f.nic_xmits > 0 {
        Link::Nic
    } else {
        Link::Loopback
    };
    Conditions {
        cache,
        link,
        zc_send,
    }
}

/// Whether an io_uring transfer sent with SEND_ZC (pinned pages) rather than SEND: true
/// unless only copies were seen.
pub fn zero_copy_send(b: &Behaviour) -> bool {
    b.has(Delivery::Pinned) || !b.has(Delivery::CopiedFromUser)
}

#[cfg(test)]
mod tests;
