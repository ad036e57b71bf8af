//! `cargo xtask vm-test`: boot Debian's stock kernel (6.1, `linux-image-cloud-amd64`)
//! under QEMU with an initramfs holding the tracer, run a list of commands in it and
//! report what each printed.
//!
//! Why a VM: the kernel this project is built on (6.18) is the only one the root
//! integration tests see, and it has neither kprobes nor fentry. Debian's 6.1 has both, is
//! a second kernel version (tracepoints missing there are skipped by the loader), and
//! nothing done inside the VM can collide with another tracer loaded on the host.
//!
//! Shape: the guest's `/init` is generated from [`commands::COMMANDS`]
//! (`initramfs.rs`); it prints markers around each command (`=== BEGIN name t=UPTIME`,
//! `=== STDERR name`, `=== END name rc=N t=UPTIME`) on the serial console, which the host
//! captures to `target/vm/console.log` and parses (`console.rs`); each command's output is
//! checked (`checks.rs`: the JSON of `doctor --json` and `demo --json`) and reported
//! (`report.rs`). Everything the run makes stays in `target/vm/`.

mod checks;
mod commands;
mod console;
mod initramfs;
mod packages;
mod report;

use std::{fs, path::Path, process::Command, time::Duration};

use anyhow::{Context as _, Result, anyhow};

pub(crate) use self::packages::program;
use crate::{build, status, target_dir, tracer_binary};

const DISK_MIB: u64 = 256;

/// Runs the VM test; `keep` only changes what is said about `target/vm/` (it is kept).
pub(crate) fn vm_test(keep: bool, timeout: Duration) -> Result<()> {
    let dir = target_dir().join("vm");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    // 1. Packages; apt failing to install them is the only reason to skip.
    if let Err(reason) = packages::install_packages(&dir)? {
        println!("vm-test: skipped: {reason}");
        return Ok(());
    }
    let kernel = packages::find_kernel()?;
    eprintln!(
        "vm-test: kernel {} ({}, modules in {})",
        kernel.version,
        kernel.vmlinuz.display(),
        kernel.modules.display()
    );

    // 2. The tracer (release, with the eBPF object embedded) and the initramfs.
    build(true)?;
    let initramfs = dir.join("initramfs.cpio.gz");
    let contents = initramfs::build_initramfs(&kernel, &tracer_binary(true), &dir, &initramfs)?;
    eprintln!(
        "vm-test: initramfs {} ({} entries, {} KiB)",
        initramfs.display(),
        contents,
        fs::metadata(&initramfs)
            .map(|m| m.len() / 1024)
            .unwrap_or(0)
    );

    // 3. A fresh ext4 disk for /data.
    let disk = dir.join("disk.img");
    make_disk(&disk)?;

    // 4-5. Boot, capture, parse.
    let boot = console::boot(&dir, &kernel, &initramfs, &disk, timeout)?;
    let console = console::parse_console(&boot.lines);
    let verdict = report::report(&dir, &boot, &console);

    if keep {
        eprintln!("vm-test: kept {} (--keep)", dir.display());
    } else {
        eprintln!(
            "vm-test: {} kept anyway (build outputs: console.log, per-command output, \
             initramfs, disk.img; rebuilt on every run)",
            dir.display()
        );
    }
    verdict
}

/// A fresh ext4 image for /data.
fn make_disk(disk: &Path) -> Result<()> {
    // A new image every run: no state carries over from an earlier (maybe killed) boot.
    let f = fs::File::create(disk).with_context(|| format!("creating {}", disk.display()))?;
    f.set_len(DISK_MIB << 20)
        .with_context(|| format!("sizing {}", disk.display()))?;
    drop(f);
    let mkfs = program("mkfs.ext4").ok_or_else(|| anyhow!("mkfs.ext4 not found (e2fsprogs)"))?;
    status(
        Command::new(mkfs)
            .args(["-F", "-q", "-L", "vmdata"])
            .arg(disk),
    )
}
