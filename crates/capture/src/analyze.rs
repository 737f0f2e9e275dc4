//! Per-capture state machines (TCP flows analysed as Wireshark does, DNS over UDP and TCP, WireGuard,
//! IKE and ESP, ICMP too-big, IP fragments) fed packet by packet, and the findings they add up to.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use netsleuth_model::{Confidence, Evidence, Finding, Layer, Location, Severity};
use serde::Serialize;

use crate::reader::{RawPacket, ReadStats};
use crate::wire::{be16, be32, decode_link, linktype, tcp_flags, IpPacket, TcpSegment, UdpDatagram};

/// Wireshark's out-of-order threshold when the handshake RTT is unknown (3 ms).
const OOO_THRESHOLD_NANOS: u128 = 3_000_000;
/// Wireshark: a retransmission within 20 ms of the second duplicate ACK is a fast retransmission.
const FAST_RETRANS_NANOS: u128 = 20_000_000;
/// How many example packets a finding lists as evidence.
const MAX_EVIDENCE: usize = 5;
/// Flows (TCP or UDP) tracked per capture; beyond this new flows are only counted, so a
/// scan or flood cannot exhaust memory.
const MAX_FLOWS: usize = 1_000_000;
/// Entries of the smaller tables (ESP pairs, WireGuard pairs, fragment flows, IKE exchanges).
const MAX_ENTRIES: usize = 100_000;
/// VXLAN UDP ports: IANA and the Linux kernel default (flannel).
const VXLAN_PORTS: [u16; 2] = [4789, 8472];
/// IP packets larger than this are "full size" for the MTU black-hole check: every IPv6 path
/// carries 1280 bytes, so only larger packets can be the victims of a smaller path MTU.
const BIG_PACKET: usize = 1280;
/// After an ICMP too-big, packets sent within this time were already in flight (not ignoring it).
const PTB_GRACE_NANOS: u128 = 10_000_000;
/// Duplicate ACKs in one flow before they are reported (three trigger a fast retransmit).
const DUP_ACK_REPORT: u64 = 3;
/// Search-list expansion: NXDOMAIN queries count towards a lookup when sent this long before its answer.
const SEARCH_WINDOW_NANOS: u128 = 10_000_000_000;

/// One endpoint.
type Endpoint = (IpAddr, u16);
/// Search-list lookups of one name: how many, the most queries one took, evidence, the candidates.
type Lookups<'a> = (u64, usize, Vec<Seen>, Vec<&'a str>);
/// An IKE notify: the packet, its exchange type and whether it was a response.
type NotifySeen = (Seen, u8, bool);

/// FxHash (rustc's hasher): the flow tables are hashed for every packet and SipHash costs a
/// third of the run time; hash flooding is bounded by the flow caps instead.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Fast paths for IPv4 and IPv6 octets, with the same value as the loop below.
        if let Ok(b) = <[u8; 4]>::try_from(bytes) {
            self.add(u64::from(u32::from_le_bytes(b)));
            return;
        }
        if let Ok(b) = <[u8; 16]>::try_from(bytes) {
            let [lo, hi] = [u128::from_le_bytes(b) as u64, (u128::from_le_bytes(b) >> 64) as u64];
            self.add(lo);
            self.add(hi);
            return;
        }
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            for (w, b) in word.iter_mut().zip(chunk) {
                *w = *b;
            }
            self.add(u64::from_le_bytes(word));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A 4096-bit set of address hashes: no false negatives, so a clear bit proves absence.
#[derive(Debug, Clone)]
struct PtbSenders(Box<[u64; 64]>);

impl Default for PtbSenders {
    fn default() -> Self {
        PtbSenders(Box::new([0; 64]))
    }
}

impl PtbSenders {
    fn bit(ip: IpAddr) -> (usize, u64) {
        let x = match ip {
            IpAddr::V4(a) => u64::from(u32::from(a)),
            IpAddr::V6(a) => {
                let v = u128::from(a);
                (v as u64) ^ ((v >> 64) as u64).rotate_left(17)
            }
        };
        let h = x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52;
        ((h >> 6) as usize & 63, 1 << (h & 63))
    }

    fn insert(&mut self, ip: IpAddr) {
        let (word, mask) = Self::bit(ip);
        self.0[word] |= mask;
    }

    fn may_contain(&self, ip: IpAddr) -> bool {
        let (word, mask) = Self::bit(ip);
        self.0[word] & mask != 0
    }
}

/// Analysis settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// The path MTU to check packets against (`--mtu`): don't-fragment packets larger than this
    /// cannot cross the path. Without it, MTUs announced by ICMP too-big messages are used.
    pub mtu: Option<u32>,
}

/// A packet reference kept for evidence (no allocation: the timestamp is formatted on output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    number: u64,
    time_nanos: u128,
}

impl Seen {
    fn of(p: &RawPacket<'_>) -> Seen {
        Seen { number: p.number, time_nanos: u128::from(p.ts_sec) * 1_000_000_000 + u128::from(p.ts_nanos) }
    }

    /// `seconds.microseconds`, as `RawPacket::timestamp` writes it.
    fn timestamp(&self) -> String {
        format!("{}.{:06}", self.time_nanos / 1_000_000_000, (self.time_nanos % 1_000_000_000) / 1000)
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

/// Sequence-space comparisons (RFC 1982 serial arithmetic), as Wireshark's LT_SEQ/GT_SEQ.
fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// One direction of a TCP connection. Zero means "unknown" for `next_seq` and `last_ack`, as in
/// Wireshark's tcp_analyze_seq_info, so that edge cases count the same way.
#[derive(Debug, Clone)]
struct TcpDir {
    /// Highest seq + len (+1 for SYN/FIN) seen, and when it last advanced.
    next_seq: u32,
    next_seq_time: u128,
    /// The last ACK number this side sent, and when.
    last_ack: u32,
    last_ack_time: u128,
    /// The last (scaled) window this side sent; `u32::MAX` before any packet, like Wireshark.
    window: u32,
    /// Duplicate ACKs in a row.
    dupacks: u64,
    base_seq: Option<u32>,
    last_keepalive: bool,
    last_zero_window_probe: bool,
    packets: u64,
    bytes: u64,
    mss: Option<u16>,
    window_scale: Option<u8>,
    /// The largest IP packet carrying data in this direction.
    max_len: usize,
    /// End (seq + len) of the first data segment in a packet over `BIG_PACKET` bytes.
    big_end: Option<u32>,
    /// Whether the other side acknowledged past `big_end`.
    big_acked: bool,
    big_retrans: Examples,
    /// Data segments of at most `BIG_PACKET` bytes.
    small_data: u64,
    /// DNS over TCP: the sequence number where the next length prefix starts (None: lost track).
    dns_next: Option<u32>,
}

impl Default for TcpDir {
    fn default() -> TcpDir {
        TcpDir {
            next_seq: 0,
            next_seq_time: 0,
            last_ack: 0,
            last_ack_time: 0,
            window: u32::MAX,
            dupacks: 0,
            base_seq: None,
            last_keepalive: false,
            last_zero_window_probe: false,
            packets: 0,
            bytes: 0,
            mss: None,
            window_scale: None,
            max_len: 0,
            big_end: None,
            big_acked: false,
            big_retrans: Examples::default(),
            small_data: 0,
            dns_next: None,
        }
    }
}

#[derive(Debug, Default, Clone)]
struct TcpFlow {
    /// Whether the first packet seen came from the lower endpoint of the table key.
    origin_low: bool,
    /// Index 0: the side that sent the first packet seen (the SYN when it was captured).
    dirs: [TcpDir; 2],
    syn: Option<Seen>,
    syn_ack: Option<Seen>,
    /// Time of the most recent SYN and the SYN-to-ACK time (Wireshark's iRTT).
    mru_syn: Option<u128>,
    first_rtt: Option<u128>,
    retrans: Examples,
    /// Duplicate ACKs and zero windows, per direction (index as `dirs`).
    dup_acks: [Examples; 2],
    zero_windows: [Examples; 2],
    resets: u64,
    vxlan: bool,
}

#[derive(Debug, Clone)]
struct DnsQuery {
    seen: Seen,
    name: String,
    qtype: u16,
    answered: bool,
    /// The rcode of the (last) answer.
    rcode: Option<u8>,
    tcp: bool,
}

/// WireGuard transport data from one endpoint to another.
#[derive(Debug, Default, Clone)]
struct WgData {
    /// Type-4 messages carrying data (longer than the 32-byte keepalive).
    data: Examples,
    keepalives: u64,
    receivers: Vec<u32>,
}

/// ESP from one address to another.
#[derive(Debug, Default, Clone)]
struct EspDir {
    packets: Examples,
    spis: Vec<u32>,
    udp: bool,
}

/// Packets over the path MTU between two addresses.
#[derive(Debug, Default, Clone)]
struct Oversize {
    mtu: u32,
    largest: usize,
    /// Where the MTU comes from: `--mtu` or the ICMP message that announced it.
    from_icmp: Option<Seen>,
    packets: Examples,
}

/// Fragments between two addresses for one protocol.
#[derive(Debug, Default, Clone)]
struct Fragments {
    fragments: Examples,
    datagrams: u64,
    v6: bool,
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
    pub duplicate_acks: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zero_windows: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake_rtt_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mss: Option<u16>,
    /// Seen inside a VXLAN tunnel.
    pub vxlan: bool,
}

/// Counts comparable with tshark display filters on the same file (scripts/tshark-agree.sh).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub packets: u64,
    /// `tcp.analysis.retransmission`
    pub tcp_retransmissions: u64,
    /// `tcp.analysis.duplicate_ack`
    pub tcp_duplicate_acks: u64,
    /// `tcp.analysis.zero_window`
    pub tcp_zero_windows: u64,
    /// `dns.flags.response == 0` (UDP port 53)
    pub dns_queries: u64,
    /// `dns.flags.response == 1` (UDP port 53)
    pub dns_responses: u64,
    /// DNS messages over TCP port 53 (each message, several may share a segment).
    pub dns_tcp_queries: u64,
    pub dns_tcp_responses: u64,
    /// DNS-over-TCP messages not analysed: split across segments, cut by the snap length, or after a gap.
    pub dns_tcp_skipped: u64,
    /// `(icmp.type == 3 && icmp.code == 4) || icmpv6.type == 2`
    pub icmp_too_big: u64,
    /// `wg.type == 1`
    pub wireguard_initiations: u64,
    /// `wg.type == 2`
    pub wireguard_responses: u64,
    /// `wg.type == 3`
    pub wireguard_cookie_replies: u64,
    /// `wg.type == 4` (data and keepalives)
    pub wireguard_transport: u64,
    /// `isakmp`
    pub ike_messages: u64,
    /// `isakmp.exchangetype == 34`
    pub ike_sa_init: u64,
    /// `isakmp.exchangetype == 35`
    pub ike_auth: u64,
    /// `esp` (IP protocol 50 and ESP in UDP 4500)
    pub esp_packets: u64,
    /// `ip.flags.mf == 1 || ip.frag_offset > 0 || ipv6.fraghdr.ident`
    pub ip_fragments: u64,
    /// Don't-fragment packets larger than the path MTU (`--mtu` or announced by ICMP).
    pub over_mtu: u64,
    pub vxlan_packets: u64,
    /// Frames of a link type or header this reader cannot decode.
    pub undecodable: u64,
    /// Packets of flows beyond the tracking limit (not analysed per flow).
    pub untracked: u64,
}

/// What one TCP segment turned out to be, for the caller's follow-up work.
struct TcpVerdict {
    retransmission: bool,
}

/// The capture analyser: feed it packets of one file, then take the findings.
#[derive(Debug)]
pub struct Analyzer {
    path: String,
    options: Options,
    counts: Counts,
    tcp: FxMap<(Endpoint, Endpoint), TcpFlow>,
    /// UDP flows by (lower, higher) endpoint: packets, bytes, seen in VXLAN, first sender was the lower.
    udp: FxMap<(Endpoint, Endpoint), (u64, u64, bool, bool)>,
    /// DNS queries by (client, server, id), all attempts.
    dns: FxMap<(Endpoint, Endpoint, u16), Vec<DnsQuery>>,
    /// Responses by rcode and question name (nested so a name is looked up without allocating).
    dns_rcodes: BTreeMap<u8, BTreeMap<String, Vec<Seen>>>,
    /// Reused buffer for question names.
    scratch: String,
    /// WireGuard initiations by (initiator, responder) with their sender indexes.
    wg_init: BTreeMap<(Endpoint, Endpoint), Vec<(u32, Seen)>>,
    wg_answered: HashSet<u32>,
    /// Cookie replies by (responder, initiator).
    wg_cookies: BTreeMap<(Endpoint, Endpoint), Examples>,
    wg_data: FxMap<(Endpoint, Endpoint), WgData>,
    /// IKE_SA_INIT requests by (initiator, responder, SPIi).
    ike_init: BTreeMap<(Endpoint, Endpoint, u64), Vec<Seen>>,
    ike_answered: HashSet<u64>,
    /// IKE_AUTH requests by (initiator, responder, SPIi, message id), and the answered ones.
    ike_auth: BTreeMap<(Endpoint, Endpoint, u64, u32), Vec<Seen>>,
    ike_auth_answered: HashSet<(u64, u32)>,
    /// Error notifies by (type, from, to): the packet, its exchange type and whether it was a response.
    ike_notify: BTreeMap<(u16, Endpoint, Endpoint), Vec<NotifySeen>>,
    esp: FxMap<(IpAddr, IpAddr), EspDir>,
    too_big: BTreeMap<(IpAddr, u32, String), Vec<Seen>>,
    /// MTUs announced by ICMP too-big, by (sender, destination) of the quoted packet.
    ptb: FxMap<(IpAddr, IpAddr), (u32, Seen)>,
    /// Senders with an entry in `ptb`, as a bitmap by address hash: most packets have none,
    /// and this spares them the table lookup.
    ptb_senders: PtbSenders,
    oversize: BTreeMap<(IpAddr, IpAddr), Oversize>,
    fragments: BTreeMap<(IpAddr, IpAddr, u8), Fragments>,
    undecodable: BTreeMap<String, Examples>,
}

impl Analyzer {
    /// `path` is how findings name the capture file.
    pub fn new(path: impl Into<String>) -> Analyzer {
        Analyzer::with_options(path, Options::default())
    }

    pub fn with_options(path: impl Into<String>, options: Options) -> Analyzer {
        Analyzer {
            path: path.into(),
            options,
            counts: Counts::default(),
            tcp: FxMap::default(),
            udp: FxMap::default(),
            dns: FxMap::default(),
            dns_rcodes: BTreeMap::new(),
            scratch: String::new(),
            wg_init: BTreeMap::new(),
            wg_answered: HashSet::new(),
            wg_cookies: BTreeMap::new(),
            wg_data: FxMap::default(),
            ike_init: BTreeMap::new(),
            ike_answered: HashSet::new(),
            ike_auth: BTreeMap::new(),
            ike_auth_answered: HashSet::new(),
            ike_notify: BTreeMap::new(),
            esp: FxMap::default(),
            too_big: BTreeMap::new(),
            ptb: FxMap::default(),
            ptb_senders: PtbSenders::default(),
            oversize: BTreeMap::new(),
            fragments: BTreeMap::new(),
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
        if ip.fragment {
            self.fragment(p, ip);
        }
        if !inner && (self.options.mtu.is_some() || !self.ptb.is_empty()) {
            self.check_size(p, ip);
        }
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
            50 => {
                if let Some(spi) = be32(ip.payload, 0) {
                    self.esp(p, ip, spi, false);
                }
            }
            1 => self.icmp_too_big(p, ip.payload, false, ip.src),
            58 => self.icmp_too_big(p, ip.payload, true, ip.src),
            _ => {}
        }
    }

    fn fragment(&mut self, p: &RawPacket<'_>, ip: &IpPacket<'_>) {
        self.counts.ip_fragments += 1;
        let key = (ip.src, ip.dst, ip.proto);
        if self.fragments.len() >= MAX_ENTRIES && !self.fragments.contains_key(&key) {
            return;
        }
        let f = self.fragments.entry(key).or_default();
        f.fragments.push(Seen::of(p));
        f.datagrams += u64::from(ip.first_fragment);
        f.v6 = ip.src.is_ipv6();
    }

    /// Don't-fragment packets over the path MTU: `--mtu`, or the MTU an ICMP too-big message
    /// announced earlier in the capture for the same sender and destination.
    fn check_size(&mut self, p: &RawPacket<'_>, ip: &IpPacket<'_>) {
        if !ip.dont_fragment {
            return;
        }
        let (mtu, from_icmp) = match self.options.mtu {
            Some(m) => (m, None),
            // Packets already in flight when the ICMP came back are not the sender's fault.
            None if !self.ptb_senders.may_contain(ip.src) => return,
            None => match self.ptb.get(&(ip.src, ip.dst)) {
                Some((m, seen)) if Seen::of(p).time_nanos > seen.time_nanos + PTB_GRACE_NANOS => (*m, Some(*seen)),
                _ => return,
            },
        };
        if ip.total_len as u64 <= u64::from(mtu) {
            return;
        }
        self.counts.over_mtu += 1;
        let key = (ip.src, ip.dst);
        if self.oversize.len() >= MAX_ENTRIES && !self.oversize.contains_key(&key) {
            return;
        }
        let o = self.oversize.entry(key).or_default();
        o.mtu = mtu;
        o.largest = o.largest.max(ip.total_len);
        o.from_icmp = o.from_icmp.or(from_icmp);
        o.packets.push(Seen::of(p));
    }

    fn tcp(&mut self, p: &RawPacket<'_>, ip: &IpPacket<'_>, t: &TcpSegment<'_>, inner: bool) {
        let (src, dst) = ((ip.src, t.src_port), (ip.dst, t.dst_port));
        // One key per connection whatever the direction, so a packet costs one hash lookup.
        let sender_low = src <= dst;
        let key = if sender_low { (src, dst) } else { (dst, src) };
        if self.tcp.len() >= MAX_FLOWS && !self.tcp.contains_key(&key) {
            self.counts.untracked += 1;
            return;
        }
        let flow = self.tcp.entry(key).or_insert_with(|| TcpFlow { origin_low: sender_low, ..TcpFlow::default() });
        let mut forward = sender_low == flow.origin_low;
        // A new SYN with another initial sequence number: the ports were reused for a new
        // connection (Wireshark starts a new conversation there too).
        if t.has(tcp_flags::SYN)
            && !t.has(tcp_flags::ACK)
            && flow.dirs[usize::from(!forward)].base_seq.is_some_and(|b| b != t.seq)
        {
            *flow = TcpFlow { origin_low: sender_low, ..TcpFlow::default() };
            forward = true;
        }
        let verdict = flow.segment(&mut self.counts, ip, t, inner, forward, Seen::of(p));
        if (t.src_port == 53 || t.dst_port == 53) && t.payload_len > 0 && !verdict.retransmission {
            self.dns_tcp(p, key, (src, dst), forward, t);
        }
    }

    /// DNS over TCP: length-prefixed messages (RFC 1035 4.2.2). Messages that lie wholly in one
    /// segment are analysed, several per segment included; one split across segments is skipped
    /// (no reassembly) and parsing resumes at the next message boundary; after a gap in the
    /// sequence space the rest of that direction is skipped.
    fn dns_tcp(
        &mut self,
        p: &RawPacket<'_>,
        key: (Endpoint, Endpoint),
        (src, dst): (Endpoint, Endpoint),
        forward: bool,
        t: &TcpSegment<'_>,
    ) {
        let Some(flow) = self.tcp.get_mut(&key) else { return };
        let syn_seen = flow.syn.is_some() || flow.syn_ack.is_some();
        let dir = &mut flow.dirs[usize::from(!forward)];
        let seg_len = u32::try_from(t.payload_len).unwrap_or(u32::MAX);
        let start = match dir.dns_next {
            Some(n) => n,
            // The stream's first data: a message starts here if the handshake was captured.
            None if syn_seen && dir.base_seq.is_some_and(|b| b.wrapping_add(1) == t.seq) => t.seq,
            None => {
                self.counts.dns_tcp_skipped += 1;
                return;
            }
        };
        let end = t.seq.wrapping_add(seg_len);
        if seq_gt(start, t.seq) && !seq_lt(start, end) {
            // Inside a message that started earlier (and was skipped).
            return;
        }
        if seq_lt(start, t.seq) {
            // Bytes between the last boundary and this segment were never seen: lost track.
            dir.dns_next = Some(end);
            self.counts.dns_tcp_skipped += 1;
            return;
        }
        let mut off = start.wrapping_sub(t.seq) as usize;
        let mut messages: Vec<(usize, usize)> = Vec::new();
        let mut skipped = 0u64;
        // Bounded: each message takes at least 2 bytes of a segment of at most 64 kB.
        while off < t.payload_len {
            let Some(len) = be16(t.payload, off).map(usize::from) else {
                // Length prefix split or cut by the snap length: cannot know the next boundary.
                skipped += 1;
                off = usize::MAX;
                break;
            };
            let body = off + 2;
            if body + len > t.payload_len || body + len > t.payload.len() {
                skipped += 1;
            } else {
                messages.push((body, len));
            }
            off = body + len;
        }
        dir.dns_next =
            if off == usize::MAX { None } else { Some(t.seq.wrapping_add(u32::try_from(off).unwrap_or(u32::MAX))) };
        self.counts.dns_tcp_skipped += skipped;
        for (body, len) in messages {
            if let Some(msg) = t.payload.get(body..body + len) {
                self.dns(p, src, dst, msg, true);
            }
        }
    }

    fn udp(&mut self, p: &RawPacket<'_>, ip: &IpPacket<'_>, u: &UdpDatagram<'_>, inner: bool) {
        let (src, dst) = ((ip.src, u.src_port), (ip.dst, u.dst_port));
        // One key per flow whatever the direction: one hash lookup per datagram.
        let sender_low = src <= dst;
        let key = if sender_low { (src, dst) } else { (dst, src) };
        if self.udp.len() < MAX_FLOWS || self.udp.contains_key(&key) {
            let e = self.udp.entry(key).or_insert((0, 0, inner, sender_low));
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
            self.dns(p, src, dst, u.payload, false);
        }
        if u.src_port == 500 || u.dst_port == 500 {
            self.ike(p, src, dst, u.payload);
        } else if u.src_port == 4500 || u.dst_port == 4500 {
            // Non-ESP marker: four zero bytes, then IKE; a single 0xff byte is a NAT-T
            // keepalive; anything else is ESP-in-UDP (RFC 3948) starting with its SPI.
            match u.payload.get(..4) {
                Some([0, 0, 0, 0]) => self.ike(p, src, dst, u.payload.get(4..).unwrap_or_default()),
                Some(_) if u.payload_len >= 8 => {
                    if let Some(spi) = be32(u.payload, 0) {
                        self.esp(p, ip, spi, true);
                    }
                }
                _ => {}
            }
        } else {
            self.wireguard(p, src, dst, u);
        }
    }

    fn esp(&mut self, p: &RawPacket<'_>, ip: &IpPacket<'_>, spi: u32, udp: bool) {
        self.counts.esp_packets += 1;
        let key = (ip.src, ip.dst);
        if self.esp.len() >= MAX_ENTRIES && !self.esp.contains_key(&key) {
            return;
        }
        let e = self.esp.entry(key).or_default();
        e.packets.push(Seen::of(p));
        e.udp |= udp;
        if e.spis.len() < 8 && !e.spis.contains(&spi) {
            e.spis.push(spi);
        }
    }

    fn dns(&mut self, p: &RawPacket<'_>, src: Endpoint, dst: Endpoint, d: &[u8], tcp: bool) {
        let (Some(id), Some(flags)) = (be16(d, 0), be16(d, 2)) else { return };
        let response = flags & 0x8000 != 0;
        let rcode = (flags & 0x000f) as u8;
        let seen = Seen::of(p);
        if response {
            if tcp {
                self.counts.dns_tcp_responses += 1;
            } else {
                self.counts.dns_responses += 1;
            }
            if let Some(qs) = self.dns.get_mut(&(dst, src, id)) {
                for q in qs.iter_mut() {
                    q.answered = true;
                    q.rcode = Some(rcode);
                }
            }
            if rcode == 2 || rcode == 3 || rcode == 5 {
                // The name is only kept for these rcodes: no allocation for other answers.
                let mut name = std::mem::take(&mut self.scratch);
                if question_into(d, &mut name).is_none() {
                    name.clear();
                    name.push('?');
                }
                let names = self.dns_rcodes.entry(rcode).or_default();
                match names.get_mut(name.as_str()) {
                    Some(seen_before) => seen_before.push(seen),
                    None => {
                        names.insert(name.clone(), vec![seen]);
                    }
                }
                self.scratch = name;
            }
        } else {
            if tcp {
                self.counts.dns_tcp_queries += 1;
            } else {
                self.counts.dns_queries += 1;
            }
            if self.dns.len() < MAX_FLOWS || self.dns.contains_key(&(src, dst, id)) {
                let (name, qtype) = question(d).unwrap_or_else(|| ("?".to_string(), 0));
                let q = DnsQuery { seen, name, qtype, answered: false, rcode: None, tcp };
                self.dns.entry((src, dst, id)).or_default().push(q);
            }
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
            (Some(3), 64) => {
                // Cookie reply: the responder is under load and asks for a MAC2 before it
                // spends a Diffie-Hellman on the initiation (WireGuard paper 5.3).
                self.counts.wireguard_cookie_replies += 1;
                if self.wg_cookies.len() < MAX_ENTRIES || self.wg_cookies.contains_key(&(src, dst)) {
                    self.wg_cookies.entry((src, dst)).or_default().push(Seen::of(p));
                }
            }
            // Transport data: 16-byte header, then the padded ciphertext and its 16-byte tag
            // (a keepalive is exactly 32 bytes); padding keeps the length a multiple of 16.
            (Some(4), n) if n >= 32 && n % 16 == 0 => {
                self.counts.wireguard_transport += 1;
                if self.wg_data.len() >= MAX_ENTRIES && !self.wg_data.contains_key(&(src, dst)) {
                    return;
                }
                let w = self.wg_data.entry((src, dst)).or_default();
                if n == 32 {
                    w.keepalives += 1;
                } else {
                    w.data.push(Seen::of(p));
                }
                if let Some(receiver) = be32(d, 4) {
                    if w.receivers.len() < 8 && !w.receivers.contains(&receiver) {
                        w.receivers.push(receiver);
                    }
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
        let message_id = be32(d, 20).unwrap_or(0);
        self.counts.ike_messages += 1;
        let seen = Seen::of(p);
        let response = flags & 0x20 != 0;
        match exchange {
            34 => {
                self.counts.ike_sa_init += 1;
                if response {
                    self.ike_answered.insert(spi_i);
                } else {
                    self.ike_init.entry((src, dst, spi_i)).or_default().push(seen);
                }
            }
            35 => {
                self.counts.ike_auth += 1;
                if response {
                    self.ike_auth_answered.insert((spi_i, message_id));
                } else if self.ike_auth.len() < MAX_ENTRIES {
                    self.ike_auth.entry((src, dst, spi_i, message_id)).or_default().push(seen);
                }
            }
            _ => {}
        }
        // Walk the unencrypted payload chain for NOTIFY (41) error types (< 16384). IKE_AUTH
        // and later exchanges are inside the encrypted SK payload (46): their notifies
        // (AUTHENTICATION_FAILED, TS_UNACCEPTABLE) cannot be seen in a capture.
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
                        self.ike_notify.entry((kind, src, dst)).or_default().push((seen, exchange, response));
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
                if let Some(m) = mtu.filter(|m| *m >= 68) {
                    let seen = Seen::of(p);
                    if self.ptb.len() < MAX_ENTRIES {
                        self.ptb_senders.insert(q.src);
                        let e = self.ptb.entry((q.src, q.dst)).or_insert((m, seen));
                        if m < e.0 {
                            *e = (m, seen);
                        }
                    }
                }
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
            .map(|(k, f)| (f.ends(k), f))
            .map(|((a, b), f)| FlowSummary {
                protocol: "tcp",
                client: sock(a.0, a.1),
                server: sock(b.0, b.1),
                packets: f.dirs[0].packets + f.dirs[1].packets,
                bytes: f.dirs[0].bytes + f.dirs[1].bytes,
                retransmissions: Some(f.retrans.count),
                duplicate_acks: Some(f.dup_acks[0].count + f.dup_acks[1].count),
                zero_windows: Some(f.zero_windows[0].count + f.zero_windows[1].count),
                handshake_rtt_ms: rtt(f).map(|s| (s * 1e6).round() / 1e3),
                mss: f.dirs[0].mss.or(f.dirs[1].mss),
                vxlan: f.vxlan,
            })
            .collect();
        out.extend(
            self.udp
                .iter()
                .map(|(k, (packets, bytes, vxlan, origin_low))| {
                    let (a, b) = if *origin_low { *k } else { (k.1, k.0) };
                    (a, b, packets, bytes, vxlan)
                })
                .map(|(a, b, packets, bytes, vxlan)| FlowSummary {
                    protocol: "udp",
                    client: sock(a.0, a.1),
                    server: sock(b.0, b.1),
                    packets: *packets,
                    bytes: *bytes,
                    retransmissions: None,
                    duplicate_acks: None,
                    zero_windows: None,
                    handshake_rtt_ms: None,
                    mss: None,
                    vxlan: *vxlan,
                }),
        );
        // Unstable is fine: no two rows share protocol, client and server.
        out.sort_unstable_by(|x, y| {
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
                let loc =
                    Location::Packet { path: self.path.clone(), number: s.number, timestamp: Some(s.timestamp()) };
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
        self.esp_findings(&mut out);
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
        self.mtu_findings(&mut out);
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
        let mut flows: Vec<_> = self.tcp.iter().map(|(k, f)| (f.ends(k), f)).collect();
        flows.sort_by_key(|(k, _)| *k);
        for ((a, b), flow) in flows {
            // Most flows have nothing to report: skip them before formatting their names.
            let reportable = flow.retrans.count > 0
                || (flow.syn.is_some() && flow.syn_ack.is_none())
                || flow.dup_acks.iter().any(|d| d.count >= DUP_ACK_REPORT)
                || flow.zero_windows.iter().any(|z| z.count > 0)
                || flow.dirs.iter().any(|d| d.big_retrans.count >= 2 && !d.big_acked && d.big_end.is_some());
            if !reportable {
                continue;
            }
            let name = format!("{} -> {}", sock(a.0, a.1), sock(b.0, b.1));
            let ends = [sock(a.0, a.1), sock(b.0, b.1)];
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
            for (i, sender) in ends.iter().enumerate() {
                let other = &ends[1 - i];
                let dups = &flow.dup_acks[i];
                if dups.count >= DUP_ACK_REPORT {
                    let mut f = self.finding(
                        "PCAP-011",
                        format!("tcp/{name}/dup-ack/{sender}"),
                        format!("{} duplicate ACK(s) from {sender} on {name}", dups.count),
                        format!(
                            "{sender} acknowledged the same byte {} more time(s) (Wireshark: \
                             tcp.analysis.duplicate_ack): segments from {other} were lost or reordered on the \
                             way{}. Three in a row trigger a fast retransmit.",
                            dups.count,
                            if flow.vxlan { " (inside VXLAN)" } else { "" }
                        ),
                    );
                    f.evidence = self.evidence(&dups.first, |_| "duplicate ACK".to_string());
                    out.push(f);
                }
                let zero = &flow.zero_windows[i];
                if zero.count > 0 {
                    let mut f = self.finding(
                        "PCAP-012",
                        format!("tcp/{name}/zero-window/{sender}"),
                        format!("{sender} advertised a zero receive window {} time(s) on {name}", zero.count),
                        format!(
                            "{sender} told {other} to stop sending (window 0, Wireshark: tcp.analysis.zero_window) \
                             {} time(s): its application does not read the socket as fast as data arrives. The \
                             network is not the bottleneck here.",
                            zero.count
                        ),
                    );
                    f.evidence = self.evidence(&zero.first, |_| "window 0".to_string());
                    out.push(f);
                }
                let addrs = if i == 0 { (a.0, b.0) } else { (b.0, a.0) };
                self.black_hole(flow, i, addrs, &ends, &name, out);
            }
        }
    }

    /// MTU black hole: full-size segments from one side are retransmitted and never
    /// acknowledged while smaller packets get through, and no ICMP too-big came back.
    fn black_hole(
        &self,
        flow: &TcpFlow,
        i: usize,
        (from, to): (IpAddr, IpAddr),
        ends: &[String; 2],
        name: &str,
        out: &mut Vec<Finding>,
    ) {
        let (d, r) = (&flow.dirs[i], &flow.dirs[1 - i]);
        if d.big_retrans.count < 2 || d.big_acked || d.big_end.is_none() {
            return;
        }
        // Proof that the path works for small packets: the handshake or small data got through.
        let small_ok = flow.syn_ack.is_some() || r.small_data > 0 || d.small_data > 0;
        let Some(first) = d.big_retrans.first.first() else { return };
        let icmp_seen = self.ptb.contains_key(&(from, to));
        if !small_ok || icmp_seen {
            return;
        }
        let mut f = self.finding(
            "PCAP-014",
            format!("tcp/{name}/mtu-black-hole/{}", ends[i]),
            format!(
                "MTU black hole: {} full-size segment(s) from {} retransmitted, never acknowledged",
                d.big_retrans.count, ends[i]
            ),
            format!(
                "{} sent segments in {}-byte IP packets to {} and retransmitted them {} time(s) without any \
                 being acknowledged, while smaller packets (the handshake{}) got through, and no ICMP \
                 fragmentation-needed / packet-too-big message for {to} is in the capture. A link on the path \
                 has a smaller MTU and the ICMP that would tell the sender is filtered: path MTU discovery \
                 cannot work. First retransmission at {}.",
                ends[i],
                d.max_len,
                ends[1 - i],
                d.big_retrans.count,
                if r.small_data + d.small_data > 0 { ", small data segments" } else { "" },
                first.timestamp()
            ),
        );
        f.evidence =
            self.evidence(&d.big_retrans.first, |_| format!("retransmitted full-size segment ({} bytes)", d.max_len));
        out.push(f);
    }

    fn mtu_findings(&self, out: &mut Vec<Finding>) {
        for ((src, dst), o) in &self.oversize {
            let source = match &o.from_icmp {
                Some(s) => format!("the MTU {} announced by ICMP in packet {}", o.mtu, s.number),
                None => format!("the path MTU {} given with --mtu", o.mtu),
            };
            let mut f = self.finding(
                "PCAP-013",
                format!("mtu/{src}/{dst}"),
                format!("{} packet(s) from {src} to {dst} larger than the path MTU {}", o.packets.count, o.mtu),
                format!(
                    "{} don't-fragment packet(s) from {src} to {dst} (largest {} bytes) exceed {source}: a router \
                     on the path must drop them.{} Captured on the sending host, TSO/GSO super-packets also \
                     look oversized: capture on the wire or turn offloads off (`ethtool -K DEV tso off gso off`).",
                    o.packets.count,
                    o.largest,
                    if o.from_icmp.is_some() {
                        " The sender ignores the ICMP message or never receives it."
                    } else {
                        ""
                    },
                ),
            );
            f.evidence = self.evidence(&o.packets.first, |_| format!("DF packet over MTU {}", o.mtu));
            out.push(f);
        }
        for ((src, dst, proto), fr) in &self.fragments {
            let mut f = self.finding(
                "PCAP-020",
                format!("fragments/{src}/{dst}/{proto}"),
                format!("{} IP fragment(s) from {src} to {dst} (protocol {proto})", fr.fragments.count),
                format!(
                    "{} fragment(s) of {} datagram(s) from {src} to {dst}{}: packets larger than the path MTU are \
                     being fragmented. Fragments are dropped by many firewalls, NATs and load balancers (no \
                     ports after the first), and a lost fragment loses the whole datagram.",
                    fr.fragments.count,
                    fr.datagrams,
                    if fr.v6 { " (IPv6: the sender fragmented itself)" } else { "" }
                ),
            );
            f.evidence = self.evidence(&fr.fragments.first, |_| "fragment".to_string());
            out.push(f);
        }
    }

    fn dns_findings(&self, out: &mut Vec<Finding>) {
        // Unanswered queries per (client, server).
        let mut unanswered: BTreeMap<(Endpoint, Endpoint), Vec<&DnsQuery>> = BTreeMap::new();
        let mut by_question: BTreeMap<(IpAddr, Endpoint, &str, u16), Vec<&DnsQuery>> = BTreeMap::new();
        for ((client, server, _), qs) in &self.dns {
            for q in qs {
                if !q.answered {
                    unanswered.entry((*client, *server)).or_default().push(q);
                }
                by_question.entry((client.0, *server, q.name.as_str(), q.qtype)).or_default().push(q);
            }
        }
        for ((client, server), mut qs) in unanswered {
            qs.sort_by_key(|q| q.seen.number);
            let seen: Vec<Seen> = qs.iter().map(|q| q.seen).collect();
            let mut f = self.finding(
                "PCAP-005",
                format!("dns/{}", sock(server.0, server.1)),
                format!("{} DNS quer(ies) to {} without an answer", qs.len(), sock(server.0, server.1)),
                format!(
                    "{} sent {} DNS quer(ies) to {}{} that got no response in this capture (first: {}).",
                    client.0,
                    qs.len(),
                    sock(server.0, server.1),
                    if qs.iter().all(|q| q.tcp) { " over TCP" } else { "" },
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
        let chained = self.search_chains(out);
        for ((rcode, name), seen) in
            self.dns_rcodes.iter().flat_map(|(r, names)| names.iter().map(move |n| ((r, n.0), n.1)))
        {
            // NXDOMAIN for a search-list candidate is how the expansion works, not a problem of
            // its own: PCAP-015 reports the chain.
            if *rcode == 3 && chained.contains(name.as_str()) {
                continue;
            }
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
                    [a, b] if !a.answered && (4.5..=5.5).contains(&b.seen.secs_since(&a.seen)) => Some(b.seen),
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

    /// Search-list expansion (resolv.conf `search` + `ndots`): NXDOMAIN answers for
    /// NAME.suffix candidates before the query that is answered, per client and query type.
    /// Adds PCAP-015 findings and returns the candidate names that belong to a chain.
    fn search_chains(&self, out: &mut Vec<Finding>) -> HashSet<&str> {
        let mut queries: Vec<(IpAddr, &DnsQuery)> =
            self.dns.iter().flat_map(|((client, _, _), qs)| qs.iter().map(move |q| (client.0, q))).collect();
        queries.sort_by_key(|(_, q)| q.seen.number);
        // Per (client, qtype): NXDOMAIN queries not yet part of a chain.
        let mut pending: HashMap<(IpAddr, u16), Vec<&DnsQuery>> = HashMap::new();
        // Per (client, answered name): lookups, the most queries one lookup took, evidence.
        let mut lookups: BTreeMap<(IpAddr, &str), Lookups<'_>> = BTreeMap::new();
        let mut chained: HashSet<&str> = HashSet::new();
        for (client, q) in queries {
            match q.rcode {
                Some(3) => {
                    let list = pending.entry((client, q.qtype)).or_default();
                    if !list.iter().any(|p| p.name == q.name) && list.len() < 64 {
                        list.push(q);
                    }
                }
                Some(0) => {
                    let Some(list) = pending.get_mut(&(client, q.qtype)) else { continue };
                    let first_label = q.name.split('.').next().unwrap_or_default();
                    let prefix = format!("{first_label}.");
                    let (chain, rest): (Vec<&DnsQuery>, Vec<&DnsQuery>) = list.drain(..).partition(|c| {
                        c.name != q.name
                            && c.name.starts_with(&prefix)
                            && q.seen.time_nanos.saturating_sub(c.seen.time_nanos) <= SEARCH_WINDOW_NANOS
                    });
                    *list = rest;
                    if chain.len() < 2 {
                        continue;
                    }
                    let e = lookups.entry((client, q.name.as_str())).or_default();
                    e.0 += 1;
                    e.1 = e.1.max(chain.len() + 1);
                    if e.2.is_empty() {
                        e.2 = chain.iter().map(|c| c.seen).chain(std::iter::once(q.seen)).collect();
                    }
                    for c in &chain {
                        chained.insert(c.name.as_str());
                        if !e.3.contains(&c.name.as_str()) {
                            e.3.push(c.name.as_str());
                        }
                    }
                }
                _ => {}
            }
        }
        for ((client, name), (count, most, seen, candidates)) in lookups {
            let mut f = self.finding(
                "PCAP-015",
                format!("dns/{client}/search/{name}"),
                format!("Looking up {name} took {most} DNS queries ({} NXDOMAIN from the search list)", most - 1),
                format!(
                    "{client} resolved {name} {count} time(s); each lookup first tried search-list candidates \
                     that do not exist ({}), then the name itself. With Kubernetes' `ndots:5` every external \
                     name costs {}x the queries and the latency of each NXDOMAIN round trip.",
                    candidates.join(", "),
                    most
                ),
            );
            f.evidence = self.evidence(&seen, |s| {
                if s == seen.last().unwrap_or(s) {
                    format!("{name}: answered")
                } else {
                    "search-list candidate: NXDOMAIN".to_string()
                }
            });
            out.push(f);
        }
        chained
    }

    fn tunnel_findings(&self, out: &mut Vec<Finding>) {
        for ((init, resp), inits) in &self.wg_init {
            let lost: Vec<Seen> =
                inits.iter().filter(|(idx, _)| !self.wg_answered.contains(idx)).map(|(_, s)| *s).collect();
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
        for ((resp, init), cookies) in &self.wg_cookies {
            let mut f = self.finding(
                "PCAP-016",
                format!("wireguard/{}/{}/cookie", sock(resp.0, resp.1), sock(init.0, init.1)),
                format!(
                    "{} WireGuard cookie reply(ies) from {} (responder under load)",
                    cookies.count,
                    sock(resp.0, resp.1)
                ),
                format!(
                    "{} answered handshake initiations from {} with {} cookie reply(ies) (type 3): it is under \
                     load (many initiations queued) and makes initiators prove their address before it does \
                     the Diffie-Hellman. Handshakes are delayed; a flood of initiations, or many peers \
                     re-handshaking at once, is the usual cause.",
                    sock(resp.0, resp.1),
                    sock(init.0, init.1),
                    cookies.count
                ),
            );
            f.evidence = self.evidence(&cookies.first, |_| "cookie reply (type 3, 64 bytes)".to_string());
            out.push(f);
        }
        let mut pairs: Vec<_> = self.wg_data.iter().collect();
        pairs.sort_by_key(|(k, _)| **k);
        for ((from, to), w) in pairs {
            let back = self.wg_data.get(&(*to, *from)).map_or(0, |b| b.data.count);
            if w.data.count < 3 || back > 0 {
                continue;
            }
            let receivers: Vec<String> = w.receivers.iter().map(|r| format!("{:08x}", r.swap_bytes())).collect();
            let mut f = self.finding(
                "PCAP-017",
                format!("wireguard/{}/{}/one-way", sock(from.0, from.1), sock(to.0, to.1)),
                format!(
                    "WireGuard data only one way: {} packet(s) {} -> {}, none back",
                    w.data.count,
                    sock(from.0, from.1),
                    sock(to.0, to.1)
                ),
                format!(
                    "{} sent {} transport data message(s) (receiver index {}) to {} and got no data back{}. The \
                     handshake works but the peer drops what it decrypts or cannot send: check `allowed-ips` on \
                     the peer (must contain the inner source address), its routes back into the tunnel, and \
                     its firewall on the wg interface.",
                    sock(from.0, from.1),
                    w.data.count,
                    receivers.join(", "),
                    sock(to.0, to.1),
                    match self.wg_data.get(&(*to, *from)).map_or(0, |b| b.keepalives) {
                        0 => String::new(),
                        k => format!(" (only {k} keepalive(s))"),
                    }
                ),
            );
            f.evidence = self.evidence(&w.data.first, |_| "transport data (type 4)".to_string());
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
        for ((init, resp, spi, mid), reqs) in &self.ike_auth {
            if reqs.len() < 2 || self.ike_auth_answered.contains(&(*spi, *mid)) {
                continue;
            }
            let mut f = self.finding(
                "PCAP-018",
                format!("ike/{}/{}/auth", sock(init.0, init.1), sock(resp.0, resp.1)),
                format!("IKE_AUTH to {} retransmitted {} times without answer", sock(resp.0, resp.1), reqs.len() - 1),
                format!(
                    "{} sent the IKE_AUTH request (SPIi {spi:016x}, message {mid}) {} times and {} never \
                     answered, although IKE_SA_INIT worked. IKE_AUTH is the large message (certificates): \
                     its IP fragments are dropped, or UDP 4500 (NAT-T switches there) is blocked.",
                    sock(init.0, init.1),
                    reqs.len(),
                    sock(resp.0, resp.1)
                ),
            );
            f.evidence = self.evidence(reqs, |_| "IKE_AUTH request".to_string());
            out.push(f);
        }
        for ((kind, from, to), seen) in &self.ike_notify {
            let name = match kind {
                7 => "INVALID_SYNTAX",
                14 => "NO_PROPOSAL_CHOSEN",
                17 => "INVALID_KE_PAYLOAD",
                24 => "AUTHENTICATION_FAILED",
                34 => "SINGLE_PAIR_REQUIRED",
                35 => "NO_ADDITIONAL_SAS",
                36 => "INTERNAL_ADDRESS_FAILURE",
                37 => "FAILED_CP_REQUIRED",
                38 => "TS_UNACCEPTABLE",
                _ => "error notify",
            };
            let mut f = self.finding(
                "PCAP-010",
                format!("ike/{}/{}/{kind}", sock(from.0, from.1), sock(to.0, to.1)),
                format!("IKE {name} ({kind}) from {}", sock(from.0, from.1)),
                format!(
                    "{} IKE message(s) from {} to {} carried notify {name} ({kind}) in {}.",
                    seen.len(),
                    sock(from.0, from.1),
                    sock(to.0, to.1),
                    seen.first().map_or("?".to_string(), |(_, x, r)| exchange_name(*x, *r))
                ),
            );
            let seen_only: Vec<Seen> = seen.iter().map(|(s, _, _)| *s).collect();
            f.evidence = self.evidence(&seen_only, |s| {
                let (_, x, r) = seen.iter().find(|(t, _, _)| t == s).copied().unwrap_or((*s, 0, false));
                format!("NOTIFY {name} ({kind}) in {}", exchange_name(x, r))
            });
            out.push(f);
        }
    }

    fn esp_findings(&self, out: &mut Vec<Finding>) {
        let mut pairs: Vec<_> = self.esp.iter().collect();
        pairs.sort_by_key(|(k, _)| **k);
        for ((from, to), e) in pairs {
            if e.packets.count < 3 || self.esp.contains_key(&(*to, *from)) {
                continue;
            }
            let spis: Vec<String> = e.spis.iter().map(|s| format!("0x{s:08x}")).collect();
            let mut f = self.finding(
                "PCAP-019",
                format!("esp/{from}/{to}"),
                format!("ESP only one way: {} packet(s) {from} -> {to}, none back", e.packets.count),
                format!(
                    "{from} sent {} ESP packet(s){} with SPI {} to {to}, and no ESP came back in this capture. \
                     The IKE side is up, but the return direction is lost: ESP (IP protocol 50) or UDP 4500 \
                     dropped by a firewall or security group, a missing return route, or the peer has no \
                     matching inbound SA (check `swanctl --list-sas` and `ip xfrm state` on both sides).",
                    e.packets.count,
                    if e.udp { " (in UDP 4500)" } else { "" },
                    spis.join(", "),
                ),
            );
            f.evidence = self.evidence(&e.packets.first, |_| "ESP".to_string());
            out.push(f);
        }
    }
}

impl TcpFlow {
    /// The table key as (first sender, other side).
    fn ends(&self, key: &(Endpoint, Endpoint)) -> (Endpoint, Endpoint) {
        if self.origin_low {
            *key
        } else {
            (key.1, key.0)
        }
    }

    /// One segment through Wireshark's tcp_analyze_sequence_number (epan/dissectors/packet-tcp.c,
    /// 4.0): zero-window probes, zero windows, keep-alives, duplicate ACKs, then spurious / fast /
    /// plain retransmissions against out-of-order, so the counts match its display filters.
    fn segment(
        &mut self,
        counts: &mut Counts,
        ip: &IpPacket<'_>,
        t: &TcpSegment<'_>,
        inner: bool,
        forward: bool,
        seen: Seen,
    ) -> TcpVerdict {
        let now = seen.time_nanos;
        let (syn, ackf, fin, rst) =
            (t.has(tcp_flags::SYN), t.has(tcp_flags::ACK), t.has(tcp_flags::FIN), t.has(tcp_flags::RST));
        self.vxlan |= inner;
        if rst {
            self.resets += 1;
        }
        if syn && !ackf {
            self.syn.get_or_insert(seen);
            self.mru_syn = Some(now);
        }
        if syn && ackf && self.syn_ack.is_none() {
            self.syn_ack = Some(seen);
        }
        let i = usize::from(!forward);
        let [d0, d1] = &mut self.dirs;
        let (d, r) = if forward { (d0, d1) } else { (d1, d0) };
        d.packets += 1;
        d.bytes += ip.total_len as u64;
        if syn {
            d.mss = d.mss.or(t.mss);
            d.window_scale = d.window_scale.or(t.window_scale);
        }
        let seglen = u32::try_from(t.payload_len).unwrap_or(u32::MAX);
        let (seq, ack) = (t.seq, t.ack);
        // Wireshark compares scaled windows once both SYNs announced scaling.
        let window = match (d.window_scale, r.window_scale, syn) {
            (Some(s), Some(_), false) => u32::from(t.window) << s.min(14),
            _ => u32::from(t.window),
        };
        if d.base_seq.is_none() {
            d.base_seq = Some(if syn { seq } else { seq.wrapping_sub(1) });
        }
        let plain = !syn && !fin && !rst;
        let (mut zero_window_probe, mut keepalive) = (false, false);
        if seglen == 1 && seq == d.next_seq && r.window == 0 {
            zero_window_probe = true;
        } else {
            if window == 0 && plain {
                counts.tcp_zero_windows += 1;
                self.zero_windows[i].push(seen);
            }
            keepalive = seglen <= 1 && seq == d.next_seq.wrapping_sub(1) && plain;
            let repeat = seglen == 0 && plain && seq == d.next_seq && ack == d.last_ack && window == d.window;
            // A repeated ACK answering a keep-alive is a keep-alive ACK, not a duplicate.
            if repeat && window != 0 && !r.last_keepalive {
                d.dupacks += 1;
                counts.tcp_duplicate_acks += 1;
                self.dup_acks[i].push(seen);
            }
        }
        if ack != d.last_ack {
            d.dupacks = 0;
        }
        let mut retransmission = false;
        if (seglen > 0 || syn || fin) && !keepalive {
            let mut not_advanced = d.next_seq != 0 && seq_lt(seq, d.next_seq);
            // Wireshark: new data right after a possible zero-window probe byte.
            if seglen > 1 && d.next_seq.wrapping_sub(1) == seq {
                not_advanced = false;
            }
            if seglen > 0 && r.last_ack != 0 && !seq_gt(seq.wrapping_add(seglen), r.last_ack) {
                // Spurious: data the receiver had already acknowledged.
                retransmission = true;
            } else if not_advanced
                && r.dupacks >= 2
                && r.last_ack == seq
                && now.saturating_sub(r.last_ack_time) < FAST_RETRANS_NANOS
            {
                retransmission = true;
            } else if not_advanced {
                let threshold = self.first_rtt.filter(|r| *r > 0).unwrap_or(OOO_THRESHOLD_NANOS);
                let expected = seq.wrapping_add(seglen).wrapping_add(u32::from(syn || fin));
                let out_of_order = now.saturating_sub(d.next_seq_time) < threshold && d.next_seq != expected;
                retransmission = !out_of_order;
            }
        }
        // MTU bookkeeping: full-size data segments, their retransmissions and acknowledgement.
        if seglen > 0 {
            d.max_len = d.max_len.max(ip.total_len);
            if ip.total_len > BIG_PACKET {
                if d.big_end.is_none() {
                    d.big_end = Some(seq.wrapping_add(seglen));
                }
                if retransmission {
                    d.big_retrans.push(seen);
                }
            } else {
                d.small_data += 1;
            }
        }
        if ackf {
            if let Some(end) = r.big_end {
                if !seq_lt(ack, end) {
                    r.big_acked = true;
                }
            }
        }
        let end = seq.wrapping_add(seglen).wrapping_add(u32::from(syn || fin));
        if (d.next_seq == 0 || seq_gt(end, d.next_seq)) && !zero_window_probe {
            d.next_seq = end;
            d.next_seq_time = now;
        }
        d.window = window;
        d.last_ack = ack;
        d.last_ack_time = now;
        d.last_keepalive = keepalive;
        d.last_zero_window_probe = zero_window_probe;
        if ackf && !syn && self.first_rtt.is_none() {
            if let Some(s) = self.mru_syn {
                self.first_rtt = Some(now.saturating_sub(s)).filter(|r| *r > 0);
            }
        }
        if retransmission {
            counts.tcp_retransmissions += 1;
            self.retrans.push(seen);
        }
        TcpVerdict { retransmission }
    }
}

fn exchange_name(exchange: u8, response: bool) -> String {
    let name = match exchange {
        34 => "IKE_SA_INIT",
        35 => "IKE_AUTH",
        36 => "CREATE_CHILD_SA",
        37 => "INFORMATIONAL",
        _ => return format!("exchange {exchange}"),
    };
    format!("{name} {}", if response { "response" } else { "request" })
}

fn rtt(f: &TcpFlow) -> Option<f64> {
    match (&f.syn, &f.syn_ack) {
        (Some(s), Some(a)) if a.time_nanos >= s.time_nanos => Some(a.secs_since(s)),
        _ => None,
    }
}

fn sock(ip: IpAddr, port: u16) -> String {
    match ip {
        // Written by hand: `format!` dominated `flows()`, which formats every flow of the capture.
        IpAddr::V4(a) => {
            let mut s = String::with_capacity(21);
            for (i, o) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                push_decimal(&mut s, u32::from(o));
            }
            s.push(':');
            push_decimal(&mut s, u32::from(port));
            s
        }
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Appends `n` in decimal, as `Display` writes it.
fn push_decimal(s: &mut String, n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    s.extend(digits[i..].iter().map(|&d| char::from(d)));
}

/// The first question of a DNS message: name (dotted, `.` for the root) and type.
fn question(d: &[u8]) -> Option<(String, u16)> {
    let mut name = String::new();
    let qtype = question_into(d, &mut name)?;
    Some((name, qtype))
}

/// [`question`] into a reused buffer (cleared first; left undefined when `None`).
fn question_into(d: &[u8], name: &mut String) -> Option<u16> {
    name.clear();
    if be16(d, 4)? == 0 {
        return None;
    }
    let mut off = 12usize;
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
        if !name.is_empty() {
            name.push('.');
        }
        name.extend(label.iter().map(|&b| if b.is_ascii_graphic() { char::from(b) } else { '?' }));
        off += 1 + len;
    }
    if name.is_empty() {
        name.push('.');
    }
    be16(d, off)
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

    fn ike_msg(spi: u8, exchange: u8, response: bool, message_id: u8) -> Vec<u8> {
        // IKE header: SPIi, SPIr, next payload SK (46), version 2.0, exchange, flags, message id, length.
        let mut v = vec![0, 0, 0, 0, 0, 0, 0, spi, 0, 0, 0, 0, 0, 0, 0, 9, 46, 0x20, exchange];
        v.push(if response { 0x20 } else { 0x08 });
        v.extend_from_slice(&[0, 0, 0, message_id, 0, 0, 0, 28]);
        v
    }

    #[test]
    fn ike_auth_without_answer_is_named_and_reported() {
        let (a, f) = run(&[
            (0, ipv4(17, A, B, &udp(500, 500, &ike_msg(1, 34, false, 0)))),
            (10, ipv4(17, B, A, &udp(500, 500, &ike_msg(1, 34, true, 0)))),
            (20, ipv4(17, A, B, &udp(4500, 4500, &[&[0u8, 0, 0, 0][..], &ike_msg(1, 35, false, 1)].concat()))),
            (1020, ipv4(17, A, B, &udp(4500, 4500, &[&[0u8, 0, 0, 0][..], &ike_msg(1, 35, false, 1)].concat()))),
            (3020, ipv4(17, A, B, &udp(4500, 4500, &[&[0u8, 0, 0, 0][..], &ike_msg(1, 35, false, 1)].concat()))),
            // Another SA whose IKE_AUTH was answered: no finding.
            (4000, ipv4(17, A, B, &udp(4500, 4500, &[&[0u8, 0, 0, 0][..], &ike_msg(2, 35, false, 1)].concat()))),
            (5000, ipv4(17, A, B, &udp(4500, 4500, &[&[0u8, 0, 0, 0][..], &ike_msg(2, 35, false, 1)].concat()))),
            (5001, ipv4(17, B, A, &udp(4500, 4500, &[&[0u8, 0, 0, 0][..], &ike_msg(2, 35, true, 1)].concat()))),
        ]);
        assert_eq!((a.counts.ike_messages, a.counts.ike_sa_init, a.counts.ike_auth), (8, 2, 6));
        let auth: Vec<&Finding> = f.iter().filter(|f| f.rule == "PCAP-018").collect();
        assert_eq!(auth.len(), 1);
        assert_eq!(auth[0].title, "IKE_AUTH to 10.0.0.2:4500 retransmitted 2 times without answer");
        assert!(!f.iter().any(|f| f.rule == "PCAP-009"), "IKE_SA_INIT was answered");
    }

    #[test]
    fn esp_one_way_by_spi_and_esp_in_udp() {
        let esp = |spi: u32| [&spi.to_be_bytes()[..], &[0, 0, 0, 1, 7, 7, 7, 7, 7, 7, 7, 7][..]].concat();
        let c: [u8; 4] = [10, 0, 0, 3];
        let (a, f) = run(&[
            // A <-> B both ways (protocol 50): fine.
            (0, ipv4(50, A, B, &esp(0x100))),
            (1, ipv4(50, B, A, &esp(0x200))),
            (2, ipv4(50, A, B, &esp(0x100))),
            (3, ipv4(50, B, A, &esp(0x200))),
            (4, ipv4(50, A, B, &esp(0x100))),
            // A -> C in UDP 4500, nothing back; a NAT-T keepalive (1 byte 0xff) is not ESP.
            (5, ipv4(17, A, c, &udp(4500, 4500, &esp(0xc0ffee)))),
            (6, ipv4(17, A, c, &udp(4500, 4500, &esp(0xc0ffee)))),
            (7, ipv4(17, A, c, &udp(4500, 4500, &esp(0xc0ffee)))),
            (8, ipv4(17, c, A, &udp(4500, 4500, &[0xff]))),
        ]);
        assert_eq!(a.counts.esp_packets, 8);
        let one: Vec<&Finding> = f.iter().filter(|f| f.rule == "PCAP-019").collect();
        assert_eq!(one.len(), 1, "{one:?}");
        assert_eq!(one[0].title, "ESP only one way: 3 packet(s) 10.0.0.1 -> 10.0.0.3, none back");
        assert!(one[0].detail.contains("0x00c0ffee") && one[0].detail.contains("UDP 4500"), "{}", one[0].detail);
    }

    #[test]
    fn dns_over_tcp_messages_split_and_packed() {
        let q = |id: u16, resp: bool| {
            let mut v = id.to_be_bytes().to_vec();
            v.extend_from_slice(&[if resp { 0x81 } else { 0x01 }, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]);
            v.extend_from_slice(&[1, b'a', 3, b'l', b'a', b'b', 0, 0, 1, 0, 1]);
            v
        };
        let framed = |m: &[u8]| [&(m.len() as u16).to_be_bytes()[..], m].concat();
        let two = [framed(&q(1, false)), framed(&q(2, false))].concat();
        let third = framed(&q(3, false));
        let (first_half, second_half) = third.split_at(10);
        let seg = |seq: u32, flags: u8, payload: &[u8], fwd: bool| {
            let t = if fwd { tcp(3000, 53, seq, flags, payload) } else { tcp(53, 3000, seq, flags, payload) };
            if fwd {
                ipv4(6, A, B, &t)
            } else {
                ipv4(6, B, A, &t)
            }
        };
        let start = 1000u32;
        let after_two = start + 1 + two.len() as u32;
        let after_split = after_two + third.len() as u32;
        let (a, f) = run(&[
            (0, seg(start, 0x02, &[], true)),
            (1, seg(7000, 0x12, &[], false)),
            (2, seg(start + 1, 0x18, &two, true)),
            // A message split over two segments: skipped, and the next one is found again.
            (3, seg(after_two, 0x18, first_half, true)),
            (4, seg(after_two + 10, 0x18, second_half, true)),
            (5, seg(after_split, 0x18, &framed(&q(4, false)), true)),
            (6, seg(7001, 0x18, &framed(&q(1, true)), false)),
        ]);
        assert_eq!((a.counts.dns_tcp_queries, a.counts.dns_tcp_responses, a.counts.dns_tcp_skipped), (3, 1, 1));
        let un = f.iter().find(|f| f.rule == "PCAP-005").expect("unanswered");
        assert!(un.title.starts_with("2 DNS quer"), "{}", un.title);
        assert!(un.detail.contains("over TCP"), "{}", un.detail);
    }

    #[test]
    fn duplicate_acks_zero_window_and_fast_retransmission() {
        // Receiver B acks 100 three more times (same window), then advertises window 0.
        let ack = |ms: u64, ackno: u32, win: u16| {
            let mut t = tcp(80, 1000, 5000, 0x10, &[]);
            t[8..12].copy_from_slice(&ackno.to_be_bytes());
            t[14..16].copy_from_slice(&win.to_be_bytes());
            (ms, ipv4(6, B, A, &t))
        };
        let data = |ms: u64, seq: u32| (ms, ipv4(6, A, B, &tcp(1000, 80, seq, 0x18, &[b'x'; 100])));
        let (a, f) = run(&[
            data(0, 100),
            ack(1, 200, 500),
            data(2, 200),
            data(3, 300),
            ack(4, 200, 500),
            ack(5, 200, 500),
            ack(6, 200, 500),
            data(7, 200), // within 20 ms of the dup ACKs: fast retransmission
            ack(8, 400, 0),
        ]);
        assert_eq!(a.counts.tcp_duplicate_acks, 3);
        assert_eq!(a.counts.tcp_retransmissions, 1);
        assert_eq!(a.counts.tcp_zero_windows, 1);
        let d = f.iter().find(|f| f.rule == "PCAP-011").expect("PCAP-011");
        assert_eq!(d.title, "3 duplicate ACK(s) from 10.0.0.2:80 on 10.0.0.1:1000 -> 10.0.0.2:80");
        assert!(f.iter().any(|f| f.rule == "PCAP-012"));
        let flow = a.flows().into_iter().find(|f| f.protocol == "tcp").unwrap();
        assert_eq!((flow.duplicate_acks, flow.zero_windows), (Some(3), Some(1)));
    }

    #[test]
    fn wireguard_keepalives_do_not_count_as_data_back() {
        let data = |len: usize| {
            let mut d = vec![4u8, 0, 0, 0, 1, 2, 3, 4];
            d.resize(len, 0);
            d
        };
        let (a, f) = run(&[
            (0, ipv4(17, A, B, &udp(51820, 51820, &data(128)))),
            (1, ipv4(17, A, B, &udp(51820, 51820, &data(128)))),
            (2, ipv4(17, A, B, &udp(51820, 51820, &data(128)))),
            (3, ipv4(17, B, A, &udp(51820, 51820, &data(32)))),
            // Not WireGuard: a length that is not a multiple of 16.
            (4, ipv4(17, B, A, &udp(51820, 51820, &data(100)))),
        ]);
        assert_eq!(a.counts.wireguard_transport, 4);
        let w = f.iter().find(|f| f.rule == "PCAP-017").expect("PCAP-017");
        assert!(w.detail.contains("only 1 keepalive"), "{}", w.detail);
    }
}
