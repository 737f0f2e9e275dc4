//! Parser of `/etc/resolv.conf`: nameservers, search list and options, read the way glibc
//! reads them (last `search`/`domain` wins; every `options` line adds to the options).
//!
//! Limits glibc applies (3 nameservers, ndots capped at 15 ...) are not applied here: the
//! file is kept as written so rules can point at what exceeds them.

use std::net::IpAddr;

use netsleuth_model::host::{Nameserver, ResolvConf};
use netsleuth_model::Location;

use crate::{ParseContext, ParseError, Source};

/// `/etc/resolv.conf`.
pub fn parse(src: &Source<'_>, ctx: &mut ParseContext) -> Result<ResolvConf, ParseError> {
    let mut conf = ResolvConf { origin: Location::file(src.path), ..ResolvConf::default() };
    for (i, raw) in src.text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let mut words = line.split_whitespace();
        let Some(keyword) = words.next() else {
            continue;
        };
        match keyword {
            "nameserver" => match words.next() {
                Some(addr) => match parse_nameserver(addr) {
                    Some(addr) => conf.nameservers.push(Nameserver { addr, origin: src.line(n) }),
                    None => {
                        ctx.warn(src.line(n), format!("nameserver {:?} is not an IP address; ignored", excerpt(addr)))
                    }
                },
                None => ctx.warn(src.line(n), "`nameserver` without an address; ignored"),
            },
            // glibc: `domain` and `search` replace each other; the last one wins.
            "search" | "domain" => {
                let list: Vec<String> = words.map(str::to_string).collect();
                if list.is_empty() {
                    ctx.warn(src.line(n), format!("`{keyword}` without a domain; ignored"));
                    continue;
                }
                conf.search = if keyword == "domain" { list.into_iter().take(1).collect() } else { list };
                conf.search_origin = Some(src.line(n));
            }
            "options" => {
                for opt in words {
                    apply_option(&mut conf, opt, src, n, ctx);
                    conf.options.push(opt.to_string());
                }
                conf.options_origin = Some(src.line(n));
            }
            // Valid glibc keywords this model does not hold.
            "sortlist" | "lookup" | "family" => {}
            other => ctx.warn(src.line(n), format!("unknown keyword {:?}; line ignored", excerpt(other))),
        }
    }
    Ok(conf)
}

/// An address, with an IPv6 zone (`fe80::1%eth0`) dropped: the model keeps the address only.
fn parse_nameserver(s: &str) -> Option<IpAddr> {
    let addr = s.split_once('%').map_or(s, |(a, _)| a);
    addr.parse().ok()
}

fn apply_option(conf: &mut ResolvConf, opt: &str, src: &Source<'_>, n: usize, ctx: &mut ParseContext) {
    let Some((name, value)) = opt.split_once(':') else {
        return;
    };
    let slot = match name {
        "ndots" => &mut conf.ndots,
        "timeout" => &mut conf.timeout,
        "attempts" => &mut conf.attempts,
        _ => return,
    };
    match value.parse::<u32>() {
        Ok(v) => *slot = Some(v),
        Err(_) => ctx.warn(src.line(n), format!("option {:?}: expected a number after `{name}:`", excerpt(opt))),
    }
}

/// The first 60 characters of `s`, for messages about input of unknown length.
fn excerpt(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_string(),
    }
}
