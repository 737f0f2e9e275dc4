//! Redaction of collected text before it is written: WireGuard keys in `wg show dump`
//! output and wg-quick configs, strongSwan secrets, and secrets found in free text.
//!
//! Every secret becomes `<redacted:FINGERPRINT>` with the fingerprint the ingest parser
//! would give the original value under the same key (same unquoting and trimming), so a
//! bundle collected with `--salt S` and read with `--salt S` names the same fingerprints
//! as reading the raw files would.

use netsleuth_ingest::redact::{find_secrets, is_redacted, name_says_secret};
use netsleuth_ingest::ParseContext;
use netsleuth_model::{Location, RedactionKind};

/// A replacement of `start..end` of a text by the marker of `value`.
struct Cut {
    start: usize,
    end: usize,
    value: String,
    kind: RedactionKind,
}

/// Applies `cuts` (sorted, non-overlapping) to `text`, recording each redaction at its line.
fn apply(ctx: &mut ParseContext, rel: &str, text: &str, cuts: Vec<Cut>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for cut in cuts {
        let (Some(before), true) = (text.get(pos..cut.start), cut.start <= cut.end) else {
            continue;
        };
        out.push_str(before);
        let location = Location::line(rel, line_of(text, cut.start));
        out.push_str(&ctx.redact(cut.kind, location, &cut.value).to_string());
        pos = cut.end;
    }
    out.push_str(text.get(pos..).unwrap_or(""));
    out
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> u32 {
    let n = text.as_bytes().iter().take(at).filter(|b| **b == b'\n').count() + 1;
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// What [`wg_dump`] did besides redacting.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct DumpScrub {
    /// Lines that were not `wg show all dump` lines (5 or 9 tab-separated fields) and were
    /// dropped, since nothing tells which of their fields could be a key.
    pub(crate) dropped_lines: usize,
}

/// `wg show all dump` text: the private key (field 2 of an interface line) and the
/// preshared key (field 3 of a peer line) become markers; `(none)` stays.
pub(crate) fn wg_dump(ctx: &mut ParseContext, rel: &str, text: &str) -> (String, DumpScrub) {
    let mut out = String::with_capacity(text.len());
    let mut report = DumpScrub::default();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = line.get(body.len()..).unwrap_or("");
        if body.trim().is_empty() {
            out.push_str(line);
            continue;
        }
        let mut fields: Vec<String> = body.split('\t').map(str::to_string).collect();
        let secret = match fields.len() {
            5 => Some((1, RedactionKind::WireguardPrivateKey)),
            9 => Some((2, RedactionKind::WireguardPresharedKey)),
            _ => None,
        };
        let Some((at, kind)) = secret else {
            report.dropped_lines += 1;
            continue;
        };
        if let Some(field) = fields.get_mut(at) {
            if field != "(none)" && !is_redacted(field) {
                let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
                *field = ctx.redact(kind, Location::line(rel, n), field).to_string();
            }
        }
        out.push_str(&fields.join("\t"));
        out.push_str(ending);
    }
    (out, report)
}

/// A wg-quick config: `PrivateKey` and `PresharedKey` values (up to a `#` comment,
/// trimmed, as the parser reads them), then whatever else [`free_text`] finds.
pub(crate) fn wg_quick(ctx: &mut ParseContext, rel: &str, text: &str) -> String {
    let mut cuts = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let content = line.split_once('#').map_or(line, |(before, _)| before);
        if let Some((key, value)) = content.split_once('=') {
            let kind = match key.trim().to_ascii_lowercase().as_str() {
                "privatekey" => Some(RedactionKind::WireguardPrivateKey),
                "presharedkey" => Some(RedactionKind::WireguardPresharedKey),
                _ => None,
            };
            let trimmed = value.trim();
            if let Some(kind) = kind.filter(|_| !trimmed.is_empty() && !is_redacted(trimmed)) {
                let start = offset + key.len() + 1 + (value.len() - value.trim_start().len());
                cuts.push(Cut { start, end: start + trimmed.len(), value: trimmed.to_string(), kind });
            }
        }
        offset += line.len();
    }
    let text = apply(ctx, rel, text, cuts);
    free_text(ctx, rel, &text)
}

/// Keys whose value is secret anywhere in a swanctl config (the parser's list).
const SWANCTL_SECRET_KEYS: [&str; 5] = ["secret", "psk", "pin", "password", "passphrase"];
/// Keys of a `secrets` subsection that are not secret: identities and references to
/// key files or tokens. Every other value in `secrets` is redacted.
const SWANCTL_PUBLIC_SECRET_KEYS: [&str; 4] = ["file", "handle", "slot", "module"];

/// A swanctl.conf-format file: `secret`, `psk`, `pin`, `password`, `passphrase` values
/// anywhere, and every value in a `secrets { … }` section except `id*`, `file`,
/// `handle`, `slot` and `module`; then [`free_text`] (PEM blocks and the like).
pub(crate) fn swanctl(ctx: &mut ParseContext, rel: &str, text: &str) -> String {
    let cuts = swanctl_cuts(text);
    let text = apply(ctx, rel, text, cuts);
    free_text(ctx, rel, &text)
}

/// Lexes like the ingest swanctl parser (names, `{`, `}`, `=`, values of words and
/// quoted strings up to the end of the line, `#` or `}`), but never fails: on malformed
/// input it keeps going, so a secret in a broken file is still found.
fn swanctl_cuts(text: &str) -> Vec<Cut> {
    let mut lx = Lexer { s: text, pos: 0 };
    let mut stack: Vec<String> = Vec::new();
    // The first name of the current statement, and whether the next word starts one.
    let mut pending: Option<String> = None;
    let mut line_start = true;
    let mut cuts = Vec::new();
    while let Some(c) = lx.peek() {
        match c {
            ' ' | '\t' | '\r' => lx.bump(),
            '#' => lx.skip_to_eol(),
            '\n' => {
                // `pending` survives: a section name may stand alone before its `{`.
                lx.bump();
                line_start = true;
            }
            '{' => {
                lx.bump();
                // `name : template {` is section `name`.
                stack.push(pending.take().unwrap_or_default().trim_end_matches(':').to_string());
                line_start = true;
            }
            '}' => {
                lx.bump();
                pending = None;
                stack.pop();
                line_start = true;
            }
            '=' => {
                lx.bump();
                let key = pending.take().unwrap_or_default();
                line_start = true;
                let Some((start, end, value)) = lx.value() else {
                    continue;
                };
                let last = key.rsplit('.').next().unwrap_or(&key).to_ascii_lowercase();
                let named = SWANCTL_SECRET_KEYS.contains(&last.as_str()) || name_says_secret(&key);
                // Only a subsection of the top-level `secrets` holds credentials.
                let in_secrets = stack.len() >= 2 && stack.first().is_some_and(|s| s == "secrets");
                let secrets_value =
                    in_secrets && !last.starts_with("id") && !SWANCTL_PUBLIC_SECRET_KEYS.contains(&last.as_str());
                if (named || secrets_value) && !is_redacted(&value) {
                    let kind = if in_secrets { RedactionKind::IpsecSecret } else { RedactionKind::NamedSecret };
                    cuts.push(Cut { start, end, value, kind });
                }
            }
            '"' => {
                // Quotes outside a value are an error for strongSwan; skip the string.
                let _ = lx.quoted();
                line_start = false;
            }
            _ => {
                let name = lx.word();
                if line_start || pending.is_none() {
                    pending = Some(name);
                }
                line_start = false;
            }
        }
    }
    cuts
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.pos..).and_then(|r| r.chars().next())
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
        }
    }

    fn skip_to_eol(&mut self) {
        while !matches!(self.peek(), None | Some('\n')) {
            self.bump();
        }
    }

    fn word(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if matches!(c, '#' | '{' | '}' | '=' | '"' | '\r' | '\n' | '\t' | ' ') {
                break;
            }
            self.bump();
        }
        if self.pos == start {
            // Not a word character after all (cannot happen with the callers' dispatch):
            // step over it so the lexer always advances.
            self.bump();
        }
        self.s.get(start..self.pos).unwrap_or("").to_string()
    }

    /// A `"…"` string at the current `"`, unescaped as strongSwan does.
    fn quoted(&mut self) -> String {
        self.bump();
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.bump();
            match c {
                '"' => return out,
                '\r' => {}
                '\\' => {
                    let Some(e) = self.peek() else {
                        return out;
                    };
                    self.bump();
                    match e {
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        '\n' => {}
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
        out
    }

    /// The value after `=` (the parser's rule): words and strings up to the end of the
    /// line, `#` or `}`, joined by single spaces; with the byte range it spans.
    fn value(&mut self) -> Option<(usize, usize, String)> {
        let mut parts = Vec::new();
        let mut span: Option<(usize, usize)> = None;
        loop {
            while matches!(self.peek(), Some(' ' | '\t' | '\r')) {
                self.bump();
            }
            let start = self.pos;
            match self.peek() {
                None | Some('\n' | '#' | '}') => break,
                Some('"') => parts.push(self.quoted()),
                Some(_) => {
                    while let Some(c) = self.peek() {
                        if matches!(c, '#' | '}' | '"' | '\r' | '\n' | '\t' | ' ') {
                            break;
                        }
                        self.bump();
                    }
                    parts.push(self.s.get(start..self.pos).unwrap_or("").to_string());
                }
            }
            span = Some((span.map_or(start, |s| s.0), self.pos));
        }
        let (start, end) = span?;
        let value = parts.join(" ");
        (!value.is_empty()).then_some((start, end, value))
    }
}

/// Secrets in free text ([`find_secrets`]: PEM private key blocks, `key = value` lines
/// whose key says secret, bearer tokens, JWTs), except those already redacted.
pub(crate) fn free_text(ctx: &mut ParseContext, rel: &str, text: &str) -> String {
    free_text_where(ctx, rel, text, |_| true)
}

/// `sysctl -a` output: [`free_text`] (`tcp_fastopen_key`, `stable_secret`,
/// `netdev_rss_key`), except that a plain integer is never taken for a secret:
/// `net.ipv4.ipfrag_secret_interval = 0` is a time.
pub(crate) fn sysctl(ctx: &mut ParseContext, rel: &str, text: &str) -> String {
    free_text_where(ctx, rel, text, |v| !v.trim().bytes().all(|b| b.is_ascii_digit()))
}

/// [`free_text`] limited to the secrets for which `redact(value)` holds.
fn free_text_where(ctx: &mut ParseContext, rel: &str, text: &str, redact: impl Fn(&str) -> bool) -> String {
    let cuts = find_secrets(text)
        .into_iter()
        .filter_map(|span| {
            let secret = text.get(span.start..span.end)?;
            if secret.contains("<redacted:") || !redact(secret) {
                return None;
            }
            let value = if span.kind == RedactionKind::PrivateKeyBlock {
                // The ingest redactor fingerprints the base64 body without line breaks.
                secret.chars().filter(|c| !c.is_whitespace()).collect()
            } else {
                secret.to_string()
            };
            Some(Cut { start: span.start, end: span.end, value, kind: span.kind })
        })
        .collect();
    apply(ctx, rel, text, cuts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsleuth_ingest::Redactor;

    const PRIV: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    const PUB: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    const PSK: &str = "E7pPg7dAXnVtGzKzyUzC2Q2Wm5Cq6gS5ekzmxeQvX0o=";

    fn ctx() -> ParseContext {
        ParseContext::new(Redactor::from_salt("scrub-test"))
    }

    fn marker(ctx: &ParseContext, v: &str) -> String {
        format!("<redacted:{}>", ctx.redactor.fingerprint(v))
    }

    #[test]
    fn wg_dump_redacts_private_and_preshared_keys_only() {
        let mut c = ctx();
        let text = format!(
            "wg0\t{PRIV}\t{PUB}\t51820\toff\nwg0\t{PUB}\t{PSK}\t10.0.0.2:51820\t10.1.0.0/16\t0\t0\t0\toff\n\
             wg0\t{PUB}\t(none)\t(none)\t10.2.0.0/16\t0\t0\t0\t25\ngarbage {PSK}\n"
        );
        let (out, rep) = wg_dump(&mut c, "hosts/h/wg-dump.txt", &text);
        assert!(!out.contains(PRIV) && !out.contains(PSK), "{out}");
        assert_eq!(rep.dropped_lines, 1);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], format!("wg0\t{}\t{PUB}\t51820\toff", marker(&c, PRIV)));
        assert_eq!(lines[1], format!("wg0\t{PUB}\t{}\t10.0.0.2:51820\t10.1.0.0/16\t0\t0\t0\toff", marker(&c, PSK)));
        assert_eq!(lines[2], format!("wg0\t{PUB}\t(none)\t(none)\t10.2.0.0/16\t0\t0\t0\t25"));
        assert_eq!(lines.len(), 3);
        assert_eq!(c.redactions.len(), 2);
        assert_eq!(c.redactions[1].location, Location::line("hosts/h/wg-dump.txt", 2));
    }

    #[test]
    fn wg_quick_keys_and_comments() {
        let mut c = ctx();
        let text = format!(
            "[Interface]\nPrivateKey = {PRIV} # mine\nListenPort = 51820\n[Peer]\nPublicKey = {PUB}\n\
             presharedkey={PSK}\nAllowedIPs = 10.0.0.0/8\n"
        );
        let out = wg_quick(&mut c, "hosts/h/wireguard/wg0.conf", &text);
        assert!(!out.contains(PRIV) && !out.contains(PSK), "{out}");
        assert!(out.contains(&format!("PrivateKey = {} # mine\n", marker(&c, PRIV))), "{out}");
        assert!(out.contains(&format!("presharedkey={}\n", marker(&c, PSK))), "{out}");
        assert!(out.contains(&format!("PublicKey = {PUB}\n")));
        // Already redacted input stays as it is.
        let again = wg_quick(&mut c, "x", &out);
        assert_eq!(again, out);
    }

    #[test]
    fn swanctl_secrets_sections_quoted_and_one_line_forms() {
        let mut c = ctx();
        let text = "connections {\n  gw {\n    local {\n      auth = psk\n      id = \"gw\"\n    }\n  }\n}\n\
                    secrets {\n  ike-1 {\n    id-1 = gw\n    secret = \"s3cr3t \\\"psk\\\"\" # comment\n  }\n\
                    \x20 private-1 { file = gw.key\n secret = hunter2 }\n  eap-x { secret = a b c }\n\
                    \x20 token-1 {\n handle = 01\n pin = 1234\n }\n\
                    \x20 ppk-1 { ppk = 0xdeadbeef }\n}\n";
        let out = swanctl(&mut c, "hosts/h/swanctl/swanctl.conf", text);
        for s in ["s3cr3t", "hunter2", "a b c", "1234", "deadbeef"] {
            assert!(!out.contains(s), "{s} left in {out}");
        }
        assert!(out.contains(&format!("secret = {} # comment", marker(&c, "s3cr3t \"psk\""))), "{out}");
        assert!(out.contains(&format!("secret = {} }}", marker(&c, "hunter2"))), "{out}");
        assert!(out.contains(&format!("secret = {} }}", marker(&c, "a b c"))), "{out}");
        assert!(out.contains("file = gw.key") && out.contains("id-1 = gw") && out.contains("auth = psk"), "{out}");
        assert!(out.contains("handle = 01"), "{out}");
    }

    #[test]
    fn swanctl_psk_outside_secrets_and_pem_in_conf_d() {
        let mut c = ctx();
        let text = "connections { x { local { psk = topsecret } } }\n\
                    # -----BEGIN PRIVATE KEY-----\n# MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n# -----END PRIVATE KEY-----\n";
        let out = swanctl(&mut c, "r", text);
        assert!(!out.contains("topsecret") && !out.contains("MIIEvQ"), "{out}");
        assert!(out.contains(&format!("psk = {} }}", marker(&c, "topsecret"))), "{out}");
    }

    #[test]
    fn free_text_pem_and_named_values_keep_the_rest() {
        let mut c = ctx();
        let text = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBk\nAoGCCqGSM49\n-----END EC PRIVATE KEY-----\n\
                    net.ipv4.tcp_fastopen_key = 00000000-11111111-22222222-33333333\nnet.ipv4.ip_forward = 1\n";
        let out = free_text(&mut c, "r", text);
        assert!(!out.contains("MHcCAQ") && !out.contains("11111111"), "{out}");
        assert!(out.contains(&marker(&c, "MHcCAQEEIBkAoGCCqGSM49")), "{out}");
        assert!(out.ends_with("net.ipv4.ip_forward = 1\n"));
        assert_eq!(c.redactions[1].location, Location::line("r", 5));
    }

    #[test]
    fn sysctl_keeps_integers_of_secret_sounding_keys() {
        let mut c = ctx();
        let text = "net.ipv4.ipfrag_secret_interval = 0
net.ipv4.tcp_fastopen_key = 0a1b2c3d-00000000-00000000-00000000
                    net.core.netdev_rss_key = 5a:81:ee:02
net.ipv4.ip_forward = 1
";
        let out = sysctl(&mut c, "s", text);
        assert!(out.starts_with("net.ipv4.ipfrag_secret_interval = 0\n"), "{out}");
        assert!(!out.contains("0a1b2c3d") && !out.contains("5a:81"), "{out}");
        assert_eq!(c.redactions.len(), 2);
    }
}
