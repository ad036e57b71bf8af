//! The `tracer` command line.

use std::{ffi::OsString, process::ExitCode};

use clap::{Args, Parser, Subcommand};
use tracer::{
    model::Method,
    trace::{self, Target, TraceArgs},
    workload,
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
    /// Watch the transfers of running processes (TUI, or printed with --headless): each
    /// one's ledger, the textbook method it behaves like, and why.
    Watch(WatchCmd),
    /// Run one built-in transfer untraced: a file sent over loopback TCP to a receiver in
    /// this process. A known workload for `trace` and for benchmarks.
    Transfer(TransferCmd),
    /// Run a built-in transfer traced, and watch (TUI) or print (--headless) what the kernel
    /// did (mode switches, CPU and DMA copies, page references) beside the textbook model.
    Demo(DemoCmd),
    /// The same TUI driven by the textbook model of each method: no root, no eBPF.
    Lesson(LessonCmd),
    /// Replay a recording (demo --record): the same TUI, or with --headless the report the
    /// demo printed. No root, no eBPF.
    Replay(ReplayCmd),
    /// Export a recording's steps: Chrome trace-event JSON (ui.perfetto.dev,
    /// chrome://tracing) or CSV, one row per step. No root.
    Export(ExportCmd),
    /// What this kernel lets the tracer see, step by step: the hook used for each step, its
    /// tier, and why every better hook is not used.
    Doctor(DoctorCmd),
    /// Receive `demo --peer` transfers on this machine: count and check the bytes of each,
    /// one line per sender. No root needed.
    Sink(SinkCmd),
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["pid", "comm", "command"])))]
struct WatchCmd {
    /// Watch this running process (and the children it forks from now on).
    #[arg(long, value_name = "PID")]
    pid: Option<u32>,
    /// Watch every process with this name, running or started later.
    #[arg(long, value_name = "NAME")]
    comm: Option<String>,
    /// Print the ledgers at the end (Ctrl-C, SIGTERM, or the command's exit) instead of
    /// opening the TUI.
    #[arg(long)]
    headless: bool,
    /// Print one JSON object (one per line with --interval).
    #[arg(long)]
    json: bool,
    /// Also print the ledgers every SECS seconds.
    #[arg(long, value_name = "SECS")]
    interval: Option<String>,
    /// List every transfer in the text report, also those under 64 KiB that send no file
    /// (the loader's reads of libraries, requests received); the JSON always has them.
    #[arg(long)]
    all: bool,
    /// Checks on every transfer that sends a file, e.g. 'method=sendfile,cpu_copy_bytes<=64K':
    /// exit with status 1 and name the failing one when a transfer violates it.
    #[arg(long, value_name = "CHECKS")]
    expect: Option<String>,
    /// Record every kernel event to this new file (JSON lines, mode 0600), as demo --record.
    #[arg(long, value_name = "FILE")]
    record: Option<std::path::PathBuf>,
    /// Overwrite the --record FILE if it exists (never through a symbolic link).
    #[arg(long, requires = "record")]
    force: bool,
    /// Run the command as USER (a name or a uid), as trace -u does.
    #[arg(long, short = 'u', value_name = "USER", conflicts_with_all = ["pid", "comm"])]
    user: Option<String>,
    /// Run this command watched from its first instruction (after `--`).
    #[arg(last = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// `tracer watch`: the TUI, or the printed ledgers (`--headless`, implied by `--json`,
/// `--interval` and `--expect`).
async fn watch(cmd: WatchCmd) -> anyhow::Result<i32> {
    let interval = cmd
        .interval
        .as_deref()
        .map(tracer::watch::parse_interval)
        .transpose()?;
    let expect = match &cmd.expect {
        Some(e) => tracer::watch::expect::parse(e)?,
        None => tracer::watch::Expectations::default(),
    };
    let headless = cmd.headless || cmd.json || interval.is_some() || !expect.is_empty();
    tracer::watch::run(tracer::watch::WatchArgs {
        target: target_of(cmd.pid, cmd.comm, cmd.command),
        user: cmd.user,
        headless,
        json: cmd.json,
        interval,
        all: cmd.all,
        expect,
        record: cmd.record,
        force: cmd.force,
    })
    .await
}

/// The target of `trace` or `watch`: a pid, a name, or a command.
fn target_of(pid: Option<u32>, comm: Option<String>, command: Vec<OsString>) -> Target {
    match (pid, comm) {
        (Some(pid), _) => Target::Pid(pid),
        (None, Some(name)) => Target::Comm(name),
        (None, None) => Target::Command(command),
    }
}

#[derive(Args)]
struct ReplayCmd {
    /// The recording (demo --record FILE).
    #[arg(value_name = "FILE")]
    file: std::path::PathBuf,
    /// A second recording, shown beside the first and stepping with it (TUI).
    #[arg(value_name = "FILE2", conflicts_with_all = ["headless", "json"])]
    compare: Option<std::path::PathBuf>,
    /// Only this method's run (a recording of --method all has every method's).
    #[arg(long, value_name = "METHOD")]
    method: Option<String>,
    /// Print the report the demo printed instead of opening the TUI.
    #[arg(long)]
    headless: bool,
    /// Print the demo's JSON (implies --headless).
    #[arg(long)]
    json: bool,
}

/// `tracer replay`: the TUI, or the demo's report (`--headless`, `--json`).
async fn replay(cmd: ReplayCmd) -> anyhow::Result<i32> {
    let args = tracer::replay::ReplayArgs {
        file: cmd.file,
        compare: cmd.compare,
        method: cmd
            .method
            .as_deref()
            .map(|name| parse_method(name, false))
            .transpose()?,
        json: cmd.json,
    };
    if cmd.headless || cmd.json {
        return tracer::replay::run(&args);
    }
    tracer::ui::run::replay(args).await
}

#[derive(Args)]
struct ExportCmd {
    /// The recording (demo --record FILE).
    #[arg(value_name = "FILE")]
    file: std::path::PathBuf,
    /// chrome (trace-event JSON) or csv.
    #[arg(long, value_parser = ["chrome", "csv"])]
    format: String,
    /// Only this method's run.
    #[arg(long, value_name = "METHOD")]
    method: Option<String>,
    /// Write to this new file (mode 0600) instead of standard output.
    #[arg(long, short, value_name = "OUT")]
    output: Option<std::path::PathBuf>,
    /// Overwrite the -o OUT file if it exists (never through a symbolic link).
    #[arg(long, requires = "output")]
    force: bool,
}

#[derive(Args)]
struct DoctorCmd {
    /// One JSON object.
    #[arg(long)]
    json: bool,
    /// Only the steps of this method (`all`: every step, as without it).
    #[arg(long, value_name = "METHOD")]
    method: Option<String>,
}

#[derive(Args)]
struct LessonCmd {
    /// Start with this method (else pick one): read-send, sendfile-nogather, sendfile
    /// (the article's three stages), read-write, mmap-write, splice, msg-zerocopy,
    /// io-uring, copy-file-range.
    #[arg(long, value_name = "METHOD")]
    method: Option<String>,
    /// The file size the lesson talks about; K, M, G suffixes. Default 8MiB.
    #[arg(long, value_name = "BYTES", default_value = "8M")]
    size: String,
    /// Bytes per call.
    #[arg(long, value_name = "BYTES", default_value = "64K")]
    chunk: String,
    /// Two methods side by side, stepping together: e.g. read-send,sendfile.
    #[arg(long, value_name = "A,B", conflicts_with = "method")]
    compare: Option<String>,
}

#[derive(Args)]
struct DemoCmd {
    /// The transfer method, or `all` for every method on the same file (printed as one
    /// table): read-write, read-send, mmap-write, sendfile, splice, msg-zerocopy, io-uring,
    /// copy-file-range. Without it, the TUI opens on a method picker.
    #[arg(long, value_name = "METHOD")]
    method: Option<String>,
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
    /// is real; the report says when eviction did not take. (The TUI does this by default.)
    #[arg(long)]
    cold: bool,
    /// TUI: keep the page cache (runs there are cold by default, to show the disk DMA).
    #[arg(long, conflicts_with = "cold")]
    warm: bool,
    /// Print the ledgers and differences instead of opening the TUI.
    #[arg(long)]
    headless: bool,
    /// Print one JSON object (a JSON array with `--method all`).
    #[arg(long)]
    json: bool,
    /// Comparisons on the sender's observed ledger, e.g. 'cpu_copy_bytes=0,mode_switches<=4':
    /// exit with status 1 and name the failing one when the run violates it.
    #[arg(long, value_name = "CHECKS")]
    expect: Option<String>,
    /// Record every kernel event of the run(s) to this new file (JSON lines, mode 0600).
    #[arg(long, value_name = "FILE")]
    record: Option<std::path::PathBuf>,
    /// Overwrite the --record FILE if it exists (never through a symbolic link).
    #[arg(long, requires = "record")]
    force: bool,
    /// What the socket methods cross: lo (loopback), veth (two private network namespaces
    /// joined by a veth, made and removed by the demo) or veth-nosg (that veth with
    /// scatter-gather off on the sender's end, as `ethtool -K va sg off`: the CPU copies
    /// at the device, the article's middle stage).
    #[arg(
        long,
        value_name = "LINK",
        default_value = "lo",
        conflicts_with = "peer"
    )]
    link: String,
    /// Send to a `tracer sink --listen ADDR:PORT` on another machine instead of a receiver
    /// here, so the bytes leave through a real NIC (the sink checks what it gets).
    #[arg(long, value_name = "ADDR:PORT")]
    peer: Option<std::net::SocketAddr>,
}

#[derive(Args)]
struct SinkCmd {
    /// Where to listen, e.g. 0.0.0.0:9000.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: std::net::SocketAddr,
    /// Exit after the first sender.
    #[arg(long)]
    once: bool,
}

/// A `--method` value; `all` is offered too where the command takes it.
fn parse_method(name: &str, all: bool) -> anyhow::Result<Method> {
    parse_method_in(&Method::ALL, name, all)
}

/// A `--method` value of `list`.
fn parse_method_in(list: &[Method], name: &str, all: bool) -> anyhow::Result<Method> {
    Method::from_name_in(list, name).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown method {name:?}: choose one of {}{}",
            list.iter().map(|m| m.name()).collect::<Vec<_>>().join(", "),
            if all { ", or all" } else { "" }
        )
    })
}

fn method_arg(name: &str) -> anyhow::Result<Method> {
    parse_method(name, true)
}

/// `tracer demo`: the text report (headless, JSON, checks, recordings, `all`) or the TUI.
async fn demo(cmd: DemoCmd) -> anyhow::Result<i32> {
    let text = cmd.headless
        || cmd.json
        || cmd.expect.is_some()
        || cmd.record.is_some()
        || cmd.method.as_deref() == Some("all");
    if text && cmd.method.is_none() {
        anyhow::bail!("--headless, --json, --expect and --record need --method METHOD (or all)");
    }
    if text {
        return tracer::demo::run(demo_args(cmd)?).await;
    }
    let method = cmd.method.as_deref().map(method_arg).transpose()?;
    let args = demo_args(DemoCmd {
        method: Some(method.map_or("read-write", Method::name).to_string()),
        ..cmd
    })?;
    tracer::demo::check_input(&args)?;
    tracer::ui::run::run(tracer::ui::run::TuiOptions {
        kind: tracer::ui::app::Kind::Live,
        method,
        size: args.size.unwrap_or(tracer::demo::DEFAULT_SIZE),
        file: args.file,
        chunk: args.chunk,
        cold: !args.warm,
        link: args.link,
        compare: None,
    })
    .await
}

/// `tracer lesson`: the TUI over the textbook model.
async fn lesson(cmd: LessonCmd) -> anyhow::Result<i32> {
    use tracer::demo::parse_size;
    let (method, compare) = match cmd.compare.as_deref() {
        Some(pair) => {
            let (a, b) = pair
                .split_once(',')
                .ok_or_else(|| anyhow::anyhow!("--compare takes two methods: A,B"))?;
            (
                Some(parse_method_in(&Method::LESSON, a.trim(), false)?),
                Some(parse_method_in(&Method::LESSON, b.trim(), false)?),
            )
        }
        None => (
            cmd.method
                .as_deref()
                .map(|name| parse_method_in(&Method::LESSON, name, false))
                .transpose()?,
            None,
        ),
    };
    let size = parse_size(&cmd.size).map_err(|e| anyhow::anyhow!("--size: {e}"))?;
    let chunk = parse_size(&cmd.chunk).map_err(|e| anyhow::anyhow!("--chunk: {e}"))?;
    if size == 0 || chunk == 0 {
        anyhow::bail!("--size and --chunk must be at least 1 byte");
    }
    if size / chunk > 1 << 24 {
        anyhow::bail!("--size / --chunk: at most 16M chunks in a lesson");
    }
    tracer::ui::run::run(tracer::ui::run::TuiOptions {
        kind: tracer::ui::app::Kind::Lesson,
        method,
        size,
        file: None,
        chunk,
        cold: true,
        link: workload::LinkKind::Lo,
        compare,
    })
    .await
}

fn demo_args(cmd: DemoCmd) -> anyhow::Result<tracer::demo::DemoArgs> {
    use tracer::demo;
    let name = cmd.method.clone().unwrap_or_default();
    let (methods, all) = if name == "all" {
        (Method::ALL.to_vec(), true)
    } else {
        (vec![method_arg(&name)?], false)
    };
    let size = match &cmd.size {
        Some(s) => Some(demo::parse_size(s).map_err(|e| anyhow::anyhow!("--size: {e}"))?),
        None => None,
    };
    let chunk = demo::parse_chunk(&cmd.chunk)?;
    let link = match cmd.peer {
        Some(addr) => workload::LinkKind::Peer(addr),
        None => demo::parse_link(&cmd.link)?,
    };
    let expect = match &cmd.expect {
        Some(e) => demo::parse_expect(e)?,
        None => Vec::new(),
    };
    Ok(demo::DemoArgs {
        methods,
        all,
        size,
        file: cmd.file,
        chunk,
        cold: cmd.cold,
        warm: cmd.warm,
        json: cmd.json,
        expect,
        record: cmd.record,
        force: cmd.force,
        link,
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
    /// Write the events to this new file (mode 0600) instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
    /// Overwrite the -o FILE if it exists (never through a symbolic link).
    #[arg(long, requires = "output")]
    force: bool,
    /// Do not follow children forked by the traced processes.
    #[arg(long)]
    no_follow: bool,
    /// Run the command as USER (a name or a uid), with that user's groups, as strace -u
    /// does. As root through sudo, the command runs as the user who ran sudo unless this
    /// says otherwise (`-u root`).
    #[arg(long, short = 'u', value_name = "USER", conflicts_with_all = ["pid", "comm"])]
    user: Option<String>,
    /// Run this command traced from its first instruction (after `--`).
    #[arg(last = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// Whether `e` is standard output (or an output pipe) closed by its reader.
fn closed_output(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<trace::OutputError>(),
            Some(trace::OutputError::Closed { .. })
        )
    })
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
            tracer::say!("tracer: error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Trace(cmd) => {
            let target = target_of(cmd.pid, cmd.comm, cmd.command);
            runtime.block_on(trace::run(TraceArgs {
                target,
                json: cmd.json,
                output: cmd.output,
                force: cmd.force,
                follow_forks: !cmd.no_follow,
                user: cmd.user,
            }))
        }
        Command::Demo(cmd) => runtime.block_on(demo(cmd)),
        Command::Watch(cmd) => runtime.block_on(watch(cmd)),
        Command::Lesson(cmd) => runtime.block_on(lesson(cmd)),
        Command::Sink(cmd) => workload::sink::listen(cmd.listen).and_then(|listener| {
            if let Ok(local) = listener.local_addr() {
                tracer::say!("tracer sink: listening on {local} (send with tracer demo --peer)");
            }
            workload::sink::serve(&listener, cmd.once, &mut |line| {
                Ok(trace::output::print(&format!("{line}\n"))?)
            })
            .map(|()| 0)
        }),
        Command::Replay(cmd) => runtime.block_on(replay(cmd)),
        Command::Export(cmd) => cmd
            .method
            .as_deref()
            .map(|m| parse_method(m, false))
            .transpose()
            .and_then(|method| {
                tracer::export::run(&tracer::export::ExportArgs {
                    file: cmd.file,
                    format: tracer::export::Format::from_name(&cmd.format)
                        .ok_or_else(|| anyhow::anyhow!("--format: chrome or csv"))?,
                    method,
                    output: cmd.output,
                    force: cmd.force,
                })
            }),
        Command::Doctor(cmd) => cmd
            .method
            .as_deref()
            // `all` is every method, as without --method.
            .filter(|m| *m != "all")
            .map(method_arg)
            .transpose()
            .and_then(|m| tracer::doctor::run(cmd.json, m)),
        Command::Transfer(cmd) => parse_method(&cmd.method, false)
            .and_then(|method| {
                // copy-file-range makes its (unnamed) copy beside the file: the same filesystem.
                let scratch_dir = workload::dir_of(&cmd.file);
                let chunk = tracer::demo::parse_chunk(&cmd.chunk)?;
                let opts = workload::Options {
                    chunk: chunk as usize,
                    scratch_dir,
                    link: workload::Link::Loopback,
                };
                workload::send_file(&cmd.file, method, &opts)
            })
            .and_then(|r| {
                let report = serde_json::json!({
                    "method": r.method.name(),
                    "bytes": r.bytes,
                    "chunk": r.chunk,
                    "wall_ns": r.wall_ns,
                });
                trace::output::print(&format!("{report}\n"))?;
                Ok(0)
            }),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        // The reader of our output went away (`| head`): end quietly, with the status a
        // shell gives a command killed by SIGPIPE.
        Err(e) if closed_output(&e) => ExitCode::from(128 + libc::SIGPIPE as u8),
        Err(e) => {
            tracer::say!("tracer: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
