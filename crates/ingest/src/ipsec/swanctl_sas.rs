//! Parser of `swanctl --list-sas` text output into runtime IKE and CHILD SAs, with byte
//! counters, traffic selectors and ages, following the printf formats of swanctl's
//! `list_sas.c`.
//!
//! Structure: an IKE_SA header at column 1 (`name: #1, ESTABLISHED, IKEv2, spi_i* spi_r`),
//! its details indented by two spaces (`local  'id' @ addr[port]`, algorithms,
//! `established 12s ago, rekeying in 34s`), CHILD_SA headers indented by two
//! (`net: #1, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_CBC-128/...`) and their details
//! by four (`in  c1234567,    225 bytes,     3 packets`, `local  10.1.0.0/16`).
//! Empty output is valid (no SAs). Unknown indented lines are skipped (newer swanctl
//! versions add some); swanctl's own stderr noise (`plugin '...': failed to load`) is a
//! warning; any other line at column 1 that is not an IKE_SA header, or a malformed
//! header, is an error with its line, so garbage never reads as "no SAs".

use netsleuth_model::ipsec::{ChildSa, IkeSa};

use crate::{ParseContext, ParseError, Source};

/// `swanctl --list-sas`.
pub fn parse(src: &Source<'_>, ctx: &mut ParseContext) -> Result<Vec<IkeSa>, ParseError> {
    let mut sas: Vec<IkeSa> = Vec::new();
    for (index, raw) in src.text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start_matches(' ').len();
        let body = line.trim();
        if indent == 0 {
            if let Some(sa) = ike_header(src, line_no, body)? {
                sas.push(sa);
            } else {
                ctx.warn(src.line(line_no), format!("not part of `swanctl --list-sas` output, skipped: {body:?}"));
            }
            continue;
        }
        let Some(ike) = sas.last_mut() else {
            return Err(src.error_at(
                line_no,
                Some(indent + 1),
                "indented line before any IKE_SA header (`name: #1, ESTABLISHED, IKEv2, ...`)",
            ));
        };
        if indent <= 3 {
            if is_child_header(body) {
                let child = child_header(src, line_no, indent, body)?;
                ike.children.push(child);
            } else {
                ike_detail(ike, body);
            }
        } else if let Some(child) = ike.children.last_mut() {
            child_detail(child, body);
        }
        // A detail line deeper than the IKE_SA level with no CHILD_SA yet: unknown, skipped.
    }
    Ok(sas)
}

/// Lines swanctl writes to stderr that end up in captures made with `2>&1`.
fn is_swanctl_noise(body: &str) -> bool {
    body.starts_with("plugin '") || body.starts_with("connecting to '") || body.starts_with("Error: ")
}

/// `name: #1, ESTABLISHED, IKEv2, 4b69d3dd75e6dcf8_i* 86ae59ad44b677b4_r`.
/// Ok(None) for known non-SA noise; an error for anything else.
fn ike_header(src: &Source<'_>, line_no: usize, body: &str) -> Result<Option<IkeSa>, ParseError> {
    let Some((name, rest)) = body.split_once(": #") else {
        if is_swanctl_noise(body) {
            return Ok(None);
        }
        return Err(src.error_at(
            line_no,
            Some(1),
            format!("expected an IKE_SA header `name: #id, STATE, IKEvN, spi_i spi_r`, found {body:?}"),
        ));
    };
    let bad = |what: &str| src.error_at(line_no, Some(1), format!("malformed IKE_SA header ({what}): {body:?}"));
    let fields: Vec<&str> = rest.split(", ").collect();
    let [id, state, version, ..] = fields.as_slice() else {
        return Err(bad("expected `#id, STATE, IKEvN, SPIs`"));
    };
    if name.is_empty() || name.contains(' ') {
        return Err(bad("the name is empty or has blanks"));
    }
    if state.is_empty() || !state.chars().all(|c| c.is_ascii_uppercase() || c == '_' || c == '-') {
        return Err(bad("the state is not an upper-case word"));
    }
    let version = match version.strip_prefix("IKEv") {
        Some(v) => v.parse::<u8>().ok(),
        None => return Err(bad("no IKEv1/IKEv2")),
    };
    Ok(Some(IkeSa {
        name: name.to_string(),
        unique_id: id.parse().ok(),
        version,
        state: (*state).to_string(),
        local_host: None,
        local_id: None,
        remote_host: None,
        remote_id: None,
        algorithms: None,
        established_secs: None,
        rekey_in_secs: None,
        children: Vec::new(),
        origin: src.line(line_no),
    }))
}

/// `'moon.example.net' @ 198.51.100.1[4500] ...` → (id, host).
fn endpoint(rest: &str) -> (Option<String>, Option<String>) {
    let rest = rest.trim();
    let Some(quoted) = rest.strip_prefix('\'') else {
        return (None, None);
    };
    // The id may contain quotes or " @ " itself (DNs); the host part never does.
    let Some(at) = quoted.rfind("' @ ") else {
        return (quoted.strip_suffix('\'').map(str::to_string), None);
    };
    let id = quoted.get(..at).map(str::to_string);
    let host_part = quoted.get(at + 4..).unwrap_or("");
    let host_word = host_part.split_whitespace().next().unwrap_or("");
    let host = host_word.split_once('[').map_or(host_word, |(h, _)| h);
    let host = (!host.is_empty() && host != "(null)").then(|| host.to_string());
    (id.filter(|i| i != "(null)"), host)
}

/// `established 4s ago, rekeying in 14076s, reauth in ..., expires in ...`.
fn durations(body: &str) -> Vec<(&str, Option<u64>)> {
    body.split(", ")
        .map(|part| {
            let words: Vec<&str> = part.split_whitespace().collect();
            let secs = words.iter().find_map(|w| w.strip_suffix('s').and_then(|n| n.parse::<u64>().ok()));
            (words.first().copied().unwrap_or(""), secs)
        })
        .collect()
}

fn ike_detail(ike: &mut IkeSa, body: &str) {
    if let Some(rest) = body.strip_prefix("local ") {
        let (id, host) = endpoint(rest);
        ike.local_id = id;
        ike.local_host = host;
    } else if let Some(rest) = body.strip_prefix("remote ") {
        let (id, host) = endpoint(rest);
        ike.remote_id = id;
        ike.remote_host = host;
    } else if body.starts_with("established ") {
        for (word, secs) in durations(body) {
            match word {
                "established" => ike.established_secs = secs,
                "rekeying" => ike.rekey_in_secs = secs,
                _ => {}
            }
        }
    } else if !body.contains(' ') && !body.contains(':') && body.contains('/') {
        // `AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048`
        ike.algorithms = Some(body.to_string());
    }
    // queued:/active:/passive: task lists and unknown lines are not modelled.
}

fn is_child_header(body: &str) -> bool {
    body.split_once(": #").is_some_and(|(_, rest)| rest.contains(", reqid "))
}

/// `net: #1, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_CBC-128/HMAC_SHA2_256_128`.
fn child_header(src: &Source<'_>, line_no: usize, indent: usize, body: &str) -> Result<ChildSa, ParseError> {
    let bad =
        |what: &str| src.error_at(line_no, Some(indent + 1), format!("malformed CHILD_SA header ({what}): {body:?}"));
    let (name, rest) = body.split_once(": #").ok_or_else(|| bad("no `: #`"))?;
    let fields: Vec<&str> = rest.split(", ").collect();
    let [id, _reqid, state, mode, proto_algs, ..] = fields.as_slice() else {
        return Err(bad("expected `#id, reqid N, STATE, MODE, PROTO:ALGORITHMS`"));
    };
    if state.is_empty() || !state.chars().all(|c| c.is_ascii_uppercase() || c == '_' || c == '-') {
        return Err(bad("the state is not an upper-case word"));
    }
    let (mode, udp_encap) = match mode.strip_suffix("-in-UDP") {
        Some(m) => (m, true),
        None => (*mode, false),
    };
    let (protocol, algorithms) = match proto_algs.split_once(':') {
        Some((p, a)) => (p, a),
        None => (*proto_algs, ""),
    };
    let known = |s: &str| (!s.is_empty() && s != "(null)").then(|| s.to_string());
    Ok(ChildSa {
        name: name.to_string(),
        unique_id: id.parse().ok(),
        state: (*state).to_string(),
        mode: known(mode),
        protocol: known(protocol),
        udp_encap,
        spi_in: None,
        spi_out: None,
        algorithms: known(algorithms),
        bytes_in: None,
        packets_in: None,
        bytes_out: None,
        packets_out: None,
        local_ts: Vec::new(),
        remote_ts: Vec::new(),
        origin: src.line(line_no),
    })
}

/// `in  c7b90655,    141 bytes,     3 packets,     1s ago` → (spi, bytes, packets).
fn traffic(rest: &str) -> (Option<String>, Option<u64>, Option<u64>) {
    let mut parts = rest.split(',');
    let spi = parts
        .next()
        .and_then(|p| p.split_whitespace().next())
        .map(|s| s.split('/').next().unwrap_or(s).to_string())
        .filter(|s| s != "(null)");
    let (mut bytes, mut packets) = (None, None);
    for part in parts {
        let words: Vec<&str> = part.split_whitespace().collect();
        match words.as_slice() {
            [n, "bytes"] => bytes = n.parse().ok(),
            [n, "packets"] => packets = n.parse().ok(),
            _ => {}
        }
    }
    (spi, bytes, packets)
}

fn child_detail(child: &mut ChildSa, body: &str) {
    let ts = |rest: &str| -> Vec<String> { rest.split_whitespace().map(str::to_string).collect() };
    if let Some(rest) = body.strip_prefix("in ") {
        let (spi, bytes, packets) = traffic(rest);
        child.spi_in = spi;
        child.bytes_in = bytes;
        child.packets_in = packets;
    } else if let Some(rest) = body.strip_prefix("out ") {
        let (spi, bytes, packets) = traffic(rest);
        child.spi_out = spi;
        child.bytes_out = bytes;
        child.packets_out = packets;
    } else if let Some(rest) = body.strip_prefix("local ") {
        child.local_ts = ts(rest);
    } else if let Some(rest) = body.strip_prefix("remote ") {
        child.remote_ts = ts(rest);
    }
    // `installed 4s ago, rekeying in ..., expires in ...` and unknown lines: not modelled.
}
