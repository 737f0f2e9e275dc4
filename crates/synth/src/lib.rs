//! Synthetic netsleuth bundles for benchmarks and fuzz seeds: a Kubernetes cluster of any
//! size (nodes, pods, Services, EndpointSlices, NetworkPolicies) plus optional host folders,
//! deterministic for a seed and written as a stream, and the same cluster as a
//! k8s-netinspect snapshot for comparisons.
#![forbid(unsafe_code)]

mod hosts;
mod jsonw;
mod k8s;
mod plan;
mod rng;
mod time;

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use jsonw::{ArrayWriter, Emitter, ListWriter};
pub use plan::Spec;
use plan::{Plan, SYSTEM_NAMESPACES};

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("{0}")]
    Spec(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> GenError + '_ {
    move |source| GenError::Io { path: path.to_path_buf(), source }
}

/// What was written: object counts per kind, and bytes on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub namespaces: u64,
    pub nodes: u64,
    pub pods: u64,
    pub services: u64,
    pub endpoint_slices: u64,
    pub network_policies: u64,
    pub config_maps: u64,
    pub workloads: u64,
    pub hosts: u64,
    pub bytes: u64,
}

/// Bundle format written to `manifest.json`.
pub const BUNDLE_FORMAT: &str = "netsleuth-bundle/1";

/// Refuses to write into a non-empty folder unless it is an earlier synthetic bundle and
/// `force` is set; then only what the generator writes is removed first.
fn prepare_dir(out: &Path, force: bool) -> Result<(), GenError> {
    let non_empty = match fs::read_dir(out) {
        Ok(mut it) => it.next().is_some(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(GenError::Io { path: out.to_path_buf(), source: e }),
    };
    if non_empty {
        let manifest = out.join("manifest.json");
        let ours = fs::read_to_string(&manifest).ok().is_some_and(|t| t.contains("\"netsleuth-synth"));
        if !force || !ours {
            return Err(GenError::Spec(format!(
                "{} is not empty; give an empty or new folder{}",
                out.display(),
                if ours { ", or --force to replace this synthetic bundle" } else { "" }
            )));
        }
        for sub in ["kubernetes", "hosts"] {
            let p = out.join(sub);
            if p.exists() {
                fs::remove_dir_all(&p).map_err(io_at(&p))?;
            }
        }
        fs::remove_file(&manifest).map_err(io_at(&manifest))?;
    }
    fs::create_dir_all(out.join("kubernetes")).map_err(io_at(out))
}

fn write_list(path: &Path, pretty: bool, items: impl Iterator<Item = Value>) -> Result<(u64, u64), GenError> {
    let file = fs::File::create(path).map_err(io_at(path))?;
    let mut w = ListWriter::new(BufWriter::with_capacity(1 << 20, file), pretty).map_err(io_at(path))?;
    for item in items {
        w.item(&item).map_err(io_at(path))?;
    }
    let (mut out, n) = w.finish().map_err(io_at(path))?;
    out.flush().map_err(io_at(path))?;
    let bytes = fs::metadata(path).map_err(io_at(path))?.len();
    Ok((n, bytes))
}

fn namespaces(plan: &Plan) -> impl Iterator<Item = Value> + '_ {
    (0..plan.namespaces.len() as u32).map(|i| k8s::namespace(plan, i))
}

fn nodes(plan: &Plan) -> impl Iterator<Item = Value> + '_ {
    (0..plan.spec.nodes).map(|n| k8s::node(plan, n))
}

fn pods(plan: &Plan) -> impl Iterator<Item = Value> + '_ {
    (0..plan.spec.pods).filter_map(|p| k8s::pod(plan, p))
}

fn services(plan: &Plan) -> impl Iterator<Item = Value> + '_ {
    std::iter::once(k8s::kubernetes_service(plan))
        .chain((0..plan.apps.len() as u32).filter_map(|i| k8s::service(plan, i)))
}

fn endpoint_slices(plan: &Plan) -> impl Iterator<Item = Value> + '_ {
    std::iter::once(k8s::kubernetes_endpoint_slice(plan))
        .chain((0..plan.apps.len() as u32).filter_map(|i| k8s::endpoint_slice(plan, i)))
}

fn policies(plan: &Plan) -> impl Iterator<Item = Value> + '_ {
    (0..plan.spec.policies).map(|j| k8s::network_policy(plan, j))
}

/// Writes the bundle for `spec` into `out` (created if missing; must be empty unless
/// `force` and it holds an earlier synthetic bundle).
pub fn generate(spec: &Spec, out: &Path, force: bool) -> Result<Summary, GenError> {
    let plan = Plan::new(spec).map_err(GenError::Spec)?;
    prepare_dir(out, force)?;
    let mut s = Summary::default();
    let manifest = json!({
        "format": BUNDLE_FORMAT,
        "collected_at": time::rfc3339(time::COLLECTED_AT),
        "cluster": format!("synth-{}", spec.seed),
        "tool_version": format!("netsleuth-synth {}", env!("CARGO_PKG_VERSION")),
        "synth": {"nodes": spec.nodes, "pods": spec.pods, "policies": spec.policies,
                  "namespaces": spec.namespaces, "seed": spec.seed, "hosts": spec.hosts}
    });
    let manifest_path = out.join("manifest.json");
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| GenError::Spec(e.to_string()))? + "\n";
    fs::write(&manifest_path, &text).map_err(io_at(&manifest_path))?;
    s.bytes += text.len() as u64;

    let k = out.join("kubernetes");
    let pretty = spec.pretty;
    let mut add = |r: (u64, u64)| {
        s.bytes += r.1;
        r.0
    };
    let namespaces_n = add(write_list(&k.join("namespaces.json"), pretty, namespaces(&plan))?);
    let nodes_n = add(write_list(&k.join("nodes.json"), pretty, nodes(&plan))?);
    let pods_n = add(write_list(&k.join("pods.json"), pretty, pods(&plan))?);
    let services_n = add(write_list(&k.join("services.json"), pretty, services(&plan))?);
    let slices_n = add(write_list(&k.join("endpointslices.json"), pretty, endpoint_slices(&plan))?);
    let policies_n = add(write_list(&k.join("networkpolicies.json"), pretty, policies(&plan))?);
    let cm_n = add(write_list(&k.join("configmaps.json"), pretty, std::iter::once(k8s::coredns_config_map(&plan)))?);
    let wl_n = add(write_list(&k.join("workloads.json"), pretty, k8s::system_workloads(&plan).into_iter())?);
    s.namespaces = namespaces_n;
    s.nodes = nodes_n;
    s.pods = pods_n;
    s.services = services_n;
    s.endpoint_slices = slices_n;
    s.network_policies = policies_n;
    s.config_maps = cm_n;
    s.workloads = wl_n;

    if spec.hosts > 0 {
        let hosts_dir = out.join("hosts");
        for n in 0..spec.hosts {
            hosts::write_host(&plan, n, &hosts_dir).map_err(io_at(&hosts_dir))?;
            s.hosts += 1;
        }
        s.bytes += dir_bytes(&hosts_dir).map_err(io_at(&hosts_dir))?;
    }
    Ok(s)
}

fn dir_bytes(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() {
            total += dir_bytes(&entry.path())?;
        } else if ft.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

/// Writes the same cluster as `generate` in the snapshot format `k8s-netinspect diagnose
/// --from-snapshot` reads (its `ClusterSnapshot`, schema_version 1: a JSON object of
/// arrays of ordinary Kubernetes objects; `deployments` and `config_maps` hold only
/// kube-system objects, as its collector gathers them).
pub fn write_netinspect_snapshot(spec: &Spec, file: &Path) -> Result<Summary, GenError> {
    let plan = Plan::new(spec).map_err(GenError::Spec)?;
    let f = fs::File::create(file).map_err(io_at(file))?;
    let mut e = Emitter::new(BufWriter::with_capacity(1 << 20, f), spec.pretty);
    let mut s = Summary::default();
    let workloads = k8s::system_workloads(&plan);
    let (deployments, daemon_sets): (Vec<Value>, Vec<Value>) =
        workloads.into_iter().partition(|w| w.get("kind").and_then(Value::as_str) == Some("Deployment"));
    (|| -> io::Result<()> {
        e.raw("{")?;
        e.newline(1)?;
        for (key, value) in [
            ("schema_version", json!(1)),
            ("collected_at", json!(time::rfc3339(time::COLLECTED_AT))),
            ("cluster_version", json!("v1.33.4")),
        ] {
            e.key(key)?;
            e.value(&value, 1)?;
            e.raw(",")?;
            e.newline(1)?;
        }
        let array = |e: &mut Emitter<_>, key: &str, items: &mut dyn Iterator<Item = Value>, last: bool| {
            e.key(key)?;
            let mut a = ArrayWriter::open(e, 1)?;
            for item in items {
                a.item(e, &item)?;
            }
            let n = a.close(e)?;
            if !last {
                e.raw(",")?;
                e.newline(1)?;
            }
            io::Result::Ok(n)
        };
        s.nodes = array(&mut e, "nodes", &mut nodes(&plan), false)?;
        s.namespaces = array(&mut e, "namespaces", &mut namespaces(&plan), false)?;
        s.pods = array(&mut e, "pods", &mut pods(&plan), false)?;
        s.services = array(&mut e, "services", &mut services(&plan), false)?;
        s.endpoint_slices = array(&mut e, "endpoint_slices", &mut endpoint_slices(&plan), false)?;
        s.network_policies = array(&mut e, "network_policies", &mut policies(&plan), false)?;
        s.workloads = array(&mut e, "daemon_sets", &mut daemon_sets.into_iter(), false)?;
        s.workloads += array(&mut e, "deployments", &mut deployments.into_iter(), false)?;
        s.config_maps = array(&mut e, "config_maps", &mut std::iter::once(k8s::coredns_config_map(&plan)), true)?;
        e.newline(0)?;
        e.raw("}\n")
    })()
    .map_err(io_at(file))?;
    e.into_inner().flush().map_err(io_at(file))?;
    s.bytes = fs::metadata(file).map_err(io_at(file))?.len();
    Ok(s)
}

/// Names of the system namespaces every generated cluster has.
pub fn system_namespaces() -> &'static [&'static str] {
    SYSTEM_NAMESPACES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec { nodes: 4, pods: 40, policies: 30, namespaces: 3, seed: 9, hosts: 2, pretty: true }
    }

    fn read_tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push((p.strip_prefix(dir).unwrap().display().to_string(), fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    fn items(dir: &Path, file: &str) -> Vec<Value> {
        let v: Value = serde_json::from_slice(&fs::read(dir.join("kubernetes").join(file)).unwrap()).unwrap();
        assert_eq!(v["kind"], "List", "{file}");
        v["items"].as_array().unwrap().clone()
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let c = tempfile::tempdir().unwrap();
        generate(&spec(), a.path(), false).unwrap();
        generate(&spec(), b.path(), false).unwrap();
        generate(&Spec { seed: 10, ..spec() }, c.path(), false).unwrap();
        let ta = read_tree(a.path());
        assert!(ta.len() > 15, "{} files", ta.len());
        assert_eq!(ta, read_tree(b.path()));
        assert_ne!(ta, read_tree(c.path()));
    }

    #[test]
    fn counts_and_cross_references_agree() {
        let d = tempfile::tempdir().unwrap();
        let s = generate(&spec(), d.path(), false).unwrap();
        assert_eq!((s.nodes, s.pods, s.network_policies, s.hosts), (4, 40, 30, 2));
        assert_eq!(s.namespaces, 3 + SYSTEM_NAMESPACES.len() as u64);
        let pods = items(d.path(), "pods.json");
        let slices = items(d.path(), "endpointslices.json");
        let services = items(d.path(), "services.json");
        let nodes = items(d.path(), "nodes.json");
        assert_eq!(pods.len(), 40);
        assert_eq!(services.len() as u64, s.services);
        assert_eq!(slices.len(), services.len());
        // Every endpoint names a pod that exists, with that pod's IP and node.
        let mut endpoints = 0;
        for slice in &slices[1..] {
            for ep in slice["endpoints"].as_array().unwrap() {
                let name = ep["targetRef"]["name"].as_str().unwrap();
                let pod = pods.iter().find(|p| p["metadata"]["name"] == name).expect(name);
                assert_eq!(pod["status"]["podIP"], ep["addresses"][0]);
                assert_eq!(pod["spec"]["nodeName"], ep["nodeName"]);
                assert_eq!(pod["metadata"]["uid"], ep["targetRef"]["uid"]);
                endpoints += 1;
            }
        }
        assert_eq!(endpoints, 40);
        // Pod IPs are unique and inside their node's podCIDR.
        let mut ips: Vec<&str> = pods.iter().map(|p| p["status"]["podIP"].as_str().unwrap()).collect();
        for p in &pods {
            let node = nodes.iter().find(|n| n["metadata"]["name"] == p["spec"]["nodeName"]).unwrap();
            let cidr: ipnet::Ipv4Net = node["spec"]["podCIDR"].as_str().unwrap().parse().unwrap();
            assert!(cidr.contains(&p["status"]["podIP"].as_str().unwrap().parse::<std::net::Ipv4Addr>().unwrap()));
        }
        ips.sort_unstable();
        ips.dedup();
        assert_eq!(ips.len(), 40);
        // Replicas of one ReplicaSet share their template: labels and containers.
        for p in &pods {
            let owner = &p["metadata"]["ownerReferences"][0]["name"];
            for q in pods.iter().filter(|q| &q["metadata"]["ownerReferences"][0]["name"] == owner) {
                assert_eq!(p["metadata"]["labels"], q["metadata"]["labels"]);
                assert_eq!(p["spec"]["containers"], q["spec"]["containers"]);
            }
        }
        // kube-dns exists with CoreDNS endpoints on port 53.
        let dns = services.iter().find(|s| s["metadata"]["name"] == "kube-dns").unwrap();
        assert_eq!(dns["spec"]["clusterIP"], "10.128.0.10");
        assert_eq!(slices[1]["metadata"]["labels"]["kubernetes.io/service-name"], "kube-dns");
        assert_eq!(slices[1]["endpoints"].as_array().unwrap().len(), 2);
        // Every host folder has the files the brief lists.
        for h in ["node-00000", "node-00001"] {
            for f in [
                "host.json",
                "ip-link.json",
                "ip-addr.json",
                "ip-route.json",
                "sysctl.txt",
                "resolv.conf",
                "cni/10-calico.conflist",
            ] {
                assert!(d.path().join("hosts").join(h).join(f).is_file(), "{h}/{f}");
            }
        }
        assert!(!d.path().join("hosts/node-00002").exists());
    }

    #[test]
    fn policies_include_egress_lockdowns_without_dns() {
        let d = tempfile::tempdir().unwrap();
        generate(&Spec { policies: 400, ..spec() }, d.path(), false).unwrap();
        let pols = items(d.path(), "networkpolicies.json");
        let egress_only_no_dns = pols
            .iter()
            .filter(|p| {
                let types = p["spec"]["policyTypes"].as_array().cloned().unwrap_or_default();
                types.contains(&json!("Egress")) && !p["spec"].to_string().contains("\"port\":53")
            })
            .count();
        assert!(egress_only_no_dns >= 5, "{egress_only_no_dns}");
        let text = fs::read_to_string(d.path().join("kubernetes/networkpolicies.json")).unwrap();
        for needle in ["matchExpressions", "namespaceSelector", "ipBlock", "endPort", "\"except\""] {
            assert!(text.contains(needle), "{needle}");
        }
    }

    #[test]
    fn refuses_foreign_non_empty_folder_and_replaces_own_with_force() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("precious.txt"), "x").unwrap();
        assert!(matches!(generate(&spec(), d.path(), true), Err(GenError::Spec(_))));
        assert!(d.path().join("precious.txt").exists());

        let d = tempfile::tempdir().unwrap();
        generate(&spec(), d.path(), false).unwrap();
        assert!(generate(&spec(), d.path(), false).is_err());
        generate(&Spec { hosts: 1, ..spec() }, d.path(), true).unwrap();
        assert!(!d.path().join("hosts/node-00001").exists(), "stale host folder left behind");
    }

    #[test]
    fn snapshot_has_the_same_cluster() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("snap.json");
        let s = write_netinspect_snapshot(&spec(), &f).unwrap();
        let v: Value = serde_json::from_slice(&fs::read(&f).unwrap()).unwrap();
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["pods"].as_array().unwrap().len(), 40);
        assert_eq!(v["nodes"].as_array().unwrap().len(), 4);
        assert_eq!(v["network_policies"].as_array().unwrap().len(), 30);
        assert_eq!(v["deployments"][0]["metadata"]["name"], "coredns");
        assert_eq!(v["daemon_sets"].as_array().unwrap().len(), 2);
        assert_eq!(s.pods, 40);
        let b = tempfile::tempdir().unwrap();
        generate(&spec(), b.path(), false).unwrap();
        assert_eq!(v["pods"].as_array().unwrap(), &items(b.path(), "pods.json"));
        assert_eq!(v["network_policies"].as_array().unwrap(), &items(b.path(), "networkpolicies.json"));
    }
}
