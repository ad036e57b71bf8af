//! Starting a command so that it is traced from its first instruction: fork, let the child
//! wait on a pipe until its pid is in the kernel's traced map, then exec.
//!
//! `std::process::Command` cannot do this (spawn returns only after exec), so this is
//! fork + execve by hand. Everything the child needs is prepared before the fork; the child
//! only makes async-signal-safe calls (read, write, execve, _exit).

use std::{
    ffi::{CString, OsStr, OsString},
    os::unix::ffi::{OsStrExt, OsStringExt},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, anyhow, bail};

/// Finds `program` like a shell does: a path when it has a `/`, else the first executable
/// on `PATH`.
pub fn resolve_program(program: &OsStr) -> Result<PathBuf> {
    let is_exec = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.as_bytes().contains(&b'/') {
        let p = PathBuf::from(program);
        if is_exec(&p) {
            return Ok(p);
        }
        bail!(
            "cannot run {}: {}",
            p.display(),
            if p.exists() {
                "not an executable file"
            } else {
                "no such file"
            }
        );
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| is_exec(p))
        .ok_or_else(|| anyhow!("command not found: {}", program.to_string_lossy()))
}

fn cstring(s: impl Into<Vec<u8>>) -> Result<CString> {
    CString::new(s).context("an argument or environment variable contains a NUL byte")
}

/// A forked child waiting for [`HeldChild::release`] before it execs the command.
pub struct HeldChild {
    pub pid: u32,
    go_write: libc::c_int,
    err_read: libc::c_int,
}

/// Forks a child that will exec `argv` (argv[0] resolved on PATH) once released.
pub fn spawn_held(argv: &[OsString]) -> Result<HeldChild> {
    let program = argv
        .first()
        .ok_or_else(|| anyhow!("no command given after --"))?;
    let path = cstring(resolve_program(program)?.into_os_string().into_vec())?;
    let args: Vec<CString> = argv
        .iter()
        .map(|a| cstring(a.clone().into_vec()))
        .collect::<Result<_>>()?;
    let envs: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            cstring(kv)
        })
        .collect::<Result<_>>()?;
    let mut argp: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argp.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = envs.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());

    let mut go = [0; 2];
    let mut err = [0; 2];
    // SAFETY: pipe2 writes two fds into the arrays.
    if unsafe { libc::pipe2(go.as_mut_ptr(), libc::O_CLOEXEC) } != 0
        || unsafe { libc::pipe2(err.as_mut_ptr(), libc::O_CLOEXEC) } != 0
    {
        return Err(std::io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: the child only calls async-signal-safe functions on data prepared above.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("fork");
    }
    if pid == 0 {
        // Child.
        // SAFETY: raw syscalls on fds we own and buffers that live until execve or _exit.
        unsafe {
            libc::close(go[1]);
            libc::close(err[0]);
            let mut byte = 0u8;
            let n = libc::read(go[0], (&mut byte as *mut u8).cast(), 1);
            if n != 1 {
                // The tracer gave up before releasing us.
                libc::_exit(127);
            }
            // Rust ignores SIGPIPE and the runtime may block signals; an exec keeps both, so
            // give the command the defaults a shell would.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            libc::execve(path.as_ptr(), argp.as_ptr(), envp.as_ptr());
            let errno = *libc::__errno_location();
            libc::write(err[1], (&errno as *const i32).cast(), 4);
            libc::_exit(127);
        }
    }
    // Parent.
    // SAFETY: closing the child's ends, which we own.
    unsafe {
        libc::close(go[0]);
        libc::close(err[1]);
    }
    Ok(HeldChild {
        pid: pid as u32,
        go_write: go[1],
        err_read: err[0],
    })
}

impl HeldChild {
    /// Lets the child exec; returns once it has (or fails with why it could not).
    pub fn release(self) -> Result<u32> {
        let pid = self.pid;
        let mut errno = 0i32;
        // SAFETY: fds owned by self; the buffer is 4 bytes.
        let n = unsafe {
            libc::write(self.go_write, [1u8].as_ptr().cast(), 1);
            libc::close(self.go_write);
            let n = libc::read(self.err_read, (&mut errno as *mut i32).cast(), 4);
            libc::close(self.err_read);
            n
        };
        std::mem::forget(self);
        if n == 4 {
            reap(pid);
            bail!(
                "cannot run the command: {}",
                std::io::Error::from_raw_os_error(errno)
            );
        }
        Ok(pid)
    }
}

impl Drop for HeldChild {
    /// Not released: closing the pipe makes the child exit without running anything.
    fn drop(&mut self) {
        // SAFETY: fds owned by self.
        unsafe {
            libc::close(self.go_write);
            libc::close(self.err_read);
        }
        reap(self.pid);
    }
}

fn reap(pid: u32) {
    let mut status = 0;
    // SAFETY: waiting on our own child.
    unsafe { libc::waitpid(pid as i32, &mut status, 0) };
}

/// Blocks until child `pid` exits; returns the shell-style exit code (128 + signal when
/// killed).
pub fn wait_exit_code(pid: u32) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waiting on our own child.
        let rc = unsafe { libc::waitpid(pid as i32, &mut status, 0) };
        if rc < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return 1;
        }
        if libc::WIFEXITED(status) {
            return libc::WEXITSTATUS(status);
        }
        if libc::WIFSIGNALED(status) {
            return 128 + libc::WTERMSIG(status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_programs_like_a_shell() {
        assert!(resolve_program(OsStr::new("sh")).unwrap().ends_with("sh"));
        let e = resolve_program(OsStr::new("surely-not-a-command-zz")).unwrap_err();
        assert_eq!(e.to_string(), "command not found: surely-not-a-command-zz");
        let e = resolve_program(OsStr::new("/nonexistent/x")).unwrap_err();
        assert!(e.to_string().contains("no such file"), "{e}");
        let plain = std::env::temp_dir().join(format!("tracer-plain-{}", std::process::id()));
        std::fs::write(&plain, "not a program").unwrap();
        let e = resolve_program(plain.as_os_str()).unwrap_err();
        std::fs::remove_file(&plain).unwrap();
        assert!(e.to_string().contains("not an executable"), "{e}");
    }

    #[test]
    fn the_command_gets_default_sigpipe() {
        // Rust ignores SIGPIPE in this process; a command of ours must not inherit that,
        // or `yes | head` style pipelines would not end the way they do in a shell.
        let out = std::env::temp_dir().join(format!("tracer-sigign-{}", std::process::id()));
        let script = format!("grep SigIgn /proc/self/status > {}", out.display());
        let child = spawn_held(&["sh".into(), "-c".into(), script.into()]).unwrap();
        let pid = child.release().unwrap();
        assert_eq!(wait_exit_code(pid), 0);
        let line = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        let ignored =
            u64::from_str_radix(line.trim().trim_start_matches("SigIgn:").trim(), 16).unwrap();
        assert_eq!(
            ignored & (1 << (libc::SIGPIPE - 1)),
            0,
            "SIGPIPE ignored: {line}"
        );
    }

    #[test]
    fn held_child_runs_only_when_released() {
        let dir = std::env::temp_dir().join(format!("tracer-spawn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("ran");
        let script = format!("touch {}; exit 7", marker.display());
        let child = spawn_held(&["sh".into(), "-c".into(), script.into()]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!marker.exists(), "the child must wait to be released");
        let pid = child.release().unwrap();
        assert_eq!(wait_exit_code(pid), 7);
        assert!(marker.exists());

        // Dropped without release: nothing runs.
        std::fs::remove_file(&marker).unwrap();
        let script = format!("touch {}", marker.display());
        drop(spawn_held(&["sh".into(), "-c".into(), script.into()]).unwrap());
        assert!(!marker.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
