//! Fuzz target: see `etcd_fuzz::snapshot_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| etcd_fuzz::snapshot_file::check(data));
