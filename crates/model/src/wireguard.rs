//! WireGuard interfaces and peers, from `wg show all dump` and wg-quick configs.
//! Keys: public keys kept as is, private and preshared keys only as fingerprints.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::finding::Location;
use crate::secret::Secret;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireGuardInterface {
    pub name: String,
    pub private_key: Option<Secret>,
    pub public_key: Option<String>,
    pub listen_port: Option<u16>,
    pub fwmark: Option<u32>,
    /// wg-quick `Address =` (only from configs).
    pub addresses: Vec<IpNet>,
    /// wg-quick `MTU =`.
    pub mtu: Option<u32>,
    /// wg-quick `Table =` (`off`, `auto`, or a number).
    pub table: Option<String>,
    pub peers: Vec<WireGuardPeer>,
    /// Where the interface was described: a dump line or a config file.
    pub origin: Location,
    /// Whether this came from runtime state (dump) or a config file only.
    pub from_runtime: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireGuardPeer {
    pub public_key: String,
    pub preshared_key: Option<Secret>,
    /// `host:port` as configured or seen (`(none)` in a dump becomes None).
    pub endpoint: Option<String>,
    pub allowed_ips: Vec<IpNet>,
    /// Unix seconds of the latest handshake; None when never (dump shows 0).
    pub latest_handshake: Option<i64>,
    pub rx_bytes: Option<u64>,
    pub tx_bytes: Option<u64>,
    /// Seconds; None when off.
    pub persistent_keepalive: Option<u16>,
    pub origin: Location,
}
