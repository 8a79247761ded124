//! The JSON form of etcd's messages as grpc-gateway v1 reads and writes it (golang/protobuf's
//! `jsonpb` with `OrigName: true`, `EmitDefaults: false`).
//!
//! Writing uses prost-reflect's serde support, whose options match jsonpb's output. Reading
//! walks the JSON by hand against the message descriptor instead, because clients see the
//! error text of a bad request: etcd answers with Go's `encoding/json` and `encoding/base64`
//! messages (`illegal base64 data at input byte 3`, `json: cannot unmarshal number into Go
//! value of type []uint8`, ...), which are reproduced here for the common mistakes.

use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, SerializeOptions, Value,
};
use serde_json::Value as Json;

/// Serializes `msg` as etcd's gateway does: `.proto` field names, defaults left out, 64-bit
/// integers as strings, enums by name, bytes in standard padded base64; fields in the
/// order of the `.proto`, as Go writes a struct's.
pub fn encode(msg: &DynamicMessage) -> String {
    let opts = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(true);
    let mut out = Vec::new();
    let written = msg.serialize_with_options(&mut serde_json::Serializer::new(&mut out), &opts);
    match written {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => "null".into(),
    }
}

/// Reads the first JSON value of `body` (trailing bytes are ignored, as Go's `json.Decoder`
/// does); `None` for an empty body, which the gateway treats as an empty request.
pub fn first_value(body: &[u8]) -> Result<Option<Json>, String> {
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Json>();
    match values.next() {
        None => Ok(None),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(e)) => Err(syntax_error(body, &e)),
    }
}

/// Go's `encoding/json` wording for a syntax error that serde_json reported as `e`.
pub fn syntax_error(body: &[u8], e: &serde_json::Error) -> String {
    if e.is_eof() {
        return "unexpected EOF".into();
    }
    // serde_json reports 1-based lines and columns; Go names the offending character.
    let offset = body
        .split(|b| *b == b'\n')
        .take(e.line().saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum::<usize>()
        + e.column().saturating_sub(1);
    let c = body.get(offset).copied().unwrap_or(b' ') as char;
    let text = e.to_string();
    let context = if text.starts_with("expected `:`") {
        "after object key"
    } else if text.starts_with("expected `,` or `}`") {
        "after object key:value pair"
    } else if text.starts_with("expected `,` or `]`") {
        "after array element"
    } else if text.starts_with("key must be a string") {
        "looking for beginning of object key string"
    } else if text.starts_with("expected ident") {
        return literal_error(body, offset, c);
    } else {
        "looking for beginning of value"
    };
    format!("invalid character '{c}' {context}")
}

/// Go's error for a misspelt `true`, `false` or `null`: the bad character `c` at `offset`
/// and the one the literal needed there.
fn literal_error(body: &[u8], offset: usize, c: char) -> String {
    let start = body[..offset.min(body.len())]
        .iter()
        .rposition(|b| !b.is_ascii_lowercase())
        .map_or(0, |p| p + 1);
    let literal = match body.get(start) {
        Some(b't') => "true",
        Some(b'f') => "false",
        _ => "null",
    };
    let wanted = literal
        .as_bytes()
        .get(offset - start)
        .copied()
        .unwrap_or(b' ') as char;
    format!("invalid character '{c}' in literal {literal} (expecting '{wanted}')")
}

/// Builds a message of type `desc` from `json` with jsonpb's rules: keys by `.proto` or JSON
/// name, unknown keys and nulls skipped, 64-bit integers as numbers or strings, enums by name
/// or number.
pub fn decode(desc: &MessageDescriptor, json: &Json) -> Result<DynamicMessage, String> {
    let mut msg = DynamicMessage::new(desc.clone());
    let Json::Object(map) = json else {
        return Err(type_error(json, "map[string]json.RawMessage"));
    };
    for (key, value) in map {
        let field = desc
            .get_field_by_name(key)
            .or_else(|| desc.get_field_by_json_name(key));
        let Some(field) = field else { continue };
        if value.is_null() {
            continue;
        }
        let v = if field.is_list() {
            let Json::Array(items) = value else {
                return Err(type_error(value, "[]json.RawMessage"));
            };
            let items = items
                .iter()
                .map(|item| single(&field, item))
                .collect::<Result<Vec<_>, _>>()?;
            Value::List(items)
        } else {
            single(&field, value)?
        };
        msg.set_field(&field, v);
    }
    Ok(msg)
}

/// One value of `field` (an element, for a repeated field).
fn single(field: &FieldDescriptor, json: &Json) -> Result<Value, String> {
    Ok(match field.kind() {
        Kind::Message(m) => Value::Message(decode(&m, json)?),
        Kind::Bytes => match json {
            Json::String(s) => Value::Bytes(go_base64(s.as_bytes())?.into()),
            other => return Err(type_error(other, "[]uint8")),
        },
        Kind::String => match json {
            Json::String(s) => Value::String(s.clone()),
            other => return Err(type_error(other, "string")),
        },
        Kind::Bool => match json {
            Json::Bool(b) => Value::Bool(*b),
            other => return Err(type_error(other, "bool")),
        },
        Kind::Enum(e) => match json {
            Json::String(name) => match e.get_value_by_name(name) {
                Some(v) => Value::EnumNumber(v.number()),
                None => {
                    return Err(format!(
                        "unknown value {name:?} for enum {}",
                        go_enum_name(e.full_name(), e.package_name())
                    ))
                }
            },
            other => Value::EnumNumber(number(other, "int32")?),
        },
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(number(json, "int64")?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(number(json, "uint64")?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(number(json, "int32")?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(number(json, "uint32")?),
        Kind::Double => Value::F64(number(json, "float64")?),
        Kind::Float => Value::F32(number(json, "float32")?),
    })
}

/// A number given as a JSON number or, as jsonpb also accepts, as a string holding one.
fn number<T: std::str::FromStr>(json: &Json, go_type: &str) -> Result<T, String> {
    let text = match json {
        Json::Number(n) => n.to_string(),
        // jsonpb strips the quotes and reads what is inside as JSON.
        Json::String(s) => match s.chars().next() {
            Some(c) if c == '-' || c.is_ascii_digit() => s.clone(),
            Some(c) => {
                return Err(format!(
                    "invalid character '{c}' looking for beginning of value"
                ))
            }
            None => return Err("unexpected end of JSON input".into()),
        },
        other => return Err(type_error(other, go_type)),
    };
    text.parse().map_err(|_| {
        format!("json: cannot unmarshal number {text} into Go value of type {go_type}")
    })
}

/// Go's `UnmarshalTypeError` text.
fn type_error(json: &Json, go_type: &str) -> String {
    let kind = match json {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    };
    format!("json: cannot unmarshal {kind} into Go value of type {go_type}")
}

/// Go names a nested enum `pkg.Outer_Inner` where protobuf says `pkg.Outer.Inner`.
fn go_enum_name(full: &str, package: &str) -> String {
    let local = full
        .strip_prefix(package)
        .and_then(|s| s.strip_prefix('.'))
        .unwrap_or(full);
    format!("{package}.{}", local.replace('.', "_"))
}

/// Decodes standard padded base64 as Go's `base64.StdEncoding` does, reporting a bad input
/// at the byte offset Go reports (newlines are skipped; trailing bits need not be zero).
pub fn go_base64(src: &[u8]) -> Result<Vec<u8>, String> {
    fn sextet(c: u8) -> Option<u8> {
        match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let corrupt = |at: usize| format!("illegal base64 data at input byte {at}");
    let skip_newlines = |mut si: usize| {
        while si < src.len() && (src[si] == b'\n' || src[si] == b'\r') {
            si += 1;
        }
        si
    };
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let mut si = 0;
    loop {
        let mut quantum = [0u8; 4];
        let mut len = 4;
        let mut j = 0;
        let mut done = false;
        while j < 4 {
            if si == src.len() {
                if j == 0 {
                    return Ok(out);
                }
                // Standard encoding has padding, so a short final quantum is corrupt.
                return Err(corrupt(si - j));
            }
            let c = src[si];
            si += 1;
            if let Some(v) = sextet(c) {
                quantum[j] = v;
                j += 1;
                continue;
            }
            if c == b'\n' || c == b'\r' {
                continue;
            }
            if c != b'=' || j < 2 {
                return Err(corrupt(si - 1));
            }
            if j == 2 {
                // A second '=' must follow.
                si = skip_newlines(si);
                if si == src.len() {
                    return Err(corrupt(src.len()));
                }
                if src[si] != b'=' {
                    return Err(corrupt(si - 1));
                }
                si += 1;
            }
            si = skip_newlines(si);
            if si < src.len() {
                return Err(corrupt(si));
            }
            len = j;
            done = true;
            break;
        }
        let n = (u32::from(quantum[0]) << 18)
            | (u32::from(quantum[1]) << 12)
            | (u32::from(quantum[2]) << 6)
            | u32::from(quantum[3]);
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..len]);
        if done {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_errors_name_go_offsets() {
        assert_eq!(go_base64(b"Zm9v").unwrap(), b"foo");
        assert_eq!(go_base64(b"YQ==").unwrap(), b"a");
        assert_eq!(go_base64(b"YWI=").unwrap(), b"ab");
        assert_eq!(go_base64(b"").unwrap(), b"");
        assert_eq!(go_base64(b"Zm\n9v").unwrap(), b"foo");
        let err = |s: &[u8]| go_base64(s).unwrap_err();
        assert_eq!(err(b"!!!"), "illegal base64 data at input byte 0");
        assert_eq!(err(b"Zm9-"), "illegal base64 data at input byte 3");
        assert_eq!(err(b"Zm9"), "illegal base64 data at input byte 0");
        assert_eq!(err(b"YQ="), "illegal base64 data at input byte 3");
        assert_eq!(err(b"YQ==Zm9v"), "illegal base64 data at input byte 4");
        assert_eq!(err(b"Y==="), "illegal base64 data at input byte 1");
    }

    #[test]
    fn nested_enums_take_go_names() {
        assert_eq!(
            go_enum_name("etcdserverpb.RangeRequest.SortOrder", "etcdserverpb"),
            "etcdserverpb.RangeRequest_SortOrder"
        );
    }

    #[test]
    fn syntax_errors_read_like_go() {
        let msg = |b: &[u8]| first_value(b).unwrap_err();
        assert_eq!(msg(b"{\"key\":\"Zm9v\""), "unexpected EOF");
        assert_eq!(
            msg(b"xx"),
            "invalid character 'x' looking for beginning of value"
        );
        assert_eq!(msg(b"{\"a\" 1}"), "invalid character '1' after object key");
        assert_eq!(
            msg(b"not json"),
            "invalid character 'o' in literal null (expecting 'u')"
        );
        assert_eq!(
            msg(b"{\"a\":trux}"),
            "invalid character 'x' in literal true (expecting 'e')"
        );
        assert_eq!(first_value(b"").unwrap(), None);
        assert_eq!(first_value(b"{} xx").unwrap(), Some(serde_json::json!({})));
    }
}
