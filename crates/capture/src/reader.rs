//! Streaming reader for pcap and pcapng files (gzip-compressed or not): hands each packet
//! to a callback and records read problems (truncation, bad magic, snaplen cuts) with packet numbers.

use std::io::{Cursor, Read};

use pcap_parser::traits::PcapNGPacketBlock;
use pcap_parser::{Block, PcapBlockOwned, PcapError};

/// Initial buffer (1 MiB: fewer read calls and buffer shifts than 64 KiB, measured in
/// scripts/bench-pcap.sh); grown up to `MAX_BUFFER` when one block does not fit.
const BUFFER: usize = 1 << 20;
/// The largest block accepted (pcapng blocks for jumbo/TSO frames stay well below this).
const MAX_BUFFER: usize = 1 << 24;

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
pub fn read_packets(input: impl Read, on_packet: &mut dyn FnMut(&RawPacket<'_>)) -> ReadStats {
    let mut stats = ReadStats::default();
    let mut input = input;
    let mut head = Vec::with_capacity(BUFFER);
    if let Err(e) = (&mut input).take(BUFFER as u64).read_to_end(&mut head) {
        stats.issue = Some(issue(IssueKind::Io, 0, format!("cannot read: {e}")));
        return stats;
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::read::MultiGzDecoder::new(Cursor::new(head).chain(input));
        read_plain(gz, on_packet, &mut stats);
    } else {
        read_plain(Cursor::new(head).chain(input), on_packet, &mut stats);
    }
    stats
}

fn issue(kind: IssueKind, after_packet: u64, message: String) -> ReadIssue {
    ReadIssue { kind, after_packet, message }
}

fn read_plain(mut input: impl Read, on_packet: &mut dyn FnMut(&RawPacket<'_>), stats: &mut ReadStats) {
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

fn emit(
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
