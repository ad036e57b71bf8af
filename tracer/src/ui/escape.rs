//! Strings from the kernel (a process's name, a device's name) made safe for a terminal.
//!
//! Any process may name itself with `prctl(PR_SET_NAME)`, and any user may name a file:
//! a name holding escape sequences would clear the screen or set the terminal's title, one
//! holding a newline would forge a line of output, and one holding a bidirectional
//! override would show its text reordered. So control and other non-printing characters
//! are written out as strace writes them (`\n`, `\x1b`), and a backslash as `\\`, so
//! that an escaped name cannot pass for another. JSON output writes the same characters
//! as `\uXXXX` escapes ([`to_json`]), which every JSON reader turns back into the name.

use std::{borrow::Cow, fmt::Write as _, io};

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

/// The format characters (general category Cf, Unicode 16): invisible, some reorder the
/// text around them (bidirectional marks, overrides and isolates), some hide it.
const FORMAT: &[(char, char)] = &[
    ('\u{ad}', '\u{ad}'),
    ('\u{600}', '\u{605}'),
    ('\u{61c}', '\u{61c}'),
    ('\u{6dd}', '\u{6dd}'),
    ('\u{70f}', '\u{70f}'),
    ('\u{890}', '\u{891}'),
    ('\u{8e2}', '\u{8e2}'),
    ('\u{180e}', '\u{180e}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{fff9}', '\u{fffb}'),
    ('\u{110bd}', '\u{110bd}'),
    ('\u{110cd}', '\u{110cd}'),
    ('\u{13430}', '\u{1343f}'),
    ('\u{1bca0}', '\u{1bca3}'),
    ('\u{1d173}', '\u{1d17a}'),
    ('\u{e0001}', '\u{e0001}'),
    ('\u{e0020}', '\u{e007f}'),
];

/// Whether `c` must not reach a terminal as itself: C0 and C1 controls, DEL, the line and
/// paragraph separators, and the format characters ([`FORMAT`]).
fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}')
        || FORMAT.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// `s` with every control or invisible character escaped (`\n`, `\t`, `\r`, else `\xNN` per
/// UTF-8 byte) and every backslash doubled; borrowed when there is nothing to escape.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c == '\\' || unprintable(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if unprintable(c) => {
                let mut utf8 = [0u8; 4];
                for b in c.encode_utf8(&mut utf8).bytes() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// serde_json's output with the characters [`escape`] writes out as `\uXXXX` too (it
/// escapes only those below U+0020): a terminal showing the JSON cannot be driven by them.
struct Safe<F>(F);

impl<F: Formatter> Formatter for Safe<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| unprintable(c)) {
            w.write_all(&rest.as_bytes()[..at])?;
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                write!(w, "\\u{u:04x}")?;
            }
            rest = &rest[at + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }

    // The layout is `F`'s (the pretty one's indentation).
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// Writes `value` as one line of JSON (as `serde_json::to_writer`), escaping what
/// [`escape`] escapes as `\uXXXX`.
pub fn write_json<W: io::Write, T: Serialize + ?Sized>(w: W, value: &T) -> serde_json::Result<()> {
    value.serialize(&mut serde_json::Serializer::with_formatter(
        w,
        Safe(CompactFormatter),
    ))
}

/// `value` as one line of JSON (as `serde_json::to_string`), escaped as [`write_json`].
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(256);
    write_json(&mut out, value)?;
    // serde_json writes UTF-8 only, and the escapes are ASCII.
    String::from_utf8(out).map_err(serde::ser::Error::custom)
}

/// `value` as indented JSON (as `serde_json::to_string_pretty`), escaped as [`write_json`].
pub fn to_json_pretty<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(1024);
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out,
        Safe(PrettyFormatter::new()),
    ))?;
    String::from_utf8(out).map_err(serde::ser::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_newlines_are_written_out() {
        assert_eq!(
            escape("\x1b]0;pwned\x07\x1b[2J"),
            "\\x1b]0;pwned\\x07\\x1b[2J"
        );
        assert_eq!(escape("a\nfake"), "a\\nfake");
        assert_eq!(escape("t\tr\r\x7f"), "t\\tr\\r\\x7f");
        // A C1 control (CSI) and a right-to-left override, byte by byte.
        assert_eq!(escape("a\u{9b}b\u{202e}"), "a\\xc2\\x9bb\\xe2\\x80\\xae");
        // A name that spells an escape is not mistaken for one.
        assert_eq!(escape("a\\x1b"), "a\\\\x1b");
    }

    #[test]
    fn plain_names_are_borrowed_unchanged() {
        for name in [
            "python3",
            "kworker/u8:2",
            "nginx: worker",
            "café",
            "lo",
            "8:0",
            "",
        ] {
            assert!(
                matches!(escape(name), Cow::Borrowed(n) if n == name),
                "{name}"
            );
        }
    }

    #[test]
    fn c1_controls_bidi_and_format_characters_are_written_out() {
        // CSI, NEL; LRE..RLO; LRI..PDI; ZWSP..RLM; BOM; the Arabic letter mark, the soft
        // hyphen and a tag character (beyond U+FFFF).
        for c in [
            '\u{85}', '\u{9b}', '\u{9f}', '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}',
        ]
        .into_iter()
        .chain([
            '\u{200b}',
            '\u{200f}',
            '\u{feff}',
            '\u{61c}',
            '\u{ad}',
            '\u{e0041}',
        ]) {
            let name = format!("a{c}b");
            let e = escape(&name);
            assert!(e.starts_with('a') && e.ends_with('b'), "{c:?}: {e}");
            assert!(e.is_ascii(), "{c:?}: {e}");
            assert!(e.contains("\\x"), "{c:?}: {e}");
        }
        assert_eq!(
            escape("\u{2067}x\u{2069}"),
            "\\xe2\\x81\\xa7x\\xe2\\x81\\xa9"
        );
        // Letters, marks and symbols beyond ASCII stay as they are.
        for name in ["naïve", "日本語", "→ user memory", "Ελλάδα", "e\u{301}"] {
            assert!(matches!(escape(name), Cow::Borrowed(_)), "{name}");
        }
    }

    #[test]
    fn json_writes_them_as_u_escapes_and_reads_back_the_same() {
        let name = "evil\u{1b}[2J\u{7f}\u{9b}\u{202e}txt.exe\u{2066}\u{200b}\u{feff}\u{e0041}é\n";
        let line = to_json(&serde_json::json!({ "comm": name })).unwrap();
        assert_eq!(
            line,
            r#"{"comm":"evil\u001b[2J\u007f\u009b\u202etxt.exe\u2066\u200b\ufeff\udb40\udc41é\n"}"#
        );
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["comm"], name);
        // The indented form: serde_json's layout, the same escapes.
        let v = serde_json::json!({ "a": [1, name], "b": {} });
        let pretty = to_json_pretty(&v).unwrap();
        assert_eq!(
            pretty,
            serde_json::to_string_pretty(&v)
                .unwrap()
                .replace('\u{7f}', "\\u007f")
                .replace('\u{9b}', "\\u009b")
                .replace('\u{202e}', "\\u202e")
                .replace('\u{2066}', "\\u2066")
                .replace('\u{200b}', "\\u200b")
                .replace('\u{feff}', "\\ufeff")
                .replace('\u{e0041}', "\\udb40\\udc41")
        );
        // Plain data is serde_json's, byte for byte.
        let plain = serde_json::json!({ "comm": "python3", "n": [1, 2], "s": "a\"b\\c" });
        assert_eq!(
            to_json(&plain).unwrap(),
            serde_json::to_string(&plain).unwrap()
        );
    }
}
