//! The host's side: the Debian packages the VM test needs (installed with apt when
//! missing) and the kernel `linux-image-cloud-amd64` brings.

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{is_root, output, which};

/// Debian packages the harness needs, with how to tell each is there.
const PACKAGES: &[(&str, Have)] = &[
    ("qemu-system-x86", Have::Program("qemu-system-x86_64")),
    ("linux-image-cloud-amd64", Have::Package),
    // A static busybox: the shell, mount, insmod, ip, dd, timeout and poweroff of the
    // guest, without copying a userland.
    ("busybox-static", Have::Package),
    ("e2fsprogs", Have::Program("mkfs.ext4")),
];

#[derive(Clone, Copy)]
enum Have {
    Program(&'static str),
    Package,
}

/// `Ok(Err(reason))` when the packages cannot be installed here (the skip).
pub(super) fn install_packages(dir: &Path) -> Result<Result<(), String>> {
    let total = PACKAGES.len();
    let mut updated = false;
    for (i, (package, have)) in PACKAGES.iter().enumerate() {
        let step = format!("[vm {}/{total}] {package}", i + 1);
        let present = match have {
            Have::Program(p) => program(p).map(|p| p.display().to_string()),
            Have::Package => dpkg_installed(package).then(|| "installed".to_string()),
        };
        if let Some(detail) = present {
            eprintln!("{step}: ok ({detail})");
            continue;
        }
        if !Path::new("/usr/bin/apt-get").exists() {
            return Ok(Err(format!(
                "{package} is missing and there is no apt-get here (not a Debian-like system)"
            )));
        }
        if !is_root() {
            return Ok(Err(format!(
                "{package} is missing and apt-get needs root (run as root, or install it: \
                 apt-get install {package})"
            )));
        }
        eprintln!(
            "{step}: installing with apt-get (log: {}/apt.log)",
            dir.display()
        );
        let log = dir.join("apt.log");
        if !updated {
            if let Err(why) = apt(&log, &["update"]) {
                return Ok(Err(format!("apt-get update failed: {why}")));
            }
            updated = true;
        }
        if let Err(why) = apt(&log, &["install", "-y", "--no-install-recommends", package]) {
            return Ok(Err(format!("apt-get could not install {package}: {why}")));
        }
    }
    Ok(Ok(()))
}

/// Runs apt-get with its output appended to `log`; on failure, the line that says why.
fn apt(log: &Path, args: &[&str]) -> std::result::Result<(), String> {
    let out = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|e| format!("could not start apt-get: {e}"))?;
    let mut text = out.stdout;
    text.extend_from_slice(&out.stderr);
    if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(log) {
        // The log is for reading later; failing to write it must not hide apt's verdict.
        drop(f.write_all(&text));
    }
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&text);
    let why = text
        .lines()
        .rfind(|l| l.starts_with("E:"))
        .or_else(|| text.lines().rfind(|l| !l.trim().is_empty()))
        .unwrap_or("no output")
        .trim();
    Err(format!("{why} ({})", out.status))
}

fn dpkg_installed(package: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|s| s.trim() == "install ok installed")
}

/// A program on PATH or in the sbin directories (not on a plain user's PATH).
pub(crate) fn program(name: &str) -> Option<PathBuf> {
    which(name).or_else(|| {
        ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
    })
}

/// A kernel to boot: its version, image and modules directory.
pub(super) struct Kernel {
    pub version: String,
    pub vmlinuz: PathBuf,
    pub modules: PathBuf,
}

/// The kernel `linux-image-cloud-amd64` depends on (a metapackage: the versioned image
/// package it names holds /boot/vmlinuz-VERSION and /lib/modules/VERSION).
pub(super) fn find_kernel() -> Result<Kernel> {
    let depends =
        output(Command::new("dpkg-query").args(["-W", "-f=${Depends}", "linux-image-cloud-amd64"]))
            .unwrap_or_default();
    let mut versions: Vec<String> = depends
        .split([',', '|'])
        .filter_map(|d| d.trim().split(' ').next()?.strip_prefix("linux-image-"))
        .map(str::to_string)
        .collect();
    if versions.is_empty() {
        // No metapackage metadata: any installed cloud kernel, newest name last.
        let mut found: Vec<String> = fs::read_dir("/boot")
            .context("listing /boot")?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| Some(n.strip_prefix("vmlinuz-")?.to_string()))
            .filter(|v| v.ends_with("-cloud-amd64"))
            .collect();
        found.sort();
        versions = found.into_iter().rev().collect();
    }
    for version in versions {
        let vmlinuz = PathBuf::from(format!("/boot/vmlinuz-{version}"));
        let modules = PathBuf::from(format!("/lib/modules/{version}"));
        if vmlinuz.is_file() && modules.join("modules.dep").is_file() {
            return Ok(Kernel {
                version,
                vmlinuz,
                modules,
            });
        }
    }
    bail!(
        "linux-image-cloud-amd64 is installed but no /boot/vmlinuz-*-cloud-amd64 with its \
         /lib/modules/*/modules.dep was found"
    )
}
