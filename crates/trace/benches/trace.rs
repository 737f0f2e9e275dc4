//! Criterion benchmark of one `trace` after load on a synthetic cluster (default 150,000
//! pods, 5,000 nodes, 20,000 NetworkPolicies; NETSLEUTH_BENCH_PODS to scale down), or on
//! the bundle named by NETSLEUTH_BENCH_BUNDLE. Indexing (`Tracer::new`) is timed apart.

use std::path::PathBuf;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use netsleuth_ingest::{read_bundle, BundleOptions};
use netsleuth_model::Network;
use netsleuth_synth::{generate, Spec};
use netsleuth_trace::path::{Destination, Endpoint, TraceOptions, Tracer};

/// Progress notes on stderr (criterion owns stdout).
fn say(s: String) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{s}");
}

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The bundle to trace in, and the temp dir keeping a generated one alive.
fn bundle() -> (PathBuf, Option<tempfile::TempDir>) {
    if let Some(p) = std::env::var_os("NETSLEUTH_BENCH_BUNDLE") {
        return (PathBuf::from(p), None);
    }
    let pods = env_u32("NETSLEUTH_BENCH_PODS", 150_000);
    let spec = Spec {
        nodes: (pods / 30).max(3),
        pods,
        policies: (pods / 15).max(1) * 2,
        namespaces: Spec::default_namespaces(pods),
        seed: 1,
        hosts: 4,
        pretty: false,
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
    let t = Instant::now();
    generate(&spec, dir.path(), false).unwrap_or_else(|e| panic!("generating: {e}"));
    say(format!("generated {pods} pods in {:.1} s", t.elapsed().as_secs_f64()));
    (dir.path().to_path_buf(), Some(dir))
}

/// Two application pods in different namespaces (policies apply to both), and a Service.
fn ends(net: &Network) -> (Endpoint, Destination, Destination) {
    let k = &net.kubernetes;
    let app = |p: &&netsleuth_model::kubernetes::Pod| {
        !p.pod_ips.is_empty() && !p.spec.host_network && p.meta.namespace != "kube-system"
    };
    let a = k.pods.iter().find(app).unwrap_or_else(|| panic!("no pod"));
    let b = k.pods.iter().rev().find(|p| app(p) && p.meta.namespace != a.meta.namespace).unwrap_or(a);
    let port = b.spec.containers.iter().flat_map(|c| c.ports.iter()).map(|p| p.container_port).next().unwrap_or(8080);
    let svc = k
        .services
        .iter()
        .rev()
        .find(|s| !s.ports.is_empty() && !s.cluster_ips.is_empty())
        .unwrap_or_else(|| panic!("no Service"));
    let svc_port = svc.ports.first().map(|p| p.port).unwrap_or(80);
    (
        Endpoint::Pod { namespace: a.meta.namespace.clone(), name: a.meta.name.clone() },
        format!("pod:{}/{}:{port}", b.meta.namespace, b.meta.name).parse().unwrap_or_else(|e| panic!("{e}")),
        format!("svc:{}/{}:{svc_port}", svc.meta.namespace, svc.meta.name).parse().unwrap_or_else(|e| panic!("{e}")),
    )
}

fn bench(c: &mut Criterion) {
    let (path, _keep) = bundle();
    let t = Instant::now();
    let net = read_bundle(&path, &BundleOptions { salt: Some("bench".into()), ..BundleOptions::default() })
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    say(format!(
        "read {} pods, {} policies in {:.1} s",
        net.kubernetes.pods.len(),
        net.kubernetes.network_policies.len(),
        t.elapsed().as_secs_f64()
    ));
    let (from, to_pod, to_svc) = ends(&net);
    let opts = TraceOptions::default();
    let mut group = c.benchmark_group("trace");
    group.sample_size(10);
    group.bench_function("tracer_new", |b| b.iter(|| Tracer::new(&net).network().hosts.len()));
    let tracer = Tracer::new(&net);
    let sample = tracer.trace(&from, &to_pod, &opts).unwrap_or_else(|e| panic!("{e}"));
    say(format!("pod → pod: {} hops, {}: {}", sample.hops.len(), sample.disposition.kind, sample.disposition.reason));
    for h in &sample.hops {
        say(format!("  {} {} {} {}", h.layer, h.component, h.action.as_str(), h.reason));
    }
    group.sample_size(100);
    group.bench_function("pod_to_pod", |b| b.iter(|| tracer.trace(&from, &to_pod, &opts).map(|t| t.hops.len())));
    group.bench_function("pod_to_service", |b| b.iter(|| tracer.trace(&from, &to_svc, &opts).map(|t| t.hops.len())));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
