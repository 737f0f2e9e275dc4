//! Cloud network objects (AWS EC2 for now) from `aws ec2 describe-*` JSON.
//! Only the fields routing and filtering decisions need.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::finding::Location;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Aws {
    pub vpcs: Vec<Vpc>,
    pub subnets: Vec<Subnet>,
    pub route_tables: Vec<AwsRouteTable>,
    pub security_groups: Vec<SecurityGroup>,
    pub network_acls: Vec<NetworkAcl>,
    pub vpn_connections: Vec<VpnConnection>,
    pub instances: Vec<Instance>,
    pub transit_gateway_route_tables: Vec<TransitGatewayRouteTable>,
}

impl Aws {
    pub fn is_empty(&self) -> bool {
        self.vpcs.is_empty()
            && self.subnets.is_empty()
            && self.route_tables.is_empty()
            && self.security_groups.is_empty()
            && self.network_acls.is_empty()
            && self.vpn_connections.is_empty()
            && self.instances.is_empty()
            && self.transit_gateway_route_tables.is_empty()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vpc {
    pub id: String,
    pub cidrs: Vec<IpNet>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub cidr: Option<IpNet>,
    pub ipv6_cidrs: Vec<IpNet>,
    pub availability_zone: Option<String>,
    pub available_ips: Option<u64>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AwsRouteTable {
    pub id: String,
    pub vpc_id: String,
    /// Subnet ids explicitly associated.
    pub subnet_ids: Vec<String>,
    pub main: bool,
    pub routes: Vec<AwsRoute>,
    /// VGWs propagating routes into this table.
    pub propagating_vgws: Vec<String>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AwsRoute {
    /// DestinationCidrBlock / DestinationIpv6CidrBlock; prefix-list routes keep None.
    pub destination: Option<IpNet>,
    pub destination_prefix_list: Option<String>,
    /// GatewayId, NatGatewayId, TransitGatewayId, NetworkInterfaceId,
    /// VpcPeeringConnectionId, InstanceId — whichever is set (`local`, `igw-…`, `vgw-…`).
    pub target: String,
    /// `active` or `blackhole`.
    pub state: String,
    /// CreateRouteTable, CreateRoute, EnableVgwRoutePropagation.
    pub origin_kind: Option<String>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    pub name: Option<String>,
    pub vpc_id: Option<String>,
    pub ingress: Vec<SgRule>,
    pub egress: Vec<SgRule>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SgRule {
    /// `-1` for all, `tcp`, `udp`, `icmp`, or a number (`50` for ESP).
    pub protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub cidrs: Vec<IpNet>,
    /// Referenced security groups.
    pub groups: Vec<String>,
    pub prefix_lists: Vec<String>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkAcl {
    pub id: String,
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    pub is_default: bool,
    pub entries: Vec<NaclEntry>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NaclEntry {
    pub rule_number: i32,
    pub egress: bool,
    pub protocol: String,
    /// `allow` or `deny`.
    pub action: String,
    pub cidr: Option<IpNet>,
    pub port_from: Option<i32>,
    pub port_to: Option<i32>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VpnConnection {
    pub id: String,
    pub state: Option<String>,
    pub vpn_gateway_id: Option<String>,
    pub transit_gateway_id: Option<String>,
    pub customer_gateway_id: Option<String>,
    pub static_routes_only: Option<bool>,
    pub routes: Vec<IpNet>,
    /// (outside IP, status UP/DOWN, status message).
    pub tunnels: Vec<(String, String, Option<String>)>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub subnet_id: Option<String>,
    pub vpc_id: Option<String>,
    pub private_ips: Vec<std::net::IpAddr>,
    pub source_dest_check: Option<bool>,
    pub security_groups: Vec<String>,
    pub name: Option<String>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransitGatewayRouteTable {
    pub id: String,
    pub routes: Vec<AwsRoute>,
    pub origin: Location,
}
