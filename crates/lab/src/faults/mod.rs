//! The fault catalog: every fault the lab can inject, with its parameters, the layer it
//! breaks, what breaks, and what a correct diagnosis names (for the accuracy benchmark).
//!
//! Parameters come from three places, later ones winning: the catalog's defaults, the
//! scenario's `faults:` section, and the request (`NAME:VALUE` or `NAME:key=value,...`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use netsleuth_model::Layer;
use serde::Serialize;

use crate::scenario::Scenario;

pub(crate) mod apply;
mod dns;
mod ipsec;

/// One parameter of a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ParamSpec {
    pub name: &'static str,
    pub help: &'static str,
    /// Used when neither the scenario nor the request gives a value; None = required.
    pub default: Option<&'static str>,
    /// May be left out entirely (no value at all).
    pub optional: bool,
}

const fn req(name: &'static str, help: &'static str) -> ParamSpec {
    ParamSpec { name, help, default: None, optional: false }
}

const fn def(name: &'static str, help: &'static str, default: &'static str) -> ParamSpec {
    ParamSpec { name, help, default: Some(default), optional: false }
}

const fn opt(name: &'static str, help: &'static str) -> ParamSpec {
    ParamSpec { name, help, default: None, optional: true }
}

/// When `netsleuth analyze` on a bundle collected from the lab can see a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StaticVisibility {
    /// Right after `inject`: the configuration itself is wrong.
    Immediate,
    /// Only when the fault was there before the tunnel came up (`lab up --fault`), or after
    /// the last handshake aged past 180 s: the rules see a handshake that never completed.
    FromUp,
    /// Only traffic shows it (a live probe); no static rule can.
    None,
}

/// A fault of the catalog.
#[derive(Debug, Clone, Serialize)]
pub struct FaultSpec {
    pub name: &'static str,
    #[serde(serialize_with = "layer_str")]
    pub layer: Layer,
    /// What inject does.
    pub does: &'static str,
    /// What breaks, as traffic shows it.
    pub breaks: &'static str,
    pub params: &'static [ParamSpec],
    /// The parameter `NAME:VALUE` sets.
    pub primary: Option<&'static str>,
    /// Rule ids a correct diagnosis reports (static rules of `netsleuth analyze`, or the
    /// cause below when no rule exists yet).
    pub expected_rules: &'static [&'static str],
    /// When the static rules can see it.
    pub static_visibility: StaticVisibility,
    /// The cause a correct diagnosis names, in words.
    pub diagnosis: &'static str,
    /// Cause ids (`DIAG-*` of `netsleuth diagnose`, or rule ids of the local-state rules) that
    /// name this fault correctly as seen from the scenario's source host (accuracy benchmark).
    /// `ID@PARAM`: the cause must also mention the fault parameter PARAM (for `host`: an
    /// address of that lab host), so a cause that blames the wrong hop does not count.
    /// `ID@tunnel`: the cause must mention an address of a host of the scenario that runs a
    /// tunnel (WireGuard or strongSwan): the drop is placed at a tunnel gateway, which is all a
    /// source host can see of a fault beyond it.
    /// `ID@segment`: the cause must mention an address of the faulted host or of a router whose
    /// next hop to the target is that host: a router that drops silently (no ICMP, not even
    /// time-exceeded, as Linux with forwarding off does) is located by the last hop that still
    /// answers, i.e. the segment from that hop to the faulted host.
    /// `~ID`: the fault is a latent risk that breaks nothing on its own (no MSS clamping while
    /// PMTUD works): a correct diagnosis reports no cause and mentions ID as context.
    pub diagnose_causes: &'static [&'static str],
    /// Cause ids that name this fault's mechanism when `netsleuth diagnose` runs to the same
    /// target *on the fault's host* (the router the source host's run points at: "follow the
    /// hop"). Same notation as `diagnose_causes`; `~ID`: the path from that host itself works,
    /// so a correct diagnosis reports no cause there and names ID as context.
    pub diagnose_on_host: &'static [&'static str],
}

impl FaultSpec {
    /// Whether the fault changes a WireGuard interface's configuration (it needs the peers
    /// configured first).
    pub fn changes_wireguard(&self) -> bool {
        self.params.iter().any(|p| p.name == "iface")
    }
}

fn layer_str<S: serde::Serializer>(l: &Layer, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(l.as_str())
}

const HOST: ParamSpec = req("host", "the lab host (namespace) where the fault strikes");

static CATALOG: &[FaultSpec] = &[
    FaultSpec {
        name: "mtu-mismatch",
        layer: Layer::Overlay,
        does: "sets the MTU of one end of a link (by default the pod's eth0 to 1500 while its node's veth and \
               the overlay stay at 1450)",
        breaks: "packets bigger than the other end's MTU are dropped silently by the receiving veth: the pod's \
                 1451-1500-byte packets vanish (no ICMP), small ones pass",
        params: &[HOST, req("dev", "the interface whose MTU changes"), req("mtu", "the new MTU")],
        primary: Some("mtu"),
        expected_rules: &["OVL-001"],
        static_visibility: StaticVisibility::Immediate,
        diagnosis: "pod interface MTU larger than the overlay (VXLAN) MTU / its veth peer",
        diagnose_causes: &["DIAG-MTU-001", "OVL-001"],
        diagnose_on_host: &["DIAG-MTU-001", "OVL-001"],
    },
    FaultSpec {
        name: "pmtud-blackhole",
        layer: Layer::Tunnel,
        does: "drops ICMP fragmentation-needed and ICMPv6 packet-too-big leaving or crossing the host (nftables)",
        breaks: "packets with DF bigger than the tunnel MTU vanish with no error: path MTU discovery cannot work \
                 (TCP without MSS clamping stalls on big segments)",
        params: &[HOST],
        primary: None,
        expected_rules: &[],
        static_visibility: StaticVisibility::None,
        diagnosis: "ICMP fragmentation-needed filtered on the gateway: PMTUD black hole",
        diagnose_causes: &["DIAG-MTU-001"],
        diagnose_on_host: &["DIAG-MTU-001"],
    },
    FaultSpec {
        name: "no-mss-clamp",
        layer: Layer::Tunnel,
        does: "removes the scenario's MSS-clamping nftables table from the host",
        breaks: "TCP handshakes through the tunnel keep the pods' MSS (1410 instead of 1380): big segments need \
                 PMTUD, and with ICMP filtered (pmtud-blackhole) they stall",
        params: &[HOST, req("table", "the scenario's clamping table, `FAMILY NAME`")],
        primary: None,
        expected_rules: &[],
        static_visibility: StaticVisibility::None,
        diagnosis: "no TCP MSS clamping on the gateway for the tunnel",
        diagnose_causes: &["~DIAG-MTU-003"],
        diagnose_on_host: &["~DIAG-MTU-003"],
    },
    FaultSpec {
        name: "udp-block",
        layer: Layer::Cloud,
        does: "drops UDP to and from a port on the host (nftables input, forward, output)",
        breaks: "WireGuard (51820) packets are dropped on the underlay: no handshake, nothing crosses the tunnel",
        params: &[HOST, def("port", "the UDP port", "51820")],
        primary: Some("port"),
        expected_rules: &["TUN-005"],
        static_visibility: StaticVisibility::FromUp,
        diagnosis: "UDP 51820 blocked on the underlay between the WireGuard peers: handshake never completes",
        diagnose_causes: &["DIAG-TUN-001", "DIAG-TUN-003", "DIAG-HOP-001@tunnel"],
        diagnose_on_host: &["TUN-005", "DIAG-TUN-001", "DIAG-TUN-003"],
    },
    FaultSpec {
        name: "wg-allowedips-wrong",
        layer: Layer::Tunnel,
        does: "replaces a peer's AllowedIPs on a WireGuard interface with a wrong list",
        breaks: "traffic to the remote range has no peer (dropped by WireGuard) and replies from it are refused",
        params: &[
            HOST,
            req("iface", "the scenario's WireGuard interface name"),
            req("peer", "the peer's host"),
            req("allowed", "the wrong AllowedIPs, comma-separated"),
        ],
        primary: Some("allowed"),
        expected_rules: &["TUN-007"],
        static_visibility: StaticVisibility::Immediate,
        diagnosis:
            "WireGuard AllowedIPs of the remote peer do not cover the remote range (route and AllowedIPs disagree)",
        diagnose_causes: &["DIAG-TUN-002", "DIAG-HOP-001@host", "DIAG-HOP-002@host"],
        diagnose_on_host: &["TUN-007", "DIAG-TUN-002"],
    },
    FaultSpec {
        name: "wg-allowedips-overlap",
        layer: Layer::Tunnel,
        does: "adds a second peer (random key, no endpoint) whose AllowedIPs overlap the real peer's",
        breaks:
            "the overlapping (more specific) range goes to the wrong peer, which has no endpoint: that part of the \
                 remote site is unreachable",
        params: &[HOST, req("iface", "the scenario's WireGuard interface name"), req("prefix", "the stolen prefix")],
        primary: Some("prefix"),
        expected_rules: &["TUN-001"],
        static_visibility: StaticVisibility::Immediate,
        diagnosis: "WireGuard AllowedIPs overlap between two peers",
        diagnose_causes: &["DIAG-TUN-001", "DIAG-TUN-002", "DIAG-HOP-001@host", "DIAG-HOP-002@host"],
        diagnose_on_host: &["TUN-001", "DIAG-TUN-001", "DIAG-TUN-002"],
    },
    FaultSpec {
        name: "wg-key-mismatch",
        layer: Layer::Tunnel,
        does: "replaces a peer's public key with a random one (same AllowedIPs, endpoint and keepalive)",
        breaks: "handshakes fail in both directions: the tunnel carries nothing",
        params: &[HOST, req("iface", "the scenario's WireGuard interface name"), req("peer", "the peer's host")],
        primary: None,
        expected_rules: &["TUN-005"],
        // The peer entry with the wrong key is new: it never had a handshake.
        static_visibility: StaticVisibility::Immediate,
        diagnosis: "WireGuard peer public key does not match the remote's key: handshake never completes",
        diagnose_causes: &["DIAG-TUN-001", "DIAG-TUN-003", "DIAG-HOP-001@host"],
        diagnose_on_host: &["TUN-005", "DIAG-TUN-001", "DIAG-TUN-003"],
    },
    FaultSpec {
        name: "ip-forward-off",
        layer: Layer::Node,
        does: "sets net.ipv4.ip_forward = 0",
        breaks: "the host stops routing: everything through it (pods to the tunnel) is dropped",
        params: &[HOST],
        primary: None,
        expected_rules: &["NODE-001"],
        static_visibility: StaticVisibility::Immediate,
        diagnosis: "IP forwarding disabled on the gateway",
        diagnose_causes: &["DIAG-HOP-002@host", "DIAG-HOP-001@segment", "DIAG-GW-002@host", "NODE-001"],
        diagnose_on_host: &["NODE-001"],
    },
    FaultSpec {
        name: "rp-filter-strict",
        layer: Layer::Node,
        does: "makes the return route asymmetric (optional `route` via `via`) and sets rp_filter = 1 on `all` and the \
               interface",
        breaks: "packets arriving on the interface whose source is routed back elsewhere are dropped as martians, \
                 without ICMP",
        params: &[
            HOST,
            req("dev", "the interface the traffic arrives on (scenario name)"),
            opt("route", "a prefix whose route is replaced to make the path asymmetric"),
            opt("via", "the new next hop of `route`"),
        ],
        primary: None,
        expected_rules: &["NODE-002"],
        static_visibility: StaticVisibility::Immediate,
        diagnosis: "strict reverse-path filter on the tunnel interface with an asymmetric return route",
        diagnose_causes: &["DIAG-HOP-001@tunnel", "NODE-002"],
        diagnose_on_host: &["NODE-002", "TUN-003"],
    },
    FaultSpec {
        name: "conntrack-full",
        layer: Layer::Node,
        does: "limits connection tracking to `max` entries (nf_conntrack_max where the namespace may set it, else an \
               nftables `ct count` limit: this kernel keeps nf_conntrack_max read-only in namespaces) and fills it \
               with UDP flows from the path's source",
        breaks: "new connections through the host are dropped while the table is full; existing ones continue",
        params: &[
            HOST,
            def("max", "the table size", "32"),
            opt("from", "the host that sends the filler flows (default: the path's source)"),
            opt("to", "ADDRESS:PORT of a UDP echo to send them to (default: the path's UDP target)"),
        ],
        primary: Some("max"),
        expected_rules: &["NODE-004", "NODE-005"],
        static_visibility: StaticVisibility::None,
        diagnosis: "connection-tracking table full on the gateway: new connections dropped",
        diagnose_causes: &["DIAG-HOP-001@host", "DIAG-GW-002@host", "NODE-004", "NODE-005"],
        diagnose_on_host: &["NODE-004", "NODE-005", "DIAG-FWD-002"],
    },
    FaultSpec {
        name: "route-missing",
        layer: Layer::Node,
        does: "deletes the host's route to a prefix",
        breaks: "traffic to the prefix takes the default route (or none) instead of the tunnel",
        params: &[HOST, req("to", "the destination prefix of the scenario route")],
        primary: Some("to"),
        expected_rules: &["TUN-003"],
        static_visibility: StaticVisibility::Immediate,
        diagnosis: "route to the remote site missing on the gateway (traffic bypasses the tunnel)",
        diagnose_causes: &["DIAG-HOP-002", "DIAG-HOP-001@host", "TUN-003"],
        diagnose_on_host: &["TUN-003", "DIAG-HOP-002"],
    },
    FaultSpec {
        name: "nft-egress-drop",
        layer: Layer::Policy,
        does: "adds an nftables forward chain with policy drop that accepts only established traffic and traffic to \
               `src`",
        breaks: "new connections from the pods in `src` are dropped on their node; traffic to them still passes",
        params: &[HOST, req("src", "the pod prefix whose egress is dropped")],
        primary: Some("src"),
        expected_rules: &["NODE-003"],
        static_visibility: StaticVisibility::Immediate,
        diagnosis: "node firewall (forward policy drop) drops the pods' egress",
        diagnose_causes: &["DIAG-HOP-001@host", "DIAG-GW-002@host", "NODE-003"],
        diagnose_on_host: &["NODE-003", "DIAG-FWD-001"],
    },
    FaultSpec {
        name: "underlay-loss",
        layer: Layer::Cloud,
        does: "drops a random share of packets leaving an interface of the host (nftables numgen; this kernel has no \
               netem)",
        breaks: "intermittent loss on the underlay: about `pct` % of tunnel packets in that direction are lost",
        params: &[
            HOST,
            def("pct", "percent of packets dropped (0-100)", "30"),
            opt("dev", "only packets leaving this interface"),
        ],
        primary: Some("pct"),
        expected_rules: &[],
        static_visibility: StaticVisibility::None,
        diagnosis: "packet loss on the underlay path between the WireGuard peers",
        diagnose_causes: &["DIAG-LOSS-001", "DIAG-LOSS-002"],
        diagnose_on_host: &["DIAG-LOSS-001", "DIAG-LOSS-002"],
    },
    ipsec::IKE_UDP_BLOCK,
    ipsec::IKE_PROPOSAL_MISMATCH,
    ipsec::IPSEC_PSK_MISMATCH,
    ipsec::IPSEC_TS_NOT_MIRRORED,
    dns::DNS_DOWN,
    dns::DNS_SLOW,
    dns::DNS_STALE,
    dns::NDOTS_AMPLIFICATION,
    dns::DNS_EGRESS_DROP,
];

/// Every fault, in catalog order.
pub fn catalog() -> &'static [FaultSpec] {
    CATALOG
}

/// A fault by name.
pub fn find(name: &str) -> Option<&'static FaultSpec> {
    CATALOG.iter().find(|f| f.name == name)
}

/// A request to inject a fault: `NAME`, `NAME:VALUE` (the primary parameter) or
/// `NAME:key=value,key=value` (a value may contain commas: `allowed=10.1.0.0/16,10.2.0.0/16`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FaultRequest {
    pub name: String,
    /// `NAME:VALUE`: the value of the fault's primary parameter.
    pub positional: Option<String>,
    pub params: BTreeMap<String, String>,
}

impl FaultRequest {
    pub fn named(name: &str) -> FaultRequest {
        FaultRequest { name: name.to_string(), ..FaultRequest::default() }
    }

    /// Adds or replaces a parameter (builder style).
    pub fn with(mut self, key: &str, value: &str) -> FaultRequest {
        self.params.insert(key.to_string(), value.to_string());
        self
    }
}

impl FromStr for FaultRequest {
    type Err = String;

    fn from_str(s: &str) -> Result<FaultRequest, String> {
        let s = s.trim();
        let (name, args) = s.split_once(':').unwrap_or((s, ""));
        if find(name).is_none() {
            let known: Vec<&str> = CATALOG.iter().map(|f| f.name).collect();
            return Err(format!("unknown fault {name:?} (faults: {})", known.join(", ")));
        }
        let mut req = FaultRequest::named(name);
        let mut last: Option<String> = None;
        for item in args.split(',').filter(|i| !i.trim().is_empty()) {
            let item = item.trim();
            match item.split_once('=') {
                Some((k, v)) => {
                    let k = k.trim();
                    if k.is_empty() {
                        return Err(format!("fault {name}: {item:?} has no parameter name"));
                    }
                    req.params.insert(k.to_string(), v.trim().to_string());
                    last = Some(k.to_string());
                }
                None => match &last {
                    // `allowed=a,b`: a bare item after a key continues its value.
                    Some(k) => {
                        if let Some(v) = req.params.get_mut(k) {
                            v.push(',');
                            v.push_str(item);
                        }
                    }
                    None => match &mut req.positional {
                        Some(v) => {
                            v.push(',');
                            v.push_str(item);
                        }
                        None => req.positional = Some(item.to_string()),
                    },
                },
            }
        }
        Ok(req)
    }
}

impl fmt::Display for FaultRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        let mut sep = ':';
        if let Some(p) = &self.positional {
            write!(f, "{sep}{p}")?;
            sep = ',';
        }
        for (k, v) in &self.params {
            write!(f, "{sep}{k}={v}")?;
            sep = ',';
        }
        Ok(())
    }
}

/// Every parameter of a request, with the catalog's and the scenario's defaults filled in.
pub fn resolve(
    req: &FaultRequest,
    scenario: &Scenario,
) -> Result<(&'static FaultSpec, BTreeMap<String, String>), String> {
    let spec = find(&req.name).ok_or_else(|| format!("unknown fault {:?}", req.name))?;
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for p in spec.params {
        if let Some(d) = p.default {
            params.insert(p.name.to_string(), d.to_string());
        }
    }
    params.extend(scenario.fault_defaults(spec.name));
    if let Some(v) = &req.positional {
        let primary = spec.primary.ok_or_else(|| {
            format!("fault {} takes no bare value ({v:?}); write key=value ({})", spec.name, param_names(spec))
        })?;
        params.insert(primary.to_string(), v.clone());
    }
    for (k, v) in &req.params {
        if !spec.params.iter().any(|p| p.name == k) {
            return Err(format!("fault {} has no parameter {k:?} (parameters: {})", spec.name, param_names(spec)));
        }
        params.insert(k.clone(), v.clone());
    }
    params.retain(|_, v| !v.is_empty());
    let missing: Vec<&str> =
        spec.params.iter().filter(|p| !p.optional && !params.contains_key(p.name)).map(|p| p.name).collect();
    if !missing.is_empty() {
        return Err(format!(
            "fault {} needs {} (the scenario {} sets no default; write {}:{})",
            spec.name,
            missing.join(", "),
            scenario.name(),
            spec.name,
            missing.iter().map(|m| format!("{m}=...")).collect::<Vec<_>>().join(",")
        ));
    }
    Ok((spec, params))
}

fn param_names(spec: &FaultSpec) -> String {
    spec.params.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        let r: FaultRequest = "udp-block:51820".parse().expect("valid");
        assert_eq!(r.positional.as_deref(), Some("51820"));
        let r: FaultRequest =
            "wg-allowedips-wrong:host=gw,allowed=10.99.0.2/32,10.21.0.0/16,peer=site".parse().expect("valid");
        assert_eq!(r.params.get("allowed").map(String::as_str), Some("10.99.0.2/32,10.21.0.0/16"));
        assert_eq!(r.params.get("peer").map(String::as_str), Some("site"));
        assert_eq!(r.to_string(), "wg-allowedips-wrong:allowed=10.99.0.2/32,10.21.0.0/16,host=gw,peer=site");
        let r: FaultRequest = "ip-forward-off".parse().expect("valid");
        assert_eq!(r, FaultRequest::named("ip-forward-off"));
        assert!("no-such-fault".parse::<FaultRequest>().unwrap_err().contains("unknown fault"));
        assert!("udp-block:=3".parse::<FaultRequest>().is_err());
    }

    #[test]
    fn catalog_is_consistent() {
        let mut names: Vec<&str> = catalog().iter().map(|f| f.name).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "fault names are unique");
        for f in catalog() {
            assert!(f.params.iter().any(|p| p.name == "host"), "{} strikes somewhere", f.name);
            if let Some(p) = f.primary {
                assert!(f.params.iter().any(|q| q.name == p), "{}: primary {p} is a parameter", f.name);
            }
            assert!(!f.diagnosis.is_empty() && !f.breaks.is_empty());
            if f.static_visibility != StaticVisibility::None {
                assert!(!f.expected_rules.is_empty(), "{}: rules that see it", f.name);
            }
            for r in f.expected_rules {
                assert!(netsleuth_rule_shape(r), "{}: {r}", f.name);
            }
            assert!(!f.diagnose_causes.is_empty(), "{}: the causes that diagnose it", f.name);
            assert!(!f.diagnose_on_host.is_empty(), "{}: the causes that diagnose it on its host", f.name);
            for c in f.diagnose_causes.iter().chain(f.diagnose_on_host) {
                let c = c.strip_prefix('~').unwrap_or(c);
                let (id, param) = c.split_once('@').map_or((c, None), |(i, p)| (i, Some(p)));
                let shape = netsleuth_rule_shape(id) || id.strip_prefix("DIAG-").is_some_and(netsleuth_rule_shape);
                assert!(shape, "{}: {c}", f.name);
                if let Some(p) = param.filter(|p| *p != "tunnel" && *p != "segment") {
                    assert!(f.params.iter().any(|q| q.name == p), "{}: {c} names a parameter", f.name);
                }
            }
        }
    }

    fn netsleuth_rule_shape(id: &str) -> bool {
        id.split_once('-').is_some_and(|(a, b)| a.bytes().all(|c| c.is_ascii_uppercase()) && b.len() == 3)
    }
}
