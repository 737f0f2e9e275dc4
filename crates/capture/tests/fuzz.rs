//! Fuzz-style property tests: arbitrary bytes through the reader and the decoders never panic.

use netsleuth_capture::analyze_reader;
use netsleuth_capture::wire::{decode_link, linktype, TcpSegment, UdpDatagram};
use proptest::prelude::*;

/// A valid pcap file header for `linktype`, so the fuzzed bytes reach the packet decoders.
fn header(lt: u32) -> Vec<u8> {
    let mut v = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    v.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0]);
    v.extend_from_slice(&lt.to_le_bytes());
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let r = analyze_reader("fuzz", &bytes[..]);
        prop_assert!(r.stats.packets <= bytes.len() as u64);
    }

    #[test]
    fn arbitrary_records_after_a_valid_header_never_panic(
        lt in prop::sample::select(vec![0u32, 1, 101, 108, 113, 228, 229, 276]),
        body in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        let mut file = header(lt);
        file.extend_from_slice(&body);
        let r = analyze_reader("fuzz", &file[..]);
        prop_assert!(r.counts.packets == r.stats.packets);
    }

    #[test]
    fn arbitrary_frames_never_panic(
        lt in prop::sample::select(vec![linktype::NULL, linktype::ETHERNET, linktype::RAW, linktype::LINUX_SLL, linktype::LINUX_SLL2]),
        frame in proptest::collection::vec(any::<u8>(), 0..512),
        l4_len in 0usize..2000,
    ) {
        let _ = decode_link(lt, &frame);
        let _ = TcpSegment::new_checked(&frame, l4_len);
        let _ = UdpDatagram::new_checked(&frame);
    }
}

#[test]
fn fuzzed_ipv4_frames_inside_a_valid_capture_never_panic() {
    // Every prefix of a frame that is IPv4/UDP/DNS: each cut is a different truncation.
    let frame: Vec<u8> = vec![
        0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, 0, 53, 0, 20, 0, 0, 0x12,
        0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
    ];
    for cut in 0..=frame.len() {
        let mut file = header(101);
        let data = &frame[..cut];
        file.extend_from_slice(&[0; 8]);
        file.extend_from_slice(&(data.len() as u32).to_le_bytes());
        file.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        file.extend_from_slice(data);
        let r = analyze_reader("cut", &file[..]);
        assert_eq!(r.stats.packets, 1, "cut {cut}");
        assert_eq!(r.stats.snaplen_cut, u64::from(cut < frame.len()), "cut {cut}");
    }
}
