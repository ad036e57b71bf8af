//! `watch --expect`: `demo`'s comparisons on a ledger field, plus `method=NAME` (or
//! `method!=NAME`), checked on every transfer that sends a file (file -> socket, file ->
//! file). A server's receives and the headers it writes from its own memory are other
//! transfers, which the checks leave alone.

use anyhow::{Result, anyhow, bail};

use super::board::TransferReport;
use crate::{
    demo::{self, Expect},
    model::Method,
};

/// What `--expect` asks of each transfer that sends a file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expectations {
    /// `method=NAME` (true) or `method!=NAME` (false); NAME is a method or `other`.
    pub method: Option<(bool, String)>,
    pub ledger: Vec<Expect>,
}

impl Expectations {
    pub fn is_empty(&self) -> bool {
        self.method.is_none() && self.ledger.is_empty()
    }
}

/// Parses `--expect 'method=sendfile,cpu_copy_bytes<=64K'`.
pub fn parse(text: &str) -> Result<Expectations> {
    let mut out = Expectations::default();
    for part in text.split(',') {
        let Some(rest) = part.trim().strip_prefix("method") else {
            out.ledger.extend(demo::parse_expect(part)?);
            continue;
        };
        let (equal, name) = match (
            rest.trim_start().strip_prefix("!="),
            rest.trim_start().strip_prefix('='),
        ) {
            (Some(name), _) => (false, name),
            (None, Some(name)) => (true, name),
            _ => bail!(
                "--expect {:?}: the method is compared with = or != (method=sendfile)",
                part.trim()
            ),
        };
        let name = name.trim();
        if name != "other" && Method::from_name(name).is_none() {
            return Err(anyhow!(
                "--expect {:?}: unknown method {name:?}: choose one of {}, or other",
                part.trim(),
                Method::ALL.map(Method::name).join(", ")
            ));
        }
        if out.method.is_some() {
            bail!("--expect {text:?} compares the method twice");
        }
        out.method = Some((equal, name.to_string()));
    }
    Ok(out)
}

/// Checks every transfer that sends a file, saying on stderr which comparisons failed (or
/// that all hold). True when one failed, or when no transfer sent a file.
pub fn check(expect: &Expectations, transfers: &[TransferReport]) -> bool {
    if expect.is_empty() {
        return false;
    }
    let senders: Vec<&TransferReport> = transfers.iter().filter(|t| t.sends_file).collect();
    if senders.is_empty() {
        crate::say!(
            "tracer: expectation failed: no transfer sent a file (--expect applies to file -> socket and file -> file transfers)"
        );
        return true;
    }
    let mut failed = false;
    for t in senders {
        let who = format!(
            "pid {} ({}) {} -> {}",
            t.pid, t.comm, t.source.name, t.destination.name
        );
        let mut failures = Vec::new();
        if let Some((equal, name)) = &expect.method
            && (t.method == name) != *equal
        {
            failures.push(format!(
                "method{}{name} (observed method={}{})",
                if *equal { "=" } else { "!=" },
                t.method,
                t.reason
                    .as_ref()
                    .map_or_else(String::new, |why| format!(": {why}"))
            ));
        }
        for e in &expect.ledger {
            let value = t.observed.get(&e.field).unwrap_or(0);
            if !e.holds(value) {
                failures.push(format!("{e} (observed {}={value})", e.field));
            }
        }
        for f in &failures {
            crate::say!("tracer: expectation failed for {who}: {f}");
        }
        if failures.is_empty() {
            crate::say!("tracer: {who}: expectations hold");
        }
        failed |= !failures.is_empty();
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_method_and_ledger_fields_parse_and_bad_ones_say_what_to_write() {
        let e = parse("method=sendfile, cpu_copy_bytes<=64K").unwrap();
        assert_eq!(e.method, Some((true, "sendfile".to_string())));
        assert_eq!(e.ledger.len(), 1);
        assert_eq!(e.ledger[0].value, 64 << 10);
        assert_eq!(
            parse("method != other").unwrap().method,
            Some((false, "other".to_string()))
        );
        for (bad, says) in [
            ("method=zero-copy", "unknown method \"zero-copy\""),
            ("method<sendfile", "compared with = or !="),
            ("method=sendfile,method=splice", "compares the method twice"),
            ("copies=1", "unknown field"),
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
