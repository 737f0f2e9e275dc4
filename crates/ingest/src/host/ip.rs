//! Parsers of iproute2 JSON output (`ip -j -d link`, `ip -j addr`, `ip -j route`, `ip -j rule`)
//! into interfaces, routes and policy rules; one bad entry is a warning, not a failed file.
//!
//! Choices worth knowing:
//! - Route and rule tables named neither `main`, `local`, `default` nor by number (names from
//!   `/etc/iproute2/rt_tables`) get a stable synthetic id: FNV-1a of the name with the top
//!   bit set. Routes and rules naming the same table thus still meet in
//!   `RouteTable::lookup_with_rules`; `table_name` keeps the name for display.
//! - A veth peer in another namespace is shown by iproute2 only as `link_index`; its
//!   `link` becomes `if<N>`, the same spelling `ip link` prints (`eth0@if7`).
//! - `ip -j route show table all` without `-4`/`-6` dumps both families, so a bundle's
//!   `ip-route.json` and `ip-route6.json` overlap; `dedup_routes` removes the repeats.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use netsleuth_model::host::{Interface, InterfaceKind, Route, RouteType, RoutingRule, RuleAction};
use netsleuth_model::Location;
use serde_json::{Map, Value};

use crate::{ParseContext, ParseError, Source};

type Object = Map<String, Value>;

/// `ip -j -d link show`.
pub fn parse_links(src: &Source<'_>, ctx: &mut ParseContext) -> Result<Vec<Interface>, ParseError> {
    let items = parse_array(src)?;
    let names = index_names(&items);
    let detailed = items.iter().any(|v| v.get("linkinfo").is_some() || v.get("promiscuity").is_some());
    if !detailed && items.iter().any(|v| v.get("ifname").is_some()) {
        // Without `-d` there is no `linkinfo`: a VXLAN would look like a physical NIC.
        ctx.warn(
            src.pointer(""),
            "no `linkinfo` or other `-d` details in this file (collected without `ip -d`?): \
             interface kinds other than loopback are guessed as physical",
        );
    }
    Ok(interfaces(src, ctx, &items, &names))
}

/// `ip -j addr show`.
pub fn parse_addrs(src: &Source<'_>, ctx: &mut ParseContext) -> Result<Vec<Interface>, ParseError> {
    let items = parse_array(src)?;
    let names = index_names(&items);
    Ok(interfaces(src, ctx, &items, &names))
}

/// Merges interfaces from ip-link (kinds) and ip-addr (addresses) by name: kinds and link
/// details from ip-link, addresses from ip-addr; an interface in only one list is kept.
pub fn merge_interfaces(links: Vec<Interface>, addrs: Vec<Interface>) -> Vec<Interface> {
    let mut out = links;
    for addr_iface in addrs {
        match out.iter_mut().find(|l| l.name == addr_iface.name) {
            Some(link) => {
                link.addresses = addr_iface.addresses;
                // ip-link is authoritative for these; ip-addr only fills what it lacks.
                link.index = link.index.or(addr_iface.index);
                link.mtu = link.mtu.or(addr_iface.mtu);
                link.mac = link.mac.take().or(addr_iface.mac);
                link.master = link.master.take().or(addr_iface.master);
                link.link = link.link.take().or(addr_iface.link);
                link.link_netnsid = link.link_netnsid.or(addr_iface.link_netnsid);
            }
            None => out.push(addr_iface),
        }
    }
    out
}

/// `ip -j route show table all` (and `ip -6 -j route show table all`).
pub fn parse_routes(src: &Source<'_>, ctx: &mut ParseContext) -> Result<Vec<Route>, ParseError> {
    let items = parse_array(src)?;
    let v6_file = file_name(src.path).contains("route6");
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let loc = src.pointer(format!("/{i}"));
        let Some(obj) = item.as_object() else {
            ctx.warn(loc, format!("route entry is {}, expected an object; skipped", type_name(item)));
            continue;
        };
        if let Err(msg) = route(obj, &loc, v6_file, &mut out, ctx) {
            ctx.warn(loc, format!("{msg}; route skipped"));
        }
    }
    Ok(out)
}

/// Removes routes repeated across `ip-route.json` and `ip-route6.json` (same table, type,
/// destination, gateway, device, metric and source), keeping the first one seen.
pub fn dedup_routes(routes: Vec<Route>) -> Vec<Route> {
    let mut seen = std::collections::HashSet::new();
    routes
        .into_iter()
        .filter(|r| {
            seen.insert((
                r.table,
                r.table_name.clone(),
                r.route_type as u8,
                r.dst,
                r.gateway,
                r.dev.clone(),
                r.metric,
                r.prefsrc,
            ))
        })
        .collect()
}

/// `ip -j rule show`.
pub fn parse_rules(src: &Source<'_>, ctx: &mut ParseContext) -> Result<Vec<RoutingRule>, ParseError> {
    let items = parse_array(src)?;
    // `ip rule show` lists IPv4 unless asked for `-6`; the JSON does not say which.
    let name = file_name(src.path);
    let file_family = if name.contains("rule6") { "inet6" } else { "inet" };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let loc = src.pointer(format!("/{i}"));
        let Some(obj) = item.as_object() else {
            ctx.warn(loc, format!("rule entry is {}, expected an object; skipped", type_name(item)));
            continue;
        };
        match rule(obj, &loc, file_family, ctx) {
            Ok(r) => out.push(r),
            Err(msg) => ctx.warn(loc, format!("{msg}; rule skipped")),
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------------- shared JSON

fn parse_array(src: &Source<'_>) -> Result<Vec<Value>, ParseError> {
    if src.text.trim().is_empty() {
        return Err(src.error_at(1, None, "empty file: expected the JSON array `ip -j` prints"));
    }
    let value: Value = serde_json::from_str(src.text).map_err(|e| ParseError::from_json(src.path, &e))?;
    match value {
        Value::Array(items) => Ok(items),
        other => {
            let (line, column) = first_token(src.text);
            Err(src.error_at(
                line,
                Some(column),
                format!("top level is {}, expected the JSON array `ip -j` prints", type_name(&other)),
            ))
        }
    }
}

/// 1-based line and column of the first non-whitespace character.
fn first_token(text: &str) -> (usize, usize) {
    for (i, line) in text.lines().enumerate() {
        if let Some(col) = line.find(|c: char| !c.is_whitespace()) {
            return (i + 1, line[..col].chars().count() + 1);
        }
    }
    (1, 1)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON value for a message, cut to 60 characters (input lines can be megabytes).
fn short(v: Option<&Value>) -> String {
    let s = v.map_or_else(|| "(absent)".to_string(), Value::to_string);
    match s.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s,
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A string field; a present field of another type is a warning.
fn opt_str<'a>(obj: &'a Object, key: &str, loc: &Location, ctx: &mut ParseContext) -> Option<&'a str> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            ctx.warn(
                loc.child(&format!("/{key}")),
                format!("`{key}` is {}, expected a string; ignored", type_name(other)),
            );
            None
        }
    }
}

/// An unsigned integer field (numbers, or decimal/`0x` strings as iproute2 prints marks).
fn opt_uint(obj: &Object, key: &str, max: u64, loc: &Location, ctx: &mut ParseContext) -> Option<u64> {
    let v = obj.get(key)?;
    let parsed = match v {
        Value::Null => return None,
        Value::Number(n) => n.as_u64(),
        Value::String(s) => parse_uint_str(s),
        _ => None,
    };
    match parsed {
        Some(n) if n <= max => Some(n),
        _ => {
            ctx.warn(
                loc.child(&format!("/{key}")),
                format!("`{key}` is {}, expected an unsigned integer up to {max}; ignored", short(Some(v))),
            );
            None
        }
    }
}

fn opt_u32(obj: &Object, key: &str, loc: &Location, ctx: &mut ParseContext) -> Option<u32> {
    opt_uint(obj, key, u64::from(u32::MAX), loc, ctx).and_then(|n| u32::try_from(n).ok())
}

fn parse_uint_str(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn opt_ip(obj: &Object, key: &str, loc: &Location, ctx: &mut ParseContext) -> Option<IpAddr> {
    let s = opt_str(obj, key, loc, ctx)?;
    match s.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            ctx.warn(
                loc.child(&format!("/{key}")),
                format!("`{key}` {} is not an IP address; ignored", short(obj.get(key))),
            );
            None
        }
    }
}

// ------------------------------------------------------------------------- interfaces

/// ifindex → name of every entry, to resolve `link` references given as indexes.
fn index_names(items: &[Value]) -> HashMap<u64, String> {
    items.iter().filter_map(|v| Some((v.get("ifindex")?.as_u64()?, v.get("ifname")?.as_str()?.to_string()))).collect()
}

fn interfaces(
    src: &Source<'_>,
    ctx: &mut ParseContext,
    items: &[Value],
    names: &HashMap<u64, String>,
) -> Vec<Interface> {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let loc = src.pointer(format!("/{i}"));
        let Some(obj) = item.as_object() else {
            ctx.warn(loc, format!("interface entry is {}, expected an object; skipped", type_name(item)));
            continue;
        };
        // iproute2 prints `{}` for interfaces its filter dropped; nothing to say about those.
        if obj.is_empty() {
            continue;
        }
        if let Some(iface) = interface(obj, loc, names, ctx) {
            out.push(iface);
        }
    }
    out
}

fn interface(obj: &Object, loc: Location, names: &HashMap<u64, String>, ctx: &mut ParseContext) -> Option<Interface> {
    let Some(name) = opt_str(obj, "ifname", &loc, ctx) else {
        ctx.warn(loc, "interface entry has no `ifname`; skipped");
        return None;
    };
    let flags: Vec<&str> = match obj.get("flags") {
        Some(Value::Array(f)) => f.iter().filter_map(Value::as_str).collect(),
        None => Vec::new(),
        Some(other) => {
            ctx.warn(loc.child("/flags"), format!("`flags` is {}, expected an array; ignored", type_name(other)));
            Vec::new()
        }
    };
    let operstate = opt_str(obj, "operstate", &loc, ctx).unwrap_or("UNKNOWN");
    // UP is the admin flag; operstate (RFC 2863) says whether it carries traffic. UNKNOWN is
    // what loopback, tun and vxlan devices report while working; DORMANT, TESTING,
    // LOWERLAYERDOWN, NOTPRESENT and DOWN do not pass traffic.
    let up = flags.contains(&"UP") && matches!(operstate, "UP" | "UNKNOWN");
    let link = match (obj.get("link"), obj.get("link_index")) {
        (Some(Value::String(s)), _) => Some(s.clone()),
        (_, Some(Value::Number(n))) => n.as_u64().map(|i| match (obj.get("link_netnsid"), names.get(&i)) {
            // The index is in the peer's namespace when link_netnsid is present.
            (None, Some(n)) => n.clone(),
            _ => format!("if{i}"),
        }),
        _ => None,
    };
    let link_netnsid = match obj.get("link_netnsid") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let n = v.as_i64();
            if n.is_none() {
                ctx.warn(
                    loc.child("/link_netnsid"),
                    format!("`link_netnsid` is {}, expected an integer; ignored", short(Some(v))),
                );
            }
            n
        }
    };
    let addresses = addresses(obj, &loc, ctx);
    Some(Interface {
        index: opt_u32(obj, "ifindex", &loc, ctx),
        name: name.to_string(),
        kind: kind(obj, &loc, names, ctx),
        mtu: opt_u32(obj, "mtu", &loc, ctx),
        up,
        mac: opt_str(obj, "address", &loc, ctx).map(str::to_string),
        addresses,
        master: opt_str(obj, "master", &loc, ctx).map(str::to_string),
        link,
        link_netnsid,
        origin: loc,
    })
}

fn kind(obj: &Object, loc: &Location, names: &HashMap<u64, String>, ctx: &mut ParseContext) -> InterfaceKind {
    let info = obj.get("linkinfo").and_then(Value::as_object);
    let info_kind = info.and_then(|i| i.get("info_kind")).and_then(Value::as_str);
    let data = info.and_then(|i| i.get("info_data")).and_then(Value::as_object);
    let data_loc = loc.child("/linkinfo/info_data");
    match info_kind {
        None if obj.get("link_type").and_then(Value::as_str) == Some("loopback") => InterfaceKind::Loopback,
        None => InterfaceKind::Physical,
        Some("veth") => InterfaceKind::Veth,
        Some("bridge") => InterfaceKind::Bridge,
        Some("wireguard") => InterfaceKind::WireGuard,
        // A tap is an Ethernet-level device (VMs, some VPNs); only a tun is an IP tunnel end.
        Some("tun") if data.and_then(|d| d.get("type")).and_then(Value::as_str) == Some("tap") => {
            InterfaceKind::Other { name: "tap".to_string() }
        }
        Some("tun") => InterfaceKind::Tun,
        Some("ipip") => InterfaceKind::Ipip,
        Some("gre" | "gretap" | "ip6gre" | "ip6gretap") => InterfaceKind::Gre,
        Some("vxlan") => {
            let empty = Object::new();
            let d = data.unwrap_or(&empty);
            let local = opt_ip(d, "local", &data_loc, ctx).or_else(|| opt_ip(d, "local6", &data_loc, ctx));
            let dev = match d.get("link") {
                Some(Value::String(s)) => Some(resolve_if_name(s, names)),
                Some(Value::Number(n)) => n.as_u64().map(|i| names.get(&i).cloned().unwrap_or(format!("if{i}"))),
                _ => None,
            };
            InterfaceKind::Vxlan {
                vni: opt_u32(d, "id", &data_loc, ctx),
                port: opt_uint(d, "port", u64::from(u16::MAX), &data_loc, ctx).and_then(|p| u16::try_from(p).ok()),
                local,
                dev,
            }
        }
        Some(other) => InterfaceKind::Other { name: other.to_string() },
    }
}

/// iproute2 prints `if<N>` for an index it could not name; name it when this file can.
fn resolve_if_name(s: &str, names: &HashMap<u64, String>) -> String {
    s.strip_prefix("if")
        .and_then(|n| n.parse::<u64>().ok())
        .and_then(|i| names.get(&i))
        .cloned()
        .unwrap_or_else(|| s.to_string())
}

fn addresses(obj: &Object, loc: &Location, ctx: &mut ParseContext) -> Vec<IpNet> {
    let list = match obj.get("addr_info") {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(a)) => a,
        Some(other) => {
            ctx.warn(
                loc.child("/addr_info"),
                format!("`addr_info` is {}, expected an array; ignored", type_name(other)),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (j, a) in list.iter().enumerate() {
        let aloc = loc.child(&format!("/addr_info/{j}"));
        let Some(a) = a.as_object() else {
            ctx.warn(aloc, "address entry is not an object; skipped");
            continue;
        };
        // `ip -j addr` prints `{}` entries for addresses of a filtered-out family.
        if a.is_empty() {
            continue;
        }
        let Some(local) = opt_ip(a, "local", &aloc, ctx) else {
            ctx.warn(aloc, "address entry has no usable `local`; skipped");
            continue;
        };
        let max = if local.is_ipv4() { 32 } else { 128 };
        // Without `prefixlen` the address is a host address; a bad one is not guessed.
        let prefix = match a.get("prefixlen") {
            None => Some(max),
            Some(v) => v.as_u64().and_then(|p| u8::try_from(p).ok()).filter(|p| *p <= max),
        };
        match prefix.and_then(|p| IpNet::new(local, p).ok()) {
            Some(net) => out.push(net),
            None => ctx.warn(
                aloc.child("/prefixlen"),
                format!("prefix length {} is invalid for {local}; address skipped", short(a.get("prefixlen"))),
            ),
        }
    }
    out
}

// ------------------------------------------------------------------------- routes

fn table_id(name: &str) -> (u32, Option<String>) {
    match name {
        "main" => (254, None),
        "local" => (255, None),
        "default" => (253, None),
        other => match other.parse::<u32>() {
            Ok(n) => (n, None),
            Err(_) => (synthetic_table_id(other), Some(other.to_string())),
        },
    }
}

/// Stable id for a table known only by name (FNV-1a, top bit set; see module docs).
fn synthetic_table_id(name: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h | 0x8000_0000
}

fn table_of(obj: &Object, key: &str, loc: &Location, ctx: &mut ParseContext) -> Option<(u32, Option<String>)> {
    match obj.get(key)? {
        Value::String(s) => Some(table_id(s)),
        Value::Number(n) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Some((n, None)),
            None => {
                ctx.warn(loc.child(&format!("/{key}")), format!("table {n} is not a valid table id; ignored"));
                None
            }
        },
        other => {
            ctx.warn(
                loc.child(&format!("/{key}")),
                format!("`{key}` is {}, expected a string; ignored", type_name(other)),
            );
            None
        }
    }
}

fn route_type(s: &str) -> Option<RouteType> {
    Some(match s {
        "unicast" => RouteType::Unicast,
        "local" => RouteType::Local,
        "broadcast" => RouteType::Broadcast,
        "multicast" => RouteType::Multicast,
        "anycast" => RouteType::Anycast,
        "blackhole" => RouteType::Blackhole,
        "unreachable" => RouteType::Unreachable,
        "prohibit" => RouteType::Prohibit,
        "throw" => RouteType::Throw,
        "nat" => RouteType::Nat,
        _ => return None,
    })
}

/// The gateway of a route or next hop: `gateway`, or `via` (`{"family", "host"}`), which
/// iproute2 uses when the gateway's family differs from the route's (RFC 5549).
fn gateway_of(obj: &Object, loc: &Location, ctx: &mut ParseContext) -> Option<IpAddr> {
    if let Some(gw) = opt_ip(obj, "gateway", loc, ctx) {
        return Some(gw);
    }
    let via = obj.get("via")?.as_object()?;
    opt_ip(via, "host", &loc.child("/via"), ctx)
}

fn route(
    obj: &Object,
    loc: &Location,
    v6_file: bool,
    out: &mut Vec<Route>,
    ctx: &mut ParseContext,
) -> Result<(), String> {
    let route_type = match opt_str(obj, "type", loc, ctx) {
        None => RouteType::Unicast,
        Some(t) => route_type(t).ok_or_else(|| format!("unknown route type {}", short(obj.get("type"))))?,
    };
    let (table, table_name) = table_of(obj, "table", loc, ctx).unwrap_or((254, None));
    let gateway = gateway_of(obj, loc, ctx);
    let prefsrc = opt_ip(obj, "prefsrc", loc, ctx);
    let dst_str = match obj.get("dst") {
        Some(Value::String(s)) => s.as_str(),
        None => return Err("route has no `dst`".to_string()),
        Some(other) => return Err(format!("`dst` is {}, expected a string", type_name(other))),
    };
    let dst = if dst_str == "default" {
        // The family is in the addresses if any, else RTA_PREF (only IPv6 routes carry
        // `pref`), else the file (`ip -6`), else IPv4 as `ip route` defaults to.
        let v6 = match gateway.or(prefsrc) {
            Some(a) => a.is_ipv6(),
            None => obj.contains_key("pref") || v6_file,
        };
        if v6 {
            IpNet::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
        } else {
            IpNet::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
        }
        .map_err(|e| e.to_string())?
    } else {
        parse_net(dst_str)
            .ok_or_else(|| format!("`dst` {} is neither `default`, an address nor a prefix", short(obj.get("dst"))))?
    };
    let metric = opt_u32(obj, "metric", loc, ctx);
    // `metrics` is an array of one object (`[{"mtu": 1400}]`).
    let mtu = match obj.get("metrics") {
        Some(Value::Array(m)) => m.iter().enumerate().find_map(|(k, m)| {
            let m = m.as_object()?;
            m.contains_key("mtu").then(|| opt_u32(m, "mtu", &loc.child(&format!("/metrics/{k}")), ctx))?
        }),
        _ => None,
    };
    let base = Route {
        table,
        table_name,
        route_type,
        dst,
        gateway,
        dev: opt_str(obj, "dev", loc, ctx).map(str::to_string),
        prefsrc,
        metric,
        protocol: match obj.get("protocol") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        },
        scope: match obj.get("scope") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        },
        mtu,
        origin: loc.clone(),
    };
    // A multipath route: one Route per next hop, as an ECMP set the lookup can choose from.
    match obj.get("nexthops") {
        Some(Value::Array(hops)) if !hops.is_empty() => {
            for (k, hop) in hops.iter().enumerate() {
                let hloc = loc.child(&format!("/nexthops/{k}"));
                let Some(h) = hop.as_object() else {
                    ctx.warn(hloc, "next hop is not an object; skipped");
                    continue;
                };
                let mut r = base.clone();
                r.gateway = gateway_of(h, &hloc, ctx);
                r.dev = opt_str(h, "dev", &hloc, ctx).map(str::to_string).or(r.dev);
                r.origin = hloc;
                out.push(r);
            }
        }
        _ => out.push(base),
    }
    Ok(())
}

/// `10.0.0.0/8`, or a bare address meaning a host route.
fn parse_net(s: &str) -> Option<IpNet> {
    if s.contains('/') {
        return s.parse().ok();
    }
    let addr: IpAddr = s.parse().ok()?;
    Some(IpNet::from(addr))
}

// ------------------------------------------------------------------------- rules

/// Rule keys that select or filter packets in ways `RoutingRule` does not hold.
const UNMODELLED_RULE_KEYS: &[&str] = &[
    "suppress_prefixlength",
    "suppress_ifgroup",
    "ipproto",
    "sport",
    "dport",
    "uidrange",
    "l3mdev",
    "tun_id",
    "realms",
    "tos",
    "dscp",
    "flowlabel",
];

fn rule_addr(
    obj: &Object,
    key: &str,
    len_key: &str,
    loc: &Location,
    ctx: &mut ParseContext,
) -> Result<Option<IpNet>, String> {
    let Some(s) = opt_str(obj, key, loc, ctx) else {
        return Ok(None);
    };
    if s == "all" {
        return Ok(None);
    }
    let addr: IpAddr =
        s.parse().map_err(|_| format!("`{key}` {} is neither `all` nor an address", short(obj.get(key))))?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    // iproute2 omits the length when it is the full host length.
    let len = match obj.get(len_key) {
        None => max,
        Some(v) => v
            .as_u64()
            .and_then(|l| u8::try_from(l).ok())
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("`{len_key}` {} is not a prefix length for {addr}", short(Some(v))))?,
    };
    IpNet::new(addr, len).map(Some).map_err(|e| format!("bad `{len_key}` for {addr}: {e}"))
}

fn rule(obj: &Object, loc: &Location, file_family: &str, ctx: &mut ParseContext) -> Result<RoutingRule, String> {
    // A rule without FRA_PRIORITY has priority 0 in the kernel.
    let priority = opt_u32(obj, "priority", loc, ctx).unwrap_or(0);
    let from = rule_addr(obj, "src", "srclen", loc, ctx)?;
    let to = rule_addr(obj, "dst", "dstlen", loc, ctx)?;
    let family = match from.or(to) {
        Some(IpNet::V4(_)) => "inet",
        Some(IpNet::V6(_)) => "inet6",
        None => file_family,
    };
    let not = match obj.get("not") {
        None | Some(Value::Bool(false)) => false,
        // iproute2 prints `"not": null` for a negated rule.
        Some(_) => true,
    };
    let action = if obj.contains_key("goto") {
        RuleAction::Goto
    } else if obj.contains_key("nop") {
        RuleAction::Nop
    } else {
        match opt_str(obj, "action", loc, ctx) {
            None => RuleAction::ToTable,
            Some("blackhole") => RuleAction::Blackhole,
            Some("unreachable") => RuleAction::Unreachable,
            Some("prohibit") => RuleAction::Prohibit,
            Some("goto") => RuleAction::Goto,
            Some("nop") => RuleAction::Nop,
            Some(_) => return Err(format!("unknown rule action {}", short(obj.get("action")))),
        }
    };
    let (table, table_name) = match table_of(obj, "table", loc, ctx) {
        Some((t, n)) => (Some(t), n),
        None => (None, None),
    };
    let unmodelled: Vec<&str> = UNMODELLED_RULE_KEYS.iter().copied().filter(|k| obj.contains_key(*k)).collect();
    if !unmodelled.is_empty() {
        ctx.warn(
            loc.clone(),
            format!(
                "rule {priority} uses {} which the model does not represent; lookups through it may \
                 differ from the kernel's",
                unmodelled.join(", ")
            ),
        );
    }
    Ok(RoutingRule {
        priority,
        family: Some(family.to_string()),
        not,
        from,
        to,
        fwmark: opt_u32(obj, "fwmark", loc, ctx),
        fwmask: opt_u32(obj, "fwmask", loc, ctx),
        iif: opt_str(obj, "iif", loc, ctx).map(str::to_string),
        oif: opt_str(obj, "oif", loc, ctx).map(str::to_string),
        table,
        table_name,
        action,
        origin: loc.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert_eq!(table_id("main"), (254, None));
        assert_eq!(table_id("local"), (255, None));
        assert_eq!(table_id("default"), (253, None));
        assert_eq!(table_id("100"), (100, None));
        let (id, name) = table_id("vpn");
        assert_eq!(name.as_deref(), Some("vpn"));
        assert!(id >= 0x8000_0000);
        assert_eq!(table_id("vpn").0, id, "same name, same id");
        assert_ne!(table_id("other").0, id);
    }

    #[test]
    fn nets() {
        assert_eq!(parse_net("10.0.0.1"), "10.0.0.1/32".parse().ok());
        assert_eq!(parse_net("fd00::1"), "fd00::1/128".parse().ok());
        assert_eq!(parse_net("10.0.0.0/8"), "10.0.0.0/8".parse().ok());
        assert_eq!(parse_net("10.0.0.0/33"), None);
        assert_eq!(parse_net("any"), None);
    }

    #[test]
    fn uint_strings() {
        assert_eq!(parse_uint_str("0xca6c"), Some(0xca6c));
        assert_eq!(parse_uint_str("51820"), Some(51820));
        assert_eq!(parse_uint_str("0xzz"), None);
    }
}
