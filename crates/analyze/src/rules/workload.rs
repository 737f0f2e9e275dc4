//! Pod-layer rules: hardening of VPN gateway workloads (POD-001..005): privileges,
//! host networking, keys outside Secrets, readiness, and single points of failure.

use std::collections::{BTreeMap, HashMap};

use netsleuth_model::kubernetes::{Cluster, Container, WorkloadKind};
use netsleuth_model::{Confidence, Evidence, Finding, Layer, Location, RedactionKind, Severity};

use crate::rule::{Context, Rule};
use crate::support::{container_is_vpn, list_some, plural, workload_units, Unit, UnitKind};

pub(crate) const RULES: &[Rule] = &[
    Rule {
        id: "POD-001",
        layer: Layer::Pod,
        severity: Severity::High,
        title: "VPN gateway runs privileged or with capabilities beyond NET_ADMIN",
        rationale: "A VPN gateway needs CAP_NET_ADMIN to create its interface, set addresses, routes \
                    and firewall rules (NET_RAW for some tools); wireguard-go, boringtun and OpenVPN \
                    also need the /dev/net/tun device. privileged: true, SYS_ADMIN, SYS_MODULE or ALL \
                    give a process that terminates traffic from the internet full control of the node: \
                    a compromise of the VPN daemon becomes a node compromise. Loading the wireguard \
                    module belongs on the node, not in the pod.",
        references: &[
            "https://kubernetes.io/docs/concepts/security/pod-security-standards/",
            "https://kubernetes.io/docs/tasks/configure-pod-container/security-context/#set-capabilities-for-a-container",
            "https://man7.org/linux/man-pages/man7/capabilities.7.html",
        ],
        example: "k8s/Deployment/vpn/wg-gw: container wireguard runs privileged: true; NET_ADMIN suffices \
                  for WireGuard (and /dev/net/tun for wireguard-go)",
        check: check_privileges,
    },
    Rule {
        id: "POD-002",
        layer: Layer::Pod,
        severity: Severity::Medium,
        title: "VPN gateway uses hostNetwork without a stated reason",
        rationale: "With hostNetwork the gateway's tunnel interface, routes and firewall rules are the \
                    node's: a misconfiguration breaks the node itself, NetworkPolicy no longer applies \
                    to the pod, only one gateway per node can bind the port, and the node's services \
                    are exposed to the VPN. Some designs need it (routing for the node or the whole \
                    pod network); then the reason should be recorded so reviewers know it is deliberate \
                    (annotation netsleuth.io/host-network-reason).",
        references: &[
            "https://kubernetes.io/docs/concepts/security/pod-security-standards/#baseline",
            "https://kubernetes.io/docs/concepts/services-networking/service/#type-loadbalancer",
        ],
        example: "k8s/DaemonSet/vpn/ipsec-gw: hostNetwork: true without annotation \
                  netsleuth.io/host-network-reason",
        check: check_host_network,
    },
    Rule {
        id: "POD-003",
        layer: Layer::Pod,
        severity: Severity::Critical,
        title: "VPN keys or other secrets in ConfigMaps, env literals or annotations",
        rationale: "Private keys, pre-shared keys and tokens written into ConfigMap data, literal env \
                    values or annotations are readable by anyone who can get the object, are not \
                    encrypted at rest, and end up in kubectl describe output, logs, backups and GitOps \
                    repositories. Keep them in Secrets (ideally synced from a vault by External Secrets \
                    Operator or the Vault agent) and rotate any key that was exposed. netsleuth redacts \
                    the values at parse time: findings name only where and what kind.",
        references: &[
            "https://kubernetes.io/docs/concepts/configuration/secret/",
            "https://kubernetes.io/docs/concepts/security/secrets-good-practices/",
            "https://external-secrets.io/latest/",
        ],
        example: "k8s/ConfigMap/vpn/wg-config: a WireGuard private key in data key wg0.conf \
                  (kubernetes/configmaps.json#/items/2/data/wg0.conf)",
        check: check_exposed_secrets,
    },
    Rule {
        id: "POD-004",
        layer: Layer::Pod,
        severity: Severity::Medium,
        title: "VPN gateway container without readinessProbe",
        rationale: "Without a readinessProbe a gateway is Ready as soon as its process starts, before \
                    the interface exists or a tunnel is established. Rolling updates then kill the old \
                    gateway before the new one carries traffic, and Services send traffic to replicas \
                    whose tunnel is down. A probe that checks the tunnel (wg show, swanctl --list-sas) \
                    keeps traffic on working replicas.",
        references: &[
            "https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/",
            "https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#rolling-update-deployment",
        ],
        example: "k8s/Deployment/vpn/wg-gw: container wireguard has no readinessProbe",
        check: check_readiness,
    },
    Rule {
        id: "POD-005",
        layer: Layer::Pod,
        severity: Severity::Medium,
        title: "VPN gateway is a single replica without a PodDisruptionBudget",
        rationale: "A gateway with one replica (replicas 1 or unset, and no HPA with minReplicas > 1) is \
                    a single point of failure for every tunnel it carries. Without a \
                    PodDisruptionBudget, kubectl drain, node upgrades and cluster-autoscaler evict it \
                    without waiting, and the tunnels stay down until the replacement is scheduled and \
                    has re-handshaked. A bare Pod is not recreated at all when its node fails.",
        references: &[
            "https://kubernetes.io/docs/tasks/run-application/configure-pdb/",
            "https://kubernetes.io/docs/concepts/workloads/pods/disruptions/",
        ],
        example: "k8s/Deployment/vpn/wg-gw: replicas 1, no HorizontalPodAutoscaler with minReplicas > 1 and \
                  no PodDisruptionBudget selects app=wg-gw",
        check: check_single_replica,
    },
];

/// VPN gateways among the workloads and bare pods, with why they are gateways.
fn gateways(k: &Cluster) -> Vec<(Unit<'_>, Vec<String>)> {
    workload_units(k)
        .into_iter()
        .filter(|u| u.is_active())
        .filter_map(|u| {
            let s = u.vpn_signals();
            (!s.is_empty()).then_some((u, s))
        })
        .collect()
}

fn gateway_evidence(u: &Unit<'_>, signals: &[String]) -> Evidence {
    Evidence::new(u.origin.clone(), format!("VPN gateway: {}", list_some(signals, 3)))
}

/// Which VPN the unit runs, for flavour-specific advice.
fn flavour(signals: &[String]) -> &'static str {
    let text = signals.join(" ").to_ascii_lowercase();
    if text.contains("wireguard") || text.contains("wg-easy") || text.contains("51820") {
        "wireguard"
    } else if ["strongswan", "libreswan", "ipsec", "submariner", " 500", "4500"].iter().any(|w| text.contains(w)) {
        "ipsec"
    } else if text.contains("openvpn") || text.contains("1194") {
        "openvpn"
    } else {
        "vpn"
    }
}

// ---------------------------------------------------------------------------------------
// POD-001

/// Capabilities a VPN gateway may need.
const NEEDED_CAPS: [&str; 2] = ["NET_ADMIN", "NET_RAW"];

fn cap_name(c: &str) -> String {
    let up = c.trim().to_ascii_uppercase();
    up.strip_prefix("CAP_").map(str::to_string).unwrap_or(up)
}

fn cap_note(cap: &str) -> &'static str {
    match cap {
        "SYS_MODULE" => {
            "only loads kernel modules: load wireguard on the node instead (/etc/modules-load.d/wireguard.conf)"
        }
        "SYS_ADMIN" => "near-root, not needed by WireGuard, strongSwan or OpenVPN",
        "ALL" => "grants every capability",
        "NET_BIND_SERVICE" => "only needed for ports below 1024 when not running as root",
        _ => "not needed by a VPN gateway",
    }
}

fn check_privileges(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for (u, signals) in gateways(&ctx.net.kubernetes) {
        let mut items = Vec::new();
        let mut evidence = vec![gateway_evidence(&u, &signals)];
        let mut privileged = false;
        let mut flagged: Vec<&str> = Vec::new();
        for c in u.spec.all_containers() {
            let extra: Vec<String> =
                c.capabilities_add.iter().map(|x| cap_name(x)).filter(|x| !NEEDED_CAPS.contains(&x.as_str())).collect();
            if !c.privileged && extra.is_empty() {
                continue;
            }
            flagged.push(&c.name);
            let sc = u.origin.child(&format!("{}/securityContext", c.pointer));
            if c.privileged {
                privileged = true;
                items.push(format!(
                    "container {} runs privileged: true (NET_ADMIN suffices for WireGuard, and /dev/net/tun for \
                     wireguard-go)",
                    c.name
                ));
                evidence
                    .push(Evidence::new(sc.child("/privileged"), format!("container {}: privileged: true", c.name)));
            }
            for cap in &extra {
                items.push(format!("container {} adds {cap} ({})", c.name, cap_note(cap)));
            }
            if !extra.is_empty() {
                evidence.push(Evidence::new(
                    sc.child("/capabilities/add"),
                    format!("container {}: capabilities.add [{}]", c.name, c.capabilities_add.join(", ")),
                ));
            }
        }
        if items.is_empty() {
            continue;
        }
        let detail = format!(
            "{} is a VPN gateway ({}): {}.{} A VPN daemon parses traffic from the internet; with these \
             privileges a compromise of it is a compromise of the node.",
            u.subject().trim_start_matches("k8s/"),
            list_some(&signals, 2),
            items.join("; "),
            if privileged {
                " privileged: true also gives every device and runs without seccomp and AppArmor confinement."
            } else {
                ""
            }
        );
        out.push(rule.finding(
            u.subject(),
            format!("VPN gateway {} has more privileges than it needs", u.name()),
            detail,
            evidence,
            privileges_fix(&u, &flagged, flavour(&signals)),
            Confidence::Confirmed,
        ));
    }
}

/// A strategic-merge patch giving the flagged containers NET_ADMIN only (plus the tun
/// device for userspace implementations).
fn privileges_fix(u: &Unit<'_>, containers: &[&str], flavour: &str) -> String {
    let tun = matches!(flavour, "wireguard" | "openvpn" | "vpn");
    let (indent, head, how) = match u.kind {
        UnitKind::Pod => {
            ("", "spec:\n", "Recreate the Pod (a Pod's security context cannot be changed in place) with".to_string())
        }
        UnitKind::Workload(_) => (
            "    ",
            "spec:\n  template:\n    spec:\n",
            format!(
                "kubectl -n {} patch {} {} --type strategic --patch-file patch.yaml, with patch.yaml",
                u.namespace(),
                u.kind_name().to_ascii_lowercase(),
                u.name()
            ),
        ),
    };
    let mut y = format!("{how}:\n{head}{indent}  containers:\n");
    for name in containers {
        y.push_str(&format!(
            "{indent}    - name: {name}\n{indent}      securityContext:\n{indent}        privileged: false\n\
             {indent}        allowPrivilegeEscalation: false\n{indent}        capabilities:\n\
             {indent}          drop: [\"ALL\"]\n{indent}          add: [\"NET_ADMIN\"]   # and NET_RAW if the image needs it\n"
        ));
        if tun {
            y.push_str(&format!(
                "{indent}      volumeMounts:   # userspace WireGuard (wireguard-go, boringtun) and OpenVPN\n\
                 {indent}        - name: dev-net-tun\n{indent}          mountPath: /dev/net/tun\n"
            ));
        }
    }
    if tun {
        y.push_str(&format!(
            "{indent}  volumes:\n{indent}    - name: dev-net-tun\n{indent}      hostPath:\n\
             {indent}        path: /dev/net/tun\n{indent}        type: CharDevice\n"
        ));
    }
    y.push_str(
        "The default device cgroup of containerd and CRI-O allows /dev/net/tun. Sysctls the gateway sets \
         (net.ipv4.ip_forward is namespaced) belong in the pod's securityContext.sysctls (allowed with kubelet \
         --allowed-unsafe-sysctls), not in a privileged container.",
    );
    y
}

// ---------------------------------------------------------------------------------------
// POD-002

const HOST_NETWORK_REASON: &str = "netsleuth.io/host-network-reason";

fn check_host_network(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for (u, signals) in gateways(&ctx.net.kubernetes) {
        if !u.spec.host_network || u.annotation(HOST_NETWORK_REASON).is_some_and(|r| !r.trim().is_empty()) {
            continue;
        }
        let template = match u.kind {
            UnitKind::Pod => "metadata.annotations",
            UnitKind::Workload(_) => "metadata.annotations (or spec.template.metadata.annotations)",
        };
        out.push(rule.finding(
            u.subject(),
            format!("VPN gateway {} uses hostNetwork without a stated reason", u.name()),
            format!(
                "{} is a VPN gateway ({}) with hostNetwork: true and no {HOST_NETWORK_REASON} annotation. Its \
                 tunnel interface, routes and firewall rules live in the node's network namespace, \
                 NetworkPolicy does not apply to it, and the node's own services are reachable from the tunnel.",
                u.subject().trim_start_matches("k8s/"),
                list_some(&signals, 2)
            ),
            vec![
                Evidence::new(u.origin.child(&format!("{}/hostNetwork", u.spec_pointer())), "hostNetwork: true"),
                gateway_evidence(&u, &signals),
            ],
            format!(
                "Run the gateway in the pod network and publish its UDP port with a Service (type LoadBalancer \
                 or NodePort, externalTrafficPolicy: Local) or a hostPort. If host networking is required (it \
                 routes for the node or the pod network), say so in {template}:\n  annotations:\n    \
                 {HOST_NETWORK_REASON}: \"<why, e.g. routes node traffic to site B>\""
            ),
            Confidence::Confirmed,
        ));
    }
}

// ---------------------------------------------------------------------------------------
// POD-003

fn kind_text(k: RedactionKind) -> &'static str {
    match k {
        RedactionKind::WireguardPrivateKey => "a WireGuard private key",
        RedactionKind::WireguardPresharedKey => "a WireGuard preshared key",
        RedactionKind::IpsecSecret => "an IPsec secret (PSK or private key)",
        RedactionKind::KubernetesSecretData => "Secret data",
        RedactionKind::BearerToken => "a bearer token",
        RedactionKind::NamedSecret => "a value of a secret-named field (password, token, key)",
        RedactionKind::PrivateKeyBlock => "a PEM private key",
    }
}

/// Objects of the bundle by (file, pointer): `k8s/<Kind>/<ns>/<name>` and their containers.
struct ObjectIndex<'a> {
    objects: HashMap<(&'a str, &'a str), (String, Vec<&'a Container>)>,
}

impl<'a> ObjectIndex<'a> {
    fn new(k: &'a Cluster) -> ObjectIndex<'a> {
        let mut objects = HashMap::new();
        let mut put = |loc: &'a Location, subject: String, containers: Vec<&'a Container>| {
            if let Location::Json { path, pointer } = loc {
                objects.insert((path.as_str(), pointer.as_str()), (subject, containers));
            }
        };
        for c in &k.config_maps {
            put(&c.origin, format!("k8s/ConfigMap/{}/{}", c.meta.namespace, c.meta.name), Vec::new());
        }
        for s in &k.secrets {
            put(&s.origin, format!("k8s/Secret/{}/{}", s.meta.namespace, s.meta.name), Vec::new());
        }
        for u in
            workload_units(k).into_iter().chain(k.pods.iter().filter(|p| !p.meta.owners.is_empty()).map(Unit::from_pod))
        {
            put(u.origin, u.subject(), u.spec.all_containers().collect());
        }
        for s in &k.services {
            put(&s.origin, format!("k8s/Service/{}/{}", s.meta.namespace, s.meta.name), Vec::new());
        }
        for n in &k.namespaces {
            put(&n.origin, format!("k8s/Namespace/{}", n.meta.name), Vec::new());
        }
        ObjectIndex { objects }
    }

    /// The object whose origin is the longest prefix of `pointer`, and the rest.
    fn find(&self, path: &'a str, pointer: &'a str) -> Option<(&(String, Vec<&'a Container>), &'a str)> {
        let mut end = pointer.len();
        loop {
            let prefix = pointer.get(..end)?;
            if let Some(o) = self.objects.get(&(path, prefix)) {
                return Some((o, pointer.get(end..).unwrap_or("")));
            }
            if end == 0 {
                return None;
            }
            end = prefix.rfind('/')?;
        }
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Where inside an object a secret sits, if it is one of the places this rule covers.
fn describe_place(rest: &str, containers: &[&Container]) -> Option<String> {
    if let Some(key) = rest.strip_prefix("/data/").or_else(|| rest.strip_prefix("/binaryData/")) {
        return Some(format!("data key {}", unescape(key)));
    }
    if let Some(key) = rest
        .strip_prefix("/metadata/annotations/")
        .or_else(|| rest.strip_prefix("/spec/template/metadata/annotations/"))
    {
        return Some(format!("annotation {}", unescape(key)));
    }
    // A container field: find the container by its pointer.
    let c = containers.iter().find(|c| !c.pointer.is_empty() && rest.starts_with(&format!("{}/", c.pointer)));
    let field = match c {
        Some(c) => rest.get(c.pointer.len()..).unwrap_or(""),
        None => rest,
    };
    let cname = c.map(|c| c.name.as_str()).unwrap_or("?");
    if let Some(idx) = field.strip_prefix("/env/") {
        let i: Option<usize> = idx.split('/').next().and_then(|n| n.parse().ok());
        let var = c.and_then(|c| i.and_then(|i| c.env.get(i))).map(|e| e.name.as_str()).unwrap_or("?");
        return Some(format!("env {var} of container {cname} (literal value)"));
    }
    if field.starts_with("/args/") || field.starts_with("/command/") {
        return Some(format!("command line of container {cname}"));
    }
    None
}

fn check_exposed_secrets(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    let net = ctx.net;
    let relevant: Vec<_> = net
        .redactions
        .iter()
        .filter(|r| r.kind != RedactionKind::KubernetesSecretData)
        .filter(|r| r.location.path().is_some_and(|p| p.starts_with("kubernetes/")))
        .collect();
    if relevant.is_empty() {
        return;
    }
    let index = ObjectIndex::new(&net.kubernetes);
    // subject → (places, evidence)
    let mut found: BTreeMap<String, (Vec<String>, Vec<Evidence>)> = BTreeMap::new();
    for r in relevant {
        let Location::Json { path, pointer } = &r.location else { continue };
        let (subject, place) = match index.find(path, pointer) {
            Some(((subject, containers), rest)) => {
                // Secret objects are where secrets belong.
                if subject.starts_with("k8s/Secret/") {
                    continue;
                }
                let Some(place) = describe_place(rest, containers) else { continue };
                (subject.clone(), place)
            }
            None => {
                // An object of a kind the model does not type: find the field by its shape.
                let place = pointer.match_indices('/').find_map(|(i, _)| describe_place(pointer.get(i..)?, &[]));
                let Some(place) = place else { continue };
                (format!("bundle/{path}"), format!("{place} at {pointer}"))
            }
        };
        let e = found.entry(subject).or_default();
        e.0.push(format!("{} in {place}", kind_text(r.kind)));
        e.1.push(Evidence::new(r.location.clone(), format!("{} (value redacted)", kind_text(r.kind))));
    }
    for (subject, (places, evidence)) in found {
        let what = subject.trim_start_matches("k8s/").trim_start_matches("bundle/");
        let parts: Option<Vec<&str>> = subject.strip_prefix("k8s/").map(|s| s.split('/').collect());
        let (ns, name) = match parts.as_deref() {
            Some([_, ns, name]) => (ns.to_string(), name.to_string()),
            _ => ("<namespace>".to_string(), "<name>".to_string()),
        };
        let secret_name = format!("{name}-keys");
        out.push(rule.finding(
            subject.clone(),
            format!("{} holds {} outside a Secret", what, plural(places.len(), "secret")),
            format!(
                "{what} holds {} in clear text: {}. netsleuth redacted the values; anyone who can read this \
                 object (get/list, kubectl describe, backups, the Git repository it came from) could read them, \
                 so treat them as exposed.",
                plural(places.len(), "secret"),
                list_some(&places, 4)
            ),
            evidence,
            format!(
                "Move the values into a Secret, reference it (volume `secret: {{secretName: {secret_name}}}` or \
                 env `valueFrom.secretKeyRef`), remove them from {what}, and rotate them. Better, sync the Secret \
                 from a vault:\napiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata:\n  name: \
                 {secret_name}\n  namespace: {ns}\nspec:\n  secretStoreRef:\n    name: vault\n    kind: \
                 ClusterSecretStore\n  target:\n    name: {secret_name}\n  data:\n    - secretKey: privatekey\n      \
                 remoteRef:\n        key: vpn/{name}\n        property: privatekey"
            ),
            Confidence::Confirmed,
        ));
    }
}

// ---------------------------------------------------------------------------------------
// POD-004

fn probe_example(flavour: &str) -> &'static str {
    match flavour {
        "wireguard" => "exec:\n          command: [\"wg\", \"show\", \"wg0\", \"latest-handshakes\"]",
        "ipsec" => "exec:\n          command: [\"sh\", \"-c\", \"swanctl --list-sas | grep -q ESTABLISHED\"]",
        "openvpn" => "exec:\n          command: [\"sh\", \"-c\", \"ip link show tun0\"]",
        _ => "exec:\n          command: [\"sh\", \"-c\", \"ip link show <tunnel interface>\"]",
    }
}

fn check_readiness(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for (u, signals) in gateways(&ctx.net.kubernetes) {
        let vpn: Vec<&Container> = u.spec.containers.iter().filter(|c| container_is_vpn(c)).collect();
        // Only a generic signal (name, annotation): every main container counts.
        let candidates: Vec<&Container> = if vpn.is_empty() { u.spec.containers.iter().collect() } else { vpn };
        let missing: Vec<&&Container> = candidates.iter().filter(|c| !c.readiness_probe).collect();
        if missing.is_empty() {
            continue;
        }
        let names: Vec<String> = missing.iter().map(|c| c.name.clone()).collect();
        let evidence: Vec<Evidence> = missing
            .iter()
            .map(|c| Evidence::new(u.origin.child(&c.pointer), format!("container {}: no readinessProbe", c.name)))
            .collect();
        out.push(rule.finding(
            u.subject(),
            format!("VPN gateway {} has no readinessProbe ({})", u.name(), list_some(&names, 3)),
            format!(
                "{} is a VPN gateway ({}); {} {} {} no readinessProbe, so it is Ready before its tunnel is up: \
                 rollouts replace working gateways with ones that carry nothing yet, and Services route to \
                 replicas whose tunnel is down.",
                u.subject().trim_start_matches("k8s/"),
                list_some(&signals, 2),
                if names.len() == 1 { "container" } else { "containers" },
                list_some(&names, 3),
                if names.len() == 1 { "has" } else { "have" },
            ),
            evidence,
            format!(
                "Add a probe that checks the tunnel to the gateway container:\n      readinessProbe:\n        {}\n        \
                 initialDelaySeconds: 5\n        periodSeconds: 10\n        failureThreshold: 3",
                probe_example(flavour(&signals))
            ),
            Confidence::Confirmed,
        ));
    }
}

// ---------------------------------------------------------------------------------------
// POD-005

fn check_single_replica(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    let k = &ctx.net.kubernetes;
    for (u, signals) in gateways(k) {
        let (replicas_text, replicas_evidence) = match (u.kind, u.workload) {
            (UnitKind::Workload(WorkloadKind::DaemonSet), _) => continue,
            (UnitKind::Workload(_), Some(w)) => match w.replicas {
                Some(n) if n != 1 => continue,
                Some(_) => ("replicas 1".to_string(), Evidence::new(u.origin.child("/spec/replicas"), "replicas: 1")),
                None => (
                    "replicas unset (defaults to 1)".to_string(),
                    Evidence::new(u.origin.child("/spec"), "no spec.replicas: 1 replica"),
                ),
            },
            _ => (
                "a bare Pod (no controller recreates it)".to_string(),
                Evidence::new(u.origin.clone(), "Pod without ownerReferences"),
            ),
        };
        let hpa = k
            .hpas
            .iter()
            .find(|h| h.meta.namespace == u.namespace() && h.target.0 == u.kind_name() && h.target.1 == u.name());
        if hpa.is_some_and(|h| h.min_replicas.unwrap_or(1) > 1) {
            continue;
        }
        if k.pdbs
            .iter()
            .any(|p| p.meta.namespace == u.namespace() && !p.selector.is_empty() && p.selector.matches(u.labels))
        {
            continue;
        }
        let mut detail = format!(
            "{} is a VPN gateway ({}) with {replicas_text}",
            u.subject().trim_start_matches("k8s/"),
            list_some(&signals, 2)
        );
        if let Some(h) = hpa {
            detail.push_str(&format!(
                ", its HorizontalPodAutoscaler {} has minReplicas {}",
                h.meta.name,
                h.min_replicas.unwrap_or(1)
            ));
        }
        detail.push_str(
            ", and no PodDisruptionBudget selects its pods. Every tunnel it carries goes down on a node drain, \
             an eviction, a node failure or a rollout, until a replacement is scheduled and has re-handshaked.",
        );
        let mut evidence = vec![replicas_evidence];
        if let Some(h) = hpa {
            evidence.push(Evidence::new(
                h.origin.child("/spec/minReplicas"),
                format!("minReplicas: {}", h.min_replicas.unwrap_or(1)),
            ));
        }
        let labels: String = u
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != "pod-template-hash")
            .map(|(k, v)| format!("      {k}: \"{v}\"\n"))
            .collect();
        let scale = match u.kind {
            UnitKind::Pod => {
                "Run it from a Deployment (or StatefulSet) instead of a bare Pod, with 2 replicas".to_string()
            }
            UnitKind::Workload(_) => format!(
                "kubectl -n {} scale {} {} --replicas=2 (if the VPN supports two instances: WireGuard peers need \
                 one endpoint, e.g. a LoadBalancer, and the same key; IPsec needs an HA design)",
                u.namespace(),
                u.kind_name().to_ascii_lowercase(),
                u.name()
            ),
        };
        out.push(rule.finding(
            u.subject(),
            format!("VPN gateway {} is a single replica without a PodDisruptionBudget", u.name()),
            detail,
            evidence,
            format!(
                "{scale}, and protect it from voluntary evictions:\napiVersion: policy/v1\nkind: \
                 PodDisruptionBudget\nmetadata:\n  name: {}\n  namespace: {}\nspec:\n  minAvailable: 1\n  \
                 selector:\n    matchLabels:\n{labels}\
                 (with a single replica this blocks drains until someone moves the gateway deliberately).",
                u.name(),
                u.namespace()
            ),
            Confidence::Confirmed,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::testkit::*;
    use netsleuth_model::kubernetes::{EnvVar, HorizontalPodAutoscaler, IntOrString, PodDisruptionBudget};
    use netsleuth_model::{Network, Redaction, Secret};

    fn run(net: &Network, which: usize) -> Vec<Finding> {
        let mut out = Vec::new();
        (RULES[which].check)(&Context { net, now: None }, &RULES[which], &mut out);
        out
    }

    fn wg_container() -> Container {
        let mut c = container("wireguard", "linuxserver/wireguard:1.0.20210914");
        c.ports.push(port(Some("wg"), 51820, "UDP"));
        c
    }

    fn gw(kind: WorkloadKind) -> netsleuth_model::kubernetes::Workload {
        workload(kind, "vpn", "wg-gw", &[("app", "wg-gw")])
            .containers(vec![wg_container()])
            .at("kubernetes/workloads.json", "/items/5")
            .build()
    }

    fn net_with(w: Vec<netsleuth_model::kubernetes::Workload>) -> Network {
        let mut n = Network::default();
        n.kubernetes.workloads = w;
        n
    }

    #[test]
    fn privileged_and_extra_capabilities_are_flagged() {
        let mut w = gw(WorkloadKind::Deployment);
        w.template.containers[0].privileged = true;
        w.template.containers[0].capabilities_add = vec!["NET_ADMIN".into(), "CAP_SYS_MODULE".into()];
        let out = run(&net_with(vec![w]), 0);
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert_eq!(f.rule, "POD-001");
        assert_eq!(f.subject, "k8s/Deployment/vpn/wg-gw");
        assert!(
            f.detail.contains("container wireguard runs privileged: true (NET_ADMIN suffices for WireGuard"),
            "{}",
            f.detail
        );
        assert!(f.detail.contains("adds SYS_MODULE"), "{}", f.detail);
        assert!(!f.detail.contains("adds NET_ADMIN"), "{}", f.detail);
        assert_eq!(
            f.evidence[1].location,
            Location::json(
                "kubernetes/workloads.json",
                "/items/5/spec/template/spec/containers/0/securityContext/privileged"
            )
        );
        assert!(f.fix.contains("kubectl -n vpn patch deployment wg-gw --type strategic"), "{}", f.fix);
        assert!(f.fix.contains("    - name: wireguard\n          securityContext:\n"), "{}", f.fix);
        assert!(f.fix.contains("add: [\"NET_ADMIN\"]") && f.fix.contains("path: /dev/net/tun"), "{}", f.fix);
    }

    #[test]
    fn net_admin_only_and_non_gateways_are_clean() {
        let mut w = gw(WorkloadKind::Deployment);
        w.template.containers[0].capabilities_add = vec!["NET_ADMIN".into(), "NET_RAW".into()];
        let mut web = workload(WorkloadKind::Deployment, "shop", "web", &[("app", "web")]).build();
        web.template.containers[0].privileged = true;
        assert!(run(&net_with(vec![w, web]), 0).is_empty());
    }

    #[test]
    fn host_network_needs_a_reason() {
        let w = workload(WorkloadKind::DaemonSet, "vpn", "ipsec-gw", &[("app", "ipsec")])
            .containers(vec![container("charon", "strongswan:6")])
            .host_network()
            .at("kubernetes/workloads.json", "/items/1")
            .build();
        let out = run(&net_with(vec![w.clone()]), 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rule, "POD-002");
        assert_eq!(out[0].subject, "k8s/DaemonSet/vpn/ipsec-gw");
        assert_eq!(
            out[0].evidence[0].location,
            Location::json("kubernetes/workloads.json", "/items/1/spec/template/spec/hostNetwork")
        );
        let mut reasoned = w;
        reasoned.meta.annotations.insert(HOST_NETWORK_REASON.into(), "routes the pod network to site B".into());
        assert!(run(&net_with(vec![reasoned]), 1).is_empty());
    }

    #[test]
    fn keys_in_config_maps_and_env_are_named_without_values() {
        let mut n = Network::default();
        let mut cm = config_map("vpn", "wg-config", &[("wg0.conf", "<redacted:abc>")]);
        cm.origin = Location::json("kubernetes/configmaps.json", "/items/2");
        n.kubernetes.config_maps.push(cm);
        let mut w = gw(WorkloadKind::Deployment);
        w.template.containers[0].env = vec![
            EnvVar { name: "LOG".into(), value: Some("info".into()), value_from: None },
            EnvVar { name: "WG_PSK".into(), value: Some("<redacted:def>".into()), value_from: None },
        ];
        n.kubernetes.workloads.push(w);
        let secret = Secret { fingerprint: "f00dfeed".into() };
        n.redactions = vec![
            Redaction {
                kind: RedactionKind::WireguardPrivateKey,
                location: Location::json("kubernetes/configmaps.json", "/items/2/data/wg0.conf"),
                secret: secret.clone(),
            },
            Redaction {
                kind: RedactionKind::NamedSecret,
                location: Location::json(
                    "kubernetes/workloads.json",
                    "/items/5/spec/template/spec/containers/0/env/1/value",
                ),
                secret: secret.clone(),
            },
            // Secret data is where it belongs.
            Redaction {
                kind: RedactionKind::KubernetesSecretData,
                location: Location::json("kubernetes/secrets.json", "/items/0/data/key"),
                secret: secret.clone(),
            },
            // Host files are other rules' business.
            Redaction {
                kind: RedactionKind::WireguardPrivateKey,
                location: Location::line("hosts/gw/wireguard/wg0.conf", 2),
                secret,
            },
        ];
        let out = run(&n, 2);
        assert_eq!(out.len(), 2, "{out:#?}");
        let cm = out.iter().find(|f| f.subject == "k8s/ConfigMap/vpn/wg-config").expect("configmap finding");
        assert_eq!(cm.rule, "POD-003");
        assert_eq!(cm.severity, Severity::Critical);
        assert!(cm.detail.contains("a WireGuard private key in data key wg0.conf"), "{}", cm.detail);
        assert_eq!(cm.evidence[0].location, Location::json("kubernetes/configmaps.json", "/items/2/data/wg0.conf"));
        let dep = out.iter().find(|f| f.subject == "k8s/Deployment/vpn/wg-gw").expect("deployment finding");
        assert!(dep.detail.contains("env WG_PSK of container wireguard (literal value)"), "{}", dep.detail);
        for f in &out {
            let all = format!("{f:?}");
            assert!(!all.contains("f00dfeed") && !all.contains("<redacted"), "no fingerprints or values: {all}");
            assert!(f.fix.contains("ExternalSecret"));
        }
    }

    #[test]
    fn readiness_probe_missing_and_present() {
        let w = gw(WorkloadKind::Deployment);
        let out = run(&net_with(vec![w.clone()]), 3);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rule, "POD-004");
        assert!(out[0].detail.contains("container wireguard has no readinessProbe"), "{}", out[0].detail);
        assert_eq!(
            out[0].evidence[0].location,
            Location::json("kubernetes/workloads.json", "/items/5/spec/template/spec/containers/0")
        );
        assert!(out[0].fix.contains("wg\", \"show\""), "{}", out[0].fix);
        let mut ok = w;
        ok.template.containers[0].readiness_probe = true;
        // A sidecar without a probe does not matter: only the VPN container does.
        ok.template.containers.push(container("exporter", "prom/node-exporter"));
        ok.template.containers[1].pointer = "/spec/template/spec/containers/1".into();
        let out = run(&net_with(vec![ok]), 3);
        assert!(out.is_empty(), "{out:#?}");
    }

    #[test]
    fn single_replica_without_pdb() {
        let w = gw(WorkloadKind::Deployment);
        let out = run(&net_with(vec![w.clone()]), 4);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rule, "POD-005");
        assert!(out[0].detail.contains("replicas unset (defaults to 1)"), "{}", out[0].detail);
        assert!(
            out[0].fix.contains("kind: PodDisruptionBudget") && out[0].fix.contains("app: \"wg-gw\""),
            "{}",
            out[0].fix
        );

        // A PDB selecting the template labels clears it.
        let mut n = net_with(vec![w.clone()]);
        n.kubernetes.pdbs.push(PodDisruptionBudget {
            meta: meta("vpn", "wg-gw", &[]),
            selector: selector(&[("app", "wg-gw")]),
            min_available: Some(IntOrString::Int(1)),
            max_unavailable: None,
            origin: Location::json("kubernetes/pdbs.json", "/items/0"),
        });
        assert!(run(&n, 4).is_empty());

        // An HPA with minReplicas 2 clears it; with 1 it does not.
        let mut n = net_with(vec![w.clone()]);
        n.kubernetes.hpas.push(HorizontalPodAutoscaler {
            meta: meta("vpn", "wg-gw", &[]),
            target: ("Deployment".into(), "wg-gw".into()),
            min_replicas: Some(2),
            max_replicas: Some(4),
            origin: Location::json("kubernetes/hpas.json", "/items/0"),
        });
        assert!(run(&n, 4).is_empty());
        n.kubernetes.hpas[0].min_replicas = Some(1);
        let out = run(&n, 4);
        assert!(out[0].detail.contains("minReplicas 1"), "{}", out[0].detail);

        // An explicit replicas: 1 is cited.
        let one = workload(WorkloadKind::StatefulSet, "vpn", "sw", &[("app", "sw")])
            .containers(vec![container("charon", "strongswan:6")])
            .replicas(1)
            .at("kubernetes/workloads.json", "/items/8")
            .build();
        let out = run(&net_with(vec![one]), 4);
        assert_eq!(out[0].subject, "k8s/StatefulSet/vpn/sw");
        assert!(out[0].detail.contains("with replicas 1,"), "{}", out[0].detail);
        assert_eq!(out[0].evidence[0].location, Location::json("kubernetes/workloads.json", "/items/8/spec/replicas"));

        // Two replicas, or a DaemonSet: fine.
        let mut two = w;
        two.replicas = Some(2);
        assert!(run(&net_with(vec![two, gw(WorkloadKind::DaemonSet)]), 4).is_empty());
    }
}
