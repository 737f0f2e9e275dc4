//! The typed network model of netsleuth: what a bundle (or a live host) says about a network.
//! Pure data plus small queries (`RouteTable::lookup`, `LabelSelector::matches`); no I/O.
#![forbid(unsafe_code)]

pub mod cloud;
pub mod finding;
pub mod firewall;
pub mod host;
pub mod ipsec;
pub mod kubernetes;
pub mod network;
pub mod secret;
pub mod wireguard;

pub use finding::{Confidence, Evidence, Finding, Layer, Location, Severity};
pub use network::{IngestIssue, Manifest, Network};
pub use secret::{Redaction, RedactionKind, Secret};
