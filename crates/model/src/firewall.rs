//! Firewall rulesets, from nftables (`nft -j`) or iptables-save, in one shape:
//! tables of chains of rules, each rule a list of matches and a verdict.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::finding::Location;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FirewallSource {
    Nftables,
    Iptables,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ruleset {
    pub source: FirewallSource,
    pub tables: Vec<FirewallTable>,
    pub origin: Location,
}

impl Ruleset {
    /// All base chains attached to `hook` (e.g. `forward`), with their table.
    pub fn base_chains<'a>(&'a self, hook: Hook) -> impl Iterator<Item = (&'a FirewallTable, &'a Chain)> + 'a {
        self.tables.iter().flat_map(|t| t.chains.iter().map(move |c| (t, c))).filter(move |(_, c)| c.hook == Some(hook))
    }

    pub fn chain(&self, family: &str, table: &str, chain: &str) -> Option<&Chain> {
        self.tables.iter().find(|t| t.family == family && t.name == table)?.chains.iter().find(|c| c.name == chain)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FirewallTable {
    /// nft family (`ip`, `ip6`, `inet`, `arp`, `bridge`, `netdev`); iptables gives `ip`
    /// (and `ip6` for ip6tables-save).
    pub family: String,
    /// Table name (`filter`, `nat`, `mangle`, `raw` for iptables).
    pub name: String,
    pub chains: Vec<Chain>,
}

impl FirewallTable {
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
    Ingress,
    Egress,
}

impl Hook {
    pub fn parse(s: &str) -> Option<Hook> {
        match s.to_ascii_lowercase().as_str() {
            "prerouting" => Some(Hook::Prerouting),
            "input" => Some(Hook::Input),
            "forward" => Some(Hook::Forward),
            "output" => Some(Hook::Output),
            "postrouting" => Some(Hook::Postrouting),
            "ingress" => Some(Hook::Ingress),
            "egress" => Some(Hook::Egress),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Chain {
    pub name: String,
    /// Hook for base chains (iptables built-in chains map to their hook).
    pub hook: Option<Hook>,
    /// nft chain type (`filter`, `nat`, `route`); iptables: the table name.
    pub chain_type: Option<String>,
    pub priority: Option<i32>,
    /// Policy of a base chain; None for regular chains (which return).
    pub policy: Option<Verdict>,
    pub rules: Vec<FirewallRule>,
    pub counters: Option<Counters>,
    pub origin: Location,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FirewallRule {
    pub matches: Vec<Match>,
    /// What happens when all matches hold. None: the rule only counts/logs/marks.
    pub verdict: Option<Verdict>,
    pub counters: Option<Counters>,
    pub comment: Option<String>,
    /// The rule as written (iptables-save line, or a compact rendering of the nft expr).
    pub text: String,
    pub origin: Location,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "target", rename_all = "lowercase")]
pub enum Verdict {
    Accept,
    Drop,
    Reject,
    Return,
    Jump(String),
    Goto(String),
    Queue,
    /// nat: masquerade/snat/dnat/redirect; mangle TCPMSS etc.; kept by name.
    Masquerade,
    Snat(String),
    Dnat(String),
    Redirect(String),
    /// Any other target (`TCPMSS --clamp-mss-to-pmtu`, `MARK`, `LOG` with args, ...).
    Other(String),
}

impl Verdict {
    /// Whether the verdict ends the packet's walk through the hook with a drop.
    pub fn is_drop(&self) -> bool {
        matches!(self, Verdict::Drop | Verdict::Reject)
    }
}

/// One condition of a rule. `negated` inverts it. Anything the parser cannot express
/// becomes `Unrecognised` with the original text, so an evaluator can answer "unknown".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "match", rename_all = "snake_case")]
pub enum Match {
    SrcAddr {
        negated: bool,
        nets: Vec<IpNet>,
    },
    DstAddr {
        negated: bool,
        nets: Vec<IpNet>,
    },
    /// Address in a named set (`@set`, ipset `--match-set`).
    SrcSet {
        negated: bool,
        set: String,
    },
    DstSet {
        negated: bool,
        set: String,
    },
    /// L4 protocol by name (`tcp`, `udp`, `icmp`, `esp`, `47` ...).
    Protocol {
        negated: bool,
        protocol: String,
    },
    SrcPort {
        negated: bool,
        ports: Vec<PortRange>,
    },
    DstPort {
        negated: bool,
        ports: Vec<PortRange>,
    },
    InInterface {
        negated: bool,
        name: String,
    },
    OutInterface {
        negated: bool,
        name: String,
    },
    /// Conntrack states (`established`, `related`, `new`, `invalid`, `untracked`).
    CtState {
        negated: bool,
        states: Vec<String>,
    },
    Mark {
        negated: bool,
        value: u32,
        mask: Option<u32>,
    },
    IcmpType {
        negated: bool,
        types: Vec<String>,
    },
    /// `-m comment`/nft comment are not matches; kept out. This is anything else.
    Unrecognised {
        text: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl PortRange {
    pub fn single(p: u16) -> PortRange {
        PortRange { start: p, end: p }
    }

    pub fn contains(&self, p: u16) -> bool {
        self.start <= p && p <= self.end
    }
}
