//! swanctl.conf parser on the configs of the live moon/sun run and on examples in the shape
//! of strongSwan's documentation (tests/fixtures/ipsec), secrets only as fingerprints.

use netsleuth_ingest::ipsec::swanctl_conf::{self, SwanctlConfig};
use netsleuth_ingest::{read_bundle, BundleOptions, ParseContext, Redactor, Source};
use netsleuth_model::ipsec::IpsecConnection;
use netsleuth_model::{Location, RedactionKind};

const SITE_PSK: &str = "nsh2-Fixture-PSK-7s2Kx9Qm";
const UDP_PSK_AS_WRITTEN: &str = "0sbnNoMi1maXh0dXJlLXVkcC1wc2stNGhUcQ==";
const UDP_PSK_DECODED: &str = "nsh2-fixture-udp-psk-4hTq";

fn fixture_path(name: &str) -> String {
    format!("{}/../../tests/fixtures/ipsec/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> String {
    let path = fixture_path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse_with(ctx: &mut ParseContext, name: &str) -> SwanctlConfig {
    let text = fixture(name);
    swanctl_conf::parse(&Source::new(&format!("hosts/x/swanctl/{name}"), &text), ctx).expect("parses")
}

fn conn<'a>(c: &'a SwanctlConfig, name: &str) -> &'a IpsecConnection {
    c.connections.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no connection {name}"))
}

#[test]
fn live_moon_connections() {
    let mut ctx = ParseContext::new(Redactor::from_salt("t"));
    let moon = parse_with(&mut ctx, "live/moon/swanctl.conf");
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    let names: Vec<&str> = moon.connections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["site", "site-udp", "mismatch", "unreachable"]);
    let site = conn(&moon, "site");
    assert_eq!(site.version, 2);
    assert_eq!(site.local_addrs, ["198.51.100.1"]);
    assert_eq!(site.remote_addrs, ["198.51.100.2"]);
    assert_eq!(site.proposals, ["aes256-sha256-modp2048", "aes128-sha256-modp2048"]);
    assert_eq!(site.rekey_time, Some(4 * 3600));
    assert_eq!(site.over_time, Some(600));
    assert_eq!(site.dpd_delay, Some(30));
    assert_eq!((site.reauth_time, site.dpd_timeout, site.encap), (None, None, None));
    assert_eq!(site.mobike, Some(false));
    assert_eq!(site.local_auth.len(), 1);
    assert_eq!(site.local_auth[0].round, "local");
    assert_eq!(site.local_auth[0].auth.as_deref(), Some("psk"));
    assert_eq!(site.local_auth[0].id.as_deref(), Some("moon.example.net"));
    assert_eq!(site.remote_auth[0].id.as_deref(), Some("sun.example.net"));
    assert_eq!(site.settings.get("rekey_time").map(String::as_str), Some("4h"));
    assert_eq!(site.settings.get("local.auth").map(String::as_str), Some("psk"));
    assert!(!site.settings.keys().any(|k| k.starts_with("children")), "{:?}", site.settings.keys());
    let text = fixture("live/moon/swanctl.conf");
    let line = text.lines().position(|l| l.trim() == "site {").unwrap() + 1;
    assert_eq!(site.origin, Location::line("hosts/x/swanctl/live/moon/swanctl.conf", u32::try_from(line).unwrap()));

    let children: Vec<&str> = site.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(children, ["net", "gw"]);
    let net = &site.children[0];
    assert_eq!(net.local_ts, ["10.1.0.0/16"]);
    assert_eq!(net.remote_ts, ["10.2.0.0/16"]);
    assert_eq!(net.esp_proposals, ["aes128-sha256-modp2048"]);
    assert_eq!(net.mode.as_deref(), Some("tunnel"));
    assert_eq!(net.rekey_time, Some(3600));
    assert_eq!(net.life_time, Some(66 * 60));
    assert_eq!(net.dpd_action.as_deref(), Some("restart"));
    assert_eq!(net.start_action.as_deref(), Some("none"));
    assert_eq!(net.close_action.as_deref(), Some("none"));
    assert_eq!(net.settings.get("life_time").map(String::as_str), Some("66m"));

    assert_eq!(conn(&moon, "site-udp").encap, Some(true));
    assert_eq!(conn(&moon, "mismatch").proposals, ["aes128-sha1-modp1024"]);

    let kinds: Vec<(&str, &str, usize)> =
        moon.secrets.iter().map(|s| (s.name.as_str(), s.kind.as_str(), s.ids.len())).collect();
    assert_eq!(kinds, [("ike-site", "ike", 2), ("ike-udp", "ike", 2), ("ike-star", "ike", 1)]);
    assert_eq!(moon.secrets[0].ids, ["moon.example.net", "sun.example.net"]);
    // Every secret was redacted through the context, at the line of its `secret =`.
    assert_eq!(ctx.redactions.len(), 3);
    assert!(ctx.redactions.iter().all(|r| r.kind == RedactionKind::IpsecSecret));
    let psk_line = text.lines().position(|l| l.contains(SITE_PSK)).unwrap() + 1;
    assert_eq!(
        ctx.redactions[0].location,
        Location::line("hosts/x/swanctl/live/moon/swanctl.conf", u32::try_from(psk_line).unwrap())
    );
}

#[test]
fn equal_psks_in_two_files_have_equal_fingerprints_and_never_leak() {
    let mut ctx = ParseContext::new(Redactor::from_salt("bundle-salt"));
    let moon = parse_with(&mut ctx, "live/moon/swanctl.conf");
    let sun = parse_with(&mut ctx, "live/sun/swanctl.conf");
    let fp = |c: &SwanctlConfig, name: &str| {
        c.secrets.iter().find(|s| s.name == name).and_then(|s| s.secret.clone()).expect("secret")
    };
    assert_eq!(fp(&moon, "ike-site"), fp(&sun, "ike-site"));
    assert_eq!(fp(&moon, "ike-udp"), fp(&sun, "ike-udp"));
    assert_ne!(fp(&moon, "ike-site"), fp(&moon, "ike-udp"));
    assert_ne!(fp(&moon, "ike-site"), fp(&moon, "ike-star"));
    // Fingerprint of the value as written after unquoting (0s... is not decoded).
    let r = Redactor::from_salt("bundle-salt");
    assert_eq!(fp(&moon, "ike-site").fingerprint, r.fingerprint(SITE_PSK));
    assert_eq!(fp(&moon, "ike-udp").fingerprint, r.fingerprint(UDP_PSK_AS_WRITTEN));

    let serialized =
        serde_json::to_string(&(&moon.connections, &moon.secrets, &sun.connections, &sun.secrets, &ctx.redactions))
            .unwrap();
    for secret in [SITE_PSK, UDP_PSK_AS_WRITTEN, UDP_PSK_DECODED, "nsh2-Star-PSK-unused-3vLp", "bnNoMi1maXh0dXJl"] {
        assert!(!serialized.contains(secret), "{secret} leaked");
    }
    assert!(serialized.contains(&fp(&moon, "ike-site").fingerprint));
}

#[test]
fn secrets_of_every_kind() {
    let mut ctx = ParseContext::new(Redactor::from_salt("t"));
    let c = parse_with(&mut ctx, "examples/secrets-all-kinds.conf");
    assert!(c.connections.is_empty());
    let kinds: Vec<&str> = c.secrets.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ike", "ike", "ike", "ike", "ike", "eap", "xauth", "ntlm", "ppk", "private", "rsa", "ecdsa", "pkcs8",
            "pkcs12", "token"
        ]
    );
    let by_name = |n: &str| c.secrets.iter().find(|s| s.name == n).unwrap();
    assert_eq!(by_name("ike-3").ids, ["192.168.0.1", "roadwarrior"]);
    assert_eq!(by_name("ike-4").ids, Vec::<String>::new());
    assert!(by_name("ecdsa-1").secret.is_none(), "a key file without passphrase has no secret");
    assert!(by_name("token-1").secret.is_some(), "a token's pin is its secret");
    // The same passphrase in two sections gives the same fingerprint.
    assert_eq!(by_name("private-moon").secret, by_name("rsa-carol").secret);
    assert_ne!(by_name("ike-1").secret, by_name("ike-2").secret);
    let r = Redactor::from_salt("t");
    assert_eq!(by_name("ike-2").secret.as_ref().unwrap().fingerprint, r.fingerprint("supersecure"));
    assert_eq!(by_name("ike-1").secret.as_ref().unwrap().fingerprint, r.fingerprint("0x45a30759df97dc26a15b88ff"));
    // strongSwan's lexer: the double-quoted parts are strings, the rest words, joined by spaces.
    assert_eq!(by_name("ike-4").secret.as_ref().unwrap().fingerprint, r.fingerprint("'My home is my castle !'"));
    assert_eq!(ctx.redactions.len(), 14);
    let serialized = serde_json::to_string(&(&c.secrets, &ctx.redactions)).unwrap();
    for s in
        ["supersecure", "45a30759df97dc26a15b88ff", "v+NkxY9LLZvwj4qCC2o", "Ar3etTnp", "123456", "p8pass", "castle"]
    {
        assert!(!serialized.contains(s), "{s} leaked");
    }
}

#[test]
fn auth_rounds_children_and_time_units() {
    let mut ctx = ParseContext::new(Redactor::from_salt("t"));
    let rw = parse_with(&mut ctx, "examples/rw-multi-auth.conf");
    assert_eq!(rw.includes, ["conf.d/*.conf"]);
    let c = conn(&rw, "rw");
    assert_eq!(c.version, 2);
    assert!(c.remote_addrs.is_empty());
    let remote: Vec<(&str, Option<&str>)> =
        c.remote_auth.iter().map(|a| (a.round.as_str(), a.auth.as_deref())).collect();
    assert_eq!(remote, [("remote", Some("pubkey")), ("remote-eap", Some("eap-radius"))]);
    assert_eq!(c.remote_auth[1].id, None);
    assert_eq!(c.settings.get("remote-eap.eap_id").map(String::as_str), Some("%any"));
    assert_eq!((c.rekey_time, c.dpd_delay, c.dpd_timeout), (Some(86_400), Some(60), Some(120)));
    let dmz = c.children.iter().find(|ch| ch.name == "dmz").unwrap();
    assert_eq!(dmz.local_ts, ["10.1.2.0/24[tcp/443]", "10.1.2.10/32[udp/53]"]);
    assert!(dmz.remote_ts.is_empty());
    assert_eq!(dmz.esp_proposals, ["aes256gcm16-ecp384", "aes128gcm16-ecp256"]);
    assert_eq!((dmz.rekey_time, dmz.life_time), (Some(1200), Some(1440)));
    assert_eq!(dmz.start_action.as_deref(), Some("trap"));
    let net = c.children.iter().find(|ch| ch.name == "net").unwrap();
    // The value runs to the end of the line, blanks inside kept as one space.
    assert_eq!(net.settings.get("updown").map(String::as_str), Some("/usr/local/libexec/ipsec/_updown iptables"));

    let n2n = parse_with(&mut ctx, "examples/net2net-times.conf");
    let gw = conn(&n2n, "gw-gw");
    assert_eq!(gw.remote_addrs, ["192.168.0.2", "192.168.0.3"]);
    assert_eq!(gw.proposals, ["aes128-sha256-x25519", "aes256-sha384-ecp384"]);
    assert_eq!((gw.reauth_time, gw.over_time, gw.dpd_delay), (Some(10_800), Some(3600), Some(30)));
    assert_eq!((gw.encap, gw.mobike), (Some(true), Some(false)));
    let times: Vec<(Option<u64>, Option<u64>)> = gw.children.iter().map(|c| (c.rekey_time, c.life_time)).collect();
    assert_eq!(times, [(Some(5400), None), (Some(5400), Some(7200))]);
    assert_eq!(gw.children[1].mode.as_deref(), Some("transport"));
    let v1 = conn(&n2n, "ikev1-xauth");
    assert_eq!(v1.version, 1);
    let local: Vec<&str> = v1.local_auth.iter().map(|a| a.round.as_str()).collect();
    assert_eq!(local, ["local-psk", "local-xauth"]);
    assert_eq!(v1.local_auth[1].auth.as_deref(), Some("xauth"));
    assert_eq!(v1.settings.get("aggressive").map(String::as_str), Some("yes"));
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
}

#[test]
fn bad_values_warn_and_merge_rules_follow_strongswan() {
    let text = "connections {\n  a {\n    rekey_time = 4 hours\n    encap = maybe\n    version = 3\n  }\n}\n\
                connections { a { proposals = default\n rekey_time = 2h } }\n\
                connections { b : a, base { remote_addrs = 10.0.0.1 } }\n\
                secrets { weird-1 { secret = x } }\n";
    let mut ctx = ParseContext::new(Redactor::from_salt("t"));
    let c = swanctl_conf::parse(&Source::new("s.conf", text), &mut ctx).unwrap();
    let a = conn(&c, "a");
    // A repeated section extends the first one; a repeated key keeps the last value.
    assert_eq!(a.proposals, ["default"]);
    assert_eq!(a.rekey_time, Some(7200));
    assert_eq!((a.encap, a.version), (None, 0));
    assert_eq!(conn(&c, "b").remote_addrs, ["10.0.0.1"]);
    assert_eq!(c.secrets[0].kind, "weird");
    let msgs: Vec<String> = ctx.issues.iter().map(|i| format!("{}: {}", i.location, i.message)).collect();
    assert!(msgs.iter().any(|m| m.starts_with("s.conf:4:") && m.contains("encap")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.starts_with("s.conf:5:") && m.contains("version")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("inherits from a, base")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("weird-1")), "{msgs:?}");
    // The warning about rekey_time was replaced with the merged value, not reported.
    assert!(!msgs.iter().any(|m| m.contains("rekey_time")), "{msgs:?}");
}

#[test]
fn syntax_errors_name_line_and_column() {
    let cases: [(&str, usize, usize, &str); 8] = [
        ("connections {\n  a {\n    version = 2\n  }\n", 1, 1, "section `connections` is never closed"),
        ("connections {\n}\n}\n", 3, 1, "unbalanced `}`"),
        ("connections {\n  a {\n    foo bar\n  }\n}\n", 3, 9, "expected `=` or `{` after `foo`"),
        ("a {\n  k = \"never closed\n}\n", 2, 7, "unterminated string"),
        ("a {\n  \"k\" = v\n}\n", 2, 3, "unexpected string"),
        ("a\n\n{\n}\n", 2, 1, "expected `{` to open section `a`"),
        ("= x\n", 1, 1, "`=` without a key"),
        ("\u{0}\u{1}\u{2}garbage", 1, 11, "expected `=` or `{`"),
    ];
    for (text, line, column, what) in cases {
        let mut ctx = ParseContext::new(Redactor::from_salt("t"));
        let err = swanctl_conf::parse(&Source::new("hosts/gw/swanctl/swanctl.conf", text), &mut ctx).unwrap_err();
        assert_eq!(err.path, "hosts/gw/swanctl/swanctl.conf");
        assert_eq!((err.line, err.column), (Some(line), Some(column)), "{text:?}: {err}");
        assert!(err.message.contains(what), "{text:?}: {err}");
    }
    // An empty file (an empty conf.d snippet) is valid and has nothing in it.
    let c = swanctl_conf::parse(&Source::new("e.conf", ""), &mut ParseContext::new(Redactor::from_salt("t"))).unwrap();
    assert!(c.connections.is_empty() && c.secrets.is_empty());
    // Deep nesting does not exhaust the stack.
    let deep = "a {".repeat(100_000);
    let err = swanctl_conf::parse(&Source::new("d.conf", &deep), &mut ParseContext::new(Redactor::from_salt("t")))
        .unwrap_err();
    assert!(err.message.contains("never closed"));
}

#[test]
fn psk_never_reaches_the_bundle_model() {
    let dir = tempfile::tempdir().unwrap();
    for host in ["moon", "sun"] {
        let swanctl = dir.path().join(format!("hosts/{host}/swanctl"));
        std::fs::create_dir_all(&swanctl).unwrap();
        std::fs::copy(fixture_path(&format!("live/{host}/swanctl.conf")), swanctl.join("swanctl.conf")).unwrap();
        std::fs::copy(
            fixture_path(&format!("live/{host}-list-sas.txt")),
            dir.path().join(format!("hosts/{host}/swanctl-list-sas.txt")),
        )
        .unwrap();
    }
    let options = BundleOptions { salt: Some("s".into()), ..BundleOptions::default() };
    let net = read_bundle(dir.path(), &options).unwrap();
    assert!(net.ingest_issues.is_empty(), "{:?}", net.ingest_issues);
    let moon = net.hosts.iter().find(|h| h.name == "moon").unwrap();
    assert_eq!(moon.ipsec.connections.len(), 4);
    assert!(moon.ipsec.sas_collected);
    assert_eq!(moon.ipsec.sas.len(), 2);
    let json = serde_json::to_string(&net).unwrap();
    for secret in [SITE_PSK, UDP_PSK_AS_WRITTEN, UDP_PSK_DECODED] {
        assert!(!json.contains(secret), "{secret} leaked into the model");
    }
    assert_eq!(net.redactions.len(), 5);
}
