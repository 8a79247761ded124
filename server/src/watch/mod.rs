//! Watch support: the hub that fans applied changes out to watch streams.

pub mod hub;
