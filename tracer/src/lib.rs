//! The zero-copy tracer: eBPF probes on the Linux data path, decoded into events.
//!
//! Data flows one way: kernel programs -> ring buffer ([`source`]) -> [`event::decode`] ->
//! consumers: the `trace` command's lines, and the model (`model`) behind the demo's
//! reports, `watch`'s ledgers and the TUI (`ui`).

pub mod demo;
pub mod doctor;
pub mod event;
pub mod export;
pub mod model;
pub mod probe;
pub mod recording;
pub mod replay;
pub mod source;
pub mod syscalls;
pub mod trace;
pub mod ui;
pub mod watch;
pub mod workload;
