//! Kubernetes semantics of the tracer: Service → EndpointSlice → pod (named target ports),
//! selector fallback, NetworkPolicy egress + ingress, node traffic, host-network pods,
//! the Istio sidecar, and usage errors naming what the bundle has.

mod common;

use common::*;
use netsleuth_model::kubernetes::{Cluster, NetworkPolicy, Service};
use netsleuth_model::Network;
use netsleuth_trace::path::{Action, Destination, DispositionKind, Endpoint, TraceError, TraceOptions};
use serde_json::json;

fn service(ns: &str, name: &str, ip: &str, selector: serde_json::Value, ports: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "meta": {"name": name, "namespace": ns, "labels": {}, "annotations": {}, "uid": null, "owners": []},
        "service_type": "ClusterIP", "cluster_ips": [ip], "headless": false, "selector": selector, "ports": ports,
        "origin": {"kind": "json", "path": "kubernetes/svc.json", "pointer": format!("/items/{name}")}
    }))
    .unwrap()
}

fn policy(v: serde_json::Value) -> NetworkPolicy {
    serde_json::from_value(v).unwrap()
}

fn meta(ns: &str, name: &str) -> serde_json::Value {
    json!({"name": name, "namespace": ns, "labels": {}, "annotations": {}, "uid": null, "owners": []})
}

fn origin(name: &str) -> serde_json::Value {
    json!({"kind": "json", "path": "kubernetes/netpol.json", "pointer": format!("/items/{name}")})
}

/// shop/web (10.244.1.10) and shop/api-1, api-2 (named port http = 8080), Service api:80 → http.
fn cluster() -> Network {
    let mut k = Cluster::default();
    k.pods.push(pod("shop", "web", "10.244.1.10", "node-1", &[("app", "web")], &[]));
    k.pods.push(pod("shop", "api-1", "10.244.2.21", "node-2", &[("app", "api")], &[("http", 8080)]));
    k.pods.push(pod("shop", "api-2", "10.244.2.22", "node-2", &[("app", "api")], &[("http", 8080)]));
    k.pods.push(pod("other", "client", "10.244.3.30", "node-3", &[("app", "client")], &[]));
    k.services.push(service(
        "shop",
        "api",
        "10.96.0.50",
        json!({"app": "api"}),
        json!([{"name": "web", "protocol": "TCP", "port": 80, "target_port": "http", "node_port": null}]),
    ));
    Network { kubernetes: k, ..Network::default() }
}

fn add_slice(net: &mut Network, ready2: bool) {
    let es = json!({
        "meta": meta("shop", "api-abc"), "service_name": "api", "address_type": "IPv4",
        "endpoints": [
            {"addresses": ["10.244.2.22"], "ready": ready2, "node_name": "node-2", "target_ref": "Pod/shop/api-2"},
            {"addresses": ["10.244.2.21"], "ready": true, "node_name": "node-2", "target_ref": "Pod/shop/api-1"}
        ],
        "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}],
        "origin": {"kind": "json", "path": "kubernetes/es.json", "pointer": "/items/0"}
    });
    net.kubernetes.endpoint_slices.push(serde_json::from_value(es).unwrap());
}

#[test]
fn service_resolves_through_endpoint_slices_to_a_ready_pod() {
    let mut net = cluster();
    add_slice(&mut net, false);
    let t = run(&net, "pod:shop/web", "svc:shop/api:80");
    let svc_hop = &t.hops[0];
    assert_eq!((svc_hop.component.as_str(), svc_hop.action), ("k8s/Service/shop/api", Action::Forward));
    // The not-ready endpoint (api-2) is skipped; port 80 → the slice's port 8080.
    assert_eq!(
        (t.packet.dst.to_string(), t.packet.dst_port),
        ("10.244.2.21".to_string(), Some(8080)),
        "{}",
        explain(&t)
    );
    assert!(svc_hop.reason.contains("pod shop/api-1"), "{}", svc_hop.reason);
    // Kubernetes-only bundle: the policies pass, the node state is missing.
    assert_eq!(t.disposition.kind, DispositionKind::InsufficientInfo, "{}", explain(&t));
    assert!(t.missing.iter().any(|m| m.starts_with("hosts/node-1/")), "{:?}", t.missing);
    // By port name and by ClusterIP:port as well.
    assert_eq!(run(&net, "pod:shop/web", "svc:shop/api:web").packet.dst_port, Some(8080));
    assert_eq!(run(&net, "pod:shop/web", "10.96.0.50:80").packet.dst.to_string(), "10.244.2.21");
}

#[test]
fn service_without_slices_uses_the_selector_and_named_target_port() {
    let net = cluster();
    let t = run(&net, "pod:shop/web", "svc:shop/api");
    assert_eq!(t.packet.dst_port, Some(8080), "{}", explain(&t));
    assert!(t.hops[0].reason.contains("targetPort http = 8080"), "{}", t.hops[0].reason);
    assert!(t.assumptions.iter().any(|a| a.contains("no EndpointSlice")), "{:?}", t.assumptions);
}

#[test]
fn service_without_ready_endpoints_is_dropped() {
    let mut net = cluster();
    net.kubernetes.pods.retain(|p| !p.meta.name.starts_with("api"));
    let t = run(&net, "pod:shop/web", "svc:shop/api:80");
    assert_eq!(last(&t), ("k8s/Service/shop/api".into(), Action::Drop, DispositionKind::Dropped), "{}", explain(&t));
}

#[test]
fn egress_and_ingress_are_both_required() {
    let mut net = cluster();
    add_slice(&mut net, true);
    // Ingress of api allows only app=web from namespaces labelled team=shop.
    net.kubernetes.network_policies.push(policy(json!({
        "meta": meta("shop", "api-ingress"),
        "pod_selector": {"match_labels": {"app": "api"}, "match_expressions": []},
        "policy_types": ["Ingress"], "policy_types_explicit": true,
        "ingress": [{"peers": [{"pod_selector": {"match_labels": {}, "match_expressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
                                "namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": "shop"}, "match_expressions": []},
                                "ip_block": null}],
                     "ports": [{"protocol": "TCP", "port": "http", "end_port": null}], "pointer": "/spec/ingress/0"}],
        "egress": [], "origin": origin("api-ingress")
    })));
    let t = run(&net, "pod:shop/web", "pod:shop/api-1:8080");
    assert_eq!(t.disposition.kind, DispositionKind::InsufficientInfo, "{}", explain(&t));
    assert!(
        t.hops.iter().any(|h| h.component == "k8s/NetworkPolicy/shop/api-ingress" && h.action == Action::Forward),
        "{}",
        explain(&t)
    );
    // Another namespace: denied at ingress.
    let t = run(&net, "pod:other/client", "pod:shop/api-1:8080");
    assert_eq!(
        last(&t),
        ("k8s/NetworkPolicy/shop/api-ingress".into(), Action::Drop, DispositionKind::Dropped),
        "{}",
        explain(&t)
    );
    // Named port resolves against the destination pod: 9090 is not `http`.
    let t = run(&net, "pod:shop/web", "pod:shop/api-1:9090");
    assert_eq!(t.disposition.kind, DispositionKind::Dropped, "{}", explain(&t));

    // Egress of web: an ipBlock with except and a port range (endPort).
    net.kubernetes.network_policies.push(policy(json!({
        "meta": meta("shop", "web-egress"),
        "pod_selector": {"match_labels": {"app": "web"}, "match_expressions": []},
        "policy_types": ["Egress"], "policy_types_explicit": true, "ingress": [],
        "egress": [{"peers": [{"pod_selector": null, "namespace_selector": null,
                               "ip_block": {"cidr": "10.0.0.0/8", "except": ["10.244.2.22/32"]}}],
                    "ports": [{"protocol": "TCP", "port": 8000, "end_port": 8100}], "pointer": "/spec/egress/0"}],
        "origin": origin("web-egress")
    })));
    let t = run(&net, "pod:shop/web", "pod:shop/api-1:8080");
    assert!(
        t.hops.iter().any(|h| h.component == "k8s/NetworkPolicy/shop/web-egress" && h.action == Action::Forward),
        "{}",
        explain(&t)
    );
    let t = run(&net, "pod:shop/web", "pod:shop/api-2:8080");
    assert_eq!(
        last(&t),
        ("k8s/NetworkPolicy/shop/web-egress".into(), Action::Drop, DispositionKind::Dropped),
        "{}",
        explain(&t)
    );
    let t = run(&net, "pod:shop/web", "10.1.2.3:8200");
    assert_eq!(t.disposition.kind, DispositionKind::Dropped, "{}", explain(&t));
}

#[test]
fn host_network_pods_and_node_traffic() {
    let mut net = cluster();
    net.kubernetes.network_policies.push(policy(json!({
        "meta": meta("shop", "deny-all"),
        "pod_selector": {"match_labels": {}, "match_expressions": []},
        "policy_types": ["Ingress", "Egress"], "policy_types_explicit": true, "ingress": [], "egress": [],
        "origin": origin("deny-all")
    })));
    // A host-network pod in shop is not subject to the policy.
    let mut hostnet = pod("shop", "agent", "192.168.0.2", "node-2", &[], &[]);
    hostnet.spec.host_network = true;
    hostnet.host_ip = Some("192.168.0.2".parse().unwrap());
    net.kubernetes.pods.push(hostnet);
    let t = run(&net, "pod:shop/agent", "10.1.2.3:443");
    assert_eq!(t.hops[0].action, Action::Forward, "{}", explain(&t));
    assert!(t.hops[0].reason.contains("host-network"), "{}", explain(&t));
    // Its node (192.168.0.2 = api-1's node) reaches api-1 despite deny-all ingress.
    net.kubernetes.pods.iter_mut().find(|p| p.meta.name == "api-1").unwrap().host_ip =
        Some("192.168.0.2".parse().unwrap());
    let t = run(&net, "192.168.0.2", "pod:shop/api-1:8080");
    assert!(t.hops.iter().any(|h| h.reason.contains("own node") && h.action == Action::Forward), "{}", explain(&t));
    // Any other address is denied.
    let t = run(&net, "pod:other/client", "pod:shop/api-1:8080");
    assert_eq!(
        last(&t),
        ("k8s/NetworkPolicy/shop/deny-all".into(), Action::Drop, DispositionKind::Dropped),
        "{}",
        explain(&t)
    );
}

#[test]
fn istio_sidecar_capture_and_registry_only() {
    let mut net = cluster();
    let web = net.kubernetes.pods.iter_mut().find(|p| p.meta.name == "web").unwrap();
    web.meta.annotations.insert("sidecar.istio.io/status".into(), "{}".into());
    web.meta.annotations.insert("traffic.sidecar.istio.io/excludeOutboundIPRanges".into(), "10.20.0.0/16".into());
    net.kubernetes.sidecars.push(
        serde_json::from_value(json!({
            "meta": meta("shop", "default"), "workload_selector": null, "egress_hosts": [],
            "outbound_traffic_policy": "REGISTRY_ONLY", "origin": origin("sidecar")
        }))
        .unwrap(),
    );
    let t = run(&net, "pod:shop/web", "10.30.0.1:443");
    assert_eq!(
        last(&t),
        ("k8s/Pod/shop/web istio-proxy".into(), Action::Drop, DispositionKind::Dropped),
        "{}",
        explain(&t)
    );
    assert!(t.hops[0].reason.contains("BlackHoleCluster"));
    // The excluded range bypasses the sidecar.
    let t = run(&net, "pod:shop/web", "10.20.1.1:443");
    assert_eq!(t.hops[0].action, Action::Forward, "{}", explain(&t));
    assert!(t.hops[0].reason.contains("excluded from capture"), "{}", explain(&t));
    // Mesh destinations are routed by the proxy.
    let t = run(&net, "pod:shop/web", "pod:shop/api-1:8080");
    assert!(t.hops[0].reason.contains("mesh destination"), "{}", explain(&t));
}

#[test]
fn usage_errors_name_what_the_bundle_has() {
    let net = cluster();
    let opts = TraceOptions::default();
    let err = netsleuth_trace::path::trace(
        &net,
        &"pod:shop/nope".parse::<Endpoint>().unwrap(),
        &"10.0.0.1".parse::<Destination>().unwrap(),
        &opts,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "no pod shop/nope in the bundle (pods in shop: web, api-1, api-2)");
    let err = netsleuth_trace::path::trace(
        &net,
        &"pod:shop/web".parse().unwrap(),
        &"svc:shop/api:99".parse().unwrap(),
        &opts,
    )
    .unwrap_err();
    assert!(matches!(err, TraceError::UnknownServicePort { .. }), "{err}");
    assert!(err.to_string().contains("web 80/TCP"), "{err}");
    let err = netsleuth_trace::path::trace(&net, &"host:gw".parse().unwrap(), &"10.0.0.1".parse().unwrap(), &opts)
        .unwrap_err();
    assert!(matches!(err, TraceError::UnknownHost { .. }), "{err}");
}
