//! NetworkPolicy evaluation with Kubernetes semantics: which policies isolate a pod for
//! ingress/egress, and whether the union of their rules lets a given peer through.
//!
//! Semantics implemented (networking.k8s.io/v1): only policies of the pod's namespace
//! select it; a pod selected by no policy of a direction is not isolated in it; rules of
//! all selecting policies are a union; a rule without peers matches every peer and without
//! ports every port and protocol; in one peer `namespaceSelector` and `podSelector` are
//! ANDed, `podSelector` alone means the policy's namespace; `ipBlock` honours `except`;
//! named ports resolve against the destination pod's container ports (protocol included);
//! `endPort` makes a range. Whether an `ipBlock` also matches pod IPs is implementation
//! defined; this follows Calico and counts pod IPs (a missed finding rather than a wrong one).
//! Host-network pods are treated as not isolated by `egress`/`ingress`/`allows` (most CNIs
//! do not apply NetworkPolicy to them); `selecting` and `verdict` report the raw policies.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use netsleuth_model::kubernetes::{
    Cluster, IntOrString, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicyRule, PodSpec, PolicyType,
};

use super::Labels;

/// A pod as policy evaluation sees it.
#[derive(Debug, Clone, Copy)]
pub struct PodRef<'a> {
    pub namespace: &'a str,
    pub labels: &'a Labels,
    /// For named ports; None when the pod's containers are unknown.
    pub spec: Option<&'a PodSpec>,
    /// Pod IPs, for `ipBlock` peers (empty when unknown).
    pub ips: &'a [IpAddr],
}

/// The other end of a flow: a pod, or an address outside what the bundle's pods describe.
#[derive(Debug, Clone, Copy)]
pub enum Peer<'a> {
    Pod(PodRef<'a>),
    Ip(IpAddr),
}

impl Peer<'_> {
    fn ips(&self) -> &[IpAddr] {
        match self {
            Peer::Pod(p) => p.ips,
            Peer::Ip(a) => std::slice::from_ref(a),
        }
    }
}

/// Protocol and destination port of a flow. `port: None` means "some port, unknown"
/// for TCP/UDP/SCTP, and is the only form for portless protocols such as ESP, which
/// only a rule without `ports` can allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traffic<'a> {
    pub protocol: &'a str,
    pub port: Option<u16>,
}

impl Traffic<'static> {
    pub const fn udp(port: u16) -> Traffic<'static> {
        Traffic { protocol: "UDP", port: Some(port) }
    }
    pub const fn tcp(port: u16) -> Traffic<'static> {
        Traffic { protocol: "TCP", port: Some(port) }
    }
    /// IP protocol 50: NetworkPolicy cannot name it.
    pub const fn esp() -> Traffic<'static> {
        Traffic { protocol: "ESP", port: None }
    }
}

impl std::fmt::Display for Traffic<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "{} {p}", self.protocol),
            None => f.write_str(self.protocol),
        }
    }
}

/// The outcome of evaluating one direction for one pod.
#[derive(Debug, Clone)]
pub enum Verdict<'a> {
    /// No policy of this direction selects the pod: everything is allowed.
    NotIsolated,
    /// A rule of a selecting policy allows the flow (the first one found).
    Allowed { policy: &'a NetworkPolicy, rule: &'a NetworkPolicyRule },
    /// Selected, and no rule of these policies allows the flow.
    Denied { policies: Vec<&'a NetworkPolicy> },
}

/// A [`Verdict`] that does not list the denying policies (it is `Copy`).
#[derive(Debug, Clone, Copy)]
pub enum Decision<'a> {
    NotIsolated,
    Allowed { policy: &'a NetworkPolicy, rule: &'a NetworkPolicyRule },
    Denied,
}

impl Decision<'_> {
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Decision::Denied)
    }
}

impl Verdict<'_> {
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Verdict::Denied { .. })
    }
}

/// Policies indexed by namespace, and namespace labels, for fast repeated evaluation.
#[derive(Debug)]
pub struct PolicyIndex<'a> {
    by_ns: HashMap<&'a str, Vec<&'a NetworkPolicy>>,
    ns_labels: HashMap<&'a str, &'a Labels>,
}

impl<'a> PolicyIndex<'a> {
    pub fn new(cluster: &'a Cluster) -> PolicyIndex<'a> {
        let mut by_ns: HashMap<&str, Vec<&NetworkPolicy>> = HashMap::new();
        for p in &cluster.network_policies {
            by_ns.entry(p.meta.namespace.as_str()).or_default().push(p);
        }
        let ns_labels = cluster.namespaces.iter().map(|n| (n.meta.name.as_str(), &n.meta.labels)).collect();
        PolicyIndex { by_ns, ns_labels }
    }

    /// Whether any policy of this namespace has this policy type.
    pub fn namespace_has(&self, namespace: &str, dir: PolicyType) -> bool {
        self.by_ns.get(namespace).is_some_and(|ps| ps.iter().any(|p| p.has_type(dir)))
    }

    /// Policies of the pod's namespace that select it for `dir`.
    pub fn selecting(&self, namespace: &str, labels: &Labels, dir: PolicyType) -> Vec<&'a NetworkPolicy> {
        self.by_ns
            .get(namespace)
            .map(|ps| ps.iter().copied().filter(|p| p.has_type(dir) && p.pod_selector.matches(labels)).collect())
            .unwrap_or_default()
    }

    /// Labels of a namespace; Kubernetes always sets `kubernetes.io/metadata.name`, so a
    /// namespace without an object in the bundle still has that one.
    pub fn namespace_labels(&self, ns: &str) -> Cow<'a, Labels> {
        match self.ns_labels.get(ns) {
            Some(l) => Cow::Borrowed(*l),
            None => Cow::Owned(BTreeMap::from([("kubernetes.io/metadata.name".to_string(), ns.to_string())])),
        }
    }

    /// Evaluates `dir` for `subject` (the pod the policies select) against `other` (the
    /// peer: destination for egress, source for ingress), given the selecting policies.
    pub fn verdict(
        &self,
        selecting: &[&'a NetworkPolicy],
        dir: PolicyType,
        subject: &PodRef<'_>,
        other: &Peer<'_>,
        traffic: Traffic<'_>,
    ) -> Verdict<'a> {
        match self.decide(selecting, dir, subject, other, traffic) {
            Decision::NotIsolated => Verdict::NotIsolated,
            Decision::Allowed { policy, rule } => Verdict::Allowed { policy, rule },
            Decision::Denied => Verdict::Denied { policies: selecting.to_vec() },
        }
    }

    /// [`PolicyIndex::verdict`] without naming the denying policies (no allocation), for
    /// hot loops.
    pub fn decide(
        &self,
        selecting: &[&'a NetworkPolicy],
        dir: PolicyType,
        subject: &PodRef<'_>,
        other: &Peer<'_>,
        traffic: Traffic<'_>,
    ) -> Decision<'a> {
        if selecting.is_empty() {
            return Decision::NotIsolated;
        }
        // The destination pod resolves named ports: the peer for egress, the subject for ingress.
        let dest_spec = match dir {
            PolicyType::Egress => match other {
                Peer::Pod(p) => p.spec,
                Peer::Ip(_) => None,
            },
            PolicyType::Ingress => subject.spec,
        };
        for policy in selecting {
            let rules = match dir {
                PolicyType::Egress => &policy.egress,
                PolicyType::Ingress => &policy.ingress,
            };
            for rule in rules {
                if ports_match(&rule.ports, dest_spec, traffic) && self.peers_match(policy, rule, other) {
                    return Decision::Allowed { policy, rule };
                }
            }
        }
        Decision::Denied
    }

    /// Egress of pod `src` towards `dst`. Host-network pods are not isolated: most CNIs
    /// do not apply NetworkPolicy to them.
    pub fn egress(&self, src: &PodRef<'_>, dst: &Peer<'_>, traffic: Traffic<'_>) -> Verdict<'a> {
        if src.spec.is_some_and(|s| s.host_network) {
            return Verdict::NotIsolated;
        }
        let selecting = self.selecting(src.namespace, src.labels, PolicyType::Egress);
        self.verdict(&selecting, PolicyType::Egress, src, dst, traffic)
    }

    /// Ingress of pod `dst` from `src` (host-network pods: not isolated, as for egress).
    pub fn ingress(&self, dst: &PodRef<'_>, src: &Peer<'_>, traffic: Traffic<'_>) -> Verdict<'a> {
        if dst.spec.is_some_and(|s| s.host_network) {
            return Verdict::NotIsolated;
        }
        let selecting = self.selecting(dst.namespace, dst.labels, PolicyType::Ingress);
        self.verdict(&selecting, PolicyType::Ingress, dst, src, traffic)
    }

    /// Whether a flow passes both the source pod's egress and the destination pod's
    /// ingress policies (an IP end is not subject to policies).
    pub fn allows(&self, src: &Peer<'_>, dst: &Peer<'_>, traffic: Traffic<'_>) -> bool {
        if let Peer::Pod(s) = src {
            if !self.egress(s, dst, traffic).is_allowed() {
                return false;
            }
        }
        if let Peer::Pod(d) = dst {
            if !self.ingress(d, src, traffic).is_allowed() {
                return false;
            }
        }
        true
    }

    /// For peers the bundle does not name (a VPN's remote endpoints): whether some rule of
    /// the selecting policies allows `traffic` from/to at least some address outside the
    /// cluster's pods (a rule without peers, or with an `ipBlock`).
    pub fn allows_some_ip(
        &self,
        selecting: &[&'a NetworkPolicy],
        dir: PolicyType,
        subject: &PodRef<'_>,
        traffic: Traffic<'_>,
    ) -> Option<(&'a NetworkPolicy, &'a NetworkPolicyRule)> {
        if selecting.is_empty() {
            return None;
        }
        let dest_spec = match dir {
            PolicyType::Egress => None,
            PolicyType::Ingress => subject.spec,
        };
        selecting.iter().find_map(|policy| {
            let rules = match dir {
                PolicyType::Egress => &policy.egress,
                PolicyType::Ingress => &policy.ingress,
            };
            rules
                .iter()
                .find(|r| {
                    ports_match(&r.ports, dest_spec, traffic)
                        && (r.peers.is_empty() || r.peers.iter().any(|p| p.ip_block.is_some()))
                })
                .map(|r| (*policy, r))
        })
    }

    fn peers_match(&self, policy: &NetworkPolicy, rule: &NetworkPolicyRule, other: &Peer<'_>) -> bool {
        rule.peers.is_empty() || rule.peers.iter().any(|peer| self.peer_matches(&policy.meta.namespace, peer, other))
    }

    fn peer_matches(&self, policy_ns: &str, peer: &NetworkPolicyPeer, other: &Peer<'_>) -> bool {
        if let Some(block) = &peer.ip_block {
            return other.ips().iter().any(|a| block.cidr.contains(a) && !block.except.iter().any(|e| e.contains(a)));
        }
        let Peer::Pod(pod) = other else {
            // Pod and namespace selectors only ever match pods.
            return false;
        };
        match (&peer.namespace_selector, &peer.pod_selector) {
            (None, None) => false,
            (None, Some(ps)) => pod.namespace == policy_ns && ps.matches(pod.labels),
            (Some(ns), pods) => {
                ns.matches(&self.namespace_labels(pod.namespace))
                    && pods.as_ref().is_none_or(|ps| ps.matches(pod.labels))
            }
        }
    }
}

/// Whether a rule's `ports` allow the traffic (empty = every port and protocol).
pub fn ports_match(ports: &[NetworkPolicyPort], dest_spec: Option<&PodSpec>, traffic: Traffic<'_>) -> bool {
    ports.is_empty() || ports.iter().any(|p| port_matches(p, dest_spec, traffic))
}

fn port_matches(p: &NetworkPolicyPort, dest_spec: Option<&PodSpec>, traffic: Traffic<'_>) -> bool {
    let proto = if p.protocol.is_empty() { "TCP" } else { p.protocol.as_str() };
    if !proto.eq_ignore_ascii_case(traffic.protocol) {
        return false;
    }
    let Some(spec_port) = &p.port else {
        return true;
    };
    let number = match spec_port {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(s) => match s.parse::<u16>() {
            Ok(n) => Some(n),
            Err(_) => dest_spec.and_then(|spec| resolve_named_port(spec, s, proto)),
        },
    };
    let Some(start) = number else {
        // A named port the destination does not declare allows nothing.
        return false;
    };
    match traffic.port {
        None => true,
        Some(q) => match p.end_port {
            Some(end) => (start..=end).contains(&q),
            None => q == start,
        },
    }
}

/// A container port by name and protocol (named ports must match the protocol too).
fn resolve_named_port(spec: &PodSpec, name: &str, proto: &str) -> Option<u16> {
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter())
        .find(|cp| {
            cp.name.as_deref() == Some(name) && {
                let cproto = if cp.protocol.is_empty() { "TCP" } else { cp.protocol.as_str() };
                cproto.eq_ignore_ascii_case(proto)
            }
        })
        .map(|cp| cp.container_port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::testkit::*;
    use netsleuth_model::kubernetes::Pod;

    fn cluster(policies: Vec<NetworkPolicy>, pods: Vec<Pod>) -> Cluster {
        Cluster {
            namespaces: vec![namespace("prod", &[("team", "a")]), namespace("kube-system", &[])],
            network_policies: policies,
            pods,
            ..Cluster::default()
        }
    }

    fn pref(p: &Pod) -> PodRef<'_> {
        PodRef { namespace: &p.meta.namespace, labels: &p.meta.labels, spec: Some(&p.spec), ips: &p.pod_ips }
    }

    #[test]
    fn unselected_pod_is_not_isolated() {
        let c = cluster(vec![policy("prod", "db").select(&[("app", "db")]).build()], vec![]);
        let idx = PolicyIndex::new(&c);
        let web = pod("prod", "web", &[("app", "web")]).build();
        assert!(matches!(idx.ingress(&pref(&web), &Peer::Ip(ip("1.2.3.4")), Traffic::tcp(80)), Verdict::NotIsolated));
        // A policy in another namespace never selects.
        let other = pod("dev", "db", &[("app", "db")]).build();
        assert!(idx.selecting("dev", &other.meta.labels, PolicyType::Ingress).is_empty());
    }

    #[test]
    fn namespace_and_pod_selector_in_one_peer_are_anded() {
        let and = policy("prod", "p")
            .types(&[PolicyType::Egress])
            .egress(
                rule()
                    .peer(Some(&[("kubernetes.io/metadata.name", "kube-system")]), Some(&[("k8s-app", "kube-dns")]))
                    .build(),
            )
            .build();
        let c = cluster(vec![and], vec![]);
        let idx = PolicyIndex::new(&c);
        let web = pod("prod", "web", &[]).build();
        let dns = pod("kube-system", "coredns", &[("k8s-app", "kube-dns")]).build();
        let other_ks = pod("kube-system", "metrics", &[("k8s-app", "metrics")]).build();
        let dns_elsewhere = pod("prod", "fake-dns", &[("k8s-app", "kube-dns")]).build();
        assert!(idx.egress(&pref(&web), &Peer::Pod(pref(&dns)), Traffic::udp(53)).is_allowed());
        assert!(!idx.egress(&pref(&web), &Peer::Pod(pref(&other_ks)), Traffic::udp(53)).is_allowed());
        assert!(!idx.egress(&pref(&web), &Peer::Pod(pref(&dns_elsewhere)), Traffic::udp(53)).is_allowed());
        // Selectors never match an IP.
        assert!(!idx.egress(&pref(&web), &Peer::Ip(ip("10.0.0.10")), Traffic::udp(53)).is_allowed());
    }

    #[test]
    fn two_peers_are_ored_and_pod_selector_alone_is_own_namespace() {
        let or = policy("prod", "p")
            .types(&[PolicyType::Egress])
            .egress(
                rule()
                    .peer(Some(&[("kubernetes.io/metadata.name", "kube-system")]), None)
                    .peer(None, Some(&[("app", "db")]))
                    .build(),
            )
            .build();
        let c = cluster(vec![or], vec![]);
        let idx = PolicyIndex::new(&c);
        let web = pod("prod", "web", &[]).build();
        let any_ks = pod("kube-system", "x", &[]).build();
        let db_here = pod("prod", "db", &[("app", "db")]).build();
        let db_other_ns = pod("dev", "db", &[("app", "db")]).build();
        assert!(idx.egress(&pref(&web), &Peer::Pod(pref(&any_ks)), Traffic::tcp(1)).is_allowed());
        assert!(idx.egress(&pref(&web), &Peer::Pod(pref(&db_here)), Traffic::tcp(1)).is_allowed());
        assert!(!idx.egress(&pref(&web), &Peer::Pod(pref(&db_other_ns)), Traffic::tcp(1)).is_allowed());
    }

    #[test]
    fn ip_block_except_and_port_ranges() {
        let p = policy("prod", "p")
            .types(&[PolicyType::Egress])
            .egress(rule().ip_block("10.0.0.0/8", &["10.1.0.0/16"]).port_range("TCP", 8000, 8100).build())
            .build();
        let c = cluster(vec![p], vec![]);
        let idx = PolicyIndex::new(&c);
        let web = pod("prod", "web", &[]).build();
        let allowed = |a: &str, t| idx.egress(&pref(&web), &Peer::Ip(ip(a)), t).is_allowed();
        assert!(allowed("10.2.3.4", Traffic::tcp(8050)));
        assert!(!allowed("10.1.3.4", Traffic::tcp(8050)), "except");
        assert!(!allowed("10.2.3.4", Traffic::tcp(8101)), "above endPort");
        assert!(!allowed("10.2.3.4", Traffic::udp(8050)), "protocol");
        assert!(!allowed("10.2.3.4", Traffic::esp()), "ESP needs a rule without ports");
        // Pod IPs count for ipBlock (Calico semantics).
        let pod_in = pod("dev", "x", &[]).ip("10.2.0.5").build();
        assert!(idx.egress(&pref(&web), &Peer::Pod(pref(&pod_in)), Traffic::tcp(8000)).is_allowed());
    }

    #[test]
    fn named_ports_resolve_against_the_destination() {
        let p =
            policy("prod", "p").types(&[PolicyType::Egress]).egress(rule().named_port("UDP", "dns").build()).build();
        let c = cluster(vec![p], vec![]);
        let idx = PolicyIndex::new(&c);
        let web = pod("prod", "web", &[]).port(Some("dns"), 9999, "UDP").build();
        let dns =
            pod("kube-system", "coredns", &[]).port(Some("dns"), 53, "UDP").port(Some("dns-tcp"), 53, "TCP").build();
        assert!(idx.egress(&pref(&web), &Peer::Pod(pref(&dns)), Traffic::udp(53)).is_allowed());
        // The name is resolved on the destination, not on the source (which has dns=9999).
        assert!(!idx.egress(&pref(&web), &Peer::Pod(pref(&dns)), Traffic::udp(9999)).is_allowed());
        assert!(!idx.egress(&pref(&web), &Peer::Pod(pref(&dns)), Traffic::tcp(53)).is_allowed());
        assert!(!idx.egress(&pref(&web), &Peer::Ip(ip("1.1.1.1")), Traffic::udp(53)).is_allowed());
    }

    #[test]
    fn policy_types_decide_isolation() {
        // An ingress-only policy does not isolate egress.
        let p = policy("prod", "p").types(&[PolicyType::Ingress]).build();
        let c = cluster(vec![p], vec![]);
        let idx = PolicyIndex::new(&c);
        let web = pod("prod", "web", &[]).build();
        assert!(matches!(idx.egress(&pref(&web), &Peer::Ip(ip("1.1.1.1")), Traffic::tcp(1)), Verdict::NotIsolated));
        assert!(!idx.ingress(&pref(&web), &Peer::Ip(ip("1.1.1.1")), Traffic::tcp(1)).is_allowed());
        assert!(idx.allows(&Peer::Pod(pref(&web)), &Peer::Ip(ip("1.1.1.1")), Traffic::tcp(1)));
        assert!(!idx.allows(&Peer::Ip(ip("1.1.1.1")), &Peer::Pod(pref(&web)), Traffic::tcp(1)));
        // Host-network pods are not subject to NetworkPolicy.
        let hn = pod("prod", "agent", &[]).host_network().build();
        assert!(matches!(idx.ingress(&pref(&hn), &Peer::Ip(ip("1.1.1.1")), Traffic::tcp(1)), Verdict::NotIsolated));
        assert_eq!(idx.selecting("prod", &hn.meta.labels, PolicyType::Ingress).len(), 1);
    }

    #[test]
    fn rule_without_ports_allows_esp() {
        let p = policy("prod", "p")
            .types(&[PolicyType::Ingress])
            .ingress(rule().ip_block("0.0.0.0/0", &[]).build())
            .build();
        let c = cluster(vec![p], vec![]);
        let idx = PolicyIndex::new(&c);
        let gw = pod("prod", "gw", &[]).build();
        assert!(idx.ingress(&pref(&gw), &Peer::Ip(ip("203.0.113.9")), Traffic::esp()).is_allowed());
        let sel = idx.selecting("prod", &gw.meta.labels, PolicyType::Ingress);
        assert!(idx.allows_some_ip(&sel, PolicyType::Ingress, &pref(&gw), Traffic::udp(51820)).is_some());
    }
}
