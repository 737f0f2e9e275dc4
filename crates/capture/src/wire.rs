//! Packet decoders for the link, network and transport headers netsleuth looks at.
//! smoltcp-style: every accessor is checked, so untrusted bytes give an error, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// pcap link types this module decodes (LINKTYPE_* values from tcpdump.org).
pub mod linktype {
    pub const NULL: i32 = 0;
    pub const ETHERNET: i32 = 1;
    pub const RAW: i32 = 101;
    pub const LOOP: i32 = 108;
    pub const LINUX_SLL: i32 = 113;
    pub const IPV4: i32 = 228;
    pub const IPV6: i32 = 229;
    pub const LINUX_SLL2: i32 = 276;
}

/// Why a packet could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end before the named header does.
    Truncated(&'static str),
    /// The named header has an impossible value (bad version, length smaller than the header).
    Malformed(&'static str),
    /// A link type this decoder does not know.
    UnsupportedLink(i32),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated(what) => write!(f, "{what} header truncated"),
            DecodeError::Malformed(what) => write!(f, "malformed {what} header"),
            DecodeError::UnsupportedLink(lt) => write!(f, "unsupported link type {lt}"),
        }
    }
}

pub(crate) fn be16(d: &[u8], off: usize) -> Option<u16> {
    let b = d.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

pub(crate) fn be32(d: &[u8], off: usize) -> Option<u32> {
    let b = d.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([*b.first()?, *b.get(1)?, *b.get(2)?, *b.get(3)?]))
}

fn le32(d: &[u8], off: usize) -> Option<u32> {
    be32(d, off).map(u32::swap_bytes)
}

/// An IPv4 or IPv6 packet as far as it was captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpPacket<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Transport protocol (IPv6: after extension headers).
    pub proto: u8,
    /// The transport bytes that were captured (may be fewer than `l4_len`).
    pub payload: &'a [u8],
    /// Transport length the header claims, whatever the capture kept.
    pub l4_len: usize,
    /// A non-first fragment: `payload` does not start with a transport header.
    pub later_fragment: bool,
    /// Total length on the wire as the IP header claims.
    pub total_len: usize,
    /// IPv4 don't-fragment bit (always true for IPv6, which routers never fragment).
    pub dont_fragment: bool,
    /// A fragment of a larger datagram (IPv4 more-fragments bit or offset, IPv6 fragment header).
    pub fragment: bool,
    /// The first fragment of a fragmented datagram (offset 0, more fragments follow).
    pub first_fragment: bool,
}

/// Decodes one captured frame of `linktype` down to IP. `Ok(None)`: a frame that is not IP
/// (ARP, LLDP ...), which is normal traffic and not an error.
pub fn decode_link(linktype: i32, data: &[u8]) -> Result<Option<IpPacket<'_>>, DecodeError> {
    match linktype {
        linktype::ETHERNET => {
            let ethertype = be16(data, 12).ok_or(DecodeError::Truncated("Ethernet"))?;
            decode_ethertype(ethertype, data.get(14..).unwrap_or_default())
        }
        linktype::LINUX_SLL => {
            let proto = be16(data, 14).ok_or(DecodeError::Truncated("Linux cooked (SLL)"))?;
            decode_ethertype(proto, data.get(16..).unwrap_or_default())
        }
        linktype::LINUX_SLL2 => {
            let proto = be16(data, 0).ok_or(DecodeError::Truncated("Linux cooked (SLL2)"))?;
            if data.len() < 20 {
                return Err(DecodeError::Truncated("Linux cooked (SLL2)"));
            }
            decode_ethertype(proto, data.get(20..).unwrap_or_default())
        }
        linktype::NULL | linktype::LOOP => {
            // NULL stores the address family in the writer's byte order, LOOP in network
            // order; BSD AF_INET6 differs per OS (24, 28, 30), so accept all of them.
            let le = le32(data, 0).ok_or(DecodeError::Truncated("loopback"))?;
            let be = be32(data, 0).ok_or(DecodeError::Truncated("loopback"))?;
            let rest = data.get(4..).unwrap_or_default();
            match (le, be) {
                (2, _) | (_, 2) => decode_ipv4(rest).map(Some),
                (24 | 28 | 30, _) | (_, 24 | 28 | 30) => decode_ipv6(rest).map(Some),
                _ => Ok(None),
            }
        }
        linktype::RAW | linktype::IPV4 | linktype::IPV6 => decode_ip(data).map(Some),
        other => Err(DecodeError::UnsupportedLink(other)),
    }
}

fn decode_ip(data: &[u8]) -> Result<IpPacket<'_>, DecodeError> {
    match data.first().map(|b| b >> 4) {
        Some(4) => decode_ipv4(data),
        Some(6) => decode_ipv6(data),
        Some(_) => Err(DecodeError::Malformed("IP (version)")),
        None => Err(DecodeError::Truncated("IP")),
    }
}

/// Follows an EtherType through up to four VLAN tags (802.1Q, 802.1ad, QinQ).
fn decode_ethertype(mut ethertype: u16, mut data: &[u8]) -> Result<Option<IpPacket<'_>>, DecodeError> {
    for _ in 0..4 {
        match ethertype {
            0x0800 => return decode_ipv4(data).map(Some),
            0x86dd => return decode_ipv6(data).map(Some),
            0x8100 | 0x88a8 | 0x9100 => {
                ethertype = be16(data, 2).ok_or(DecodeError::Truncated("VLAN"))?;
                data = data.get(4..).unwrap_or_default();
            }
            _ => return Ok(None),
        }
    }
    Ok(None)
}

fn decode_ipv4(d: &[u8]) -> Result<IpPacket<'_>, DecodeError> {
    let first = *d.first().ok_or(DecodeError::Truncated("IPv4"))?;
    if first >> 4 != 4 {
        return Err(DecodeError::Malformed("IPv4 (version)"));
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 {
        return Err(DecodeError::Malformed("IPv4 (header length)"));
    }
    if d.len() < ihl {
        return Err(DecodeError::Truncated("IPv4"));
    }
    let total = usize::from(be16(d, 2).ok_or(DecodeError::Truncated("IPv4"))?);
    if total < ihl {
        return Err(DecodeError::Malformed("IPv4 (total length)"));
    }
    let frag = be16(d, 6).ok_or(DecodeError::Truncated("IPv4"))?;
    let proto = *d.get(9).ok_or(DecodeError::Truncated("IPv4"))?;
    let addr = |off: usize| -> Result<IpAddr, DecodeError> {
        let b = d.get(off..off + 4).ok_or(DecodeError::Truncated("IPv4"))?;
        let a: [u8; 4] = b.try_into().map_err(|_| DecodeError::Truncated("IPv4"))?;
        Ok(IpAddr::V4(Ipv4Addr::from(a)))
    };
    let end = total.min(d.len());
    Ok(IpPacket {
        src: addr(12)?,
        dst: addr(16)?,
        proto,
        payload: d.get(ihl..end).unwrap_or_default(),
        l4_len: total - ihl,
        later_fragment: frag & 0x1fff != 0,
        total_len: total,
        dont_fragment: frag & 0x4000 != 0,
        fragment: frag & 0x3fff != 0,
        first_fragment: frag & 0x3fff == 0x2000,
    })
}

fn decode_ipv6(d: &[u8]) -> Result<IpPacket<'_>, DecodeError> {
    if d.len() < 40 {
        return Err(DecodeError::Truncated("IPv6"));
    }
    if d.first().map(|b| b >> 4) != Some(6) {
        return Err(DecodeError::Malformed("IPv6 (version)"));
    }
    let plen = usize::from(be16(d, 4).ok_or(DecodeError::Truncated("IPv6"))?);
    let mut next = *d.get(6).ok_or(DecodeError::Truncated("IPv6"))?;
    let addr = |off: usize| -> Result<IpAddr, DecodeError> {
        let b = d.get(off..off + 16).ok_or(DecodeError::Truncated("IPv6"))?;
        let a: [u8; 16] = b.try_into().map_err(|_| DecodeError::Truncated("IPv6"))?;
        Ok(IpAddr::V6(Ipv6Addr::from(a)))
    };
    let (src, dst) = (addr(8)?, addr(24)?);
    let end = 40usize.saturating_add(plen).min(d.len());
    let mut rest = d.get(40..end).unwrap_or_default();
    let mut l4_len = plen;
    let mut later_fragment = false;
    let (mut fragment, mut first_fragment) = (false, false);
    // Extension headers: hop-by-hop, routing, fragment, destination options (bounded count).
    for _ in 0..8 {
        let hlen = match next {
            0 | 43 | 60 => (usize::from(*rest.get(1).ok_or(DecodeError::Truncated("IPv6 extension"))?) + 1) * 8,
            44 => {
                let off = be16(rest, 2).ok_or(DecodeError::Truncated("IPv6 fragment"))?;
                later_fragment = off & 0xfff8 != 0;
                fragment = true;
                first_fragment = off & 0xfff9 == 1;
                8
            }
            _ => break,
        };
        next = *rest.first().ok_or(DecodeError::Truncated("IPv6 extension"))?;
        rest = rest.get(hlen..).ok_or(DecodeError::Truncated("IPv6 extension"))?;
        l4_len = l4_len.checked_sub(hlen).ok_or(DecodeError::Malformed("IPv6 (payload length)"))?;
    }
    Ok(IpPacket {
        src,
        dst,
        proto: next,
        payload: rest,
        l4_len,
        later_fragment,
        total_len: plen.saturating_add(40),
        dont_fragment: true,
        fragment,
        first_fragment,
    })
}

/// TCP flag bits.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// A TCP segment header with the options netsleuth reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    /// Payload length as the IP header claims (not what the capture kept).
    pub payload_len: usize,
    /// The captured payload bytes.
    pub payload: &'a [u8],
}

impl<'a> TcpSegment<'a> {
    /// Checks and decodes a TCP header; `l4_len` is the length the IP header claims.
    pub fn new_checked(d: &'a [u8], l4_len: usize) -> Result<TcpSegment<'a>, DecodeError> {
        let t = |v: Option<u32>| v.ok_or(DecodeError::Truncated("TCP"));
        let ports = t(be32(d, 0))?;
        let seq = t(be32(d, 4))?;
        let ack = t(be32(d, 8))?;
        let off_flags = t(be16(d, 12).map(u32::from))?;
        let window = t(be16(d, 14).map(u32::from))?;
        let doff = ((off_flags >> 12) as usize) * 4;
        if doff < 20 || doff > l4_len {
            return Err(DecodeError::Malformed("TCP (data offset)"));
        }
        let (mut mss, mut window_scale) = (None, None);
        // Options may be cut by the snap length; read what is there.
        let opts = d.get(20..doff.min(d.len())).unwrap_or_default();
        let mut i = 0usize;
        while let Some(&kind) = opts.get(i) {
            match kind {
                0 => break,
                1 => i += 1,
                _ => {
                    let len = usize::from(*opts.get(i + 1).unwrap_or(&0));
                    if len < 2 {
                        break;
                    }
                    match kind {
                        2 => mss = be16(opts, i + 2).filter(|_| len == 4),
                        3 => window_scale = opts.get(i + 2).copied().filter(|_| len == 3),
                        _ => {}
                    }
                    i += len;
                }
            }
        }
        Ok(TcpSegment {
            src_port: (ports >> 16) as u16,
            dst_port: (ports & 0xffff) as u16,
            seq,
            ack,
            flags: (off_flags & 0xff) as u8,
            window: window as u16,
            mss,
            window_scale,
            payload_len: l4_len - doff,
            payload: d.get(doff..).unwrap_or_default(),
        })
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// A UDP datagram header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    /// Payload length as the UDP header claims.
    pub payload_len: usize,
    /// The captured payload bytes.
    pub payload: &'a [u8],
}

impl<'a> UdpDatagram<'a> {
    pub fn new_checked(d: &'a [u8]) -> Result<UdpDatagram<'a>, DecodeError> {
        let src_port = be16(d, 0).ok_or(DecodeError::Truncated("UDP"))?;
        let dst_port = be16(d, 2).ok_or(DecodeError::Truncated("UDP"))?;
        let len = usize::from(be16(d, 4).ok_or(DecodeError::Truncated("UDP"))?);
        if len < 8 {
            return Err(DecodeError::Malformed("UDP (length)"));
        }
        let end = len.min(d.len());
        Ok(UdpDatagram { src_port, dst_port, payload_len: len - 8, payload: d.get(8..end).unwrap_or_default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_udp(payload: &[u8]) -> Vec<u8> {
        let total = 28 + payload.len();
        let mut v = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, 17, 0, 0];
        v.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        v.extend_from_slice(&[0x30, 0x39, 0, 53, 0, (8 + payload.len()) as u8, 0, 0]);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn ethernet_vlan_ipv4_udp() {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a, 0x08, 0x00]);
        frame.extend_from_slice(&ipv4_udp(b"abc"));
        let ip = decode_link(linktype::ETHERNET, &frame).unwrap().unwrap();
        assert_eq!(ip.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(ip.proto, 17);
        assert!(ip.dont_fragment);
        let udp = UdpDatagram::new_checked(ip.payload).unwrap();
        assert_eq!((udp.src_port, udp.dst_port, udp.payload), (12345, 53, &b"abc"[..]));
    }

    #[test]
    fn sll2_and_null_links() {
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(&ipv4_udp(b""));
        assert_eq!(decode_link(linktype::LINUX_SLL2, &sll2).unwrap().unwrap().proto, 17);
        let mut null = vec![2, 0, 0, 0];
        null.extend_from_slice(&ipv4_udp(b""));
        assert_eq!(decode_link(linktype::NULL, &null).unwrap().unwrap().dst, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
    }

    #[test]
    fn sll_v1_and_ipv6_extension_headers() {
        // IPv6: hop-by-hop (8 bytes) then UDP with 2 payload bytes.
        let mut v6 = vec![0x60, 0, 0, 0, 0, 18, 0, 64];
        v6.extend_from_slice(&[0xfd, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        v6.extend_from_slice(&[0xfd, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        v6.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        v6.extend_from_slice(&[0, 7, 0, 53, 0, 10, 0, 0, b'h', b'i']);
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x86, 0xdd]);
        sll.extend_from_slice(&v6);
        let ip = decode_link(linktype::LINUX_SLL, &sll).unwrap().unwrap();
        assert_eq!((ip.proto, ip.l4_len, ip.total_len), (17, 10, 58));
        assert_eq!(UdpDatagram::new_checked(ip.payload).unwrap().payload, b"hi");
        // A lying extension length is an error, not a panic.
        let mut bad = v6.clone();
        bad[41] = 200;
        assert_eq!(decode_link(linktype::RAW, &bad), Err(DecodeError::Truncated("IPv6 extension")));
    }

    #[test]
    fn truncated_and_bad_headers_are_errors() {
        assert_eq!(decode_link(linktype::ETHERNET, &[0; 5]), Err(DecodeError::Truncated("Ethernet")));
        assert_eq!(decode_link(linktype::RAW, &[0x45, 0, 0]), Err(DecodeError::Truncated("IPv4")));
        assert_eq!(decode_link(linktype::RAW, &[0x41; 30]), Err(DecodeError::Malformed("IPv4 (header length)")));
        assert_eq!(decode_link(9999, &[0; 30]), Err(DecodeError::UnsupportedLink(9999)));
        assert_eq!(UdpDatagram::new_checked(&[0, 1, 0, 2, 0, 3, 0, 0]), Err(DecodeError::Malformed("UDP (length)")));
    }

    #[test]
    fn tcp_options_are_read() {
        let mut seg = vec![0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x70, 0x02, 0xff, 0xff, 0, 0, 0, 0];
        seg.extend_from_slice(&[2, 4, 0x05, 0xb4, 1, 3, 3, 7]);
        let t = TcpSegment::new_checked(&seg, 28).unwrap();
        assert_eq!((t.mss, t.window_scale, t.payload_len), (Some(1460), Some(7), 0));
        assert!(t.has(tcp_flags::SYN));
        assert_eq!(TcpSegment::new_checked(&seg, 10), Err(DecodeError::Malformed("TCP (data offset)")));
    }
}
