//! CNI config parser on configs in the shapes Calico, flannel, containerd and the CNI
//! plugins ship (sources in tests/fixtures/README.host.md), and on broken input.

use ipnet::IpNet;
use netsleuth_ingest::host::cni;
use netsleuth_ingest::{ParseContext, Source};
use netsleuth_model::host::CniConfig;
use netsleuth_model::Location;

fn fixture(rel: &str) -> String {
    let path = format!("{}/../../tests/fixtures/host/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read fixture {path}: {e}"))
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn parse(rel: &str, ctx: &mut ParseContext) -> CniConfig {
    let text = fixture(rel);
    let path = format!("hosts/{rel}");
    cni::parse(&Source::new(&path, &text), ctx).unwrap()
}

#[test]
fn calico_conflist() {
    let mut ctx = ParseContext::default();
    let c = parse("calico-node/cni/10-calico.conflist", &mut ctx);
    let p = "hosts/calico-node/cni/10-calico.conflist";
    assert_eq!((c.name.as_deref(), c.cni_version.as_deref()), (Some("k8s-pod-network"), Some("0.3.1")));
    assert_eq!(c.file, p);
    let types: Vec<&str> = c.plugins.iter().map(|p| p.plugin_type.as_str()).collect();
    assert_eq!(types, ["calico", "portmap", "bandwidth"]);
    let calico = &c.plugins[0];
    assert_eq!(calico.mtu, Some(1440));
    assert_eq!(calico.origin, Location::json(p, "/plugins/0"));
    let ipam = calico.ipam.as_ref().unwrap();
    assert_eq!(ipam.ipam_type.as_deref(), Some("calico-ipam"));
    assert_eq!(ipam.subnets, vec![net("10.244.0.0/16"), net("fd00:244::/48")]);
    assert!(c.plugins[1].ipam.is_none() && c.plugins[1].mtu.is_none());
    // The IPPool given by name is reported, not silently dropped.
    assert_eq!(ctx.issues.len(), 1);
    assert_eq!(ctx.issues[0].location, Location::json(p, "/plugins/0/ipam/ipv4_pools/1"));
    assert!(ctx.issues[0].message.contains("default-ipv4-ippool"));
}

#[test]
fn flannel_conflist_and_delegate_conf() {
    let mut ctx = ParseContext::default();
    let c = parse("node/cni/10-flannel.conflist", &mut ctx);
    assert_eq!(c.name.as_deref(), Some("cbr0"));
    assert_eq!(c.plugins.iter().map(|p| p.plugin_type.as_str()).collect::<Vec<_>>(), ["flannel", "portmap"]);
    assert_eq!(c.plugins[0].mtu, None, "kube-flannel's conflist leaves the MTU to subnet.env");
    let d = parse("cni-samples/flannel-delegate.conf", &mut ctx);
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    assert_eq!(d.plugins.len(), 1);
    assert_eq!((d.plugins[0].plugin_type.as_str(), d.plugins[0].mtu), ("flannel", Some(1400)));
    assert_eq!(d.plugins[0].origin, Location::json("hosts/cni-samples/flannel-delegate.conf", ""));
    assert_eq!(d.cni_version, None);
}

#[test]
fn host_local_ranges_and_subnet() {
    let mut ctx = ParseContext::default();
    let c = parse("cni-samples/containerd-net.conflist", &mut ctx);
    assert_eq!(c.cni_version.as_deref(), Some("1.0.0"));
    let ipam = c.plugins[0].ipam.as_ref().unwrap();
    assert_eq!(ipam.ipam_type.as_deref(), Some("host-local"));
    assert_eq!(ipam.subnets, vec![net("10.88.0.0/16"), net("2001:4860:4860::/64")]);
    let b = parse("cni-samples/bridge-subnet.conf", &mut ctx);
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    assert_eq!((b.plugins[0].plugin_type.as_str(), b.plugins[0].mtu), ("bridge", Some(1450)));
    assert_eq!(b.plugins[0].ipam.as_ref().unwrap().subnets, vec![net("10.10.0.0/16")]);
}

#[test]
fn per_item_problems_are_warnings_with_pointers() {
    let text = r#"{"cniVersion":"1.0.0","name":"n","plugins":[
        {"type":"calico","mtu":"__CNI_MTU__","ipam":{"type":"host-local","subnet":"usePodCidr",
          "ranges":[[{"subnet":"10.0.0.0/33"},{"rangeStart":"10.0.0.5"}],"x"]}},
        {"mtu":1400},
        7,
        {"type":"flannel","mtu":"1410","delegate":{"mtu":1},"ipam":[]},
        {"type":"bridge","delegate":{"ipam":{"type":"host-local","ranges":[[{"subnet":"10.5.0.0/16"}]]}}}
    ]}"#;
    let p = "hosts/x/cni/bad.conflist";
    let mut ctx = ParseContext::default();
    let c = cni::parse(&Source::new(p, text), &mut ctx).unwrap();
    assert_eq!(c.plugins.len(), 3);
    assert_eq!(c.plugins[0].mtu, None);
    assert!(c.plugins[0].ipam.as_ref().unwrap().subnets.is_empty(), "usePodCidr is not a subnet");
    assert_eq!(c.plugins[1].mtu, Some(1410), "numeric string accepted; the plugin's own mtu wins");
    assert_eq!(c.plugins[2].ipam.as_ref().unwrap().subnets, vec![net("10.5.0.0/16")]);
    let at: Vec<String> = ctx.issues.iter().map(|i| i.location.to_string()).collect();
    assert_eq!(
        at,
        [
            format!("{p}#/plugins/0/mtu"),
            format!("{p}#/plugins/0/ipam/ranges/0/0/subnet"),
            format!("{p}#/plugins/0/ipam/ranges/0/1/subnet"),
            format!("{p}#/plugins/0/ipam/ranges/1"),
            format!("{p}#/plugins/1/type"),
            format!("{p}#/plugins/2"),
            format!("{p}#/plugins/3/ipam"),
        ]
    );
}

#[test]
fn broken_files_are_errors_with_positions() {
    let p = "hosts/x/cni/10-calico.conflist";
    let text = fixture("calico-node/cni/10-calico.conflist");
    let cut = &text[..text.find("\"ipam\"").unwrap()];
    let err = cni::parse(&Source::new(p, cut), &mut ParseContext::default()).unwrap_err();
    assert_eq!(err.path, p);
    assert_eq!(err.line, Some(cut.lines().count()), "{err}");
    assert!(err.column.is_some());
    for (text, line) in [
        ("", Some(1)),
        ("\u{0}\u{fffd}", Some(1)),
        ("[1, 2]", Some(1)),
        ("{\"name\": \"x\"}", None),
        ("{\"plugins\": {\"type\": \"bridge\"}}", None),
        ("{\n\"cniVersion\": 1.0.0\n}", Some(2)),
    ] {
        let err = cni::parse(&Source::new(p, text), &mut ParseContext::default()).unwrap_err();
        assert_eq!((err.path.as_str(), err.line), (p, line), "{text:?}: {err}");
    }
    let huge = format!("{{\"type\":\"bridge\",\"ipam\":{{\"subnet\":\"{}\"}}}}", "1".repeat(1 << 20));
    let mut ctx = ParseContext::default();
    let c = cni::parse(&Source::new(p, &huge), &mut ctx).unwrap();
    assert!(c.plugins[0].ipam.as_ref().unwrap().subnets.is_empty());
    assert!(ctx.issues[0].message.len() < 200);
    let deep = format!("{{\"plugins\":{}{}}}", "[".repeat(50_000), "]".repeat(50_000));
    assert!(cni::parse(&Source::new(p, &deep), &mut ParseContext::default()).is_err());
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            let _ = cni::parse(&Source::new("c.conf", &text), &mut ParseContext::default());
        }
    }
}
