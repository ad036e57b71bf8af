use super::*;

/// Writes `size` bytes of the workload's pattern to `path` (a new file, or truncated).
fn make_file(path: &Path, size: u64) -> Result<()> {
    let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    write_pattern(&f, size).with_context(|| format!("writing {}", path.display()))
}

/// A fresh directory for one test, on a disk filesystem: page-cache eviction and O_DIRECT
/// mean nothing on tmpfs, so if the temporary directory is one, under the target directory.
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> Self {
        let mut base = std::env::temp_dir();
        if is_tmpfs(&base) {
            base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/workload-tests");
        }
        let dir = base.join(format!("tracer-wl-{}-{name}", std::process::id()));
        drop(std::fs::remove_dir_all(&dir));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn options(&self, chunk: usize) -> Options {
        Options {
            chunk,
            scratch_dir: self.0.clone(),
            link: Link::Loopback,
        }
    }

    /// The directory's entries.
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        drop(std::fs::remove_dir_all(&self.0));
    }
}

fn is_tmpfs(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: c is a NUL-terminated path; st is writable and the size of a struct statfs.
    if unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: statfs succeeded and filled the struct.
    unsafe { st.assume_init() }.f_type == libc::TMPFS_MAGIC
}

const SIZE: u64 = 1_000_003;

fn ino(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).unwrap().ino()
}

/// A checked run of `method`: every byte delivered, and a report that makes sense.
fn run(dir: &TestDir, file: &Path, size: u64, method: Method, chunk: usize) -> Report {
    let r = send_file(file, method, &dir.options(chunk))
        .unwrap_or_else(|e| panic!("{} with chunk {chunk}: {e:#}", method.name()));
    let what = format!("{} chunk {chunk}: {r:?}", method.name());
    assert_eq!(
        (r.method, r.bytes, r.chunk),
        (method, size, chunk),
        "{what}"
    );
    assert_eq!(r.sender_tid, gettid(), "{what}");
    assert_eq!(r.src_ino, ino(file), "{what}");
    assert_ne!(r.dst_ino, 0, "{what}");
    assert_ne!(r.dst_ino, r.src_ino, "{what}");
    assert!(r.start_ns > 0 && r.start_ns < r.end_ns, "{what}");
    assert_eq!(r.wall_ns, r.end_ns - r.start_ns, "{what}");
    assert!(r.end_ns <= sys::now_ns(), "{what}");
    if method == Method::CopyFileRange {
        assert_eq!((r.receiver_tid, r.receiver_ino), (None, None), "{what}");
    } else {
        let (tid, rino) = (r.receiver_tid.unwrap(), r.receiver_ino.unwrap());
        assert_ne!(tid, r.sender_tid, "{what}");
        assert!(rino != 0 && rino != r.dst_ino, "{what}");
    }
    let chunks = size.div_ceil(chunk as u64);
    match method {
        Method::MsgZerocopy => {
            let zc = r.zerocopy.clone().expect("a zerocopy report");
            assert_eq!(zc.completed, chunks, "one send id per chunk: {what}");
            assert!(
                zc.notifications >= 1 && zc.notifications <= zc.completed,
                "{what}"
            );
            assert!(zc.copied <= zc.completed, "{what}");
            assert_eq!(r.io_uring_send_zc, None);
        }
        Method::IoUring => {
            // Kernel 6.18 here: SEND_ZC (6.0+) must be there.
            assert_eq!(r.io_uring_send_zc, Some(true), "{what}");
            let zc = r.zerocopy.clone().expect("a zerocopy report with SEND_ZC");
            assert_eq!((zc.notifications, zc.completed), (chunks, chunks), "{what}");
            assert!(zc.copied <= zc.completed, "{what}");
        }
        _ => assert_eq!((&r.zerocopy, r.io_uring_send_zc), (&None, None), "{what}"),
    }
    r
}

#[test]
fn every_method_delivers_every_byte() {
    let dir = TestDir::new("all");
    let file = dir.path("src");
    make_file(&file, SIZE).unwrap();
    for method in Method::ALL {
        for chunk in [65536, 4096] {
            let r = run(&dir, &file, SIZE, method, chunk);
            if matches!(method, Method::MsgZerocopy | Method::IoUring) {
                eprintln!("{} chunk {chunk}: {:?}", method.name(), r.zerocopy);
            }
        }
    }
    // copy-file-range left no destination behind.
    assert_eq!(dir.entries(), ["src"]);
}

#[test]
fn io_uring_falls_back_when_send_zc_refuses_report_usage() {
    // As a kernel before 6.2 refuses IORING_SEND_ZC_REPORT_USAGE: SEND_ZC fails its
    // preparation with EINVAL, which cancels the linked READ; the first chunk is redone
    // without the flag, and the copied count is then unknown (0).
    let dir = TestDir::new("uring-fallback");
    let file = dir.path("src");
    make_file(&file, SIZE).unwrap();
    uring::USAGE_FLAG.set(1 << 15);
    let r = send_file(&file, Method::IoUring, &dir.options(65536));
    uring::USAGE_FLAG.set(1 << 3);
    let r = r.unwrap();
    assert_eq!(r.bytes, SIZE);
    assert_eq!(r.io_uring_send_zc, Some(true));
    let chunks = SIZE.div_ceil(65536);
    assert_eq!(
        r.zerocopy,
        Some(ZeroCopyReport {
            notifications: chunks,
            completed: chunks,
            copied: 0
        })
    );
}

#[test]
fn a_chunk_may_exceed_the_file() {
    let dir = TestDir::new("big-chunk");
    let file = dir.path("src");
    make_file(&file, 100_000).unwrap();
    for method in Method::ALL {
        // splice grows its pipe to hold the (file-sized) chunk.
        run(&dir, &file, 100_000, method, 4 << 20);
    }
    assert_eq!(dir.entries(), ["src"]);
}

#[test]
fn a_one_byte_file_and_one_byte_chunks() {
    let dir = TestDir::new("tiny");
    let file = dir.path("src");
    make_file(&file, 1).unwrap();
    let three = dir.path("three");
    make_file(&three, 3).unwrap();
    for method in Method::ALL {
        run(&dir, &file, 1, method, 1);
        run(&dir, &three, 3, method, 1);
    }
}

/// (read syscalls, write syscalls) this thread has made (`syscr`, `syscw`).
fn syscalls() -> (u64, u64) {
    use std::io::Read as _;
    let mut f = File::open("/proc/thread-self/io").unwrap();
    let mut buf = [0u8; 4096];
    let n = f.read(&mut buf).unwrap();
    let io = String::from_utf8_lossy(&buf[..n]).into_owned();
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    };
    (field("syscr:"), field("syscw:"))
}

#[test]
fn read_write_makes_one_read_and_one_write_per_chunk_and_no_eof_read() {
    let dir = TestDir::new("calls");
    let file = dir.path("src");
    make_file(&file, SIZE).unwrap();
    // What reading the counters costs in reads, between two readings.
    let (a, _) = syscalls();
    let (b, _) = syscalls();
    let cost = b - a;
    let delta = |(r0, w0): (u64, u64), (r1, w1): (u64, u64)| (r1 - r0 - cost, w1 - w0);
    for chunk in [65536, 4096, 1 << 20] {
        let chunks = SIZE.div_ceil(chunk as u64);
        let before = syscalls();
        run(&dir, &file, SIZE, Method::ReadWrite, chunk);
        // One more read: hashing the file before the transfer (one 1 MiB pread).
        assert_eq!(
            delta(before, syscalls()),
            (chunks + 1, chunks),
            "chunk {chunk}"
        );
        // mmap-write: the writes only.
        let before = syscalls();
        run(&dir, &file, SIZE, Method::MmapWrite, chunk);
        assert_eq!(delta(before, syscalls()), (1, chunks), "chunk {chunk}");
    }
}

#[test]
fn copy_file_range_across_filesystems_says_so() {
    let dir = TestDir::new("exdev");
    let file = dir.path("src");
    make_file(&file, 10_000).unwrap();
    let shm = Path::new("/dev/shm");
    use std::os::unix::fs::MetadataExt as _;
    let (Ok(a), Ok(b)) = (std::fs::metadata(shm), std::fs::metadata(&dir.0)) else {
        return;
    };
    if a.dev() == b.dev() {
        eprintln!("/dev/shm is on the test directory's filesystem: nothing to test");
        return;
    }
    let scratch = tempfile_dir_in(shm);
    let e = send_file(
        &file,
        Method::CopyFileRange,
        &Options {
            chunk: 4096,
            scratch_dir: scratch.clone(),
            link: Link::Loopback,
        },
    )
    .unwrap_err();
    let left = std::fs::read_dir(&scratch).unwrap().count();
    std::fs::remove_dir_all(&scratch).unwrap();
    assert!(format!("{e:#}").contains("on one filesystem"), "{e:#}");
    assert_eq!(left, 0, "the destination was removed");
}

fn tempfile_dir_in(base: &Path) -> PathBuf {
    let dir = base.join(format!("tracer-wl-{}-exdev", std::process::id()));
    drop(std::fs::remove_dir_all(&dir));
    std::fs::create_dir(&dir).unwrap();
    dir
}

#[test]
fn bad_inputs_are_errors() {
    let dir = TestDir::new("bad");
    let msg = |r: Result<Report>| format!("{:#}", r.unwrap_err());
    for method in Method::ALL {
        let e = msg(send_file(&dir.0, method, &dir.options(4096)));
        assert!(e.contains("not a regular file"), "{e}");
        let e = msg(send_file(&dir.path("missing"), method, &dir.options(4096)));
        assert!(e.contains("cannot open"), "{e}");
        let empty = dir.path("empty");
        std::fs::write(&empty, b"").unwrap();
        let e = msg(send_file(&empty, method, &dir.options(4096)));
        assert!(e.contains("is empty"), "{e}");
        let ten = dir.path("ten");
        make_file(&ten, 10).unwrap();
        let e = msg(send_file(&ten, method, &dir.options(0)));
        assert!(e.contains("at least 1 byte"), "{e}");
    }
    let e = msg(send_file(
        &dir.path("ten"),
        Method::CopyFileRange,
        &Options {
            chunk: 4096,
            scratch_dir: dir.path("no-such-dir"),
            link: Link::Loopback,
        },
    ));
    assert!(e.contains("scratch directory"), "{e}");
    assert_eq!(dir.entries(), ["empty", "ten"]);

    let e = format!("{:#}", evict(&dir.path("empty")).unwrap_err());
    assert!(e.contains("is empty"), "{e}");
    let e = format!("{:#}", evict(&dir.path("missing")).unwrap_err());
    assert!(e.contains("cannot open"), "{e}");
    let e = format!("{:#}", evict(&dir.0).unwrap_err());
    assert!(e.contains("not a regular file"), "{e}");
}

#[test]
fn the_receiver_checks_count_and_content() {
    let got = |bytes: &[u8]| Received {
        tid: 1,
        ino: 1,
        bytes: bytes.len() as u64,
        hash: hash::hash_bytes(bytes),
    };
    let expected = hash::hash_bytes(b"abcd");
    got(b"abcd").check(4, expected).unwrap();
    let e = format!("{:#}", got(b"abc").check(4, expected).unwrap_err());
    assert!(e.starts_with("transfer lost bytes"), "{e}");
    let e = format!("{:#}", got(b"abce").check(4, expected).unwrap_err());
    assert!(e.starts_with("transfer corrupted"), "{e}");
    let e = format!("{:#}", got(b"abcde").check(4, expected).unwrap_err());
    assert!(e.starts_with("transfer corrupted"), "{e}");
}

#[test]
fn the_stream_hash_ignores_splits_and_sees_changes() {
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let whole = hash::hash_bytes(&data);
    for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
        for split2 in [split, (split + 3).min(1000)] {
            let mut h = StreamHash::new();
            h.update(&data[..split]);
            h.update(&data[split..split2]);
            h.update(&data[split2..]);
            assert_eq!(h.finish(), whole, "{split} {split2}");
        }
    }
    let mut changed = data.clone();
    changed[999] ^= 0x80;
    assert_ne!(hash::hash_bytes(&changed), whole);
    let mut swapped = data;
    swapped.swap(0, 8);
    assert_ne!(hash::hash_bytes(&swapped), whole);
    assert_ne!(hash::hash_bytes(b"a"), hash::hash_bytes(b"a\0"));
    assert_ne!(hash::hash_bytes(b""), hash::hash_bytes(b"\0"));
    // The file hash (O_DIRECT where it works) equals the in-memory one.
    let dir = TestDir::new("hash");
    for size in [1, 4095, 4096, 4097, SIZE, (1 << 20) + 5] {
        let file = dir.path("f");
        make_file(&file, size).unwrap();
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(
            hash::hash_file(&file, size).unwrap(),
            hash::hash_bytes(&bytes),
            "{size}"
        );
    }
}

#[test]
fn unsupported_is_a_typed_error() {
    let e: anyhow::Error = WorkloadError::Unsupported {
        method: "io-uring",
        why: "io_uring_setup: Operation not permitted".into(),
    }
    .into();
    let e = e.context("running the transfer");
    assert!(matches!(
        e.downcast_ref::<WorkloadError>(),
        Some(WorkloadError::Unsupported {
            method: "io-uring",
            ..
        })
    ));
    assert_eq!(
        e.root_cause().to_string(),
        "io-uring is not supported here: io_uring_setup: Operation not permitted"
    );
}

#[test]
fn methods_have_names_and_descriptions() {
    let names: Vec<_> = Method::ALL.iter().map(|m| m.name()).collect();
    assert_eq!(
        names,
        [
            "read-write",
            "read-send",
            "mmap-write",
            "sendfile",
            "splice",
            "msg-zerocopy",
            "io-uring",
            "copy-file-range"
        ]
    );
    for m in Method::ALL {
        assert_eq!(Method::from_name(m.name()), Some(m));
        assert_eq!(
            serde_json::to_value(m).unwrap(),
            serde_json::json!(m.name())
        );
        assert!(!m.describe().is_empty() && !m.describe().contains('\n'));
    }
    assert_eq!(Method::from_name("nope"), None);
}

#[test]
fn evict_drops_a_fresh_file_from_the_page_cache() {
    let dir = TestDir::new("evict");
    let file = dir.path("f");
    make_file(&file, 4 << 20).unwrap();
    let r = evict(&file).unwrap();
    assert_eq!(r.pages, 1024, "{r:?}");
    assert!(r.resident_before <= r.pages, "{r:?}");
    assert!(r.resident_after < r.resident_before, "{r:?}");
    // Hashing the file before a transfer (O_DIRECT) does not bring it back.
    hash::hash_file(&file, 4 << 20).unwrap();
    let again = evict(&file).unwrap();
    assert_eq!(again.resident_before, r.resident_after, "{again:?}");
    let sent = send_file(&file, Method::Sendfile, &dir.options(65536)).unwrap();
    assert_eq!(sent.bytes, 4 << 20);
}

#[test]
fn a_sink_elsewhere_receives_checks_and_answers_every_socket_method() {
    let dir = TestDir::new("sink");
    let path = dir.path("input");
    make_file(&path, 300_000).unwrap();
    let listener = sink::listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let methods: Vec<Method> = Method::ALL
        .into_iter()
        .filter(|m| *m != Method::CopyFileRange)
        .collect();
    let count = methods.len();
    let sink = thread::spawn(move || {
        let mut lines = Vec::new();
        for _ in 0..count {
            sink::serve(&listener, true, &mut |l| {
                lines.push(l.to_string());
                Ok(())
            })
            .unwrap();
        }
        lines
    });
    let opts = Options {
        link: Link::Peer(addr),
        ..dir.options(65536)
    };
    for &m in &methods {
        match send_file(&path, m, &opts) {
            Ok(r) => {
                assert_eq!((r.bytes, r.receiver_tid), (300_000, None), "{m:?}");
            }
            // io_uring may be refused here (the sink still got a connection).
            Err(e) if e.downcast_ref::<WorkloadError>().is_some() => {}
            Err(e) => panic!("{m:?}: {e:#}"),
        }
    }
    let lines = sink.join().unwrap();
    assert_eq!(lines.len(), count);
    assert!(
        lines
            .iter()
            .filter(|l| l.ends_with("300000 bytes, all there and unchanged"))
            .count()
            >= count - 1,
        "{lines:?}"
    );
}
