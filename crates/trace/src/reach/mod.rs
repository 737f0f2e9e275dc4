//! Reachability matrices: which selected endpoints may open a connection to which on one
//! protocol and port, under Kubernetes NetworkPolicy semantics ([`PolicyIndex`]).
//!
//! On top of the policy evaluation this module applies what Kubernetes leaves to the
//! pod's surroundings: a pod always reaches itself (the traffic never leaves it);
//! host-network pods are treated as their node (not isolated, never matched by pod or
//! namespace selectors, matched by `ipBlock` through the node address), and traffic
//! between a node (its addresses, or a host-network pod) and the pods on it is always
//! allowed.
//! Pods in phase Succeeded or Failed have no network and are left out.

pub mod render;
pub mod selector;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use netsleuth_analyze::support::{Peer, PodRef, PolicyIndex, Traffic, Verdict};
use netsleuth_model::kubernetes::{Cluster, IpBlock, NetworkPolicy, Pod, PolicyType};

pub use selector::{Scope, Selector, SelectorError};

/// One row or column of a matrix.
#[derive(Debug, Clone, Copy)]
pub enum Endpoint<'a> {
    Pod(&'a Pod),
    Ip(IpAddr),
}

impl Endpoint<'_> {
    /// `namespace/name` of a pod, the address of an IP endpoint.
    pub fn name(&self) -> String {
        match self {
            Endpoint::Pod(p) => format!("{}/{}", p.meta.namespace, p.meta.name),
            Endpoint::Ip(a) => a.to_string(),
        }
    }

    /// The aggregation key of `--by namespace`: the namespace, or `ip:ADDR`.
    pub fn group(&self) -> String {
        match self {
            Endpoint::Pod(p) => p.meta.namespace.clone(),
            Endpoint::Ip(a) => format!("ip:{a}"),
        }
    }
}

/// Transport protocols NetworkPolicy can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Protocol, String> {
        match s.to_ascii_uppercase().as_str() {
            "TCP" => Ok(Protocol::Tcp),
            "UDP" => Ok(Protocol::Udp),
            "SCTP" => Ok(Protocol::Sctp),
            _ => Err(format!("unknown protocol {s:?} (expected tcp, udp or sctp)")),
        }
    }
}

/// The verdict of one source/target pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cell {
    /// Both the source's egress and the target's ingress allow it (or do not isolate).
    Allowed,
    /// Source and target are the same pod: the traffic never leaves it.
    SelfTraffic,
    /// A node (one of its addresses, or a host-network pod on it) and a pod running on
    /// it: always allowed.
    SameNode,
    DeniedEgress,
    DeniedIngress,
    DeniedBoth,
    /// A host-network pod without any address: `ipBlock` rules cannot be evaluated.
    #[default]
    Unknown,
}

impl Cell {
    pub fn is_allowed(self) -> bool {
        matches!(self, Cell::Allowed | Cell::SelfTraffic | Cell::SameNode)
    }

    /// Short machine-readable reason (CSV `reason` column).
    pub fn reason(self) -> &'static str {
        match self {
            Cell::Allowed => "allowed",
            Cell::SelfTraffic => "self",
            Cell::SameNode => "same-node",
            Cell::DeniedEgress => "denied-egress",
            Cell::DeniedIngress => "denied-ingress",
            Cell::DeniedBoth => "denied-egress-and-ingress",
            Cell::Unknown => "unknown-no-address",
        }
    }
}

/// Why one direction of a pair was decided as it was (see [`Matrix::explain`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// No NetworkPolicy applies on this side (an IP, a host-network pod, or a pod no
    /// policy of this direction selects).
    NotIsolated,
    /// `namespace/policy` and the JSON pointer of the rule that allows it.
    AllowedBy { policy: String, rule: String },
    /// Every `namespace/policy` that isolates this side, none of which allows the flow.
    DeniedBy(Vec<String>),
}

/// Both sides of a pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub cell: Cell,
    pub egress: Side,
    pub ingress: Side,
}

/// Errors of [`Matrix::compute`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReachError {
    #[error("selector {0:?} matches no running pod of the bundle")]
    NoMatch(String),
    #[error("no {0} selector given")]
    Empty(&'static str),
    #[error(
        "a matrix of {sources} x {targets} pairs is larger than {MAX_CELLS} cells; narrow --from or --to \
         (e.g. to namespaces)"
    )]
    TooLarge { sources: usize, targets: usize },
}

/// The largest matrix [`Matrix::compute`] builds (one byte per pair): 10,000 x 25,000.
pub const MAX_CELLS: usize = 250_000_000;

/// An endpoint with what evaluation needs, computed once per row/column.
struct Prepared<'a> {
    endpoint: Endpoint<'a>,
    /// The subject of its own policies (None: IP, or host-network pod).
    subject: Option<PodRef<'a>>,
    /// How it appears as the peer of the other side's policies (None: no address).
    peer: Option<Peer<'a>>,
    host_network: bool,
    node: Option<&'a str>,
    /// Addresses of the pod's node (status.hostIP and the Node's addresses).
    node_addrs: Vec<IpAddr>,
    egress: Vec<&'a NetworkPolicy>,
    ingress: Vec<&'a NetworkPolicy>,
}

/// A reachability matrix of `sources × targets` for one protocol and port.
pub struct Matrix<'a> {
    pub protocol: Protocol,
    pub port: u16,
    index: PolicyIndex<'a>,
    sources: Vec<Prepared<'a>>,
    targets: Vec<Prepared<'a>>,
    /// Row-major, `sources.len() * targets.len()`.
    cells: Vec<Cell>,
}

impl fmt::Debug for Matrix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Matrix")
            .field("protocol", &self.protocol)
            .field("port", &self.port)
            .field("sources", &self.sources.len())
            .field("targets", &self.targets.len())
            .finish()
    }
}

/// The endpoints the selectors name, in bundle order of pods (sorted by namespace/name),
/// then IP endpoints in the order given; duplicates removed.
pub fn resolve<'a>(cluster: &'a Cluster, selectors: &[Selector]) -> Result<Vec<Endpoint<'a>>, ReachError> {
    let mut pods: Vec<&Pod> = cluster.pods.iter().filter(|p| is_live(p)).collect();
    pods.sort_by(|a, b| (&a.meta.namespace, &a.meta.name).cmp(&(&b.meta.namespace, &b.meta.name)));
    let mut picked = vec![false; pods.len()];
    let mut ips: Vec<IpAddr> = Vec::new();
    for sel in selectors {
        if let Scope::Ip(a) = sel.scope {
            if !ips.contains(&a) {
                ips.push(a);
            }
            continue;
        }
        let mut any = false;
        for (p, flag) in pods.iter().zip(picked.iter_mut()) {
            if sel.matches(p) {
                *flag = true;
                any = true;
            }
        }
        if !any {
            return Err(ReachError::NoMatch(sel.text.clone()));
        }
    }
    let mut out: Vec<Endpoint<'a>> =
        pods.iter().zip(&picked).filter(|(_, f)| **f).map(|(p, _)| Endpoint::Pod(p)).collect();
    out.extend(ips.into_iter().map(Endpoint::Ip));
    Ok(out)
}

/// Refuses matrices that would not fit in memory (150,000 x 150,000 is 22.5 GB).
fn check_size(sources: usize, targets: usize) -> Result<(), ReachError> {
    if sources.saturating_mul(targets) > MAX_CELLS {
        return Err(ReachError::TooLarge { sources, targets });
    }
    Ok(())
}

/// Pods that completed have released their address.
fn is_live(p: &Pod) -> bool {
    !matches!(p.phase.as_deref(), Some("Succeeded" | "Failed"))
}

/// The addresses of a pod's node: its `hostIP` and the Node object's addresses.
fn node_addrs(nodes: &HashMap<&str, Vec<IpAddr>>, p: &Pod) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = p.host_ip.into_iter().collect();
    if let Some(ips) = p.spec.node_name.as_deref().and_then(|n| nodes.get(n)) {
        out.extend(ips.iter().filter(|a| Some(**a) != p.host_ip));
    }
    out
}

fn prepare<'a>(index: &PolicyIndex<'a>, nodes: &HashMap<&str, Vec<IpAddr>>, e: Endpoint<'a>) -> Prepared<'a> {
    match e {
        Endpoint::Ip(a) => Prepared {
            endpoint: e,
            subject: None,
            peer: Some(Peer::Ip(a)),
            host_network: false,
            node: None,
            node_addrs: Vec::new(),
            egress: Vec::new(),
            ingress: Vec::new(),
        },
        Endpoint::Pod(p) if p.spec.host_network => {
            // Traffic of a host-network pod is the node's: its address is the node's.
            let addr = p.pod_ips.first().copied().or(p.host_ip);
            Prepared {
                endpoint: e,
                subject: None,
                peer: addr.map(Peer::Ip),
                host_network: true,
                node: p.spec.node_name.as_deref(),
                node_addrs: node_addrs(nodes, p),
                egress: Vec::new(),
                ingress: Vec::new(),
            }
        }
        Endpoint::Pod(p) => {
            let r =
                PodRef { namespace: &p.meta.namespace, labels: &p.meta.labels, spec: Some(&p.spec), ips: &p.pod_ips };
            Prepared {
                endpoint: e,
                subject: Some(r),
                peer: Some(Peer::Pod(r)),
                host_network: false,
                node: p.spec.node_name.as_deref(),
                node_addrs: node_addrs(nodes, p),
                egress: index.selecting(r.namespace, r.labels, PolicyType::Egress),
                ingress: index.selecting(r.namespace, r.labels, PolicyType::Ingress),
            }
        }
    }
}

fn same_pod(a: &Prepared<'_>, b: &Prepared<'_>) -> bool {
    match (a.endpoint, b.endpoint) {
        (Endpoint::Pod(x), Endpoint::Pod(y)) => std::ptr::eq(x, y),
        _ => false,
    }
}

impl<'a> Matrix<'a> {
    /// Computes the matrix; an error when a selector names nothing, so that a typo never
    /// yields an empty (and therefore "all clear") answer.
    pub fn compute(
        cluster: &'a Cluster,
        sources: &[Selector],
        targets: &[Selector],
        protocol: Protocol,
        port: u16,
    ) -> Result<Matrix<'a>, ReachError> {
        if sources.is_empty() {
            return Err(ReachError::Empty("source"));
        }
        if targets.is_empty() {
            return Err(ReachError::Empty("target"));
        }
        let src = resolve(cluster, sources)?;
        let dst = resolve(cluster, targets)?;
        check_size(src.len(), dst.len())?;
        Ok(Matrix::from_endpoints(cluster, &src, &dst, protocol, port))
    }

    /// Computes the matrix over given endpoints (rows may be split over threads).
    pub fn from_endpoints(
        cluster: &'a Cluster,
        sources: &[Endpoint<'a>],
        targets: &[Endpoint<'a>],
        protocol: Protocol,
        port: u16,
    ) -> Matrix<'a> {
        Matrix::build(cluster, sources, targets, protocol, port, false)
    }

    /// [`Matrix::from_endpoints`] evaluating every pair on its own, without equivalence
    /// classes: the reference the class-based computation is tested against.
    #[doc(hidden)]
    pub fn from_endpoints_pairwise(
        cluster: &'a Cluster,
        sources: &[Endpoint<'a>],
        targets: &[Endpoint<'a>],
        protocol: Protocol,
        port: u16,
    ) -> Matrix<'a> {
        Matrix::build(cluster, sources, targets, protocol, port, true)
    }

    fn build(
        cluster: &'a Cluster,
        sources: &[Endpoint<'a>],
        targets: &[Endpoint<'a>],
        protocol: Protocol,
        port: u16,
        direct: bool,
    ) -> Matrix<'a> {
        let index = PolicyIndex::new(cluster);
        let nodes: HashMap<&str, Vec<IpAddr>> = cluster
            .nodes
            .iter()
            .map(|n| (n.meta.name.as_str(), n.addresses.iter().filter_map(|(_, a)| a.parse().ok()).collect()))
            .collect();
        let sources: Vec<Prepared<'a>> = sources.iter().map(|e| prepare(&index, &nodes, *e)).collect();
        let targets: Vec<Prepared<'a>> = targets.iter().map(|e| prepare(&index, &nodes, *e)).collect();
        let traffic = Traffic { protocol: protocol.as_str(), port: Some(port) };
        let cells = if direct {
            fill(sources.len(), targets.len(), |i, j| match (sources.get(i), targets.get(j)) {
                (Some(s), Some(t)) => evaluate(&index, s, t, traffic),
                _ => Cell::Unknown,
            })
        } else {
            // Pods with the same namespace, labels, named ports and ipBlock memberships get
            // the same verdicts: evaluate one pair per class pair, then spread the result.
            let blocks = distinct_ip_blocks(cluster);
            let (src_class, src_reps) = classes(&sources, &blocks);
            let (dst_class, dst_reps) = classes(&targets, &blocks);
            let src_reps: Vec<&Prepared<'a>> = src_reps.iter().filter_map(|i| sources.get(*i)).collect();
            let dst_reps: Vec<&Prepared<'a>> = dst_reps.iter().filter_map(|j| targets.get(*j)).collect();
            // Egress depends on the source only through the policies selecting it, ingress
            // on the target only through its policies and named ports: evaluate each
            // distinct policy set against each class of the other end, then combine.
            let (src_set, src_set_reps) = policy_sets(&src_reps, |p| (&p.egress, Vec::new()));
            let (dst_set, dst_set_reps) = policy_sets(&dst_reps, |p| (&p.ingress, named_ports(p)));
            let egress_ok =
                fill(src_set_reps.len(), dst_reps.len(), |e, b| match (src_set_reps.get(e), dst_reps.get(b)) {
                    (Some(s), Some(t)) => side_allows(&index, s, PolicyType::Egress, t, traffic),
                    _ => false,
                });
            let ingress_ok =
                fill(dst_set_reps.len(), src_reps.len(), |k, a| match (dst_set_reps.get(k), src_reps.get(a)) {
                    (Some(t), Some(s)) => side_allows(&index, t, PolicyType::Ingress, s, traffic),
                    _ => false,
                });
            let (ns, nd) = (src_reps.len(), dst_reps.len());
            let table = fill(ns, nd, |a, b| {
                let e = src_set.get(a).and_then(|e| egress_ok.get(e * nd + b)).copied().unwrap_or(false);
                let i = dst_set.get(b).and_then(|k| ingress_ok.get(k * ns + a)).copied().unwrap_or(false);
                combine(e, i)
            });
            let width = dst_reps.len();
            // Where each source pod appears among the targets (its self pair).
            let target_at: HashMap<usize, usize> = targets
                .iter()
                .enumerate()
                .filter_map(|(j, t)| match t.endpoint {
                    Endpoint::Pod(p) => Some((std::ptr::from_ref(p).addr(), j)),
                    Endpoint::Ip(_) => None,
                })
                .collect();
            fill_rows(sources.len(), targets.len(), |i, row| {
                let Some(s) = sources.get(i) else { return };
                let class_row = src_class.get(i).copied().flatten().and_then(|a| table.get(a * width..(a + 1) * width));
                for ((cell, c), t) in row.iter_mut().zip(&dst_class).zip(&targets) {
                    *cell = match (class_row, c) {
                        (Some(class_row), Some(b)) => class_row.get(*b).copied().unwrap_or(Cell::Unknown),
                        // Host-network pods and addresses: pair by pair.
                        _ => evaluate(&index, s, t, traffic),
                    };
                }
                if let Endpoint::Pod(p) = s.endpoint {
                    if let Some(cell) = target_at.get(&std::ptr::from_ref(p).addr()).and_then(|j| row.get_mut(*j)) {
                        *cell = Cell::SelfTraffic;
                    }
                }
            })
        };
        Matrix { protocol, port, index, sources, targets, cells }
    }

    pub fn sources(&self) -> impl ExactSizeIterator<Item = Endpoint<'a>> + '_ {
        self.sources.iter().map(|p| p.endpoint)
    }

    pub fn targets(&self) -> impl ExactSizeIterator<Item = Endpoint<'a>> + '_ {
        self.targets.iter().map(|p| p.endpoint)
    }

    pub fn source_count(&self) -> usize {
        self.sources.len()
    }

    pub fn target_count(&self) -> usize {
        self.targets.len()
    }

    /// The verdict of source `i` to target `j` (None when out of range).
    pub fn cell(&self, i: usize, j: usize) -> Option<Cell> {
        if j >= self.targets.len() {
            return None;
        }
        self.cells.get(i.checked_mul(self.targets.len())?.checked_add(j)?).copied()
    }

    /// Row `i` of the matrix.
    pub fn row(&self, i: usize) -> &[Cell] {
        let w = self.targets.len();
        self.cells.get(i * w..(i + 1) * w).unwrap_or(&[])
    }

    /// Number of allowed pairs.
    pub fn allowed_count(&self) -> usize {
        self.cells.iter().filter(|c| c.is_allowed()).count()
    }

    /// Names the policies (and rules) behind the verdict of pair `(i, j)`.
    pub fn explain(&self, i: usize, j: usize) -> Option<Explanation> {
        let cell = self.cell(i, j)?;
        let (s, t) = (self.sources.get(i)?, self.targets.get(j)?);
        let traffic = Traffic { protocol: self.protocol.as_str(), port: Some(self.port) };
        let side = |selecting: &[&'a NetworkPolicy], dir, subject: Option<PodRef<'a>>, other: Option<Peer<'a>>| {
            let (Some(subject), Some(other)) = (subject, other) else {
                return Side::NotIsolated;
            };
            match self.index.verdict(selecting, dir, &subject, &other, traffic) {
                Verdict::NotIsolated => Side::NotIsolated,
                Verdict::Allowed { policy, rule } => {
                    Side::AllowedBy { policy: qualified(policy), rule: rule.pointer.clone() }
                }
                Verdict::Denied { policies } => Side::DeniedBy(policies.into_iter().map(qualified).collect()),
            }
        };
        Some(Explanation {
            cell,
            egress: side(&s.egress, PolicyType::Egress, s.subject, t.peer),
            ingress: side(&t.ingress, PolicyType::Ingress, t.subject, s.peer),
        })
    }

    /// Aggregates by namespace (IP endpoints each form their own group).
    pub fn by_namespace(&self) -> Aggregate {
        let groups = |eps: &[Prepared<'_>]| {
            let mut names: Vec<String> = eps.iter().map(|p| p.endpoint.group()).collect();
            names.sort();
            names.dedup();
            let of: Vec<usize> =
                eps.iter().map(|p| names.binary_search(&p.endpoint.group()).unwrap_or_default()).collect();
            (names, of)
        };
        let (rows, row_of) = groups(&self.sources);
        let (cols, col_of) = groups(&self.targets);
        let mut allowed = vec![0u64; rows.len() * cols.len()];
        let mut total = vec![0u64; rows.len() * cols.len()];
        let mut col_sizes = vec![0u64; cols.len()];
        for c in &col_of {
            if let Some(n) = col_sizes.get_mut(*c) {
                *n += 1;
            }
        }
        for (i, r) in row_of.iter().enumerate() {
            let base = r * cols.len();
            for (k, n) in col_sizes.iter().enumerate() {
                if let Some(t) = total.get_mut(base + k) {
                    *t += n;
                }
            }
            for (cell, c) in self.row(i).iter().zip(&col_of) {
                if cell.is_allowed() {
                    if let Some(a) = allowed.get_mut(base + c) {
                        *a += 1;
                    }
                }
            }
        }
        Aggregate { protocol: self.protocol, port: self.port, rows, cols, allowed, total }
    }
}

/// `namespace/name` of a policy.
fn qualified(p: &NetworkPolicy) -> String {
    format!("{}/{}", p.meta.namespace, p.meta.name)
}

/// A `rows x cols` row-major grid of `f(i, j)`, rows split over the available cores.
fn fill<T: Copy + Default + Send>(rows: usize, cols: usize, f: impl Fn(usize, usize) -> T + Sync) -> Vec<T> {
    fill_rows(rows, cols, |i, row| {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = f(i, j);
        }
    })
}

/// A `rows x cols` row-major grid whose row `i` is written by `f(i, row)`, rows split over
/// the available cores.
fn fill_rows<T: Copy + Default + Send>(rows: usize, cols: usize, f: impl Fn(usize, &mut [T]) + Sync) -> Vec<T> {
    let mut cells = vec![T::default(); rows * cols];
    if cols == 0 || rows == 0 {
        return cells;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    // Small grids are not worth a thread.
    let threads = if rows * cols < 4096 { 1 } else { threads };
    let rows_per = rows.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (chunk_i, chunk) in cells.chunks_mut(rows_per * cols).enumerate() {
            let f = &f;
            s.spawn(move || {
                for (r, row) in chunk.chunks_mut(cols).enumerate() {
                    f(chunk_i * rows_per + r, row);
                }
            });
        }
    });
    cells
}

/// Every distinct `ipBlock` (CIDR and excepts) of the cluster's policies.
fn distinct_ip_blocks(cluster: &Cluster) -> Vec<&IpBlock> {
    let mut seen: HashSet<(&IpNet, &[IpNet])> = HashSet::new();
    let mut out = Vec::new();
    for p in &cluster.network_policies {
        for rule in p.ingress.iter().chain(&p.egress) {
            for block in rule.peers.iter().filter_map(|peer| peer.ip_block.as_ref()) {
                if seen.insert((&block.cidr, block.except.as_slice())) {
                    out.push(block);
                }
            }
        }
    }
    out
}

/// What decides a pod's verdicts, besides its identity: namespace, labels, named ports
/// (name, number, protocol) and which ipBlocks contain one of its addresses.
#[derive(PartialEq, Eq, Hash)]
struct ClassKey<'a> {
    namespace: &'a str,
    labels: &'a BTreeMap<String, String>,
    named_ports: NamedPorts<'a>,
    in_blocks: Vec<bool>,
}

/// The class of each endpoint (None: host-network pods and addresses, evaluated pair by
/// pair) and a representative endpoint index per class.
fn classes(eps: &[Prepared<'_>], blocks: &[&IpBlock]) -> (Vec<Option<usize>>, Vec<usize>) {
    let mut ids: HashMap<ClassKey<'_>, usize> = HashMap::new();
    let mut reps = Vec::new();
    let class_of = eps
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let Endpoint::Pod(pod) = p.endpoint else { return None };
            if p.host_network {
                return None;
            }
            let key = ClassKey {
                namespace: &pod.meta.namespace,
                labels: &pod.meta.labels,
                named_ports: named_ports(p),
                in_blocks: blocks
                    .iter()
                    .map(|b| pod.pod_ips.iter().any(|a| b.cidr.contains(a) && !b.except.iter().any(|e| e.contains(a))))
                    .collect(),
            };
            let next = reps.len();
            let id = *ids.entry(key).or_insert(next);
            if id == next {
                reps.push(i);
            }
            Some(id)
        })
        .collect();
    (class_of, reps)
}

/// Named container ports (name, number, protocol): what named ports resolve against.
type NamedPorts<'a> = Vec<(&'a str, u16, &'a str)>;

/// The named container ports of a pod endpoint.
fn named_ports<'a>(p: &Prepared<'a>) -> NamedPorts<'a> {
    match p.endpoint {
        Endpoint::Pod(pod) => pod
            .spec
            .containers
            .iter()
            .flat_map(|c| &c.ports)
            .filter_map(|cp| cp.name.as_deref().map(|n| (n, cp.container_port, cp.protocol.as_str())))
            .collect(),
        Endpoint::Ip(_) => Vec::new(),
    }
}

/// Groups endpoints by (selecting policies, extra key): the set of each, and one
/// representative per set.
fn policy_sets<'p, 'a: 'p>(
    eps: &[&'p Prepared<'a>],
    key: impl Fn(&'p Prepared<'a>) -> (&'p Vec<&'a NetworkPolicy>, NamedPorts<'a>),
) -> (Vec<usize>, Vec<&'p Prepared<'a>>) {
    let mut ids: HashMap<(Vec<usize>, NamedPorts<'_>), usize> = HashMap::new();
    let mut reps = Vec::new();
    let set_of = eps
        .iter()
        .map(|p| {
            let (policies, extra) = key(p);
            let k = (policies.iter().map(|x| std::ptr::from_ref(*x).addr()).collect::<Vec<_>>(), extra);
            let next = reps.len();
            let id = *ids.entry(k).or_insert(next);
            if id == next {
                reps.push(*p);
            }
            id
        })
        .collect();
    (set_of, reps)
}

/// Whether `subject`'s policies of `dir` let the flow to/from `other` through.
fn side_allows(
    index: &PolicyIndex<'_>,
    subject: &Prepared<'_>,
    dir: PolicyType,
    other: &Prepared<'_>,
    traffic: Traffic<'_>,
) -> bool {
    let selecting = match dir {
        PolicyType::Egress => &subject.egress,
        PolicyType::Ingress => &subject.ingress,
    };
    match (subject.subject, other.peer) {
        (Some(subj), Some(peer)) if !selecting.is_empty() => {
            index.decide(selecting, dir, &subj, &peer, traffic).is_allowed()
        }
        (_, None) => false,
        _ => true,
    }
}

fn combine(egress_ok: bool, ingress_ok: bool) -> Cell {
    match (egress_ok, ingress_ok) {
        (true, true) => Cell::Allowed,
        (false, true) => Cell::DeniedEgress,
        (true, false) => Cell::DeniedIngress,
        (false, false) => Cell::DeniedBoth,
    }
}

/// The verdict of one pair; the hot loop of the matrix.
fn evaluate(index: &PolicyIndex<'_>, s: &Prepared<'_>, t: &Prepared<'_>, traffic: Traffic<'_>) -> Cell {
    if same_pod(s, t) {
        return Cell::SelfTraffic;
    }
    // The node's own address and the pods on it (kubelet probes, node-local traffic).
    match (s.endpoint, t.endpoint) {
        (Endpoint::Ip(a), Endpoint::Pod(_)) if t.node_addrs.contains(&a) => return Cell::SameNode,
        (Endpoint::Pod(_), Endpoint::Ip(a)) if s.node_addrs.contains(&a) => return Cell::SameNode,
        _ => {}
    }
    if (s.host_network || t.host_network)
        && matches!((s.endpoint, t.endpoint), (Endpoint::Pod(_), Endpoint::Pod(_)))
        && s.node.is_some()
        && s.node == t.node
    {
        return Cell::SameNode;
    }
    policy_cell(index, s, t, traffic)
}

/// The verdict of the policies alone (no self or same-node rule).
fn policy_cell(index: &PolicyIndex<'_>, s: &Prepared<'_>, t: &Prepared<'_>, traffic: Traffic<'_>) -> Cell {
    let (Some(s_peer), Some(t_peer)) = (s.peer, t.peer) else {
        return Cell::Unknown;
    };
    let egress_ok = match s.subject {
        Some(subj) if !s.egress.is_empty() => {
            index.decide(&s.egress, PolicyType::Egress, &subj, &t_peer, traffic).is_allowed()
        }
        _ => true,
    };
    let ingress_ok = match t.subject {
        Some(subj) if !t.ingress.is_empty() => {
            index.decide(&t.ingress, PolicyType::Ingress, &subj, &s_peer, traffic).is_allowed()
        }
        _ => true,
    };
    combine(egress_ok, ingress_ok)
}

/// A matrix aggregated by group: allowed and total pairs per (row group, column group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    pub protocol: Protocol,
    pub port: u16,
    pub rows: Vec<String>,
    pub cols: Vec<String>,
    /// Row-major counts.
    pub allowed: Vec<u64>,
    pub total: Vec<u64>,
}

impl Aggregate {
    /// (allowed, total) of a group pair.
    pub fn get(&self, i: usize, j: usize) -> (u64, u64) {
        let k = i * self.cols.len() + j;
        (self.allowed.get(k).copied().unwrap_or(0), self.total.get(k).copied().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_matrices_are_refused() {
        assert!(check_size(10_000, 25_000).is_ok());
        let err = check_size(150_000, 150_000).err();
        assert_eq!(err, Some(ReachError::TooLarge { sources: 150_000, targets: 150_000 }));
        assert!(err.is_some_and(|e| e.to_string().contains("narrow --from or --to")));
        assert!(check_size(usize::MAX, 2).is_err(), "no overflow");
    }
}
