//! Parsers of WireGuard state: `wg show all dump` (runtime) and wg-quick `.conf` files,
//! and their merge per interface. Private and preshared keys only pass through
//! `ParseContext::redact`: the model holds fingerprints, never a key.
//!
//! Merge rule: runtime state wins for everything it reports (keys, port, fwmark, peers and
//! their AllowedIPs, which may differ from the config after an overlap); a config adds
//! what only wg-quick knows (Address, MTU, Table) and peers the runtime lacks. A config-only
//! peer keeps its config file as `origin`, which is how callers tell it apart.

use std::net::IpAddr;

use ipnet::IpNet;
use netsleuth_model::wireguard::{WireGuardInterface, WireGuardPeer};
use netsleuth_model::{Location, RedactionKind};

use crate::{ParseContext, ParseError, Source};

/// `wg show all dump`.
pub fn parse_dump(src: &Source<'_>, ctx: &mut ParseContext) -> Result<Vec<WireGuardInterface>, ParseError> {
    let mut out: Vec<WireGuardInterface> = Vec::new();
    for (i, raw) in src.text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            [iface, private, public, port, fwmark] => {
                let loc = src.line(n);
                let private_key = match *private {
                    "(none)" => None,
                    key => Some(ctx.redact(RedactionKind::WireguardPrivateKey, loc.clone(), key)),
                };
                let public_key = match *public {
                    "(none)" => None,
                    key => Some(dump_key(src, n, key, "public key")?),
                };
                let listen_port = match dump_number(src, n, port, "listen port")? {
                    0 => None,
                    p => Some(
                        u16::try_from(p)
                            .map_err(|_| src.error_at(n, None, format!("listen port {p} is over 65535")))?,
                    ),
                };
                let fwmark = match *fwmark {
                    "off" => None,
                    m => Some(parse_mark(m).ok_or_else(|| {
                        src.error_at(n, None, format!("fwmark {:?}: expected `off` or a number", excerpt(m)))
                    })?),
                };
                let iface = WireGuardInterface {
                    name: dump_name(src, n, iface)?,
                    private_key,
                    public_key,
                    listen_port,
                    fwmark,
                    addresses: Vec::new(),
                    mtu: None,
                    table: None,
                    peers: Vec::new(),
                    origin: loc,
                    from_runtime: true,
                };
                match out.iter_mut().find(|i| i.name == iface.name) {
                    Some(existing) => {
                        ctx.warn(src.line(n), format!("interface {} listed twice; the later line wins", iface.name));
                        let peers = std::mem::take(&mut existing.peers);
                        *existing = WireGuardInterface { peers, ..iface };
                    }
                    None => out.push(iface),
                }
            }
            [iface, public, psk, endpoint, allowed, handshake, rx, tx, keepalive] => {
                let loc = src.line(n);
                let name = dump_name(src, n, iface)?;
                let preshared_key = match *psk {
                    "(none)" => None,
                    key => Some(ctx.redact(RedactionKind::WireguardPresharedKey, loc.clone(), key)),
                };
                let allowed_ips = match *allowed {
                    "(none)" | "" => Vec::new(),
                    list => list
                        .split(',')
                        .map(|s| {
                            parse_net(s).ok_or_else(|| {
                                src.error_at(
                                    n,
                                    None,
                                    format!("allowed IP {:?}: expected an address/prefix", excerpt(s)),
                                )
                            })
                        })
                        .collect::<Result<_, _>>()?,
                };
                let latest_handshake = match dump_number(src, n, handshake, "latest handshake")? {
                    0 => None,
                    t => Some(i64::try_from(t).map_err(|_| src.error_at(n, None, "latest handshake is out of range"))?),
                };
                let persistent_keepalive = match *keepalive {
                    "off" | "0" => None,
                    k => Some(k.parse::<u16>().map_err(|_| {
                        src.error_at(
                            n,
                            None,
                            format!("persistent keepalive {:?}: expected `off` or seconds", excerpt(k)),
                        )
                    })?),
                };
                let peer = WireGuardPeer {
                    public_key: dump_key(src, n, public, "peer public key")?,
                    preshared_key,
                    endpoint: match *endpoint {
                        "(none)" | "" => None,
                        e => Some(e.to_string()),
                    },
                    allowed_ips,
                    latest_handshake,
                    rx_bytes: Some(dump_number(src, n, rx, "received bytes")?),
                    tx_bytes: Some(dump_number(src, n, tx, "sent bytes")?),
                    persistent_keepalive,
                    origin: loc,
                };
                match out.iter_mut().find(|i| i.name == name) {
                    Some(i) => i.peers.push(peer),
                    None => {
                        // `wg show all dump` prints the interface line first; keep the peer anyway.
                        ctx.warn(src.line(n), format!("peer of interface {name} before any line for that interface"));
                        out.push(WireGuardInterface {
                            name,
                            private_key: None,
                            public_key: None,
                            listen_port: None,
                            fwmark: None,
                            addresses: Vec::new(),
                            mtu: None,
                            table: None,
                            peers: vec![peer],
                            origin: src.line(n),
                            from_runtime: true,
                        });
                    }
                }
            }
            other => {
                return Err(src.error_at(
                    n,
                    None,
                    format!(
                        "{} tab-separated fields: expected 5 (interface, private-key, public-key, listen-port, \
                         fwmark) or 9 (interface, public-key, preshared-key, endpoint, allowed-ips, \
                         latest-handshake, rx, tx, persistent-keepalive) as `wg show all dump` prints",
                        other.len()
                    ),
                ))
            }
        }
    }
    Ok(out)
}

fn dump_name(src: &Source<'_>, n: usize, name: &str) -> Result<String, ParseError> {
    // Linux interface names: 1..15 bytes, no whitespace or slash.
    if name.is_empty() || name.len() > 15 || name.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(src.error_at(n, Some(1), format!("{:?} is not an interface name", excerpt(name))));
    }
    Ok(name.to_string())
}

fn dump_number(src: &Source<'_>, n: usize, s: &str, what: &str) -> Result<u64, ParseError> {
    s.parse().map_err(|_| src.error_at(n, None, format!("{what} {:?}: expected a number", excerpt(s))))
}

fn dump_key(src: &Source<'_>, n: usize, key: &str, what: &str) -> Result<String, ParseError> {
    if is_key(key) {
        Ok(key.to_string())
    } else {
        Err(src.error_at(n, None, format!("{what} {:?}: expected a base64 WireGuard key", excerpt(key))))
    }
}

/// A WireGuard key: 32 bytes in base64, 44 characters ending in `=`.
fn is_key(s: &str) -> bool {
    s.len() == 44 && s.ends_with('=') && s[..43].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

fn parse_mark(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `10.0.0.0/8`, or a bare address (wg and wg-quick read it as a host prefix).
fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if s.contains('/') {
        return s.parse().ok();
    }
    let addr: IpAddr = s.parse().ok()?;
    Some(IpNet::from(addr))
}

fn excerpt(s: &str) -> String {
    let masked = mask_key_like(s);
    match masked.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &masked[..cut]),
        None => masked,
    }
}

/// Error messages quote what they could not read; on a malformed line that may be a key in
/// the wrong place (`PrivateKey: ...`, a shifted dump column). Runs of 20 or more base64
/// characters are replaced by their length, so no key is ever echoed.
fn mask_key_like(s: &str) -> String {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 20 {
            out.push_str(&format!("<{} base64 characters>", run.chars().count()));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in s.chars() {
        if is_b64(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Section {
    None,
    Interface,
    Peer,
}

/// A wg-quick config `wireguard/<name>.conf`; `name` is the interface name (file stem).
///
/// Keys are matched case-insensitively as `wg setconf` does (wg-quick itself is stricter
/// for its own keys). A line that is neither a section, a comment nor `key = value` is an
/// error; a bad value is a warning with its line, and the rest is kept.
pub fn parse_config(src: &Source<'_>, name: &str, ctx: &mut ParseContext) -> Result<WireGuardInterface, ParseError> {
    let mut iface = WireGuardInterface {
        name: name.to_string(),
        private_key: None,
        public_key: None,
        listen_port: None,
        fwmark: None,
        addresses: Vec::new(),
        mtu: None,
        table: None,
        peers: Vec::new(),
        origin: Location::file(src.path),
        from_runtime: false,
    };
    let mut section = Section::None;
    let mut seen_interface = false;
    // The peer being read, with the line of its `[Peer]` header.
    let mut peer: Option<(usize, PeerDraft)> = None;
    for (i, raw) in src.text.lines().enumerate() {
        let n = i + 1;
        let line = raw.split_once('#').map_or(raw, |(before, _)| before).trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            if let Some((start, draft)) = peer.take() {
                finish_peer(src, start, draft, &mut iface, ctx);
            }
            section = match line.to_ascii_lowercase().as_str() {
                "[interface]" => {
                    if seen_interface {
                        ctx.warn(src.line(n), "second [Interface] section; its keys add to the first");
                    }
                    seen_interface = true;
                    iface.origin = src.line(n);
                    Section::Interface
                }
                "[peer]" => {
                    peer = Some((n, PeerDraft::default()));
                    Section::Peer
                }
                _ => {
                    return Err(src.error_at(
                        n,
                        Some(1),
                        format!("unknown section {:?}: expected [Interface] or [Peer]", excerpt(line)),
                    ))
                }
            };
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(src.error_at(n, Some(1), format!("expected `Key = Value`, found {:?}", excerpt(line))));
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        match (section, peer.as_mut()) {
            (Section::None, _) => {
                return Err(src.error_at(n, Some(1), "key before any [Interface] or [Peer] section"));
            }
            (Section::Interface, _) => interface_key(src, n, &key, value, &mut iface, ctx),
            (Section::Peer, Some((_, draft))) => peer_key(src, n, &key, value, draft, ctx),
            (Section::Peer, None) => {}
        }
    }
    if let Some((start, draft)) = peer.take() {
        finish_peer(src, start, draft, &mut iface, ctx);
    }
    if !seen_interface {
        ctx.warn(Location::file(src.path), "no [Interface] section");
    }
    Ok(iface)
}

fn interface_key(
    src: &Source<'_>,
    n: usize,
    key: &str,
    value: &str,
    iface: &mut WireGuardInterface,
    ctx: &mut ParseContext,
) {
    match key {
        "privatekey" => iface.private_key = Some(ctx.redact(RedactionKind::WireguardPrivateKey, src.line(n), value)),
        "address" => iface.addresses.extend(net_list(src, n, "Address", value, ctx)),
        "listenport" => iface.listen_port = number(src, n, "ListenPort", value, ctx),
        "mtu" => iface.mtu = number(src, n, "MTU", value, ctx),
        "table" => iface.table = Some(value.to_string()),
        "fwmark" => {
            iface.fwmark = match value {
                "off" | "0" => None,
                v => parse_mark(v).or_else(|| {
                    ctx.warn(src.line(n), format!("FwMark {:?}: expected `off` or a number; ignored", excerpt(v)));
                    None
                }),
            }
        }
        // wg-quick-only settings that do not describe the tunnel itself.
        "dns" | "preup" | "postup" | "predown" | "postdown" | "saveconfig" => {}
        other => ctx.warn(src.line(n), format!("unknown [Interface] key {:?}; ignored", excerpt(other))),
    }
}

#[derive(Default)]
struct PeerDraft {
    public_key: Option<String>,
    preshared_key: Option<netsleuth_model::Secret>,
    endpoint: Option<String>,
    allowed_ips: Vec<IpNet>,
    persistent_keepalive: Option<u16>,
}

fn peer_key(src: &Source<'_>, n: usize, key: &str, value: &str, draft: &mut PeerDraft, ctx: &mut ParseContext) {
    match key {
        "publickey" => {
            if !is_key(value) {
                ctx.warn(src.line(n), format!("PublicKey {:?} is not a base64 WireGuard key", excerpt(value)));
            }
            draft.public_key = Some(value.to_string());
        }
        "presharedkey" => {
            draft.preshared_key = Some(ctx.redact(RedactionKind::WireguardPresharedKey, src.line(n), value));
        }
        "allowedips" => draft.allowed_ips.extend(net_list(src, n, "AllowedIPs", value, ctx)),
        "endpoint" => draft.endpoint = Some(value.to_string()),
        "persistentkeepalive" => {
            draft.persistent_keepalive = match value {
                "off" | "0" => None,
                v => number(src, n, "PersistentKeepalive", v, ctx),
            }
        }
        other => ctx.warn(src.line(n), format!("unknown [Peer] key {:?}; ignored", excerpt(other))),
    }
}

fn finish_peer(
    src: &Source<'_>,
    start: usize,
    draft: PeerDraft,
    iface: &mut WireGuardInterface,
    ctx: &mut ParseContext,
) {
    let Some(public_key) = draft.public_key else {
        // wg refuses such a config; the rest of the file is still worth reading.
        ctx.warn(src.line(start), "[Peer] without PublicKey; skipped (wg setconf would reject it)");
        return;
    };
    iface.peers.push(WireGuardPeer {
        public_key,
        preshared_key: draft.preshared_key,
        endpoint: draft.endpoint,
        allowed_ips: draft.allowed_ips,
        latest_handshake: None,
        rx_bytes: None,
        tx_bytes: None,
        persistent_keepalive: draft.persistent_keepalive,
        origin: src.line(start),
    });
}

fn net_list(src: &Source<'_>, n: usize, what: &str, value: &str, ctx: &mut ParseContext) -> Vec<IpNet> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match parse_net(item) {
            Some(net) => out.push(net),
            None => ctx.warn(src.line(n), format!("{what} {:?} is not an address/prefix; ignored", excerpt(item))),
        }
    }
    out
}

fn number<T: std::str::FromStr>(
    src: &Source<'_>,
    n: usize,
    what: &str,
    value: &str,
    ctx: &mut ParseContext,
) -> Option<T> {
    match value.parse() {
        Ok(v) => Some(v),
        Err(_) => {
            ctx.warn(src.line(n), format!("{what} {:?} is not a valid number; ignored", excerpt(value)));
            None
        }
    }
}

/// Merges runtime state and configs of the same interface name (see the module docs).
pub fn merge(runtime: Vec<WireGuardInterface>, configs: Vec<WireGuardInterface>) -> Vec<WireGuardInterface> {
    let mut out = runtime;
    for config in configs {
        let Some(live) = out.iter_mut().find(|i| i.from_runtime && i.name == config.name) else {
            out.push(config);
            continue;
        };
        // A dump never has these; keys, port and fwmark stay as the runtime reports them,
        // even `(none)`/`off`, since a config value would hide that it was not applied.
        live.addresses = config.addresses;
        live.mtu = config.mtu;
        live.table = config.table;
        for peer in config.peers {
            if !live.peers.iter().any(|p| p.public_key == peer.public_key) {
                live.peers.push(peer);
            }
        }
    }
    out
}

#[cfg(test)]
mod excerpt_tests {
    use super::*;

    #[test]
    fn malformed_lines_never_echo_a_key() {
        let key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
        let mut ctx = ParseContext::default();
        let text = format!("[Interface]\nPrivateKey: {key}\n");
        let result = parse_config(&Source::new("hosts/h/wireguard/wg0.conf", &text), "wg0", &mut ctx);
        let mut messages: Vec<String> = ctx.issues.iter().map(|i| i.message.clone()).collect();
        if let Err(e) = &result {
            messages.push(e.message.clone());
        }
        assert!(!messages.is_empty(), "a malformed line must be reported");
        for m in &messages {
            assert!(!m.contains(key), "{m}");
        }
        assert!(messages.iter().any(|m| m.contains(" base64 characters>")), "{messages:?}");
        assert_eq!(excerpt("10.0.0.0/8x"), "10.0.0.0/8x");
    }
}
