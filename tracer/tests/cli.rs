//! The command line's bad-input paths: each gives one clear line and a failure status,
//! before anything is loaded (so these run without root).

use std::process::Command;

const TRACER: &str = env!("CARGO_BIN_EXE_tracer");

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(TRACER).args(args).output().unwrap();
    assert!(out.stdout.is_empty(), "nothing on stdout for an error");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn one_line_error(args: &[&str], needle: &str) {
    let (code, stderr) = run(args);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("tracer: error: "), "{stderr}");
    assert!(stderr.contains(needle), "{stderr:?} lacks {needle:?}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"));
}

#[test]
fn unknown_pid() {
    // Above the kernel's pid_max limit (4194304), so it can never exist.
    one_line_error(
        &["trace", "--json", "--pid", "4194305"],
        "no process with pid 4194305",
    );
}

#[test]
fn empty_process_name() {
    // A name not running yet is waited for (as root; see tests/watch.rs); an empty one is
    // refused before anything is loaded.
    one_line_error(&["trace", "--comm", ""], "--comm needs a process name");
}

#[test]
fn unknown_command() {
    one_line_error(
        &["trace", "--json", "--", "no-such-command-zz", "-x"],
        "command not found: no-such-command-zz",
    );
}

#[test]
fn cannot_write_the_output_file() {
    one_line_error(
        &["trace", "-o", "/nonexistent-dir/x.jsonl", "--", "true"],
        "cannot write the events to /nonexistent-dir/x.jsonl",
    );
}

#[test]
fn a_hostile_path_in_an_error_is_escaped() {
    // A newline would forge a second line; ESC, a C1 control, a right-to-left override
    // and an Arabic letter mark would drive the terminal or reorder the line.
    let path = "/nonexistent-dir/a\nfake\x1b[2J\u{85}\u{202e}lmth.exe\u{61c}";
    one_line_error(
        &["trace", "-o", path, "--", "true"],
        r"cannot write the events to /nonexistent-dir/a\nfake\x1b[2J\xc2\x85\xe2\x80\xaelmth.exe\xd8\x9c",
    );
}

#[test]
fn a_target_is_required_and_only_one() {
    let (code, stderr) = run(&["trace", "--json"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("required"), "{stderr}");
    let (code, stderr) = run(&["trace", "--pid", "1", "--", "true"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    let (code, stderr) = run(&["trace", "--pid", "abc"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("invalid value 'abc'"), "{stderr}");
}

#[test]
fn demo_bad_inputs() {
    one_line_error(
        &["demo", "--method", "foo"],
        "unknown method \"foo\": choose one of read-write, read-send, mmap-write, sendfile, splice, msg-zerocopy, io-uring, copy-file-range, or all",
    );
    one_line_error(
        &["demo", "--method", "sendfile", "--size", "0"],
        "--size must be at least 1 byte",
    );
    one_line_error(
        &["demo", "--method", "sendfile", "--size", "1X"],
        "unknown unit",
    );
    one_line_error(
        &["demo", "--method", "sendfile", "--chunk", "0"],
        "--chunk must be at least 1 byte",
    );
    let dir = env!("CARGO_TARGET_TMPDIR");
    one_line_error(
        &["demo", "--method", "sendfile", "--file", dir],
        "is a directory: --file needs a regular file",
    );
    one_line_error(
        &["demo", "--method", "sendfile", "--file", "/no/such/file"],
        "cannot read /no/such/file",
    );
    let empty = std::path::Path::new(dir).join("cli-empty-file");
    std::fs::write(&empty, b"").unwrap();
    one_line_error(
        &[
            "demo",
            "--method",
            "sendfile",
            "--file",
            empty.to_str().unwrap(),
        ],
        "is empty: there is nothing to send",
    );
    one_line_error(
        &["demo", "--method", "sendfile", "--expect", "cpu_copies"],
        "has no comparison",
    );
    one_line_error(
        &["demo", "--method", "sendfile", "--expect", "copies=0"],
        "unknown field \"copies\"",
    );
    one_line_error(
        &[
            "demo",
            "--method",
            "sendfile",
            "--expect",
            "cpu_copies=lots",
        ],
        "is not a number",
    );
}

#[test]
fn a_proc_file_is_not_called_empty() {
    // Its size is 0 whatever reading it gives: say so, not "empty".
    for cmd in ["demo", "transfer"] {
        one_line_error(
            &[cmd, "--method", "sendfile", "--file", "/proc/self/status"],
            "/proc/self/status is a /proc or /sys file whose size the kernel reports as 0",
        );
    }
}

#[test]
fn lesson_and_tui_bad_inputs() {
    one_line_error(
        &["lesson", "--method", "nope"],
        "unknown method \"nope\": choose one of read-send, sendfile-nogather, sendfile, read-write, mmap-write, splice, msg-zerocopy, io-uring, copy-file-range",
    );
    one_line_error(
        &["lesson", "--size", "0"],
        "--size and --chunk must be at least 1 byte",
    );
    one_line_error(&["lesson", "--chunk", "1X"], "unknown unit");
    // Standard output here is a pipe, not a terminal.
    one_line_error(&["lesson"], "tracer lesson is a TUI: run it in a terminal");
    one_line_error(
        &["demo", "--headless"],
        "--headless, --json, --expect and --record need --method METHOD (or all)",
    );
}

#[test]
fn doctor_bad_method() {
    one_line_error(&["doctor", "--method", "nope"], "unknown method \"nope\"");
}

#[test]
fn transfer_refuses_a_fifo_instead_of_waiting_for_a_writer() {
    let fifo = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-fifo");
    drop(std::fs::remove_file(&fifo));
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut child = Command::new(TRACER)
        .args(["transfer", "--method", "sendfile", "--file"])
        .arg(&fifo)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let done = child.try_wait().unwrap().is_some();
    if !done {
        drop(child.kill());
    }
    let out = child.wait_with_output().unwrap();
    std::fs::remove_file(&fifo).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(done, "still waiting on the FIFO after 20 s");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not a regular file"), "{stderr}");
}

#[test]
fn watch_bad_inputs() {
    let (code, stderr) = run(&["watch", "--headless"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("required"), "{stderr}");
    let (code, stderr) = run(&["watch", "--pid", "1", "--comm", "x"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    one_line_error(
        &["watch", "--headless", "--pid", "4194305"],
        "no process with pid 4194305",
    );
    one_line_error(
        &["watch", "--json", "--", "no-such-command-zz"],
        "command not found: no-such-command-zz",
    );
    one_line_error(
        &["watch", "--headless", "--comm", ""],
        "--comm needs a process name",
    );
    one_line_error(
        &["watch", "--pid", "1", "--interval", "0"],
        "--interval \"0\": at least 0.1 seconds",
    );
    one_line_error(
        &["watch", "--pid", "1", "--interval", "soon"],
        "not a number of seconds",
    );
    one_line_error(
        &["watch", "--pid", "1", "--expect", "method=zero-copy"],
        "unknown method \"zero-copy\": choose one of read-write",
    );
    one_line_error(
        &["watch", "--pid", "1", "--expect", "copies=0"],
        "unknown field \"copies\"",
    );
    one_line_error(
        &[
            "watch",
            "--headless",
            "--record",
            "/nonexistent-dir/x.jsonl",
            "--pid",
            "1",
        ],
        "cannot create the recording /nonexistent-dir/x.jsonl",
    );
    // Standard output here is a pipe, not a terminal.
    one_line_error(
        &["watch", "--pid", "1"],
        "the TUI needs a terminal on standard output: add --headless (or --json) for text",
    );
}

#[test]
fn a_demo_without_privileges_points_at_the_lesson() {
    // As root, the demo runs as nobody (setpriv drops the capabilities with the uid).
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let args = ["demo", "--headless", "--method", "sendfile"];
    let out = if root {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", TRACER])
            .args(args)
            .output()
            .unwrap()
    } else {
        Command::new(TRACER).args(args).output().unwrap()
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("tracer: error: tracing needs root"),
        "{stderr}"
    );
    assert!(stderr.contains("`tracer lesson`"), "{stderr}");
}

/// Runs `tracer lesson` on a pseudo-terminal (util-linux's `script`), waits for its
/// frames, ends it with `end` (given script's process and the tracer's pid) and returns
/// the tracer's exit status.
fn tui_status(end: impl FnOnce(&mut std::process::Child, i32)) -> Option<i32> {
    use std::{
        io::Read as _,
        process::Stdio,
        sync::{Arc, Mutex},
        time::{Duration, Instant},
    };
    let mut script = Command::new("script")
        .args([
            "-qefc",
            &format!("exec {TRACER} lesson --method sendfile"),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = script.stdout.take().unwrap();
    let reader = {
        let out = Arc::clone(&out);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                out.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    // Two frames drawn: the event loop (and its signal handlers) runs.
    let start = Instant::now();
    let frame = b"\x1b[?25l";
    while out
        .lock()
        .unwrap()
        .windows(frame.len())
        .filter(|w| w == frame)
        .count()
        < 2
    {
        assert!(start.elapsed() < Duration::from_secs(30), "no frames");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = script.id();
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let tracer: i32 = children.trim().parse().unwrap();
    end(&mut script, tracer);
    let status = script.wait().unwrap();
    reader.join().unwrap();
    status.code()
}

#[test]
fn the_tui_exits_with_128_plus_the_signal_as_headless_runs_do() {
    use std::io::Write as _;
    // Ctrl-C is a key in the raw terminal.
    let ctrl_c = tui_status(|script, _| {
        script.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    });
    assert_eq!(ctrl_c, Some(130));
    for (signal, status) in [
        (libc::SIGTERM, 143),
        (libc::SIGHUP, 129),
        (libc::SIGINT, 130),
    ] {
        // SAFETY: kill has no memory preconditions; the pid is our grandchild's.
        let got = tui_status(|_, tracer| assert_eq!(unsafe { libc::kill(tracer, signal) }, 0));
        assert_eq!(got, Some(status), "signal {signal}");
    }
    // q quits with 0.
    let q = tui_status(|script, _| script.stdin.as_mut().unwrap().write_all(b"q").unwrap());
    assert_eq!(q, Some(0));
}
