//! Root tests of `tracer watch`: the real probes on this kernel, watching a process the
//! tracer did not start as a workload of its own (`tracer transfer`, a process of its own),
//! and the exact ledger and method each transfer gets.
//!
//! `#[ignore]`d for a plain `cargo test`; `cargo xtask test` runs them as root, one at a
//! time.

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

mod loaded;
use loaded::assert_all_unloaded;

const TRACER: &str = env!("CARGO_BIN_EXE_tracer");
const SIZE: u64 = 8 << 20;
const CHUNK: u64 = 64 << 10;
const CHUNKS: u64 = SIZE / CHUNK;
const PAGES: u64 = SIZE / 4096;
/// `tracer transfer` hashes the file first (to check what the receiver got) in 1 MiB
/// pread64 calls.
const HASH_READS: u64 = SIZE >> 20;

fn temp_path(name: &str) -> PathBuf {
    // Not tmpfs: the target directory is on the build's disk (page cache, block I/O).
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("watch-{name}-{}", std::process::id()))
}

/// A file of SIZE bytes, cached (just written).
fn make_file(name: &str) -> PathBuf {
    let p = temp_path(name);
    std::fs::write(&p, vec![7u8; SIZE as usize]).unwrap();
    p
}

/// The report: the last line of standard output (the command's own output comes before).
fn report_of(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The transfers of `pid` whose method is `method`.
fn transfers<'v>(report: &'v Value, pid: u64, method: &str) -> Vec<&'v Value> {
    report["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["pid"] == pid && t["method"] == method)
        .collect()
}

fn field(t: &Value, f: &str) -> u64 {
    t["observed"][f]
        .as_u64()
        .unwrap_or_else(|| panic!("{f} in {t}"))
}

/// The pid `tracer transfer` ran as: every transfer is that process's.
fn pid_of(report: &Value) -> u64 {
    let all = report["transfers"].as_array().unwrap();
    let pid = all.first().map(|t| t["pid"].clone()).unwrap_or_default();
    assert!(all.iter().all(|t| t["pid"] == pid), "{report}");
    pid.as_u64()
        .unwrap_or_else(|| panic!("no transfer: {report}"))
}

/// `watch --headless --json -- tracer transfer --method M --file F`: its exit status and
/// report.
fn watch_transfer(method: &str, file: &Path) -> (Option<i32>, Value) {
    let out = Command::new(TRACER)
        .args(["watch", "--headless", "--json", "--expect"])
        .arg(format!("method={method}"))
        .args(["--", TRACER, "transfer", "--method", method, "--file"])
        .arg(file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(": expectations hold"),
        "the transfer is {method}: {stderr}"
    );
    (out.status.code(), report_of(&out.stdout))
}

/// The socket -> user transfer of the receiver: a receive, every byte copied once.
fn assert_receiver(report: &Value, pid: u64) {
    let rx: Vec<_> = transfers(report, pid, "other")
        .into_iter()
        .filter(|t| t["source"]["kind"] == "socket")
        .collect();
    assert_eq!(rx.len(), 1, "{report}");
    let rx = rx[0];
    assert_eq!(rx["destination"]["kind"], "user");
    assert!(
        rx["reason"].as_str().unwrap().starts_with("a receive"),
        "{rx}"
    );
    assert_eq!(rx["bytes"], SIZE);
    assert_eq!(field(rx, "cpu_copy_bytes"), SIZE);
    assert_eq!(rx["textbook"], Value::Null);
}

/// Whether the file's filesystem takes O_DIRECT reads (the transfer's hash reads bypass
/// the page cache there, and make no page-cache lookups).
fn direct_reads(file: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(file)
        .is_ok()
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn a_sendfile_transfer_is_watched_with_its_exact_ledger() {
    let file = make_file("sendfile");
    let (code, report) = watch_transfer("sendfile", &file);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["drops"], 0);
    assert!(report["retransmits"].is_u64(), "{report}");
    let pid = pid_of(&report);
    let sent = transfers(&report, pid, "sendfile");
    assert_eq!(sent.len(), 1, "{report}");
    let t = sent[0];
    assert_eq!(
        (t["bytes"].as_u64(), t["chunk"].as_u64()),
        (Some(SIZE), Some(CHUNK))
    );
    assert_eq!(t["comm"], "tracer");
    assert_eq!(t["destination"]["kind"], "socket");
    // Named while the transfer ran, unless the process was gone by then.
    if t["source"]["note"].is_null() {
        assert_eq!(t["source"]["path"], file.to_str().unwrap());
        assert!(
            t["destination"]["peer"]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:")
        );
    }
    let ledger: Vec<u64> = [
        "mode_switches",
        "syscalls",
        "cpu_copies",
        "cpu_copy_bytes",
        "dma_copies",
        "page_refs",
        "page_ref_bytes",
        "cache_hits",
        "cache_misses",
    ]
    .iter()
    .map(|f| field(t, f))
    .collect();
    assert_eq!(
        ledger,
        [2 * CHUNKS, CHUNKS, 0, 0, 0, CHUNKS, SIZE, PAGES, 0],
        "{t}"
    );
    assert_eq!(t["evidence"][0], format!("sendfile(): {CHUNKS} calls"));
    assert_eq!(t["textbook"]["mode_switches"], 2 * CHUNKS);
    assert_eq!(t["textbook"]["dma_copies"], 2 * CHUNKS);
    assert_eq!(t["conditions"]["cache"], "warm");
    // The integrity check's reads are a transfer of their own, into memory.
    let hash: Vec<_> = transfers(&report, pid, "other")
        .into_iter()
        .filter(|t| t["source"]["ino"] == sent[0]["source"]["ino"])
        .collect();
    assert_eq!(hash.len(), 1, "{report}");
    assert_eq!(field(hash[0], "syscalls"), HASH_READS);
    assert_receiver(&report, pid);
    std::fs::remove_file(&file).unwrap();
    assert_all_unloaded();
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn a_read_write_transfer_is_watched_with_its_exact_ledger() {
    let file = make_file("read-write");
    let direct = direct_reads(&file);
    let (code, report) = watch_transfer("read-write", &file);
    assert_eq!(code, Some(0), "{report}");
    let pid = pid_of(&report);
    let sent = transfers(&report, pid, "read-write");
    assert_eq!(sent.len(), 1, "{report}");
    let t = sent[0];
    assert_eq!(
        (t["bytes"].as_u64(), t["chunk"].as_u64()),
        (Some(SIZE), Some(CHUNK))
    );
    // read()+write() per chunk: four switches, two CPU copies. The hash's pread64 calls
    // went into memory too, and the model gives a file's reads to the transfer its next
    // write sends (it does not tell one buffer from another yet): they are counted here,
    // as CPU copies from the page cache, or where the filesystem takes O_DIRECT as the
    // disk's DMA into the hash's buffer (a DMA per block request, the file's bytes).
    let calls = 2 * CHUNKS + HASH_READS;
    let (copies, copied, dma_bytes) = if direct {
        (2 * CHUNKS, 2 * SIZE, SIZE)
    } else {
        (calls, 3 * SIZE, 0)
    };
    let hits = PAGES + if direct { 0 } else { PAGES };
    let ledger: Vec<u64> = [
        "mode_switches",
        "syscalls",
        "cpu_copies",
        "cpu_copy_bytes",
        "dma_bytes",
        "page_refs",
        "cache_hits",
        "cache_misses",
    ]
    .iter()
    .map(|f| field(t, f))
    .collect();
    assert_eq!(
        ledger,
        [2 * calls, calls, copies, copied, dma_bytes, 0, hits, 0],
        "{t}"
    );
    if direct {
        assert!(field(t, "dma_copies") >= HASH_READS, "{t}");
    } else {
        assert_eq!(field(t, "dma_copies"), 0, "{t}");
    }
    assert_eq!(
        t["evidence"][0],
        format!("pread64(): {HASH_READS} calls, read(): {CHUNKS} calls, write(): {CHUNKS} calls")
    );
    assert_eq!(
        t["per_mib"]["cpu_copies"].as_f64(),
        Some(copies as f64 / (SIZE >> 20) as f64)
    );
    assert_receiver(&report, pid);
    std::fs::remove_file(&file).unwrap();
    assert_all_unloaded();
}

/// Reads `child`'s standard error until a line contains `needle` (or 20 s pass); the
/// lines so far.
fn wait_for_line(child: &mut Child, needle: &str) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(needle) {
                return seen;
            }
        }
    }
    panic!("no line with {needle:?} within 20 s: {seen}");
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn watch_comm_waits_for_a_process_that_starts_later() {
    // A program named zzwatchme: a copy of the tracer, which runs a transfer.
    let name = "zzwatchme";
    let dir = temp_path("comm-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let program = dir.join(name);
    std::fs::copy(TRACER, &program).unwrap();
    let file = make_file("comm");
    let mut watch = Command::new(TRACER)
        .args(["watch", "--headless", "--json", "--comm", name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let said = wait_for_line(&mut watch, "is running: waiting for one to start");
    assert!(said.contains("probes attached"), "{said}");
    let out = Command::new(&program)
        .args(["transfer", "--method", "sendfile", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(watch.id() as i32, libc::SIGINT) };
    let done = watch.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(0));
    let report = report_of(&done.stdout);
    let sent: Vec<_> = report["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["method"] == "sendfile")
        .collect();
    assert_eq!(sent.len(), 1, "{report}");
    assert_eq!(sent[0]["comm"], name);
    assert_eq!(sent[0]["bytes"], SIZE);
    assert_eq!(field(sent[0], "syscalls"), CHUNKS);
    std::fs::remove_file(&file).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_all_unloaded();
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn a_recording_is_private_and_replays_to_the_same_ledger() {
    let file = make_file("record");
    let rec = temp_path("record.jsonl");
    let out = Command::new(TRACER)
        .args(["watch", "--json", "--record"])
        .arg(&rec)
        .args(["--", TRACER, "transfer", "--method", "sendfile", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = report_of(&out.stdout);
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(std::fs::metadata(&rec).unwrap().mode() & 0o777, 0o600);
    // The recording read back through the board gives the report's ledgers.
    let mut board = tracer::watch::Board::new();
    for line in std::fs::read_to_string(&rec).unwrap().lines() {
        if let tracer::demo::RecordLine::Event { method, event } =
            serde_json::from_str(line).unwrap()
        {
            assert_eq!(method, None);
            board.push(&event);
        }
    }
    board.finish();
    let replayed: Vec<Value> = board
        .reports()
        .iter()
        .map(|t| serde_json::to_value(&t.observed).unwrap())
        .collect();
    let live: Vec<Value> = report["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["observed"].clone())
        .collect();
    assert_eq!(replayed, live);
    // An existing recording is refused without --force.
    let again = Command::new(TRACER)
        .args(["watch", "--json", "--record"])
        .arg(&rec)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("add --force"));
    std::fs::remove_file(&rec).unwrap();
    std::fs::remove_file(&file).unwrap();
    assert_all_unloaded();
}
