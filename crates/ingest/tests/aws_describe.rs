//! The AWS parser on `aws ec2 describe-*` fixtures shaped like the AWS CLI reference
//! examples: routes and their targets, rules, NACL entries, VPN tunnels, redacted PSKs.

use netsleuth_ingest::{aws, ParseContext, ParseError, Redactor, Source};
use netsleuth_model::cloud::Aws;
use netsleuth_model::{Location, RedactionKind};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/aws/");

fn load(what: &str, aws: &mut Aws, ctx: &mut ParseContext) -> Result<bool, ParseError> {
    let text = std::fs::read_to_string(format!("{DIR}describe-{what}.json")).expect("fixture");
    aws::parse(&Source::new(&format!("cloud/aws/describe-{what}.json"), &text), what, aws, ctx)
}

fn all() -> (Aws, ParseContext) {
    let mut a = Aws::default();
    let mut ctx = ParseContext::new(Redactor::from_salt("fixture-salt"));
    for what in [
        "route-tables",
        "security-groups",
        "network-acls",
        "vpn-connections",
        "subnets",
        "vpcs",
        "instances",
        "transit-gateway-route-tables",
    ] {
        assert!(load(what, &mut a, &mut ctx).unwrap(), "{what}");
    }
    (a, ctx)
}

fn ptr(loc: &Location) -> &str {
    match loc {
        Location::Json { pointer, .. } => pointer,
        other => panic!("not a JSON location: {other:?}"),
    }
}

#[test]
fn route_tables() {
    let (a, ctx) = all();
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    assert_eq!(a.route_tables.len(), 2);
    let main = &a.route_tables[0];
    assert!(main.main && main.subnet_ids.is_empty());
    assert_eq!(main.routes[1].target, "igw-06cf664d80EXAMPLE");
    let private = &a.route_tables[1];
    assert_eq!(private.id, "rtb-a1eec7de");
    assert!(!private.main);
    assert_eq!(private.subnet_ids, vec!["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]);
    assert_eq!(private.propagating_vgws, vec!["vgw-0e1d2c3b4aEXAMPLE"]);
    let r = |i: usize| &private.routes[i];
    assert_eq!((r(0).target.as_str(), r(0).state.as_str()), ("local", "active"));
    // A route to a deleted NAT gateway is a blackhole.
    assert_eq!((r(1).target.as_str(), r(1).state.as_str()), ("nat-0b2a1c3d4eEXAMPLE", "blackhole"));
    assert_eq!(r(1).destination.unwrap().to_string(), "0.0.0.0/0");
    assert_eq!(ptr(&r(1).origin), "/RouteTables/1/Routes/1");
    assert_eq!(r(2).target, "vgw-0e1d2c3b4aEXAMPLE");
    assert_eq!(r(2).origin_kind.as_deref(), Some("EnableVgwRoutePropagation"));
    assert_eq!(r(3).target, "tgw-0bc994abffEXAMPLE");
    assert_eq!((r(4).destination, r(4).destination_prefix_list.as_deref()), (None, Some("pl-63a5400a")));
    assert_eq!(r(5).destination.unwrap().to_string(), "::/0");
    assert_eq!(r(5).target, "eigw-0a9b8c7d6eEXAMPLE");
}

#[test]
fn security_groups() {
    let (a, _) = all();
    let nodes = &a.security_groups[0];
    assert_eq!((nodes.id.as_str(), nodes.name.as_deref()), ("sg-0a1b2c3d4e5f60001", Some("eks-nodes")));
    assert_eq!(nodes.ingress.len(), 3);
    let all_self = &nodes.ingress[0];
    assert_eq!((all_self.protocol.as_str(), all_self.from_port), ("-1", None));
    assert_eq!(all_self.groups, vec!["sg-0a1b2c3d4e5f60001"]);
    let wg = &nodes.ingress[1];
    assert_eq!((wg.protocol.as_str(), wg.from_port, wg.to_port), ("udp", Some(51820), Some(51820)));
    assert_eq!(
        wg.cidrs.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        vec!["203.0.113.10/32", "2001:db8:1234:1a00::/64"]
    );
    assert_eq!(ptr(&wg.origin), "/SecurityGroups/0/IpPermissions/1");
    assert_eq!(nodes.ingress[2].prefix_lists, vec!["pl-0a1b2c3d4eEXAMPLE"]);
    assert_eq!(nodes.egress[0].cidrs.len(), 2);
    assert_eq!(ptr(&nodes.egress[0].origin), "/SecurityGroups/0/IpPermissionsEgress/0");
    let vpn = &a.security_groups[1];
    assert_eq!(vpn.ingress[1].protocol, "50", "ESP by number");
    assert!(vpn.egress.is_empty());
}

#[test]
fn network_acls() {
    let (a, _) = all();
    let acl = &a.network_acls[0];
    assert!(!acl.is_default);
    assert_eq!(acl.subnet_ids.len(), 2);
    let deny_ike = &acl.entries[0];
    assert_eq!(
        (deny_ike.rule_number, deny_ike.protocol.as_str(), deny_ike.action.as_str(), deny_ike.egress),
        (90, "17", "deny", false)
    );
    assert_eq!((deny_ike.port_from, deny_ike.port_to), (Some(500), Some(500)));
    assert_eq!(deny_ike.cidr.unwrap().to_string(), "0.0.0.0/0");
    assert_eq!(ptr(&deny_ike.origin), "/NetworkAcls/0/Entries/0");
    assert_eq!(acl.entries[2].cidr.unwrap().to_string(), "::/0");
    assert_eq!(acl.entries.iter().filter(|e| e.egress).count(), 2);
    assert!(a.network_acls[1].is_default);
}

#[test]
fn vpn_connections_and_psks() {
    let (a, ctx) = all();
    let v = &a.vpn_connections[0];
    assert_eq!(v.id, "vpn-0123456789EXAMPLE");
    assert_eq!(v.static_routes_only, Some(true));
    assert_eq!(v.vpn_gateway_id.as_deref(), Some("vgw-0e1d2c3b4aEXAMPLE"));
    assert_eq!(
        v.routes.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        vec!["10.20.0.0/16"],
        "deleted routes dropped"
    );
    assert_eq!(v.tunnels[0], ("52.28.13.101".to_string(), "UP".to_string(), Some(String::new())));
    assert_eq!(v.tunnels[1], ("52.28.13.102".to_string(), "DOWN".to_string(), Some("IPSEC IS DOWN".to_string())));
    let tgw = &a.vpn_connections[1];
    assert_eq!(
        (tgw.transit_gateway_id.as_deref(), tgw.static_routes_only),
        (Some("tgw-0bc994abffEXAMPLE"), Some(false))
    );

    let psk: Vec<(&str, RedactionKind)> = ctx.redactions.iter().map(|r| (ptr(&r.location), r.kind)).collect();
    assert_eq!(
        psk,
        vec![
            ("/VpnConnections/0/Options/TunnelOptions/0/PreSharedKey", RedactionKind::IpsecSecret),
            ("/VpnConnections/0/Options/TunnelOptions/1/PreSharedKey", RedactionKind::IpsecSecret),
            ("/VpnConnections/0/CustomerGatewayConfiguration", RedactionKind::IpsecSecret),
            ("/VpnConnections/0/CustomerGatewayConfiguration", RedactionKind::IpsecSecret),
        ]
    );
    // The PSK in the tunnel options and in the XML is the same key: same fingerprint.
    assert_eq!(ctx.redactions[0].secret, ctx.redactions[2].secret);
    assert_ne!(ctx.redactions[0].secret, ctx.redactions[1].secret);
    let text = serde_json::to_string(&a).unwrap() + &serde_json::to_string(&ctx.redactions).unwrap();
    for s in std::fs::read_to_string(format!("{DIR}secrets.txt")).unwrap().lines().filter(|l| !l.starts_with('#')) {
        assert!(!text.contains(s), "PSK leaked");
    }
}

#[test]
fn subnets_vpcs_instances_tgw() {
    let (a, _) = all();
    let s = &a.subnets[0];
    assert_eq!((s.cidr.unwrap().to_string(), s.available_ips), ("10.0.0.0/20".to_string(), Some(4089)));
    assert_eq!(s.ipv6_cidrs.len(), 1);
    assert_eq!(a.subnets[1].available_ips, Some(0));
    let vpc = &a.vpcs[0];
    let cidrs: Vec<String> = vpc.cidrs.iter().map(|c| c.to_string()).collect();
    assert_eq!(cidrs, vec!["10.0.0.0/16", "100.64.0.0/16", "2001:db8:1234:1a00::/56"], "disassociated block dropped");
    assert_eq!(a.instances.len(), 3);
    let router = &a.instances[0];
    assert_eq!((router.name.as_deref(), router.source_dest_check), (Some("vpn-router"), Some(true)));
    assert_eq!(router.security_groups, vec!["sg-0f9e8d7c6b5a40002"]);
    assert_eq!(ptr(&router.origin), "/Reservations/0/Instances/0");
    let node_a = &a.instances[1];
    assert_eq!(ptr(&node_a.origin), "/Reservations/1/Instances/0");
    let ips: Vec<String> = node_a.private_ips.iter().map(|i| i.to_string()).collect();
    assert_eq!(ips, vec!["10.0.2.11", "10.0.2.40", "10.0.2.41"]);
    let t = &a.transit_gateway_route_tables[0];
    assert_eq!(t.routes.len(), 3);
    assert_eq!(t.routes[1].target, "tgw-attach-0a89069f57EXAMPLE");
    assert_eq!(t.routes[1].origin_kind.as_deref(), Some("propagated"));
    assert_eq!((t.routes[2].target.as_str(), t.routes[2].state.as_str()), ("", "blackhole"));
    assert!(a.transit_gateway_route_tables[1].routes.is_empty(), "describe output alone has no routes");
}

#[test]
fn unknown_describe_is_skipped() {
    let mut a = Aws::default();
    let mut ctx = ParseContext::default();
    assert!(!load("key-pairs", &mut a, &mut ctx).unwrap());
    assert!(a.is_empty());
}

#[test]
fn bad_input() {
    let mut a = Aws::default();
    let mut ctx = ParseContext::default();
    let src = Source::new("cloud/aws/describe-vpcs.json", "{\"Vpcs\": [\n  {\"VpcId\": ");
    let e = aws::parse(&src, "vpcs", &mut a, &mut ctx).unwrap_err();
    assert_eq!((e.path.as_str(), e.line), ("cloud/aws/describe-vpcs.json", Some(2)));
    assert!(e.column.is_some());
    // The wrong file under the right name: a clear error, not an empty model.
    let src = Source::new("cloud/aws/describe-vpcs.json", "{\"Subnets\": []}");
    let e = aws::parse(&src, "vpcs", &mut a, &mut ctx).unwrap_err();
    assert!(e.message.contains("no \"Vpcs\" key"), "{e}");
    // One bad element: a warning; the rest is kept.
    let text = r#"{"RouteTables": [{"RouteTableId": "rtb-1", "VpcId": "vpc-1", "Routes": [
        {"DestinationCidrBlock": "10.0.0.0/33", "GatewayId": "local"},
        {"DestinationCidrBlock": "10.1.0.0/16", "GatewayId": "vgw-1", "State": "active"}]},
        {"RouteTableId": 7}]}"#;
    aws::parse(&Source::new("r.json", text), "route-tables", &mut a, &mut ctx).unwrap();
    assert_eq!(a.route_tables.len(), 1);
    assert_eq!(a.route_tables[0].routes.len(), 1);
    let at: Vec<&str> = ctx.issues.iter().map(|i| ptr(&i.location)).collect();
    assert_eq!(at, vec!["/RouteTables/0/Routes/0", "/RouteTables/1"]);
}

proptest::proptest! {
    #[test]
    fn random_input_never_panics(text in r#"[\[\]{}:,"a-zA-Z0-9 ./-]{0,300}"#, what in proptest::sample::select(vec![
        "route-tables", "security-groups", "network-acls", "vpn-connections", "subnets", "vpcs", "instances",
        "transit-gateway-route-tables",
    ])) {
        let mut a = Aws::default();
        let mut ctx = ParseContext::default();
        let _ = aws::parse(&Source::new("x.json", &text), what, &mut a, &mut ctx);
    }
}
