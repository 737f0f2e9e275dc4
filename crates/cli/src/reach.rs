//! `netsleuth reach`: placeholder wired into the command line; the implementation replaces it.

use anyhow::{bail, Result};
use clap::Args;

use crate::app::Outcome;
use crate::args::ColorWhen;

pub(crate) const REACH_EXAMPLES: &str = "";

#[derive(Debug, Args)]
pub(crate) struct ReachArgs {}

pub(crate) fn run(_args: &ReachArgs, _color: ColorWhen) -> Result<Outcome> {
    bail!("netsleuth reach is not implemented yet")
}
