//! Go's text conventions etcdctl's output relies on: `%q` quoting, `%v` of string slices,
//! go-humanize's byte sizes and etcdctl's `\x..` hex form.

/// Go's `strconv.Quote` of a byte string: printable characters as they are, the usual
/// backslash escapes, `\xNN` for bytes that are not UTF-8.
pub fn go_quote(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{b}' => out.push_str("\\v"),
                c if c.is_control() || (c.is_whitespace() && c != ' ') => {
                    let n = c as u32;
                    if n < 0x80 {
                        out.push_str(&format!("\\x{n:02x}"));
                    } else if n < 0x10000 {
                        out.push_str(&format!("\\u{n:04x}"));
                    } else {
                        out.push_str(&format!("\\U{n:08x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// Go's `%v` of a `[]string`: `[a b c]`.
pub fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// go-humanize's `Bytes`: SI units, one decimal below 10.
pub fn humanize_bytes(size: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if size < 10 {
        return format!("{size} B");
    }
    let exp = ((size as f64).ln() / 1000f64.ln()).floor() as usize;
    let value = (size as f64 / 1000f64.powi(exp as i32) * 10.0 + 0.5).floor() / 10.0;
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[exp])
    } else {
        format!("{value:.0} {}", UNITS[exp])
    }
}

/// etcdctl's `--hex` form: every byte as `\xNN`.
pub fn hex_escaped(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\x{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_conventions() {
        assert_eq!(go_quote(b"k1"), "\"k1\"");
        assert_eq!(go_quote(b"a\"b\n\xff"), "\"a\\\"b\\n\\xff\"");
        assert_eq!(go_quote("é".as_bytes()), "\"é\"");
        assert_eq!(humanize_bytes(24576), "25 kB");
        assert_eq!(humanize_bytes(20480), "20 kB");
        assert_eq!(humanize_bytes(1500), "1.5 kB");
        assert_eq!(humanize_bytes(5), "5 B");
        assert_eq!(hex_escaped(b"foo"), "\\x66\\x6f\\x6f");
        assert_eq!(go_list(&["a".into(), "b".into()]), "[a b]");
    }
}
