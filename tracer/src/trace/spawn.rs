//! Starting a command so that it is traced from its first instruction: fork, let the child
//! wait on a pipe until its pid is in the kernel's traced map, then exec.
//!
//! `std::process::Command` cannot do this (spawn returns only after exec), so this is
//! fork + execve by hand. Everything the child needs is prepared before the fork; the child
//! only makes async-signal-safe calls (read, write, execve, _exit).

use std::{
    ffi::{CString, OsStr, OsString},
    os::unix::ffi::{OsStrExt as _, OsStringExt as _},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, anyhow, bail};

/// Finds `program` like a shell does: a path when it has a `/`, else the first executable
/// on `PATH`.
pub fn resolve_program(program: &OsStr) -> Result<PathBuf> {
    let is_exec = |p: &Path| {
        use std::os::unix::fs::PermissionsExt as _;
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

/// Who a started command runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    /// The supplementary groups, as `initgroups(3)` sets them for the user.
    pub groups: Vec<u32>,
    /// The user's name (the uid when it has none), for messages.
    pub name: String,
    /// The user's home directory and login shell, from its passwd entry (none for a bare
    /// uid): the command's HOME and SHELL.
    pub home: Option<OsString>,
    pub shell: Option<OsString>,
}

impl RunAs {
    /// Whether the command runs with less than root's rights. Such a command gets a
    /// session of its own (no controlling terminal) and an environment of its own.
    pub fn drops_privileges(&self) -> bool {
        self.uid != 0
    }
}

/// A user's entry in the password database.
struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
    dir: OsString,
    shell: OsString,
}

/// A user's entry in the password database.
fn passwd_entry(by: PasswdKey) -> Result<Option<Passwd>> {
    let mut pw = std::mem::MaybeUninit::<libc::passwd>::zeroed();
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let mut buf: Vec<libc::c_char> = vec![0; 16 << 10];
    let rc = match &by {
        // SAFETY: name is NUL-terminated; pw, buf and found outlive the call.
        PasswdKey::Name(name) => unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                pw.as_mut_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        },
        // SAFETY: as above.
        PasswdKey::Uid(uid) => unsafe {
            libc::getpwuid_r(
                *uid,
                pw.as_mut_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        },
    };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc)).context("reading the password database");
    }
    if found.is_null() {
        return Ok(None);
    }
    // SAFETY: getpwnam_r/getpwuid_r filled pw (found points to it); its strings point
    // into buf.
    let pw = unsafe { pw.assume_init() };
    let text = |p: *const libc::c_char| {
        if p.is_null() {
            return OsString::new();
        }
        // SAFETY: a NUL-terminated string of the entry, in buf.
        OsStr::from_bytes(unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes()).to_os_string()
    };
    Ok(Some(Passwd {
        name: text(pw.pw_name).to_string_lossy().into_owned(),
        uid: pw.pw_uid,
        gid: pw.pw_gid,
        dir: text(pw.pw_dir),
        shell: text(pw.pw_shell),
    }))
}

enum PasswdKey {
    Name(CString),
    Uid(u32),
}

/// The groups `initgroups(user, gid)` would give: `gid` and every group listing the user.
fn groups_of(user: &str, gid: u32) -> Result<Vec<u32>> {
    let name = cstring(user)?;
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut n = groups.len() as libc::c_int;
        // SAFETY: name is NUL-terminated; groups has room for n entries.
        let rc = unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            groups.truncate(n.max(0) as usize);
            return Ok(groups);
        }
        // Too small: n says how many there are.
        if n as usize <= groups.len() || groups.len() > 1 << 16 {
            bail!("cannot list the groups of {user}");
        }
        groups.resize(n as usize, 0);
    }
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// Who a command started by `trace` runs as: `-u USER` (a name, or a uid), else, when the
/// tracer runs as root through sudo, the user who ran sudo (`SUDO_UID`, `SUDO_GID`), with
/// that user's supplementary groups. `None`: as the tracer itself (root without sudo or
/// `-u` keeps root).
pub fn run_as(user: Option<&str>) -> Result<Option<RunAs>> {
    run_as_from(
        user,
        effective_uid(),
        std::env::var("SUDO_UID").ok().as_deref(),
        std::env::var("SUDO_GID").ok().as_deref(),
    )
}

fn run_as_from(
    user: Option<&str>,
    euid: u32,
    sudo_uid: Option<&str>,
    sudo_gid: Option<&str>,
) -> Result<Option<RunAs>> {
    let (name, uid, gid) = match user {
        Some(user) => match user.parse::<u32>() {
            Ok(uid) => passwd_entry(PasswdKey::Uid(uid))?
                .map_or_else(|| (uid.to_string(), uid, uid), |e| (e.name, e.uid, e.gid)),
            Err(_) => passwd_entry(PasswdKey::Name(cstring(user)?))?
                .map(|e| (e.name, e.uid, e.gid))
                .ok_or_else(|| anyhow!("-u {user}: no such user (see `getent passwd`)"))?,
        },
        None => {
            let Some(sudo_uid) = sudo_uid.filter(|_| euid == 0) else {
                return Ok(None);
            };
            let uid: u32 = sudo_uid.parse().map_err(|_not_a_number| {
                anyhow!("SUDO_UID={sudo_uid:?} is not a uid: unset it, or give -u USER")
            })?;
            let entry = passwd_entry(PasswdKey::Uid(uid))?;
            let gid = match sudo_gid {
                Some(g) => g.parse().map_err(|_not_a_number| {
                    anyhow!("SUDO_GID={g:?} is not a gid: unset it, or give -u USER")
                })?,
                None => entry.as_ref().map_or(uid, |e| e.gid),
            };
            let name = entry.map_or_else(|| uid.to_string(), |e| e.name);
            (name, uid, gid)
        }
    };
    if uid == euid && user.is_some() && uid != 0 {
        // Already that user.
        return Ok(None);
    }
    if euid != 0 {
        bail!(
            "-u {name}: only root can run the command as another user (the tracer runs as uid {euid})"
        );
    }
    if uid == 0 && user.is_none() {
        return Ok(None);
    }
    // A user with no passwd entry (a bare uid) gets its group only, and no HOME.
    let entry = passwd_entry(PasswdKey::Uid(uid))?;
    let groups = match &entry {
        Some(e) => groups_of(&e.name, gid)?,
        None => vec![gid],
    };
    Ok(Some(RunAs {
        uid,
        gid,
        groups,
        name,
        home: entry.as_ref().map(|e| e.dir.clone()),
        shell: entry.map(|e| e.shell),
    }))
}

/// What a command run as another user keeps of the tracer's environment, as sudo's
/// `env_reset` keeps it: the search path, the terminal, the locale (and `LC_*`), the time
/// zone and the display. Anything else (a secret in root's environment, `SUDO_*`) would
/// be readable by that user in /proc/PID/environ.
const KEPT_ENV: &[&str] = &[
    "PATH",
    "TERM",
    "LANG",
    "LANGUAGE",
    "TZ",
    "COLORS",
    "LS_COLORS",
    "DISPLAY",
    "XAUTHORITY",
];

/// The command's environment: the tracer's, unless the command drops privileges; then,
/// as runuser sets it, HOME, SHELL, USER and LOGNAME of the target user, and of the
/// tracer's only what [`KEPT_ENV`] names (no `SUDO_*`).
fn command_env(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
    run_as: Option<&RunAs>,
) -> Vec<(OsString, OsString)> {
    let Some(r) = run_as.filter(|r| r.drops_privileges()) else {
        return vars.into_iter().collect();
    };
    let mut env: Vec<(OsString, OsString)> = vars
        .into_iter()
        .filter(|(k, _)| {
            let k = k.as_bytes();
            KEPT_ENV.iter().any(|kept| k == kept.as_bytes()) || k.starts_with(b"LC_")
        })
        .collect();
    let user = OsString::from(&r.name);
    let own = [
        ("HOME", r.home.clone()),
        ("SHELL", r.shell.clone()),
        ("USER", Some(user.clone())),
        ("LOGNAME", Some(user)),
    ];
    for (k, v) in own {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            env.push((k.into(), v));
        }
    }
    env
}

fn cstring(s: impl Into<Vec<u8>>) -> Result<CString> {
    CString::new(s).context("an argument or environment variable contains a NUL byte")
}

/// A forked child waiting for [`HeldChild::release`] before it execs the command.
pub struct HeldChild {
    pub pid: u32,
    /// It leads a session (and a process group) of its own: see [`spawn_held`].
    pub new_session: bool,
    go_write: libc::c_int,
    err_read: libc::c_int,
    /// The user it switches to, for messages.
    user: Option<String>,
}

/// What the child failed at, sent to the parent before it exits.
const STAGE_EXEC: i32 = 0;
const STAGE_SETGROUPS: i32 = 1;
const STAGE_SETGID: i32 = 2;
const STAGE_SETUID: i32 = 3;
const STAGE_SETSID: i32 = 4;

/// Forks a child that will exec `argv` (argv[0] resolved on PATH) once released, as
/// `run_as` when given (its groups, gid and uid are set, in that order, before the exec);
/// `quiet`: with /dev/null as its standard input, output and error (the tracer's TUI has
/// the terminal).
///
/// A command that drops privileges ([`RunAs::drops_privileges`]) first calls setsid():
/// it has no controlling terminal, so it cannot push input into root's shell with
/// ioctl(TIOCSTI) (which then needs CAP_SYS_ADMIN), though it keeps the terminal's open
/// descriptors, as under `sudo` without `use_pty` or `strace -u`. Its process group is
/// its pid, and the terminal's signals no longer reach it: the tracer passes them on.
/// It also gets its own environment ([`command_env`]).
pub fn spawn_held(argv: &[OsString], run_as: Option<&RunAs>, quiet: bool) -> Result<HeldChild> {
    let program = argv
        .first()
        .ok_or_else(|| anyhow!("no command given after --"))?;
    let path = cstring(resolve_program(program)?.into_os_string().into_vec())?;
    let args: Vec<CString> = argv
        .iter()
        .map(|a| cstring(a.clone().into_vec()))
        .collect::<Result<_>>()?;
    let new_session = run_as.is_some_and(RunAs::drops_privileges);
    let envs: Vec<CString> = command_env(std::env::vars_os(), run_as)
        .into_iter()
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

    let creds = run_as.map(|r| {
        let groups: Vec<libc::gid_t> = r.groups.clone();
        (r.uid, r.gid, groups)
    });

    // Opened before the fork: the child only dup2()s it.
    let null = if quiet {
        Some(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .context("opening /dev/null for the command")?,
        )
    } else {
        None
    };
    let null_fd = null.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
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
            let n = libc::read(go[0], (&raw mut byte).cast(), 1);
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
            if let Some(fd) = null_fd {
                for std_fd in 0..3 {
                    libc::dup2(fd, std_fd);
                }
            }
            let fail = |stage: i32| {
                let report = [stage, *libc::__errno_location()];
                libc::write(err[1], report.as_ptr().cast(), 8);
                libc::_exit(127);
            };
            if new_session && libc::setsid() < 0 {
                fail(STAGE_SETSID);
            }
            if let Some((uid, gid, groups)) = &creds {
                if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
                    fail(STAGE_SETGROUPS);
                }
                if libc::setresgid(*gid, *gid, *gid) != 0 {
                    fail(STAGE_SETGID);
                }
                if libc::setresuid(*uid, *uid, *uid) != 0 {
                    fail(STAGE_SETUID);
                }
            }
            libc::execve(path.as_ptr(), argp.as_ptr(), envp.as_ptr());
            fail(STAGE_EXEC);
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
        new_session,
        go_write: go[1],
        err_read: err[0],
        user: run_as.map(|r| r.name.clone()),
    })
}

impl HeldChild {
    /// Lets the child exec; returns once it has (or fails with why it could not).
    pub fn release(mut self) -> Result<u32> {
        let pid = self.pid;
        let mut report = [0i32; 2];
        // SAFETY: fds owned by self; the buffer is 8 bytes.
        let n = unsafe {
            libc::write(self.go_write, [1u8].as_ptr().cast(), 1);
            libc::close(self.go_write);
            let n = libc::read(self.err_read, report.as_mut_ptr().cast(), 8);
            libc::close(self.err_read);
            n
        };
        let user = self.user.take();
        #[expect(
            clippy::mem_forget,
            reason = "the fds are closed above and the child is reaped below: Drop must not do it again"
        )]
        std::mem::forget(self);
        if n == 8 {
            reap(pid);
            let [stage, errno] = report;
            let e = std::io::Error::from_raw_os_error(errno);
            let call = match stage {
                STAGE_SETGROUPS => "setgroups: ",
                STAGE_SETGID => "setresgid: ",
                STAGE_SETUID => "setresuid: ",
                STAGE_SETSID => "setsid: ",
                _ => "",
            };
            match user {
                Some(user) => bail!("cannot run the command as {user}: {call}{e}"),
                None => bail!("cannot run the command: {call}{e}"),
            }
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
    fn the_command_runs_as_the_user_sudo_names_or_u_asks_for() {
        // Root without sudo or -u: as root.
        assert_eq!(run_as_from(None, 0, None, None).unwrap(), None);
        // Through sudo: the invoking user, with its own groups only.
        let r = run_as_from(None, 0, Some("65534"), Some("65534"))
            .unwrap()
            .unwrap();
        assert_eq!((r.uid, r.gid), (65534, 65534));
        assert!(r.groups.contains(&65534) && !r.groups.contains(&0), "{r:?}");
        // sudo -u root, or a SUDO_UID of 0: root.
        assert_eq!(run_as_from(None, 0, Some("0"), Some("0")).unwrap(), None);
        // -u wins over sudo; a name or a uid.
        let by_name = run_as_from(Some("nobody"), 0, Some("1000"), None)
            .unwrap()
            .unwrap();
        assert_eq!((by_name.uid, by_name.name.as_str()), (65534, "nobody"));
        let by_uid = run_as_from(Some("65534"), 0, None, None).unwrap().unwrap();
        assert_eq!(by_uid, by_name);
        assert_eq!(
            run_as_from(Some("root"), 0, Some("1000"), None)
                .unwrap()
                .map(|r| r.uid),
            Some(0)
        );
        // Without root: SUDO_UID means nothing, and -u another user is refused.
        assert_eq!(run_as_from(None, 1000, Some("65534"), None).unwrap(), None);
        let e = run_as_from(Some("nobody"), 1000, None, None).unwrap_err();
        assert!(
            e.to_string()
                .contains("only root can run the command as another user"),
            "{e}"
        );
        let e = run_as_from(Some("no-such-user-zz"), 0, None, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "-u no-such-user-zz: no such user (see `getent passwd`)"
        );
        let e = run_as_from(None, 0, Some("bob"), None).unwrap_err();
        assert!(
            e.to_string().starts_with("SUDO_UID=\"bob\" is not a uid"),
            "{e}"
        );
    }

    #[test]
    fn a_command_run_as_another_user_gets_that_users_environment() {
        let vars = |pairs: &[(&str, &str)]| -> Vec<(OsString, OsString)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect()
        };
        let roots = vars(&[
            ("HOME", "/root"),
            ("USER", "root"),
            ("SUDO_USER", "alice"),
            ("SUDO_UID", "1000"),
            ("SECRET_TOKEN", "hunter2"),
            ("PATH", "/usr/bin:/bin"),
            ("TERM", "xterm"),
            ("LC_ALL", "C.UTF-8"),
        ]);
        let mut nobody = RunAs {
            uid: 65534,
            gid: 65534,
            groups: vec![65534],
            name: "nobody".into(),
            home: Some("/nonexistent".into()),
            shell: Some("/usr/sbin/nologin".into()),
        };
        assert_eq!(
            command_env(roots.clone(), Some(&nobody)),
            vars(&[
                ("PATH", "/usr/bin:/bin"),
                ("TERM", "xterm"),
                ("LC_ALL", "C.UTF-8"),
                ("HOME", "/nonexistent"),
                ("SHELL", "/usr/sbin/nologin"),
                ("USER", "nobody"),
                ("LOGNAME", "nobody"),
            ])
        );
        // A bare uid: no HOME or SHELL of root's, none of its own.
        nobody.home = None;
        nobody.shell = None;
        let env = command_env(roots.clone(), Some(&nobody));
        assert!(
            !env.iter().any(|(k, _)| k == "HOME" || k == "SHELL"),
            "{env:?}"
        );
        // Root (without -u, or -u root): the tracer's environment as it is.
        assert_eq!(command_env(roots.clone(), None), roots);
        let root = RunAs { uid: 0, ..nobody };
        assert_eq!(command_env(roots.clone(), Some(&root)), roots);
    }

    #[test]
    fn the_command_gets_default_sigpipe() {
        // Rust ignores SIGPIPE in this process; a command of ours must not inherit that,
        // or `yes | head` style pipelines would not end the way they do in a shell.
        let out = std::env::temp_dir().join(format!("tracer-sigign-{}", std::process::id()));
        let script = format!("grep SigIgn /proc/self/status > {}", out.display());
        let child = spawn_held(&["sh".into(), "-c".into(), script.into()], None, false).unwrap();
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
    fn a_quiet_command_has_dev_null_for_its_standard_files() {
        let script =
            r#"for fd in 0 1 2; do [ "$(readlink /proc/$$/fd/$fd)" = /dev/null ] || exit 3; done"#;
        let child = spawn_held(&["sh".into(), "-c".into(), script.into()], None, true).unwrap();
        let pid = child.release().unwrap();
        assert_eq!(wait_exit_code(pid), 0);
    }

    #[test]
    fn held_child_runs_only_when_released() {
        let dir = std::env::temp_dir().join(format!("tracer-spawn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("ran");
        let script = format!("touch {}; exit 7", marker.display());
        let child = spawn_held(&["sh".into(), "-c".into(), script.into()], None, false).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!marker.exists(), "the child must wait to be released");
        let pid = child.release().unwrap();
        assert_eq!(wait_exit_code(pid), 7);
        assert!(marker.exists());

        // Dropped without release: nothing runs.
        std::fs::remove_file(&marker).unwrap();
        let script = format!("touch {}", marker.display());
        drop(spawn_held(&["sh".into(), "-c".into(), script.into()], None, false).unwrap());
        assert!(!marker.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
