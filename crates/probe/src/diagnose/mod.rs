//! Live inside-out diagnosis (`netsleuth diagnose`): probes each layer from this host
//! towards a target and ranks the likely causes.

pub mod causes;
mod cmd;
pub mod dns;
mod engine;
mod icmp;
mod local;
mod packet;
pub mod pmtu;
mod render;
mod route;
pub mod transport;
mod tunnel;
pub mod types;

pub use engine::{parse_target, run, DiagnoseError, DiagnoseReport, DiagnoseRequest};
pub use render::{render_json, render_text};
pub use transport::Proto;
pub use types::{LayerResult, LayerStatus, ProbeOutcome};
