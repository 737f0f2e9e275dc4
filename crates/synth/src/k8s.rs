//! Builders of the Kubernetes objects of a plan, shaped like `kubectl get -o json` items
//! (apiVersion/kind, metadata with uid/labels/creationTimestamp, spec, status).

use serde_json::{json, Map, Value};

use crate::plan::{App, Plan, CONTROL_PLANE_NODES, ENVS, NODE_PREFIX, SERVICE_POOL, TIERS};
use crate::rng::{Rng, Stream};
use crate::time::{rfc3339, CLUSTER_CREATED, COLLECTED_AT};

const KUBELET_VERSION: &str = "v1.33.4";
const ZONES: &[&str] = &["us-east-1a", "us-east-1b", "us-east-1c"];
const INSTANCE_TYPES: &[&str] = &["m6i.xlarge", "m6i.2xlarge", "c6i.2xlarge", "r6i.xlarge"];

fn created(r: &mut Rng) -> String {
    let span = (COLLECTED_AT - CLUSTER_CREATED - 3600).max(1) as u64;
    rfc3339(CLUSTER_CREATED + r.below(span) as i64)
}

fn meta(name: &str, namespace: Option<&str>, uid: &str, created: &str, labels: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), name.into());
    if let Some(ns) = namespace {
        m.insert("namespace".into(), ns.into());
    }
    m.insert("uid".into(), uid.into());
    m.insert(
        "resourceVersion".into(),
        uid.get(..6).map_or(0, |h| u64::from_str_radix(h, 16).unwrap_or(0)).to_string().into(),
    );
    m.insert("creationTimestamp".into(), created.into());
    m.insert("labels".into(), labels);
    m
}

pub(crate) fn namespace(plan: &Plan, index: u32) -> Value {
    let mut r = Rng::for_item(plan.spec.seed, Stream::Namespace, u64::from(index) | 1 << 40);
    let ns = plan.namespaces.get(index as usize);
    let name = plan.namespace_name(index);
    let mut labels = Map::new();
    labels.insert("kubernetes.io/metadata.name".into(), name.into());
    if let Some(ns) = ns.filter(|n| n.team != "platform") {
        labels.insert("team".into(), ns.team.into());
        labels.insert("env".into(), ns.env.into());
        if r.chance(30) {
            labels.insert("istio-injection".into(), "enabled".into());
        }
        if ns.env == "prod" {
            labels.insert("pod-security.kubernetes.io/enforce".into(), "baseline".into());
        }
    }
    let uid = r.uuid();
    let ts = if index < 5 { rfc3339(CLUSTER_CREATED) } else { created(&mut r) };
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": meta(name, None, &uid, &ts, Value::Object(labels)),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"}
    })
}

pub(crate) fn node(plan: &Plan, n: u32) -> Value {
    let mut r = Rng::for_item(plan.spec.seed, Stream::Node, u64::from(n));
    let name = plan.node_name(n);
    let zone = ZONES.get(n as usize % ZONES.len()).copied().unwrap_or("us-east-1a");
    let instance_type = r.pick(INSTANCE_TYPES);
    let control_plane = n < CONTROL_PLANE_NODES;
    let mut labels = Map::new();
    for (k, v) in [
        ("beta.kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("kubernetes.io/hostname", name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("node.kubernetes.io/instance-type", instance_type),
        ("topology.kubernetes.io/region", "us-east-1"),
        ("topology.kubernetes.io/zone", zone),
    ] {
        labels.insert(k.into(), v.into());
    }
    if control_plane {
        labels.insert("node-role.kubernetes.io/control-plane".into(), "".into());
    }
    let uid = r.uuid();
    let ts = if control_plane { rfc3339(CLUSTER_CREATED) } else { created(&mut r) };
    let mut m = meta(&name, None, &uid, &ts, Value::Object(labels));
    m.insert(
        "annotations".into(),
        json!({
            "node.alpha.kubernetes.io/ttl": "0",
            "projectcalico.org/IPv4Address": format!("{}/{}", plan.node_ip(n), NODE_PREFIX),
            "projectcalico.org/IPv4VXLANTunnelAddr": plan.pod_block(n).to_string(),
            "volumes.kubernetes.io/controller-managed-attach-detach": "true"
        }),
    );
    // About one node in 500 lost its CNI config: NotReady with the kubelet's real
    // message, so the node/CNI rules have something to find at scale.
    let cni_broken = !control_plane && r.chance(1) && r.chance(20);
    let heartbeat = rfc3339(COLLECTED_AT - 40);
    let ready = if cni_broken {
        json!({"type": "Ready", "status": "False", "reason": "KubeletNotReady",
               "message": "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
               "lastHeartbeatTime": heartbeat, "lastTransitionTime": rfc3339(COLLECTED_AT - 7200)})
    } else {
        json!({"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
               "lastHeartbeatTime": heartbeat, "lastTransitionTime": ts})
    };
    let pressure = |kind: &str, reason: &str, msg: &str| {
        json!({"type": kind, "status": "False", "reason": reason, "message": msg,
               "lastHeartbeatTime": heartbeat, "lastTransitionTime": ts})
    };
    let mut spec = json!({
        "podCIDR": plan.pod_cidr(n),
        "podCIDRs": [plan.pod_cidr(n)],
        "providerID": format!("aws:///{zone}/i-0{}", r.hex(16)),
    });
    if control_plane {
        spec["taints"] = json!([{"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}]);
    }
    let (cpu, mem) = match instance_type {
        "m6i.2xlarge" | "c6i.2xlarge" => ("8", "32386604Ki"),
        "r6i.xlarge" => ("4", "32386604Ki"),
        _ => ("4", "16106128Ki"),
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": m,
        "spec": spec,
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": plan.node_ip(n).to_string()},
                {"type": "InternalDNS", "address": format!("ip-{}.ec2.internal", plan.node_ip(n).to_string().replace('.', "-"))},
                {"type": "Hostname", "address": name}
            ],
            "allocatable": {"cpu": cpu, "ephemeral-storage": "95491281146", "memory": mem, "pods": "110"},
            "capacity": {"cpu": cpu, "ephemeral-storage": "103609340Ki", "memory": mem, "pods": "110"},
            "conditions": [
                {"type": "NetworkUnavailable", "status": "False", "reason": "CalicoIsUp", "message": "Calico is running on this node",
                 "lastHeartbeatTime": ts, "lastTransitionTime": ts},
                pressure("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                pressure("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                pressure("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                ready
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": r.uuid(),
                "containerRuntimeVersion": "containerd://1.7.27",
                "kernelVersion": "6.1.0-37-cloud-amd64",
                "kubeProxyVersion": KUBELET_VERSION,
                "kubeletVersion": KUBELET_VERSION,
                "machineID": r.hex(32),
                "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "systemUUID": r.uuid()
            }
        }
    })
}

/// Name and uid of a pod: a pure function of its index, so Pods and EndpointSlices agree.
pub(crate) fn pod_identity(plan: &Plan, app: &App, pod: u32) -> (String, String) {
    let mut r = Rng::for_item(plan.spec.seed, Stream::Pod, u64::from(pod));
    let name = format!("{}-{}-{}", app.name, app.rs_hash, r.k8s_suffix(5));
    (name, r.uuid())
}

fn container_status(name: &str, image: &str, started: &str, r: &mut Rng) -> Value {
    json!({
        "containerID": format!("containerd://{}", r.hex(64)),
        "image": image,
        "imageID": format!("{}@sha256:{}", image.split(':').next().unwrap_or(image), r.hex(64)),
        "lastState": {},
        "name": name,
        "ready": true,
        "restartCount": 0,
        "started": true,
        "state": {"running": {"startedAt": started}}
    })
}

pub(crate) fn pod(plan: &Plan, pod: u32) -> Option<Value> {
    let app = plan.app_of_pod(pod)?;
    let (name, uid) = pod_identity(plan, app, pod);
    let mut r = Rng::for_item(plan.spec.seed, Stream::Pod, u64::from(pod) | 1 << 40);
    let ns = plan.namespace_name(app.namespace);
    let node = plan.pod_node(pod);
    let node_ip = plan.node_ip(node).to_string();
    let pod_ip = plan.pod_ip(pod).to_string();
    let ts = created(&mut r);
    let rs_name = format!("{}-{}", app.name, app.rs_hash);
    let is_dns = app.name == "coredns";
    let mut labels = Map::new();
    if is_dns {
        labels.insert("k8s-app".into(), "kube-dns".into());
    } else {
        labels.insert("app".into(), app.name.as_str().into());
        labels.insert("app.kubernetes.io/name".into(), app.name.as_str().into());
        labels.insert("tier".into(), app.tier.into());
        labels.insert("version".into(), format!("v{}", app.version).into());
    }
    labels.insert("pod-template-hash".into(), app.rs_hash.as_str().into());
    let mut m = meta(&name, Some(ns), &uid, &ts, Value::Object(labels));
    m.insert("generateName".into(), format!("{rs_name}-").into());
    m.insert(
        "ownerReferences".into(),
        json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name, "uid": app.uid,
                "controller": true, "blockOwnerDeletion": true}]),
    );
    let mut containers = Vec::new();
    let mut statuses = Vec::new();
    let (dns_policy, service_account) = if is_dns {
        let image = "registry.k8s.io/coredns/coredns:v1.11.3";
        containers.push(json!({
            "name": "coredns",
            "image": image,
            "args": ["-conf", "/etc/coredns/Corefile"],
            "ports": [
                {"containerPort": 53, "name": "dns", "protocol": "UDP"},
                {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                {"containerPort": 9153, "name": "metrics", "protocol": "TCP"}
            ],
            "livenessProbe": {"httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"}, "initialDelaySeconds": 60,
                              "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 5, "successThreshold": 1},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"}, "periodSeconds": 10,
                               "timeoutSeconds": 1, "failureThreshold": 3, "successThreshold": 1},
            "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                                "readOnlyRootFilesystem": true},
            "volumeMounts": [{"mountPath": "/etc/coredns", "name": "config-volume", "readOnly": true}]
        }));
        statuses.push(container_status("coredns", image, &ts, &mut r));
        ("Default", "coredns")
    } else {
        let image = format!(
            "registry.example.com/{}/{}:{}",
            plan.namespaces.get(app.namespace as usize).map_or("apps", |n| n.team),
            app.name,
            app.image_tag
        );
        let mut ports = vec![json!({"containerPort": app.port, "name": "http", "protocol": "TCP"})];
        if app.port != 9090 {
            ports.push(json!({"containerPort": 9090, "name": "metrics", "protocol": "TCP"}));
        }
        containers.push(json!({
            "name": "app",
            "image": image,
            "env": [
                {"name": "LOG_LEVEL", "value": "info"},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
                {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"key": "url", "name": format!("{}-db", app.name)}}}
            ],
            "ports": ports,
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http", "scheme": "HTTP"}, "periodSeconds": 10,
                               "timeoutSeconds": 1, "failureThreshold": 3, "successThreshold": 1},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"}, "periodSeconds": 10,
                              "timeoutSeconds": 1, "failureThreshold": 3, "successThreshold": 1},
            "resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}},
            "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent"
        }));
        statuses.push(container_status("app", &image, &ts, &mut r));
        if app.log_shipper {
            let image = "fluent/fluent-bit:3.2.2";
            containers.push(json!({
                "name": "log-shipper",
                "image": image,
                "ports": [{"containerPort": 2020, "name": "fb-metrics", "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}
            }));
            statuses.push(container_status("log-shipper", image, &ts, &mut r));
        }
        ("ClusterFirst", "default")
    };
    let cond = |kind: &str| json!({"type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": ts});
    Some(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": m,
        "spec": {
            "containers": containers,
            "dnsPolicy": dns_policy,
            "enableServiceLinks": true,
            "nodeName": plan.node_name(node),
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": if is_dns { 2_000_000_000 } else { 0 },
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccount": service_account,
            "serviceAccountName": service_account,
            "terminationGracePeriodSeconds": 30,
            "tolerations": [
                {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
            ]
        },
        "status": {
            "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")],
            "containerStatuses": statuses,
            "hostIP": node_ip,
            "hostIPs": [{"ip": node_ip}],
            "phase": "Running",
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "qosClass": "Burstable",
            "startTime": ts
        }
    }))
}

/// The Service of app `index` (`kube-dns` for CoreDNS).
pub(crate) fn service(plan: &Plan, index: u32) -> Option<Value> {
    let app = plan.apps.get(index as usize)?;
    let mut r = Rng::for_item(plan.spec.seed, Stream::Service, u64::from(index));
    let name = plan.service_name(app);
    let ns = plan.namespace_name(app.namespace);
    let ts = created(&mut r);
    let uid = r.uuid();
    if index == 0 {
        let ip = plan.service_ip(0).to_string();
        let labels =
            json!({"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"});
        let mut m = meta(&name, Some(ns), &uid, &rfc3339(CLUSTER_CREATED), labels);
        m.insert("annotations".into(), json!({"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}));
        return Some(json!({
            "apiVersion": "v1", "kind": "Service", "metadata": m,
            "spec": {
                "clusterIP": ip, "clusterIPs": [ip], "internalTrafficPolicy": "Cluster",
                "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                    {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}
                ],
                "selector": {"k8s-app": "kube-dns"}, "sessionAffinity": "None", "type": "ClusterIP"
            },
            "status": {"loadBalancer": {}}
        }));
    }
    let headless = app.tier == "db" && r.chance(50);
    let node_port = !headless && app.tier == "frontend" && r.chance(20);
    let ip = if headless { "None".to_string() } else { plan.service_ip(index).to_string() };
    let mut port = json!({"name": "http", "port": if headless { u64::from(app.port) } else { 80 }, "protocol": "TCP", "targetPort": "http"});
    if node_port {
        port["nodePort"] = json!(30000 + (index % 2768));
    }
    let m = meta(&name, Some(ns), &uid, &ts, json!({"app": app.name}));
    Some(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": m,
        "spec": {
            "clusterIP": ip, "clusterIPs": [ip], "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "ports": if app.port == 9090 { json!([port]) } else { json!([port, {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": "metrics"}]) },
            "selector": {"app": app.name}, "sessionAffinity": "None",
            "type": if node_port { "NodePort" } else { "ClusterIP" }
        },
        "status": {"loadBalancer": {}}
    }))
}

/// The `kubernetes` Service in `default`, backed by the control-plane nodes.
pub(crate) fn kubernetes_service(plan: &Plan) -> Value {
    let mut r = Rng::for_item(plan.spec.seed, Stream::Service, u64::MAX);
    let ip = std::net::Ipv4Addr::from(SERVICE_POOL + 1).to_string();
    let labels = json!({"component": "apiserver", "provider": "kubernetes"});
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": meta("kubernetes", Some("default"), &r.uuid(), &rfc3339(CLUSTER_CREATED), labels),
        "spec": {
            "clusterIP": ip, "clusterIPs": [ip], "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
            "sessionAffinity": "None", "type": "ClusterIP"
        },
        "status": {"loadBalancer": {}}
    })
}

pub(crate) fn kubernetes_endpoint_slice(plan: &Plan) -> Value {
    let mut r = Rng::for_item(plan.spec.seed, Stream::Service, u64::MAX - 1);
    let endpoints: Vec<Value> = (0..CONTROL_PLANE_NODES.min(plan.spec.nodes))
        .map(|n| json!({"addresses": [plan.node_ip(n).to_string()], "conditions": {"ready": true}}))
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": meta("kubernetes", Some("default"), &r.uuid(), &rfc3339(CLUSTER_CREATED),
                         json!({"kubernetes.io/service-name": "kubernetes"})),
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]
    })
}

/// The EndpointSlice of app `index`'s Service: every replica, ready.
pub(crate) fn endpoint_slice(plan: &Plan, index: u32) -> Option<Value> {
    let app = plan.apps.get(index as usize)?;
    let mut r = Rng::for_item(plan.spec.seed, Stream::Service, u64::from(index) | 1 << 40);
    let svc = plan.service_name(app);
    let ns = plan.namespace_name(app.namespace);
    let endpoints: Vec<Value> = (app.first_pod..app.first_pod + app.replicas)
        .map(|p| {
            let (name, uid) = pod_identity(plan, app, p);
            let node = plan.pod_node(p);
            json!({
                "addresses": [plan.pod_ip(p).to_string()],
                "conditions": {"ready": true, "serving": true, "terminating": false},
                "nodeName": plan.node_name(node),
                "targetRef": {"kind": "Pod", "name": name, "namespace": ns, "uid": uid},
                "zone": ZONES.get(node as usize % ZONES.len()).copied().unwrap_or("us-east-1a")
            })
        })
        .collect();
    let ports = if index == 0 {
        json!([{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
               {"name": "metrics", "port": 9153, "protocol": "TCP"}])
    } else if app.port == 9090 {
        json!([{"name": "http", "port": app.port, "protocol": "TCP"}])
    } else {
        json!([{"name": "http", "port": app.port, "protocol": "TCP"}, {"name": "metrics", "port": 9090, "protocol": "TCP"}])
    };
    let labels = json!({"kubernetes.io/service-name": svc, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"});
    let mut m = meta(&format!("{svc}-{}", r.k8s_suffix(5)), Some(ns), &r.uuid(), &created(&mut r), labels);
    m.insert("generateName".into(), format!("{svc}-").into());
    m.insert(
        "ownerReferences".into(),
        json!([{"apiVersion": "v1", "kind": "Service", "name": svc, "uid": r.uuid(), "controller": true, "blockOwnerDeletion": true}]),
    );
    Some(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": m,
        "addressType": "IPv4", "endpoints": endpoints, "ports": ports
    }))
}

/// The kinds of policy the generator writes, with how often (weights out of 100).
const POLICY_KINDS: &[(&str, u64)] = &[
    ("default-deny-ingress", 18),
    // Egress lock-down; harmless only where another policy of the namespace allows DNS.
    ("default-deny-egress", 4),
    ("default-deny-all-allow-dns", 14),
    ("allow-from-frontend", 22),
    ("allow-from-envs", 16),
    ("allow-https-egress", 10),
    ("allow-monitoring", 16),
];

fn pick_policy_kind(r: &mut Rng) -> &'static str {
    let mut roll = r.below(POLICY_KINDS.iter().map(|(_, w)| w).sum());
    for (kind, w) in POLICY_KINDS {
        if roll < *w {
            return kind;
        }
        roll -= w;
    }
    "default-deny-ingress"
}

fn dns_egress_rule() -> Value {
    json!({
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    })
}

/// NetworkPolicy `j`, in application namespace `j % namespaces`.
pub(crate) fn network_policy(plan: &Plan, j: u32) -> Value {
    let mut r = Rng::for_item(plan.spec.seed, Stream::Policy, u64::from(j));
    let ns_index = crate::plan::SYSTEM_NAMESPACES.len() as u32 + j % plan.spec.namespaces.max(1);
    let ns = plan.namespace_name(ns_index);
    // One application namespace in 50 (the 2nd, 52nd, ...) locks egress down and never
    // allows DNS: the FAILURES.md #3 fault, guaranteed to be present at any scale.
    let forgets_dns = j % plan.spec.namespaces.max(1) % 50 == 1;
    let kind = match pick_policy_kind(&mut r) {
        "default-deny-all-allow-dns" if forgets_dns => "default-deny-egress",
        other => other,
    };
    // A target app of the namespace when it has one; else a tier selector.
    let apps = plan.apps_by_ns.get(ns_index as usize).map_or(&[][..], Vec::as_slice);
    let target = apps.get(r.below(apps.len() as u64) as usize).and_then(|i| plan.apps.get(*i as usize));
    let app_selector = match target {
        Some(app) => json!({"matchLabels": {"app": app.name}}),
        None => json!({"matchLabels": {"tier": r.pick(TIERS)}}),
    };
    let spec = match kind {
        "default-deny-ingress" => json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
        "default-deny-egress" => json!({"podSelector": {}, "policyTypes": ["Egress"]}),
        "default-deny-all-allow-dns" => json!({
            "podSelector": {}, "policyTypes": ["Ingress", "Egress"], "egress": [dns_egress_rule()]
        }),
        "allow-from-frontend" => json!({
            "podSelector": app_selector,
            "policyTypes": ["Ingress"],
            "ingress": [{
                "from": [{"podSelector": {"matchLabels": {"tier": "frontend"}}},
                         {"podSelector": {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "Exists"}]},
                          "namespaceSelector": {"matchLabels": {"team": plan.namespaces.get(ns_index as usize).map_or("x", |n| n.team)}}}],
                "ports": [{"protocol": "TCP", "port": "http"}]
            }]
        }),
        "allow-from-envs" => {
            let base = 8000 + 100 * r.below(5);
            json!({
                "podSelector": {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db", "cache"]}]},
                "ingress": [{
                    "from": [{"namespaceSelector": {"matchExpressions": [
                        {"key": "env", "operator": "In", "values": [r.pick(ENVS), "prod"]}]}}],
                    "ports": [{"protocol": "TCP", "port": base, "endPort": base + 99}]
                }]
            })
        }
        "allow-https-egress" => {
            let mut egress = vec![json!({
                "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "169.254.169.254/32"]}}],
                "ports": [{"protocol": "TCP", "port": 443}]
            })];
            // Half of these also allow DNS; the other half are egress policies that
            // silently break name resolution for the selected pods.
            if r.chance(50) && !forgets_dns {
                egress.push(dns_egress_rule());
            }
            json!({"podSelector": app_selector, "policyTypes": ["Egress"], "egress": egress})
        }
        _ => json!({
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [{
                "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                          "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}],
                "ports": [{"protocol": "TCP", "port": 9090}]
            }]
        }),
    };
    let name = format!("{kind}-{j}");
    let m = meta(&name, Some(ns), &r.uuid(), &created(&mut r), json!({"app.kubernetes.io/managed-by": "synth"}));
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": m, "spec": spec})
}

pub(crate) const COREFILE: &str = ".:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
";

pub(crate) fn coredns_config_map(plan: &Plan) -> Value {
    let mut r = Rng::for_item(plan.spec.seed, Stream::Service, u64::MAX - 2);
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": meta("coredns", Some("kube-system"), &r.uuid(), &rfc3339(CLUSTER_CREATED), json!({})),
        "data": {"Corefile": COREFILE}
    })
}

/// kube-system workloads: the CoreDNS Deployment and the calico-node and kube-proxy
/// DaemonSets (the CNI and proxy a real cluster of this shape runs).
pub(crate) fn system_workloads(plan: &Plan) -> Vec<Value> {
    let mut r = Rng::for_item(plan.spec.seed, Stream::Service, u64::MAX - 3);
    let ts = rfc3339(CLUSTER_CREATED);
    let nodes = plan.spec.nodes;
    let dns = plan.apps.first().map_or(0, |a| a.replicas);
    let ds = |name: &str, image: &str, uid: String| {
        json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": meta(name, Some("kube-system"), &uid, &ts, json!({"k8s-app": name})),
            "spec": {
                "selector": {"matchLabels": {"k8s-app": name}},
                "template": {
                    "metadata": {"labels": {"k8s-app": name}},
                    "spec": {"hostNetwork": true, "priorityClassName": "system-node-critical",
                             "containers": [{"name": name, "image": image}]}
                }
            },
            "status": {"currentNumberScheduled": nodes, "desiredNumberScheduled": nodes, "numberAvailable": nodes,
                       "numberMisscheduled": 0, "numberReady": nodes, "updatedNumberScheduled": nodes}
        })
    };
    vec![
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": meta("coredns", Some("kube-system"), &r.uuid(), &ts, json!({"k8s-app": "kube-dns"})),
            "spec": {
                "replicas": dns,
                "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                "template": {
                    "metadata": {"labels": {"k8s-app": "kube-dns"}},
                    "spec": {"dnsPolicy": "Default", "serviceAccountName": "coredns",
                             "containers": [{"name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.11.3",
                                             "ports": [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                                                       {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"}]}]}
                }
            },
            "status": {"availableReplicas": dns, "readyReplicas": dns, "replicas": dns, "updatedReplicas": dns}
        }),
        ds("calico-node", "docker.io/calico/node:v3.29.3", r.uuid()),
        ds("kube-proxy", "registry.k8s.io/kube-proxy:v1.33.4", r.uuid()),
    ]
}
