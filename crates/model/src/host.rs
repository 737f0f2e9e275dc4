//! One host of the network (node, gateway or pod network namespace): its interfaces,
//! routes and policy rules, sysctls, firewall, tunnels, resolver and CNI configuration.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::finding::Location;
use crate::firewall::Ruleset;
use crate::ipsec::Ipsec;
use crate::wireguard::WireGuardInterface;

/// The role a host plays (from `host.json`, or guessed by the bundle reader).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostRole {
    Node,
    Gateway,
    Pod,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Host {
    /// Folder name under `hosts/`.
    pub name: String,
    pub role: Option<HostRole>,
    /// For pod namespaces: the node they run on; for nodes: the Kubernetes Node name.
    pub node: Option<String>,
    /// For pod namespaces: `namespace/name`.
    pub pod: Option<String>,
    pub interfaces: Vec<Interface>,
    pub routes: RouteTable,
    pub rules: Vec<RoutingRule>,
    pub sysctls: Sysctls,
    /// Firewall from `nft -j list ruleset`.
    pub nftables: Option<Ruleset>,
    /// Firewall from `iptables-save` (and `ip6tables-save`, merged with family ip6).
    pub iptables: Option<Ruleset>,
    pub wireguard: Vec<WireGuardInterface>,
    pub ipsec: Ipsec,
    pub resolv: Option<ResolvConf>,
    pub cni: Vec<CniConfig>,
    pub conntrack: Option<Conntrack>,
    /// Bundle-relative paths of the artifacts this host had (for "unknown, needs X").
    pub artifacts: Vec<String>,
}

impl Host {
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    /// Whether the artifact `file` (e.g. `nft.json`) was present for this host.
    pub fn has_artifact(&self, file: &str) -> bool {
        self.artifacts.iter().any(|a| a.ends_with(&format!("/{file}")))
    }

    /// `host/<name>` — prefix of finding subjects about this host.
    pub fn subject(&self) -> String {
        format!("host/{}", self.name)
    }
}

/// Interface kind, from `ip -d link` `linkinfo.info_kind` (absent means physical).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum InterfaceKind {
    Loopback,
    Physical,
    Veth,
    Bridge,
    Vxlan {
        vni: Option<u32>,
        /// UDP destination port (4789 standard, 8472 Linux/flannel default).
        port: Option<u16>,
        local: Option<IpAddr>,
        /// Underlay device the VXLAN is bound to.
        dev: Option<String>,
    },
    WireGuard,
    Tun,
    Ipip,
    Gre,
    /// Any other `info_kind` (e.g. `dummy`, `vlan`, `macvlan`, `ip6tnl`).
    Other {
        name: String,
    },
}

impl InterfaceKind {
    /// The encapsulation this interface adds to every packet sent through it, in bytes,
    /// for an IPv4 (`v6 = false`) or IPv6 outer header. None for non-encapsulating kinds.
    pub fn encapsulation_overhead(&self, v6: bool) -> Option<u32> {
        match self {
            InterfaceKind::Vxlan { .. } => Some(if v6 { 70 } else { 50 }),
            InterfaceKind::WireGuard => Some(if v6 { 80 } else { 60 }),
            InterfaceKind::Ipip => Some(if v6 { 40 } else { 20 }),
            InterfaceKind::Gre => Some(if v6 { 44 } else { 24 }),
            _ => None,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            InterfaceKind::Loopback => "loopback",
            InterfaceKind::Physical => "physical",
            InterfaceKind::Veth => "veth",
            InterfaceKind::Bridge => "bridge",
            InterfaceKind::Vxlan { .. } => "vxlan",
            InterfaceKind::WireGuard => "wireguard",
            InterfaceKind::Tun => "tun",
            InterfaceKind::Ipip => "ipip",
            InterfaceKind::Gre => "gre",
            InterfaceKind::Other { name } => name,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Interface {
    pub index: Option<u32>,
    pub name: String,
    pub kind: InterfaceKind,
    pub mtu: Option<u32>,
    /// Administratively and operationally up (`UP` flag set and operstate not DOWN).
    pub up: bool,
    pub mac: Option<String>,
    /// Addresses with their prefix length (`10.0.0.1/24`), from `ip -j addr`.
    pub addresses: Vec<IpNet>,
    /// Bridge/bond master (`master` in ip link).
    pub master: Option<String>,
    /// Parent or peer link (`link` in ip link: veth peer, vlan parent).
    pub link: Option<String>,
    /// Peer link's network namespace id, when the peer is in another namespace.
    pub link_netnsid: Option<i64>,
    pub origin: Location,
}

/// Route type as `ip route` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteType {
    Unicast,
    Local,
    Broadcast,
    Multicast,
    Anycast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
    Nat,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Route {
    /// Table id (254 main, 255 local, 253 default); named tables are resolved to ids
    /// where known (`main`, `local`, `default`), others kept in `table_name`.
    pub table: u32,
    pub table_name: Option<String>,
    pub route_type: RouteType,
    /// Destination; `default` becomes `0.0.0.0/0` or `::/0`.
    pub dst: IpNet,
    pub gateway: Option<IpAddr>,
    pub dev: Option<String>,
    pub prefsrc: Option<IpAddr>,
    pub metric: Option<u32>,
    pub protocol: Option<String>,
    pub scope: Option<String>,
    /// Per-route MTU lock/metric (`mtu 1400`), if set.
    pub mtu: Option<u32>,
    pub origin: Location,
}

/// All routes of a host, all tables.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RouteTable {
    pub routes: Vec<Route>,
}

impl RouteTable {
    pub const MAIN: u32 = 254;
    pub const LOCAL: u32 = 255;

    /// Longest-prefix match in one table (lowest metric breaks ties). Routes of type
    /// `local`/`broadcast` count like any other, as the kernel does.
    pub fn lookup_in(&self, table: u32, dst: IpAddr) -> Option<&Route> {
        self.routes.iter().filter(|r| r.table == table && r.dst.contains(&dst)).max_by(|a, b| {
            a.dst.prefix_len().cmp(&b.dst.prefix_len()).then_with(|| b.metric.unwrap_or(0).cmp(&a.metric.unwrap_or(0)))
        })
    }

    /// Lookup as the kernel does without policy rules: table local, then main, then default.
    pub fn lookup(&self, dst: IpAddr) -> Option<&Route> {
        [Self::LOCAL, Self::MAIN, 253].iter().find_map(|t| self.lookup_in(*t, dst))
    }

    /// Lookup honouring policy routing rules (priority order; matches on `from`, `to`,
    /// `fwmark`, `iif`; actions to-table, blackhole/unreachable/prohibit).
    /// Returns the route and the rule that selected its table.
    pub fn lookup_with_rules<'a>(
        &'a self,
        rules: &'a [RoutingRule],
        src: Option<IpAddr>,
        dst: IpAddr,
        fwmark: Option<u32>,
    ) -> Option<(&'a Route, Option<&'a RoutingRule>)> {
        if rules.is_empty() {
            return self.lookup(dst).map(|r| (r, None));
        }
        let mut sorted: Vec<&RoutingRule> = rules.iter().collect();
        sorted.sort_by_key(|r| r.priority);
        for rule in sorted {
            if !rule.matches(src, dst, fwmark) {
                continue;
            }
            match rule.action {
                RuleAction::ToTable => {
                    if let Some(table) = rule.table {
                        if let Some(route) = self.lookup_in(table, dst) {
                            if route.route_type != RouteType::Throw {
                                return Some((route, Some(rule)));
                            }
                        }
                    }
                }
                // `nop` does nothing; `goto` jumps to a later priority, which the model does
                // not record, so evaluation goes on with the next rule (documented gap).
                RuleAction::Nop | RuleAction::Goto => {}
                RuleAction::Blackhole | RuleAction::Unreachable | RuleAction::Prohibit => return None,
            }
        }
        None
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    ToTable,
    Blackhole,
    Unreachable,
    Prohibit,
    Goto,
    Nop,
}

/// A policy routing rule from `ip -j rule show`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoutingRule {
    pub priority: u32,
    pub family: Option<String>,
    pub not: bool,
    pub from: Option<IpNet>,
    pub to: Option<IpNet>,
    pub fwmark: Option<u32>,
    pub fwmask: Option<u32>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub table: Option<u32>,
    pub table_name: Option<String>,
    pub action: RuleAction,
    pub origin: Location,
}

impl RoutingRule {
    /// Whether this rule selects a packet. Interfaces are not known here, so rules with
    /// `iif`/`oif` never match (negated or not).
    pub fn matches(&self, src: Option<IpAddr>, dst: IpAddr, fwmark: Option<u32>) -> bool {
        let mut m = true;
        if let Some(from) = &self.from {
            m &= src.is_some_and(|s| from.contains(&s));
        }
        if let Some(to) = &self.to {
            m &= to.contains(&dst);
        }
        if let Some(mark) = self.fwmark {
            let mask = self.fwmask.unwrap_or(u32::MAX);
            m &= fwmark.is_some_and(|f| f & mask == mark & mask);
        }
        // The incoming/outgoing interface is not known to this lookup, so a rule that
        // names one is skipped whatever its `not` says (inverting "unknown" is not "match").
        if self.iif.is_some() || self.oif.is_some() {
            return false;
        }
        m != self.not
    }
}

/// `sysctl -a` as key → value, with the line each came from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sysctls {
    pub values: BTreeMap<String, SysctlValue>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SysctlValue {
    pub value: String,
    pub origin: Location,
}

impl Sysctls {
    pub fn get(&self, key: &str) -> Option<&SysctlValue> {
        self.values.get(key)
    }

    /// The value as an integer (first whitespace-separated field).
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.values.get(key)?.value.split_whitespace().next()?.parse().ok()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// `/etc/resolv.conf`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ResolvConf {
    pub nameservers: Vec<Nameserver>,
    pub search: Vec<String>,
    /// Line of the (last) `search`/`domain` directive.
    pub search_origin: Option<Location>,
    pub ndots: Option<u32>,
    pub timeout: Option<u32>,
    pub attempts: Option<u32>,
    /// Every option as written (`ndots:5`, `single-request-reopen`, `edns0` ...).
    pub options: Vec<String>,
    pub options_origin: Option<Location>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Nameserver {
    pub addr: IpAddr,
    pub origin: Location,
}

/// One CNI network configuration file (`.conf` or `.conflist`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CniConfig {
    pub file: String,
    pub name: Option<String>,
    pub cni_version: Option<String>,
    pub plugins: Vec<CniPlugin>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CniPlugin {
    /// The plugin `type` (calico, flannel, bridge, portmap, cilium-cni ...).
    pub plugin_type: String,
    pub mtu: Option<u32>,
    pub ipam: Option<CniIpam>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CniIpam {
    /// host-local, calico-ipam, whereabouts ...
    pub ipam_type: Option<String>,
    /// Ranges or subnets the IPAM allocates from (host-local `ranges`/`subnet`,
    /// Calico `ipv4_pools`). `usePodCidr` and similar are left out.
    pub subnets: Vec<IpNet>,
}

/// Connection tracking state: `conntrack -S`, `nf_conntrack_count`, and the max sysctl.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Conntrack {
    pub count: Option<u64>,
    pub count_origin: Option<Location>,
    /// `net.netfilter.nf_conntrack_max` (filled from sysctls by the bundle reader).
    pub max: Option<u64>,
    /// Sum over CPUs of `conntrack -S` counters (`insert_failed`, `drop`, `early_drop` ...).
    pub stats: BTreeMap<String, u64>,
    pub stats_origin: Option<Location>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(table: u32, dst: &str, dev: &str) -> Route {
        Route {
            table,
            table_name: None,
            route_type: RouteType::Unicast,
            dst: dst.parse().unwrap(),
            gateway: None,
            dev: Some(dev.into()),
            prefsrc: None,
            metric: None,
            protocol: None,
            scope: None,
            mtu: None,
            origin: Location::Derived,
        }
    }

    fn rule(priority: u32, table: u32) -> RoutingRule {
        RoutingRule {
            priority,
            family: None,
            not: false,
            from: None,
            to: None,
            fwmark: None,
            fwmask: None,
            iif: None,
            oif: None,
            table: Some(table),
            table_name: None,
            action: RuleAction::ToTable,
            origin: Location::Derived,
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let t = RouteTable { routes: vec![route(254, "0.0.0.0/0", "eth0"), route(254, "10.0.0.0/8", "wg0")] };
        assert_eq!(t.lookup("10.1.2.3".parse().unwrap()).unwrap().dev.as_deref(), Some("wg0"));
        assert_eq!(t.lookup("192.0.2.1".parse().unwrap()).unwrap().dev.as_deref(), Some("eth0"));
    }

    #[test]
    fn negated_interface_rule_does_not_match_everything() {
        let t = RouteTable { routes: vec![route(254, "0.0.0.0/0", "eth0"), route(100, "0.0.0.0/0", "wg0")] };
        let mut odd = rule(300, 100);
        odd.not = true;
        odd.iif = Some("cni0".into());
        let rules = vec![odd, rule(32766, 254)];
        let (r, by) = t.lookup_with_rules(&rules, None, "192.0.2.1".parse().unwrap(), None).unwrap();
        assert_eq!(r.dev.as_deref(), Some("eth0"));
        assert_eq!(by.unwrap().priority, 32766);
    }

    #[test]
    fn fwmark_rule_and_nop_continue() {
        let t = RouteTable { routes: vec![route(254, "0.0.0.0/0", "eth0"), route(51820, "0.0.0.0/0", "wg0")] };
        let mut marked = rule(100, 51820);
        marked.fwmark = Some(0xca6c);
        let mut nop = rule(50, 0);
        nop.action = RuleAction::Nop;
        let rules = vec![nop, marked, rule(32766, 254)];
        let dst = "192.0.2.1".parse().unwrap();
        assert_eq!(t.lookup_with_rules(&rules, None, dst, Some(0xca6c)).unwrap().0.dev.as_deref(), Some("wg0"));
        assert_eq!(t.lookup_with_rules(&rules, None, dst, None).unwrap().0.dev.as_deref(), Some("eth0"));
    }
}
