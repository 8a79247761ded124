//! Fuzz target: see `etcd_fuzz::token_flag`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| etcd_fuzz::token_flag::check(data));
