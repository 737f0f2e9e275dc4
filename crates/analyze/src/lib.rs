//! Analyses over the network model: the rule catalog that turns a model into findings.
//! Analyses never read files; they see only `netsleuth_model::Network`.
#![forbid(unsafe_code)]

pub mod rule;
pub mod rules;
pub mod support;

pub use rule::{analyze, catalog, find_rule, AnalyzeOptions, Context, Rule};
