//! Fuzz target: see `etcd_fuzz::jwt_verify`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| etcd_fuzz::jwt_verify::check(data));
