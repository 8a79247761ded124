//! Configuration errors, worded as etcd 3.4 words them. Every one ends the process with
//! status 1 after a single log line.

use std::process::ExitCode;

/// Why the configuration was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("flag provided but not defined: -{0}")]
    UnknownFlag(String),
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    #[error("'{0}' is not a valid flag")]
    NotAFlag(String),
    #[error("{0}")]
    Usage(String),
    #[error("invalid boolean value {value:?} for -{flag}: parse error")]
    InvalidBool { flag: String, value: String },
    #[error("invalid value {value:?} for {what}: {reason}")]
    InvalidValue {
        what: String,
        value: String,
        reason: String,
    },
    #[error("open {path}: {reason}")]
    ConfigRead { path: String, reason: String },
    #[error("error parsing {path}: {reason}")]
    ConfigYaml { path: String, reason: String },
    #[error("{0}")]
    Rule(String),
    #[error("error setting up initial cluster: {0}")]
    InitialCluster(String),
    #[error("error parsing CompactionRetention: {0}")]
    CompactionRetention(String),
    #[error("{0}")]
    CipherSuite(#[from] crate::tls::ciphers::CipherSuiteError),
    #[error(
        "AllowedCN and AllowedHostname are mutually exclusive (cn={cn:?}, hostname={hostname:?})"
    )]
    AllowedCnAndHostname { cn: String, hostname: String },
}

impl ConfigError {
    /// Prints the error as etcd's `etcdmain` logs it and gives the exit status (1).
    pub fn report(&self) -> ExitCode {
        match self {
            ConfigError::InitialCluster(_)
            | ConfigError::CompactionRetention(_)
            | ConfigError::CipherSuite(_)
            | ConfigError::AllowedCnAndHostname { .. } => {
                crate::logging::critical("etcdmain", self)
            }
            _ => {
                let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S%.6f");
                eprintln!("{now} E | etcdmain: error verifying flags, {self}. See 'etcd --help'.")
            }
        }
        ExitCode::from(1)
    }
}

pub use go_text::io::reason as go_io_reason;
