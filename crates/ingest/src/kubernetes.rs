//! STUB: being written.
#![allow(unused_variables, unused_imports)]
use crate::{ParseContext, ParseError, Source};
use netsleuth_model::kubernetes::Cluster;
/// A `kubectl get -o json|yaml` output: a List, a single object, or multi-document YAML,
/// any kinds mixed. Objects are added to `cluster`; a bad item is a warning in `ctx`.
pub fn parse(src: &Source<'_>, cluster: &mut Cluster, ctx: &mut ParseContext) -> Result<(), ParseError> {
    Err(src.error("Kubernetes parser not written yet"))
}
