//! After a crash: finds what labs left behind (namespaces, daemons, wireguard-go sockets,
//! state and work folders named `nsl-<6 hex>`) and removes what no live owner claims.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::cmd::Cmd;
use crate::error::{LabError, Result};
use crate::lab::{existing_netns, netns_pids, remove_sockets, teardown, DownReport};
use crate::names;
use crate::procs::{self, ProcRef};
use crate::state::StateDir;

/// A work folder younger than this without a state file may be a lab being created.
const YOUNG: Duration = Duration::from_secs(60);

/// What the leftover-finder did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CleanupReport {
    /// Labs with a state file whose owner died (torn down like `lab down`).
    pub orphaned_labs: Vec<DownReport>,
    /// Lab ids without a state file whose namespaces, processes or sockets were removed.
    pub stray_ids: Vec<String>,
    pub namespaces_removed: usize,
    pub processes_stopped: usize,
    pub sockets_removed: usize,
    /// Labs left alone: detached (`lab up`, until `lab down`) or with a live owner.
    pub live_labs: Vec<String>,
    pub problems: Vec<String>,
}

impl CleanupReport {
    /// Whether anything at all was removed.
    pub fn removed_anything(&self) -> bool {
        !self.orphaned_labs.is_empty() || self.namespaces_removed + self.processes_stopped + self.sockets_removed > 0
    }
}

/// Lab ids mentioned by a running process: wireguard-go's interface argument, the echo
/// service's `--lab ID`. Only these two programs are considered.
fn lab_processes() -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for pid in procs::all_pids() {
        let cmd = procs::cmdline(pid);
        let mut words = cmd.split_whitespace();
        let Some(prog) = words.next() else { continue };
        let prog = prog.rsplit('/').next().unwrap_or(prog);
        let ours = prog == "wireguard-go" || cmd.contains(" serve ") && cmd.contains(" --lab ");
        if !ours {
            continue;
        }
        if let Some(id) = cmd
            .split_whitespace()
            .find_map(names::lab_id_of)
            .or_else(|| cmd.split_whitespace().find(|w| names::is_lab_id(w)))
        {
            out.push((id.to_string(), pid));
        }
    }
    out
}

/// Finds and removes leftovers of labs nobody owns any more. Labs that are detached or whose
/// owner process runs are left alone (use `lab down` for those).
pub fn cleanup_leftovers(dir: &StateDir) -> Result<CleanupReport> {
    if !procs::is_root() {
        return Err(LabError::NotRoot);
    }
    let mut report = CleanupReport::default();
    let mut known: BTreeSet<String> = BTreeSet::new();
    for id in dir.list() {
        known.insert(id.clone());
        match dir.load(&id) {
            Ok(state) if !state.orphaned() => report.live_labs.push(id),
            Ok(state) => {
                let _lock = dir.lock(&id)?;
                report.orphaned_labs.push(teardown(dir, &state, &mut Vec::new()));
            }
            Err(e) => {
                // An unreadable state file: clean by name, like a lab without one.
                report.problems.push(e.to_string());
                known.remove(&id);
            }
        }
    }
    let live: BTreeSet<&str> = report.live_labs.iter().map(String::as_str).collect();
    let mut stray: BTreeSet<String> = BTreeSet::new();
    let namespaces = existing_netns();
    for ns in &namespaces {
        if let Some(id) = names::lab_id_of(ns) {
            if !live.contains(id) {
                stray.insert(id.to_string());
            }
        }
    }
    let mut processes = lab_processes();
    processes.extend(crate::strongswan::lab_charons());
    for (id, _) in &processes {
        if !live.contains(id.as_str()) {
            stray.insert(id.clone());
        }
    }
    if let Ok(entries) = std::fs::read_dir(crate::services::WG_SOCKET_DIR) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".sock").and_then(names::lab_id_of) {
                if !live.contains(id) {
                    stray.insert(id.to_string());
                }
            }
        }
    }
    for id in &stray {
        // Processes first (a daemon keeps its namespace alive), then namespaces, sockets.
        for (pid_id, pid) in &processes {
            if pid_id == id {
                if let Some(p) = ProcRef::of(*pid) {
                    if p.terminate(Duration::from_secs(2)) {
                        report.processes_stopped += 1;
                    } else {
                        report.problems.push(format!("pid {pid} of lab {id} did not stop"));
                    }
                }
            }
        }
        for ns in namespaces.iter().filter(|n| names::lab_id_of(n) == Some(id.as_str())) {
            for pid in netns_pids(ns) {
                if let Some(p) = ProcRef::of(pid) {
                    if p.terminate(Duration::from_secs(2)) {
                        report.processes_stopped += 1;
                    }
                }
            }
            match Cmd::new(["ip", "netns", "del", ns]).run() {
                Ok(_) => report.namespaces_removed += 1,
                Err(e) => report.problems.push(format!("namespace {ns}: {e}")),
            }
        }
        report.sockets_removed += remove_sockets(id, &mut report.problems);
        if !known.contains(id) {
            if let Err(e) = dir.remove(id) {
                report.problems.push(e.to_string());
            }
        }
        report.stray_ids.push(id.clone());
    }
    // Work folders without a state file (a crash between the two), unless just made.
    if let Ok(entries) = std::fs::read_dir(dir.root()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !names::is_lab_id(&name) || known.contains(&name) || dir.state_path(&name).exists() {
                continue;
            }
            let young = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_none_or(|age| age < YOUNG);
            if !young {
                if let Err(err) = dir.remove(&name) {
                    report.problems.push(err.to_string());
                }
            }
        }
    }
    Ok(report)
}

/// Tears down every lab with a state file (`lab down --all`), owned or not.
pub fn down_all(dir: &StateDir) -> Vec<Result<DownReport>> {
    dir.list().into_iter().map(|id| crate::lab::Lab::attach(dir, &id).and_then(crate::lab::Lab::down)).collect()
}
