//! Property tests: no input, however broken, panics the nft, iptables-save, swanctl.conf
//! or `swanctl --list-sas` parsers. Inputs are arbitrary text, and text built from the
//! formats' own vocabulary so the generator reaches past the first line.

use netsleuth_ingest::firewall::{iptables, nft};
use netsleuth_ingest::ipsec::{swanctl_conf, swanctl_sas};
use netsleuth_ingest::{ParseContext, Redactor, Source};
use proptest::prelude::*;
use serde_json::{json, Value};

fn ctx() -> ParseContext {
    ParseContext::new(Redactor::from_salt("prop"))
}

fn run_all(text: &str) {
    let src = Source::new("hosts/p/file", text);
    let _ = nft::parse(&src, &mut ctx());
    let _ = iptables::parse(&src, "ip", &mut ctx());
    let _ = swanctl_conf::parse(&src, &mut ctx());
    let _ = swanctl_sas::parse(&src, &mut ctx());
}

/// Lines made of iptables-save words, quotes, brackets and counters.
fn iptables_text() -> impl Strategy<Value = String> {
    let word = prop::sample::select(vec![
        "-A",
        "INPUT",
        "FORWARD",
        "-s",
        "-d",
        "!",
        "-p",
        "tcp",
        "udp",
        "icmp",
        "47",
        "-m",
        "multiport",
        "--dports",
        "22,80:90,x",
        "--dport",
        "1:",
        ":",
        "65536",
        "conntrack",
        "--ctstate",
        "NEW,ESTABLISHED",
        "set",
        "--match-set",
        "s",
        "src",
        "mark",
        "--mark",
        "0x10/0xzz",
        "0xffffffff/0x1",
        "comment",
        "--comment",
        "\"a b",
        "\"x\"",
        "\\",
        "-j",
        "-g",
        "ACCEPT",
        "DNAT",
        "--to-destination",
        "KUBE",
        "10.0.0.0/8",
        "::1/129",
        "10.0.0.0/255.0.255.0",
        "[1:2]",
        "[x",
        "*filter",
        "*nat",
        ":INPUT",
        "DROP",
        "-",
        "[0:0]",
        "COMMIT",
        "#",
        "é",
        "\t",
        "\r",
        "icmp6",
        "--icmpv6-type",
        "--icmp-type",
    ]);
    let line = prop::collection::vec(word, 0..12).prop_map(|w| w.join(" "));
    prop::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
}

/// Text made of swanctl.conf syntax pieces.
fn swanctl_text() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "connections",
        "secrets",
        "{",
        "}",
        "=",
        "\"",
        "\\",
        "#c",
        "\n",
        " ",
        "a",
        "local",
        "local-1",
        "remote",
        "children",
        "c1",
        "rekey_time",
        "4h",
        "99999999999999999999d",
        "version",
        "2",
        "x",
        "secret",
        "ike-1",
        "token-1",
        "pin",
        "id-1",
        "include",
        ":",
        ",",
        "\\\n",
        "é",
        "\r\n",
        "proposals",
        "aes-sha",
        "encap",
        "yes",
    ]);
    prop::collection::vec(piece, 0..60).prop_map(|p| p.concat())
}

/// `swanctl --list-sas` lines, some cut short.
fn sas_text() -> impl Strategy<Value = String> {
    let line = prop::sample::select(vec![
        "site: #2, ESTABLISHED, IKEv2, e03df7b6819862ec_i* cff1daa2b438aa57_r",
        "x: #",
        "x: #1, A, IKEv",
        "  local  'moon' @ 198.51.100.1[4500]",
        "  remote ' @ ",
        "  remote '",
        "  AES_CBC-256/HMAC_SHA2_256_128",
        "  established 2s ago, rekeying in s",
        "  net: #1, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:",
        "  net: #1, reqid , , , :",
        "    in  391a4d25,    225 bytes,     3 packets,     2s ago",
        "    out ,, bytes, packets",
        "    local  10.1.0.0/16",
        "    remote",
        "plugin 'x': failed",
        "",
        "é",
    ]);
    (prop::collection::vec(line, 0..20), any::<usize>()).prop_map(|(lines, cut)| {
        let text = lines.join("\n");
        // Cut at a char boundary somewhere.
        let cut = cut % (text.len() + 1);
        let cut = (0..=cut).rev().find(|c| text.is_char_boundary(*c)).unwrap_or(0);
        text[..cut].to_string()
    })
}

/// Arbitrary JSON built from the keys nft uses.
fn nft_value() -> impl Strategy<Value = Value> {
    let key = prop::sample::select(vec![
        "match", "left", "right", "op", "payload", "protocol", "field", "meta", "key", "set", "range", "prefix",
        "addr", "len", "ct", "counter", "packets", "accept", "jump", "target", "&", "concat", "map", "data", "elem",
        "xt", "type", "name", "mangle", "value", "dnat", "port", "snat", "redirect", "limit", "vmap", "reject", "expr",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        prop::sample::select(vec![
            "saddr", "dport", "ip", "tcp", "==", "!=", "<", "in", "@s", "10.0.0.1", "mark", "state", "::"
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        run_all(&text);
    }

    #[test]
    fn iptables_like_text_never_panics(text in iptables_text()) {
        let src = Source::new("hosts/p/iptables-save.txt", &text);
        let _ = iptables::parse(&src, "ip", &mut ctx());
        let wrapped = format!("*filter\n:INPUT ACCEPT [0:0]\n{text}\nCOMMIT\n");
        let _ = iptables::parse(&Source::new("hosts/p/iptables-save.txt", &wrapped), "ip6", &mut ctx());
    }

    #[test]
    fn swanctl_like_text_never_panics(text in swanctl_text()) {
        let mut c = ctx();
        if let Ok(conf) = swanctl_conf::parse(&Source::new("hosts/p/swanctl/swanctl.conf", &text), &mut c) {
            // Whatever was parsed, secrets are only fingerprints.
            for s in &conf.secrets {
                if let Some(secret) = &s.secret {
                    prop_assert_eq!(secret.fingerprint.len(), 24);
                }
            }
        }
    }

    #[test]
    fn list_sas_like_text_never_panics(text in sas_text()) {
        let _ = swanctl_sas::parse(&Source::new("hosts/p/swanctl-list-sas.txt", &text), &mut ctx());
    }

    #[test]
    fn nft_like_json_never_panics(expr in prop::collection::vec(nft_value(), 0..6), chain in nft_value()) {
        let doc = json!({"nftables": [
            {"table": {"family": "inet", "name": "t"}},
            {"chain": chain},
            {"chain": {"family": "inet", "table": "t", "name": "c", "hook": "input", "prio": "x", "policy": "drop"}},
            {"rule": {"family": "inet", "table": "t", "chain": "c", "expr": expr}},
            {"rule": {"family": "inet", "table": "t", "chain": "c", "expr": [{"match": {"op": "==", "left": expr.first().cloned().unwrap_or(Value::Null), "right": expr.last().cloned().unwrap_or(Value::Null)}}]}},
        ]});
        let text = doc.to_string();
        let _ = nft::parse(&Source::new("hosts/p/nft.json", &text), &mut ctx());
    }
}
