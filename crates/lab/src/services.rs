//! Starting the services of a scenario inside lab namespaces: WireGuard (wireguard-go + wg)
//! and the echo service. A new service kind (strongSwan, dnsmasq) adds its starter here.
//!
//! strongSwan, for whoever adds it: one charon per namespace in its own mount namespace
//! (`ip netns exec NS unshare -m --propagation private sh -c 'mount --bind DIR /run && exec
//! charon'` with STRONGSWAN_CONF and the kernel-libipsec plugin, as
//! tests/fixtures/make-firewall-ipsec-fixtures.sh does); record its pid like the others and
//! put its folders under the lab's work dir, so teardown needs nothing new.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::cmd::Cmd;
use crate::error::{LabError, Result};
use crate::ops::Ops;
use crate::procs::ProcRef;
use crate::scenario::{parse_endpoint, EchoSpec, WireguardSpec};
use crate::state::{ProcState, WgState};

/// Where wireguard-go puts its control sockets (one folder for the whole machine).
pub const WG_SOCKET_DIR: &str = "/var/run/wireguard";
/// How long a daemon may take to come up.
const START_WAIT: Duration = Duration::from_secs(10);

/// A process that was started: the handle (to reap it) and its record.
pub(crate) struct Started {
    pub(crate) child: Child,
    pub(crate) record: ProcState,
}

/// The control socket of a wireguard-go interface.
pub(crate) fn wg_socket(ifname: &str) -> PathBuf {
    Path::new(WG_SOCKET_DIR).join(format!("{ifname}.sock"))
}

/// A fresh key pair: the private key goes to a 0600 file in `key_dir` (and nowhere else),
/// the public key is returned.
pub(crate) fn wg_keys(key_dir: &Path, ifname: &str) -> Result<(PathBuf, String)> {
    fs::create_dir_all(key_dir).map_err(|e| LabError::io(format!("cannot create {}", key_dir.display()), e))?;
    let private = Cmd::new(["wg", "genkey"]).secret_output().run()?;
    let private = private.trim();
    let path = key_dir.join(format!("{ifname}.key"));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| LabError::io(format!("cannot create {}", path.display()), e))?;
    f.write_all(private.as_bytes()).map_err(|e| LabError::io(format!("cannot write {}", path.display()), e))?;
    let public = Cmd::new(["wg", "pubkey"]).stdin(private.as_bytes().to_vec()).secret_output().run()?;
    Ok((path, public.trim().to_string()))
}

fn log_file(log_dir: &Path, name: &str) -> Result<(File, File, PathBuf)> {
    fs::create_dir_all(log_dir).map_err(|e| LabError::io(format!("cannot create {}", log_dir.display()), e))?;
    let path = log_dir.join(format!("{name}.log"));
    let out = File::create(&path).map_err(|e| LabError::io(format!("cannot create {}", path.display()), e))?;
    let err = out.try_clone().map_err(|e| LabError::io(format!("cannot open {}", path.display()), e))?;
    Ok((out, err, path))
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Spawns `args` inside namespace `ns` in its own process group (a Ctrl-C at the terminal
/// must not kill daemons behind the lab's back: teardown stops them in order).
fn spawn_in(ns: &str, args: &[&str], envs: &[(&str, &str)], log: &Path, name: &str) -> Result<(Child, PathBuf)> {
    let (out, err, path) = log_file(log, name)?;
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(args).stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
    for (k, v) in envs {
        c.env(k, v);
    }
    let display = format!("ip netns exec {ns} {}", args.join(" "));
    let child = c.spawn().map_err(|source| LabError::Spawn { cmd: display, source })?;
    Ok((child, path))
}

fn record(child: &Child, host: &str, what: String) -> Result<ProcState> {
    let process = ProcRef::of(child.id())
        .ok_or_else(|| LabError::Lab(format!("{what} on {host} exited right after it started")))?;
    Ok(ProcState { host: host.to_string(), what, process })
}

/// Waits (bounded) until `ready()` holds; fails early when the child exits.
fn wait_ready(child: &mut Child, what: &str, log: &Path, mut ready: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + START_WAIT;
    loop {
        if ready() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(LabError::Lab(format!("{what} exited ({status}) while starting: {}", log_tail(log))));
        }
        if Instant::now() >= deadline {
            return Err(LabError::Lab(format!(
                "{what} did not come up within {} s: {}",
                START_WAIT.as_secs(),
                log_tail(log)
            )));
        }
        thread::sleep(Duration::from_millis(25));
    }
}

/// Starts wireguard-go for one interface and waits for its control socket.
pub(crate) fn start_wireguard_go(ops: &Ops<'_>, host: &str, ifname: &str, log_dir: &Path) -> Result<Started> {
    let ns = ops.netns(host)?;
    let what = format!("wireguard-go {ifname}");
    let (mut child, log) = spawn_in(
        ns,
        &["wireguard-go", ifname],
        // Foreground: the pid we get is the daemon's, so it can be stopped by pid.
        &[("WG_PROCESS_FOREGROUND", "1"), ("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD", "1")],
        log_dir,
        &format!("{host}-{ifname}"),
    )?;
    let record = match record(&child, host, what.clone()) {
        Ok(r) => r,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let sock = wg_socket(ifname);
    let mut started = Started { child, record };
    wait_ready(&mut started.child, &what, &log, || sock.exists())?;
    Ok(started)
}

/// Brings a started WireGuard interface up with its MTU and address (no keys yet: routes
/// through it can be added now, and no handshake starts before every peer exists).
pub(crate) fn prepare_wireguard_link(ops: &Ops<'_>, host: &str, spec: &WireguardSpec, ws: &WgState) -> Result<()> {
    let ifname = ws.ifname.as_str();
    ops.set_mtu(host, ifname, spec.mtu.unwrap_or(1420))?;
    ops.ip(host, &["addr", "add", &spec.address.to_string(), "dev", ifname])?;
    ops.ip(host, &["link", "set", "dev", ifname, "up"]).map(drop)
}

/// Gives a WireGuard interface its private key, listen port and peers.
pub(crate) fn configure_wireguard(
    ops: &Ops<'_>,
    host: &str,
    spec: &WireguardSpec,
    ws: &WgState,
    key_file: &Path,
) -> Result<()> {
    let ifname = ws.ifname.as_str();
    let mut args: Vec<String> = vec![
        "wg".into(),
        "set".into(),
        ifname.into(),
        "private-key".into(),
        key_file.display().to_string(),
        "listen-port".into(),
        spec.listen_port.to_string(),
    ];
    for p in &spec.peers {
        let peer_iface = match &p.interface {
            Some(i) => Some(i.as_str()),
            None => ops.state.wireguard.iter().find(|w| w.host == p.host).map(|w| w.name.as_str()),
        };
        let peer = peer_iface
            .and_then(|i| ops.state.wg(&p.host, i))
            .ok_or_else(|| LabError::Lab(format!("{host}: WireGuard peer on {} has no key yet", p.host)))?;
        args.extend(["peer".into(), peer.public_key.clone()]);
        let allowed = p.allowed_ips.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",");
        args.extend(["allowed-ips".into(), allowed]);
        if let Some(e) = &p.endpoint {
            let (ip, port) = parse_endpoint(e).ok_or_else(|| LabError::Lab(format!("{host}: endpoint {e:?}")))?;
            let port = port.unwrap_or(peer.listen_port);
            let ep = if ip.is_ipv6() { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") };
            args.extend(["endpoint".into(), ep]);
        }
        if let Some(k) = p.keepalive.filter(|k| *k > 0) {
            args.extend(["persistent-keepalive".into(), k.to_string()]);
        }
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ops.exec(host, &refs).map(drop)
}

/// Waits (at most `limit`) until every WireGuard peer with an endpoint and a keepalive (the
/// ones that start a handshake by themselves) has completed a handshake. Returns the peers that did not, as `host/ifname`; not an error, because a
/// scenario may be broken on purpose.
pub(crate) fn wait_handshakes(ops: &Ops<'_>, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let mut pending = Vec::new();
        for w in &ops.state.wireguard {
            let Ok(eps) = ops.exec(&w.host, &["wg", "show", &w.ifname, "endpoints"]) else { continue };
            let Ok(hs) = ops.exec(&w.host, &["wg", "show", &w.ifname, "latest-handshakes"]) else { continue };
            let Ok(ka) = ops.exec(&w.host, &["wg", "show", &w.ifname, "persistent-keepalive"]) else { continue };
            for line in eps.lines() {
                let mut it = line.split_whitespace();
                let (Some(key), Some(ep)) = (it.next(), it.next()) else { continue };
                let keepalive = ka.lines().any(|l| {
                    let mut f = l.split_whitespace();
                    f.next() == Some(key) && f.next().is_some_and(|v| v != "off")
                });
                if ep == "(none)" || !keepalive {
                    continue;
                }
                let done = hs.lines().any(|l| {
                    let mut f = l.split_whitespace();
                    f.next() == Some(key) && f.next().and_then(|t| t.parse::<u64>().ok()).is_some_and(|t| t > 0)
                });
                if !done {
                    pending.push(format!("{}/{}", w.host, w.ifname));
                }
            }
        }
        if pending.is_empty() || Instant::now() >= deadline {
            return pending;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the echo service on a host and waits until its ports listen.
pub(crate) fn start_echo(ops: &Ops<'_>, host: &str, spec: &EchoSpec, log_dir: &Path) -> Result<Started> {
    let ns = ops.netns(host)?;
    let mut args: Vec<String> = ops.state.echo_command.clone();
    if args.is_empty() {
        return Err(LabError::Lab("no echo program configured".into()));
    }
    args.push("serve".into());
    let mut want: Vec<(char, u16)> = Vec::new();
    for (flag, proto, port) in [("--tcp", 't', spec.tcp), ("--udp", 'u', spec.udp), ("--http", 't', spec.http)] {
        if let Some(p) = port {
            args.extend([flag.to_string(), p.to_string()]);
            want.push((proto, p));
        }
    }
    args.extend(["--name".into(), host.into(), "--lab".into(), ops.state.id.clone()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let what = "echo".to_string();
    let (mut child, log) = spawn_in(ns, &refs, &[], log_dir, &format!("{host}-echo"))?;
    let record = match record(&child, host, what) {
        Ok(r) => r,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let mut started = Started { record, child };
    wait_ready(&mut started.child, &format!("echo on {host}"), &log, || listening(ns, &want))?;
    Ok(started)
}

/// Whether every (protocol, port) listens in the namespace (`ss`).
fn listening(ns: &str, want: &[(char, u16)]) -> bool {
    let Ok(out) = Cmd::in_netns(ns, ["ss", "-H", "-l", "-n", "-t", "-u"]).timeout(Duration::from_secs(5)).run() else {
        return false;
    };
    want.iter().all(|(proto, port)| {
        let p = if *proto == 't' { "tcp" } else { "udp" };
        out.lines()
            .any(|l| l.starts_with(p) && l.split_whitespace().nth(4).is_some_and(|a| a.ends_with(&format!(":{port}"))))
    })
}
