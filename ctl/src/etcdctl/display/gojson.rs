//! JSON as Go's `encoding/json` writes etcd's structs: fields in declaration order, the
//! `omitempty` ones left out when zero, byte strings in standard base64, and `<`, `>`,
//! `&` escaped as `\u003c`-style sequences.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use etcd_proto::etcdserverpb::ResponseHeader;
use etcd_proto::mvccpb::KeyValue;

/// A JSON object under construction. Methods without `_always` leave the field out when
/// its value is zero, like Go's `omitempty`.
#[derive(Debug, Default)]
pub struct Obj {
    fields: Vec<(&'static str, String)>,
}

impl Obj {
    pub fn new() -> Obj {
        Obj::default()
    }

    /// A field with already encoded JSON.
    pub fn raw(mut self, key: &'static str, json: String) -> Obj {
        self.fields.push((key, json));
        self
    }

    /// A number, left out when zero.
    pub fn num<N: std::fmt::Display + Default + PartialEq>(self, key: &'static str, n: N) -> Obj {
        if n == N::default() {
            self
        } else {
            self.raw(key, n.to_string())
        }
    }

    /// A number, always present.
    pub fn num_always<N: std::fmt::Display>(self, key: &'static str, n: N) -> Obj {
        self.raw(key, n.to_string())
    }

    /// A boolean, left out when false.
    pub fn flag(self, key: &'static str, b: bool) -> Obj {
        if b {
            self.raw(key, "true".into())
        } else {
            self
        }
    }

    /// A boolean, always present.
    pub fn flag_always(self, key: &'static str, b: bool) -> Obj {
        self.raw(key, b.to_string())
    }

    /// A string, left out when empty.
    pub fn text(self, key: &'static str, s: &str) -> Obj {
        if s.is_empty() {
            self
        } else {
            self.raw(key, string(s))
        }
    }

    /// A string, always present.
    pub fn text_always(self, key: &'static str, s: &str) -> Obj {
        self.raw(key, string(s))
    }

    /// A byte string in base64, left out when empty.
    pub fn bytes(self, key: &'static str, b: &[u8]) -> Obj {
        if b.is_empty() {
            self
        } else {
            self.raw(key, bytes(b))
        }
    }

    /// A nested, already encoded object, left out when absent (a nil pointer).
    pub fn obj(self, key: &'static str, o: Option<String>) -> Obj {
        match o {
            Some(o) => self.raw(key, o),
            None => self,
        }
    }

    /// An array of encoded items, left out when empty.
    pub fn list(self, key: &'static str, items: Vec<String>) -> Obj {
        if items.is_empty() {
            self
        } else {
            self.raw(key, array(items))
        }
    }

    /// The fields of etcd's `ResponseHeader`, for structs that embed it.
    pub fn header_fields(self, h: Option<&ResponseHeader>) -> Obj {
        match h {
            Some(h) => self
                .num("cluster_id", h.cluster_id)
                .num("member_id", h.member_id)
                .num("revision", h.revision)
                .num("raft_term", h.raft_term),
            None => self,
        }
    }

    /// The encoded object.
    pub fn finish(self) -> String {
        let body: Vec<String> = self
            .fields
            .into_iter()
            .map(|(k, v)| format!("{}:{v}", string(k)))
            .collect();
        format!("{{{}}}", body.join(","))
    }
}

/// A `ResponseHeader` as a nested object, or nothing when absent.
pub fn header(h: Option<&ResponseHeader>) -> Option<String> {
    h.map(|h| Obj::new().header_fields(Some(h)).finish())
}

/// An `mvccpb.KeyValue`.
pub fn kv(kv: &KeyValue) -> String {
    Obj::new()
        .bytes("key", &kv.key)
        .num("create_revision", kv.create_revision)
        .num("mod_revision", kv.mod_revision)
        .num("version", kv.version)
        .bytes("value", &kv.value)
        .num("lease", kv.lease)
        .finish()
}

/// A JSON array of encoded items (`[]` when empty).
pub fn array(items: Vec<String>) -> String {
    format!("[{}]", items.join(","))
}

/// Base64 of a byte string, quoted.
pub fn bytes(b: &[u8]) -> String {
    format!("\"{}\"", STANDARD.encode(b))
}

/// A quoted JSON string escaped as Go escapes it.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_go() {
        let kv = KeyValue {
            key: b"foo".to_vec(),
            create_revision: 2,
            mod_revision: 2,
            version: 1,
            value: Vec::new(),
            lease: 0,
        };
        assert_eq!(
            super::kv(&kv),
            r#"{"key":"Zm9v","create_revision":2,"mod_revision":2,"version":1}"#
        );
        assert_eq!(
            string("a<b>&\"\n\u{1}"),
            r#""a\u003cb\u003e\u0026\"\n\u0001""#
        );
        assert_eq!(Obj::new().finish(), "{}");
    }
}
