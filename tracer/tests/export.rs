//! `tracer export` without root: the Chrome trace-event JSON of recorded runs checked
//! against the format (phases, required fields, matched slices and flows), the CSV's one
//! row per step, and `-o` created private and never over a file unless asked.

use std::{
    collections::BTreeMap,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

const TRACER: &str = env!("CARGO_BIN_EXE_tracer");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn export(args: &[&str]) -> std::process::Output {
    Command::new(TRACER)
        .arg("export")
        .args(args)
        .output()
        .expect("running tracer export")
}

/// Checks `trace` against the trace-event format; returns the names of the complete
/// slices per category.
fn check_trace_events(trace: &Value) -> BTreeMap<String, Vec<String>> {
    let events = trace["traceEvents"]
        .as_array()
        .expect("a traceEvents array");
    assert!(!events.is_empty());
    let mut slices: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut open: BTreeMap<(u64, u64), Vec<String>> = BTreeMap::new();
    let mut flows: BTreeMap<(String, u64), (u32, u32)> = BTreeMap::new();
    for e in events {
        let ph = e["ph"].as_str().expect("every event has a phase");
        assert!(e["name"].is_string(), "{e}");
        let pid = e["pid"].as_u64().expect("pid");
        let tid = e["tid"].as_u64().expect("tid");
        if ph == "M" {
            assert!(
                matches!(e["name"].as_str(), Some("process_name" | "thread_name")),
                "{e}"
            );
            assert!(e["args"]["name"].is_string(), "{e}");
            continue;
        }
        let ts = e["ts"].as_f64().expect("ts");
        assert!(ts >= 0.0, "{e}");
        match ph {
            "X" => {
                assert!(e["dur"].as_f64().expect("dur") >= 0.0, "{e}");
                let cat = e["cat"].as_str().unwrap_or_default().to_string();
                slices
                    .entry(cat)
                    .or_default()
                    .push(e["name"].as_str().unwrap_or_default().into());
            }
            "B" => open
                .entry((pid, tid))
                .or_default()
                .push(e["name"].as_str().unwrap_or_default().into()),
            "E" => {
                assert!(
                    open.entry((pid, tid)).or_default().pop().is_some(),
                    "an E without its B: {e}"
                );
            }
            "i" | "I" => assert!(matches!(e["s"].as_str(), Some("t" | "p" | "g")), "{e}"),
            "s" | "f" => {
                let key = (
                    e["cat"].as_str().expect("a flow's cat").to_string(),
                    e["id"].as_u64().expect("a flow's id"),
                );
                let entry = flows.entry(key).or_default();
                if ph == "s" {
                    entry.0 += 1;
                } else {
                    entry.1 += 1;
                    assert_eq!(e["bp"], "e", "{e}");
                }
            }
            other => panic!("unexpected phase {other}: {e}"),
        }
        if let Some(args) = e.get("args") {
            assert!(args.is_object(), "{e}");
        }
    }
    assert!(open.values().all(Vec::is_empty), "B without E: {open:?}");
    assert!(
        flows.values().all(|&(s, f)| s == 1 && f == 1),
        "each flow starts once and finishes once"
    );
    slices
}

#[test]
fn a_sendfile_run_exports_as_a_valid_chrome_trace() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let out = dir.join("export-sendfile.json");
    drop(std::fs::remove_file(&out));
    let rec = fixture("sendfile-miss.jsonl");
    let r = export(&[
        rec.to_str().unwrap(),
        "--format",
        "chrome",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(r.stdout.is_empty());
    let meta = std::fs::symlink_metadata(&out).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let trace: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let slices = check_trace_events(&trace);
    // 16 sendfile calls (one per chunk), each a slice on its thread.
    assert_eq!(
        slices["syscall"]
            .iter()
            .filter(|n| *n == "sendfile")
            .count(),
        16,
        "{slices:?}"
    );
    // Page references from the page cache to the socket: a slice at each end.
    assert_eq!(slices["page-ref"].len(), 2 * 16);
    assert!(slices.contains_key("dma-copy"));
    // The sender copies nothing with the CPU: the only CPU copies are the receiver's.
    for e in trace["traceEvents"].as_array().unwrap() {
        if e["cat"] == "cpu-copy" && e["ph"] == "X" {
            assert_eq!(e["args"]["from"], "the socket buffer", "{e}");
        }
    }
    let with_args = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["cat"] == "page-ref" && e["ph"] == "X")
        .unwrap();
    assert_eq!(with_args["args"]["bytes"], 65536);
    assert!(
        with_args["args"]["evidence"]
            .as_str()
            .unwrap()
            .starts_with("observed by")
    );
    // -o never overwrites without --force.
    let again = export(&[
        rec.to_str().unwrap(),
        "--format",
        "chrome",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("cannot create") && err.lines().count() == 1,
        "{err}"
    );
    let forced = export(&[
        rec.to_str().unwrap(),
        "--format",
        "csv",
        "-o",
        out.to_str().unwrap(),
        "--force",
    ]);
    assert!(forced.status.success());
    // Nor over the recording itself.
    let own = export(&[
        rec.to_str().unwrap(),
        "--format",
        "csv",
        "-o",
        rec.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(own.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&own.stderr).contains("is the recording itself"));
}

#[test]
fn every_fixture_exports_a_valid_trace_and_one_csv_row_per_step() {
    for entry in std::fs::read_dir(fixture("")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let p = path.to_str().unwrap();
        let r = export(&[p, "--format", "chrome"]);
        assert!(
            r.status.success(),
            "{p}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let slices = check_trace_events(&serde_json::from_slice(&r.stdout).unwrap());
        assert!(slices.contains_key("syscall"), "{p}");
        let r = export(&[p, "--format", "csv"]);
        assert!(r.status.success());
        let text = String::from_utf8(r.stdout).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert!(header.starts_with("method,step,ts_ns,"));
        let mut n = 0;
        for (i, line) in lines.enumerate() {
            n += 1;
            // Quoted fields hold commas; the rest count the columns.
            let mut fields = 1;
            let mut quoted = false;
            for c in line.chars() {
                match c {
                    '"' => quoted = !quoted,
                    ',' if !quoted => fields += 1,
                    _ => {}
                }
            }
            assert_eq!(fields, 15, "{p}:{}: {line}", i + 2);
            assert!(line.contains(&format!(",{},", i + 1)), "{line}");
        }
        assert!(n > 50, "{p}");
    }
}
