//! Capture analysis: streams pcap/pcapng files (plain or gzip) and turns what the packets
//! show (retransmissions, lost DNS answers, unanswered tunnel handshakes) into findings.
#![forbid(unsafe_code)]

pub mod analyze;
pub mod flowlogs;
pub mod reader;
pub mod wire;

use std::path::Path;

use netsleuth_model::{Finding, Layer, Severity};

pub use analyze::{Analyzer, Counts, FlowSummary};
pub use reader::ReadStats;

/// One capture rule: what the catalog shows about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureRule {
    pub id: &'static str,
    pub layer: Layer,
    pub severity: Severity,
    pub title: &'static str,
    pub rationale: &'static str,
    pub fix: &'static str,
}

/// The capture rules, in id order.
pub const RULES: &[CaptureRule] = &[
    CaptureRule {
        id: "PCAP-001",
        layer: Layer::Ingest,
        severity: Severity::Medium,
        title: "Capture file problem (truncated, not a capture, undecodable or snaplen-cut packets)",
        rationale: "Counts from a damaged or cut capture undercount; the finding says where reading stopped.",
        fix: "Capture again with `tcpdump -w FILE` stopped cleanly (Ctrl-C or -c), or accept partial results.",
    },
    CaptureRule {
        id: "PCAP-002",
        layer: Layer::Node,
        severity: Severity::Medium,
        title: "TCP retransmissions on a flow",
        rationale: "Retransmitted segments mean loss on the path: congestion, a lossy underlay, or an MTU problem.",
        fix: "Find where packets are dropped: `ip -s link`, `nstat -az | grep -i retrans`, capture on both ends.",
    },
    CaptureRule {
        id: "PCAP-003",
        layer: Layer::Policy,
        severity: Severity::Medium,
        title: "TCP SYN without SYN-ACK",
        rationale: "A connection attempt nobody answered: a firewall or network policy drops it, or nothing listens.",
        fix: "Check NetworkPolicies, security groups and nftables rules for the destination port.",
    },
    CaptureRule {
        id: "PCAP-004",
        layer: Layer::Overlay,
        severity: Severity::High,
        title: "ICMP fragmentation needed / packet too big",
        rationale: "A router cannot forward packets this large; if the sender ignores it, large transfers stall.",
        fix: "Lower the MTU of the tunnel/overlay interface or clamp MSS: \
              `iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu`.",
    },
    CaptureRule {
        id: "PCAP-005",
        layer: Layer::Dns,
        severity: Severity::High,
        title: "DNS queries without answer",
        rationale: "The resolver did not answer: it is down, unreachable, or its replies are dropped.",
        fix: "Check the DNS server (CoreDNS pods, dnsmasq) and UDP 53 reachability from the client.",
    },
    CaptureRule {
        id: "PCAP-006",
        layer: Layer::Dns,
        severity: Severity::Medium,
        title: "DNS error rcode (NXDOMAIN, SERVFAIL, REFUSED)",
        rationale: "The name does not exist or the server failed to resolve it.",
        fix: "Check the name and the search list; SERVFAIL: check the upstream resolvers.",
    },
    CaptureRule {
        id: "PCAP-007",
        layer: Layer::Dns,
        severity: Severity::Medium,
        title: "DNS query retried after the 5-second timeout",
        rationale: "A lost DNS answer costs 5 s (resolv.conf default timeout); with A and AAAA on one socket, \
                    the conntrack race loses one of them.",
        fix: "Use `options single-request-reopen` or NodeLocal DNSCache; find why answers are lost.",
    },
    CaptureRule {
        id: "PCAP-008",
        layer: Layer::Tunnel,
        severity: Severity::High,
        title: "WireGuard handshake initiations without response",
        rationale: "The peer never answers: its UDP port is blocked, the endpoint is wrong, or keys do not match.",
        fix: "Open the peer's UDP listen port; check `wg show` endpoint and public keys on both sides.",
    },
    CaptureRule {
        id: "PCAP-009",
        layer: Layer::Tunnel,
        severity: Severity::High,
        title: "IKE_SA_INIT retransmitted without answer",
        rationale: "The IKE responder never answers: UDP 500/4500 blocked or charon not listening.",
        fix: "Allow UDP 500 and 4500 between the gateways; check `swanctl --list-conns` on the responder.",
    },
    CaptureRule {
        id: "PCAP-010",
        layer: Layer::Tunnel,
        severity: Severity::High,
        title: "IKE error notify (NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD, ...)",
        rationale: "The peers disagree on proposals, key exchange group, traffic selectors or authentication.",
        fix: "Align `proposals`/`esp_proposals`, `local_ts`/`remote_ts` and credentials in swanctl.conf on both sides.",
    },
];

/// The catalog entry of a rule id.
pub fn rule(id: &str) -> Option<&'static CaptureRule> {
    RULES.iter().find(|r| r.id == id)
}

/// Everything learned from one capture file.
#[derive(Debug, Clone)]
pub struct CaptureReport {
    pub stats: ReadStats,
    pub counts: Counts,
    pub findings: Vec<Finding>,
    pub flows: Vec<FlowSummary>,
}

/// Reads and analyses one capture from any reader; `name` is how findings name it.
pub fn analyze_reader(name: &str, input: impl std::io::Read) -> CaptureReport {
    let mut analyzer = Analyzer::new(name);
    let stats = reader::read_packets(input, &mut |p| analyzer.packet(p));
    CaptureReport {
        findings: analyzer.findings(&stats),
        counts: analyzer.counts().clone(),
        flows: analyzer.flows(),
        stats,
    }
}

/// Reads and analyses one capture file (streamed, never loaded whole).
pub fn analyze_file(path: &Path) -> std::io::Result<CaptureReport> {
    let file = std::fs::File::open(path)?;
    Ok(analyze_reader(&path.display().to_string(), std::io::BufReader::with_capacity(1 << 16, file)))
}
