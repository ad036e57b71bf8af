//! `cargo xtask vm-test`: boot Debian's stock kernel (6.1, `linux-image-cloud-amd64`)
//! under QEMU with an initramfs holding the tracer, run a list of commands in it and
//! report what each printed.
//!
//! Why a VM: the kernel this project is built on (6.18) is the only one the root
//! integration tests see, and it has neither kprobes nor fentry. Debian's 6.1 has both, is
//! a second kernel version (tracepoints missing there are skipped by the loader), and
//! nothing done inside the VM can collide with another tracer loaded on the host.
//!
//! Shape: the guest's `/init` is generated from [`COMMANDS`]; it prints markers around
//! each command (`=== BEGIN name t=UPTIME`, `=== STDERR name`, `=== END name rc=N
//! t=UPTIME`) on the serial console, which the host captures to `target/vm/console.log`
//! and parses ([`parse_console`]). Everything the run makes stays in `target/vm/`.

use std::{
    collections::{BTreeSet, HashMap},
    fmt::Write as _,
    fs,
    io::{BufRead as _, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};

use crate::{build, cpio, is_root, output, status, target_dir, tracer_binary, which};

/// How the host summarizes a command's output in its one-line report.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Report {
    /// The first line of stdout.
    FirstLine,
    /// `tracer demo --json`: the sender's (and receiver's) observed ledger.
    DemoJson,
    /// `tracer trace`: the attach report and the event count, from stderr.
    Trace,
}

/// A command the guest runs, in order, after the disk is mounted at /data.
pub struct VmCommand {
    /// Marker name: lowercase letters, digits and '-'.
    pub name: &'static str,
    /// A busybox `sh -c` command line; the tracer is on PATH, the test disk at /data.
    pub run: &'static str,
    /// Killed (exit status 143) after this long, so one hang does not eat the whole boot.
    pub timeout_secs: u32,
    pub report: Report,
}

/// The guest's work. Add a command here; `/init` is regenerated on every run.
pub const COMMANDS: &[VmCommand] = &[
    VmCommand {
        name: "uname",
        run: "uname -r",
        timeout_secs: 10,
        report: Report::FirstLine,
    },
    VmCommand {
        // On the virtio disk, not in the initramfs: tmpfs has no block I/O and no
        // filemap read path like a disk filesystem's.
        name: "make-input",
        run: "dd if=/dev/urandom of=/data/input bs=1M count=8 && sync && ls -l /data/input",
        timeout_secs: 60,
        report: Report::FirstLine,
    },
    VmCommand {
        // The plan on this kernel: which hook each step uses, and why not a better one. Each
        // function a usable tier names was tried (6.1 takes fentry and kprobes on all).
        name: "doctor",
        run: "tracer doctor > /tmp/doctor.txt; rc=$?; cat /tmp/doctor.txt; [ $rc = 0 ] && grep -qE '^  fentry/fexit: yes \\(tried on [0-9]+ functions?: attached on all\\)$' /tmp/doctor.txt && grep -qE '^  kprobes: +yes \\(tried on [0-9]+ functions?: attached on all\\)$' /tmp/doctor.txt && grep -q '^  ring buffer:  yes$' /tmp/doctor.txt",
        timeout_secs: 120,
        report: Report::FirstLine,
    },
    VmCommand {
        // The planner picks the fentry tier where 6.1 allows it and this build has it.
        name: "doctor-json",
        // (awk: the line after this step's "hook" must name the fentry tier; a null hook,
        // or fentry only among the hooks not used, fails.)
        run: "tracer doctor --json > /tmp/doctor.json && awk '/\"step\": \"CPU copy page cache -> user \\(read\\)\"/ { s = 1 } s && /\"hook\"/ { getline; print; exit }' /tmp/doctor.json | grep -q '\"tier\": \"fentry\"' && echo 'CPU copy page cache -> user: fentry filemap_read'",
        timeout_secs: 120,
        report: Report::FirstLine,
    },
    VmCommand {
        // Which tracepoints attach on this kernel and which are skipped, and why.
        name: "trace-true",
        run: "tracer trace --json -- true",
        timeout_secs: 180,
        report: Report::Trace,
    },
    VmCommand {
        // `--size` conflicts with `--file`; the file is 8 MiB.
        // The textbook's read+write on a second kernel: 4 switches and 2 CPU copies per
        // chunk (8 MiB in 128 chunks), though 6.1 has no send tracepoint (the send is
        // inferred from write()'s return value there).
        name: "read-write",
        // And the fentry tier saw every copy: fexit filemap_read (page cache -> user),
        // fexit tcp_sendmsg_locked (user -> socket) and the receiver's fexit
        // skb_copy_datagram_iter; and every lookup (fexit filemap_get_pages: 6.1 has no
        // mm_filemap_get_pages tracepoint), all 2048 pages hits.
        run: "tracer demo --method read-write --chunk 64K --json --file /data/input --expect syscalls=256,mode_switches=512,cpu_copies=256,cpu_copy_bytes=16M,cache_hits=2048,cache_misses=0 > /tmp/rw.json; rc=$?; cat /tmp/rw.json; [ $rc = 0 ] && grep -qE 'page-cache -> user: observed by fexit filemap_read\": 128,?$' /tmp/rw.json && grep -qE 'user -> socket: observed by fexit tcp_sendmsg_locked \\(no zero-copy flag\\)\": 128,?$' /tmp/rw.json && grep -qE 'page-cache lookup: observed by fexit filemap_get_pages\": [0-9]+,?$' /tmp/rw.json && grep -qE 'socket -> user: observed by fexit skb_copy_datagram_iter\": [0-9]+,?$' /tmp/rw.json",
        timeout_secs: 240,
        report: Report::DemoJson,
    },
    VmCommand {
        // Evicted first: the disk DMA of every byte, through the virtio disk.
        name: "read-write-cold",
        run: "tracer demo --method read-write --chunk 64K --json --file /data/input --cold --expect 'cpu_copy_bytes=16M,dma_bytes>=8M,cache_misses=2048,cache_hits=0'",
        timeout_secs: 240,
        report: Report::DemoJson,
    },
    VmCommand {
        // sendfile on 6.1 goes through the sendpage path: 2 switches, no CPU copy, page
        // references.
        name: "sendfile",
        // The kprobe tier sees them: kretprobe do_tcp_sendpages, one page per call.
        run: "tracer demo --method sendfile --chunk 64K --json --file /data/input --expect syscalls=128,mode_switches=256,cpu_copy_bytes=0,page_ref_bytes=8M > /tmp/sf.json; rc=$?; cat /tmp/sf.json; [ $rc = 0 ] && grep -qE 'page-cache -> socket: observed by kretprobe do_tcp_sendpages\": 128,?$' /tmp/sf.json",
        timeout_secs: 240,
        report: Report::DemoJson,
    },
    VmCommand {
        name: "read-send",
        run: "tracer demo --method read-send --chunk 64K --json --file /data/input --expect syscalls=256,mode_switches=512,cpu_copy_bytes=16M",
        timeout_secs: 240,
        report: Report::DemoJson,
    },
    VmCommand {
        // mmap, 128 writes, munmap; one CPU copy per chunk, from the page cache.
        name: "mmap-write",
        // The faults' page-cache lookups: fexit filemap_map_pages (6.1 has no
        // mm_filemap_map_pages tracepoint).
        run: "tracer demo --method mmap-write --chunk 64K --json --file /data/input --expect syscalls=130,cpu_copies=128,cpu_copy_bytes=8M,cache_hits=2048 > /tmp/mm.json; rc=$?; cat /tmp/mm.json; [ $rc = 0 ] && grep -qE 'page-cache lookup: observed by fexit filemap_map_pages\": [0-9]+,?$' /tmp/mm.json",
        timeout_secs: 240,
        report: Report::DemoJson,
    },
    VmCommand {
        name: "splice",
        // Before 6.5 the file -> pipe splice reads through filemap_read into the pipe
        // iterator: its references are observed there.
        run: "tracer demo --method splice --chunk 64K --json --file /data/input --expect syscalls=256,cpu_copy_bytes=0,page_ref_bytes=16M > /tmp/sp.json; rc=$?; cat /tmp/sp.json; [ $rc = 0 ] && grep -qE 'page-cache -> pipe: observed by fexit filemap_read \\(into the pipe: page references\\)\": 128,?$' /tmp/sp.json && grep -qE 'pipe -> socket: observed by kretprobe do_tcp_sendpages\": 128,?$' /tmp/sp.json",
        timeout_secs: 240,
        report: Report::DemoJson,
    },
    VmCommand {
        // Pinned pages; loopback copies them before delivery (on top of read()'s copy).
        name: "msg-zerocopy",
        // The pins themselves: fexit skb_zerocopy_iter_stream, one per send; and loopback's
        // copies of them, fexit skb_copy_ubufs (none left to infer).
        run: "tracer demo --method msg-zerocopy --chunk 64K --json --file /data/input --expect 'page_ref_bytes=8M,cpu_copy_bytes>=8M' > /tmp/zc.json; rc=$?; cat /tmp/zc.json; [ $rc = 0 ] && grep -qE 'user -> socket: observed by fexit skb_zerocopy_iter_stream\": 128,?$' /tmp/zc.json && grep -qE 'user -> socket: observed by fexit skb_copy_ubufs\": [0-9]+,?$' /tmp/zc.json && ! grep -q 'user -> socket: inferred' /tmp/zc.json",
        timeout_secs: 240,
        report: Report::DemoJson,
    },
    VmCommand {
        name: "copy-file-range",
        // The copy into the destination's page cache: fexit generic_perform_write (which
        // takes the place of the ext4_da_write_end tracepoint).
        run: "tracer demo --method copy-file-range --chunk 64K --json --file /data/input --expect syscalls=128,cpu_copy_bytes=8M > /tmp/cfr.json; rc=$?; cat /tmp/cfr.json; [ $rc = 0 ] && grep -qE 'page-cache -> page-cache: observed by fexit generic_perform_write\": 128,?$' /tmp/cfr.json",
        timeout_secs: 240,
        report: Report::DemoJson,
    },
    VmCommand {
        // 6.1 names the submission tracepoint io_uring_submit_sqe and passes the
        // completion's fields by value. READ linked to SEND_ZC: every copy and pin observed
        // by the fentry tier, nothing inferred.
        name: "io-uring",
        run: "tracer demo --method io-uring --chunk 64K --json --file /data/input --expect 'page_refs=128,page_ref_bytes=8M,cpu_copy_bytes>=16M,cache_hits=2048' > /tmp/iou.json; rc=$?; cat /tmp/iou.json; [ $rc = 0 ] && grep -qE 'page-cache -> user: observed by fexit filemap_read\": 128,?$' /tmp/iou.json && grep -qE 'user -> socket: observed by fexit skb_zerocopy_iter_stream\": 128,?$' /tmp/iou.json && ! grep -q ': inferred\"' /tmp/iou.json",
        timeout_secs: 240,
        report: Report::DemoJson,
    },
];

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

/// The modules the guest loads (with their dependencies from modules.dep): the Debian
/// cloud kernel has ext4 built in but the virtio disk stack as modules.
const MODULES: &[&str] = &["virtio_pci", "virtio_blk"];

const DISK_MIB: u64 = 256;

/// Kernels before 6.16 cannot mmap /sys/kernel/btf/vmlinux (ENODEV). The tracer now falls
/// back to reading it; set this to true to bind-mount a copy (on the initramfs' tmpfs,
/// which can be mapped) over the sysfs file instead, announced with a `=== NOTE`.
const BTF_COPY_WORKAROUND: bool = false;

pub fn vm_test(keep: bool, timeout: Duration) -> Result<()> {
    let dir = target_dir().join("vm");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    // 1. Packages; apt failing to install them is the only reason to skip.
    if let Err(reason) = install_packages(&dir)? {
        println!("vm-test: skipped: {reason}");
        return Ok(());
    }
    let kernel = find_kernel()?;
    eprintln!(
        "vm-test: kernel {} ({}, modules in {})",
        kernel.version,
        kernel.vmlinuz.display(),
        kernel.modules.display()
    );

    // 2. The tracer (release, with the eBPF object embedded) and the initramfs.
    build(true)?;
    let initramfs = dir.join("initramfs.cpio.gz");
    let contents = build_initramfs(&kernel, &tracer_binary(true), &dir, &initramfs)?;
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
    let boot = boot(&dir, &kernel, &initramfs, &disk, timeout)?;
    let console = parse_console(&boot.lines);
    let verdict = report(&dir, &boot, &console);

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

// ---------------------------------------------------------------------------------------
// 1. Packages and the kernel

/// `Ok(Err(reason))` when the packages cannot be installed here (the skip).
fn install_packages(dir: &Path) -> Result<Result<(), String>> {
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
        let _ = f.write_all(&text);
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

pub struct Kernel {
    version: String,
    vmlinuz: PathBuf,
    modules: PathBuf,
}

/// The kernel `linux-image-cloud-amd64` depends on (a metapackage: the versioned image
/// package it names holds /boot/vmlinuz-VERSION and /lib/modules/VERSION).
fn find_kernel() -> Result<Kernel> {
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

// ---------------------------------------------------------------------------------------
// 2. The initramfs

/// Writes the initramfs; returns how many entries it holds.
fn build_initramfs(kernel: &Kernel, tracer: &Path, dir: &Path, out: &Path) -> Result<usize> {
    let mut archive = cpio::Archive::default();
    for d in [
        "proc", "sys", "dev", "tmp", "var/tmp", "data", "root", "etc", "sbin", "usr/bin",
        "usr/sbin", "modules",
    ] {
        archive.dir(d)?;
    }
    // The kernel opens /dev/console for init's stdio before /init runs (and before
    // devtmpfs is mounted), so the node must be in the archive.
    archive.char_dev("dev/console", 0o600, 5, 1)?;

    let busybox = program("busybox")
        .ok_or_else(|| anyhow!("busybox-static is installed but no busybox binary was found"))?;
    let mut lib_dirs = BTreeSet::new();
    add_executable(&mut archive, &busybox, "bin/busybox", &mut lib_dirs)?;
    add_executable(&mut archive, tracer, "bin/tracer", &mut lib_dirs)?;

    let modules = module_load_order(&kernel.modules, MODULES)?;
    let mut names = Vec::new();
    for module in &modules {
        let name = module_name(module);
        let data = read_module(&kernel.modules.join(module))?;
        archive.file(&format!("modules/{name}.ko"), 0o644, data)?;
        names.push(name);
    }

    let init = init_script(&names, &lib_dirs, COMMANDS)?;
    fs::write(dir.join("init"), &init).context("writing target/vm/init (a copy to read)")?;
    archive.file("init", 0o755, init.into_bytes())?;

    let mut cpio = Vec::new();
    archive.write(&mut cpio)?;
    compress(&cpio, out)?;
    Ok(archive.len())
}

/// gzip, as the kernel's initramfs unpacker expects (CONFIG_RD_GZIP); an uncompressed
/// archive is also accepted, so without gzip the archive goes in as it is.
fn compress(cpio: &[u8], out: &Path) -> Result<()> {
    let Some(gzip) = program("gzip") else {
        eprintln!("vm-test: note: no gzip here, the initramfs is an uncompressed cpio");
        return fs::write(out, cpio).with_context(|| format!("writing {}", out.display()));
    };
    let file = fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut child = Command::new(gzip)
        .args(["-n", "-6", "-c"])
        .stdin(Stdio::piped())
        .stdout(file)
        .spawn()
        .context("starting gzip")?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("gzip has no stdin"))?
        .write_all(cpio)
        .context("writing to gzip")?;
    let st = child.wait().context("waiting for gzip")?;
    if !st.success() {
        bail!("gzip failed ({st})");
    }
    Ok(())
}

/// Adds a host executable at `at`, with the shared libraries and the dynamic loader
/// `ldd` resolves for it at their host paths (the loader's path is baked into the binary).
fn add_executable(
    archive: &mut cpio::Archive,
    host: &Path,
    at: &str,
    lib_dirs: &mut BTreeSet<String>,
) -> Result<()> {
    let data = fs::read(host).with_context(|| format!("reading {}", host.display()))?;
    archive.file(at, 0o755, data)?;
    for lib in shared_libraries(host)? {
        if archive.contains(&lib) {
            continue;
        }
        // Follow symlinks (libc.so.6 may be one): the archive holds the file's content.
        let data = fs::read(&lib).with_context(|| format!("reading {lib}"))?;
        archive.file(&lib, 0o755, data)?;
        if let Some((dir, _)) = lib.rsplit_once('/') {
            lib_dirs.insert(dir.to_string());
        }
    }
    Ok(())
}

/// The absolute paths `ldd` prints for `binary`; none for a static binary.
fn shared_libraries(binary: &Path) -> Result<Vec<String>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("running ldd (libc-bin) to find the tracer's shared libraries")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // "not a dynamic executable" (exit 1): nothing to copy.
        return Ok(Vec::new());
    }
    parse_ldd(&text).with_context(|| format!("ldd {}", binary.display()))
}

fn parse_ldd(text: &str) -> Result<Vec<String>> {
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.contains("not found") {
            bail!("a shared library is missing: {line}");
        }
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.trim(),
            None => line,
        };
        // The vDSO has no path: the kernel maps it.
        if let Some(p) = path
            .split_whitespace()
            .next()
            .filter(|p| p.starts_with('/'))
        {
            libs.push(p.to_string());
        }
    }
    Ok(libs)
}

/// The `modules.dep` paths of `wanted` and their dependencies, each after what it needs.
fn module_load_order(modules_dir: &Path, wanted: &[&str]) -> Result<Vec<String>> {
    let dep_file = modules_dir.join("modules.dep");
    let text =
        fs::read_to_string(&dep_file).with_context(|| format!("reading {}", dep_file.display()))?;
    let deps: HashMap<&str, Vec<&str>> = text
        .lines()
        .filter_map(|l| {
            let (module, deps) = l.split_once(':')?;
            Some((module.trim(), deps.split_whitespace().collect()))
        })
        .collect();
    let by_name: HashMap<String, &str> = deps.keys().map(|m| (module_name(m), *m)).collect();
    let mut order = Vec::new();
    for name in wanted {
        let module = by_name.get(*name).ok_or_else(|| {
            anyhow!(
                "module {name} is not in {} (built in? then drop it from MODULES)",
                dep_file.display()
            )
        })?;
        visit(module, &deps, &mut order, 0)?;
    }
    Ok(order)
}

fn visit<'a>(
    module: &'a str,
    deps: &HashMap<&'a str, Vec<&'a str>>,
    order: &mut Vec<String>,
    depth: usize,
) -> Result<()> {
    if depth > 64 {
        bail!("modules.dep: dependency cycle at {module}");
    }
    if order.iter().any(|m| m == module) {
        return Ok(());
    }
    for dep in deps.get(module).map(Vec::as_slice).unwrap_or_default() {
        visit(dep, deps, order, depth + 1)?;
    }
    order.push(module.to_string());
    Ok(())
}

/// "kernel/drivers/virtio/virtio_pci.ko.xz" -> "virtio_pci" (modprobe treats '-' as '_').
fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.split(".ko").next().unwrap_or(base);
    stem.replace('-', "_")
}

/// A module's ELF: compressed modules are decompressed here, since busybox insmod and
/// the 6.1 `init_module` path take a plain .ko.
fn read_module(path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let tool = if name.ends_with(".ko") {
        return fs::read(path).with_context(|| format!("reading {name}"));
    } else if name.ends_with(".ko.xz") {
        ("xz", "xz-utils")
    } else if name.ends_with(".ko.zst") {
        ("zstd", "zstd")
    } else if name.ends_with(".ko.gz") {
        ("gzip", "gzip")
    } else {
        bail!("{name}: not a kernel module name this harness knows");
    };
    let bin = program(tool.0).ok_or_else(|| {
        anyhow!(
            "{name} is compressed and {} is missing: apt-get install {}",
            tool.0,
            tool.1
        )
    })?;
    let out = Command::new(bin)
        .args(["-d", "-c"])
        .arg(path)
        .output()
        .with_context(|| format!("decompressing {name}"))?;
    if !out.status.success() {
        bail!(
            "{} -d -c {name} failed: {}",
            tool.0,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// Single-quotes `s` for sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The guest's /init: mounts, the disk, loopback, then each command between markers,
/// then power off. Setup failures are printed as `=== FAIL what` and the commands run
/// anyway (their own failures then say more than a stopped boot would).
fn init_script(
    modules: &[String],
    lib_dirs: &BTreeSet<String>,
    commands: &[VmCommand],
) -> Result<String> {
    let mut s = String::new();
    s.push_str(
        r#"#!/bin/busybox sh
# Generated by `cargo xtask vm-test` (xtask/src/vm.rs): edit COMMANDS there, not this file.
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root
up() { read -r t _ < /proc/uptime; echo "$t"; }
fail() { echo "=== FAIL $*"; }
mount -t proc proc /proc || fail mount proc
mount -t sysfs sysfs /sys || fail mount sysfs
mount -t devtmpfs devtmpfs /dev || fail mount devtmpfs
# The tracer mounts tracefs itself when it can; mounted here so every command sees it.
mount -t tracefs tracefs /sys/kernel/tracing || fail mount tracefs
mount -t bpf bpf /sys/fs/bpf || fail mount bpffs
# Where the kernel says its lockdown mode (`tracer doctor` reads it); optional.
mount -t securityfs securityfs /sys/kernel/security ||
  echo "=== NOTE no securityfs: lockdown state unknown"
"#,
    );
    // The loader finds the copied libraries without an ld.so.cache.
    let dirs: Vec<&str> = lib_dirs.iter().map(String::as_str).collect();
    writeln!(s, "export LD_LIBRARY_PATH={}", sh_quote(&dirs.join(":")))?;
    s.push_str("echo \"=== INIT t=$(up) kernel=$(uname -r)\"\n");
    if BTF_COPY_WORKAROUND {
        s.push_str(
            r#"if cat /sys/kernel/btf/vmlinux > /root/vmlinux.btf &&
   mount --bind /root/vmlinux.btf /sys/kernel/btf/vmlinux; then
  echo "=== NOTE /sys/kernel/btf/vmlinux is a bind-mounted copy (6.1 cannot mmap the sysfs file; BTF_COPY_WORKAROUND in xtask/src/vm.rs)"
else
  fail copying /sys/kernel/btf/vmlinux
fi
"#,
        );
    }
    for m in modules {
        writeln!(s, "insmod /modules/{m}.ko || fail insmod {m}")?;
    }
    s.push_str(
        r#"# virtio_blk finds the disk asynchronously: wait up to 10 s for its node.
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mount -t ext4 /dev/vda /data || fail mount /dev/vda on /data
ip link set lo up || fail ip link set lo up
run() {
  name=$1; secs=$2; cmd=$3
  echo "=== BEGIN $name t=$(up)"
  timeout "$secs" sh -c "$cmd" 2>"/tmp/$name.stderr" </dev/null
  rc=$?
  # A newline first: the command's last line may lack one, and markers start lines.
  echo
  echo "=== STDERR $name"
  cat "/tmp/$name.stderr"
  echo
  echo "=== END $name rc=$rc t=$(up)"
}
"#,
    );
    for c in commands {
        if c.name.is_empty()
            || !c
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            bail!("VM command name {:?}: use a-z, 0-9 and '-'", c.name);
        }
        writeln!(s, "run {} {} {}", c.name, c.timeout_secs, sh_quote(c.run))?;
    }
    s.push_str(
        r#"sync
umount /data || fail umount /data
echo "=== DONE t=$(up)"
poweroff -f
# If poweroff could not (no ACPI), the kernel can.
echo o > /proc/sysrq-trigger
sleep 10
"#,
    );
    Ok(s)
}

// ---------------------------------------------------------------------------------------
// 3. The disk

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

// ---------------------------------------------------------------------------------------
// 4-5. Boot and the console

pub struct Boot {
    /// Console lines with the host's time since QEMU started.
    lines: Vec<(Duration, String)>,
    timed_out: bool,
    exit: Option<std::process::ExitStatus>,
    elapsed: Duration,
}

fn boot(
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
                let _ = child.kill();
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let exit = child.wait().context("waiting for qemu")?.into();
    // The pipe closes with qemu; the reader ends then. Drain what it read meanwhile.
    let _ = reader.join();
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

#[derive(Debug, Default, PartialEq)]
pub struct Console {
    /// Guest uptime when /init started, and `uname -r`.
    init: Option<(f64, String)>,
    init_at: Option<Duration>,
    fails: Vec<String>,
    /// Things /init did that change what the commands see (workarounds).
    notes: Vec<String>,
    runs: Vec<Run>,
    done: bool,
}

#[derive(Debug, Default, PartialEq)]
pub struct Run {
    name: String,
    stdout: Vec<String>,
    stderr: Vec<String>,
    rc: Option<i32>,
    /// Guest uptime at BEGIN and END.
    begin: Option<f64>,
    end: Option<f64>,
}

impl Run {
    fn secs(&self) -> Option<f64> {
        Some(self.end? - self.begin?)
    }
}

/// Splits the console into /init's markers and each command's output. A marker may follow
/// other text on its line (a kernel message without a newline), so it is searched for.
pub fn parse_console(lines: &[(Duration, String)]) -> Console {
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

/// Prints the summary; an error when the VM did not boot, a command is missing or failed.
fn report(dir: &Path, boot: &Boot, console: &Console) -> Result<()> {
    let mut problems = Vec::new();
    match (&console.init, console.init_at) {
        (Some((uptime, kernel)), Some(at)) => println!(
            "vm-test: booted kernel {kernel}: /init started {:.1} s after qemu (guest uptime {uptime:.1} s)",
            at.as_secs_f64()
        ),
        _ => problems.push("the VM did not boot (no `=== INIT` marker on the console)".to_string()),
    }
    for note in &console.notes {
        println!("vm-test: note: {note}");
    }
    for fail in &console.fails {
        problems.push(format!("guest setup failed: {fail}"));
    }
    let results = dir.join("results");
    fs::create_dir_all(&results).with_context(|| format!("creating {}", results.display()))?;
    for cmd in COMMANDS {
        let Some(run) = console.runs.iter().find(|r| r.name == cmd.name) else {
            if console.init.is_some() {
                problems.push(format!("{}: no output markers (did not run)", cmd.name));
            }
            continue;
        };
        // Each command's output, to read or diff later.
        fs::write(
            results.join(format!("{}.stdout", cmd.name)),
            run.stdout.join("\n") + "\n",
        )?;
        fs::write(
            results.join(format!("{}.stderr", cmd.name)),
            run.stderr.join("\n") + "\n",
        )?;
        let Some(rc) = run.rc else {
            problems.push(format!("{}: started but no END marker", cmd.name));
            println!("vm-test: {}: did not finish", cmd.name);
            continue;
        };
        let secs = run
            .secs()
            .map_or("? s".to_string(), |s| format!("{s:.1} s"));
        let timeout_note = if rc == 143 {
            " (killed by its timeout?)"
        } else {
            ""
        };
        let detail = summarize(cmd.report, run);
        let verdict = if rc == 0 && detail.is_ok() {
            "PASS"
        } else {
            "FAIL"
        };
        match &detail {
            Ok(d) => println!(
                "vm-test: {verdict} {}: rc={rc}{timeout_note}, {secs}, {d}",
                cmd.name
            ),
            Err(e) => println!(
                "vm-test: {verdict} {}: rc={rc}{timeout_note}, {secs}, {e:#}",
                cmd.name
            ),
        }
        if cmd.report == Report::Trace {
            // The attach report, whole: which tracepoints this kernel lacks, and why.
            for l in run.stderr.iter().filter(|l| l.starts_with("tracer:")) {
                println!("vm-test:   {l}");
            }
        }
        if rc != 0 {
            let last = run.stderr.iter().rfind(|l| !l.trim().is_empty());
            problems.push(format!(
                "{}: exit status {rc}{timeout_note}{}",
                cmd.name,
                last.map(|l| format!(": {}", l.trim())).unwrap_or_default()
            ));
        } else if let Err(e) = detail {
            problems.push(format!("{}: {e:#}", cmd.name));
        }
    }
    if console.init.is_some() && !console.done && !boot.timed_out {
        problems.push("/init did not reach its end (no `=== DONE` marker)".to_string());
    }
    if boot.timed_out {
        problems.push(format!(
            "the VM was killed after {:.0} s without powering off",
            boot.elapsed.as_secs_f64()
        ));
    }
    println!(
        "vm-test: qemu ran {:.1} s{}; console: {}",
        boot.elapsed.as_secs_f64(),
        boot.exit.map(|s| format!(" ({s})")).unwrap_or_default(),
        dir.join("console.log").display()
    );
    if problems.is_empty() {
        println!("vm-test: ok ({} commands)", COMMANDS.len());
        return Ok(());
    }
    if console.init.is_none() {
        // Without /init there is nothing else to go by: show how far the boot got.
        let tail: Vec<&str> = boot
            .lines
            .iter()
            .rev()
            .take(25)
            .map(|(_, l)| l.as_str())
            .collect();
        eprintln!("vm-test: the console's last lines:");
        for l in tail.iter().rev() {
            eprintln!("  {l}");
        }
    }
    bail!("vm-test failed:\n  {}", problems.join("\n  "))
}

const LEDGER_FIELDS: &[&str] = &[
    "syscalls",
    "mode_switches",
    "cpu_copies",
    "cpu_copy_bytes",
    "dma_copies",
    "dma_bytes",
    "page_refs",
    "page_ref_bytes",
    "cache_hits",
    "cache_misses",
    "wall_ns",
];

fn summarize(report: Report, run: &Run) -> Result<String> {
    match report {
        Report::FirstLine => Ok(run
            .stdout
            .iter()
            .find(|l| !l.trim().is_empty())
            .map_or("(no output)".to_string(), |l| l.trim().to_string())),
        Report::Trace => {
            let attached = run
                .stderr
                .iter()
                .find_map(|l| l.strip_prefix("tracer: ")?.split(" attached").next())
                .filter(|a| a.ends_with("probes") || a.ends_with("tracepoints"))
                .unwrap_or("no attach report");
            // Skips are listed one per line, indented, after the attach line.
            let skipped = run
                .stderr
                .iter()
                .filter(|l| l.starts_with("tracer:   "))
                .count();
            let events = run
                .stderr
                .iter()
                .rev()
                .find(|l| l.contains(" events, "))
                .map_or("no event count", |l| l.trim_start_matches("tracer: "));
            Ok(format!("{attached} attached, {skipped} skipped; {events}"))
        }
        Report::DemoJson => {
            // Kernel messages ("[   12.345678] ...") can land between the JSON lines.
            let json: String = run
                .stdout
                .iter()
                .filter(|l| !is_printk(l))
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            let v: serde_json::Value =
                serde_json::from_str(&json).context("stdout is not the demo's JSON")?;
            let ledger = |l: &serde_json::Value| -> String {
                LEDGER_FIELDS
                    .iter()
                    .map(|f| {
                        let value = l.get(*f).map_or("-".to_string(), |v| v.to_string());
                        format!("{f}={value}")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let sender = v
                .pointer("/sender/observed")
                .ok_or_else(|| anyhow!("the demo's JSON has no sender.observed"))?;
            let mut s = format!("sender ledger: {}", ledger(sender));
            if let Some(r) = v.pointer("/receiver/observed").filter(|r| !r.is_null()) {
                // The receiver's path is the same for every method: its copy is enough.
                write!(
                    s,
                    "; receiver: cpu_copy_bytes={}",
                    r.get("cpu_copy_bytes")
                        .map_or("-".to_string(), |v| v.to_string())
                )?;
            }
            if let Some(d) = v.get("differences").and_then(|d| d.as_array()) {
                let unexplained = d
                    .iter()
                    .filter(|d| d.get("explained") == Some(&serde_json::Value::Bool(false)))
                    .count();
                write!(s, "; {} differences ({unexplained} not explained)", d.len())?;
            }
            if let Some(drops) = v.get("drops").filter(|d| !d.is_null()) {
                write!(s, "; drops={drops}")?;
            }
            Ok(s)
        }
    }
}

fn is_printk(line: &str) -> bool {
    let l = line.trim_start();
    l.starts_with('[')
        && l[1..]
            .trim_start()
            .split(']')
            .next()
            .is_some_and(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.'))
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

    #[test]
    fn demo_json_summary_skips_kernel_messages() {
        let run = Run {
            name: "rw".into(),
            stdout: vec![
                "{".into(),
                "[   12.5] random: crng init done".into(),
                r#""sender": {"observed": {"syscalls": 256, "cpu_copy_bytes": 16}},"#.into(),
                r#""receiver": {"observed": null}, "differences": [{"explained": false}]"#.into(),
                "}".into(),
            ],
            ..Run::default()
        };
        let s = summarize(Report::DemoJson, &run).unwrap();
        assert!(
            s.starts_with("sender ledger: syscalls=256, mode_switches=-"),
            "{s}"
        );
        assert!(s.contains("cpu_copy_bytes=16"), "{s}");
        assert!(s.ends_with("1 differences (1 not explained)"), "{s}");
    }

    #[test]
    fn trace_summary_counts_skips() {
        let run = Run {
            name: "t".into(),
            stderr: vec![
                "tracer: 12 probes attached; skipped:".into(),
                "tracer:   tcp_sendmsg_locked: tracepoint tcp_sendmsg_locked is not in this kernel"
                    .into(),
                "tracer: command exited: 33 events, 0 dropped".into(),
            ],
            ..Run::default()
        };
        assert_eq!(
            summarize(Report::Trace, &run).unwrap(),
            "12 probes attached, 1 skipped; command exited: 33 events, 0 dropped"
        );
    }

    #[test]
    fn ldd_output() {
        let libs = parse_ldd(
            "\tlinux-vdso.so.1 (0x00007ffc)\n\
             \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
             \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n",
        )
        .unwrap();
        assert_eq!(
            libs,
            vec![
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
        assert!(parse_ldd("\tlibfoo.so => not found\n").is_err());
    }

    #[test]
    fn module_order_puts_dependencies_first() {
        let dir = std::env::temp_dir().join(format!("xtask-vm-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("modules.dep"),
            "kernel/virtio.ko.xz: kernel/virtio_ring.ko.xz\n\
             kernel/virtio_ring.ko.xz:\n\
             kernel/virtio_pci.ko.xz: kernel/virtio_pci_legacy_dev.ko.xz kernel/virtio.ko.xz kernel/virtio_ring.ko.xz\n\
             kernel/virtio_pci_legacy_dev.ko.xz:\n\
             kernel/virtio_blk.ko.xz: kernel/virtio.ko.xz kernel/virtio_ring.ko.xz\n",
        )
        .unwrap();
        let order = module_load_order(&dir, &["virtio_pci", "virtio_blk"]).unwrap();
        let names: Vec<String> = order.iter().map(|m| module_name(m)).collect();
        assert_eq!(
            names,
            [
                "virtio_pci_legacy_dev",
                "virtio_ring",
                "virtio",
                "virtio_pci",
                "virtio_blk"
            ]
        );
        assert!(module_load_order(&dir, &["ext4"]).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn init_script_quotes_commands_and_checks_names() {
        let cmds = [VmCommand {
            name: "say",
            run: "echo 'hi'",
            timeout_secs: 5,
            report: Report::FirstLine,
        }];
        let libs = BTreeSet::from(["/lib/x86_64-linux-gnu".to_string()]);
        let s = init_script(&["virtio".into()], &libs, &cmds).unwrap();
        assert!(s.contains("run say 5 'echo '\\''hi'\\'''\n"), "{s}");
        assert!(s.contains("insmod /modules/virtio.ko"));
        let bad = [VmCommand {
            name: "no spaces",
            ..cmds[0]
        }];
        assert!(init_script(&[], &libs, &bad).is_err());
    }
}
