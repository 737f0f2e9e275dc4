//! ICMP echo probes (IPv4 and IPv6) over a raw socket: ping (loss, RTT) and TTL-limited
//! probes that find the hops of a path and their ICMP errors. Bounded in count and time.

use std::io::{self, Read as _};
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::packet::{self, IcmpError, IcmpEvent};

/// Largest number of probes one exchange may send (a hard bound, whatever the caller asks).
const MAX_PROBES: usize = 256;

static NEXT_ID: AtomicU16 = AtomicU16::new(0);

/// An echo identifier unique to this process and call: replies to other pings in the same
/// namespace (a raw socket sees all of them) are ignored.
fn fresh_id() -> u16 {
    let pid = std::process::id() as u16;
    pid.rotate_left(5) ^ NEXT_ID.fetch_add(0x9e37, Ordering::Relaxed)
}

/// One probe to send: its TTL and payload size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe {
    pub(crate) ttl: u8,
    pub(crate) payload: usize,
}

/// What came back for one probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Answer {
    /// Nothing within the wait.
    Silent,
    /// The target's echo reply.
    Reply { from: IpAddr, rtt: Duration },
    /// An ICMP error from a router or the target.
    Error { from: IpAddr, kind: IcmpError, rtt: Duration },
}

/// Sends `probes` to `target` spaced by `spacing`, then waits until every probe is answered,
/// `wait` after the last send, or `deadline`. Answers are in probe order.
///
/// With `stop_at_final`, a probe is not sent once a probe with a TTL no higher than its own
/// got a final answer (the target's reply, or an error other than time exceeded): it would
/// only get the same answer again and spend the router's rate-limited ICMP error budget.
pub(crate) fn exchange(
    target: IpAddr,
    probes: &[Probe],
    spacing: Duration,
    wait: Duration,
    deadline: Instant,
    stop_at_final: bool,
) -> io::Result<Vec<Answer>> {
    let probes = &probes[..probes.len().min(MAX_PROBES)];
    // An exchange cut short by the deadline would read as loss or silence: refuse to start
    // one that cannot run its course.
    let needed = spacing * probes.len() as u32 + wait;
    if Instant::now() + needed > deadline {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "not enough time left for the ICMP probes"));
    }
    let sock = match target {
        IpAddr::V4(_) => Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?,
        IpAddr::V6(_) => Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?,
    };
    let session = Session { sock, id: fresh_id(), target };
    let (sock, id) = (&session.sock, session.id);
    let dst = SockAddr::from(SocketAddr::new(target, 0));
    let mut sent: Vec<Option<Instant>> = vec![None; probes.len()];
    let mut answers = vec![Answer::Silent; probes.len()];
    let mut buf = vec![0u8; 65_536];
    for (i, p) in probes.iter().enumerate() {
        if stop_at_final && probes.iter().zip(&answers).any(|(q, a)| q.ttl <= p.ttl && is_final(a)) {
            continue;
        }
        let hops = u32::from(p.ttl.max(1));
        let pkt = match target {
            IpAddr::V4(_) => {
                sock.set_ttl_v4(hops)?;
                packet::echo_request(id, i as u16, p.payload)
            }
            IpAddr::V6(_) => {
                sock.set_unicast_hops_v6(hops)?;
                packet::echo_request_v6(id, i as u16, p.payload)
            }
        };
        sent[i] = Some(Instant::now());
        // A local error (no route, EMSGSIZE above the interface MTU) is this probe's answer.
        if let Err(e) = sock.send_to(&pkt, &dst) {
            sent[i] = None;
            if i == 0 && probes.len() == 1 {
                return Err(e);
            }
            continue;
        }
        // Drain what already arrived so spacing does not delay the reading.
        let pause_end = Instant::now() + spacing;
        receive_until(&session, &sent, &mut answers, &mut buf, pause_end, false);
    }
    let end = Instant::now() + wait;
    receive_until(&session, &sent, &mut answers, &mut buf, end, true);
    Ok(answers)
}

fn is_final(a: &Answer) -> bool {
    match a {
        Answer::Reply { .. } => true,
        Answer::Error { kind, .. } => *kind != IcmpError::TimeExceeded,
        Answer::Silent => false,
    }
}

/// The socket, echo id and target of one exchange.
struct Session {
    sock: Socket,
    id: u16,
    target: IpAddr,
}

fn receive_until(
    session: &Session,
    sent: &[Option<Instant>],
    answers: &mut [Answer],
    buf: &mut [u8],
    end: Instant,
    last: bool,
) {
    let Session { sock, id, target } = session;
    let (sock, id, target) = (sock, *id, *target);
    loop {
        let all_answered = sent.iter().zip(answers.iter()).all(|(s, a)| s.is_none() || !matches!(a, Answer::Silent));
        let now = Instant::now();
        // In the final wait, nothing more will be sent: every answer in means done.
        if now >= end || (all_answered && last) {
            return;
        }
        // The read timeout is at least 1 ms: zero would mean "block forever".
        let left = (end - now).max(Duration::from_millis(1));
        if sock.set_read_timeout(Some(left)).is_err() {
            return;
        }
        let got = match target {
            // IPv4 raw sockets return the IP header: the sender is in it.
            IpAddr::V4(_) => (&*sock).read(buf).map(|n| packet::parse_icmp(&buf[..n])),
            // IPv6 raw sockets return the ICMPv6 message only: the sender comes with it.
            IpAddr::V6(_) => rustix::net::recvfrom(sock, &mut *buf, rustix::net::RecvFlags::empty())
                .map_err(io::Error::from)
                .map(|(_, n, from)| {
                    let from = from.and_then(|a| SocketAddrV6::try_from(a).ok())?;
                    packet::parse_icmpv6(buf.get(..n)?, *from.ip())
                }),
        };
        let ev = match got {
            Ok(Some(ev)) => ev,
            Ok(None) => continue,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let icmp_proto = if target.is_ipv4() { packet::PROTO_ICMP } else { packet::PROTO_ICMPV6 };
        let (seq, answer_of): (u16, Box<dyn Fn(Duration) -> Answer>) = match ev {
            IcmpEvent::EchoReply { from, id: rid, seq } if rid == id && from == target => {
                (seq, Box::new(move |rtt| Answer::Reply { from, rtt }))
            }
            IcmpEvent::Error { from, kind, orig_dst, orig_protocol, probe: (rid, seq) }
                if orig_protocol == icmp_proto && rid == id && orig_dst == target =>
            {
                (seq, Box::new(move |rtt| Answer::Error { from, kind, rtt }))
            }
            _ => continue,
        };
        let i = usize::from(seq);
        if let (Some(Some(t)), Some(slot)) = (sent.get(i), answers.get_mut(i)) {
            if matches!(slot, Answer::Silent) {
                *slot = answer_of(t.elapsed());
            }
        }
    }
}

/// Result of pinging one address.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PingResult {
    pub(crate) sent: usize,
    pub(crate) replies: Vec<Duration>,
    /// ICMP errors received instead of replies (from, error).
    pub(crate) errors: Vec<(IpAddr, IcmpError)>,
}

impl PingResult {
    pub(crate) fn loss_pct(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        100.0 * (self.sent - self.replies.len()) as f64 / self.sent as f64
    }

    pub(crate) fn summary(&self, who: IpAddr) -> String {
        let mut s = format!("{}/{} echo replies from {who}", self.replies.len(), self.sent);
        if let Some(p50) = percentile(&self.replies, 50.0) {
            s.push_str(&format!(", rtt p50 {}", fmt_ms(p50)));
        }
        if let Some((from, e)) = self.errors.first() {
            s.push_str(&format!(", {} from {from}", e.describe()));
        }
        s
    }
}

/// `count` echo requests (64-byte TTL) to `target`.
pub(crate) fn ping(
    target: IpAddr,
    count: usize,
    spacing: Duration,
    wait: Duration,
    deadline: Instant,
) -> io::Result<PingResult> {
    let probes = vec![Probe { ttl: 64, payload: 56 }; count.clamp(1, 64)];
    let answers = exchange(target, &probes, spacing, wait, deadline, false)?;
    let mut r = PingResult { sent: probes.len(), replies: Vec::new(), errors: Vec::new() };
    for a in answers {
        match a {
            Answer::Reply { rtt, .. } => r.replies.push(rtt),
            Answer::Error { from, kind, .. } => r.errors.push((from, kind)),
            Answer::Silent => {}
        }
    }
    Ok(r)
}

/// One hop of a TTL walk: the TTL and the first answer at that TTL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hop {
    pub(crate) ttl: u8,
    pub(crate) answer: Answer,
}

/// TTL-limited echo probes 1..=max_ttl, `rounds` of each, all in flight at once (a few ms
/// apart) so the walk takes one wait, not one per hop. Hops after the target's reply or
/// after an unreachable error are cut.
pub(crate) fn trace(
    target: IpAddr,
    max_ttl: u8,
    rounds: usize,
    wait: Duration,
    deadline: Instant,
) -> io::Result<Vec<Hop>> {
    let max_ttl = max_ttl.clamp(1, 30);
    let rounds = rounds.clamp(1, 3);
    let mut probes = Vec::new();
    for _ in 0..rounds {
        probes.extend((1..=max_ttl).map(|ttl| Probe { ttl, payload: 32 }));
    }
    let answers = exchange(target, &probes, Duration::from_millis(2), wait, deadline, true)?;
    let mut hops: Vec<Hop> = (1..=max_ttl).map(|ttl| Hop { ttl, answer: Answer::Silent }).collect();
    for (p, a) in probes.iter().zip(answers) {
        let slot = &mut hops[usize::from(p.ttl - 1)];
        if matches!(slot.answer, Answer::Silent) {
            slot.answer = a;
        }
    }
    // The path ends at the first TTL that reached the target or got a final error.
    if let Some(end) = hops.iter().position(|h| {
        matches!(h.answer, Answer::Reply { .. })
            || matches!(h.answer, Answer::Error { kind, .. } if kind != IcmpError::TimeExceeded)
    }) {
        hops.truncate(end + 1);
    }
    Ok(hops)
}

/// Nearest-rank percentile of `v` (unsorted); None when empty.
pub(crate) fn percentile(v: &[Duration], pct: f64) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort();
    let rank = ((pct / 100.0) * s.len() as f64).ceil() as usize;
    s.get(rank.clamp(1, s.len()) - 1).copied()
}

pub(crate) fn fmt_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Some(Duration::from_millis(5)));
        assert_eq!(percentile(&v, 95.0), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&v, 0.0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn refuses_to_start_without_time() {
        let e = exchange(
            IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            &[Probe { ttl: 1, payload: 0 }],
            Duration::ZERO,
            Duration::from_secs(1),
            Instant::now(),
            false,
        )
        .expect_err("no time left");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn loss_is_counted_from_replies() {
        let r = PingResult { sent: 4, replies: vec![Duration::from_millis(1)], errors: vec![] };
        assert_eq!(r.loss_pct(), 75.0);
        assert!(r.summary(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)).starts_with("1/4 echo replies"));
    }

    /// Loopback only: a raw socket needs root; without it the test checks the error is clean.
    #[test]
    fn ping_and_trace_loopback() {
        let deadline = Instant::now() + Duration::from_secs(3);
        match ping(
            IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            3,
            Duration::from_millis(1),
            Duration::from_millis(500),
            deadline,
        ) {
            Ok(r) => {
                assert_eq!(r.sent, 3);
                assert_eq!(r.replies.len(), 3, "loopback answers every echo");
                let hops = trace(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 5, 1, Duration::from_millis(500), deadline)
                    .expect("trace");
                assert_eq!(hops.len(), 1, "the target is the first hop: {hops:?}");
                assert!(matches!(hops[0].answer, Answer::Reply { .. }));
            }
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}"),
        }
    }

    /// IPv6 loopback (skipped where the host has no IPv6 loopback address).
    #[test]
    fn ping_and_trace_ipv6_loopback() {
        let lo6 = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
        if std::net::UdpSocket::bind("[::1]:0").is_err() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        match ping(lo6, 3, Duration::from_millis(1), Duration::from_millis(500), deadline) {
            Ok(r) => {
                assert_eq!(r.replies.len(), 3, "loopback answers every echo: {r:?}");
                let hops = trace(lo6, 5, 1, Duration::from_millis(500), deadline).expect("trace");
                assert_eq!(hops.len(), 1, "{hops:?}");
                assert!(matches!(hops[0].answer, Answer::Reply { from, .. } if from == lo6), "{hops:?}");
            }
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}"),
        }
    }
}
