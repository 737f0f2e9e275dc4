//! The host fixtures read as a bundle (`hosts/<name>/...`) through `read_bundle`: the
//! parsers wired as the bundle reader calls them, and no secret in the resulting model.

use std::path::Path;

use netsleuth_ingest::{read_bundle, BundleOptions};
use netsleuth_model::host::InterfaceKind;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn fixtures_as_a_bundle() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/host");
    let dir = tempfile::tempdir().unwrap();
    for host in ["node", "pod-a", "gw-1", "gw-2", "calico-node"] {
        copy_dir(&fixtures.join(host), &dir.path().join("hosts").join(host));
    }
    let net = read_bundle(dir.path(), &BundleOptions::default()).unwrap();
    let issues: Vec<String> = net.ingest_issues.iter().map(|i| format!("{}: {}", i.location, i.message)).collect();
    assert_eq!(issues.len(), 1, "{issues:#?}");
    assert!(issues[0].contains("default-ipv4-ippool"), "{issues:#?}");
    assert!(net.skipped_files.is_empty(), "{:?}", net.skipped_files);

    let node = net.host("node").unwrap();
    let flannel = node.interface("flannel.1").unwrap();
    assert!(matches!(flannel.kind, InterfaceKind::Vxlan { vni: Some(42), port: Some(8472), .. }));
    assert_eq!(flannel.addresses[0].to_string(), "10.244.1.0/32");
    assert_eq!(node.sysctls.get_i64("net.ipv4.ip_forward"), Some(1));
    let ct = node.conntrack.as_ref().unwrap();
    assert_eq!(ct.count, Some(5));
    assert!(ct.max.is_some_and(|m| m >= 5));
    assert_eq!(ct.stats.get("insert_failed"), Some(&0));
    assert_eq!(node.resolv.as_ref().map(|r| r.nameservers.len()), Some(1));
    assert_eq!(node.cni.len(), 1);
    assert_eq!(node.rules.len(), 12 + 3, "ip-rule.json and ip-rule6.json");
    let gw = node.routes.lookup("203.0.113.9".parse().unwrap()).and_then(|r| r.gateway);
    assert_eq!(gw, Some("198.51.100.1".parse().unwrap()));

    let pod = net.host("pod-a").unwrap();
    assert_eq!(pod.resolv.as_ref().and_then(|r| r.ndots), Some(5));
    assert_eq!(pod.interface("eth0").and_then(|i| i.mtu), Some(1500));

    let gw1 = net.host("gw-1").unwrap();
    assert_eq!(gw1.wireguard.len(), 1);
    let wg = &gw1.wireguard[0];
    assert!(wg.from_runtime);
    assert_eq!((wg.mtu, wg.table.as_deref(), wg.addresses.len()), (Some(1420), Some("123"), 2));
    assert!(wg.peers[0].latest_handshake.is_some());
    assert_eq!(gw1.interface("nsh1-wga").and_then(|i| i.mtu), Some(1420));

    let json = serde_json::to_string(&net).unwrap();
    for conf in ["gw-1/wireguard/nsh1-wga.conf", "gw-2/wireguard/nsh1-wgb.conf"] {
        let text = std::fs::read_to_string(fixtures.join(conf)).unwrap();
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                if matches!(k.trim(), "PrivateKey" | "PresharedKey") {
                    assert!(!json.contains(v.trim()), "{} from {conf} leaked into the model", k.trim());
                }
            }
        }
    }
    assert_eq!(net.redactions.len(), 8);
}
