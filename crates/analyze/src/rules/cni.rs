//! CNI-layer rules: configuration drift between nodes (CNI-001), nodes without a CNI
//! config (CNI-002) and IPAM pools close to exhaustion (CNI-003).

use std::collections::{BTreeMap, HashMap};

use ipnet::IpNet;
use netsleuth_model::host::{CniConfig, Host, HostRole};
use netsleuth_model::kubernetes::Pod;
use netsleuth_model::{Confidence, Evidence, Finding, Layer, Location, Severity};

use crate::rule::{Context, Rule};
use crate::support::{host_node_name, is_node_host, list_some, node_names, plural, size};

pub(crate) const RULES: &[Rule] = &[
    Rule {
        id: "CNI-001",
        layer: Layer::Cni,
        severity: Severity::High,
        title: "CNI configuration differs between nodes",
        rationale: "The container runtime loads the alphabetically first config in /etc/cni/net.d. \
                    When nodes disagree on its cniVersion or its plugin chain, pods behave differently \
                    per node: a conflist newer than a node's plugin binaries fails every sandbox \
                    ('incompatible CNI versions; config is \"1.0.0\", plugin supports [...]'), a \
                    missing portmap breaks hostPort, a leftover config of a previous CNI takes \
                    precedence after an upgrade or a migration (FAILURES #43).",
        references: &[
            "containernetworking/plugins#652",
            "https://www.cni.dev/docs/spec/#configuration-format",
            "https://kubernetes.io/docs/concepts/extend-kubernetes/compute-storage-net/network-plugins/",
        ],
        example: "host/node-7/cni: 1 of 12 nodes (node-7) loads 10-calico.conflist with cniVersion 1.0.0 \
                  and plugins [calico, bandwidth, portmap]; the other 11 use cniVersion 0.3.1 and \
                  [calico, portmap]",
        check: check_drift,
    },
    Rule {
        id: "CNI-002",
        layer: Layer::Cni,
        severity: Severity::Critical,
        title: "Node has no CNI configuration",
        rationale: "Without a network config in /etc/cni/net.d, kubelet reports the node NotReady \
                    ('NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns \
                    error: cni config uninitialized') and every pod scheduled there stays Pending or \
                    ContainerCreating. The CNI DaemonSet writes the file when it starts, so this \
                    means it is not running there, failed, or writes to another directory \
                    (FAILURES #4). A host whose cni folder was not collected is unknown, not empty.",
        references: &[
            "kubernetes/kubernetes#43815",
            "https://kubernetes.io/docs/concepts/extend-kubernetes/compute-storage-net/network-plugins/",
        ],
        example: "k8s/Node/node-4: Ready=False: container runtime network not ready: \
                  NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: \
                  cni config uninitialized; hosts/node-4/cni/ holds no config",
        check: check_missing,
    },
    Rule {
        id: "CNI-003",
        layer: Layer::Cni,
        severity: Severity::High,
        title: "IPAM pool nearly or completely used",
        rationale: "host-local IPAM gives each node the addresses of its podCIDR (or its configured \
                    range) minus the network, broadcast and gateway addresses. When they run out, new \
                    pods on that node stay ContainerCreating with 'failed to allocate for range 0: no \
                    IP addresses available in range set'; reservations leaked by crashed pods in \
                    /var/lib/cni/networks make it happen earlier than the pod count suggests. The AWS \
                    VPC CNI takes pod IPs from the subnet, which runs out the same way \
                    ('InsufficientFreeAddressesInSubnet') (FAILURES #5, #6). Medium above 85 %, \
                    high when full.",
        references: &[
            "flannel-io/flannel#1416",
            "aws/amazon-vpc-cni-k8s#872",
            "https://www.cni.dev/plugins/current/ipam/host-local/",
            "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/",
        ],
        example: "k8s/Node/node-3: podCIDR 10.244.3.0/26 has 61 assignable addresses (host-local: 64 minus \
                  network, broadcast and gateway); 58 pods hold IPs in it: 95 %",
        check: check_ipam,
    },
];

// ---------------------------------------------------------------------------------------
// CNI-001

/// The config the runtime loads: the alphabetically first file.
fn primary(h: &Host) -> Option<&CniConfig> {
    h.cni.iter().min_by(|a, b| file_name(&a.file).cmp(file_name(&b.file)))
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// cniVersion and the ordered plugin types.
type Signature = (String, Vec<String>);

fn signature(c: &CniConfig) -> Signature {
    (
        c.cni_version.clone().unwrap_or_else(|| "unset".to_string()),
        c.plugins.iter().map(|p| p.plugin_type.clone()).collect(),
    )
}

fn describe(sig: &Signature) -> String {
    format!("cniVersion {} and plugins [{}]", sig.0, sig.1.join(", "))
}

fn check_drift(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    let nodes = node_names(&ctx.net.kubernetes);
    let mut groups: BTreeMap<Signature, Vec<(&Host, &CniConfig)>> = BTreeMap::new();
    for h in &ctx.net.hosts {
        if !is_node_host(h, &nodes) && h.cni.is_empty() {
            continue;
        }
        if let Some(c) = primary(h) {
            groups.entry(signature(c)).or_default().push((h, c));
        }
    }
    if groups.len() < 2 {
        return;
    }
    let total: usize = groups.values().map(Vec::len).sum();
    // The baseline is the largest group (ties: the first signature in order).
    let Some((base_sig, base)) = groups.iter().max_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| b.0.cmp(a.0)))
    else {
        return;
    };
    let tie = groups.values().filter(|g| g.len() == base.len()).count() > 1;
    let base_names: Vec<String> = base.iter().map(|(h, _)| h.name.clone()).collect();
    for (sig, members) in &groups {
        if sig == base_sig {
            continue;
        }
        let names: Vec<String> = members.iter().map(|(h, _)| h.name.clone()).collect();
        let Some((first_host, first_cfg)) = members.first() else { continue };
        let mut diffs = Vec::new();
        if sig.0 != base_sig.0 {
            diffs.push(format!("cniVersion {} instead of {}", sig.0, base_sig.0));
        }
        if sig.1 != base_sig.1 {
            diffs.push(format!("plugin chain [{}] instead of [{}]", sig.1.join(", "), base_sig.1.join(", ")));
        }
        let files: Vec<&str> = members.iter().map(|(_, c)| file_name(&c.file)).collect();
        let base_file = base.first().map(|(_, c)| file_name(&c.file)).unwrap_or("");
        let mut detail = format!(
            "{} of {total} nodes ({}) {} {} with {}; the other {} ({}) load {base_file} with {}. \
             Difference: {}.",
            members.len(),
            list_some(&names, 5),
            if members.len() == 1 { "loads" } else { "load" },
            files.first().copied().unwrap_or(""),
            describe(sig),
            base.len(),
            list_some(&base_names, 5),
            describe(base_sig),
            diffs.join("; ")
        );
        if files.first().copied() != Some(base_file) {
            detail.push_str(" The first config file differs too: a leftover file of another CNI sorts first and wins.");
        }
        if tie {
            detail.push_str(" The groups are the same size, so which side is the odd one is a guess.");
        }
        let subject = format!("host/{}/cni", first_host.name);
        let title = if members.len() == 1 {
            format!("CNI config on {} differs from the other nodes ({})", first_host.name, diffs.join("; "))
        } else {
            format!(
                "CNI config on {} and {} differs ({})",
                first_host.name,
                plural(members.len() - 1, "other node"),
                diffs.join("; ")
            )
        };
        let mut evidence =
            vec![Evidence::new(first_cfg.origin.clone(), format!("{}: {}", file_name(&first_cfg.file), describe(sig)))];
        if let Some((h, c)) = base.first() {
            evidence.push(Evidence::new(
                c.origin.clone(),
                format!("{} on {}: {}", file_name(&c.file), h.name, describe(base_sig)),
            ));
        }
        out.push(rule.finding(
            subject,
            title,
            detail,
            evidence,
            format!(
                "Make the odd nodes load the same config as the rest: restart the CNI DaemonSet pod on them so it \
                 rewrites /etc/cni/net.d (kubectl -n kube-system delete pod -l <cni-label> --field-selector \
                 spec.nodeName={}), remove files of a previous CNI from /etc/cni/net.d, and check the plugin \
                 binaries support the cniVersion (`/opt/cni/bin/<plugin> version` lists supported versions).",
                first_host.name
            ),
            if tie { Confidence::Possible } else { Confidence::Likely },
        ));
    }
}

// ---------------------------------------------------------------------------------------
// CNI-002

/// The collected, empty cni folder of a host, and the non-config files it held.
fn empty_cni_folder(h: &Host, skipped: &[String]) -> Option<(String, Vec<String>)> {
    if !h.cni.is_empty() || matches!(h.role, Some(HostRole::Gateway) | Some(HostRole::Pod)) {
        return None;
    }
    let dir = h.artifacts.iter().find(|a| a.ends_with("/cni/"))?;
    // Config files that were read but failed to parse are ING-001's business, not "missing".
    if h.artifacts.iter().any(|a| a.len() > dir.len() && a.starts_with(dir.as_str())) {
        return None;
    }
    let others: Vec<String> = skipped.iter().filter(|s| s.starts_with(dir.as_str())).cloned().collect();
    Some((dir.clone(), others))
}

fn cni_not_ready(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("cni config uninitialized")
        || m.contains("networkpluginnotready")
        || m.contains("network plugin is not ready")
}

fn check_missing(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    let net = ctx.net;
    let mut empty: HashMap<&str, (&Host, String, Vec<String>)> = HashMap::new();
    for h in &net.hosts {
        if let Some((dir, others)) = empty_cni_folder(h, &net.skipped_files) {
            empty.insert(host_node_name(h), (h, dir, others));
        }
    }
    let folder_evidence = |dir: &str, others: &[String]| -> Evidence {
        let excerpt = if others.is_empty() {
            "no files".to_string()
        } else {
            format!("no CNI config (.conf/.conflist/.json); other files: {}", list_some(others, 3))
        };
        Evidence::new(Location::file(dir), excerpt)
    };
    let fix = |node: &str| -> String {
        format!(
            "Find why the CNI DaemonSet did not write its config on {node}: \
             `kubectl -n kube-system get pods -o wide --field-selector spec.nodeName={node}` (is the CNI pod \
             there and Running?), then its logs and its install/init container's logs. Check the runtime's \
             CNI conf_dir (containerd: plugins.\"io.containerd.grpc.v1.cri\".cni.conf_dir, default \
             /etc/cni/net.d) matches where the CNI writes."
        )
    };
    for n in &net.kubernetes.nodes {
        let Some(c) = n.condition("Ready") else { continue };
        let text = format!("{} {}", c.reason.as_deref().unwrap_or(""), c.message.as_deref().unwrap_or(""));
        if c.status != "False" || !cni_not_ready(&text) {
            continue;
        }
        let mut evidence = vec![Evidence::new(
            n.origin.child("/status/conditions"),
            format!("Ready={}: {}", c.status, c.message.as_deref().or(c.reason.as_deref()).unwrap_or("")),
        )];
        let mut detail = format!(
            "Node {} is NotReady because the network plugin is not ready ({}). Pods scheduled there stay \
             Pending or ContainerCreating.",
            n.meta.name,
            c.message.as_deref().or(c.reason.as_deref()).unwrap_or("").trim()
        );
        if let Some((h, dir, others)) = empty.remove(n.meta.name.as_str()) {
            evidence.push(folder_evidence(&dir, &others));
            detail.push_str(&format!(" The collected {dir} of host {} holds no CNI config.", h.name));
        }
        out.push(rule.finding(
            format!("k8s/Node/{}", n.meta.name),
            format!("Node {} has no CNI config (NetworkPluginNotReady)", n.meta.name),
            detail,
            evidence,
            fix(&n.meta.name),
            Confidence::Confirmed,
        ));
    }
    let mut rest: Vec<_> = empty.into_values().collect();
    rest.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    for (h, dir, others) in rest {
        let mut detail = format!(
            "The collected {dir} of host {} holds no CNI network config, so the runtime cannot set up pod \
             networking there: kubelet reports NetworkPluginNotReady (cni config uninitialized) and pods \
             stay ContainerCreating.",
            h.name
        );
        if !others.is_empty() {
            detail.push_str(&format!(
                " It has files, but none ends in .conf, .conflist or .json: {}.",
                list_some(&others, 3)
            ));
        }
        out.push(rule.finding(
            format!("host/{}/cni", h.name),
            format!("No CNI config on {}", h.name),
            detail,
            vec![folder_evidence(&dir, &others)],
            fix(host_node_name(h)),
            Confidence::Likely,
        ));
    }
}

// ---------------------------------------------------------------------------------------
// CNI-003

/// Medium above this share of the pool.
const WARN_RATIO: f64 = 0.85;

/// Addresses host-local can hand out: all but network, broadcast (IPv4) and gateway.
fn host_local_usable(net: &IpNet) -> u128 {
    let reserved = if matches!(net, IpNet::V4(_)) { 3 } else { 2 };
    size(net).saturating_sub(reserved)
}

fn pods_holding_ip(pods: &[&Pod], cidr: &IpNet) -> usize {
    pods.iter().filter(|p| p.pod_ips.iter().any(|a| cidr.contains(a))).count()
}

fn usage(used: usize, usable: u128) -> Option<(f64, Severity)> {
    if usable == 0 {
        return None;
    }
    let ratio = used as f64 / usable as f64;
    if ratio >= 1.0 {
        Some((ratio, Severity::High))
    } else if ratio > WARN_RATIO {
        Some((ratio, Severity::Medium))
    } else {
        None
    }
}

fn check_ipam(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    let k = &ctx.net.kubernetes;
    // Pods that hold an IP from the node's pool: running, not on the host network.
    let mut by_node: HashMap<&str, Vec<&Pod>> = HashMap::new();
    for p in &k.pods {
        if p.spec.host_network
            || p.pod_ips.is_empty()
            || matches!(p.phase.as_deref(), Some("Succeeded") | Some("Failed"))
        {
            continue;
        }
        if let Some(n) = &p.spec.node_name {
            by_node.entry(n.as_str()).or_default().push(p);
        }
    }
    let none: Vec<&Pod> = Vec::new();
    let fix = |node: &str, usable: u128| -> String {
        format!(
            "Give nodes larger pod CIDRs: kube-controller-manager --node-cidr-mask-size (e.g. 24 gives 253 \
             assignable addresses; it applies to newly registered nodes, so drain, delete and re-register \
             {node}). Until then cap kubelet maxPods at {usable} on {node}, and clear leaked reservations: \
             compare `ls /var/lib/cni/networks/<network>/` on the node with its running pods."
        )
    };
    for n in &k.nodes {
        let pods = by_node.get(n.meta.name.as_str()).unwrap_or(&none);
        for (i, cidr) in n.pod_cidrs.iter().enumerate() {
            let used = pods_holding_ip(pods, cidr);
            let usable = host_local_usable(cidr);
            let Some((ratio, severity)) = usage(used, usable) else { continue };
            let pct = (ratio * 100.0).round();
            let mut f = rule.finding(
                format!("k8s/Node/{}", n.meta.name),
                format!("Pod CIDR {cidr} of {} is {pct} % used ({used} of {usable})", n.meta.name),
                format!(
                    "podCIDR {cidr} of node {} has {} addresses; assuming host-local IPAM, {usable} are \
                     assignable (network, broadcast and the bridge gateway are not). {} on the node hold IPs \
                     in it: {pct} % used. {}",
                    n.meta.name,
                    size(cidr),
                    plural(used, "pod"),
                    if severity == Severity::High {
                        "The pool is full: new pods there fail with 'no IP addresses available in range set'."
                    } else {
                        "A few more pods, or reservations leaked by crashed pods, exhaust it."
                    }
                ),
                vec![Evidence::new(n.origin.child(&format!("/spec/podCIDRs/{i}")), format!("podCIDR {cidr}"))],
                fix(&n.meta.name, usable),
                Confidence::Likely,
            );
            f.severity = severity;
            out.push(f);
        }
    }
    // host-local ranges in CNI configs that are not simply the node's podCIDR.
    for h in &ctx.net.hosts {
        let node = host_node_name(h);
        let node_cidrs: Vec<IpNet> =
            k.nodes.iter().filter(|n| n.meta.name == node).flat_map(|n| n.pod_cidrs.iter().copied()).collect();
        let pods = by_node.get(node).unwrap_or(&none);
        for cfg in &h.cni {
            for p in &cfg.plugins {
                let Some(ipam) = &p.ipam else { continue };
                if ipam.ipam_type.as_deref() != Some("host-local") {
                    continue;
                }
                for range in &ipam.subnets {
                    if node_cidrs.contains(range) {
                        continue;
                    }
                    let used = pods_holding_ip(pods, range);
                    let usable = host_local_usable(range);
                    let Some((ratio, severity)) = usage(used, usable) else { continue };
                    let pct = (ratio * 100.0).round();
                    let mut f = rule.finding(
                        format!("host/{}/cni/{}", h.name, file_name(&cfg.file)),
                        format!("host-local range {range} on {} is {pct} % used ({used} of {usable})", h.name),
                        format!(
                            "CNI config {} on host {} gives plugin {} the host-local range {range}: {usable} \
                             assignable addresses (network, broadcast and gateway excluded). {} of node {node} \
                             hold IPs in it: {pct} % used.",
                            file_name(&cfg.file),
                            h.name,
                            p.plugin_type,
                            plural(used, "pod")
                        ),
                        vec![Evidence::new(p.origin.clone(), format!("ipam host-local range {range}"))],
                        format!(
                            "Widen the range in {} (and in the CNI's source of it), or cap kubelet maxPods at \
                             {usable}; clear leaked reservations in /var/lib/cni/networks/<network>/.",
                            cfg.origin
                        ),
                        Confidence::Likely,
                    );
                    f.severity = severity;
                    out.push(f);
                }
            }
        }
    }
    // The AWS VPC CNI takes pod IPs from the subnet itself.
    let aws_cni =
        ctx.net.hosts.iter().any(|h| h.cni.iter().any(|c| c.plugins.iter().any(|p| p.plugin_type == "aws-cni")));
    if aws_cni {
        for s in &ctx.net.aws.subnets {
            let (Some(cidr), Some(available)) = (s.cidr, s.available_ips) else { continue };
            // AWS reserves 5 addresses per subnet.
            let usable = size(&cidr).saturating_sub(5);
            let used = usable.saturating_sub(u128::from(available));
            let Some((ratio, severity)) = usage(usize::try_from(used).unwrap_or(usize::MAX), usable) else { continue };
            let pct = (ratio * 100.0).round();
            let mut f = rule.finding(
                format!("aws/subnet/{}", s.id),
                format!("Subnet {} ({cidr}) is {pct} % used: {available} addresses left", s.id),
                format!(
                    "The AWS VPC CNI assigns pod IPs from the node's subnet. {} ({cidr}) has {usable} usable \
                     addresses (AWS reserves 5) and {available} available: {pct} % used. When it runs out, ipamd \
                     logs InsufficientFreeAddressesInSubnet and pods stay ContainerCreating ('failed to assign \
                     an IP address to container').",
                    s.id
                ),
                vec![Evidence::new(s.origin.clone(), format!("AvailableIpAddressCount {available}"))],
                "Add subnets (a secondary VPC CIDR with custom networking / ENIConfig), or enable prefix \
                 delegation (ENABLE_PREFIX_DELEGATION=true on the aws-node DaemonSet) and lower WARM_IP_TARGET \
                 so nodes do not hoard addresses."
                    .to_string(),
                Confidence::Likely,
            );
            f.severity = severity;
            out.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::testkit::*;
    use netsleuth_model::host::{CniIpam, CniPlugin};
    use netsleuth_model::kubernetes::Condition;
    use netsleuth_model::Network;

    fn run(net: &Network, which: usize) -> Vec<Finding> {
        let mut out = Vec::new();
        (RULES[which].check)(&Context { net, now: None }, &RULES[which], &mut out);
        out
    }

    fn cni(host: &str, file: &str, version: &str, plugins: &[&str]) -> CniConfig {
        let path = format!("hosts/{host}/cni/{file}");
        CniConfig {
            file: path.clone(),
            name: Some("k8s-pod-network".into()),
            cni_version: Some(version.into()),
            plugins: plugins
                .iter()
                .enumerate()
                .map(|(i, t)| CniPlugin {
                    plugin_type: (*t).into(),
                    mtu: None,
                    ipam: None,
                    origin: Location::json(&path, format!("/plugins/{i}")),
                })
                .collect(),
            origin: Location::file(path),
        }
    }

    fn node_host(name: &str, cfgs: Vec<CniConfig>) -> Host {
        let mut h = host(name, Some(HostRole::Node));
        h.artifacts.push(format!("hosts/{name}/cni/"));
        for c in &cfgs {
            h.artifacts.push(c.file.clone());
        }
        h.cni = cfgs;
        h
    }

    #[test]
    fn odd_node_out_is_named() {
        let mut n = Network::default();
        for name in ["n1", "n2", "n3"] {
            n.hosts.push(node_host(name, vec![cni(name, "10-calico.conflist", "0.3.1", &["calico", "portmap"])]));
        }
        n.hosts.push(node_host(
            "n4",
            vec![
                cni("n4", "10-calico.conflist", "1.0.0", &["calico", "bandwidth", "portmap"]),
                cni("n4", "20-other.conf", "0.3.1", &["bridge"]),
            ],
        ));
        let out = run(&n, 0);
        assert_eq!(out.len(), 1, "{out:#?}");
        let f = &out[0];
        assert_eq!(f.rule, "CNI-001");
        assert_eq!(f.subject, "host/n4/cni");
        assert!(
            f.detail.starts_with("1 of 4 nodes (n4) loads 10-calico.conflist with cniVersion 1.0.0"),
            "{}",
            f.detail
        );
        assert!(f.detail.contains("the other 3 (n1, n2, n3)"), "{}", f.detail);
        assert!(f.detail.contains("cniVersion 1.0.0 instead of 0.3.1"), "{}", f.detail);
        assert!(
            f.detail.contains("plugin chain [calico, bandwidth, portmap] instead of [calico, portmap]"),
            "{}",
            f.detail
        );
        assert_eq!(f.evidence[0].location, Location::file("hosts/n4/cni/10-calico.conflist"));
        assert_eq!(f.confidence, Confidence::Likely);
    }

    #[test]
    fn identical_configs_are_clean() {
        let mut n = Network::default();
        for name in ["n1", "n2"] {
            n.hosts.push(node_host(name, vec![cni(name, "10-flannel.conflist", "0.3.1", &["flannel", "portmap"])]));
        }
        assert!(run(&n, 0).is_empty());
    }

    #[test]
    fn empty_cni_folder_and_not_ready_condition_merge_into_one_finding() {
        let mut n = Network::default();
        n.hosts.push(node_host("node-4", vec![]));
        n.hosts.push(node_host("node-5", vec![]));
        n.skipped_files.push("hosts/node-5/cni/README".into());
        n.hosts.push(node_host("node-6", vec![cni("node-6", "10-flannel.conflist", "0.3.1", &["flannel"])]));
        // Not collected at all: unknown, not missing.
        n.hosts.push(host("node-7", Some(HostRole::Node)));
        let mut nd = node("node-4", None, "10.0.0.4");
        nd.conditions = vec![Condition {
            kind: "Ready".into(),
            status: "False".into(),
            reason: Some("KubeletNotReady".into()),
            message: Some("container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni config uninitialized".into()),
        }];
        n.kubernetes.nodes.push(nd);
        let out = run(&n, 1);
        assert_eq!(out.len(), 2, "{out:#?}");
        assert_eq!(out[0].rule, "CNI-002");
        assert_eq!(out[0].subject, "k8s/Node/node-4");
        assert_eq!(out[0].confidence, Confidence::Confirmed);
        assert_eq!(out[0].evidence[0].location, Location::json("kubernetes/nodes.json", "/items/0/status/conditions"));
        assert_eq!(out[0].evidence[1].location, Location::file("hosts/node-4/cni/"));
        assert_eq!(out[1].subject, "host/node-5/cni");
        assert!(out[1].detail.contains("hosts/node-5/cni/README"), "{}", out[1].detail);
    }

    #[test]
    fn unparsable_config_is_not_missing() {
        let mut n = Network::default();
        let mut h = node_host("node-4", vec![]);
        h.artifacts.push("hosts/node-4/cni/10-bad.conflist".into());
        n.hosts.push(h);
        assert!(run(&n, 1).is_empty());
    }

    fn pods_on(node: &str, prefix: &str, count: u32) -> Vec<Pod> {
        (0..count)
            .map(|i| pod("shop", &format!("p{i}"), &[]).node(node).ip(&format!("{prefix}.{}", i + 2)).build())
            .collect()
    }

    #[test]
    fn pod_cidr_usage_thresholds() {
        let mut n = Network::default();
        let mut nd = node("n1", Some("10.244.1.0/26"), "10.0.0.1");
        nd.origin = Location::json("kubernetes/nodes.json", "/items/4");
        n.kubernetes.nodes.push(nd);
        n.kubernetes.pods = pods_on("n1", "10.244.1", 55);
        // A host-network pod and a finished pod do not hold pool addresses.
        n.kubernetes.pods.push(pod("shop", "hn", &[]).node("n1").ip("10.0.0.1").host_network().build());
        n.kubernetes.pods.push(pod("shop", "done", &[]).node("n1").ip("10.244.1.60").phase("Succeeded").build());
        let out = run(&n, 2);
        assert_eq!(out.len(), 1, "{out:#?}");
        let f = &out[0];
        assert_eq!(f.rule, "CNI-003");
        assert_eq!(f.subject, "k8s/Node/n1");
        assert_eq!(f.severity, Severity::Medium);
        assert!(f.detail.contains("has 64 addresses; assuming host-local IPAM, 61 are assignable"), "{}", f.detail);
        assert!(f.detail.contains("55 pods on the node hold IPs in it: 90 % used"), "{}", f.detail);
        assert_eq!(f.evidence[0].location, Location::json("kubernetes/nodes.json", "/items/4/spec/podCIDRs/0"));

        n.kubernetes.pods = pods_on("n1", "10.244.1", 61);
        assert_eq!(run(&n, 2)[0].severity, Severity::High);
        n.kubernetes.pods = pods_on("n1", "10.244.1", 50);
        assert!(run(&n, 2).is_empty());
    }

    #[test]
    fn host_local_range_usage_is_checked_when_it_is_not_the_pod_cidr() {
        let mut n = Network::default();
        let mut h = node_host("n1", vec![cni("n1", "10-bridge.conflist", "1.0.0", &["bridge"])]);
        h.cni[0].plugins[0].ipam =
            Some(CniIpam { ipam_type: Some("host-local".into()), subnets: vec![net("192.168.9.0/28")] });
        n.hosts.push(h);
        n.kubernetes.pods = pods_on("n1", "192.168.9", 13);
        let out = run(&n, 2);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].subject, "host/n1/cni/10-bridge.conflist");
        assert_eq!(out[0].severity, Severity::High);
        assert_eq!(out[0].evidence[0].location, Location::json("hosts/n1/cni/10-bridge.conflist", "/plugins/0"));
    }
}
