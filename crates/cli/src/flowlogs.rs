//! `netsleuth flowlogs`: placeholder wired into the command line; the implementation replaces it.

use anyhow::{bail, Result};
use clap::Args;

use crate::app::Outcome;
use crate::args::ColorWhen;

pub(crate) const FLOWLOGS_EXAMPLES: &str = "";

#[derive(Debug, Args)]
pub(crate) struct FlowlogsArgs {}

pub(crate) fn run(_args: &FlowlogsArgs, _color: ColorWhen) -> Result<Outcome> {
    bail!("netsleuth flowlogs is not implemented yet")
}
