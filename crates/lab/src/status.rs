//! A running lab's live status: namespaces present, processes alive, WireGuard handshakes,
//! active faults.

use serde::Serialize;

use crate::lab::{existing_netns, Lab};
use crate::ops::Ops;
use crate::state::{now, ActiveFault};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostStatus {
    pub name: String,
    pub netns: String,
    pub role: Option<String>,
    pub present: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessStatus {
    pub host: String,
    pub what: String,
    pub pid: u32,
    pub alive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerStatus {
    pub public_key: String,
    /// Seconds since the last handshake (None: never).
    pub handshake_age_s: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WgStatus {
    pub host: String,
    pub name: String,
    pub ifname: String,
    pub public_key: String,
    pub peers: Vec<PeerStatus>,
}

/// Everything `lab status` shows about one lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabStatus {
    pub id: String,
    pub scenario: String,
    pub scenario_source: String,
    pub age_s: u64,
    /// Left running by `lab up` until `lab down`.
    pub detached: bool,
    /// The owning process died without tearing it down (`lab cleanup` removes it).
    pub orphaned: bool,
    pub ready: bool,
    pub hosts: Vec<HostStatus>,
    pub processes: Vec<ProcessStatus>,
    pub wireguard: Vec<WgStatus>,
    pub faults: Vec<ActiveFault>,
    /// The path tests use (source host, TCP target).
    pub path: Option<(String, String)>,
}

impl LabStatus {
    /// Every namespace present and every process alive.
    pub fn healthy(&self) -> bool {
        self.ready && self.hosts.iter().all(|h| h.present) && self.processes.iter().all(|p| p.alive)
    }
}

impl Lab {
    /// The lab as it is now.
    pub fn status(&self) -> LabStatus {
        let st = self.state();
        let existing = existing_netns();
        let ops = Ops::new(st, self.scenario());
        let t = now();
        let wireguard = st
            .wireguard
            .iter()
            .map(|w| {
                let peers = ops
                    .exec(&w.host, &["wg", "show", &w.ifname, "latest-handshakes"])
                    .map(|text| {
                        text.lines()
                            .filter_map(|l| {
                                let mut it = l.split_whitespace();
                                let key = it.next()?.to_string();
                                let at: u64 = it.next()?.parse().ok()?;
                                Some(PeerStatus {
                                    public_key: key,
                                    handshake_age_s: (at > 0).then(|| t.saturating_sub(at)),
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                WgStatus {
                    host: w.host.clone(),
                    name: w.name.clone(),
                    ifname: w.ifname.clone(),
                    public_key: w.public_key.clone(),
                    peers,
                }
            })
            .collect();
        LabStatus {
            id: st.id.clone(),
            scenario: st.scenario.clone(),
            scenario_source: st.scenario_source.clone(),
            age_s: t.saturating_sub(st.created_at),
            detached: st.owner.is_none(),
            orphaned: st.orphaned(),
            ready: st.ready,
            hosts: st
                .hosts
                .iter()
                .map(|h| HostStatus {
                    name: h.name.clone(),
                    netns: h.netns.clone(),
                    role: h.role.clone(),
                    present: existing.contains(&h.netns),
                })
                .collect(),
            processes: st
                .processes
                .iter()
                .map(|p| ProcessStatus {
                    host: p.host.clone(),
                    what: p.what.clone(),
                    pid: p.process.pid,
                    alive: p.process.alive(),
                })
                .collect(),
            wireguard,
            faults: st.faults.clone(),
            path: self.scenario().path.as_ref().map(|p| (p.value.source.clone(), p.value.target.to_string())),
        }
    }
}
