//! Building a lab from a scenario, step by step: namespaces, sysctls, links, addresses,
//! WireGuard, routes, nftables, the echo services. Every process started is recorded in the
//! state file at once, so a crash at any point leaves nothing the leftover-finder cannot see.

use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{LabError, Result};
use crate::names;
use crate::ops::Ops;
use crate::scenario::{Link, Scenario, Service};
use crate::services;
use crate::state::{LabState, StateDir, WgState};

/// Stops between steps when Ctrl-C / SIGTERM was seen.
fn checkpoint(cancel: Option<&AtomicBool>) -> Result<()> {
    if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
        return Err(LabError::Interrupted);
    }
    Ok(())
}

/// Whether a sysctl names a specific interface (`net.ipv4.conf.eth0.rp_filter`): those are
/// set once the interfaces exist; `all`/`default` and global keys are set first.
fn interface_sysctl(key: &str) -> Option<&str> {
    let parts: Vec<&str> = key.splitn(5, '.').collect();
    match parts.as_slice() {
        ["net", "ipv4" | "ipv6", "conf" | "neigh", dev, _] if *dev != "all" && *dev != "default" => Some(dev),
        _ => None,
    }
}

/// Builds every part of the lab but the WireGuard peers (see `start_tunnels`). `state` lists the hosts already (saved before the first
/// namespace exists); processes are appended to it and saved as they start.
pub(crate) fn build(
    state: &mut LabState,
    scenario: &Scenario,
    dir: &StateDir,
    children: &mut Vec<Child>,
    cancel: Option<&AtomicBool>,
) -> Result<()> {
    let log_dir = state.work_dir.join("logs");
    let key_dir = state.work_dir.join("keys");

    // Namespaces.
    for h in &state.hosts {
        checkpoint(cancel)?;
        crate::cmd::Cmd::new(["ip", "netns", "add", &h.netns]).run()?;
        crate::cmd::Cmd::new(["ip", "-n", &h.netns, "link", "set", "lo", "up"]).run()?;
    }
    let ops = Ops::new(state, scenario);

    // Global sysctls (forwarding, conf.all / conf.default) before any interface exists.
    for (host, h) in &scenario.hosts {
        for (k, v) in &h.value.sysctls {
            if interface_sysctl(k).is_none() {
                ops.sysctl_set(host, k, &v.0)?;
            }
        }
    }
    checkpoint(cancel)?;

    // Bridges, then veths (which may join them), then VXLAN (over a veth).
    for l in &scenario.links {
        if let Link::Bridge(b) = &l.value {
            ops.ip(&b.host, &["link", "add", &b.name, "type", "bridge"])?;
        }
    }
    for l in &scenario.links {
        checkpoint(cancel)?;
        let Link::Veth(v) = &l.value else { continue };
        let mut args = vec!["link", "add", v.a.name.as_str(), "type", "veth", "peer", "name", v.b.name.as_str()];
        let b_ns = ops.netns(&v.b.host)?;
        if v.a.host != v.b.host {
            // Both ends are made directly inside their namespaces: no name ever appears
            // in the root namespace.
            args.extend(["netns", b_ns]);
        }
        ops.ip(&v.a.host, &args)?;
        for end in [&v.a, &v.b] {
            if let Some(m) = end.mtu {
                ops.set_mtu(&end.host, &end.name, m)?;
            }
            if let Some(master) = &end.master {
                ops.ip(&end.host, &["link", "set", "dev", &end.name, "master", master])?;
            }
        }
    }
    for l in &scenario.links {
        let Link::Vxlan(x) = &l.value else { continue };
        let (vni, port, local) = (x.vni.to_string(), x.port.to_string(), x.local.to_string());
        ops.ip(
            &x.host,
            &[
                "link",
                "add",
                &x.name,
                "type",
                "vxlan",
                "id",
                &vni,
                "dev",
                &x.dev,
                "dstport",
                &port,
                "local",
                &local,
                "nolearning",
            ],
        )?;
        if let Some(m) = x.mtu {
            ops.set_mtu(&x.host, &x.name, m)?;
        }
        for r in &x.remotes {
            // Head-end replication: broadcast and unknown unicast go to every remote.
            crate::cmd::Cmd::new([
                "bridge",
                "-n",
                ops.netns(&x.host)?,
                "fdb",
                "append",
                "00:00:00:00:00:00",
                "dev",
                &x.name,
                "dst",
                &r.to_string(),
            ])
            .run()?;
        }
    }
    checkpoint(cancel)?;
    // Bridge MTUs once their ports are in (a bridge follows its smallest port otherwise),
    // then addresses, then everything up.
    for l in &scenario.links {
        if let Link::Bridge(b) = &l.value {
            if let Some(m) = b.mtu {
                ops.set_mtu(&b.host, &b.name, m)?;
            }
        }
    }
    let mut up: Vec<(&str, &str)> = Vec::new();
    for l in &scenario.links {
        let items: Vec<(&str, &str, &[ipnet::IpNet])> = match &l.value {
            Link::Bridge(b) => vec![(&b.host, &b.name, &b.addresses)],
            Link::Veth(v) => vec![(&v.a.host, &v.a.name, &v.a.addresses), (&v.b.host, &v.b.name, &v.b.addresses)],
            Link::Vxlan(x) => vec![(&x.host, &x.name, &x.addresses)],
        };
        for (host, name, addrs) in items {
            for a in addrs {
                ops.ip(host, &["addr", "add", &a.to_string(), "dev", name])?;
            }
            up.push((host, name));
        }
    }
    for (host, name) in up {
        ops.ip(host, &["link", "set", "dev", name, "up"])?;
    }
    checkpoint(cancel)?;

    // WireGuard: names and keys for all interfaces first (peers need each other's public
    // keys), then the daemons, then their configuration.
    let wgs = scenario.wireguard_services();
    for (i, (host, w)) in wgs.iter().enumerate() {
        let ifname = names::wg_ifname(&state.id, i);
        let (_key_file, public_key) = services::wg_keys(&key_dir, &ifname)?;
        state.wireguard.push(WgState {
            host: host.to_string(),
            name: w.name.clone(),
            ifname,
            public_key,
            listen_port: w.listen_port,
        });
    }
    dir.save(state)?;
    for i in 0..wgs.len() {
        checkpoint(cancel)?;
        let Some(ws) = state.wireguard.get(i).cloned() else { continue };
        let started = services::start_wireguard_go(&Ops::new(state, scenario), &ws.host, &ws.ifname, &log_dir);
        let started = started?;
        state.processes.push(started.record);
        children.push(started.child);
        dir.save(state)?;
    }
    let ops = Ops::new(state, scenario);
    for (i, (host, w)) in wgs.iter().enumerate() {
        let Some(ws) = state.wireguard.get(i) else { continue };
        services::prepare_wireguard_link(&ops, host, w, ws)?;
    }
    checkpoint(cancel)?;

    // Routes, nftables, then the sysctls that name interfaces (WireGuard ones included).
    for (host, h) in &scenario.hosts {
        for r in &h.value.routes {
            ops.apply_route(host, &r.value)?;
        }
        for t in &h.value.nftables {
            let script = ops.scenario_table_script(host, &t.value)?;
            ops.nft_apply(host, &script).map_err(|e| {
                LabError::Lab(format!(
                    "{host}: nftables table {} (scenario line {}): {e}",
                    t.value.table,
                    t.referenced.line()
                ))
            })?;
        }
        for (k, v) in &h.value.sysctls {
            if let Some(dev) = interface_sysctl(k) {
                let real = state.ifname(host, dev);
                ops.sysctl_set(host, &k.replacen(&format!(".{dev}."), &format!(".{real}."), 1), &v.0)?;
            }
        }
    }
    checkpoint(cancel)?;

    // The echo services.
    for (host, h) in &scenario.hosts {
        for s in &h.value.services {
            if let Service::Echo(e) = &s.value {
                checkpoint(cancel)?;
                let started = services::start_echo(&Ops::new(state, scenario), host, e, &log_dir)?;
                state.processes.push(started.record);
                children.push(started.child);
                dir.save(state)?;
            }
        }
    }
    // strongSwan last: routes and firewalls are in place, so IKE goes out at once.
    crate::strongswan::start_all(state, scenario, dir, children, cancel)?;
    // dnsmasq resolvers (and the pods' resolv.conf files).
    crate::dnsmasq::start_services(state, scenario, dir, children, cancel)?;
    Ok(())
}

/// Gives every WireGuard interface its key and peers (the last step of setup: the underlay
/// routes exist, so the first handshake goes out at once instead of after a 5 s retry), then
/// waits for the handshakes when `wait` is set.
pub(crate) fn start_tunnels(state: &LabState, scenario: &Scenario, wait: bool) -> Result<()> {
    let ops = Ops::new(state, scenario);
    let key_dir = state.work_dir.join("keys");
    for (i, (host, w)) in scenario.wireguard_services().iter().enumerate() {
        let Some(ws) = state.wireguard.get(i) else { continue };
        services::configure_wireguard(&ops, host, w, ws, &key_dir.join(format!("{}.key", ws.ifname)))?;
    }
    if wait {
        // A handshake that does not complete is not an error (a scenario may be broken on
        // purpose); the wait only makes a healthy lab usable the moment `up` returns.
        let _pending = services::wait_handshakes(&ops, HANDSHAKE_WAIT);
    }
    Ok(())
}

/// How long `up` waits for WireGuard handshakes.
const HANDSHAKE_WAIT: std::time::Duration = std::time::Duration::from_secs(8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_sysctls_are_recognised() {
        assert_eq!(interface_sysctl("net.ipv4.conf.wg0.rp_filter"), Some("wg0"));
        assert_eq!(interface_sysctl("net.ipv6.conf.eth0.disable_ipv6"), Some("eth0"));
        assert_eq!(interface_sysctl("net.ipv4.conf.all.rp_filter"), None);
        assert_eq!(interface_sysctl("net.ipv4.conf.default.rp_filter"), None);
        assert_eq!(interface_sysctl("net.ipv4.ip_forward"), None);
    }
}
