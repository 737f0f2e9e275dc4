//! Primitive operations on the hosts of a running lab (`ip`, `sysctl`, `nft`, `wg` inside
//! its namespaces), shared by setup and the faults. Nothing here touches the root namespace.

use std::time::Duration;

use ipnet::IpNet;
use serde_json::Value;

use crate::cmd::{Cmd, CmdOutput};
use crate::error::{LabError, Result};
use crate::scenario::{NftTableSpec, RouteSpec, Scenario};
use crate::state::LabState;

/// A running lab's state and scenario, with helpers that act on its hosts.
pub(crate) struct Ops<'a> {
    pub(crate) state: &'a LabState,
    pub(crate) scenario: &'a Scenario,
}

impl<'a> Ops<'a> {
    pub(crate) fn new(state: &'a LabState, scenario: &'a Scenario) -> Ops<'a> {
        Ops { state, scenario }
    }

    /// The namespace of a host, or an error listing the hosts.
    pub(crate) fn netns(&self, host: &str) -> Result<&'a str> {
        self.state.netns(host).ok_or_else(|| {
            let hosts: Vec<&str> = self.state.hosts.iter().map(|h| h.name.as_str()).collect();
            LabError::Lab(format!("lab {} has no host {host:?} (hosts: {})", self.state.id, hosts.join(", ")))
        })
    }

    /// `ip -n NETNS args...`, requiring success.
    pub(crate) fn ip(&self, host: &str, args: &[&str]) -> Result<String> {
        let ns = self.netns(host)?;
        let mut all = vec!["ip", "-n", ns];
        all.extend_from_slice(args);
        Cmd::new(all).run()
    }

    /// `ip -n NETNS -j args...` parsed as JSON.
    pub(crate) fn ip_json(&self, host: &str, args: &[&str]) -> Result<Value> {
        let ns = self.netns(host)?;
        let mut all = vec!["ip", "-n", ns, "-j"];
        all.extend_from_slice(args);
        let cmd = Cmd::new(all);
        let text = cmd.run()?;
        if text.trim().is_empty() {
            return Ok(Value::Array(Vec::new()));
        }
        serde_json::from_str(&text).map_err(|e| LabError::Command {
            cmd: cmd.display(),
            status: "unreadable JSON".into(),
            stderr: e.to_string(),
        })
    }

    /// A command inside the host's namespace, requiring success.
    pub(crate) fn exec(&self, host: &str, args: &[&str]) -> Result<String> {
        Cmd::in_netns(self.netns(host)?, args).run()
    }

    /// A command inside the host's namespace with a deadline, whatever its status.
    pub(crate) fn exec_output(&self, host: &str, args: &[&str], timeout: Duration) -> Result<CmdOutput> {
        Cmd::in_netns(self.netns(host)?, args).timeout(timeout).output()
    }

    /// An interface's MTU.
    pub(crate) fn link_mtu(&self, host: &str, dev: &str) -> Result<u32> {
        let v = self.ip_json(host, &["link", "show", "dev", dev])?;
        v.get(0)
            .and_then(|l| l.get("mtu"))
            .and_then(Value::as_u64)
            .and_then(|m| u32::try_from(m).ok())
            .ok_or_else(|| LabError::Lab(format!("{host}: `ip link show dev {dev}` shows no MTU")))
    }

    pub(crate) fn set_mtu(&self, host: &str, dev: &str, mtu: u32) -> Result<()> {
        self.ip(host, &["link", "set", "dev", dev, "mtu", &mtu.to_string()]).map(drop)
    }

    /// The value of a sysctl in the host's namespace.
    pub(crate) fn sysctl_get(&self, host: &str, key: &str) -> Result<String> {
        Ok(self.exec(host, &["sysctl", "-n", key])?.trim().to_string())
    }

    /// Sets a sysctl in the host's namespace; only `net.*` keys (per namespace) are allowed.
    pub(crate) fn sysctl_set(&self, host: &str, key: &str, value: &str) -> Result<()> {
        if !key.starts_with("net.") {
            return Err(LabError::Lab(format!("sysctl {key}: only net.* keys belong to a network namespace")));
        }
        self.exec(host, &["sysctl", "-q", "-w", &format!("{key}={value}")]).map(drop)
    }

    /// Loads an nftables script in the host's namespace.
    pub(crate) fn nft_apply(&self, host: &str, script: &str) -> Result<()> {
        Cmd::in_netns(self.netns(host)?, ["nft", "-f", "-"]).stdin(script.as_bytes().to_vec()).run().map(drop)
    }

    pub(crate) fn nft_has_table(&self, host: &str, family: &str, name: &str) -> Result<bool> {
        let out = Cmd::in_netns(self.netns(host)?, ["nft", "list", "table", family, name]).output()?;
        Ok(out.success())
    }

    /// Deletes a table if it exists.
    pub(crate) fn nft_delete_table(&self, host: &str, family: &str, name: &str) -> Result<()> {
        if self.nft_has_table(host, family, name)? {
            self.exec(host, &["nft", "delete", "table", family, name])?;
        }
        Ok(())
    }

    /// `nft -j list table` as JSON.
    pub(crate) fn nft_table_json(&self, host: &str, family: &str, name: &str) -> Result<Value> {
        let text = self.exec(host, &["nft", "-j", "list", "table", family, name])?;
        serde_json::from_str(&text).map_err(|e| LabError::Lab(format!("{host}: nft -j output unreadable: {e}")))
    }

    /// The script that creates a scenario table (placeholders replaced by real, quoted
    /// interface names).
    pub(crate) fn scenario_table_script(&self, host: &str, t: &NftTableSpec) -> Result<String> {
        let (family, name) = t
            .family_and_name()
            .ok_or_else(|| LabError::Lab(format!("{host}: nftables table {:?} is not `FAMILY NAME`", t.table)))?;
        let mut body = t.rules.clone();
        for p in crate::scenario::placeholders(&t.rules) {
            let real = self.state.ifname(host, &p);
            body = body.replace(&format!("${{{p}}}"), &format!("\"{real}\""));
        }
        Ok(format!("table {family} {name}\ndelete table {family} {name}\ntable {family} {name} {{\n{body}\n}}\n"))
    }

    /// The `ip route replace ...` arguments of a scenario route (real interface names).
    pub(crate) fn route_args(&self, host: &str, r: &RouteSpec) -> Result<Vec<String>> {
        let dst =
            r.destination().ok_or_else(|| LabError::Lab(format!("{host}: route to {:?} is not a prefix", r.to)))?;
        let mut args = vec!["route".to_string(), "replace".to_string(), dst.to_string()];
        if let Some(v) = r.via {
            args.extend(["via".to_string(), v.to_string()]);
        }
        if let Some(d) = &r.dev {
            args.extend(["dev".to_string(), self.state.ifname(host, d)]);
        }
        if r.onlink {
            args.push("onlink".to_string());
        }
        if let Some(m) = r.metric {
            args.extend(["metric".to_string(), m.to_string()]);
        }
        if let Some(s) = r.src {
            args.extend(["src".to_string(), s.to_string()]);
        }
        if let Some(m) = r.mtu {
            args.extend(["mtu".to_string(), m.to_string()]);
        }
        Ok(args)
    }

    pub(crate) fn apply_route(&self, host: &str, r: &RouteSpec) -> Result<()> {
        let args = self.route_args(host, r)?;
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ip(host, &refs).map(drop)
    }

    /// The main-table routes to exactly `dst`.
    pub(crate) fn routes_to(&self, host: &str, dst: &IpNet) -> Result<Vec<Value>> {
        let v = self.ip_json(host, &["route", "show", "exact", &dst.to_string()])?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// `wg show IFNAME allowed-ips` as (public key, prefixes).
    pub(crate) fn wg_allowed_ips(&self, host: &str, ifname: &str) -> Result<Vec<(String, Vec<String>)>> {
        let text = self.exec(host, &["wg", "show", ifname, "allowed-ips"])?;
        Ok(text
            .lines()
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                let key = parts.next()?.to_string();
                let ips: Vec<String> = parts.filter(|p| *p != "(none)").map(str::to_string).collect();
                Some((key, ips))
            })
            .collect())
    }

    /// One per-peer column of `wg show IFNAME <what>` (endpoints, persistent-keepalive,
    /// latest-handshakes) for `peer`.
    pub(crate) fn wg_peer_field(&self, host: &str, ifname: &str, what: &str, peer: &str) -> Result<Option<String>> {
        let text = self.exec(host, &["wg", "show", ifname, what])?;
        Ok(text.lines().find_map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next()? == peer).then(|| parts.next().unwrap_or("").to_string())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario;
    use crate::state::{HostState, WgState, STATE_FORMAT};

    #[test]
    fn route_args_and_table_scripts_use_real_names() {
        let loaded = scenario::builtin("k8s-wireguard-site").expect("shipped").expect("valid");
        let state = LabState {
            format: STATE_FORMAT.into(),
            id: "nsl-abcdef".into(),
            scenario: "k8s-wireguard-site".into(),
            scenario_source: loaded.source.clone(),
            scenario_text: loaded.text.clone(),
            created_at: 0,
            owner: None,
            work_dir: "/nonexistent".into(),
            echo_command: Vec::new(),
            hosts: vec![HostState {
                name: "gw".into(),
                netns: "nsl-abcdef-gw".into(),
                role: None,
                node: None,
                pod: None,
            }],
            wireguard: vec![WgState {
                host: "gw".into(),
                name: "wg0".into(),
                ifname: "nsl-abcdef-w0".into(),
                public_key: "x".into(),
                listen_port: 51820,
            }],
            processes: Vec::new(),
            faults: Vec::new(),
            ready: true,
        };
        let ops = Ops::new(&state, &loaded.scenario);
        let dst: IpNet = "10.20.0.0/16".parse().expect("net");
        let r = loaded.scenario.route("gw", &dst).expect("gw routes the site");
        assert_eq!(
            ops.route_args("gw", r).expect("args"),
            ["route", "replace", "10.20.0.0/16", "dev", "nsl-abcdef-w0"]
        );
        let t = NftTableSpec { table: "inet t".into(), rules: "chain c { oifname ${wg0} accept }".into() };
        let script = ops.scenario_table_script("gw", &t).expect("script");
        assert!(script.contains("oifname \"nsl-abcdef-w0\" accept"), "{script}");
        assert!(script.starts_with("table inet t\ndelete table inet t\n"), "{script}");
        assert!(ops.netns("nope").is_err());
    }
}
