//! Parsers for flag values with Go's and etcd's acceptance rules and error texts
//! (`parse error`, `URL scheme must be http, https, unix, or unixs: ...`).

use url::Url;

/// Go's `strconv.ParseUint(s, 0, 64)`: decimal, `0x` hex, `0o`/leading-zero octal, `0b`.
pub fn uint(s: &str) -> Result<u64, String> {
    let s = s.replace('_', "");
    let parsed = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16)
    } else if let Some(bin) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
        u64::from_str_radix(bin, 2)
    } else if let Some(oct) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0O")) {
        u64::from_str_radix(oct, 8)
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8)
    } else {
        s.parse()
    };
    parsed.map_err(|_| "parse error".to_string())
}

/// etcd's `uint32` flag value (`--max-concurrent-streams`), with `strconv.ParseUint`'s
/// errors as etcd's own flag type reports them.
pub fn uint32(s: &str) -> Result<u32, String> {
    let failed = |why| format!("strconv.ParseUint: parsing {s:?}: {why}");
    let n = uint(s).map_err(|_| failed("invalid syntax"))?;
    u32::try_from(n).map_err(|_| failed("value out of range"))
}

/// Go's `strconv.ParseBool`.
pub fn boolean(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err("parse error".to_string()),
    }
}

/// Go's `time.ParseDuration` (see [`crate::go_duration::parse`]).
pub use crate::go_duration::parse as duration;

/// A Go `flag.Duration` value: Go's flag package reports any bad duration as "parse error".
pub fn flag_duration(s: &str) -> Result<std::time::Duration, String> {
    duration(s).map_err(|_| "parse error".to_string())
}

fn one_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => {
            format!("URL scheme must be http, https, unix, or unixs: {s}")
        }
        e => format!("parse {s:?}: {e}"),
    })?;
    if !matches!(url.scheme(), "http" | "https" | "unix" | "unixs") {
        return Err(format!(
            "URL scheme must be http, https, unix, or unixs: {s}"
        ));
    }
    let after_scheme = s.split_once("://").map(|(_, r)| r).unwrap_or_default();
    let (authority, path) =
        after_scheme.split_at(after_scheme.find('/').unwrap_or(after_scheme.len()));
    let has_port = authority
        .rsplit_once(']')
        .map(|(_, p)| p)
        .unwrap_or(authority)
        .contains(':');
    if !has_port && matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "URL address does not have the form \"host:port\": {s}"
        ));
    }
    if !path.is_empty() {
        return Err(format!("URL must not contain a path: {s}"));
    }
    Ok(url)
}

/// etcd's `types.NewURLs`: a comma-separated list of `scheme://host:port` without paths.
pub fn urls(s: &str) -> Result<Vec<Url>, String> {
    s.split(',').map(|u| one_url(u.trim())).collect()
}

/// etcd's `types.NewURLsMap`: `name=url,name=url,...`.
pub fn initial_cluster(s: &str) -> Result<Vec<(String, Url)>, String> {
    s.split(',')
        .map(|pair| {
            let (name, url) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((name.trim().to_string(), one_url(url.trim())?))
        })
        .collect()
}

/// A listen URL must name an IP address (or `localhost`) to bind to.
pub fn check_bind_url(url: &Url) -> Result<(), String> {
    match url.host() {
        Some(url::Host::Domain(d))
            if d != "localhost" && matches!(url.scheme(), "http" | "https") =>
        {
            Err(format!(
                "expected IP in URL for binding ({})",
                crate::cluster::ids::url_string(url)
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn integers_and_booleans_follow_go() {
        assert_eq!(uint("100000"), Ok(100000));
        assert_eq!(uint("0x10"), Ok(16));
        assert_eq!(uint("-1"), Err("parse error".into()));
        assert_eq!(uint("1.5"), Err("parse error".into()));
        assert_eq!(boolean("T"), Ok(true));
        assert!(boolean("maybe").is_err());
    }

    #[test]
    fn durations_follow_go() {
        assert_eq!(duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        assert_eq!(
            duration("abc"),
            Err("time: invalid duration \"abc\"".into())
        );
        assert!(duration("5").is_err());
    }

    #[test]
    fn urls_follow_etcd() {
        assert_eq!(urls("http://a:1, http://127.0.0.1:2").unwrap().len(), 2);
        assert_eq!(
            urls("foo").unwrap_err(),
            "URL scheme must be http, https, unix, or unixs: foo"
        );
        assert_eq!(
            urls("http://127.0.0.1").unwrap_err(),
            "URL address does not have the form \"host:port\": http://127.0.0.1"
        );
        assert_eq!(
            urls("http://127.0.0.1:2379/").unwrap_err(),
            "URL must not contain a path: http://127.0.0.1:2379/"
        );
        assert!(urls("http://[::1")
            .unwrap_err()
            .starts_with("parse \"http://[::1\""));
        assert_eq!(urls("http://[::1]:2379").unwrap().len(), 1);
    }

    #[test]
    fn initial_cluster_pairs() {
        let c = initial_cluster("a=http://h1:2380,b=http://h2:2380").unwrap();
        assert_eq!(c[1].0, "b");
        assert_eq!(
            initial_cluster("foo").unwrap_err(),
            "URL scheme must be http, https, unix, or unixs: "
        );
    }

    #[test]
    fn bind_urls_need_an_ip() {
        assert!(check_bind_url(&Url::parse("http://localhost:2379").unwrap()).is_ok());
        assert!(check_bind_url(&Url::parse("http://0.0.0.0:2379").unwrap()).is_ok());
        assert_eq!(
            check_bind_url(&Url::parse("http://example.com:2379").unwrap()).unwrap_err(),
            "expected IP in URL for binding (http://example.com:2379)"
        );
    }
}
