//! Address-plan rules: OVL-002, CIDR overlaps between the cluster's pod and service
//! ranges, the node network and the ranges behind VPN tunnels.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use netsleuth_model::{Confidence, Evidence, Finding, Layer, Severity};

use crate::rule::{Context, Rule};
use crate::support::{
    list_some, node_addresses, node_hosts, node_subnets, plural, pod_cidrs, remote_site_ranges, service_cidrs,
    CidrSource, RangeKind,
};

pub(crate) const RULES: &[Rule] = &[Rule {
    id: "OVL-002",
    layer: Layer::Overlay,
    severity: Severity::High,
    title: "Address ranges overlap across pod, service, node and VPN networks",
    rationale: "Routing decides by prefix. When the pod range, the Service range, the node network \
                and the subnets behind VPN tunnels share addresses, one of them wins and the other \
                becomes unreachable in the overlap: a remote site numbered inside the pod range is \
                routed to local pods, a pod range over the node LAN shadows hosts, a Service range \
                over a LAN makes kube-proxy intercept those hosts. It shows as 'traffic to some \
                ranges stays local' and CIDR overlap warnings (FAILURES #40). Overlaps inside one \
                category are normal (per-node podCIDRs inside the cluster range), and a tunnel range \
                identical to or inside one node's podCIDR or address is the cluster's own tunnelling \
                (Calico, Cilium or Kilo WireGuard between nodes), not an overlap.",
    references: &[
        "submariner-io/submariner#545",
        "https://submariner.io/getting-started/architecture/globalnet/",
        "https://kubernetes.io/docs/concepts/services-networking/cluster-ip-allocation/",
        "https://kubernetes.io/docs/setup/production-environment/tools/kubeadm/create-cluster-kubeadm/#pod-network",
    ],
    example: "cidr/10.0.0.0/8/overlaps/pod: VPN remote range 10.0.0.0/8 (WireGuard AllowedIPs of host gw-1 \
              wg0 peer AbCd1234…) contains the pod range 10.244.0.0/16 (kubeadm podSubnet)",
    check: check_overlaps,
}];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Category {
    Pod,
    Service,
    Node,
    Remote,
}

impl Category {
    fn name(self) -> &'static str {
        match self {
            Category::Pod => "pod",
            Category::Service => "service",
            Category::Node => "node",
            Category::Remote => "remote",
        }
    }
    fn long(self) -> &'static str {
        match self {
            Category::Pod => "pod range",
            Category::Service => "Service range",
            Category::Node => "node network",
            Category::Remote => "VPN remote range",
        }
    }
}

struct Entry {
    src: CidrSource,
    cat: Category,
    /// Other sources that name the same range (same category).
    also: usize,
    /// A remote range strictly inside the cluster's pod range: may be a remote site
    /// reusing part of it, or in-cluster tunnelling the bundle does not show as such.
    uncertain: bool,
}

/// Per-node pod ranges (a Node's podCIDR or a host's CNI range).
fn per_node(kind: RangeKind) -> bool {
    matches!(kind, RangeKind::NodePodCidr | RangeKind::CniIpam)
}

fn in_set(set: &HashSet<IpNet>, r: &IpNet) -> bool {
    (0..=r.prefix_len()).rev().any(|p| IpNet::new(r.network(), p).is_ok_and(|n| set.contains(&n.trunc())))
}

fn explain(a: Category, b: Category) -> &'static str {
    use Category::*;
    match (a.min(b), a.max(b)) {
        (Pod, Service) => {
            "kube-proxy DNATs ClusterIPs while the CNI routes the same addresses to pods: pods whose IPs fall \
             in the Service range are unreachable by IP, and new ClusterIPs can shadow them."
        }
        (Pod, Node) => {
            "routes to pods shadow hosts of the node network (or the reverse): nodes, gateways or other LAN \
             hosts inside the overlap become unreachable from pods (the classic Calico default 192.168.0.0/16 \
             on a 192.168.x LAN)."
        }
        (Service, Node) => {
            "kube-proxy intercepts traffic to LAN hosts whose addresses are also ClusterIPs, and the API server \
             may hand out ClusterIPs that are real hosts."
        }
        (Pod, Remote) | (Service, Remote) => {
            "the same addresses mean two things: on the gateway the more specific route wins, so remote hosts \
             in the overlap are unreachable (traffic stays in the cluster), and routes advertised to the remote \
             side pull cluster traffic into the tunnel."
        }
        (Node, Remote) => {
            "the tunnel's route and the connected node network compete: the more specific one wins, so either \
             LAN hosts or remote hosts in the overlap are unreachable, and a tunnel covering the node's own \
             subnet can cut the node off."
        }
        _ => "",
    }
}

fn fix_for(a: Category, b: Category) -> &'static str {
    use Category::*;
    match (a.min(b), a.max(b)) {
        (Pod, Remote) | (Service, Remote) | (Node, Remote) => {
            "Narrow the tunnel to the remote site's real subnets (split AllowedIPs / remote_ts / VPN routes \
             into the prefixes actually used there), renumber one side, or translate addresses: Submariner \
             Globalnet, or 1:1 NAT on the gateway (`iptables -t nat -A PREROUTING -d <alias range> -j NETMAP --to \
             <remote range>` with the matching POSTROUTING rule)."
        }
        (Pod, Node) => {
            "Use a pod range disjoint from the node network: kubeadm --pod-network-cidr / the CNI's IP pool. On \
             Calico, create a new IPPool, disable the old one (`calicoctl patch ippool <old> -p \
             '{\"spec\":{\"disabled\":true}}'`) and restart the pods; elsewhere this needs a rebuild."
        }
        (Pod, Service) | (Service, Node) => {
            "Use a Service range disjoint from pods and nodes (kube-apiserver and kube-controller-manager \
             --service-cluster-ip-range; Kubernetes 1.33+ can add ServiceCIDRs and retire the old one)."
        }
        _ => "Renumber one of the ranges.",
    }
}

fn check_overlaps(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    let net = ctx.net;
    let remotes = remote_site_ranges(net);
    let pods = pod_cidrs(net);
    let services = service_cidrs(net);
    let nodes = node_subnets(net);
    let non_empty = [!pods.is_empty(), !services.is_empty(), !nodes.is_empty(), !remotes.is_empty()];
    if non_empty.iter().filter(|b| **b).count() < 2 {
        return;
    }
    let aws_cni = net.hosts.iter().any(|h| h.cni.iter().any(|c| c.plugins.iter().any(|p| p.plugin_type == "aws-cni")));

    // Which remote ranges are the cluster's own tunnelling.
    let per_node_pods: HashSet<IpNet> = pods.iter().filter(|s| per_node(s.kind)).map(|s| s.cidr).collect();
    let cluster_pods: HashSet<IpNet> = pods.iter().filter(|s| !per_node(s.kind)).map(|s| s.cidr).collect();
    let node_ips: HashSet<IpAddr> = if remotes.is_empty() { HashSet::new() } else { node_addresses(net) };
    let node_host_names: HashSet<&str> = node_hosts(net).iter().map(|h| h.name.as_str()).collect();

    let mut entries: Vec<Entry> = Vec::new();
    let mut index: BTreeMap<(IpNet, Category), usize> = BTreeMap::new();
    let mut add = |src: CidrSource, cat: Category, uncertain: bool, entries: &mut Vec<Entry>| {
        if let Some(i) = index.get(&(src.cidr, cat)) {
            if let Some(e) = entries.get_mut(*i) {
                e.also += 1;
            }
            return;
        }
        index.insert((src.cidr, cat), entries.len());
        entries.push(Entry { src, cat, also: 0, uncertain });
    };
    for s in pods {
        add(s, Category::Pod, false, &mut entries);
    }
    for s in services {
        add(s, Category::Service, false, &mut entries);
    }
    for s in nodes {
        add(s, Category::Node, false, &mut entries);
    }
    for s in remotes {
        // A full tunnel (default route) is not a remote subnet.
        if s.cidr.prefix_len() == 0 {
            continue;
        }
        if in_set(&per_node_pods, &s.cidr) {
            continue;
        }
        if s.cidr.prefix_len() == s.cidr.max_prefix_len() && node_ips.contains(&s.cidr.addr()) {
            continue;
        }
        let inside_cluster = in_set(&cluster_pods, &s.cidr) && !cluster_pods.contains(&s.cidr);
        if inside_cluster
            && s.kind == RangeKind::WireGuardAllowedIps
            && s.host.as_deref().is_some_and(|h| node_host_names.contains(h))
        {
            // WireGuard between nodes carrying per-node pod blocks (Calico, Cilium).
            continue;
        }
        add(s, Category::Remote, inside_cluster, &mut entries);
    }

    // CIDRs are nested or disjoint: sorted by (family, address, prefix length), a stack
    // of the ranges containing the current one finds every containment pair once.
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|i| {
        let e = &entries[*i];
        (matches!(e.src.cidr, IpNet::V6(_)), e.src.cidr.network(), e.src.cidr.prefix_len(), e.cat)
    });
    // (outer entry, inner category) → inner entries.
    let mut pairs: BTreeMap<(usize, Category), Vec<usize>> = BTreeMap::new();
    let mut stack: Vec<usize> = Vec::new();
    for i in order {
        let cidr = entries[i].src.cidr;
        while let Some(top) = stack.last() {
            if entries[*top].src.cidr.contains(&cidr) {
                break;
            }
            stack.pop();
        }
        let cat = entries[i].cat;
        for c in [Category::Pod, Category::Service, Category::Node, Category::Remote] {
            if c == cat {
                continue;
            }
            // The innermost containing range of that category...
            let Some(pos) = stack.iter().rposition(|s| entries[*s].cat == c) else { continue };
            let outer = stack[pos];
            // ...unless this range sits in a same-category range inside (or equal to) it,
            // which is reported instead.
            let outer_cidr = entries[outer].src.cidr;
            if stack.iter().any(|s| entries[*s].cat == cat && outer_cidr.contains(&entries[*s].src.cidr)) {
                continue;
            }
            if aws_cni && matches!((c, cat), (Category::Pod, Category::Node) | (Category::Node, Category::Pod)) {
                // The AWS VPC CNI gives pods addresses of the VPC's subnets by design.
                continue;
            }
            pairs.entry((outer, cat)).or_default().push(i);
        }
        stack.push(i);
    }

    for ((outer, inner_cat), inners) in pairs {
        let o = &entries[outer];
        let shown: Vec<String> = inners.iter().take(3).map(|i| entries[*i].src.to_string()).collect();
        let first = inners.first().map(|i| &entries[*i]);
        let equal = first.is_some_and(|f| f.src.cidr == o.src.cidr) && inners.len() == 1;
        let verb = if equal { "is the same range as" } else { "contains" };
        let inner_desc = if inners.len() == 1 {
            format!("the {} {}", inner_cat.long(), shown.join(""))
        } else {
            format!("{} {}s: {}", inners.len(), inner_cat.long(), list_some(&shown, 3))
        };
        // Only the relation to the pod range is in doubt for such a remote range.
        let uncertain = (inner_cat == Category::Pod && o.uncertain)
            || (o.cat == Category::Pod && inners.iter().all(|i| entries[*i].uncertain));
        let far_end: Vec<&CidrSource> = std::iter::once(o)
            .chain(inners.iter().filter_map(|i| entries.get(*i)))
            .filter(|e| e.cat == Category::Remote && e.src.maybe_far_end)
            .map(|e| &e.src)
            .collect();
        let mut detail = format!(
            "The {} {o_src} {verb} {inner_desc}. Where they overlap, {}",
            o.cat.long(),
            explain(o.cat, inner_cat),
            o_src = o.src
        );
        if o.also > 0 {
            detail.push_str(&format!(" ({} also names {}.)", plural(o.also, "other source"), o.src.cidr));
        }
        if uncertain {
            detail.push_str(
                " The VPN range lies inside the cluster's pod range but in no node's podCIDR: either the remote \
                 site reuses part of the pod range, or this is in-cluster tunnelling whose node the bundle does \
                 not show.",
            );
        }
        if let Some(f) = far_end.first() {
            let host = f.host.as_deref().unwrap_or("?");
            detail.push_str(&format!(
                " Host {host} is not part of the cluster and the bundle does not show its own side: if it is the \
                 far end of the tunnel, {} is its route back to the cluster and not an overlap.",
                f.cidr
            ));
        }
        let mut evidence = vec![Evidence::new(
            o.src.origin.clone(),
            format!("{} {} ({})", o.src.kind.as_str(), o.src.cidr, o.src.from),
        )];
        for i in inners.iter().take(3) {
            let e = &entries[*i];
            evidence.push(Evidence::new(
                e.src.origin.clone(),
                format!("{} {} ({})", e.src.kind.as_str(), e.src.cidr, e.src.from),
            ));
        }
        let inner_cidrs: Vec<String> = inners.iter().map(|i| entries[*i].src.cidr.to_string()).collect();
        out.push(rule.finding(
            format!("cidr/{}/overlaps/{}", o.src.cidr, inner_cat.name()),
            format!(
                "{} {} overlaps {} {}",
                o.cat.long(),
                o.src.cidr,
                if inners.len() == 1 {
                    inner_cat.long().to_string()
                } else {
                    format!("{} {}s", inners.len(), inner_cat.long())
                },
                list_some(&inner_cidrs, 2)
            ),
            detail,
            evidence,
            fix_for(o.cat, inner_cat),
            if uncertain || !far_end.is_empty() { Confidence::Possible } else { Confidence::Likely },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::testkit::*;
    use netsleuth_model::host::{Host, HostRole, InterfaceKind};
    use netsleuth_model::wireguard::{WireGuardInterface, WireGuardPeer};
    use netsleuth_model::{Location, Network};

    fn run(net: &Network) -> Vec<Finding> {
        let mut out = Vec::new();
        (RULES[0].check)(&Context { net, now: None }, &RULES[0], &mut out);
        out
    }

    fn wg(host_name: &str, role: HostRole, allowed: &[&str]) -> Host {
        let mut h = host(host_name, Some(role));
        h.wireguard.push(WireGuardInterface {
            name: "wg0".into(),
            private_key: None,
            public_key: None,
            listen_port: None,
            fwmark: None,
            addresses: vec![],
            mtu: None,
            table: None,
            peers: allowed
                .iter()
                .enumerate()
                .map(|(i, a)| WireGuardPeer {
                    public_key: format!("PEER{i}xxxxxxxx"),
                    preshared_key: None,
                    endpoint: None,
                    allowed_ips: vec![net(a)],
                    latest_handshake: None,
                    rx_bytes: None,
                    tx_bytes: None,
                    persistent_keepalive: None,
                    origin: Location::line(format!("hosts/{host_name}/wg-dump.txt"), i as u32 + 2),
                })
                .collect(),
            origin: Location::line(format!("hosts/{host_name}/wg-dump.txt"), 1),
            from_runtime: true,
        });
        h
    }

    fn cluster() -> Network {
        let mut n = Network::default();
        n.kubernetes.nodes.push(node("n1", Some("10.244.1.0/24"), "192.168.1.10"));
        n.kubernetes.nodes.push(node("n2", Some("10.244.2.0/24"), "192.168.1.11"));
        n.kubernetes.config_maps.push(config_map(
            "kube-system",
            "kubeadm-config",
            &[("ClusterConfiguration", "networking:\n  podSubnet: 10.244.0.0/16\n  serviceSubnet: 10.96.0.0/12\n")],
        ));
        let mut h = host("n1", Some(HostRole::Node));
        h.interfaces.push(interface("n1", "eth0", InterfaceKind::Physical, &["192.168.1.10/24"]));
        n.hosts.push(h);
        n
    }

    #[test]
    fn remote_range_containing_the_pod_range_is_reported() {
        let mut n = cluster();
        let mut gw = wg("gw-1", HostRole::Gateway, &["10.0.0.0/8"]);
        // A gateway pod's namespace on node n1: the cluster's side of the tunnel.
        gw.node = Some("n1".into());
        n.hosts.push(gw);
        let out = run(&n);
        assert_eq!(out.len(), 2, "{out:#?}");
        let pod = out.iter().find(|f| f.subject == "cidr/10.0.0.0/8/overlaps/pod").expect("pod overlap");
        assert_eq!(pod.rule, "OVL-002");
        // The kubeadm range is reported; the node podCIDRs inside it are not repeated.
        assert!(pod.detail.contains("contains the pod range 10.244.0.0/16 (kubeadm podSubnet"), "{}", pod.detail);
        assert!(pod.detail.contains("WireGuard AllowedIPs of host gw-1 wg0 peer PEER0xxx…"), "{}", pod.detail);
        assert_eq!(pod.evidence[0].location, Location::line("hosts/gw-1/wg-dump.txt", 2));
        assert_eq!(
            pod.evidence[1].location,
            Location::json("kubernetes/configmaps.json", "/items/0/data/ClusterConfiguration")
        );
        assert_eq!(pod.confidence, Confidence::Likely);
        assert!(out.iter().any(|f| f.subject == "cidr/10.0.0.0/8/overlaps/service"));
    }

    #[test]
    fn in_cluster_tunnelling_is_not_an_overlap() {
        let mut n = cluster();
        // Kilo/Cilium-style: a peer's podCIDR and node IP; Calico-style /26 block from a node.
        n.hosts.push(wg("n1-wg", HostRole::Node, &["10.244.2.0/24", "192.168.1.11/32", "10.244.7.64/26"]));
        // Full tunnel on a gateway: a default route, not a remote subnet.
        n.hosts.push(wg("gw-1", HostRole::Gateway, &["0.0.0.0/0", "172.30.0.0/16"]));
        assert!(run(&n).is_empty(), "{:#?}", run(&n));
    }

    #[test]
    fn pod_range_over_the_node_lan_and_remote_inside_node_subnet() {
        let mut n = Network::default();
        n.kubernetes.config_maps.push(config_map(
            "kube-system",
            "kubeadm-config",
            &[("ClusterConfiguration", "podSubnet: 192.168.0.0/16\n")],
        ));
        let mut h = host("n1", Some(HostRole::Node));
        h.interfaces.push(interface("n1", "eth0", InterfaceKind::Physical, &["192.168.1.10/24"]));
        n.hosts.push(h);
        let mut gw = wg("gw-1", HostRole::Gateway, &["192.168.1.128/25"]);
        gw.node = Some("n1".into());
        n.hosts.push(gw);
        let out = run(&n);
        let subjects: Vec<&str> = out.iter().map(|f| f.subject.as_str()).collect();
        assert_eq!(
            subjects,
            vec![
                "cidr/192.168.0.0/16/overlaps/node",
                "cidr/192.168.0.0/16/overlaps/remote",
                "cidr/192.168.1.0/24/overlaps/remote"
            ]
        );
        assert!(
            out[0].detail.contains("contains the node network 192.168.1.0/24 (node interface subnet of host n1 eth0"),
            "{}",
            out[0].detail
        );
        // A gateway's range strictly inside the pod range, in no node's podCIDR: possible;
        // its overlap with the node subnet is certain.
        assert_eq!(out[1].confidence, Confidence::Possible);
        assert_eq!(out[2].confidence, Confidence::Likely);
    }

    #[test]
    fn far_end_router_of_the_tunnel_is_not_an_overlap() {
        use netsleuth_model::ipsec::{IpsecChild, IpsecConnection};
        let child = |local: &str, remote: &str| IpsecChild {
            name: "net".into(),
            local_ts: vec![local.into()],
            remote_ts: vec![remote.into()],
            esp_proposals: vec![],
            mode: None,
            rekey_time: None,
            life_time: None,
            start_action: None,
            dpd_action: None,
            close_action: None,
            settings: Default::default(),
            origin: Location::line("hosts/onprem/swanctl/swanctl.conf", 19),
        };
        let conn = |c: IpsecChild| IpsecConnection {
            name: "cluster".into(),
            version: 2,
            local_addrs: vec![],
            remote_addrs: vec![],
            proposals: vec![],
            local_auth: vec![],
            remote_auth: vec![],
            children: vec![c],
            rekey_time: None,
            reauth_time: None,
            over_time: None,
            dpd_delay: None,
            dpd_timeout: None,
            encap: None,
            mobike: None,
            settings: Default::default(),
            origin: Location::line("hosts/onprem/swanctl/swanctl.conf", 2),
        };
        // The on-prem router routes the cluster's pod range to the cluster: no overlap.
        let mut n = cluster();
        let mut onprem = host("onprem", Some(HostRole::Gateway));
        onprem.ipsec.connections.push(conn(child("172.20.0.0/16", "10.244.0.0/16")));
        n.hosts.push(onprem);
        assert!(run(&n).is_empty(), "{:#?}", run(&n));

        // Its own site reusing the node LAN is found through its local selector.
        n.hosts[1].ipsec.connections = vec![conn(child("192.168.0.0/16", "10.244.0.0/16"))];
        let out = run(&n);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].subject, "cidr/192.168.0.0/16/overlaps/node");
        assert!(out[0].detail.contains("IPsec local_ts of the far end"), "{}", out[0].detail);

        // A gateway outside the cluster whose own side is unknown: reported, but possible.
        let mut n = cluster();
        n.hosts.push(wg("gw-x", HostRole::Gateway, &["10.244.0.0/16"]));
        let out = run(&n);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].confidence, Confidence::Possible);
        assert!(out[0].detail.contains("if it is the far end of the tunnel"), "{}", out[0].detail);
    }

    #[test]
    fn many_node_pod_cidrs_are_aggregated() {
        let mut n = Network::default();
        for i in 0..50 {
            n.kubernetes.nodes.push(node(&format!("n{i}"), Some(&format!("10.1.{i}.0/24")), "172.16.0.1"));
        }
        n.hosts.push(wg("gw", HostRole::Gateway, &["10.1.0.0/16"]));
        let out = run(&n);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert!(out[0].detail.contains("contains 50 pod ranges"), "{}", out[0].detail);
    }
}
