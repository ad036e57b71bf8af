//! `tracer replay` without root: the report of every recording is the one `demo` printed
//! when it recorded (format 2 keeps that output beside its recording; format 1's is the
//! golden snapshot of its fixture), and bad recordings are one line each.

use std::{path::Path, process::Command};

const TRACER: &str = env!("CARGO_BIN_EXE_tracer");

fn replay(args: &[&str]) -> std::process::Output {
    Command::new(TRACER)
        .arg("replay")
        .args(args)
        .output()
        .expect("running tracer replay")
}

fn dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn a_format_2_recording_replays_to_the_demos_json_byte_for_byte() {
    let rec = dir().join("tests/fixtures/recordings/v2-read-send-cold.jsonl");
    let printed = std::fs::read(rec.with_extension("json")).unwrap();
    let out = replay(&[rec.to_str().unwrap(), "--headless", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&printed)
    );
    // --method picks the run; a method the recording lacks is one line.
    let out = replay(&[rec.to_str().unwrap(), "--json", "--method", "read-send"]);
    assert_eq!(out.stdout, printed);
    let out = replay(&[rec.to_str().unwrap(), "--json", "--method", "sendfile"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("has no run of sendfile (it has read-send)"),
        "{err}"
    );
}

/// Format 1 has no eviction nor drop counts: its JSON is the golden report, which replays
/// the fixture exactly as `demo` reported it, without them.
#[test]
fn every_format_1_fixture_replays_to_its_golden_report() {
    for method in tracer::model::Method::ALL {
        for cache in ["hit", "miss"] {
            let name = format!("{}-{cache}", method.name());
            let rec = dir().join(format!("tests/fixtures/{name}.jsonl"));
            let snap =
                std::fs::read_to_string(dir().join(format!("tests/snapshots/golden__{name}.snap")))
                    .unwrap();
            let start = snap.find("--- report (json)\n").unwrap() + "--- report (json)\n".len();
            let end = snap.find("\n--- transfers").unwrap();
            let out = replay(&[rec.to_str().unwrap(), "--json"]);
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("{}\n", &snap[start..end]),
                "{name}"
            );
        }
    }
}

#[test]
fn bad_recordings_are_one_line_each() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let newer = tmp.join("replay-newer.jsonl");
    std::fs::write(
        &newer,
        "{\"type\":\"header\",\"format\":\"tracer-recording-9.2\",\"kernel\":\"7\",\"consts\":{}}\n",
    )
    .unwrap();
    let binary = tmp.join("replay-binary.jsonl");
    std::fs::write(&binary, [0u8, 159, 146, 150, 255, 10, 1, 2]).unwrap();
    let fixture_watch = dir().join("tests/fixtures/realprog-cp.jsonl");
    let cut = tmp.join("replay-cut.jsonl");
    let fixture = std::fs::read(dir().join("tests/fixtures/sendfile-hit.jsonl")).unwrap();
    std::fs::write(&cut, &fixture[..fixture.len() / 2]).unwrap();
    for (path, needle) in [
        (newer.as_path(), "the recording is format 9.2; this tracer"),
        (Path::new("/dev/null"), "the file is empty"),
        (binary.as_path(), "not UTF-8 text"),
        (cut.as_path(), "EOF while parsing"),
        (Path::new("/nonexistent/rec"), "No such file"),
        (
            fixture_watch.as_path(),
            "is a recording of tracer watch: replay shows the demo's recordings",
        ),
    ] {
        for extra in [&["--json"][..], &["--headless"]] {
            let mut args = vec![path.to_str().unwrap()];
            args.extend_from_slice(extra);
            let out = replay(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{err}");
            assert!(out.stdout.is_empty());
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(
                err.starts_with("tracer: error: ") && err.contains(needle),
                "{err}"
            );
        }
    }
}
