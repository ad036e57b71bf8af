//! Root tests of `tracer watch` on real third-party programs: nginx serving a file with
//! `sendfile on;` and `sendfile off;`, python3's http.server, `cp`, curl as the receiver
//! and `dd iflag=direct`, each asserting the ledger the kernel's code paths give
//! (KERNEL_PATHS.md).
//!
//! `cargo xtask test` installs the programs where missing (Debian packages) and runs these
//! as root, one at a time; `#[ignore]`d for a plain `cargo test`.

use std::{
    net::{TcpListener, TcpStream},
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

mod loaded;
use loaded::assert_all_unloaded;

const TRACER: &str = env!("CARGO_BIN_EXE_tracer");
/// The file the servers send: 64 MiB, as the issue asks.
const SIZE: u64 = 64 << 20;
const PAGES: u64 = SIZE / 4096;

/// A directory of this test's own (not tmpfs: the target directory is on the build's
/// disk), made empty.
fn temp_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("realprogs-{name}-{}", std::process::id()));
    if d.exists() {
        std::fs::remove_dir_all(&d).unwrap();
    }
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A file of SIZE bytes at `path`, cached (just written).
fn make_file(path: &Path) {
    let block: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 + 3) as u8).collect();
    let mut all = Vec::with_capacity(SIZE as usize);
    for _ in 0..SIZE >> 20 {
        all.extend_from_slice(&block);
    }
    std::fs::write(path, all).unwrap();
}

/// The program `name`, the distribution's first (`cargo xtask test` installs the Debian
/// packages when missing; a python3 of pyenv's on PATH is a shell script), else on PATH.
fn program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["/usr/bin", "/usr/sbin"]
        .into_iter()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed: `cargo xtask test` installs it"))
}

/// A loopback port nobody listens on.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `port` (20 s at most).
fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `curl` downloads `url` into `dst`; the size of the response headers it received.
fn download(url: &str, dst: &Path) -> u64 {
    let out = Command::new(program("curl"))
        .args(["-sS", "--fail", "-o"])
        .arg(dst)
        .args(["-w", "%{size_header} %{size_download}", url])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl {url}: {said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut it = said.split_whitespace().map(|n| n.parse::<u64>().unwrap());
    let (headers, body) = (it.next().unwrap(), it.next().unwrap());
    assert_eq!(body, SIZE);
    assert_eq!(std::fs::metadata(dst).unwrap().len(), SIZE);
    headers
}

/// nginx with its own prefix and configuration, serving `root` on a loopback port.
struct Nginx {
    prefix: PathBuf,
    port: u16,
}

impl Nginx {
    /// Writes the prefix and its configuration: `sendfile` on or off, one worker.
    fn new(name: &str, root: &Path, sendfile: bool) -> Self {
        let prefix = temp_dir(name);
        let port = free_port();
        let conf = format!(
            "daemon off;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  sendfile {on};\n  default_type application/octet-stream;\n\
             \x20 client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n\
             \x20 fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n\
             \x20 scgi_temp_path {p}/scgi;\n\
             \x20 server {{ listen 127.0.0.1:{port}; root {r}; }}\n}}\n",
            p = prefix.display(),
            r = root.display(),
            on = if sendfile { "on" } else { "off" },
        );
        std::fs::write(prefix.join("nginx.conf"), conf).unwrap();
        Self { prefix, port }
    }

    /// The command that runs it in the foreground.
    fn command(&self) -> Command {
        let mut c = Command::new(program("nginx"));
        c.arg("-p")
            .arg(&self.prefix)
            .arg("-c")
            .arg(self.prefix.join("nginx.conf"));
        c
    }

    fn url(&self, file: &str) -> String {
        format!("http://127.0.0.1:{}/{file}", self.port)
    }

    /// The master's pid, once it wrote its pid file.
    fn master(&self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(text) = std::fs::read_to_string(self.prefix.join("nginx.pid"))
                && let Ok(pid) = text.trim().parse()
            {
                return pid;
            }
            assert!(Instant::now() < deadline, "nginx wrote no pid file");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Graceful shutdown (SIGQUIT): the master waits for its worker and exits.
    fn quit(&self) {
        // SAFETY: signalling the nginx master this test started.
        unsafe { libc::kill(self.master(), libc::SIGQUIT) };
    }
}

/// `tracer watch --headless --json -- CMD`, running.
fn watch(cmd: &Command) -> Child {
    Command::new(TRACER)
        .args(["watch", "--headless", "--json", "--"])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The report of a finished watch: the last line of standard output.
fn report_of(out: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    let report: Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {text} {stderr}"));
    assert_eq!(report["drops"], 0, "{stderr}");
    report
}

/// The one transfer with this source inode and destination kind.
fn transfer_of<'v>(report: &'v Value, src_ino: u64, dst_kind: &str) -> &'v Value {
    let found: Vec<_> = report["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["source"]["ino"] == src_ino && t["destination"]["kind"] == dst_kind)
        .collect();
    assert_eq!(found.len(), 1, "one transfer of inode {src_ino}: {report}");
    found[0]
}

fn field(t: &Value, f: &str) -> u64 {
    t["observed"][f]
        .as_u64()
        .unwrap_or_else(|| panic!("{f} in {t}"))
}

/// The calls of `syscall` the transfer's evidence counts ("sendfile(): 3 calls").
fn calls(t: &Value, syscall: &str) -> u64 {
    let line = t["evidence"][0].as_str().unwrap_or_default();
    line.split(", ")
        .find_map(|part| part.strip_prefix(&format!("{syscall}(): ")))
        .and_then(|n| n.split(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// The differences from the textbook that the probes' facts do not explain.
fn unexplained(t: &Value) -> Vec<&Value> {
    t["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["explained"] == false)
        .collect()
}

/// The name of a file (when the kernel let the tracer resolve it).
fn assert_named(end: &Value, path: &Path) {
    if end["note"].is_null() {
        assert_eq!(end["path"], path.to_str().unwrap(), "{end}");
    }
}

/// nginx under watch serves the file once to curl; the report, the file's inode and the
/// size of the response headers.
fn serve_with_nginx(sendfile: bool) -> (Value, u64, u64, PathBuf) {
    let root = temp_dir(if sendfile { "www-on" } else { "www-off" });
    let file = root.join("file");
    make_file(&file);
    let nginx = Nginx::new(
        if sendfile { "nginx-on" } else { "nginx-off" },
        &root,
        sendfile,
    );
    let running = watch(&nginx.command());
    wait_listening(nginx.port);
    let headers = download(&nginx.url("file"), &root.join("got"));
    nginx.quit();
    let out = running.wait_with_output().unwrap();
    let report = report_of(&out);
    let ino = std::fs::metadata(&file).unwrap().ino();
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::remove_dir_all(&nginx.prefix).unwrap();
    (report, ino, headers, file)
}

#[test]
#[ignore = "needs root, the eBPF programs and nginx: run `cargo xtask test`"]
fn nginx_with_sendfile_on_copies_only_the_headers_with_the_cpu() {
    let (report, ino, headers, file) = serve_with_nginx(true);
    let t = transfer_of(&report, ino, "socket");
    assert_named(&t["source"], &file);
    assert_eq!(t["comm"], "nginx");
    assert_eq!(t["method"], "sendfile", "{t}");
    assert_eq!(t["bytes"], SIZE);
    // writev() of the headers from nginx's memory, then sendfile() until the file is
    // sent: non-blocking, a call may return EAGAIN (two switches, nothing moved).
    let sendfiles = calls(t, "sendfile");
    assert!(sendfiles >= 1, "{t}");
    assert_eq!(calls(t, "writev"), 1, "{t}");
    assert_eq!(field(t, "syscalls"), sendfiles + 1, "{t}");
    assert_eq!(field(t, "mode_switches"), 2 * (sendfiles + 1));
    // The body's pages are referenced into the socket, never copied; the CPU copies the
    // headers only, once.
    assert_eq!(field(t, "page_ref_bytes"), SIZE, "{t}");
    assert_eq!(field(t, "cpu_copies"), 1, "{t}");
    assert_eq!(field(t, "cpu_copy_bytes"), headers, "{t}");
    // Loopback, cached file: no DMA; every page found in the cache.
    assert_eq!(field(t, "dma_copies"), 0);
    assert_eq!(
        (field(t, "cache_hits"), field(t, "cache_misses")),
        (PAGES, 0)
    );
    assert!(unexplained(t).is_empty(), "{t}");
    assert_all_unloaded();
}

#[test]
#[ignore = "needs root, the eBPF programs, nginx and curl: run `cargo xtask test`"]
fn nginx_keeps_the_connection_alive_for_a_second_response() {
    let root = temp_dir("www-keepalive");
    let file = root.join("file");
    make_file(&file);
    let nginx = Nginx::new("nginx-keepalive", &root, true);
    let running = watch(&nginx.command());
    wait_listening(nginx.port);
    // Two responses on one connection (curl reuses it: one connect).
    let out = Command::new(program("curl"))
        .args(["-sS", "--fail", "-o"])
        .arg(root.join("got1"))
        .arg("-o")
        .arg(root.join("got2"))
        .args(["-w", "%{size_header} %{num_connects}\n"])
        .args([nginx.url("file"), nginx.url("file")])
        .output()
        .unwrap();
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<(u64, u64)> = said
        .lines()
        .map(|l| {
            let mut it = l.split_whitespace().map(|n| n.parse::<u64>().unwrap());
            (it.next().unwrap(), it.next().unwrap())
        })
        .collect();
    assert_eq!(lines.iter().map(|l| l.1).sum::<u64>(), 1, "{said}");
    let headers: u64 = lines.iter().map(|l| l.0).sum();
    nginx.quit();
    let report = report_of(&running.wait_with_output().unwrap());
    // One transfer (same process, file and socket): both responses' headers and bodies.
    let t = transfer_of(&report, std::fs::metadata(&file).unwrap().ino(), "socket");
    assert_eq!(t["method"], "sendfile", "{t}");
    assert_eq!(t["bytes"], 2 * SIZE, "{t}");
    assert_eq!(calls(t, "writev"), 2, "{t}");
    assert_eq!(field(t, "syscalls"), calls(t, "sendfile") + 2);
    assert_eq!(field(t, "cpu_copies"), 2, "{t}");
    assert_eq!(field(t, "cpu_copy_bytes"), headers, "{t}");
    assert_eq!(field(t, "page_ref_bytes"), 2 * SIZE, "{t}");
    assert_eq!(field(t, "dma_copies"), 0);
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::remove_dir_all(&nginx.prefix).unwrap();
    assert_all_unloaded();
}

#[test]
#[ignore = "needs root, the eBPF programs and nginx: run `cargo xtask test`"]
fn nginx_with_sendfile_off_copies_each_chunk_twice() {
    let (report, ino, headers, file) = serve_with_nginx(false);
    let t = transfer_of(&report, ino, "socket");
    assert_named(&t["source"], &file);
    assert_eq!(t["method"], "read-write", "{t}");
    assert_eq!(t["bytes"], SIZE);
    // pread64() of 32 KiB into one of nginx's two output buffers (a CPU copy), writev()
    // of them (another, of what the socket takes): every byte copied twice, the headers
    // once, in the first writev. A writev() that finds the socket full returns EAGAIN.
    let (reads, writes) = (calls(t, "pread64"), calls(t, "writev"));
    assert_eq!(reads, SIZE / (32 << 10), "{t}");
    assert_eq!(field(t, "syscalls"), reads + writes, "{t}");
    assert_eq!(field(t, "mode_switches"), 2 * (reads + writes));
    assert_eq!(field(t, "cpu_copy_bytes"), 2 * SIZE + headers, "{t}");
    let copies = field(t, "cpu_copies");
    assert!(copies > reads && copies <= reads + writes, "{t}");
    // The textbook walks a chunk per send: the extra reads and the EAGAINs account for
    // the whole difference (checked by every difference being explained below).
    let sends = SIZE.div_ceil(t["chunk"].as_u64().unwrap());
    assert!(sends <= writes && copies <= reads + sends + 1, "{t}");
    assert_eq!((field(t, "page_refs"), field(t, "dma_copies")), (0, 0));
    assert_eq!(
        (field(t, "cache_hits"), field(t, "cache_misses")),
        (PAGES, 0)
    );
    assert!(unexplained(t).is_empty(), "{t}");
    assert_all_unloaded();
}
/// The process `parent` started (the command watch runs).
fn child_of(parent: u32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid ...: the comm may hold spaces, not a ')'.
            let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or_default();
            if after.split_whitespace().nth(1) == Some(&parent.to_string())
                && let Ok(pid) = entry.file_name().to_string_lossy().parse()
            {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "{parent} started no process");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs root, the eBPF programs and python3: run `cargo xtask test`"]
fn pythons_http_server_reads_and_sends_each_chunk() {
    let root = temp_dir("www-python");
    let file = root.join("file");
    make_file(&file);
    let port = free_port();
    let mut server = Command::new(program("python3"));
    server
        .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
        .arg(&root)
        .arg(port.to_string());
    let running = watch(&server);
    wait_listening(port);
    let headers = download(&format!("http://127.0.0.1:{port}/file"), &root.join("got"));
    // SAFETY: signalling the server this test started (KeyboardInterrupt: it exits 0).
    unsafe { libc::kill(child_of(running.id()), libc::SIGINT) };
    let report = report_of(&running.wait_with_output().unwrap());
    let t = transfer_of(&report, std::fs::metadata(&file).unwrap().ino(), "socket");
    assert_named(&t["source"], &file);
    assert_eq!(t["method"], "read-send", "{t}");
    assert_eq!(t["bytes"], SIZE);
    // shutil.copyfileobj(): read() of 64 KiB (a CPU copy), sendto() of it (another),
    // until read() returns 0; the headers in one sendto() before.
    let chunks = SIZE / (64 << 10);
    assert_eq!(t["chunk"], 64 << 10, "{t}");
    assert_eq!(calls(t, "read"), chunks + 1, "{t}");
    assert_eq!(calls(t, "sendto"), chunks + 1, "{t}");
    assert_eq!(field(t, "syscalls"), 2 * chunks + 2);
    assert_eq!(field(t, "mode_switches"), 4 * chunks + 4);
    assert_eq!(field(t, "cpu_copies"), 2 * chunks + 1, "{t}");
    assert_eq!(field(t, "cpu_copy_bytes"), 2 * SIZE + headers, "{t}");
    assert_eq!((field(t, "page_refs"), field(t, "dma_copies")), (0, 0));
    assert_eq!(
        (field(t, "cache_hits"), field(t, "cache_misses")),
        (PAGES, 0)
    );
    assert!(unexplained(t).is_empty(), "{t}");
    std::fs::remove_dir_all(&root).unwrap();
    assert_all_unloaded();
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn cp_copies_in_the_kernel_with_copy_file_range() {
    let dir = temp_dir("cp");
    let (src, dst) = (dir.join("src"), dir.join("dst"));
    make_file(&src);
    let mut cp = Command::new(program("cp"));
    cp.arg(&src).arg(&dst);
    let report = report_of(&watch(&cp).wait_with_output().unwrap());
    assert_eq!(std::fs::read(&src).unwrap(), std::fs::read(&dst).unwrap());
    let t = transfer_of(&report, std::fs::metadata(&src).unwrap().ino(), "file");
    assert_eq!(
        t["destination"]["ino"],
        std::fs::metadata(&dst).unwrap().ino()
    );
    // coreutils tries FICLONE (ext4 refuses it), then copy_file_range() until it
    // returns 0: ext4 has no copy offload, the kernel splices page cache to page cache
    // (one CPU copy of every byte, no user memory, no mode switch per chunk).
    assert_eq!(t["method"], "copy-file-range", "{t}");
    assert_eq!(t["bytes"], SIZE);
    let copies = calls(t, "copy_file_range");
    assert!(copies >= 2, "{t}");
    assert_eq!(field(t, "syscalls"), copies, "{t}");
    assert_eq!(field(t, "cpu_copies"), copies - 1, "{t}");
    assert_eq!(field(t, "cpu_copy_bytes"), SIZE, "{t}");
    assert_eq!((field(t, "page_refs"), field(t, "dma_copies")), (0, 0));
    assert_eq!(
        (field(t, "cache_hits"), field(t, "cache_misses")),
        (PAGES, 0)
    );
    assert!(unexplained(t).is_empty(), "{t}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_all_unloaded();
}

#[test]
#[ignore = "needs root, the eBPF programs, nginx and curl: run `cargo xtask test`"]
fn curl_receives_into_its_memory_and_writes_the_file() {
    let root = temp_dir("www-curl");
    make_file(&root.join("file"));
    // An nginx the tracer does not watch.
    let nginx = Nginx::new("nginx-curl", &root, true);
    let mut server = nginx.command().spawn().unwrap();
    wait_listening(nginx.port);
    let got = root.join("got");
    let mut curl = Command::new(program("curl"));
    curl.args(["-sS", "--fail", "-o"])
        .arg(&got)
        .arg(nginx.url("file"));
    let report = report_of(&watch(&curl).wait_with_output().unwrap());
    nginx.quit();
    server.wait().unwrap();
    assert_eq!(std::fs::metadata(&got).unwrap().len(), SIZE);
    let all = report["transfers"].as_array().unwrap();
    // The response: received from the socket into curl's memory, every byte copied once
    // (the headers too).
    let rx: Vec<_> = all
        .iter()
        .filter(|t| t["source"]["kind"] == "socket" && t["bytes"].as_u64() > Some(SIZE))
        .collect();
    assert_eq!(rx.len(), 1, "{report}");
    let rx = rx[0];
    assert_eq!(rx["destination"]["kind"], "user");
    assert_eq!(rx["method"], "other");
    let response = rx["bytes"].as_u64().unwrap();
    assert_eq!(field(rx, "cpu_copy_bytes"), response);
    assert!(response - SIZE < 1024, "the headers: {rx}");
    let receives = calls(rx, "recvfrom");
    assert_eq!(field(rx, "syscalls"), receives, "{rx}");
    assert_eq!(field(rx, "cpu_copies"), receives, "{rx}");
    assert_eq!((field(rx, "page_refs"), field(rx, "dma_copies")), (0, 0));
    // Then written from its memory into the file: a copy into the page cache per write().
    let got_ino = std::fs::metadata(&got).unwrap().ino();
    let w: Vec<_> = all
        .iter()
        .filter(|t| t["destination"]["ino"] == got_ino)
        .collect();
    assert_eq!(w.len(), 1, "{report}");
    let w = w[0];
    assert_eq!(w["source"]["kind"], "user");
    assert_eq!(w["method"], "other");
    assert_named(&w["destination"], &got);
    assert_eq!(w["bytes"], SIZE);
    let writes = calls(w, "write");
    assert_eq!(field(w, "syscalls"), writes, "{w}");
    assert_eq!(field(w, "cpu_copies"), writes, "{w}");
    assert_eq!(field(w, "cpu_copy_bytes"), SIZE);
    assert_eq!(
        w["destination"]["ino"],
        std::fs::metadata(&got).unwrap().ino()
    );
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::remove_dir_all(&nginx.prefix).unwrap();
    assert_all_unloaded();
}

#[test]
#[ignore = "needs root and the eBPF programs: run `cargo xtask test`"]
fn dd_with_o_direct_reads_by_dma_into_its_buffer() {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = temp_dir("direct");
    let file = dir.join("file");
    make_file(&file);
    // tmpfs refuses O_DIRECT: nothing to check there.
    if std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&file)
        .is_err()
    {
        eprintln!("{}: no O_DIRECT on this filesystem", file.display());
        return;
    }
    let mut dd = Command::new(program("dd"));
    dd.arg(format!("if={}", file.display())).args([
        "of=/dev/null",
        "bs=1M",
        "iflag=direct",
        "status=none",
    ]);
    let report = report_of(&watch(&dd).wait_with_output().unwrap());
    let t = transfer_of(&report, std::fs::metadata(&file).unwrap().ino(), "user");
    // read() of 1 MiB 64 times and once at the end: the block layer reads into dd's own
    // pages, no page cache, no CPU copy; a DMA per block request (one or more per read).
    assert_eq!(t["bytes"], SIZE, "{t}");
    let reads = SIZE >> 20;
    assert_eq!(calls(t, "read"), reads + 1, "{t}");
    assert_eq!(field(t, "syscalls"), reads + 1);
    assert_eq!(field(t, "cpu_copies"), 0, "{t}");
    assert_eq!(field(t, "dma_bytes"), SIZE, "{t}");
    assert!(field(t, "dma_copies") >= reads, "{t}");
    assert_eq!((field(t, "cache_hits"), field(t, "cache_misses")), (0, 0));
    assert!(
        t["evidence"][1].as_str().unwrap().contains("O_DIRECT"),
        "{t}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert_all_unloaded();
}
