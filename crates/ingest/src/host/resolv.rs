//! STUB: being written.
#![allow(unused_variables, unused_imports)]
use crate::{ParseContext, ParseError, Source};
use netsleuth_model::host::ResolvConf;
/// `/etc/resolv.conf`.
pub fn parse(src: &Source<'_>, ctx: &mut ParseContext) -> Result<ResolvConf, ParseError> {
    Err(src.error("resolv.conf parser not written yet"))
}
