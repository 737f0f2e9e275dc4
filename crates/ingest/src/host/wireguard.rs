//! STUB: being written.
#![allow(unused_variables, unused_imports)]
use crate::{ParseContext, ParseError, Source};
use netsleuth_model::wireguard::WireGuardInterface;
/// `wg show all dump`.
pub fn parse_dump(src: &Source<'_>, ctx: &mut ParseContext) -> Result<Vec<WireGuardInterface>, ParseError> {
    Err(src.error("wg dump parser not written yet"))
}
/// A wg-quick config `wireguard/<name>.conf`; `name` is the interface name (file stem).
pub fn parse_config(src: &Source<'_>, name: &str, ctx: &mut ParseContext) -> Result<WireGuardInterface, ParseError> {
    Err(src.error("wg-quick config parser not written yet"))
}
/// Merges runtime state and configs of the same interface name (runtime wins for state).
pub fn merge(runtime: Vec<WireGuardInterface>, configs: Vec<WireGuardInterface>) -> Vec<WireGuardInterface> {
    let mut v = runtime;
    v.extend(configs);
    v
}
