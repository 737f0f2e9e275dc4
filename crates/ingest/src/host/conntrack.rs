//! Parsers of connection-tracking statistics: `conntrack -S` (per-CPU `key=value` counters,
//! summed here; field sets vary by kernel) and the `nf_conntrack_count` proc file.

use std::collections::BTreeMap;

use crate::{ParseContext, ParseError, Source};

/// `conntrack -S`: counters summed over CPUs.
///
/// An output without a single counter is an error rather than an empty map: empty
/// statistics would read as "no drops".
pub fn parse_stats(src: &Source<'_>, ctx: &mut ParseContext) -> Result<BTreeMap<String, u64>, ParseError> {
    let mut sums: BTreeMap<String, u64> = BTreeMap::new();
    let mut counters = 0usize;
    for (i, raw) in src.text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let mut bad = Vec::new();
        for token in line.split_whitespace() {
            let Some((key, value)) = token.split_once('=') else {
                bad.push(token);
                continue;
            };
            if key == "cpu" {
                continue;
            }
            let Ok(value) = value.parse::<u64>() else {
                bad.push(token);
                continue;
            };
            counters += 1;
            let sum = sums.entry(key.to_string()).or_insert(0);
            match sum.checked_add(value) {
                Some(s) => *sum = s,
                None => {
                    *sum = u64::MAX;
                    ctx.warn(src.line(n), format!("sum of `{key}` overflows 64 bits; kept at the maximum"));
                }
            }
        }
        if !bad.is_empty() {
            let shown: Vec<String> = bad.iter().take(3).map(|t| excerpt(t)).collect();
            ctx.warn(src.line(n), format!("expected `name=number` counters, found {}; ignored", shown.join(" ")));
        }
    }
    if counters == 0 {
        return Err(src.error_at(1, None, "no `name=number` counters: expected `conntrack -S` output"));
    }
    Ok(sums)
}

/// `cat /proc/sys/net/netfilter/nf_conntrack_count`.
pub fn parse_count(src: &Source<'_>, _ctx: &mut ParseContext) -> Result<u64, ParseError> {
    let mut lines = src.text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((i, line)) = lines.next() else {
        return Err(src.error_at(1, None, "empty file: expected one integer (nf_conntrack_count)"));
    };
    let value = line.trim();
    let count = value.parse::<u64>().map_err(|_| {
        src.error_at(i + 1, Some(1), format!("expected one integer (nf_conntrack_count), found {:?}", excerpt(value)))
    })?;
    if let Some((j, _)) = lines.next() {
        return Err(src.error_at(j + 1, Some(1), "expected one integer (nf_conntrack_count), found more lines"));
    }
    Ok(count)
}

/// The first 40 characters of `s`, for messages about input of unknown length.
fn excerpt(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_string(),
    }
}
