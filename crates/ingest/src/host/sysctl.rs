//! Parser of `sysctl -a` output (`key = value` lines) into a key → value map that keeps
//! the line of every value; a line that is not `key = value` is a warning, not a failure.
//!
//! Keys are kept exactly as sysctl prints them: an interface name with a dot appears with
//! a slash (`net.ipv4.conf.flannel/1.rp_filter` for `flannel.1`), as sysctl(8) writes it.

use netsleuth_model::host::{SysctlValue, Sysctls};

use crate::{ParseContext, ParseError, Source};

/// `sysctl -a`.
pub fn parse(src: &Source<'_>, ctx: &mut ParseContext) -> Result<Sysctls, ParseError> {
    let mut out = Sysctls::default();
    for (i, raw) in src.text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            ctx.warn(src.line(n), format!("expected `key = value`, found {:?}; line ignored", excerpt(line)));
            continue;
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            ctx.warn(src.line(n), format!("{:?} is not a sysctl key; line ignored", excerpt(key)));
            continue;
        }
        // Multi-field values are tab-separated (`32768\t60999`): keep them as printed.
        let value = value.trim_start_matches(' ').trim_end();
        out.values.insert(key.to_string(), SysctlValue { value: value.to_string(), origin: src.line(n) });
    }
    Ok(out)
}

/// The first 80 characters of `s`, for messages about a line of unknown length.
fn excerpt(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_string(),
    }
}
