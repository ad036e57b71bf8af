//! Root integration tests: load the real programs on this kernel, run a known workload,
//! and assert exactly what came out of the ring buffer.
//!
//! They need root (or CAP_BPF + CAP_PERFMON) and the eBPF programs built in, so they are
//! `#[ignore]`d for a plain `cargo test`; `cargo xtask test` runs them as root, one at a
//! time (`--test-threads=1`: they load programs and count what is loaded).

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use tracer::{
    event::{Event, KernelConsts, Payload},
    model::Method,
    probe::LoadOptions,
    trace::Session,
    workload::{self, Report},
};

#[expect(dead_code, reason = "this test target uses a part of the module")]
mod kernel;
mod loaded;

use loaded::{assert_all_unloaded, tracer_programs};

const TRACER: &str = env!("CARGO_BIN_EXE_tracer");

fn temp_path(name: &str) -> PathBuf {
    // Not tmpfs: /tmp may be tmpfs, whose reads bypass the page-cache read path; the
    // target directory is on the build's disk.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    dir.join(format!("{name}-{}", std::process::id()))
}

/// This kernel's value of `enum iter_type` `name` (renumbered in 6.0, 6.5 and 6.7).
fn iter_type_of(consts: &KernelConsts, name: &str) -> u8 {
    consts
        .iter_types
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .expect(name)
}

/// Runs `method` over a fresh file of `size` bytes while this process is traced; returns
/// the transfer's report and every event.
/// Writes `size` bytes of the workload's pattern to a new `path`.
fn make_file(path: &Path, size: u64) {
    let f = std::fs::File::create(path).expect("test file");
    workload::write_pattern(&f, size).expect("test file");
}

fn traced_transfer(
    method: Method,
    size: u64,
    chunk: usize,
    also: impl FnOnce(),
) -> (Report, Vec<Event>, u64, KernelConsts) {
    let file = temp_path(method.name());
    make_file(&file, size);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let mut session = Session::start(&LoadOptions {
        // The other process below is our child: it must not be followed.
        follow_forks: false,
        comm: None,
    })
    .unwrap_or_else(|e| panic!("loading the probes (run as root through `cargo xtask test`): {e}"));
    session.trace_pid(std::process::id()).unwrap();
    let opts = workload::Options {
        chunk,
        scratch_dir: file.parent().expect("a directory").to_path_buf(),
        link: workload::Link::Loopback,
    };
    let report = workload::send_file(&file, method, &opts).expect("the transfer");
    also();
    // No async reads while tracing ourselves: our own reads would make events.
    let mut events = Vec::new();
    session.drain(&mut events);
    let drops = session.drops();
    assert_eq!(
        session.read_failures(),
        0,
        "events lost to failed kernel reads"
    );
    let consts = session.consts().clone();
    drop(session);
    std::fs::remove_file(&file).unwrap();
    (report, events, drops, consts)
}

/// Syscalls that move file or socket data (the others, e.g. connect, fcntl, close, are
/// mode switches too but move no payload).
const DATA_PATH: &[&str] = &[
    "read",
    "write",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "sendfile",
    "splice",
    "sendto",
    "sendmsg",
    "recvfrom",
    "recvmsg",
    "copy_file_range",
];

/// The data-path syscalls the sender thread made during the transfer (every one of them,
/// and only them, falls between the report's `start_ns` and `end_ns`): (name, fd, ret).
fn sender_syscalls(report: &Report, events: &[Event]) -> Vec<(String, i64, i64)> {
    let mut out = Vec::new();
    let mut pending: Option<(String, i64)> = None;
    let during = report.start_ns..=report.end_ns;
    for e in events
        .iter()
        .filter(|e| e.tid == report.sender_tid && during.contains(&e.ts_ns))
    {
        match &e.payload {
            Payload::SyscallEnter { nr, args, .. } => {
                let name = tracer::syscalls::name(*nr).into_owned();
                let fd = args[0] as i32 as i64;
                pending = DATA_PATH.contains(&name.as_str()).then_some((name, fd));
            }
            Payload::SyscallExit { nr, ret } => {
                if let Some((name, fd)) = pending.take() {
                    assert_eq!(name, tracer::syscalls::name(*nr), "exit matches its enter");
                    out.push((name, fd, *ret));
                }
            }
            _ => {}
        }
    }
    out
}

/// The sender thread's TCP send-loop iterations: (msg_flags, iter_type, sk).
fn sender_sends(report: &Report, events: &[Event]) -> Vec<(u32, u8, u64)> {
    events
        .iter()
        .filter(|e| e.tid == report.sender_tid)
        .filter_map(|e| match &e.payload {
            Payload::TcpSendmsgLocked {
                msg_flags,
                iter_type,
                sk,
                ..
            } => Some((*msg_flags, *iter_type, *sk)),
            _ => None,
        })
        .collect()
}

/// The socket (`sk`) this process's payload left from on loopback: the sender's (the
/// receiver's socket only acknowledges).
fn data_socket(events: &[Event]) -> u64 {
    let sks: std::collections::BTreeSet<u64> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::NetDevStartXmit {
                sk,
                owner_pid,
                data_len,
                ..
            } if *owner_pid == std::process::id() && *data_len > 0 => Some(*sk),
            _ => None,
        })
        .collect();
    assert_eq!(sks.len(), 1, "payload left from one socket: {sks:x?}");
    sks.into_iter().next().unwrap()
}

/// The sender's send iterations where this kernel has the `tcp:tcp_sendmsg_locked`
/// tracepoint (6.16+), and none where it does not; and the sender's socket, which every
/// send names.
fn checked_sends(
    report: &Report,
    events: &[Event],
    btf: &kernel::Btf,
) -> (Vec<(u32, u8, u64)>, u64) {
    let sends = sender_sends(report, events);
    let sk = data_socket(events);
    if btf.has_tracepoint("tcp_sendmsg_locked") {
        assert!(!sends.is_empty(), "tcp_sendmsg_locked not seen");
        assert!(
            sends.iter().all(|s| s.2 == sk),
            "{sends:x?}, payload from {sk:x}"
        );
    } else {
        assert!(
            sends.is_empty(),
            "tcp_sendmsg_locked events on kernel {} that has no such tracepoint",
            kernel::release()
        );
    }
    (sends, sk)
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn sendfile_is_seen_as_splice_pages_and_adds_up() {
    let size = 4 << 20;
    let (report, events, drops, consts) = traced_transfer(Method::Sendfile, size, 1 << 20, || {});
    assert_eq!(drops, 0);
    let calls = sender_syscalls(&report, &events);
    // Exactly: sendfile(sock, file) calls, nothing else, adding up to the size.
    assert!(!calls.is_empty(), "no sendfile seen");
    let sock_fd = calls[0].1;
    for (name, fd, ret) in &calls {
        assert_eq!((name.as_str(), *fd), ("sendfile", sock_fd), "{calls:?}");
        assert!(*ret > 0, "{calls:?}");
    }
    assert_eq!(calls.iter().map(|c| c.2).sum::<i64>(), size as i64);
    assert_eq!(calls.len(), 4, "1 MiB per call: {calls:?}");
    // The sendfile enter carries its decoded arguments.
    assert!(events.iter().any(|e| matches!(&e.payload,
        Payload::SyscallEnter { nr: 40, args, .. } if args[0] as i64 == sock_fd
            && args[1] as i64 != sock_fd && args[3] == 1 << 20)));

    // Every TCP send iteration of the sender references page-cache pages.
    let btf = kernel::Btf::read();
    let (sends, sk) = checked_sends(&report, &events, &btf);
    for (flags, iter_type, _) in &sends {
        assert_eq!(
            tracer::event::send_payload(*flags),
            "splice_pages",
            "flags {flags:#x}"
        );
        assert_eq!(
            *iter_type,
            iter_type_of(&consts, "bvec"),
            "BVEC over the pipe's pages"
        );
    }
    // And the skbs that left carry shared page-cache frags (SKBFL_SHARED_FRAG) on lo.
    let xmits: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.payload {
            // Data segments only (SYN, ACK and FIN carry no frags).
            Payload::NetDevStartXmit {
                sk: s,
                shinfo_flags,
                dev,
                owner_pid,
                data_len,
                ..
            } if *s == sk && *data_len > 0 => {
                Some((*shinfo_flags, dev.clone(), *owner_pid, *data_len))
            }
            _ => None,
        })
        .collect();
    assert!(!xmits.is_empty());
    for (flags, dev, owner, _) in &xmits {
        assert_eq!(
            (flags & 2, dev.as_str(), *owner),
            (2, "lo", std::process::id())
        );
    }
    let lengths: Vec<u64> = events
        .iter()
        .filter(|e| e.tid == report.sender_tid)
        .filter_map(|e| match &e.payload {
            Payload::SockSendLength(s) if s.sk == sk => Some(s.ret as u64),
            _ => None,
        })
        .collect();
    if btf.has_tracepoint("sock_send_length") {
        let sent: u64 = lengths.iter().sum();
        assert_eq!(sent, size, "sock_send_length adds up to the file");
    } else {
        assert!(
            lengths.is_empty(),
            "sock_send_length without its tracepoint"
        );
    }
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn read_write_is_seen_call_by_call_and_copies_a_user_buffer() {
    let size: u64 = 1 << 20;
    let chunk = 64 << 10;
    // Another process runs while we trace ourselves: none of its syscalls may appear.
    let other_file = temp_path("other");
    make_file(&other_file, 1 << 20);
    let mut other_pid = 0;
    let (report, events, drops, consts) = traced_transfer(Method::ReadWrite, size, chunk, || {
        let child = Command::new("dd")
            .arg(format!("if={}", other_file.display()))
            .args(["of=/dev/null", "bs=4096"])
            .stderr(Stdio::null())
            .spawn()
            .expect("dd");
        other_pid = child.id();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
    });
    std::fs::remove_file(&other_file).unwrap();
    assert_eq!(drops, 0);
    assert!(other_pid > 0);
    let theirs: Vec<_> = events.iter().filter(|e| e.pid == other_pid).collect();
    assert!(
        theirs.is_empty(),
        "events of another process: {:?}",
        &theirs[..theirs.len().min(3)]
    );
    let ours = events
        .iter()
        .filter(|e| e.pid == std::process::id())
        .count();
    assert!(ours > 0);

    // Exactly: 16 x (read 64 KiB from the file, write 64 KiB to the socket), and no read
    // returning 0 at the end (the sender reads exactly the file's size).
    let calls = sender_syscalls(&report, &events);
    assert!(calls.len() >= 2, "{calls:?}");
    let (file_fd, sock_fd) = (calls[0].1, calls[1].1);
    assert_ne!(file_fd, sock_fd);
    let mut expected = Vec::new();
    for _ in 0..size / chunk as u64 {
        expected.push(("read".to_string(), file_fd, chunk as i64));
        expected.push(("write".to_string(), sock_fd, chunk as i64));
    }
    assert_eq!(calls, expected);

    // write() sends from a user buffer (ITER_UBUF), copied into the socket buffer.
    let (sends, sk) = checked_sends(&report, &events, &kernel::Btf::read());
    if !sends.is_empty() {
        assert!(sends.len() >= 16, "{} sends", sends.len());
    }
    for (flags, iter_type, _) in &sends {
        assert_eq!(tracer::event::send_payload(*flags), "copy");
        assert_eq!(
            *iter_type,
            iter_type_of(&consts, "ubuf"),
            "a user buffer (ITER_UBUF)"
        );
    }
    let copied: Vec<u8> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::NetDevStartXmit {
                sk: s,
                shinfo_flags,
                data_len,
                ..
            } if *s == sk && *data_len > 0 => Some(*shinfo_flags),
            _ => None,
        })
        .collect();
    assert!(!copied.is_empty());
    assert!(
        copied.iter().all(|f| *f == 0),
        "copied payload has no SKBFL flags: {copied:?}"
    );
    // The receiver (our other thread) copies every byte out of the skbs.
    let received: i64 = events
        .iter()
        .filter(|e| Some(e.tid) == report.receiver_tid)
        .filter_map(|e| match &e.payload {
            Payload::SkbCopyDatagramIovec { len, .. } => Some(*len as i64),
            _ => None,
        })
        .sum();
    assert_eq!(received, size as i64);
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn cli_traces_a_command_and_unloads_everything_at_exit() {
    let out_file = temp_path("cli.jsonl");
    let script = r#"
import os, socket, threading
size = 10 * 1024 * 1024
path = os.environ["SRC"]
with open(path, "wb") as f:
    f.write(b"z" * size)
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
got = [0]
def recv():
    c, _ = srv.accept()
    while True:
        b = c.recv(1 << 20)
        if not b: break
        got[0] += len(b)
t = threading.Thread(target=recv); t.start()
s = socket.create_connection(srv.getsockname())
with open(path, "rb") as f:
    off = 0
    while off < size:
        off += os.sendfile(s.fileno(), f.fileno(), off, size - off)
s.close(); t.join(); os.unlink(path)
assert got[0] == size, got[0]
"#;
    let src = temp_path("cli-src");
    let mut child = Command::new(TRACER)
        .args(["trace", "--json", "-o"])
        .arg(&out_file)
        .args(["--", "python3", "-c", script])
        .env("SRC", &src)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // While it runs, our programs are loaded...
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen_loaded = Vec::new();
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        seen_loaded = tracer_programs();
        if !seen_loaded.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tracer failed: {stderr}");
    assert!(
        !seen_loaded.is_empty(),
        "no tracer_ program seen loaded while tracing"
    );
    // ... and after it exits, none is.
    assert_all_unloaded();
    assert!(
        stderr.contains("command exited:") && stderr.contains(" 0 dropped"),
        "{stderr}"
    );

    let text = std::fs::read_to_string(&out_file).unwrap();
    std::fs::remove_file(&out_file).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for e in &events {
        for key in ["event", "ts_ns", "pid", "tid", "comm"] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
    }
    // The trace starts at the command's exec, not in the tracer's forked child.
    assert_eq!(events[0]["event"], "process_exec");
    // (Transmit and block-completion events carry the task they ran in, which can be any,
    // and the owner separately; syscalls are always the traced task's own.)
    let syscalls = events
        .iter()
        .filter(|e| e["event"].as_str().unwrap().starts_with("syscall_"));
    assert!(syscalls.clone().all(|e| e["comm"] != "tracer"));
    assert!(syscalls.clone().count() > 100);
    let sendfile_total: i64 = events
        .iter()
        .filter(|e| e["event"] == "syscall_exit" && e["syscall"] == "sendfile")
        .map(|e| e["ret"].as_i64().unwrap())
        .sum();
    assert_eq!(sendfile_total, 10 * 1024 * 1024);
    // The sends of the file's pages, where the kernel has their tracepoint (6.16+).
    let mut sends = events.iter().filter(|e| e["event"] == "tcp_sendmsg_locked");
    if kernel::Btf::read().has_tracepoint("tcp_sendmsg_locked") {
        assert!(sends.any(|e| e["payload"] == "splice_pages" && e["iter"] == "bvec"));
    } else {
        assert_eq!(sends.next(), None, "no such tracepoint here");
    }
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "net_dev_start_xmit" && e["payload"] == "spliced_pages")
    );
    let count_line = stderr
        .lines()
        .find(|l| l.contains("command exited:"))
        .unwrap();
    assert!(
        count_line.contains(&format!(": {} events", events.len())),
        "{count_line}"
    );
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn a_msg_zerocopy_send_carries_its_sockets_zero_copy_inputs_from_entry() {
    // Two MSG_ZEROCOPY sends, on a socket with SO_ZEROCOPY (60) and on one without: the
    // copy-or-pin decision must be known at sys_enter, for kernels with no send hook.
    let script = r#"
import socket
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(2)
a = socket.create_connection(srv.getsockname()); ra, _ = srv.accept()
a.setsockopt(socket.SOL_SOCKET, 60, 1)
a.send(b"x" * 65536, 0x4000000)
b = socket.create_connection(srv.getsockname()); rb, _ = srv.accept()
b.send(b"y" * 4096, 0x4000000)
"#;
    let out = Command::new(TRACER)
        .args(["trace", "--json", "--", "python3", "-c", script])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tracer failed: {stderr}");
    let sends: Vec<(u64, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "syscall_enter" && e["syscall"] == "sendto")
        .map(|e| {
            (
                e["len"].as_u64().unwrap(),
                e["so_zerocopy"].as_str().unwrap_or("not read").to_string(),
            )
        })
        .collect();
    assert_eq!(
        sends,
        [(65536, "yes".to_string()), (4096, "no".to_string())],
        "{stderr}"
    );
}

#[test]
#[ignore = "needs root to switch to an unprivileged user"]
fn unprivileged_user_gets_one_line_naming_the_capabilities() {
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .args([TRACER, "trace", "--json", "--", "true"])
        .output()
        .expect("setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("CAP_BPF") && stderr.contains("CAP_PERFMON") && stderr.contains("sudo"),
        "{stderr}"
    );
}

/// Starts the tracer with `args`, sends it SIGTERM once its programs are loaded (and it
/// has had a moment to start its target), and returns how it ended and its stderr.
fn sigterm_once_loaded(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut tracer = Command::new(TRACER)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while tracer_programs().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: sending SIGTERM to our own child.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGTERM) };
    let status = tracer.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(tracer.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn exit_code_of_the_command_is_passed_on_and_sigterm_ends_a_pid_trace() {
    let out = Command::new(TRACER)
        .args(["trace", "--", "sh", "-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let (status, stderr) =
        sigterm_once_loaded(&["trace", "--json", "--pid", &sleeper.id().to_string()]);
    // Ended by the signal: 128 + SIGTERM, as a shell and the demo say it.
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{stderr}");
    assert!(stderr.contains("terminated:"), "{stderr}");
    assert_all_unloaded();
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();

    // SIGTERM to a trace of our own command goes to the command; the trace ends when it
    // exits, with its status.
    let (status, stderr) = sigterm_once_loaded(&["trace", "--", "sleep", "30"]);
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{stderr}");
    assert!(stderr.contains("command exited:"), "{stderr}");
    assert_all_unloaded();
}
