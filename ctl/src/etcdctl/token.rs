//! The auth token clientv3 sends as `token` metadata on every request, unary and
//! streaming, once it has authenticated.

use std::sync::{Arc, RwLock};

use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;

/// The server's answers after which clientv3 authenticates again and retries: the token
/// expired or the auth store changed since it was issued.
const STALE: [&str; 2] = [
    "etcdserver: invalid auth token",
    "etcdserver: revision of auth store is old",
];

/// Whether `status` says the token must be renewed.
pub fn is_stale(status: &tonic::Status) -> bool {
    STALE.contains(&status.message())
}

/// The current token of one client, shared with the interceptor on its connection.
#[derive(Debug, Clone, Default)]
pub struct Token(Arc<RwLock<Option<AsciiMetadataValue>>>);

impl Token {
    /// Replaces the token; one the server made that is not valid metadata is sent as
    /// nothing (the server then refuses the requests as it refuses anonymous ones).
    pub fn set(&self, token: &str) {
        let value = AsciiMetadataValue::try_from(token).ok();
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = value;
    }

    fn get(&self) -> Option<AsciiMetadataValue> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Interceptor for Token {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = self.get() {
            request.metadata_mut().insert("token", token);
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_with_every_request_once_set() {
        let mut token = Token::default();
        let bare = token.call(tonic::Request::new(())).unwrap();
        assert!(bare.metadata().get("token").is_none());
        token.clone().set("abc.1");
        let sent = token.call(tonic::Request::new(())).unwrap();
        assert_eq!(sent.metadata().get("token").unwrap(), "abc.1");
        assert!(is_stale(&tonic::Status::unauthenticated(
            "etcdserver: invalid auth token"
        )));
        assert!(!is_stale(&tonic::Status::permission_denied(
            "etcdserver: permission denied"
        )));
    }
}
