//! The dns-and-policy scenario end to end with real traffic: lookups through a real dnsmasq
//! (search list, forward zone), the NetworkPolicy-like filter, then every DNS fault injected,
//! observed breaking what it claims, cleared and observed healed; finally nothing of the lab
//! is left behind (namespaces, processes, files), even when it is dropped with faults on.
//! Needs root.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use common::{eventually, ping, say, tcp, udp, Failures};
use netsleuth_lab::dnsmasq::{self, LookupResult};
use netsleuth_lab::{scenario, FaultRequest, Lab, UpOptions};

const POD_A: &str = "10.244.1.10";
const POD_B: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 20);
const ALLOWED: &str = "10.244.1.20:8080";
const DENIED_UDP: &str = "10.244.1.20:8081";
const STALE: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 99);
const LIMIT: Duration = Duration::from_secs(15);

fn up(faults: &[&str]) -> Lab {
    let sc = scenario::load("dns-and-policy").unwrap_or_else(|e| panic!("{e}"));
    let mut opts = UpOptions::new(common::echo_command());
    opts.faults = faults.iter().map(|f| f.parse::<FaultRequest>().unwrap_or_else(|e| panic!("{e}"))).collect();
    Lab::up(&sc, &opts).unwrap_or_else(|e| panic!("lab up: {e}"))
}

fn lookup(lab: &Lab, name: &str) -> LookupResult {
    let r = dnsmasq::lookup(lab, "pod-a", name, LIMIT).unwrap_or_else(|e| panic!("lookup {name}: {e}"));
    say(&format!("lookup {name}: {r:?}"));
    r
}

/// `name` resolves to exactly `want` from pod-a.
fn resolves(lab: &Lab, name: &str, want: Ipv4Addr) -> bool {
    let r = lookup(lab, name);
    r.ok && r.addresses == [want]
}

fn inject(lab: &mut Lab, f: &mut Failures, fault: &str) -> bool {
    let req: FaultRequest = fault.parse().unwrap_or_else(|e| panic!("{e}"));
    match lab.inject(&req) {
        Ok(params) => {
            say(&format!("injected {fault}: {params:?}"));
            true
        }
        Err(e) => {
            f.check(false, || format!("inject {fault}: {e}"));
            false
        }
    }
}

fn clear(lab: &mut Lab, f: &mut Failures, name: &str) {
    match lab.clear(Some(name)) {
        Ok(cleared) => f.check(cleared == [name], || format!("clear {name} cleared {cleared:?}")),
        Err(e) => f.check(false, || format!("clear {name}: {e}")),
    }
}

/// Healthy: names resolve (a cluster name through the search list, a forwarded name), an
/// unknown name is NXDOMAIN quickly; the policy allows pod-a → pod-b TCP 8080 only.
fn healthy(lab: &Lab, f: &mut Failures, when: &str) {
    let api = lookup(lab, "api");
    f.check(api.ok && api.addresses == [POD_B], || format!("{when}: api resolves to pod-b: {api:?}"));
    f.check(api.answered.as_deref() == Some("api.default.svc.cluster.local"), || {
        format!("{when}: api answered through the first search domain: {api:?}")
    });
    f.check(resolves(lab, "db.corp.example", Ipv4Addr::new(172, 16, 0, 80)), || {
        format!("{when}: db.corp.example resolves through the forward zone")
    });
    let none = lookup(lab, "nope");
    f.check(!none.ok && none.tried.len() == 4 && none.elapsed_ms < 1000, || {
        format!("{when}: an unknown name is NXDOMAIN for every search name, fast: {none:?}")
    });
    f.check(tcp(lab, "pod-a", ALLOWED, 4096, 3).ok, || format!("{when}: policy allows pod-a -> pod-b TCP 8080"));
    f.check(!udp(lab, "pod-a", DENIED_UDP, 64, 2).ok, || format!("{when}: policy denies pod-a -> pod-b UDP 8081"));
    f.check(!ping(lab, "pod-a", "10.244.1.20", 1, 56, None).all_ok(), || format!("{when}: policy denies ping"));
    f.check(udp(lab, "pod-b", DENIED_UDP, 64, 2).ok, || format!("{when}: pod-b's UDP 8081 itself works"));
}

fn queries_for_one_lookup(lab: &Lab, name: &str) -> (usize, LookupResult) {
    let client: IpAddr = POD_A.parse().unwrap_or_else(|e| panic!("{e}"));
    let before = dnsmasq::logged_queries(lab, "coredns", client);
    let r = lookup(lab, name);
    // dnsmasq writes its log as it answers; allow it a moment (bounded).
    let want = r.tried.len();
    let mut seen = 0;
    eventually(Duration::from_secs(2), Duration::from_millis(50), || {
        seen = dnsmasq::logged_queries(lab, "coredns", client).saturating_sub(before);
        seen >= want
    });
    (seen, r)
}

#[test]
fn dns_and_policy_faults_break_and_heal() {
    if !common::can_run("dns_and_policy_faults_break_and_heal") || !have("dnsmasq") {
        return;
    }
    let mut f = Failures::default();
    let mut lab = up(&[]);
    healthy(&lab, &mut f, "healthy");

    // dns-down: lookups time out (2 s x 2 attempts), IP traffic is unaffected.
    if inject(&mut lab, &mut f, "dns-down") {
        let r = lookup(&lab, "api");
        f.check(!r.ok && r.error.as_deref().is_some_and(|e| e.contains("timed out")) && r.elapsed_ms >= 3900, || {
            format!("dns-down: the lookup times out after timeout x attempts: {r:?}")
        });
        f.check(tcp(&lab, "pod-a", ALLOWED, 4096, 3).ok, || "dns-down: TCP by address still works".into());
        clear(&mut lab, &mut f, "dns-down");
        f.check(resolves(&lab, "api", POD_B), || "dns-down: lookups work after clear".into());
    }

    // dns-slow (1000 ms from the scenario): answers arrive, a second late.
    let fast = lookup(&lab, "api");
    f.check(fast.ok && fast.elapsed_ms < 500, || format!("before dns-slow: a lookup is fast: {fast:?}"));
    if inject(&mut lab, &mut f, "dns-slow") {
        let r = lookup(&lab, "api");
        f.check(r.ok && (1000..1900).contains(&r.elapsed_ms) && r.queries == 1, || {
            format!("dns-slow: the answer comes 1 s late, without a retry: {r:?}")
        });
        clear(&mut lab, &mut f, "dns-slow");
        let r = lookup(&lab, "api");
        f.check(r.ok && r.elapsed_ms < 500, || format!("dns-slow: fast again after clear: {r:?}"));
    }
    // With a delay above the pods' 2 s timeout the client retries, as glibc would.
    if inject(&mut lab, &mut f, "dns-slow:2500") {
        let r = lookup(&lab, "api");
        f.check(r.ok && r.queries == 2 && r.elapsed_ms >= 2500, || format!("dns-slow:2500: a retry: {r:?}"));
        clear(&mut lab, &mut f, "dns-slow");
    }

    // dns-stale: the name answers the old address, where nothing listens.
    if inject(&mut lab, &mut f, "dns-stale") {
        f.check(resolves(&lab, "api", STALE), || "dns-stale: api resolves to the stale address".into());
        let target = format!("{STALE}:8080");
        f.check(!tcp(&lab, "pod-a", &target, 1024, 1).ok, || "dns-stale: TCP to the stale address fails".into());
        clear(&mut lab, &mut f, "dns-stale");
        f.check(resolves(&lab, "api", POD_B), || "dns-stale: api resolves to pod-b after clear".into());
    }

    // ndots-amplification: one lookup of an external name, queries the resolver sees.
    let (healthy_q, r) = queries_for_one_lookup(&lab, "db.corp.example");
    f.check(r.ok && healthy_q == 1, || format!("ndots:2: one query for db.corp.example, saw {healthy_q}: {r:?}"));
    if inject(&mut lab, &mut f, "ndots-amplification") {
        let (n, r) = queries_for_one_lookup(&lab, "db.corp.example");
        // 3 Kubernetes search domains + 3 extra ones, NXDOMAIN each, then the real name.
        f.check(r.ok && n == 7 && r.tried.len() == 7, || {
            format!("ndots-amplification: 7 queries for one lookup, saw {n}: {r:?}")
        });
        clear(&mut lab, &mut f, "ndots-amplification");
        let (n, _) = queries_for_one_lookup(&lab, "db.corp.example");
        f.check(n == 1, || format!("ndots-amplification: one query again after clear, saw {n}"));
    }

    // dns-egress-drop: pod-a's DNS is dropped on the node, the allowed TCP still passes.
    if inject(&mut lab, &mut f, "dns-egress-drop") {
        let r = lookup(&lab, "api");
        f.check(!r.ok && r.error.as_deref().is_some_and(|e| e.contains("timed out")), || {
            format!("dns-egress-drop: lookups time out: {r:?}")
        });
        f.check(tcp(&lab, "pod-a", ALLOWED, 4096, 3).ok, || "dns-egress-drop: TCP 8080 still allowed".into());
        clear(&mut lab, &mut f, "dns-egress-drop");
    }

    healthy(&lab, &mut f, "after every fault");
    f.check(lab.faults().is_empty(), || format!("faults left active: {:?}", lab.faults()));

    // Dropped with faults on (a frozen dnsmasq among them): nothing of the lab remains.
    inject(&mut lab, &mut f, "dns-down");
    inject(&mut lab, &mut f, "dns-slow");
    let id = lab.id().to_string();
    let work: PathBuf = lab.state().work_dir.clone();
    let pids: Vec<u32> = lab.state().processes.iter().map(|p| p.process.pid).collect();
    f.check(pids.len() == 5, || format!("2 dnsmasq, 2 delay proxies and the echo run: {pids:?}"));
    drop(lab);
    f.check(leftovers(&id).is_empty(), || format!("left behind: {:?}", leftovers(&id)));
    f.check(!work.exists(), || format!("{} still exists", work.display()));
    assert!(f.0.is_empty(), "{} failure(s): {:#?}", f.0.len(), f.0);
}

fn have(prog: &str) -> bool {
    let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()));
    if !found {
        // Same rule as the other lab prerequisites: a skip is a failure where the lab is required.
        assert!(std::env::var_os("NETSLEUTH_LAB_REQUIRED").is_none_or(|v| v != "1"), "{prog} is not installed");
        say(&format!("SKIPPED: {prog} is not installed"));
    }
    found
}

/// Namespaces and processes that still carry the lab id.
fn leftovers(id: &str) -> Vec<String> {
    let mut out = Vec::new();
    let ns = std::process::Command::new("ip").args(["netns", "list"]).output().map(|o| o.stdout).unwrap_or_default();
    out.extend(String::from_utf8_lossy(&ns).lines().filter(|l| l.contains(id)).map(|l| format!("namespace {l}")));
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(id) {
            out.push(format!("process {pid} {cmd}"));
        }
    }
    out
}

/// The shipped scenario has the documented shape; bad DNS services are scenario errors with
/// their line (no root needed).
#[test]
fn dns_scenario_shape_and_errors() {
    use netsleuth_lab::scenario::Service;
    let s = scenario::builtin("dns-and-policy").expect("shipped").unwrap_or_else(|e| panic!("{e}"));
    let sc = &s.scenario;
    assert_eq!(sc.hosts.len(), 5);
    let dnsmasqs: Vec<&str> = sc
        .hosts
        .iter()
        .filter(|(_, h)| h.value.services.iter().any(|s| matches!(s.value, Service::Dnsmasq(_))))
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(dnsmasqs, ["coredns", "upstream"]);
    let resolv = sc.host("pod-a").and_then(|h| {
        h.services.iter().find_map(|s| match &s.value {
            Service::Resolv(r) => Some(r.clone()),
            _ => None,
        })
    });
    let resolv = resolv.expect("pod-a has a resolv service");
    assert_eq!(resolv.search, ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"]);
    assert_eq!((resolv.ndots, resolv.timeout, resolv.attempts), (2, 2, 2));
    for f in ["dns-down", "dns-slow", "dns-stale", "ndots-amplification", "dns-egress-drop"] {
        let r = netsleuth_lab::faults::resolve(&FaultRequest::named(f), sc);
        assert!(r.is_ok(), "{f}: {r:?}");
    }

    let bad = "name: t\nhosts:\n  a:\n    services:\n      - dnsmasq:\n          listen: 10.1.0.1\n          \
               records: {\"bad name\": 8.8.8.8}\n  b:\n    services:\n      - resolv: {nameservers: [10.1.0.1], \
               search: [a..b], ndots: 20}\n";
    let e = match scenario::parse(bad, "t.yaml") {
        Ok(_) => panic!("must be rejected"),
        Err(e) => e,
    };
    let text = e.to_string();
    assert_eq!(e.errors.len(), 4, "{text}");
    assert!(text.contains("t.yaml:5:") && text.contains("\"bad name\" is not a DNS name"), "{text}");
    assert!(text.contains("8.8.8.8 is outside the lab ranges"), "{text}");
    assert!(text.contains("t.yaml:10:") && text.contains("\"a..b\"") && text.contains("ndots 20"), "{text}");
    let unknown = "name: t\nhosts:\n  a:\n    services:\n      - dnsmasq: {listen: 10.1.0.1, cache: 5}\n";
    assert!(scenario::parse(unknown, "t.yaml").is_err(), "unknown fields are errors");
}
