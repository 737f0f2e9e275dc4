//! AWS hops: the sender's security groups (stateful), its subnet's network ACL (stateless,
//! ordered, checked for the request and the reply), the subnet route table (longest prefix,
//! blackhole), VPN tunnel state, and SourceDestCheck on instances that forward.

use std::net::IpAddr;

use netsleuth_model::cloud::{Aws, AwsRouteTable, Instance, NaclEntry, NetworkAcl, SecurityGroup, SgRule, Subnet};
use netsleuth_model::{Evidence, Layer, Network};

use super::firewall_walk::proto_number;
use super::walk::{Arrival, Step, Walk};
use super::{Action, DispositionKind, Protocol};

/// The source port assumed for replies when none was given (NACLs are stateless).
const ASSUMED_EPHEMERAL: u16 = 49152;

/// Whether some subnet or instance of the bundle holds `addr`.
pub(super) fn holds(net: &Network, addr: IpAddr) -> bool {
    subnet_of(&net.aws, addr).is_some() || net.aws.instances.iter().any(|i| i.private_ips.contains(&addr))
}

fn subnet_of(aws: &Aws, addr: IpAddr) -> Option<&Subnet> {
    aws.subnets
        .iter()
        .filter(|s| s.cidr.iter().chain(s.ipv6_cidrs.iter()).any(|c| c.contains(&addr)))
        .max_by_key(|s| s.cidr.map(|c| c.prefix_len()).unwrap_or(0))
}

fn instance_of(aws: &Aws, addr: IpAddr) -> Option<&Instance> {
    aws.instances.iter().find(|i| i.private_ips.contains(&addr))
}

fn route_table_for<'a>(aws: &'a Aws, subnet: &Subnet) -> Option<&'a AwsRouteTable> {
    aws.route_tables
        .iter()
        .find(|rt| rt.subnet_ids.iter().any(|s| s == &subnet.id))
        .or_else(|| aws.route_tables.iter().find(|rt| rt.main && rt.vpc_id == subnet.vpc_id))
}

fn nacl_for<'a>(aws: &'a Aws, subnet: &Subnet) -> Option<&'a NetworkAcl> {
    aws.network_acls
        .iter()
        .find(|n| n.subnet_ids.iter().any(|s| s == &subnet.id))
        .or_else(|| aws.network_acls.iter().find(|n| n.is_default && n.vpc_id == subnet.vpc_id))
}

fn proto_matches(rule: &str, p: Protocol) -> bool {
    let r = rule.trim().to_ascii_lowercase();
    if r == "-1" || r == "all" {
        return true;
    }
    proto_number(&r).is_some() && proto_number(&r) == proto_number(p.as_str())
}

/// `tcp 443`, `udp 500-4500`, `all traffic` for a security group rule.
fn sg_rule_text(g: &SecurityGroup, r: &SgRule) -> String {
    let what = match (r.protocol.trim(), r.from_port, r.to_port) {
        ("-1", _, _) => "all traffic".to_string(),
        (p, Some(a), Some(b)) if a == b => format!("{p} {a}"),
        (p, Some(a), Some(b)) if a >= 0 => format!("{p} {a}-{b}"),
        (p, _, _) => p.to_string(),
    };
    let peers: Vec<String> = r.cidrs.iter().map(|c| c.to_string()).chain(r.groups.iter().cloned()).collect();
    format!("{} {what} {}", g.id, if peers.is_empty() { "(no peers)".to_string() } else { peers.join(",") })
}

fn has_ports(p: Protocol) -> bool {
    matches!(p, Protocol::Tcp | Protocol::Udp)
}

fn nacl_text(e: &NaclEntry) -> String {
    let ports = match (e.port_from, e.port_to) {
        (Some(a), Some(b)) if a == b => format!(" port {a}"),
        (Some(a), Some(b)) => format!(" ports {a}-{b}"),
        _ => String::new(),
    };
    let cidr = e.cidr.map(|c| c.to_string()).unwrap_or_else(|| "?".into());
    format!("rule {} {} protocol {} {cidr}{ports}", e.rule_number, e.action, e.protocol)
}

/// First NACL entry (by rule number) for this direction that matches; None = implicit deny.
pub(super) fn nacl_decide(acl: &NetworkAcl, egress: bool, peer: IpAddr, p: Protocol, port: u16) -> Option<&NaclEntry> {
    let mut entries: Vec<&NaclEntry> = acl.entries.iter().filter(|e| e.egress == egress).collect();
    entries.sort_by_key(|e| e.rule_number);
    entries.into_iter().find(|e| {
        e.cidr.is_some_and(|c| c.contains(&peer))
            && proto_matches(&e.protocol, p)
            && (!has_ports(p)
                || e.protocol.trim() == "-1"
                || match (e.port_from, e.port_to) {
                    (Some(a), Some(b)) => a <= i32::from(port) && i32::from(port) <= b,
                    _ => true,
                })
    })
}

/// Whether a security group rule lets `p`/`port` to/from `peer` (whose groups are given
/// when it is a known instance). None: the rule references groups of an unknown peer.
fn sg_rule_allows(
    r: &SgRule,
    peer: IpAddr,
    peer_groups: Option<&[String]>,
    p: Protocol,
    port: Option<u16>,
) -> Option<bool> {
    if !proto_matches(&r.protocol, p) {
        return Some(false);
    }
    if has_ports(p) && r.protocol.trim() != "-1" {
        let (Some(a), Some(b)) = (r.from_port, r.to_port) else { return Some(false) };
        match port {
            Some(x) if a <= i32::from(x) && i32::from(x) <= b => {}
            Some(_) => return Some(false),
            None if a <= 1 && b >= 65535 => {}
            None => return None,
        }
    }
    if r.cidrs.iter().any(|c| c.contains(&peer)) {
        return Some(true);
    }
    if r.groups.is_empty() {
        return Some(false);
    }
    peer_groups.map(|g| r.groups.iter().any(|x| g.contains(x)))
}

enum SgResult<'a> {
    Allowed(&'a SecurityGroup, &'a SgRule),
    Denied,
    Unknown,
}

fn sg_decide<'a>(
    aws: &'a Aws,
    inst: &Instance,
    egress: bool,
    peer: IpAddr,
    peer_groups: Option<&[String]>,
    p: Protocol,
    port: Option<u16>,
) -> SgResult<'a> {
    let mut unknown = false;
    for g in aws.security_groups.iter().filter(|g| inst.security_groups.contains(&g.id)) {
        let rules = if egress { &g.egress } else { &g.ingress };
        for r in rules {
            match sg_rule_allows(r, peer, peer_groups, p, port) {
                Some(true) => return SgResult::Allowed(g, r),
                None => unknown = true,
                Some(false) => {}
            }
        }
    }
    if unknown {
        SgResult::Unknown
    } else {
        SgResult::Denied
    }
}

/// Security group hop; None when it passes.
fn sg_hop(
    w: &mut Walk<'_, '_>,
    inst: &Instance,
    egress: bool,
    peer: IpAddr,
    peer_inst: Option<&Instance>,
) -> Option<Step> {
    let aws = &w.t.net.aws;
    let p = w.pkt.proto;
    let dir = if egress { "egress" } else { "ingress" };
    if !inst.security_groups.iter().any(|id| aws.security_groups.iter().any(|g| &g.id == id)) {
        w.need(format!("describe-security-groups for {} ({})", inst.id, inst.security_groups.join(", ")));
        w.assume(format!("security groups of {} are not in the bundle: taken to allow", inst.id));
        return None;
    }
    let comp = format!("aws/{} security groups ({dir})", inst.id);
    let groups = peer_inst.map(|i| i.security_groups.as_slice());
    match sg_decide(aws, inst, egress, peer, groups, p, w.pkt.dport) {
        SgResult::Allowed(g, r) => {
            w.hop(
                Layer::Cloud,
                comp,
                Action::Forward,
                format!("{dir} allowed by {}; stateful: the reply is allowed", sg_rule_text(g, r)),
                vec![Evidence::new(r.origin.clone(), sg_rule_text(g, r))],
            );
            None
        }
        SgResult::Denied => {
            let ev = aws
                .security_groups
                .iter()
                .filter(|g| inst.security_groups.contains(&g.id))
                .map(|g| {
                    Evidence::new(
                        g.origin.clone(),
                        format!("{} {dir}: {} rule(s)", g.id, if egress { g.egress.len() } else { g.ingress.len() }),
                    )
                })
                .collect();
            w.hop(
                Layer::Cloud,
                comp,
                Action::Drop,
                format!(
                    "no {dir} rule of {} allows {} {}",
                    inst.security_groups.join(", "),
                    w.pkt.proto.as_str(),
                    peer
                ),
                ev,
            );
            Some(Step::End(w.end(DispositionKind::Dropped, format!("security groups of {} deny {dir}", inst.id))))
        }
        SgResult::Unknown => {
            w.hop(
                Layer::Cloud,
                comp,
                Action::Unknown,
                "a rule references security groups of a peer the bundle does not describe",
                Vec::new(),
            );
            Some(Step::End(
                w.end(DispositionKind::Ambiguous, format!("security group decision of {} unknown", inst.id)),
            ))
        }
    }
}

/// NACL hop for one direction of one subnet; None when it passes.
fn nacl_hop(w: &mut Walk<'_, '_>, subnet: &Subnet, egress: bool, peer: IpAddr, port: u16, what: &str) -> Option<Step> {
    let aws = &w.t.net.aws;
    let Some(acl) = nacl_for(aws, subnet) else {
        if !aws.network_acls.is_empty() {
            w.assume(format!("no network ACL of the bundle is associated with {}: taken to allow", subnet.id));
        } else {
            w.need("cloud/aws/describe-network-acls.json".to_string());
        }
        return None;
    };
    let dir = if egress { "outbound" } else { "inbound" };
    let comp = format!("aws/{} ({} {dir})", acl.id, subnet.id);
    let p = w.pkt.proto;
    match nacl_decide(acl, egress, peer, p, port) {
        Some(e) if e.action.eq_ignore_ascii_case("allow") => {
            w.hop(
                Layer::Cloud,
                comp,
                Action::Forward,
                format!("{what}: rule {} allows {} {peer} port {port}", e.rule_number, p.as_str()),
                vec![Evidence::new(e.origin.clone(), nacl_text(e))],
            );
            None
        }
        other => {
            let (why, ev) = match other {
                Some(e) => {
                    (format!("rule {} denies", e.rule_number), vec![Evidence::new(e.origin.clone(), nacl_text(e))])
                }
                None => (
                    "no rule matches (implicit deny)".to_string(),
                    vec![Evidence::new(acl.origin.clone(), format!("{} entries", acl.entries.len()))],
                ),
            };
            w.hop(
                Layer::Cloud,
                comp,
                Action::Drop,
                format!("{what}: {why} {} {peer} port {port} (NACLs are stateless)", p.as_str()),
                ev,
            );
            Some(Step::End(w.end(
                DispositionKind::Dropped,
                format!("network ACL {} {dir} of {} drops the {what}", acl.id, subnet.id),
            )))
        }
    }
}

/// The VPC leg: from `sender` (an address of the sending host or instance) to the
/// packet's destination. None when AWS does not describe the sender's subnet.
pub(super) fn leg(w: &mut Walk<'_, '_>, sender: IpAddr, from_host: Option<usize>) -> Option<Step> {
    let t = w.t;
    let aws = &t.net.aws;
    if aws.is_empty() {
        return None;
    }
    let inst = instance_of(aws, sender).or_else(|| instance_of(aws, w.pkt.src));
    let subnet = inst
        .and_then(|i| i.subnet_id.as_deref())
        .and_then(|id| aws.subnets.iter().find(|s| s.id == id))
        .or_else(|| subnet_of(aws, sender))?;
    let (src, dst, p) = (w.pkt.src, w.pkt.dst, w.pkt.proto);
    let dport = w.pkt.dport.unwrap_or(0);
    let sport = match w.pkt.sport {
        Some(s) => s,
        None => {
            if has_ports(p) {
                w.assume(format!(
                    "reply traffic uses source port {ASSUMED_EPHEMERAL} (ephemeral; give --src-port to check another)"
                ));
            }
            ASSUMED_EPHEMERAL
        }
    };
    let _ = from_host;
    match inst {
        Some(i) => {
            if !i.private_ips.contains(&src) && i.source_dest_check == Some(true) {
                w.hop(
                    Layer::Cloud,
                    format!("aws/{}", i.id),
                    Action::Drop,
                    format!("{} forwards traffic from {src}, not its own address, with SourceDestCheck on", i.id),
                    vec![Evidence::new(i.origin.clone(), "SourceDestCheck: true")],
                );
                return Some(Step::End(
                    w.end(DispositionKind::Dropped, format!("SourceDestCheck on {} drops forwarded traffic", i.id)),
                ));
            }
            let dst_inst = instance_of(aws, dst);
            if let Some(s) = sg_hop(w, i, true, dst, dst_inst) {
                return Some(s);
            }
        }
        None => w.assume(format!("no instance record for {sender}: its security groups are not checked")),
    }
    if let Some(s) = nacl_hop(w, subnet, true, dst, dport, "request") {
        return Some(s);
    }
    let Some(rt) = route_table_for(aws, subnet) else {
        w.need(format!("cloud/aws/describe-route-tables.json (route table of {})", subnet.id));
        w.hop(
            Layer::Cloud,
            format!("aws/{}", subnet.id),
            Action::Unknown,
            "no route table for this subnet in the bundle",
            Vec::new(),
        );
        return Some(Step::End(
            w.end(DispositionKind::InsufficientInfo, format!("route table of {} missing", subnet.id)),
        ));
    };
    let route = rt
        .routes
        .iter()
        .filter(|r| r.destination.is_some_and(|d| d.contains(&dst)))
        .max_by_key(|r| r.destination.map(|d| d.prefix_len()).unwrap_or(0));
    let comp = format!("aws/{} ({})", rt.id, subnet.id);
    let Some(route) = route else {
        w.hop(
            Layer::Cloud,
            comp,
            Action::Drop,
            format!("no route to {dst}"),
            vec![Evidence::new(rt.origin.clone(), format!("{} routes", rt.routes.len()))],
        );
        return Some(Step::End(
            w.end(DispositionKind::NoRoute, format!("route table {} has no route to {dst}", rt.id)),
        ));
    };
    let dest = route.destination.map(|d| d.to_string()).unwrap_or_default();
    let rev = Evidence::new(route.origin.clone(), format!("{dest} → {} ({})", route.target, route.state));
    if route.state.eq_ignore_ascii_case("blackhole") {
        w.hop(
            Layer::Cloud,
            comp,
            Action::Drop,
            format!("route {dest} → {} is a blackhole (its target is gone)", route.target),
            vec![rev],
        );
        return Some(Step::End(w.end(DispositionKind::Dropped, format!("blackhole route {dest} in {}", rt.id))));
    }
    let target = route.target.as_str();
    w.hop(Layer::Cloud, comp, Action::Forward, format!("{dst} matches {dest} → {target}"), vec![rev]);
    if target == "local" {
        return Some(local_delivery(w, subnet, src, dst, sport, inst));
    }
    // Leaving the VPC: the reply comes back through this subnet's ACL (stateless).
    if let Some(s) = nacl_hop(w, subnet, false, dst, sport, "reply") {
        return Some(s);
    }
    if target.starts_with("vgw-") || target.starts_with("tgw-") {
        return Some(vpn(w, target));
    }
    if let Some(next) = aws.instances.iter().find(|i| i.id == target) {
        if next.source_dest_check != Some(false) {
            w.hop(
                Layer::Cloud,
                format!("aws/{}", next.id),
                Action::Drop,
                format!("route target {} forwards traffic for {dst} but SourceDestCheck is on", next.id),
                vec![Evidence::new(next.origin.clone(), format!("SourceDestCheck: {:?}", next.source_dest_check))],
            );
            return Some(Step::End(w.end(DispositionKind::Dropped, format!("SourceDestCheck on {}", next.id))));
        }
        if let Some(h) = next.private_ips.iter().find_map(|a| t.owners_of(a).first().copied()) {
            return Some(Step::Next(h, Arrival::From(None)));
        }
    }
    if target.starts_with("eni-") {
        w.assume(format!("the instance behind {target} is not identified (describe-instances lists no interfaces): its SourceDestCheck is not checked"));
    }
    Some(Step::End(w.end(DispositionKind::ExitsNetwork, format!("leaves the VPC through {target}"))))
}

fn local_delivery(
    w: &mut Walk<'_, '_>,
    src_subnet: &Subnet,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    src_inst: Option<&Instance>,
) -> Step {
    let t = w.t;
    let aws = &t.net.aws;
    let dport = w.pkt.dport.unwrap_or(0);
    let Some(dsub) = subnet_of(aws, dst) else {
        w.hop(
            Layer::Cloud,
            "aws/vpc".to_string(),
            Action::Unknown,
            format!("{dst} is in the VPC but in no subnet of the bundle"),
            Vec::new(),
        );
        w.need(format!("cloud/aws/describe-subnets.json (subnet of {dst})"));
        return Step::End(w.end(DispositionKind::InsufficientInfo, format!("subnet of {dst} unknown")));
    };
    if let Some(s) = nacl_hop(w, dsub, false, src, dport, "request") {
        return s;
    }
    let dinst = instance_of(aws, dst);
    if let Some(di) = dinst {
        if let Some(s) = sg_hop(w, di, false, src, src_inst) {
            return s;
        }
    }
    // The reply crosses both NACLs again, with the ports swapped.
    if let Some(s) = nacl_hop(w, dsub, true, src, sport, "reply") {
        return s;
    }
    if let Some(s) = nacl_hop(w, src_subnet, false, dst, sport, "reply") {
        return s;
    }
    if let Some(&h) = t.owners_of(&dst).first() {
        return Step::Next(h, Arrival::From(None));
    }
    match dinst {
        Some(di) => {
            w.hop(
                Layer::Cloud,
                format!("aws/{}", di.id),
                Action::Deliver,
                format!("{dst} is a private address of {}", di.id),
                vec![Evidence::new(di.origin.clone(), dst.to_string())],
            );
            Step::End(w.end(DispositionKind::Delivered, format!("delivered to instance {}", di.id)))
        }
        None => {
            w.need(format!("the host or instance holding {dst}"));
            Step::End(
                w.end(DispositionKind::InsufficientInfo, format!("no instance or host of the bundle holds {dst}")),
            )
        }
    }
}

fn vpn(w: &mut Walk<'_, '_>, target: &str) -> Step {
    let aws = &w.t.net.aws;
    let dst = w.pkt.dst;
    let conns: Vec<_> = aws
        .vpn_connections
        .iter()
        .filter(|v| v.vpn_gateway_id.as_deref() == Some(target) || v.transit_gateway_id.as_deref() == Some(target))
        .collect();
    if conns.is_empty() {
        w.assume(format!("no VPN connection of the bundle uses {target}: its tunnel state is not checked"));
        return Step::End(w.end(DispositionKind::ExitsNetwork, format!("leaves the VPC through {target}")));
    }
    for v in &conns {
        let comp = format!("aws/{}", v.id);
        if v.static_routes_only == Some(true) && !v.routes.iter().any(|r| r.contains(&dst)) {
            w.hop(
                Layer::Cloud,
                comp,
                Action::Drop,
                format!("static-routes-only VPN without a route for {dst}"),
                vec![Evidence::new(
                    v.origin.clone(),
                    format!("routes: {}", v.routes.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(",")),
                )],
            );
            continue;
        }
        let up: Vec<&(String, String, Option<String>)> =
            v.tunnels.iter().filter(|(_, s, _)| s.eq_ignore_ascii_case("UP")).collect();
        let ev = vec![Evidence::new(
            v.origin.clone(),
            v.tunnels.iter().map(|(ip, s, _)| format!("{ip} {s}")).collect::<Vec<_>>().join(", "),
        )];
        if up.is_empty() && !v.tunnels.is_empty() {
            w.hop(Layer::Cloud, comp, Action::Drop, format!("every tunnel of {} is DOWN", v.id), ev);
            continue;
        }
        w.hop(
            Layer::Cloud,
            comp,
            Action::Forward,
            format!("into VPN {} ({} of {} tunnels UP)", v.id, up.len(), v.tunnels.len()),
            ev,
        );
        return Step::End(w.end(DispositionKind::ExitsNetwork, format!("into VPN connection {}", v.id)));
    }
    Step::End(w.end(DispositionKind::Dropped, format!("no usable VPN connection behind {target}")))
}
