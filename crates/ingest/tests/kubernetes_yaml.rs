//! The Kubernetes parser on `-o yaml` input: multi-document streams, document pointers,
//! the same model as from JSON, and YAML bombs rejected fast.

use std::time::{Duration, Instant};

use netsleuth_ingest::{kubernetes, ParseContext, ParseError, Redactor, Source};
use netsleuth_model::kubernetes::{Cluster, PolicyType};
use netsleuth_model::Location;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/kubernetes/");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}{name}")).expect("fixture")
}

fn run(path: &str, text: &str) -> (Result<(), ParseError>, Cluster, ParseContext) {
    let mut cluster = Cluster::default();
    let mut ctx = ParseContext::new(Redactor::from_salt("fixture-salt"));
    let r = kubernetes::parse(&Source::new(path, text), &mut cluster, &mut ctx);
    (r, cluster, ctx)
}

fn parse_fixture(name: &str) -> (Cluster, ParseContext) {
    let (r, c, ctx) = run(&format!("kubernetes/{name}"), &fixture(name));
    r.expect("parses");
    (c, ctx)
}

fn ptr(loc: &Location) -> &str {
    match loc {
        Location::Json { pointer, .. } => pointer,
        other => panic!("not a JSON location: {other:?}"),
    }
}

#[test]
fn multi_document_pointers() {
    let (c, ctx) = parse_fixture("cluster.yaml");
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    // A comment before the first `---` is no document; the empty document 2 counts.
    assert_eq!(ptr(&c.namespaces[0].origin), "/0");
    assert_eq!(ptr(&c.namespaces[1].origin), "/1");
    assert_eq!(ptr(&c.namespaces[2].origin), "/4");
    let np: Vec<&str> = c.network_policies.iter().map(|p| ptr(&p.origin)).collect();
    assert_eq!(np, vec!["/3/items/0", "/3/items/1", "/3/items/2"]);
    let cm = c.config_maps.iter().find(|m| m.meta.name == "wg-gateway-config").unwrap();
    assert!(ctx.redactions.iter().any(|r| ptr(&r.location) == format!("{}/data/wg0.conf", ptr(&cm.origin))));
    assert_eq!(c.network_policies[1].policy_types, vec![PolicyType::Ingress, PolicyType::Egress]);
}

/// YAML and JSON of the same objects give the same model (origins aside) and the same
/// fingerprints under the same salt.
#[test]
fn yaml_equals_json() {
    let (y, yctx) = parse_fixture("cluster.yaml");
    let (j, jctx) = parse_fixture("cluster.json");
    let strip = |c: &Cluster| {
        let mut v = serde_json::to_value(c).unwrap();
        fn walk(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::Object(m) => {
                    m.remove("origin");
                    m.values_mut().for_each(walk);
                }
                serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
                _ => {}
            }
        }
        walk(&mut v);
        // Document order differs (policies come first in the YAML): sort each list.
        if let serde_json::Value::Object(m) = &mut v {
            for list in m.values_mut() {
                if let serde_json::Value::Array(a) = list {
                    a.sort_by_key(|x| x.to_string());
                }
            }
        }
        v
    };
    assert_eq!(strip(&y), strip(&j));
    let fps = |ctx: &ParseContext| {
        let mut f: Vec<String> = ctx.redactions.iter().map(|r| r.secret.fingerprint.clone()).collect();
        f.sort();
        f
    };
    assert_eq!(fps(&yctx), fps(&jctx));
    assert!(fps(&jctx).len() >= 12);
}

#[test]
fn single_document_has_no_index() {
    let (c, ctx) = parse_fixture("single-secret.yaml");
    assert_eq!(c.secrets.len(), 1);
    assert_eq!(ptr(&c.secrets[0].origin), "");
    let pointers: Vec<&str> = ctx.redactions.iter().map(|r| ptr(&r.location)).collect();
    assert!(pointers.contains(&"/data/ipsec-psk"), "{pointers:?}");
    let text = serde_json::to_string(&c).unwrap();
    assert!(!text.contains("X3XChcrNpPy9kONpPm9eVTLj136jybuW"));
    assert!(!text.contains("WDNYQ2hjck5wUHk5a09OcFBtOWVWVExqMTM2anlidVc="));
}

#[test]
fn json_content_in_a_yaml_file_and_yaml_flow_mapping() {
    let json = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"j"}}"#;
    let (r, c, _) = run("kubernetes/ns.yaml", json);
    r.unwrap();
    assert_eq!(c.namespaces[0].meta.name, "j");
    // Not JSON (unquoted keys) but valid YAML: a .yaml file falls back to YAML.
    let (r, c, _) = run("kubernetes/ns.yaml", "{apiVersion: v1, kind: Namespace, metadata: {name: y}}");
    r.unwrap();
    assert_eq!(c.namespaces[0].meta.name, "y");
    // In a .json file it is a JSON error with a position.
    let (r, _, _) = run("kubernetes/ns.json", "{apiVersion: v1}");
    let e = r.unwrap_err();
    assert_eq!((e.line, e.column), (Some(1), Some(2)));
    assert!(e.message.contains("invalid JSON"), "{e}");
}

#[test]
fn anchors_and_loose_scalars() {
    let text = "\
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: 2024
  labels: &common
    app: demo
    tier: y
    release: 7
data:
  enabled: true
  port: 8080
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: b
    labels: &shared
      app: shared
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: c
    labels: *shared
";
    let (r, c, ctx) = run("kubernetes/x.yaml", text);
    r.unwrap();
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    let a = &c.config_maps[0];
    assert_eq!(a.meta.name, "2024");
    // YAML 1.1 booleans (`y`) are text, as Kubernetes reads string fields.
    assert_eq!(a.meta.labels.get("tier").map(String::as_str), Some("y"));
    assert_eq!(a.meta.labels.get("release").map(String::as_str), Some("7"));
    assert_eq!(a.data.get("enabled").map(String::as_str), Some("true"));
    assert_eq!(a.data.get("port").map(String::as_str), Some("8080"));
    assert_eq!(c.config_maps[2].meta.labels.get("app").map(String::as_str), Some("shared"));
    assert_eq!(ptr(&c.config_maps[2].origin), "/1/items/1");
}

#[test]
fn a_float_label_is_a_warning_not_a_silent_change() {
    let text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n\n  labels:\n    version: 1.10\n";
    let (r, c, ctx) = run("kubernetes/f.yaml", text);
    r.unwrap();
    assert_eq!(c.namespaces[0].meta.labels.get("version").map(String::as_str), Some("1.1"));
    assert_eq!(ctx.issues.len(), 1);
    assert_eq!(ptr(&ctx.issues[0].location), "/metadata/labels/version");
    assert!(ctx.issues[0].message.contains("quote it"), "{}", ctx.issues[0].message);
}

#[test]
fn anchors_do_not_cross_documents() {
    let text = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  labels: &l {x: y}\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: b\n  labels: *l\n";
    let (r, _, _) = run("kubernetes/a.yaml", text);
    let e = r.unwrap_err();
    assert_eq!(e.line, Some(12), "{e}");
}

#[test]
fn billion_laughs_is_rejected_fast() {
    let text = fixture("bad/bomb.yaml");
    let start = Instant::now();
    let (r, c, _) = run("kubernetes/bad/bomb.yaml", &text);
    let took = start.elapsed();
    let e = r.unwrap_err();
    assert!(took < Duration::from_millis(500), "took {took:?}");
    assert_eq!(e.path, "kubernetes/bad/bomb.yaml");
    assert!(e.line.is_some_and(|l| (6..=15).contains(&l)), "{e}");
    assert!(e.message.contains("invalid YAML") && e.message.contains("YAML bomb"), "{e}");
    assert!(c.config_maps.is_empty());
}

/// Legitimate anchors, reused many times, stay within the budget.
#[test]
fn reused_anchors_are_fine() {
    let mut text = String::from("apiVersion: v1\nkind: List\nitems:\n- &base\n  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: base\n  data: &data\n");
    for k in 0..40 {
        text.push_str(&format!("    key{k}: \"{}\"\n", "x".repeat(60)));
    }
    for i in 0..50 {
        text.push_str(&format!("- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: copy{i}\n  data: *data\n"));
    }
    let (r, c, ctx) = run("kubernetes/anchors.yaml", &text);
    r.unwrap();
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    assert_eq!(c.config_maps.len(), 51);
    assert_eq!(c.config_maps[50].data.len(), 40);
}

#[test]
fn deep_nesting_is_rejected_without_overflow() {
    let text = fixture("bad/deep.yaml");
    let start = Instant::now();
    // A thread with a small stack: rejection must not depend on a big stack.
    let handle = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || run("kubernetes/bad/deep.yaml", &text).0)
        .unwrap();
    let e = handle.join().expect("no stack overflow").unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(e.line, Some(1));
    assert!(e.message.contains("invalid YAML"), "{e}");
}

#[test]
fn not_kubernetes_yaml() {
    let (r, c, _) = run("kubernetes/bad/not-k8s.yaml", &fixture("bad/not-k8s.yaml"));
    let e = r.unwrap_err();
    assert_eq!(e.line, Some(1));
    assert!(e.message.contains("not Kubernetes objects"), "{e}");
    assert!(c.is_empty());
}

#[test]
fn yaml_syntax_error_has_file_line_and_column() {
    let text =
        "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ok\n---\napiVersion: v1\nkind: [Pod\nmetadata: {}\n";
    let (r, c, _) = run("kubernetes/broken.yaml", text);
    let e = r.unwrap_err();
    assert_eq!(e.path, "kubernetes/broken.yaml");
    assert!(e.line.is_some_and(|l| l >= 8), "line in the whole file, not the document: {e}");
    assert!(e.column.is_some());
    assert!(c.namespaces.is_empty(), "an invalid file adds nothing");
}

#[test]
fn empty_and_comment_only_files() {
    for text in ["", "\n\n", "# nothing here\n", "---\n", "---\n...\n"] {
        let (r, c, ctx) = run("kubernetes/empty.yaml", text);
        r.unwrap();
        assert!(c.is_empty());
        assert_eq!(ctx.issues.len(), 1, "one warning: no objects ({text:?})");
    }
}

/// Errors found at the end of the input (found by fuzzing, docs/FUZZING.md) name a line the
/// file has, not the one after it.
#[test]
fn errors_at_end_of_input_stay_inside_the_file() {
    for (path, text, want_line) in [
        ("kubernetes/x.yaml", "a:\ne", 2),
        ("kubernetes/x.yaml", "a:\ne\n", 2),
        ("kubernetes/x.yaml", "kind: Pod\nmetadata:\n  name: x\nb\n", 4),
        ("kubernetes/x.json", "- \"", 1),
        ("kubernetes/x.yaml", "a: 1\n---\nb: [1,\n", 3),
    ] {
        let (r, _, _) = run(path, text);
        let e = r.unwrap_err();
        assert_eq!(e.line, Some(want_line), "{text:?}: {e}");
        assert!(e.column.is_some_and(|c| c >= 1), "{text:?}: {e}");
    }
}
