//! `--expect`: comparisons on the sender's ledger, parsed from the command line and
//! checked after the runs.

use anyhow::{Result, anyhow, bail};

use super::{Outcome, parse_size};
use crate::model::Ledger;

/// One comparison on a sender ledger field, from `--expect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    pub field: String,
    pub op: Op,
    pub value: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
    fn holds(self, a: u64, b: u64) -> bool {
        match self {
            Self::Eq => a == b,
            Self::Ne => a != b,
            Self::Lt => a < b,
            Self::Le => a <= b,
            Self::Gt => a > b,
            Self::Ge => a >= b,
        }
    }
}

impl Expect {
    /// Whether `value` of the field passes the comparison.
    pub fn holds(&self, value: u64) -> bool {
        self.op.holds(value, self.value)
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{}", self.field, self.op.symbol(), self.value)
    }
}

/// Parses `--expect 'cpu_copy_bytes=0,mode_switches<=4'`.
pub fn parse_expect(text: &str) -> Result<Vec<Expect>> {
    let fields = || {
        let mut f: Vec<&str> = Ledger::FIELDS.to_vec();
        f.push("wall_ns");
        f.join(", ")
    };
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim) {
        if part.is_empty() {
            bail!(
                "--expect has an empty comparison in {text:?}: write FIELD<OP>VALUE, separated by commas"
            );
        }
        let pos = part
            .find(['=', '!', '<', '>'])
            .ok_or_else(|| anyhow!("--expect {part:?} has no comparison: write e.g. cpu_copy_bytes=0 or mode_switches<=4 (operators = != < <= > >=)"))?;
        let (field, rest) = part.split_at(pos);
        let field = field.trim();
        let (op, value) = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("!=", Op::Ne),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .iter()
        .find_map(|(s, op)| rest.strip_prefix(s).map(|v| (*op, v.trim())))
        .ok_or_else(|| anyhow!("--expect {part:?}: unknown operator (use = != < <= > >=)"))?;
        if field != "wall_ns" && !Ledger::FIELDS.contains(&field) {
            bail!(
                "--expect {part:?}: unknown field {field:?} (fields: {})",
                fields()
            );
        }
        let value = parse_size(value).map_err(|e| anyhow!("--expect {part:?}: {e}"))?;
        out.push(Expect {
            field: field.to_string(),
            op,
            value,
        });
    }
    Ok(out)
}

/// Checks each run's sender ledger against `expect`, saying on stderr which comparisons
/// failed (or that all hold). True when one failed.
pub(super) fn check(expect: &[Expect], outcomes: &[Outcome]) -> bool {
    let mut failed = false;
    for o in outcomes {
        if let Outcome::Ran(r) = o {
            let failures: Vec<_> = expect
                .iter()
                .map(|e| (e, r.sender.observed.get(&e.field).unwrap_or(0)))
                .filter(|(e, value)| !e.op.holds(*value, e.value))
                .collect();
            for (e, value) in &failures {
                crate::say!(
                    "tracer: expectation failed for {}: {} (observed {}={})",
                    r.method.name(),
                    e,
                    e.field,
                    value
                );
            }
            failed |= !failures.is_empty();
            if failures.is_empty() && !expect.is_empty() {
                let list: Vec<String> = expect.iter().map(|e| e.to_string()).collect();
                crate::say!(
                    "tracer: {}: expectations hold: {}",
                    r.method.name(),
                    list.join(", ")
                );
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_parse_and_bad_ones_say_what_to_write() {
        let e = parse_expect("cpu_copy_bytes=0, mode_switches<=4,dma_bytes>=1MiB").unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[1].op, Op::Le);
        assert_eq!(e[2].value, 1 << 20);
        assert_eq!(e[0].to_string(), "cpu_copy_bytes=0");
        for (bad, says) in [
            ("cpu_copies", "no comparison"),
            ("copies=1", "unknown field"),
            ("cpu_copies=x", "not a number"),
            ("cpu_copies=1,", "empty comparison"),
            ("cpu_copies=>1", "not a number"),
        ] {
            let err = parse_expect(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert!(Op::Le.holds(4, 4) && !Op::Lt.holds(4, 4) && Op::Ne.holds(1, 2));
    }
}
