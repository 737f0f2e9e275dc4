//! Redaction: secrets become `<redacted:FINGERPRINT>`, a keyed BLAKE3 hash under a
//! per-bundle key, so equal secrets are still recognisably equal and nothing leaks.

use netsleuth_model::Secret;

/// Fingerprints secrets with a per-bundle key. The key is random unless a salt is given
/// (`--salt`), which makes fingerprints comparable across bundles.
#[derive(Clone)]
pub struct Redactor {
    key: [u8; 32],
    /// Public id of the key: a hash of it, safe to print and store in manifests.
    salt_id: String,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor").field("salt_id", &self.salt_id).finish_non_exhaustive()
    }
}

impl Redactor {
    /// A redactor keyed from a user-given salt.
    pub fn from_salt(salt: &str) -> Redactor {
        Redactor::from_key(blake3::derive_key("netsleuth 2026 redaction salt v1", salt.as_bytes()))
    }

    /// A redactor with a fresh random key (fingerprints are only comparable within the run).
    pub fn random() -> Redactor {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // No OS randomness: fall back on time and pid; still never the secret itself.
            let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
            key = blake3::derive_key("netsleuth 2026 redaction fallback", seed.as_bytes());
        }
        Redactor::from_key(key)
    }

    fn from_key(key: [u8; 32]) -> Redactor {
        let salt_id = blake3::derive_key("netsleuth 2026 salt id", &key);
        let salt_id = hex(&salt_id[..6]);
        Redactor { key, salt_id }
    }

    /// Id of the key, safe to show (`manifest.json` `salt_id`).
    pub fn salt_id(&self) -> &str {
        &self.salt_id
    }

    /// The fingerprint (24 hex digits) of a secret value.
    pub fn fingerprint(&self, value: &str) -> String {
        let hash = blake3::keyed_hash(&self.key, value.as_bytes());
        hex(&hash.as_bytes()[..12])
    }

    pub fn secret(&self, value: &str) -> Secret {
        Secret { fingerprint: self.fingerprint(value) }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_salt_same_fingerprint_and_no_leak() {
        let a = Redactor::from_salt("s1");
        let b = Redactor::from_salt("s1");
        let c = Redactor::from_salt("s2");
        let key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
        assert_eq!(a.fingerprint(key), b.fingerprint(key));
        assert_ne!(a.fingerprint(key), c.fingerprint(key));
        assert_ne!(a.fingerprint(key), a.fingerprint("other"));
        assert!(!a.secret(key).to_string().contains(key));
        assert!(a.secret(key).to_string().starts_with("<redacted:"));
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(Redactor::random().fingerprint("x"), Redactor::random().fingerprint("x"));
    }
}
