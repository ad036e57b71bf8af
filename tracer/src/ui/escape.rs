//! Strings from the kernel (a process's name, a device's name) made safe for a terminal.
//!
//! Any process may name itself with `prctl(PR_SET_NAME)`: a name holding escape sequences
//! would clear the screen or set the terminal's title, and one holding a newline would
//! forge a line of output. So control and other non-printing characters are written out
//! as strace writes them (`\n`, `\x1b`), and a backslash as `\\`, so that an escaped name
//! cannot pass for another.

use std::{borrow::Cow, fmt::Write as _};

/// Whether `c` must not reach a terminal as itself: C0 and C1 controls, DEL, and the
/// invisible characters that reorder or hide text (bidirectional overrides, zero-width
/// characters, the byte-order mark).
fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}')
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
}
