//! STUB: being written.
#![allow(unused_variables, unused_imports)]
use crate::{ParseContext, ParseError, Source};
use netsleuth_model::firewall::Ruleset;
/// `iptables-save -c` (family `ip`) or `ip6tables-save -c` (family `ip6`).
pub fn parse(src: &Source<'_>, family: &str, ctx: &mut ParseContext) -> Result<Ruleset, ParseError> {
    Err(src.error("iptables-save parser not written yet"))
}
