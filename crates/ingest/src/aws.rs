//! Parser of `aws ec2 describe-<what> --output json` files into the AWS part of the model:
//! route tables, security groups, network ACLs, VPN connections, subnets, VPCs, instances
//! and transit gateway route tables.
//!
//! Rules for untrusted input: the file must be the JSON object the CLI prints; unknown
//! fields are ignored. One bad element (a route with an invalid CIDR) is a warning and is
//! skipped, the rest of its table still counts. VPN pre-shared keys that the describe
//! output can carry (`Options.TunnelOptions[].PreSharedKey`, `<pre_shared_key>` in
//! `CustomerGatewayConfiguration`) are only fingerprinted, never stored.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

use netsleuth_model::cloud::{
    Aws, AwsRoute, AwsRouteTable, Instance, NaclEntry, NetworkAcl, SecurityGroup, SgRule, Subnet,
    TransitGatewayRouteTable, Vpc, VpnConnection,
};
use netsleuth_model::{Location, RedactionKind};

use crate::redact::scrub_error_message;
use crate::{ParseContext, ParseError, Source};

/// `aws ec2 describe-<what> --output json`; `what` is e.g. `route-tables` (from the file name).
/// Returns false when `what` is not a known describe output (the file is then skipped).
pub fn parse(src: &Source<'_>, what: &str, aws: &mut Aws, ctx: &mut ParseContext) -> Result<bool, ParseError> {
    let top_key = match what {
        "route-tables" => "RouteTables",
        "security-groups" => "SecurityGroups",
        "network-acls" => "NetworkAcls",
        "vpn-connections" => "VpnConnections",
        "subnets" => "Subnets",
        "vpcs" => "Vpcs",
        "instances" => "Reservations",
        "transit-gateway-route-tables" => "TransitGatewayRouteTables",
        _ => return Ok(false),
    };
    let text = src.text.strip_prefix('\u{feff}').unwrap_or(src.text);
    let top: std::collections::HashMap<String, &RawValue> = serde_json::from_str(text).map_err(|e| {
        let mut err = ParseError::from_json(src.path, &e);
        err.message = scrub_error_message(&err.message);
        err
    })?;
    let Some(list) = top.get(top_key) else {
        return Err(
            src.error(format!("not the output of `aws ec2 describe-{what}`: no \"{top_key}\" key at the top level"))
        );
    };
    let items: Vec<&RawValue> =
        serde_json::from_str(list.get()).map_err(|_| src.error(format!("\"{top_key}\" is not a list")))?;
    let mut p = Aws2 { src, ctx };
    for (i, raw) in items.into_iter().enumerate() {
        let pointer = format!("/{top_key}/{i}");
        match what {
            "route-tables" => p.item(raw, &pointer, |p, d, o| aws.route_tables.push(p.route_table(d, o))),
            "security-groups" => p.item(raw, &pointer, |p, d, o| aws.security_groups.push(p.security_group(d, o))),
            "network-acls" => p.item(raw, &pointer, |p, d, o| aws.network_acls.push(p.network_acl(d, o))),
            "vpn-connections" => p.item(raw, &pointer, |p, d, o| aws.vpn_connections.push(p.vpn(d, o))),
            "subnets" => p.item(raw, &pointer, |p, d, o| aws.subnets.push(p.subnet(d, o))),
            "vpcs" => p.item(raw, &pointer, |p, d, o| aws.vpcs.push(p.vpc(d, o))),
            "instances" => p.item(raw, &pointer, |p, d: ReservationDe, o| {
                for (j, inst) in d.instances.into_iter().enumerate() {
                    let origin = o.child(&format!("/Instances/{j}"));
                    aws.instances.push(p.instance(inst, origin));
                }
            }),
            _ => p.item(raw, &pointer, |p, d, o| aws.transit_gateway_route_tables.push(p.tgw_table(d, o))),
        }
    }
    Ok(true)
}

struct Aws2<'a, 'c> {
    src: &'a Source<'a>,
    ctx: &'c mut ParseContext,
}

impl Aws2<'_, '_> {
    /// Deserializes one element and hands it on; a failure is a warning for this element.
    fn item<T: DeserializeOwned>(&mut self, raw: &RawValue, pointer: &str, f: impl FnOnce(&mut Self, T, Location)) {
        let origin = self.src.pointer(pointer);
        match serde_json::from_str::<T>(raw.get()) {
            Ok(d) => f(self, d, origin),
            Err(e) => {
                let mut msg = e.to_string();
                let suffix = format!(" at line {} column {}", e.line(), e.column());
                if let Some(s) = msg.strip_suffix(&suffix) {
                    msg = s.to_string();
                }
                self.ctx.warn(origin, format!("not read: {}", scrub_error_message(&msg)));
            }
        }
    }

    fn warn(&mut self, loc: Location, msg: impl Into<String>) {
        self.ctx.warn(loc, msg);
    }

    fn cidr(&mut self, text: &str, loc: &Location) -> Option<IpNet> {
        match text.trim().parse::<IpNet>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.warn(loc.clone(), format!("{text:?} is not a CIDR; ignored"));
                None
            }
        }
    }

    fn route(&mut self, r: RouteDe, origin: Location) -> Option<AwsRoute> {
        let destination = match (&r.destination_cidr_block, &r.destination_ipv6_cidr_block) {
            (Some(c), _) | (None, Some(c)) => Some(self.cidr(c, &origin)?),
            (None, None) => None,
        };
        if destination.is_none() && r.destination_prefix_list_id.is_none() {
            self.warn(origin, "route without a destination; ignored");
            return None;
        }
        let target = [
            r.gateway_id,
            r.nat_gateway_id,
            r.transit_gateway_id,
            r.network_interface_id,
            r.vpc_peering_connection_id,
            r.instance_id,
            r.egress_only_internet_gateway_id,
            r.carrier_gateway_id,
            r.local_gateway_id,
            r.core_network_arn,
        ]
        .into_iter()
        .flatten()
        .next()
        .unwrap_or_default();
        Some(AwsRoute {
            destination,
            destination_prefix_list: r.destination_prefix_list_id,
            target,
            state: r.state.unwrap_or_else(|| "active".to_string()),
            origin_kind: r.origin,
            origin,
        })
    }

    fn route_table(&mut self, d: RouteTableDe, origin: Location) -> AwsRouteTable {
        let mut routes = Vec::with_capacity(d.routes.len());
        for (i, r) in d.routes.into_iter().enumerate() {
            routes.extend(self.route(r, origin.child(&format!("/Routes/{i}"))));
        }
        AwsRouteTable {
            main: d.associations.iter().any(|a| a.main == Some(true)),
            subnet_ids: d.associations.into_iter().filter_map(|a| a.subnet_id).collect(),
            id: d.route_table_id,
            vpc_id: d.vpc_id,
            routes,
            propagating_vgws: d.propagating_vgws.into_iter().filter_map(|g| g.gateway_id).collect(),
            origin,
        }
    }

    fn sg_rules(&mut self, perms: Vec<PermissionDe>, base: &Location, field: &str) -> Vec<SgRule> {
        let mut out = Vec::with_capacity(perms.len());
        for (i, p) in perms.into_iter().enumerate() {
            let origin = base.child(&format!("/{field}/{i}"));
            let mut cidrs = Vec::new();
            for (j, r) in p.ip_ranges.iter().enumerate() {
                cidrs.extend(r.cidr_ip.as_deref().and_then(|c| self.cidr(c, &origin.child(&format!("/IpRanges/{j}")))));
            }
            for (j, r) in p.ipv6_ranges.iter().enumerate() {
                let loc = origin.child(&format!("/Ipv6Ranges/{j}"));
                cidrs.extend(r.cidr_ipv6.as_deref().and_then(|c| self.cidr(c, &loc)));
            }
            out.push(SgRule {
                protocol: p.ip_protocol.unwrap_or_else(|| "-1".to_string()),
                from_port: p.from_port,
                to_port: p.to_port,
                cidrs,
                groups: p.user_id_group_pairs.into_iter().filter_map(|g| g.group_id).collect(),
                prefix_lists: p.prefix_list_ids.into_iter().filter_map(|g| g.prefix_list_id).collect(),
                origin,
            });
        }
        out
    }

    fn security_group(&mut self, d: SecurityGroupDe, origin: Location) -> SecurityGroup {
        let ingress = self.sg_rules(d.ip_permissions, &origin, "IpPermissions");
        let egress = self.sg_rules(d.ip_permissions_egress, &origin, "IpPermissionsEgress");
        SecurityGroup { id: d.group_id, name: d.group_name, vpc_id: d.vpc_id, ingress, egress, origin }
    }

    fn network_acl(&mut self, d: NetworkAclDe, origin: Location) -> NetworkAcl {
        let mut entries = Vec::with_capacity(d.entries.len());
        for (i, e) in d.entries.into_iter().enumerate() {
            let loc = origin.child(&format!("/Entries/{i}"));
            let cidr = match e.cidr_block.as_deref().or(e.ipv6_cidr_block.as_deref()) {
                Some(c) => match self.cidr(c, &loc) {
                    Some(n) => Some(n),
                    None => continue,
                },
                None => None,
            };
            let Some(rule_number) = e.rule_number else {
                self.warn(loc, "NACL entry without RuleNumber; ignored");
                continue;
            };
            entries.push(NaclEntry {
                rule_number,
                egress: e.egress.unwrap_or(false),
                protocol: e.protocol.unwrap_or_else(|| "-1".to_string()),
                action: e.rule_action.unwrap_or_default(),
                cidr,
                port_from: e.port_range.as_ref().and_then(|p| p.from),
                port_to: e.port_range.as_ref().and_then(|p| p.to),
                origin: loc,
            });
        }
        NetworkAcl {
            id: d.network_acl_id,
            vpc_id: d.vpc_id,
            subnet_ids: d.associations.into_iter().filter_map(|a| a.subnet_id).collect(),
            is_default: d.is_default.unwrap_or(false),
            entries,
            origin,
        }
    }

    fn vpn(&mut self, d: VpnDe, origin: Location) -> VpnConnection {
        let mut routes = Vec::new();
        for (i, r) in d.routes.iter().enumerate() {
            // Deleted routes no longer steer traffic.
            if matches!(r.state.as_deref(), Some("deleted" | "deleting")) {
                continue;
            }
            let loc = origin.child(&format!("/Routes/{i}"));
            routes.extend(r.destination_cidr_block.as_deref().and_then(|c| self.cidr(c, &loc)));
        }
        let options = d.options.unwrap_or_default();
        for (i, t) in options.tunnel_options.iter().enumerate() {
            if let Some(psk) = t.pre_shared_key.as_deref().filter(|k| !k.is_empty()) {
                let loc = origin.child(&format!("/Options/TunnelOptions/{i}/PreSharedKey"));
                self.ctx.redact(RedactionKind::IpsecSecret, loc, psk);
            }
        }
        if let Some(xml) = &d.customer_gateway_configuration {
            let loc = origin.child("/CustomerGatewayConfiguration");
            let mut rest = xml.as_str();
            while let Some(start) = rest.find("<pre_shared_key>") {
                let after = rest.get(start + 16..).unwrap_or("");
                let Some(end) = after.find("</pre_shared_key>") else { break };
                if let Some(psk) = after.get(..end).filter(|k| !k.is_empty()) {
                    self.ctx.redact(RedactionKind::IpsecSecret, loc.clone(), psk);
                }
                rest = after.get(end..).unwrap_or("");
            }
        }
        VpnConnection {
            id: d.vpn_connection_id,
            state: d.state,
            vpn_gateway_id: d.vpn_gateway_id,
            transit_gateway_id: d.transit_gateway_id,
            customer_gateway_id: d.customer_gateway_id,
            static_routes_only: options.static_routes_only,
            routes,
            tunnels: d
                .vgw_telemetry
                .into_iter()
                .map(|t| (t.outside_ip_address.unwrap_or_default(), t.status.unwrap_or_default(), t.status_message))
                .collect(),
            origin,
        }
    }

    fn subnet(&mut self, d: SubnetDe, origin: Location) -> Subnet {
        let cidr = d.cidr_block.as_deref().and_then(|c| self.cidr(c, &origin.child("/CidrBlock")));
        let mut ipv6_cidrs = Vec::new();
        for (i, a) in d.ipv6_cidr_block_association_set.iter().enumerate() {
            if a.ipv6_cidr_block_state.as_ref().is_some_and(|s| s.is_gone()) {
                continue;
            }
            let loc = origin.child(&format!("/Ipv6CidrBlockAssociationSet/{i}"));
            ipv6_cidrs.extend(a.ipv6_cidr_block.as_deref().and_then(|c| self.cidr(c, &loc)));
        }
        Subnet {
            id: d.subnet_id,
            vpc_id: d.vpc_id,
            cidr,
            ipv6_cidrs,
            availability_zone: d.availability_zone,
            available_ips: d.available_ip_address_count,
            origin,
        }
    }

    fn vpc(&mut self, d: VpcDe, origin: Location) -> Vpc {
        let mut cidrs = Vec::new();
        let primary = d.cidr_block.as_deref().and_then(|c| self.cidr(c, &origin.child("/CidrBlock")));
        cidrs.extend(primary);
        for (i, a) in d.cidr_block_association_set.iter().enumerate() {
            if a.cidr_block_state.as_ref().is_some_and(|s| s.is_gone()) {
                continue;
            }
            let loc = origin.child(&format!("/CidrBlockAssociationSet/{i}"));
            if let Some(n) = a.cidr_block.as_deref().and_then(|c| self.cidr(c, &loc)) {
                if !cidrs.contains(&n) {
                    cidrs.push(n);
                }
            }
        }
        for (i, a) in d.ipv6_cidr_block_association_set.iter().enumerate() {
            if a.ipv6_cidr_block_state.as_ref().is_some_and(|s| s.is_gone()) {
                continue;
            }
            let loc = origin.child(&format!("/Ipv6CidrBlockAssociationSet/{i}"));
            cidrs.extend(a.ipv6_cidr_block.as_deref().and_then(|c| self.cidr(c, &loc)));
        }
        Vpc { id: d.vpc_id, cidrs, origin }
    }

    fn instance(&mut self, d: InstanceDe, origin: Location) -> Instance {
        let mut texts: Vec<(Location, String)> = Vec::new();
        texts.extend(d.private_ip_address.map(|ip| (origin.child("/PrivateIpAddress"), ip)));
        for (i, n) in d.network_interfaces.into_iter().enumerate() {
            for (j, a) in n.private_ip_addresses.into_iter().enumerate() {
                let loc = origin.child(&format!("/NetworkInterfaces/{i}/PrivateIpAddresses/{j}"));
                texts.extend(a.private_ip_address.map(|ip| (loc, ip)));
            }
        }
        let mut private_ips: Vec<IpAddr> = Vec::new();
        for (loc, t) in texts {
            match t.trim().parse::<IpAddr>() {
                Ok(ip) if !private_ips.contains(&ip) => private_ips.push(ip),
                Ok(_) => {}
                Err(_) => self.warn(loc, format!("{t:?} is not an IP address; ignored")),
            }
        }
        Instance {
            id: d.instance_id,
            subnet_id: d.subnet_id,
            vpc_id: d.vpc_id,
            private_ips,
            source_dest_check: d.source_dest_check,
            security_groups: d.security_groups.into_iter().filter_map(|g| g.group_id).collect(),
            name: d.tags.into_iter().find(|t| t.key.as_deref() == Some("Name")).and_then(|t| t.value),
            origin,
        }
    }

    fn tgw_table(&mut self, d: TgwRouteTableDe, origin: Location) -> TransitGatewayRouteTable {
        let mut routes = Vec::with_capacity(d.routes.len());
        for (i, r) in d.routes.into_iter().enumerate() {
            let loc = origin.child(&format!("/Routes/{i}"));
            let destination = match r.destination_cidr_block.as_deref() {
                Some(c) => match self.cidr(c, &loc) {
                    Some(n) => Some(n),
                    None => continue,
                },
                None => None,
            };
            if destination.is_none() && r.prefix_list_id.is_none() {
                self.warn(loc, "route without a destination; ignored");
                continue;
            }
            let target = r
                .transit_gateway_attachments
                .into_iter()
                .find_map(|a| a.transit_gateway_attachment_id.or(a.resource_id))
                .unwrap_or_default();
            routes.push(AwsRoute {
                destination,
                destination_prefix_list: r.prefix_list_id,
                target,
                state: r.state.unwrap_or_else(|| "active".to_string()),
                origin_kind: r.route_type,
                origin: loc,
            });
        }
        TransitGatewayRouteTable { id: d.transit_gateway_route_table_id, routes, origin }
    }
}

fn nd<'de, D: serde::Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct RouteTableDe {
    #[serde(deserialize_with = "nd")]
    route_table_id: String,
    #[serde(deserialize_with = "nd")]
    vpc_id: String,
    #[serde(deserialize_with = "nd")]
    associations: Vec<AssociationDe>,
    #[serde(deserialize_with = "nd")]
    routes: Vec<RouteDe>,
    #[serde(deserialize_with = "nd")]
    propagating_vgws: Vec<GatewayRefDe>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct AssociationDe {
    main: Option<bool>,
    subnet_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct GatewayRefDe {
    gateway_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct RouteDe {
    destination_cidr_block: Option<String>,
    destination_ipv6_cidr_block: Option<String>,
    destination_prefix_list_id: Option<String>,
    gateway_id: Option<String>,
    nat_gateway_id: Option<String>,
    transit_gateway_id: Option<String>,
    network_interface_id: Option<String>,
    vpc_peering_connection_id: Option<String>,
    instance_id: Option<String>,
    egress_only_internet_gateway_id: Option<String>,
    carrier_gateway_id: Option<String>,
    local_gateway_id: Option<String>,
    core_network_arn: Option<String>,
    origin: Option<String>,
    state: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct SecurityGroupDe {
    #[serde(deserialize_with = "nd")]
    group_id: String,
    group_name: Option<String>,
    vpc_id: Option<String>,
    #[serde(deserialize_with = "nd")]
    ip_permissions: Vec<PermissionDe>,
    #[serde(deserialize_with = "nd")]
    ip_permissions_egress: Vec<PermissionDe>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct PermissionDe {
    ip_protocol: Option<String>,
    from_port: Option<i32>,
    to_port: Option<i32>,
    #[serde(deserialize_with = "nd")]
    ip_ranges: Vec<IpRangeDe>,
    #[serde(deserialize_with = "nd")]
    ipv6_ranges: Vec<Ipv6RangeDe>,
    #[serde(deserialize_with = "nd")]
    user_id_group_pairs: Vec<GroupPairDe>,
    #[serde(deserialize_with = "nd")]
    prefix_list_ids: Vec<PrefixListDe>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct IpRangeDe {
    cidr_ip: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct Ipv6RangeDe {
    cidr_ipv6: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct GroupPairDe {
    group_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct PrefixListDe {
    prefix_list_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct NetworkAclDe {
    #[serde(deserialize_with = "nd")]
    network_acl_id: String,
    #[serde(deserialize_with = "nd")]
    vpc_id: String,
    is_default: Option<bool>,
    #[serde(deserialize_with = "nd")]
    associations: Vec<AssociationDe>,
    #[serde(deserialize_with = "nd")]
    entries: Vec<NaclEntryDe>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct NaclEntryDe {
    rule_number: Option<i32>,
    protocol: Option<String>,
    rule_action: Option<String>,
    egress: Option<bool>,
    cidr_block: Option<String>,
    ipv6_cidr_block: Option<String>,
    port_range: Option<PortRangeDe>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct PortRangeDe {
    from: Option<i32>,
    to: Option<i32>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct VpnDe {
    #[serde(deserialize_with = "nd")]
    vpn_connection_id: String,
    state: Option<String>,
    vpn_gateway_id: Option<String>,
    transit_gateway_id: Option<String>,
    customer_gateway_id: Option<String>,
    customer_gateway_configuration: Option<String>,
    options: Option<VpnOptionsDe>,
    #[serde(deserialize_with = "nd")]
    routes: Vec<VpnRouteDe>,
    #[serde(deserialize_with = "nd")]
    vgw_telemetry: Vec<TelemetryDe>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct VpnOptionsDe {
    static_routes_only: Option<bool>,
    #[serde(deserialize_with = "nd")]
    tunnel_options: Vec<TunnelOptionsDe>,
}

/// Only to fingerprint the key; it is never kept.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct TunnelOptionsDe {
    pre_shared_key: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct VpnRouteDe {
    destination_cidr_block: Option<String>,
    state: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct TelemetryDe {
    outside_ip_address: Option<String>,
    status: Option<String>,
    status_message: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct SubnetDe {
    #[serde(deserialize_with = "nd")]
    subnet_id: String,
    #[serde(deserialize_with = "nd")]
    vpc_id: String,
    cidr_block: Option<String>,
    #[serde(deserialize_with = "nd")]
    ipv6_cidr_block_association_set: Vec<Ipv6AssociationDe>,
    availability_zone: Option<String>,
    available_ip_address_count: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct Ipv6AssociationDe {
    ipv6_cidr_block: Option<String>,
    ipv6_cidr_block_state: Option<CidrStateDe>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct CidrAssociationDe {
    cidr_block: Option<String>,
    cidr_block_state: Option<CidrStateDe>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct CidrStateDe {
    state: Option<String>,
}

impl CidrStateDe {
    /// A disassociated block no longer belongs to the VPC or subnet.
    fn is_gone(&self) -> bool {
        let state = self.state.as_deref().unwrap_or("").to_ascii_lowercase();
        matches!(state.as_str(), "disassociated" | "disassociating" | "failed")
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct VpcDe {
    #[serde(deserialize_with = "nd")]
    vpc_id: String,
    cidr_block: Option<String>,
    #[serde(deserialize_with = "nd")]
    cidr_block_association_set: Vec<CidrAssociationDe>,
    #[serde(deserialize_with = "nd")]
    ipv6_cidr_block_association_set: Vec<Ipv6AssociationDe>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct ReservationDe {
    #[serde(deserialize_with = "nd")]
    instances: Vec<InstanceDe>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct InstanceDe {
    #[serde(deserialize_with = "nd")]
    instance_id: String,
    subnet_id: Option<String>,
    vpc_id: Option<String>,
    private_ip_address: Option<String>,
    source_dest_check: Option<bool>,
    #[serde(deserialize_with = "nd")]
    network_interfaces: Vec<NetworkInterfaceDe>,
    #[serde(deserialize_with = "nd")]
    security_groups: Vec<GroupPairDe>,
    #[serde(deserialize_with = "nd")]
    tags: Vec<TagDe>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct NetworkInterfaceDe {
    #[serde(deserialize_with = "nd")]
    private_ip_addresses: Vec<PrivateIpDe>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct PrivateIpDe {
    private_ip_address: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct TagDe {
    key: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct TgwRouteTableDe {
    #[serde(deserialize_with = "nd")]
    transit_gateway_route_table_id: String,
    /// Not part of `describe-transit-gateway-route-tables`; present when the collector
    /// merged `search-transit-gateway-routes` output into each table.
    #[serde(deserialize_with = "nd")]
    routes: Vec<TgwRouteDe>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct TgwRouteDe {
    destination_cidr_block: Option<String>,
    prefix_list_id: Option<String>,
    #[serde(deserialize_with = "nd")]
    transit_gateway_attachments: Vec<TgwAttachmentDe>,
    #[serde(rename = "Type")]
    route_type: Option<String>,
    state: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct TgwAttachmentDe {
    resource_id: Option<String>,
    transit_gateway_attachment_id: Option<String>,
}
