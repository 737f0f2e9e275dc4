//! `reach` over the NCA agreement corpus (tests/nca-corpus) and hand-built clusters: each
//! expectation is derived from the Kubernetes NetworkPolicy specification, not from output.

use std::path::PathBuf;

use netsleuth_ingest::{read_bundle, BundleOptions};
use netsleuth_model::kubernetes::Cluster;
use netsleuth_model::Network;
use netsleuth_trace::reach::{render, Cell, Endpoint, Matrix, Protocol, ReachError, Selector, Side};

fn corpus(case: &str) -> Network {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/nca-corpus").join(case);
    let net = read_bundle(&dir, &BundleOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    assert_eq!(net.kubernetes.pods.len(), 9, "{case}: the corpus cluster has 9 pods");
    net
}

fn sel(s: &str) -> Selector {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

/// The verdict of one pair; `port` is `tcp/80` style.
fn cell(c: &Cluster, from: &str, to: &str, port: &str) -> Cell {
    let (proto, num) = port.split_once('/').unwrap_or(("tcp", port));
    let proto: Protocol = proto.parse().unwrap_or_else(|e| panic!("{e}"));
    let num: u16 = num.parse().unwrap_or_else(|e| panic!("{port}: {e}"));
    let m = Matrix::compute(c, &[sel(from)], &[sel(to)], proto, num).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((m.source_count(), m.target_count()), (1, 1), "{from} -> {to}");
    m.cell(0, 0).unwrap_or(Cell::Unknown)
}

fn allowed(c: &Cluster, from: &str, to: &str, port: &str) -> bool {
    cell(c, from, to, port).is_allowed()
}

#[test]
fn without_policies_everything_is_allowed() {
    let net = corpus("01-no-policies");
    let m = Matrix::compute(&net.kubernetes, &[sel("all"), sel("ip:192.0.2.10")], &[sel("all")], Protocol::Udp, 81)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((m.source_count(), m.target_count()), (10, 9));
    assert_eq!(m.allowed_count(), 90);
}

#[test]
fn default_deny_ingress_isolates_only_its_namespace() {
    let c = &corpus("02-default-deny-ingress").kubernetes;
    assert_eq!(cell(c, "y/a", "x/b", "tcp/80"), Cell::DeniedIngress);
    assert_eq!(cell(c, "x/a", "x/b", "tcp/80"), Cell::DeniedIngress);
    assert!(allowed(c, "x/a", "y/b", "tcp/80"), "egress of x is not isolated");
    assert!(!allowed(c, "ip:192.0.2.10", "x/a", "udp/80"));
    // A pod always reaches itself: the traffic never leaves it.
    assert_eq!(cell(c, "x/a", "x/a", "tcp/80"), Cell::SelfTraffic);
}

#[test]
fn default_deny_egress_blocks_addresses_too() {
    let c = &corpus("03-default-deny-egress").kubernetes;
    assert_eq!(cell(c, "x/a", "y/a", "tcp/80"), Cell::DeniedEgress);
    assert_eq!(cell(c, "x/a", "ip:203.0.113.5", "tcp/80"), Cell::DeniedEgress);
    assert!(allowed(c, "y/a", "x/a", "tcp/80"));
}

#[test]
fn namespace_and_pod_selector_and_versus_or() {
    let and = &corpus("10-namespace-and-pod-selector").kubernetes;
    let or = &corpus("11-namespace-or-pod-selector").kubernetes;
    for c in [and, or] {
        assert!(allowed(c, "y/b", "x/a", "tcp/80"));
        assert!(!allowed(c, "z/b", "x/a", "tcp/80"), "b outside x and y");
    }
    assert!(!allowed(and, "y/a", "x/a", "tcp/80"));
    assert!(allowed(or, "y/a", "x/a", "tcp/80"));
    assert!(!allowed(and, "x/b", "x/a", "tcp/80"));
    assert!(allowed(or, "x/b", "x/a", "tcp/80"), "podSelector alone = the policy's namespace");
}

#[test]
fn named_ports_resolve_on_each_destination() {
    let c = &corpus("17-named-port-per-pod").kubernetes;
    assert!(allowed(c, "x/a", "y/b", "tcp/8080"));
    assert!(!allowed(c, "x/a", "y/b", "tcp/8081"));
    assert!(allowed(c, "x/a", "y/c", "tcp/8081"));
    assert!(!allowed(c, "x/a", "y/a", "tcp/8080"), "y/a declares no port 'web'");
    let egress = &corpus("18-named-port-egress").kubernetes;
    assert!(allowed(egress, "x/a", "y/c", "udp/53"));
    assert!(allowed(egress, "x/a", "y/a", "udp/5353"));
    assert!(!allowed(egress, "x/a", "y/a", "udp/53"));
    assert!(!allowed(egress, "x/a", "ip:203.0.113.5", "udp/53"), "a name never resolves on an address");
    let mismatch = &corpus("19-named-port-protocol-mismatch").kubernetes;
    assert!(!allowed(mismatch, "x/a", "y/b", "tcp/8080"));
    assert!(!allowed(mismatch, "x/a", "y/b", "udp/8080"));
    assert!(allowed(mismatch, "x/a", "y/b", "udp/81"));
}

#[test]
fn end_port_ranges_are_inclusive() {
    let c = &corpus("20-endport-ingress").kubernetes;
    assert!(allowed(c, "z/a", "x/a", "tcp/8080"));
    assert!(allowed(c, "z/a", "x/a", "tcp/81"));
    assert!(!allowed(c, "z/a", "x/a", "tcp/8081"));
    assert!(!allowed(c, "z/a", "x/a", "tcp/82"));
    assert!(!allowed(c, "z/a", "x/a", "udp/80"));
}

#[test]
fn policy_types_default_to_ingress_plus_egress_when_egress_rules_exist() {
    let c = &corpus("22-policytypes-default-egress-rules").kubernetes;
    assert_eq!(cell(c, "y/a", "x/a", "tcp/80"), Cell::DeniedIngress);
    assert!(allowed(c, "x/a", "y/a", "tcp/80"));
    assert_eq!(cell(c, "x/a", "z/a", "tcp/80"), Cell::DeniedEgress);
    let ingress_only = &corpus("23-policytypes-ingress-ignores-egress").kubernetes;
    assert!(allowed(ingress_only, "x/a", "z/c", "tcp/80"), "egress rules without the Egress type are ignored");
}

#[test]
fn ip_blocks_honour_except_and_match_pod_addresses() {
    let c = &corpus("28-ipblock-ingress-except").kubernetes;
    assert!(allowed(c, "ip:192.0.2.10", "x/a", "tcp/80"));
    assert!(!allowed(c, "ip:192.0.2.200", "x/a", "tcp/80"), "except");
    assert!(!allowed(c, "ip:192.0.2.10", "x/a", "tcp/81"));
    assert!(!allowed(c, "y/a", "x/a", "tcp/80"));
    // As the upstream e2e test 'should allow egress access to server in CIDR block' expects.
    let pods = &corpus("30-ipblock-egress-pod-cidr").kubernetes;
    assert!(allowed(pods, "x/a", "y/a", "tcp/80"));
    assert!(!allowed(pods, "x/a", "y/c", "tcp/80"), "10.2.0.3 is excepted");
    assert!(!allowed(pods, "x/a", "z/a", "tcp/80"));
    assert!(allowed(pods, "x/a", "ip:198.51.100.7", "udp/53"));
}

#[test]
fn both_egress_and_ingress_must_allow() {
    let c = &corpus("32-egress-and-ingress-both-required").kubernetes;
    assert_eq!(cell(c, "x/a", "y/b", "tcp/80"), Cell::DeniedIngress);
    assert!(allowed(c, "x/a", "y/a", "tcp/80"));
    assert!(allowed(c, "x/c", "y/b", "tcp/80"));
    assert_eq!(cell(c, "x/a", "z/b", "tcp/80"), Cell::DeniedEgress);
    let net = corpus("04-default-deny-all");
    assert_eq!(cell(&net.kubernetes, "x/a", "x/b", "tcp/80"), Cell::DeniedBoth);
}

#[test]
fn explain_names_the_policies() {
    let net = corpus("32-egress-and-ingress-both-required");
    let m = Matrix::compute(&net.kubernetes, &[sel("x/a")], &[sel("y/b"), sel("y/a")], Protocol::Tcp, 80)
        .unwrap_or_else(|e| panic!("{e}"));
    let denied = m.explain(0, 1).unwrap_or_else(|| panic!("no cell"));
    assert_eq!(denied.cell, Cell::DeniedIngress);
    assert_eq!(denied.ingress, Side::DeniedBy(vec!["y/y-b-ingress-from-x-c".into()]));
    assert_eq!(
        denied.egress,
        Side::AllowedBy { policy: "x/x-a-egress-to-y".into(), rule: "/spec/egress/0".into() },
        "egress allowed by its rule"
    );
    let ok = m.explain(0, 0).unwrap_or_else(|| panic!("no cell"));
    assert_eq!(ok.ingress, Side::NotIsolated);
    assert!(m.explain(1, 0).is_none() && m.explain(0, 2).is_none());
}

#[test]
fn selectors_that_match_nothing_are_errors() {
    let net = corpus("01-no-policies");
    let err = Matrix::compute(&net.kubernetes, &[sel("ns:nope")], &[sel("all")], Protocol::Tcp, 80).err();
    assert_eq!(err, Some(ReachError::NoMatch("ns:nope".into())));
    let err = Matrix::compute(&net.kubernetes, &[sel("all,pod=zz")], &[sel("all")], Protocol::Tcp, 80).err();
    assert!(matches!(err, Some(ReachError::NoMatch(_))));
    assert_eq!(
        Matrix::compute(&net.kubernetes, &[], &[sel("all")], Protocol::Tcp, 80).err(),
        Some(ReachError::Empty("source"))
    );
    // Label terms select across namespaces; duplicates from several selectors count once.
    let m =
        Matrix::compute(&net.kubernetes, &[sel("tier=frontend"), sel("x/a")], &[sel("ns:y,!tier")], Protocol::Tcp, 80)
            .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<String> = m.sources().map(|e| e.name()).collect();
    assert_eq!(names, ["x/a", "y/a", "z/a"]);
    let targets: Vec<String> = m.targets().map(|e| e.name()).collect();
    assert_eq!(targets, ["y/c"]);
}

#[test]
fn namespace_aggregation_counts_pairs() {
    let net = corpus("02-default-deny-ingress");
    let m = Matrix::compute(&net.kubernetes, &[sel("all")], &[sel("all")], Protocol::Tcp, 80)
        .unwrap_or_else(|e| panic!("{e}"));
    let a = m.by_namespace();
    assert_eq!(a.rows, ["x", "y", "z"]);
    // Into x only each pod itself gets through: 3 of the 9 x->x pairs, 0 of y->x.
    assert_eq!(a.get(0, 0), (3, 9));
    assert_eq!(a.get(1, 0), (0, 9));
    assert_eq!(a.get(0, 1), (9, 9));
    let mut out = Vec::new();
    render::aggregate_json(&a, &[], &mut out).unwrap_or_else(|e| panic!("{e}"));
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["allowed_pairs"][1][0], 0);
    assert_eq!(v["pairs"][1][0], 9);
}

#[test]
fn renderers_agree_with_the_matrix() {
    let net = corpus("04-default-deny-all");
    let m = Matrix::compute(&net.kubernetes, &[sel("ns:x"), sel("ip:192.0.2.10")], &[sel("all")], Protocol::Tcp, 80)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut csv = Vec::new();
    render::csv(&m, true, &mut csv).unwrap_or_else(|e| panic!("{e}"));
    let csv = String::from_utf8(csv).unwrap_or_default();
    assert_eq!(csv.lines().count(), 1 + 4 * 9);
    assert!(
        csv.contains("x/a,x/b,TCP,80,false,denied-egress-and-ingress,denied (isolated by x/default-deny-all),denied"),
        "{csv}"
    );
    assert!(csv.contains("192.0.2.10,y/a,TCP,80,true,allowed"));
    let mut json = Vec::new();
    render::json(&m, true, &["kubernetes/x.yaml: bad".into()], &mut json).unwrap_or_else(|e| panic!("{e}"));
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["allowed"][0][0], true, "x/a to itself");
    assert_eq!(v["allowed"][0][1], false);
    assert_eq!(v["summary"]["allowed"], m.allowed_count());
    assert_eq!(v["input_issues"][0], "kubernetes/x.yaml: bad");
    assert_eq!(v["denied"][0]["egress"]["verdict"], "denied");
    let mut text = Vec::new();
    render::text(&m, false, &[], &mut text).unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8(text).unwrap_or_default();
    assert!(text.starts_with(&format!("TCP 80: {} of 36 pairs allowed", m.allowed_count())), "{text}");
    assert!(text.contains("[9] z/c"));
}

/// Writes `yaml` as a one-file bundle and reads it.
fn bundle(yaml: &str) -> Network {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(dir.path().join("kubernetes")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("kubernetes/cluster.yaml"), yaml).unwrap_or_else(|e| panic!("{e}"));
    let net = read_bundle(dir.path(), &BundleOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(net.ingest_issues.is_empty(), "{:?}", net.ingest_issues);
    net
}

fn pod_yaml(ns: &str, name: &str, node: &str, ip: &str, host_network: bool, phase: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {{app: {name}}}}}\n\
         spec: {{nodeName: {node}, hostNetwork: {host_network}, containers: [{{name: c, image: x}}]}}\n\
         status: {{phase: {phase}, podIP: {ip}, hostIP: {ip}}}\n"
    )
}

#[test]
fn host_network_pods_are_their_node() {
    let mut docs = vec![
        pod_yaml("app", "web", "node-1", "10.0.1.5", false, "Running"),
        pod_yaml("app", "api", "node-2", "10.0.2.5", false, "Running"),
        pod_yaml("kube-system", "agent-1", "node-1", "192.168.0.1", true, "Running"),
        pod_yaml("kube-system", "agent-2", "node-2", "192.168.0.2", true, "Running"),
        pod_yaml("app", "job", "node-2", "10.0.2.9", false, "Succeeded"),
    ];
    // web: ingress only from pods of kube-system (selectors) and from 192.168.0.2/32.
    docs.push(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web, namespace: app}\n\
         spec:\n  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress, Egress]\n  ingress:\n  - from:\n    \
         - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}\n"
            .to_string(),
    );
    let net = bundle(&docs.join("---\n"));
    let c = &net.kubernetes;
    // The node of web reaches it and back, whatever the policies say.
    assert_eq!(cell(c, "kube-system/agent-1", "app/web", "tcp/80"), Cell::SameNode);
    assert_eq!(cell(c, "app/web", "kube-system/agent-1", "tcp/10250"), Cell::SameNode);
    // Another node's host-network pod is not matched by the namespaceSelector.
    assert_eq!(cell(c, "kube-system/agent-2", "app/web", "tcp/80"), Cell::DeniedIngress);
    // web's egress is isolated (no egress rules): towards a host-network pod, too.
    assert_eq!(cell(c, "app/web", "kube-system/agent-2", "tcp/80"), Cell::DeniedEgress);
    // Host-network pods are never isolated themselves.
    assert!(allowed(c, "app/api", "kube-system/agent-1", "tcp/80"));
    // Completed pods have no network: not selectable.
    let m = Matrix::compute(c, &[sel("ns:app")], &[sel("all")], Protocol::Tcp, 80).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.source_count(), 2);
    assert!(Matrix::compute(c, &[sel("app/job")], &[sel("all")], Protocol::Tcp, 80).is_err());
}

#[test]
fn ip_blocks_match_host_network_pods_by_node_address() {
    let docs = [
        pod_yaml("app", "web", "node-1", "10.0.1.5", false, "Running"),
        pod_yaml("kube-system", "agent-2", "node-2", "192.168.0.2", true, "Running"),
        pod_yaml("kube-system", "agent-3", "node-3", "192.168.0.3", true, "Running"),
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web, namespace: app}\n\
         spec:\n  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 192.168.0.0/24, except: [192.168.0.3/32]}\n"
            .to_string(),
    ];
    let net = bundle(&docs.join("---\n"));
    let c = &net.kubernetes;
    assert!(allowed(c, "kube-system/agent-2", "app/web", "tcp/80"));
    assert_eq!(cell(c, "kube-system/agent-3", "app/web", "tcp/80"), Cell::DeniedIngress);
}

/// Equivalence classes must give exactly the pair-by-pair answer.
fn assert_same_as_pairwise(c: &Cluster, what: &str) {
    let all: Vec<Endpoint<'_>> = c
        .pods
        .iter()
        .map(Endpoint::Pod)
        .chain(
            ["192.0.2.10", "10.0.0.1", "10.2.0.3", "8.8.8.8"].iter().filter_map(|a| a.parse().ok()).map(Endpoint::Ip),
        )
        .collect();
    for (proto, port) in [(Protocol::Tcp, 8080), (Protocol::Tcp, 80), (Protocol::Udp, 53), (Protocol::Tcp, 443)] {
        let fast = Matrix::from_endpoints(c, &all, &all, proto, port);
        let slow = Matrix::from_endpoints_pairwise(c, &all, &all, proto, port);
        let mut differ = 0;
        for i in 0..all.len() {
            assert_eq!(fast.row(i).len(), all.len());
            differ += fast.row(i).iter().zip(slow.row(i)).filter(|(a, b)| a != b).count();
        }
        assert_eq!(differ, 0, "{what} {proto} {port}: {differ} cells differ");
    }
}

#[test]
fn classes_agree_with_pairwise_evaluation() {
    for case in [
        "04-default-deny-all",
        "17-named-port-per-pod",
        "30-ipblock-egress-pod-cidr",
        "38-egress-named-port-to-ipblock",
    ] {
        assert_same_as_pairwise(&corpus(case).kubernetes, case);
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let spec =
        netsleuth_synth::Spec { nodes: 20, pods: 600, policies: 80, namespaces: 3, seed: 7, hosts: 0, pretty: false };
    netsleuth_synth::generate(&spec, dir.path(), false).unwrap_or_else(|e| panic!("{e}"));
    let net = read_bundle(dir.path(), &BundleOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(net.kubernetes.pods.len() >= 500);
    let allowed = Matrix::from_endpoints(
        &net.kubernetes,
        &net.kubernetes.pods.iter().map(Endpoint::Pod).collect::<Vec<_>>(),
        &net.kubernetes.pods.iter().map(Endpoint::Pod).collect::<Vec<_>>(),
        Protocol::Tcp,
        8080,
    )
    .allowed_count();
    // Not a degenerate cluster: some pairs beyond the diagonal are allowed, not all.
    assert!(allowed > net.kubernetes.pods.len() && allowed < net.kubernetes.pods.len().pow(2), "{allowed}");
    assert_same_as_pairwise(&net.kubernetes, "synthetic");
}

#[test]
fn wide_text_matrices_become_per_source_lists() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let spec =
        netsleuth_synth::Spec { nodes: 5, pods: 120, policies: 20, namespaces: 2, seed: 3, hosts: 0, pretty: false };
    netsleuth_synth::generate(&spec, dir.path(), false).unwrap_or_else(|e| panic!("{e}"));
    let net = read_bundle(dir.path(), &BundleOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let m = Matrix::compute(&net.kubernetes, &[sel("ns:kube-system")], &[sel("all")], Protocol::Tcp, 8080)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(m.target_count() > render::GRID_MAX_TARGETS);
    let mut out = Vec::new();
    render::text(&m, false, &[], &mut out).unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8(out).unwrap_or_default();
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines.len(), m.source_count(), "{text}");
    for (i, line) in lines.iter().enumerate() {
        let allowed = m.row(i).iter().filter(|c| c.is_allowed()).count();
        assert!(line.contains(&format!(": {allowed} of {} allowed", m.target_count())), "{line}");
        let denied = m.target_count() - allowed;
        if denied > render::LIST_MAX_NAMES {
            assert!(
                line.ends_with(&format!("and {} more (use --format csv for all)", denied - render::LIST_MAX_NAMES)),
                "{line}"
            );
        }
    }
    assert!(!text.contains("legend"), "no grid");
    assert!(text.contains("more (use --format csv for all)"), "{text}");
}

#[test]
fn a_node_address_and_its_pods_always_reach_each_other() {
    let mut docs = vec![
        "apiVersion: v1\nkind: Node\nmetadata: {name: node-1}\n\
         status: {addresses: [{type: InternalIP, address: 192.168.0.1}, {type: ExternalIP, address: 203.0.113.1}]}\n"
            .to_string(),
        pod_yaml("app", "web", "node-1", "10.0.1.5", false, "Running")
            .replace("hostIP: 10.0.1.5", "hostIP: 192.168.0.1"),
        pod_yaml("app", "api", "node-2", "10.0.2.5", false, "Running")
            .replace("hostIP: 10.0.2.5", "hostIP: 192.168.0.2"),
    ];
    docs.push(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: app}\n\
         spec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n"
            .to_string(),
    );
    let net = bundle(&docs.join("---\n"));
    let c = &net.kubernetes;
    assert_eq!(cell(c, "ip:192.168.0.1", "app/web", "tcp/8080"), Cell::SameNode, "kubelet probes");
    assert_eq!(cell(c, "ip:203.0.113.1", "app/web", "tcp/8080"), Cell::SameNode, "any address of the Node");
    assert_eq!(cell(c, "app/web", "ip:192.168.0.1", "tcp/10250"), Cell::SameNode);
    assert_eq!(cell(c, "ip:192.168.0.1", "app/api", "tcp/8080"), Cell::DeniedIngress, "another node");
    assert_eq!(cell(c, "app/api", "ip:192.168.0.1", "tcp/8080"), Cell::DeniedEgress);
}

#[test]
fn empty_rule_lists_and_protocol_only_ports() {
    let c = &corpus("41-ingress-empty-list").kubernetes;
    assert_eq!(cell(c, "x/a", "y/c", "tcp/80"), Cell::DeniedIngress, "ingress: [] allows nothing");
    assert!(allowed(c, "y/c", "x/a", "tcp/80"));
    let c = &corpus("44-udp-any-port-sctp-range").kubernetes;
    assert!(allowed(c, "x/a", "z/b", "udp/5353"));
    assert!(allowed(c, "x/a", "z/b", "sctp/80"));
    assert!(!allowed(c, "x/a", "z/b", "sctp/91"));
    assert!(!allowed(c, "x/a", "z/b", "tcp/80"));
    assert!(!allowed(c, "y/a", "z/b", "udp/80"));
}
