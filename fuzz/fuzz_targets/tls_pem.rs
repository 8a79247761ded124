//! Fuzz target: see `etcd_fuzz::tls_pem`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| etcd_fuzz::tls_pem::check(data));
