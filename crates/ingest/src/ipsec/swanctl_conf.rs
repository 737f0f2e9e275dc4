//! Parser of swanctl.conf files (strongSwan's settings syntax) into IPsec connections and
//! secret fingerprints; secret values go only through `ParseContext::redact`.
//!
//! The syntax follows strongSwan's settings lexer/grammar (`settings_lexer.l`,
//! `settings_parser.y`): `name { ... }` sections (the `{` may follow on the next line),
//! `key = value` where the value runs to the end of the line, a `#` or a `}`, whitespace
//! between value words collapsed to one space, `"..."` strings with `\n`, `\t`, `\"`
//! escapes and line continuations, `#` comments, `include PATTERN` lines (recorded, not
//! followed: the bundle reader parses every file of the folder), and repeated sections or
//! keys merged (the last value wins). Section references (`name : template {`) are
//! accepted; the referenced templates are not expanded (a warning says so).

use std::collections::BTreeMap;

use netsleuth_model::ipsec::{IpsecAuth, IpsecChild, IpsecConnection, IpsecSecret};
use netsleuth_model::RedactionKind;

use crate::{ParseContext, ParseError, Source};

/// Connections and secrets of one swanctl.conf-format file.
#[derive(Debug, Default)]
pub struct SwanctlConfig {
    pub connections: Vec<IpsecConnection>,
    pub secrets: Vec<IpsecSecret>,
    /// Patterns of `include` lines, as written (not followed).
    pub includes: Vec<String>,
}

/// One file of `swanctl/` (swanctl.conf or conf.d/*.conf). `include` lines are not
/// followed: the bundle reader parses every file of the folder.
pub fn parse(src: &Source<'_>, ctx: &mut ParseContext) -> Result<SwanctlConfig, ParseError> {
    let doc = parse_document(src)?;
    let mut out = SwanctlConfig { includes: doc.includes, ..SwanctlConfig::default() };
    let root = doc.root;
    for section in &root.sections {
        match section.name.as_str() {
            "connections" => {
                for conn in &section.sections {
                    out.connections.push(connection(src, ctx, conn));
                }
                warn_stray_keys(src, ctx, section, "connections");
            }
            "secrets" => {
                for secret in &section.sections {
                    out.secrets.push(secret_of(src, ctx, secret));
                }
                warn_stray_keys(src, ctx, section, "secrets");
            }
            // authorities, pools: not part of the model.
            _ => {}
        }
    }
    Ok(out)
}

fn warn_stray_keys(src: &Source<'_>, ctx: &mut ParseContext, section: &Section, what: &str) {
    for kv in &section.keys {
        ctx.warn(src.line(kv.line), format!("key `{}` directly in `{what}` is ignored by swanctl", kv.key));
    }
}

// ---------------------------------------------------------------------------------------
// Syntax tree and lexer/parser of the settings format.

#[derive(Debug, Default)]
struct Section {
    name: String,
    line: usize,
    /// Templates named in `name : a, b {` (not expanded).
    refs: Vec<String>,
    keys: Vec<Setting>,
    sections: Vec<Section>,
}

#[derive(Debug)]
struct Setting {
    key: String,
    value: String,
    line: usize,
}

impl Section {
    fn get(&self, key: &str) -> Option<&Setting> {
        self.keys.iter().find(|k| k.key == key)
    }

    /// Adds a key; a repeated key replaces the earlier value (strongSwan keeps the last).
    fn set(&mut self, kv: Setting) {
        match self.keys.iter_mut().find(|k| k.key == kv.key) {
            Some(existing) => *existing = kv,
            None => self.keys.push(kv),
        }
    }

    /// Adds a subsection; a repeated section extends the earlier one.
    fn add_section(&mut self, section: Section) {
        match self.sections.iter_mut().find(|s| s.name == section.name) {
            Some(existing) => {
                for kv in section.keys {
                    existing.set(kv);
                }
                for sub in section.sections {
                    existing.add_section(sub);
                }
            }
            None => self.sections.push(section),
        }
    }
}

struct Document {
    root: Section,
    includes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Newline,
    Open,
    Close,
    Eq,
    Name(String),
    Include(String),
    Eof,
}

struct Lexer<'a> {
    src: &'a Source<'a>,
    chars: Vec<char>,
    pos: usize,
    line: usize,
    col: usize,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a Source<'a>) -> Lexer<'a> {
        Lexer { src, chars: src.text.chars().collect(), pos: 0, line: 1, col: 1 }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn error(&self, line: usize, col: usize, msg: impl Into<String>) -> ParseError {
        self.src.error_at(line, Some(col), msg)
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\r')) {
            self.bump();
        }
    }

    /// Next token outside a value, with the line and column where it starts.
    fn next(&mut self) -> Result<(Tok, usize, usize), ParseError> {
        self.skip_blanks();
        if self.peek() == Some('#') {
            while !matches!(self.peek(), None | Some('\n')) {
                self.bump();
            }
        }
        let (line, col) = (self.line, self.col);
        let Some(c) = self.peek() else {
            return Ok((Tok::Eof, line, col));
        };
        let tok = match c {
            '\n' => {
                self.bump();
                Tok::Newline
            }
            '{' => {
                self.bump();
                Tok::Open
            }
            '}' => {
                self.bump();
                Tok::Close
            }
            '=' => {
                self.bump();
                Tok::Eq
            }
            '"' => return Err(self.error(line, col, "unexpected string: quotes are only allowed in values")),
            _ => {
                let mut name = String::new();
                while let Some(c) = self.peek() {
                    if matches!(c, '#' | '{' | '}' | '=' | '"' | '\r' | '\n' | '\t' | ' ') {
                        break;
                    }
                    name.push(c);
                    self.bump();
                }
                if name == "include" && matches!(self.peek(), Some(' ' | '\t')) {
                    let mut n = 0;
                    while matches!(self.peek_at(n), Some(' ' | '\t')) {
                        n += 1;
                    }
                    if !matches!(self.peek_at(n), Some('=' | '\n') | None) {
                        self.skip_blanks();
                        return Ok((Tok::Include(self.include_pattern()?), line, col));
                    }
                }
                Tok::Name(name)
            }
        };
        Ok((tok, line, col))
    }

    /// The pattern of an `include` line: one word, quoted or with `\` escapes.
    fn include_pattern(&mut self) -> Result<String, ParseError> {
        if self.peek() == Some('"') {
            return self.quoted();
        }
        let mut out = String::new();
        while let Some(c) = self.peek() {
            match c {
                '#' | '}' | '\n' | '\t' | ' ' | '\r' => break,
                '\\' => {
                    self.bump();
                    match self.peek() {
                        Some(e @ ('"' | '#' | '}' | ' ')) => {
                            out.push(e);
                            self.bump();
                        }
                        _ => out.push('\\'),
                    }
                }
                _ => {
                    out.push(c);
                    self.bump();
                }
            }
        }
        Ok(out)
    }

    /// A `"..."` string starting at the current `"`.
    fn quoted(&mut self) -> Result<String, ParseError> {
        let (line, col) = (self.line, self.col);
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error(line, col, "unterminated string: missing closing `\"`")),
                Some('"') => return Ok(out),
                Some('\r') => {}
                Some('\\') => match self.bump() {
                    None => return Err(self.error(line, col, "unterminated string: missing closing `\"`")),
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('t') => out.push('\t'),
                    // An escaped end of line joins the lines.
                    Some('\n') => {}
                    Some(other) => out.push(other),
                },
                Some(c) => out.push(c),
            }
        }
    }

    /// The value after `=`: words and strings up to the end of the line, `#` or `}`,
    /// joined by single spaces. None when empty (`key =`).
    fn value(&mut self) -> Result<String, ParseError> {
        let mut parts: Vec<String> = Vec::new();
        loop {
            self.skip_blanks();
            match self.peek() {
                None | Some('\n' | '#' | '}') => break,
                Some('"') => parts.push(self.quoted()?),
                Some(_) => {
                    let mut word = String::new();
                    while let Some(c) = self.peek() {
                        if matches!(c, '#' | '}' | '"' | '\r' | '\n' | '\t' | ' ') {
                            break;
                        }
                        word.push(c);
                        self.bump();
                    }
                    parts.push(word);
                }
            }
        }
        Ok(parts.join(" "))
    }
}

fn parse_document(src: &Source<'_>) -> Result<Document, ParseError> {
    let mut lx = Lexer::new(src);
    let mut includes = Vec::new();
    // Open sections, innermost last, with the line and column of their name. An explicit
    // stack (no recursion) keeps deeply nested input from exhausting the call stack.
    let mut stack: Vec<(Section, usize, usize)> = vec![(Section::default(), 0, 0)];
    loop {
        let (tok, line, col) = lx.next()?;
        match tok {
            Tok::Newline => {}
            Tok::Eof => break,
            Tok::Include(pattern) => includes.push(pattern),
            Tok::Close => {
                if stack.len() < 2 {
                    return Err(lx.error(line, col, "unbalanced `}`: no section is open here"));
                }
                if let Some((done, _, _)) = stack.pop() {
                    if let Some((parent, _, _)) = stack.last_mut() {
                        parent.add_section(done);
                    }
                }
            }
            Tok::Open => return Err(lx.error(line, col, "`{` without a section name before it")),
            Tok::Eq => return Err(lx.error(line, col, "`=` without a key name before it")),
            Tok::Name(name) => {
                let (next, nline, ncol) = lx.next()?;
                match next {
                    Tok::Eq => {
                        let value = lx.value()?;
                        if let Some((section, _, _)) = stack.last_mut() {
                            section.set(Setting { key: name, value, line });
                        }
                    }
                    Tok::Open => stack.push((Section { name, line, ..Section::default() }, line, col)),
                    // strongSwan allows exactly one line break between a name and its `{`.
                    Tok::Newline => match lx.next()? {
                        (Tok::Open, _, _) => stack.push((Section { name, line, ..Section::default() }, line, col)),
                        (_, l, c) => {
                            return Err(lx.error(l, c, format!("expected `{{` to open section `{name}` (line {line})")))
                        }
                    },
                    // `name : template[, template] {` (section references).
                    Tok::Name(n) if n.starts_with(':') || name.ends_with(':') => {
                        let name = name.trim_end_matches(':').to_string();
                        let mut refs: Vec<String> = Vec::new();
                        let mut add_refs = |word: &str| {
                            refs.extend(word.split([':', ',']).filter(|r| !r.is_empty()).map(str::to_string))
                        };
                        add_refs(&n);
                        loop {
                            match lx.next()? {
                                (Tok::Open, _, _) => break,
                                (Tok::Name(more), _, _) => add_refs(&more),
                                (_, l, c) => {
                                    return Err(lx.error(
                                        l,
                                        c,
                                        format!("expected `{{` after the references of section `{name}`"),
                                    ))
                                }
                            }
                        }
                        stack.push((Section { name, line, refs, ..Section::default() }, line, col));
                    }
                    Tok::Name(n) => {
                        return Err(lx.error(nline, ncol, format!("expected `=` or `{{` after `{name}`, found `{n}`")))
                    }
                    Tok::Eof => {
                        return Err(lx.error(
                            nline,
                            ncol,
                            format!("expected `=` or `{{` after `{name}`, found the end of the file"),
                        ))
                    }
                    other => {
                        return Err(lx.error(
                            nline,
                            ncol,
                            format!("expected `=` or `{{` after `{name}`, found {}", describe(&other)),
                        ))
                    }
                }
            }
        }
    }
    if stack.len() > 1 {
        if let Some((open, line, col)) = stack.last() {
            return Err(lx.error(*line, *col, format!("section `{}` is never closed: `}}` missing", open.name)));
        }
    }
    let root = stack.pop().map(|(s, _, _)| s).unwrap_or_default();
    Ok(Document { root, includes })
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Newline => "the end of the line".to_string(),
        Tok::Open => "`{`".to_string(),
        Tok::Close => "`}`".to_string(),
        Tok::Eq => "`=`".to_string(),
        Tok::Name(n) => format!("`{n}`"),
        Tok::Include(p) => format!("include {p}"),
        Tok::Eof => "the end of the file".to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// swanctl semantics.

/// Key names whose values are secrets wherever they appear outside `secrets`.
fn is_secret_key(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    matches!(last, "secret" | "psk" | "pin" | "password" | "passphrase")
}

/// Every key of `section` and its subsections (dotted paths), except subsections named in
/// `skip`. Values of secret-named keys are replaced by their fingerprint.
fn flatten(
    src: &Source<'_>,
    ctx: &mut ParseContext,
    section: &Section,
    prefix: &str,
    skip: &[&str],
    out: &mut BTreeMap<String, String>,
) {
    for kv in &section.keys {
        let key = format!("{prefix}{}", kv.key);
        let value = if is_secret_key(&key) {
            ctx.redact(RedactionKind::NamedSecret, src.line(kv.line), &kv.value).to_string()
        } else {
            kv.value.clone()
        };
        out.insert(key, value);
    }
    for sub in &section.sections {
        if skip.contains(&sub.name.as_str()) {
            continue;
        }
        flatten(src, ctx, sub, &format!("{prefix}{}.", sub.name), &[], out);
    }
}

/// swanctl lists: comma separated, blanks around items ignored.
fn list(section: &Section, key: &str) -> Vec<String> {
    section
        .get(key)
        .map(|kv| kv.value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default()
}

/// swanctl time values: `3600`, `3600s`, `60m`, `4h`, `1d` (charon's vici `parse_time`).
pub(crate) fn parse_time(value: &str) -> Option<u64> {
    let v = value.trim();
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let number: u64 = v.get(..digits)?.parse().ok()?;
    let factor = match v.get(digits..)?.trim() {
        "" | "s" | "S" => 1,
        "m" | "M" => 60,
        "h" | "H" => 3600,
        "d" | "D" => 86_400,
        _ => return None,
    };
    number.checked_mul(factor)
}

fn time(src: &Source<'_>, ctx: &mut ParseContext, section: &Section, key: &str) -> Option<u64> {
    let kv = section.get(key)?;
    let t = parse_time(&kv.value);
    if t.is_none() {
        ctx.warn(
            src.line(kv.line),
            format!("{key} = {:?} is not a time (a number with optional s, m, h or d); charon rejects it", kv.value),
        );
    }
    t
}

fn boolean(src: &Source<'_>, ctx: &mut ParseContext, section: &Section, key: &str) -> Option<bool> {
    let kv = section.get(key)?;
    match kv.value.to_ascii_lowercase().as_str() {
        "yes" | "true" | "enabled" | "1" => Some(true),
        "no" | "false" | "disabled" | "0" => Some(false),
        _ => {
            ctx.warn(src.line(kv.line), format!("{key} = {:?} is not yes/no; charon rejects it", kv.value));
            None
        }
    }
}

fn text(section: &Section, key: &str) -> Option<String> {
    section.get(key).map(|kv| kv.value.clone())
}

fn connection(src: &Source<'_>, ctx: &mut ParseContext, sec: &Section) -> IpsecConnection {
    let mut settings = BTreeMap::new();
    flatten(src, ctx, sec, "", &["children"], &mut settings);
    let version = match sec.get("version") {
        None => 0,
        Some(kv) => match kv.value.trim() {
            "0" => 0,
            "1" => 1,
            "2" => 2,
            other => {
                ctx.warn(src.line(kv.line), format!("version = {other:?} is not 0, 1 or 2; taken as 0 (any)"));
                0
            }
        },
    };
    if !sec.refs.is_empty() {
        ctx.warn(
            src.line(sec.line),
            format!(
                "connection `{}` inherits from {}; inherited settings are not shown",
                sec.name,
                sec.refs.join(", ")
            ),
        );
    }
    let rounds = |prefix: &str| -> Vec<IpsecAuth> {
        let mut r: Vec<(i64, &Section)> = sec
            .sections
            .iter()
            .filter(|s| s.name.starts_with(prefix))
            .map(|s| (s.get("round").and_then(|kv| kv.value.trim().parse().ok()).unwrap_or(0), s))
            .collect();
        // charon orders rounds by `round`, then as swanctl enumerates them (by name).
        r.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
        r.into_iter()
            .map(|(_, s)| IpsecAuth { round: s.name.clone(), auth: text(s, "auth"), id: text(s, "id") })
            .collect()
    };
    let local_auth = rounds("local");
    let remote_auth = rounds("remote");
    let children = sec
        .sections
        .iter()
        .filter(|s| s.name == "children")
        .flat_map(|c| c.sections.iter())
        .map(|c| child(src, ctx, c))
        .collect();
    IpsecConnection {
        name: sec.name.clone(),
        version,
        local_addrs: list(sec, "local_addrs"),
        remote_addrs: list(sec, "remote_addrs"),
        proposals: list(sec, "proposals"),
        local_auth,
        remote_auth,
        children,
        rekey_time: time(src, ctx, sec, "rekey_time"),
        reauth_time: time(src, ctx, sec, "reauth_time"),
        over_time: time(src, ctx, sec, "over_time"),
        dpd_delay: time(src, ctx, sec, "dpd_delay"),
        dpd_timeout: time(src, ctx, sec, "dpd_timeout"),
        encap: boolean(src, ctx, sec, "encap"),
        mobike: boolean(src, ctx, sec, "mobike"),
        settings,
        origin: src.line(sec.line),
    }
}

fn child(src: &Source<'_>, ctx: &mut ParseContext, sec: &Section) -> IpsecChild {
    let mut settings = BTreeMap::new();
    flatten(src, ctx, sec, "", &[], &mut settings);
    IpsecChild {
        name: sec.name.clone(),
        local_ts: list(sec, "local_ts"),
        remote_ts: list(sec, "remote_ts"),
        esp_proposals: list(sec, "esp_proposals"),
        mode: text(sec, "mode"),
        rekey_time: time(src, ctx, sec, "rekey_time"),
        life_time: time(src, ctx, sec, "life_time"),
        start_action: text(sec, "start_action"),
        dpd_action: text(sec, "dpd_action"),
        close_action: text(sec, "close_action"),
        settings,
        origin: src.line(sec.line),
    }
}

/// Secret section types swanctl knows, matched as name prefixes in this order
/// (swanctl `load_creds.c`).
const SECRET_TYPES: [&str; 12] =
    ["eap", "xauth", "ntlm", "ike", "ppk", "private", "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12", "token"];

fn secret_of(src: &Source<'_>, ctx: &mut ParseContext, sec: &Section) -> IpsecSecret {
    let kind = match SECRET_TYPES.iter().find(|t| sec.name.starts_with(*t)) {
        Some(t) => (*t).to_string(),
        None => {
            ctx.warn(
                src.line(sec.line),
                format!(
                    "secret section `{}` has no known type prefix (ike-, eap-, xauth-, ...); swanctl ignores it",
                    sec.name
                ),
            );
            sec.name.split('-').next().unwrap_or(&sec.name).to_string()
        }
    };
    let ids = sec.keys.iter().filter(|kv| kv.key.starts_with("id")).map(|kv| kv.value.clone()).collect();
    // `secret` holds the PSK/password (or the passphrase of a key file); a token's
    // secret is its `pin`. The value is fingerprinted as written, after unquoting.
    let secret = sec
        .get("secret")
        .or_else(|| if kind == "token" { sec.get("pin") } else { None })
        .map(|kv| ctx.redact(RedactionKind::IpsecSecret, src.line(kv.line), &kv.value));
    IpsecSecret { name: sec.name.clone(), kind, ids, secret, origin: src.line(sec.line) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("3600"), Some(3600));
        assert_eq!(parse_time("3600s"), Some(3600));
        assert_eq!(parse_time("60m"), Some(3600));
        assert_eq!(parse_time("4h"), Some(14_400));
        assert_eq!(parse_time("1d"), Some(86_400));
        assert_eq!(parse_time(" 10 m "), Some(600));
        assert_eq!(parse_time("4hours"), None);
        assert_eq!(parse_time("h"), None);
        assert_eq!(parse_time("99999999999999999999d"), None);
    }

    #[test]
    fn values_collapse_blanks_and_stop_at_comment_or_brace() {
        let src = Source::new("t.conf", "a {\n k = x   y # c\n q = \"a  b\" c }\n s\n{ z = 1 }\n");
        let doc = parse_document(&src).unwrap();
        let a = &doc.root.sections[0];
        assert_eq!(a.get("k").unwrap().value, "x y");
        assert_eq!(a.get("q").unwrap().value, "a  b c");
        assert_eq!(doc.root.sections[1].name, "s");
    }
}
