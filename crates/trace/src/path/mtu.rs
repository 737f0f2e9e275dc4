//! Packet size along the path: the egress MTU of every interface the packet leaves through,
//! the MTU of the interface that receives it on the next host, tunnel overhead on the
//! underlay, and what a packet that does not fit becomes (fragments, an ICMP
//! fragmentation-needed answer, or a silent drop).
//!
//! Semantics (documented in docs/trace.md):
//! - Bigger than a *receiving* interface's MTU: dropped silently (a veth drops frames over
//!   its peer's MTU, NICs drop oversized frames; no ICMP is sent, PMTUD cannot help).
//! - Bigger than an *egress* MTU with DF: the host answers ICMP fragmentation-needed. With
//!   an explicit `--size` the traced packet is dropped there (as `ping -M do -s` sees it);
//!   with the default size the trace follows the traffic as PMTUD settles it (the size drops
//!   to that MTU; assumption: the ICMP reaches the source).
//! - Without DF: fragmented to the egress MTU; the fragments are traced on.

use netsleuth_model::host::{Host, Interface, InterfaceKind, Route};
use netsleuth_model::{Evidence, Layer};

use super::walk::Walk;
use super::{Action, Disposition, DispositionKind, HopMtu, IfaceMtu};

/// The MTU a packet leaving `dev` must fit: the interface's MTU (or the WireGuard
/// configuration's `MTU =` when the link is not in `ip link`), lowered by a per-route
/// `mtu` when the route sets one. The evidence says where it comes from.
pub(super) fn egress_mtu(h: &Host, dev: &str, route: Option<&Route>) -> Option<(u32, Evidence)> {
    let iface =
        h.interface(dev).and_then(|i| i.mtu.map(|m| (m, Evidence::new(i.origin.clone(), format!("{dev} mtu {m}")))));
    let wg = || {
        h.wireguard
            .iter()
            .find(|x| x.name == dev)
            .and_then(|x| x.mtu.map(|m| (m, Evidence::new(x.origin.clone(), format!("{dev} MTU = {m}")))))
    };
    let base = iface.or_else(wg);
    let by_route =
        route.and_then(|r| r.mtu.map(|m| (m, Evidence::new(r.origin.clone(), format!("route {} mtu {m}", r.dst)))));
    match (base, by_route) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// The interface of `next` that receives what `here` sends out of `dev`: the veth peer
/// (our `link` is `if<N>`, the peer's index, and the peer's `link` names our index), else
/// the interface holding the next-hop address. Tunnel devices are left out: their receive
/// path decapsulates without checking the inner packet against the device MTU.
pub(super) fn receiving_iface<'h>(
    here: &Host,
    dev: &str,
    next: &'h Host,
    holder: Option<&'h Interface>,
) -> Option<&'h Interface> {
    let out = here.interface(dev);
    if let Some(out) = out.filter(|o| o.kind == InterfaceKind::Veth) {
        if let Some(link) = out.link.as_deref() {
            let idx = link.strip_prefix("if").and_then(|n| n.parse::<u32>().ok());
            let cands: Vec<&Interface> = next
                .interfaces
                .iter()
                .filter(|i| i.kind == InterfaceKind::Veth && (i.name == link || (idx.is_some() && i.index == idx)))
                .collect();
            let back = out.index.map(|i| format!("if{i}"));
            let mutual =
                cands.iter().find(|c| c.link.as_deref().is_some_and(|l| Some(l) == back.as_deref() || l == out.name));
            // Interface indexes are per namespace: one candidate that does not point back is
            // still taken (older `ip` versions omit `link_index` on one side), several are not.
            if let Some(c) = mutual.or(if cands.len() == 1 { cands.first() } else { None }) {
                return Some(c);
            }
        }
    }
    holder.filter(|i| i.kind.encapsulation_overhead(false).is_none() && !matches!(i.kind, InterfaceKind::Tun))
}

/// Bytes an encapsulation adds to a packet of `inner` bytes; `v6` is the outer family.
/// WireGuard pads the plaintext to 16 bytes; ESP (tunnel mode) is approximated with the
/// worst case of AES-CBC + HMAC-SHA-256 (16-byte IV and ICV, up to 15 bytes padding).
pub(super) fn overhead(kind: &InterfaceKind, inner: u32, v6: bool) -> u32 {
    let base = kind.encapsulation_overhead(v6).unwrap_or(0);
    if *kind == InterfaceKind::WireGuard {
        return base + inner.div_ceil(16) * 16 - inner;
    }
    base
}

/// ESP tunnel-mode overhead (approximate: outer IP, SPI/sequence, IV, padding, trailer, ICV;
/// plus 8 bytes of UDP with NAT traversal).
pub(super) fn esp_overhead(v6: bool, udp_encap: bool) -> u32 {
    (if v6 { 40 } else { 20 }) + 8 + 16 + 15 + 2 + 16 + if udp_encap { 8 } else { 0 }
}

impl Walk<'_, '_> {
    /// Sets the `mtu` record of the last hop from the pending egress check and `ingress`.
    pub(super) fn tag_mtu(&mut self, ingress: Option<IfaceMtu>) {
        let Some(size) = self.size else { return };
        let egress = self.egress.take();
        if egress.is_none() && ingress.is_none() {
            return;
        }
        if let Some(h) = self.hops.last_mut() {
            h.mtu = Some(HopMtu { size, egress, ingress });
        }
    }
}

/// The packet leaves `host` through `dev`: checks the size against the egress MTU.
/// None: it goes on (possibly smaller: fragments, or as PMTUD settles it); Some: it ends.
pub(super) fn check_egress(
    w: &mut Walk<'_, '_>,
    at: usize,
    dev: &str,
    route: Option<&Route>,
    arrived: bool,
) -> Option<Disposition> {
    w.size?;
    let h = w.host(at);
    let Some((mtu, ev)) = egress_mtu(h, dev, route) else {
        if h.interface(dev).is_some() || !h.interfaces.is_empty() {
            let name = h.name.clone();
            w.assume(format!("the MTU of {dev} on {name} is not in the bundle: not checked"));
        }
        return None;
    };
    check_size(w, at, dev, mtu, ev, arrived)
}

/// IPsec tunnel mode: the kernel checks the inner packet against the path MTU of the outer
/// packets minus the ESP overhead (approximate) and, with DF, answers fragmentation-needed.
pub(super) fn check_esp(
    w: &mut Walk<'_, '_>,
    at: usize,
    remote: std::net::IpAddr,
    udp_encap: bool,
    arrived: bool,
) -> Option<Disposition> {
    w.size?;
    let h = w.host(at);
    let super::walk::Lookup::Route(r, _) = super::walk::route_lookup(h, None, remote, None) else { return None };
    let dev = r.dev.as_deref()?;
    let (mtu, ev) = egress_mtu(h, dev, Some(r))?;
    let oh = esp_overhead(!remote.is_ipv4(), udp_encap);
    let inner = mtu.saturating_sub(oh);
    let label = format!("ESP over {dev}");
    let ev = Evidence::new(ev.location, format!("{} (ESP overhead ≈{oh} bytes: ≈{inner} inside)", ev.excerpt));
    check_size(w, at, &label, inner, ev, arrived)
}

/// The packet must fit `mtu` on the way out of `at` through `dev` (an interface name, or a
/// label such as `ESP over eth0`).
fn check_size(
    w: &mut Walk<'_, '_>,
    at: usize,
    dev: &str,
    mtu: u32,
    ev: Evidence,
    arrived: bool,
) -> Option<Disposition> {
    let size = w.size?;
    let name = w.host(at).name.clone();
    let egress = IfaceMtu { host: name.clone(), interface: dev.to_string(), mtu };
    if size <= mtu {
        w.egress = Some(egress);
        return None;
    }
    let component = format!("host/{name} iface {dev}");
    let src = w.pkt.src;
    // IPv6 routers never fragment (only the source may): they always answer Packet Too Big.
    let df = w.df || (arrived && !w.pkt.dst.is_ipv4());
    if !df {
        // Without DF the sender (or the router) fragments: the fragments travel on.
        let who = if arrived { format!("{name} fragments it") } else { "the source fragments it".to_string() };
        w.hop(
            Layer::Node,
            component,
            Action::Forward,
            format!("{size}-byte packet is bigger than {dev}'s MTU {mtu} and DF is not set: {who} into fragments of at most {mtu} bytes"),
            vec![ev],
        );
        set_last(w, HopMtu { size, egress: Some(egress), ingress: None });
        w.size = Some(mtu);
        return None;
    }
    if !arrived {
        // The sending stack itself knows its MTU: TCP segments to fit, a DF datagram fails.
        if w.size_explicit && w.pkt.proto != super::Protocol::Tcp {
            w.hop(
                Layer::Node,
                component,
                Action::Drop,
                format!("{size}-byte packet with DF is bigger than {dev}'s MTU {mtu}: sendmsg fails with EMSGSIZE (Message too long); at most {mtu} bytes fit"),
                vec![ev],
            );
            set_last(w, HopMtu { size, egress: Some(egress), ingress: None });
            return Some(w.end(
                DispositionKind::Dropped,
                format!("{size} bytes with DF do not fit {dev}'s MTU {mtu} on {name} (the source's own interface)"),
            ));
        }
        w.assume(format!("{name} sends at most {mtu} bytes on {dev} (its MTU): the packet is traced at {mtu} bytes"));
        w.size = Some(mtu);
        w.egress = Some(IfaceMtu { mtu, ..egress });
        return None;
    }
    let (flag, err) = if src.is_ipv4() {
        ("with DF", "ICMP fragmentation-needed")
    } else {
        ("(IPv6: routers do not fragment)", "ICMPv6 packet-too-big")
    };
    let icmp = format!(
        "{size}-byte packet {flag} is bigger than {dev}'s MTU {mtu}: {name} drops it and sends {err} (MTU {mtu}) to {src}"
    );
    if w.size_explicit {
        w.hop(
            Layer::Node,
            component,
            Action::Drop,
            format!(
                "{icmp}; needs PMTUD: {err} must reach the source, which then sends at most {mtu} bytes (TCP: MSS {})",
                mtu.saturating_sub(if src.is_ipv4() { 40 } else { 60 })
            ),
            vec![ev],
        );
        set_last(w, HopMtu { size, egress: Some(egress), ingress: None });
        return Some(w.end(
            DispositionKind::Dropped,
            format!(
                "{size} bytes with DF do not fit {dev}'s MTU {mtu} on {name}: fragmentation needed (path MTU {mtu})"
            ),
        ));
    }
    // The default size follows the traffic as it settles: PMTUD lowers it to this MTU.
    w.hop(
        Layer::Node,
        component,
        Action::Forward,
        format!("{icmp}; PMTUD: the source then sends at most {mtu} bytes"),
        vec![ev],
    );
    set_last(w, HopMtu { size, egress: Some(egress), ingress: None });
    w.assume(format!(
        "{err} from {name} reaches {src} (path MTU discovery works); if it is filtered on the way back, packets over {mtu} bytes black-hole (--size {size} traces that packet)"
    ));
    w.size = Some(mtu);
    None
}

/// The packet arrives on `rx` of host `nname`: bigger than its MTU, it is dropped silently.
/// Returns the ingress record, or the disposition of a drop (the hop is recorded).
pub(super) fn check_ingress(
    w: &mut Walk<'_, '_>,
    nname: &str,
    rx: &Interface,
    sender: &str,
) -> Result<Option<IfaceMtu>, Disposition> {
    let (Some(size), Some(mtu)) = (w.size, rx.mtu) else { return Ok(None) };
    let ingress = IfaceMtu { host: nname.to_string(), interface: rx.name.clone(), mtu };
    if size <= mtu {
        return Ok(Some(ingress));
    }
    let egress = w.egress.take();
    let sent = egress.as_ref().map(|e| format!(" ({sender} has MTU {})", e.mtu)).unwrap_or_default();
    let fix = match &egress {
        Some(e) => format!(
            "set both ends to the same MTU (lower {} on {} to {mtu}, or raise {} on {nname})",
            e.interface, e.host, rx.name
        ),
        None => format!("lower the sender's MTU to {mtu}"),
    };
    w.hop(
        Layer::Node,
        format!("host/{nname} iface {}", rx.name),
        Action::Drop,
        format!(
            "{size}-byte packet is bigger than the receiving interface {}'s MTU {mtu} on {nname}{sent}: dropped silently on receive, no ICMP (PMTUD cannot help); {fix}",
            rx.name
        ),
        vec![Evidence::new(rx.origin.clone(), format!("{} mtu {mtu}", rx.name))],
    );
    if let Some(h) = w.hops.last_mut() {
        h.mtu = Some(HopMtu { size, egress, ingress: Some(ingress) });
    }
    Err(w.end(
        DispositionKind::Dropped,
        format!("MTU mismatch: {size} bytes do not fit {}'s MTU {mtu} on {nname}: dropped silently", rx.name),
    ))
}

/// The largest TCP segment (IP bytes) the stacks settle on: a host on the path that clamps
/// the MSS (`tcp option maxseg size set N|rt mtu`, `TCPMSS --set-mss N|--clamp-mss-to-pmtu`)
/// caps it for both directions. Returns the cap and the evidence; `rt mtu` is resolved
/// against `path_mtu` (the egress MTU the packet met on that host).
pub(super) fn mss_clamp(h: &Host, v6: bool, path_mtu: Option<u32>) -> Option<(u32, Evidence)> {
    let hdr = if v6 { 60 } else { 40 };
    let mut best: Option<(u32, Evidence)> = None;
    for rs in h.nftables.iter().chain(h.iptables.iter()) {
        for t in &rs.tables {
            for c in &t.chains {
                for r in &c.rules {
                    let Some(netsleuth_model::firewall::Verdict::Other(v)) = &r.verdict else { continue };
                    let mss = if let Some(n) =
                        v.strip_prefix("tcp option maxseg size set ").or_else(|| v.strip_prefix("TCPMSS --set-mss "))
                    {
                        match n.trim().parse::<u32>() {
                            Ok(n) => Some(n),
                            Err(_) if n.trim() == "rt mtu" => path_mtu.map(|m| m.saturating_sub(hdr)),
                            Err(_) => None,
                        }
                    } else if v.trim() == "TCPMSS --clamp-mss-to-pmtu" {
                        path_mtu.map(|m| m.saturating_sub(hdr))
                    } else {
                        None
                    };
                    if let Some(mss) = mss {
                        let cap = mss + hdr;
                        if best.as_ref().is_none_or(|(b, _)| cap < *b) {
                            best = Some((cap, Evidence::new(r.origin.clone(), r.text.clone())));
                        }
                    }
                }
            }
        }
    }
    best
}

/// Records the `mtu` of the hop just pushed.
fn set_last(w: &mut Walk<'_, '_>, m: HopMtu) {
    if let Some(h) = w.hops.last_mut() {
        h.mtu = Some(m);
    }
}
