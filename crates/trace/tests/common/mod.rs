//! Builders for small in-memory networks used by the trace tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use netsleuth_model::firewall::{Chain, FirewallRule, FirewallSource, FirewallTable, Hook, Match, Ruleset, Verdict};
use netsleuth_model::host::{
    Host, HostRole, Interface, InterfaceKind, Route, RouteType, RoutingRule, RuleAction, SysctlValue,
};
use netsleuth_model::kubernetes::{Container, ContainerPort, ObjectMeta, Pod, PodSpec};
use netsleuth_model::wireguard::{WireGuardInterface, WireGuardPeer};
use netsleuth_model::Location;
use netsleuth_trace::path::{Action, Destination, DispositionKind, Endpoint, Trace, TraceOptions};

pub(crate) fn loc(host: &str, file: &str, line: u32) -> Location {
    Location::line(format!("hosts/{host}/{file}"), line)
}

pub(crate) fn host(name: &str) -> Host {
    let mut h = Host { name: name.into(), role: Some(HostRole::Gateway), ..Host::default() };
    h.sysctls
        .values
        .insert("net.ipv4.ip_forward".into(), SysctlValue { value: "1".into(), origin: loc(name, "sysctl.txt", 1) });
    h.artifacts.push(format!("hosts/{name}/sysctl.txt"));
    h
}

pub(crate) fn iface(h: &mut Host, name: &str, kind: InterfaceKind, addrs: &[&str]) {
    let origin = Location::json(format!("hosts/{}/ip-addr.json", h.name), format!("/{}", h.interfaces.len()));
    h.interfaces.push(Interface {
        index: Some(h.interfaces.len() as u32 + 1),
        name: name.into(),
        kind,
        mtu: Some(1500),
        up: true,
        mac: None,
        addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        master: None,
        link: None,
        link_netnsid: None,
        origin,
    });
}

pub(crate) fn route(h: &mut Host, table: u32, dst: &str, via: Option<&str>, dev: Option<&str>, kind: RouteType) {
    let dst = if dst == "default" { "0.0.0.0/0" } else { dst };
    let origin = Location::json(format!("hosts/{}/ip-route.json", h.name), format!("/{}", h.routes.routes.len()));
    h.routes.routes.push(Route {
        table,
        table_name: None,
        route_type: kind,
        dst: dst.parse().unwrap(),
        gateway: via.map(|v| v.parse().unwrap()),
        dev: dev.map(str::to_string),
        prefsrc: None,
        metric: None,
        protocol: None,
        scope: None,
        mtu: None,
        origin,
    });
}

pub(crate) fn rule(h: &mut Host, priority: u32, from: Option<&str>, table: Option<u32>, action: RuleAction) {
    let origin = Location::json(format!("hosts/{}/ip-rule.json", h.name), format!("/{}", h.rules.len()));
    h.rules.push(RoutingRule {
        priority,
        family: None,
        not: false,
        from: from.map(|f| f.parse().unwrap()),
        to: None,
        fwmark: None,
        fwmask: None,
        iif: None,
        oif: None,
        table,
        table_name: None,
        action,
        origin,
    });
}

pub(crate) fn default_rules(h: &mut Host) {
    rule(h, 0, None, Some(255), RuleAction::ToTable);
    rule(h, 32766, None, Some(254), RuleAction::ToTable);
    rule(h, 32767, None, Some(253), RuleAction::ToTable);
}

pub(crate) fn fw_rule(text: &str, matches: Vec<Match>, verdict: Option<Verdict>, line: u32) -> FirewallRule {
    FirewallRule {
        matches,
        verdict,
        counters: None,
        comment: None,
        text: text.into(),
        origin: Location::line("hosts/x/iptables-save.txt", line),
    }
}

pub(crate) fn chain(name: &str, hook: Option<Hook>, policy: Option<Verdict>, rules: Vec<FirewallRule>) -> Chain {
    Chain {
        name: name.into(),
        hook,
        chain_type: Some("filter".into()),
        priority: Some(0),
        policy,
        rules,
        counters: None,
        origin: Location::line("hosts/x/iptables-save.txt", 1),
    }
}

pub(crate) fn ruleset(source: FirewallSource, family: &str, table: &str, chains: Vec<Chain>) -> Ruleset {
    Ruleset {
        source,
        tables: vec![FirewallTable { family: family.into(), name: table.into(), chains }],
        origin: Location::file("hosts/x/fw"),
    }
}

pub(crate) fn wg(h: &mut Host, name: &str, public: &str, port: u16, peers: Vec<WireGuardPeer>) {
    let origin = loc(&h.name, "wg-dump.txt", 1);
    h.wireguard.push(WireGuardInterface {
        name: name.into(),
        private_key: None,
        public_key: Some(public.into()),
        listen_port: Some(port),
        fwmark: None,
        addresses: Vec::new(),
        mtu: None,
        table: None,
        peers,
        origin,
        from_runtime: true,
    });
}

pub(crate) fn peer(key: &str, endpoint: Option<&str>, allowed: &[&str]) -> WireGuardPeer {
    WireGuardPeer {
        public_key: key.into(),
        preshared_key: None,
        endpoint: endpoint.map(str::to_string),
        allowed_ips: allowed.iter().map(|a| a.parse().unwrap()).collect(),
        latest_handshake: Some(1_700_000_000),
        rx_bytes: Some(100),
        tx_bytes: Some(100),
        persistent_keepalive: Some(25),
        origin: Location::line("hosts/x/wg-dump.txt", 2),
    }
}

pub(crate) fn pod(ns: &str, name: &str, ip: &str, node: &str, labels: &[(&str, &str)], ports: &[(&str, u16)]) -> Pod {
    Pod {
        meta: ObjectMeta {
            name: name.into(),
            namespace: ns.into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            ..ObjectMeta::default()
        },
        spec: PodSpec {
            node_name: Some(node.into()),
            containers: vec![Container {
                name: "app".into(),
                ports: ports
                    .iter()
                    .map(|(n, p)| ContainerPort {
                        name: Some(n.to_string()),
                        container_port: *p,
                        protocol: "TCP".into(),
                        host_port: None,
                    })
                    .collect(),
                ..Container::default()
            }],
            ..PodSpec::default()
        },
        phase: Some("Running".into()),
        pod_ips: vec![ip.parse().unwrap()],
        host_ip: None,
        origin: Location::json("kubernetes/pods.json", format!("/items/{name}")),
    }
}

pub(crate) fn run(net: &netsleuth_model::Network, from: &str, to: &str) -> Trace {
    let from: Endpoint = from.parse().unwrap();
    let to: Destination = to.parse().unwrap();
    netsleuth_trace::path::trace(net, &from, &to, &TraceOptions::default()).unwrap()
}

/// The last hop's component and action, and the disposition kind.
pub(crate) fn last(t: &Trace) -> (String, Action, DispositionKind) {
    let h = t.hops.last().expect("at least one hop");
    (h.component.clone(), h.action, t.disposition.kind)
}

pub(crate) fn explain(t: &Trace) -> String {
    let mut s = String::new();
    for h in &t.hops {
        s.push_str(&format!("\n  {} {} {} {}", h.layer, h.component, h.action.as_str(), h.reason));
    }
    s.push_str(&format!("\n  => {} at {}: {}", t.disposition.kind, t.disposition.at, t.disposition.reason));
    s.push_str(&format!("\n  assumptions: {:?}\n  missing: {:?}", t.assumptions, t.missing));
    s
}
