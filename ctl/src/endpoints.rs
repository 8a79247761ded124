//! Endpoint lists as etcd's tools take them (`host:port` or full URLs, comma-separated),
//! and gRPC channels to them.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// Errors connecting to an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("invalid endpoint {0:?}")]
    Invalid(String),
    #[error("failed to dial {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: tonic::transport::Error,
    },
}

/// Turns `127.0.0.1:2379` or `http://127.0.0.1:2379` into a URI tonic accepts.
pub fn normalize(endpoint: &str) -> String {
    let e = endpoint.trim();
    if e.contains("://") {
        e.to_string()
    } else {
        format!("http://{e}")
    }
}

/// Splits a comma-separated endpoint flag.
pub fn split(list: &str) -> Vec<String> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(normalize)
        .collect()
}

/// Opens one HTTP/2 connection to `endpoint`.
pub async fn dial(endpoint: &str, timeout: Duration) -> Result<Channel, DialError> {
    let ep = Endpoint::from_shared(endpoint.to_string())
        .map_err(|_| DialError::Invalid(endpoint.to_string()))?
        .connect_timeout(timeout)
        .tcp_nodelay(true);
    ep.connect().await.map_err(|source| DialError::Connect {
        endpoint: endpoint.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_a_scheme() {
        assert_eq!(
            split("127.0.0.1:2379, http://h:1"),
            vec!["http://127.0.0.1:2379", "http://h:1"]
        );
    }
}
