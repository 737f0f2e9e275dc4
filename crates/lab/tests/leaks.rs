//! Nothing is left behind: namespaces, links in the root namespace, processes, wireguard-go
//! sockets, mounts and state files are the same before and after a lab, whether it ends by
//! drop, by an interruption during setup, or by a crash that the leftover-finder cleans.
//! Needs root. Only objects named like a lab (`nsl-…`) are compared, so that other users of
//! the machine do not disturb the test.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use netsleuth_lab::{cleanup_leftovers, scenario, Lab, ProcRef, StateDir, UpOptions};

/// Names the k8s-wireguard-site scenario gives interfaces (none may appear in the root
/// namespace).
const SCENARIO_IFACES: &[&str] =
    &["br0", "cni0", "vxlan0", "veth-a", "veth-b", "p-node-1", "p-node-2", "p-gw", "eth1", "lan0"];

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    namespaces: BTreeSet<String>,
    root_links: BTreeSet<String>,
    processes: BTreeSet<String>,
    sockets: BTreeSet<String>,
    mounts: BTreeSet<String>,
    state_files: BTreeSet<String>,
}

fn lines(cmd: &[&str]) -> Vec<String> {
    let out = std::process::Command::new(cmd[0]).args(&cmd[1..]).output().expect("command runs");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

fn snapshot() -> Snapshot {
    let labby = |s: &str| s.contains("nsl-");
    let namespaces = lines(&["ip", "netns", "list"])
        .into_iter()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|n| labby(n))
        .collect();
    let root_links = lines(&["ip", "-o", "link", "show"])
        .into_iter()
        .filter_map(|l| l.split(": ").nth(1).map(|n| n.split('@').next().unwrap_or(n).to_string()))
        .filter(|n| labby(n) || SCENARIO_IFACES.contains(&n.as_str()))
        .collect();
    let mut processes = BTreeSet::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let ours = cmd.contains("wireguard-go") || cmd.contains("netsleuth-lab-echo") || cmd.contains("sleep 3600");
        if ours && labby(&cmd) {
            processes.insert(format!("{pid} {cmd}"));
        }
    }
    let sockets = std::fs::read_dir(netsleuth_lab::WG_SOCKET_DIR)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| labby(n)).collect())
        .unwrap_or_default();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| labby(l))
        .map(str::to_string)
        .collect();
    let dir = StateDir::default();
    let state_files = std::fs::read_dir(dir.root())
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| labby(n)).collect())
        .unwrap_or_default();
    Snapshot { namespaces, root_links, processes, sockets, mounts, state_files }
}

fn assert_same(before: &Snapshot, what: &str) {
    let after = snapshot();
    assert_eq!(&after, before, "{what}: something was left behind");
}

#[test]
fn nothing_is_left_behind() {
    if !common::can_run("nothing_is_left_behind") {
        return;
    }
    // Other lab tests may run at the same time in other processes: wait (bounded) until no
    // other lab exists, so that the comparison is about this test's labs only.
    let quiet = common::eventually(Duration::from_secs(120), Duration::from_millis(500), || {
        let s = snapshot();
        s.namespaces.is_empty() && s.processes.is_empty() && s.sockets.is_empty()
    });
    assert!(quiet, "other labs kept running for 2 minutes: {:?}", snapshot());
    let before = snapshot();

    // 1. Drop of the guard, with faults active and a stray process started through exec.
    {
        let mut lab = common::up(&["udp-block:51820"]);
        lab.inject(&"mtu-mismatch".parse().expect("fault")).expect("inject");
        lab.inject(&"conntrack-full".parse().expect("fault")).expect("inject");
        let out = lab
            .exec("pod-a", &["sh", "-c", "sleep 3600 >/dev/null 2>&1 & echo $!"], Duration::from_secs(5))
            .expect("exec");
        let pid: u32 = out.stdout.trim().parse().expect("pid of the background sleep");
        let sleeper = ProcRef::of(pid).expect("sleep runs");
        assert!(snapshot().namespaces.len() >= 9);
        drop(lab);
        assert!(!sleeper.alive(), "the process started inside the lab was stopped");
    }
    assert_same(&before, "after drop");

    // 2. Ctrl-C during setup: the build stops between steps and removes what it made.
    {
        let sc = scenario::load("k8s-wireguard-site").expect("scenario");
        let cancel = Arc::new(AtomicBool::new(false));
        let mut opts = UpOptions::new(common::echo_command());
        opts.cancel = Some(Arc::clone(&cancel));
        let flag = Arc::clone(&cancel);
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(150));
            flag.store(true, Ordering::SeqCst);
        });
        let res = Lab::up(&sc, &opts);
        t.join().expect("timer");
        common::say(&format!("interrupted setup: {:?}", res.as_ref().map(|l| l.id())));
        match res {
            Err(netsleuth_lab::LabError::Interrupted) => {}
            // A fast machine may finish first; then the guard removes it.
            Ok(lab) => drop(lab),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_same(&before, "after an interrupted setup");

    // 3. Crash with the state file lost: namespaces, daemons and sockets found by name.
    {
        let lab = common::up(&[]);
        let id = lab.detach().expect("detach");
        let dir = StateDir::default();
        std::fs::remove_file(dir.root().join(format!("{id}.json"))).expect("remove state");
        let report = cleanup_leftovers(&dir).expect("cleanup");
        assert!(report.stray_ids.contains(&id), "{report:?}");
        assert_eq!(report.namespaces_removed, 9, "{report:?}");
        assert!(report.processes_stopped >= 4, "{report:?}");
        assert!(report.problems.is_empty(), "{report:?}");
    }
    assert_same(&before, "after cleanup of a lab without state");

    // 4. Crash of the owning process: the state names an owner that is gone.
    {
        let lab = common::up(&[]);
        let dir = StateDir::default();
        let id = lab.id().to_string();
        let path = dir.root().join(format!("{id}.json"));
        // A process that has exited stands for the crashed owner.
        let mut child = std::process::Command::new("true").spawn().expect("true runs");
        let dead_pid = child.id();
        child.wait().expect("reaped");
        // The live lab is left alone by the cleanup...
        let report = cleanup_leftovers(&dir).expect("cleanup");
        assert!(report.live_labs.contains(&id), "{report:?}");
        let id2 = lab.detach().expect("detach");
        assert_eq!(id, id2);
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("state")).expect("json");
        v["owner"] = serde_json::json!({"pid": dead_pid, "start_time": 1});
        std::fs::write(&path, serde_json::to_vec(&v).expect("json")).expect("write state");
        // ...and removed once its owner is dead.
        let report = cleanup_leftovers(&dir).expect("cleanup");
        assert_eq!(report.orphaned_labs.len(), 1, "{report:?}");
        assert_eq!(report.orphaned_labs[0].namespaces_removed, 9, "{report:?}");
        assert!(report.problems.is_empty(), "{report:?}");
    }
    assert_same(&before, "after cleanup of an orphaned lab");
}
