//! Parser of `nft -j list ruleset`: the JSON is read as a `serde_json::Value` and typed
//! object by object, so one expression this parser does not know never fails the ruleset.
//!
//! Tables, base chains (type, hook, priority, policy) and rules are kept; sets, maps,
//! flowtables and named objects are not modelled (rules refer to sets by `@name`).
//! Every rule gets a compact nft-like `text`, and each `match` expression is mapped onto
//! the shared [`Match`] model where it fits; anything else becomes
//! `Match::Unrecognised` with its rendering, so an evaluator can answer "unknown".
//! Statements that change the packet but are not verdicts (MSS clamping, `meta mark set`,
//! `notrack`, an iptables-nft `xt` target, ...) become `Verdict::Other(text)` when the
//! rule has no real verdict, which keeps e.g. `tcp option maxseg size set rt mtu` visible.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use netsleuth_model::firewall::{
    Chain, Counters, FirewallRule, FirewallSource, FirewallTable, Hook, Match, PortRange, Ruleset, Verdict,
};
use netsleuth_model::Location;
use serde_json::{Map, Value};

use crate::{ParseContext, ParseError, Source};

/// `nft -j list ruleset`.
pub fn parse(src: &Source<'_>, ctx: &mut ParseContext) -> Result<Ruleset, ParseError> {
    let root: Value = serde_json::from_str(src.text).map_err(|e| ParseError::from_json(src.path, &e))?;
    let items = root
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| src.error("not `nft -j list ruleset` output: the top level has no \"nftables\" array"))?;
    let mut b = Builder::default();
    for (index, item) in items.iter().enumerate() {
        let pointer = format!("/nftables/{index}");
        let Some((kind, body)) = item.as_object().and_then(|o| o.iter().next()) else {
            ctx.warn(src.pointer(&pointer), "nftables item is not an object with one key; ignored");
            continue;
        };
        let Some(body) = body.as_object() else {
            ctx.warn(src.pointer(&pointer), format!("`{kind}` item is not an object; ignored"));
            continue;
        };
        match kind.as_str() {
            "table" => {
                if let Some((family, name)) = table_key(src, ctx, &pointer, body, "name") {
                    b.table(family, name);
                }
            }
            "chain" => add_chain(src, ctx, &pointer, body, &mut b),
            "rule" => add_rule(src, ctx, &pointer, body, &mut b),
            // metainfo, set, map, element, flowtable, counter, quota, ct helper, limit,
            // secmark, synproxy ...: not part of the rule model.
            _ => {}
        }
    }
    Ok(Ruleset { source: FirewallSource::Nftables, tables: b.tables, origin: Location::file(src.path) })
}

/// Tables with indexes by name, so rulesets with many thousands of chains (kube-proxy's
/// nftables mode) are assembled in linear time.
#[derive(Default)]
struct Builder {
    tables: Vec<FirewallTable>,
    table_index: HashMap<(String, String), usize>,
    chain_index: HashMap<(usize, String), usize>,
}

impl Builder {
    /// Position of table `family name`, created when new.
    fn table(&mut self, family: &str, name: &str) -> usize {
        let key = (family.to_string(), name.to_string());
        if let Some(&pos) = self.table_index.get(&key) {
            return pos;
        }
        self.tables.push(FirewallTable { family: family.to_string(), name: name.to_string(), chains: Vec::new() });
        let pos = self.tables.len() - 1;
        self.table_index.insert(key, pos);
        pos
    }

    fn chain_mut(&mut self, table: usize, name: &str) -> Option<&mut Chain> {
        let pos = *self.chain_index.get(&(table, name.to_string()))?;
        self.tables.get_mut(table)?.chains.get_mut(pos)
    }

    /// Adds `chain` to `table`; a chain announced twice (rulesets concatenated) keeps its
    /// rules and takes the newer declaration.
    fn put_chain(&mut self, table: usize, chain: Chain) -> Option<&mut Chain> {
        let name = chain.name.clone();
        if let Some(existing) = self.chain_mut(table, &name) {
            let rules = std::mem::take(&mut existing.rules);
            *existing = Chain { rules, ..chain };
        } else {
            let chains = &mut self.tables.get_mut(table)?.chains;
            chains.push(chain);
            let pos = chains.len() - 1;
            self.chain_index.insert((table, name.clone()), pos);
        }
        self.chain_mut(table, &name)
    }
}

fn str_field<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

/// Family and name of the table an object belongs to (`table` items use `name`).
fn table_key<'a>(
    src: &Source<'_>,
    ctx: &mut ParseContext,
    pointer: &str,
    body: &'a Map<String, Value>,
    name_key: &str,
) -> Option<(&'a str, &'a str)> {
    match (str_field(body, "family"), str_field(body, name_key)) {
        (Some(f), Some(t)) => Some((f, t)),
        _ => {
            ctx.warn(src.pointer(pointer), format!("missing \"family\" or \"{name_key}\"; item ignored"));
            None
        }
    }
}

fn add_chain(src: &Source<'_>, ctx: &mut ParseContext, pointer: &str, body: &Map<String, Value>, b: &mut Builder) {
    let Some((family, table)) = table_key(src, ctx, pointer, body, "table") else {
        return;
    };
    let Some(name) = str_field(body, "name") else {
        ctx.warn(src.pointer(pointer), "chain without \"name\"; ignored");
        return;
    };
    let hook = match str_field(body, "hook") {
        None => None,
        Some(h) => {
            let hook = Hook::parse(h);
            if hook.is_none() {
                ctx.warn(
                    src.pointer(format!("{pointer}/chain/hook")),
                    format!("unknown hook {h:?}; chain kept as a regular chain"),
                );
            }
            hook
        }
    };
    let priority = match body.get("prio") {
        None => None,
        Some(Value::Number(n)) => n.as_i64().and_then(|p| i32::try_from(p).ok()),
        Some(Value::String(s)) => named_priority(s),
        Some(_) => None,
    };
    let policy = str_field(body, "policy").map(|p| match p {
        "accept" => Verdict::Accept,
        "drop" => Verdict::Drop,
        other => Verdict::Other(other.to_string()),
    });
    let chain = Chain {
        name: name.to_string(),
        hook,
        chain_type: str_field(body, "type").map(str::to_string),
        priority,
        policy,
        rules: Vec::new(),
        counters: None,
        origin: src.pointer(pointer),
    };
    let t = b.table(family, table);
    b.put_chain(t, chain);
}

/// Priority names nft accepts in place of numbers (`nft(8)`, "PRIORITY").
fn named_priority(s: &str) -> Option<i32> {
    match s {
        "raw" => Some(-300),
        "mangle" => Some(-150),
        "dstnat" => Some(-100),
        "filter" => Some(0),
        "security" => Some(50),
        "srcnat" => Some(100),
        "out" => Some(100),
        _ => s.trim().parse().ok(),
    }
}

fn add_rule(src: &Source<'_>, ctx: &mut ParseContext, pointer: &str, body: &Map<String, Value>, b: &mut Builder) {
    let Some((family, table)) = table_key(src, ctx, pointer, body, "table") else {
        return;
    };
    let Some(chain_name) = str_field(body, "chain") else {
        ctx.warn(src.pointer(pointer), "rule without \"chain\"; ignored");
        return;
    };
    let mut rule = match body.get("expr") {
        Some(Value::Array(exprs)) => convert_rule(exprs),
        _ => {
            // nft never prints this; keep the rule, unknown, rather than a rule that
            // would match everything.
            ctx.warn(src.pointer(pointer), "rule without an \"expr\" array; kept as unrecognised");
            let mut r = convert_rule(&[]);
            r.matches.push(Match::Unrecognised { text: "(rule without expressions)".to_string() });
            r
        }
    };
    rule.comment = str_field(body, "comment").map(str::to_string);
    if let Some(c) = &rule.comment {
        rule.text.push_str(&format!(" comment {c:?}"));
        rule.text = rule.text.trim_start().to_string();
    }
    rule.origin = src.pointer(pointer);

    let t = b.table(family, table);
    if b.chain_mut(t, chain_name).is_none() {
        ctx.warn(
            src.pointer(pointer),
            format!("rule of chain {family} {table} {chain_name} that was not declared before; chain created"),
        );
        let chain = Chain {
            name: chain_name.to_string(),
            hook: None,
            chain_type: None,
            priority: None,
            policy: None,
            rules: Vec::new(),
            counters: None,
            origin: src.pointer(pointer),
        };
        b.put_chain(t, chain);
    }
    if let Some(chain) = b.chain_mut(t, chain_name) {
        chain.rules.push(rule);
    }
}

/// What one statement contributes to a rule.
enum Effect {
    /// A condition (limit, quota, or an expression we cannot type).
    Condition(Match),
    /// A verdict that ends evaluation of the rule (accept, jump, dnat ...).
    Verdict(Verdict),
    /// Changes the packet or its state but does not decide (mangle, notrack, xt target).
    Modify(String),
    /// Only observes (counter, log).
    Observe,
}

fn convert_rule(exprs: &[Value]) -> FirewallRule {
    let mut matches: Vec<Match> = Vec::new();
    let mut verdict: Option<Verdict> = None;
    let mut modify: Option<String> = None;
    let mut counters: Option<Counters> = None;
    let mut parts: Vec<String> = Vec::new();
    for expr in exprs {
        let Some((kind, body)) = expr.as_object().and_then(|o| o.iter().next()) else {
            let text = render(expr, false);
            parts.push(text.clone());
            matches.push(Match::Unrecognised { text });
            continue;
        };
        if kind == "match" {
            let (text, ms) = convert_match(body);
            parts.push(text);
            for m in ms {
                push_match(&mut matches, m);
            }
            continue;
        }
        let text = render_statement(kind, body);
        if kind == "counter" && counters.is_none() {
            if let Some(c) = body.as_object() {
                let num = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
                counters = Some(Counters { packets: num("packets"), bytes: num("bytes") });
            }
        }
        match statement_effect(kind, body, &text) {
            Effect::Condition(m) => matches.push(m),
            Effect::Verdict(v) => {
                if verdict.is_none() {
                    verdict = Some(v);
                }
            }
            Effect::Modify(t) => {
                if modify.is_none() {
                    modify = Some(t);
                }
            }
            Effect::Observe => {}
        }
        if !text.is_empty() {
            parts.push(text);
        }
    }
    FirewallRule {
        matches,
        verdict: verdict.or(modify.map(Verdict::Other)),
        counters,
        comment: None,
        text: parts.join(" "),
        origin: Location::Derived,
    }
}

/// Adds `m`, skipping an implied protocol already present (e.g. `ip protocol icmp` then
/// `icmp type`, which implies icmp again).
fn push_match(matches: &mut Vec<Match>, m: Match) {
    if let Match::Protocol { negated: false, protocol } = &m {
        if matches.iter().any(|x| matches!(x, Match::Protocol { negated: false, protocol: p } if p == protocol)) {
            return;
        }
    }
    matches.push(m);
}

fn statement_effect(kind: &str, body: &Value, text: &str) -> Effect {
    let target = || body.get("target").and_then(Value::as_str).unwrap_or("?").to_string();
    match kind {
        "accept" => Effect::Verdict(Verdict::Accept),
        "drop" => Effect::Verdict(Verdict::Drop),
        "reject" => Effect::Verdict(Verdict::Reject),
        "return" => Effect::Verdict(Verdict::Return),
        "jump" => Effect::Verdict(Verdict::Jump(target())),
        "goto" => Effect::Verdict(Verdict::Goto(target())),
        "queue" => Effect::Verdict(Verdict::Queue),
        "masquerade" => Effect::Verdict(Verdict::Masquerade),
        "snat" => Effect::Verdict(Verdict::Snat(nat_target(body))),
        "dnat" => Effect::Verdict(Verdict::Dnat(nat_target(body))),
        // The port only, as iptables' `REDIRECT --to-ports 15006` gives it.
        "redirect" => {
            Effect::Verdict(Verdict::Redirect(body.get("port").map(|p| render(p, false)).unwrap_or_default()))
        }
        // `continue` is the implicit end of every rule: nothing to record.
        "continue" => Effect::Observe,
        // A verdict map decides per packet: which verdict is not known statically.
        "vmap" => Effect::Verdict(Verdict::Other(text.to_string())),
        "counter" | "log" | "last" | "meter" => Effect::Observe,
        // Rate and count limits decide whether the rest of the rule applies.
        "limit" | "quota" | "ct count" => Effect::Condition(Match::Unrecognised { text: text.to_string() }),
        "xt" => xt_effect(body, text),
        "mangle" | "notrack" | "dup" | "fwd" | "tproxy" | "synproxy" | "set" | "map" | "ct helper" | "ct timeout"
        | "ct expectation" | "secmark" | "flow" => Effect::Modify(text.to_string()),
        // Unknown statement: it may be a condition, so the rule's outcome is unknown.
        _ => Effect::Condition(Match::Unrecognised { text: text.to_string() }),
    }
}

/// iptables-nft rules show their x_tables extensions as opaque `xt` objects.
fn xt_effect(body: &Value, text: &str) -> Effect {
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("");
    let name = body.get("name").and_then(Value::as_str).unwrap_or("");
    match (kind, name) {
        // `-m comment` always matches.
        ("match", "comment") => Effect::Observe,
        ("match", _) => Effect::Condition(Match::Unrecognised { text: text.to_string() }),
        ("target", "MASQUERADE") => Effect::Verdict(Verdict::Masquerade),
        ("target", "REJECT") => Effect::Verdict(Verdict::Reject),
        ("target", "ACCEPT") => Effect::Verdict(Verdict::Accept),
        ("target", "DROP") => Effect::Verdict(Verdict::Drop),
        ("target", "NFQUEUE" | "QUEUE") => Effect::Verdict(Verdict::Queue),
        // SNAT/DNAT/REDIRECT arguments are not in the JSON: keep them as "other".
        ("target", "SNAT" | "DNAT" | "REDIRECT") => Effect::Verdict(Verdict::Other(text.to_string())),
        ("target", _) => Effect::Modify(text.to_string()),
        ("watcher", _) => Effect::Observe,
        _ => Effect::Condition(Match::Unrecognised { text: text.to_string() }),
    }
}

/// `addr[:port]` of a nat statement, as nft writes it.
fn nat_target(body: &Value) -> String {
    let addr = body.get("addr").map(|a| render(a, false));
    let port = body.get("port").map(|p| render(p, false));
    match (addr, port) {
        (Some(a), Some(p)) if a.contains(':') && !a.contains(' ') => format!("[{a}]:{p}"),
        (Some(a), Some(p)) => format!("{a}:{p}"),
        (Some(a), None) => a,
        (None, Some(p)) => format!(":{p}"),
        (None, None) => String::new(),
    }
}

fn render_statement(kind: &str, body: &Value) -> String {
    let field = |k: &str| body.get(k);
    match kind {
        "accept" | "drop" | "return" | "continue" | "notrack" => kind.to_string(),
        "jump" | "goto" => format!("{kind} {}", field("target").map(|t| render(t, false)).unwrap_or_default()),
        "counter" => match body {
            Value::Object(c) => format!(
                "counter packets {} bytes {}",
                c.get("packets").and_then(Value::as_u64).unwrap_or(0),
                c.get("bytes").and_then(Value::as_u64).unwrap_or(0)
            ),
            Value::String(name) => format!("counter name {name}"),
            _ => "counter".to_string(),
        },
        "reject" => {
            let mut s = "reject".to_string();
            match (field("type").and_then(Value::as_str), field("expr")) {
                (Some("tcp reset"), _) => s.push_str(" with tcp reset"),
                (Some(t), Some(e)) => s.push_str(&format!(" with {t} {}", render(e, false))),
                (Some(t), None) => s.push_str(&format!(" with {t}")),
                _ => {}
            }
            s
        }
        "masquerade" | "snat" | "dnat" | "redirect" => {
            let target = nat_target(body);
            let mut s = kind.to_string();
            if !target.is_empty() {
                s.push_str(" to ");
                s.push_str(&target);
            }
            if let Some(flags) = field("flags") {
                s.push(' ');
                s.push_str(&render(flags, false));
            }
            s
        }
        "queue" => {
            let mut s = "queue".to_string();
            if let Some(n) = field("num") {
                s.push_str(&format!(" num {}", render(n, false)));
            }
            if let Some(f) = field("flags") {
                s.push(' ');
                s.push_str(&render(f, false));
            }
            s
        }
        "mangle" => {
            let key = field("key");
            let hex = key.is_some_and(is_mark);
            format!(
                "{} set {}",
                key.map(|k| render(k, hex)).unwrap_or_default(),
                field("value").map(|v| render(v, hex)).unwrap_or_default()
            )
        }
        "log" => {
            let mut s = "log".to_string();
            if let Some(p) = field("prefix").and_then(Value::as_str) {
                s.push_str(&format!(" prefix {p:?}"));
            }
            if let Some(l) = field("level") {
                s.push_str(&format!(" level {}", render(l, false)));
            }
            if let Some(g) = field("group") {
                s.push_str(&format!(" group {}", render(g, false)));
            }
            s
        }
        "limit" => {
            let inv = field("inv").and_then(Value::as_bool).unwrap_or(false);
            let rate = field("rate").map(|r| render(r, false)).unwrap_or_default();
            let unit = field("rate_unit").and_then(Value::as_str).filter(|u| *u != "packets");
            let per = field("per").and_then(Value::as_str).unwrap_or("second");
            let mut s = format!("limit rate {}{rate}", if inv { "over " } else { "" });
            if let Some(u) = unit {
                s.push_str(&format!(" {u}"));
            }
            s.push_str(&format!("/{per}"));
            if let Some(b) = field("burst").and_then(Value::as_u64).filter(|b| *b != 5 && *b != 0) {
                s.push_str(&format!(" burst {b} packets"));
            }
            s
        }
        "xt" => format!(
            "xt {} {}",
            field("type").and_then(Value::as_str).unwrap_or("?"),
            field("name").and_then(Value::as_str).unwrap_or("?")
        ),
        "vmap" => format!(
            "{} vmap {}",
            field("key").map(|k| render(k, false)).unwrap_or_default(),
            field("data").map(|d| render(d, false)).unwrap_or_default()
        ),
        _ => match body {
            Value::Null => kind.to_string(),
            Value::Object(o) if o.is_empty() => kind.to_string(),
            other => format!("{kind} {}", render(other, false)),
        },
    }
}

/// Whether an expression reads a mark (rendered in hex, as nft does).
fn is_mark(v: &Value) -> bool {
    match v {
        Value::Object(o) => {
            if let Some(m) = o.get("meta").or_else(|| o.get("ct")) {
                return key_of(m) == Some("mark");
            }
            o.get("&").and_then(Value::as_array).and_then(|a| a.first()).is_some_and(is_mark)
        }
        _ => false,
    }
}

/// The `key` of a `meta`/`ct` expression (older nft versions wrote the key as a string).
fn key_of(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("key").and_then(Value::as_str),
        _ => None,
    }
}

/// Compact nft-like rendering of an expression; unknown objects render as their JSON.
fn render(v: &Value, hex: bool) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => if *b { "exists" } else { "missing" }.to_string(),
        Value::Number(n) => match (hex, n.as_u64()) {
            (true, Some(u)) => format!("0x{u:08x}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(|i| render(i, hex)).collect::<Vec<_>>().join(","),
        Value::Object(o) => {
            let Some((kind, body)) = o.iter().next() else {
                return "{}".to_string();
            };
            let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("?");
            match kind.as_str() {
                "payload" => match (body.get("protocol").or_else(|| body.get("name")), body.get("field")) {
                    (Some(p), Some(f)) => format!("{} {}", render(p, false), render(f, false)),
                    _ => format!(
                        "@{},{},{}",
                        s("base"),
                        body.get("offset").map(|x| render(x, false)).unwrap_or_default(),
                        body.get("len").map(|x| render(x, false)).unwrap_or_default()
                    ),
                },
                "meta" => format!("meta {}", key_of(body).unwrap_or("?")),
                "ct" => {
                    let mut r = "ct".to_string();
                    if let Some(d) = body.get("dir").and_then(Value::as_str) {
                        r.push_str(&format!(" {d}"));
                    }
                    if let Some(f) = body.get("family").and_then(Value::as_str) {
                        r.push_str(&format!(" {f}"));
                    }
                    r.push_str(&format!(" {}", key_of(body).unwrap_or("?")));
                    r
                }
                "tcp option" | "ip option" | "sctp chunk" | "dccp option" => {
                    format!("{kind} {} {}", s("name"), body.get("field").and_then(Value::as_str).unwrap_or(""))
                        .trim_end()
                        .to_string()
                }
                "exthdr" => format!("exthdr {} {}", s("name"), body.get("field").and_then(Value::as_str).unwrap_or(""))
                    .trim_end()
                    .to_string(),
                "rt" | "socket" | "osf" | "ipsec" => format!("{kind} {}", key_of(body).unwrap_or("?")),
                "fib" => format!(
                    "fib {} {}",
                    body.get("flags").map(|f| render(f, false).replace(',', " . ")).unwrap_or_default(),
                    s("result")
                ),
                "numgen" => format!(
                    "numgen {} mod {}{}",
                    s("mode"),
                    body.get("mod").map(|m| render(m, false)).unwrap_or_default(),
                    body.get("offset")
                        .and_then(Value::as_u64)
                        .filter(|o| *o != 0)
                        .map(|o| format!(" offset {o}"))
                        .unwrap_or_default()
                ),
                "jhash" | "symhash" => {
                    format!("{kind} mod {}", body.get("mod").map(|m| render(m, false)).unwrap_or_default())
                }
                "prefix" => format!(
                    "{}/{}",
                    body.get("addr").map(|a| render(a, false)).unwrap_or_default(),
                    body.get("len").map(|l| render(l, false)).unwrap_or_default()
                ),
                "range" => match body.as_array().map(Vec::as_slice) {
                    Some([a, b]) => format!("{}-{}", render(a, hex), render(b, hex)),
                    _ => render(body, hex),
                },
                "set" => match body {
                    Value::Array(items) => {
                        format!("{{ {} }}", items.iter().map(|i| render_elem(i, hex)).collect::<Vec<_>>().join(", "))
                    }
                    other => render(other, hex),
                },
                "elem" => body.get("val").map(|x| render(x, hex)).unwrap_or_default(),
                "map" => format!(
                    "{} map {}",
                    body.get("key").map(|k| render(k, false)).unwrap_or_default(),
                    body.get("data").map(|d| render(d, false)).unwrap_or_default()
                ),
                "concat" => match body.as_array() {
                    Some(items) => items.iter().map(|i| render(i, hex)).collect::<Vec<_>>().join(" . "),
                    None => render(body, hex),
                },
                "&" | "|" | "^" | "<<" | ">>" => match body.as_array().map(Vec::as_slice) {
                    Some([a, b]) => {
                        let hex = hex || is_mark(a);
                        format!("{} {kind} {}", render(a, hex), render(b, hex))
                    }
                    _ => render(body, hex),
                },
                _ => serde_json::to_string(v).unwrap_or_default(),
            }
        }
    }
}

/// A set element: a value, or a `[key, data]` pair of a map.
fn render_elem(v: &Value, hex: bool) -> String {
    match v {
        Value::Array(pair) => match pair.as_slice() {
            [key, data] => format!("{} : {}", render(key, hex), render(data, false)),
            _ => render(v, hex),
        },
        other => render(other, hex),
    }
}

/// Converts one `match` expression: its rendering and the typed matches it stands for.
fn convert_match(body: &Value) -> (String, Vec<Match>) {
    let left = body.get("left").unwrap_or(&Value::Null);
    let right = body.get("right").unwrap_or(&Value::Null);
    let op = body.get("op").and_then(Value::as_str).unwrap_or("==");
    let hex = is_mark(left);
    // nft leaves out `==` except after a binary operation (`meta mark & 0x4000 == 0x4000`).
    let binop = left.as_object().is_some_and(|o| ["&", "|", "^", "<<", ">>"].iter().any(|k| o.contains_key(*k)));
    let text = match op {
        "==" if binop => format!("{} == {}", render(left, hex), render(right, hex)),
        "==" | "in" => format!("{} {}", render(left, hex), render(right, hex)),
        other => format!("{} {other} {}", render(left, hex), render(right, hex)),
    };
    let unknown = |t: &str| vec![Match::Unrecognised { text: t.to_string() }];
    let negated = match op {
        "==" | "in" => false,
        "!=" => true,
        "<" | ">" | "<=" | ">=" => {
            // Only port comparisons are expressible (as a range).
            let ms = ordered_port_match(left, op, right).unwrap_or_else(|| unknown(&text));
            return (text, ms);
        }
        _ => return (text.clone(), unknown(&text)),
    };
    let ms = typed_match(left, right, negated, &text).unwrap_or_else(|| unknown(&text));
    (text, ms)
}

/// Protocol and field of a `payload` expression.
fn payload(v: &Value) -> Option<(&str, &str)> {
    let p = v.get("payload")?;
    let proto = p.get("protocol").or_else(|| p.get("name"))?.as_str()?;
    Some((proto, p.get("field")?.as_str()?))
}

/// Transport protocols whose header fields imply the protocol (nft adds the dependency).
fn implied_protocol(proto: &str) -> Option<&'static str> {
    match proto {
        "tcp" => Some("tcp"),
        "udp" => Some("udp"),
        "sctp" => Some("sctp"),
        "dccp" => Some("dccp"),
        "udplite" => Some("udplite"),
        "icmp" => Some("icmp"),
        "icmpv6" => Some("ipv6-icmp"),
        "esp" => Some("esp"),
        "ah" => Some("ah"),
        "comp" => Some("comp"),
        "igmp" => Some("igmp"),
        _ => None,
    }
}

/// The typed matches of `left op right` (`text` is its rendering); None: not expressible.
fn typed_match(left: &Value, right: &Value, negated: bool, text: &str) -> Option<Vec<Match>> {
    if let Some((proto, field)) = payload(left) {
        return match (proto, field) {
            ("ip" | "ip6", "saddr" | "daddr") => {
                let src = field == "saddr";
                if let Some(set) = right.as_str().and_then(|s| s.strip_prefix('@')) {
                    let set = set.to_string();
                    return Some(vec![if src {
                        Match::SrcSet { negated, set }
                    } else {
                        Match::DstSet { negated, set }
                    }]);
                }
                let nets = addresses(right)?;
                Some(vec![if src { Match::SrcAddr { negated, nets } } else { Match::DstAddr { negated, nets } }])
            }
            ("ip", "protocol") | ("ip6", "nexthdr") => {
                Some(vec![Match::Protocol { negated, protocol: single_protocol(right)? }])
            }
            (_, "dport" | "sport") => {
                let m = match ports(right) {
                    Some(ports) if field == "dport" => Match::DstPort { negated, ports },
                    Some(ports) => Match::SrcPort { negated, ports },
                    // `tcp dport @set`: the ports are unknown, the protocol is not.
                    None => Match::Unrecognised { text: text.to_string() },
                };
                Some(with_protocol(proto, m))
            }
            ("icmp" | "icmpv6", "type") => {
                let m = match strings(right) {
                    Some(types) => Match::IcmpType { negated, types },
                    None => Match::Unrecognised { text: text.to_string() },
                };
                Some(with_protocol(proto, m))
            }
            // Any other header field: unknown, but the protocol it implies is certain.
            _ => Some(with_protocol(proto, Match::Unrecognised { text: text.to_string() })),
        };
    }
    if let Some(meta) = left.get("meta") {
        return match key_of(meta)? {
            "l4proto" => Some(vec![Match::Protocol { negated, protocol: single_protocol(right)? }]),
            "iifname" | "iif" => Some(vec![Match::InInterface { negated, name: right.as_str()?.to_string() }]),
            "oifname" | "oif" => Some(vec![Match::OutInterface { negated, name: right.as_str()?.to_string() }]),
            "mark" => Some(vec![Match::Mark { negated, value: u32_of(right)?, mask: None }]),
            _ => None,
        };
    }
    if let Some(ct) = left.get("ct") {
        // Only the plain (not directional) conntrack state is typed.
        if key_of(ct)? == "state" && ct.get("dir").is_none() {
            return Some(vec![Match::CtState { negated, states: strings(right)? }]);
        }
        return None;
    }
    // `meta mark & MASK == VALUE`
    if let Some([inner, mask]) = left.get("&").and_then(Value::as_array).map(Vec::as_slice) {
        if inner.get("meta").and_then(key_of) == Some("mark") {
            return Some(vec![Match::Mark { negated, value: u32_of(right)?, mask: Some(u32_of(mask)?) }]);
        }
    }
    None
}

fn with_protocol(proto: &str, m: Match) -> Vec<Match> {
    match implied_protocol(proto) {
        Some(p) => vec![Match::Protocol { negated: false, protocol: p.to_string() }, m],
        None => vec![m],
    }
}

fn ordered_port_match(left: &Value, op: &str, right: &Value) -> Option<Vec<Match>> {
    let (proto, field) = payload(left)?;
    if field != "dport" && field != "sport" {
        return None;
    }
    let p = u16::try_from(right.as_u64()?).ok()?;
    let range = match op {
        "<" => PortRange { start: 0, end: p.checked_sub(1)? },
        "<=" => PortRange { start: 0, end: p },
        ">" => PortRange { start: p.checked_add(1)?, end: u16::MAX },
        ">=" => PortRange { start: p, end: u16::MAX },
        _ => return None,
    };
    let ports = vec![range];
    let m = if field == "dport" {
        Match::DstPort { negated: false, ports }
    } else {
        Match::SrcPort { negated: false, ports }
    };
    Some(with_protocol(proto, m))
}

fn u32_of(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|u| u32::try_from(u).ok()),
        Value::String(s) => parse_u32(s),
        _ => None,
    }
}

/// Decimal or `0x` hexadecimal.
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// One string, an array of strings (flag lists) or a set of strings/numbers.
fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Number(n) => Some(vec![n.to_string()]),
        Value::Array(items) => items.iter().map(|i| strings(i).and_then(|mut v| v.pop())).collect(),
        Value::Object(o) => match o.get("set") {
            Some(Value::Array(items)) => items.iter().map(|i| strings(i).and_then(|mut v| v.pop())).collect(),
            _ => None,
        },
        _ => None,
    }
}

fn single_protocol(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(protocol_name(s)),
        Value::Number(n) => Some(protocol_name(&n.to_string())),
        _ => None,
    }
}

/// Canonical protocol name, so nft (`ip protocol 47`), iptables (`-p gre`) and numbers agree.
pub(crate) fn protocol_name(p: &str) -> String {
    let p = p.trim().to_ascii_lowercase();
    let name = match p.as_str() {
        "1" => "icmp",
        "2" => "igmp",
        "4" | "ipip" => "ipencap",
        "6" => "tcp",
        "17" => "udp",
        "41" => "ipv6",
        "47" => "gre",
        "50" | "ipsec-esp" => "esp",
        "51" | "ipsec-ah" => "ah",
        "58" | "icmpv6" | "icmp6" => "ipv6-icmp",
        "89" => "ospf",
        "94" => "ipip",
        "112" => "vrrp",
        "132" => "sctp",
        "136" => "udplite",
        other => other,
    };
    name.to_string()
}

/// A port, service name, range, or a set of those.
fn ports(v: &Value) -> Option<Vec<PortRange>> {
    match v {
        Value::Number(n) => Some(vec![PortRange::single(u16::try_from(n.as_u64()?).ok()?)]),
        Value::String(s) => Some(vec![PortRange::single(service_port(s)?)]),
        Value::Object(o) => {
            if let Some([a, b]) = o.get("range").and_then(Value::as_array).map(Vec::as_slice) {
                let (a, b) = (single_port(a)?, single_port(b)?);
                return (a <= b).then(|| vec![PortRange { start: a, end: b }]);
            }
            match o.get("set") {
                Some(Value::Array(items)) => {
                    let mut out = Vec::new();
                    for i in items {
                        out.extend(ports(i)?);
                    }
                    Some(out)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn single_port(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => u16::try_from(n.as_u64()?).ok(),
        Value::String(s) => service_port(s),
        _ => None,
    }
}

/// Service names nft may print instead of numbers (with `-S`); numbers as strings too.
pub(crate) fn service_port(s: &str) -> Option<u16> {
    if let Ok(p) = s.parse::<u16>() {
        return Some(p);
    }
    Some(match s {
        "ssh" => 22,
        "smtp" => 25,
        "domain" => 53,
        "bootps" => 67,
        "bootpc" => 68,
        "http" => 80,
        "ntp" => 123,
        "https" => 443,
        "isakmp" => 500,
        "ipsec-nat-t" => 4500,
        _ => return None,
    })
}

/// An address, prefix, range, or a set of those, as CIDRs. A range becomes the exact set
/// of prefixes that covers it.
fn addresses(v: &Value) -> Option<Vec<IpNet>> {
    match v {
        Value::String(s) => Some(vec![IpNet::from(s.parse::<IpAddr>().ok()?)]),
        Value::Object(o) => {
            if let Some(p) = o.get("prefix") {
                let addr: IpAddr = p.get("addr")?.as_str()?.parse().ok()?;
                let len = u8::try_from(p.get("len")?.as_u64()?).ok()?;
                return IpNet::new(addr, len).ok().map(|n| vec![n.trunc()]);
            }
            if let Some([a, b]) = o.get("range").and_then(Value::as_array).map(Vec::as_slice) {
                let a: IpAddr = a.as_str()?.parse().ok()?;
                let b: IpAddr = b.as_str()?.parse().ok()?;
                return range_to_cidrs(a, b);
            }
            if let Some(Value::Array(items)) = o.get("set") {
                let mut out = Vec::new();
                for i in items {
                    out.extend(addresses(i)?);
                }
                return Some(out);
            }
            if let Some(e) = o.get("elem") {
                return addresses(e.get("val")?);
            }
            None
        }
        _ => None,
    }
}

/// The minimal list of prefixes covering exactly `a..=b` (same family, `a <= b`).
fn range_to_cidrs(a: IpAddr, b: IpAddr) -> Option<Vec<IpNet>> {
    let (start, end, bits, v4) = match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32u32, true),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128u32, false),
        _ => return None,
    };
    if start > end {
        return None;
    }
    let mut out = Vec::new();
    let mut cur = start;
    loop {
        // Largest aligned block starting at `cur` that does not pass `end`.
        let mut size_bits = cur.trailing_zeros().min(bits);
        let block_last = loop {
            let last = if size_bits >= 128 { Some(u128::MAX) } else { cur.checked_add((1u128 << size_bits) - 1) };
            match last {
                Some(l) if l <= end => break l,
                _ if size_bits == 0 => return None,
                _ => size_bits -= 1,
            }
        };
        let len = u8::try_from(bits - size_bits).ok()?;
        let addr = if v4 {
            IpAddr::V4(std::net::Ipv4Addr::from(u32::try_from(cur).ok()?))
        } else {
            IpAddr::V6(std::net::Ipv6Addr::from(cur))
        };
        out.push(IpNet::new(addr, len).ok()?);
        if block_last >= end {
            break;
        }
        cur = block_last.checked_add(1)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_cover_is_exact() {
        let r = range_to_cidrs("10.3.0.1".parse().unwrap(), "10.3.0.9".parse().unwrap()).unwrap();
        let r: Vec<String> = r.iter().map(ToString::to_string).collect();
        assert_eq!(r, ["10.3.0.1/32", "10.3.0.2/31", "10.3.0.4/30", "10.3.0.8/31"]);
        let all = range_to_cidrs("0.0.0.0".parse().unwrap(), "255.255.255.255".parse().unwrap()).unwrap();
        assert_eq!(all, vec!["0.0.0.0/0".parse::<IpNet>().unwrap()]);
        let v6 =
            range_to_cidrs("::".parse().unwrap(), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap()).unwrap();
        assert_eq!(v6, vec!["::/0".parse::<IpNet>().unwrap()]);
        assert!(range_to_cidrs("10.0.0.9".parse().unwrap(), "10.0.0.1".parse().unwrap()).is_none());
    }

    #[test]
    fn protocol_names_agree() {
        assert_eq!(protocol_name("47"), "gre");
        assert_eq!(protocol_name("ICMPv6"), "ipv6-icmp");
        assert_eq!(protocol_name("esp"), "esp");
    }
}
