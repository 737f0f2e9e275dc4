//! Live inside-out diagnosis (`netsleuth diagnose`): probes each layer from this host
//! towards a target and ranks the likely causes.

pub mod dns;
pub mod pmtu;
pub mod types;

pub use types::{LayerResult, LayerStatus, ProbeOutcome};
