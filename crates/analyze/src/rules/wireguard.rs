//! WireGuard rules (TUN-001..006): AllowedIPs overlaps and empty peers, routes that keep
//! traffic out of the tunnel or clash with it, expired sessions, and NAT keepalive.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use netsleuth_model::firewall::{Hook, Match, Verdict};
use netsleuth_model::host::{Host, Route, RouteTable, RouteType};
use netsleuth_model::wireguard::{WireGuardInterface, WireGuardPeer};
use netsleuth_model::{Confidence, Evidence, Finding, Layer, Severity};

use crate::rule::{Context, Rule};
use crate::rules::node::{is_unicast_dst, route_lookup, WgPeerIndex};
use crate::support::overlaps;

/// WireGuard's REJECT_AFTER_TIME: a session older than this cannot carry data.
const REJECT_AFTER_SECS: i64 = 180;

pub(crate) const RULES: &[Rule] = &[
    Rule {
        id: "TUN-001",
        layer: Layer::Tunnel,
        severity: Severity::High,
        title: "WireGuard AllowedIPs overlap between peers",
        rationale: "AllowedIPs is WireGuard's routing table: each prefix belongs to exactly one peer \
                    of an interface. When two peers claim the same prefix, the last one configured \
                    takes it and the other silently loses it (`wg show` prints `(none)` or fewer \
                    prefixes for it); nested prefixes go to the more specific peer. One of several \
                    peers then gets no traffic, and packets from it are dropped as 'unallowed src IP' \
                    (FAILURES #23).",
        references: &[
            "https://www.wireguard.com/#cryptokey-routing",
            "https://man7.org/linux/man-pages/man8/wg.8.html",
        ],
        example: "host/hub/iface/wg0/peer/Xk3vQ9aB…: peers Xk3vQ9aB… and 7HcP0e2L… of wg0 both claim \
                  10.10.0.0/24; WireGuard gives it to 7HcP0e2L… (configured last)",
        check: check_overlap,
    },
    Rule {
        id: "TUN-002",
        layer: Layer::Tunnel,
        severity: Severity::High,
        title: "WireGuard peer without AllowedIPs",
        rationale: "A peer with no AllowedIPs receives no traffic (nothing routes to it) and every \
                    packet it sends is dropped as 'Packet has unallowed src IP'. In a runtime dump \
                    `allowed ips: (none)` is usually the symptom of another peer claiming the same \
                    prefix (FAILURES #23, #24).",
        references: &["https://www.wireguard.com/#cryptokey-routing"],
        example: "host/hub/iface/wg0/peer/Xk3vQ9aB…: allowed ips (none); its configured 10.10.0.2/32 is \
                  held by 7HcP0e2L…",
        check: check_no_allowed_ips,
    },
    Rule {
        id: "TUN-003",
        layer: Layer::Tunnel,
        severity: Severity::High,
        title: "Route for a peer's AllowedIPs does not use the WireGuard interface",
        rationale: "WireGuard only encrypts what the kernel routes into the interface. If the route \
                    lookup for an AllowedIPs prefix picks another device (a more specific LAN route, \
                    a stale route, `Table = off` without routes, a table no rule selects) the \
                    traffic leaves unencrypted on the underlay or is dropped, and the tunnel looks \
                    healthy but idle.",
        references: &[
            "https://man7.org/linux/man-pages/man8/wg-quick.8.html",
            "https://www.wireguard.com/netns/#improved-rule-based-routing",
        ],
        example: "host/gw-1/iface/wg0/peer/Xk3vQ9aB…: 10.20.0.0/16 of peer Xk3vQ9aB… is routed via eth0 \
                  (route 10.0.0.0/8 via 192.168.1.1 dev eth0): traffic never enters wg0",
        check: check_route_not_via_wg,
    },
    Rule {
        id: "TUN-004",
        layer: Layer::Tunnel,
        severity: Severity::Medium,
        title: "AllowedIPs overlap an existing route on another device",
        rationale: "wg-quick adds one route per AllowedIPs prefix. If the same prefix already exists on \
                    another device `ip route add` fails with 'RTNETLINK answers: File exists' and \
                    wg-quick aborts (FAILURES #45); a more specific route on another device inside the \
                    prefix steals that part of the peer's range.",
        references: &["https://man7.org/linux/man-pages/man8/wg-quick.8.html"],
        example: "host/gw-1/iface/wg0/peer/Xk3vQ9aB…: AllowedIPs 192.168.1.0/24 equals the route \
                  192.168.1.0/24 dev eth0 (table main): wg-quick fails with RTNETLINK answers: File exists",
        check: check_route_clash,
    },
    Rule {
        id: "TUN-005",
        layer: Layer::Tunnel,
        severity: Severity::High,
        title: "WireGuard handshake stale or never completed",
        rationale: "A WireGuard session older than REJECT_AFTER_TIME (180 s) cannot carry data; a peer \
                    that should carry traffic needs a handshake at least every 2 minutes while traffic \
                    flows. Never a handshake, or an old one with bytes sent and none received, means \
                    the initiations go unanswered: UDP port blocked, wrong public key, or a stale \
                    endpoint (FAILURES #9, #16, #44). Age is measured against the bundle's \
                    collected_at, never the wall clock.",
        references: &["wg-easy/wg-easy#1132", "h44z/wg-portal#79", "https://www.wireguard.com/protocol/"],
        example: "host/gw-1/iface/wg0/peer/Xk3vQ9aB…: latest handshake 912 s before the snapshot \
                  (limit 180 s); rx 0 B, tx 14800 B: packets go out, nothing comes back",
        check: check_handshake,
    },
    Rule {
        id: "TUN-006",
        layer: Layer::Tunnel,
        severity: Severity::Medium,
        title: "PersistentKeepalive off for a peer behind NAT",
        rationale: "A NAT keeps a UDP mapping only while packets flow (often 30-120 s). WireGuard is \
                    silent when idle, so without PersistentKeepalive the mapping expires and the side \
                    outside the NAT can no longer reach the peer until it sends again: links to NATed \
                    nodes die after idle and recover at random (FAILURES #22).",
        references: &["squat/kilo#26", "https://www.wireguard.com/quickstart/#nat-and-firewall-traversal-persistence"],
        example: "host/hub/iface/wg0/peer/Xk3vQ9aB…: endpoint 100.64.3.7:51820 is in CGNAT space (behind \
                  NAT) and PersistentKeepalive is off",
        check: check_keepalive,
    },
    Rule {
        id: "TUN-007",
        layer: Layer::Tunnel,
        severity: Severity::High,
        title: "Route into a WireGuard interface that no peer's AllowedIPs cover",
        rationale: "WireGuard's cryptokey routing sends a packet to the peer whose AllowedIPs hold its \
                    destination. A route that puts a prefix into the interface while no peer claims \
                    it (AllowedIPs edited on one side, a peer replaced, a range added to the routes \
                    but not to the peer) makes every packet to it fail with ENOKEY ('sendmsg: \
                    Required key not available'): the tunnel is up, the handshake fresh, and that \
                    range is black-holed.",
        references: &[
            "https://www.wireguard.com/#cryptokey-routing",
            "https://man7.org/linux/man-pages/man8/wg.8.html",
        ],
        example: "host/gw-1/iface/wg0/route/10.20.0.0/16: route 10.20.0.0/16 dev wg0 but no peer of wg0 has \
                  AllowedIPs covering it (peers: Xk3vQ9aB… 10.99.0.2/32, 10.21.0.0/16)",
        check: check_route_without_peer,
    },
];

// ---------------------------------------------------------------------------------------
// Helpers shared with the MTU and node rules
// ---------------------------------------------------------------------------------------

/// The WireGuard interfaces (runtime and config views) that belong to this host. wireguard-go
/// keeps its control sockets in one global folder, so `wg show all dump` run inside one
/// namespace lists the interfaces of every namespace: only those present in the host's
/// `ip link` count (all of them when links were not collected).
pub(crate) fn local_interfaces(host: &Host) -> impl Iterator<Item = &WireGuardInterface> {
    host.wireguard.iter().filter(move |w| host.interfaces.is_empty() || host.interface(&w.name).is_some())
}

/// One WireGuard interface per name: the runtime (dump) view when there is one, otherwise
/// the wg-quick config.
pub(crate) fn effective_interfaces(host: &Host) -> Vec<&WireGuardInterface> {
    let mut by_name: BTreeMap<&str, &WireGuardInterface> = BTreeMap::new();
    for w in local_interfaces(host) {
        match by_name.get(w.name.as_str()) {
            Some(prev) if prev.from_runtime || !w.from_runtime => {}
            _ => {
                by_name.insert(&w.name, w);
            }
        }
    }
    by_name.into_values().collect()
}

/// The wg-quick config view of an interface, if the bundle has one.
fn config_of<'a>(host: &'a Host, name: &str) -> Option<&'a WireGuardInterface> {
    host.wireguard.iter().find(|w| w.name == name && !w.from_runtime)
}

/// The runtime view of an interface, if the bundle has one.
fn runtime_of<'a>(host: &'a Host, name: &str) -> Option<&'a WireGuardInterface> {
    host.wireguard.iter().find(|w| w.name == name && w.from_runtime)
}

/// A public key shortened for display (`Xk3vQ9aB…`). Public keys are not secrets.
pub(crate) fn abbrev_key(key: &str) -> String {
    let short: String = key.chars().take(8).collect();
    if short.len() < key.len() {
        format!("{short}…")
    } else {
        short
    }
}

/// The IP address of an endpoint `1.2.3.4:51820` or `[fd00::1]:51820` (None for names).
pub(crate) fn endpoint_ip(endpoint: &str) -> Option<IpAddr> {
    let e = endpoint.trim();
    if let Some(rest) = e.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(ip);
    }
    e.rsplit_once(':').and_then(|(h, _)| h.parse().ok())
}

/// The wg-quick `Table =` setting from whichever view has it.
fn table_setting(host: &Host, wg: &WireGuardInterface) -> Option<String> {
    wg.table
        .clone()
        .or_else(|| config_of(host, &wg.name).and_then(|c| c.table.clone()))
        .map(|t| t.trim().to_ascii_lowercase())
}

/// The routing table wg-quick puts AllowedIPs routes into (None for `Table = off`).
fn wg_quick_table(setting: Option<&str>) -> Option<u32> {
    match setting {
        None | Some("auto" | "main") => Some(RouteTable::MAIN),
        Some("off") => None,
        Some(n) => n.parse().ok(),
    }
}

/// Addresses of a WireGuard interface: from ip addr and the config's `Address =`.
fn own_addresses(host: &Host, wg: &WireGuardInterface) -> Vec<IpNet> {
    let mut v: Vec<IpNet> = host.interface(&wg.name).map(|i| i.addresses.clone()).unwrap_or_default();
    v.extend(wg.addresses.iter().copied());
    if let Some(c) = config_of(host, &wg.name) {
        v.extend(c.addresses.iter().copied());
    }
    v
}

fn peer_subject(host: &Host, wg: &WireGuardInterface, peer: &WireGuardPeer) -> String {
    format!("{}/iface/{}/peer/{}", host.subject(), wg.name, abbrev_key(&peer.public_key))
}

/// Whether a peer is what the kernel/wireguard-go has loaded: a peer of a runtime view with
/// transfer counters (every dump line has them). The bundle reader appends peers found only
/// in a config to the runtime view; those have no counters.
fn in_dump(wg: &WireGuardInterface, peer: &WireGuardPeer) -> bool {
    wg.from_runtime && (peer.rx_bytes.is_some() || peer.tx_bytes.is_some())
}

fn allowed_excerpt(wg: &WireGuardInterface, peer: &WireGuardPeer) -> String {
    let list = if peer.allowed_ips.is_empty() {
        "(none)".to_string()
    } else {
        peer.allowed_ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    };
    if in_dump(wg, peer) {
        format!("peer {} allowed ips {list}", abbrev_key(&peer.public_key))
    } else {
        format!("[Peer] {} AllowedIPs = {list}", abbrev_key(&peer.public_key))
    }
}

fn route_text(r: &Route) -> String {
    let mut s = match r.route_type {
        RouteType::Unicast => r.dst.to_string(),
        other => format!("{} {}", format!("{other:?}").to_ascii_lowercase(), r.dst),
    };
    if let Some(g) = r.gateway {
        s.push_str(&format!(" via {g}"));
    }
    if let Some(d) = &r.dev {
        s.push_str(&format!(" dev {d}"));
    }
    if r.table != RouteTable::MAIN {
        s.push_str(&format!(" table {}", r.table));
    }
    s
}

fn join_limited(items: &[String], max: usize) -> String {
    let shown: Vec<&str> = items.iter().take(max).map(String::as_str).collect();
    let more = items.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

// ---------------------------------------------------------------------------------------
// TUN-001
// ---------------------------------------------------------------------------------------

/// Pairs (broader-or-equal index, narrower index) of AllowedIPs entries of different peers
/// that overlap. CIDRs either nest or are disjoint, so a sweep in address order with a stack
/// of enclosing prefixes finds all pairs in O(n log n + pairs).
fn overlapping_pairs(entries: &[(IpNet, usize)]) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| {
        let (n, _) = entries[i];
        (n.addr().is_ipv6(), n.network(), n.prefix_len(), i)
    });
    let mut stack: Vec<usize> = Vec::new();
    let mut pairs = Vec::new();
    for &i in &order {
        let (n, peer) = entries[i];
        while let Some(&top) = stack.last() {
            if entries[top].0.contains(&n.network()) && entries[top].0.addr().is_ipv6() == n.addr().is_ipv6() {
                break;
            }
            stack.pop();
        }
        for &s in &stack {
            if entries[s].1 != peer {
                pairs.push((s, i));
            }
        }
        stack.push(i);
    }
    pairs
}

fn check_overlap(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for host in &ctx.net.hosts {
        let mut reported: HashSet<(String, String, String)> = HashSet::new();
        for wg in local_interfaces(host) {
            let entries: Vec<(IpNet, usize)> = wg
                .peers
                .iter()
                .enumerate()
                .flat_map(|(pi, p)| p.allowed_ips.iter().map(move |a| (a.trunc(), pi)))
                .collect();
            // Group the overlapping prefixes by peer pair (lower index first).
            let mut by_pair: BTreeMap<(usize, usize), Vec<(IpNet, IpNet)>> = BTreeMap::new();
            for (a, b) in overlapping_pairs(&entries) {
                let ((na, pa), (nb, pb)) = (entries[a], entries[b]);
                // A default route on one peer with specifics on others is a deliberate pattern
                // (uplink peer plus sites); longest-prefix match handles it.
                if na != nb && na.prefix_len() == 0 {
                    continue;
                }
                let key = if pa < pb { (pa, pb) } else { (pb, pa) };
                by_pair.entry(key).or_default().push((na, nb));
            }
            for ((i, j), prefixes) in by_pair {
                let (Some(p1), Some(p2)) = (wg.peers.get(i), wg.peers.get(j)) else { continue };
                let dedup = (wg.name.clone(), p1.public_key.clone(), p2.public_key.clone());
                if !reported.insert(dedup) {
                    continue;
                }
                report_overlap(rule, host, wg, p1, p2, &prefixes, out);
            }
        }
    }
}

fn report_overlap(
    rule: &Rule,
    host: &Host,
    wg: &WireGuardInterface,
    p1: &WireGuardPeer,
    p2: &WireGuardPeer,
    prefixes: &[(IpNet, IpNet)],
    out: &mut Vec<Finding>,
) {
    let (k1, k2) = (abbrev_key(&p1.public_key), abbrev_key(&p2.public_key));
    let holder_of = |n: &IpNet| -> Option<String> {
        runtime_of(host, &wg.name)?
            .peers
            .iter()
            .find(|p| p.allowed_ips.iter().any(|a| a.trunc() == *n))
            .map(|p| abbrev_key(&p.public_key))
    };
    let mut parts = Vec::new();
    let mut identical = false;
    let mut confirmed = false;
    for (broad, narrow) in prefixes {
        if broad == narrow {
            identical = true;
            // In a config the later peer wins; a dump shows who actually holds it.
            let winner = match holder_of(broad) {
                Some(h) => {
                    confirmed = true;
                    format!("{h} holds it in the runtime dump")
                }
                None if wg.from_runtime => format!("{k2} holds it"),
                None => format!("WireGuard gives it to {k2}, the peer configured last"),
            };
            parts.push(format!("both claim {broad} ({winner})"));
        } else {
            let owner_broad = if p1.allowed_ips.iter().any(|a| a.trunc() == *broad) { &k1 } else { &k2 };
            let owner_narrow = if owner_broad == &k1 { &k2 } else { &k1 };
            parts.push(format!(
                "{owner_broad}'s {broad} contains {owner_narrow}'s {narrow} (longest prefix wins: {narrow} goes to \
                 {owner_narrow}, {owner_broad} gets only the rest)"
            ));
        }
    }
    let detail = format!(
        "peers {k1} and {k2} of {} on {} overlap: {}. A prefix belongs to one peer only, so the other peer \
         never receives that traffic and packets it sends from there are dropped as 'unallowed src IP'",
        wg.name,
        host.name,
        parts.join("; ")
    );
    let first = prefixes.first().map(|p| p.1.to_string()).unwrap_or_default();
    let mut f = rule.finding(
        peer_subject(host, wg, p1),
        format!("AllowedIPs of two peers of {} overlap", wg.name),
        detail,
        vec![
            Evidence::new(p1.origin.clone(), allowed_excerpt(wg, p1)),
            Evidence::new(p2.origin.clone(), allowed_excerpt(wg, p2)),
        ],
        format!(
            "give each peer distinct AllowedIPs: remove {first} from one of the two [Peer] sections of \
             /etc/wireguard/{0}.conf, then `wg syncconf {0} <(wg-quick strip {0})`",
            wg.name
        ),
        if confirmed {
            Confidence::Confirmed
        } else if identical {
            Confidence::Likely
        } else {
            Confidence::Possible
        },
    );
    if !identical {
        f.severity = Severity::Medium;
        f.detail.push_str(" (nested only: medium, since a more specific site inside a larger one can be intended)");
    }
    out.push(f);
}

// ---------------------------------------------------------------------------------------
// TUN-002
// ---------------------------------------------------------------------------------------

fn check_no_allowed_ips(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for host in &ctx.net.hosts {
        for wg in local_interfaces(host) {
            // The dump is the truth when present; a config peer is judged only without one.
            if !wg.from_runtime && runtime_of(host, &wg.name).is_some() {
                continue;
            }
            for peer in wg.peers.iter().filter(|p| p.allowed_ips.is_empty()) {
                let k = abbrev_key(&peer.public_key);
                let runtime = in_dump(wg, peer);
                let mut ev = vec![Evidence::new(peer.origin.clone(), allowed_excerpt(wg, peer))];
                let mut detail = if runtime {
                    format!("peer {k} of {} on {} shows allowed ips (none) in `wg show`", wg.name, host.name)
                } else {
                    format!("peer {k} of {} on {} has no AllowedIPs in its config", wg.name, host.name)
                };
                detail.push_str(
                    ": nothing is routed to it and every packet it sends is dropped as 'Packet has unallowed src IP'",
                );
                let mut stolen_by = Vec::new();
                if runtime {
                    if let Some(cfg) = config_of(host, &wg.name) {
                        if let Some(cp) = cfg.peers.iter().find(|p| p.public_key == peer.public_key) {
                            ev.push(Evidence::new(cp.origin.clone(), allowed_excerpt(cfg, cp)));
                            for a in &cp.allowed_ips {
                                if let Some(holder) =
                                    wg.peers.iter().find(|p| p.allowed_ips.iter().any(|b| b.trunc() == a.trunc()))
                                {
                                    stolen_by.push(format!("{a} is held by {}", abbrev_key(&holder.public_key)));
                                    ev.push(Evidence::new(holder.origin.clone(), allowed_excerpt(wg, holder)));
                                }
                            }
                        }
                    }
                }
                if !stolen_by.is_empty() {
                    detail.push_str(&format!(
                        ". Its configured prefixes went to other peers ({}): WireGuard moves a prefix to the last \
                         peer that claims it (see TUN-001)",
                        stolen_by.join(", ")
                    ));
                }
                out.push(rule.finding(
                    peer_subject(host, wg, peer),
                    format!("WireGuard peer {k} of {} has no AllowedIPs", wg.name),
                    detail,
                    ev,
                    format!(
                        "set `AllowedIPs = <peer tunnel address>/32` (plus the subnets behind it) in its [Peer] section \
                         of /etc/wireguard/{0}.conf, distinct from every other peer's, then `wg set {0} peer {1} \
                         allowed-ips <prefixes>`",
                        wg.name, peer.public_key
                    ),
                    if runtime { Confidence::Confirmed } else { Confidence::Likely },
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// TUN-003
// ---------------------------------------------------------------------------------------

fn check_route_not_via_wg(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for host in &ctx.net.hosts {
        if host.routes.routes.is_empty() {
            continue; // routes not collected: unknown
        }
        let rules_known = !host.rules.is_empty() || host.has_artifact("ip-rule.json");
        for wg in effective_interfaces(host) {
            if host.interface(&wg.name).is_some_and(|i| !i.up) {
                continue; // a down interface routes nothing; that is not a routing mistake
            }
            let setting = table_setting(host, wg);
            let table_off = setting.as_deref() == Some("off");
            let own = own_addresses(host, wg);
            for peer in &wg.peers {
                let mut bad: Vec<(String, Option<&Route>)> = Vec::new();
                for a in &peer.allowed_ips {
                    let a = a.trunc();
                    // The interface's own subnet is covered by its connected route; broader
                    // prefixes (up to 0.0.0.0/0) still need a route into the tunnel.
                    if own.iter().any(|o| a.contains(&o.addr()) && a.prefix_len() >= o.prefix_len()) {
                        continue;
                    }
                    if a.prefix_len() == 0 && (table_off || !rules_known) {
                        // A default route is wg-quick's fwmark/table business; with Table = off it
                        // is the operator's, without ip rules we cannot evaluate it.
                        continue;
                    }
                    let found = route_lookup(host, a.network(), None);
                    match found {
                        Some(r) if r.route_type == RouteType::Local => {}
                        Some(r) if r.dev.as_deref() == Some(wg.name.as_str()) && r.route_type == RouteType::Unicast => {
                        }
                        Some(r) => bad.push((format!("{a} → {}", route_text(r)), Some(r))),
                        None => bad.push((format!("{a} → no route"), None)),
                    }
                }
                if bad.is_empty() {
                    continue;
                }
                let k = abbrev_key(&peer.public_key);
                let texts: Vec<String> = bad.iter().map(|(t, _)| t.clone()).collect();
                let mut detail = format!(
                    "route lookups for AllowedIPs of peer {k} on {} do not use {}: {}. That traffic never enters \
                     the tunnel (it leaves unencrypted on another device, or is dropped)",
                    host.name,
                    wg.name,
                    join_limited(&texts, 6)
                );
                if table_off {
                    detail.push_str("; the interface has `Table = off`, so wg-quick added no routes");
                } else if let Some(t) = wg_quick_table(setting.as_deref()).filter(|t| *t != RouteTable::MAIN) {
                    detail.push_str(&format!(
                        "; wg-quick puts its routes into table {t}, which no policy rule selects for this traffic"
                    ));
                }
                let mut ev = vec![Evidence::new(peer.origin.clone(), allowed_excerpt(wg, peer))];
                ev.extend(
                    bad.iter().filter_map(|(_, r)| *r).take(4).map(|r| Evidence::new(r.origin.clone(), route_text(r))),
                );
                let first =
                    bad.first().map(|(t, _)| t.split(' ').next().unwrap_or_default().to_string()).unwrap_or_default();
                out.push(rule.finding(
                    peer_subject(host, wg, peer),
                    format!("AllowedIPs of peer {k} are not routed into {}", wg.name),
                    detail,
                    ev,
                    format!(
                        "ip route replace {first} dev {0} (one per prefix; with wg-quick use Table = auto or a \
                         PostUp line; delete a stale or more specific route on another device that captures it)",
                        wg.name
                    ),
                    if table_off { Confidence::Possible } else { Confidence::Likely },
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// TUN-004
// ---------------------------------------------------------------------------------------

fn check_route_clash(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for host in &ctx.net.hosts {
        if host.routes.routes.is_empty() {
            continue;
        }
        for wg in effective_interfaces(host) {
            let Some(table) = wg_quick_table(table_setting(host, wg).as_deref()) else { continue };
            let others: Vec<&Route> = host
                .routes
                .iter()
                .filter(|r| {
                    r.table == table
                        && r.dev.as_deref() != Some(wg.name.as_str())
                        && matches!(
                            r.route_type,
                            RouteType::Unicast | RouteType::Blackhole | RouteType::Unreachable | RouteType::Prohibit
                        )
                        && r.dst.prefix_len() > 0
                        && is_unicast_dst(&r.dst)
                })
                .collect();
            if others.is_empty() {
                continue;
            }
            for peer in &wg.peers {
                let mut clashes: Vec<(String, &Route)> = Vec::new();
                for a in peer.allowed_ips.iter().map(IpNet::trunc) {
                    if a.prefix_len() == 0 || !is_unicast_dst(&a) {
                        continue;
                    }
                    for r in others.iter().copied().filter(|r| overlaps(&a, &r.dst) && a.contains(&r.dst)) {
                        let text = if r.dst.trunc() == a {
                            format!(
                                "{a} equals the route {} (`ip route add {a} dev {}` fails with 'RTNETLINK answers: \
                                 File exists', wg-quick aborts, traffic keeps following that route)",
                                route_text(r),
                                wg.name
                            )
                        } else {
                            format!(
                                "{a} contains the more specific route {} (that part of the peer's range never enters \
                                 the tunnel)",
                                route_text(r)
                            )
                        };
                        clashes.push((text, r));
                    }
                }
                if clashes.is_empty() {
                    continue;
                }
                let k = abbrev_key(&peer.public_key);
                let texts: Vec<String> = clashes.iter().map(|(t, _)| t.clone()).collect();
                let mut ev = vec![Evidence::new(peer.origin.clone(), allowed_excerpt(wg, peer))];
                ev.extend(clashes.iter().take(4).map(|(_, r)| Evidence::new(r.origin.clone(), route_text(r))));
                let r0 = clashes.first().map(|(_, r)| route_text(r)).unwrap_or_default();
                out.push(rule.finding(
                    peer_subject(host, wg, peer),
                    format!("AllowedIPs of peer {k} clash with routes on other devices"),
                    format!("on {}, AllowedIPs of peer {k} of {}: {}", host.name, wg.name, join_limited(&texts, 4)),
                    ev,
                    format!(
                        "remove the overlap: `ip route del {r0}` if that route is stale, or narrow the peer's \
                         AllowedIPs in /etc/wireguard/{}.conf, or use `Table = off` and route explicitly",
                        wg.name
                    ),
                    Confidence::Likely,
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// TUN-005
// ---------------------------------------------------------------------------------------

fn check_handshake(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for host in &ctx.net.hosts {
        for wg in local_interfaces(host).filter(|w| w.from_runtime) {
            // Peers only in a config are not loaded: they have no handshake state to judge.
            for peer in wg.peers.iter().filter(|p| in_dump(wg, p)) {
                let rx = peer.rx_bytes.unwrap_or(0);
                let tx = peer.tx_bytes.unwrap_or(0);
                let configured = (!peer.allowed_ips.is_empty() && peer.endpoint.is_some()) || tx > 0;
                if !configured {
                    continue;
                }
                let (what, confidence) = match peer.latest_handshake.filter(|t| *t > 0) {
                    None => (
                        "no handshake ever completed".to_string(),
                        if tx > 0 && rx == 0 { Confidence::Confirmed } else { Confidence::Likely },
                    ),
                    Some(hs) => {
                        // Without a snapshot time the age cannot be judged.
                        let Some(now) = ctx.now else { continue };
                        let Some(age) = now.checked_sub(hs) else { continue };
                        if age <= REJECT_AFTER_SECS {
                            continue;
                        }
                        let conf = if peer.persistent_keepalive.is_some_and(|k| k > 0) || (tx > 0 && rx == 0) {
                            Confidence::Likely
                        } else {
                            // Without keepalive an idle peer legitimately has an old handshake.
                            Confidence::Possible
                        };
                        (
                            format!(
                                "latest handshake {age} s before the snapshot (limit {REJECT_AFTER_SECS} s: the session \
                                 has expired)"
                            ),
                            conf,
                        )
                    }
                };
                let meaning = if tx > 0 && rx == 0 {
                    "packets go out, nothing comes back: the UDP port is blocked on the path or at the peer, the \
                     public key is wrong (the peer logs 'Invalid handshake initiation'), or the endpoint is stale"
                } else if tx == 0 {
                    "nothing was ever sent to it: no traffic is routed into the tunnel (see TUN-003) or it has no \
                     endpoint to send to"
                } else {
                    "traffic flowed earlier and stopped: the peer or its endpoint went away, or a NAT mapping \
                     expired (see TUN-006)"
                };
                let k = abbrev_key(&peer.public_key);
                let ep = peer.endpoint.as_deref().unwrap_or("(none)");
                let hs_text = peer.latest_handshake.map_or_else(|| "0".to_string(), |t| t.to_string());
                out.push(rule.finding(
                    peer_subject(host, wg, peer),
                    format!("WireGuard peer {k} of {} has no live session", wg.name),
                    format!(
                        "peer {k} of {} on {} (endpoint {ep}): {what}; rx {rx} B, tx {tx} B — {meaning}",
                        wg.name, host.name
                    ),
                    vec![Evidence::new(
                        peer.origin.clone(),
                        format!("peer {k} endpoint {ep} latest-handshake {hs_text} rx {rx} tx {tx}"),
                    )],
                    format!(
                        "from both ends run `wg show {0} latest-handshakes`; check that UDP {1} is open towards \
                         the peer (security groups, NACLs, host firewall), that the peer's public key equals \
                         `wg pubkey` of the remote private key, and that endpoint {ep} is current; behind NAT add \
                         `PersistentKeepalive = 25`",
                        wg.name,
                        endpoint_port(ep).unwrap_or_else(|| "<listen port>".to_string())
                    ),
                    confidence,
                ));
            }
        }
    }
}

fn endpoint_port(ep: &str) -> Option<String> {
    let (_, port) = ep.rsplit_once(':')?;
    port.parse::<u16>().ok().map(|p| p.to_string())
}

// ---------------------------------------------------------------------------------------
// TUN-006
// ---------------------------------------------------------------------------------------

/// RFC 1918, RFC 6598 (CGNAT) and IPv6 ULA space: addresses that sit behind NAT when
/// reached from elsewhere.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(a) => (a.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// A masquerade/SNAT rule of the host that applies to traffic leaving `dev`.
fn masquerade_on<'a>(host: &'a Host, dev: &str) -> Option<&'a netsleuth_model::firewall::FirewallRule> {
    [&host.iptables, &host.nftables].into_iter().flatten().flat_map(|rs| rs.tables.iter()).find_map(|t| {
        t.chains.iter().filter(|c| c.hook == Some(Hook::Postrouting)).find_map(|c| {
            c.rules.iter().find(|r| {
                matches!(r.verdict, Some(Verdict::Masquerade | Verdict::Snat(_)))
                    && r.matches.iter().all(|m| match m {
                        Match::OutInterface { negated, name } => (name == dev) != *negated,
                        _ => true,
                    })
            })
        })
    })
}

fn check_keepalive(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    let index = WgPeerIndex::new(ctx.net);
    // Which host owns which WireGuard interface key, to find a peer's own side.
    let owners: HashMap<&str, &str> = ctx
        .net
        .hosts
        .iter()
        .flat_map(|h| local_interfaces(h).filter_map(move |w| w.public_key.as_deref().map(|k| (k, h.name.as_str()))))
        .collect();
    for host in &ctx.net.hosts {
        let host_nets: Vec<IpNet> = host.interfaces.iter().flat_map(|i| i.addresses.iter().map(IpNet::trunc)).collect();
        for wg in effective_interfaces(host) {
            let mut silent: Vec<&WireGuardPeer> = Vec::new();
            for peer in wg.peers.iter().filter(|p| p.persistent_keepalive.is_none_or(|k| k == 0)) {
                // If the other side is in the bundle and keeps the mapping alive, all is well.
                if other_side_keeps_alive(&index, &owners, host, wg, peer) {
                    continue;
                }
                let Some(ep) = peer.endpoint.as_deref() else {
                    silent.push(peer);
                    continue;
                };
                let Some(ip) = endpoint_ip(ep) else { continue };
                let k = abbrev_key(&peer.public_key);
                let reason = if is_private(ip) && !host_nets.iter().any(|n| n.contains(&ip)) {
                    Some((
                        format!(
                            "endpoint {ep} is a private/CGNAT address outside every subnet of {}: the peer is behind \
                             NAT",
                            host.name
                        ),
                        Confidence::Likely,
                        None,
                    ))
                } else {
                    let dev = route_lookup(host, ip, wg.fwmark).and_then(|r| r.dev.clone());
                    dev.and_then(|d| masquerade_on(host, &d).map(|m| (d, m))).map(|(d, m)| {
                        (
                            format!("{} masquerades traffic leaving {d} towards endpoint {ep}", host.name),
                            Confidence::Possible,
                            Some(Evidence::new(m.origin.clone(), m.text.clone())),
                        )
                    })
                };
                let Some((why, confidence, extra)) = reason else { continue };
                let mut ev = vec![Evidence::new(
                    peer.origin.clone(),
                    format!("peer {k} endpoint {ep} persistent keepalive off"),
                )];
                ev.extend(extra);
                out.push(rule.finding(
                    peer_subject(host, wg, peer),
                    format!("No keepalive for NATed WireGuard peer {k}"),
                    format!(
                        "PersistentKeepalive is off for peer {k} of {} on {}, and {why}. WireGuard is silent when \
                         idle, so the NAT's UDP mapping expires (often after 30-120 s) and traffic from the other \
                         side is dropped until this side sends again",
                        wg.name, host.name
                    ),
                    ev,
                    format!(
                        "add `PersistentKeepalive = 25` to the [Peer] {k} section of /etc/wireguard/{0}.conf (or \
                         `wg set {0} peer {1} persistent-keepalive 25`)",
                        wg.name, peer.public_key
                    ),
                    confidence,
                ));
            }
            if !silent.is_empty() {
                report_no_endpoint(rule, host, wg, &silent, out);
            }
        }
    }
}

/// Whether the peer's own host is in the bundle and sends keepalives to this interface
/// (its peer entry for this interface's public key has PersistentKeepalive).
fn other_side_keeps_alive(
    index: &WgPeerIndex<'_>,
    owners: &HashMap<&str, &str>,
    host: &Host,
    wg: &WireGuardInterface,
    peer: &WireGuardPeer,
) -> bool {
    let (Some(pk), Some(&other)) = (wg.public_key.as_deref(), owners.get(peer.public_key.as_str())) else {
        return false;
    };
    other != host.name
        && index.peers_with_key(pk).any(|(h, p)| h == other && p.persistent_keepalive.is_some_and(|k| k > 0))
}

fn report_no_endpoint(
    rule: &Rule,
    host: &Host,
    wg: &WireGuardInterface,
    silent: &[&WireGuardPeer],
    out: &mut Vec<Finding>,
) {
    let keys: Vec<String> = silent.iter().map(|p| abbrev_key(&p.public_key)).collect();
    let subject = match silent {
        [one] => peer_subject(host, wg, one),
        _ => format!("{}/iface/{}", host.subject(), wg.name),
    };
    let mut f = rule.finding(
        subject,
        format!("{} peer(s) of {} can only be reached while they keep sending", silent.len(), wg.name),
        format!(
            "{} peer(s) of {} on {} have neither an endpoint nor PersistentKeepalive ({}): this side cannot \
             initiate, so it depends on the peers sending first. A peer behind NAT that stays idle longer than \
             its NAT's UDP timeout becomes unreachable from here until it sends again",
            silent.len(),
            wg.name,
            host.name,
            join_limited(&keys, 5)
        ),
        silent
            .iter()
            .take(5)
            .map(|p| {
                Evidence::new(
                    p.origin.clone(),
                    format!("peer {} endpoint (none) persistent keepalive off", abbrev_key(&p.public_key)),
                )
            })
            .collect(),
        "set `PersistentKeepalive = 25` in the [Peer] section for this host on each of those peers (the side \
         behind NAT must send the keepalives)",
        Confidence::Possible,
    );
    f.severity = Severity::Low;
    f.detail.push_str(" (low: only a risk when those peers are behind NAT)");
    out.push(f);
}

// ---------------------------------------------------------------------------------------
// TUN-007
// ---------------------------------------------------------------------------------------

/// Which part of `dst` the peers' AllowedIPs hold: fully (one prefix contains it), partly
/// (some prefixes lie inside it), or not at all.
fn allowed_coverage(wg: &WireGuardInterface, dst: &IpNet) -> (bool, Vec<IpNet>) {
    let all = wg.peers.iter().flat_map(|p| p.allowed_ips.iter().map(|a| a.trunc()));
    let mut full = false;
    let mut parts = Vec::new();
    for a in all {
        if a.contains(&dst.network()) && a.prefix_len() <= dst.prefix_len() {
            full = true;
        } else if dst.contains(&a.network()) {
            parts.push(a);
        }
    }
    (full, parts)
}

fn check_route_without_peer(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for host in &ctx.net.hosts {
        for wg in effective_interfaces(host) {
            if host.interface(&wg.name).is_some_and(|i| !i.up) {
                continue;
            }
            let own = own_addresses(host, wg);
            for r in host.routes.iter() {
                if r.dev.as_deref() != Some(wg.name.as_str())
                    || r.route_type != RouteType::Unicast
                    || r.table == RouteTable::LOCAL
                {
                    continue;
                }
                let dst = r.dst.trunc();
                let special = match dst.addr() {
                    IpAddr::V4(a) => a.is_link_local() || a.is_multicast(),
                    IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80 || a.is_multicast(),
                };
                // The connected route of the interface's own subnet carries the peers' tunnel
                // addresses; it is not a claim that every address of it has a peer.
                if special || own.iter().any(|o| o.trunc() == dst || dst.contains(&o.addr())) {
                    continue;
                }
                let (full, parts) = allowed_coverage(wg, &dst);
                if full {
                    continue;
                }
                let peers: Vec<String> = wg
                    .peers
                    .iter()
                    .map(|p| {
                        let ips: Vec<String> = p.allowed_ips.iter().map(ToString::to_string).collect();
                        format!(
                            "{} {}",
                            abbrev_key(&p.public_key),
                            if ips.is_empty() { "(none)".into() } else { ips.join(", ") }
                        )
                    })
                    .collect();
                let coverage = if parts.is_empty() {
                    "no peer's AllowedIPs cover any of it".to_string()
                } else {
                    let p: Vec<String> = parts.iter().map(ToString::to_string).collect();
                    format!("peers' AllowedIPs cover only {} of it", p.join(", "))
                };
                let detail = format!(
                    "route {} sends {dst} into {} on {}, but {coverage} (peers: {}). WireGuard drops every                      packet to an address no peer claims (ENOKEY, 'sendmsg: Required key not available'), so                      {dst} is unreachable although the tunnel is up",
                    route_text(r),
                    wg.name,
                    host.name,
                    if peers.is_empty() { "none".to_string() } else { join_limited(&peers, 4) }
                );
                let mut evidence = vec![Evidence::new(r.origin.clone(), route_text(r))];
                evidence
                    .extend(wg.peers.iter().take(3).map(|p| Evidence::new(p.origin.clone(), allowed_excerpt(wg, p))));
                let fix = match wg.peers.as_slice() {
                    [only] => {
                        let mut ips: Vec<String> = only.allowed_ips.iter().map(ToString::to_string).collect();
                        ips.push(dst.to_string());
                        format!(
                            "wg set {} peer {} allowed-ips {} (and AllowedIPs = ... in its wg-quick config); the far \
                             end must hold this side's source addresses in its AllowedIPs too",
                            wg.name,
                            only.public_key,
                            ips.join(",")
                        )
                    }
                    _ => format!(
                        "add {dst} to the AllowedIPs of the peer that serves it (`wg set {} peer <KEY> allowed-ips                          <current>,{dst}`, and its wg-quick config), or delete the route if nothing behind the                          tunnel serves {dst}",
                        wg.name
                    ),
                };
                out.push(rule.finding(
                    format!("{}/iface/{}/route/{dst}", host.subject(), wg.name),
                    format!("{dst} is routed into {} but no peer's AllowedIPs cover it", wg.name),
                    detail,
                    evidence,
                    fix,
                    if wg.from_runtime { Confidence::Likely } else { Confidence::Possible },
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::node::testkit::*;
    use netsleuth_model::host::InterfaceKind;
    use netsleuth_model::Location;

    const KA: &str = "AAAAaaaaKEYofPeerA0000000000000000000000000=";
    const KB: &str = "BBBBbbbbKEYofPeerB0000000000000000000000000=";

    fn r(id: &str) -> &'static Rule {
        rule_by_id(RULES, id)
    }

    fn peer(host: &str, line: u32, key: &str, allowed: &[&str], endpoint: Option<&str>) -> WireGuardPeer {
        WireGuardPeer {
            public_key: key.to_string(),
            preshared_key: None,
            endpoint: endpoint.map(str::to_string),
            allowed_ips: allowed.iter().map(|a| a.parse().expect("test prefix")).collect(),
            latest_handshake: None,
            rx_bytes: None,
            tx_bytes: None,
            persistent_keepalive: None,
            origin: Location::line(format!("hosts/{host}/wireguard/wg0.conf"), line),
        }
    }

    fn wg(host: &str, runtime: bool, mut peers: Vec<WireGuardPeer>) -> WireGuardInterface {
        if runtime {
            // A dump line always carries transfer counters.
            for p in &mut peers {
                p.rx_bytes.get_or_insert(0);
                p.tx_bytes.get_or_insert(0);
            }
        }
        WireGuardInterface {
            name: "wg0".into(),
            private_key: None,
            public_key: Some("HOSTkeyHOSTkey000000000000000000000000000000=".into()),
            listen_port: Some(51820),
            fwmark: None,
            addresses: vec!["10.8.0.1/24".parse().unwrap()],
            mtu: None,
            table: None,
            peers,
            origin: Location::line(format!("hosts/{host}/wg-dump.txt"), 1),
            from_runtime: runtime,
        }
    }

    fn gw(name: &str) -> Host {
        let mut h = host(name);
        h.interfaces.push(iface(name, 1, "eth0", InterfaceKind::Physical, 1500, &["198.51.100.10/24"]));
        h.interfaces.push(iface(name, 2, "wg0", InterfaceKind::WireGuard, 1420, &["10.8.0.1/24"]));
        h.routes.routes.push(route(name, 0, "0.0.0.0/0", Some("eth0"), Some("198.51.100.1")));
        h.routes.routes.push(route(name, 1, "10.8.0.0/24", Some("wg0"), None));
        h
    }

    #[test]
    fn tun001_identical_prefix_last_peer_wins() {
        let mut h = gw("hub");
        h.wireguard.push(wg(
            "hub",
            false,
            vec![
                peer("hub", 10, KA, &["10.10.0.0/24", "10.8.0.2/32"], None),
                peer("hub", 15, KB, &["10.10.0.0/24"], None),
            ],
        ));
        let out = run(r("TUN-001"), &net(vec![h]), None);
        assert_eq!(out.len(), 1, "{out:?}");
        let f = &out[0];
        assert_eq!(f.rule, "TUN-001");
        assert_eq!(f.subject, "host/hub/iface/wg0/peer/AAAAaaaa…");
        assert!(f.detail.contains("both claim 10.10.0.0/24 (WireGuard gives it to BBBBbbbb…"), "{}", f.detail);
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.evidence[0].location, Location::line("hosts/hub/wireguard/wg0.conf", 10));
        assert_eq!(f.evidence[1].location, Location::line("hosts/hub/wireguard/wg0.conf", 15));
        assert!(f.evidence[1].excerpt.contains("AllowedIPs = 10.10.0.0/24"));
    }

    #[test]
    fn tun001_runtime_dump_names_the_holder_and_nested_is_medium() {
        let mut h = gw("hub");
        h.wireguard.push(wg(
            "hub",
            false,
            vec![peer("hub", 10, KA, &["10.10.0.0/24"], None), peer("hub", 15, KB, &["10.10.0.0/24"], None)],
        ));
        // The dump shows B holding it, A with nothing.
        h.wireguard.push(wg(
            "hub",
            true,
            vec![peer("hub", 3, KA, &[], None), peer("hub", 4, KB, &["10.10.0.0/24"], None)],
        ));
        let out = run(r("TUN-001"), &net(vec![h]), None);
        assert_eq!(out.len(), 1);
        assert!(out[0].detail.contains("BBBBbbbb… holds it in the runtime dump"), "{}", out[0].detail);
        assert_eq!(out[0].confidence, Confidence::Confirmed);

        let mut n = gw("hub2");
        n.wireguard.push(wg(
            "hub2",
            true,
            vec![peer("hub2", 3, KA, &["10.10.0.0/16"], None), peer("hub2", 4, KB, &["10.10.5.0/24"], None)],
        ));
        let out = run(r("TUN-001"), &net(vec![n]), None);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].severity, Severity::Medium);
        assert!(
            out[0].detail.contains("AAAAaaaa…'s 10.10.0.0/16 contains BBBBbbbb…'s 10.10.5.0/24"),
            "{}",
            out[0].detail
        );
    }

    #[test]
    fn tun001_distinct_prefixes_and_default_plus_specific_are_fine() {
        let mut h = gw("hub");
        h.wireguard.push(wg(
            "hub",
            true,
            vec![peer("hub", 3, KA, &["0.0.0.0/0"], None), peer("hub", 4, KB, &["10.10.5.0/24", "10.8.0.3/32"], None)],
        ));
        assert!(run(r("TUN-001"), &net(vec![h]), None).is_empty());
    }

    #[test]
    fn tun002_none_in_dump_names_the_holder() {
        let mut h = gw("hub");
        h.wireguard.push(wg(
            "hub",
            false,
            vec![peer("hub", 10, KA, &["10.8.0.2/32"], None), peer("hub", 15, KB, &["10.8.0.2/32"], None)],
        ));
        h.wireguard.push(wg(
            "hub",
            true,
            vec![peer("hub", 3, KA, &[], None), peer("hub", 4, KB, &["10.8.0.2/32"], None)],
        ));
        let out = run(r("TUN-002"), &net(vec![h]), None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].subject, "host/hub/iface/wg0/peer/AAAAaaaa…");
        assert!(out[0].detail.contains("10.8.0.2/32 is held by BBBBbbbb…"), "{}", out[0].detail);
        assert_eq!(out[0].evidence[0].location, Location::line("hosts/hub/wireguard/wg0.conf", 3));
        assert_eq!(out[0].confidence, Confidence::Confirmed);
    }

    #[test]
    fn tun002_quiet_when_every_peer_has_prefixes() {
        let mut h = gw("hub");
        h.wireguard.push(wg("hub", true, vec![peer("hub", 3, KA, &["10.8.0.2/32"], None)]));
        assert!(run(r("TUN-002"), &net(vec![h]), None).is_empty());
    }

    #[test]
    fn tun007_route_into_wg_without_a_peer_for_it() {
        let mut h = gw("gw");
        h.routes.routes.push(route("gw", 2, "10.20.0.0/16", Some("wg0"), None));
        h.wireguard.push(wg("gw", true, vec![peer("gw", 3, KA, &["10.99.0.2/32", "10.21.0.0/16"], None)]));
        let out = run(r("TUN-007"), &net(vec![h]), None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].subject, "host/gw/iface/wg0/route/10.20.0.0/16");
        assert!(out[0].detail.contains("no peer's AllowedIPs cover any of it"), "{}", out[0].detail);
        assert!(out[0].detail.contains("10.21.0.0/16"), "{}", out[0].detail);
        assert_eq!(out[0].evidence[0].location, Location::json("hosts/gw/ip-route.json", "/2"));
        assert!(out[0].fix.contains("allowed-ips 10.99.0.2/32,10.21.0.0/16,10.20.0.0/16"), "{}", out[0].fix);
    }

    #[test]
    fn tun007_quiet_when_a_peer_covers_the_route_or_it_is_the_own_subnet() {
        let mut h = gw("gw");
        h.routes.routes.push(route("gw", 2, "10.20.5.0/24", Some("wg0"), None));
        h.routes.routes.push(route("gw", 3, "10.8.0.0/24", Some("wg0"), None));
        h.wireguard.push(wg(
            "gw",
            true,
            vec![peer("gw", 3, KA, &["10.20.0.0/16"], None), peer("gw", 7, KB, &["10.8.0.3/32"], None)],
        ));
        let out = run(r("TUN-007"), &net(vec![h]), None);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn tun007_partial_cover_is_named() {
        let mut h = gw("gw");
        h.routes.routes.push(route("gw", 2, "10.20.0.0/16", Some("wg0"), None));
        h.wireguard.push(wg(
            "gw",
            true,
            vec![peer("gw", 3, KA, &["10.20.5.0/24"], None), peer("gw", 7, KB, &["10.30.0.0/16"], None)],
        ));
        let out = run(r("TUN-007"), &net(vec![h]), None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].detail.contains("cover only 10.20.5.0/24"), "{}", out[0].detail);
        assert!(out[0].fix.contains("<KEY>"), "{}", out[0].fix);
    }

    #[test]
    fn tun003_more_specific_lan_route_captures_allowed_ips() {
        let mut h = gw("gw");
        h.interfaces.push(iface("gw", 3, "eth1", InterfaceKind::Physical, 1500, &["192.168.1.2/24"]));
        h.routes.routes.push(route("gw", 2, "10.20.0.0/16", Some("wg0"), None));
        h.routes.routes.push(route("gw", 3, "10.20.5.0/24", Some("eth1"), Some("192.168.1.1")));
        h.routes.routes.push(route("gw", 4, "10.30.0.0/16", Some("wg0"), None));
        h.wireguard.push(wg(
            "gw",
            true,
            vec![peer("gw", 3, KA, &["10.20.5.0/24", "10.30.0.0/16", "10.8.0.0/24"], None)],
        ));
        let out = run(r("TUN-003"), &net(vec![h]), None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].detail.contains("10.20.5.0/24 → 10.20.5.0/24 via 192.168.1.1 dev eth1"), "{}", out[0].detail);
        assert!(!out[0].detail.contains("10.30.0.0/16"), "{}", out[0].detail);
        assert_eq!(out[0].evidence[1].location, Location::json("hosts/gw/ip-route.json", "/3"));
        assert!(out[0].fix.starts_with("ip route replace 10.20.5.0/24 dev wg0"), "{}", out[0].fix);
    }

    #[test]
    fn tun003_full_tunnel_via_fwmark_table_is_fine() {
        let mut h = gw("cl");
        let mut t = route("cl", 5, "0.0.0.0/0", Some("wg0"), None);
        t.table = 51820;
        h.routes.routes.push(t);
        let mut rules = standard_rules();
        let mut not_mark = rule_to_table(32765, 51820);
        not_mark.not = true;
        not_mark.fwmark = Some(51820);
        rules.push(not_mark);
        h.rules = rules;
        let mut w = wg("cl", true, vec![peer("cl", 3, KA, &["0.0.0.0/0"], Some("203.0.113.5:51820"))]);
        w.fwmark = Some(51820);
        h.wireguard.push(w);
        assert!(run(r("TUN-003"), &net(vec![h.clone()]), None).is_empty());
        // Without the policy rule, the default goes via eth0: reported.
        h.rules = standard_rules();
        let out = run(r("TUN-003"), &net(vec![h]), None);
        assert_eq!(out.len(), 1);
        assert!(out[0].detail.contains("0.0.0.0/0 → 0.0.0.0/0 via 198.51.100.1 dev eth0"), "{}", out[0].detail);
    }

    #[test]
    fn tun004_exact_route_on_other_device() {
        let mut h = gw("gw");
        h.interfaces.push(iface("gw", 3, "eth1", InterfaceKind::Physical, 1500, &["192.168.1.2/24"]));
        h.routes.routes.push(route("gw", 2, "192.168.1.0/24", Some("eth1"), None));
        h.wireguard.push(wg(
            "gw",
            false,
            vec![peer("gw", 9, KA, &["192.168.1.0/24"], None), peer("gw", 12, KB, &["10.40.0.0/16"], None)],
        ));
        let out = run(r("TUN-004"), &net(vec![h]), None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].subject, "host/gw/iface/wg0/peer/AAAAaaaa…");
        assert!(out[0].detail.contains("RTNETLINK answers: File exists"));
        assert!(out[0].detail.contains("192.168.1.0/24 dev eth1"), "{}", out[0].detail);
        assert_eq!(out[0].evidence[1].location, Location::json("hosts/gw/ip-route.json", "/2"));
    }

    #[test]
    fn tun004_quiet_for_broader_route_and_table_off() {
        let mut h = gw("gw");
        h.routes.routes.push(route("gw", 2, "10.0.0.0/8", Some("eth0"), Some("198.51.100.1")));
        h.wireguard.push(wg("gw", false, vec![peer("gw", 9, KA, &["10.40.0.0/16"], None)]));
        let mut off = gw("gw2");
        off.routes.routes.push(route("gw2", 2, "10.40.0.0/16", Some("eth0"), None));
        let mut w = wg("gw2", false, vec![peer("gw2", 9, KA, &["10.40.0.0/16"], None)]);
        w.table = Some("off".into());
        off.wireguard.push(w);
        assert!(run(r("TUN-004"), &net(vec![h, off]), None).is_empty());
    }

    #[test]
    fn tun005_stale_handshake_with_tx_only() {
        let mut h = gw("gw");
        let mut p = peer("gw", 2, KA, &["10.20.0.0/16"], Some("203.0.113.5:51820"));
        p.latest_handshake = Some(1_700_000_000);
        p.tx_bytes = Some(14_800);
        p.rx_bytes = Some(0);
        h.wireguard.push(wg("gw", true, vec![p]));
        let n = net(vec![h]);
        let out = run(r("TUN-005"), &n, Some(1_700_000_912));
        assert_eq!(out.len(), 1);
        assert!(out[0].detail.contains("912 s before the snapshot"), "{}", out[0].detail);
        assert!(out[0].detail.contains("rx 0 B, tx 14800 B"), "{}", out[0].detail);
        assert!(out[0].detail.contains("nothing comes back"));
        assert!(out[0].fix.contains("UDP 51820"));
        assert_eq!(out[0].evidence[0].location, Location::line("hosts/gw/wireguard/wg0.conf", 2));
        // Without a clock the age cannot be judged.
        assert!(run(r("TUN-005"), &n, None).is_empty());
        // Recent handshake: fine.
        assert!(run(r("TUN-005"), &n, Some(1_700_000_100)).is_empty());
    }

    #[test]
    fn tun005_never_handshaked_is_reported_without_clock() {
        let mut h = gw("gw");
        let mut p = peer("gw", 2, KA, &["10.20.0.0/16"], Some("203.0.113.5:51820"));
        p.tx_bytes = Some(9_400);
        p.rx_bytes = Some(0);
        // An idle config-less peer without endpoint and without tx is not expected to handshake.
        let idle = peer("gw", 3, KB, &["10.8.0.9/32"], None);
        h.wireguard.push(wg("gw", true, vec![p, idle]));
        let out = run(r("TUN-005"), &net(vec![h]), None);
        assert_eq!(out.len(), 1);
        assert!(out[0].detail.contains("no handshake ever completed"));
        assert_eq!(out[0].confidence, Confidence::Confirmed);
    }

    #[test]
    fn tun006_cgnat_endpoint_without_keepalive() {
        let mut h = gw("hub");
        let p = peer("hub", 6, KA, &["10.8.0.2/32"], Some("100.64.3.7:51820"));
        let mut ka = peer("hub", 8, KB, &["10.8.0.3/32"], Some("100.64.3.8:51820"));
        ka.persistent_keepalive = Some(25);
        h.wireguard.push(wg("hub", true, vec![p, ka]));
        let out = run(r("TUN-006"), &net(vec![h]), None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].subject, "host/hub/iface/wg0/peer/AAAAaaaa…");
        assert!(out[0].detail.contains("100.64.3.7:51820"));
        assert!(out[0].fix.contains("PersistentKeepalive = 25"));
        assert_eq!(out[0].evidence[0].location, Location::line("hosts/hub/wireguard/wg0.conf", 6));
    }

    #[test]
    fn tun006_public_endpoint_or_same_lan_is_fine() {
        let mut h = gw("hub");
        h.interfaces.push(iface("hub", 3, "eth1", InterfaceKind::Physical, 1500, &["192.168.7.2/24"]));
        h.wireguard.push(wg(
            "hub",
            true,
            vec![
                peer("hub", 6, KA, &["10.8.0.2/32"], Some("203.0.113.9:51820")),
                peer("hub", 7, KB, &["10.8.0.3/32"], Some("192.168.7.40:51820")),
            ],
        ));
        assert!(run(r("TUN-006"), &net(vec![h]), None).is_empty());
    }

    #[test]
    fn endpoint_parsing() {
        assert_eq!(endpoint_ip("203.0.113.5:51820"), Some("203.0.113.5".parse().unwrap()));
        assert_eq!(endpoint_ip("[fd00::1]:51820"), Some("fd00::1".parse().unwrap()));
        assert_eq!(endpoint_ip("vpn.example.com:51820"), None);
        assert_eq!(abbrev_key(KA), "AAAAaaaa…");
    }

    #[test]
    fn overlap_sweep_finds_nested_and_identical_only() {
        let e: Vec<(IpNet, usize)> = vec![
            ("10.0.0.0/16".parse().unwrap(), 0),
            ("10.0.5.0/24".parse().unwrap(), 1),
            ("10.1.0.0/16".parse().unwrap(), 1),
            ("10.1.0.0/16".parse().unwrap(), 2),
            ("fd00::/64".parse().unwrap(), 0),
        ];
        let mut p = overlapping_pairs(&e);
        p.sort();
        assert_eq!(p, vec![(0, 1), (2, 3)]);
    }

    #[test]
    fn tun006_other_side_in_bundle_keeps_alive_and_no_endpoint_is_low() {
        // hub has spoke as a peer (NATed endpoint, no keepalive); spoke keeps the mapping alive.
        let mut hub = gw("hub");
        let mut hw = wg("hub", true, vec![peer("hub", 6, KA, &["10.8.0.2/32"], Some("100.64.3.7:51820"))]);
        hw.public_key = Some(KB.into());
        hub.wireguard.push(hw);
        let mut spoke = gw("spoke");
        let mut back = peer("spoke", 4, KB, &["10.8.0.0/24"], Some("198.51.100.10:51820"));
        back.persistent_keepalive = Some(25);
        let mut sw = wg("spoke", true, vec![back]);
        sw.public_key = Some(KA.into());
        spoke.wireguard.push(sw);
        assert!(run(r("TUN-006"), &net(vec![hub.clone(), spoke.clone()]), None).is_empty());
        // Without keepalive on the spoke side the hub's peer is reported.
        spoke.wireguard[0].peers[0].persistent_keepalive = None;
        let out = run(r("TUN-006"), &net(vec![hub, spoke]), None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].subject, "host/hub/iface/wg0/peer/AAAAaaaa…");

        let mut road = gw("road");
        road.wireguard.push(wg(
            "road",
            false,
            vec![peer("road", 6, KA, &["10.8.0.2/32"], None), peer("road", 9, KB, &["10.8.0.3/32"], None)],
        ));
        let out = run(r("TUN-006"), &net(vec![road]), None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].subject, "host/road/iface/wg0");
        assert_eq!(out[0].severity, Severity::Low);
        assert!(
            out[0].detail.contains(
                "2 peer(s) of wg0 on road have neither an endpoint nor PersistentKeepalive (AAAAaaaa…, BBBBbbbb…)"
            ),
            "{}",
            out[0].detail
        );
    }

    #[test]
    fn tun003_table_off_is_possible_and_numeric_table_without_rule() {
        let mut h = gw("gw");
        let mut w = wg("gw", false, vec![peer("gw", 3, KA, &["10.50.0.0/16"], None)]);
        w.table = Some("off".into());
        h.wireguard.push(w);
        let out = run(r("TUN-003"), &net(vec![h.clone()]), None);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].confidence, Confidence::Possible);
        assert!(out[0].detail.contains("10.50.0.0/16 → 0.0.0.0/0 via 198.51.100.1 dev eth0"), "{}", out[0].detail);
        assert!(out[0].detail.contains("Table = off"));

        h.wireguard[0].table = Some("1234".into());
        let mut t = route("gw", 7, "10.50.0.0/16", Some("wg0"), None);
        t.table = 1234;
        h.routes.routes.push(t);
        h.rules = standard_rules();
        let out = run(r("TUN-003"), &net(vec![h]), None);
        assert_eq!(out.len(), 1);
        assert!(out[0].detail.contains("table 1234, which no policy rule selects"), "{}", out[0].detail);
    }
}
