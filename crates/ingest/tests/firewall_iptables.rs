//! `iptables-save` parser on real outputs (nft and legacy backends, with and without
//! `-c`, ip6tables) captured in a lab namespace, and on broken input.

use netsleuth_ingest::firewall::iptables;
use netsleuth_ingest::{ParseContext, Redactor, Source};
use netsleuth_model::firewall::{Chain, Counters, FirewallSource, Hook, Match, PortRange, Ruleset, Verdict};
use netsleuth_model::Location;

fn fixture(name: &str) -> String {
    let path = format!("{}/../../tests/fixtures/firewall/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ctx() -> ParseContext {
    ParseContext::new(Redactor::from_salt("test"))
}

fn parse_fixture(name: &str, family: &str) -> Ruleset {
    let text = fixture(name);
    let mut ctx = ctx();
    let r = iptables::parse(&Source::new(&format!("hosts/node-1/{name}"), &text), family, &mut ctx).expect("parses");
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    r
}

fn chain<'a>(r: &'a Ruleset, family: &str, table: &str, name: &str) -> &'a Chain {
    r.chain(family, table, name).unwrap_or_else(|| panic!("no chain {family} {table} {name}"))
}

fn line_of(text: &str, needle: &str) -> u32 {
    let idx = text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle} not found"));
    u32::try_from(idx + 1).unwrap()
}

#[test]
fn builtin_chains_get_hooks_policies_and_counters() {
    let r = parse_fixture("iptables-save.txt", "ip");
    assert_eq!(r.source, FirewallSource::Iptables);
    let names: Vec<&str> = r.tables.iter().map(|t| t.name.as_str()).collect();
    for t in ["filter", "nat", "mangle", "raw"] {
        assert!(names.contains(&t), "{names:?}");
    }
    let fwd = chain(&r, "ip", "filter", "FORWARD");
    assert_eq!(fwd.hook, Some(Hook::Forward));
    assert_eq!(fwd.policy, Some(Verdict::Drop));
    assert_eq!(fwd.chain_type.as_deref(), Some("filter"));
    assert_eq!(fwd.priority, Some(0));
    let forward_hooks: Vec<String> =
        r.base_chains(Hook::Forward).map(|(t, c)| format!("{}/{}:{:?}", t.name, c.name, c.policy)).collect();
    assert_eq!(forward_hooks, ["mangle/FORWARD:Some(Accept)", "filter/FORWARD:Some(Drop)"]);
    // Policy counters of a built-in chain, from real traffic (ICMP replies, OUTPUT).
    let out = chain(&r, "ip", "filter", "OUTPUT");
    assert!(out.counters.is_some_and(|c| c.packets > 0), "{:?}", out.counters);
    let user = chain(&r, "ip", "filter", "KUBE-FORWARD");
    assert_eq!((user.hook, user.policy.clone(), user.priority), (None, None, None));
    assert_eq!(chain(&r, "ip", "nat", "PREROUTING").priority, Some(-100));
    assert_eq!(chain(&r, "ip", "nat", "POSTROUTING").priority, Some(100));
    assert_eq!(chain(&r, "ip", "raw", "PREROUTING").priority, Some(-300));
    // Origins are lines of the file.
    let text = fixture("iptables-save.txt");
    assert_eq!(fwd.origin, Location::line("hosts/node-1/iptables-save.txt", line_of(&text, ":FORWARD DROP")));
}

#[test]
fn rules_are_typed_with_counters_comments_and_lines() {
    let text = fixture("iptables-save.txt");
    let r = parse_fixture("iptables-save.txt", "ip");
    let input = chain(&r, "ip", "filter", "INPUT");
    let est = &input.rules[0];
    assert_eq!(
        est.matches,
        vec![Match::CtState { negated: false, states: vec!["related".into(), "established".into()] }]
    );
    assert_eq!(est.verdict, Some(Verdict::Accept));
    let wg = &input.rules[2];
    assert_eq!(wg.comment.as_deref(), Some("wireguard wg0"));
    assert_eq!(
        wg.matches,
        vec![
            Match::Protocol { negated: false, protocol: "udp".into() },
            Match::DstPort { negated: false, ports: vec![PortRange::single(51820)] }
        ]
    );
    // Three real UDP datagrams went through this rule while capturing.
    assert_eq!(wg.counters, Some(Counters { packets: 3, bytes: 141 }));
    assert_eq!(wg.origin, Location::line("hosts/node-1/iptables-save.txt", line_of(&text, "--dport 51820")));
    assert!(wg.text.starts_with("-A INPUT -p udp -m udp --dport 51820"), "{}", wg.text);
    let multiport = &input.rules[3];
    assert_eq!(
        multiport.matches[1],
        Match::DstPort {
            negated: false,
            ports: vec![PortRange::single(22), PortRange::single(6443), PortRange { start: 10250, end: 10252 }]
        }
    );
    let icmp = &input.rules[4];
    assert_eq!(icmp.matches[1], Match::IcmpType { negated: false, types: vec!["8".into()] });
    // `-m limit` decides whether the rule applies: kept as an unknown condition.
    assert_eq!(icmp.matches[2], Match::Unrecognised { text: "-m limit --limit 10/sec".into() });
    let log = &input.rules[5];
    assert_eq!(log.verdict, Some(Verdict::Other("LOG --log-prefix \"INPUT drop: \"".into())));
    assert_eq!(input.rules[6].verdict, Some(Verdict::Jump("KUBE-FIREWALL".into())));
}

#[test]
fn negations_goto_marks_and_kube_chains() {
    let r = parse_fixture("iptables-save.txt", "ip");
    let fwd = chain(&r, "ip", "filter", "FORWARD");
    assert_eq!(fwd.rules[1].comment.as_deref(), Some("cali:wUHhoiAYhphO9Mso"));
    assert_eq!(fwd.rules[1].verdict, Some(Verdict::Jump("cali-FORWARD".into())));
    assert_eq!(
        fwd.rules[4].matches,
        vec![
            Match::SrcAddr { negated: true, nets: vec!["10.0.0.0/8".parse().unwrap()] },
            Match::InInterface { negated: false, name: "eth0".into() }
        ]
    );
    assert_eq!(fwd.rules[4].verdict, Some(Verdict::Drop));
    assert_eq!(fwd.rules[5].matches[2], Match::DstPort { negated: true, ports: vec![PortRange::single(25)] });
    let goto = &fwd.rules[6];
    assert_eq!(goto.verdict, Some(Verdict::Goto("KUBE-SERVICES".into())));
    assert_eq!(goto.matches[1], Match::OutInterface { negated: true, name: "cni0".into() });

    let fw = chain(&r, "ip", "filter", "KUBE-FIREWALL");
    assert_eq!(
        fw.rules[0].matches[2],
        Match::CtState { negated: true, states: vec!["related".into(), "established".into(), "dnat".into()] }
    );
    let kf = chain(&r, "ip", "filter", "KUBE-FORWARD");
    assert_eq!(kf.rules[1].matches, vec![Match::Mark { negated: false, value: 0x4000, mask: Some(0x4000) }]);
    let cali = chain(&r, "ip", "filter", "cali-FORWARD");
    assert_eq!(cali.rules[0].verdict, Some(Verdict::Other("MARK --set-xmark 0x0/0xe0000".into())));
    assert_eq!(cali.rules[2].matches, vec![Match::Protocol { negated: false, protocol: "esp".into() }]);
    // iptables-save prints `-p 47` as `gre`; both spellings give the same name.
    assert_eq!(cali.rules[3].matches, vec![Match::Protocol { negated: false, protocol: "gre".into() }]);
    let hep = chain(&r, "ip", "filter", "cali-from-hep-forward");
    assert_eq!(hep.rules[0].matches, vec![Match::Unrecognised { text: "-m addrtype --dst-type LOCAL".into() }]);

    let svc = chain(&r, "ip", "nat", "KUBE-SVC-NPX46M4PTMTKRN6Y");
    assert_eq!(
        svc.rules[0].matches,
        vec![Match::Unrecognised { text: "-m statistic --mode random --probability 0.50000000000".into() }]
    );
    assert_eq!(svc.rules[0].comment.as_deref(), Some("default/kubernetes:https -> 198.51.100.10:6443"));
    let sep = chain(&r, "ip", "nat", "KUBE-SEP-IT2ZTR26TO4XFPTO");
    assert_eq!(sep.rules[1].verdict, Some(Verdict::Dnat("198.51.100.10:6443".into())));
    let post = chain(&r, "ip", "nat", "POSTROUTING");
    assert_eq!(post.rules[1].verdict, Some(Verdict::Masquerade));
    assert_eq!(post.rules[2].verdict, Some(Verdict::Snat("198.51.100.1".into())));
    let pre = chain(&r, "ip", "nat", "PREROUTING");
    assert_eq!(pre.rules[1].verdict, Some(Verdict::Redirect("15006".into())));
    assert!(pre.rules[0].counters.is_some_and(|c| c.packets == 2));
}

#[test]
fn tcpmss_clamp_is_recognisable() {
    let r = parse_fixture("iptables-save.txt", "ip");
    let mangle = chain(&r, "ip", "mangle", "FORWARD");
    let clamp = &mangle.rules[0];
    assert_eq!(clamp.verdict, Some(Verdict::Other("TCPMSS --clamp-mss-to-pmtu".into())));
    assert_eq!(
        clamp.matches,
        vec![
            Match::Protocol { negated: false, protocol: "tcp".into() },
            Match::Unrecognised { text: "--tcp-flags SYN,RST SYN".into() }
        ]
    );
    let fixed = &chain(&r, "ip", "mangle", "POSTROUTING").rules[0];
    assert_eq!(fixed.verdict, Some(Verdict::Other("TCPMSS --set-mss 1380".into())));
    let v6 = parse_fixture("ip6tables-save.txt", "ip6");
    assert_eq!(
        chain(&v6, "ip6", "mangle", "FORWARD").rules[0].verdict,
        Some(Verdict::Other("TCPMSS --clamp-mss-to-pmtu".into()))
    );
}

#[test]
fn ip6tables_and_legacy_backends() {
    let v6 = parse_fixture("ip6tables-save.txt", "ip6");
    assert!(v6.tables.iter().all(|t| t.family == "ip6"));
    let fwd = chain(&v6, "ip6", "filter", "FORWARD");
    assert_eq!(fwd.policy, Some(Verdict::Drop));
    assert_eq!(
        fwd.rules[0].matches,
        vec![Match::SrcAddr { negated: false, nets: vec!["fd00:10:244::/56".parse().unwrap()] }]
    );
    assert_eq!(fwd.rules[2].matches[1], Match::IcmpType { negated: false, types: vec!["2".into()] });
    assert_eq!(fwd.rules[2].matches[0], Match::Protocol { negated: false, protocol: "ipv6-icmp".into() });

    // The legacy backend prints the same rules; without -c there are no rule counters.
    let legacy = parse_fixture("iptables-legacy-save.txt", "ip");
    let plain = parse_fixture("iptables-save-nocounters.txt", "ip");
    let nft_backed = parse_fixture("iptables-save.txt", "ip");
    for r in [&legacy, &plain] {
        let a = chain(r, "ip", "filter", "KUBE-FIREWALL");
        let b = chain(&nft_backed, "ip", "filter", "KUBE-FIREWALL");
        assert_eq!(a.rules[0].matches, b.rules[0].matches);
        assert_eq!(a.rules[0].verdict, b.rules[0].verdict);
    }
    assert!(chain(&legacy, "ip", "filter", "INPUT").rules.iter().all(|r| r.counters.is_some()));
    assert!(chain(&plain, "ip", "filter", "INPUT").rules.iter().all(|r| r.counters.is_none()));
    assert!(chain(&plain, "ip", "filter", "INPUT").counters.is_some(), "chain lines keep [0:0]");
}

#[test]
fn ipset_match_and_quoting() {
    // ipset is not installed on the fixture host: this line is written by hand in the
    // format iptables-save prints (`-m set --match-set NAME src`).
    let text = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n\
        -A INPUT -m set --match-set KUBE-LOAD-BALANCER src -m set ! --match-set allow dst -j ACCEPT\n\
        -A FORWARD -m comment --comment \"say \\\"hi\\\" there\" -s 10.0.0.0/255.255.0.0 -p tcp --dport 80 -j ACCEPT\n\
        -A FORWARD -m set --match-set pairs src,dst -f -j DROP\nCOMMIT\n";
    let mut ctx = ctx();
    let r = iptables::parse(&Source::new("h/iptables-save.txt", text), "ip", &mut ctx).unwrap();
    let input = chain(&r, "ip", "filter", "INPUT");
    assert_eq!(
        input.rules[0].matches,
        vec![
            Match::SrcSet { negated: false, set: "KUBE-LOAD-BALANCER".into() },
            Match::DstSet { negated: true, set: "allow".into() }
        ]
    );
    let fwd = chain(&r, "ip", "filter", "FORWARD");
    assert_eq!(fwd.rules[0].comment.as_deref(), Some("say \"hi\" there"));
    assert_eq!(fwd.rules[0].matches[0], Match::SrcAddr { negated: false, nets: vec!["10.0.0.0/16".parse().unwrap()] });
    assert_eq!(fwd.rules[0].matches[2], Match::DstPort { negated: false, ports: vec![PortRange::single(80)] });
    assert_eq!(
        fwd.rules[1].matches,
        vec![
            Match::Unrecognised { text: "--match-set pairs src,dst".into() },
            Match::Unrecognised { text: "-f".into() }
        ]
    );
}

#[test]
fn malformed_input_is_an_error_with_line_and_column() {
    let cases: [(&str, usize, Option<usize>, &str); 7] = [
        ("-A INPUT -j ACCEPT\n", 1, Some(1), "outside a table"),
        ("*filter\n:INPUT ACCEPT [0:0]\n[1:x] -A INPUT -j DROP\nCOMMIT\n", 3, Some(1), "bytes is not a number"),
        (
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment \"open -j DROP\nCOMMIT\n",
            3,
            Some(31),
            "unterminated quote",
        ),
        ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j DROP\n", 3, None, "no COMMIT"),
        ("*filter\n:INPUT ACCEPT [0:0]\nhello world\nCOMMIT\n", 3, Some(1), "expected `-A CHAIN"),
        ("*filter\n:MYCHAIN DROP [0:0]\nCOMMIT\n", 2, Some(1), "user chain MYCHAIN with policy"),
        ("COMMIT\n", 1, Some(1), "COMMIT without a table"),
    ];
    for (text, line, column, what) in cases {
        let err = iptables::parse(&Source::new("hosts/n/iptables-save.txt", text), "ip", &mut ctx()).unwrap_err();
        assert_eq!(err.path, "hosts/n/iptables-save.txt");
        assert_eq!((err.line, err.column), (Some(line), column), "{text:?}: {err}");
        assert!(err.message.contains(what), "{text:?}: {err}");
    }
    // Binary garbage is not iptables-save output.
    let err = iptables::parse(&Source::new("x.txt", "\u{0}\u{7f}\u{1b}[2J"), "ip", &mut ctx()).unwrap_err();
    assert_eq!(err.line, Some(1));
}

#[test]
fn empty_output_is_an_empty_ruleset_and_undeclared_chains_warn() {
    // iptables-save prints nothing when no table is loaded (e.g. a pure nftables host).
    let r = iptables::parse(&Source::new("x.txt", ""), "ip", &mut ctx()).unwrap();
    assert!(r.tables.is_empty());
    let mut ctx = ctx();
    let r = iptables::parse(&Source::new("x.txt", "*filter\n-A NEW -j ACCEPT\nCOMMIT\n"), "ip", &mut ctx).unwrap();
    assert_eq!(chain(&r, "ip", "filter", "NEW").rules.len(), 1);
    assert_eq!(ctx.issues.len(), 1);
    assert_eq!(ctx.issues[0].location, Location::line("x.txt", 2));
}

#[test]
fn bundle_reader_merges_iptables_and_ip6tables_and_reads_nft() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("hosts/node-1");
    std::fs::create_dir_all(&host).unwrap();
    for (from, to) in [
        ("nft.json", "nft.json"),
        ("iptables-save.txt", "iptables-save.txt"),
        ("ip6tables-save.txt", "ip6tables-save.txt"),
    ] {
        std::fs::write(host.join(to), fixture(from)).unwrap();
    }
    let net = netsleuth_ingest::read_bundle(dir.path(), &netsleuth_ingest::BundleOptions::default()).unwrap();
    assert!(net.ingest_issues.is_empty(), "{:?}", net.ingest_issues);
    let h = &net.hosts[0];
    let ipt = h.iptables.as_ref().expect("iptables");
    assert_eq!(chain(ipt, "ip", "filter", "FORWARD").policy, Some(Verdict::Drop));
    assert_eq!(chain(ipt, "ip6", "filter", "FORWARD").policy, Some(Verdict::Drop));
    let nft = h.nftables.as_ref().expect("nftables");
    assert_eq!(chain(nft, "inet", "filter", "forward").policy, Some(Verdict::Drop));
    assert_eq!(
        chain(ipt, "ip", "filter", "FORWARD").rules[0].origin,
        Location::line(
            "hosts/node-1/iptables-save.txt",
            line_of(&fixture("iptables-save.txt"), "kubernetes forwarding rules\" -j KUBE-FORWARD")
        )
    );
}
