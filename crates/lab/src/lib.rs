//! netsleuth-lab: real networks in network namespaces, described by YAML scenarios, with
//! real daemons (wireguard-go, an echo service) and faults injected and cleared by name.
//!
//! ```no_run
//! use netsleuth_lab::{scenario, FaultRequest, Lab, UpOptions};
//! # fn main() -> Result<(), netsleuth_lab::LabError> {
//! let sc = scenario::load("k8s-wireguard-site")?;
//! let lab = Lab::up(&sc, &UpOptions::new(vec!["/usr/local/bin/netsleuth-lab-echo".into()]))?;
//! let stats = lab.ping("pod-a", "10.20.1.10".parse().expect("ip"), Default::default())?;
//! assert!(stats.all_ok());
//! # Ok(()) }
//! // Dropping `lab` removes every namespace, process and socket it made.
//! ```
#![forbid(unsafe_code)]

mod cleanup;
mod cmd;
mod collect_targets;
pub mod dnsmasq;
pub mod echo;
mod error;
pub mod faults;
pub mod interrupt;
mod lab;
pub mod names;
mod ops;
mod procs;
pub mod scenario;
mod services;
mod setup;
pub mod state;
mod status;
pub mod strongswan;
pub mod traffic;

pub use cleanup::{cleanup_leftovers, down_all, CleanupReport};
pub use cmd::CmdOutput;
pub use error::{LabError, Result};
pub use faults::{FaultRequest, FaultSpec, StaticVisibility};
pub use lab::{DownReport, Lab, UpOptions};
pub use procs::{is_root, ProcRef};
pub use services::WG_SOCKET_DIR;
pub use state::StateDir;
pub use status::{HostStatus, LabStatus, PeerStatus, ProcessStatus, WgStatus};
pub use traffic::{PingOptions, PingStats};
