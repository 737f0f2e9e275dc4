//! STUB: being written.
#![allow(unused_variables, unused_imports)]
use crate::{ParseContext, ParseError, Source};
use netsleuth_model::host::CniConfig;
/// A file of /etc/cni/net.d (`.conf`, `.conflist`, `.json`).
pub fn parse(src: &Source<'_>, ctx: &mut ParseContext) -> Result<CniConfig, ParseError> {
    Err(src.error("CNI parser not written yet"))
}
