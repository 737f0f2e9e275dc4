//! One test per tracing semantic on small in-memory networks: policy routing, blackholes,
//! loops, forwarding, firewall chains, WireGuard both directions, IPsec selectors, AWS.

mod common;

use common::*;
use netsleuth_model::firewall::{FirewallSource, Hook, Match, PortRange, Verdict};
use netsleuth_model::host::{Host, InterfaceKind, RouteType, RuleAction};
use netsleuth_model::Network;
use netsleuth_trace::path::{Action, DispositionKind};
use serde_json::json;

/// a (10.0.0.1) ── b (10.0.0.2 | 10.1.0.1) ── c (10.1.0.50)
fn three_hosts() -> Network {
    let mut a = host("a");
    iface(&mut a, "eth0", InterfaceKind::Physical, &["10.0.0.1/24"]);
    route(&mut a, 254, "10.0.0.0/24", None, Some("eth0"), RouteType::Unicast);
    route(&mut a, 254, "default", Some("10.0.0.2"), Some("eth0"), RouteType::Unicast);
    let mut b = host("b");
    iface(&mut b, "eth0", InterfaceKind::Physical, &["10.0.0.2/24"]);
    iface(&mut b, "lan0", InterfaceKind::Physical, &["10.1.0.1/24"]);
    route(&mut b, 254, "10.0.0.0/24", None, Some("eth0"), RouteType::Unicast);
    route(&mut b, 254, "10.1.0.0/24", None, Some("lan0"), RouteType::Unicast);
    default_rules(&mut b);
    let mut c = host("c");
    iface(&mut c, "eth0", InterfaceKind::Physical, &["10.1.0.50/24"]);
    route(&mut c, 254, "default", Some("10.1.0.1"), Some("eth0"), RouteType::Unicast);
    Network { hosts: vec![a, b, c], ..Network::default() }
}

fn b(net: &mut Network) -> &mut Host {
    net.hosts.iter_mut().find(|h| h.name == "b").unwrap()
}

#[test]
fn routes_hop_by_hop_to_the_host_holding_the_address() {
    let net = three_hosts();
    let t = run(&net, "host:a", "10.1.0.50:80");
    assert_eq!(t.disposition.kind, DispositionKind::Delivered, "{}", explain(&t));
    assert_eq!(t.packet.src.to_string(), "10.0.0.1");
    let comps: Vec<&str> = t.hops.iter().map(|h| h.component.as_str()).collect();
    assert_eq!(
        comps,
        ["host/a route table main", "host/a iface eth0", "host/b route table main", "host/b iface lan0", "host/c"],
        "{}",
        explain(&t)
    );
    assert_eq!(t.hops.last().unwrap().action, Action::Deliver);
}

#[test]
fn policy_rule_selects_a_table_with_a_blackhole() {
    let mut net = three_hosts();
    let hb = b(&mut net);
    rule(hb, 100, Some("10.0.0.1/32"), Some(100), RuleAction::ToTable);
    route(hb, 100, "10.1.0.0/16", None, None, RouteType::Blackhole);
    let t = run(&net, "host:a", "10.1.0.50:80");
    assert_eq!(last(&t), ("host/b route table 100".into(), Action::Drop, DispositionKind::Dropped), "{}", explain(&t));
    assert!(t.hops.last().unwrap().reason.contains("ip rule 100"), "{}", explain(&t));
    // Another source does not match the rule: main table, delivered.
    let mut other = three_hosts();
    let hb = b(&mut other);
    rule(hb, 100, Some("10.9.0.0/16"), Some(100), RuleAction::ToTable);
    route(hb, 100, "10.1.0.0/16", None, None, RouteType::Blackhole);
    assert_eq!(run(&other, "host:a", "10.1.0.50:80").disposition.kind, DispositionKind::Delivered);
}

#[test]
fn longest_prefix_wins_and_unreachable_is_no_route() {
    let mut net = three_hosts();
    route(b(&mut net), 254, "10.1.0.0/16", None, None, RouteType::Unreachable);
    assert_eq!(run(&net, "host:a", "10.1.0.50:80").disposition.kind, DispositionKind::Delivered);
    let t = run(&net, "host:a", "10.1.7.7:80");
    assert_eq!(last(&t), ("host/b route table main".into(), Action::Drop, DispositionKind::NoRoute), "{}", explain(&t));
    // No route at all.
    let t = run(&net, "host:a", "192.0.2.1:80");
    assert_eq!(t.disposition.kind, DispositionKind::NoRoute, "{}", explain(&t));
    assert!(t.disposition.reason.contains("host b has no route"), "{}", explain(&t));
    // A rule action drops everything it selects.
    let mut net = three_hosts();
    rule(b(&mut net), 10, Some("10.0.0.0/24"), None, RuleAction::Prohibit);
    let t = run(&net, "host:a", "10.1.0.50:80");
    assert_eq!(last(&t), ("host/b ip rule 10".into(), Action::Drop, DispositionKind::Dropped), "{}", explain(&t));
}

#[test]
fn forwarding_off_drops_at_the_sysctl() {
    let mut net = three_hosts();
    b(&mut net).sysctls.values.get_mut("net.ipv4.ip_forward").unwrap().value = "0".into();
    let t = run(&net, "host:a", "10.1.0.50:80");
    assert_eq!(
        last(&t),
        ("host/b sysctl net.ipv4.ip_forward".into(), Action::Drop, DispositionKind::Dropped),
        "{}",
        explain(&t)
    );
    // Traffic to b itself is not forwarded: delivered.
    assert_eq!(run(&net, "host:a", "10.1.0.1:80").disposition.kind, DispositionKind::Delivered);
}

#[test]
fn routing_loop_is_detected() {
    let mut net = three_hosts();
    route(b(&mut net), 254, "default", Some("10.0.0.1"), Some("eth0"), RouteType::Unicast);
    net.hosts[0].sysctls.values.get_mut("net.ipv4.ip_forward").unwrap().value = "1".into();
    let t = run(&net, "host:a", "198.18.0.1:80");
    assert_eq!(t.disposition.kind, DispositionKind::Loop, "{}", explain(&t));
}

#[test]
fn iptables_forward_chain_with_jump_decides() {
    let mut net = three_hosts();
    let user = chain(
        "FILTER-WEB",
        None,
        None,
        vec![
            fw_rule(
                "-A FILTER-WEB -p tcp --dport 443 -j RETURN",
                vec![
                    Match::Protocol { negated: false, protocol: "tcp".into() },
                    Match::DstPort { negated: false, ports: vec![PortRange::single(443)] },
                ],
                Some(Verdict::Return),
                5,
            ),
            fw_rule("-A FILTER-WEB -j DROP", vec![], Some(Verdict::Drop), 6),
        ],
    );
    let fwd = chain(
        "FORWARD",
        Some(Hook::Forward),
        Some(Verdict::Accept),
        vec![fw_rule(
            "-A FORWARD -d 10.1.0.0/24 -j FILTER-WEB",
            vec![Match::DstAddr { negated: false, nets: vec!["10.1.0.0/24".parse().unwrap()] }],
            Some(Verdict::Jump("FILTER-WEB".into())),
            4,
        )],
    );
    b(&mut net).iptables = Some(ruleset(FirewallSource::Iptables, "ip", "filter", vec![fwd, user]));
    let t = run(&net, "host:a", "10.1.0.50:443");
    assert_eq!(t.disposition.kind, DispositionKind::Delivered, "{}", explain(&t));
    let t = run(&net, "host:a", "10.1.0.50:80");
    let (comp, action, kind) = last(&t);
    assert_eq!((action, kind), (Action::Drop, DispositionKind::Dropped), "{}", explain(&t));
    assert!(comp.contains("ip filter/FILTER-WEB"), "{comp}");
    assert_eq!(t.hops.last().unwrap().evidence[0].excerpt, "-A FILTER-WEB -j DROP");
}

#[test]
fn nft_unrecognised_match_makes_the_hop_unknown() {
    let mut net = three_hosts();
    let fwd = chain(
        "forward",
        Some(Hook::Forward),
        Some(Verdict::Drop),
        vec![fw_rule(
            "meta skuid 0 accept",
            vec![Match::Unrecognised { text: "meta skuid 0".into() }],
            Some(Verdict::Accept),
            3,
        )],
    );
    b(&mut net).nftables = Some(ruleset(FirewallSource::Nftables, "inet", "fw", vec![fwd]));
    let t = run(&net, "host:a", "10.1.0.50:80");
    let (comp, action, kind) = last(&t);
    assert_eq!((action, kind), (Action::Unknown, DispositionKind::Ambiguous), "{}", explain(&t));
    assert!(comp.contains("nftables inet fw/forward"), "{comp}");
    assert!(t.hops.last().unwrap().reason.contains("meta skuid 0"), "{}", explain(&t));
}

/// p (10.244.1.10) ── gw (cni0 10.244.1.1, eth1 203.0.113.1, wg0) ══ site (203.0.113.2, wg0, lan 10.20.1.1) ── app 10.20.1.10
fn wg_net(gw_allowed: &[&str], site_allowed: &[&str]) -> Network {
    let mut p = host("p");
    iface(&mut p, "eth0", InterfaceKind::Veth, &["10.244.1.10/24"]);
    route(&mut p, 254, "default", Some("10.244.1.1"), Some("eth0"), RouteType::Unicast);
    let mut gw = host("gw");
    iface(&mut gw, "cni0", InterfaceKind::Bridge, &["10.244.1.1/24"]);
    iface(&mut gw, "eth1", InterfaceKind::Physical, &["203.0.113.1/28"]);
    iface(&mut gw, "wg0", InterfaceKind::WireGuard, &["10.99.0.1/30"]);
    route(&mut gw, 254, "10.20.0.0/16", None, Some("wg0"), RouteType::Unicast);
    route(&mut gw, 254, "10.244.1.0/24", None, Some("cni0"), RouteType::Unicast);
    route(&mut gw, 254, "203.0.113.0/28", None, Some("eth1"), RouteType::Unicast);
    wg(&mut gw, "wg0", "GWKEY", 51820, vec![peer("SITEKEY", Some("203.0.113.2:51820"), gw_allowed)]);
    let mut site = host("site");
    iface(&mut site, "eth0", InterfaceKind::Physical, &["203.0.113.2/28"]);
    iface(&mut site, "wg0", InterfaceKind::WireGuard, &["10.99.0.2/30"]);
    iface(&mut site, "lan0", InterfaceKind::Physical, &["10.20.1.1/24"]);
    route(&mut site, 254, "10.20.1.0/24", None, Some("lan0"), RouteType::Unicast);
    route(&mut site, 254, "203.0.113.0/28", None, Some("eth0"), RouteType::Unicast);
    route(&mut site, 254, "10.244.0.0/16", None, Some("wg0"), RouteType::Unicast);
    wg(&mut site, "wg0", "SITEKEY", 51820, vec![peer("GWKEY", Some("203.0.113.1:51820"), site_allowed)]);
    let mut app = host("app");
    iface(&mut app, "eth0", InterfaceKind::Physical, &["10.20.1.10/24"]);
    Network { hosts: vec![p, gw, site, app], ..Network::default() }
}

#[test]
fn wireguard_both_directions() {
    let net = wg_net(&["10.99.0.2/32", "10.20.0.0/16"], &["10.99.0.1/32", "10.244.0.0/16"]);
    let t = run(&net, "host:p", "10.20.1.10:5000");
    assert_eq!(t.disposition.kind, DispositionKind::Delivered, "{}", explain(&t));
    assert!(
        t.hops.iter().any(|h| h.component == "host/gw wg wg0 peer SITEKEY…" && h.action == Action::Forward),
        "{}",
        explain(&t)
    );
    assert!(
        t.hops.iter().any(|h| h.component == "host/site wg wg0 peer GWKEY…" && h.action == Action::Forward),
        "{}",
        explain(&t)
    );

    // Sending side: the destination is in no peer's AllowedIPs.
    let net = wg_net(&["10.99.0.2/32", "10.21.0.0/16"], &["10.99.0.1/32", "10.244.0.0/16"]);
    let t = run(&net, "host:p", "10.20.1.10:5000");
    assert_eq!(last(&t), ("host/gw wg wg0".into(), Action::Drop, DispositionKind::Dropped), "{}", explain(&t));

    // Receiving side: the source is not in the site's AllowedIPs for the gateway.
    let net = wg_net(&["10.99.0.2/32", "10.20.0.0/16"], &["10.99.0.1/32", "10.245.0.0/16"]);
    let t = run(&net, "host:p", "10.20.1.10:5000");
    assert_eq!(
        last(&t),
        ("host/site wg wg0 peer GWKEY…".into(), Action::Drop, DispositionKind::Dropped),
        "{}",
        explain(&t)
    );
    assert!(t.hops.last().unwrap().reason.contains("unallowed src IP"), "{}", explain(&t));

    // Longest prefix picks the more specific peer.
    let mut net = wg_net(&["10.99.0.2/32", "10.20.0.0/16"], &["10.99.0.1/32", "10.244.0.0/16"]);
    let gw = net.hosts.iter_mut().find(|h| h.name == "gw").unwrap();
    let mut other = peer("OTHERKEY", Some("198.51.100.9:51820"), &["10.20.1.0/24"]);
    other.latest_handshake = None;
    gw.wireguard[0].peers.push(other);
    let t = run(&net, "host:p", "10.20.1.10:5000");
    assert_eq!(
        last(&t),
        ("host/gw wg wg0 peer OTHERKEY…".into(), Action::Drop, DispositionKind::Dropped),
        "{}",
        explain(&t)
    );
    assert!(t.hops.last().unwrap().reason.contains("never completed a handshake"));
}

fn ipsec_conn(
    name: &str,
    local: &str,
    remote: &str,
    local_ts: &str,
    remote_ts: &str,
    proposals: &str,
) -> netsleuth_model::ipsec::IpsecConnection {
    serde_json::from_value(json!({
        "name": name, "version": 2, "local_addrs": [local], "remote_addrs": [remote], "proposals": [proposals],
        "local_auth": [], "remote_auth": [],
        "children": [{"name": format!("{name}-child"), "local_ts": [local_ts], "remote_ts": [remote_ts], "esp_proposals": [],
                       "mode": null, "rekey_time": null, "life_time": null, "start_action": "trap", "dpd_action": null,
                       "close_action": null, "settings": {}, "origin": {"kind": "file", "path": format!("hosts/{name}/swanctl/swanctl.conf"), "line": 12}}],
        "rekey_time": null, "reauth_time": null, "over_time": null, "dpd_delay": null, "dpd_timeout": null,
        "encap": null, "mobike": null, "settings": {}, "origin": {"kind": "file", "path": format!("hosts/{name}/swanctl/swanctl.conf"), "line": 2}
    }))
    .unwrap()
}

/// vpc (10.244.0.1 lan, 198.51.100.30) ══ IPsec ══ onprem (198.51.100.40, 10.20.0.1 lan) ── srv 10.20.0.5
fn ipsec_net(onprem_local_ts: &str, onprem_proposals: &str) -> Network {
    let mut client = host("client");
    iface(&mut client, "eth0", InterfaceKind::Physical, &["10.244.0.10/24"]);
    route(&mut client, 254, "default", Some("10.244.0.1"), Some("eth0"), RouteType::Unicast);
    let mut vpc = host("vpc");
    iface(&mut vpc, "lan0", InterfaceKind::Physical, &["10.244.0.1/24"]);
    iface(&mut vpc, "eth0", InterfaceKind::Physical, &["198.51.100.30/24"]);
    route(&mut vpc, 254, "default", Some("198.51.100.1"), Some("eth0"), RouteType::Unicast);
    vpc.ipsec.connections.push(ipsec_conn(
        "vpc",
        "198.51.100.30",
        "198.51.100.40",
        "10.244.0.0/16",
        "10.20.0.0/16",
        "aes256-sha256-modp2048",
    ));
    let mut onprem = host("onprem");
    iface(&mut onprem, "eth0", InterfaceKind::Physical, &["198.51.100.40/24"]);
    iface(&mut onprem, "lan0", InterfaceKind::Physical, &["10.20.0.1/24"]);
    route(&mut onprem, 254, "10.20.0.0/24", None, Some("lan0"), RouteType::Unicast);
    onprem.ipsec.connections.push(ipsec_conn(
        "onprem",
        "198.51.100.40",
        "198.51.100.30",
        onprem_local_ts,
        "10.244.0.0/16",
        onprem_proposals,
    ));
    let mut srv = host("srv");
    iface(&mut srv, "eth0", InterfaceKind::Physical, &["10.20.0.5/24"]);
    Network { hosts: vec![client, vpc, onprem, srv], ..Network::default() }
}

#[test]
fn ipsec_selectors_must_cover_both_ends() {
    let net = ipsec_net("10.20.0.0/16", "aes256-sha256-modp2048");
    let t = run(&net, "host:client", "10.20.0.5:443");
    assert_eq!(t.disposition.kind, DispositionKind::Delivered, "{}", explain(&t));
    assert!(
        t.hops.iter().any(|h| h.component == "host/vpc ipsec vpc/vpc-child" && h.action == Action::Forward),
        "{}",
        explain(&t)
    );
    assert!(t.assumptions.iter().any(|a| a.contains("whether its CHILD_SA is installed")), "{:?}", t.assumptions);

    // The far end's local selector does not cover the destination: TS_UNACCEPTABLE.
    let net = ipsec_net("10.30.0.0/16", "aes256-sha256-modp2048");
    let t = run(&net, "host:client", "10.20.0.5:443");
    assert_eq!(
        last(&t),
        ("host/onprem ipsec onprem".into(), Action::Drop, DispositionKind::Dropped),
        "{}",
        explain(&t)
    );
    assert!(t.hops.last().unwrap().reason.contains("TS_UNACCEPTABLE"));

    // No common IKE proposal.
    let net = ipsec_net("10.20.0.0/16", "aes256-sha256-ecp384");
    let t = run(&net, "host:client", "10.20.0.5:443");
    assert_eq!(t.disposition.kind, DispositionKind::Dropped, "{}", explain(&t));
    assert!(t.hops.last().unwrap().reason.contains("no common IKE proposal"), "{}", explain(&t));

    // Traffic outside the selectors is routed normally (here: out of the bundle).
    let net = ipsec_net("10.20.0.0/16", "aes256-sha256-modp2048");
    let t = run(&net, "host:client", "192.0.2.7:443");
    assert_eq!(t.disposition.kind, DispositionKind::ExitsNetwork, "{}", explain(&t));
}

fn aws(nacl_b_out_deny_ephemeral: bool, sg_b_port: u16, route_state: &str, tunnels: &str) -> Network {
    let d = json!({"kind": "derived"});
    let mut nacl_b = vec![
        json!({"rule_number": 100, "egress": false, "protocol": "6", "action": "allow", "cidr": "10.0.1.0/24", "port_from": 443, "port_to": 443, "origin": d}),
        json!({"rule_number": 32767, "egress": false, "protocol": "-1", "action": "deny", "cidr": "0.0.0.0/0", "port_from": null, "port_to": null, "origin": d}),
        json!({"rule_number": 32767, "egress": true, "protocol": "-1", "action": "deny", "cidr": "0.0.0.0/0", "port_from": null, "port_to": null, "origin": d}),
    ];
    let out_range = if nacl_b_out_deny_ephemeral { (1, 1023) } else { (1024, 65535) };
    nacl_b.push(json!({"rule_number": 100, "egress": true, "protocol": "6", "action": "allow", "cidr": "10.0.1.0/24", "port_from": out_range.0, "port_to": out_range.1, "origin": d}));
    let all = |egress: bool| json!({"rule_number": 100, "egress": egress, "protocol": "-1", "action": "allow", "cidr": "0.0.0.0/0", "port_from": null, "port_to": null, "origin": d});
    let tunnels: Vec<serde_json::Value> = tunnels.split(',').map(|s| json!(["203.0.113.5", s, null])).collect();
    let aws = json!({
        "vpcs": [{"id": "vpc-1", "cidrs": ["10.0.0.0/16"], "origin": d}],
        "subnets": [
            {"id": "subnet-a", "vpc_id": "vpc-1", "cidr": "10.0.1.0/24", "ipv6_cidrs": [], "availability_zone": null, "available_ips": null, "origin": d},
            {"id": "subnet-b", "vpc_id": "vpc-1", "cidr": "10.0.2.0/24", "ipv6_cidrs": [], "availability_zone": null, "available_ips": null, "origin": d}
        ],
        "route_tables": [{"id": "rtb-main", "vpc_id": "vpc-1", "subnet_ids": [], "main": true, "propagating_vgws": [], "origin": d, "routes": [
            {"destination": "10.0.0.0/16", "destination_prefix_list": null, "target": "local", "state": "active", "origin_kind": null, "origin": d},
            {"destination": "192.168.0.0/16", "destination_prefix_list": null, "target": "vgw-1", "state": route_state, "origin_kind": null, "origin": d}
        ]}],
        "security_groups": [
            {"id": "sg-a", "name": null, "vpc_id": "vpc-1", "ingress": [], "origin": d, "egress": [
                {"protocol": "-1", "from_port": null, "to_port": null, "cidrs": ["0.0.0.0/0"], "groups": [], "prefix_lists": [], "origin": d}]},
            {"id": "sg-b", "name": null, "vpc_id": "vpc-1", "egress": [], "origin": d, "ingress": [
                {"protocol": "tcp", "from_port": sg_b_port, "to_port": sg_b_port, "cidrs": [], "groups": ["sg-a"], "prefix_lists": [], "origin": d}]}
        ],
        "network_acls": [
            {"id": "acl-a", "vpc_id": "vpc-1", "subnet_ids": ["subnet-a"], "is_default": false, "entries": [all(true), all(false)], "origin": d},
            {"id": "acl-b", "vpc_id": "vpc-1", "subnet_ids": ["subnet-b"], "is_default": false, "entries": nacl_b, "origin": d}
        ],
        "vpn_connections": [{"id": "vpn-1", "state": "available", "vpn_gateway_id": "vgw-1", "transit_gateway_id": null,
            "customer_gateway_id": "cgw-1", "static_routes_only": false, "routes": [], "tunnels": tunnels, "origin": d}],
        "instances": [
            {"id": "i-a", "subnet_id": "subnet-a", "vpc_id": "vpc-1", "private_ips": ["10.0.1.10"], "source_dest_check": true, "security_groups": ["sg-a"], "name": null, "origin": d},
            {"id": "i-b", "subnet_id": "subnet-b", "vpc_id": "vpc-1", "private_ips": ["10.0.2.20"], "source_dest_check": true, "security_groups": ["sg-b"], "name": null, "origin": d}
        ],
        "transit_gateway_route_tables": []
    });
    Network { aws: serde_json::from_value(aws).unwrap(), ..Network::default() }
}

#[test]
fn aws_security_groups_nacls_both_directions_routes_and_vpn() {
    let net = aws(false, 443, "active", "UP,DOWN");
    let t = run(&net, "10.0.1.10", "10.0.2.20:443");
    assert_eq!(last(&t), ("aws/i-b".into(), Action::Deliver, DispositionKind::Delivered), "{}", explain(&t));
    // The security group referenced by group id (sg-a) allowed it.
    assert!(
        t.hops.iter().any(|h| h.component == "aws/i-b security groups (ingress)" && h.action == Action::Forward),
        "{}",
        explain(&t)
    );

    // Wrong port: SG ingress denies (NACL allows only 443 anyway, so check SG via port 443 rule change).
    let net = aws(false, 8443, "active", "UP");
    let t = run(&net, "10.0.1.10", "10.0.2.20:443");
    assert_eq!(
        last(&t),
        ("aws/i-b security groups (ingress)".into(), Action::Drop, DispositionKind::Dropped),
        "{}",
        explain(&t)
    );

    // NACL inbound of subnet-b: port 80 hits the final deny.
    let net = aws(false, 80, "active", "UP");
    let t = run(&net, "10.0.1.10", "10.0.2.20:80");
    assert_eq!(
        last(&t),
        ("aws/acl-b (subnet-b inbound)".into(), Action::Drop, DispositionKind::Dropped),
        "{}",
        explain(&t)
    );

    // Stateless return path: subnet-b's outbound NACL does not allow the ephemeral reply port.
    let net = aws(true, 443, "active", "UP");
    let t = run(&net, "10.0.1.10", "10.0.2.20:443");
    assert_eq!(
        last(&t),
        ("aws/acl-b (subnet-b outbound)".into(), Action::Drop, DispositionKind::Dropped),
        "{}",
        explain(&t)
    );
    assert!(t.hops.last().unwrap().reason.starts_with("reply"), "{}", explain(&t));

    // VPN: a tunnel UP leaves the network; all DOWN drops; a blackhole route drops.
    let t = run(&aws(false, 443, "active", "UP,DOWN"), "10.0.1.10", "192.168.1.1:443");
    assert_eq!(t.disposition.kind, DispositionKind::ExitsNetwork, "{}", explain(&t));
    let t = run(&aws(false, 443, "active", "DOWN,DOWN"), "10.0.1.10", "192.168.1.1:443");
    assert_eq!(last(&t), ("aws/vpn-1".into(), Action::Drop, DispositionKind::Dropped), "{}", explain(&t));
    let t = run(&aws(false, 443, "blackhole", "UP"), "10.0.1.10", "192.168.1.1:443");
    assert_eq!(last(&t), ("aws/rtb-main (subnet-a)".into(), Action::Drop, DispositionKind::Dropped), "{}", explain(&t));
    // No route at all.
    let t = run(&aws(false, 443, "active", "UP"), "10.0.1.10", "172.16.0.1:443");
    assert_eq!(t.disposition.kind, DispositionKind::NoRoute, "{}", explain(&t));
}

#[test]
fn strict_reverse_path_filter_drops_asymmetric_arrivals() {
    use netsleuth_model::host::SysctlValue;
    let mut net = three_hosts();
    // c routes a's network back through another interface: with rp_filter 1 on c, a's
    // packets arriving on eth0 are martians; with 2 (loose) any route back will do.
    let c = net.hosts.iter_mut().find(|h| h.name == "c").unwrap();
    iface(c, "eth1", InterfaceKind::Physical, &["10.2.0.50/24"]);
    route(c, 254, "10.0.0.0/24", Some("10.2.0.1"), Some("eth1"), RouteType::Unicast);
    let set = |c: &mut Host, v: &str| {
        c.sysctls.values.insert(
            "net.ipv4.conf.all.rp_filter".into(),
            SysctlValue { value: v.into(), origin: loc("c", "sysctl.txt", 9) },
        );
    };
    set(c, "1");
    let t = run(&net, "host:a", "10.1.0.50:80");
    assert_eq!(last(&t), ("host/c rp_filter eth0".into(), Action::Drop, DispositionKind::Dropped), "{}", explain(&t));
    assert!(t.hops.last().unwrap().reason.contains("leaves through eth1"), "{}", explain(&t));
    let c = net.hosts.iter_mut().find(|h| h.name == "c").unwrap();
    set(c, "2");
    assert_eq!(run(&net, "host:a", "10.1.0.50:80").disposition.kind, DispositionKind::Delivered);
}

#[test]
fn ipsec_selectors_that_do_not_mirror_are_named_on_the_sending_side() {
    let mut net = ipsec_net("10.20.0.0/16", "aes256-sha256-modp2048");
    let vpc = net.hosts.iter_mut().find(|h| h.name == "vpc").unwrap();
    vpc.ipsec.connections[0].children[0].remote_ts = vec!["10.30.0.0/16".into()];
    let t = run(&net, "host:client", "10.20.0.5:443");
    assert_eq!(
        last(&t),
        ("host/vpc ipsec vpc/vpc-child".into(), Action::Drop, DispositionKind::Dropped),
        "{}",
        explain(&t)
    );
    assert!(t.hops.last().unwrap().reason.contains("do not mirror"), "{}", explain(&t));
    assert_eq!(t.hops.last().unwrap().evidence.len(), 2, "both children are cited");
}

#[test]
fn aws_reply_from_outside_the_vpc_crosses_the_source_acl() {
    let mut net = aws(false, 443, "active", "UP");
    // subnet-a's ACL denies inbound traffic from the on-prem range before allowing all.
    let deny: netsleuth_model::cloud::NaclEntry = serde_json::from_value(json!({
        "rule_number": 50, "egress": false, "protocol": "-1", "action": "deny", "cidr": "192.168.0.0/16",
        "port_from": null, "port_to": null, "origin": {"kind": "derived"}
    }))
    .unwrap();
    net.aws.network_acls[0].entries.push(deny);
    let t = run(&net, "10.0.1.10", "192.168.1.1:443");
    assert_eq!(
        last(&t),
        ("aws/acl-a (subnet-a inbound)".into(), Action::Drop, DispositionKind::Dropped),
        "{}",
        explain(&t)
    );
    assert!(t.hops.last().unwrap().reason.starts_with("reply: rule 50 denies"), "{}", explain(&t));
}

#[test]
fn pod_gateway_held_by_nobody_leads_to_the_pod_node() {
    // Calico style: the pod's default gateway 169.254.1.1 is answered by the node (proxy
    // ARP); the node routes the pod network back through a per-pod interface.
    let mut pod = host("pod-x");
    pod.pod = Some("default/x".into());
    pod.node = Some("n1".into());
    iface(&mut pod, "eth0", InterfaceKind::Veth, &["10.244.9.9/32"]);
    route(&mut pod, 254, "default", Some("169.254.1.1"), Some("eth0"), RouteType::Unicast);
    let mut node = host("n1");
    node.role = Some(netsleuth_model::host::HostRole::Node);
    iface(&mut node, "eth0", InterfaceKind::Physical, &["10.0.0.2/24"]);
    route(&mut node, 254, "10.0.0.0/24", None, Some("eth0"), RouteType::Unicast);
    let mut net = three_hosts();
    net.hosts.retain(|h| h.name != "b");
    net.hosts.push(pod);
    net.hosts.push(node);
    let t = run(&net, "host:pod-x", "10.0.0.1:80");
    assert_eq!(t.disposition.kind, DispositionKind::Delivered, "{}", explain(&t));
    let comps: Vec<&str> = t.hops.iter().map(|h| h.component.as_str()).collect();
    assert!(comps.contains(&"host/n1 route table main"), "the node routes it: {comps:?}");
}

#[test]
fn wireguard_underlay_is_traced_through_the_firewalls() {
    let mut net = wg_net(&["10.99.0.2/32", "10.20.0.0/16"], &["10.99.0.1/32", "10.244.0.0/16"]);
    let t = run(&net, "host:p", "10.20.1.10:5000");
    assert!(
        t.hops.iter().any(|h| h.component == "host/gw underlay to site"
            && h.reason.contains("udp 203.0.113.1:51820 → 203.0.113.2:51820")),
        "{}",
        explain(&t)
    );
    // The site's input chain drops WireGuard's port: the outer packet dies there.
    let input = chain(
        "input",
        Some(Hook::Input),
        Some(Verdict::Accept),
        vec![fw_rule(
            "udp dport 51820 drop",
            vec![
                Match::Protocol { negated: false, protocol: "udp".into() },
                Match::DstPort { negated: false, ports: vec![PortRange::single(51820)] },
            ],
            Some(Verdict::Drop),
            4,
        )],
    );
    net.hosts.iter_mut().find(|h| h.name == "site").unwrap().nftables =
        Some(ruleset(FirewallSource::Nftables, "inet", "filter", vec![input]));
    let t = run(&net, "host:p", "10.20.1.10:5000");
    let (comp, action, kind) = last(&t);
    assert_eq!(
        (comp.as_str(), action, kind),
        ("host/site nftables inet filter/input", Action::Drop, DispositionKind::Dropped),
        "{}",
        explain(&t)
    );
    assert!(t.disposition.reason.starts_with("the underlay of WireGuard wg0"), "{}", explain(&t));
}

/// `wg_net` with sizes: the pod's eth0 (MTU `pod_mtu`) is a veth whose peer `veth-p` on gw
/// has MTU 1450 (a port of cni0, also 1450); the tunnel wg0 has MTU 1420.
fn mtu_net(pod_mtu: u32) -> Network {
    let mut net = wg_net(&["10.99.0.2/32", "10.20.0.0/16"], &["10.99.0.1/32", "10.244.0.0/16"]);
    let p = net.hosts.iter_mut().find(|h| h.name == "p").unwrap();
    let eth0 = p.interfaces.iter_mut().find(|i| i.name == "eth0").unwrap();
    eth0.mtu = Some(pod_mtu);
    eth0.link = Some("if9".into());
    eth0.link_netnsid = Some(0);
    let eth0_index = eth0.index.unwrap();
    let gw = net.hosts.iter_mut().find(|h| h.name == "gw").unwrap();
    iface(gw, "veth-p", InterfaceKind::Veth, &[]);
    let veth = gw.interfaces.last_mut().unwrap();
    veth.index = Some(9);
    veth.mtu = Some(1450);
    veth.master = Some("cni0".into());
    veth.link = Some(format!("if{eth0_index}"));
    for i in gw.interfaces.iter_mut() {
        match i.name.as_str() {
            "cni0" => i.mtu = Some(1450),
            "wg0" => i.mtu = Some(1420),
            _ => {}
        }
    }
    net
}

fn run_opts(
    net: &Network,
    from: &str,
    to: &str,
    opts: &netsleuth_trace::path::TraceOptions,
) -> netsleuth_trace::path::Trace {
    netsleuth_trace::path::trace(net, &from.parse().unwrap(), &to.parse().unwrap(), opts).unwrap()
}

#[test]
fn mtu_bigger_than_the_receiving_veth_is_dropped_silently() {
    let net = mtu_net(1500);
    let t = run(&net, "host:p", "10.20.1.10:5001/udp");
    assert_eq!(t.packet.size, Some(1500), "default size: the source's egress MTU");
    assert!(t.packet.df);
    let (comp, action, kind) = last(&t);
    assert_eq!(
        (comp.as_str(), action, kind),
        ("host/gw iface veth-p", Action::Drop, DispositionKind::Dropped),
        "{}",
        explain(&t)
    );
    let h = t.hops.last().unwrap();
    assert!(
        h.reason.contains("1500-byte") && h.reason.contains("MTU 1450") && h.reason.contains("silently"),
        "{}",
        h.reason
    );
    let m = h.mtu.as_ref().expect("mtu recorded");
    assert_eq!(
        (m.size, m.egress.as_ref().map(|e| e.mtu), m.ingress.as_ref().map(|i| i.mtu)),
        (1500, Some(1500), Some(1450))
    );
    assert!(t.assumptions.iter().any(|a| a.contains("packet size 1500 bytes")), "{:?}", t.assumptions);
    let j = serde_json::to_value(&t).unwrap();
    assert_eq!(j["hops"][0]["mtu"], serde_json::Value::Null);
    assert_eq!(j["hops"].as_array().unwrap().last().unwrap()["mtu"]["ingress"]["interface"], json!("veth-p"));
    assert_eq!(j["packet"]["size"], json!(1500));
    // Matching MTUs: delivered, and the hand-off hop records both ends.
    let net = mtu_net(1450);
    let t = run(&net, "host:p", "10.20.1.10:5001/udp");
    assert_eq!(t.disposition.kind, DispositionKind::Delivered, "{}", explain(&t));
    let handoff = t.hops.iter().find(|h| h.component == "host/p iface eth0").unwrap();
    let m = handoff.mtu.as_ref().unwrap();
    assert_eq!((m.size, m.ingress.as_ref().map(|i| i.interface.as_str())), (1450, Some("veth-p")));
}

#[test]
fn mtu_egress_narrower_than_the_packet_pmtud_df_and_fragments() {
    let net = mtu_net(1450);
    // Default size: PMTUD settles the traffic at the tunnel's 1420 (stated), the outer
    // WireGuard packet is 1420 + 60 + padding to 16 (4) bytes.
    let t = run(&net, "host:p", "10.20.1.10:5001/udp");
    assert_eq!(t.disposition.kind, DispositionKind::Delivered, "{}", explain(&t));
    let wg0 = t.hops.iter().find(|h| h.component == "host/gw iface wg0").expect("PMTUD hop");
    assert!(wg0.action == Action::Forward && wg0.reason.contains("fragmentation-needed (MTU 1420)"), "{}", wg0.reason);
    assert!(t.assumptions.iter().any(|a| a.contains("path MTU discovery works")), "{:?}", t.assumptions);
    assert!(
        t.hops.iter().any(|h| h.component == "host/gw underlay to site" && h.reason.contains("1484 bytes")),
        "{}",
        explain(&t)
    );
    // An explicit size with DF is that one packet: dropped with fragmentation-needed.
    let opts = netsleuth_trace::path::TraceOptions { size: Some(1450), ..Default::default() };
    let t = run_opts(&net, "host:p", "10.20.1.10:5001/udp", &opts);
    let (comp, action, kind) = last(&t);
    assert_eq!(
        (comp.as_str(), action, kind),
        ("host/gw iface wg0", Action::Drop, DispositionKind::Dropped),
        "{}",
        explain(&t)
    );
    assert!(t.hops.last().unwrap().reason.contains("needs PMTUD: ICMP fragmentation-needed must reach the source"));
    // 1420 fits.
    let opts = netsleuth_trace::path::TraceOptions { size: Some(1420), ..Default::default() };
    assert_eq!(run_opts(&net, "host:p", "10.20.1.10:5001/udp", &opts).disposition.kind, DispositionKind::Delivered);
    // Without DF the gateway fragments.
    let opts = netsleuth_trace::path::TraceOptions { size: Some(1450), no_df: true, ..Default::default() };
    let t = run_opts(&net, "host:p", "10.20.1.10:5001/udp", &opts);
    assert_eq!(t.disposition.kind, DispositionKind::Delivered, "{}", explain(&t));
    assert!(!t.packet.df);
    assert!(
        t.hops.iter().any(|h| h.component == "host/gw iface wg0" && h.reason.contains("fragments")),
        "{}",
        explain(&t)
    );
    // The source's own stack refuses a DF datagram bigger than its interface.
    let opts = netsleuth_trace::path::TraceOptions { size: Some(1600), ..Default::default() };
    let t = run_opts(&net, "host:p", "10.20.1.10:5001/udp", &opts);
    assert_eq!(last(&t), ("host/p iface eth0".into(), Action::Drop, DispositionKind::Dropped), "{}", explain(&t));
    assert!(t.hops.last().unwrap().reason.contains("EMSGSIZE"));
}

#[test]
fn mtu_tcp_segments_are_capped_by_the_mss_clamp_on_the_path() {
    // The pod's 1500 against its 1450 veth: TCP to a 1500-MTU server sends 1500-byte
    // segments, which the veth drops.
    let mut net = mtu_net(1500);
    let t = run(&net, "host:p", "10.20.1.10:5000");
    assert_eq!(t.packet.size, Some(1500));
    assert_eq!(last(&t), ("host/gw iface veth-p".into(), Action::Drop, DispositionKind::Dropped), "{}", explain(&t));
    // An MSS clamp on the gateway caps both directions' segments at 1380 + 40: it passes.
    let clamp = chain(
        "forward",
        Some(Hook::Forward),
        Some(Verdict::Accept),
        vec![fw_rule(
            "tcp flags & (syn | rst) == syn tcp option maxseg size set 1380",
            vec![Match::Protocol { negated: false, protocol: "tcp".into() }],
            Some(Verdict::Other("tcp option maxseg size set 1380".into())),
            3,
        )],
    );
    net.hosts.iter_mut().find(|h| h.name == "gw").unwrap().nftables =
        Some(ruleset(FirewallSource::Nftables, "inet", "mss_clamp", vec![clamp]));
    let t = run(&net, "host:p", "10.20.1.10:5000");
    assert_eq!(t.disposition.kind, DispositionKind::Delivered, "{}", explain(&t));
    assert_eq!(t.packet.size, Some(1420));
    assert!(t.assumptions.iter().any(|a| a.contains("clamps the MSS")), "{:?}", t.assumptions);
    // UDP is not clamped: still dropped at the veth.
    assert_eq!(run(&net, "host:p", "10.20.1.10:5001/udp").disposition.kind, DispositionKind::Dropped);
}

#[test]
fn mtu_ipsec_inner_packet_must_fit_the_outer_mtu_minus_esp() {
    // vpc's eth0 has MTU 1500: ESP (≈77 bytes, worst case) leaves ≈1423 for the inner packet.
    let net = ipsec_net("10.20.0.0/16", "aes256-sha256-modp2048");
    let opts = netsleuth_trace::path::TraceOptions { size: Some(1500), ..Default::default() };
    let t = run_opts(&net, "host:client", "10.20.0.5:443/udp", &opts);
    let (comp, action, kind) = last(&t);
    assert_eq!(
        (comp.as_str(), action, kind),
        ("host/vpc iface ESP over eth0", Action::Drop, DispositionKind::Dropped),
        "{}",
        explain(&t)
    );
    assert_eq!(t.hops.last().unwrap().mtu.as_ref().and_then(|m| m.egress.as_ref()).map(|e| e.mtu), Some(1423));
    // 1400 bytes fit: the outer packet is 1477 bytes.
    let opts = netsleuth_trace::path::TraceOptions { size: Some(1400), ..Default::default() };
    let t = run_opts(&net, "host:client", "10.20.0.5:443/udp", &opts);
    assert_eq!(t.disposition.kind, DispositionKind::Delivered, "{}", explain(&t));
    assert!(
        t.hops.iter().any(|h| h.component == "host/vpc underlay to onprem" && h.reason.contains("1477 bytes")),
        "{}",
        explain(&t)
    );
}

#[test]
fn mtu_route_mtu_lowers_the_egress_and_unknown_mtus_are_not_checked() {
    let mut net = three_hosts();
    // A per-route MTU on b's route to c's LAN (Cilium-style clamp).
    let bh = b(&mut net);
    bh.routes.routes.iter_mut().find(|r| r.dev.as_deref() == Some("lan0")).unwrap().mtu = Some(1400);
    let opts = netsleuth_trace::path::TraceOptions { size: Some(1500), ..Default::default() };
    let t = run_opts(&net, "host:a", "10.1.0.50:53/udp", &opts);
    assert_eq!(last(&t), ("host/b iface lan0".into(), Action::Drop, DispositionKind::Dropped), "{}", explain(&t));
    assert!(t.hops.last().unwrap().evidence[0].excerpt.contains("route 10.1.0.0/24 mtu 1400"), "{}", explain(&t));
    // No MTUs in the bundle: the size is unknown and nothing is checked (stated).
    for h in net.hosts.iter_mut() {
        for i in h.interfaces.iter_mut() {
            i.mtu = None;
        }
        for r in h.routes.routes.iter_mut() {
            r.mtu = None;
        }
    }
    let t = run(&net, "host:a", "10.1.0.50:53/udp");
    assert_eq!(t.disposition.kind, DispositionKind::Delivered, "{}", explain(&t));
    assert_eq!(t.packet.size, None);
    assert!(t.hops.iter().all(|h| h.mtu.is_none()));
    assert!(t.assumptions.iter().any(|a| a.contains("packet size unknown")), "{:?}", t.assumptions);
}

#[test]
fn host_destination_is_its_default_route_source_address() {
    let net = three_hosts();
    // c's default route leaves through eth0 (10.1.0.50).
    let t = run(&net, "host:a", "host:c:22");
    assert_eq!(t.packet.dst.to_string(), "10.1.0.50");
    assert_eq!(t.packet.dst_port, Some(22));
    assert_eq!(last(&t), ("host/c".into(), Action::Deliver, DispositionKind::Delivered), "{}", explain(&t));
    assert!(t.assumptions.iter().any(|a| a.contains("host:c is traced to 10.1.0.50")), "{:?}", t.assumptions);
    // b has no default route: its first address.
    let t = run(&net, "host:a", "host:b");
    assert_eq!(t.packet.dst.to_string(), "10.0.0.2");
    let err = netsleuth_trace::path::trace(
        &net,
        &"host:a".parse().unwrap(),
        &"host:nope".parse().unwrap(),
        &Default::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no host nope in the bundle (hosts: a, b, c)"), "{err}");
}
