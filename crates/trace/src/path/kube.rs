//! Kubernetes hops: Service → EndpointSlice → pod resolution (named target ports), the
//! Istio sidecar's outbound capture, and NetworkPolicy egress/ingress (via `PolicyIndex`).

use std::net::IpAddr;

use ipnet::IpNet;
use netsleuth_analyze::support::{Peer, PodRef, Traffic, Verdict};
use netsleuth_model::kubernetes::{IntOrString, Pod, Service, ServicePort};
use netsleuth_model::{Evidence, Layer, Location};

use super::endpoint::ServicePortRef;
use super::walk::Walk;
use super::{list_some, Action, Destination, Disposition, DispositionKind, Protocol, TraceError};

/// Sets the packet's destination (resolving Services to one endpoint). Returns a
/// disposition when the trace ends here (a Service without ready endpoints).
pub(super) fn resolve_destination(w: &mut Walk<'_, '_>, to: &Destination) -> Result<Option<Disposition>, TraceError> {
    let t = w.t;
    match to {
        Destination::Ip { addr, port, protocol } => {
            w.pkt.dst = *addr;
            w.pkt.dport = *port;
            w.pkt.proto = *protocol;
            if let Some(p) = port {
                // A ClusterIP, or a NodePort on a node address, goes through kube-proxy.
                if let Some(svc) = t.services_by_ip.get(addr).copied() {
                    return service(w, svc, Some(&ServicePortRef::Number(*p)), Some(*protocol));
                }
                if is_node_address(w, *addr) {
                    let svc = t.net.kubernetes.services.iter().find(|s| {
                        s.ports
                            .iter()
                            .any(|sp| sp.node_port == Some(*p) && sp.protocol.eq_ignore_ascii_case(protocol.k8s()))
                    });
                    if let Some(svc) = svc {
                        return node_port(w, svc, *p, *protocol);
                    }
                }
            }
            w.dst_pod = t.pod_by_ip(addr);
            Ok(None)
        }
        Destination::Service { namespace, name, port, protocol } => {
            let svc = t.services_by_name.get(&(namespace.as_str(), name.as_str())).copied().ok_or_else(|| {
                TraceError::UnknownService {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    known: format!(
                        "Services in {namespace}: {}",
                        list_some(
                            t.net
                                .kubernetes
                                .services
                                .iter()
                                .filter(|s| &s.meta.namespace == namespace)
                                .map(|s| s.meta.name.as_str()),
                            10
                        )
                    ),
                }
            })?;
            service(w, svc, port.as_ref(), *protocol)
        }
        Destination::Pod { namespace, name, port, protocol } => {
            let pod = t.pod_named(namespace, name)?;
            let addr = pod
                .pod_ips
                .iter()
                .find(|a| w.pkt.src.is_unspecified() || a.is_ipv4() == w.pkt.src.is_ipv4())
                .or(pod.pod_ips.first())
                .copied()
                .ok_or_else(|| TraceError::NoAddress { what: format!("pod {namespace}/{name}") })?;
            w.pkt.dst = addr;
            w.pkt.dport = *port;
            w.pkt.proto = *protocol;
            w.dst_pod = Some(pod);
            Ok(None)
        }
        Destination::Host { name, port, protocol } => {
            let h = t.net.hosts.iter().find(|h| &h.name == name).ok_or_else(|| TraceError::UnknownHost {
                name: name.clone(),
                known: list_some(t.net.hosts.iter().map(|h| h.name.as_str()), 20),
            })?;
            let v4 = w.pkt.src.is_unspecified() || w.pkt.src.is_ipv4();
            let usable = |a: &IpAddr| !super::skip_address(a) && a.is_ipv4() == v4;
            // Its primary address: on the interface of its default route (what it sends
            // from), else its first address of the family.
            let primary = h
                .routes
                .routes
                .iter()
                .filter(|r| r.dst.prefix_len() == 0 && r.dst.addr().is_ipv4() == v4)
                .filter_map(|r| {
                    r.prefsrc.filter(usable).or_else(|| {
                        r.dev
                            .as_deref()
                            .and_then(|d| h.interface(d))
                            .and_then(|i| i.addresses.iter().map(|n| n.addr()).find(usable))
                    })
                })
                .next();
            let (addr, how) = match primary {
                Some(a) => (a, "its default route's source address"),
                None => (
                    h.interfaces
                        .iter()
                        .flat_map(|i| i.addresses.iter().map(|n| n.addr()))
                        .find(usable)
                        .ok_or_else(|| TraceError::NoAddress { what: format!("host {name}") })?,
                    "its first address",
                ),
            };
            w.assume(format!("host:{name} is traced to {addr} ({how}; give an address to choose another)"));
            w.pkt.dst = addr;
            w.pkt.dport = *port;
            w.pkt.proto = *protocol;
            w.dst_pod = h.pod.as_deref().and_then(|p| p.split_once('/')).and_then(|p| t.pods_by_name.get(&p).copied());
            Ok(None)
        }
    }
}

fn is_node_address(w: &Walk<'_, '_>, addr: IpAddr) -> bool {
    let t = w.t;
    t.net.kubernetes.nodes.iter().any(|n| n.addresses.iter().any(|(_, a)| a.parse::<IpAddr>().ok() == Some(addr)))
        || t.owners_of(&addr).iter().any(|i| t.net.hosts[*i].role == Some(netsleuth_model::host::HostRole::Node))
}

fn port_text(sp: &ServicePort) -> String {
    match &sp.name {
        Some(n) => format!("{} {}/{}", n, sp.port, sp.protocol),
        None => format!("{}/{}", sp.port, sp.protocol),
    }
}

fn node_port<'a>(
    w: &mut Walk<'_, 'a>,
    svc: &'a Service,
    p: u16,
    proto: Protocol,
) -> Result<Option<Disposition>, TraceError> {
    let sp = svc.ports.iter().find(|sp| sp.node_port == Some(p) && sp.protocol.eq_ignore_ascii_case(proto.k8s()));
    match sp {
        Some(sp) => {
            let port = sp.port;
            let node_addr = w.pkt.dst;
            w.assume(format!("{node_addr}:{p} is NodePort {p} of Service {}/{}", svc.meta.namespace, svc.meta.name));
            let end = service(w, svc, Some(&ServicePortRef::Number(port)), Some(proto))?;
            if end.is_none() {
                // The packet first goes to the node; kube-proxy there rewrites it (the walk
                // applies the endpoint when it reaches the node).
                w.node_port = Some(super::walk::NodePort {
                    node_addr,
                    node_port: p,
                    endpoint: w.pkt.dst,
                    port: w.pkt.dport,
                    pod: w.dst_pod.take(),
                });
                w.pkt.dst = node_addr;
                w.pkt.dport = Some(p);
            }
            Ok(end)
        }
        None => Ok(None),
    }
}

/// A resolved endpoint: address, target port, the pod when known, and where it was read.
struct Ep<'a> {
    addr: IpAddr,
    port: u16,
    pod: Option<&'a Pod>,
    origin: Location,
}

fn service<'a>(
    w: &mut Walk<'_, 'a>,
    svc: &'a Service,
    port: Option<&ServicePortRef>,
    proto: Option<Protocol>,
) -> Result<Option<Disposition>, TraceError> {
    let t = w.t;
    let key = format!("{}/{}", svc.meta.namespace, svc.meta.name);
    let proto_ok = |sp: &ServicePort| proto.is_none_or(|p| sp.protocol.eq_ignore_ascii_case(p.k8s()));
    let sp = match port {
        Some(ServicePortRef::Number(n)) => svc.ports.iter().find(|sp| sp.port == *n && proto_ok(sp)),
        Some(ServicePortRef::Name(n)) => {
            svc.ports.iter().find(|sp| sp.name.as_deref() == Some(n.as_str()) && proto_ok(sp))
        }
        None => {
            let matching: Vec<&ServicePort> = svc.ports.iter().filter(|sp| proto_ok(sp)).collect();
            if matching.len() == 1 {
                matching.first().copied()
            } else {
                return Err(TraceError::UnknownServicePort {
                    service: key,
                    port: "(none given)".into(),
                    known: list_some(
                        svc.ports.iter().map(|sp| sp.name.as_deref().unwrap_or("")).filter(|s| !s.is_empty()),
                        10,
                    ) + &format!(
                        "; numbers: {}",
                        svc.ports
                            .iter()
                            .map(|sp| format!("{}/{}", sp.port, sp.protocol))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
    };
    let Some(sp) = sp else {
        return Err(TraceError::UnknownServicePort {
            service: key,
            port: match port {
                Some(ServicePortRef::Number(n)) => n.to_string(),
                Some(ServicePortRef::Name(n)) => n.clone(),
                None => String::new(),
            },
            known: svc.ports.iter().map(port_text).collect::<Vec<_>>().join(", "),
        });
    };
    let protocol = match sp.protocol.to_ascii_uppercase().as_str() {
        "UDP" => Protocol::Udp,
        "SCTP" => Protocol::Sctp,
        _ => Protocol::Tcp,
    };
    w.pkt.proto = protocol;
    if let Some(ip) = svc.cluster_ips.first() {
        w.pkt.dst = *ip;
    }
    w.pkt.dport = Some(sp.port);
    let svc_ev = Evidence::new(svc.origin.child("/spec/ports"), port_text(sp));
    let component = format!("k8s/Service/{key}");
    let mut eps: Vec<Ep<'a>> = Vec::new();
    let slices = t.slices.get(&(svc.meta.namespace.as_str(), svc.meta.name.as_str()));
    if let Some(idx) = slices {
        for &i in idx {
            let Some(es) = t.net.kubernetes.endpoint_slices.get(i) else { continue };
            // The slice port with the Service port's name (both unnamed for a single port).
            let Some(target) = es
                .ports
                .iter()
                .find(|p| p.name == sp.name && p.protocol.eq_ignore_ascii_case(&sp.protocol))
                .and_then(|p| p.port)
            else {
                continue;
            };
            for (j, e) in es.endpoints.iter().enumerate() {
                if e.ready == Some(false) {
                    continue;
                }
                let pod = e
                    .target_ref
                    .as_deref()
                    .and_then(|r| r.strip_prefix("Pod/"))
                    .and_then(|r| r.split_once('/'))
                    .and_then(|k| t.pods_by_name.get(&k).copied());
                for a in &e.addresses {
                    eps.push(Ep {
                        addr: *a,
                        port: target,
                        pod: pod.or_else(|| t.pod_by_ip(a)),
                        origin: es.origin.child(&format!("/endpoints/{j}")),
                    });
                }
            }
        }
    } else if !svc.selector.is_empty() {
        w.assume(format!(
            "no EndpointSlice for Service {key} in the bundle: endpoints taken from its selector's running pods"
        ));
        for p in t.net.kubernetes.pods.iter().filter(|p| {
            p.meta.namespace == svc.meta.namespace
                && svc.selector.iter().all(|(k, v)| p.meta.labels.get(k) == Some(v))
                && p.phase.as_deref().is_none_or(|ph| ph == "Running")
        }) {
            let target = match &sp.target_port {
                None => Some(sp.port),
                Some(IntOrString::Int(n)) => u16::try_from(*n).ok(),
                Some(IntOrString::String(name)) => {
                    p.spec.named_port(name).filter(|(_, pr)| pr.eq_ignore_ascii_case(&sp.protocol)).map(|(n, _)| n)
                }
            };
            let (Some(target), Some(addr)) = (target, p.pod_ips.first()) else { continue };
            eps.push(Ep { addr: *addr, port: target, pod: Some(p), origin: p.origin.clone() });
        }
    }
    if eps.is_empty() {
        w.hop(
            Layer::Node,
            component,
            Action::Drop,
            format!("Service port {} has no ready endpoint (kube-proxy rejects the connection)", port_text(sp)),
            vec![svc_ev],
        );
        if slices.is_none() && svc.selector.is_empty() {
            w.need(format!("EndpointSlices of Service {key}"));
        }
        return Ok(Some(w.end(DispositionKind::Dropped, format!("Service {key} has no ready endpoints"))));
    }
    let n = eps.len();
    let Some(ep) = eps.into_iter().next() else { return Ok(None) };
    if n > 1 {
        w.assume(format!(
            "Service {key} has {n} ready endpoints; traced to the first, {}:{} (kube-proxy picks one per connection)",
            ep.addr, ep.port
        ));
    }
    let target = match &sp.target_port {
        Some(IntOrString::String(name)) => format!("targetPort {name} = {}", ep.port),
        _ => format!("targetPort {}", ep.port),
    };
    let what =
        ep.pod.map(|p| format!("pod {}/{}", p.meta.namespace, p.meta.name)).unwrap_or_else(|| ep.addr.to_string());
    w.hop(
        Layer::Node,
        component,
        Action::Forward,
        format!("{}:{} ({}) → endpoint {}:{} ({what}, {target})", w.pkt.dst, sp.port, port_text(sp), ep.addr, ep.port),
        vec![svc_ev, Evidence::new(ep.origin, format!("{} port {}", ep.addr, ep.port))],
    );
    w.pkt.dst = ep.addr;
    w.pkt.dport = Some(ep.port);
    w.dst_pod = ep.pod;
    w.via_service = Some(key);
    Ok(None)
}

fn pod_key(p: &Pod) -> String {
    format!("{}/{}", p.meta.namespace, p.meta.name)
}

fn pod_ref(p: &Pod) -> PodRef<'_> {
    PodRef { namespace: &p.meta.namespace, labels: &p.meta.labels, spec: Some(&p.spec), ips: &p.pod_ips }
}

/// Sidecar capture and egress policy of the source pod.
pub(super) fn source_hops(w: &mut Walk<'_, '_>) -> Option<Disposition> {
    let pod = w.src_pod?;
    if pod.spec.host_network {
        w.hop(
            Layer::Policy,
            format!("k8s/Pod/{}", pod_key(pod)),
            Action::Forward,
            "host-network pod: NetworkPolicy does not apply to it (it sends as its node)",
            vec![Evidence::new(pod.origin.child("/spec/hostNetwork"), "hostNetwork: true")],
        );
        return None;
    }
    if let Some(d) = sidecar(w, pod) {
        return Some(d);
    }
    egress(w, pod)
}

fn egress(w: &mut Walk<'_, '_>, pod: &Pod) -> Option<Disposition> {
    let t = w.t;
    let traffic = Traffic { protocol: w.pkt.proto.k8s(), port: w.pkt.dport };
    let peer = match w.dst_pod {
        Some(d) if !d.spec.host_network => Peer::Pod(pod_ref(d)),
        _ => Peer::Ip(w.pkt.dst),
    };
    let verdict = t.policy.egress(&pod_ref(pod), &peer, traffic);
    policy_hop(w, pod, verdict, "egress", traffic)
}

/// Ingress policy of the destination pod; None when it lets the packet in.
pub(super) fn ingress_hop(w: &mut Walk<'_, '_>) -> Option<Disposition> {
    let t = w.t;
    let pod = w.dst_pod?;
    if w.ingress_done {
        return None;
    }
    w.ingress_done = true;
    let key = pod_key(pod);
    let traffic = Traffic { protocol: w.pkt.proto.k8s(), port: w.pkt.dport };
    if pod.spec.host_network {
        w.hop(
            Layer::Policy,
            format!("k8s/Pod/{key}"),
            Action::Forward,
            "host-network pod: NetworkPolicy does not apply to it",
            vec![Evidence::new(pod.origin.child("/spec/hostNetwork"), "hostNetwork: true")],
        );
        return None;
    }
    // Kubernetes: traffic from the node a pod runs on (kubelet probes) is always allowed.
    if from_own_node(w, pod) {
        w.hop(
            Layer::Policy,
            format!("k8s/Pod/{key}"),
            Action::Forward,
            format!("{} is the address of {key}'s own node: always allowed by NetworkPolicy semantics", w.pkt.src),
            vec![Evidence::new(pod.origin.child("/spec/nodeName"), pod.spec.node_name.clone().unwrap_or_default())],
        );
        return None;
    }
    let peer = match w.src_pod {
        Some(s) if !s.spec.host_network => Peer::Pod(pod_ref(s)),
        _ => Peer::Ip(w.pkt.src),
    };
    let verdict = t.policy.ingress(&pod_ref(pod), &peer, traffic);
    policy_hop(w, pod, verdict, "ingress", traffic)
}

fn from_own_node(w: &Walk<'_, '_>, pod: &Pod) -> bool {
    let t = w.t;
    let src = w.pkt.src;
    if w.src_pod.is_some_and(|s| !s.spec.host_network) {
        return false;
    }
    let Some(node) = pod.spec.node_name.as_deref() else { return false };
    pod.host_ip == Some(src)
        || t.net
            .kubernetes
            .nodes
            .iter()
            .any(|n| n.meta.name == node && n.addresses.iter().any(|(_, a)| a.parse::<IpAddr>().ok() == Some(src)))
        || t.node_hosts.get(node).is_some_and(|i| t.owners_of(&src).contains(i))
}

fn policy_hop(
    w: &mut Walk<'_, '_>,
    pod: &Pod,
    verdict: Verdict<'_>,
    dir: &str,
    traffic: Traffic<'_>,
) -> Option<Disposition> {
    let key = pod_key(pod);
    let other = if dir == "egress" { format!("to {}", w.pkt.dst) } else { format!("from {}", w.pkt.src) };
    match verdict {
        Verdict::NotIsolated => {
            w.hop(
                Layer::Policy,
                format!("k8s/Pod/{key}"),
                Action::Forward,
                format!("no NetworkPolicy selects {key} for {dir}: not isolated"),
                vec![Evidence::new(pod.origin.child("/metadata/labels"), labels(pod))],
            );
            None
        }
        Verdict::Allowed { policy, rule } => {
            w.hop(
                Layer::Policy,
                format!("k8s/NetworkPolicy/{}/{}", policy.meta.namespace, policy.meta.name),
                Action::Forward,
                format!("{dir} {traffic} {other} allowed by rule {}", rule.pointer),
                vec![Evidence::new(policy.origin.child(&rule.pointer), format!("{dir} rule of {}", policy.meta.name))],
            );
            None
        }
        Verdict::Denied { policies } => {
            let names: Vec<String> = policies.iter().map(|p| format!("{}/{}", p.meta.namespace, p.meta.name)).collect();
            let ev = policies
                .iter()
                .take(5)
                .map(|p| {
                    let n = if dir == "egress" { p.egress.len() } else { p.ingress.len() };
                    Evidence::new(
                        p.origin.child("/spec"),
                        format!("{}: policyTypes {:?}, {n} {dir} rule(s)", p.meta.name, p.policy_types),
                    )
                })
                .collect();
            let component = match names.as_slice() {
                [one] => format!("k8s/NetworkPolicy/{one}"),
                _ => format!(
                    "k8s/NetworkPolicy/{} ({} policies)",
                    names.first().cloned().unwrap_or_default(),
                    names.len()
                ),
            };
            w.hop(
                Layer::Policy,
                component,
                Action::Drop,
                format!(
                    "{key} is isolated for {dir} by {}; no rule allows {traffic} {other}",
                    list_some(names.iter().map(String::as_str), 5)
                ),
                ev,
            );
            Some(w.end(DispositionKind::Dropped, format!("NetworkPolicy {dir} of {key} denies {traffic} {other}")))
        }
    }
}

fn labels(p: &Pod) -> String {
    p.meta.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

fn has_sidecar(p: &Pod) -> bool {
    if p.meta.annotations.get("sidecar.istio.io/inject").is_some_and(|v| v == "false") {
        return false;
    }
    p.spec.all_containers().any(|c| c.name == "istio-proxy")
        || p.meta.annotations.contains_key("sidecar.istio.io/status")
}

fn ranges(v: &str) -> Vec<IpNet> {
    v.split(',')
        .filter_map(|s| {
            let s = s.trim();
            s.parse::<IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
        })
        .collect()
}

/// Istio's outbound capture (iptables REDIRECT to Envoy) and what Envoy does with a
/// destination it does not know (ALLOW_ANY passthrough or REGISTRY_ONLY black hole).
fn sidecar(w: &mut Walk<'_, '_>, pod: &Pod) -> Option<Disposition> {
    if !has_sidecar(pod) {
        return None;
    }
    let t = w.t;
    let key = pod_key(pod);
    let ann = &pod.meta.annotations;
    let dst = w.pkt.dst;
    let component = format!("k8s/Pod/{key} istio-proxy");
    let ann_ev = |k: &str, v: &str| Evidence::new(pod.origin.child("/metadata/annotations"), format!("{k}: {v}"));
    if w.pkt.proto == Protocol::Icmp {
        w.hop(
            Layer::Mesh,
            component,
            Action::Forward,
            "ICMP is not captured by the sidecar (only TCP is redirected)",
            Vec::new(),
        );
        return None;
    }
    const EXCL: &str = "traffic.sidecar.istio.io/excludeOutboundIPRanges";
    const INCL: &str = "traffic.sidecar.istio.io/includeOutboundIPRanges";
    const EXPORTS: &str = "traffic.sidecar.istio.io/excludeOutboundPorts";
    if let Some(v) = ann.get(EXCL) {
        if ranges(v).iter().any(|n| n.contains(&dst)) {
            w.hop(
                Layer::Mesh,
                component,
                Action::Forward,
                format!("{dst} is excluded from capture ({EXCL})"),
                vec![ann_ev(EXCL, v)],
            );
            return None;
        }
    }
    if let Some(v) = ann.get(INCL) {
        if v.trim() != "*" && !ranges(v).iter().any(|n| n.contains(&dst)) {
            w.hop(
                Layer::Mesh,
                component,
                Action::Forward,
                format!("{dst} is outside {INCL}: not captured"),
                vec![ann_ev(INCL, v)],
            );
            return None;
        }
    }
    if let (Some(v), Some(p)) = (ann.get(EXPORTS), w.pkt.dport) {
        if v.split(',').any(|x| x.trim().parse::<u16>().ok() == Some(p)) {
            w.hop(
                Layer::Mesh,
                component,
                Action::Forward,
                format!("port {p} is excluded from capture ({EXPORTS})"),
                vec![ann_ev(EXPORTS, v)],
            );
            return None;
        }
    }
    if w.pkt.proto == Protocol::Udp {
        w.hop(
            Layer::Mesh,
            component,
            Action::Forward,
            "UDP is not captured by the sidecar (TCP only unless DNS capture is on)",
            Vec::new(),
        );
        return None;
    }
    let known = w.via_service.is_some() || t.pod_by_ip(&dst).is_some() || t.services_by_ip.contains_key(&dst);
    if known {
        w.hop(
            Layer::Mesh,
            component,
            Action::Forward,
            format!("captured by istio-proxy; {dst} is a mesh destination"),
            Vec::new(),
        );
        return None;
    }
    let k = &t.net.kubernetes;
    let sidecar = k
        .sidecars
        .iter()
        .filter(|s| s.meta.namespace == pod.meta.namespace)
        .find(|s| s.workload_selector.as_ref().is_some_and(|sel| sel.matches(&pod.meta.labels)))
        .or_else(|| k.sidecars.iter().find(|s| s.meta.namespace == pod.meta.namespace && s.workload_selector.is_none()))
        .or_else(|| k.sidecars.iter().find(|s| s.meta.namespace == "istio-system" && s.workload_selector.is_none()));
    let mode = sidecar
        .and_then(|s| {
            s.outbound_traffic_policy
                .clone()
                .map(|m| (m, s.origin.clone(), format!("Sidecar {}/{}", s.meta.namespace, s.meta.name)))
        })
        .or_else(|| mesh_mode(w));
    let (mode, origin, source) = match mode {
        Some(m) => m,
        None => {
            w.assume("Istio outboundTrafficPolicy not in the bundle: ALLOW_ANY (the Istio default)");
            ("ALLOW_ANY".to_string(), Location::Derived, "Istio default".to_string())
        }
    };
    if !mode.eq_ignore_ascii_case("REGISTRY_ONLY") {
        let ev = if origin == Location::Derived {
            Vec::new()
        } else {
            vec![Evidence::new(origin, format!("outboundTrafficPolicy: {mode}"))]
        };
        w.hop(
            Layer::Mesh,
            component,
            Action::Forward,
            format!("captured by istio-proxy; {dst} is unknown to the mesh and passes through (outboundTrafficPolicy {mode}, {source})"),
            ev,
        );
        return None;
    }
    let entry =
        k.service_entries.iter().find(|se| se.addresses.iter().any(|a| ranges(a).iter().any(|n| n.contains(&dst))));
    if let Some(se) = entry {
        w.hop(
            Layer::Mesh,
            component,
            Action::Forward,
            format!("captured; ServiceEntry {}/{} covers {dst}", se.meta.namespace, se.meta.name),
            vec![Evidence::new(se.origin.child("/spec/addresses"), se.addresses.join(","))],
        );
        return None;
    }
    w.hop(
        Layer::Mesh,
        component,
        Action::Drop,
        format!("captured by istio-proxy; outboundTrafficPolicy REGISTRY_ONLY ({source}) and no ServiceEntry covers {dst}: BlackHoleCluster (502)"),
        vec![Evidence::new(origin, "outboundTrafficPolicy: REGISTRY_ONLY")],
    );
    Some(w.end(DispositionKind::Dropped, format!("the sidecar of {key} sends {dst} to BlackHoleCluster")))
}

/// Mesh-wide mode from the `istio` ConfigMap (`mesh` key) of istio-system.
fn mesh_mode(w: &Walk<'_, '_>) -> Option<(String, Location, String)> {
    let cm =
        w.t.net
            .kubernetes
            .config_maps
            .iter()
            .find(|c| c.meta.namespace == "istio-system" && c.meta.name.starts_with("istio"))?;
    let mesh = cm.data.get("mesh")?;
    let mut lines = mesh.lines().map(str::trim);
    while let Some(l) = lines.next() {
        if let Some(rest) = l.strip_prefix("outboundTrafficPolicy:") {
            let text = if rest.trim().is_empty() { lines.next().unwrap_or("") } else { rest };
            let mode = if text.contains("REGISTRY_ONLY") { "REGISTRY_ONLY" } else { "ALLOW_ANY" };
            return Some((
                mode.into(),
                cm.origin.child("/data/mesh"),
                format!("ConfigMap istio-system/{}", cm.meta.name),
            ));
        }
    }
    None
}
