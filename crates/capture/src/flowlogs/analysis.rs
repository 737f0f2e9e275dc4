//! Single-pass aggregation of flow-log records (rejects per category, accepted and rejected
//! 5-tuples, NODATA/SKIPDATA) and the findings computed from it once all files are read.

use std::collections::BTreeMap;

use netsleuth_model::{Confidence, Evidence, Finding, Location};
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::parse::{word_at, Action, Addr, Direction, LogStatus, Record};
use super::rules;
use super::table::{prefetch, FlowTable, Merge};

/// The ports that mean VPN traffic when rejected: IKE, IPsec NAT-T, WireGuard.
pub const VPN_PORTS: &[u16] = &[500, 4500, 51820];
/// VXLAN: IANA 4789 (Calico, Cilium, AWS), Linux default 8472 (Flannel).
pub const VXLAN_PORTS: &[u16] = &[4789, 8472];

const TCP: u8 = 6;
const UDP: u8 = 17;
const ESP: u8 = 50;

/// The services whose rejected traffic gets its own finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Vpn,
    Esp,
    Vxlan,
    Dns,
    Bgp,
}

impl Category {
    pub const ALL: [Category; 5] = [Category::Vpn, Category::Esp, Category::Vxlan, Category::Dns, Category::Bgp];

    pub fn rule(self) -> &'static str {
        match self {
            Category::Vpn => rules::FLOW_VPN,
            Category::Esp => rules::FLOW_ESP,
            Category::Vxlan => rules::FLOW_VXLAN,
            Category::Dns => rules::FLOW_DNS,
            Category::Bgp => rules::FLOW_BGP,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Vpn => "vpn",
            Category::Esp => "esp",
            Category::Vxlan => "vxlan",
            Category::Dns => "dns",
            Category::Bgp => "bgp",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Classifies one flow. When both ports name a service (a DNS reply from 53 to ephemeral
/// port 51820), the lower port wins: services listen on the lower port far more often.
pub fn classify(protocol: u8, src_port: u16, dst_port: u16, vpn_ports: &[u16]) -> Option<Category> {
    if protocol == ESP {
        return Some(Category::Esp);
    }
    let by_port = |port: u16| -> Option<Category> {
        match protocol {
            UDP if vpn_ports.contains(&port) => Some(Category::Vpn),
            UDP if VXLAN_PORTS.contains(&port) => Some(Category::Vxlan),
            UDP | TCP if port == 53 => Some(Category::Dns),
            TCP if port == 179 => Some(Category::Bgp),
            _ => None,
        }
    };
    match (by_port(src_port), by_port(dst_port)) {
        (Some(s), Some(d)) => Some(if src_port < dst_port { s } else { d }),
        (s, d) => d.or(s),
    }
}

/// A protocol number as a name where one is common.
pub fn protocol_name(p: u8) -> String {
    match p {
        1 => "icmp".to_string(),
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        47 => "gre".to_string(),
        50 => "esp".to_string(),
        58 => "icmpv6".to_string(),
        132 => "sctp".to_string(),
        other => format!("proto-{other}"),
    }
}

/// A 5-tuple. Ports are 0 for protocols without ports (ICMP, ESP), as AWS writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub src: Addr,
    pub dst: Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
}

impl FlowKey {
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            protocol: self.protocol,
        }
    }
}

/// Where a record was read, packed in 64 bits: file index (16 bits, at most 65536 files)
/// and 1-based line (48 bits); ordering is file order, then line order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct At(u64);

impl At {
    pub const MAX_FILES: usize = 1 << 16;

    pub fn new(file: u32, line: u64) -> At {
        At((u64::from(file) << 48) | (line & ((1 << 48) - 1)))
    }

    pub fn file(self) -> usize {
        (self.0 >> 48) as usize
    }

    pub fn line(self) -> u64 {
        self.0 & ((1 << 48) - 1)
    }
}

const NO_IFACE: u32 = u32::MAX;

/// What is kept per accepted 5-tuple: the time span and the first record.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// Unix seconds (saturated to u32: good until 2106).
    start: u32,
    end: u32,
    at: At,
    iface: u32,
    direction: Option<Direction>,
}

impl Merge for Seen {
    #[inline]
    fn merge(&mut self, later: &Seen) {
        self.start = self.start.min(later.start);
        self.end = self.end.max(later.end);
    }
}

/// What is kept per rejected 5-tuple.
#[derive(Debug, Clone, Copy)]
struct Rejected {
    records: u64,
    packets: u64,
    bytes: u64,
    /// Records without a packet or byte count (`-` or no column): totals are lower bounds.
    no_volume: u64,
    start: u32,
    end: u32,
    at: At,
    iface: u32,
    direction: Option<Direction>,
}

impl Merge for Rejected {
    #[inline]
    fn merge(&mut self, later: &Rejected) {
        self.records += later.records;
        self.packets = self.packets.saturating_add(later.packets);
        self.bytes = self.bytes.saturating_add(later.bytes);
        self.no_volume += later.no_volume;
        self.start = self.start.min(later.start);
        self.end = self.end.max(later.end);
    }
}

/// Per-category totals, exact even when the flow maps hit their limit.
#[derive(Debug, Clone, Default)]
struct CategoryStats {
    records: u64,
    packets: u64,
    bytes: u64,
    first: Option<(At, String)>,
}

/// NODATA/SKIPDATA per interface.
#[derive(Debug, Clone, Copy)]
struct StatusStats {
    records: u64,
    first: At,
}

/// Analysis settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// UDP ports that count as VPN traffic (the defaults plus `--vpn-port`).
    pub vpn_ports: Vec<u16>,
    /// The most distinct 5-tuples kept per map (accepted, rejected); beyond it records are
    /// still counted but not matched, and a finding says so.
    pub max_flows: usize,
    /// How far apart (seconds) an accepted flow and its rejected reverse may be and still
    /// count as one conversation: the longest aggregation interval is 600 s.
    pub window_slack: u64,
    /// Rows in the top rejected tables.
    pub top: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { vpn_ports: VPN_PORTS.to_vec(), max_flows: 4_000_000, window_slack: 600, top: 10 }
    }
}

/// One row of the top rejected table: traffic aggregated by source, destination,
/// destination port and protocol (source ports are ephemeral, so retries would split).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedFlow {
    pub src: String,
    pub dst: String,
    pub dst_port: u16,
    pub protocol: String,
    pub records: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Distinct source ports seen (retries of one connection use new ports).
    pub src_ports: u64,
    /// True when some records had no packet/byte count, so the totals are lower bounds.
    pub partial_volume: bool,
    pub interface: Option<String>,
    pub direction: Option<&'static str>,
    /// `file:line` of the first record.
    pub first: String,
}

/// One rejected flow whose reverse was accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AsymmetricFlow {
    /// The accepted direction: `client:port -> server:port`.
    pub accepted: String,
    /// The rejected reverse.
    pub rejected: String,
    pub protocol: String,
    pub rejected_records: u64,
    pub rejected_packets: u64,
    pub accepted_at: String,
    pub rejected_at: String,
    pub rejected_interface: Option<String>,
    pub rejected_direction: Option<&'static str>,
}

/// Totals over all files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub records: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub rejected_packets: u64,
    pub rejected_bytes: u64,
    pub nodata: u64,
    pub skipdata: u64,
    /// OK records lacking a value the analyses need (address, port, protocol, action).
    pub incomplete: u64,
    pub malformed: u64,
    /// Records counted but not kept for matching because the flow maps were full.
    pub untracked: u64,
}

/// Per-category summary for the JSON output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategorySummary {
    pub category: Category,
    pub rule: &'static str,
    pub records: u64,
    pub packets: u64,
    pub bytes: u64,
    pub pairs: u64,
}

/// What the findings are computed from, computed once after the last file.
#[derive(Debug)]
pub struct Results {
    pub categories: Vec<CategorySummary>,
    pub top_by_bytes: Vec<RejectedFlow>,
    pub top_by_packets: Vec<RejectedFlow>,
    pairs: Vec<(FlowKey, Rejected, Seen)>,
    tallies: [CategoryTally; 5],
}

/// One category's rejected flows grouped by source, destination, protocol and service port.
#[derive(Debug, Default)]
struct CategoryTally {
    /// Most records first.
    groups: Vec<CategoryGroup>,
    /// Distinct source/destination pairs.
    pairs: u64,
}

#[derive(Debug, Clone, Copy)]
struct CategoryGroup {
    src: Addr,
    dst: Addr,
    protocol: u8,
    /// The service port (0 for ESP).
    port: u16,
    records: u64,
    packets: u64,
    bytes: u64,
    /// The group's first record, and the flow it belongs to.
    first: At,
    first_flow: FlowKey,
}

/// A categorised rejected flow, copied out of the table under its group key.
#[derive(Debug, Clone, Copy)]
struct Tagged<K> {
    key: K,
    records: u64,
    packets: u64,
    bytes: u64,
    at: At,
    /// Source and destination port of the flow.
    ports: (u16, u16),
}

impl<K> Tagged<K> {
    fn new(key: K, flow: &FlowKey, r: &Rejected) -> Self {
        Tagged {
            key,
            records: r.records,
            packets: r.packets,
            bytes: r.bytes,
            at: r.at,
            ports: (flow.src_port, flow.dst_port),
        }
    }
}

/// Category, source, destination, protocol and service port of a flow not both IPv4.
type WideGroup = (u8, Addr, Addr, u8, u16);

/// A group key that sorts by category, then source and destination, then the rest.
trait GroupKey: Ord + Copy {
    fn group(self) -> WideGroup;
}

impl GroupKey for WideGroup {
    fn group(self) -> WideGroup {
        self
    }
}

/// IPv4: category (bits 88-90), source, destination, protocol, service port in one integer.
impl GroupKey for u128 {
    fn group(self) -> WideGroup {
        (
            (self >> 88) as u8,
            Addr::v4((self >> 56) as u32),
            Addr::v4((self >> 24) as u32),
            (self >> 16) as u8,
            self as u16,
        )
    }
}

/// Sorts `flows` by group and adds each run (a group) and each distinct source/destination
/// pair to its category.
fn tally<K: GroupKey>(mut flows: Vec<Tagged<K>>, tallies: &mut [CategoryTally; 5]) {
    flows.sort_unstable_by_key(|t| t.key);
    let mut last_pair = None;
    for run in flows.chunk_by(|a, b| a.key == b.key) {
        let (cat, src, dst, protocol, port) = run[0].key.group();
        let Some(t) = tallies.get_mut(usize::from(cat)) else { continue };
        if last_pair != Some((cat, src, dst)) {
            t.pairs += 1;
            last_pair = Some((cat, src, dst));
        }
        let mut g = CategoryGroup {
            src,
            dst,
            protocol,
            port,
            records: 0,
            packets: 0,
            bytes: 0,
            first: run[0].at,
            first_flow: FlowKey { src, dst, src_port: run[0].ports.0, dst_port: run[0].ports.1, protocol },
        };
        for f in run {
            g.records += f.records;
            g.packets = g.packets.saturating_add(f.packets);
            g.bytes = g.bytes.saturating_add(f.bytes);
            if f.at < g.first {
                g.first = f.at;
                g.first_flow.src_port = f.ports.0;
                g.first_flow.dst_port = f.ports.1;
            }
        }
        t.groups.push(g);
    }
}

/// Interface ids as small numbers, so flow entries stay small.
#[derive(Debug, Default)]
struct Interner {
    names: Vec<String>,
    /// The exact bytes of each id (`names` are lossy UTF-8).
    ids: FxHashMap<Box<[u8]>, u32>,
    /// Direct-mapped cache: slot (by the id's last bytes, where interface ids differ) to the
    /// id's bytes and number. A log interleaves the records of a few dozen interfaces, and
    /// every record is interned, so most lookups end here, comparing four words and
    /// without hashing the whole id.
    cache: Vec<(IdKey, u32)>,
}

const INTERN_CACHE: usize = 1024;

/// How many flows ahead `top_rejected` prefetches the entry it will read.
const TOP_PREFETCH: usize = 16;

/// An id of 8 to 24 bytes as its length and three words that cover it (overlapping when
/// it is shorter than 24 bytes): equal keys are equal ids. Interface ids are 12 or 21.
type IdKey = [u64; 4];

#[inline(always)]
fn id_key(id: &[u8]) -> Option<IdKey> {
    let n = id.len();
    if !(8..=24).contains(&n) {
        return None;
    }
    let word = |at: usize| word_at(id, at);
    Some([n as u64, word(0)?, word(n.saturating_sub(16))?, word(n - 8)?])
}

impl Interner {
    #[inline]
    fn intern(&mut self, id: Option<&[u8]>) -> u32 {
        let Some(id) = id else { return NO_IFACE };
        let Some(key) = id_key(id) else { return self.lookup(id) };
        let p = u128::from(key[3] ^ key[0]) * 0x9e37_79b9_7f4a_7c15;
        let slot = ((p as u64) ^ ((p >> 64) as u64)) as usize % INTERN_CACHE;
        if let Some((cached, n)) = self.cache.get(slot) {
            // Word by word, in registers: comparing the arrays as memory stored the key to
            // the stack and loaded it back in halves, a store-forwarding stall per record.
            let differ = (cached[0] ^ key[0]) | (cached[1] ^ key[1]) | (cached[2] ^ key[2]) | (cached[3] ^ key[3]);
            if differ == 0 {
                return *n;
            }
        }
        let n = self.lookup(id);
        if self.cache.is_empty() {
            // Length 0 never matches a key.
            self.cache = vec![([0; 4], NO_IFACE); INTERN_CACHE];
        }
        self.cache[slot] = (key, n);
        n
    }

    fn lookup(&mut self, id: &[u8]) -> u32 {
        match self.ids.get(id) {
            Some(&n) => n,
            None => {
                let n = u32::try_from(self.names.len()).unwrap_or(NO_IFACE);
                self.names.push(String::from_utf8_lossy(id).into_owned());
                self.ids.insert(id.into(), n);
                n
            }
        }
    }
}

/// The aggregation state; `files` names the inputs by index for evidence.
#[derive(Debug, Default)]
pub struct Aggregator {
    pub settings: Settings,
    pub files: Vec<String>,
    pub totals: Totals,
    /// Whether any analysed record lacked start/end (then asymmetry is matched on the tuple only).
    no_times: bool,
    interner: Interner,
    accepted: FlowTable<Seen>,
    rejected: FlowTable<Rejected>,
    categories: [CategoryStats; 5],
    nodata: BTreeMap<u32, StatusStats>,
    skipdata: BTreeMap<u32, StatusStats>,
    first_nodata: Option<(At, String)>,
    first_skipdata: Option<(At, String)>,
}

impl Aggregator {
    pub fn new(settings: Settings) -> Aggregator {
        Aggregator { settings, ..Aggregator::default() }
    }

    fn iface_name(&self, n: u32) -> Option<String> {
        self.interner.names.get(n as usize).cloned()
    }

    /// Adds one parsed record read at `at`; `line` is its text (kept for first evidence).
    #[inline]
    pub fn record(&mut self, rec: &Record<'_>, at: At, line: &[u8]) {
        self.totals.records += 1;
        match rec.log_status {
            Some(LogStatus::NoData) => {
                self.totals.nodata += 1;
                let iface = self.interner.intern(rec.interface_id);
                self.nodata.entry(iface).or_insert(StatusStats { records: 0, first: at }).records += 1;
                if self.first_nodata.is_none() {
                    self.first_nodata = Some((at, excerpt(line)));
                }
                return;
            }
            Some(LogStatus::SkipData) => {
                self.totals.skipdata += 1;
                let iface = self.interner.intern(rec.interface_id);
                self.skipdata.entry(iface).or_insert(StatusStats { records: 0, first: at }).records += 1;
                if self.first_skipdata.is_none() {
                    self.first_skipdata = Some((at, excerpt(line)));
                }
                return;
            }
            Some(LogStatus::Ok) | None => {}
        }
        let (Some(src), Some(dst), Some(protocol), Some(action)) = (rec.src, rec.dst, rec.protocol, rec.action) else {
            self.totals.incomplete += 1;
            return;
        };
        // Ports are meaningful for TCP, UDP and SCTP only; elsewhere AWS writes 0 and an
        // absent value is the same thing.
        let has_ports = matches!(protocol, 6 | 17 | 132);
        let (src_port, dst_port) = match (rec.src_port, rec.dst_port) {
            (Some(s), Some(d)) => (s, d),
            _ if !has_ports => (0, 0),
            _ => {
                self.totals.incomplete += 1;
                return;
            }
        };
        let key = FlowKey { src, dst, src_port, dst_port, protocol };
        let secs = |t: u64| u32::try_from(t).unwrap_or(u32::MAX);
        let (start, end) = match (rec.start, rec.end) {
            (Some(s), Some(e)) => (secs(s.min(e)), secs(s.max(e))),
            (Some(t), None) | (None, Some(t)) => (secs(t), secs(t)),
            (None, None) => {
                self.no_times = true;
                (0, u32::MAX)
            }
        };
        let direction = rec.direction;
        let max = self.settings.max_flows;
        match action {
            Action::Accept => {
                self.totals.accepted += 1;
                let seen = Seen { start, end, at, iface: self.interner.intern(rec.interface_id), direction };
                self.accepted.add(key, max, seen);
            }
            Action::Reject => {
                self.totals.rejected += 1;
                let (packets, bytes) = (rec.packets.unwrap_or(0), rec.bytes.unwrap_or(0));
                let no_volume = u64::from(rec.packets.is_none() || rec.bytes.is_none());
                self.totals.rejected_packets = self.totals.rejected_packets.saturating_add(packets);
                self.totals.rejected_bytes = self.totals.rejected_bytes.saturating_add(bytes);
                if let Some(cat) = classify(protocol, src_port, dst_port, &self.settings.vpn_ports) {
                    let c = &mut self.categories[cat.index()];
                    c.records += 1;
                    c.packets = c.packets.saturating_add(packets);
                    c.bytes = c.bytes.saturating_add(bytes);
                    if c.first.is_none() {
                        c.first = Some((at, excerpt(line)));
                    }
                }
                let rejected = Rejected {
                    records: 1,
                    packets,
                    bytes,
                    no_volume,
                    start,
                    end,
                    at,
                    iface: self.interner.intern(rec.interface_id),
                    direction,
                };
                self.rejected.add(key, max, rejected);
            }
        }
    }

    fn location(&self, at: At) -> Location {
        let path = self.files.get(at.file()).cloned().unwrap_or_default();
        match u32::try_from(at.line()) {
            Ok(line) => Location::line(path, line),
            Err(_) => Location::file(path),
        }
    }

    fn at_string(&self, at: At) -> String {
        format!("{}:{}", self.files.get(at.file()).map(String::as_str).unwrap_or("?"), at.line())
    }

    fn describe_rejected(&self, key: &FlowKey, r: &Rejected) -> String {
        let mut s = format!(
            "REJECT {} {} -> {}",
            protocol_name(key.protocol),
            endpoint(key.src, key.src_port, key.protocol),
            endpoint(key.dst, key.dst_port, key.protocol)
        );
        if let Some(i) = self.iface_name(r.iface) {
            s.push_str(&format!(" on {i}"));
        }
        if let Some(d) = r.direction {
            s.push_str(&format!(" ({})", d.as_str()));
        }
        s.push_str(&format!(", {} record(s), {} packet(s), {} byte(s)", r.records, r.packets, r.bytes));
        s
    }

    /// The categorised rejected flows grouped by source, destination, protocol and service
    /// port, with each category's distinct source/destination pairs: one classification per
    /// flow, shared by the summaries and the findings. Flows are copied out of the table in
    /// memory order and sorted, so groups and pairs are runs: hash maps of 40-byte keys, one
    /// per category and rebuilt for the summaries and again for the findings, took a tenth
    /// of the run with hundreds of thousands of rejected flows.
    fn category_tallies(&self) -> [CategoryTally; 5] {
        let vpn_ports = &self.settings.vpn_ports;
        let mut v4: Vec<Tagged<u128>> = Vec::new();
        let mut other: Vec<Tagged<WideGroup>> = Vec::new();
        for (k, r) in self.rejected.iter() {
            let Some(cat) = classify(k.protocol, k.src_port, k.dst_port, vpn_ports) else { continue };
            let port = if cat == Category::Esp { 0 } else { service_port(&k, cat, vpn_ports) };
            match (k.src.as_v4(), k.dst.as_v4()) {
                (Some(src), Some(dst)) => v4.push(Tagged::new(
                    (cat.index() as u128) << 88
                        | u128::from(src) << 56
                        | u128::from(dst) << 24
                        | u128::from(k.protocol) << 16
                        | u128::from(port),
                    &k,
                    r,
                )),
                _ => other.push(Tagged::new((cat.index() as u8, k.src, k.dst, k.protocol, port), &k, r)),
            }
        }
        let mut tallies: [CategoryTally; 5] = Default::default();
        tally(v4, &mut tallies);
        tally(other, &mut tallies);
        for t in &mut tallies {
            // Most records first; ties by first record, which no two groups share.
            t.groups.sort_unstable_by(|a, b| b.records.cmp(&a.records).then(a.first.cmp(&b.first)));
        }
        tallies
    }

    /// Per-category summaries (distinct src/dst pairs among the rejected flows).
    fn category_summaries(&self, tallies: &[CategoryTally; 5]) -> Vec<CategorySummary> {
        Category::ALL
            .iter()
            .map(|&c| {
                let s = &self.categories[c.index()];
                CategorySummary {
                    category: c,
                    rule: c.rule(),
                    records: s.records,
                    packets: s.packets,
                    bytes: s.bytes,
                    pairs: tallies[c.index()].pairs,
                }
            })
            .collect()
    }

    /// The top rejected flows, by bytes and by packets.
    pub fn top_rejected(&self) -> (Vec<RejectedFlow>, Vec<RejectedFlow>) {
        type Group = (Addr, Addr, u16, u8);
        #[derive(Debug, Clone, Copy, Default)]
        struct Agg {
            records: u64,
            packets: u64,
            bytes: u64,
            no_volume: u64,
            src_ports: u64,
            first: Option<(At, u32, Option<Direction>)>,
        }
        fn add(g: &mut Agg, r: &Rejected) {
            g.records += r.records;
            g.packets = g.packets.saturating_add(r.packets);
            g.bytes = g.bytes.saturating_add(r.bytes);
            g.no_volume += r.no_volume;
            g.src_ports += 1;
            if g.first.is_none_or(|(at, _, _)| r.at < at) {
                g.first = Some((r.at, r.iface, r.direction));
            }
        }
        // A total order (ties broken by the first occurrence, then the group) so the output is
        // the same on every run; only the top rows are kept while the groups stream by.
        let top = self.settings.top;
        let mut by_bytes = TopN::new(top);
        let mut by_packets = TopN::new(top);
        let mut offer = |group: Group, g: Agg| {
            let first = g.first.map(|f| f.0);
            by_bytes.offer((std::cmp::Reverse((g.bytes, g.packets)), first, group), (group, g));
            by_packets.offer((std::cmp::Reverse((g.packets, g.bytes)), first, group), (group, g));
        };
        // IPv4 groups are packed into one integer and sorted, so a group's flows are adjacent:
        // a hash map of hundreds of thousands of 48-byte keys cost more (memory and page
        // faults) than the rest of the analysis after reading.
        let mut v4: Vec<(u128, &Rejected)> = Vec::with_capacity(self.rejected.len());
        let mut v6: FxHashMap<Group, Agg> = FxHashMap::default();
        for (k, r) in self.rejected.iter() {
            match (k.src.as_v4(), k.dst.as_v4()) {
                (Some(s), Some(d)) => v4.push((
                    (u128::from(s) << 96)
                        | (u128::from(d) << 64)
                        | (u128::from(k.dst_port) << 8)
                        | u128::from(k.protocol),
                    r,
                )),
                _ => add(v6.entry((k.src, k.dst, k.dst_port, k.protocol)).or_default(), r),
            }
        }
        v4.sort_unstable_by_key(|(g, _)| *g);
        // In key order the flows' entries are read all over the table: a cache miss each,
        // more than half of this function's time until they were prefetched.
        let mut ahead = v4.iter().skip(TOP_PREFETCH).map(|(_, r)| *r);
        for run in v4.chunk_by(|a, b| a.0 == b.0) {
            let mut g = Agg::default();
            for (_, r) in run {
                if let Some(later) = ahead.next() {
                    prefetch(later);
                }
                add(&mut g, r);
            }
            let p = run[0].0;
            offer((Addr::v4((p >> 96) as u32), Addr::v4((p >> 64) as u32), (p >> 8) as u16, p as u8), g);
        }
        for (group, g) in v6 {
            offer(group, g);
        }
        let to_row = |((src, dst, port, proto), g): (Group, Agg)| {
            let (at, iface, direction) = g.first.unwrap_or((At::new(0, 0), NO_IFACE, None));
            RejectedFlow {
                src: src.to_string(),
                dst: dst.to_string(),
                dst_port: port,
                protocol: protocol_name(proto),
                records: g.records,
                packets: g.packets,
                bytes: g.bytes,
                src_ports: g.src_ports,
                partial_volume: g.no_volume > 0,
                interface: self.iface_name(iface),
                direction: direction.map(Direction::as_str),
                first: self.at_string(at),
            }
        };
        (
            by_bytes.into_sorted().into_iter().map(to_row).collect(),
            by_packets.into_sorted().into_iter().map(to_row).collect(),
        )
    }

    /// Rejected flows whose reverse was accepted within the time window, in file order.
    fn asymmetric_pairs(&self) -> Vec<(FlowKey, Rejected, Seen)> {
        let slack = self.settings.window_slack;
        let mut out: Vec<(FlowKey, Rejected, Seen)> = Vec::new();
        self.accepted.lookup_each(self.rejected.iter().map(|(k, r)| (k.reversed(), r)), |reverse, r, a| {
            let overlaps = u64::from(r.start) <= u64::from(a.end).saturating_add(slack)
                && u64::from(a.start) <= u64::from(r.end).saturating_add(slack);
            if overlaps {
                out.push((reverse.reversed(), *r, *a));
            }
        });
        out.sort_by_key(|(k, r, _)| (r.at, *k));
        out
    }

    /// Applies the records still waiting in the flow tables and counts the untracked ones;
    /// `limit_reached`, the totals and the tables are final after it.
    pub fn settle(&mut self) {
        self.accepted.flush();
        self.rejected.flush();
        self.totals.untracked = self.accepted.untracked() + self.rejected.untracked();
    }

    /// Computes the tables once (each walks the flow maps, after the records still waiting
    /// in them are applied).
    pub fn results(&mut self) -> Results {
        self.settle();
        let (top_by_bytes, top_by_packets) = self.top_rejected();
        let tallies = self.category_tallies();
        Results {
            categories: self.category_summaries(&tallies),
            top_by_bytes,
            top_by_packets,
            pairs: self.asymmetric_pairs(),
            tallies,
        }
    }

    pub fn asymmetric(&self, results: &Results) -> Vec<AsymmetricFlow> {
        results
            .pairs
            .iter()
            .copied()
            .map(|(k, r, a)| AsymmetricFlow {
                accepted: format!(
                    "{} -> {}",
                    endpoint(k.dst, k.dst_port, k.protocol),
                    endpoint(k.src, k.src_port, k.protocol)
                ),
                rejected: format!(
                    "{} -> {}",
                    endpoint(k.src, k.src_port, k.protocol),
                    endpoint(k.dst, k.dst_port, k.protocol)
                ),
                protocol: protocol_name(k.protocol),
                rejected_records: r.records,
                rejected_packets: r.packets,
                accepted_at: self.at_string(a.at),
                rejected_at: self.at_string(r.at),
                rejected_interface: self.iface_name(r.iface),
                rejected_direction: r.direction.map(Direction::as_str),
            })
            .collect()
    }

    /// The findings of everything aggregated (file problems are added by the reader).
    pub fn findings(&self, results: &Results) -> Vec<Finding> {
        let mut out = Vec::new();
        self.category_findings(results, &mut out);
        self.asymmetric_findings(results, &mut out);
        self.status_findings(&mut out);
        self.summary_finding(results, &mut out);
        out
    }

    fn category_findings(&self, results: &Results, out: &mut Vec<Finding>) {
        for cat in Category::ALL {
            let stats = &self.categories[cat.index()];
            let Some((first_at, first_line)) = &stats.first else { continue };
            let Some(rule) = super::rule(cat.rule()) else { continue };
            let tally = &results.tallies[cat.index()];
            let distinct = tally.pairs;
            let top = &tally.groups;
            let mut evidence = vec![Evidence::new(self.location(*first_at), first_line.clone())];
            let mut lines = Vec::new();
            for g in top.iter().take(5) {
                let (src, dst, records, packets, bytes, at) = (g.src, g.dst, g.records, g.packets, g.bytes, g.first);
                let port = if cat == Category::Esp { String::new() } else { format!(" port {}", g.port) };
                lines.push(format!(
                    "{src} -> {dst} {}{port}: {records} record(s), {packets} packet(s), {bytes} byte(s), first at {}",
                    protocol_name(g.protocol),
                    self.at_string(at)
                ));
                if at != *first_at && evidence.len() < 4 {
                    evidence.push(Evidence::new(self.location(at), format!("first record of {src} -> {dst}{port}")));
                }
            }
            let (fix_src, fix_dst, fix_key) = match top.first() {
                Some(g) => (g.src.to_string(), g.dst.to_string(), Some(g.first_flow)),
                None => (String::new(), String::new(), None),
            };
            let fix = match fix_key {
                Some(k) => format!(
                    "{} For the largest pair: allow {}{} from {fix_src} to {fix_dst}{}.",
                    rule.fix,
                    protocol_name(k.protocol),
                    if cat == Category::Esp {
                        String::new()
                    } else {
                        format!(" port {}", service_port(&k, cat, &self.settings.vpn_ports))
                    },
                    self.rejecting_side(&k)
                ),
                None => rule.fix.to_string(),
            };
            let more =
                if top.len() > 5 { format!("\n  ... and {} more flow group(s)", top.len() - 5) } else { String::new() };
            out.push(Finding {
                rule: rule.id.to_string(),
                severity: rule.severity,
                layer: rule.layer,
                subject: format!("flowlogs/reject/{}", cat.as_str()),
                title: rule.title.to_string(),
                detail: format!(
                    "{} rejected record(s), {} packet(s), {} byte(s) between {} distinct source/destination pair(s){}:\n  {}{more}",
                    stats.records,
                    stats.packets,
                    stats.bytes,
                    distinct,
                    self.limit_note(),
                    lines.join("\n  ")
                ),
                evidence,
                fix,
                confidence: Confidence::Confirmed,
            });
        }
    }

    /// Names the interface (and direction) that rejected a flow, for fix texts.
    fn rejecting_side(&self, key: &FlowKey) -> String {
        let Some(r) = self.rejected.get(key) else { return String::new() };
        match (self.iface_name(r.iface), r.direction) {
            (Some(i), Some(d)) => format!(" in the security group and network ACL of {i} ({d} rule)", d = d.as_str()),
            (Some(i), None) => format!(" in the security group and network ACL of {i}"),
            _ => String::new(),
        }
    }

    fn asymmetric_findings(&self, results: &Results, out: &mut Vec<Finding>) {
        let Some(rule) = super::rule(rules::FLOW_ASYMMETRIC) else { return };
        let pairs = &results.pairs;
        let mut by_iface: BTreeMap<u32, Vec<&(FlowKey, Rejected, Seen)>> = BTreeMap::new();
        for p in pairs {
            by_iface.entry(p.1.iface).or_default().push(p);
        }
        for (iface, list) in by_iface {
            let name = self.iface_name(iface);
            let Some(&&(k0, r0, a0)) = list.first() else { continue };
            let mut evidence = vec![
                Evidence::new(self.location(r0.at), self.describe_rejected(&k0, &r0)),
                Evidence::new(
                    self.location(a0.at),
                    format!(
                        "ACCEPT {} {} -> {} (the request{}{})",
                        protocol_name(k0.protocol),
                        endpoint(k0.dst, k0.dst_port, k0.protocol),
                        endpoint(k0.src, k0.src_port, k0.protocol),
                        self.iface_name(a0.iface).map(|i| format!(" on {i}")).unwrap_or_default(),
                        a0.direction.map(|d| format!(", {}", d.as_str())).unwrap_or_default()
                    ),
                ),
            ];
            for (k, r, _) in list.iter().skip(1).take(3) {
                evidence.push(Evidence::new(self.location(r.at), self.describe_rejected(k, r)));
            }
            let examples: Vec<String> = list
                .iter()
                .take(5)
                .map(|(k, r, a)| {
                    format!(
                        "{} {} -> {} accepted ({}), reply rejected {} time(s) ({})",
                        protocol_name(k.protocol),
                        endpoint(k.dst, k.dst_port, k.protocol),
                        endpoint(k.src, k.src_port, k.protocol),
                        self.at_string(a.at),
                        r.records,
                        self.at_string(r.at)
                    )
                })
                .collect();
            let directions: Vec<Direction> = list.iter().filter_map(|p| p.1.direction).collect();
            let where_ = match (&name, directions.first()) {
                (Some(i), Some(Direction::Egress)) => format!(
                    "The replies are rejected leaving {i} (flow-direction egress): the outbound rules of the network ACL of {i}'s subnet lack the return traffic."
                ),
                (Some(i), Some(Direction::Ingress)) => format!(
                    "The replies are rejected arriving at {i} (flow-direction ingress): the inbound rules of the network ACL of {i}'s subnet lack the return traffic."
                ),
                (Some(i), None) => format!(
                    "The replies are rejected at {i}: check the network ACL of its subnet (outbound if {i} sent the reply, inbound if it received it; a custom format with `flow-direction` tells which)."
                ),
                (None, _) => "The records carry no interface-id; check the network ACLs of both subnets.".to_string(),
            };
            let time_note = if self.no_times {
                " Some records have no start/end times, so flows were matched on the 5-tuple alone."
            } else {
                ""
            };
            let (client, reply_ports) = (
                k0.dst,
                if k0.protocol == TCP || k0.protocol == UDP {
                    format!(" ports {}", k0.dst_port_range())
                } else {
                    String::new()
                },
            );
            out.push(Finding {
                rule: rule.id.to_string(),
                severity: rule.severity,
                layer: rule.layer,
                subject: match &name {
                    Some(i) => format!("aws/eni/{i}"),
                    None => "flowlogs/asymmetric".to_string(),
                },
                title: rule.title.to_string(),
                detail: format!(
                    "{} flow(s) accepted in one direction have their reverse (same protocol, swapped addresses and ports, overlapping time) rejected. Security groups are stateful and admit replies, so a network ACL rejects them. {where_}{time_note}{}\n  {}",
                    list.len(),
                    self.limit_note(),
                    examples.join("\n  ")
                ),
                evidence,
                fix: format!(
                    "{} Here: allow {} to {client}{reply_ports}{}.",
                    rule.fix,
                    protocol_name(k0.protocol),
                    name.map(|i| format!(" in the network ACL of the subnet of {i}")).unwrap_or_default()
                ),
                confidence: Confidence::Likely,
            });
        }
    }

    fn status_findings(&self, out: &mut Vec<Finding>) {
        let list = |map: &BTreeMap<u32, StatusStats>| -> String {
            let mut v: Vec<(&u32, &StatusStats)> = map.iter().collect();
            v.sort_by(|a, b| b.1.records.cmp(&a.1.records).then(a.1.first.cmp(&b.1.first)));
            let mut parts: Vec<String> = v
                .iter()
                .take(10)
                .map(|(i, s)| {
                    format!(
                        "{}: {} (first {})",
                        self.iface_name(**i).unwrap_or_else(|| "(no interface-id)".to_string()),
                        s.records,
                        self.at_string(s.first)
                    )
                })
                .collect();
            if v.len() > 10 {
                parts.push(format!("... and {} more interface(s)", v.len() - 10));
            }
            parts.join("; ")
        };
        if let (Some((at, line)), Some(rule)) = (&self.first_skipdata, super::rule(rules::FLOW_SKIPDATA)) {
            out.push(Finding {
                rule: rule.id.to_string(),
                severity: rule.severity,
                layer: rule.layer,
                subject: "flowlogs/skipdata".to_string(),
                title: rule.title.to_string(),
                detail: format!(
                    "{} SKIPDATA record(s): flows in those windows were not recorded, so counts there are lower bounds. Per interface: {}",
                    self.totals.skipdata,
                    list(&self.skipdata)
                ),
                evidence: vec![Evidence::new(self.location(*at), line.clone())],
                fix: rule.fix.to_string(),
                confidence: Confidence::Confirmed,
            });
        }
        if let (Some((at, line)), Some(rule)) = (&self.first_nodata, super::rule(rules::FLOW_NODATA)) {
            out.push(Finding {
                rule: rule.id.to_string(),
                severity: rule.severity,
                layer: rule.layer,
                subject: "flowlogs/nodata".to_string(),
                title: rule.title.to_string(),
                detail: format!("{} NODATA record(s). Per interface: {}", self.totals.nodata, list(&self.nodata)),
                evidence: vec![Evidence::new(self.location(*at), line.clone())],
                fix: rule.fix.to_string(),
                confidence: Confidence::Confirmed,
            });
        }
    }

    fn summary_finding(&self, results: &Results, out: &mut Vec<Finding>) {
        let Some(rule) = super::rule(rules::FLOW_REJECTS) else { return };
        if self.totals.rejected == 0 {
            return;
        }
        let by_bytes = &results.top_by_bytes;
        let rows: Vec<String> = by_bytes
            .iter()
            .take(5)
            .map(|r| {
                format!(
                    "{} -> {} {}/{}: {} record(s), {} packet(s), {} byte(s){} (first {})",
                    r.src,
                    r.dst,
                    r.protocol,
                    r.dst_port,
                    r.records,
                    r.packets,
                    r.bytes,
                    if r.partial_volume { " or more" } else { "" },
                    r.first
                )
            })
            .collect();
        // The largest rejected 5-tuples as evidence, kept while the flows stream by.
        let mut largest = TopN::new(3);
        for (k, r) in self.rejected.iter() {
            largest.offer((std::cmp::Reverse(r.bytes), r.at), (k, r));
        }
        let firsts = largest.into_sorted();
        let evidence =
            firsts.iter().map(|(k, r)| Evidence::new(self.location(r.at), self.describe_rejected(k, r))).collect();
        out.push(Finding {
            rule: rule.id.to_string(),
            severity: rule.severity,
            layer: rule.layer,
            subject: "flowlogs/rejected".to_string(),
            title: rule.title.to_string(),
            detail: format!(
                "{} of {} record(s) rejected ({} packet(s), {} byte(s)){}. Largest by bytes:\n  {}",
                self.totals.rejected,
                self.totals.records,
                self.totals.rejected_packets,
                self.totals.rejected_bytes,
                self.limit_note(),
                rows.join("\n  ")
            ),
            evidence,
            fix: rule.fix.to_string(),
            confidence: Confidence::Confirmed,
        });
    }

    /// Whether the flow maps filled up (then matching and pair counts are incomplete).
    pub fn limit_reached(&self) -> bool {
        self.totals.untracked > 0
    }

    fn limit_note(&self) -> String {
        if self.limit_reached() {
            format!(
                " (incomplete: {} record(s) of new flows beyond the {}-flow limit were counted but not matched; raise --max-flows)",
                self.totals.untracked, self.settings.max_flows
            )
        } else {
            String::new()
        }
    }
}

impl FlowKey {
    /// The reply side's port as a range hint: the exact port if known, as flows are 5-tuples.
    fn dst_port_range(&self) -> String {
        if self.dst_port >= 1024 {
            format!("1024-65535 (this one used {})", self.dst_port)
        } else {
            self.dst_port.to_string()
        }
    }
}

/// The service port of a categorised flow (the lower of the two when both qualify).
fn service_port(key: &FlowKey, cat: Category, vpn_ports: &[u16]) -> u16 {
    let d = classify(key.protocol, 0, key.dst_port, vpn_ports);
    let s = classify(key.protocol, key.src_port, 0, vpn_ports);
    match (s == Some(cat), d == Some(cat)) {
        (true, true) => key.src_port.min(key.dst_port),
        (true, false) => key.src_port,
        _ => key.dst_port,
    }
}

fn endpoint(a: Addr, port: u16, protocol: u8) -> String {
    let has_ports = matches!(protocol, 6 | 17 | 132);
    match (a.as_v4(), has_ports) {
        (_, false) => a.to_string(),
        (Some(_), true) => format!("{a}:{port}"),
        (None, true) => format!("[{a}]:{port}"),
    }
}

/// A line as evidence text: lossy UTF-8, cut at 300 bytes.
/// The `n` smallest items by key, kept in a bounded heap while items stream by; keys must
/// be distinct for the result not to depend on the order of offers.
struct TopN<K: Ord, T> {
    n: usize,
    heap: std::collections::BinaryHeap<Ranked<K, T>>,
}

/// An item ordered by its key alone.
struct Ranked<K, T>(K, T);

impl<K: Ord, T> PartialEq for Ranked<K, T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K: Ord, T> Eq for Ranked<K, T> {}

impl<K: Ord, T> PartialOrd for Ranked<K, T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: Ord, T> Ord for Ranked<K, T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl<K: Ord, T> TopN<K, T> {
    fn new(n: usize) -> Self {
        TopN { n, heap: std::collections::BinaryHeap::new() }
    }

    fn offer(&mut self, key: K, item: T) {
        if self.n == 0 {
            return;
        }
        if self.heap.len() == self.n {
            // Full: only an item better than the worst kept gets in.
            if self.heap.peek().is_some_and(|worst| key >= worst.0) {
                return;
            }
            self.heap.pop();
        }
        self.heap.push(Ranked(key, item));
    }

    /// The kept items, best (smallest key) first.
    fn into_sorted(self) -> Vec<T> {
        self.heap.into_sorted_vec().into_iter().map(|r| r.1).collect()
    }
}

pub(crate) fn excerpt(line: &[u8]) -> String {
    let cut = &line[..line.len().min(300)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if line.len() > 300 {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids that share their first, middle or last bytes, of every length around the cached
    /// ones (8-24 bytes), interned in a scrambled order many times: one number per id.
    #[test]
    fn interner_numbers_each_id_once() {
        let mut ids: Vec<Vec<u8>> = Vec::new();
        for len in 0..=30usize {
            for variant in 0..6u8 {
                let mut id = vec![b'e'; len];
                if len > 0 {
                    // Differ in one byte: the first, the last, or one in the middle.
                    let at = [0, len - 1, len / 2, len.saturating_sub(9), (len + 7) / 3, len.saturating_sub(17)]
                        [usize::from(variant)]
                    .min(len - 1);
                    id[at] = b'0' + variant;
                }
                ids.push(id);
            }
        }
        ids.sort();
        ids.dedup();
        let mut interner = Interner::default();
        let mut numbers: std::collections::HashMap<Vec<u8>, u32> = std::collections::HashMap::new();
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let id = &ids[(rng % ids.len() as u64) as usize];
            let n = interner.intern(Some(id));
            assert_eq!(*numbers.entry(id.clone()).or_insert(n), n, "{:?}", String::from_utf8_lossy(id));
            assert_eq!(interner.names[n as usize].as_bytes(), &id[..]);
        }
        let distinct: std::collections::HashSet<u32> = numbers.values().copied().collect();
        assert_eq!(distinct.len(), numbers.len());
        assert!(numbers.len() > 150, "{} ids seen", numbers.len());
        assert_eq!(interner.intern(None), NO_IFACE);
    }

    /// An aggregation of random records over few IPv4 and IPv6 hosts and the category ports,
    /// so flows repeat, groups hold several flows and many rejected flows have an accepted
    /// reverse.
    fn random_aggregation(seed: u64, records: usize) -> Aggregator {
        use super::super::format::{Format, FormatOrigin};
        let format = Format::default_v2(FormatOrigin::Given);
        let mut agg = Aggregator::new(Settings { window_slack: 100, ..Settings::default() });
        let mut rng = seed;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let ports = [500, 4500, 51820, 4789, 8472, 53, 179, 443, 40000, 40001];
        for line_no in 1..=records as u64 {
            let mut host = || match next(10) {
                0 | 1 => format!("2001:db8::{}", next(6) + 1),
                _ => format!("10.0.{}.{}", next(2), next(12) + 1),
            };
            let (src, dst) = (host(), host());
            let protocol = [6, 17, 17, 50, 1][next(5) as usize];
            let (sp, dp) = match protocol {
                6 | 17 => (ports[next(10) as usize], ports[next(10) as usize]),
                _ => (0, 0),
            };
            let start = 1_700_000_000 + next(1000);
            let action = if next(2) == 0 { "ACCEPT" } else { "REJECT" };
            let line = format!(
                "2 123456789012 eni-{:017x} {src} {dst} {sp} {dp} {protocol} {} {} {start} {} {action} OK",
                next(3),
                next(50) + 1,
                next(5000) + 40,
                start + next(60)
            );
            let rec = super::super::parse::parse_line(&format, line.as_bytes()).expect("a valid record");
            agg.record(&rec, At::new(0, line_no), line.as_bytes());
        }
        agg.settle();
        agg
    }

    /// The sorted groups and pairs agree with one hash map per category built from the
    /// same flows (the way they were computed before).
    #[test]
    fn category_tallies_agree_with_maps() {
        for seed in [1u64, 0x9e37_79b9, 0xdead_beef_1234] {
            let agg = random_aggregation(seed, 20_000);
            let tallies = agg.category_tallies();
            let vpn = &agg.settings.vpn_ports;
            type GroupTotals = (u64, u64, u64, At, FlowKey);
            let mut groups: [FxHashMap<(Addr, Addr, u8, u16), GroupTotals>; 5] = Default::default();
            let mut pairs: [std::collections::HashSet<(Addr, Addr)>; 5] = Default::default();
            for (k, r) in agg.rejected.iter() {
                let Some(c) = classify(k.protocol, k.src_port, k.dst_port, vpn) else { continue };
                let port = if c == Category::Esp { 0 } else { service_port(&k, c, vpn) };
                let e = groups[c.index()].entry((k.src, k.dst, k.protocol, port)).or_insert((0, 0, 0, r.at, k));
                e.0 += r.records;
                e.1 += r.packets;
                e.2 += r.bytes;
                if r.at < e.3 {
                    e.3 = r.at;
                    e.4 = k;
                }
                pairs[c.index()].insert((k.src, k.dst));
            }
            let mut v6_groups = 0;
            for c in Category::ALL {
                let t = &tallies[c.index()];
                assert_eq!(t.pairs, pairs[c.index()].len() as u64, "{c:?}");
                let mut expected: Vec<_> = groups[c.index()].iter().collect();
                expected.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.1 .3.cmp(&b.1 .3)));
                assert_eq!(t.groups.len(), expected.len(), "{c:?}");
                for (g, ((src, dst, protocol, port), (records, packets, bytes, first, flow))) in
                    t.groups.iter().zip(expected)
                {
                    assert_eq!(
                        (g.src, g.dst, g.protocol, g.port, g.records, g.packets, g.bytes, g.first, g.first_flow),
                        (*src, *dst, *protocol, *port, *records, *packets, *bytes, *first, *flow)
                    );
                    v6_groups += usize::from(g.src.as_v4().is_none() || g.dst.as_v4().is_none());
                }
            }
            assert!(tallies.iter().all(|t| t.groups.len() > 10), "every category has groups");
            assert!(v6_groups > 10, "{v6_groups} groups with IPv6");
        }
    }

    /// The partition-by-partition reverse lookups find what one lookup per flow finds.
    #[test]
    fn asymmetric_pairs_agree_with_single_lookups() {
        for seed in [3u64, 0x1234_5678_9abc] {
            let agg = random_aggregation(seed, 20_000);
            let slack = agg.settings.window_slack;
            let mut expected: Vec<(FlowKey, At, At)> = agg
                .rejected
                .iter()
                .filter_map(|(k, r)| {
                    let a = agg.accepted.get(&k.reversed())?;
                    let overlaps = u64::from(r.start) <= u64::from(a.end) + slack
                        && u64::from(a.start) <= u64::from(r.end) + slack;
                    overlaps.then_some((k, r.at, a.at))
                })
                .collect();
            expected.sort_by_key(|(k, at, _)| (*at, *k));
            let found: Vec<(FlowKey, At, At)> =
                agg.asymmetric_pairs().into_iter().map(|(k, r, a)| (k, r.at, a.at)).collect();
            assert_eq!(found, expected);
            assert!(found.len() > 100, "{} pairs", found.len());
            assert!(found.iter().any(|(k, _, _)| k.src.as_v4().is_none()), "IPv6 pairs too");
        }
    }

    #[test]
    fn classification() {
        let vpn = VPN_PORTS;
        assert_eq!(classify(17, 500, 500, vpn), Some(Category::Vpn));
        assert_eq!(classify(17, 40000, 4500, vpn), Some(Category::Vpn));
        assert_eq!(classify(17, 51820, 51820, vpn), Some(Category::Vpn));
        assert_eq!(classify(50, 0, 0, vpn), Some(Category::Esp));
        assert_eq!(classify(17, 33000, 8472, vpn), Some(Category::Vxlan));
        assert_eq!(classify(17, 4789, 4789, vpn), Some(Category::Vxlan));
        assert_eq!(classify(6, 40000, 53, vpn), Some(Category::Dns));
        // A DNS reply to ephemeral port 51820 is DNS, not WireGuard: the lower port wins.
        assert_eq!(classify(17, 53, 51820, vpn), Some(Category::Dns));
        assert_eq!(classify(6, 179, 40000, vpn), Some(Category::Bgp));
        assert_eq!(classify(17, 179, 40000, vpn), None);
        assert_eq!(classify(6, 40000, 500, vpn), None);
        assert_eq!(classify(6, 40000, 443, vpn), None);
        assert_eq!(classify(17, 40000, 51821, &[51821]), Some(Category::Vpn));
    }

    #[test]
    fn service_port_picks_the_category_port() {
        let k = FlowKey { src: Addr::v4(1), dst: Addr::v4(2), src_port: 53, dst_port: 51820, protocol: 17 };
        assert_eq!(service_port(&k, Category::Dns, VPN_PORTS), 53);
        let k = FlowKey { src: Addr::v4(1), dst: Addr::v4(2), src_port: 40000, dst_port: 4500, protocol: 17 };
        assert_eq!(service_port(&k, Category::Vpn, VPN_PORTS), 4500);
    }
}
