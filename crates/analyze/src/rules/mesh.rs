//! Mesh-layer rules (Istio): sidecars that capture traffic meant for VPN ranges
//! (MESH-001) and STRICT mTLS facing clients without a sidecar (MESH-002).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::rc::Rc;

use ipnet::IpNet;
use netsleuth_model::kubernetes::{
    Cluster, IstioSidecar, NetworkPolicy, NetworkPolicyPeer, PeerAuthentication, PolicyType,
};
use netsleuth_model::{Confidence, Evidence, Finding, Layer, Location, Network, Severity};

use crate::rule::{Context, Rule};
use crate::support::cidrs::parse_cidr;
use crate::support::{
    list_some, node_addresses, plural, pod_cidrs, pod_owner, pod_units, pointer_token, remote_site_ranges,
    service_cidrs, unit_group_subject, CidrSource, Decision, Labels, Peer, PolicyIndex, Traffic, Unit, UnitKind,
};

pub(crate) const RULES: &[Rule] = &[
    Rule {
        id: "MESH-001",
        layer: Layer::Mesh,
        severity: Severity::High,
        title: "Istio sidecar captures traffic to VPN/remote ranges",
        rationale: "An Istio sidecar redirects all outbound TCP of its pod to Envoy unless the \
                    destination is excluded (annotation traffic.sidecar.istio.io/excludeOutboundIPRanges) \
                    or not included (includeOutboundIPRanges, default '*'). Traffic to ranges behind a \
                    VPN (on-prem, another cluster) is not known to the mesh: with outboundTrafficPolicy \
                    REGISTRY_ONLY (mesh config or a Sidecar) and no ServiceEntry for the range, Envoy sends \
                    it to BlackHoleCluster and clients see 502s or resets while the tunnel is healthy \
                    (FAILURES #29). With ALLOW_ANY it goes through PassthroughCluster, which works for \
                    plain TCP but adds protocol sniffing, breaks server-first protocols and hides the \
                    traffic from mesh policy.",
        references: &[
            "istio/istio#28994",
            "https://istio.io/latest/docs/reference/config/annotations/#SidecarTrafficExcludeOutboundIPRanges",
            "https://istio.io/latest/docs/tasks/traffic-management/egress/egress-control/",
            "https://istio.io/latest/docs/reference/config/networking/service-entry/",
        ],
        example: "k8s/Deployment/shop/api: the istio-proxy sidecar captures traffic to 192.168.50.0/24 \
                  (WireGuard AllowedIPs of host gw-1 wg0 peer AbCd1234…); outboundTrafficPolicy is \
                  REGISTRY_ONLY (Sidecar shop/default) and no ServiceEntry covers it: BlackHoleCluster, 502",
        check: check_sidecar_capture,
    },
    Rule {
        id: "MESH-002",
        layer: Layer::Mesh,
        severity: Severity::High,
        title: "STRICT mTLS on pods that clients without a sidecar can reach",
        rationale: "PeerAuthentication STRICT makes the server's sidecar accept only Istio mTLS. A \
                    client without a sidecar (a namespace without injection, a job opted out with \
                    sidecar.istio.io/inject=false) connects in plaintext and Envoy rejects it: the \
                    client sees 'connection reset by peer' or an empty reply, Envoy logs \
                    NR filter_chain_not_found (FAILURES #28). STRICT can be set mesh-wide (root \
                    namespace istio-system), per namespace, or per workload (selector), and per port. \
                    The rule looks for non-injected pods outside kube-system that NetworkPolicy allows \
                    to reach the STRICT pods.",
        references: &[
            "istio/istio#27169",
            "https://istio.io/latest/docs/reference/config/security/peer_authentication/",
            "https://istio.io/latest/docs/tasks/security/authentication/mtls-migration/",
        ],
        example: "k8s/PeerAuthentication/istio-system/default: STRICT mTLS (mesh-wide) applies to 40 \
                  pods with sidecars; 6 pods without a sidecar (batch/report-28123-x, legacy/cron-1 and 4 \
                  more) are allowed by NetworkPolicy to reach them and will be reset",
        check: check_strict_mtls,
    },
];

/// Istio's root namespace (meshConfig.rootNamespace default).
const ROOT_NS: &str = "istio-system";
const EXCLUDE_ANN: &str = "traffic.sidecar.istio.io/excludeOutboundIPRanges";
const INCLUDE_ANN: &str = "traffic.sidecar.istio.io/includeOutboundIPRanges";

/// Whether and why a unit has (or will have) an Istio sidecar.
fn injection(u: &Unit<'_>, ns_labels: Option<&Labels>) -> Option<(String, Confidence)> {
    if u.spec.host_network {
        return None;
    }
    if u.annotations.contains_key("sidecar.istio.io/status") {
        return Some(("annotation sidecar.istio.io/status".into(), Confidence::Likely));
    }
    if u.spec.all_containers().any(|c| c.name == "istio-proxy") {
        return Some(("container istio-proxy".into(), Confidence::Likely));
    }
    let opted_out = |m: &Labels| m.get("sidecar.istio.io/inject").is_some_and(|v| v == "false");
    if opted_out(u.annotations) || opted_out(u.labels) {
        return None;
    }
    let l = ns_labels?;
    let reason = match (l.get("istio-injection").map(String::as_str), l.get("istio.io/rev")) {
        (Some("enabled"), _) => "namespace label istio-injection=enabled".to_string(),
        (Some("disabled"), _) => return None,
        (_, Some(rev)) => format!("namespace label istio.io/rev={rev}"),
        _ => return None,
    };
    match u.kind {
        // A template is injected when its pods are created.
        UnitKind::Workload(_) => Some((reason, Confidence::Likely)),
        // A pod without istio-proxy was created before injection was enabled: it gets one
        // at its next restart.
        UnitKind::Pod => {
            Some((format!("{reason} (no sidecar yet: injected at the next restart)"), Confidence::Possible))
        }
    }
}

/// Whether a unit has a sidecar right now (templates: will have one).
fn has_sidecar(u: &Unit<'_>, ns_labels: Option<&Labels>) -> bool {
    match injection(u, ns_labels) {
        Some((_, Confidence::Possible)) | None => false,
        Some(_) => true,
    }
}

fn ns_label_map(k: &Cluster) -> HashMap<&str, &Labels> {
    k.namespaces.iter().map(|n| (n.meta.name.as_str(), &n.meta.labels)).collect()
}

// ---------------------------------------------------------------------------------------
// MESH-001

/// Capture settings of a sidecar: include/exclude lists (annotation, else istio-init args).
struct Capture {
    /// None = `*` (everything).
    include: Option<Vec<IpNet>>,
    exclude: Vec<IpNet>,
    include_text: String,
    exclude_text: String,
    exclude_origin: Option<Location>,
}

fn parse_ranges(v: &str) -> Option<Vec<IpNet>> {
    let v = v.trim();
    if v == "*" {
        return None;
    }
    Some(v.split(',').filter_map(parse_cidr).collect())
}

/// Value following `-i`/`-x` (or the long forms) in istio-init's arguments.
fn init_arg<'a>(args: &'a [String], short: &str, long: &str) -> Option<&'a str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == short || a == long {
            return it.next().map(String::as_str);
        }
        if let Some(v) = a.strip_prefix(long).and_then(|r| r.strip_prefix('=')) {
            return Some(v);
        }
    }
    None
}

fn capture(u: &Unit<'_>) -> Capture {
    let init = u.spec.init_containers.iter().find(|c| c.name == "istio-init");
    let from_init = |short: &str, long: &str| -> Option<String> {
        init.and_then(|c| {
            let all: Vec<String> = c.command.iter().chain(c.args.iter()).cloned().collect();
            init_arg(&all, short, long).map(str::to_string)
        })
    };
    let include_text = u
        .annotation(INCLUDE_ANN)
        .map(str::to_string)
        .or_else(|| from_init("-i", "--istio-service-cidr"))
        .unwrap_or_else(|| "*".to_string());
    let exclude_ann = u.annotation(EXCLUDE_ANN);
    let exclude_text =
        exclude_ann.map(str::to_string).or_else(|| from_init("-x", "--istio-service-exclude-cidr")).unwrap_or_default();
    let exclude_origin =
        exclude_ann.map(|_| u.origin.child(&format!("{}/{}", u.annotations_pointer(), pointer_token(EXCLUDE_ANN))));
    Capture {
        include: parse_ranges(&include_text),
        exclude: parse_ranges(&exclude_text).unwrap_or_default(),
        include_text,
        exclude_text,
        exclude_origin,
    }
}

/// Whether the sidecar captures (part of) `r`.
fn captures(c: &Capture, r: &IpNet) -> bool {
    if c.exclude.iter().any(|e| e.contains(r)) {
        return false;
    }
    match &c.include {
        None => true,
        Some(list) => list.iter().any(|i| crate::support::overlaps(i, r)),
    }
}

/// VPN remote ranges outside the cluster: not default routes, not touching the cluster's
/// pod/service ranges (inside them it is in-cluster tunnelling; containing them is an
/// address-plan problem OVL-002 reports, and excluding such a range from capture would
/// take pod traffic out of the mesh), not a node's own address. Ranges inside another
/// listed range are folded into it. One entry per range.
fn external_remote_ranges(net: &Network) -> Vec<CidrSource> {
    let remotes = remote_site_ranges(net);
    if remotes.is_empty() {
        return remotes;
    }
    let cluster: Vec<IpNet> = pod_cidrs(net).into_iter().chain(service_cidrs(net)).map(|s| s.cidr).collect();
    let node_ips = node_addresses(net);
    let mut seen = BTreeSet::new();
    let kept: Vec<CidrSource> = remotes
        .into_iter()
        .filter(|r| {
            r.cidr.prefix_len() > 0
                && !cluster.iter().any(|c| crate::support::overlaps(c, &r.cidr))
                && !(r.cidr.prefix_len() == r.cidr.max_prefix_len() && node_ips.contains(&r.cidr.addr()))
                && seen.insert(r.cidr)
        })
        .collect();
    let all: Vec<IpNet> = kept.iter().map(|r| r.cidr).collect();
    kept.into_iter().filter(|r| !all.iter().any(|o| *o != r.cidr && o.contains(&r.cidr))).collect()
}

/// Mesh-wide outboundTrafficPolicy mode from the `istio` ConfigMap of the root namespace.
fn mesh_outbound_mode(k: &Cluster) -> Option<(String, Location)> {
    let cm = k.config_maps.iter().find(|c| c.meta.namespace == ROOT_NS && c.meta.name == "istio")?;
    let text = cm.data.get("mesh")?;
    let mut in_block = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("outboundTrafficPolicy:") {
            if rest.contains("REGISTRY_ONLY") || rest.contains("ALLOW_ANY") {
                let mode = if rest.contains("REGISTRY_ONLY") { "REGISTRY_ONLY" } else { "ALLOW_ANY" };
                return Some((mode.to_string(), cm.origin.child("/data/mesh")));
            }
            in_block = Some(indent);
            continue;
        }
        if let Some(block_indent) = in_block {
            if !t.is_empty() && indent <= block_indent {
                in_block = None;
            } else if let Some(m) = t.strip_prefix("mode:") {
                return Some((m.trim().trim_matches('"').to_string(), cm.origin.child("/data/mesh")));
            }
        }
    }
    None
}

/// The Sidecar that applies to a pod: workload-selected in its namespace, else the
/// namespace's default, else the root namespace's default.
fn applicable_sidecar<'a>(sidecars: &'a [IstioSidecar], ns: &str, labels: &Labels) -> Option<&'a IstioSidecar> {
    let selected =
        |s: &&IstioSidecar| s.workload_selector.as_ref().is_some_and(|sel| !sel.is_empty() && sel.matches(labels));
    let default = |s: &&IstioSidecar| s.workload_selector.as_ref().is_none_or(|sel| sel.is_empty());
    sidecars
        .iter()
        .filter(|s| s.meta.namespace == ns)
        .find(selected)
        .or_else(|| sidecars.iter().filter(|s| s.meta.namespace == ns).find(default))
        .or_else(|| sidecars.iter().filter(|s| s.meta.namespace == ROOT_NS).find(default))
}

fn check_sidecar_capture(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    let k = &ctx.net.kubernetes;
    let remotes = external_remote_ranges(ctx.net);
    if remotes.is_empty() {
        return;
    }
    let ns_labels = ns_label_map(k);
    let mesh_mode = mesh_outbound_mode(k);
    let entries: Vec<(IpNet, &netsleuth_model::kubernetes::ServiceEntry)> = k
        .service_entries
        .iter()
        .flat_map(|se| se.addresses.iter().filter_map(|a| parse_cidr(a)).map(move |a| (a, se)))
        .collect();
    let mut seen = BTreeSet::new();
    for u in pod_units(k) {
        if !u.is_active() {
            continue;
        }
        let Some((why, confidence)) = injection(&u, ns_labels.get(u.namespace()).copied()) else {
            continue;
        };
        let subject = unit_group_subject(&u);
        if !seen.insert(subject.clone()) {
            continue;
        }
        let cap = capture(&u);
        let captured: Vec<&CidrSource> = remotes.iter().filter(|r| captures(&cap, &r.cidr)).collect();
        if captured.is_empty() {
            continue;
        }
        let sidecar = applicable_sidecar(&k.sidecars, u.namespace(), u.labels);
        let (mode, mode_from, mode_origin) =
            match sidecar.and_then(|s| s.outbound_traffic_policy.clone().map(|m| (m, s))) {
                Some((m, s)) => (m, format!("Sidecar {}/{}", s.meta.namespace, s.meta.name), Some(s.origin.clone())),
                None => match &mesh_mode {
                    Some((m, o)) => (m.clone(), format!("mesh config ConfigMap {ROOT_NS}/istio"), Some(o.clone())),
                    None => ("ALLOW_ANY".to_string(), "Istio default".to_string(), None),
                },
            };
        let registry_only = mode.eq_ignore_ascii_case("REGISTRY_ONLY");
        let uncovered: Vec<&&CidrSource> =
            captured.iter().filter(|r| !entries.iter().any(|(a, _)| a.contains(&r.cidr))).collect();
        let ranges: Vec<String> = captured.iter().map(|r| r.to_string()).collect();
        let mut detail = format!(
            "{} runs an Istio sidecar ({why}). Its outbound capture (includeOutboundIPRanges '{}', \
             excludeOutboundIPRanges '{}') redirects traffic to {} behind a VPN through Envoy: {}.",
            subject.trim_start_matches("k8s/"),
            cap.include_text,
            cap.exclude_text,
            plural(captured.len(), "range"),
            list_some(&ranges, 4)
        );
        let covering: Vec<&netsleuth_model::kubernetes::ServiceEntry> =
            entries.iter().filter(|(a, _)| captured.iter().any(|r| a.contains(&r.cidr))).map(|(_, se)| *se).collect();
        let severity = if registry_only && !uncovered.is_empty() {
            let names: Vec<String> = uncovered.iter().map(|r| r.cidr.to_string()).collect();
            detail.push_str(&format!(
                " outboundTrafficPolicy is REGISTRY_ONLY ({mode_from}) and no ServiceEntry covers {}: \
                 Envoy routes these connections to BlackHoleCluster (HTTP 502, or a reset for TCP) even \
                 though the tunnel is up.",
                list_some(&names, 4)
            ));
            Severity::High
        } else if registry_only {
            let names: Vec<String> =
                covering.iter().map(|se| format!("{}/{}", se.meta.namespace, se.meta.name)).collect();
            detail.push_str(&format!(
                " outboundTrafficPolicy is REGISTRY_ONLY ({mode_from}) and ServiceEntry {} covers them, so Envoy \
                 proxies these connections instead of dropping them: plain TCP works, but protocol sniffing, \
                 server-first protocols and the extra hop sit between the pod and the tunnel.",
                list_some(&names, 3)
            ));
            Severity::Medium
        } else {
            detail.push_str(&format!(
                " outboundTrafficPolicy is {mode} ({mode_from}): Envoy passes these connections through \
                 PassthroughCluster, which works for plain TCP but adds protocol sniffing, breaks server-first \
                 protocols and puts the mesh between the pod and the tunnel."
            ));
            Severity::Medium
        };
        let mut evidence = vec![match &cap.exclude_origin {
            Some(o) => Evidence::new(o.clone(), format!("{EXCLUDE_ANN}: \"{}\"", cap.exclude_text)),
            None => Evidence::new(u.origin.clone(), format!("sidecar: {why}; no {EXCLUDE_ANN} annotation")),
        }];
        for r in captured.iter().take(4) {
            evidence.push(Evidence::new(r.origin.clone(), format!("{} {} ({})", r.kind.as_str(), r.cidr, r.from)));
        }
        if let Some(o) = mode_origin.filter(|_| registry_only) {
            evidence.push(Evidence::new(o, format!("outboundTrafficPolicy mode: {mode}")));
        }
        for se in covering.iter().take(2) {
            evidence.push(Evidence::new(
                se.origin.child("/spec/addresses"),
                format!("ServiceEntry {}/{} addresses: {}", se.meta.namespace, se.meta.name, se.addresses.join(", ")),
            ));
        }
        let short_name = subject.rsplit('/').next().unwrap_or("").to_string();
        let mut f = rule.finding(
            subject,
            format!(
                "Istio sidecar of {} captures traffic to VPN ranges ({})",
                short_name,
                list_some(&captured.iter().map(|r| r.cidr.to_string()).collect::<Vec<_>>(), 3)
            ),
            detail,
            evidence,
            capture_fix(&u, &cap, &captured),
            confidence,
        );
        f.severity = severity;
        out.push(f);
    }
}

fn capture_fix(u: &Unit<'_>, cap: &Capture, captured: &[&CidrSource]) -> String {
    let mut ranges: Vec<String> = cap.exclude.iter().map(ToString::to_string).collect();
    for r in captured {
        let s = r.cidr.to_string();
        if !ranges.contains(&s) {
            ranges.push(s);
        }
    }
    let value = ranges.join(",");
    let target = match (u.pod, u.pod.and_then(pod_owner)) {
        (Some(_), Some((kind, name))) if kind != "ReplicaSet" && kind != "Job" => {
            format!(
                "kubectl -n {} patch {} {name} --type merge -p '{{\"spec\":{{\"template\":{{\"metadata\":{{\"annotations\":{{\"{EXCLUDE_ANN}\":\"{value}\"}}}}}}}}}}'",
                u.namespace(),
                kind.to_ascii_lowercase()
            )
        }
        (None, _) => format!(
            "kubectl -n {} patch {} {} --type merge -p '{{\"spec\":{{\"template\":{{\"metadata\":{{\"annotations\":{{\"{EXCLUDE_ANN}\":\"{value}\"}}}}}}}}}}'",
            u.namespace(),
            u.kind_name().to_ascii_lowercase(),
            u.name()
        ),
        _ => format!("set the pod annotation {EXCLUDE_ANN}: \"{value}\" in the manifest that creates it and recreate the pod"),
    };
    let addrs: Vec<String> = captured.iter().map(|r| format!("\"{}\"", r.cidr)).collect();
    format!(
        "Exclude the VPN ranges from sidecar capture (the pods restart with the new annotation):\n{target}\n\
         Or, to keep the traffic in the mesh, declare the ranges (one port entry per port used):\n\
         apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: vpn-remote-ranges\n  namespace: {}\n\
         spec:\n  hosts: [\"vpn-remote.internal\"]\n  addresses: [{}]\n  ports:\n    - number: 443\n      name: tcp-443\n      \
         protocol: TCP\n  location: MESH_EXTERNAL\n  resolution: NONE",
        u.namespace(),
        addrs.join(", ")
    )
}

// ---------------------------------------------------------------------------------------
// MESH-002

/// On which ports a PeerAuthentication decision is STRICT.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StrictPorts {
    /// Mode STRICT, with port-level exceptions (PERMISSIVE/DISABLE).
    AllExcept(BTreeSet<u16>),
    /// Mode not STRICT, but these ports are STRICT at port level.
    Only(BTreeSet<u16>),
}

impl StrictPorts {
    /// The flows to test for a server: its declared TCP ports that are STRICT, or "some
    /// port" (None) when it declares none.
    fn flows(&self, declared: &BTreeSet<u16>) -> Vec<Option<u16>> {
        match (self, declared.is_empty()) {
            (StrictPorts::AllExcept(_), true) => vec![None],
            (StrictPorts::Only(set), true) => set.iter().map(|p| Some(*p)).collect(),
            (StrictPorts::AllExcept(ex), false) => {
                declared.iter().filter(|p| !ex.contains(p)).map(|p| Some(*p)).collect()
            }
            (StrictPorts::Only(set), false) => declared.iter().filter(|p| set.contains(p)).map(|p| Some(*p)).collect(),
        }
    }
}

/// The mTLS decision for a pod: the PeerAuthentication that sets it, its scope, and the
/// ports where it is STRICT.
struct MtlsDecision<'a> {
    pa: &'a PeerAuthentication,
    scope: &'static str,
    strict: StrictPorts,
}

fn mode_is(m: &str, want: &str) -> bool {
    m.eq_ignore_ascii_case(want)
}

/// Istio's precedence: a workload-selected policy over the namespace's over the mesh's
/// (root namespace); UNSET inherits; port-level settings come from the workload policy.
fn effective_mtls<'a>(pas: &'a [PeerAuthentication], ns: &str, labels: &Labels) -> Option<MtlsDecision<'a>> {
    let set = |p: &&PeerAuthentication| p.mtls_mode.as_deref().is_some_and(|m| !mode_is(m, "UNSET"));
    let no_selector = |p: &&PeerAuthentication| p.selector.as_ref().is_none_or(|s| s.is_empty());
    let workload = pas
        .iter()
        .find(|p| p.meta.namespace == ns && p.selector.as_ref().is_some_and(|s| !s.is_empty() && s.matches(labels)));
    let ns_wide = pas.iter().filter(|p| p.meta.namespace == ns).filter(no_selector).find(set);
    let mesh = pas.iter().filter(|p| p.meta.namespace == ROOT_NS).filter(no_selector).find(set);
    let decided = match (workload.filter(set), ns_wide, mesh) {
        (Some(w), _, _) => Some((w, "workload selector")),
        // A selector-less policy in the root namespace is the mesh-wide one.
        (None, Some(n), _) if ns == ROOT_NS => Some((n, "mesh-wide")),
        (None, Some(n), _) => Some((n, "namespace-wide")),
        (None, None, Some(m)) => Some((m, "mesh-wide")),
        (None, None, None) => None,
    };
    let levels = workload.map(|w| &w.port_levels);
    let ports_with = |strict: bool| -> BTreeSet<u16> {
        levels
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(|(_, m)| !mode_is(m, "UNSET") && mode_is(m, "STRICT") == strict)
            .map(|(p, _)| *p)
            .collect()
    };
    match decided {
        Some((pa, scope)) if pa.mtls_mode.as_deref().is_some_and(|m| mode_is(m, "STRICT")) => {
            Some(MtlsDecision { pa, scope, strict: StrictPorts::AllExcept(ports_with(false)) })
        }
        _ => {
            let only = ports_with(true);
            let w = workload?;
            (!only.is_empty()).then_some(MtlsDecision {
                pa: w,
                scope: "workload port-level",
                strict: StrictPorts::Only(only),
            })
        }
    }
}

/// Declared TCP ports of the application containers (not the sidecar's own).
fn app_tcp_ports(u: &Unit<'_>) -> BTreeSet<u16> {
    u.spec
        .containers
        .iter()
        .filter(|c| c.name != "istio-proxy")
        .flat_map(|c| c.ports.iter())
        .filter(|p| p.protocol.is_empty() || p.protocol.eq_ignore_ascii_case("TCP"))
        .map(|p| p.container_port)
        .collect()
}

fn unit_display(u: &Unit<'_>) -> String {
    match u.pod {
        Some(_) => format!("{}/{}", u.namespace(), u.name()),
        None => format!("{}/{} ({} template)", u.namespace(), u.name(), u.kind_name()),
    }
}

/// Servers of one label class under one PeerAuthentication, with the flows to test.
struct ServerClass<'a> {
    members: Vec<Unit<'a>>,
    flows: Vec<Option<u16>>,
}

/// Servers under one PeerAuthentication, by namespace and labels.
type ServersByPa<'a> = BTreeMap<(String, String), (MtlsDecision<'a>, HashMap<(&'a str, &'a Labels), ServerClass<'a>>)>;

struct ClientClass<'a> {
    members: Vec<Unit<'a>>,
    /// IPs of all pods of the class (for ipBlock peers).
    ips: Vec<IpAddr>,
    /// Id of the set of egress policies selecting the class: egress depends on the client
    /// only through that set (named ports and ipBlocks look at the destination).
    egress_set: usize,
    egress: Vec<&'a NetworkPolicy>,
}

impl<'a> ClientClass<'a> {
    fn first(&self) -> Option<&Unit<'a>> {
        self.members.first()
    }
}

/// Finds the client classes an ingress rule set could admit without testing every
/// client: by namespace for selector peers, by address for ipBlock peers.
struct ClientFinder<'a, 'b> {
    by_ns: BTreeMap<&'a str, Vec<usize>>,
    /// Client pod IPs, sorted, with their class.
    ips: Vec<(IpAddr, usize)>,
    classes: &'b [ClientClass<'a>],
    idx: &'b PolicyIndex<'a>,
    /// Per class, the last round that listed it (dedup without sorting).
    seen: Vec<u32>,
    round: u32,
    /// Classes matched by a selector peer, by the peer's content.
    cache: HashMap<String, Rc<Vec<usize>>>,
}

impl<'a, 'b> ClientFinder<'a, 'b> {
    fn new(classes: &'b [ClientClass<'a>], idx: &'b PolicyIndex<'a>) -> ClientFinder<'a, 'b> {
        let mut by_ns: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut ips = Vec::new();
        for (i, c) in classes.iter().enumerate() {
            if let Some(u) = c.first() {
                by_ns.entry(u.namespace()).or_default().push(i);
            }
            ips.extend(c.ips.iter().map(|a| (*a, i)));
        }
        ips.sort();
        ClientFinder { by_ns, ips, classes, idx, seen: vec![0; classes.len()], round: 0, cache: HashMap::new() }
    }

    fn push(&mut self, i: usize, out: &mut Vec<usize>) {
        if let Some(s) = self.seen.get_mut(i) {
            if *s != self.round {
                *s = self.round;
                out.push(i);
            }
        }
    }

    /// Client classes matched by a selector peer (`own_ns`: the policy's namespace for a
    /// podSelector-only peer).
    fn selector_matches(&self, peer: &NetworkPolicyPeer, own_ns: &str) -> Vec<usize> {
        let namespaces: Vec<&str> = match &peer.namespace_selector {
            None if peer.pod_selector.is_some() => vec![own_ns],
            None => Vec::new(),
            Some(sel) => self.by_ns.keys().copied().filter(|ns| sel.matches(&self.idx.namespace_labels(ns))).collect(),
        };
        let mut out = Vec::new();
        for ns in namespaces {
            let Some(list) = self.by_ns.get(ns) else { continue };
            out.extend(list.iter().copied().filter(|i| {
                peer.pod_selector.as_ref().is_none_or(|ps| {
                    self.classes.get(*i).and_then(ClientClass::first).is_some_and(|u| ps.matches(u.labels))
                })
            }));
        }
        out
    }

    /// Fills `out` with the client classes some rule of these ingress policies could
    /// admit (ports aside). Returns false when every client qualifies (the server is not
    /// isolated, or a rule has no peers).
    fn ingress_candidates(&mut self, selecting: &[&NetworkPolicy], out: &mut Vec<usize>) -> bool {
        out.clear();
        if selecting.is_empty() || selecting.iter().any(|p| p.ingress.iter().any(|r| r.peers.is_empty())) {
            return false;
        }
        self.round = self.round.wrapping_add(1);
        if self.round == 0 {
            self.seen.iter_mut().for_each(|s| *s = 0);
            self.round = 1;
        }
        for p in selecting {
            for r in &p.ingress {
                for peer in &r.peers {
                    if let Some(b) = &peer.ip_block {
                        let lo = self.ips.partition_point(|(a, _)| *a < b.cidr.network());
                        let hi = self.ips.partition_point(|(a, _)| *a <= b.cidr.broadcast());
                        let hits: Vec<usize> = self
                            .ips
                            .get(lo..hi)
                            .unwrap_or(&[])
                            .iter()
                            .filter(|(a, _)| !b.except.iter().any(|e| e.contains(a)))
                            .map(|(_, i)| *i)
                            .collect();
                        for i in hits {
                            self.push(i, out);
                        }
                        continue;
                    }
                    // Equal peers (same selectors, same namespace where it matters) admit
                    // the same clients: policies repeat them a lot, so cache by content.
                    let own_ns = if peer.namespace_selector.is_none() { p.meta.namespace.as_str() } else { "" };
                    let key = format!("{own_ns}|{:?}|{:?}", peer.namespace_selector, peer.pod_selector);
                    let hits = match self.cache.get(&key) {
                        Some(h) => Rc::clone(h),
                        None => {
                            let h = Rc::new(self.selector_matches(peer, own_ns));
                            self.cache.insert(key, Rc::clone(&h));
                            h
                        }
                    };
                    for &i in hits.iter() {
                        self.push(i, out);
                    }
                }
            }
        }
        true
    }
}

fn check_strict_mtls(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    let k = &ctx.net.kubernetes;
    let any_strict = k.peer_authentications.iter().any(|p| {
        p.mtls_mode.as_deref().is_some_and(|m| mode_is(m, "STRICT"))
            || p.port_levels.values().any(|m| mode_is(m, "STRICT"))
    });
    if !any_strict {
        return;
    }
    let ns_labels = ns_label_map(k);
    let idx = PolicyIndex::new(k);

    // Servers (with sidecar, STRICT) grouped per PeerAuthentication and label class;
    // clients (no sidecar, outside kube-system and the Istio root namespace) per class.
    let mut servers: ServersByPa<'_> = BTreeMap::new();
    let mut clients: HashMap<(&str, &Labels), ClientClass<'_>> = HashMap::new();
    let mut egress_sets: HashMap<Vec<*const NetworkPolicy>, usize> = HashMap::new();
    for u in pod_units(k) {
        if !u.is_active() {
            continue;
        }
        let nsl = ns_labels.get(u.namespace()).copied();
        if has_sidecar(&u, nsl) {
            let Some(d) = effective_mtls(&k.peer_authentications, u.namespace(), u.labels) else { continue };
            let flows = d.strict.flows(&app_tcp_ports(&u));
            if flows.is_empty() {
                continue;
            }
            let key = (d.pa.meta.namespace.clone(), d.pa.meta.name.clone());
            let entry = servers.entry(key).or_insert_with(|| (d, HashMap::new()));
            entry
                .1
                .entry((u.namespace(), u.labels))
                .or_insert_with(|| ServerClass { members: Vec::new(), flows })
                .members
                .push(u);
        } else if !u.spec.host_network && u.namespace() != "kube-system" && u.namespace() != ROOT_NS {
            let c = clients.entry((u.namespace(), u.labels)).or_insert_with(|| {
                let egress = idx.selecting(u.namespace(), u.labels, PolicyType::Egress);
                let key: Vec<*const NetworkPolicy> = egress.iter().map(|p| *p as *const NetworkPolicy).collect();
                let next = egress_sets.len();
                let egress_set = *egress_sets.entry(key).or_insert(next);
                ClientClass { members: Vec::new(), ips: Vec::new(), egress_set, egress }
            });
            c.members.push(u);
            c.ips.extend(u.pod.iter().flat_map(|p| p.pod_ips.iter().copied()));
        }
    }
    if clients.is_empty() {
        return;
    }
    let mut client_list: Vec<ClientClass<'_>> = clients.into_values().collect();
    client_list.sort_by_cached_key(|c| c.first().map(|u| (u.namespace().to_string(), u.name().to_string())));
    let mut finder = ClientFinder::new(&client_list, &idx);
    // Egress decisions per (egress set) for the server and flow being tested; the stamp
    // says which (server, flow) the cached value belongs to.
    let mut memo: Vec<(u64, Decision<'_>)> = vec![(0, Decision::Denied); egress_sets.len()];
    let mut stamp: u64 = 0;
    let mut candidates: Vec<usize> = Vec::new();

    for ((pa_ns, pa_name), (decision, classes)) in servers {
        let mut server_list: Vec<&ServerClass<'_>> = classes.values().collect();
        server_list
            .sort_by_cached_key(|c| c.members.first().map(|u| (u.namespace().to_string(), u.name().to_string())));
        let mut reached = vec![false; client_list.len()];
        let mut n_reached = 0usize;
        let mut explicit: Option<(&NetworkPolicy, String)> = None;
        for s in &server_list {
            if n_reached == client_list.len() {
                break;
            }
            let Some(server) = s.members.first() else { continue };
            let sref = server.pod_ref();
            let ingress = idx.selecting(server.namespace(), server.labels, PolicyType::Ingress);
            // Only clients some ingress rule could admit need the full check.
            let all = !finder.ingress_candidates(&ingress, &mut candidates);
            if all {
                candidates.clear();
                candidates.extend(0..client_list.len());
            }
            let base = stamp + 1;
            stamp += s.flows.len() as u64 + 1;
            for &ci in &candidates {
                let Some(c) = client_list.get(ci) else { continue };
                if reached.get(ci).copied().unwrap_or(true) {
                    continue;
                }
                let Some(cu) = c.first() else { continue };
                let cref = cu.pod_ref();
                let mut hit = None;
                for (fi, port) in s.flows.iter().enumerate() {
                    let t = Traffic { protocol: "TCP", port: *port };
                    let want = base + fi as u64;
                    let eg = match memo.get(c.egress_set) {
                        Some((st, d)) if *st == want => *d,
                        _ => {
                            let d = idx.decide(&c.egress, PolicyType::Egress, &cref, &Peer::Pod(sref), t);
                            if let Some(slot) = memo.get_mut(c.egress_set) {
                                *slot = (want, d);
                            }
                            d
                        }
                    };
                    if !eg.is_allowed() {
                        continue;
                    }
                    let ing = idx.decide(&ingress, PolicyType::Ingress, &sref, &Peer::Pod(cref), t);
                    if ing.is_allowed() {
                        hit = Some((eg, ing));
                        break;
                    }
                }
                let Some((eg, ing)) = hit else { continue };
                if let Some(r) = reached.get_mut(ci) {
                    *r = true;
                }
                n_reached += 1;
                if explicit.is_none() {
                    for d in [ing, eg] {
                        if let Decision::Allowed { policy, rule: r } = d {
                            explicit = Some((policy, r.pointer.clone()));
                            break;
                        }
                    }
                }
            }
        }
        if n_reached == 0 {
            continue;
        }
        let mut reaching: Vec<String> = Vec::new();
        let mut example_client: Option<&Unit<'_>> = None;
        for (c, r) in client_list.iter().zip(&reached) {
            if *r {
                reaching.extend(c.members.iter().map(unit_display));
                if example_client.is_none() {
                    example_client = c.first();
                }
            }
        }
        reaching.sort();
        let mut server_names: Vec<String> =
            server_list.iter().flat_map(|s| s.members.iter().map(unit_display)).collect();
        server_names.sort();
        let ports = match &decision.strict {
            StrictPorts::AllExcept(ex) if ex.is_empty() => "on every port".to_string(),
            StrictPorts::AllExcept(ex) => {
                format!("on every port except {}", ex.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
            }
            StrictPorts::Only(set) => {
                format!("on ports {}", set.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
            }
        };
        let mut detail = format!(
            "PeerAuthentication {pa_ns}/{pa_name} ({}) makes mTLS STRICT {ports} for {} with sidecars ({}). \
             {} without a sidecar ({}) may reach them under NetworkPolicy. Their plaintext connections are \
             rejected by the server's Envoy: the client sees 'connection reset by peer' or an empty reply, \
             Envoy logs NR filter_chain_not_found.",
            decision.scope,
            plural(server_names.len(), "pod"),
            list_some(&server_names, 3),
            plural(reaching.len(), "pod"),
            list_some(&reaching, 4)
        );
        let confidence = match &explicit {
            Some((p, _)) => {
                detail.push_str(&format!(
                    " NetworkPolicy {}/{} explicitly allows such a flow, so these clients are meant to talk to them.",
                    p.meta.namespace, p.meta.name
                ));
                Confidence::Likely
            }
            None => {
                detail.push_str(
                    " No NetworkPolicy restricts the flows found (neither side is isolated): the bundle proves \
                     they can connect, not that they do.",
                );
                Confidence::Possible
            }
        };
        let mut evidence = vec![match &decision.strict {
            StrictPorts::Only(set) => Evidence::new(
                decision.pa.origin.child("/spec/portLevelMtls"),
                format!("portLevelMtls: {} STRICT", set.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
            ),
            StrictPorts::AllExcept(_) => Evidence::new(
                decision.pa.origin.child("/spec/mtls"),
                format!("mtls.mode: {}", decision.pa.mtls_mode.as_deref().unwrap_or("UNSET")),
            ),
        }];
        if let Some(u) = example_client {
            evidence.push(Evidence::new(
                u.origin.clone(),
                format!("{} has no istio-proxy container and no sidecar.istio.io/status annotation", unit_display(u)),
            ));
        }
        if let Some((p, pointer)) = &explicit {
            evidence.push(Evidence::new(
                p.origin.child(pointer),
                format!("NetworkPolicy {}/{} allows the flow", p.meta.namespace, p.meta.name),
            ));
        }
        let client_ns: BTreeSet<&str> = reaching.iter().filter_map(|n| n.split_once('/').map(|(ns, _)| ns)).collect();
        let label_cmds: Vec<String> =
            client_ns.iter().map(|ns| format!("kubectl label namespace {ns} istio-injection=enabled")).collect();
        let selector = match &decision.pa.selector {
            Some(s) if !s.is_empty() => {
                let labels: String =
                    s.match_labels.iter().map(|(k, v)| format!("      {k}: \"{v}\"\n")).collect::<String>();
                format!("  selector:\n    matchLabels:\n{labels}")
            }
            _ => String::new(),
        };
        let fix = format!(
            "Give the clients a sidecar, then restart them:\n{}\nkubectl -n <namespace> rollout restart deployment/<client>\n\
             Or accept plaintext while migrating (PERMISSIVE still prefers mTLS from meshed clients):\n\
             apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: {pa_name}\n  namespace: {pa_ns}\n\
             spec:\n{selector}  mtls:\n    mode: PERMISSIVE\n\
             (or keep STRICT and set portLevelMtls PERMISSIVE only for the ports these clients use).",
            label_cmds.join("\n")
        );
        out.push(rule.finding(
            format!("k8s/PeerAuthentication/{pa_ns}/{pa_name}"),
            format!("STRICT mTLS rejects {} without a sidecar", plural(reaching.len(), "client pod")),
            detail,
            evidence,
            fix,
            confidence,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::testkit::*;
    use netsleuth_model::host::HostRole;
    use netsleuth_model::kubernetes::{LabelSelector, ServiceEntry, WorkloadKind};
    use netsleuth_model::wireguard::{WireGuardInterface, WireGuardPeer};

    fn run(net: &Network, which: usize) -> Vec<Finding> {
        let mut out = Vec::new();
        (RULES[which].check)(&Context { net, now: None }, &RULES[which], &mut out);
        out
    }

    fn wg_host(allowed: &[&str]) -> netsleuth_model::host::Host {
        let mut h = host("gw-1", Some(HostRole::Gateway));
        h.wireguard.push(WireGuardInterface {
            name: "wg0".into(),
            private_key: None,
            public_key: None,
            listen_port: Some(51820),
            fwmark: None,
            addresses: vec![],
            mtu: None,
            table: None,
            peers: vec![WireGuardPeer {
                public_key: "AbCd1234zzzz=".into(),
                preshared_key: None,
                endpoint: None,
                allowed_ips: allowed.iter().map(|a| net(a)).collect(),
                latest_handshake: None,
                rx_bytes: None,
                tx_bytes: None,
                persistent_keepalive: None,
                origin: Location::line("hosts/gw-1/wg-dump.txt", 2),
            }],
            origin: Location::line("hosts/gw-1/wg-dump.txt", 1),
            from_runtime: true,
        });
        h
    }

    fn injected_pod(name: &str) -> netsleuth_model::kubernetes::Pod {
        pod("shop", name, &[("app", "api")])
            .owned_by("ReplicaSet/api-6c7d")
            .annotation("sidecar.istio.io/status", "{\"containers\":[\"istio-proxy\"]}")
            .at("kubernetes/pods.json", "/items/2")
            .build()
    }

    fn mesh_net(pods: Vec<netsleuth_model::kubernetes::Pod>) -> Network {
        let mut n = Network::default();
        n.hosts.push(wg_host(&["192.168.50.0/24", "10.244.0.0/24", "0.0.0.0/0"]));
        n.kubernetes.nodes.push(node("n1", Some("10.244.0.0/24"), "172.16.0.10"));
        n.kubernetes.namespaces.push(namespace("shop", &[]));
        n.kubernetes.pods = pods;
        n
    }

    #[test]
    fn sidecar_capturing_vpn_range_is_medium_with_allow_any() {
        let n = mesh_net(vec![injected_pod("api-6c7d-1"), injected_pod("api-6c7d-2")]);
        let out = run(&n, 0);
        assert_eq!(out.len(), 1, "{out:#?}");
        let f = &out[0];
        assert_eq!(f.rule, "MESH-001");
        assert_eq!(f.subject, "k8s/Deployment/shop/api");
        assert_eq!(f.severity, Severity::Medium);
        // The node's own pod CIDR and the default route are not VPN ranges.
        assert!(f.detail.contains("1 range behind a VPN through Envoy: 192.168.50.0/24"), "{}", f.detail);
        assert!(!f.detail.contains("10.244.0.0/24"), "{}", f.detail);
        assert_eq!(f.evidence[1].location, Location::line("hosts/gw-1/wg-dump.txt", 2));
        assert!(f.fix.contains("patch deployment api"), "{}", f.fix);
        assert!(f.fix.contains("excludeOutboundIPRanges\":\"192.168.50.0/24\""), "{}", f.fix);
    }

    #[test]
    fn registry_only_without_service_entry_is_high_and_service_entry_lowers_it() {
        let mut n = mesh_net(vec![injected_pod("api-6c7d-1")]);
        n.kubernetes.config_maps.push(config_map(
            "istio-system",
            "istio",
            &[("mesh", "accessLogFile: /dev/stdout\noutboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n")],
        ));
        let out = run(&n, 0);
        assert_eq!(out[0].severity, Severity::High);
        assert!(out[0].detail.contains("BlackHoleCluster"), "{}", out[0].detail);
        assert_eq!(
            out[0].evidence.last().unwrap().location,
            Location::json("kubernetes/configmaps.json", "/items/0/data/mesh")
        );

        n.kubernetes.service_entries.push(ServiceEntry {
            meta: meta("shop", "onprem", &[]),
            hosts: vec!["onprem.internal".into()],
            addresses: vec!["192.168.0.0/16".into()],
            ports: vec![(443, "TCP".into())],
            location: Some("MESH_EXTERNAL".into()),
            resolution: Some("NONE".into()),
            origin: Location::json("kubernetes/istio.json", "/items/0"),
        });
        let out = run(&n, 0);
        assert_eq!(out[0].severity, Severity::Medium);
        assert!(out[0].detail.contains("ServiceEntry shop/onprem covers them"), "{}", out[0].detail);
        assert!(out[0]
            .evidence
            .iter()
            .any(|e| e.location == Location::json("kubernetes/istio.json", "/items/0/spec/addresses")));
    }

    #[test]
    fn excluded_range_or_opted_out_pod_is_clean() {
        let excluded = pod("shop", "api-6c7d-1", &[("app", "api")])
            .annotation("sidecar.istio.io/status", "{}")
            .annotation(EXCLUDE_ANN, "192.168.0.0/16")
            .build();
        assert!(run(&mesh_net(vec![excluded]), 0).is_empty());

        // Namespace injection label, but the workload opts out.
        let mut n = mesh_net(vec![]);
        n.kubernetes.namespaces = vec![namespace("shop", &[("istio-injection", "enabled")])];
        n.kubernetes.workloads.push(
            workload(WorkloadKind::Deployment, "shop", "batch", &[("app", "batch")])
                .template_annotation("sidecar.istio.io/inject", "false")
                .build(),
        );
        assert!(run(&n, 0).is_empty());
        // Without the opt-out the template is injected and captures.
        n.kubernetes.workloads[0].template_annotations.clear();
        let out = run(&n, 0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].subject, "k8s/Deployment/shop/batch");
        assert!(out[0].detail.contains("namespace label istio-injection=enabled"));
    }

    #[test]
    fn istio_init_args_are_read_when_no_annotation() {
        let mut p = injected_pod("api-6c7d-1");
        let mut init = container("istio-init", "istio/proxyv2");
        init.args =
            ["istio-iptables", "-p", "15001", "-i", "10.0.0.0/8", "-x", ""].iter().map(|s| s.to_string()).collect();
        p.spec.init_containers.push(init);
        // 192.168.50.0/24 is not in the include list: not captured.
        assert!(run(&mesh_net(vec![p]), 0).is_empty());
    }

    // ---- MESH-002

    fn pa(ns: &str, name: &str, sel: Option<&[(&str, &str)]>, mode: &str) -> PeerAuthentication {
        PeerAuthentication {
            meta: meta(ns, name, &[]),
            selector: sel.map(selector),
            mtls_mode: Some(mode.into()),
            port_levels: BTreeMap::new(),
            origin: Location::json("kubernetes/istio.json", "/items/1"),
        }
    }

    fn strict_net() -> Network {
        let mut n = Network::default();
        n.kubernetes.namespaces = vec![
            namespace("shop", &[("istio-injection", "enabled")]),
            namespace("legacy", &[]),
            namespace("kube-system", &[]),
        ];
        let mut server = pod("shop", "api-6c7d-1", &[("app", "api")])
            .owned_by("ReplicaSet/api-6c7d")
            .port(Some("http"), 8080, "TCP")
            .build();
        server.spec.containers.push(container("istio-proxy", "istio/proxyv2"));
        n.kubernetes.pods = vec![
            server,
            pod("legacy", "cron-1", &[("app", "cron")]).at("kubernetes/pods.json", "/items/9").build(),
            pod("kube-system", "metrics", &[("app", "metrics")]).build(),
        ];
        n.kubernetes.peer_authentications.push(pa("istio-system", "default", None, "STRICT"));
        n
    }

    #[test]
    fn strict_mesh_wide_with_reachable_plaintext_client() {
        let n = strict_net();
        let out = run(&n, 1);
        assert_eq!(out.len(), 1, "{out:#?}");
        let f = &out[0];
        assert_eq!(f.rule, "MESH-002");
        assert_eq!(f.subject, "k8s/PeerAuthentication/istio-system/default");
        assert!(
            f.detail.contains("(mesh-wide) makes mTLS STRICT on every port for 1 pod with sidecars (shop/api-6c7d-1)"),
            "{}",
            f.detail
        );
        assert!(f.detail.contains("1 pod without a sidecar (legacy/cron-1)"), "{}", f.detail);
        assert!(!f.detail.contains("metrics"), "kube-system clients are excluded: {}", f.detail);
        assert_eq!(f.confidence, Confidence::Possible);
        assert_eq!(f.evidence[0].location, Location::json("kubernetes/istio.json", "/items/1/spec/mtls"));
        assert_eq!(f.evidence[1].location, Location::json("kubernetes/pods.json", "/items/9"));
        assert!(f.fix.contains("kubectl label namespace legacy istio-injection=enabled"), "{}", f.fix);
    }

    #[test]
    fn explicit_allow_makes_it_likely_and_isolation_or_permissive_clears_it() {
        let mut n = strict_net();
        n.kubernetes.network_policies.push(
            policy("shop", "allow-legacy")
                .select(&[("app", "api")])
                .ingress(
                    rule().peer(Some(&[("kubernetes.io/metadata.name", "legacy")]), None).port("TCP", 8080).build(),
                )
                .build(),
        );
        let out = run(&n, 1);
        assert_eq!(out[0].confidence, Confidence::Likely);
        assert_eq!(out[0].evidence[2].location, Location::json("kubernetes/policies.json", "/items/0/spec/ingress/0"));

        // Ingress allowed only from shop itself: the legacy client cannot reach.
        n.kubernetes.network_policies[0].ingress[0].peers[0].namespace_selector =
            Some(selector(&[("kubernetes.io/metadata.name", "shop")]));
        assert!(run(&n, 1).is_empty());

        // A workload-level PERMISSIVE overrides the mesh-wide STRICT.
        let mut n = strict_net();
        n.kubernetes.peer_authentications.push(pa("shop", "api", Some(&[("app", "api")]), "PERMISSIVE"));
        assert!(run(&n, 1).is_empty());
        // ...unless the port is STRICT at port level.
        n.kubernetes.peer_authentications[1].port_levels.insert(8080, "STRICT".into());
        let out = run(&n, 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].subject, "k8s/PeerAuthentication/shop/api");
        assert!(out[0].detail.contains("on ports 8080"), "{}", out[0].detail);
        assert_eq!(out[0].evidence[0].location, Location::json("kubernetes/istio.json", "/items/1/spec/portLevelMtls"));
        let _ = LabelSelector::default();
    }
}
