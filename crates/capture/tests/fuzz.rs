//! Fuzz-style property tests: arbitrary bytes through the reader and the decoders never panic.

use netsleuth_capture::wire::{decode_link, linktype, TcpSegment, UdpDatagram};
use netsleuth_capture::{analyze_reader, analyze_reader_with, Options};
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

/// A raw-IP pcap (link type 101) with the given frames, 1 ms apart.
fn raw_pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut file = header(101);
    for (i, f) in frames.iter().enumerate() {
        file.extend_from_slice(&(i as u32).to_le_bytes());
        file.extend_from_slice(&((i as u32 % 1000) * 1000).to_le_bytes());
        file.extend_from_slice(&(f.len() as u32).to_le_bytes());
        file.extend_from_slice(&(f.len() as u32).to_le_bytes());
        file.extend_from_slice(f);
    }
    file
}

/// An IPv4 packet with fuzzed flags/fragment field around a transport header on one of the
/// ports the analyses look at (DNS over UDP/TCP, IKE, NAT-T/ESP-in-UDP, WireGuard, VXLAN).
fn structured_packet() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![1u8, 6, 17, 50, 58]),
        prop::sample::select(vec![53u16, 500, 4500, 51820, 4789, 8472, 80]),
        any::<bool>(),
        any::<u16>(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(proto, port, to_server, frag, payload)| {
            let mut l4 = Vec::new();
            let (sport, dport) = if to_server { (40000, port) } else { (port, 40000) };
            match proto {
                6 => {
                    l4.extend_from_slice(&sport.to_be_bytes());
                    l4.extend_from_slice(&dport.to_be_bytes());
                    l4.extend_from_slice(payload.get(..8).unwrap_or(&[0; 8]));
                    l4.extend_from_slice(&[0x50, payload.first().copied().unwrap_or(0x18), 0x10, 0, 0, 0, 0, 0]);
                }
                17 => {
                    l4.extend_from_slice(&sport.to_be_bytes());
                    l4.extend_from_slice(&dport.to_be_bytes());
                    l4.extend_from_slice(&((payload.len() + 8) as u16).to_be_bytes());
                    l4.extend_from_slice(&[0, 0]);
                }
                _ => {}
            }
            l4.extend_from_slice(&payload);
            let total = (20 + l4.len()) as u16;
            let mut v = vec![0x45, 0];
            v.extend_from_slice(&total.to_be_bytes());
            v.extend_from_slice(&[0, 1]);
            v.extend_from_slice(&frag.to_be_bytes());
            v.extend_from_slice(&[64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
            if !to_server {
                v[12..20].copy_from_slice(&[10, 0, 0, 2, 10, 0, 0, 1]);
            }
            v.extend_from_slice(&l4);
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Sequences of plausible packets reach the stateful analyses (TCP sequence tracking, DNS
    /// over TCP reassembly limits, IKE/ESP/WireGuard tables, fragments, MTU checks).
    #[test]
    fn structured_packet_sequences_never_panic(
        frames in proptest::collection::vec(structured_packet(), 1..40),
        mtu in prop::option::of(68u32..1500),
    ) {
        let file = raw_pcap(&frames);
        let r = analyze_reader_with("fuzz", &file[..], Options { mtu });
        prop_assert_eq!(r.stats.packets, frames.len() as u64);
        for f in &r.findings {
            prop_assert!(!f.evidence.is_empty(), "{:?}", f);
            prop_assert!(netsleuth_capture::rule(&f.rule).is_some(), "{:?}", f);
        }
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
