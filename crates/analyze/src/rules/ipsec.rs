//! strongSwan IPsec rules (TUN-010..015): connections on two hosts of the bundle that point
//! at each other are compared the way charon negotiates them (proposals, selectors, version,
//! PSKs, rekey timing), with runtime SAs as extra evidence.
//!
//! Proposal semantics follow strongSwan's `proposal.c`:
//! * a proposal is a set of algorithms per transform type (encryption, integrity, PRF,
//!   DH/KE, ESN, additional KEs); two proposals match when, for every type either of them
//!   lists, both list a common algorithm. Exceptions: integrity is skipped once an AEAD
//!   cipher is selected; in ESP the DH/KE type is optional (a side without it matches only
//!   a side that also lists `none`).
//! * IKE proposals without a PRF take it from their integrity algorithms; ESP proposals
//!   drop PRFs and default to `noesn`.
//! * the first CHILD_SA is created inside IKE_AUTH, where no key exchange happens, so ESP
//!   DH groups are ignored there (IKEv2) and only matter at rekeying: a PFS mismatch lets
//!   the tunnel come up and kills it at the first CHILD_SA rekey (TUN-015). With IKEv1,
//!   Quick Mode uses PFS at once, so the same mismatch is a TUN-011.
//! * `default` expands to strongSwan's defaults (proposal_create_default[_aead], 5.9/6.0):
//!   IKE: aes128/192/256 (CBC, CTR), camellia128/192/256 (CBC, CTR), 3des with
//!   sha256/384/512, aesxcbc, aescmac, sha1; and AEAD aes{128,192,256}{gcm,ccm}{16,12,8},
//!   camellia ccm, chacha20poly1305; PRFs prfsha256/384/512, prfaesxcbc, prfaescmac,
//!   prfsha1; KE ecp256/384/521, ecp256bp/384bp/512bp, curve25519, curve448,
//!   modp3072/4096/6144/8192, modp2048. ESP: aes{128,192,256}gcm16, and aes128/192/256
//!   with sha256/384/512, sha1, aesxcbc; no KE (no PFS); noesn. (The real set depends on
//!   the loaded crypto plugins; this is the OpenSSL default build.)

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use netsleuth_model::host::{Host, InterfaceKind};
use netsleuth_model::ipsec::{IpsecChild, IpsecConnection, IpsecSecret};
use netsleuth_model::{Confidence, Evidence, Finding, Layer, Location, Network, Severity};

use crate::rule::{Context, Rule};
use crate::support::overlaps;

pub(crate) const RULES: &[Rule] = &[
    Rule {
        id: "TUN-010",
        layer: Layer::Tunnel,
        severity: Severity::High,
        title: "IPsec peers share no IKE proposal",
        rationale: "IKE_SA_INIT succeeds only if the responder finds one proposal of the initiator \
                    that it accepts in every transform type (encryption, integrity, PRF, DH group). \
                    Otherwise it answers N(NO_PROPOSAL_CHOSEN) and the tunnel never comes up; logs \
                    show 'received proposals unacceptable', 'no acceptable ENCRYPTION_ALGORITHM \
                    found' or INVALID_KE_PAYLOAD loops (FAILURES #15).",
        references: &["strongswan/strongswan#2048", "https://docs.strongswan.org/docs/latest/config/proposals.html"],
        example: "host/site-a/ipsec/to-b: IKE proposals of site-a/to-b (aes256-sha256-modp2048) and \
                  site-b/to-a (aes256gcm16-prfsha384-ecp384) share no DH/KE group and no encryption",
        check: check_ike_proposals,
    },
    Rule {
        id: "TUN-011",
        layer: Layer::Tunnel,
        severity: Severity::High,
        title: "IPsec CHILD_SA peers share no ESP proposal",
        rationale: "The IKE SA comes up but the CHILD_SA fails with N(NO_PROP) ('no acceptable \
                    proposal found', 'failed to establish CHILD_SA, keeping IKE_SA') when the ESP \
                    proposals share no encryption/integrity/ESN combination: the tunnel looks \
                    half-up and carries nothing (FAILURES #15).",
        references: &["strongswan/strongswan#2048", "https://docs.strongswan.org/docs/latest/config/proposals.html"],
        example: "host/site-a/ipsec/to-b/child/net: esp_proposals aes256-sha256 vs aes128gcm16: no \
                  common encryption algorithm",
        check: check_esp_proposals,
    },
    Rule {
        id: "TUN-012",
        layer: Layer::Tunnel,
        severity: Severity::High,
        title: "IPsec traffic selectors not mirrored",
        rationale: "A CHILD_SA covers local_ts ↔ remote_ts. The other side must configure the mirror \
                    image; with disjoint selectors the responder answers TS_UNACCEPTABLE and the \
                    CHILD_SA fails ('traffic selectors ... inacceptable'); with partly overlapping \
                    ones IKEv2 narrows to the intersection and traffic outside it silently bypasses \
                    or misses the tunnel (FAILURES #19). `dynamic` stands for the host's own address.",
        references: &["strongswan/strongMan#153", "https://docs.strongswan.org/docs/latest/swanctl/swanctlConf.html"],
        example: "host/site-a/ipsec/to-b/child/net: site-a remote_ts 10.2.0.0/16 but site-b local_ts \
                  10.3.0.0/16: TS_UNACCEPTABLE",
        check: check_traffic_selectors,
    },
    Rule {
        id: "TUN-013",
        layer: Layer::Tunnel,
        severity: Severity::High,
        title: "IKE version mismatch",
        rationale: "A connection pinned to IKEv1 cannot talk to one pinned to IKEv2 (`version = 0` \
                    accepts both, but initiates IKEv2). The responder finds no config for the \
                    other version and answers with NO_PROPOSAL_CHOSEN or ignores the request \
                    (FAILURES #46).",
        references: &["https://docs.strongswan.org/docs/latest/swanctl/swanctlConf.html"],
        example: "host/site-a/ipsec/to-b: site-a/to-b version = 1, site-b/to-a version = 2",
        check: check_version,
    },
    Rule {
        id: "TUN-014",
        layer: Layer::Tunnel,
        severity: Severity::High,
        title: "IPsec pre-shared keys differ",
        rationale: "With PSK authentication both sides must hold the same secret for the pair of \
                    identities. A different (or missing) secret fails IKE_AUTH with 'tried 1 shared \
                    key for A - B, but MAC mismatched' and N(AUTH_FAILED) (FAILURES #20). netsleuth \
                    compares keyed fingerprints, never the secrets.",
        references: &["https://docs.strongswan.org/docs/latest/swanctl/swanctlConf.html#_secrets"],
        example: "host/site-a/ipsec/to-b: secret ike-b on site-a and secret ike-a on site-b differ \
                  (fingerprints compared)",
        check: check_psk,
    },
    Rule {
        id: "TUN-015",
        layer: Layer::Tunnel,
        severity: Severity::Medium,
        title: "IPsec rekey, lifetime, PFS or DPD settings cause drops",
        rationale: "Settings that only matter later: DH groups in the ESP proposals on one side only, or \
                    different ones (PFS mismatch), let the first CHILD_SA come up but make every rekey fail with \
                    NO_PROPOSAL_CHOSEN, so the tunnel drops at the first life time (~1 h / 8 h \
                    boundaries); a CHILD_SA life time that ends before either side rekeys; DPD that \
                    clears the SA while neither side re-initiates (FAILURES #37, #38).",
        references: &[
            "strongswan/strongswan#3024",
            "https://docs.strongswan.org/docs/latest/config/rekeying.html",
            "https://docs.strongswan.org/docs/latest/swanctl/swanctlConf.html",
        ],
        example: "host/site-a/ipsec/to-b/child/net: esp_proposals of site-a use modp2048 (PFS), \
                  site-b none: the CHILD_SA comes up, every rekey fails, traffic drops after life_time 3960 s",
        check: check_timers,
    },
];

// ---------------------------------------------------------------------------------------
// Proposals
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum TType {
    Encr,
    Integ,
    Prf,
    Ke,
    Esn,
    /// Additional key exchange `ke1_`..`ke7_` (strongSwan 6).
    Ake(u8),
}

impl TType {
    fn name(self) -> String {
        match self {
            TType::Encr => "encryption".into(),
            TType::Integ => "integrity".into(),
            TType::Prf => "PRF".into(),
            TType::Ke => "DH/KE group".into(),
            TType::Esn => "ESN".into(),
            TType::Ake(n) => format!("additional key exchange {n}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Ike,
    Esp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Proposal {
    /// Algorithms per type, in the configured (preference) order.
    algs: BTreeMap<TType, Vec<String>>,
    /// Tokens strongSwan would not recognise (they make a comparison uncertain).
    unknown: Vec<String>,
    /// Expanded from `default` (IKEv1 keeps such lists whole).
    from_default: bool,
}

impl Proposal {
    fn get(&self, t: TType) -> Option<&Vec<String>> {
        self.algs.get(&t).filter(|s| !s.is_empty())
    }

    fn add(&mut self, t: TType, alg: &str) {
        let v = self.algs.entry(t).or_default();
        if !v.iter().any(|a| a == alg) {
            v.push(alg.to_string());
        }
    }

    /// IKEv1 supports one algorithm of each kind per proposal: the others are stripped.
    fn first_of_each(mut self) -> Proposal {
        if !self.from_default {
            for v in self.algs.values_mut() {
                v.truncate(1);
            }
        }
        self
    }
}

fn is_aead(alg: &str) -> bool {
    alg.contains("gcm") || alg.contains("ccm") || alg.contains("poly1305") || alg.contains("gmac")
}

/// `gcm128`/`gcm96`/`gcm64` are the bit spellings of `gcm16`/`gcm12`/`gcm8` (same for ccm).
fn canonical_icv(alg: &str) -> String {
    for mode in ["gcm", "ccm"] {
        if let Some(pos) = alg.find(mode) {
            let (head, tail) = alg.split_at(pos + mode.len());
            let icv = match tail {
                "" | "128" | "16" => "16",
                "96" | "12" => "12",
                "64" | "8" => "8",
                other => other,
            };
            return format!("{head}{icv}");
        }
    }
    alg.to_string()
}

fn canonical_hash(h: &str) -> String {
    match h {
        "sha" | "sha1" => "sha1".into(),
        "sha2_256" | "sha256" => "sha256".into(),
        "sha2_384" | "sha384" => "sha384".into(),
        "sha2_512" | "sha512" => "sha512".into(),
        "sha2_256_96" | "sha256_96" => "sha256_96".into(),
        other => other.into(),
    }
}

/// The transform type and canonical name of one proposal keyword.
fn classify(token: &str) -> Option<(TType, String)> {
    let t = token.trim().to_ascii_lowercase();
    if t == "none" || t == "modpnone" {
        return Some((TType::Ke, "none".into()));
    }
    if t == "esn" || t == "noesn" {
        return Some((TType::Esn, t));
    }
    if let Some(rest) = t.strip_prefix("ke") {
        let mut chars = rest.chars();
        if let (Some(d @ '1'..='7'), Some('_')) = (chars.next(), chars.next()) {
            let n = d.to_digit(10).and_then(|n| u8::try_from(n).ok()).unwrap_or(1);
            let alg = chars.as_str();
            let canon = classify(alg).filter(|(ty, _)| *ty == TType::Ke).map_or_else(|| alg.to_string(), |(_, c)| c);
            return Some((TType::Ake(n), canon));
        }
    }
    if let Some(rest) = t.strip_prefix("prf") {
        if !rest.is_empty() {
            return Some((TType::Prf, format!("prf{}", canonical_hash(rest))));
        }
    }
    const KE: [&str; 10] =
        ["modp", "ecp", "curve25519", "curve448", "ntru", "newhope", "mlkem", "frodo", "bike", "hqc"];
    if KE.iter().any(|p| t.starts_with(p)) {
        return Some((TType::Ke, t));
    }
    match t.as_str() {
        "x25519" => return Some((TType::Ke, "curve25519".into())),
        "x448" => return Some((TType::Ke, "curve448".into())),
        "md5" | "md5_128" | "sha" | "sha1" | "sha1_160" | "sha256" | "sha2_256" | "sha384" | "sha2_384" | "sha512"
        | "sha2_512" | "sha256_96" | "sha2_256_96" | "aesxcbc" | "aescmac" | "camelliaxcbc" => {
            return Some((TType::Integ, canonical_hash(&t)))
        }
        "aes" => return Some((TType::Encr, "aes128".into())),
        "camellia" => return Some((TType::Encr, "camellia128".into())),
        "3des" | "des" | "null" | "cast128" | "chacha20poly1305" => return Some((TType::Encr, t)),
        _ => {}
    }
    const ENCR: [&str; 5] = ["aes", "camellia", "blowfish", "twofish", "serpent"];
    if ENCR.iter().any(|p| t.starts_with(p)) && t.chars().any(|c| c.is_ascii_digit()) {
        return Some((TType::Encr, canonical_icv(&t)));
    }
    None
}

/// strongSwan's default proposals (see the module docs).
fn defaults(proto: Proto) -> Vec<Proposal> {
    let mk = |encr: &[&str], integ: &[&str], prf: &[&str], ke: &[&str], esn: &[&str]| {
        let mut p = Proposal { from_default: true, ..Proposal::default() };
        for (t, list) in
            [(TType::Encr, encr), (TType::Integ, integ), (TType::Prf, prf), (TType::Ke, ke), (TType::Esn, esn)]
        {
            for a in list {
                p.add(t, a);
            }
        }
        p
    };
    const PRF: [&str; 6] = ["prfsha256", "prfsha384", "prfsha512", "prfaesxcbc", "prfaescmac", "prfsha1"];
    const KE: [&str; 13] = [
        "ecp256",
        "ecp384",
        "ecp521",
        "ecp256bp",
        "ecp384bp",
        "ecp512bp",
        "curve25519",
        "curve448",
        "modp3072",
        "modp4096",
        "modp6144",
        "modp8192",
        "modp2048",
    ];
    match proto {
        Proto::Ike => {
            let mut classic = Vec::new();
            let mut aead = vec!["chacha20poly1305".to_string()];
            for bits in ["128", "192", "256"] {
                classic.extend([
                    format!("aes{bits}"),
                    format!("aes{bits}ctr"),
                    format!("camellia{bits}"),
                    format!("camellia{bits}ctr"),
                ]);
                for icv in ["16", "12", "8"] {
                    aead.extend([
                        format!("aes{bits}gcm{icv}"),
                        format!("aes{bits}ccm{icv}"),
                        format!("camellia{bits}ccm{icv}"),
                    ]);
                }
            }
            classic.push("3des".into());
            let c: Vec<&str> = classic.iter().map(String::as_str).collect();
            let a: Vec<&str> = aead.iter().map(String::as_str).collect();
            vec![
                mk(&c, &["sha256", "sha384", "sha512", "aesxcbc", "aescmac", "sha1"], &PRF, &KE, &[]),
                mk(&a, &[], &PRF, &KE, &[]),
            ]
        }
        Proto::Esp => vec![
            mk(&["aes128gcm16", "aes192gcm16", "aes256gcm16"], &[], &[], &[], &["noesn"]),
            mk(
                &["aes128", "aes192", "aes256"],
                &["sha256", "sha384", "sha512", "sha1", "aesxcbc"],
                &[],
                &[],
                &["noesn"],
            ),
        ],
    }
}

/// Parses one proposal string (which may be `default`); a string mixing AEAD and classic
/// ciphers (which strongSwan refuses) is split into the two proposals it was meant as.
fn parse_proposal(text: &str, proto: Proto) -> Vec<Proposal> {
    let text = text.trim().trim_end_matches('!').trim();
    if text.eq_ignore_ascii_case("default") {
        return defaults(proto);
    }
    let mut p = Proposal::default();
    let mut tokens = text.split('-').map(str::trim).filter(|t| !t.is_empty()).peekable();
    while let Some(tok) = tokens.next() {
        // Tolerate `prf-sha384` for `prfsha384`.
        let joined;
        let tok = if tok.eq_ignore_ascii_case("prf") {
            match tokens.next() {
                Some(next) => {
                    joined = format!("prf{next}");
                    joined.as_str()
                }
                None => tok,
            }
        } else {
            tok
        };
        match classify(tok) {
            Some((t, alg)) => p.add(t, &alg),
            None => p.unknown.push(tok.to_string()),
        }
    }
    match proto {
        Proto::Ike => {
            if p.get(TType::Prf).is_none() {
                let derived: Vec<String> =
                    p.get(TType::Integ)
                        .into_iter()
                        .flatten()
                        .filter_map(|i| match i.as_str() {
                            "sha1" | "sha256" | "sha384" | "sha512" | "md5" | "aesxcbc" | "aescmac"
                            | "camelliaxcbc" => Some(format!("prf{i}")),
                            _ => None,
                        })
                        .collect();
                for d in derived {
                    p.add(TType::Prf, &d);
                }
            }
            if let Some(ke) = p.algs.get_mut(&TType::Ke) {
                ke.retain(|k| k != "none");
            }
        }
        Proto::Esp => {
            p.algs.remove(&TType::Prf);
            if p.get(TType::Esn).is_none() {
                p.add(TType::Esn, "noesn");
            }
        }
    }
    let encr: Vec<String> = p.algs.get(&TType::Encr).cloned().unwrap_or_default();
    let (aead, classic): (Vec<String>, Vec<String>) = encr.into_iter().partition(|a| is_aead(a));
    if !aead.is_empty() && !classic.is_empty() {
        let mut pa = p.clone();
        pa.algs.insert(TType::Encr, aead);
        pa.algs.remove(&TType::Integ);
        let mut pc = p;
        pc.algs.insert(TType::Encr, classic);
        return vec![pa, pc];
    }
    if !aead.is_empty() {
        p.algs.remove(&TType::Integ);
    }
    vec![p]
}

/// A proposal list as configured (`ikev1`: one algorithm per kind and proposal).
fn parse_list(list: &[String], proto: Proto, ikev1: bool) -> Vec<Proposal> {
    // swanctl: a missing or empty setting means `default`; commas may also sit inside one entry.
    let items: Vec<&str> = list.iter().flat_map(|s| s.split(',')).map(str::trim).filter(|s| !s.is_empty()).collect();
    let parsed: Vec<Proposal> = if items.is_empty() {
        defaults(proto)
    } else {
        items.into_iter().flat_map(|s| parse_proposal(s, proto)).collect()
    };
    if ikev1 {
        parsed.into_iter().map(Proposal::first_of_each).collect()
    } else {
        parsed
    }
}

/// strongSwan's select_algos: Err(type) names the first transform type without agreement.
fn proposals_match(a: &Proposal, b: &Proposal, proto: Proto, skip_ke: bool) -> Result<(), TType> {
    let types: BTreeSet<TType> = a.algs.keys().chain(b.algs.keys()).copied().collect();
    let mut skip_integ = false;
    let empty = Vec::new();
    for t in types {
        if (t == TType::Integ && skip_integ) || (skip_ke && matches!(t, TType::Ke | TType::Ake(_))) {
            continue;
        }
        let optional = (t == TType::Ke && proto == Proto::Esp) || matches!(t, TType::Ake(_));
        let ea = a.get(t).unwrap_or(&empty);
        let eb = b.get(t).unwrap_or(&empty);
        let common: Vec<&String> = ea.iter().filter(|x| eb.contains(x)).collect();
        let none = |v: &[String]| v.iter().any(|x| x == "none");
        let found = match (ea.is_empty(), eb.is_empty()) {
            (true, true) => true,
            (true, false) => optional && none(eb),
            (false, true) => optional && none(ea),
            (false, false) => !common.is_empty(),
        };
        if !found {
            return Err(t);
        }
        if t == TType::Encr && common.iter().any(|c| is_aead(c)) {
            skip_integ = true;
        }
    }
    Ok(())
}

fn lists_match(a: &[Proposal], b: &[Proposal], proto: Proto, skip_ke: bool) -> bool {
    a.iter().any(|p| b.iter().any(|q| proposals_match(p, q, proto, skip_ke).is_ok()))
}

/// Which transform types have no algorithm in common across the two lists, with the
/// algorithms each side offers, for the detail.
fn disagreement(a: &[Proposal], b: &[Proposal], proto: Proto, skip_ke: bool) -> String {
    let union = |list: &[Proposal], t: TType| -> BTreeSet<String> {
        list.iter().filter_map(|p| p.get(t)).flatten().cloned().collect()
    };
    let mut types: BTreeSet<TType> = BTreeSet::new();
    for p in a.iter().chain(b) {
        types.extend(p.algs.keys().copied());
    }
    let mut parts = Vec::new();
    for t in types {
        if skip_ke && matches!(t, TType::Ke | TType::Ake(_)) {
            continue;
        }
        let (ua, ub) = (union(a, t), union(b, t));
        let optional = (t == TType::Ke && proto == Proto::Esp) || matches!(t, TType::Ake(_));
        let disjoint = ua.is_disjoint(&ub) && !(optional && (ua.is_empty() || ub.is_empty()));
        let integ_irrelevant = t == TType::Integ && (ua.is_empty() || ub.is_empty());
        if disjoint && !integ_irrelevant {
            let show = |s: &BTreeSet<String>| {
                if s.is_empty() {
                    "none".to_string()
                } else {
                    s.iter().take(6).cloned().collect::<Vec<_>>().join(", ")
                }
            };
            parts.push(format!("no common {} ({} vs {})", t.name(), show(&ua), show(&ub)));
        }
    }
    if parts.is_empty() {
        "each transform type has a common algorithm somewhere, but no single proposal pair combines them".into()
    } else {
        parts.join("; ")
    }
}

/// DH groups offered in ESP proposals, for PFS details.
fn esp_groups(list: &[Proposal]) -> String {
    let g: BTreeSet<String> = list.iter().filter_map(|p| p.get(TType::Ke)).flatten().cloned().collect();
    if g.is_empty() {
        "none (no PFS)".into()
    } else {
        g.into_iter().collect::<Vec<_>>().join(", ")
    }
}

// ---------------------------------------------------------------------------------------
// Pairing connections across hosts
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Remote {
    Ip(IpAddr),
    Net(IpNet),
    Any,
}

struct ConnRef<'a> {
    host: &'a Host,
    host_idx: usize,
    conn: &'a IpsecConnection,
    local: Vec<IpAddr>,
    remote: Vec<Remote>,
}

/// One side of a pair: the connection and the address the other side targets.
#[derive(Clone, Copy)]
struct Side<'a> {
    host: &'a Host,
    conn: &'a IpsecConnection,
    addr: Option<IpAddr>,
}

struct Pair<'a> {
    a: Side<'a>,
    b: Side<'a>,
}

fn is_any(s: &str) -> bool {
    let s = s.trim();
    s.is_empty() || s.eq_ignore_ascii_case("%any") || s == "%any4" || s == "%any6" || s == "0.0.0.0/0" || s == "::/0"
}

fn conn_refs(net: &Network) -> Vec<ConnRef<'_>> {
    let mut v = Vec::new();
    for (hi, host) in net.hosts.iter().enumerate() {
        let iface_addrs: Vec<IpAddr> = host
            .interfaces
            .iter()
            .filter(|i| i.kind != InterfaceKind::Loopback)
            .flat_map(|i| i.addresses.iter().map(|a| a.addr()))
            .filter(|a| !a.is_loopback() && !matches!(a, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80))
            .collect();
        for conn in &host.ipsec.connections {
            let mut local: Vec<IpAddr> = conn.local_addrs.iter().filter_map(|a| a.trim().parse().ok()).collect();
            if local.is_empty() {
                local.clone_from(&iface_addrs);
            }
            let mut remote: Vec<Remote> = conn
                .remote_addrs
                .iter()
                .filter_map(|a| {
                    let a = a.trim();
                    if is_any(a) {
                        Some(Remote::Any)
                    } else if let Ok(ip) = a.parse::<IpAddr>() {
                        Some(Remote::Ip(ip))
                    } else {
                        a.parse::<IpNet>().ok().map(Remote::Net)
                    }
                })
                .collect();
            if conn.remote_addrs.is_empty() {
                remote.push(Remote::Any);
            }
            v.push(ConnRef { host, host_idx: hi, conn, local, remote });
        }
    }
    v
}

fn auth_id(auth: &[netsleuth_model::ipsec::IpsecAuth]) -> Option<&str> {
    auth.iter().find_map(|a| a.id.as_deref()).map(str::trim).filter(|id| !is_any(id))
}

/// Whether `x`'s remote id accepts `y` (by its local id or address).
fn id_accepts(x: &ConnRef<'_>, y: &ConnRef<'_>) -> Option<bool> {
    let want = auth_id(&x.conn.remote_auth)?;
    let have = auth_id(&y.conn.local_auth);
    Some(have == Some(want) || y.local.iter().any(|a| a.to_string() == want))
}

fn targets(x: &ConnRef<'_>, y: &ConnRef<'_>) -> Option<IpAddr> {
    y.local.iter().copied().find(|a| {
        x.remote.iter().any(|r| match r {
            Remote::Ip(ip) => ip == a,
            Remote::Net(n) => n.contains(a),
            Remote::Any => false,
        })
    })
}

/// Pairs of connections on different hosts that point at each other: each targets an
/// address of the other (or one accepts %any and the identities match both ways). Among
/// several candidates on one host, the best-matching (ids, names) are kept.
fn pairs(net: &Network) -> Vec<Pair<'_>> {
    let refs = conn_refs(net);
    let mut by_addr: HashMap<IpAddr, Vec<usize>> = HashMap::new();
    for (i, r) in refs.iter().enumerate() {
        for a in &r.local {
            by_addr.entry(*a).or_default().push(i);
        }
    }
    let mut chosen: BTreeSet<(usize, usize)> = BTreeSet::new();
    for (i, x) in refs.iter().enumerate() {
        // Candidates per other host with their score.
        let mut best: HashMap<usize, (u32, Vec<usize>)> = HashMap::new();
        let mut cands: BTreeSet<usize> = BTreeSet::new();
        for r in &x.remote {
            if let Remote::Ip(ip) = r {
                cands.extend(by_addr.get(ip).into_iter().flatten().copied());
            }
        }
        for j in cands {
            let Some(y) = refs.get(j) else { continue };
            if y.host_idx == x.host_idx {
                continue;
            }
            let strict = targets(y, x).is_some();
            let ids_xy = id_accepts(x, y);
            let ids_yx = id_accepts(y, x);
            let ids_ok = ids_xy != Some(false) && ids_yx != Some(false);
            let ids_explicit = ids_xy == Some(true) || ids_yx == Some(true);
            let reverse_any = y.remote.iter().any(|r| matches!(r, Remote::Any));
            if !(strict || (reverse_any && ids_ok && ids_explicit)) {
                continue;
            }
            let score = u32::from(strict) * 4
                + u32::from(ids_ok && ids_explicit) * 2
                + u32::from(x.conn.name == y.conn.name)
                + u32::from(ids_ok);
            let e = best.entry(y.host_idx).or_insert((0, Vec::new()));
            if score > e.0 {
                *e = (score, vec![j]);
            } else if score == e.0 {
                e.1.push(j);
            }
        }
        for (_, (_, js)) in best {
            for j in js {
                chosen.insert((i.min(j), i.max(j)));
            }
        }
    }
    chosen
        .into_iter()
        .filter_map(|(i, j)| {
            let (x, y) = (refs.get(i)?, refs.get(j)?);
            Some(Pair {
                a: Side { host: x.host, conn: x.conn, addr: targets(y, x).or_else(|| x.local.first().copied()) },
                b: Side { host: y.host, conn: y.conn, addr: targets(x, y).or_else(|| y.local.first().copied()) },
            })
        })
        .collect()
}

fn conn_subject(s: &Side<'_>) -> String {
    format!("{}/ipsec/{}", s.host.subject(), s.conn.name)
}

fn label(s: &Side<'_>) -> String {
    format!("{}/{}", s.host.name, s.conn.name)
}

/// Children of two connections that belong together: same name, else the only child of
/// each, else mirrored selectors.
fn child_pairs<'a>(a: &'a IpsecConnection, b: &'a IpsecConnection) -> Vec<(&'a IpsecChild, &'a IpsecChild)> {
    let mut v = Vec::new();
    for ca in &a.children {
        let cb = b
            .children
            .iter()
            .find(|cb| cb.name == ca.name)
            .or_else(|| if a.children.len() == 1 && b.children.len() == 1 { b.children.first() } else { None })
            .or_else(|| b.children.iter().find(|cb| cb.local_ts == ca.remote_ts && cb.remote_ts == ca.local_ts));
        if let Some(cb) = cb {
            v.push((ca, cb));
        }
    }
    v
}

/// Runtime SA state of a side: evidence, and whether an ESTABLISHED IKE SA (with an
/// INSTALLED child `child`, when given) exists. None when list-sas was not collected.
fn runtime(side: &Side<'_>, child: Option<&str>) -> Option<(bool, Evidence)> {
    let ipsec = &side.host.ipsec;
    if !ipsec.sas_collected {
        return None;
    }
    let sas: Vec<_> = ipsec.sas.iter().filter(|s| s.name == side.conn.name).collect();
    let up = sas.iter().find(|s| {
        s.state.eq_ignore_ascii_case("ESTABLISHED")
            && child
                .is_none_or(|c| s.children.iter().any(|ch| ch.name == c && ch.state.eq_ignore_ascii_case("INSTALLED")))
    });
    if let Some(sa) = up {
        return Some((true, Evidence::new(sa.origin.clone(), format!("{}: IKE SA ESTABLISHED", sa.name))));
    }
    if let Some(sa) = sas.first() {
        let child_note = match child {
            Some(c) if sa.state.eq_ignore_ascii_case("ESTABLISHED") => format!(", no INSTALLED CHILD_SA {c}"),
            _ => String::new(),
        };
        return Some((
            false,
            Evidence::new(sa.origin.clone(), format!("{}: IKE SA {}{child_note}", sa.name, sa.state)),
        ));
    }
    let loc = side
        .host
        .artifacts
        .iter()
        .find(|a| a.ends_with("swanctl-list-sas.txt"))
        .map_or(Location::Derived, |a| Location::file(a.clone()));
    Some((false, Evidence::new(loc, format!("no ESTABLISHED IKE SA named '{}' in swanctl --list-sas", side.conn.name))))
}

/// Adds runtime SA evidence of both sides. When the configured mismatch should prevent the
/// SA (`contradicts`) but both sides show it up, the files may not be what is loaded: lower
/// the confidence and say so.
fn with_runtime(mut f: Finding, pair: &Pair<'_>, child: Option<(&str, &str)>, contradicts: bool) -> Finding {
    let ra = runtime(&pair.a, child.map(|c| c.0));
    let rb = runtime(&pair.b, child.map(|c| c.1));
    let both_up = matches!((&ra, &rb), (Some((true, _)), Some((true, _))));
    for (_, ev) in [ra, rb].into_iter().flatten() {
        f.evidence.push(ev);
    }
    if both_up && contradicts {
        f.confidence = Confidence::Possible;
        f.detail.push_str(
            " — yet both sides show established SAs at runtime: the loaded configuration may differ from the files \
             (run `swanctl --load-all` and re-check)",
        );
    }
    f
}

// ---------------------------------------------------------------------------------------
// TUN-010 / TUN-011
// ---------------------------------------------------------------------------------------

fn proposals_text(list: &[String]) -> String {
    if list.is_empty() {
        "default".into()
    } else {
        list.join(",")
    }
}

fn unknown_note(lists: &[&[Proposal]]) -> Option<String> {
    let unknown: BTreeSet<&str> =
        lists.iter().flat_map(|l| l.iter()).flat_map(|p| p.unknown.iter().map(String::as_str)).collect();
    (!unknown.is_empty())
        .then(|| format!(" (unrecognised keywords: {})", unknown.into_iter().collect::<Vec<_>>().join(", ")))
}

fn check_ike_proposals(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for pair in pairs(ctx.net) {
        let (ca, cb) = (pair.a.conn, pair.b.conn);
        let v1 = ikev1(&pair);
        let pa = parse_list(&ca.proposals, Proto::Ike, v1);
        let pb = parse_list(&cb.proposals, Proto::Ike, v1);
        if lists_match(&pa, &pb, Proto::Ike, false) {
            continue;
        }
        let mut detail = format!(
            "IKE proposals of {} ({}) and {} ({}) have no proposal in common: {}. The responder answers \
             N(NO_PROPOSAL_CHOSEN) and no IKE SA is established",
            label(&pair.a),
            proposals_text(&ca.proposals),
            label(&pair.b),
            proposals_text(&cb.proposals),
            disagreement(&pa, &pb, Proto::Ike, false)
        );
        let mut confidence = Confidence::Likely;
        if let Some(n) = unknown_note(&[&pa, &pb]) {
            detail.push_str(&n);
            confidence = Confidence::Possible;
        }
        let f = rule.finding(
            conn_subject(&pair.a),
            format!("No common IKE proposal between {} and {}", label(&pair.a), label(&pair.b)),
            detail,
            vec![
                Evidence::new(ca.origin.clone(), format!("{}: proposals = {}", ca.name, proposals_text(&ca.proposals))),
                Evidence::new(cb.origin.clone(), format!("{}: proposals = {}", cb.name, proposals_text(&cb.proposals))),
            ],
            format!(
                "use the same IKE proposal on both sides, e.g. `proposals = {}` in connections.{} of {}'s swanctl.conf \
                 (as on {}), then `swanctl --load-conns`",
                proposals_text(&ca.proposals),
                cb.name,
                pair.b.host.name,
                pair.a.host.name
            ),
            confidence,
        );
        out.push(with_runtime(f, &pair, None, true));
    }
}

fn ikev1(pair: &Pair<'_>) -> bool {
    pair.a.conn.version == 1 || pair.b.conn.version == 1
}

fn check_esp_proposals(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for pair in pairs(ctx.net) {
        let v1 = ikev1(&pair);
        for (cha, chb) in child_pairs(pair.a.conn, pair.b.conn) {
            let pa = parse_list(&cha.esp_proposals, Proto::Esp, v1);
            let pb = parse_list(&chb.esp_proposals, Proto::Esp, v1);
            // IKEv2 creates the first CHILD_SA without a key exchange; IKEv1 Quick Mode uses PFS at once.
            let skip_ke = !v1;
            if lists_match(&pa, &pb, Proto::Esp, skip_ke) {
                continue;
            }
            let mut detail = format!(
                "ESP proposals of child {} on {} ({}) and child {} on {} ({}) have no proposal in common: {}. The IKE \
                 SA comes up, the CHILD_SA fails with N(NO_PROP) ('no acceptable proposal found') and no traffic is \
                 protected",
                cha.name,
                label(&pair.a),
                proposals_text(&cha.esp_proposals),
                chb.name,
                label(&pair.b),
                proposals_text(&chb.esp_proposals),
                disagreement(&pa, &pb, Proto::Esp, skip_ke)
            );
            let mut confidence = Confidence::Likely;
            if let Some(n) = unknown_note(&[&pa, &pb]) {
                detail.push_str(&n);
                confidence = Confidence::Possible;
            }
            let f = rule.finding(
                format!("{}/child/{}", conn_subject(&pair.a), cha.name),
                format!("No common ESP proposal for child {}", cha.name),
                detail,
                vec![
                    Evidence::new(cha.origin.clone(), format!("{}: esp_proposals = {}", cha.name, proposals_text(&cha.esp_proposals))),
                    Evidence::new(chb.origin.clone(), format!("{}: esp_proposals = {}", chb.name, proposals_text(&chb.esp_proposals))),
                ],
                format!(
                    "use the same ESP proposal on both sides, e.g. `esp_proposals = {}` in children.{} of connection {} \
                     on {}, then `swanctl --load-conns`",
                    proposals_text(&cha.esp_proposals),
                    chb.name,
                    pair.b.conn.name,
                    pair.b.host.name
                ),
                confidence,
            );
            out.push(with_runtime(f, &pair, Some((&cha.name, &chb.name)), true));
        }
    }
}

// ---------------------------------------------------------------------------------------
// TUN-012
// ---------------------------------------------------------------------------------------

/// A traffic selector list as a set of normalised entries (`10.1.0.0/16`, `10.1.0.0/16[tcp/80]`),
/// with `dynamic` resolved to `own`. None when it cannot be resolved.
fn ts_set(list: &[String], own: Option<IpAddr>) -> Option<BTreeSet<String>> {
    let dynamic = vec!["dynamic".to_string()];
    let list = if list.iter().all(|s| s.trim().is_empty()) { &dynamic } else { list };
    let mut set = BTreeSet::new();
    for raw in list.iter().flat_map(|s| s.split(',')) {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let (base, suffix) = match raw.find('[') {
            Some(p) => (raw[..p].trim(), raw[p..].trim().to_ascii_lowercase()),
            None => (raw, String::new()),
        };
        let net = if base.eq_ignore_ascii_case("dynamic") {
            IpNet::from(own?)
        } else if let Ok(n) = base.parse::<IpNet>() {
            n.trunc()
        } else if let Ok(ip) = base.parse::<IpAddr>() {
            IpNet::from(ip)
        } else {
            // Ranges and names are kept verbatim.
            set.insert(format!("{}{suffix}", base.to_ascii_lowercase()));
            continue;
        };
        set.insert(format!("{net}{suffix}"));
    }
    Some(set)
}

fn ts_nets(set: &BTreeSet<String>) -> Vec<IpNet> {
    set.iter().filter_map(|s| s.split('[').next().and_then(|b| b.parse().ok())).collect()
}

/// Whether strongSwan could narrow one set to the other (some overlap exists).
fn ts_overlap(a: &BTreeSet<String>, b: &BTreeSet<String>) -> bool {
    let (na, nb) = (ts_nets(a), ts_nets(b));
    if na.len() < a.len() || nb.len() < b.len() {
        return true; // ranges we cannot evaluate: assume they might overlap
    }
    na.iter().any(|x| nb.iter().any(|y| overlaps(x, y)))
}

fn uses_virtual_ips(c: &IpsecConnection) -> bool {
    c.settings.keys().any(|k| k == "vips" || k == "pools")
}

fn show_set(s: &BTreeSet<String>) -> String {
    s.iter().cloned().collect::<Vec<_>>().join(",")
}

fn check_traffic_selectors(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for pair in pairs(ctx.net) {
        if uses_virtual_ips(pair.a.conn) || uses_virtual_ips(pair.b.conn) {
            continue; // `dynamic` becomes an assigned virtual IP at runtime
        }
        for (cha, chb) in child_pairs(pair.a.conn, pair.b.conn) {
            let sets = (
                ts_set(&cha.local_ts, pair.a.addr),
                ts_set(&cha.remote_ts, pair.b.addr),
                ts_set(&chb.local_ts, pair.b.addr),
                ts_set(&chb.remote_ts, pair.a.addr),
            );
            let (Some(al), Some(ar), Some(bl), Some(br)) = sets else { continue };
            if al == br && ar == bl {
                continue;
            }
            let mut problems = Vec::new();
            let mut disjoint = false;
            if al != br {
                disjoint |= !ts_overlap(&al, &br);
                problems.push(format!(
                    "{} local_ts {} vs {} remote_ts {}",
                    label(&pair.a),
                    show_set(&al),
                    label(&pair.b),
                    show_set(&br)
                ));
            }
            if ar != bl {
                disjoint |= !ts_overlap(&ar, &bl);
                problems.push(format!(
                    "{} remote_ts {} vs {} local_ts {}",
                    label(&pair.a),
                    show_set(&ar),
                    label(&pair.b),
                    show_set(&bl)
                ));
            }
            let consequence = if disjoint {
                "the selectors do not overlap: the responder answers TS_UNACCEPTABLE and the CHILD_SA is not created"
            } else {
                "IKEv2 narrows the CHILD_SA to the intersection: traffic outside it is not tunnelled (it leaves in \
                 clear or is dropped by the other side's policy)"
            };
            let mut f = rule.finding(
                format!("{}/child/{}", conn_subject(&pair.a), cha.name),
                format!("Traffic selectors of child {} are not mirrored", cha.name),
                format!("child {} ↔ {}: {}; {consequence}", cha.name, chb.name, problems.join("; ")),
                vec![
                    Evidence::new(
                        cha.origin.clone(),
                        format!(
                            "{}: local_ts = {}, remote_ts = {}",
                            cha.name,
                            cha.local_ts.join(","),
                            cha.remote_ts.join(",")
                        ),
                    ),
                    Evidence::new(
                        chb.origin.clone(),
                        format!(
                            "{}: local_ts = {}, remote_ts = {}",
                            chb.name,
                            chb.local_ts.join(","),
                            chb.remote_ts.join(",")
                        ),
                    ),
                ],
                format!(
                    "mirror the selectors: on {} set children.{}.local_ts = {} and remote_ts = {}, then `swanctl \
                     --load-conns`",
                    pair.b.host.name,
                    chb.name,
                    cha.remote_ts.join(","),
                    cha.local_ts.join(",")
                ),
                if disjoint { Confidence::Likely } else { Confidence::Possible },
            );
            if !disjoint {
                f.severity = Severity::Medium;
            }
            out.push(with_runtime(f, &pair, Some((&cha.name, &chb.name)), disjoint));
        }
    }
}

// ---------------------------------------------------------------------------------------
// TUN-013
// ---------------------------------------------------------------------------------------

fn check_version(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for pair in pairs(ctx.net) {
        let (va, vb) = (pair.a.conn.version, pair.b.conn.version);
        if va == 0 || vb == 0 || va == vb {
            continue;
        }
        let f = rule.finding(
            conn_subject(&pair.a),
            format!("IKE version {va} vs {vb} between {} and {}", label(&pair.a), label(&pair.b)),
            format!(
                "{} uses IKEv{va} and {} uses IKEv{vb}: the responder has no configuration for the initiator's IKE \
                 version and the connection never establishes",
                label(&pair.a),
                label(&pair.b)
            ),
            vec![
                Evidence::new(pair.a.conn.origin.clone(), format!("{}: version = {va}", pair.a.conn.name)),
                Evidence::new(pair.b.conn.origin.clone(), format!("{}: version = {vb}", pair.b.conn.name)),
            ],
            format!(
                "set `version = 2` in connections.{} on {} and connections.{} on {} (IKEv1 only if a peer cannot do \
                 IKEv2)",
                pair.a.conn.name, pair.a.host.name, pair.b.conn.name, pair.b.host.name
            ),
            Confidence::Likely,
        );
        out.push(with_runtime(f, &pair, None, true));
    }
}

// ---------------------------------------------------------------------------------------
// TUN-014
// ---------------------------------------------------------------------------------------

fn uses_psk(c: &IpsecConnection) -> bool {
    c.local_auth.iter().chain(&c.remote_auth).any(|a| a.auth.as_deref().is_some_and(|x| x.eq_ignore_ascii_case("psk")))
}

/// The IKE secret strongSwan would pick for a side: the one whose ids match most of the
/// (local, remote) identities (defaults: the addresses); a secret without ids matches any.
fn psk_for<'a>(side: &Side<'a>, other: &Side<'a>) -> Option<&'a IpsecSecret> {
    let local = auth_id(&side.conn.local_auth).map(str::to_string).or_else(|| side.addr.map(|a| a.to_string()));
    let remote = auth_id(&side.conn.remote_auth).map(str::to_string).or_else(|| other.addr.map(|a| a.to_string()));
    let wanted: Vec<String> = [local, remote].into_iter().flatten().collect();
    side.host
        .ipsec
        .secrets
        .iter()
        .filter(|s| s.kind.eq_ignore_ascii_case("ike") && s.secret.is_some())
        .filter_map(|s| {
            let hits = s.ids.iter().filter(|id| wanted.iter().any(|w| w == id.trim())).count();
            let score = match (s.ids.is_empty(), hits) {
                (true, _) => 1,
                (false, 0) => return None,
                (false, n) => 1 + 2 * n,
            };
            Some((score, s))
        })
        .max_by_key(|(score, _)| *score)
        .map(|(_, s)| s)
}

fn secret_excerpt(s: &IpsecSecret) -> String {
    if s.ids.is_empty() {
        format!("secrets.{} (no ids: matches any)", s.name)
    } else {
        format!("secrets.{} ids {}", s.name, s.ids.join(", "))
    }
}

fn check_psk(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for pair in pairs(ctx.net) {
        if !uses_psk(pair.a.conn) && !uses_psk(pair.b.conn) {
            continue;
        }
        let sa = psk_for(&pair.a, &pair.b);
        let sb = psk_for(&pair.b, &pair.a);
        let (detail, ev) = match (sa, sb) {
            (Some(x), Some(y)) => {
                let same = x.secret.as_ref().map(|s| &s.fingerprint) == y.secret.as_ref().map(|s| &s.fingerprint);
                if same {
                    continue;
                }
                (
                    format!(
                        "the IKE pre-shared key {} uses (secrets.{}) differs from the one {} uses (secrets.{}) \
                         (fingerprints compared): IKE_AUTH fails with 'MAC mismatched' and N(AUTH_FAILED)",
                        label(&pair.a),
                        x.name,
                        label(&pair.b),
                        y.name
                    ),
                    vec![
                        Evidence::new(x.origin.clone(), secret_excerpt(x)),
                        Evidence::new(y.origin.clone(), secret_excerpt(y)),
                    ],
                )
            }
            (None, None) => continue, // secrets not in the bundle (e.g. not collected): cannot judge
            (Some(x), None) | (None, Some(x)) => {
                let missing = if sa.is_none() { &pair.a } else { &pair.b };
                (
                    format!(
                        "{} authenticates with PSK but {} has no IKE secret matching its identities: IKE_AUTH fails \
                         ('no shared key found')",
                        label(&pair.a),
                        label(missing)
                    ),
                    vec![
                        Evidence::new(x.origin.clone(), secret_excerpt(x)),
                        Evidence::new(missing.conn.origin.clone(), format!("{}: auth = psk", missing.conn.name)),
                    ],
                )
            }
        };
        let f = rule.finding(
            conn_subject(&pair.a),
            format!("PSK mismatch between {} and {}", label(&pair.a), label(&pair.b)),
            detail,
            ev,
            format!(
                "put the same secret in an `ike-…` section with `id-1`/`id-2` matching both identities on {} and {} \
                 (distribute it out of band), then `swanctl --load-creds`",
                pair.a.host.name, pair.b.host.name
            ),
            Confidence::Likely,
        );
        out.push(with_runtime(f, &pair, None, true));
    }
}

// ---------------------------------------------------------------------------------------
// TUN-015
// ---------------------------------------------------------------------------------------

/// swanctl defaults: CHILD rekey 1 h, life = rekey + 10 %; 0 disables.
fn child_times(c: &IpsecChild) -> (u64, u64) {
    let rekey = c.rekey_time.unwrap_or(3600);
    let life = c.life_time.unwrap_or_else(|| rekey.saturating_add(rekey / 10));
    (rekey, life)
}

fn action_has(a: Option<&str>, word: &str) -> bool {
    a.is_some_and(|a| a.split(['|', ',', ' ']).any(|w| w.trim().eq_ignore_ascii_case(word)))
}

fn check_timers(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for pair in pairs(ctx.net) {
        let v1 = ikev1(&pair);
        for (cha, chb) in child_pairs(pair.a.conn, pair.b.conn) {
            let subject = format!("{}/child/{}", conn_subject(&pair.a), cha.name);
            let ev = || {
                let t = |c: &IpsecChild| {
                    let (r, l) = child_times(c);
                    format!(
                        "{}: esp_proposals = {}, rekey_time = {r}, life_time = {l}, start_action = {}, dpd_action = {}",
                        c.name,
                        proposals_text(&c.esp_proposals),
                        c.start_action.as_deref().unwrap_or("none"),
                        c.dpd_action.as_deref().unwrap_or("clear")
                    )
                };
                vec![Evidence::new(cha.origin.clone(), t(cha)), Evidence::new(chb.origin.clone(), t(chb))]
            };
            let (ra, la) = child_times(cha);
            let (rb, lb) = child_times(chb);

            // PFS: the initial CHILD_SA (no KE in IKE_AUTH) works, rekeys do not.
            let pa = parse_list(&cha.esp_proposals, Proto::Esp, v1);
            let pb = parse_list(&chb.esp_proposals, Proto::Esp, v1);
            if !v1 && lists_match(&pa, &pb, Proto::Esp, true) && !lists_match(&pa, &pb, Proto::Esp, false) {
                let lifetimes = [la, lb].into_iter().filter(|l| *l > 0).min();
                let f = rule.finding(
                    subject.clone(),
                    format!("PFS mismatch in child {}: every rekey fails", cha.name),
                    format!(
                        "DH groups in esp_proposals differ: {} offers {}, {} offers {}. The first CHILD_SA comes up \
                         (IKE_AUTH carries no key exchange), but every CHILD_SA rekey fails with NO_PROPOSAL_CHOSEN; \
                         traffic drops when the SA expires{}",
                        label(&pair.a),
                        esp_groups(&pa),
                        label(&pair.b),
                        esp_groups(&pb),
                        lifetimes.map(|l| format!(" (life_time {l} s)")).unwrap_or_default()
                    ),
                    ev(),
                    format!(
                        "use the same DH group (or none) in the ESP proposals of both sides, e.g. `esp_proposals = {}` \
                         in children.{} on {}",
                        proposals_text(&cha.esp_proposals),
                        chb.name,
                        pair.b.host.name
                    ),
                    Confidence::Likely,
                );
                out.push(with_runtime(f, &pair, Some((&cha.name, &chb.name)), false));
            }

            // A hard life time that ends before either side rekeys.
            let first_rekey = [ra, rb].into_iter().filter(|r| *r > 0).min();
            let first_expiry = [la, lb].into_iter().filter(|l| *l > 0).min();
            if let Some(exp) = first_expiry {
                if first_rekey.is_none_or(|r| exp <= r) {
                    let f = rule.finding(
                        subject.clone(),
                        format!("Child {} expires before it is rekeyed", cha.name),
                        format!(
                            "{} rekey_time {ra} s / life_time {la} s, {} rekey_time {rb} s / life_time {lb} s: the \
                             CHILD_SA hits a life time of {exp} s before any side rekeys{}, so it is deleted and \
                             traffic drops until it is re-created",
                            label(&pair.a),
                            label(&pair.b),
                            first_rekey
                                .map(|r| format!(" (first rekey at {r} s)"))
                                .unwrap_or_else(|| " (rekeying disabled on both)".into())
                        ),
                        ev(),
                        "make life_time larger than rekey_time on both sides, e.g. `rekey_time = 1h` and `life_time = \
                         66m` (or leave life_time unset: rekey_time + 10 %)",
                        Confidence::Likely,
                    );
                    out.push(with_runtime(f, &pair, Some((&cha.name, &chb.name)), false));
                }
            }
            // IKEv1 negotiates lifetimes: mismatches make peers expire SAs unexpectedly.
            if v1 && (ra != rb || la != lb) {
                let f = rule.finding(
                    subject.clone(),
                    format!("IKEv1 lifetimes differ for child {}", cha.name),
                    format!(
                        "IKEv1 negotiates SA lifetimes: {} uses rekey {ra} s / life {la} s, {} rekey {rb} s / life \
                         {lb} s; many peers reject or silently shorten mismatched lifetimes, and SAs drop at the \
                         shorter boundary",
                        label(&pair.a),
                        label(&pair.b)
                    ),
                    ev(),
                    "use identical rekey_time/life_time on both sides (AWS VPN: phase 2 3600 s, phase 1 28800 s)",
                    Confidence::Possible,
                );
                out.push(with_runtime(f, &pair, Some((&cha.name, &chb.name)), false));
            }

            // Nobody brings the tunnel (back) up.
            let initiates = |c: &IpsecChild| {
                action_has(c.start_action.as_deref(), "start") || action_has(c.start_action.as_deref(), "trap")
            };
            let recovers = |c: &IpsecChild| {
                action_has(c.dpd_action.as_deref(), "restart") || action_has(c.start_action.as_deref(), "trap")
            };
            let dpd = pair.a.conn.dpd_delay.is_some_and(|d| d > 0) || pair.b.conn.dpd_delay.is_some_and(|d| d > 0);
            let problem = if !initiates(cha) && !initiates(chb) {
                Some((
                    "neither side initiates it (start_action none on both): the tunnel comes up only by a manual \
                     `swanctl --initiate`",
                    Confidence::Likely,
                ))
            } else if dpd && !recovers(cha) && !recovers(chb) {
                Some((
                    "DPD is enabled but neither side re-establishes after it clears the SA (dpd_action clear and no \
                     trap policy): after a peer restart or path outage the tunnel stays down",
                    Confidence::Possible,
                ))
            } else {
                None
            };
            if let Some((what, confidence)) = problem {
                let f = rule.finding(
                    subject.clone(),
                    format!("Child {} is not re-established automatically", cha.name),
                    format!("child {} between {} and {}: {what}", cha.name, label(&pair.a), label(&pair.b)),
                    ev(),
                    format!(
                        "on the side that should keep the tunnel up ({}) set `start_action = trap|start` (strongSwan \
                         6: `start_action = trap|start`; 5.x: `trap` or `start`) and `dpd_action = restart` in \
                         children.{}, and `dpd_delay = 30s` on the connection",
                        pair.a.host.name, cha.name
                    ),
                    confidence,
                );
                out.push(with_runtime(f, &pair, Some((&cha.name, &chb.name)), false));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::node::testkit::*;
    use netsleuth_model::ipsec::{ChildSa, IkeSa, IpsecAuth};
    use netsleuth_model::Secret;

    fn r(id: &str) -> &'static Rule {
        rule_by_id(RULES, id)
    }

    fn child(host: &str, line: u32, local: &str, remote: &str, esp: &[&str]) -> IpsecChild {
        IpsecChild {
            name: "net".into(),
            local_ts: vec![local.into()],
            remote_ts: vec![remote.into()],
            esp_proposals: esp.iter().map(|s| s.to_string()).collect(),
            mode: None,
            rekey_time: None,
            life_time: None,
            start_action: Some("trap".into()),
            dpd_action: Some("restart".into()),
            close_action: None,
            settings: Default::default(),
            origin: Location::line(format!("hosts/{host}/swanctl/swanctl.conf"), line),
        }
    }

    fn conn(host: &str, name: &str, remote: &str, ike: &[&str], ch: IpsecChild) -> IpsecConnection {
        IpsecConnection {
            name: name.into(),
            version: 2,
            local_addrs: vec![],
            remote_addrs: vec![remote.into()],
            proposals: ike.iter().map(|s| s.to_string()).collect(),
            local_auth: vec![IpsecAuth { round: "local".into(), auth: Some("psk".into()), id: None }],
            remote_auth: vec![IpsecAuth { round: "remote".into(), auth: Some("psk".into()), id: None }],
            children: vec![ch],
            rekey_time: None,
            reauth_time: None,
            over_time: None,
            dpd_delay: Some(30),
            dpd_timeout: None,
            encap: None,
            mobike: None,
            settings: Default::default(),
            origin: Location::line(format!("hosts/{host}/swanctl/swanctl.conf"), 2),
        }
    }

    fn site(name: &str, addr: &str) -> Host {
        let mut h = host(name);
        h.interfaces.push(iface(name, 1, "eth0", InterfaceKind::Physical, 1500, &[addr]));
        h
    }

    /// Two gateways A (198.51.100.1, 10.1/16) and B (203.0.113.1, 10.2/16), mirrored.
    fn pair_net(a_ike: &[&str], b_ike: &[&str], a_esp: &[&str], b_esp: &[&str]) -> Network {
        let mut a = site("site-a", "198.51.100.1/24");
        a.ipsec.connections.push(conn(
            "site-a",
            "to-b",
            "203.0.113.1",
            a_ike,
            child("site-a", 10, "10.1.0.0/16", "10.2.0.0/16", a_esp),
        ));
        let mut b = site("site-b", "203.0.113.1/24");
        b.ipsec.connections.push(conn(
            "site-b",
            "to-a",
            "198.51.100.1",
            b_ike,
            child("site-b", 10, "10.2.0.0/16", "10.1.0.0/16", b_esp),
        ));
        net(vec![a, b])
    }

    #[test]
    fn proposal_parsing_and_matching() {
        let a = parse_proposal("aes256gcm16-prfsha384-ecp384", Proto::Ike);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].get(TType::Prf).unwrap().iter().next().unwrap(), "prfsha384");
        assert!(a[0].get(TType::Integ).is_none());
        // PRF derived from integrity in IKE.
        let b = parse_proposal("aes128-sha256-modp3072", Proto::Ike);
        assert!(b[0].get(TType::Prf).unwrap().iter().any(|p| p == "prfsha256"));
        // `prf-sha384` is tolerated.
        let c = parse_proposal("aes256gcm16-prf-sha384-ecp384", Proto::Ike);
        assert_eq!(c, a);
        assert!(proposals_match(&b[0], &defaults(Proto::Ike)[0], Proto::Ike, false).is_ok());
        assert_eq!(proposals_match(&a[0], &b[0], Proto::Ike, false), Err(TType::Encr));
        // gcm128 is gcm16.
        let g = parse_proposal("aes128gcm128", Proto::Esp);
        assert!(lists_match(&g, &defaults(Proto::Esp), Proto::Esp, false));
        // ESN only on one side does not match the default noesn.
        let e = parse_proposal("aes128-sha256-esn", Proto::Esp);
        assert!(!lists_match(&e, &defaults(Proto::Esp), Proto::Esp, false));
        // ESP PFS: a group on one side only matches without KE, not with it; `none` makes it optional.
        let pfs = parse_proposal("aes128-sha256-modp2048", Proto::Esp);
        let nopfs = parse_proposal("aes128-sha256", Proto::Esp);
        assert!(lists_match(&pfs, &nopfs, Proto::Esp, true));
        assert!(!lists_match(&pfs, &nopfs, Proto::Esp, false));
        let optional = parse_proposal("aes128-sha256-modp2048-none", Proto::Esp);
        assert!(lists_match(&optional, &nopfs, Proto::Esp, false));
        // Mixed AEAD and classic is split in two.
        assert_eq!(parse_proposal("aes128gcm16-aes128-sha256", Proto::Esp).len(), 2);
    }

    #[test]
    fn tun010_no_common_ike_proposal() {
        let n = pair_net(&["aes256-sha256-modp2048"], &["aes256gcm16-prfsha384-ecp384"], &[], &[]);
        let out = run(r("TUN-010"), &n, None);
        assert_eq!(out.len(), 1, "{out:?}");
        let f = &out[0];
        assert_eq!(f.subject, "host/site-a/ipsec/to-b");
        assert!(f.detail.contains("no common encryption (aes256 vs aes256gcm16)"), "{}", f.detail);
        assert!(f.detail.contains("no common DH/KE group (modp2048 vs ecp384)"), "{}", f.detail);
        assert_eq!(f.evidence[0].location, Location::line("hosts/site-a/swanctl/swanctl.conf", 2));
        assert_eq!(f.evidence[1].location, Location::line("hosts/site-b/swanctl/swanctl.conf", 2));
        assert!(f.fix.contains("proposals = aes256-sha256-modp2048"));
    }

    #[test]
    fn tun010_ikev1_strips_additional_algorithms() {
        // IKEv2 would pick aes128 from A's list; IKEv1 only offers A's first cipher, aes256.
        let mut n = pair_net(&["aes256-aes128-sha256-modp2048"], &["aes128-sha256-modp2048"], &[], &[]);
        assert!(run(r("TUN-010"), &n, None).is_empty());
        n.hosts[0].ipsec.connections[0].version = 1;
        n.hosts[1].ipsec.connections[0].version = 1;
        let out = run(r("TUN-010"), &n, None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].detail.contains("no common encryption (aes256 vs aes128)"), "{}", out[0].detail);
    }

    #[test]
    fn tun010_default_accepts_common_suites_and_unrelated_hosts_are_not_paired() {
        let n = pair_net(&["aes256-sha256-modp2048"], &["default"], &[], &[]);
        assert!(run(r("TUN-010"), &n, None).is_empty());
        // A third host whose connection points at an address nobody has: no pair, no finding.
        let mut n2 = pair_net(&["aes256-sha256-modp2048"], &["aes256-sha256-modp2048"], &[], &[]);
        let mut c = site("site-c", "192.0.2.7/24");
        c.ipsec.connections.push(conn(
            "site-c",
            "to-x",
            "192.0.2.99",
            &["aes128gcm16-prfsha256-ecp256"],
            child("site-c", 4, "10.3.0.0/16", "10.9.0.0/16", &[]),
        ));
        n2.hosts.push(c);
        assert!(run(r("TUN-010"), &n2, None).is_empty());
    }

    #[test]
    fn tun011_no_common_esp_and_runtime_evidence() {
        let mut n = pair_net(&[], &[], &["aes256-sha256"], &["aes128gcm16"]);
        n.hosts[0].ipsec.sas_collected = true;
        n.hosts[0].artifacts.push("hosts/site-a/swanctl-list-sas.txt".into());
        n.hosts[0].ipsec.sas.push(IkeSa {
            name: "to-b".into(),
            unique_id: Some(3),
            version: Some(2),
            state: "ESTABLISHED".into(),
            local_host: None,
            local_id: None,
            remote_host: None,
            remote_id: None,
            algorithms: None,
            established_secs: None,
            rekey_in_secs: None,
            children: vec![],
            origin: Location::line("hosts/site-a/swanctl-list-sas.txt", 1),
        });
        let out = run(r("TUN-011"), &n, None);
        assert_eq!(out.len(), 1, "{out:?}");
        let f = &out[0];
        assert_eq!(f.subject, "host/site-a/ipsec/to-b/child/net");
        assert!(f.detail.contains("no common encryption (aes256 vs aes128gcm16)"), "{}", f.detail);
        // The IKE SA is up but the child is not installed: that is evidence, not a contradiction.
        assert_eq!(f.confidence, Confidence::Likely);
        assert_eq!(f.evidence[2].location, Location::line("hosts/site-a/swanctl-list-sas.txt", 1));
        assert_eq!(f.evidence[2].excerpt, "to-b: IKE SA ESTABLISHED, no INSTALLED CHILD_SA net");
    }

    #[test]
    fn tun011_pfs_only_difference_is_not_an_initial_failure() {
        let n = pair_net(&[], &[], &["aes256-sha256-modp2048"], &["aes256-sha256"]);
        assert!(run(r("TUN-011"), &n, None).is_empty());
        let out = run(r("TUN-015"), &n, None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            out[0].detail.contains("site-a/to-b offers modp2048, site-b/to-a offers none (no PFS)"),
            "{}",
            out[0].detail
        );
        assert!(out[0].detail.contains("life_time 3960 s"), "{}", out[0].detail);
    }

    #[test]
    fn tun012_disjoint_and_dynamic_selectors() {
        let mut n = pair_net(&[], &[], &[], &[]);
        n.hosts[1].ipsec.connections[0].children[0].local_ts = vec!["10.3.0.0/16".into()];
        let out = run(r("TUN-012"), &n, None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            out[0].detail.contains("site-a/to-b remote_ts 10.2.0.0/16 vs site-b/to-a local_ts 10.3.0.0/16"),
            "{}",
            out[0].detail
        );
        assert!(out[0].detail.contains("TS_UNACCEPTABLE"));
        assert_eq!(out[0].severity, Severity::High);

        // `dynamic` on A equals A's address as B's remote_ts: mirrored.
        let mut ok = pair_net(&[], &[], &[], &[]);
        ok.hosts[0].ipsec.connections[0].children[0].local_ts = vec!["dynamic".into()];
        ok.hosts[1].ipsec.connections[0].children[0].remote_ts = vec!["198.51.100.1/32".into()];
        assert!(run(r("TUN-012"), &ok, None).is_empty());
    }

    #[test]
    fn tun013_version_mismatch() {
        let mut n = pair_net(&[], &[], &[], &[]);
        n.hosts[0].ipsec.connections[0].version = 1;
        let out = run(r("TUN-013"), &n, None);
        assert_eq!(out.len(), 1);
        assert!(out[0].detail.contains("site-a/to-b uses IKEv1 and site-b/to-a uses IKEv2"), "{}", out[0].detail);
        n.hosts[1].ipsec.connections[0].version = 0;
        assert!(run(r("TUN-013"), &n, None).is_empty());
    }

    fn secret(host: &str, name: &str, ids: &[&str], fp: &str) -> IpsecSecret {
        IpsecSecret {
            name: name.into(),
            kind: "ike".into(),
            ids: ids.iter().map(|s| s.to_string()).collect(),
            secret: Some(Secret { fingerprint: fp.into() }),
            origin: Location::line(format!("hosts/{host}/swanctl/swanctl.conf"), 30),
        }
    }

    #[test]
    fn tun014_psk_fingerprints_differ() {
        let mut n = pair_net(&[], &[], &[], &[]);
        n.hosts[0].ipsec.secrets.push(secret("site-a", "ike-b", &["203.0.113.1"], "aaaa1111"));
        n.hosts[0].ipsec.secrets.push(secret("site-a", "ike-other", &["192.0.2.50"], "ffff0000"));
        n.hosts[1].ipsec.secrets.push(secret("site-b", "ike-a", &["198.51.100.1"], "bbbb2222"));
        let out = run(r("TUN-014"), &n, None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            out[0].detail.contains("(secrets.ike-b) differs from the one site-b/to-a uses (secrets.ike-a)"),
            "{}",
            out[0].detail
        );
        assert!(!out[0].detail.contains("aaaa1111") && !out[0].fix.contains("aaaa1111"));
        assert_eq!(out[0].evidence[0].excerpt, "secrets.ike-b ids 203.0.113.1");
        // Same fingerprint: fine.
        n.hosts[1].ipsec.secrets[0].secret = Some(Secret { fingerprint: "aaaa1111".into() });
        assert!(run(r("TUN-014"), &n, None).is_empty());
    }

    #[test]
    fn tun015_life_before_rekey_and_no_initiator() {
        let mut n = pair_net(&[], &[], &[], &[]);
        {
            let ca = &mut n.hosts[0].ipsec.connections[0].children[0];
            ca.rekey_time = Some(0);
            ca.life_time = Some(3600);
        }
        n.hosts[1].ipsec.connections[0].children[0].rekey_time = Some(0);
        let out = run(r("TUN-015"), &n, None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            out[0].detail.contains("life time of 3600 s before any side rekeys (rekeying disabled on both)"),
            "{}",
            out[0].detail
        );

        let mut m = pair_net(&[], &[], &[], &[]);
        for h in &mut m.hosts {
            let c = &mut h.ipsec.connections[0].children[0];
            c.start_action = None;
            c.dpd_action = None;
        }
        let out = run(r("TUN-015"), &m, None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].detail.contains("neither side initiates it"), "{}", out[0].detail);
        // The mirrored default pair has nothing to report.
        assert!(run(r("TUN-015"), &pair_net(&[], &[], &[], &[]), None).is_empty());
    }

    #[test]
    fn established_on_both_sides_lowers_confidence() {
        let mut n = pair_net(&["aes256-sha256-modp2048"], &["aes128gcm16-prfsha256-ecp256"], &[], &[]);
        for (i, name) in [(0usize, "to-b"), (1, "to-a")] {
            let hn = n.hosts[i].name.clone();
            n.hosts[i].ipsec.sas_collected = true;
            n.hosts[i].ipsec.sas.push(IkeSa {
                name: name.into(),
                unique_id: None,
                version: Some(2),
                state: "ESTABLISHED".into(),
                local_host: None,
                local_id: None,
                remote_host: None,
                remote_id: None,
                algorithms: None,
                established_secs: None,
                rekey_in_secs: None,
                children: vec![ChildSa {
                    name: "net".into(),
                    unique_id: None,
                    state: "INSTALLED".into(),
                    mode: None,
                    protocol: None,
                    udp_encap: false,
                    spi_in: None,
                    spi_out: None,
                    algorithms: None,
                    bytes_in: None,
                    packets_in: None,
                    bytes_out: None,
                    packets_out: None,
                    local_ts: vec![],
                    remote_ts: vec![],
                    origin: Location::line("x", 2),
                }],
                origin: Location::line(format!("hosts/{hn}/swanctl-list-sas.txt"), 1),
            });
        }
        let out = run(r("TUN-010"), &n, None);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].confidence, Confidence::Possible);
        assert!(out[0].detail.contains("loaded configuration may differ"));
    }
}
