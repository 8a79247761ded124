//! Cluster identity and membership.

pub mod attributes;
pub mod bootstrap;
pub mod discovery_service;
pub mod force_new;
pub mod ids;
pub mod join;
pub mod reconfig;
pub mod srv;
