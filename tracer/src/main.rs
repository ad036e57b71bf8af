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
}

#[derive(Args)]
struct TransferCmd {
    /// read-write (read() + write()) or sendfile.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(Method::ALL.map(Method::name)))]
    method: String,
    /// The file to send.
    #[arg(long)]
    file: std::path::PathBuf,
    /// Bytes per read()/sendfile() call.
    #[arg(long, default_value_t = 65536, value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    chunk: u64,
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
        Command::Transfer(cmd) => Method::from_name(&cmd.method)
            .ok_or_else(|| anyhow::anyhow!("unknown method {}", cmd.method))
            .and_then(|method| workload::send_file(&cmd.file, method, cmd.chunk as usize))
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
