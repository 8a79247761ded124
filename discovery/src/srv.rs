//! What etcd builds from SRV records: a member's initial cluster and a client's endpoints.

use std::collections::HashMap;
use std::net::SocketAddr;

use url::Url;

use crate::resolver::{host_port, Resolver, SrvRecord};
use crate::SrvError;

/// The SRV service name etcd queries: `SERVICE[-ssl][-SUFFIX]` (etcd's `GetSRVService`).
pub fn srv_service(service: &str, suffix: &str, https: bool) -> String {
    let mut name = service.to_string();
    if https {
        name.push_str("-ssl");
    }
    if !suffix.is_empty() {
        name.push('-');
        name.push_str(suffix);
    }
    name
}

/// One member of an initial cluster found in DNS: `name=scheme://target:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEntry {
    pub name: String,
    pub url: String,
}

/// The initial cluster of a member bootstrapping with `--discovery-srv DOMAIN`.
///
/// Both `_etcd-server-ssl[-SUFFIX]._tcp.DOMAIN` (https) and `_etcd-server[-SUFFIX]._tcp.DOMAIN`
/// (http) are looked up and their members combined, as etcd's clustering guide describes
/// (etcd 3.4 itself, by a bug fixed in 3.5, refuses to start when the `-ssl` records are
/// missing). A record whose target resolves to the address of one of `advertise_peer_urls`
/// is this member, named `name`; the others are named `0`, `1`, ... as etcd names them.
/// With `https_targets_in_domain` (TLS without a trusted CA), `-ssl` targets outside
/// `domain` are refused: a certificate valid for some other name proves nothing about it.
pub async fn server_cluster(
    resolver: &Resolver,
    name: &str,
    domain: &str,
    suffix: &str,
    advertise_peer_urls: &[Url],
    https_targets_in_domain: bool,
) -> Result<Vec<ClusterEntry>, SrvError> {
    let mut mine: HashMap<SocketAddr, &Url> = HashMap::new();
    for url in advertise_peer_urls {
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(2380);
        mine.insert(resolver.tcp_addr(host, port).await?, url);
    }
    let mut lookup = ServerLookup {
        resolver,
        name,
        domain,
        mine,
        next_temp_name: 0,
    };
    let https = lookup
        .service(
            "https",
            &srv_service("etcd-server", suffix, true),
            https_targets_in_domain,
        )
        .await;
    let http = lookup
        .service("http", &srv_service("etcd-server", suffix, false), false)
        .await;
    match (https, http) {
        (Err(https), Err(http)) => Err(SrvError::Both {
            https: Box::new(https),
            http: Box::new(http),
        }),
        (https, http) => Ok(https
            .unwrap_or_default()
            .into_iter()
            .chain(http.unwrap_or_default())
            .collect()),
    }
}

struct ServerLookup<'a> {
    resolver: &'a Resolver,
    name: &'a str,
    domain: &'a str,
    mine: HashMap<SocketAddr, &'a Url>,
    next_temp_name: usize,
}

impl ServerLookup<'_> {
    /// The members under one service; an error only when none could be used.
    async fn service(
        &mut self,
        scheme: &str,
        service: &str,
        targets_in_domain: bool,
    ) -> Result<Vec<ClusterEntry>, SrvError> {
        let wrap = |source: SrvError| SrvError::Service {
            service: service.to_string(),
            source: Box::new(source),
        };
        let records = self
            .resolver
            .srv(&format!("_{service}._tcp.{}", self.domain))
            .await
            .map_err(wrap)?;
        let mut found = Vec::new();
        let mut last_error = None;
        for record in records {
            if targets_in_domain && !in_domain(&record.target, self.domain) {
                last_error = Some(SrvError::OutsideDomain {
                    target: record.target.clone(),
                    service: format!("_{service}._tcp.{}", self.domain),
                    domain: self.domain.to_string(),
                });
                continue;
            }
            let addr = match self.resolver.tcp_addr(&record.target, record.port).await {
                Ok(addr) => addr,
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            let url = format!("{scheme}://{}", record.host_port());
            match self.mine.get(&addr) {
                Some(own) if own.scheme() != scheme => {
                    last_error = Some(SrvError::SchemeMismatch {
                        found: url,
                        service: service.to_string(),
                        expected: go_url(own),
                    });
                }
                Some(_) => found.push(ClusterEntry {
                    name: self.name.to_string(),
                    url,
                }),
                None => {
                    found.push(ClusterEntry {
                        name: self.next_temp_name.to_string(),
                        url,
                    });
                    self.next_temp_name += 1;
                }
            }
        }
        if found.is_empty() {
            return Err(wrap(last_error.unwrap_or(SrvError::Empty)));
        }
        Ok(found)
    }
}

/// Whether `target` is `domain` or a name under it.
fn in_domain(target: &str, domain: &str) -> bool {
    let target = target.trim_end_matches('.').to_ascii_lowercase();
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    target == domain || target.ends_with(&format!(".{domain}"))
}

/// A URL as Go prints it: no trailing `/` for an empty path.
fn go_url(url: &Url) -> String {
    let s = url.as_str();
    match url.path() {
        "/" => s.strip_suffix('/').unwrap_or(s).to_string(),
        _ => s.to_string(),
    }
}

/// A client's endpoints from `_etcd-client-ssl[-SUFFIX]._tcp.DOMAIN` (as `https://`) and
/// `_etcd-client[-SUFFIX]._tcp.DOMAIN` (as `http://`), with the records they came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientEndpoints {
    pub endpoints: Vec<String>,
    pub records: Vec<SrvRecord>,
}

/// etcd's `srv.GetClient("etcd-client", DOMAIN, SUFFIX)`: an error only when both lookups fail.
pub async fn client_endpoints(
    resolver: &Resolver,
    domain: &str,
    suffix: &str,
) -> Result<ClientEndpoints, SrvError> {
    let mut out = ClientEndpoints::default();
    let mut errors = Vec::new();
    for (https, scheme) in [(true, "https"), (false, "http")] {
        let service = srv_service("etcd-client", suffix, https);
        match resolver.srv(&format!("_{service}._tcp.{domain}")).await {
            Ok(records) => {
                for r in records {
                    out.endpoints
                        .push(format!("{scheme}://{}", host_port(&r.target, r.port)));
                    out.records.push(r);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.len() == 2 {
        let http = errors.pop().expect("two errors");
        let https = errors.pop().expect("two errors");
        return Err(SrvError::BothClient {
            https: Box::new(https),
            http: Box::new(http),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_follow_etcd() {
        assert_eq!(srv_service("etcd-server", "", true), "etcd-server-ssl");
        assert_eq!(srv_service("etcd-server", "", false), "etcd-server");
        assert_eq!(
            srv_service("etcd-client", "prod", true),
            "etcd-client-ssl-prod"
        );
        assert_eq!(
            srv_service("etcd-client", "prod", false),
            "etcd-client-prod"
        );
    }

    #[test]
    fn domain_membership_is_by_whole_labels() {
        assert!(in_domain("infra0.example.com", "example.com"));
        assert!(in_domain("Infra0.Example.com.", "example.com"));
        assert!(in_domain("example.com", "example.com."));
        assert!(!in_domain("infra0.badexample.com", "example.com"));
        assert!(!in_domain("example.com.evil.net", "example.com"));
    }

    #[test]
    fn urls_print_as_go_prints_them() {
        let u = Url::parse("http://infra0.example.com:2380").unwrap();
        assert_eq!(go_url(&u), "http://infra0.example.com:2380");
        let u = Url::parse("https://10.0.0.1:2380/x").unwrap();
        assert_eq!(go_url(&u), "https://10.0.0.1:2380/x");
    }

    #[test]
    fn errors_read_as_etcds() {
        let lookup = SrvError::Lookup {
            name: "_etcd-server-ssl._tcp.example.test".into(),
            server: Some("127.0.0.1:53".into()),
            reason: "no such host".into(),
        };
        let e = SrvError::Service {
            service: "etcd-server-ssl".into(),
            source: Box::new(lookup),
        };
        assert_eq!(
            e.to_string(),
            "error querying DNS SRV records for _etcd-server-ssl lookup \
             _etcd-server-ssl._tcp.example.test on 127.0.0.1:53: no such host"
        );
    }
}
