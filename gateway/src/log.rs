//! Log lines as etcd's gateway writes them: zap's production JSON, one object a line on
//! stderr (`level`, `ts` in seconds, `caller`, `msg`, then the fields).

use std::panic::Location;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Writes one line at `level` with `fields` (an object; anything else is ignored), keys
/// in zap's order: `level`, `ts`, `caller`, `msg`, then the fields as given.
#[track_caller]
pub fn line(level: &str, msg: &str, fields: Value) {
    let caller = Location::caller();
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let file = caller.file();
    let file = file.rsplit_once("src/").map_or(file, |(_, f)| f);
    let mut out = format!(
        "{{\"level\":{},\"ts\":{},\"caller\":{},\"msg\":{}",
        Value::from(level),
        Value::from(ts),
        Value::from(format!("gateway/{file}:{}", caller.line())),
        Value::from(msg)
    );
    if let Value::Object(fields) = fields {
        for (key, value) in fields {
            out.push_str(&format!(",{}:{}", Value::from(key), value));
        }
    }
    out.push('}');
    eprintln!("{out}");
}

/// Seconds as zap writes a duration: `60`, `0.5`.
pub fn seconds(d: std::time::Duration) -> Value {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 && s < 1e15 {
        Value::from(s as u64)
    } else {
        Value::from(s)
    }
}

#[track_caller]
pub fn info(msg: &str, fields: Value) {
    line("info", msg, fields)
}

#[track_caller]
pub fn warn(msg: &str, fields: Value) {
    line("warn", msg, fields)
}
