use std::ffi::OsString;

use super::*;

fn load_args(args: &[&str], env: &[(&str, &str)]) -> Result<Config, Exit> {
    load(
        std::iter::once("etcd")
            .chain(args.iter().copied())
            .map(OsString::from),
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

fn error_of(args: &[&str], env: &[(&str, &str)]) -> String {
    match load_args(args, env) {
        Err(Exit::Invalid(e)) => e.to_string(),
        other => panic!("expected an error for {args:?}, got {other:?}"),
    }
}

#[test]
fn no_flags_gives_etcds_defaults() {
    let cfg = load_args(&[], &[]).unwrap();
    assert_eq!(cfg.name, "default");
    assert_eq!(cfg.data_dir, PathBuf::from("default.etcd"));
    assert_eq!(cfg.listen_client_urls[0].as_str(), "http://localhost:2379/");
    assert_eq!(cfg.initial_cluster.len(), 1);
    assert_eq!(cfg.initial_cluster[0].0, "default");
    assert_eq!(cfg.initial_cluster_token, "etcd-cluster");
    assert_eq!(cfg.heartbeat_interval, Duration::from_millis(100));
    assert_eq!(cfg.election_timeout, Duration::from_millis(1000));
    assert_eq!(
        (cfg.snapshot_count, cfg.max_request_bytes, cfg.max_txn_ops),
        (100000, 1572864, 128)
    );
    assert_eq!(cfg.watch_progress_notify_interval, Duration::from_secs(600));
    assert_eq!(cfg.backend_cache_bytes, crate::storage::DEFAULT_CACHE_BYTES);
    assert!(!cfg.debug);
    assert!(cfg.notices.is_empty(), "{:?}", cfg.notices);
}

#[test]
fn the_state_cache_is_set_by_flag_or_variable() {
    let flag = load_args(&["--experimental-backend-cache-bytes=1048576"], &[]).unwrap();
    assert_eq!(flag.backend_cache_bytes, 1 << 20);
    let env = [("ETCD_EXPERIMENTAL_BACKEND_CACHE_BYTES", "2097152")];
    let var = load_args(&[], &env).unwrap();
    assert_eq!(var.backend_cache_bytes, 2 << 20);
    assert!(load_args(&["--experimental-backend-cache-bytes=lots"], &[]).is_err());
}

#[test]
fn a_name_sets_data_dir_and_initial_cluster() {
    let cfg = load_args(
        &[
            "--name",
            "n1",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:12380",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(cfg.data_dir, PathBuf::from("n1.etcd"));
    assert_eq!(
        cfg.initial_cluster,
        vec![(
            "n1".to_string(),
            Url::parse("http://127.0.0.1:12380").unwrap()
        )]
    );
}

#[test]
fn env_is_used_and_flags_win() {
    let cfg = load_args(
        &["--name=flag"],
        &[
            ("ETCD_NAME", "env"),
            ("ETCD_SNAPSHOT_COUNT", "42"),
            ("ETCD_DEBUG", "true"),
        ],
    )
    .unwrap();
    assert_eq!(cfg.name, "flag");
    assert_eq!(cfg.snapshot_count, 42);
    assert!(cfg.debug);
    assert!(cfg.notices.iter().any(|n| n.contains("ETCD_NAME")));
}

#[test]
fn bad_values_name_their_origin() {
    assert_eq!(
        error_of(&["--snapshot-count=abc"], &[]),
        "invalid value \"abc\" for flag -snapshot-count: parse error"
    );
    assert_eq!(
        error_of(&[], &[("ETCD_SNAPSHOT_COUNT", "abc")]),
        "invalid value \"abc\" for ETCD_SNAPSHOT_COUNT: parse error"
    );
    assert_eq!(
        error_of(&["--debug=maybe"], &[]),
        "invalid boolean value \"maybe\" for -debug: parse error"
    );
    assert_eq!(
        error_of(&["--listen-client-urls=foo"], &[]),
        "invalid value \"foo\" for flag -listen-client-urls: URL scheme must be http, https, unix, or unixs: foo"
    );
    assert_eq!(
        error_of(&["--initial-cluster-state=bogus"], &[]),
        "invalid value \"bogus\" for flag -initial-cluster-state: invalid value"
    );
}

#[test]
fn etcds_consistency_rules() {
    assert_eq!(
        error_of(&["--listen-client-urls=http://127.0.0.1:2379"], &[]),
        "--advertise-client-urls is required when --listen-client-urls is set explicitly"
    );
    assert_eq!(
        error_of(&["--election-timeout=300"], &[]),
        "--election-timeout[300ms] should be at least as 5 times as --heartbeat-interval[100ms]"
    );
    assert_eq!(
        error_of(&["--heartbeat-interval=0"], &[]),
        "--heartbeat-interval must be >0 (set to 0ms)"
    );
    assert_eq!(
        error_of(&["--election-timeout=60000"], &[]),
        "--election-timeout[60000ms] is too long, and should be set less than 50000ms"
    );
    assert_eq!(
        error_of(&["--auto-compaction-mode=x"], &[]),
        "unknown auto-compaction-mode \"x\""
    );
    assert_eq!(
        error_of(&["--logger=foo"], &[]),
        "unknown logger option \"foo\""
    );
    assert_eq!(
        error_of(&["--listen-peer-urls=http://example.com:2380"], &[]),
        "expected IP in URL for binding (http://example.com:2380)"
    );
    assert_eq!(
        error_of(&["--initial-cluster=foo"], &[]),
        "error setting up initial cluster: URL scheme must be http, https, unix, or unixs: "
    );
}

#[test]
fn accepted_only_flags_are_reported() {
    let cfg = load_args(&["--enable-v2", "--max-wals=3"], &[]).unwrap();
    assert_eq!(cfg.notices.len(), 2, "{:?}", cfg.notices);
}

#[test]
fn auto_compaction_retention_reads_like_etcd() {
    let retention = |args: &[&str]| load_args(args, &[]).unwrap().auto_compaction;
    assert_eq!(retention(&[]), None);
    assert_eq!(
        retention(&["--auto-compaction-retention=2"]),
        Some(AutoCompaction::Periodic(Duration::from_secs(7200)))
    );
    assert_eq!(
        retention(&["--auto-compaction-retention=30m"]),
        Some(AutoCompaction::Periodic(Duration::from_secs(1800)))
    );
    assert_eq!(
        retention(&[
            "--auto-compaction-mode=revision",
            "--auto-compaction-retention=1000"
        ]),
        Some(AutoCompaction::Revision(1000))
    );
    assert_eq!(
        error_of(&["--auto-compaction-retention=abc"], &[]),
        "error parsing CompactionRetention: time: invalid duration \"abc\""
    );
}

#[test]
fn config_file_replaces_flags_and_env() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conf.yml");
    std::fs::write(
        &path,
        "name: etcd-1\ndata-dir: /data/etcd-1\nlisten-client-urls: http://10.10.0.1:2379,http://127.0.0.1:2379\n\
         advertise-client-urls: http://10.10.0.1:2379,http://127.0.0.1:2379\nlisten-peer-urls: http://10.10.0.1:2380\n\
         initial-advertise-peer-urls: http://10.10.0.1:2380\n\
         initial-cluster: etcd-1=http://10.10.0.1:2380,etcd-2=http://10.10.0.2:2380,etcd-3=http://10.10.0.3:2380\n\
         initial-cluster-token: etcd-cluster-token\ninitial-cluster-state: new\n",
    )
    .unwrap();
    let path = path.to_str().unwrap();
    let cfg = load_args(
        &["--config-file", path, "--name=ignored"],
        &[("ETCD_NAME", "ignored")],
    )
    .unwrap();
    assert_eq!(cfg.name, "etcd-1");
    assert_eq!(cfg.data_dir, PathBuf::from("/data/etcd-1"));
    assert_eq!(cfg.initial_cluster.len(), 3);
    assert_eq!(cfg.listen_client_urls.len(), 2);
    assert_eq!(cfg.initial_cluster_token, "etcd-cluster-token");
    assert_eq!(
        error_of(&["--config-file=/nonexistent.yml"], &[]),
        "open /nonexistent.yml: no such file or directory"
    );
}

#[test]
fn help_and_version_exit_cleanly() {
    assert!(matches!(load_args(&["--help"], &[]), Err(Exit::Help)));
    assert!(matches!(load_args(&["-h"], &[]), Err(Exit::Help)));
    assert!(matches!(load_args(&["--version"], &[]), Err(Exit::Version)));
}

#[test]
fn tls_flags_fill_each_side() {
    let cfg = load_args(
        &[
            "--cert-file=s.crt",
            "--key-file=s.key",
            "--client-cert-auth",
            "--client-crl-file=c.crl",
            "--client-cert-allowed-hostname=client.example",
            "--peer-cert-file=p.crt",
            "--peer-key-file=p.key",
            "--peer-trusted-ca-file=ca.crt",
            "--peer-cert-allowed-cn=member",
            "--peer-auto-tls",
            "--self-signed-cert-validity=3",
        ],
        &[("ETCD_TRUSTED_CA_FILE", "env-ca.crt")],
    )
    .unwrap();
    assert_eq!(
        cfg.client_tls.describe(),
        "cert = s.crt, key = s.key, trusted-ca = env-ca.crt, client-cert-auth = true, crl-file = c.crl"
    );
    assert_eq!(cfg.peer_tls.allowed_cn, "member");
    assert_eq!(cfg.client_tls.allowed_hostname, "client.example");
    assert!(cfg.peer_tls.check_client_san && !cfg.peer_tls.client_cert_auth);
    assert!(cfg.peer_auto_tls && !cfg.client_auto_tls);
    assert_eq!(cfg.self_signed_cert_validity, 3);
    assert!(cfg.notices.is_empty(), "{:?}", cfg.notices);
    let skip = load_args(&["--experimental-peer-skip-client-san-verification"], &[]).unwrap();
    assert!(!skip.peer_tls.check_client_san);
}

#[test]
fn tls_flag_errors_are_etcds() {
    assert_eq!(
        error_of(&["--cipher-suites=TLS_AES_128_GCM_SHA256,FOO"], &[]),
        "unexpected TLS cipher suite \"FOO\""
    );
    assert_eq!(
        error_of(
            &["--peer-cert-allowed-cn=a", "--peer-cert-allowed-hostname=b"],
            &[]
        ),
        "AllowedCN and AllowedHostname are mutually exclusive (cn=\"a\", hostname=\"b\")"
    );
    assert!(error_of(&["--client-cert-auth=maybe"], &[]).contains("-client-cert-auth"));
}

#[test]
fn connection_limits_are_read_as_etcd_reads_them() {
    let cfg = load_args(&[], &[]).unwrap();
    assert_eq!(cfg.max_concurrent_streams, u32::MAX);
    assert_eq!(
        (
            cfg.grpc_keepalive_min_time,
            cfg.grpc_keepalive_interval,
            cfg.grpc_keepalive_timeout
        ),
        (
            Duration::from_secs(5),
            Duration::from_secs(7200),
            Duration::from_secs(20)
        )
    );
    let cfg = load_args(
        &[
            "--max-concurrent-streams=2",
            "--grpc-keepalive-interval=1s",
            "--grpc-keepalive-timeout=500ms",
        ],
        &[("ETCD_GRPC_KEEPALIVE_MIN_TIME", "100ms")],
    )
    .unwrap();
    assert_eq!(cfg.max_concurrent_streams, 2);
    assert_eq!(cfg.grpc_keepalive_min_time, Duration::from_millis(100));
    assert_eq!(cfg.grpc_keepalive_interval, Duration::from_secs(1));
    assert_eq!(cfg.grpc_keepalive_timeout, Duration::from_millis(500));
    assert!(cfg.notices.is_empty(), "{:?}", cfg.notices);
    assert_eq!(
        error_of(&["--max-concurrent-streams=4294967296"], &[]),
        "invalid value \"4294967296\" for flag -max-concurrent-streams: strconv.ParseUint: parsing \"4294967296\": value out of range"
    );
    assert_eq!(
        error_of(&["--grpc-keepalive-interval=abc"], &[]),
        "invalid value \"abc\" for flag -grpc-keepalive-interval: parse error"
    );
}
