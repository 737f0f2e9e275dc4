//! DNS faults of the `dns-and-policy` scenario: the resolver down, slow or stale, ndots
//! amplification in a pod's resolv.conf, and a node policy dropping the pods' DNS egress.
//!
//! Each inject saves what it changes and verifies its effect; clear restores and verifies.

use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::time::Duration;

use netsleuth_model::Layer;

use super::{def, req, FaultSpec, StaticVisibility, HOST};
use crate::dnsmasq::{self, DnsmasqSpec, DNSMASQ_WHAT};
use crate::error::{LabError, Result};
use crate::ops::Ops;
use crate::scenario::{self, Service};

/// nftables tables made by these faults.
const T_SLOW: &str = "nsl_fault_dns_slow";
const T_EGRESS: &str = "nsl_fault_dns_egress";

pub(super) const DNS_DOWN: FaultSpec = FaultSpec {
    name: "dns-down",
    layer: Layer::Dns,
    does: "freezes the resolver's dnsmasq with SIGSTOP (it keeps its port but answers nothing, as a hung or \
           overloaded CoreDNS); clear sends SIGCONT",
    breaks: "every lookup from the pods times out (timeout x attempts of their resolv.conf), by IP everything still \
             works",
    params: &[HOST],
    primary: None,
    expected_rules: &[],
    static_visibility: StaticVisibility::None,
    diagnosis: "cluster DNS server (CoreDNS) not answering: lookups time out while IP connectivity is fine",
    diagnose_causes: &["DIAG-DNS-001"],
    diagnose_on_host: &["DIAG-DNS-001"],
};

pub(super) const DNS_SLOW: FaultSpec = FaultSpec {
    name: "dns-slow",
    layer: Layer::Dns,
    does: "redirects UDP 53 on the resolver (nftables nat prerouting) to the lab's delaying proxy, which holds \
           every answer back `ms` milliseconds (dnsmasq has no delay option)",
    breaks: "lookups take `ms` longer; with `ms` above the pods' resolv.conf timeout they time out and retry",
    params: &[HOST, def("ms", "delay of every answer in milliseconds (1-30000)", "1500")],
    primary: Some("ms"),
    expected_rules: &[],
    static_visibility: StaticVisibility::None,
    diagnosis: "cluster DNS answering slowly (latency added on the resolver path)",
    diagnose_causes: &["DIAG-DNS-006"],
    diagnose_on_host: &["DIAG-DNS-006"],
};

pub(super) const DNS_STALE: FaultSpec = FaultSpec {
    name: "dns-stale",
    layer: Layer::Dns,
    does: "rewrites one record of the resolver's hosts file to an old address and reloads dnsmasq (SIGHUP)",
    breaks: "the name resolves, but to an address where the service no longer is: connections to it fail",
    params: &[HOST, req("name", "the record that goes stale"), req("ip", "the stale (old) address it answers")],
    primary: Some("ip"),
    expected_rules: &[],
    static_visibility: StaticVisibility::None,
    diagnosis: "stale DNS record: the name resolves to an old address of the service",
    diagnose_causes: &["DIAG-DNS-005", "DIAG-GW-001@ip", "DIAG-HOP-001@ip", "DIAG-TCP-003@ip"],
    diagnose_on_host: &["DIAG-DNS-005", "DIAG-GW-001@ip", "DIAG-HOP-001@ip", "DIAG-TCP-003@ip"],
};

pub(super) const NDOTS_AMPLIFICATION: FaultSpec = FaultSpec {
    name: "ndots-amplification",
    layer: Layer::Dns,
    does: "rewrites a pod's resolv.conf to a high ndots with extra search domains",
    breaks: "one lookup of an external name becomes one query per search domain (NXDOMAIN each) before the real \
             one: the resolver sees several times the queries, lookups get slower",
    params: &[
        HOST,
        def("ndots", "the new ndots", "5"),
        def("search", "extra search domains, appended (comma-separated)", "corp.example,example.internal,lab.internal"),
    ],
    primary: Some("ndots"),
    expected_rules: &["DNS-001"],
    static_visibility: StaticVisibility::Immediate,
    diagnosis: "ndots/search-list amplification: external names are tried with every search domain first",
    diagnose_causes: &["DIAG-DNS-007", "DNS-001"],
    diagnose_on_host: &["DIAG-DNS-007", "DNS-001"],
};

pub(super) const DNS_EGRESS_DROP: FaultSpec = FaultSpec {
    name: "dns-egress-drop",
    layer: Layer::Policy,
    does: "adds nftables forward chains (bridge and inet families) on the node dropping UDP and TCP 53 from the pods \
           in `src` (a default-deny egress policy that forgot DNS)",
    breaks: "lookups from those pods time out; traffic by IP that the policy allows still works",
    params: &[HOST, req("src", "the pod prefix whose DNS egress is dropped")],
    primary: Some("src"),
    expected_rules: &[],
    static_visibility: StaticVisibility::None,
    diagnosis: "network policy (node firewall) drops the pods' DNS egress (UDP/TCP 53)",
    diagnose_causes: &["DIAG-DNS-011"],
    diagnose_on_host: &["DIAG-DNS-011", "DIAG-FWD-003", "NODE-003"],
};

/// Whether this module implements the fault.
pub(super) fn handles(name: &str) -> bool {
    [DNS_DOWN.name, DNS_SLOW.name, DNS_STALE.name, NDOTS_AMPLIFICATION.name, DNS_EGRESS_DROP.name].contains(&name)
}

fn get<'a>(spec: &FaultSpec, p: &'a BTreeMap<String, String>, k: &str) -> Result<&'a str> {
    p.get(k).map(String::as_str).ok_or_else(|| LabError::fault(spec.name, format!("parameter {k} is missing")))
}

fn check(spec: &FaultSpec, ok: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(LabError::fault(spec.name, format!("verification failed: {}", msg())))
    }
}

/// The scenario's dnsmasq on `host`.
fn resolver<'a>(ops: &Ops<'a>, spec: &FaultSpec, host: &str) -> Result<&'a DnsmasqSpec> {
    ops.scenario
        .host(host)
        .into_iter()
        .flat_map(|h| h.services.iter())
        .find_map(|s| match &s.value {
            Service::Dnsmasq(d) => Some(d),
            _ => None,
        })
        .ok_or_else(|| LabError::fault(spec.name, format!("{host} runs no dnsmasq in this scenario")))
}

/// The pid of the dnsmasq on `host`, when it still runs.
fn dnsmasq_pid(ops: &Ops<'_>, spec: &FaultSpec, host: &str) -> Result<u32> {
    ops.state
        .processes
        .iter()
        .find(|p| p.host == host && p.what == DNSMASQ_WHAT && p.process.alive())
        .map(|p| p.process.pid)
        .ok_or_else(|| LabError::fault(spec.name, format!("no running dnsmasq on {host}")))
}

/// The state letter of a process (`T` = stopped).
fn proc_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and ')': the state follows the last ')'.
    stat.rsplit_once(')')?.1.split_whitespace().next()?.chars().next()
}

fn signal(pid: u32, sig: &str) -> Result<()> {
    crate::cmd::Cmd::new(["kill", sig, &pid.to_string()]).run().map(drop)
}

/// Waits (bounded, 2 s) until `ok` holds.
fn settle(mut ok: impl FnMut() -> bool) -> bool {
    for _ in 0..40 {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ok()
}

fn write(spec: &FaultSpec, path: &std::path::Path, text: &str) -> Result<()> {
    fs::write(path, text).map_err(|e| LabError::fault(spec.name, format!("cannot write {}: {e}", path.display())))
}

fn read(spec: &FaultSpec, path: &std::path::Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| LabError::fault(spec.name, format!("cannot read {}: {e}", path.display())))
}

fn lab_ip(spec: &FaultSpec, k: &str, v: &str) -> Result<IpAddr> {
    let ip: IpAddr =
        v.trim().parse().map_err(|_| LabError::fault(spec.name, format!("{k}={v:?} is not an address")))?;
    if !ip.is_ipv4() || !scenario::ip_in_lab_ranges(ip) {
        return Err(LabError::fault(spec.name, format!("{k}={ip}: not an IPv4 address in the lab ranges")));
    }
    Ok(ip)
}

/// Replaces `name`'s address in hosts-file text (the line is added when missing).
fn hosts_with(text: &str, name: &str, ip: IpAddr) -> String {
    let mut out: String =
        text.lines().filter(|l| l.split_whitespace().nth(1) != Some(name)).map(|l| format!("{l}\n")).collect();
    out.push_str(&format!("{ip} {name}\n"));
    out
}

fn hosts_answer(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_string)
}

/// Injects one of this module's faults and verifies it.
pub(super) fn inject(
    ops: &Ops<'_>,
    spec: &FaultSpec,
    params: &BTreeMap<String, String>,
    saved: &mut BTreeMap<String, String>,
) -> Result<()> {
    let host = get(spec, params, "host")?;
    let work = &ops.state.work_dir;
    match spec.name {
        "dns-down" => {
            resolver(ops, spec, host)?;
            let pid = dnsmasq_pid(ops, spec, host)?;
            signal(pid, "-STOP")?;
            check(spec, settle(|| proc_state(pid) == Some('T')), || format!("dnsmasq (pid {pid}) is not stopped"))
        }
        "dns-slow" => {
            let d = resolver(ops, spec, host)?;
            let ms: u32 = get(spec, params, "ms")?
                .trim()
                .parse()
                .ok()
                .filter(|m| (1..=30_000).contains(m))
                .ok_or_else(|| LabError::fault(spec.name, "ms must be 1..30000"))?;
            write(spec, &dnsmasq::delay_path(work, host), &format!("{ms}\n"))?;
            // Only packets arriving from elsewhere are redirected (prerouting): the proxy's
            // own queries to dnsmasq, sent locally, go straight to port 53.
            let script = format!(
                "table ip {T_SLOW}\ndelete table ip {T_SLOW}\ntable ip {T_SLOW} {{\n chain prerouting {{\n  type nat \
                 hook prerouting priority dstnat - 5; policy accept;\n  ip daddr {} udp dport 53 counter redirect to \
                 :{}\n }}\n}}\n",
                d.listen,
                dnsmasq::DELAY_PORT
            );
            ops.nft_apply(host, &script)?;
            let got = read(spec, &dnsmasq::delay_path(work, host))?;
            check(spec, ops.nft_has_table(host, "ip", T_SLOW)? && got.trim() == ms.to_string(), || {
                format!("table ip {T_SLOW} or the delay setting ({}) is not in place on {host}", got.trim())
            })
        }
        "dns-stale" => {
            resolver(ops, spec, host)?;
            let name = get(spec, params, "name")?;
            if !dnsmasq::valid_dns_name(name) {
                return Err(LabError::fault(spec.name, format!("name={name:?} is not a DNS name")));
            }
            let ip = lab_ip(spec, "ip", get(spec, params, "ip")?)?;
            let path = dnsmasq::hosts_path(work, host);
            let text = read(spec, &path)?;
            if !saved.contains_key("hosts") {
                saved.insert("hosts".into(), text.clone());
            }
            write(spec, &path, &hosts_with(&text, name, ip))?;
            let pid = dnsmasq_pid(ops, spec, host)?;
            signal(pid, "-HUP")?;
            let got = hosts_answer(&read(spec, &path)?, name);
            check(spec, got == Some(ip.to_string()), || format!("{name} in {} is {got:?}", path.display()))
        }
        "ndots-amplification" => {
            let ndots: u8 = get(spec, params, "ndots")?
                .trim()
                .parse()
                .ok()
                .filter(|n| *n <= 15)
                .ok_or_else(|| LabError::fault(spec.name, "ndots must be 0..15"))?;
            let extra: Vec<&str> = params.get("search").map_or(Vec::new(), |s| s.split(',').map(str::trim).collect());
            if let Some(bad) = extra.iter().find(|d| !dnsmasq::valid_dns_name(d)) {
                return Err(LabError::fault(spec.name, format!("search domain {bad:?} is not a DNS name")));
            }
            let path = dnsmasq::resolv_path(work, host);
            let text = read(spec, &path).map_err(|_| {
                LabError::fault(spec.name, format!("{host} has no resolv service ({} is missing)", path.display()))
            })?;
            let orig = saved.entry("resolv".into()).or_insert(text).clone();
            let conf = dnsmasq::parse_resolv(&orig);
            let mut search = conf.search.clone();
            search.extend(extra.iter().map(|s| s.to_string()));
            let new = dnsmasq::resolv_text(&dnsmasq::ResolvSpec {
                nameservers: conf.nameservers.clone(),
                search,
                ndots,
                timeout: u8::try_from(conf.timeout.as_secs()).unwrap_or(5),
                attempts: u8::try_from(conf.attempts).unwrap_or(2),
            });
            write(spec, &path, &new)?;
            let got = dnsmasq::parse_resolv(&read(spec, &path)?);
            check(spec, usize::from(ndots) == got.ndots && got.search.len() >= extra.len(), || {
                format!("{} has ndots {} and {} search domains", path.display(), got.ndots, got.search.len())
            })
        }
        "dns-egress-drop" => {
            let src = get(spec, params, "src")?;
            let net = scenario::parse_destination(src)
                .filter(|n| n.prefix_len() > 0 && n.addr().is_ipv4() && scenario::in_lab_ranges(n))
                .ok_or_else(|| {
                    LabError::fault(spec.name, format!("src={src:?} is not an IPv4 prefix in the lab ranges"))
                })?;
            let rules = format!("ip saddr {net} udp dport 53 counter drop\n  ip saddr {net} tcp dport 53 counter drop");
            // Pods on the node's bridge reach a resolver on the same bridge without routing:
            // the bridge family sees those frames, the inet family the routed ones.
            for family in ["bridge", "inet"] {
                let script = format!(
                    "table {family} {T_EGRESS}\ndelete table {family} {T_EGRESS}\ntable {family} {T_EGRESS} {{\n chain \
                     forward {{\n  type filter hook forward priority -5; policy accept;\n  {rules}\n }}\n}}\n"
                );
                ops.nft_apply(host, &script)?;
                check(spec, ops.nft_has_table(host, family, T_EGRESS)?, || {
                    format!("table {family} {T_EGRESS} is not on {host}")
                })?;
            }
            Ok(())
        }
        other => Err(LabError::fault(other, "not a DNS fault")),
    }
}

/// Clears one of this module's faults and verifies it.
pub(super) fn clear(
    ops: &Ops<'_>,
    spec: &FaultSpec,
    params: &BTreeMap<String, String>,
    saved: &BTreeMap<String, String>,
) -> Result<()> {
    let host = get(spec, params, "host")?;
    let work = &ops.state.work_dir;
    match spec.name {
        "dns-down" => {
            let pid = dnsmasq_pid(ops, spec, host)?;
            signal(pid, "-CONT")?;
            check(spec, settle(|| proc_state(pid) != Some('T')), || format!("dnsmasq (pid {pid}) is still stopped"))
        }
        "dns-slow" => {
            ops.nft_delete_table(host, "ip", T_SLOW)?;
            write(spec, &dnsmasq::delay_path(work, host), "0\n")?;
            check(spec, !ops.nft_has_table(host, "ip", T_SLOW)?, || format!("table ip {T_SLOW} is still on {host}"))
        }
        "dns-stale" => {
            let Some(orig) = saved.get("hosts") else { return Ok(()) };
            let path = dnsmasq::hosts_path(work, host);
            write(spec, &path, orig)?;
            signal(dnsmasq_pid(ops, spec, host)?, "-HUP")?;
            let name = get(spec, params, "name")?;
            check(spec, hosts_answer(&read(spec, &path)?, name) == hosts_answer(orig, name), || {
                format!("{name} is not back to its address in {}", path.display())
            })
        }
        "ndots-amplification" => {
            let Some(orig) = saved.get("resolv") else { return Ok(()) };
            let path = dnsmasq::resolv_path(work, host);
            write(spec, &path, orig)?;
            check(spec, &read(spec, &path)? == orig, || format!("{} is not restored", path.display()))
        }
        "dns-egress-drop" => {
            for family in ["bridge", "inet"] {
                ops.nft_delete_table(host, family, T_EGRESS)?;
                check(spec, !ops.nft_has_table(host, family, T_EGRESS)?, || {
                    format!("table {family} {T_EGRESS} is still on {host}")
                })?;
            }
            Ok(())
        }
        other => Err(LabError::fault(other, "not a DNS fault")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_text_is_rewritten_per_name() {
        let text = "10.244.1.20 api.default.svc.cluster.local\n10.244.1.1 kubernetes.default.svc.cluster.local\n";
        let ip: IpAddr = "10.244.1.99".parse().expect("ip");
        let new = hosts_with(text, "api.default.svc.cluster.local", ip);
        assert_eq!(hosts_answer(&new, "api.default.svc.cluster.local").as_deref(), Some("10.244.1.99"));
        assert_eq!(hosts_answer(&new, "kubernetes.default.svc.cluster.local").as_deref(), Some("10.244.1.1"));
        assert_eq!(new.lines().count(), 2);
        assert_eq!(hosts_answer(text, "nope"), None);
    }

    #[test]
    fn stopped_state_is_read_after_the_name() {
        // Our own process runs: its state is not 'T'.
        assert!(matches!(proc_state(std::process::id()), Some(c) if c != 'T'));
        assert_eq!(proc_state(u32::MAX), None);
    }

    #[test]
    fn dns_faults_are_handled_here() {
        for f in [&DNS_DOWN, &DNS_SLOW, &DNS_STALE, &NDOTS_AMPLIFICATION, &DNS_EGRESS_DROP] {
            assert!(handles(f.name), "{}", f.name);
        }
        assert!(!handles("udp-block"));
    }
}
