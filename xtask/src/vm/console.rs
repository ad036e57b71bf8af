//! Booting the guest under QEMU (TCG) with a deadline, and the serial console split into
//! `/init`'s markers and each command's output.

use std::{
    collections::HashMap,
    fs,
    io::{BufRead as _, BufReader, Write as _},
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow};

use super::packages::{Kernel, program};

/// What the boot left: the console and how QEMU ended.
pub(super) struct Boot {
    /// Console lines with the host's time since QEMU started.
    pub lines: Vec<(Duration, String)>,
    pub timed_out: bool,
    pub exit: Option<std::process::ExitStatus>,
    pub elapsed: Duration,
}

/// Boots `kernel` with `initramfs` and `disk` until it powers off or `timeout` passes,
/// with the console in `dir/console.log`.
pub(super) fn boot(
    dir: &Path,
    kernel: &Kernel,
    initramfs: &Path,
    disk: &Path,
    timeout: Duration,
) -> Result<Boot> {
    let qemu = program("qemu-system-x86_64")
        .ok_or_else(|| anyhow!("qemu-system-x86_64 not found (qemu-system-x86)"))?;
    let log_path = dir.join("console.log");
    let mut log =
        fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let qemu_err = dir.join("qemu.stderr");
    let mut cmd = Command::new(qemu);
    // TCG: KVM is present on the build machines but fails there.
    cmd.args(["-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", "2"])
        .args(["-nographic", "-no-reboot"])
        .arg("-kernel")
        .arg(&kernel.vmlinuz)
        .arg("-initrd")
        .arg(initramfs)
        .args(["-append", "console=ttyS0 panic=-1 quiet"])
        .arg("-drive")
        .arg(format!("file={},if=virtio,format=raw", disk.display()))
        // -nographic puts the serial port on stdio; with no stdin nothing reaches the
        // monitor, and QEMU does not touch the terminal.
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&qemu_err).context("creating target/vm/qemu.stderr")?);
    eprintln!(
        "vm-test: booting (TCG, timeout {} s; console: {})",
        timeout.as_secs(),
        log_path.display()
    );
    let started = Instant::now();
    let mut child = cmd.spawn().context("starting qemu-system-x86_64")?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("qemu has no stdout pipe"))?;
    let (tx, rx) = mpsc::channel();
    // A thread reads the console so the main thread can wait with a deadline.
    let reader = thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\r', '\n'])
                        .to_string();
                    if tx.send((started.elapsed(), line)).is_err() {
                        break;
                    }
                }
            }
        }
    });

    let deadline = started + timeout;
    let mut lines = Vec::new();
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((at, line)) => {
                writeln!(log, "{line}").context("writing console.log")?;
                progress(at, &line);
                lines.push((at, line));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                eprintln!(
                    "vm-test: the VM did not power off within {} s: killing qemu",
                    timeout.as_secs()
                );
                // Killing our own child by its handle; an error means it already exited.
                drop(child.kill());
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let exit = child.wait().context("waiting for qemu")?.into();
    // The pipe closes with qemu; the reader ends then. Drain what it read meanwhile.
    drop(reader.join());
    for (at, line) in rx.try_iter() {
        writeln!(log, "{line}").context("writing console.log")?;
        lines.push((at, line));
    }
    let stderr = fs::read_to_string(&qemu_err).unwrap_or_default();
    if !stderr.trim().is_empty() {
        eprintln!("vm-test: qemu said: {}", stderr.trim());
    }
    Ok(Boot {
        lines,
        timed_out,
        exit,
        elapsed: started.elapsed(),
    })
}

/// One line on the host per milestone, so a slow TCG boot is visibly alive.
fn progress(at: Duration, line: &str) {
    let Some(marker) = line.find("=== ").map(|i| &line[i + 4..]) else {
        return;
    };
    let t = at.as_secs_f64();
    if let Some(rest) = marker.strip_prefix("INIT ") {
        eprintln!("vm-test: [{t:6.1} s] /init started ({rest})");
    } else if let Some(rest) = marker.strip_prefix("BEGIN ") {
        let name = rest.split_whitespace().next().unwrap_or(rest);
        eprintln!("vm-test: [{t:6.1} s] running {name}");
    } else if ["FAIL ", "NOTE ", "DONE"]
        .iter()
        .any(|m| marker.starts_with(m))
    {
        eprintln!("vm-test: [{t:6.1} s] {marker}");
    }
}

/// What `/init` said on the console.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Console {
    /// Guest uptime when /init started, and `uname -r`.
    pub init: Option<(f64, String)>,
    pub init_at: Option<Duration>,
    pub fails: Vec<String>,
    /// Things /init did that change what the commands see (workarounds).
    pub notes: Vec<String>,
    pub runs: Vec<Run>,
    pub done: bool,
}

/// One command's run: its output and exit status.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Run {
    pub name: String,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    pub rc: Option<i32>,
    /// Guest uptime at BEGIN and END.
    pub begin: Option<f64>,
    pub end: Option<f64>,
}

impl Run {
    /// How long it ran, in guest seconds.
    pub(super) fn secs(&self) -> Option<f64> {
        Some(self.end? - self.begin?)
    }
}

/// Splits the console into /init's markers and each command's output. A marker may follow
/// other text on its line (a kernel message without a newline), so it is searched for.
pub(super) fn parse_console(lines: &[(Duration, String)]) -> Console {
    enum At {
        Outside,
        Stdout,
        Stderr,
    }
    let mut c = Console::default();
    let mut at = At::Outside;
    for (when, line) in lines {
        let (text, marker) = match line.find("=== ") {
            Some(i) if is_marker(&line[i + 4..]) => (&line[..i], Some(&line[i + 4..])),
            _ => (line.as_str(), None),
        };
        if !text.is_empty()
            && let Some(run) = c.runs.last_mut()
        {
            match at {
                At::Stdout => run.stdout.push(text.to_string()),
                At::Stderr => run.stderr.push(text.to_string()),
                At::Outside => {}
            }
        }
        let Some(marker) = marker else { continue };
        let mut words = marker.split_whitespace();
        let kind = words.next().unwrap_or("");
        let fields: HashMap<&str, &str> = words.clone().filter_map(|w| w.split_once('=')).collect();
        let uptime = fields.get("t").and_then(|t| t.parse::<f64>().ok());
        match kind {
            "INIT" => {
                c.init = Some((
                    uptime.unwrap_or(0.0),
                    fields.get("kernel").unwrap_or(&"?").to_string(),
                ));
                c.init_at = Some(*when);
            }
            "FAIL" => c.fails.push(marker["FAIL".len()..].trim().to_string()),
            "NOTE" => c.notes.push(marker["NOTE".len()..].trim().to_string()),
            "BEGIN" => {
                c.runs.push(Run {
                    name: words.next().unwrap_or("").to_string(),
                    begin: uptime,
                    ..Run::default()
                });
                at = At::Stdout;
            }
            "STDERR" => at = At::Stderr,
            "END" => {
                if let Some(run) = c.runs.last_mut() {
                    run.rc = fields.get("rc").and_then(|r| r.parse().ok());
                    run.end = uptime;
                }
                at = At::Outside;
            }
            "DONE" => c.done = true,
            _ => {}
        }
    }
    // The blank lines /init adds around markers are not output.
    for run in &mut c.runs {
        for v in [&mut run.stdout, &mut run.stderr] {
            while v.last().is_some_and(|l| l.trim().is_empty()) {
                v.pop();
            }
        }
    }
    c
}

fn is_marker(rest: &str) -> bool {
    [
        "INIT ", "FAIL ", "NOTE ", "BEGIN ", "STDERR ", "END ", "DONE",
    ]
    .iter()
    .any(|m| rest.starts_with(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(Duration, String)> {
        text.lines()
            .enumerate()
            .map(|(i, l)| (Duration::from_secs(i as u64), l.to_string()))
            .collect()
    }

    #[test]
    fn parses_markers_and_output() {
        let c = parse_console(&lines(
            "SeaBIOS noise\n\
             === INIT t=1.50 kernel=6.1.0-56-cloud-amd64\n\
             === FAIL mount bpffs\n\
             === BEGIN uname t=2.00\n\
             6.1.0-56-cloud-amd64\n\
             \n\
             === STDERR uname\n\
             \n\
             === END uname rc=0 t=2.25\n\
             === BEGIN demo t=3.00\n\
             {\"a\":1=== STDERR demo\n\
             tracer: oops\n\
             === END demo rc=1 t=4.00\n\
             === DONE t=5.00\n",
        ));
        assert_eq!(c.init, Some((1.5, "6.1.0-56-cloud-amd64".to_string())));
        assert_eq!(c.fails, vec!["mount bpffs"]);
        assert!(c.done);
        assert_eq!(c.runs.len(), 2);
        assert_eq!(c.runs[0].stdout, vec!["6.1.0-56-cloud-amd64"]);
        assert!(c.runs[0].stderr.is_empty());
        assert_eq!(c.runs[0].rc, Some(0));
        assert_eq!(c.runs[0].secs(), Some(0.25));
        assert_eq!(c.runs[1].stdout, vec!["{\"a\":1"]);
        assert_eq!(c.runs[1].stderr, vec!["tracer: oops"]);
        assert_eq!(c.runs[1].rc, Some(1));
    }

    #[test]
    fn a_run_cut_short_has_no_rc() {
        let c = parse_console(&lines("=== INIT t=1 kernel=x\n=== BEGIN a t=2\nhalf"));
        assert_eq!(c.runs[0].rc, None);
        assert!(!c.done);
    }
}
