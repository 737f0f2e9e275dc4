//! Criterion benchmarks of the two phases of `netsleuth analyze` on synthetic bundles:
//! reading (`read_bundle`) and the rule catalog (`analyze`), measured separately.

use criterion::{criterion_group, criterion_main, Criterion};
use netsleuth_analyze::{analyze, AnalyzeOptions};
use netsleuth_ingest::{read_bundle, BundleOptions};
use netsleuth_synth::{generate, Spec};

fn sizes() -> [(&'static str, Spec); 2] {
    let base = Spec { nodes: 0, pods: 0, policies: 0, namespaces: 0, seed: 1, hosts: 0, pretty: true };
    [
        ("small", Spec { nodes: 20, pods: 600, policies: 100, namespaces: 4, hosts: 2, ..base.clone() }),
        ("medium", Spec { nodes: 200, pods: 6000, policies: 800, namespaces: 20, hosts: 4, ..base }),
    ]
}

fn bench(c: &mut Criterion) {
    let options = BundleOptions { salt: Some("bench".into()), ..BundleOptions::default() };
    for (name, spec) in sizes() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("no temp dir: {e}"),
        };
        if let Err(e) = generate(&spec, dir.path(), false) {
            panic!("generating {name}: {e}");
        }
        let net = match read_bundle(dir.path(), &options) {
            Ok(n) => n,
            Err(e) => panic!("reading {name}: {e}"),
        };
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        group.bench_function("read_bundle", |b| {
            b.iter(|| read_bundle(dir.path(), &options).map(|n| n.kubernetes.pods.len()))
        });
        group.bench_function("analyze", |b| b.iter(|| analyze(&net, &AnalyzeOptions::default()).len()));
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
