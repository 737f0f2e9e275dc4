//! Streaming reader for pcap and pcapng files (gzip-compressed or not): hands each packet
//! to a callback and records read problems (truncation, bad magic, snaplen cuts) with packet numbers.

use std::io::{Cursor, Read};

use crate::{classic, readahead};

use pcap_parser::traits::PcapNGPacketBlock;
use pcap_parser::{Block, PcapBlockOwned, PcapError};

/// pcap-parser's initial buffer (1 MiB: fewer read calls and buffer shifts than 64 KiB);
/// grown up to `MAX_BUFFER` when one block does not fit. Classic pcap no longer goes through
/// it but reports problems as it did (see `classic::OldBuffer`).
pub(crate) const BUFFER: usize = 1 << 20;
/// The largest block accepted (pcapng blocks for jumbo/TSO frames stay well below this).
pub(crate) const MAX_BUFFER: usize = 1 << 24;

/// One captured packet as handed to the callback.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a> {
    /// 1-based number, as Wireshark counts.
    pub number: u64,
    pub ts_sec: u64,
    pub ts_nanos: u32,
    /// LINKTYPE_* value of the interface the packet was captured on.
    pub linktype: i32,
    pub data: &'a [u8],
    /// Length on the wire (larger than `data.len()` when the snap length cut it).
    pub orig_len: u32,
}

impl RawPacket<'_> {
    /// `seconds.microseconds`, as `Location::Packet` timestamps are written.
    pub fn timestamp(&self) -> String {
        format!("{}.{:06}", self.ts_sec, self.ts_nanos / 1000)
    }

    /// Seconds as a float, for time differences.
    pub fn time(&self) -> f64 {
        self.ts_sec as f64 + f64::from(self.ts_nanos) / 1e9
    }
}

/// What kind of read problem was met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueKind {
    /// Not a pcap or pcapng file (or empty).
    BadMagic,
    /// The file ends inside a block: the capture was cut (tcpdump killed, disk full).
    Truncated,
    /// A block or header could not be parsed; reading stops there.
    Corrupt,
    /// The file could not be read at all (I/O error, broken gzip stream).
    Io,
}

/// A problem reading the file; `after_packet` is the last packet read before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadIssue {
    pub kind: IssueKind,
    pub after_packet: u64,
    pub message: String,
}

/// Counters of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub packets: u64,
    pub bytes: u64,
    /// Packets whose captured length is below their wire length.
    pub snaplen_cut: u64,
    /// First packet cut by the snap length.
    pub first_snaplen_cut: Option<u64>,
    /// A read problem that stopped reading (at most one per file).
    pub issue: Option<ReadIssue>,
}

/// Reads every packet of `input` (pcap or pcapng, optionally gzip-compressed) in order,
/// calling `on_packet` for each. Never fails: problems end up in `ReadStats::issue`.
///
/// For classic pcap and gzip input a second thread reads (and decompresses) ahead while this
/// one parses and analyses.
pub fn read_packets(input: impl Read + Send, on_packet: &mut dyn FnMut(&RawPacket<'_>)) -> ReadStats {
    read_packets_chunked(input, readahead::CHUNK, on_packet)
}

/// [`read_packets`] with read-ahead chunks of `chunk` bytes (tests use tiny ones so records
/// straddle chunk boundaries everywhere).
pub(crate) fn read_packets_chunked(
    input: impl Read + Send,
    chunk: usize,
    on_packet: &mut dyn FnMut(&RawPacket<'_>),
) -> ReadStats {
    let mut stats = ReadStats::default();
    let mut input = input;
    let mut head = Vec::with_capacity(BUFFER);
    if let Err(e) = (&mut input).take(BUFFER as u64).read_to_end(&mut head) {
        stats.issue = Some(issue(IssueKind::Io, 0, format!("cannot read: {e}")));
        return stats;
    }
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    if !gzip && head.get(..4).and_then(classic::sniff).is_none() {
        // pcapng (or not a capture), uncompressed: pcap-parser straight from the input, as a
        // read-ahead thread would add a copy and gain nothing here.
        read_plain(Cursor::new(head).chain(input), on_packet, &mut stats);
        return stats;
    }
    std::thread::scope(|scope| {
        let (chunks, producer) = match readahead::spawn(scope, (head, input, gzip), chunk) {
            Ok(c) => c,
            Err(e) => {
                stats.issue = Some(issue(IssueKind::Io, 0, format!("cannot start the reading thread: {e}")));
                return stats;
            }
        };
        read_chunks(chunks, on_packet, &mut stats);
        // `read_chunks` dropped the chunks, so the producer stops. Joining (rather than leaving
        // it to the scope) also waits for its thread-local destructors, which leak checkers
        // would otherwise report.
        if let Err(panic) = producer.join() {
            std::panic::resume_unwind(panic);
        }
        stats
    })
}

fn read_chunks(mut chunks: readahead::Chunks, on_packet: &mut dyn FnMut(&RawPacket<'_>), stats: &mut ReadStats) {
    // An I/O error in the first BUFFER bytes was reported before any packet (they were read
    // in one go); keep that.
    if let Err(e) = chunks.prefetch(BUFFER) {
        stats.issue = Some(issue(IssueKind::Io, 0, format!("cannot read: {e}")));
        return;
    }
    match classic::sniff(&chunks.peek(4)) {
        Some(format) => classic::read(chunks, format, on_packet, stats),
        None => read_plain(readahead::ChunkReader::new(chunks), on_packet, stats),
    }
}

pub(crate) fn issue(kind: IssueKind, after_packet: u64, message: String) -> ReadIssue {
    ReadIssue { kind, after_packet, message }
}

/// pcapng (and anything that is not classic pcap) through pcap-parser.
pub(crate) fn read_plain(mut input: impl Read, on_packet: &mut dyn FnMut(&RawPacket<'_>), stats: &mut ReadStats) {
    // pcap_parser's create_reader sniffs the format from one `read`; give it a full buffer
    // (a gzip stream returns short reads).
    let mut head = Vec::with_capacity(BUFFER);
    if let Err(e) = (&mut input).take(BUFFER as u64).read_to_end(&mut head) {
        stats.issue = Some(issue(IssueKind::Io, 0, format!("cannot read: {e}")));
        return;
    }
    if head.is_empty() {
        stats.issue = Some(issue(IssueKind::BadMagic, 0, "empty file".to_string()));
        return;
    }
    let magic: Vec<String> = head.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let mut reader = match pcap_parser::create_reader(BUFFER, Cursor::new(head).chain(input)) {
        Ok(r) => r,
        Err(PcapError::Incomplete(_)) => {
            stats.issue = Some(issue(IssueKind::Truncated, 0, "file ends inside the capture header".to_string()));
            return;
        }
        Err(_) => {
            stats.issue =
                Some(issue(IssueKind::BadMagic, 0, format!("not a pcap or pcapng file (magic {})", magic.join(" "))));
            return;
        }
    };
    let mut legacy_linktype = None::<i32>;
    let mut legacy_nanos = false;
    // pcapng: per interface (link type, units per second); reset at each section.
    let mut interfaces: Vec<(i32, u64)> = Vec::new();
    let mut size = BUFFER;
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        legacy_linktype = Some(h.network.0);
                        legacy_nanos = h.is_nanosecond_precision();
                    }
                    PcapBlockOwned::Legacy(b) => {
                        let nanos = if legacy_nanos { b.ts_usec } else { b.ts_usec.saturating_mul(1000) };
                        let lt = legacy_linktype.unwrap_or(-1);
                        emit(stats, on_packet, (lt, u64::from(b.ts_sec), nanos), b.data, b.origlen);
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => interfaces.clear(),
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        interfaces.push((idb.linktype.0, idb.ts_resolution().unwrap_or(1_000_000).max(1)));
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let (lt, res) = usize::try_from(epb.if_id)
                            .ok()
                            .and_then(|i| interfaces.get(i).copied())
                            .unwrap_or((-1, 1_000_000));
                        let ts = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                        let frac = u128::from(ts % res) * 1_000_000_000 / u128::from(res);
                        let when = (lt, ts / res, u32::try_from(frac).unwrap_or(0));
                        emit(stats, on_packet, when, epb.packet_data(), epb.orig_len());
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        // No timestamp; link type of interface 0.
                        let lt = interfaces.first().map_or(-1, |i| i.0);
                        emit(stats, on_packet, (lt, 0, 0), spb.packet_data(), spb.orig_len());
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                // No shift here: `consume` moves the unread half of the buffer down every time
                // half of it is used (a memmove of ~half the file); `refill` shifts only the
                // partial block left at the end.
                reader.consume_noshift(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if reader.reader_exhausted() {
                    // Data left that never forms a whole block.
                    let left = reader.data().len();
                    stats.issue = Some(issue(
                        IssueKind::Truncated,
                        stats.packets,
                        format!("file ends inside a block ({left} bytes left over)"),
                    ));
                    break;
                }
                if let Err(e) = reader.refill() {
                    stats.issue = Some(issue(IssueKind::Io, stats.packets, format!("cannot read: {e:?}")));
                    break;
                }
            }
            Err(PcapError::BufferTooSmall) => {
                // Fill what space is left first: if the file ends before the block it
                // announces, growing (up to 16 MiB) would be wasted work.
                if reader.refill().is_err() {
                    stats.issue = Some(issue(IssueKind::Io, stats.packets, "read error".to_string()));
                    break;
                }
                if reader.reader_exhausted() {
                    // Growing cannot help: the file ends before the block it announces.
                    stats.issue = Some(issue(
                        IssueKind::Truncated,
                        stats.packets,
                        "file ends inside a block larger than the read buffer".to_string(),
                    ));
                    break;
                }
                size = size.saturating_mul(2);
                if size > MAX_BUFFER || !reader.grow(size) {
                    stats.issue =
                        Some(issue(IssueKind::Corrupt, stats.packets, format!("block larger than {MAX_BUFFER} bytes")));
                    break;
                }
            }
            Err(PcapError::UnexpectedEof) => {
                stats.issue = Some(issue(IssueKind::Truncated, stats.packets, "unexpected end of file".to_string()));
                break;
            }
            Err(PcapError::ReadError) => {
                stats.issue = Some(issue(IssueKind::Io, stats.packets, "read error".to_string()));
                break;
            }
            Err(e) => {
                let what = match e {
                    PcapError::NomError(_, k) => format!("{k:?}"),
                    PcapError::OwnedNomError(_, k) => format!("{k:?}"),
                    other => format!("{other:?}"),
                };
                stats.issue = Some(issue(IssueKind::Corrupt, stats.packets, format!("corrupt block ({what})")));
                break;
            }
        }
    }
}

pub(crate) fn emit(
    stats: &mut ReadStats,
    on_packet: &mut dyn FnMut(&RawPacket<'_>),
    (linktype, ts_sec, ts_nanos): (i32, u64, u32),
    data: &[u8],
    orig_len: u32,
) {
    stats.packets += 1;
    stats.bytes += data.len() as u64;
    if (data.len() as u64) < u64::from(orig_len) {
        stats.snaplen_cut += 1;
        stats.first_snaplen_cut.get_or_insert(stats.packets);
    }
    on_packet(&RawPacket { number: stats.packets, ts_sec, ts_nanos, linktype, data, orig_len });
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A little-endian microsecond pcap with the given link type and (ts, data) records.
    pub(crate) fn pcap(linktype: u32, records: &[(u32, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        v.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        v.extend_from_slice(&65535u32.to_le_bytes());
        v.extend_from_slice(&linktype.to_le_bytes());
        for (ts, data) in records {
            v.extend_from_slice(&ts.to_le_bytes());
            v.extend_from_slice(&250_000u32.to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(&(data.len() as u32 + 10).to_le_bytes());
            v.extend_from_slice(data);
        }
        v
    }

    #[test]
    fn reads_packets_and_counts_snaplen_cuts() {
        let file = pcap(1, &[(100, &[1, 2, 3]), (101, &[4; 70_000])]);
        let mut seen = Vec::new();
        let stats = read_packets(&file[..], &mut |p| seen.push((p.number, p.timestamp(), p.data.len(), p.linktype)));
        assert_eq!(seen, vec![(1, "100.250000".to_string(), 3, 1), (2, "101.250000".to_string(), 70_000, 1)]);
        assert_eq!((stats.packets, stats.snaplen_cut, stats.first_snaplen_cut), (2, 2, Some(1)));
        assert_eq!(stats.issue, None);
    }

    #[test]
    fn truncated_and_bad_magic_are_reported() {
        let file = pcap(1, &[(100, &[1, 2, 3]), (101, &[4; 50])]);
        let stats = read_packets(&file[..file.len() - 7], &mut |_| {});
        assert_eq!(stats.packets, 1);
        assert_eq!(stats.issue.as_ref().map(|i| (i.kind, i.after_packet)), Some((IssueKind::Truncated, 1)));
        let stats = read_packets(&b"hello world, this is not a capture file at all"[..], &mut |_| {});
        assert_eq!(stats.issue.map(|i| i.kind), Some(IssueKind::BadMagic));
        let stats = read_packets(&[][..], &mut |_| {});
        assert_eq!(stats.issue.map(|i| i.message), Some("empty file".to_string()));
    }

    /// Serves `data`, then fails.
    struct FailAfter(Vec<u8>, usize);

    impl Read for FailAfter {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.1 == self.0.len() {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0.len() - self.1);
            buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }

    #[test]
    fn io_errors_are_reported_where_they_happen() {
        let records: Vec<(u32, &[u8])> = (0..2000).map(|i| (i, &[0x45u8; 1000][..])).collect();
        let file = pcap(1, &records);
        // In the first MiB: nothing is analysed (it was read in one go before parsing).
        let stats = read_packets(FailAfter(file[..5000].to_vec(), 0), &mut |_| {});
        let issue = stats.issue.map(|i| (i.kind, i.after_packet, i.message));
        assert_eq!(issue, Some((IssueKind::Io, 0, "cannot read: disk on fire".to_string())));
        // Later: every record before the failure is read.
        let cut = 24 + 1016 * 1500 + 500;
        for chunk in [1000, readahead::CHUNK] {
            let mut n = 0;
            let stats = read_packets_chunked(FailAfter(file[..cut].to_vec(), 0), chunk, &mut |_| n += 1);
            let issue = stats.issue.map(|i| (i.kind, i.after_packet, i.message));
            assert_eq!(issue, Some((IssueKind::Io, 1500, "cannot read: ReadError".to_string())));
            assert_eq!(n, 1500);
        }
    }

    type Seen = Vec<(u64, u64, u32, i32, Vec<u8>)>;

    fn collect(read: impl FnOnce(&mut dyn FnMut(&RawPacket<'_>)) -> ReadStats) -> (Seen, ReadStats) {
        let mut seen = Vec::new();
        let stats = read(&mut |p| seen.push((p.number, p.ts_sec, p.ts_nanos, p.linktype, p.data.to_vec())));
        (seen, stats)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    /// Gzipped pcapng goes to pcap-parser from the read-ahead chunks: the same packets and
    /// problems as plain pcapng, whatever the chunk size.
    #[test]
    fn gzipped_pcapng_reads_the_same_through_any_chunk_size() {
        let file = include_bytes!("../../../tests/fixtures/captures/wg-blocked.pcapng");
        for cut in [file.len(), file.len() - 5] {
            let gz = gzip(&file[..cut]);
            let want = collect(|f| {
                let mut stats = ReadStats::default();
                read_plain(&file[..cut], f, &mut stats);
                stats
            });
            assert_eq!((want.0.len(), want.1.issue.is_some()), if cut == file.len() { (3, false) } else { (2, true) });
            for chunk in [1, 7, 64, 4096] {
                let got = collect(|f| read_packets_chunked(&gz[..], chunk, f));
                assert_eq!(got, want, "cut {cut} chunk {chunk}");
            }
        }
    }

    #[test]
    fn gzip_is_transparent() {
        use std::io::Write;
        let file = pcap(101, &[(7, &[0x45; 20])]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&file).unwrap();
        let gz = gz.finish().unwrap();
        let mut n = 0;
        let stats = read_packets(&gz[..], &mut |p| n += p.data.len());
        assert_eq!((stats.packets, n, stats.issue), (1, 20, None));
    }
}
