//! `sysctl -a` parser on real output of procps-ng 4.0.2 inside a lab namespace
//! (tests/fixtures/make-host-fixtures.sh), and on broken input.

use netsleuth_ingest::host::sysctl;
use netsleuth_ingest::{ParseContext, Source};
use netsleuth_model::Location;

fn fixture(rel: &str) -> String {
    let path = format!("{}/../../tests/fixtures/host/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read fixture {path}: {e}"))
}

const PATH: &str = "hosts/node/sysctl.txt";

#[test]
fn node_sysctls() {
    let text = fixture("node/sysctl.txt");
    let mut ctx = ParseContext::default();
    let s = sysctl::parse(&Source::new(PATH, &text), &mut ctx).unwrap();
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    assert_eq!(s.values.len(), 44);
    assert_eq!(s.get_i64("net.ipv4.ip_forward"), Some(1));
    assert_eq!(s.get_i64("net.ipv4.conf.all.rp_filter"), Some(1));
    assert_eq!(s.get_i64("net.ipv4.conf.eth0.rp_filter"), Some(2));
    // Interface names with dots are printed with slashes by sysctl and kept that way.
    assert_eq!(s.get_i64("net.ipv4.conf.flannel/1.rp_filter"), Some(0));
    assert_eq!(s.get("kernel.domainname").map(|v| v.value.as_str()), Some("(none)"));
    let range = s.get("net.ipv4.ip_local_port_range").unwrap();
    assert_eq!(range.value, "32768\t60999");
    assert_eq!(s.get_i64("net.ipv4.ip_local_port_range"), Some(32768));
    assert_eq!(s.get_i64("net.netfilter.nf_conntrack_count"), Some(5));
    assert!(s.get_i64("net.netfilter.nf_conntrack_max").is_some_and(|m| m > 0));
    let line = text.lines().position(|l| l.starts_with("net.ipv4.ip_forward ")).unwrap() + 1;
    assert_eq!(s.get("net.ipv4.ip_forward").unwrap().origin, Location::line(PATH, line as u32));
}

#[test]
fn gateways_forward() {
    for host in ["gw-1", "gw-2"] {
        let text = fixture(&format!("{host}/sysctl.txt"));
        let s = sysctl::parse(&Source::new("s", &text), &mut ParseContext::default()).unwrap();
        assert_eq!(s.get_i64("net.ipv4.ip_forward"), Some(1), "{host}");
    }
    let text = fixture("pod-a/sysctl.txt");
    let s = sysctl::parse(&Source::new("s", &text), &mut ParseContext::default()).unwrap();
    assert_eq!(s.get_i64("net.ipv4.ip_forward"), Some(0), "pods do not forward");
}

#[test]
fn bad_lines_are_warnings_with_line_numbers() {
    let text = "\
net.ipv4.ip_forward = 1

sysctl: permission denied on key 'net.ipv6.conf.all.stable_secret'
 = 5
dev.cdrom.info =
kernel.core_pattern = |/usr/lib/systemd/systemd-coredump %P %u %g %s %t 9223372036854775808 %h
bad key = 3
net.ipv4.ip_forward = 0\r
";
    let mut ctx = ParseContext::default();
    let s = sysctl::parse(&Source::new(PATH, text), &mut ctx).unwrap();
    assert_eq!(s.values.len(), 3);
    assert_eq!(s.get("dev.cdrom.info").map(|v| v.value.as_str()), Some(""));
    assert!(s.get("kernel.core_pattern").unwrap().value.ends_with("%h"));
    assert_eq!(s.get_i64("net.ipv4.ip_forward"), Some(0), "the later line wins, CR dropped");
    assert_eq!(s.get("net.ipv4.ip_forward").unwrap().origin, Location::line(PATH, 8));
    let lines: Vec<Location> = ctx.issues.iter().map(|i| i.location.clone()).collect();
    assert_eq!(lines, [Location::line(PATH, 3), Location::line(PATH, 4), Location::line(PATH, 7)]);
    assert!(ctx.issues[0].message.contains("permission denied"));
}

#[test]
fn empty_garbage_and_huge() {
    let mut ctx = ParseContext::default();
    assert!(sysctl::parse(&Source::new(PATH, ""), &mut ctx).unwrap().is_empty());
    assert!(ctx.issues.is_empty());
    let s = sysctl::parse(&Source::new(PATH, "\u{0}\u{1}\u{fffd}\n{\"json\": true}\n"), &mut ctx).unwrap();
    assert!(s.is_empty());
    assert_eq!(ctx.issues.len(), 2);
    let huge = format!("{}\nnet.core.somaxconn = 128\n", "x".repeat(1 << 20));
    let mut ctx = ParseContext::default();
    let s = sysctl::parse(&Source::new(PATH, &huge), &mut ctx).unwrap();
    assert_eq!(s.get_i64("net.core.somaxconn"), Some(128));
    assert_eq!(ctx.issues[0].location, Location::line(PATH, 1));
    assert!(ctx.issues[0].message.len() < 200);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics_and_keeps_every_key_line(text in "([a-z./ =0-9\t\r]{0,30}\n|\\PC{0,20}\n){0,30}") {
            let mut ctx = ParseContext::default();
            let s = sysctl::parse(&Source::new("s", &text), &mut ctx).unwrap();
            for (k, v) in &s.values {
                prop_assert!(!k.is_empty() && !k.contains(char::is_whitespace));
                let has_line = matches!(v.origin, Location::File { line: Some(_), .. });
                prop_assert!(has_line);
            }
        }
    }
}
