//! strongSwan IPsec: configured connections (swanctl.conf), secrets (fingerprints only)
//! and runtime SAs (`swanctl --list-sas`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::finding::Location;
use crate::secret::Secret;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ipsec {
    pub connections: Vec<IpsecConnection>,
    pub secrets: Vec<IpsecSecret>,
    /// Runtime IKE SAs; empty with `sas_collected = false` when no list-sas output exists.
    pub sas: Vec<IkeSa>,
    pub sas_collected: bool,
}

/// A `connections.<name>` section of swanctl.conf.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IpsecConnection {
    pub name: String,
    /// 0 = any, 1 = IKEv1, 2 = IKEv2 (swanctl default 0).
    pub version: u8,
    pub local_addrs: Vec<String>,
    pub remote_addrs: Vec<String>,
    /// IKE proposals as written (`aes256-sha256-modp2048`, `default`).
    pub proposals: Vec<String>,
    pub local_auth: Vec<IpsecAuth>,
    pub remote_auth: Vec<IpsecAuth>,
    pub children: Vec<IpsecChild>,
    /// Seconds (swanctl accepts `4h`, `30m`, `3600s`; normalised to seconds).
    pub rekey_time: Option<u64>,
    pub reauth_time: Option<u64>,
    pub over_time: Option<u64>,
    pub dpd_delay: Option<u64>,
    pub dpd_timeout: Option<u64>,
    pub encap: Option<bool>,
    pub mobike: Option<bool>,
    /// Every key of the section as written (`key` → value), for rules and explain.
    pub settings: BTreeMap<String, String>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IpsecAuth {
    /// Round name (`local`, `local-1`, `remote` ...).
    pub round: String,
    /// `psk`, `pubkey`, `eap-mschapv2` ...
    pub auth: Option<String>,
    pub id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IpsecChild {
    pub name: String,
    pub local_ts: Vec<String>,
    pub remote_ts: Vec<String>,
    /// ESP proposals as written.
    pub esp_proposals: Vec<String>,
    pub mode: Option<String>,
    pub rekey_time: Option<u64>,
    pub life_time: Option<u64>,
    pub start_action: Option<String>,
    pub dpd_action: Option<String>,
    pub close_action: Option<String>,
    pub settings: BTreeMap<String, String>,
    pub origin: Location,
}

/// A `secrets.<name>` section (`ike-*`, `eap-*`, `xauth-*`, `ppk-*`, `private-*` ...).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IpsecSecret {
    pub name: String,
    /// Section type prefix: `ike`, `eap`, `xauth`, `ppk`, `private`, `rsa`, `ecdsa` ...
    pub kind: String,
    /// `id`, `id-1`, `id-foo` values.
    pub ids: Vec<String>,
    pub secret: Option<Secret>,
    pub origin: Location,
}

/// One IKE SA as `swanctl --list-sas` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IkeSa {
    pub name: String,
    pub unique_id: Option<u32>,
    pub version: Option<u8>,
    /// `ESTABLISHED`, `CONNECTING`, `REKEYING` ...
    pub state: String,
    pub local_host: Option<String>,
    pub local_id: Option<String>,
    pub remote_host: Option<String>,
    pub remote_id: Option<String>,
    /// e.g. `AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048`.
    pub algorithms: Option<String>,
    pub established_secs: Option<u64>,
    pub rekey_in_secs: Option<u64>,
    pub children: Vec<ChildSa>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildSa {
    pub name: String,
    pub unique_id: Option<u32>,
    /// `INSTALLED`, `REKEYING` ...
    pub state: String,
    pub mode: Option<String>,
    pub protocol: Option<String>,
    pub udp_encap: bool,
    pub spi_in: Option<String>,
    pub spi_out: Option<String>,
    pub algorithms: Option<String>,
    pub bytes_in: Option<u64>,
    pub packets_in: Option<u64>,
    pub bytes_out: Option<u64>,
    pub packets_out: Option<u64>,
    pub local_ts: Vec<String>,
    pub remote_ts: Vec<String>,
    pub origin: Location,
}
