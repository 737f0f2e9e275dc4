//! How each fault is injected, verified and cleared. Inject saves what it changes so clear
//! can put it back; both end by reading the state back (a fault that did not take is an error).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde_json::Value;

use crate::error::{LabError, Result};
use crate::faults::FaultSpec;
use crate::ops::Ops;
use crate::scenario::{self, Service, WgPeerSpec};

/// nftables tables made by faults (all in family inet).
const T_PMTUD: &str = "nsl_fault_pmtud";
const T_UDP: &str = "nsl_fault_udp_block";
const T_LOSS: &str = "nsl_fault_loss";
const T_CONNTRACK: &str = "nsl_fault_conntrack";
const T_EGRESS: &str = "nsl_fault_egress";
/// Connection-tracking UDP timeout while conntrack-full holds (so the filler stays).
const FILL_UDP_TIMEOUT: &str = "600";

/// The parameters of one fault, with typed access and errors that name the fault.
struct Params<'a> {
    fault: &'static str,
    map: &'a BTreeMap<String, String>,
}

impl Params<'_> {
    fn get(&self, k: &str) -> Result<&str> {
        self.map
            .get(k)
            .map(String::as_str)
            .ok_or_else(|| LabError::fault(self.fault, format!("parameter {k} is missing")))
    }

    fn opt(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(String::as_str)
    }

    fn parse<T: FromStr>(&self, k: &str, what: &str) -> Result<T> {
        let v = self.get(k)?;
        v.trim().parse().map_err(|_| LabError::fault(self.fault, format!("{k}={v:?} is not {what}")))
    }

    fn net(&self, k: &str) -> Result<IpNet> {
        let v = self.get(k)?;
        let n = scenario::parse_destination(v)
            .filter(|n| n.prefix_len() > 0)
            .ok_or_else(|| LabError::fault(self.fault, format!("{k}={v:?} is not a prefix")))?;
        if !scenario::in_lab_ranges(&n) {
            return Err(LabError::fault(self.fault, format!("{k}={v}: outside the lab address ranges")));
        }
        Ok(n)
    }

    fn nets(&self, k: &str) -> Result<Vec<IpNet>> {
        let v = self.get(k)?;
        v.split(',')
            .map(|s| {
                let n: IpNet =
                    s.trim().parse().map_err(|_| LabError::fault(self.fault, format!("{k}: {s:?} is not a prefix")))?;
                if scenario::in_lab_ranges(&n) {
                    Ok(n.trunc())
                } else {
                    Err(LabError::fault(self.fault, format!("{k}: {n} is outside the lab address ranges")))
                }
            })
            .collect()
    }

    fn check(&self, ok: bool, message: impl FnOnce() -> String) -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(LabError::fault(self.fault, format!("verification failed: {}", message())))
        }
    }
}

/// Injects `spec` with `params`, recording in `saved` what it changed, and verifies it.
pub(crate) fn inject(
    ops: &Ops<'_>,
    spec: &FaultSpec,
    params: &BTreeMap<String, String>,
    saved: &mut BTreeMap<String, String>,
) -> Result<()> {
    if let Some(done) = super::ipsec::inject(ops, spec, params, saved) {
        return done;
    }
    if super::dns::handles(spec.name) {
        return super::dns::inject(ops, spec, params, saved);
    }
    let p = Params { fault: spec.name, map: params };
    let host = p.get("host")?;
    ops.netns(host)?;
    match spec.name {
        "mtu-mismatch" => {
            let dev = ops.state.ifname(host, p.get("dev")?);
            let mtu: u32 = p.parse("mtu", "an MTU")?;
            if !(68..=65535).contains(&mtu) {
                return Err(LabError::fault(spec.name, format!("mtu {mtu} is outside 68..65535")));
            }
            if !saved.contains_key("mtu") {
                saved.insert("mtu".into(), ops.link_mtu(host, &dev)?.to_string());
            }
            ops.set_mtu(host, &dev, mtu)?;
            let got = ops.link_mtu(host, &dev)?;
            p.check(got == mtu, || format!("{dev} on {host} has MTU {got}, not {mtu}"))
        }
        "pmtud-blackhole" => {
            let rules = "icmp type destination-unreachable icmp code frag-needed counter drop\n\
                         icmpv6 type packet-too-big counter drop";
            table_inject(ops, &p, host, T_PMTUD, &chains(&["output", "forward"], "accept", rules))
        }
        "no-mss-clamp" => {
            let (family, name) = scenario_table(ops, &p, host)?;
            ops.nft_delete_table(host, family, name)?;
            p.check(!ops.nft_has_table(host, family, name)?, || format!("table {family} {name} still on {host}"))
        }
        "udp-block" => {
            let port: u16 = p.parse("port", "a UDP port")?;
            let rules = format!("udp dport {port} counter drop\nudp sport {port} counter drop");
            table_inject(ops, &p, host, T_UDP, &chains(&["input", "forward", "output"], "accept", &rules))
        }
        "underlay-loss" => {
            let pct: u8 = p.parse("pct", "a percentage")?;
            if pct > 100 {
                return Err(LabError::fault(spec.name, format!("pct {pct} is above 100")));
            }
            let only = match p.opt("dev") {
                Some(d) => format!("oifname \"{}\" ", ops.state.ifname(host, d)),
                None => String::new(),
            };
            let rules = format!("{only}numgen random mod 100 < {pct} counter drop");
            table_inject(ops, &p, host, T_LOSS, &chains(&["forward", "output"], "accept", &rules))
        }
        "wg-allowedips-wrong" => {
            let (ifname, peer_key, _) = wg_target(ops, &p, host)?;
            let wanted = p.nets("allowed")?;
            if !saved.contains_key("allowed") {
                let now = peer_allowed(ops, host, &ifname, &peer_key)?
                    .ok_or_else(|| LabError::fault(spec.name, format!("{ifname} on {host} has no peer {peer_key}")))?;
                saved.insert("allowed".into(), now.join(","));
            }
            set_allowed(ops, host, &ifname, &peer_key, &wanted)?;
            let got = peer_allowed(ops, host, &ifname, &peer_key)?;
            p.check(got.as_deref() == Some(&sorted(&wanted)[..]), || format!("{ifname} peer allowed-ips are {got:?}"))
        }
        "wg-allowedips-overlap" => {
            let ifname = ops.state.ifname(host, p.get("iface")?);
            let prefix = p.net("prefix")?.to_string();
            let fake = match saved.get("fake_peer") {
                Some(k) => k.clone(),
                None => {
                    let k = random_wg_key()?;
                    saved.insert("fake_peer".into(), k.clone());
                    k
                }
            };
            ops.exec(host, &["wg", "set", &ifname, "peer", &fake, "allowed-ips", &prefix])?;
            let got = peer_allowed(ops, host, &ifname, &fake)?;
            p.check(got.as_deref() == Some(&[prefix.clone()][..]), || {
                format!("the second peer has allowed-ips {got:?}")
            })
        }
        "wg-key-mismatch" => {
            let (ifname, real, _) = wg_target(ops, &p, host)?;
            if !saved.contains_key("wrong_key") {
                let allowed = peer_allowed(ops, host, &ifname, &real)?
                    .ok_or_else(|| LabError::fault(spec.name, format!("{ifname} on {host} has no peer {real}")))?;
                let endpoint = ops.wg_peer_field(host, &ifname, "endpoints", &real)?.unwrap_or_default();
                let keepalive = ops.wg_peer_field(host, &ifname, "persistent-keepalive", &real)?.unwrap_or_default();
                saved.insert("real_key".into(), real.clone());
                saved.insert("wrong_key".into(), random_wg_key()?);
                saved.insert("allowed".into(), allowed.join(","));
                saved.insert("endpoint".into(), endpoint);
                saved.insert("keepalive".into(), keepalive);
            }
            let wrong = saved.get("wrong_key").cloned().unwrap_or_default();
            swap_peer(ops, host, &ifname, &real, &wrong, saved)?;
            let peers: Vec<String> = ops.wg_allowed_ips(host, &ifname)?.into_iter().map(|(k, _)| k).collect();
            p.check(peers.contains(&wrong) && !peers.contains(&real), || {
                format!("{ifname} still has the real peer key")
            })
        }
        "ip-forward-off" => {
            let key = "net.ipv4.ip_forward";
            if !saved.contains_key(key) {
                saved.insert(key.into(), ops.sysctl_get(host, key)?);
            }
            ops.sysctl_set(host, key, "0")?;
            let got = ops.sysctl_get(host, key)?;
            p.check(got == "0", || format!("{key} on {host} is {got}"))
        }
        "rp-filter-strict" => {
            let dev = ops.state.ifname(host, p.get("dev")?);
            let keys = ["net.ipv4.conf.all.rp_filter".to_string(), format!("net.ipv4.conf.{dev}.rp_filter")];
            for k in &keys {
                if !saved.contains_key(k) {
                    saved.insert(k.clone(), ops.sysctl_get(host, k)?);
                }
            }
            if let Some(route) = p.opt("route") {
                let dst = p.net("route")?;
                let via: std::net::IpAddr = p.parse("via", "an address (the new next hop of `route`)")?;
                if !scenario::ip_in_lab_ranges(via) {
                    return Err(LabError::fault(spec.name, format!("via {via} is outside the lab address ranges")));
                }
                ops.ip(host, &["route", "replace", &dst.to_string(), "via", &via.to_string()])?;
                let routes = ops.routes_to(host, &dst)?;
                let via_s = via.to_string();
                p.check(routes.iter().any(|r| r.get("gateway").and_then(Value::as_str) == Some(&via_s)), || {
                    format!("the route to {route} on {host} does not go via {via}")
                })?;
            }
            for k in &keys {
                ops.sysctl_set(host, k, "1")?;
                let got = ops.sysctl_get(host, k)?;
                p.check(got == "1", || format!("{k} on {host} is {got}"))?;
            }
            Ok(())
        }
        "conntrack-full" => conntrack_inject(ops, &p, host, saved),
        "route-missing" => {
            let dst = p.net("to")?;
            if ops.scenario.route(host, &dst).is_none() {
                return Err(LabError::fault(
                    spec.name,
                    format!("the scenario has no route to {dst} on {host} to remove"),
                ));
            }
            if !ops.routes_to(host, &dst)?.is_empty() {
                ops.ip(host, &["route", "del", &dst.to_string()])?;
            }
            p.check(ops.routes_to(host, &dst)?.is_empty(), || format!("{host} still routes {dst}"))
        }
        "nft-egress-drop" => {
            let src = p.net("src")?;
            let family = if src.addr().is_ipv4() { "ip" } else { "ip6" };
            let rules = format!("ct state established,related accept\n{family} daddr {src} accept");
            table_inject(ops, &p, host, T_EGRESS, &chains(&["forward"], "drop", &rules))
        }
        other => Err(LabError::fault(other, "no implementation (catalog and code disagree)")),
    }
}

/// Clears `spec`, putting back what `saved` recorded, and verifies it.
pub(crate) fn clear(
    ops: &Ops<'_>,
    spec: &FaultSpec,
    params: &BTreeMap<String, String>,
    saved: &BTreeMap<String, String>,
) -> Result<()> {
    if let Some(done) = super::ipsec::clear(ops, spec, params, saved) {
        return done;
    }
    if super::dns::handles(spec.name) {
        return super::dns::clear(ops, spec, params, saved);
    }
    let p = Params { fault: spec.name, map: params };
    let host = p.get("host")?;
    ops.netns(host)?;
    match spec.name {
        "mtu-mismatch" => {
            let dev = ops.state.ifname(host, p.get("dev")?);
            let Some(orig) = saved.get("mtu").and_then(|m| m.parse::<u32>().ok()) else { return Ok(()) };
            ops.set_mtu(host, &dev, orig)?;
            let got = ops.link_mtu(host, &dev)?;
            p.check(got == orig, || format!("{dev} on {host} has MTU {got}, not {orig}"))
        }
        "pmtud-blackhole" => table_clear(ops, &p, host, T_PMTUD),
        "udp-block" => table_clear(ops, &p, host, T_UDP),
        "underlay-loss" => table_clear(ops, &p, host, T_LOSS),
        "nft-egress-drop" => table_clear(ops, &p, host, T_EGRESS),
        "no-mss-clamp" => {
            let (family, name) = scenario_table(ops, &p, host)?;
            if !ops.nft_has_table(host, family, name)? {
                let t = ops
                    .scenario
                    .host(host)
                    .and_then(|h| h.nftables.iter().find(|t| t.value.family_and_name() == Some((family, name))))
                    .ok_or_else(|| LabError::fault(spec.name, "table vanished from the scenario"))?;
                ops.nft_apply(host, &ops.scenario_table_script(host, &t.value)?)?;
            }
            p.check(ops.nft_has_table(host, family, name)?, || format!("table {family} {name} not back on {host}"))
        }
        "wg-allowedips-wrong" => {
            let (ifname, peer_key, _) = wg_target(ops, &p, host)?;
            let Some(orig) = saved.get("allowed") else { return Ok(()) };
            let nets: Vec<IpNet> = orig.split(',').filter_map(|s| s.trim().parse().ok()).collect();
            set_allowed(ops, host, &ifname, &peer_key, &nets)?;
            let got = peer_allowed(ops, host, &ifname, &peer_key)?;
            p.check(got.as_deref() == Some(&sorted(&nets)[..]), || format!("{ifname} peer allowed-ips are {got:?}"))
        }
        "wg-allowedips-overlap" => {
            let ifname = ops.state.ifname(host, p.get("iface")?);
            let Some(fake) = saved.get("fake_peer") else { return Ok(()) };
            ops.exec(host, &["wg", "set", &ifname, "peer", fake, "remove"])?;
            let peers = ops.wg_allowed_ips(host, &ifname)?;
            p.check(!peers.iter().any(|(k, _)| k == fake), || format!("the second peer is still on {ifname}"))
        }
        "wg-key-mismatch" => {
            let (ifname, real, _) = wg_target(ops, &p, host)?;
            let Some(wrong) = saved.get("wrong_key") else { return Ok(()) };
            swap_peer(ops, host, &ifname, wrong, &real, saved)?;
            let peers: Vec<String> = ops.wg_allowed_ips(host, &ifname)?.into_iter().map(|(k, _)| k).collect();
            p.check(peers.contains(&real) && !peers.contains(wrong), || {
                format!("{ifname} does not have the real key back")
            })
        }
        "ip-forward-off" => restore_sysctls(ops, &p, host, saved, &["net.ipv4.ip_forward"]),
        "rp-filter-strict" => {
            if let Some(route) = p.opt("route") {
                let dst = p.net("route")?;
                match ops.scenario.route(host, &dst) {
                    Some(r) => ops.apply_route(host, r)?,
                    None => {
                        if !ops.routes_to(host, &dst)?.is_empty() {
                            ops.ip(host, &["route", "del", &dst.to_string()])?;
                        }
                    }
                }
                let via = p.opt("via").unwrap_or("");
                let routes = ops.routes_to(host, &dst)?;
                p.check(!routes.iter().any(|r| r.get("gateway").and_then(Value::as_str) == Some(via)), || {
                    format!("the route to {route} on {host} still goes via {via}")
                })?;
            }
            let keys: Vec<&str> = saved.keys().map(String::as_str).filter(|k| k.ends_with(".rp_filter")).collect();
            restore_sysctls(ops, &p, host, saved, &keys)
        }
        "conntrack-full" => conntrack_clear(ops, &p, host, saved),
        "route-missing" => {
            let dst = p.net("to")?;
            let r = ops
                .scenario
                .route(host, &dst)
                .ok_or_else(|| LabError::fault(spec.name, format!("the scenario has no route to {dst} on {host}")))?;
            ops.apply_route(host, r)?;
            p.check(!ops.routes_to(host, &dst)?.is_empty(), || format!("{host} has no route to {dst} again"))
        }
        other => Err(LabError::fault(other, "no implementation (catalog and code disagree)")),
    }
}

/// Base chains of one table, one per hook, all with `rules`. Priority filter − 5 runs them
/// before the scenario's own filter chains.
fn chains(hooks: &[&str], policy: &str, rules: &str) -> String {
    hooks
        .iter()
        .map(|h| format!("chain {h} {{\n  type filter hook {h} priority filter - 5; policy {policy};\n  {rules}\n}}\n"))
        .collect()
}

fn table_inject(ops: &Ops<'_>, p: &Params<'_>, host: &str, table: &str, body: &str) -> Result<()> {
    // `table X` first makes `delete table X` valid when it does not exist yet: the whole
    // script replaces the table atomically, so inject twice is the same as once.
    let script = format!("table inet {table}\ndelete table inet {table}\ntable inet {table} {{\n{body}}}\n");
    ops.nft_apply(host, &script)?;
    p.check(ops.nft_has_table(host, "inet", table)?, || format!("table inet {table} is not on {host}"))
}

fn table_clear(ops: &Ops<'_>, p: &Params<'_>, host: &str, table: &str) -> Result<()> {
    ops.nft_delete_table(host, "inet", table)?;
    p.check(!ops.nft_has_table(host, "inet", table)?, || format!("table inet {table} is still on {host}"))
}

/// The scenario's table named by the `table` parameter.
fn scenario_table<'p>(ops: &Ops<'_>, p: &'p Params<'_>, host: &str) -> Result<(&'p str, &'p str)> {
    let t = p.get("table")?;
    let mut it = t.split_whitespace();
    let (Some(family), Some(name), None) = (it.next(), it.next(), it.next()) else {
        return Err(LabError::fault(p.fault, format!("table={t:?}: write `FAMILY NAME`")));
    };
    let known = ops
        .scenario
        .host(host)
        .is_some_and(|h| h.nftables.iter().any(|x| x.value.family_and_name() == Some((family, name))));
    if !known {
        return Err(LabError::fault(p.fault, format!("the scenario defines no nftables table {t} on {host}")));
    }
    Ok((family, name))
}

fn restore_sysctls(
    ops: &Ops<'_>,
    p: &Params<'_>,
    host: &str,
    saved: &BTreeMap<String, String>,
    keys: &[&str],
) -> Result<()> {
    for k in keys {
        let Some(v) = saved.get(*k) else { continue };
        ops.sysctl_set(host, k, v)?;
        let got = ops.sysctl_get(host, k)?;
        p.check(&got == v, || format!("{k} on {host} is {got}, not {v}"))?;
    }
    Ok(())
}

/// (real interface name, the peer's public key, the scenario's peer entry).
fn wg_target<'a>(ops: &Ops<'a>, p: &Params<'_>, host: &str) -> Result<(String, String, &'a WgPeerSpec)> {
    let iface = p.get("iface")?;
    let peer_host = p.get("peer")?;
    let ws = ops
        .state
        .wg(host, iface)
        .ok_or_else(|| LabError::fault(p.fault, format!("{host} has no WireGuard interface {iface}")))?;
    let spec = ops
        .scenario
        .host(host)
        .into_iter()
        .flat_map(|h| h.services.iter())
        .find_map(|s| match &s.value {
            Service::Wireguard(w) if w.name == iface => Some(w),
            _ => None,
        })
        .ok_or_else(|| LabError::fault(p.fault, format!("the scenario has no WireGuard {iface} on {host}")))?;
    let peer = spec
        .peers
        .iter()
        .find(|x| x.host == peer_host)
        .ok_or_else(|| LabError::fault(p.fault, format!("{iface} on {host} has no peer on host {peer_host}")))?;
    let peer_iface = match &peer.interface {
        Some(i) => i.clone(),
        None => ops
            .state
            .wireguard
            .iter()
            .find(|w| w.host == peer_host)
            .map(|w| w.name.clone())
            .ok_or_else(|| LabError::fault(p.fault, format!("{peer_host} runs no WireGuard")))?,
    };
    let key =
        ops.state.wg(peer_host, &peer_iface).map(|w| w.public_key.clone()).ok_or_else(|| {
            LabError::fault(p.fault, format!("no public key recorded for {peer_iface} on {peer_host}"))
        })?;
    Ok((ws.ifname.clone(), key, peer))
}

fn peer_allowed(ops: &Ops<'_>, host: &str, ifname: &str, key: &str) -> Result<Option<Vec<String>>> {
    Ok(ops.wg_allowed_ips(host, ifname)?.into_iter().find(|(k, _)| k == key).map(|(_, mut ips)| {
        ips.sort();
        ips
    }))
}

fn sorted(nets: &[IpNet]) -> Vec<String> {
    let mut v: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
    v.sort();
    v
}

fn set_allowed(ops: &Ops<'_>, host: &str, ifname: &str, key: &str, nets: &[IpNet]) -> Result<()> {
    let list = nets.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",");
    ops.exec(host, &["wg", "set", ifname, "peer", key, "allowed-ips", &list]).map(drop)
}

/// Replaces peer `from` by peer `to` with the saved AllowedIPs, endpoint and keepalive.
fn swap_peer(
    ops: &Ops<'_>,
    host: &str,
    ifname: &str,
    from: &str,
    to: &str,
    saved: &BTreeMap<String, String>,
) -> Result<()> {
    let mut args: Vec<String> = ["wg", "set", ifname, "peer", from, "remove", "peer", to].map(str::to_string).to_vec();
    if let Some(a) = saved.get("allowed").filter(|a| !a.is_empty()) {
        args.extend(["allowed-ips".to_string(), a.clone()]);
    }
    if let Some(e) = saved.get("endpoint").filter(|e| e.parse::<SocketAddr>().is_ok()) {
        args.extend(["endpoint".to_string(), e.clone()]);
    }
    if let Some(k) = saved.get("keepalive").filter(|k| k.parse::<u16>().is_ok_and(|n| n > 0)) {
        args.extend(["persistent-keepalive".to_string(), k.clone()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ops.exec(host, &refs).map(drop)
}

fn conntrack_inject(ops: &Ops<'_>, p: &Params<'_>, host: &str, saved: &mut BTreeMap<String, String>) -> Result<()> {
    let max: u32 = p.parse("max", "a table size")?;
    if !(1..=100_000).contains(&max) {
        return Err(LabError::fault(p.fault, format!("max {max} is outside 1..100000")));
    }
    let path = ops.scenario.path.as_ref().map(|x| &x.value);
    let from = p.opt("from").or(path.map(|x| x.source.as_str())).ok_or_else(|| {
        LabError::fault(p.fault, "no `from` host and the scenario has no path source to send the filler from")
    })?;
    let to: SocketAddr = match p.opt("to") {
        Some(t) => t.parse().map_err(|_| LabError::fault(p.fault, format!("to={t:?} is not ADDRESS:PORT")))?,
        None => path
            .and_then(|x| x.udp)
            .ok_or_else(|| LabError::fault(p.fault, "no `to` and the scenario's path has no UDP target"))?,
    };
    if !scenario::ip_in_lab_ranges(to.ip()) {
        return Err(LabError::fault(p.fault, format!("to={to}: outside the lab address ranges")));
    }
    for k in ["net.netfilter.nf_conntrack_udp_timeout", "net.netfilter.nf_conntrack_udp_timeout_stream"] {
        if !saved.contains_key(k) {
            saved.insert(k.to_string(), ops.sysctl_get(host, k)?);
        }
        ops.sysctl_set(host, k, FILL_UDP_TIMEOUT)?;
    }
    // The real table size where the kernel lets a namespace set it; this kernel (6.x with
    // per-netns conntrack) keeps nf_conntrack_max read-only outside the initial namespace,
    // so the fallback is an nftables limit on tracked connections through the host.
    let key = "net.netfilter.nf_conntrack_max";
    if !saved.contains_key("mode") {
        let orig = ops.sysctl_get(host, key)?;
        let real = ops.sysctl_set(host, key, &max.to_string()).is_ok() && ops.sysctl_get(host, key)? == max.to_string();
        if real {
            saved.insert(key.to_string(), orig);
        }
        saved.insert("mode".into(), if real { "sysctl" } else { "nft-ct-count" }.into());
    }
    if saved.get("mode").map(String::as_str) == Some("nft-ct-count") {
        let rules = format!("ct state new ct count over {max} counter drop");
        table_inject(ops, p, host, T_CONNTRACK, &chains(&["forward"], "accept", &rules))?;
    }
    // Fill: more flows than the table holds, from the source through the host.
    let mut cmd: Vec<String> = ops.state.echo_command.clone();
    let count = max.saturating_add(8).to_string();
    cmd.extend(["udp-flows", &to.to_string(), "--count", &count, "--timeout-ms", "1500"].map(str::to_string));
    let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let out = ops.exec_output(from, &refs, Duration::from_secs(30))?;
    let filled = if saved.get("mode").map(String::as_str) == Some("sysctl") {
        ops.sysctl_get(host, "net.netfilter.nf_conntrack_count")?.parse::<u64>().unwrap_or(0) >= u64::from(max)
    } else {
        counters(&ops.nft_table_json(host, "inet", T_CONNTRACK)?) > 0
    };
    p.check(filled, || {
        format!(
            "{count} filler flows from {from} to {to} did not fill the table on {host} (are they routed through it?): {}",
            out.stdout.trim()
        )
    })
}

fn conntrack_clear(ops: &Ops<'_>, p: &Params<'_>, host: &str, saved: &BTreeMap<String, String>) -> Result<()> {
    table_clear(ops, p, host, T_CONNTRACK)?;
    let keys: Vec<&str> = saved.keys().map(String::as_str).filter(|k| k.starts_with("net.")).collect();
    restore_sysctls(ops, p, host, saved, &keys)?;
    // Drop the filler entries (they would live for FILL_UDP_TIMEOUT otherwise).
    let ns = ops.netns(host)?;
    let _ = crate::cmd::Cmd::in_netns(ns, ["conntrack", "-F"]).output();
    Ok(())
}

/// Sum of the packet counters of every rule in `nft -j` output.
fn counters(v: &Value) -> u64 {
    v.get("nftables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| o.get("rule")?.get("expr")?.as_array())
        .flatten()
        .filter_map(|e| e.get("counter")?.get("packets")?.as_u64())
        .sum()
}

/// A random WireGuard public key (32 random bytes, base64): no private key ever exists.
fn random_wg_key() -> Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)
        .map_err(|e| LabError::io("cannot read random bytes", std::io::Error::other(e.to_string())))?;
    Ok(base64(&b))
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        let k = random_wg_key().expect("random");
        assert_eq!(k.len(), 44);
        assert!(k.ends_with('='));
    }

    #[test]
    fn chains_and_counters() {
        let c = chains(&["input", "forward"], "accept", "udp dport 1 drop");
        assert!(c.contains("chain input {\n  type filter hook input priority filter - 5; policy accept;"));
        assert!(c.contains("hook forward"));
        let v: Value = serde_json::json!({"nftables": [
            {"metainfo": {}},
            {"rule": {"expr": [{"match": {}}, {"counter": {"packets": 3, "bytes": 9}}, {"drop": null}]}},
            {"rule": {"expr": [{"counter": {"packets": 4, "bytes": 1}}]}}
        ]});
        assert_eq!(counters(&v), 7);
        assert_eq!(counters(&Value::Null), 0);
    }
}
