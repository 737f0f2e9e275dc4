//! The diagnose DNS probe against real dnsmasq servers in a network namespace: healthy, a
//! frozen server (first or only), disagreeing servers, SERVFAIL, NXDOMAIN, ndots expansion.

mod hdp;

use std::path::Path;

use hdp::{can_run, causes, run_probe, Netns};

/// Not a test of its own: the probe runner `run_probe` starts inside a namespace.
#[test]
fn probe_child() {
    hdp::child_main();
}

fn dnsmasq(net: &mut Netns, ns: &str, listen: &str, extra: &[&str]) -> u32 {
    let listen_arg = format!("--listen-address={listen}");
    let mut args = vec![
        "dnsmasq",
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--pid-file=",
        "--user=root",
        "--cache-size=0",
        "--port=53",
        listen_arg.as_str(),
    ];
    args.extend_from_slice(extra);
    net.spawn(ns, &args)
}

fn write_conf(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write resolv.conf");
    p.display().to_string()
}

/// Waits (bounded) until the server at `ip` answers the name, so the tests do not race
/// dnsmasq's start.
fn wait_ready(ns: &str, conf: &str) {
    for _ in 0..50 {
        let v = run_probe(ns, &["dns", "api.svc.test", conf, "200", "1"]);
        if !v["addresses"].as_array().is_none_or(Vec::is_empty) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("dnsmasq in {ns} did not start answering");
}

#[test]
fn dns_probe_names_each_resolver_failure() {
    if !can_run("dns_probe_names_each_resolver_failure", &["dnsmasq"]) {
        return;
    }
    let mut net = Netns::new("dns");
    let ns = net.add("c");
    let good = ["--host-record=api.svc.test,10.1.2.3", "--local=/test/"];
    // 40 A records for big.svc.test: 680 bytes, more than a plain UDP answer may carry (512).
    let big: Vec<String> = (1..=40).map(|i| format!("--host-record=big.svc.test,10.7.0.{i}")).collect();
    let mut first: Vec<&str> = good.to_vec();
    first.extend(big.iter().map(String::as_str));
    dnsmasq(&mut net, &ns, "127.0.0.2", &first);
    dnsmasq(&mut net, &ns, "127.0.0.3", &["--host-record=api.svc.test,10.1.2.99", "--local=/test/"]);
    let frozen = dnsmasq(&mut net, &ns, "127.0.0.4", &good);
    // No zone and no upstream: dnsmasq answers REFUSED (as a resolver that cannot serve us).
    dnsmasq(&mut net, &ns, "127.0.0.5", &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for ip in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        wait_ready(&ns, &write_conf(d, "ready", &format!("nameserver {ip}\n")));
    }
    // As a hung CoreDNS: the port stays bound, nothing answers.
    hdp::sh(&["kill", "-STOP", &frozen.to_string()]);

    // Healthy: one answer, one query per type, no cause.
    let conf = write_conf(d, "healthy", "nameserver 127.0.0.2\nsearch a.test b.test\noptions ndots:1\n");
    let v = run_probe(&ns, &["dns", "api.svc.test", &conf, "500", "2"]);
    assert_eq!(v["addresses"], serde_json::json!(["10.1.2.3"]), "{v:#}");
    assert_eq!(v["outcome"]["layer"]["status"], "ok", "{v:#}");
    assert!(causes(&v).is_empty(), "{v:#}");
    assert_eq!(v["outcome"]["detail"]["servers"][0]["queries_until_answer"], 2, "A and AAAA of the name itself");

    // The second packet of every UDP flow to 127.0.0.7 dropped (as the conntrack insert race
    // loses the AAAA sent right after the A from the same socket): separate queries pass,
    // the resolver's back-to-back pair loses one reply.
    dnsmasq(&mut net, &ns, "127.0.0.7", &good);
    let conf7 = write_conf(d, "race", "nameserver 127.0.0.7\n");
    // Ready before the drops start (else the probe meets a refused port, not the race).
    wait_ready(&ns, &conf7);
    hdp::sh(&[
        "ip",
        "netns",
        "exec",
        &ns,
        "nft",
        "add table ip hdprace; add chain ip hdprace inp { type filter hook input priority 0; policy accept; }; \
         add rule ip hdprace inp ip daddr 127.0.0.7 udp dport 53 ct original packets 2 drop",
    ]);
    let v = run_probe(&ns, &["dns", "api.svc.test", &conf7, "500", "1"]);
    assert_eq!(causes(&v), ["DIAG-DNS-008"], "{v:#}");
    assert_eq!(v["addresses"], serde_json::json!(["10.1.2.3"]), "{v:#}");
    let paired = &v["outcome"]["detail"]["servers"][0]["paired"];
    assert!(paired["one_lost"].as_u64().is_some_and(|n| n >= 1), "{v:#}");
    // Healthy servers lose nothing in pairs.
    let v = run_probe(&ns, &["dns", "api.svc.test", &conf, "500", "1"]);
    assert_eq!(v["outcome"]["detail"]["servers"][0]["paired"]["one_lost"], 0, "{v:#}");

    // A truncated UDP answer is asked again over TCP.
    let v = run_probe(&ns, &["dns", "big.svc.test", &conf, "500", "1"]);
    assert_eq!(v["addresses"].as_array().map(Vec::len), Some(40), "{v:#}");
    assert_eq!(v["outcome"]["detail"]["servers"][0]["queries"][0]["truncated_retried_tcp"], true, "{v:#}");
    assert!(causes(&v).is_empty(), "{v:#}");

    // ndots:5 with three search domains: 3 suffixes x 2 types wasted before the answer.
    let conf = write_conf(d, "ndots", "nameserver 127.0.0.2\nsearch a.test b.test c.test\noptions ndots:5\n");
    let v = run_probe(&ns, &["dns", "api.svc.test", &conf, "500", "2"]);
    assert_eq!(v["addresses"], serde_json::json!(["10.1.2.3"]), "{v:#}");
    assert_eq!(causes(&v), ["DIAG-DNS-007"], "{v:#}");
    assert_eq!(v["outcome"]["detail"]["servers"][0]["queries_until_answer"], 8, "{v:#}");

    // ndots:5 and a search domain the server refuses: glibc stops at the REFUSED answer, the
    // lookup fails although the name itself resolves.
    let conf = write_conf(d, "ndots-refused", "nameserver 127.0.0.2\nsearch refused.example\noptions ndots:5\n");
    let v = run_probe(&ns, &["dns", "api.svc.test", &conf, "500", "1"]);
    assert_eq!(causes(&v), ["DIAG-DNS-007"], "{v:#}");
    assert_eq!(v["addresses"], serde_json::json!([]), "the resolver gives up: {v:#}");
    assert_eq!(v["outcome"]["causes"][0]["severity"], "high");
    assert_eq!(v["outcome"]["detail"]["servers"][0]["name_as_written"], serde_json::json!(["10.1.2.3"]));

    // The first nameserver hangs: the answer comes from the second, the cause names the
    // resolver timeout the lookups wait first.
    let conf = write_conf(d, "first-down", "nameserver 127.0.0.4\nnameserver 127.0.0.2\noptions timeout:5\n");
    let v = run_probe(&ns, &["dns", "api.svc.test", &conf, "300", "1"]);
    assert_eq!(v["addresses"], serde_json::json!(["10.1.2.3"]), "{v:#}");
    assert_eq!(causes(&v), ["DIAG-DNS-002"], "{v:#}");
    let detail = v["outcome"]["causes"][0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("exactly-5 s"), "{detail}");

    // The only nameserver hangs: every lookup fails.
    let conf = write_conf(d, "all-down", "nameserver 127.0.0.4\n");
    let v = run_probe(&ns, &["dns", "api.svc.test", &conf, "300", "2"]);
    assert_eq!(causes(&v), ["DIAG-DNS-001"], "{v:#}");
    assert_eq!(v["outcome"]["layer"]["status"], "fail");
    assert_eq!(v["outcome"]["detail"]["servers"][0]["queries"][0]["attempts"], 2, "retried before giving up");
    assert_eq!(v["outcome"]["detail"]["servers"][0]["tcp_connect"], "accepted", "{v:#}");
    let detail = v["outcome"]["causes"][0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("hung or overloaded"), "{detail}");

    // DNS to a live server dropped by a firewall (ICMP still passes): a policy, not a hung server.
    hdp::sh(&[
        "ip",
        "netns",
        "exec",
        &ns,
        "nft",
        "add table ip hdp; add chain ip hdp inp { type filter hook input priority 0; policy accept; }; \
         add rule ip hdp inp ip daddr 127.0.0.6 udp dport 53 drop; add rule ip hdp inp ip daddr 127.0.0.6 tcp dport 53 drop",
    ]);
    dnsmasq(&mut net, &ns, "127.0.0.6", &good);
    let conf = write_conf(d, "filtered", "nameserver 127.0.0.6\n");
    let v = run_probe(&ns, &["dns", "api.svc.test", &conf, "300", "1"]);
    assert_eq!(causes(&v), ["DIAG-DNS-011"], "{v:#}");
    assert_eq!(v["outcome"]["detail"]["servers"][0]["ping"], true, "{v:#}");

    // Two servers, two answers: one is stale.
    let conf = write_conf(d, "stale", "nameserver 127.0.0.2\nnameserver 127.0.0.3\n");
    let v = run_probe(&ns, &["dns", "api.svc.test", &conf, "500", "1"]);
    assert_eq!(causes(&v), ["DIAG-DNS-005"], "{v:#}");
    assert_eq!(v["addresses"], serde_json::json!(["10.1.2.3"]), "the first server's answer is what the resolver uses");

    // A server that cannot resolve the zone.
    let conf = write_conf(d, "servfail", "nameserver 127.0.0.5\n");
    let v = run_probe(&ns, &["dns", "api.svc.test", &conf, "500", "1"]);
    assert_eq!(causes(&v), ["DIAG-DNS-003"], "{v:#}");

    // A name that does not exist anywhere.
    let conf = write_conf(d, "nx", "nameserver 127.0.0.2\nsearch a.test\n");
    let v = run_probe(&ns, &["dns", "nope.svc.test", &conf, "500", "1"]);
    assert_eq!(causes(&v), ["DIAG-DNS-004"], "{v:#}");
    assert_eq!(v["outcome"]["layer"]["status"], "fail");
}
