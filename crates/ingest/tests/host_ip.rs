//! `ip -j` parsers on real iproute2 6.1 output captured by tests/fixtures/make-host-fixtures.sh,
//! and on broken input (every failure names the file and a line or a JSON pointer).

use std::net::IpAddr;

use ipnet::IpNet;
use netsleuth_ingest::host::ip;
use netsleuth_ingest::{ParseContext, Source};
use netsleuth_model::host::{Interface, InterfaceKind, RouteTable, RouteType, RuleAction};
use netsleuth_model::Location;

fn fixture(rel: &str) -> String {
    let path = format!("{}/../../tests/fixtures/host/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read fixture {path}: {e}"))
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn links(host: &str, ctx: &mut ParseContext) -> Vec<Interface> {
    let text = fixture(&format!("{host}/ip-link.json"));
    let path = format!("hosts/{host}/ip-link.json");
    ip::parse_links(&Source::new(&path, &text), ctx).unwrap()
}

fn addrs(host: &str, ctx: &mut ParseContext) -> Vec<Interface> {
    let text = fixture(&format!("{host}/ip-addr.json"));
    let path = format!("hosts/{host}/ip-addr.json");
    ip::parse_addrs(&Source::new(&path, &text), ctx).unwrap()
}

fn find<'a>(ifaces: &'a [Interface], name: &str) -> &'a Interface {
    ifaces.iter().find(|i| i.name == name).unwrap_or_else(|| panic!("no interface {name}"))
}

#[test]
fn node_links_kinds_and_details() {
    let mut ctx = ParseContext::default();
    let l = links("node", &mut ctx);
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    let names: Vec<&str> = l.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["lo", "eth0", "cni0", "veth-pod-1", "veth-pod-2", "flannel.1", "vxlan.calico", "mv-nsh1"]);

    let lo = find(&l, "lo");
    assert_eq!(lo.kind, InterfaceKind::Loopback);
    assert!(lo.up, "lo is UP with operstate UNKNOWN");
    assert_eq!(lo.mtu, Some(65536));

    let flannel = find(&l, "flannel.1");
    assert_eq!(
        flannel.kind,
        InterfaceKind::Vxlan {
            vni: Some(42),
            port: Some(8472),
            local: Some(ip("198.51.100.10")),
            dev: Some("eth0".into())
        }
    );
    assert_eq!(flannel.mtu, Some(1450));
    assert!(flannel.up);
    assert_eq!(flannel.index, Some(6));
    assert_eq!(flannel.origin, Location::json("hosts/node/ip-link.json", "/5"));

    let calico = find(&l, "vxlan.calico");
    assert!(matches!(calico.kind, InterfaceKind::Vxlan { vni: Some(4096), port: Some(4789), .. }));
    assert!(!calico.up, "never set up");

    let eth0 = find(&l, "eth0");
    assert_eq!(eth0.kind, InterfaceKind::Veth);
    // Peer in the uplink namespace: only its index is known, spelled as `ip link` does.
    assert_eq!(eth0.link.as_deref(), Some("if2"));
    assert_eq!(eth0.link_netnsid, Some(0));
    assert!(eth0.mac.as_deref().is_some_and(|m| m.len() == 17 && m.matches(':').count() == 5));

    let cni0 = find(&l, "cni0");
    assert_eq!(cni0.kind, InterfaceKind::Bridge);
    assert_eq!(cni0.mtu, Some(1500));
    for (pod, nsid) in [("veth-pod-1", 1), ("veth-pod-2", 2)] {
        let v = find(&l, pod);
        assert_eq!(v.kind, InterfaceKind::Veth);
        assert_eq!(v.master.as_deref(), Some("cni0"));
        assert_eq!(v.mtu, Some(1500));
        assert_eq!(v.link_netnsid, Some(nsid));
        assert!(v.up);
    }

    let mv = find(&l, "mv-nsh1");
    assert_eq!(mv.kind, InterfaceKind::Other { name: "macvlan".into() });
    assert_eq!(mv.link.as_deref(), Some("eth0"), "parent named in the same namespace");
    assert!(!mv.up);
}

#[test]
fn wireguard_go_device_is_a_tun() {
    let mut ctx = ParseContext::default();
    let l = links("gw-1", &mut ctx);
    let wg = find(&l, "nsh1-wga");
    assert_eq!(wg.kind, InterfaceKind::Tun);
    assert_eq!(wg.mtu, Some(1420));
    assert!(wg.up);
    assert_eq!(wg.mac, None, "a tun has no link-layer address");
}

#[test]
fn addrs_and_merge() {
    let mut ctx = ParseContext::default();
    let a = addrs("node", &mut ctx);
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    let eth0 = find(&a, "eth0");
    assert_eq!(eth0.addresses[0], net("198.51.100.10/24"));
    assert_eq!(eth0.addresses[1], net("fd00:198:51::10/64"));
    assert!(eth0.addresses.iter().any(|n| n.addr().to_string().starts_with("fe80::")), "link-local kept");
    // ip addr has no linkinfo: kind is only known from ip link.
    assert_eq!(find(&a, "flannel.1").kind, InterfaceKind::Physical);

    let l = links("node", &mut ctx);
    let merged = ip::merge_interfaces(l, a);
    assert_eq!(merged.len(), 8);
    let flannel = find(&merged, "flannel.1");
    assert!(matches!(flannel.kind, InterfaceKind::Vxlan { vni: Some(42), .. }));
    assert_eq!(flannel.addresses.len(), 2, "{:?}", flannel.addresses);
    assert_eq!(flannel.addresses[0], net("10.244.1.0/32"));
    assert!(flannel.addresses[1].addr().to_string().starts_with("fe80::"));
    assert_eq!(flannel.origin, Location::json("hosts/node/ip-link.json", "/5"));
    assert_eq!(find(&merged, "mv-nsh1").addresses, vec![net("169.254.20.10/32")]);
    let cni0 = find(&merged, "cni0");
    assert_eq!(cni0.addresses.len(), 2, "{:?}", cni0.addresses);
    assert_eq!(cni0.addresses[0], net("10.244.1.1/24"));
    assert_eq!(cni0.addresses[1].prefix_len(), 64);
}

#[test]
fn merge_keeps_interfaces_found_in_only_one_list() {
    let mut ctx = ParseContext::default();
    let l = links("node", &mut ctx);
    let mut a = addrs("pod-a", &mut ctx);
    a.retain(|i| i.name == "eth0");
    let mut renamed = a.remove(0);
    renamed.name = "only-in-addr".into();
    assert_eq!(l.len(), 8);
    let merged = ip::merge_interfaces(l, vec![renamed]);
    assert_eq!(merged.len(), 9);
    let only = find(&merged, "only-in-addr");
    assert_eq!(only.addresses[0], net("10.244.1.2/24"));
    assert_eq!(only.link_netnsid, Some(0));
    assert!(find(&merged, "cni0").addresses.is_empty(), "no ip-addr entry, no addresses");
    assert!(matches!(find(&merged, "flannel.1").kind, InterfaceKind::Vxlan { .. }));
}

fn routes(host: &str, file: &str, ctx: &mut ParseContext) -> Vec<netsleuth_model::host::Route> {
    let text = fixture(&format!("{host}/{file}"));
    let path = format!("hosts/{host}/{file}");
    ip::parse_routes(&Source::new(&path, &text), ctx).unwrap()
}

#[test]
fn node_routes() {
    let mut ctx = ParseContext::default();
    let r = routes("node", "ip-route.json", &mut ctx);
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    assert_eq!(r.len(), 39);
    let default = r.iter().find(|r| r.table == 254 && r.dst == net("0.0.0.0/0")).unwrap();
    assert_eq!(default.gateway, Some(ip("198.51.100.1")));
    assert_eq!(default.dev.as_deref(), Some("eth0"));
    assert_eq!(default.metric, Some(100));
    assert_eq!(default.protocol.as_deref(), Some("static"));
    assert_eq!(default.route_type, RouteType::Unicast);
    assert_eq!(default.origin, Location::json("hosts/node/ip-route.json", "/4"));

    let mtu = r.iter().find(|r| r.dst == net("172.16.0.0/12")).unwrap();
    assert_eq!(mtu.mtu, Some(1400));
    let bh = r.iter().find(|r| r.dst == net("10.244.99.0/24")).unwrap();
    assert_eq!(bh.route_type, RouteType::Blackhole);
    let overlay = r.iter().find(|r| r.dst == net("10.244.2.0/24")).unwrap();
    assert_eq!((overlay.gateway, overlay.dev.as_deref()), (Some(ip("10.244.2.0")), Some("flannel.1")));

    let t100: Vec<_> = r.iter().filter(|r| r.table == 100).collect();
    let types: Vec<RouteType> = t100.iter().map(|r| r.route_type).collect();
    for t in [RouteType::Unicast, RouteType::Unreachable, RouteType::Prohibit, RouteType::Throw] {
        assert!(types.contains(&t), "{t:?} in table 100: {types:?}");
    }
    // Bare local addresses are host routes in the local table.
    let local = r.iter().find(|r| r.dst == net("198.51.100.10/32")).unwrap();
    assert_eq!((local.table, local.route_type, local.scope.as_deref()), (255, RouteType::Local, Some("host")));
    // `table all` without -6 still lists IPv6: its `default` has an IPv6 gateway.
    let v6_default = r.iter().find(|r| r.table == 254 && r.dst == net("::/0")).unwrap();
    assert_eq!(v6_default.gateway, Some(ip("fd00:198:51::1")));
    assert_eq!(v6_default.metric, Some(1024));
    assert!(r.iter().any(|r| r.route_type == RouteType::Multicast && r.dst == net("ff00::/8")));
}

#[test]
fn route6_file_and_dedup() {
    let mut ctx = ParseContext::default();
    let v4 = routes("node", "ip-route.json", &mut ctx);
    let v6 = routes("node", "ip-route6.json", &mut ctx);
    assert_eq!(v6.len(), 20);
    assert!(v6.iter().all(|r| r.dst.addr().is_ipv6()));
    let t100 = v6.iter().find(|r| r.table == 100).unwrap();
    assert_eq!(t100.dst, net("::/0"));
    let all: Vec<_> = v4.into_iter().chain(v6).collect();
    assert_eq!(ip::dedup_routes(all).len(), 39, "the 20 IPv6 routes appear in both files");
}

#[test]
fn real_lookups_through_rules() {
    let mut ctx = ParseContext::default();
    let table = RouteTable { routes: routes("node", "ip-route.json", &mut ctx) };
    let text = fixture("node/ip-rule.json");
    let rules = ip::parse_rules(&Source::new("hosts/node/ip-rule.json", &text), &mut ctx).unwrap();
    let (route, rule) = table.lookup_with_rules(&rules, None, ip("203.0.113.5"), Some(0x1200)).unwrap();
    assert_eq!((route.table, route.gateway), (100, Some(ip("198.51.100.1"))));
    assert_eq!(rule.map(|r| r.priority), Some(100), "fwmark 0x200/0xf00 matches 0x1200");
    let (route, rule) = table.lookup_with_rules(&rules, Some(ip("10.244.1.7")), ip("172.16.9.9"), None).unwrap();
    assert_eq!((route.table, rule.map(|r| r.priority)), (100, Some(200)));
    let direct = table.lookup(ip("10.244.1.2")).unwrap();
    assert_eq!(direct.dev.as_deref(), Some("cni0"));
}

#[test]
fn node_rules() {
    let mut ctx = ParseContext::default();
    let text = fixture("node/ip-rule.json");
    let rules = ip::parse_rules(&Source::new("hosts/node/ip-rule.json", &text), &mut ctx).unwrap();
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    let prio: Vec<u32> = rules.iter().map(|r| r.priority).collect();
    assert_eq!(prio, [0, 100, 200, 250, 300, 400, 410, 420, 500, 600, 32766, 32767]);
    let by = |p: u32| rules.iter().find(|r| r.priority == p).unwrap();
    assert_eq!(by(0).table, Some(255));
    let mark = by(100);
    assert_eq!((mark.fwmark, mark.fwmask, mark.table), (Some(0x200), Some(0xf00), Some(100)));
    assert_eq!((mark.from, mark.to), (None, None));
    assert_eq!(mark.action, RuleAction::ToTable);
    assert_eq!(mark.family.as_deref(), Some("inet"));
    assert_eq!(by(200).from, Some(net("10.244.1.0/24")));
    assert_eq!(by(200).to, Some(net("172.16.0.0/12")));
    assert_eq!(by(250).oif.as_deref(), Some("eth0"));
    let not = by(300);
    assert!(not.not);
    assert_eq!((not.fwmark, not.iif.as_deref(), not.table), (Some(1), Some("cni0"), Some(254)));
    assert_eq!(by(400).action, RuleAction::Prohibit);
    assert_eq!(by(400).to, Some(net("192.0.2.0/24")));
    assert_eq!(by(410).action, RuleAction::Blackhole);
    assert_eq!(by(420).action, RuleAction::Unreachable);
    assert_eq!(by(500).action, RuleAction::Goto);
    assert_eq!(by(500).iif.as_deref(), Some("flannel.1"));
    assert_eq!(by(600).action, RuleAction::Nop);
    assert_eq!(by(32767).table, Some(253));
    assert_eq!(by(420).origin, Location::json("hosts/node/ip-rule.json", "/7"));

    let text6 = fixture("node/ip-rule6.json");
    let rules6 = ip::parse_rules(&Source::new("hosts/node/ip-rule6.json", &text6), &mut ctx).unwrap();
    assert_eq!(rules6.len(), 3);
    assert!(rules6.iter().all(|r| r.family.as_deref() == Some("inet6")));
    let text_gw = fixture("gw-1/ip-rule.json");
    let gw = ip::parse_rules(&Source::new("hosts/gw-1/ip-rule.json", &text_gw), &mut ctx).unwrap();
    assert_eq!(gw[1].from, Some(net("10.10.0.0/24")));
    assert_eq!(gw[1].table, Some(123));
}

// ---------------------------------------------------------------- what the kernel here lacks
// This kernel has no ipip/gre/dummy modules, so these entries are hand-written in iproute2's
// JSON shape (keys as printed by iproute2 6.1 `ip -j -d link`), not captured.

#[test]
fn tunnel_kinds_and_vxlan_link_index() {
    let text = r#"[
      {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"operstate":"UNKNOWN","link_type":"loopback","promiscuity":0},
      {"ifindex":2,"ifname":"ens5","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":9001,"operstate":"UP","link_type":"ether","address":"0a:1b:2c:3d:4e:5f","promiscuity":0},
      {"ifindex":3,"ifname":"tunl0","flags":["NOARP","UP","LOWER_UP"],"mtu":1480,"operstate":"UNKNOWN","link_type":"ipip","linkinfo":{"info_kind":"ipip","info_data":{"remote":"any","local":"any"}}},
      {"ifindex":4,"ifname":"gre1","flags":["POINTOPOINT","NOARP","UP","LOWER_UP"],"mtu":1476,"operstate":"UNKNOWN","link_type":"gre","linkinfo":{"info_kind":"gre","info_data":{"local":"10.255.0.1","remote":"10.255.0.2"}}},
      {"ifindex":5,"ifname":"vx0","flags":["BROADCAST","MULTICAST"],"mtu":1450,"operstate":"DOWN","link_type":"ether","linkinfo":{"info_kind":"vxlan","info_data":{"id":7,"local6":"fd00::1","link":"if2","port":4789}}},
      {"ifindex":6,"ifname":"vx1","flags":["UP"],"mtu":1450,"operstate":"LOWERLAYERDOWN","link_type":"ether","linkinfo":{"info_kind":"vxlan","info_data":{"id":8,"link":2}}},
      {"ifindex":7,"ifname":"tap0","flags":["UP"],"mtu":1500,"operstate":"UP","linkinfo":{"info_kind":"tun","info_data":{"type":"tap"}}},
      {"ifindex":8,"ifname":"wg0","flags":["POINTOPOINT","NOARP","UP","LOWER_UP"],"mtu":1420,"operstate":"UNKNOWN","link_type":"none","linkinfo":{"info_kind":"wireguard"}},
      {"ifindex":9,"ifname":"dummy0","flags":["BROADCAST","NOARP"],"mtu":1500,"operstate":"DOWN","linkinfo":{"info_kind":"dummy"}},
      {}
    ]"#;
    let mut ctx = ParseContext::default();
    let l = ip::parse_links(&Source::new("hosts/x/ip-link.json", text), &mut ctx).unwrap();
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    assert_eq!(l.len(), 9, "the `{{}}` entry iproute2 prints for filtered devices is dropped");
    assert_eq!(find(&l, "ens5").kind, InterfaceKind::Physical);
    assert_eq!(find(&l, "tunl0").kind, InterfaceKind::Ipip);
    assert_eq!(find(&l, "gre1").kind, InterfaceKind::Gre);
    assert_eq!(
        find(&l, "vx0").kind,
        InterfaceKind::Vxlan { vni: Some(7), port: Some(4789), local: Some(ip("fd00::1")), dev: Some("ens5".into()) }
    );
    assert!(matches!(&find(&l, "vx1").kind, InterfaceKind::Vxlan { dev: Some(d), .. } if d == "ens5"));
    assert!(!find(&l, "vx1").up, "LOWERLAYERDOWN is not up");
    assert_eq!(find(&l, "tap0").kind, InterfaceKind::Other { name: "tap".into() });
    assert_eq!(find(&l, "wg0").kind, InterfaceKind::WireGuard);
    assert_eq!(find(&l, "dummy0").kind, InterfaceKind::Other { name: "dummy".into() });
}

#[test]
fn links_without_details_warn() {
    let text = fixture("node/ip-addr.json");
    let mut ctx = ParseContext::default();
    let l = ip::parse_links(&Source::new("hosts/node/ip-link.json", &text), &mut ctx).unwrap();
    assert_eq!(l.len(), 8);
    assert_eq!(ctx.issues.len(), 1);
    assert!(ctx.issues[0].message.contains("ip -d"), "{}", ctx.issues[0].message);
}

#[test]
fn routes_multipath_via_named_table_and_family_hints() {
    let text = r#"[
      {"dst":"default","flags":[],"nexthops":[{"gateway":"198.51.100.1","dev":"eth0","weight":1,"flags":[]},{"gateway":"198.51.100.2","dev":"eth1","weight":1,"flags":[]}]},
      {"dst":"10.9.0.0/16","via":{"family":"inet6","host":"fe80::1"},"dev":"eth0","table":"vpn","flags":[]},
      {"type":"unreachable","dst":"default","dev":"lo","metric":1024,"flags":[],"pref":"medium"},
      {"dst":"default","dev":"wg0","scope":"link","table":"51820","flags":[]}
    ]"#;
    let mut ctx = ParseContext::default();
    let r = ip::parse_routes(&Source::new("hosts/x/ip-route.json", text), &mut ctx).unwrap();
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    assert_eq!(r.len(), 5);
    assert_eq!((r[0].gateway, r[0].dev.as_deref()), (Some(ip("198.51.100.1")), Some("eth0")));
    assert_eq!((r[1].gateway, r[1].dev.as_deref()), (Some(ip("198.51.100.2")), Some("eth1")));
    assert_eq!(r[1].origin, Location::json("hosts/x/ip-route.json", "/0/nexthops/1"));
    assert_eq!(r[2].gateway, Some(ip("fe80::1")));
    assert_eq!(r[2].table_name.as_deref(), Some("vpn"));
    let mut rctx = ParseContext::default();
    let rules = ip::parse_rules(
        &Source::new("hosts/x/ip-rule.json", r#"[{"priority":5,"src":"all","table":"vpn"}]"#),
        &mut rctx,
    )
    .unwrap();
    assert_eq!(rules[0].table, Some(r[2].table), "a named table gets the same id in rules and routes");
    assert_eq!(r[3].dst, net("::/0"), "`pref` is only on IPv6 routes");
    assert_eq!(r[3].route_type, RouteType::Unreachable);
    assert_eq!((r[4].dst, r[4].table), (net("0.0.0.0/0"), 51820));
    let r6 = ip::parse_routes(
        &Source::new("hosts/x/ip-route6.json", r#"[{"type":"blackhole","dst":"default","flags":[]}]"#),
        &mut ctx,
    )
    .unwrap();
    assert_eq!(r6[0].dst, net("::/0"), "file name says IPv6");
}

// ---------------------------------------------------------------- broken input

#[test]
fn truncated_json_names_line_and_column() {
    let text = fixture("node/ip-link.json");
    let cut = &text[..text.len() / 2];
    let mut ctx = ParseContext::default();
    let err = ip::parse_links(&Source::new("hosts/node/ip-link.json", cut), &mut ctx).unwrap_err();
    assert_eq!(err.path, "hosts/node/ip-link.json");
    assert_eq!(err.line, Some(1));
    assert!(err.column.is_some_and(|c| c >= cut.len() - 1), "{err}");
    assert!(err.message.contains("invalid JSON"), "{err}");
}

#[test]
fn empty_garbage_and_wrong_top_level_are_errors() {
    type Parser = fn(&Source<'_>, &mut ParseContext) -> Result<usize, netsleuth_ingest::ParseError>;
    let parsers: [(&str, Parser); 4] = [
        ("ip-link.json", |s, c| ip::parse_links(s, c).map(|v| v.len())),
        ("ip-addr.json", |s, c| ip::parse_addrs(s, c).map(|v| v.len())),
        ("ip-route.json", |s, c| ip::parse_routes(s, c).map(|v| v.len())),
        ("ip-rule.json", |s, c| ip::parse_rules(s, c).map(|v| v.len())),
    ];
    for (file, parse) in parsers {
        for (text, line, column) in [
            ("", 1, None),
            ("  \n\n", 1, None),
            ("\u{1}\u{2}\u{7f}garbage\u{fffd}", 1, Some(1)),
            ("{\"ifname\": \"eth0\"}", 1, Some(1)),
            ("\n\n  42", 3, Some(3)),
            ("[{\"a\":1},\n{\"b\":", 2, Some(5)),
            ("[1,2,]", 1, Some(6)),
        ] {
            let mut ctx = ParseContext::default();
            let err = parse(&Source::new(file, text), &mut ctx).unwrap_err();
            assert_eq!(err.path, file);
            assert_eq!((err.line, err.column), (Some(line), column), "{file} on {text:?}: {err}");
        }
    }
}

#[test]
fn huge_line_and_deep_nesting_do_not_panic() {
    let mut ctx = ParseContext::default();
    let huge = format!("[{{\"ifname\":\"{}\"", "x".repeat(1 << 20));
    let err = ip::parse_links(&Source::new("l.json", &huge), &mut ctx).unwrap_err();
    assert_eq!((err.line, err.column), (Some(1), Some(huge.len())));
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let err = ip::parse_routes(&Source::new("r.json", &deep), &mut ctx).unwrap_err();
    assert!(err.message.contains("recursion"), "{err}");
    // A huge but valid interface name is kept, not truncated or rejected.
    let ok = format!("[{{\"ifname\":\"{}\"}}]", "y".repeat(1 << 20));
    let l = ip::parse_addrs(&Source::new("a.json", &ok), &mut ctx).unwrap();
    assert_eq!(l[0].name.len(), 1 << 20);
}

#[test]
fn wrong_types_are_warnings_per_item() {
    let text = r#"[
      {"ifindex":"two","ifname":"eth0","mtu":"big","flags":"UP","link_netnsid":"x","addr_info":[{"local":"10.0.0.1","prefixlen":99},{"local":7},{}]},
      {"ifname":5},
      "eth1",
      {"ifindex":3,"ifname":"eth2","mtu":1500,"addr_info":[{"local":"10.0.0.2","prefixlen":24}]}
    ]"#;
    let mut ctx = ParseContext::default();
    let l = ip::parse_addrs(&Source::new("hosts/x/ip-addr.json", text), &mut ctx).unwrap();
    assert_eq!(l.len(), 2);
    assert_eq!((l[0].index, l[0].mtu, l[0].up), (None, None, false));
    assert!(l[0].addresses.is_empty());
    assert_eq!(l[1].addresses, vec![net("10.0.0.2/24")]);
    let at = |p: &str| ctx.issues.iter().any(|i| i.location == Location::json("hosts/x/ip-addr.json", p));
    let paths = [
        "/0/ifindex",
        "/0/mtu",
        "/0/flags",
        "/0/link_netnsid",
        "/0/addr_info/0/prefixlen",
        "/0/addr_info/1/local",
        "/1",
        "/2",
    ];
    for p in paths {
        assert!(at(p), "no warning at {p}: {:#?}", ctx.issues);
    }

    let routes = r#"[
      {"dst":"default","gateway":"198.51.100.1","dev":"eth0","flags":[]},
      {"dst":42},
      {"gateway":"10.0.0.1"},
      {"type":"xresolve","dst":"10.0.0.0/8"},
      {"dst":"10.0.0.0/40"},
      {"dst":"10.1.0.0/16","gateway":"not-an-ip","metric":-1,"metrics":[{"mtu":"x"}]},
      null
    ]"#;
    let mut ctx = ParseContext::default();
    let r = ip::parse_routes(&Source::new("hosts/x/ip-route.json", routes), &mut ctx).unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!((r[1].gateway, r[1].metric, r[1].mtu), (None, None, None));
    for p in ["/1", "/2", "/3", "/4", "/5/gateway", "/5/metric", "/5/metrics/0/mtu", "/6"] {
        assert!(
            ctx.issues.iter().any(|i| i.location == Location::json("hosts/x/ip-route.json", p)),
            "no warning at {p}: {:#?}",
            ctx.issues
        );
    }

    let rules = r#"[
      {"priority":1,"src":"bogus","table":"main"},
      {"priority":2,"src":"all","action":"teleport"},
      {"priority":3,"src":"all","fwmark":"0xzz","table":"main"},
      {"priority":32765,"src":"all","table":"main","suppress_prefixlength":0},
      {"priority":4,"src":"10.0.0.0","srclen":40,"table":"main"}
    ]"#;
    let mut ctx = ParseContext::default();
    let r = ip::parse_rules(&Source::new("hosts/x/ip-rule.json", rules), &mut ctx).unwrap();
    assert_eq!(r.iter().map(|r| r.priority).collect::<Vec<_>>(), [3, 32765]);
    assert_eq!(r[0].fwmark, None);
    let msgs: Vec<&str> = ctx.issues.iter().map(|i| i.message.as_str()).collect();
    assert!(msgs.iter().any(|m| m.contains("suppress_prefixlength")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("teleport")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("`srclen` 40")), "{msgs:?}");
    assert_eq!(ctx.issues.len(), 5, "{msgs:?}");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let mut ctx = ParseContext::default();
            let src = Source::new("f.json", &text);
            let _ = ip::parse_links(&src, &mut ctx);
            let _ = ip::parse_addrs(&src, &mut ctx);
            let _ = ip::parse_routes(&src, &mut ctx);
            let _ = ip::parse_rules(&src, &mut ctx);
        }

        #[test]
        fn arbitrary_json_entries_never_panic(
            entries in proptest::collection::vec(
                proptest::collection::btree_map(
                    prop_oneof![Just("ifname"), Just("ifindex"), Just("mtu"), Just("dst"), Just("gateway"), Just("table"),
                        Just("src"), Just("srclen"), Just("fwmark"), Just("link"), Just("link_index"), Just("addr_info"),
                        Just("linkinfo"), Just("nexthops"), Just("metrics"), Just("type"), Just("priority")],
                    prop_oneof![
                        Just(serde_json::json!(null)), any::<i64>().prop_map(serde_json::Value::from),
                        "[0-9a-f:./x]{0,20}".prop_map(serde_json::Value::from),
                        Just(serde_json::json!([{"local": "10.0.0.1", "prefixlen": 200}])),
                        Just(serde_json::json!({"info_kind": "vxlan", "info_data": {"id": -1, "port": 70000, "link": "if9"}})),
                        Just(serde_json::json!([{"mtu": 1e99}])),
                    ],
                    0..6,
                ),
                0..6,
            )
        ) {
            let text = serde_json::to_string(&entries).unwrap();
            let mut ctx = ParseContext::default();
            let src = Source::new("f.json", &text);
            prop_assert!(ip::parse_links(&src, &mut ctx).is_ok());
            prop_assert!(ip::parse_addrs(&src, &mut ctx).is_ok());
            prop_assert!(ip::parse_routes(&src, &mut ctx).is_ok());
            prop_assert!(ip::parse_rules(&src, &mut ctx).is_ok());
        }
    }
}
