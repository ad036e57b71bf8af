//! The signals that end a demo: caught for its whole length, so that the probes are
//! detached and a made input freed by unwinding through their destructors.

use anyhow::{Context as _, Result};

/// A signal ended the demo; the exit status to use (128 + signal number).
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub(super) struct Interrupted(pub(super) i32);

/// SIGINT, SIGTERM and SIGHUP, caught for the whole demo.
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        })
    }

    /// Waits for one; says so on stderr and gives the exit status.
    pub async fn next(&mut self) -> i32 {
        let code = tokio::select! {
            _ = self.int.recv() => 130,
            _ = self.term.recv() => 143,
            _ = self.hup.recv() => 129,
        };
        crate::say!(
            "tracer: interrupted: stopping, removing the demo's files and detaching the probes"
        );
        code
    }
}
