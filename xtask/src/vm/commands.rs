//! The guest's work: the commands `/init` runs, in order, and what the host checks in
//! each one's output (the JSON of `tracer doctor --json` and `tracer demo --json`, where
//! there is one).

/// A command the guest runs, in order, after the disk is mounted at /data.
#[derive(Clone, Copy)]
pub(super) struct VmCommand {
    /// Marker name: lowercase letters, digits and '-'.
    pub name: &'static str,
    /// A busybox `sh -c` command line; the tracer is on PATH, the test disk at /data.
    pub run: &'static str,
    /// Killed (exit status 143) after this long, so one hang does not eat the whole boot.
    pub timeout_secs: u32,
    /// What its output is, how the report sums it up and what must be in it (besides
    /// an exit status of 0).
    pub check: Check,
}

/// What a command prints, and what it must show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Check {
    /// Anything: the report shows the first line of stdout.
    FirstLine,
    /// `tracer trace`: the report shows the attach report and the event count (stderr).
    Trace,
    /// `tracer doctor --json`: fentry and kprobes work and attached on every function
    /// tried, BPF ring buffers work, and these steps use these hooks.
    Doctor(&'static [Uses]),
    /// `tracer demo --json`: the report shows the ledgers; the evidence must show this.
    Demo(Evidence),
}

/// A step of the plan and the hook it must use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Uses {
    pub step: &'static str,
    pub tier: &'static str,
    pub target: &'static str,
}

/// What a demo's `facts.evidence` (the sender's) and `evidence` (the receiver's) must
/// count: how the copies and page references were known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Evidence {
    pub seen: &'static [Seen],
    pub inferred: Inferred,
}

/// One line of the evidence: a step of one side, known one way, so many times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Seen {
    pub side: Side,
    /// "page-cache -> user: observed by fexit filemap_read".
    pub what: &'static str,
    pub count: Count,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    Sender,
    Receiver,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Count {
    Exactly(u64),
    AtLeastOne,
}

/// Which steps may be inferred.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Inferred {
    Allowed,
    /// None of this path ("user -> socket"), on either side.
    NotOf(&'static str),
    /// None at all, on either side.
    Nothing,
}

/// Nothing checked of a demo's evidence (its ledger is checked by `--expect`).
const ANY_EVIDENCE: Check = Check::Demo(Evidence {
    seen: &[],
    inferred: Inferred::Allowed,
});

const fn sender(what: &'static str, count: Count) -> Seen {
    Seen {
        side: Side::Sender,
        what,
        count,
    }
}

const fn receiver(what: &'static str, count: Count) -> Seen {
    Seen {
        side: Side::Receiver,
        what,
        count,
    }
}

/// Every chunk of the 8 MiB file in 64 KiB chunks.
const CHUNKS: Count = Count::Exactly(128);

/// The guest's work. Add a command here; `/init` is regenerated on every run.
pub(super) const COMMANDS: &[VmCommand] = &[
    VmCommand {
        name: "uname",
        run: "uname -r",
        timeout_secs: 10,
        check: Check::FirstLine,
    },
    VmCommand {
        // On the virtio disk, not in the initramfs: tmpfs has no block I/O and no
        // filemap read path like a disk filesystem's.
        name: "make-input",
        run: "dd if=/dev/urandom of=/data/input bs=1M count=8 && sync && ls -l /data/input",
        timeout_secs: 60,
        check: Check::FirstLine,
    },
    VmCommand {
        // The plan on this kernel, as people read it (what it says is checked on its
        // JSON, next).
        name: "doctor",
        run: "tracer doctor",
        timeout_secs: 120,
        check: Check::FirstLine,
    },
    VmCommand {
        // Each function a usable tier names was tried (6.1 takes fentry and kprobes on
        // all), and the planner picks the fentry tier where 6.1 allows it and this build
        // has it.
        name: "doctor-json",
        run: "tracer doctor --json",
        timeout_secs: 120,
        check: Check::Doctor(&[Uses {
            step: "CPU copy page cache -> user (read)",
            tier: "fentry",
            target: "filemap_read",
        }]),
    },
    VmCommand {
        // Which tracepoints attach on this kernel and which are skipped, and why.
        name: "trace-true",
        run: "tracer trace --json -- true",
        timeout_secs: 180,
        check: Check::Trace,
    },
    VmCommand {
        // `--size` conflicts with `--file`; the file is 8 MiB.
        // The textbook's read+write on a second kernel: 4 switches and 2 CPU copies per
        // chunk (8 MiB in 128 chunks), though 6.1 has no send tracepoint (the send is
        // inferred from write()'s return value there).
        name: "read-write",
        run: "tracer demo --method read-write --chunk 64K --json --file /data/input --expect syscalls=256,mode_switches=512,cpu_copies=256,cpu_copy_bytes=16M,cache_hits=2048,cache_misses=0",
        timeout_secs: 240,
        // And the fentry tier saw every copy: fexit filemap_read (page cache -> user),
        // fexit tcp_sendmsg_locked (user -> socket) and the receiver's fexit
        // skb_copy_datagram_iter; and every lookup (fexit filemap_get_pages: 6.1 has no
        // mm_filemap_get_pages tracepoint), all 2048 pages hits.
        check: Check::Demo(Evidence {
            seen: &[
                sender("page-cache -> user: observed by fexit filemap_read", CHUNKS),
                sender(
                    "user -> socket: observed by fexit tcp_sendmsg_locked (no zero-copy flag)",
                    CHUNKS,
                ),
                sender(
                    "page-cache lookup: observed by fexit filemap_get_pages",
                    Count::AtLeastOne,
                ),
                receiver(
                    "socket -> user: observed by fexit skb_copy_datagram_iter",
                    Count::AtLeastOne,
                ),
            ],
            inferred: Inferred::Allowed,
        }),
    },
    VmCommand {
        // Evicted first: the disk DMA of every byte, through the virtio disk.
        name: "read-write-cold",
        run: "tracer demo --method read-write --chunk 64K --json --file /data/input --cold --expect 'cpu_copy_bytes=16M,dma_bytes>=8M,cache_misses=2048,cache_hits=0'",
        timeout_secs: 240,
        check: ANY_EVIDENCE,
    },
    VmCommand {
        // sendfile on 6.1 goes through the sendpage path: 2 switches, no CPU copy, page
        // references.
        name: "sendfile",
        run: "tracer demo --method sendfile --chunk 64K --json --file /data/input --expect syscalls=128,mode_switches=256,cpu_copy_bytes=0,page_ref_bytes=8M",
        timeout_secs: 240,
        // The kprobe tier sees them: kretprobe do_tcp_sendpages, one page per call.
        check: Check::Demo(Evidence {
            seen: &[sender(
                "page-cache -> socket: observed by kretprobe do_tcp_sendpages",
                CHUNKS,
            )],
            inferred: Inferred::Allowed,
        }),
    },
    VmCommand {
        name: "read-send",
        run: "tracer demo --method read-send --chunk 64K --json --file /data/input --expect syscalls=256,mode_switches=512,cpu_copy_bytes=16M",
        timeout_secs: 240,
        check: ANY_EVIDENCE,
    },
    VmCommand {
        // mmap, 128 writes, munmap; one CPU copy per chunk, from the page cache.
        name: "mmap-write",
        run: "tracer demo --method mmap-write --chunk 64K --json --file /data/input --expect syscalls=130,cpu_copies=128,cpu_copy_bytes=8M,cache_hits=2048",
        timeout_secs: 240,
        // The faults' page-cache lookups: fexit filemap_map_pages (6.1 has no
        // mm_filemap_map_pages tracepoint).
        check: Check::Demo(Evidence {
            seen: &[sender(
                "page-cache lookup: observed by fexit filemap_map_pages",
                Count::AtLeastOne,
            )],
            inferred: Inferred::Allowed,
        }),
    },
    VmCommand {
        name: "splice",
        run: "tracer demo --method splice --chunk 64K --json --file /data/input --expect syscalls=256,cpu_copy_bytes=0,page_ref_bytes=16M",
        timeout_secs: 240,
        // Before 6.5 the file -> pipe splice reads through filemap_read into the pipe
        // iterator: its references are observed there.
        check: Check::Demo(Evidence {
            seen: &[
                sender(
                    "page-cache -> pipe: observed by fexit filemap_read (into the pipe: page references)",
                    CHUNKS,
                ),
                sender(
                    "pipe -> socket: observed by kretprobe do_tcp_sendpages",
                    CHUNKS,
                ),
            ],
            inferred: Inferred::Allowed,
        }),
    },
    VmCommand {
        // Pinned pages; loopback copies them before delivery (on top of read()'s copy).
        name: "msg-zerocopy",
        run: "tracer demo --method msg-zerocopy --chunk 64K --json --file /data/input --expect 'page_ref_bytes=8M,cpu_copy_bytes>=8M'",
        timeout_secs: 240,
        // The pins themselves: fexit skb_zerocopy_iter_stream, one per send; and loopback's
        // copies of them, fexit skb_copy_ubufs (none left to infer).
        check: Check::Demo(Evidence {
            seen: &[
                sender(
                    "user -> socket: observed by fexit skb_zerocopy_iter_stream",
                    CHUNKS,
                ),
                sender(
                    "user -> socket: observed by fexit skb_copy_ubufs",
                    Count::AtLeastOne,
                ),
            ],
            inferred: Inferred::NotOf("user -> socket"),
        }),
    },
    VmCommand {
        name: "copy-file-range",
        run: "tracer demo --method copy-file-range --chunk 64K --json --file /data/input --expect syscalls=128,cpu_copy_bytes=8M",
        timeout_secs: 240,
        // The copy into the destination's page cache: fexit generic_perform_write (which
        // takes the place of the ext4_da_write_end tracepoint).
        check: Check::Demo(Evidence {
            seen: &[sender(
                "page-cache -> page-cache: observed by fexit generic_perform_write",
                CHUNKS,
            )],
            inferred: Inferred::Allowed,
        }),
    },
    VmCommand {
        // 6.1 names the submission tracepoint io_uring_submit_sqe and passes the
        // completion's fields by value. READ linked to SEND_ZC: every copy and pin observed
        // by the fentry tier, nothing inferred.
        name: "io-uring",
        run: "tracer demo --method io-uring --chunk 64K --json --file /data/input --expect 'page_refs=128,page_ref_bytes=8M,cpu_copy_bytes>=16M,cache_hits=2048'",
        timeout_secs: 240,
        check: Check::Demo(Evidence {
            seen: &[
                sender("page-cache -> user: observed by fexit filemap_read", CHUNKS),
                sender(
                    "user -> socket: observed by fexit skb_zerocopy_iter_stream",
                    CHUNKS,
                ),
            ],
            inferred: Inferred::Nothing,
        }),
    },
];
