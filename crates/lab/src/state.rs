//! Where running labs are recorded: one JSON file per lab in the state folder (by default
//! `/run/netsleuth-lab/<id>.json`), so that later CLI invocations can find and change them.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::fs::{flock, FlockOperation};
use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::names;
use crate::procs::ProcRef;

/// Format tag of state files.
pub const STATE_FORMAT: &str = "netsleuth-lab-state/1";
/// The default state folder; `NETSLEUTH_LAB_DIR` overrides it.
pub const DEFAULT_STATE_DIR: &str = "/run/netsleuth-lab";
/// How long a command waits for another one working on the same lab.
const LOCK_WAIT: Duration = Duration::from_secs(120);

/// One host of a running lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    pub name: String,
    pub netns: String,
    #[serde(default)]
    pub role: Option<String>,
    /// For pods: their node host.
    #[serde(default)]
    pub node: Option<String>,
    /// For pods: `namespace/name`.
    #[serde(default)]
    pub pod: Option<String>,
}

/// One WireGuard interface of a running lab (public data only: keys stay in the work dir).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WgState {
    pub host: String,
    /// The scenario's name for it (`wg0`).
    pub name: String,
    /// The real interface name (`nsl-1a2b3c-w0`).
    pub ifname: String,
    pub public_key: String,
    pub listen_port: u16,
}

/// A process the lab started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcState {
    pub host: String,
    /// `wireguard-go nsl-...-w0`, `echo`.
    pub what: String,
    pub process: ProcRef,
}

/// A fault that is in effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveFault {
    pub name: String,
    /// Every parameter, defaults filled in.
    pub params: BTreeMap<String, String>,
    /// What inject changed, to put it back on clear (original MTU, sysctl values, ...).
    #[serde(default)]
    pub saved: BTreeMap<String, String>,
    pub injected_at: u64,
}

/// Everything known about a running lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    pub format: String,
    pub id: String,
    pub scenario: String,
    /// A file path or `builtin:NAME`.
    pub scenario_source: String,
    /// The scenario text the lab was built from (re-parsed by later commands).
    pub scenario_text: String,
    pub created_at: u64,
    /// The process that owns the lab and tears it down when it ends; None once detached
    /// (`lab up` leaves it running until `lab down`).
    #[serde(default)]
    pub owner: Option<ProcRef>,
    /// Private folder of the lab (keys, logs); removed on down.
    pub work_dir: PathBuf,
    /// How to run the echo program (service and client).
    pub echo_command: Vec<String>,
    pub hosts: Vec<HostState>,
    #[serde(default)]
    pub wireguard: Vec<WgState>,
    #[serde(default)]
    pub processes: Vec<ProcState>,
    #[serde(default)]
    pub faults: Vec<ActiveFault>,
    /// Whether setup finished (false while building, or after a failed build).
    #[serde(default)]
    pub ready: bool,
}

impl LabState {
    pub fn host(&self, name: &str) -> Option<&HostState> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The namespace of a host.
    pub fn netns(&self, host: &str) -> Option<&str> {
        self.host(host).map(|h| h.netns.as_str())
    }

    pub fn wg(&self, host: &str, name: &str) -> Option<&WgState> {
        self.wireguard.iter().find(|w| w.host == host && w.name == name)
    }

    /// An interface's real name: WireGuard interfaces are renamed, others keep theirs.
    pub fn ifname(&self, host: &str, name: &str) -> String {
        self.wg(host, name).map_or_else(|| name.to_string(), |w| w.ifname.clone())
    }

    /// Whether nobody tears this lab down any more: its owner died without doing so.
    pub fn orphaned(&self) -> bool {
        self.owner.is_some_and(|o| !o.alive())
    }
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The folder holding the state of running labs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

impl Default for StateDir {
    fn default() -> StateDir {
        let root =
            std::env::var_os("NETSLEUTH_LAB_DIR").map_or_else(|| PathBuf::from(DEFAULT_STATE_DIR), PathBuf::from);
        StateDir { root }
    }
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn state_path(&self, id: &str) -> PathBuf {
        self.root.join(format!("{id}.json"))
    }

    fn lock_path(&self, id: &str) -> PathBuf {
        self.root.join(format!("{id}.lock"))
    }

    /// The private folder of a lab.
    pub(crate) fn work_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Creates the state folder (0755: state files hold no secrets).
    pub(crate) fn ensure(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&self.root)
            .map_err(|e| LabError::io(format!("cannot create the lab state folder {}", self.root.display()), e))
    }

    /// Creates the private work folder of a lab (0700: it holds private keys).
    pub(crate) fn create_work_dir(&self, id: &str) -> Result<PathBuf> {
        let dir = self.work_dir(id);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| LabError::io(format!("cannot create {}", dir.display()), e))?;
        // The umask may have narrowed it further, never widened: make it exactly 0700.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| LabError::io(format!("cannot set permissions of {}", dir.display()), e))?;
        Ok(dir)
    }

    /// Writes a lab's state atomically (temporary file, then rename).
    pub(crate) fn save(&self, state: &LabState) -> Result<()> {
        let path = self.state_path(&state.id);
        let tmp = self.root.join(format!(".{}.json.tmp", state.id));
        let text = serde_json::to_vec_pretty(state)
            .map_err(|e| LabError::State { path: path.display().to_string(), message: e.to_string() })?;
        fs::write(&tmp, text).map_err(|e| LabError::io(format!("cannot write {}", tmp.display()), e))?;
        fs::rename(&tmp, &path).map_err(|e| LabError::io(format!("cannot write {}", path.display()), e))
    }

    /// Reads a lab's state.
    pub fn load(&self, id: &str) -> Result<LabState> {
        if !names::is_lab_id(id) {
            return Err(LabError::Lab(format!("{id:?} is not a lab id (they look like nsl-1a2b3c)")));
        }
        let path = self.state_path(id);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LabError::Lab(format!("no lab {id} (`netsleuth lab status` lists the running labs)")))
            }
            Err(e) => return Err(LabError::io(format!("cannot read {}", path.display()), e)),
        };
        let state: LabState = serde_json::from_slice(&text)
            .map_err(|e| LabError::State { path: path.display().to_string(), message: e.to_string() })?;
        if state.format != STATE_FORMAT || state.id != id {
            return Err(LabError::State {
                path: path.display().to_string(),
                message: format!("format {:?} / id {:?}, expected {STATE_FORMAT} / {id}", state.format, state.id),
            });
        }
        Ok(state)
    }

    /// Ids of every lab with a state file, sorted.
    pub fn list(&self) -> Vec<String> {
        let Ok(dir) = fs::read_dir(&self.root) else { return Vec::new() };
        let mut ids: Vec<String> = dir
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                let id = name.strip_suffix(".json")?;
                names::is_lab_id(id).then(|| id.to_string())
            })
            .collect();
        ids.sort();
        ids
    }

    /// Removes a lab's state file, lock file and work folder.
    pub(crate) fn remove(&self, id: &str) -> Result<()> {
        let work = self.work_dir(id);
        if work.exists() {
            fs::remove_dir_all(&work).map_err(|e| LabError::io(format!("cannot remove {}", work.display()), e))?;
        }
        for p in [self.state_path(id), self.lock_path(id)] {
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LabError::io(format!("cannot remove {}", p.display()), e)),
            }
        }
        Ok(())
    }

    /// Takes the lab's lock (one command changes a lab at a time), waiting a bounded time.
    pub(crate) fn lock(&self, id: &str) -> Result<LabLock> {
        let path = self.lock_path(id);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LabError::io(format!("cannot open {}", path.display()), e))?;
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(LabLock { _file: file }),
                Err(e) if e == rustix::io::Errno::WOULDBLOCK || e == rustix::io::Errno::INTR => {}
                Err(e) => return Err(LabError::io(format!("cannot lock {}", path.display()), e.into())),
            }
            if Instant::now() >= deadline {
                return Err(LabError::Lab(format!(
                    "lab {id} is busy: another netsleuth command held its lock for {} s",
                    LOCK_WAIT.as_secs()
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Held while a command changes a lab; released when dropped (the file closes).
#[derive(Debug)]
pub(crate) struct LabLock {
    _file: File,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: &str) -> LabState {
        LabState {
            format: STATE_FORMAT.into(),
            id: id.into(),
            scenario: "s".into(),
            scenario_source: "builtin:s".into(),
            scenario_text: "name: s\n".into(),
            created_at: 1,
            owner: None,
            work_dir: PathBuf::from("/nonexistent"),
            echo_command: vec!["echo-bin".into()],
            hosts: vec![HostState { name: "a".into(), netns: format!("{id}-a"), role: None, node: None, pod: None }],
            wireguard: vec![WgState {
                host: "a".into(),
                name: "wg0".into(),
                ifname: format!("{id}-w0"),
                public_key: "pub".into(),
                listen_port: 51820,
            }],
            processes: Vec::new(),
            faults: Vec::new(),
            ready: true,
        }
    }

    #[test]
    fn save_load_list_remove() {
        let tmp = std::env::temp_dir().join(format!("nsl-state-test-{}", std::process::id()));
        let dir = StateDir::new(&tmp);
        dir.ensure().expect("mkdir");
        let s = sample("nsl-abc123");
        dir.save(&s).expect("save");
        assert_eq!(dir.load("nsl-abc123").expect("load"), s);
        assert_eq!(dir.list(), ["nsl-abc123"]);
        assert_eq!(s.ifname("a", "wg0"), "nsl-abc123-w0");
        assert_eq!(s.ifname("a", "eth0"), "eth0");
        assert_eq!(s.netns("a"), Some("nsl-abc123-a"));
        {
            let _l = dir.lock("nsl-abc123").expect("lock");
        }
        let work = dir.create_work_dir("nsl-abc123").expect("work dir");
        let mode = fs::metadata(&work).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        dir.remove("nsl-abc123").expect("remove");
        assert!(dir.list().is_empty());
        assert!(!work.exists());
        assert!(matches!(dir.load("nsl-abc123"), Err(LabError::Lab(_))));
        assert!(matches!(dir.load("../etc"), Err(LabError::Lab(_))));
        let _ = fs::remove_dir_all(&tmp);
    }

    #[test]
    fn a_dead_owner_makes_an_orphan() {
        let mut s = sample("nsl-abc124");
        assert!(!s.orphaned(), "detached labs are not orphans");
        s.owner = ProcRef::of(std::process::id());
        assert!(!s.orphaned(), "this process is alive");
        s.owner = Some(ProcRef { pid: std::process::id(), start_time: 0 });
        assert!(s.orphaned(), "a different start time is another (dead) process");
    }
}
