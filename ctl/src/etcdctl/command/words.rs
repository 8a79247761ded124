//! etcdctl's splitting of an input line (`txn` and interactive `watch`) into words:
//! double-quoted words are unquoted as Go string literals, single-quoted ones are cut as
//! etcdctl 3.4 cuts them (it slices by the number of words, not the word's length).

/// Splits `line` the way etcdctl's `argify` does.
pub fn argify(line: &str) -> Vec<String> {
    let words = split(line);
    let count = words.len();
    words
        .into_iter()
        .map(|w| {
            if let Some(rest) = w.strip_prefix('\'') {
                // etcdctl takes args[i][1:len(args)-1].
                let end = count.saturating_sub(1).max(1);
                rest.get(..end.saturating_sub(1))
                    .unwrap_or(rest)
                    .to_string()
            } else if w.starts_with('"') {
                unquote(&w).map(|(s, _)| s).unwrap_or(w)
            } else {
                w
            }
        })
        .collect()
}

/// The words of `line`: `"..."` with escapes, `'...'`, or a run of non-space characters
/// that does not start with a quote.
fn split(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let end = match c {
            '"' => quoted_end(&chars, i),
            '\'' => chars[i + 1..]
                .iter()
                .position(|&c| c == '\'')
                .map(|p| i + 1 + p + 1),
            _ => Some(
                chars[i..]
                    .iter()
                    .position(|c| c.is_whitespace())
                    .map_or(chars.len(), |p| i + p),
            ),
        };
        match end {
            Some(end) => {
                words.push(chars[i..end].iter().collect());
                i = end;
            }
            None => i += 1,
        }
    }
    words
}

/// The index after the closing quote of the double-quoted word starting at `start`.
fn quoted_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Reads one Go string literal (`"..."` with escapes or `` `...` ``) at the start of
/// `text`; returns it and the rest of the text.
pub fn unquote(text: &str) -> Option<(String, &str)> {
    let mut chars = text.char_indices();
    match chars.next()?.1 {
        '`' => {
            let end = text[1..].find('`')? + 1;
            Some((text[1..end].to_string(), &text[end + 1..]))
        }
        '"' => {
            let mut out = String::new();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => return Some((out, &text[i + 1..])),
                    '\\' => {
                        let (_, e) = chars.next()?;
                        let simple = match e {
                            'n' => Some('\n'),
                            't' => Some('\t'),
                            'r' => Some('\r'),
                            'a' => Some('\u{7}'),
                            'b' => Some('\u{8}'),
                            'f' => Some('\u{c}'),
                            'v' => Some('\u{b}'),
                            '\\' | '"' | '\'' => Some(e),
                            _ => None,
                        };
                        match (simple, e) {
                            (Some(c), _) => out.push(c),
                            (None, 'x' | 'u' | 'U') => {
                                let len = match e {
                                    'x' => 2,
                                    'u' => 4,
                                    _ => 8,
                                };
                                let digits: String =
                                    (0..len).filter_map(|_| chars.next().map(|c| c.1)).collect();
                                let n = u32::from_str_radix(&digits, 16).ok()?;
                                out.push(char::from_u32(n)?);
                            }
                            _ => return None,
                        }
                    }
                    '\n' => return None,
                    c => out.push(c),
                }
            }
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_etcdctl() {
        assert_eq!(argify("put k v"), vec!["put", "k", "v"]);
        assert_eq!(argify(r#"put k "a b\n""#), vec!["put", "k", "a b\n"]);
        assert_eq!(argify("  get  k  --prefix "), vec!["get", "k", "--prefix"]);
        // etcdctl 3.4 slices a single-quoted word by the word count.
        assert_eq!(argify("put k 'hello world'"), vec!["put", "k", "h"]);
    }

    #[test]
    fn go_string_literals() {
        assert_eq!(
            unquote(r#""a\"b") > "1""#),
            Some(("a\"b".to_string(), r#") > "1""#))
        );
        assert_eq!(unquote("`raw\\n`x"), Some(("raw\\n".to_string(), "x")));
        assert_eq!(unquote("\"open"), None);
    }
}
