//! Firewall parsers: `nft -j list ruleset` and `iptables-save -c`, into one ruleset shape.

pub mod iptables;
pub mod nft;
