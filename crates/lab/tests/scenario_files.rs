//! Scenario files: the shipped ones parse, and mistakes are reported with file, line and
//! column (no root needed).

use netsleuth_lab::scenario::{self, ScenarioErrors};
use netsleuth_lab::{faults, FaultRequest};

const GOOD: &str = "\
name: tiny
hosts:
  a: {role: router}
  b: {}
links:
  - veth:
      a: {host: a, name: eth0, addresses: [10.1.0.1/24]}
      b: {host: b, name: eth0, addresses: [10.1.0.2/24]}
";

fn errors(text: &str) -> ScenarioErrors {
    match scenario::parse(text, "t.yaml") {
        Ok(_) => panic!("must be rejected:\n{text}"),
        Err(e) => e,
    }
}

/// The single error's (line, message).
fn one(text: &str) -> (Option<u64>, String) {
    let e = errors(text);
    assert_eq!(e.errors.len(), 1, "{e}");
    (e.errors[0].line, e.to_string())
}

#[test]
fn shipped_scenarios_parse_and_match_the_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab/scenarios");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("lab/scenarios exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".yaml").map(str::to_string))
        .collect();
    files.sort();
    let mut builtin: Vec<String> = scenario::builtin_names().into_iter().map(str::to_string).collect();
    builtin.sort();
    assert_eq!(files, builtin, "every file in lab/scenarios is shipped, and only those");
    for name in &files {
        let path = dir.join(format!("{name}.yaml"));
        let s = scenario::load(path.to_str().expect("utf-8 path")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.scenario.name(), name, "the name inside matches the file name");
        let p = s.scenario.path.as_ref().expect("a scenario defines the path tests use");
        assert!(s.scenario.host(&p.value.source).is_some());
        // Every fault the scenario places has its parameters from it (a scenario places only
        // the faults that make sense in it: no WireGuard faults in an IPsec lab).
        for f in faults::catalog().iter().filter(|f| s.scenario.faults.contains_key(f.name)) {
            let r = faults::resolve(&FaultRequest::named(f.name), &s.scenario);
            assert!(r.is_ok(), "{name}: {}: {r:?}", f.name);
        }
    }
    // ... and every fault of the catalog is placed by at least one shipped scenario.
    for f in faults::catalog() {
        let placed = files
            .iter()
            .any(|n| scenario::builtin(n).and_then(Result::ok).is_some_and(|s| s.scenario.faults.contains_key(f.name)));
        assert!(placed, "fault {} is placed by no shipped scenario", f.name);
    }
}

#[test]
fn k8s_wireguard_site_has_the_documented_shape() {
    let s = scenario::builtin("k8s-wireguard-site").expect("shipped").expect("valid");
    let sc = &s.scenario;
    assert_eq!(sc.hosts.len(), 9);
    let p = &sc.path.as_ref().expect("path").value;
    assert_eq!((p.source.as_str(), p.target.to_string(), p.mtu), ("pod-a", "10.20.1.10:5000".to_string(), Some(1420)));
    let wgs = sc.wireguard_services();
    assert_eq!(wgs.iter().map(|(h, w)| (*h, w.name.as_str())).collect::<Vec<_>>(), [("gw", "wg0"), ("site", "wg0")]);
    assert_eq!(sc.fault_defaults("udp-block").get("port").map(String::as_str), Some("51820"));
    assert_eq!(sc.fault_defaults("mtu-mismatch").get("mtu").map(String::as_str), Some("1500"));
}

#[test]
fn unknown_fields_are_errors_with_their_line() {
    let (line, msg) = one(&GOOD.replace("  b: {}", "  b: {rolle: router}"));
    assert_eq!(line, Some(4), "{msg}");
    assert!(msg.starts_with("t.yaml:4:") && msg.contains("rolle"), "{msg}");
    let (line, msg) = one(&format!("{GOOD}extra: 1\n"));
    assert_eq!(line, Some(9), "{msg}");
    let (line, msg) = one(&GOOD.replace("- veth:", "- vth:"));
    assert_eq!(line, Some(6), "{msg}");
    assert!(msg.contains("vth"), "{msg}");
}

#[test]
fn yaml_mistakes_are_errors_with_their_line() {
    let (line, msg) = one(&GOOD.replace("  b: {}", "  b: {}\n  a: {}"));
    assert!(msg.to_lowercase().contains("duplicate"), "{msg}");
    assert_eq!(line, Some(5), "{msg}");
    let (line, msg) = one("name: x\nhosts:\n  a: [\n");
    assert!(line.is_some(), "{msg}");
    let (_, msg) = one(&GOOD.replace("10.1.0.1/24", "10.1.0.1/99"));
    assert!(msg.contains("t.yaml:7"), "{msg}");
}

#[test]
fn addresses_outside_the_lab_ranges_are_refused() {
    let (line, msg) = one(&GOOD.replace("10.1.0.1/24", "8.8.8.8/24"));
    assert_eq!(line, Some(6), "{msg}");
    assert!(msg.contains("8.8.8.8/24") && msg.contains("outside the lab ranges"), "{msg}");
    let text = format!("{GOOD}    \n").replace("  b: {}", "  b:\n    routes: [{to: 1.0.0.0/8, via: 10.1.0.1}]");
    let (_, msg) = one(&text);
    assert!(msg.contains("1.0.0.0/8"), "{msg}");
    // A default route inside a lab namespace is fine.
    let ok = GOOD.replace("  b: {}", "  b:\n    routes: [{to: default, via: 10.1.0.1}]");
    assert!(scenario::parse(&ok, "t.yaml").is_ok());
    for net in ["172.16.0.0/12", "198.51.100.7/24", "203.0.113.9/28", "10.200.0.1/16"] {
        assert!(scenario::parse(&GOOD.replace("10.1.0.1/24", net), "t.yaml").is_ok(), "{net}");
    }
    for net in ["172.32.0.1/16", "192.168.1.1/24", "198.51.101.1/24", "fd00::1/64"] {
        assert!(scenario::parse(&GOOD.replace("10.1.0.1/24", net), "t.yaml").is_err(), "{net}");
    }
}

#[test]
fn references_and_names_are_checked() {
    let e = errors(&GOOD.replace("{host: b, name: eth0, ", "{host: c, name: this-is-too-long-x, "));
    assert!(e.to_string().contains("unknown host \"c\""), "{e}");
    let e = errors(&GOOD.replace("{host: b, name: eth0, ", "{host: b, name: this-is-too-long-x, "));
    assert!(e.to_string().contains("1-15"), "{e}");
    let e = errors(&GOOD.replace("{host: b, name: eth0, ", "{host: a, name: eth0, "));
    assert!(e.to_string().contains("defined twice"), "{e}");
    let e = errors(&GOOD.replace("{host: b, name: eth0, ", "{host: b, name: eth0, master: br9, "));
    assert!(e.to_string().contains("not a bridge"), "{e}");
    let e = errors(&GOOD.replace("  b: {}", "  b:\n    sysctls: {kernel.panic: 1}"));
    assert!(e.to_string().contains("only net.*"), "{e}");
    let e = errors(&GOOD.replace("  b: {}", "  b:\n    routes: [{to: 10.2.0.0/16, dev: wg9}]"));
    assert!(e.to_string().contains("t.yaml:5:") && e.to_string().contains("wg9"), "{e}");
    let e = errors(&GOOD.replace("  b: {}", "  b:\n    nftables: [{table: inet nsl_fault_x, rules: ''}]"));
    assert!(e.to_string().contains("faults'"), "{e}");
    let e = errors(&GOOD.replace("  b: {}", "  B: {}"));
    assert!(e.to_string().contains("host name \"B\""), "{e}");
    let e = errors(&format!("{GOOD}faults:\n  udp-block: {{prot: 1}}\n"));
    assert!(e.to_string().contains("t.yaml:10:") && e.to_string().contains("no parameter \"prot\""), "{e}");
    let e = errors(&format!("{GOOD}faults:\n  cosmic-rays: {{}}\n"));
    assert!(e.to_string().contains("unknown fault"), "{e}");
    // Several problems are all reported.
    let e = errors(&GOOD.replace("10.1.0.1/24", "8.8.8.8/24").replace("10.1.0.2/24", "9.9.9.9/24"));
    assert_eq!(e.errors.len(), 2, "{e}");
}

#[test]
fn wireguard_peers_must_resolve() {
    let wg = |peer: &str| {
        GOOD.replace(
            "  b: {}",
            &format!(
                "  b:\n    services:\n      - wireguard:\n          name: wg0\n          listen_port: 51820\n          \
                 address: 10.99.0.1/30\n          peers: [{{host: {peer}, allowed_ips: [10.99.0.2/32], endpoint: 10.1.0.1}}]"
            ),
        )
    };
    let e = errors(&wg("a"));
    assert!(e.to_string().contains("0 WireGuard interfaces"), "{e}");
    let e = errors(&wg("b"));
    assert!(e.to_string().contains("its own peer"), "{e}");
    let e = errors(&wg("zz"));
    assert!(e.to_string().contains("unknown host"), "{e}");
    assert!(errors(&wg("a").replace("endpoint: 10.1.0.1", "endpoint: gw.example")).to_string().contains("endpoint"));
}

#[test]
fn files_are_found_by_path_and_missing_ones_named() {
    let err = scenario::load("/nonexistent/scenario.yaml").expect_err("no such file");
    assert!(err.to_string().contains("k8s-wireguard-site"), "{err}");
    let dir = std::env::temp_dir().join(format!("nsl-scenario-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let f = dir.join("bad.yaml");
    std::fs::write(&f, GOOD.replace("  b: {}", "  b: {oops: 1}")).expect("write");
    let err = scenario::load(f.to_str().expect("utf-8")).expect_err("bad");
    assert!(err.to_string().starts_with(&format!("{}:4:", f.display())), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
