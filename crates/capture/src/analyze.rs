//! Per-capture state machines (TCP flows, DNS transactions, WireGuard and IKE handshakes,
//! ICMP too-big messages) fed packet by packet, and the findings they add up to.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use netsleuth_model::{Confidence, Evidence, Finding, Layer, Location, Severity};
use serde::Serialize;

use crate::reader::{RawPacket, ReadStats};
use crate::wire::{be16, be32, decode_link, linktype, tcp_flags, IpPacket, TcpSegment, UdpDatagram};

/// Seconds under which a segment that goes back in sequence space counts as out-of-order
/// rather than retransmitted (Wireshark's default when no RTT is known is 3 ms).
const OOO_THRESHOLD: f64 = 0.003;
/// How many example packets a finding lists as evidence.
const MAX_EVIDENCE: usize = 5;
/// Flows (TCP or UDP) tracked per capture; beyond this new flows are only counted, so a
/// scan or flood cannot exhaust memory.
const MAX_FLOWS: usize = 1_000_000;
/// VXLAN UDP ports: IANA and the Linux kernel default (flannel).
const VXLAN_PORTS: [u16; 2] = [4789, 8472];

/// One endpoint.
type Endpoint = (IpAddr, u16);

/// A packet reference kept for evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    number: u64,
    timestamp: String,
    time_nanos: u128,
}

impl Seen {
    fn of(p: &RawPacket<'_>) -> Seen {
        Seen {
            number: p.number,
            timestamp: p.timestamp(),
            time_nanos: u128::from(p.ts_sec) * 1_000_000_000 + u128::from(p.ts_nanos),
        }
    }

    fn secs_since(&self, earlier: &Seen) -> f64 {
        self.time_nanos.saturating_sub(earlier.time_nanos) as f64 / 1e9
    }
}

/// How often something was seen, and the first few packets as evidence (memory stays
/// bounded however many there are).
#[derive(Debug, Default, Clone)]
struct Examples {
    count: u64,
    first: Vec<Seen>,
}

impl Examples {
    fn push(&mut self, seen: Seen) {
        self.count += 1;
        if self.first.len() < MAX_EVIDENCE {
            self.first.push(seen);
        }
    }
}

/// One direction of a TCP connection.
#[derive(Debug, Default, Clone)]
struct TcpDir {
    /// Next expected sequence number (highest seq + len seen), once known.
    next_seq: Option<u32>,
    last_time: Option<u128>,
    packets: u64,
    bytes: u64,
    mss: Option<u16>,
    window_scale: Option<u8>,
}

#[derive(Debug, Default, Clone)]
struct TcpFlow {
    /// Index 0: the side that sent the first packet seen (the SYN when it was captured).
    dirs: [TcpDir; 2],
    syn: Option<Seen>,
    syn_ack: Option<Seen>,
    retrans: Examples,
    resets: u64,
    vxlan: bool,
}

#[derive(Debug, Clone)]
struct DnsQuery {
    seen: Seen,
    name: String,
    qtype: u16,
    answered: bool,
}

/// Per-flow summary row (`--flows`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowSummary {
    pub protocol: &'static str,
    pub client: String,
    pub server: String,
    pub packets: u64,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retransmissions: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake_rtt_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mss: Option<u16>,
    /// Seen inside a VXLAN tunnel.
    pub vxlan: bool,
}

/// Counts comparable with tshark display filters on the same file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub packets: u64,
    /// `tcp.analysis.retransmission`
    pub tcp_retransmissions: u64,
    /// `dns.flags.response == 0` (UDP port 53)
    pub dns_queries: u64,
    /// `dns.flags.response == 1` (UDP port 53)
    pub dns_responses: u64,
    /// `(icmp.type == 3 && icmp.code == 4) || icmpv6.type == 2`
    pub icmp_too_big: u64,
    pub wireguard_initiations: u64,
    pub wireguard_responses: u64,
    pub ike_messages: u64,
    pub vxlan_packets: u64,
    /// Frames of a link type or header this reader cannot decode.
    pub undecodable: u64,
    /// Packets of flows beyond the tracking limit (not analysed per flow).
    pub untracked: u64,
}

/// The capture analyser: feed it packets of one file, then take the findings.
#[derive(Debug)]
pub struct Analyzer {
    path: String,
    counts: Counts,
    tcp: HashMap<(Endpoint, Endpoint), TcpFlow>,
    udp: BTreeMap<(Endpoint, Endpoint), (u64, u64, bool)>,
    /// DNS queries by (client, server, id), all attempts.
    dns: HashMap<(Endpoint, Endpoint, u16), Vec<DnsQuery>>,
    dns_rcodes: BTreeMap<(u8, String), Vec<Seen>>,
    /// WireGuard initiations by (initiator, responder) with their sender indexes.
    wg_init: BTreeMap<(Endpoint, Endpoint), Vec<(u32, Seen)>>,
    wg_answered: std::collections::HashSet<u32>,
    /// IKE_SA_INIT requests by (initiator, responder, SPIi).
    ike_init: BTreeMap<(Endpoint, Endpoint, u64), Vec<Seen>>,
    ike_answered: std::collections::HashSet<u64>,
    ike_notify: BTreeMap<(u16, Endpoint, Endpoint), Vec<Seen>>,
    too_big: BTreeMap<(IpAddr, u32, String), Vec<Seen>>,
    undecodable: BTreeMap<String, Examples>,
}

impl Analyzer {
    /// `path` is how findings name the capture file.
    pub fn new(path: impl Into<String>) -> Analyzer {
        Analyzer {
            path: path.into(),
            counts: Counts::default(),
            tcp: HashMap::new(),
            udp: BTreeMap::new(),
            dns: HashMap::new(),
            dns_rcodes: BTreeMap::new(),
            wg_init: BTreeMap::new(),
            wg_answered: Default::default(),
            ike_init: BTreeMap::new(),
            ike_answered: Default::default(),
            ike_notify: BTreeMap::new(),
            too_big: BTreeMap::new(),
            undecodable: BTreeMap::new(),
        }
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Analyses one captured frame.
    pub fn packet(&mut self, p: &RawPacket<'_>) {
        self.counts.packets += 1;
        match decode_link(p.linktype, p.data) {
            Ok(Some(ip)) => self.ip(p, &ip, false),
            Ok(None) => {}
            Err(e) => self.undecodable(p, e.to_string()),
        }
    }

    fn undecodable(&mut self, p: &RawPacket<'_>, why: String) {
        // A header cut by the snap length is expected with `tcpdump -s`, not corruption.
        if p.data.len() as u64 >= u64::from(p.orig_len) {
            self.counts.undecodable += 1;
            self.undecodable.entry(why).or_default().push(Seen::of(p));
        }
    }

    fn ip(&mut self, p: &RawPacket<'_>, ip: &IpPacket<'_>, inner: bool) {
        if ip.later_fragment {
            return;
        }
        match ip.proto {
            6 => match TcpSegment::new_checked(ip.payload, ip.l4_len) {
                Ok(t) => self.tcp(p, ip, &t, inner),
                Err(e) => self.undecodable(p, e.to_string()),
            },
            17 => match UdpDatagram::new_checked(ip.payload) {
                Ok(u) => self.udp(p, ip, &u, inner),
                Err(e) => self.undecodable(p, e.to_string()),
            },
            1 => self.icmp_too_big(p, ip.payload, false, ip.src),
            58 => self.icmp_too_big(p, ip.payload, true, ip.src),
            _ => {}
        }
    }

    fn tcp(&mut self, p: &RawPacket<'_>, ip: &IpPacket<'_>, t: &TcpSegment<'_>, inner: bool) {
        let (src, dst) = ((ip.src, t.src_port), (ip.dst, t.dst_port));
        let (key, forward) = if self.tcp.contains_key(&(dst, src)) { ((dst, src), false) } else { ((src, dst), true) };
        if self.tcp.len() >= MAX_FLOWS && !self.tcp.contains_key(&key) {
            self.counts.untracked += 1;
            return;
        }
        let flow = self.tcp.entry(key).or_default();
        flow.vxlan |= inner;
        let seen = Seen::of(p);
        let (syn, ack, fin) = (t.has(tcp_flags::SYN), t.has(tcp_flags::ACK), t.has(tcp_flags::FIN));
        if t.has(tcp_flags::RST) {
            flow.resets += 1;
        }
        if syn && !ack && flow.syn.is_none() {
            flow.syn = Some(seen.clone());
        }
        if syn && ack && flow.syn_ack.is_none() {
            flow.syn_ack = Some(seen.clone());
        }
        let dir = &mut flow.dirs[usize::from(!forward)];
        dir.packets += 1;
        dir.bytes += ip.total_len as u64;
        if syn {
            dir.mss = dir.mss.or(t.mss);
            dir.window_scale = dir.window_scale.or(t.window_scale);
        }
        // Sequence space: SYN and FIN take one number each (RFC 9293).
        let seglen = t.payload_len as u32 + u32::from(syn) + u32::from(fin);
        let end = t.seq.wrapping_add(seglen);
        let mut retransmitted = false;
        if let Some(next) = dir.next_seq {
            let behind = (next.wrapping_sub(t.seq) as i32) > 0;
            // A keep-alive resends the last byte (or none) on purpose: not a retransmission.
            let keepalive = t.payload_len <= 1 && !syn && !fin && t.seq == next.wrapping_sub(1);
            if seglen > 0 && behind && !keepalive {
                let gap = dir.last_time.map(|l| seen.time_nanos.saturating_sub(l) as f64 / 1e9);
                let out_of_order = gap.is_some_and(|g| g < OOO_THRESHOLD) && next != end;
                retransmitted = !out_of_order;
            }
        }
        if dir.next_seq.is_none_or(|n| (end.wrapping_sub(n) as i32) > 0) {
            dir.next_seq = Some(end);
        }
        dir.last_time = Some(seen.time_nanos);
        if retransmitted {
            self.counts.tcp_retransmissions += 1;
            flow.retrans.push(seen);
        }
    }

    fn udp(&mut self, p: &RawPacket<'_>, ip: &IpPacket<'_>, u: &UdpDatagram<'_>, inner: bool) {
        let (src, dst) = ((ip.src, u.src_port), (ip.dst, u.dst_port));
        let key = if self.udp.contains_key(&(dst, src)) { (dst, src) } else { (src, dst) };
        if self.udp.len() < MAX_FLOWS || self.udp.contains_key(&key) {
            let e = self.udp.entry(key).or_insert((0, 0, inner));
            e.0 += 1;
            e.1 += ip.total_len as u64;
        } else {
            self.counts.untracked += 1;
        }
        if !inner && VXLAN_PORTS.contains(&u.dst_port) && u.payload.first().is_some_and(|f| f & 0x08 != 0) {
            // VXLAN: 8-byte header, then an Ethernet frame. Analyse the inner flow too.
            self.counts.vxlan_packets += 1;
            if let Some(Ok(Some(inner_ip))) = u.payload.get(8..).map(|f| decode_link(linktype::ETHERNET, f)) {
                self.ip(p, &inner_ip, true);
            }
            return;
        }
        if u.src_port == 53 || u.dst_port == 53 {
            self.dns(p, src, dst, u.payload);
        }
        if u.src_port == 500 || u.dst_port == 500 {
            self.ike(p, src, dst, u.payload);
        } else if u.src_port == 4500 || u.dst_port == 4500 {
            // Non-ESP marker: four zero bytes, then IKE; anything else is ESP-in-UDP.
            if u.payload.get(..4) == Some(&[0, 0, 0, 0]) {
                self.ike(p, src, dst, u.payload.get(4..).unwrap_or_default());
            }
        } else {
            self.wireguard(p, src, dst, u);
        }
    }

    fn dns(&mut self, p: &RawPacket<'_>, src: Endpoint, dst: Endpoint, d: &[u8]) {
        let (Some(id), Some(flags)) = (be16(d, 0), be16(d, 2)) else { return };
        let response = flags & 0x8000 != 0;
        let rcode = (flags & 0x000f) as u8;
        let (name, qtype) = question(d).unwrap_or_else(|| ("?".to_string(), 0));
        let seen = Seen::of(p);
        if response {
            self.counts.dns_responses += 1;
            if let Some(qs) = self.dns.get_mut(&(dst, src, id)) {
                for q in qs.iter_mut() {
                    q.answered = true;
                }
            }
            if rcode == 2 || rcode == 3 || rcode == 5 {
                self.dns_rcodes.entry((rcode, name)).or_default().push(seen);
            }
        } else {
            self.counts.dns_queries += 1;
            self.dns.entry((src, dst, id)).or_default().push(DnsQuery { seen, name, qtype, answered: false });
        }
    }

    fn wireguard(&mut self, p: &RawPacket<'_>, src: Endpoint, dst: Endpoint, u: &UdpDatagram<'_>) {
        let d = u.payload;
        if d.get(1..4) != Some(&[0, 0, 0]) {
            return;
        }
        match (d.first(), u.payload_len) {
            (Some(1), 148) => {
                self.counts.wireguard_initiations += 1;
                if let Some(sender) = be32(d, 4) {
                    self.wg_init.entry((src, dst)).or_default().push((sender, Seen::of(p)));
                }
            }
            (Some(2), 92) => {
                self.counts.wireguard_responses += 1;
                // Receiver index (little-endian on the wire; compare raw as read).
                if let Some(receiver) = be32(d, 8) {
                    self.wg_answered.insert(receiver);
                }
            }
            _ => {}
        }
    }

    fn ike(&mut self, p: &RawPacket<'_>, src: Endpoint, dst: Endpoint, d: &[u8]) {
        // IKEv2 header (RFC 7296 3.1): SPIi 8, SPIr 8, next payload, version 0x20, exchange,
        // flags, message id, length.
        let (Some(hi), Some(lo)) = (be32(d, 0), be32(d, 4)) else { return };
        let spi_i = (u64::from(hi) << 32) | u64::from(lo);
        let (Some(&next), Some(&version), Some(&exchange), Some(&flags)) = (d.get(16), d.get(17), d.get(18), d.get(19))
        else {
            return;
        };
        if version >> 4 != 2 {
            return;
        }
        self.counts.ike_messages += 1;
        let seen = Seen::of(p);
        let response = flags & 0x20 != 0;
        if exchange == 34 {
            if response {
                self.ike_answered.insert(spi_i);
            } else {
                self.ike_init.entry((src, dst, spi_i)).or_default().push(seen.clone());
            }
        }
        // Walk the unencrypted payload chain for NOTIFY (41) error types (< 16384).
        let mut payload_type = next;
        let mut off = 28usize;
        for _ in 0..32 {
            if payload_type == 0 || payload_type == 46 {
                break;
            }
            let (Some(&following), Some(len)) = (d.get(off), be16(d, off + 2)) else { break };
            if payload_type == 41 {
                if let Some(kind) = be16(d, off + 6) {
                    if (1..16384).contains(&kind) {
                        self.ike_notify.entry((kind, src, dst)).or_default().push(seen.clone());
                    }
                }
            }
            if len < 4 {
                break;
            }
            payload_type = following;
            off = off.saturating_add(usize::from(len));
        }
    }

    fn icmp_too_big(&mut self, p: &RawPacket<'_>, d: &[u8], v6: bool, reporter: IpAddr) {
        let (Some(&kind), Some(&code)) = (d.first(), d.get(1)) else { return };
        let mtu = if v6 && kind == 2 {
            be32(d, 4)
        } else if !v6 && kind == 3 && code == 4 {
            be16(d, 6).map(u32::from)
        } else {
            return;
        };
        self.counts.icmp_too_big += 1;
        // The quoted packet: original IP header plus at least 8 transport bytes.
        let quoted = d.get(8..).unwrap_or_default();
        let flow = match decode_link(linktype::RAW, quoted) {
            Ok(Some(q)) => {
                let ports = be32(q.payload, 0).map(|x| (x >> 16, x & 0xffff));
                let proto = match q.proto {
                    6 => "tcp",
                    17 => "udp",
                    50 => "esp",
                    1 => "icmp",
                    58 => "icmpv6",
                    _ => "ip",
                };
                match ports {
                    Some((s, d)) if q.proto == 6 || q.proto == 17 => {
                        format!("{proto} {} -> {}", sock(q.src, s as u16), sock(q.dst, d as u16))
                    }
                    _ => format!("{proto} {} -> {}", q.src, q.dst),
                }
            }
            _ => "unknown flow".to_string(),
        };
        self.too_big.entry((reporter, mtu.unwrap_or(0), flow)).or_default().push(Seen::of(p));
    }

    /// Flow table rows, TCP first, by packet count.
    pub fn flows(&self) -> Vec<FlowSummary> {
        let mut out: Vec<FlowSummary> = self
            .tcp
            .iter()
            .map(|((a, b), f)| FlowSummary {
                protocol: "tcp",
                client: sock(a.0, a.1),
                server: sock(b.0, b.1),
                packets: f.dirs[0].packets + f.dirs[1].packets,
                bytes: f.dirs[0].bytes + f.dirs[1].bytes,
                retransmissions: Some(f.retrans.count),
                handshake_rtt_ms: rtt(f).map(|s| (s * 1e6).round() / 1e3),
                mss: f.dirs[0].mss.or(f.dirs[1].mss),
                vxlan: f.vxlan,
            })
            .collect();
        out.extend(self.udp.iter().map(|((a, b), (packets, bytes, vxlan))| FlowSummary {
            protocol: "udp",
            client: sock(a.0, a.1),
            server: sock(b.0, b.1),
            packets: *packets,
            bytes: *bytes,
            retransmissions: None,
            handshake_rtt_ms: None,
            mss: None,
            vxlan: *vxlan,
        }));
        out.sort_by(|x, y| {
            (x.protocol, std::cmp::Reverse(x.packets), &x.client, &x.server).cmp(&(
                y.protocol,
                std::cmp::Reverse(y.packets),
                &y.client,
                &y.server,
            ))
        });
        out
    }

    fn evidence(&self, seen: &[Seen], excerpt: impl Fn(&Seen) -> String) -> Vec<Evidence> {
        seen.iter()
            .take(MAX_EVIDENCE)
            .map(|s| {
                let loc = Location::Packet {
                    path: self.path.clone(),
                    number: s.number,
                    timestamp: Some(s.timestamp.clone()),
                };
                Evidence::new(loc, excerpt(s))
            })
            .collect()
    }

    fn finding(&self, rule: &str, subject: String, title: String, detail: String) -> Finding {
        let r = crate::rule(rule);
        Finding {
            rule: rule.to_string(),
            severity: r.map_or(Severity::Medium, |r| r.severity),
            layer: r.map_or(Layer::Ingest, |r| r.layer),
            subject: format!("capture/{}/{subject}", self.path),
            title,
            detail,
            evidence: Vec::new(),
            fix: r.map_or(String::new(), |r| r.fix.to_string()),
            confidence: Confidence::Confirmed,
        }
    }

    /// The findings of this capture, given how reading it went.
    pub fn findings(&self, stats: &ReadStats) -> Vec<Finding> {
        let mut out = Vec::new();
        self.ingest_findings(stats, &mut out);
        self.tcp_findings(&mut out);
        self.dns_findings(&mut out);
        self.tunnel_findings(&mut out);
        for ((reporter, mtu, flow), seen) in &self.too_big {
            let mut f = self.finding(
                "PCAP-004",
                format!("icmp-too-big/{reporter}/{mtu}"),
                format!("{reporter} says packets are too big: MTU {mtu}"),
                format!(
                    "{} ICMP fragmentation-needed / packet-too-big message(s) from {reporter} carry MTU {mtu} \
                     for {flow}. If the sender keeps sending large packets after this, the ICMP is filtered \
                     on the way back (an MTU black hole).",
                    seen.len()
                ),
            );
            f.evidence = self.evidence(seen, |_| format!("too big, mtu {mtu}, quoting {flow}"));
            out.push(f);
        }
        out
    }

    fn ingest_findings(&self, stats: &ReadStats, out: &mut Vec<Finding>) {
        let loc = |n: u64| Location::Packet { path: self.path.clone(), number: n, timestamp: None };
        if let Some(issue) = &stats.issue {
            let mut f = self.finding(
                "PCAP-001",
                "read".to_string(),
                "capture file could not be read completely".to_string(),
                format!("{}: {} ({} packet(s) read before it).", self.path, issue.message, issue.after_packet),
            );
            f.severity = Severity::High;
            f.evidence.push(Evidence::new(
                if issue.after_packet > 0 { loc(issue.after_packet) } else { Location::file(self.path.clone()) },
                issue.message.clone(),
            ));
            out.push(f);
        }
        if let Some(first) = stats.first_snaplen_cut {
            let mut f = self.finding(
                "PCAP-001",
                "snaplen".to_string(),
                format!("{} packet(s) cut by the snap length", stats.snaplen_cut),
                format!(
                    "{} of {} packets were captured shorter than they were on the wire; payload-level \
                     checks (DNS names, IKE notifies) may miss data in them. Header analysis still works.",
                    stats.snaplen_cut, stats.packets
                ),
            );
            f.severity = Severity::Info;
            f.fix = "Nothing, unless payload checks matter: then capture with a larger `tcpdump -s`.".to_string();
            f.evidence.push(Evidence::new(loc(first), "first packet cut by the snap length"));
            out.push(f);
        }
        for (why, seen) in &self.undecodable {
            let mut f = self.finding(
                "PCAP-001",
                format!("decode/{why}"),
                format!("{} packet(s) could not be decoded: {why}", seen.count),
                format!(
                    "{} packet(s) in {} failed to decode ({why}); they are left out of the analysis.",
                    seen.count, self.path
                ),
            );
            f.severity = Severity::Low;
            f.evidence = self.evidence(&seen.first, |_| why.clone());
            out.push(f);
        }
    }

    fn tcp_findings(&self, out: &mut Vec<Finding>) {
        let mut flows: Vec<_> = self.tcp.iter().collect();
        flows.sort_by_key(|(k, _)| **k);
        for ((a, b), flow) in flows {
            let name = format!("{} -> {}", sock(a.0, a.1), sock(b.0, b.1));
            let data_packets = flow.dirs[0].packets + flow.dirs[1].packets;
            if flow.retrans.count > 0 {
                let rate = flow.retrans.count as f64 * 100.0 / data_packets.max(1) as f64;
                let mut f = self.finding(
                    "PCAP-002",
                    format!("tcp/{name}"),
                    format!("{} TCP retransmission(s) on {name}", flow.retrans.count),
                    format!(
                        "{} of {} packets on {name}{} were retransmissions ({rate:.1}%); handshake RTT {}, MSS {}.",
                        flow.retrans.count,
                        data_packets,
                        if flow.vxlan { " (inside VXLAN)" } else { "" },
                        rtt(flow).map_or("unknown".to_string(), |s| format!("{:.3} ms", s * 1e3)),
                        flow.dirs[0].mss.or(flow.dirs[1].mss).map_or("not seen".to_string(), |m| m.to_string()),
                    ),
                );
                if rate >= 5.0 {
                    f.severity = Severity::High;
                }
                f.evidence = self.evidence(&flow.retrans.first, |_| "retransmitted segment".to_string());
                out.push(f);
            }
            if let (Some(syn), None) = (&flow.syn, &flow.syn_ack) {
                let mut f = self.finding(
                    "PCAP-003",
                    format!("tcp/{name}"),
                    format!("TCP connection {name} never answered"),
                    format!(
                        "The SYN from {} was not answered with a SYN-ACK in this capture{}.",
                        sock(a.0, a.1),
                        if flow.resets > 0 { " (a reset was seen: the port is closed)" } else { "" }
                    ),
                );
                f.evidence = self.evidence(std::slice::from_ref(syn), |_| "SYN".to_string());
                out.push(f);
            }
        }
    }

    fn dns_findings(&self, out: &mut Vec<Finding>) {
        // Unanswered queries per (client, server).
        let mut unanswered: BTreeMap<(Endpoint, Endpoint), Vec<&DnsQuery>> = BTreeMap::new();
        let mut by_question: BTreeMap<(IpAddr, Endpoint, String, u16), Vec<&DnsQuery>> = BTreeMap::new();
        for ((client, server, _), qs) in &self.dns {
            for q in qs {
                if !q.answered {
                    unanswered.entry((*client, *server)).or_default().push(q);
                }
                by_question.entry((client.0, *server, q.name.clone(), q.qtype)).or_default().push(q);
            }
        }
        for ((client, server), mut qs) in unanswered {
            qs.sort_by_key(|q| q.seen.number);
            let seen: Vec<Seen> = qs.iter().map(|q| q.seen.clone()).collect();
            let mut f = self.finding(
                "PCAP-005",
                format!("dns/{}", sock(server.0, server.1)),
                format!("{} DNS quer(ies) to {} without an answer", qs.len(), sock(server.0, server.1)),
                format!(
                    "{} sent {} DNS quer(ies) to {} that got no response in this capture (first: {}).",
                    client.0,
                    qs.len(),
                    sock(server.0, server.1),
                    qs.first().map_or("?", |q| q.name.as_str())
                ),
            );
            f.evidence = self.evidence(&seen, |s| {
                qs.iter()
                    .find(|q| q.seen.number == s.number)
                    .map_or(String::new(), |q| format!("query {} type {}", q.name, q.qtype))
            });
            out.push(f);
        }
        for ((rcode, name), seen) in &self.dns_rcodes {
            let rname = match rcode {
                2 => "SERVFAIL",
                3 => "NXDOMAIN",
                _ => "REFUSED",
            };
            let mut f = self.finding(
                "PCAP-006",
                format!("dns/{name}/{rname}"),
                format!("DNS {rname} for {name}"),
                format!("{} response(s) for {name} carried rcode {rname}.", seen.len()),
            );
            if *rcode == 3 {
                f.severity = Severity::Low;
            }
            f.evidence = self.evidence(seen, |_| format!("{name}: {rname}"));
            out.push(f);
        }
        // The 5-second retry: the resolver's default timeout (resolv.conf `timeout:5`), seen as
        // the same question re-sent 4.5-5.5 s after an attempt that was not answered.
        for ((client, server, name, qtype), mut qs) in by_question {
            qs.sort_by_key(|q| q.seen.number);
            let retries: Vec<Seen> = qs
                .windows(2)
                .filter_map(|w| match w {
                    [a, b] if !a.answered && (4.5..=5.5).contains(&b.seen.secs_since(&a.seen)) => Some(b.seen.clone()),
                    _ => None,
                })
                .collect();
            if retries.is_empty() {
                continue;
            }
            let mut f = self.finding(
                "PCAP-007",
                format!("dns/{}/{name}", sock(server.0, server.1)),
                format!("{client} re-sent the DNS query for {name} after a 5 s timeout"),
                format!(
                    "{} time(s) the query {name} (type {qtype}) to {} went unanswered and was re-sent about \
                     5 seconds later: the resolver timeout, felt by applications as 5 s latency.",
                    retries.len(),
                    sock(server.0, server.1)
                ),
            );
            f.evidence = self.evidence(&retries, |_| format!("retry of {name}"));
            out.push(f);
        }
    }

    fn tunnel_findings(&self, out: &mut Vec<Finding>) {
        for ((init, resp), inits) in &self.wg_init {
            let lost: Vec<Seen> =
                inits.iter().filter(|(idx, _)| !self.wg_answered.contains(idx)).map(|(_, s)| s.clone()).collect();
            if lost.is_empty() {
                continue;
            }
            let mut f = self.finding(
                "PCAP-008",
                format!("wireguard/{}/{}", sock(init.0, init.1), sock(resp.0, resp.1)),
                format!(
                    "{} WireGuard handshake initiation(s) to {} without response",
                    lost.len(),
                    sock(resp.0, resp.1)
                ),
                format!(
                    "{} sent {} handshake initiation(s) to {}; {} got no handshake response. The peer's UDP \
                     port is blocked, the endpoint is wrong, or the peer does not know this public key.",
                    sock(init.0, init.1),
                    inits.len(),
                    sock(resp.0, resp.1),
                    lost.len()
                ),
            );
            f.evidence = self.evidence(&lost, |_| "handshake initiation (type 1, 148 bytes)".to_string());
            out.push(f);
        }
        for ((init, resp, spi), reqs) in &self.ike_init {
            if reqs.len() < 2 || self.ike_answered.contains(spi) {
                continue;
            }
            let mut f = self.finding(
                "PCAP-009",
                format!("ike/{}/{}", sock(init.0, init.1), sock(resp.0, resp.1)),
                format!(
                    "IKE_SA_INIT to {} retransmitted {} times without answer",
                    sock(resp.0, resp.1),
                    reqs.len() - 1
                ),
                format!(
                    "{} sent IKE_SA_INIT (SPIi {spi:016x}) {} times and {} never answered: UDP 500/4500 is \
                     blocked on the way or the responder does not listen.",
                    sock(init.0, init.1),
                    reqs.len(),
                    sock(resp.0, resp.1)
                ),
            );
            f.evidence = self.evidence(reqs, |_| "IKE_SA_INIT request".to_string());
            out.push(f);
        }
        for ((kind, from, to), seen) in &self.ike_notify {
            let name = match kind {
                14 => "NO_PROPOSAL_CHOSEN",
                17 => "INVALID_KE_PAYLOAD",
                24 => "AUTHENTICATION_FAILED",
                38 => "TS_UNACCEPTABLE",
                _ => "error notify",
            };
            let mut f = self.finding(
                "PCAP-010",
                format!("ike/{}/{}/{kind}", sock(from.0, from.1), sock(to.0, to.1)),
                format!("IKE {name} ({kind}) from {}", sock(from.0, from.1)),
                format!(
                    "{} IKE message(s) from {} to {} carried notify {name} ({kind}).",
                    seen.len(),
                    sock(from.0, from.1),
                    sock(to.0, to.1)
                ),
            );
            f.evidence = self.evidence(seen, |_| format!("NOTIFY {name} ({kind})"));
            out.push(f);
        }
    }
}

fn rtt(f: &TcpFlow) -> Option<f64> {
    match (&f.syn, &f.syn_ack) {
        (Some(s), Some(a)) if a.time_nanos >= s.time_nanos => Some(a.secs_since(s)),
        _ => None,
    }
}

fn sock(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// The first question of a DNS message: name (dotted, `.` for the root) and type.
fn question(d: &[u8]) -> Option<(String, u16)> {
    if be16(d, 4)? == 0 {
        return None;
    }
    let mut off = 12usize;
    let mut labels: Vec<String> = Vec::new();
    // Questions are not compressed in practice; stop at a pointer or after 128 labels.
    for _ in 0..128 {
        let len = usize::from(*d.get(off)?);
        if len == 0 {
            off += 1;
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        let label = d.get(off + 1..off + 1 + len)?;
        labels.push(label.iter().map(|&b| if b.is_ascii_graphic() { char::from(b) } else { '?' }).collect());
        off += 1 + len;
    }
    let name = if labels.is_empty() { ".".to_string() } else { labels.join(".") };
    Some((name, be16(d, off)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
        let total = (20 + l4.len()) as u16;
        let mut v = vec![0x45, 0];
        v.extend_from_slice(&total.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
        v.extend_from_slice(&src);
        v.extend_from_slice(&dst);
        v.extend_from_slice(l4);
        v
    }

    fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = sport.to_be_bytes().to_vec();
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(payload);
        v
    }

    fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = sport.to_be_bytes().to_vec();
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 1, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        v.extend_from_slice(payload);
        v
    }

    const A: [u8; 4] = [10, 0, 0, 1];
    const B: [u8; 4] = [10, 0, 0, 2];

    /// Feeds raw-IP packets (linktype 101) at the given times (ms).
    fn run(packets: &[(u64, Vec<u8>)]) -> (Analyzer, Vec<Finding>) {
        let mut a = Analyzer::new("t.pcap");
        for (i, (ms, data)) in packets.iter().enumerate() {
            let p = RawPacket {
                number: i as u64 + 1,
                ts_sec: 1000 + ms / 1000,
                ts_nanos: (ms % 1000) as u32 * 1_000_000,
                linktype: linktype::RAW,
                data,
                orig_len: data.len() as u32,
            };
            a.packet(&p);
        }
        let f = a.findings(&ReadStats::default());
        (a, f)
    }

    #[test]
    fn retransmission_counts_but_keepalive_and_quick_reordering_do_not() {
        let seg = |seq, ms, len: usize| (ms, ipv4(6, A, B, &tcp(1000, 80, seq, 0x18, &vec![b'x'; len])));
        let (a, f) = run(&[
            (0, ipv4(6, A, B, &tcp(1000, 80, 99, 0x02, &[]))),
            seg(100, 10, 100),
            seg(200, 20, 100),
            seg(200, 300, 100), // the same data again 280 ms later: retransmission
            seg(299, 5000, 1),  // one old byte: keep-alive
            seg(400, 5001, 100),
            seg(300, 5002, 100), // fills a gap within 3 ms: out of order
        ]);
        assert_eq!(a.counts.tcp_retransmissions, 1);
        let r = f.iter().find(|f| f.rule == "PCAP-002").unwrap();
        assert_eq!(r.evidence.len(), 1);
        assert!(matches!(r.evidence[0].location, Location::Packet { number: 4, .. }));
        // The SYN was never answered.
        assert!(f.iter().any(|f| f.rule == "PCAP-003"));
    }

    #[test]
    fn undecodable_packets_are_counted_with_bounded_evidence() {
        let bad: Vec<(u64, Vec<u8>)> = (0..7).map(|i| (i, vec![0x45, 0, 0])).collect();
        let (a, f) = run(&bad);
        assert_eq!(a.counts.undecodable, 7);
        let d = f.iter().find(|f| f.rule == "PCAP-001").unwrap();
        assert_eq!(d.title, "7 packet(s) could not be decoded: IPv4 header truncated");
        assert_eq!(d.evidence.len(), MAX_EVIDENCE);
        assert_eq!(d.severity, Severity::Low);
    }

    #[test]
    fn vxlan_inner_flows_are_analysed() {
        let inner = ipv4(6, [192, 168, 0, 1], [192, 168, 0, 2], &tcp(5, 6, 10, 0x18, b"hello"));
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        vx.extend_from_slice(&[0u8; 12]);
        vx.extend_from_slice(&[0x08, 0x00]);
        vx.extend_from_slice(&inner);
        let outer = ipv4(17, A, B, &udp(40000, 8472, &vx));
        let (a, f) = run(&[(0, outer.clone()), (500, outer)]);
        assert_eq!((a.counts.vxlan_packets, a.counts.tcp_retransmissions), (2, 1));
        let r = f.iter().find(|f| f.rule == "PCAP-002").unwrap();
        assert!(r.detail.contains("(inside VXLAN)"), "{}", r.detail);
        assert!(a.flows().iter().any(|fl| fl.vxlan && fl.server == "192.168.0.2:6"));
    }

    #[test]
    fn wireguard_response_answers_its_initiation() {
        let mut init = vec![1u8, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd];
        init.resize(148, 7);
        let mut other = init.clone();
        other[4] = 0x11;
        let mut resp = vec![2u8, 0, 0, 0, 1, 2, 3, 4, 0xaa, 0xbb, 0xcc, 0xdd];
        resp.resize(92, 0);
        let (a, f) = run(&[
            (0, ipv4(17, A, B, &udp(51820, 51820, &init))),
            (10, ipv4(17, B, A, &udp(51820, 51820, &resp))),
            (5000, ipv4(17, A, B, &udp(51820, 51820, &other))),
        ]);
        assert_eq!((a.counts.wireguard_initiations, a.counts.wireguard_responses), (2, 1));
        let wg = f.iter().find(|f| f.rule == "PCAP-008").unwrap();
        assert!(wg.title.starts_with("1 WireGuard handshake initiation(s)"), "{}", wg.title);
        assert!(matches!(wg.evidence[0].location, Location::Packet { number: 3, .. }));
    }

    #[test]
    fn ike_over_4500_with_non_esp_marker_and_notify() {
        // IKE header (SPIi 1, SPIr 2, next payload NOTIFY, v2, IKE_SA_INIT, response) + notify 17.
        let mut ike = vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 41, 0x20, 34, 0x20, 0, 0, 0, 0, 0, 0, 0, 36];
        ike.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 17]);
        let mut natt = vec![0, 0, 0, 0];
        natt.extend_from_slice(&ike);
        let esp = [0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1, 9, 9, 9, 9];
        let (a, f) = run(&[(0, ipv4(17, B, A, &udp(4500, 4500, &natt))), (1, ipv4(17, A, B, &udp(4500, 4500, &esp)))]);
        assert_eq!(a.counts.ike_messages, 1, "ESP-in-UDP is not IKE");
        let n = f.iter().find(|f| f.rule == "PCAP-010").unwrap();
        assert_eq!(n.title, "IKE INVALID_KE_PAYLOAD (17) from 10.0.0.2:4500");
    }

    #[test]
    fn dns_answers_match_by_id_and_tuple() {
        let q = |id: u16, resp: bool, rcode: u8| {
            let mut v = id.to_be_bytes().to_vec();
            v.extend_from_slice(&[if resp { 0x81 } else { 0x01 }, 0x80 | rcode, 0, 1, 0, 0, 0, 0, 0, 0]);
            v.extend_from_slice(&[1, b'a', 3, b'l', b'a', b'b', 0, 0, 1, 0, 1]);
            v
        };
        let (a, f) = run(&[
            (0, ipv4(17, A, B, &udp(3333, 53, &q(7, false, 0)))),
            (1, ipv4(17, B, A, &udp(53, 3333, &q(7, true, 2)))),
            (2, ipv4(17, A, B, &udp(3333, 53, &q(8, false, 0)))),
            // Same id from another port: not an answer to id 8.
            (3, ipv4(17, B, A, &udp(53, 4444, &q(8, true, 0)))),
        ]);
        assert_eq!((a.counts.dns_queries, a.counts.dns_responses), (2, 2));
        let un = f.iter().find(|f| f.rule == "PCAP-005").unwrap();
        assert!(un.title.starts_with("1 DNS quer"), "{}", un.title);
        let sf = f.iter().find(|f| f.rule == "PCAP-006").unwrap();
        assert_eq!(sf.title, "DNS SERVFAIL for a.lab");
    }
}
