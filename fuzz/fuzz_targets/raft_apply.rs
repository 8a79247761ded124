//! Fuzz target: see `etcd_fuzz::raft_apply`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| etcd_fuzz::raft_apply::check(data));
