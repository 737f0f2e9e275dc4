//! STUB: being written.
#![allow(unused_variables, unused_imports)]
use crate::{ParseContext, ParseError, Source};
use netsleuth_model::cloud::Aws;
/// `aws ec2 describe-<what> --output json`; `what` is e.g. `route-tables` (from the file name).
/// Returns false when `what` is not a known describe output (the file is then skipped).
pub fn parse(src: &Source<'_>, what: &str, aws: &mut Aws, ctx: &mut ParseContext) -> Result<bool, ParseError> {
    Err(src.error("AWS parser not written yet"))
}
