//! End-to-end tests of `netsleuth reach` on the NCA agreement corpus: formats, selectors,
//! `--by namespace`, `--expect` and exit codes.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_netsleuth");

fn case(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/nca-corpus").join(name);
    p.to_string_lossy().into_owned()
}

fn reach(args: &[&str]) -> Output {
    Command::new(BIN).arg("reach").args(args).output().unwrap_or_else(|e| panic!("running {BIN}: {e}"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn json_matrix_of_a_default_deny() {
    let c = case("02-default-deny-ingress");
    let o = reach(&[&c, "--from", "ns:y", "--to", "ns:x", "--to", "y/a", "--port", "80", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)));
    assert_eq!(v["format"], "netsleuth.reach/v1");
    assert_eq!(v["protocol"], "TCP");
    assert_eq!(v["sources"], serde_json::json!(["y/a", "y/b", "y/c"]));
    assert_eq!(v["targets"], serde_json::json!(["x/a", "x/b", "x/c", "y/a"]));
    assert_eq!(v["allowed"][1], serde_json::json!([false, false, false, true]));
    assert_eq!(v["reasons"][0][3], "self");
    assert_eq!(v["summary"]["allowed"], 3);
}

#[test]
fn csv_with_explanations_and_udp_port_syntax() {
    let c = case("15-ports-protocol-mix");
    let o = reach(&[&c, "--from", "z/b", "--to", "x/a", "--port", "80/udp", "--format", "csv", "--explain"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().next(), Some("source,target,protocol,port,allowed,reason,egress,ingress"));
    assert!(out.contains("z/b,x/a,UDP,80,true,allowed,not isolated,allowed by x/udp-only /spec/ingress/0"), "{out}");
    let o = reach(&[&c, "--from", "z/b", "--to", "x/a", "--port", "80", "--format", "csv"]);
    assert!(stdout(&o).contains("z/b,x/a,TCP,80,false,denied-ingress"), "{}", stdout(&o));
}

#[test]
fn text_grid_and_namespace_aggregate() {
    let c = case("04-default-deny-all");
    let o = reach(&[&c, "--from", "all", "--to", "all", "--port", "81"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("TCP 81: 39 of 81 pairs allowed"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("x/a")
                && l.split_whitespace().skip(1).eq(["Y", "b", "b", "e", "e", "e", "e", "e", "e"])),
        "{out}"
    );
    let o = reach(&[&c, "--from", "all", "--to", "all", "--port", "81", "--by", "namespace", "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["allowed_pairs"][0], serde_json::json!([3, 0, 0]));
    assert_eq!(v["allowed_pairs"][1], serde_json::json!([0, 9, 9]));
}

#[test]
fn expect_sets_the_exit_code() {
    let c = case("04-default-deny-all");
    let denied = reach(&[&c, "--from", "ns:y", "--to", "ns:x", "--port", "80", "--expect", "denied", "-f", "csv"]);
    assert_eq!(denied.status.code(), Some(0));
    let allowed = reach(&[&c, "--from", "ns:y", "--to", "ns:x", "--port", "80", "--expect", "allowed", "-f", "csv"]);
    assert_eq!(allowed.status.code(), Some(1));
}

#[test]
fn usage_and_input_errors_exit_2() {
    let c = case("01-no-policies");
    let cases: [(&[&str], &str); 5] = [
        (&[&c, "--from", "ns:nope", "--to", "all", "--port", "80"], "matches no running pod"),
        (&[&c, "--from", "ns:x,=v", "--to", "all", "--port", "80"], "empty label key"),
        (&[&c, "--from", "all", "--to", "all", "--port", "http"], "expected a port number"),
        (&[&c, "--from", "all", "--to", "all", "--port", "80/icmp"], "unknown protocol"),
        (&["/nonexistent/bundle", "--from", "all", "--to", "all", "--port", "80"], "/nonexistent/bundle"),
    ];
    for (args, message) in cases {
        let o = reach(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
    }
    // A missing --port is a usage error too (clap).
    assert_eq!(reach(&[&c, "--from", "all", "--to", "all"]).status.code(), Some(2));
}

#[test]
fn input_problems_are_reported_and_strict_fails() {
    // 01's policies.yaml is an empty NetworkPolicyList, which ingest notes as "no objects".
    let c = case("01-no-policies");
    let o = reach(&[&c, "--from", "x/a", "--to", "x/b", "--port", "80", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["input_issues"].as_array().map(Vec::len), Some(1), "{v}");
    assert!(stderr(&o).contains("warning: the matrix may be incomplete"), "{}", stderr(&o));
    let strict = reach(&[&c, "--from", "x/a", "--to", "x/b", "--port", "80", "--strict"]);
    assert_eq!(strict.status.code(), Some(2));
    assert!(stderr(&strict).contains("policies.yaml"), "{}", stderr(&strict));
}
