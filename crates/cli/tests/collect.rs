//! End-to-end tests of `netsleuth collect`: usage errors, and (as root) a real network
//! namespace collected into a folder that `netsleuth analyze` then reads.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_netsleuth");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env_remove("NETSLEUTH_SALT").stdin(Stdio::null()).output().expect("run netsleuth")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn sh(args: &[&str]) -> Result<String, String> {
    let out =
        Command::new(args[0]).args(&args[1..]).stdin(Stdio::null()).output().map_err(|e| format!("{args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{args:?}: {}", text(&out.stderr)));
    }
    Ok(text(&out.stdout))
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

#[test]
fn collect_needs_host_and_output() {
    let r = run(&["collect", "-o", "x"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("--host"), "{}", text(&r.stderr));
    let r = run(&["collect", "--host"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("--output"), "{}", text(&r.stderr));
    let r = run(&["collect", "--host", "-o", "x", "--timeout", "0"]);
    assert_eq!(r.status.code(), Some(2), "timeout 0 is refused");
}

#[test]
fn unknown_namespace_and_bad_name_are_errors_that_write_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("b");
    let o = out.to_str().expect("utf-8 path");
    let r = run(&["collect", "--host", "--netns", "nsh9-no-such-namespace", "-o", o]);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("network namespace \"nsh9-no-such-namespace\" not found"), "{}", text(&r.stderr));
    let r = run(&["collect", "--host", "--name", "../evil", "-o", o]);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("invalid host name"), "{}", text(&r.stderr));
    assert!(!out.exists());
}

/// A namespace with a veth and an address, removed on drop.
struct Ns(String);

impl Ns {
    fn new() -> Ns {
        let ns = Ns(format!("nsh9-{}-cli", std::process::id()));
        let veth = format!("nh9c{}", std::process::id() % 100_000);
        for args in [
            vec!["ip", "netns", "add", &ns.0],
            vec!["ip", "-n", &ns.0, "link", "add", &veth, "type", "veth", "peer", "name", "nh9cpeer"],
            vec!["ip", "-n", &ns.0, "addr", "add", "10.96.0.1/24", "dev", &veth],
            vec!["ip", "-n", &ns.0, "link", "set", &veth, "up"],
        ] {
            sh(&args).unwrap_or_else(|e| panic!("{e}"));
        }
        ns
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "del", &self.0]);
    }
}

#[test]
fn collects_a_namespace_that_analyze_reads() {
    if !is_root() || sh(&["ip", "netns", "list"]).is_err() {
        let _ =
            writeln!(std::io::stderr(), "SKIPPED collects_a_namespace_that_analyze_reads: needs root and `ip netns`");
        return;
    }
    let ns = Ns::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("bundle");
    let o = out.to_str().expect("utf-8 path");
    let args = ["collect", "--host", "--netns", &ns.0, "--name", "gw-1", "--role", "gateway", "-o", o, "--salt", "s1"];
    let r = run(&args);
    assert_eq!(r.status.code(), Some(0), "stderr: {}", text(&r.stderr));
    let stdout = text(&r.stdout);
    assert!(stdout.starts_with("collected host gw-1 ("), "{stdout}");
    assert!(stdout.contains(&format!("into {o}")), "{stdout}");
    // /run is shared: the host's charon is not this namespace's.
    assert!(
        stdout.contains("skipped: swanctl --list-sas: the default VICI socket belongs to the host's charon"),
        "{stdout}"
    );

    let host: Value = serde_json::from_str(&fs::read_to_string(out.join("hosts/gw-1/host.json")).expect("host.json"))
        .expect("host.json parses");
    assert_eq!(host["role"], "gateway");
    assert_eq!(host["netns"], ns.0.as_str());
    let manifest: Value =
        serde_json::from_str(&fs::read_to_string(out.join("manifest.json")).expect("manifest")).expect("parses");
    assert_eq!(manifest["format"], "netsleuth-bundle/1");
    let link = manifest["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .find(|c| c["artifact"] == "hosts/gw-1/ip-link.json")
        .expect("ip link record");
    assert_eq!(link["status"], "ok");
    let links = fs::read_to_string(out.join("hosts/gw-1/ip-link.json")).expect("ip-link.json");
    assert!(links.contains("nh9cpeer"), "{links}");

    // A second run refuses the non-empty folder; --force replaces it.
    let r = run(&args);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("not empty; pass --force"), "{}", text(&r.stderr));
    let mut forced = args.to_vec();
    forced.push("--force");
    assert_eq!(run(&forced).status.code(), Some(0));

    // analyze reads it: the host and its artifacts, no ingest issue.
    let r = run(&["analyze", o, "--format", "json", "--fail-on", "none", "--salt", "s1"]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    let report: Value = serde_json::from_slice(&r.stdout).expect("json report");
    let summary = &report["summary"];
    assert_eq!(summary["hosts"], 1, "{summary}");
    assert_eq!(summary["ingest_issues"], 0, "{summary}");
    assert_eq!(summary["skipped_files"], 0, "{summary}");
    assert!(summary["artifacts"].as_u64().is_some_and(|n| n >= 10), "{summary}");
    drop(ns);
    let left = sh(&["ip", "netns", "list"]).unwrap_or_default();
    assert!(!left.contains(&format!("nsh9-{}-cli", std::process::id())), "{left}");
    assert!(!Path::new(&format!("/run/netns/nsh9-{}-cli", std::process::id())).exists());
}
