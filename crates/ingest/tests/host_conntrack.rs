//! Conntrack statistics parsers on real `conntrack -S` (conntrack-tools 1.4.7, kernel 6.18)
//! and `nf_conntrack_count` output from a lab namespace, and on broken input.

use netsleuth_ingest::host::conntrack;
use netsleuth_ingest::{ParseContext, Source};

fn fixture(rel: &str) -> String {
    let path = format!("{}/../../tests/fixtures/host/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read fixture {path}: {e}"))
}

const STATS: &str = "hosts/node/conntrack-stats.txt";

#[test]
fn real_stats_and_count() {
    let text = fixture("node/conntrack-stats.txt");
    let mut ctx = ParseContext::default();
    let s = conntrack::parse_stats(&Source::new(STATS, &text), &mut ctx).unwrap();
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    let keys: Vec<&str> = s.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "chaintoolong",
            "clash_resolve",
            "drop",
            "early_drop",
            "error",
            "found",
            "insert",
            "insert_failed",
            "invalid",
            "search_restart"
        ]
    );
    assert!(!s.contains_key("cpu"), "the CPU number is not a counter");
    assert_eq!(s["insert_failed"], 0);
    let count = fixture("node/conntrack-count.txt");
    let n = conntrack::parse_count(&Source::new("hosts/node/conntrack-count.txt", &count), &mut ctx).unwrap();
    assert_eq!(n, 5, "UDP flows from the pods through the node's ct rules");
}

#[test]
fn sums_over_cpus_with_varying_fields() {
    // Older kernels print fewer fields (no clash_resolve/chaintoolong) and more (searched,
    // new, delete ...): whatever is there is summed.
    let text = "cpu=0 found=1 invalid=3 insert=0 insert_failed=2 drop=0 early_drop=0 error=0 search_restart=0\n\
                cpu=1 searched=7 found=4 invalid=1 insert_failed=5 drop=1 early_drop=0 error=0 search_restart=2\n";
    let s = conntrack::parse_stats(&Source::new(STATS, text), &mut ParseContext::default()).unwrap();
    assert_eq!((s["found"], s["invalid"], s["insert_failed"], s["drop"]), (5, 4, 7, 1));
    assert_eq!((s["searched"], s["insert"], s["search_restart"]), (7, 0, 2));
}

#[test]
fn bad_stats() {
    let mut ctx = ParseContext::default();
    let text =
        "cpu=0 found=x invalid=3 oops\ncpu=1 found=1 insert_failed=18446744073709551615\ncpu=2 insert_failed=1\n";
    let s = conntrack::parse_stats(&Source::new(STATS, text), &mut ctx).unwrap();
    assert_eq!((s["found"], s["invalid"], s["insert_failed"]), (1, 3, u64::MAX));
    let msgs: Vec<String> = ctx.issues.iter().map(|i| format!("{}: {}", i.location, i.message)).collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(msgs[0].starts_with("hosts/node/conntrack-stats.txt:1: ") && msgs[0].contains("found=x oops"), "{msgs:?}");
    assert!(msgs[1].starts_with("hosts/node/conntrack-stats.txt:3: ") && msgs[1].contains("overflows"), "{msgs:?}");

    for text in ["", "\n\n", "conntrack v1.4.7 (conntrack-tools): Operation not supported\n", "\u{0}\u{fffd}"] {
        let err = conntrack::parse_stats(&Source::new(STATS, text), &mut ParseContext::default()).unwrap_err();
        assert_eq!((err.path.as_str(), err.line), (STATS, Some(1)), "{err}");
        assert!(err.message.contains("conntrack -S"));
    }
    let huge = format!("cpu=0 found={}\n", "9".repeat(1 << 20));
    let mut ctx = ParseContext::default();
    assert!(conntrack::parse_stats(&Source::new(STATS, &huge), &mut ctx).is_err());
    assert!(ctx.issues[0].message.len() < 300);
}

#[test]
fn bad_count() {
    let p = "hosts/n/conntrack-count.txt";
    let parse = |t: &str| conntrack::parse_count(&Source::new(p, t), &mut ParseContext::default());
    assert_eq!(parse(" 42 \n").unwrap(), 42);
    for (text, line) in [("", 1), ("\n", 1), ("-1\n", 1), ("\n\nabc", 3), ("1\n2\n", 2), ("18446744073709551616", 1)] {
        let err = parse(text).unwrap_err();
        assert_eq!((err.path.as_str(), err.line), (p, Some(line)), "{text:?}: {err}");
    }
    let err = parse(&"7".repeat(1 << 20)).unwrap_err();
    assert!(err.message.len() < 200);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics(text in "([a-z_]{0,8}=?[0-9x]{0,22}[ \t\n]){0,40}") {
            let _ = conntrack::parse_stats(&Source::new("s", &text), &mut ParseContext::default());
            let _ = conntrack::parse_count(&Source::new("c", &text), &mut ParseContext::default());
        }
    }
}
