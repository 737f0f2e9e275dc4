//! Tunnel layer: the WireGuard peer for the target (AllowedIPs, handshake age, counters while
//! probing), or whether an installed IPsec CHILD_SA covers source and destination.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use netsleuth_model::host::Host;

use super::cmd;

/// WireGuard's REJECT_AFTER_TIME: a session older than this carries nothing.
pub(crate) const HANDSHAKE_STALE_SECS: i64 = 180;

/// A WireGuard peer as `wg show IF dump` shows it (no keys but the public one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WgPeer {
    pub(crate) public_key: String,
    pub(crate) endpoint: Option<String>,
    pub(crate) allowed_ips: Vec<(IpAddr, u8)>,
    /// Unix seconds; None = never.
    pub(crate) latest_handshake: Option<i64>,
    pub(crate) rx: u64,
    pub(crate) tx: u64,
}

impl WgPeer {
    /// Shortened public key for display (public, but long).
    pub(crate) fn short_key(&self) -> String {
        format!("{}…", self.public_key.chars().take(10).collect::<String>())
    }

    /// Longest AllowedIPs prefix of this peer containing `ip`.
    fn best_match(&self, ip: IpAddr) -> Option<u8> {
        self.allowed_ips.iter().filter(|(a, l)| contains(*a, *l, ip)).map(|(_, l)| *l).max()
    }
}

fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if len <= 32 => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            u32::from(n) & m == u32::from(i) & m
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if len <= 128 => {
            let m = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            u128::from(n) & m == u128::from(i) & m
        }
        _ => false,
    }
}

/// Parses `wg show IF dump`. The first line (the interface: private key, port, fwmark) is
/// skipped without being kept: no key material leaves this function.
pub(crate) fn parse_wg_dump(text: &str) -> Vec<WgPeer> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 8 {
                return None;
            }
            let allowed_ips = f[3]
                .split(',')
                .filter_map(|p| {
                    let (a, l) = p.trim().split_once('/')?;
                    Some((a.parse().ok()?, l.parse().ok()?))
                })
                .collect();
            let hs: i64 = f[4].parse().unwrap_or(0);
            Some(WgPeer {
                public_key: f[0].to_string(),
                endpoint: (f[2] != "(none)").then(|| f[2].to_string()),
                allowed_ips,
                latest_handshake: (hs > 0).then_some(hs),
                rx: f[5].parse().unwrap_or(0),
                tx: f[6].parse().unwrap_or(0),
            })
        })
        .collect()
}

/// The live peers of WireGuard interface `dev`.
pub(crate) fn wg_peers(dev: &str, timeout: Duration) -> Result<Vec<WgPeer>, String> {
    let o = cmd::run("wg", &["show", dev, "dump"], timeout)?;
    if !o.ok {
        return Err(format!("wg show {dev} dump: {}", o.stderr.trim()));
    }
    Ok(parse_wg_dump(&o.stdout))
}

/// The peer WireGuard sends `ip` to: longest AllowedIPs match (as the kernel/wireguard-go do).
pub(crate) fn peer_for(peers: &[WgPeer], ip: IpAddr) -> Option<&WgPeer> {
    peers.iter().filter_map(|p| p.best_match(ip).map(|l| (l, p))).max_by_key(|(l, _)| *l).map(|(_, p)| p)
}

pub(crate) fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Whether `dev` is a WireGuard interface of `host` (collected model) — or, without a
/// model, whether `wg show` knows it.
pub(crate) fn is_wireguard(host: Option<&Host>, dev: &str, timeout: Duration) -> bool {
    match host {
        Some(h) if !h.wireguard.is_empty() || h.interface(dev).is_some() => h.wireguard.iter().any(|w| w.name == dev),
        _ => cmd::run("wg", &["show", dev, "dump"], timeout).is_ok_and(|o| o.ok),
    }
}

/// What the IPsec state says about `src` → `dst`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IpsecCoverage {
    /// No IPsec configured or running here.
    NotUsed,
    /// An installed CHILD_SA covers both ends: its name and counters.
    Covered { child: String, bytes_in: Option<u64>, bytes_out: Option<u64> },
    /// IPsec is configured/running but nothing installed covers the pair; what is there.
    NotCovered { seen: Vec<String> },
}

/// Whether `dev` is an IPsec device: a route-based tunnel (xfrm, vti) or the TUN device of
/// charon's userspace data plane (kernel-libipsec names it `ipsecN`).
pub(crate) fn is_ipsec_dev(host: &Host, dev: &str) -> bool {
    use netsleuth_model::host::InterfaceKind;
    let by_kind = host.interface(dev).is_some_and(|i| match &i.kind {
        InterfaceKind::Other { name } => matches!(name.as_str(), "xfrm" | "vti" | "vti6"),
        InterfaceKind::Tun => dev.starts_with("ipsec"),
        _ => false,
    });
    by_kind || dev.starts_with("xfrm") || dev.starts_with("vti")
}

/// Checks the collected `swanctl --list-sas` (and configured connections) for `src`→`dst`.
/// `via_ipsec_dev`: the route sends `dst` into an IPsec device, so IPsec must carry it even
/// when no configured selector names it.
pub(crate) fn ipsec_coverage(host: &Host, src: Option<IpAddr>, dst: IpAddr, via_ipsec_dev: bool) -> IpsecCoverage {
    let ip = &host.ipsec;
    if ip.sas.is_empty() && ip.connections.is_empty() {
        return IpsecCoverage::NotUsed;
    }
    let covers = |ts: &[String], a: IpAddr| ts.iter().any(|t| ts_contains(t, a));
    // Only connections whose remote selectors name the destination make IPsec relevant.
    let configured_for_dst = ip.connections.iter().flat_map(|c| c.children.iter()).any(|ch| covers(&ch.remote_ts, dst));
    let mut seen = Vec::new();
    for sa in &ip.sas {
        for ch in &sa.children {
            seen.push(format!(
                "{}/{} {}: {} === {}",
                sa.name,
                ch.name,
                ch.state,
                ch.local_ts.join(","),
                ch.remote_ts.join(",")
            ));
            let installed = ch.state.eq_ignore_ascii_case("INSTALLED") || ch.state.eq_ignore_ascii_case("REKEYING");
            if installed && covers(&ch.remote_ts, dst) && src.is_none_or(|s| covers(&ch.local_ts, s)) {
                return IpsecCoverage::Covered {
                    child: ch.name.clone(),
                    bytes_in: ch.bytes_in,
                    bytes_out: ch.bytes_out,
                };
            }
        }
    }
    if via_ipsec_dev
        || configured_for_dst
        || ip.sas.iter().flat_map(|s| s.children.iter()).any(|c| covers(&c.remote_ts, dst))
    {
        IpsecCoverage::NotCovered { seen }
    } else {
        IpsecCoverage::NotUsed
    }
}

/// IPsec configured to carry traffic *to* `dst` from the far site (a configured CHILD_SA whose
/// local selectors contain `dst`: this host is the gateway in front of it) while no installed
/// CHILD_SA does: the far site's clients cannot reach `dst`. Returns what is configured and
/// installed (evidence); None when the tunnel is up or not configured for `dst`.
pub(crate) fn fronting_tunnel_down(host: &Host, dst: IpAddr) -> Option<Vec<String>> {
    let ip = &host.ipsec;
    let covers = |ts: &[String]| ts.iter().any(|t| ts_contains(t, dst));
    let configured: Vec<String> = ip
        .connections
        .iter()
        .flat_map(|c| c.children.iter().map(move |ch| (c, ch)))
        .filter(|(_, ch)| covers(&ch.local_ts))
        .map(|(c, ch)| {
            format!("configured {}/{}: {} === {}", c.name, ch.name, ch.local_ts.join(","), ch.remote_ts.join(","))
        })
        .collect();
    if configured.is_empty() || !ip.sas_collected {
        return None;
    }
    let mut seen = configured;
    for sa in &ip.sas {
        for ch in &sa.children {
            let installed = ch.state.eq_ignore_ascii_case("INSTALLED") || ch.state.eq_ignore_ascii_case("REKEYING");
            if installed && covers(&ch.local_ts) {
                return None;
            }
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
    if ip.sas.is_empty() {
        seen.push("swanctl --list-sas: no IKE_SA".into());
    }
    Some(seen)
}

/// Largest tail of the charon log read.
const LOG_TAIL: u64 = 256 * 1024;

/// The last IKE error lines of a charon log (at most 8, oldest first); empty when the file
/// cannot be read. Lines are kept as logged: charon never logs keys or PSKs.
pub(crate) fn charon_errors(path: &std::path::Path) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else { return Vec::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL)));
    let mut buf = Vec::new();
    if f.take(LOG_TAIL).read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&buf);
    // Errors before the last successful establishment belong to an earlier episode.
    let lines: Vec<&str> = text.lines().collect();
    let since = lines.iter().rposition(|l| l.to_ascii_lowercase().contains(" established")).map_or(0, |i| i + 1);
    let mut hits: Vec<String> = lines[since..]
        .iter()
        .filter(|l| ike_failure(l).is_some())
        .map(|l| l.trim().chars().take(200).collect())
        .collect();
    let keep = hits.len().saturating_sub(8);
    hits.drain(..keep);
    hits
}

/// What a charon log line says went wrong, and the fix.
pub(crate) fn ike_failure(line: &str) -> Option<(&'static str, &'static str)> {
    let l = line.to_ascii_uppercase();
    if l.contains("NO_PROPOSAL_CHOSEN") || l.contains("N(NO_PROP)") || l.contains("NO ACCEPTABLE") {
        Some((
            "IKE/ESP proposal mismatch (NO_PROPOSAL_CHOSEN)",
            "align the IKE and ESP proposals (encryption, integrity, PRF, DH group) on both peers",
        ))
    } else if l.contains("AUTHENTICATION_FAILED") || l.contains("MAC MISMATCHED") || l.contains("N(AUTH_FAILED)") {
        Some((
            "authentication failed (AUTHENTICATION_FAILED: PSK or IDs do not match)",
            "use the same pre-shared key on both peers and check the local/remote IDs",
        ))
    } else if l.contains("TS_UNACCEPTABLE") || l.contains("N(TS_UNACCEPT)") || l.contains("INACCEPTABLE") {
        Some((
            "traffic selectors not accepted (TS_UNACCEPTABLE)",
            "mirror local_ts/remote_ts between the peers so they cover both sites",
        ))
    } else if l.contains("GIVING UP AFTER") || l.contains("RETRANSMIT") {
        Some((
            "the peer does not answer IKE (retransmits; UDP 500/4500 blocked?)",
            "allow UDP 500 and 4500 (and ESP or its UDP encapsulation) between the peers",
        ))
    } else {
        None
    }
}

/// A traffic selector (`10.0.0.0/16`, `10.0.0.1`, `10.0.0.0/16[tcp/443]`, `dynamic`) containing `a`.
fn ts_contains(ts: &str, a: IpAddr) -> bool {
    let t = ts.split('[').next().unwrap_or("").trim();
    match t.split_once('/') {
        Some((n, l)) => match (n.parse::<IpAddr>(), l.parse::<u8>()) {
            (Ok(n), Ok(l)) => contains(n, l, a),
            _ => false,
        },
        None => t.parse::<IpAddr>().is_ok_and(|n| n == a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "PRIVATEKEYPRIVATEKEYPRIVATEKEYPRIVATEKEY0=\tPUBKEYIF=\t51820\toff\n\
        PEERA=\t(none)\t203.0.113.18:51820\t10.99.0.2/32,10.20.0.0/16\t1700000000\t1000\t2000\t25\n\
        PEERB=\tPSKPSKPSK=\t(none)\t10.20.1.0/24\t0\t0\t0\toff\n";

    #[test]
    fn dump_parses_without_keeping_secrets() {
        let peers = parse_wg_dump(DUMP);
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[0].endpoint.as_deref(), Some("203.0.113.18:51820"));
        assert_eq!(peers[0].latest_handshake, Some(1_700_000_000));
        assert_eq!((peers[0].rx, peers[0].tx), (1000, 2000));
        assert_eq!(peers[1].latest_handshake, None);
        assert_eq!(peers[1].endpoint, None);
        let dbg = format!("{peers:?}");
        assert!(!dbg.contains("PRIVATEKEY") && !dbg.contains("PSKPSK"), "{dbg}");
    }

    #[test]
    fn longest_allowed_ips_match_wins() {
        let peers = parse_wg_dump(DUMP);
        let t: IpAddr = "10.20.1.10".parse().expect("ip");
        assert_eq!(peer_for(&peers, t).map(|p| p.public_key.as_str()), Some("PEERB="));
        let t: IpAddr = "10.20.2.10".parse().expect("ip");
        assert_eq!(peer_for(&peers, t).map(|p| p.public_key.as_str()), Some("PEERA="));
        assert!(peer_for(&peers, "10.21.0.1".parse().expect("ip")).is_none());
    }

    #[test]
    fn charon_log_lines() {
        assert!(ike_failure("09[IKE] received NO_PROPOSAL_CHOSEN notify error")
            .is_some_and(|(w, _)| w.contains("proposal")));
        assert!(ike_failure("parsed IKE_AUTH response 1 [ N(AUTH_FAILED) ]")
            .is_some_and(|(w, _)| w.contains("authentication")));
        assert!(ike_failure("received TS_UNACCEPTABLE notify, no CHILD_SA built")
            .is_some_and(|(w, _)| w.contains("selectors")));
        assert!(ike_failure("giving up after 5 retransmits").is_some_and(|(w, _)| w.contains("UDP 500")));
        assert!(ike_failure("IKE_SA established").is_none());
        let dir = std::env::temp_dir().join(format!("nsl-charon-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let log = dir.join("charon.log");
        let mut text =
            String::from("giving up after 5 retransmits (old episode)\nCHILD_SA net{1} established with SPIs\n");
        for i in 0..20 {
            text.push_str(&format!("{i:02}[IKE] sending retransmit {i} of request\n"));
        }
        std::fs::write(&log, text).expect("write");
        let hits = charon_errors(&log);
        assert_eq!(hits.len(), 8, "the last 8 only: {hits:?}");
        assert!(hits[7].contains("retransmit 19"));
        assert!(!hits.iter().any(|h| h.contains("old episode")));
        std::fs::write(&log, "09[IKE] received AUTHENTICATION_FAILED notify error\nIKE_SA x[2] established between\n")
            .expect("write");
        assert!(charon_errors(&log).is_empty(), "nothing failed since the last establishment");
        assert!(charon_errors(&dir.join("missing.log")).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn traffic_selectors() {
        let a: IpAddr = "10.10.1.10".parse().expect("ip");
        assert!(ts_contains("10.10.0.0/16", a));
        assert!(ts_contains("10.10.0.0/16[tcp/443]", a));
        assert!(ts_contains("10.10.1.10", a));
        assert!(!ts_contains("10.10.2.0/24", a));
        assert!(!ts_contains("dynamic", a));
    }
}
