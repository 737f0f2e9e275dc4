//! Accuracy benchmark of `netsleuth diagnose` on the lab: for every scenario and every fault
//! it lists, inject the fault, diagnose from the scenario's source host, check the top cause;
//! then "follow the hop": diagnose again on the fault's host (when it is not the source) and
//! check that the cause named there is the mechanism (`FaultSpec::diagnose_on_host`).
//!
//! Needs root (skipped otherwise; fails under NETSLEUTH_LAB_REQUIRED=1). Writes `results.md`
//! and `results.json` to $NETSLEUTH_ACCURACY_OUT (default `target/diagnose-accuracy`).
//! NETSLEUTH_ACCURACY_SCENARIOS=a,b and NETSLEUTH_ACCURACY_FAULTS=f,g pick a subset;
//! NETSLEUTH_ACCURACY_ENFORCE=1 asserts the goal (top-1 >= 95 %, no false alarm); otherwise
//! the numbers are only reported. See docs/diagnose-accuracy.md.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use netsleuth_lab::faults::{self, FaultSpec};
use netsleuth_lab::scenario::{self, Service};
use netsleuth_lab::{dnsmasq, FaultRequest, Lab, StaticVisibility, UpOptions};
use serde_json::{json, Value};

/// One diagnosis of the benchmark.
#[derive(Debug, Clone)]
struct Case {
    scenario: String,
    /// The lab host diagnose ran in.
    vantage: String,
    /// None: a healthy run.
    fault: Option<String>,
    target: String,
    /// Accepted cause ids (empty for healthy runs: no cause is the right answer).
    accepted: Vec<String>,
    /// Rule ids of the causes, most likely first.
    causes: Vec<String>,
    verdict: String,
    top1: bool,
    top3: bool,
    wall_s: f64,
    /// Why the run could not be judged (inject failed, diagnose printed no JSON ...).
    error: Option<String>,
    /// The full JSON report (written to `reports/` for misses to be studied).
    report: Option<Value>,
    /// The second run, on the fault's host (faulted cases whose fault host is not the source).
    on_host: Option<Box<Case>>,
    /// Not counted: the fault host does not reach the target even in the healthy lab, so the
    /// same command says nothing about the fault there (shown, not judged).
    not_counted: Option<String>,
}

fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "[accuracy] {msg}");
}

fn env_list(name: &str) -> Option<BTreeSet<String>> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
}

fn out_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("NETSLEUTH_ACCURACY_OUT") {
        return PathBuf::from(d);
    }
    // target/debug/deps/<test> → target
    let exe = std::env::current_exe().expect("test binary path");
    let target = exe.ancestors().nth(3).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("target"));
    target.join("diagnose-accuracy")
}

fn netsleuth() -> String {
    env!("CARGO_BIN_EXE_netsleuth").to_string()
}

fn up(name: &str, faults: Vec<FaultRequest>) -> Result<Lab, String> {
    let sc = scenario::load(name).map_err(|e| e.to_string())?;
    let mut opts = UpOptions::new(vec![netsleuth(), "lab".into(), "echo".into()]);
    opts.faults = faults;
    Lab::up(&sc, &opts).map_err(|e| format!("lab up {name}: {e}"))
}

/// The addresses of a lab host (what a cause must mention to blame that host).
fn host_addresses(lab: &Lab, host: &str) -> Vec<String> {
    let Ok(out) = lab.exec(host, &["ip", "-j", "addr", "show"], Duration::from_secs(5)) else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    let mut addrs = Vec::new();
    for link in v.as_array().into_iter().flatten() {
        for a in link["addr_info"].as_array().into_iter().flatten() {
            if let Some(l) = a["local"].as_str() {
                if !l.starts_with("127.") && l != "::1" && !l.starts_with("fe80") {
                    addrs.push(l.to_string());
                }
            }
        }
    }
    addrs
}

/// A DNS name of the scenario that its resolvers answer with the target's address.
fn target_name(lab: &Lab, ip: IpAddr) -> Option<String> {
    lab.scenario().hosts.values().flat_map(|h| h.value.services.iter()).find_map(|s| match &s.value {
        Service::Dnsmasq(d) => d.records.iter().find(|(_, a)| **a == ip).map(|(n, _)| n.clone()),
        _ => None,
    })
}

/// Runs `netsleuth diagnose` in lab host `host`; returns the JSON report and wall time.
/// `target` is `ADDR:PORT` or `NAME:PORT`, optionally prefixed with a protocol (`udp ADDR:PORT`).
/// The resolv.conf is the host's lab one, else the path source's (`source`): on a router the
/// question is whether the name the source looks up resolves. On a host running the lab's
/// charon, its vici socket, swanctl.conf and log are passed (they are not in the default
/// places: charon runs in its own mount namespace).
fn diagnose(lab: &Lab, host: &str, source: &str, target: &str) -> (Result<Value, String>, f64) {
    let exe = netsleuth();
    let work = &lab.state().work_dir;
    let own = dnsmasq::resolv_path(work, host);
    let resolv = if own.is_file() { own } else { dnsmasq::resolv_path(work, source) };
    let (proto, to) = target.split_once(' ').map_or((None, target), |(p, t)| (Some(p), t));
    let mut args: Vec<String> =
        vec![exe, "diagnose".into(), "--to".into(), to.into(), "--format".into(), "json".into()];
    if let Some(p) = proto {
        args.push("--proto".into());
        args.push(p.into());
    }
    if resolv.is_file() {
        args.push("--resolv-conf".into());
        args.push(resolv.display().to_string());
    }
    let ipsec = work.join("ipsec").join(host);
    if ipsec.join("swanctl.conf").is_file() {
        args.push("--swanctl-uri".into());
        args.push(format!("unix://{}", ipsec.join("run/charon.vici").display()));
        args.push("--swanctl-conf".into());
        args.push(ipsec.join("swanctl.conf").display().to_string());
        args.push("--charon-log".into());
        args.push(ipsec.join("charon.log").display().to_string());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let t = Instant::now();
    let out = lab.exec(host, &argv, Duration::from_secs(90));
    let wall = t.elapsed().as_secs_f64();
    let out = match out {
        Ok(o) => o,
        Err(e) => return (Err(format!("exec: {e}")), wall),
    };
    if out.timed_out {
        return (Err("diagnose did not finish within 90 s".into()), wall);
    }
    match serde_json::from_str::<Value>(&out.stdout) {
        Ok(v) if v.get("causes").is_some() => (Ok(v), wall),
        _ => (
            Err(format!(
                "no JSON report (exit {:?}): {}",
                out.code,
                out.stderr.lines().chain(out.stdout.lines()).take(3).collect::<Vec<_>>().join(" | ")
            )),
            wall,
        ),
    }
}

/// Key of `hosts` holding the addresses of every host that runs a tunnel (`ID@tunnel`).
const TUNNEL_HOSTS: &str = "@tunnel";

/// Prefix of the `hosts` keys that hold, for a host H, the addresses of H itself and of
/// every host whose route to the target has its next hop on H (`ID@segment`).
const SEGMENT_PREFIX: &str = "@segment:";

/// For every lab host H: H's addresses plus those of the hosts that forward to the target
/// through H (read from each host's own `ip route get`, a local lookup that sends nothing).
fn upstream_hosts(lab: &Lab, target: IpAddr, hosts: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
    let target = target.to_string();
    let mut via: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in &lab.state().hosts {
        let Ok(out) = lab.exec(&h.name, &["ip", "-j", "route", "get", &target], Duration::from_secs(5)) else {
            continue;
        };
        let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        let mine = hosts.get(&h.name).cloned().unwrap_or_default();
        let Some(gw) = v.get(0).and_then(|r| r["gateway"].as_str()) else {
            // No gateway and not on-link at a tunnel host: the packet enters the tunnel, whose
            // far end (the other tunnel hosts of the scenario) is the next router.
            let tunnel = hosts.get(TUNNEL_HOSTS).cloned().unwrap_or_default();
            if mine.iter().any(|a| tunnel.contains(a)) {
                for (k, addrs) in hosts.iter().filter(|(k, _)| !k.starts_with('@') && **k != h.name) {
                    if addrs.iter().any(|a| tunnel.contains(a)) {
                        via.entry(k.clone()).or_default().extend(mine.iter().cloned());
                    }
                }
            }
            continue;
        };
        if let Some((owner, _)) = hosts.iter().find(|(k, addrs)| !k.starts_with('@') && addrs.iter().any(|a| a == gw)) {
            via.entry(owner.clone()).or_default().extend(mine);
        }
    }
    hosts
        .iter()
        .filter(|(k, _)| !k.starts_with('@'))
        .map(|(k, addrs)| {
            let mut all = addrs.clone();
            all.extend(via.get(k).cloned().unwrap_or_default());
            (format!("{SEGMENT_PREFIX}{k}"), all)
        })
        .collect()
}

/// Whether a cause (a JSON finding) matches an accepted id `ID` or `ID@PARAM`.
fn matches(
    cause: &Value,
    accepted: &str,
    params: &BTreeMap<String, String>,
    hosts: &BTreeMap<String, Vec<String>>,
) -> bool {
    let (id, param) = accepted.split_once('@').map_or((accepted, None), |(i, p)| (i, Some(p)));
    if cause["rule"].as_str() != Some(id) {
        return false;
    }
    let Some(param) = param else {
        return true;
    };
    let mut text = String::new();
    for k in ["subject", "title", "detail"] {
        text.push_str(cause[k].as_str().unwrap_or_default());
        text.push('\n');
    }
    for e in cause["evidence"].as_array().into_iter().flatten() {
        text.push_str(e["excerpt"].as_str().unwrap_or_default());
        text.push('\n');
    }
    let needles: Vec<String> = match params.get(param) {
        _ if param == "tunnel" => hosts.get(TUNNEL_HOSTS).cloned().unwrap_or_default(),
        _ if param == "segment" => {
            params.get("host").and_then(|h| hosts.get(&format!("{SEGMENT_PREFIX}{h}"))).cloned().unwrap_or_default()
        }
        Some(v) if param == "host" => hosts.get(v).cloned().unwrap_or_default(),
        Some(v) => vec![v.clone()],
        None => Vec::new(),
    };
    // Whole addresses only: 10.0.0.1 must not match inside 10.0.0.12.
    needles.iter().any(|n| {
        text.match_indices(n.as_str()).any(|(i, _)| {
            let digit = |c: char| c.is_ascii_digit();
            let rest = &text[i + n.len()..];
            let after_ok = !(rest.starts_with(digit) || rest.starts_with('.') && rest[1..].starts_with(digit));
            let before_ok = !text[..i].ends_with(|c: char| c.is_ascii_digit() || c == '.');
            after_ok && before_ok
        })
    })
}

fn judge(
    case: &mut Case,
    report: Result<Value, String>,
    params: &BTreeMap<String, String>,
    hosts: &BTreeMap<String, Vec<String>>,
) {
    let v = match report {
        Ok(v) => v,
        Err(e) => {
            case.error = Some(e);
            return;
        }
    };
    case.report = Some(v.clone());
    let causes: Vec<Value> = v["causes"].as_array().cloned().unwrap_or_default();
    case.causes = causes.iter().map(|c| c["rule"].as_str().unwrap_or("?").to_string()).collect();
    case.verdict = v["verdict"].as_str().unwrap_or_default().to_string();
    if case.fault.is_none() {
        case.top1 = causes.is_empty();
        case.top3 = case.top1;
        return;
    }
    let accepted: Vec<&str> = case.accepted.iter().map(|a| a.trim_start_matches('~')).collect();
    let hit = |c: &Value| accepted.iter().any(|a| matches(c, a, params, hosts));
    if case.accepted.iter().all(|a| a.starts_with('~')) && causes.is_empty() {
        // A latent fault: right when nothing is called broken and the risk is named as context.
        let context = v["other_findings"].as_array().cloned().unwrap_or_default();
        case.top1 = context.iter().any(hit);
        case.top3 = case.top1;
        case.causes = vec![format!(
            "(context: {})",
            context.iter().filter_map(|c| c["rule"].as_str()).collect::<Vec<_>>().join(", ")
        )];
        return;
    }
    case.top1 = causes.first().is_some_and(hit);
    case.top3 = causes.iter().take(3).any(hit);
}

/// Waits (bounded) until the path works again after a fault was cleared, so the next fault
/// starts from a healthy lab; returns whether it did.
fn wait_healthy(lab: &Lab, source: &str, target: SocketAddr) -> bool {
    let end = Instant::now() + Duration::from_secs(40);
    while Instant::now() < end {
        if lab.tcp_echo(source, target, 64, Duration::from_secs(3)).is_ok_and(|r| r.ok) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}

fn error_case(name: &str, e: String) -> Case {
    Case {
        scenario: name.into(),
        vantage: String::new(),
        fault: None,
        target: String::new(),
        accepted: vec![],
        causes: vec![],
        verdict: String::new(),
        top1: false,
        top3: false,
        wall_s: 0.0,
        error: Some(e),
        report: None,
        on_host: None,
        not_counted: None,
    }
}

/// The fault's host, when it is not the path's source (a second vantage point).
fn fault_host(lab: &Lab, spec: &FaultSpec, source: &str) -> Option<String> {
    let host = lab.scenario().fault_defaults(spec.name).remove("host")?;
    (host != source).then_some(host)
}

fn run_scenario(name: &str, only_faults: Option<&BTreeSet<String>>, cases: &mut Vec<Case>) {
    let started = Instant::now();
    let mut lab = match up(name, Vec::new()) {
        Ok(l) => l,
        Err(e) => {
            cases.push(error_case(name, e));
            return;
        }
    };
    say(&format!("{name}: lab {} up in {:.1} s", lab.id(), started.elapsed().as_secs_f64()));
    let path = lab.scenario().path.as_ref().map(|p| p.value.clone()).expect("scenario has a path");
    let source = path.source.clone();
    let ip_target = path.target.to_string();
    let name_target = target_name(&lab, path.target.ip()).map(|n| format!("{n}:{}", path.target.port()));
    let mut hosts: BTreeMap<String, Vec<String>> =
        lab.state().hosts.iter().map(|h| (h.name.clone(), host_addresses(&lab, &h.name))).collect();
    let tunnel: Vec<String> = lab
        .scenario()
        .hosts
        .iter()
        .filter(|(_, h)| {
            h.value.services.iter().any(|s| matches!(s.value, Service::Wireguard(_) | Service::Strongswan(_)))
        })
        .flat_map(|(n, _)| hosts.get(n).cloned().unwrap_or_default())
        .collect();
    hosts.insert(TUNNEL_HOSTS.into(), tunnel);
    // `ID@segment`: a silent drop is located by the last hop that still answers, so a cause
    // naming the router just before the faulted host names the faulted segment.
    let upstream = upstream_hosts(&lab, path.target.ip(), &hosts);
    hosts.extend(upstream);

    let new_case = |fault: Option<&FaultSpec>, vantage: &str, target: &str| Case {
        scenario: name.into(),
        vantage: vantage.into(),
        fault: fault.map(|f| f.name.to_string()),
        target: target.into(),
        accepted: fault
            .map(|f| {
                let list = if vantage == source { f.diagnose_causes } else { f.diagnose_on_host };
                list.iter().map(|s| s.to_string()).collect()
            })
            .unwrap_or_default(),
        causes: vec![],
        verdict: String::new(),
        top1: false,
        top3: false,
        wall_s: 0.0,
        error: None,
        report: None,
        on_host: None,
        not_counted: None,
    };
    let record = |c: &Case| {
        let line = |c: &Case| {
            format!(
                "{} on {} -> {}: top1 {} top3 {} [{}] {:.1} s{}{}",
                c.fault.as_deref().unwrap_or("healthy"),
                c.vantage,
                c.target,
                c.top1,
                c.top3,
                c.causes.join(", "),
                c.wall_s,
                c.error.as_ref().map(|e| format!(" ERROR {e}")).unwrap_or_default(),
                c.not_counted.as_ref().map(|e| format!(" (not counted: {e})")).unwrap_or_default()
            )
        };
        say(&format!("{name}: {}", line(c)));
        if let Some(o) = &c.on_host {
            say(&format!("{name}:   follow the hop: {}", line(o)));
        }
    };

    // Healthy: by address, by name where the scenario's DNS knows the target, and the path's
    // UDP and HTTP echo services: every variant must report no cause. A variant the healthy
    // scenario itself blocks (dns-and-policy allows TCP 8080 only) is not a healthy run.
    let udp_works = |u: SocketAddr| lab.udp_echo(&source, u, 64, Duration::from_secs(3)).is_ok_and(|r| r.ok);
    let udp = path.udp.filter(|u| {
        let works = udp_works(*u);
        if !works {
            say(&format!("{name}: UDP {u} does not work in the healthy lab (its policy): no healthy UDP run"));
        }
        works
    });
    let healthy: Vec<String> = std::iter::once(ip_target.clone())
        .chain(name_target.clone())
        .chain(udp.map(|u| format!("udp {u}")))
        .chain(path.http.map(|h| format!("http {h}")))
        .collect();
    for t in healthy {
        let mut c = new_case(None, &source, &t);
        let (r, wall) = diagnose(&lab, &source, &source, &t);
        c.wall_s = wall;
        judge(&mut c, r, &BTreeMap::new(), &hosts);
        record(&c);
        cases.push(c);
    }

    let applicable: Vec<&'static FaultSpec> = faults::catalog()
        .iter()
        .filter(|f| lab.scenario().faults.contains_key(f.name))
        .filter(|f| only_faults.is_none_or(|o| o.contains(f.name)))
        .collect();
    // DNS faults (their layer, or a diagnosis at the DNS layer) are seen by looking the target
    // up by name; the others by address.
    let target_for = |f: &FaultSpec| -> String {
        let dns = f.layer == netsleuth_model::Layer::Dns || f.diagnose_causes.iter().any(|c| c.starts_with("DIAG-DNS"));
        match &name_target {
            Some(n) if dns => n.clone(),
            _ => ip_target.clone(),
        }
    };

    // The second vantage points: the fault hosts other than the source. A host that does not
    // reach the target in the healthy lab (an underlay router without a route to the inner
    // addresses, a pod the policy isolates) cannot test the path with the same command: its
    // runs are shown but not counted. The others get healthy runs first (no false alarms on
    // a router either).
    let mut off_path: BTreeMap<String, String> = BTreeMap::new();
    let on_hosts: BTreeSet<String> = applicable.iter().filter_map(|f| fault_host(&lab, f, &source)).collect();
    for h in &on_hosts {
        if !lab.tcp_echo(h, path.target, 64, Duration::from_secs(3)).is_ok_and(|r| r.ok) {
            let why = format!("{h} does not reach {} in the healthy lab", path.target);
            say(&format!("{name}: {why}: its on-host runs are not counted"));
            off_path.insert(h.clone(), why);
            continue;
        }
        let targets: BTreeSet<String> = applicable
            .iter()
            .filter(|f| fault_host(&lab, f, &source).as_deref() == Some(h.as_str()))
            .map(|f| target_for(f))
            .chain(std::iter::once(ip_target.clone()))
            .collect();
        for t in targets {
            let mut c = new_case(None, h, &t);
            let (r, wall) = diagnose(&lab, h, &source, &t);
            c.wall_s = wall;
            judge(&mut c, r, &BTreeMap::new(), &hosts);
            record(&c);
            cases.push(c);
        }
    }
    // Diagnoses the case from the source, then on the fault host.
    let run_case = |lab: &Lab, spec: &FaultSpec, target: &str, params: &BTreeMap<String, String>| -> Case {
        let mut c = new_case(Some(spec), &source, target);
        let (r, wall) = diagnose(lab, &source, &source, target);
        c.wall_s = wall;
        judge(&mut c, r, params, &hosts);
        if let Some(h) = fault_host(lab, spec, &source) {
            let mut o = new_case(Some(spec), &h, target);
            let (r, wall) = diagnose(lab, &h, &source, target);
            o.wall_s = wall;
            judge(&mut o, r, params, &hosts);
            o.not_counted = off_path.get(&h).cloned();
            c.on_host = Some(Box::new(o));
        }
        c
    };

    for spec in applicable.iter().filter(|f| f.static_visibility != StaticVisibility::FromUp) {
        let target = target_for(spec);
        let c = match lab.inject(&FaultRequest::named(spec.name)) {
            Ok(params) => run_case(&lab, spec, &target, &params),
            Err(e) => {
                let mut c = new_case(Some(spec), &source, &target);
                c.error = Some(format!("inject: {e}"));
                c
            }
        };
        record(&c);
        cases.push(c);
        if let Err(e) = lab.clear(Some(spec.name)) {
            say(&format!("{name}: clear {}: {e}", spec.name));
        }
        if !wait_healthy(&lab, &source, path.target) {
            say(&format!("{name}: path not healthy 40 s after clearing {}", spec.name));
        }
    }
    if let Err(e) = lab.down() {
        say(&format!("{name}: lab down: {e}"));
    }
    // Faults that need the tunnel to come up with them in place: a fresh lab each.
    for spec in applicable.iter().filter(|f| f.static_visibility == StaticVisibility::FromUp) {
        let target = target_for(spec);
        let c = match up(name, vec![FaultRequest::named(spec.name)]) {
            Ok(lab) => {
                let params = lab.faults().first().map(|f| f.params.clone()).unwrap_or_default();
                let c = run_case(&lab, spec, &target, &params);
                if let Err(e) = lab.down() {
                    say(&format!("{name}: lab down: {e}"));
                }
                c
            }
            Err(e) => {
                let mut c = new_case(Some(spec), &source, &target);
                c.error = Some(e);
                c
            }
        };
        record(&c);
        cases.push(c);
    }
    say(&format!("{name}: done in {:.1} s", started.elapsed().as_secs_f64()));
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Summary numbers and the markdown table.
fn summarize(cases: &[Case], total_s: f64) -> (Value, String) {
    let faulted: Vec<&Case> = cases.iter().filter(|c| c.fault.is_some()).collect();
    let healthy: Vec<&Case> = cases.iter().filter(|c| c.fault.is_none()).collect();
    let top1 = faulted.iter().filter(|c| c.top1).count();
    let top3 = faulted.iter().filter(|c| c.top3).count();
    let false_alarms = healthy.iter().filter(|c| !c.top1).count();
    // Follow the hop: the on-host runs that count (the fault host reaches the target when healthy).
    let on_host: Vec<&Case> =
        faulted.iter().filter_map(|c| c.on_host.as_deref()).filter(|o| o.not_counted.is_none()).collect();
    let on_top1 = on_host.iter().filter(|c| c.top1).count();
    let on_top3 = on_host.iter().filter(|c| c.top3).count();
    let all_runs: Vec<&Case> = cases.iter().chain(faulted.iter().filter_map(|c| c.on_host.as_deref())).collect();
    let mut walls: Vec<f64> = all_runs.iter().filter(|c| c.error.is_none()).map(|c| c.wall_s).collect();
    walls.sort_by(f64::total_cmp);
    let pct = |n: usize, d: usize| if d == 0 { 0.0 } else { (n as f64) * 100.0 / (d as f64) };
    let summary = json!({
        "faulted_runs": faulted.len(),
        "top1": top1,
        "top3": top3,
        "top1_pct": pct(top1, faulted.len()),
        "top3_pct": pct(top3, faulted.len()),
        "on_host_runs": on_host.len(),
        "on_host_top1": on_top1,
        "on_host_top3": on_top3,
        "on_host_top1_pct": pct(on_top1, on_host.len()),
        "on_host_not_counted": faulted.iter().filter_map(|c| c.on_host.as_deref()).filter(|o| o.not_counted.is_some()).count(),
        "healthy_runs": healthy.len(),
        "false_alarms": false_alarms,
        "errors": all_runs.iter().filter(|c| c.error.is_some()).count(),
        "median_s": percentile(&walls, 0.5),
        "p95_s": percentile(&walls, 0.95),
        "max_s": walls.last().copied().unwrap_or(0.0),
        "total_s": total_s,
    });
    let mut md = String::new();
    md.push_str(&format!(
        "top-1 {top1}/{} ({:.1} %), top-3 {top3}/{} ({:.1} %); named on the fault host: top-1 {on_top1}/{} \
         ({:.1} %), top-3 {on_top3}/{}; false alarms {false_alarms}/{} healthy runs ({} on fault hosts); \
         wall time per diagnosis median {:.1} s, p95 {:.1} s, max {:.1} s; benchmark total {:.0} s\n\n",
        faulted.len(),
        pct(top1, faulted.len()),
        faulted.len(),
        pct(top3, faulted.len()),
        on_host.len(),
        pct(on_top1, on_host.len()),
        on_host.len(),
        healthy.len(),
        healthy
            .iter()
            .filter(|c| cases.iter().any(|f| f.scenario == c.scenario && f.fault.is_some() && f.vantage != c.vantage))
            .count(),
        percentile(&walls, 0.5),
        percentile(&walls, 0.95),
        walls.last().copied().unwrap_or(0.0),
        total_s
    ));
    md.push_str(
        "| scenario | fault | host | target | top-1 | top-3 | causes (ranked) | accepted | time s \
         | on-host top-1 | on-host causes (ranked) | on-host accepted | on-host s |\n",
    );
    md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let mark = |b: bool| if b { "yes" } else { "**no**" };
    let causes_of = |c: &Case| match &c.error {
        Some(e) => format!("ERROR: {}", e.replace('|', "/")),
        None if c.causes.is_empty() => "(none)".into(),
        None => c.causes.join(", "),
    };
    for c in cases {
        let (oh_mark, oh_causes, oh_acc, oh_s) = match c.on_host.as_deref() {
            Some(o) => (
                match &o.not_counted {
                    Some(_) => "n/a".to_string(),
                    None => mark(o.top1).to_string(),
                },
                format!("{} on {}", causes_of(o), o.vantage),
                o.accepted.join(", "),
                format!("{:.1}", o.wall_s),
            ),
            None => ("".into(), "".into(), "".into(), "".into()),
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} |\n",
            c.scenario,
            c.fault.as_deref().unwrap_or("(healthy)"),
            c.vantage,
            c.target,
            mark(c.top1),
            mark(c.top3),
            causes_of(c),
            if c.fault.is_none() { "(no cause)".into() } else { c.accepted.join(", ") },
            c.wall_s,
            oh_mark,
            oh_causes,
            oh_acc,
            oh_s
        ));
    }
    (summary, md)
}

#[test]
fn diagnose_accuracy_benchmark() {
    if !netsleuth_lab::is_root() {
        assert!(
            std::env::var_os("NETSLEUTH_LAB_REQUIRED").is_none_or(|v| v != "1"),
            "diagnose_accuracy_benchmark: not root but NETSLEUTH_LAB_REQUIRED=1"
        );
        say("SKIPPED diagnose_accuracy_benchmark: not root (the lab creates network namespaces)");
        return;
    }
    let started = Instant::now();
    let only = env_list("NETSLEUTH_ACCURACY_SCENARIOS");
    let only_faults = env_list("NETSLEUTH_ACCURACY_FAULTS");
    let mut cases = Vec::new();
    for name in scenario::builtin_names() {
        if only.as_ref().is_some_and(|o| !o.contains(name)) {
            continue;
        }
        run_scenario(name, only_faults.as_ref(), &mut cases);
    }
    let total = started.elapsed().as_secs_f64();
    let (summary, md) = summarize(&cases, total);
    let dir = out_dir();
    let _ = std::fs::create_dir_all(&dir);
    let row = |c: &Case| {
        json!({
            "scenario": c.scenario, "vantage": c.vantage, "fault": c.fault, "target": c.target,
            "accepted": c.accepted, "causes": c.causes, "verdict": c.verdict, "top1": c.top1, "top3": c.top3,
            "wall_s": c.wall_s, "error": c.error, "not_counted": c.not_counted,
        })
    };
    let rows: Vec<Value> = cases
        .iter()
        .map(|c| {
            let mut r = row(c);
            if let Some(o) = c.on_host.as_deref() {
                r["on_host"] = row(o);
            }
            r
        })
        .collect();
    let doc = json!({ "summary": summary, "cases": rows });
    let _ = std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(&doc).unwrap_or_default());
    let _ = std::fs::write(dir.join("results.md"), &md);
    let reports = dir.join("reports");
    let _ = std::fs::create_dir_all(&reports);
    for c in cases.iter().chain(cases.iter().filter_map(|c| c.on_host.as_deref())) {
        if let Some(r) = &c.report {
            let file = format!(
                "{}--{}--{}--{}.json",
                c.scenario,
                c.fault.as_deref().unwrap_or("healthy"),
                c.vantage,
                c.target.replace([':', ' '], "_")
            );
            let _ = std::fs::write(reports.join(file), serde_json::to_string_pretty(r).unwrap_or_default());
        }
    }
    say(&format!("results in {}:\n{md}", dir.display()));
    assert!(!cases.is_empty(), "no scenario matched NETSLEUTH_ACCURACY_SCENARIOS={only:?}");
    if std::env::var_os("NETSLEUTH_ACCURACY_ENFORCE").is_some_and(|v| v == "1") {
        let top1 = summary["top1_pct"].as_f64().unwrap_or(0.0);
        assert!(top1 >= 95.0, "top-1 accuracy {top1:.1} % < 95 %:\n{md}");
        assert_eq!(summary["false_alarms"], 0, "false alarms on healthy runs:\n{md}");
        assert_eq!(summary["errors"], 0, "runs that could not be judged:\n{md}");
    }
}

#[test]
fn cause_matching_respects_qualifiers() {
    let params: BTreeMap<String, String> =
        [("host".to_string(), "gw".to_string()), ("ip".to_string(), "10.0.0.9".to_string())].into();
    let hosts: BTreeMap<String, Vec<String>> = [("gw".to_string(), vec!["10.0.0.1".to_string()])].into();
    let c = json!({"rule": "DIAG-HOP-001", "subject": "path", "title": "t", "detail": "dropped after hop 2 (10.0.0.1)", "evidence": []});
    assert!(matches(&c, "DIAG-HOP-001", &params, &hosts));
    assert!(matches(&c, "DIAG-HOP-001@host", &params, &hosts));
    assert!(!matches(&c, "DIAG-HOP-002", &params, &hosts));
    assert!(!matches(&c, "DIAG-HOP-001@ip", &params, &hosts));
    let other = json!({"rule": "DIAG-HOP-001", "detail": "dropped after 10.0.0.12", "evidence": []});
    assert!(!matches(&other, "DIAG-HOP-001@host", &params, &hosts), "10.0.0.1 is not 10.0.0.12");
    let mut with_tunnel = hosts.clone();
    with_tunnel.insert(TUNNEL_HOSTS.into(), vec!["10.0.0.12".into()]);
    assert!(matches(&other, "DIAG-HOP-001@tunnel", &params, &with_tunnel));
    assert!(!matches(&c, "DIAG-HOP-001@tunnel", &params, &with_tunnel));
    let mut with_segment = hosts.clone();
    with_segment.insert(format!("{SEGMENT_PREFIX}gw"), vec!["10.0.0.1".into(), "10.0.0.12".into()]);
    assert!(matches(&other, "DIAG-HOP-001@segment", &params, &with_segment), "the router before gw");
    assert!(!matches(&other, "DIAG-HOP-001@host", &params, &with_segment), "@host stays strict");
    let elsewhere = json!({"rule": "DIAG-HOP-001", "detail": "dropped after 10.0.0.13", "evidence": []});
    assert!(!matches(&elsewhere, "DIAG-HOP-001@segment", &params, &with_segment));
}
