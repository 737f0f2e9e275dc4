//! End-to-end tests of `netsleuth diagnose`: usage errors and loopback runs (no root), and
//! (as root) lab-backed runs inside lab namespaces: healthy paths report no cause, and one
//! fault per layer (gateway, path, tunnel, transport, local state, DNS) is named correctly.

use std::fs::{self, File};
use std::io::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_netsleuth");

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("JSON: {e}\n{}\n{}", self.stdout, self.stderr))
    }
}

/// Runs `program args` with a deadline; output through files (lab daemons inherit no pipe).
fn run_cmd(program: &str, args: &[&str], limit: Duration) -> Run {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let out = File::create(&out_path).unwrap_or_else(|e| panic!("{e}"));
    let err = File::create(&err_path).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("run {program} {args:?}: {e}"));
    let deadline = Instant::now() + limit;
    let code = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Err(e) => panic!("wait: {e}"),
        }
    };
    let read = |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
    Run { code, stdout: read(&out_path), stderr: read(&err_path), took: t.elapsed() }
}

fn netsleuth(args: &[&str], limit: Duration) -> Run {
    run_cmd(BIN, args, limit)
}

fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

fn rules(v: &Value) -> Vec<String> {
    v["causes"]
        .as_array()
        .map_or_else(Vec::new, |a| a.iter().filter_map(|c| c["rule"].as_str().map(str::to_string)).collect())
}

fn layer_status(v: &Value, probe: &str) -> String {
    v["layers"]
        .as_array()
        .and_then(|a| a.iter().find(|l| l["probe"] == probe))
        .and_then(|l| l["status"].as_str())
        .unwrap_or("(missing)")
        .to_string()
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["diagnose", "--to", ""][..],
        &["diagnose", "--to", "a b:80"],
        &["diagnose", "--to", "10.0.0.1:0"],
        &["diagnose", "--to", "10.0.0.1", "--proto", "tcp"],
        &["diagnose", "--to", "10.0.0.1:80", "--samples", "0"],
        &["diagnose", "--to", "10.0.0.1:80", "--timeout", "0s"],
        &["diagnose", "--to", "10.0.0.1:80", "--probe-timeout", "10s", "--timeout", "5s"],
        &["diagnose"],
        &["diagnose", "--to", "db:5432", "--resolv-conf", "/nonexistent/resolv.conf"],
        &["diagnose", "--to", "10.0.0.1:80", "--charon-log", "/nonexistent/charon.log"],
    ] {
        let r = netsleuth(args, Duration::from_secs(20));
        assert_eq!(r.code, Some(2), "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: nothing on stdout: {}", r.stdout);
    }
    let h = netsleuth(&["diagnose", "--help"], Duration::from_secs(20));
    assert!(h.stdout.contains("Exit codes: 0 healthy"), "{}", h.stdout);
}

/// Loopback only (allowed from the root namespace): an open port is healthy (exit 0, no
/// cause), a closed one exits 1 naming DIAG-TCP-001, in text and JSON.
#[test]
fn loopback_open_and_closed_ports() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let target = format!("127.0.0.1:{}", l.local_addr().unwrap_or_else(|e| panic!("{e}")).port());
    let r = netsleuth(&["diagnose", "--to", &target, "--no-local-state", "--format", "json"], Duration::from_secs(30));
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["target"], "127.0.0.1");
    assert!(rules(&v).is_empty(), "{v}");
    assert_eq!(layer_status(&v, "transport"), "ok");
    drop(l);
    let r = netsleuth(&["diagnose", "--to", &target, "--no-local-state", "--no-pmtu"], Duration::from_secs(30));
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("[DIAG-TCP-001]") && r.stdout.contains("fix:"), "{}", r.stdout);
    assert!(r.stderr.is_empty(), "no progress lines without a terminal: {}", r.stderr);
}

fn skip_reason() -> Option<String> {
    if !netsleuth_lab::is_root() {
        return Some("not root: the lab creates network namespaces".into());
    }
    for prog in ["ip", "nft", "wg", "wireguard-go", "dnsmasq"] {
        let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()));
        if !found {
            return Some(format!("{prog} is not installed"));
        }
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    None
}

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

/// A lab brought up through the CLI, torn down on drop.
struct LabGuard {
    id: String,
}

impl LabGuard {
    fn up(scenario: &str) -> LabGuard {
        let r = netsleuth(&["lab", "up", scenario], Duration::from_secs(120));
        assert_eq!(r.code, Some(0), "lab up {scenario}: {}{}", r.stdout, r.stderr);
        let id = r.stdout.lines().next().unwrap_or("").trim().to_string();
        assert!(id.starts_with("nsl-"), "lab id: {}", r.stdout);
        LabGuard { id }
    }

    fn inject(&self, fault: &str) {
        let r = netsleuth(&["lab", "inject", "--lab", &self.id, fault], Duration::from_secs(120));
        assert_eq!(r.code, Some(0), "inject {fault}: {}{}", r.stdout, r.stderr);
    }

    fn clear(&self) {
        let r = netsleuth(&["lab", "clear", "--lab", &self.id], Duration::from_secs(120));
        assert_eq!(r.code, Some(0), "clear: {}{}", r.stdout, r.stderr);
    }

    fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.id)
    }

    /// `netsleuth diagnose ARGS --format json` inside `host`'s namespace.
    fn diagnose(&self, host: &str, args: &[&str]) -> (Run, Value) {
        let ns = self.ns(host);
        let mut full: Vec<&str> = vec!["netns", "exec", &ns, BIN, "diagnose"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--format", "json"]);
        let r = run_cmd("ip", &full, Duration::from_secs(60));
        let v = r.json();
        say(&format!("diagnose from {host} {args:?}: exit {:?} in {:?}: {:?}", r.code, r.took, rules(&v)));
        (r, v)
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        let r = netsleuth(&["lab", "down", "--lab", &self.id], Duration::from_secs(60));
        if r.code != Some(0) {
            say(&format!("lab down --lab {}: {:?} {}{}", self.id, r.code, r.stdout, r.stderr));
        }
    }
}

fn first_cause(v: &Value) -> (String, String) {
    let c = &v["causes"][0];
    (c["rule"].as_str().unwrap_or("").to_string(), format!("{} {}", c["title"], c["detail"]))
}

#[test]
fn k8s_wireguard_site_layers() {
    if !can_run("k8s_wireguard_site_layers") {
        return;
    }
    let lab = LabGuard::up("k8s-wireguard-site");
    let app = "10.20.1.10:5000";

    // Healthy: no cause, exit 0, quick.
    let (r, v) = lab.diagnose("pod-a", &["--to", app]);
    assert_eq!(r.code, Some(0), "{v}");
    assert!(rules(&v).is_empty(), "healthy path has no cause: {v}");
    for probe in ["local-state", "gateway", "transport"] {
        assert_eq!(layer_status(&v, probe), "ok", "{probe}: {v}");
    }
    assert!(r.took < Duration::from_secs(10), "healthy run took {:?}", r.took);
    let (r, v) = lab.diagnose("pod-a", &["--to", "10.20.1.10:8080", "--proto", "http"]);
    assert_eq!(r.code, Some(0), "{v}");

    // Transport: nothing listens on the port.
    let (r, v) = lab.diagnose("pod-a", &["--to", "10.20.1.10:5999"]);
    assert_eq!(r.code, Some(1));
    assert_eq!(first_cause(&v).0, "DIAG-TCP-001", "{v}");
    let (_, v) = lab.diagnose("pod-a", &["--to", "10.20.1.10:5998", "--proto", "udp"]);
    assert_eq!(first_cause(&v).0, "DIAG-UDP-001", "{v}");

    // Path: the WireGuard underlay blocked; from the pod the drop is after the gateway node.
    lab.inject("udp-block");
    let (r, v) = lab.diagnose("pod-a", &["--to", app]);
    assert_eq!(r.code, Some(1));
    let (rule, text) = first_cause(&v);
    assert_eq!(rule, "DIAG-HOP-001", "{v}");
    assert!(text.contains("10.244.3.0"), "names the gateway node's address: {text}");
    assert!(r.took < Duration::from_secs(10), "failing run took {:?}", r.took);
    // Follow the hop: the fix names the next step, the same diagnosis on that router.
    let fix = v["causes"][0]["fix"].as_str().unwrap_or_default();
    assert!(fix.contains(&format!("run `netsleuth diagnose --to {app}` on 10.244.3.0")), "{fix}");

    // Tunnel, seen from the WireGuard host itself: the peer's key is wrong.
    lab.clear();
    lab.inject("wg-key-mismatch");
    let (_, v) = lab.diagnose("gw", &["--to", app]);
    assert_eq!(first_cause(&v).0, "DIAG-TUN-001", "{v}");
    assert_eq!(layer_status(&v, "tunnel"), "fail", "{v}");

    // Local state: the route into the tunnel is gone on this host.
    lab.clear();
    lab.inject("route-missing");
    let (_, v) = lab.diagnose("gw", &["--to", app]);
    assert_eq!(first_cause(&v).0, "TUN-003", "a local rule explains it first: {v}");
    assert_eq!(layer_status(&v, "local-state"), "fail", "{v}");

    // Policy on the path (a table added here, in the lab's node namespace): a reject names
    // the rejecting router; a silent drop of one port while the host answers ICMP names the port.
    lab.clear();
    let node = lab.ns("node-1");
    let nft = |rule: &str| {
        let script = format!(
            "table inet nsl_diag_test {{\n chain f {{ type filter hook forward priority filter - 10; policy accept;\n {rule}\n }}\n}}\n"
        );
        let path = std::env::temp_dir().join(format!("nsl-diag-test-{}.nft", std::process::id()));
        fs::write(&path, script).unwrap_or_else(|e| panic!("{e}"));
        let p = path.display().to_string();
        let _ = run_cmd(
            "ip",
            &["netns", "exec", &node, "nft", "delete", "table", "inet", "nsl_diag_test"],
            Duration::from_secs(10),
        );
        let r = run_cmd("ip", &["netns", "exec", &node, "nft", "-f", &p], Duration::from_secs(10));
        let _ = fs::remove_file(&path);
        assert_eq!(r.code, Some(0), "nft: {}", r.stderr);
    };
    nft("ip daddr 10.20.1.10 reject with icmp type admin-prohibited");
    let (_, v) = lab.diagnose("pod-a", &["--to", app]);
    let (rule, text) = first_cause(&v);
    assert_eq!(rule, "DIAG-HOP-003", "{v}");
    assert!(text.contains("10.244.1.1 (hop 1)"), "{text}");
    nft("ip daddr 10.20.1.10 tcp dport 5000 drop");
    let (_, v) = lab.diagnose("pod-a", &["--to", app]);
    assert_eq!(first_cause(&v).0, "DIAG-TCP-002", "{v}");
    let del = run_cmd(
        "ip",
        &["netns", "exec", &node, "nft", "delete", "table", "inet", "nsl_diag_test"],
        Duration::from_secs(10),
    );
    assert_eq!(del.code, Some(0), "{}", del.stderr);

    // Gateway: the first hop of a route does not exist (made here, in the lab's namespace).
    let ns = lab.ns("pod-a");
    let add = run_cmd(
        "ip",
        &["netns", "exec", &ns, "ip", "route", "add", "10.20.1.0/24", "via", "10.244.1.99"],
        Duration::from_secs(10),
    );
    assert_eq!(add.code, Some(0), "{}", add.stderr);
    let (_, v) = lab.diagnose("pod-a", &["--to", app]);
    let (rule, text) = first_cause(&v);
    assert_eq!(rule, "DIAG-GW-001", "{v}");
    assert!(text.contains("10.244.1.99"), "{text}");
}

#[test]
fn dns_and_policy_by_name() {
    if !can_run("dns_and_policy_by_name") {
        return;
    }
    let lab = LabGuard::up("dns-and-policy");
    let state = netsleuth_lab::StateDir::new(netsleuth_lab::state::DEFAULT_STATE_DIR)
        .load(&lab.id)
        .unwrap_or_else(|e| panic!("lab state: {e}"));
    let resolv = netsleuth_lab::dnsmasq::resolv_path(&state.work_dir, "pod-a");
    let resolv = resolv.to_str().unwrap_or_else(|| panic!("path"));
    let name = "api.default.svc.cluster.local:8080";

    // Healthy by name, although the policy drops ICMP to the target: no false alarm.
    let (r, v) = lab.diagnose("pod-a", &["--to", name, "--resolv-conf", resolv]);
    assert_eq!(r.code, Some(0), "{v}");
    assert_eq!(layer_status(&v, "dns"), "ok", "{v}");
    assert_eq!(v["address"], "10.244.1.20");

    // The resolver is down: a DNS cause, not a transport one.
    lab.inject("dns-down");
    let (r, v) = lab.diagnose("pod-a", &["--to", name, "--resolv-conf", resolv]);
    assert_eq!(r.code, Some(1));
    assert!(first_cause(&v).0.starts_with("DIAG-DNS-"), "{v}");
    assert_eq!(layer_status(&v, "dns"), "fail", "{v}");
    assert!(r.took < Duration::from_secs(10), "took {:?}", r.took);

    // Policy: a port the NetworkPolicy does not allow, while the name resolves.
    lab.clear();
    let (_, v) = lab
        .diagnose("pod-a", &["--to", "api.default.svc.cluster.local:8081", "--proto", "udp", "--resolv-conf", resolv]);
    assert_eq!(first_cause(&v).0, "DIAG-UDP-002", "{v}");
}

#[test]
fn ipsec_hybrid_tunnel_layer() {
    if !can_run("ipsec_hybrid_tunnel_layer") {
        return;
    }
    let found =
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("swanctl").is_file()));
    if !found {
        say("SKIPPED ipsec_hybrid_tunnel_layer: swanctl is not installed");
        return;
    }
    let lab = LabGuard::up("ipsec-hybrid");
    let state = netsleuth_lab::StateDir::new(netsleuth_lab::state::DEFAULT_STATE_DIR)
        .load(&lab.id)
        .unwrap_or_else(|e| panic!("lab state: {e}"));
    // The lab's charon runs in its own mount namespace; its socket, config and log are here.
    let dir = state.work_dir.join("ipsec").join("onprem-gw");
    let uri = format!("unix://{}", dir.join("run/charon.vici").display());
    let conf = dir.join("swanctl.conf").display().to_string();
    let log = dir.join("charon.log").display().to_string();
    let ipsec_args = ["--swanctl-uri", uri.as_str(), "--swanctl-conf", conf.as_str(), "--charon-log", log.as_str()];
    let app = "10.10.1.10:5000";

    let (r, v) = lab.diagnose("onprem-host", &["--to", app]);
    assert_eq!(r.code, Some(0), "healthy from the on-prem host: {v}");
    let mut args = vec!["--to", app];
    args.extend_from_slice(&ipsec_args);
    let (r, v) = lab.diagnose("onprem-gw", &args);
    assert_eq!(r.code, Some(0), "healthy from the gateway: {v}");
    assert_eq!(layer_status(&v, "tunnel"), "ok", "the CHILD_SA covers the path: {v}");

    lab.inject("ipsec-psk-mismatch");
    let (_, v) = lab.diagnose("onprem-gw", &args);
    let (rule, text) = first_cause(&v);
    assert_eq!(rule, "DIAG-TUN-004", "{v}");
    assert!(text.contains("AUTHENTICATION_FAILED"), "the charon log names the failure: {text}");
    let (_, v) = lab.diagnose("onprem-host", &["--to", app]);
    assert_eq!(first_cause(&v).0, "DIAG-HOP-001", "from behind the gateway: silent after it: {v}");
}
