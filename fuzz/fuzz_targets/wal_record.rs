//! Fuzz target: see `etcd_fuzz::wal_record`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| etcd_fuzz::wal_record::check(data));
