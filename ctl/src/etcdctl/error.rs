//! Errors with etcdctl's texts and exit codes. `main` prints `Error: <text>` on stderr and
//! exits with [`CtlError::exit_code`], as etcdctl's `ExitWithError` does.

use std::fmt;

/// etcdctl's exit codes (its `command/error.go`).
pub mod exit {
    pub const ERROR: u8 = 1;
    pub const BAD_CONNECTION: u8 = 2;
    pub const INVALID_INPUT: u8 = 3;
    pub const BAD_FEATURE: u8 = 4;
    pub const INTERRUPTED: u8 = 5;
    pub const BAD_ARGS: u8 = 128;
}

/// A failed RPC, worded as etcd's Go client words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The command timeout ran out (also while no endpoint could be reached).
    #[error("context deadline exceeded")]
    DeadlineExceeded,
    /// An error etcd's client knows by its text (`etcdserver: ...`): printed as is.
    #[error("{0}")]
    Server(String),
    /// Any other gRPC status, as grpc-go prints it.
    #[error("rpc error: code = {code} desc = {desc}")]
    Other { code: GrpcCode, desc: String },
    /// Authenticating while the client was created failed: etcdctl reports it as a client
    /// it could not create (exit 2).
    #[error(transparent)]
    Dial(Box<RpcError>),
    /// The password could not be read.
    #[error("{0}")]
    Prompt(String),
}

/// A gRPC status code printed with grpc-go's name for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcCode(pub tonic::Code);

impl fmt::Display for GrpcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            tonic::Code::Ok => "OK",
            tonic::Code::Cancelled => "Canceled",
            code => return write!(f, "{code:?}"),
        };
        f.write_str(name)
    }
}

impl From<tonic::Status> for RpcError {
    fn from(status: tonic::Status) -> Self {
        let desc = status.message().to_string();
        match status.code() {
            tonic::Code::DeadlineExceeded => RpcError::DeadlineExceeded,
            _ if desc.starts_with("etcdserver: ") => RpcError::Server(desc),
            code => RpcError::Other {
                code: GrpcCode(code),
                desc,
            },
        }
    }
}

/// Everything a command can fail with; the text is etcdctl's.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// Wrong arguments or flags (exit 128).
    #[error("{0}")]
    BadArgs(String),
    /// Unparsable input on stdin (exit 3).
    #[error("{0}")]
    InvalidInput(String),
    /// The output format cannot print this result (exit 4).
    #[error("{0} not supported as output format")]
    UnsupportedFormat(&'static str),
    /// `--write-out` names no known format (exit 4).
    #[error("unsupported output format")]
    UnknownFormat,
    /// A feature this etcdctl does not have (exit 4).
    #[error("{0}")]
    BadFeature(String),
    /// A failed RPC (exit 1).
    #[error(transparent)]
    Rpc(RpcError),
    /// A failed RPC etcdctl reports as a broken connection (exit 2).
    #[error(transparent)]
    Connection(RpcError),
    /// A command-specific failure (exit 1).
    #[error("{0}")]
    Failed(String),
    /// A stream ended or an I/O step failed (exit 5).
    #[error("{0}")]
    Interrupted(String),
    /// Nothing more to print: the command already reported its failures (exit 1).
    #[error("")]
    Silent,
}

impl From<RpcError> for CtlError {
    fn from(e: RpcError) -> Self {
        match e {
            RpcError::Dial(e) => CtlError::Connection(*e),
            e => CtlError::Rpc(e),
        }
    }
}

impl CtlError {
    /// The process exit status etcdctl uses for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::BadArgs(_) => exit::BAD_ARGS,
            CtlError::InvalidInput(_) => exit::INVALID_INPUT,
            CtlError::UnsupportedFormat(_) | CtlError::UnknownFormat | CtlError::BadFeature(_) => {
                exit::BAD_FEATURE
            }
            CtlError::Connection(_) => exit::BAD_CONNECTION,
            CtlError::Interrupted(_) => exit::INTERRUPTED,
            CtlError::Rpc(_) | CtlError::Failed(_) | CtlError::Silent => exit::ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_errors_read_like_the_go_client() {
        let known = tonic::Status::not_found("etcdserver: requested lease not found");
        assert_eq!(
            RpcError::from(known).to_string(),
            "etcdserver: requested lease not found"
        );
        let other = tonic::Status::unavailable("connection reset");
        assert_eq!(
            RpcError::from(other).to_string(),
            "rpc error: code = Unavailable desc = connection reset"
        );
        let late = tonic::Status::deadline_exceeded("x");
        assert_eq!(
            RpcError::from(late).to_string(),
            "context deadline exceeded"
        );
        assert_eq!(CtlError::UnsupportedFormat("table").exit_code(), 4);
    }
}
