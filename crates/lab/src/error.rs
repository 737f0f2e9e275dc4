//! The lab's error type: every failure names what was being done (the command line, the
//! file and line of a scenario, the lab id) so that a user can act on it.

use std::io;

use crate::scenario::ScenarioErrors;

/// What went wrong in the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The scenario file is invalid (every problem, with file, line and column).
    #[error("{0}")]
    Scenario(#[from] ScenarioErrors),
    /// A command exited with a failure status.
    #[error("`{cmd}` failed ({status}){}", if stderr.is_empty() { String::new() } else { format!(": {stderr}") })]
    Command { cmd: String, status: String, stderr: String },
    /// A command did not finish in time (it was killed).
    #[error("`{cmd}` did not finish within {secs:.1} s and was stopped")]
    Timeout { cmd: String, secs: f64 },
    /// A program could not be started at all.
    #[error("cannot run `{cmd}`: {source}")]
    Spawn { cmd: String, source: io::Error },
    /// A file or folder operation failed.
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    /// Not running as root.
    #[error(
        "netsleuth lab needs root: it creates network namespaces, links and daemons (run it as root, e.g. `sudo \
         netsleuth lab ...`)"
    )]
    NotRoot,
    /// Programs the lab needs are not installed.
    #[error("missing programs: {0}")]
    MissingTools(String),
    /// No running lab has this id, or several labs run and none was chosen.
    #[error("{0}")]
    Lab(String),
    /// A fault could not be injected, cleared or verified.
    #[error("fault {name}: {message}")]
    Fault { name: String, message: String },
    /// Ctrl-C or SIGTERM arrived while the lab was being built; it was torn down.
    #[error("interrupted: the lab was torn down")]
    Interrupted,
    /// A state file of a lab could not be read.
    #[error("lab state {path}: {message}")]
    State { path: String, message: String },
}

impl LabError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> LabError {
        LabError::Io { context: context.into(), source }
    }

    pub(crate) fn fault(name: &str, message: impl Into<String>) -> LabError {
        LabError::Fault { name: name.to_string(), message: message.into() }
    }
}

/// Result of lab operations.
pub type Result<T, E = LabError> = std::result::Result<T, E>;
