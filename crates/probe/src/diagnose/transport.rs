//! Transport probes to TARGET:PORT: TCP connect, an HTTP request, a UDP request/response
//! and a DNS query. Each attempt has its own time limit; how an attempt fails is classified.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use serde::Serialize;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Protocol of the transport probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    Http,
    Dns,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::Http => "http",
            Proto::Dns => "dns",
        }
    }

    /// The port used when the target names none.
    pub fn default_port(self) -> Option<u16> {
        match self {
            Proto::Http => Some(80),
            Proto::Dns => Some(53),
            Proto::Tcp | Proto::Udp | Proto::Icmp => None,
        }
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttemptResult {
    /// Connected / answered.
    Ok,
    /// TCP RST or ICMP port unreachable: nothing listens on the port.
    Refused,
    /// No answer at all within the limit: silently dropped somewhere.
    Timeout,
    /// An ICMP host/net unreachable came back (or the kernel had no neighbour).
    Unreachable,
    /// The local host refused to send it (EPERM/EACCES: a local firewall rule).
    LocalDenied,
    /// TCP connected, then reset before an answer.
    Reset,
    /// Connected, but the application did not answer (HTTP, DNS) within the limit.
    NoAnswer,
    /// The application answered with an error (HTTP 5xx, DNS SERVFAIL/REFUSED).
    AppError,
    /// Anything else (the detail says what).
    Other,
}

/// One attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub result: AttemptResult,
    pub duration_ms: f64,
    pub detail: String,
    /// The MSS of the established TCP connection (the kernel's view: min of what the
    /// peer announced and what the route allows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_mss: Option<u32>,
}

impl Attempt {
    fn new(result: AttemptResult, started: Instant, detail: impl Into<String>) -> Attempt {
        Attempt {
            result,
            duration_ms: (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
            detail: detail.into(),
            tcp_mss: None,
        }
    }
}

fn classify_io(e: &io::Error) -> AttemptResult {
    match e.raw_os_error() {
        Some(111) => AttemptResult::Refused,                 // ECONNREFUSED
        Some(113) | Some(101) => AttemptResult::Unreachable, // EHOSTUNREACH, ENETUNREACH
        Some(1) | Some(13) => AttemptResult::LocalDenied,    // EPERM, EACCES
        Some(104) => AttemptResult::Reset,                   // ECONNRESET
        Some(110) | Some(11) => AttemptResult::Timeout,      // ETIMEDOUT, EAGAIN
        _ if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => AttemptResult::Timeout,
        _ => AttemptResult::Other,
    }
}

fn tcp_connect(addr: SocketAddr, timeout: Duration) -> Result<Socket, (AttemptResult, String)> {
    let domain = if addr.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let s =
        Socket::new(domain, Type::STREAM, Some(Protocol::TCP)).map_err(|e| (AttemptResult::Other, e.to_string()))?;
    match s.connect_timeout(&SockAddr::from(addr), timeout) {
        Ok(()) => Ok(s),
        Err(e) => {
            let r = classify_io(&e);
            let what = match r {
                AttemptResult::Refused => "connection refused (TCP RST)".to_string(),
                AttemptResult::Timeout => format!("no answer to SYN within {} ms", timeout.as_millis()),
                _ => e.to_string(),
            };
            Err((r, what))
        }
    }
}

/// One TCP connect attempt.
pub fn tcp_attempt(addr: SocketAddr, timeout: Duration) -> Attempt {
    let t = Instant::now();
    match tcp_connect(addr, timeout) {
        Ok(s) => {
            let mut a = Attempt::new(AttemptResult::Ok, t, format!("connected to {addr}"));
            a.tcp_mss = s.tcp_mss().ok();
            let _ = s.shutdown(std::net::Shutdown::Both);
            a
        }
        Err((r, d)) => Attempt::new(r, t, d),
    }
}

/// One HTTP/1.0 `GET /` (status line only is read).
pub fn http_attempt(addr: SocketAddr, host: &str, path: &str, timeout: Duration) -> Attempt {
    let t = Instant::now();
    let s = match tcp_connect(addr, timeout) {
        Ok(s) => s,
        Err((r, d)) => return Attempt::new(r, t, d),
    };
    let left = timeout.saturating_sub(t.elapsed()).max(Duration::from_millis(50));
    let _ = s.set_read_timeout(Some(left));
    let _ = s.set_write_timeout(Some(left));
    let req =
        format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: netsleuth-diagnose\r\nConnection: close\r\n\r\n");
    if let Err(e) = (&s).write_all(req.as_bytes()) {
        return Attempt::new(classify_io(&e), t, format!("sending the request: {e}"));
    }
    let mut buf = [0u8; 2048];
    let mut got = Vec::new();
    loop {
        match (&s).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.contains(&b'\n') || got.len() > 1024 {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let r = match classify_io(&e) {
                    AttemptResult::Timeout => AttemptResult::NoAnswer,
                    r => r,
                };
                let mut a = Attempt::new(r, t, format!("connected, but no HTTP response: {e}"));
                a.tcp_mss = s.tcp_mss().ok();
                return a;
            }
        }
    }
    let line = String::from_utf8_lossy(&got);
    let line = line.lines().next().unwrap_or("").trim().to_string();
    let mut a = match parse_status(&line) {
        Some(code) if code < 500 => Attempt::new(AttemptResult::Ok, t, format!("HTTP {line}")),
        Some(_) => Attempt::new(AttemptResult::AppError, t, format!("server error: {line}")),
        None if got.is_empty() => Attempt::new(AttemptResult::Reset, t, "connection closed without a response"),
        None => Attempt::new(AttemptResult::Other, t, format!("not an HTTP response: {}", truncate(&line, 60))),
    };
    a.tcp_mss = s.tcp_mss().ok();
    a
}

fn parse_status(line: &str) -> Option<u16> {
    let mut it = line.split_whitespace();
    let v = it.next()?;
    if !v.starts_with("HTTP/") {
        return None;
    }
    it.next()?.parse().ok()
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// One UDP request/response: a datagram out, one back. Port unreachable → refused.
pub fn udp_attempt(addr: SocketAddr, payload: &[u8], timeout: Duration) -> Attempt {
    let t = Instant::now();
    let bind: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0".parse() } else { "[::]:0".parse() }
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let s = match UdpSocket::bind(bind).and_then(|s| s.connect(addr).map(|()| s)) {
        Ok(s) => s,
        Err(e) => return Attempt::new(classify_io(&e), t, e.to_string()),
    };
    let _ = s.set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
    if let Err(e) = s.send(payload) {
        return Attempt::new(classify_io(&e), t, format!("send: {e}"));
    }
    let mut buf = [0u8; 2048];
    // A signal (SIGCHLD of a collection thread's command) must not end the wait early.
    let got = loop {
        match s.recv(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted && t.elapsed() < timeout => continue,
            other => break other,
        }
    };
    match got {
        Ok(n) => Attempt::new(AttemptResult::Ok, t, format!("{n}-byte reply from {addr}")),
        Err(e) => {
            let r = classify_io(&e);
            let d = match r {
                AttemptResult::Refused => "ICMP port unreachable: nothing listens on the UDP port".to_string(),
                AttemptResult::Timeout => format!("no reply within {} ms", timeout.as_millis()),
                _ => e.to_string(),
            };
            Attempt::new(r, t, d)
        }
    }
}

/// A DNS query (`name`, type A, recursion desired) as bytes; `id` is the transaction id.
pub fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        let l = &label.as_bytes()[..label.len().min(63)];
        q.push(l.len() as u8);
        q.extend_from_slice(l);
    }
    q.push(0);
    q.extend_from_slice(&[0, 1, 0, 1]);
    q
}

/// The rcode of a DNS response to `id`; None when `b` is not one.
pub fn dns_rcode(b: &[u8], id: u16) -> Option<u8> {
    if b.len() < 12 || u16::from_be_bytes([b[0], b[1]]) != id || b[2] & 0x80 == 0 {
        return None;
    }
    Some(b[3] & 0x0f)
}

/// One DNS query over UDP to a server (`--proto dns`): any answer but SERVFAIL/REFUSED is ok.
pub fn dns_attempt(addr: SocketAddr, name: &str, timeout: Duration) -> Attempt {
    let id = (std::process::id() as u16) ^ 0x5a5a;
    let t = Instant::now();
    let mut a = udp_attempt(addr, &dns_query(id, name), timeout);
    if a.result != AttemptResult::Ok {
        return a;
    }
    // udp_attempt discards the reply: ask again and keep it (cheap; the server answered).
    let bind = if addr.is_ipv4() { SocketAddr::from(([0, 0, 0, 0], 0)) } else { SocketAddr::from(([0u16; 8], 0)) };
    let Ok(s) = UdpSocket::bind(bind).and_then(|s| s.connect(addr).map(|()| s)) else { return a };
    let _ = s.set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
    let mut buf = [0u8; 4096];
    let rcode =
        s.send(&dns_query(id, name)).ok().and_then(|_| s.recv(&mut buf).ok()).and_then(|n| dns_rcode(&buf[..n], id));
    a = match rcode {
        Some(0) | Some(3) => {
            Attempt::new(AttemptResult::Ok, t, format!("DNS answer, rcode {}", rcode_name(rcode.unwrap_or(0))))
        }
        Some(r) => Attempt::new(AttemptResult::AppError, t, format!("DNS server answered {}", rcode_name(r))),
        None => Attempt::new(AttemptResult::Other, t, "the reply is not a DNS response to the query"),
    };
    a
}

fn rcode_name(r: u8) -> &'static str {
    match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn tcp_open_and_refused_on_loopback() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let a = tcp_attempt(addr, Duration::from_secs(2));
        assert_eq!(a.result, AttemptResult::Ok, "{a:?}");
        assert!(a.tcp_mss.is_some());
        drop(l);
        let a = tcp_attempt(addr, Duration::from_secs(2));
        assert_eq!(a.result, AttemptResult::Refused, "{a:?}");
    }

    #[test]
    fn http_status_is_read() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let h = std::thread::spawn(move || {
            for status in ["200 OK", "503 Service Unavailable"] {
                let (mut c, _) = l.accept().expect("accept");
                let mut b = [0u8; 512];
                let _ = c.read(&mut b);
                let _ = c.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes());
            }
        });
        let a = http_attempt(addr, "x", "/", Duration::from_secs(2));
        assert_eq!(a.result, AttemptResult::Ok, "{a:?}");
        let a = http_attempt(addr, "x", "/", Duration::from_secs(2));
        assert_eq!(a.result, AttemptResult::AppError, "{a:?}");
        h.join().expect("server");
        assert_eq!(parse_status("HTTP/1.1 404 Not Found"), Some(404));
        assert_eq!(parse_status("SSH-2.0"), None);
    }

    #[test]
    fn udp_echo_and_port_unreachable() {
        let srv = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = srv.local_addr().expect("addr");
        let h = std::thread::spawn(move || {
            let mut b = [0u8; 64];
            if let Ok((n, from)) = srv.recv_from(&mut b) {
                let _ = srv.send_to(&b[..n], from);
            }
        });
        let a = udp_attempt(addr, b"ping", Duration::from_secs(2));
        assert_eq!(a.result, AttemptResult::Ok, "{a:?}");
        h.join().expect("server");
        // The server socket is closed now: the kernel answers port unreachable.
        let a = udp_attempt(addr, b"ping", Duration::from_secs(2));
        assert_eq!(a.result, AttemptResult::Refused, "{a:?}");
    }

    #[test]
    fn dns_wire_format() {
        let q = dns_query(0x1234, "api.default.svc.");
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&q[12..16], &[3, b'a', b'p', b'i']);
        assert_eq!(&q[q.len() - 5..], &[0, 0, 1, 0, 1]);
        let mut resp = q.clone();
        resp[2] |= 0x80;
        resp[3] = 0x83;
        assert_eq!(dns_rcode(&resp, 0x1234), Some(3));
        assert_eq!(dns_rcode(&q, 0x1234), None, "a query is not a response");
        assert_eq!(dns_rcode(&resp, 0x9999), None);
        assert_eq!(dns_rcode(&resp[..5], 0x1234), None);
    }
}
