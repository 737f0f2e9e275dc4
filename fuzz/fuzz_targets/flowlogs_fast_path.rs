//! The default-format fast path against the tolerant parser on the same columns: the input
//! is one line of 14 space-separated columns; joined with tabs instead, the same columns
//! always take the tolerant path. Both must decode every column alike, or both refuse it.
#![no_main]

use netsleuth_capture::flowlogs::{parse, Format, FormatOrigin};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let columns: Vec<&[u8]> = data.split(|b| *b == b' ').collect();
    // Only lines the fast path may take: 14 non-empty columns, single spaces, one line.
    if columns.len() != 14 || columns.iter().any(|c| c.is_empty() || c.iter().any(|b| matches!(b, b'\t' | b'\n' | b'\r'))) {
        return;
    }
    let format = Format::default_v2(FormatOrigin::Given);
    let fast = parse::parse_line(&format, data);
    let tabbed = columns.join(&b'\t');
    let tolerant = parse::parse_line(&format, &tabbed);
    match (&fast, &tolerant) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{:?}", String::from_utf8_lossy(data)),
        (Err(_), Err(_)) => {}
        _ => panic!("fast {fast:?} but tolerant {tolerant:?} for {:?}", String::from_utf8_lossy(data)),
    }
});
