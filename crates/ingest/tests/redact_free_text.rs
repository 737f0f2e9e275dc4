//! The public redaction helpers other parsers reuse: what counts as a secret in free
//! text, what is kept, how redactions are recorded.

use netsleuth_ingest::redact::{
    find_secrets, name_says_secret, named_needs_redaction, pointer_token, redact_arguments, redact_named, redact_text,
    scrub_error_message,
};
use netsleuth_ingest::{ParseContext, Redactor};
use netsleuth_model::{Location, RedactionKind};
use proptest::prelude::*;

const WG_KEY: &str = "6IrYf/MWPaSGfmM8fpmu7yxeRK1lz4DlFuBxbjz9KH8=";
const WG_PUB: &str = "4rSgvlK6Un2TjCx9vYJsYuR7yJb3E9JaFNuohLd5LVE=";

fn ctx() -> ParseContext {
    ParseContext::new(Redactor::from_salt("redact-tests"))
}

#[test]
fn equal_secrets_equal_fingerprints_wherever_found() {
    let mut c = ctx();
    let a = Location::json("k.json", "/items/0/data/wg0.conf");
    let b = Location::json("k.json", "/items/1/spec/containers/0/env/0/value");
    let conf = redact_text(&mut c, &a, &format!("[Interface]\nPrivateKey = {WG_KEY}\n")).unwrap();
    let env = redact_named(&mut c, &b, "WG_PRIVATE_KEY", WG_KEY).unwrap();
    assert_eq!(c.redactions.len(), 2);
    assert_eq!(c.redactions[0].secret, c.redactions[1].secret);
    assert_eq!(
        (c.redactions[0].kind, c.redactions[1].kind),
        (RedactionKind::WireguardPrivateKey, RedactionKind::NamedSecret)
    );
    assert_eq!((&c.redactions[0].location, &c.redactions[1].location), (&a, &b));
    assert_eq!(conf, format!("[Interface]\nPrivateKey = {env}\n"));
    // Another bundle key: other fingerprints for the same secret.
    let other = Redactor::from_salt("another");
    assert_ne!(other.secret(WG_KEY), c.redactions[0].secret);
}

#[test]
fn public_keys_and_plain_config_stay() {
    let text = format!("[Peer]\nPublicKey = {WG_PUB}\nAllowedIPs = 10.0.0.0/8\nEndpoint = 203.0.113.1:51820\n");
    assert!(find_secrets(&text).is_empty());
    assert!(!named_needs_redaction("WG_PUBLIC_KEY", WG_PUB));
    assert!(!named_needs_redaction("LOG_LEVEL", "debug"));
    assert!(named_needs_redaction("LOG_LEVEL", &format!("Bearer {}", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig")));
    let mut c = ctx();
    assert_eq!(redact_text(&mut c, &Location::Derived, &text), None);
    assert!(c.redactions.is_empty());
}

#[test]
fn pem_block_keeps_its_frame() {
    let mut c = ctx();
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1\nw8Jq2\n-----END RSA PRIVATE KEY-----\n";
    let out = redact_text(&mut c, &Location::Derived, pem).unwrap();
    assert!(out.starts_with("-----BEGIN RSA PRIVATE KEY-----\n<redacted:"), "{out}");
    assert!(out.ends_with(">\n-----END RSA PRIVATE KEY-----\n"), "{out}");
    assert_eq!(c.redactions[0].kind, RedactionKind::PrivateKeyBlock);
    // Line breaks do not change the fingerprint.
    let crlf = pem.replace('\n', "\r\n");
    let out2 = redact_text(&mut c, &Location::Derived, &crlf).unwrap();
    assert_eq!(c.redactions[0].secret, c.redactions[1].secret, "{out2}");
    // A truncated block is redacted to the end.
    let cut = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC";
    let out3 = redact_text(&mut c, &Location::Derived, cut).unwrap();
    assert!(!out3.contains("MIIEvQ"), "{out3}");
}

#[test]
fn ipsec_and_named_lines() {
    let swanctl = "secrets {\n  ike-a {\n    id = a.example\n    secret = 0sFpZAZqEN6Ti9sqt4ZP5EWcqx\n  }\n  eap-b {\n    secret = \"two words\"\n  }\n}\n";
    let spans = find_secrets(swanctl);
    assert_eq!(spans.len(), 2);
    assert!(spans.iter().all(|s| s.kind == RedactionKind::IpsecSecret));
    assert_eq!(&swanctl[spans[1].start..spans[1].end], "two words");
    let env_file = "export DB_PASSWORD='p@ss word'\nAPI_KEY=abc123\nPUBLIC_KEY=xyz\nDEBUG=1\n";
    let got: Vec<&str> = find_secrets(env_file).iter().map(|s| &env_file[s.start..s.end]).collect();
    assert_eq!(got, vec!["p@ss word", "abc123"]);
}

#[test]
fn arguments() {
    let mut c = ctx();
    let mut args: Vec<String> =
        ["--listen", ":8080", "--token", "s3cr3t-value", "--password=hunter22", "--public-key", WG_PUB]
            .iter()
            .map(|s| s.to_string())
            .collect();
    assert!(redact_arguments(&mut c, |i| Location::json("p", format!("/args/{i}")), &mut args));
    assert_eq!(&args[..3], &["--listen", ":8080", "--token"]);
    assert!(args[3].starts_with("<redacted:"));
    assert!(args[4].starts_with("--password=<redacted:"));
    assert_eq!(args[6], WG_PUB);
    let at: Vec<String> = c.redactions.iter().map(|r| r.location.to_string()).collect();
    assert_eq!(at, vec!["p#/args/3", "p#/args/4"]);
}

#[test]
fn helpers() {
    assert_eq!(
        pointer_token("kubectl.kubernetes.io/last-applied-configuration"),
        "kubectl.kubernetes.io~1last-applied-configuration"
    );
    assert_eq!(pointer_token("a~b"), "a~0b");
    assert!(name_says_secret("preSharedKey"));
    assert!(!name_says_secret("publicKey"));
    assert_eq!(
        scrub_error_message("invalid type: string \"PSK=abc\", expected a sequence"),
        "invalid type: a string of 7 characters, expected a sequence"
    );
}

proptest! {
    /// Whatever the text, redaction never panics, removes every span it reports, and
    /// a second pass finds nothing left to redact.
    #[test]
    fn redaction_is_total_and_idempotent(text in r#"([A-Za-z_ ]{0,12}(=|: |:)[ -~]{0,40}\n|Bearer [A-Za-z0-9._-]{0,30} |eyJ[A-Za-z0-9_.-]{0,40} |-----BEGIN [A-Z ]{0,20}-----\n[A-Za-z0-9+/]{0,30}\n){0,6}"#) {
        let mut c = ctx();
        let spans = find_secrets(&text);
        match redact_text(&mut c, &Location::Derived, &text) {
            None => prop_assert!(spans.is_empty()),
            Some(out) => {
                prop_assert_eq!(c.redactions.len(), spans.len());
                for s in &spans {
                    let secret = &text[s.start..s.end];
                    if secret.len() >= 8 {
                        prop_assert!(!out.contains(secret) || text.matches(secret).count() > spans.len());
                    }
                }
                prop_assert!(find_secrets(&out).is_empty(), "left after one pass: {:?}", find_secrets(&out));
            }
        }
    }
}
