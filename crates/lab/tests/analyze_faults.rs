//! Lab → `collect_bundle` → `read_bundle` → `analyze`: every fault of a scenario that a static
//! rule can see must make that rule report a new finding (not in the healthy baseline) on the
//! host the fault touches. Needs root; one lab per scenario serves every fault visible right
//! after inject. Scenarios: k8s-wireguard-site, ipsec-hybrid, dns-and-policy (one at a time).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::say;
use netsleuth_analyze::{analyze, AnalyzeOptions};
use netsleuth_ingest::{read_bundle, BundleOptions, Redactor};
use netsleuth_lab::faults::{self, FaultSpec};
use netsleuth_lab::{scenario, strongswan, FaultRequest, Lab, StaticVisibility, UpOptions};
use netsleuth_model::finding::{Finding, Location, Severity};
use netsleuth_probe::collect::{collect_bundle, CollectOptions};

/// The labs of this file run one after the other: in parallel on a small machine, the
/// tunnels' re-establishing waits of inject and clear would race their time limits.
static SERIAL: Mutex<()> = Mutex::new(());

/// A finding as compared across bundles: rule and subject, with the lab id (which is part
/// of real interface names such as `nsl-1a2b3c-w0`) replaced, so that bundles of two labs
/// of the same scenario compare equal.
type Key = (String, String);

/// Findings of one collected bundle.
struct Analysis {
    findings: Vec<Finding>,
    lab_id: String,
}

impl Analysis {
    fn key(&self, f: &Finding) -> Key {
        (f.rule.clone(), f.subject.replace(&self.lab_id, "<lab>"))
    }

    fn keys(&self) -> BTreeSet<Key> {
        self.findings.iter().map(|f| self.key(f)).collect()
    }

    fn describe(&self) -> String {
        if self.findings.is_empty() {
            return "  (no findings)".into();
        }
        self.findings.iter().map(|f| format!("\n  {}", describe(f))).collect()
    }
}

fn describe(f: &Finding) -> String {
    let evidence: Vec<String> =
        f.evidence.iter().map(|e| format!("{} `{}`", location_path(&e.location), e.excerpt)).collect();
    format!("{} {} {} [{}] evidence: {}", f.rule, f.severity.as_str(), f.subject, f.title, evidence.join("; "))
}

fn location_path(l: &Location) -> &str {
    match l {
        Location::File { path, .. } | Location::Json { path, .. } | Location::Packet { path, .. } => path,
        _ => "",
    }
}

/// The lab hosts a finding is about: its subject `host/NAME/...` and the `hosts/NAME/...`
/// files of its evidence.
fn finding_hosts(f: &Finding) -> BTreeSet<String> {
    let mut hosts = BTreeSet::new();
    if let Some(rest) = f.subject.strip_prefix("host/") {
        hosts.insert(rest.split('/').next().unwrap_or(rest).to_string());
    }
    for e in &f.evidence {
        if let Some(rest) = location_path(&e.location).strip_prefix("hosts/") {
            if let Some(h) = rest.split('/').next() {
                hosts.insert(h.to_string());
            }
        }
    }
    hosts
}

/// Collects every host of the lab into a fresh bundle (roles as the lab knows them, the same
/// targets `netsleuth lab collect` builds), reads it back and analyzes it.
fn collect_and_analyze(lab: &Lab, what: &str) -> Analysis {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{what}: temp dir: {e}"));
    let out = dir.path().join("bundle");
    let targets = lab.collect_targets();
    let opts = CollectOptions { timeout: Duration::from_secs(10), ..CollectOptions::default() };
    let report = collect_bundle(&targets, &out, false, &Redactor::random(), &opts)
        .unwrap_or_else(|e| panic!("{what}: collect_bundle: {e}"));
    assert_eq!(report.hosts.len(), targets.len(), "{what}: every lab host is collected");
    let net = read_bundle(&out, &BundleOptions::default()).unwrap_or_else(|e| panic!("{what}: read_bundle: {e}"));
    let issues: Vec<String> =
        net.ingest_issues.iter().map(|i| format!("{}: {}", location_path(&i.location), i.message)).collect();
    assert!(issues.is_empty(), "{what}: ingest issues on a lab bundle:\n  {}", issues.join("\n  "));
    let names: BTreeSet<&str> = net.hosts.iter().map(|h| h.name.as_str()).collect();
    let expected: BTreeSet<&str> = lab.state().hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, expected, "{what}: the bundle's hosts are the lab's");
    let findings = analyze(&net, &AnalyzeOptions::default());
    say(&format!(
        "{what}: collected and analyzed in {:.1} s, {} findings",
        started.elapsed().as_secs_f64(),
        findings.len()
    ));
    Analysis { findings, lab_id: lab.id().to_string() }
}

/// Where a fault's finding is expected. Immediately visible faults break the configuration
/// of the host they strike. Faults visible only from `up` (a handshake that never
/// completed) strike between the peers (e.g. `udp-block` on the underlay router), so the
/// WireGuard hosts on both ends are where the rules see them.
fn expected_hosts(lab: &Lab, spec: &FaultSpec, params: &BTreeMap<String, String>) -> BTreeSet<String> {
    match spec.static_visibility {
        StaticVisibility::FromUp => lab.state().wireguard.iter().map(|w| w.host.clone()).collect(),
        _ => params.get("host").cloned().into_iter().collect(),
    }
}

/// Checks that every expected rule of `spec` reports a finding that the baseline does not
/// have on every expected host; returns what is missing.
fn check_fault(
    spec: &FaultSpec,
    hosts: &BTreeSet<String>,
    baseline: &BTreeSet<Key>,
    faulted: &Analysis,
    errors: &mut Vec<String>,
) {
    let new: Vec<&Finding> = faulted.findings.iter().filter(|f| !baseline.contains(&faulted.key(f))).collect();
    say(&format!("{}: findings:{}", spec.name, faulted.describe()));
    for rule in spec.expected_rules {
        for host in hosts {
            let hit = new.iter().any(|f| f.rule == *rule && finding_hosts(f).contains(host));
            if !hit {
                let new_text: String = new.iter().map(|f| format!("\n    {}", describe(f))).collect();
                errors.push(format!(
                    "{}: expected a new {rule} finding on host {host}; new findings:{}\n  all findings:{}",
                    spec.name,
                    if new_text.is_empty() { " (none)".to_string() } else { new_text },
                    faulted.describe()
                ));
            } else {
                say(&format!("{}: new {rule} on {host} as expected", spec.name));
            }
        }
    }
}

fn up(scenario_name: &str, faults: Vec<FaultRequest>) -> Lab {
    let sc = scenario::load(scenario_name).unwrap_or_else(|e| panic!("{e}"));
    let mut opts = UpOptions::new(common::echo_command());
    opts.faults = faults;
    Lab::up(&sc, &opts).unwrap_or_else(|e| panic!("lab up: {e}"))
}

/// True when the test may run and the extra programs it needs are installed; otherwise says
/// why (and fails under NETSLEUTH_LAB_REQUIRED=1, as `common::can_run` does).
fn can_run_with(test: &str, programs: &[&str]) -> bool {
    if !common::can_run(test) {
        return false;
    }
    let in_path = |p: &str| {
        Path::new(p).is_absolute() && Path::new(p).is_file()
            || std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
    };
    let missing: Vec<&str> = programs.iter().copied().filter(|p| !in_path(p)).collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("NETSLEUTH_LAB_REQUIRED").is_none_or(|v| v != "1"),
        "{test}: {missing:?} not installed but NETSLEUTH_LAB_REQUIRED=1"
    );
    say(&format!("SKIPPED {test}: {missing:?} not installed"));
    false
}

#[test]
fn every_statically_visible_fault_is_reported_by_its_rule() {
    if can_run_with("every_statically_visible_fault_is_reported_by_its_rule", &[]) {
        check_scenario("k8s-wireguard-site", 8);
    }
}

#[test]
fn ipsec_config_faults_are_reported_by_their_rules() {
    if can_run_with("ipsec_config_faults_are_reported_by_their_rules", &[strongswan::CHARON, "swanctl"]) {
        check_scenario("ipsec-hybrid", 3);
    }
}

#[test]
fn ndots_amplification_is_reported_by_its_rule() {
    if can_run_with("ndots_amplification_is_reported_by_its_rule", &["dnsmasq"]) {
        check_scenario("dns-and-policy", 1);
    }
}

/// Healthy baseline, then every statically visible fault the scenario lists (`faults:`) on
/// its own, then the baseline again; `min_visible`: how many such faults there are at least.
fn check_scenario(scenario_name: &str, min_visible: usize) {
    // A panic of another test leaves the lock poisoned; its lab is gone by then.
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let started = Instant::now();
    let mut lab = up(scenario_name, Vec::new());
    say(&format!("lab {} ({scenario_name}) up in {:.1} s", lab.id(), started.elapsed().as_secs_f64()));

    // Every fault's resolved parameters and expected hosts, before anything is injected.
    let mut plan: Vec<(&'static FaultSpec, BTreeMap<String, String>, BTreeSet<String>)> = Vec::new();
    for spec in faults::catalog() {
        if !lab.scenario().faults.contains_key(spec.name) {
            continue;
        }
        if spec.static_visibility == StaticVisibility::None || spec.expected_rules.is_empty() {
            say(&format!(
                "skipping {}: no static rule can see it (static visibility: none; it breaks: {})",
                spec.name, spec.breaks
            ));
            continue;
        }
        let (_, params) = faults::resolve(&FaultRequest::named(spec.name), lab.scenario())
            .unwrap_or_else(|e| panic!("{}: resolve: {e}", spec.name));
        let hosts = expected_hosts(&lab, spec, &params);
        assert!(!hosts.is_empty(), "{}: no expected host ({params:?})", spec.name);
        plan.push((spec, params, hosts));
    }
    assert!(
        plan.len() >= min_visible,
        "{scenario_name} has at least {min_visible} statically visible faults: {}",
        plan.len()
    );

    // Healthy baseline: no critical or high finding on any host a fault touches.
    let healthy = collect_and_analyze(&lab, "healthy");
    let touched: BTreeSet<&String> = plan.iter().flat_map(|(_, _, h)| h.iter()).collect();
    let serious: Vec<String> = healthy
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::High && finding_hosts(f).iter().any(|h| touched.contains(h)))
        .map(describe)
        .collect();
    assert!(
        serious.is_empty(),
        "the healthy lab has critical/high findings on hosts the faults touch ({touched:?}):\n  {}\n  all findings:{}",
        serious.join("\n  "),
        healthy.describe()
    );
    say(&format!("healthy baseline:{}", healthy.describe()));
    let baseline = healthy.keys();

    let mut errors = Vec::new();
    // Faults visible right after inject: one lab, inject → collect → analyze → clear.
    for (spec, params, hosts) in plan.iter().filter(|(s, _, _)| s.static_visibility == StaticVisibility::Immediate) {
        let req = FaultRequest::named(spec.name);
        match lab.inject(&req) {
            Ok(p) => {
                assert_eq!(&p, params, "{}: the parameters in effect are the resolved ones", spec.name);
                let faulted = collect_and_analyze(&lab, spec.name);
                check_fault(spec, hosts, &baseline, &faulted, &mut errors);
            }
            Err(e) => errors.push(format!("{}: inject: {e}", spec.name)),
        }
        let cleared = lab.clear(Some(spec.name)).unwrap_or_else(|e| panic!("{}: clear: {e}", spec.name));
        assert_eq!(cleared, [spec.name], "{}: clear", spec.name);
    }
    // Everything cleared: the findings are the baseline's again (clear really restores).
    let after = collect_and_analyze(&lab, "after clearing every fault");
    let extra: Vec<String> =
        after.findings.iter().filter(|f| !baseline.contains(&after.key(f))).map(describe).collect();
    if !extra.is_empty() {
        errors.push(format!("after clearing every fault, findings not in the baseline:\n  {}", extra.join("\n  ")));
    }
    lab.down().unwrap_or_else(|e| panic!("lab down: {e}"));

    // Faults visible only when present from `up`: a fresh lab each, started with the fault.
    for (spec, _, hosts) in plan.iter().filter(|(s, _, _)| s.static_visibility == StaticVisibility::FromUp) {
        let t = Instant::now();
        let lab = up(scenario_name, vec![FaultRequest::named(spec.name)]);
        say(&format!("lab {} up with {} in {:.1} s", lab.id(), spec.name, t.elapsed().as_secs_f64()));
        let active: Vec<&str> = lab.faults().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(active, [spec.name], "{}: the fault is active from up", spec.name);
        let faulted = collect_and_analyze(&lab, &format!("{} (from up)", spec.name));
        check_fault(spec, hosts, &baseline, &faulted, &mut errors);
        lab.down().unwrap_or_else(|e| panic!("lab down: {e}"));
    }

    say(&format!(
        "analyze_faults: {scenario_name}: {} faults checked in {:.1} s",
        plan.len(),
        started.elapsed().as_secs_f64()
    ));
    assert!(errors.is_empty(), "{scenario_name}: {} problem(s):\n{}", errors.len(), errors.join("\n"));
}
