//! Whether the tracer's eBPF programs are loaded, system-wide (`bpftool prog list`): the
//! root tests check that every way out of the tracer unloads them.
#![allow(
    dead_code,
    reason = "each test crate uses what it needs of this module"
)]

use std::{
    process::Command,
    time::{Duration, Instant},
};

/// The names of the tracer's programs loaded now.
pub(crate) fn tracer_programs() -> Vec<String> {
    let out = Command::new("bpftool")
        .args(["prog", "list"])
        .output()
        .expect("bpftool (apt-get install bpftool; .ci/run installs it)");
    assert!(out.status.success(), "bpftool prog list failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .skip_while(|w| *w != "name")
                .nth(1)
                .map(str::to_string)
        })
        .filter(|name| name.starts_with("tracer_"))
        .collect()
}

/// Whether the tracer's programs are all gone within 5 s: the kernel frees a closed
/// program after an RCU grace period, so it can be listed for a moment after the tracer
/// exits.
pub(crate) fn all_unloaded() -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !tracer_programs().is_empty() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Fails the test when a program of ours is still loaded 5 s from now.
pub(crate) fn assert_all_unloaded() {
    assert!(
        all_unloaded(),
        "still loaded 5 s after exit: {:?}",
        tracer_programs()
    );
}
