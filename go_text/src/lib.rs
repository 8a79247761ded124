//! Go's text for durations and I/O errors. etcd and its tools are Go programs: their flags
//! take Go durations and their messages carry Go's error texts, so the member, etcdctl and
//! the gateway share these to say things as etcd says them.

pub mod duration;
pub mod io;
