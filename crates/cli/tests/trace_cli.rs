//! `netsleuth trace`: exit codes (0 delivered/exits-network, 1 otherwise, 2 usage errors),
//! the JSON shape and the text table, on examples/gateway-incident.

use std::path::PathBuf;
use std::process::{Command, Output};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/gateway-incident")
}

fn netsleuth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netsleuth")).args(args).env("NO_COLOR", "1").output().expect("runs")
}

fn trace(from: &str, to: &str, extra: &[&str]) -> Output {
    let bundle = example();
    let mut args = vec!["trace", bundle.to_str().unwrap(), "--from", from, "--to", to];
    args.extend_from_slice(extra);
    netsleuth(&args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn delivered_exits_zero_with_a_hop_table() {
    let o = trace("pod:shop/cart-5f6d8b", "pod:shop/web-7d4b9c:8080", &[]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(out.starts_with("trace 10.244.2.20 → 10.244.1.10:8080 (tcp, 1450 bytes, DF)\n"), "{out}");
    assert!(out.contains("size 1450 bytes: out pod-cart eth0 mtu 1450 → in node-2 vethcart mtu 1450"), "{out}");
    assert!(out.contains("host/node-2 iface vxlan0"), "{out}");
    assert!(out.contains("disposition: delivered at host/pod-web"), "{out}");
    assert!(!out.contains('\x1b'), "no colour when NO_COLOR/not a terminal: {out}");
}

#[test]
fn exits_network_is_success() {
    let o = trace("host:gw-1", "10.20.1.10:443", &["--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["disposition"]["kind"], "exits-network");
}

#[test]
fn dropped_exits_one_and_json_has_the_documented_shape() {
    let o = trace("pod:shop/cart-5f6d8b", "10.20.1.10:443", &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let hops = v["hops"].as_array().expect("hops array");
    assert!(hops.len() >= 3);
    for h in hops {
        for k in ["layer", "component", "action", "reason", "evidence"] {
            assert!(h.get(k).is_some(), "{k} in {h}");
        }
    }
    let d = &v["disposition"];
    assert_eq!(d["kind"], "dropped");
    assert_eq!(d["at"], "host/gw-1 sysctl net.ipv4.ip_forward");
    assert!(d["reason"].as_str().unwrap().contains("ip_forward = 0"));
    assert_eq!(hops.last().unwrap()["evidence"][0]["location"]["path"], "hosts/gw-1/sysctl.txt");
}

#[test]
fn usage_errors_exit_two_with_a_clear_message() {
    let o = trace("pod:shop/nope", "10.0.0.1", &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no pod shop/nope in the bundle (pods in shop: web-7d4b9c, cart-5f6d8b)"), "{err}");

    let o = trace("pod:shop/web-7d4b9c", "10.0.0.1:99999", &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad port"), "{}", String::from_utf8_lossy(&o.stderr));

    let o = trace("host:nope", "10.0.0.1", &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no host nope in the bundle (hosts: "));

    let o = netsleuth(&["trace", "/nonexistent/bundle", "--from", "host:a", "--to", "10.0.0.1"]);
    assert_eq!(o.status.code(), Some(2));
    let o = netsleuth(&["trace", example().to_str().unwrap(), "--from", "host:gw-1"]);
    assert_eq!(o.status.code(), Some(2), "missing --to is a usage error");
}

#[test]
fn size_and_df_against_the_mtus() {
    // node-1 reaches pod-cart over vxlan0 (MTU 1450): a 1500-byte UDP datagram with DF cannot
    // leave (EMSGSIZE), exit 1; the JSON records the size and the MTU on the hop.
    let o = trace("host:node-1", "10.244.2.20:8080/udp", &["--size", "1500", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["packet"]["size"].as_u64(), v["packet"]["df"].as_bool()), (Some(1500), Some(true)));
    let last = v["hops"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["component"], "host/node-1 iface vxlan0", "{last}");
    assert_eq!(last["mtu"]["egress"]["mtu"], 1450, "{last}");
    assert!(v["hops"][0].get("mtu").is_some(), "every hop has an mtu key (null when not checked)");
    // Without DF it is sent as fragments and delivered.
    let o = trace("host:node-1", "10.244.2.20:8080/udp", &["--size", "1500", "--no-df"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("(udp, 1500 bytes)"), "{}", stdout(&o));
    // Sizes below an IPv4 header plus UDP are usage errors.
    assert_eq!(trace("host:node-1", "10.244.2.20", &["--size", "10"]).status.code(), Some(2));
}
