//! `tracer demo` on this kernel, per method, as a user runs it: an 8 MiB file in 64 KiB
//! chunks, JSON out. Exact where the kernel is deterministic (syscall and mode-switch
//! counts, copied and referenced bytes), within stated bounds where it is not (completion
//! waits, readahead batching, per-skb deferred copies).
//!
//! Needs root and the eBPF programs: `cargo xtask test` runs these one at a time.

use std::{
    path::Path,
    process::{Command, Output},
};

use serde_json::Value;
use tracer::model::compare::{Reason, Reasons, ZeroCopySend};

mod kernel;

const TRACER: &str = env!("CARGO_BIN_EXE_tracer");
const MIB: u64 = 1 << 20;
const SIZE: u64 = 8 * MIB;
const N: u64 = 128; // 8 MiB / 64 KiB
const PAGES: u64 = SIZE / 4096;

fn demo(args: &[&str]) -> Output {
    Command::new(TRACER)
        .arg("demo")
        .args(args)
        .output()
        .expect("running tracer demo")
}

fn run_json(method: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "--method", method, "--size", "8M", "--chunk", "64K", "--json",
    ];
    args.extend_from_slice(extra);
    let out = demo(&args);
    assert!(
        out.status.success(),
        "{method}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["method"], method);
    assert_eq!(v["bytes"], SIZE);
    assert_eq!(v["chunk"], 64 * 1024);
    assert_eq!(v["drops"], 0, "{method}: events dropped");
    for side in ["observed", "textbook"] {
        for field in tracer::model::Ledger::FIELDS {
            assert!(v["sender"][side][field].is_u64(), "{method} {side} {field}");
        }
    }
    assert!(v["sender"]["observed"]["wall_ns"].as_u64().unwrap() > 0);
    for d in v["differences"].as_array().unwrap() {
        assert_eq!(d["explained"], true, "{method}: {d}");
    }
    v
}

/// The difference from the article's ledger in `field`.
fn difference<'v>(v: &'v Value, field: &str) -> &'v Value {
    v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["field"] == field)
        .unwrap_or_else(|| panic!("no {field} difference in {v}"))
}

fn get(v: &Value, field: &str) -> u64 {
    v["sender"]["observed"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {v}"))
}

/// The file is cached (just written) and the link is loopback: no DMA at all.
fn warm_loopback(v: &Value) {
    assert_eq!((get(v, "cache_hits"), get(v, "cache_misses")), (PAGES, 0));
    assert_eq!(get(v, "dma_copies"), 0);
    if v["method"] != "copy-file-range" {
        assert_eq!(v["receiver"]["observed"]["cpu_copy_bytes"], SIZE);
    } else {
        assert!(v["receiver"]["observed"].is_null());
    }
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn read_write_and_read_send_are_four_switches_and_two_copies_per_chunk() {
    for m in ["read-write", "read-send"] {
        let v = run_json(m, &[]);
        warm_loopback(&v);
        assert_eq!(get(&v, "syscalls"), 2 * N, "{m}");
        assert_eq!(get(&v, "mode_switches"), 4 * N, "{m}");
        assert_eq!(get(&v, "cpu_copies"), 2 * N, "{m}");
        assert_eq!(get(&v, "cpu_copy_bytes"), 2 * SIZE, "{m}");
        assert_eq!(get(&v, "page_refs"), 0, "{m}");
        // The article's model: four copies and four switches per chunk.
        assert_eq!(v["sender"]["textbook"]["cpu_copies"], 2 * N);
        assert_eq!(v["sender"]["textbook"]["dma_copies"], 2 * N);
    }
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn sendfile_and_splice_copy_nothing_with_the_cpu() {
    let v = run_json(
        "sendfile",
        &["--expect", "cpu_copy_bytes=0,mode_switches<=256"],
    );
    warm_loopback(&v);
    assert_eq!((get(&v, "syscalls"), get(&v, "mode_switches")), (N, 2 * N));
    assert_eq!((get(&v, "cpu_copies"), get(&v, "cpu_copy_bytes")), (0, 0));
    assert_eq!((get(&v, "page_refs"), get(&v, "page_ref_bytes")), (N, SIZE));
    // Every byte went out once as spliced pages; a loopback retransmission (rare, under
    // load) is counted apart, by tcp_retransmit_skb.
    let facts = &v["sender"]["facts"];
    assert_eq!(facts["xmit_spliced_bytes"].as_u64(), Some(SIZE), "{v}");
    let again = facts["retransmitted_bytes"].as_u64().unwrap_or(0);
    let retransmits = facts["retransmits"].as_u64().unwrap_or(0);
    assert_eq!(again == 0, retransmits == 0, "{v}");
    assert!(again < SIZE, "{v}");

    let v = run_json("splice", &[]);
    warm_loopback(&v);
    assert_eq!(
        (get(&v, "syscalls"), get(&v, "mode_switches")),
        (2 * N, 4 * N)
    );
    assert_eq!(get(&v, "cpu_copy_bytes"), 0);
    assert_eq!(
        (get(&v, "page_refs"), get(&v, "page_ref_bytes")),
        (2 * N, 2 * SIZE)
    );
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn mmap_write_copies_once_from_the_page_cache() {
    let v = run_json("mmap-write", &[]);
    warm_loopback(&v);
    assert_eq!(get(&v, "syscalls"), N + 2);
    assert_eq!(
        (get(&v, "cpu_copies"), get(&v, "cpu_copy_bytes")),
        (N, SIZE)
    );
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn zero_copy_sends_pin_pages_and_loopback_copies_them_later() {
    let v = run_json("msg-zerocopy", &[]);
    warm_loopback(&v);
    assert_eq!((get(&v, "page_refs"), get(&v, "page_ref_bytes")), (N, SIZE));
    // read()'s copy, then loopback's deferred copy of every pinned byte (and of a
    // retransmitted skb again, now and then: a few bytes more).
    let cpu = get(&v, "cpu_copy_bytes");
    assert!((2 * SIZE..2 * SIZE + 65536).contains(&cpu), "{v}");
    // read + send per chunk, then one or more completion reaps (EAGAIN retries).
    assert!((3 * N..=6 * N).contains(&get(&v, "syscalls")), "{v}");
    assert_eq!(v["zerocopy"]["completed"], N);
    assert_eq!(
        v["zerocopy"]["copied"], N,
        "loopback completions say COPIED"
    );
    // The copied bytes differ from the article's by loopback's fallback, and by a
    // retransmitted skb copied again when there was one.
    let mut reasons = vec![Reason::ZeroCopyFellBack {
        send: ZeroCopySend::MsgZerocopy,
    }];
    if cpu != v["sender"]["textbook_here"]["cpu_copy_bytes"] {
        reasons.push(Reason::CopiedAgain {
            bytes: v["sender"]["facts"]["deferred_copy_bytes"]
                .as_u64()
                .unwrap(),
        });
    }
    assert_eq!(
        difference(&v, "cpu_copy_bytes")["reason"],
        Reasons(reasons).to_string(),
        "{v}"
    );

    let v = run_json("io-uring", &[]);
    warm_loopback(&v);
    assert_eq!(v["io_uring_send_zc"], true);
    assert_eq!((get(&v, "page_refs"), get(&v, "page_ref_bytes")), (N, SIZE));
    let cpu = get(&v, "cpu_copy_bytes");
    assert!((2 * SIZE..2 * SIZE + 65536).contains(&cpu), "{v}");
    // One io_uring_enter per chunk, sometimes two while waiting for the notification.
    assert!((N..=3 * N).contains(&get(&v, "syscalls")), "{v}");
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn copy_file_range_copies_inside_the_kernel() {
    let v = run_json("copy-file-range", &[]);
    warm_loopback(&v);
    assert_eq!((get(&v, "syscalls"), get(&v, "mode_switches")), (N, 2 * N));
    assert_eq!(
        (get(&v, "cpu_copies"), get(&v, "cpu_copy_bytes")),
        (N, SIZE)
    );
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn cold_runs_show_the_disk_dma() {
    for m in ["read-write", "sendfile"] {
        let v = run_json(m, &["--cold"]);
        let cold = &v["cold"];
        assert_eq!(cold["pages"], PAGES);
        if cold["evicted"] == true {
            assert_eq!(
                (get(&v, "cache_hits"), get(&v, "cache_misses")),
                (0, PAGES),
                "{m}"
            );
            assert_eq!(get(&v, "dma_bytes"), SIZE, "{m}");
            // Readahead batches: at least one request, fewer than one per chunk.
            assert!((1..N).contains(&get(&v, "dma_copies")), "{m}: {v}");
        } else {
            // Eviction is best effort: the report must say so, and misses are bounded.
            assert!(cold["resident_after"].as_u64().unwrap() > 0);
            assert!(get(&v, "cache_misses") < PAGES);
        }
        assert_eq!(v["sender"]["conditions"]["cache"], "cold", "{m}");
    }
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn all_methods_give_one_table_and_expect_fails_loudly() {
    let out = demo(&["--method", "all", "--size", "1M", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let methods: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        [
            "read-write",
            "read-send",
            "mmap-write",
            "sendfile",
            "splice",
            "msg-zerocopy",
            "io-uring",
            "copy-file-range"
        ]
    );

    let out = demo(&["--method", "all", "--size", "1M"]);
    let table = String::from_utf8_lossy(&out.stdout);
    for m in methods {
        assert!(
            table.lines().any(|l| l.starts_with(m)),
            "{m} row in\n{table}"
        );
    }
    assert!(table.contains("observed/textbook"), "{table}");

    // A violated expectation: exit status 1 and the failing comparison named.
    let out = demo(&[
        "--method",
        "read-write",
        "--size",
        "1M",
        "--expect",
        "cpu_copy_bytes=0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "expectation failed for read-write: cpu_copy_bytes=0 (observed cpu_copy_bytes=2097152)"
        ),
        "{err}"
    );
}

/// Sets a sysctl for the life of the guard, restoring the old value even on panic.
struct Sysctl {
    path: &'static str,
    old: String,
}

impl Sysctl {
    fn set(path: &'static str, value: &str) -> Self {
        let old = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        std::fs::write(path, value).unwrap_or_else(|e| panic!("writing {value} to {path}: {e}"));
        Self { path, old }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        drop(std::fs::write(self.path, self.old.trim()));
    }
}

/// Whether io_uring_setup(2) gives a ring here (an io_uring-less kernel answers ENOSYS).
fn io_uring_works() -> bool {
    // struct io_uring_params: 120 bytes, all zero but what the kernel fills in.
    let mut params = [0u64; 15];
    // SAFETY: io_uring_setup with one entry and a zeroed params struct of its size.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, params.as_mut_ptr()) };
    if fd < 0 {
        return false;
    }
    // SAFETY: the ring's fd, ours.
    unsafe { libc::close(fd as i32) };
    true
}

/// io-uring's one-line refusal by `tracer demo`.
fn io_uring_refusal() -> String {
    let out = demo(&["--method", "io-uring", "--size", "1M", "--headless"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("tracer: error: io-uring is not supported here: "),
        "{err}"
    );
    err
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn a_method_this_kernel_refuses_is_reported_not_faked() {
    // kernel.io_uring_disabled (6.6+): 2 makes io_uring_setup fail with EPERM.
    const SYSCTL: &str = "/proc/sys/kernel/io_uring_disabled";
    if !Path::new(SYSCTL).exists() {
        // A kernel without the switch: one from before 6.6, where io-uring runs unless
        // the kernel has no io_uring at all, and then it is refused for that.
        let release = kernel::release();
        assert!(
            kernel::version() < (6, 6),
            "kernel {release} has no {SYSCTL}, which 6.6 added"
        );
        if io_uring_works() {
            let out = demo(&["--method", "io-uring", "--size", "1M", "--headless"]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{err}");
            let report = String::from_utf8_lossy(&out.stdout);
            assert!(report.starts_with("io-uring: 1 MiB"), "{report}");
        } else {
            let err = io_uring_refusal();
            assert!(!err.contains("io_uring_disabled"), "{err}");
        }
        return;
    }
    let _guard = Sysctl::set(SYSCTL, "2");
    assert!(!io_uring_works(), "io_uring_setup works with {SYSCTL}=2");
    let err = io_uring_refusal();
    assert!(err.contains("io_uring_disabled"), "{err}");

    let out = demo(&["--method", "all", "--size", "1M"]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("io-uring") && l.contains("unsupported here")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("sendfile") && l.contains("16/16")),
        "{table}"
    );
}

/// Runs `tracer demo ARGS` as nobody, with no capabilities.
fn demo_as_nobody(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .args([TRACER, "demo"])
        .args(args)
        .output()
        .expect("setpriv (util-linux)")
}

/// A run recorded as root replays as nobody (no privileges at all) to the very JSON the
/// demo printed, and to the same text report.
#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn a_recording_made_as_root_replays_as_nobody_byte_for_byte() {
    let rec = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-replayed-as-nobody.jsonl");
    drop(std::fs::remove_file(&rec));
    let out = demo(&[
        "--method",
        "read-send",
        "--size",
        "1M",
        "--json",
        "--record",
        rec.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Handed to the student: the recording is created 0600 for root.
    std::os::unix::fs::chown(&rec, Some(65534), Some(65534)).unwrap();
    let replay = |extra: &[&str]| {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .args([TRACER, "replay", rec.to_str().unwrap()])
            .args(extra)
            .output()
            .expect("setpriv (util-linux)")
    };
    let json = replay(&["--json"]);
    assert!(
        json.status.success(),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&json.stdout),
        String::from_utf8_lossy(&out.stdout)
    );
    let text = replay(&["--headless"]);
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).starts_with("read-send: 1 MiB in 16 chunks"));
    std::fs::remove_file(&rec).unwrap();
}

#[test]
#[ignore = "needs root to switch to an unprivileged user"]
fn unreadable_files_and_missing_privileges_are_one_line_each() {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-root-only");
    std::fs::write(&path, vec![7u8; 10000]).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = demo_as_nobody(&["--method", "sendfile", "--file", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot read") && err.contains("Permission denied"),
        "{err}"
    );
    // A readable input, but no right to load eBPF programs.
    let out = demo_as_nobody(&["--method", "sendfile", "--size", "64K", "--headless"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("CAP_BPF") && err.contains("sudo"), "{err}");
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn doctor_reports_each_steps_hook_and_why_not_better() {
    let out = Command::new(TRACER)
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let plan = v["plan"].as_array().unwrap();
    assert!(plan.len() >= 10, "{v}");
    for step in plan {
        // A hook, or nothing with the reason; every better hook not used has a reason.
        assert!(
            step["hook"].is_object() || step["evidence"].as_str().unwrap().starts_with("no hook: "),
            "{step}"
        );
        for not_used in step["not_used"].as_array().unwrap() {
            assert!(!not_used["why"].as_str().unwrap().is_empty(), "{step}");
            assert!(not_used["target"].is_string(), "{step}");
        }
    }
    // The syscall tracepoints are always the tool's floor.
    assert_eq!(plan[0]["hook"]["target"], "sys_enter");

    // What this kernel allows, measured here without the tracer's code: the doctor must
    // say exactly that, whichever way it goes.
    let caps = &v["caps"];
    assert_eq!(caps["kernel"], kernel::release());
    let btf = kernel::Btf::read();
    let mut tracepoints: Vec<&str> = tracer::probe::hooks::step_tracepoints()
        .filter(|tp| btf.has_tracepoint(tp))
        .collect();
    tracepoints.sort_unstable();
    tracepoints.dedup();
    assert_eq!(
        caps["tracepoints"],
        serde_json::json!(tracepoints),
        "{caps}"
    );
    if kernel::kprobes_built_in() {
        assert!(caps["kprobes"].is_null(), "{caps}");
    } else {
        assert_eq!(
            caps["kprobes"],
            "kprobes are not built into this kernel (no kprobe PMU in /sys/bus/event_source/devices)"
        );
    }
    let send = plan
        .iter()
        .find(|s| {
            s["step"]
                .as_str()
                .unwrap()
                .starts_with("copy / reference / pin")
        })
        .unwrap();
    let fentry = kernel::try_fentry(&btf, "tcp_sendmsg_locked");
    assert_eq!(caps["fentry_tried_on"], "tcp_sendmsg_locked", "{caps}");
    match fentry.tracer_words() {
        // fentry works: every function this build has an fexit program for is tried,
        // and the send decision is observed by fexit.
        None => {
            assert!(caps["fentry"].is_null(), "{caps}");
            assert!(caps["tried"][0].as_u64().unwrap() > 0, "{caps}");
            assert_eq!(send["hook"]["tier"], "fentry", "{send}");
        }
        // Refused (on this project's CI kernel: "refused with EPERM at program load"):
        // the tracer says how, tries no function, and the send decision comes from the
        // tracepoint tier.
        Some(words) => {
            assert_eq!(caps["fentry"], words.as_str(), "{caps}");
            assert_eq!(caps["tried"][0], 0, "{caps}");
            assert_eq!(caps["fentry_refused"], serde_json::json!({}), "{caps}");
            assert_ne!(send["hook"]["tier"], "fentry", "{send}");
        }
    }
}

/// The network namespaces of `pid`'s open descriptors (`net:[inode]`).
fn namespace_fds(pid: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .filter(|l| l.starts_with("net:["))
        .collect()
}

/// The network namespaces on the machine (those processes are in and those open
/// descriptors hold, as the demo's are), and the host's devices: what a `--link veth`
/// run must leave as it found them.
fn namespaces_and_devices() -> (Vec<String>, Vec<String>) {
    let mut ns = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(l) = std::fs::read_link(format!("/proc/{pid}/ns/net")) {
            ns.push(l.to_string_lossy().into_owned());
        }
        ns.extend(namespace_fds(&pid));
    }
    ns.sort();
    ns.dedup();
    let mut devices: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    devices.sort();
    (ns, devices)
}

/// A veth run: the sender's transmits are handed to the peer device (no NIC, no DMA).
fn across_a_veth(v: &Value) {
    assert_eq!((get(v, "cache_hits"), get(v, "cache_misses")), (PAGES, 0));
    assert_eq!((get(v, "dma_copies"), get(v, "dma_bytes")), (0, 0));
    let f = &v["sender"]["facts"];
    assert_eq!(f["devices"], serde_json::json!(["va"]), "{v}");
    assert!(f["peer_xmits"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(
        (&f["loopback_xmits"], &f["nic_xmits"]),
        (&0.into(), &0.into())
    );
    assert_eq!(v["receiver"]["observed"]["cpu_copy_bytes"], SIZE);
    assert!(
        difference(v, "dma_copies")["reason"]
            .as_str()
            .unwrap()
            .contains("the veth hands the socket buffer to its peer"),
        "{v}"
    );
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn sendfile_across_a_veth_copies_with_the_cpu_only_without_scatter_gather() {
    let before = namespaces_and_devices();
    // The article's third stage: the socket buffer gets page references and the device
    // takes the pages as they are.
    let v = run_json("sendfile", &["--link", "veth"]);
    across_a_veth(&v);
    assert_eq!((get(&v, "syscalls"), get(&v, "mode_switches")), (N, 2 * N));
    assert_eq!((get(&v, "cpu_copies"), get(&v, "cpu_copy_bytes")), (0, 0));
    assert_eq!((get(&v, "page_refs"), get(&v, "page_ref_bytes")), (N, SIZE));
    assert!(v["sender"]["facts"]["linear_xmits"].is_null(), "{v}");

    // The middle stage: the same references, then one CPU copy of every byte at the
    // device, which has no scatter-gather (one per linear skb).
    let v = run_json("sendfile", &["--link", "veth-nosg"]);
    across_a_veth(&v);
    assert_eq!((get(&v, "syscalls"), get(&v, "mode_switches")), (N, 2 * N));
    assert_eq!((get(&v, "page_refs"), get(&v, "page_ref_bytes")), (N, SIZE));
    let f = &v["sender"]["facts"];
    assert_eq!(get(&v, "cpu_copy_bytes"), SIZE, "{v}");
    assert_eq!(f["linear_xmit_bytes"], SIZE);
    assert_eq!(get(&v, "cpu_copies"), f["linear_xmits"].as_u64().unwrap());
    // At most one MSS (1448 bytes on this veth) per copy.
    assert!(get(&v, "cpu_copies") >= SIZE.div_ceil(1448), "{v}");
    assert!(
        difference(&v, "cpu_copy_bytes")["reason"]
            .as_str()
            .unwrap()
            .contains("no scatter-gather"),
        "{v}"
    );
    assert!(
        v["sender"]["facts"]["evidence"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.contains("net_dev_start_xmit (a linear skb")),
        "{v}"
    );
    assert_eq!(
        namespaces_and_devices(),
        before,
        "a veth run left something behind"
    );
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn a_killed_veth_run_leaves_nothing_and_a_missing_privilege_is_one_line() {
    let before = namespaces_and_devices();
    let mut child = Command::new(TRACER)
        .args([
            "demo",
            "--method",
            "read-send",
            "--size",
            "256M",
            "--chunk",
            "4K",
        ])
        .args(["--link", "veth-nosg", "--headless"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Until the namespaces are made (and the transfer is under way).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while namespace_fds(&child.id().to_string()).len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no namespaces appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        namespaces_and_devices(),
        before,
        "SIGKILL left something behind"
    );

    // Root without CAP_SYS_ADMIN and CAP_NET_ADMIN: the eBPF privileges are there, the
    // namespaces are not allowed.
    let out = Command::new("setpriv")
        .args(["--bounding-set", "-sys_admin,-net_admin", TRACER, "demo"])
        .args(["--method", "sendfile", "--size", "64K", "--headless"])
        .args(["--link", "veth"])
        .output()
        .expect("setpriv (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("CAP_NET_ADMIN"), "{err}");
    let out = demo(&["--method", "sendfile", "--link", "wifi", "--headless"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lo, veth, veth-nosg"), "{err}");
}
