//! An event's two output forms: one JSON object (`trace --json`) and one text line, both
//! from its [`Event::fields`].

use std::fmt::Write as _;

use serde::ser::{Serialize, SerializeMap as _, Serializer};

use super::{Event, KernelConsts};

/// A field value in the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    U(u64),
    I(i64),
    /// A kernel or user address, printed in hex.
    Ptr(u64),
    Str(String),
    Static(&'static str),
    List(Vec<&'static str>),
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::U(v) => s.serialize_u64(*v),
            Self::I(v) => s.serialize_i64(*v),
            Self::Ptr(v) => s.collect_str(&format_args!("{v:#x}")),
            Self::Str(v) => s.serialize_str(v),
            Self::Static(v) => s.serialize_str(v),
            Self::List(v) => v.serialize(s),
        }
    }
}

impl Event {
    /// One JSON object (no trailing newline).
    pub fn to_json(&self, consts: &KernelConsts) -> String {
        let mut out = Vec::with_capacity(256);
        // Writing into a Vec cannot fail, and every value serializes.
        drop(self.write_json(consts, &mut out));
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Writes one JSON object (no trailing newline) straight to `out`.
    pub fn write_json(
        &self,
        consts: &KernelConsts,
        out: &mut impl std::io::Write,
    ) -> std::io::Result<()> {
        let view = JsonView {
            event: self,
            consts,
        };
        crate::ui::escape::write_json(out, &view).map_err(std::io::Error::from)
    }

    /// One human-readable line (no trailing newline). Strings from the kernel (the comm any
    /// process may set, device names) are escaped for a terminal.
    pub fn to_text(&self, consts: &KernelConsts) -> String {
        use crate::ui::escape::escape;
        let mut line = format!(
            "{:>6}.{:06} {:>7}/{:<7} {:<15} {}",
            self.ts_ns / 1_000_000_000,
            (self.ts_ns / 1000) % 1_000_000,
            self.pid,
            self.tid,
            escape(&self.comm),
            self.payload.name()
        );
        for (k, v) in self.fields(consts) {
            let _ = match v {
                Value::U(v) => write!(line, " {k}={v}"),
                Value::I(v) => write!(line, " {k}={v}"),
                Value::Ptr(v) => write!(line, " {k}={v:#x}"),
                Value::Str(v) => write!(line, " {k}={}", escape(&v)),
                Value::Static(v) => write!(line, " {k}={v}"),
                Value::List(v) => write!(line, " {k}={}", v.join("|")),
            };
        }
        line
    }
}

struct JsonView<'a> {
    event: &'a Event,
    consts: &'a KernelConsts,
}

impl Serialize for JsonView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.event;
        let fields = e.fields(self.consts);
        let mut m = s.serialize_map(Some(6 + fields.len()))?;
        m.serialize_entry("event", e.payload.name())?;
        m.serialize_entry("ts_ns", &e.ts_ns)?;
        m.serialize_entry("pid", &e.pid)?;
        m.serialize_entry("tid", &e.tid)?;
        m.serialize_entry("comm", &e.comm)?;
        m.serialize_entry("cpu", &e.cpu)?;
        for (k, v) in &fields {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}
