//! The guest's initramfs: the tracer, the libraries `ldd` names, a static busybox, the
//! virtio modules in `modules.dep` order and a generated `/init` that runs the commands
//! between markers.

use std::{
    collections::{BTreeSet, HashMap},
    fmt::Write as _,
    fs,
    io::Write as _,
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, anyhow, bail};

use super::{
    commands::{COMMANDS, VmCommand},
    packages::{Kernel, program},
};
use crate::cpio;

/// The modules the guest loads (with their dependencies from modules.dep): the Debian
/// cloud kernel has ext4 built in but the virtio disk stack as modules.
const MODULES: &[&str] = &["virtio_pci", "virtio_blk"];

/// Kernels before 6.16 cannot mmap /sys/kernel/btf/vmlinux (ENODEV). The tracer now falls
/// back to reading it; set this to true to bind-mount a copy (on the initramfs' tmpfs,
/// which can be mapped) over the sysfs file instead, announced with a `=== NOTE`.
const BTF_COPY_WORKAROUND: bool = false;

/// Writes the initramfs; returns how many entries it holds.
pub(super) fn build_initramfs(
    kernel: &Kernel,
    tracer: &Path,
    dir: &Path,
    out: &Path,
) -> Result<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::commands::Check;

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
            check: Check::FirstLine,
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
