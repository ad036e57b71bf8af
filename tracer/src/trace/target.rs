//! Which processes to trace: a pid, every process with a name, or a command we start.

use std::{ffi::OsString, fs, path::Path};

use anyhow::{Result, bail};

/// What the user asked to trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Pid(u32),
    Comm(String),
    Command(Vec<OsString>),
}

/// Longest comm the kernel keeps (TASK_COMM_LEN - 1).
pub const COMM_MAX: usize = 15;

/// The thread-group id of `pid`, which may name a thread; an error when there is no such
/// task.
pub fn tgid_of(proc_root: &Path, pid: u32) -> Result<u32> {
    let status = match fs::read_to_string(proc_root.join(pid.to_string()).join("status")) {
        Ok(s) => s,
        Err(_) => bail!("no process with pid {pid} (is it still running? see `ps -p {pid}`)"),
    };
    let tgid = status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok());
    match tgid {
        Some(t) => Ok(t),
        None => bail!("cannot read the thread group of pid {pid}"),
    }
}

/// Every running process whose comm is `name` (compared on the first 15 bytes, as the
/// kernel stores it), except `exclude`; none is not an error (the kernel side also picks
/// up any process that execs with that name later).
pub fn pids_by_comm(proc_root: &Path, name: &str, exclude: u32) -> Result<Vec<u32>> {
    if name.is_empty() {
        bail!("--comm needs a process name");
    }
    let want = &name.as_bytes()[..name.len().min(COMM_MAX)];
    let mut pids = Vec::new();
    for entry in fs::read_dir(proc_root)? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == exclude {
            continue;
        }
        if let Ok(comm) = fs::read(entry.path().join("comm"))
            && comm.strip_suffix(b"\n").unwrap_or(&comm) == want
        {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

/// The kernel's `PF_KTHREAD` task flag (include/linux/sched.h, stable since 2.6).
const PF_KTHREAD: u64 = 0x0020_0000;

/// Whether `pid` is a kernel thread: it has no user space and makes no syscalls.
pub fn is_kernel_thread(proc_root: &Path, pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(proc_root.join(pid.to_string()).join("stat")) else {
        return false;
    };
    // After the parenthesised comm (which may hold ") "): state ppid pgrp session tty_nr
    // tpgid flags ...
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.split_whitespace().nth(6))
        .and_then(|flags| flags.parse::<u64>().ok())
        .is_some_and(|flags| flags & PF_KTHREAD != 0)
}

/// Whether process `pid` still exists (a zombie counts as gone).
pub fn alive(proc_root: &Path, pid: u32) -> bool {
    match fs::read_to_string(proc_root.join(pid.to_string()).join("stat")) {
        // The state follows the parenthesised comm, which may itself hold ") ".
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_proc(entries: &[(u32, &str, u32, char)]) -> tempdir::Dir {
        let d = tempdir::Dir::new();
        for &(pid, comm, tgid, state) in entries {
            let p = d.0.join(pid.to_string());
            fs::create_dir_all(&p).unwrap();
            fs::write(p.join("comm"), format!("{comm}\n")).unwrap();
            fs::write(
                p.join("status"),
                format!("Name:\t{comm}\nTgid:\t{tgid}\nPid:\t{pid}\n"),
            )
            .unwrap();
            fs::write(p.join("stat"), format!("{pid} ({comm}) {state} 1 2 3")).unwrap();
        }
        fs::create_dir_all(d.0.join("self")).unwrap();
        d
    }

    mod tempdir {
        pub(super) struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub(super) fn new() -> Self {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "tracer-proc-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Self(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                drop(std::fs::remove_dir_all(&self.0));
            }
        }
    }

    #[test]
    fn pid_lookup_maps_threads_to_their_process() {
        let d = fake_proc(&[(100, "srv", 100, 'S'), (101, "srv", 100, 'S')]);
        assert_eq!(tgid_of(&d.0, 100).unwrap(), 100);
        assert_eq!(tgid_of(&d.0, 101).unwrap(), 100);
        let e = tgid_of(&d.0, 999).unwrap_err().to_string();
        assert!(e.starts_with("no process with pid 999"), "{e}");
    }

    #[test]
    fn comm_lookup_matches_whole_names_and_truncates_like_the_kernel() {
        let d = fake_proc(&[
            (10, "nginx", 10, 'S'),
            (11, "nginx", 11, 'S'),
            (12, "nginx-helper", 12, 'S'),
            (13, "averyverylongna", 13, 'S'),
            (14, "nginx", 14, 'S'),
        ]);
        assert_eq!(pids_by_comm(&d.0, "nginx", 14).unwrap(), vec![10, 11]);
        assert_eq!(
            pids_by_comm(&d.0, "averyverylongname", 0).unwrap(),
            vec![13]
        );
        // None running yet: the trace waits for one.
        assert_eq!(
            pids_by_comm(&d.0, "postgres", 0).unwrap(),
            Vec::<u32>::new()
        );
        assert!(pids_by_comm(&d.0, "", 0).is_err());
    }

    #[test]
    fn kernel_threads_are_told_by_their_flags() {
        let d = fake_proc(&[(2, "kthreadd", 2, 'S'), (30, "sh", 30, 'S')]);
        fs::write(
            d.0.join("2/stat"),
            "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0",
        )
        .unwrap();
        fs::write(d.0.join("30/stat"), "30 (a) b) S 1 30 30 0 -1 4194560 0 0").unwrap();
        assert!(is_kernel_thread(&d.0, 2));
        assert!(!is_kernel_thread(&d.0, 30));
        assert!(!is_kernel_thread(&d.0, 31));
    }

    #[test]
    fn zombies_are_not_alive() {
        let d = fake_proc(&[(20, "a) b", 20, 'S'), (21, "z", 21, 'Z')]);
        assert!(alive(&d.0, 20));
        assert!(!alive(&d.0, 21));
        assert!(!alive(&d.0, 22));
    }
}
