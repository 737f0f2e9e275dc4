//! Parsers of per-host artifacts: `ip -j` outputs, sysctl, resolv.conf, conntrack,
//! CNI configuration and WireGuard state/configs.

pub mod cni;
pub mod conntrack;
pub mod ip;
pub mod resolv;
pub mod sysctl;
pub mod wireguard;
