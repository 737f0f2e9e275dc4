//! `netsleuth pcap` end to end on the real lab captures, and the capture and flow-log rules in
//! `netsleuth rules` / `netsleuth explain`.

use std::path::PathBuf;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_netsleuth");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env("NO_COLOR", "1").output().expect("run netsleuth")
}

fn capture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/captures").join(name);
    p.display().to_string()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

fn rule_ids(v: &serde_json::Value) -> Vec<String> {
    v["findings"].as_array().expect("findings").iter().filter_map(|f| f["rule"].as_str().map(str::to_string)).collect()
}

#[test]
fn mtu_option_reports_packets_over_the_path_mtu() {
    let file = capture("mtu-frag-needed.pcap");
    let plain = json(&run(&["pcap", &file, "--format", "json"]));
    assert!(!rule_ids(&plain).contains(&"PCAP-013".to_string()));
    let o = run(&["pcap", &file, "--format", "json", "--mtu", "1280"]);
    assert_eq!(o.status.code(), Some(1), "high findings exit 1");
    let v = json(&o);
    assert_eq!(rule_ids(&v).iter().filter(|r| *r == "PCAP-013").count(), 2);
    assert_eq!(v["captures"][0]["counts"]["over_mtu"], 2);
    // Out of range is a usage error.
    assert_eq!(run(&["pcap", &file, "--mtu", "20"]).status.code(), Some(2));
}

#[test]
fn flows_table_shows_duplicate_acks_and_zero_windows() {
    let o = run(&["pcap", &capture("tcp-zero-window.pcap"), "--flows"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("dupack") && text.contains("zerowin"), "{text}");
    assert!(text.contains("PCAP-012"), "{text}");
}

#[test]
fn rules_lists_capture_and_flowlog_rules_with_their_source() {
    let v = json(&run(&["rules", "--format", "json"]));
    assert_eq!(v["schema"], "netsleuth.rules/v1");
    let rules = v["rules"].as_array().expect("rules");
    let source = |id: &str| rules.iter().find(|r| r["id"] == id).map(|r| r["source"].clone());
    assert_eq!(source("ING-001"), Some(serde_json::json!("bundle")));
    assert_eq!(source("PCAP-014"), Some(serde_json::json!("capture")));
    assert_eq!(source("FLOW-001"), Some(serde_json::json!("flowlogs")));
    let pcap = rules.iter().filter(|r| r["source"] == "capture").count();
    assert_eq!(pcap, 20);
    let text = String::from_utf8_lossy(&run(&["rules"]).stdout).to_string();
    assert!(text.lines().any(|l| l.contains("PCAP-017") && l.contains("tunnel")), "{text}");
}

#[test]
fn explain_a_capture_rule_and_suggest_close_ids() {
    let o = run(&["explain", "pcap-014"]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("PCAP-014  MTU black hole"), "{text}");
    assert!(text.contains("What to change:") && text.contains("clamp-mss-to-pmtu"), "{text}");
    let v = json(&run(&["explain", "PCAP-012", "--format", "json"]));
    assert_eq!(v["layer"], "pod");
    let o = run(&["explain", "PCAP-14"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("did you mean PCAP-014"));
}
