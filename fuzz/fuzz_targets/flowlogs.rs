//! Flow-log reader and analyses on arbitrary bytes: never a panic, and every line is
//! accounted for (record, header, blank or malformed) so nothing is skipped silently.
#![no_main]

use netsleuth_capture::flowlogs::{self, Format, FormatOrigin, Options};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The first byte picks the options: with or without --format-fields, a tiny flow limit.
    let (opts, input) = match data.split_first() {
        Some((b, rest)) => {
            let mut o = Options::default();
            if b & 1 == 1 {
                o.format_fields = Format::parse_fields(
                    "version srcaddr dstaddr srcport dstport protocol action flow-direction",
                    FormatOrigin::Given,
                )
                .ok();
            }
            if b & 2 == 2 {
                o.settings.max_flows = 2;
            }
            (o, rest)
        }
        None => (Options::default(), data),
    };
    let r = flowlogs::analyze_bytes("fuzz.log", input, opts);
    let f = &r.files[0];
    assert_eq!(f.records, f.accepted + f.rejected + f.nodata + f.skipdata + f.incomplete);
    let accounted = f.headers + f.blank + f.records + f.malformed;
    assert!(f.lines == accounted || (f.lines == accounted + 1 && f.format_problem.is_some()), "{f:?}");
    for finding in &r.findings {
        assert!(!finding.evidence.is_empty(), "{finding:?}");
    }
});
