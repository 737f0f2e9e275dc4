//! WireGuard parsers on a real `wg show` dump of two wireguard-go gateways that completed a
//! handshake, and on the wg-quick configs they were started from
//! (tests/fixtures/make-host-fixtures.sh). Keys in the fixtures are throwaway keys; the
//! tests check that none of them reaches the parsed model.

use ipnet::IpNet;
use netsleuth_ingest::host::wireguard;
use netsleuth_ingest::{ParseContext, Redactor, Source};
use netsleuth_model::wireguard::WireGuardInterface;
use netsleuth_model::{Location, RedactionKind};

fn fixture(rel: &str) -> String {
    let path = format!("{}/../../tests/fixtures/host/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read fixture {path}: {e}"))
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

const GW1_DUMP: &str = "hosts/gw-1/wg-dump.txt";
const GW1_CONF: &str = "hosts/gw-1/wireguard/nsh1-wga.conf";
const GW2_DUMP: &str = "hosts/gw-2/wg-dump.txt";
const GW2_CONF: &str = "hosts/gw-2/wireguard/nsh1-wgb.conf";

/// Every secret in the fixtures: private keys and the PSK, from the configs and the dumps.
fn fixture_secrets() -> Vec<String> {
    let mut out = Vec::new();
    for conf in ["gw-1/wireguard/nsh1-wga.conf", "gw-2/wireguard/nsh1-wgb.conf"] {
        for line in fixture(conf).lines() {
            if let Some((k, v)) = line.split_once('=') {
                if matches!(k.trim(), "PrivateKey" | "PresharedKey") {
                    out.push(v.trim().to_string());
                }
            }
        }
    }
    for dump in ["gw-1/wg-dump.txt", "gw-2/wg-dump.txt"] {
        for line in fixture(dump).lines() {
            let f: Vec<&str> = line.split('\t').collect();
            match f.len() {
                5 => out.push(f[1].to_string()),
                9 if f[2] != "(none)" => out.push(f[2].to_string()),
                _ => {}
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn dump(rel: &str, path: &str, ctx: &mut ParseContext) -> Vec<WireGuardInterface> {
    let text = fixture(rel);
    wireguard::parse_dump(&Source::new(path, &text), ctx).unwrap()
}

fn config(rel: &str, path: &str, name: &str, ctx: &mut ParseContext) -> WireGuardInterface {
    let text = fixture(rel);
    wireguard::parse_config(&Source::new(path, &text), name, ctx).unwrap()
}

#[test]
fn gw1_dump_has_a_real_handshake() {
    let mut ctx = ParseContext::default();
    let wg = dump("gw-1/wg-dump.txt", GW1_DUMP, &mut ctx);
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    assert_eq!(wg.len(), 1);
    let i = &wg[0];
    assert_eq!(i.name, "nsh1-wga");
    assert!(i.from_runtime);
    assert_eq!((i.listen_port, i.fwmark), (Some(51820), Some(0xca6c)));
    assert!(i.private_key.is_some());
    assert_eq!(i.origin, Location::line(GW1_DUMP, 1));
    assert_eq!(i.peers.len(), 2);

    let gw2 = &i.peers[0];
    assert_eq!(gw2.endpoint.as_deref(), Some("203.0.113.2:51821"));
    assert_eq!(gw2.allowed_ips, vec![net("10.10.0.2/32"), net("10.20.0.0/16")]);
    // Captured in 2026: a real handshake time, not 0/never.
    assert!(gw2.latest_handshake.is_some_and(|t| t > 1_700_000_000), "{:?}", gw2.latest_handshake);
    assert!(gw2.rx_bytes.is_some_and(|b| b > 0) && gw2.tx_bytes.is_some_and(|b| b > 0));
    assert_eq!(gw2.persistent_keepalive, Some(25));
    assert!(gw2.preshared_key.is_some());
    assert_eq!(gw2.origin, Location::line(GW1_DUMP, 2));

    let laptop = &i.peers[1];
    assert!(laptop.allowed_ips.is_empty(), "`(none)` is an empty list");
    assert_eq!((laptop.endpoint.as_ref(), laptop.latest_handshake), (None, None));
    assert_eq!((laptop.rx_bytes, laptop.persistent_keepalive), (Some(0), None));
    assert_eq!(laptop.preshared_key, None);

    let kinds: Vec<RedactionKind> = ctx.redactions.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [RedactionKind::WireguardPrivateKey, RedactionKind::WireguardPresharedKey]);
    assert_eq!(ctx.redactions[1].location, Location::line(GW1_DUMP, 2));
}

#[test]
fn both_ends_agree_on_keys() {
    let mut ctx = ParseContext::new(Redactor::from_salt("test"));
    let gw1 = dump("gw-1/wg-dump.txt", GW1_DUMP, &mut ctx).remove(0);
    let gw2 = dump("gw-2/wg-dump.txt", GW2_DUMP, &mut ctx).remove(0);
    assert_eq!(gw2.peers.len(), 1);
    assert_eq!(Some(&gw1.peers[0].public_key), gw2.public_key.as_ref());
    assert_eq!(Some(&gw2.peers[0].public_key), gw1.public_key.as_ref());
    // Same PSK on both sides: same fingerprint; the private keys differ.
    assert_eq!(gw1.peers[0].preshared_key, gw2.peers[0].preshared_key);
    assert_ne!(gw1.private_key, gw2.private_key);
    assert!(gw2.peers[0].latest_handshake.is_some());
    assert_eq!((gw2.fwmark, gw2.peers[0].persistent_keepalive), (None, None));
}

#[test]
fn configs() {
    let mut ctx = ParseContext::new(Redactor::from_salt("test"));
    let c = config("gw-1/wireguard/nsh1-wga.conf", GW1_CONF, "nsh1-wga", &mut ctx);
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    assert!(!c.from_runtime);
    assert_eq!(c.addresses, vec![net("10.10.0.1/24"), net("fd00:10::1/64")]);
    assert_eq!(
        (c.listen_port, c.mtu, c.table.as_deref(), c.fwmark),
        (Some(51820), Some(1420), Some("123"), Some(0xca6c))
    );
    assert_eq!(c.origin, Location::line(GW1_CONF, 2));
    assert_eq!(c.peers.len(), 2);
    assert_eq!(c.peers[0].allowed_ips, vec![net("10.10.0.2/32"), net("10.20.0.0/16")]);
    assert_eq!(c.peers[0].endpoint.as_deref(), Some("203.0.113.2:51821"));
    assert_eq!(c.peers[0].persistent_keepalive, Some(25));
    assert!(c.peers[1].allowed_ips.is_empty());
    assert_eq!(c.peers[1].origin, Location::line(GW1_CONF, 20));

    let d = dump("gw-1/wg-dump.txt", GW1_DUMP, &mut ctx).remove(0);
    assert_eq!(c.private_key, d.private_key, "config and runtime hold the same private key");
    assert_eq!(c.peers[0].preshared_key, d.peers[0].preshared_key);
    assert_eq!(c.peers[0].public_key, d.peers[0].public_key);

    let c2 = config("gw-2/wireguard/nsh1-wgb.conf", GW2_CONF, "nsh1-wgb", &mut ctx);
    assert_eq!((c2.table.as_deref(), c2.fwmark, c2.peers[0].persistent_keepalive), (Some("off"), None, None));
}

#[test]
fn merge_runtime_wins_config_adds() {
    let mut ctx = ParseContext::default();
    let runtime = dump("gw-1/wg-dump.txt", GW1_DUMP, &mut ctx);
    let conf = config("gw-1/wireguard/nsh1-wga.conf", GW1_CONF, "nsh1-wga", &mut ctx);
    let other = config("gw-2/wireguard/nsh1-wgb.conf", GW2_CONF, "nsh1-wgb", &mut ctx);
    let merged = wireguard::merge(runtime.clone(), vec![conf.clone(), other]);
    assert_eq!(merged.len(), 2, "one merged interface and one config-only interface");
    let m = &merged[0];
    assert!(m.from_runtime);
    assert_eq!(m.origin, Location::line(GW1_DUMP, 1));
    assert_eq!(m.addresses, conf.addresses);
    assert_eq!((m.mtu, m.table.as_deref()), (Some(1420), Some("123")));
    assert_eq!(m.peers.len(), 2, "both peers are in the runtime: nothing added");
    assert!(m.peers[0].latest_handshake.is_some(), "runtime peer state kept");
    assert!(!merged[1].from_runtime);
    assert_eq!(merged[1].name, "nsh1-wgb");

    // Runtime without the laptop peer (e.g. removed with `wg set ... remove`): the config's
    // peer is kept, marked by its config origin; runtime AllowedIPs are not overwritten.
    let text = fixture("gw-1/wg-dump.txt");
    let mut lines: Vec<&str> = text.lines().take(2).collect();
    let stolen = lines[1].replace("10.10.0.2/32,10.20.0.0/16", "10.10.0.2/32");
    lines[1] = &stolen;
    let partial = lines.join("\n");
    let runtime = wireguard::parse_dump(&Source::new(GW1_DUMP, &partial), &mut ctx).unwrap();
    let merged = wireguard::merge(runtime, vec![conf]);
    assert_eq!(merged.len(), 1);
    assert_eq!(merged[0].peers.len(), 2);
    assert_eq!(merged[0].peers[0].allowed_ips, vec![net("10.10.0.2/32")], "runtime AllowedIPs win");
    assert_eq!(merged[0].peers[1].origin, Location::line(GW1_CONF, 20));
    assert_eq!(merged[0].peers[1].latest_handshake, None);
}

#[test]
fn no_secret_reaches_the_model() {
    let secrets = fixture_secrets();
    assert_eq!(secrets.len(), 3, "two private keys and one PSK: {}", secrets.len());
    let mut ctx = ParseContext::default();
    let runtime: Vec<_> = [("gw-1/wg-dump.txt", GW1_DUMP), ("gw-2/wg-dump.txt", GW2_DUMP)]
        .iter()
        .flat_map(|(rel, path)| dump(rel, path, &mut ctx))
        .collect();
    let configs = vec![
        config("gw-1/wireguard/nsh1-wga.conf", GW1_CONF, "nsh1-wga", &mut ctx),
        config("gw-2/wireguard/nsh1-wgb.conf", GW2_CONF, "nsh1-wgb", &mut ctx),
    ];
    let merged = wireguard::merge(runtime.clone(), configs.clone());
    let json = serde_json::to_string(&(&runtime, &configs, &merged, &ctx.redactions, &ctx.issues)).unwrap();
    let debug = format!("{runtime:?}{configs:?}{merged:?}{ctx:?}");
    for s in &secrets {
        assert!(!json.contains(s.as_str()), "secret leaked into the serialized model");
        assert!(!debug.contains(s.as_str()), "secret leaked into Debug output");
        // Not even half of it.
        assert!(!json.contains(&s[..22]));
    }
    assert_eq!(ctx.redactions.len(), 8, "2 private + 2 PSK in dumps, 2 private + 2 PSK in configs");
    assert!(json.contains("fingerprint"));
}

// ---------------------------------------------------------------- broken input

#[test]
fn bad_dump_lines_name_line_and_expectation() {
    let good = fixture("gw-1/wg-dump.txt");
    let lines: Vec<&str> = good.lines().collect();
    // The line with field `i` replaced.
    let with = |line: &str, i: usize, v: &str| {
        let mut f: Vec<&str> = line.split('\t').collect();
        f[i] = v;
        f.join("\t")
    };
    let (iface, peer) = (lines[0], lines[1]);
    let cases: Vec<(String, usize, &str)> = vec![
        (format!("{iface}\n{peer}\nnsh1-wga\tonly-three\tfields"), 3, "expected 5"),
        (format!("{iface}\n{}", with(peer, 8, "lots")), 2, "persistent keepalive"),
        (format!("{iface}\n{}", with(peer, 4, "10.10.0.2/32,10.20.0.0/99")), 2, "allowed IP"),
        (format!("{iface}\n{}", with(peer, 5, "-1")), 2, "latest handshake"),
        (format!("{iface}\n{}", with(peer, 6, "1e3")), 2, "received bytes"),
        (with(iface, 3, "70000"), 1, "over 65535"),
        (with(iface, 4, "on"), 1, "fwmark"),
        (with(iface, 0, "name with spaces"), 1, "interface name"),
        (format!("{iface}\n{}", with(peer, 3, "203.0.113.2:51821\textra")), 2, "10 tab"),
        ("\u{0}\u{1}garbage\u{fffd}".to_string(), 1, "1 tab-separated"),
    ];
    for (text, line, needle) in cases {
        let mut ctx = ParseContext::default();
        let err = wireguard::parse_dump(&Source::new(GW1_DUMP, &text), &mut ctx).unwrap_err();
        assert_eq!(err.path, GW1_DUMP);
        assert_eq!(err.line, Some(line), "{err}");
        assert!(err.to_string().contains(needle), "{err} should mention {needle:?}");
        // Even on error, a key already seen was only ever fingerprinted.
        for s in fixture_secrets() {
            assert!(!err.to_string().contains(&s));
        }
    }
    let bad_key = lines[1].replacen('\t', "\tnot-a-key", 1);
    let err = wireguard::parse_dump(&Source::new(GW1_DUMP, &bad_key), &mut ParseContext::default()).unwrap_err();
    assert!(err.message.contains("base64"), "{err}");
}

#[test]
fn empty_dump_and_peer_before_interface() {
    let mut ctx = ParseContext::default();
    assert!(wireguard::parse_dump(&Source::new(GW1_DUMP, ""), &mut ctx).unwrap().is_empty());
    let text = fixture("gw-1/wg-dump.txt");
    let peer_only: String = text.lines().skip(1).collect::<Vec<_>>().join("\r\n");
    let wg = wireguard::parse_dump(&Source::new(GW1_DUMP, &peer_only), &mut ctx).unwrap();
    assert_eq!((wg.len(), wg[0].peers.len()), (1, 2));
    assert_eq!(ctx.issues.len(), 1);
    assert_eq!(ctx.issues[0].location, Location::line(GW1_DUMP, 1));
}

#[test]
fn config_syntax_and_values() {
    let text = "\
# hand-written: keys in other cases, comments, repeated lists
[interface]
privatekey = aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd28= # trailing comment
ADDRESS = 10.1.0.1, 10.2.0.1/16
Address = fd00::1/64
ListenPort = 99999
MTU = big
FwMark = 0x10
Frobnicate = yes

[PEER]
publickey = BIvm/ZYiBW4EW5sNdcA4R0d9DgOFHLY3QE6YS7Tsgh0=
allowedips = 10.0.0.0/8,, 10.300.0.0/16
AllowedIPs = 192.168.0.0/16
PersistentKeepalive = off

[Peer]
Endpoint = 203.0.113.9:51820
";
    let mut ctx = ParseContext::default();
    let c = wireguard::parse_config(&Source::new("w/x.conf", text), "x", &mut ctx).unwrap();
    assert_eq!(c.addresses, vec![net("10.1.0.1/32"), net("10.2.0.1/16"), net("fd00::1/64")]);
    assert_eq!((c.listen_port, c.mtu, c.fwmark), (None, None, Some(16)));
    assert_eq!(c.peers.len(), 1, "the peer without PublicKey is dropped");
    assert_eq!(c.peers[0].allowed_ips, vec![net("10.0.0.0/8"), net("192.168.0.0/16")]);
    assert_eq!(c.peers[0].persistent_keepalive, None);
    let lines: Vec<Option<u32>> = ctx
        .issues
        .iter()
        .map(|i| match &i.location {
            Location::File { line, .. } => *line,
            _ => None,
        })
        .collect();
    assert_eq!(lines, [Some(6), Some(7), Some(9), Some(13), Some(17)], "{:#?}", ctx.issues);
    assert_eq!(ctx.redactions.len(), 1);
    assert!(!format!("{c:?}").contains("aGVsbG8"));

    for (bad, line) in [
        ("PrivateKey = x\n", 1),
        ("[Interface]\nthis line has no equals sign\n", 2),
        ("[Interface]\n[WireGuardPeer]\nPublicKey = x\n", 2),
    ] {
        let err =
            wireguard::parse_config(&Source::new("w/y.conf", bad), "y", &mut ParseContext::default()).unwrap_err();
        assert_eq!((err.path.as_str(), err.line), ("w/y.conf", Some(line)), "{err}");
    }
    let mut ctx = ParseContext::default();
    let empty = wireguard::parse_config(&Source::new("w/z.conf", ""), "z", &mut ctx).unwrap();
    assert!(empty.peers.is_empty());
    assert!(ctx.issues[0].message.contains("no [Interface]"));
}

#[test]
fn huge_line_is_an_error_with_its_line() {
    let huge = format!("[Interface]\nAddress = {}\n", "1".repeat(1 << 20));
    let mut ctx = ParseContext::default();
    let c = wireguard::parse_config(&Source::new("w/h.conf", &huge), "h", &mut ctx).unwrap();
    assert!(c.addresses.is_empty());
    assert!(ctx.issues[0].message.len() < 200, "message is cut, not a megabyte");
    let err = wireguard::parse_dump(&Source::new(GW1_DUMP, &"x".repeat(1 << 20)), &mut ctx).unwrap_err();
    assert_eq!(err.line, Some(1));
    assert!(err.message.len() < 400);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn dump_never_panics(text in "([a-z0-9()=+/.:,\\[\\]-]{0,12}[\t\n]){0,30}") {
            let _ = wireguard::parse_dump(&Source::new("d", &text), &mut ParseContext::default());
        }

        #[test]
        fn config_never_panics(text in "((\\[(Interface|Peer|x)\\]|[A-Za-z]{0,12} ?= ?[0-9a-z./,:# ]{0,20}|#.{0,5}|\\PC{0,10})\n){0,20}") {
            let mut ctx = ParseContext::default();
            let _ = wireguard::parse_config(&Source::new("c.conf", &text), "c", &mut ctx);
        }

        #[test]
        fn nine_fields_parse_or_fail_cleanly(fields in proptest::collection::vec("\\PC{0,8}", 9)) {
            let line = fields.join("\t");
            let _ = wireguard::parse_dump(&Source::new("d", &line), &mut ParseContext::default());
        }
    }
}
