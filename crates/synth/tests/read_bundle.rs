//! A generated bundle reads back through the real bundle reader with no ingest issues and
//! exactly the object counts that were asked for; the rules find the planted DNS fault.

use netsleuth_analyze::{analyze, AnalyzeOptions};
use netsleuth_ingest::{read_bundle, BundleOptions};
use netsleuth_synth::{generate, system_namespaces, Spec};

fn spec() -> Spec {
    Spec { nodes: 6, pods: 90, policies: 120, namespaces: 4, seed: 3, hosts: 2, pretty: true }
}

#[test]
fn generated_bundle_reads_without_issues_and_with_the_requested_counts() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(&spec(), dir.path(), false).unwrap();
    let net = read_bundle(dir.path(), &BundleOptions::default()).unwrap();
    assert!(net.ingest_issues.is_empty(), "ingest issues: {:#?}", net.ingest_issues);
    assert!(net.skipped_files.is_empty(), "skipped: {:?}", net.skipped_files);
    let k = &net.kubernetes;
    assert_eq!(k.nodes.len(), 6);
    assert_eq!(k.pods.len(), 90);
    assert_eq!(k.network_policies.len(), 120);
    assert_eq!(k.namespaces.len(), 4 + system_namespaces().len());
    assert_eq!(k.services.len() as u64, summary.services);
    assert_eq!(k.endpoint_slices.len() as u64, summary.endpoint_slices);
    assert_eq!(k.config_maps.len(), 1);
    assert_eq!(net.manifest.format.as_deref(), Some("netsleuth-bundle/1"));
    assert_eq!(net.manifest.collected_at, Some(1_795_395_600));
    // Parsed content, not just counts: pod IPs and node pod CIDRs agree.
    for pod in &k.pods {
        let node = k.nodes.iter().find(|n| Some(&n.meta.name) == pod.spec.node_name.as_ref()).unwrap();
        let ip = pod.pod_ips.first().unwrap();
        assert!(node.pod_cidrs.iter().any(|c| c.contains(ip)), "{} {ip}", pod.meta.name);
    }
    assert!(k.network_policies.iter().any(|p| p.ingress.iter().any(|r| r.ports.iter().any(|p| p.end_port.is_some()))));
    assert!(k.network_policies.iter().any(|p| p.egress.iter().any(|r| r.peers.iter().any(|p| p.ip_block.is_some()))));
    // Host folders parse into hosts with interfaces and routes.
    assert_eq!(net.hosts.len(), 2);
    let h = net.host("node-00000").unwrap();
    assert!(h.interface("vxlan.calico").is_some());
    assert!(h.routes.routes.len() >= 6 + 3, "{} routes", h.routes.routes.len());
    assert_eq!(h.cni.len(), 1);
}

#[test]
fn rules_find_the_planted_dns_lockdown() {
    let dir = tempfile::tempdir().unwrap();
    generate(&spec(), dir.path(), false).unwrap();
    let net = read_bundle(dir.path(), &BundleOptions::default()).unwrap();
    let findings = analyze(&net, &AnalyzeOptions::default());
    // User namespace 1 of 4 never allows DNS (see k8s::network_policy).
    let ns = &net.kubernetes.namespaces[system_namespaces().len() + 1].meta.name;
    assert!(
        findings.iter().any(|f| f.rule == "POL-001" && f.subject.contains(ns.as_str())),
        "no POL-001 for {ns}: {:?}",
        findings.iter().map(|f| (&f.rule, &f.subject)).collect::<Vec<_>>()
    );
}
