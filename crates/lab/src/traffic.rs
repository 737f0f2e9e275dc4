//! Real traffic from a lab host: ping (with or without DF) and the echo client over TCP,
//! UDP and HTTP. Destinations must be lab addresses; every probe has a count and a deadline.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

use crate::echo::ClientResult;
use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::scenario::ip_in_lab_ranges;

/// How to ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingOptions {
    /// Echo requests to send (at most 1000).
    pub count: u32,
    /// ICMP payload bytes (`ping -s`); the IPv4 packet is 28 bytes larger.
    pub size: u32,
    /// Some(true): DF set, no fragmentation (`-M do`); Some(false): may fragment (`-M dont`).
    pub df: Option<bool>,
    /// Milliseconds between requests (at least 10).
    pub interval_ms: u32,
    /// Seconds to wait for each reply.
    pub wait_s: u32,
}

impl Default for PingOptions {
    fn default() -> PingOptions {
        PingOptions { count: 3, size: 56, df: None, interval_ms: 200, wait_s: 1 }
    }
}

/// What ping observed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PingStats {
    pub transmitted: u32,
    pub received: u32,
    /// ICMP errors received (unreachable, fragmentation needed, ...).
    pub errors: u32,
    /// MTU of an ICMP "fragmentation needed" a router sent back.
    pub frag_needed_mtu: Option<u32>,
    /// MTU of a local "message too long" (the sender knew the path MTU already).
    pub local_mtu: Option<u32>,
    pub output: String,
}

impl PingStats {
    /// Lost share in percent (100 when nothing was sent).
    pub fn loss_pct(&self) -> f64 {
        if self.transmitted == 0 {
            return 100.0;
        }
        f64::from(self.transmitted.saturating_sub(self.received)) * 100.0 / f64::from(self.transmitted)
    }

    /// Every request answered.
    pub fn all_ok(&self) -> bool {
        self.transmitted > 0 && self.received == self.transmitted
    }
}

fn number_after(text: &str, marker: &str) -> Option<u32> {
    let rest = text.get(text.find(marker)? + marker.len()..)?;
    let digits: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Reads iputils ping output.
pub fn parse_ping(output: &str) -> PingStats {
    let mut s = PingStats { output: output.to_string(), ..PingStats::default() };
    for line in output.lines() {
        if line.contains("packets transmitted") {
            s.transmitted = line.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
            s.received = number_after(line, "transmitted,").unwrap_or(0);
            s.errors = number_after(line, "+").unwrap_or(0);
        }
        if line.contains("Frag needed") {
            s.frag_needed_mtu = s.frag_needed_mtu.or_else(|| number_after(line, "mtu ="));
        }
        if line.contains("message too long") {
            s.local_mtu = s.local_mtu.or_else(|| number_after(line, "mtu=")).or_else(|| number_after(line, "mtu:"));
        }
    }
    s
}

fn lab_destination(ip: IpAddr) -> Result<()> {
    if ip_in_lab_ranges(ip) {
        Ok(())
    } else {
        Err(LabError::Lab(format!("{ip} is not a lab address: traffic only goes to lab namespaces")))
    }
}

impl Lab {
    /// Pings `dst` from `host`.
    pub fn ping(&self, host: &str, dst: IpAddr, o: PingOptions) -> Result<PingStats> {
        lab_destination(dst)?;
        let count = o.count.clamp(1, 1000);
        let interval_ms = o.interval_ms.max(10);
        let wait = o.wait_s.clamp(1, 30);
        // No -w: with it, ping sends until it has `count` replies, which skews loss counts.
        // The run is bounded by count × interval plus the wait for the last reply.
        let deadline = (u64::from(count) * u64::from(interval_ms)).div_ceil(1000) + u64::from(wait) + 1;
        let mut args: Vec<String> = vec![
            "ping".into(),
            "-n".into(),
            "-c".into(),
            count.to_string(),
            "-i".into(),
            format!("{:.3}", f64::from(interval_ms) / 1000.0),
            "-W".into(),
            wait.to_string(),
            "-s".into(),
            o.size.min(65507).to_string(),
        ];
        if let Some(df) = o.df {
            args.extend(["-M".into(), if df { "do" } else { "dont" }.into()]);
        }
        args.push(dst.to_string());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.exec(host, &refs, Duration::from_secs(deadline + 5))?;
        Ok(parse_ping(&format!("{}{}", out.stdout, out.stderr)))
    }

    fn echo_client(&self, host: &str, args: &[String], timeout: Duration) -> Result<ClientResult> {
        let mut all: Vec<String> = self.echo_command().to_vec();
        all.extend(args.iter().cloned());
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = self.exec(host, &refs, timeout + Duration::from_secs(5))?;
        let parsed = out.stdout.lines().rev().find_map(|l| serde_json::from_str::<ClientResult>(l).ok());
        Ok(parsed.unwrap_or_else(|| ClientResult {
            ok: false,
            proto: args.first().cloned().unwrap_or_default(),
            error: Some(format!(
                "the echo client printed no result{}: {}",
                if out.timed_out { " (timed out)" } else { "" },
                crate::cmd::truncate(out.stderr.trim(), 500)
            )),
            ..ClientResult::default()
        }))
    }

    /// Sends `bytes` to a TCP echo service from `host` and checks they come back.
    pub fn tcp_echo(&self, host: &str, target: SocketAddr, bytes: usize, timeout: Duration) -> Result<ClientResult> {
        lab_destination(target.ip())?;
        let ms = timeout.as_millis().to_string();
        self.echo_client(
            host,
            &["tcp".into(), target.to_string(), "--bytes".into(), bytes.to_string(), "--timeout-ms".into(), ms],
            timeout,
        )
    }

    /// Sends one datagram of `bytes` (up to 3 tries) and checks it comes back.
    pub fn udp_echo(&self, host: &str, target: SocketAddr, bytes: usize, timeout: Duration) -> Result<ClientResult> {
        lab_destination(target.ip())?;
        let ms = timeout.as_millis().to_string();
        self.echo_client(
            host,
            &[
                "udp".into(),
                target.to_string(),
                "--bytes".into(),
                bytes.to_string(),
                "--timeout-ms".into(),
                ms,
                "--tries".into(),
                "3".into(),
            ],
            timeout,
        )
    }

    /// `GET path` from `host`; `/info` reports the TCP MSS the server sees.
    pub fn http_get(&self, host: &str, target: SocketAddr, path: &str, timeout: Duration) -> Result<ClientResult> {
        lab_destination(target.ip())?;
        let ms = timeout.as_millis().to_string();
        self.echo_client(
            host,
            &["http".into(), target.to_string(), "--path".into(), path.into(), "--timeout-ms".into(), ms],
            timeout,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_output_is_read() {
        let ok = "PING 10.20.1.10 (10.20.1.10) 1392(1420) bytes of data.\n\
                  1400 bytes from 10.20.1.10: icmp_seq=1 ttl=61 time=0.512 ms\n\n\
                  --- 10.20.1.10 ping statistics ---\n\
                  3 packets transmitted, 3 received, 0% packet loss, time 2003ms\n";
        let s = parse_ping(ok);
        assert_eq!((s.transmitted, s.received, s.errors), (3, 3, 0));
        assert!(s.all_ok());
        assert_eq!(s.loss_pct(), 0.0);
        let frag = "From 10.244.3.0 icmp_seq=1 Frag needed and DF set (mtu = 1420)\n\
                    ping: local error: message too long, mtu=1420\n\
                    3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2041ms\n";
        let s = parse_ping(frag);
        assert_eq!((s.transmitted, s.received, s.errors), (3, 0, 3));
        assert_eq!(s.frag_needed_mtu, Some(1420));
        assert_eq!(s.local_mtu, Some(1420));
        assert_eq!(s.loss_pct(), 100.0);
        assert_eq!(parse_ping("").loss_pct(), 100.0);
        assert!(lab_destination("8.8.8.8".parse().expect("ip")).is_err());
        assert!(lab_destination("10.1.2.3".parse().expect("ip")).is_ok());
    }
}
