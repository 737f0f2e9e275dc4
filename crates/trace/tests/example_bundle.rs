//! Traces over examples/gateway-incident (real command outputs with injected faults, see
//! examples/make-example.sh): each fault on a path names its dropping component.

use std::path::Path;

use netsleuth_ingest::{read_bundle, BundleOptions};
use netsleuth_model::Network;
use netsleuth_trace::path::{Action, DispositionKind, Trace, TraceOptions, Tracer};

fn example() -> Network {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/gateway-incident");
    read_bundle(&dir, &BundleOptions::default()).expect("example bundle reads")
}

fn trace(t: &Tracer<'_>, from: &str, to: &str) -> Trace {
    t.trace(&from.parse().unwrap(), &to.parse().unwrap(), &TraceOptions::default()).unwrap()
}

fn explain(t: &Trace) -> String {
    let hops: String =
        t.hops.iter().map(|h| format!("\n  {} {} {} {}", h.layer, h.component, h.action.as_str(), h.reason)).collect();
    format!("{hops}\n  => {} at {}: {}", t.disposition.kind, t.disposition.at, t.disposition.reason)
}

fn ends(t: &Trace, component: &str, kind: DispositionKind) {
    let last = t.hops.last().expect("hops");
    assert_eq!((last.component.as_str(), t.disposition.kind), (component, kind), "{}", explain(t));
    assert_eq!(t.disposition.at, component);
    assert!(!last.evidence.is_empty(), "the deciding hop cites evidence: {}", explain(t));
}

#[test]
fn gateway_without_forwarding_drops_pod_traffic_to_the_vpn() {
    let net = example();
    let t = Tracer::new(&net);
    let tr = trace(&t, "pod:shop/cart-5f6d8b", "10.20.1.10:443");
    ends(&tr, "host/gw-1 sysctl net.ipv4.ip_forward", DispositionKind::Dropped);
    assert_eq!(tr.hops.last().unwrap().evidence[0].location.path(), Some("hosts/gw-1/sysctl.txt"));
    // The sidecar captured it on the way (MESH-001) and the backend policy allowed it.
    assert!(tr
        .hops
        .iter()
        .any(|h| h.component == "k8s/Pod/shop/cart-5f6d8b istio-proxy" && h.reason.contains("captured")));
    assert!(tr
        .hops
        .iter()
        .any(|h| h.component == "k8s/NetworkPolicy/shop/allow-onprem-erp" && h.action == Action::Forward));
}

#[test]
fn default_deny_egress_blocks_dns() {
    let net = example();
    let t = Tracer::new(&net);
    let tr = trace(&t, "pod:shop/web-7d4b9c", "svc:kube-system/kube-dns:dns");
    ends(&tr, "k8s/NetworkPolicy/shop/default-deny-egress", DispositionKind::Dropped);
    assert_eq!(tr.packet.dst.to_string(), "10.244.1.2");
    assert_eq!(tr.hops[0].component, "k8s/Service/kube-system/kube-dns");
}

#[test]
fn more_specific_peer_without_handshake_drops_at_the_tunnel() {
    let net = example();
    let t = Tracer::new(&net);
    let tr = trace(&t, "host:gw-1", "10.20.5.10:443");
    let last = tr.hops.last().unwrap();
    assert!(last.component.starts_with("host/gw-1 wg wgex-gw1 peer "), "{}", explain(&tr));
    assert_eq!((last.action, tr.disposition.kind), (Action::Drop, DispositionKind::Dropped), "{}", explain(&tr));
    assert!(last.reason.contains("10.20.5.0/24"), "{}", last.reason);
    // The healthy peer: into the tunnel, whose far end is not in the bundle.
    let tr = trace(&t, "host:gw-1", "10.20.1.10:443");
    assert_eq!(tr.disposition.kind, DispositionKind::ExitsNetwork, "{}", explain(&tr));
}

#[test]
fn node_forward_policy_drops_new_connections_to_pods() {
    let net = example();
    let t = Tracer::new(&net);
    let tr = trace(&t, "host:gw-1", "10.244.1.10:8080");
    ends(&tr, "host/node-1 iptables ip filter/FORWARD", DispositionKind::Dropped);
    assert_eq!(tr.hops.last().unwrap().reason, "forward: dropped by policy drop");
}

#[test]
fn healthy_pod_to_pod_path_is_delivered_across_the_overlay() {
    let net = example();
    let t = Tracer::new(&net);
    let tr = trace(&t, "pod:shop/cart-5f6d8b", "pod:shop/web-7d4b9c:8080");
    assert_eq!(tr.disposition.kind, DispositionKind::Delivered, "{}", explain(&tr));
    let comps: Vec<&str> = tr.hops.iter().map(|h| h.component.as_str()).collect();
    assert!(comps.contains(&"host/node-2 iface vxlan0"), "{comps:?}");
    assert_eq!(comps.last(), Some(&"host/pod-web"));
    // JSON shape: hops with the five fields, disposition with kind/at/reason.
    let v = serde_json::to_value(&tr).unwrap();
    let hop = &v["hops"][0];
    for k in ["layer", "component", "action", "reason", "evidence"] {
        assert!(hop.get(k).is_some(), "hop field {k}: {hop}");
    }
    assert_eq!(v["disposition"]["kind"], "delivered");
}

#[test]
fn vpn_sourced_traffic_enters_at_the_tunnel_and_stops_at_the_gateway() {
    let net = example();
    let t = Tracer::new(&net);
    let tr = trace(&t, "10.20.1.10", "10.244.2.20:9090");
    ends(&tr, "host/gw-1 sysctl net.ipv4.ip_forward", DispositionKind::Dropped);
    assert!(tr.assumptions.iter().any(|a| a.contains("enters at gw-1 through WireGuard")), "{:?}", tr.assumptions);
}

#[test]
fn node_port_goes_to_the_node_then_to_the_endpoint() {
    let net = example();
    let t = Tracer::new(&net);
    let tr = trace(&t, "host:gw-1", "198.51.100.12:31820/udp");
    assert_eq!(tr.disposition.kind, DispositionKind::Delivered, "{}", explain(&tr));
    assert_eq!((tr.packet.dst.to_string(), tr.packet.dst_port), ("198.51.100.12".to_string(), Some(31820)));
    let comps: Vec<&str> = tr.hops.iter().map(|h| h.component.as_str()).collect();
    let kp = comps.iter().position(|c| *c == "host/node-2 kube-proxy NodePort 31820").expect("kube-proxy hop");
    // After the rewrite node-2 forwards it (masqueraded) to the endpoint on node-1, whose
    // FORWARD chain accepts pod-network sources.
    assert!(comps[kp..].contains(&"host/node-1 iptables ip filter/FORWARD"), "{comps:?}");
    assert_eq!(comps.last(), Some(&"k8s/Pod/vpn/wg-gateway-6c9f7d8b5-kq2lm"));
}

/// Sizes on the example: pod-cart's eth0 (1450) fits its veth peer and the overlay; the
/// VXLAN outer packet is 50 bytes bigger and fits the 1500-byte underlay.
#[test]
fn pod_to_pod_across_nodes_records_the_mtus() {
    let net = example();
    let t = Tracer::new(&net);
    let tr = trace(&t, "pod:shop/cart-5f6d8b", "pod:shop/web-7d4b9c:8080");
    assert_eq!(tr.disposition.kind, DispositionKind::Delivered, "{}", explain(&tr));
    assert_eq!(tr.packet.size, Some(1450));
    let first = tr.hops.iter().find(|h| h.component == "host/pod-cart iface eth0").expect("hand-off hop");
    let m = first.mtu.as_ref().expect("mtu");
    let ends = |x: &Option<netsleuth_trace::path::IfaceMtu>| x.as_ref().map(|i| (i.interface.clone(), i.mtu));
    assert_eq!(ends(&m.egress), Some(("eth0".into(), 1450)));
    assert_eq!(ends(&m.ingress), Some(("vethcart".into(), 1450)), "the veth peer, matched by index");
    assert!(
        tr.hops.iter().any(|h| h.component == "host/node-2 underlay to node-1" && h.reason.contains("1500 bytes")),
        "{}",
        explain(&tr)
    );
    // host → host by name: node-1's default-route address.
    let tr = trace(&t, "host:node-2", "host:node-1:22");
    ends_at(&tr, "host/node-1", Action::Deliver);
    assert_eq!(tr.packet.dst.to_string(), "198.51.100.11");
}

fn ends_at(t: &Trace, component: &str, action: Action) {
    let last = t.hops.last().expect("hops");
    assert_eq!((last.component.as_str(), last.action), (component, action), "{}", explain(t));
}
