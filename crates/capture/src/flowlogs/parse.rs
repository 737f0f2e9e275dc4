//! One flow-log record from one line of bytes: no allocation, no regex; fields are split on
//! spaces and decoded by hand into a `Record` of numbers, with `-` kept as absent (`None`).

use std::fmt;

use super::format::{Format, Slot};

/// An IPv4 or IPv6 address as one integer: IPv4 is stored IPv4-mapped (`::ffff:a.b.c.d`) so
/// both kinds share one key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr(pub u128);

const V4_MAPPED: u128 = 0xffff << 32;

impl Addr {
    pub fn v4(a: u32) -> Addr {
        Addr(V4_MAPPED | u128::from(a))
    }

    /// The IPv4 address, if this is one.
    pub fn as_v4(self) -> Option<u32> {
        if self.0 >> 32 == 0xffff {
            Some(self.0 as u32)
        } else {
            None
        }
    }

    pub fn to_ip(self) -> std::net::IpAddr {
        match self.as_v4() {
            Some(v4) => std::net::IpAddr::V4(v4.into()),
            None => std::net::IpAddr::V6(self.0.into()),
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_ip().fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Accept,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStatus {
    Ok,
    NoData,
    SkipData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// One record; every field is `None` when the column is absent from the format or holds `-`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Record<'a> {
    pub version: Option<u32>,
    pub interface_id: Option<&'a [u8]>,
    pub src: Option<Addr>,
    pub dst: Option<Addr>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    pub protocol: Option<u8>,
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
    pub start: Option<u64>,
    pub end: Option<u64>,
    pub action: Option<Action>,
    pub log_status: Option<LogStatus>,
    pub tcp_flags: Option<u32>,
    pub direction: Option<Direction>,
}

/// Why a line is not a record: the column (0-based) and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// The line has a different number of columns than the format.
    FieldCount { expected: usize, found: usize },
    /// One column could not be decoded.
    Field { index: usize, expected: &'static str },
}

impl LineError {
    /// A message naming the field, e.g. ``field 8 `protocol`: expected a number 0-255``.
    pub fn describe(&self, format: &Format, line: &[u8]) -> String {
        match self {
            LineError::FieldCount { expected, found } => {
                format!("expected {expected} space-separated fields ({}), found {found}", format.describe())
            }
            LineError::Field { index, expected } => {
                let value =
                    line.split(|&b| b == b' ' || b == b'\t').filter(|f| !f.is_empty()).nth(*index).unwrap_or(b"");
                let value = String::from_utf8_lossy(&value[..value.len().min(60)]).into_owned();
                format!("field {} `{}`: `{value}` is not {expected}", index + 1, format.name(*index))
            }
        }
    }
}

/// Parses one line (without the newline) with `format`.
#[inline]
pub fn parse_line<'a>(format: &Format, line: &'a [u8]) -> Result<Record<'a>, LineError> {
    // The fast path assumes what AWS writes (single spaces); anything else, including every
    // error, goes through the tolerant splitter, which also produces the error message.
    match parse_fast(format, line) {
        Some(rec) => Ok(rec),
        None => parse_tolerant(format, line),
    }
}

/// One pass over the bytes: each column is decoded while it is scanned, so the line is
/// read once (splitting first and decoding after reads it twice and calls memchr per field).
#[inline]
fn parse_fast<'a>(format: &Format, line: &'a [u8]) -> Option<Record<'a>> {
    let mut rec = Record::default();
    let n = line.len();
    let mut p = 0usize;
    for (i, &slot) in format.slots().iter().enumerate() {
        if i > 0 {
            if line.get(p) != Some(&b' ') {
                return None;
            }
            p += 1;
        }
        let first = *line.get(p)?;
        if first == b'-' && (p + 1 == n || line[p + 1] == b' ') {
            p += 1;
            continue;
        }
        match slot {
            Slot::Version => {
                let (v, e) = digits(line, p)?;
                rec.version = Some(u32::try_from(v).ok()?);
                p = e;
            }
            Slot::SrcPort | Slot::DstPort => {
                let (v, e) = digits(line, p)?;
                let v = u16::try_from(v).ok()?;
                if slot == Slot::SrcPort {
                    rec.src_port = Some(v);
                } else {
                    rec.dst_port = Some(v);
                }
                p = e;
            }
            Slot::Protocol => {
                let (v, e) = digits(line, p)?;
                rec.protocol = Some(u8::try_from(v).ok()?);
                p = e;
            }
            Slot::Packets | Slot::Bytes | Slot::Start | Slot::End | Slot::TcpFlags => {
                let (v, e) = digits(line, p)?;
                match slot {
                    Slot::Packets => rec.packets = Some(v),
                    Slot::Bytes => rec.bytes = Some(v),
                    Slot::Start => rec.start = Some(v),
                    Slot::End => rec.end = Some(v),
                    _ => rec.tcp_flags = Some(u32::try_from(v).ok()?),
                }
                p = e;
            }
            Slot::SrcAddr | Slot::DstAddr => {
                let e = field_end(line, p);
                let a = addr(&line[p..e])?;
                if slot == Slot::SrcAddr {
                    rec.src = Some(a);
                } else {
                    rec.dst = Some(a);
                }
                p = e;
            }
            _ => {
                let e = field_end(line, p);
                decode(slot, &line[p..e], &mut rec).ok()?;
                p = e;
            }
        }
    }
    (p == n).then_some(rec)
}

/// A run of up to 19 digits at `p` (always fits u64) ending at a space or the end of line.
#[inline(always)]
fn digits(line: &[u8], mut p: usize) -> Option<(u64, usize)> {
    let start = p;
    let mut v: u64 = 0;
    while let Some(&b) = line.get(p) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if p - start == 19 {
            // A 20th digit may overflow: the tolerant path checks it.
            return None;
        }
        v = v * 10 + u64::from(d);
        p += 1;
    }
    if p == start || (p < line.len() && line[p] != b' ') {
        return None;
    }
    Some((v, p))
}

/// The end of the field starting at `p`: eight bytes at a time (interface ids and account
/// ids are 12-21 bytes; a byte loop over them was the parser's hottest spot).
#[inline(always)]
fn field_end(line: &[u8], mut p: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = line.get(p..p + 8) {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else { break };
        let x = u64::from_le_bytes(bytes) ^ (ONES * u64::from(b' '));
        // The lowest byte of `x` that is zero (a space) sets the lowest flagged bit; flags
        // above it may be false, which `trailing_zeros` never looks at.
        let zero = x.wrapping_sub(ONES) & !x & HIGH;
        if zero != 0 {
            return p + (zero.trailing_zeros() / 8) as usize;
        }
        p += 8;
    }
    while p < line.len() && line[p] != b' ' {
        p += 1;
    }
    p
}

#[cold]
fn parse_tolerant<'a>(format: &Format, line: &'a [u8]) -> Result<Record<'a>, LineError> {
    let slots = format.slots();
    let mut rec = Record::default();
    let mut index = 0usize;
    let mut pos = 0usize;
    let n = line.len();
    loop {
        // Skip the separators: AWS writes single spaces; tabs and runs are tolerated so a
        // re-formatted export still parses.
        while pos < n && (line[pos] == b' ' || line[pos] == b'\t') {
            pos += 1;
        }
        if pos >= n {
            break;
        }
        let start = pos;
        while pos < n && line[pos] != b' ' && line[pos] != b'\t' {
            pos += 1;
        }
        let field = &line[start..pos];
        if let Some(&slot) = slots.get(index) {
            decode(slot, field, &mut rec).map_err(|expected| LineError::Field { index, expected })?;
        }
        index += 1;
    }
    if index != slots.len() {
        return Err(LineError::FieldCount { expected: slots.len(), found: index });
    }
    Ok(rec)
}

#[inline]
fn decode<'a>(slot: Slot, f: &'a [u8], rec: &mut Record<'a>) -> Result<(), &'static str> {
    if f == b"-" {
        return Ok(());
    }
    match slot {
        Slot::Ignore => {}
        Slot::Version => rec.version = Some(num(f, u64::from(u32::MAX)).ok_or("a version number")? as u32),
        Slot::InterfaceId => rec.interface_id = Some(f),
        Slot::SrcAddr => rec.src = Some(addr(f).ok_or("an IPv4 or IPv6 address")?),
        Slot::DstAddr => rec.dst = Some(addr(f).ok_or("an IPv4 or IPv6 address")?),
        Slot::SrcPort => rec.src_port = Some(num(f, 65535).ok_or("a port 0-65535")? as u16),
        Slot::DstPort => rec.dst_port = Some(num(f, 65535).ok_or("a port 0-65535")? as u16),
        Slot::Protocol => rec.protocol = Some(num(f, 255).ok_or("a protocol number 0-255")? as u8),
        Slot::Packets => rec.packets = Some(num(f, u64::MAX).ok_or("a packet count")?),
        Slot::Bytes => rec.bytes = Some(num(f, u64::MAX).ok_or("a byte count")?),
        Slot::Start => rec.start = Some(num(f, u64::MAX).ok_or("a time in Unix seconds")?),
        Slot::End => rec.end = Some(num(f, u64::MAX).ok_or("a time in Unix seconds")?),
        Slot::Action => {
            rec.action = Some(match f {
                b"ACCEPT" => Action::Accept,
                b"REJECT" => Action::Reject,
                _ => return Err("ACCEPT, REJECT or -"),
            })
        }
        Slot::LogStatus => {
            rec.log_status = Some(match f {
                b"OK" => LogStatus::Ok,
                b"NODATA" => LogStatus::NoData,
                b"SKIPDATA" => LogStatus::SkipData,
                _ => return Err("OK, NODATA, SKIPDATA or -"),
            })
        }
        Slot::TcpFlags => rec.tcp_flags = Some(num(f, u64::from(u32::MAX)).ok_or("a TCP flags number")? as u32),
        Slot::FlowDirection => {
            rec.direction = Some(match f {
                b"ingress" => Direction::Ingress,
                b"egress" => Direction::Egress,
                _ => return Err("ingress, egress or -"),
            })
        }
    }
    Ok(())
}

/// A decimal number no larger than `max`; `None` for anything else (empty, sign, overflow).
#[inline]
fn num(f: &[u8], max: u64) -> Option<u64> {
    if f.is_empty() || f.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in f {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    (v <= max).then_some(v)
}

/// An IPv4 address in dotted decimal (parsed by hand: this is the hot path) or an IPv6
/// address (rare in practice; the standard parser is fine there).
#[inline(always)]
fn addr(f: &[u8]) -> Option<Addr> {
    match ipv4(f) {
        Some(v4) => Some(Addr::v4(v4)),
        None => ipv6(f),
    }
}

#[cold]
fn ipv6(f: &[u8]) -> Option<Addr> {
    if !f.contains(&b':') {
        return None;
    }
    let v6: std::net::Ipv6Addr = std::str::from_utf8(f).ok()?.parse().ok()?;
    Some(Addr(u128::from(v6)))
}

#[inline(always)]
fn ipv4(f: &[u8]) -> Option<u32> {
    if f.len() < 7 || f.len() > 15 {
        return None;
    }
    let mut out: u32 = 0;
    let mut octet: u32 = 0;
    let mut digits = 0;
    let mut dots = 0;
    for &b in f {
        if b == b'.' {
            // Leading zeros are refused as the standard parser does (`010` is ambiguous).
            if digits == 0 || dots == 3 {
                return None;
            }
            out = (out << 8) | octet;
            octet = 0;
            digits = 0;
            dots += 1;
        } else {
            let d = b.wrapping_sub(b'0');
            if d > 9 || (digits == 1 && octet == 0) {
                return None;
            }
            octet = octet * 10 + u32::from(d);
            digits += 1;
            if octet > 255 {
                return None;
            }
        }
    }
    if dots != 3 || digits == 0 {
        return None;
    }
    Some((out << 8) | octet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flowlogs::format::FormatOrigin;

    fn v2() -> Format {
        Format::default_v2(FormatOrigin::Given)
    }

    #[test]
    fn aws_documentation_examples() {
        let f = v2();
        let r = parse_line(&f, b"2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK").unwrap();
        assert_eq!(r.version, Some(2));
        assert_eq!(r.interface_id, Some(&b"eni-1235b8ca123456789"[..]));
        assert_eq!(r.src.unwrap().to_string(), "172.31.16.139");
        assert_eq!(r.dst.unwrap().to_string(), "172.31.16.21");
        assert_eq!((r.src_port, r.dst_port, r.protocol), (Some(20641), Some(22), Some(6)));
        assert_eq!((r.packets, r.bytes), (Some(20), Some(4249)));
        assert_eq!((r.start, r.end), (Some(1418530010), Some(1418530070)));
        assert_eq!((r.action, r.log_status), (Some(Action::Accept), Some(LogStatus::Ok)));

        let r = parse_line(&f, b"2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA")
            .unwrap();
        assert_eq!(r.log_status, Some(LogStatus::NoData));
        // `-` is absent, not zero.
        assert_eq!((r.src, r.packets, r.bytes, r.action), (None, None, None, None));
    }

    #[test]
    fn ipv6_and_tabs() {
        let r = parse_line(
            &v2(),
            b"2\t1 eni-1  2001:db8::1 2001:db8::2 443 50000 6 1 60 1 2 REJECT OK\r".strip_suffix(b"\r").unwrap(),
        )
        .unwrap();
        assert_eq!(r.src.unwrap().to_string(), "2001:db8::1");
        assert_eq!(r.src.unwrap().as_v4(), None);
    }

    #[test]
    fn errors_name_the_field() {
        let f = v2();
        let line = b"2 1 eni-1 10.0.0.1 10.0.0.2 443 50000 tcp 1 60 1 2 REJECT OK";
        let e = parse_line(&f, line).unwrap_err();
        assert_eq!(e, LineError::Field { index: 7, expected: "a protocol number 0-255" });
        assert_eq!(e.describe(&f, line), "field 8 `protocol`: `tcp` is not a protocol number 0-255");
        let e = parse_line(&f, b"2 1 eni-1 10.0.0.1 10.0.0.2 443").unwrap_err();
        assert_eq!(e, LineError::FieldCount { expected: 14, found: 6 });
        for bad in ["256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1..2.3", "a.b.c.d", "1.2.3.4:"] {
            assert_eq!(addr(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(num(b"99999999999999999999999", u64::MAX), None);
        // 20 digits leave the fast path; u64::MAX still parses, one more is an error.
        let max = parse_line(&f, b"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 18446744073709551615 1 1 2 ACCEPT OK").unwrap();
        assert_eq!(max.packets, Some(u64::MAX));
        let e = parse_line(&f, b"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 18446744073709551616 1 1 2 ACCEPT OK").unwrap_err();
        assert_eq!(e, LineError::Field { index: 8, expected: "a packet count" });
        assert_eq!(num(b"65536", 65535), None);
        assert_eq!(num(b"", 1), None);
    }

    #[test]
    fn field_end_finds_the_first_space() {
        for line in
            [&b"eni-1235b8ca123456789 x"[..], b"a b", b"abcdefgh", b"abcdefgh ", b" x", b"", b"123456789012345678 "]
        {
            for start in 0..=line.len() {
                let want = line[start..].iter().position(|&b| b == b' ').map_or(line.len(), |i| start + i);
                assert_eq!(field_end(line, start), want, "{:?} from {start}", String::from_utf8_lossy(line));
            }
        }
        // Bytes with the high bit set and 0x21 (one above a space) are not spaces.
        assert_eq!(field_end(b"\xa0\x21\xff\x80!!!!!!!! z", 0), 12);
    }

    #[test]
    fn ipv4_agrees_with_std() {
        for s in ["0.0.0.0", "255.255.255.255", "10.0.0.1", "192.168.100.200", "1.22.133.4"] {
            let std: std::net::Ipv4Addr = s.parse().unwrap();
            assert_eq!(ipv4(s.as_bytes()), Some(u32::from(std)), "{s}");
        }
    }
}
