//! Address ranges and where each comes from: what the cluster claims (pod and service
//! CIDRs), the underlay (node subnets), and what lies behind VPN tunnels.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use netsleuth_model::host::{Host, HostRole, InterfaceKind};
use netsleuth_model::kubernetes::{ConfigMap, Container};
use netsleuth_model::wireguard::WireGuardInterface;
use netsleuth_model::{Location, Network};

use super::{node_hosts, pointer_token};

/// Where a range was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RangeKind {
    /// `spec.podCIDRs` of a Node.
    NodePodCidr,
    /// A CNI config's IPAM `ranges`/`subnet`/pools.
    CniIpam,
    /// kubeadm-config `networking.podSubnet`.
    KubeadmPodSubnet,
    /// `--cluster-cidr` of kube-controller-manager/kube-proxy, or kube-proxy `clusterCIDR`.
    ClusterCidrFlag,
    /// flannel `net-conf.json` `Network`.
    FlannelNetwork,
    /// cilium-config `cluster-pool-ipv4-cidr`.
    CiliumClusterPool,
    /// `--service-cluster-ip-range` of kube-apiserver/kube-controller-manager.
    ServiceRangeFlag,
    /// kubeadm-config `networking.serviceSubnet`.
    KubeadmServiceSubnet,
    /// An address prefix of a node host's interface.
    HostInterface,
    AwsVpc,
    AwsSubnet,
    /// AllowedIPs of a WireGuard peer.
    WireGuardAllowedIps,
    /// An IPsec CHILD_SA remote traffic selector (configured or installed).
    IpsecRemoteTs,
    /// A route of an AWS Site-to-Site VPN connection.
    AwsVpnRoute,
    /// The local traffic selector of a tunnel's far end (a remote site's own subnet),
    /// when the far end's router is in the bundle.
    FarEndLocalTs,
}

impl RangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RangeKind::NodePodCidr => "Node podCIDR",
            RangeKind::CniIpam => "CNI IPAM range",
            RangeKind::KubeadmPodSubnet => "kubeadm podSubnet",
            RangeKind::ClusterCidrFlag => "cluster CIDR flag",
            RangeKind::FlannelNetwork => "flannel Network",
            RangeKind::CiliumClusterPool => "Cilium cluster pool",
            RangeKind::ServiceRangeFlag => "--service-cluster-ip-range",
            RangeKind::KubeadmServiceSubnet => "kubeadm serviceSubnet",
            RangeKind::HostInterface => "node interface subnet",
            RangeKind::AwsVpc => "AWS VPC CIDR",
            RangeKind::AwsSubnet => "AWS subnet",
            RangeKind::WireGuardAllowedIps => "WireGuard AllowedIPs",
            RangeKind::IpsecRemoteTs => "IPsec remote_ts",
            RangeKind::AwsVpnRoute => "AWS VPN connection route",
            RangeKind::FarEndLocalTs => "IPsec local_ts of the far end",
        }
    }
}

/// One range and where it came from.
#[derive(Debug, Clone)]
pub struct CidrSource {
    /// The range, truncated to its network address.
    pub cidr: IpNet,
    pub kind: RangeKind,
    /// The object it belongs to: `Node n1`, `host gw-1 wg0 peer AbCd1234…`.
    pub from: String,
    pub origin: Location,
    /// The host folder, for ranges read from host artifacts.
    pub host: Option<String>,
    /// The Node name, for Node podCIDRs.
    pub node: Option<String>,
    /// For IPsec remote selectors: the local selectors of the same CHILD_SA (what this
    /// end sends into the tunnel). Empty otherwise.
    pub local: Vec<IpNet>,
    /// Set by [`remote_site_ranges`]: a tunnel range touching the cluster's ranges on a
    /// host outside the cluster whose own side the bundle does not show, so it may be the
    /// far end's route back to the cluster rather than a remote site.
    pub maybe_far_end: bool,
}

impl CidrSource {
    fn new(cidr: IpNet, kind: RangeKind, from: String, origin: Location) -> CidrSource {
        CidrSource {
            cidr: cidr.trunc(),
            kind,
            from,
            origin,
            host: None,
            node: None,
            local: Vec::new(),
            maybe_far_end: false,
        }
    }
}

impl fmt::Display for CidrSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} of {}, {})", self.cidr, self.kind.as_str(), self.from, self.origin)
    }
}

/// Parses `10.0.0.0/8`, `10.1.2.3` (as /32), `fd00::/64`; None for anything else.
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim().trim_matches(|c| c == '"' || c == '\'');
    if let Ok(n) = s.parse::<IpNet>() {
        return Some(n.trunc());
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

/// Values of `key: value` lines in YAML-ish text (one level of scanning, comments and
/// quotes stripped, comma lists split), with their 1-based line numbers.
fn yaml_values(text: &str, key: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start().trim_start_matches("- ");
        let Some(rest) = t.strip_prefix(key).and_then(|r| r.trim_start().strip_prefix(':')) else {
            continue;
        };
        let value = rest.split('#').next().unwrap_or("").trim();
        for v in value.split(',') {
            let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
            if !v.is_empty() {
                out.push((i + 1, v.to_string()));
            }
        }
    }
    out
}

fn cm_data_location(cm: &ConfigMap, key: &str) -> Location {
    cm.origin.child(&format!("/data/{}", pointer_token(key)))
}

/// Values of a command-line flag in a container's command and args (`--flag=v` or
/// `--flag v`; shell strings are split on whitespace), with the pointer of the element.
fn flag_values(c: &Container, flag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (field, list) in [("command", &c.command), ("args", &c.args)] {
        let mut want_next: Option<String> = None;
        for (i, elem) in list.iter().enumerate() {
            let pointer = format!("{}/{field}/{i}", c.pointer);
            for tok in elem.split_whitespace() {
                if let Some(p) = want_next.take() {
                    out.push((p, tok.to_string()));
                    continue;
                }
                if let Some(v) = tok.strip_prefix(flag) {
                    if let Some(v) = v.strip_prefix('=') {
                        out.push((pointer.clone(), v.to_string()));
                    } else if v.is_empty() {
                        want_next = Some(pointer.clone());
                    }
                }
            }
        }
    }
    out
}

/// Ranges from `--<flag>` in the pods and workloads of kube-system (static control-plane
/// pods, kube-proxy).
fn flag_ranges(net: &Network, flag: &str, kind: RangeKind) -> Vec<CidrSource> {
    let k = &net.kubernetes;
    let mut out = Vec::new();
    let objects = k
        .pods
        .iter()
        .filter(|p| p.meta.namespace == "kube-system")
        .map(|p| ("Pod", &p.meta, &p.spec, &p.origin))
        .chain(
            k.workloads
                .iter()
                .filter(|w| w.meta.namespace == "kube-system")
                .map(|w| ("workload", &w.meta, &w.template, &w.origin)),
        );
    for (kind_name, meta, spec, origin) in objects {
        for c in spec.all_containers() {
            for (pointer, value) in flag_values(c, flag) {
                for v in value.split(',') {
                    if let Some(cidr) = parse_cidr(v) {
                        out.push(CidrSource::new(
                            cidr,
                            kind,
                            format!("{kind_name} {}/{} {flag}", meta.namespace, meta.name),
                            origin.child(&pointer),
                        ));
                    }
                }
            }
        }
    }
    out
}

/// `networking.<key>` of the kubeadm-config ConfigMap.
fn kubeadm_ranges(net: &Network, key: &str, kind: RangeKind) -> Vec<CidrSource> {
    let mut out = Vec::new();
    for cm in net
        .kubernetes
        .config_maps
        .iter()
        .filter(|c| c.meta.namespace == "kube-system" && c.meta.name == "kubeadm-config")
    {
        for (data_key, text) in &cm.data {
            for (line, v) in yaml_values(text, key) {
                if let Some(cidr) = parse_cidr(&v) {
                    out.push(CidrSource::new(
                        cidr,
                        kind,
                        format!("ConfigMap kube-system/kubeadm-config {data_key} line {line} {key}"),
                        cm_data_location(cm, data_key),
                    ));
                }
            }
        }
    }
    out
}

/// The cluster's pod ranges: Node podCIDRs, CNI IPAM subnets of hosts, kubeadm-config
/// `podSubnet`, `--cluster-cidr` flags (kube-controller-manager, kube-proxy) and
/// kube-proxy `clusterCIDR`, flannel `Network`, Cilium cluster-pool CIDRs.
pub fn pod_cidrs(net: &Network) -> Vec<CidrSource> {
    let k = &net.kubernetes;
    let mut out = Vec::new();
    for n in &k.nodes {
        for (i, c) in n.pod_cidrs.iter().enumerate() {
            let mut s = CidrSource::new(
                *c,
                RangeKind::NodePodCidr,
                format!("Node {}", n.meta.name),
                n.origin.child(&format!("/spec/podCIDRs/{i}")),
            );
            s.node = Some(n.meta.name.clone());
            out.push(s);
        }
    }
    for h in &net.hosts {
        for cfg in &h.cni {
            for p in &cfg.plugins {
                for sub in p.ipam.iter().flat_map(|i| i.subnets.iter()) {
                    let mut s = CidrSource::new(
                        *sub,
                        RangeKind::CniIpam,
                        format!("host {} CNI {} plugin {}", h.name, cfg.file, p.plugin_type),
                        p.origin.clone(),
                    );
                    s.host = Some(h.name.clone());
                    out.push(s);
                }
            }
        }
    }
    out.extend(kubeadm_ranges(net, "podSubnet", RangeKind::KubeadmPodSubnet));
    out.extend(flag_ranges(net, "--cluster-cidr", RangeKind::ClusterCidrFlag));
    for cm in &k.config_maps {
        for (key, text) in &cm.data {
            if key == "net-conf.json" {
                // flannel: {"Network": "10.244.0.0/16", "IPv6Network": "...", ...}
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
                    for field in ["Network", "IPv6Network"] {
                        if let Some(cidr) = v.get(field).and_then(|x| x.as_str()).and_then(parse_cidr) {
                            out.push(CidrSource::new(
                                cidr,
                                RangeKind::FlannelNetwork,
                                format!("ConfigMap {}/{} net-conf.json {field}", cm.meta.namespace, cm.meta.name),
                                cm_data_location(cm, key),
                            ));
                        }
                    }
                }
            } else if cm.meta.name == "cilium-config"
                && (key == "cluster-pool-ipv4-cidr" || key == "cluster-pool-ipv6-cidr")
            {
                for v in text.split([' ', ',']) {
                    if let Some(cidr) = parse_cidr(v) {
                        out.push(CidrSource::new(
                            cidr,
                            RangeKind::CiliumClusterPool,
                            format!("ConfigMap {}/cilium-config {key}", cm.meta.namespace),
                            cm_data_location(cm, key),
                        ));
                    }
                }
            } else if cm.meta.name == "kube-proxy" && cm.meta.namespace == "kube-system" {
                for (line, v) in yaml_values(text, "clusterCIDR") {
                    if let Some(cidr) = parse_cidr(&v) {
                        out.push(CidrSource::new(
                            cidr,
                            RangeKind::ClusterCidrFlag,
                            format!("ConfigMap kube-system/kube-proxy {key} line {line} clusterCIDR"),
                            cm_data_location(cm, key),
                        ));
                    }
                }
            }
        }
    }
    out
}

/// The cluster's service ranges: `--service-cluster-ip-range` (kube-apiserver,
/// kube-controller-manager) and kubeadm-config `serviceSubnet`.
pub fn service_cidrs(net: &Network) -> Vec<CidrSource> {
    let mut out = flag_ranges(net, "--service-cluster-ip-range", RangeKind::ServiceRangeFlag);
    out.extend(kubeadm_ranges(net, "serviceSubnet", RangeKind::KubeadmServiceSubnet));
    out
}

/// Bridges that carry pods or containers, not the node's own network.
fn is_container_bridge(name: &str) -> bool {
    const PREFIXES: [&str; 12] = [
        "cni",
        "cbr",
        "docker",
        "kube-bridge",
        "weave",
        "virbr",
        "lxdbr",
        "podman",
        "cilium",
        "flannel",
        "antrea",
        "ovn",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
        || name.strip_prefix("br-").is_some_and(|h| h.len() == 12 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Underlay ranges: address prefixes of node hosts' physical/VLAN/bond interfaces (and
/// bridges that are not container bridges), AWS VPC CIDRs and subnet CIDRs.
pub fn node_subnets(net: &Network) -> Vec<CidrSource> {
    let mut out = Vec::new();
    for h in node_hosts(net) {
        for i in &h.interfaces {
            let underlay = match &i.kind {
                InterfaceKind::Physical => true,
                InterfaceKind::Bridge => !is_container_bridge(&i.name),
                InterfaceKind::Other { name } => {
                    matches!(name.as_str(), "vlan" | "bond" | "macvlan" | "ipvlan" | "team")
                }
                _ => false,
            };
            if !underlay {
                continue;
            }
            for a in &i.addresses {
                let link_local = match a.addr() {
                    IpAddr::V4(v4) => v4.is_link_local() || v4.is_loopback(),
                    IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xffc0) == 0xfe80,
                };
                if link_local {
                    continue;
                }
                let mut s = CidrSource::new(
                    a.trunc(),
                    RangeKind::HostInterface,
                    format!("host {} {} ({a})", h.name, i.name),
                    i.origin.clone(),
                );
                s.host = Some(h.name.clone());
                out.push(s);
            }
        }
    }
    for v in &net.aws.vpcs {
        for c in &v.cidrs {
            out.push(CidrSource::new(*c, RangeKind::AwsVpc, format!("VPC {}", v.id), v.origin.clone()));
        }
    }
    for s in &net.aws.subnets {
        for c in s.cidr.iter().chain(s.ipv6_cidrs.iter()) {
            out.push(CidrSource::new(*c, RangeKind::AwsSubnet, format!("subnet {}", s.id), s.origin.clone()));
        }
    }
    out
}

/// A traffic selector as written (`10.1.0.0/16`, `10.1.0.0/16[tcp/80]`, `10.1.2.3`);
/// `dynamic` and address ranges (`a-b`) give None.
fn parse_ts(ts: &str) -> Option<IpNet> {
    let base = ts.split('[').next().unwrap_or(ts).trim();
    if base.contains('-') {
        return None;
    }
    parse_cidr(base)
}

/// Ranges behind VPN tunnels: AllowedIPs of WireGuard peers on hosts, IPsec remote traffic
/// selectors (configured and installed), and AWS VPN connection routes. Default routes
/// (`0.0.0.0/0`, `::/0`: full tunnels) are included; callers that want subnets skip them.
pub fn vpn_remote_cidrs(net: &Network) -> Vec<CidrSource> {
    let mut out = Vec::new();
    for h in &net.hosts {
        let mut wg_seen: HashSet<(&str, &str, IpNet)> = HashSet::new();
        for wg in local_wireguard(h) {
            for peer in &wg.peers {
                let short: String = peer.public_key.chars().take(8).collect();
                for a in &peer.allowed_ips {
                    // The runtime and config views repeat the same peers.
                    if !wg_seen.insert((wg.name.as_str(), peer.public_key.as_str(), *a)) {
                        continue;
                    }
                    let mut s = CidrSource::new(
                        *a,
                        RangeKind::WireGuardAllowedIps,
                        format!("host {} {} peer {short}…", h.name, wg.name),
                        peer.origin.clone(),
                    );
                    s.host = Some(h.name.clone());
                    out.push(s);
                }
            }
        }
        let mut seen: HashSet<IpNet> = HashSet::new();
        for conn in &h.ipsec.connections {
            for child in &conn.children {
                let local: Vec<IpNet> = child.local_ts.iter().filter_map(|t| parse_ts(t)).collect();
                for ts in &child.remote_ts {
                    if let Some(cidr) = parse_ts(ts) {
                        seen.insert(cidr);
                        let mut s = CidrSource::new(
                            cidr,
                            RangeKind::IpsecRemoteTs,
                            format!("host {} connection {} child {}", h.name, conn.name, child.name),
                            child.origin.clone(),
                        );
                        s.host = Some(h.name.clone());
                        s.local = local.clone();
                        out.push(s);
                    }
                }
            }
        }
        for sa in &h.ipsec.sas {
            for child in &sa.children {
                let local: Vec<IpNet> = child.local_ts.iter().filter_map(|t| parse_ts(t)).collect();
                for ts in &child.remote_ts {
                    // Installed SAs repeat the configured selectors; keep only new ones.
                    if let Some(cidr) = parse_ts(ts).filter(|c| seen.insert(*c)) {
                        let mut s = CidrSource::new(
                            cidr,
                            RangeKind::IpsecRemoteTs,
                            format!("host {} SA {} child {}", h.name, sa.name, child.name),
                            child.origin.clone(),
                        );
                        s.host = Some(h.name.clone());
                        s.local = local.clone();
                        out.push(s);
                    }
                }
            }
        }
    }
    for v in &net.aws.vpn_connections {
        for r in &v.routes {
            out.push(CidrSource::new(*r, RangeKind::AwsVpnRoute, format!("VPN connection {}", v.id), v.origin.clone()));
        }
    }
    out
}

/// The WireGuard interfaces that belong to a host. wireguard-go keeps its control
/// sockets in one global folder, so `wg show all dump` run in one network namespace lists
/// the interfaces of every namespace: only those in the host's `ip link` count (all of
/// them when links were not collected).
pub fn local_wireguard(host: &Host) -> impl Iterator<Item = &WireGuardInterface> {
    host.wireguard.iter().filter(move |w| host.interfaces.is_empty() || host.interface(&w.name).is_some())
}

/// Subnets of a host's own (non-tunnel, non-loopback) interfaces.
fn host_subnets(host: &Host) -> Vec<IpNet> {
    host.interfaces
        .iter()
        .filter(|i| {
            !matches!(
                i.kind,
                InterfaceKind::Loopback
                    | InterfaceKind::WireGuard
                    | InterfaceKind::Tun
                    | InterfaceKind::Ipip
                    | InterfaceKind::Gre
                    | InterfaceKind::Vxlan { .. }
            )
        })
        .flat_map(|i| i.addresses.iter().map(IpNet::trunc))
        .filter(|n| match n.addr() {
            IpAddr::V4(a) => !a.is_link_local() && !a.is_loopback(),
            IpAddr::V6(a) => !a.is_loopback() && (a.segments()[0] & 0xffc0) != 0xfe80,
        })
        .collect()
}

/// What lies on the far side of the cluster's tunnels, seen from the cluster. A bundle
/// may hold both ends of a tunnel, and the far end's router routes the cluster's own
/// ranges into its tunnel, which is no overlap. So for a host outside the cluster (no
/// node role or node, not a pod) whose tunnel range touches cluster ranges (pod, service,
/// node subnets) that its own side (IPsec local_ts; for WireGuard its interface subnets)
/// does not claim, the range is dropped and the host's local selectors are added instead:
/// the remote site's own subnets ([`RangeKind::FarEndLocalTs`]). When its own side is
/// unknown, the range is kept with `maybe_far_end` set. Everything else is kept as
/// [`vpn_remote_cidrs`] gives it.
pub fn remote_site_ranges(net: &Network) -> Vec<CidrSource> {
    let raw = vpn_remote_cidrs(net);
    if raw.is_empty() {
        return raw;
    }
    let cluster: Vec<IpNet> =
        pod_cidrs(net).into_iter().chain(service_cidrs(net)).chain(node_subnets(net)).map(|s| s.cidr).collect();
    let nodes = super::node_names(&net.kubernetes);
    let mut out = Vec::new();
    let mut far_locals: HashSet<(String, IpNet)> = HashSet::new();
    for r in raw {
        let host = r.host.as_deref().and_then(|h| net.host(h));
        let cluster_side =
            host.is_none_or(|h| super::is_node_host(h, &nodes) || h.role == Some(HostRole::Pod) || h.node.is_some());
        if cluster_side || !cluster.iter().any(|c| super::overlaps(c, &r.cidr)) {
            out.push(r);
            continue;
        }
        let local = match r.kind {
            RangeKind::IpsecRemoteTs => r.local.clone(),
            _ => host.map(host_subnets).unwrap_or_default(),
        };
        // The cluster ranges this tunnel range touches: if the host's own side claims
        // them too, both ends use the same addresses (the real overlap, reported as it
        // is); if not, this host is the far end and the range is its route back to us.
        let touched: Vec<&IpNet> = cluster.iter().filter(|c| super::overlaps(c, &r.cidr)).collect();
        if local.is_empty() || local.iter().any(|l| touched.iter().any(|c| super::overlaps(c, l))) {
            let mut r = r;
            // Unknown own side: possibly the far end.
            r.maybe_far_end = local.is_empty();
            out.push(r);
            continue;
        }
        // The far end's route back to the cluster: its local side is the remote site.
        if r.kind == RangeKind::IpsecRemoteTs {
            for l in local {
                if far_locals.insert((r.from.clone(), l)) {
                    let mut s = CidrSource::new(l, RangeKind::FarEndLocalTs, r.from.clone(), r.origin.clone());
                    s.host = r.host.clone();
                    out.push(s);
                }
            }
        }
    }
    out
}

/// Addresses of the cluster's nodes: Node InternalIP/ExternalIP and every address of a
/// node host's interfaces (tunnel addresses included).
pub fn node_addresses(net: &Network) -> HashSet<IpAddr> {
    let mut out = HashSet::new();
    for n in &net.kubernetes.nodes {
        for (t, a) in &n.addresses {
            if t == "InternalIP" || t == "ExternalIP" {
                if let Ok(a) = a.parse() {
                    out.insert(a);
                }
            }
        }
    }
    for h in node_hosts(net) {
        for i in &h.interfaces {
            out.extend(i.addresses.iter().map(IpNet::addr));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::testkit::*;
    use netsleuth_model::host::{CniConfig, CniIpam, CniPlugin, HostRole};
    use netsleuth_model::ipsec::{IpsecChild, IpsecConnection};
    use netsleuth_model::wireguard::{WireGuardInterface, WireGuardPeer};
    use std::collections::BTreeMap;

    #[test]
    fn pod_and_service_ranges_from_every_source() {
        let mut net = Network::default();
        net.kubernetes.nodes.push(node("n1", Some("10.244.1.0/24"), "192.168.1.10"));
        let mut kcm = pod("kube-system", "kube-controller-manager-n1", &[]).build();
        kcm.spec.containers[0].command = vec![
            "kube-controller-manager".into(),
            "--cluster-cidr=10.244.0.0/16".into(),
            "--service-cluster-ip-range".into(),
            "10.96.0.0/12".into(),
        ];
        net.kubernetes.pods.push(kcm);
        net.kubernetes.config_maps.push(config_map(
            "kube-system",
            "kubeadm-config",
            &[("ClusterConfiguration", "networking:\n  dnsDomain: cluster.local\n  podSubnet: \"10.244.0.0/16\"\n  serviceSubnet: 10.96.0.0/12,fd00:10:96::/112\n")],
        ));
        net.kubernetes.config_maps.push(config_map(
            "kube-flannel",
            "kube-flannel-cfg",
            &[("net-conf.json", "{\"Network\": \"10.244.0.0/16\"}")],
        ));
        let mut h = host("n1", Some(HostRole::Node));
        h.cni.push(CniConfig {
            file: "10-bridge.conflist".into(),
            name: None,
            cni_version: Some("1.0.0".into()),
            plugins: vec![CniPlugin {
                plugin_type: "bridge".into(),
                mtu: None,
                ipam: Some(CniIpam { ipam_type: Some("host-local".into()), subnets: vec![net_("10.244.1.0/24")] }),
                origin: Location::json("hosts/n1/cni/10-bridge.conflist", "/plugins/0"),
            }],
            origin: Location::file("hosts/n1/cni/10-bridge.conflist"),
        });
        net.hosts.push(h);

        let pods = pod_cidrs(&net);
        let kinds: Vec<(RangeKind, String)> = pods.iter().map(|s| (s.kind, s.cidr.to_string())).collect();
        assert_eq!(
            kinds,
            vec![
                (RangeKind::NodePodCidr, "10.244.1.0/24".into()),
                (RangeKind::CniIpam, "10.244.1.0/24".into()),
                (RangeKind::KubeadmPodSubnet, "10.244.0.0/16".into()),
                (RangeKind::ClusterCidrFlag, "10.244.0.0/16".into()),
                (RangeKind::FlannelNetwork, "10.244.0.0/16".into()),
            ]
        );
        assert_eq!(pods[0].origin, Location::json("kubernetes/nodes.json", "/items/0/spec/podCIDRs/0"));
        assert_eq!(pods[3].origin, Location::json("kubernetes/pods.json", "/items/0/spec/containers/0/command/1"));
        let svc = service_cidrs(&net);
        let s: Vec<String> = svc.iter().map(|s| s.cidr.to_string()).collect();
        assert_eq!(s, vec!["10.96.0.0/12", "10.96.0.0/12", "fd00:10:96::/112"]);
        assert_eq!(svc[0].origin, Location::json("kubernetes/pods.json", "/items/0/spec/containers/0/command/2"));
        assert_eq!(svc[1].origin, Location::json("kubernetes/configmaps.json", "/items/0/data/ClusterConfiguration"));
    }

    fn net_(s: &str) -> IpNet {
        net(s)
    }

    #[test]
    fn remote_ranges_from_wireguard_ipsec_and_aws() {
        let mut n = Network::default();
        let mut gw = host("gw-1", Some(HostRole::Gateway));
        gw.wireguard.push(WireGuardInterface {
            name: "wg0".into(),
            private_key: None,
            public_key: None,
            listen_port: Some(51820),
            fwmark: None,
            addresses: vec![],
            mtu: None,
            table: None,
            peers: vec![WireGuardPeer {
                public_key: "AbCdEfGhIjKl=".into(),
                preshared_key: None,
                endpoint: Some("198.51.100.7:51820".into()),
                allowed_ips: vec![net("192.168.50.0/24")],
                latest_handshake: None,
                rx_bytes: None,
                tx_bytes: None,
                persistent_keepalive: None,
                origin: Location::line("hosts/gw-1/wg-dump.txt", 2),
            }],
            origin: Location::line("hosts/gw-1/wg-dump.txt", 1),
            from_runtime: true,
        });
        gw.ipsec.connections.push(IpsecConnection {
            name: "site".into(),
            version: 2,
            local_addrs: vec![],
            remote_addrs: vec![],
            proposals: vec![],
            local_auth: vec![],
            remote_auth: vec![],
            children: vec![IpsecChild {
                name: "net".into(),
                local_ts: vec![],
                remote_ts: vec!["172.20.0.0/16[tcp]".into(), "dynamic".into(), "10.9.0.1-10.9.0.5".into()],
                esp_proposals: vec![],
                mode: None,
                rekey_time: None,
                life_time: None,
                start_action: None,
                dpd_action: None,
                close_action: None,
                settings: BTreeMap::new(),
                origin: Location::line("hosts/gw-1/swanctl/swanctl.conf", 12),
            }],
            rekey_time: None,
            reauth_time: None,
            over_time: None,
            dpd_delay: None,
            dpd_timeout: None,
            encap: None,
            mobike: None,
            settings: BTreeMap::new(),
            origin: Location::line("hosts/gw-1/swanctl/swanctl.conf", 2),
        });
        n.hosts.push(gw);
        let r = vpn_remote_cidrs(&n);
        let got: Vec<(RangeKind, String, String)> =
            r.iter().map(|s| (s.kind, s.cidr.to_string(), s.from.clone())).collect();
        assert_eq!(
            got,
            vec![
                (RangeKind::WireGuardAllowedIps, "192.168.50.0/24".into(), "host gw-1 wg0 peer AbCdEfGh…".into()),
                (RangeKind::IpsecRemoteTs, "172.20.0.0/16".into(), "host gw-1 connection site child net".into()),
            ]
        );
        assert_eq!(r[1].origin, Location::line("hosts/gw-1/swanctl/swanctl.conf", 12));
    }

    #[test]
    fn node_subnets_skip_container_bridges_and_link_local() {
        let mut n = Network::default();
        let mut h = host("n1", Some(HostRole::Node));
        h.interfaces.push(interface("n1", "eth0", InterfaceKind::Physical, &["192.168.1.10/24", "169.254.1.1/16"]));
        h.interfaces.push(interface("n1", "cni0", InterfaceKind::Bridge, &["10.244.1.1/24"]));
        h.interfaces.push(interface("n1", "br-0123456789ab", InterfaceKind::Bridge, &["172.18.0.1/16"]));
        h.interfaces.push(interface("n1", "br0", InterfaceKind::Bridge, &["10.0.5.2/24"]));
        n.hosts.push(h);
        n.hosts.push({
            let mut g = host("gw", Some(HostRole::Gateway));
            g.interfaces.push(interface("gw", "eth0", InterfaceKind::Physical, &["203.0.113.5/24"]));
            g
        });
        let s: Vec<String> = node_subnets(&n).iter().map(|s| s.cidr.to_string()).collect();
        assert_eq!(s, vec!["192.168.1.0/24", "10.0.5.0/24"]);
        assert!(node_addresses(&n).contains(&ip("10.244.1.1")));
        assert!(!node_addresses(&n).contains(&ip("203.0.113.5")));
    }

    #[test]
    fn flag_parsing_handles_shell_strings() {
        let c = Container {
            command: vec!["/bin/sh".into(), "-c".into(), "kube-proxy --cluster-cidr 10.1.0.0/16 --v=2".into()],
            pointer: "/spec/containers/0".into(),
            ..Container::default()
        };
        assert_eq!(
            flag_values(&c, "--cluster-cidr"),
            vec![("/spec/containers/0/command/2".to_string(), "10.1.0.0/16".to_string())]
        );
        assert!(flag_values(&c, "--cluster").is_empty(), "a prefix of a flag is not the flag");
    }
}
