//! DNS in the lab: real `dnsmasq` resolvers (records, local zones, forward zones), per-host
//! resolv.conf files, a tiny glibc-like resolver client and a delaying UDP proxy for faults.
//!
//! /etc/resolv.conf is global to the machine, so each client host gets its own file in the
//! lab's work dir (`dns/<host>.resolv.conf`); the client (`netsleuth-lab-echo resolve`) reads
//! it and expands the search list the way glibc does (ndots, search order, timeout,
//! attempts). Records live in an `--addn-hosts` file because dnsmasq re-reads those on
//! SIGHUP: that is how `dns-stale` changes an answer without restarting the resolver.
//! dnsmasq has no delay option, so every resolver host also runs `netsleuth-lab-echo
//! dns-delay` on port [`DELAY_PORT`]: `dns-slow` redirects port 53 to it with nftables.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cmd::{self, Cmd};
use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::procs::ProcRef;
use crate::scenario::{self, Scenario, Service};
use crate::services::Started;
use crate::state::{LabState, ProcState, StateDir};

/// The UDP port of the delaying proxy on every resolver host.
pub const DELAY_PORT: u16 = 5300;
/// The `what` of the dnsmasq process in the state (faults find it by this).
pub(crate) const DNSMASQ_WHAT: &str = "dnsmasq";
/// How long dnsmasq and the proxy may take to come up.
const START_WAIT: Duration = Duration::from_secs(10);
/// Most search domains and records a scenario may give (glibc used to stop at 6 domains).
const MAX_SEARCH: usize = 8;
const MAX_RECORDS: usize = 256;

// ---------------------------------------------------------------------------------------
// Scenario parts

/// A dnsmasq resolver on a host (`services: - dnsmasq: {...}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsmasqSpec {
    /// The address it listens on (port 53, UDP and TCP); an address of the host.
    pub listen: IpAddr,
    /// `name → address` (A records, exact names).
    #[serde(default)]
    pub records: BTreeMap<String, IpAddr>,
    /// Zones answered only from `records` (NXDOMAIN for anything else), like CoreDNS's
    /// `cluster.local`.
    #[serde(default)]
    pub local: Vec<String>,
    /// Forward zones: `zone → upstream server address` (`--server=/zone/ip`).
    #[serde(default)]
    pub forward: BTreeMap<String, IpAddr>,
}

/// The resolver configuration of a client host, written as its own resolv.conf file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvSpec {
    pub nameservers: Vec<IpAddr>,
    #[serde(default)]
    pub search: Vec<String>,
    /// glibc's default is 1, Kubernetes pods get 5.
    #[serde(default = "default_ndots")]
    pub ndots: u8,
    /// Seconds per try (glibc default 5).
    #[serde(default = "default_timeout")]
    pub timeout: u8,
    /// Tries per server (glibc default 2).
    #[serde(default = "default_attempts")]
    pub attempts: u8,
}

fn default_ndots() -> u8 {
    1
}
fn default_timeout() -> u8 {
    5
}
fn default_attempts() -> u8 {
    2
}

/// Whether `name` is a plain DNS name (letters, digits, '-', dots between labels).
pub fn valid_dns_name(name: &str) -> bool {
    let n = name.strip_suffix('.').unwrap_or(name);
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Problems of a dnsmasq service, in words (the scenario check adds file and line).
pub(crate) fn check_dnsmasq(d: &DnsmasqSpec) -> Vec<String> {
    let mut out = Vec::new();
    let mut ips: Vec<IpAddr> = vec![d.listen];
    if !d.listen.is_ipv4() {
        out.push(format!("dnsmasq: listen {}: only IPv4 is supported", d.listen));
    }
    if d.records.len() > MAX_RECORDS {
        out.push(format!("dnsmasq: at most {MAX_RECORDS} records"));
    }
    for (name, ip) in &d.records {
        if !valid_dns_name(name) {
            out.push(format!("dnsmasq: record {name:?} is not a DNS name"));
        }
        ips.push(*ip);
    }
    for z in d.local.iter().chain(d.forward.keys()) {
        if !valid_dns_name(z) {
            out.push(format!("dnsmasq: zone {z:?} is not a DNS name"));
        }
    }
    ips.extend(d.forward.values());
    for ip in ips {
        if !scenario::ip_in_lab_ranges(ip) {
            out.push(format!("dnsmasq: address {ip} is outside the lab ranges"));
        }
    }
    out
}

/// Problems of a resolv service, in words.
pub(crate) fn check_resolv(r: &ResolvSpec) -> Vec<String> {
    let mut out = Vec::new();
    if r.nameservers.is_empty() || r.nameservers.len() > 3 {
        out.push("resolv: 1 to 3 nameservers (as glibc)".to_string());
    }
    for ip in &r.nameservers {
        if !scenario::ip_in_lab_ranges(*ip) || !ip.is_ipv4() {
            out.push(format!("resolv: nameserver {ip} is not an IPv4 address in the lab ranges"));
        }
    }
    if r.search.len() > MAX_SEARCH {
        out.push(format!("resolv: at most {MAX_SEARCH} search domains"));
    }
    for s in &r.search {
        if !valid_dns_name(s) {
            out.push(format!("resolv: search domain {s:?} is not a DNS name"));
        }
    }
    if r.ndots > 15 {
        out.push(format!("resolv: ndots {} is above 15 (glibc's limit)", r.ndots));
    }
    if !(1..=30).contains(&r.timeout) || !(1..=5).contains(&r.attempts) {
        out.push("resolv: timeout 1..30 s, attempts 1..5".to_string());
    }
    out
}

// ---------------------------------------------------------------------------------------
// Files of the lab run

/// The DNS folder of a lab run.
fn dns_dir(work_dir: &Path) -> PathBuf {
    work_dir.join("dns")
}

/// The resolv.conf file of a client host.
pub fn resolv_path(work_dir: &Path, host: &str) -> PathBuf {
    dns_dir(work_dir).join(format!("{host}.resolv.conf"))
}

/// The folder of a resolver host's dnsmasq (hosts file, log, pid file, delay setting).
pub(crate) fn resolver_dir(work_dir: &Path, host: &str) -> PathBuf {
    dns_dir(work_dir).join(host)
}

/// The query log of a resolver host's dnsmasq.
pub fn query_log_path(work_dir: &Path, host: &str) -> PathBuf {
    resolver_dir(work_dir, host).join("queries.log")
}

pub(crate) fn hosts_path(work_dir: &Path, host: &str) -> PathBuf {
    resolver_dir(work_dir, host).join("hosts")
}

pub(crate) fn delay_path(work_dir: &Path, host: &str) -> PathBuf {
    resolver_dir(work_dir, host).join("delay_ms")
}

/// resolv.conf text of a spec (search list, ndots and the rest as glibc reads them).
pub fn resolv_text(r: &ResolvSpec) -> String {
    let mut t = String::new();
    for ns in &r.nameservers {
        t.push_str(&format!("nameserver {ns}\n"));
    }
    if !r.search.is_empty() {
        t.push_str(&format!("search {}\n", r.search.join(" ")));
    }
    t.push_str(&format!("options ndots:{} timeout:{} attempts:{}\n", r.ndots, r.timeout, r.attempts));
    t
}

/// The addn-hosts text of a record map (one `ADDRESS NAME` per line).
pub(crate) fn hosts_text(records: &BTreeMap<String, IpAddr>) -> String {
    records.iter().map(|(n, ip)| format!("{ip} {n}\n")).collect()
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| LabError::io(format!("cannot create {}", parent.display()), e))?;
    }
    fs::write(path, text).map_err(|e| LabError::io(format!("cannot write {}", path.display()), e))
}

// ---------------------------------------------------------------------------------------
// Starting

fn spawn(ns: &str, args: &[String], log: &Path) -> Result<Child> {
    let out = File::create(log).map_err(|e| LabError::io(format!("cannot create {}", log.display()), e))?;
    let err = out.try_clone().map_err(|e| LabError::io(format!("cannot open {}", log.display()), e))?;
    let mut c = Command::new("ip");
    // Own process group: a Ctrl-C at the terminal must not kill it behind teardown's back.
    c.args(["netns", "exec", ns]).args(args).stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
    c.spawn().map_err(|source| LabError::Spawn { cmd: format!("ip netns exec {ns} {}", args.join(" ")), source })
}

/// Records a started child; kills it when it is already gone or cannot be recorded.
fn started(mut child: Child, host: &str, what: &str) -> Result<Started> {
    match ProcRef::of(child.id()) {
        Some(process) => Ok(Started { child, record: ProcState { host: host.into(), what: what.into(), process } }),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(LabError::Lab(format!("{what} on {host} exited right after it started")))
        }
    }
}

/// Waits (bounded) until `addr` listens for UDP in `ns`; fails early when the child exits.
fn wait_udp(child: &mut Child, ns: &str, addr: SocketAddr, what: &str, log: &Path) -> Result<()> {
    let deadline = Instant::now() + START_WAIT;
    let want = addr.to_string();
    loop {
        let up = Cmd::in_netns(ns, ["ss", "-H", "-l", "-n", "-u"])
            .timeout(Duration::from_secs(5))
            .run()
            .is_ok_and(|out| out.lines().any(|l| l.split_whitespace().nth(3) == Some(want.as_str())));
        if up {
            return Ok(());
        }
        let tail = || fs::read_to_string(log).unwrap_or_default().lines().rev().take(3).collect::<Vec<_>>().join(" | ");
        if let Ok(Some(status)) = child.try_wait() {
            return Err(LabError::Lab(format!("{what} exited ({status}) while starting: {}", tail())));
        }
        if Instant::now() >= deadline {
            return Err(LabError::Lab(format!("{what} did not listen on {addr} within 10 s: {}", tail())));
        }
        thread::sleep(Duration::from_millis(25));
    }
}

/// dnsmasq's command line for a resolver host.
fn dnsmasq_args(work_dir: &Path, host: &str, d: &DnsmasqSpec) -> Vec<String> {
    let dir = resolver_dir(work_dir, host);
    let mut a: Vec<String> = [
        "dnsmasq",
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--conf-file=/dev/null",
        "--bind-interfaces",
        "--port=53",
        // No cache: every lookup reaches the log (ndots-amplification counts them) and a
        // changed record is answered at once.
        "--cache-size=0",
        "--log-queries",
        // It stays root: the log and hosts files live in the lab's root-only work dir.
        "--user=root",
        "--group=root",
    ]
    .map(str::to_string)
    .to_vec();
    a.push(format!("--pid-file={}", dir.join("dnsmasq.pid").display()));
    a.push(format!("--listen-address={}", d.listen));
    a.push(format!("--addn-hosts={}", hosts_path(work_dir, host).display()));
    a.push(format!("--log-facility={}", query_log_path(work_dir, host).display()));
    for z in &d.local {
        a.push(format!("--local=/{}/", z.trim_end_matches('.')));
    }
    for (z, ip) in &d.forward {
        a.push(format!("--server=/{}/{ip}", z.trim_end_matches('.')));
    }
    a
}

/// Writes every resolv.conf file and starts every dnsmasq (with its delay proxy), recording
/// each process in the state at once.
pub(crate) fn start_services(
    state: &mut LabState,
    scenario: &Scenario,
    dir: &StateDir,
    children: &mut Vec<Child>,
    cancel: Option<&AtomicBool>,
) -> Result<()> {
    let work = state.work_dir.clone();
    for (host, h) in &scenario.hosts {
        for s in &h.value.services {
            if let Service::Resolv(r) = &s.value {
                write_file(&resolv_path(&work, host), &resolv_text(r))?;
            }
        }
    }
    for (host, h) in &scenario.hosts {
        for s in &h.value.services {
            let Service::Dnsmasq(d) = &s.value else { continue };
            if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
                return Err(LabError::Interrupted);
            }
            if !cmd::have_program("dnsmasq") {
                return Err(LabError::MissingTools(
                    "dnsmasq (Debian: apt-get install --no-install-recommends dnsmasq)".into(),
                ));
            }
            let ns =
                state.netns(host).ok_or_else(|| LabError::Lab(format!("no namespace for host {host}")))?.to_string();
            let rdir = resolver_dir(&work, host);
            write_file(&hosts_path(&work, host), &hosts_text(&d.records))?;
            write_file(&delay_path(&work, host), "0\n")?;
            let log = rdir.join("dnsmasq.out");
            let child = spawn(&ns, &dnsmasq_args(&work, host, d), &log)?;
            let mut st = started(child, host, DNSMASQ_WHAT)?;
            state.processes.push(st.record.clone());
            dir.save(state)?;
            let ready = wait_udp(&mut st.child, &ns, SocketAddr::new(d.listen, 53), "dnsmasq", &log);
            children.push(st.child);
            ready?;
            // The delaying proxy (idle until dns-slow redirects port 53 to it).
            let mut args = state.echo_command.clone();
            if args.is_empty() {
                return Err(LabError::Lab("no echo program configured".into()));
            }
            let listen = SocketAddr::new(d.listen, DELAY_PORT);
            args.extend([
                "dns-delay".to_string(),
                "--listen".into(),
                listen.to_string(),
                "--upstream".into(),
                SocketAddr::new(d.listen, 53).to_string(),
                "--delay-file".into(),
                delay_path(&work, host).display().to_string(),
            ]);
            let plog = rdir.join("dns-delay.out");
            let child = spawn(&ns, &args, &plog)?;
            let mut st = started(child, host, "dns-delay")?;
            state.processes.push(st.record.clone());
            dir.save(state)?;
            let ready = wait_udp(&mut st.child, &ns, listen, "dns-delay", &plog);
            children.push(st.child);
            ready?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Use from tests and tools

/// What one lookup by the resolver client did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupResult {
    pub ok: bool,
    /// The name asked for.
    pub name: String,
    /// The fully qualified name that answered.
    #[serde(default)]
    pub answered: Option<String>,
    #[serde(default)]
    pub addresses: Vec<Ipv4Addr>,
    /// Every name queried, in order (search-list expansion).
    #[serde(default)]
    pub tried: Vec<String>,
    /// Queries sent (retries included).
    pub queries: u32,
    pub elapsed_ms: u64,
    #[serde(default)]
    pub error: Option<String>,
}

/// Looks `name` up from `host` with the host's resolv.conf (the lab's own resolver client,
/// bounded by the file's timeout × attempts and by `limit`).
pub fn lookup(lab: &Lab, host: &str, name: &str, limit: Duration) -> Result<LookupResult> {
    let conf = resolv_path(&lab.state().work_dir, host);
    if !conf.exists() {
        return Err(LabError::Lab(format!("{host} has no resolv service (no {})", conf.display())));
    }
    let mut args: Vec<String> = lab.echo_command().to_vec();
    let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
    args.extend([
        "resolve".into(),
        name.into(),
        "--conf".into(),
        conf.display().to_string(),
        "--deadline-ms".into(),
        ms.to_string(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = lab.exec(host, &refs, limit + Duration::from_secs(5))?;
    serde_json::from_str(out.stdout.trim())
        .map_err(|e| LabError::Lab(format!("resolve on {host}: bad output ({e}): {}", out.stderr.trim())))
}

/// How many queries (`query[...]` lines) from `client` the resolver on `host` has logged.
pub fn logged_queries(lab: &Lab, host: &str, client: IpAddr) -> usize {
    let text = fs::read_to_string(query_log_path(&lab.state().work_dir, host)).unwrap_or_default();
    let from = format!(" from {client}");
    text.lines().filter(|l| l.contains(": query[") && l.ends_with(&from)).count()
}

// ---------------------------------------------------------------------------------------
// DNS messages (just enough for A queries)

/// An A query for `name` with `id` (recursion desired).
pub(crate) fn build_query(id: u16, name: &str) -> Option<Vec<u8>> {
    let mut m = Vec::with_capacity(32 + name.len());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        let len = u8::try_from(label.len()).ok().filter(|l| (1..=63).contains(l))?;
        m.push(len);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    Some(m)
}

/// A parsed answer: id, rcode and the A records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) id: u16,
    pub(crate) rcode: u8,
    pub(crate) addresses: Vec<Ipv4Addr>,
}

fn u16_at(m: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*m.get(i)?, *m.get(i.checked_add(1)?)?]))
}

/// Skips a (possibly compressed) name starting at `i`; returns the index after it.
fn skip_name(m: &[u8], mut i: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *m.get(i)?;
        if len == 0 {
            return i.checked_add(1);
        }
        if len & 0xC0 == 0xC0 {
            return i.checked_add(2);
        }
        i = i.checked_add(usize::from(len) + 1)?;
    }
    None
}

/// Parses a response; None when it is not a well-formed response.
pub(crate) fn parse_answer(m: &[u8]) -> Option<Answer> {
    let id = u16_at(m, 0)?;
    let flags = u16_at(m, 2)?;
    if flags & 0x8000 == 0 {
        return None;
    }
    let rcode = u8::try_from(flags & 0x000F).ok()?;
    let qd = u16_at(m, 4)?;
    let an = u16_at(m, 6)?;
    let mut i = 12usize;
    for _ in 0..qd {
        i = skip_name(m, i)?.checked_add(4)?;
    }
    let mut addresses = Vec::new();
    for _ in 0..an {
        i = skip_name(m, i)?;
        let ty = u16_at(m, i)?;
        let len = usize::from(u16_at(m, i.checked_add(8)?)?);
        let data = i.checked_add(10)?;
        let rdata = m.get(data..data.checked_add(len)?)?;
        if ty == 1 && len == 4 {
            addresses.push(Ipv4Addr::new(*rdata.first()?, *rdata.get(1)?, *rdata.get(2)?, *rdata.get(3)?));
        }
        i = data.checked_add(len)?;
    }
    Some(Answer { id, rcode, addresses })
}

// ---------------------------------------------------------------------------------------
// The resolver client (`netsleuth-lab-echo resolve NAME --conf FILE [--deadline-ms N]`)

/// resolv.conf as glibc reads it (the parts the client uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvConf {
    pub(crate) nameservers: Vec<IpAddr>,
    pub(crate) search: Vec<String>,
    pub(crate) ndots: usize,
    pub(crate) timeout: Duration,
    pub(crate) attempts: u32,
}

/// Parses resolv.conf text; unknown lines and options are ignored, as glibc does. Later
/// `search`/`domain` lines replace earlier ones.
pub(crate) fn parse_resolv(text: &str) -> ResolvConf {
    let mut c = ResolvConf {
        nameservers: Vec::new(),
        search: Vec::new(),
        ndots: 1,
        timeout: Duration::from_secs(5),
        attempts: 2,
    };
    for line in text.lines() {
        let mut it = line.split_whitespace();
        match it.next() {
            Some("nameserver") => {
                if let Some(ip) = it.next().and_then(|s| s.parse().ok()) {
                    if c.nameservers.len() < 3 {
                        c.nameservers.push(ip);
                    }
                }
            }
            Some("search" | "domain") => c.search = it.take(MAX_SEARCH).map(str::to_string).collect(),
            Some("options") => {
                for o in it {
                    let (k, v) = o.split_once(':').unwrap_or((o, ""));
                    let n = v.parse::<u64>().ok();
                    match (k, n) {
                        ("ndots", Some(n)) => c.ndots = usize::try_from(n.min(15)).unwrap_or(15),
                        ("timeout", Some(n)) => c.timeout = Duration::from_secs(n.clamp(1, 30)),
                        ("attempts", Some(n)) => c.attempts = u32::try_from(n.clamp(1, 5)).unwrap_or(5),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    c
}

/// The names glibc tries for `name`, in order: absolute first when it has at least `ndots`
/// dots (or ends with '.'), otherwise every search domain first and the bare name last.
pub(crate) fn candidates(name: &str, conf: &ResolvConf) -> Vec<String> {
    if let Some(abs) = name.strip_suffix('.') {
        return vec![abs.to_string()];
    }
    let searched: Vec<String> = conf.search.iter().map(|d| format!("{name}.{}", d.trim_end_matches('.'))).collect();
    let dots = name.matches('.').count();
    let mut out = Vec::new();
    if dots >= conf.ndots {
        out.push(name.to_string());
        out.extend(searched);
    } else {
        out.extend(searched);
        out.push(name.to_string());
    }
    out
}

enum Outcome {
    Found(Vec<Ipv4Addr>),
    /// NXDOMAIN, NODATA, SERVFAIL, REFUSED: glibc goes on with the next name.
    NoAnswer,
    /// No server answered in time: glibc gives up the whole search (TRY_AGAIN).
    TimedOut,
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    // A fixed id is only worse at matching answers; not worth failing a lookup for.
    let _ = getrandom::fill(&mut b);
    u16::from_be_bytes(b)
}

/// Asks every server `attempts` times (glibc order) for one name.
fn query_one(name: &str, conf: &ResolvConf, deadline: Instant, queries: &mut u32) -> io::Result<Outcome> {
    let id = random_id();
    let msg = build_query(id, name).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad name"))?;
    let sock = UdpSocket::bind(("0.0.0.0", 0))?;
    for _ in 0..conf.attempts {
        for ns in &conf.nameservers {
            let now = Instant::now();
            if now >= deadline {
                return Ok(Outcome::TimedOut);
            }
            *queries = queries.saturating_add(1);
            // The same socket for every try, as glibc: a late answer to a try counts.
            sock.send_to(&msg, SocketAddr::new(*ns, 53))?;
            let until = (now + conf.timeout).min(deadline);
            let mut buf = [0u8; 1500];
            loop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                sock.set_read_timeout(Some(left))?;
                match sock.recv_from(&mut buf) {
                    Ok((n, _)) => {
                        let Some(a) = buf.get(..n).and_then(parse_answer) else { continue };
                        if a.id != id {
                            continue;
                        }
                        return Ok(match (a.rcode, a.addresses.is_empty()) {
                            (0, false) => Outcome::Found(a.addresses),
                            _ => Outcome::NoAnswer,
                        });
                    }
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => break,
                    // ICMP port unreachable from a down server: next server or try.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(Outcome::TimedOut)
}

/// A lookup as glibc's res_search does it.
pub(crate) fn resolve(name: &str, conf: &ResolvConf, limit: Duration) -> LookupResult {
    let start = Instant::now();
    let deadline = start + limit;
    let mut r = LookupResult { name: name.to_string(), ..LookupResult::default() };
    if conf.nameservers.is_empty() {
        r.error = Some("no nameserver in the resolv.conf".into());
        return r;
    }
    for cand in candidates(name, conf) {
        if !valid_dns_name(&cand) {
            continue;
        }
        r.tried.push(cand.clone());
        match query_one(&cand, conf, deadline, &mut r.queries) {
            Ok(Outcome::Found(a)) => {
                r.ok = true;
                r.answered = Some(cand);
                r.addresses = a;
                break;
            }
            Ok(Outcome::NoAnswer) => {}
            Ok(Outcome::TimedOut) => {
                r.error = Some(format!("no answer for {cand} from {:?} (timed out)", conf.nameservers));
                break;
            }
            Err(e) => {
                r.error = Some(format!("{cand}: {e}"));
                break;
            }
        }
    }
    if !r.ok && r.error.is_none() {
        r.error = Some(format!("{name}: not found (NXDOMAIN/no data for every search name)"));
    }
    r.elapsed_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    r
}

/// `--key value` flags of the helper commands.
fn flag<'a>(args: &'a [String], key: &str) -> Option<&'a str> {
    args.iter().position(|a| a == key).and_then(|i| args.get(i + 1)).map(String::as_str)
}

/// Entry of the DNS helper commands of `netsleuth-lab-echo`: `resolve` and `dns-delay`.
/// None when `cmd` is not one of them.
pub fn tool_main(cmd: &str, args: &[String]) -> Option<i32> {
    let mut stderr = io::stderr().lock();
    match cmd {
        "resolve" => {
            let (Some(name), Some(conf)) = (args.first(), flag(args, "--conf")) else {
                let _ = writeln!(stderr, "usage: resolve NAME --conf FILE [--deadline-ms N]");
                return Some(2);
            };
            let text = match fs::read_to_string(conf) {
                Ok(t) => t,
                Err(e) => {
                    let _ = writeln!(stderr, "resolve: cannot read {conf}: {e}");
                    return Some(2);
                }
            };
            let ms = flag(args, "--deadline-ms").and_then(|v| v.parse().ok()).unwrap_or(20_000u64).min(120_000);
            let r = resolve(name, &parse_resolv(&text), Duration::from_millis(ms));
            let json = serde_json::to_string(&r).unwrap_or_default();
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "{json}");
            Some(if r.ok { 0 } else { 1 })
        }
        "dns-delay" => {
            let parsed = (
                flag(args, "--listen").and_then(|v| v.parse::<SocketAddr>().ok()),
                flag(args, "--upstream").and_then(|v| v.parse::<SocketAddr>().ok()),
                flag(args, "--delay-file"),
            );
            let (Some(listen), Some(upstream), Some(file)) = parsed else {
                let _ = writeln!(stderr, "usage: dns-delay --listen ADDR:PORT --upstream ADDR:PORT --delay-file FILE");
                return Some(2);
            };
            drop(stderr);
            match delay_proxy(listen, upstream, Path::new(file)) {
                Ok(()) => Some(0),
                Err(e) => {
                    let _ = writeln!(io::stderr(), "dns-delay: {e}");
                    Some(1)
                }
            }
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// The delaying proxy

/// Most queries in flight and answers waiting (older ones are dropped: a bounded queue).
const PROXY_CAPACITY: usize = 512;
/// A query upstream never answered is forgotten after this.
const PROXY_FORGET: Duration = Duration::from_secs(10);

/// Replaces the id of a message; returns the old one (None when it is shorter than 2 bytes).
fn set_id(msg: &mut [u8], id: u16) -> Option<[u8; 2]> {
    let head = msg.get_mut(..2)?;
    let old = [*head.first()?, *head.get(1)?];
    head.copy_from_slice(&id.to_be_bytes());
    Some(old)
}

/// Forwards DNS over UDP from `listen` to `upstream` and holds every answer back for the
/// number of milliseconds in `delay_file` (read per query; missing or bad = 0). Runs until
/// killed, like the echo service.
fn delay_proxy(listen: SocketAddr, upstream: SocketAddr, delay_file: &Path) -> io::Result<()> {
    let front = UdpSocket::bind(listen)?;
    let back = UdpSocket::bind(SocketAddr::new(listen.ip(), 0))?;
    back.connect(upstream)?;
    front.set_nonblocking(true)?;
    back.set_nonblocking(true)?;
    // Our id → (client, client's id, delay, when sent).
    let mut pending: BTreeMap<u16, (SocketAddr, [u8; 2], Duration, Instant)> = BTreeMap::new();
    let mut due: VecDeque<(Instant, SocketAddr, Vec<u8>)> = VecDeque::new();
    let mut next_id: u16 = 0;
    let mut buf = [0u8; 4096];
    loop {
        let mut busy = false;
        match front.recv_from(&mut buf) {
            Ok((n, client)) if n >= 12 => {
                busy = true;
                let delay = fs::read_to_string(delay_file)
                    .ok()
                    .and_then(|t| t.trim().parse::<u64>().ok())
                    .map_or(Duration::ZERO, |ms| Duration::from_millis(ms.min(60_000)));
                next_id = next_id.wrapping_add(1);
                if pending.len() >= PROXY_CAPACITY {
                    pending.pop_first();
                }
                if let Some(msg) = buf.get_mut(..n) {
                    let Some(orig) = set_id(msg, next_id) else { continue };
                    pending.insert(next_id, (client, orig, delay, Instant::now()));
                    // A refused send (dnsmasq gone, an earlier ICMP) only loses this query.
                    let _ = back.send(msg);
                }
            }
            Ok(_) => busy = true,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::ConnectionRefused) => {}
            Err(e) => return Err(e),
        }
        match back.recv(&mut buf) {
            Ok(n) if n >= 12 => {
                busy = true;
                if let Some(msg) = buf.get_mut(..n) {
                    let Some(id) = u16_at(msg, 0) else { continue };
                    if let Some((client, orig, delay, sent)) = pending.remove(&id) {
                        let _ = set_id(msg, u16::from_be_bytes(orig));
                        if due.len() >= PROXY_CAPACITY {
                            due.pop_front();
                        }
                        due.push_back((sent + delay, client, msg.to_vec()));
                    }
                }
            }
            Ok(_) => busy = true,
            // ECONNREFUSED: upstream (dnsmasq) is not listening; the client times out.
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::ConnectionRefused) => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        // Delays are the same for queries close in time: sending those due in order is enough.
        while due.front().is_some_and(|(t, _, _)| *t <= now) {
            if let Some((_, client, msg)) = due.pop_front() {
                let _ = front.send_to(&msg, client);
            }
        }
        pending.retain(|_, (_, _, _, sent)| now.duration_since(*sent) < PROXY_FORGET);
        if !busy {
            thread::sleep(Duration::from_millis(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_list_expansion_follows_glibc() {
        let conf = parse_resolv(
            "nameserver 10.244.1.53\nsearch default.svc.cluster.local svc.cluster.local cluster.local\n\
             options ndots:5 timeout:2 attempts:3 rotate\nbogus line\n",
        );
        assert_eq!(conf.nameservers, vec!["10.244.1.53".parse::<IpAddr>().expect("ip")]);
        assert_eq!((conf.ndots, conf.timeout, conf.attempts), (5, Duration::from_secs(2), 3));
        let c = candidates("db.corp.example", &conf);
        assert_eq!(
            c,
            [
                "db.corp.example.default.svc.cluster.local",
                "db.corp.example.svc.cluster.local",
                "db.corp.example.cluster.local",
                "db.corp.example"
            ]
        );
        let conf2 = ResolvConf { ndots: 2, ..conf.clone() };
        assert_eq!(candidates("db.corp.example", &conf2).first().map(String::as_str), Some("db.corp.example"));
        assert_eq!(candidates("api", &conf2).first().map(String::as_str), Some("api.default.svc.cluster.local"));
        assert_eq!(candidates("x.example.", &conf), ["x.example"]);
    }

    #[test]
    fn resolv_text_round_trips() {
        let spec = ResolvSpec {
            nameservers: vec!["10.244.1.53".parse().expect("ip")],
            search: vec!["a.b".into(), "b".into()],
            ndots: 2,
            timeout: 1,
            attempts: 2,
        };
        let c = parse_resolv(&resolv_text(&spec));
        assert_eq!(c.search, ["a.b", "b"]);
        assert_eq!((c.ndots, c.timeout, c.attempts), (2, Duration::from_secs(1), 2));
        assert!(check_resolv(&spec).is_empty());
        assert_eq!(check_resolv(&ResolvSpec { ndots: 16, ..spec }).len(), 1);
    }

    #[test]
    fn messages_build_and_parse() {
        let q = build_query(0x1234, "api.default").expect("query");
        assert_eq!(q.get(..2), Some(&[0x12, 0x34][..]));
        assert_eq!(q.len(), 12 + 1 + 3 + 1 + 7 + 1 + 4);
        assert!(build_query(1, "a..b").is_none());
        // A response: the query with QR set, one answer pointing at the question name.
        let mut r = q.clone();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 1;
        r.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 10, 244, 1, 20]);
        let a = parse_answer(&r).expect("answer");
        assert_eq!(a, Answer { id: 0x1234, rcode: 0, addresses: vec![Ipv4Addr::new(10, 244, 1, 20)] });
        // Truncated: no panic, no answer.
        for cut in 0..r.len() {
            let _ = parse_answer(r.get(..cut).unwrap_or_default());
        }
        assert!(parse_answer(r.get(..r.len() - 2).unwrap_or_default()).is_none());
        assert!(parse_answer(&q).is_none(), "a query is not an answer");
    }

    #[test]
    fn the_proxy_delays_answers_and_keeps_ids() {
        // Loopback only: a fake upstream that answers every query, the proxy in front of it.
        let upstream = UdpSocket::bind(("127.0.0.1", 0)).expect("bind");
        let up_addr = upstream.local_addr().expect("addr");
        upstream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let probe = UdpSocket::bind(("127.0.0.1", 0)).expect("bind");
        let listen = probe.local_addr().expect("addr");
        drop(probe);
        let dir = std::env::temp_dir().join(format!("nsl-dns-proxy-test-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("delay_ms");
        fs::write(&file, "250\n").expect("write");
        let f2 = file.clone();
        // The proxy runs until the test process ends (it is a daemon loop by design).
        thread::spawn(move || delay_proxy(listen, up_addr, &f2));
        thread::spawn(move || {
            let mut buf = [0u8; 512];
            for _ in 0..4 {
                let Ok((n, from)) = upstream.recv_from(&mut buf) else { return };
                if let Some(m) = buf.get_mut(..n) {
                    if let Some(flags) = m.get_mut(2) {
                        *flags |= 0x80;
                    }
                    let _ = upstream.send_to(m, from);
                }
            }
        });
        let client = UdpSocket::bind(("127.0.0.1", 0)).expect("bind");
        client.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
        let q = build_query(0xBEEF, "api.default").expect("query");
        let mut buf = [0u8; 512];
        let mut got = None;
        // The proxy may still be binding: a few tries (bounded).
        for _ in 0..20 {
            let start = Instant::now();
            client.send_to(&q, listen).expect("send");
            if let Ok((n, _)) = client.recv_from(&mut buf) {
                got = Some((buf.get(..n).and_then(parse_answer), start.elapsed()));
                break;
            }
        }
        let _ = fs::remove_dir_all(&dir);
        let (answer, took) = got.expect("an answer through the proxy");
        assert_eq!(answer.map(|a| a.id), Some(0xBEEF), "the client's id comes back");
        assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(2), "{took:?}");
        let mut m = vec![1, 2, 3];
        assert_eq!(set_id(&mut m, 0x0A0B), Some([1, 2]));
        assert_eq!(m, [0x0A, 0x0B, 3]);
        assert_eq!(set_id(&mut [9], 1), None);
    }

    #[test]
    fn names_and_specs_are_checked() {
        assert!(valid_dns_name("api.default.svc.cluster.local"));
        assert!(valid_dns_name("corp.example."));
        assert!(!valid_dns_name("a..b") && !valid_dns_name("") && !valid_dns_name("-x.y") && !valid_dns_name("a b"));
        let d = DnsmasqSpec {
            listen: "10.244.1.53".parse().expect("ip"),
            records: BTreeMap::from([("db.corp.example".into(), "8.8.8.8".parse().expect("ip"))]),
            local: vec!["cluster.local".into()],
            forward: BTreeMap::new(),
        };
        let errs = check_dnsmasq(&d);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("8.8.8.8"));
        assert_eq!(hosts_text(&d.records), "8.8.8.8 db.corp.example\n");
    }
}
