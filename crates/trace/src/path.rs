//! `trace`: follows one packet from a pod, host or address to an address, Service or pod
//! across every layer the bundle describes, and says where and why it stops.
//!
//! Build a [`Tracer`] once per bundle (it indexes addresses, pods, Services and policies),
//! then call [`Tracer::trace`] per question; [`trace`] does both for a single question.

mod cloud;
mod endpoint;
pub(crate) mod firewall_walk;
mod kube;
mod walk;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use netsleuth_analyze::support::PolicyIndex;
use netsleuth_model::kubernetes::{Pod, Service};
use netsleuth_model::{Evidence, Layer, Network};
use serde::Serialize;

pub use endpoint::{Destination, Endpoint, Protocol, ServicePortRef};

/// What a hop did with the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Forward,
    Deliver,
    Drop,
    /// The bundle does not say (a match that cannot be evaluated, missing state).
    Unknown,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Forward => "forward",
            Action::Deliver => "deliver",
            Action::Drop => "drop",
            Action::Unknown => "unknown",
        }
    }
}

/// One step of the path: which component, at which layer, did what and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    pub layer: Layer,
    /// What decided, as a path: `host/gw/route main`, `k8s/NetworkPolicy/shop/deny`.
    pub component: String,
    pub action: Action,
    pub reason: String,
    pub evidence: Vec<Evidence>,
}

/// How a trace ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DispositionKind {
    Delivered,
    Dropped,
    NoRoute,
    Loop,
    /// The packet leaves what the bundle describes (a tunnel or gateway whose far end is
    /// not in it, the internet).
    ExitsNetwork,
    /// A hop's outcome is unknown, or several answers are possible.
    Ambiguous,
    /// Artifacts needed to follow the packet are missing (`Trace::missing` names them).
    InsufficientInfo,
}

impl DispositionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DispositionKind::Delivered => "delivered",
            DispositionKind::Dropped => "dropped",
            DispositionKind::NoRoute => "no-route",
            DispositionKind::Loop => "loop",
            DispositionKind::ExitsNetwork => "exits-network",
            DispositionKind::Ambiguous => "ambiguous",
            DispositionKind::InsufficientInfo => "insufficient-info",
        }
    }

    /// Delivered or handed on beyond the bundle: the path works as far as it can be seen.
    pub fn is_success(self) -> bool {
        matches!(self, DispositionKind::Delivered | DispositionKind::ExitsNetwork)
    }
}

impl fmt::Display for DispositionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disposition {
    pub kind: DispositionKind,
    /// The component where the trace ended (the last hop's).
    pub at: String,
    pub reason: String,
}

/// The packet as traced, as it starts (after Service resolution: `dst` is the chosen
/// endpoint; a NodePort destination stays the node address and port).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacketInfo {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: String,
    pub dst_port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trace {
    pub packet: PacketInfo,
    pub hops: Vec<Hop>,
    pub disposition: Disposition,
    /// What the trace took for granted where the bundle is silent.
    pub assumptions: Vec<String>,
    /// Artifacts whose absence limited the trace (bundle-relative paths or object kinds).
    pub missing: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct TraceOptions {
    /// Source port, when known (NACL return-path and source-port matches use it).
    pub src_port: Option<u16>,
    /// Hosts to cross at most before the trace ends as a loop (default 32).
    pub max_hosts: Option<usize>,
}

/// Why a question cannot be traced (a usage error: a name that is not in the bundle).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TraceError {
    #[error("cannot parse {what} {input:?}: {why}")]
    Syntax { what: &'static str, input: String, why: String },
    #[error("no pod {namespace}/{name} in the bundle ({known})")]
    UnknownPod { namespace: String, name: String, known: String },
    #[error("no host {name} in the bundle (hosts: {known})")]
    UnknownHost { name: String, known: String },
    #[error("no Service {namespace}/{name} in the bundle ({known})")]
    UnknownService { namespace: String, name: String, known: String },
    #[error("Service {service} has no port {port} (ports: {known})")]
    UnknownServicePort { service: String, port: String, known: String },
    #[error("{what} has no usable address in the bundle")]
    NoAddress { what: String },
}

/// Indexes over one bundle for repeated traces.
pub struct Tracer<'a> {
    net: &'a Network,
    policy: PolicyIndex<'a>,
    /// Address → hosts (indexes into `net.hosts`) with an interface holding it.
    owners: HashMap<IpAddr, Vec<usize>>,
    pods_by_ip: HashMap<IpAddr, Vec<&'a Pod>>,
    pods_by_name: HashMap<(&'a str, &'a str), &'a Pod>,
    /// `namespace/name` → host index of the pod's network namespace.
    pod_hosts: HashMap<&'a str, usize>,
    /// Kubernetes node name → host index of the node.
    node_hosts: HashMap<&'a str, usize>,
    services_by_ip: HashMap<IpAddr, Vec<&'a Service>>,
    services_by_name: HashMap<(&'a str, &'a str), &'a Service>,
    /// (namespace, service name) → EndpointSlice indexes.
    slices: HashMap<(&'a str, &'a str), Vec<usize>>,
}

fn skip_address(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.is_loopback() || v.is_unspecified(),
        IpAddr::V6(v) => v.is_loopback() || v.is_unspecified() || (v.segments()[0] & 0xffc0) == 0xfe80,
    }
}

impl<'a> Tracer<'a> {
    pub fn new(net: &'a Network) -> Tracer<'a> {
        let mut owners: HashMap<IpAddr, Vec<usize>> = HashMap::new();
        let mut pod_hosts = HashMap::new();
        let mut node_hosts = HashMap::new();
        for (i, h) in net.hosts.iter().enumerate() {
            for iface in &h.interfaces {
                for a in &iface.addresses {
                    let ip = a.addr();
                    if !skip_address(&ip) {
                        let v = owners.entry(ip).or_default();
                        if !v.contains(&i) {
                            v.push(i);
                        }
                    }
                }
            }
            // A node's folder is usually named after the node; `node` in host.json says so too.
            if h.role == Some(netsleuth_model::host::HostRole::Node) {
                node_hosts.entry(h.name.as_str()).or_insert(i);
            }
            if let Some(p) = &h.pod {
                pod_hosts.insert(p.as_str(), i);
            } else if h.role != Some(netsleuth_model::host::HostRole::Pod) {
                if let Some(n) = &h.node {
                    // A gateway host may name the node it runs on; the node's own folder wins.
                    if h.role == Some(netsleuth_model::host::HostRole::Node) || !node_hosts.contains_key(n.as_str()) {
                        node_hosts.insert(n.as_str(), i);
                    }
                }
            }
        }
        let k = &net.kubernetes;
        let mut pods_by_ip: HashMap<IpAddr, Vec<&Pod>> = HashMap::new();
        let mut pods_by_name = HashMap::new();
        for p in &k.pods {
            pods_by_name.insert((p.meta.namespace.as_str(), p.meta.name.as_str()), p);
            if !p.spec.host_network {
                for ip in &p.pod_ips {
                    pods_by_ip.entry(*ip).or_default().push(p);
                }
            }
        }
        let mut services_by_ip: HashMap<IpAddr, Vec<&Service>> = HashMap::new();
        let mut services_by_name = HashMap::new();
        for s in &k.services {
            services_by_name.insert((s.meta.namespace.as_str(), s.meta.name.as_str()), s);
            for ip in &s.cluster_ips {
                services_by_ip.entry(*ip).or_default().push(s);
            }
        }
        let mut slices: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
        for (i, es) in k.endpoint_slices.iter().enumerate() {
            if let Some(svc) = &es.service_name {
                slices.entry((es.meta.namespace.as_str(), svc.as_str())).or_default().push(i);
            }
        }
        Tracer {
            net,
            policy: PolicyIndex::new(k),
            owners,
            pods_by_ip,
            pods_by_name,
            pod_hosts,
            node_hosts,
            services_by_ip,
            services_by_name,
            slices,
        }
    }

    pub fn network(&self) -> &'a Network {
        self.net
    }

    /// Traces one packet from `from` to `to`. Errors only for names not in the bundle.
    pub fn trace(&self, from: &Endpoint, to: &Destination, opts: &TraceOptions) -> Result<Trace, TraceError> {
        walk::run(self, from, to, opts)
    }

    fn owners_of(&self, ip: &IpAddr) -> &[usize] {
        self.owners.get(ip).map(Vec::as_slice).unwrap_or(&[])
    }

    fn pod_by_ip(&self, ip: &IpAddr) -> Option<&'a Pod> {
        self.pods_by_ip.get(ip).and_then(|v| v.first().copied())
    }
}

/// One-shot convenience: indexes `net` and traces one packet.
pub fn trace(net: &Network, from: &Endpoint, to: &Destination, opts: &TraceOptions) -> Result<Trace, TraceError> {
    Tracer::new(net).trace(from, to, opts)
}

/// Up to `max` names, then `…and N more`.
fn list_some<'s>(names: impl Iterator<Item = &'s str>, max: usize) -> String {
    let all: Vec<&str> = names.collect();
    if all.is_empty() {
        return "none".into();
    }
    let mut s = all.iter().take(max).copied().collect::<Vec<_>>().join(", ");
    if all.len() > max {
        s.push_str(&format!(", …and {} more", all.len() - max));
    }
    s
}
