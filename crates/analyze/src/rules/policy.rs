//! Policy-layer rules: NetworkPolicies that cut pods off from cluster DNS (POL-001) and
//! that block a VPN gateway pod's own tunnel traffic (POL-002).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use netsleuth_model::kubernetes::{IntOrString, NetworkPolicy, PodSpec, PolicyType};
use netsleuth_model::{Confidence, Evidence, Finding, Layer, Network, Severity};

use crate::rule::{Context, Rule};
use crate::support::netpol::ports_match;
use crate::support::{
    list_some, local_wireguard, plural, pod_units, unit_group_subject, Labels, Peer, PodRef, PolicyIndex, Traffic,
    Unit, Verdict,
};

pub(crate) const RULES: &[Rule] = &[
    Rule {
        id: "POL-001",
        layer: Layer::Policy,
        severity: Severity::High,
        title: "Egress NetworkPolicy leaves pods without cluster DNS",
        rationale: "Once a NetworkPolicy with policyTypes Egress selects a pod, the pod may only send \
                    what the union of the egress rules of all policies selecting it allows. A \
                    default-deny egress policy without a rule for UDP and TCP 53 to the cluster DNS \
                    makes every name lookup time out: applications report 'temporary failure in name \
                    resolution' or hang for timeout x attempts seconds, and everything looks like a \
                    network outage (FAILURES #3). UDP alone is not enough: answers over 512 bytes come \
                    back truncated and are retried over TCP. CNIs apply egress policy after the \
                    Service DNAT, so the rule must allow the CoreDNS pods (namespaceSelector \
                    kube-system + podSelector k8s-app=kube-dns, or an ipBlock holding their IPs); an \
                    ipBlock of the kube-dns ClusterIP does not match. With NodeLocal DNSCache, pods \
                    talk to 169.254.20.10 instead, which needs an ipBlock.",
        references: &[
            "https://kubernetes.io/docs/concepts/services-networking/network-policies/",
            "https://kubernetes.io/docs/concepts/services-networking/dns-pod-service/",
            "https://kubernetes.io/docs/tasks/administer-cluster/nodelocaldns/",
        ],
        example: "k8s/NetworkPolicy/shop/default-deny-egress: egress policy shop/default-deny-egress \
                  selects 42 pods (cart-7d9f-x2x4z, web-5c6d-abcde and 40 more) and allows neither \
                  UDP 53 nor TCP 53 to the cluster DNS (2 CoreDNS pods in kube-system)",
        check: check_dns_egress,
    },
    Rule {
        id: "POL-002",
        layer: Layer::Policy,
        severity: Severity::Critical,
        title: "NetworkPolicy blocks a VPN gateway pod's tunnel traffic",
        rationale: "A VPN gateway pod needs its tunnel protocol in both directions: WireGuard UDP \
                    51820 (or the port it declares), IPsec IKE UDP 500 and NAT-T UDP 4500, plus ESP \
                    (IP protocol 50) when no NAT forces UDP encapsulation, OpenVPN UDP 1194. A \
                    NetworkPolicy that selects the gateway and allows only application ports (or \
                    only in-cluster peers) drops the handshakes: WireGuard logs 'Handshake did not \
                    complete after 5 seconds', strongSwan retransmits IKE_SA_INIT and gives up \
                    (FAILURES #49, #9, #21). NetworkPolicy cannot name ESP: only a rule without \
                    `ports` allows it, so a policy that lists ports blocks ESP. Host-network pods \
                    are not subject to NetworkPolicy in most CNIs (Calico and Cilium use separate \
                    host policies), so for them this is reported as information only.",
        references: &[
            "projectcalico/calico#6250",
            "wg-easy/wg-easy#1132",
            "strongswan/strongswan#1815",
            "https://kubernetes.io/docs/concepts/services-networking/network-policies/",
        ],
        example: "k8s/Deployment/vpn/wg-gw: ingress UDP 51820 from any address outside the cluster is \
                  not allowed by vpn/default-deny (it only allows TCP 8080 from namespace monitoring)",
        check: check_vpn_gateway_policies,
    },
];

// ---------------------------------------------------------------------------------------
// POL-001

/// NodeLocal DNSCache's link-local listen address.
const NODELOCAL_DNS: IpAddr = IpAddr::V4(Ipv4Addr::new(169, 254, 20, 10));

/// The cluster DNS as policy evaluation targets: CoreDNS/kube-dns pods, or (when the
/// bundle has none) a stand-in with the standard label and the Service's addresses.
struct DnsTargets<'a> {
    pods: Vec<PodRef<'a>>,
    /// Names of the DNS pods (or what the stand-in is built from), for the detail.
    described: String,
    /// Destination ports per protocol, after the Service's targetPort.
    udp_port: u16,
    tcp_port: u16,
    /// Extra IP targets that also count as reaching DNS (NodeLocal DNSCache).
    extra_ips: Vec<IpAddr>,
    nodelocal: bool,
    evidence: Vec<Evidence>,
    /// Whether real DNS pods were found (else the result is less certain).
    real: bool,
}

/// Owned data of the stand-in DNS pod, which `DnsTargets` borrows.
struct StandIn {
    labels: Labels,
    ips: Vec<IpAddr>,
    spec: PodSpec,
}

fn is_dns_pod_labels(l: &Labels) -> bool {
    l.get("k8s-app").is_some_and(|v| v == "kube-dns")
}

/// Whether NodeLocal DNSCache is deployed (its pods or DaemonSet, or a host resolv.conf
/// pointing at 169.254.20.10).
fn nodelocal_deployed(net: &Network) -> bool {
    let k = &net.kubernetes;
    k.pods.iter().any(|p| p.meta.namespace == "kube-system" && p.meta.name.starts_with("node-local-dns"))
        || k.workloads.iter().any(|w| w.meta.name == "node-local-dns")
        || net
            .hosts
            .iter()
            .any(|h| h.resolv.as_ref().is_some_and(|r| r.nameservers.iter().any(|n| n.addr == NODELOCAL_DNS)))
}

fn dns_targets<'a>(net: &'a Network, stand_in: &'a mut Option<StandIn>) -> DnsTargets<'a> {
    let k = &net.kubernetes;
    let service = k.services.iter().find(|s| s.meta.namespace == "kube-system" && s.meta.name == "kube-dns");
    let dns_pods: Vec<_> = k
        .pods
        .iter()
        .filter(|p| {
            p.meta.namespace == "kube-system"
                && is_dns_pod_labels(&p.meta.labels)
                && !matches!(p.phase.as_deref(), Some("Succeeded") | Some("Failed"))
        })
        .collect();
    // The Service's targetPort per protocol (CoreDNS listens on 53 unless changed).
    let target_port = |proto: &str| -> u16 {
        let Some(sp) = service.and_then(|s| s.ports.iter().find(|p| p.protocol.eq_ignore_ascii_case(proto))) else {
            return 53;
        };
        match &sp.target_port {
            Some(IntOrString::Int(n)) => u16::try_from(*n).unwrap_or(sp.port),
            Some(IntOrString::String(name)) => dns_pods
                .iter()
                .find_map(|p| p.spec.named_port(name).filter(|(_, pr)| pr.eq_ignore_ascii_case(proto)).map(|(n, _)| n))
                .unwrap_or(sp.port),
            None => sp.port,
        }
    };
    let udp_port = target_port("UDP");
    let tcp_port = target_port("TCP");
    let nodelocal = nodelocal_deployed(net);
    let mut extra_ips = vec![NODELOCAL_DNS];
    if nodelocal {
        // In iptables mode node-local-dns also answers on the kube-dns ClusterIP, locally.
        extra_ips.extend(service.iter().flat_map(|s| s.cluster_ips.iter().copied()));
    }
    let mut evidence = Vec::new();
    if !dns_pods.is_empty() {
        let names: Vec<String> = dns_pods.iter().map(|p| p.meta.name.clone()).collect();
        for p in dns_pods.iter().take(2) {
            let ips: Vec<String> = p.pod_ips.iter().map(ToString::to_string).collect();
            evidence.push(Evidence::new(
                p.origin.clone(),
                format!("DNS pod kube-system/{} (k8s-app=kube-dns) IPs [{}]", p.meta.name, ips.join(", ")),
            ));
        }
        return DnsTargets {
            pods: dns_pods
                .iter()
                .map(|p| PodRef {
                    namespace: &p.meta.namespace,
                    labels: &p.meta.labels,
                    spec: Some(&p.spec),
                    ips: &p.pod_ips,
                })
                .collect(),
            described: format!("{} in kube-system ({})", plural(names.len(), "DNS pod"), list_some(&names, 3)),
            udp_port,
            tcp_port,
            extra_ips,
            nodelocal,
            evidence,
            real: true,
        };
    }
    // No DNS pods in the bundle: stand in with the standard label and the endpoints'
    // addresses (after DNAT these are what policies see).
    let mut ips: Vec<IpAddr> = k
        .endpoint_slices
        .iter()
        .filter(|e| e.meta.namespace == "kube-system" && e.service_name.as_deref() == Some("kube-dns"))
        .flat_map(|e| e.endpoints.iter().flat_map(|ep| ep.addresses.iter().copied()))
        .collect();
    ips.sort();
    ips.dedup();
    let mut described =
        "the kube-dns pods (not in the bundle: assumed label k8s-app=kube-dns in kube-system".to_string();
    if !ips.is_empty() {
        let shown: Vec<String> = ips.iter().map(ToString::to_string).collect();
        described.push_str(&format!(", endpoints {}", list_some(&shown, 3)));
    }
    if let Some(s) = service {
        let shown: Vec<String> = s.cluster_ips.iter().map(ToString::to_string).collect();
        described.push_str(&format!(", Service ClusterIP {}", shown.join(", ")));
        evidence.push(Evidence::new(
            s.origin.clone(),
            format!("Service kube-system/kube-dns ClusterIP {}", shown.join(", ")),
        ));
    }
    described.push(')');
    let si = stand_in.insert(StandIn {
        labels: Labels::from([("k8s-app".to_string(), "kube-dns".to_string())]),
        ips,
        spec: PodSpec::default(),
    });
    DnsTargets {
        pods: vec![PodRef { namespace: "kube-system", labels: &si.labels, spec: Some(&si.spec), ips: &si.ips }],
        described,
        udp_port,
        tcp_port,
        extra_ips,
        nodelocal,
        evidence,
        real: false,
    }
}

/// What one protocol lacks for a class of pods: None when DNS over it is allowed.
fn dns_gap(
    idx: &PolicyIndex<'_>,
    selecting: &[&NetworkPolicy],
    src: &PodRef<'_>,
    targets: &DnsTargets<'_>,
    traffic: Traffic<'_>,
) -> Option<String> {
    if targets
        .extra_ips
        .iter()
        .any(|a| idx.verdict(selecting, PolicyType::Egress, src, &Peer::Ip(*a), traffic).is_allowed())
    {
        return None;
    }
    let allowed = targets
        .pods
        .iter()
        .filter(|t| idx.verdict(selecting, PolicyType::Egress, src, &Peer::Pod(**t), traffic).is_allowed())
        .count();
    match allowed {
        n if n == targets.pods.len() => None,
        0 => Some(traffic.to_string()),
        n => Some(format!("{traffic} (allowed to only {n} of {} DNS pods)", targets.pods.len())),
    }
}

/// One finding's worth: pods of a namespace selected by the same egress policies and
/// missing the same DNS protocols.
#[derive(Default)]
struct DnsGroup<'a> {
    policies: Vec<&'a NetworkPolicy>,
    pods: Vec<String>,
}

fn check_dns_egress(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    let k = &ctx.net.kubernetes;
    if !k.network_policies.iter().any(|p| p.has_type(PolicyType::Egress)) {
        return;
    }
    let idx = PolicyIndex::new(k);
    let mut stand_in = None;
    let targets = dns_targets(ctx.net, &mut stand_in);

    // Pods with equal namespace and labels are selected by the same policies: evaluate
    // each such class once.
    let mut classes: HashMap<(&str, &Labels), (Unit<'_>, Vec<String>)> = HashMap::new();
    for u in pod_units(k) {
        // Host-network pods are not subject to NetworkPolicy; finished pods send nothing.
        if u.spec.host_network || !u.is_active() || !idx.namespace_has(u.namespace(), PolicyType::Egress) {
            continue;
        }
        let name = match u.pod {
            Some(p) => p.meta.name.clone(),
            None => format!("{} {} (template)", u.kind_name(), u.name()),
        };
        classes.entry((u.namespace(), u.labels)).or_insert_with(|| (u, Vec::new())).1.push(name);
    }

    // One finding per single policy, and one per namespace for pods selected by several
    // (their union is what matters; per-app combinations would repeat the namespace).
    let mut groups: BTreeMap<(String, Option<String>, Vec<String>), DnsGroup<'_>> = BTreeMap::new();
    for ((ns, labels), (unit, names)) in classes {
        let selecting = idx.selecting(ns, labels, PolicyType::Egress);
        if selecting.is_empty() {
            continue;
        }
        let src = unit.pod_ref();
        let gaps: Vec<String> = [Traffic::udp(targets.udp_port), Traffic::tcp(targets.tcp_port)]
            .into_iter()
            .filter_map(|t| dns_gap(&idx, &selecting, &src, &targets, t))
            .collect();
        if gaps.is_empty() {
            continue;
        }
        let single = match selecting.as_slice() {
            [one] => Some(one.meta.name.clone()),
            _ => None,
        };
        let g = groups.entry((ns.to_string(), single, gaps)).or_default();
        for p in selecting {
            if !g.policies.iter().any(|q| std::ptr::eq(*q, p)) {
                g.policies.push(p);
            }
        }
        g.pods.extend(names);
    }

    for ((ns, single, gaps), mut g) in groups {
        g.pods.sort();
        g.policies.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
        let policy_names: Vec<String> = g.policies.iter().map(|p| p.meta.name.clone()).collect();
        let only_tcp = gaps.iter().all(|g| g.starts_with("TCP"));
        let missing = gaps.join(" and ");
        let pods = format!("{} ({})", plural(g.pods.len(), "pod"), list_some(&g.pods, 3));
        let (subject, mut detail) = match &single {
            Some(name) => (
                format!("k8s/NetworkPolicy/{ns}/{name}"),
                format!(
                    "Egress policy {ns}/{name} selects {pods} and its egress rules do not allow {missing} to the \
                     cluster DNS: {}.",
                    targets.described
                ),
            ),
            None => (
                format!("k8s/Namespace/{ns}"),
                format!(
                    "{} egress policies of namespace {ns} ({}) select {pods}, each pod by more than one of them, \
                     and for each pod the union of their egress rules does not allow {missing} to the cluster DNS: \
                     {}.",
                    policy_names.len(),
                    list_some(&policy_names, 6),
                    targets.described
                ),
            ),
        };
        if only_tcp {
            detail.push_str(
                " UDP works, so short answers resolve, but answers over 512 bytes (many A/AAAA records, \
                 DNSSEC, long SRV lists) come back truncated and the TCP retry is dropped.",
            );
        } else {
            detail.push_str(" Every name lookup of these pods times out (timeout x attempts, 5 s x 2 by default).");
        }
        if g.policies.iter().any(|p| allows_cluster_ip_only(p, ctx.net, &targets.pods)) {
            detail.push_str(
                " An egress rule names the kube-dns ClusterIP in an ipBlock: CNIs evaluate egress after \
                 the Service DNAT, so it never matches; allow the DNS pods instead.",
            );
        }
        if targets.nodelocal {
            detail.push_str(" NodeLocal DNSCache is deployed: allowing an ipBlock 169.254.20.10/32 also works.");
        }
        let mut evidence: Vec<Evidence> = g
            .policies
            .iter()
            .take(8)
            .map(|p| {
                let (pointer, excerpt) = egress_excerpt(p);
                Evidence::new(p.origin.child(pointer), excerpt)
            })
            .collect();
        evidence.extend(targets.evidence.iter().cloned());
        let mut finding = rule.finding(
            subject,
            format!("Egress policy blocks DNS ({missing}) for {}", plural(g.pods.len(), "pod")),
            detail,
            evidence,
            dns_fix(&ns, &g.policies, &gaps, targets.nodelocal),
            if targets.real { Confidence::Likely } else { Confidence::Possible },
        );
        if only_tcp {
            finding.severity = Severity::Medium;
        }
        out.push(finding);
    }
}

/// Whether a policy has a DNS rule (port 53) aimed at the kube-dns ClusterIP: an ipBlock
/// holding the ClusterIP but none of the DNS pods' addresses.
fn allows_cluster_ip_only(p: &NetworkPolicy, net: &Network, dns_pods: &[PodRef<'_>]) -> bool {
    let ips: HashSet<IpAddr> = net
        .kubernetes
        .services
        .iter()
        .filter(|s| s.meta.namespace == "kube-system" && s.meta.name == "kube-dns")
        .flat_map(|s| s.cluster_ips.iter().copied())
        .collect();
    p.egress.iter().any(|r| {
        let dns_port = [Traffic::udp(53), Traffic::tcp(53)].into_iter().any(|t| ports_match(&r.ports, None, t));
        dns_port
            && r.peers.iter().any(|peer| {
                peer.ip_block.as_ref().is_some_and(|b| {
                    ips.iter().any(|a| b.cidr.contains(a))
                        && !dns_pods.iter().flat_map(|d| d.ips.iter()).any(|a| b.cidr.contains(a))
                })
            })
    })
}

/// Pointer and excerpt showing what a policy's egress section allows.
fn egress_excerpt(p: &NetworkPolicy) -> (&'static str, String) {
    if p.egress.is_empty() {
        let types: Vec<&str> = p
            .policy_types
            .iter()
            .map(|t| match t {
                PolicyType::Ingress => "Ingress",
                PolicyType::Egress => "Egress",
            })
            .collect();
        return (
            "/spec/policyTypes",
            format!("policyTypes: [{}] and no egress rules (deny all egress)", types.join(", ")),
        );
    }
    let rules: Vec<String> = p.egress.iter().map(|r| describe_rule_ports(r, PolicyType::Egress)).collect();
    ("/spec/egress", format!("egress: {} ({})", plural(p.egress.len(), "rule"), rules.join("; ")))
}

/// `TCP 443, UDP 8000-8100` or `all ports`.
fn describe_rule_ports(r: &netsleuth_model::kubernetes::NetworkPolicyRule, dir: PolicyType) -> String {
    let ports = if r.ports.is_empty() {
        "all ports".to_string()
    } else {
        r.ports
            .iter()
            .map(|p| {
                let proto = if p.protocol.is_empty() { "TCP" } else { p.protocol.as_str() };
                match (&p.port, p.end_port) {
                    (None, _) => format!("{proto} all"),
                    (Some(IntOrString::Int(n)), Some(e)) => format!("{proto} {n}-{e}"),
                    (Some(IntOrString::Int(n)), None) => format!("{proto} {n}"),
                    (Some(IntOrString::String(s)), _) => format!("{proto} {s}"),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let word = match dir {
        PolicyType::Egress => "to",
        PolicyType::Ingress => "from",
    };
    let peers = if r.peers.is_empty() {
        format!("{word} anywhere")
    } else {
        format!("{word} {}", plural(r.peers.len(), "peer"))
    };
    format!("{ports} {peers}")
}

fn dns_fix(ns: &str, policies: &[&NetworkPolicy], gaps: &[String], nodelocal: bool) -> String {
    let target = match policies {
        [one] => format!("NetworkPolicy {ns}/{}", one.meta.name),
        _ => format!("one of the egress policies of namespace {ns} (they are a union)"),
    };
    let mut ports = String::new();
    for proto in ["UDP", "TCP"] {
        if gaps.iter().any(|g| g.starts_with(proto)) {
            ports.push_str(&format!("        - protocol: {proto}\n          port: 53\n"));
        }
    }
    let nodelocal_peer = if nodelocal { "        - ipBlock:\n            cidr: 169.254.20.10/32\n" } else { "" };
    format!(
        "Add this rule to spec.egress of {target} (kubectl edit, or a JSON patch \
         `[{{\"op\":\"add\",\"path\":\"/spec/egress/-\",\"value\":...}}]`):\n\
         spec:\n  egress:\n    - to:\n        - namespaceSelector:\n            matchLabels:\n              \
         kubernetes.io/metadata.name: kube-system\n          podSelector:\n            matchLabels:\n              \
         k8s-app: kube-dns\n{nodelocal_peer}      ports:\n{ports}\
         Port 53 is the CoreDNS container port (policies see the pod after DNAT, not the Service)."
    )
}

// ---------------------------------------------------------------------------------------
// POL-002

/// One flow a VPN gateway needs, in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Need {
    protocol: &'static str,
    port: Option<u16>,
    why: &'static str,
}

impl Need {
    fn traffic(&self) -> Traffic<'static> {
        Traffic { protocol: self.protocol, port: self.port }
    }
    fn label(&self) -> String {
        match self.port {
            Some(p) => format!("{} {p} ({})", self.protocol, self.why),
            None => format!("{} ({})", self.protocol, self.why),
        }
    }
}

/// A known remote endpoint of the gateway (from a host folder describing the pod).
struct KnownPeer {
    addr: IpAddr,
    port: Option<u16>,
    label: String,
}

/// The flows a gateway pod needs, from what it runs and declares.
fn gateway_needs(unit: &Unit<'_>, signals: &[String]) -> Vec<Need> {
    let text = signals.join(" ").to_ascii_lowercase();
    let udp_ports: Vec<(u16, Option<&str>)> = unit
        .spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter())
        .filter(|p| p.protocol.eq_ignore_ascii_case("UDP"))
        .map(|p| (p.container_port, p.name.as_deref()))
        .collect();
    let mut needs = Vec::new();
    let wg_ports: Vec<u16> = udp_ports
        .iter()
        .filter(|(p, n)| *p == 51820 || n.is_some_and(|n| n.starts_with("wg") || n.contains("wireguard")))
        .map(|(p, _)| *p)
        .collect();
    if text.contains("wireguard") || text.contains("wg-easy") || !wg_ports.is_empty() {
        if wg_ports.is_empty() {
            needs.push(Need { protocol: "UDP", port: Some(51820), why: "WireGuard default port" });
        }
        for p in wg_ports {
            needs.push(Need { protocol: "UDP", port: Some(p), why: "WireGuard" });
        }
    }
    let ipsec = ["strongswan", "libreswan", "ipsec", "submariner"].iter().any(|w| text.contains(w))
        || udp_ports.iter().any(|(p, _)| *p == 500 || *p == 4500);
    if ipsec {
        needs.push(Need { protocol: "UDP", port: Some(500), why: "IKE" });
        needs.push(Need { protocol: "UDP", port: Some(4500), why: "IKE NAT-T" });
        needs.push(Need { protocol: "ESP", port: None, why: "IP protocol 50" });
    }
    let ovpn_ports: Vec<(u16, &'static str)> = unit
        .spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter())
        .filter(|p| p.container_port == 1194)
        .map(|p| (p.container_port, if p.protocol.eq_ignore_ascii_case("TCP") { "TCP" } else { "UDP" }))
        .collect();
    if text.contains("openvpn") || !ovpn_ports.is_empty() {
        if ovpn_ports.is_empty() {
            needs.push(Need { protocol: "UDP", port: Some(1194), why: "OpenVPN default port" });
        }
        for (p, proto) in ovpn_ports {
            needs.push(Need { protocol: proto, port: Some(p), why: "OpenVPN" });
        }
    }
    if needs.is_empty() {
        // Only a generic signal (name, annotation): the UDP ports it declares are its tunnel.
        for (p, _) in &udp_ports {
            needs.push(Need { protocol: "UDP", port: Some(*p), why: "declared UDP port" });
        }
    }
    needs.sort();
    needs.dedup();
    needs
}

/// `1.2.3.4:51820`, `[2001:db8::1]:51820` → (address, port); host names give None.
fn parse_endpoint(s: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some((sa.ip(), Some(sa.port())));
    }
    s.parse::<IpAddr>().ok().map(|a| (a, None))
}

/// Remote endpoints of a gateway pod, when a host folder describes its network namespace.
fn known_peers(net: &Network, unit: &Unit<'_>) -> (Vec<KnownPeer>, bool) {
    let Some(pod) = unit.pod else { return (Vec::new(), false) };
    let key = format!("{}/{}", pod.meta.namespace, pod.meta.name);
    let mut peers = Vec::new();
    let mut all_encap = false;
    for h in net.hosts.iter().filter(|h| h.pod.as_deref() == Some(key.as_str())) {
        for wg in local_wireguard(h) {
            for p in &wg.peers {
                if let Some((addr, port)) = p.endpoint.as_deref().and_then(parse_endpoint) {
                    let short: String = p.public_key.chars().take(8).collect();
                    peers.push(KnownPeer { addr, port, label: format!("WireGuard peer {short}… ({addr})") });
                }
            }
        }
        let conns = &h.ipsec.connections;
        all_encap = !conns.is_empty() && conns.iter().all(|c| c.encap == Some(true));
        for c in conns {
            for a in &c.remote_addrs {
                if let Ok(addr) = a.parse::<IpAddr>() {
                    peers.push(KnownPeer {
                        addr,
                        port: None,
                        label: format!("IPsec peer {addr} (connection {})", c.name),
                    });
                }
            }
        }
    }
    (peers, all_encap)
}

/// What a direction blocks: `(need, whom)` pairs.
fn blocked_in_direction(
    idx: &PolicyIndex<'_>,
    selecting: &[&NetworkPolicy],
    dir: PolicyType,
    subject: &PodRef<'_>,
    needs: &[Need],
    peers: &[KnownPeer],
) -> Vec<(Need, String)> {
    let mut out = Vec::new();
    if selecting.is_empty() {
        return out;
    }
    for need in needs {
        if peers.is_empty() {
            if idx.allows_some_ip(selecting, dir, subject, need.traffic()).is_none() {
                out.push((*need, "any address outside the cluster".to_string()));
            }
            continue;
        }
        let mut blocked = Vec::new();
        for peer in peers {
            // Egress goes to the peer's port (its endpoint), ingress arrives on ours.
            let traffic = match (dir, need.port, peer.port) {
                (PolicyType::Egress, Some(_), Some(pp)) if need.why.starts_with("WireGuard") => {
                    Traffic { protocol: need.protocol, port: Some(pp) }
                }
                _ => need.traffic(),
            };
            if !matches!(idx.verdict(selecting, dir, subject, &Peer::Ip(peer.addr), traffic), Verdict::Allowed { .. }) {
                blocked.push(peer.label.clone());
            }
        }
        if !blocked.is_empty() {
            out.push((*need, list_some(&blocked, 3)));
        }
    }
    out
}

fn check_vpn_gateway_policies(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    let k = &ctx.net.kubernetes;
    if k.network_policies.is_empty() {
        return;
    }
    let idx = PolicyIndex::new(k);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for unit in pod_units(k) {
        if !unit.is_active() {
            continue;
        }
        let ns = unit.namespace();
        if !idx.namespace_has(ns, PolicyType::Ingress) && !idx.namespace_has(ns, PolicyType::Egress) {
            continue;
        }
        let signals = unit.vpn_signals();
        if signals.is_empty() {
            continue;
        }
        // Replicas share labels and spec: one finding per workload.
        let subject = unit_group_subject(&unit);
        if seen.contains(&subject) {
            continue;
        }
        let needs = gateway_needs(&unit, &signals);
        if needs.is_empty() {
            continue;
        }
        let (peers, all_encap) = known_peers(ctx.net, &unit);
        let needs: Vec<Need> = needs.into_iter().filter(|n| !(all_encap && n.protocol == "ESP")).collect();
        let pref = unit.pod_ref();
        let sel_in = idx.selecting(ns, unit.labels, PolicyType::Ingress);
        let sel_eg = idx.selecting(ns, unit.labels, PolicyType::Egress);
        let blocked_in = blocked_in_direction(&idx, &sel_in, PolicyType::Ingress, &pref, &needs, &peers);
        let blocked_eg = blocked_in_direction(&idx, &sel_eg, PolicyType::Egress, &pref, &needs, &peers);
        if blocked_in.is_empty() && blocked_eg.is_empty() {
            continue;
        }
        seen.insert(subject.clone());

        let mut parts = Vec::new();
        for (n, whom) in &blocked_in {
            parts.push(format!("ingress {} from {whom}", n.label()));
        }
        for (n, whom) in &blocked_eg {
            parts.push(format!("egress {} to {whom}", n.label()));
        }
        let only_esp = blocked_in.iter().chain(blocked_eg.iter()).all(|(n, _)| n.protocol == "ESP");
        let policies_of = |sel: &[&NetworkPolicy]| -> String {
            sel.iter().map(|p| format!("{ns}/{}", p.meta.name)).collect::<Vec<_>>().join(", ")
        };
        let mut detail = format!(
            "{} is a VPN gateway ({}). NetworkPolicy blocks: {}.",
            subject.trim_start_matches("k8s/"),
            list_some(&signals, 3),
            parts.join("; ")
        );
        if !blocked_in.is_empty() {
            detail.push_str(&format!(" Ingress is restricted by {}.", policies_of(&sel_in)));
        }
        if !blocked_eg.is_empty() {
            detail.push_str(&format!(" Egress is restricted by {}.", policies_of(&sel_eg)));
        }
        if peers.is_empty() {
            detail.push_str(
                " The bundle does not name the remote endpoints, so 'any address outside the cluster' \
                 means no rule allows this from an ipBlock or from everywhere.",
            );
        }
        if blocked_in.iter().chain(blocked_eg.iter()).any(|(n, _)| n.protocol == "ESP") {
            detail.push_str(
                " NetworkPolicy cannot name ESP (IP protocol 50): only a rule without `ports` allows \
                 it. If every tunnel crosses NAT or forces UDP encapsulation (encap = yes), ESP travels \
                 inside UDP 4500 and this part does not apply.",
            );
        }
        let mut severity = rule.severity;
        let mut confidence = if only_esp { Confidence::Possible } else { Confidence::Likely };
        if unit.spec.host_network {
            detail.push_str(
                " This pod uses hostNetwork: most CNIs do not apply NetworkPolicy to host-network pods \
                 (Calico host endpoints and Cilium host policies are separate), so the policy likely \
                 has no effect; reported for information.",
            );
            severity = Severity::Info;
            confidence = Confidence::Possible;
        } else if only_esp {
            severity = Severity::High;
        }
        let mut evidence = vec![Evidence::new(unit.origin.clone(), format!("VPN gateway: {}", list_some(&signals, 3)))];
        if !blocked_in.is_empty() {
            for p in &sel_in {
                evidence.push(Evidence::new(
                    p.origin.child(section_pointer(p, PolicyType::Ingress)),
                    rules_excerpt(p, PolicyType::Ingress),
                ));
            }
        }
        if !blocked_eg.is_empty() {
            for p in &sel_eg {
                evidence.push(Evidence::new(
                    p.origin.child(section_pointer(p, PolicyType::Egress)),
                    rules_excerpt(p, PolicyType::Egress),
                ));
            }
        }
        let blocked_labels: BTreeSet<String> =
            blocked_in.iter().chain(blocked_eg.iter()).map(|(n, _)| n.label()).collect();
        let blocked_labels: Vec<String> = blocked_labels.into_iter().collect();
        let short_name = subject.rsplit('/').next().unwrap_or("").to_string();
        let mut f = rule.finding(
            subject,
            format!("NetworkPolicy blocks VPN tunnel traffic of {short_name} ({})", list_some(&blocked_labels, 3)),
            detail,
            evidence,
            gateway_fix(&unit, &blocked_in, &blocked_eg, &peers),
            confidence,
        );
        f.severity = severity;
        out.push(f);
    }
}

fn section_pointer(p: &NetworkPolicy, dir: PolicyType) -> &'static str {
    match dir {
        PolicyType::Ingress if !p.ingress.is_empty() => "/spec/ingress",
        PolicyType::Egress if !p.egress.is_empty() => "/spec/egress",
        _ => "/spec/policyTypes",
    }
}

fn rules_excerpt(p: &NetworkPolicy, dir: PolicyType) -> String {
    let (name, rules) = match dir {
        PolicyType::Ingress => ("ingress", &p.ingress),
        PolicyType::Egress => ("egress", &p.egress),
    };
    if rules.is_empty() {
        return format!("{name}: no rules (deny all {name})");
    }
    let parts: Vec<String> = rules.iter().map(|r| describe_rule_ports(r, dir)).collect();
    format!("{name}: {}", parts.join("; "))
}

/// Template labels without the per-revision ones a controller adds.
fn stable_labels(l: &Labels) -> Vec<(&str, &str)> {
    l.iter()
        .filter(|(k, _)| {
            !matches!(k.as_str(), "pod-template-hash" | "controller-revision-hash" | "pod-template-generation")
                && !k.starts_with("statefulset.kubernetes.io/")
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn gateway_fix(
    unit: &Unit<'_>,
    blocked_in: &[(Need, String)],
    blocked_eg: &[(Need, String)],
    peers: &[KnownPeer],
) -> String {
    let mut labels = String::new();
    for (k, v) in stable_labels(unit.labels) {
        labels.push_str(&format!("      {k}: \"{v}\"\n"));
    }
    if labels.is_empty() {
        labels.push_str("      {}\n");
    }
    let cidrs: Vec<String> = if peers.is_empty() {
        vec!["0.0.0.0/0  # or the remote endpoints' addresses".to_string()]
    } else {
        let mut v: Vec<String> = peers
            .iter()
            .map(|p| match p.addr {
                IpAddr::V4(a) => format!("{a}/32"),
                IpAddr::V6(a) => format!("{a}/128"),
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let section = |dir: &str, peer_key: &str, blocked: &[(Need, String)]| -> String {
        if blocked.is_empty() {
            return String::new();
        }
        let mut s = format!("  {dir}:\n");
        let peers_yaml: String = cidrs.iter().map(|c| format!("        - ipBlock:\n            cidr: {c}\n")).collect();
        let ports: Vec<&Need> = blocked.iter().map(|(n, _)| n).filter(|n| n.port.is_some()).collect();
        if !ports.is_empty() {
            s.push_str(&format!("    - {peer_key}:\n{peers_yaml}      ports:\n"));
            for n in ports {
                if let Some(p) = n.port {
                    s.push_str(&format!("        - protocol: {}\n          port: {p}\n", n.protocol));
                }
            }
        }
        if blocked.iter().any(|(n, _)| n.protocol == "ESP") {
            s.push_str(&format!(
                "    # ESP (IP protocol 50) can only be allowed by a rule without ports; it allows every\n    \
                 # protocol from these addresses, so keep the ipBlock to the VPN peers:\n    - {peer_key}:\n{peers_yaml}"
            ));
        }
        s
    };
    let mut types = Vec::new();
    if !blocked_in.is_empty() {
        types.push("Ingress");
    }
    if !blocked_eg.is_empty() {
        types.push("Egress");
    }
    format!(
        "Add a NetworkPolicy that allows the tunnel (policies are a union, nothing else changes):\n\
         apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {}-vpn-tunnel\n  namespace: {}\n\
         spec:\n  podSelector:\n    matchLabels:\n{labels}  policyTypes: [{}]\n{}{}",
        unit.name(),
        unit.namespace(),
        types.join(", "),
        section("ingress", "from", blocked_in),
        section("egress", "to", blocked_eg),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::testkit::*;
    use netsleuth_model::kubernetes::{Cluster, PolicyType, Service, ServicePort};
    use netsleuth_model::Location;

    fn run(net: &Network, which: usize) -> Vec<Finding> {
        let mut out = Vec::new();
        (RULES[which].check)(&Context { net, now: None }, &RULES[which], &mut out);
        out
    }

    fn dns_pods() -> Vec<netsleuth_model::kubernetes::Pod> {
        vec![
            pod("kube-system", "coredns-1", &[("k8s-app", "kube-dns")])
                .ip("10.244.0.5")
                .port(Some("dns"), 53, "UDP")
                .port(Some("dns-tcp"), 53, "TCP")
                .at("kubernetes/pods.json", "/items/7")
                .build(),
            pod("kube-system", "coredns-2", &[("k8s-app", "kube-dns")]).ip("10.244.1.5").build(),
        ]
    }

    fn base(policies: Vec<NetworkPolicy>, mut pods: Vec<netsleuth_model::kubernetes::Pod>) -> Network {
        pods.extend(dns_pods());
        Network {
            kubernetes: Cluster {
                namespaces: vec![namespace("shop", &[]), namespace("kube-system", &[])],
                network_policies: policies,
                pods,
                ..Cluster::default()
            },
            ..Network::default()
        }
    }

    fn shop_pods() -> Vec<netsleuth_model::kubernetes::Pod> {
        vec![
            pod("shop", "web-1", &[("app", "web")]).ip("10.244.2.1").build(),
            pod("shop", "web-2", &[("app", "web")]).ip("10.244.2.2").build(),
            pod("shop", "api-1", &[("app", "api")]).ip("10.244.2.3").build(),
            pod("shop", "node-agent", &[("app", "web")]).host_network().build(),
        ]
    }

    #[test]
    fn default_deny_egress_without_dns_is_reported_with_both_protocols() {
        let deny = policy("shop", "default-deny")
            .types(&[PolicyType::Egress])
            .at("kubernetes/policies.json", "/items/3")
            .build();
        let net = base(vec![deny], shop_pods());
        let out = run(&net, 0);
        assert_eq!(out.len(), 1, "{out:#?}");
        let f = &out[0];
        assert_eq!(f.rule, "POL-001");
        assert_eq!(f.subject, "k8s/NetworkPolicy/shop/default-deny");
        assert_eq!(f.severity, Severity::High);
        assert!(f.detail.contains("3 pods (api-1, web-1, web-2)"), "{}", f.detail);
        assert!(f.detail.contains("UDP 53 and TCP 53"), "{}", f.detail);
        assert!(f.detail.contains("2 DNS pods in kube-system (coredns-1, coredns-2)"), "{}", f.detail);
        assert_eq!(f.evidence[0].location, Location::json("kubernetes/policies.json", "/items/3/spec/policyTypes"));
        assert_eq!(f.evidence[1].location, Location::json("kubernetes/pods.json", "/items/7"));
        assert!(
            f.fix.contains("k8s-app: kube-dns") && f.fix.contains("protocol: UDP") && f.fix.contains("protocol: TCP")
        );
    }

    #[test]
    fn udp_only_rule_reports_tcp_missing_at_medium() {
        let p = policy("shop", "egress")
            .select(&[("app", "web")])
            .types(&[PolicyType::Egress])
            .egress(
                rule()
                    .peer(Some(&[("kubernetes.io/metadata.name", "kube-system")]), Some(&[("k8s-app", "kube-dns")]))
                    .port("UDP", 53)
                    .build(),
            )
            .at("kubernetes/policies.json", "/items/3")
            .build();
        let net = base(vec![p], shop_pods());
        let out = run(&net, 0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].severity, Severity::Medium);
        assert!(out[0].detail.contains("do not allow TCP 53"), "{}", out[0].detail);
        assert!(out[0].detail.contains("2 pods (web-1, web-2)"), "{}", out[0].detail);
        assert_eq!(out[0].evidence[0].location, Location::json("kubernetes/policies.json", "/items/3/spec/egress"));
        assert!(!out[0].fix.contains("protocol: UDP"));
    }

    #[test]
    fn dns_allowed_by_named_ports_or_second_policy_is_clean() {
        let deny = policy("shop", "default-deny").types(&[PolicyType::Egress]).build();
        let allow = policy("shop", "allow-dns")
            .types(&[PolicyType::Egress])
            .egress(
                rule()
                    .peer(Some(&[("kubernetes.io/metadata.name", "kube-system")]), Some(&[("k8s-app", "kube-dns")]))
                    .port("UDP", 53)
                    .port("TCP", 53)
                    .build(),
            )
            .build();
        let net = base(vec![deny, allow], shop_pods());
        assert!(run(&net, 0).is_empty());
    }

    #[test]
    fn cluster_ip_ip_block_does_not_count_and_is_explained() {
        let p = policy("shop", "dns-by-ip")
            .types(&[PolicyType::Egress])
            .egress(rule().ip_block("10.96.0.10/32", &[]).port("UDP", 53).port("TCP", 53).build())
            .build();
        let mut net = base(vec![p], shop_pods());
        net.kubernetes.services.push(Service {
            meta: meta("kube-system", "kube-dns", &[]),
            service_type: "ClusterIP".into(),
            cluster_ips: vec![ip("10.96.0.10")],
            headless: false,
            selector: labels(&[("k8s-app", "kube-dns")]),
            ports: vec![ServicePort {
                name: Some("dns".into()),
                protocol: "UDP".into(),
                port: 53,
                target_port: Some(IntOrString::Int(53)),
                node_port: None,
            }],
            origin: Location::json("kubernetes/services.json", "/items/0"),
        });
        let out = run(&net, 0);
        assert_eq!(out.len(), 1);
        assert!(out[0].detail.contains("names the kube-dns ClusterIP"), "{}", out[0].detail);
    }

    #[test]
    fn partial_dns_pod_coverage_and_stand_in_without_dns_pods() {
        // ipBlock holding only coredns-1's IP.
        let p = policy("shop", "one-dns")
            .types(&[PolicyType::Egress])
            .egress(rule().ip_block("10.244.0.5/32", &[]).port("UDP", 53).port("TCP", 53).build())
            .build();
        let net = base(vec![p.clone()], shop_pods());
        let out = run(&net, 0);
        assert_eq!(out.len(), 1);
        assert!(out[0].detail.contains("UDP 53 (allowed to only 1 of 2 DNS pods)"), "{}", out[0].detail);

        // Without DNS pods, a pod-selector rule to k8s-app=kube-dns still counts.
        let ok = policy("shop", "dns")
            .types(&[PolicyType::Egress])
            .egress(rule().peer(Some(&[]), Some(&[("k8s-app", "kube-dns")])).port("UDP", 53).port("TCP", 53).build())
            .build();
        let mut net = base(vec![ok], shop_pods());
        net.kubernetes.pods.retain(|p| p.meta.namespace != "kube-system");
        assert!(run(&net, 0).is_empty());
        let mut net = base(vec![p], shop_pods());
        net.kubernetes.pods.retain(|p| p.meta.namespace != "kube-system");
        let out = run(&net, 0);
        assert_eq!(out[0].confidence, Confidence::Possible);
        assert!(out[0].detail.contains("not in the bundle"), "{}", out[0].detail);
    }

    #[test]
    fn pods_under_several_policies_are_reported_once_per_namespace() {
        let deny = policy("shop", "default-deny")
            .types(&[PolicyType::Egress])
            .at("kubernetes/policies.json", "/items/1")
            .build();
        let https = |app: &str, item: &str| {
            policy("shop", &format!("https-{app}"))
                .select(&[("app", app)])
                .types(&[PolicyType::Egress])
                .egress(rule().ip_block("0.0.0.0/0", &["10.0.0.0/8"]).port("TCP", 443).build())
                .at("kubernetes/policies.json", item)
                .build()
        };
        let mut net = base(vec![deny, https("web", "/items/2"), https("api", "/items/3")], shop_pods());
        net.kubernetes.services.push(Service {
            meta: meta("kube-system", "kube-dns", &[]),
            service_type: "ClusterIP".into(),
            cluster_ips: vec![ip("10.96.0.10")],
            headless: false,
            selector: labels(&[("k8s-app", "kube-dns")]),
            ports: vec![],
            origin: Location::json("kubernetes/services.json", "/items/0"),
        });
        let out = run(&net, 0);
        assert_eq!(out.len(), 1, "{out:#?}");
        let f = &out[0];
        assert_eq!(f.subject, "k8s/Namespace/shop");
        assert!(
            f.detail.contains("3 egress policies of namespace shop (default-deny, https-api, https-web)"),
            "{}",
            f.detail
        );
        assert!(f.detail.contains("select 3 pods (api-1, web-1, web-2)"), "{}", f.detail);
        // An HTTPS rule to the internet is not a DNS rule aimed at the ClusterIP.
        assert!(!f.detail.contains("ClusterIP"), "{}", f.detail);
        let locations: Vec<String> = f.evidence.iter().map(|e| e.location.to_string()).collect();
        assert_eq!(
            locations[..3],
            [
                "kubernetes/policies.json#/items/1/spec/policyTypes",
                "kubernetes/policies.json#/items/3/spec/egress",
                "kubernetes/policies.json#/items/2/spec/egress"
            ]
        );
    }

    #[test]
    fn nodelocal_ip_block_satisfies_dns() {
        let p = policy("shop", "nodelocal")
            .types(&[PolicyType::Egress])
            .egress(rule().ip_block("169.254.20.10/32", &[]).port("UDP", 53).port("TCP", 53).build())
            .build();
        let net = base(vec![p], shop_pods());
        assert!(run(&net, 0).is_empty());
    }

    // ---- POL-002

    fn wg_pod() -> netsleuth_model::kubernetes::Pod {
        pod("vpn", "wg-gw-5d8f-abcde", &[("app", "wg-gw")])
            .owned_by("ReplicaSet/wg-gw-5d8f")
            .containers(vec![container("wireguard", "linuxserver/wireguard:1.0")])
            .port(Some("wg"), 51820, "UDP")
            .ip("10.244.3.9")
            .at("kubernetes/pods.json", "/items/12")
            .build()
    }

    fn vpn_net(policies: Vec<NetworkPolicy>, pods: Vec<netsleuth_model::kubernetes::Pod>) -> Network {
        Network {
            kubernetes: Cluster {
                namespaces: vec![namespace("vpn", &[]), namespace("monitoring", &[])],
                network_policies: policies,
                pods,
                ..Cluster::default()
            },
            ..Network::default()
        }
    }

    #[test]
    fn ingress_policy_without_wireguard_port_blocks_the_tunnel() {
        let p = policy("vpn", "default-deny")
            .ingress(
                rule().peer(Some(&[("kubernetes.io/metadata.name", "monitoring")]), None).port("TCP", 8080).build(),
            )
            .at("kubernetes/policies.json", "/items/4")
            .build();
        let net = vpn_net(vec![p], vec![wg_pod()]);
        let out = run(&net, 1);
        assert_eq!(out.len(), 1, "{out:#?}");
        let f = &out[0];
        assert_eq!(f.rule, "POL-002");
        assert_eq!(f.subject, "k8s/Deployment/vpn/wg-gw");
        assert_eq!(f.severity, Severity::Critical);
        assert!(
            f.detail.contains("ingress UDP 51820 (WireGuard) from any address outside the cluster"),
            "{}",
            f.detail
        );
        assert!(f.detail.contains("Ingress is restricted by vpn/default-deny"), "{}", f.detail);
        assert_eq!(f.evidence[1].location, Location::json("kubernetes/policies.json", "/items/4/spec/ingress"));
        assert!(f.evidence[1].excerpt.contains("ingress: TCP 8080 from 1 peer"), "{}", f.evidence[1].excerpt);
        assert!(f.fix.contains("protocol: UDP\n          port: 51820"), "{}", f.fix);
        assert!(f.fix.contains("app: \"wg-gw\""), "{}", f.fix);
    }

    #[test]
    fn open_wireguard_port_is_clean_and_esp_is_reported_for_ipsec() {
        let p = policy("vpn", "allow-wg").ingress(rule().ip_block("0.0.0.0/0", &[]).port("UDP", 51820).build()).build();
        let net = vpn_net(vec![p.clone()], vec![wg_pod()]);
        assert!(run(&net, 1).is_empty());

        // strongSwan gateway: 500/4500 allowed, but ports listed so ESP is blocked.
        let ike = policy("vpn", "allow-ike")
            .ingress(rule().ip_block("0.0.0.0/0", &[]).port("UDP", 500).port("UDP", 4500).build())
            .build();
        let sw = pod("vpn", "ipsec-gw", &[("app", "ipsec")])
            .containers(vec![container("charon", "strongswan/strongswan:6")])
            .build();
        let out = run(&vpn_net(vec![ike], vec![sw]), 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].subject, "k8s/Pod/vpn/ipsec-gw");
        assert_eq!(out[0].severity, Severity::High);
        assert_eq!(out[0].confidence, Confidence::Possible);
        assert!(
            out[0].detail.contains("ingress ESP (IP protocol 50) from any address outside the cluster"),
            "{}",
            out[0].detail
        );
        assert!(out[0].fix.contains("without ports"), "{}", out[0].fix);
    }

    #[test]
    fn host_network_gateway_is_information_only_and_non_gateways_are_ignored() {
        let p = policy("vpn", "default-deny").build();
        let hn = pod("vpn", "wg-host", &[])
            .containers(vec![container("wg", "ghcr.io/wg-easy/wg-easy:14")])
            .host_network()
            .build();
        let web = pod("vpn", "web", &[("app", "web")]).build();
        let out = run(&vpn_net(vec![p], vec![hn, web]), 1);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].subject, "k8s/Pod/vpn/wg-host");
        assert_eq!(out[0].severity, Severity::Info);
        assert!(out[0].detail.contains("hostNetwork"));
    }

    #[test]
    fn known_peers_are_named() {
        use netsleuth_model::host::HostRole;
        use netsleuth_model::wireguard::{WireGuardInterface, WireGuardPeer};
        let p = policy("vpn", "only-one-peer")
            .types(&[PolicyType::Ingress, PolicyType::Egress])
            .ingress(rule().ip_block("198.51.100.7/32", &[]).port("UDP", 51820).build())
            .egress(rule().ip_block("198.51.100.0/24", &[]).port("UDP", 51820).build())
            .build();
        let mut net = vpn_net(vec![p], vec![wg_pod()]);
        let mut h = host("wg-gw-pod", Some(HostRole::Pod));
        h.pod = Some("vpn/wg-gw-5d8f-abcde".into());
        let peer = |key: &str, ep: &str| WireGuardPeer {
            public_key: key.into(),
            preshared_key: None,
            endpoint: Some(ep.into()),
            allowed_ips: vec![],
            latest_handshake: None,
            rx_bytes: None,
            tx_bytes: None,
            persistent_keepalive: None,
            origin: Location::line("hosts/wg-gw-pod/wg-dump.txt", 2),
        };
        h.wireguard.push(WireGuardInterface {
            name: "wg0".into(),
            private_key: None,
            public_key: None,
            listen_port: Some(51820),
            fwmark: None,
            addresses: vec![],
            mtu: None,
            table: None,
            peers: vec![peer("PEERONE1xxxx", "198.51.100.7:51820"), peer("PEERTWO2xxxx", "203.0.113.20:51820")],
            origin: Location::line("hosts/wg-gw-pod/wg-dump.txt", 1),
            from_runtime: true,
        });
        net.hosts.push(h);
        let out = run(&net, 1);
        assert_eq!(out.len(), 1);
        let d = &out[0].detail;
        assert!(d.contains("ingress UDP 51820 (WireGuard) from WireGuard peer PEERTWO2… (203.0.113.20)"), "{d}");
        assert!(d.contains("egress UDP 51820 (WireGuard) to WireGuard peer PEERTWO2… (203.0.113.20)"), "{d}");
        assert!(!d.contains("PEERONE1"), "{d}");
        assert!(out[0].fix.contains("cidr: 203.0.113.20/32"), "{}", out[0].fix);
    }
}
