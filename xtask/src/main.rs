//! `cargo xtask`: toolchain setup, build, run and the whole test suite.
//!
//! The eBPF side needs three things a fresh machine lacks: the nightly toolchain's
//! `rust-src` (to build `core` for the bpf target), LLVM development libraries of the same
//! major version as nightly rustc's LLVM, and `bpf-linker` built against them; the gates
//! of `test` need rustfmt and clippy (clippy for nightly too, which lints the eBPF crate).
//! `setup` checks each and installs what is missing, one visible line per step.

use std::{
    env,
    ffi::{OsStr, OsString},
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Instant,
};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Parser, Subcommand};

mod cpio;
mod vm;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, run and test the tracer")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Check the toolchains and install what is missing (nightly's rust-src and clippy, LLVM,
    /// bpf-linker, rustfmt and clippy).
    Setup,
    /// Set up (quietly when satisfied), then build the eBPF programs and the tracer.
    Build {
        #[arg(long)]
        release: bool,
    },
    /// Build, then run `tracer ARGS` as root (through `sudo -E` when not root).
    Run {
        #[arg(long)]
        release: bool,
        /// Arguments for the tracer, after `--`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// The whole suite: the gates (rustfmt, clippy -D warnings on every crate), unit tests,
    /// the root integration tests, then the VM test.
    Test,
    /// Boot Debian's stock 6.1 kernel under QEMU (TCG) with the tracer in an initramfs,
    /// run the commands of xtask/src/vm/commands.rs (COMMANDS) there and report each one.
    /// Installs qemu-system-x86, linux-image-cloud-amd64, busybox-static and e2fsprogs when
    /// missing; everything it makes stays in target/vm/.
    VmTest {
        /// Keep target/vm/ (it is kept anyway: build outputs, rebuilt on every run).
        #[arg(long)]
        keep: bool,
        /// Kill the VM after this many seconds.
        #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
        timeout_secs: u64,
    },
    /// Benchmarks (release build, as root).
    Bench {
        #[command(subcommand)]
        bench: Bench,
    },
}

#[derive(Subcommand)]
enum Bench {
    /// Wall time of a read()+write() loopback transfer traced (JSON to /dev/null) vs
    /// untraced, in paired runs; reports the ratio and the dropped events.
    TraceOverhead {
        /// File size in MiB.
        #[arg(long, default_value_t = 1024)]
        mib: u64,
        /// Bytes per read()/write().
        #[arg(long, default_value_t = 4096)]
        chunk: u64,
        /// Number of (untraced, traced) pairs.
        #[arg(long, default_value_t = 5)]
        pairs: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Setup => setup(Verbosity::Loud),
        Task::Build { release } => build(release),
        Task::Run { release, args } => run(release, &args),
        Task::Test => test(),
        Task::VmTest { keep, timeout_secs } => {
            vm::vm_test(keep, std::time::Duration::from_secs(timeout_secs))
        }
        Task::Bench {
            bench: Bench::TraceOverhead { mib, chunk, pairs },
        } => bench_trace_overhead(mib, chunk, pairs),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verbosity {
    /// A line per step, always.
    Loud,
    /// Lines only for steps that have work to do.
    Quiet,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs a command with inherited stdio, failing with its command line when it fails.
fn status(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

struct Steps {
    verbosity: Verbosity,
    n: usize,
    total: usize,
}

impl Steps {
    fn ok(&mut self, what: &str, detail: &str) {
        self.n += 1;
        if self.verbosity == Verbosity::Loud {
            eprintln!("[{}/{}] {what}: ok ({detail})", self.n, self.total);
        }
    }
    fn doing(&mut self, what: &str, action: &str) {
        self.n += 1;
        eprintln!("[{}/{}] {what}: {action}", self.n, self.total);
    }
}

fn setup(verbosity: Verbosity) -> Result<()> {
    let started = Instant::now();
    let mut steps = Steps {
        verbosity,
        n: 0,
        total: 5,
    };
    nightly_components(&mut steps)?;
    let llvm_major = nightly_llvm_major(&mut steps)?;
    let llvm_prefix = llvm_dev_libraries(&mut steps, llvm_major)?;
    bpf_linker(&mut steps, llvm_major, &llvm_prefix)?;
    gate_components(&mut steps)?;
    if verbosity == Verbosity::Loud {
        eprintln!(
            "setup: the toolchains are ready ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The components of `toolchain` (None: the active one) that `wanted` lists and rustup has
/// not installed; None when rustup cannot list them (no such toolchain, or no rustup).
fn missing_components<'a>(toolchain: Option<&str>, wanted: &[&'a str]) -> Option<Vec<&'a str>> {
    let mut cmd = Command::new("rustup");
    cmd.args(["component", "list", "--installed"]);
    if let Some(toolchain) = toolchain {
        cmd.args(["--toolchain", toolchain]);
    }
    let list = output(&mut cmd)?;
    Some(
        wanted
            .iter()
            .copied()
            .filter(|c| !list.lines().any(|l| l.starts_with(c)))
            .collect(),
    )
}

/// Step 1: the nightly toolchain with rust-src (build-std=core for bpf) and clippy (the
/// eBPF crate's gate in `cargo xtask test`).
fn nightly_components(steps: &mut Steps) -> Result<()> {
    const WHAT: &str = "nightly toolchain with rust-src and clippy";
    match missing_components(Some("nightly"), &["rust-src", "clippy"]) {
        Some(missing) if missing.is_empty() => steps.ok(WHAT, "installed"),
        Some(missing) => {
            let missing = missing.join(" ");
            steps.doing(
                WHAT,
                &format!(
                    "installing {missing} (rustup component add {missing} --toolchain nightly)"
                ),
            );
            status(
                Command::new("rustup")
                    .args(["component", "add"])
                    .args(missing.split(' '))
                    .args(["--toolchain", "nightly"]),
            )?;
        }
        None => {
            steps.doing(
                WHAT,
                "installing (rustup toolchain install nightly --component rust-src,clippy)",
            );
            status(Command::new("rustup").args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
                "--component",
                "rust-src,clippy",
            ]))
            .context("rustup is needed to install the nightly toolchain")?;
        }
    }
    Ok(())
}

/// Step 2: which LLVM major nightly rustc uses: bpf-linker must be built against the same.
fn nightly_llvm_major(steps: &mut Steps) -> Result<u32> {
    let vv = output(Command::new("rustc").args(["+nightly", "-vV"])).ok_or_else(|| {
        anyhow!("`rustc +nightly -vV` failed: is rustup's nightly toolchain usable?")
    })?;
    let llvm_major = vv
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok())
        .ok_or_else(|| anyhow!("could not read the LLVM version from `rustc +nightly -vV`"))?;
    steps.ok("nightly rustc's LLVM", &format!("LLVM {llvm_major}"));
    Ok(llvm_major)
}

/// Step 3: LLVM development libraries of that major version; their prefix.
fn llvm_dev_libraries(steps: &mut Steps, llvm_major: u32) -> Result<PathBuf> {
    let llvm_prefix = PathBuf::from(format!("/usr/lib/llvm-{llvm_major}"));
    let llvm_config = llvm_prefix.join("bin/llvm-config");
    let packages = [
        format!("llvm-{llvm_major}-dev"),
        format!("libpolly-{llvm_major}-dev"),
        "libzstd-dev".to_string(),
    ];
    let have_polly = llvm_prefix.join("lib/libPolly.a").exists();
    let have_zstd = Path::new("/usr/include/zstd.h").exists();
    if llvm_config.exists() && have_polly && have_zstd {
        steps.ok(
            &format!("LLVM {llvm_major} development libraries"),
            &llvm_prefix.display().to_string(),
        );
    } else if can_apt_install() {
        steps.doing(
            &format!("LLVM {llvm_major} development libraries"),
            &format!("installing with apt-get: {}", packages.join(" ")),
        );
        apt_install(&packages).with_context(|| {
            format!(
                "your apt sources may not have LLVM {llvm_major}: add the LLVM project's apt \
                 repository for your release (apt.llvm.org), then run `cargo xtask setup` again"
            )
        })?;
        if !llvm_config.exists() {
            bail!(
                "{} is still missing after apt-get install",
                llvm_config.display()
            );
        }
    } else {
        bail!(
            "LLVM {llvm_major} development libraries are missing ({} not found). Install them, \
             e.g. on Debian/Ubuntu as root: apt-get install {}; elsewhere your distribution's \
             LLVM {llvm_major} development package (llvm-config, libPolly, zstd headers). \
             Then run `cargo xtask setup` again.",
            llvm_config.display(),
            packages.join(" ")
        );
    }
    Ok(llvm_prefix)
}

/// Step 4: bpf-linker, linked against that LLVM.
fn bpf_linker(steps: &mut Steps, llvm_major: u32, llvm_prefix: &Path) -> Result<()> {
    let linker = which("bpf-linker");
    let linked_major = linker.as_deref().and_then(bpf_linker_llvm_major);
    match (&linker, linked_major) {
        (Some(path), Some(major)) if major == llvm_major => {
            steps.ok("bpf-linker", &format!("{}, LLVM {major}", path.display()))
        }
        (Some(path), None) if bpf_linker_runs(path) => {
            // Statically linked builds do not show their LLVM; trust a working binary.
            steps.ok("bpf-linker", &path.display().to_string())
        }
        _ => {
            let why = match (linker, linked_major) {
                (None, _) => "not installed".to_string(),
                (Some(_), Some(major)) => format!("built against LLVM {major}, need {llvm_major}"),
                (Some(_), None) => "present but does not run".to_string(),
            };
            steps.doing(
                "bpf-linker",
                &format!(
                    "{why}; building it (cargo install bpf-linker --no-default-features \
                     --features llvm-{llvm_major}, a few minutes)"
                ),
            );
            let path = env::var_os("PATH").unwrap_or_default();
            let mut paths = vec![llvm_prefix.join("bin")];
            paths.extend(env::split_paths(&path));
            status(
                cargo()
                    // The version tested with aya-ebpf 0.2.1 and LLVM 22.
                    .args([
                        "install",
                        "--locked",
                        "--force",
                        "bpf-linker",
                        "--version",
                        "0.13.0",
                    ])
                    .args([
                        "--no-default-features",
                        "--features",
                        &format!("llvm-{llvm_major}"),
                    ])
                    .env("PATH", env::join_paths(paths)?),
            )?;
        }
    }
    Ok(())
}

/// Step 5: rustfmt and clippy for the toolchain that builds the tracer (the gates of
/// `cargo xtask test`).
fn gate_components(steps: &mut Steps) -> Result<()> {
    const WHAT: &str = "rustfmt and clippy";
    let missing = missing_components(None, &["rustfmt", "clippy"])
        .ok_or_else(|| anyhow!("`rustup component list --installed` failed: is rustup usable?"))?;
    if missing.is_empty() {
        steps.ok(WHAT, "installed");
        return Ok(());
    }
    let missing = missing.join(" ");
    steps.doing(
        WHAT,
        &format!("installing {missing} (rustup component add {missing})"),
    );
    status(
        Command::new("rustup")
            .args(["component", "add"])
            .args(missing.split(' ')),
    )
}

/// Whether missing packages can be installed here: root on a Debian-like system.
fn can_apt_install() -> bool {
    is_root() && Path::new("/usr/bin/apt-get").exists()
}

/// `apt-get update`, then installs `packages` without prompting.
fn apt_install(packages: &[String]) -> Result<()> {
    status(Command::new("apt-get").arg("update"))?;
    status(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn which(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect())
        .unwrap_or_default();
    // cargo install puts binaries here even when it is not on PATH yet.
    if let Some(home) = env::var_os("CARGO_HOME")
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo").into_os_string()))
    {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn bpf_linker_runs(path: &Path) -> bool {
    output(Command::new(path).arg("--version")).is_some()
}

/// The LLVM major a dynamically linked bpf-linker loads (`libLLVM.so.N`), if it runs.
fn bpf_linker_llvm_major(path: &Path) -> Option<u32> {
    if !bpf_linker_runs(path) {
        return None;
    }
    let ldd = output(Command::new("ldd").arg(path))?;
    ldd.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("libLLVM")?;
        let rest = rest.trim_start_matches(['-', '.', 's', 'o']);
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    })
}

/// Makes sure bpf-linker (possibly just installed into ~/.cargo/bin) is on PATH for the
/// build that follows.
fn path_with_cargo_bin() -> Result<OsString> {
    let mut paths: Vec<PathBuf> = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(linker) = which("bpf-linker")
        && let Some(dir) = linker.parent()
        && !paths.iter().any(|p| p == dir)
    {
        paths.push(dir.to_path_buf());
    }
    Ok(env::join_paths(paths)?)
}

fn build(release: bool) -> Result<()> {
    setup(Verbosity::Quiet)?;
    let mut cmd = cargo();
    cmd.current_dir(workspace_root())
        .args(["build", "--package", "tracer"])
        .env("PATH", path_with_cargo_bin()?);
    if release {
        cmd.arg("--release");
    }
    status(&mut cmd)
}

fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn tracer_binary(release: bool) -> PathBuf {
    target_dir()
        .join(if release { "release" } else { "debug" })
        .join("tracer")
}

/// A command run as root: directly when we are root, else through `sudo -E`.
fn as_root(program: impl AsRef<OsStr>) -> Command {
    if is_root() {
        Command::new(program)
    } else {
        let mut cmd = Command::new("sudo");
        cmd.arg("-E").arg(program);
        cmd
    }
}

fn run(release: bool, args: &[OsString]) -> Result<()> {
    build(release)?;
    let status = as_root(tracer_binary(release))
        .args(args)
        .status()
        .context("could not start the tracer")?;
    if !status.success() {
        // The tracer has already said why on stderr.
        #[expect(
            clippy::exit,
            reason = "passes the tracer's exit code on; nothing left to drop"
        )]
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}

/// Programs the root integration tests run besides the tracer, with the Debian package of
/// each: bpftool (to check what is loaded), and the real programs `tests/realprogs.rs`
/// watches (nginx, curl, python3). Installed with apt-get when missing.
const TEST_PACKAGES: &[(&str, &str)] = &[
    ("bpftool", "bpftool"),
    ("nginx", "nginx"),
    ("curl", "curl"),
    ("python3", "python3"),
];

/// Installs the missing [`TEST_PACKAGES`]; checks for setpriv and dd, which every system
/// has.
fn test_prerequisites() -> Result<()> {
    let missing: Vec<String> = TEST_PACKAGES
        .iter()
        .filter(|(tool, _)| vm::program(tool).is_none())
        .map(|(_, package)| package.to_string())
        .collect();
    if !missing.is_empty() {
        if can_apt_install() {
            eprintln!(
                "test prerequisites: installing {} (apt-get install)",
                missing.join(" ")
            );
            apt_install(&missing)?;
        } else {
            bail!(
                "the integration tests need {}: install them (Debian/Ubuntu: apt-get install {})",
                missing.join(", "),
                missing.join(" ")
            );
        }
    }
    for tool in ["setpriv", "dd", "cp"] {
        if which(tool).is_none() {
            bail!("the integration tests need {tool}: please install it");
        }
    }
    Ok(())
}

/// Test targets whose `#[ignore]`d tests need root and the eBPF programs; they run one at
/// a time (each checks what is loaded in the kernel).
const ROOT_TESTS: &[&str] = &["live", "demo", "hostile", "watch", "realprogs"];

/// Clippy on the host crates, every target (tests included).
const CLIPPY_WORKSPACE: &[&str] = &[
    "clippy",
    "--workspace",
    "--exclude",
    "tracer-ebpf",
    "--all-targets",
];

/// Clippy on the eBPF crate with nightly, built as aya-build builds it.
const CLIPPY_EBPF: &[&str] = &[
    "clippy",
    "--package",
    "tracer-ebpf",
    "--bins",
    "--release",
    "--target",
    "bpfel-unknown-none",
    "-Z",
    "build-std=core",
];

/// The gates before the tests: formatting, then clippy with `-D warnings` on the host
/// crates and on the eBPF crate. A failure names the command that shows or fixes it.
fn gates(root: &Path, path: &OsStr) -> Result<()> {
    eprintln!("== gates: rustfmt, clippy -D warnings (workspace, then the eBPF crate)");
    status(cargo().current_dir(root).args(["fmt", "--all", "--check"])).context(
        "the rustfmt gate failed: run `cargo fmt --all` to fix it \
         (`cargo fmt --all --check` shows the diff)",
    )?;
    status(
        cargo()
            .current_dir(root)
            .args(CLIPPY_WORKSPACE)
            .args(["--", "-D", "warnings"])
            .env("PATH", path),
    )
    .with_context(|| {
        format!(
            "the clippy gate failed on the workspace: run `cargo {}` to see the warnings",
            CLIPPY_WORKSPACE.join(" ")
        )
    })?;
    // Through rustup, as aya-build does: CARGO names the stable cargo, which has no +nightly.
    status(
        Command::new("rustup")
            .args(["run", "nightly", "cargo"])
            .current_dir(root)
            .args(CLIPPY_EBPF)
            .args(["--", "-D", "warnings"])
            .env("PATH", path)
            .env_remove("RUSTC")
            .env_remove("RUSTC_WORKSPACE_WRAPPER"),
    )
    .with_context(|| {
        format!(
            "the clippy gate failed on the eBPF crate: run `cargo +nightly {}` to see the warnings",
            CLIPPY_EBPF.join(" ")
        )
    })
}

fn test() -> Result<()> {
    setup(Verbosity::Quiet)?;
    let root = workspace_root();
    let path = path_with_cargo_bin()?;
    gates(&root, &path)?;
    test_prerequisites()?;
    eprintln!("== unit tests (no root, no eBPF)");
    status(
        cargo()
            .current_dir(&root)
            .args(["test", "--workspace", "--exclude", "tracer-ebpf"])
            .env("PATH", &path),
    )?;
    eprintln!("== root integration tests (load the eBPF programs on this kernel)");
    // Build as the invoking user, run the test binary as root.
    status(
        cargo()
            .current_dir(&root)
            .args(["test", "--package", "tracer"])
            .args(ROOT_TESTS.iter().flat_map(|t| ["--test", t]))
            .arg("--no-run")
            .env("PATH", &path),
    )?;
    let mut cmd = if is_root() {
        cargo()
    } else {
        let mut c = Command::new("sudo");
        c.args(["-E", "env", &format!("PATH={}", path.to_string_lossy())])
            .arg(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        c
    };
    status(
        cmd.current_dir(&root)
            .args(["test", "--package", "tracer"])
            .args(ROOT_TESTS.iter().flat_map(|t| ["--test", t]))
            .arg("--")
            .args(["--include-ignored", "--test-threads=1"])
            .env("PATH", &path),
    )?;
    eprintln!("== a second kernel: Debian's 6.1 under QEMU (cargo xtask vm-test)");
    vm::vm_test(false, std::time::Duration::from_secs(VM_TIMEOUT_SECS))
}

/// The VM test's deadline inside `cargo xtask test` (TCG runs it in well under a minute
/// once built; the first run also installs QEMU and the kernel package).
const VM_TIMEOUT_SECS: u64 = 900;

/// Runs `tracer transfer` (through `tracer trace` when `traced`); returns the transfer's
/// own wall time, the whole command's wall time, and the tracer's stderr summary.
fn timed_transfer(
    tracer: &Path,
    file: &Path,
    chunk: u64,
    traced: bool,
) -> Result<(f64, f64, String)> {
    let mut cmd = as_root(tracer);
    if traced {
        cmd.args(["trace", "--json", "-o", "/dev/null", "--"])
            .arg(tracer);
    }
    cmd.args(["transfer", "--method", "read-write", "--file"])
        .arg(file)
        .args(["--chunk", &chunk.to_string()]);
    let started = Instant::now();
    let out = cmd.output().context("running the tracer")?;
    let whole = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("{cmd:?} failed: {stderr}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let wall_ns = serde_json::from_str::<serde_json::Value>(stdout.trim())
        .ok()
        .and_then(|v| v["wall_ns"].as_f64())
        .ok_or_else(|| anyhow!("no wall_ns in the transfer's output: {stdout}"))?;
    let summary = stderr
        .lines()
        .find(|l| l.contains(" events, "))
        .unwrap_or("")
        .to_string();
    Ok((wall_ns / 1e9, whole, summary))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn bench_trace_overhead(mib: u64, chunk: u64, pairs: u32) -> Result<()> {
    if pairs == 0 || mib == 0 || chunk == 0 {
        bail!("--mib, --chunk and --pairs must be at least 1");
    }
    build(true)?;
    let tracer = tracer_binary(true);
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(format!("transfer-{mib}MiB"));
    if std::fs::metadata(&file).map(|m| m.len()).ok() != Some(mib << 20) {
        eprintln!("bench: writing a {mib} MiB test file at {}", file.display());
        let block = vec![0x5au8; 1 << 20];
        let mut f = std::fs::File::create(&file)?;
        for _ in 0..mib {
            std::io::Write::write_all(&mut f, &block)?;
        }
    }
    // Warm the page cache so both runs read from memory.
    timed_transfer(&tracer, &file, 1 << 20, false)?;
    eprintln!(
        "bench: {pairs} pairs of a {mib} MiB read()+write() loopback transfer, {chunk}-byte chunks"
    );
    let mut ratios = Vec::new();
    let mut whole_ratios = Vec::new();
    for i in 0..pairs {
        // Alternate the order so neither side always runs on a warmer machine.
        let (untraced, traced) = if i % 2 == 0 {
            let u = timed_transfer(&tracer, &file, chunk, false)?;
            (u, timed_transfer(&tracer, &file, chunk, true)?)
        } else {
            let t = timed_transfer(&tracer, &file, chunk, true)?;
            (timed_transfer(&tracer, &file, chunk, false)?, t)
        };
        let ratio = traced.0 / untraced.0;
        ratios.push(ratio);
        whole_ratios.push(traced.1 / untraced.1);
        eprintln!(
            "pair {}: untraced {:.3} s, traced {:.3} s, ratio {ratio:.2} ({})",
            i + 1,
            untraced.0,
            traced.0,
            traced.2.trim_start_matches("tracer: ")
        );
    }
    println!(
        "trace-overhead: median traced/untraced wall-time ratio {:.2} (transfer only), {:.2} (whole command incl. loading), over {pairs} pairs",
        median(ratios),
        median(whole_ratios)
    );
    Ok(())
}
