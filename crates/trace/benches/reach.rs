//! Criterion benchmark of `reach`: a 1,000 x 1,000 pod matrix on one port over the
//! 150,000-pod synthetic bundle (5,000 nodes, 20,000 NetworkPolicies).
//!
//! The bundle is generated into a temporary folder (compact JSON) unless
//! NETSLEUTH_REACH_BUNDLE names an existing one (e.g. the scale benchmark's). Reading it
//! is not measured: only the matrix (policy index, per-pod selection, 1M pair verdicts).
//! REACH_PODS overrides the bundle size when generating (default 150000).

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use netsleuth_ingest::{read_bundle, BundleOptions};
use netsleuth_synth::{generate, Spec};
use netsleuth_trace::reach::{Endpoint, Matrix, Protocol};

/// Rows and columns of the matrix.
const SIDE: usize = 1000;

fn bench(c: &mut Criterion) {
    let mut _keep = None;
    let dir = match std::env::var_os("NETSLEUTH_REACH_BUNDLE") {
        Some(d) => PathBuf::from(d),
        None => {
            let pods: u32 = std::env::var("REACH_PODS").ok().and_then(|p| p.parse().ok()).unwrap_or(150_000);
            let spec = Spec {
                nodes: (pods / 30).max(1),
                pods,
                policies: pods * 2 / 15,
                namespaces: Spec::default_namespaces(pods),
                seed: 1,
                hosts: 0,
                pretty: false,
            };
            let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
            generate(&spec, tmp.path(), false).unwrap_or_else(|e| panic!("generating the bundle: {e}"));
            let path = tmp.path().to_path_buf();
            _keep = Some(tmp);
            path
        }
    };
    let net = read_bundle(&dir, &BundleOptions { salt: Some("bench".into()), ..BundleOptions::default() })
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    let cluster = &net.kubernetes;
    let n = cluster.pods.len();
    assert!(n >= 2 * SIDE, "{}: {n} pods, need at least {}", dir.display(), 2 * SIDE);
    // Evenly spread over the cluster, so that every namespace's policies take part.
    let step = n / (2 * SIDE);
    let pick = |offset: usize| -> Vec<Endpoint<'_>> {
        (0..SIDE).filter_map(|i| cluster.pods.get(offset + 2 * i * step)).map(Endpoint::Pod).collect()
    };
    let (sources, targets) = (pick(0), pick(step.max(1)));
    let mut group = c.benchmark_group(format!("reach-{n}-pods"));
    group.sample_size(10);
    group.bench_function("matrix-1000x1000-tcp-8080", |b| {
        b.iter(|| Matrix::from_endpoints(cluster, &sources, &targets, Protocol::Tcp, 8080).allowed_count())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
