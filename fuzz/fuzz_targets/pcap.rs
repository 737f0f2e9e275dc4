//! Capture reader and packet analyses on arbitrary bytes: never a panic, every packet read is
//! analysed, and every finding has evidence and a catalog entry.
#![no_main]

use netsleuth_capture::{analyze_reader_with, Options};

/// Link types the decoders know, so fuzzed records reach them behind a valid file header.
const LINKTYPES: [u32; 8] = [0, 1, 101, 108, 113, 228, 229, 276];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // First byte: bit 7 set = the bytes are a whole file; else the low 3 bits pick a link type
    // for a valid pcap header in front of the rest, and bit 3 sets `--mtu 1280`.
    let Some((&mode, rest)) = data.split_first() else { return };
    let options = Options { mtu: (mode & 8 != 0).then_some(1280) };
    let file: Vec<u8> = if mode & 0x80 != 0 {
        rest.to_vec()
    } else {
        let lt = LINKTYPES[usize::from(mode & 7)];
        let mut v = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
        v.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0]);
        v.extend_from_slice(&lt.to_le_bytes());
        v.extend_from_slice(rest);
        v
    };
    let r = analyze_reader_with("fuzz.pcap", &file[..], options);
    assert_eq!(r.counts.packets, r.stats.packets);
    for f in &r.findings {
        assert!(!f.evidence.is_empty(), "{f:?}");
        assert!(netsleuth_capture::rule(&f.rule).is_some(), "{f:?}");
    }
});
