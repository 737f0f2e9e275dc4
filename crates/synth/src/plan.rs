//! The shape of a synthetic cluster, decided once from the spec: namespaces, apps (one
//! Deployment-like group of pods behind one Service each), and the address plan.

use std::net::Ipv4Addr;

use crate::rng::{Rng, Stream};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub nodes: u32,
    /// Total Pod objects, CoreDNS replicas included.
    pub pods: u32,
    pub policies: u32,
    /// Application namespaces; `default`, `kube-system`, `kube-public`,
    /// `kube-node-lease` and `monitoring` are added on top.
    pub namespaces: u32,
    pub seed: u64,
    /// Host folders (`hosts/<node>/`) for the first `hosts` nodes.
    pub hosts: u32,
    /// kubectl-style indented JSON (true) or one line per file (false).
    pub pretty: bool,
}

impl Spec {
    /// The default number of application namespaces for a pod count: ~300 pods each.
    pub fn default_namespaces(pods: u32) -> u32 {
        (pods / 300).clamp(1, 2000)
    }
}

pub(crate) const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease", "monitoring"];
pub(crate) const KUBE_SYSTEM: u32 = 1;
pub(crate) const MONITORING: u32 = 4;

const TEAMS: &[&str] = &[
    "payments", "checkout", "search", "catalog", "identity", "billing", "shipping", "ads", "ml", "data", "media",
    "notify", "growth", "risk", "ledger", "support",
];
pub(crate) const ENVS: &[&str] = &["prod", "staging", "dev", "qa"];
const APP_WORDS: &[&str] = &[
    "api",
    "web",
    "gateway",
    "worker",
    "cart",
    "orders",
    "users",
    "auth",
    "inventory",
    "pricing",
    "recommender",
    "indexer",
    "scheduler",
    "mailer",
    "reports",
    "uploader",
    "thumbnailer",
    "session",
    "profile",
    "feed",
];
pub(crate) const TIERS: &[&str] = &["frontend", "backend", "api", "worker", "db", "cache"];

/// One Deployment-like group: `replicas` consecutive pods from `first_pod`, one Service.
#[derive(Debug, Clone)]
pub(crate) struct App {
    pub(crate) name: String,
    pub(crate) namespace: u32,
    pub(crate) tier: &'static str,
    pub(crate) first_pod: u32,
    pub(crate) replicas: u32,
    /// Container port named `http` (for DNS: 53).
    pub(crate) port: u16,
    /// ReplicaSet hash of the pod names (`<app>-<hash>-<suffix>`).
    pub(crate) rs_hash: String,
    pub(crate) uid: String,
    /// Pod template details, equal for every replica as in a real ReplicaSet:
    /// the `version` label, the image tag, and whether a log-shipper sidecar runs.
    pub(crate) version: u8,
    pub(crate) image_tag: String,
    pub(crate) log_shipper: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Namespace {
    pub(crate) name: String,
    pub(crate) team: &'static str,
    pub(crate) env: &'static str,
}

/// Every decision that spans objects, made once so all files agree.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) spec: Spec,
    pub(crate) namespaces: Vec<Namespace>,
    pub(crate) apps: Vec<App>,
    /// Apps of each namespace (indices into `apps`).
    pub(crate) apps_by_ns: Vec<Vec<u32>>,
    /// Host bits of every node's pod CIDR (8 → /24).
    pub(crate) pod_block_bits: u32,
}

/// Pod CIDR pool of the cluster (10.0.0.0/9).
pub(crate) const POD_POOL: u32 = 0x0a00_0000;
const POD_POOL_BITS: u32 = 23;
/// Service CIDR (10.128.0.0/12); `kubernetes` is .1, `kube-dns` .10.
pub(crate) const SERVICE_POOL: u32 = 0x0a80_0000;
const SERVICE_POOL_SIZE: u32 = 1 << 20;
/// Node subnet (172.16.0.0/12); .1 is the gateway, nodes from .10.
pub(crate) const NODE_POOL: u32 = 0xac10_0000;
pub(crate) const NODE_PREFIX: u8 = 12;
const NODE_POOL_SIZE: u32 = 1 << 20;
/// Control-plane nodes (the first ones), which carry the API server endpoints.
pub(crate) const CONTROL_PLANE_NODES: u32 = 3;

impl Plan {
    pub(crate) fn new(spec: &Spec) -> Result<Plan, String> {
        if spec.nodes == 0 {
            return Err("--nodes must be at least 1".into());
        }
        if spec.namespaces == 0 {
            return Err("--namespaces must be at least 1".into());
        }
        if spec.hosts > spec.nodes {
            return Err(format!("--hosts {} is more than --nodes {}", spec.hosts, spec.nodes));
        }
        if spec.nodes >= NODE_POOL_SIZE - 16 {
            return Err(format!("--nodes {} does not fit the node subnet 172.16.0.0/12", spec.nodes));
        }
        // Pods go round-robin over nodes, so a node holds at most ceil(pods/nodes); its
        // block also needs the network address, the gateway (.1) and the broadcast.
        let per_node = spec.pods.div_ceil(spec.nodes) + 3;
        let pod_block_bits = (32 - (per_node - 1).leading_zeros()).max(8);
        let needed = u64::from(spec.nodes) << pod_block_bits;
        if needed > 1 << POD_POOL_BITS {
            return Err(format!(
                "{} pods on {} nodes need /{} blocks per node, more than the pod pool 10.0.0.0/9 holds",
                spec.pods,
                spec.nodes,
                32 - pod_block_bits
            ));
        }

        let mut namespaces: Vec<Namespace> = SYSTEM_NAMESPACES
            .iter()
            .map(|n| Namespace { name: (*n).to_string(), team: "platform", env: "prod" })
            .collect();
        for i in 0..spec.namespaces {
            let mut r = Rng::for_item(spec.seed, Stream::Namespace, u64::from(i));
            let team = r.pick(TEAMS);
            let env = r.pick(ENVS);
            namespaces.push(Namespace { name: format!("{team}-{env}-{i}"), team, env });
        }

        let mut apps = Vec::new();
        let mut apps_by_ns = vec![Vec::new(); namespaces.len()];
        let mut r = Rng::new(spec.seed ^ Stream::Plan as u64);
        // CoreDNS first, so kube-dns always has endpoints when there are pods at all.
        let dns_replicas = spec.pods.min(2);
        apps.push(App {
            name: "coredns".into(),
            namespace: KUBE_SYSTEM,
            tier: "dns",
            first_pod: 0,
            replicas: dns_replicas,
            port: 53,
            rs_hash: r.k8s_suffix(10),
            uid: r.uuid(),
            version: 1,
            image_tag: "1.11.3".into(),
            log_shipper: false,
        });
        if let Some(list) = apps_by_ns.get_mut(KUBE_SYSTEM as usize) {
            list.push(0);
        }
        let mut next_pod = dns_replicas;
        // Prometheus in `monitoring`, which the allow-monitoring policies admit.
        if spec.pods >= next_pod + 2 {
            apps.push(App {
                name: "prometheus".into(),
                namespace: MONITORING,
                tier: "monitoring",
                first_pod: next_pod,
                replicas: 1,
                port: 9090,
                rs_hash: r.k8s_suffix(10),
                uid: r.uuid(),
                version: 1,
                image_tag: "1.0.0".into(),
                log_shipper: false,
            });
            if let Some(list) = apps_by_ns.get_mut(MONITORING as usize) {
                list.push(1);
            }
            next_pod += 1;
        }
        let user_ns = u64::from(spec.namespaces);
        while next_pod < spec.pods {
            let replicas = (1 + r.below(8) as u32).min(spec.pods - next_pod);
            let namespace = SYSTEM_NAMESPACES.len() as u32 + r.below(user_ns) as u32;
            let index = apps.len();
            let tier = r.pick(TIERS);
            let port = match tier {
                "db" => 5432,
                "cache" => 6379,
                _ => *[8080u16, 8000, 3000, 9000].get(r.below(4) as usize).unwrap_or(&8080),
            };
            let name = format!("{}-{index}", r.pick(APP_WORDS));
            let version = 1 + r.below(3) as u8;
            let image_tag = format!("1.{}.{}", r.below(20), r.below(10));
            let log_shipper = r.chance(15);
            apps.push(App {
                name,
                namespace,
                tier,
                first_pod: next_pod,
                replicas,
                port,
                rs_hash: r.k8s_suffix(10),
                uid: r.uuid(),
                version,
                image_tag,
                log_shipper,
            });
            if let Some(list) = apps_by_ns.get_mut(namespace as usize) {
                list.push(index as u32);
            }
            next_pod += replicas;
        }
        if apps.len() as u64 + 32 > u64::from(SERVICE_POOL_SIZE) {
            return Err(format!("{} services do not fit the service CIDR 10.128.0.0/12", apps.len()));
        }
        Ok(Plan { spec: spec.clone(), namespaces, apps, apps_by_ns, pod_block_bits })
    }

    pub(crate) fn node_name(&self, node: u32) -> String {
        format!("node-{node:05}")
    }

    pub(crate) fn node_ip(&self, node: u32) -> Ipv4Addr {
        Ipv4Addr::from(NODE_POOL + 10 + node)
    }

    pub(crate) fn node_gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(NODE_POOL + 1)
    }

    /// Network address of the node's pod CIDR.
    pub(crate) fn pod_block(&self, node: u32) -> Ipv4Addr {
        Ipv4Addr::from(POD_POOL + (node << self.pod_block_bits))
    }

    pub(crate) fn pod_cidr(&self, node: u32) -> String {
        format!("{}/{}", self.pod_block(node), 32 - self.pod_block_bits)
    }

    /// The node a pod runs on (round-robin).
    pub(crate) fn pod_node(&self, pod: u32) -> u32 {
        pod % self.spec.nodes
    }

    /// Pods are numbered by node first: pod `n + k*nodes` is the k-th pod of node `n`,
    /// which gets address .2+k of the node's block (.1 is the bridge/gateway side).
    pub(crate) fn pod_ip(&self, pod: u32) -> Ipv4Addr {
        let node = self.pod_node(pod);
        let slot = pod / self.spec.nodes;
        Ipv4Addr::from(u32::from(self.pod_block(node)) + 2 + slot)
    }

    /// Pods of `node`, in slot order.
    pub(crate) fn pods_on_node(&self, node: u32) -> impl Iterator<Item = u32> + '_ {
        (node..self.spec.pods).step_by(self.spec.nodes as usize)
    }

    pub(crate) fn app_of_pod(&self, pod: u32) -> Option<&App> {
        let i = self.apps.partition_point(|a| a.first_pod + a.replicas <= pod);
        self.apps.get(i)
    }

    /// ClusterIP of the Service of app `index` (app 0, CoreDNS, is kube-dns at .10).
    pub(crate) fn service_ip(&self, index: u32) -> Ipv4Addr {
        if index == 0 {
            Ipv4Addr::from(SERVICE_POOL + 10)
        } else {
            Ipv4Addr::from(SERVICE_POOL + 16 + index)
        }
    }

    pub(crate) fn service_name(&self, app: &App) -> String {
        if app.name == "coredns" {
            "kube-dns".to_string()
        } else {
            app.name.clone()
        }
    }

    pub(crate) fn namespace_name(&self, index: u32) -> &str {
        self.namespaces.get(index as usize).map_or("default", |n| n.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(nodes: u32, pods: u32) -> Spec {
        Spec { nodes, pods, policies: 10, namespaces: 3, seed: 1, hosts: 0, pretty: false }
    }

    #[test]
    fn apps_cover_every_pod_exactly_once() {
        let p = Plan::new(&spec(7, 1000)).unwrap();
        let total: u32 = p.apps.iter().map(|a| a.replicas).sum();
        assert_eq!(total, 1000);
        assert_eq!(p.apps[0].name, "coredns");
        assert_eq!(p.app_of_pod(0).unwrap().name, "coredns");
        assert_eq!(p.app_of_pod(999).unwrap().name, p.apps.last().unwrap().name);
        for w in p.apps.windows(2) {
            assert_eq!(w[0].first_pod + w[0].replicas, w[1].first_pod);
        }
    }

    #[test]
    fn pod_addresses_are_unique_and_inside_their_node_block() {
        let p = Plan::new(&spec(3, 1000)).unwrap();
        // 334 pods per node need a /23 (512 addresses).
        assert_eq!(p.pod_block_bits, 9);
        let mut ips: Vec<u32> = (0..1000).map(|i| u32::from(p.pod_ip(i))).collect();
        for i in 0..1000u32 {
            let block = u32::from(p.pod_block(p.pod_node(i)));
            let ip = u32::from(p.pod_ip(i));
            assert!(ip > block + 1 && ip < block + (1 << p.pod_block_bits) - 1, "pod {i}");
        }
        ips.sort_unstable();
        ips.dedup();
        assert_eq!(ips.len(), 1000);
        assert_eq!(p.pods_on_node(1).count(), 333);
        assert_eq!(p.pods_on_node(0).count(), 334);
    }

    #[test]
    fn impossible_sizes_are_errors() {
        assert!(Plan::new(&spec(0, 10)).is_err());
        assert!(Plan::new(&Spec { hosts: 4, ..spec(3, 10) }).is_err());
        assert!(Plan::new(&spec(1, 9_000_000)).is_err());
    }

    #[test]
    fn scale_target_fits_with_24_blocks() {
        let p = Plan::new(&Spec { namespaces: 500, ..spec(5000, 150_000) }).unwrap();
        assert_eq!(p.pod_block_bits, 8);
        assert_eq!(p.pod_cidr(4999), "10.19.135.0/24");
    }
}
