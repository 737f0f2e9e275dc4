//! DNS-layer rules over resolv.conf files and the CoreDNS Corefile: ndots amplification
//! (DNS-001), resolver limits (DNS-002) and the loopback forwarding loop (DNS-003).

use netsleuth_model::host::{Host, ResolvConf};
use netsleuth_model::kubernetes::{ConfigMap, Pod};
use netsleuth_model::{Confidence, Evidence, Finding, Layer, Location, Severity};

use crate::rule::{Context, Rule};
use crate::support::{host_node_name, is_node_host, list_some, node_names, plural};

pub(crate) const RULES: &[Rule] = &[
    Rule {
        id: "DNS-001",
        layer: Layer::Dns,
        severity: Severity::Medium,
        title: "ndots >= 5 with search domains multiplies DNS queries",
        rationale: "A resolver tries a name with fewer dots than `ndots` against every search domain \
                    before trying it as written. With the Kubernetes default for pods (ndots:5 and \
                    three cluster search domains) a lookup of api.example.com sends (search + 1) x 2 \
                    queries (A and AAAA), all but the last pair NXDOMAIN. Under load this multiplies \
                    CoreDNS and upstream traffic, hits rate limits and conntrack races (intermittent \
                    5 s delays), and leaks names like api.example.com.ns.svc.cluster.local upstream \
                    (FAILURES #8).",
        references: &[
            "kubernetes/kubernetes#14051",
            "https://kubernetes.io/docs/concepts/services-networking/dns-pod-service/#pod-dns-config",
            "https://man7.org/linux/man-pages/man5/resolv.conf.5.html",
        ],
        example: "host/pod-web/resolv.conf: options ndots:5 with 3 search domains: a name with fewer \
                  than 5 dots costs (3 + 1) x 2 = 8 queries, 6 of them NXDOMAIN",
        check: check_ndots,
    },
    Rule {
        id: "DNS-002",
        layer: Layer::Dns,
        severity: Severity::Medium,
        title: "resolv.conf beyond resolver limits (nameservers, search list)",
        rationale: "glibc and musl use only the first 3 nameservers (MAXNS); kubelet passes 3 to pods \
                    and logs 'Nameserver limits were exceeded'. Search lists are cut too: kubelet \
                    (Kubernetes 1.28+) and glibc >= 2.26 accept 32 domains / 2048 characters, while \
                    glibc < 2.26, musl (Alpine images) and older kubelets keep 6 domains / 256 \
                    characters; kubelet logs 'Search Line limits were exceeded'. Pods with dnsPolicy \
                    ClusterFirst get the node's search list plus 3 cluster domains, so a node list near \
                    the limit overflows in pods. The dropped nameservers or domains silently stop \
                    resolving (FAILURES #42).",
        references: &[
            "https://kubernetes.io/docs/tasks/administer-cluster/dns-debugging-resolution/#known-issues",
            "https://kubernetes.io/docs/concepts/services-networking/dns-pod-service/#pod-dns-config",
            "https://man7.org/linux/man-pages/man5/resolv.conf.5.html",
        ],
        example: "host/node-1/resolv.conf: 4 nameservers (only the first 3 are used: 10.0.0.2, 10.0.0.3, \
                  10.0.0.4; dropped: 1.1.1.1)",
        check: check_limits,
    },
    Rule {
        id: "DNS-003",
        layer: Layer::Dns,
        severity: Severity::Critical,
        title: "CoreDNS forwards to a loopback resolver: forwarding loop",
        rationale: "CoreDNS runs with dnsPolicy Default, so its /etc/resolv.conf is the node's (kubelet \
                    --resolv-conf). When that file names a loopback resolver (127.0.0.53 of \
                    systemd-resolved, 127.0.0.1 of dnsmasq) and the Corefile says `forward . \
                    /etc/resolv.conf`, CoreDNS forwards to 127.0.0.53 inside its own network \
                    namespace, that is to itself. The loop plugin detects it and CoreDNS exits: \
                    CrashLoopBackOff with 'plugin/loop: Loop (127.0.0.1:x -> :53) detected', and \
                    every pod's lookups fail (FAILURES #7).",
        references: &[
            "coredns/coredns#2087",
            "https://coredns.io/plugins/loop/#troubleshooting",
            "https://kubernetes.io/docs/tasks/administer-cluster/dns-debugging-resolution/#known-issues",
        ],
        example: "host/node-1/resolv.conf: nameserver 127.0.0.53 while ConfigMap kube-system/coredns \
                  Corefile line 8 has `forward . /etc/resolv.conf` and CoreDNS runs with dnsPolicy \
                  Default on node-1: forwarding loop",
        check: check_forward_loop,
    },
];

fn subject(h: &Host) -> String {
    format!("host/{}/resolv.conf", h.name)
}

fn hosts_with_resolv<'a>(ctx: &Context<'a>) -> impl Iterator<Item = (&'a Host, &'a ResolvConf)> {
    ctx.net.hosts.iter().filter_map(|h| h.resolv.as_ref().map(|r| (h, r)))
}

/// Location of the `options` line (or the file).
fn options_location(r: &ResolvConf) -> Location {
    r.options_origin.clone().unwrap_or_else(|| r.origin.clone())
}

fn search_location(r: &ResolvConf) -> Location {
    r.search_origin.clone().unwrap_or_else(|| r.origin.clone())
}

// ---------------------------------------------------------------------------------------
// DNS-001

fn check_ndots(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for (h, r) in hosts_with_resolv(ctx) {
        let Some(ndots) = r.ndots.filter(|n| *n >= 5) else { continue };
        if r.search.is_empty() {
            continue;
        }
        let n = r.search.len();
        let total = (n + 1) * 2;
        let wasted = n * 2;
        let detail = format!(
            "options ndots:{ndots} with {} ({}): a name with fewer than {ndots} dots (api.example.com has 2, \
             a Service name like db.prod has 1) is first tried against every search domain, so one lookup \
             of an external name costs ({n} + 1) x 2 = {total} queries (A and AAAA), {wasted} of them \
             NXDOMAIN. Short in-cluster names resolve on the first try; external names pay the full price.",
            plural(n, "search domain"),
            list_some(&r.search, 4)
        );
        let is_pod = h.pod.is_some() || r.search.iter().any(|s| s.ends_with(".svc.cluster.local"));
        let fix = if is_pod {
            "Lower ndots for this workload (pod template):\nspec:\n  dnsConfig:\n    options:\n      - name: ndots\n        \
             value: \"2\"\nand use fully qualified names with a trailing dot (api.example.com.) for external hosts."
                .to_string()
        } else {
            format!(
                "Edit {} : set `options ndots:1` (the glibc default) or remove search domains that are not needed.",
                r.origin
            )
        };
        out.push(rule.finding(
            subject(h),
            format!(
                "ndots:{ndots} with {} multiplies DNS queries ({total} per external name)",
                plural(n, "search domain")
            ),
            detail,
            vec![
                Evidence::new(options_location(r), format!("options {}", r.options.join(" "))),
                Evidence::new(search_location(r), format!("search {}", r.search.join(" "))),
            ],
            fix,
            Confidence::Confirmed,
        ));
    }
}

// ---------------------------------------------------------------------------------------
// DNS-002

/// glibc/musl MAXNS.
const MAX_NAMESERVERS: usize = 3;
/// kubelet (1.28+, ExpandedDNSConfig) and glibc >= 2.26.
const MAX_SEARCH_NEW: (usize, usize) = (32, 2048);
/// glibc < 2.26, musl, kubelet before 1.28.
const MAX_SEARCH_OLD: (usize, usize) = (6, 256);
/// What ClusterFirst pods add: `<ns>.svc.cluster.local svc.cluster.local cluster.local`
/// (3 domains, at least 51 characters with the separators, plus the namespace name).
const CLUSTER_DOMAINS: (usize, usize) = (3, 51);

fn check_limits(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    let nodes = node_names(&ctx.net.kubernetes);
    for (h, r) in hosts_with_resolv(ctx) {
        let mut parts = Vec::new();
        let mut evidence = Vec::new();
        let mut severity = Severity::Low;
        let mut fixes = Vec::new();
        if r.nameservers.len() > MAX_NAMESERVERS {
            let used: Vec<String> = r.nameservers.iter().take(MAX_NAMESERVERS).map(|n| n.addr.to_string()).collect();
            let dropped: Vec<String> = r.nameservers.iter().skip(MAX_NAMESERVERS).map(|n| n.addr.to_string()).collect();
            parts.push(format!(
                "{} nameservers: glibc and musl use only the first {MAX_NAMESERVERS} ({}) and kubelet logs \
                 'Nameserver limits were exceeded' and passes those 3 to pods; dropped: {}",
                r.nameservers.len(),
                used.join(", "),
                dropped.join(", ")
            ));
            for n in r.nameservers.iter().skip(MAX_NAMESERVERS) {
                evidence.push(Evidence::new(n.origin.clone(), format!("nameserver {} (beyond the 3rd)", n.addr)));
            }
            severity = Severity::Medium;
            fixes.push(format!("keep at most 3 nameservers (drop or merge {})", dropped.join(", ")));
        }
        let count = r.search.len();
        let chars = r.search.join(" ").len();
        let node = is_node_host(h, &nodes);
        let (pod_count, pod_chars) = (count + CLUSTER_DOMAINS.0, chars + CLUSTER_DOMAINS.1);
        let over = |(c, ch): (usize, usize), (mc, mch): (usize, usize)| c > mc || ch > mch;
        let search_desc = format!("{} ({} characters)", plural(count, "search domain"), chars);
        let mut search_problem = None;
        if over((count, chars), MAX_SEARCH_NEW) {
            search_problem = Some((
                format!(
                    "{search_desc}: over the limit of {} domains / {} characters of kubelet (1.28+) and glibc >= \
                     2.26; kubelet logs 'Search Line limits were exceeded' and drops the rest for pods",
                    MAX_SEARCH_NEW.0, MAX_SEARCH_NEW.1
                ),
                Severity::Medium,
            ));
        } else if node && count > 0 && over((pod_count, pod_chars), MAX_SEARCH_NEW) {
            search_problem = Some((
                format!(
                    "{search_desc}: ClusterFirst pods on this node get these plus 3 cluster domains ({pod_count} \
                     domains, at least {pod_chars} characters), over kubelet's {} / {} limit; kubelet logs 'Search \
                     Line limits were exceeded' and drops domains",
                    MAX_SEARCH_NEW.0, MAX_SEARCH_NEW.1
                ),
                Severity::Medium,
            ));
        } else if over((count, chars), MAX_SEARCH_OLD) {
            search_problem = Some((
                format!(
                    "{search_desc}: over {} domains / {} characters, the limit of glibc < 2.26, musl (Alpine \
                     images) and kubelet before 1.28; those drop the domains past the limit (newer glibc and \
                     kubelet accept up to {} / {})",
                    MAX_SEARCH_OLD.0, MAX_SEARCH_OLD.1, MAX_SEARCH_NEW.0, MAX_SEARCH_NEW.1
                ),
                Severity::Low,
            ));
        } else if node && count > 0 && over((pod_count, pod_chars), MAX_SEARCH_OLD) {
            search_problem = Some((
                format!(
                    "{search_desc}: ClusterFirst pods on this node get these plus 3 cluster domains ({pod_count} \
                     domains, at least {pod_chars} characters), over {} / {}, the limit of glibc < 2.26, musl \
                     (Alpine images) and kubelet before 1.28",
                    MAX_SEARCH_OLD.0, MAX_SEARCH_OLD.1
                ),
                Severity::Low,
            ));
        }
        if let Some((text, sev)) = search_problem {
            parts.push(text);
            severity = severity.max(sev);
            evidence.push(Evidence::new(search_location(r), format!("search {}", list_some(&r.search, 8))));
            fixes.push(
                "trim the search list (domains pods need can be set per workload with spec.dnsConfig.searches)".into(),
            );
        }
        if parts.is_empty() {
            continue;
        }
        let mut f = rule.finding(
            subject(h),
            format!("resolv.conf of {} exceeds resolver limits", h.name),
            format!("{}.", parts.join("; ")),
            evidence,
            format!(
                "In {}: {}. On nodes, change the source of kubelet's --resolv-conf (DHCP options, \
                 systemd-resolved, netplan) so the change survives renewals.",
                r.origin,
                fixes.join("; ")
            ),
            Confidence::Confirmed,
        );
        f.severity = severity;
        out.push(f);
    }
}

// ---------------------------------------------------------------------------------------
// DNS-003

/// `forward`/`proxy` lines of the Corefile that use /etc/resolv.conf: (line, text, zone).
fn resolv_forwards(corefile: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    for (i, line) in corefile.lines().enumerate() {
        let code = line.split('#').next().unwrap_or("");
        let mut toks = code.split_whitespace();
        let (Some(directive), Some(zone)) = (toks.next(), toks.next()) else { continue };
        if (directive == "forward" || directive == "proxy") && toks.any(|t| t == "/etc/resolv.conf") {
            out.push((i + 1, code.trim().trim_end_matches('{').trim().to_string(), zone.to_string()));
        }
    }
    out
}

fn coredns_configmap<'a>(ctx: &Context<'a>) -> Option<(&'a ConfigMap, String)> {
    let cm = ctx
        .net
        .kubernetes
        .config_maps
        .iter()
        .find(|c| c.meta.namespace == "kube-system" && c.meta.name == "coredns")?;
    let (key, _) = cm.data.iter().find(|(k, _)| k.as_str() == "Corefile")?;
    Some((cm, key.clone()))
}

fn is_coredns_pod(p: &Pod) -> bool {
    p.meta.namespace == "kube-system"
        && (p.meta.labels.get("k8s-app").is_some_and(|v| v == "kube-dns") || p.meta.name.starts_with("coredns"))
        && !matches!(p.phase.as_deref(), Some("Succeeded") | Some("Failed"))
}

/// What the bundle says about CoreDNS's dnsPolicy: pods (with their nodes) that use
/// Default, whether any CoreDNS object was seen at all, and evidence.
struct CorednsPlacement<'a> {
    default_pods: Vec<&'a Pod>,
    /// CoreDNS pods or a template seen, and none uses Default.
    other_policy: Option<String>,
    template_default: Option<Evidence>,
}

fn coredns_placement<'a>(ctx: &Context<'a>) -> CorednsPlacement<'a> {
    let k = &ctx.net.kubernetes;
    let pods: Vec<&Pod> = k.pods.iter().filter(|p| is_coredns_pod(p)).collect();
    // Unset in a hand-written manifest: CoreDNS manifests always set Default.
    let uses_default = |p: Option<&String>| p.is_none_or(|v| v == "Default");
    if !pods.is_empty() {
        let default_pods: Vec<&Pod> =
            pods.iter().copied().filter(|p| uses_default(p.spec.dns_policy.as_ref())).collect();
        let other_policy =
            default_pods.is_empty().then(|| pods.first().and_then(|p| p.spec.dns_policy.clone()).unwrap_or_default());
        return CorednsPlacement { default_pods, other_policy, template_default: None };
    }
    let template = k.workloads.iter().find(|w| {
        w.meta.namespace == "kube-system"
            && (w.meta.name == "coredns" || w.template_labels.get("k8s-app").is_some_and(|v| v == "kube-dns"))
    });
    match template {
        Some(w) if !uses_default(w.template.dns_policy.as_ref()) => CorednsPlacement {
            default_pods: Vec::new(),
            other_policy: w.template.dns_policy.clone(),
            template_default: None,
        },
        Some(w) => CorednsPlacement {
            default_pods: Vec::new(),
            other_policy: None,
            template_default: Some(Evidence::new(
                w.origin.child("/spec/template/spec/dnsPolicy"),
                format!(
                    "Deployment kube-system/{} dnsPolicy: {}",
                    w.meta.name,
                    w.template.dns_policy.as_deref().unwrap_or("Default")
                ),
            )),
        },
        None => CorednsPlacement { default_pods: Vec::new(), other_policy: None, template_default: None },
    }
}

fn check_forward_loop(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    let Some((cm, key)) = coredns_configmap(ctx) else { return };
    let Some(corefile) = cm.data.get(&key) else { return };
    let forwards = resolv_forwards(corefile);
    let Some((line_no, line_text, zone)) = forwards.first() else { return };
    let placement = coredns_placement(ctx);
    if placement.other_policy.is_some() {
        return;
    }
    let nodes = node_names(&ctx.net.kubernetes);
    for h in ctx.net.hosts.iter().filter(|h| is_node_host(h, &nodes)) {
        let Some(r) = &h.resolv else { continue };
        let loopback: Vec<_> = r.nameservers.iter().filter(|n| n.addr.is_loopback()).collect();
        let Some(first) = loopback.first() else { continue };
        let node = host_node_name(h);
        let here: Vec<&&Pod> =
            placement.default_pods.iter().filter(|p| p.spec.node_name.as_deref() == Some(node)).collect();
        let placement_known =
            !placement.default_pods.is_empty() && placement.default_pods.iter().all(|p| p.spec.node_name.is_some());
        let stub = if first.addr.to_string() == "127.0.0.53" { " (the systemd-resolved stub)" } else { "" };
        let mut detail = format!(
            "{} names the loopback resolver {}{stub}. CoreDNS runs with dnsPolicy Default, so kubelet gives it \
             the node's resolv.conf, and the Corefile line {line_no} `{line_text}` forwards {} to it: inside \
             the CoreDNS pod 127.0.0.0/8 is the pod itself, so CoreDNS forwards to itself. The loop plugin \
             stops CoreDNS ('plugin/loop: Loop (127.0.0.1:x -> :53) detected', CrashLoopBackOff) and \
             lookups in every pod fail.",
            r.origin,
            first.addr,
            if zone == "." { "every non-cluster name".to_string() } else { format!("zone {zone}") }
        );
        let mut severity = rule.severity;
        if placement_known && here.is_empty() {
            severity = Severity::High;
            let on: Vec<String> = placement
                .default_pods
                .iter()
                .filter_map(|p| p.spec.node_name.as_ref().map(|n| format!("{} on {n}", p.meta.name)))
                .collect();
            detail.push_str(&format!(
                " No CoreDNS pod runs on {node} now ({}); the loop starts when one is scheduled here.",
                list_some(&on, 3)
            ));
        } else if !here.is_empty() {
            let names: Vec<String> = here.iter().map(|p| p.meta.name.clone()).collect();
            detail.push_str(&format!(" CoreDNS pods on this node: {}.", list_some(&names, 3)));
        }
        detail.push_str(
            " kubelet may already read another file (kubeadm sets resolvConf: /run/systemd/resolve/resolv.conf \
             when systemd-resolved runs); check resolvConf in /var/lib/kubelet/config.yaml.",
        );
        let mut evidence = vec![
            Evidence::new(first.origin.clone(), format!("nameserver {}", first.addr)),
            Evidence::new(cm.origin.child(&format!("/data/{key}")), format!("Corefile line {line_no}: {line_text}")),
        ];
        if let Some(p) = here.first().map(|p| **p).or(placement.default_pods.first().copied()) {
            evidence.push(Evidence::new(
                p.origin.child("/spec/dnsPolicy"),
                format!(
                    "pod kube-system/{} dnsPolicy: {}",
                    p.meta.name,
                    p.spec.dns_policy.as_deref().unwrap_or("Default")
                ),
            ));
        } else if let Some(e) = &placement.template_default {
            evidence.push(e.clone());
        }
        let mut f = rule.finding(
            subject(h),
            format!("CoreDNS forwarding loop through {} on {}", first.addr, h.name),
            detail,
            evidence,
            "Give kubelet the real upstream servers: in /var/lib/kubelet/config.yaml set \
             `resolvConf: /run/systemd/resolve/resolv.conf` (or the flag --resolv-conf=/run/systemd/resolve/resolv.conf), \
             `systemctl restart kubelet`, then `kubectl -n kube-system rollout restart deployment coredns`. \
             Or forward to upstream IPs in the Corefile: `forward . 192.0.2.53 192.0.2.54` \
             (kubectl -n kube-system edit configmap coredns).",
            Confidence::Likely,
        );
        f.severity = severity;
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::testkit::*;
    use netsleuth_model::host::HostRole;
    use netsleuth_model::Network;

    fn run(net: &Network, which: usize) -> Vec<Finding> {
        let mut out = Vec::new();
        (RULES[which].check)(&Context { net, now: None }, &RULES[which], &mut out);
        out
    }

    fn with_host(name: &str, role: Option<HostRole>, r: ResolvConf) -> Network {
        let mut h = host(name, role);
        h.resolv = Some(r);
        Network { hosts: vec![h], ..Network::default() }
    }

    #[test]
    fn ndots_five_with_search_domains_is_reported_with_the_amplification() {
        let r = resolv(
            "pod-web",
            &["10.96.0.10"],
            &["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"],
            &["ndots:5"],
        );
        let out = run(&with_host("pod-web", Some(HostRole::Pod), r), 0);
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert_eq!(f.rule, "DNS-001");
        assert_eq!(f.subject, "host/pod-web/resolv.conf");
        assert!(f.detail.contains("(3 + 1) x 2 = 8 queries"), "{}", f.detail);
        assert!(f.detail.contains("6 of them NXDOMAIN"), "{}", f.detail);
        assert_eq!(f.evidence[0].location, Location::line("hosts/pod-web/resolv.conf", 3));
        assert_eq!(f.evidence[1].location, Location::line("hosts/pod-web/resolv.conf", 2));
        assert!(f.fix.contains("dnsConfig"));
    }

    #[test]
    fn low_ndots_or_no_search_is_clean() {
        let r = resolv("n1", &["10.0.0.2"], &["corp.example"], &["ndots:1"]);
        assert!(run(&with_host("n1", None, r), 0).is_empty());
        let r = resolv("n1", &["10.0.0.2"], &[], &["ndots:5"]);
        assert!(run(&with_host("n1", None, r), 0).is_empty());
    }

    #[test]
    fn four_nameservers_are_reported_with_the_dropped_one() {
        let r = resolv("n1", &["10.0.0.2", "10.0.0.3", "10.0.0.4", "1.1.1.1"], &["corp.example"], &[]);
        let out = run(&with_host("n1", Some(HostRole::Node), r), 1);
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert_eq!(f.rule, "DNS-002");
        assert_eq!(f.severity, Severity::Medium);
        assert!(f.detail.contains("4 nameservers"), "{}", f.detail);
        assert!(f.detail.contains("dropped: 1.1.1.1"), "{}", f.detail);
        assert_eq!(f.evidence[0].location, Location::line("hosts/n1/resolv.conf", 4));
    }

    #[test]
    fn search_list_limits_old_new_and_pod_effective() {
        // 7 domains on a gateway: only the old limit applies.
        let d7: Vec<String> = (0..7).map(|i| format!("d{i}.example")).collect();
        let d7r: Vec<&str> = d7.iter().map(String::as_str).collect();
        let out = run(&with_host("gw", Some(HostRole::Gateway), resolv("gw", &["10.0.0.2"], &d7r, &[])), 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].severity, Severity::Low);
        assert!(out[0].detail.contains("7 search domains"), "{}", out[0].detail);
        assert!(out[0].detail.contains("musl"), "{}", out[0].detail);

        // 30 domains on a node: pods get 33, over kubelet's 32.
        let d30: Vec<String> = (0..30).map(|i| format!("d{i}.ex")).collect();
        let d30r: Vec<&str> = d30.iter().map(String::as_str).collect();
        let out = run(&with_host("n1", Some(HostRole::Node), resolv("n1", &["10.0.0.2"], &d30r, &[])), 1);
        assert_eq!(out[0].severity, Severity::Medium);
        assert!(out[0].detail.contains("(33 domains"), "{}", out[0].detail);

        // 4 short domains: fine on a gateway, but pods on a node get 7 (> 6).
        let four = ["a.ex", "b.ex", "c.ex", "d.ex"];
        let out = run(&with_host("gw", Some(HostRole::Gateway), resolv("gw", &["10.0.0.2"], &four, &[])), 1);
        assert!(out.is_empty(), "{out:#?}");
        let out = run(&with_host("n1", Some(HostRole::Node), resolv("n1", &["10.0.0.2"], &four, &[])), 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].severity, Severity::Low);
        assert!(
            out[0].detail.contains("ClusterFirst pods on this node get these plus 3 cluster domains (7 domains"),
            "{}",
            out[0].detail
        );
    }

    fn loop_net(ns: &str, dns_policy: &str, coredns_node: &str) -> Network {
        let mut n = with_host("node-1", Some(HostRole::Node), resolv("node-1", &[ns], &[], &[]));
        n.kubernetes.config_maps.push(config_map(
            "kube-system",
            "coredns",
            &[("Corefile", ".:53 {\n    errors\n    kubernetes cluster.local in-addr.arpa ip6.arpa\n    forward . /etc/resolv.conf {\n       max_concurrent 1000\n    }\n    loop\n}\n")],
        ));
        n.kubernetes.pods.push(
            pod("kube-system", "coredns-5d78-abc", &[("k8s-app", "kube-dns")])
                .dns_policy(dns_policy)
                .node(coredns_node)
                .at("kubernetes/pods.json", "/items/1")
                .build(),
        );
        n
    }

    #[test]
    fn loopback_nameserver_with_forward_to_resolv_conf_is_a_loop() {
        let out = run(&loop_net("127.0.0.53", "Default", "node-1"), 2);
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert_eq!(f.rule, "DNS-003");
        assert_eq!(f.subject, "host/node-1/resolv.conf");
        assert_eq!(f.severity, Severity::Critical);
        assert!(f.detail.contains("127.0.0.53 (the systemd-resolved stub)"), "{}", f.detail);
        assert!(f.detail.contains("line 4 `forward . /etc/resolv.conf`"), "{}", f.detail);
        assert!(f.detail.contains("coredns-5d78-abc"), "{}", f.detail);
        assert_eq!(f.evidence[0].location, Location::line("hosts/node-1/resolv.conf", 1));
        assert_eq!(f.evidence[1].location, Location::json("kubernetes/configmaps.json", "/items/0/data/Corefile"));
        assert_eq!(f.evidence[2].location, Location::json("kubernetes/pods.json", "/items/1/spec/dnsPolicy"));
        assert!(f.fix.contains("resolvConf: /run/systemd/resolve/resolv.conf"));
        // CoreDNS elsewhere: still a latent loop, high.
        let out = run(&loop_net("127.0.0.53", "Default", "node-2"), 2);
        assert_eq!(out[0].severity, Severity::High);
        assert!(out[0].detail.contains("No CoreDNS pod runs on node-1"), "{}", out[0].detail);
    }

    #[test]
    fn real_upstream_or_cluster_first_is_clean() {
        assert!(run(&loop_net("10.0.0.2", "Default", "node-1"), 2).is_empty());
        assert!(run(&loop_net("127.0.0.53", "ClusterFirst", "node-1"), 2).is_empty());
        let mut n = loop_net("127.0.0.53", "Default", "node-1");
        n.kubernetes.config_maps[0].data.insert("Corefile".into(), ".:53 {\n  forward . 8.8.8.8\n}\n".into());
        assert!(run(&n, 2).is_empty());
    }
}
