//! End-to-end tests of `netsleuth flowlogs`: exit codes (0 clean, 1 findings, 2 unreadable
//! file or usage), text tables and the JSON members on the fixtures of tests/fixtures/flowlogs.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_netsleuth");

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/flowlogs")
        .join(name)
        .to_str()
        .expect("utf-8 path")
        .to_string()
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("flowlogs")
        .args(args)
        .env_remove("CLICOLOR_FORCE")
        .env_remove("FORCE_COLOR")
        .env("NO_COLOR", "1")
        .output()
        .expect("run netsleuth")
}

fn json(args: &[&str]) -> (Option<i32>, Value) {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let out = run(&all);
    let v =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), v)
}

#[test]
fn findings_exit_1_with_json_members() {
    let (code, v) = json(&[&fixture("default-v2.log"), "--top", "2"]);
    assert_eq!(code, Some(1));
    assert_eq!(v["records"], 20);
    assert_eq!(v["malformed"], 0);
    assert_eq!(v["files"][0]["rejected"], 14);
    assert_eq!(v["top_rejected"]["by_bytes"].as_array().unwrap().len(), 2);
    assert_eq!(v["top_rejected"]["by_bytes"][0]["dst_port"], 8472);
    assert_eq!(v["top_rejected"]["by_packets"][0]["packets"], 50);
    assert_eq!(v["asymmetric"].as_array().unwrap().len(), 2);
    let rules: Vec<&str> = v["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
    for r in
        ["FLOW-002", "FLOW-003", "FLOW-004", "FLOW-005", "FLOW-006", "FLOW-007", "FLOW-008", "FLOW-009", "FLOW-010"]
    {
        assert!(rules.contains(&r), "{r} missing from {rules:?}");
    }
    let vpn = v["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "FLOW-003").unwrap();
    assert_eq!(vpn["evidence"][0]["location"]["line"], 4);
}

#[test]
fn clean_log_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ok.log");
    std::fs::write(
        &p,
        "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK\n",
    )
    .unwrap();
    let out = run(&[p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 record(s): 1 accepted, 0 rejected"), "{text}");
    assert!(text.contains("Top rejected flows by bytes (0):"), "{text}");
}

#[test]
fn damaged_input_is_a_finding_and_missing_file_exits_2() {
    let (code, v) = json(&[&fixture("truncated.log.gz")]);
    assert_eq!(code, Some(1));
    assert!(v["files"][0]["read_error"].as_str().unwrap().starts_with("reading stopped after line"));
    let (code, v) = json(&[&fixture("malformed.log")]);
    assert_eq!(code, Some(1));
    assert_eq!(v["malformed"], 6);

    let out = run(&[&fixture("no-such-file.log")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open"), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = PathBuf::from(fixture("default-v2.log")).parent().unwrap().to_str().unwrap().to_string();
    let out = run(&[&dir]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a directory"));
    let out = run(&[&fixture("default-v2.log"), "--format-fields", "Bad Fields"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn standard_input_gzip() {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(["flowlogs", "-", "--format", "json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let data = std::fs::read(fixture("custom-v5.log.gz")).unwrap();
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["records"].as_u64(), v["files"][0]["gzip"].as_bool()), (Some(9), Some(true)));
    assert_eq!(v["files"][0]["path"], "-");
}

#[test]
fn format_fields_and_vpn_port_options() {
    let fields = std::fs::read_to_string(fixture("custom-v5.log")).unwrap().lines().next().unwrap().to_string();
    let dollar: Vec<String> = fields.split(' ').map(|f| format!("${{{f}}}")).collect();
    let (_, v) =
        json(&[&fixture("custom-noheader.log"), "--format-fields", &dollar.join(" "), "--wireguard-port", "51821"]);
    assert_eq!(v["records"], 9);
    let rules: Vec<&str> = v["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"FLOW-003") && rules.contains(&"FLOW-008"), "{rules:?}");
    let (_, v) = json(&[&fixture("custom-noheader.log")]);
    assert_eq!(v["records"], 0);
    assert!(v["files"][0]["format_problem"].as_str().unwrap().contains("--format-fields"));
}
