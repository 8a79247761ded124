//! Over-sized gRPC messages: tonic rejects them as `OutOfRange` with its own wording, while
//! grpc-go, and therefore etcd, answers `ResourceExhausted` with
//! `grpc: received message larger than max (N vs. M)`. Clients (and operators' alerts)
//! match on etcd's code, so the rejection is rewritten into grpc-go's form.

use axum::http::HeaderValue;
use axum::response::Response;

const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";

/// Parses tonic's "... found N bytes, the limit is: M bytes" into (N, M).
fn sizes(message: &str) -> Option<(u64, u64)> {
    let rest = message.strip_prefix("Error, decoded message length too large: found ")?;
    let (found, rest) = rest.split_once(" bytes, the limit is: ")?;
    let limit = rest.strip_suffix(" bytes")?;
    Some((found.parse().ok()?, limit.parse().ok()?))
}

/// Response middleware for the gRPC routes.
pub async fn rewrite_size_errors(mut resp: Response) -> Response {
    let headers = resp.headers();
    if headers.get("grpc-status").and_then(|v| v.to_str().ok()) != Some(OUT_OF_RANGE) {
        return resp;
    }
    let message = headers
        .get("grpc-message")
        .map(|v| percent_encoding::percent_decode(v.as_bytes()).decode_utf8_lossy());
    let Some((found, limit)) = message.as_deref().and_then(sizes) else {
        return resp;
    };
    let message = format!("grpc: received message larger than max ({found} vs. {limit})");
    let headers = resp.headers_mut();
    headers.insert("grpc-status", HeaderValue::from_static(RESOURCE_EXHAUSTED));
    if let Ok(v) = HeaderValue::from_str(&message) {
        headers.insert("grpc-message", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::sizes;

    #[test]
    fn tonic_limit_message_is_understood() {
        let msg = "Error, decoded message length too large: found 2097162 bytes, the limit is: 2097152 bytes";
        assert_eq!(sizes(msg), Some((2097162, 2097152)));
        assert_eq!(
            sizes("etcdserver: mvcc: required revision has been compacted"),
            None
        );
    }
}
