//! `nft -j list ruleset` parser on real outputs captured in a lab namespace
//! (tests/fixtures/firewall, see README.firewall-ipsec.md) and on broken input.

use netsleuth_ingest::firewall::nft;
use netsleuth_ingest::{ParseContext, Redactor, Source};
use netsleuth_model::firewall::{Chain, FirewallSource, Hook, Match, PortRange, Ruleset, Verdict};
use netsleuth_model::Location;

fn fixture(name: &str) -> String {
    let path = format!("{}/../../tests/fixtures/firewall/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ctx() -> ParseContext {
    ParseContext::new(Redactor::from_salt("test"))
}

fn parse_fixture(name: &str) -> (Ruleset, ParseContext) {
    let text = fixture(name);
    let mut ctx = ctx();
    let r = nft::parse(&Source::new(&format!("hosts/node-1/{name}"), &text), &mut ctx).expect("parses");
    (r, ctx)
}

fn chain<'a>(r: &'a Ruleset, family: &str, table: &str, name: &str) -> &'a Chain {
    r.chain(family, table, name).unwrap_or_else(|| panic!("no chain {family} {table} {name}"))
}

#[test]
fn forward_base_chain_has_policy_drop() {
    let (r, ctx) = parse_fixture("nft.json");
    assert_eq!(r.source, FirewallSource::Nftables);
    let forward: Vec<_> = r.base_chains(Hook::Forward).collect();
    // inet filter forward (native) and ip/ip6 filter FORWARD (iptables-nft) all drop.
    let names: Vec<String> = forward.iter().map(|(t, c)| format!("{} {} {}", t.family, t.name, c.name)).collect();
    assert!(names.contains(&"inet filter forward".to_string()), "{names:?}");
    let (_, fwd) = forward.iter().find(|(t, c)| t.family == "inet" && c.name == "forward").unwrap();
    assert_eq!(fwd.policy, Some(Verdict::Drop));
    assert_eq!(fwd.chain_type.as_deref(), Some("filter"));
    assert_eq!(fwd.priority, Some(0));
    // Origin is the JSON pointer of the chain object.
    match &fwd.origin {
        Location::Json { path, pointer } => {
            assert_eq!(path, "hosts/node-1/nft.json");
            assert!(pointer.starts_with("/nftables/"), "{pointer}");
        }
        other => panic!("unexpected origin {other:?}"),
    }
    let input = chain(&r, "inet", "filter", "input");
    assert_eq!(input.policy, Some(Verdict::Accept));
    // Regular chains have neither hook nor policy.
    let kube = chain(&r, "inet", "filter", "kube-forward");
    assert_eq!((kube.hook, kube.policy.clone()), (None, None));
    // The nat chain of the native ruleset keeps its named priority as a number.
    assert_eq!(chain(&r, "ip", "kube-nat", "prerouting").priority, Some(-100));
    assert_eq!(chain(&r, "ip", "kube-nat", "postrouting").priority, Some(100));
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
}

#[test]
fn mss_clamp_rule_is_recognisable() {
    let (r, _) = parse_fixture("nft.json");
    let fwd = chain(&r, "inet", "filter", "forward");
    let first = &fwd.rules[0];
    assert_eq!(first.verdict, Some(Verdict::Other("tcp option maxseg size set rt mtu".to_string())));
    assert_eq!(first.text, "tcp flags syn tcp option maxseg size set rt mtu");
    assert!(first.matches.contains(&Match::Protocol { negated: false, protocol: "tcp".to_string() }));
    // iptables-nft's TCPMSS target shows up as an opaque xt target in the same JSON.
    let mangle = chain(&r, "ip", "mangle", "FORWARD");
    assert_eq!(mangle.rules[0].verdict, Some(Verdict::Other("xt target TCPMSS".to_string())));
}

#[test]
fn established_accept_pod_cidr_set_jump_and_counters() {
    let (r, _) = parse_fixture("nft.json");
    let fwd = chain(&r, "inet", "filter", "forward");
    let est = &fwd.rules[1];
    assert_eq!(
        est.matches,
        vec![Match::CtState { negated: false, states: vec!["established".into(), "related".into()] }]
    );
    assert_eq!(est.verdict, Some(Verdict::Accept));
    let pod = &fwd.rules[3];
    assert_eq!(pod.matches, vec![Match::SrcAddr { negated: false, nets: vec!["10.244.0.0/16".parse().unwrap()] }]);
    assert_eq!(pod.text, "ip saddr 10.244.0.0/16 accept");
    let mark = &fwd.rules[5];
    assert_eq!(mark.matches, vec![Match::Mark { negated: false, value: 0x4000, mask: Some(0x4000) }]);
    assert_eq!(mark.text, "meta mark & 0x00004000 == 0x00004000 accept");
    assert!(fwd.rules.iter().any(|r| r.verdict == Some(Verdict::Jump("kube-forward".into())) && r.matches.is_empty()));
    let goto = fwd.rules.iter().find(|r| r.verdict == Some(Verdict::Goto("kube-egress".into()))).unwrap();
    assert_eq!(
        goto.matches,
        vec![
            Match::InInterface { negated: true, name: "cni0".into() },
            Match::OutInterface { negated: false, name: "eth0".into() }
        ]
    );

    let input = chain(&r, "inet", "filter", "input");
    let set_rule = &input.rules[3];
    assert_eq!(
        set_rule.matches,
        vec![
            Match::SrcSet { negated: false, set: "allowed_nodes".into() },
            Match::Protocol { negated: false, protocol: "tcp".into() },
            Match::DstPort { negated: false, ports: vec![PortRange::single(6443), PortRange::single(10250)] },
        ]
    );
    // udp dport 51820 counter accept: real traffic went through it while capturing.
    let wg = &input.rules[4];
    assert_eq!(wg.comment.as_deref(), Some("wireguard"));
    assert_eq!(
        wg.matches,
        vec![
            Match::Protocol { negated: false, protocol: "udp".into() },
            Match::DstPort { negated: false, ports: vec![PortRange::single(51820)] }
        ]
    );
    assert_eq!(wg.verdict, Some(Verdict::Accept));
    let c = wg.counters.expect("counter");
    assert_eq!((c.packets, c.bytes), (3, 141));
    // A rule that only counts has no verdict.
    let output = chain(&r, "inet", "filter", "output");
    let count_only = output.rules.last().unwrap();
    assert_eq!(count_only.verdict, None);
    assert!(count_only.counters.is_some_and(|c| c.packets > 0));
}

#[test]
fn ports_ranges_sets_and_address_ranges() {
    let (r, _) = parse_fixture("nft.json");
    let kf = chain(&r, "inet", "filter", "kube-forward");
    let ports = kf.rules.iter().find(|r| r.text.starts_with("tcp sport 1024-65535")).unwrap();
    assert!(ports
        .matches
        .contains(&Match::SrcPort { negated: false, ports: vec![PortRange { start: 1024, end: 65535 }] }));
    assert!(ports.matches.contains(&Match::DstPort {
        negated: false,
        ports: vec![PortRange::single(80), PortRange::single(443), PortRange { start: 8080, end: 8090 }]
    }));
    let reject = kf.rules.iter().find(|r| r.verdict == Some(Verdict::Reject)).unwrap();
    let Match::DstAddr { negated: false, nets } = &reject.matches[0] else { panic!("{:?}", reject.matches) };
    let nets: Vec<String> = nets.iter().map(ToString::to_string).collect();
    // 10.3.0.1-10.3.0.9 is covered exactly by four prefixes.
    assert_eq!(nets, ["10.1.0.0/16", "10.2.0.1/32", "10.3.0.1/32", "10.3.0.2/31", "10.3.0.4/30", "10.3.0.8/31"]);
    assert_eq!(reject.text, "ip daddr { 10.1.0.0/16, 10.2.0.1, 10.3.0.1-10.3.0.9 } reject with icmp admin-prohibited");
    let negated = kf.rules.iter().find(|r| r.verdict == Some(Verdict::Drop)).unwrap();
    assert_eq!(negated.matches, vec![Match::SrcAddr { negated: true, nets: vec!["10.0.0.0/8".parse().unwrap()] }]);
    assert!(negated.text.contains("log prefix \"kube-fwd-drop \""));
    // `th dport` names no protocol.
    let th = kf.rules.iter().find(|r| r.text.starts_with("th dport")).unwrap();
    assert_eq!(th.matches, vec![Match::DstPort { negated: false, ports: vec![PortRange::single(4789)] }]);
    let esp = kf.rules.iter().find(|r| r.text == "ip protocol esp accept").unwrap();
    assert_eq!(esp.matches, vec![Match::Protocol { negated: false, protocol: "esp".into() }]);
}

#[test]
fn nat_statements() {
    let (r, _) = parse_fixture("nft-native-only.json");
    assert!(r.tables.iter().all(|t| t.name != "nat"), "no iptables-nft tables in this capture");
    let pre = chain(&r, "ip", "kube-nat", "prerouting");
    let verdicts: Vec<_> = pre.rules.iter().map(|r| r.verdict.clone().unwrap()).collect();
    assert_eq!(
        verdicts,
        vec![
            Verdict::Dnat("numgen inc mod 2 map { 0 : 10.244.1.10, 1 : 10.244.2.10 }".into()),
            Verdict::Dnat("tcp dport map @svc_backends".into()),
            Verdict::Dnat("10.244.1.5:80".into()),
            Verdict::Redirect("15006".into()),
        ]
    );
    let post = chain(&r, "ip", "kube-nat", "postrouting");
    assert_eq!(post.rules[0].verdict, Some(Verdict::Masquerade));
    assert_eq!(
        post.rules[0].matches,
        vec![
            Match::SrcAddr { negated: false, nets: vec!["10.244.0.0/16".parse().unwrap()] },
            Match::DstAddr { negated: true, nets: vec!["10.244.0.0/16".parse().unwrap()] },
            Match::OutInterface { negated: false, name: "eth0".into() },
        ]
    );
    assert_eq!(post.rules[1].verdict, Some(Verdict::Snat("198.51.100.1".into())));
    assert_eq!(post.rules[2].verdict, Some(Verdict::Other("meta mark set 0x00004000".into())));
}

#[test]
fn iptables_nft_xt_expressions_never_fail_the_ruleset() {
    let (r, _) = parse_fixture("nft.json");
    let input = chain(&r, "ip", "filter", "INPUT");
    // `-m conntrack --ctstate RELATED,ESTABLISHED` is opaque in nft's JSON.
    assert_eq!(input.rules[0].matches, vec![Match::Unrecognised { text: "xt match conntrack".into() }]);
    assert_eq!(input.rules[0].verdict, Some(Verdict::Accept));
    // `-m comment` always matches: not a condition.
    let wg = &input.rules[2];
    assert!(wg.matches.iter().all(|m| !matches!(m, Match::Unrecognised { .. })), "{:?}", wg.matches);
    assert!(wg.counters.is_some_and(|c| c.packets == 3));
    let nat = chain(&r, "ip", "nat", "POSTROUTING");
    assert!(nat.rules.iter().any(|r| r.verdict == Some(Verdict::Masquerade)));
    assert!(nat.rules.iter().any(|r| r.verdict == Some(Verdict::Other("xt target SNAT".into()))));
}

#[test]
fn unknown_expressions_become_unrecognised() {
    let text = r#"{"nftables": [
      {"table": {"family": "inet", "name": "t", "handle": 1}},
      {"chain": {"family": "inet", "table": "t", "name": "c", "type": "filter", "hook": "forward", "prio": "filter", "policy": "drop"}},
      {"rule": {"family": "inet", "table": "t", "chain": "c", "expr": [
        {"match": {"op": "==", "left": {"fancy": {"key": "thing"}}, "right": 7}},
        {"frobnicate": {"level": 3}},
        {"accept": null}]}},
      {"rule": {"family": "inet", "table": "t", "chain": "c", "expr": [
        {"match": {"op": "<", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 1024}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": "@ports"}},
        {"vmap": {"key": {"meta": {"key": "l4proto"}}, "data": {"set": [["tcp", {"accept": null}]]}}}]}},
      {"rule": {"family": "inet", "table": "t", "chain": "missing", "expr": "not a list"}},
      {"flowtable": {"family": "inet", "name": "f", "table": "t"}},
      42
    ]}"#;
    let mut ctx = ctx();
    let r = nft::parse(&Source::new("hosts/x/nft.json", text), &mut ctx).unwrap();
    let c = chain(&r, "inet", "t", "c");
    assert_eq!(c.priority, Some(0));
    assert_eq!(c.policy, Some(Verdict::Drop));
    let first = &c.rules[0];
    assert_eq!(first.verdict, Some(Verdict::Accept));
    assert_eq!(first.matches.len(), 2);
    assert!(first.matches.iter().all(|m| matches!(m, Match::Unrecognised { .. })));
    let Match::Unrecognised { text } = &first.matches[1] else { unreachable!() };
    assert_eq!(text, r#"frobnicate {"level":3}"#);
    let second = &c.rules[1];
    assert_eq!(
        second.matches,
        vec![
            Match::Protocol { negated: false, protocol: "tcp".into() },
            Match::DstPort { negated: false, ports: vec![PortRange { start: 0, end: 1023 }] },
            Match::Unrecognised { text: "tcp dport @ports".into() },
        ]
    );
    assert!(matches!(&second.verdict, Some(Verdict::Other(v)) if v.contains("vmap")));
    // The rule of an undeclared chain is kept (with a warning), as are non-object items.
    assert_eq!(chain(&r, "inet", "t", "missing").rules.len(), 1);
    let warnings: Vec<String> = ctx.issues.iter().map(|i| format!("{}: {}", i.location, i.message)).collect();
    assert!(
        warnings.iter().any(|w| w.starts_with("hosts/x/nft.json#/nftables/4") && w.contains("not declared")),
        "{warnings:?}"
    );
    assert!(warnings.iter().any(|w| w.starts_with("hosts/x/nft.json#/nftables/6")), "{warnings:?}");
}

#[test]
fn truncated_json_is_an_error_with_line_and_column() {
    let full = fixture("nft.json");
    let cut = &full[..full.len() / 2];
    let err = nft::parse(&Source::new("hosts/gw-1/nft.json", cut), &mut ctx()).unwrap_err();
    assert_eq!(err.path, "hosts/gw-1/nft.json");
    assert!(err.line.is_some() && err.column.is_some(), "{err}");
    assert!(err.to_string().starts_with("hosts/gw-1/nft.json:"), "{err}");
}

#[test]
fn empty_garbage_and_wrong_shape_are_errors() {
    let e = nft::parse(&Source::new("a/nft.json", ""), &mut ctx()).unwrap_err();
    assert_eq!((e.path.as_str(), e.line), ("a/nft.json", Some(1)));
    let e = nft::parse(&Source::new("a/nft.json", "\u{1}\u{2}garbage\n"), &mut ctx()).unwrap_err();
    assert_eq!((e.line, e.column), (Some(1), Some(1)));
    let e = nft::parse(&Source::new("a/nft.json", r#"{"tables": []}"#), &mut ctx()).unwrap_err();
    assert!(e.message.contains("nftables"), "{e}");
    // An empty ruleset is fine.
    let r = nft::parse(&Source::new("a/nft.json", r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}]}"#), &mut ctx())
        .unwrap();
    assert!(r.tables.is_empty());
}
