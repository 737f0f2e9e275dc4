//! What `netsleuth lab collect` collects: one `CollectTarget` per lab host, pointed at the
//! lab's own files (swanctl.conf, the charon's VICI socket, per-pod resolv.conf) in its work dir.

use netsleuth_model::host::HostRole;
use netsleuth_probe::collect::CollectTarget;

use crate::lab::Lab;
use crate::state::{HostState, LabState};
use crate::{dnsmasq, strongswan};

impl Lab {
    /// The collect targets of every host of the lab, in the lab's host order.
    pub fn collect_targets(&self) -> Vec<CollectTarget> {
        let ipsec: Vec<&str> = strongswan::services(self.scenario()).into_iter().map(|(h, _)| h).collect();
        self.state().hosts.iter().map(|h| target(self.state(), h, ipsec.contains(&h.name.as_str()))).collect()
    }
}

/// The target of one host; `ipsec`: the host runs a charon of the lab.
fn target(state: &LabState, h: &HostState, ipsec: bool) -> CollectTarget {
    let mut t = CollectTarget {
        // The lab's roles beyond node/gateway/pod (router, switch, server) have no model
        // role: host.json then leaves the role out.
        role: match h.role.as_deref() {
            Some("node") => Some(HostRole::Node),
            Some("gateway") => Some(HostRole::Gateway),
            Some("pod") => Some(HostRole::Pod),
            _ => None,
        },
        node: h.node.clone(),
        pod: h.pod.clone(),
        ..CollectTarget::netns(h.name.clone(), h.netns.clone())
    };
    if ipsec {
        // The lab's charon reads this file (PSK included: collect redacts it) and listens
        // on a socket in the host's folder, which is its private /run.
        t.etc_files.insert("swanctl/swanctl.conf".into(), strongswan::host_dir(state, &h.name).join("swanctl.conf"));
        t.swanctl_uri = Some(strongswan::vici_uri(state, &h.name));
    }
    // Only hosts with a `resolv` service have a file; /etc/resolv.conf is the machine's, not
    // the pod's, so the lab's file replaces it.
    let resolv = dnsmasq::resolv_path(&state.work_dir, &h.name);
    if resolv.is_file() {
        t.etc_files.insert("resolv.conf".into(), resolv);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn state(work: PathBuf) -> LabState {
        serde_json::from_value(serde_json::json!({
            "format": "x", "id": "abc123", "scenario": "s", "scenario_source": "builtin:s",
            "scenario_text": "", "created_at": 0, "work_dir": work, "echo_command": [],
            "hosts": [],
        }))
        .unwrap_or_else(|e| panic!("state: {e}"))
    }

    fn host(name: &str, role: &str) -> HostState {
        HostState {
            name: name.into(),
            netns: format!("nsl-abc123-{name}"),
            role: Some(role.into()),
            node: Some("node-1".into()),
            pod: None,
        }
    }

    #[test]
    fn ipsec_and_dns_hosts_point_at_the_labs_files() {
        let work = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let st = state(work.path().to_path_buf());
        let resolv = dnsmasq::resolv_path(work.path(), "pod-a");
        std::fs::create_dir_all(resolv.parent().unwrap_or(work.path())).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&resolv, "nameserver 10.0.0.53\n").unwrap_or_else(|e| panic!("{e}"));

        let gw = target(&st, &host("gw-a", "router"), true);
        assert_eq!(gw.netns.as_deref(), Some("nsl-abc123-gw-a"));
        assert_eq!(gw.role, None, "router has no model role");
        assert_eq!(
            gw.swanctl_uri,
            Some(format!("unix://{}", work.path().join("ipsec/gw-a/run/charon.vici").display()))
        );
        assert_eq!(
            gw.etc_files.get("swanctl/swanctl.conf"),
            Some(&work.path().join("ipsec/gw-a/swanctl.conf")),
            "{gw:?}"
        );
        assert!(!gw.etc_files.contains_key("resolv.conf"), "no resolv service: {gw:?}");

        let pod = target(&st, &host("pod-a", "pod"), false);
        assert_eq!(pod.role, Some(HostRole::Pod));
        assert_eq!(pod.node.as_deref(), Some("node-1"));
        assert_eq!(pod.swanctl_uri, None);
        assert_eq!(pod.etc_files.get("resolv.conf"), Some(&resolv));
        assert_eq!(pod.etc_files.len(), 1, "{pod:?}");
    }
}
