//! Host folders of a synthetic bundle: what `ip -j`, `sysctl -a`, `conntrack -S` and the
//! CNI directory of a Calico (VXLAN, host-local IPAM) node of the plan would show.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::net::Ipv4Addr;
use std::path::Path;

use serde_json::{json, Value};

use crate::jsonw::{ArrayWriter, Emitter};
use crate::plan::{Plan, NODE_PREFIX};
use crate::rng::{Rng, Stream};

/// Underlay MTU (AWS jumbo frames) and the pod/VXLAN MTU Calico derives from it (-50).
const UNDERLAY_MTU: u32 = 9001;
const POD_MTU: u32 = UNDERLAY_MTU - 50;
const VXLAN_VNI: u32 = 4096;
const VXLAN_PORT: u16 = 4789;
/// Calico gives every host-side veth this MAC.
const CALI_MAC: &str = "ee:ee:ee:ee:ee:ee";
const FOREVER: u64 = 4_294_967_295;

/// Name of the host-side veth of a pod (Calico: `cali` + 11 hex digits of a hash).
fn cali_name(plan: &Plan, pod: u32) -> String {
    let mut r = Rng::for_item(plan.spec.seed, Stream::Host, u64::from(pod) | 1 << 40);
    format!("cali{}", r.hex(11))
}

/// The interfaces of node `n`, in ifindex order: (ifindex, name, kind).
enum Iface {
    Lo,
    Eth0 { mac: String },
    Vxlan { mac: String },
    Cali { pod: u32, netnsid: u32 },
}

fn interfaces(plan: &Plan, n: u32, r: &mut Rng) -> Vec<Iface> {
    let mut v = vec![Iface::Lo, Iface::Eth0 { mac: r.mac() }, Iface::Vxlan { mac: r.mac() }];
    v.extend(plan.pods_on_node(n).enumerate().map(|(k, pod)| Iface::Cali { pod, netnsid: k as u32 }));
    v
}

fn link_common(index: usize, name: &str, iface: &Iface, node_ip: Ipv4Addr, with_details: bool) -> Value {
    let ifindex = index + 1;
    let up = json!(["BROADCAST", "MULTICAST", "UP", "LOWER_UP"]);
    let mut v = match iface {
        Iface::Lo => json!({
            "ifindex": ifindex, "ifname": name, "flags": ["LOOPBACK", "UP", "LOWER_UP"], "mtu": 65536,
            "qdisc": "noqueue", "operstate": "UNKNOWN", "linkmode": "DEFAULT", "group": "default", "txqlen": 1000,
            "link_type": "loopback", "address": "00:00:00:00:00:00", "broadcast": "00:00:00:00:00:00"
        }),
        Iface::Eth0 { mac } => json!({
            "ifindex": ifindex, "ifname": name, "flags": up, "mtu": UNDERLAY_MTU, "qdisc": "mq",
            "operstate": "UP", "linkmode": "DEFAULT", "group": "default", "txqlen": 1000,
            "link_type": "ether", "address": mac, "broadcast": "ff:ff:ff:ff:ff:ff"
        }),
        Iface::Vxlan { mac } => json!({
            "ifindex": ifindex, "ifname": name, "flags": up, "mtu": POD_MTU, "qdisc": "noqueue",
            "operstate": "UNKNOWN", "linkmode": "DEFAULT", "group": "default", "txqlen": 1000,
            "link_type": "ether", "address": mac, "broadcast": "ff:ff:ff:ff:ff:ff"
        }),
        Iface::Cali { netnsid, .. } => json!({
            "ifindex": ifindex, "link_index": 2, "ifname": name, "flags": up, "mtu": POD_MTU, "qdisc": "noqueue",
            "operstate": "UP", "linkmode": "DEFAULT", "group": "default", "txqlen": 1000,
            "link_type": "ether", "address": CALI_MAC, "broadcast": "ff:ff:ff:ff:ff:ff", "link_netnsid": netnsid
        }),
    };
    if with_details {
        let (min_mtu, max_mtu) = match iface {
            Iface::Lo => (0, 0),
            Iface::Eth0 { .. } => (128, 9216),
            _ => (68, 65535),
        };
        v["promiscuity"] = json!(0);
        v["allmulti"] = json!(0);
        v["min_mtu"] = json!(min_mtu);
        v["max_mtu"] = json!(max_mtu);
        match iface {
            Iface::Vxlan { .. } => {
                v["linkinfo"] = json!({"info_kind": "vxlan", "info_data": {
                    "id": VXLAN_VNI, "local": node_ip.to_string(), "link": "eth0", "port_range": {"low": 0, "high": 0},
                    "port": VXLAN_PORT, "ttl": 0, "tos": "inherit", "df": "unset", "ageing": 300, "learning": false,
                    "udp_csum": false, "udp_zero_csum6_tx": false, "udp_zero_csum6_rx": false
                }});
            }
            Iface::Cali { .. } => v["linkinfo"] = json!({"info_kind": "veth"}),
            _ => {}
        }
        v["inet6_addr_gen_mode"] = json!("eui64");
        v["num_tx_queues"] = json!(if matches!(iface, Iface::Eth0 { .. }) { 4 } else { 1 });
        v["num_rx_queues"] = json!(if matches!(iface, Iface::Eth0 { .. }) { 4 } else { 1 });
        v["gso_max_size"] = json!(65536);
        v["gso_max_segs"] = json!(65535);
        if matches!(iface, Iface::Eth0 { .. }) {
            v["parentbus"] = json!("pci");
            v["parentdev"] = json!("0000:00:05.0");
        }
    }
    v
}

fn iface_name(plan: &Plan, iface: &Iface) -> String {
    match iface {
        Iface::Lo => "lo".into(),
        Iface::Eth0 { .. } => "eth0".into(),
        Iface::Vxlan { .. } => "vxlan.calico".into(),
        Iface::Cali { pod, .. } => cali_name(plan, *pod),
    }
}

fn addr(
    family: &str,
    local: String,
    prefixlen: u8,
    scope: &str,
    label: Option<&str>,
    extra: Option<(&str, String)>,
) -> Value {
    let mut v = json!({"family": family, "local": local, "prefixlen": prefixlen});
    if let Some((k, val)) = extra {
        v[k] = json!(val);
    }
    v["scope"] = json!(scope);
    if let Some(l) = label {
        v["label"] = json!(l);
    }
    v["valid_life_time"] = json!(FOREVER);
    v["preferred_life_time"] = json!(FOREVER);
    v
}

/// Writes a JSON array on one line, as `ip -j` does.
fn write_json_array(path: &Path, items: impl Iterator<Item = Value>) -> io::Result<()> {
    let mut e = Emitter::new(BufWriter::new(fs::File::create(path)?), false);
    let mut a = ArrayWriter::open(&mut e, 0)?;
    for item in items {
        a.item(&mut e, &item)?;
    }
    a.close(&mut e)?;
    e.raw("\n")?;
    e.into_inner().flush()
}

fn broadcast(ip: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(ip) | (u32::MAX >> prefix))
}

/// Writes `hosts/<node>/` for node `n`.
pub(crate) fn write_host(plan: &Plan, n: u32, hosts_dir: &Path) -> io::Result<()> {
    let name = plan.node_name(n);
    let dir = hosts_dir.join(&name);
    fs::create_dir_all(dir.join("cni"))?;
    let mut r = Rng::for_item(plan.spec.seed, Stream::Host, u64::from(n));
    let ifaces = interfaces(plan, n, &mut r);
    let node_ip = plan.node_ip(n);
    let tunnel_ip = plan.pod_block(n);

    fs::write(dir.join("host.json"), format!("{{\"role\": \"node\", \"node\": \"{name}\"}}\n"))?;

    // `ip -j -d link show`
    write_json_array(
        &dir.join("ip-link.json"),
        ifaces.iter().enumerate().map(|(i, f)| link_common(i, &iface_name(plan, f), f, node_ip, true)),
    )?;

    // `ip -j addr show`
    write_json_array(
        &dir.join("ip-addr.json"),
        ifaces.iter().enumerate().map(|(i, f)| {
            let ifname = iface_name(plan, f);
            let mut v = link_common(i, &ifname, f, node_ip, false);
            let info = match f {
                Iface::Lo => vec![
                    addr("inet", "127.0.0.1".into(), 8, "host", Some("lo"), None),
                    addr("inet6", "::1".into(), 128, "host", None, None),
                ],
                Iface::Eth0 { .. } => vec![
                    addr(
                        "inet",
                        node_ip.to_string(),
                        NODE_PREFIX,
                        "global",
                        Some("eth0"),
                        Some(("broadcast", broadcast(node_ip, NODE_PREFIX).to_string())),
                    ),
                    addr(
                        "inet6",
                        format!(
                            "fe80::{:x}:{:x}ff:fe{:x}:{:x}",
                            0x800 | (n & 0xff),
                            n >> 8 & 0xff,
                            n & 0xff,
                            n & 0xffff
                        ),
                        64,
                        "link",
                        None,
                        None,
                    ),
                ],
                Iface::Vxlan { .. } => {
                    vec![addr("inet", tunnel_ip.to_string(), 32, "global", Some("vxlan.calico"), None)]
                }
                Iface::Cali { .. } => vec![addr("inet6", "fe80::ecee:eeff:feee:eeee".into(), 64, "link", None, None)],
            };
            v["addr_info"] = Value::Array(info);
            v
        }),
    )?;

    // `ip -j route show table all`: main (default, underlay, own block blackholed,
    // one /32 per local pod, one VXLAN route per other node), then local.
    let other_nodes = (0..plan.spec.nodes).filter(move |m| *m != n);
    let main = [
        json!({"dst": "default", "gateway": plan.node_gateway().to_string(), "dev": "eth0", "protocol": "dhcp",
               "prefsrc": node_ip.to_string(), "metric": 100, "flags": []}),
        json!({"dst": format!("{}/{}", Ipv4Addr::from(u32::from(node_ip) & !(u32::MAX >> NODE_PREFIX)), NODE_PREFIX),
               "dev": "eth0", "protocol": "kernel", "scope": "link", "prefsrc": node_ip.to_string(), "metric": 100, "flags": []}),
        json!({"type": "blackhole", "dst": plan.pod_cidr(n), "protocol": "80", "flags": []}),
    ]
    .into_iter()
    .chain(plan.pods_on_node(n).map(|pod| {
        json!({"dst": plan.pod_ip(pod).to_string(), "dev": cali_name(plan, pod), "scope": "link", "flags": []})
    }))
    .chain(other_nodes.map(|m| {
        json!({"dst": plan.pod_cidr(m), "gateway": plan.pod_block(m).to_string(), "dev": "vxlan.calico",
               "protocol": "80", "flags": ["onlink"]})
    }));
    let local = |kind: &str, dst: String, dev: &str, scope: &str, src: String| {
        json!({"type": kind, "dst": dst, "table": "local", "dev": dev, "protocol": "kernel", "scope": scope,
               "prefsrc": src, "flags": []})
    };
    let locals = vec![
        local("local", tunnel_ip.to_string(), "vxlan.calico", "host", tunnel_ip.to_string()),
        local("local", "127.0.0.0/8".into(), "lo", "host", "127.0.0.1".into()),
        local("local", "127.0.0.1".into(), "lo", "host", "127.0.0.1".into()),
        local("broadcast", "127.255.255.255".into(), "lo", "link", "127.0.0.1".into()),
        local("local", node_ip.to_string(), "eth0", "host", node_ip.to_string()),
        local("broadcast", broadcast(node_ip, NODE_PREFIX).to_string(), "eth0", "link", node_ip.to_string()),
    ];
    write_json_array(&dir.join("ip-route.json"), main.chain(locals))?;

    let mut sysctl = BufWriter::new(fs::File::create(dir.join("sysctl.txt"))?);
    for (k, v) in [
        ("kernel.hostname", name.as_str()),
        ("net.bridge.bridge-nf-call-ip6tables", "1"),
        ("net.bridge.bridge-nf-call-iptables", "1"),
        ("net.core.netdev_max_backlog", "1000"),
        ("net.core.rmem_max", "212992"),
        ("net.core.somaxconn", "4096"),
        ("net.core.wmem_max", "212992"),
    ] {
        writeln!(sysctl, "{k} = {v}")?;
    }
    for f in &ifaces {
        let ifname = iface_name(plan, f);
        let cali = matches!(f, Iface::Cali { .. });
        let conf = |key: &str| format!("net.ipv4.conf.{}.{key}", ifname.replace('.', "/"));
        for (key, val) in [
            ("accept_local", "0"),
            ("forwarding", "1"),
            ("proxy_arp", if cali { "1" } else { "0" }),
            ("route_localnet", "0"),
            ("rp_filter", if cali { "1" } else { "2" }),
        ] {
            writeln!(sysctl, "{} = {val}", conf(key))?;
        }
    }
    for (k, v) in [
        ("net.ipv4.conf.all.forwarding", "1"),
        ("net.ipv4.conf.all.rp_filter", "2"),
        ("net.ipv4.conf.default.forwarding", "1"),
        ("net.ipv4.conf.default.rp_filter", "2"),
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv4.ip_local_port_range", "32768\t60999"),
        ("net.ipv4.tcp_keepalive_time", "7200"),
        ("net.ipv4.tcp_mtu_probing", "0"),
        ("net.ipv6.conf.all.disable_ipv6", "0"),
        ("net.ipv6.conf.all.forwarding", "0"),
        ("net.netfilter.nf_conntrack_buckets", "65536"),
        ("net.netfilter.nf_conntrack_max", "262144"),
        ("net.netfilter.nf_conntrack_tcp_timeout_established", "86400"),
        ("net.netfilter.nf_conntrack_udp_timeout", "30"),
        ("net.netfilter.nf_conntrack_udp_timeout_stream", "120"),
    ] {
        writeln!(sysctl, "{k} = {v}")?;
    }
    sysctl.flush()?;

    fs::write(
        dir.join("resolv.conf"),
        format!(
            "# Generated by dhcpcd\ndomain ec2.internal\nsearch ec2.internal\nnameserver {}\noptions timeout:2 attempts:5\n",
            Ipv4Addr::from(u32::from(plan.node_gateway()) + 1)
        ),
    )?;

    let count = 200 + r.below(20_000);
    fs::write(dir.join("conntrack-count.txt"), format!("{count}\n"))?;
    let mut stats = String::new();
    // One node in 20 has seen conntrack insert races (FAILURES.md #2); the rest none.
    let racy = r.chance(5);
    for cpu in 0..2 {
        stats.push_str(&format!(
            "cpu={cpu:<4}\tfound=0 invalid={} insert=0 insert_failed={} drop=0 early_drop=0 error=0 search_restart={} clash_resolve={} chaintoolong=0 \n",
            r.below(500),
            if racy { 1 + r.below(50) } else { 0 },
            r.below(40),
            r.below(10)
        ));
    }
    fs::write(dir.join("conntrack-stats.txt"), stats)?;

    let conflist = json!({
        "name": "k8s-pod-network",
        "cniVersion": "0.3.1",
        "plugins": [
            {"type": "calico", "log_level": "info", "log_file_path": "/var/log/calico/cni/cni.log",
             "datastore_type": "kubernetes", "nodename": name, "mtu": POD_MTU,
             "ipam": {"type": "host-local", "subnet": "usePodCidr"},
             "policy": {"type": "k8s"},
             "kubernetes": {"kubeconfig": "/etc/cni/net.d/calico-kubeconfig"}},
            {"type": "portmap", "snat": true, "capabilities": {"portMappings": true}},
            {"type": "bandwidth", "capabilities": {"bandwidth": true}}
        ]
    });
    let text = serde_json::to_string_pretty(&conflist).map_err(io::Error::from)?;
    fs::write(dir.join("cni").join("10-calico.conflist"), text + "\n")?;
    Ok(())
}
