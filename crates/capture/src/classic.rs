//! Classic (libpcap) capture parser over read-ahead chunks: records are handed out in place
//! and only a record that straddles two chunks is copied.

use crate::readahead::Chunks;
use crate::reader::{emit, issue, IssueKind, RawPacket, ReadStats, BUFFER, MAX_BUFFER};

const FILE_HEADER: usize = 24;
const RECORD_HEADER: u64 = 16;

/// Byte order and timestamp unit, from the magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Format {
    big_endian: bool,
    nanos: bool,
}

/// The format of a classic pcap file starting with `magic`; `None` for anything else
/// (pcapng, the "modified" pcap format and garbage stay with pcap-parser).
pub(crate) fn sniff(magic: &[u8]) -> Option<Format> {
    let (big_endian, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
        [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
        [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
        _ => return None,
    };
    Some(Format { big_endian, nanos })
}

/// How the stream stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    End,
    Error,
}

/// The chunk stream with a read position.
struct Stream {
    chunks: Chunks,
    cur: Vec<u8>,
    pos: usize,
    stop: Option<Stop>,
}

impl Stream {
    /// Moves to the next chunk; false once the stream has stopped.
    fn advance(&mut self) -> bool {
        if self.stop.is_some() {
            return false;
        }
        match self.chunks.next() {
            Ok(Some(c)) => {
                let old = std::mem::replace(&mut self.cur, c);
                self.chunks.recycle(old);
                self.pos = 0;
                true
            }
            Ok(None) => {
                self.stop = Some(Stop::End);
                false
            }
            Err(_) => {
                self.stop = Some(Stop::Error);
                false
            }
        }
    }

    /// Appends stream bytes to `out` until it holds `target` bytes; fewer only when the
    /// stream stops first.
    fn gather(&mut self, out: &mut Vec<u8>, target: usize) {
        while out.len() < target {
            if self.pos == self.cur.len() && !self.advance() {
                return;
            }
            let take = (target - out.len()).min(self.cur.len() - self.pos);
            out.extend_from_slice(&self.cur[self.pos..self.pos + take]);
            self.pos += take;
        }
    }
}

/// The state of the buffer pcap-parser used to read classic files (capacity, and how far it
/// had read). Which problem is reported for a cut or oversized record (and its message)
/// depended on it, so it is tracked to keep those reports unchanged.
struct OldBuffer {
    cap: u64,
    /// Stream offset up to which the old buffer had asked to read (before the stream end).
    end: u64,
}

impl OldBuffer {
    /// Runs the old refill/grow loop for the record at `x` needing `need` bytes (`u64::MAX`
    /// when even its header is missing); `stop` is where the stream stops, with whether it
    /// stopped on an I/O error, when that is before `x + need`.
    fn settle(&mut self, x: u64, need: u64, stop: Option<(u64, Stop)>) -> Result<(), (IssueKind, String)> {
        let mut exhausted = false;
        loop {
            let filled = stop.map_or(self.end, |(at, _)| self.end.min(at));
            if x.saturating_add(need) <= filled {
                return Ok(());
            }
            if exhausted {
                return Err((IssueKind::Truncated, "unexpected end of file".to_string()));
            }
            let header_missing = x + RECORD_HEADER > filled;
            let too_small = !header_missing && need >= self.cap;
            if filled.saturating_sub(x) < self.cap {
                if let Some((at, how)) = stop {
                    if at <= filled {
                        if how == Stop::Error {
                            let msg = if too_small { "read error" } else { "cannot read: ReadError" };
                            return Err((IssueKind::Io, msg.to_string()));
                        }
                        exhausted = true;
                    }
                }
                self.end = x + self.cap;
            }
            if too_small {
                if exhausted {
                    let msg = "file ends inside a block larger than the read buffer";
                    return Err((IssueKind::Truncated, msg.to_string()));
                }
                self.cap *= 2;
                if self.cap > MAX_BUFFER as u64 {
                    return Err((IssueKind::Corrupt, format!("block larger than {MAX_BUFFER} bytes")));
                }
            }
        }
    }
}

fn word(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if big_endian {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

/// Reads a classic pcap stream whose magic is `format` (see [`sniff`]).
pub(crate) fn read(chunks: Chunks, format: Format, on_packet: &mut dyn FnMut(&RawPacket<'_>), stats: &mut ReadStats) {
    let mut s = Stream { chunks, cur: Vec::new(), pos: 0, stop: None };
    let mut scratch = Vec::new();
    s.gather(&mut scratch, FILE_HEADER);
    if scratch.len() < FILE_HEADER {
        stats.issue = Some(issue(IssueKind::Truncated, 0, "file ends inside the capture header".to_string()));
        return;
    }
    let be = format.big_endian;
    let linktype = word(&scratch, 20, be) as i32;
    let when = |sec: u32, frac: u32| {
        let nanos = if format.nanos { frac } else { frac.saturating_mul(1000) };
        (linktype, u64::from(sec), nanos)
    };
    // The old reader started with its buffer filled from the first read.
    let mut old = OldBuffer { cap: BUFFER as u64, end: BUFFER as u64 };
    let mut x = FILE_HEADER as u64;
    loop {
        let rest = &s.cur[s.pos..];
        if rest.len() >= RECORD_HEADER as usize {
            let need = RECORD_HEADER + u64::from(word(rest, 8, be));
            if need < old.cap && need <= rest.len() as u64 {
                let len = need as usize;
                let data = &rest[RECORD_HEADER as usize..len];
                emit(stats, on_packet, when(word(rest, 0, be), word(rest, 4, be)), data, word(rest, 12, be));
                if x + need > old.end {
                    old.end = x + old.cap;
                }
                x += need;
                s.pos += len;
                continue;
            }
        }
        // The record is not whole in this chunk (or is huge, or the stream ends): gather it.
        scratch.clear();
        s.gather(&mut scratch, RECORD_HEADER as usize);
        if scratch.is_empty() && s.stop == Some(Stop::End) {
            return;
        }
        let (need, target) = if scratch.len() == RECORD_HEADER as usize {
            let need = RECORD_HEADER + u64::from(word(&scratch, 8, be));
            (need, need.min(MAX_BUFFER as u64))
        } else {
            (u64::MAX, RECORD_HEADER)
        };
        // `target` is at most MAX_BUFFER, so this never over-allocates.
        s.gather(&mut scratch, usize::try_from(target).unwrap_or(MAX_BUFFER));
        let stop = match s.stop {
            Some(how) if (scratch.len() as u64) < target => Some((x + scratch.len() as u64, how)),
            _ => None,
        };
        if let Err((kind, message)) = old.settle(x, need, stop) {
            stats.issue = Some(issue(kind, stats.packets, message));
            return;
        }
        // `settle` only accepts records below MAX_BUFFER, all of which were gathered.
        let Some(data) = scratch.get(RECORD_HEADER as usize..) else { return };
        let when = when(word(&scratch, 0, be), word(&scratch, 4, be));
        emit(stats, on_packet, when, data, word(&scratch, 12, be));
        x += need;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{read_packets_chunked, read_plain};

    /// A classic pcap with the given byte order and unit, link type 1 and records of
    /// (seconds, fraction, data, orig_len).
    fn file(big_endian: bool, nanos: bool, records: &[(u32, u32, Vec<u8>, u32)]) -> Vec<u8> {
        let w =
            |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&if big_endian { x.to_be_bytes() } else { x.to_le_bytes() });
        let mut v = Vec::new();
        w(&mut v, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        let version = if big_endian { [0, 2, 0, 4] } else { [2, 0, 4, 0] };
        v.extend_from_slice(&version);
        for x in [0, 0, 65535, 1] {
            w(&mut v, x);
        }
        for (sec, frac, data, orig) in records {
            for x in [*sec, *frac, data.len() as u32, *orig] {
                w(&mut v, x);
            }
            v.extend_from_slice(data);
        }
        v
    }

    fn records() -> Vec<(u32, u32, Vec<u8>, u32)> {
        vec![
            (100, 250_000, vec![0x45; 20], 20),
            (101, 999_999, vec![1, 2, 3], 60),
            (102, 0, Vec::new(), 0),
            (103, 7, (0..=255).collect(), 256),
            (u32::MAX, u32::MAX, vec![9; 5], 5),
        ]
    }

    type Seen = Vec<(u64, u64, u32, i32, Vec<u8>, u32)>;

    fn run(bytes: &[u8], chunk: usize) -> (Seen, ReadStats) {
        let mut seen = Vec::new();
        let stats = read_packets_chunked(bytes, chunk, &mut |p| {
            seen.push((p.number, p.ts_sec, p.ts_nanos, p.linktype, p.data.to_vec(), p.orig_len))
        });
        (seen, stats)
    }

    /// The same bytes through pcap-parser (the reader this parser replaced for classic files).
    fn run_old(bytes: &[u8]) -> (Seen, ReadStats) {
        let mut seen = Vec::new();
        let mut stats = ReadStats::default();
        read_plain(
            bytes,
            &mut |p| seen.push((p.number, p.ts_sec, p.ts_nanos, p.linktype, p.data.to_vec(), p.orig_len)),
            &mut stats,
        );
        (seen, stats)
    }

    #[test]
    fn sniffs_the_four_magics_only() {
        assert_eq!(sniff(&[0xd4, 0xc3, 0xb2, 0xa1]), Some(Format { big_endian: false, nanos: false }));
        assert_eq!(sniff(&[0x4d, 0x3c, 0xb2, 0xa1]), Some(Format { big_endian: false, nanos: true }));
        assert_eq!(sniff(&[0xa1, 0xb2, 0xc3, 0xd4]), Some(Format { big_endian: true, nanos: false }));
        assert_eq!(sniff(&[0xa1, 0xb2, 0x3c, 0x4d]), Some(Format { big_endian: true, nanos: true }));
        assert_eq!(sniff(&[0x34, 0xcd, 0xb2, 0xa1]), None, "modified pcap stays with pcap-parser");
        assert_eq!(sniff(&[0x0a, 0x0d, 0x0d, 0x0a]), None);
        assert_eq!(sniff(&[0xd4, 0xc3, 0xb2]), None);
    }

    #[test]
    fn both_byte_orders_and_units() {
        for be in [false, true] {
            for nanos in [false, true] {
                let f = file(be, nanos, &records());
                let (seen, stats) = run(&f, 1 << 20);
                assert_eq!(stats.issue, None);
                assert_eq!((stats.packets, stats.snaplen_cut, stats.first_snaplen_cut), (5, 1, Some(2)));
                assert_eq!(stats.bytes, 20 + 3 + 256 + 5);
                let frac = |f: u32| if nanos { f } else { f.saturating_mul(1000) };
                let want: Seen = records()
                    .into_iter()
                    .enumerate()
                    .map(|(i, (s, f, d, o))| (i as u64 + 1, u64::from(s), frac(f), 1, d, o))
                    .collect();
                assert_eq!(seen, want, "be {be} nanos {nanos}");
                assert_eq!((seen, stats), run_old(&f));
            }
        }
    }

    #[test]
    fn every_chunk_size_gives_the_same_packets() {
        let f = file(false, false, &records());
        let want = run(&f, 1 << 20);
        for chunk in 1..=f.len() + 1 {
            assert_eq!(run(&f, chunk), want, "chunk {chunk}");
        }
    }

    #[test]
    fn cut_at_every_offset() {
        for be in [false, true] {
            let f = file(be, true, &records());
            // Offsets where a record ends: a cut there is a clean end.
            let mut ends = vec![FILE_HEADER];
            for (_, _, d, _) in records() {
                ends.push(ends[ends.len() - 1] + 16 + d.len());
            }
            for cut in 0..=f.len() {
                let old = run_old(&f[..cut]);
                for chunk in [1, 7, 16, 64, 4096] {
                    let (seen, stats) = run(&f[..cut], chunk);
                    let whole = ends.iter().filter(|&&e| e <= cut).count().saturating_sub(1) as u64;
                    assert_eq!(stats.packets, whole, "cut {cut} chunk {chunk}");
                    assert_eq!(seen.len() as u64, whole);
                    let issue = stats.issue.as_ref().map(|i| (i.kind, i.after_packet, i.message.as_str()));
                    let want = match cut {
                        0 => Some((IssueKind::BadMagic, 0, "empty file")),
                        1..=23 => Some((IssueKind::Truncated, 0, "file ends inside the capture header")),
                        c if ends.contains(&c) => None,
                        _ => Some((IssueKind::Truncated, whole, "unexpected end of file")),
                    };
                    assert_eq!(issue, want, "cut {cut} chunk {chunk}");
                    assert_eq!((&seen, &stats), (&old.0, &old.1), "cut {cut} chunk {chunk}");
                }
            }
        }
    }

    /// Records of a MiB and more, cut at several places and claimed beyond MAX_BUFFER: the
    /// reports match pcap-parser's, whose buffer grew by doubling up to MAX_BUFFER.
    #[test]
    fn large_and_oversized_records_match_the_old_reader() {
        const MIB: usize = 1 << 20;
        let small: Vec<_> = (0..1500).map(|i| (i, 0, vec![0x45; 1000], 1000)).collect();
        let mut cases = Vec::new();
        for lead in [&[][..], &small[..]] {
            for n in [MIB - 17, MIB - 16, 2 * MIB, MAX_BUFFER - 17, MAX_BUFFER - 16] {
                let mut recs = lead.to_vec();
                recs.push((1, 2, vec![7; n], n as u32));
                recs.push((3, 4, vec![8; 60], 60));
                let f = file(false, false, &recs);
                let start = f.len() - 76 - n;
                for cut in [start + 10, start + 100, start + MIB / 2, start + MIB + 3, start + 5 * MIB, f.len() - 1] {
                    if cut < f.len() {
                        cases.push(f[..cut].to_vec());
                    }
                }
                cases.push(f);
            }
            let mut f = file(false, false, lead);
            f.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 60, 0, 0, 0]);
            for rem in [0, 100, 8 * MIB - 16, 8 * MIB - 15, 9 * MIB] {
                let mut g = f.clone();
                g.resize(f.len() + rem, 0);
                cases.push(g);
            }
        }
        for (i, case) in cases.iter().enumerate() {
            let old = run_old(case);
            for chunk in [4096, 1 << 20] {
                assert_eq!(run(case, chunk), old, "case {i} chunk {chunk}");
            }
        }
        let mut f = file(false, false, &[]);
        f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x01, 0, 0, 0, 0]);
        f.resize(f.len() + MAX_BUFFER + 10, 0);
        let stats = run(&f, 1 << 20).1;
        assert_eq!(stats.issue.map(|i| (i.kind, i.after_packet)), Some((IssueKind::Corrupt, 0)), "incl_len > 16 MiB");
    }
}
