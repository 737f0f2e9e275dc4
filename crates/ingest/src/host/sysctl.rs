//! STUB: being written.
#![allow(unused_variables, unused_imports)]
use crate::{ParseContext, ParseError, Source};
use netsleuth_model::host::Sysctls;
/// `sysctl -a`.
pub fn parse(src: &Source<'_>, ctx: &mut ParseContext) -> Result<Sysctls, ParseError> {
    Err(src.error("sysctl parser not written yet"))
}
