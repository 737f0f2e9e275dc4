//! STUB: being written.
#![allow(unused_variables, unused_imports)]
use crate::{ParseContext, ParseError, Source};
use netsleuth_model::ipsec::{IpsecConnection, IpsecSecret};
/// Connections and secrets of one swanctl.conf-format file.
#[derive(Debug, Default)]
pub struct SwanctlConfig {
    pub connections: Vec<IpsecConnection>,
    pub secrets: Vec<IpsecSecret>,
}
/// One file of `swanctl/` (swanctl.conf or conf.d/*.conf). `include` lines are not
/// followed: the bundle reader parses every file of the folder.
pub fn parse(src: &Source<'_>, ctx: &mut ParseContext) -> Result<SwanctlConfig, ParseError> {
    Err(src.error("swanctl.conf parser not written yet"))
}
