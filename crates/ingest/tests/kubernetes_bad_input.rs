//! The Kubernetes parser on bad input: whole-file errors carry path, line and column;
//! bad items are warnings and the rest of the file is kept; nothing panics or hangs.

use std::time::{Duration, Instant};

use netsleuth_ingest::{kubernetes, read_bundle, BundleOptions, ParseContext, ParseError, Redactor, Source};
use netsleuth_model::kubernetes::Cluster;
use netsleuth_model::Location;
use proptest::prelude::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/kubernetes/");

fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{name}")).expect("fixture")
}

fn fixture(name: &str) -> String {
    String::from_utf8(fixture_bytes(name)).expect("UTF-8 fixture")
}

fn run(path: &str, text: &str) -> (Result<(), ParseError>, Cluster, ParseContext) {
    let mut cluster = Cluster::default();
    let mut ctx = ParseContext::new(Redactor::from_salt("fixture-salt"));
    let r = kubernetes::parse(&Source::new(path, text), &mut cluster, &mut ctx);
    (r, cluster, ctx)
}

fn ptr(loc: &Location) -> &str {
    match loc {
        Location::Json { pointer, .. } => pointer,
        other => panic!("not a JSON location: {other:?}"),
    }
}

#[test]
fn truncated_json_is_an_error_at_the_end() {
    let text = fixture("bad/truncated.json");
    let (r, c, _) = run("kubernetes/bad/truncated.json", &text);
    let e = r.unwrap_err();
    assert_eq!(e.path, "kubernetes/bad/truncated.json");
    assert_eq!(e.line, Some(text.lines().count()), "{e}");
    assert!(e.column.is_some());
    assert!(e.message.starts_with("invalid JSON: EOF"), "{e}");
    assert!(c.is_empty(), "a broken list adds nothing");
}

/// Deep nesting is valid JSON: it is skipped over (no recursion, no stack overflow) and
/// what is not an object becomes a warning.
#[test]
fn deep_json_is_skipped_quickly() {
    let text = fixture("bad/deep.json");
    let start = Instant::now();
    let (r, c, ctx) = run("kubernetes/bad/deep.json", &text);
    r.unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(c.is_empty());
    assert_eq!(ptr(&ctx.issues[0].location), "/0");
    assert!(ctx.issues[0].message.contains("is an array"));

    let deep = format!(
        r#"{{"kind":"List","items":[{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"p"}},"spec":{{"x":{}{}}}}},
        {{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"after"}}}}]}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let handle = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || {
            let (r, c, _) = run("k.json", &deep);
            r.map(|_| (c.pods.len(), c.namespaces.len()))
        })
        .unwrap();
    assert_eq!(handle.join().expect("no stack overflow").unwrap(), (1, 1), "an unknown deep field is skipped");
}

#[test]
fn binary_garbage() {
    let bytes = fixture_bytes("bad/garbage.json");
    assert!(std::str::from_utf8(&bytes).is_err(), "the fixture is not text");
    let text = String::from_utf8_lossy(&bytes);
    let (r, c, _) = run("kubernetes/bad/garbage.json", &text);
    let e = r.unwrap_err();
    assert!(e.line.is_some(), "{e}");
    assert!(c.is_empty());
}

#[test]
fn unknown_kinds_are_counted() {
    let (r, c, ctx) = run("kubernetes/bad/unknown-kinds.json", &fixture("bad/unknown-kinds.json"));
    r.unwrap();
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    let skipped: Vec<(&str, u64)> = c.skipped_kinds.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(skipped, vec![("CiliumNetworkPolicy", 1), ("Widget", 2)]);
    assert_eq!(c.config_maps.len(), 1);
    assert_eq!(ptr(&c.config_maps[0].origin), "/items/3");
}

#[test]
fn wrong_field_types_fail_only_their_item() {
    let text = fixture("bad/wrong-types.json");
    let (r, c, ctx) = run("kubernetes/bad/wrong-types.json", &text);
    r.unwrap();
    let pods: Vec<&str> = c.pods.iter().map(|p| p.meta.name.as_str()).collect();
    assert_eq!(pods, vec!["good", "bad-ip"]);
    assert_eq!(c.pods[0].spec.named_port("http"), Some((8080, "TCP")));
    assert!(c.pods[1].pod_ips.is_empty(), "the bad IP is dropped, the pod kept");
    assert!(c.network_policies.is_empty() && c.services.is_empty() && c.workloads.is_empty());
    assert!(c.config_maps.is_empty());
    assert_eq!(c.secrets.len(), 1);
    assert_eq!(c.secrets[0].keys.len(), 2, "odd Secret values are still fingerprinted");

    let issue = |p: &str| {
        ctx.issues.iter().find(|i| ptr(&i.location) == p).unwrap_or_else(|| panic!("no issue at {p}: {:?}", ctx.issues))
    };
    // The position is in the whole file: line of `"containerPort": "abc"`.
    let port_line = text.lines().position(|l| l.contains("\"containerPort\": \"abc\"")).unwrap() + 1;
    let m = &issue("/items/0").message;
    assert!(m.starts_with(&format!("Pod not read: line {port_line}, column ")), "{m}");
    assert!(m.contains("expected u16"), "{m}");
    assert!(issue("/items/2").message.contains("/spec/ingress/0/from/0/ipBlock/cidr: \"10.0.0.0/33\" is not a CIDR"));
    assert!(issue("/items/3").message.contains("expected u16"));
    assert!(issue("/items/4").message.contains("expected i32"));
    assert!(issue("/items/5").message.contains("expected a map"));
    assert!(issue("/items/6/data/n").message.contains("not a string"));
    assert!(issue("/items/6/data/notb64").message.contains("not valid base64"));
    assert!(issue("/items/7").message.contains("a string, not a Kubernetes object"));
    assert!(issue("/items/8").message.contains("without a kind"));
    assert!(issue("/items/10/status/podIP").message.contains("10.244.0.300"));
    // A secret typed into the wrong field is not quoted back in the warning.
    let env = &issue("/items/9").message;
    assert!(env.contains("a string of 42 characters"), "{env}");
    let all = serde_json::to_string(&ctx.issues).unwrap();
    assert!(!all.contains("X3XChcrNpPy9kONpPm9eVTLj136jybuW"));
    assert!(!all.contains("%%%not-base64%%%"));
    assert_eq!(ctx.issues.len(), 11, "{:#?}", ctx.issues);
}

#[test]
fn kind_inferred_only_from_typed_lists() {
    let text = r#"{"kind":"List","apiVersion":"v1","items":[{"metadata":{"name":"x"}}]}"#;
    let (r, c, ctx) = run("k.json", text);
    r.unwrap();
    assert!(c.is_empty());
    assert_eq!(ptr(&ctx.issues[0].location), "/items/0");
    let text = r#"{"kind":"NamespaceList","apiVersion":"v1","items":[{"metadata":{"name":"x"}}]}"#;
    let (r, c, _) = run("k.json", text);
    r.unwrap();
    assert_eq!(c.namespaces[0].meta.name, "x");
}

#[test]
fn bare_arrays_and_nested_lists() {
    let text = r#"[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}},
        {"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"b"}}]}]"#;
    let (r, c, _) = run("k.json", text);
    r.unwrap();
    let got: Vec<(&str, &str)> = c.namespaces.iter().map(|n| (n.meta.name.as_str(), ptr(&n.origin))).collect();
    assert_eq!(got, vec![("a", "/0"), ("b", "/1/items/0")]);
}

/// The bundle reader turns each bad file into an ingest issue and keeps the good ones.
#[test]
fn bundle_with_good_and_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("kubernetes");
    std::fs::create_dir(&k).unwrap();
    for (name, target) in [
        ("cluster.json", "cluster.json"),
        ("bad/truncated.json", "truncated.json"),
        ("bad/garbage.json", "garbage.json"),
        ("bad/bomb.yaml", "bomb.yaml"),
    ] {
        std::fs::write(k.join(target), fixture_bytes(name)).unwrap();
    }
    let start = Instant::now();
    let net = read_bundle(dir.path(), &BundleOptions { salt: Some("s".into()), ..BundleOptions::default() }).unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(net.kubernetes.pods.len(), 4);
    let files: Vec<String> = net.ingest_issues.iter().filter_map(|i| i.location.path().map(str::to_string)).collect();
    for f in ["kubernetes/truncated.json", "kubernetes/garbage.json", "kubernetes/bomb.yaml"] {
        assert!(files.iter().any(|x| x == f), "{f} missing from {files:?}");
    }
    let text = serde_json::to_string(&net).unwrap();
    assert!(!text.contains("6IrYf/MWPaSGfmM8fpmu7yxeRK1lz4DlFuBxbjz9KH8="));
    assert!(net.redactions.len() >= 12);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = run("k.yaml", &text);
        let _ = run("k.json", &text);
    }

    #[test]
    fn json_and_yaml_shaped_strings_never_panic(text in r#"[\[\]{}:,"'\-\n &*!|>#a-z0-9 ]{0,200}"#) {
        let _ = run("k.yaml", &text);
        let _ = run("k.json", &text);
    }

    #[test]
    fn damaged_fixtures_never_panic(cut in 0usize..83_000, pos in 0usize..83_000, byte in any::<u8>()) {
        let text = fixture("cluster.json");
        let mut bytes = text.into_bytes();
        if let Some(b) = bytes.get_mut(pos) {
            *b = byte;
        }
        bytes.truncate(cut.max(1));
        let damaged = String::from_utf8_lossy(&bytes);
        let (_, c, ctx) = run("k.json", &damaged);
        // Whatever survives, Secret data (here only ever base64) does not, even when the
        // damage hits the Secret's kind or the name of its last-applied annotation.
        let model = serde_json::to_string(&c).unwrap() + &serde_json::to_string(&ctx.issues).unwrap();
        prop_assert!(!model.contains("WUxvQmlaQ1BuY0tndmZ0UjhpODBybHVsSXJqaGRBOHZreHVqaFl3WXhIbz0="));
    }

    #[test]
    fn damaged_yaml_never_panics(cut in 0usize..38_000, pos in 0usize..38_000, byte in proptest::sample::select(b"-: [{&*|>\n ".to_vec())) {
        let text = fixture("cluster.yaml");
        let mut bytes = text.into_bytes();
        if let Some(b) = bytes.get_mut(pos) {
            *b = byte;
        }
        bytes.truncate(cut.max(1));
        let damaged = String::from_utf8_lossy(&bytes);
        let _ = run("k.yaml", &damaged);
    }
}
