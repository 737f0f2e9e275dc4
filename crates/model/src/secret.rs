//! Secrets as the model holds them: a keyed fingerprint, never the value.
//! Two secrets are equal when their fingerprints (same per-bundle key) are equal.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::finding::Location;

/// A redacted secret. `Display` gives `<redacted:FINGERPRINT>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Secret {
    /// Hex keyed hash of the secret value (per-bundle key).
    pub fingerprint: String,
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted:{}>", self.fingerprint)
    }
}

/// What kind of secret was redacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RedactionKind {
    WireguardPrivateKey,
    WireguardPresharedKey,
    IpsecSecret,
    KubernetesSecretData,
    BearerToken,
    /// A value whose name says it is secret (`*_PASSWORD`, `*_TOKEN`, `*_KEY`, `psk` ...).
    NamedSecret,
    PrivateKeyBlock,
}

/// A record that a secret was found and redacted at `location`: lets rules report keys
/// in ConfigMaps or env literals without ever seeing them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redaction {
    pub kind: RedactionKind,
    pub location: Location,
    pub secret: Secret,
}
