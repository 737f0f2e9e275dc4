//! Shared helpers of the diagnose probe tests: small network namespaces named `hdp-*` that
//! are removed on drop, and the probe runner (the test binary itself, re-run inside them).
#![allow(dead_code)]

use std::io::Write;
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netsleuth_probe::diagnose::{dns, pmtu};

/// True when the test may run (root, `ip` and the listed programs); otherwise says why and
/// fails under NETSLEUTH_LAB_REQUIRED=1, so a skip is never silent in CI.
pub(crate) fn can_run(test: &str, programs: &[&str]) -> bool {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let in_path = |p: &str| {
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
    };
    let reason = if !root {
        Some("not root: the test creates network namespaces".to_string())
    } else {
        ["ip", "nft"].iter().chain(programs).find(|p| !in_path(p)).map(|p| format!("{p} is not installed"))
    };
    match reason {
        None => true,
        Some(r) => {
            assert!(
                std::env::var_os("NETSLEUTH_LAB_REQUIRED").is_none_or(|v| v != "1"),
                "{test}: cannot run but NETSLEUTH_LAB_REQUIRED=1: {r}"
            );
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {r}");
            false
        }
    }
}

/// Waits (at most 10 s) until `addr` answers ping from `ns` (IPv6 neighbour discovery waits
/// for duplicate address detection of the link-local addresses).
pub(crate) fn wait_ping(ns: &str, addr: &str) {
    for _ in 0..10 {
        let ok = Command::new("ip")
            .args(["netns", "exec", ns, "ping", "-c", "1", "-W", "1", addr])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return;
        }
    }
    panic!("{addr} does not answer ping from {ns}");
}

/// Runs a command, panicking with its stderr when it fails.
pub(crate) fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Network namespaces and processes of one test; everything is removed on drop.
pub(crate) struct Netns {
    pub prefix: String,
    names: Vec<String>,
    children: Vec<Child>,
}

impl Netns {
    /// `tag` keeps the names of concurrently running tests apart.
    pub(crate) fn new(tag: &str) -> Netns {
        Netns { prefix: format!("hdp-{tag}-{}", std::process::id() % 100_000), names: Vec::new(), children: Vec::new() }
    }

    /// Creates namespace `<prefix>-<name>` with loopback up; returns its full name.
    pub(crate) fn add(&mut self, name: &str) -> String {
        let full = format!("{}-{name}", self.prefix);
        let _ = Command::new("ip").args(["netns", "del", &full]).output();
        sh(&["ip", "netns", "add", &full]);
        self.names.push(full.clone());
        sh(&["ip", "-n", &full, "link", "set", "lo", "up"]);
        full
    }

    /// Runs a command inside a namespace.
    pub(crate) fn exec(&self, ns: &str, args: &[&str]) {
        let mut all = vec!["ip", "netns", "exec", ns];
        all.extend_from_slice(args);
        sh(&all);
    }

    /// Starts a long-running process inside a namespace (killed on drop).
    pub(crate) fn spawn(&mut self, ns: &str, args: &[&str]) -> u32 {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// A veth pair between two namespaces, each end with an address and an MTU.
    pub(crate) fn link(&self, a: (&str, &str, &str, u32), b: (&str, &str, &str, u32)) {
        let tmp_a = format!("hdpa{}", self.names.len() * 10 + rand_small());
        let tmp_b = format!("hdpb{}", self.names.len() * 10 + rand_small());
        sh(&["ip", "link", "add", &tmp_a, "type", "veth", "peer", "name", &tmp_b]);
        for ((ns, dev, addr, mtu), tmp) in [(a, &tmp_a), (b, &tmp_b)] {
            sh(&["ip", "link", "set", tmp, "netns", ns]);
            sh(&["ip", "-n", ns, "link", "set", tmp, "name", dev]);
            sh(&["ip", "-n", ns, "link", "set", dev, "mtu", &mtu.to_string(), "up"]);
            sh(&["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
        }
    }
}

fn rand_small() -> usize {
    (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos()) % 100_000)
        as usize
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = Command::new("kill").args(["-CONT", &c.id().to_string()]).output();
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

/// Environment variable that turns a test binary into a one-shot probe runner: the test
/// binary re-runs itself inside a namespace (`ip netns exec`), since the library cannot
/// switch namespaces without unsafe code.
const CHILD_ENV: &str = "NETSLEUTH_HDP_PROBE_ARGS";

/// Runs `ARGS` with `child_main` of this test binary inside `ns` and returns its JSON.
/// `dns NAME RESOLV_CONF [TIMEOUT_MS [ATTEMPTS]]` or
/// `pmtu TARGET [udp:PORT] [tcp:PORT] [mtu:LOCAL_MTU] [timeout:MS]`.
pub(crate) fn run_probe(ns: &str, args: &[&str]) -> serde_json::Value {
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(exe)
        .args(["--exact", "probe_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, args.join("\u{1f}"))
        .output()
        .unwrap_or_else(|e| panic!("probe child: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.split_once("HDP-JSON:").map(|(_, j)| j)).unwrap_or_else(|| {
        panic!("probe child {args:?} printed no result: {stdout}\n{}", String::from_utf8_lossy(&out.stderr))
    });
    serde_json::from_str(line).unwrap_or_else(|e| panic!("probe child output: {e}: {line}"))
}

/// The body of each test file's `probe_child` test: does nothing in a normal run; in a
/// child started by `run_probe`, runs the probe and prints its outcome as one JSON line.
pub(crate) fn child_main() {
    let Ok(joined) = std::env::var(CHILD_ENV) else {
        return;
    };
    let args: Vec<&str> = joined.split('\u{1f}').collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let json = match args.as_slice() {
        ["dns", name, conf, rest @ ..] => {
            let mut req = dns::DnsRequest::new(*name, *conf);
            if let Some(ms) = rest.first().and_then(|s| s.parse().ok()) {
                req.per_query_timeout = Duration::from_millis(ms);
            }
            if let Some(a) = rest.get(1).and_then(|s| s.parse().ok()) {
                req.attempts = a;
            }
            let out = dns::run(&req, deadline);
            let addrs = dns::addresses(&out.detail);
            serde_json::json!({ "outcome": out, "addresses": addrs })
        }
        ["pmtu", target, rest @ ..] => {
            let target: IpAddr = target.parse().expect("pmtu target address");
            let mut req = pmtu::PmtuRequest::new(target);
            for a in rest {
                match a.split_once(':') {
                    Some(("udp", p)) => req.udp_port = p.parse().ok(),
                    Some(("tcp", p)) => req.port = p.parse().ok(),
                    Some(("mtu", m)) => req.local_mtu = m.parse().ok(),
                    Some(("timeout", ms)) => req.per_probe_timeout = Duration::from_millis(ms.parse().expect("ms")),
                    _ => panic!("unknown pmtu argument {a:?}"),
                }
            }
            serde_json::json!({ "outcome": pmtu::run(&req, deadline) })
        }
        _ => panic!("unknown probe arguments {args:?}"),
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "HDP-JSON:{json}").expect("stdout");
}

/// The cause ids of a probe outcome, in order.
pub(crate) fn causes(v: &serde_json::Value) -> Vec<String> {
    v["outcome"]["causes"]
        .as_array()
        .map_or(Vec::new(), |a| a.iter().filter_map(|c| c["rule"].as_str().map(String::from)).collect())
}
