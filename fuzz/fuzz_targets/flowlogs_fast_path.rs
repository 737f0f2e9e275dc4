//! The default-format fast paths against the tolerant parser.
//!
//! One line: the input as 14 space-separated columns; joined with tabs instead, the same
//! columns always take the tolerant path. Both must decode every column alike, or both
//! refuse it. A buffer of lines: a record read straight from the buffer
//! (`parse_default_at`) must end at its line's newline and decode as that line on its own.
#![no_main]

use netsleuth_capture::flowlogs::{parse, Format, FormatOrigin};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let format = Format::default_v2(FormatOrigin::Given);
    buffer_of_lines(&format, data);
    one_line(&format, data);
});

fn buffer_of_lines(format: &Format, data: &[u8]) {
    let mut start = 0;
    while start < data.len() {
        let Some(nl) = data[start..].iter().position(|b| *b == b'\n').map(|i| start + i) else { break };
        let mut rec = parse::Record::default();
        if let Some((len, next)) = parse::parse_default_at(&data[start..], &mut rec) {
            let line = &data[start..nl];
            assert_eq!(next, nl + 1 - start, "{:?}", String::from_utf8_lossy(line));
            assert_eq!(line.strip_suffix(b"\r").unwrap_or(line).len(), len);
            assert_eq!(parse::parse_line(format, &line[..len]), Ok(rec), "{:?}", String::from_utf8_lossy(line));
        }
        start = nl + 1;
    }
}

fn one_line(format: &Format, data: &[u8]) {
    let columns: Vec<&[u8]> = data.split(|b| *b == b' ').collect();
    // Only lines the fast path may take: 14 non-empty columns, single spaces, one line.
    if columns.len() != 14 || columns.iter().any(|c| c.is_empty() || c.iter().any(|b| matches!(b, b'\t' | b'\n' | b'\r'))) {
        return;
    }
    let fast = parse::parse_line(format, data);
    let tabbed = columns.join(&b'\t');
    let tolerant = parse::parse_line(format, &tabbed);
    match (&fast, &tolerant) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{:?}", String::from_utf8_lossy(data)),
        (Err(_), Err(_)) => {}
        _ => panic!("fast {fast:?} but tolerant {tolerant:?} for {:?}", String::from_utf8_lossy(data)),
    }
}
