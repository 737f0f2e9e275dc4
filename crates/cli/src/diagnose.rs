//! `netsleuth diagnose`: placeholder wired into the command line; the implementation replaces it.

use anyhow::{bail, Result};
use clap::Args;

use crate::app::Outcome;
use crate::args::ColorWhen;

pub(crate) const DIAGNOSE_EXAMPLES: &str = "";

#[derive(Debug, Args)]
pub(crate) struct DiagnoseArgs {}

pub(crate) fn run(_args: &DiagnoseArgs, _color: ColorWhen) -> Result<Outcome> {
    bail!("netsleuth diagnose is not implemented yet")
}
