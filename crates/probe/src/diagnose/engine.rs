//! The inside-out runner: local state, DNS, route and next hop, tunnel, transport, path
//! (hops), path MTU and sampling, then the causes ranked (innermost confirmed cause first).

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use netsleuth_model::{Confidence, Finding, Layer};
use serde::Serialize;
use serde_json::Value;

use super::causes;
use super::icmp::{self, Answer, Hop, PingResult};
use super::local::{self, LocalState};
use super::packet::IcmpError;
use super::route::{self, Neighbour, RouteError, RouteGet};
use super::transport::{self, Attempt, AttemptResult, Proto};
use super::tunnel::{self, IpsecCoverage, WgPeer};
use super::types::{LayerResult, LayerStatus};
use super::{dns, pmtu};

/// Hard bounds on what a caller may ask for.
const MAX_SAMPLES: u32 = 100;
const MAX_TTL: u8 = 12;
/// Echo requests to the target for the loss estimate: with 20, a 30 % loss shows as at
/// least 2 lost with 99 % probability, and one lost packet alone never raises an alarm.
const TARGET_PINGS: usize = 20;

/// What to diagnose and how patiently.
#[derive(Debug, Clone)]
pub struct DiagnoseRequest {
    /// A host name or an address (no port).
    pub target: String,
    pub port: Option<u16>,
    pub proto: Proto,
    /// Overall time limit.
    pub timeout: Duration,
    /// Time limit of one probe attempt.
    pub probe_timeout: Duration,
    /// Repetitions of the transport and next-hop probes (1 = no sampling).
    pub samples: u32,
    pub interval: Duration,
    pub resolv_conf: PathBuf,
    /// Collect and analyse the local state (off in tests that only exercise probes).
    pub local_state: bool,
    /// Run the path MTU search.
    pub pmtu: bool,
    /// HTTP path for `--proto http`.
    pub http_path: String,
    /// The charon VICI socket (`unix:///path`) when it is not the default one.
    pub swanctl_uri: Option<String>,
    /// swanctl.conf to read instead of `/etc/swanctl/swanctl.conf`.
    pub swanctl_conf: Option<PathBuf>,
    /// charon's log file: its last IKE errors become evidence of the tunnel layer.
    pub charon_log: Option<PathBuf>,
}

impl DiagnoseRequest {
    pub fn new(target: impl Into<String>, port: Option<u16>, proto: Proto) -> DiagnoseRequest {
        DiagnoseRequest {
            target: target.into(),
            port,
            proto,
            timeout: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(3),
            samples: 1,
            interval: Duration::from_secs(1),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            local_state: true,
            pmtu: true,
            http_path: "/".into(),
            swanctl_uri: None,
            swanctl_conf: None,
            charon_log: None,
        }
    }
}

/// A usage problem: the request cannot be run as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiagnoseError {
    #[error("{0}")]
    Usage(String),
}

/// The whole result.
#[derive(Debug, Clone, Serialize)]
pub struct DiagnoseReport {
    pub target: String,
    /// The address probed (the target itself, or what its name resolved to).
    pub address: Option<IpAddr>,
    pub port: Option<u16>,
    pub proto: Proto,
    /// The kernel's route to the target.
    pub route: Option<String>,
    pub layers: Vec<LayerResult>,
    /// Most likely first; empty when the path is healthy.
    pub causes: Vec<Finding>,
    /// Findings that do not explain a failure of this path (context, not causes): local
    /// rules that do not bear on it, and observations of probes whose layer works.
    pub other_findings: Vec<Finding>,
    /// One line: the verdict.
    pub verdict: String,
    pub duration_ms: f64,
    /// Probe-specific detail (DNS, path MTU, hops, transport attempts, samples).
    pub details: BTreeMap<String, Value>,
}

impl DiagnoseReport {
    pub fn healthy(&self) -> bool {
        self.causes.is_empty()
    }
}

/// Splits `TARGET[:PORT]` (`host`, `host:80`, `10.0.0.1:80`, `[fd00::1]:80`, `fd00::1`).
pub fn parse_target(s: &str) -> Result<(String, Option<u16>), DiagnoseError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(DiagnoseError::Usage("the target is empty".into()));
    }
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| DiagnoseError::Usage(format!("{p:?} is not a port (1-65535)")))
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| DiagnoseError::Usage(format!("{s:?}: missing ']'")))?;
        let host_ip: IpAddr =
            host.parse().map_err(|_| DiagnoseError::Usage(format!("{host:?} is not an IPv6 address")))?;
        return match after {
            "" => Ok((host_ip.to_string(), None)),
            a => Ok((host_ip.to_string(), Some(port(a.strip_prefix(':').unwrap_or(a))?))),
        };
    }
    if s.parse::<IpAddr>().is_ok() {
        return Ok((s.to_string(), None));
    }
    let (host, p) = match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(port(p)?)),
        Some(_) => {
            return Err(DiagnoseError::Usage(format!("{s:?}: write an IPv6 address with a port as [ADDR]:PORT")))
        }
        None => (s, None),
    };
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| !l.is_empty() && l.len() <= 63)
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if !ok && !host.ends_with('.') {
        return Err(DiagnoseError::Usage(format!("{host:?} is neither an address nor a host name")));
    }
    Ok((host.to_string(), p))
}

/// A scored cause: higher explains the observed failure better.
struct Ranked {
    score: u32,
    finding: Finding,
}

struct Run<'a> {
    req: &'a DiagnoseRequest,
    started: Instant,
    deadline: Instant,
    progress: &'a dyn Fn(&str),
    layers: Vec<LayerResult>,
    causes: Vec<Ranked>,
    details: BTreeMap<String, Value>,
    subject: String,
    /// Findings of probes whose layer works: shown as context, never causes.
    context: Vec<Finding>,
    /// The nameserver that answered and the name it answered, re-asked while sampling.
    dns_sample: Option<(SocketAddr, String)>,
}

impl Run<'_> {
    fn row(
        &mut self,
        probe: &str,
        layer: Layer,
        status: LayerStatus,
        summary: String,
        evidence: Vec<String>,
        t: Instant,
    ) {
        self.layers.push(LayerResult {
            layer,
            probe: probe.to_string(),
            status,
            summary,
            evidence,
            duration: t.elapsed(),
        });
    }

    fn cause(&mut self, score: u32, finding: Finding) {
        // An informational or low-risk observation never counts as a cause (a healthy path
        // has none): it is shown as context.
        if finding.severity <= netsleuth_model::Severity::Low {
            self.context.push(finding);
        } else {
            self.causes.push(Ranked { score, finding });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn diag(
        &mut self,
        score: u32,
        id: &str,
        probe: &str,
        title: String,
        detail: String,
        evidence: &[String],
        confidence: Confidence,
    ) {
        let f = causes::finding(id, self.subject.clone(), title, detail, probe, evidence, confidence);
        self.cause(score, f);
    }

    /// Replaces the catalog's generic fix of the cause just named with a specific one.
    fn fix(&mut self, fix: String) {
        if let Some(r) = self.causes.last_mut() {
            r.finding.fix = fix;
        }
    }

    /// The next step when the trail leads to a router: the same diagnosis run there, where its
    /// own state (forwarding, firewall, conntrack, tunnels) can be seen.
    fn follow_hop(&self, router: &str) -> String {
        let to = match self.req.port.or(self.req.proto.default_port()) {
            Some(p) if self.req.target.contains(':') => format!("[{}]:{p}", self.req.target),
            Some(p) => format!("{}:{p}", self.req.target),
            None => self.req.target.clone(),
        };
        let proto = match (self.req.proto, self.req.port) {
            (Proto::Tcp, Some(_)) | (Proto::Icmp, None) => String::new(),
            (p, _) => format!(" --proto {}", p.as_str()),
        };
        format!("; next: run `netsleuth diagnose --to {to}{proto}` on {router} (that router's own forwarding, firewall, conntrack and tunnel state names the mechanism)")
    }

    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn probe_deadline(&self, d: Duration) -> Instant {
        (Instant::now() + d).min(self.deadline)
    }

    fn detail<T: Serialize>(&mut self, key: &str, v: &T) {
        if let Ok(v) = serde_json::to_value(v) {
            self.details.insert(key.to_string(), v);
        }
    }
}

/// Runs the diagnosis. `progress` gets one line per step (the CLI shows them on a TTY).
pub fn run(req: &DiagnoseRequest, progress: &dyn Fn(&str)) -> Result<DiagnoseReport, DiagnoseError> {
    if matches!(req.proto, Proto::Tcp | Proto::Udp | Proto::Http | Proto::Dns)
        && req.port.is_none()
        && req.proto.default_port().is_none()
    {
        return Err(DiagnoseError::Usage(format!(
            "--proto {} needs a port: write TARGET:PORT (or use --proto icmp)",
            req.proto.as_str()
        )));
    }
    if req.timeout.is_zero() || req.probe_timeout.is_zero() {
        return Err(DiagnoseError::Usage("time limits must be above zero".into()));
    }
    let started = Instant::now();
    let port = req.port.or(req.proto.default_port());
    let mut run = Run {
        req,
        started,
        deadline: started + req.timeout,
        progress,
        layers: Vec::new(),
        causes: Vec::new(),
        details: BTreeMap::new(),
        subject: format!("diagnose/{}", req.target),
        context: Vec::new(),
        dns_sample: None,
    };

    // 1. DNS first, alone: the collection's child processes would otherwise interrupt its
    // socket waits (signals), and a name that does not resolve ends the run anyway.
    let resolved = resolve(&mut run);

    // 2. Local state, in the background: the probes do not wait for it.
    let local_rx = req.local_state.then(|| {
        let (tx, rx) = mpsc::channel();
        let per_command = req.probe_timeout.min(Duration::from_secs(5));
        let where_ = local::Sources {
            resolv_conf: req.resolv_conf.clone(),
            swanctl_uri: req.swanctl_uri.clone(),
            swanctl_conf: req.swanctl_conf.clone(),
        };
        thread::spawn(move || {
            let _ = tx.send(local::collect(per_command, &where_));
        });
        rx
    });

    let address = match resolved {
        Some(a) => a,
        None => {
            let local = wait_local(&mut run, local_rx, None, None, true);
            return Ok(finish(run, None, port, None, local));
        }
    };
    run.subject = match port {
        Some(p) if req.target.contains(':') => format!("diagnose/[{}]:{p}", req.target),
        Some(p) => format!("diagnose/{}:{p}", req.target),
        None => format!("diagnose/{}", req.target),
    };

    // 3. Route and next hop.
    (run.progress)("route and next hop");
    let t = Instant::now();
    let rt = route::route_get(address, req.probe_timeout);
    let route = match rt {
        Ok(r) if r.route_type == "unicast" || r.route_type == "local" => r,
        Ok(r) => {
            let ev = vec![format!("ip route get {address}: {}", r.text)];
            run.row(
                "gateway",
                Layer::Node,
                LayerStatus::Fail,
                format!("{} route: traffic is discarded here", r.route_type),
                ev.clone(),
                t,
            );
            run.diag(
                100,
                "DIAG-LOCAL-001",
                "gateway",
                format!("the route to {address} is of type {}", r.route_type),
                format!("The kernel's route for {address} is `{}`: packets are discarded on this host.", r.text),
                &ev,
                Confidence::Confirmed,
            );
            let local = wait_local(&mut run, local_rx, Some(address), r.dev.clone(), true);
            return Ok(finish(run, Some(address), port, Some(r.text), local));
        }
        Err(RouteError::NoRoute(msg)) => {
            let ev = vec![format!("ip route get {address}: {msg}")];
            run.row("gateway", Layer::Node, LayerStatus::Fail, format!("no route to {address}: {msg}"), ev.clone(), t);
            run.diag(
                100,
                "DIAG-LOCAL-001",
                "gateway",
                format!("no route to {address} on this host"),
                format!("`ip route get {address}` answers \"{msg}\": this host has no usable route to the target."),
                &ev,
                Confidence::Confirmed,
            );
            let local = wait_local(&mut run, local_rx, Some(address), None, true);
            return Ok(finish(run, Some(address), port, None, local));
        }
        Err(RouteError::Tool(e)) => {
            run.row("gateway", Layer::Node, LayerStatus::Unknown, format!("route lookup failed: {e}"), vec![], t);
            let local = wait_local(&mut run, local_rx, Some(address), None, false);
            return Ok(finish(run, Some(address), port, None, local));
        }
    };
    let gw = next_hop(&mut run, &route, t);

    // 4. Tunnel counters before the transport probes (the local model says which tunnel).
    let local = wait_local_model(&mut run, local_rx);
    let host = local.as_ref().and_then(|l| l.host.as_ref());
    let wg_before = route
        .dev
        .as_deref()
        .filter(|d| tunnel::is_wireguard(host, d, req.probe_timeout))
        .map(|d| (d.to_string(), tunnel::wg_peers(d, req.probe_timeout)));

    // 5. Transport.
    let (attempts, background, early) = transport_probe(&mut run, address, port);
    let transport_ok = attempts.iter().any(|a| a.result == AttemptResult::Ok);

    // 6. Tunnel verdict (counters after).
    tunnel_layer(&mut run, &route, address, wg_before, host, transport_ok);

    // 7. Where the path breaks, when it does.
    let (target_ping, hops) = match (early, background) {
        (Some(done), _) => done,
        (None, Some(rx)) => rx.recv_timeout(run.left()).unwrap_or((None, None)),
        (None, None) if run.left() > Duration::from_millis(300) => (
            ping_ip(
                address,
                TARGET_PINGS,
                Duration::from_millis(5),
                Duration::from_millis(800),
                run.probe_deadline(Duration::from_secs(2)),
            ),
            None,
        ),
        (None, None) => (None, None),
    };
    let reached = path_layer(&mut run, &route, address, &attempts, target_ping.as_ref(), hops, gw.as_ref());

    // 8. Path MTU, when the target answers at all (a dead path has no MTU to measure).
    let silent = !transport_ok
        && !reached
        && attempts.iter().all(|a| matches!(a.result, AttemptResult::Timeout | AttemptResult::Unreachable));
    if req.pmtu && silent {
        let t = Instant::now();
        run.row(
            "path-mtu",
            Layer::Overlay,
            LayerStatus::Skipped,
            "not measured: the target answers nothing".into(),
            vec![],
            t,
        );
    } else if req.pmtu && run.left() > Duration::from_secs(1) {
        pmtu_layer(&mut run, address, port, &route, local.as_ref());
    }

    // 9. Sampling / intermittency.
    sampling_layer(&mut run, address, port, &attempts, target_ping.as_ref(), &route);

    // This host is a router for the target's traffic when the target is not itself: state
    // that breaks forwarding here breaks the target's clients even while this host's own
    // connection works.
    let onward = route.route_type != "local" && forwards(local.as_ref().and_then(|l| l.host.as_ref()));
    let local_state = local_layer(&mut run, local, Some(address), route.dev.clone(), !transport_ok, onward);
    Ok(finish(run, Some(address), port, Some(route.text.clone()), local_state))
}

/// The target's address: the target itself, or the DNS probe's answer.
fn resolve(run: &mut Run<'_>) -> Option<IpAddr> {
    let req = run.req;
    if let Ok(a) = req.target.parse::<IpAddr>() {
        run.layers.push(LayerResult {
            layer: Layer::Dns,
            probe: "dns".into(),
            status: LayerStatus::Skipped,
            summary: "the target is an address".into(),
            evidence: vec![],
            duration: Duration::ZERO,
        });
        return Some(a);
    }
    (run.progress)("dns");
    let mut dreq = dns::DnsRequest::new(req.target.clone(), req.resolv_conf.clone());
    // One try per query, long enough for a slow-but-working resolver (a second try only
    // repeats the same silence and doubles the wait).
    dreq.per_query_timeout = req.probe_timeout.min(Duration::from_millis(2500));
    dreq.attempts = 1;
    let dns_deadline = run.probe_deadline(Duration::from_secs(8).min(req.timeout / 2));
    let out = dns::run(&dreq, dns_deadline);
    let addrs = dns::addresses(&out.detail);
    run.dns_sample = out
        .detail
        .servers
        .iter()
        .find(|s| !s.addresses.is_empty())
        .and_then(|s| Some((SocketAddr::new(s.server, 53), s.answered_name.clone()?)));
    run.detail("dns", &out.detail);
    let failed = out.layer.status == LayerStatus::Fail;
    let counts = counts_as_cause(out.layer.status);
    run.layers.push(out.layer);
    for c in out.causes {
        if !counts && !addrs.is_empty() {
            run.context.push(c);
            continue;
        }
        // A DNS failure is the innermost: nothing after it can run. A DNS warning (slow,
        // ndots cost) explains trouble only when nothing further in is broken.
        let score = if failed || addrs.is_empty() { 98 } else { 45 };
        run.cause(score, c);
    }
    let pick = addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()).copied();
    if pick.is_none() {
        // The system resolver as a last word (nsswitch: /etc/hosts and the like).
        if let Some(a) = hosts_file_lookup(&req.target) {
            return Some(a);
        }
        if !run.causes.iter().any(|c| c.finding.rule.starts_with("DIAG-DNS")) {
            let ev = vec![format!("no address for {}", req.target)];
            run.diag(
                97,
                "DIAG-LOCAL-003",
                "dns",
                format!("{} does not resolve", req.target),
                format!(
                    "Neither the resolvers of {} nor /etc/hosts give an address for {}.",
                    req.resolv_conf.display(),
                    req.target
                ),
                &ev,
                Confidence::Confirmed,
            );
        }
    }
    pick
}

/// Whether a probe's findings are causes: only when its layer failed or is degraded.
fn counts_as_cause(s: LayerStatus) -> bool {
    matches!(s, LayerStatus::Fail | LayerStatus::Warn)
}

/// The name in `/etc/hosts` (what nsswitch consults before DNS). Only the file is read:
/// a diagnosis sends DNS only to the resolvers of the given resolv.conf.
fn hosts_file_lookup(name: &str) -> Option<IpAddr> {
    let text = std::fs::read_to_string("/etc/hosts").ok()?;
    hosts_lookup(&text, name)
}

fn hosts_lookup(text: &str, name: &str) -> Option<IpAddr> {
    let name = name.trim_end_matches('.');
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut it = line.split_whitespace();
        let addr: IpAddr = it.next()?.parse().ok()?;
        it.any(|n| n.eq_ignore_ascii_case(name)).then_some(addr)
    })
}

/// A ping, or None when it cannot be sent (no raw socket, no time left).
fn ping_ip(a: IpAddr, count: usize, spacing: Duration, wait: Duration, deadline: Instant) -> Option<PingResult> {
    icmp::ping(a, count, spacing, wait, deadline).ok()
}

/// What the next-hop probe saw.
struct NextHop {
    addr: IpAddr,
    ping: Option<PingResult>,
    neigh: Option<Neighbour>,
}

fn next_hop(run: &mut Run<'_>, route: &RouteGet, t: Instant) -> Option<NextHop> {
    if route.route_type == "local" {
        run.row("gateway", Layer::Node, LayerStatus::Ok, format!("the target is local ({})", route.text), vec![], t);
        return None;
    }
    let hop = route.next_hop();
    let on_link = route.gateway.is_none();
    let ping = ping_ip(
        hop,
        3,
        Duration::from_millis(20),
        Duration::from_millis(700),
        run.probe_deadline(Duration::from_secs(2)),
    );
    let neigh = route.dev.as_deref().and_then(|d| route::neighbour(hop, d, run.req.probe_timeout).ok().flatten());
    let mut ev = vec![format!("ip route get: {}", route.text)];
    if let Some(p) = &ping {
        ev.push(p.summary(hop));
    }
    if let Some(n) = &neigh {
        ev.push(format!("neighbour {hop}: {}", n.describe()));
    }
    let who = if on_link { "target (on-link)" } else { "gateway" };
    let answered = ping.as_ref().is_some_and(|p| !p.replies.is_empty());
    let neigh_failed = neigh.as_ref().is_some_and(Neighbour::failed);
    let (status, summary) = if answered {
        (LayerStatus::Ok, format!("{who} {hop} answers: {}", ping.as_ref().map(|p| p.summary(hop)).unwrap_or_default()))
    } else if neigh_failed {
        (
            LayerStatus::Fail,
            format!("{who} {hop} does not answer ARP/neighbour discovery on {}", route.dev.as_deref().unwrap_or("?")),
        )
    } else if neigh.as_ref().is_some_and(|n| n.lladdr.is_some()) {
        // Resolved at layer 2 but silent to ping: ICMP is filtered, not a fault by itself.
        (
            LayerStatus::Unknown,
            format!(
                "{who} {hop} is on the link ({}) but does not answer ping",
                neigh.as_ref().map(Neighbour::describe).unwrap_or_default()
            ),
        )
    } else if ping.is_none() {
        (LayerStatus::Unknown, format!("{who} {hop}: could not ping (no raw socket: needs root or CAP_NET_RAW)"))
    } else {
        (LayerStatus::Unknown, format!("{who} {hop} does not answer ping"))
    };
    run.row("gateway", Layer::Node, status, summary, ev.clone(), t);
    if neigh_failed && !answered {
        let dev = route.dev.clone().unwrap_or_default();
        // The target itself missing, when its address came from DNS, is what a stale record
        // looks like from here.
        let from_dns = on_link && run.req.target.parse::<IpAddr>().is_err();
        let mut detail = format!("The route to {} goes to {hop} on {dev}, but nobody answers neighbour resolution for {hop}: it is down, the address is wrong, or the link is broken.", route.dst);
        if from_dns {
            detail.push_str(&format!(
                " {hop} is what DNS answers for {}: if the service moved, the record is stale.",
                run.req.target
            ));
        }
        run.diag(
            92,
            "DIAG-GW-001",
            "gateway",
            format!("{who} {hop} does not answer ARP/neighbour discovery on {dev}"),
            detail,
            &ev,
            Confidence::Confirmed,
        );
        run.fix(if from_dns {
            format!("check where {} really is now and fix its DNS record (or the host at {hop}); `ip neigh show {hop}` shows the failed resolution", run.req.target)
        } else {
            format!("check that {hop} is the right next hop for {} (ip route), that it is up, and the link on {dev} (ip link, bridge/switch port)", route.dst)
        });
    }
    run.detail(
        "next_hop",
        &serde_json::json!({
            "address": hop.to_string(), "on_link": on_link,
            "ping": ping.as_ref().map(|p| serde_json::json!({"sent": p.sent, "replies": p.replies.len()})),
            "neighbour": neigh.as_ref().map(Neighbour::describe),
        }),
    );
    Some(NextHop { addr: hop, ping, neigh })
}

/// What the background path probes return: the target ping and the TTL walk.
type PathProbes = (Option<PingResult>, Option<io::Result<Vec<Hop>>>);

/// Starts the target ping and the TTL walk in the background (while a transport retry
/// runs), so a failing path costs one probe timeout, not the sum of all probes.
fn spawn_path_probes(address: IpAddr, deadline: Instant) -> Option<mpsc::Receiver<PathProbes>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        // One after the other: routers rate-limit the ICMP errors they send (a few per
        // second per destination), and the hop walk must get them, not the pings.
        let hops = icmp::trace(address, MAX_TTL, 2, Duration::from_millis(1500), deadline);
        // When the walk did not reach the target, 20 more echoes would not either: they would
        // only spend the ICMP error budget of the router that answers for it.
        let reached = hops.as_ref().is_ok_and(|h| h.iter().any(|h| matches!(h.answer, Answer::Reply { .. })));
        let ping = if reached || hops.is_err() {
            icmp::ping(address, TARGET_PINGS, Duration::from_millis(5), Duration::from_millis(800), deadline).ok()
        } else {
            Some(PingResult { sent: 0, replies: Vec::new(), errors: Vec::new() })
        };
        let _ = tx.send((ping, Some(hops)));
    });
    Some(rx)
}

/// The transport attempts, and the path probes started while they failed: still running
/// (a receiver) or already collected.
type TransportOutcome = (Vec<Attempt>, Option<mpsc::Receiver<PathProbes>>, Option<PathProbes>);

fn transport_probe(run: &mut Run<'_>, address: IpAddr, port: Option<u16>) -> TransportOutcome {
    let req = run.req;
    (run.progress)(&format!("transport ({})", req.proto.as_str()));
    let t = Instant::now();
    let Some(port) = port.filter(|_| req.proto != Proto::Icmp) else {
        // --proto icmp: the transport is the echo itself.
        let p = ping_ip(
            address,
            5,
            Duration::from_millis(20),
            Duration::from_millis(1000).min(req.probe_timeout.saturating_sub(Duration::from_millis(150))),
            run.probe_deadline(req.probe_timeout),
        );
        let attempts: Vec<Attempt> = match &p {
            Some(p) => (0..p.sent)
                .map(|i| Attempt {
                    result: if i < p.replies.len() { AttemptResult::Ok } else { AttemptResult::Timeout },
                    duration_ms: p.replies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0),
                    detail: if i < p.replies.len() { "echo reply".into() } else { "no echo reply".into() },
                    tcp_mss: None,
                })
                .collect(),
            None => vec![],
        };
        let (status, summary) = match &p {
            Some(p) if p.replies.len() == p.sent => (LayerStatus::Ok, p.summary(address)),
            Some(p) if !p.replies.is_empty() => (LayerStatus::Warn, p.summary(address)),
            Some(p) => (LayerStatus::Fail, p.summary(address)),
            None => (LayerStatus::Unknown, "ICMP echo not possible (no raw socket: needs root or CAP_NET_RAW)".into()),
        };
        let failed = attempts.iter().all(|a| a.result != AttemptResult::Ok);
        run.row("transport", Layer::Remote, status, summary, vec![], t);
        run.detail("transport", &attempts);
        let bg = failed.then(|| spawn_path_probes(address, run.probe_deadline(Duration::from_secs(4)))).flatten();
        return (attempts, bg, None);
    };
    let addr = SocketAddr::new(address, port);
    let host = if req.target.contains(':') { format!("[{}]", req.target) } else { req.target.clone() };
    let one = |timeout: Duration| match req.proto {
        Proto::Tcp | Proto::Icmp => transport::tcp_attempt(addr, timeout),
        Proto::Http => transport::http_attempt(addr, &host, &req.http_path, timeout),
        Proto::Udp => transport::udp_attempt(addr, b"netsleuth diagnose probe\n", timeout),
        Proto::Dns => transport::dns_attempt(addr, ".", timeout),
    };
    // Three attempts while they succeed (a SYN lost on the way shows as a ~1 s connect);
    // after a timeout one more, to tell "always" from "sometimes".
    let mut attempts = Vec::new();
    let mut bg: Option<mpsc::Receiver<PathProbes>> = None;
    let mut early: Option<PathProbes> = None;
    let bg_deadline = run.probe_deadline(Duration::from_secs(4));
    for i in 0..3 {
        // A retry after a silent first attempt needs only to outlast one SYN retransmission
        // (1 s): it tells "always" from "sometimes" while the hop probes run beside it.
        let limit = if i > 0 && attempts.iter().all(|a: &Attempt| a.result != AttemptResult::Ok) {
            req.probe_timeout.min(Duration::from_secs(2))
        } else {
            req.probe_timeout
        };
        let timeout = limit.min(run.left());
        if timeout < Duration::from_millis(50) {
            break;
        }
        let a = if i == 0 {
            // The first attempt beside a watch: when it has not succeeded after a moment (a
            // healthy connect takes milliseconds), the path probes start in parallel.
            thread::scope(|s| {
                let h = s.spawn(|| one(timeout));
                let watch = Instant::now();
                while !h.is_finished() && watch.elapsed() < Duration::from_millis(250) {
                    thread::sleep(Duration::from_millis(5));
                }
                if !h.is_finished() {
                    bg = spawn_path_probes(address, bg_deadline);
                }
                h.join().unwrap_or_else(|_| Attempt {
                    result: AttemptResult::Other,
                    duration_ms: 0.0,
                    detail: "the probe thread failed".into(),
                    tcp_mss: None,
                })
            })
        } else {
            one(timeout)
        };
        let r = a.result;
        attempts.push(a);
        match r {
            AttemptResult::Ok => continue,
            AttemptResult::Timeout | AttemptResult::NoAnswer | AttemptResult::Unreachable if i == 0 => {
                if bg.is_none() {
                    bg = spawn_path_probes(address, bg_deadline);
                }
                if r == AttemptResult::Unreachable {
                    break;
                }
                // A retry tells "always" from "sometimes" — unless the target answered none
                // of the echo requests meanwhile: then the path is dead, not flaky.
                if let Some(p) = bg.take().and_then(|rx| rx.recv_timeout(run.left()).ok()) {
                    let dead = p.0.as_ref().is_some_and(|ping| ping.replies.is_empty());
                    early = Some(p);
                    if dead {
                        break;
                    }
                }
                continue;
            }
            _ => break,
        }
    }
    let ok = attempts.iter().filter(|a| a.result == AttemptResult::Ok).count();
    let last = attempts.iter().rev().find(|a| a.result != AttemptResult::Ok).or(attempts.last());
    let times: Vec<Duration> = attempts
        .iter()
        .filter(|a| a.result == AttemptResult::Ok)
        .map(|a| Duration::from_secs_f64(a.duration_ms / 1000.0))
        .collect();
    let p50 = icmp::percentile(&times, 50.0).map(icmp::fmt_ms).unwrap_or_default();
    let ev: Vec<String> = attempts
        .iter()
        .map(|a| format!("{} {addr}: {:?} in {:.1} ms: {}", req.proto.as_str(), a.result, a.duration_ms, a.detail))
        .collect();
    let (status, summary) = if ok == attempts.len() && ok > 0 {
        (
            LayerStatus::Ok,
            format!("{ok}/{} {} attempts to {addr} succeeded, p50 {p50}", attempts.len(), req.proto.as_str()),
        )
    } else if ok > 0 {
        (
            LayerStatus::Warn,
            format!(
                "{ok}/{} {} attempts to {addr} succeeded; {}",
                attempts.len(),
                req.proto.as_str(),
                last.map(|a| a.detail.as_str()).unwrap_or("")
            ),
        )
    } else {
        (
            LayerStatus::Fail,
            format!("{} {addr}: {}", req.proto.as_str(), last.map(|a| a.detail.as_str()).unwrap_or("no attempt")),
        )
    };
    run.row("transport", Layer::Remote, status, summary, ev.clone(), t);
    run.detail("transport", &attempts);
    if ok == 0 {
        if let Some(a) = attempts.last() {
            transport_causes(run, addr, a, &ev);
        }
    }
    (attempts, bg, early)
}

/// Causes a failed transport names by itself (refused, local deny, HTTP errors).
fn transport_causes(run: &mut Run<'_>, addr: SocketAddr, a: &Attempt, ev: &[String]) {
    let proto = run.req.proto;
    match (a.result, proto) {
        (AttemptResult::Refused, Proto::Udp | Proto::Dns) => run.diag(85, "DIAG-UDP-001", "transport",
            format!("nothing listens on UDP {addr}"),
            format!("The UDP request to {addr} is answered by ICMP port unreachable: the host is reached, no service listens on the port."), ev, Confidence::Confirmed),
        (AttemptResult::Refused, _) => run.diag(85, "DIAG-TCP-001", "transport",
            format!("nothing listens on TCP {addr}"),
            format!("The TCP connect to {addr} is refused (RST): the host is reached, but no service listens on port {} (or a firewall rejects with a TCP reset).", addr.port()), ev, Confidence::Confirmed),
        (AttemptResult::LocalDenied, _) => run.diag(95, "DIAG-LOCAL-002", "transport",
            format!("this host's firewall refuses to send to {addr}"),
            format!("Sending to {addr} fails locally ({}): an output firewall rule on this host rejects it.", a.detail), ev, Confidence::Confirmed),
        (AttemptResult::NoAnswer, Proto::Http) => run.diag(50, "DIAG-HTTP-001", "transport",
            format!("{addr} accepts connections but sends no HTTP response"),
            format!("TCP to {addr} connects, but the HTTP request gets no response within {} ms.", run.req.probe_timeout.as_millis()), ev, Confidence::Likely),
        (AttemptResult::AppError, Proto::Http) => run.diag(80, "DIAG-HTTP-002", "transport",
            format!("{addr} answers with an HTTP error"), format!("The server answers: {}.", a.detail), ev, Confidence::Confirmed),
        _ => {}
    }
}

type WgSnapshot = (String, Result<Vec<WgPeer>, String>);

fn tunnel_layer(
    run: &mut Run<'_>,
    route: &RouteGet,
    address: IpAddr,
    before: Option<WgSnapshot>,
    host: Option<&netsleuth_model::host::Host>,
    transport_ok: bool,
) {
    let t = Instant::now();
    if let Some((dev, before)) = before {
        let peers = match before {
            Ok(p) => p,
            Err(e) => {
                run.row(
                    "tunnel",
                    Layer::Tunnel,
                    LayerStatus::Unknown,
                    format!("{dev} is WireGuard, but {e}"),
                    vec![],
                    t,
                );
                return;
            }
        };
        let Some(peer) = tunnel::peer_for(&peers, address).cloned() else {
            let ev: Vec<String> = peers
                .iter()
                .map(|p| {
                    format!(
                        "peer {} allowed-ips {}",
                        p.short_key(),
                        p.allowed_ips.iter().map(|(a, l)| format!("{a}/{l}")).collect::<Vec<_>>().join(",")
                    )
                })
                .collect();
            run.row(
                "tunnel",
                Layer::Tunnel,
                LayerStatus::Fail,
                format!("no peer of {dev} has AllowedIPs covering {address}"),
                ev.clone(),
                t,
            );
            run.diag(93, "DIAG-TUN-002", "tunnel", format!("no WireGuard peer of {dev} covers {address}"),
                format!("The route sends {address} into {dev}, but no peer's AllowedIPs contains it: WireGuard drops the packets."), &ev, Confidence::Confirmed);
            run.fix(format!("add {address} (its prefix) to the AllowedIPs of the peer that serves it: wg set {dev} peer KEY allowed-ips ...,PREFIX — and mirror it on the remote end"));
            return;
        };
        let after = tunnel::wg_peers(&dev, run.req.probe_timeout).ok();
        let now = tunnel::now_unix();
        let age = peer.latest_handshake.map(|h| now - h);
        let after_peer = after.as_ref().and_then(|ps| ps.iter().find(|p| p.public_key == peer.public_key));
        let (dtx, drx) = after_peer.map_or((0, 0), |a| (a.tx.saturating_sub(peer.tx), a.rx.saturating_sub(peer.rx)));
        let age_after = after_peer.and_then(|p| p.latest_handshake).map(|h| now - h);
        let mut ev = vec![
            format!("peer {} endpoint {}", peer.short_key(), peer.endpoint.as_deref().unwrap_or("(none)")),
            format!("latest handshake: {}", age_after.or(age).map_or("never".into(), |a| format!("{a} s ago"))),
            format!("while probing: tx +{dtx} B, rx +{drx} B"),
        ];
        if peer.endpoint.is_none() {
            ev.push("the peer has no endpoint: this side cannot initiate a handshake".into());
        }
        let hs_bad = age_after.or(age).is_none_or(|a| a > tunnel::HANDSHAKE_STALE_SECS);
        if transport_ok && !hs_bad {
            run.row(
                "tunnel",
                Layer::Tunnel,
                LayerStatus::Ok,
                format!(
                    "{dev} peer {} handshake {} s ago, counters moving",
                    peer.short_key(),
                    age_after.or(age).unwrap_or(0)
                ),
                ev,
                t,
            );
        } else if hs_bad {
            let status = if transport_ok { LayerStatus::Warn } else { LayerStatus::Fail };
            run.row(
                "tunnel",
                Layer::Tunnel,
                status,
                format!("{dev} peer {}: no current handshake", peer.short_key()),
                ev.clone(),
                t,
            );
            if !transport_ok {
                run.diag(91, "DIAG-TUN-001", "tunnel", format!("WireGuard peer {} on {dev} has no current handshake", peer.short_key()),
                    format!("Traffic to {address} goes to the WireGuard peer {} (endpoint {}), whose latest handshake is {}: the session is not up. UDP to the peer's port is blocked, or the keys do not match.",
                        peer.short_key(), peer.endpoint.as_deref().unwrap_or("none"), age_after.or(age).map_or("never".into(), |a| format!("{a} s old"))),
                    &ev, Confidence::Confirmed);
                run.fix(format!("check that UDP reaches the peer's endpoint {} (firewalls/security groups on the underlay) and that both ends have each other's current public key (wg show {dev})", peer.endpoint.as_deref().unwrap_or("(none: set one)")));
            }
        } else if dtx > 0 && drx == 0 {
            run.row(
                "tunnel",
                Layer::Tunnel,
                LayerStatus::Fail,
                format!("{dev} peer {}: sends, receives nothing", peer.short_key()),
                ev.clone(),
                t,
            );
            run.diag(88, "DIAG-TUN-003", "tunnel", format!("WireGuard peer {} sends but gets nothing back", peer.short_key()),
                format!("While probing {address}, {dev} sent {dtx} B to the peer and received nothing: the remote end drops or cannot route the traffic (its AllowedIPs, routes or forwarding)."), &ev, Confidence::Likely);
        } else {
            run.row(
                "tunnel",
                Layer::Tunnel,
                LayerStatus::Ok,
                format!("{dev} peer {} handshake {} s ago", peer.short_key(), age_after.or(age).unwrap_or(0)),
                ev,
                t,
            );
        }
        return;
    }
    // IPsec (policy-based: no tunnel interface; the SA list says whether traffic is covered).
    if let Some(h) = host {
        let via_dev = route.dev.as_deref().is_some_and(|d| tunnel::is_ipsec_dev(h, d));
        match tunnel::ipsec_coverage(h, route.prefsrc, address, via_dev) {
            IpsecCoverage::Covered { child, bytes_in, bytes_out } => {
                let ev = vec![format!(
                    "CHILD_SA {child} INSTALLED, bytes in {} out {}",
                    bytes_in.unwrap_or(0),
                    bytes_out.unwrap_or(0)
                )];
                run.row(
                    "tunnel",
                    Layer::Tunnel,
                    LayerStatus::Ok,
                    format!("IPsec CHILD_SA {child} covers the traffic"),
                    ev,
                    t,
                );
            }
            IpsecCoverage::NotCovered { mut seen } => {
                let log = run.req.charon_log.as_deref().map(tunnel::charon_errors).unwrap_or_default();
                // The most recent IKE error is the one that explains the current state.
                let why = log.iter().rev().find_map(|l| tunnel::ike_failure(l));
                seen.extend(log.iter().map(|l| format!("charon: {l}")));
                let status = if transport_ok { LayerStatus::Warn } else { LayerStatus::Fail };
                run.row(
                    "tunnel",
                    Layer::Tunnel,
                    status,
                    match why {
                        Some((what, _)) => format!("no installed IPsec CHILD_SA covers {address}: {what}"),
                        None => format!("no installed IPsec CHILD_SA covers {address}"),
                    },
                    seen.clone(),
                    t,
                );
                if !transport_ok {
                    let title = match why {
                        Some((what, _)) => format!("no IPsec CHILD_SA covers traffic to {address}: {what}"),
                        None => format!("no installed IPsec CHILD_SA covers traffic to {address}"),
                    };
                    run.diag(91, "DIAG-TUN-004", "tunnel", title,
                        "IPsec is configured for the destination, but swanctl --list-sas shows no INSTALLED child SA whose traffic selectors contain both source and destination.".into(),
                        &seen, if why.is_some() { Confidence::Confirmed } else { Confidence::Likely });
                    if let Some((_, fix)) = why {
                        run.fix(fix.to_string());
                    }
                }
            }
            IpsecCoverage::NotUsed
                if route.route_type != "local" && tunnel::fronting_tunnel_down(h, address).is_some() =>
            {
                // This host is the IPsec gateway in front of the target, and the tunnel that
                // brings the far site's traffic to it is down: this host reaches the target,
                // the far site does not.
                let mut seen = tunnel::fronting_tunnel_down(h, address).unwrap_or_default();
                let log = run.req.charon_log.as_deref().map(tunnel::charon_errors).unwrap_or_default();
                let why = log.iter().rev().find_map(|l| tunnel::ike_failure(l));
                seen.extend(log.iter().map(|l| format!("charon: {l}")));
                run.row(
                    "tunnel",
                    Layer::Tunnel,
                    LayerStatus::Fail,
                    match why {
                        Some((what, _)) => format!("the IPsec tunnel to {address}'s far site is down: {what}"),
                        None => format!("the IPsec tunnel to {address}'s far site is down (no installed CHILD_SA)"),
                    },
                    seen.clone(),
                    t,
                );
                let title = match why {
                    Some((what, _)) => format!("the IPsec tunnel that carries traffic to {address} is down: {what}"),
                    None => format!("the IPsec tunnel that carries traffic to {address} is down"),
                };
                run.diag(55, "DIAG-TUN-004", "tunnel", title,
                    format!("IPsec here is configured to carry traffic to {address} from the far site (a CHILD_SA whose local selectors contain it), but no such CHILD_SA is installed: this host reaches {address} itself, the far site's clients cannot."),
                    &seen, if why.is_some() { Confidence::Confirmed } else { Confidence::Likely });
                if let Some((_, fix)) = why {
                    run.fix(fix.to_string());
                }
            }
            IpsecCoverage::NotUsed
                if !transport_ok
                    && !h.ipsec.connections.is_empty()
                    && is_private(address)
                    && h.routes
                        .lookup_in(netsleuth_model::host::RouteTable::MAIN, address)
                        .is_some_and(|r| r.dst.prefix_len() == 0) =>
            {
                // An IPsec gateway sending a private destination out by its default route,
                // unencrypted: the selectors do not cover it (not mirrored, too narrow), and
                // the internet has no route to a private address.
                let mut seen: Vec<String> = h
                    .ipsec
                    .connections
                    .iter()
                    .flat_map(|c| c.children.iter().map(move |ch| (c, ch)))
                    .map(|(c, ch)| {
                        format!(
                            "configured {}/{}: {} === {}",
                            c.name,
                            ch.name,
                            ch.local_ts.join(","),
                            ch.remote_ts.join(",")
                        )
                    })
                    .collect();
                for sa in &h.ipsec.sas {
                    for ch in &sa.children {
                        seen.push(format!(
                            "SA {}/{} {}: {} === {}",
                            sa.name,
                            ch.name,
                            ch.state,
                            ch.local_ts.join(","),
                            ch.remote_ts.join(",")
                        ));
                    }
                }
                let log = run.req.charon_log.as_deref().map(tunnel::charon_errors).unwrap_or_default();
                seen.extend(log.iter().map(|l| format!("charon: {l}")));
                seen.push(format!("ip route get {address}: {}", route.text));
                let dev = route.dev.as_deref().unwrap_or("?");
                run.row(
                    "tunnel",
                    Layer::Tunnel,
                    LayerStatus::Fail,
                    format!("no IPsec selector covers {address}: it leaves unencrypted by the default route ({dev})"),
                    seen.clone(),
                    t,
                );
                run.diag(83, "DIAG-TUN-004", "tunnel", format!("no IPsec CHILD_SA covers traffic to {address}: it leaves unencrypted by the default route"),
                    format!("This host runs IPsec, but no configured or installed CHILD_SA has {address} in its remote traffic selectors; the private address {address} therefore leaves by the default route via {dev}, unencrypted, where no router knows it."),
                    &seen, Confidence::Likely);
                run.fix(format!("add {address}'s prefix to remote_ts (and mirror it in the peer's local_ts), reload swanctl and re-initiate the CHILD_SA; both peers' selectors must mirror each other"));
            }
            IpsecCoverage::NotUsed => {
                let dev = route.dev.as_deref().unwrap_or("?");
                let summary = if h.ipsec.connections.is_empty() && h.ipsec.sas.is_empty() {
                    format!("the route leaves by {dev} (no tunnel on this host)")
                } else {
                    format!("the route leaves by {dev}; IPsec here is not configured for {address}")
                };
                let ev: Vec<String> = h
                    .ipsec
                    .connections
                    .iter()
                    .flat_map(|c| c.children.iter().map(move |ch| (c, ch)))
                    .map(|(c, ch)| {
                        format!("{}/{}: {} === {}", c.name, ch.name, ch.local_ts.join(","), ch.remote_ts.join(","))
                    })
                    .collect();
                run.row("tunnel", Layer::Tunnel, LayerStatus::Skipped, summary, ev, t);
            }
        }
        return;
    }
    run.row(
        "tunnel",
        Layer::Tunnel,
        LayerStatus::Skipped,
        format!("the route leaves by {} (no tunnel seen on this host)", route.dev.as_deref().unwrap_or("?")),
        vec![],
        t,
    );
}

/// The path row and the causes it names; returns whether the target answered ICMP.
fn path_layer(
    run: &mut Run<'_>,
    route: &RouteGet,
    address: IpAddr,
    attempts: &[Attempt],
    target_ping: Option<&PingResult>,
    hops: Option<io::Result<Vec<Hop>>>,
    gw: Option<&NextHop>,
) -> bool {
    let t = Instant::now();
    let pinged = target_ping.is_some_and(|p| !p.replies.is_empty());
    let transport_ok = attempts.iter().any(|a| a.result == AttemptResult::Ok);
    let refused = attempts
        .iter()
        .any(|a| matches!(a.result, AttemptResult::Refused | AttemptResult::LocalDenied | AttemptResult::AppError));
    if transport_ok || refused || route.route_type == "local" {
        let why = if transport_ok { "the transport works" } else { "the target itself answered" };
        run.row("path", Layer::Remote, LayerStatus::Skipped, format!("not traced: {why}"), vec![], t);
        return transport_ok || pinged;
    }
    (run.progress)("path (TTL-limited probes)");
    let hops = match hops {
        Some(h) => h,
        None => {
            let wait = Duration::from_millis(1500).min(run.left());
            icmp::trace(address, MAX_TTL, 2, wait, run.probe_deadline(Duration::from_secs(3)))
        }
    };
    let hops = match hops {
        Ok(h) => h,
        Err(e) => {
            run.row("path", Layer::Remote, LayerStatus::Unknown, format!("cannot send hop probes: {e}"), vec![], t);
            no_localisation(run, address, attempts);
            return pinged;
        }
    };
    let ev = describe_hops(&hops);
    run.detail("hops", &ev);
    let reached = hops.iter().any(|h| matches!(h.answer, Answer::Reply { .. }))
        || target_ping.is_some_and(|p| !p.replies.is_empty());
    let last_answer = hops.iter().rev().find(|h| !matches!(h.answer, Answer::Silent));
    // A router that rejects answers every TTL beyond its own hop with the same error: its
    // hop number is where it first answered (time exceeded), not where the error showed.
    let hop_of = |addr: IpAddr, fallback: u8| {
        hops.iter()
            .find(|h| matches!(h.answer, Answer::Error { from, .. } | Answer::Reply { from, .. } if from == addr))
            .map_or(fallback, |h| h.ttl)
    };
    let error = hops
        .iter()
        .find_map(|h| match h.answer {
            Answer::Error { from, kind, .. } if kind != IcmpError::TimeExceeded => {
                Some((hop_of(from, h.ttl), from, kind))
            }
            _ => None,
        })
        // An error the echo requests got counts too (the hop walk's may have been rate-limited).
        .or_else(|| {
            let last = hops.iter().rev().find(|h| !matches!(h.answer, Answer::Silent)).map_or(1, |h| h.ttl + 1);
            target_ping
                .and_then(|p| p.errors.iter().find(|(_, k)| *k != IcmpError::TimeExceeded))
                .map(|(from, kind)| (hop_of(*from, last), *from, *kind))
        });
    let proto = run.req.proto;
    if let Some((ttl, from, kind)) = error {
        let fromip = from;
        match kind {
            IcmpError::Prohibited => {
                run.row(
                    "path",
                    Layer::Policy,
                    LayerStatus::Fail,
                    format!("hop {ttl} ({from}) rejects: {}", kind.describe()),
                    ev.clone(),
                    t,
                );
                run.diag(84, "DIAG-HOP-003", "path", format!("{from} (hop {ttl}) rejects traffic to {address}"),
                    format!("Hop {ttl}, {from}, answers probes to {address} with ICMP {}: a firewall there rejects the traffic.", kind.describe()), &ev, Confidence::Confirmed);
                let next = run.follow_hop(&from.to_string());
                run.fix(format!(
                    "allow this traffic in the firewall of {from}: it rejects with ICMP {}{next}",
                    kind.describe()
                ));
            }
            IcmpError::NetUnreachable | IcmpError::HostUnreachable
                if fromip != address && Some(fromip) != route.prefsrc =>
            {
                run.row(
                    "path",
                    Layer::Remote,
                    LayerStatus::Fail,
                    format!("hop {ttl} ({from}) answers {}", kind.describe()),
                    ev.clone(),
                    t,
                );
                run.diag(82, "DIAG-HOP-002", "path", format!("{from} (hop {ttl}) has no route to {address} or does not forward"),
                    format!("Hop {ttl}, {from}, answers probes to {address} with ICMP {}: it has no route for the target, or forwarding is disabled there.", kind.describe()), &ev, Confidence::Confirmed);
                let next = run.follow_hop(&from.to_string());
                run.fix(format!("on {from}: add a route to {address} (ip route) or enable forwarding (sysctl net.ipv4.ip_forward=1){next}"));
            }
            _ => {
                run.row(
                    "path",
                    Layer::Remote,
                    LayerStatus::Warn,
                    format!("hop {ttl} ({from}) answers {}", kind.describe()),
                    ev.clone(),
                    t,
                );
                no_localisation(run, address, attempts);
            }
        }
        return reached;
    }
    if reached {
        run.row(
            "path",
            Layer::Remote,
            LayerStatus::Ok,
            format!("the target answers ICMP ({} hops)", hops.len()),
            ev.clone(),
            t,
        );
        let (id, what) = match proto {
            Proto::Udp | Proto::Dns => ("DIAG-UDP-002", "UDP"),
            _ => ("DIAG-TCP-002", "TCP"),
        };
        let p = run.req.port.or(proto.default_port()).unwrap_or(0);
        let mut e = ev.clone();
        e.extend(attempts.iter().map(|a| format!("{what} attempt: {:?}, {}", a.result, a.detail)));
        run.diag(75, id, "path", format!("{what} to {address}:{p} is dropped silently while the host answers ICMP"),
            format!("{address} answers ICMP echo, but {what} to port {p} gets no answer at all: a firewall or network policy drops this port (a closed port would answer)."), &e, Confidence::Likely);
        run.fix(format!("allow {what} port {p} to {address} in the firewall or NetworkPolicy on the path (the target itself answers)"));
        return true;
    }
    match last_answer {
        Some(h) => {
            let from = match h.answer {
                Answer::Error { from, .. } | Answer::Reply { from, .. } => from.to_string(),
                Answer::Silent => "?".into(),
            };
            run.row(
                "path",
                Layer::Remote,
                LayerStatus::Fail,
                format!("answers stop after hop {} ({from})", h.ttl),
                ev.clone(),
                t,
            );
            run.diag(70, "DIAG-HOP-001", "path", format!("traffic to {address} is dropped silently after hop {} ({from})", h.ttl),
                format!("TTL-limited probes are answered up to hop {} ({from}); nothing comes back from further on and no ICMP error: the packets are dropped at {from} (firewall, no forwarding, a tunnel that carries nothing) or on the link after it.", h.ttl),
                &ev, Confidence::Likely);
            let next = run.follow_hop(&from);
            run.fix(format!("inspect {from} and the next router after it: forwarding (net.ipv4.ip_forward), forward-chain firewall and conntrack limits, the route for {address}, and any tunnel it sends {address} into (handshake, underlay UDP){next}"));
        }
        None => {
            run.row(
                "path",
                Layer::Remote,
                LayerStatus::Fail,
                "no hop answers, not even the first".into(),
                ev.clone(),
                t,
            );
            let gw_answers = gw.is_some_and(|g| g.ping.as_ref().is_some_and(|p| !p.replies.is_empty()));
            let gw_l2 = gw.is_some_and(|g| g.neigh.as_ref().is_some_and(|n| n.lladdr.is_some()));
            match gw {
                Some(g) if route.gateway.is_some() && (gw_answers || gw_l2) => {
                    let mut e = ev.clone();
                    e.push(format!("gateway {} is reachable but sends no time-exceeded and forwards nothing", g.addr));
                    run.diag(72, "DIAG-GW-002", "path", format!("gateway {} drops everything sent through it", g.addr),
                        format!("The gateway {} is on the link, but probes through it die there: no time-exceeded at hop 1 and nothing further. It does not forward (forwarding off or a firewall forward chain dropping) — or it sends no ICMP errors at all (filtered or rate-limited), which hides where the packets go.", g.addr),
                        &e, Confidence::Likely);
                    let next = run.follow_hop(&g.addr.to_string());
                    run.fix(format!("on {}: enable forwarding (net.ipv4.ip_forward=1) and check its forward-chain firewall and conntrack table{next}", g.addr));
                }
                _ => no_localisation(run, address, attempts),
            }
        }
    }
    false
}

fn no_localisation(run: &mut Run<'_>, address: IpAddr, attempts: &[Attempt]) {
    let ev: Vec<String> = attempts.iter().map(|a| format!("{:?}: {}", a.result, a.detail)).collect();
    let Some(last) = attempts.last() else { return };
    if matches!(
        last.result,
        AttemptResult::Timeout | AttemptResult::NoAnswer | AttemptResult::Unreachable | AttemptResult::Other
    ) {
        let (id, what) = match run.req.proto {
            Proto::Udp | Proto::Dns => ("DIAG-UDP-002", "UDP"),
            Proto::Http if last.result == AttemptResult::NoAnswer => return,
            _ => ("DIAG-TCP-003", "connections"),
        };
        run.diag(
            55,
            id,
            "transport",
            format!("{what} to {address} fail ({})", last.detail),
            format!("Attempts to reach {address} fail ({}) and the path probes could not localise where.", last.detail),
            &ev,
            Confidence::Possible,
        );
    }
}

/// One line per hop, the silent tail folded into one line (`hops 3-12: *`).
fn describe_hops(hops: &[Hop]) -> Vec<String> {
    let tail = hops.iter().rev().take_while(|h| matches!(h.answer, Answer::Silent)).count();
    let mut ev: Vec<String> = hops[..hops.len() - tail].iter().map(describe_hop).collect();
    match tail {
        0 => {}
        1 => ev.push(format!("hop {}: * (no answer)", hops[hops.len() - 1].ttl)),
        _ => ev.push(format!("hops {}-{}: * (no answer)", hops[hops.len() - tail].ttl, hops[hops.len() - 1].ttl)),
    }
    ev
}

fn describe_hop(h: &Hop) -> String {
    match h.answer {
        Answer::Silent => format!("hop {}: *", h.ttl),
        Answer::Reply { from, rtt } => format!("hop {}: {from} echo reply {}", h.ttl, icmp::fmt_ms(rtt)),
        Answer::Error { from, kind, rtt } => format!("hop {}: {from} {} {}", h.ttl, kind.describe(), icmp::fmt_ms(rtt)),
    }
}

fn pmtu_layer(run: &mut Run<'_>, address: IpAddr, port: Option<u16>, route: &RouteGet, local: Option<&LocalState>) {
    (run.progress)("path MTU");
    let mut preq = pmtu::PmtuRequest::new(address);
    preq.port = port.filter(|_| matches!(run.req.proto, Proto::Tcp | Proto::Http));
    preq.udp_port = port.filter(|_| run.req.proto == Proto::Udp);
    preq.local_mtu = route
        .dev
        .as_deref()
        .and_then(|d| local.and_then(|l| l.host.as_ref()).and_then(|h| h.interface(d)).and_then(|i| i.mtu));
    let deadline = run.probe_deadline(Duration::from_secs(8));
    let out = pmtu::run(&preq, deadline);
    run.detail("pmtu", &out.detail);
    let counts = counts_as_cause(out.layer.status);
    run.layers.push(out.layer);
    for c in out.causes {
        if !counts {
            // Observations of a layer that works (e.g. "path MTU below the interface MTU,
            // PMTUD works") are context, not causes: a healthy path reports none.
            run.context.push(c);
            continue;
        }
        // An MTU black hole explains "small works, big stalls": above generic silence
        // (which big packets also show), below confirmed local or refusal causes.
        run.cause(78, c);
    }
}

fn sampling_layer(
    run: &mut Run<'_>,
    address: IpAddr,
    port: Option<u16>,
    attempts: &[Attempt],
    target_ping: Option<&PingResult>,
    route: &RouteGet,
) {
    let t = Instant::now();
    let req = run.req;
    let samples = req.samples.clamp(1, MAX_SAMPLES);
    let mut results: Vec<Attempt> = attempts.to_vec();
    let mut gw_pings: Vec<Option<Duration>> = Vec::new();
    let mut dns_samples: Vec<Attempt> = Vec::new();
    if samples > 1 {
        (run.progress)(&format!("sampling ({samples} samples, every {} ms)", req.interval.as_millis()));
        let addr = port.map(|p| SocketAddr::new(address, p));
        let host = req.target.clone();
        for i in 0..samples {
            if i > 0 {
                let pause = req.interval.min(run.left());
                thread::sleep(pause);
            }
            let timeout = req.probe_timeout.min(run.left());
            if timeout < Duration::from_millis(50) {
                break;
            }
            let a = match (req.proto, addr) {
                (Proto::Udp, Some(a)) => transport::udp_attempt(a, b"netsleuth diagnose probe\n", timeout),
                (Proto::Http, Some(a)) => transport::http_attempt(a, &host, &req.http_path, timeout),
                (Proto::Dns, Some(a)) => transport::dns_attempt(a, ".", timeout),
                (Proto::Tcp, Some(a)) => transport::tcp_attempt(a, timeout),
                _ => match ping_ip(
                    address,
                    1,
                    Duration::ZERO,
                    timeout.saturating_sub(Duration::from_millis(20)),
                    run.probe_deadline(timeout),
                ) {
                    Some(p) if !p.replies.is_empty() => Attempt {
                        result: AttemptResult::Ok,
                        duration_ms: p.replies[0].as_secs_f64() * 1000.0,
                        detail: "echo reply".into(),
                        tcp_mss: None,
                    },
                    _ => Attempt {
                        result: AttemptResult::Timeout,
                        duration_ms: timeout.as_secs_f64() * 1000.0,
                        detail: "no echo reply".into(),
                        tcp_mss: None,
                    },
                },
            };
            results.push(a);
            if let Some((ns, name)) = run.dns_sample.clone() {
                dns_samples.push(transport::dns_attempt(ns, &name, timeout.min(Duration::from_secs(2))));
            }
            if route.gateway.is_some() {
                let g = ping_ip(
                    route.next_hop(),
                    1,
                    Duration::ZERO,
                    Duration::from_millis(500),
                    run.probe_deadline(Duration::from_millis(600)),
                );
                gw_pings.push(g.and_then(|p| p.replies.first().copied()));
            }
        }
        // Only the sampled attempts count for the statistics; the first probe's are context.
        results.drain(..attempts.len());
    }
    let n = results.len();
    let ok: Vec<&Attempt> = results.iter().filter(|a| a.result == AttemptResult::Ok).collect();
    let lat: Vec<Duration> = ok.iter().map(|a| Duration::from_secs_f64(a.duration_ms / 1000.0)).collect();
    let loss = if n == 0 { 0.0 } else { 100.0 * (n - ok.len()) as f64 / n as f64 };
    let pct = |p: f64| icmp::percentile(&lat, p).map(icmp::fmt_ms).unwrap_or_else(|| "-".into());
    let mut ev = vec![format!(
        "transport: {}/{} ok, loss {loss:.0} %, p50 {} p95 {} p99 {}",
        ok.len(),
        n,
        pct(50.0),
        pct(95.0),
        pct(99.0)
    )];
    let gw_ok = gw_pings.iter().filter(|g| g.is_some()).count();
    if !gw_pings.is_empty() {
        ev.push(format!("next hop {}: {gw_ok}/{} echo replies", route.next_hop(), gw_pings.len()));
    }
    let ping_loss = target_ping.filter(|p| !p.replies.is_empty()).map(|p| (p.loss_pct(), p.sent, p.replies.len()));
    if let Some((l, s, r)) = ping_loss {
        ev.push(format!("target echo: {r}/{s} replies, loss {l:.0} %"));
    }
    let dns_lost = dns_samples.iter().filter(|a| a.result != AttemptResult::Ok).count();
    if !dns_samples.is_empty() {
        let dlat: Vec<Duration> = dns_samples
            .iter()
            .filter(|a| a.result == AttemptResult::Ok)
            .map(|a| Duration::from_secs_f64(a.duration_ms / 1000.0))
            .collect();
        ev.push(format!(
            "dns: {}/{} answered, p50 {} p95 {}",
            dns_samples.len() - dns_lost,
            dns_samples.len(),
            icmp::percentile(&dlat, 50.0).map(icmp::fmt_ms).unwrap_or_else(|| "-".into()),
            icmp::percentile(&dlat, 95.0).map(icmp::fmt_ms).unwrap_or_else(|| "-".into())
        ));
    }
    // Patterns.
    let p50_ms = icmp::percentile(&lat, 50.0).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let retrans: Vec<&&Attempt> =
        ok.iter().filter(|a| req.proto == Proto::Tcp && is_syn_retransmit(a.duration_ms, p50_ms)).collect();
    let any_ok = !ok.is_empty();
    // Only a real series says "first after idle": the first initial attempt failing and its
    // retry working is just as well one lost packet.
    let first_failed_then_ok = samples > 1
        && n >= 5
        && results[0].result != AttemptResult::Ok
        && results[1..].iter().all(|a| a.result == AttemptResult::Ok);
    let mut status = if n == 0 { LayerStatus::Skipped } else { LayerStatus::Ok };
    let mut summary = if samples > 1 {
        format!("{n} samples: loss {loss:.0} %, p50 {} p95 {} p99 {}", pct(50.0), pct(95.0), pct(99.0))
    } else {
        format!("{} transport attempts, loss {loss:.0} %", n)
    };
    if n > 0 && !any_ok {
        // The transport row already names the failure; sampling has nothing to add.
        status = LayerStatus::Fail;
        summary = format!("all {n} attempts failed");
    } else if first_failed_then_ok {
        status = LayerStatus::Warn;
        summary = "the first attempt after idle failed, the rest worked".into();
        run.diag(60, "DIAG-LOSS-003", "sampling", format!("the first connection to {address} after idle fails"),
            format!("Of {n} samples, only the first failed ({}): an idle timer (NAT, conntrack, IPVS or a tunnel session) expires and the first packet re-establishes it.", results[0].detail), &ev, Confidence::Possible);
    } else if any_ok && (loss > 0.0 || ping_loss.is_some_and(|(l, s, r)| s - r >= 2 && l >= 10.0)) {
        status = LayerStatus::Warn;
        let shown = if loss > 0.0 { loss } else { ping_loss.map_or(0.0, |(l, _, _)| l) };
        summary = format!("intermittent: {shown:.0} % of probes lost");
        run.diag(62, "DIAG-LOSS-001", "sampling", format!("{shown:.0} % packet loss towards {address}"),
            format!("Repeated probes to {address} are lost in part ({shown:.0} %) while others pass: a lossy link or an overloaded hop on the path."), &ev, Confidence::Likely);
    } else if !retrans.is_empty() {
        status = LayerStatus::Warn;
        let times: Vec<String> = retrans.iter().map(|a| format!("{:.0} ms", a.duration_ms)).collect();
        summary = format!("{} connects took a SYN retransmission ({})", retrans.len(), times.join(", "));
        ev.push(summary.clone());
        run.diag(61, "DIAG-LOSS-002", "sampling", format!("TCP connects to {address} are delayed by lost SYNs"),
            format!("{} of {n} connects took {} instead of about {p50_ms:.1} ms: they waited for a retransmission timeout (1 s, then 2 s more) because a SYN or SYN-ACK was lost on the path.", retrans.len(), times.join(", ")), &ev, Confidence::Likely);
    }
    if dns_lost > 0 && dns_lost < dns_samples.len() {
        // Some DNS replies lost, others fine: the resolver waits its timeout (5 s by default)
        // before asking again — the "random lookups take exactly 5 s" pattern.
        if status == LayerStatus::Ok {
            status = LayerStatus::Warn;
            summary =
                format!("{dns_lost} of {} DNS queries lost: lookups stall for the resolver timeout", dns_samples.len());
        }
        run.diag(
            58,
            "DIAG-LOSS-004",
            "sampling",
            format!("DNS replies are lost intermittently ({dns_lost} of {})", dns_samples.len()),
            format!(
                "Repeated queries to the nameserver lose {dns_lost} of {} replies while the others come back at once: each loss makes a lookup wait the resolver's timeout (5 s by default) before it retries — lookups that take exactly ~5 s.",
                dns_samples.len()
            ),
            &ev,
            Confidence::Likely,
        );
    }
    if samples > 1 && (n as u32) < samples {
        // The overall time limit cut the series short: say so, the statistics are partial.
        summary = format!("{summary} (stopped at --timeout after {n} of {samples} samples)");
    }
    if req.samples <= 1 && status == LayerStatus::Ok {
        // Without --samples the row only restates the transport attempts.
        summary = format!("{summary} (use --samples N for intermittent problems)");
    }
    run.row("sampling", Layer::Cloud, status, summary, ev, t);
}

/// A connect that waited for at least one SYN (or SYN-ACK) retransmission timeout (the
/// first is 1 s) on a path whose typical connect time `p50_ms` is far smaller.
fn is_syn_retransmit(ms: f64, p50_ms: f64) -> bool {
    ms >= 950.0 && ms >= 5.0 * p50_ms
}

fn wait_local_model(run: &mut Run<'_>, rx: Option<mpsc::Receiver<Result<LocalState, String>>>) -> Option<LocalState> {
    let rx = rx?;
    (run.progress)("local state");
    let wait = run.left().min(Duration::from_secs(15));
    match rx.recv_timeout(wait) {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => Some(LocalState { problems: vec![e], ..LocalState::default() }),
        Err(_) => Some(LocalState {
            problems: vec!["local state collection did not finish in time".into()],
            ..LocalState::default()
        }),
    }
}

fn wait_local(
    run: &mut Run<'_>,
    rx: Option<mpsc::Receiver<Result<LocalState, String>>>,
    target: Option<IpAddr>,
    egress: Option<String>,
    failing: bool,
) -> Option<Vec<Finding>> {
    let local = wait_local_model(run, rx);
    local_layer(run, local, target, egress, failing, false)
}

/// What a drop rule on a router's forward (or output) path drops.
enum FwdDrop {
    FragNeeded,
    CtCount,
    Port(u16),
}

struct FwdDropRule {
    kind: FwdDrop,
    evidence: Vec<String>,
}

/// Drop rules on this router's forward path that break the target's clients: ICMP
/// fragmentation-needed filtered (forward or output: the router's own errors), a conntrack
/// count limit that has dropped, the target's port (or 53 for a name target) dropped with a
/// non-zero counter. One entry per kind.
fn forward_rule_drops(h: &netsleuth_model::host::Host, port: Option<u16>, by_name: bool) -> Vec<FwdDropRule> {
    use netsleuth_model::firewall::{Hook, Match};
    let mut out: Vec<FwdDropRule> = Vec::new();
    let mut push = |kind: FwdDrop, line: String| {
        let same = |a: &FwdDrop| std::mem::discriminant(a) == std::mem::discriminant(&kind);
        match out.iter_mut().find(|d| same(&d.kind)) {
            Some(d) => d.evidence.push(line),
            None => out.push(FwdDropRule { kind, evidence: vec![line] }),
        }
    };
    for rs in [&h.nftables, &h.iptables].into_iter().flatten() {
        for hook in [Hook::Forward, Hook::Output] {
            for (t, c) in rs.base_chains(hook) {
                for r in c.rules.iter().filter(|r| r.verdict.as_ref().is_some_and(|v| v.is_drop())) {
                    let text = r.text.to_ascii_lowercase();
                    let hits = r.counters.as_ref().map_or(0, |c| c.packets);
                    let line =
                        format!("table {} {} chain {}: {} (packets {hits})", t.family, t.name, c.name, r.text.trim());
                    let icmp = r.matches.iter().any(|m| matches!(m, Match::IcmpType { negated: false, types } if types.iter().any(|t| t.contains("frag") || t.contains("too-big"))));
                    if icmp
                        || text.contains("frag-needed")
                        || text.contains("fragmentation-needed")
                        || text.contains("packet-too-big")
                    {
                        push(FwdDrop::FragNeeded, line);
                        continue;
                    }
                    if hook != Hook::Forward || hits == 0 {
                        continue;
                    }
                    if text.contains("ct count") {
                        push(FwdDrop::CtCount, line);
                        continue;
                    }
                    let dport = r.matches.iter().find_map(|m| match m {
                        Match::DstPort { negated: false, ports } => ports.iter().find_map(|p| {
                            if by_name && p.contains(53) {
                                Some(53)
                            } else {
                                port.filter(|q| p.contains(*q))
                            }
                        }),
                        _ => None,
                    });
                    if let Some(p) = dport {
                        push(FwdDrop::Port(p), line);
                    }
                }
            }
        }
    }
    out
}

/// Whether a forward-chain rule could let a *new* packet to `target` through: an accept,
/// jump or goto whose matches do not rule the packet out. Unknown matches count as "could"
/// (a hardened router with policy drop and accept rules for its clients is healthy).
fn may_accept_new(rule: &netsleuth_model::firewall::FirewallRule, target: Option<IpAddr>) -> bool {
    use netsleuth_model::firewall::{Match, Verdict};
    if !matches!(rule.verdict, Some(Verdict::Accept | Verdict::Jump(_) | Verdict::Goto(_))) {
        return false;
    }
    rule.matches.iter().all(|m| match m {
        Match::CtState { negated, states } => {
            let has_new = states.iter().any(|s| s.eq_ignore_ascii_case("new"));
            has_new != *negated
        }
        Match::DstAddr { negated, nets } => match target {
            Some(a) => nets.iter().any(|n| n.contains(&a)) != *negated,
            None => true,
        },
        _ => true,
    })
}

/// Forward-hook chains with policy drop in which no rule can accept a new packet to the
/// target, with their rules (evidence).
fn forward_policy_drops(h: &netsleuth_model::host::Host, target: Option<IpAddr>) -> Vec<String> {
    let mut out = Vec::new();
    for rs in [&h.nftables, &h.iptables].into_iter().flatten() {
        for (t, c) in rs.base_chains(netsleuth_model::firewall::Hook::Forward) {
            if c.policy.as_ref().is_some_and(|p| p.is_drop()) && !c.rules.iter().any(|r| may_accept_new(r, target)) {
                out.push(format!(
                    "table {} {} chain {}: policy drop, {} rule(s)",
                    t.family,
                    t.name,
                    c.name,
                    c.rules.len()
                ));
                out.extend(c.rules.iter().take(6).map(|r| format!("  {}", r.text.trim())));
            }
        }
    }
    out
}

/// RFC 1918 / shared / unique-local addresses: not routed on the internet.
fn is_private(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.is_private() || (v.octets()[0] == 100 && (v.octets()[1] & 0xc0) == 64),
        IpAddr::V6(v) => (v.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// Whether the host of the local model can be a router: forwarding-capable (two or more
/// interfaces up besides loopback). A pod or a plain client has one.
fn forwards(host: Option<&netsleuth_model::host::Host>) -> bool {
    host.is_some_and(|h| h.interfaces.iter().filter(|i| i.up && i.name != "lo").count() >= 2)
}

/// Local findings that break traffic *forwarded* through this host (forwarding off, strict
/// reverse-path filter, forward-chain drops, conntrack exhaustion, a tunnel's routes or
/// handshake) rather than this host's own connections.
fn breaks_forwarding(f: &Finding) -> bool {
    matches!(f.layer, Layer::Node | Layer::Policy | Layer::Tunnel | Layer::Overlay)
        && (local::breaks_traffic(f) || (f.rule == "NODE-002" && f.severity >= netsleuth_model::Severity::Medium))
}

/// The local-state row; local findings that explain a failing path become causes, the rest
/// are returned as context. `onward`: this host routes the target's traffic (it is not the
/// target) and can forward; when its own path works, findings that break forwarded traffic
/// are still causes: the target's clients behind this router fail.
fn local_layer(
    run: &mut Run<'_>,
    local: Option<LocalState>,
    target: Option<IpAddr>,
    egress: Option<String>,
    failing: bool,
    onward: bool,
) -> Option<Vec<Finding>> {
    let t = Instant::now();
    let Some(local) = local else {
        run.layers.insert(
            0,
            LayerResult {
                layer: Layer::Node,
                probe: "local-state".into(),
                status: LayerStatus::Skipped,
                summary: "not collected".into(),
                evidence: vec![],
                duration: Duration::ZERO,
            },
        );
        return None;
    };
    // A router whose own path works: a forward chain dropping by default is what its clients
    // meet (the rules catalog only judges it with Kubernetes context, which a live host lacks).
    let fwd_drop = match local.host.as_ref() {
        Some(h) if !failing && onward && !local.findings.iter().any(|f| f.rule == "NODE-003") => {
            forward_policy_drops(h, target)
        }
        _ => Vec::new(),
    };
    let port = run.req.port.or(run.req.proto.default_port());
    let by_name = run.req.target.parse::<IpAddr>().is_err();
    let drops = match local.host.as_ref() {
        Some(h) if !failing && onward => forward_rule_drops(h, port, by_name),
        _ => Vec::new(),
    };
    let mut other = Vec::new();
    let mut explaining = Vec::new();
    let mut forwarded = Vec::new();
    for f in local.findings {
        if !failing && onward && breaks_forwarding(&f) {
            forwarded.push(f);
            continue;
        }
        // No address at all (the name did not resolve): the local DNS configuration's
        // findings are what can explain it.
        let dns_explains = target.is_none() && f.layer == Layer::Dns && f.severity >= netsleuth_model::Severity::Medium;
        let relevant = failing
            && (dns_explains
                || (local::breaks_traffic(&f)
                    && target.is_some_and(|a| local::concerns_path(&f, a, egress.as_deref()))));
        if relevant {
            explaining.push(f);
        } else {
            other.push(f);
        }
    }
    let status = if local.host.is_none() {
        LayerStatus::Unknown
    } else if !explaining.is_empty() || !forwarded.is_empty() || !fwd_drop.is_empty() || !drops.is_empty() {
        LayerStatus::Fail
    } else if other.iter().any(local::breaks_traffic) {
        LayerStatus::Warn
    } else {
        LayerStatus::Ok
    };
    let summary = match status {
        LayerStatus::Unknown => format!("could not collect: {}", local.problems.join("; ")),
        LayerStatus::Fail if explaining.is_empty() && forwarded.is_empty() => {
            "this host's firewall drops traffic forwarded through it (see causes)".to_string()
        }
        LayerStatus::Fail if explaining.is_empty() => format!(
            "{} local finding(s) break traffic forwarded through this host: {}",
            forwarded.len(),
            forwarded.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>().join(", ")
        ),
        LayerStatus::Fail => format!(
            "{} local finding(s) explain the failure: {}",
            explaining.len(),
            explaining.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>().join(", ")
        ),
        _ if other.is_empty() => "interfaces, routes, firewall, tunnels, resolv.conf: no finding".into(),
        _ => format!("{} finding(s) not affecting this path (see other findings)", other.len()),
    };
    let mut ev: Vec<String> = explaining
        .iter()
        .chain(forwarded.iter())
        .chain(other.iter())
        .map(|f| format!("{} {}: {}", f.rule, f.severity.as_str(), f.title))
        .collect();
    ev.extend(local.problems.iter().map(|p| format!("not collected: {p}")));
    let duration = local.duration + t.elapsed();
    run.layers.insert(
        0,
        LayerResult { layer: Layer::Node, probe: "local-state".into(), status, summary, evidence: ev, duration },
    );
    for f in explaining {
        // A local misconfiguration on the path explains more than "silent after hop N",
        // less than a confirmed refusal or a missing route.
        let bonus = match f.severity {
            netsleuth_model::Severity::Critical => 2,
            _ => 0,
        };
        run.cause(88 + bonus, f);
    }
    let to = target.map_or_else(|| "the target".to_string(), |a| a.to_string());
    if !fwd_drop.is_empty() {
        run.diag(54, "DIAG-FWD-001", "local-state", "this router's forward chain drops by default".into(),
            format!("This host routes {to}'s traffic and a forward-hook chain here has policy drop: forwarded packets that no rule accepts (new connections of the clients behind this router) are dropped silently, while this host's own connection to {to} works."),
            &fwd_drop, Confidence::Likely);
    }
    for d in drops {
        let (id, title, detail) = match d.kind {
            FwdDrop::FragNeeded => ("DIAG-MTU-001", "this router filters ICMP fragmentation-needed: a path MTU black hole for traffic through it".to_string(),
                format!("A firewall rule here drops ICMP fragmentation-needed / packet-too-big. Packets forwarded towards {to} that exceed a smaller MTU on the way (this host's tunnel) are dropped without the error that tells the sender to shrink them: path MTU discovery cannot work for the clients behind this host (this host's own traffic learns the MTU locally).")),
            FwdDrop::CtCount => ("DIAG-FWD-002", "this router limits tracked connections and drops new ones".to_string(),
                format!("A forward rule here drops new connections above a conntrack count and has dropped packets: new connections of the clients behind this host to {to} are dropped silently while existing ones (and this host's own) pass.")),
            FwdDrop::Port(p) => ("DIAG-FWD-003", if p == 53 { "this router's forward chain drops DNS (port 53)".to_string() } else { format!("this router's forward chain drops port {p}") },
                format!("A forward rule here drops port {p} and has dropped packets: the clients behind this host cannot reach {} through it, while this host's own traffic passes.", if p == 53 { "their nameservers".to_string() } else { format!("{to}:{p}") })),
        };
        run.diag(56, id, "local-state", title, detail, &d.evidence, Confidence::Likely);
        if id == "DIAG-MTU-001" {
            // The path MTU probe's cause (its catalog, not this one): its layer and a fix.
            if let Some(r) = run.causes.last_mut() {
                r.finding.layer = Layer::Overlay;
            }
            run.fix("let ICMP fragmentation-needed (IPv4) and packet-too-big (ICMPv6) through this host's output and forward chains, and clamp the TCP MSS to the tunnel MTU".into());
        }
    }
    for mut f in forwarded {
        // Below every cause of a failing probe; ranked among themselves by severity.
        let stop = if f.detail.trim_end().ends_with('.') { "" } else { "." };
        f.detail = format!(
            "{}{stop} This host's own connection to {to} works, but it routes {to}'s traffic: packets forwarded through it (the target's clients behind it) are affected.",
            f.detail.trim_end()
        );
        run.cause(55, f);
    }
    Some(other)
}

fn finish(
    run: Run<'_>,
    address: Option<IpAddr>,
    port: Option<u16>,
    route: Option<String>,
    other: Option<Vec<Finding>>,
) -> DiagnoseReport {
    let Run { req, started, mut causes, details, layers, context, .. } = run;
    // Most likely first: score, then confidence, then inside-out layer order.
    causes.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then_with(|| b.finding.severity.cmp(&a.finding.severity))
            .then_with(|| b.finding.confidence.cmp(&a.finding.confidence))
            .then_with(|| a.finding.layer.cmp(&b.finding.layer))
    });
    let causes: Vec<Finding> = causes.into_iter().map(|r| r.finding).collect();
    // Without a working transport probe nothing was verified end to end: say so rather than
    // call the path healthy.
    let unverified = layers.iter().find(|l| l.probe == "transport" && l.status == LayerStatus::Unknown);
    let verdict = match (causes.first(), unverified) {
        (None, Some(t)) => {
            format!("inconclusive: no cause found, but the transport could not be probed ({})", t.summary)
        }
        (None, None) => "healthy: every layer that could be probed works".to_string(),
        (Some(c), _) => format!("{} ({}, {}): {}", c.title, c.rule, confidence_str(c.confidence), c.fix),
    };
    DiagnoseReport {
        target: req.target.clone(),
        address,
        port,
        proto: req.proto,
        route,
        layers,
        causes,
        other_findings: context.into_iter().chain(other.unwrap_or_default()).collect(),
        verdict,
        duration_ms: (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        details,
    }
}

pub(crate) fn confidence_str(c: Confidence) -> &'static str {
    match c {
        Confidence::Confirmed => "confirmed",
        Confidence::Likely => "likely",
        Confidence::Possible => "possible",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(parse_target("10.0.0.1:80"), Ok(("10.0.0.1".into(), Some(80))));
        assert_eq!(parse_target("10.0.0.1"), Ok(("10.0.0.1".into(), None)));
        assert_eq!(parse_target("fd00::1"), Ok(("fd00::1".into(), None)));
        assert_eq!(parse_target("[fd00::1]:53"), Ok(("fd00::1".into(), Some(53))));
        assert_eq!(
            parse_target("api.default.svc.cluster.local:8080"),
            Ok(("api.default.svc.cluster.local".into(), Some(8080)))
        );
        assert_eq!(parse_target("db"), Ok(("db".into(), None)));
        assert!(parse_target("").is_err());
        assert!(parse_target("host:0").is_err());
        assert!(parse_target("host:99999").is_err());
        assert!(parse_target("a b").is_err());
        assert!(parse_target("[fd00::1").is_err());
        assert!(parse_target("fd00::1:x:80").is_err());
    }

    fn finding(rule: &str, severity: netsleuth_model::Severity, confidence: Confidence) -> Finding {
        Finding {
            rule: rule.into(),
            severity,
            layer: Layer::Remote,
            subject: "s".into(),
            title: rule.into(),
            detail: String::new(),
            evidence: vec![],
            fix: String::new(),
            confidence,
        }
    }

    /// Ranking: score first, then severity and confidence; info/low findings are context.
    #[test]
    fn causes_are_ranked_and_low_risk_is_context() {
        use netsleuth_model::Severity::{High, Info, Low, Medium};
        let req = DiagnoseRequest::new("10.0.0.1", Some(80), Proto::Tcp);
        let progress = |_: &str| {};
        let now = Instant::now();
        let mut run = Run {
            req: &req,
            started: now,
            deadline: now + Duration::from_secs(1),
            progress: &progress,
            layers: vec![],
            causes: vec![],
            details: BTreeMap::new(),
            subject: "diagnose/10.0.0.1:80".into(),
            context: vec![],
            dns_sample: None,
        };
        run.cause(70, finding("DIAG-HOP-001", High, Confidence::Likely));
        run.cause(45, finding("DIAG-DNS-006", Medium, Confidence::Likely));
        run.cause(78, finding("DIAG-MTU-002", Info, Confidence::Confirmed));
        run.cause(78, finding("DIAG-MTU-003", Low, Confidence::Likely));
        run.cause(88, finding("TUN-003", High, Confidence::Likely));
        run.cause(88, finding("TUN-007", High, Confidence::Confirmed));
        run.diag(85, "DIAG-TCP-001", "transport", "t".into(), "d".into(), &["e".into()], Confidence::Confirmed);
        run.fix("specific fix".into());
        let rep = finish(run, None, Some(80), None, Some(vec![finding("NODE-001", High, Confidence::Likely)]));
        let order: Vec<&str> = rep.causes.iter().map(|c| c.rule.as_str()).collect();
        assert_eq!(order, ["TUN-007", "TUN-003", "DIAG-TCP-001", "DIAG-HOP-001", "DIAG-DNS-006"]);
        assert_eq!(rep.causes[2].fix, "specific fix");
        let other: Vec<&str> = rep.other_findings.iter().map(|c| c.rule.as_str()).collect();
        assert_eq!(other, ["DIAG-MTU-002", "DIAG-MTU-003", "NODE-001"]);
        assert!(rep.verdict.starts_with("TUN-007 (TUN-007, confirmed)"), "{}", rep.verdict);
        assert!(!rep.healthy());
    }

    #[test]
    fn silent_tail_of_hops_is_folded() {
        let a = |ttl: u8, last: u8| Hop {
            ttl,
            answer: Answer::Error {
                from: IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, last)),
                kind: IcmpError::TimeExceeded,
                rtt: Duration::from_micros(150),
            },
        };
        let silent = |ttl: u8| Hop { ttl, answer: Answer::Silent };
        let hops = vec![a(1, 1), silent(2), a(3, 3), silent(4), silent(5), silent(6)];
        assert_eq!(
            describe_hops(&hops),
            [
                "hop 1: 10.0.0.1 time exceeded 0.15 ms",
                "hop 2: *",
                "hop 3: 10.0.0.3 time exceeded 0.15 ms",
                "hops 4-6: * (no answer)"
            ]
        );
        assert_eq!(describe_hops(&[silent(1)]), ["hop 1: * (no answer)"]);
        assert!(describe_hops(&[]).is_empty());
    }

    #[test]
    fn hosts_file() {
        let t = "127.0.0.1 localhost\n# 10.0.0.1 commented\n10.0.0.2 db db.corp # x\n";
        assert_eq!(hosts_lookup(t, "db.corp."), Some("10.0.0.2".parse().expect("ip")));
        assert_eq!(hosts_lookup(t, "commented"), None);
        assert_eq!(hosts_lookup(t, "LOCALHOST"), Some("127.0.0.1".parse().expect("ip")));
    }

    #[test]
    fn syn_retransmission_times() {
        assert!(is_syn_retransmit(1003.0, 0.5));
        assert!(is_syn_retransmit(2030.0, 0.9));
        assert!(!is_syn_retransmit(2.0, 0.5));
        assert!(!is_syn_retransmit(1003.0, 900.0), "a slow path is not a retransmission");
    }

    #[test]
    fn usage_errors() {
        let r = DiagnoseRequest::new("10.0.0.1", None, Proto::Tcp);
        assert!(matches!(run(&r, &|_| {}), Err(DiagnoseError::Usage(m)) if m.contains("needs a port")));
        let mut r = DiagnoseRequest::new("127.0.0.1", Some(1), Proto::Tcp);
        r.timeout = Duration::ZERO;
        assert!(run(&r, &|_| {}).is_err());
    }

    /// Loopback, no local-state collection: a listening port is healthy (no cause), a
    /// closed one is named DIAG-TCP-001.
    #[test]
    fn loopback_open_and_closed_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let mut r = DiagnoseRequest::new("127.0.0.1", Some(port), Proto::Tcp);
        r.local_state = false;
        r.pmtu = false;
        let rep = run(&r, &|_| {}).expect("runs");
        assert!(rep.causes.is_empty(), "{:?}", rep.causes);
        assert!(rep.layers.iter().any(|l| l.probe == "transport" && l.status == LayerStatus::Ok), "{:?}", rep.layers);
        drop(l);
        let rep = run(&r, &|_| {}).expect("runs");
        assert_eq!(rep.causes.first().map(|c| c.rule.as_str()), Some("DIAG-TCP-001"), "{:?}", rep.causes);
        assert!(rep.verdict.contains("DIAG-TCP-001"));
    }

    fn router_with(
        rules: Vec<(&str, Vec<netsleuth_model::firewall::Match>, u64)>,
        policy_drop: bool,
    ) -> netsleuth_model::host::Host {
        use netsleuth_model::firewall::{
            Chain, Counters, FirewallRule, FirewallSource, FirewallTable, Hook, Ruleset, Verdict,
        };
        use netsleuth_model::Location;
        let rules = rules
            .into_iter()
            .map(|(text, matches, packets)| FirewallRule {
                matches,
                verdict: Some(Verdict::Drop),
                counters: Some(Counters { packets, bytes: packets * 100 }),
                comment: None,
                text: text.into(),
                origin: Location::Derived,
            })
            .collect();
        let chain = Chain {
            name: "forward".into(),
            hook: Some(Hook::Forward),
            chain_type: Some("filter".into()),
            priority: Some(0),
            policy: Some(if policy_drop { Verdict::Drop } else { Verdict::Accept }),
            rules,
            counters: None,
            origin: Location::Derived,
        };
        netsleuth_model::host::Host {
            nftables: Some(Ruleset {
                source: FirewallSource::Nftables,
                tables: vec![FirewallTable { family: "inet".into(), name: "f".into(), chains: vec![chain] }],
                origin: Location::Derived,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn router_firewall_drops_are_named_by_kind() {
        use netsleuth_model::firewall::{Match, PortRange};
        let dport = |p: u16| vec![Match::DstPort { negated: false, ports: vec![PortRange::single(p)] }];
        let h = router_with(
            vec![
                ("icmp type destination-unreachable icmp code frag-needed counter drop", vec![], 0),
                ("ct state new ct count over 32 counter drop", vec![], 7),
                ("udp dport 53 counter drop", dport(53), 4),
                ("tcp dport 443 counter drop", dport(443), 9),
                ("tcp dport 5000 counter drop", dport(5000), 0),
            ],
            false,
        );
        let kinds = |port, by_name| {
            forward_rule_drops(&h, port, by_name)
                .into_iter()
                .map(|d| match d.kind {
                    FwdDrop::FragNeeded => "mtu".to_string(),
                    FwdDrop::CtCount => "ct".to_string(),
                    FwdDrop::Port(p) => format!("port {p}"),
                })
                .collect::<Vec<_>>()
        };
        // A rule that never dropped (port 5000, 0 packets) is not evidence; a filtered
        // fragmentation-needed is, counters or not.
        assert_eq!(kinds(Some(5000), false), ["mtu", "ct"]);
        assert_eq!(kinds(Some(443), false), ["mtu", "ct", "port 443"]);
        assert_eq!(kinds(Some(8080), true), ["mtu", "ct", "port 53"]);
        assert!(forward_policy_drops(&h, None).is_empty(), "policy accept");
        let closed = router_with(vec![], true);
        assert_eq!(forward_policy_drops(&closed, None).len(), 1);
        assert!(forward_rule_drops(&closed, Some(80), false).is_empty());
    }

    #[test]
    fn private_addresses_and_router_shape() {
        assert!(is_private("10.10.1.10".parse().expect("ip")));
        assert!(is_private("100.64.0.1".parse().expect("ip")));
        assert!(is_private("fd00::1".parse().expect("ip")));
        assert!(!is_private("203.0.113.5".parse().expect("ip")));
        assert!(!forwards(None));
        assert!(!forwards(Some(&netsleuth_model::host::Host::default())));
    }

    #[test]
    fn follow_the_hop_names_the_same_command() {
        let req = DiagnoseRequest::new("10.20.1.10", Some(5000), Proto::Tcp);
        let run = Run {
            req: &req,
            started: Instant::now(),
            deadline: Instant::now(),
            progress: &|_| {},
            layers: Vec::new(),
            causes: Vec::new(),
            details: BTreeMap::new(),
            subject: String::new(),
            context: Vec::new(),
            dns_sample: None,
        };
        let s = run.follow_hop("10.244.1.1");
        assert!(s.contains("run `netsleuth diagnose --to 10.20.1.10:5000` on 10.244.1.1"), "{s}");
        let req = DiagnoseRequest::new("api.example", Some(80), Proto::Http);
        let run = Run { req: &req, ..run };
        assert!(run.follow_hop("r").contains("--to api.example:80 --proto http` on r"));
    }
}

#[cfg(test)]
mod forward_policy_tests {
    use netsleuth_model::firewall::{FirewallRule, Match, Verdict};
    use netsleuth_model::Location;

    use super::may_accept_new;

    fn rule(matches: Vec<Match>, verdict: Verdict) -> FirewallRule {
        FirewallRule {
            matches,
            verdict: Some(verdict),
            counters: None,
            comment: None,
            text: String::new(),
            origin: Location::Derived,
        }
    }

    #[test]
    fn only_rules_that_can_accept_a_new_packet_to_the_target_count() {
        let target = Some("10.20.1.10".parse().unwrap());
        let established = rule(
            vec![Match::CtState { negated: false, states: vec!["established".into(), "related".into()] }],
            Verdict::Accept,
        );
        assert!(!may_accept_new(&established, target), "replies only");
        let to_pods = rule(
            vec![Match::DstAddr { negated: false, nets: vec!["10.244.1.0/24".parse().unwrap()] }],
            Verdict::Accept,
        );
        assert!(!may_accept_new(&to_pods, target), "another destination");
        let to_site =
            rule(vec![Match::DstAddr { negated: false, nets: vec!["10.20.0.0/16".parse().unwrap()] }], Verdict::Accept);
        assert!(may_accept_new(&to_site, target));
        let from_lan = rule(vec![Match::InInterface { negated: false, name: "lan0".into() }], Verdict::Accept);
        assert!(may_accept_new(&from_lan, target), "a hardened router accepting its clients is healthy");
        let jump = rule(vec![], Verdict::Jump("DOCKER-USER".into()));
        assert!(may_accept_new(&jump, target), "a jump may accept further down");
        let drop = rule(vec![], Verdict::Drop);
        assert!(!may_accept_new(&drop, target));
        let not_new = rule(vec![Match::CtState { negated: true, states: vec!["new".into()] }], Verdict::Accept);
        assert!(!may_accept_new(&not_new, target));
    }
}
