//! The tracer runs as root on other people's processes and files: these tests play the
//! other people. A traced process names itself with escape sequences, an output path is a
//! symbolic link planted in a shared directory, the disk fills up, the reader of the output
//! goes away, the tracer is killed with SIGKILL, a user runs it through sudo.
//!
//! They need root (they mount filesystems, switch users and load the eBPF programs), so
//! they are `#[ignore]`d for a plain `cargo test`; `cargo xtask test` runs them as root.
//! `HOSTILE_TRACER=/path/to/tracer` runs them against another build (an older one, to see
//! them fail).

use std::{
    os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

mod loaded;
use loaded::{all_unloaded, tracer_programs};

/// The tracer under test.
fn tracer() -> Command {
    let bin = std::env::var_os("HOSTILE_TRACER").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_tracer")),
        PathBuf::from,
    );
    Command::new(bin)
}

fn assert_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "these tests need root: run them through `cargo xtask test`"
    );
}

/// A fresh directory on the build's disk (not tmpfs), removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("hostile-{name}-{}", std::process::id()));
        drop(std::fs::remove_dir_all(&dir));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The directory's entries, sorted.
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        drop(std::fs::remove_dir_all(&self.0));
    }
}

/// Writes `size` bytes of a pattern to `path` with mode 0600 (a file only root may read).
fn secret_file(path: &Path, size: usize) {
    let block: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(path, block).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The targets of process `pid`'s open file descriptors: (fd path, link target).
fn open_files(pid: u32) -> Vec<(PathBuf, String)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let p = e.ok()?.path();
        let target = std::fs::read_link(&p).ok()?;
        Some((p, target.to_string_lossy().into_owned()))
    })
    .collect()
}

/// A tmpfs of `size` bytes mounted on a fresh directory, unmounted when dropped.
struct Tmpfs(TempDir);

impl Tmpfs {
    fn new(name: &str, size: &str) -> Self {
        let dir = TempDir::new(name);
        let target = std::ffi::CString::new(dir.0.to_str().unwrap()).unwrap();
        let opts = std::ffi::CString::new(format!("size={size},mode=0755")).unwrap();
        // SAFETY: NUL-terminated strings; tmpfs takes its options as a string.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                opts.as_ptr().cast(),
            )
        };
        assert_eq!(rc, 0, "mount tmpfs: {}", std::io::Error::last_os_error());
        Self(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let target = std::ffi::CString::new(self.0.0.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path we mounted; MNT_DETACH in case a file is open.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

fn kill9(child: &mut std::process::Child) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    drop(child.wait());
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn copy_file_range_copy_of_a_private_file_is_private_and_unnamed() {
    assert_root();
    let dir = TempDir::new("cfr");
    let secret = dir.join("SECRET");
    secret_file(&secret, 64 << 20);
    let mut demo = tracer()
        .args([
            "demo",
            "--method",
            "copy-file-range",
            "--chunk",
            "4K",
            "--headless",
        ])
        .arg("--file")
        .arg(&secret)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Watch the copy while it is made: the demo's descriptors and the directory.
    let deadline = Instant::now() + Duration::from_secs(60);
    let dir_prefix = dir.0.to_string_lossy().into_owned();
    let mut copy = None;
    while copy.is_none() && Instant::now() < deadline && demo.try_wait().unwrap().is_none() {
        let named: Vec<String> = dir
            .entries()
            .into_iter()
            .filter(|n| n != "SECRET")
            .collect();
        if !named.is_empty() {
            kill9(&mut demo);
            panic!("the copy has a name in the input's directory: {named:?}");
        }
        copy = open_files(demo.id())
            .into_iter()
            .find(|(_, target)| target.starts_with(&dir_prefix) && !target.ends_with("/SECRET"));
        if copy.is_none() {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let Some((fd, target)) = copy else {
        kill9(&mut demo);
        panic!("never saw the demo's copy open");
    };
    let mode = std::fs::metadata(&fd).map(|m| m.mode() & 0o777);
    // Killed while it copies: nothing may be left behind.
    kill9(&mut demo);
    assert!(
        target.ends_with("(deleted)"),
        "the copy has a name: {target}"
    );
    assert_eq!(mode.unwrap(), 0o600, "the copy of a 0600 file: {target}");
    assert_eq!(dir.entries(), ["SECRET"]);
}

/// A process that names itself (prctl PR_SET_NAME) with a terminal title and clear-screen
/// sequence, then with a newline and a fake line, and makes a syscall under each name.
const HOSTILE_NAMES: &str = r#"
import ctypes, os
libc = ctypes.CDLL(None)
for name in (b"\x1b]0;pwned\x07\x1b[2J", b"a\nfake"):
    libc.prctl(15, name, 0, 0, 0)
    os.getppid()
"#;

/// Names that reorder or hide text rather than drive the terminal: a C1 control (CSI), a
/// right-to-left override, and format characters (an Arabic letter mark, a soft hyphen,
/// a zero-width space).
const BIDI_NAMES: &str = r#"
import ctypes, os
libc = ctypes.CDLL(None)
for name in ("a\u009b2Jb", "x\u202egpj.exe", "y\u061cz\u00ad\u200b"):
    libc.prctl(15, name.encode(), 0, 0, 0)
    os.getppid()
"#;

/// Whether `line` starts like an event line: `  1234.567890 `.
fn starts_with_timestamp(line: &str) -> bool {
    let Some((ts, _)) = line.trim_start().split_once(' ') else {
        return false;
    };
    let Some((secs, micros)) = ts.split_once('.') else {
        return false;
    };
    !secs.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit())
        && micros.len() == 6
        && micros.bytes().all(|b| b.is_ascii_digit())
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn a_process_named_with_escape_sequences_cannot_drive_the_terminal() {
    assert_root();
    let out = tracer()
        .args(["trace", "--", "python3", "-c", HOSTILE_NAMES])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for raw in [0x1b, 0x07] {
        assert!(
            !out.stdout.contains(&raw),
            "a raw {raw:#x} reached the output"
        );
    }
    let text = String::from_utf8(out.stdout).expect("UTF-8 text");
    for line in text.lines() {
        assert!(starts_with_timestamp(line), "not an event line: {line:?}");
    }
    for escaped in [r"\x1b]0;pwned\x07\x1b[2J", r"a\nfake"] {
        assert!(
            text.lines()
                .any(|l| l.contains(escaped) && l.contains("syscall=getppid")),
            "no getppid line shows {escaped}"
        );
    }

    // JSON: serde escapes; every line parses and carries the name as it is.
    let out = tracer()
        .args(["trace", "--json", "--", "python3", "-c", HOSTILE_NAMES])
        .output()
        .unwrap();
    assert!(out.status.success());
    let comms: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            v["comm"].as_str().unwrap().to_string()
        })
        .collect();
    for name in ["\x1b]0;pwned\x07\x1b[2J", "a\nfake"] {
        assert!(comms.iter().any(|c| c == name), "{name:?} not in {comms:?}");
    }
}

/// The counts line `trace` ends with.
fn summary(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.contains(" events") && l.contains(" dropped"))
        .unwrap_or_else(|| panic!("no counts line: {stderr}"))
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn trace_output_on_a_full_disk_fails_loudly_and_stops_the_command() {
    assert_root();
    // /dev/full refuses every write: the command is stopped, not left running untraced.
    let dir = TempDir::new("full");
    let marker = dir.join("still-ran");
    let out = tracer()
        .args(["trace", "--json", "-o", "/dev/full", "--", "sh", "-c"])
        .arg(format!("sleep 3; touch {}", marker.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write to /dev/full: No space left on device"),
        "{stderr}"
    );
    assert!(stderr.contains("stopping the command"), "{stderr}");
    assert!(summary(&stderr).contains(" 0 events written"), "{stderr}");
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !marker.exists(),
        "the command ran on after the output failed"
    );

    // A filesystem that fills up: an error naming the file, whole lines only, counted.
    let fs = Tmpfs::new("tiny-o", "64k");
    let file = fs.0.join("events.jsonl");
    let out = tracer()
        .args(["trace", "--json", "-o"])
        .arg(&file)
        .args([
            "--",
            "sh",
            "-c",
            "for i in $(seq 1 300); do cat /etc/hostname; done >/dev/null; exit 7",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot write to {}: No space left on device",
            file.display()
        )),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("a cut line ({e}): {line}"));
    }
    assert!(text.ends_with('\n'));
    let counted = format!(": {} events written", text.lines().count());
    assert!(summary(&stderr).contains(&counted), "{stderr}");
}

/// Waits until `pid` has a file open under `dir` (or exits): returns whether it did.
fn wait_open_under(pid: u32, dir: &Path, timeout: Duration) -> bool {
    let prefix = dir.to_string_lossy().into_owned();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return false;
        }
        if open_files(pid).iter().any(|(_, t)| t.starts_with(&prefix)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn a_demo_killed_with_sigkill_leaves_nothing_and_old_leftovers_are_cleared() {
    assert_root();
    let tmp = TempDir::new("sigkill");
    // What an older version left when it was killed: its directory and a large input.
    let old = tmp.join("tracer-demo-4194305-0");
    std::fs::create_dir(&old).unwrap();
    std::fs::write(old.join("input"), vec![0u8; 1 << 20]).unwrap();
    for when in [Duration::ZERO, Duration::from_millis(1500)] {
        let mut demo = tracer()
            .args([
                "demo",
                "--method",
                "read-write",
                "--size",
                "256M",
                "--chunk",
                "4K",
            ])
            .arg("--headless")
            .env("TMPDIR", &tmp.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Killed while it writes its input, then while it sends it.
        assert!(
            wait_open_under(demo.id(), &tmp.0, Duration::from_secs(30)),
            "the demo never opened its input under {}",
            tmp.0.display()
        );
        std::thread::sleep(when);
        kill9(&mut demo);
        assert_eq!(
            tmp.entries(),
            Vec::<String>::new(),
            "left behind after SIGKILL (at {when:?})"
        );
    }
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn root_ignores_a_tmpdir_it_does_not_own_and_checks_for_room() {
    assert_root();
    let users = TempDir::new("user-tmpdir");
    std::os::unix::fs::chown(&users.0, Some(65534), Some(65534)).unwrap();
    let out = tracer()
        .args(["demo", "--method", "sendfile", "--size", "1M", "--headless"])
        .env("TMPDIR", &users.0)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("is ignored"), "{stderr}");
    assert_eq!(users.entries(), Vec::<String>::new(), "root wrote in it");

    // Too large for the filesystem: one line before anything is written.
    let fs = Tmpfs::new("small-tmpdir", "1m");
    let out = tracer()
        .args(["demo", "--method", "sendfile", "--size", "8M", "--headless"])
        .env("TMPDIR", &fs.0.0)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--size 8.0 MiB:") && stderr.contains("has only"),
        "{stderr}"
    );
    assert_eq!(fs.0.entries(), Vec::<String>::new());
}

/// `tracer trace -o /dev/null [ARGS] -- sh -c 'id -u; id -G'`'s standard output, with
/// `env` set (and SUDO_* cleared first).
fn ids_of_traced_command(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = tracer();
    cmd.args(["trace", "-o", "/dev/null"])
        .args(args)
        .args(["--", "sh", "-c", "id -u; id -G"])
        .env_remove("SUDO_UID")
        .env_remove("SUDO_GID")
        .env_remove("SUDO_USER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn a_command_runs_as_the_user_who_ran_sudo_or_as_u_says() {
    assert_root();
    // Through sudo: as the invoking user, with that user's groups (not root's).
    let sudo = [
        ("SUDO_UID", "65534"),
        ("SUDO_GID", "65534"),
        ("SUDO_USER", "nobody"),
    ];
    assert_eq!(ids_of_traced_command(&[], &sudo), "65534\n65534\n");
    // -u, as strace and perf take it.
    assert_eq!(
        ids_of_traced_command(&["-u", "nobody"], &[]),
        "65534\n65534\n"
    );
    // -u root through sudo, and root without sudo: root.
    assert_eq!(ids_of_traced_command(&["-u", "root"], &sudo), "0\n0\n");
    assert_eq!(ids_of_traced_command(&[], &[]), "0\n0\n");
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn output_files_are_new_private_and_never_written_through_a_link() {
    assert_root();
    let dir = TempDir::new("links");
    let target = dir.join("target");
    std::fs::write(&target, b"precious").unwrap();
    // A link planted where the output is to go (as in a shared directory).
    let link = dir.join("out.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let rec_link = dir.join("rec.jsonl");
    std::os::unix::fs::symlink(&target, &rec_link).unwrap();
    for force in [false, true] {
        let mut trace = tracer();
        trace.args(["trace", "-o"]).arg(&link);
        let mut demo = tracer();
        demo.args(["demo", "--method", "sendfile", "--size", "64K", "--record"])
            .arg(&rec_link);
        for cmd in [&mut trace, &mut demo] {
            if force {
                cmd.arg("--force");
            }
        }
        trace.args(["--", "true"]);
        for cmd in [&mut trace, &mut demo] {
            let out = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert!(stderr.contains("symbolic link"), "{stderr}");
        }
    }
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");

    // An existing file: refused without --force; with it, truncated and made 0600.
    let existing = dir.join("existing.jsonl");
    std::fs::write(&existing, b"keep me").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = tracer()
        .args(["trace", "-o"])
        .arg(&existing)
        .args(["--", "true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("add --force"), "{stderr}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
    let out = tracer()
        .args(["trace", "--force", "-o"])
        .arg(&existing)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let meta = std::fs::metadata(&existing).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert!(
        !std::fs::read_to_string(&existing)
            .unwrap()
            .contains("keep me")
    );

    // A new file is 0600.
    let new = dir.join("new.jsonl");
    let out = tracer()
        .args(["trace", "--json", "-o"])
        .arg(&new)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(std::fs::metadata(&new).unwrap().mode() & 0o777, 0o600);
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn a_recording_never_overwrites_its_input_and_a_full_disk_keeps_the_report() {
    assert_root();
    let dir = TempDir::new("same-file");
    let input = dir.join("input.bin");
    secret_file(&input, 1 << 20);
    let before = std::fs::read(&input).unwrap();
    let hard = dir.join("hard-link.bin");
    std::fs::hard_link(&input, &hard).unwrap();
    for (record, force) in [(&input, false), (&input, true), (&hard, true)] {
        let mut cmd = tracer();
        cmd.args(["demo", "--method", "sendfile", "--headless", "--file"])
            .arg(&input)
            .arg("--record")
            .arg(record);
        if force {
            cmd.arg("--force");
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("is the --file input itself"), "{stderr}");
        assert_eq!(std::fs::read(&input).unwrap(), before, "the input changed");
    }

    // The recording's filesystem fills up: the error names it, the report is printed,
    // and the recording holds whole lines.
    let fs = Tmpfs::new("tiny-record", "64k");
    let rec = fs.0.join("rec.jsonl");
    let out = tracer()
        .args([
            "demo",
            "--method",
            "sendfile",
            "--size",
            "8M",
            "--headless",
            "--record",
        ])
        .arg(&rec)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot write to the recording {}: No space left on device",
            rec.display()
        )),
        "{stderr}"
    );
    assert!(stdout.starts_with("sendfile: 8 MiB"), "no report: {stdout}");
    for line in std::fs::read_to_string(&rec).unwrap().lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("a cut line ({e}): {line}"));
    }
}

/// Runs the tracer with `args`, its standard output a pipe nobody reads (closed before it
/// starts) and, with `both`, its standard error the same pipe: (status, stderr).
fn with_closed_output(args: &[&str], both: bool) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = tracer();
    cmd.args(args).stdout(writer.try_clone().unwrap());
    if both {
        cmd.stderr(writer);
    } else {
        cmd.stderr(Stdio::piped());
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn a_closed_pipe_ends_every_command_quietly() {
    assert_root();
    let dir = TempDir::new("pipe");
    let input = dir.join("input");
    secret_file(&input, 1 << 20);
    let input = input.to_str().unwrap();
    // (command, standard error closed too, as with `2>&1 | head`)
    let commands: [(&[&str], bool); 6] = [
        (&["doctor"], false),
        (&["doctor"], true),
        (&["doctor", "--json"], false),
        (
            &["transfer", "--method", "sendfile", "--file", input],
            false,
        ),
        (
            &["demo", "--method", "sendfile", "--size", "1M", "--headless"],
            false,
        ),
        (
            &["demo", "--method", "sendfile", "--size", "1M", "--json"],
            true,
        ),
    ];
    for (args, both) in commands {
        let (code, stderr) = with_closed_output(args, both);
        assert!(
            matches!(code, Some(0 | 141)),
            "{args:?} (stderr too: {both}): {code:?} {stderr}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
    // trace without -o: the events' reader is gone, so the command is stopped, not left
    // running untraced.
    let marker = dir.join("ran-on");
    let script = format!("sleep 5; touch {}", marker.display());
    let (code, stderr) = with_closed_output(&["trace", "--", "sh", "-c", &script], false);
    assert!(matches!(code, Some(0 | 141)), "{code:?} {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    std::thread::sleep(Duration::from_secs(6));
    assert!(!marker.exists(), "the command ran on untraced: {stderr}");
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn dropped_events_are_a_record_in_the_stream_where_they_were_lost() {
    assert_root();
    // The reader of the events stalls while the command makes millions of syscalls: the
    // ring buffer fills and the kernel drops events.
    let script = "import os\nfor i in range(2000000): os.getppid()";
    let trace = tracer()
        .args(["trace", "--json", "--", "python3", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(6));
    let out = trace.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let mut lost = 0;
    let mut events = 0;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["event"] == "lost" {
            let (count, since, until) = (
                v["count"].as_u64().unwrap(),
                v["since_ns"].as_u64().unwrap(),
                v["until_ns"].as_u64().unwrap(),
            );
            assert!(count > 0 && since < until, "{line}");
            lost += count;
        } else {
            events += 1;
        }
    }
    let summary = summary(&stderr);
    assert!(lost > 0, "nothing dropped: {summary}");
    assert!(
        summary.contains(&format!(": {events} events, {lost} dropped")),
        "the records say {events} events and {lost} lost: {summary}"
    );
}

/// Starts the tracer with `args` (standard error piped) and returns it once it has said
/// that its probes are attached, with the lines it wrote so far.
fn started(args: &[&str]) -> (std::process::Child, Vec<String>) {
    use std::io::BufRead as _;
    let mut child = tracer()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("the tracer ended before attaching: {lines:?}");
        }
        let attached = line.contains("probes attached");
        lines.push(line);
        if attached {
            break;
        }
    }
    child.stderr = Some(stderr.into_inner());
    (child, lines)
}

/// A kernel thread's pid: a process whose flags (/proc/PID/stat) have PF_KTHREAD.
fn a_kernel_thread() -> u32 {
    const PF_KTHREAD: u64 = 0x0020_0000;
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids.into_iter()
        .find(|pid| {
            // The fields after the command's closing parenthesis: state, ppid, pgrp,
            // session, tty_nr, tpgid, flags.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(6)?.parse::<u64>().ok())
                    .is_some_and(|flags| flags & PF_KTHREAD != 0)
            })
        })
        .expect("no kernel thread in /proc: run this test in the host's pid namespace")
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn the_small_things_are_said() {
    assert_root();
    // A lone SIGINT to `trace -- CMD` (the command did not get it): said, not ignored.
    let (child, _) = started(&["trace", "-o", "/dev/null", "--", "sleep", "3"]);
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the trace ends when the command") && stderr.contains("interrupt again"),
        "{stderr}"
    );

    // --pid of a kernel thread: it makes no syscalls, and the tracer says so.
    let kthread = a_kernel_thread().to_string();
    let (mut child, lines) = started(&["trace", "-o", "/dev/null", "--pid", &kthread]);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("is a kernel thread: it makes no syscalls")),
        "{lines:?}"
    );

    // tracefs, mounted by the tracer, is unmounted at exit (in a mount namespace of its
    // own, so that nothing else on the machine sees it go).
    let bin =
        std::env::var("HOSTILE_TRACER").unwrap_or_else(|_| env!("CARGO_BIN_EXE_tracer").into());
    let script = format!(
        "umount /sys/kernel/tracing 2>/dev/null; {bin} trace -o /dev/null -- true 2>&1; \
         if mountpoint -q /sys/kernel/tracing; then echo still-mounted; else echo unmounted; fi"
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mounted tracefs at"), "{text}");
    assert!(text.trim_end().ends_with("unmounted"), "{text}");
}

/// `args` run as nobody (uid and gid 65534, no supplementary groups).
fn as_nobody(args: &[&str]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(args);
    cmd
}

/// Runs `cmd` to its end, or for `timeout` at most (then kills it and panics: `what`).
fn output_within(cmd: &mut Command, timeout: Duration, what: &str) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            // SAFETY: signalling our own child, first as a user would.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            std::thread::sleep(Duration::from_secs(2));
            let deaf = child.try_wait().unwrap().is_none();
            kill9(&mut child);
            panic!("{what}: still running after {timeout:?} (deaf to SIGTERM: {deaf})");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn outputs_another_user_planted_are_refused_and_left_as_they_were() {
    assert_root();
    // A directory everyone may write to, as /tmp.
    let dir = TempDir::new("planted");
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();

    // nobody's FIFO, with a reader: the trace never reaches it.
    let fifo = path("fifo");
    assert!(as_nobody(&["mkfifo", &fifo]).status().unwrap().success());
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let out = output_within(
        tracer().args(["trace", "-o", &fifo, "--", "true"]),
        Duration::from_secs(20),
        "trace -o a FIFO with a reader",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut stolen = Vec::new();
    drop(std::io::Read::read_to_end(&mut reader, &mut stolen));
    assert!(
        stolen.is_empty(),
        "the FIFO's reader got {} bytes",
        stolen.len()
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("named pipe"), "{stderr}");
    drop(reader);
    // Without a reader: refused at once, not waited on (forever, deaf to signals).
    let out = output_within(
        tracer().args(["trace", "-o", &fifo, "--", "true"]),
        Duration::from_secs(10),
        "trace -o a FIFO nobody reads",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("named pipe"), "{stderr}");

    // nobody's 0666 file, even with --force: nobody would keep reading the trace.
    let theirs = dir.join("theirs");
    assert!(
        as_nobody(&[
            "sh",
            "-c",
            &format!("echo theirs > {0}; chmod 666 {0}", theirs.display())
        ])
        .status()
        .unwrap()
        .success()
    );
    let mut demo = tracer();
    demo.args(["demo", "--method", "sendfile", "--size", "64K", "--force"])
        .arg("--record")
        .arg(&theirs);
    let mut trace = tracer();
    trace
        .args(["trace", "--force", "-o"])
        .arg(&theirs)
        .args(["--", "true"]);
    for cmd in [&mut trace, &mut demo] {
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("belongs to uid 65534"), "{stderr}");
        let meta = std::fs::metadata(&theirs).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o777), (65534, 0o666));
        assert_eq!(std::fs::read(&theirs).unwrap(), b"theirs\n");
    }

    // A second name of root's own file: writing it would show the trace there too.
    let precious = dir.join("precious");
    std::fs::write(&precious, b"precious").unwrap();
    let linked = dir.join("linked");
    std::fs::hard_link(&precious, &linked).unwrap();
    let out = tracer()
        .args(["trace", "--force", "-o"])
        .arg(&linked)
        .args(["--", "true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("2 hard links"), "{stderr}");
    assert_eq!(std::fs::read(&precious).unwrap(), b"precious");
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn the_descriptors_the_tracer_was_given_are_outputs() {
    assert_root();
    // -o /dev/stdout: the events on standard output, as without -o.
    let out = tracer()
        .args(["trace", "--json", "-o", "/dev/stdout", "--", "true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().count() > 0, "{stderr}");
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }

    // A recording into a pipe whose reader went away: an error naming it (not the quiet
    // end of a closed standard output).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = tracer()
        .args([
            "demo",
            "--method",
            "sendfile",
            "--size",
            "64K",
            "--headless",
            "--record",
            "/proc/self/fd/0",
        ])
        .stdin(writer)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write to the recording /proc/self/fd/0: Broken pipe"),
        "{stderr}"
    );
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn a_failed_run_leaves_no_empty_output_behind() {
    assert_root();
    let dir = TempDir::new("failed-run");
    // A program nobody may run: in a directory only root may enter.
    let private = dir.join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let program = private.join("x");
    std::fs::write(&program, "#!/bin/sh\ntrue\n").unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let events = dir.join("t2.txt");
    for attempt in 0..2 {
        let out = tracer()
            .args(["trace", "-u", "nobody", "-o"])
            .arg(&events)
            .arg("--")
            .arg(&program)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("cannot run the command as nobody: Permission denied"),
            "attempt {attempt}: {stderr}"
        );
        assert!(
            !events.exists(),
            "attempt {attempt} left {}",
            events.display()
        );
    }

    // A demo whose input does not fit: its recording goes too.
    let fs = Tmpfs::new("full-for-record", "1m");
    let rec = dir.join("rec.jsonl");
    let out = tracer()
        .args(["demo", "--method", "sendfile", "--size", "8M", "--headless"])
        .arg("--record")
        .arg(&rec)
        .env("TMPDIR", &fs.0.0)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("has only"), "{stderr}");
    assert!(!rec.exists(), "the failed demo left {}", rec.display());
}

/// A python3 that any user may run (the first on root's PATH may be under /root).
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// A sysctl set for the length of a test, then put back.
struct Sysctl {
    path: &'static str,
    old: Option<String>,
}

impl Sysctl {
    fn set(path: &'static str, value: &str) -> Self {
        let old = std::fs::read_to_string(path).ok();
        if old.is_some() {
            std::fs::write(path, value).unwrap();
        }
        Self { path, old }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        if let Some(old) = &self.old {
            drop(std::fs::write(self.path, old));
        }
    }
}

/// A command run as nobody on root's terminal pushes a command line into root's shell
/// with ioctl(TIOCSTI), byte by byte, and says whether the kernel let it.
const TIOCSTI: &str = r#"
import errno, fcntl, termios
try:
    for c in b"id -un > pwned\n":
        fcntl.ioctl(0, termios.TIOCSTI, bytes([c]))
    print("injected")
except OSError as e:
    print("refused:", errno.errorcode[e.errno])
"#;

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn a_command_run_as_another_user_cannot_push_input_into_roots_terminal() {
    assert_root();
    assert!(Path::new(SYSTEM_PYTHON).exists(), "needs {SYSTEM_PYTHON}");
    // As on kernels before 6.2 and where distributions keep it: TIOCSTI works on one's
    // own controlling terminal.
    let _legacy = Sysctl::set("/proc/sys/dev/tty/legacy_tiocsti", "1");
    let bin =
        std::env::var("HOSTILE_TRACER").unwrap_or_else(|_| env!("CARGO_BIN_EXE_tracer").into());
    // The tracer on a terminal of its own (a pty that is its controlling terminal), as
    // root's shell runs it.
    let on_a_terminal = "import pty, sys\npty.spawn(sys.argv[1:])";
    let mut cmd = Command::new(SYSTEM_PYTHON);
    cmd.args(["-c", on_a_terminal, &bin, "trace", "-o", "/dev/null"]);
    let as_nobody_sudo = [("SUDO_UID", "65534"), ("SUDO_GID", "65534")];
    for (args, env) in [
        (&["-u", "nobody"][..], &[][..]),
        (&[][..], &as_nobody_sudo[..]),
    ] {
        let out = Command::new(SYSTEM_PYTHON)
            .args(["-c", on_a_terminal, &bin, "trace", "-o", "/dev/null"])
            .args(args)
            .args(["--", SYSTEM_PYTHON, "-c", TIOCSTI])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("refused: EPERM"), "{args:?} {env:?}: {text}");
    }
    // Root's own command keeps root's terminal (as root, it could do anything anyway).
    let has_terminal = "import os\ntry:\n    os.close(os.open('/dev/tty', os.O_RDWR))\n    \
                        print('has a terminal')\nexcept OSError as e:\n    print(e)";
    let out = cmd
        .args(["--", SYSTEM_PYTHON, "-c", has_terminal])
        .env_remove("SUDO_UID")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("has a terminal"), "{text}");
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn a_command_run_as_another_user_gets_its_own_environment() {
    assert_root();
    let script = "echo $HOME $USER $LOGNAME; env";
    let planted = [
        ("SECRET_TOKEN", "hunter2"),
        ("HOME", "/root"),
        ("USER", "root"),
        ("LOGNAME", "root"),
        ("SUDO_USER", "nobody"),
        ("SUDO_COMMAND", "/usr/bin/tracer"),
        ("TERM", "xterm-test"),
        ("LC_TIME", "C.UTF-8"),
    ];
    // -u nobody, and through sudo (SUDO_UID): the same.
    let sudo = [("SUDO_UID", "65534"), ("SUDO_GID", "65534")];
    for (args, env) in [(&["-u", "nobody"][..], &[][..]), (&[][..], &sudo[..])] {
        let out = tracer()
            .args(["trace", "-o", "/dev/null"])
            .args(args)
            .args(["--", "sh", "-c", script])
            .envs(planted.iter().chain(env).copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("/nonexistent nobody nobody"), "{text}");
        let vars: Vec<&str> = lines.collect();
        for gone in ["SUDO_", "SECRET_TOKEN="] {
            assert!(
                !vars.iter().any(|v| v.starts_with(gone)),
                "{gone}: {vars:?}"
            );
        }
        for kept in [
            "TERM=xterm-test",
            "LC_TIME=C.UTF-8",
            "SHELL=/usr/sbin/nologin",
        ] {
            assert!(vars.contains(&kept), "{kept}: {vars:?}");
        }
        assert!(vars.iter().any(|v| v.starts_with("PATH=")), "{vars:?}");
    }
    // Root's own command keeps root's environment.
    let out = tracer()
        .args([
            "trace",
            "-o",
            "/dev/null",
            "--",
            "sh",
            "-c",
            "echo $SECRET_TOKEN",
        ])
        .env_remove("SUDO_UID")
        .env("SECRET_TOKEN", "hunter2")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hunter2\n");
}

/// The pids of the processes whose command line is `sleep SECONDS`.
fn sleeping(seconds: &str) -> Vec<u32> {
    let want = format!("sleep\0{seconds}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid: &u32| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want.as_bytes())
        })
        .collect()
}

/// Waits up to `timeout` for every `sleep SECONDS` of `seconds` to be gone; kills those
/// left (so that a failing test leaves nothing) and returns how many there were.
fn left_running(seconds: &[&str], timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<u32> = seconds.iter().flat_map(|s| sleeping(s)).collect();
        if left.is_empty() {
            return 0;
        }
        if Instant::now() > deadline {
            for pid in &left {
                // SAFETY: killing a test's own leftover sleep.
                unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
            }
            return left.len();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits up to `timeout` for `child` to exit; kills it past that (returning `None`).
fn wait_within(child: &mut std::process::Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            kill9(child);
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn stopping_the_command_stops_every_process_it_started() {
    assert_root();
    // The output fails while a shell's children run (in the background, where a shell
    // ignores SIGINT for them): none runs on, untraced, with or without a session of its
    // own.
    for (user, sleeps) in [(None, ["8123", "8124"]), (Some("nobody"), ["8125", "8126"])] {
        let fs = Tmpfs::new(&format!("stop-{}", sleeps[0]), "64k");
        let file = fs.0.join("events.jsonl");
        let script = format!(
            "sleep {} >/dev/null 2>&1 & sleep {} >/dev/null 2>&1 & \
             for i in $(seq 1 3000); do cat /etc/hostname; done >/dev/null; wait",
            sleeps[0], sleeps[1]
        );
        let mut cmd = tracer();
        cmd.args(["trace", "--json", "-o"]).arg(&file);
        if let Some(user) = user {
            cmd.args(["-u", user]);
        }
        let out = output_within(
            cmd.args(["--", "sh", "-c", &script]),
            Duration::from_secs(60),
            "trace with a failing output",
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("stopping the command"), "{stderr}");
        let left = left_running(&sleeps, Duration::from_secs(2));
        assert_eq!(left, 0, "{user:?}: left running: {stderr}");
    }

    // Interrupted twice: the trace ends at once, and so does everything the command
    // started. A signal ended it: 130.
    let sleeps = ["8127", "8128"];
    let script = format!("sleep {} & sleep {}", sleeps[0], sleeps[1]);
    let (mut child, _) = started(&["trace", "-o", "/dev/null", "--", "sh", "-c", &script]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sleeps.iter().any(|s| sleeping(s).is_empty()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..2 {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        std::thread::sleep(Duration::from_millis(300));
    }
    let code = wait_within(&mut child, Duration::from_secs(15));
    let left = left_running(&sleeps, Duration::from_secs(2));
    assert_eq!(left, 0, "left running after a second Ctrl-C");
    assert_eq!(code, Some(130));
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn a_signal_reaches_the_command_and_its_status_or_the_signals_is_the_traces() {
    assert_root();
    // A command as another user has no terminal of its own: Ctrl-C is passed on to its
    // process group by the tracer, and the command's own status wins.
    // (Bounded: it ends by itself after 10 s should the SIGINT never come.)
    let script = "trap 'exit 9' INT; for i in $(seq 1 100); do sleep 0.1; done";
    let (mut child, _) = started(&[
        "trace",
        "-o",
        "/dev/null",
        "-u",
        "nobody",
        "--",
        "sh",
        "-c",
        script,
    ]);
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let code = wait_within(&mut child, Duration::from_secs(10));
    assert_eq!(code, Some(9), "the command never got the SIGINT");

    // A trace of running processes ended by a signal: 128 + its number, as the demo.
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = sleeper.id().to_string();
    for (args, sig) in [
        (&["--pid", pid.as_str()][..], libc::SIGINT),
        (&["--comm", "sleep"][..], libc::SIGHUP),
    ] {
        let mut full = vec!["trace", "-o", "/dev/null"];
        full.extend_from_slice(args);
        let (mut child, _) = started(&full);
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let code = wait_within(&mut child, Duration::from_secs(10));
        assert_eq!(code, Some(128 + sig), "{args:?}");
    }
    kill9(&mut sleeper);
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn copy_file_range_needs_room_for_its_copy_before_anything_is_written() {
    assert_root();
    // Room for the input, not for its copy too: one line, before anything is written,
    // naming what the user knows (not /proc/self/fd/N).
    let fs = Tmpfs::new("room-for-copy", "10m");
    for method in ["copy-file-range", "all"] {
        let out = tracer()
            .args(["demo", "--method", method, "--size", "6M", "--headless"])
            .env("TMPDIR", &fs.0.0)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{method}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{method}: {stderr}");
        assert!(
            stderr.contains("copy-file-range's copy") && stderr.contains("has only"),
            "{method}: {stderr}"
        );
        assert!(!stderr.contains("/proc/self/fd"), "{method}: {stderr}");
        assert_eq!(fs.0.entries(), Vec::<String>::new());
    }
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn a_recording_whose_reader_leaves_mid_run_ends_with_an_error_naming_it() {
    use std::io::BufRead as _;
    assert_root();
    let dir = TempDir::new("record-reader-leaves");
    let input = dir.join("input");
    secret_file(&input, 8 << 20);
    let input = input.to_str().unwrap();
    let transfer = [
        env!("CARGO_BIN_EXE_tracer"),
        "transfer",
        "--method",
        "sendfile",
        "--chunk",
        "4K",
        "--file",
        input,
    ];
    // The demo and watch, recording into a pipe (their standard input) whose reader takes
    // the header, then goes away while thousands of events are still to come.
    let demo = [
        "demo", "--method", "sendfile", "--size", "8M", "--chunk", "4K",
    ];
    let runs: [Vec<&str>; 3] = [
        [&demo[..], &["--headless"]].concat(),
        [&demo[..], &["--json"]].concat(),
        [&["watch", "--headless"][..], &["--"], &transfer[..]].concat(),
    ];
    for args in runs {
        let (reader, writer) = std::io::pipe().unwrap();
        let child = tracer()
            .arg(args[0])
            .args(["--record", "/proc/self/fd/0"])
            .args(&args[1..])
            .stdin(writer)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut header = String::new();
        std::io::BufReader::new(reader)
            .read_line(&mut header)
            .unwrap();
        assert!(
            header.contains(tracer::recording::FORMAT),
            "{args:?}: {header}"
        );
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The run's report is printed, then one line says what happened to the recording.
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(!out.stdout.is_empty(), "{args:?}: no report: {stderr}");
        assert_eq!(
            stderr.lines().last(),
            Some(
                "tracer: error: cannot write to the recording /proc/self/fd/0: Broken pipe \
                 (os error 32)"
            ),
            "{args:?}: {stderr}"
        );
        assert_eq!(
            stderr.matches("tracer: error").count(),
            1,
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(all_unloaded(), "{args:?}: {:?}", tracer_programs());
    }
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn names_with_bidi_c1_and_format_characters_cannot_reorder_or_hide_text() {
    assert_root();
    let names = ["a\u{9b}2Jb", "x\u{202e}gpj.exe", "y\u{61c}z\u{ad}\u{200b}"];
    let unsafe_chars = ['\u{9b}', '\u{202e}', '\u{61c}', '\u{ad}', '\u{200b}'];
    // Text: every such character written out, byte by byte, as strace does.
    let out = tracer()
        .args(["trace", "--", "python3", "-c", BIDI_NAMES])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let text = String::from_utf8(out.stdout).expect("UTF-8 text");
    assert!(
        !text.contains(&unsafe_chars[..]),
        "a raw one reached the output"
    );
    for escaped in [
        r"a\xc2\x9b2Jb",
        r"x\xe2\x80\xaegpj.exe",
        r"y\xd8\x9cz\xc2\xad\xe2\x80\x8b",
    ] {
        assert!(
            text.lines()
                .any(|l| l.contains(escaped) && l.contains("syscall=getppid")),
            "no getppid line shows {escaped}"
        );
    }

    // JSON: \uXXXX escapes (serde_json leaves them raw), read back as the names.
    let out = tracer()
        .args(["trace", "--json", "--", "python3", "-c", BIDI_NAMES])
        .output()
        .unwrap();
    assert!(out.status.success());
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(
        !json.contains(&unsafe_chars[..]),
        "a raw one reached the JSON"
    );
    for escaped in [r"\u009b", r"\u202e", r"\u061c", r"\u00ad", r"\u200b"] {
        assert!(json.contains(escaped), "no {escaped} in the JSON");
    }
    let comms: Vec<String> = json
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            v["comm"].as_str().unwrap().to_string()
        })
        .collect();
    for name in names {
        assert!(comms.iter().any(|c| c == name), "{name:?} not in {comms:?}");
    }

    // A file so named, sent by a watched transfer: the watch's text and JSON reports, and
    // an error naming it (-o to it: it exists), never show it raw.
    let dir = TempDir::new("bidi-file");
    let file = dir.join("report\u{202e}fdp.exe\u{85}\u{2066}");
    secret_file(&file, 1 << 20);
    // Slowly, so that the watch reads its name from /proc while it runs.
    let send = "import os, socket, sys, time\n\
                a, b = socket.socketpair()\n\
                f = open(sys.argv[1], 'rb')\n\
                for _ in range(64):\n\
                \x20   os.sendfile(a.fileno(), f.fileno(), None, 16384)\n\
                \x20   b.recv(65536)\n\
                \x20   time.sleep(0.01)\n";
    for json in [false, true] {
        let mut args = vec!["watch", "--headless"];
        if json {
            args.push("--json");
        }
        args.extend(["--", "python3", "-c", send, file.to_str().unwrap()]);
        let out = tracer().args(&args).output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stdout.contains(&unsafe_chars[..]) && !stdout.contains('\u{85}'));
        assert!(!stdout.contains('\u{2066}'), "a raw one reached the report");
        let heads: Vec<&str> = stdout.lines().filter(|l| l.contains("report")).collect();
        if json {
            assert!(
                stdout.contains(r"report\u202efdp.exe\u0085\u2066"),
                "{}",
                &stdout[..stdout.len().min(2000)]
            );
        } else {
            assert!(
                stdout.contains(r"report\xe2\x80\xaefdp.exe\xc2\x85\xe2\x81\xa6"),
                "{heads:?}"
            );
        }
    }
    let out = tracer()
        .args(["trace", "-o"])
        .arg(&file)
        .args(["--", "true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(r"report\xe2\x80\xaefdp.exe\xc2\x85\xe2\x81\xa6: it exists"),
        "{stderr}"
    );
}
