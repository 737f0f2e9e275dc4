//! End-to-end tests of `netsleuth lab`: the catalog listings (no root), and (as root) a
//! k8s-wireguard-site lab driven only through the CLI: up, status, exec, inject, clear,
//! collect → analyze, down, with nothing left behind.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netsleuth_lab::faults::{self, StaticVisibility};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_netsleuth");
const SCENARIO: &str = "k8s-wireguard-site";
/// The app behind the tunnel; pod-a reaches it only through gw's forwarding.
const APP: &str = "10.20.1.10";

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    /// None when killed at the deadline or by a signal.
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs the binary with a deadline. Output goes to files, not pipes: `lab up` leaves daemons
/// running, and a pipe they inherited would never reach end-of-file.
fn run(args: &[&str], limit: Duration) -> Run {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let out = File::create(&out_path).unwrap_or_else(|e| panic!("{}: {e}", out_path.display()));
    let err = File::create(&err_path).unwrap_or_else(|e| panic!("{}: {e}", err_path.display()));
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("NETSLEUTH_SALT")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("run netsleuth {args:?}: {e}"));
    let deadline = Instant::now() + limit;
    let code = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                say(&format!("netsleuth {args:?} killed after {limit:?}"));
                break None;
            }
            Err(e) => panic!("wait for netsleuth {args:?}: {e}"),
        }
    };
    let read = |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
    Run { code, stdout: read(&out_path), stderr: read(&err_path) }
}

fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Why the lab cannot run here, if it cannot (the same checks as the lab crate's tests).
fn skip_reason() -> Option<String> {
    if !netsleuth_lab::is_root() {
        return Some("not root: the lab creates network namespaces (run the tests as root)".into());
    }
    for prog in ["ip", "nft", "wg", "wireguard-go", "ping", "ss", "sysctl", "bridge"] {
        let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()));
        if !found {
            return Some(format!("{prog} is not installed"));
        }
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing (wireguard-go needs it)".into());
    }
    None
}

/// True when the test may run; otherwise says why (and fails with NETSLEUTH_LAB_REQUIRED=1,
/// as in CI, so that a skip is never silent there).
fn can_run(test: &str) -> bool {
    match skip_reason() {
        None => true,
        Some(reason) => {
            if std::env::var_os("NETSLEUTH_LAB_REQUIRED").is_some_and(|v| v == "1") {
                panic!("{test}: cannot run but NETSLEUTH_LAB_REQUIRED=1: {reason}");
            }
            say(&format!("SKIPPED {test}: {reason}"));
            false
        }
    }
}

/// Takes a lab down when the test ends, also when it fails half-way.
struct LabGuard {
    id: String,
    down: bool,
}

impl LabGuard {
    /// `lab down` now; the guard then has nothing left to do.
    fn down(&mut self) -> Run {
        self.down = true;
        run(&["lab", "down", "--lab", &self.id], Duration::from_secs(60))
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if !self.down {
            let r = run(&["lab", "down", "--lab", &self.id], Duration::from_secs(60));
            say(&format!("guard: lab down --lab {}: exit {:?} {}{}", self.id, r.code, r.stdout, r.stderr));
        }
    }
}

/// Network namespaces whose name contains `id`.
fn namespaces_of(id: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("ip netns list: {e}"));
    assert!(out.status.success(), "ip netns list: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.contains(id))
        .map(str::to_string)
        .collect()
}

fn ping_app(id: &str) -> Run {
    run(&["lab", "exec", "--lab", id, "pod-a", "--", "ping", "-c1", "-W2", APP], Duration::from_secs(20))
}

/// `netsleuth lab collect` then `netsleuth analyze --format json`: the report's findings.
fn collect_and_analyze(id: &str, dir: &Path, what: &str) -> Vec<Value> {
    let bundle = dir.join(what);
    let b = bundle.to_str().unwrap_or_else(|| panic!("non-UTF-8 temp path {}", bundle.display()));
    let c = run(&["lab", "collect", "--lab", id, "-o", b], Duration::from_secs(120));
    assert!(c.ok(), "{what}: lab collect: exit {:?}\n{}{}", c.code, c.stdout, c.stderr);
    assert!(c.stdout.contains("collected 9 hosts"), "{what}: lab collect says: {}", c.stdout);
    assert!(bundle.join("manifest.json").is_file() && bundle.join("hosts/gw").is_dir(), "{what}: bundle layout");
    let a = run(&["analyze", b, "--format", "json"], Duration::from_secs(60));
    // 0: nothing at or above --fail-on, 1: findings; 2 would be an input error.
    assert!(matches!(a.code, Some(0 | 1)), "{what}: analyze: exit {:?}\n{}", a.code, a.stderr);
    let v: Value =
        serde_json::from_str(&a.stdout).unwrap_or_else(|e| panic!("{what}: analyze JSON: {e}\n{}", a.stdout));
    let findings = v.get("findings").and_then(Value::as_array).cloned();
    findings.unwrap_or_else(|| panic!("{what}: no findings array in {v}"))
}

fn has_finding(findings: &[Value], rule: &str, subject_prefix: &str) -> bool {
    findings.iter().any(|f| {
        f.get("rule").and_then(Value::as_str) == Some(rule)
            && f.get("subject").and_then(Value::as_str).is_some_and(|s| s.starts_with(subject_prefix))
    })
}

#[test]
fn scenarios_and_faults_are_listed() {
    let s = run(&["lab", "scenarios"], Duration::from_secs(20));
    assert!(s.ok(), "lab scenarios: {:?} {}", s.code, s.stderr);
    assert!(s.stdout.lines().any(|l| l.starts_with(SCENARIO)), "lab scenarios:\n{}", s.stdout);
    let s = run(&["lab", "scenarios", "-f", "json"], Duration::from_secs(20));
    assert!(s.ok(), "lab scenarios -f json: {:?} {}", s.code, s.stderr);
    let v: Value = serde_json::from_str(&s.stdout).unwrap_or_else(|e| panic!("lab scenarios JSON: {e}\n{}", s.stdout));
    let ours = v.as_array().and_then(|a| a.iter().find(|x| x.get("name").and_then(Value::as_str) == Some(SCENARIO)));
    assert_eq!(ours.and_then(|x| x.get("hosts")).and_then(Value::as_u64), Some(9), "{v}");

    let f = run(&["lab", "faults"], Duration::from_secs(20));
    assert!(f.ok(), "lab faults: {:?} {}", f.code, f.stderr);
    let catalog = faults::catalog();
    assert!(catalog.len() >= 12, "catalog of {} faults", catalog.len());
    for spec in catalog {
        // One line per fault: name, layer, rules (or `-`), the diagnosis.
        let line = f.stdout.lines().find(|l| l.split_whitespace().next() == Some(spec.name));
        let line = line.unwrap_or_else(|| panic!("lab faults does not list {}:\n{}", spec.name, f.stdout));
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words.get(1).copied(), Some(spec.layer.as_str()), "{}: layer in {line:?}", spec.name);
        for rule in spec.expected_rules {
            assert!(line.contains(rule), "{}: rule {rule} missing in {line:?}", spec.name);
        }
        if spec.static_visibility == StaticVisibility::None {
            assert!(line.contains("(live)"), "{}: a live-only fault is marked: {line:?}", spec.name);
        }
    }
    let f = run(&["lab", "faults", "-f", "json"], Duration::from_secs(20));
    assert!(f.ok(), "lab faults -f json: {:?} {}", f.code, f.stderr);
    let v: Value = serde_json::from_str(&f.stdout).unwrap_or_else(|e| panic!("lab faults JSON: {e}\n{}", f.stdout));
    let rows = v.as_array().unwrap_or_else(|| panic!("lab faults JSON is not a list: {v}"));
    assert_eq!(rows.len(), catalog.len());
    for (row, spec) in rows.iter().zip(catalog) {
        assert_eq!(row.get("name").and_then(Value::as_str), Some(spec.name), "{row}");
        assert_eq!(row.get("layer").and_then(Value::as_str), Some(spec.layer.as_str()), "{row}");
    }
}

#[test]
fn lab_commands_up_exec_inject_collect_down() {
    if !can_run("lab_commands_up_exec_inject_collect_down") {
        return;
    }
    let started = Instant::now();
    let up = run(&["lab", "up", SCENARIO], Duration::from_secs(90));
    // Whatever happens below, a lab that came up is taken down.
    let id = up.stdout.trim().to_string();
    let mut guard = LabGuard { id: id.clone(), down: !up.ok() || id.is_empty() };
    assert!(up.ok(), "lab up: exit {:?}\n{}{}", up.code, up.stdout, up.stderr);
    // stdout is the id only: nsl-<6 hex>.
    let hex = id.strip_prefix("nsl-").unwrap_or("");
    assert!(hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()), "lab up printed {:?}", up.stdout);
    say(&format!("lab {id} up in {:.1} s", started.elapsed().as_secs_f64()));
    assert_eq!(namespaces_of(&id).len(), 9, "one namespace per host: {:?}", namespaces_of(&id));

    let all = run(&["lab", "status"], Duration::from_secs(30));
    assert!(all.ok(), "lab status: {:?} {}", all.code, all.stderr);
    assert!(all.stdout.lines().any(|l| l.starts_with(&id) && l.contains(SCENARIO)), "lab status:\n{}", all.stdout);
    let st = run(&["lab", "status", "--lab", &id], Duration::from_secs(30));
    assert!(st.ok(), "lab status --lab: {:?} {}", st.code, st.stderr);
    assert!(st.stdout.contains("9/9 namespaces") && st.stdout.contains("faults: none"), "lab status:\n{}", st.stdout);
    assert!(!st.stdout.contains("MISSING") && !st.stdout.contains("GONE"), "lab status:\n{}", st.stdout);
    let js = run(&["lab", "status", "--lab", &id, "-f", "json"], Duration::from_secs(30));
    let v: Value = serde_json::from_str(&js.stdout).unwrap_or_else(|e| panic!("status JSON: {e}\n{}", js.stdout));
    assert_eq!(v.get("id").and_then(Value::as_str), Some(id.as_str()), "{v}");

    // Healthy: pod-a reaches the app through gw and the tunnel. A few bounded tries: the
    // WireGuard handshake may still be under way.
    let mut ping = ping_app(&id);
    for _ in 0..4 {
        if ping.ok() {
            break;
        }
        ping = ping_app(&id);
    }
    assert!(ping.ok(), "healthy ping pod-a → {APP}: exit {:?}\n{}{}", ping.code, ping.stdout, ping.stderr);

    // Forwarding off on gw: the same ping fails, and exec passes ping's status through.
    let inj = run(&["lab", "inject", "--lab", &id, "ip-forward-off"], Duration::from_secs(60));
    assert!(inj.ok(), "lab inject: exit {:?}\n{}{}", inj.code, inj.stdout, inj.stderr);
    assert!(inj.stdout.contains("injected ip-forward-off (host=gw)"), "lab inject says: {}", inj.stdout);
    let st = run(&["lab", "status", "--lab", &id], Duration::from_secs(30));
    assert!(st.stdout.contains("faults: ip-forward-off"), "lab status with the fault:\n{}", st.stdout);
    let broken = ping_app(&id);
    assert_eq!(broken.code, Some(1), "ping with gw not forwarding must fail (ping's exit 1): {broken:?}");

    // The fault as `analyze` sees it on a bundle from `lab collect`.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let faulted = collect_and_analyze(&id, dir.path(), "faulted");
    assert!(has_finding(&faulted, "NODE-001", "host/gw"), "NODE-001 on gw expected in {faulted:#?}");

    let clr = run(&["lab", "clear", "--lab", &id], Duration::from_secs(60));
    assert!(clr.ok(), "lab clear: exit {:?}\n{}{}", clr.code, clr.stdout, clr.stderr);
    assert!(clr.stdout.contains("cleared ip-forward-off"), "lab clear says: {}", clr.stdout);
    let healed = ping_app(&id);
    assert!(healed.ok(), "ping after clear: {healed:?}");

    let findings = collect_and_analyze(&id, dir.path(), "healthy");
    assert!(!has_finding(&findings, "NODE-001", "host/gw"), "NODE-001 on gw after clear: {findings:#?}");

    let down = guard.down();
    assert!(down.ok(), "lab down: exit {:?}\n{}{}", down.code, down.stdout, down.stderr);
    assert!(down.stdout.contains(&format!("removed lab {id}: 9 namespaces")), "lab down says: {}", down.stdout);
    assert_eq!(namespaces_of(&id), Vec::<String>::new(), "namespaces left after lab down");
    let gone = run(&["lab", "status", "--lab", &id], Duration::from_secs(30));
    assert_eq!(gone.code, Some(2), "status of a removed lab is an error: {gone:?}");
    say(&format!("lab CLI round trip in {:.1} s", started.elapsed().as_secs_f64()));
}
