//! Wire formats the live probes need: ICMPv4/ICMPv6 echo requests, and parsing of what a raw
//! ICMP socket receives (echo replies and errors quoting our probe). Every read is bounds-checked.
//!
//! Input from the network is untrusted: a parser returns `None` for anything short,
//! malformed or not ours, never panics, and never reads past the buffer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// ICMPv4 types and codes used by the probes.
pub(crate) const ICMP_ECHO_REPLY: u8 = 0;
pub(crate) const ICMP_DEST_UNREACH: u8 = 3;
pub(crate) const ICMP_ECHO_REQUEST: u8 = 8;
pub(crate) const ICMP_TIME_EXCEEDED: u8 = 11;

/// ICMPv6 types (RFC 4443).
const ICMP6_DEST_UNREACH: u8 = 1;
const ICMP6_PACKET_TOO_BIG: u8 = 2;
const ICMP6_TIME_EXCEEDED: u8 = 3;
const ICMP6_ECHO_REQUEST: u8 = 128;
const ICMP6_ECHO_REPLY: u8 = 129;

/// IP protocol numbers.
pub(crate) const PROTO_ICMP: u8 = 1;
pub(crate) const PROTO_ICMPV6: u8 = 58;

/// Internet checksum (RFC 1071) of `data`.
pub(crate) fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMPv4 echo request: 8-byte header then `payload_len` bytes of a fixed pattern.
pub(crate) fn echo_request(id: u16, seq: u16, payload_len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + payload_len);
    p.extend_from_slice(&[ICMP_ECHO_REQUEST, 0, 0, 0]);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend((0..payload_len).map(|i| (i % 251) as u8));
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// The fields of an IPv4 header the probes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ipv4Header {
    pub(crate) header_len: usize,
    pub(crate) total_len: usize,
    pub(crate) ttl: u8,
    pub(crate) protocol: u8,
    pub(crate) src: Ipv4Addr,
    pub(crate) dst: Ipv4Addr,
}

/// Parses an IPv4 header at the start of `b` (checked: version 4, IHL ≥ 5, fits).
pub(crate) fn parse_ipv4(b: &[u8]) -> Option<Ipv4Header> {
    let first = *b.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let header_len = usize::from(first & 0x0f) * 4;
    if header_len < 20 || b.len() < header_len {
        return None;
    }
    let total_len = usize::from(u16::from_be_bytes([b[2], b[3]]));
    Some(Ipv4Header {
        header_len,
        total_len,
        ttl: b[8],
        protocol: b[9],
        src: Ipv4Addr::new(b[12], b[13], b[14], b[15]),
        dst: Ipv4Addr::new(b[16], b[17], b[18], b[19]),
    })
}

/// What an ICMP message received on a raw socket says about one of our probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IcmpEvent {
    /// An echo reply to (id, seq), from `from`.
    EchoReply { from: IpAddr, id: u16, seq: u16 },
    /// An error about a packet we sent to `orig_dst`. For quoted echo requests `probe`
    /// is (id, seq); for other quoted protocols (UDP, TCP) it is the source and
    /// destination ports.
    Error { from: IpAddr, kind: IcmpError, orig_dst: IpAddr, orig_protocol: u8, probe: (u16, u16) },
}

/// The ICMP errors the probes tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IcmpError {
    /// TTL expired in transit (a hop of the path).
    TimeExceeded,
    NetUnreachable,
    HostUnreachable,
    ProtocolUnreachable,
    PortUnreachable,
    /// Fragmentation needed and DF set; the next-hop MTU when the router gave one.
    FragNeeded(Option<u16>),
    /// Communication administratively prohibited (codes 9, 10, 13): a firewall reject.
    Prohibited,
    /// Any other destination-unreachable code.
    OtherUnreachable(u8),
}

impl IcmpError {
    pub(crate) fn describe(self) -> String {
        match self {
            IcmpError::TimeExceeded => "time exceeded".into(),
            IcmpError::NetUnreachable => "network unreachable".into(),
            IcmpError::HostUnreachable => "host unreachable".into(),
            IcmpError::ProtocolUnreachable => "protocol unreachable".into(),
            IcmpError::PortUnreachable => "port unreachable".into(),
            IcmpError::FragNeeded(Some(m)) => format!("fragmentation needed (next-hop MTU {m})"),
            IcmpError::FragNeeded(None) => "fragmentation needed".into(),
            IcmpError::Prohibited => "communication administratively prohibited".into(),
            IcmpError::OtherUnreachable(c) => format!("destination unreachable (code {c})"),
        }
    }
}

/// Parses what a raw IPv4 ICMP socket returns (IP header + ICMP message). None for
/// messages that are neither an echo reply nor an error quoting an IPv4 packet.
pub(crate) fn parse_icmp(b: &[u8]) -> Option<IcmpEvent> {
    let ip = parse_ipv4(b)?;
    if ip.protocol != PROTO_ICMP {
        return None;
    }
    let end = ip.total_len.clamp(ip.header_len, b.len());
    let icmp = b.get(ip.header_len..end)?;
    if icmp.len() < 8 {
        return None;
    }
    let (typ, code) = (icmp[0], icmp[1]);
    let from = IpAddr::V4(ip.src);
    match typ {
        ICMP_ECHO_REPLY => Some(IcmpEvent::EchoReply {
            from,
            id: u16::from_be_bytes([icmp[4], icmp[5]]),
            seq: u16::from_be_bytes([icmp[6], icmp[7]]),
        }),
        ICMP_TIME_EXCEEDED | ICMP_DEST_UNREACH => {
            let kind = if typ == ICMP_TIME_EXCEEDED {
                IcmpError::TimeExceeded
            } else {
                match code {
                    0 => IcmpError::NetUnreachable,
                    1 => IcmpError::HostUnreachable,
                    2 => IcmpError::ProtocolUnreachable,
                    3 => IcmpError::PortUnreachable,
                    4 => {
                        let mtu = u16::from_be_bytes([icmp[6], icmp[7]]);
                        IcmpError::FragNeeded((mtu > 0).then_some(mtu))
                    }
                    9 | 10 | 13 => IcmpError::Prohibited,
                    c => IcmpError::OtherUnreachable(c),
                }
            };
            let quoted = icmp.get(8..)?;
            let orig = parse_ipv4(quoted)?;
            // RFC 792 guarantees the quoted header plus 8 bytes: ports or echo id/seq.
            let l4 = quoted.get(orig.header_len..orig.header_len + 8)?;
            let probe = if orig.protocol == PROTO_ICMP {
                (u16::from_be_bytes([l4[4], l4[5]]), u16::from_be_bytes([l4[6], l4[7]]))
            } else {
                (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]]))
            };
            Some(IcmpEvent::Error { from, kind, orig_dst: IpAddr::V4(orig.dst), orig_protocol: orig.protocol, probe })
        }
        _ => None,
    }
}

/// An ICMPv6 echo request. The checksum stays zero: for raw ICMPv6 sockets the kernel
/// computes it (it covers a pseudo-header with addresses only the kernel picks).
pub(crate) fn echo_request_v6(id: u16, seq: u16, payload_len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + payload_len);
    p.extend_from_slice(&[ICMP6_ECHO_REQUEST, 0, 0, 0]);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend((0..payload_len).map(|i| (i % 251) as u8));
    p
}

/// Parses an ICMPv6 message as a raw ICMPv6 socket returns it (no IPv6 header; the sender
/// `from` comes with the datagram). Quoted packets are read without extension headers
/// (the probes send none).
pub(crate) fn parse_icmpv6(icmp: &[u8], from: Ipv6Addr) -> Option<IcmpEvent> {
    if icmp.len() < 8 {
        return None;
    }
    let (typ, code) = (icmp[0], icmp[1]);
    let from = IpAddr::V6(from);
    let kind = match typ {
        ICMP6_ECHO_REPLY => {
            return Some(IcmpEvent::EchoReply {
                from,
                id: u16::from_be_bytes([icmp[4], icmp[5]]),
                seq: u16::from_be_bytes([icmp[6], icmp[7]]),
            })
        }
        ICMP6_TIME_EXCEEDED => IcmpError::TimeExceeded,
        ICMP6_PACKET_TOO_BIG => {
            let mtu = u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]);
            IcmpError::FragNeeded((mtu > 0).then(|| mtu.min(u32::from(u16::MAX)) as u16))
        }
        ICMP6_DEST_UNREACH => match code {
            0 => IcmpError::NetUnreachable,
            1 | 5 | 6 => IcmpError::Prohibited,
            3 => IcmpError::HostUnreachable,
            4 => IcmpError::PortUnreachable,
            c => IcmpError::OtherUnreachable(c),
        },
        _ => return None,
    };
    // The quote: the IPv6 header (40 bytes) of our packet, then at least 8 bytes of it.
    let quoted = icmp.get(8..)?;
    if quoted.len() < 48 || quoted[0] >> 4 != 6 {
        return None;
    }
    let next = quoted[6];
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&quoted[24..40]);
    let l4 = &quoted[40..48];
    let probe = if next == PROTO_ICMPV6 {
        (u16::from_be_bytes([l4[4], l4[5]]), u16::from_be_bytes([l4[6], l4[7]]))
    } else {
        (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]]))
    };
    Some(IcmpEvent::Error { from, kind, orig_dst: IpAddr::V6(Ipv6Addr::from(dst)), orig_protocol: next, probe })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
        let total = 20 + payload.len();
        let mut h = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, proto, 0, 0];
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        let c = checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3 example: sum of these words is 0xddf2 → checksum 0x220d.
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0x220d);
        // Odd length pads with zero.
        assert_eq!(checksum(&[0xff]), !0xff00);
        let p = echo_request(0x1234, 7, 13);
        assert_eq!(p.len(), 21);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
    }

    #[test]
    fn parses_echo_reply_and_errors() {
        let mut reply = echo_request(9, 3, 4);
        reply[0] = ICMP_ECHO_REPLY;
        let pkt = ipv4([10, 0, 0, 1], [10, 0, 0, 2], PROTO_ICMP, &reply);
        assert_eq!(
            parse_icmp(&pkt),
            Some(IcmpEvent::EchoReply { from: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), id: 9, seq: 3 })
        );

        let probe = ipv4([10, 0, 0, 2], [192, 0, 2, 9], PROTO_ICMP, &echo_request(9, 300, 0));
        let mut err = vec![ICMP_TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0];
        err.extend_from_slice(&probe);
        let pkt = ipv4([10, 0, 0, 254], [10, 0, 0, 2], PROTO_ICMP, &err);
        assert_eq!(
            parse_icmp(&pkt),
            Some(IcmpEvent::Error {
                from: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254)),
                kind: IcmpError::TimeExceeded,
                orig_dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
                orig_protocol: PROTO_ICMP,
                probe: (9, 300),
            })
        );

        let udp = ipv4([10, 0, 0, 2], [192, 0, 2, 9], 17, &[0x9c, 0x40, 0x13, 0x89, 0, 8, 0, 0]);
        let mut err = vec![ICMP_DEST_UNREACH, 4, 0, 0, 0, 0, 0x05, 0x8c];
        err.extend_from_slice(&udp);
        let pkt = ipv4([10, 0, 0, 1], [10, 0, 0, 2], PROTO_ICMP, &err);
        match parse_icmp(&pkt) {
            Some(IcmpEvent::Error { kind, probe, orig_protocol, .. }) => {
                assert_eq!(kind, IcmpError::FragNeeded(Some(1420)));
                assert_eq!(probe, (40000, 5001));
                assert_eq!(orig_protocol, 17);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn parses_icmpv6() {
        let me: Ipv6Addr = "fd00::1".parse().expect("ip");
        let router: Ipv6Addr = "fd00::fe".parse().expect("ip");
        let target: Ipv6Addr = "2001:db8::9".parse().expect("ip");
        let mut reply = echo_request_v6(7, 2, 4);
        reply[0] = ICMP6_ECHO_REPLY;
        assert_eq!(
            parse_icmpv6(&reply, target),
            Some(IcmpEvent::EchoReply { from: IpAddr::V6(target), id: 7, seq: 2 })
        );
        // Time exceeded quoting our echo request (IPv6 header + echo header).
        let mut quoted = vec![0x60, 0, 0, 0, 0, 8, PROTO_ICMPV6, 1];
        quoted.extend_from_slice(&me.octets());
        quoted.extend_from_slice(&target.octets());
        quoted.extend_from_slice(&echo_request_v6(7, 300, 0));
        let mut err = vec![ICMP6_TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0];
        err.extend_from_slice(&quoted);
        assert_eq!(
            parse_icmpv6(&err, router),
            Some(IcmpEvent::Error {
                from: IpAddr::V6(router),
                kind: IcmpError::TimeExceeded,
                orig_dst: IpAddr::V6(target),
                orig_protocol: PROTO_ICMPV6,
                probe: (7, 300),
            })
        );
        let mut ptb = vec![ICMP6_PACKET_TOO_BIG, 0, 0, 0, 0, 0, 0x05, 0x00];
        ptb.extend_from_slice(&quoted);
        assert!(matches!(
            parse_icmpv6(&ptb, router),
            Some(IcmpEvent::Error { kind: IcmpError::FragNeeded(Some(1280)), .. })
        ));
        let mut admin = vec![ICMP6_DEST_UNREACH, 1, 0, 0, 0, 0, 0, 0];
        admin.extend_from_slice(&quoted);
        assert!(matches!(parse_icmpv6(&admin, router), Some(IcmpEvent::Error { kind: IcmpError::Prohibited, .. })));
        // Truncated quotes and unknown types are ignored; no prefix panics.
        assert_eq!(parse_icmpv6(&err[..30], router), None);
        assert_eq!(parse_icmpv6(&echo_request_v6(1, 1, 0), router), None, "our own request is not an answer");
        for n in 0..err.len() {
            let _ = parse_icmpv6(&err[..n], router);
        }
    }

    #[test]
    fn rejects_truncated_and_foreign_input() {
        assert_eq!(parse_icmp(&[]), None);
        assert_eq!(parse_icmp(&[0x45; 19]), None);
        assert_eq!(parse_icmp(&[0x60; 40]), None, "IPv6 is not parsed here");
        // An error whose quote is cut short is ignored, not read past the end.
        let probe = ipv4([10, 0, 0, 2], [192, 0, 2, 9], PROTO_ICMP, &echo_request(1, 1, 0));
        let mut err = vec![ICMP_TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0];
        err.extend_from_slice(&probe[..24]);
        let pkt = ipv4([10, 0, 0, 254], [10, 0, 0, 2], PROTO_ICMP, &err);
        assert_eq!(parse_icmp(&pkt), None);
        // A header claiming more length than received is clamped to what is there.
        let mut reply = echo_request(1, 1, 0);
        reply[0] = ICMP_ECHO_REPLY;
        let mut pkt = ipv4([10, 0, 0, 1], [10, 0, 0, 2], PROTO_ICMP, &reply);
        pkt[2] = 0xff;
        assert!(matches!(parse_icmp(&pkt), Some(IcmpEvent::EchoReply { .. })));
        // Every prefix of a valid packet parses or is rejected without panicking.
        for n in 0..pkt.len() {
            let _ = parse_icmp(&pkt[..n]);
        }
    }
}
