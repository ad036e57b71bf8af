//! `tracer watch`: the transfers of processes the tracer did not write (a pid, every
//! process of a name, or a command it starts), each with its live ledger, the textbook
//! method it behaves like and the evidence, in the TUI or printed (`--headless`).
//!
//! `live` owns the event source (the probes, the watched processes) and feeds the `board`
//! (the model and what watch keeps per transfer, pure); `names` reads /proc for the
//! transfers' paths and addresses; `report` prints, `expect` checks `--expect`.

pub mod board;
pub mod expect;
pub mod live;
pub mod names;
pub mod report;

use std::{path::PathBuf, time::Duration};

use anyhow::{Result, bail};

pub use board::{Board, Row, TransferReport};
pub use expect::Expectations;
pub use live::Live;
pub use report::WatchReport;

use crate::trace::Target;

/// What `tracer watch` was asked.
#[derive(Clone, Debug)]
pub struct WatchArgs {
    pub target: Target,
    /// `-u USER`: run the command as this user.
    pub user: Option<String>,
    /// Print the ledgers instead of opening the TUI.
    pub headless: bool,
    pub json: bool,
    /// Also print them every interval.
    pub interval: Option<Duration>,
    /// List the small transfers in the text report too.
    pub all: bool,
    pub expect: Expectations,
    pub record: Option<PathBuf>,
    /// Overwrite an existing `record` file.
    pub force: bool,
}

/// `--interval SECS`: a positive number of seconds (a fraction too), at least 0.1.
pub fn parse_interval(text: &str) -> Result<Duration> {
    let secs: f64 = match text.trim().parse() {
        Ok(s) => s,
        Err(_) => bail!("--interval {text:?}: not a number of seconds"),
    };
    if !secs.is_finite() || secs < 0.1 {
        bail!("--interval {text:?}: at least 0.1 seconds");
    }
    if secs > 86_400.0 {
        bail!("--interval {text:?}: at most a day (86400 seconds)");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Runs `tracer watch`: the TUI, or the printed ledgers; returns the exit status.
pub async fn run(args: WatchArgs) -> Result<i32> {
    if args.headless {
        live::headless(args).await
    } else {
        crate::ui::run::watch(args).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_positive_seconds() {
        assert_eq!(parse_interval("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_interval("0.5").unwrap(), Duration::from_millis(500));
        for (bad, says) in [
            ("0", "at least 0.1"),
            ("-1", "at least 0.1"),
            ("x", "not a number"),
            ("NaN", "at least 0.1"),
            ("1e9", "at most a day"),
        ] {
            let e = parse_interval(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
