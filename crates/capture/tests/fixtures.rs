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

const FIXTURES: [&str; 10] = [
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

/// Runs tshark with a display filter and counts the matching packets.
fn tshark_count(file: &Path, filter: &str) -> u64 {
    let mut child = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(file)
        .args(["-Y", filter])
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
    String::from_utf8_lossy(&out.stdout).lines().count() as u64
}

#[test]
fn counts_agree_with_tshark() {
    for name in FIXTURES {
        let path = fixture(name);
        let r = analyze(name);
        let c = &r.counts;
        let pairs = [
            ("tcp.analysis.retransmission", c.tcp_retransmissions),
            ("dns.flags.response == 0 && udp.port == 53", c.dns_queries),
            ("dns.flags.response == 1 && udp.port == 53", c.dns_responses),
            ("(icmp.type == 3 && icmp.code == 4) || icmpv6.type == 2", c.icmp_too_big),
            ("wg.type == 1", c.wireguard_initiations),
            ("isakmp", c.ike_messages),
        ];
        for (filter, ours) in pairs {
            assert_eq!(ours, tshark_count(&path, filter), "{name}: {filter}");
        }
        assert_eq!(c.packets, tshark_count(&path, "frame"), "{name}: packets");
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
