//! Built-in transfers: a file sent to a TCP receiver on loopback, in this process (the
//! receiver on its own thread), with one transfer method. The receiver counts every byte;
//! a transfer that loses bytes is an error.

use std::{
    fs::File,
    io::{self, Read},
    net::{TcpListener, TcpStream},
    os::fd::AsRawFd,
    path::Path,
    thread,
    time::Instant,
};

use anyhow::{Context as _, Result, bail};

/// How the sender moves the file into the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `read()` into a user buffer, then `write()` it to the socket.
    ReadWrite,
    /// `sendfile()` from the file to the socket.
    Sendfile,
}

impl Method {
    pub const ALL: [Method; 2] = [Method::ReadWrite, Method::Sendfile];

    /// The method called `name` (as `name()` spells it).
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::ReadWrite => "read-write",
            Method::Sendfile => "sendfile",
        }
    }
}

/// What a transfer did, for matching it with its events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub method: Method,
    pub bytes: u64,
    pub chunk: usize,
    /// The sender's file and socket descriptors, and its thread id.
    pub file_fd: i32,
    pub sock_fd: i32,
    pub sender_tid: u32,
    /// The receiver's thread id.
    pub receiver_tid: u32,
    pub wall_ns: u64,
}

fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// Sends `path` over a fresh loopback TCP connection with `method`, `chunk` bytes per call.
pub fn send_file(path: &Path, method: Method, chunk: usize) -> Result<Report> {
    if chunk == 0 {
        bail!("the chunk size must be at least 1 byte");
    }
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let size = meta.len();

    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback receiver")?;
    let addr = listener.local_addr()?;
    let receiver = thread::spawn(move || -> io::Result<(u64, u32)> {
        let tid = gettid();
        let (mut conn, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0u64;
        loop {
            match conn.read(&mut buf) {
                Ok(0) => return Ok((got, tid)),
                Ok(n) => got += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    });

    let sock = TcpStream::connect(addr).context("connecting to the loopback receiver")?;
    let started = Instant::now();
    let sender_tid = gettid();
    let sent = match method {
        Method::ReadWrite => read_write(&mut file, &sock, chunk)?,
        Method::Sendfile => sendfile(&file, &sock, size, chunk)?,
    };
    let file_fd = file.as_raw_fd();
    let sock_fd = sock.as_raw_fd();
    drop(sock);
    let (received, receiver_tid) = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("the receiver thread panicked"))?
        .context("receiving")?;
    let wall_ns = started.elapsed().as_nanos() as u64;
    if sent != size || received != size {
        bail!("transfer lost bytes: file {size}, sent {sent}, received {received}");
    }
    Ok(Report {
        method,
        bytes: size,
        chunk,
        file_fd,
        sock_fd,
        sender_tid,
        receiver_tid,
        wall_ns,
    })
}

fn check(ret: isize, what: &str) -> Result<usize> {
    if ret < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e).context(what.to_string());
    }
    Ok(ret as usize)
}

/// read() a chunk into a user buffer, write() it all to the socket; until EOF.
fn read_write(file: &mut File, sock: &TcpStream, chunk: usize) -> Result<u64> {
    let mut buf = vec![0u8; chunk];
    let (fd, sfd) = (file.as_raw_fd(), sock.as_raw_fd());
    let mut total = 0u64;
    loop {
        // SAFETY: buf is valid for chunk bytes.
        let n = check(
            unsafe { libc::read(fd, buf.as_mut_ptr().cast(), chunk) },
            "read",
        )?;
        if n == 0 {
            return Ok(total);
        }
        let mut off = 0;
        while off < n {
            // SAFETY: buf[off..n] is initialised and valid.
            off += check(
                unsafe { libc::write(sfd, buf[off..].as_ptr().cast(), n - off) },
                "write",
            )?;
        }
        total += n as u64;
    }
}

/// sendfile() `chunk` bytes at a time from the file to the socket.
fn sendfile(file: &File, sock: &TcpStream, size: u64, chunk: usize) -> Result<u64> {
    let mut off: libc::off_t = 0;
    while (off as u64) < size {
        let want = chunk.min((size - off as u64) as usize);
        // SAFETY: valid fds; off is updated by the kernel.
        let n = check(
            unsafe { libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), &mut off, want) },
            "sendfile",
        )?;
        if n == 0 {
            bail!("sendfile returned 0 before the end of the file (was it truncated?)");
        }
    }
    Ok(off as u64)
}

/// Writes `size` bytes of a repeating pattern to `path`.
pub fn make_file(path: &Path, size: u64) -> Result<()> {
    use std::io::Write;
    let mut f = io::BufWriter::new(
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    let block: Vec<u8> = (0..65536u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("tracer-wl-{}-{name}", std::process::id()))
    }

    #[test]
    fn both_methods_deliver_every_byte() {
        let path = temp("a");
        make_file(&path, 1_000_003).unwrap();
        for method in [Method::ReadWrite, Method::Sendfile] {
            let r = send_file(&path, method, 65536).unwrap();
            assert_eq!(r.bytes, 1_000_003);
            assert!(r.file_fd >= 0 && r.sock_fd >= 0 && r.file_fd != r.sock_fd);
            assert_ne!(r.sender_tid, r.receiver_tid);
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn bad_inputs_are_errors() {
        let dir = std::env::temp_dir();
        let e = send_file(&dir, Method::Sendfile, 4096).unwrap_err();
        assert!(format!("{e:#}").contains("not a regular file"), "{e:#}");
        let e = send_file(&temp("missing"), Method::ReadWrite, 4096).unwrap_err();
        assert!(format!("{e:#}").contains("cannot open"), "{e:#}");
        let path = temp("b");
        make_file(&path, 10).unwrap();
        assert!(send_file(&path, Method::ReadWrite, 0).is_err());
        std::fs::remove_file(&path).unwrap();
    }
}
