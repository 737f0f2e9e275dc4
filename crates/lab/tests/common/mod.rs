//! Shared helpers of the lab integration tests: the root/tool check that skips (or, with
//! NETSLEUTH_LAB_REQUIRED=1, fails) them, the echo program, bounded waits.
#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netsleuth_lab::echo::ClientResult;
use netsleuth_lab::{scenario, FaultRequest, Lab, PingOptions, PingStats, UpOptions};

/// Why the lab tests cannot run here, if they cannot.
pub(crate) fn skip_reason() -> Option<String> {
    if !netsleuth_lab::is_root() {
        return Some("not root: the lab creates network namespaces (run the tests as root)".into());
    }
    for prog in ["ip", "nft", "wg", "wireguard-go", "ping", "ss", "sysctl", "bridge"] {
        let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()));
        if !found {
            return Some(format!("{prog} is not installed"));
        }
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing (wireguard-go needs it)".into());
    }
    None
}

/// True when the test may run; otherwise says why on stderr (and fails when
/// NETSLEUTH_LAB_REQUIRED=1, as in CI, so that a skip is never silent there).
pub(crate) fn can_run(test: &str) -> bool {
    match skip_reason() {
        None => true,
        Some(reason) => {
            if std::env::var_os("NETSLEUTH_LAB_REQUIRED").is_some_and(|v| v == "1") {
                panic!("{test}: cannot run but NETSLEUTH_LAB_REQUIRED=1: {reason}");
            }
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
            false
        }
    }
}

pub(crate) fn echo_command() -> Vec<String> {
    vec![env!("CARGO_BIN_EXE_netsleuth-lab-echo").to_string()]
}

pub(crate) fn up(faults: &[&str]) -> Lab {
    let sc = scenario::load("k8s-wireguard-site").unwrap_or_else(|e| panic!("{e}"));
    let mut opts = UpOptions::new(echo_command());
    opts.faults = faults.iter().map(|f| f.parse::<FaultRequest>().unwrap_or_else(|e| panic!("{e}"))).collect();
    Lab::up(&sc, &opts).unwrap_or_else(|e| panic!("lab up: {e}"))
}

/// Retries `probe` until it returns true or `limit` passes (bounded), with a pause.
pub(crate) fn eventually(limit: Duration, pause: Duration, mut probe: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if probe() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
    }
}

pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub(crate) fn tcp(lab: &Lab, host: &str, target: &str, bytes: usize, secs: u64) -> ClientResult {
    lab.tcp_echo(host, addr(target), bytes, Duration::from_secs(secs)).unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn udp(lab: &Lab, host: &str, target: &str, bytes: usize, secs: u64) -> ClientResult {
    lab.udp_echo(host, addr(target), bytes, Duration::from_secs(secs)).unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Pings `dst` from `host`: `count` requests of `size` payload bytes, DF as given.
pub(crate) fn ping(lab: &Lab, host: &str, dst: &str, count: u32, size: u32, df: Option<bool>) -> PingStats {
    let opts = PingOptions { count, size, df, interval_ms: 20, wait_s: 1 };
    lab.ping(host, dst.parse().unwrap_or_else(|e| panic!("{dst}: {e}")), opts).unwrap_or_else(|e| panic!("{e}"))
}

/// Forgets learned path MTUs in a host, so PMTUD starts over.
pub(crate) fn flush_pmtu(lab: &Lab, host: &str) {
    let out =
        lab.exec(host, &["ip", "route", "flush", "cache"], Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "ip route flush cache: {}", out.stderr);
}

/// The scenario's path works: ping, TCP and UDP echo from pod-a to the app across the
/// tunnel (bounded retries: a WireGuard handshake may be under way).
pub(crate) fn path_ok(lab: &Lab, limit: Duration) -> bool {
    eventually(limit, Duration::from_millis(200), || ping(lab, "pod-a", APP, 1, 56, None).all_ok())
        && tcp(lab, "pod-a", APP_TCP, 4096, 3).ok
        && udp(lab, "pod-a", APP_UDP, 512, 3).ok
}

pub(crate) const APP: &str = "10.20.1.10";
pub(crate) const APP_TCP: &str = "10.20.1.10:5000";
pub(crate) const APP_UDP: &str = "10.20.1.10:5001";
pub(crate) const APP_HTTP: &str = "10.20.1.10:8080";
pub(crate) const POD_B: &str = "10.244.2.10";
pub(crate) const POD_B_TCP: &str = "10.244.2.10:5000";

/// Failed expectations, collected so one run reports every broken fault at once.
#[derive(Default)]
pub(crate) struct Failures(pub(crate) Vec<String>);

impl Failures {
    pub(crate) fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            let w = what();
            say(&format!("FAILED: {w}"));
            self.0.push(w);
        }
    }
}
