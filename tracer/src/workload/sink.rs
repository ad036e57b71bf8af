//! `tracer sink`: a receiver on another machine for `demo --peer`, so a transfer leaves
//! through a real NIC. It counts and checks what it gets, and tells the sender.
//!
//! The sender opens with a header (before its transfer's window: not traced as part of
//! it): [`MAGIC`], the file's size and its stream hash. The sink reads until the sender
//! shuts its side down, then replies with the bytes it got and their hash, which the
//! sender checks as it checks a local receiver's; the sink prints one line per connection.

use std::{
    io::{self, Read as _, Write as _},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
};

use anyhow::{Context as _, Result, bail};

use super::hash::StreamHash;

/// The first bytes of a sender's header.
const MAGIC: [u8; 8] = *b"TRCSINK1";
const HEADER_LEN: usize = 24;

/// What a sender says it will send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    pub size: u64,
    pub hash: u64,
}

impl Header {
    fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(&MAGIC);
        b[8..16].copy_from_slice(&self.size.to_le_bytes());
        b[16..].copy_from_slice(&self.hash.to_le_bytes());
        b
    }

    fn from_bytes(b: &[u8; HEADER_LEN]) -> Option<Self> {
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(w)
        };
        (b[..8] == MAGIC).then(|| Self {
            size: word(8),
            hash: word(16),
        })
    }
}

/// The sender's side: sends the header on `sock` (before the transfer).
pub(super) fn send_header(sock: &mut TcpStream, header: Header) -> Result<()> {
    sock.write_all(&header.to_bytes())
        .context("sending the header to the sink")
}

/// The sender's side, after the transfer: ends the stream and reads what the sink got
/// (bytes, hash).
pub(super) fn read_verdict(sock: &mut TcpStream) -> Result<(u64, u64)> {
    sock.shutdown(Shutdown::Write)
        .context("ending the stream to the sink")?;
    let mut reply = [0u8; 16];
    sock.read_exact(&mut reply)
        .context("reading the sink's count (is it a tracer sink?)")?;
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&reply[at..at + 8]);
        u64::from_le_bytes(w)
    };
    Ok((word(0), word(8)))
}

/// What one connection brought.
#[derive(Debug, PartialEq, Eq)]
pub struct Received {
    pub peer: SocketAddr,
    pub bytes: u64,
    /// Whether the bytes are the ones the header announced (count and hash).
    pub intact: bool,
    pub expected: u64,
}

impl std::fmt::Display for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.intact {
            write!(
                f,
                "{}: {} bytes, all there and unchanged",
                self.peer, self.bytes
            )
        } else if self.bytes != self.expected {
            write!(
                f,
                "{}: {} bytes, {} announced: the transfer lost or added bytes",
                self.peer, self.bytes, self.expected
            )
        } else {
            write!(
                f,
                "{}: {} bytes, but not the announced ones (the hash differs)",
                self.peer, self.bytes
            )
        }
    }
}

/// Receives one sender on `conn`: its header, the stream to its end, then the reply.
fn receive(mut conn: TcpStream, peer: SocketAddr) -> Result<Received> {
    let mut head = [0u8; HEADER_LEN];
    conn.read_exact(&mut head)
        .context("reading the sender's header")?;
    let Some(header) = Header::from_bytes(&head) else {
        bail!("{peer} is not a tracer demo --peer sender (no header)");
    };
    let mut buf = vec![0u8; 1 << 16];
    let mut hash = StreamHash::new();
    let mut bytes = 0u64;
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading the stream"),
        };
        hash.update(&buf[..n]);
        bytes += n as u64;
    }
    let hash = hash.finish();
    let mut reply = [0u8; 16];
    reply[..8].copy_from_slice(&bytes.to_le_bytes());
    reply[8..].copy_from_slice(&hash.to_le_bytes());
    conn.write_all(&reply).context("replying to the sender")?;
    Ok(Received {
        peer,
        bytes,
        intact: bytes == header.size && hash == header.hash,
        expected: header.size,
    })
}

/// The sink's socket, listening on `addr`.
pub fn listen(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))
}

/// Receives senders on `listener` one after the other, calling `report` with each one's
/// line (`once`: only the first); a connection that fails is reported and does not end
/// the sink, a report that fails (its output closed) does.
pub fn serve(
    listener: &TcpListener,
    once: bool,
    report: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<()> {
    loop {
        let (conn, peer) = listener.accept().context("accepting a sender")?;
        let line = match receive(conn, peer) {
            Ok(r) => r.to_string(),
            Err(e) => format!("{peer}: {e:#}"),
        };
        report(&line)?;
        if once {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_gets_the_count_and_hash_and_the_sink_checks_them() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let expected = {
            let mut h = StreamHash::new();
            h.update(&data);
            h.finish()
        };
        let sink = std::thread::spawn(move || {
            let (conn, peer) = listener.accept().unwrap();
            receive(conn, peer).unwrap()
        });
        let mut sock = TcpStream::connect(addr).unwrap();
        send_header(
            &mut sock,
            Header {
                size: data.len() as u64,
                hash: expected,
            },
        )
        .unwrap();
        sock.write_all(&data).unwrap();
        assert_eq!(
            read_verdict(&mut sock).unwrap(),
            (data.len() as u64, expected)
        );
        let got = sink.join().unwrap();
        assert!(got.intact, "{got}");
        assert!(
            got.to_string()
                .ends_with("100000 bytes, all there and unchanged")
        );
    }

    #[test]
    fn a_short_stream_is_reported_as_such() {
        let header = Header { size: 10, hash: 1 };
        assert_eq!(Header::from_bytes(&header.to_bytes()), Some(header));
        assert_eq!(Header::from_bytes(&[0u8; HEADER_LEN]), None);
        let r = Received {
            peer: "10.0.0.1:5".parse().unwrap(),
            bytes: 4,
            intact: false,
            expected: 10,
        };
        assert_eq!(
            r.to_string(),
            "10.0.0.1:5: 4 bytes, 10 announced: the transfer lost or added bytes"
        );
    }
}
