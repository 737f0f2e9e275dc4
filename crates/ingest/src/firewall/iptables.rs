//! Parser of `iptables-save` / `ip6tables-save` output (with or without `-c`): tables,
//! chains with policies and counters, and rules typed into the shared firewall model.
//!
//! Lines are tokenised like iptables-restore does (double quotes, backslash escapes), so
//! `-m comment --comment "cali:abc def"` is one value. Options this parser understands
//! become typed matches; every other option or match module is kept verbatim as
//! `Match::Unrecognised` (the exact text of the line), so an evaluator can say "unknown".
//!
//! Error policy: a file that is not iptables-save output, or is cut short, is an error
//! (line and column), because a partial ruleset would give silently wrong answers: a rule
//! outside a `*table`, a malformed `:CHAIN` or counter, an unterminated quote, a missing
//! `COMMIT` at the end, or an unknown line. Problems that lose nothing are warnings: a
//! rule for a chain that was not declared (the chain is created).

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use netsleuth_model::firewall::{
    Chain, Counters, FirewallRule, FirewallSource, FirewallTable, Hook, Match, PortRange, Ruleset, Verdict,
};
use netsleuth_model::Location;

use super::nft::{parse_u32, protocol_name, service_port};
use crate::{ParseContext, ParseError, Source};

/// `iptables-save -c` (family `ip`) or `ip6tables-save -c` (family `ip6`).
pub fn parse(src: &Source<'_>, family: &str, ctx: &mut ParseContext) -> Result<Ruleset, ParseError> {
    let mut tables: Vec<FirewallTable> = Vec::new();
    // (table position, chain name) → chain position: kube-proxy rulesets have tens of
    // thousands of chains and rules, so lookups must not be linear.
    let mut chain_index: HashMap<(usize, String), usize> = HashMap::new();
    // Index in `tables` of the table between `*name` and `COMMIT`, and its start line.
    let mut open: Option<(usize, usize)> = None;
    for (index, raw) in src.text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let col = indent + 1;
        if let Some(name) = trimmed.strip_prefix('*') {
            if let Some((_, start)) = open {
                return Err(src.error_at(
                    line_no,
                    Some(col),
                    format!("table *{name} starts before the table opened on line {start} was COMMITted"),
                ));
            }
            let name = name.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(src.error_at(line_no, Some(col), format!("bad table line {trimmed:?}")));
            }
            let pos = match tables.iter().position(|t| t.name == name) {
                Some(p) => p,
                None => {
                    tables.push(FirewallTable {
                        family: family.to_string(),
                        name: name.to_string(),
                        chains: Vec::new(),
                    });
                    tables.len() - 1
                }
            };
            open = Some((pos, line_no));
            continue;
        }
        if trimmed == "COMMIT" {
            if open.take().is_none() {
                return Err(src.error_at(line_no, Some(col), "COMMIT without a table (*filter, *nat ...) before it"));
            }
            continue;
        }
        let Some((table_pos, _)) = open else {
            return Err(src.error_at(
                line_no,
                Some(col),
                format!("{trimmed:?} is outside a table: iptables-save output starts tables with *filter, *nat ..."),
            ));
        };
        let Some(table) = tables.get_mut(table_pos) else {
            return Err(src.error_at(line_no, Some(col), "internal: table index out of range"));
        };
        if trimmed.starts_with(':') {
            let chain = parse_chain_line(src, line_no, line, indent, &table.name)?;
            match chain_index.get(&(table_pos, chain.name.clone())).and_then(|p| table.chains.get_mut(*p)) {
                Some(existing) => {
                    let rules = std::mem::take(&mut existing.rules);
                    *existing = Chain { rules, ..chain };
                }
                None => {
                    chain_index.insert((table_pos, chain.name.clone()), table.chains.len());
                    table.chains.push(chain);
                }
            }
            continue;
        }
        // `[packets:bytes] -A CHAIN ...` or `-A CHAIN ...`
        let (counters, rest_offset) = if trimmed.starts_with('[') {
            let (c, after) = parse_counters(src, line_no, line, indent)?;
            (Some(c), after)
        } else {
            (None, indent)
        };
        let rest = line.get(rest_offset..).unwrap_or("");
        let skipped = rest.len() - rest.trim_start().len();
        let rule_offset = rest_offset + skipped;
        let rule_text = rest.trim();
        if !(rule_text.starts_with("-A ") || rule_text.starts_with("--append ")) {
            return Err(src.error_at(
                line_no,
                Some(rule_offset + 1),
                format!("expected `-A CHAIN ...`, `:CHAIN POLICY`, `*table` or `COMMIT`, found {rule_text:?}"),
            ));
        }
        let tokens = tokenize(rule_text).map_err(|(msg, at)| src.error_at(line_no, Some(rule_offset + at + 1), msg))?;
        let Some(chain_tok) = tokens.get(1) else {
            return Err(src.error_at(line_no, Some(rule_offset + 1), "`-A` without a chain name"));
        };
        let chain_name = chain_tok.text.clone();
        let is_chain = |name: &str| chain_index.contains_key(&(table_pos, name.to_string()));
        let mut rule = convert_rule(rule_text, tokens.get(2..).unwrap_or(&[]), &is_chain);
        rule.counters = counters;
        rule.origin = src.line(line_no);
        let pos = match chain_index.get(&(table_pos, chain_name.clone())) {
            Some(p) => *p,
            None => {
                ctx.warn(
                    src.line(line_no),
                    format!("rule for chain {chain_name} which has no `:{chain_name}` line; chain created"),
                );
                table.chains.push(builtin_chain(&table.name, &chain_name, src.line(line_no)));
                let pos = table.chains.len() - 1;
                chain_index.insert((table_pos, chain_name.clone()), pos);
                pos
            }
        };
        if let Some(chain) = table.chains.get_mut(pos) {
            chain.rules.push(rule);
        }
    }
    if let Some((pos, start)) = open {
        let name = tables.get(pos).map(|t| t.name.clone()).unwrap_or_default();
        let last = src.text.lines().count().max(1);
        return Err(src.error_at(
            last,
            None,
            format!("table *{name} (line {start}) has no COMMIT: the output is cut short"),
        ));
    }
    Ok(Ruleset { source: FirewallSource::Iptables, tables, origin: Location::file(src.path) })
}

/// A chain with the hook, type and priority iptables gives its built-in chains.
fn builtin_chain(table: &str, name: &str, origin: Location) -> Chain {
    let hook = match name {
        "PREROUTING" | "INPUT" | "FORWARD" | "OUTPUT" | "POSTROUTING" => Hook::parse(name),
        _ => None,
    };
    // Priorities of the iptables tables on their hooks (NF_IP_PRI_*), as nft shows them.
    let priority = hook.map(|h| match (table, h) {
        ("raw", _) => -300,
        ("mangle", _) => -150,
        ("nat", Hook::Prerouting | Hook::Output) => -100,
        ("nat", _) => 100,
        ("security", _) => 50,
        _ => 0,
    });
    Chain {
        name: name.to_string(),
        hook,
        chain_type: hook.map(|_| table.to_string()),
        priority,
        policy: None,
        rules: Vec::new(),
        counters: None,
        origin,
    }
}

/// `:NAME POLICY [packets:bytes]` (counters optional; POLICY `-` for user chains).
fn parse_chain_line(
    src: &Source<'_>,
    line_no: usize,
    line: &str,
    indent: usize,
    table: &str,
) -> Result<Chain, ParseError> {
    let body = line.get(indent + 1..).unwrap_or("");
    let mut parts = body.split_whitespace();
    let name = parts.next().ok_or_else(|| src.error_at(line_no, Some(indent + 2), "chain line without a name"))?;
    let policy = parts.next().ok_or_else(|| {
        src.error_at(line_no, Some(indent + 2 + name.len()), format!("chain {name} has no policy (ACCEPT, DROP or -)"))
    })?;
    let mut chain = builtin_chain(table, name, src.line(line_no));
    chain.policy = match policy {
        "-" => None,
        "ACCEPT" => Some(Verdict::Accept),
        "DROP" => Some(Verdict::Drop),
        "QUEUE" => Some(Verdict::Queue),
        "RETURN" => Some(Verdict::Return),
        other => Some(Verdict::Other(other.to_string())),
    };
    if chain.hook.is_none() && chain.policy.is_some() {
        // A user chain with a policy is not something iptables can produce.
        return Err(src.error_at(line_no, Some(indent + 1), format!("user chain {name} with policy {policy}")));
    }
    if let Some(counter_text) = parts.next() {
        let at = line.find(counter_text).unwrap_or(indent);
        let (c, _) = parse_counters(src, line_no, line, at)?;
        chain.counters = Some(c);
    }
    Ok(chain)
}

/// `[packets:bytes]` starting at byte `at` of `line`; returns the counters and the byte
/// offset just after `]`.
fn parse_counters(src: &Source<'_>, line_no: usize, line: &str, at: usize) -> Result<(Counters, usize), ParseError> {
    let bad = |msg: &str| src.error_at(line_no, Some(at + 1), format!("bad counters: {msg}"));
    let rest = line.get(at..).ok_or_else(|| bad("missing"))?;
    let inner = rest.strip_prefix('[').ok_or_else(|| bad("expected `[packets:bytes]`"))?;
    let close = inner.find(']').ok_or_else(|| bad("missing `]`"))?;
    let (p, b) = inner.get(..close).and_then(|s| s.split_once(':')).ok_or_else(|| bad("expected `[packets:bytes]`"))?;
    let packets = p.trim().parse::<u64>().map_err(|_| bad("packets is not a number"))?;
    let bytes = b.trim().parse::<u64>().map_err(|_| bad("bytes is not a number"))?;
    Ok((Counters { packets, bytes }, at + 1 + close + 1))
}

/// One word of a rule line and its byte span in the line.
#[derive(Debug, Clone)]
struct Token {
    text: String,
    start: usize,
    end: usize,
}

/// Splits like iptables-restore: whitespace-separated words, `"..."` quoting, and `\`
/// escaping the next character. Errors carry the byte offset of the problem.
fn tokenize(line: &str) -> Result<Vec<Token>, (String, usize)> {
    let mut out = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut text = String::new();
        let mut in_quotes: Option<usize> = None;
        let mut end = start;
        while let Some(&(i, c)) = chars.peek() {
            if in_quotes.is_none() && c.is_whitespace() {
                break;
            }
            chars.next();
            end = i + c.len_utf8();
            match c {
                '"' => {
                    in_quotes = match in_quotes {
                        Some(_) => None,
                        None => Some(i),
                    }
                }
                '\\' => match chars.next() {
                    Some((j, escaped)) => {
                        text.push(escaped);
                        end = j + escaped.len_utf8();
                    }
                    None => text.push('\\'),
                },
                other => text.push(other),
            }
        }
        if let Some(q) = in_quotes {
            return Err(("unterminated quote".to_string(), q));
        }
        out.push(Token { text, start, end });
    }
    Ok(out)
}

fn is_option(t: &str) -> bool {
    t.len() > 1 && t.starts_with('-')
}

/// Converts the words after `-A CHAIN` into matches, verdict and comment.
/// `is_chain` tells whether a `-j` target is a chain of this table.
fn convert_rule(line: &str, tokens: &[Token], is_chain: &dyn Fn(&str) -> bool) -> FirewallRule {
    let mut rule = FirewallRule {
        matches: Vec::new(),
        verdict: None,
        counters: None,
        comment: None,
        text: line.to_string(),
        origin: Location::Derived,
    };
    let span = |from: usize, to: usize| -> String {
        match (tokens.get(from), tokens.get(to.saturating_sub(1))) {
            (Some(a), Some(b)) if to > from => line.get(a.start..b.end).unwrap_or("").to_string(),
            _ => String::new(),
        }
    };
    // Index of the first word after an option's values: up to the next option or `!`.
    let values_end = |from: usize| -> usize {
        let mut j = from;
        while let Some(t) = tokens.get(j) {
            if is_option(&t.text) || t.text == "!" {
                break;
            }
            j += 1;
        }
        j
    };
    let mut module = String::new();
    // `-p tcp` loads the tcp match implicitly: `-p tcp --dport 80` needs no `-m tcp`.
    let mut protocol = String::new();
    let mut i = 0;
    while i < tokens.len() {
        let neg_start = i;
        let negated = tokens.get(i).is_some_and(|t| t.text == "!");
        if negated {
            i += 1;
        }
        let Some(opt) = tokens.get(i) else {
            rule.matches.push(Match::Unrecognised { text: span(neg_start, i) });
            break;
        };
        let value = tokens.get(i + 1).map(|t| t.text.as_str());
        // Every option handled below consumes itself and one value unless noted.
        let mut consumed = 2;
        let typed: Option<Match> = match opt.text.as_str() {
            "-s" | "--source" | "--src" => value.and_then(parse_net).map(|n| Match::SrcAddr { negated, nets: vec![n] }),
            "-d" | "--destination" | "--dst" => {
                value.and_then(parse_net).map(|n| Match::DstAddr { negated, nets: vec![n] })
            }
            "-p" | "--protocol" => match value {
                Some("all") if !negated => {
                    i += 2;
                    continue;
                }
                Some(p) => {
                    if !negated {
                        protocol = protocol_name(p);
                    }
                    Some(Match::Protocol { negated, protocol: protocol_name(p) })
                }
                None => None,
            },
            "-i" | "--in-interface" => value.map(|v| Match::InInterface { negated, name: v.to_string() }),
            "-o" | "--out-interface" => value.map(|v| Match::OutInterface { negated, name: v.to_string() }),
            "-m" | "--match" => {
                match value {
                    Some(
                        m @ ("tcp" | "udp" | "sctp" | "dccp" | "udplite" | "multiport" | "conntrack" | "state" | "set"
                        | "mark" | "icmp" | "icmp6" | "comment"),
                    ) if !negated => {
                        module = m.to_string();
                        i += 2;
                    }
                    _ => {
                        // Unknown module: keep it and all its options verbatim.
                        let mut j = i + 2;
                        while let Some(t) = tokens.get(j) {
                            if matches!(t.text.as_str(), "-m" | "--match" | "-j" | "--jump" | "-g" | "--goto") {
                                break;
                            }
                            if t.text == "!"
                                && tokens.get(j + 1).is_some_and(|n| matches!(n.text.as_str(), "-m" | "--match"))
                            {
                                break;
                            }
                            j += 1;
                        }
                        rule.matches.push(Match::Unrecognised { text: span(neg_start, j) });
                        module.clear();
                        i = j;
                    }
                }
                continue;
            }
            "--dport" | "--destination-port" if is_port_module(&module) || is_port_module(&protocol) => {
                value.and_then(parse_ports).map(|ports| Match::DstPort { negated, ports })
            }
            "--sport" | "--source-port" if is_port_module(&module) || is_port_module(&protocol) => {
                value.and_then(parse_ports).map(|ports| Match::SrcPort { negated, ports })
            }
            "--dports" | "--destination-ports" if module == "multiport" => {
                value.and_then(parse_ports).map(|ports| Match::DstPort { negated, ports })
            }
            "--sports" | "--source-ports" if module == "multiport" => {
                value.and_then(parse_ports).map(|ports| Match::SrcPort { negated, ports })
            }
            "--ctstate" if module == "conntrack" => value.map(|v| Match::CtState { negated, states: states(v) }),
            "--state" if module == "state" => value.map(|v| Match::CtState { negated, states: states(v) }),
            "--match-set" if module == "set" => {
                consumed = 3;
                match (value, tokens.get(i + 2).map(|t| t.text.as_str())) {
                    (Some(set), Some("src")) => Some(Match::SrcSet { negated, set: set.to_string() }),
                    (Some(set), Some("dst")) => Some(Match::DstSet { negated, set: set.to_string() }),
                    _ => None,
                }
            }
            "--mark" if module == "mark" => value.and_then(|v| {
                let (val, mask) = match v.split_once('/') {
                    Some((a, b)) => (parse_u32(a)?, Some(parse_u32(b)?)),
                    None => (parse_u32(v)?, None),
                };
                Some(Match::Mark { negated, value: val, mask })
            }),
            // `-p icmp --icmp-type 8` loads the icmp match implicitly.
            "--icmp-type" if module == "icmp" || protocol == "icmp" => {
                value.map(|v| Match::IcmpType { negated, types: vec![v.to_string()] })
            }
            "--icmpv6-type" if module == "icmp6" || protocol == "ipv6-icmp" => {
                value.map(|v| Match::IcmpType { negated, types: vec![v.to_string()] })
            }
            "--comment" if module == "comment" && !negated => {
                rule.comment = value.map(str::to_string);
                i += 2;
                continue;
            }
            "-j" | "--jump" if !negated => {
                let target = value.unwrap_or("");
                let args = span(i + 2, tokens.len());
                rule.verdict = Some(verdict(target, &args, tokens.get(i + 2..).unwrap_or(&[]), is_chain));
                break;
            }
            "-g" | "--goto" if !negated => {
                rule.verdict = Some(Verdict::Goto(value.unwrap_or("").to_string()));
                i += 2;
                continue;
            }
            _ => None,
        };
        match typed {
            Some(m) => {
                rule.matches.push(m);
                i += consumed;
            }
            None => {
                // Not understood: the option and its values, verbatim.
                let j = values_end(i + 1).max(i + 1);
                rule.matches.push(Match::Unrecognised { text: span(neg_start, j) });
                i = j;
            }
        }
    }
    rule
}

/// Modules (and protocols) with `--dport`/`--sport`.
fn is_port_module(m: &str) -> bool {
    matches!(m, "tcp" | "udp" | "sctp" | "dccp" | "udplite")
}

/// `10.0.0.0/8`, `10.0.0.1` (host), or `10.0.0.0/255.0.0.0`.
fn parse_net(s: &str) -> Option<IpNet> {
    if let Ok(n) = s.parse::<IpNet>() {
        return Some(n.trunc());
    }
    if let Ok(a) = s.parse::<IpAddr>() {
        return Some(IpNet::from(a));
    }
    let (addr, mask) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let mask: IpAddr = mask.parse().ok()?;
    let len = match mask {
        IpAddr::V4(m) => {
            let bits = u32::from(m);
            // Only contiguous masks are expressible as a prefix.
            (bits.leading_ones() + bits.trailing_zeros() == 32).then_some(bits.leading_ones())?
        }
        IpAddr::V6(m) => {
            let bits = u128::from(m);
            (bits.leading_ones() + bits.trailing_zeros() == 128).then_some(bits.leading_ones())?
        }
    };
    IpNet::new(addr, u8::try_from(len).ok()?).ok().map(|n| n.trunc())
}

/// `80`, `1024:65535`, `:1023`, `22,6443,10250:10252`, service names.
fn parse_ports(s: &str) -> Option<Vec<PortRange>> {
    s.split(',')
        .map(|part| match part.split_once(':') {
            Some((a, b)) => {
                let start = if a.is_empty() { 0 } else { service_port(a)? };
                let end = if b.is_empty() { u16::MAX } else { service_port(b)? };
                (start <= end).then_some(PortRange { start, end })
            }
            None => service_port(part).map(PortRange::single),
        })
        .collect()
}

fn states(v: &str) -> Vec<String> {
    v.split(',').filter(|s| !s.is_empty()).map(str::to_ascii_lowercase).collect()
}

/// The verdict of `-j TARGET args`: built-in verdicts, NAT targets with their address,
/// a declared chain, or any other extension target kept with its arguments.
fn verdict(target: &str, args: &str, arg_tokens: &[Token], is_chain: &dyn Fn(&str) -> bool) -> Verdict {
    let arg = |name: &str| -> String {
        arg_tokens
            .iter()
            .position(|t| t.text == name)
            .and_then(|p| arg_tokens.get(p + 1))
            .map(|t| t.text.clone())
            .unwrap_or_default()
    };
    match target {
        "ACCEPT" => Verdict::Accept,
        "DROP" => Verdict::Drop,
        "REJECT" => Verdict::Reject,
        "RETURN" => Verdict::Return,
        "QUEUE" | "NFQUEUE" => Verdict::Queue,
        "MASQUERADE" => Verdict::Masquerade,
        "SNAT" => Verdict::Snat(arg("--to-source")),
        "DNAT" => Verdict::Dnat(arg("--to-destination")),
        "REDIRECT" => Verdict::Redirect(arg("--to-ports")),
        t if is_chain(t) => Verdict::Jump(t.to_string()),
        t if args.is_empty() => Verdict::Other(t.to_string()),
        t => Verdict::Other(format!("{t} {args}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_handles_quotes_and_escapes() {
        let t = tokenize(r#"-A X -m comment --comment "a \"b\" c" -j ACCEPT"#).unwrap();
        let words: Vec<&str> = t.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(words, ["-A", "X", "-m", "comment", "--comment", "a \"b\" c", "-j", "ACCEPT"]);
        assert_eq!(tokenize(r#"-A X --comment "open"#).unwrap_err().1, 15);
    }

    #[test]
    fn masks_and_ports() {
        assert_eq!(parse_net("10.0.0.0/255.0.0.0"), "10.0.0.0/8".parse().ok());
        assert_eq!(parse_net("10.0.0.0/255.0.255.0"), None);
        assert_eq!(parse_ports(":1023"), Some(vec![PortRange { start: 0, end: 1023 }]));
        assert_eq!(parse_ports("9:1"), None);
    }
}
