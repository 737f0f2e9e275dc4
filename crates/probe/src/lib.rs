//! Live side of netsleuth: collecting a host or network namespace into a bundle
//! (`netsleuth collect`, and `netsleuth lab collect` through [`collect::collect_bundle`]).
#![forbid(unsafe_code)]

pub mod collect;
pub mod diagnose;

pub use collect::{
    collect_bundle, collect_host, write_manifest, CollectError, CollectOptions, CollectTarget, CommandRecord,
    HostReport, Status,
};
