//! OVL-001, the MTU budget: every tunnel must fit its underlay minus the encapsulation
//! overhead, and every pod-facing interface must fit the smallest tunnel its traffic takes.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use netsleuth_model::host::{Host, HostRole, Interface, InterfaceKind, Route};
use netsleuth_model::{Confidence, Evidence, Finding, Layer, Severity};

use crate::rule::{Context, Rule};
use crate::rules::node::{default_route, is_pod_facing, route_lookup, tunnel_kind};
use crate::rules::wireguard::{effective_interfaces, endpoint_ip};
use crate::support::overlaps;

/// ESP tunnel-mode overhead with an IPv4 outer header: 20 IP + 8 ESP header + 16 IV + up
/// to 17 padding/trailer + 12-16 ICV ≈ 73 bytes for AES-CBC/SHA-256 (Cilium budgets 77).
const ESP_OVERHEAD_V4: u32 = 73;
/// NAT traversal (UDP encapsulation, port 4500) adds a UDP header.
const NAT_T_OVERHEAD: u32 = 8;

pub(crate) const RULES: &[Rule] = &[Rule {
    id: "OVL-001",
    layer: Layer::Overlay,
    severity: Severity::High,
    title: "MTU exceeds the encapsulation budget",
    rationale: "A tunnel adds headers to every packet (VXLAN 50 B, WireGuard 60 B, IPIP 20 B, \
                GRE 24 B over IPv4, 20 B more over IPv6; IPsec ESP ~73 B plus 8 B with NAT-T). If \
                a tunnel's MTU is larger than its underlay's MTU minus that overhead, or a pod's \
                veth is larger than the tunnel its traffic takes, packets close to the MTU are \
                dropped (DF set, ICMP often filtered) or fragmented. Small requests work, large \
                responses, TLS handshakes and kubectl exec hang, and only across nodes: the TCP MSS \
                derived from the larger MTU lets big segments through (FAILURES #1, #18, #47).",
    references: &[
        "projectcalico/calico#12432",
        "cilium/cilium#47176",
        "linuxserver/docker-wireguard#166",
        "https://docs.tigera.io/calico/latest/networking/configuring/mtu",
        "https://docs.cilium.io/en/stable/network/concepts/routing/#mtu",
    ],
    example: "host/node-1/iface/cali3f2a: veth cali3f2a MTU 1500 > vxlan.calico MTU 1450 (= eth0 1500 \
              − VXLAN 50): packets of 1451–1500 bytes are dropped or fragmented; TCP MSS 1460 lets \
              them through",
    check,
}];

/// The device under a tunnel and its MTU.
#[derive(Debug, Clone)]
struct Underlay {
    dev: String,
    mtu: u32,
    /// How the underlay was found, for the detail ("bound device", "route to 203.0.113.5").
    how: String,
    evidence: Vec<Evidence>,
}

/// One encapsulation on a host: an interface, or a policy-based IPsec connection.
#[derive(Debug, Clone)]
struct Tunnel {
    name: String,
    label: &'static str,
    /// The tunnel interface's own MTU (None for policy-based IPsec).
    mtu: Option<u32>,
    evidence: Option<Evidence>,
    overhead: u32,
    v6: bool,
    underlay: Option<Underlay>,
    /// Policy-based IPsec: only traffic from these local selectors takes the tunnel.
    only_from: Option<Vec<IpNet>>,
    /// Whether it is a WireGuard device (for the wg-quick `MTU =` hint).
    wireguard: bool,
}

impl Tunnel {
    fn budget(&self) -> Option<u32> {
        self.underlay.as_ref().and_then(|u| u.mtu.checked_sub(self.overhead))
    }

    /// The largest inner packet that passes: its own MTU, capped by the budget.
    fn limit(&self) -> Option<u32> {
        match (self.mtu, self.budget()) {
            (Some(m), Some(b)) => Some(m.min(b)),
            (m, b) => m.or(b),
        }
    }

    fn overhead_text(&self) -> String {
        format!("{}{} {}", self.label, if self.v6 { " (IPv6 outer)" } else { "" }, self.overhead)
    }

    /// "vxlan0 MTU 1450 (= eth0 1500 − VXLAN 50)" and its variants.
    fn describe_limit(&self) -> String {
        let budget = self.underlay.as_ref().zip(self.budget());
        match (self.mtu, budget) {
            (Some(m), Some((u, b))) if m == b => {
                format!("{} MTU {m} (= {} {} − {})", self.name, u.dev, u.mtu, self.overhead_text())
            }
            (Some(m), Some((u, b))) if m < b => {
                format!("{} MTU {m} (budget {} {} − {} = {b})", self.name, u.dev, u.mtu, self.overhead_text())
            }
            (Some(m), Some((u, b))) => format!(
                "{} effective {b} (= {} {} − {}; its own MTU {m} is too large, see the OVL-001 finding on it)",
                self.name,
                u.dev,
                u.mtu,
                self.overhead_text()
            ),
            (None, Some((u, b))) => format!("{} {b} (= {} {} − {})", self.name, u.dev, u.mtu, self.overhead_text()),
            (Some(m), None) => format!("{} MTU {m}", self.name),
            (None, None) => self.name.clone(),
        }
    }
}

fn iface_evidence(i: &Interface) -> Option<Evidence> {
    i.mtu.map(|m| Evidence::new(i.origin.clone(), format!("{} mtu {m}", i.name)))
}

/// The underlay through `dev`, optionally reached by `route` (whose own `mtu` may be lower).
fn underlay_via(host: &Host, dev: &str, route: Option<&Route>, how: String) -> Option<Underlay> {
    let iface = host.interface(dev)?;
    let mut mtu = iface.mtu?;
    let mut evidence: Vec<Evidence> = iface_evidence(iface).into_iter().collect();
    if let Some(r) = route {
        if let Some(rm) = r.mtu.filter(|rm| *rm < mtu) {
            mtu = rm;
        }
        evidence.push(Evidence::new(
            r.origin.clone(),
            format!("{} dev {dev}{}", r.dst, r.mtu.map(|m| format!(" mtu {m}")).unwrap_or_default()),
        ));
    }
    Some(Underlay { dev: dev.to_string(), mtu, how, evidence })
}

fn default_underlay(host: &Host, exclude: &str) -> Option<(Underlay, bool)> {
    for v6 in [false, true] {
        if let Some(r) = default_route(host, v6) {
            if let Some(dev) = r.dev.as_deref().filter(|d| *d != exclude) {
                if let Some(u) = underlay_via(host, dev, Some(r), "the default-route interface".to_string()) {
                    return Some((u, v6));
                }
            }
        }
    }
    None
}

/// The underlay to a remote address: the device of the route to it (not the tunnel itself).
fn underlay_to(host: &Host, ip: IpAddr, fwmark: Option<u32>, exclude: &str) -> Option<Underlay> {
    let r = route_lookup(host, ip, fwmark)?;
    let dev = r.dev.as_deref().filter(|d| *d != exclude)?;
    underlay_via(host, dev, Some(r), format!("the route to {ip}"))
}

/// Every encapsulation of a host with its underlay.
fn tunnels(host: &Host) -> Vec<Tunnel> {
    let mut out = Vec::new();
    let wgs = effective_interfaces(host);
    for iface in host.interfaces.iter().filter(|i| i.up) {
        let Some(label) = tunnel_kind(host, iface) else { continue };
        let wireguard = label == "WireGuard";
        let (underlay, v6) = match &iface.kind {
            InterfaceKind::Vxlan { dev, local, .. } => {
                let v6 = local.is_some_and(|l| l.is_ipv6());
                let bound = dev.as_deref().and_then(|d| underlay_via(host, d, None, "the bound device".to_string()));
                let by_local = || {
                    let l = (*local)?;
                    let owner = host.interfaces.iter().find(|i| i.addresses.iter().any(|a| a.addr() == l))?;
                    underlay_via(host, &owner.name, None, format!("the interface holding local {l}"))
                };
                match bound.or_else(by_local) {
                    Some(u) => (Some(u), v6),
                    None => default_underlay(host, &iface.name).map_or((None, v6), |(u, v)| (Some(u), v)),
                }
            }
            _ if wireguard => {
                // The tightest path among the peers' endpoints.
                let wg = wgs.iter().find(|w| w.name == iface.name);
                let best = wg
                    .into_iter()
                    .flat_map(|w| w.peers.iter().filter_map(move |p| Some((w, endpoint_ip(p.endpoint.as_deref()?)?))))
                    .filter_map(|(w, ip)| {
                        let u = underlay_to(host, ip, w.fwmark, &iface.name)?;
                        Some((u, ip.is_ipv6()))
                    })
                    .min_by_key(|(u, v6)| {
                        u.mtu.saturating_sub(InterfaceKind::WireGuard.encapsulation_overhead(*v6).unwrap_or(60))
                    });
                match best {
                    Some((u, v6)) => (Some(u), v6),
                    None => default_underlay(host, &iface.name).map_or((None, false), |(u, v)| (Some(u), v)),
                }
            }
            _ => default_underlay(host, &iface.name).map_or((None, false), |(u, v)| (Some(u), v)),
        };
        let overhead = if wireguard {
            InterfaceKind::WireGuard.encapsulation_overhead(v6)
        } else {
            iface.kind.encapsulation_overhead(v6)
        };
        let Some(overhead) = overhead else { continue };
        out.push(Tunnel {
            name: iface.name.clone(),
            label,
            mtu: iface.mtu,
            evidence: iface_evidence(iface),
            overhead,
            v6,
            underlay,
            only_from: None,
            wireguard,
        });
    }
    out.extend(ipsec_tunnels(host));
    out
}

/// IPsec: route-based (vti/xfrm interfaces) or, without such interfaces, one tunnel per
/// connection that applies to traffic from its local traffic selectors.
fn ipsec_tunnels(host: &Host) -> Vec<Tunnel> {
    let conns = &host.ipsec.connections;
    if conns.is_empty() {
        return Vec::new();
    }
    let encap = conns.iter().any(|c| c.encap == Some(true));
    let remote = |c: &netsleuth_model::ipsec::IpsecConnection| -> Option<IpAddr> {
        c.remote_addrs.iter().find_map(|a| a.trim().parse::<IpAddr>().ok())
    };
    let overhead =
        |v6: bool, encap: bool| ESP_OVERHEAD_V4 + if v6 { 20 } else { 0 } + if encap { NAT_T_OVERHEAD } else { 0 };
    let label = |encap: bool| if encap { "ESP+NAT-T" } else { "ESP" };
    let route_based: Vec<&Interface> = host
        .interfaces
        .iter()
        .filter(|i| {
            i.up && matches!(&i.kind, InterfaceKind::Other { name } if matches!(name.as_str(), "vti" | "vti6" | "xfrm"))
        })
        .collect();
    if !route_based.is_empty() {
        let target = conns.iter().find_map(remote);
        return route_based
            .into_iter()
            .map(|i| {
                let v6 = target.is_some_and(|t| t.is_ipv6());
                let underlay = target
                    .and_then(|t| underlay_to(host, t, None, &i.name))
                    .or_else(|| default_underlay(host, &i.name).map(|(u, _)| u));
                Tunnel {
                    name: i.name.clone(),
                    label: label(encap),
                    mtu: i.mtu,
                    evidence: iface_evidence(i),
                    overhead: overhead(v6, encap),
                    v6,
                    underlay,
                    only_from: None,
                    wireguard: false,
                }
            })
            .collect();
    }
    conns
        .iter()
        .filter_map(|c| {
            let t = remote(c)?;
            let local: Vec<IpNet> = c
                .children
                .iter()
                .flat_map(|ch| ch.local_ts.iter())
                .filter_map(|ts| ts.split('[').next().and_then(|b| b.trim().parse::<IpNet>().ok()))
                .collect();
            if local.is_empty() {
                return None;
            }
            let enc = c.encap == Some(true);
            Some(Tunnel {
                name: format!("IPsec {}", c.name),
                label: label(enc),
                mtu: None,
                evidence: Some(Evidence::new(c.origin.clone(), format!("connection {} remote_addrs {t}", c.name))),
                overhead: overhead(t.is_ipv6(), enc),
                v6: t.is_ipv6(),
                underlay: underlay_to(host, t, None, ""),
                only_from: Some(local),
                wireguard: false,
            })
        })
        .collect()
}

/// The CNI-specific way to set the pod MTU.
fn cni_hint(host: &Host, n: u32) -> String {
    let types: Vec<&str> = host.cni.iter().flat_map(|c| c.plugins.iter().map(|p| p.plugin_type.as_str())).collect();
    let has_iface = |p: &str| host.interfaces.iter().any(|i| i.name.starts_with(p));
    if types.contains(&"calico") || has_iface("cali") {
        format!(
            "Calico: set the MTU to {n} (operator: Installation spec.calicoNetwork.mtu: {n}; manifests: ConfigMap \
             calico-config veth_mtu: \"{n}\" and FELIX_VXLANMTU / FELIX_IPINIPMTU / FELIX_WIREGUARDMTU), then \
             restart calico-node and recreate the pods"
        )
    } else if types.contains(&"cilium-cni") || has_iface("lxc") || has_iface("cilium_") {
        format!("Cilium: set `--mtu {n}` (Helm `MTU={n}`), restart the cilium agents and recreate the pods")
    } else if types.contains(&"flannel") || has_iface("flannel") {
        format!(
            "Flannel: flanneld derives FLANNEL_MTU in /run/flannel/subnet.env from the backend device; fix the \
             underlay (`--iface`) or set `\"mtu\": {n}` in the CNI config, then recreate the pods"
        )
    } else {
        format!("set `\"mtu\": {n}` in the CNI config in /etc/cni/net.d and recreate the pods")
    }
}

/// What a host's pods are limited to: the smallest tunnel that carries all pod traffic.
#[derive(Debug, Clone)]
struct PodLimit {
    limit: u32,
    tunnel: Tunnel,
}

fn overlay_limit(tunnels: &[Tunnel]) -> Option<PodLimit> {
    tunnels
        .iter()
        .filter(|t| t.only_from.is_none())
        .filter_map(|t| Some(PodLimit { limit: t.limit()?, tunnel: t.clone() }))
        .min_by_key(|p| p.limit)
}

/// The limit for a pod interface whose pod addresses are `prefixes`: the overlay limit, or a
/// policy-based IPsec tunnel whose local selectors cover them, whichever is smaller.
fn limit_for(tunnels: &[Tunnel], overlay: Option<&PodLimit>, prefixes: &[IpNet]) -> Option<PodLimit> {
    let ipsec = tunnels
        .iter()
        .filter(|t| t.only_from.as_ref().is_some_and(|ts| ts.iter().any(|s| prefixes.iter().any(|p| overlaps(s, p)))))
        .filter_map(|t| Some(PodLimit { limit: t.limit()?, tunnel: t.clone() }));
    overlay.cloned().into_iter().chain(ipsec).min_by_key(|p| p.limit)
}

fn too_big_text(mtu: u32, limit: u32) -> String {
    format!(
        "packets of {}–{mtu} bytes are dropped or fragmented; TCP MSS {} lets them through",
        limit.saturating_add(1),
        mtu.saturating_sub(40)
    )
}

fn check(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    // Pass 1: nodes' tunnels and pod limits, by host name and by Kubernetes node name.
    let mut limits: HashMap<&str, PodLimit> = HashMap::new();
    for host in &ctx.net.hosts {
        if host.role == Some(HostRole::Pod) {
            continue;
        }
        let tuns = tunnels(host);
        if tuns.is_empty() {
            continue;
        }
        check_tunnels(rule, host, &tuns, out);
        let overlay = overlay_limit(&tuns);
        check_pod_facing(rule, host, &tuns, overlay.as_ref(), out);
        if let Some(o) = overlay {
            check_cni(rule, host, &o, out);
            // A node host may name its Kubernetes Node differently from its folder.
            if let Some(n) = host.node.as_deref().filter(|_| host.role == Some(HostRole::Node)) {
                limits.entry(n).or_insert_with(|| o.clone());
            }
            limits.insert(host.name.as_str(), o);
        }
    }
    // Pass 2: pod network namespaces against their node's overlay.
    for host in ctx.net.hosts.iter().filter(|h| h.role == Some(HostRole::Pod)) {
        let Some(node) = host.node.as_deref() else { continue };
        let Some(pl) = limits.get(node) else { continue };
        check_pod_host(rule, host, node, pl, out);
    }
}

fn check_tunnels(rule: &Rule, host: &Host, tuns: &[Tunnel], out: &mut Vec<Finding>) {
    for t in tuns {
        let (Some(m), Some(b), Some(u)) = (t.mtu, t.budget(), t.underlay.as_ref()) else { continue };
        if m <= b {
            continue;
        }
        let mut ev: Vec<Evidence> = t.evidence.clone().into_iter().collect();
        ev.extend(u.evidence.iter().cloned());
        let mut fix = format!("ip link set dev {} mtu {b}", t.name);
        if t.wireguard {
            fix.push_str(&format!(" and set `MTU = {b}` in the [Interface] section of /etc/wireguard/{}.conf", t.name));
        }
        fix.push_str(&format!("; pod-facing MTUs must then be ≤ {b} too ({})", cni_hint(host, b)));
        out.push(rule.finding(
            format!("{}/iface/{}", host.subject(), t.name),
            format!("{} MTU {m} exceeds its underlay budget {b}", t.name),
            format!(
                "{} {} MTU {m} > {} {} − {} = {b} (underlay found as {}): encapsulated packets of {}–{m} bytes inner \
                 size exceed {} on the wire and are dropped (DF) or fragmented; TCP MSS {} lets them through",
                t.label,
                t.name,
                u.dev,
                u.mtu,
                t.overhead_text(),
                u.how,
                b.saturating_add(1),
                u.dev,
                m.saturating_sub(40)
            ),
            ev,
            fix,
            Confidence::Likely,
        ));
    }
}

/// Routes via an interface and its own addresses: where its pods' addresses live.
fn iface_prefixes(host: &Host, iface: &Interface) -> Vec<IpNet> {
    let mut v: Vec<IpNet> =
        host.routes.iter().filter(|r| r.dev.as_deref() == Some(&iface.name)).map(|r| r.dst).collect();
    v.extend(iface.addresses.iter().copied());
    v
}

fn check_pod_facing(rule: &Rule, host: &Host, tuns: &[Tunnel], overlay: Option<&PodLimit>, out: &mut Vec<Finding>) {
    // Cilium leaves veths at the device MTU and clamps with per-route MTUs instead.
    let route_mtu_clamp = |limit: u32| host.routes.iter().any(|r| r.mtu.is_some_and(|m| m <= limit));
    let has_ipsec_policy = tuns.iter().any(|t| t.only_from.is_some());
    // Group offenders by (MTU, tunnel) so a node with 100 pods gives one finding.
    let mut groups: Vec<(u32, PodLimit, Vec<&Interface>)> = Vec::new();
    for iface in host.interfaces.iter().filter(|i| i.up && is_pod_facing(host, i)) {
        let Some(m) = iface.mtu else { continue };
        let pl =
            if has_ipsec_policy { limit_for(tuns, overlay, &iface_prefixes(host, iface)) } else { overlay.cloned() };
        let Some(pl) = pl else { continue };
        if m <= pl.limit || (iface.name.starts_with("lxc") && route_mtu_clamp(pl.limit)) {
            continue;
        }
        match groups.iter_mut().find(|(gm, gp, _)| *gm == m && gp.tunnel.name == pl.tunnel.name) {
            Some(g) => g.2.push(iface),
            None => groups.push((m, pl, vec![iface])),
        }
    }
    for (m, pl, ifaces) in groups {
        let names: Vec<&str> = ifaces.iter().map(|i| i.name.as_str()).collect();
        let (subject, who) = match ifaces.as_slice() {
            [one] => (format!("{}/iface/{}", host.subject(), one.name), format!("{} {}", one.kind.name(), one.name)),
            _ => {
                let shown = names.iter().take(5).copied().collect::<Vec<_>>().join(", ");
                let more = names.len().saturating_sub(5);
                (
                    format!("{}/pod-interfaces", host.subject()),
                    format!(
                        "{} pod-facing interfaces ({shown}{})",
                        names.len(),
                        if more > 0 { format!(" and {more} more") } else { String::new() }
                    ),
                )
            }
        };
        let mut ev: Vec<Evidence> = ifaces.iter().take(5).filter_map(|i| iface_evidence(i)).collect();
        ev.extend(pl.tunnel.evidence.clone());
        ev.extend(pl.tunnel.underlay.iter().flat_map(|u| u.evidence.iter().cloned()));
        let first = names.first().copied().unwrap_or_default();
        out.push(rule.finding(
            subject,
            format!("Pod MTU {m} exceeds the tunnel MTU {} on {}", pl.limit, host.name),
            format!(
                "{who} MTU {m} > {}: {} (through {})",
                pl.tunnel.describe_limit(),
                too_big_text(m, pl.limit),
                pl.tunnel.name
            ),
            ev,
            format!(
                "{}; immediate relief: `ip link set dev {first} mtu {}` on the node and the same for eth0 inside \
                 each pod's namespace",
                cni_hint(host, pl.limit),
                pl.limit
            ),
            Confidence::Likely,
        ));
    }
}

fn check_cni(rule: &Rule, host: &Host, pl: &PodLimit, out: &mut Vec<Finding>) {
    for cfg in &host.cni {
        for p in &cfg.plugins {
            let Some(m) = p.mtu.filter(|m| *m > pl.limit) else { continue };
            let mut ev =
                vec![Evidence::new(p.origin.clone(), format!("\"type\": \"{}\", \"mtu\": {m}", p.plugin_type))];
            ev.extend(pl.tunnel.evidence.clone());
            // `file` may be the bundle path; the subject names the file inside cni/.
            let file = cfg.file.rsplit('/').next().unwrap_or(&cfg.file);
            out.push(rule.finding(
                format!("{}/cni/{file}", host.subject()),
                format!("CNI MTU {m} exceeds the tunnel MTU {} on {}", pl.limit, host.name),
                format!(
                    "{} plugin in {} sets mtu {m} > {}: every new pod gets an interface that is too large; {}",
                    p.plugin_type,
                    file,
                    pl.tunnel.describe_limit(),
                    too_big_text(m, pl.limit)
                ),
                ev,
                format!("set `\"mtu\": {}` in {file} ({})", pl.limit, cni_hint(host, pl.limit)),
                Confidence::Likely,
            ));
        }
    }
}

fn check_pod_host(rule: &Rule, host: &Host, node: &str, pl: &PodLimit, out: &mut Vec<Finding>) {
    for iface in host.interfaces.iter().filter(|i| i.up && i.kind != InterfaceKind::Loopback) {
        let Some(m) = iface.mtu.filter(|m| *m > pl.limit) else { continue };
        // A per-route MTU on the pod's default route (Cilium's route MTU) clamps it.
        let clamped = host
            .routes
            .iter()
            .filter(|r| r.dev.as_deref() == Some(&iface.name) && r.dst.prefix_len() == 0)
            .any(|r| r.mtu.is_some_and(|rm| rm <= pl.limit));
        if clamped {
            continue;
        }
        let mut ev: Vec<Evidence> = iface_evidence(iface).into_iter().collect();
        ev.extend(pl.tunnel.evidence.clone());
        ev.extend(pl.tunnel.underlay.iter().flat_map(|u| u.evidence.iter().cloned()));
        let pod = host.pod.as_deref().unwrap_or(&host.name);
        out.push(rule.finding(
            format!("{}/iface/{}", host.subject(), iface.name),
            format!("Pod {pod} MTU {m} exceeds its node's tunnel MTU {}", pl.limit),
            format!(
                "{} of pod {pod} MTU {m} > node {node}'s {}: {}",
                iface.name,
                pl.tunnel.describe_limit(),
                too_big_text(m, pl.limit)
            ),
            ev,
            format!(
                "set the CNI MTU to {} and recreate the pod (immediate relief: `ip link set dev {} mtu {}` inside \
                 the pod's namespace)",
                pl.limit, iface.name, pl.limit
            ),
            Confidence::Likely,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::node::testkit::*;
    use netsleuth_model::host::{CniConfig, CniPlugin};
    use netsleuth_model::ipsec::{IpsecChild, IpsecConnection};
    use netsleuth_model::wireguard::{WireGuardInterface, WireGuardPeer};
    use netsleuth_model::Location;

    fn vxlan(dev: Option<&str>) -> InterfaceKind {
        InterfaceKind::Vxlan { vni: Some(1), port: Some(4789), local: None, dev: dev.map(str::to_string) }
    }

    fn node(name: &str, eth_mtu: u32, vx_mtu: u32) -> Host {
        let mut h = host(name);
        h.role = Some(HostRole::Node);
        h.interfaces.push(iface(name, 1, "eth0", InterfaceKind::Physical, eth_mtu, &["192.168.1.10/24"]));
        h.interfaces.push(iface(name, 2, "vxlan0", vxlan(Some("eth0")), vx_mtu, &["10.244.1.0/32"]));
        h.routes.routes.push(route(name, 0, "0.0.0.0/0", Some("eth0"), Some("192.168.1.1")));
        h
    }

    fn veth(h: &mut Host, idx: u32, name: &str, mtu: u32) {
        let n = h.name.clone();
        h.interfaces.push(iface(&n, idx, name, InterfaceKind::Veth, mtu, &[]));
    }

    #[test]
    fn veth_larger_than_vxlan_is_reported_with_numbers() {
        let mut h = node("n1", 1500, 1450);
        veth(&mut h, 5, "pod-a", 1500);
        veth(&mut h, 6, "pod-b", 1450);
        let out = run(&RULES[0], &net(vec![h]), None);
        assert_eq!(out.len(), 1, "{out:?}");
        let f = &out[0];
        assert_eq!(f.rule, "OVL-001");
        assert_eq!(f.subject, "host/n1/iface/pod-a");
        assert_eq!(
            f.detail,
            "veth pod-a MTU 1500 > vxlan0 MTU 1450 (= eth0 1500 − VXLAN 50): packets of 1451–1500 bytes are dropped \
             or fragmented; TCP MSS 1460 lets them through (through vxlan0)"
        );
        assert_eq!(f.evidence[0].location, Location::json("hosts/n1/ip-link.json", "/5"));
        assert_eq!(f.evidence[0].excerpt, "pod-a mtu 1500");
        assert_eq!(f.evidence[1].excerpt, "vxlan0 mtu 1450");
        assert!(f.fix.contains("ip link set dev pod-a mtu 1450"), "{}", f.fix);
    }

    #[test]
    fn tunnel_above_underlay_budget_and_grouped_pods() {
        // Azure-like underlay of 1400 with a VXLAN left at 1450.
        let mut h = node("n2", 1400, 1450);
        for i in 0..7 {
            veth(&mut h, 10 + i, &format!("cali{i}"), 1450);
        }
        let out = run(&RULES[0], &net(vec![h]), None);
        assert_eq!(out.len(), 2, "{out:?}");
        let t = out.iter().find(|f| f.subject == "host/n2/iface/vxlan0").expect("tunnel finding");
        assert!(t.detail.contains("VXLAN vxlan0 MTU 1450 > eth0 1400 − VXLAN 50 = 1350"), "{}", t.detail);
        assert!(t.fix.starts_with("ip link set dev vxlan0 mtu 1350"), "{}", t.fix);
        assert!(t.fix.contains("Calico"), "{}", t.fix);
        let p = out.iter().find(|f| f.subject == "host/n2/pod-interfaces").expect("grouped pods");
        assert!(
            p.detail.starts_with("7 pod-facing interfaces (cali0, cali1, cali2, cali3, cali4 and 2 more) MTU 1450"),
            "{}",
            p.detail
        );
        assert!(p.detail.contains("vxlan0 effective 1350"), "{}", p.detail);
    }

    #[test]
    fn consistent_mtus_are_fine() {
        let mut h = node("n3", 1500, 1450);
        veth(&mut h, 5, "pod-a", 1450);
        // A jumbo underlay with a standard-size tunnel.
        let mut j = node("n4", 9001, 8951);
        veth(&mut j, 5, "pod-a", 8951);
        assert!(run(&RULES[0], &net(vec![h, j]), None).is_empty());
    }

    fn wg_host(ep: &str) -> Host {
        let mut h = host("gw");
        h.interfaces.push(iface("gw", 1, "eth0", InterfaceKind::Physical, 1500, &["192.168.1.2/24"]));
        h.interfaces.push(iface("gw", 2, "ens5", InterfaceKind::Physical, 1400, &["2001:db8::2/64"]));
        // wireguard-go: a tun device named like the WireGuard interface.
        h.interfaces.push(iface("gw", 3, "wg0", InterfaceKind::Tun, 1420, &["10.8.0.1/24"]));
        h.routes.routes.push(route("gw", 0, "0.0.0.0/0", Some("eth0"), Some("192.168.1.1")));
        h.routes.routes.push(route("gw", 1, "2001:db8::/64", Some("ens5"), None));
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
                public_key: "PEERkey=".into(),
                preshared_key: None,
                endpoint: Some(ep.into()),
                allowed_ips: vec!["10.9.0.0/16".parse().unwrap()],
                latest_handshake: None,
                rx_bytes: None,
                tx_bytes: None,
                persistent_keepalive: None,
                origin: Location::line("hosts/gw/wg-dump.txt", 2),
            }],
            origin: Location::line("hosts/gw/wg-dump.txt", 1),
            from_runtime: true,
        });
        h
    }

    #[test]
    fn wireguard_tun_over_ipv6_endpoint_uses_80_bytes() {
        let out = run(&RULES[0], &net(vec![wg_host("[2001:db8::9]:51820")]), None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].subject, "host/gw/iface/wg0");
        assert!(
            out[0].detail.contains("wg0 MTU 1420 > ens5 1400 − WireGuard (IPv6 outer) 80 = 1320"),
            "{}",
            out[0].detail
        );
        assert!(out[0].detail.contains("the route to 2001:db8::9"), "{}", out[0].detail);
        assert!(out[0].fix.contains("`MTU = 1320`"), "{}", out[0].fix);
        assert_eq!(out[0].evidence[1].location, Location::json("hosts/gw/ip-link.json", "/2"));
        // Over the IPv4 endpoint via eth0 1500: 1420 ≤ 1440, fine.
        assert!(run(&RULES[0], &net(vec![wg_host("203.0.113.5:51820")]), None).is_empty());
    }

    #[test]
    fn pod_namespace_against_node_overlay_and_cni() {
        let mut n = node("n5", 1500, 1450);
        n.cni.push(CniConfig {
            file: "10-flannel.conflist".into(),
            name: Some("cbr0".into()),
            cni_version: None,
            plugins: vec![CniPlugin {
                plugin_type: "flannel".into(),
                mtu: Some(1500),
                ipam: None,
                origin: Location::json("hosts/n5/cni/10-flannel.conflist", "/plugins/0"),
            }],
            origin: Location::file("hosts/n5/cni/10-flannel.conflist"),
        });
        let mut pod = host("pod-web");
        pod.role = Some(HostRole::Pod);
        pod.node = Some("n5".into());
        pod.pod = Some("prod/web-1".into());
        pod.interfaces.push(iface("pod-web", 1, "lo", InterfaceKind::Loopback, 65536, &["127.0.0.1/8"]));
        pod.interfaces.push(iface("pod-web", 2, "eth0", InterfaceKind::Veth, 1500, &["10.244.1.5/24"]));
        let out = run(&RULES[0], &net(vec![n, pod]), None);
        assert_eq!(out.len(), 2, "{out:?}");
        let c = out.iter().find(|f| f.subject == "host/n5/cni/10-flannel.conflist").expect("cni finding");
        assert!(c.detail.contains("sets mtu 1500 > vxlan0 MTU 1450"), "{}", c.detail);
        assert!(c.fix.contains("Flannel"), "{}", c.fix);
        let p = out.iter().find(|f| f.subject == "host/pod-web/iface/eth0").expect("pod finding");
        assert!(p.detail.contains("eth0 of pod prod/web-1 MTU 1500 > node n5's vxlan0 MTU 1450"), "{}", p.detail);
        assert_eq!(p.evidence[0].location, Location::json("hosts/pod-web/ip-link.json", "/2"));
    }

    #[test]
    fn policy_ipsec_limits_only_pods_inside_local_ts() {
        let mut h = host("gw");
        h.interfaces.push(iface("gw", 1, "eth0", InterfaceKind::Physical, 1500, &["198.51.100.2/24"]));
        h.routes.routes.push(route("gw", 0, "0.0.0.0/0", Some("eth0"), Some("198.51.100.1")));
        h.interfaces.push(iface("gw", 4, "veth1", InterfaceKind::Veth, 1500, &[]));
        h.routes.routes.push(route("gw", 1, "10.1.0.5/32", Some("veth1"), None));
        h.interfaces.push(iface("gw", 5, "veth2", InterfaceKind::Veth, 1500, &[]));
        h.routes.routes.push(route("gw", 2, "172.20.0.5/32", Some("veth2"), None));
        h.ipsec.connections.push(IpsecConnection {
            name: "site-b".into(),
            version: 2,
            local_addrs: vec![],
            remote_addrs: vec!["203.0.113.7".into()],
            proposals: vec![],
            local_auth: vec![],
            remote_auth: vec![],
            children: vec![IpsecChild {
                name: "net".into(),
                local_ts: vec!["10.1.0.0/16".into()],
                remote_ts: vec!["10.2.0.0/16".into()],
                esp_proposals: vec![],
                mode: None,
                rekey_time: None,
                life_time: None,
                start_action: None,
                dpd_action: None,
                close_action: None,
                settings: Default::default(),
                origin: Location::line("hosts/gw/swanctl/swanctl.conf", 9),
            }],
            rekey_time: None,
            reauth_time: None,
            over_time: None,
            dpd_delay: None,
            dpd_timeout: None,
            encap: Some(true),
            mobike: None,
            settings: Default::default(),
            origin: Location::line("hosts/gw/swanctl/swanctl.conf", 2),
        });
        let out = run(&RULES[0], &net(vec![h]), None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].subject, "host/gw/iface/veth1");
        assert!(out[0].detail.contains("IPsec site-b 1419 (= eth0 1500 − ESP+NAT-T 81)"), "{}", out[0].detail);
    }

    #[test]
    fn cilium_route_mtu_clamps_lxc_devices() {
        let mut h = host("n6");
        h.role = Some(HostRole::Node);
        h.interfaces.push(iface("n6", 1, "eth0", InterfaceKind::Physical, 1500, &["192.168.1.16/24"]));
        h.interfaces.push(iface("n6", 2, "cilium_vxlan", vxlan(None), 1500, &[]));
        h.interfaces.push(iface("n6", 3, "lxc12ab", InterfaceKind::Veth, 1500, &[]));
        h.routes.routes.push(route("n6", 0, "0.0.0.0/0", Some("eth0"), Some("192.168.1.1")));
        // cilium_vxlan itself at 1500 exceeds 1450: reported; the lxc device is clamped by route MTU.
        let mut r = route("n6", 1, "10.0.2.0/24", Some("cilium_host"), None);
        r.mtu = Some(1450);
        h.routes.routes.push(r);
        let out = run(&RULES[0], &net(vec![h.clone()]), None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].subject, "host/n6/iface/cilium_vxlan");
        // Without the route MTU the lxc device is reported too.
        h.routes.routes.pop();
        let out = run(&RULES[0], &net(vec![h]), None);
        assert!(out.iter().any(|f| f.subject == "host/n6/iface/lxc12ab"), "{out:?}");
    }
}
