//! The ipsec-hybrid scenario end to end with real strongSwan daemons: the tunnel comes up
//! through NAT (NAT-T, UDP 4500), TCP/UDP echo crosses it, then every IPsec fault is injected,
//! observed breaking the tunnel or the traffic, cleared, and observed healed. Nothing is left
//! behind afterwards. Needs root (skips otherwise; NETSLEUTH_LAB_REQUIRED=1 makes it fail).

mod common;

use std::time::{Duration, Instant};

use common::{say, tcp, udp, Failures};
use netsleuth_lab::{scenario, strongswan, FaultRequest, Lab, UpOptions};

const TARGET_TCP: &str = "10.10.1.10:5000";
const TARGET_UDP: &str = "10.10.1.10:5001";
const SOURCE: &str = "onprem-host";
const SIDES: [&str; 2] = ["cloud-gw", "onprem-gw"];

fn have_strongswan() -> bool {
    std::path::Path::new(strongswan::CHARON).is_file()
        && std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("swanctl").is_file()))
}

fn up() -> Lab {
    let sc = scenario::load("ipsec-hybrid").unwrap_or_else(|e| panic!("{e}"));
    Lab::up(&sc, &UpOptions::new(common::echo_command())).unwrap_or_else(|e| panic!("lab up: {e}"))
}

/// TCP and UDP echo from the on-prem host to the cloud app both work (bounded retries).
fn echo_ok(lab: &Lab, limit: Duration) -> bool {
    common::eventually(limit, Duration::from_millis(300), || tcp(lab, SOURCE, TARGET_TCP, 4096, 2).ok)
        && udp(lab, SOURCE, TARGET_UDP, 512, 2).ok
}

/// Neither TCP nor UDP echo gets through.
fn echo_fails(lab: &Lab) -> bool {
    !tcp(lab, SOURCE, TARGET_TCP, 1024, 2).ok && !udp(lab, SOURCE, TARGET_UDP, 64, 1).ok
}

fn ike_states(lab: &Lab) -> Vec<Option<String>> {
    SIDES.iter().map(|h| strongswan::ike_state(lab.state(), h).unwrap_or_else(|e| panic!("{h}: {e}"))).collect()
}

fn established(lab: &Lab) -> bool {
    strongswan::all_established(lab.state(), lab.scenario())
}

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

fn clear_and_recover(lab: &mut Lab, f: &mut Failures, name: &str) {
    match lab.clear(Some(name)) {
        Ok(cleared) => f.check(cleared == [name], || format!("clear {name} cleared {cleared:?}")),
        Err(e) => f.check(false, || format!("clear {name}: {e}")),
    }
    f.check(established(lab), || format!("{name}: tunnel not established after clear: {:?}", ike_states(lab)));
    f.check(echo_ok(lab, Duration::from_secs(10)), || format!("{name}: echo did not recover after clear"));
}

#[test]
fn ipsec_tunnel_through_nat_then_every_fault_breaks_and_heals() {
    let test = "ipsec_tunnel_through_nat_then_every_fault_breaks_and_heals";
    if !common::can_run(test) {
        return;
    }
    if !have_strongswan() {
        assert!(
            std::env::var_os("NETSLEUTH_LAB_REQUIRED").is_none_or(|v| v != "1"),
            "{test}: strongSwan (charon, swanctl) is not installed but NETSLEUTH_LAB_REQUIRED=1"
        );
        say(&format!("SKIPPED {test}: strongSwan (charon, swanctl) is not installed"));
        return;
    }
    let started = Instant::now();
    let mut lab = up();
    let id = lab.id().to_string();
    let work = lab.state().work_dir.clone();
    say(&format!("lab {id} up in {:.1} s", started.elapsed().as_secs_f64()));
    let mut f = Failures::default();

    // Healthy: both sides established, NAT-T in use, echo across.
    f.check(established(&lab), || format!("healthy: SAs {:?}", ike_states(&lab)));
    let sas = lab
        .exec("onprem-gw", &["swanctl", "--list-sas", "--uri", &strongswan::vici_uri(lab.state(), "onprem-gw")], {
            Duration::from_secs(10)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    // The initiator is behind NAT: IKE floated to 4500 and the cloud side sees inet's address.
    f.check(sas.stdout.contains("172.16.0.2[4500]") && sas.stdout.contains("203.0.113.2[4500]"), || {
        format!("healthy: NAT-T (port 4500) not in use: {}", sas.stdout)
    });
    let cloud = strongswan::swanctl(lab.state(), "cloud-gw", &["--list-sas"]).unwrap_or_default();
    f.check(cloud.contains("203.0.113.1[4500]"), || format!("healthy: cloud-gw does not see the NATed peer: {cloud}"));
    f.check(echo_ok(&lab, Duration::from_secs(10)), || "healthy: TCP/UDP echo onprem-host → cloud-app".into());
    let big = tcp(&lab, SOURCE, TARGET_TCP, 128 << 10, 5);
    f.check(big.ok, || format!("healthy: 128 KiB TCP echo: {:?}", big.error));
    // The PSK is in 0600 files of the work folder only (never in the state file).
    let psk = work.join("keys/ipsec.psk");
    let mode = std::fs::metadata(&psk).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    f.check(mode.as_ref().is_ok_and(|m| *m == 0o600), || format!("{}: mode {mode:?}", psk.display()));
    let secret = std::fs::read_to_string(&psk).unwrap_or_default();
    let state_text = std::fs::read_to_string(netsleuth_lab::StateDir::default().root().join(format!("{id}.json")))
        .unwrap_or_default();
    f.check(secret.len() > 40 && !state_text.contains(secret.trim()), || "the PSK leaked into the state file".into());
    assert!(f.0.is_empty(), "the healthy lab does not work: {:?}", f.0);

    // ike-udp-block: IKE and NAT-T dropped on the underlay router.
    if inject(&mut lab, &mut f, "ike-udp-block") {
        f.check(!established(&lab), || format!("ike-udp-block: still established: {:?}", ike_states(&lab)));
        f.check(echo_fails(&lab), || "ike-udp-block: echo still works".into());
        // The initiator keeps retransmitting: its IKE_SA is stuck connecting.
        let st = strongswan::ike_state(lab.state(), "onprem-gw").unwrap_or(None);
        f.check(st.as_deref() == Some("CONNECTING"), || format!("ike-udp-block: onprem-gw IKE_SA {st:?}"));
        clear_and_recover(&mut lab, &mut f, "ike-udp-block");
    }

    // ike-proposal-mismatch: the cloud side only accepts AES-256/SHA-512/MODP-3072.
    if inject(&mut lab, &mut f, "ike-proposal-mismatch") {
        f.check(ike_states(&lab).iter().all(Option::is_none), || {
            format!("ike-proposal-mismatch: an IKE_SA exists: {:?}", ike_states(&lab))
        });
        f.check(echo_fails(&lab), || "ike-proposal-mismatch: echo still works".into());
        // Either side's charon log names the mismatch (the responder refuses, the initiator
        // gets the notify).
        let logs: String = SIDES
            .iter()
            .map(|h| std::fs::read_to_string(work.join(format!("ipsec/{h}/charon.log"))).unwrap_or_default())
            .collect();
        f.check(logs.contains("NO_PROPOSAL_CHOSEN"), || {
            let lines: Vec<&str> = logs.lines().filter(|l| l.to_lowercase().contains("propos")).collect();
            format!("ike-proposal-mismatch: no NO_PROPOSAL_CHOSEN in the charon logs: {lines:?}")
        });
        clear_and_recover(&mut lab, &mut f, "ike-proposal-mismatch");
    }

    // ipsec-psk-mismatch: the cloud side has another key.
    if inject(&mut lab, &mut f, "ipsec-psk-mismatch") {
        f.check(!established(&lab), || format!("ipsec-psk-mismatch: still established: {:?}", ike_states(&lab)));
        f.check(echo_fails(&lab), || "ipsec-psk-mismatch: echo still works".into());
        let log = std::fs::read_to_string(work.join("ipsec/onprem-gw/charon.log")).unwrap_or_default();
        f.check(log.contains("AUTHENTICATION_FAILED"), || "ipsec-psk-mismatch: no AUTHENTICATION_FAILED".into());
        let wrong = std::fs::read_to_string(work.join("keys/ipsec-wrong-cloud-gw.psk")).unwrap_or_default();
        f.check(!wrong.is_empty() && wrong != secret, || {
            "ipsec-psk-mismatch: the wrong key equals the real one".into()
        });
        clear_and_recover(&mut lab, &mut f, "ipsec-psk-mismatch");
    }

    // ipsec-ts-not-mirrored: on-prem asks only for 10.10.2.0/24; the app (10.10.1.10) is
    // outside whatever gets negotiated.
    if inject(&mut lab, &mut f, "ipsec-ts-not-mirrored") {
        f.check(echo_fails(&lab), || "ipsec-ts-not-mirrored: echo still works".into());
        let sas = strongswan::swanctl(lab.state(), "onprem-gw", &["--list-sas"]).unwrap_or_default();
        // Observed here: the IKE_SA establishes, the CHILD_SA does not (the responder answers
        // TS_UNACCEPTABLE): a half-up tunnel.
        let ike = strongswan::ike_state(lab.state(), "onprem-gw").unwrap_or(None);
        let child = strongswan::child_installed(lab.state(), "onprem-gw").unwrap_or(true);
        f.check(ike.as_deref() == Some("ESTABLISHED") && !child, || {
            format!("ipsec-ts-not-mirrored: expected IKE_SA up and no CHILD_SA: {sas}")
        });
        let logs: String = SIDES
            .iter()
            .map(|h| std::fs::read_to_string(work.join(format!("ipsec/{h}/charon.log"))).unwrap_or_default())
            .collect();
        let why: Vec<&str> =
            logs.lines().filter(|l| l.contains("TS_UNACCEPTABLE") || l.contains("traffic selectors")).collect();
        f.check(why.iter().any(|l| l.contains("TS_UNACCEPTABLE")), || {
            format!("ipsec-ts-not-mirrored: no TS_UNACCEPTABLE in the charon logs: {why:?}")
        });
        f.check(!sas.contains("10.10.0.0/16"), || format!("ipsec-ts-not-mirrored: full range negotiated: {sas}"));
        clear_and_recover(&mut lab, &mut f, "ipsec-ts-not-mirrored");
    }

    // ip-forward-off on the cloud router: the tunnel stays up, forwarded traffic stops.
    if inject(&mut lab, &mut f, "ip-forward-off") {
        f.check(established(&lab), || format!("ip-forward-off: tunnel went down: {:?}", ike_states(&lab)));
        f.check(echo_fails(&lab), || "ip-forward-off: echo still works".into());
        clear_and_recover(&mut lab, &mut f, "ip-forward-off");
    }

    say(&format!("ipsec-hybrid suite done in {:.1} s", started.elapsed().as_secs_f64()));
    let report = lab.down().unwrap_or_else(|e| panic!("down: {e}"));
    f.check(report.problems.is_empty(), || format!("down: {:?}", report.problems));
    f.check(report.processes_stopped >= 3, || format!("down stopped {} processes", report.processes_stopped));
    // Nothing left: namespaces, charon processes, the work folder (configs, keys, sockets).
    let netns = std::process::Command::new("ip").args(["netns", "list"]).output().map(|o| o.stdout).unwrap_or_default();
    f.check(!String::from_utf8_lossy(&netns).contains(&id), || format!("namespaces of {id} remain"));
    f.check(!work.exists(), || format!("{} remains", work.display()));
    let charons: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            env.split(|b| *b == 0).any(|kv| kv == format!("{}={id}", strongswan::LAB_ENV).as_bytes())
        })
        .collect();
    f.check(charons.is_empty(), || format!("processes of {id} remain: {charons:?}"));
    // charon's bind mounts lived in its own mount namespace: none ever reached this one.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    f.check(!mounts.contains(&id), || format!("mounts of {id} remain"));
    assert!(f.0.is_empty(), "{} problems: {:#?}", f.0.len(), f.0);
}

/// A crashed owner: the lab's charons and namespaces are removed by the leftover-finder.
#[test]
fn leftover_finder_removes_charon_of_a_dead_lab() {
    let test = "leftover_finder_removes_charon_of_a_dead_lab";
    if !common::can_run(test) || !have_strongswan() {
        return;
    }
    let lab = up();
    let id = lab.id().to_string();
    let charons: Vec<netsleuth_lab::ProcRef> =
        lab.state().processes.iter().filter(|p| p.what == "charon").map(|p| p.process).collect();
    assert_eq!(charons.len(), 2, "{:?}", lab.state().processes);
    assert!(charons.iter().all(|p| p.alive()));
    // Lose the state file (a crash before it was written): only names and environments are left.
    let dir = netsleuth_lab::StateDir::default();
    let _ = std::fs::remove_file(dir.root().join(format!("{id}.json")));
    let work = lab.state().work_dir.clone();
    std::mem::forget(lab);
    let report = netsleuth_lab::cleanup_leftovers(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.stray_ids.contains(&id), "{report:?}");
    assert!(charons.iter().all(|p| !p.alive()), "charon survived: {report:?}");
    let netns = std::process::Command::new("ip").args(["netns", "list"]).output().map(|o| o.stdout).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&netns).contains(&id), "namespaces of {id} remain");
    // The work folder is young (< 60 s): the finder keeps it for a lab being created; remove it
    // the way a later run would.
    let _ = std::fs::remove_dir_all(&work);
}
