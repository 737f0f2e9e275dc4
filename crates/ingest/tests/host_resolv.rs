//! resolv.conf parser on the fixtures (a kubelet-written pod resolv.conf and a
//! systemd-resolved stub file, see tests/fixtures/README.host.md) and on broken input.

use std::net::IpAddr;

use netsleuth_ingest::host::resolv;
use netsleuth_ingest::{ParseContext, Source};
use netsleuth_model::Location;

fn fixture(rel: &str) -> String {
    let path = format!("{}/../../tests/fixtures/host/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read fixture {path}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn kubernetes_pod() {
    let p = "hosts/pod-a/resolv.conf";
    let text = fixture("pod-a/resolv.conf");
    let mut ctx = ParseContext::default();
    let r = resolv::parse(&Source::new(p, &text), &mut ctx).unwrap();
    assert!(ctx.issues.is_empty());
    assert_eq!(r.search, ["prod.svc.cluster.local", "svc.cluster.local", "cluster.local"]);
    assert_eq!(r.search_origin, Some(Location::line(p, 1)));
    assert_eq!(r.nameservers.len(), 1);
    assert_eq!(r.nameservers[0].addr, ip("10.96.0.10"));
    assert_eq!(r.nameservers[0].origin, Location::line(p, 2));
    assert_eq!((r.ndots, r.timeout, r.attempts), (Some(5), None, None));
    assert_eq!(r.options, ["ndots:5"]);
    assert_eq!(r.options_origin, Some(Location::line(p, 3)));
    assert_eq!(r.origin, Location::file(p));
}

#[test]
fn systemd_resolved_stub() {
    let p = "hosts/node/resolv.conf";
    let text = fixture("node/resolv.conf");
    let mut ctx = ParseContext::default();
    let r = resolv::parse(&Source::new(p, &text), &mut ctx).unwrap();
    assert!(ctx.issues.is_empty(), "comments are not warnings: {:?}", ctx.issues);
    assert_eq!(r.nameservers[0].addr, ip("127.0.0.53"));
    assert_eq!(r.nameservers[0].origin, Location::line(p, 10));
    assert_eq!(r.options, ["edns0", "trust-ad"]);
    assert_eq!(r.ndots, None);
    assert_eq!(r.search, ["ec2.internal"]);
}

#[test]
fn glibc_rules() {
    let p = "r";
    let text = "\
; old-style comment
domain first.example
search a.example b.example
nameserver 10.0.0.1
nameserver fe80::1%eth0
options timeout:2 attempts:3
options ndots:2 rotate single-request-reopen
domain last.example
sortlist 130.155.160.0/255.255.240.0
";
    let mut ctx = ParseContext::default();
    let r = resolv::parse(&Source::new(p, text), &mut ctx).unwrap();
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    assert_eq!(r.search, ["last.example"], "the last search/domain wins");
    assert_eq!(r.search_origin, Some(Location::line(p, 8)));
    assert_eq!(r.nameservers.iter().map(|n| n.addr).collect::<Vec<_>>(), [ip("10.0.0.1"), ip("fe80::1")]);
    assert_eq!((r.ndots, r.timeout, r.attempts), (Some(2), Some(2), Some(3)));
    assert_eq!(r.options, ["timeout:2", "attempts:3", "ndots:2", "rotate", "single-request-reopen"]);
    assert_eq!(r.options_origin, Some(Location::line(p, 7)));
}

#[test]
fn bad_values_are_warnings_with_lines() {
    let p = "hosts/x/resolv.conf";
    let text = "nameserver 10.0.0.300\nnameserver\noptions ndots:many\nsearch\nbogus line\nnameserver 10.0.0.2\n";
    let mut ctx = ParseContext::default();
    let r = resolv::parse(&Source::new(p, text), &mut ctx).unwrap();
    assert_eq!(r.nameservers.len(), 1);
    assert_eq!(r.ndots, None);
    assert_eq!(r.options, ["ndots:many"], "kept as written");
    let lines: Vec<Location> = ctx.issues.iter().map(|i| i.location.clone()).collect();
    assert_eq!(lines, (1..=5).map(|l| Location::line(p, l)).collect::<Vec<_>>());
    assert!(ctx.issues[0].message.contains("10.0.0.300"));
}

#[test]
fn empty_garbage_and_huge() {
    let mut ctx = ParseContext::default();
    let r = resolv::parse(&Source::new("r", ""), &mut ctx).unwrap();
    assert!(r.nameservers.is_empty() && r.search.is_empty() && ctx.issues.is_empty());
    let r = resolv::parse(&Source::new("r", "\u{0}\u{1}\u{fffd}\n"), &mut ctx).unwrap();
    assert!(r.nameservers.is_empty());
    assert_eq!(ctx.issues.len(), 1);
    let huge = format!("nameserver {}\nsearch {}\n", "9".repeat(1 << 20), "d.example ".repeat(100_000));
    let mut ctx = ParseContext::default();
    let r = resolv::parse(&Source::new("r", &huge), &mut ctx).unwrap();
    assert_eq!(r.search.len(), 100_000, "no glibc limits applied");
    assert!(ctx.issues[0].message.len() < 200);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics(text in "((nameserver|search|domain|options|#|;)? ?[a-z0-9.:%]{0,20}( [a-z0-9:]{0,8})?\n|\\PC{0,15}\n){0,20}") {
            let mut ctx = ParseContext::default();
            let r = resolv::parse(&Source::new("r", &text), &mut ctx).unwrap();
            prop_assert!(r.nameservers.len() <= text.lines().count());
        }
    }
}
