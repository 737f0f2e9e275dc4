//! The k8s-wireguard-site scenario end to end with real traffic: the healthy path, then every
//! fault of the catalog injected, observed failing, cleared, and observed healed. Needs root.

mod common;

use std::time::{Duration, Instant};

use common::{
    eventually, flush_pmtu, path_ok, ping, say, tcp, udp, Failures, APP, APP_HTTP, APP_TCP, APP_UDP, POD_B, POD_B_TCP,
};
use netsleuth_lab::{FaultRequest, Lab};

const RECOVER: Duration = Duration::from_secs(20);

fn inject(lab: &mut Lab, f: &mut Failures, fault: &str) -> bool {
    let req: FaultRequest = fault.parse().unwrap_or_else(|e| panic!("{e}"));
    match lab.inject(&req) {
        Ok(params) => {
            say(&format!("injected {fault}: {params:?}"));
            true
        }
        Err(e) => {
            f.check(false, || format!("inject {fault}: {e}"));
            false
        }
    }
}

fn clear_and_recover(lab: &mut Lab, f: &mut Failures, fault: &str) {
    let name = fault.split(':').next().unwrap_or(fault);
    match lab.clear(Some(name)) {
        Ok(cleared) => f.check(cleared == [name], || format!("clear {name} cleared {cleared:?}")),
        Err(e) => f.check(false, || format!("clear {name}: {e}")),
    }
    f.check(path_ok(lab, RECOVER), || format!("{name}: the path did not recover after clear"));
}

/// The MSS the app's HTTP server sees for a new connection from pod-a, with learned path
/// MTUs forgotten on both ends (a cached PMTU would lower it by itself).
fn http_mss(lab: &Lab) -> Option<u32> {
    flush_pmtu(lab, "pod-a");
    flush_pmtu(lab, "app");
    lab.http_get("pod-a", common::addr(APP_HTTP), "/info", Duration::from_secs(3)).ok().and_then(|r| r.mss)
}

fn healthy(lab: &Lab, f: &mut Failures) {
    f.check(path_ok(lab, Duration::from_secs(10)), || "healthy: ping/TCP/UDP pod-a → app".into());
    let big = tcp(lab, "pod-a", APP_TCP, 256 << 10, 5);
    f.check(big.ok, || format!("healthy: 256 KiB TCP echo across the tunnel: {:?}", big.error));
    let http = lab.http_get("pod-a", common::addr(APP_HTTP), "/info", Duration::from_secs(3));
    f.check(http.as_ref().is_ok_and(|h| h.status == Some(200)), || format!("healthy: HTTP /info: {http:?}"));
    // Path MTU 1420 (WireGuard): 1392 + 28 passes with DF, one byte more does not.
    let fits = ping(lab, "pod-a", APP, 3, 1392, Some(true));
    f.check(fits.all_ok(), || format!("healthy: DF ping of 1420 bytes: {}", fits.output));
    flush_pmtu(lab, "pod-a");
    let too_big = ping(lab, "pod-a", APP, 2, 1393, Some(true));
    f.check(
        too_big.received == 0 && (too_big.frag_needed_mtu == Some(1420) || too_big.local_mtu == Some(1420)),
        || format!("healthy: DF ping of 1421 bytes must report MTU 1420: {}", too_big.output),
    );
    // Across the overlay between the nodes' pods.
    let pods = ping(lab, "pod-a", POD_B, 3, 56, None);
    f.check(pods.all_ok(), || format!("healthy: pod-a → pod-b: {}", pods.output));
    let pods_tcp = tcp(lab, "pod-a", POD_B_TCP, 64 << 10, 3);
    f.check(pods_tcp.ok, || format!("healthy: TCP pod-a → pod-b: {:?}", pods_tcp.error));
}

#[test]
fn healthy_path_then_every_fault_breaks_and_heals() {
    if !common::can_run("healthy_path_then_every_fault_breaks_and_heals") {
        return;
    }
    let started = Instant::now();
    let mut lab = common::up(&[]);
    say(&format!("lab {} up in {:.1} s", lab.id(), started.elapsed().as_secs_f64()));
    let mut f = Failures::default();
    healthy(&lab, &mut f);
    assert!(f.0.is_empty(), "the healthy lab does not work: {:?}", f.0);

    // mtu-mismatch: pod-a's eth0 at 1500 while its node's veth stays at 1450. A 1488-byte
    // packet may leave the pod unfragmented and dies silently at the veth; small ones pass.
    let before = ping(&lab, "pod-a", POD_B, 2, 1460, Some(false));
    f.check(before.all_ok(), || {
        format!("mtu-mismatch: before, 1488-byte pings (fragmented by the pod) pass: {}", before.output)
    });
    if inject(&mut lab, &mut f, "mtu-mismatch") {
        let big = ping(&lab, "pod-a", POD_B, 3, 1460, Some(false));
        f.check(big.received == 0 && big.errors == 0, || {
            format!("mtu-mismatch: 1488-byte pings vanish silently: {}", big.output)
        });
        let small = ping(&lab, "pod-a", POD_B, 3, 1000, Some(true));
        f.check(small.all_ok(), || format!("mtu-mismatch: 1028-byte DF pings still pass: {}", small.output));
        clear_and_recover(&mut lab, &mut f, "mtu-mismatch");
        let after = ping(&lab, "pod-a", POD_B, 2, 1460, Some(false));
        f.check(after.all_ok(), || format!("mtu-mismatch: after clear, 1488-byte pings pass: {}", after.output));
    }

    // pmtud-blackhole: the gateway's "fragmentation needed" never arrives.
    if inject(&mut lab, &mut f, "pmtud-blackhole") {
        flush_pmtu(&lab, "pod-a");
        let big = ping(&lab, "pod-a", APP, 3, 1400, Some(true));
        f.check(big.received == 0 && big.frag_needed_mtu.is_none() && big.local_mtu.is_none(), || {
            format!("pmtud-blackhole: a 1428-byte DF ping must vanish without any error: {}", big.output)
        });
        // MSS clamping still protects TCP.
        flush_pmtu(&lab, "pod-a");
        let t = tcp(&lab, "pod-a", APP_TCP, 256 << 10, 5);
        f.check(t.ok, || format!("pmtud-blackhole: with the MSS clamp, big TCP still passes: {:?}", t.error));
        // Both faults together: TCP segments of the pod's MSS stall.
        if inject(&mut lab, &mut f, "no-mss-clamp") {
            flush_pmtu(&lab, "pod-a");
            let t = tcp(&lab, "pod-a", APP_TCP, 256 << 10, 4);
            f.check(!t.ok, || "pmtud-blackhole + no-mss-clamp: a 256 KiB TCP echo must stall".into());
            let small = tcp(&lab, "pod-a", APP_TCP, 500, 3);
            f.check(small.ok, || format!("pmtud-blackhole + no-mss-clamp: small TCP still passes: {:?}", small.error));
            clear_and_recover(&mut lab, &mut f, "no-mss-clamp");
        }
        clear_and_recover(&mut lab, &mut f, "pmtud-blackhole");
        flush_pmtu(&lab, "pod-a");
        let big = ping(&lab, "pod-a", APP, 2, 1400, Some(true));
        f.check(big.frag_needed_mtu == Some(1420) || big.local_mtu == Some(1420), || {
            format!("pmtud-blackhole: after clear, PMTUD reports 1420 again: {}", big.output)
        });
    }

    // no-mss-clamp alone: the server sees the pod's MSS instead of the clamped one.
    let clamped = http_mss(&lab);
    f.check(clamped.is_some_and(|m| m <= 1380), || {
        format!("no-mss-clamp: before, the app sees MSS ≤ 1380: {clamped:?}")
    });
    if inject(&mut lab, &mut f, "no-mss-clamp") {
        let raw = http_mss(&lab);
        f.check(raw.is_some_and(|m| m > 1380) && raw > clamped, || {
            format!("no-mss-clamp: the app must see an MSS above 1380 (clamped {clamped:?}, now {raw:?})")
        });
        clear_and_recover(&mut lab, &mut f, "no-mss-clamp");
        let back = http_mss(&lab);
        f.check(back == clamped, || format!("no-mss-clamp: after clear the MSS is {back:?}, was {clamped:?}"));
    }

    // udp-block:51820 on the internet router: the tunnel carries nothing.
    if inject(&mut lab, &mut f, "udp-block:51820") {
        let u = udp(&lab, "pod-a", APP_UDP, 256, 2);
        f.check(!u.ok, || "udp-block: UDP echo across the tunnel must fail".into());
        let t = tcp(&lab, "pod-a", APP_TCP, 256, 2);
        f.check(!t.ok, || "udp-block: TCP echo across the tunnel must fail".into());
        // Idempotent: the same request again only verifies; other parameters are refused.
        let again = lab.inject(&"udp-block:51820".parse().unwrap_or_default());
        f.check(again.is_ok() && lab.faults().len() == 1, || format!("udp-block: second inject: {again:?}"));
        let other = lab.inject(&"udp-block:4500".parse().unwrap_or_default());
        f.check(other.is_err(), || "udp-block: a second inject with another port must be refused".into());
        clear_and_recover(&mut lab, &mut f, "udp-block");
        let twice = lab.clear(Some("udp-block"));
        f.check(twice.as_ref().is_ok_and(Vec::is_empty), || {
            format!("udp-block: clearing again does nothing: {twice:?}")
        });
    }

    // WireGuard configuration faults on the gateway.
    for fault in ["wg-allowedips-wrong", "wg-allowedips-overlap", "wg-key-mismatch"] {
        if inject(&mut lab, &mut f, fault) {
            let p = ping(&lab, "pod-a", APP, 3, 56, None);
            f.check(p.received == 0, || format!("{fault}: pings to the app must fail: {}", p.output));
            let t = tcp(&lab, "pod-a", APP_TCP, 256, 2);
            f.check(!t.ok, || format!("{fault}: TCP echo must fail"));
            clear_and_recover(&mut lab, &mut f, fault);
        }
    }

    // ip-forward-off on the gateway.
    if inject(&mut lab, &mut f, "ip-forward-off") {
        let p = ping(&lab, "pod-a", APP, 3, 56, None);
        f.check(p.received == 0, || format!("ip-forward-off: pings must fail: {}", p.output));
        // The gateway itself still reaches the site through the tunnel: only forwarding stops.
        let own = ping(&lab, "gw", "10.99.0.2", 2, 56, None);
        f.check(own.all_ok(), || format!("ip-forward-off: gw's own tunnel traffic still works: {}", own.output));
        clear_and_recover(&mut lab, &mut f, "ip-forward-off");
    }

    // rp-filter-strict on the site: replies go back through the internet router, so pod
    // packets arriving on the tunnel fail the strict reverse-path check.
    if inject(&mut lab, &mut f, "rp-filter-strict") {
        let p = ping(&lab, "pod-a", APP, 3, 56, None);
        f.check(p.received == 0, || format!("rp-filter-strict: pings must fail: {}", p.output));
        // Proof that strict mode is the cause: loose mode with the same asymmetric route works.
        let wg = lab.ifname("site", "wg0");
        let loose = |v: &str| {
            for k in ["net.ipv4.conf.all.rp_filter".to_string(), format!("net.ipv4.conf.{wg}.rp_filter")] {
                let out = lab.exec("site", &["sysctl", "-qw", &format!("{k}={v}")], Duration::from_secs(5));
                assert!(out.is_ok_and(|o| o.success()), "sysctl {k}={v}");
            }
        };
        loose("2");
        let ok = eventually(Duration::from_secs(5), Duration::from_millis(200), || {
            ping(&lab, "pod-a", APP, 1, 56, None).all_ok()
        });
        f.check(ok, || "rp-filter-strict: with rp_filter loose the asymmetric path works".into());
        loose("1");
        clear_and_recover(&mut lab, &mut f, "rp-filter-strict");
    }

    // conntrack-full on the gateway: new connections are dropped while it is full.
    if inject(&mut lab, &mut f, "conntrack-full") {
        let t = tcp(&lab, "pod-a", APP_TCP, 256, 2);
        f.check(!t.ok, || "conntrack-full: a new TCP connection must fail".into());
        let u = udp(&lab, "pod-a", APP_UDP, 64, 2);
        f.check(!u.ok, || "conntrack-full: a new UDP flow must fail".into());
        clear_and_recover(&mut lab, &mut f, "conntrack-full");
    }

    // route-missing: the gateway sends the site's traffic to the internet router instead.
    if inject(&mut lab, &mut f, "route-missing") {
        let p = ping(&lab, "pod-a", APP, 3, 56, None);
        f.check(p.received == 0, || format!("route-missing: pings must fail: {}", p.output));
        clear_and_recover(&mut lab, &mut f, "route-missing");
    }

    // nft-egress-drop on node-1: its pods cannot start connections; traffic to them passes.
    if inject(&mut lab, &mut f, "nft-egress-drop") {
        let out = ping(&lab, "pod-a", APP, 2, 56, None);
        f.check(out.received == 0, || format!("nft-egress-drop: pod-a → app must fail: {}", out.output));
        let pods = ping(&lab, "pod-a", POD_B, 2, 56, None);
        f.check(pods.received == 0, || format!("nft-egress-drop: pod-a → pod-b must fail: {}", pods.output));
        let inbound = ping(&lab, "pod-b", "10.244.1.10", 2, 56, None);
        f.check(inbound.all_ok(), || format!("nft-egress-drop: pod-b → pod-a still passes: {}", inbound.output));
        clear_and_recover(&mut lab, &mut f, "nft-egress-drop");
    }

    // underlay-loss:30 toward the site: about 30 % of 50 pings lost.
    if inject(&mut lab, &mut f, "underlay-loss:30") {
        let p = ping(&lab, "pod-a", APP, 50, 56, None);
        let loss = p.loss_pct();
        say(&format!("underlay-loss:30: {} of {} lost ({loss:.0} %)", p.transmitted - p.received, p.transmitted));
        f.check(p.transmitted == 50 && (10.0..=60.0).contains(&loss), || {
            format!("underlay-loss:30: loss {loss:.0} % of {} is not within 10-60 %", p.transmitted)
        });
        clear_and_recover(&mut lab, &mut f, "underlay-loss");
        let p = ping(&lab, "pod-a", APP, 20, 56, None);
        f.check(p.all_ok(), || format!("underlay-loss: after clear, no loss: {}", p.output));
    }

    f.check(lab.faults().is_empty(), || format!("faults left active: {:?}", lab.faults()));
    healthy(&lab, &mut f);
    let report = lab.down().unwrap_or_else(|e| panic!("down: {e}"));
    f.check(report.problems.is_empty() && report.namespaces_removed == 9, || format!("down: {report:?}"));
    say(&format!("fault suite: {:.1} s", started.elapsed().as_secs_f64()));
    assert!(f.0.is_empty(), "{} failed expectations:\n{}", f.0.len(), f.0.join("\n"));
}
