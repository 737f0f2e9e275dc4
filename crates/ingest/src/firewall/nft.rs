//! STUB: being written.
#![allow(unused_variables, unused_imports)]
use crate::{ParseContext, ParseError, Source};
use netsleuth_model::firewall::Ruleset;
/// `nft -j list ruleset`.
pub fn parse(src: &Source<'_>, ctx: &mut ParseContext) -> Result<Ruleset, ParseError> {
    Err(src.error("nft parser not written yet"))
}
