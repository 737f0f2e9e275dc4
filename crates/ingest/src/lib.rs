//! Reads a netsleuth bundle (a folder of unmodified command outputs) into the network
//! model: one parser per artifact format, secrets redacted at parse time.
#![forbid(unsafe_code)]

pub mod aws;
pub mod bundle;
pub mod error;
pub mod firewall;
pub mod host;
pub mod ipsec;
pub mod kubernetes;
pub mod redact;

pub use bundle::{read_bundle, BundleOptions};
pub use error::{BundleError, ParseError};
pub use redact::Redactor;

use netsleuth_model::{IngestIssue, Location, Redaction};

/// One artifact handed to a parser: its bundle-relative path and its text.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// Path relative to the bundle root, with `/` separators (`hosts/gw-1/nft.json`).
    pub path: &'a str,
    pub text: &'a str,
}

impl<'a> Source<'a> {
    pub fn new(path: &'a str, text: &'a str) -> Source<'a> {
        Source { path, text }
    }

    /// Location of a 1-based line of this source.
    pub fn line(&self, line: usize) -> Location {
        Location::line(self.path, u32::try_from(line).unwrap_or(u32::MAX))
    }

    /// Location of a JSON pointer in this source.
    pub fn pointer(&self, pointer: impl Into<String>) -> Location {
        Location::json(self.path, pointer)
    }

    /// A parse error at a 1-based line (and optional column) of this source.
    pub fn error_at(&self, line: usize, column: Option<usize>, message: impl Into<String>) -> ParseError {
        ParseError::new(self.path, Some(line), column, message)
    }

    /// A parse error for the whole source (no position).
    pub fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError::new(self.path, None, None, message)
    }
}

/// State shared by parsers of one bundle: the redactor, what was redacted, and
/// non-fatal problems (one bad item in an otherwise good file).
#[derive(Debug)]
pub struct ParseContext {
    pub redactor: Redactor,
    pub redactions: Vec<Redaction>,
    pub issues: Vec<IngestIssue>,
}

impl ParseContext {
    pub fn new(redactor: Redactor) -> ParseContext {
        ParseContext { redactor, redactions: Vec::new(), issues: Vec::new() }
    }

    /// Records a non-fatal problem; the parser goes on with the rest of the file.
    pub fn warn(&mut self, location: Location, message: impl Into<String>) {
        self.issues.push(IngestIssue { location, message: message.into() });
    }

    /// Redacts `value` as a secret of `kind` found at `location`, records it, and returns
    /// the fingerprinted secret.
    pub fn redact(
        &mut self,
        kind: netsleuth_model::RedactionKind,
        location: Location,
        value: &str,
    ) -> netsleuth_model::Secret {
        // A value already redacted by `netsleuth collect` keeps its fingerprint (made under
        // the collect-time key, named by the manifest's salt_id) instead of being hashed again.
        let marked = value.trim().strip_prefix("<redacted:").and_then(|v| v.strip_suffix('>'));
        let secret = match marked {
            Some(fp) if redact::is_redacted(value.trim()) => netsleuth_model::Secret { fingerprint: fp.to_string() },
            _ => self.redactor.secret(value),
        };
        self.redactions.push(Redaction { kind, location, secret: secret.clone() });
        secret
    }
}

impl Default for ParseContext {
    fn default() -> Self {
        ParseContext::new(Redactor::random())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsleuth_model::RedactionKind;

    #[test]
    fn already_redacted_values_keep_their_fingerprint() {
        let mut ctx = ParseContext::new(Redactor::from_salt("a"));
        let marker = "<redacted:0123456789abcdef01234567>";
        let s = ctx.redact(RedactionKind::WireguardPrivateKey, Location::Derived, marker);
        assert_eq!(s.fingerprint, "0123456789abcdef01234567");
        let fresh = ctx.redact(RedactionKind::WireguardPrivateKey, Location::Derived, "plain-secret");
        assert_eq!(fresh, Redactor::from_salt("a").secret("plain-secret"));
        assert_eq!(ctx.redactions.len(), 2);
    }
}
