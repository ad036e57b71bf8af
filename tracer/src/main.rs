//! The `tracer` command line.

use std::{ffi::OsString, process::ExitCode};

use clap::{Args, Parser, Subcommand};
use tracer::{
    trace::{self, Target, TraceArgs},
    workload::{self, Method},
};

#[derive(Parser)]
#[command(
    name = "tracer",
    version,
    about = "See where the Linux data path copies your bytes and switches modes (eBPF)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stream the kernel events of a process: syscalls (mode switches), TCP sends,
    /// page-cache lookups, transmits, block I/O.
    Trace(TraceCmd),
    /// Run one built-in transfer untraced: a file sent over loopback TCP to a receiver in
    /// this process. A known workload for `trace` and for benchmarks.
    Transfer(TransferCmd),
    /// Run a built-in transfer traced, and compare what the kernel did (mode switches,
    /// CPU and DMA copies, page references) with the textbook model of the method.
    Demo(DemoCmd),
}

#[derive(Args)]
struct DemoCmd {
    /// The transfer method, or `all` for every method on the same file: read-write,
    /// read-send, mmap-write, sendfile, splice, msg-zerocopy, io-uring, copy-file-range.
    #[arg(long, value_name = "METHOD")]
    method: String,
    /// Size of the file the demo creates (and removes afterwards); K, M, G suffixes are
    /// powers of 1024. Default 8MiB.
    #[arg(long, value_name = "BYTES", conflicts_with = "file")]
    size: Option<String>,
    /// Send this file instead of a generated one.
    #[arg(long, value_name = "PATH")]
    file: Option<std::path::PathBuf>,
    /// Bytes per data call (read, write, sendfile, splice, ...).
    #[arg(long, value_name = "BYTES", default_value = "64K")]
    chunk: String,
    /// Evict the file from the page cache first (posix_fadvise DONTNEED), so the disk DMA
    /// is real; the report says when eviction did not take.
    #[arg(long)]
    cold: bool,
    /// Print the ledgers and differences (the text report; the TUI is not built yet, so
    /// this is what demo prints either way).
    #[arg(long)]
    headless: bool,
    /// Print one JSON object (a JSON array with `--method all`).
    #[arg(long)]
    json: bool,
    /// Comparisons on the sender's observed ledger, e.g. 'cpu_copy_bytes=0,mode_switches<=4':
    /// exit with status 1 and name the failing one when the run violates it.
    #[arg(long, value_name = "CHECKS")]
    expect: Option<String>,
    /// Record every kernel event of the run(s) to this file (JSON lines).
    #[arg(long, value_name = "FILE")]
    record: Option<std::path::PathBuf>,
}

fn demo_args(cmd: DemoCmd) -> anyhow::Result<tracer::demo::DemoArgs> {
    use tracer::demo;
    let (methods, all) = if cmd.method == "all" {
        (Method::ALL.to_vec(), true)
    } else {
        match Method::from_name(&cmd.method) {
            Some(m) => (vec![m], false),
            None => anyhow::bail!(
                "unknown method {:?}: choose one of {}, or all",
                cmd.method,
                Method::ALL.map(Method::name).join(", ")
            ),
        }
    };
    let size = match &cmd.size {
        Some(s) => Some(demo::parse_size(s).map_err(|e| anyhow::anyhow!("--size: {e}"))?),
        None => None,
    };
    let chunk = demo::parse_size(&cmd.chunk).map_err(|e| anyhow::anyhow!("--chunk: {e}"))?;
    if chunk > 1 << 30 {
        anyhow::bail!("--chunk: at most 1GiB per call");
    }
    let expect = match &cmd.expect {
        Some(e) => demo::parse_expect(e)?,
        None => Vec::new(),
    };
    let _ = cmd.headless;
    Ok(demo::DemoArgs {
        methods,
        all,
        size,
        file: cmd.file,
        chunk,
        cold: cmd.cold,
        json: cmd.json,
        expect,
        record: cmd.record,
    })
}

#[derive(Args)]
struct TransferCmd {
    /// The transfer method (see `tracer demo --help`).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(Method::ALL.map(Method::name)))]
    method: String,
    /// The file to send.
    #[arg(long)]
    file: std::path::PathBuf,
    /// Bytes per data call (read, write, sendfile, splice, ...); K, M, G suffixes.
    #[arg(long, value_name = "BYTES", default_value = "64K")]
    chunk: String,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["pid", "comm", "command"])))]
struct TraceCmd {
    /// Trace this running process (and the children it forks from now on).
    #[arg(long, value_name = "PID")]
    pid: Option<u32>,
    /// Trace every running process with this name, and any that starts with it.
    #[arg(long, value_name = "NAME")]
    comm: Option<String>,
    /// One JSON object per event and line.
    #[arg(long)]
    json: bool,
    /// Write the events to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
    /// Do not follow children forked by the traced processes.
    #[arg(long)]
    no_follow: bool,
    /// Run this command traced from its first instruction (after `--`).
    #[arg(last = true, value_name = "CMD")]
    command: Vec<OsString>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tracer: error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Trace(cmd) => {
            let target = match (cmd.pid, cmd.comm) {
                (Some(pid), _) => Target::Pid(pid),
                (None, Some(name)) => Target::Comm(name),
                (None, None) => Target::Command(cmd.command),
            };
            runtime.block_on(trace::run(TraceArgs {
                target,
                json: cmd.json,
                output: cmd.output,
                follow_forks: !cmd.no_follow,
            }))
        }
        Command::Demo(cmd) => {
            demo_args(cmd).and_then(|args| runtime.block_on(tracer::demo::run(args)))
        }
        Command::Transfer(cmd) => Method::from_name(&cmd.method)
            .ok_or_else(|| anyhow::anyhow!("unknown method {}", cmd.method))
            .and_then(|method| {
                // copy-file-range writes its copy next to the file (same filesystem).
                let scratch_dir = match cmd.file.parent() {
                    Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
                    _ => std::path::PathBuf::from("."),
                };
                let chunk = tracer::demo::parse_size(&cmd.chunk)
                    .map_err(|e| anyhow::anyhow!("--chunk: {e}"))?;
                if chunk == 0 || chunk > 1 << 30 {
                    anyhow::bail!("--chunk must be between 1 byte and 1GiB");
                }
                let opts = workload::Options {
                    chunk: chunk as usize,
                    scratch_dir,
                };
                workload::send_file(&cmd.file, method, &opts)
            })
            .map(|r| {
                let report = serde_json::json!({
                    "method": r.method.name(),
                    "bytes": r.bytes,
                    "chunk": r.chunk,
                    "wall_ns": r.wall_ns,
                });
                println!("{report}");
                0
            }),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("tracer: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
