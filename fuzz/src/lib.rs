//! What each fuzz target checks, kept in a library so that the targets under
//! `fuzz_targets/` stay one line each and the seed corpus can be built from the same code
//! (`examples/write_seeds.rs`).
//!
//! Each module's `check` takes the fuzzer's bytes and panics only when an invariant of the
//! code under test fails: "no panic" in the decoder itself, plus what the module's doc says.

pub mod config_file;
pub mod jwt_verify;
pub mod raft_apply;
pub mod scratch;
pub mod seeds;
pub mod snapshot_file;
pub mod tls_pem;
pub mod token_flag;
pub mod wal_record;
pub mod wal_segment;
