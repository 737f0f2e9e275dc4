//! STUB: being written.
#![allow(unused_variables, unused_imports)]
use crate::{ParseContext, ParseError, Source};
use netsleuth_model::host::{Interface, Route, RoutingRule};
/// `ip -j -d link show`.
pub fn parse_links(src: &Source<'_>, ctx: &mut ParseContext) -> Result<Vec<Interface>, ParseError> {
    Err(src.error("ip link parser not written yet"))
}
/// `ip -j addr show`.
pub fn parse_addrs(src: &Source<'_>, ctx: &mut ParseContext) -> Result<Vec<Interface>, ParseError> {
    Err(src.error("ip addr parser not written yet"))
}
/// Merges interfaces from ip-link (kinds) and ip-addr (addresses) by name.
pub fn merge_interfaces(links: Vec<Interface>, addrs: Vec<Interface>) -> Vec<Interface> {
    if links.is_empty() {
        addrs
    } else {
        links
    }
}
/// `ip -j route show table all` (and `ip -6 -j route show table all`).
pub fn parse_routes(src: &Source<'_>, ctx: &mut ParseContext) -> Result<Vec<Route>, ParseError> {
    Err(src.error("ip route parser not written yet"))
}
/// `ip -j rule show`.
pub fn parse_rules(src: &Source<'_>, ctx: &mut ParseContext) -> Result<Vec<RoutingRule>, ParseError> {
    Err(src.error("ip rule parser not written yet"))
}
