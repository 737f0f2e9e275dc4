//! The Kubernetes parser on `kubectl get -o json` fixtures: typed values, pointers,
//! defaults, redaction of every planted secret.

use std::net::IpAddr;

use netsleuth_ingest::{kubernetes, ParseContext, Redactor, Source};
use netsleuth_model::kubernetes::{Cluster, IntOrString, PolicyType, WorkloadKind};
use netsleuth_model::{Location, RedactionKind};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/kubernetes/");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}{name}")).expect("fixture")
}

fn planted_secrets() -> Vec<String> {
    fixture("secrets.txt").lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(str::to_string).collect()
}

fn parse(name: &str) -> (Cluster, ParseContext) {
    let text = fixture(name);
    let path = format!("kubernetes/{name}");
    let mut cluster = Cluster::default();
    let mut ctx = ParseContext::new(Redactor::from_salt("fixture-salt"));
    kubernetes::parse(&Source::new(&path, &text), &mut cluster, &mut ctx).expect("parses");
    (cluster, ctx)
}

fn ptr(loc: &Location) -> &str {
    match loc {
        Location::Json { pointer, .. } => pointer,
        other => panic!("not a JSON location: {other:?}"),
    }
}

fn assert_no_leak(cluster: &Cluster, ctx: &ParseContext) {
    let model = serde_json::to_string(cluster).unwrap();
    let issues = serde_json::to_string(&ctx.issues).unwrap();
    let redactions = serde_json::to_string(&ctx.redactions).unwrap();
    for s in planted_secrets() {
        assert!(!model.contains(&s), "secret {}… leaked into the model", &s[..6]);
        assert!(!issues.contains(&s), "secret {}… leaked into issues", &s[..6]);
        assert!(!redactions.contains(&s), "secret {}… leaked into redactions", &s[..6]);
    }
}

#[test]
fn counts_and_skipped_kinds() {
    let (c, ctx) = parse("cluster.json");
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    assert_eq!(c.namespaces.len(), 3);
    assert_eq!(c.nodes.len(), 3);
    assert_eq!(c.pods.len(), 4);
    assert_eq!(c.services.len(), 3);
    assert_eq!(c.endpoint_slices.len(), 1);
    assert_eq!(c.network_policies.len(), 3);
    assert_eq!(c.config_maps.len(), 3);
    assert_eq!(c.secrets.len(), 1);
    assert_eq!(c.workloads.len(), 2);
    assert_eq!((c.hpas.len(), c.pdbs.len()), (1, 1));
    assert_eq!((c.peer_authentications.len(), c.sidecars.len(), c.service_entries.len()), (1, 1, 1));
    let skipped: Vec<(&str, u64)> = c.skipped_kinds.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    // The Calico NetworkPolicy is not a Kubernetes NetworkPolicy.
    assert_eq!(skipped, vec![("Endpoints", 1), ("NetworkPolicy.projectcalico.org", 1), ("ReplicaSet", 1)]);
    assert_no_leak(&c, &ctx);
}

#[test]
fn nodes() {
    let (c, _) = parse("cluster.json");
    let a = &c.nodes[0];
    assert_eq!(a.meta.name, "node-a");
    assert_eq!(ptr(&a.origin), "/items/3");
    assert_eq!(
        a.pod_cidrs.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        vec!["10.244.0.0/24", "fd00:10:244::/64"]
    );
    assert_eq!(a.internal_ips().collect::<Vec<_>>(), vec!["192.168.10.11".parse::<IpAddr>().unwrap()]);
    assert_eq!(a.condition("Ready").unwrap().status, "True");
    let node_c = c.nodes.iter().find(|n| n.meta.name == "node-c").unwrap();
    let ready = node_c.condition("Ready").unwrap();
    assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("False", Some("KubeletNotReady")));
    assert!(ready.message.as_deref().unwrap().contains("NetworkPluginNotReady"));
    assert_eq!(node_c.meta.labels.get("topology.kubernetes.io/zone").map(String::as_str), Some("eu-central-1c"));
}

#[test]
fn coredns_pods_and_service() {
    let (c, _) = parse("cluster.json");
    let dns: Vec<_> =
        c.pods.iter().filter(|p| p.meta.labels.get("k8s-app").map(String::as_str) == Some("kube-dns")).collect();
    assert_eq!(dns.len(), 2);
    let p = dns[0];
    assert_eq!((p.meta.name.as_str(), p.meta.namespace.as_str()), ("coredns-5d78c9869d-7xk2p", "kube-system"));
    assert_eq!(ptr(&p.origin), "/items/6");
    assert_eq!(p.meta.owners, vec!["ReplicaSet/coredns-5d78c9869d"]);
    assert_eq!(p.spec.dns_policy.as_deref(), Some("Default"));
    assert_eq!(p.spec.node_name.as_deref(), Some("node-a"));
    assert_eq!(p.spec.service_account.as_deref(), Some("coredns"));
    assert_eq!(p.phase.as_deref(), Some("Running"));
    assert_eq!(p.pod_ips, vec!["10.244.0.3".parse::<IpAddr>().unwrap()]);
    assert_eq!(p.host_ip, Some("192.168.10.11".parse().unwrap()));
    let ctr = &p.spec.containers[0];
    assert_eq!(ctr.pointer, "/spec/containers/0");
    assert!(ctr.readiness_probe && ctr.liveness_probe);
    assert_eq!(ctr.capabilities_add, vec!["NET_BIND_SERVICE"]);
    assert_eq!(ctr.args, vec!["-conf", "/etc/coredns/Corefile"]);
    assert_eq!(p.spec.named_port("dns"), Some((53, "UDP")));
    assert_eq!(p.spec.named_port("dns-tcp"), Some((53, "TCP")));
    assert_eq!(p.spec.named_port("metrics"), Some((9153, "TCP")));

    let svc = c.services.iter().find(|s| s.meta.name == "kube-dns").unwrap();
    assert_eq!(svc.service_type, "ClusterIP");
    assert_eq!(svc.cluster_ips, vec!["10.96.0.10".parse::<IpAddr>().unwrap()]);
    assert!(!svc.headless);
    assert_eq!(svc.selector.get("k8s-app").map(String::as_str), Some("kube-dns"));
    let ports: Vec<_> = svc.ports.iter().map(|p| (p.name.as_deref().unwrap(), p.protocol.as_str(), p.port)).collect();
    assert_eq!(ports, vec![("dns", "UDP", 53), ("dns-tcp", "TCP", 53), ("metrics", "TCP", 9153)]);
    assert_eq!(svc.ports[0].target_port, Some(IntOrString::Int(53)));

    let slice = &c.endpoint_slices[0];
    assert_eq!(slice.service_name.as_deref(), Some("kube-dns"));
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(slice.endpoints.len(), 2);
    assert_eq!(slice.endpoints[0].ready, Some(true));
    assert_eq!(slice.endpoints[1].ready, Some(false));
    assert_eq!(slice.endpoints[1].target_ref.as_deref(), Some("Pod/kube-system/coredns-5d78c9869d-q9wzt"));
    assert_eq!(slice.ports.iter().filter(|p| p.port == Some(53)).count(), 2);

    let corefile = &c.config_maps.iter().find(|m| m.meta.name == "coredns").unwrap().data["Corefile"];
    assert!(corefile.contains("forward . /etc/resolv.conf"));
    assert!(!corefile.contains("<redacted"), "nothing in a Corefile is secret");
}

#[test]
fn istio_injected_pod() {
    let (c, _) = parse("cluster.json");
    let p = c.pods.iter().find(|p| p.meta.namespace == "payments").unwrap();
    assert_eq!(ptr(&p.origin), "/items/8");
    assert_eq!(p.pod_ips.len(), 2);
    assert!(p.pod_ips[1].is_ipv6());
    let status = &p.meta.annotations["sidecar.istio.io/status"];
    assert!(status.contains("\"containers\":[\"istio-proxy\"]"), "annotation kept as is: {status}");
    let names: Vec<_> = p.spec.all_containers().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["istio-init", "api", "istio-proxy"]);
    let init = &p.spec.init_containers[0];
    assert_eq!(init.pointer, "/spec/initContainers/0");
    assert_eq!(init.capabilities_add, vec!["NET_ADMIN", "NET_RAW"]);
    assert_eq!(init.run_as_non_root, Some(false), "the container's setting beats the pod's");
    let api = &p.spec.containers[0];
    assert_eq!(api.run_as_non_root, Some(true));
    let proxy = &p.spec.containers[1];
    assert_eq!(proxy.pointer, "/spec/containers/1");
    assert!(proxy.readiness_probe && !proxy.liveness_probe);
    assert_eq!(p.spec.named_port("http"), Some((8080, "TCP")));

    let env = |n: &str| api.env.iter().find(|e| e.name == n).unwrap();
    assert_eq!(env("DB_HOST").value.as_deref(), Some("db.corp.example"));
    assert_eq!(env("LOG_LEVEL").value.as_deref(), Some("info"));
    let pw = env("DB_PASSWORD").value.as_deref().unwrap();
    assert!(pw.starts_with("<redacted:") && pw.ends_with('>'), "{pw}");
    assert_eq!(env("API_KEY").value, None);
    assert_eq!(env("API_KEY").value_from.as_deref(), Some("secretKeyRef"));
    let auth = env("UPSTREAM_AUTH_HEADER").value.as_deref().unwrap();
    assert!(auth.starts_with("Bearer <redacted:"), "only the token is replaced: {auth}");
    let fieldref = proxy.env.iter().find(|e| e.name == "POD_NAME").unwrap();
    assert_eq!(fieldref.value_from.as_deref(), Some("fieldRef"));
}

#[test]
fn wireguard_gateway() {
    let (c, ctx) = parse("cluster.json");
    let d = c.workloads.iter().find(|w| w.meta.name == "wg-gateway").unwrap();
    assert_eq!(d.kind, WorkloadKind::Deployment);
    assert_eq!(ptr(&d.origin), "/items/17");
    assert_eq!(d.replicas, Some(1));
    assert_eq!(d.selector.match_labels.get("app").map(String::as_str), Some("wg-gateway"));
    assert_eq!(d.template_labels.get("app").map(String::as_str), Some("wg-gateway"));
    let ctr = &d.template.containers[0];
    assert_eq!(ctr.pointer, "/spec/template/spec/containers/0");
    assert_eq!(ctr.capabilities_add, vec!["NET_ADMIN"]);
    assert!(!ctr.privileged);
    assert_eq!(ctr.ports[0].protocol, "UDP");
    assert_eq!(ctr.ports[0].host_port, Some(51820));
    let env = |n: &str| ctr.env.iter().find(|e| e.name == n).unwrap().value.clone();
    // A public key is not a secret.
    assert_eq!(env("WG_PUBLIC_KEY").as_deref(), Some("4rSgvlK6Un2TjCx9vYJsYuR7yJb3E9JaFNuohLd5LVE="));
    assert_eq!(env("WG_LISTEN_PORT").as_deref(), Some("51820"));
    let psk = env("IPSEC_PSK").unwrap();
    assert!(psk.starts_with("<redacted:"));
    // `--api-token VALUE`: the value after a secret-named flag is redacted.
    assert_eq!(ctr.args[2], "--api-token");
    assert!(ctr.args[3].starts_with("<redacted:"), "{}", ctr.args[3]);
    assert_eq!(ctr.args[4], "--metrics-addr=:9586");
    let hook = &d.template_annotations["example.com/webhook-auth"];
    assert!(hook.starts_with("Bearer <redacted:"), "{hook}");
    // The last-applied annotation is still JSON, with the secret env literal redacted.
    let applied: serde_json::Value =
        serde_json::from_str(&d.meta.annotations["kubectl.kubernetes.io/last-applied-configuration"]).unwrap();
    let applied_env = &applied["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(applied_env[1]["value"], "4rSgvlK6Un2TjCx9vYJsYuR7yJb3E9JaFNuohLd5LVE=");
    assert!(applied_env[3]["value"].as_str().unwrap().starts_with("<redacted:"));
    let at = |p: &str| ctx.redactions.iter().filter(|r| ptr(&r.location) == p).count();
    assert_eq!(at("/items/17/spec/template/spec/containers/0/env/3/value"), 1);
    assert_eq!(at("/items/17/spec/template/spec/containers/0/args/3"), 1);
    assert!(at("/items/17/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration") >= 2);

    let pod = c.pods.iter().find(|p| p.meta.namespace == "vpn").unwrap();
    let pod_psk = pod.spec.containers[0].env.iter().find(|e| e.name == "IPSEC_PSK").unwrap();
    assert_eq!(pod_psk.value.as_deref(), Some(psk.as_str()), "equal secrets, equal fingerprints");

    let ds = c.workloads.iter().find(|w| w.kind == WorkloadKind::DaemonSet).unwrap();
    assert_eq!((ds.meta.name.as_str(), ds.replicas), ("kube-proxy", None));
    assert!(ds.template.host_network);
    assert!(ds.template.containers[0].privileged);
}

#[test]
fn configmaps_and_secret_are_redacted_with_pointers() {
    let (c, ctx) = parse("cluster.json");
    let cm = c.config_maps.iter().find(|m| m.meta.name == "wg-gateway-config").unwrap();
    assert_eq!(ptr(&cm.origin), "/items/15");
    let wg = &cm.data["wg0.conf"];
    assert!(wg.contains("PrivateKey = <redacted:"), "{wg}");
    assert!(wg.contains("PresharedKey = <redacted:"), "{wg}");
    assert!(wg.contains("PublicKey = UgU3CMNs8IfOTjAiDIVZab/H5rvEedsHdKjC/p5kVmI="), "public key kept");
    assert!(wg.contains("Endpoint = 203.0.113.10:51820"));
    let swan = &cm.data["swanctl.conf"];
    assert!(swan.contains("secret = <redacted:"), "{swan}");
    assert!(swan.contains("remote_ts = 10.20.0.0/16"));

    let kinds_at = |p: &str| {
        let mut k: Vec<RedactionKind> =
            ctx.redactions.iter().filter(|r| ptr(&r.location) == p).map(|r| r.kind).collect();
        k.sort_by_key(|k| format!("{k:?}"));
        k
    };
    assert_eq!(
        kinds_at("/items/15/data/wg0.conf"),
        vec![RedactionKind::WireguardPresharedKey, RedactionKind::WireguardPrivateKey]
    );
    assert_eq!(kinds_at("/items/15/data/swanctl.conf"), vec![RedactionKind::IpsecSecret]);
    assert_eq!(kinds_at("/items/8/spec/containers/0/env/1/value"), vec![RedactionKind::NamedSecret]);
    assert_eq!(kinds_at("/items/8/spec/containers/0/env/3/value"), vec![RedactionKind::BearerToken]);
    assert_eq!(kinds_at("/items/16/data/ipsec-psk"), vec![RedactionKind::KubernetesSecretData]);
    assert_eq!(kinds_at("/items/16/data/privatekey"), vec![RedactionKind::KubernetesSecretData]);
    assert_eq!(
        kinds_at("/items/16/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration"),
        vec![RedactionKind::KubernetesSecretData]
    );

    let s = &c.secrets[0];
    assert_eq!((s.meta.name.as_str(), s.secret_type.as_deref()), ("wg-gateway-keys", Some("Opaque")));
    assert_eq!(s.keys.keys().collect::<Vec<_>>(), vec!["ipsec-psk", "privatekey"]);
    // The fingerprint is of the decoded value: the Secret's PSK equals the env literal's.
    let pod = c.pods.iter().find(|p| p.meta.namespace == "vpn").unwrap();
    let env = pod.spec.containers[0].env.iter().find(|e| e.name == "IPSEC_PSK").unwrap();
    assert_eq!(env.value.as_deref().unwrap(), format!("<redacted:{}>", s.keys["ipsec-psk"]));
    let applied = &s.meta.annotations["kubectl.kubernetes.io/last-applied-configuration"];
    assert!(applied.starts_with("<redacted:") && !applied.contains("data"), "redacted whole: {applied}");

    let tls = c.config_maps.iter().find(|m| m.meta.name == "legacy-tls").unwrap();
    assert!(tls.data["ca.crt"].starts_with("-----BEGIN CERTIFICATE-----\nMIIBeTCC"), "certificates are public");
    assert!(tls.data["tls.key"].starts_with("<redacted:"));
    assert_no_leak(&c, &ctx);
}

#[test]
fn network_policies() {
    let (c, _) = parse("cluster.json");
    let np = |n: &str| c.network_policies.iter().find(|p| p.meta.name == n).unwrap();
    let deny = np("default-deny-egress");
    assert_eq!(deny.policy_types, vec![PolicyType::Egress]);
    assert!(deny.policy_types_explicit);
    assert!(deny.pod_selector.is_empty());
    assert!(deny.egress.is_empty());
    assert_eq!(ptr(&deny.origin), "/items/19");

    let dns = np("allow-dns");
    assert!(!dns.policy_types_explicit);
    assert_eq!(dns.policy_types, vec![PolicyType::Ingress, PolicyType::Egress], "Kubernetes default");
    assert!(dns.ingress.is_empty());
    let rule = &dns.egress[0];
    assert_eq!(rule.pointer, "/spec/egress/0");
    let peer = &rule.peers[0];
    let ns = peer.namespace_selector.as_ref().unwrap();
    assert_eq!(ns.match_labels.get("kubernetes.io/metadata.name").map(String::as_str), Some("kube-system"));
    assert_eq!(peer.pod_selector.as_ref().unwrap().match_labels.get("k8s-app").map(String::as_str), Some("kube-dns"));
    let ports: Vec<_> = rule.ports.iter().map(|p| (p.protocol.as_str(), p.port.clone())).collect();
    assert_eq!(ports, vec![("UDP", Some(IntOrString::Int(53))), ("TCP", Some(IntOrString::Int(53)))]);

    let onprem = np("allow-onprem");
    assert_eq!(onprem.pod_selector.match_expressions[0].operator, "In");
    let mut labels = std::collections::BTreeMap::new();
    labels.insert("app".to_string(), "payments-api".to_string());
    assert!(onprem.applies_to("payments", &labels));
    assert!(!onprem.applies_to("default", &labels));
    let ing = &onprem.ingress[0];
    assert_eq!(ing.pointer, "/spec/ingress/0");
    let block = ing.peers[0].ip_block.as_ref().unwrap();
    assert_eq!(block.cidr.to_string(), "10.20.0.0/16");
    assert_eq!(block.except.iter().map(|e| e.to_string()).collect::<Vec<_>>(), vec!["10.20.99.0/24"]);
    // `namespaceSelector: {}` (all namespaces) is kept apart from an absent selector.
    assert!(ing.peers[1].namespace_selector.as_ref().is_some_and(|s| s.is_empty()));
    assert!(ing.peers[1].pod_selector.is_none());
    assert_eq!(ing.ports[0].protocol, "TCP", "protocol defaults to TCP");
    assert_eq!(ing.ports[0].port, Some(IntOrString::String("http".into())));
    let eg = &onprem.egress[0];
    assert_eq!((eg.ports[0].port.clone(), eg.ports[0].end_port), (Some(IntOrString::Int(30000)), Some(32767)));
}

#[test]
fn autoscaling_budgets_and_istio() {
    let (c, _) = parse("cluster.json");
    let hpa = &c.hpas[0];
    assert_eq!(hpa.target, ("Deployment".to_string(), "payments-api".to_string()));
    assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(2), Some(10)));
    let pdb = &c.pdbs[0];
    assert_eq!(pdb.min_available, Some(IntOrString::Int(1)));
    assert_eq!(pdb.max_unavailable, None);
    assert_eq!(pdb.selector.match_labels.get("k8s-app").map(String::as_str), Some("kube-dns"));
    let pa = &c.peer_authentications[0];
    assert_eq!(pa.mtls_mode.as_deref(), Some("STRICT"));
    assert_eq!(pa.selector, None, "no selector: namespace-wide");
    assert_eq!(pa.port_levels.get(&15090).map(String::as_str), Some("PERMISSIVE"));
    let sc = &c.sidecars[0];
    assert_eq!(sc.outbound_traffic_policy.as_deref(), Some("REGISTRY_ONLY"));
    assert_eq!(sc.egress_hosts, vec!["./*", "istio-system/*"]);
    let se = &c.service_entries[0];
    assert_eq!(se.hosts, vec!["db.corp.example"]);
    assert_eq!(se.addresses, vec!["10.20.0.0/16"]);
    assert_eq!(se.ports, vec![(5432, "TCP".to_string())]);
    assert_eq!((se.location.as_deref(), se.resolution.as_deref()), (Some("MESH_EXTERNAL"), Some("NONE")));
    let payments = c.services.iter().find(|s| s.meta.name == "payments-api").unwrap();
    assert_eq!(payments.ports[0].target_port, Some(IntOrString::String("http".into())));
    let headless = c.services.iter().find(|s| s.meta.name == "payments-api-headless").unwrap();
    assert!(headless.headless && headless.cluster_ips.is_empty());
    let ns = c.namespace("payments").unwrap();
    assert_eq!(ns.meta.labels.get("istio-injection").map(String::as_str), Some("enabled"));
}

#[test]
fn typed_pod_list_without_item_kinds() {
    let (c, ctx) = parse("pods-typed.json");
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    assert_eq!(c.pods.len(), 4);
    assert!(c.skipped_kinds.is_empty());
    assert_eq!(ptr(&c.pods[2].origin), "/items/2");
    assert_eq!(c.pods[2].meta.name, "payments-api-7c9d8f6b5-x2x7q");
    assert_no_leak(&c, &ctx);
}

#[test]
fn single_object() {
    let (c, ctx) = parse("single-pod.json");
    assert_eq!(c.pods.len(), 1);
    assert_eq!(ptr(&c.pods[0].origin), "", "the whole document");
    assert_eq!(c.pods[0].meta.name, "wg-gateway-6f7b9c8d4-k8s2n");
    let pointers: Vec<&str> = ctx.redactions.iter().map(|r| ptr(&r.location)).collect();
    assert_eq!(pointers, vec!["/spec/containers/0/env/3/value", "/spec/containers/0/args/3"]);
    assert_no_leak(&c, &ctx);
}

#[test]
fn same_salt_same_fingerprints_other_salt_others() {
    let (_, a) = parse("cluster.json");
    let (_, b) = parse("cluster.json");
    assert_eq!(a.redactions, b.redactions);
    let text = fixture("cluster.json");
    let mut c = Cluster::default();
    let mut other = ParseContext::new(Redactor::from_salt("another-salt"));
    kubernetes::parse(&Source::new("k.json", &text), &mut c, &mut other).unwrap();
    assert_eq!(other.redactions.len(), a.redactions.len());
    assert_ne!(other.redactions[0].secret, a.redactions[0].secret);
}

/// Items of a big list (over 4 MiB: converted on several threads while it is scanned)
/// for `big_lists_keep_item_order`; `typed` leaves out each item's kind and apiVersion.
fn big_list_items(n: usize, bad: impl Fn(usize) -> bool, typed: bool) -> Vec<String> {
    let pad = "x".repeat(1000);
    (0..n)
        .map(|i| {
            let head = if typed { String::new() } else { r#""apiVersion":"v1","kind":"Pod","#.to_string() };
            if bad(i) {
                return format!(r#"{{{head}"pad":"{pad}","spec":{{"containers":[{{"ports":[{{"containerPort":"x"}}]}}]}}}}"#);
            }
            match i % 3 {
                1 if !typed => format!(r#"{{"apiVersion":"example.com/v1","kind":"Widget","metadata":{{"name":"w{i}"}}}}"#),
                // EndpointSlice-like order: the kind comes after a big value.
                2 if !typed => format!(
                    r#"{{"data":{{"k":"v","pad":"{pad}"}},"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"c{i}"}}}}"#
                ),
                _ => format!(
                    r#"{{{head}"metadata":{{"name":"p{i}","namespace":"ns"}},"pad":"{pad}",
                    "spec":{{"containers":[{{"name":"c","env":[{{"name":"TOKEN","value":"t{i}"}}]}}]}}}}"#
                ),
            }
        })
        .collect()
}

/// A list big enough to be converted on several threads gives the same, ordered result
/// as item by item: pointers, warnings and redactions in item order; whether the list's
/// kind comes before or after its items, and for typed lists whose items have no kind.
#[test]
// The workspace's rust-version (1.85) predates `is_multiple_of`.
#[allow(clippy::manual_is_multiple_of)]
fn big_lists_keep_item_order() {
    let n = 9_000;
    let bad = |i: usize| i % 1000 == 1;
    for layout in ["kubectl", "kind-first", "typed"] {
        let typed = layout == "typed";
        let items = big_list_items(n, bad, typed).join(",\n");
        let text = match layout {
            "kubectl" => format!(r#"{{"apiVersion":"v1","items":[{items}],"kind":"List","metadata":{{}}}}"#),
            "kind-first" => format!(r#"{{"kind":"List","apiVersion":"v1","items":[{items}]}}"#),
            _ => format!(r#"{{"apiVersion":"v1","items":[{items}],"kind":"PodList"}}"#),
        };
        assert!(text.len() > 5 << 20, "big enough for the threaded path: {}", text.len());
        let mut c = Cluster::default();
        let mut ctx = ParseContext::new(Redactor::from_salt("order"));
        kubernetes::parse(&Source::new("k.json", &text), &mut c, &mut ctx).unwrap();
        let pod_index = |i: &usize| !bad(*i) && (typed || i % 3 == 0);
        let good_pods: Vec<usize> = (0..n).filter(pod_index).collect();
        assert_eq!(c.pods.len(), good_pods.len(), "{layout}");
        if !typed {
            assert_eq!(c.config_maps.len(), (0..n).filter(|i| i % 3 == 2 && !bad(*i)).count());
            assert_eq!(c.skipped_kinds["Widget"], (0..n).filter(|i| i % 3 == 1 && !bad(*i)).count() as u64);
        }
        for (p, i) in c.pods.iter().zip(&good_pods) {
            assert_eq!(p.meta.name, format!("p{i}"));
            assert_eq!(ptr(&p.origin), format!("/items/{i}"));
        }
        let warned: Vec<String> = ctx.issues.iter().map(|i| ptr(&i.location).to_string()).collect();
        assert_eq!(warned, (0..n).filter(|i| bad(*i)).map(|i| format!("/items/{i}")).collect::<Vec<_>>());
        // Line and column of each bad item's field, in the whole file.
        let bad_at: Vec<usize> = text.match_indices(r#""containerPort":"x""#).map(|(at, _)| at).collect();
        assert_eq!(bad_at.len(), ctx.issues.len());
        for (issue, at) in ctx.issues.iter().zip(bad_at) {
            let line = text[..at].matches('\n').count() + 1;
            let column = at - text[..at].rfind('\n').map_or(0, |p| p + 1) + "\"containerPort\":\"x\"".len();
            let expected = format!("Pod not read: line {line}, column {column}: ");
            assert!(issue.message.starts_with(&expected), "{} / {expected}", issue.message);
        }
        assert_eq!(ctx.redactions.len(), good_pods.len());
        let last = good_pods[good_pods.len() - 1];
        assert_eq!(
            ptr(&ctx.redactions[good_pods.len() - 1].location),
            format!("/items/{last}/spec/containers/0/env/0/value")
        );
        assert_eq!(ctx.redactions[5].secret, ctx.redactor.secret(&format!("t{}", good_pods[5])));
    }
}

#[test]
fn big_broken_or_single_objects() {
    let items = big_list_items(9_000, |_| false, false).join(",\n");
    let text = format!(r#"{{"apiVersion":"v1","items":[{items}],"kind":"List"}}"#);
    // Cut near the end: an error, and nothing of the file is added.
    let cut = &text[..text.len() - 40];
    let mut c = Cluster::default();
    let mut ctx = ParseContext::new(Redactor::from_salt("big"));
    let e = kubernetes::parse(&Source::new("k.json", cut), &mut c, &mut ctx).unwrap_err();
    assert!(e.line.is_some() && e.message.contains("EOF"), "{e}");
    assert!(c.is_empty() && ctx.redactions.is_empty() && ctx.issues.is_empty());
    // A big single object (a ConfigMap with a large value) is one object.
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"k":"{}"}}}}"#,
        "y".repeat(5 << 20)
    );
    kubernetes::parse(&Source::new("k.json", &big), &mut c, &mut ctx).unwrap();
    assert_eq!(c.config_maps.len(), 1);
    assert_eq!(ptr(&c.config_maps[0].origin), "");
    // A big object that has `items` but is no list (kind Widget) is one object too.
    let odd = format!(r#"{{"apiVersion":"example.com/v1","items":[{items}],"kind":"Widget"}}"#);
    kubernetes::parse(&Source::new("k.json", &odd), &mut c, &mut ctx).unwrap();
    assert_eq!(c.skipped_kinds["Widget"], 1);
    assert_eq!(c.pods.len(), 0);
}

#[test]
fn older_api_versions_and_defaults() {
    let text = r#"{"apiVersion":"v1","kind":"List","items":[
      {"apiVersion":"autoscaling/v1","kind":"HorizontalPodAutoscaler","metadata":{"name":"web","namespace":"a"},
       "spec":{"maxReplicas":5,"scaleTargetRef":{"apiVersion":"apps/v1","kind":"StatefulSet","name":"web"},
               "targetCPUUtilizationPercentage":80}},
      {"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"web","namespace":"a"},
       "spec":{"maxUnavailable":"25%","selector":{"matchLabels":{"app":"web"}}}},
      {"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"empty-types","namespace":"a"},
       "spec":{"podSelector":{},"policyTypes":[],"egress":[]}},
      {"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"egress-only-rules","namespace":"a"},
       "spec":{"podSelector":{"matchLabels":{"app":"web"}},"egress":[{}]}},
      {"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","namespace":"a"},"type":"kubernetes.io/tls",
       "data":{"tls.key":"c2VjcmV0"},"stringData":{"tls.key":"secret","extra":"other"}},
      {"apiVersion":"v1","kind":"Service","metadata":{"name":"ext","namespace":"a"},
       "spec":{"type":"ExternalName","externalName":"db.corp.example"}},
      {"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"web","namespace":"a"},
       "spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},
               "spec":{"containers":[{"name":"w","env":[{"name":"X","valueFrom":{"futureRef":{}}}]}]}}}},
      {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"ext-1","namespace":"a"},
       "addressType":"FQDN","endpoints":[{"addresses":["db.corp.example"]}]}
    ]}"#;
    let mut c = Cluster::default();
    let mut ctx = ParseContext::new(Redactor::from_salt("v1"));
    kubernetes::parse(&Source::new("k.json", text), &mut c, &mut ctx).unwrap();
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    assert_eq!(c.hpas[0].target, ("StatefulSet".to_string(), "web".to_string()));
    assert_eq!((c.hpas[0].min_replicas, c.hpas[0].max_replicas), (None, Some(5)));
    assert_eq!(c.pdbs[0].max_unavailable, Some(IntOrString::String("25%".into())));
    // `policyTypes: []` is defaulted like an absent list; an empty `egress` adds nothing.
    assert_eq!(c.network_policies[0].policy_types, vec![PolicyType::Ingress]);
    assert!(!c.network_policies[0].policy_types_explicit);
    // One empty egress rule (allow all egress) does add Egress.
    assert_eq!(c.network_policies[1].policy_types, vec![PolicyType::Ingress, PolicyType::Egress]);
    assert!(c.network_policies[1].egress[0].peers.is_empty() && c.network_policies[1].egress[0].ports.is_empty());
    // stringData wins over data for the same key; both are fingerprints of the value.
    let s = &c.secrets[0];
    assert_eq!(s.keys["tls.key"], ctx.redactor.fingerprint("secret"));
    assert_eq!(s.keys["extra"], ctx.redactor.fingerprint("other"));
    assert_eq!(c.services[0].service_type, "ExternalName");
    assert!(c.services[0].cluster_ips.is_empty() && !c.services[0].headless);
    let sts = &c.workloads[0];
    assert_eq!((sts.kind, sts.replicas), (WorkloadKind::StatefulSet, None));
    assert_eq!(sts.template.containers[0].env[0].value_from.as_deref(), Some("unrecognised"));
    assert_eq!(c.endpoint_slices[0].address_type, "FQDN");
    assert!(c.endpoint_slices[0].endpoints[0].addresses.is_empty());
}
