//! Flow-log fixtures (tests/fixtures/flowlogs, see README.flowlogs.md) read end to end:
//! exact record counts, findings with file:line evidence, and damaged input reported, not skipped.

use std::path::PathBuf;

use netsleuth_capture::flowlogs::{self, Format, FormatOrigin, Options};
use netsleuth_model::{Finding, Location};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/flowlogs").join(name)
}

fn analyze(names: &[&str], options: Options) -> flowlogs::FlowlogReport {
    let paths: Vec<PathBuf> = names.iter().map(|n| fixture(n)).collect();
    flowlogs::analyze_files(&paths, options).expect("fixtures open")
}

fn by_rule<'a>(report: &'a flowlogs::FlowlogReport, rule: &str) -> Vec<&'a Finding> {
    report.findings.iter().filter(|f| f.rule == rule).collect()
}

fn line_of(f: &Finding, i: usize) -> (String, u32) {
    match &f.evidence[i].location {
        Location::File { path, line: Some(l), .. } => {
            (PathBuf::from(path).file_name().unwrap().to_string_lossy().into_owned(), *l)
        }
        other => panic!("not a file line: {other:?}"),
    }
}

#[test]
fn default_v2_with_header_counts_and_categories() {
    let r = analyze(&["default-v2.log"], Options::default());
    let f = &r.files[0];
    assert!(!f.gzip);
    assert_eq!(f.format.as_deref(), Some("default version 2 (header line)"));
    assert_eq!((f.lines, f.headers, f.records), (21, 1, 20));
    assert_eq!((f.accepted, f.rejected, f.nodata, f.skipdata), (4, 14, 1, 1));
    assert_eq!((f.malformed, f.incomplete), (0, 0));
    assert!(!f.has_problem());

    let cat = |name: &str| r.categories.iter().find(|c| c.category.as_str() == name).unwrap().clone();
    let vpn = cat("vpn");
    assert_eq!((vpn.records, vpn.packets, vpn.bytes, vpn.pairs), (4, 18, 4144, 2));
    let esp = cat("esp");
    assert_eq!((esp.records, esp.packets, esp.bytes, esp.pairs), (1, 10, 1400, 1));
    let vxlan = cat("vxlan");
    assert_eq!((vxlan.records, vxlan.packets, vxlan.bytes, vxlan.pairs), (2, 90, 135000, 2));
    let dns = cat("dns");
    assert_eq!((dns.records, dns.packets, dns.bytes, dns.pairs), (2, 5, 320, 1));
    let bgp = cat("bgp");
    assert_eq!((bgp.records, bgp.pairs), (1, 1));

    // Evidence points at the first record of each category.
    let vpn_f = by_rule(&r, "FLOW-003");
    assert_eq!(vpn_f.len(), 1);
    assert_eq!(line_of(vpn_f[0], 0), ("default-v2.log".to_string(), 4));
    assert!(vpn_f[0].evidence[0].excerpt.contains("203.0.113.12 10.0.1.5 500 500 17"), "{:?}", vpn_f[0].evidence);
    assert!(
        vpn_f[0].detail.contains("4 rejected record(s), 18 packet(s), 4144 byte(s) between 2 distinct"),
        "{}",
        vpn_f[0].detail
    );
    assert!(vpn_f[0].fix.contains("allow udp port 500 from 203.0.113.12 to 10.0.1.5"), "{}", vpn_f[0].fix);
    assert!(vpn_f[0].fix.contains("eni-0a1b2c3d4e5f60001"), "{}", vpn_f[0].fix);
    assert_eq!(line_of(by_rule(&r, "FLOW-004")[0], 0).1, 8);
    assert_eq!(line_of(by_rule(&r, "FLOW-005")[0], 0).1, 9);
    assert_eq!(line_of(by_rule(&r, "FLOW-006")[0], 0).1, 11);
    assert_eq!(line_of(by_rule(&r, "FLOW-007")[0], 0).1, 13);
    let esp_fix = &by_rule(&r, "FLOW-004")[0].fix;
    assert!(esp_fix.contains("allow esp from 203.0.113.12 to 10.0.1.5 in"), "ESP has no port: {esp_fix}");

    // Asymmetric: the TCP reply (line 15) and the documented ICMP reply (line 17); the
    // reverse at line 19 is a day later and does not count.
    let asym = by_rule(&r, "FLOW-008");
    assert_eq!(asym.len(), 2, "{asym:#?}");
    assert_eq!(r.asymmetric.len(), 2);
    let tcp = asym.iter().find(|f| f.subject == "aws/eni/eni-0a1b2c3d4e5f60003").expect("tcp asym");
    assert_eq!(line_of(tcp, 0).1, 15);
    assert_eq!(line_of(tcp, 1).1, 14);
    assert!(tcp.fix.contains("allow tcp to 10.0.1.10 ports 1024-65535"), "{}", tcp.fix);
    let icmp = asym.iter().find(|f| f.subject == "aws/eni/eni-1235b8ca123456789").expect("icmp asym");
    assert_eq!((line_of(icmp, 0).1, line_of(icmp, 1).1), (17, 16));
    assert!(!r.asymmetric.iter().any(|a| a.rejected_at.ends_with(":19")));

    // NODATA and SKIPDATA.
    let skip = by_rule(&r, "FLOW-002");
    assert_eq!(skip.len(), 1);
    assert_eq!(line_of(skip[0], 0).1, 21);
    assert!(skip[0].detail.contains("eni-11111111aaaaaaaaa: 1"), "{}", skip[0].detail);
    assert_eq!(line_of(by_rule(&r, "FLOW-010")[0], 0).1, 20);

    // Top rejected: VXLAN 75000 bytes first, then 60000, then the rejected TCP reply.
    let top: Vec<(u64, &str)> = r.top_by_bytes.iter().map(|t| (t.bytes, t.dst.as_str())).take(3).collect();
    assert_eq!(top, vec![(75000, "10.0.2.30"), (60000, "10.0.2.31"), (9000, "10.0.1.10")]);
    assert_eq!(r.top_by_packets[0].packets, 50);
    // IKE: two records of one flow aggregate into one row.
    let ike = r.top_by_bytes.iter().find(|t| t.dst_port == 500).unwrap();
    assert_eq!((ike.records, ike.packets, ike.bytes, ike.src_ports), (2, 9, 2844, 1));
    assert_eq!(r.totals.rejected, 14);
    assert!(!r.limit_reached);
    assert!(by_rule(&r, "FLOW-001").is_empty());
}

#[test]
fn cloudwatch_export_without_header_is_read_as_default() {
    let r = analyze(&["cloudwatch-v2.log"], Options::default());
    let f = &r.files[0];
    assert_eq!(f.format.as_deref(), Some("default version 2 (default format (no header))"));
    assert_eq!((f.lines, f.headers, f.records, f.accepted, f.rejected, f.nodata), (4, 0, 4, 1, 2, 1));
    // IPv6 WireGuard reject.
    let vpn = by_rule(&r, "FLOW-003");
    assert_eq!(vpn.len(), 1);
    assert_eq!(line_of(vpn[0], 0).1, 4);
    assert!(vpn[0].detail.contains("2001:db8:1::10 -> 2001:db8:2::20 udp port 51820"), "{}", vpn[0].detail);
}

#[test]
fn custom_v5_plain_and_gzip_agree() {
    let plain = analyze(&["custom-v5.log"], Options::default());
    let gz = analyze(&["custom-v5.log.gz"], Options::default());
    assert!(gz.files[0].gzip && !plain.files[0].gzip);
    for r in [&plain, &gz] {
        let f = &r.files[0];
        assert_eq!(f.format.as_deref(), Some("custom, 23 fields (header line)"));
        assert_eq!((f.lines, f.records, f.accepted, f.rejected, f.nodata), (10, 9, 5, 3, 1));
        assert_eq!((f.malformed, f.incomplete), (0, 0));
    }
    assert_eq!(plain.findings.len(), gz.findings.len());
    assert_eq!(plain.totals, gz.totals);

    // The reply 10.0.2.20:443 -> 10.0.1.10:51000 is rejected arriving at eni-0aaaa... while the
    // request was accepted: the inbound NACL of that subnet lacks the return rule.
    let asym = by_rule(&plain, "FLOW-008");
    assert_eq!(asym.len(), 1);
    assert_eq!(asym[0].subject, "aws/eni/eni-0aaaa1111bbbb2222");
    assert_eq!(line_of(asym[0], 0).1, 5);
    assert!(asym[0].detail.contains("inbound rules of the network ACL"), "{}", asym[0].detail);
    assert!(asym[0].evidence[0].excerpt.contains("(ingress)"), "{:?}", asym[0].evidence);

    // VXLAN rejected; WireGuard on 51821 is not VPN by default...
    assert_eq!(line_of(by_rule(&plain, "FLOW-005")[0], 0).1, 6);
    assert!(by_rule(&plain, "FLOW-003").is_empty());
    // ...but is with the extra port.
    let mut o = Options::default();
    o.settings.vpn_ports.push(51821);
    let r = analyze(&["custom-v5.log"], o);
    let vpn = by_rule(&r, "FLOW-003");
    assert_eq!(vpn.len(), 1);
    assert_eq!(line_of(vpn[0], 0).1, 7);
    assert!(vpn[0].fix.contains("(ingress rule)"), "{}", vpn[0].fix);
}

#[test]
fn malformed_lines_are_counted_with_line_numbers() {
    let r = analyze(&["malformed.log"], Options::default());
    let f = &r.files[0];
    assert_eq!((f.lines, f.blank, f.records, f.malformed, f.incomplete), (11, 1, 3, 6, 1));
    let lines: Vec<u64> = f.malformed_examples.iter().map(|m| m.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 10]);
    assert_eq!(
        f.malformed_examples[0].message,
        "expected 14 space-separated fields (default version 2 (header line)), found 6"
    );
    assert_eq!(f.malformed_examples[1].message, "field 4 `srcaddr`: `10.0.0.300` is not an IPv4 or IPv6 address");
    assert_eq!(f.malformed_examples[2].message, "field 8 `protocol`: `tcp` is not a protocol number 0-255");
    assert_eq!(f.malformed_examples[3].message, "field 13 `action`: `DROP` is not ACCEPT, REJECT or -");
    let input = by_rule(&r, "FLOW-001");
    assert_eq!(input.len(), 1);
    assert!(input[0].detail.contains("6 malformed line(s) of 11"), "{}", input[0].detail);
    assert!(input[0].detail.contains("1 record(s) lack an address"), "{}", input[0].detail);
    assert_eq!(line_of(input[0], 0).1, 3);
    // The truncated last line is reported as such (the 6th malformed line, beyond the examples).
    let r2 = flowlogs::analyze_bytes(
        "t.log",
        b"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1 2 ACCEPT OK\n2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6",
        Options::default(),
    );
    assert_eq!((r2.files[0].records, r2.files[0].malformed), (1, 1));
    assert!(r2.files[0].malformed_examples[0].message.contains("no newline: the file looks truncated"));
}

#[test]
fn truncated_gzip_is_reported_with_the_records_before() {
    let r = analyze(&["truncated.log.gz"], Options::default());
    let f = &r.files[0];
    assert!(f.gzip);
    // 355 of 533 gzip bytes decode to the header and 10 complete records (see README).
    assert_eq!((f.lines, f.records), (11, 10));
    assert_eq!(
        f.read_error.as_deref(),
        Some("reading stopped after line 11: incomplete deflate stream (the incomplete line 12 was dropped)")
    );
    let input = by_rule(&r, "FLOW-001");
    assert_eq!(input.len(), 1);
    assert!(input[0].detail.contains("record(s) before that were analysed"), "{}", input[0].detail);
}

#[test]
fn custom_format_without_header_needs_format_fields() {
    let r = analyze(&["custom-noheader.log"], Options::default());
    let f = &r.files[0];
    assert_eq!(f.records, 0);
    let problem = f.format_problem.as_deref().unwrap();
    assert!(problem.contains("line 1: no header line and not the default format (it has 23 field(s)"), "{problem}");
    assert!(problem.contains("--format-fields"), "{problem}");
    assert_eq!(by_rule(&r, "FLOW-001").len(), 1);

    let header = std::fs::read_to_string(fixture("custom-v5.log")).unwrap();
    let fields = header.lines().next().unwrap();
    let o = Options {
        format_fields: Some(Format::parse_fields(fields, FormatOrigin::Given).unwrap()),
        ..Options::default()
    };
    let r = analyze(&["custom-noheader.log"], o);
    assert_eq!((r.files[0].records, r.files[0].rejected), (9, 3));
    assert_eq!(by_rule(&r, "FLOW-008").len(), 1);
    assert_eq!(line_of(by_rule(&r, "FLOW-008")[0], 0).1, 4);
}

#[test]
fn several_files_share_one_analysis_and_formats() {
    let r = analyze(&["default-v2.log", "custom-v5.log.gz", "cloudwatch-v2.log"], Options::default());
    assert_eq!(r.files.len(), 3);
    assert_eq!(r.totals.records, 20 + 9 + 4);
    assert_eq!(r.totals.rejected, 14 + 3 + 2);
    // The VPN finding's evidence still names the first file.
    let vpn = by_rule(&r, "FLOW-003");
    assert_eq!(line_of(vpn[0], 0), ("default-v2.log".to_string(), 4));
}

#[test]
fn header_in_the_middle_switches_format() {
    let data = b"version srcaddr dstaddr srcport dstport protocol action\n\
                 2 10.0.0.1 10.0.0.2 1000 500 17 REJECT\n\
                 version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
                 2 1 eni-1 10.0.0.3 10.0.0.4 1 53 17 1 40 1 2 REJECT OK\n";
    let r = flowlogs::analyze_bytes("cat.log", data, Options::default());
    let f = &r.files[0];
    assert_eq!((f.headers, f.records, f.malformed, f.rejected), (2, 2, 0, 2));
    assert_eq!(r.categories.iter().filter(|c| c.records > 0).count(), 2);
    // Records without packets/bytes columns make the volume a lower bound.
    assert!(r.top_by_bytes.iter().any(|t| t.partial_volume));
}

#[test]
fn empty_and_binary_input_never_panic() {
    let r = flowlogs::analyze_bytes("empty.log", b"", Options::default());
    assert_eq!(r.files[0].lines, 0);
    assert!(by_rule(&r, "FLOW-001")[0].detail.contains("the file is empty"));
    let long = vec![b'x'; flowlogs::MAX_LINE * 3];
    let mut data = b"version srcaddr dstaddr srcport dstport protocol action\n".to_vec();
    data.extend_from_slice(&long);
    data.extend_from_slice(b"\n2 10.0.0.1 10.0.0.2 1000 500 17 REJECT\n");
    let r = flowlogs::analyze_bytes("long.log", &data, Options::default());
    let f = &r.files[0];
    assert_eq!((f.lines, f.malformed, f.records), (3, 1, 1));
    assert_eq!(f.malformed_examples[0].line, 2);
    let r = flowlogs::analyze_bytes("gz.log", &[0x1f, 0x8b, 8, 0, 0, 0], Options::default());
    assert!(r.files[0].read_error.is_some());
}

#[test]
fn extreme_settings_do_not_overflow() {
    let mut o = Options::default();
    o.settings.window_slack = u64::MAX;
    o.settings.top = usize::MAX;
    let r = analyze(&["default-v2.log"], o);
    // With an unbounded window the reverse a day later (line 19) matches too.
    assert_eq!(r.asymmetric.len(), 3);
    assert_eq!(r.top_by_bytes.len(), 13);
}

#[test]
fn flow_limit_is_reported_not_silent() {
    let mut o = Options::default();
    o.settings.max_flows = 1;
    let r = analyze(&["default-v2.log"], o);
    assert!(r.limit_reached);
    assert!(r.totals.untracked > 0);
    let f = r.findings.iter().find(|f| f.subject == "flowlogs/limit").expect("limit finding");
    assert_eq!(f.rule, "FLOW-001");
    // Category counts stay exact.
    assert_eq!(r.categories.iter().map(|c| c.records).sum::<u64>(), 10);
}
