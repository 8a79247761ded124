//! Cluster identity and membership.

pub mod bootstrap;
pub mod ids;
