//! The diagnose path-MTU probe across real namespaces: client - router - server with a
//! 1400-byte link behind the router: PTB allowed, filtered, and a silent limit in front (v4, v6).

mod hdp;

use hdp::{can_run, causes, run_probe, Netns};

/// Not a test of its own: the probe runner `run_probe` starts inside a namespace.
#[test]
fn probe_child() {
    hdp::child_main();
}

#[test]
fn pmtu_probe_finds_limits_and_black_holes() {
    if !can_run("pmtu_probe_finds_limits_and_black_holes", &["python3", "timeout"]) {
        return;
    }
    let mut net = Netns::new("mtu");
    let c = net.add("c");
    let r = net.add("r");
    let s = net.add("s");
    net.link((&c, "eth0", "10.9.1.2/24", 1500), (&r, "eth0", "10.9.1.1/24", 1500));
    net.link((&r, "eth1", "10.9.2.1/24", 1400), (&s, "eth0", "10.9.2.2/24", 1500));
    net.exec(&c, &["ip", "route", "add", "default", "via", "10.9.1.1"]);
    net.exec(&s, &["ip", "route", "add", "default", "via", "10.9.2.1"]);
    net.exec(&r, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    // IPv6 on the same links (nodad: usable at once).
    for (ns, dev, addr) in [
        (&c, "eth0", "fd00:91::2/64"),
        (&r, "eth0", "fd00:91::1/64"),
        (&r, "eth1", "fd00:92::1/64"),
        (&s, "eth0", "fd00:92::2/64"),
    ] {
        net.exec(ns, &["ip", "-6", "addr", "add", addr, "dev", dev, "nodad"]);
    }
    net.exec(&c, &["ip", "-6", "route", "add", "default", "via", "fd00:91::1"]);
    net.exec(&s, &["ip", "-6", "route", "add", "default", "via", "fd00:92::1"]);
    net.exec(&r, &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    // A listener only: the kernel answers the SYN (MSS 1460 from the server's 1500 MTU).
    net.spawn(
        &s,
        &[
            "timeout",
            "120",
            "python3",
            "-c",
            "import socket,time\ns=socket.socket()\ns.bind(('0.0.0.0',8080))\ns.listen(16)\ntime.sleep(120)",
        ],
    );
    std::thread::sleep(std::time::Duration::from_millis(500));

    // No limit on the first link: nothing to report.
    let v = run_probe(&c, &["pmtu", "10.9.1.1", "timeout:300"]);
    assert!(causes(&v).is_empty(), "{v:#}");
    assert_eq!(v["outcome"]["detail"]["icmp"]["largest_ok"], 1500, "{v:#}");
    assert_eq!(v["outcome"]["detail"]["local_mtu"], 1500, "read from the route");

    // Behind the router: fragmentation-needed names 1400; PMTUD works, the SYN-ACK's MSS
    // (1460) is more than the path carries.
    let v = run_probe(&c, &["pmtu", "10.9.2.2", "tcp:8080", "udp:9999", "mtu:1500", "timeout:300"]);
    assert_eq!(causes(&v), ["DIAG-MTU-002", "DIAG-MTU-003"], "{v:#}");
    let d = &v["outcome"]["detail"];
    assert_eq!(d["icmp"]["largest_ok"], 1400, "{v:#}");
    assert_eq!(d["icmp"]["ptb"][0]["mtu"], 1400, "{v:#}");
    assert_eq!(d["icmp"]["ptb"][0]["from"], "10.9.1.1", "{v:#}");
    assert_eq!(d["udp"]["largest_ok"], 1400, "port unreachable counts as arrived: {v:#}");
    assert_eq!(d["tcp"]["synack_mss"], 1460, "{v:#}");
    assert_eq!(v["outcome"]["causes"][0]["severity"], "info");
    assert!(d["icmp"]["steps"].as_array().is_some_and(|s| s.len() <= 6), "fragmentation-needed shortcuts the search");

    // IPv6: packet-too-big from the router, the same limit.
    hdp::wait_ping(&c, "fd00:92::2");
    let v = run_probe(&c, &["pmtu", "fd00:92::2", "mtu:1500", "timeout:300"]);
    assert_eq!(causes(&v), ["DIAG-MTU-002"], "{v:#}");
    let d = &v["outcome"]["detail"]["icmp"];
    assert_eq!(d["largest_ok"], 1400, "{v:#}");
    assert_eq!(d["ptb"][0]["from"], "fd00:91::1", "{v:#}");
    assert_eq!(d["ptb"][0]["mtu"], 1400, "{v:#}");

    // The router's ICMP errors filtered: a black hole at 1400.
    net.exec(
        &r,
        &[
            "nft",
            "add table ip hdp; add chain ip hdp out { type filter hook output priority 0; policy accept; }; \
             add rule ip hdp out icmp type destination-unreachable icmp code frag-needed drop",
        ],
    );
    let v = run_probe(&c, &["pmtu", "10.9.2.2", "tcp:8080", "mtu:1500", "timeout:300"]);
    assert_eq!(causes(&v), ["DIAG-MTU-001", "DIAG-MTU-003"], "{v:#}");
    let d = &v["outcome"]["detail"];
    assert_eq!(d["icmp"]["largest_ok"], 1400, "{v:#}");
    assert_eq!(d["icmp"]["smallest_lost"], 1401, "{v:#}");
    assert_eq!(d["icmp"]["confirmed"], true, "{v:#}");
    assert_eq!(v["outcome"]["layer"]["status"], "fail");
    assert!(d["probes_sent"].as_u64().is_some_and(|n| n <= 40), "bounded: {}", d["probes_sent"]);

    // ICMP allowed again, but the router's receiving end has MTU 1450 while the client sends
    // up to 1500: 1451-1500-byte packets die silently at the veth (as a pod MTU above its
    // overlay's), smaller ones still get fragmentation-needed from the 1400 link.
    net.exec(&r, &["nft", "delete table ip hdp"]);
    net.exec(&r, &["ip", "link", "set", "eth0", "mtu", "1450"]);
    let v = run_probe(&c, &["pmtu", "10.9.2.2", "mtu:1500", "timeout:300"]);
    assert_eq!(causes(&v), ["DIAG-MTU-001"], "{v:#}");
    let d = &v["outcome"]["detail"]["icmp"];
    assert_eq!(d["ptb"][0]["mtu"], 1400, "{v:#}");
    // The veth accepts the MTU plus an Ethernet and a VLAN header (is_skb_forwardable).
    let silent = d["silent_from"].as_u64().unwrap_or(0);
    assert!((1451..=1469).contains(&silent), "silent limit near 1450: {v:#}");
    assert_eq!(d["reaches"].as_u64(), Some(silent - 1), "{v:#}");
}
