//! What can go wrong while discovering members; texts follow etcd's where etcd has one.

/// A failed discovery. The texts are etcd's (`error querying DNS SRV records for ...`,
/// `... has scheme mismatch ...`), with the resolver's answer in Go's words where they are
/// the same fact (`no such host` for a name that does not exist).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SrvError {
    /// The system's resolver configuration could not be read.
    #[error("cannot read the resolver configuration: {0}")]
    Config(String),
    /// A lookup failed: `lookup NAME on SERVER: REASON`, as Go's resolver says it.
    #[error("lookup {name}{on}: {reason}", on = server.as_deref().map(|s| format!(" on {s}")).unwrap_or_default())]
    Lookup {
        name: String,
        server: Option<String>,
        reason: String,
    },
    /// A member's own advertised peer URL was found under a record of the other scheme.
    #[error("bootstrap at {found} from DNS for {service} has scheme mismatch with expected peer {expected}")]
    SchemeMismatch {
        found: String,
        service: String,
        expected: String,
    },
    /// A record's target lies outside the discovery domain while TLS has no trusted CA to
    /// vouch for it (the anti-spoofing rule of etcd's DNS discovery guide).
    #[error("SRV target {target} of {service} is outside the discovery domain {domain}; without --peer-trusted-ca-file only targets in the domain are trusted")]
    OutsideDomain {
        target: String,
        service: String,
        domain: String,
    },
    /// A whole service's records yielded nothing: `error querying DNS SRV records for _SERVICE ...`.
    #[error("error querying DNS SRV records for _{service} {source}")]
    Service {
        service: String,
        #[source]
        source: Box<SrvError>,
    },
    /// Neither the `-ssl` nor the plain server service had usable records (both errors,
    /// joined as Go's multierr joins them).
    #[error("{https}; {http}")]
    Both {
        https: Box<SrvError>,
        http: Box<SrvError>,
    },
    /// Neither client service had records (etcd's `GetClient` text).
    #[error("dns lookup errors: {https} and {http}")]
    BothClient {
        https: Box<SrvError>,
        http: Box<SrvError>,
    },
    /// A service had records but none of them could be used, and no error said why.
    #[error("no usable SRV records")]
    Empty,
}
