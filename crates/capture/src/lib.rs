//! Capture analysis: streams pcap/pcapng files (plain or gzip) and turns what the packets
//! show (retransmissions, lost DNS answers, unanswered tunnel handshakes) into findings.
// Denied, not forbidden: `flowlogs::table::prefetch` is the one exception, argued there.
#![deny(unsafe_code)]

pub mod analyze;
mod classic;
pub mod flowlogs;
mod readahead;
pub mod reader;
pub mod wire;

use std::path::Path;

use netsleuth_model::{Finding, Layer, Severity};

pub use analyze::{Analyzer, Counts, FlowSummary, Options};
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
    CaptureRule {
        id: "PCAP-011",
        layer: Layer::Node,
        severity: Severity::Low,
        title: "TCP duplicate ACKs",
        rationale: "A receiver repeating the same ACK is missing a segment: loss or reordering on the path \
                    (three in a row trigger a fast retransmit).",
        fix: "Look for the loss: interface drops (`ip -s link`), a congested or lossy underlay, ECMP reordering.",
    },
    CaptureRule {
        id: "PCAP-012",
        layer: Layer::Pod,
        severity: Severity::Medium,
        title: "TCP zero window",
        rationale: "The receiver's socket buffer is full: its application does not read fast enough. \
                    Slowness that looks like the network but is the application.",
        fix: "Profile the receiving application (slow consumer, blocked thread); raise its CPU limits; \
              check `ss -tmi` for the receive queue.",
    },
    CaptureRule {
        id: "PCAP-013",
        layer: Layer::Overlay,
        severity: Severity::High,
        title: "Packets larger than the path MTU",
        rationale: "Don't-fragment packets over the path MTU (given with --mtu, or announced by an ICMP \
                    too-big message in the capture) are dropped by the router before the small link.",
        fix: "Lower the sender's interface or route MTU (`ip route change ... mtu N`), or clamp the TCP MSS to \
              the path MTU; make sure ICMP too-big reaches the sender.",
    },
    CaptureRule {
        id: "PCAP-014",
        layer: Layer::Overlay,
        severity: Severity::High,
        title: "MTU black hole (full-size segments retransmitted, no ICMP too-big)",
        rationale: "Small packets pass but full-size TCP segments are lost again and again and no ICMP \
                    fragmentation-needed comes back: path MTU discovery is broken by an ICMP filter, \
                    so connections hang after the handshake.",
        fix: "Allow ICMP type 3 code 4 / ICMPv6 type 2 back to the sender, or clamp MSS: \
              `iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu`; \
              `sysctl net.ipv4.tcp_mtu_probing=1` lets Linux senders recover.",
    },
    CaptureRule {
        id: "PCAP-015",
        layer: Layer::Dns,
        severity: Severity::Low,
        title: "DNS search-list expansion (NXDOMAIN chain before the answer)",
        rationale: "With `ndots:5` (Kubernetes default) an external name is first tried with every search \
                    suffix; each NXDOMAIN adds a round trip and load on CoreDNS.",
        fix: "Use fully qualified names with a trailing dot, set `dnsConfig.options ndots: \"2\"` on the pod, \
              or enable CoreDNS `autopath`.",
    },
    CaptureRule {
        id: "PCAP-016",
        layer: Layer::Tunnel,
        severity: Severity::Medium,
        title: "WireGuard cookie replies (responder under load)",
        rationale: "A WireGuard responder answers initiations with cookie replies when it is under load: \
                    handshakes are delayed, often by a flood of initiations.",
        fix: "Find who floods the responder with initiations (`wg show` latest handshakes, many peers \
              re-keying at once, a scan); rate-limit UDP to the listen port.",
    },
    CaptureRule {
        id: "PCAP-017",
        layer: Layer::Tunnel,
        severity: Severity::High,
        title: "WireGuard data in one direction only",
        rationale: "Transport data goes to the peer but nothing comes back: the handshake works, so the peer \
                    drops what it decrypts (allowed-ips) or has no route back.",
        fix: "Check the peer's `allowed-ips` for this side's inner addresses and its route back into the tunnel.",
    },
    CaptureRule {
        id: "PCAP-018",
        layer: Layer::Tunnel,
        severity: Severity::High,
        title: "IKE_AUTH retransmitted without answer",
        rationale: "IKE_SA_INIT succeeded but the large IKE_AUTH never gets an answer: its fragments are \
                    dropped or UDP 4500 (NAT-T) is blocked.",
        fix: "Enable IKE fragmentation (`fragmentation = yes` in swanctl.conf), allow UDP 4500 and IP fragments \
              between the gateways.",
    },
    CaptureRule {
        id: "PCAP-019",
        layer: Layer::Tunnel,
        severity: Severity::High,
        title: "ESP in one direction only",
        rationale: "ESP with an SPI goes one way and nothing comes back: the return direction is filtered \
                    (protocol 50 / UDP 4500), misrouted, or the peer lacks the inbound SA.",
        fix: "Allow ESP (IP protocol 50) and UDP 4500 both ways; compare `ip xfrm state` SPIs on both gateways.",
    },
    CaptureRule {
        id: "PCAP-020",
        layer: Layer::Overlay,
        severity: Severity::Medium,
        title: "IP fragmentation",
        rationale: "Packets larger than the path MTU are fragmented; fragments are dropped by firewalls, NAT and \
                    load balancers and lose the whole datagram when one is lost.",
        fix: "Make the sender's MTU fit the path (overlay MTU = underlay MTU minus encapsulation) so nothing \
              needs fragmenting.",
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

/// Reads and analyses one capture from any reader; `name` is how findings name it. The
/// reader is read on a second thread (hence `Send`; for stdin use `std::io::stdin()`).
pub fn analyze_reader(name: &str, input: impl std::io::Read + Send) -> CaptureReport {
    analyze_reader_with(name, input, Options::default())
}

/// [`analyze_reader`] with analysis options (path MTU).
pub fn analyze_reader_with(name: &str, input: impl std::io::Read + Send, options: Options) -> CaptureReport {
    let mut analyzer = Analyzer::with_options(name, options);
    let stats = reader::read_packets(input, &mut |p| analyzer.packet(p));
    // The flow table (formatted and sorted) and the findings are independent: build them on
    // two cores, as reading did.
    let (findings, flows) = std::thread::scope(|scope| {
        let analyzer = &analyzer;
        let flows = std::thread::Builder::new().name("pcap-flows".to_string()).spawn_scoped(scope, || analyzer.flows());
        let findings = analyzer.findings(&stats);
        let flows = match flows.map(|h| h.join()) {
            Ok(Ok(flows)) => flows,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            // No thread to be had: build it here.
            Err(_) => analyzer.flows(),
        };
        (findings, flows)
    });
    CaptureReport { findings, counts: analyzer.counts().clone(), flows, stats }
}

/// Reads and analyses one capture file (streamed, never loaded whole).
pub fn analyze_file(path: &Path) -> std::io::Result<CaptureReport> {
    analyze_file_with(path, Options::default())
}

/// [`analyze_file`] with analysis options (path MTU).
pub fn analyze_file_with(path: &Path, options: Options) -> std::io::Result<CaptureReport> {
    let file = std::fs::File::open(path)?;
    Ok(analyze_reader_with(&path.display().to_string(), file, options))
}
