//! The `netsleuth` binary: parses arguments, runs the command, and turns its result into
//! an exit code in one place (0 clean, 1 findings at or above --fail-on, 2 usage or input error).
#![forbid(unsafe_code)]

mod app;
mod args;
mod collect;
mod diagnose;
mod flowlogs;
mod lab;
mod pcap;
mod reach;
mod trace;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Usage errors (exit 2) and --help/--version (exit 0), as clap formats them.
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(app::EXIT_ERROR));
        }
    };
    match app::run(cli) {
        Ok(outcome) => outcome.into(),
        Err(err) => {
            let _ = writeln!(std::io::stderr().lock(), "error: {err:#}");
            ExitCode::from(app::EXIT_ERROR)
        }
    }
}
