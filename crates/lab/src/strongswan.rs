//! strongSwan site-to-site IPsec on lab hosts: one `charon` per namespace, each in its own
//! mount namespace with a private `/run` (pid file, vici socket), configured with swanctl.
//!
//! The kernel here has no ESP, so the data plane is `kernel-libipsec` (a TUN device `ipsec0`
//! per namespace, ESP always in UDP). Pre-shared keys are made per lab run (32 random bytes)
//! and only ever written to 0600 files in the lab's private work folder.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde::Deserialize;

use crate::cmd::Cmd;
use crate::error::{LabError, Result};
use crate::procs::{self, ProcRef};
use crate::scenario::{self, Scenario, Service};
use crate::state::{LabState, ProcState, StateDir};

/// The IKE daemon (Debian's strongswan-charon).
pub const CHARON: &str = "/usr/lib/ipsec/charon";
/// The connection (IKE_SA config) every strongswan service defines.
pub const IKE_NAME: &str = "site";
/// Its CHILD_SA.
pub const CHILD_NAME: &str = "net";
/// How long charon may take to open its vici socket.
const START_WAIT: Duration = Duration::from_secs(10);
/// Deadline of one swanctl command.
const SWANCTL_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `up` (and a clear) waits for the tunnel to be established.
pub const ESTABLISH_WAIT: Duration = Duration::from_secs(15);
/// Only these plugins are loaded (no /etc/strongswan.d lookup): crypto for PSK IKEv2,
/// kernel-libipsec for the data plane, vici for swanctl.
const PLUGINS: &str = "random drbg nonce aes sha1 sha2 hmac gmp kdf kernel-libipsec kernel-netlink socket-default vici";

fn default_proposals() -> String {
    "aes128-sha256-modp2048".into()
}

/// A strongSwan IKEv2 PSK site-to-site tunnel on a host (connection `site`, child `net`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrongswanSpec {
    /// The local underlay address IKE uses.
    pub local_addr: String,
    /// The peer's underlay address; left out = `%any` (a responder whose peer is behind NAT).
    #[serde(default)]
    pub remote_addr: Option<String>,
    /// IKE identities (FQDN-like: letters, digits, '.', '-', '@').
    pub local_id: String,
    pub remote_id: String,
    pub local_ts: Vec<String>,
    pub remote_ts: Vec<String>,
    /// IKE proposal (`aes128-sha256-modp2048` by default).
    #[serde(default = "default_proposals")]
    pub proposals: String,
    /// ESP proposal (`aes128-sha256-modp2048` by default).
    #[serde(default = "default_proposals")]
    pub esp_proposals: String,
    /// Whether this side starts the tunnel (at `up`, and after a fault is cleared).
    #[serde(default)]
    pub initiate: bool,
}

fn valid_token(s: &str, extra: &[u8]) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// Problems of one strongswan service (they become scenario errors at its line).
pub(crate) fn check(s: &StrongswanSpec) -> Vec<String> {
    let mut errs = Vec::new();
    for (what, a) in [("local_addr", Some(&s.local_addr)), ("remote_addr", s.remote_addr.as_ref())] {
        let Some(a) = a else { continue };
        match a.parse::<IpAddr>() {
            Ok(ip) if scenario::ip_in_lab_ranges(ip) => {}
            Ok(ip) => errs.push(format!("strongswan {what}: {ip} is outside the lab ranges")),
            Err(_) => errs.push(format!("strongswan {what}: {a:?} is not an address")),
        }
    }
    for (what, id) in [("local_id", &s.local_id), ("remote_id", &s.remote_id)] {
        if !valid_token(id, b".-@") {
            errs.push(format!("strongswan {what} {id:?}: letters, digits, '.', '-', '@' only"));
        }
    }
    for (what, p) in [("proposals", &s.proposals), ("esp_proposals", &s.esp_proposals)] {
        if !valid_token(p, b"-,") {
            errs.push(format!("strongswan {what} {p:?}: letters, digits, '-', ',' only"));
        }
    }
    for (what, list) in [("local_ts", &s.local_ts), ("remote_ts", &s.remote_ts)] {
        if list.is_empty() {
            errs.push(format!("strongswan {what} is empty"));
        }
        if let Err(e) = parse_ts(list) {
            errs.push(format!("strongswan {what}: {e}"));
        }
    }
    errs
}

/// Traffic selectors as prefixes inside the lab ranges.
pub(crate) fn parse_ts<S: AsRef<str>>(list: &[S]) -> std::result::Result<Vec<IpNet>, String> {
    list.iter()
        .map(|t| {
            let t = t.as_ref().trim();
            let n: IpNet = t.parse().map_err(|_| format!("{t:?} is not a prefix (10.10.0.0/16)"))?;
            if scenario::in_lab_ranges(&n) {
                Ok(n.trunc())
            } else {
                Err(format!("{n} is outside the lab ranges"))
            }
        })
        .collect()
}

/// Every strongswan service of a scenario as (host, spec).
pub fn services(sc: &Scenario) -> Vec<(&str, &StrongswanSpec)> {
    sc.hosts
        .iter()
        .flat_map(|(h, spec)| {
            spec.value.services.iter().filter_map(move |s| match &s.value {
                Service::Strongswan(x) => Some((h.as_str(), x)),
                _ => None,
            })
        })
        .collect()
}

/// The strongswan service of one host.
pub(crate) fn service<'a>(sc: &'a Scenario, host: &str) -> Option<&'a StrongswanSpec> {
    services(sc).into_iter().find(|(h, _)| *h == host).map(|(_, s)| s)
}

/// The private folder of a host's charon (configs, log, its `/run`).
pub fn host_dir(state: &LabState, host: &str) -> PathBuf {
    state.work_dir.join("ipsec").join(host)
}

/// The vici URI swanctl uses to talk to a host's charon.
pub fn vici_uri(state: &LabState, host: &str) -> String {
    format!("unix://{}", host_dir(state, host).join("run").join("charon.vici").display())
}

/// What a fault changes in a host's swanctl.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Overrides {
    /// IKE and ESP proposals.
    pub(crate) proposals: Option<String>,
    /// The PSK file name (in `keys/`) instead of the lab's shared one.
    pub(crate) psk: Option<String>,
    pub(crate) remote_ts: Option<Vec<IpNet>>,
}

/// The lab's PSK named `name` (made on first use: 32 random bytes, base64, file 0600).
/// The value is returned for writing swanctl.conf only; it is never logged or stored in
/// the state.
fn psk(state: &LabState, name: &str) -> Result<String> {
    let dir = state.work_dir.join("keys");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| LabError::io(format!("cannot create {}", dir.display()), e))?;
    let path = dir.join(format!("{name}.psk"));
    if let Ok(text) = fs::read_to_string(&path) {
        return Ok(text.trim().to_string());
    }
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)
        .map_err(|e| LabError::io("cannot read random bytes", std::io::Error::other(e.to_string())))?;
    let value = format!("0s{}", base64(&b));
    write_private(&path, &value)?;
    Ok(value)
}

/// Writes a 0600 file (replacing it).
fn write_private(path: &Path, text: &str) -> Result<()> {
    let _ = fs::remove_file(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| LabError::io(format!("cannot create {}", path.display()), e))?;
    f.write_all(text.as_bytes()).map_err(|e| LabError::io(format!("cannot write {}", path.display()), e))
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4usize {
            if i <= chunk.len() {
                let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(A.get(idx).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// swanctl.conf text of a service (with the secret: written 0600 only).
fn swanctl_conf(spec: &StrongswanSpec, o: &Overrides, secret: &str) -> Result<String> {
    let join = |v: &[IpNet]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",");
    let local_ts = parse_ts(&spec.local_ts).map_err(LabError::Lab)?;
    let remote_ts = match &o.remote_ts {
        Some(t) => t.clone(),
        None => parse_ts(&spec.remote_ts).map_err(LabError::Lab)?,
    };
    let ike = o.proposals.as_deref().unwrap_or(&spec.proposals);
    let esp = o.proposals.as_deref().unwrap_or(&spec.esp_proposals);
    let remote = spec.remote_addr.as_deref().unwrap_or("%any");
    Ok(format!(
        "connections {{\n  {IKE_NAME} {{\n    version = 2\n    local_addrs = {local}\n    remote_addrs = {remote}\n    \
         proposals = {ike}\n    local {{\n      auth = psk\n      id = {lid}\n    }}\n    remote {{\n      auth = psk\n      \
         id = {rid}\n    }}\n    children {{\n      {CHILD_NAME} {{\n        local_ts = {lts}\n        remote_ts = {rts}\n        \
         esp_proposals = {esp}\n      }}\n    }}\n  }}\n}}\nsecrets {{\n  ike-{IKE_NAME} {{\n    id-1 = {lid}\n    id-2 = {rid}\n    \
         secret = {secret}\n  }}\n}}\n",
        local = spec.local_addr,
        lid = spec.local_id,
        rid = spec.remote_id,
        lts = join(&local_ts),
        rts = join(&remote_ts),
    ))
}

/// Where a host's folder appears inside charon's mount namespace (its `/run` is the folder's
/// `run/`, which hides the real /run and with it the lab's work folder).
const INNER_DIR: &str = "/run/lab";

fn strongswan_conf(host: &str) -> String {
    format!(
        "charon {{\n  load_modular = no\n  load = {PLUGINS}\n  filelog {{\n    {host} {{\n      path = {log}\n      \
         default = 1\n      flush_line = yes\n    }}\n  }}\n  syslog {{\n    daemon {{\n      default = -1\n    }}\n  }}\n  \
         plugins {{\n    vici {{\n      socket = unix:///run/charon.vici\n    }}\n  }}\n}}\n",
        log = format_args!("{INNER_DIR}/charon.log")
    )
}

/// Writes a host's swanctl.conf (0600) with `o` applied, and loads it into its charon.
pub(crate) fn configure(state: &LabState, sc: &Scenario, host: &str, o: &Overrides) -> Result<()> {
    let spec = service(sc, host).ok_or_else(|| LabError::Lab(format!("{host} runs no strongswan service")))?;
    let secret = psk(state, o.psk.as_deref().unwrap_or("ipsec"))?;
    let text = swanctl_conf(spec, o, &secret)?;
    let path = host_dir(state, host).join("swanctl.conf");
    write_private(&path, &text)?;
    let conf = path.display().to_string();
    let uri = vici_uri(state, host);
    // The file holds the PSK: whatever swanctl prints about it stays out of error messages.
    Cmd::new(["swanctl", "--load-all", "--noprompt", "--file", &conf, "--uri", &uri])
        .timeout(SWANCTL_TIMEOUT)
        .secret_output()
        .run()
        .map(drop)
}

/// Runs swanctl against a host's charon (`--uri` added), requiring success; returns stdout.
pub fn swanctl(state: &LabState, host: &str, args: &[&str]) -> Result<String> {
    let uri = vici_uri(state, host);
    let mut all = vec!["swanctl"];
    all.extend_from_slice(args);
    all.extend(["--uri", &uri]);
    Cmd::new(all).timeout(SWANCTL_TIMEOUT).run()
}

/// The state of the host's IKE_SA `site` (`ESTABLISHED`, `CONNECTING`, ...), None without one.
pub fn ike_state(state: &LabState, host: &str) -> Result<Option<String>> {
    let out = swanctl(state, host, &["--list-sas", "--ike", IKE_NAME])?;
    Ok(parse_ike_state(&out))
}

/// The state word from `swanctl --list-sas` output: `site: #3, ESTABLISHED, IKEv2, ...`.
fn parse_ike_state(out: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let rest = l.strip_prefix(IKE_NAME)?.strip_prefix(": #")?;
        let state = rest.split(", ").nth(1)?;
        Some(state.trim().to_string())
    })
}

/// Whether the host has an installed CHILD_SA `net` (`net: #1, reqid 1, INSTALLED, ...`).
pub fn child_installed(state: &LabState, host: &str) -> Result<bool> {
    let out = swanctl(state, host, &["--list-sas", "--ike", IKE_NAME])?;
    Ok(out.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with(&format!("{CHILD_NAME}: #")) && l.contains(", INSTALLED,")
    }))
}

/// Whether every strongswan host has `site` established with `net` installed.
pub fn all_established(state: &LabState, sc: &Scenario) -> bool {
    let hosts = services(sc);
    !hosts.is_empty()
        && hosts.iter().all(|(h, _)| {
            ike_state(state, h).ok().flatten().as_deref() == Some("ESTABLISHED")
                && child_installed(state, h).unwrap_or(false)
        })
}

/// Tears every tunnel down (both sides) and starts it again from the initiators. With
/// `expect_up`, waits (bounded) until all sides are established and fails otherwise;
/// without, makes one short attempt whose failure is the expected outcome.
pub(crate) fn restart(state: &LabState, sc: &Scenario, expect_up: bool) -> Result<bool> {
    let hosts = services(sc);
    for (h, _) in &hosts {
        // No SA to terminate is fine (swanctl then fails); --force does not wait for the
        // peer's answer, which may never come.
        let _ = swanctl(state, h, &["--terminate", "--ike", IKE_NAME, "--force", "--timeout", "2"]);
    }
    initiate(state, sc, if expect_up { 10 } else { 3 });
    if !expect_up {
        return Ok(all_established(state, sc));
    }
    let deadline = Instant::now() + ESTABLISH_WAIT;
    loop {
        if all_established(state, sc) {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Err(LabError::Lab(format!(
                "the IPsec tunnel did not come up within {} s (charon logs in {})",
                ESTABLISH_WAIT.as_secs(),
                state.work_dir.join("ipsec").display()
            )));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// One initiation from every initiating side (`--timeout` seconds each); a failure is not an
/// error here (a fault may be in effect).
fn initiate(state: &LabState, sc: &Scenario, secs: u32) {
    let t = secs.to_string();
    for (h, s) in services(sc) {
        if s.initiate {
            let _ = swanctl(state, h, &["--initiate", "--child", CHILD_NAME, "--timeout", &t]);
        }
    }
}

fn log_file(path: &Path) -> Result<(File, File)> {
    let out = File::create(path).map_err(|e| LabError::io(format!("cannot create {}", path.display()), e))?;
    let err = out.try_clone().map_err(|e| LabError::io(format!("cannot open {}", path.display()), e))?;
    Ok((out, err))
}

/// Starts charon on one host in its own mount namespace (private `/run`), records it, and
/// waits for its vici socket.
fn start_charon(state: &LabState, host: &str) -> Result<(Child, ProcState)> {
    let ns = state.netns(host).ok_or_else(|| LabError::Lab(format!("lab {} has no host {host}", state.id)))?;
    let dir = host_dir(state, host);
    let run = dir.join("run");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&run)
        .map_err(|e| LabError::io(format!("cannot create {}", run.display()), e))?;
    let inner = run.join("lab");
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&inner)
        .map_err(|e| LabError::io(format!("cannot create {}", inner.display()), e))?;
    write_private(&dir.join("strongswan.conf"), &strongswan_conf(host))?;
    let (out, err) = log_file(&dir.join("stdout.log"))?;
    let mut c = Command::new("ip");
    // Paths go in as positional parameters of `sh -c`: never parsed as shell text.
    c.args(["netns", "exec", ns, "unshare", "-m", "--propagation", "private", "sh", "-c"])
        // The host folder is bound to `run/lab` first, so that it is still reachable as
        // /run/lab once `run/` covers /run (a private /run: charon.pid and the vici socket
        // of each charon are its own).
        .arg("mount --bind \"$3\" \"$1/lab\" && mount --rbind \"$1\" /run && exec \"$2\"")
        .arg("sh")
        .arg(&run)
        .arg(CHARON)
        .arg(&dir)
        .env("STRONGSWAN_CONF", format!("{INNER_DIR}/strongswan.conf"))
        // Names the lab for the leftover-finder (charon's command line does not).
        .env(LAB_ENV, &state.id)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let display = format!("ip netns exec {ns} unshare -m ... {CHARON}");
    // `ip netns exec`, `unshare` and `sh -c '... exec'` all exec: the pid is charon's.
    let mut child = c.spawn().map_err(|source| LabError::Spawn { cmd: display, source })?;
    let Some(process) = ProcRef::of(child.id()) else {
        let _ = child.wait();
        return Err(LabError::Lab(format!("charon on {host} exited right after it started")));
    };
    let record = ProcState { host: host.to_string(), what: "charon".into(), process };
    let sock = run.join("charon.vici");
    let deadline = Instant::now() + START_WAIT;
    loop {
        if sock.exists() {
            return Ok((child, record));
        }
        let gone = matches!(child.try_wait(), Ok(Some(_)));
        if gone || Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let log = fs::read_to_string(dir.join("stdout.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(3).collect();
            return Err(LabError::Lab(format!(
                "charon on {host} did not open its vici socket within {} s: {}",
                START_WAIT.as_secs(),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Starts every strongswan service of the scenario (charon, configuration), then brings the
/// tunnels up from the initiators and waits for them (a tunnel that does not come up is not
/// an error: a scenario may be broken on purpose).
pub(crate) fn start_all(
    state: &mut LabState,
    sc: &Scenario,
    dir: &StateDir,
    children: &mut Vec<Child>,
    cancel: Option<&AtomicBool>,
) -> Result<()> {
    let hosts: Vec<String> = services(sc).into_iter().map(|(h, _)| h.to_string()).collect();
    if hosts.is_empty() {
        return Ok(());
    }
    for prog in [CHARON, "swanctl", "unshare", "mount"] {
        if !crate::cmd::have_program(prog) {
            return Err(LabError::MissingTools(format!(
                "{prog} (Debian: apt-get install --no-install-recommends strongswan-charon strongswan-swanctl \
                 libcharon-extra-plugins util-linux mount)"
            )));
        }
    }
    for h in &hosts {
        if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
            return Err(LabError::Interrupted);
        }
        let (child, record) = start_charon(state, h)?;
        state.processes.push(record);
        children.push(child);
        dir.save(state)?;
        configure(state, sc, h, &Overrides::default())?;
    }
    initiate(state, sc, 10);
    let deadline = Instant::now() + ESTABLISH_WAIT;
    while !all_established(state, sc) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// The environment variable naming the lab of a charon.
pub const LAB_ENV: &str = "NETSLEUTH_LAB_ID";

/// Running charon daemons started by a lab, as (lab id, pid): found by [`LAB_ENV`] in their
/// environment (charon's command line names no lab). For the leftover-finder.
pub(crate) fn lab_charons() -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for pid in procs::all_pids() {
        let cmd = procs::cmdline(pid);
        let prog = cmd.split_whitespace().next().unwrap_or("");
        if prog.rsplit('/').next() != Some("charon") {
            continue;
        }
        let Ok(env) = fs::read(format!("/proc/{pid}/environ")) else { continue };
        let id = env.split(|b| *b == 0).find_map(|kv| {
            let v = std::str::from_utf8(kv).ok()?.strip_prefix(LAB_ENV)?.strip_prefix('=')?;
            crate::names::is_lab_id(v).then(|| v.to_string())
        });
        if let Some(id) = id {
            out.push((id, pid));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> StrongswanSpec {
        StrongswanSpec {
            local_addr: "172.16.0.2".into(),
            remote_addr: Some("203.0.113.2".into()),
            local_id: "onprem.lab".into(),
            remote_id: "cloud.lab".into(),
            local_ts: vec!["10.20.0.0/16".into()],
            remote_ts: vec!["10.10.0.0/16".into()],
            proposals: default_proposals(),
            esp_proposals: default_proposals(),
            initiate: true,
        }
    }

    #[test]
    fn config_text_and_overrides() {
        let s = spec();
        assert!(check(&s).is_empty(), "{:?}", check(&s));
        let text = swanctl_conf(&s, &Overrides::default(), "0sSECRET").expect("conf");
        assert!(text.contains("remote_addrs = 203.0.113.2\n"), "{text}");
        assert!(text.contains("local_ts = 10.20.0.0/16\n"), "{text}");
        assert!(text.contains("remote_ts = 10.10.0.0/16\n"), "{text}");
        assert!(text.contains("proposals = aes128-sha256-modp2048\n"), "{text}");
        let o = Overrides {
            proposals: Some("aes256-sha512-modp3072".into()),
            psk: None,
            remote_ts: Some(vec!["10.10.2.0/24".parse().expect("net")]),
        };
        let text = swanctl_conf(&s, &o, "0sX").expect("conf");
        assert!(text.contains("remote_ts = 10.10.2.0/24\n") && text.contains("esp_proposals = aes256-sha512-modp3072"));
        let mut bad = spec();
        bad.local_id = "x\n}".into();
        bad.remote_ts = vec!["8.8.8.0/24".into()];
        bad.remote_addr = Some("nope".into());
        assert_eq!(check(&bad).len(), 3, "{:?}", check(&bad));
    }

    #[test]
    fn ike_state_is_read_from_list_sas() {
        let out = "site: #2, ESTABLISHED, IKEv2, 1a2b_i* 3c4d_r\n  local  'onprem.lab' @ 172.16.0.2[4500]\n  \
                   net: #1, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_CBC-128/HMAC_SHA2_256_128\n";
        assert_eq!(parse_ike_state(out).as_deref(), Some("ESTABLISHED"));
        assert_eq!(parse_ike_state("site: #5, CONNECTING, IKEv2, x\n").as_deref(), Some("CONNECTING"));
        assert_eq!(parse_ike_state(""), None);
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"fo"), "Zm8=");
    }
}
