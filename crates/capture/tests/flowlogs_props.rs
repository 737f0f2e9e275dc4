//! Property tests of the flow-log reader: arbitrary and half-valid input never panics, every
//! line is accounted for, and the fast parser agrees with the field-by-field reference.

use netsleuth_capture::flowlogs::{self, parse, Format, FormatOrigin, Options};
use proptest::prelude::*;

/// Tokens that are valid in some column, invalid in others, or invalid everywhere.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("2".to_string()),
        Just("-".to_string()),
        Just("ACCEPT".to_string()),
        Just("REJECT".to_string()),
        Just("OK".to_string()),
        Just("NODATA".to_string()),
        Just("SKIPDATA".to_string()),
        Just("eni-1235b8ca123456789".to_string()),
        Just("2001:db8::1".to_string()),
        Just("".to_string()),
        (0u32..=u32::MAX).prop_map(|v| std::net::Ipv4Addr::from(v).to_string()),
        (0u64..100_000).prop_map(|v| v.to_string()),
        "[0-9]{18,22}",
        "[ -~]{0,6}",
    ]
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::collection::vec(token(), 14).prop_map(|t| t.join(" ")),
        1 => proptest::collection::vec(token(), 0..20).prop_map(|t| t.join(" ")),
        1 => Just(flowlogs::format::DEFAULT_FIELDS.join(" ")),
        1 => "[\\x00-\\xff]{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_line_is_accounted_for(lines in proptest::collection::vec(line(), 0..30), gz in any::<bool>()) {
        let mut data = lines.join("\n").into_bytes();
        if gz {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, &data).unwrap();
            data = e.finish().unwrap();
        }
        let r = flowlogs::analyze_bytes("p.log", &data, Options::default());
        let f = &r.files[0];
        prop_assert_eq!(f.gzip, gz);
        prop_assert_eq!(f.records, f.accepted + f.rejected + f.nodata + f.skipdata + f.incomplete);
        let accounted = f.headers + f.blank + f.records + f.malformed;
        prop_assert!(f.lines == accounted || (f.lines == accounted + 1 && f.format_problem.is_some()), "{:?}", f);
        prop_assert!(f.read_error.is_none());
        for finding in &r.findings {
            prop_assert!(!finding.evidence.is_empty());
        }
    }

    #[test]
    fn fast_and_tolerant_parsers_agree(tokens in proptest::collection::vec(token(), 14)) {
        let format = Format::default_v2(FormatOrigin::Given);
        let line = tokens.join(" ");
        let fast = parse::parse_line(&format, line.as_bytes());
        // The reference: the same line with tabs, which always takes the tolerant path.
        let tabbed = tokens.join("\t");
        let tolerant = parse::parse_line(&format, tabbed.as_bytes());
        match (&fast, &tolerant) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!((a.src, a.dst, a.src_port, a.dst_port, a.protocol), (b.src, b.dst, b.src_port, b.dst_port, b.protocol));
                prop_assert_eq!((a.packets, a.bytes, a.start, a.end, a.action, a.log_status), (b.packets, b.bytes, b.start, b.end, b.action, b.log_status));
            }
            (Err(_), Err(_)) => {}
            // Empty tokens make double spaces, which the tolerant splitter collapses.
            _ => prop_assert!(tokens.iter().any(String::is_empty), "{:?} vs {:?} for {:?}", fast, tolerant, line),
        }
    }
}
