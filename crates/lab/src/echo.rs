//! The lab's echo service (TCP echo, UDP echo, a small HTTP server that reports the TCP MSS
//! it sees) and its client. Both run inside lab namespaces as `netsleuth-lab-echo` or as the
//! hidden `netsleuth lab echo`; the client prints one JSON line and exits 0 on success.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Most TCP/HTTP connections served at once (more are closed at once).
const MAX_CONNECTIONS: usize = 128;
/// A connection idle this long is closed.
const IDLE: Duration = Duration::from_secs(30);
/// Largest HTTP request head and body accepted.
const MAX_HEAD: usize = 16 << 10;
const MAX_BODY: usize = 1 << 20;
/// Largest payload a client sends.
const MAX_CLIENT_BYTES: usize = 64 << 20;
/// Most UDP flows `udp-flows` opens.
const MAX_FLOWS: usize = 10_000;

const USAGE: &str = "\
usage: netsleuth-lab-echo serve [--tcp PORT] [--udp PORT] [--http PORT] [--name NAME] [--lab ID]
       netsleuth-lab-echo tcp ADDR:PORT [--bytes N] [--timeout-ms MS]
       netsleuth-lab-echo udp ADDR:PORT [--bytes N] [--timeout-ms MS] [--tries N]
       netsleuth-lab-echo http ADDR:PORT [--path /info] [--timeout-ms MS]
       netsleuth-lab-echo udp-flows ADDR:PORT --count N [--timeout-ms MS]
The client commands print one JSON line and exit 0 when the exchange succeeded, 1 when it
failed, 2 on a usage error.";

/// What a client command observed (its JSON line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientResult {
    pub ok: bool,
    pub proto: String,
    pub target: String,
    /// Bytes sent (tcp, udp) or flows opened (udp-flows).
    #[serde(default)]
    pub sent: u64,
    /// Bytes echoed back intact (tcp, udp), replies (udp-flows), body bytes (http).
    #[serde(default)]
    pub received: u64,
    #[serde(default)]
    pub ms: u64,
    /// TCP MSS of the client socket (tcp) or as the server saw it (http `/info`).
    #[serde(default)]
    pub mss: Option<u32>,
    /// HTTP status code.
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

/// Runs `netsleuth-lab-echo ARGS` (without the program name); returns the exit code.
pub fn main_with_args(args: &[String]) -> i32 {
    let mut stdout = io::stdout().lock();
    let mut stderr = io::stderr().lock();
    let Some((cmd, rest)) = args.split_first() else {
        let _ = writeln!(stderr, "{USAGE}");
        return 2;
    };
    if let Some(code) = crate::dnsmasq::tool_main(cmd, rest) {
        return code;
    }
    let flags = match Flags::parse(rest) {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(stderr, "netsleuth-lab-echo: {e}\n{USAGE}");
            return 2;
        }
    };
    let result = match cmd.as_str() {
        "serve" => {
            let cfg = match serve_config(&flags) {
                Ok(c) => c,
                Err(e) => {
                    let _ = writeln!(stderr, "netsleuth-lab-echo: {e}\n{USAGE}");
                    return 2;
                }
            };
            drop(stdout);
            return match serve(&cfg) {
                Ok(()) => 0,
                Err(e) => {
                    let _ = writeln!(stderr, "netsleuth-lab-echo: {e}");
                    1
                }
            };
        }
        "tcp" | "udp" | "http" | "udp-flows" => client_from_flags(cmd, &flags),
        "-h" | "--help" | "help" => {
            let _ = writeln!(stdout, "{USAGE}");
            return 0;
        }
        other => Err(format!("unknown command {other:?}")),
    };
    match result {
        Ok(r) => {
            let _ = writeln!(stdout, "{}", serde_json::to_string(&r).unwrap_or_default());
            if r.ok {
                0
            } else {
                1
            }
        }
        Err(e) => {
            let _ = writeln!(stderr, "netsleuth-lab-echo: {e}\n{USAGE}");
            2
        }
    }
}

/// `--name value` flags and positional arguments.
struct Flags {
    positional: Vec<String>,
    named: Vec<(String, String)>,
}

impl Flags {
    fn parse(args: &[String]) -> Result<Flags, String> {
        let mut positional = Vec::new();
        let mut named = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                named.push((name.to_string(), value.clone()));
            } else {
                positional.push(a.clone());
            }
        }
        Ok(Flags { positional, named })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.named.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{name} {v:?}: not a number in range")),
        }
    }

    fn check_known(&self, known: &[&str]) -> Result<(), String> {
        match self.named.iter().find(|(n, _)| !known.contains(&n.as_str())) {
            Some((n, _)) => Err(format!("unknown flag --{n}")),
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Service

/// What `serve` listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    pub tcp: Option<u16>,
    pub udp: Option<u16>,
    pub http: Option<u16>,
    /// Reported by HTTP (the host name in the lab).
    pub name: String,
    pub bind: IpAddr,
}

fn serve_config(f: &Flags) -> Result<ServeConfig, String> {
    f.check_known(&["tcp", "udp", "http", "name", "lab", "bind"])?;
    let port = |n: &str| -> Result<Option<u16>, String> {
        f.get(n).map(|v| v.parse::<u16>().map_err(|_| format!("--{n} {v:?}: not a port"))).transpose()
    };
    let cfg = ServeConfig {
        tcp: port("tcp")?,
        udp: port("udp")?,
        http: port("http")?,
        name: f.get("name").unwrap_or("echo").to_string(),
        bind: match f.get("bind") {
            Some(b) => b.parse().map_err(|_| format!("--bind {b:?}: not an address"))?,
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        },
    };
    if cfg.tcp.is_none() && cfg.udp.is_none() && cfg.http.is_none() {
        return Err("serve needs --tcp, --udp or --http".into());
    }
    Ok(cfg)
}

/// Serves until the process is killed. Every socket is bound before anything is served, so
/// a port in use fails at once.
pub fn serve(cfg: &ServeConfig) -> io::Result<()> {
    let tcp = cfg.tcp.map(|p| TcpListener::bind((cfg.bind, p))).transpose()?;
    let udp = cfg.udp.map(|p| UdpSocket::bind((cfg.bind, p))).transpose()?;
    let http = cfg.http.map(|p| TcpListener::bind((cfg.bind, p))).transpose()?;
    let active = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    if let Some(l) = tcp {
        let active = Arc::clone(&active);
        threads.push(thread::spawn(move || accept_loop(&l, &active, tcp_echo)));
    }
    if let Some(sock) = udp {
        threads.push(thread::spawn(move || udp_echo(&sock)));
    }
    if let Some(l) = http {
        let name = cfg.name.clone();
        threads.push(thread::spawn(move || accept_loop(&l, &active, move |s| http_serve(s, &name))));
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn accept_loop(l: &TcpListener, active: &Arc<AtomicUsize>, handler: impl Fn(TcpStream) + Clone + Send + 'static) {
    for conn in l.incoming() {
        let Ok(stream) = conn else {
            // EMFILE and friends: back off instead of spinning.
            thread::sleep(Duration::from_millis(50));
            continue;
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        }
        let active = Arc::clone(active);
        let handler = handler.clone();
        thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(IDLE));
            let _ = stream.set_write_timeout(Some(IDLE));
            handler(stream);
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

fn tcp_echo(mut s: TcpStream) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if s.write_all(buf.get(..n).unwrap_or(&[])).is_err() {
                    break;
                }
            }
        }
    }
    let _ = s.shutdown(Shutdown::Both);
}

fn udp_echo(sock: &UdpSocket) {
    let mut buf = vec![0u8; 65536];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, peer)) => {
                let _ = sock.send_to(buf.get(..n).unwrap_or(&[]), peer);
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn mss_of(s: &TcpStream) -> Option<u32> {
    socket2::SockRef::from(s).tcp_mss().ok()
}

fn http_serve(mut s: TcpStream, name: &str) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = find(&head, b"\r\n\r\n") {
            break pos + 4;
        }
        if head.len() > MAX_HEAD {
            let _ = respond(&mut s, 431, "text/plain", b"request head too large\n");
            return;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(buf.get(..n).unwrap_or(&[])),
        }
    };
    let text = String::from_utf8_lossy(head.get(..head_end).unwrap_or(&[])).into_owned();
    let mut lines = text.split("\r\n");
    let request = lines.next().unwrap_or("");
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    if length > MAX_BODY {
        let _ = respond(&mut s, 413, "text/plain", b"body too large\n");
        return;
    }
    let mut body: Vec<u8> = head.get(head_end..).unwrap_or(&[]).to_vec();
    while body.len() < length {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(buf.get(..n).unwrap_or(&[])),
        }
    }
    body.truncate(length);
    let _ = match (method, path) {
        ("GET", "/info") => {
            let info = serde_json::json!({
                "service": "netsleuth-lab-echo",
                "name": name,
                "peer": s.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
                "local": s.local_addr().map(|a| a.to_string()).unwrap_or_default(),
                "mss": mss_of(&s),
            });
            respond(&mut s, 200, "application/json", format!("{info}\n").as_bytes())
        }
        ("POST", _) | ("PUT", _) => respond(&mut s, 200, "application/octet-stream", &body),
        ("GET", _) | ("HEAD", _) => {
            respond(&mut s, 200, "text/plain", format!("netsleuth-lab echo {name}\n").as_bytes())
        }
        _ => respond(&mut s, 405, "text/plain", b"method not allowed\n"),
    };
    let _ = s.shutdown(Shutdown::Both);
}

fn respond(s: &mut TcpStream, code: u16, ctype: &str, body: &[u8]) -> io::Result<()> {
    let reason = match code {
        200 => "OK",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        _ => "Request Header Fields Too Large",
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------
// Client

fn client_from_flags(cmd: &str, f: &Flags) -> Result<ClientResult, String> {
    let target: SocketAddr = match f.positional.as_slice() {
        [t] => t.parse().map_err(|_| format!("{t:?}: write ADDRESS:PORT"))?,
        _ => return Err(format!("{cmd} needs one ADDRESS:PORT")),
    };
    let timeout = Duration::from_millis(f.num("timeout-ms", 3000u64)?.clamp(1, 600_000));
    match cmd {
        "tcp" => {
            f.check_known(&["bytes", "timeout-ms"])?;
            let bytes = f.num("bytes", 1024usize)?;
            if bytes > MAX_CLIENT_BYTES {
                return Err(format!("--bytes at most {MAX_CLIENT_BYTES}"));
            }
            Ok(tcp_client(target, bytes, timeout))
        }
        "udp" => {
            f.check_known(&["bytes", "timeout-ms", "tries"])?;
            let bytes = f.num("bytes", 64usize)?;
            if !(8..=65507).contains(&bytes) {
                return Err("--bytes must be 8..65507".into());
            }
            Ok(udp_client(target, bytes, timeout, f.num("tries", 3u32)?.clamp(1, 100)))
        }
        "http" => {
            f.check_known(&["path", "timeout-ms"])?;
            let path = f.get("path").unwrap_or("/info");
            if !path.starts_with('/') || path.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
                return Err(format!("--path {path:?}: must start with / and have no spaces"));
            }
            Ok(http_client(target, path, timeout))
        }
        _ => {
            f.check_known(&["count", "timeout-ms"])?;
            let count = f.num("count", 0usize)?;
            if count == 0 || count > MAX_FLOWS {
                return Err(format!("--count must be 1..{MAX_FLOWS}"));
            }
            Ok(udp_flows(target, count, timeout))
        }
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Sends `bytes` over TCP and reads them back, all within `timeout`.
pub fn tcp_client(target: SocketAddr, bytes: usize, timeout: Duration) -> ClientResult {
    let start = Instant::now();
    let mut r = ClientResult { proto: "tcp".into(), target: target.to_string(), ..ClientResult::default() };
    let mut s = match TcpStream::connect_timeout(&target, timeout) {
        Ok(s) => s,
        Err(e) => {
            r.error = Some(format!("connect: {e}"));
            r.ms = millis(start.elapsed());
            return r;
        }
    };
    r.mss = mss_of(&s);
    let data = pattern(bytes);
    // The writer runs in its own thread: for payloads larger than the socket buffers, a
    // write-then-read client would deadlock with the echoing server.
    let writer = s.try_clone().map(|mut w| {
        let payload = data.clone();
        let _ = w.set_write_timeout(Some(timeout));
        thread::spawn(move || {
            let res = w.write_all(&payload);
            let _ = w.shutdown(Shutdown::Write);
            res.map(|()| payload.len())
        })
    });
    let mut got = Vec::with_capacity(bytes);
    let mut buf = vec![0u8; 64 << 10];
    let deadline = start + timeout;
    let mut err = None;
    while got.len() < bytes {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            err = Some(format!("timed out after {} of {bytes} bytes came back", got.len()));
            break;
        }
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut buf) {
            Ok(0) => {
                err = Some(format!("closed after {} of {bytes} bytes came back", got.len()));
                break;
            }
            Ok(n) => got.extend_from_slice(buf.get(..n).unwrap_or(&[])),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                err = Some(format!("timed out after {} of {bytes} bytes came back", got.len()));
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                err = Some(format!("read: {e}"));
                break;
            }
        }
    }
    let _ = s.shutdown(Shutdown::Both);
    r.sent = match writer {
        Ok(h) => h.join().ok().and_then(|x| x.ok()).map_or(0, |n| n as u64),
        Err(_) => 0,
    };
    let intact = got.get(..bytes) == Some(data.as_slice());
    r.received = got.len() as u64;
    if err.is_none() && !intact {
        err = Some("the echoed bytes differ from the sent ones".into());
    }
    r.ok = err.is_none();
    r.error = err;
    r.ms = millis(start.elapsed());
    r
}

/// Sends a datagram of `bytes` and waits for the same bytes back; up to `tries` times.
pub fn udp_client(target: SocketAddr, bytes: usize, timeout: Duration, tries: u32) -> ClientResult {
    let start = Instant::now();
    let mut r = ClientResult { proto: "udp".into(), target: target.to_string(), ..ClientResult::default() };
    let bind: SocketAddr =
        if target.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { "[::]:0".parse().unwrap_or(target) };
    let sock = match UdpSocket::bind(bind).and_then(|s| s.connect(target).map(|()| s)) {
        Ok(s) => s,
        Err(e) => {
            r.error = Some(format!("socket: {e}"));
            return r;
        }
    };
    let per_try = (timeout / tries.max(1)).max(Duration::from_millis(10));
    let mut buf = vec![0u8; 65536];
    let mut last_err = String::from("no reply");
    for attempt in 0..tries {
        let mut data = pattern(bytes);
        // A per-try tag so that a late reply to an earlier try is not taken for this one.
        if let Some(first) = data.first_mut() {
            *first = attempt as u8;
        }
        match sock.send(&data) {
            Ok(n) => r.sent += n as u64,
            Err(e) => {
                last_err = format!("send: {e}");
                continue;
            }
        }
        let until = Instant::now() + per_try;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let _ = sock.set_read_timeout(Some(left));
            match sock.recv(&mut buf) {
                Ok(n) if buf.get(..n) == Some(data.as_slice()) => {
                    r.received = n as u64;
                    r.ok = true;
                    r.ms = millis(start.elapsed());
                    return r;
                }
                Ok(_) => {}
                Err(e) => {
                    last_err = format!("recv: {e}");
                    if !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
                        // ICMP port/host unreachable shows up here: no point waiting more.
                        break;
                    }
                }
            }
        }
    }
    r.error = Some(format!("no echo after {tries} tries ({last_err})"));
    r.ms = millis(start.elapsed());
    r
}

/// `GET path` over HTTP/1.1.
pub fn http_client(target: SocketAddr, path: &str, timeout: Duration) -> ClientResult {
    let start = Instant::now();
    let mut r = ClientResult { proto: "http".into(), target: target.to_string(), ..ClientResult::default() };
    let mut s = match TcpStream::connect_timeout(&target, timeout) {
        Ok(s) => s,
        Err(e) => {
            r.error = Some(format!("connect: {e}"));
            r.ms = millis(start.elapsed());
            return r;
        }
    };
    let _ = s.set_write_timeout(Some(timeout));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
    if let Err(e) = s.write_all(req.as_bytes()) {
        r.error = Some(format!("write: {e}"));
        return r;
    }
    let mut resp = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = start + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            r.error = Some("timed out reading the response".into());
            break;
        }
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if resp.len() < MAX_BODY + MAX_HEAD => resp.extend_from_slice(buf.get(..n).unwrap_or(&[])),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                r.error = Some(format!("read: {e}"));
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&resp).into_owned();
    r.status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok());
    if let Some((_, body)) = text.split_once("\r\n\r\n") {
        r.received = body.len() as u64;
        r.mss = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("mss")?.as_u64())
            .and_then(|m| u32::try_from(m).ok());
        r.body = Some(body.to_string());
    }
    r.ok = r.error.is_none() && r.status == Some(200);
    if r.error.is_none() && !r.ok {
        r.error = Some(format!("HTTP status {:?}", r.status));
    }
    r.ms = millis(start.elapsed());
    r
}

/// Opens `count` UDP flows (one datagram from a new source port each) and counts replies
/// until `timeout`: fills connection-tracking tables.
pub fn udp_flows(target: SocketAddr, count: usize, timeout: Duration) -> ClientResult {
    let start = Instant::now();
    let mut r = ClientResult { proto: "udp-flows".into(), target: target.to_string(), ..ClientResult::default() };
    let mut socks = Vec::with_capacity(count);
    for i in 0..count {
        let Ok(s) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) else { continue };
        if s.send_to(format!("flow {i}").as_bytes(), target).is_ok() {
            r.sent += 1;
            let _ = s.set_nonblocking(true);
            socks.push(s);
        }
    }
    let deadline = start + timeout;
    let mut replied = vec![false; socks.len()];
    let mut buf = [0u8; 256];
    while Instant::now() < deadline && replied.iter().any(|x| !x) {
        for (s, done) in socks.iter().zip(replied.iter_mut()) {
            if !*done && s.recv(&mut buf).is_ok() {
                *done = true;
            }
        }
        thread::sleep(Duration::from_millis(10));
    }
    r.received = replied.iter().filter(|x| **x).count() as u64;
    r.ok = r.sent == count as u64;
    r.ms = millis(start.elapsed());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
    }

    #[test]
    fn echo_service_on_loopback() {
        let (tcp, udp, http) = (free_port(), free_port(), free_port());
        let cfg = ServeConfig {
            tcp: Some(tcp),
            udp: Some(udp),
            http: Some(http),
            name: "unit".into(),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        thread::spawn(move || serve(&cfg));
        let t = Duration::from_secs(5);
        let addr = |p| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
        // The listeners come up in the spawned thread: bounded retries.
        let mut r = tcp_client(addr(tcp), 10, t);
        for _ in 0..50 {
            if r.ok {
                break;
            }
            thread::sleep(Duration::from_millis(20));
            r = tcp_client(addr(tcp), 10, t);
        }
        assert!(r.ok, "{r:?}");
        let big = tcp_client(addr(tcp), 3 << 20, t);
        assert!(big.ok && big.received == 3 << 20, "{:?}", big.error);
        assert!(big.mss.is_some_and(|m| m > 0));
        let u = udp_client(addr(udp), 1200, t, 3);
        assert!(u.ok && u.received == 1200, "{u:?}");
        let h = http_client(addr(http), "/info", t);
        assert_eq!(h.status, Some(200), "{h:?}");
        assert!(h.body.as_deref().is_some_and(|b| b.contains("\"name\":\"unit\"")), "{h:?}");
        assert!(h.mss.is_some());
        let flows = udp_flows(addr(udp), 20, Duration::from_secs(2));
        assert_eq!((flows.sent, flows.received), (20, 20));
        // Nothing listens here: connection refused is a failed result, not a panic.
        let closed = tcp_client(addr(free_port()), 10, Duration::from_millis(500));
        assert!(!closed.ok && closed.error.as_deref().is_some_and(|e| e.contains("connect")), "{closed:?}");
        let lost = udp_client(addr(free_port()), 16, Duration::from_millis(300), 2);
        assert!(!lost.ok);
    }

    #[test]
    fn usage_errors_exit_2() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(main_with_args(&args(&[])), 2);
        assert_eq!(main_with_args(&args(&["tcp"])), 2);
        assert_eq!(main_with_args(&args(&["tcp", "not-an-addr"])), 2);
        assert_eq!(main_with_args(&args(&["tcp", "127.0.0.1:1", "--bogus", "1"])), 2);
        assert_eq!(main_with_args(&args(&["udp", "127.0.0.1:1", "--bytes", "3"])), 2);
        assert_eq!(main_with_args(&args(&["serve"])), 2);
        assert_eq!(main_with_args(&args(&["udp-flows", "127.0.0.1:1", "--count", "0"])), 2);
        assert_eq!(main_with_args(&args(&["frobnicate"])), 2);
    }
}
