//! `trace`: follows one packet from a pod, host or address to an address, Service or pod
//! across every layer the bundle describes, and says where and why it stops.
//!
//! Build a [`Tracer`] once per bundle (it indexes addresses, pods, Services and policies),
//! then call [`Tracer::trace`] per question; [`trace`] does both for a single question.

mod cloud;
mod endpoint;
pub(crate) mod firewall_walk;
mod kube;
mod mtu;
mod walk;

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
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
    /// Packet size against the MTUs of this hop (where the packet leaves a host or meets
    /// an MTU it does not fit); null elsewhere and when the size is unknown.
    pub mtu: Option<HopMtu>,
}

/// One interface's MTU as the trace met it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IfaceMtu {
    pub host: String,
    pub interface: String,
    pub mtu: u32,
}

/// The packet's size (IP bytes) at a hop, with the egress interface it leaves through and
/// the interface of the next host that receives it, when the bundle has their MTUs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HopMtu {
    pub size: u32,
    pub egress: Option<IfaceMtu>,
    pub ingress: Option<IfaceMtu>,
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
    /// IP packet size in bytes (`--size`, else the largest packet the source sends); None
    /// when neither is known (MTUs are then not checked).
    pub size: Option<u32>,
    /// Don't-fragment bit (set unless `--no-df`).
    pub df: bool,
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
    /// IP packet size to trace; None: the largest packet the source sends (its egress
    /// MTU; for TCP also capped by the MSS the path settles on), stated as an assumption.
    pub size: Option<u32>,
    /// Clear the don't-fragment bit (default: set, as Linux does with PMTUD on).
    pub no_df: bool,
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

/// The indexes' hasher: FxHash (rustc's multiply-rotate), seeded per process. Building the
/// indexes of a 150,000-pod bundle spent most of its time in SipHash; Fx hashes a pod name in
/// a few cycles. Seeded so that collisions cannot be planned in advance (a bundle crafted to
/// collide only makes indexing slower, never wrong).
#[derive(Clone, Copy)]
struct FastState(u64);

impl FastState {
    fn new() -> FastState {
        FastState(std::collections::hash_map::RandomState::new().hash_one(0x6e73_u64))
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.0)
    }
}

struct FastHasher(u64);

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // hashbrown takes the bucket from the low bits and the tag from the top 7: the
        // multiply leaves its best bits high, the rotation brings some down.
        self.0.rotate_left(26)
    }
}

type FastMap<K, V> = HashMap<K, V, FastState>;

fn fast_map<K, V>(capacity: usize, state: FastState) -> FastMap<K, V> {
    HashMap::with_capacity_and_hasher(capacity, state)
}

/// Indexes over one bundle for repeated traces.
pub struct Tracer<'a> {
    net: &'a Network,
    policy: PolicyIndex<'a>,
    /// Address → hosts (indexes into `net.hosts`) with an interface holding it.
    owners: FastMap<IpAddr, Vec<usize>>,
    /// Address → the first pod (in bundle order) with that address (host-network pods left out).
    pods_by_ip: FastMap<IpAddr, &'a Pod>,
    pods_by_name: FastMap<(&'a str, &'a str), &'a Pod>,
    /// `namespace/name` → host index of the pod's network namespace.
    pod_hosts: FastMap<&'a str, usize>,
    /// Kubernetes node name → host index of the node.
    node_hosts: FastMap<&'a str, usize>,
    /// ClusterIP → the first Service (in bundle order) with it.
    services_by_ip: FastMap<IpAddr, &'a Service>,
    services_by_name: FastMap<(&'a str, &'a str), &'a Service>,
    /// (namespace, service name) → EndpointSlice indexes.
    slices: FastMap<(&'a str, &'a str), Vec<usize>>,
}

fn skip_address(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.is_loopback() || v.is_unspecified(),
        IpAddr::V6(v) => v.is_loopback() || v.is_unspecified() || (v.segments()[0] & 0xffc0) == 0xfe80,
    }
}

impl<'a> Tracer<'a> {
    pub fn new(net: &'a Network) -> Tracer<'a> {
        let st = FastState::new();
        let k = &net.kubernetes;
        let mut owners: FastMap<IpAddr, Vec<usize>> = fast_map(net.hosts.len() * 2, st);
        let mut pod_hosts = fast_map(net.hosts.len(), st);
        let mut node_hosts = fast_map(k.nodes.len().max(net.hosts.len()), st);
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
        let mut pods_by_ip: FastMap<IpAddr, &Pod> = fast_map(k.pods.len(), st);
        let mut pods_by_name = fast_map(k.pods.len(), st);
        for p in &k.pods {
            pods_by_name.insert((p.meta.namespace.as_str(), p.meta.name.as_str()), p);
            if !p.spec.host_network {
                for ip in &p.pod_ips {
                    pods_by_ip.entry(*ip).or_insert(p);
                }
            }
        }
        let mut services_by_ip: FastMap<IpAddr, &Service> = fast_map(k.services.len(), st);
        let mut services_by_name = fast_map(k.services.len(), st);
        for s in &k.services {
            services_by_name.insert((s.meta.namespace.as_str(), s.meta.name.as_str()), s);
            for ip in &s.cluster_ips {
                services_by_ip.entry(*ip).or_insert(s);
            }
        }
        let mut slices: FastMap<(&str, &str), Vec<usize>> = fast_map(k.endpoint_slices.len(), st);
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
        self.pods_by_ip.get(ip).copied()
    }
}

/// One-shot convenience: indexes `net` and traces one packet.
pub fn trace(net: &Network, from: &Endpoint, to: &Destination, opts: &TraceOptions) -> Result<Trace, TraceError> {
    Tracer::new(net).trace(from, to, opts)
}

/// Up to `max` names, then `…and N more`.
impl<'a> Tracer<'a> {
    /// The pod `namespace/name`, or an error listing the pods the namespace does have.
    pub(crate) fn pod_named(&self, namespace: &str, name: &str) -> Result<&'a Pod, TraceError> {
        self.pods_by_name.get(&(namespace, name)).copied().ok_or_else(|| TraceError::UnknownPod {
            namespace: namespace.to_string(),
            name: name.to_string(),
            known: format!(
                "pods in {namespace}: {}",
                list_some(
                    self.net
                        .kubernetes
                        .pods
                        .iter()
                        .filter(|p| p.meta.namespace == namespace)
                        .map(|p| p.meta.name.as_str()),
                    10
                )
            ),
        })
    }
}

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
