//! Traces over the AWS fixture (tests/fixtures/aws, `aws ec2 describe-*` shapes) laid out
//! as a bundle: VPC-local delivery through both ACLs, the VPN exit, the blackhole route.

use std::path::Path;

use netsleuth_ingest::{read_bundle, BundleOptions};
use netsleuth_trace::path::{Action, DispositionKind, Trace, TraceOptions, Tracer};

fn aws_bundle() -> (tempfile::TempDir, netsleuth_model::Network) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/aws");
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("cloud/aws");
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("describe-") && n.ends_with(".json")) {
            std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
        }
    }
    let net = read_bundle(dir.path(), &BundleOptions::default()).unwrap();
    (dir, net)
}

fn trace(t: &Tracer<'_>, from: &str, to: &str) -> Trace {
    t.trace(&from.parse().unwrap(), &to.parse().unwrap(), &TraceOptions::default()).unwrap()
}

#[test]
fn aws_fixture_paths() {
    let (_d, net) = aws_bundle();
    assert!(!net.aws.route_tables.is_empty(), "fixture read");
    let t = Tracer::new(&net);
    let local = trace(&t, "10.0.2.11", "10.0.16.12:443");
    assert_eq!(local.disposition.kind, DispositionKind::Delivered, "{:?}", local.hops);
    let comps: Vec<&str> = local.hops.iter().map(|h| h.component.as_str()).collect();
    assert!(comps.iter().any(|c| c.ends_with("(subnet-0a1b2c3d4e5f60002 inbound)")), "{comps:?}");
    assert!(comps.iter().any(|c| c.ends_with("(subnet-0a1b2c3d4e5f60002 outbound)")), "reply checked: {comps:?}");

    let vpn = trace(&t, "10.0.2.11", "10.20.1.5:443");
    assert_eq!(vpn.disposition.kind, DispositionKind::ExitsNetwork);
    assert!(vpn.disposition.at.starts_with("aws/vpn-"), "{}", vpn.disposition.at);

    let internet = trace(&t, "10.0.2.11", "8.8.8.8:443");
    let last = internet.hops.last().unwrap();
    assert_eq!((last.component.as_str(), last.action), ("aws/rtb-a1eec7de (subnet-0a1b2c3d4e5f60001)", Action::Drop));
    assert_eq!(internet.disposition.kind, DispositionKind::Dropped);
    assert_eq!(last.evidence[0].location.path(), Some("cloud/aws/describe-route-tables.json"));
}
