//! What `tracer demo` is asked to do: its arguments, the parsers of their values, and the
//! checks made on the input before anything is loaded.

use std::path::PathBuf;

use anyhow::{Context as _, Result, anyhow, bail};

use super::Expect;
use crate::{model::Method, workload};

/// Default input size when no `--file` is given.
pub const DEFAULT_SIZE: u64 = 8 << 20;

/// A `--chunk` value: bytes per call, from 1 byte to 1 GiB.
pub fn parse_chunk(text: &str) -> Result<u64> {
    let chunk = parse_size(text).map_err(|e| anyhow!("--chunk: {e}"))?;
    if chunk == 0 {
        bail!("--chunk must be at least 1 byte");
    }
    if chunk > 1 << 30 {
        bail!("--chunk: at most 1GiB per call");
    }
    Ok(chunk)
}

/// Parses a byte count: `8388608`, `64K`, `64KiB`, `8M`, `8MiB`, `1G` (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    if num.is_empty() {
        bail!("{text:?} is not a number (write e.g. 8388608, 64K or 8MiB)");
    }
    let n: u64 = num
        .parse()
        .map_err(|_overflow| anyhow!("{text:?} is too large"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => bail!("{text:?}: unknown unit {other:?} (use K, M or G, powers of 1024)"),
    };
    n.checked_mul(mult)
        .ok_or_else(|| anyhow!("{text:?} is too large"))
}

/// What `tracer demo` was asked to do.
#[derive(Clone, Debug)]
pub struct DemoArgs {
    pub methods: Vec<Method>,
    /// `--method all`: one comparison table.
    pub all: bool,
    pub size: Option<u64>,
    pub file: Option<PathBuf>,
    pub chunk: u64,
    pub cold: bool,
    /// TUI: keep the page cache.
    pub warm: bool,
    pub json: bool,
    pub expect: Vec<Expect>,
    /// Write every event of the runs here (the recording format: JSON lines).
    pub record: Option<PathBuf>,
    /// Overwrite an existing `record` file.
    pub force: bool,
    /// What the socket methods cross (`--link`).
    pub link: workload::LinkKind,
}

/// A `--link` value: `lo`, `veth` or `veth-nosg`.
pub fn parse_link(text: &str) -> Result<workload::LinkKind> {
    workload::LinkKind::from_name(text).ok_or_else(|| {
        anyhow!(
            "--link: unknown link {text:?}: choose one of {}",
            workload::LinkKind::ALL
                .map(workload::LinkKind::name)
                .join(", ")
        )
    })
}

/// Checks the input before anything is loaded.
pub fn check_input(args: &DemoArgs) -> Result<()> {
    if args.chunk == 0 {
        bail!("--chunk must be at least 1 byte");
    }
    if args.size == Some(0) {
        bail!("--size must be at least 1 byte (the demo sends a file of that size)");
    }
    if let Some(path) = &args.file {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            bail!(
                "{} is a directory: --file needs a regular file",
                path.display()
            );
        }
        if !meta.is_file() {
            bail!("{} is not a regular file", path.display());
        }
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        workload::check_size(path, meta.len())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("8MiB").unwrap(), 8 << 20);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert_eq!(parse_size("123").unwrap(), 123);
        assert!(parse_size("1T").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }
}
