//! Readable failure messages: prost's `Debug` prints `bytes` fields as lists of numbers,
//! one per line when pretty-printed; this turns them back into byte strings. It only
//! formats what a failed comparison prints; comparisons are made on the messages.

use std::fmt::Debug;
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// Longest byte string shown in full.
const SHOWN: usize = 48;

/// A pretty-printed list of small integers (what a `Vec<u8>` looks like in `{:#?}`).
static BYTES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[(\s*\d{1,3},)+\s*\]").expect("valid regex"));

/// `value` pretty-printed, with byte lists shown as `b"..."`.
pub fn show(value: &(impl Debug + ?Sized)) -> String {
    let text = format!("{value:#?}");
    BYTES
        .replace_all(&text, |c: &Captures| {
            let numbers: Option<Vec<u8>> = c[0]
                .trim_matches(|ch| ch == '[' || ch == ']')
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().ok())
                .collect();
            numbers.map_or_else(|| c[0].to_string(), |b| quoted(&b))
        })
        .into_owned()
}

fn quoted(bytes: &[u8]) -> String {
    let text: String = bytes
        .iter()
        .take(SHOWN)
        .flat_map(|&b| std::ascii::escape_default(b).map(char::from))
        .collect();
    if bytes.len() > SHOWN {
        format!("b\"{text}\"... ({} bytes)", bytes.len())
    } else {
        format!("b\"{text}\"")
    }
}

#[cfg(test)]
mod tests {
    use etcd_proto::mvccpb::KeyValue;

    use super::show;

    #[test]
    fn byte_lists_become_strings() {
        let kv = KeyValue {
            key: b"k\x00".to_vec(),
            value: vec![b'v'; 50],
            version: 3,
            ..Default::default()
        };
        let shown = show(&kv);
        assert!(shown.contains(r#"key: b"k\x00","#), "{shown}");
        let value = format!("value: b\"{}\"... (50 bytes)", "v".repeat(48));
        assert!(shown.contains(&value), "{shown}");
        assert!(shown.contains("version: 3,"), "{shown}");
        assert!(shown.contains("lease: 0,"), "{shown}");
    }
}
