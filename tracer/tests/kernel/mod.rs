//! What the running kernel allows, measured by the root tests themselves and not by the
//! tracer's own code (a raw bpf(2) program load, bpftool's reading of the kernel's BTF,
//! sysfs), so that a test can assert what the tracer says on any kernel: the exact
//! refusal on this project's CI kernel (6.18: fentry refused with EPERM at program load,
//! no kprobes), the other branch elsewhere.

use std::{path::Path, process::Command};

/// The running kernel's release (`uname -r`).
pub(crate) fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .expect("/proc/sys/kernel/osrelease")
        .trim()
        .to_string()
}

/// The running kernel's (major, minor) version.
pub(crate) fn version() -> (u32, u32) {
    let release = release();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>());
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor),
        _ => panic!("cannot read a version in the kernel release {release:?}"),
    }
}

/// Whether kprobes are built into this kernel: its kprobe PMU is in sysfs.
pub(crate) fn kprobes_built_in() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe").exists()
}

/// The kernel's BTF as bpftool prints it (`format raw`: one `[id] KIND 'name' ...` line
/// per type).
pub(crate) struct Btf(String);

impl Btf {
    /// Reads /sys/kernel/btf/vmlinux through bpftool.
    pub(crate) fn read() -> Self {
        let out = Command::new("bpftool")
            .args([
                "btf",
                "dump",
                "file",
                "/sys/kernel/btf/vmlinux",
                "format",
                "raw",
            ])
            .output()
            .expect("bpftool (apt-get install bpftool; `cargo xtask test` installs it)");
        assert!(
            out.status.success(),
            "bpftool could not read the kernel's BTF: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(String::from_utf8(out.stdout).expect("bpftool prints text"))
    }

    /// The id of the first type of `kind` named `name`.
    fn id(&self, kind: &str, name: &str) -> Option<u32> {
        // The quotes end the name: 'x' is not a prefix of 'x_y'.
        let wanted = format!("{kind} '{name}'");
        self.0.lines().find_map(|l| {
            let (id, rest) = l.strip_prefix('[')?.split_once("] ")?;
            rest.starts_with(&wanted).then(|| id.parse().ok())?
        })
    }

    /// Whether a `tp_btf` program can attach to tracepoint `name` (the kernel has its
    /// `btf_trace_<name>` typedef).
    pub(crate) fn has_tracepoint(&self, name: &str) -> bool {
        self.id("TYPEDEF", &format!("btf_trace_{name}")).is_some()
    }

    /// The BTF id of kernel function `name`.
    pub(crate) fn function(&self, name: &str) -> Option<u32> {
        self.id("FUNC", name)
    }
}

/// How an empty fentry program fared on a kernel function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fentry {
    Attached,
    /// Refused at "program load" or at "attach", with this errno.
    Refused {
        at: &'static str,
        errno: i32,
    },
}

impl Fentry {
    /// The tracer's words for this outcome (its `Refusal` display), for the errnos the
    /// kernel gives tracing programs.
    pub(crate) fn tracer_words(self) -> Option<String> {
        let Self::Refused { at, errno } = self else {
            return None;
        };
        let name = match errno {
            libc::EPERM => "EPERM".to_string(),
            libc::EACCES => "EACCES".to_string(),
            libc::EINVAL => "EINVAL".to_string(),
            libc::ENOENT => "ENOENT".to_string(),
            524 => "ENOTSUPP".to_string(),
            n => format!("errno {n}"),
        };
        Some(format!("refused with {name} at {at}"))
    }
}

/// bpf(2) with `attr` (the command's part of `union bpf_attr`): the result or the errno.
fn bpf(cmd: libc::c_long, attr: &mut [u64]) -> Result<i32, i32> {
    // SAFETY: `attr` is a zeroed, 8-byte aligned buffer at least as large as the fields
    // of the command; its length is passed as the attribute size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            size_of_val(attr) as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(rc as i32)
    }
}

/// Loads an empty fentry program (`r0 = 0; exit`) on kernel function `function` with
/// raw bpf(2) calls, attaches it, and closes it: whether this kernel allows fentry there.
pub(crate) fn try_fentry(btf: &Btf, function: &str) -> Fentry {
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
    const BPF_PROG_TYPE_TRACING: u32 = 26;
    const BPF_TRACE_FENTRY: u32 = 24;
    let id = btf
        .function(function)
        .unwrap_or_else(|| panic!("{function} is not in this kernel's BTF"));
    // mov64 r0, 0; exit
    let insns: [u64; 2] = [0xb7, 0x95];
    let license = c"GPL";
    // union bpf_attr for BPF_PROG_LOAD, as u64 words: prog_type and insn_cnt, insns,
    // license, ..., expected_attach_type at byte 68, attach_btf_id at byte 108.
    let mut attr = [0u64; 16];
    attr[0] = u64::from(BPF_PROG_TYPE_TRACING) | ((insns.len() as u64) << 32);
    attr[1] = insns.as_ptr() as u64;
    attr[2] = license.as_ptr() as u64;
    attr[8] = u64::from(BPF_TRACE_FENTRY) << 32;
    attr[13] = u64::from(id) << 32;
    let prog = match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => fd,
        Err(errno) => {
            return Fentry::Refused {
                at: "program load",
                errno,
            };
        }
    };
    // BPF_RAW_TRACEPOINT_OPEN with no name attaches a tracing program where it loaded.
    let mut attr = [0u64; 2];
    attr[1] = prog as u64;
    let outcome = match bpf(BPF_RAW_TRACEPOINT_OPEN, &mut attr) {
        Ok(link) => {
            // SAFETY: the link's fd, ours.
            unsafe { libc::close(link) };
            Fentry::Attached
        }
        Err(errno) => Fentry::Refused {
            at: "attach",
            errno,
        },
    };
    // SAFETY: the program's fd, ours.
    unsafe { libc::close(prog) };
    outcome
}
