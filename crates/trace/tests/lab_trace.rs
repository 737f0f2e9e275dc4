//! Lab → collect → read → trace: for every fault of a scenario that configuration reveals
//! right after inject and that breaks the scenario's path, the trace from the path's source
//! to its target must stop at the component the fault broke; the healthy lab delivers.
//! Needs root, iproute2, nftables, wireguard-go (and strongSwan for ipsec-hybrid); skips
//! otherwise (fails under NETSLEUTH_LAB_REQUIRED=1). Lab ids are random (`nsl-xxxxxx`).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use netsleuth_ingest::{read_bundle, BundleOptions, Redactor};
use netsleuth_lab::faults;
use netsleuth_lab::{scenario, FaultRequest, Lab, StaticVisibility, UpOptions};
use netsleuth_model::Network;
use netsleuth_probe::collect::{collect_bundle, CollectOptions};
use netsleuth_trace::path::{Action, Destination, DispositionKind, Endpoint, Trace, TraceOptions, Tracer};

static SERIAL: Mutex<()> = Mutex::new(());

fn say(s: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "[lab_trace] {s}");
}

/// The echo program the lab runs: `netsleuth-lab-echo` next to the test's deps folder
/// (built by `cargo build -p netsleuth-lab`), or NETSLEUTH_LAB_ECHO.
fn echo_program() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NETSLEUTH_LAB_ECHO") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?;
    ["netsleuth-lab-echo", "netsleuth"].iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

fn echo_command(p: PathBuf) -> Vec<String> {
    let s = p.to_string_lossy().into_owned();
    if p.file_name().is_some_and(|n| n == "netsleuth") {
        vec![s, "lab".into(), "echo".into()]
    } else {
        vec![s]
    }
}

/// Whether the test can run; says why not (and fails when NETSLEUTH_LAB_REQUIRED=1).
fn can_run(test: &str, programs: &[&str]) -> Option<Vec<String>> {
    let required = std::env::var_os("NETSLEUTH_LAB_REQUIRED").is_some_and(|v| v == "1");
    let mut why = None;
    if !netsleuth_lab::is_root() {
        why = Some("not root".to_string());
    }
    let in_path = |p: &str| {
        std::path::Path::new(p).is_file()
            || std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
    };
    for p in ["ip", "nft", "wg", "wireguard-go", "bridge", "ping", "ss", "sysctl"].iter().chain(programs) {
        if why.is_none() && !in_path(p) {
            why = Some(format!("{p} is not installed"));
        }
    }
    let echo = echo_program();
    if why.is_none() && echo.is_none() {
        why = Some("netsleuth-lab-echo not built (cargo build -p netsleuth-lab) and NETSLEUTH_LAB_ECHO unset".into());
    }
    match (why, echo) {
        (None, Some(e)) => Some(echo_command(e)),
        (why, _) => {
            let why = why.unwrap_or_default();
            assert!(!required, "{test}: cannot run but NETSLEUTH_LAB_REQUIRED=1: {why}");
            say(&format!("SKIPPED {test}: {why}"));
            None
        }
    }
}

fn collect(lab: &Lab) -> (tempfile::TempDir, Network) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let out = dir.path().join("bundle");
    let opts = CollectOptions { timeout: Duration::from_secs(10), ..CollectOptions::default() };
    collect_bundle(&lab.collect_targets(), &out, false, &Redactor::random(), &opts)
        .unwrap_or_else(|e| panic!("collect: {e}"));
    let net = read_bundle(&out, &BundleOptions::default()).unwrap_or_else(|e| panic!("read_bundle: {e}"));
    (dir, net)
}

fn explain(t: &Trace) -> String {
    let hops: String = t
        .hops
        .iter()
        .map(|h| format!("\n    {} {} {} {}", h.layer, h.component, h.action.as_str(), h.reason))
        .collect();
    format!(
        "{} → {}{hops}\n    => {} at {}: {}\n    assumptions: {:?}\n    missing: {:?}",
        t.packet.src,
        t.packet.dst,
        t.disposition.kind,
        t.disposition.at,
        t.disposition.reason,
        t.assumptions,
        t.missing
    )
}

/// What a fault's trace must show: disposition and the start of the deciding component.
struct Expect {
    fault: &'static str,
    kind: DispositionKind,
    /// Accepted prefixes of the last hop's component (host names are the scenario's).
    at: &'static [&'static str],
    /// Destination when not the scenario path's target (e.g. its UDP target).
    to: Option<&'static str>,
}

/// `expects`: every statically visible fault; `underlay`: faults the analysis rules cannot
/// see (their configuration is on a router in between) but a trace of the tunnel's outer
/// packets does.
fn check(
    scenario_name: &str,
    extra_programs: &[&str],
    expects: &[Expect],
    underlay: &[Expect],
    not_traced: &[(&str, &str)],
) {
    let test = format!("lab_trace {scenario_name}");
    let Some(echo) = can_run(&test, extra_programs) else { return };
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let sc = scenario::load(scenario_name).unwrap_or_else(|e| panic!("{e}"));
    let lab = Lab::up(&sc, &UpOptions::new(echo)).unwrap_or_else(|e| panic!("lab up: {e}"));
    let mut lab = lab;
    say(&format!("lab {} ({scenario_name}) up", lab.id()));
    let path =
        lab.scenario().path.as_ref().map(|p| p.value.clone()).unwrap_or_else(|| panic!("{scenario_name} has no path"));
    let from: Endpoint = format!("host:{}", path.source).parse().unwrap_or_else(|e| panic!("{e}"));
    let to: Destination = format!("{}", path.target).parse().unwrap_or_else(|e| panic!("{e}"));
    let run_to = |net: &Network, to: &Destination| {
        Tracer::new(net).trace(&from, to, &TraceOptions::default()).unwrap_or_else(|e| panic!("trace: {e}"))
    };
    let run = |net: &Network| run_to(net, &to);

    let mut errors = Vec::new();
    let (_d, healthy) = collect(&lab);
    let t = run(&healthy);
    say(&format!("healthy: {}", explain(&t)));
    if !t.disposition.kind.is_success() {
        errors.push(format!("healthy lab: expected delivered or exits-network:{}", explain(&t)));
    }

    // Every statically visible fault of the scenario must be either expected or explicitly
    // listed as not visible to a trace (with the reason).
    for spec in faults::catalog() {
        if !lab.scenario().faults.contains_key(spec.name) || spec.static_visibility != StaticVisibility::Immediate {
            continue;
        }
        if let Some((_, why)) = not_traced.iter().find(|(n, _)| *n == spec.name) {
            say(&format!("{}: not checked: {why}", spec.name));
            continue;
        }
        if !expects.iter().any(|e| e.fault == spec.name) {
            errors.push(format!("{}: statically visible but no trace expectation", spec.name));
        }
    }
    for exp in expects.iter().chain(underlay) {
        if let Err(e) = lab.inject(&FaultRequest::named(exp.fault)) {
            errors.push(format!("{}: inject: {e}", exp.fault));
            continue;
        }
        let (_d, net) = collect(&lab);
        let t = match exp.to {
            Some(d) => run_to(&net, &d.parse().unwrap_or_else(|e| panic!("{d}: {e}"))),
            None => run(&net),
        };
        say(&format!("{}: {}", exp.fault, explain(&t)));
        let last = t.hops.last();
        let comp_ok =
            last.is_some_and(|h| exp.at.iter().any(|p| h.component.starts_with(p)) && h.action != Action::Forward);
        if t.disposition.kind != exp.kind || !comp_ok {
            errors.push(format!("{}: expected {} at {:?}:{}", exp.fault, exp.kind, exp.at, explain(&t)));
        }
        let cleared = lab.clear(Some(exp.fault)).unwrap_or_else(|e| panic!("{}: clear: {e}", exp.fault));
        assert_eq!(cleared, [exp.fault]);
    }
    let (_d, after) = collect(&lab);
    let t = run(&after);
    if !t.disposition.kind.is_success() {
        errors.push(format!("after clearing every fault: {}", explain(&t)));
    }
    lab.down().unwrap_or_else(|e| panic!("lab down: {e}"));
    assert!(errors.is_empty(), "{scenario_name}: {} problem(s):\n{}", errors.len(), errors.join("\n"));
}

#[test]
fn k8s_wireguard_site_faults_stop_the_trace_where_they_strike() {
    check(
        "k8s-wireguard-site",
        &[],
        &[
            Expect {
                to: None,
                fault: "ip-forward-off",
                kind: DispositionKind::Dropped,
                at: &["host/gw sysctl net.ipv4.ip_forward"],
            },
            Expect {
                to: None,
                fault: "route-missing",
                kind: DispositionKind::NoRoute,
                at: &["host/gw route table", "host/inet route table"],
            },
            Expect {
                to: None,
                fault: "nft-egress-drop",
                kind: DispositionKind::Dropped,
                at: &["host/node-1 nftables"],
            },
            Expect { to: None, fault: "wg-allowedips-wrong", kind: DispositionKind::Dropped, at: &["host/gw wg "] },
            Expect { to: None, fault: "wg-allowedips-overlap", kind: DispositionKind::Dropped, at: &["host/gw wg "] },
            Expect {
                to: None,
                fault: "wg-key-mismatch",
                kind: DispositionKind::Dropped,
                at: &["host/gw wg ", "host/site wg "],
            },
            Expect {
                to: None,
                fault: "rp-filter-strict",
                kind: DispositionKind::Dropped,
                at: &["host/site rp_filter"],
            },
            // The pod's eth0 at 1500 against its 1450 veth peer: a full-size UDP datagram
            // dies silently on node-1's veth; TCP passes, because the gateway clamps the MSS
            // of every connection to 1380 (segments of at most 1420 bytes).
            Expect {
                to: Some("10.20.1.10:5001/udp"),
                fault: "mtu-mismatch",
                kind: DispositionKind::Dropped,
                at: &["host/node-1 iface veth-a"],
            },
            Expect { to: None, fault: "mtu-mismatch", kind: DispositionKind::Delivered, at: &["host/app"] },
        ],
        &[Expect { to: None, fault: "udp-block", kind: DispositionKind::Dropped, at: &["host/inet nftables"] }],
        &[],
    );
}

#[test]
fn ipsec_hybrid_faults_stop_the_trace_where_they_strike() {
    check(
        "ipsec-hybrid",
        &[netsleuth_lab::strongswan::CHARON, "swanctl"],
        &[
            Expect {
                to: None,
                fault: "ip-forward-off",
                kind: DispositionKind::Dropped,
                at: &["host/cloud-gw sysctl net.ipv4.ip_forward"],
            },
            Expect {
                to: None,
                fault: "ike-proposal-mismatch",
                kind: DispositionKind::Dropped,
                at: &["host/onprem-gw ipsec", "host/cloud-gw ipsec"],
            },
            Expect {
                to: None,
                fault: "ipsec-psk-mismatch",
                kind: DispositionKind::Dropped,
                at: &["host/onprem-gw ipsec", "host/cloud-gw ipsec"],
            },
            Expect {
                to: None,
                fault: "ipsec-ts-not-mirrored",
                kind: DispositionKind::Dropped,
                at: &["host/onprem-gw ipsec", "host/cloud-gw ipsec"],
            },
        ],
        &[Expect { to: None, fault: "ike-udp-block", kind: DispositionKind::Dropped, at: &["host/inet nftables"] }],
        &[],
    );
}

/// Pods on one node's bridge: the node's bridge-family filter decides, and the DNS egress
/// drop (a fault no static rule sees) stops a trace to the resolver at the node.
#[test]
fn dns_and_policy_bridge_filter_and_dns_egress_drop() {
    let test = "lab_trace dns-and-policy";
    let Some(echo) = can_run(test, &["dnsmasq"]) else { return };
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let sc = scenario::load("dns-and-policy").unwrap_or_else(|e| panic!("{e}"));
    let mut lab = Lab::up(&sc, &UpOptions::new(echo)).unwrap_or_else(|e| panic!("lab up: {e}"));
    say(&format!("lab {} (dns-and-policy) up", lab.id()));
    let trace = |net: &Network, to: &str| {
        Tracer::new(net)
            .trace(
                &"host:pod-a".parse().unwrap_or_else(|e| panic!("{e}")),
                &to.parse().unwrap_or_else(|e| panic!("{e}")),
                &TraceOptions::default(),
            )
            .unwrap_or_else(|e| panic!("trace: {e}"))
    };
    let mut errors = Vec::new();
    let mut expect = |what: &str, t: &Trace, kind: DispositionKind, at: &str| {
        say(&format!("{what}: {}", explain(t)));
        let last = t.hops.last().map(|h| h.component.as_str()).unwrap_or("");
        if t.disposition.kind != kind || !last.starts_with(at) {
            errors.push(format!("{what}: expected {kind} at {at}:{}", explain(t)));
        }
    };
    let (_d, net) = collect(&lab);
    expect("allowed TCP 8080", &trace(&net, "10.244.1.20:8080"), DispositionKind::Delivered, "host/pod-b");
    expect(
        "UDP 8081 (not allowed)",
        &trace(&net, "10.244.1.20:8081/udp"),
        DispositionKind::Dropped,
        "host/node nftables bridge netpol/forward",
    );
    expect("DNS before the fault", &trace(&net, "10.244.1.53:53/udp"), DispositionKind::Delivered, "host/coredns");
    match lab.inject(&FaultRequest::named("dns-egress-drop")) {
        Ok(_) => {
            let (_d, net) = collect(&lab);
            expect(
                "DNS with dns-egress-drop",
                &trace(&net, "10.244.1.53:53/udp"),
                DispositionKind::Dropped,
                "host/node nftables",
            );
        }
        Err(e) => errors.push(format!("dns-egress-drop: inject: {e}")),
    }
    lab.down().unwrap_or_else(|e| panic!("lab down: {e}"));
    assert!(errors.is_empty(), "dns-and-policy: {} problem(s):\n{}", errors.len(), errors.join("\n"));
}
