//! Conversion of the private serde shapes into the model, redacting secrets on the way:
//! Secret data is only fingerprinted; env literals, ConfigMap values, annotations and
//! arguments are scanned for secrets and each one found is recorded with its pointer.

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::Engine as _;
use ipnet::IpNet;
use netsleuth_model::kubernetes::{
    Condition, ConfigMap, Container, ContainerPort, Endpoint, EndpointPort, EndpointSlice, EnvVar,
    HorizontalPodAutoscaler, IpBlock, IstioSidecar, LabelSelector, LabelSelectorRequirement, Namespace, NetworkPolicy,
    NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicyRule, Node, ObjectMeta, PeerAuthentication, Pod,
    PodDisruptionBudget, PodSpec, PolicyType, SecretMeta, Service, ServiceEntry, ServicePort, Workload, WorkloadKind,
};
use netsleuth_model::{Location, Redaction, RedactionKind};

use super::de::*;
use crate::redact::{
    name_says_secret, named_needs_redaction, pointer_token, redact_arguments, redact_named, redact_text,
};
use crate::ParseContext;

/// The annotation `kubectl apply` writes: the whole object as JSON, Secret data included.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Converts one object: the parse context (for warnings and redactions) and the
/// location of the object, which every recorded pointer extends.
pub(super) struct Conv<'c> {
    pub(super) ctx: &'c mut ParseContext,
    pub(super) origin: Location,
}

/// Result of a conversion: an error fails only this object.
pub(super) type Converted<T> = Result<T, String>;

impl Conv<'_> {
    fn at(&self, suffix: &str) -> Location {
        self.origin.child(suffix)
    }

    fn warn(&mut self, suffix: &str, message: impl Into<String>) {
        let loc = self.at(suffix);
        self.ctx.warn(loc, message);
    }

    /// Object metadata with annotation values redacted. `secret_object` makes the
    /// last-applied annotation of a Secret redacted whole (it holds the Secret's data).
    fn meta(&mut self, m: MetaDe, secret_object: bool) -> ObjectMeta {
        let annotations = self.annotations(m.annotations, "/metadata/annotations", secret_object);
        ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            labels: self.loose(m.labels, "/metadata/labels"),
            annotations,
            uid: m.uid,
            owners: m.owner_references.into_iter().map(|o| format!("{}/{}", o.kind, o.name)).collect(),
        }
    }

    /// A map of texts; a value that was a float (`version: 1.10` read as 1.1) is a
    /// warning, since the text as typed is lost and a selector may no longer match.
    fn loose(&mut self, m: LooseMap, base: &str) -> BTreeMap<String, String> {
        for key in &m.floats {
            let value = m.map.get(key).cloned().unwrap_or_default();
            self.warn(
                &format!("{base}/{}", pointer_token(key)),
                format!("value of {key:?} is a number, read as {value:?}; quote it in the YAML if it means other text"),
            );
        }
        m.map
    }

    fn selector(&mut self, s: SelectorDe, base: &str) -> LabelSelector {
        LabelSelector {
            match_labels: self.loose(s.match_labels, &format!("{base}/matchLabels")),
            match_expressions: s
                .match_expressions
                .into_iter()
                .map(|e| LabelSelectorRequirement { key: e.key, operator: e.operator, values: e.values })
                .collect(),
        }
    }

    fn annotations(&mut self, annotations: LooseMap, base: &str, secret_object: bool) -> BTreeMap<String, String> {
        // Free text: a float here is kept as written out, without a warning (which
        // would quote a value that may be secret).
        let mut annotations = annotations.map;
        for (key, value) in annotations.iter_mut() {
            // Any annotation holding a JSON object is treated like last-applied: it may
            // be an object copy (other tools keep their own), a Secret's included.
            let embedded = key == LAST_APPLIED || value.trim_start().starts_with('{');
            if !embedded && !named_needs_redaction(key, value) {
                continue;
            }
            let loc = self.at(&format!("{base}/{}", pointer_token(key)));
            let replaced = if embedded {
                redact_embedded_object(self.ctx, &loc, key, value, secret_object && key == LAST_APPLIED)
            } else {
                redact_named(self.ctx, &loc, key, value)
            };
            if let Some(r) = replaced {
                *value = r;
            }
        }
        annotations
    }

    fn pod_spec(&mut self, spec: PodSpecDe, base: &str) -> Converted<PodSpec> {
        let pod_non_root = spec.security_context.and_then(|s| s.run_as_non_root);
        let mut containers = Vec::with_capacity(spec.containers.len());
        for (i, c) in spec.containers.into_iter().enumerate() {
            containers.push(self.container(c, format!("{base}/containers/{i}"), pod_non_root)?);
        }
        let mut init_containers = Vec::with_capacity(spec.init_containers.len());
        for (i, c) in spec.init_containers.into_iter().enumerate() {
            init_containers.push(self.container(c, format!("{base}/initContainers/{i}"), pod_non_root)?);
        }
        Ok(PodSpec {
            node_name: spec.node_name,
            host_network: spec.host_network.unwrap_or(false),
            dns_policy: spec.dns_policy,
            service_account: spec.service_account_name.or(spec.service_account),
            containers,
            init_containers,
        })
    }

    fn container(&mut self, c: ContainerDe, pointer: String, pod_non_root: Option<bool>) -> Converted<Container> {
        let mut ports = Vec::with_capacity(c.ports.len());
        for (i, p) in c.ports.into_iter().enumerate() {
            let Some(container_port) = p.container_port.filter(|p| *p > 0) else {
                self.warn(&format!("{pointer}/ports/{i}"), "container port without a valid containerPort; ignored");
                continue;
            };
            ports.push(ContainerPort {
                name: p.name,
                container_port,
                protocol: p.protocol.unwrap_or_else(|| "TCP".to_string()),
                host_port: p.host_port.filter(|p| *p > 0),
            });
        }
        let mut env = Vec::with_capacity(c.env.len());
        for (i, e) in c.env.into_iter().enumerate() {
            let value = e.value.map(|Loose(v, _)| {
                if !named_needs_redaction(&e.name, &v) {
                    return v;
                }
                let loc = self.at(&format!("{pointer}/env/{i}/value"));
                redact_named(self.ctx, &loc, &e.name, &v).unwrap_or(v)
            });
            // A source this parser does not know is kept as "unrecognised", not dropped.
            let value_from = e.value_from.map(|f| f.kind().unwrap_or("unrecognised").to_string());
            env.push(EnvVar { name: e.name, value, value_from });
        }
        let command = self.arguments(c.command, &format!("{pointer}/command"));
        let args = self.arguments(c.args, &format!("{pointer}/args"));
        let sc = c.security_context.unwrap_or_default();
        Ok(Container {
            name: c.name,
            image: c.image,
            ports,
            env,
            privileged: sc.privileged.unwrap_or(false),
            capabilities_add: sc.capabilities.map(|c| c.add).unwrap_or_default(),
            // The container's setting overrides the pod's (Kubernetes semantics).
            run_as_non_root: sc.run_as_non_root.or(pod_non_root),
            readiness_probe: c.readiness_probe.0,
            liveness_probe: c.liveness_probe.0,
            command,
            args,
            pointer,
        })
    }

    /// Command or args, redacted as `redact::redact_arguments` does.
    fn arguments(&mut self, args: Vec<Loose>, base: &str) -> Vec<String> {
        let mut args: Vec<String> = args.into_iter().map(|a| a.0).collect();
        let origin = &self.origin;
        redact_arguments(self.ctx, |i| origin.child(&format!("{base}/{i}")), &mut args);
        args
    }
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    text.trim().parse().ok()
}

pub(super) fn namespace(c: &mut Conv<'_>, d: NamespaceDe) -> Converted<Namespace> {
    Ok(Namespace { meta: c.meta(d.metadata, false), origin: c.origin.clone() })
}

pub(super) fn node(c: &mut Conv<'_>, d: NodeDe) -> Converted<Node> {
    let meta = c.meta(d.metadata, false);
    let mut texts = d.spec.pod_cidrs;
    if texts.is_empty() {
        texts.extend(d.spec.pod_cidr);
    }
    let mut pod_cidrs = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        match t.trim().parse::<IpNet>() {
            Ok(n) if !pod_cidrs.contains(&n) => pod_cidrs.push(n),
            Ok(_) => {}
            Err(_) => c.warn(&format!("/spec/podCIDRs/{i}"), format!("pod CIDR {t:?} is not a CIDR; ignored")),
        }
    }
    Ok(Node {
        meta,
        pod_cidrs,
        addresses: d.status.addresses.into_iter().map(|a| (a.kind, a.address)).collect(),
        conditions: d
            .status
            .conditions
            .into_iter()
            .map(|c| Condition { kind: c.kind, status: c.status, reason: c.reason, message: c.message })
            .collect(),
        origin: c.origin.clone(),
    })
}

pub(super) fn pod(c: &mut Conv<'_>, d: PodDe) -> Converted<Pod> {
    let meta = c.meta(d.metadata, false);
    let spec = c.pod_spec(d.spec, "/spec")?;
    let mut pod_ips = Vec::new();
    // `podIPs` lists every family; old clusters only set `podIP`.
    let listed = !d.status.pod_ips.is_empty();
    let texts = d.status.pod_ips.into_iter().map(|p| p.ip).chain(d.status.pod_ip.filter(|_| !listed));
    for (i, text) in texts.enumerate() {
        if text.is_empty() {
            continue;
        }
        match parse_ip(&text) {
            Some(ip) if !pod_ips.contains(&ip) => pod_ips.push(ip),
            Some(_) => {}
            None => {
                let at = if listed { format!("/status/podIPs/{i}/ip") } else { "/status/podIP".to_string() };
                c.warn(&at, format!("pod IP {text:?} is not an IP address; ignored"));
            }
        }
    }
    let host_ip = match d.status.host_ip.filter(|h| !h.is_empty()) {
        Some(h) => {
            let ip = parse_ip(&h);
            if ip.is_none() {
                c.warn("/status/hostIP", format!("host IP {h:?} is not an IP address; ignored"));
            }
            ip
        }
        None => None,
    };
    Ok(Pod { meta, spec, phase: d.status.phase, pod_ips, host_ip, origin: c.origin.clone() })
}

pub(super) fn service(c: &mut Conv<'_>, d: ServiceDe) -> Converted<Service> {
    let meta = c.meta(d.metadata, false);
    let s = d.spec;
    let mut texts: Vec<(String, String)> =
        s.cluster_ips.into_iter().enumerate().map(|(i, ip)| (format!("/spec/clusterIPs/{i}"), ip)).collect();
    if texts.is_empty() {
        texts.extend(s.cluster_ip.map(|ip| ("/spec/clusterIP".to_string(), ip)));
    }
    let mut cluster_ips = Vec::new();
    let mut headless = false;
    for (suffix, text) in texts {
        match text.trim() {
            "None" => headless = true,
            "" => {}
            t => match parse_ip(t) {
                Some(ip) if !cluster_ips.contains(&ip) => cluster_ips.push(ip),
                Some(_) => {}
                None => c.warn(&suffix, format!("cluster IP {t:?} is not an IP address; ignored")),
            },
        }
    }
    let mut ports = Vec::with_capacity(s.ports.len());
    for (i, p) in s.ports.into_iter().enumerate() {
        let Some(port) = p.port.filter(|p| *p > 0) else {
            c.warn(&format!("/spec/ports/{i}"), "service port without a valid port; ignored");
            continue;
        };
        ports.push(ServicePort {
            name: p.name,
            protocol: p.protocol.unwrap_or_else(|| "TCP".to_string()),
            port,
            target_port: p.target_port.map(|t| t.0),
            node_port: p.node_port.filter(|p| *p > 0),
        });
    }
    Ok(Service {
        meta,
        service_type: s.service_type.unwrap_or_else(|| "ClusterIP".to_string()),
        cluster_ips,
        headless,
        selector: c.loose(s.selector, "/spec/selector"),
        ports,
        origin: c.origin.clone(),
    })
}

pub(super) fn endpoint_slice(c: &mut Conv<'_>, d: EndpointSliceDe) -> Converted<EndpointSlice> {
    let meta = c.meta(d.metadata, false);
    let address_type = d.address_type.unwrap_or_default();
    // FQDN slices hold host names, which the model's addresses (IPs) cannot carry.
    let ip_slice = address_type != "FQDN";
    let mut endpoints = Vec::with_capacity(d.endpoints.len());
    for (i, e) in d.endpoints.into_iter().enumerate() {
        let mut addresses = Vec::new();
        if ip_slice {
            for (j, a) in e.addresses.iter().enumerate() {
                match parse_ip(a) {
                    Some(ip) => addresses.push(ip),
                    None => c.warn(
                        &format!("/endpoints/{i}/addresses/{j}"),
                        format!("endpoint address {a:?} is not an IP address; ignored"),
                    ),
                }
            }
        }
        endpoints.push(Endpoint {
            addresses,
            ready: e.conditions.and_then(|c| c.ready),
            node_name: e.node_name,
            target_ref: e.target_ref.map(|t| format!("{}/{}/{}", t.kind, t.namespace, t.name)),
        });
    }
    Ok(EndpointSlice {
        service_name: meta.labels.get("kubernetes.io/service-name").cloned(),
        meta,
        address_type,
        endpoints,
        ports: d
            .ports
            .into_iter()
            .map(|p| EndpointPort {
                name: p.name,
                port: p.port,
                protocol: p.protocol.unwrap_or_else(|| "TCP".to_string()),
            })
            .collect(),
        origin: c.origin.clone(),
    })
}

fn parse_cidr(text: &str) -> Option<IpNet> {
    // Kubernetes reads `10.0.0.1/8` as the network 10.0.0.0/8.
    text.trim().parse::<IpNet>().ok().map(|n| n.trunc())
}

pub(super) fn network_policy(c: &mut Conv<'_>, d: NetworkPolicyDe) -> Converted<NetworkPolicy> {
    let meta = c.meta(d.metadata, false);
    let s = d.spec;
    let mut policy_types = Vec::new();
    for (i, t) in s.policy_types.iter().enumerate() {
        let t = match t.as_str() {
            "Ingress" => PolicyType::Ingress,
            "Egress" => PolicyType::Egress,
            other => {
                c.warn(
                    &format!("/spec/policyTypes/{i}"),
                    format!("policy type {other:?} is neither Ingress nor Egress; ignored"),
                );
                continue;
            }
        };
        if !policy_types.contains(&t) {
            policy_types.push(t);
        }
    }
    // The API server defaults an empty or absent list: Ingress always, Egress when
    // egress rules are present.
    let policy_types_explicit = !s.policy_types.is_empty();
    if !policy_types_explicit {
        policy_types.push(PolicyType::Ingress);
        if s.egress.as_ref().is_some_and(|e| !e.is_empty()) {
            policy_types.push(PolicyType::Egress);
        }
    }
    let mut ingress = Vec::new();
    for (i, r) in s.ingress.unwrap_or_default().into_iter().enumerate() {
        ingress.push(policy_rule(c, r.from, r.ports, format!("/spec/ingress/{i}"), "from")?);
    }
    let mut egress = Vec::new();
    for (i, r) in s.egress.unwrap_or_default().into_iter().enumerate() {
        egress.push(policy_rule(c, r.to, r.ports, format!("/spec/egress/{i}"), "to")?);
    }
    Ok(NetworkPolicy {
        meta,
        pod_selector: s.pod_selector.map(|p| c.selector(p, "/spec/podSelector")).unwrap_or_default(),
        policy_types,
        policy_types_explicit,
        ingress,
        egress,
        origin: c.origin.clone(),
    })
}

fn policy_rule(
    c: &mut Conv<'_>,
    peers: Vec<PeerDe>,
    ports: Vec<NetworkPolicyPortDe>,
    pointer: String,
    peers_field: &str,
) -> Converted<NetworkPolicyRule> {
    let mut out_peers = Vec::with_capacity(peers.len());
    for (j, p) in peers.into_iter().enumerate() {
        let ip_block = match p.ip_block {
            None => None,
            Some(b) => {
                let at = format!("{pointer}/{peers_field}/{j}/ipBlock");
                // A policy missing a peer would allow or deny the wrong traffic, so a
                // bad CIDR fails the whole policy (with a warning) instead.
                let cidr = parse_cidr(&b.cidr).ok_or_else(|| format!("{at}/cidr: {:?} is not a CIDR", b.cidr))?;
                let mut except = Vec::with_capacity(b.except.len());
                for (k, e) in b.except.iter().enumerate() {
                    except.push(parse_cidr(e).ok_or_else(|| format!("{at}/except/{k}: {e:?} is not a CIDR"))?);
                }
                Some(IpBlock { cidr, except })
            }
        };
        let at = format!("{pointer}/{peers_field}/{j}");
        out_peers.push(NetworkPolicyPeer {
            pod_selector: p.pod_selector.map(|s| c.selector(s, &format!("{at}/podSelector"))),
            namespace_selector: p.namespace_selector.map(|s| c.selector(s, &format!("{at}/namespaceSelector"))),
            ip_block,
        });
    }
    let ports = ports
        .into_iter()
        .map(|p| NetworkPolicyPort {
            protocol: p.protocol.unwrap_or_else(|| "TCP".to_string()),
            port: p.port.map(|p| p.0),
            end_port: p.end_port,
        })
        .collect();
    Ok(NetworkPolicyRule { peers: out_peers, ports, pointer })
}

pub(super) fn config_map(c: &mut Conv<'_>, d: ConfigMapDe) -> Converted<ConfigMap> {
    let meta = c.meta(d.metadata, false);
    // As for annotations: no float warning, which would quote a value.
    let mut data = d.data.map;
    for (key, value) in data.iter_mut() {
        let loc = c.at(&format!("/data/{}", pointer_token(key)));
        if let Some(r) = redact_named(c.ctx, &loc, key, value) {
            *value = r;
        }
    }
    Ok(ConfigMap { meta, data, origin: c.origin.clone() })
}

pub(super) fn secret(c: &mut Conv<'_>, d: SecretDe) -> Converted<SecretMeta> {
    let meta = c.meta(d.metadata, true);
    let mut keys = BTreeMap::new();
    let fields = [("data", d.data, true), ("stringData", d.string_data, false)];
    // stringData is written after data: on the same key it wins, as in Kubernetes.
    for (field, map, encoded) in fields {
        for (key, value) in map {
            let suffix = format!("/{field}/{}", pointer_token(&key));
            let bytes: Vec<u8> = match &value {
                serde_json::Value::String(s) if encoded => {
                    match base64::engine::general_purpose::STANDARD.decode(s.trim()) {
                        Ok(b) => b,
                        Err(_) => {
                            c.warn(
                                &suffix,
                                format!("value of {field} key {key:?} is not valid base64; fingerprinted as written"),
                            );
                            s.as_bytes().to_vec()
                        }
                    }
                }
                serde_json::Value::String(s) => s.as_bytes().to_vec(),
                other => {
                    c.warn(&suffix, format!("value of {field} key {key:?} is not a string; fingerprinted as JSON"));
                    other.to_string().into_bytes()
                }
            };
            let secret = c.ctx.redactor.secret_bytes(&bytes);
            c.ctx.redactions.push(Redaction {
                kind: RedactionKind::KubernetesSecretData,
                location: c.at(&suffix),
                secret: secret.clone(),
            });
            keys.insert(key, secret.fingerprint);
        }
    }
    Ok(SecretMeta { meta, secret_type: d.secret_type, keys, origin: c.origin.clone() })
}

pub(super) fn workload(c: &mut Conv<'_>, kind: WorkloadKind, d: WorkloadDe) -> Converted<Workload> {
    let meta = c.meta(d.metadata, false);
    let s = d.spec;
    let template_annotations =
        c.annotations(s.template.metadata.annotations, "/spec/template/metadata/annotations", false);
    let template_labels = c.loose(s.template.metadata.labels, "/spec/template/metadata/labels");
    let template = c.pod_spec(s.template.spec, "/spec/template/spec")?;
    Ok(Workload {
        kind,
        meta,
        replicas: if kind == WorkloadKind::DaemonSet { None } else { s.replicas },
        selector: s.selector.map(|s| c.selector(s, "/spec/selector")).unwrap_or_default(),
        template_labels,
        template_annotations,
        template,
        origin: c.origin.clone(),
    })
}

pub(super) fn hpa(c: &mut Conv<'_>, d: HpaDe) -> Converted<HorizontalPodAutoscaler> {
    let meta = c.meta(d.metadata, false);
    let target = d.spec.scale_target_ref.ok_or("spec.scaleTargetRef is missing")?;
    Ok(HorizontalPodAutoscaler {
        meta,
        target: (target.kind, target.name),
        min_replicas: d.spec.min_replicas,
        max_replicas: d.spec.max_replicas,
        origin: c.origin.clone(),
    })
}

pub(super) fn pdb(c: &mut Conv<'_>, d: PdbDe) -> Converted<PodDisruptionBudget> {
    Ok(PodDisruptionBudget {
        meta: c.meta(d.metadata, false),
        selector: d.spec.selector.map(|s| c.selector(s, "/spec/selector")).unwrap_or_default(),
        min_available: d.spec.min_available.map(|v| v.0),
        max_unavailable: d.spec.max_unavailable.map(|v| v.0),
        origin: c.origin.clone(),
    })
}

pub(super) fn peer_authentication(c: &mut Conv<'_>, d: PeerAuthenticationDe) -> Converted<PeerAuthentication> {
    let meta = c.meta(d.metadata, false);
    let mut port_levels = BTreeMap::new();
    for (port, m) in d.spec.port_level_mtls {
        match port.trim().parse::<u16>() {
            Ok(p) if p > 0 => {
                port_levels.insert(p, m.mode.unwrap_or_else(|| "UNSET".to_string()));
            }
            _ => c.warn(
                &format!("/spec/portLevelMtls/{}", pointer_token(&port)),
                format!("port {port:?} is not a port number; ignored"),
            ),
        }
    }
    Ok(PeerAuthentication {
        meta,
        // Istio applies a selector without labels namespace-wide, like no selector.
        selector: d.spec.selector.map(|s| c.selector(s, "/spec/selector")).filter(|s| !s.is_empty()),
        mtls_mode: d.spec.mtls.map(|m| m.mode.unwrap_or_else(|| "UNSET".to_string())),
        port_levels,
        origin: c.origin.clone(),
    })
}

pub(super) fn sidecar(c: &mut Conv<'_>, d: SidecarDe) -> Converted<IstioSidecar> {
    let meta = c.meta(d.metadata, false);
    Ok(IstioSidecar {
        meta,
        workload_selector: d.spec.workload_selector.map(|w| LabelSelector {
            match_labels: c.loose(w.labels, "/spec/workloadSelector/labels"),
            match_expressions: Vec::new(),
        }),
        egress_hosts: d.spec.egress.into_iter().flat_map(|e| e.hosts).collect(),
        outbound_traffic_policy: d.spec.outbound_traffic_policy.and_then(|o| o.mode),
        origin: c.origin.clone(),
    })
}

pub(super) fn service_entry(c: &mut Conv<'_>, d: ServiceEntryDe) -> Converted<ServiceEntry> {
    let meta = c.meta(d.metadata, false);
    let mut ports = Vec::new();
    for (i, p) in d.spec.ports.into_iter().enumerate() {
        match p.number.filter(|n| *n > 0) {
            Some(n) => ports.push((n, p.protocol)),
            None => c.warn(&format!("/spec/ports/{i}"), "ServiceEntry port without a valid number; ignored"),
        }
    }
    Ok(ServiceEntry {
        meta,
        hosts: d.spec.hosts,
        addresses: d.spec.addresses,
        ports,
        location: d.spec.location,
        resolution: d.spec.resolution,
        origin: c.origin.clone(),
    })
}

/// The last-applied annotation holds the object as applied, as JSON. That of a Secret
/// (or any JSON annotation that says `"kind":"Secret"`) is redacted whole; in others every
/// string is redacted like the live object's (env by name, ConfigMap values, free text)
/// and the JSON written back. An annotation that is not JSON is redacted by its name.
fn redact_embedded_object(
    ctx: &mut ParseContext,
    loc: &Location,
    key: &str,
    value: &str,
    secret_object: bool,
) -> Option<String> {
    let parsed: Option<serde_json::Value> = serde_json::from_str(value).ok();
    let says_secret = parsed.as_ref().and_then(|v| v.get("kind")).and_then(|k| k.as_str()) == Some("Secret");
    if (secret_object || says_secret) && !value.trim().is_empty() {
        return Some(ctx.redact(RedactionKind::KubernetesSecretData, loc.clone(), value).to_string());
    }
    let Some(mut v) = parsed else {
        return redact_named(ctx, loc, key, value);
    };
    if name_says_secret(key) {
        return redact_named(ctx, loc, key, value);
    }
    let before = ctx.redactions.len();
    redact_json(ctx, loc, &mut v, None, 0);
    (ctx.redactions.len() > before).then(|| v.to_string())
}

/// Redacts every string of a JSON value: by its map key's name, by a sibling `name`
/// (env entries `{"name": "WG_PSK", "value": "…"}`), or as free text.
fn redact_json(ctx: &mut ParseContext, loc: &Location, v: &mut serde_json::Value, key: Option<&str>, depth: usize) {
    if depth > 64 {
        return;
    }
    match v {
        serde_json::Value::String(s) => {
            let replaced = match key {
                Some(k) => redact_named(ctx, loc, k, s),
                None => redact_text(ctx, loc, s),
            };
            if let Some(r) = replaced {
                *s = r;
            }
        }
        serde_json::Value::Array(items) => {
            // A list of strings may be arguments (`["--token", "abc"]`).
            if items.iter().all(|i| i.is_string()) {
                let mut args: Vec<String> = items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect();
                if redact_arguments(ctx, |_| loc.clone(), &mut args) {
                    *items = args.into_iter().map(serde_json::Value::String).collect();
                }
            } else {
                items.iter_mut().for_each(|i| redact_json(ctx, loc, i, None, depth + 1));
            }
        }
        serde_json::Value::Object(map) => {
            let env_name = map.get("name").and_then(|n| n.as_str()).map(str::to_string);
            for (k, child) in map.iter_mut() {
                let name = match (k.as_str(), &env_name) {
                    ("value", Some(n)) => Some(n.as_str()),
                    (k, _) => Some(k),
                };
                redact_json(ctx, loc, child, name, depth + 1);
            }
        }
        _ => {}
    }
}
