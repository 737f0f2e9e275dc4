//! The `Lab` guard: brings a scenario up, runs commands and traffic in its hosts, injects
//! and clears faults, and removes everything it made on `down`, on drop, or after Ctrl-C.

use std::collections::BTreeMap;
use std::process::Child;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cmd::{self, Cmd, CmdOutput};
use crate::error::{LabError, Result};
use crate::faults::{self, FaultRequest};
use crate::names;
use crate::ops::Ops;
use crate::procs::{self, ProcRef};
use crate::scenario::{self, LoadedScenario, Scenario, Service};
use crate::services;
use crate::setup;
use crate::state::{ActiveFault, HostState, LabState, StateDir, STATE_FORMAT};

/// How long a process gets to exit after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// How to bring a lab up.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub state_dir: StateDir,
    /// The echo program (service and client), absolute path first: e.g.
    /// `[".../netsleuth-lab-echo"]` or `["/usr/bin/netsleuth", "lab", "echo"]`.
    pub echo_command: Vec<String>,
    /// Faults injected once the lab is up.
    pub faults: Vec<FaultRequest>,
    /// Set by a Ctrl-C / SIGTERM handler: setup stops and tears down.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl UpOptions {
    pub fn new(echo_command: Vec<String>) -> UpOptions {
        UpOptions { state_dir: StateDir::default(), echo_command, faults: Vec::new(), cancel: None }
    }
}

/// Programs the lab runs, checked before anything is made.
fn required_programs(sc: &Scenario) -> Vec<&'static str> {
    let mut v = vec!["ip", "bridge", "sysctl", "nft", "ss", "ping"];
    let services = || sc.hosts.values().flat_map(|h| h.value.services.iter());
    if services().any(|s| matches!(s.value, Service::Wireguard(_))) {
        v.extend(["wg", "wireguard-go"]);
    }
    v
}

/// What `down` removed and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DownReport {
    pub id: String,
    pub processes_stopped: usize,
    pub namespaces_removed: usize,
    pub sockets_removed: usize,
    /// Anything left behind, in words (empty when all went).
    pub problems: Vec<String>,
}

/// A running lab. Dropping an owning `Lab` tears it down; `detach` leaves it running for
/// later commands (`netsleuth lab ...`), which `attach` to it by id.
pub struct Lab {
    dir: StateDir,
    state: LabState,
    scenario: Scenario,
    children: Vec<Child>,
    owned: bool,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab").field("id", &self.state.id).field("owned", &self.owned).finish()
    }
}

impl Lab {
    /// Builds `scenario` in fresh namespaces and injects `opts.faults`. On any error,
    /// including an interruption, everything made so far is removed before returning.
    pub fn up(scenario: &LoadedScenario, opts: &UpOptions) -> Result<Lab> {
        if !procs::is_root() {
            return Err(LabError::NotRoot);
        }
        let missing: Vec<&str> =
            required_programs(&scenario.scenario).into_iter().filter(|p| !cmd::have_program(p)).collect();
        if !missing.is_empty() {
            return Err(LabError::MissingTools(format!(
                "{} (Debian: apt-get install --no-install-recommends iproute2 nftables iputils-ping wireguard-tools \
                 wireguard-go)",
                missing.join(", ")
            )));
        }
        match opts.echo_command.first() {
            Some(p) if p.starts_with('/') && cmd::have_program(p) => {}
            _ => {
                return Err(LabError::Lab(format!(
                    "the echo program {:?} must be an absolute path to an existing file",
                    opts.echo_command.first()
                )))
            }
        }
        // Faults are resolved before anything is built: a typo fails fast.
        for f in &opts.faults {
            faults::resolve(f, &scenario.scenario).map_err(|m| LabError::fault(&f.name, m))?;
        }
        let dir = opts.state_dir.clone();
        dir.ensure()?;
        let id = fresh_id(&dir)?;
        let _lock = dir.lock(&id)?;
        let work_dir = dir.create_work_dir(&id)?;
        let sc = &scenario.scenario;
        let state = LabState {
            format: STATE_FORMAT.into(),
            id: id.clone(),
            scenario: sc.name().to_string(),
            scenario_source: scenario.source.clone(),
            scenario_text: scenario.text.clone(),
            created_at: crate::state::now(),
            owner: ProcRef::of(std::process::id()),
            work_dir,
            echo_command: opts.echo_command.clone(),
            hosts: sc
                .hosts
                .iter()
                .map(|(name, h)| HostState {
                    name: name.clone(),
                    netns: names::netns_name(&id, name),
                    role: h.value.role.map(|r| r.as_str().to_string()),
                    node: h.value.node.clone(),
                    pod: h.value.pod.clone(),
                })
                .collect(),
            wireguard: Vec::new(),
            processes: Vec::new(),
            faults: Vec::new(),
            ready: false,
        };
        // Recorded before the first namespace exists: whatever happens next, the
        // leftover-finder knows this lab and its owner.
        dir.save(&state)?;
        let mut lab = Lab { dir, state, scenario: sc.clone(), children: Vec::new(), owned: true };
        let cancel = opts.cancel.as_deref();
        setup::build(&mut lab.state, &lab.scenario, &lab.dir, &mut lab.children, cancel)?;
        // Faults given at `up` are there before the tunnels start (so a blocked port means
        // a handshake that never completed, as TUN-005 sees it); those that change the
        // WireGuard configuration itself come after it.
        let (wg_faults, other): (Vec<&FaultRequest>, Vec<&FaultRequest>) =
            opts.faults.iter().partition(|f| faults::find(&f.name).is_some_and(faults::FaultSpec::changes_wireguard));
        for f in other {
            lab.inject_locked(f)?;
        }
        if cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst)) {
            return Err(LabError::Interrupted);
        }
        setup::start_tunnels(&lab.state, &lab.scenario, opts.faults.is_empty())?;
        for f in wg_faults {
            lab.inject_locked(f)?;
        }
        lab.state.ready = true;
        lab.dir.save(&lab.state)?;
        Ok(lab)
        // On an error above, `lab` is dropped: it is owned, so Drop tears it down.
    }

    /// A handle on a running lab; dropping it leaves the lab running.
    pub fn attach(dir: &StateDir, id: &str) -> Result<Lab> {
        let state = dir.load(id)?;
        let scenario = parse_state_scenario(&state)?;
        Ok(Lab { dir: dir.clone(), state, scenario, children: Vec::new(), owned: false })
    }

    /// The only running lab, or an error listing them when there are several (or none).
    pub fn attach_only(dir: &StateDir) -> Result<Lab> {
        let ids = dir.list();
        match ids.as_slice() {
            [id] => Lab::attach(dir, id),
            [] => Err(LabError::Lab("no lab is running (start one with `netsleuth lab up SCENARIO`)".into())),
            _ => Err(LabError::Lab(format!("several labs run ({}): choose one with --lab ID", ids.join(", ")))),
        }
    }

    /// Leaves the lab running after this handle is gone (until `lab down`); returns its id.
    pub fn detach(mut self) -> Result<String> {
        let _lock = self.dir.lock(&self.state.id)?;
        self.reload()?;
        self.state.owner = None;
        self.dir.save(&self.state)?;
        self.owned = false;
        // The daemons keep running; their handles are let go (they are reparented when
        // this process ends).
        self.children.clear();
        Ok(self.state.id.clone())
    }

    pub fn id(&self) -> &str {
        &self.state.id
    }

    pub fn state(&self) -> &LabState {
        &self.state
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The namespace of a host.
    pub fn netns(&self, host: &str) -> Result<&str> {
        Ops::new(&self.state, &self.scenario).netns(host)
    }

    /// The real name of an interface (`wg0` → `nsl-1a2b3c-w0`).
    pub fn ifname(&self, host: &str, name: &str) -> String {
        self.state.ifname(host, name)
    }

    fn reload(&mut self) -> Result<()> {
        let fresh = self.dir.load(&self.state.id)?;
        self.state = fresh;
        Ok(())
    }

    /// Runs a command in a host's namespace with a deadline (killed when late).
    pub fn exec(&self, host: &str, args: &[&str], timeout: Duration) -> Result<CmdOutput> {
        Cmd::in_netns(self.netns(host)?, args).timeout(timeout).output()
    }

    /// The echo program's command line, for running its client in a host.
    pub fn echo_command(&self) -> &[String] {
        &self.state.echo_command
    }

    /// Injects a fault (idempotent: injecting an active fault with the same parameters only
    /// verifies it). Returns the parameters in effect.
    pub fn inject(&mut self, req: &FaultRequest) -> Result<BTreeMap<String, String>> {
        let _lock = self.dir.lock(&self.state.id)?;
        self.reload()?;
        self.inject_locked(req)
    }

    fn inject_locked(&mut self, req: &FaultRequest) -> Result<BTreeMap<String, String>> {
        let (spec, params) = faults::resolve(req, &self.scenario).map_err(|m| LabError::fault(&req.name, m))?;
        if let Some(active) = self.state.faults.iter().find(|f| f.name == spec.name) {
            if active.params != params {
                return Err(LabError::fault(
                    spec.name,
                    format!("already injected with other parameters ({}); clear it first", fmt_params(&active.params)),
                ));
            }
            let mut saved = active.saved.clone();
            faults::apply::inject(&Ops::new(&self.state, &self.scenario), spec, &params, &mut saved)?;
            return Ok(params);
        }
        let mut saved = BTreeMap::new();
        let ops = Ops::new(&self.state, &self.scenario);
        if let Err(e) = faults::apply::inject(&ops, spec, &params, &mut saved) {
            // Put back whatever the failed attempt changed.
            let _ = faults::apply::clear(&ops, spec, &params, &saved);
            return Err(e);
        }
        self.state.faults.push(ActiveFault {
            name: spec.name.to_string(),
            params: params.clone(),
            saved,
            injected_at: crate::state::now(),
        });
        self.dir.save(&self.state)?;
        Ok(params)
    }

    /// Clears one fault, or all of them (`None`). Clearing a fault that is not active does
    /// nothing. Returns the names cleared.
    pub fn clear(&mut self, name: Option<&str>) -> Result<Vec<String>> {
        let _lock = self.dir.lock(&self.state.id)?;
        self.reload()?;
        if let Some(n) = name {
            if faults::find(n).is_none() {
                return Err(LabError::fault(n, "no such fault (`netsleuth lab faults` lists them)"));
            }
        }
        let targets: Vec<ActiveFault> =
            self.state.faults.iter().filter(|f| name.is_none_or(|n| f.name == n)).cloned().collect();
        let mut cleared = Vec::new();
        // Newest first: faults stacked on the same object come off in reverse order.
        for f in targets.iter().rev() {
            let Some(spec) = faults::find(&f.name) else { continue };
            faults::apply::clear(&Ops::new(&self.state, &self.scenario), spec, &f.params, &f.saved)?;
            self.state.faults.retain(|x| x.name != f.name);
            self.dir.save(&self.state)?;
            cleared.push(f.name.clone());
        }
        Ok(cleared)
    }

    /// Active faults.
    pub fn faults(&self) -> &[ActiveFault] {
        &self.state.faults
    }

    /// Tears the lab down and reports what was removed.
    pub fn down(mut self) -> Result<DownReport> {
        self.owned = false;
        let _lock = self.dir.lock(&self.state.id)?;
        if let Ok(fresh) = self.dir.load(&self.state.id) {
            self.state = fresh;
        }
        Ok(teardown(&self.dir, &self.state, &mut self.children))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.owned {
            if let Ok(fresh) = self.dir.load(&self.state.id) {
                self.state = fresh;
            }
            let _ = teardown(&self.dir, &self.state, &mut self.children);
        }
    }
}

fn fmt_params(p: &BTreeMap<String, String>) -> String {
    p.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

fn fresh_id(dir: &StateDir) -> Result<String> {
    let existing = existing_netns();
    for _ in 0..32 {
        let id = names::new_lab_id()?;
        let taken = dir.state_path(&id).exists()
            || dir.work_dir(&id).exists()
            || existing.iter().any(|n| names::lab_id_of(n) == Some(&id));
        if !taken {
            return Ok(id);
        }
    }
    Err(LabError::Lab("could not find an unused lab id in 32 tries".into()))
}

pub(crate) fn parse_state_scenario(state: &LabState) -> Result<Scenario> {
    Ok(scenario::parse(&state.scenario_text, &state.scenario_source)?.scenario)
}

/// Network namespace names (from `ip netns list`; empty when unavailable).
pub(crate) fn existing_netns() -> Vec<String> {
    let Ok(out) = Cmd::new(["ip", "netns", "list"]).run() else { return Vec::new() };
    out.lines().filter_map(|l| l.split_whitespace().next().map(str::to_string)).collect()
}

/// Removes everything a lab made: its processes (by pid and start time, bounded waits),
/// any other process inside its namespaces, the namespaces (and with them every link and
/// address), stale wireguard-go sockets, its work folder and its state file.
pub(crate) fn teardown(dir: &StateDir, state: &LabState, children: &mut Vec<Child>) -> DownReport {
    let mut report = DownReport { id: state.id.clone(), ..DownReport::default() };
    // 1. Recorded processes, in reverse start order (echo before WireGuard).
    for p in state.processes.iter().rev() {
        if p.process.alive() {
            if p.process.terminate(TERM_GRACE) {
                report.processes_stopped += 1;
            } else {
                report.problems.push(format!("{} (pid {}) on {} did not stop", p.what, p.process.pid, p.host));
            }
        }
    }
    reap(children);
    let existing = existing_netns();
    let ours: Vec<&HostState> = state.hosts.iter().filter(|h| existing.contains(&h.netns)).collect();
    // 2. Anything else still running inside the namespaces (`lab exec` leftovers).
    for h in &ours {
        for pid in netns_pids(&h.netns) {
            if let Some(p) = ProcRef::of(pid) {
                if p.terminate(TERM_GRACE) {
                    report.processes_stopped += 1;
                } else {
                    report.problems.push(format!("pid {pid} in {} did not stop", h.netns));
                }
            }
        }
    }
    // 3. The namespaces.
    for h in &ours {
        match Cmd::new(["ip", "netns", "del", &h.netns]).run() {
            Ok(_) => report.namespaces_removed += 1,
            Err(e) => report.problems.push(format!("namespace {}: {e}", h.netns)),
        }
    }
    // 4. wireguard-go removes its socket on SIGTERM, not on SIGKILL.
    report.sockets_removed += remove_sockets(&state.id, &mut report.problems);
    // 5. Files.
    if let Err(e) = dir.remove(&state.id) {
        report.problems.push(e.to_string());
    }
    report
}

/// Reaps our own children (bounded), so none is left a zombie.
fn reap(children: &mut Vec<Child>) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !children.is_empty() && Instant::now() < deadline {
        children.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_)) | Err(_)));
        if !children.is_empty() {
            thread::sleep(Duration::from_millis(20));
        }
    }
    for mut c in children.drain(..) {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Pids whose network namespace is `netns` (`ip netns pids`).
pub(crate) fn netns_pids(netns: &str) -> Vec<u32> {
    let own = std::process::id();
    Cmd::new(["ip", "netns", "pids", netns])
        .run()
        .map(|o| o.split_whitespace().filter_map(|p| p.parse().ok()).filter(|p| *p != own).collect())
        .unwrap_or_default()
}

/// Removes wireguard-go sockets of lab `id` whose daemon is gone; returns how many.
pub(crate) fn remove_sockets(id: &str, problems: &mut Vec<String>) -> usize {
    let Ok(entries) = std::fs::read_dir(services::WG_SOCKET_DIR) else { return 0 };
    let mut n = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(ifname) = name.strip_suffix(".sock") else { continue };
        if names::lab_id_of(ifname) != Some(id) {
            continue;
        }
        match std::fs::remove_file(e.path()) {
            Ok(()) => n += 1,
            Err(err) => problems.push(format!("{}: {err}", e.path().display())),
        }
    }
    n
}
