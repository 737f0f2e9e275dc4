//! The catalog of causes the diagnose engine itself names (`DIAG-LOCAL/GW/HOP/TUN/TCP/UDP/
//! HTTP/LOSS-*`), each with its layer, title and generic fix, for `explain` and the docs.

use netsleuth_model::{Confidence, Evidence, Finding, Layer, Location, Severity};

/// One cause of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cause {
    pub id: &'static str,
    pub layer: Layer,
    pub severity: Severity,
    pub title: &'static str,
    /// What the probe observed that names this cause.
    pub observed: &'static str,
    pub fix: &'static str,
}

const fn c(
    id: &'static str,
    layer: Layer,
    severity: Severity,
    title: &'static str,
    observed: &'static str,
    fix: &'static str,
) -> Cause {
    Cause { id, layer, severity, title, observed, fix }
}

use Layer::{Cloud, Node, Policy, Remote, Tunnel};
use Severity::{High, Medium};

static CATALOG: &[Cause] = &[
    c(
        "DIAG-LOCAL-001",
        Node,
        High,
        "no route to the target on this host",
        "`ip route get TARGET` fails (network unreachable, or an unreachable/blackhole/prohibit route)",
        "add a route to the target's prefix (or a default route) on this host",
    ),
    c(
        "DIAG-LOCAL-002",
        Policy,
        High,
        "this host's firewall refuses to send to the target",
        "sending fails locally with EPERM/EACCES: an output rule rejects or drops the packet",
        "allow the traffic in the local output chain (nft/iptables)",
    ),
    c(
        "DIAG-LOCAL-003",
        Node,
        High,
        "the target name does not resolve",
        "the system resolver returns no address for the name",
        "fix DNS for the name (check resolv.conf, the resolvers and the record)",
    ),
    c(
        "DIAG-GW-001",
        Node,
        High,
        "the next hop does not answer ARP/neighbour discovery",
        "the neighbour entry of the next hop is FAILED/INCOMPLETE after probing it",
        "check the gateway address of the route, the link (ip link) and the gateway's interface",
    ),
    c(
        "DIAG-GW-002",
        Node,
        High,
        "the next hop drops everything sent through it",
        "the first hop neither answers nor forwards: no reply to TTL-limited probes at hop 1",
        "check the first router: forwarding (net.ipv4.ip_forward), its firewall forward chain, its routes",
    ),
    c(
        "DIAG-HOP-001",
        Remote,
        High,
        "traffic is dropped silently after a hop of the path",
        "TTL-limited probes are answered up to hop N, nothing comes back from beyond it and no ICMP error",
        "inspect the router at hop N and the link after it: its firewall, its routes, the tunnel it sends into",
    ),
    c(
        "DIAG-HOP-002",
        Remote,
        High,
        "a router on the path has no route to the target or does not forward",
        "a router answers ICMP network/host unreachable for the target",
        "add the missing route on that router, or enable forwarding (net.ipv4.ip_forward=1)",
    ),
    c(
        "DIAG-HOP-003",
        Policy,
        High,
        "a firewall on the path rejects the traffic",
        "ICMP communication administratively prohibited comes back",
        "allow the traffic in the rejecting firewall (the ICMP source names it)",
    ),
    c(
        "DIAG-TUN-001",
        Tunnel,
        High,
        "the WireGuard peer for the target has no current handshake",
        "the peer whose AllowedIPs match the target has no handshake, or one older than 180 s",
        "check the peer's endpoint and that UDP to its listen port passes; check both public keys",
    ),
    c(
        "DIAG-TUN-002",
        Tunnel,
        High,
        "no WireGuard peer's AllowedIPs cover the target",
        "the route sends the target into a WireGuard interface, but no peer's AllowedIPs contains it",
        "add the target's prefix to the right peer's AllowedIPs (wg set IF peer KEY allowed-ips ...)",
    ),
    c(
        "DIAG-TUN-003",
        Tunnel,
        High,
        "the WireGuard peer sends but receives nothing",
        "the peer's tx counter grows while probing, its rx counter does not",
        "the remote end does not answer: check its AllowedIPs, routes, and the underlay between the peers",
    ),
    c(
        "DIAG-TUN-004",
        Tunnel,
        High,
        "no installed IPsec CHILD_SA covers source and destination",
        "swanctl --list-sas shows no INSTALLED child SA whose selectors contain both addresses",
        "bring the CHILD_SA up (swanctl --initiate) and check the charon log for why it fails",
    ),
    c(
        "DIAG-FWD-001",
        Policy,
        High,
        "this router's forward chain drops by default",
        "diagnose runs on a host that routes the target: a forward-hook chain (nftables or iptables) has policy drop, so forwarded traffic no rule accepts is dropped",
        "accept the forwarded traffic (the clients' prefixes to the target) in that chain, or set its policy to accept",
    ),
    c(
        "DIAG-FWD-002",
        Node,
        High,
        "this router limits tracked connections and drops new ones",
        "diagnose runs on a host that routes the target: a forward rule drops new connections above a conntrack count (`ct count over N drop`) and its counter shows drops",
        "raise the limit (or nf_conntrack_max), shorten conntrack timeouts, or find what opens so many flows",
    ),
    c(
        "DIAG-FWD-003",
        Policy,
        High,
        "this router's forward chain drops the target's port",
        "diagnose runs on a host that routes the target: a forward rule drops the target's port (or DNS, port 53, for a name target) and its counter shows drops",
        "allow the port for the clients behind this router in that forward chain",
    ),
    c(
        "DIAG-TCP-001",
        Remote,
        High,
        "nothing listens on the target's TCP port",
        "the TCP connect is refused (RST) by the target",
        "start the service or use the port it listens on",
    ),
    c(
        "DIAG-TCP-002",
        Policy,
        High,
        "TCP to the port is dropped silently while the target is reachable",
        "the target answers ICMP echo, but SYNs to the port get no answer",
        "a firewall/NetworkPolicy drops this port: allow it",
    ),
    c(
        "DIAG-TCP-003",
        Remote,
        High,
        "TCP connections to the target time out",
        "SYNs get no answer and the path probes could not localise the drop",
        "check the firewalls and routes between this host and the target",
    ),
    c(
        "DIAG-UDP-001",
        Remote,
        High,
        "nothing listens on the target's UDP port",
        "the UDP request is answered by ICMP port unreachable",
        "start the service or use the port it listens on",
    ),
    c(
        "DIAG-UDP-002",
        Remote,
        High,
        "UDP requests to the target get no response",
        "no UDP reply and no ICMP error within the time limit",
        "check the service, and firewalls between this host and the target (UDP is dropped silently)",
    ),
    c(
        "DIAG-HTTP-001",
        Remote,
        High,
        "the HTTP server accepts the connection but never answers",
        "TCP connects, the request gets no response within the time limit",
        "check the server application; a response bigger than the path MTU stalling is typical of MTU problems",
    ),
    c(
        "DIAG-HTTP-002",
        Remote,
        Medium,
        "the HTTP server answers with an error",
        "the response status is 5xx",
        "check the server application and its upstreams",
    ),
    c(
        "DIAG-LOSS-001",
        Cloud,
        Medium,
        "packet loss on the path",
        "a share of repeated probes is lost (loss %, by probe)",
        "find the lossy link: repeat with --samples on each hop; check underlay links, policers and NIC errors",
    ),
    c(
        "DIAG-LOSS-002",
        Cloud,
        Medium,
        "TCP connections are delayed by lost SYNs",
        "connect times of about 1 s / 3 s: the first SYN (or SYN-ACK) was lost and retransmitted",
        "find the lossy link (see DIAG-LOSS-001)",
    ),
    c(
        "DIAG-LOSS-003",
        Node,
        Medium,
        "the first connection after idle fails",
        "with --samples, the first attempt fails and later ones succeed",
        "an idle timer expires: NAT/conntrack/IPVS mapping or a tunnel session; set keepalives shorter than the timer",
    ),
    c("DIAG-LOSS-004", Layer::Dns, Medium, "DNS replies are lost intermittently",
      "with --samples, some queries to the nameserver get no reply while others answer at once",
      "each lost reply costs a lookup the resolver timeout (~5 s): options single-request-reopen, NodeLocal DNSCache, or find the loss (conntrack insert races on DNAT)"),
];

/// Every cause of the catalog.
pub fn catalog() -> &'static [Cause] {
    CATALOG
}

/// The cause with this id.
pub fn find(id: &str) -> Option<&'static Cause> {
    CATALOG.iter().find(|c| c.id.eq_ignore_ascii_case(id))
}

/// A finding for cause `id` (which must be in the catalog; an unknown id still gives a
/// finding with the id, so a typo cannot hide a cause).
pub(crate) fn finding(
    id: &str,
    subject: impl Into<String>,
    title: impl Into<String>,
    detail: impl Into<String>,
    probe: &str,
    evidence: &[String],
    confidence: Confidence,
) -> Finding {
    let cause = find(id);
    Finding {
        rule: id.to_string(),
        severity: cause.map_or(Severity::High, |c| c.severity),
        layer: cause.map_or(Layer::Remote, |c| c.layer),
        subject: subject.into(),
        title: title.into(),
        detail: detail.into(),
        evidence: evidence
            .iter()
            .map(|e| Evidence::new(Location::Probe { probe: probe.to_string() }, e.clone()))
            .collect(),
        fix: cause.map_or(String::new(), |c| c.fix.to_string()),
        confidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_well_formed() {
        let mut ids: Vec<&str> = catalog().iter().map(|c| c.id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "unique ids");
        for c in catalog() {
            let (pre, num) = c.id.rsplit_once('-').expect("DIAG-X-NNN");
            assert!(pre.starts_with("DIAG-") && num.len() == 3, "{}", c.id);
            assert!(!c.title.is_empty() && !c.fix.is_empty() && !c.observed.is_empty(), "{}", c.id);
            assert!(!pre.starts_with("DIAG-DNS") && !pre.starts_with("DIAG-MTU"), "owned by the dns/pmtu probes");
        }
        assert_eq!(find("diag-tcp-001").map(|c| c.layer), Some(Layer::Remote));
        let f = finding("DIAG-TUN-002", "s", "t", "d", "tunnel", &["e".into()], Confidence::Confirmed);
        assert_eq!(f.layer, Layer::Tunnel);
        assert!(f.fix.contains("allowed-ips"));
    }
}
