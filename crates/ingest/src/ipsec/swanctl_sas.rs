//! STUB: being written.
#![allow(unused_variables, unused_imports)]
use crate::{ParseContext, ParseError, Source};
use netsleuth_model::ipsec::IkeSa;
/// `swanctl --list-sas`.
pub fn parse(src: &Source<'_>, ctx: &mut ParseContext) -> Result<Vec<IkeSa>, ParseError> {
    Err(src.error("swanctl --list-sas parser not written yet"))
}
