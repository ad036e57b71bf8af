//! The guest's work: the commands `/init` runs, in order, and how the host sums up each
//! one's output.

/// How the host summarizes a command's output in its one-line report.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Report {
    /// The first line of stdout.
    FirstLine,
    /// `tracer demo --json`: the sender's (and receiver's) observed ledger.
    DemoJson,
    /// `tracer trace`: the attach report and the event count, from stderr.
    Trace,
}

/// A command the guest runs, in order, after the disk is mounted at /data.
pub struct VmCommand {
    /// Marker name: lowercase letters, digits and '-'.
    pub name: &'static str,
    /// A busybox `sh -c` command line; the tracer is on PATH, the test disk at /data.
    pub run: &'static str,
    /// Killed (exit status 143) after this long, so one hang does not eat the whole boot.
    pub timeout_secs: u32,
    pub report: Report,
}

/// The guest's work. Add a command here; `/init` is regenerated on every run.
pub const COMMANDS: &[VmCommand] = &[
    VmCommand {
        name: "uname",
        run: "uname -r",
        timeout_secs: 10,
        report: Report::FirstLine,
    },
    VmCommand {
        // On the virtio disk, not in the initramfs: tmpfs has no block I/O and no
        // filemap read path like a disk filesystem's.
        name: "make-input",
        run: "dd if=/dev/urandom of=/data/input bs=1M count=8 && sync && ls -l /data/input",
        timeout_secs: 60,
        report: Report::FirstLine,
    },
    VmCommand {
        // The plan on this kernel: which hook each step uses, and why not a better one. Each
        // function a usable tier names was tried (6.1 takes fentry and kprobes on all).
        name: "doctor",
        run: "tracer doctor > /tmp/doctor.txt; rc=$?; cat /tmp/doctor.txt; [ $rc = 0 ] && grep -qE '^  fentry/fexit: yes \\(tried on [0-9]+ functions?: attached on all\\)$' /tmp/doctor.txt && grep -qE '^  kprobes: +yes \\(tried on [0-9]+ functions?: attached on all\\)$' /tmp/doctor.txt && grep -q '^  ring buffer:  yes$' /tmp/doctor.txt",
        timeout_secs: 120,
        report: Report::FirstLine,
    },
    VmCommand {
        // The planner picks the fentry tier where 6.1 allows it and this build has it.
        name: "doctor-json",
        // (awk: the line after this step's "hook" must name the fentry tier; a null hook,
        // or fentry only among the hooks not used, fails.)
        run: "tracer doctor --json > /tmp/doctor.json && awk '/\"step\": \"CPU copy page cache -> user \\(read\\)\"/ { s = 1 } s && /\"hook\"/ { getline; print; exit }' /tmp/doctor.json | grep -q '\"tier\": \"fentry\"' && echo 'CPU copy page cache -> user: fentry filemap_read'",
        timeout_secs: 120,
        report: Report::FirstLine,
    },
    VmCommand {
        // Which tracepoints attach on this kernel and which are skipped, and why.
        name: "trace-true",
        run: "tracer trace --json -- true",
        timeout_secs: 180,
        report: Report::Trace,
    },
    VmCommand {
        // `--size` conflicts with `--file`; the file is 8 MiB.
        // The textbook's read+write on a second kernel: 4 switches and 2 CPU copies per
        // chunk (8 MiB in 128 chunks), though 6.1 has no send tracepoint (the send is
        // inferred from write()'s return value there).
        name: "read-write",
        // And the fentry tier saw every copy: fexit filemap_read (page cache -> user),
        // fexit tcp_sendmsg_locked (user -> socket) and the receiver's fexit
        // skb_copy_datagram_iter; and every lookup (fexit filemap_get_pages: 6.1 has no
        // mm_filemap_get_pages tracepoint), all 2048 pages hits.
        run: "tracer demo --method read-write --chunk 64K --json --file /data/input --expect syscalls=256,mode_switches=512,cpu_copies=256,cpu_copy_bytes=16M,cache_hits=2048,cache_misses=0 > /tmp/rw.json; rc=$?; cat /tmp/rw.json; [ $rc = 0 ] && grep -qE 'page-cache -> user: observed by fexit filemap_read\": 128,?$' /tmp/rw.json && grep -qE 'user -> socket: observed by fexit tcp_sendmsg_locked \\(no zero-copy flag\\)\": 128,?$' /tmp/rw.json && grep -qE 'page-cache lookup: observed by fexit filemap_get_pages\": [0-9]+,?$' /tmp/rw.json && grep -qE 'socket -> user: observed by fexit skb_copy_datagram_iter\": [0-9]+,?$' /tmp/rw.json",
        timeout_secs: 240,
        report: Report::DemoJson,
    },
    VmCommand {
        // Evicted first: the disk DMA of every byte, through the virtio disk.
        name: "read-write-cold",
        run: "tracer demo --method read-write --chunk 64K --json --file /data/input --cold --expect 'cpu_copy_bytes=16M,dma_bytes>=8M,cache_misses=2048,cache_hits=0'",
        timeout_secs: 240,
        report: Report::DemoJson,
    },
    VmCommand {
        // sendfile on 6.1 goes through the sendpage path: 2 switches, no CPU copy, page
        // references.
        name: "sendfile",
        // The kprobe tier sees them: kretprobe do_tcp_sendpages, one page per call.
        run: "tracer demo --method sendfile --chunk 64K --json --file /data/input --expect syscalls=128,mode_switches=256,cpu_copy_bytes=0,page_ref_bytes=8M > /tmp/sf.json; rc=$?; cat /tmp/sf.json; [ $rc = 0 ] && grep -qE 'page-cache -> socket: observed by kretprobe do_tcp_sendpages\": 128,?$' /tmp/sf.json",
        timeout_secs: 240,
        report: Report::DemoJson,
    },
    VmCommand {
        name: "read-send",
        run: "tracer demo --method read-send --chunk 64K --json --file /data/input --expect syscalls=256,mode_switches=512,cpu_copy_bytes=16M",
        timeout_secs: 240,
        report: Report::DemoJson,
    },
    VmCommand {
        // mmap, 128 writes, munmap; one CPU copy per chunk, from the page cache.
        name: "mmap-write",
        // The faults' page-cache lookups: fexit filemap_map_pages (6.1 has no
        // mm_filemap_map_pages tracepoint).
        run: "tracer demo --method mmap-write --chunk 64K --json --file /data/input --expect syscalls=130,cpu_copies=128,cpu_copy_bytes=8M,cache_hits=2048 > /tmp/mm.json; rc=$?; cat /tmp/mm.json; [ $rc = 0 ] && grep -qE 'page-cache lookup: observed by fexit filemap_map_pages\": [0-9]+,?$' /tmp/mm.json",
        timeout_secs: 240,
        report: Report::DemoJson,
    },
    VmCommand {
        name: "splice",
        // Before 6.5 the file -> pipe splice reads through filemap_read into the pipe
        // iterator: its references are observed there.
        run: "tracer demo --method splice --chunk 64K --json --file /data/input --expect syscalls=256,cpu_copy_bytes=0,page_ref_bytes=16M > /tmp/sp.json; rc=$?; cat /tmp/sp.json; [ $rc = 0 ] && grep -qE 'page-cache -> pipe: observed by fexit filemap_read \\(into the pipe: page references\\)\": 128,?$' /tmp/sp.json && grep -qE 'pipe -> socket: observed by kretprobe do_tcp_sendpages\": 128,?$' /tmp/sp.json",
        timeout_secs: 240,
        report: Report::DemoJson,
    },
    VmCommand {
        // Pinned pages; loopback copies them before delivery (on top of read()'s copy).
        name: "msg-zerocopy",
        // The pins themselves: fexit skb_zerocopy_iter_stream, one per send; and loopback's
        // copies of them, fexit skb_copy_ubufs (none left to infer).
        run: "tracer demo --method msg-zerocopy --chunk 64K --json --file /data/input --expect 'page_ref_bytes=8M,cpu_copy_bytes>=8M' > /tmp/zc.json; rc=$?; cat /tmp/zc.json; [ $rc = 0 ] && grep -qE 'user -> socket: observed by fexit skb_zerocopy_iter_stream\": 128,?$' /tmp/zc.json && grep -qE 'user -> socket: observed by fexit skb_copy_ubufs\": [0-9]+,?$' /tmp/zc.json && ! grep -q 'user -> socket: inferred' /tmp/zc.json",
        timeout_secs: 240,
        report: Report::DemoJson,
    },
    VmCommand {
        name: "copy-file-range",
        // The copy into the destination's page cache: fexit generic_perform_write (which
        // takes the place of the ext4_da_write_end tracepoint).
        run: "tracer demo --method copy-file-range --chunk 64K --json --file /data/input --expect syscalls=128,cpu_copy_bytes=8M > /tmp/cfr.json; rc=$?; cat /tmp/cfr.json; [ $rc = 0 ] && grep -qE 'page-cache -> page-cache: observed by fexit generic_perform_write\": 128,?$' /tmp/cfr.json",
        timeout_secs: 240,
        report: Report::DemoJson,
    },
    VmCommand {
        // 6.1 names the submission tracepoint io_uring_submit_sqe and passes the
        // completion's fields by value. READ linked to SEND_ZC: every copy and pin observed
        // by the fentry tier, nothing inferred.
        name: "io-uring",
        run: "tracer demo --method io-uring --chunk 64K --json --file /data/input --expect 'page_refs=128,page_ref_bytes=8M,cpu_copy_bytes>=16M,cache_hits=2048' > /tmp/iou.json; rc=$?; cat /tmp/iou.json; [ $rc = 0 ] && grep -qE 'page-cache -> user: observed by fexit filemap_read\": 128,?$' /tmp/iou.json && grep -qE 'user -> socket: observed by fexit skb_zerocopy_iter_stream\": 128,?$' /tmp/iou.json && ! grep -q ': inferred\"' /tmp/iou.json",
        timeout_secs: 240,
        report: Report::DemoJson,
    },
];
