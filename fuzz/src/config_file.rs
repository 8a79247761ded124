//! The `--config-file` YAML document: the bytes written to a file and read with
//! `config::load` as `etcd --config-file FILE` reads it (the YAML parser, the key mapping
//! and every value's parser and cross-check).
//!
//! Invariants:
//! - loading answers a configuration or an error, never a panic, and never help or version
//!   (those come only from the command line);
//! - a file that is not UTF-8 is refused as unreadable, and one the YAML layer refuses is
//!   refused whole;
//! - an accepted configuration satisfies etcd's timing rules.

use std::ffi::OsString;

use etcd_server::config::{self, sources, ConfigError, Exit};

pub fn check(data: &[u8]) {
    let dir = crate::scratch::dir();
    let path = dir.path().join("etcd.conf.yml");
    std::fs::write(&path, data).expect("config file written");
    let args = [
        OsString::from("etcd"),
        OsString::from("--config-file"),
        path.clone().into_os_string(),
    ];
    let loaded = config::load(args, std::iter::empty());
    let text = std::str::from_utf8(data);
    let yaml = text.map(|t| sources::config_file("etcd.conf.yml", t));
    match (&loaded, &yaml) {
        (Err(Exit::Invalid(ConfigError::ConfigRead { .. })), Err(_)) => {}
        (_, Err(_)) => panic!("a non-UTF-8 file was read: {loaded:?}"),
        (Err(Exit::Invalid(ConfigError::ConfigYaml { .. })), Ok(Err(_))) => {}
        (_, Ok(Err(e))) => panic!("YAML refused ({e}) yet loaded: {loaded:?}"),
        (Err(Exit::Invalid(_)), Ok(Ok(_))) => {}
        (Err(other), _) => panic!("a config file gave {other:?}"),
        (Ok(cfg), _) => {
            let (hb, et) = (cfg.heartbeat_interval, cfg.election_timeout);
            assert!(!hb.is_zero(), "{cfg:?}");
            assert!(et >= 5 * hb && et.as_millis() <= 50_000, "{cfg:?}");
        }
    }
}
