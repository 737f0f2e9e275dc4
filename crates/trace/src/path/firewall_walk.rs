//! Walks nftables / iptables chains for one hook the way netfilter does: base chains in
//! priority order, jumps, gotos, returns and policies, evaluating the matches it knows.
//! A match it cannot evaluate forks the walk; differing outcomes make the verdict unknown.

use std::net::IpAddr;

use netsleuth_model::firewall::{Chain, FirewallRule, FirewallSource, FirewallTable, Hook, Match, Ruleset, Verdict};
use netsleuth_model::Location;

/// What the walk knows about the packet at this hook.
#[derive(Debug, Clone)]
pub(crate) struct FwPacket<'p> {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    /// Lower-case protocol name (`tcp`, `udp`, `icmp`, `esp` ...).
    pub(crate) proto: &'p str,
    pub(crate) sport: Option<u16>,
    pub(crate) dport: Option<u16>,
    /// None when the hook has no input interface (output) or it is not known.
    pub(crate) iif: Option<&'p str>,
    pub(crate) oif: Option<&'p str>,
    /// Conntrack state of this packet (`new` for the first packet of a flow).
    pub(crate) ct_state: &'p str,
    /// Packet mark; None once a rule may have changed it.
    pub(crate) mark: Option<u32>,
}

/// The final verdict of one hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FwVerdict {
    Accept,
    Drop,
    Unknown,
}

/// Result of walking one hook of one ruleset: the verdict and what decided it.
#[derive(Debug, Clone)]
pub(crate) struct FwOutcome {
    pub(crate) verdict: FwVerdict,
    /// `table/chain` of the deciding rule or policy (empty when no base chain exists).
    pub(crate) chain: String,
    /// The rule text or `policy drop`.
    pub(crate) what: String,
    pub(crate) origin: Location,
    /// Base chains evaluated.
    pub(crate) chains_seen: usize,
}

/// Bound on rule evaluations per hook (forks included): a pathological ruleset ends
/// `unknown` instead of running away.
const STEP_BUDGET: usize = 200_000;
const MAX_DEPTH: usize = 64;
const MAX_FORKS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    Unknown,
}

fn tri(b: bool) -> Tri {
    if b {
        Tri::Yes
    } else {
        Tri::No
    }
}

fn negate(t: Tri, negated: bool) -> Tri {
    match (t, negated) {
        (Tri::Yes, true) => Tri::No,
        (Tri::No, true) => Tri::Yes,
        (t, _) => t,
    }
}

/// Tables that `iptables-nft` owns: when `iptables-save` output exists too, they are
/// evaluated from it (its matches are parsed precisely; nft shows them as `xt` blobs).
pub(crate) fn is_iptables_nft_table(t: &FirewallTable) -> bool {
    matches!(t.family.as_str(), "ip" | "ip6")
        && matches!(t.name.as_str(), "filter" | "nat" | "mangle" | "raw" | "security")
        && t.chains
            .iter()
            .any(|c| matches!(c.name.as_str(), "INPUT" | "FORWARD" | "OUTPUT" | "PREROUTING" | "POSTROUTING"))
}

fn family_applies(family: &str, dst: IpAddr) -> bool {
    match family {
        "ip" => dst.is_ipv4(),
        "ip6" => dst.is_ipv6(),
        "inet" => true,
        // arp, bridge, netdev hooks are not on the routed path this tracer follows.
        _ => false,
    }
}

/// Walks every filtering base chain of `hook` (NAT chains are left out: address
/// translation is resolved from Kubernetes objects, and NAT chains do not drop).
/// `skip_iptables_nft`: leave out tables `iptables-save` also shows. `bridge`: only the
/// `bridge` family (frames bridged between two ports, e.g. two pods on one node's
/// bridge); otherwise the routed families (`ip`, `ip6`, `inet`).
pub(crate) fn walk_hook_of(
    rs: &Ruleset,
    hook: Hook,
    pkt: &FwPacket<'_>,
    skip_iptables_nft: bool,
    bridge: bool,
) -> FwOutcome {
    let mut bases: Vec<(&FirewallTable, &Chain)> = rs
        .base_chains(hook)
        .filter(|(t, c)| {
            let family_ok = if bridge { t.family == "bridge" } else { family_applies(&t.family, pkt.dst) };
            family_ok && c.chain_type.as_deref() != Some("nat")
        })
        .filter(|(t, _)| !(skip_iptables_nft && rs.source == FirewallSource::Nftables && is_iptables_nft_table(t)))
        .collect();
    bases.sort_by_key(|(_, c)| c.priority.unwrap_or(0));
    let mut last = FwOutcome {
        verdict: FwVerdict::Accept,
        chain: String::new(),
        what: "no base chain on this hook".into(),
        origin: rs.origin.clone(),
        chains_seen: bases.len(),
    };
    let mut budget = STEP_BUDGET;
    for (table, chain) in bases {
        let mut forks = MAX_FORKS;
        let out = walk_base(table, chain, pkt.clone(), &mut budget, &mut forks);
        let out = FwOutcome { chains_seen: last.chains_seen, ..out };
        match out.verdict {
            // An accept ends this base chain only; the next base chain still sees the packet.
            FwVerdict::Accept => last = out,
            FwVerdict::Drop | FwVerdict::Unknown => return out,
        }
    }
    last
}

fn name(table: &FirewallTable, chain: &str) -> String {
    format!("{} {}/{}", table.family, table.name, chain)
}

/// One frame of the walk: a chain and the next rule to look at.
#[derive(Clone, Copy)]
struct Frame<'r> {
    chain: &'r Chain,
    next: usize,
}

fn walk_base(
    table: &FirewallTable,
    base: &Chain,
    pkt: FwPacket<'_>,
    budget: &mut usize,
    forks: &mut usize,
) -> FwOutcome {
    walk_from(table, base, vec![Frame { chain: base, next: 0 }], pkt, budget, forks)
}

fn outcome(verdict: FwVerdict, table: &FirewallTable, chain: &Chain, what: String, origin: Location) -> FwOutcome {
    FwOutcome { verdict, chain: name(table, &chain.name), what, origin, chains_seen: 0 }
}

fn rule_outcome(verdict: FwVerdict, table: &FirewallTable, chain: &Chain, rule: &FirewallRule) -> FwOutcome {
    outcome(verdict, table, chain, rule.text.clone(), rule.origin.clone())
}

fn walk_from<'r>(
    table: &'r FirewallTable,
    base: &'r Chain,
    mut stack: Vec<Frame<'r>>,
    mut pkt: FwPacket<'_>,
    budget: &mut usize,
    forks: &mut usize,
) -> FwOutcome {
    loop {
        let Some(frame) = stack.last_mut() else {
            return policy_outcome(table, base);
        };
        let chain = frame.chain;
        let Some(rule) = chain.rules.get(frame.next) else {
            // End of chain: a regular chain returns, the base chain applies its policy.
            stack.pop();
            if stack.is_empty() {
                return policy_outcome(table, base);
            }
            continue;
        };
        frame.next += 1;
        if *budget == 0 {
            return rule_outcome(FwVerdict::Unknown, table, chain, rule);
        }
        *budget -= 1;
        let Some(verdict) = &rule.verdict else {
            // Counting/logging rules do not decide; a mark rule makes the mark unknown.
            if rule.text.to_ascii_lowercase().contains("mark set") {
                pkt.mark = None;
            }
            continue;
        };
        let m = rule_matches(rule, &pkt);
        match m {
            Tri::No => continue,
            Tri::Yes => {}
            Tri::Unknown => {
                // Fork: the rest of the walk with and without this rule. Equal verdicts
                // mean the unknown match did not matter.
                if *forks == 0 {
                    return rule_outcome(FwVerdict::Unknown, table, chain, rule);
                }
                *forks -= 1;
                let skip = walk_from(table, base, stack.clone(), pkt.clone(), budget, forks);
                let take = apply(table, base, stack.clone(), chain, rule, verdict, pkt.clone(), budget, forks);
                if skip.verdict == take.verdict && skip.verdict != FwVerdict::Unknown {
                    return take;
                }
                let mut out = rule_outcome(FwVerdict::Unknown, table, chain, rule);
                out.what = format!("{} (cannot evaluate: {})", rule.text, unknown_matches(rule, &pkt));
                return out;
            }
        }
        match step(verdict, table, &mut stack, &mut pkt) {
            Step::Continue => {}
            Step::Done(v) => return rule_outcome(v, table, chain, rule),
            Step::MissingChain(target) => {
                let mut out = rule_outcome(FwVerdict::Unknown, table, chain, rule);
                out.what = format!("{} (chain {target} is not in the ruleset)", rule.text);
                return out;
            }
            Step::TooDeep => {
                let mut out = rule_outcome(FwVerdict::Unknown, table, chain, rule);
                out.what = format!("{} (jumps nested deeper than {MAX_DEPTH})", rule.text);
                return out;
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn apply<'r>(
    table: &'r FirewallTable,
    base: &'r Chain,
    mut stack: Vec<Frame<'r>>,
    chain: &'r Chain,
    rule: &'r FirewallRule,
    verdict: &Verdict,
    mut pkt: FwPacket<'_>,
    budget: &mut usize,
    forks: &mut usize,
) -> FwOutcome {
    match step(verdict, table, &mut stack, &mut pkt) {
        Step::Continue => walk_from(table, base, stack, pkt, budget, forks),
        Step::Done(v) => rule_outcome(v, table, chain, rule),
        Step::MissingChain(_) | Step::TooDeep => rule_outcome(FwVerdict::Unknown, table, chain, rule),
    }
}

enum Step {
    Continue,
    Done(FwVerdict),
    MissingChain(String),
    TooDeep,
}

fn step<'r>(verdict: &Verdict, table: &'r FirewallTable, stack: &mut Vec<Frame<'r>>, pkt: &mut FwPacket<'_>) -> Step {
    match verdict {
        Verdict::Accept => Step::Done(FwVerdict::Accept),
        Verdict::Drop | Verdict::Reject => Step::Done(FwVerdict::Drop),
        Verdict::Queue => Step::Done(FwVerdict::Unknown),
        Verdict::Return => {
            stack.pop();
            Step::Continue
        }
        Verdict::Jump(target) | Verdict::Goto(target) => {
            let Some(next) = table.chain(target) else {
                return Step::MissingChain(target.clone());
            };
            if stack.len() >= MAX_DEPTH {
                return Step::TooDeep;
            }
            if matches!(verdict, Verdict::Goto(_)) {
                // A goto does not come back here: a return goes to the caller's caller.
                stack.pop();
                if stack.is_empty() {
                    // Goto from the base chain: a return of the target ends in the policy;
                    // keep a finished frame of the base to stand for it.
                    return goto_from_base(next, stack);
                }
            }
            stack.push(Frame { chain: next, next: 0 });
            Step::Continue
        }
        Verdict::Masquerade | Verdict::Snat(_) | Verdict::Dnat(_) | Verdict::Redirect(_) => Step::Continue,
        Verdict::Other(text) => {
            let t = text.to_ascii_uppercase();
            if t.starts_with("MARK") || t.starts_with("CONNMARK") || t.contains("MARK SET") {
                pkt.mark = None;
            }
            Step::Continue
        }
    }
}

fn goto_from_base<'r>(next: &'r Chain, stack: &mut Vec<Frame<'r>>) -> Step {
    stack.push(Frame { chain: next, next: 0 });
    Step::Continue
}

fn policy_outcome(table: &FirewallTable, base: &Chain) -> FwOutcome {
    let (verdict, what) = match &base.policy {
        Some(v) if v.is_drop() => (FwVerdict::Drop, "policy drop".to_string()),
        Some(Verdict::Accept) | None => (FwVerdict::Accept, "policy accept".to_string()),
        Some(other) => (FwVerdict::Unknown, format!("policy {other:?}")),
    };
    outcome(verdict, table, base, what, base.origin.clone())
}

fn rule_matches(rule: &FirewallRule, pkt: &FwPacket<'_>) -> Tri {
    let mut result = Tri::Yes;
    for m in &rule.matches {
        match eval(m, pkt) {
            Tri::No => return Tri::No,
            Tri::Unknown => result = Tri::Unknown,
            Tri::Yes => {}
        }
    }
    result
}

fn unknown_matches(rule: &FirewallRule, pkt: &FwPacket<'_>) -> String {
    let parts: Vec<String> = rule
        .matches
        .iter()
        .filter(|m| eval(m, pkt) == Tri::Unknown)
        .map(|m| match m {
            Match::Unrecognised { text } => text.clone(),
            Match::SrcSet { set, .. } | Match::DstSet { set, .. } => format!("set {set} (contents not in the bundle)"),
            Match::SrcPort { .. } => "source port (not known)".into(),
            Match::DstPort { .. } => "destination port (not known)".into(),
            Match::InInterface { name, .. } => format!("input interface {name}"),
            Match::OutInterface { name, .. } => format!("output interface {name}"),
            Match::Mark { .. } => "mark (changed earlier)".into(),
            other => format!("{other:?}"),
        })
        .collect();
    parts.join(", ")
}

/// Protocol numbers for the names iptables and nft use.
pub(crate) fn proto_number(p: &str) -> Option<u8> {
    Some(match p.to_ascii_lowercase().as_str() {
        "icmp" => 1,
        "igmp" => 2,
        "ipip" | "ipencap" => 4,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmpv6" | "ipv6-icmp" => 58,
        "sctp" => 132,
        n => return n.parse().ok(),
    })
}

fn has_ports(proto: &str) -> bool {
    matches!(proto, "tcp" | "udp" | "sctp")
}

/// iptables interface names end in `+` as a wildcard; nft uses `*`.
fn iface_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('+').or_else(|| pattern.strip_suffix('*')) {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn eval(m: &Match, pkt: &FwPacket<'_>) -> Tri {
    match m {
        Match::SrcAddr { negated, nets } => negate(tri(nets.iter().any(|n| n.contains(&pkt.src))), *negated),
        Match::DstAddr { negated, nets } => negate(tri(nets.iter().any(|n| n.contains(&pkt.dst))), *negated),
        Match::SrcSet { .. } | Match::DstSet { .. } => Tri::Unknown,
        Match::Protocol { negated, protocol } => {
            let p = protocol.to_ascii_lowercase();
            if p == "all" || p == "0" {
                return negate(Tri::Yes, *negated);
            }
            let same = p == pkt.proto || (proto_number(&p).is_some() && proto_number(&p) == proto_number(pkt.proto));
            negate(tri(same), *negated)
        }
        Match::SrcPort { negated, ports } => port_match(ports, pkt.sport, pkt.proto, *negated),
        Match::DstPort { negated, ports } => port_match(ports, pkt.dport, pkt.proto, *negated),
        Match::InInterface { negated, name } => match pkt.iif {
            Some(i) => negate(tri(iface_matches(name, i)), *negated),
            None => Tri::Unknown,
        },
        Match::OutInterface { negated, name } => match pkt.oif {
            Some(o) => negate(tri(iface_matches(name, o)), *negated),
            None => Tri::Unknown,
        },
        Match::CtState { negated, states } => {
            negate(tri(states.iter().any(|s| s.eq_ignore_ascii_case(pkt.ct_state))), *negated)
        }
        Match::Mark { negated, value, mask } => match pkt.mark {
            Some(mark) => {
                let mask = mask.unwrap_or(u32::MAX);
                negate(tri(mark & mask == value & mask), *negated)
            }
            None => Tri::Unknown,
        },
        Match::IcmpType { negated, types } => {
            if !matches!(pkt.proto, "icmp" | "icmpv6") {
                return negate(Tri::No, *negated);
            }
            let echo =
                types.iter().any(|t| matches!(t.to_ascii_lowercase().as_str(), "echo-request" | "8" | "128" | "any"));
            negate(tri(echo), *negated)
        }
        Match::Unrecognised { text } => eval_text(text, pkt),
    }
}

/// The few unparsed nft expressions whose answer is known from the packet's family:
/// `ether type ip`, `meta protocol ip6`, `meta nfproto ipv4` (and `!=`, and `{ a, b }` sets).
fn eval_text(text: &str, pkt: &FwPacket<'_>) -> Tri {
    let t = text.trim();
    for prefix in ["ether type ", "meta protocol ", "meta nfproto "] {
        let Some(rest) = t.strip_prefix(prefix) else { continue };
        let (negated, value) = match rest.strip_prefix("!= ") {
            Some(v) => (true, v),
            None => (false, rest.strip_prefix("== ").unwrap_or(rest)),
        };
        let family: &[&str] =
            if pkt.dst.is_ipv4() { &["ip", "ipv4", "0x0800", "2"] } else { &["ip6", "ipv6", "0x86dd", "10"] };
        let values = value.trim().trim_start_matches('{').trim_end_matches('}');
        let hit = values.split(',').map(str::trim).any(|v| family.contains(&v));
        return negate(tri(hit), negated);
    }
    Tri::Unknown
}

fn port_match(ports: &[netsleuth_model::firewall::PortRange], port: Option<u16>, proto: &str, negated: bool) -> Tri {
    if !has_ports(proto) {
        // A port match implies a port-carrying protocol: it fails for ICMP, ESP ...
        return Tri::No;
    }
    match port {
        Some(p) => negate(tri(ports.iter().any(|r| r.contains(p))), negated),
        None => Tri::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsleuth_model::firewall::{Counters, PortRange};

    fn rule(matches: Vec<Match>, verdict: Option<Verdict>, text: &str) -> FirewallRule {
        FirewallRule {
            matches,
            verdict,
            counters: None::<Counters>,
            comment: None,
            text: text.into(),
            origin: Location::line("hosts/h/iptables-save.txt", 7),
        }
    }

    fn chain(name: &str, hook: Option<Hook>, policy: Option<Verdict>, rules: Vec<FirewallRule>) -> Chain {
        Chain {
            name: name.into(),
            hook,
            chain_type: Some("filter".into()),
            priority: Some(0),
            policy,
            rules,
            counters: None,
            origin: Location::line("hosts/h/iptables-save.txt", 1),
        }
    }

    fn ruleset(chains: Vec<Chain>) -> Ruleset {
        Ruleset {
            source: FirewallSource::Iptables,
            tables: vec![FirewallTable { family: "ip".into(), name: "filter".into(), chains }],
            origin: Location::file("hosts/h/iptables-save.txt"),
        }
    }

    fn walk_hook(rs: &Ruleset, hook: Hook, pkt: &FwPacket<'_>, skip: bool) -> FwOutcome {
        walk_hook_of(rs, hook, pkt, skip, false)
    }

    fn pkt(dport: Option<u16>) -> FwPacket<'static> {
        FwPacket {
            src: "10.244.1.10".parse().unwrap(),
            dst: "10.20.1.10".parse().unwrap(),
            proto: "tcp",
            sport: None,
            dport,
            iif: Some("cni0"),
            oif: Some("wg0"),
            ct_state: "new",
            mark: Some(0),
        }
    }

    fn dst(net: &str) -> Match {
        Match::DstAddr { negated: false, nets: vec![net.parse().unwrap()] }
    }

    #[test]
    fn policy_drop_applies_when_nothing_accepts() {
        let rs = ruleset(vec![chain(
            "FORWARD",
            Some(Hook::Forward),
            Some(Verdict::Drop),
            vec![rule(
                vec![Match::CtState { negated: false, states: vec!["established".into()] }],
                Some(Verdict::Accept),
                "-A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT",
            )],
        )]);
        let out = walk_hook(&rs, Hook::Forward, &pkt(Some(80)), false);
        assert_eq!(out.verdict, FwVerdict::Drop);
        assert_eq!(out.what, "policy drop");
        assert_eq!(out.chain, "ip filter/FORWARD");
    }

    #[test]
    fn jump_return_and_goto() {
        // FORWARD: jump A (returns), goto B (drops port 22, else falls off = return to
        // FORWARD's caller, i.e. the policy accept).
        let a = chain(
            "A",
            None,
            None,
            vec![rule(vec![dst("10.20.0.0/16")], Some(Verdict::Return), "-A A -d 10.20.0.0/16 -j RETURN")],
        );
        let b = chain(
            "B",
            None,
            None,
            vec![rule(
                vec![
                    Match::DstPort { negated: false, ports: vec![PortRange::single(22)] },
                    Match::Protocol { negated: false, protocol: "tcp".into() },
                ],
                Some(Verdict::Drop),
                "-A B -p tcp --dport 22 -j DROP",
            )],
        );
        let fwd = chain(
            "FORWARD",
            Some(Hook::Forward),
            Some(Verdict::Accept),
            vec![
                rule(vec![], Some(Verdict::Jump("A".into())), "-A FORWARD -j A"),
                rule(vec![], Some(Verdict::Goto("B".into())), "-A FORWARD -g B"),
                rule(vec![], Some(Verdict::Drop), "-A FORWARD -j DROP"),
            ],
        );
        let rs = ruleset(vec![fwd, a, b]);
        let out = walk_hook(&rs, Hook::Forward, &pkt(Some(22)), false);
        assert_eq!((out.verdict, out.what.as_str()), (FwVerdict::Drop, "-A B -p tcp --dport 22 -j DROP"));
        // Port 80: B falls off its end; the goto means the FORWARD rule after it is skipped.
        let out = walk_hook(&rs, Hook::Forward, &pkt(Some(80)), false);
        assert_eq!((out.verdict, out.what.as_str()), (FwVerdict::Accept, "policy accept"));
    }

    #[test]
    fn unknown_match_makes_unknown_only_when_it_matters() {
        let fwd = chain(
            "FORWARD",
            Some(Hook::Forward),
            Some(Verdict::Drop),
            vec![rule(
                vec![Match::Unrecognised { text: "-m statistic --mode random".into() }],
                Some(Verdict::Accept),
                "-A FORWARD -m statistic -j ACCEPT",
            )],
        );
        let out = walk_hook(&ruleset(vec![fwd]), Hook::Forward, &pkt(Some(80)), false);
        assert_eq!(out.verdict, FwVerdict::Unknown);
        assert!(out.what.contains("statistic"), "{}", out.what);

        // The same unknown rule before an accept-all: both branches accept.
        let fwd = chain(
            "FORWARD",
            Some(Hook::Forward),
            Some(Verdict::Accept),
            vec![rule(
                vec![Match::SrcSet { negated: false, set: "allowed".into() }],
                Some(Verdict::Accept),
                "ip saddr @allowed accept",
            )],
        );
        assert_eq!(walk_hook(&ruleset(vec![fwd]), Hook::Forward, &pkt(Some(80)), false).verdict, FwVerdict::Accept);
    }

    #[test]
    fn unknown_port_is_unknown_and_interfaces_wildcard() {
        let fwd = chain(
            "FORWARD",
            Some(Hook::Forward),
            Some(Verdict::Accept),
            vec![
                rule(
                    vec![
                        Match::OutInterface { negated: false, name: "wg+".into() },
                        Match::Protocol { negated: false, protocol: "udp".into() },
                    ],
                    Some(Verdict::Drop),
                    "-A FORWARD -o wg+ -p udp -j DROP",
                ),
                rule(
                    vec![Match::DstPort { negated: false, ports: vec![PortRange { start: 1, end: 1023 }] }],
                    Some(Verdict::Drop),
                    "-A FORWARD -p tcp --dport 1:1023 -j DROP",
                ),
            ],
        );
        let rs = ruleset(vec![fwd]);
        assert_eq!(walk_hook(&rs, Hook::Forward, &pkt(None), false).verdict, FwVerdict::Unknown);
        assert_eq!(walk_hook(&rs, Hook::Forward, &pkt(Some(5000)), false).verdict, FwVerdict::Accept);
        let mut udp = pkt(Some(5001));
        udp.proto = "udp";
        let out = walk_hook(&rs, Hook::Forward, &udp, false);
        assert_eq!((out.verdict, out.what.as_str()), (FwVerdict::Drop, "-A FORWARD -o wg+ -p udp -j DROP"));
    }

    #[test]
    fn family_expressions_are_evaluated() {
        let p = pkt(Some(80));
        assert_eq!(eval_text("ether type arp", &p), Tri::No);
        assert_eq!(eval_text("ether type != arp", &p), Tri::Yes);
        assert_eq!(eval_text("meta nfproto { ipv4, ipv6 }", &p), Tri::Yes);
        assert_eq!(eval_text("meta skuid 0", &p), Tri::Unknown);
    }

    #[test]
    fn accept_in_one_base_chain_does_not_skip_the_next() {
        let mut first = chain(
            "fwd1",
            Some(Hook::Forward),
            Some(Verdict::Accept),
            vec![rule(vec![], Some(Verdict::Accept), "accept")],
        );
        first.priority = Some(-10);
        let second = chain("fwd2", Some(Hook::Forward), Some(Verdict::Drop), vec![]);
        let out = walk_hook(&ruleset(vec![second, first]), Hook::Forward, &pkt(Some(80)), false);
        assert_eq!((out.verdict, out.chain.as_str()), (FwVerdict::Drop, "ip filter/fwd2"));
    }
}
