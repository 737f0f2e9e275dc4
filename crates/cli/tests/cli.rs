//! End-to-end tests of the `netsleuth` binary: small bundles in temp folders, exit codes,
//! the three report formats (JSON and SARIF validated against their schemas), the catalog.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_netsleuth");

/// A temporary bundle folder.
struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    fn new() -> Bundle {
        Bundle { dir: tempfile::tempdir().expect("temp dir") }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(self, rel: &str, text: &str) -> Bundle {
        let p = self.dir.path().join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, text).expect("write");
        self
    }

    fn arg(&self) -> &str {
        self.path().to_str().expect("utf-8 temp path")
    }
}

/// Runs the binary without colour-forcing variables from the caller's environment.
fn run(args: &[&str]) -> Output {
    run_env(args, &[])
}

fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("NETSLEUTH_SALT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run netsleuth")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code, not a signal")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", stdout(o)))
}

/// A bundle whose manifest is broken JSON: the manifest reader is part of the bundle
/// reader itself, so this does not depend on any artifact parser being finished.
fn broken_manifest_bundle() -> Bundle {
    Bundle::new()
        .file("manifest.json", "{\n  \"format\": \"netsleuth-bundle/1\",\n  \"collected_at\": \n")
        .file("notes.txt", "hi")
}

fn docs(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs").join(rel)
}

// ---- usage and input errors -------------------------------------------------------------

#[test]
fn missing_bundle_is_exit_2_with_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nope");
    let o = run(&["analyze", missing.to_str().expect("utf-8")]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.starts_with("error: bundle "), "{err}");
    assert!(err.contains("nope") && err.contains("does not exist"), "{err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn bundle_that_is_a_file_is_exit_2() {
    let b = Bundle::new().file("x.txt", "not a folder");
    let file = b.path().join("x.txt");
    let o = run(&["analyze", file.to_str().expect("utf-8")]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("is not a directory"), "{}", stderr(&o));
}

#[test]
fn bad_flag_values_are_exit_2() {
    let b = Bundle::new();
    for args in [
        vec!["analyze", b.arg(), "--fail-on", "urgent"],
        vec!["analyze", b.arg(), "--format", "xml"],
        vec!["analyze", b.arg(), "--now", "tomorrow"],
        vec!["analyze", b.arg(), "--rules", "ING-001,NOPE-001"],
        vec!["analyze"],
        vec!["frobnicate"],
    ] {
        let o = run(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("error"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn unknown_rule_in_rules_flag_suggests_a_close_id() {
    let b = Bundle::new();
    let o = run(&["analyze", b.arg(), "--rules", "ING-01"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("did you mean ING-001"), "{}", stderr(&o));
}

#[test]
fn unwritable_output_is_exit_2() {
    let b = Bundle::new();
    let out = b.path().join("no-such-dir").join("r.json");
    let o = run(&["analyze", b.arg(), "--output", out.to_str().expect("utf-8")]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("cannot create"), "{}", stderr(&o));
}

// ---- analyze ------------------------------------------------------------------------------

#[test]
fn empty_bundle_is_clean() {
    let b = Bundle::new();
    let o = run(&["analyze", b.arg(), "--fail-on", "info"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let text = stdout(&o);
    assert!(text.contains("No findings."), "{text}");
    assert!(text.contains("findings:       0"), "{text}");
}

#[test]
fn garbage_file_is_an_ing001_finding_in_text() {
    let b = broken_manifest_bundle();
    let o = run(&["analyze", b.arg()]);
    // ING-001 is medium, the default --fail-on.
    assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("Ingest (1 finding)"), "{text}");
    assert!(text.contains("ING-001"), "{text}");
    assert!(text.contains("evidence:   manifest.json:4"), "{text}");
    assert!(text.contains("skipped files:  1"), "{text}");
    assert!(stderr(&o).is_empty(), "no progress line when stderr is not a terminal: {}", stderr(&o));
}

#[test]
fn fail_on_threshold_decides_the_exit_code() {
    let b = broken_manifest_bundle();
    for (fail_on, expected) in [("critical", 0), ("high", 0), ("medium", 1), ("low", 1), ("info", 1), ("none", 0)] {
        let o = run(&["analyze", b.arg(), "--fail-on", fail_on, "--format", "json"]);
        assert_eq!(code(&o), expected, "--fail-on {fail_on}");
        assert_eq!(json(&o)["summary"]["findings"], 1, "output does not depend on --fail-on");
    }
}

#[test]
fn garbage_file_in_json() {
    let b = broken_manifest_bundle();
    let o = run(&["analyze", b.arg(), "--format", "json"]);
    assert_eq!(code(&o), 1);
    let v = json(&o);
    assert_eq!(v["schema"], "netsleuth.report/v1");
    assert_eq!(v["tool"]["name"], "netsleuth");
    assert_eq!(v["bundle"], b.arg());
    let f = &v["findings"][0];
    assert_eq!(f["rule"], "ING-001");
    assert_eq!(f["layer"], "ingest");
    assert_eq!(f["severity"], "medium");
    assert_eq!(f["subject"], "bundle/manifest.json");
    assert_eq!(f["evidence"][0]["location"]["kind"], "file");
    assert_eq!(f["evidence"][0]["location"]["path"], "manifest.json");
    assert_eq!(f["evidence"][0]["location"]["line"], 4);
    assert_eq!(v["skipped_files"], serde_json::json!(["notes.txt"]));
    assert_eq!(v["summary"]["ingest_issues"], 1);
    assert_eq!(v["summary"]["skipped_files"], 1);
}

#[test]
fn garbage_file_in_sarif() {
    let b = broken_manifest_bundle();
    let o = run(&["analyze", b.arg(), "--format", "sarif", "--fail-on", "none"]);
    assert_eq!(code(&o), 0);
    let v = json(&o);
    assert_eq!(v["version"], "2.1.0");
    let run0 = &v["runs"][0];
    let rules = run0["tool"]["driver"]["rules"].as_array().expect("rules");
    let res = &run0["results"][0];
    assert_eq!(res["ruleId"], "ING-001");
    let idx = usize::try_from(res["ruleIndex"].as_u64().expect("ruleIndex")).expect("index");
    assert_eq!(rules[idx]["id"], "ING-001");
    assert_eq!(res["level"], "warning");
    let phys = &res["locations"][0]["physicalLocation"];
    assert_eq!(phys["artifactLocation"]["uri"], "manifest.json");
    assert_eq!(phys["artifactLocation"]["uriBaseId"], "BUNDLE");
    assert_eq!(phys["region"]["startLine"], 4);
    let base = run0["originalUriBaseIds"]["BUNDLE"]["uri"].as_str().expect("base uri");
    assert!(base.starts_with("file:///") && base.ends_with('/'), "{base}");
    assert_eq!(res["partialFingerprints"]["netsleuth/ruleSubject/v1"].as_str().map(str::len), Some(16));
}

#[test]
fn output_flag_writes_the_file_and_nothing_to_stdout() {
    let b = broken_manifest_bundle();
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out = out_dir.path().join("report.json");
    let o = run(&["analyze", b.arg(), "--format", "json", "-o", out.to_str().expect("utf-8"), "--color", "auto"]);
    assert_eq!(code(&o), 1);
    assert!(o.stdout.is_empty());
    let v: Value = serde_json::from_str(&fs::read_to_string(&out).expect("report written")).expect("JSON");
    assert_eq!(v["findings"][0]["rule"], "ING-001");
}

#[test]
fn now_overrides_collected_at() {
    let b = Bundle::new().file("manifest.json", r#"{"format": "netsleuth-bundle/1", "collected_at": 1795396209}"#);
    let v = json(&run(&["analyze", b.arg(), "--format", "json"]));
    assert_eq!(v["collected_at"], "2026-11-23T01:10:09Z");
    let v = json(&run(&["analyze", b.arg(), "--format", "json", "--now", "2027-01-01T00:00:00Z"]));
    assert_eq!(v["collected_at"], "2027-01-01T00:00:00Z");
    let v = json(&run(&["analyze", b.arg(), "--format", "json", "--now", "0"]));
    assert_eq!(v["collected_at"], "1970-01-01T00:00:00Z");
    let v = json(&run(&["analyze", Bundle::new().arg(), "--format", "json"]));
    assert!(v["collected_at"].is_null());
}

#[test]
fn salt_makes_the_salt_id_reproducible() {
    let b = Bundle::new();
    let id = |args: &[&str], env: &[(&str, &str)]| -> Value {
        let mut all = vec!["analyze", b.arg(), "--format", "json"];
        all.extend_from_slice(args);
        json(&run_env(&all, env))["salt_id"].clone()
    };
    let a = id(&["--salt", "s1"], &[]);
    assert!(a.is_string());
    assert_eq!(a, id(&["--salt", "s1"], &[]));
    assert_eq!(a, id(&[], &[("NETSLEUTH_SALT", "s1")]), "the env variable is the same salt");
    assert_ne!(a, id(&["--salt", "s2"], &[]));
    assert_ne!(id(&[], &[]), id(&[], &[]), "random key per run without a salt");
}

#[test]
fn rules_flag_limits_the_rules_run() {
    let b = broken_manifest_bundle();
    let v = json(&run(&["analyze", b.arg(), "--format", "json", "--rules", "ing-001"]));
    assert_eq!(v["summary"]["rules_run"], 1);
    assert_eq!(v["findings"][0]["rule"], "ING-001");
    let s = json(&run(&["analyze", b.arg(), "--format", "sarif", "--rules", "ING-001"]));
    assert_eq!(s["runs"][0]["tool"]["driver"]["rules"].as_array().map(Vec::len), Some(1));
}

// ---- colour -------------------------------------------------------------------------------

#[test]
fn no_escape_codes_in_pipes_or_with_no_color() {
    let b = broken_manifest_bundle();
    let piped = run(&["analyze", b.arg()]);
    assert!(!piped.stdout.contains(&0x1b), "auto colour must be off for a pipe");
    let no_color = run_env(&["analyze", b.arg(), "--color", "auto"], &[("NO_COLOR", "1")]);
    assert!(!no_color.stdout.contains(&0x1b));
    let never = run_env(&["analyze", b.arg(), "--color", "never"], &[("CLICOLOR_FORCE", "1")]);
    assert!(!never.stdout.contains(&0x1b), "--color never wins over CLICOLOR_FORCE");
}

#[test]
fn colour_when_forced() {
    let b = broken_manifest_bundle();
    let always = run(&["analyze", b.arg(), "--color", "always"]);
    assert!(always.stdout.contains(&0x1b), "--color always colours a pipe");
    let forced = run_env(&["analyze", b.arg()], &[("CLICOLOR_FORCE", "1")]);
    assert!(forced.stdout.contains(&0x1b), "CLICOLOR_FORCE colours in auto mode");
}

// ---- rules, explain, completions --------------------------------------------------------------

#[test]
fn rules_lists_the_catalog() {
    let o = run(&["rules"]);
    assert_eq!(code(&o), 0);
    let text = stdout(&o);
    let row = text.lines().find(|l| l.contains("ING-001")).expect("ING-001 row");
    assert!(row.contains("ingest") && row.contains("medium") && row.contains("Artifact could not be parsed"), "{row}");

    let v = json(&run(&["rules", "--format", "json"]));
    assert_eq!(v["schema"], "netsleuth.rules/v1");
    let rules = v["rules"].as_array().expect("rules array");
    let ing = rules.iter().find(|r| r["id"] == "ING-001").expect("ING-001");
    assert_eq!(ing["layer"], "ingest");
    assert!(ing["rationale"].as_str().is_some_and(|s| !s.is_empty()));
    let ids: Vec<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "catalog in id order");
}

#[test]
fn explain_a_rule() {
    let o = run(&["explain", "ing-001"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.starts_with("ING-001  Artifact could not be parsed"), "{text}");
    assert!(text.contains("Why it matters"), "{text}");
    assert!(text.contains("docs/bundle-format.md"), "{text}");
    assert!(text.contains("Example"), "{text}");

    let v = json(&run(&["explain", "ING-001", "--format", "json"]));
    assert_eq!(v["id"], "ING-001");
    assert_eq!(v["severity"], "medium");
}

#[test]
fn explain_unknown_rule_is_exit_2_with_suggestion() {
    let o = run(&["explain", "ING-01"]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(err.starts_with("error: unknown rule id \"ING-01\""), "{err}");
    assert!(err.contains("did you mean ING-001"), "{err}");
    let o = run(&["explain", "ZZZZZZZZ"]);
    assert_eq!(code(&o), 2);
    assert!(!stderr(&o).contains("did you mean"), "{}", stderr(&o));
}

#[test]
fn completions_for_bash() {
    let o = run(&["completions", "bash"]);
    assert_eq!(code(&o), 0);
    let script = stdout(&o);
    assert!(script.contains("_netsleuth") && script.contains("analyze") && script.contains("--fail-on"));
}

#[test]
fn help_has_examples_and_exit_codes() {
    let o = run(&["analyze", "--help"]);
    assert_eq!(code(&o), 0);
    let help = stdout(&o);
    assert!(help.contains("Examples:") && help.contains("netsleuth analyze ./bundle --fail-on high"), "{help}");
    assert!(help.contains("Exit codes"), "{help}");
    let o = run(&["--version"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).starts_with("netsleuth "), "{}", stdout(&o));
}

// ---- schema validation --------------------------------------------------------------------

/// Validates `doc` against the JSON Schema at `schema` with Python's jsonschema; returns
/// the validation errors (empty: valid). Panics when python3 or jsonschema is missing:
/// these tests must not pass silently.
fn schema_errors(schema: &Path, doc: &Value) -> Vec<String> {
    const SCRIPT: &str = r#"
import json, sys
try:
    import jsonschema
except ImportError:
    print("MISSING-JSONSCHEMA", file=sys.stderr)
    sys.exit(3)
schema = json.load(open(sys.argv[1]))
doc = json.load(open(sys.argv[2]))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
for e in sorted(cls(schema).iter_errors(doc), key=lambda e: list(e.absolute_path)):
    print("/" + "/".join(str(p) for p in e.absolute_path) + ": " + e.message)
"#;
    let dir = tempfile::tempdir().expect("temp dir");
    let doc_path = dir.path().join("doc.json");
    fs::write(&doc_path, serde_json::to_vec(doc).expect("serialise")).expect("write doc");
    let install = "install python3-jsonschema (Debian: apt-get install python3-jsonschema)";
    let o = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(schema)
        .arg(&doc_path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); schema validation needs it: {install}"));
    let err = stderr(&o);
    assert!(!err.contains("MISSING-JSONSCHEMA"), "python3 has no jsonschema module: {install}");
    assert!(o.status.success(), "validator failed: {err}");
    stdout(&o).lines().map(str::to_string).collect()
}

/// A bundle with a finding, a skipped file and a collected_at, so that every part of the
/// report is exercised.
fn rich_bundle() -> Bundle {
    Bundle::new()
        .file("manifest.json", r#"{"format": "netsleuth-bundle/1", "collected_at": "2026-11-23T01:10:09Z"}"#)
        .file("hosts/gw 1/ip-link.json", "[{\"ifname\": ")
        .file("hosts/gw 1/host.json", r#"{"role": "router"}"#)
        .file("cloud/other/x.json", "{}")
}

#[test]
fn json_report_validates_against_its_schema() {
    let schema = docs("schemas/report-v1.schema.json");
    for b in [rich_bundle(), broken_manifest_bundle(), Bundle::new()] {
        let v = json(&run(&["analyze", b.arg(), "--format", "json"]));
        let errors = schema_errors(&schema, &v);
        assert!(errors.is_empty(), "schema errors: {errors:#?}\n{v:#}");
    }
}

#[test]
fn report_schema_rejects_a_wrong_report() {
    // Shows the validation above can fail: an unknown severity and a missing key.
    let schema = docs("schemas/report-v1.schema.json");
    let mut v = json(&run(&["analyze", broken_manifest_bundle().arg(), "--format", "json"]));
    v["findings"][0]["severity"] = Value::from("urgent");
    if let Some(obj) = v.as_object_mut() {
        obj.remove("skipped_files");
    }
    let errors = schema_errors(&schema, &v);
    assert!(errors.iter().any(|e| e.contains("/findings/0/severity")), "{errors:#?}");
    assert!(errors.iter().any(|e| e.contains("skipped_files")), "{errors:#?}");
}

#[test]
fn sarif_validates_against_the_official_schema() {
    let schema = docs("schemas/sarif-schema-2.1.0.json");
    let text = fs::read_to_string(&schema).expect("official SARIF schema in docs/schemas");
    let s: Value = serde_json::from_str(&text).expect("schema is JSON");
    assert!(s["title"].as_str().is_some_and(|t| t.contains("2.1.0")), "{}", s["title"]);
    for b in [rich_bundle(), broken_manifest_bundle(), Bundle::new()] {
        let v = json(&run(&["analyze", b.arg(), "--format", "sarif"]));
        let errors = schema_errors(&schema, &v);
        assert!(errors.is_empty(), "SARIF schema errors: {errors:#?}\n{v:#}");
    }
}

#[test]
fn sarif_schema_rejects_a_wrong_log() {
    let schema = docs("schemas/sarif-schema-2.1.0.json");
    let mut v = json(&run(&["analyze", broken_manifest_bundle().arg(), "--format", "sarif"]));
    v["runs"][0]["results"][0]["level"] = Value::from("critical");
    let errors = schema_errors(&schema, &v);
    assert!(errors.iter().any(|e| e.contains("/runs/0/results/0/level")), "{errors:#?}");
}

#[test]
fn sarif_uri_of_a_path_with_a_space_is_encoded() {
    let b = rich_bundle();
    let v = json(&run(&["analyze", b.arg(), "--format", "sarif"]));
    let uris: Vec<&str> = v["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str())
        .collect();
    assert!(uris.iter().any(|u| u.starts_with("hosts/gw%201/")), "{uris:?}");
}

// ---- end to end with real parsers and rules ---------------------------------------------------

/// A node whose resolv.conf has `options ndots:5` and three search domains (DNS-001), next to
/// a host whose link file is cut short (ING-001).
fn dns_bundle() -> Bundle {
    Bundle::new()
        .file(
            "hosts/node-1/resolv.conf",
            "nameserver 10.96.0.10\nsearch prod.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n",
        )
        .file("hosts/node-2/ip-link.json", "[{\"ifindex\": 1, ")
}

#[test]
fn ndots_five_with_three_search_domains_is_dns001() {
    let b = dns_bundle();
    let o = run(&["analyze", b.arg(), "--format", "json", "--rules", "DNS-001,ING-001"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v = json(&o);
    let findings = v["findings"].as_array().expect("findings");
    let rules: Vec<&str> = findings.iter().filter_map(|f| f["rule"].as_str()).collect();
    assert_eq!(rules, ["ING-001", "DNS-001"], "inside-out: ingest before dns");
    let dns = &findings[1];
    assert_eq!(dns["layer"], "dns");
    assert!(dns["subject"].as_str().is_some_and(|s| s.starts_with("host/node-1")), "{dns:#}");
    let cites_ndots_line = dns["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .any(|e| e["location"]["path"] == "hosts/node-1/resolv.conf" && e["location"]["line"] == 3);
    assert!(cites_ndots_line, "evidence cites resolv.conf line 3: {dns:#}");
    assert!(dns["fix"].as_str().is_some_and(|f| f.contains("ndots")), "{dns:#}");

    let text = stdout(&run(&["analyze", b.arg(), "--rules", "DNS-001,ING-001"]));
    let ingest = text.find("Ingest (1 finding)").expect("ingest header");
    let dns_header = text.find("DNS (1 finding)").expect("dns header");
    assert!(ingest < dns_header, "{text}");
    assert!(text.contains("hosts/node-1/resolv.conf:3 — "), "{text}");

    let sarif = json(&run(&["analyze", b.arg(), "--format", "sarif", "--rules", "DNS-001"]));
    let res = &sarif["runs"][0]["results"][0];
    assert_eq!(res["ruleId"], "DNS-001");
    let all_locations: Vec<&Value> = res["locations"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(res["relatedLocations"].as_array().into_iter().flatten())
        .collect();
    assert!(
        all_locations.iter().any(|l| l["physicalLocation"]["artifactLocation"]["uri"] == "hosts/node-1/resolv.conf"
            && l["physicalLocation"]["region"]["startLine"] == 3),
        "{res:#}"
    );
}

#[test]
fn dns_bundle_reports_validate_and_threshold_applies() {
    let b = dns_bundle();
    let o = run(&["analyze", b.arg(), "--format", "json", "--rules", "DNS-001", "--fail-on", "high"]);
    // DNS-001 is medium: below a `high` threshold.
    assert_eq!(code(&o), 0);
    let v = json(&o);
    assert_eq!(v["findings"][0]["rule"], "DNS-001");
    assert!(schema_errors(&docs("schemas/report-v1.schema.json"), &v).is_empty());
    let s = json(&run(&["analyze", b.arg(), "--format", "sarif"]));
    let errors = schema_errors(&docs("schemas/sarif-schema-2.1.0.json"), &s);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn resolv_conf_within_limits_has_no_dns_finding() {
    let b = Bundle::new()
        .file("hosts/node-1/resolv.conf", "nameserver 10.96.0.10\nsearch cluster.local\noptions ndots:1\n");
    let o = run(&["analyze", b.arg(), "--format", "json", "--rules", "DNS-001,DNS-002", "--fail-on", "info"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert_eq!(json(&o)["summary"]["findings"], 0);
}

#[test]
fn documented_example_report_validates() {
    // Keeps docs/report-format.md and the schema in step.
    let md = fs::read_to_string(docs("report-format.md")).expect("docs/report-format.md");
    let start = md.find("```json\n").expect("a ```json example") + "```json\n".len();
    let len = md.get(start..).and_then(|rest| rest.find("```")).expect("end of the example");
    let example: Value = serde_json::from_str(md.get(start..start + len).expect("slice")).expect("example is JSON");
    assert_eq!(example["schema"], "netsleuth.report/v1");
    let errors = schema_errors(&docs("schemas/report-v1.schema.json"), &example);
    assert!(errors.is_empty(), "{errors:#?}");
}
