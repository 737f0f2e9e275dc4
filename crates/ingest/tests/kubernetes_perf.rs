//! Throughput of the Kubernetes JSON parser on a benchmark-sized List (150,000 pods and
//! 20,000 NetworkPolicies). Ignored by default; run in release:
//! `cargo test --release -p netsleuth-ingest --test kubernetes_perf -- --ignored --nocapture`

use std::time::Instant;

/// CPU seconds used by this process so far (user + system, all threads), from
/// /proc/self/stat; 0 where that is not readable. Tells the work done apart from the
/// machine's load, which the wall time does not.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at field 3.
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12].iter().filter_map(|i| fields.get(*i)?.parse::<f64>().ok()).sum();
    ticks / 100.0
}

use netsleuth_ingest::{kubernetes, ParseContext, Redactor, Source};
use netsleuth_model::kubernetes::Cluster;

/// A pod shaped like `kubectl get pods -o json` prints one (about 3.5 KB).
fn pod(i: usize) -> serde_json::Value {
    let ns = format!("team-{}", i % 500);
    let app = format!("app-{}", i % 3000);
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/default-container": "main",
                            "prometheus.io/port": "9090", "prometheus.io/scrape": "true"},
            "creationTimestamp": "2026-11-20T08:05:30Z",
            "generateName": format!("{app}-7c9d8f6b5-"),
            "labels": {"app": app, "pod-template-hash": "7c9d8f6b5", "tier": "backend"},
            "name": format!("{app}-7c9d8f6b5-{i:05x}"),
            "namespace": ns,
            "ownerReferences": [{"apiVersion": "apps/v1", "blockOwnerDeletion": true, "controller": true,
                                 "kind": "ReplicaSet", "name": format!("{app}-7c9d8f6b5"),
                                 "uid": "3f6c0001-1b2a-4c5d-9e8f-5a17c0de0001"}],
            "resourceVersion": format!("{}", 400_000 + i),
            "uid": format!("3f6c{:04x}-1b2a-4c5d-9e8f-{:012x}", i % 65536, i)
        },
        "spec": {
            "containers": [{
                "args": ["--port=8080", "--log-level=info"],
                "env": [{"name": "DB_HOST", "value": "db.corp.example"},
                        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"key": "pw", "name": "db"}}},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                "image": "registry.example.com/team/app:1.2.3",
                "imagePullPolicy": "IfNotPresent",
                "livenessProbe": {"httpGet": {"path": "/livez", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 10},
                "name": "main",
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"},
                          {"containerPort": 9090, "name": "metrics", "protocol": "TCP"}],
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 5},
                "resources": {"limits": {"memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                                    "runAsNonRoot": true},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "volumeMounts": [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                                  "name": "kube-api-access-abcde", "readOnly": true}]
            }],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": true,
            "nodeName": format!("node-{}", i % 5000),
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccount": "default",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": [{"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "tolerationSeconds": 300}],
            "volumes": [{"name": "kube-api-access-abcde", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}}]}}]
        },
        "status": {
            "conditions": [{"lastProbeTime": null, "lastTransitionTime": "2026-11-20T08:05:34Z", "status": "True",
                            "type": "Ready"}],
            "containerStatuses": [{"containerID": "containerd://0123456789abcdef", "image": "registry.example.com/team/app:1.2.3",
                                   "imageID": "registry.example.com/team/app@sha256:abab", "lastState": {},
                                   "name": "main", "ready": true, "restartCount": 0, "started": true,
                                   "state": {"running": {"startedAt": "2026-11-20T08:05:33Z"}}}],
            "hostIP": format!("192.168.{}.{}", (i / 250) % 250, i % 250 + 1),
            "phase": "Running",
            "podIP": format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256),
            "podIPs": [{"ip": format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256)}],
            "qosClass": "Burstable",
            "startTime": "2026-11-20T08:05:30Z"
        }
    })
}

fn policy(i: usize) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"creationTimestamp": "2026-11-20T08:26:02Z", "name": format!("allow-{i}"),
                     "namespace": format!("team-{}", i % 500), "resourceVersion": "418140",
                     "uid": "3f6c001b-1b2a-4c5d-9e8f-5a17c0de001b"},
        "spec": {
            "egress": [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]}],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": format!("app-{}", (i + 1) % 3000)}}},
                                  {"ipBlock": {"cidr": "10.20.0.0/16", "except": ["10.20.99.0/24"]}}],
                         "ports": [{"port": "http"}]}],
            "podSelector": {"matchLabels": {"app": format!("app-{}", i % 3000)}},
            "policyTypes": ["Ingress", "Egress"]
        }
    })
}

#[test]
#[ignore = "benchmark (150k pods, 20k policies): run in release with --ignored, as .ci/run does"]
#[allow(clippy::print_stderr)]
fn parse_150k_pods_and_20k_policies() {
    let mut text = String::from("{\n    \"apiVersion\": \"v1\",\n    \"items\": [\n");
    for i in 0..150_000 {
        text.push_str(&serde_json::to_string_pretty(&pod(i)).unwrap());
        text.push_str(",\n");
    }
    for i in 0..20_000 {
        text.push_str(&serde_json::to_string_pretty(&policy(i)).unwrap());
        text.push_str(if i + 1 < 20_000 { ",\n" } else { "\n" });
    }
    text.push_str("    ],\n    \"kind\": \"List\",\n    \"metadata\": {\"resourceVersion\": \"\"}\n}\n");
    let start = Instant::now();
    let _: serde::de::IgnoredAny = serde_json::from_str(&text).unwrap();
    eprintln!("scan only: {:.2} s", start.elapsed().as_secs_f64());
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        items: Vec<&'a serde_json::value::RawValue>,
    }
    let start = Instant::now();
    let head: Head<'_> = serde_json::from_str(&text).unwrap();
    eprintln!("raw items: {:.2} s", start.elapsed().as_secs_f64());
    let start = Instant::now();
    for raw in &head.items {
        let _: serde::de::IgnoredAny = serde_json::from_str(raw.get()).unwrap();
    }
    eprintln!("rescan items: {:.2} s", start.elapsed().as_secs_f64());
    let mut best = f64::MAX;
    let mut best_cpu = f64::MAX;
    for _ in 0..3 {
        let mut cluster = Cluster::default();
        let mut ctx = ParseContext::new(Redactor::from_salt("bench"));
        let (start, cpu) = (Instant::now(), cpu_seconds());
        kubernetes::parse(&Source::new("kubernetes/all.json", &text), &mut cluster, &mut ctx).unwrap();
        let secs = start.elapsed().as_secs_f64();
        best = best.min(secs);
        best_cpu = best_cpu.min(cpu_seconds() - cpu);
        assert_eq!(cluster.pods.len(), 150_000);
        assert_eq!(cluster.network_policies.len(), 20_000);
        assert!(ctx.issues.is_empty());
    }
    eprintln!(
        "parsed {:.0} MB: 150000 pods + 20000 NetworkPolicies in {best:.2} s ({:.0} MB/s), {best_cpu:.2} CPU s",
        text.len() as f64 / 1e6,
        text.len() as f64 / 1e6 / best
    );
}

/// Parses every file of `$NETSLEUTH_BENCH_BUNDLE/kubernetes` (e.g. written by
/// `netsleuth-synth gen --nodes 5000 --pods 150000 --policies 20000 -o DIR`) and reports
/// the time per file.
#[test]
#[ignore = "benchmark over a generated bundle named by NETSLEUTH_BENCH_BUNDLE (not in CI: gigabytes); scripts/bench-scale.sh makes one"]
#[allow(clippy::print_stderr)]
fn parse_bench_bundle() {
    let Ok(dir) = std::env::var("NETSLEUTH_BENCH_BUNDLE") else {
        eprintln!("NETSLEUTH_BENCH_BUNDLE not set; nothing to do");
        return;
    };
    let mut files: Vec<_> =
        std::fs::read_dir(format!("{dir}/kubernetes")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut cluster = Cluster::default();
    let mut ctx = ParseContext::new(Redactor::from_salt("bench"));
    let mut total = 0.0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let start = Instant::now();
        let _: serde::de::IgnoredAny = serde_json::from_str(&text).unwrap();
        let scan = start.elapsed().as_secs_f64();
        let (start, cpu) = (Instant::now(), cpu_seconds());
        kubernetes::parse(&Source::new("k.json", &text), &mut cluster, &mut ctx).unwrap();
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu;
        total += secs;
        eprintln!(
            "{}: {:.0} MB in {secs:.2} s, {cpu:.2} CPU s (one JSON scan alone: {scan:.2} s)",
            f.display(),
            text.len() as f64 / 1e6
        );
    }
    eprintln!(
        "total {total:.2} s: {} pods, {} policies, {} services, {} slices, {} issues",
        cluster.pods.len(),
        cluster.network_policies.len(),
        cluster.services.len(),
        cluster.endpoint_slices.len(),
        ctx.issues.len()
    );
}
