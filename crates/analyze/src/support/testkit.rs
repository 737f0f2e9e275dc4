//! Test builders for model objects, so rule tests can state a cluster in a few lines
//! without depending on the parsers (written in parallel).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use netsleuth_model::host::{Host, HostRole, Interface, InterfaceKind, Nameserver, ResolvConf};
use netsleuth_model::kubernetes::{
    Condition, ConfigMap, Container, ContainerPort, IntOrString, IpBlock, LabelSelector, Namespace, NetworkPolicy,
    NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicyRule, Node, ObjectMeta, Pod, PodSpec, PolicyType, Workload,
    WorkloadKind,
};
use netsleuth_model::Location;

pub(crate) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
}

pub(crate) fn meta(ns: &str, name: &str, l: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta { name: name.into(), namespace: ns.into(), labels: labels(l), ..ObjectMeta::default() }
}

pub(crate) fn selector(l: &[(&str, &str)]) -> LabelSelector {
    LabelSelector { match_labels: labels(l), match_expressions: Vec::new() }
}

pub(crate) fn net(s: &str) -> IpNet {
    s.parse().expect("test CIDR")
}

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().expect("test IP")
}

pub(crate) fn container(name: &str, image: &str) -> Container {
    Container { name: name.into(), image: Some(image.into()), ..Container::default() }
}

pub(crate) fn port(name: Option<&str>, port: u16, proto: &str) -> ContainerPort {
    ContainerPort { name: name.map(str::to_string), container_port: port, protocol: proto.into(), host_port: None }
}

pub(crate) struct PodB(Pod);

pub(crate) fn pod(ns: &str, name: &str, l: &[(&str, &str)]) -> PodB {
    PodB(Pod {
        meta: meta(ns, name, l),
        spec: PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("nginx".into()),
                pointer: "/spec/containers/0".into(),
                ..Container::default()
            }],
            ..PodSpec::default()
        },
        phase: Some("Running".into()),
        pod_ips: Vec::new(),
        host_ip: None,
        origin: Location::json("kubernetes/pods.json", "/items/0"),
    })
}

impl PodB {
    pub(crate) fn ip(mut self, a: &str) -> Self {
        self.0.pod_ips.push(ip(a));
        self
    }
    pub(crate) fn node(mut self, n: &str) -> Self {
        self.0.spec.node_name = Some(n.into());
        self
    }
    pub(crate) fn host_network(mut self) -> Self {
        self.0.spec.host_network = true;
        self
    }
    pub(crate) fn owned_by(mut self, o: &str) -> Self {
        self.0.meta.owners.push(o.into());
        self
    }
    pub(crate) fn annotation(mut self, k: &str, v: &str) -> Self {
        self.0.meta.annotations.insert(k.into(), v.into());
        self
    }
    pub(crate) fn at(mut self, path: &str, pointer: &str) -> Self {
        self.0.origin = Location::json(path, pointer);
        self
    }
    pub(crate) fn phase(mut self, p: &str) -> Self {
        self.0.phase = Some(p.into());
        self
    }
    pub(crate) fn dns_policy(mut self, p: &str) -> Self {
        self.0.spec.dns_policy = Some(p.into());
        self
    }
    /// Replaces the containers (pointers set to `/spec/containers/<i>`).
    pub(crate) fn containers(mut self, cs: Vec<Container>) -> Self {
        self.0.spec.containers = cs
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                c.pointer = format!("/spec/containers/{i}");
                c
            })
            .collect();
        self
    }
    pub(crate) fn port(mut self, name: Option<&str>, p: u16, proto: &str) -> Self {
        if let Some(c) = self.0.spec.containers.first_mut() {
            c.ports.push(port(name, p, proto));
        }
        self
    }
    pub(crate) fn build(self) -> Pod {
        self.0
    }
}

pub(crate) struct WorkloadB(Workload);

pub(crate) fn workload(kind: WorkloadKind, ns: &str, name: &str, l: &[(&str, &str)]) -> WorkloadB {
    WorkloadB(Workload {
        kind,
        meta: meta(ns, name, l),
        replicas: None,
        selector: selector(l),
        template_labels: labels(l),
        template_annotations: BTreeMap::new(),
        template: PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("nginx".into()),
                pointer: "/spec/template/spec/containers/0".into(),
                ..Container::default()
            }],
            ..PodSpec::default()
        },
        origin: Location::json("kubernetes/workloads.json", "/items/0"),
    })
}

impl WorkloadB {
    pub(crate) fn replicas(mut self, n: i32) -> Self {
        self.0.replicas = Some(n);
        self
    }
    pub(crate) fn template_annotation(mut self, k: &str, v: &str) -> Self {
        self.0.template_annotations.insert(k.into(), v.into());
        self
    }
    pub(crate) fn host_network(mut self) -> Self {
        self.0.template.host_network = true;
        self
    }
    pub(crate) fn at(mut self, path: &str, pointer: &str) -> Self {
        self.0.origin = Location::json(path, pointer);
        self
    }
    /// Replaces the containers (pointers set to `/spec/template/spec/containers/<i>`).
    pub(crate) fn containers(mut self, cs: Vec<Container>) -> Self {
        self.0.template.containers = cs
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                c.pointer = format!("/spec/template/spec/containers/{i}");
                c
            })
            .collect();
        self
    }
    pub(crate) fn build(self) -> Workload {
        self.0
    }
}

pub(crate) fn namespace(name: &str, l: &[(&str, &str)]) -> Namespace {
    let mut all = labels(l);
    all.insert("kubernetes.io/metadata.name".into(), name.into());
    Namespace {
        meta: ObjectMeta { name: name.into(), labels: all, ..ObjectMeta::default() },
        origin: Location::json("kubernetes/namespaces.json", "/items/0"),
    }
}

pub(crate) fn node(name: &str, pod_cidr: Option<&str>, internal_ip: &str) -> Node {
    Node {
        meta: ObjectMeta { name: name.into(), ..ObjectMeta::default() },
        pod_cidrs: pod_cidr.map(net).into_iter().collect(),
        addresses: vec![("InternalIP".into(), internal_ip.into())],
        conditions: vec![Condition { kind: "Ready".into(), status: "True".into(), reason: None, message: None }],
        origin: Location::json("kubernetes/nodes.json", "/items/0"),
    }
}

pub(crate) fn config_map(ns: &str, name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        meta: meta(ns, name, &[]),
        data: labels(data),
        origin: Location::json("kubernetes/configmaps.json", "/items/0"),
    }
}

/// A NetworkPolicy builder: empty pod selector and no rules until told otherwise.
pub(crate) struct PolicyB(NetworkPolicy);

pub(crate) fn policy(ns: &str, name: &str) -> PolicyB {
    PolicyB(NetworkPolicy {
        meta: meta(ns, name, &[]),
        pod_selector: LabelSelector::default(),
        policy_types: vec![PolicyType::Ingress],
        policy_types_explicit: false,
        ingress: Vec::new(),
        egress: Vec::new(),
        origin: Location::json("kubernetes/policies.json", "/items/0"),
    })
}

impl PolicyB {
    pub(crate) fn select(mut self, l: &[(&str, &str)]) -> Self {
        self.0.pod_selector = selector(l);
        self
    }
    pub(crate) fn types(mut self, t: &[PolicyType]) -> Self {
        self.0.policy_types = t.to_vec();
        self.0.policy_types_explicit = true;
        self
    }
    pub(crate) fn egress(mut self, mut r: NetworkPolicyRule) -> Self {
        r.pointer = format!("/spec/egress/{}", self.0.egress.len());
        self.0.egress.push(r);
        if !self.0.policy_types_explicit && !self.0.policy_types.contains(&PolicyType::Egress) {
            self.0.policy_types.push(PolicyType::Egress);
        }
        self
    }
    pub(crate) fn ingress(mut self, mut r: NetworkPolicyRule) -> Self {
        r.pointer = format!("/spec/ingress/{}", self.0.ingress.len());
        self.0.ingress.push(r);
        self
    }
    pub(crate) fn at(mut self, path: &str, pointer: &str) -> Self {
        self.0.origin = Location::json(path, pointer);
        self
    }
    pub(crate) fn build(self) -> NetworkPolicy {
        self.0
    }
}

/// A rule builder (`from`/`to` peers and ports).
#[derive(Default)]
pub(crate) struct RuleB(NetworkPolicyRule);

pub(crate) fn rule() -> RuleB {
    RuleB::default()
}

impl RuleB {
    /// A peer with optional namespace and pod selectors (`Some(&[])` = `{}`).
    pub(crate) fn peer(mut self, ns: Option<&[(&str, &str)]>, pods: Option<&[(&str, &str)]>) -> Self {
        self.0.peers.push(NetworkPolicyPeer {
            pod_selector: pods.map(selector),
            namespace_selector: ns.map(selector),
            ip_block: None,
        });
        self
    }
    pub(crate) fn ip_block(mut self, cidr: &str, except: &[&str]) -> Self {
        self.0.peers.push(NetworkPolicyPeer {
            pod_selector: None,
            namespace_selector: None,
            ip_block: Some(IpBlock { cidr: net(cidr), except: except.iter().map(|e| net(e)).collect() }),
        });
        self
    }
    pub(crate) fn port(mut self, proto: &str, p: u16) -> Self {
        self.0.ports.push(NetworkPolicyPort {
            protocol: proto.into(),
            port: Some(IntOrString::Int(i64::from(p))),
            end_port: None,
        });
        self
    }
    pub(crate) fn port_range(mut self, proto: &str, p: u16, end: u16) -> Self {
        self.0.ports.push(NetworkPolicyPort {
            protocol: proto.into(),
            port: Some(IntOrString::Int(i64::from(p))),
            end_port: Some(end),
        });
        self
    }
    pub(crate) fn named_port(mut self, proto: &str, name: &str) -> Self {
        self.0.ports.push(NetworkPolicyPort {
            protocol: proto.into(),
            port: Some(IntOrString::String(name.into())),
            end_port: None,
        });
        self
    }
    pub(crate) fn build(self) -> NetworkPolicyRule {
        self.0
    }
}

pub(crate) fn host(name: &str, role: Option<HostRole>) -> Host {
    Host { name: name.into(), role, ..Host::default() }
}

pub(crate) fn resolv(host: &str, nameservers: &[&str], search: &[&str], options: &[&str]) -> ResolvConf {
    let path = format!("hosts/{host}/resolv.conf");
    let ndots = options.iter().find_map(|o| o.strip_prefix("ndots:")).and_then(|v| v.parse().ok());
    ResolvConf {
        nameservers: nameservers
            .iter()
            .enumerate()
            .map(|(i, a)| Nameserver { addr: ip(a), origin: Location::line(&path, i as u32 + 1) })
            .collect(),
        search: search.iter().map(|s| (*s).to_string()).collect(),
        search_origin: (!search.is_empty()).then(|| Location::line(&path, nameservers.len() as u32 + 1)),
        ndots,
        timeout: None,
        attempts: None,
        options: options.iter().map(|s| (*s).to_string()).collect(),
        options_origin: (!options.is_empty()).then(|| Location::line(&path, nameservers.len() as u32 + 2)),
        origin: Location::file(path),
    }
}

pub(crate) fn interface(host: &str, name: &str, kind: InterfaceKind, addrs: &[&str]) -> Interface {
    Interface {
        index: None,
        name: name.into(),
        kind,
        mtu: Some(1500),
        up: true,
        mac: None,
        addresses: addrs.iter().map(|a| net(a)).collect(),
        master: None,
        link: None,
        link_netnsid: None,
        origin: Location::json(format!("hosts/{host}/ip-addr.json"), "/0"),
    }
}
