//! DNS probe of `netsleuth diagnose`: asks each resolv.conf nameserver separately, with the
//! search list expanded as the resolver would, and names timeouts, errors and disagreement.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use netsleuth_ingest::host::resolv;
use netsleuth_ingest::{ParseContext, Source};
use netsleuth_model::host::ResolvConf;
use netsleuth_model::{Confidence, Evidence, Finding, Layer, Location, Severity};
use serde::Serialize;

use super::types::{LayerResult, LayerStatus, ProbeOutcome};

/// glibc's defaults when resolv.conf sets no option.
const DEFAULT_NDOTS: u32 = 1;
const DEFAULT_TIMEOUT_S: u32 = 5;
const DEFAULT_ATTEMPTS: u32 = 2;
/// glibc uses at most this many nameservers and search domains.
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCH: usize = 6;
/// An answer slower than this is reported as slow (a healthy in-cluster resolver answers in
/// a few milliseconds; a cache miss to an upstream in tens).
const SLOW_MS: f64 = 300.0;
/// A lookup that costs this many queries or more before its answer is amplification.
const EXPANSION_COST_WARN: u32 = 3;

/// The causes this probe names: id and title (for `explain` and the docs).
pub const CAUSES: &[(&str, &str)] = &[
    ("DIAG-DNS-001", "no nameserver answers (every lookup times out)"),
    ("DIAG-DNS-002", "a nameserver does not answer (lookups wait the resolver timeout first: exactly-N s delays)"),
    ("DIAG-DNS-003", "a nameserver answers SERVFAIL/REFUSED"),
    ("DIAG-DNS-004", "the name does not exist (NXDOMAIN for every search expansion)"),
    ("DIAG-DNS-005", "nameservers disagree (stale cache or zone)"),
    ("DIAG-DNS-006", "DNS answers are slow"),
    ("DIAG-DNS-007", "search-list expansion (ndots) multiplies the queries or makes the lookup fail"),
    ("DIAG-DNS-008", "DNS replies lost (after a retry, or one of a parallel A/AAAA pair): exactly-timeout delays"),
    ("DIAG-DNS-009", "the target is not a valid DNS name"),
    ("DIAG-DNS-010", "no nameserver configured"),
    ("DIAG-DNS-011", "DNS traffic to the nameservers is dropped on the way (host answers ICMP, port 53 nothing)"),
];

/// What to look up, and how patiently.
#[derive(Debug, Clone)]
pub struct DnsRequest {
    pub name: String,
    pub resolv_conf: PathBuf,
    /// How long to wait for one answer (the engine passes the resolv.conf timeout, capped).
    pub per_query_timeout: Duration,
    /// Tries per query before a server counts as not answering.
    pub attempts: u32,
    /// Ask for AAAA as well as A (the system resolver does for `AF_UNSPEC` lookups).
    pub aaaa: bool,
    /// DNS server port (53; tests may use another).
    pub port: u16,
}

impl DnsRequest {
    /// A request with the defaults: 2 s per query, 2 attempts, A and AAAA, port 53.
    pub fn new(name: impl Into<String>, resolv_conf: impl Into<PathBuf>) -> DnsRequest {
        DnsRequest {
            name: name.into(),
            resolv_conf: resolv_conf.into(),
            per_query_timeout: Duration::from_secs(2),
            attempts: 2,
            aaaa: true,
            port: 53,
        }
    }
}

impl Default for DnsRequest {
    fn default() -> DnsRequest {
        DnsRequest::new("", "/etc/resolv.conf")
    }
}

/// Everything the probe saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsReport {
    pub name: String,
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub ndots: u32,
    /// resolv.conf `timeout` (seconds), as the resolver applies it.
    pub resolver_timeout_s: u32,
    pub resolver_attempts: u32,
    /// The names the resolver tries, in order.
    pub candidates: Vec<String>,
    pub servers: Vec<ServerResult>,
    /// Problems reading resolv.conf.
    pub config_issues: Vec<String>,
}

/// One nameserver's view of the lookup.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerResult {
    pub server: IpAddr,
    pub queries: Vec<QueryResult>,
    /// The candidate that answered with addresses, if any.
    pub answered_name: Option<String>,
    pub addresses: Vec<IpAddr>,
    /// Queries sent until the answer (or until the expansion ran out): the lookup's cost.
    pub queries_until_answer: u32,
    /// Every query to this server went unanswered.
    pub unreachable: bool,
    /// For a server that answered nothing: TCP connect to its DNS port (`accepted`,
    /// `refused`, `timeout`, `error: ...`); a hung server still completes the handshake, a
    /// filtered path does not.
    pub tcp_connect: Option<String>,
    /// For a server that answered nothing: whether it answers ICMP echo.
    pub ping: Option<bool>,
    /// When the search stopped on an error for a search-suffixed name: the A records of the
    /// name itself (what the lookup would have found without the search list).
    pub name_as_written: Option<Vec<IpAddr>>,
    /// For a server that answered: A and AAAA sent back to back from one socket, as glibc
    /// does, a few rounds.
    pub paired: Option<Paired>,
}

/// Rounds of A+AAAA pairs from one socket, and in how many one of the two replies was lost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Paired {
    pub rounds: u32,
    pub one_lost: u32,
    pub both_lost: u32,
}

/// Rounds of paired queries (bounded: at most `PAIRED_ROUNDS`, each waiting `timeout` at most).
const PAIRED_ROUNDS: u32 = 4;

fn paired_rounds(addr: SocketAddr, qname: &str, timeout: Duration, deadline: Instant) -> Paired {
    let mut p = Paired { rounds: 0, one_lost: 0, both_lost: 0 };
    for _ in 0..PAIRED_ROUNDS {
        if Instant::now() + timeout > deadline {
            break;
        }
        let Some(got) = paired_once(addr, qname, timeout) else { break };
        p.rounds += 1;
        match got {
            2 => {}
            1 => p.one_lost += 1,
            _ => p.both_lost += 1,
        }
    }
    p
}

/// One A+AAAA pair on one socket; the number of valid replies (None: socket error).
fn paired_once(addr: SocketAddr, qname: &str, timeout: Duration) -> Option<u32> {
    let bind: SocketAddr =
        if addr.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock = UdpSocket::bind(bind).ok()?;
    sock.connect(addr).ok()?;
    let ids = [random_id(), random_id()];
    let qtypes = [QTYPE_A, QTYPE_AAAA];
    for (id, qt) in ids.iter().zip(qtypes) {
        sock.send(&build_query(*id, qname, qt).ok()?).ok()?;
    }
    let end = Instant::now() + timeout;
    let mut seen = [false, false];
    let mut buf = vec![0u8; 4096];
    while seen.iter().any(|s| !s) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        sock.set_read_timeout(Some(left)).ok()?;
        match sock.recv(&mut buf) {
            Ok(n) => {
                for (i, (id, qt)) in ids.iter().zip(qtypes).enumerate() {
                    if buf.get(..n).is_some_and(|m| parse_response(m, *id, qname, qt).is_ok()) {
                        seen[i] = true;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    Some(seen.iter().filter(|s| **s).count() as u32)
}

/// One question to one server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryResult {
    pub qname: String,
    pub qtype: String,
    /// `noerror`, `nxdomain`, `servfail`, `refused`, `timeout`, `error: ...`.
    pub outcome: String,
    pub rcode: Option<u8>,
    pub answers: Vec<IpAddr>,
    /// Latency of the answer that counted (from the first send, so retries show).
    pub latency_ms: Option<f64>,
    /// Attempts used (more than 1: the first went unanswered).
    pub attempts: u32,
    pub truncated_retried_tcp: bool,
}

/// What the system resolver would return. glibc asks the servers in resolv.conf order and
/// moves on from one that times out or fails (SERVFAIL, REFUSED), but takes a definite answer
/// (addresses, or NXDOMAIN/NODATA for every name tried) from the first server that gives one.
pub fn addresses(report: &DnsReport) -> Vec<IpAddr> {
    let definite = |s: &&ServerResult| {
        !s.unreachable
            && !s.queries.is_empty()
            && s.queries.iter().all(|q| matches!(q.rcode, Some(0) | Some(3)))
            && s.name_as_written.is_none()
    };
    report
        .servers
        .iter()
        .find(|s| !s.addresses.is_empty() || definite(s))
        .map(|s| s.addresses.clone())
        .unwrap_or_default()
}

/// Runs the probe; never waits past `deadline`.
pub fn run(req: &DnsRequest, deadline: Instant) -> ProbeOutcome<DnsReport> {
    let started = Instant::now();
    let name = req.name.trim().to_string();
    let mut report = DnsReport {
        name: name.clone(),
        nameservers: Vec::new(),
        search: Vec::new(),
        ndots: DEFAULT_NDOTS,
        resolver_timeout_s: DEFAULT_TIMEOUT_S,
        resolver_attempts: DEFAULT_ATTEMPTS,
        candidates: Vec::new(),
        servers: Vec::new(),
        config_issues: Vec::new(),
    };
    let conf_path = req.resolv_conf.display().to_string();
    if name.is_empty() || name.parse::<IpAddr>().is_ok() {
        return outcome(
            started,
            LayerStatus::Skipped,
            "target is an address: no lookup".into(),
            vec![],
            vec![],
            report,
        );
    }
    if let Err(e) = validate_name(&name) {
        let f = finding(
            "DIAG-DNS-009",
            Severity::Medium,
            &name,
            "target is not a valid DNS name",
            format!("{name:?}: {e}"),
            vec![],
            "Check the target name.",
            Confidence::Confirmed,
        );
        return outcome(started, LayerStatus::Fail, format!("invalid name: {e}"), vec![], vec![f], report);
    }
    let conf = match std::fs::read_to_string(&req.resolv_conf) {
        Ok(text) => {
            let mut ctx = ParseContext::default();
            let src = Source::new(&conf_path, &text);
            match resolv::parse(&src, &mut ctx) {
                Ok(c) => {
                    report.config_issues =
                        ctx.issues.iter().map(|i| format!("{}: {}", i.location, i.message)).collect();
                    c
                }
                Err(e) => {
                    return outcome(
                        started,
                        LayerStatus::Unknown,
                        format!("cannot parse {conf_path}: {e}"),
                        vec![],
                        vec![],
                        report,
                    )
                }
            }
        }
        Err(e) => {
            return outcome(
                started,
                LayerStatus::Unknown,
                format!("cannot read {conf_path}: {e}"),
                vec![],
                vec![],
                report,
            )
        }
    };
    apply_conf(&mut report, &conf);
    if report.nameservers.is_empty() {
        let f = finding(
            "DIAG-DNS-010",
            Severity::High,
            &name,
            "no nameserver configured",
            format!("{conf_path} names no nameserver (glibc then asks 127.0.0.1, which answers nothing here)"),
            vec![ev(format!("{conf_path}: no `nameserver` line"))],
            "Add the cluster DNS service address as `nameserver` (kubelet --cluster-dns, dnsPolicy).",
            Confidence::Likely,
        );
        return outcome(started, LayerStatus::Fail, "no nameserver in resolv.conf".into(), vec![], vec![f], report);
    }
    report.candidates = expand(&name, &report.search, report.ndots);

    let mut qtypes = vec![QTYPE_A];
    if req.aaaa {
        qtypes.push(QTYPE_AAAA);
    }
    let timeout = req.per_query_timeout.max(Duration::from_millis(50));
    let attempts = req.attempts.clamp(1, 5);
    for &server in &report.nameservers.clone() {
        report.servers.push(ask_server(server, req.port, &report.candidates, &qtypes, timeout, attempts, deadline));
    }
    // A server that answered nothing: is it hung (the host and its TCP port still answer) or
    // is the way to it filtered (the host answers ICMP, its DNS port does not)?
    let check = timeout.min(Duration::from_secs(1));
    for s in report.servers.iter_mut().filter(|s| s.unreachable) {
        if Instant::now() + check * 2 > deadline {
            break;
        }
        let addr = SocketAddr::new(s.server, req.port);
        s.tcp_connect = Some(match TcpStream::connect_timeout(&addr, check) {
            Ok(_) => "accepted".into(),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => "refused".into(),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
                "timeout".into()
            }
            Err(e) => format!("error: {e}"),
        });
        s.ping = super::pmtu::echo_answers(s.server, check, deadline);
    }
    // The exactly-5 s pattern: glibc sends A and AAAA back to back from one socket; when the
    // second is lost (conntrack insert race through DNAT) the lookup waits the full timeout.
    if req.aaaa {
        for s in report.servers.iter_mut().filter(|s| !s.addresses.is_empty()) {
            // Wait a few times this server's own answer time: a slow server (already a
            // finding of its own) is not tested, its late replies would look lost.
            let slowest = s.queries.iter().filter_map(|q| q.latency_ms).fold(0.0, f64::max);
            if slowest >= SLOW_MS {
                continue;
            }
            let wait = Duration::from_secs_f64((slowest * 4.0 + 200.0) / 1000.0).min(timeout);
            let name = s.answered_name.clone().unwrap_or_default();
            s.paired = Some(paired_rounds(SocketAddr::new(s.server, req.port), &name, wait, deadline));
        }
    }
    let (status, summary, evidence, causes) = judge(&report, timeout);
    outcome(started, status, summary, evidence, causes, report)
}

fn outcome(
    started: Instant,
    status: LayerStatus,
    summary: String,
    evidence: Vec<String>,
    causes: Vec<Finding>,
    detail: DnsReport,
) -> ProbeOutcome<DnsReport> {
    ProbeOutcome {
        layer: LayerResult {
            layer: Layer::Dns,
            probe: "dns".into(),
            status,
            summary,
            evidence,
            duration: started.elapsed(),
        },
        causes,
        detail,
    }
}

fn apply_conf(report: &mut DnsReport, conf: &ResolvConf) {
    let mut seen = BTreeSet::new();
    for ns in &conf.nameservers {
        if seen.insert(ns.addr) {
            report.nameservers.push(ns.addr);
        }
    }
    if report.nameservers.len() > MAX_NAMESERVERS {
        report.config_issues.push(format!(
            "{} nameservers: the resolver uses only the first {MAX_NAMESERVERS}",
            report.nameservers.len()
        ));
        report.nameservers.truncate(MAX_NAMESERVERS);
    }
    report.search = conf.search.iter().map(|s| s.trim_end_matches('.').to_string()).filter(|s| !s.is_empty()).collect();
    report.search.truncate(MAX_SEARCH);
    // glibc caps ndots at 15, timeout at 30 s, attempts at 5.
    report.ndots = conf.ndots.unwrap_or(DEFAULT_NDOTS).min(15);
    report.resolver_timeout_s = conf.timeout.unwrap_or(DEFAULT_TIMEOUT_S).clamp(1, 30);
    report.resolver_attempts = conf.attempts.unwrap_or(DEFAULT_ATTEMPTS).clamp(1, 5);
}

/// The names the resolver tries, in order (glibc `res_nsearch`): a name with a trailing dot
/// is absolute; one with at least `ndots` dots is tried as is first, then with each search
/// suffix; otherwise the search suffixes come first and the bare name last.
pub fn expand(name: &str, search: &[String], ndots: u32) -> Vec<String> {
    if let Some(abs) = name.strip_suffix('.') {
        return vec![abs.to_string()];
    }
    let dots = u32::try_from(name.matches('.').count()).unwrap_or(u32::MAX);
    let suffixed = search.iter().map(|s| format!("{name}.{s}"));
    let mut out: Vec<String> = if dots >= ndots {
        std::iter::once(name.to_string()).chain(suffixed).collect()
    } else {
        suffixed.chain(std::iter::once(name.to_string())).collect()
    };
    let mut seen = BTreeSet::new();
    out.retain(|n| seen.insert(n.clone()));
    out
}

fn validate_name(name: &str) -> Result<(), String> {
    let n = name.strip_suffix('.').unwrap_or(name);
    if n.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    for label in n.split('.') {
        if label.is_empty() {
            return Err("empty label".into());
        }
        if label.len() > 63 {
            return Err(format!("label {label:?} longer than 63 characters"));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(format!("label {label:?} has characters a hostname cannot have"));
        }
    }
    Ok(())
}

/// Walks the candidates against one server like the resolver: the first candidate with
/// addresses ends the lookup; a server that answers nothing ends it too (the resolver moves
/// to the next server, which this probe asks separately anyway).
fn ask_server(
    server: IpAddr,
    port: u16,
    candidates: &[String],
    qtypes: &[u16],
    timeout: Duration,
    attempts: u32,
    deadline: Instant,
) -> ServerResult {
    let mut res = ServerResult {
        server,
        queries: Vec::new(),
        answered_name: None,
        addresses: Vec::new(),
        queries_until_answer: 0,
        unreachable: false,
        tcp_connect: None,
        ping: None,
        name_as_written: None,
        paired: None,
    };
    let addr = SocketAddr::new(server, port);
    'names: for cand in candidates {
        let mut found = Vec::new();
        if Instant::now() >= deadline {
            break 'names;
        }
        // A and AAAA in parallel, as glibc sends them: a lost one costs one timeout, not two.
        let answers: Vec<QueryResult> = std::thread::scope(|scope| {
            let handles: Vec<_> = qtypes
                .iter()
                .map(|&qt| scope.spawn(move || query(addr, cand, qt, timeout, attempts, deadline)))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for q in answers {
            res.queries_until_answer += 1;
            found.extend(q.answers.iter().copied());
            res.queries.push(q);
        }
        if res.queries.iter().all(|q| q.outcome == "timeout") {
            // Nothing ever came back: asking the other names would only wait longer.
            res.unreachable = true;
            break 'names;
        }
        if res.queries.iter().all(|q| q.rcode.is_none()) {
            // Errors only (refused by ICMP, local firewall): the other names fare no better.
            break 'names;
        }
        if !found.is_empty() {
            res.answered_name = Some(cand.clone());
            res.addresses = found;
            break;
        }
        // glibc's search goes on after NXDOMAIN, NODATA and SERVFAIL, and ends the lookup
        // (failed) on REFUSED and the other errors.
        if res.queries.iter().rev().take(qtypes.len()).any(|q| q.rcode.is_some_and(|r| r > 3 || r == 1)) {
            // Would the name itself have resolved? (Not what the resolver returns: it stopped.)
            let bare = candidates.last().filter(|_| candidates.len() > 1);
            if let (Some(bare), Some(first)) = (bare, res.queries.last().map(|q| q.qname.clone())) {
                if *bare != first && Instant::now() < deadline {
                    let q = query(addr, bare, QTYPE_A, timeout, attempts, deadline);
                    res.name_as_written = Some(q.answers);
                }
            }
            break;
        }
    }
    res
}

const QTYPE_A: u16 = 1;
const QTYPE_AAAA: u16 = 28;

fn qtype_str(t: u16) -> String {
    match t {
        QTYPE_A => "A".into(),
        QTYPE_AAAA => "AAAA".into(),
        other => format!("TYPE{other}"),
    }
}

/// One question with retries; TC=1 answers are asked again over TCP.
fn query(
    addr: SocketAddr,
    qname: &str,
    qtype: u16,
    timeout: Duration,
    attempts: u32,
    deadline: Instant,
) -> QueryResult {
    let mut r = QueryResult {
        qname: qname.to_string(),
        qtype: qtype_str(qtype),
        outcome: "timeout".into(),
        rcode: None,
        answers: Vec::new(),
        latency_ms: None,
        attempts: 0,
        truncated_retried_tcp: false,
    };
    let started = Instant::now();
    for _ in 0..attempts {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        r.attempts += 1;
        let id = random_id();
        let Ok(packet) = build_query(id, qname, qtype) else {
            r.outcome = "error: name cannot be encoded".into();
            return r;
        };
        match udp_exchange(addr, &packet, timeout.min(left)) {
            Ok(Some(buf)) => match parse_response(&buf, id, qname, qtype) {
                Ok(msg) if msg.truncated => {
                    r.truncated_retried_tcp = true;
                    match tcp_exchange(addr, &packet, timeout.min(deadline.saturating_duration_since(Instant::now())))
                        .and_then(|b| parse_response(&b, id, qname, qtype).map_err(std::io::Error::other))
                    {
                        Ok(msg) => return finish(r, msg, started),
                        Err(e) => {
                            r.outcome = format!("error: truncated over UDP, TCP failed: {e}");
                            return r;
                        }
                    }
                }
                Ok(msg) => return finish(r, msg, started),
                // A reply that is not ours (wrong id or question): keep waiting is what a
                // resolver does; here the attempt counts as lost.
                Err(e) => r.outcome = format!("error: bad reply: {e}"),
            },
            Ok(None) => r.outcome = "timeout".into(),
            Err(e) => {
                // ECONNREFUSED (ICMP port unreachable) and the like: nothing listens there.
                r.outcome = format!("error: {e}");
                return r;
            }
        }
    }
    r
}

fn finish(mut r: QueryResult, msg: Message, started: Instant) -> QueryResult {
    r.latency_ms = Some((started.elapsed().as_secs_f64() * 1e6).round() / 1e3);
    r.rcode = Some(msg.rcode);
    r.outcome = match msg.rcode {
        0 => "noerror".into(),
        2 => "servfail".into(),
        3 => "nxdomain".into(),
        5 => "refused".into(),
        other => format!("rcode {other}"),
    };
    r.answers = msg.answers;
    r
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    // Without randomness (never seen on Linux) fall back to the clock: still varies per query.
    if getrandom::fill(&mut b).is_err() {
        let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        return (n ^ (n >> 16)) as u16;
    }
    u16::from_be_bytes(b)
}

fn udp_exchange(addr: SocketAddr, packet: &[u8], timeout: Duration) -> std::io::Result<Option<Vec<u8>>> {
    let bind: SocketAddr =
        if addr.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock = UdpSocket::bind(bind)?;
    sock.connect(addr)?;
    sock.send(packet)?;
    let end = Instant::now() + timeout;
    let mut buf = vec![0u8; 4096];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        sock.set_read_timeout(Some(left))?;
        match sock.recv(&mut buf) {
            Ok(n) => {
                // Ignore datagrams too short to be a header; wait for the real one.
                if n >= 12 && buf.get(..2) == packet.get(..2) {
                    buf.truncate(n);
                    return Ok(Some(buf));
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Ok(None)
            }
            // A signal of the host process (the engine's timers, a child exiting): wait on.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

fn tcp_exchange(addr: SocketAddr, packet: &[u8], timeout: Duration) -> std::io::Result<Vec<u8>> {
    let timeout = timeout.max(Duration::from_millis(10));
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let len = u16::try_from(packet.len()).map_err(std::io::Error::other)?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(packet);
    s.write_all(&out)?;
    let mut lb = [0u8; 2];
    s.read_exact(&mut lb)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(lb))];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

/// A query with RD set and one question.
pub fn build_query(id: u16, qname: &str, qtype: u16) -> Result<Vec<u8>, String> {
    let mut p = Vec::with_capacity(32 + qname.len());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    encode_name(&mut p, qname)?;
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    Ok(p)
}

fn encode_name(p: &mut Vec<u8>, name: &str) -> Result<(), String> {
    let n = name.strip_suffix('.').unwrap_or(name);
    if !n.is_empty() {
        for label in n.split('.') {
            let len = u8::try_from(label.len()).ok().filter(|&l| (1..=63).contains(&l)).ok_or("bad label length")?;
            p.push(len);
            p.extend_from_slice(label.as_bytes());
        }
    }
    p.push(0);
    Ok(())
}

/// The parts of a response the probe uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub rcode: u8,
    pub truncated: bool,
    pub answers: Vec<IpAddr>,
}

/// Parses a response and checks it answers our question (id, QR, the question itself);
/// every read is bounds-checked. CNAME chains are followed implicitly: every A/AAAA record
/// of the answer section counts.
pub fn parse_response(buf: &[u8], id: u16, qname: &str, qtype: u16) -> Result<Message, String> {
    let rd16 = |off: usize| -> Result<u16, String> {
        buf.get(off..off + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or_else(|| "truncated message".to_string())
    };
    if rd16(0)? != id {
        return Err("response id does not match the query".into());
    }
    let flags = rd16(2)?;
    if flags & 0x8000 == 0 {
        return Err("not a response (QR=0)".into());
    }
    let truncated = flags & 0x0200 != 0;
    let rcode = (flags & 0x000f) as u8;
    let qd = rd16(4)?;
    let an = rd16(6)?;
    let mut off = 12;
    if qd != 1 {
        return Err(format!("{qd} questions in the response, expected 1"));
    }
    let (name, next) = read_name(buf, off)?;
    if !name.eq_ignore_ascii_case(qname.trim_end_matches('.')) {
        return Err(format!("response is for {name:?}, not {qname:?}"));
    }
    off = next;
    if rd16(off)? != qtype || rd16(off + 2)? != 1 {
        return Err("response question type/class differ from the query".into());
    }
    off += 4;
    let mut answers = Vec::new();
    if truncated {
        return Ok(Message { rcode, truncated, answers });
    }
    for _ in 0..an {
        let (_, next) = read_name(buf, off)?;
        off = next;
        let rtype = rd16(off)?;
        let class = rd16(off + 2)?;
        let rdlen = usize::from(rd16(off + 8)?);
        let data = buf.get(off + 10..off + 10 + rdlen).ok_or("record data past the end")?;
        off += 10 + rdlen;
        if class != 1 {
            continue;
        }
        match (rtype, data.len()) {
            (QTYPE_A, 4) if qtype == QTYPE_A => {
                answers.push(IpAddr::V4(Ipv4Addr::new(data[0], data[1], data[2], data[3])))
            }
            (QTYPE_AAAA, 16) if qtype == QTYPE_AAAA => {
                let mut o = [0u8; 16];
                o.copy_from_slice(data);
                answers.push(IpAddr::V6(Ipv6Addr::from(o)));
            }
            (QTYPE_A | QTYPE_AAAA, _) if rtype == qtype => return Err("address record of the wrong length".into()),
            _ => {}
        }
    }
    Ok(Message { rcode, truncated, answers })
}

/// Reads a (possibly compressed) name; returns it and the offset after it in place.
fn read_name(buf: &[u8], start: usize) -> Result<(String, usize), String> {
    let mut labels: Vec<String> = Vec::new();
    let mut off = start;
    let mut after: Option<usize> = None;
    let mut jumps = 0;
    loop {
        let len = *buf.get(off).ok_or("name past the end")?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    off += 1;
                    break;
                }
                let l = buf.get(off + 1..off + 1 + usize::from(len)).ok_or("label past the end")?;
                labels.push(String::from_utf8_lossy(l).into_owned());
                off += 1 + usize::from(len);
                if labels.iter().map(|l| l.len() + 1).sum::<usize>() > 255 {
                    return Err("name longer than 255 octets".into());
                }
            }
            0xc0 => {
                let lo = *buf.get(off + 1).ok_or("pointer past the end")?;
                if after.is_none() {
                    after = Some(off + 2);
                }
                jumps += 1;
                if jumps > 32 {
                    return Err("compression pointer loop".into());
                }
                off = usize::from(u16::from_be_bytes([len & 0x3f, lo]));
            }
            _ => return Err("reserved label type".into()),
        }
    }
    Ok((labels.join("."), after.unwrap_or(off)))
}

fn ev(s: String) -> Evidence {
    Evidence::new(Location::Probe { probe: "dns".into() }, s)
}

#[allow(clippy::too_many_arguments)]
fn finding(
    rule: &str,
    severity: Severity,
    name: &str,
    title: &str,
    detail: String,
    evidence: Vec<Evidence>,
    fix: &str,
    confidence: Confidence,
) -> Finding {
    Finding {
        rule: rule.into(),
        severity,
        layer: Layer::Dns,
        subject: format!("dns/{name}"),
        title: title.into(),
        detail,
        evidence,
        fix: fix.into(),
        confidence,
    }
}

fn describe_query(server: IpAddr, q: &QueryResult) -> String {
    let lat = q.latency_ms.map(|l| format!(" in {l:.1} ms")).unwrap_or_default();
    let ans = if q.answers.is_empty() {
        String::new()
    } else {
        format!(" -> {}", q.answers.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(","))
    };
    let tries = if q.attempts > 1 { format!(" ({} attempts)", q.attempts) } else { String::new() };
    format!("@{server} {} {}: {}{ans}{lat}{tries}", q.qtype, q.qname, q.outcome)
}

/// Turns observations into the layer row and causes.
fn judge(r: &DnsReport, timeout: Duration) -> (LayerStatus, String, Vec<String>, Vec<Finding>) {
    let name = &r.name;
    let mut evidence: Vec<String> = Vec::new();
    for s in &r.servers {
        for q in &s.queries {
            evidence.push(describe_query(s.server, q));
        }
    }
    let mut causes = Vec::new();
    let answering: Vec<&ServerResult> = r.servers.iter().filter(|s| !s.unreachable).collect();
    let down: Vec<&ServerResult> = r.servers.iter().filter(|s| s.unreachable).collect();
    let refused: Vec<&ServerResult> = r
        .servers
        .iter()
        .filter(|s| !s.unreachable && s.queries.iter().all(|q| q.outcome.starts_with("error")))
        .collect();
    let evs = |servers: &[&ServerResult]| -> Vec<Evidence> {
        servers.iter().flat_map(|s| s.queries.iter().take(4).map(|q| ev(describe_query(s.server, q)))).collect()
    };
    let to_s = timeout.as_secs_f64();
    let filtered: Vec<&ServerResult> =
        down.iter().copied().filter(|s| s.ping == Some(true) && s.tcp_connect.as_deref() == Some("timeout")).collect();
    if !filtered.is_empty() && filtered.len() == r.servers.len() {
        let list = filtered.iter().map(|s| s.server.to_string()).collect::<Vec<_>>().join(", ");
        let mut e = evs(&filtered);
        e.extend(filtered.iter().map(|s| ev(format!("{}: answers ICMP echo; TCP {} connect times out", s.server, 53))));
        causes.push(finding(
            "DIAG-DNS-011",
            Severity::Critical,
            name,
            "DNS traffic to the nameservers is dropped on the way",
            format!(
                "{list} answer ICMP echo but neither a UDP query nor a TCP connection to the DNS port gets any answer \
                 (no reply, no reset, no ICMP error): a firewall or NetworkPolicy between this host and the \
                 nameservers drops DNS (UDP/TCP 53). Every lookup fails after timeout x attempts = {} s x {}",
                r.resolver_timeout_s, r.resolver_attempts
            ),
            e,
            "Allow egress to the DNS service on UDP and TCP 53 (a default-deny NetworkPolicy needs an explicit DNS \
             rule; check the node's forward chain).",
            Confidence::Likely,
        ));
        return (LayerStatus::Fail, format!("DNS to {list} dropped (hosts answer ICMP)"), evidence, causes);
    }
    if answering.is_empty() || answering.len() == refused.len() {
        let all: Vec<&ServerResult> = r.servers.iter().collect();
        let list = r.nameservers.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", ");
        let what = if refused.is_empty() { "time out" } else { "do not answer (timeout or refused)" };
        let hung: Vec<String> =
            all.iter().filter(|s| s.tcp_connect.as_deref() == Some("accepted")).map(|s| s.server.to_string()).collect();
        let hung_text = if hung.is_empty() {
            String::new()
        } else {
            format!(
                ". {} still accept TCP connections on the DNS port: the server process is hung or overloaded, \
                 the network path works",
                hung.join(", ")
            )
        };
        causes.push(finding(
            "DIAG-DNS-001",
            Severity::Critical,
            name,
            "no nameserver answers",
            format!(
                "every nameserver of resolv.conf ({list}) {what}: {} queries, none answered within {to_s:.1} s. \
                 Every lookup fails after timeout x attempts = {} s x {} (the resolver's settings); connections by \
                 IP address are not affected by this{hung_text}",
                r.servers.iter().map(|s| s.queries.len()).sum::<usize>(),
                r.resolver_timeout_s,
                r.resolver_attempts
            ),
            evs(&all),
            "Check the DNS server (CoreDNS pods running and ready, `kubectl -n kube-system get pods -l k8s-app=kube-dns`), \
             and that UDP/TCP 53 to it is allowed (NetworkPolicy egress, node firewall).",
            Confidence::Likely,
        ));
        return (LayerStatus::Fail, format!("no answer from {list} for {name}"), evidence, causes);
    }
    if !down.is_empty() {
        let first_down = r.servers.first().is_some_and(|s| s.unreachable);
        let list = down.iter().map(|s| s.server.to_string()).collect::<Vec<_>>().join(", ");
        causes.push(finding(
            "DIAG-DNS-002",
            if first_down { Severity::High } else { Severity::Medium },
            name,
            "a nameserver does not answer",
            format!(
                "{list} answered none of its queries while {} answered. {}",
                answering.iter().map(|s| s.server.to_string()).collect::<Vec<_>>().join(", "),
                if first_down {
                    format!(
                        "It is listed first: every lookup waits the resolver timeout ({} s) before trying the next \
                         server, the exactly-{} s delay pattern",
                        r.resolver_timeout_s, r.resolver_timeout_s
                    )
                } else {
                    "Lookups that reach it (after the first server fails or with `rotate`) wait the resolver timeout"
                        .into()
                }
            ),
            evs(&down),
            "Remove or fix the dead nameserver in resolv.conf (or the DNS server behind it).",
            Confidence::Likely,
        ));
    }
    // The search list makes the lookup fail: a suffixed name is refused before the name
    // itself, which resolves, is tried.
    let expansion_fails: Vec<&ServerResult> = answering
        .iter()
        .copied()
        .filter(|s| s.addresses.is_empty() && s.name_as_written.as_ref().is_some_and(|a| !a.is_empty()))
        .collect();
    if !expansion_fails.is_empty() {
        let s = expansion_fails[0];
        let failed = s.queries.iter().rev().find(|q| q.rcode.is_some_and(|r| r > 3 || r == 1));
        let dots = r.name.matches('.').count();
        causes.push(finding(
            "DIAG-DNS-007",
            Severity::High,
            name,
            "search-list expansion (ndots) makes the lookup fail",
            format!(
                "{name} has {dots} dots, fewer than ndots:{}, so the resolver tries the {} search suffixes first; {} \
                 answers {} for {} and the resolver gives up there, although {name} itself resolves ({}). {} \
                 queries were spent before the failure",
                r.ndots,
                r.search.len(),
                s.server,
                failed.map_or("an error".into(), |q| q.outcome.to_uppercase()),
                failed.map_or("a suffixed name", |q| q.qname.as_str()),
                s.name_as_written.iter().flatten().map(IpAddr::to_string).collect::<Vec<_>>().join(", "),
                s.queries.len()
            ),
            s.queries.iter().rev().take(6).map(|q| ev(describe_query(s.server, q))).collect(),
            "Lower ndots (`dnsConfig.options ndots:1..2`), drop the failing search domain, or look the name up \
             fully qualified with a trailing dot.",
            Confidence::Likely,
        ));
    }
    // SERVFAIL / REFUSED.
    let failing: Vec<&ServerResult> = answering
        .iter()
        .copied()
        .filter(|s| s.addresses.is_empty() && s.name_as_written.as_ref().is_none_or(Vec::is_empty))
        .filter(|s| s.queries.iter().any(|q| matches!(q.rcode, Some(2) | Some(5))))
        .collect();
    if !failing.is_empty() {
        let all_fail = failing.len() == answering.len();
        causes.push(finding(
            "DIAG-DNS-003",
            if all_fail { Severity::High } else { Severity::Medium },
            name,
            "nameserver answers SERVFAIL/REFUSED",
            format!(
                "{} answered {name} with SERVFAIL or REFUSED: the server is reachable but cannot resolve the name \
                 (its upstream or the zone's servers fail, or it refuses this client)",
                failing.iter().map(|s| s.server.to_string()).collect::<Vec<_>>().join(", ")
            ),
            evs(&failing),
            "Check the DNS server's logs and its upstream/forward configuration for this zone.",
            Confidence::Likely,
        ));
    }
    // NXDOMAIN everywhere.
    let nx: Vec<&ServerResult> = answering
        .iter()
        .copied()
        .filter(|s| {
            s.addresses.is_empty()
                && !s.queries.is_empty()
                && s.queries.iter().all(|q| q.rcode == Some(3) || (q.rcode == Some(0) && q.answers.is_empty()))
        })
        .collect();
    if !nx.is_empty() && nx.len() == answering.len() {
        causes.push(finding(
            "DIAG-DNS-004",
            Severity::High,
            name,
            "the name does not exist",
            format!(
                "every answering nameserver says no address exists for {name} under any of the {} names tried ({})",
                r.candidates.len(),
                r.candidates.join(", ")
            ),
            evs(&nx),
            "Check the spelling, the namespace (`svc.namespace`), and that the Service/record exists.",
            Confidence::Confirmed,
        ));
    }
    // Disagreement between servers that answered with addresses.
    let with_addr: Vec<&ServerResult> = answering.iter().copied().filter(|s| !s.addresses.is_empty()).collect();
    let sets: BTreeMap<IpAddr, BTreeSet<IpAddr>> =
        with_addr.iter().map(|s| (s.server, s.addresses.iter().copied().collect())).collect();
    let distinct: BTreeSet<&BTreeSet<IpAddr>> = sets.values().collect();
    if distinct.len() > 1 {
        let text = sets
            .iter()
            .map(|(s, a)| format!("{s}: {}", a.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(",")))
            .collect::<Vec<_>>()
            .join("; ");
        causes.push(finding(
            "DIAG-DNS-005",
            Severity::Medium,
            name,
            "nameservers disagree",
            format!("the nameservers return different addresses for {name} ({text}): one has a stale cache or zone"),
            evs(&with_addr),
            "Flush the cache of the server with the old answer or fix its zone/forwarding.",
            Confidence::Likely,
        ));
    }
    // Retried queries: the first try was lost and the answer came after the timeout.
    let retried: Vec<(IpAddr, &QueryResult)> = answering
        .iter()
        .flat_map(|s| s.queries.iter().filter(|q| q.attempts > 1 && q.rcode.is_some()).map(move |q| (s.server, q)))
        .collect();
    let raced: Vec<&ServerResult> =
        answering.iter().copied().filter(|s| s.paired.as_ref().is_some_and(|p| p.one_lost > 0)).collect();
    if !raced.is_empty() {
        let text = raced
            .iter()
            .filter_map(|s| s.paired.as_ref().map(|p| format!("{}: {} of {} pairs", s.server, p.one_lost, p.rounds)))
            .collect::<Vec<_>>()
            .join("; ");
        causes.push(finding(
            "DIAG-DNS-008",
            Severity::Medium,
            name,
            "parallel A/AAAA queries lose one reply: exactly-timeout DNS delays",
            format!(
                "sent back to back from one socket, as the system resolver sends them, one of the A/AAAA replies \
                 is lost ({text}) while separate queries are answered: the resolver then waits its full timeout \
                 ({} s) before retrying, the exactly-{} s delay pattern (conntrack insert race of the two UDP \
                 packets through DNAT, e.g. to a kube-dns Service)",
                r.resolver_timeout_s, r.resolver_timeout_s
            ),
            raced.iter().map(|s| ev(format!("{}: paired A+AAAA {:?}", s.server, s.paired))).collect(),
            "Add `options single-request-reopen` (or `use-vc`) to resolv.conf (dnsConfig), or use NodeLocal DNSCache; \
             on the node, check `conntrack -S` insert_failed.",
            Confidence::Likely,
        ));
    }
    if !retried.is_empty() && raced.is_empty() {
        causes.push(finding(
            "DIAG-DNS-008",
            Severity::Medium,
            name,
            "DNS queries lost: answers only after a retry",
            format!(
                "{} queries were answered only after a retransmission; the system resolver waits its timeout ({} s) \
                 before retrying, so lookups take exactly that long (conntrack insert race of parallel A/AAAA \
                 queries, or loss towards the server)",
                retried.len(),
                r.resolver_timeout_s
            ),
            retried.iter().take(4).map(|(s, q)| ev(describe_query(*s, q))).collect(),
            "Add `options single-request-reopen` (or use NodeLocal DNSCache); check loss towards the server.",
            Confidence::Possible,
        ));
    }
    // Slow answers.
    let lat: Vec<(IpAddr, &QueryResult, f64)> = answering
        .iter()
        .flat_map(|s| {
            s.queries.iter().filter(|q| q.attempts <= 1).filter_map(move |q| q.latency_ms.map(|l| (s.server, q, l)))
        })
        .collect();
    let mut ms: Vec<f64> = lat.iter().map(|x| x.2).collect();
    ms.sort_by(f64::total_cmp);
    let median = ms.get(ms.len() / 2).copied();
    if let Some(m) = median.filter(|m| *m >= SLOW_MS) {
        let near_timeout = m >= f64::from(r.resolver_timeout_s) * 1000.0 * 0.8;
        causes.push(finding(
            "DIAG-DNS-006",
            if near_timeout { Severity::High } else { Severity::Medium },
            name,
            "DNS answers are slow",
            format!(
                "median answer time {m:.0} ms over {} answers (a healthy resolver answers in a few ms){}",
                ms.len(),
                if near_timeout {
                    format!(
                        "; close to the resolver timeout of {} s: lookups will time out and retry",
                        r.resolver_timeout_s
                    )
                } else {
                    String::new()
                }
            ),
            lat.iter().take(4).map(|(s, q, _)| ev(describe_query(*s, q))).collect(),
            "Check the DNS server's load and the latency of its upstream; scale CoreDNS or add NodeLocal DNSCache.",
            Confidence::Likely,
        ));
    }
    // ndots expansion cost: queries spent on names that could not be the answer.
    if let Some(s) = with_addr.first() {
        let failed_before = s
            .queries_until_answer
            .saturating_sub(s.queries.iter().filter(|q| Some(&q.qname) == s.answered_name.as_ref()).count() as u32);
        if failed_before >= EXPANSION_COST_WARN {
            let dots = r.name.matches('.').count();
            causes.push(finding(
                "DIAG-DNS-007",
                Severity::Low,
                name,
                "search-list expansion multiplies the queries (ndots)",
                format!(
                    "{name} has {dots} dots, fewer than ndots:{}: the resolver tries {} search suffixes first; this \
                     lookup cost {} queries ({failed_before} of them NXDOMAIN/empty) before the answer for {}",
                    r.ndots,
                    r.search.len(),
                    s.queries_until_answer,
                    s.answered_name.as_deref().unwrap_or("?")
                ),
                s.queries.iter().take(6).map(|q| ev(describe_query(s.server, q))).collect(),
                "Lower ndots (`dnsConfig.options ndots:1..2`) or use fully-qualified names with a trailing dot.",
                Confidence::Confirmed,
            ));
        }
    }
    let resolved = addresses(r);
    let status = if resolved.is_empty() {
        LayerStatus::Fail
    } else if causes.is_empty() {
        LayerStatus::Ok
    } else {
        LayerStatus::Warn
    };
    let best = with_addr
        .first()
        .and_then(|s| s.queries.iter().filter(|q| q.rcode.is_some()).filter_map(|q| q.latency_ms).reduce(f64::max));
    let summary = if resolved.is_empty() {
        format!("{name}: no address from {} nameserver(s)", r.servers.len())
    } else {
        format!(
            "{name} -> {} ({} of {} nameservers answer{}, {} queries)",
            resolved.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", "),
            with_addr.len(),
            r.servers.len(),
            best.map(|b| format!(", slowest {b:.1} ms")).unwrap_or_default(),
            r.servers.iter().map(|s| s.queries.len()).sum::<usize>()
        )
    };
    (status, summary, evidence, causes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(id: u16, qname: &str, flags: u16, ips: &[[u8; 4]]) -> Vec<u8> {
        let mut p = build_query(id, qname, QTYPE_A).expect("query");
        p[2..4].copy_from_slice(&flags.to_be_bytes());
        p[6..8].copy_from_slice(&(ips.len() as u16).to_be_bytes());
        for ip in ips {
            p.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
            p.extend_from_slice(ip);
        }
        p
    }

    #[test]
    fn expansion_follows_ndots() {
        let search = vec!["a.svc".to_string(), "svc".to_string()];
        assert_eq!(expand("api", &search, 5), ["api.a.svc", "api.svc", "api"]);
        assert_eq!(expand("x.y.z", &search, 2), ["x.y.z", "x.y.z.a.svc", "x.y.z.svc"]);
        assert_eq!(expand("x.y.z", &search, 5)[0], "x.y.z.a.svc");
        assert_eq!(expand("x.y.", &search, 5), ["x.y"]);
    }

    #[test]
    fn responses_are_validated() {
        let ok = answer(7, "api.svc", 0x8180, &[[10, 0, 0, 1], [10, 0, 0, 2]]);
        let m = parse_response(&ok, 7, "api.svc", QTYPE_A).expect("valid");
        assert_eq!(m.rcode, 0);
        assert_eq!(m.answers, [IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2])]);
        assert!(parse_response(&ok, 8, "api.svc", QTYPE_A).unwrap_err().contains("id"));
        assert!(parse_response(&ok, 7, "other.svc", QTYPE_A).unwrap_err().contains("not"));
        let nx = answer(9, "x", 0x8183, &[]);
        assert_eq!(parse_response(&nx, 9, "x", QTYPE_A).expect("valid").rcode, 3);
        // Every truncation of a valid message is rejected or parsed, never a panic.
        for n in 0..ok.len() {
            let _ = parse_response(&ok[..n], 7, "api.svc", QTYPE_A);
        }
        // A pointer loop is an error.
        let mut lp = answer(1, "a", 0x8180, &[]);
        lp[6..8].copy_from_slice(&1u16.to_be_bytes());
        let at = lp.len() as u16;
        lp.extend_from_slice(&(0xc000 | at).to_be_bytes());
        assert!(parse_response(&lp, 1, "a", QTYPE_A).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        // xorshift: deterministic garbage, some of it with a valid header and question.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let q = build_query(7, "a.b", QTYPE_A).expect("query");
        for n in 0..3000 {
            let mut buf = if n % 2 == 0 { q.clone() } else { Vec::new() };
            for _ in 0..(n % 97) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(x as u8);
            }
            if buf.len() > 7 && n % 3 == 0 {
                buf[2] |= 0x80;
                buf[6] = 0;
                buf[7] = (x % 5) as u8;
            }
            let _ = parse_response(&buf, 7, "a.b", QTYPE_A);
        }
    }

    fn server(ip: [u8; 4], rcode: Option<u8>, answers: &[[u8; 4]]) -> ServerResult {
        let answers: Vec<IpAddr> = answers.iter().map(|a| IpAddr::from(*a)).collect();
        ServerResult {
            server: IpAddr::from(ip),
            queries: vec![QueryResult {
                qname: "x".into(),
                qtype: "A".into(),
                outcome: String::new(),
                rcode,
                answers: answers.clone(),
                latency_ms: None,
                attempts: 1,
                truncated_retried_tcp: false,
            }],
            answered_name: None,
            addresses: answers,
            queries_until_answer: 1,
            unreachable: rcode.is_none(),
            tcp_connect: None,
            ping: None,
            name_as_written: None,
            paired: None,
        }
    }

    #[test]
    fn addresses_follow_the_resolver_order() {
        let mut r = DnsReport {
            name: "x".into(),
            nameservers: vec![],
            search: vec![],
            ndots: 1,
            resolver_timeout_s: 5,
            resolver_attempts: 2,
            candidates: vec![],
            servers: vec![server([10, 0, 0, 1], None, &[]), server([10, 0, 0, 2], Some(0), &[[1, 2, 3, 4]])],
            config_issues: vec![],
        };
        assert_eq!(addresses(&r), [IpAddr::from([1, 2, 3, 4])], "a dead first server is skipped");
        r.servers[0] = server([10, 0, 0, 1], Some(3), &[]);
        assert!(addresses(&r).is_empty(), "NXDOMAIN from the first server is the answer");
        r.servers[0] = server([10, 0, 0, 1], Some(2), &[]);
        assert_eq!(addresses(&r), [IpAddr::from([1, 2, 3, 4])], "SERVFAIL: the resolver asks the next");
    }

    #[test]
    fn every_emitted_cause_is_listed() {
        let src = include_str!("dns.rs");
        let used: BTreeSet<&str> = src
            .match_indices("\"DIAG-DNS-0")
            .filter_map(|(i, _)| src.get(i + 1..i + 13))
            .filter(|id| id.bytes().skip(9).all(|b| b.is_ascii_digit()))
            .collect();
        let listed: BTreeSet<&str> = CAUSES.iter().map(|c| c.0).collect();
        assert_eq!(used, listed);
    }

    #[test]
    fn ip_targets_are_skipped() {
        let out = run(&DnsRequest::new("10.0.0.1", "/nonexistent"), Instant::now() + Duration::from_secs(1));
        assert_eq!(out.layer.status, LayerStatus::Skipped);
        let out = run(&DnsRequest::new("a..b", "/nonexistent"), Instant::now() + Duration::from_secs(1));
        assert_eq!(out.causes[0].rule, "DIAG-DNS-009");
    }
}
