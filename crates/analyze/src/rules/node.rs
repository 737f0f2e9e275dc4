//! Node-layer rules (NODE-001..005): IP forwarding, strict reverse-path filtering on
//! asymmetric paths, a FORWARD chain that drops pod traffic, and conntrack pressure.
//! Also the host queries (route lookups, pod CIDRs, forwarding role) the overlay and
//! tunnel rules share.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use netsleuth_model::firewall::{Chain, FirewallRule, FirewallSource, FirewallTable, Hook, Match, Ruleset, Verdict};
use netsleuth_model::host::{
    Host, HostRole, Interface, InterfaceKind, Route, RouteTable, RouteType, RoutingRule, RuleAction,
};
use netsleuth_model::kubernetes::Node;
use netsleuth_model::{Confidence, Evidence, Finding, Layer, Location, Network, Severity};

use crate::rule::{Context, Rule};
use crate::support::overlaps;

pub(crate) const RULES: &[Rule] = &[
    Rule {
        id: "NODE-001",
        layer: Layer::Node,
        severity: Severity::Critical,
        title: "IP forwarding disabled on a host that forwards",
        rationale: "A Kubernetes node, VPN gateway or overlay endpoint moves packets between \
                    interfaces (pod veth to eth0, wg0 to the LAN). With net.ipv4.ip_forward = 0 \
                    the kernel drops every such packet silently: pods have no egress, tunnels \
                    come up (handshakes are local traffic) but carry nothing across. It typically \
                    appears after a reboot when the runtime setting was never persisted, or when \
                    a hardening profile resets it (FAILURES #12).",
        references: &[
            "kubernetes/kubernetes#45022",
            "https://www.kernel.org/doc/Documentation/networking/ip-sysctl.txt",
            "https://kubernetes.io/docs/setup/production-environment/container-runtimes/#prerequisite-ipv4-forwarding-optional",
        ],
        example: "host/node-3/sysctl/net.ipv4.ip_forward: net.ipv4.ip_forward = 0 on node-3, which \
                  forwards (role node; routes to veth cali1a2b): pod traffic leaving the node is dropped",
        check: check_forwarding,
    },
    Rule {
        id: "NODE-002",
        layer: Layer::Node,
        severity: Severity::Medium,
        title: "Strict reverse-path filter on an interface with asymmetric traffic",
        rationale: "With rp_filter = 1 (strict) the kernel drops a packet when the route back to \
                    its source leaves through a different interface than it arrived on. Tunnels \
                    whose sources are routed elsewhere, and secondary NICs (a second ENI, a second \
                    default route) receive exactly such packets, which vanish as martians with no \
                    ICMP. The effective value is max(conf.all, conf.<iface>), so a strict `all` \
                    overrides a loose interface setting. Shows as flaky NodePorts via a secondary \
                    ENI, or one-way tunnels (FAILURES #34).",
        references: &[
            "cilium/cilium#13130",
            "https://www.kernel.org/doc/Documentation/networking/ip-sysctl.txt",
        ],
        example: "host/node-2/iface/eth1: rp_filter 1 (max of all=1, eth1=0) on eth1, but replies to \
                  0.0.0.0/0 leave via eth0 (default route in table main): packets arriving on eth1 \
                  are dropped as martians",
        check: check_rp_filter,
    },
    Rule {
        id: "NODE-003",
        layer: Layer::Node,
        severity: Severity::High,
        title: "FORWARD policy drop without accept rules for pod CIDRs",
        rationale: "When the FORWARD hook's policy is DROP (Docker sets it; some distributions' \
                    firewalls do too) every forwarded packet that no rule accepts is dropped. Pod \
                    traffic to other nodes and the outside is forwarded, so unless a rule accepts \
                    the pod CIDRs (as Flannel's FLANNEL-FWD or Calico's cali-FORWARD do) pods lose \
                    egress and cross-node traffic, typically after a reboot or a Docker install \
                    (FAILURES #12).",
        references: &[
            "kubernetes/kubernetes#45022",
            "https://docs.docker.com/engine/network/packet-filtering-firewalls/#docker-on-a-router",
        ],
        example: "host/node-1/firewall/iptables/filter/FORWARD: policy DROP and no rule accepts \
                  traffic from 10.244.1.0/24 (pods of node-1) or to it",
        check: check_forward_policy,
    },
    Rule {
        id: "NODE-004",
        layer: Layer::Node,
        severity: Severity::High,
        title: "Conntrack table nearly full",
        rationale: "Every connection the node tracks (including every NATed Service connection) \
                    takes one conntrack entry. At nf_conntrack_max the kernel logs \
                    'nf_conntrack: table full, dropping packet' and drops new connections: \
                    random timeouts and 503s under load (FAILURES #17).",
        references: &[
            "kubernetes/kubernetes#71261",
            "https://www.kernel.org/doc/Documentation/networking/nf_conntrack-sysctl.txt",
        ],
        example: "host/node-4/conntrack: nf_conntrack_count 255000 of nf_conntrack_max 262144 (97.3 %)",
        check: check_conntrack_fill,
    },
    Rule {
        id: "NODE-005",
        layer: Layer::Node,
        severity: Severity::Medium,
        title: "Conntrack insert failures or drops observed",
        rationale: "`conntrack -S` counters since boot: insert_failed rises when two packets of \
                    the same new UDP flow race through DNAT (a DNS client sending A and AAAA from \
                    one socket), so one is dropped and the lookup retries after 5 s \
                    (FAILURES #2); drop and early_drop rise when the table is full (FAILURES #17).",
        references: &[
            "kubernetes/kubernetes#56903",
            "kubernetes/kubernetes#71261",
            "https://kubernetes.io/docs/tasks/administer-cluster/nodelocaldns/",
        ],
        example: "host/node-4/conntrack: insert_failed 1532, drop 0 in conntrack -S",
        check: check_conntrack_stats,
    },
];

// ---------------------------------------------------------------------------------------
// Host queries shared by the node, overlay and tunnel rules.
// ---------------------------------------------------------------------------------------

/// Route lookup as the kernel does it for a packet to `dst` (optionally carrying `fwmark`),
/// honouring policy rules of the same family when the bundle has them.
pub(crate) fn route_lookup(host: &Host, dst: IpAddr, fwmark: Option<u32>) -> Option<&Route> {
    route_lookup_from(host, None, dst, fwmark)
}

/// Like `route_lookup`, with a source address for `from` rules. Mirrors
/// `RouteTable::lookup_with_rules`, restricted to rules of the destination's family.
pub(crate) fn route_lookup_from(host: &Host, src: Option<IpAddr>, dst: IpAddr, fwmark: Option<u32>) -> Option<&Route> {
    // `ip rule show` lists one family; rules of the other family must not steer the lookup.
    let mut rules: Vec<&RoutingRule> = host.rules.iter().filter(|r| rule_family_matches(r, dst)).collect();
    if rules.is_empty() {
        return host.routes.lookup(dst);
    }
    rules.sort_by_key(|r| r.priority);
    for rule in rules {
        if !rule.matches(src, dst, fwmark) {
            continue;
        }
        match rule.action {
            RuleAction::ToTable => {
                let hit = rule.table.and_then(|t| host.routes.lookup_in(t, dst));
                if let Some(route) = hit.filter(|r| r.route_type != RouteType::Throw) {
                    return Some(route);
                }
            }
            // `nop` and `goto` fall through to later rules here (goto targets are rare).
            RuleAction::Nop | RuleAction::Goto => {}
            RuleAction::Blackhole | RuleAction::Unreachable | RuleAction::Prohibit => return None,
        }
    }
    None
}

fn rule_family_matches(rule: &RoutingRule, dst: IpAddr) -> bool {
    match rule.family.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("inet" | "ipv4" | "4") => dst.is_ipv4(),
        Some("inet6" | "ipv6" | "6") => dst.is_ipv6(),
        _ => true,
    }
}

/// The interface carrying the default route of a family (table main first, lowest metric),
/// with the route.
pub(crate) fn default_route(host: &Host, v6: bool) -> Option<&Route> {
    let defaults = || {
        host.routes.iter().filter(move |r| {
            r.dst.prefix_len() == 0
                && r.dst.addr().is_ipv6() == v6
                && r.dev.is_some()
                && r.route_type == RouteType::Unicast
        })
    };
    defaults()
        .filter(|r| r.table == RouteTable::MAIN)
        .min_by_key(|r| r.metric.unwrap_or(0))
        .or_else(|| defaults().min_by_key(|r| (r.table, r.metric.unwrap_or(0))))
}

/// Whether an interface is an encapsulating tunnel, naming its kind as shown to users:
/// VXLAN, WireGuard (also a wireguard-go `tun` named like a WireGuard interface), IPIP, GRE.
pub(crate) fn tunnel_kind(host: &Host, iface: &Interface) -> Option<&'static str> {
    match &iface.kind {
        InterfaceKind::Vxlan { .. } => Some("VXLAN"),
        InterfaceKind::WireGuard => Some("WireGuard"),
        InterfaceKind::Ipip => Some("IPIP"),
        InterfaceKind::Gre => Some("GRE"),
        InterfaceKind::Tun if host.wireguard.iter().any(|w| w.name == iface.name) => Some("WireGuard"),
        _ => None,
    }
}

/// Whether the interface is a WireGuard device (kernel, or wireguard-go's tun).
pub(crate) fn is_wireguard_iface(host: &Host, name: &str) -> bool {
    host.interface(name)
        .map_or_else(|| host.wireguard.iter().any(|w| w.name == name), |i| tunnel_kind(host, i) == Some("WireGuard"))
}

/// The value of a per-interface sysctl key: `sysctl -a` writes `eth0.100` as `eth0/100`.
pub(crate) fn iface_sysctl_key(prefix: &str, iface: &str, leaf: &str) -> String {
    format!("{prefix}.{}.{leaf}", iface.replace('.', "/"))
}

/// Evidence for a sysctl value, if the host has it.
fn sysctl_evidence(host: &Host, key: &str) -> Option<Evidence> {
    host.sysctls.get(key).map(|v| Evidence::new(v.origin.clone(), format!("{key} = {}", v.value)))
}

/// Kubernetes Node objects by name (built once per check).
pub(crate) fn k8s_nodes(net: &Network) -> HashMap<&str, &Node> {
    net.kubernetes.nodes.iter().map(|n| (n.meta.name.as_str(), n)).collect()
}

/// The Kubernetes Node a host is, by its `node` field or its folder name.
pub(crate) fn k8s_node_of<'a>(host: &Host, nodes: &HashMap<&str, &'a Node>) -> Option<&'a Node> {
    host.node.as_deref().and_then(|n| nodes.get(n)).or_else(|| nodes.get(host.name.as_str())).copied()
}

/// A pod CIDR of a host and where it was learned.
#[derive(Debug, Clone)]
pub(crate) struct PodCidr {
    pub(crate) net: IpNet,
    pub(crate) evidence: Evidence,
}

/// Docker's own bridges (docker0, br-<id>) are container networks that Docker firewalls on
/// purpose (published ports only); they are not pod networks.
fn is_docker_bridge(name: &str) -> bool {
    name == "docker0" || name.starts_with("br-")
}

/// Interfaces that face pods: veths (Calico `cali*`, Cilium `lxc*`), and bridges with veth
/// members (cni0). Docker's bridges and their veths are left out.
pub(crate) fn is_pod_facing(host: &Host, iface: &Interface) -> bool {
    if iface.name.starts_with("cilium_") {
        // cilium_host/cilium_net are a veth pair internal to Cilium, not a pod's link.
        return false;
    }
    if is_docker_bridge(&iface.name) || iface.master.as_deref().is_some_and(is_docker_bridge) {
        return false;
    }
    match iface.kind {
        // A veth with its own global address or a gateway route through it is this host's
        // uplink (a namespace's eth0), not a link to a pod.
        InterfaceKind::Veth => {
            let addressed = iface.addresses.iter().any(|a| is_unicast_dst(&IpNet::from(a.addr())));
            let uplink = host.routes.iter().any(|r| r.gateway.is_some() && r.dev.as_deref() == Some(&iface.name));
            !addressed && !uplink
        }
        InterfaceKind::Bridge => {
            host.interfaces.iter().any(|m| m.master.as_deref() == Some(&iface.name) && m.kind == InterfaceKind::Veth)
        }
        InterfaceKind::Loopback => false,
        _ => iface.name.starts_with("cali") || iface.name.starts_with("lxc"),
    }
}

/// Pod CIDRs of a host: the Kubernetes Node's podCIDRs, the CNI IPAM subnets and the
/// destinations of routes via pod-facing interfaces. Prefixes inside another are dropped.
pub(crate) fn pod_cidrs(host: &Host, node: Option<&Node>) -> Vec<PodCidr> {
    let mut all: Vec<PodCidr> = Vec::new();
    if let Some(node) = node {
        for (i, c) in node.pod_cidrs.iter().enumerate() {
            all.push(PodCidr {
                net: c.trunc(),
                evidence: Evidence::new(node.origin.child(&format!("/spec/podCIDRs/{i}")), format!("podCIDR {c}")),
            });
        }
    }
    for cfg in &host.cni {
        for p in &cfg.plugins {
            for s in p.ipam.iter().flat_map(|i| i.subnets.iter()) {
                all.push(PodCidr {
                    net: s.trunc(),
                    evidence: Evidence::new(p.origin.clone(), format!("{} IPAM subnet {s}", p.plugin_type)),
                });
            }
        }
    }
    let facing: BTreeSet<&str> =
        host.interfaces.iter().filter(|i| is_pod_facing(host, i)).map(|i| i.name.as_str()).collect();
    let routed: Vec<&Route> = host
        .routes
        .iter()
        .filter(|r| {
            r.dev.as_deref().is_some_and(|d| facing.contains(d))
                && r.dst.prefix_len() > 0
                && is_unicast_dst(&r.dst)
                && r.route_type == RouteType::Unicast
        })
        .collect();
    // Calico announces its IPAM blocks as blackhole routes (`blackhole 10.244.7.0/26 proto
    // bird`): per-pod routes inside such a block stand for the block.
    let blocks: Vec<&Route> = host
        .routes
        .iter()
        .filter(|r| matches!(r.route_type, RouteType::Blackhole | RouteType::Unreachable) && r.dst.prefix_len() > 0)
        .collect();
    let mut in_block: Vec<&Route> = Vec::new();
    let routed: Vec<&Route> = routed
        .into_iter()
        .filter(|r| match blocks.iter().find(|b| b.dst.contains(&r.dst)) {
            Some(b) => {
                if !in_block.iter().any(|k| k.dst == b.dst) {
                    in_block.push(b);
                }
                false
            }
            None => true,
        })
        .collect();
    for b in in_block {
        all.push(PodCidr {
            net: b.dst.trunc(),
            evidence: Evidence::new(b.origin.clone(), format!("blackhole {} (IPAM block with pod routes)", b.dst)),
        });
    }
    // Other per-pod /32 routes (Cilium, bridges) collapse into a few contiguous prefixes.
    let nets: Vec<IpNet> = routed.iter().map(|r| r.dst.trunc()).collect();
    for agg in IpNet::aggregate(&nets) {
        if let Some(r) = routed.iter().find(|r| agg.contains(&r.dst)) {
            let dev = r.dev.as_deref().unwrap_or_default();
            let what = if agg == r.dst.trunc() {
                format!("{} dev {dev}", r.dst)
            } else {
                format!("{} dev {dev} (one of the pod routes in {agg})", r.dst)
            };
            all.push(PodCidr { net: agg, evidence: Evidence::new(r.origin.clone(), what) });
        }
    }
    // Keep the widest prefixes: sort by (family, prefix length), drop anything inside a kept one.
    all.sort_by_key(|c| (c.net.addr().is_ipv6(), c.net.prefix_len(), c.net.network()));
    let mut kept: Vec<PodCidr> = Vec::new();
    for c in all {
        if !kept.iter().any(|k| k.net.contains(&c.net)) {
            kept.push(c);
        }
    }
    kept
}

/// Not link-local, multicast or the unspecified network.
pub(crate) fn is_unicast_dst(net: &IpNet) -> bool {
    match net.addr() {
        IpAddr::V4(a) => !a.is_link_local() && !a.is_multicast() && !a.is_broadcast(),
        IpAddr::V6(a) => {
            let seg0 = a.segments()[0];
            (seg0 & 0xffc0) != 0xfe80 && (seg0 & 0xff00) != 0xff00
        }
    }
}

/// Why a host forwards packets (None: nothing in the bundle says it does). A lone
/// WireGuard client or road-warrior IPsec client does not need forwarding, so tunnels count
/// only when they carry other hosts' traffic (several peers, site subnets, masquerading).
pub(crate) fn forwarding_reason(host: &Host, net_wide: &WgPeerIndex<'_>) -> Option<(String, Evidence)> {
    match host.role {
        Some(HostRole::Pod) => return None,
        Some(r @ (HostRole::Node | HostRole::Gateway)) => {
            let role = if r == HostRole::Node { "node" } else { "gateway" };
            let loc = host
                .artifacts
                .iter()
                .find(|a| a.ends_with("/host.json"))
                .map_or(Location::Derived, |a| Location::file(a.clone()));
            return Some((format!("role {role}"), Evidence::new(loc, format!("\"role\": \"{role}\""))));
        }
        None => {}
    }
    for i in &host.interfaces {
        if matches!(i.kind, InterfaceKind::Vxlan { .. }) {
            return Some((
                format!("VXLAN interface {}", i.name),
                Evidence::new(i.origin.clone(), format!("{} vxlan", i.name)),
            ));
        }
    }
    for r in host.routes.iter() {
        if let Some(i) = r.dev.as_deref().and_then(|d| host.interface(d)) {
            // A route *towards* a pod behind a veth means this host forwards for it. A pod's
            // own default route, its connected subnet and link-local or multicast routes on
            // its veth `eth0` say nothing of the kind.
            let own_subnet = i.addresses.iter().any(|a| a.trunc() == r.dst.trunc() || r.dst.contains(&a.addr()));
            let special = r.dst.prefix_len() == 0
                || r.table == RouteTable::LOCAL
                || match r.dst.addr() {
                    std::net::IpAddr::V4(a) => a.is_link_local() || a.is_multicast(),
                    std::net::IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80 || a.is_multicast(),
                };
            // Routes to pods are direct (`dev vethX`, no gateway); a route through a gateway
            // on a host's only link is how that host itself leaves, not forwarding.
            let only_link = host.interfaces.iter().filter(|x| x.kind != InterfaceKind::Loopback).count() <= 1;
            if i.kind == InterfaceKind::Veth
                && r.route_type == RouteType::Unicast
                && r.gateway.is_none()
                && !only_link
                && !own_subnet
                && !special
            {
                return Some((
                    format!("route {} via veth {}", r.dst, i.name),
                    Evidence::new(r.origin.clone(), format!("{} dev {}", r.dst, i.name)),
                ));
            }
        }
    }
    for c in &host.ipsec.connections {
        for ch in &c.children {
            if let Some(ts) = ch.local_ts.iter().find(|ts| ts_is_subnet(ts)) {
                return Some((
                    format!("IPsec connection {} protects the subnet {ts}", c.name),
                    Evidence::new(ch.origin.clone(), format!("local_ts = {}", ch.local_ts.join(","))),
                ));
            }
        }
    }
    let lan: Vec<IpNet> = host
        .interfaces
        .iter()
        .filter(|i| !is_wireguard_iface(host, &i.name) && i.kind != InterfaceKind::Loopback)
        .flat_map(|i| i.addresses.iter().map(|a| a.trunc()))
        .filter(is_unicast_dst)
        .collect();
    for wg in crate::rules::wireguard::effective_interfaces(host) {
        if wg.peers.len() >= 2 {
            return Some((
                format!(
                    "WireGuard interface {} with {} peers (traffic between peers is forwarded)",
                    wg.name,
                    wg.peers.len()
                ),
                Evidence::new(wg.origin.clone(), format!("interface {} ({} peers)", wg.name, wg.peers.len())),
            ));
        }
        // Another host of the bundle routes one of this host's LAN subnets to it.
        if let Some(pk) = &wg.public_key {
            for (other, peer) in net_wide.peers_with_key(pk) {
                if other == host.name {
                    continue;
                }
                if let Some(p) =
                    peer.allowed_ips.iter().find(|p| p.prefix_len() > 0 && lan.iter().any(|l| overlaps(l, p)))
                {
                    return Some((
                        format!(
                            "host {other} routes {p} (a subnet of this host) through its WireGuard peer for {}",
                            wg.name
                        ),
                        Evidence::new(peer.origin.clone(), format!("allowed ips {p}")),
                    ));
                }
            }
        }
    }
    for rs in [&host.iptables, &host.nftables].into_iter().flatten() {
        for t in &rs.tables {
            for ch in t.chains.iter().filter(|c| c.hook == Some(Hook::Postrouting)) {
                if let Some(r) =
                    ch.rules.iter().find(|r| matches!(r.verdict, Some(Verdict::Masquerade | Verdict::Snat(_))))
                {
                    return Some((
                        "masquerades forwarded traffic".to_string(),
                        Evidence::new(r.origin.clone(), r.text.clone()),
                    ));
                }
            }
        }
    }
    None
}

fn ts_is_subnet(ts: &str) -> bool {
    let base = ts.split('[').next().unwrap_or(ts).trim();
    base.parse::<IpNet>().is_ok_and(|n| n.prefix_len() < n.max_prefix_len())
}

/// WireGuard peers of every host by public key, for cross-host checks.
pub(crate) struct WgPeerIndex<'a> {
    by_key: HashMap<&'a str, Vec<(&'a str, &'a netsleuth_model::wireguard::WireGuardPeer)>>,
}

impl<'a> WgPeerIndex<'a> {
    pub(crate) fn new(net: &'a Network) -> WgPeerIndex<'a> {
        let mut by_key: HashMap<&str, Vec<_>> = HashMap::new();
        for h in &net.hosts {
            for w in crate::rules::wireguard::local_interfaces(h) {
                for p in &w.peers {
                    by_key.entry(p.public_key.as_str()).or_default().push((h.name.as_str(), p));
                }
            }
        }
        WgPeerIndex { by_key }
    }

    /// Peers (on any host) configured with this public key, with their host name.
    pub(crate) fn peers_with_key(
        &self,
        key: &str,
    ) -> impl Iterator<Item = (&'a str, &'a netsleuth_model::wireguard::WireGuardPeer)> + '_ {
        self.by_key.get(key).into_iter().flat_map(|v| v.iter().copied())
    }
}

// ---------------------------------------------------------------------------------------
// NODE-001
// ---------------------------------------------------------------------------------------

fn check_forwarding(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    let index = WgPeerIndex::new(ctx.net);
    for host in &ctx.net.hosts {
        if host.sysctls.is_empty() {
            continue; // not collected: nothing to judge
        }
        let Some((reason, reason_ev)) = forwarding_reason(host, &index) else { continue };
        let key = "net.ipv4.ip_forward";
        if host.sysctls.get_i64(key) == Some(0) {
            let mut ev: Vec<Evidence> = sysctl_evidence(host, key).into_iter().collect();
            ev.push(reason_ev.clone());
            out.push(rule.finding(
                format!("{}/sysctl/{key}", host.subject()),
                format!("IPv4 forwarding is off on {}", host.name),
                format!(
                    "{key} = 0 on {}, which forwards ({reason}): the kernel drops every packet it would \
                     route between interfaces, so pod/tunnel traffic crossing this host is lost while \
                     local traffic still works",
                    host.name
                ),
                ev,
                format!(
                    "sysctl -w {key}=1 && echo '{key} = 1' > /etc/sysctl.d/99-netsleuth-forwarding.conf \
                     (persist it: a value set only at runtime is lost at reboot)"
                ),
                Confidence::Likely,
            ));
        }
        // IPv6 forwarding matters only when the host routes IPv6 to pods or tunnels.
        let key6 = "net.ipv6.conf.all.forwarding";
        if host.sysctls.get_i64(key6) == Some(0) {
            if let Some((why6, ev6)) = v6_forwarding_need(host) {
                let mut ev: Vec<Evidence> = sysctl_evidence(host, key6).into_iter().collect();
                ev.push(ev6);
                out.push(rule.finding(
                    format!("{}/sysctl/{key6}", host.subject()),
                    format!("IPv6 forwarding is off on {}", host.name),
                    format!(
                        "{key6} = 0 on {}, which forwards ({reason}) and routes IPv6 to pods or tunnels \
                         ({why6}): forwarded IPv6 packets are dropped",
                        host.name
                    ),
                    ev,
                    format!(
                        "sysctl -w {key6}=1 && echo '{key6} = 1' > /etc/sysctl.d/99-netsleuth-forwarding.conf \
                         (note: enabling it makes the host ignore router advertisements unless accept_ra = 2)"
                    ),
                    Confidence::Likely,
                ));
            }
        }
    }
}

fn v6_forwarding_need(host: &Host) -> Option<(String, Evidence)> {
    for r in host.routes.iter() {
        if !r.dst.addr().is_ipv6() || r.dst.prefix_len() == 0 || !is_unicast_dst(&r.dst) {
            continue;
        }
        let Some(i) = r.dev.as_deref().and_then(|d| host.interface(d)) else { continue };
        if is_pod_facing(host, i) || tunnel_kind(host, i).is_some() {
            return Some((
                format!("route {} dev {}", r.dst, i.name),
                Evidence::new(r.origin.clone(), format!("{} dev {}", r.dst, i.name)),
            ));
        }
    }
    for w in crate::rules::wireguard::local_interfaces(host) {
        for p in &w.peers {
            if let Some(a) = p.allowed_ips.iter().find(|a| a.addr().is_ipv6() && a.prefix_len() > 0) {
                return Some((
                    format!("WireGuard {} routes {a}", w.name),
                    Evidence::new(p.origin.clone(), format!("allowed ips {a}")),
                ));
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// NODE-002
// ---------------------------------------------------------------------------------------

/// Effective rp_filter of an interface: max(conf.all, conf.<iface>), with conf.default
/// standing in for an interface the dump does not list.
fn effective_rp_filter(host: &Host, iface: &str) -> Option<(i64, Vec<Evidence>)> {
    let all_key = "net.ipv4.conf.all.rp_filter";
    let if_key = iface_sysctl_key("net.ipv4.conf", iface, "rp_filter");
    let all = host.sysctls.get_i64(all_key);
    let (own_key, own) = match host.sysctls.get_i64(&if_key) {
        Some(v) => (if_key, Some(v)),
        None => {
            ("net.ipv4.conf.default.rp_filter".to_string(), host.sysctls.get_i64("net.ipv4.conf.default.rp_filter"))
        }
    };
    let value = match (all, own) {
        (None, None) => return None,
        (a, o) => a.unwrap_or(0).max(o.unwrap_or(0)),
    };
    let ev = [sysctl_evidence(host, all_key), sysctl_evidence(host, &own_key)].into_iter().flatten().collect();
    Some((value, ev))
}

fn check_rp_filter(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for host in &ctx.net.hosts {
        if host.sysctls.is_empty() || host.routes.routes.is_empty() {
            continue;
        }
        // (interface, why asymmetric, evidence)
        let mut candidates: Vec<(&str, String, Evidence)> = Vec::new();

        // Tunnels: a source the peer may send from that is routed back elsewhere.
        for wg in crate::rules::wireguard::effective_interfaces(host) {
            let asym = wg.peers.iter().find_map(|p| {
                p.allowed_ips.iter().filter(|a| a.addr().is_ipv4()).find_map(|a| {
                    let back = route_lookup(host, a.network(), None);
                    let back_dev = back.and_then(|r| r.dev.as_deref());
                    let local = back.is_some_and(|r| r.route_type == RouteType::Local);
                    (back_dev != Some(wg.name.as_str()) && !local).then(|| {
                        let via = back_dev.map_or_else(
                            || "there is no route back".to_string(),
                            |d| format!("the route back leaves via {d}"),
                        );
                        (
                            format!(
                                "peer {} may send from {a}, but {via}",
                                crate::rules::wireguard::abbrev_key(&p.public_key)
                            ),
                            Evidence::new(p.origin.clone(), format!("allowed ips {a}")),
                        )
                    })
                })
            });
            if let Some((why, ev)) = asym {
                candidates.push((wg.name.as_str(), why, ev));
            }
        }

        // Secondary NICs: several interfaces with IPv4 default routes.
        let mut default_devs: Vec<&Route> = host
            .routes
            .iter()
            .filter(|r| {
                r.dst.prefix_len() == 0
                    && r.dst.addr().is_ipv4()
                    && r.route_type == RouteType::Unicast
                    && r.dev.is_some()
            })
            .collect();
        default_devs.sort_by_key(|r| (r.table != RouteTable::MAIN, r.metric.unwrap_or(0)));
        let distinct: BTreeSet<&str> = default_devs.iter().filter_map(|r| r.dev.as_deref()).collect();
        if distinct.len() >= 2 {
            for r in &default_devs {
                let Some(dev) = r.dev.as_deref() else { continue };
                if is_wireguard_iface(host, dev) || candidates.iter().any(|c| c.0 == dev) {
                    continue;
                }
                // Reverse lookup as rp_filter does it: destination = a remote source, source =
                // this interface's address (so `from <addr> lookup N` rules apply).
                let own =
                    host.interface(dev).and_then(|i| i.addresses.iter().find(|a| a.addr().is_ipv4())).map(|a| a.addr());
                let back = route_lookup_from(host, own, IpAddr::V4(Ipv4Addr::UNSPECIFIED), None);
                let back_dev = back.and_then(|b| b.dev.as_deref());
                if back_dev != Some(dev) {
                    candidates.push((
                        dev,
                        format!(
                            "{dev} carries a default route (table {}), but the route back to an arbitrary \
                             source leaves via {}",
                            r.table,
                            back_dev.unwrap_or("nothing")
                        ),
                        Evidence::new(r.origin.clone(), format!("{} dev {dev} table {}", r.dst, r.table)),
                    ));
                }
            }
        }

        for (dev, why, ev) in candidates {
            let Some((value, mut evs)) = effective_rp_filter(host, dev) else { continue };
            if value != 1 {
                continue;
            }
            evs.push(ev);
            let key = iface_sysctl_key("net.ipv4.conf", dev, "rp_filter");
            out.push(rule.finding(
                format!("{}/iface/{dev}", host.subject()),
                format!("Strict rp_filter drops asymmetric traffic on {dev}"),
                format!(
                    "effective rp_filter of {dev} on {} is 1 (strict: max of conf.all and conf.{dev}) and \
                     the path is asymmetric: {why}. Such packets are dropped as martians without any ICMP",
                    host.name
                ),
                evs,
                format!(
                    "sysctl -w {key}=2 && echo '{key} = 2' > /etc/sysctl.d/99-netsleuth-rp-filter.conf \
                     (loose mode; max(all, iface) = 2 even when conf.all stays 1)"
                ),
                Confidence::Likely,
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------
// NODE-003
// ---------------------------------------------------------------------------------------

/// How a rule relates to a class of packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Applies {
    /// Matches every packet of the class.
    All,
    /// Matches only part of the class (a protocol, a port, some sources).
    Part,
    /// Cannot tell (marks, sets, unrecognised matches).
    Maybe,
    /// Matches no packet of the class.
    No,
}

/// New connections from (`egress`) or to a pod CIDR.
#[derive(Debug, Clone, Copy)]
struct Class<'a> {
    cidr: IpNet,
    egress: bool,
    /// Interfaces that carry the pod CIDR on this host.
    carriers: &'a [String],
}

fn iface_pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('+').or_else(|| pattern.strip_suffix('*')) {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn applies_match(m: &Match, class: &Class<'_>) -> Applies {
    let addr = |negated: bool, nets: &[IpNet], ours: bool| -> Applies {
        if !ours {
            // The other end is arbitrary: a restriction on it covers only part.
            let any = nets.iter().any(|n| n.prefix_len() == 0 && n.addr().is_ipv4() == class.cidr.addr().is_ipv4());
            return if any && !negated { Applies::All } else { Applies::Part };
        }
        let contains = nets.iter().any(|n| n.contains(&class.cidr));
        let touches = nets.iter().any(|n| overlaps(n, &class.cidr));
        match (negated, contains, touches) {
            (false, true, _) => Applies::All,
            (false, false, true) => Applies::Part,
            (false, false, false) => Applies::No,
            (true, true, _) => Applies::No,
            (true, false, true) => Applies::Part,
            (true, false, false) => Applies::All,
        }
    };
    let iface = |negated: bool, name: &str, ours: bool| -> Applies {
        if !ours {
            return Applies::Part;
        }
        if class.carriers.is_empty() {
            return Applies::Maybe;
        }
        let hit = class.carriers.iter().any(|c| iface_pattern_matches(name, c));
        match (negated, hit) {
            (false, true) | (true, false) => Applies::All,
            _ => Applies::No,
        }
    };
    match m {
        Match::SrcAddr { negated, nets } => addr(*negated, nets, class.egress),
        Match::DstAddr { negated, nets } => addr(*negated, nets, !class.egress),
        Match::InInterface { negated, name } => iface(*negated, name, class.egress),
        Match::OutInterface { negated, name } => iface(*negated, name, !class.egress),
        Match::CtState { negated, states } => {
            let has_new = states.iter().any(|s| s.eq_ignore_ascii_case("new"));
            // We ask about new connections: established/related-only rules never see them.
            if has_new != *negated {
                Applies::All
            } else {
                Applies::No
            }
        }
        Match::Protocol { .. } | Match::SrcPort { .. } | Match::DstPort { .. } | Match::IcmpType { .. } => {
            Applies::Part
        }
        Match::Mark { .. } | Match::SrcSet { .. } | Match::DstSet { .. } | Match::Unrecognised { .. } => Applies::Maybe,
    }
}

fn applies_rule(rule: &FirewallRule, class: &Class<'_>) -> Applies {
    rule.matches.iter().map(|m| applies_match(m, class)).max().unwrap_or(Applies::All)
}

/// What the walk of a chain found for one class.
#[derive(Debug, Default)]
struct Walk<'a> {
    /// Accepted for certain.
    accepted: bool,
    /// Dropped for certain by a rule (not the policy).
    dropped_by: Option<&'a FirewallRule>,
    /// Accept rules that may apply (unknown matches on the path).
    maybe: Vec<&'a FirewallRule>,
    /// Accept rules that apply to part of the class only.
    partial: Vec<&'a FirewallRule>,
}

/// Outcome of walking one chain: whether the walk ended in it (verdict), or returned.
enum Flow {
    Continue,
    Stop,
}

fn walk_chain<'a>(
    table: &'a FirewallTable,
    chain: &'a Chain,
    class: &Class<'_>,
    certainty: Applies,
    stack: &mut Vec<&'a str>,
    walk: &mut Walk<'a>,
) -> Flow {
    if stack.len() > 32 || stack.contains(&chain.name.as_str()) {
        return Flow::Continue; // loop or absurd depth: treat as returning
    }
    stack.push(&chain.name);
    let mut flow = Flow::Continue;
    for r in &chain.rules {
        let a = applies_rule(r, class).max(certainty);
        if a == Applies::No {
            continue;
        }
        match &r.verdict {
            Some(Verdict::Accept) => match a {
                Applies::All => {
                    walk.accepted = true;
                    flow = Flow::Stop;
                    break;
                }
                Applies::Part => walk.partial.push(r),
                _ => walk.maybe.push(r),
            },
            // Drops and returns that only apply to part of the class let the rest continue.
            Some(v) if v.is_drop() && a == Applies::All => {
                walk.dropped_by = Some(r);
                flow = Flow::Stop;
                break;
            }
            Some(Verdict::Return) if a == Applies::All => break,
            Some(Verdict::Jump(target) | Verdict::Goto(target)) => {
                let Some(sub) = table.chain(target) else { continue };
                if let Flow::Stop = walk_chain(table, sub, class, a, stack, walk) {
                    flow = Flow::Stop;
                    break;
                }
                if matches!(r.verdict, Some(Verdict::Goto(_))) && a == Applies::All {
                    break; // a goto does not come back to this chain
                }
            }
            _ => {}
        }
    }
    stack.pop();
    flow
}

fn family_covers(family: &str, net: &IpNet) -> bool {
    match family {
        "ip" => net.addr().is_ipv4(),
        "ip6" => net.addr().is_ipv6(),
        "inet" => true,
        _ => false,
    }
}

fn check_forward_policy(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    let nodes = k8s_nodes(ctx.net);
    for host in &ctx.net.hosts {
        if host.role == Some(HostRole::Pod) || (host.iptables.is_none() && host.nftables.is_none()) {
            continue;
        }
        let node = k8s_node_of(host, &nodes);
        // Only Kubernetes nodes carry pod traffic; a plain Docker host drops on purpose.
        if host.role != Some(HostRole::Node) && node.is_none() && host.cni.is_empty() {
            continue;
        }
        let cidrs = pod_cidrs(host, node);
        if cidrs.is_empty() {
            continue;
        }
        // Interfaces carrying each pod CIDR: devs of routes inside it, or of the route to it.
        let carriers: Vec<Vec<String>> = cidrs
            .iter()
            .map(|c| {
                let mut devs: BTreeSet<String> = host
                    .routes
                    .iter()
                    .filter(|r| c.net.contains(&r.dst) && r.route_type == RouteType::Unicast)
                    .filter_map(|r| r.dev.clone())
                    .collect();
                if let Some(d) = route_lookup(host, c.net.network(), None).and_then(|r| r.dev.clone()) {
                    devs.insert(d);
                }
                devs.into_iter().collect()
            })
            .collect();
        let iptables_present = host.iptables.is_some();
        for rs in [&host.iptables, &host.nftables].into_iter().flatten() {
            check_ruleset_forward(rule, host, rs, iptables_present, &cidrs, &carriers, out);
        }
    }
}

fn check_ruleset_forward(
    rule: &Rule,
    host: &Host,
    rs: &Ruleset,
    iptables_present: bool,
    cidrs: &[PodCidr],
    carriers: &[Vec<String>],
    out: &mut Vec<Finding>,
) {
    for table in &rs.tables {
        // iptables-nft shows its tables in `nft list ruleset` too: judge them once, from iptables-save.
        if rs.source == FirewallSource::Nftables
            && iptables_present
            && (table.name == "filter" || table.name == "mangle")
            && matches!(table.family.as_str(), "ip" | "ip6")
            && table.chains.iter().any(|c| c.name == "FORWARD")
        {
            continue;
        }
        for chain in table.chains.iter().filter(|c| c.hook == Some(Hook::Forward)) {
            if !chain.policy.as_ref().is_some_and(Verdict::is_drop) {
                continue;
            }
            let mut uncovered: Vec<(String, Walk<'_>)> = Vec::new();
            let mut used_cidrs: Vec<&PodCidr> = Vec::new();
            for (c, car) in cidrs.iter().zip(carriers) {
                if !family_covers(&table.family, &c.net) {
                    continue;
                }
                let mut any = false;
                for egress in [true, false] {
                    let class = Class { cidr: c.net, egress, carriers: car };
                    let mut walk = Walk::default();
                    let mut stack = Vec::new();
                    walk_chain(table, chain, &class, Applies::All, &mut stack, &mut walk);
                    if !walk.accepted {
                        let what = if egress { format!("from {}", c.net) } else { format!("to {}", c.net) };
                        uncovered.push((what, walk));
                        any = true;
                    }
                }
                if any {
                    used_cidrs.push(c);
                }
            }
            if uncovered.is_empty() {
                continue;
            }
            let src = match rs.source {
                FirewallSource::Iptables => "iptables",
                FirewallSource::Nftables => "nftables",
            };
            let maybe: Vec<&FirewallRule> = uncovered.iter().flat_map(|(_, w)| w.maybe.iter().copied()).collect();
            let partial: Vec<&FirewallRule> = uncovered.iter().flat_map(|(_, w)| w.partial.iter().copied()).collect();
            let dropped: Vec<&FirewallRule> = uncovered.iter().filter_map(|(_, w)| w.dropped_by).collect();
            let listed: Vec<&str> = uncovered.iter().map(|(w, _)| w.as_str()).take(6).collect();
            let more = uncovered.len().saturating_sub(listed.len());
            let mut detail = format!(
                "{src} {} {} chain {} (hook forward) has policy DROP and no rule accepts new connections {}{}",
                table.family,
                table.name,
                chain.name,
                listed.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            );
            let egress = uncovered.iter().any(|(w, _)| w.starts_with("from "));
            let ingress = uncovered.iter().any(|(w, _)| w.starts_with("to "));
            detail.push_str(match (egress, ingress) {
                (true, true) => ": pod egress and traffic to these pods forwarded by this host are dropped",
                (true, false) => ": pod egress forwarded by this host is dropped",
                _ => {
                    ": new connections to these pods from sources no rule accepts (other nodes' hosts, NodePort \
                     clients, VPN ranges) are dropped"
                }
            });
            if let Some(c) = chain.counters.filter(|c| c.packets > 0) {
                detail.push_str(&format!(
                    " (the policy has dropped {} packets since the counters were reset)",
                    c.packets
                ));
            }
            if let Some(d) = dropped.first() {
                detail.push_str(&format!("; explicitly dropped by `{}`", d.text));
            }
            if let Some(p) = partial.first() {
                detail.push_str(&format!("; only part of it is accepted by `{}`", p.text));
            }
            let confidence = match maybe.first() {
                None => Confidence::Likely,
                Some(m) => {
                    detail.push_str(&format!(
                        "; {} rule(s) with matches that cannot be evaluated offline (marks, sets, unrecognised) \
                         may accept it, e.g. `{}`",
                        maybe.len(),
                        m.text
                    ));
                    Confidence::Possible
                }
            };
            let mut ev = vec![Evidence::new(chain.origin.clone(), format!("chain {} policy drop", chain.name))];
            ev.extend(used_cidrs.iter().take(4).map(|c| c.evidence.clone()));
            ev.extend(
                dropped
                    .iter()
                    .chain(partial.iter())
                    .chain(maybe.iter())
                    .take(3)
                    .map(|r| Evidence::new(r.origin.clone(), r.text.clone())),
            );
            let first = used_cidrs.first().map_or_else(|| "<pod-cidr>".to_string(), |c| c.net.to_string());
            let fix = match rs.source {
                FirewallSource::Iptables => format!(
                    "iptables -I FORWARD -s {first} -j ACCEPT && iptables -I FORWARD -d {first} -j ACCEPT \
                     (one pair per pod CIDR; with Docker put them in DOCKER-USER; persist with your firewall \
                     service), or let the CNI manage it (Flannel FLANNEL-FWD, Calico cali-FORWARD)"
                ),
                FirewallSource::Nftables => format!(
                    "nft insert rule {} {} {} {} saddr {first} accept && nft insert rule {} {} {} {} daddr \
                     {first} accept (and persist in /etc/nftables.conf)",
                    table.family,
                    table.name,
                    chain.name,
                    if first.contains(':') { "ip6" } else { "ip" },
                    table.family,
                    table.name,
                    chain.name,
                    if first.contains(':') { "ip6" } else { "ip" },
                ),
            };
            out.push(rule.finding(
                format!("{}/firewall/{src}/{}/{}", host.subject(), table.name, chain.name),
                format!("FORWARD policy drops pod traffic on {}", host.name),
                detail,
                ev,
                fix,
                confidence,
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------
// NODE-004 / NODE-005
// ---------------------------------------------------------------------------------------

fn check_conntrack_fill(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for host in &ctx.net.hosts {
        let Some(ct) = &host.conntrack else { continue };
        let (Some(count), Some(max)) = (ct.count, ct.max) else { continue };
        if max == 0 || u128::from(count) * 10 <= u128::from(max) * 9 {
            continue;
        }
        let pct = count as f64 * 100.0 / max as f64;
        let mut ev = Vec::new();
        if let Some(loc) = &ct.count_origin {
            ev.push(Evidence::new(loc.clone(), format!("nf_conntrack_count {count}")));
        }
        ev.extend(sysctl_evidence(host, "net.netfilter.nf_conntrack_max"));
        let mut f = rule.finding(
            format!("{}/conntrack", host.subject()),
            format!("Conntrack table {pct:.1} % full on {}", host.name),
            format!(
                "nf_conntrack_count {count} of nf_conntrack_max {max} ({pct:.1} %, above 90 %): when it \
                 reaches the max the kernel logs 'nf_conntrack: table full, dropping packet' and new \
                 connections (including Service DNAT) fail at random"
            ),
            ev,
            format!(
                "sysctl -w net.netfilter.nf_conntrack_max={} && echo 'net.netfilter.nf_conntrack_max = {}' > \
                 /etc/sysctl.d/99-netsleuth-conntrack.conf (kube-proxy: --conntrack-max-per-core); also look \
                 for what opens so many connections",
                max.saturating_mul(2),
                max.saturating_mul(2)
            ),
            Confidence::Confirmed,
        );
        if count >= max {
            f.severity = Severity::Critical;
            f.detail.push_str(" — the table is full now (severity raised to critical)");
        }
        out.push(f);
    }
}

fn check_conntrack_stats(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for host in &ctx.net.hosts {
        let Some(ct) = &host.conntrack else { continue };
        let get = |k: &str| ct.stats.get(k).copied().unwrap_or(0);
        let (insert_failed, drop, early_drop) = (get("insert_failed"), get("drop"), get("early_drop"));
        if insert_failed == 0 && drop == 0 {
            continue;
        }
        let mut parts = Vec::new();
        let mut fixes = Vec::new();
        if insert_failed > 0 {
            parts.push(format!(
                "insert_failed {insert_failed} (two packets of one new UDP flow raced through DNAT: typically \
                 A and AAAA DNS queries from one socket, seen as lookups taking exactly 5 s)"
            ));
            fixes.push(
                "for DNS: add `options single-request-reopen` (glibc) to pods' dnsConfig, or deploy NodeLocal \
                 DNSCache",
            );
        }
        if drop > 0 || early_drop > 0 {
            parts.push(format!("drop {drop}, early_drop {early_drop} (the table was full)"));
            fixes.push("raise net.netfilter.nf_conntrack_max (sysctl -w, persisted in /etc/sysctl.d)");
        }
        let ev = ct
            .stats_origin
            .as_ref()
            .map(|l| {
                Evidence::new(l.clone(), format!("insert_failed={insert_failed} drop={drop} early_drop={early_drop}"))
            })
            .into_iter()
            .collect();
        out.push(rule.finding(
            format!("{}/conntrack", host.subject()),
            format!("Conntrack failures on {}", host.name),
            format!("conntrack -S on {} (summed over CPUs, since boot): {}", host.name, parts.join("; ")),
            ev,
            fixes.join("; "),
            Confidence::Confirmed,
        ));
    }
}

/// Builders for tests of the node, overlay and tunnel rules.
#[cfg(test)]
pub(crate) mod testkit {
    use super::*;
    use netsleuth_model::host::SysctlValue;

    pub(crate) fn host(name: &str) -> Host {
        Host { name: name.to_string(), ..Host::default() }
    }

    pub(crate) fn iface(host: &str, idx: u32, name: &str, kind: InterfaceKind, mtu: u32, addrs: &[&str]) -> Interface {
        Interface {
            index: Some(idx),
            name: name.to_string(),
            kind,
            mtu: Some(mtu),
            up: true,
            mac: None,
            addresses: addrs.iter().map(|a| a.parse().expect("test address")).collect(),
            master: None,
            link: None,
            link_netnsid: None,
            origin: Location::json(format!("hosts/{host}/ip-link.json"), format!("/{idx}")),
        }
    }

    pub(crate) fn route(host: &str, idx: u32, dst: &str, dev: Option<&str>, gw: Option<&str>) -> Route {
        Route {
            table: RouteTable::MAIN,
            table_name: None,
            route_type: RouteType::Unicast,
            dst: dst.parse().expect("test route"),
            gateway: gw.map(|g| g.parse().expect("test gateway")),
            dev: dev.map(str::to_string),
            prefsrc: None,
            metric: None,
            protocol: None,
            scope: None,
            mtu: None,
            origin: Location::json(format!("hosts/{host}/ip-route.json"), format!("/{idx}")),
        }
    }

    pub(crate) fn rule_to_table(prio: u32, table: u32) -> RoutingRule {
        RoutingRule {
            priority: prio,
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
            origin: Location::json("hosts/x/ip-rule.json", format!("/{prio}")),
        }
    }

    /// The three rules every Linux host has (local, main, default).
    pub(crate) fn standard_rules() -> Vec<RoutingRule> {
        vec![rule_to_table(0, 255), rule_to_table(32766, 254), rule_to_table(32767, 253)]
    }

    pub(crate) fn sysctl(h: &mut Host, key: &str, value: &str, line: u32) {
        let origin = Location::line(format!("hosts/{}/sysctl.txt", h.name), line);
        h.sysctls.values.insert(key.to_string(), SysctlValue { value: value.to_string(), origin });
    }

    pub(crate) fn net(hosts: Vec<Host>) -> Network {
        Network { hosts, ..Network::default() }
    }

    pub(crate) fn run(rule: &Rule, net: &Network, now: Option<i64>) -> Vec<Finding> {
        let mut out = Vec::new();
        (rule.check)(&Context { net, now }, rule, &mut out);
        out
    }

    pub(crate) fn rule_by_id(rules: &'static [Rule], id: &str) -> &'static Rule {
        rules.iter().find(|r| r.id == id).expect("rule id")
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;
    use netsleuth_model::firewall::{Chain, FirewallRule, FirewallTable, Ruleset};
    use netsleuth_model::host::{CniConfig, CniIpam, CniPlugin, Conntrack};
    use netsleuth_model::kubernetes::ObjectMeta;

    fn r(id: &str) -> &'static Rule {
        rule_by_id(RULES, id)
    }

    fn node_host(name: &str) -> Host {
        let mut h = host(name);
        h.role = Some(HostRole::Node);
        h.interfaces.push(iface(name, 1, "eth0", InterfaceKind::Physical, 1500, &["192.168.1.10/24"]));
        h.routes.routes.push(route(name, 0, "0.0.0.0/0", Some("eth0"), Some("192.168.1.1")));
        h
    }

    #[test]
    fn node001_reports_ip_forward_off_on_node() {
        let mut h = node_host("n1");
        sysctl(&mut h, "net.ipv4.ip_forward", "0", 812);
        let out = run(r("NODE-001"), &net(vec![h]), None);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rule, "NODE-001");
        assert_eq!(out[0].subject, "host/n1/sysctl/net.ipv4.ip_forward");
        assert!(out[0].detail.contains("role node"), "{}", out[0].detail);
        assert_eq!(out[0].evidence[0].location, Location::line("hosts/n1/sysctl.txt", 812));
        assert!(out[0].fix.contains("sysctl -w net.ipv4.ip_forward=1"));
        assert!(out[0].fix.contains("/etc/sysctl.d/"));
    }

    #[test]
    fn node001_quiet_when_forwarding_on_or_host_is_a_lone_client() {
        let mut h = node_host("n1");
        sysctl(&mut h, "net.ipv4.ip_forward", "1", 3);
        // A plain host without role, tunnels or veths: forwarding off is fine.
        let mut c = host("laptop");
        c.interfaces.push(iface("laptop", 1, "eth0", InterfaceKind::Physical, 1500, &["192.168.1.20/24"]));
        sysctl(&mut c, "net.ipv4.ip_forward", "0", 3);
        assert!(run(r("NODE-001"), &net(vec![h, c]), None).is_empty());
    }

    #[test]
    fn node001_quiet_on_an_endpoint_whose_only_link_is_a_veth() {
        // A pod-like namespace: eth0 is a veth, its default route, connected subnet and
        // link-local routes all use it. None of that is forwarding.
        let mut h = host("app");
        h.interfaces.push(iface("app", 2, "eth0", InterfaceKind::Veth, 1500, &["10.20.1.10/24", "fe80::1/64"]));
        h.routes.routes.push(route("app", 0, "0.0.0.0/0", Some("eth0"), Some("10.20.1.1")));
        h.routes.routes.push(route("app", 1, "10.20.1.0/24", Some("eth0"), None));
        h.routes.routes.push(route("app", 2, "fe80::/64", Some("eth0"), None));
        h.routes.routes.push(route("app", 3, "169.254.0.0/16", Some("eth0"), None));
        sysctl(&mut h, "net.ipv4.ip_forward", "0", 1);
        // A server's route to another range through its gateway is its own way out.
        h.routes.routes.push(route("app", 5, "10.244.0.0/16", Some("eth0"), Some("10.20.1.1")));
        assert!(run(r("NODE-001"), &net(vec![h.clone()]), None).is_empty());
        // The same host with a route towards a pod behind another veth does forward.
        h.interfaces.push(iface("app", 3, "cali7", InterfaceKind::Veth, 1500, &[]));
        h.routes.routes.push(route("app", 4, "10.244.3.7/32", Some("cali7"), None));
        assert_eq!(run(r("NODE-001"), &net(vec![h]), None).len(), 1);
    }

    #[test]
    fn node001_ipv6_forwarding_when_v6_pod_routes() {
        let mut h = node_host("n6");
        h.interfaces.push(iface("n6", 5, "cali1", InterfaceKind::Veth, 1450, &[]));
        h.routes.routes.push(route("n6", 3, "fd00:10:244::5/128", Some("cali1"), None));
        sysctl(&mut h, "net.ipv4.ip_forward", "1", 1);
        sysctl(&mut h, "net.ipv6.conf.all.forwarding", "0", 2);
        let out = run(r("NODE-001"), &net(vec![h]), None);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].subject, "host/n6/sysctl/net.ipv6.conf.all.forwarding");
        assert!(out[0].detail.contains("fd00:10:244::5/128 dev cali1"), "{}", out[0].detail);
    }

    #[test]
    fn node002_secondary_nic_with_strict_rp_filter() {
        let mut h = node_host("n2");
        h.interfaces.push(iface("n2", 2, "eth1", InterfaceKind::Physical, 9001, &["10.0.2.15/24"]));
        let mut d2 = route("n2", 1, "0.0.0.0/0", Some("eth1"), Some("10.0.2.1"));
        d2.table = 100;
        h.routes.routes.push(d2);
        sysctl(&mut h, "net.ipv4.conf.all.rp_filter", "1", 40);
        sysctl(&mut h, "net.ipv4.conf.eth1.rp_filter", "0", 41);
        let out = run(r("NODE-002"), &net(vec![h]), None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].subject, "host/n2/iface/eth1");
        assert!(out[0].detail.contains("leaves via eth0"), "{}", out[0].detail);
        assert!(out[0].fix.contains("net.ipv4.conf.eth1.rp_filter=2"));
        assert_eq!(out[0].evidence[0].location, Location::line("hosts/n2/sysctl.txt", 40));
    }

    #[test]
    fn node002_quiet_with_policy_routing_or_loose_mode() {
        // Same secondary NIC, but `from 10.0.2.15 lookup 100` makes the reverse path symmetric.
        let mut h = node_host("n2");
        h.interfaces.push(iface("n2", 2, "eth1", InterfaceKind::Physical, 9001, &["10.0.2.15/24"]));
        let mut d2 = route("n2", 1, "0.0.0.0/0", Some("eth1"), Some("10.0.2.1"));
        d2.table = 100;
        h.routes.routes.push(d2);
        let mut rules = standard_rules();
        let mut from = rule_to_table(100, 100);
        from.from = Some("10.0.2.15/32".parse().unwrap());
        rules.push(from);
        h.rules = rules;
        sysctl(&mut h, "net.ipv4.conf.all.rp_filter", "1", 40);
        let mut loose = node_host("n3");
        loose.interfaces.push(iface("n3", 2, "eth1", InterfaceKind::Physical, 9001, &["10.0.3.15/24"]));
        loose.routes.routes.push(route("n3", 1, "0.0.0.0/0", Some("eth1"), Some("10.0.3.1")));
        sysctl(&mut loose, "net.ipv4.conf.all.rp_filter", "2", 40);
        assert!(run(r("NODE-002"), &net(vec![h, loose]), None).is_empty());
    }

    fn fw_rule(path: &str, line: u32, matches: Vec<Match>, verdict: Verdict, text: &str) -> FirewallRule {
        FirewallRule {
            matches,
            verdict: Some(verdict),
            counters: None,
            comment: None,
            text: text.to_string(),
            origin: Location::line(path, line),
        }
    }

    fn forward_chain(path: &str, rules: Vec<FirewallRule>) -> Chain {
        Chain {
            name: "FORWARD".into(),
            hook: Some(Hook::Forward),
            chain_type: Some("filter".into()),
            priority: None,
            policy: Some(Verdict::Drop),
            rules,
            counters: None,
            origin: Location::line(path, 3),
        }
    }

    fn iptables(path: &str, chains: Vec<Chain>) -> Ruleset {
        Ruleset {
            source: FirewallSource::Iptables,
            tables: vec![FirewallTable { family: "ip".into(), name: "filter".into(), chains }],
            origin: Location::file(path),
        }
    }

    fn k8s_node(name: &str, cidr: &str) -> Node {
        Node {
            meta: ObjectMeta { name: name.into(), ..ObjectMeta::default() },
            pod_cidrs: vec![cidr.parse().unwrap()],
            addresses: vec![],
            conditions: vec![],
            origin: Location::json("kubernetes/nodes.json", "/items/0"),
        }
    }

    #[test]
    fn node003_docker_style_forward_drop_without_pod_rules() {
        let p = "hosts/n1/iptables-save.txt";
        let mut h = node_host("n1");
        let est = fw_rule(
            p,
            7,
            vec![Match::CtState { negated: false, states: vec!["related".into(), "established".into()] }],
            Verdict::Accept,
            "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        );
        h.iptables = Some(iptables(p, vec![forward_chain(p, vec![est])]));
        let mut n = net(vec![h]);
        n.kubernetes.nodes.push(k8s_node("n1", "10.244.1.0/24"));
        let out = run(r("NODE-003"), &n, None);
        assert_eq!(out.len(), 1, "{out:?}");
        let f = &out[0];
        assert_eq!(f.subject, "host/n1/firewall/iptables/filter/FORWARD");
        assert!(f.detail.contains("from 10.244.1.0/24, to 10.244.1.0/24"), "{}", f.detail);
        assert_eq!(f.confidence, Confidence::Likely);
        assert_eq!(f.evidence[0].location, Location::line(p, 3));
        assert_eq!(f.evidence[1].location, Location::json("kubernetes/nodes.json", "/items/0/spec/podCIDRs/0"));
        assert!(f.fix.contains("iptables -I FORWARD -s 10.244.1.0/24 -j ACCEPT"));
    }

    #[test]
    fn node003_flannel_fwd_chain_covers_pods() {
        let p = "hosts/n1/iptables-save.txt";
        let mut h = node_host("n1");
        let jump = fw_rule(p, 8, vec![], Verdict::Jump("FLANNEL-FWD".into()), "-A FORWARD -j FLANNEL-FWD");
        let src = fw_rule(
            p,
            9,
            vec![Match::SrcAddr { negated: false, nets: vec!["10.244.0.0/16".parse().unwrap()] }],
            Verdict::Accept,
            "-A FLANNEL-FWD -s 10.244.0.0/16 -j ACCEPT",
        );
        let dst = fw_rule(
            p,
            10,
            vec![Match::DstAddr { negated: false, nets: vec!["10.244.0.0/16".parse().unwrap()] }],
            Verdict::Accept,
            "-A FLANNEL-FWD -d 10.244.0.0/16 -j ACCEPT",
        );
        let fwd = Chain {
            name: "FLANNEL-FWD".into(),
            hook: None,
            chain_type: None,
            priority: None,
            policy: None,
            rules: vec![src, dst],
            counters: None,
            origin: Location::line(p, 4),
        };
        h.iptables = Some(iptables(p, vec![forward_chain(p, vec![jump]), fwd]));
        let mut n = net(vec![h]);
        n.kubernetes.nodes.push(k8s_node("n1", "10.244.1.0/24"));
        assert!(run(r("NODE-003"), &n, None).is_empty());
    }

    #[test]
    fn node003_mark_rule_lowers_confidence_and_interface_rule_covers() {
        let p = "hosts/n1/iptables-save.txt";
        // Mark-based accept only: cannot be evaluated → possible.
        let mut h = node_host("n1");
        h.cni.push(CniConfig {
            file: "10-calico.conflist".into(),
            name: Some("k8s-pod-network".into()),
            cni_version: None,
            plugins: vec![CniPlugin {
                plugin_type: "calico".into(),
                mtu: None,
                ipam: Some(CniIpam {
                    ipam_type: Some("host-local".into()),
                    subnets: vec!["10.244.7.0/24".parse().unwrap()],
                }),
                origin: Location::json("hosts/n1/cni/10-calico.conflist", "/plugins/0"),
            }],
            origin: Location::file("hosts/n1/cni/10-calico.conflist"),
        });
        let mark = fw_rule(
            p,
            5,
            vec![Match::Mark { negated: false, value: 0x10000, mask: Some(0x10000) }],
            Verdict::Accept,
            "-A FORWARD -m mark --mark 0x10000/0x10000 -j ACCEPT",
        );
        h.iptables = Some(iptables(p, vec![forward_chain(p, vec![mark.clone()])]));
        let out = run(r("NODE-003"), &net(vec![h.clone()]), None);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].confidence, Confidence::Possible);
        assert!(out[0].detail.contains("0x10000/0x10000"), "{}", out[0].detail);

        // Interface-based accepts on the carrier interfaces (cali*) cover both directions.
        h.interfaces.push(iface("n1", 7, "cali12", InterfaceKind::Veth, 1450, &[]));
        h.routes.routes.push(route("n1", 5, "10.244.7.5/32", Some("cali12"), None));
        let inr = fw_rule(
            p,
            6,
            vec![Match::InInterface { negated: false, name: "cali+".into() }],
            Verdict::Accept,
            "-A FORWARD -i cali+ -j ACCEPT",
        );
        let outr = fw_rule(
            p,
            7,
            vec![Match::OutInterface { negated: false, name: "cali+".into() }],
            Verdict::Accept,
            "-A FORWARD -o cali+ -j ACCEPT",
        );
        h.iptables = Some(iptables(p, vec![forward_chain(p, vec![mark, inr, outr])]));
        assert!(run(r("NODE-003"), &net(vec![h]), None).is_empty());
    }

    #[test]
    fn node004_conntrack_nearly_full() {
        let mut h = host("n4");
        sysctl(&mut h, "net.netfilter.nf_conntrack_max", "262144", 900);
        h.conntrack = Some(Conntrack {
            count: Some(255_000),
            count_origin: Some(Location::line("hosts/n4/conntrack-count.txt", 1)),
            max: Some(262_144),
            ..Conntrack::default()
        });
        let mut ok = host("n5");
        ok.conntrack = Some(Conntrack { count: Some(1000), max: Some(262_144), ..Conntrack::default() });
        let out = run(r("NODE-004"), &net(vec![h, ok]), None);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].subject, "host/n4/conntrack");
        assert!(out[0].detail.contains("255000 of nf_conntrack_max 262144 (97.3 %"), "{}", out[0].detail);
        assert_eq!(out[0].evidence[0].location, Location::line("hosts/n4/conntrack-count.txt", 1));
        assert_eq!(out[0].evidence[1].location, Location::line("hosts/n4/sysctl.txt", 900));
        assert!(out[0].fix.contains("nf_conntrack_max=524288"));
    }

    #[test]
    fn node005_insert_failed_counter() {
        let mut h = host("n4");
        let mut ct =
            Conntrack { stats_origin: Some(Location::file("hosts/n4/conntrack-stats.txt")), ..Conntrack::default() };
        ct.stats.insert("insert_failed".into(), 1532);
        ct.stats.insert("drop".into(), 0);
        h.conntrack = Some(ct);
        let mut clean = host("n5");
        let mut ct2 = Conntrack::default();
        ct2.stats.insert("insert_failed".into(), 0);
        ct2.stats.insert("found".into(), 77);
        clean.conntrack = Some(ct2);
        let out = run(r("NODE-005"), &net(vec![h, clean]), None);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].subject, "host/n4/conntrack");
        assert!(out[0].detail.contains("insert_failed 1532"), "{}", out[0].detail);
        assert!(out[0].fix.contains("single-request-reopen"));
        assert_eq!(out[0].evidence[0].location, Location::file("hosts/n4/conntrack-stats.txt"));
    }

    #[test]
    fn node002_wireguard_source_routed_back_elsewhere() {
        use netsleuth_model::wireguard::{WireGuardInterface, WireGuardPeer};
        let mut h = host("gw");
        h.interfaces.push(iface("gw", 1, "eth0", InterfaceKind::Physical, 1500, &["198.51.100.2/24"]));
        h.interfaces.push(iface("gw", 2, "eth1", InterfaceKind::Physical, 1500, &["192.168.1.2/24"]));
        h.interfaces.push(iface("gw", 3, "wg0", InterfaceKind::WireGuard, 1420, &["10.8.0.1/24"]));
        h.routes.routes.push(route("gw", 0, "0.0.0.0/0", Some("eth0"), Some("198.51.100.1")));
        h.routes.routes.push(route("gw", 1, "192.168.50.0/24", Some("eth1"), Some("192.168.1.1")));
        h.routes.routes.push(route("gw", 2, "10.8.0.0/24", Some("wg0"), None));
        let peer = |key: &str, allowed: &str, line: u32| WireGuardPeer {
            public_key: key.into(),
            preshared_key: None,
            endpoint: None,
            allowed_ips: vec![allowed.parse().unwrap()],
            latest_handshake: None,
            rx_bytes: None,
            tx_bytes: None,
            persistent_keepalive: None,
            origin: Location::line("hosts/gw/wg-dump.txt", line),
        };
        h.wireguard.push(WireGuardInterface {
            name: "wg0".into(),
            private_key: None,
            public_key: None,
            listen_port: None,
            fwmark: None,
            addresses: vec![],
            mtu: None,
            table: None,
            peers: vec![peer("PEERAAAAAAAA=", "10.8.0.2/32", 2), peer("PEERBBBBBBBB=", "192.168.50.0/24", 3)],
            origin: Location::line("hosts/gw/wg-dump.txt", 1),
            from_runtime: true,
        });
        sysctl(&mut h, "net.ipv4.conf.all.rp_filter", "1", 10);
        let out = run(r("NODE-002"), &net(vec![h.clone()]), None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].subject, "host/gw/iface/wg0");
        assert!(
            out[0].detail.contains("may send from 192.168.50.0/24, but the route back leaves via eth1"),
            "{}",
            out[0].detail
        );
        assert_eq!(out[0].evidence.last().map(|e| e.location.clone()), Some(Location::line("hosts/gw/wg-dump.txt", 3)));
        // Loose on wg0 (max(all=1, wg0=2) = 2): nothing to report.
        sysctl(&mut h, "net.ipv4.conf.wg0.rp_filter", "2", 11);
        assert!(run(r("NODE-002"), &net(vec![h]), None).is_empty());
    }

    #[test]
    fn node003_nftables_forward_drop_and_docker_host_skipped() {
        let p = "hosts/n1/nft.json";
        let mut h = node_host("n1");
        let est = FirewallRule {
            matches: vec![Match::CtState { negated: false, states: vec!["established".into(), "related".into()] }],
            verdict: Some(Verdict::Accept),
            counters: None,
            comment: None,
            text: "ct state established,related accept".into(),
            origin: Location::json(p, "/nftables/5/rule"),
        };
        let mut chain = forward_chain(p, vec![est]);
        chain.name = "forward".into();
        chain.origin = Location::json(p, "/nftables/2/chain");
        h.nftables = Some(Ruleset {
            source: FirewallSource::Nftables,
            tables: vec![FirewallTable { family: "inet".into(), name: "filter".into(), chains: vec![chain] }],
            origin: Location::file(p),
        });
        // Docker's own containers on a host that is not a Kubernetes node: not judged.
        let mut docker = h.clone();
        docker.name = "builder".into();
        docker.role = None;
        docker.interfaces.push(iface("builder", 4, "docker0", InterfaceKind::Bridge, 1500, &["172.17.0.1/16"]));
        docker.routes.routes.push(route("builder", 4, "172.17.0.0/16", Some("docker0"), None));
        let mut n = net(vec![h, docker]);
        n.kubernetes.nodes.push(k8s_node("n1", "10.244.1.0/24"));
        let out = run(r("NODE-003"), &n, None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].subject, "host/n1/firewall/nftables/filter/forward");
        assert_eq!(out[0].evidence[0].location, Location::json(p, "/nftables/2/chain"));
        assert!(
            out[0].fix.contains("nft insert rule inet filter forward ip saddr 10.244.1.0/24 accept"),
            "{}",
            out[0].fix
        );
    }

    #[test]
    fn calico_block_stands_for_its_pod_routes() {
        let mut h = node_host("n1");
        h.interfaces.push(iface("n1", 7, "cali1", InterfaceKind::Veth, 1450, &[]));
        h.routes.routes.push(route("n1", 10, "10.244.7.9/32", Some("cali1"), None));
        h.routes.routes.push(route("n1", 11, "10.244.7.33/32", Some("cali1"), None));
        let mut b = route("n1", 12, "10.244.7.0/26", None, None);
        b.route_type = RouteType::Blackhole;
        h.routes.routes.push(b);
        let c = pod_cidrs(&h, None);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].net, "10.244.7.0/26".parse::<IpNet>().unwrap());
        assert_eq!(c[0].evidence.location, Location::json("hosts/n1/ip-route.json", "/12"));
    }

    #[test]
    fn pod_routes_are_aggregated() {
        let mut h = node_host("n1");
        h.interfaces.push(iface("n1", 7, "cali1", InterfaceKind::Veth, 1450, &[]));
        for (i, ip) in ["10.244.7.4/32", "10.244.7.5/32", "10.244.7.6/32", "10.244.7.7/32"].iter().enumerate() {
            h.routes.routes.push(route("n1", 10 + i as u32, ip, Some("cali1"), None));
        }
        let c = pod_cidrs(&h, None);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].net, "10.244.7.4/30".parse::<IpNet>().unwrap());
        assert_eq!(c[0].evidence.location, Location::json("hosts/n1/ip-route.json", "/10"));
    }
}
