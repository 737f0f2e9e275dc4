//! Kubernetes objects the analyses need, typed with only the fields they use.
//! Each object keeps its `origin` (file + JSON pointer) so findings can cite it.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::finding::Location;

/// Every Kubernetes object of a bundle, by kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cluster {
    pub namespaces: Vec<Namespace>,
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    pub endpoint_slices: Vec<EndpointSlice>,
    pub network_policies: Vec<NetworkPolicy>,
    pub config_maps: Vec<ConfigMap>,
    pub secrets: Vec<SecretMeta>,
    /// Deployments, DaemonSets and StatefulSets.
    pub workloads: Vec<Workload>,
    pub hpas: Vec<HorizontalPodAutoscaler>,
    pub pdbs: Vec<PodDisruptionBudget>,
    pub peer_authentications: Vec<PeerAuthentication>,
    pub sidecars: Vec<IstioSidecar>,
    pub service_entries: Vec<ServiceEntry>,
    /// Objects of kinds the model does not type, counted by kind.
    pub skipped_kinds: BTreeMap<String, u64>,
}

impl Cluster {
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
            && self.nodes.is_empty()
            && self.pods.is_empty()
            && self.services.is_empty()
            && self.network_policies.is_empty()
            && self.workloads.is_empty()
            && self.config_maps.is_empty()
    }

    pub fn namespace(&self, name: &str) -> Option<&Namespace> {
        self.namespaces.iter().find(|n| n.meta.name == name)
    }

    /// Labels of a namespace; when the Namespace object is missing, Kubernetes still
    /// sets `kubernetes.io/metadata.name`, so that label alone is returned.
    pub fn namespace_labels(&self, name: &str) -> BTreeMap<String, String> {
        match self.namespace(name) {
            Some(ns) => ns.meta.labels.clone(),
            None => BTreeMap::from([("kubernetes.io/metadata.name".to_string(), name.to_string())]),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub name: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// Annotation values, secrets already redacted.
    pub annotations: BTreeMap<String, String>,
    pub uid: Option<String>,
    /// `Kind/name` of owners (ReplicaSet/x, DaemonSet/y).
    pub owners: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Namespace {
    pub meta: ObjectMeta,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub meta: ObjectMeta,
    pub pod_cidrs: Vec<IpNet>,
    /// (type, address): InternalIP, ExternalIP, Hostname.
    pub addresses: Vec<(String, String)>,
    pub conditions: Vec<Condition>,
    pub origin: Location,
}

impl Node {
    pub fn internal_ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.addresses.iter().filter(|(t, _)| t == "InternalIP").filter_map(|(_, a)| a.parse().ok())
    }

    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Condition {
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// The pod spec fields the analyses use; shared by Pods and workload templates.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PodSpec {
    pub node_name: Option<String>,
    pub host_network: bool,
    pub dns_policy: Option<String>,
    pub service_account: Option<String>,
    pub containers: Vec<Container>,
    pub init_containers: Vec<Container>,
}

impl PodSpec {
    pub fn all_containers(&self) -> impl Iterator<Item = &Container> {
        self.init_containers.iter().chain(self.containers.iter())
    }

    /// Named container port lookup (`name` → (port, protocol)).
    pub fn named_port(&self, name: &str) -> Option<(u16, &str)> {
        self.containers
            .iter()
            .flat_map(|c| c.ports.iter())
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| (p.container_port, p.protocol.as_str()))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Container {
    pub name: String,
    pub image: Option<String>,
    pub ports: Vec<ContainerPort>,
    pub env: Vec<EnvVar>,
    pub privileged: bool,
    pub capabilities_add: Vec<String>,
    pub run_as_non_root: Option<bool>,
    pub readiness_probe: bool,
    pub liveness_probe: bool,
    pub command: Vec<String>,
    pub args: Vec<String>,
    /// JSON pointer suffix of this container inside its object (`/spec/containers/0`).
    pub pointer: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub container_port: u16,
    /// TCP, UDP or SCTP (default TCP).
    pub protocol: String,
    pub host_port: Option<u16>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    /// Literal value (redacted if secret); None when `valueFrom`.
    pub value: Option<String>,
    /// `secretKeyRef`, `configMapKeyRef`, `fieldRef` ... when `valueFrom` is used.
    pub value_from: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pod {
    pub meta: ObjectMeta,
    pub spec: PodSpec,
    pub phase: Option<String>,
    pub pod_ips: Vec<IpAddr>,
    pub host_ip: Option<IpAddr>,
    pub origin: Location,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkloadKind {
    Deployment,
    DaemonSet,
    StatefulSet,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub meta: ObjectMeta,
    /// `spec.replicas` (None for DaemonSets, or when unset: Kubernetes defaults to 1).
    pub replicas: Option<i32>,
    pub selector: LabelSelector,
    pub template_labels: BTreeMap<String, String>,
    pub template_annotations: BTreeMap<String, String>,
    pub template: PodSpec,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Service {
    pub meta: ObjectMeta,
    /// ClusterIP, NodePort, LoadBalancer, ExternalName.
    pub service_type: String,
    /// `None` (headless) is kept as the string "None" and excluded from `cluster_ips`.
    pub cluster_ips: Vec<IpAddr>,
    pub headless: bool,
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<ServicePort>,
    pub origin: Location,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    String(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServicePort {
    pub name: Option<String>,
    pub protocol: String,
    pub port: u16,
    pub target_port: Option<IntOrString>,
    pub node_port: Option<u16>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointSlice {
    pub meta: ObjectMeta,
    /// `kubernetes.io/service-name` label.
    pub service_name: Option<String>,
    pub address_type: String,
    pub endpoints: Vec<Endpoint>,
    pub ports: Vec<EndpointPort>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub addresses: Vec<IpAddr>,
    pub ready: Option<bool>,
    pub node_name: Option<String>,
    /// `Kind/namespace/name` of the target (usually a Pod).
    pub target_ref: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointPort {
    pub name: Option<String>,
    pub port: Option<u16>,
    pub protocol: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSelector {
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSelectorRequirement {
    pub key: String,
    /// In, NotIn, Exists, DoesNotExist.
    pub operator: String,
    pub values: Vec<String>,
}

impl LabelSelector {
    /// An empty selector (`{}`) selects everything.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Kubernetes label selector semantics; an unknown operator matches nothing.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|e| {
                let value = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => value.is_some_and(|v| e.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !e.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyType {
    Ingress,
    Egress,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkPolicy {
    pub meta: ObjectMeta,
    pub pod_selector: LabelSelector,
    /// Effective policy types: as written, or the Kubernetes default (Ingress, plus
    /// Egress when `egress` rules are present) when `policyTypes` is absent.
    pub policy_types: Vec<PolicyType>,
    /// Whether `policyTypes` was written explicitly.
    pub policy_types_explicit: bool,
    pub ingress: Vec<NetworkPolicyRule>,
    pub egress: Vec<NetworkPolicyRule>,
    pub origin: Location,
}

impl NetworkPolicy {
    pub fn applies_to(&self, namespace: &str, pod_labels: &BTreeMap<String, String>) -> bool {
        self.meta.namespace == namespace && self.pod_selector.matches(pod_labels)
    }

    pub fn has_type(&self, t: PolicyType) -> bool {
        self.policy_types.contains(&t)
    }
}

/// One ingress or egress rule: peers (`from`/`to`; empty = all) and ports (empty = all).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetworkPolicyRule {
    pub peers: Vec<NetworkPolicyPeer>,
    pub ports: Vec<NetworkPolicyPort>,
    /// Pointer suffix of the rule (`/spec/egress/0`).
    pub pointer: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetworkPolicyPeer {
    pub pod_selector: Option<LabelSelector>,
    pub namespace_selector: Option<LabelSelector>,
    pub ip_block: Option<IpBlock>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IpBlock {
    pub cidr: IpNet,
    pub except: Vec<IpNet>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkPolicyPort {
    /// TCP (default), UDP, SCTP.
    pub protocol: String,
    /// None = all ports of the protocol.
    pub port: Option<IntOrString>,
    pub end_port: Option<u16>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigMap {
    pub meta: ObjectMeta,
    /// Values with secrets redacted.
    pub data: BTreeMap<String, String>,
    pub origin: Location,
}

/// A Secret's metadata only: its data keys and their fingerprints, never values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretMeta {
    pub meta: ObjectMeta,
    pub secret_type: Option<String>,
    /// data/stringData key → fingerprint of its (decoded) value.
    pub keys: BTreeMap<String, String>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HorizontalPodAutoscaler {
    pub meta: ObjectMeta,
    /// (kind, name) of `scaleTargetRef`.
    pub target: (String, String),
    pub min_replicas: Option<i32>,
    pub max_replicas: Option<i32>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodDisruptionBudget {
    pub meta: ObjectMeta,
    pub selector: LabelSelector,
    pub min_available: Option<IntOrString>,
    pub max_unavailable: Option<IntOrString>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerAuthentication {
    pub meta: ObjectMeta,
    /// `spec.selector.matchLabels`; None = namespace-wide (or mesh-wide in the root ns).
    pub selector: Option<LabelSelector>,
    /// STRICT, PERMISSIVE, DISABLE, UNSET (None when no `mtls`).
    pub mtls_mode: Option<String>,
    /// Per-port overrides (port → mode).
    pub port_levels: BTreeMap<u16, String>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IstioSidecar {
    pub meta: ObjectMeta,
    pub workload_selector: Option<LabelSelector>,
    /// `spec.egress[].hosts`, flattened.
    pub egress_hosts: Vec<String>,
    /// `spec.outboundTrafficPolicy.mode`: ALLOW_ANY or REGISTRY_ONLY.
    pub outbound_traffic_policy: Option<String>,
    pub origin: Location,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceEntry {
    pub meta: ObjectMeta,
    pub hosts: Vec<String>,
    /// `spec.addresses` (IPs or CIDRs, kept as written).
    pub addresses: Vec<String>,
    pub ports: Vec<(u16, String)>,
    /// MESH_EXTERNAL / MESH_INTERNAL.
    pub location: Option<String>,
    pub resolution: Option<String>,
    pub origin: Location,
}
