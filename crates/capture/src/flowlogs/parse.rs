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
    let mut rec = Record::default();
    parse_line_into(format, line, &mut rec).map(|()| rec)
}

/// [`parse_line`] into a record the caller provides (default on entry): the hot loop parses
/// in place instead of moving a 200-byte record between `Option` and `Result`.
#[inline]
pub fn parse_line_into<'a>(format: &Format, line: &'a [u8], rec: &mut Record<'a>) -> Result<(), LineError> {
    // The fast path assumes what AWS writes (single spaces); anything else, including every
    // error, goes through the tolerant splitter, which also produces the error message.
    if format.has_default_slots() {
        if parse_default(line, rec).is_some() {
            return Ok(());
        }
    } else if let Some(fast) = parse_fast(format, line) {
        *rec = fast;
        return Ok(());
    }
    *rec = parse_tolerant(format, line)?;
    Ok(())
}

/// A position in a line, for the straight-line parser of the default format.
struct Cursor<'a> {
    line: &'a [u8],
    p: usize,
}

impl<'a> Cursor<'a> {
    /// Consumes a `-` column (absent value).
    #[inline(always)]
    fn dash(&mut self) -> bool {
        let dash = self.line.get(self.p) == Some(&b'-') && matches!(self.line.get(self.p + 1), None | Some(b' '));
        self.p += usize::from(dash);
        dash
    }

    /// Consumes the single space between two columns.
    #[inline(always)]
    fn space(&mut self) -> Option<()> {
        (self.line.get(self.p) == Some(&b' ')).then(|| self.p += 1)
    }

    /// A number column. Up to seven digits (ports, counts) are read as one word: find where
    /// the digits end, shift them to the top and convert all at once, whatever their count
    /// (a branch on the count is a misprediction whenever lengths vary, as ports and byte
    /// counts do); longer ones (timestamps) eight digits at a time.
    #[inline(always)]
    fn number(&mut self) -> Option<u64> {
        if let Some(word) = word_at(self.line, self.p) {
            let n = (non_digits(word).trailing_zeros() / 8) as usize;
            if n.wrapping_sub(1) < 7 {
                // One to seven digits, and the byte after them is in the word.
                let after = (word >> (8 * n)) as u8;
                self.p += n;
                let value = digits_value(word.wrapping_sub(ZEROS) << (8 * (8 - n)));
                return (after == b' ').then_some(value);
            }
            if n == 0 {
                return None;
            }
            // Eight to fifteen digits (timestamps have ten): the rest is in the next word.
            if let Some(next) = word_at(self.line, self.p + 8) {
                let m = (non_digits(next).trailing_zeros() / 8) as usize;
                if m < 8 {
                    if (next >> (8 * m)) as u8 != b' ' {
                        return None;
                    }
                    self.p += 8 + m;
                    let high = digits_value(word - ZEROS);
                    let low = if m == 0 { 0 } else { digits_value(next.wrapping_sub(ZEROS) << (8 * (8 - m))) };
                    return Some(high * POW10[m] + low);
                }
            }
        }
        let start = self.p;
        let mut v: u64 = 0;
        while let Some(word) = word_at(self.line, self.p) {
            if non_digits(word) != 0 {
                break;
            }
            // Wrapping: at most 19 digits are accepted below, and those fit in a u64.
            v = v.wrapping_mul(100_000_000).wrapping_add(digits_value(word - ZEROS));
            self.p += 8;
        }
        while let Some(&b) = self.line.get(self.p) {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            v = v.wrapping_mul(10).wrapping_add(u64::from(d));
            self.p += 1;
        }
        // More than 19 digits goes to the tolerant path, which checks the range.
        let n = self.p - start;
        (n > 0 && n <= 19 && matches!(self.line.get(self.p), None | Some(b' '))).then_some(v)
    }

    /// An address column: IPv4 in line, anything else through `addr`.
    #[inline(always)]
    fn addr(&mut self) -> Option<Addr> {
        let start = self.p;
        if let Some(v4) = self.ipv4() {
            return Some(Addr::v4(v4));
        }
        self.p = field_end(self.line, start);
        addr(&self.line[start..self.p])
    }

    /// The bytes up to the next space.
    #[inline(always)]
    fn word(&mut self) -> &'a [u8] {
        let start = self.p;
        self.p = field_end(self.line, start);
        &self.line[start..self.p]
    }

    /// Everything from here to the end of the line.
    #[inline(always)]
    fn rest(&mut self) -> &'a [u8] {
        let rest = self.line.get(self.p..).unwrap_or(&[]);
        self.p = self.line.len();
        rest
    }

    /// A column that usually has `n` (8-24) bytes (account ids 12, interface ids 21). When
    /// it has, the next column's position is known without waiting for the scan: the check
    /// only feeds a branch, which the CPU predicts and runs ahead of, where `word` puts the
    /// loads and bit tricks of every column on the path to the next one.
    #[inline(always)]
    fn word_of_usual_length(&mut self, n: usize) -> &'a [u8] {
        let start = self.p;
        if let (Some(field), Some(b' ')) = (self.line.get(start..start + n), self.line.get(start + n)) {
            if !has_separator(field) {
                self.p = start + n;
                return field;
            }
        }
        self.word()
    }

    /// A number that usually has `n` (9-16) digits (timestamps have 10), see
    /// `word_of_usual_length`.
    #[inline(always)]
    fn number_of_usual_length(&mut self, n: usize) -> Option<u64> {
        let start = self.p;
        if let (Some(high), Some(low), Some(b' ')) =
            (word_at(self.line, start), word_at(self.line, start + n - 8), self.line.get(start + n))
        {
            // The first n - 8 digits are the low bytes of the first word, the last eight
            // the second word (they overlap when n < 16).
            let high_count = n - 8;
            let high_keep = u64::MAX >> (8 * (8 - high_count));
            if (non_digits(high) & high_keep) | non_digits(low) == 0 {
                self.p = start + n;
                let high_value =
                    digits_value(((high & high_keep).wrapping_sub(ZEROS & high_keep)) << (8 * (8 - high_count)));
                return Some(high_value * 100_000_000 + digits_value(low - ZEROS));
            }
        }
        self.number()
    }

    /// An IPv4 address, or `None` (IPv6 and errors are left to the generic decoder).
    #[inline(always)]
    fn ipv4(&mut self) -> Option<u32> {
        let mut out = 0u32;
        for i in 0..4 {
            if i > 0 {
                if self.line.get(self.p) != Some(&b'.') {
                    return None;
                }
                self.p += 1;
            }
            let digit = |b: Option<&u8>| b.map(|b| b.wrapping_sub(b'0')).filter(|d| *d <= 9).map(u32::from);
            let mut octet = digit(self.line.get(self.p))?;
            self.p += 1;
            if let Some(d) = digit(self.line.get(self.p)) {
                // Leading zeros are refused as the standard parser does (`010` is ambiguous).
                if octet == 0 {
                    return None;
                }
                octet = octet * 10 + d;
                self.p += 1;
                if let Some(d) = digit(self.line.get(self.p)) {
                    octet = octet * 10 + d;
                    self.p += 1;
                }
            }
            if octet > 255 {
                return None;
            }
            out = (out << 8) | octet;
        }
        matches!(self.line.get(self.p), None | Some(b' ')).then_some(out)
    }
}

/// The eight bytes of `line` at `i`, as a little-endian word.
#[inline(always)]
pub(super) fn word_at(line: &[u8], i: usize) -> Option<u64> {
    line.get(i..i + 8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_le_bytes)
}

/// The high bit of the lowest byte of `word` that is a space, and maybe of bytes above it
/// (borrows make false flags there, which `trailing_zeros` and `!= 0` never look at); zero
/// when no byte is a space.
#[inline(always)]
fn space_flags(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let x = word ^ (ONES * u64::from(b' '));
    x.wrapping_sub(ONES) & !x & HIGH
}

/// `space_flags` for a space or a newline: a field ends at either (a line parsed inside a
/// buffer of lines, `parse_default_at`, must not run into the next one).
#[inline(always)]
fn separator_flags(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let x = word ^ (ONES * u64::from(b'\n'));
    space_flags(word) | (x.wrapping_sub(ONES) & !x & HIGH)
}

/// Whether a field of 8 to 24 bytes has a space or a newline, from three overlapping words.
#[inline(always)]
fn has_separator(field: &[u8]) -> bool {
    let n = field.len();
    let any = |at: usize| word_at(field, at).is_none_or(|w| separator_flags(w) != 0);
    !(8..=24).contains(&n) || any(0) || any(n / 2 - 4) || any(n - 8)
}

const ZEROS: u64 = 0x3030_3030_3030_3030;
const POW10: [u64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of every byte of `x` that is not an ASCII digit. Bytes are compared with
/// their high bit cleared, so no addition carries into the next byte.
#[inline(always)]
fn non_digits(x: u64) -> u64 {
    let low = x & !HIGH;
    let at_least_0 = low.wrapping_add(0x5050_5050_5050_5050); // 0x30 + 0x50 sets the high bit
    let above_9 = low.wrapping_add(0x4646_4646_4646_4646); // 0x3a + 0x46 sets it
    !(at_least_0 & !above_9 & !x) & HIGH
}

/// The value of eight decimal digits 0-9, one per byte of a little-endian word, the first
/// byte the most significant (leading zero bytes are leading zeros).
#[inline(always)]
fn digits_value(x: u64) -> u64 {
    let x = (x.wrapping_mul(10) + (x >> 8)) & 0x00ff_00ff_00ff_00ff;
    let x = (x.wrapping_mul(100) + (x >> 16)) & 0x0000_ffff_0000_ffff;
    (x.wrapping_mul(10_000) + (x >> 32)) & 0xffff_ffff
}

/// The default format's columns before the last, one step each, in order: `$each!(step)`
/// for every one. A step reads its column (and the space before it) at the cursor into the
/// record; `None` sends the line to the tolerant path.
macro_rules! default_columns_but_status {
    ($each:ident) => {
        $each!(column_version);
        $each!(column_account);
        $each!(column_interface);
        $each!(column_src);
        $each!(column_dst);
        $each!(column_src_port);
        $each!(column_dst_port);
        $each!(column_protocol);
        $each!(column_packets);
        $each!(column_bytes);
        $each!(column_start);
        $each!(column_end);
        $each!(column_action);
    };
}

/// A column after the first: its space, then `-` or the value.
macro_rules! column_step {
    ($name:ident, |$c:ident, $r:ident| $decode:expr) => {
        #[inline(always)]
        fn $name<'a>($c: &mut Cursor<'a>, $r: &mut Record<'a>) -> Option<()> {
            $c.space()?;
            if !$c.dash() {
                $decode;
            }
            Some(())
        }
    };
}

/// The version is one digit (2-5) as AWS writes it: known at once, as the lengths in
/// `word_of_usual_length`.
#[inline(always)]
fn column_version<'a>(c: &mut Cursor<'a>, r: &mut Record<'a>) -> Option<()> {
    match c.line {
        [d @ b'0'..=b'9', b' ', ..] => {
            r.version = Some(u32::from(d - b'0'));
            c.p = 1;
        }
        _ => {
            if !c.dash() {
                r.version = Some(u32::try_from(c.number()?).ok()?);
            }
        }
    }
    Some(())
}

column_step!(column_account, |c, _r| {
    c.word_of_usual_length(12);
});
column_step!(column_interface, |c, r| r.interface_id = Some(c.word_of_usual_length(21)));
column_step!(column_src, |c, r| r.src = Some(c.addr()?));
column_step!(column_dst, |c, r| r.dst = Some(c.addr()?));
column_step!(column_src_port, |c, r| r.src_port = Some(u16::try_from(c.number()?).ok()?));
column_step!(column_dst_port, |c, r| r.dst_port = Some(u16::try_from(c.number()?).ok()?));
column_step!(column_protocol, |c, r| r.protocol = Some(u8::try_from(c.number()?).ok()?));
column_step!(column_packets, |c, r| r.packets = Some(c.number()?));
column_step!(column_bytes, |c, r| r.bytes = Some(c.number()?));
column_step!(column_start, |c, r| r.start = Some(c.number_of_usual_length(10)?));
column_step!(column_end, |c, r| r.end = Some(c.number_of_usual_length(10)?));
column_step!(column_action, |c, r| {
    // Both actions have six letters: checked with the space after them, the position
    // after the column is known at once (see `word_of_usual_length`).
    r.action = Some(match c.line.get(c.p..c.p + 7) {
        Some(b"ACCEPT ") => Action::Accept,
        Some(b"REJECT ") => Action::Reject,
        _ => return None,
    });
    c.p += 6;
});

/// The default format in straight-line code: no per-column dispatch (an indirect jump per
/// column was the generic parser's hottest instruction). `None` sends the line to the
/// tolerant path. (Finding all column boundaries first, from a mask of the line's spaces,
/// and decoding each column knowing its length was measured twice: 20-50 % slower, building
/// the mask costs more than the dependency chain through the columns it removes.)
#[inline]
fn parse_default<'a>(line: &'a [u8], rec: &mut Record<'a>) -> Option<()> {
    let mut c = Cursor { line, p: 0 };
    macro_rules! step {
        ($column:ident) => {
            $column(&mut c, rec)?;
        };
    }
    default_columns_but_status!(step);
    c.space()?;
    if !c.dash() {
        // The last column: the rest of the line, no need to look for its end.
        rec.log_status = Some(match c.rest() {
            b"OK" => LogStatus::Ok,
            b"NODATA" => LogStatus::NoData,
            b"SKIPDATA" => LogStatus::SkipData,
            _ => return None,
        });
    }
    (c.p == line.len()).then_some(())
}

/// The default-format record at the start of `text`, a buffer of lines: the length of its
/// line (without `\n` or `\r\n`) and where the next line starts, or `None` when the line is
/// not a record written the usual way (then it is split off and goes through
/// [`parse_line_into`]). The line's end is where its last column ends, so lines need not be
/// found first (a search for each newline cost a twentieth of the run); fields stop at
/// newlines as at spaces, so a record never runs into the next line.
#[inline]
pub fn parse_default_at<'a>(text: &'a [u8], rec: &mut Record<'a>) -> Option<(usize, usize)> {
    let mut c = Cursor { line: text, p: 0 };
    macro_rules! step {
        ($column:ident) => {
            $column(&mut c, rec)?;
        };
    }
    default_columns_but_status!(step);
    c.space()?;
    let rest = text.get(c.p..)?;
    let (status, n) = if rest.starts_with(b"OK") {
        (LogStatus::Ok, 2)
    } else if rest.starts_with(b"NODATA") {
        (LogStatus::NoData, 6)
    } else if rest.starts_with(b"SKIPDATA") {
        (LogStatus::SkipData, 8)
    } else {
        return None;
    };
    rec.log_status = Some(status);
    let end = c.p + n;
    match (text.get(end), text.get(end + 1)) {
        (Some(b'\n'), _) => Some((end, end + 1)),
        (Some(b'\r'), Some(b'\n')) => Some((end, end + 2)),
        _ => None,
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

/// A number of up to 19 digits at `p` ending at a space or the end of line, and where it
/// ends (the default format's decoder, shared).
#[inline(always)]
fn digits(line: &[u8], p: usize) -> Option<(u64, usize)> {
    let mut c = Cursor { line, p };
    let v = c.number()?;
    Some((v, c.p))
}

/// The end of the field starting at `p` (a space, a newline or the end): eight bytes at a
/// time (interface ids and account ids are 12-21 bytes; a byte loop over them was the
/// parser's hottest spot).
#[inline(always)]
fn field_end(line: &[u8], mut p: usize) -> usize {
    while let Some(word) = word_at(line, p) {
        let zero = separator_flags(word);
        if zero != 0 {
            return p + (zero.trailing_zeros() / 8) as usize;
        }
        p += 8;
    }
    while p < line.len() && line[p] != b' ' && line[p] != b'\n' {
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
    fn numbers_of_every_length_agree_with_std() {
        let mut values: Vec<String> = Vec::new();
        for len in 1..=21 {
            values.push("9".repeat(len));
            values.push(format!("1{}", "0".repeat(len - 1)));
            values.push("0".repeat(len));
            values.push("1234567890123456789012"[..len].to_string());
        }
        values.push(u64::MAX.to_string());
        for v in &values {
            // 20 digits and more leave the fast path (None), whatever their value.
            let want = v.parse::<u64>().ok().filter(|_| v.len() <= 19);
            for (line, tail) in [(format!("{v} x"), " x"), (v.clone(), ""), (format!("{v} 1234567"), " 1234567")] {
                let mut c = Cursor { line: line.as_bytes(), p: 0 };
                let got = c.number();
                assert_eq!(got, want, "{line:?}");
                if got.is_some() {
                    assert_eq!(&line[c.p..], tail, "{line:?}");
                }
            }
            for bad in [format!("{v}x 1"), format!("{v}: 12345678"), format!("{v}\u{e9} 123456789")] {
                assert_eq!(Cursor { line: bad.as_bytes(), p: 0 }.number(), None, "{bad:?}");
            }
        }
        for not_digit in 0u8..=255 {
            let line = [b'1', not_digit, b'2', b' ', b'1', b'1', b'1', b'1', b'1', b'1', b'1'];
            // A space ends the number early; any other non-digit makes it invalid.
            let want = match not_digit {
                b'0'..=b'9' => Some(102 + 10 * u64::from(not_digit - b'0')),
                b' ' => Some(1),
                _ => None,
            };
            assert_eq!(Cursor { line: &line, p: 0 }.number(), want, "byte {not_digit:#x}");
            let long = [[b'1'; 12].as_slice(), &[not_digit], &[b'3'; 3]].concat();
            let want = match not_digit {
                b'0'..=b'9' => String::from_utf8_lossy(&long).parse().ok(),
                b' ' => Some(111_111_111_111),
                _ => None,
            };
            assert_eq!(Cursor { line: &long, p: 0 }.number(), want, "byte {not_digit:#x} in 16 digits");
        }
    }

    /// A small deterministic generator for the randomised tests.
    fn xorshift(mut rng: u64) -> impl FnMut() -> u64 {
        move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        }
    }

    #[test]
    fn default_format_fast_path_matches_the_generic_one() {
        let f = v2();
        let mut next = xorshift(0x2545_f491_4f6c_dd1d_u64);
        let pick = |r: u64, options: &[&str]| options[(r % options.len() as u64) as usize].to_string();
        for _ in 0..20_000 {
            let fields = [
                pick(next(), &["2", "-", "5", "02"]),
                pick(next(), &["123456789010", "-", "12345678901", "1234567890123", "12345678901\t"]),
                pick(
                    next(),
                    &[
                        "eni-1235b8ca123456789",
                        "-",
                        "eni-1",
                        "eni-1235b8ca12345678",
                        "eni-1235b8ca1234567890",
                        "eni-1235b8ca123456789\t",
                    ],
                ),
                pick(next(), &["10.0.0.1", "-", "2001:db8::1", "255.255.255.255", "1.2.3.04", "256.1.1.1", "0.0.0.0"]),
                std::net::Ipv4Addr::from(next() as u32).to_string(),
                (next() % 70_000).to_string(),
                pick(next(), &["443", "-", "0", "65535", "65536"]),
                pick(next(), &["6", "17", "-", "256"]),
                (next() % 1_000_000_000).to_string(),
                (next() >> (next() % 64)).to_string(),
                pick(next(), &["1700000000", "170000000", "17000000000", "170000000x", "1x00000000", "-", "0"]),
                pick(next(), &["1700000059", "-", "17000000590000000000", "99999999999999999999", "1700000059x"]),
                pick(next(), &["ACCEPT", "REJECT", "-", "DROP", "ACCEPTED", "ACCEP", "ACCEPT\t"]),
                pick(next(), &["OK", "NODATA", "SKIPDATA", "-", "ok", "OK ", "OK\t", ""]),
            ];
            let line = fields.join(" ");
            let mut rec = Record::default();
            let fast = parse_default(line.as_bytes(), &mut rec).map(|()| rec);
            assert_eq!(fast, parse_fast(&f, line.as_bytes()), "{line}");
        }
    }

    /// The in-line IPv4 decoder against the standard parser, on octets of every length,
    /// leading zeros, out-of-range values, wrong separators and what follows the address.
    /// Records read straight from a buffer of lines end where their line ends, and decode
    /// as the line on its own does; lines broken by a newline anywhere, with `\r\n`, with
    /// odd columns or blank are among them.
    #[test]
    fn records_in_a_buffer_end_at_their_line() {
        let f = v2();
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15_u64);
        let mut text = Vec::new();
        for _ in 0..30_000 {
            let mut line = format!(
                "2 123456789010 eni-{:017x} 10.{}.{}.{} 10.1.0.{} {} {} {} {} {} 1700000000 1700000059 {} {}",
                next() % 40,
                next() % 256,
                next() % 256,
                next() % 256,
                next() % 256,
                next() % 65536,
                [53, 443, 500][(next() % 3) as usize],
                [6, 17, 1][(next() % 3) as usize],
                next() % 1000,
                next() % 100_000,
                ["ACCEPT", "REJECT"][(next() % 2) as usize],
                ["OK", "NODATA", "SKIPDATA", "-", "OK ", "OKAY"][(next() % 6) as usize],
            )
            .into_bytes();
            match next() % 8 {
                // A newline anywhere: two broken lines.
                0 => {
                    let at = (next() % line.len() as u64) as usize;
                    line.insert(at, b'\n');
                }
                1 => line.push(b'\r'),
                2 => line.extend_from_slice(b"\r\r"),
                3 => line.clear(),
                4 => {
                    let at = (next() % line.len() as u64) as usize;
                    line[at] = [b' ', b'-', b'\t', b'x'][(next() % 4) as usize];
                }
                _ => {}
            }
            text.extend_from_slice(&line);
            text.push(b'\n');
        }
        let (mut start, mut read) = (0, 0);
        while start < text.len() {
            let nl = start + text[start..].iter().position(|b| *b == b'\n').expect("every line ends");
            let mut rec = Record::default();
            if let Some((len, next)) = parse_default_at(&text[start..], &mut rec) {
                let line = &text[start..nl];
                assert_eq!(next, nl + 1 - start, "{:?}", String::from_utf8_lossy(line));
                assert_eq!(line.strip_suffix(b"\r").unwrap_or(line).len(), len);
                assert_eq!(parse_line(&f, &line[..len]), Ok(rec), "{:?}", String::from_utf8_lossy(line));
                read += 1;
            }
            start = nl + 1;
        }
        assert!(read > 6_000, "{read} records read from the buffer");
    }

    #[test]
    fn address_columns_agree_with_std() {
        let octets =
            ["", "0", "00", "1", "01", "9", "10", "99", "100", "199", "249", "255", "256", "999", "1000", "a", "1a"];
        let mut tokens: Vec<String> = Vec::new();
        for a in octets {
            for b in octets {
                for c in ["0", "1", "255", "256", "01", ""] {
                    for d in octets {
                        tokens.push(format!("{a}.{b}.{c}.{d}"));
                    }
                }
            }
        }
        let odd = [
            "1.2.3",
            "1.2.3.4.5",
            "1.2.3.4.",
            "1..3.4",
            "1,2.3.4",
            "1.2.3.4:80",
            "::1",
            "2001:db8::1",
            "::ffff:1.2.3.4",
        ];
        tokens.extend(odd.iter().map(|t| t.to_string()));
        for t in &tokens {
            let want = match t.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(a)) => Some(Addr::v4(u32::from(a))),
                Ok(std::net::IpAddr::V6(a)) => Some(Addr(u128::from(a))),
                Err(_) => None,
            };
            for tail in ["", " x", " 10.0.0.1 5"] {
                let line = format!("{t}{tail}");
                let mut c = Cursor { line: line.as_bytes(), p: 0 };
                let got = c.addr();
                assert_eq!(got, want, "{line:?}");
                if got.is_some() {
                    assert_eq!(&line[c.p..], tail, "{line:?}");
                }
            }
        }
    }

    #[test]
    fn ipv4_agrees_with_std() {
        for s in ["0.0.0.0", "255.255.255.255", "10.0.0.1", "192.168.100.200", "1.22.133.4"] {
            let std: std::net::Ipv4Addr = s.parse().unwrap();
            assert_eq!(ipv4(s.as_bytes()), Some(u32::from(std)), "{s}");
        }
    }
}
