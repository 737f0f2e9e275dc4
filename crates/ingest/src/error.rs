//! Errors of the ingest crate: a parse error names the file and position; a bundle
//! error is one that stops the whole bundle (not a folder, unreadable).

use std::fmt;
use std::path::PathBuf;

/// A file (or an item in it) that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// Bundle-relative path.
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    pub message: String,
}

impl ParseError {
    pub fn new(
        path: impl Into<String>,
        line: Option<usize>,
        column: Option<usize>,
        message: impl Into<String>,
    ) -> ParseError {
        ParseError { path: path.into(), line, column, message: message.into() }
    }

    /// From a serde_json error, keeping its line and column.
    pub fn from_json(path: &str, err: &serde_json::Error) -> ParseError {
        let line = (err.line() > 0).then_some(err.line());
        let column = (err.column() > 0).then_some(err.column());
        ParseError::new(path, line, column, format!("invalid JSON: {err}"))
    }

    pub fn location(&self) -> netsleuth_model::Location {
        netsleuth_model::Location::File {
            path: self.path.clone(),
            line: self.line.map(|l| u32::try_from(l).unwrap_or(u32::MAX)),
            column: self.column.map(|c| u32::try_from(c).unwrap_or(u32::MAX)),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{}:{}: {}", self.path, l, c, self.message),
            (Some(l), None) => write!(f, "{}:{}: {}", self.path, l, self.message),
            _ => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// An error that prevents reading the bundle at all.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle {path} does not exist")]
    NotFound { path: PathBuf },
    #[error("bundle {path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}
