//! End to end over `examples/gateway-incident`: the real command outputs of the example lab
//! are parsed and analysed, and every fault the example injects is reported where it is,
//! while the healthy parts of the same bundle stay quiet.

use std::path::PathBuf;

use netsleuth_analyze::{analyze, AnalyzeOptions};
use netsleuth_ingest::{read_bundle, BundleOptions};
use netsleuth_model::{Finding, Layer};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/gateway-incident")
}

fn findings() -> (netsleuth_model::Network, Vec<Finding>) {
    let net = read_bundle(&example(), &BundleOptions { salt: Some("test".into()), ..BundleOptions::default() })
        .expect("example bundle reads");
    let findings = analyze(&net, &AnalyzeOptions::default());
    (net, findings)
}

fn has(findings: &[Finding], rule: &str, subject_part: &str) -> bool {
    findings.iter().any(|f| f.rule == rule && f.subject.contains(subject_part))
}

fn summary(findings: &[Finding]) -> String {
    findings.iter().map(|f| format!("{} {} {}\n", f.rule, f.subject, f.title)).collect()
}

#[test]
fn example_parses_without_ingest_issues() {
    let (net, _) = findings();
    assert!(net.ingest_issues.is_empty(), "ingest issues: {:#?}", net.ingest_issues);
    assert_eq!(net.hosts.len(), 7);
    let gw = net.host("gw-1").expect("gw-1");
    assert_eq!(gw.wireguard.len(), 1);
    assert_eq!(gw.wireguard[0].peers.len(), 2);
    assert!(net.kubernetes.pods.len() >= 4);
}

#[test]
fn example_reports_every_injected_fault() {
    let (_, f) = findings();
    let s = summary(&f);
    for (rule, subject) in [
        ("OVL-001", "node-1"),
        ("DNS-003", "node-1"),
        ("DNS-001", "pod-web"),
        ("CNI-001", ""),
        ("NODE-001", "gw-1"),
        ("NODE-003", "node-1"),
        ("TUN-001", "gw-1"),
        ("TUN-005", "gw-1"),
        ("TUN-010", ""),
        ("TUN-014", ""),
        ("POL-001", "shop"),
        ("MESH-001", "shop"),
        ("POD-001", "wg-gateway"),
        ("POD-003", ""),
        ("POD-005", "wg-gateway"),
    ] {
        assert!(has(&f, rule, subject), "missing {rule} on {subject:?}; got:\n{s}");
    }
}

#[test]
fn example_healthy_parts_stay_quiet() {
    let (_, f) = findings();
    let s = summary(&f);
    // node-2's pods use 1450 over a 1450 overlay; the nodes forward.
    assert!(!has(&f, "OVL-001", "node-2"), "false MTU alarm on node-2:\n{s}");
    assert!(!has(&f, "NODE-001", "node-1") && !has(&f, "NODE-001", "node-2"), "false ip_forward alarm:\n{s}");
    assert!(!f.iter().any(|x| x.layer == Layer::Ingest), "ingest findings:\n{s}");
}

#[test]
fn example_findings_are_ordered_inside_out_and_have_evidence() {
    let (_, f) = findings();
    assert!(f.windows(2).all(|w| w[0].layer <= w[1].layer), "not ordered by layer");
    for x in &f {
        assert!(!x.evidence.is_empty(), "{} {} has no evidence", x.rule, x.subject);
        assert!(!x.fix.is_empty(), "{} {} has no fix", x.rule, x.subject);
    }
}

#[test]
fn example_secrets_never_reach_the_model_or_findings() {
    let (net, f) = findings();
    let dump = std::fs::read_to_string(example().join("hosts/gw-1/wg-dump.txt")).expect("wg dump");
    let mut secrets: Vec<String> = Vec::new();
    for line in dump.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.len() {
            5 => secrets.push(fields[1].to_string()), // private key
            9 if fields[2] != "(none)" => secrets.push(fields[2].to_string()), // preshared key
            _ => {}
        }
    }
    for side in ["vpc-router", "onprem-router"] {
        let conf = std::fs::read_to_string(example().join(format!("hosts/{side}/swanctl/swanctl.conf"))).expect("conf");
        let line = conf.lines().find(|l| l.trim_start().starts_with("secret =")).expect("secret line");
        secrets.push(line.split('"').nth(1).expect("quoted").to_string());
    }
    assert!(secrets.len() >= 4, "found {} secrets in the example inputs", secrets.len());
    let model = serde_json::to_string(&net).expect("model serialises");
    let report = serde_json::to_string(&f).expect("findings serialise");
    for s in &secrets {
        assert!(!model.contains(s.as_str()), "secret leaked into the model");
        assert!(!report.contains(s.as_str()), "secret leaked into findings");
    }
    assert!(!net.redactions.is_empty());
}
