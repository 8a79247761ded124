//! Blanks what legitimately differs between two etcd members answering the same request:
//! member/cluster IDs (derived from ports), raft terms, lease IDs (chosen by the server),
//! ports, client-side timestamps and how long a health check took. Revisions are kept: both
//! members start empty, so the same commands must produce the same revisions.

use std::sync::LazyLock;

use regex::Regex;

static RULES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (
            r#""(cluster_id|member_id|raft_term|ID|id|lease)":\d+"#,
            r#""$1":<n>"#,
        ),
        (r#""ts":"[^"]*""#, r#""ts":"<ts>""#),
        (r#"(took = |"took":")[0-9.]+(ns|µs|ms|s)\b"#, "${1}<took>"),
        (r"client-[0-9a-f-]{36}", "client-<uuid>"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:<port>"),
        (r"\b[0-9a-f]{13,16}\b", "<hexid>"),
        (
            r"cluster_id:\d+ member_id:\d+ revision:(\d+) raft_term:\d+",
            "cluster_id:<n> member_id:<n> revision:$1 raft_term:<n>",
        ),
        (r"(?m)^(ID|lease|id): \d+$", "$1: <n>"),
    ]
    .into_iter()
    .map(|(re, to)| (Regex::new(re).expect("valid rule"), to))
    .collect()
});

/// Applies every rule to `text`.
pub fn normalise(text: &str) -> String {
    RULES.iter().fold(text.to_string(), |acc, (re, to)| {
        re.replace_all(&acc, *to).into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn ids_and_terms_are_blanked_but_revisions_kept() {
        let json = r#"{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":3,"raft_term":2}}"#;
        assert_eq!(
            normalise(json),
            r#"{"header":{"cluster_id":<n>,"member_id":<n>,"revision":3,"raft_term":<n>}}"#
        );
        assert_eq!(
            normalise("lease 694d8a3b5d8b2c0b granted with TTL(60s)"),
            "lease <hexid> granted with TTL(60s)"
        );
        assert_eq!(
            normalise("http://127.0.0.1:40123 is healthy"),
            "http://127.0.0.1:<port> is healthy"
        );
        assert_eq!(
            normalise("is healthy: successfully committed proposal: took = 1.805682ms"),
            "is healthy: successfully committed proposal: took = <took>"
        );
        assert_eq!(
            normalise(r#"{"health":true,"took":"912.3µs"}"#),
            r#"{"health":true,"took":"<took>"}"#
        );
        assert_eq!(normalise("foo\nbar\n"), "foo\nbar\n");
    }
}
