//! `netsleuth trace`: placeholder wired into the command line; the implementation replaces it.

use anyhow::{bail, Result};
use clap::Args;

use crate::app::Outcome;
use crate::args::ColorWhen;

pub(crate) const TRACE_EXAMPLES: &str = "";

#[derive(Debug, Args)]
pub(crate) struct TraceArgs {}

pub(crate) fn run(_args: &TraceArgs, _color: ColorWhen) -> Result<Outcome> {
    bail!("netsleuth trace is not implemented yet")
}
