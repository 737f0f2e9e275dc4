//! Two labs of the same scenario at once: disjoint names, both healthy, a fault in one does
//! not touch the other; and a lab brought up with a fault from the start. Needs root.

mod common;

use std::collections::BTreeSet;
use std::thread;
use std::time::Duration;

use common::{path_ok, ping, say, APP};

#[test]
fn two_labs_run_side_by_side() {
    if !common::can_run("two_labs_run_side_by_side") {
        return;
    }
    // Built concurrently, as two CI jobs or two users would.
    let a = thread::spawn(|| common::up(&[]));
    let b = thread::spawn(|| common::up(&[]));
    let mut a = a.join().expect("lab a");
    let b = b.join().expect("lab b");
    assert_ne!(a.id(), b.id());
    let ns = |l: &netsleuth_lab::Lab| l.state().hosts.iter().map(|h| h.netns.clone()).collect::<BTreeSet<_>>();
    assert!(ns(&a).is_disjoint(&ns(&b)), "namespaces are per lab");
    assert!(ns(&a).iter().all(|n| n.starts_with(&format!("{}-", a.id()))));
    let wg = |l: &netsleuth_lab::Lab| l.state().wireguard.iter().map(|w| w.ifname.clone()).collect::<BTreeSet<_>>();
    assert!(wg(&a).is_disjoint(&wg(&b)), "wireguard-go sockets are global: names must differ");
    assert!(wg(&a).iter().all(|n| n.len() <= 15));
    let keys =
        |l: &netsleuth_lab::Lab| l.state().wireguard.iter().map(|w| w.public_key.clone()).collect::<BTreeSet<_>>();
    assert!(keys(&a).is_disjoint(&keys(&b)), "keys are made per lab run");

    assert!(path_ok(&a, Duration::from_secs(10)), "lab a healthy");
    assert!(path_ok(&b, Duration::from_secs(10)), "lab b healthy");
    // Same addresses in both, yet separate: breaking a leaves b working.
    a.inject(&"ip-forward-off".parse().expect("fault")).expect("inject in a");
    assert_eq!(ping(&a, "pod-a", APP, 2, 56, None).received, 0, "a is broken");
    assert!(ping(&b, "pod-a", APP, 3, 56, None).all_ok(), "b is not");
    assert!(b.faults().is_empty());
    let ra = a.down().expect("down a");
    let rb = b.down().expect("down b");
    assert!(ra.problems.is_empty() && rb.problems.is_empty(), "{ra:?} {rb:?}");
    assert_eq!((ra.namespaces_removed, rb.namespaces_removed), (9, 9));
}

#[test]
fn faults_given_at_up_are_there_from_the_start() {
    if !common::can_run("faults_given_at_up_are_there_from_the_start") {
        return;
    }
    let mut lab = common::up(&["udp-block:51820", "wg-key-mismatch"]);
    let names: Vec<&str> = lab.faults().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["udp-block", "wg-key-mismatch"]);
    // No tunnel ever had a handshake: what TUN-005 reports from a collected bundle.
    let st = lab.status();
    assert_eq!(st.wireguard.len(), 2);
    for w in &st.wireguard {
        assert_eq!(w.peers.len(), 1);
        assert_eq!(w.peers[0].handshake_age_s, None, "{st:?}");
    }
    assert_eq!(ping(&lab, "pod-a", APP, 2, 56, None).received, 0);
    assert_eq!(lab.clear(None).expect("clear"), ["wg-key-mismatch", "udp-block"]);
    assert!(path_ok(&lab, Duration::from_secs(20)), "heals after clear");
    let st = lab.status();
    let gw = st.wireguard.iter().find(|w| w.host == "gw").expect("gw wireguard");
    assert!(gw.peers.iter().all(|p| p.handshake_age_s.is_some()), "{st:?}");
    say(&format!("{} ok", lab.id()));
}
