//! The real lab captures in tests/fixtures/captures (made by tests/fixtures/make-captures.sh):
//! exact counts and findings, and agreement with tshark on the same files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use netsleuth_capture::{analyze_file, CaptureReport};
use netsleuth_model::{Layer, Location};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/captures").join(name)
}

fn analyze(name: &str) -> CaptureReport {
    analyze_file(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn rules(r: &CaptureReport) -> Vec<&str> {
    r.findings.iter().map(|f| f.rule.as_str()).collect()
}

const FIXTURES: [&str; 18] = [
    "tcp-healthy.pcap",
    "tcp-loss.pcap",
    "tcp-loss.pcap.gz",
    "dns-down.pcap",
    "dns-nxdomain.pcap",
    "wg-blocked.pcap",
    "wg-blocked.pcapng",
    "mtu-frag-needed.pcap",
    "ike-no-proposal.pcap",
    "ike-blocked.pcap",
    "tcp-zero-window.pcap",
    "tcp-mtu-blackhole.pcap",
    "ip-fragments.pcap",
    "dns-search-tcp.pcap",
    "wg-oneway.pcap",
    "wg-cookie.pcap",
    "ike-auth-blocked.pcap",
    "esp-udp-oneway.pcap",
];

#[test]
fn healthy_transfer_has_no_problem_findings() {
    let r = analyze("tcp-healthy.pcap");
    assert_eq!(r.stats.issue, None);
    assert_eq!(r.counts.tcp_retransmissions, 0);
    // Only the informational snaplen note: the capture was made with -s 96.
    assert_eq!(rules(&r), vec!["PCAP-001"]);
    let flow = r.flows.iter().find(|f| f.protocol == "tcp").expect("a TCP flow");
    assert_eq!(flow.server, "10.214.0.2:8080");
    assert_eq!(flow.mss, Some(1460));
    assert!(flow.handshake_rtt_ms.is_some_and(|ms| ms > 0.0 && ms < 100.0), "{flow:?}");
}

#[test]
fn loss_gives_retransmission_finding_with_packet_evidence() {
    let r = analyze("tcp-loss.pcap");
    // This capture lost the SYN-ACK twice, one data segment and the FIN twice (see README).
    assert_eq!(r.counts.tcp_retransmissions, 6, "{:?}", r.counts);
    let f = r.findings.iter().find(|f| f.rule == "PCAP-002").expect("PCAP-002");
    assert_eq!(f.layer, Layer::Node);
    assert!(f.title.starts_with("6 TCP retransmission(s) on 10.214.0.1:"), "{}", f.title);
    let numbers: Vec<u64> = f
        .evidence
        .iter()
        .map(|e| match &e.location {
            Location::Packet { number, timestamp: Some(ts), .. } if ts.contains('.') => *number,
            other => panic!("{other:?}"),
        })
        .collect();
    // Wireshark's numbers for the same packets (`tshark -Y tcp.analysis.retransmission`).
    assert_eq!(numbers, vec![3, 4, 6, 47, 162]);
    // The gzip copy reads the same.
    let gz = analyze("tcp-loss.pcap.gz");
    assert_eq!(gz.counts, r.counts);
}

#[test]
fn dns_server_down_is_unanswered_and_retried_after_5s() {
    let r = analyze("dns-down.pcap");
    assert_eq!((r.counts.dns_queries, r.counts.dns_responses), (4, 0));
    let unanswered = r.findings.iter().find(|f| f.rule == "PCAP-005").expect("PCAP-005");
    assert_eq!(unanswered.layer, Layer::Dns);
    assert_eq!(unanswered.evidence.len(), 4);
    assert!(unanswered.detail.contains("api.example.lab"), "{}", unanswered.detail);
    // A and AAAA each re-sent once after 5 s.
    assert_eq!(r.findings.iter().filter(|f| f.rule == "PCAP-007").count(), 2);
}

#[test]
fn nxdomain_is_reported_and_answered_queries_are_not() {
    let r = analyze("dns-nxdomain.pcap");
    assert_eq!((r.counts.dns_queries, r.counts.dns_responses), (2, 2));
    assert!(!rules(&r).contains(&"PCAP-005"));
    let nx = r.findings.iter().find(|f| f.rule == "PCAP-006").expect("PCAP-006");
    assert_eq!(nx.title, "DNS NXDOMAIN for missing.example.lab");
}

#[test]
fn blocked_wireguard_port_leaves_initiations_unanswered() {
    for name in ["wg-blocked.pcap", "wg-blocked.pcapng"] {
        let r = analyze(name);
        assert_eq!((r.counts.wireguard_initiations, r.counts.wireguard_responses), (3, 0), "{name}");
        let f = r.findings.iter().find(|f| f.rule == "PCAP-008").expect("PCAP-008");
        assert_eq!(f.layer, Layer::Tunnel);
        assert!(f.title.starts_with("3 WireGuard handshake initiation(s) to 10.214.0.2:51820"), "{}", f.title);
    }
}

#[test]
fn frag_needed_and_packet_too_big_carry_the_mtu() {
    let r = analyze("mtu-frag-needed.pcap");
    assert_eq!(r.counts.icmp_too_big, 2);
    let titles: Vec<&str> = r.findings.iter().filter(|f| f.rule == "PCAP-004").map(|f| f.title.as_str()).collect();
    assert_eq!(
        titles,
        vec!["10.214.1.254 says packets are too big: MTU 1280", "fd14:1::fe says packets are too big: MTU 1280"]
    );
}

#[test]
fn ike_proposal_mismatch_and_blocked_ike() {
    let r = analyze("ike-no-proposal.pcap");
    assert_eq!(r.counts.ike_messages, 4);
    let notes: Vec<&str> = r.findings.iter().filter(|f| f.rule == "PCAP-010").map(|f| f.title.as_str()).collect();
    // Captured on the NAT router: the answer is seen before and after translation.
    assert_eq!(notes, vec!["IKE NO_PROPOSAL_CHOSEN (14) from 203.0.113.2:500"; 2]);
    assert!(!rules(&r).contains(&"PCAP-009"), "answered: not a retransmission problem");

    let r = analyze("ike-blocked.pcap");
    let f = r.findings.iter().find(|f| f.rule == "PCAP-009").expect("PCAP-009");
    assert_eq!(f.title, "IKE_SA_INIT to 203.0.113.2:500 retransmitted 2 times without answer");
    assert_eq!(f.evidence.len(), 3);
    assert_eq!(f.layer, Layer::Tunnel);
}

#[test]
fn zero_window_from_a_stalled_reader() {
    let r = analyze("tcp-zero-window.pcap");
    assert_eq!(r.counts.tcp_zero_windows, 3, "{:?}", r.counts);
    let f = r.findings.iter().find(|f| f.rule == "PCAP-012").expect("PCAP-012");
    assert_eq!(f.layer, Layer::Pod);
    assert!(f.title.starts_with("10.214.0.2:8080 advertised a zero receive window 3 time(s)"), "{}", f.title);
    assert!(matches!(f.evidence[0].location, Location::Packet { timestamp: Some(_), .. }));
}

#[test]
fn lossy_transfer_has_duplicate_acks_from_the_receiver() {
    let r = analyze("tcp-loss.pcap");
    assert_eq!(r.counts.tcp_duplicate_acks, 6);
    let f = r.findings.iter().find(|f| f.rule == "PCAP-011").expect("PCAP-011");
    assert!(f.title.starts_with("6 duplicate ACK(s) from 10.214.0.1:"), "{}", f.title);
}

#[test]
fn mtu_black_hole_is_inferred_without_icmp() {
    let r = analyze("tcp-mtu-blackhole.pcap");
    assert_eq!(r.counts.icmp_too_big, 0);
    let f = r.findings.iter().find(|f| f.rule == "PCAP-014").expect("PCAP-014");
    assert_eq!(f.layer, Layer::Overlay);
    assert!(f.title.starts_with("MTU black hole: 5 full-size segment(s) from 10.214.1.1:"), "{}", f.title);
    assert!(f.detail.contains("1500-byte IP packets"), "{}", f.detail);
    // The healthy transfer and the random-loss one are not black holes.
    for name in ["tcp-healthy.pcap", "tcp-loss.pcap", "tcp-zero-window.pcap"] {
        assert!(!rules(&analyze(name)).contains(&"PCAP-014"), "{name}");
    }
}

#[test]
fn packets_over_a_given_mtu_and_fragments() {
    let plain = analyze("mtu-frag-needed.pcap");
    assert!(!rules(&plain).contains(&"PCAP-013"));
    let options = netsleuth_capture::Options { mtu: Some(1280) };
    let r = netsleuth_capture::analyze_file_with(&fixture("mtu-frag-needed.pcap"), options).unwrap();
    let titles: Vec<&str> = r.findings.iter().filter(|f| f.rule == "PCAP-013").map(|f| f.title.as_str()).collect();
    assert_eq!(
        titles,
        vec![
            "1 packet(s) from 10.214.1.1 to 10.214.2.2 larger than the path MTU 1280",
            "1 packet(s) from fd14:1::1 to fd14:2::2 larger than the path MTU 1280"
        ]
    );
    let r = analyze("ip-fragments.pcap");
    assert_eq!(r.counts.ip_fragments, 21);
    let frags: Vec<&str> = r.findings.iter().filter(|f| f.rule == "PCAP-020").map(|f| f.title.as_str()).collect();
    assert_eq!(frags.len(), 4, "{frags:?}");
    assert_eq!(frags[0], "6 IP fragment(s) from 10.214.1.1 to 10.214.2.2 (protocol 1)");
    assert!(r.findings.iter().any(|f| f.rule == "PCAP-020" && f.detail.contains("of 2 datagram(s)")));
    // The IPv6 fragment already in flight when the packet-too-big came back is not "ignoring" it.
    assert!(!rules(&r).contains(&"PCAP-013"));
}

#[test]
fn search_list_chain_and_dns_over_tcp() {
    let r = analyze("dns-search-tcp.pcap");
    assert_eq!((r.counts.dns_queries, r.counts.dns_responses), (4, 4));
    // glibc with `use-vc` wrote A and AAAA in one segment: two messages.
    assert_eq!((r.counts.dns_tcp_queries, r.counts.dns_tcp_responses, r.counts.dns_tcp_skipped), (2, 2, 0));
    let f = r.findings.iter().find(|f| f.rule == "PCAP-015").expect("PCAP-015");
    assert_eq!(f.title, "Looking up api.example.lab took 4 DNS queries (3 NXDOMAIN from the search list)");
    assert!(f.detail.contains("api.example.lab.default.svc.cluster.local"), "{}", f.detail);
    assert_eq!(f.evidence.len(), 4);
    // The candidates' NXDOMAINs are part of the chain, not findings of their own; the AAAA
    // NXDOMAIN over TCP (dnsmasq's catch-all) is.
    let nx: Vec<&str> = r.findings.iter().filter(|f| f.rule == "PCAP-006").map(|f| f.title.as_str()).collect();
    assert_eq!(nx, vec!["DNS NXDOMAIN for api.example.lab"]);
    assert!(!rules(&r).contains(&"PCAP-005"));
}

#[test]
fn wireguard_one_way_data_and_cookie_replies() {
    let r = analyze("wg-oneway.pcap");
    assert_eq!((r.counts.wireguard_initiations, r.counts.wireguard_responses), (1, 1));
    let f = r.findings.iter().find(|f| f.rule == "PCAP-017").expect("PCAP-017");
    assert_eq!(f.title, "WireGuard data only one way: 5 packet(s) 10.214.0.1:51821 -> 10.214.0.2:51820, none back");
    assert!(!rules(&r).contains(&"PCAP-008"), "the handshake was answered");
    assert!(!rules(&analyze("wg-blocked.pcap")).contains(&"PCAP-017"));

    let r = analyze("wg-cookie.pcap");
    assert_eq!(r.counts.wireguard_cookie_replies, 12);
    let f = r.findings.iter().find(|f| f.rule == "PCAP-016").expect("PCAP-016");
    assert_eq!(f.title, "12 WireGuard cookie reply(ies) from 10.214.0.2:51820 (responder under load)");
    assert_eq!(f.evidence.len(), 5);
}

#[test]
fn ike_auth_unanswered_and_one_way_esp_in_udp() {
    let r = analyze("ike-auth-blocked.pcap");
    assert_eq!((r.counts.ike_sa_init, r.counts.ike_auth), (2, 4));
    let f = r.findings.iter().find(|f| f.rule == "PCAP-018").expect("PCAP-018");
    assert_eq!(f.title, "IKE_AUTH to 10.214.0.2:4500 retransmitted 3 times without answer");
    assert_eq!(f.evidence.len(), 4);
    assert!(!rules(&r).contains(&"PCAP-009"), "IKE_SA_INIT was answered");

    let r = analyze("esp-udp-oneway.pcap");
    assert_eq!((r.counts.esp_packets, r.counts.ike_messages), (5, 0));
    let f = r.findings.iter().find(|f| f.rule == "PCAP-019").expect("PCAP-019");
    assert_eq!(f.title, "ESP only one way: 5 packet(s) 10.214.0.1 -> 10.214.0.2, none back");
    assert!(f.detail.contains("(in UDP 4500)") && f.detail.contains("SPI 0x"), "{}", f.detail);
}

/// Runs tshark with a display filter (and optionally fields) and returns its output lines.
fn tshark_lines(file: &Path, filter: &str, fields: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(file).args(["-Y", filter]);
    if !fields.is_empty() {
        cmd.args(["-T", "fields"]);
        for f in fields {
            cmd.args(["-e", f]);
        }
    }
    run_tshark(cmd, file)
}

fn run_tshark(mut cmd: Command, file: &Path) -> Vec<String> {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tshark must be installed (apt-get install tshark) for the agreement test");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("tshark wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tshark timed out on {}", file.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("tshark output");
    assert!(out.status.success(), "tshark failed on {}", file.display());
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// Counts the packets matching each display filter, in one tshark pass (`-z io,stat`).
fn tshark_counts(file: &Path, filters: &[&str]) -> Vec<u64> {
    let spec = format!("io,stat,0,{}", filters.join(","));
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-q", "-r"]).arg(file).args(["-z", &spec]);
    let out = run_tshark(cmd, file);
    // The one interval row: `| 0.000 <> 1.234 | frames | bytes | frames | bytes ...`.
    let row = out.iter().find(|l| l.contains("<>")).unwrap_or_else(|| panic!("no io,stat row for {}", file.display()));
    let cells: Vec<u64> = row.split('|').skip(2).filter_map(|c| c.trim().parse().ok()).collect();
    let frames: Vec<u64> = cells.iter().step_by(2).copied().collect();
    assert_eq!(frames.len(), filters.len(), "{row}");
    frames
}

/// Counts the values of `field` (several per packet when a frame holds several PDUs).
fn tshark_values(file: &Path, filter: &str, field: &str, value: &str) -> u64 {
    tshark_lines(file, filter, &[field]).iter().flat_map(|l| l.split(',')).filter(|v| *v == value).count() as u64
}

#[test]
fn counts_agree_with_tshark() {
    for name in FIXTURES {
        let path = fixture(name);
        let r = analyze(name);
        let c = &r.counts;
        let pairs = [
            ("tcp.analysis.retransmission", c.tcp_retransmissions),
            ("tcp.analysis.duplicate_ack", c.tcp_duplicate_acks),
            ("tcp.analysis.zero_window", c.tcp_zero_windows),
            ("dns.flags.response == 0 && udp.port == 53", c.dns_queries),
            ("dns.flags.response == 1 && udp.port == 53", c.dns_responses),
            ("(icmp.type == 3 && icmp.code == 4) || icmpv6.type == 2", c.icmp_too_big),
            ("wg.type == 1", c.wireguard_initiations),
            ("wg.type == 2", c.wireguard_responses),
            ("wg.type == 3", c.wireguard_cookie_replies),
            ("wg.type == 4", c.wireguard_transport),
            ("isakmp", c.ike_messages),
            ("isakmp.exchangetype == 34", c.ike_sa_init),
            ("isakmp.exchangetype == 35", c.ike_auth),
            ("esp", c.esp_packets),
            // ICMP errors quote fragments; tshark matches the quoted header, netsleuth does not count them.
            (
                "(ip.flags.mf == 1 || ip.frag_offset > 0 || ipv6.fraghdr) && !(icmp.type == 3 || icmpv6.type == 2)",
                c.ip_fragments,
            ),
        ];
        let filters: Vec<&str> = pairs.iter().map(|(f, _)| *f).chain(["frame"]).collect();
        let theirs = tshark_counts(&path, &filters);
        for ((filter, ours), theirs) in pairs.iter().zip(&theirs) {
            assert_eq!(ours, theirs, "{name}: {filter}");
        }
        assert_eq!(Some(&c.packets), theirs.last(), "{name}: packets");
        let dns_tcp = "dns && tcp.port == 53";
        assert_eq!(c.dns_tcp_queries, tshark_values(&path, dns_tcp, "dns.flags.response", "0"), "{name}: TCP queries");
        assert_eq!(
            c.dns_tcp_responses,
            tshark_values(&path, dns_tcp, "dns.flags.response", "1"),
            "{name}: TCP answers"
        );
    }
}

#[test]
fn a_cut_real_capture_reports_where_it_stops() {
    let bytes = std::fs::read(fixture("tcp-healthy.pcap")).unwrap();
    // Cut in the middle of the file: inside some record, never at a boundary by chance
    // (checked below through the packet count).
    let cut = &bytes[..bytes.len() / 2 + 3];
    let r = netsleuth_capture::analyze_reader("cut.pcap", cut);
    let issue = r.stats.issue.clone().expect("a read issue");
    assert_eq!(issue.kind, netsleuth_capture::reader::IssueKind::Truncated);
    assert_eq!(issue.after_packet, r.stats.packets);
    assert!(r.stats.packets > 10 && r.stats.packets < analyze("tcp-healthy.pcap").stats.packets);
    let f = r.findings.iter().find(|f| f.rule == "PCAP-001" && f.subject.ends_with("/read")).expect("PCAP-001");
    assert_eq!(f.severity, netsleuth_model::Severity::High);
    assert!(matches!(f.evidence[0].location, Location::Packet { number, .. } if number == r.stats.packets));
}
