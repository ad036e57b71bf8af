//! The reader on every recording this project wrote, and on bad input of every kind: it
//! returns an error (never panics) and reads at most one line's worth past the header.

use std::{
    io::{BufReader, Cursor, Read},
    path::{Path, PathBuf},
};

use super::{CURRENT, Item, MAX_LINE, ReadError, Reader, Version};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every item of `bytes`, or the first error.
fn read_all(bytes: &[u8]) -> Result<Vec<Item>, ReadError> {
    let mut r = Reader::new(Cursor::new(bytes))?;
    let mut items = Vec::new();
    while let Some(i) = r.next_item()? {
        items.push(i);
    }
    Ok(items)
}

#[test]
fn versions_parse_from_the_format() {
    let v = |major, minor| Some(Version { major, minor });
    assert_eq!(Version::parse("tracer-recording-1"), v(1, 0));
    assert_eq!(Version::parse("tracer-recording-2.0"), v(2, 0));
    assert_eq!(Version::parse("tracer-recording-2.13"), v(2, 13));
    assert_eq!(Version::parse(super::FORMAT), Some(CURRENT));
    for bad in [
        "tracer-recording-",
        "tracer-recording-x",
        "tracer-recording-1.",
        "tracer-recording-99999999999999999999",
        "tracer-recording--1",
        "other-1",
    ] {
        assert_eq!(Version::parse(bad), None, "{bad}");
    }
}

/// Format 1: the fixtures of every method (demo --record before format 2) and of real
/// programs (watch --record, which has no report).
#[test]
fn every_format_1_fixture_reads_to_its_end() {
    let (mut demo, mut watch) = (0, 0);
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let items = read_all(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let r = Reader::new(Cursor::new(&bytes)).unwrap();
        assert_eq!(r.header().version, Version { major: 1, minor: 0 });
        assert!(r.header().run.is_none() && r.header().tracer.is_none());
        assert!(items.len() > 100, "{}", path.display());
        let watched = items.iter().all(|i| {
            matches!(
                i,
                Item::Event { method: None, .. } | Item::Lost { method: None, .. }
            )
        });
        if watched {
            watch += 1;
        } else {
            assert!(
                matches!(items.last(), Some(Item::Report(_))),
                "{}",
                path.display()
            );
            demo += 1;
        }
    }
    assert_eq!(demo, 16);
    assert!(watch >= 1);
}

/// Format 2: a recording `demo --record` made, kept with what `demo --json` printed.
#[test]
fn the_format_2_fixture_reads_with_its_conditions() {
    let path = fixtures().join("recordings/v2-read-send-cold.jsonl");
    let r = Reader::open(&path).unwrap();
    let h = r.header();
    assert_eq!(h.version, Version { major: 2, minor: 0 });
    assert!(h.tracer.is_some());
    let run = h.run.as_ref().expect("format 2 says how it ran");
    assert_eq!(run.command, "demo");
    assert!(run.cold);
    let probes = h.probes.as_ref().expect("and with which probes");
    assert!(probes.hooks.iter().any(|p| p == "tracepoint:sys_enter"));
    let items = read_all(&std::fs::read(&path).unwrap()).unwrap();
    assert!(items.iter().any(|i| matches!(
        i,
        Item::Run {
            cold: Some(_),
            drops: 0,
            ..
        }
    )));
}

#[test]
fn a_newer_major_is_refused_in_one_line_and_a_newer_minor_read() {
    let newer = br#"{"type":"header","format":"tracer-recording-3.1","kernel":"7.0","consts":{"iter_types":[]},"something":"new"}"#;
    let e = read_all(newer).map(|_| ()).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ReadError::Newer { .. }));
    assert!(
        text.contains("format 3.1") && text.contains("reads formats up to 2"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1);
    let minor = br#"{"type":"header","format":"tracer-recording-2.9","kernel":"7.0","consts":{"iter_types":[]},"something":"new"}
{"type":"lost","count":1,"since_ns":1,"until_ns":2,"also":"new"}
"#;
    let items = read_all(minor).unwrap();
    assert!(matches!(items[..], [Item::Lost { count: 1, .. }]));
}

#[test]
fn bad_input_is_an_error_that_names_its_line() {
    let header = r#"{"type":"header","format":"tracer-recording-2.0","kernel":"6.18","consts":{"iter_types":[]}}"#;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "empty"),
        (b"\n\n\n".to_vec(), "empty"),
        (b"\x00\x01\x02\xff\xfe".to_vec(), "not UTF-8"),
        (b"hello".to_vec(), "not JSON"),
        (b"[1,2,3]".to_vec(), "not JSON"),
        (b"{\"type\":\"event\"}".to_vec(), "line 1 is not a recording's header"),
        (b"{\"type\":\"header\"}".to_vec(), "no format"),
        (
            b"{\"type\":\"header\",\"format\":\"tracer-recording-2.0\",\"kernel\":7}".to_vec(),
            "line 1: invalid type",
        ),
        (format!("{header}\n{{\"type\":\"event\",").into_bytes(), "line 2: EOF"),
        (
            format!("{header}\n{{\"type\":\"lost\",\"count\":99999999999999999999999,\"since_ns\":1,\"until_ns\":2}}").into_bytes(),
            "line 2:",
        ),
        (
            format!("{header}\n{{\"type\":\"lost\",\"count\":-1,\"since_ns\":1,\"until_ns\":2}}").into_bytes(),
            "line 2:",
        ),
        (
            format!("{header}\n{{\"type\":\"lost\",\"count\":1e400,\"since_ns\":1,\"until_ns\":2}}").into_bytes(),
            "line 2:",
        ),
        (format!("{header}\n{header}").into_bytes(), "a second header"),
        (format!("{header}\n\"text\"").into_bytes(), "line 2:"),
        (
            // Deep nesting in a field nobody reads: no stack overflow.
            format!(
                "{header}\n{{\"type\":\"lost\",\"x\":{}{}}}",
                "[".repeat(100_000),
                "]".repeat(100_000)
            )
            .into_bytes(),
            "line 2: recursion limit",
        ),
        (
            format!("{header}\n{}", "a".repeat(MAX_LINE + 10)).into_bytes(),
            "line 2 is longer than 1024 KiB",
        ),
    ];
    for (bytes, needle) in cases {
        let e = read_all(&bytes).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(needle), "{e:?} lacks {needle:?}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}

/// The byte at a position of a made input, by seed.
type Maker = fn(u64, u64) -> u8;

/// An input of `len` bytes made on the fly (never held whole), counting what was read.
struct Stream {
    len: u64,
    pos: u64,
    seed: u64,
    /// A line to give first, then the generated bytes.
    prefix: Vec<u8>,
    make: Maker,
}

impl Read for Stream {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < out.len() && self.pos < self.len {
            let p = self.pos as usize;
            out[n] = match self.prefix.get(p) {
                Some(b) => *b,
                None => (self.make)(self.seed, self.pos),
            };
            n += 1;
            self.pos += 1;
        }
        Ok(n)
    }
}

fn noise(seed: u64, pos: u64) -> u8 {
    let mut x = seed ^ pos.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    (x >> 29) as u8
}

/// Valid JSON lines of the wrong kind, forever: `{}` and newlines.
fn objects(_: u64, pos: u64) -> u8 {
    b"{}\n"[(pos % 3) as usize]
}

#[test]
fn a_hundred_megabytes_of_garbage_cost_one_line() {
    const LEN: u64 = 100 << 20;
    let header = br#"{"type":"header","format":"tracer-recording-2.0","kernel":"6.18","consts":{"iter_types":[]}}
"#;
    let makers: [(Vec<u8>, Maker); 6] = [
        (Vec::new(), noise),
        (Vec::new(), objects),
        (header.to_vec(), noise),
        (header.to_vec(), objects),
        (header.to_vec(), |_, _| b'7'),
        (header.to_vec(), |_, _| b' '),
    ];
    for (prefix, make) in makers {
        let mut s = Stream {
            len: LEN,
            pos: 0,
            seed: 42,
            prefix,
            make,
        };
        let result = (|| {
            let mut r = Reader::new(BufReader::new(&mut s))?;
            while r.next_item()?.is_some() {}
            Ok::<_, ReadError>(())
        })();
        assert!(result.is_err());
        // The error comes at the first bad line: at most a line and a buffer in.
        assert!(
            s.pos <= (2 * MAX_LINE + 16 * 1024) as u64,
            "read {} bytes",
            s.pos
        );
    }
}

/// A small xorshift generator: the same cases every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bounded fuzzing: a fixture's first lines cut, flipped, spliced and with numbers and
/// types swapped, a few thousand times; the reader must return, never panic.
#[test]
fn mutated_recordings_never_panic_the_reader() {
    let text = std::fs::read_to_string(fixtures().join("read-send-hit.jsonl")).unwrap();
    let head: Vec<&str> = text.lines().take(24).collect();
    let tail = text.lines().last().unwrap_or_default();
    let mut base = head.join("\n");
    base.push('\n');
    base.push_str(tail);
    let base = base.into_bytes();
    let swaps: [&[u8]; 10] = [
        b"99999999999999999999999",
        b"-1",
        b"1e400",
        b"null",
        b"\"x\"",
        b"[]",
        b"{}",
        b"\xff\xfe",
        b"\n",
        b"\"type\":\"report\"",
    ];
    let mut rng = Rng(0x5EED_CAFE_F00D_0001);
    let mut errors = 0;
    for _ in 0..3000 {
        let mut b = base.clone();
        for _ in 0..=rng.below(4) {
            match rng.below(5) {
                0 => {
                    let at = rng.below(b.len());
                    b.truncate(at);
                }
                1 => {
                    let at = rng.below(b.len());
                    if let Some(x) = b.get_mut(at) {
                        *x ^= 1 << rng.below(8);
                    }
                }
                2 => {
                    let at = rng.below(b.len());
                    let s = swaps[rng.below(swaps.len())];
                    b.splice(at..at, s.iter().copied());
                }
                3 => {
                    // A number replaced by something else.
                    let at = rng.below(b.len());
                    if let Some(start) = b[at..].iter().position(u8::is_ascii_digit) {
                        let start = at + start;
                        let end = b[start..]
                            .iter()
                            .position(|c| !c.is_ascii_digit())
                            .map_or(b.len(), |e| start + e);
                        let s = swaps[rng.below(swaps.len())];
                        b.splice(start..end, s.iter().copied());
                    }
                }
                _ => {
                    let at = rng.below(b.len());
                    let len = rng.below(64).min(b.len() - at);
                    b.drain(at..at + len);
                }
            }
        }
        if read_all(&b).is_err() {
            errors += 1;
        }
    }
    // The mutations did reach the reader's error paths.
    assert!(errors > 1000, "{errors}");
}
