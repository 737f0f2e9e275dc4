//! STUB: being written.
#![allow(unused_variables, unused_imports)]
use crate::{ParseContext, ParseError, Source};
use std::collections::BTreeMap;
/// `conntrack -S`: counters summed over CPUs.
pub fn parse_stats(src: &Source<'_>, ctx: &mut ParseContext) -> Result<BTreeMap<String, u64>, ParseError> {
    Err(src.error("conntrack -S parser not written yet"))
}
/// `cat /proc/sys/net/netfilter/nf_conntrack_count`.
pub fn parse_count(src: &Source<'_>, ctx: &mut ParseContext) -> Result<u64, ParseError> {
    Err(src.error("conntrack count parser not written yet"))
}
