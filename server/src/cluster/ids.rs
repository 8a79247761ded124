//! Member and cluster IDs, derived exactly as etcd derives them so that the same
//! configuration yields the same IDs on our server and on etcd.

use sha1::{Digest, Sha1};

/// etcd's member ID: the first 8 bytes (big-endian) of SHA-1 over the member's sorted peer
/// URLs concatenated, then the cluster token, then (for members added at runtime) the
/// Unix time in seconds.
pub fn member_id(peer_urls: &[String], token: &str, added_at_unix: Option<i64>) -> u64 {
    let mut urls: Vec<&str> = peer_urls.iter().map(String::as_str).collect();
    urls.sort_unstable();
    let mut h = Sha1::new();
    for u in urls {
        h.update(u.as_bytes());
    }
    h.update(token.as_bytes());
    if let Some(t) = added_at_unix {
        h.update(t.to_string().as_bytes());
    }
    first_u64(&h.finalize())
}

/// etcd's cluster ID: SHA-1 over the sorted member IDs, each as 8 big-endian bytes.
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let mut h = Sha1::new();
    for id in ids {
        h.update(id.to_be_bytes());
    }
    first_u64(&h.finalize())
}

fn first_u64(digest: &[u8]) -> u64 {
    u64::from_be_bytes(digest[..8].try_into().expect("sha1 is 20 bytes"))
}

/// Formats a URL the way Go's `url.URL.String()` does for etcd's URLs (no trailing slash
/// for an empty path), which is what the IDs are computed over.
pub fn url_string(u: &url::Url) -> String {
    let mut s = format!("{}://{}", u.scheme(), u.host_str().unwrap_or_default());
    if let Some(p) = u.port() {
        s.push_str(&format!(":{p}"));
    }
    if u.path() != "/" {
        s.push_str(u.path());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_member_matches_etcd() {
        // `etcd` with no flags reports member 8e9e05c52164694d in cluster cdf818194e3a8c32.
        let m = member_id(&["http://localhost:2380".into()], "etcd-cluster", None);
        assert_eq!(format!("{m:x}"), "8e9e05c52164694d");
        assert_eq!(format!("{:x}", cluster_id(&[m])), "cdf818194e3a8c32");
    }

    #[test]
    fn token_changes_ids() {
        let a = member_id(&["http://10.0.0.1:2380".into()], "a", None);
        let b = member_id(&["http://10.0.0.1:2380".into()], "b", None);
        assert_ne!(a, b);
    }

    #[test]
    fn urls_print_like_go() {
        let u = url::Url::parse("http://localhost:2380").unwrap();
        assert_eq!(url_string(&u), "http://localhost:2380");
        let u = url::Url::parse("https://[::1]:2380").unwrap();
        assert_eq!(url_string(&u), "https://[::1]:2380");
    }
}
