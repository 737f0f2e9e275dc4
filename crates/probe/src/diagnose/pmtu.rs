//! Path MTU probe of `netsleuth diagnose`: binary search with the DF bit (ICMP echo, and UDP
//! to a port), ICMP fragmentation-needed seen on a raw socket, and the SYN-ACK's MSS.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use netsleuth_model::{Confidence, Evidence, Finding, Layer, Location, Severity};
use rustix::net::sockopt::{self, Ipv4PathMtuDiscovery, Ipv6PathMtuDiscovery};
use serde::Serialize;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::types::{LayerResult, LayerStatus, ProbeOutcome};

/// Smallest packet probed: surely below any real path MTU (IPv4 minimum is 68, IPv6 1280).
const SMALL_V4: u32 = 128;
const SMALL_V6: u32 = 1280;
/// Copies sent per size in the search: a size fails only if every copy is lost, so random
/// loss rarely looks like a size limit.
const COPIES: u32 = 2;
/// Copies sent per size when confirming a black hole.
const CONFIRM: u32 = 4;
/// Upper bound of steps of one search (binary search over 1500 needs 11 steps; a second
/// search for a silent limit in front of a reporting hop needs up to 11 more).
const MAX_STEPS: u32 = 28;

/// The causes this probe names: id and title (for `explain` and the docs).
pub const CAUSES: &[(&str, &str)] = &[
    ("DIAG-MTU-001", "path MTU black hole: big packets vanish without ICMP fragmentation-needed"),
    ("DIAG-MTU-002", "path MTU lower than the local interface MTU, PMTUD works (information)"),
    ("DIAG-MTU-003", "TCP MSS in the SYN-ACK larger than the path allows (no MSS clamping)"),
];

/// Where and how to probe.
#[derive(Debug, Clone)]
pub struct PmtuRequest {
    pub target: IpAddr,
    /// A TCP port: its SYN-ACK's MSS is read.
    pub port: Option<u16>,
    /// MTU of the local interface towards the target; read from the route when None.
    pub local_mtu: Option<u32>,
    pub per_probe_timeout: Duration,
    /// A UDP port: the search is repeated with UDP datagrams (an answer or an ICMP port
    /// unreachable both mean the datagram arrived).
    pub udp_port: Option<u16>,
}

impl PmtuRequest {
    /// A request with the defaults: ICMP only, 400 ms per probe, local MTU from the route.
    pub fn new(target: IpAddr) -> PmtuRequest {
        PmtuRequest {
            target,
            port: None,
            local_mtu: None,
            per_probe_timeout: Duration::from_millis(400),
            udp_port: None,
        }
    }
}

/// Everything the probe saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PmtuReport {
    pub target: IpAddr,
    pub local_mtu: Option<u32>,
    /// `request` or `route`.
    pub local_mtu_source: String,
    pub icmp: Option<Search>,
    pub udp: Option<Search>,
    pub tcp: Option<MssResult>,
    pub probes_sent: u32,
    /// Why a part could not run (permissions, socket errors).
    pub errors: Vec<String>,
}

/// One DF binary search. Sizes are whole IP packets (what an MTU limits).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Search {
    /// `icmp` or `udp:PORT`.
    pub proto: String,
    /// The smallest probe arrived: the target answers this protocol at all.
    pub reachable: bool,
    pub largest_ok: Option<u32>,
    pub smallest_lost: Option<u32>,
    /// Fragmentation-needed / packet-too-big messages about our probes.
    pub ptb: Vec<Ptb>,
    /// The size boundary held when re-probed several times (not random loss).
    pub confirmed: bool,
    /// Smallest size lost silently (no answer, no ICMP error) when re-probed: a black hole.
    pub silent_from: Option<u32>,
    /// Largest size that reaches the target or the hop that reports fragmentation-needed
    /// (below `silent_from`).
    pub reaches: Option<u32>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ptb {
    pub from: IpAddr,
    pub mtu: u32,
    pub probe_size: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub size: u32,
    /// `ok`, `lost`, `ptb`, `too-big-locally`, `unreachable`.
    pub outcome: String,
    pub answered: u32,
    pub sent: u32,
}

/// The target's SYN-ACK.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MssResult {
    pub port: u16,
    pub connected: bool,
    /// The MSS option of the SYN-ACK (from a raw socket copy of it).
    pub synack_mss: Option<u32>,
    /// TCP_MAXSEG of the connected socket (MSS minus options such as timestamps).
    pub socket_mss: Option<u32>,
    pub error: Option<String>,
}

/// Runs the probe; never waits past `deadline`.
pub fn run(req: &PmtuRequest, deadline: Instant) -> ProbeOutcome<PmtuReport> {
    let started = Instant::now();
    let mut report = PmtuReport {
        target: req.target,
        local_mtu: req.local_mtu,
        local_mtu_source: "request".into(),
        icmp: None,
        udp: None,
        tcp: None,
        probes_sent: 0,
        errors: Vec::new(),
    };
    if report.local_mtu.is_none() {
        report.local_mtu_source = "route".into();
        match route_mtu(req.target) {
            Ok(m) => report.local_mtu = Some(m),
            Err(e) => report.errors.push(format!("local MTU towards {}: {e}", req.target)),
        }
    }
    let timeout = req.per_probe_timeout.clamp(Duration::from_millis(20), Duration::from_secs(5));
    let top = report.local_mtu.unwrap_or(1500).clamp(small(req.target), 65535);
    match Prober::icmp(req.target, top) {
        Ok(mut p) => {
            report.icmp = Some(search(&mut p, small(req.target), top, timeout, deadline, None));
            report.probes_sent += p.sent;
        }
        Err(e) => report.errors.push(format!("ICMP probe: {e}")),
    }
    if let Some(port) = req.udp_port {
        match Prober::udp(req.target, port, top) {
            Ok(mut p) => {
                // ICMP port unreachables and fragmentation-needed are rate limited (about 6
                // at once, then 1/s): UDP only checks the boundary ICMP found.
                let known = report
                    .icmp
                    .as_ref()
                    .filter(|s| s.reachable)
                    .and_then(|s| s.largest_ok.map(|ok| (ok, s.smallest_lost)));
                report.udp = Some(search(&mut p, small(req.target), top, timeout, deadline, known));
                report.probes_sent += p.sent;
            }
            Err(e) => report.errors.push(format!("UDP probe: {e}")),
        }
    }
    if let Some(port) = req.port {
        let left = deadline.saturating_duration_since(Instant::now());
        report.tcp = Some(tcp_mss(req.target, port, (timeout * 4).min(left)));
    }
    let (status, summary, evidence, causes) = judge(&report);
    ProbeOutcome {
        layer: LayerResult {
            layer: Layer::Overlay,
            probe: "path-mtu".into(),
            status,
            summary,
            evidence,
            duration: started.elapsed(),
        },
        causes,
        detail: report,
    }
}

fn small(t: IpAddr) -> u32 {
    if t.is_ipv4() {
        SMALL_V4
    } else {
        SMALL_V6
    }
}

fn hdr(t: IpAddr) -> u32 {
    if t.is_ipv4() {
        20
    } else {
        40
    }
}

/// MTU of the route towards `target`, as the kernel sees it (a connected UDP socket's
/// IP_MTU: the interface's MTU, or a path MTU it already learned).
fn route_mtu(target: IpAddr) -> std::io::Result<u32> {
    let s = Socket::new(Domain::for_address(SocketAddr::new(target, 9)), Type::DGRAM, None)?;
    s.connect(&SockAddr::from(SocketAddr::new(target, 9)))?;
    Ok(if target.is_ipv4() { sockopt::ip_mtu(&s)? } else { sockopt::ipv6_mtu(&s)? })
}

/// What came back for one batch of probes of one size.
#[derive(Debug, Default)]
struct Batch {
    answered: u32,
    ptb: Vec<Ptb>,
    unreachable: bool,
    too_big_locally: bool,
}

/// Sends DF probes of one protocol and collects their answers.
struct Prober {
    target: IpAddr,
    /// Raw ICMP socket: echo replies and ICMP errors about our probes.
    icmp: Socket,
    /// Connected UDP socket for UDP probes.
    udp: Option<(Socket, u16, u16)>,
    id: u16,
    seq: u16,
    sent: u32,
    /// The local MTU: bigger sizes cannot leave at all.
    local_limit: u32,
}

impl Prober {
    fn raw_icmp(target: IpAddr) -> std::io::Result<Socket> {
        let (dom, proto) =
            if target.is_ipv4() { (Domain::IPV4, Protocol::ICMPV4) } else { (Domain::IPV6, Protocol::ICMPV6) };
        let s = Socket::new(dom, Type::RAW, Some(proto))?;
        set_df(&s, target)?;
        Ok(s)
    }

    fn icmp(target: IpAddr, local_limit: u32) -> std::io::Result<Prober> {
        Ok(Prober {
            target,
            icmp: Prober::raw_icmp(target)?,
            udp: None,
            id: random_u16(),
            seq: 0,
            sent: 0,
            local_limit,
        })
    }

    fn udp(target: IpAddr, port: u16, local_limit: u32) -> std::io::Result<Prober> {
        let icmp = Prober::raw_icmp(target)?;
        let dst = SocketAddr::new(target, port);
        let u = Socket::new(Domain::for_address(dst), Type::DGRAM, Some(Protocol::UDP))?;
        set_df(&u, target)?;
        u.connect(&SockAddr::from(dst))?;
        let local = u.local_addr()?.as_socket().map_or(0, |a| a.port());
        Ok(Prober { target, icmp, udp: Some((u, port, local)), id: random_u16(), seq: 0, sent: 0, local_limit })
    }

    fn name(&self) -> String {
        match &self.udp {
            Some((_, p, _)) => format!("udp:{p}"),
            None => "icmp".into(),
        }
    }

    /// Sends `copies` probes of `size` bytes (whole IP packet) and waits for their answers.
    fn batch(&mut self, size: u32, copies: u32, timeout: Duration, deadline: Instant) -> Batch {
        let mut b = Batch::default();
        let payload = usize::try_from(size.saturating_sub(hdr(self.target) + 8)).unwrap_or(0);
        let first_seq = self.seq;
        for _ in 0..copies {
            self.seq = self.seq.wrapping_add(1);
            let res = match &self.udp {
                Some((u, _, _)) => u.send(&udp_payload(self.seq, payload)),
                None => {
                    let pkt = echo_request(self.target.is_ipv4(), self.id, self.seq, payload);
                    self.icmp.send_to(&pkt, &SockAddr::from(SocketAddr::new(self.target, 0)))
                }
            };
            self.sent += 1;
            if let Err(e) = res {
                if e.raw_os_error() == Some(rustix::io::Errno::MSGSIZE.raw_os_error()) {
                    // On a UDP socket a fragmentation-needed for an earlier copy is reported
                    // as a pending EMSGSIZE on the next send: the raw socket has the message.
                    if self.udp.is_none() || size > self.local_limit {
                        b.too_big_locally = true;
                        return b;
                    }
                    break;
                }
            }
        }
        let seqs = (first_seq.wrapping_add(1), self.seq);
        let end = (Instant::now() + timeout).min(deadline);
        let mut buf = [0u8; 2048];
        let mut seen: Vec<u16> = Vec::new();
        while Instant::now() < end && (seen.len() as u32) < copies {
            let left = end.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            // UDP answers (echo or ICMP port unreachable as ECONNREFUSED) on the UDP socket.
            if let Some((u, _, _)) = &self.udp {
                let _ = u.set_read_timeout(Some(left.min(Duration::from_millis(10))));
                let mut r = u;
                match r.read(&mut buf) {
                    Ok(n) => {
                        if let Some(s) = buf.get(..n).and_then(|d| d.get(..2)).map(|d| u16::from_be_bytes([d[0], d[1]]))
                        {
                            if in_range(s, seqs) && !seen.contains(&s) {
                                seen.push(s);
                            }
                        }
                        continue;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        // Port unreachable: the datagram arrived; the batch counts as answered.
                        b.answered = copies;
                        return b;
                    }
                    Err(_) => {}
                }
            }
            let wait = if self.udp.is_some() { left.min(Duration::from_millis(10)) } else { left };
            let _ = self.icmp.set_read_timeout(Some(wait));
            // recvfrom: IPv6 raw sockets deliver no IP header, the sender comes from here.
            let Ok((n, _, from)) = rustix::net::recvfrom(&self.icmp, &mut buf[..], rustix::net::RecvFlags::empty())
            else {
                continue;
            };
            let from = from.and_then(|a| SocketAddr::try_from(a).ok()).map(|a| a.ip());
            let Some(msg) = buf.get(..n) else { continue };
            match self.classify(msg, seqs, from) {
                Some(Seen::Reply(s)) if !seen.contains(&s) => seen.push(s),
                // Only an error quoting a packet of this size speaks for it (a late one about
                // an earlier probe must not make this size look too big).
                Some(Seen::Ptb(from, mtu, quoted)) if quoted == size => {
                    if !b.ptb.iter().any(|p| p.mtu == mtu && p.from == from) {
                        b.ptb.push(Ptb { from, mtu, probe_size: size });
                    }
                    // One is enough: the size is known too big.
                    break;
                }
                Some(Seen::Unreachable(quoted)) if quoted == size => {
                    if self.udp.is_some() {
                        b.answered = copies;
                        return b;
                    }
                    b.unreachable = true;
                    break;
                }
                _ => {}
            }
        }
        b.answered = seen.len() as u32;
        b
    }

    /// Recognises an ICMP message as an answer to our probes, or an error about them.
    fn classify(&self, msg: &[u8], seqs: (u16, u16), sender: Option<IpAddr>) -> Option<Seen> {
        let v4 = self.target.is_ipv4();
        // IPv4 raw sockets deliver the IP header; IPv6 ones start at the ICMPv6 header.
        let (from, icmp) = if v4 {
            let ihl = usize::from(msg.first()? & 0x0f) * 4;
            let src = msg.get(12..16)?;
            (IpAddr::from([src[0], src[1], src[2], src[3]]), msg.get(ihl..)?)
        } else {
            (sender?, msg)
        };
        let (ty, code) = (*icmp.first()?, *icmp.get(1)?);
        let rd16 = |d: &[u8], o: usize| d.get(o..o + 2).map(|x| u16::from_be_bytes([x[0], x[1]]));
        let echo_reply = if v4 { 0 } else { 129 };
        if ty == echo_reply && self.udp.is_none() {
            if from != self.target || rd16(icmp, 4)? != self.id {
                return None;
            }
            let s = rd16(icmp, 6)?;
            return in_range(s, seqs).then_some(Seen::Reply(s));
        }
        let (is_ptb, is_unreach) = if v4 { (ty == 3 && code == 4, ty == 3) } else { (ty == 2, ty == 1) };
        if !is_ptb && !is_unreach {
            return None;
        }
        // The quoted packet must be one of ours.
        let inner = icmp.get(8..)?;
        let inner_l4 = if v4 {
            let ihl = usize::from(inner.first()? & 0x0f) * 4;
            let dst = inner.get(16..20)?;
            if IpAddr::from([dst[0], dst[1], dst[2], dst[3]]) != self.target {
                return None;
            }
            (inner.get(9).copied()?, inner.get(ihl..)?, u32::from(rd16(inner, 2)?))
        } else {
            let dst = inner.get(24..40)?;
            let mut o = [0u8; 16];
            o.copy_from_slice(dst);
            if IpAddr::from(o) != self.target {
                return None;
            }
            (inner.get(6).copied()?, inner.get(40..)?, u32::from(rd16(inner, 4)?) + 40)
        };
        let ours = match &self.udp {
            Some((_, port, local)) => {
                inner_l4.0 == 17 && rd16(inner_l4.1, 0)? == *local && rd16(inner_l4.1, 2)? == *port
            }
            None => {
                let echo = if v4 { (1, 8) } else { (58, 128) };
                inner_l4.0 == echo.0 && inner_l4.1.first() == Some(&echo.1) && rd16(inner_l4.1, 4)? == self.id
            }
        };
        if !ours {
            return None;
        }
        if is_ptb {
            let mtu = if v4 {
                u32::from(rd16(icmp, 6)?)
            } else {
                let m = icmp.get(4..8)?;
                u32::from_be_bytes([m[0], m[1], m[2], m[3]])
            };
            // Routers from before RFC 1191 send 0: the size is too big, the MTU unknown.
            return Some(Seen::Ptb(from, mtu, inner_l4.2));
        }
        Some(Seen::Unreachable(inner_l4.2))
    }
}

enum Seen {
    Reply(u16),
    /// Sender, announced MTU, size of the quoted probe.
    Ptb(IpAddr, u32, u32),
    /// Size of the quoted probe.
    Unreachable(u32),
}

fn in_range(s: u16, (first, last): (u16, u16)) -> bool {
    s.wrapping_sub(first) <= last.wrapping_sub(first)
}

fn set_df(s: &Socket, target: IpAddr) -> std::io::Result<()> {
    // PROBE: DF set and the kernel's cached path MTU ignored, so every size really leaves.
    if target.is_ipv4() {
        sockopt::set_ip_mtu_discover(s, Ipv4PathMtuDiscovery::PROBE)?;
    } else {
        sockopt::set_ipv6_mtu_discover(s, Ipv6PathMtuDiscovery::PROBE)?;
    }
    Ok(())
}

fn udp_payload(seq: u16, len: usize) -> Vec<u8> {
    let mut p = vec![0x5a; len.max(2)];
    p[..2].copy_from_slice(&seq.to_be_bytes());
    p
}

fn echo_request(v4: bool, id: u16, seq: u16, payload: usize) -> Vec<u8> {
    let mut p = vec![if v4 { 8 } else { 128 }, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend((0..payload).map(|i| (i % 251) as u8));
    // ICMPv6 checksums are filled in by the kernel (they cover a pseudo-header).
    if v4 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn random_u16() -> u16 {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        return (std::process::id() & 0xffff) as u16;
    }
    u16::from_be_bytes(b)
}

/// Whether `target` answers a small ICMP echo (None: no raw socket, e.g. not root).
pub(crate) fn echo_answers(target: IpAddr, timeout: Duration, deadline: Instant) -> Option<bool> {
    let mut p = Prober::icmp(target, 65535).ok()?;
    Some(p.batch(small(target), 2, timeout, deadline).answered > 0)
}

/// Binary search for the largest size that arrives, between `lo` (tried first: is the
/// target answering at all?) and `hi` (the local MTU, tried second: no limit below it?).
/// With `known` (largest size that passed, smallest lost) only those sizes are checked.
fn search(
    p: &mut Prober,
    lo: u32,
    hi: u32,
    timeout: Duration,
    deadline: Instant,
    known: Option<(u32, Option<u32>)>,
) -> Search {
    let mut s = Search {
        proto: p.name(),
        reachable: false,
        largest_ok: None,
        smallest_lost: None,
        ptb: Vec::new(),
        confirmed: false,
        silent_from: None,
        reaches: None,
        steps: Vec::new(),
    };
    let step = |p: &mut Prober, s: &mut Search, size: u32, copies: u32| -> Option<bool> {
        if Instant::now() >= deadline || s.steps.len() as u32 >= MAX_STEPS {
            return None;
        }
        let b = p.batch(size, copies, timeout, deadline);
        let outcome = if b.too_big_locally {
            "too-big-locally"
        } else if !b.ptb.is_empty() {
            "ptb"
        } else if b.unreachable {
            "unreachable"
        } else if b.answered > 0 {
            "ok"
        } else {
            "lost"
        };
        s.steps.push(Step { size, outcome: outcome.into(), answered: b.answered, sent: copies });
        s.ptb.extend(b.ptb);
        Some(b.answered > 0)
    };
    let copies = if p.udp.is_some() { 1 } else { COPIES };
    let Some(true) = step(p, &mut s, lo, copies) else {
        return s;
    };
    s.reachable = true;
    s.largest_ok = Some(lo);
    let mut good = lo;
    let mut bad = hi;
    let first = known.map_or(hi, |(ok, _)| ok.clamp(lo, hi));
    match step(p, &mut s, first, copies) {
        Some(true) if first == hi => {
            s.largest_ok = Some(hi);
            return s;
        }
        Some(true) => {
            good = first;
            if let Some((_, Some(lost))) = known {
                bad = lost.clamp(good + 1, hi);
            }
        }
        Some(false) => bad = first,
        None => return s,
    }
    while bad - good > 1 {
        // A frag-needed names the size that passes that hop: try it next.
        let announced = s.ptb.iter().map(|x| x.mtu).filter(|&m| m > good && m < bad).min();
        let size = announced.unwrap_or(good + (bad - good) / 2);
        match step(p, &mut s, size, copies) {
            // Bigger than the announced MTU does not pass that hop: no need to try it.
            Some(true) if announced.is_some() => {
                good = size;
                bad = size + 1;
            }
            Some(true) => good = size,
            Some(false) => bad = size,
            None => break,
        }
    }
    // Checking the boundary of another protocol: the lost side is probed once.
    if known.is_some()
        && bad - good == 1
        && bad <= hi
        && !s.steps.iter().any(|st| st.size == bad)
        && step(p, &mut s, bad, copies) == Some(true)
    {
        good = bad;
    }
    s.largest_ok = Some(good);
    if bad <= hi && bad - good == 1 {
        s.smallest_lost = Some(bad);
        // Confirm the boundary: the small side keeps passing and the big side keeps failing,
        // otherwise it was loss that happened to look like a size limit.
        if s.ptb.is_empty() {
            let before = s.steps.len();
            let ok = p.batch(good, CONFIRM, timeout, deadline);
            let lost = p.batch(bad, CONFIRM, timeout, deadline);
            s.steps.push(Step { size: good, outcome: "confirm".into(), answered: ok.answered, sent: CONFIRM });
            s.steps.push(Step { size: bad, outcome: "confirm".into(), answered: lost.answered, sent: CONFIRM });
            s.confirmed =
                ok.answered * 2 >= CONFIRM && lost.answered == 0 && lost.ptb.is_empty() && s.steps.len() == before + 2;
            s.ptb.extend(lost.ptb);
            if s.confirmed {
                s.silent_from = Some(bad);
            }
        } else {
            s.confirmed = true;
        }
    }
    // Sizes lost without any ICMP above sizes that got fragmentation-needed: a second, silent
    // limit in front of the hop that reports (a veth peer or overlay with a smaller MTU).
    // Fragmentation-needed is not rate limited (Linux), so "ptb" here is reliable.
    if !s.ptb.is_empty() {
        let reached = |st: &Step| st.outcome == "ok" || st.outcome == "ptb";
        let reach = s.steps.iter().filter(|st| reached(st)).map(|st| st.size).max();
        let silent = s
            .steps
            .iter()
            .filter(|st| st.outcome == "lost" && reach.is_some_and(|r| st.size > r))
            .map(|st| st.size)
            .min();
        if let (Some(mut good), Some(mut bad)) = (reach, silent) {
            while bad - good > 1 {
                let size = good + (bad - good) / 2;
                if step(p, &mut s, size, copies).is_none() {
                    return s;
                }
                if s.steps.last().is_some_and(reached) {
                    good = size;
                } else {
                    bad = size;
                }
            }
            let ok = p.batch(good, CONFIRM, timeout, deadline);
            let lost = p.batch(bad, CONFIRM, timeout, deadline);
            s.steps.push(Step { size: good, outcome: "confirm".into(), answered: ok.answered, sent: CONFIRM });
            s.steps.push(Step { size: bad, outcome: "confirm".into(), answered: lost.answered, sent: CONFIRM });
            let good_reached = ok.answered * 2 >= CONFIRM || !ok.ptb.is_empty();
            if good_reached && lost.answered == 0 && lost.ptb.is_empty() {
                s.silent_from = Some(bad);
                s.reaches = Some(good);
            }
            s.ptb.extend(ok.ptb);
            s.ptb.extend(lost.ptb);
        }
    }
    if s.silent_from.is_some() && s.reaches.is_none() {
        s.reaches = s.largest_ok;
    }
    s
}

/// Connects to the port and reads the MSS of the SYN-ACK from a raw copy of it.
fn tcp_mss(target: IpAddr, port: u16, timeout: Duration) -> MssResult {
    let mut r = MssResult { port, connected: false, synack_mss: None, socket_mss: None, error: None };
    let dst = SocketAddr::new(target, port);
    let raw = Socket::new(Domain::for_address(dst), Type::RAW, Some(Protocol::TCP)).ok();
    let sock = match Socket::new(Domain::for_address(dst), Type::STREAM, Some(Protocol::TCP)) {
        Ok(s) => s,
        Err(e) => {
            r.error = Some(e.to_string());
            return r;
        }
    };
    match sock.connect_timeout(&SockAddr::from(dst), timeout.max(Duration::from_millis(50))) {
        Ok(()) => r.connected = true,
        Err(e) => {
            r.error = Some(format!("connect: {e}"));
            return r;
        }
    }
    r.socket_mss = sock.tcp_mss().ok();
    let local = sock.local_addr().ok().and_then(|a| a.as_socket()).map_or(0, |a| a.port());
    if let Some(raw) = raw {
        let end = Instant::now() + Duration::from_millis(200);
        let mut buf = [0u8; 1500];
        while Instant::now() < end {
            let _ =
                raw.set_read_timeout(Some(end.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))));
            let mut rr = &raw;
            let Ok(n) = rr.read(&mut buf) else { break };
            if let Some(mss) = buf.get(..n).and_then(|m| synack_mss(m, target, port, local)) {
                r.synack_mss = Some(mss);
                break;
            }
        }
    }
    r
}

/// The MSS option of a SYN-ACK from `target:port` to our `local` port (IPv4 raw copies carry
/// the IP header; IPv6 ones start at TCP).
fn synack_mss(m: &[u8], target: IpAddr, port: u16, local: u16) -> Option<u32> {
    let tcp = if target.is_ipv4() {
        let ihl = usize::from(m.first()? & 0x0f) * 4;
        let src = m.get(12..16)?;
        if IpAddr::from([src[0], src[1], src[2], src[3]]) != target {
            return None;
        }
        m.get(ihl..)?
    } else {
        m
    };
    let rd16 = |o: usize| tcp.get(o..o + 2).map(|x| u16::from_be_bytes([x[0], x[1]]));
    if rd16(0)? != port || rd16(2)? != local || tcp.get(13)? & 0x12 != 0x12 {
        return None;
    }
    let doff = usize::from(tcp.get(12)? >> 4) * 4;
    let mut opts = tcp.get(20..doff)?;
    while let Some(&kind) = opts.first() {
        match kind {
            0 => break,
            1 => opts = opts.get(1..)?,
            _ => {
                let len = usize::from(*opts.get(1)?);
                if len < 2 {
                    return None;
                }
                if kind == 2 && len == 4 {
                    return Some(u32::from(u16::from_be_bytes([*opts.get(2)?, *opts.get(3)?])));
                }
                opts = opts.get(len..)?;
            }
        }
    }
    None
}

fn ev(s: String) -> Evidence {
    Evidence::new(Location::Probe { probe: "path-mtu".into() }, s)
}

fn describe(s: &Search) -> Vec<String> {
    s.steps
        .iter()
        .map(|st| format!("{} {} bytes DF: {} ({}/{} answered)", s.proto, st.size, st.outcome, st.answered, st.sent))
        .chain(s.ptb.iter().map(|p| {
            format!("{}: fragmentation needed from {}, mtu {} (probe {} bytes)", s.proto, p.from, p.mtu, p.probe_size)
        }))
        .collect()
}

/// Turns observations into the layer row and causes.
fn judge(r: &PmtuReport) -> (LayerStatus, String, Vec<String>, Vec<Finding>) {
    let mut evidence: Vec<String> = Vec::new();
    if let Some(m) = r.local_mtu {
        evidence.push(format!("local MTU towards {}: {m} ({})", r.target, r.local_mtu_source));
    }
    let searches: Vec<&Search> = r.icmp.iter().chain(r.udp.iter()).collect();
    for s in &searches {
        evidence.extend(describe(s));
    }
    if let Some(t) = &r.tcp {
        evidence.push(format!(
            "tcp:{} connect {}: SYN-ACK MSS {}, socket MSS {}{}",
            t.port,
            if t.connected { "ok" } else { "failed" },
            t.synack_mss.map_or("?".into(), |m| m.to_string()),
            t.socket_mss.map_or("?".into(), |m| m.to_string()),
            t.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
        ));
    }
    evidence.extend(r.errors.iter().cloned());
    let subject = format!("path/{}", r.target);
    let mk =
        |rule: &str, sev: Severity, title: &str, detail: String, ev_lines: Vec<String>, fix: &str, conf: Confidence| {
            Finding {
                rule: rule.into(),
                severity: sev,
                layer: Layer::Overlay,
                subject: subject.clone(),
                title: title.into(),
                detail,
                evidence: ev_lines.into_iter().map(ev).collect(),
                fix: fix.into(),
                confidence: conf,
            }
        };
    let mut causes = Vec::new();
    let reachable: Vec<&&Search> = searches.iter().filter(|s| s.reachable).collect();
    if reachable.is_empty() {
        let why = if searches.is_empty() { "no probe could run" } else { "the target answers no small probe" };
        return (LayerStatus::Unknown, format!("path MTU not measured: {why}"), evidence, causes);
    }
    let local = r.local_mtu.unwrap_or(1500);
    // The measured path MTU: the smallest largest-passing size of the searches that found a limit.
    let limited: Vec<&&&Search> = reachable.iter().filter(|s| s.smallest_lost.is_some()).collect();
    let path_mtu = limited
        .iter()
        .filter_map(|s| s.largest_ok)
        .min()
        .or_else(|| reachable.iter().filter_map(|s| s.largest_ok).max());
    let ptb: Vec<&Ptb> = reachable.iter().flat_map(|s| s.ptb.iter()).collect();
    let blackhole: Vec<&&Search> = reachable.iter().copied().filter(|s| s.silent_from.is_some()).collect();
    let mut status = LayerStatus::Ok;
    if let Some(s) = blackhole.first() {
        let ok = s.reaches.or(s.largest_ok).unwrap_or(0);
        let lost = s.silent_from.unwrap_or(0);
        let also = if s.ptb.is_empty() {
            String::new()
        } else {
            format!(
                " (smaller packets, up to {ok} bytes, get fragmentation-needed from a hop further on: that hop's \
                 PMTUD works, but nothing reports the limit at {ok})"
            )
        };
        status = LayerStatus::Fail;
        causes.push(mk(
            "DIAG-MTU-001",
            Severity::High,
            "path MTU black hole: big packets vanish without ICMP fragmentation-needed",
            format!(
                "{} packets of up to {ok} bytes with DF reach {}, packets of {lost} bytes and more (up to the local MTU \
                 {local}) vanish and no ICMP fragmentation-needed comes back: path MTU discovery cannot work, so TCP \
                 stalls on full-size segments (small requests work, large responses and TLS handshakes hang). Either \
                 a link on the path (an overlay/tunnel or a veth peer) has MTU {ok} while this side uses {local}, or \
                 the ICMP error is filtered on the way{also}",
                s.proto, r.target
            ),
            describe(s),
            &format!(
                "Make the MTUs agree: set this interface (or the CNI/pod MTU) to {ok} or less, clamp TCP MSS to {} on \
                 the gateway (`tcp flags syn tcp option maxseg size set rt mtu`), and allow ICMP type 3 code 4 / \
                 ICMPv6 type 2 through every firewall on the path",
                ok.saturating_sub(hdr(r.target) + 20)
            ),
            Confidence::Confirmed,
        ));
    } else if let (Some(pm), false) = (path_mtu, ptb.is_empty()) {
        if pm < local {
            let p = ptb[0];
            evidence.push(format!(
                "path MTU {pm} < local MTU {local}: fragmentation-needed from {} works (PMTUD ok)",
                p.from
            ));
            causes.push(mk(
                "DIAG-MTU-002",
                Severity::Info,
                "path MTU lower than the local interface MTU (PMTUD works)",
                format!(
                    "the path to {} carries at most {pm} bytes while the local interface MTU is {local}; {} announces \
                     it with ICMP fragmentation-needed (mtu {}), so path MTU discovery works. Not a failure by itself: \
                     the first big packets of each flow are lost and re-sent smaller",
                    r.target, p.from, p.mtu
                ),
                ptb.iter()
                    .map(|p| {
                        format!("fragmentation needed from {}, mtu {} (probe {} bytes)", p.from, p.mtu, p.probe_size)
                    })
                    .collect(),
                "Optional: lower the interface/CNI MTU to the path MTU or clamp MSS, to avoid the PMTUD round trip.",
                Confidence::Confirmed,
            ));
        }
    } else if limited.iter().any(|s| !s.confirmed) {
        evidence.push("a size limit was seen once but did not hold when re-probed: loss, not MTU".into());
    }
    if let (Some(t), Some(pm)) = (&r.tcp, path_mtu) {
        if let Some(mss) = t.synack_mss {
            let fits = pm.saturating_sub(hdr(r.target) + 20);
            if mss > fits && pm < local.max(mss + hdr(r.target) + 20) {
                let bh = !blackhole.is_empty();
                if bh {
                    status = LayerStatus::Fail;
                } else if status == LayerStatus::Ok {
                    status = LayerStatus::Warn;
                }
                causes.push(mk(
                    "DIAG-MTU-003",
                    if bh { Severity::High } else { Severity::Low },
                    "TCP MSS larger than the path allows (no MSS clamping)",
                    format!(
                        "the SYN-ACK of {}:{} announces MSS {mss}, but the path carries at most {pm}-byte packets (MSS \
                         {fits}): full-size segments {}",
                        r.target,
                        t.port,
                        if bh { "are dropped without ICMP (black hole): connections stall after the handshake" } else {
                            "depend on path MTU discovery: the first full-size segment of every connection is dropped \
                             and re-sent smaller after the ICMP error comes back, and any ICMP filter on the path turns \
                             this into a stall"
                        }
                    ),
                    vec![format!("SYN-ACK MSS {mss}; path MTU {pm}")],
                    &format!("Clamp the MSS on the gateway/tunnel to {fits} (`tcp flags syn tcp option maxseg size set rt mtu`)."),
                    Confidence::Likely,
                ));
            }
        }
    }
    let summary = match (path_mtu, limited.is_empty()) {
        (Some(pm), true) => format!("path MTU >= {pm} (local MTU {local}); {} probes", r.probes_sent),
        (Some(pm), false) => format!(
            "path MTU {pm} (local MTU {local}), {}; {} probes",
            if !ptb.is_empty() {
                "fragmentation-needed received"
            } else if blackhole.is_empty() {
                "size limit not confirmed"
            } else {
                "no fragmentation-needed: black hole"
            },
            r.probes_sent
        ),
        (None, _) => "path MTU unknown".into(),
    };
    (status, summary, evidence, causes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_echo_request_verifies() {
        let p = echo_request(true, 0x1234, 7, 33);
        assert_eq!(p.len(), 41);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
    }

    #[test]
    fn synack_mss_is_read_and_bounds_checked() {
        let mut m = vec![0x45u8, 0, 0, 44, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1];
        let tcp =
            [0x1f, 0x90, 0x9c, 0x40, 0, 0, 0, 1, 0, 0, 0, 2, 0x60, 0x12, 0xff, 0xff, 0, 0, 0, 0, 2, 4, 0x05, 0x64];
        m.extend_from_slice(&tcp);
        let t: IpAddr = "10.0.0.2".parse().expect("ip");
        assert_eq!(synack_mss(&m, t, 8080, 40000), Some(1380));
        assert_eq!(synack_mss(&m, t, 8081, 40000), None);
        for n in 0..m.len() {
            assert_eq!(synack_mss(&m[..n], t, 8080, 40000), None);
        }
    }

    #[test]
    fn every_emitted_cause_is_listed() {
        let src = include_str!("pmtu.rs");
        let used: std::collections::BTreeSet<&str> = src
            .match_indices("\"DIAG-MTU-0")
            .filter_map(|(i, _)| src.get(i + 1..i + 13))
            .filter(|id| id.bytes().skip(9).all(|b| b.is_ascii_digit()))
            .collect();
        let listed: std::collections::BTreeSet<&str> = CAUSES.iter().map(|c| c.0).collect();
        assert_eq!(used, listed);
    }

    #[test]
    fn sequence_ranges_wrap() {
        assert!(in_range(0, (65535, 1)));
        assert!(in_range(65535, (65535, 1)));
        assert!(!in_range(2, (65535, 1)));
    }
}
