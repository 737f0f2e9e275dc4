//! Redaction: secrets become `<redacted:FINGERPRINT>`, a keyed BLAKE3 hash under a
//! per-bundle key, so equal secrets are still recognisably equal and nothing leaks.
//!
//! Besides the [`Redactor`], this module finds secrets inside free text (ConfigMap values,
//! env literals, annotations, arguments) so every parser redacts them the same way:
//! [`find_secrets`] locates them, [`redact_text`] and [`redact_named`] replace and record them.

use std::borrow::Cow;

use netsleuth_model::{Location, RedactionKind, Secret};

use crate::ParseContext;

/// Fingerprints secrets with a per-bundle key. The key is random unless a salt is given
/// (`--salt`), which makes fingerprints comparable across bundles.
#[derive(Clone)]
pub struct Redactor {
    key: [u8; 32],
    /// Public id of the key: a hash of it, safe to print and store in manifests.
    salt_id: String,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor").field("salt_id", &self.salt_id).finish_non_exhaustive()
    }
}

impl Redactor {
    /// A redactor keyed from a user-given salt.
    pub fn from_salt(salt: &str) -> Redactor {
        Redactor::from_key(blake3::derive_key("netsleuth 2026 redaction salt v1", salt.as_bytes()))
    }

    /// A redactor with a fresh random key (fingerprints are only comparable within the run).
    pub fn random() -> Redactor {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // No OS randomness: fall back on time and pid; still never the secret itself.
            let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
            key = blake3::derive_key("netsleuth 2026 redaction fallback", seed.as_bytes());
        }
        Redactor::from_key(key)
    }

    fn from_key(key: [u8; 32]) -> Redactor {
        let salt_id = blake3::derive_key("netsleuth 2026 salt id", &key);
        let salt_id = hex(&salt_id[..6]);
        Redactor { key, salt_id }
    }

    /// Id of the key, safe to show (`manifest.json` `salt_id`).
    pub fn salt_id(&self) -> &str {
        &self.salt_id
    }

    /// The fingerprint (24 hex digits) of a secret value.
    pub fn fingerprint(&self, value: &str) -> String {
        self.fingerprint_bytes(value.as_bytes())
    }

    /// The fingerprint of a secret that may not be text (a decoded Kubernetes Secret
    /// value). Equal to [`Redactor::fingerprint`] of the same bytes as a string.
    pub fn fingerprint_bytes(&self, value: &[u8]) -> String {
        let hash = blake3::keyed_hash(&self.key, value);
        hex(&hash.as_bytes()[..12])
    }

    pub fn secret(&self, value: &str) -> Secret {
        Secret { fingerprint: self.fingerprint(value) }
    }

    /// [`Redactor::secret`] of raw bytes.
    pub fn secret_bytes(&self, value: &[u8]) -> Secret {
        Secret { fingerprint: self.fingerprint_bytes(value) }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A secret found in free text: the byte range of the secret part (what gets replaced;
/// labels such as `PrivateKey =` stay) and what kind of secret it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretSpan {
    pub start: usize,
    pub end: usize,
    pub kind: RedactionKind,
}

/// Whether `value` is already a redaction marker (`<redacted:…>`): never redact twice.
pub fn is_redacted(value: &str) -> bool {
    let v = value.trim();
    v.starts_with("<redacted:") && v.ends_with('>') && !v[1..].contains('<')
}

/// Words of a name, upper-cased: split on non-alphanumerics and camelCase boundaries
/// (`dbPassword` → DB PASSWORD, `PSKValue` → PSK VALUE, `wg0.key` → WG0 KEY).
fn name_words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if c.is_uppercase() && !cur.is_empty() {
            let prev = chars.get(i.wrapping_sub(1)).copied().unwrap_or(' ');
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                words.push(std::mem::take(&mut cur));
            }
        }
        cur.extend(c.to_uppercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Whether a key or variable name says its value is secret: it contains PASSWORD, PASSWD,
/// SECRET, TOKEN, PRESHARED, PRIVATE_KEY, API_KEY, CREDENTIAL(S) or the word PSK, or ends
/// in KEY (but not PUBLIC_KEY). Names ending in NAME, FILE, PATH, REF, URL … hold a
/// reference to a secret rather than the secret, so they are not secret themselves.
pub fn name_says_secret(name: &str) -> bool {
    // Every secret name holds one of these; most names hold none, so this cheap test
    // (no allocation) answers first.
    const TRIGGERS: &[&[u8]] =
        &[b"PASS", b"PWD", b"SECRET", b"TOKEN", b"PRESHARED", b"PRIVATE", b"KEY", b"CREDENTIAL", b"PSK"];
    let b = name.as_bytes();
    let hit = (0..b.len()).any(|i| {
        matches!(b.get(i).map(u8::to_ascii_uppercase), Some(b'P' | b'S' | b'T' | b'K' | b'C'))
            && TRIGGERS.iter().any(|t| b.get(i..i + t.len()).is_some_and(|w| w.eq_ignore_ascii_case(t)))
    });
    if !hit {
        return false;
    }
    let words = name_words(name);
    let Some(last) = words.last() else {
        return false;
    };
    const REFERENCE_WORDS: &[&str] = &[
        "NAME",
        "NAMES",
        "NAMESPACE",
        "FILE",
        "FILES",
        "PATH",
        "DIR",
        "REF",
        "ID",
        "URL",
        "URI",
        "TTL",
        "TYPE",
        "ENABLED",
        "LENGTH",
        "VERSION",
        "MOUNT",
    ];
    if REFERENCE_WORDS.contains(&last.as_str()) {
        return false;
    }
    let joined: String = words.concat();
    const SECRET_PARTS: &[&str] =
        &["PASSWORD", "PASSWD", "SECRET", "TOKEN", "PRESHARED", "PRIVATEKEY", "APIKEY", "CREDENTIAL"];
    if SECRET_PARTS.iter().any(|p| joined.contains(p)) {
        return true;
    }
    if words.iter().any(|w| w == "PSK" || w == "PWD") {
        return true;
    }
    // `*_KEY` holds key material, except a public key (not a secret).
    if last == "KEY" || last == "KEYS" {
        let prev = words.len().checked_sub(2).and_then(|i| words.get(i));
        return !prev.is_some_and(|p| p == "PUBLIC" || p == "PUB");
    }
    false
}

/// Whether `hay` contains `needle` (upper-case ASCII), ignoring ASCII case.
fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

/// Whether free text may hold a secret at all: every rule of [`find_secrets`] needs a
/// `=`, a `:`, a PEM header, a bearer token or a JWT.
fn may_hold_secret(text: &str) -> bool {
    let b = text.as_bytes();
    b.iter().any(|c| matches!(c, b'=' | b':'))
        || text.contains("-----BEGIN")
        || text.contains("eyJ")
        || contains_ignore_case(b, b"BEARER")
}

/// Whether [`redact_named`] would change `value`: lets a caller build the location of a
/// value only when something is to be recorded there.
pub fn named_needs_redaction(name: &str, value: &str) -> bool {
    named_is_secret(name, value) || !find_secrets(value).is_empty()
}

fn named_is_secret(name: &str, value: &str) -> bool {
    name_says_secret(name) && !value.trim().is_empty() && !is_redacted(value) && !is_reference(value)
}

/// Finds the secrets in free text: PEM private key blocks, WireGuard `PrivateKey =` /
/// `PresharedKey =` lines, strongSwan `secret = …` and ipsec.secrets `: PSK "…"`,
/// `key = value` / `key: value` lines whose key says secret (see [`name_says_secret`]),
/// `Bearer <token>` and JWTs. Spans are sorted and do not overlap.
pub fn find_secrets(text: &str) -> Vec<SecretSpan> {
    let mut spans = Vec::new();
    if !may_hold_secret(text) {
        return spans;
    }
    find_pem_blocks(text, &mut spans);
    find_line_secrets(text, &mut spans);
    find_bearer_tokens(text, &mut spans);
    find_jwts(text, &mut spans);
    spans.retain(|s| s.start < s.end && !is_redacted(text.get(s.start..s.end).unwrap_or("")));
    // Earliest first; of two overlapping spans keep the one that starts first (the
    // longer when equal), so `token: Bearer eyJ…` is one redaction, not three.
    spans.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out: Vec<SecretSpan> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(prev) if s.start < prev.end => prev.end = prev.end.max(s.end),
            _ => out.push(s),
        }
    }
    out
}

/// Redacts the secrets [`find_secrets`] finds in `text`, records each at `location`, and
/// returns the text with each secret replaced by `<redacted:FINGERPRINT>`; `None` when
/// nothing was secret (the text is kept as is).
pub fn redact_text(ctx: &mut ParseContext, location: &Location, text: &str) -> Option<String> {
    let spans = find_secrets(text);
    if spans.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for s in spans {
        let (Some(before), Some(secret)) = (text.get(pos..s.start), text.get(s.start..s.end)) else {
            continue;
        };
        out.push_str(before);
        let value: Cow<'_, str> = if s.kind == RedactionKind::PrivateKeyBlock {
            // Same key whatever the line breaks: fingerprint the base64 body only.
            Cow::Owned(secret.chars().filter(|c| !c.is_whitespace()).collect())
        } else {
            Cow::Borrowed(secret)
        };
        let fp = ctx.redact(s.kind, location.clone(), &value);
        out.push_str(&fp.to_string());
        pos = s.end;
    }
    out.push_str(text.get(pos..).unwrap_or(""));
    Some(out)
}

/// Redacts a named value (env var, ConfigMap key, annotation): the whole value when the
/// name says secret (a [`RedactionKind::NamedSecret`]), else the secrets found in it as
/// free text. Returns the value to keep, or `None` when it is kept unchanged.
pub fn redact_named(ctx: &mut ParseContext, location: &Location, name: &str, value: &str) -> Option<String> {
    if named_is_secret(name, value) {
        let fp = ctx.redact(RedactionKind::NamedSecret, location.clone(), value);
        return Some(fp.to_string());
    }
    redact_text(ctx, location, value)
}

/// Redacts command-line arguments in place: each one as free text (`--token=abc`), and
/// the one after a flag whose name says secret (`--token abc`) whole. `location` gives
/// the location of argument `i`. Returns whether anything was redacted.
pub fn redact_arguments(ctx: &mut ParseContext, location: impl Fn(usize) -> Location, args: &mut [String]) -> bool {
    let mut any = false;
    let mut secret_flag: Option<String> = None;
    for (i, arg) in args.iter_mut().enumerate() {
        // The location is made only when there is something to record.
        let replaced = match secret_flag.take() {
            Some(flag) if named_needs_redaction(&flag, arg) => redact_named(ctx, &location(i), &flag, arg),
            None if !find_secrets(arg).is_empty() => redact_text(ctx, &location(i), arg),
            _ => None,
        };
        let flag = arg.trim_start_matches('-');
        if arg.starts_with('-') && !arg.contains('=') && name_says_secret(flag) {
            secret_flag = Some(flag.to_string());
        }
        if let Some(r) = replaced {
            *arg = r;
            any = true;
        }
    }
    any
}

/// `$(VAR)`, `${VAR}` and `{{ .Values.x }}` are references to a secret, not secrets.
fn is_reference(value: &str) -> bool {
    let v = value.trim();
    ((v.starts_with("${") || v.starts_with("$(")) && (v.ends_with('}') || v.ends_with(')')) && !v[2..].contains('$'))
        || (v.starts_with("{{") && v.ends_with("}}"))
}

fn find_pem_blocks(text: &str, spans: &mut Vec<SecretSpan>) {
    let mut from = 0;
    while let Some(rel) = text.get(from..).and_then(|t| t.find("-----BEGIN ")) {
        let begin = from + rel;
        let label_start = begin + "-----BEGIN ".len();
        let Some(label_len) = text.get(label_start..).and_then(|t| t.find("-----")) else {
            return;
        };
        let label = text.get(label_start..label_start + label_len).unwrap_or("");
        let body_start = label_start + label_len + 5;
        if !label.contains("PRIVATE KEY") || label.contains('\n') {
            from = body_start;
            continue;
        }
        let end = text.get(body_start..).and_then(|t| t.find("-----END ")).map_or(text.len(), |e| body_start + e);
        let (s, e) = trim_span(text, body_start, end);
        spans.push(SecretSpan { start: s, end: e, kind: RedactionKind::PrivateKeyBlock });
        from = end.max(body_start);
        if from >= text.len() {
            return;
        }
    }
}

/// Narrows `start..end` to exclude surrounding whitespace.
fn trim_span(text: &str, start: usize, end: usize) -> (usize, usize) {
    let slice = text.get(start..end).unwrap_or("");
    let lead = slice.len() - slice.trim_start().len();
    let trail = slice.len() - slice.trim_end().len();
    if lead + trail >= slice.len() {
        return (start, start);
    }
    (start + lead, end - trail)
}

/// One line of `text` with its byte offset, without the line break.
fn lines_with_offsets(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut pos = 0;
    text.split('\n').map(move |l| {
        let start = pos;
        pos += l.len() + 1;
        (start, l.strip_suffix('\r').unwrap_or(l))
    })
}

fn find_line_secrets(text: &str, spans: &mut Vec<SecretSpan>) {
    let lines: Vec<(usize, &str)> = lines_with_offsets(text).collect();
    for (idx, &(off, line)) in lines.iter().enumerate() {
        if let Some(span) = ipsec_secrets_line(line) {
            spans.push(SecretSpan { start: off + span.0, end: off + span.1, kind: RedactionKind::IpsecSecret });
            continue;
        }
        let Some((key, sep, value_at, is_flag)) = split_key_value(line) else {
            continue;
        };
        let norm: String = key.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
        let kind = match norm.as_str() {
            "privatekey" => RedactionKind::WireguardPrivateKey,
            "presharedkey" => RedactionKind::WireguardPresharedKey,
            "secret" if sep == '=' => RedactionKind::IpsecSecret,
            "authorization" | "proxyauthorization" => RedactionKind::NamedSecret,
            _ if name_says_secret(key) => RedactionKind::NamedSecret,
            _ => continue,
        };
        let rest = line.get(value_at..).unwrap_or("");
        let lead = rest.len() - rest.trim_start().len();
        let vstart = value_at + lead;
        let value = rest.trim();
        if value.is_empty() || matches!(value, "|" | "|-" | "|+" | ">" | ">-" | ">+") {
            // The value is on the following, more indented lines (a YAML block scalar).
            let indent = line.len() - line.trim_start().len();
            let mut block: Option<(usize, usize)> = None;
            for &(o2, l2) in lines.iter().skip(idx + 1) {
                if l2.trim().is_empty() {
                    continue;
                }
                if l2.len() - l2.trim_start().len() <= indent {
                    break;
                }
                let s = block.map_or(o2 + (l2.len() - l2.trim_start().len()), |b| b.0);
                block = Some((s, o2 + l2.trim_end().len()));
            }
            if let Some((s, e)) = block {
                spans.push(SecretSpan { start: s, end: e, kind });
            }
            continue;
        }
        let quoted = value.starts_with(['"', '\'']);
        if !quoted && matches!(kind, RedactionKind::WireguardPrivateKey | RedactionKind::WireguardPresharedKey) {
            // A key is base64; stopping there keeps the next line of an escaped
            // (`\n`) config, e.g. a following `PublicKey`, readable.
            let len =
                value.bytes().take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')).count();
            if len > 0 {
                spans.push(SecretSpan { start: off + vstart, end: off + vstart + len, kind });
            }
            continue;
        }
        if is_reference(value) || value == "null" || value == "~" || value == "\"\"" || value == "''" {
            continue;
        }
        let (s, mut e) = value_extent(value);
        if is_flag && s == 0 {
            // `--token=abc --verbose`: an unquoted flag value ends at the next space.
            e = value.find(char::is_whitespace).unwrap_or(e).min(e);
        }
        if s < e {
            spans.push(SecretSpan { start: off + vstart + s, end: off + vstart + e, kind });
        }
    }
}

/// The part of a value to redact: inside quotes if quoted, else up to the end of the line
/// without a trailing `,` or `;` (pretty-printed JSON, nginx-like configs).
fn value_extent(value: &str) -> (usize, usize) {
    let bytes = value.as_bytes();
    match bytes.first() {
        Some(&q @ (b'"' | b'\'')) => {
            let mut i = 1;
            while i < bytes.len() {
                match bytes.get(i) {
                    Some(b'\\') if q == b'"' => i += 2,
                    Some(&c) if c == q => return (1, i),
                    _ => i += 1,
                }
            }
            (1, bytes.len())
        }
        _ => {
            let v = value.trim_end_matches([',', ';']).trim_end();
            (0, v.len())
        }
    }
}

/// Splits `key = value`, `key: value`, `export KEY=value`, `"key": "value"` and
/// `--flag=value`; returns the key, the separator, the byte offset of the value and
/// whether the key is a command-line flag. The key must be a single token (prose such as
/// `Note: the password is` is not a key).
fn split_key_value(line: &str) -> Option<(&str, char, usize, bool)> {
    let sep_at = line.find([':', '='])?;
    let sep = char::from(*line.as_bytes().get(sep_at)?);
    let raw_key = line.get(..sep_at)?.trim();
    let raw_key = raw_key.strip_prefix("export ").map_or(raw_key, str::trim_start);
    // `--token=x` and `-p=x` are flags; `- password: x` is a YAML list item.
    let is_flag = raw_key.strip_prefix('-').is_some_and(|r| r.starts_with(|c: char| c == '-' || c.is_alphanumeric()));
    let raw_key = raw_key.trim_start_matches(['-', ' ']).trim_matches(['"', '\'']);
    if raw_key.is_empty() || !raw_key.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '@')) {
        return None;
    }
    let mut value_at = sep_at + 1;
    if sep == ':' {
        // `key: value` needs a space (or nothing) after the colon: `http://x`, `a:b`
        // and `10:20` are not keys.
        match line.as_bytes().get(value_at) {
            None | Some(b' ' | b'\t') => {}
            _ => return None,
        }
    } else if line.as_bytes().get(value_at) == Some(&b'=') {
        return None; // `==` comparison
    }
    if sep == '=' && line.as_bytes().get(value_at) == Some(&b'>') {
        value_at += 1; // `key => value`
    }
    Some((raw_key, sep, value_at, is_flag))
}

/// `[ids] : PSK "secret"` (also EAP, XAUTH, NTLM) in ipsec.secrets.
fn ipsec_secrets_line(line: &str) -> Option<(usize, usize)> {
    let colon = line.find(':')?;
    let after = line.get(colon + 1..)?;
    let trimmed = after.trim_start();
    let word_end = trimmed.find(char::is_whitespace)?;
    if !matches!(trimmed.get(..word_end)?, "PSK" | "EAP" | "XAUTH" | "NTLM") {
        return None;
    }
    let value = trimmed.get(word_end..)?;
    let vstart = colon + 1 + (after.len() - trimmed.len()) + word_end + (value.len() - value.trim_start().len());
    let value = value.trim();
    let (s, e) = if value.starts_with('"') {
        value_extent(value)
    } else {
        (0, value.find(|c: char| c.is_whitespace() || c == '#').unwrap_or(value.len()))
    };
    (s < e).then_some((vstart + s, vstart + e))
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

fn find_bearer_tokens(text: &str, spans: &mut Vec<SecretSpan>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 7 < bytes.len() {
        let is_bearer = bytes.get(i..i + 6).is_some_and(|w| w.eq_ignore_ascii_case(b"bearer"))
            && bytes.get(i + 6).is_some_and(|b| *b == b' ' || *b == b'\t')
            && (i == 0 || bytes.get(i - 1).is_some_and(|b| !b.is_ascii_alphanumeric()));
        if !is_bearer {
            i += 1;
            continue;
        }
        let mut s = i + 6;
        while bytes.get(s).is_some_and(|b| *b == b' ' || *b == b'\t') {
            s += 1;
        }
        let mut e = s;
        while bytes.get(e).copied().is_some_and(is_token_byte) {
            e += 1;
        }
        let token = bytes.get(s..e).unwrap_or(&[]);
        // Prose ("Bearer authentication") has no digits or token punctuation.
        let looks_like_token = token.len() >= 16
            && token.iter().any(|b| b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_' | b'+' | b'/' | b'='));
        if looks_like_token {
            spans.push(SecretSpan { start: s, end: e, kind: RedactionKind::BearerToken });
        }
        i = e.max(i + 1);
    }
}

fn find_jwts(text: &str, spans: &mut Vec<SecretSpan>) {
    let bytes = text.as_bytes();
    let b64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let mut from = 0;
    while let Some(rel) = text.get(from..).and_then(|t| t.find("eyJ")) {
        let start = from + rel;
        from = start + 3;
        if start > 0 && bytes.get(start - 1).copied().is_some_and(b64url) {
            continue;
        }
        let seg = |mut p: usize| {
            let s = p;
            while bytes.get(p).copied().is_some_and(b64url) {
                p += 1;
            }
            (p, p - s)
        };
        let (p1, l1) = seg(start);
        if l1 < 10 || bytes.get(p1) != Some(&b'.') {
            continue;
        }
        let (p2, l2) = seg(p1 + 1);
        if l2 < 2 || bytes.get(p2) != Some(&b'.') {
            continue;
        }
        let (p3, _) = seg(p2 + 1);
        spans.push(SecretSpan { start, end: p3, kind: RedactionKind::BearerToken });
        from = p3;
    }
}

/// Escapes a JSON pointer token (RFC 6901: `~` → `~0`, `/` → `~1`).
pub fn pointer_token(token: &str) -> Cow<'_, str> {
    if token.contains(['~', '/']) {
        Cow::Owned(token.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(token)
    }
}

/// Removes string contents from a serde error message (`invalid type: string "…"` quotes
/// the offending value, which might be a secret typed into the wrong field); the JSON
/// pointer and line of the warning still locate it.
pub fn scrub_error_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("string \"") {
        out.push_str(rest.get(..at).unwrap_or(""));
        let quoted = rest.get(at + 8..).unwrap_or("");
        let bytes = quoted.as_bytes();
        let mut i = 0;
        let mut chars = 0usize;
        while i < bytes.len() {
            match bytes.get(i) {
                Some(b'\\') => i += 2,
                Some(b'"') => break,
                _ => i += 1,
            }
            chars += 1;
        }
        out.push_str(&format!("a string of {chars} characters"));
        rest = quoted.get((i + 1).min(quoted.len())..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_salt_same_fingerprint_and_no_leak() {
        let a = Redactor::from_salt("s1");
        let b = Redactor::from_salt("s1");
        let c = Redactor::from_salt("s2");
        let key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
        assert_eq!(a.fingerprint(key), b.fingerprint(key));
        assert_ne!(a.fingerprint(key), c.fingerprint(key));
        assert_ne!(a.fingerprint(key), a.fingerprint("other"));
        assert!(!a.secret(key).to_string().contains(key));
        assert!(a.secret(key).to_string().starts_with("<redacted:"));
        assert_eq!(a.fingerprint(key), a.fingerprint_bytes(key.as_bytes()));
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(Redactor::random().fingerprint("x"), Redactor::random().fingerprint("x"));
    }

    #[test]
    fn secret_names() {
        for n in [
            "WG_PRIVATE_KEY",
            "wgPresharedKey",
            "IPSEC_PSK",
            "psk",
            "DB_PASSWORD",
            "dbpassword",
            "MYSQL_ROOT_PASSWD",
            "GITHUB_TOKEN",
            "api_key",
            "AWS_SECRET_ACCESS_KEY",
            "client-secret",
            "ENCRYPTION_KEY",
            "wg0.key",
        ] {
            assert!(name_says_secret(n), "{n}");
        }
        for n in
            ["WG_PUBLIC_KEY", "PublicKey", "LOG_LEVEL", "SECRET_NAME", "TOKEN_FILE", "AWS_ACCESS_KEY_ID", "", "UPSKILL"]
        {
            assert!(!name_says_secret(n), "{n}");
        }
    }

    fn found(text: &str) -> Vec<(&str, RedactionKind)> {
        find_secrets(text).iter().map(|s| (&text[s.start..s.end], s.kind)).collect()
    }

    #[test]
    fn wireguard_config_keeps_public_key() {
        let conf = "[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\nListenPort = 51820\n\n\
                    [Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\n\
                    PresharedKey = E7pPg7dAXnVtGzKzyUzC2Q2Wm5Cq6gS5ekzmxeQvX0o=\nAllowedIPs = 10.0.0.0/8\n";
        assert_eq!(
            found(conf),
            vec![
                ("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=", RedactionKind::WireguardPrivateKey),
                ("E7pPg7dAXnVtGzKzyUzC2Q2Wm5Cq6gS5ekzmxeQvX0o=", RedactionKind::WireguardPresharedKey),
            ]
        );
    }

    #[test]
    fn ipsec_pem_bearer_jwt_named() {
        assert_eq!(
            found("secrets {\n  ike-1 {\n    secret = \"s3cr3t psk\"\n  }\n}"),
            vec![("s3cr3t psk", RedactionKind::IpsecSecret)]
        );
        assert_eq!(
            found("%any 198.51.100.1 : PSK \"v3ry-secret\"\n"),
            vec![("v3ry-secret", RedactionKind::IpsecSecret)]
        );
        let pem = "key: |\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBk\nAoGCCqGSM49\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(found(pem), vec![("MHcCAQEEIBk\nAoGCCqGSM49", RedactionKind::PrivateKeyBlock)]);
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert!(found(cert).is_empty());
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        assert_eq!(found(&format!("curl -H 'Authorization: Bearer {jwt}'")), vec![(jwt, RedactionKind::BearerToken)]);
        assert_eq!(found(&format!("token is {jwt} ok")), vec![(jwt, RedactionKind::BearerToken)]);
        assert!(found("Bearer authentication is required").is_empty());
        assert_eq!(found("DB_PASSWORD=hunter2\nLOG=debug"), vec![("hunter2", RedactionKind::NamedSecret)]);
        assert_eq!(found("  \"password\": \"p@ss, word\",\n"), vec![("p@ss, word", RedactionKind::NamedSecret)]);
        assert_eq!(found("--api-token=abc123 --verbose"), vec![("abc123", RedactionKind::NamedSecret)]);
        assert_eq!(
            found("password: |\n  line1\n  line2\nother: x"),
            vec![("line1\n  line2", RedactionKind::NamedSecret)]
        );
        assert_eq!(
            found("privateKey: \"abc=\"\nPresharedKey:\n  def=\n"),
            vec![("abc=", RedactionKind::WireguardPrivateKey), ("def=", RedactionKind::WireguardPresharedKey)]
        );
        assert_eq!(found("- password: my pass phrase"), vec![("my pass phrase", RedactionKind::NamedSecret)]);
        assert!(found("url: http://x:80\npassword: ${DB_PASSWORD}\nsecretName: tls").is_empty());
    }

    #[test]
    fn redact_text_replaces_and_records() {
        let mut ctx = ParseContext::new(Redactor::from_salt("t"));
        let loc = Location::json("k.json", "/items/0/data/wg0.conf");
        let text = "[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n";
        let out = redact_text(&mut ctx, &loc, text).unwrap();
        assert!(!out.contains("yAnz5TF"));
        let fp = ctx.redactor.fingerprint("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=");
        assert_eq!(out, format!("[Interface]\nPrivateKey = <redacted:{fp}>\n"));
        assert_eq!(ctx.redactions.len(), 1);
        assert_eq!(ctx.redactions[0].location, loc);
        // Redacting the output again finds nothing new.
        assert_eq!(redact_text(&mut ctx, &loc, &out), None);
        assert_eq!(redact_named(&mut ctx, &loc, "WG_PSK", "abc"), Some(ctx.redactor.secret("abc").to_string()));
        assert_eq!(redact_named(&mut ctx, &loc, "LOG_LEVEL", "debug"), None);
    }

    #[test]
    fn scrubbed_messages() {
        assert_eq!(
            scrub_error_message("invalid type: string \"hunter\\\"2\", expected u16 at line 3"),
            "invalid type: a string of 8 characters, expected u16 at line 3"
        );
        assert_eq!(scrub_error_message("missing field `name`"), "missing field `name`");
    }
}
