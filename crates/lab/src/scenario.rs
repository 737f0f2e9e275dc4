//! Scenario files: YAML descriptions of a lab (hosts, links, addresses, routes, sysctls,
//! nftables tables, services, the test path, fault defaults), parsed strictly and validated.
//!
//! Unknown fields are errors (a typo must not silently drop a route), and every error names
//! the file, line and column of the item it is about.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_saphyr::options::DuplicateKeyPolicy;
use serde_saphyr::{Location, Options, Spanned};

use crate::error::LabError;
use crate::names::{self, MAX_HOST_NAME, MAX_WG_INTERFACES};

/// Largest scenario file accepted.
const MAX_SCENARIO_BYTES: usize = 1 << 20;
/// Most hosts (namespaces) a scenario may have.
pub const MAX_HOSTS: usize = 64;

/// The scenarios shipped with netsleuth (`lab/scenarios/` of the repository).
const BUILTIN: &[(&str, &str)] = &[
    ("k8s-wireguard-site", include_str!("../../../lab/scenarios/k8s-wireguard-site.yaml")),
    ("ipsec-hybrid", include_str!("../../../lab/scenarios/ipsec-hybrid.yaml")),
    ("dns-and-policy", include_str!("../../../lab/scenarios/dns-and-policy.yaml")),
];

/// The only address ranges a scenario may use: documentation ranges for the underlay
/// "internet", private ranges for sites and pods. They exist only inside lab namespaces.
pub const LAB_RANGES: [Ipv4Net; 4] = [
    Ipv4Net::new_assert(Ipv4Addr::new(198, 51, 100, 0), 24),
    Ipv4Net::new_assert(Ipv4Addr::new(203, 0, 113, 0), 24),
    Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 0, 0), 8),
    Ipv4Net::new_assert(Ipv4Addr::new(172, 16, 0, 0), 12),
];

/// Whether the whole prefix lies inside one of [`LAB_RANGES`].
pub fn in_lab_ranges(net: &IpNet) -> bool {
    match net {
        IpNet::V4(n) => LAB_RANGES.iter().any(|r| r.contains(n)),
        IpNet::V6(_) => false,
    }
}

/// Whether the address lies inside one of [`LAB_RANGES`].
pub fn ip_in_lab_ranges(ip: IpAddr) -> bool {
    in_lab_ranges(&IpNet::from(ip))
}

// ---------------------------------------------------------------------------------------
// Errors

/// One problem at a place in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

/// Every problem of one scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioErrors {
    /// The file (or `builtin:NAME`).
    pub source: String,
    pub errors: Vec<ScenarioError>,
}

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match (e.line, e.column) {
                (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.source, e.message)?,
                (Some(l), None) => write!(f, "{}:{l}: {}", self.source, e.message)?,
                _ => write!(f, "{}: {}", self.source, e.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioErrors {}

// ---------------------------------------------------------------------------------------
// The scenario model

/// A scalar written as text, a number or a boolean (sysctl values, fault parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(if v { "1" } else { "0" }.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A lab: hosts (network namespaces) and what connects them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    pub hosts: BTreeMap<String, Spanned<HostSpec>>,
    #[serde(default)]
    pub links: Vec<Spanned<Link>>,
    /// The path the tests and the diagnosis benchmark use.
    #[serde(default)]
    pub path: Option<Spanned<PathSpec>>,
    /// Default parameters of faults in this scenario (`fault name → parameter → value`).
    #[serde(default)]
    pub faults: BTreeMap<String, Spanned<BTreeMap<String, Scalar>>>,
}

/// What a host stands for (written to the bundle's host.json by `collect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostRole {
    Node,
    Gateway,
    Pod,
    Router,
    Switch,
    Server,
}

impl HostRole {
    pub fn as_str(self) -> &'static str {
        match self {
            HostRole::Node => "node",
            HostRole::Gateway => "gateway",
            HostRole::Pod => "pod",
            HostRole::Router => "router",
            HostRole::Switch => "switch",
            HostRole::Server => "server",
        }
    }
}

/// One host: a network namespace.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    #[serde(default)]
    pub role: Option<HostRole>,
    /// For pods: the host that is their node.
    #[serde(default)]
    pub node: Option<String>,
    /// For pods: `namespace/name` of the Kubernetes pod it stands for.
    #[serde(default)]
    pub pod: Option<String>,
    /// `net.*` sysctls of the namespace.
    #[serde(default)]
    pub sysctls: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub routes: Vec<Spanned<RouteSpec>>,
    #[serde(default)]
    pub nftables: Vec<Spanned<NftTableSpec>>,
    #[serde(default)]
    pub services: Vec<Spanned<Service>>,
}

/// A link between or inside hosts.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Link {
    /// A veth pair; each end has its own MTU (an MTU mismatch is a per-end setting).
    Veth(VethSpec),
    /// A Linux bridge on one host; veth ends join it with `master`.
    Bridge(BridgeSpec),
    /// A VXLAN device on one host, flooding to `remotes` (head-end replication).
    Vxlan(VxlanSpec),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VethSpec {
    pub a: VethEnd,
    pub b: VethEnd,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VethEnd {
    pub host: String,
    pub name: String,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default, deserialize_with = "de_nets")]
    pub addresses: Vec<IpNet>,
    /// A bridge on the same host this end joins.
    #[serde(default)]
    pub master: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeSpec {
    pub host: String,
    pub name: String,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default, deserialize_with = "de_nets")]
    pub addresses: Vec<IpNet>,
}

fn default_vxlan_port() -> u16 {
    4789
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VxlanSpec {
    pub host: String,
    pub name: String,
    pub vni: u32,
    /// UDP destination port (4789 by default; Flannel uses 8472).
    #[serde(default = "default_vxlan_port")]
    pub port: u16,
    /// The underlay device.
    pub dev: String,
    /// The local underlay address.
    #[serde(deserialize_with = "de_ip")]
    pub local: IpAddr,
    /// Underlay addresses of the other VXLAN endpoints.
    #[serde(default, deserialize_with = "de_ips")]
    pub remotes: Vec<IpAddr>,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default, deserialize_with = "de_nets")]
    pub addresses: Vec<IpNet>,
}

/// A route in the host's main table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// A prefix, or `default`.
    pub to: String,
    #[serde(default, deserialize_with = "de_opt_ip")]
    pub via: Option<IpAddr>,
    #[serde(default)]
    pub dev: Option<String>,
    #[serde(default)]
    pub onlink: bool,
    #[serde(default)]
    pub metric: Option<u32>,
    #[serde(default, deserialize_with = "de_opt_ip")]
    pub src: Option<IpAddr>,
    #[serde(default)]
    pub mtu: Option<u32>,
}

impl RouteSpec {
    /// The destination prefix (`default` is 0.0.0.0/0).
    pub fn destination(&self) -> Option<IpNet> {
        parse_destination(&self.to)
    }
}

/// `default` or a prefix (a bare address is a host route).
pub fn parse_destination(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if s == "default" {
        return Some(IpNet::V4(Ipv4Net::default()));
    }
    s.parse::<IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from)).map(|n| n.trunc())
}

/// One nftables table of a host: `table: "inet mss_clamp"`, `rules:` its body (chains, sets).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NftTableSpec {
    pub table: String,
    pub rules: String,
}

impl NftTableSpec {
    /// (family, name) of `table`.
    pub fn family_and_name(&self) -> Option<(&str, &str)> {
        let mut it = self.table.split_whitespace();
        let (family, name) = (it.next()?, it.next()?);
        it.next().is_none().then_some((family, name))
    }
}

/// A service running on a host. New kinds (strongSwan `charon` in its own mount namespace
/// with kernel-libipsec, `dnsmasq`) are new variants here plus a starter in `services`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Service {
    Wireguard(WireguardSpec),
    Echo(EchoSpec),
    /// strongSwan charon (own mount namespace, kernel-libipsec), IKEv2 PSK site-to-site.
    Strongswan(crate::strongswan::StrongswanSpec),
    /// dnsmasq as a cluster resolver or an upstream (records, local and forward zones).
    Dnsmasq(crate::dnsmasq::DnsmasqSpec),
    /// A client host's resolver configuration (its own resolv.conf in the lab run dir).
    Resolv(crate::dnsmasq::ResolvSpec),
}

/// A WireGuard interface run by wireguard-go. Keys are made per lab run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireguardSpec {
    /// The name routes, sysctls and faults use (`wg0`); the real interface is `<lab id>-w<n>`.
    pub name: String,
    pub listen_port: u16,
    #[serde(deserialize_with = "de_net")]
    pub address: IpNet,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub peers: Vec<WgPeerSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WgPeerSpec {
    /// The host whose WireGuard interface is the peer.
    pub host: String,
    /// Which of its WireGuard interfaces (when it has several).
    #[serde(default)]
    pub interface: Option<String>,
    #[serde(deserialize_with = "de_nets")]
    pub allowed_ips: Vec<IpNet>,
    /// `ADDRESS` or `ADDRESS:PORT` (the port defaults to the peer's listen port).
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub keepalive: Option<u16>,
}

/// The lab's echo service (TCP echo, UDP echo, HTTP), netsleuth's own code.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EchoSpec {
    #[serde(default)]
    pub tcp: Option<u16>,
    #[serde(default)]
    pub udp: Option<u16>,
    #[serde(default)]
    pub http: Option<u16>,
}

/// The path tests and the diagnosis benchmark use: from `source`, to the echo service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathSpec {
    pub source: String,
    /// TCP echo address:port.
    #[serde(deserialize_with = "de_socket")]
    pub target: SocketAddr,
    #[serde(default, deserialize_with = "de_opt_socket")]
    pub udp: Option<SocketAddr>,
    #[serde(default, deserialize_with = "de_opt_socket")]
    pub http: Option<SocketAddr>,
    /// The healthy path MTU (the largest packet with DF that gets through).
    #[serde(default)]
    pub mtu: Option<u32>,
}

impl Scenario {
    pub fn name(&self) -> &str {
        &self.name.value
    }

    pub fn host(&self, name: &str) -> Option<&HostSpec> {
        self.hosts.get(name).map(|h| &h.value)
    }

    /// Every WireGuard service as (host, spec), in the order that numbers their interfaces.
    pub fn wireguard_services(&self) -> Vec<(&str, &WireguardSpec)> {
        self.hosts
            .iter()
            .flat_map(|(h, spec)| {
                spec.value.services.iter().filter_map(move |s| match &s.value {
                    Service::Wireguard(w) => Some((h.as_str(), w)),
                    _ => None,
                })
            })
            .collect()
    }

    /// The scenario's default parameters of a fault.
    pub fn fault_defaults(&self, fault: &str) -> BTreeMap<String, String> {
        self.faults
            .get(fault)
            .map(|m| m.value.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
            .unwrap_or_default()
    }

    /// The scenario's route of `host` to `dst`.
    pub fn route(&self, host: &str, dst: &IpNet) -> Option<&RouteSpec> {
        self.host(host)?.routes.iter().map(|r| &r.value).find(|r| r.destination().as_ref() == Some(dst))
    }
}

/// A parsed, validated scenario with its text (kept so a running lab can re-read it).
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    pub scenario: Scenario,
    /// Where it came from: a path or `builtin:NAME`.
    pub source: String,
    pub text: String,
}

/// Names of the scenarios shipped with netsleuth.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// A shipped scenario by name.
pub fn builtin(name: &str) -> Option<Result<LoadedScenario, ScenarioErrors>> {
    let (n, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
    Some(parse(text, &format!("builtin:{n}")))
}

/// A scenario by shipped name, or from a file path.
pub fn load(name_or_path: &str) -> Result<LoadedScenario, LabError> {
    if let Some(found) = builtin(name_or_path) {
        return Ok(found?);
    }
    let path = Path::new(name_or_path);
    if !path.exists() {
        return Err(LabError::Lab(format!(
            "no scenario {name_or_path:?}: not a shipped scenario ({}) and no such file",
            builtin_names().join(", ")
        )));
    }
    let meta = std::fs::metadata(path).map_err(|e| LabError::io(format!("cannot read {name_or_path}"), e))?;
    if meta.len() > MAX_SCENARIO_BYTES as u64 {
        return Err(LabError::Lab(format!("{name_or_path}: larger than {MAX_SCENARIO_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| LabError::io(format!("cannot read {name_or_path}"), e))?;
    Ok(parse(&text, name_or_path)?)
}

fn yaml_options() -> Options {
    Options {
        duplicate_keys: DuplicateKeyPolicy::Error,
        // `enabled: yes` stays a string: only true/false are booleans.
        strict_booleans: true,
        with_snippet: false,
        crop_radius: 0,
        ..Options::default()
    }
}

/// Parses and validates scenario text; `source` names it in errors.
pub fn parse(text: &str, source: &str) -> Result<LoadedScenario, ScenarioErrors> {
    let fail = |line, column, message| ScenarioErrors {
        source: source.to_string(),
        errors: vec![ScenarioError { line, column, message }],
    };
    if text.len() > MAX_SCENARIO_BYTES {
        return Err(fail(None, None, format!("larger than {MAX_SCENARIO_BYTES} bytes")));
    }
    let scenario: Scenario = serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| {
        let (msg, line, column) = error_parts(&e);
        let (line, column) = refine_position(text, &msg, line, column);
        fail(line, column, msg)
    })?;
    let errors = validate(&scenario);
    if !errors.is_empty() {
        return Err(ScenarioErrors { source: source.to_string(), errors });
    }
    Ok(LoadedScenario { scenario, source: source.to_string(), text: text.to_string() })
}

/// A serde-saphyr error as (message without its position suffix, line, column).
fn error_parts(err: &serde_saphyr::Error) -> (String, Option<u64>, Option<u64>) {
    let err = err.without_snippet();
    let mut msg = err.to_string();
    let loc = err.location();
    if let Some(l) = loc {
        let suffix = format!(" at line {}, column {}", l.line(), l.column());
        if let Some(stripped) = msg.strip_suffix(&suffix) {
            msg = stripped.to_string();
        }
    }
    let line = loc.map(|l| l.line()).filter(|l| *l > 0);
    let column = loc.map(|l| l.column()).filter(|c| *c > 0);
    (msg, line, column)
}

// Addresses are read as text and parsed here, so that an error quotes the bad value (which
// then locates it in the file: the YAML library gives no position for such errors).

fn parse_text<T: FromStr, E: de::Error>(s: &str, what: &str) -> Result<T, E> {
    s.trim().parse().map_err(|_| E::custom(format!("`{s}` is not {what}")))
}

fn de_net<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
    let s = String::deserialize(d)?;
    // A bare address is a host prefix (/32, /128).
    parse_text::<IpNet, D::Error>(&s, "an address with a prefix length (10.1.0.1/24)")
}

fn de_nets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| parse_text::<IpNet, D::Error>(s, "an address with a prefix length (10.1.0.1/24)"))
        .collect()
}

fn de_ip<'de, D: Deserializer<'de>>(d: D) -> Result<IpAddr, D::Error> {
    parse_text(&String::deserialize(d)?, "an IP address")
}

fn de_ips<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpAddr>, D::Error> {
    Vec::<String>::deserialize(d)?.iter().map(|s| parse_text::<IpAddr, D::Error>(s, "an IP address")).collect()
}

fn de_opt_ip<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    Option::<String>::deserialize(d)?.map(|s| parse_text(&s, "an IP address")).transpose()
}

fn de_socket<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    parse_text(&String::deserialize(d)?, "ADDRESS:PORT")
}

fn de_opt_socket<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    Option::<String>::deserialize(d)?.map(|s| parse_text(&s, "ADDRESS:PORT")).transpose()
}

/// A better position for errors the YAML library places coarsely: an unknown field is
/// reported at its mapping's start (find the key at or after it), a bad value without any
/// position (find the quoted value). Never worse than what the library gave.
fn refine_position(text: &str, msg: &str, line: Option<u64>, column: Option<u64>) -> (Option<u64>, Option<u64>) {
    let quoted = |prefix: &str| -> Option<String> {
        let rest = msg.get(msg.find(prefix)? + prefix.len()..)?;
        Some(rest.get(..rest.find('`')?)?.to_string())
    };
    let from_line = line.unwrap_or(1);
    let find = |needle: &str, key: bool| -> Option<(u64, u64)> {
        for (i, l) in text.lines().enumerate() {
            let n = i as u64 + 1;
            if n < from_line || needle.is_empty() {
                continue;
            }
            let mut start = 0;
            while let Some(pos) = l.get(start..).and_then(|r| r.find(needle)).map(|p| p + start) {
                let before = l.get(..pos).and_then(|b| b.chars().last());
                let after = l.get(pos + needle.len()..).unwrap_or("");
                let boundary = before.is_none_or(|c| matches!(c, ' ' | '{' | ',' | '[' | '-' | '"' | '\''));
                let fits = if key { after.trim_start().starts_with(':') } else { true };
                if boundary && fits {
                    return Some((n, l.get(..pos).map_or(0, |b| b.chars().count()) as u64 + 1));
                }
                start = pos + needle.len().max(1);
            }
        }
        None
    };
    let found = if let Some(field) = quoted("unknown field `").or_else(|| quoted("unknown variant `")) {
        find(&field, true)
    } else if line.is_none() {
        quoted("`").and_then(|v| find(&v, false))
    } else {
        None
    };
    match found {
        Some((l, c)) => (Some(l), Some(c)),
        None => (line, column),
    }
}

// ---------------------------------------------------------------------------------------
// Validation

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IfKind {
    Veth,
    Bridge,
    Vxlan,
    Wireguard,
}

struct Check<'a> {
    sc: &'a Scenario,
    errors: Vec<ScenarioError>,
    /// (host, interface) → kind, from links and WireGuard services.
    ifaces: BTreeMap<(String, String), IfKind>,
}

impl Check<'_> {
    fn err(&mut self, at: &Location, message: impl Into<String>) {
        let line = Some(at.line()).filter(|l| *l > 0);
        let column = Some(at.column()).filter(|c| *c > 0);
        self.errors.push(ScenarioError { line, column, message: message.into() });
    }

    fn host_exists(&mut self, at: &Location, host: &str, what: &str) -> bool {
        if self.sc.hosts.contains_key(host) {
            return true;
        }
        let known: Vec<&str> = self.sc.hosts.keys().map(String::as_str).collect();
        self.err(at, format!("{what}: unknown host {host:?} (hosts: {})", known.join(", ")));
        false
    }

    fn add_iface(&mut self, at: &Location, host: &str, name: &str, kind: IfKind) {
        if !names::valid_ifname(name) || name == "lo" {
            self.err(
                at,
                format!("interface name {name:?} on {host}: use 1-15 letters, digits, '-' or '_' (and not \"lo\")"),
            );
            return;
        }
        if self.ifaces.insert((host.to_string(), name.to_string()), kind).is_some() {
            self.err(at, format!("interface {name:?} is defined twice on host {host}"));
        }
    }

    fn iface(&self, host: &str, name: &str) -> Option<IfKind> {
        self.ifaces.get(&(host.to_string(), name.to_string())).copied()
    }

    fn addresses(&mut self, at: &Location, what: &str, addrs: &[IpNet]) {
        for a in addrs {
            if !in_lab_ranges(a) {
                self.err(at, format!("{what}: address {a} is outside the lab ranges ({})", ranges_text()));
            }
        }
    }

    fn ip(&mut self, at: &Location, what: &str, ip: IpAddr) {
        if !ip_in_lab_ranges(ip) {
            self.err(at, format!("{what}: address {ip} is outside the lab ranges ({})", ranges_text()));
        }
    }

    fn mtu(&mut self, at: &Location, what: &str, mtu: Option<u32>) {
        if let Some(m) = mtu.filter(|m| !(68..=65535).contains(m)) {
            self.err(at, format!("{what}: MTU {m} is outside 68..65535"));
        }
    }
}

fn ranges_text() -> String {
    LAB_RANGES.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", ")
}

fn validate(sc: &Scenario) -> Vec<ScenarioError> {
    let mut c = Check { sc, errors: Vec::new(), ifaces: BTreeMap::new() };
    if !names::valid_name(&sc.name.value, 64) {
        c.err(&sc.name.referenced, "name: use lowercase letters, digits and '-' (at most 64)");
    }
    if sc.hosts.is_empty() {
        c.err(&sc.name.referenced, "hosts: a scenario needs at least one host");
    }
    if sc.hosts.len() > MAX_HOSTS {
        c.err(&sc.name.referenced, format!("hosts: at most {MAX_HOSTS} hosts"));
    }
    for (name, h) in &sc.hosts {
        if !names::valid_name(name, MAX_HOST_NAME) {
            c.err(
                &h.referenced,
                format!("host name {name:?}: use lowercase letters, digits and '-' (at most {MAX_HOST_NAME})"),
            );
        }
        if let Some(node) = &h.value.node {
            c.host_exists(&h.referenced, node, &format!("host {name}: node"));
        }
        if h.value.role == Some(HostRole::Pod) && h.value.node.is_none() {
            c.err(&h.referenced, format!("host {name}: a pod needs `node:` (the host that is its node)"));
        }
    }
    // Pass 1: every interface, so that later references can be checked in any order.
    for l in &sc.links {
        let at = l.referenced;
        match &l.value {
            Link::Veth(v) => {
                for end in [&v.a, &v.b] {
                    if c.host_exists(&at, &end.host, "veth") {
                        c.add_iface(&at, &end.host, &end.name, IfKind::Veth);
                    }
                }
            }
            Link::Bridge(b) => {
                if c.host_exists(&at, &b.host, "bridge") {
                    c.add_iface(&at, &b.host, &b.name, IfKind::Bridge);
                }
            }
            Link::Vxlan(x) => {
                if c.host_exists(&at, &x.host, "vxlan") {
                    c.add_iface(&at, &x.host, &x.name, IfKind::Vxlan);
                }
            }
        }
    }
    let mut wg_count = 0usize;
    for (host, h) in &sc.hosts {
        for s in &h.value.services {
            if let Service::Wireguard(w) = &s.value {
                wg_count += 1;
                c.add_iface(&s.referenced, host, &w.name, IfKind::Wireguard);
            }
        }
    }
    if wg_count > MAX_WG_INTERFACES {
        c.err(&sc.name.referenced, format!("at most {MAX_WG_INTERFACES} WireGuard services per scenario"));
    }
    // Pass 2: links' settings and references.
    for l in &sc.links {
        let at = l.referenced;
        match &l.value {
            Link::Veth(v) => {
                if v.a.host == v.b.host && v.a.name == v.b.name {
                    c.err(&at, format!("veth: both ends are {} on {}", v.a.name, v.a.host));
                }
                for end in [&v.a, &v.b] {
                    let what = format!("veth end {} on {}", end.name, end.host);
                    c.mtu(&at, &what, end.mtu);
                    c.addresses(&at, &what, &end.addresses);
                    if let Some(m) = &end.master {
                        if c.sc.hosts.contains_key(&end.host) && c.iface(&end.host, m) != Some(IfKind::Bridge) {
                            c.err(&at, format!("{what}: master {m:?} is not a bridge on {}", end.host));
                        }
                    }
                }
            }
            Link::Bridge(b) => {
                let what = format!("bridge {} on {}", b.name, b.host);
                c.mtu(&at, &what, b.mtu);
                c.addresses(&at, &what, &b.addresses);
            }
            Link::Vxlan(x) => {
                let what = format!("vxlan {} on {}", x.name, x.host);
                c.mtu(&at, &what, x.mtu);
                c.addresses(&at, &what, &x.addresses);
                c.ip(&at, &format!("{what}: local"), x.local);
                for r in &x.remotes {
                    c.ip(&at, &format!("{what}: remote"), *r);
                }
                if x.vni > 0x00FF_FFFF {
                    c.err(&at, format!("{what}: vni {} is larger than 16777215", x.vni));
                }
                if x.port == 0 {
                    c.err(&at, format!("{what}: port 0"));
                }
                if c.sc.hosts.contains_key(&x.host)
                    && !matches!(c.iface(&x.host, &x.dev), Some(k) if k != IfKind::Wireguard)
                {
                    c.err(&at, format!("{what}: underlay dev {:?} is not a link of {}", x.dev, x.host));
                }
            }
        }
    }
    for (host, h) in &sc.hosts {
        check_host(&mut c, host, &h.value);
    }
    if let Some(p) = &sc.path {
        let at = p.referenced;
        c.host_exists(&at, &p.value.source, "path: source");
        c.ip(&at, "path: target", p.value.target.ip());
        for a in [p.value.udp, p.value.http].into_iter().flatten() {
            c.ip(&at, "path", a.ip());
        }
        c.mtu(&at, "path", p.value.mtu);
    }
    for (fault, params) in &sc.faults {
        let at = params.referenced;
        match crate::faults::find(fault) {
            None => {
                let known: Vec<&str> = crate::faults::catalog().iter().map(|f| f.name).collect();
                c.err(&at, format!("faults: unknown fault {fault:?} (known: {})", known.join(", ")));
            }
            Some(spec) => {
                for key in params.value.keys() {
                    if !spec.params.iter().any(|p| p.name == key) {
                        let known: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
                        c.err(
                            &at,
                            format!("faults: {fault} has no parameter {key:?} (parameters: {})", known.join(", ")),
                        );
                    }
                }
            }
        }
    }
    c.errors
}

fn valid_sysctl_key(k: &str) -> bool {
    // Only `net.` sysctls are per network namespace; any other key written inside a lab
    // namespace would change the whole machine.
    k.starts_with("net.")
        && k.len() <= 200
        && !k.contains("..")
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn valid_sysctl_value(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 200
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'.' | b'_' | b':' | b'-'))
}

fn check_host(c: &mut Check<'_>, host: &str, h: &HostSpec) {
    let host_at = c.sc.hosts.get(host).map(|s| s.referenced).unwrap_or(Location::UNKNOWN);
    for (k, v) in &h.sysctls {
        if !valid_sysctl_key(k) {
            c.err(&host_at, format!("host {host}: sysctl {k:?}: only net.* keys (per network namespace) are allowed"));
        }
        if !valid_sysctl_value(&v.0) {
            c.err(&host_at, format!("host {host}: sysctl {k} = {:?}: not a plain value", v.0));
        }
    }
    for r in &h.routes {
        let at = r.referenced;
        let what = format!("host {host}: route to {}", r.value.to);
        match r.value.destination() {
            None => c.err(&at, format!("{what}: `to` must be a prefix or `default`")),
            Some(d) if d.prefix_len() > 0 && !in_lab_ranges(&d) => {
                c.err(&at, format!("{what}: outside the lab ranges ({})", ranges_text()))
            }
            Some(_) => {}
        }
        if let Some(v) = r.value.via {
            c.ip(&at, &what, v);
        }
        if let Some(s) = r.value.src {
            c.ip(&at, &what, s);
        }
        c.mtu(&at, &what, r.value.mtu);
        match &r.value.dev {
            Some(d) if c.iface(host, d).is_none() => {
                c.err(&at, format!("{what}: dev {d:?} is not an interface of {host}"))
            }
            None if r.value.via.is_none() => c.err(&at, format!("{what}: needs `via` or `dev`")),
            _ => {}
        }
    }
    let mut tables = BTreeSet::new();
    for t in &h.nftables {
        let at = t.referenced;
        match t.value.family_and_name() {
            None => c.err(&at, format!("host {host}: nftables table {:?}: write `FAMILY NAME`", t.value.table)),
            Some((family, name)) => {
                if !matches!(family, "ip" | "ip6" | "inet" | "arp" | "bridge" | "netdev") {
                    c.err(&at, format!("host {host}: nftables family {family:?} (ip, ip6, inet, arp, bridge, netdev)"));
                }
                if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    c.err(&at, format!("host {host}: nftables table name {name:?}: letters, digits and '_'"));
                }
                if name.starts_with("nsl_fault") {
                    c.err(&at, format!("host {host}: nftables table names starting with nsl_fault are the faults'"));
                }
                if !tables.insert((family.to_string(), name.to_string())) {
                    c.err(&at, format!("host {host}: nftables table {} defined twice", t.value.table));
                }
            }
        }
        for p in placeholders(&t.value.rules) {
            if c.iface(host, &p) != Some(IfKind::Wireguard) {
                c.err(
                    &at,
                    format!("host {host}: nftables placeholder ${{{p}}} is not a WireGuard interface of {host}"),
                );
            }
        }
    }
    let mut ports: BTreeSet<(&str, u16)> = BTreeSet::new();
    for s in &h.services {
        let at = s.referenced;
        match &s.value {
            Service::Wireguard(w) => check_wireguard(c, host, &at, w),
            Service::Strongswan(s) => {
                for e in crate::strongswan::check(s) {
                    c.err(&at, format!("host {host}: {e}"));
                }
            }
            Service::Dnsmasq(d) => {
                for e in crate::dnsmasq::check_dnsmasq(d) {
                    c.err(&at, format!("host {host}: {e}"));
                }
            }
            Service::Resolv(r) => {
                for e in crate::dnsmasq::check_resolv(r) {
                    c.err(&at, format!("host {host}: {e}"));
                }
            }
            Service::Echo(e) => {
                if e.tcp.is_none() && e.udp.is_none() && e.http.is_none() {
                    c.err(&at, format!("host {host}: echo needs at least one of tcp, udp, http"));
                }
                for (proto, port) in [("tcp", e.tcp), ("udp", e.udp), ("tcp", e.http)] {
                    let Some(port) = port else { continue };
                    if port == 0 || !ports.insert((proto, port)) {
                        c.err(&at, format!("host {host}: echo {proto} port {port} is 0 or used twice"));
                    }
                }
            }
        }
    }
}

fn check_wireguard(c: &mut Check<'_>, host: &str, at: &Location, w: &WireguardSpec) {
    let what = format!("host {host}: wireguard {}", w.name);
    if w.listen_port == 0 {
        c.err(at, format!("{what}: listen_port 0"));
    }
    c.addresses(at, &what, std::slice::from_ref(&w.address));
    c.mtu(at, &what, w.mtu);
    for p in &w.peers {
        let pw = format!("{what}: peer {}", p.host);
        if !c.host_exists(at, &p.host, &pw) {
            continue;
        }
        let theirs: Vec<&str> =
            c.sc.host(&p.host)
                .map(|h| {
                    h.services
                        .iter()
                        .filter_map(|s| match &s.value {
                            Service::Wireguard(x) => Some(x.name.as_str()),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
        match &p.interface {
            Some(i) if !theirs.contains(&i.as_str()) => {
                c.err(at, format!("{pw}: {} has no WireGuard interface {i:?}", p.host))
            }
            None if theirs.len() != 1 => c.err(
                at,
                format!("{pw}: {} has {} WireGuard interfaces; name one with `interface:`", p.host, theirs.len()),
            ),
            _ => {}
        }
        if p.host == host && p.interface.as_deref().unwrap_or(w.name.as_str()) == w.name {
            c.err(at, format!("{pw}: an interface cannot be its own peer"));
        }
        if p.allowed_ips.is_empty() {
            c.err(at, format!("{pw}: allowed_ips is empty"));
        }
        c.addresses(at, &pw, &p.allowed_ips);
        if let Some(e) = &p.endpoint {
            match parse_endpoint(e) {
                Some((ip, _)) => c.ip(at, &pw, ip),
                None => c.err(at, format!("{pw}: endpoint {e:?}: write ADDRESS or ADDRESS:PORT")),
            }
        }
    }
}

/// `ADDRESS` or `ADDRESS:PORT` of a WireGuard endpoint.
pub fn parse_endpoint(s: &str) -> Option<(IpAddr, Option<u16>)> {
    let s = s.trim();
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some((sa.ip(), Some(sa.port())));
    }
    s.parse::<IpAddr>().ok().map(|ip| (ip, None))
}

/// The `${NAME}` placeholders of nftables text.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = rest.get(start + 2..).unwrap_or("");
        match after.find('}') {
            Some(end) => {
                out.push(after.get(..end).unwrap_or("").to_string());
                rest = after.get(end + 1..).unwrap_or("");
            }
            None => {
                out.push(after.to_string());
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_scenarios_are_valid() {
        for name in builtin_names() {
            let s = builtin(name).expect("listed").unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.scenario.name(), name);
            assert!(s.source.starts_with("builtin:"));
        }
        assert!(builtin("no-such").is_none());
    }

    #[test]
    fn destinations_and_endpoints() {
        assert_eq!(parse_destination("default"), "0.0.0.0/0".parse().ok());
        assert_eq!(parse_destination("10.20.1.7/16"), "10.20.0.0/16".parse().ok());
        assert_eq!(parse_destination("10.20.1.7"), "10.20.1.7/32".parse().ok());
        assert_eq!(parse_destination("nope"), None);
        assert_eq!(parse_endpoint("203.0.113.1:51820"), Some(("203.0.113.1".parse().expect("ip"), Some(51820))));
        assert_eq!(parse_endpoint("203.0.113.1"), Some(("203.0.113.1".parse().expect("ip"), None)));
        assert_eq!(parse_endpoint("gw:1"), None);
        assert_eq!(placeholders("oifname ${wg0} x ${y"), ["wg0", "y"]);
        assert!(in_lab_ranges(&"10.1.0.0/16".parse().expect("net")));
        assert!(!in_lab_ranges(&"8.8.8.0/24".parse().expect("net")));
        assert!(!in_lab_ranges(&"172.32.0.0/16".parse().expect("net")));
        assert!(!in_lab_ranges(&"0.0.0.0/0".parse().expect("net")));
    }
}
