//! Fuzz target: see `etcd_fuzz::config_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| etcd_fuzz::config_file::check(data));
