//! `collect` against a real network namespace (veth, route, sysctl, nftables rule,
//! wireguard-go interface with a peer and a preshared key), read back with the bundle
//! reader: nothing lost, no ingest issue, no secret in any file or in the model.
//!
//! Needs root and `ip netns` (CI runs as root); skipped with a message otherwise. Each test
//! makes its own namespace `nsh9-<pid>-<tag>` and removes it, its links and its
//! wireguard-go process, checking that nothing is left.

use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netsleuth_ingest::{read_bundle, BundleOptions, Redactor};
use netsleuth_model::host::{HostRole, InterfaceKind};
use netsleuth_model::{Network, RedactionKind};
use netsleuth_probe::collect::{self, CollectError, CollectOptions, CollectTarget, ManifestRecord, Status};

const SALT: &str = "nsh9-collect-test";
const SWAN_PSK: &str = "swan-psk-Zq81-do-not-leak";
const CNI_TOKEN: &str = "cni-token-7f3e9a-do-not-leak";
const PEM_BODY: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDnsh9";

fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

fn sh(args: &[&str]) -> Result<String, String> {
    let out =
        Command::new(args[0]).args(&args[1..]).stdin(Stdio::null()).output().map_err(|e| format!("{args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn sh_in(input: &str, args: &[&str]) -> String {
    let mut child =
        Command::new(args[0]).args(&args[1..]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// Root, `ip netns` and wireguard-go are there; else the reason to skip.
fn can_run(needs_wg: bool) -> Result<(), String> {
    if !is_root() {
        return Err("needs root (network namespaces)".into());
    }
    sh(&["ip", "netns", "list"]).map_err(|e| format!("needs `ip netns`: {e}"))?;
    if needs_wg {
        sh(&["wg", "--version"]).map_err(|e| format!("needs wireguard-tools: {e}"))?;
        sh(&["sh", "-c", "command -v wireguard-go"]).map_err(|e| format!("needs wireguard-go: {e}"))?;
    }
    Ok(())
}

/// Whether `test` must be skipped here (saying so on stderr).
fn skip(test: &str, needs_wg: bool) -> bool {
    match can_run(needs_wg) {
        Ok(()) => false,
        Err(why) => {
            note(&format!("SKIPPED {test}: {why}"));
            true
        }
    }
}

/// Keys of the test's WireGuard interface.
struct Keys {
    private: String,
    preshared: String,
    peer_public: String,
}

/// A namespace with a veth pair, an address and a route, ip_forward on, an nftables rule,
/// and a wireguard-go interface with one peer (preshared key); configs in `etc/`.
struct Lab {
    ns: String,
    wg: String,
    veth: String,
    port: u16,
    daemon: Option<Child>,
    keys: Keys,
    tmp: tempfile::TempDir,
}

impl Lab {
    fn new(tag: char) -> Lab {
        let pid = std::process::id();
        let ns = format!("nsh9-{pid}-{tag}");
        let short = pid % 100_000;
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut lab = Lab {
            ns: ns.clone(),
            wg: format!("nh9w{tag}{short}"),
            veth: format!("nh9v{tag}{short}"),
            port: 40_000 + u16::try_from(short % 20_000).unwrap_or(0),
            daemon: None,
            keys: Keys { private: String::new(), preshared: String::new(), peer_public: String::new() },
            tmp,
        };
        lab.build();
        lab
    }

    fn ip(&self, args: &[&str]) {
        let mut all = vec!["ip", "-n", &self.ns];
        all.extend_from_slice(args);
        sh(&all).unwrap_or_else(|e| panic!("{e}"));
    }

    fn exec(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "netns", "exec", &self.ns];
        all.extend_from_slice(args);
        sh(&all).unwrap_or_else(|e| panic!("{e}"))
    }

    fn build(&mut self) {
        sh(&["ip", "netns", "add", &self.ns]).unwrap_or_else(|e| panic!("{e}"));
        let (veth, peer) = (self.veth.clone(), format!("{}p", self.veth));
        self.ip(&["link", "set", "lo", "up"]);
        self.ip(&["link", "add", &veth, "type", "veth", "peer", "name", &peer]);
        self.ip(&["addr", "add", "10.99.0.1/24", "dev", &veth]);
        self.ip(&["link", "set", &veth, "up"]);
        self.ip(&["link", "set", &peer, "up"]);
        self.ip(&["route", "add", "10.98.0.0/16", "via", "10.99.0.2", "dev", &veth]);
        self.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        self.exec(&["nft", "add", "table", "inet", "nsh9"]);
        self.exec(&[
            "nft",
            "add",
            "chain",
            "inet",
            "nsh9",
            "fw",
            "{ type filter hook forward priority 0; policy accept; }",
        ]);
        self.exec(&["nft", "add", "rule", "inet", "nsh9", "fw", "ip", "daddr", "10.98.0.0/16", "counter", "drop"]);

        // wireguard-go in the foreground, as our child, so that we can stop it.
        let daemon = Command::new("ip")
            .args(["netns", "exec", &self.ns, "wireguard-go", &self.wg])
            .env("WG_PROCESS_FOREGROUND", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wireguard-go");
        self.daemon = Some(daemon);
        let sock = self.socket();
        let t = Instant::now();
        while !sock.exists() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(sock.exists(), "wireguard-go made no socket {}", sock.display());

        let private = sh(&["wg", "genkey"]).expect("genkey").trim().to_string();
        let preshared = sh(&["wg", "genpsk"]).expect("genpsk").trim().to_string();
        let peer_private = sh(&["wg", "genkey"]).expect("genkey").trim().to_string();
        let peer_public = sh_in(&peer_private, &["wg", "pubkey"]);
        let public = sh_in(&private, &["wg", "pubkey"]);
        let key_file = self.secret_file("private.key", &private);
        let psk_file = self.secret_file("psk", &preshared);
        let port = self.port.to_string();
        self.exec(&[
            "wg",
            "set",
            &self.wg,
            "private-key",
            &key_file,
            "listen-port",
            &port,
            "peer",
            &peer_public,
            "preshared-key",
            &psk_file,
            "allowed-ips",
            "10.98.0.0/16",
            "endpoint",
            "10.99.0.2:51820",
        ]);
        let _ = fs::remove_file(&key_file);
        let _ = fs::remove_file(&psk_file);
        self.ip(&["addr", "add", "10.97.0.1/24", "dev", &self.wg]);
        self.ip(&["link", "set", &self.wg, "up"]);

        // Configuration files, as /etc would hold them.
        let etc = self.etc();
        fs::create_dir_all(etc.join("wireguard")).expect("mkdir");
        fs::create_dir_all(etc.join("swanctl/conf.d")).expect("mkdir");
        fs::create_dir_all(etc.join("cni/net.d")).expect("mkdir");
        fs::write(
            etc.join(format!("wireguard/{}.conf", self.wg)),
            format!(
                "[Interface]\nPrivateKey = {private}\nListenPort = {port}\nAddress = 10.97.0.1/24\n\n[Peer]\n\
                 PublicKey = {peer_public}\nPresharedKey = {preshared}\nAllowedIPs = 10.98.0.0/16\n\
                 Endpoint = 10.99.0.2:51820\n"
            ),
        )
        .expect("write wg conf");
        // Not a .conf: must not be copied at all.
        fs::write(etc.join("wireguard/private.key"), &private).expect("write key");
        fs::write(
            etc.join("swanctl/swanctl.conf"),
            "connections {\n  site {\n    remote_addrs = 10.99.0.2\n    local {\n      auth = psk\n      id = gw-1\n    }\n\
             \x20   remote {\n      auth = psk\n      id = site\n    }\n    children {\n      net {\n\
             \x20       local_ts = 10.97.0.0/24\n        remote_ts = 10.98.0.0/16\n      }\n    }\n  }\n}\n\
             include conf.d/*.conf\n",
        )
        .expect("write swanctl.conf");
        fs::write(
            etc.join("swanctl/conf.d/secrets.conf"),
            format!("secrets {{\n  ike-site {{\n    id-1 = site\n    secret = \"{SWAN_PSK}\"\n  }}\n}}\n"),
        )
        .expect("write secrets.conf");
        fs::write(etc.join("resolv.conf"), "nameserver 10.99.0.53\nsearch svc.cluster.local\noptions ndots:5\n")
            .expect("write resolv.conf");
        fs::write(
            etc.join("cni/net.d/10-nsh9.conflist"),
            format!(
                "{{\n  \"cniVersion\": \"0.4.0\",\n  \"name\": \"nsh9\",\n  \"plugins\": [\n    {{\n      \"type\": \"bridge\",\n\
                 \x20     \"bridge\": \"cni0\",\n      \"token\": \"{CNI_TOKEN}\",\n      \"tls\": \"-----BEGIN PRIVATE KEY-----\\n{PEM_BODY}\\n-----END PRIVATE KEY-----\"\n    }}\n  ]\n}}\n"
            ),
        )
        .expect("write cni");
        // Holds a token: never copied (only *.conf, *.conflist, *.json are).
        fs::write(etc.join("cni/net.d/calico-kubeconfig"), format!("token: {CNI_TOKEN}\n")).expect("write kubeconfig");
        let _ = public;
        self.keys = Keys { private, preshared, peer_public };
    }

    fn secret_file(&self, name: &str, value: &str) -> String {
        let p = self.tmp.path().join(name);
        fs::write(&p, value).expect("write key file");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).expect("chmod");
        p.to_string_lossy().into_owned()
    }

    fn socket(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/wireguard/{}.sock", self.wg))
    }

    fn etc(&self) -> PathBuf {
        self.tmp.path().join("etc")
    }

    fn target(&self) -> CollectTarget {
        CollectTarget {
            role: Some(HostRole::Gateway),
            node: Some("node-1".into()),
            etc_dir: Some(self.etc()),
            ..CollectTarget::netns("gw-1", &self.ns)
        }
    }

    /// Every secret of the setup: none may appear in the bundle or the model.
    fn secrets(&self) -> Vec<String> {
        vec![
            self.keys.private.clone(),
            self.keys.preshared.clone(),
            SWAN_PSK.to_string(),
            CNI_TOKEN.to_string(),
            PEM_BODY.to_string(),
        ]
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        let _ = sh(&["ip", "netns", "del", &self.ns]);
        let _ = fs::remove_file(self.socket());
    }
}

/// After a lab is dropped: its namespace, socket and process are gone.
fn assert_cleaned(ns: &str, wg: &str) {
    let list = sh(&["ip", "netns", "list"]).unwrap_or_default();
    assert!(!list.lines().any(|l| l.split_whitespace().next() == Some(ns)), "namespace {ns} left: {list}");
    assert!(!Path::new(&format!("/var/run/wireguard/{wg}.sock")).exists(), "socket of {wg} left");
    let procs = sh(&["ps", "-eo", "args"]).unwrap_or_default();
    assert!(
        !procs.lines().any(|l| l.contains("wireguard-go") && l.split_whitespace().any(|w| w == wg)),
        "wireguard-go {wg} left"
    );
}

fn opts() -> CollectOptions {
    // A VICI socket that cannot exist: the skip is recorded the same on every machine.
    CollectOptions { swanctl_uri: Some("unix:///nonexistent/nsh9/charon.vici".into()), ..CollectOptions::default() }
}

fn read(root: &Path) -> Network {
    read_bundle(root, &BundleOptions { salt: Some(SALT.into()), ..BundleOptions::default() }).expect("bundle reads")
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).expect("list") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// No secret in any file under `root` nor in the model read from it.
fn assert_no_leak(root: &Path, net: &Network, secrets: &[String]) {
    let all = files(root);
    assert!(all.len() > 10, "too few files: {all:?}");
    for f in &all {
        let bytes = fs::read(f).expect("read");
        let text = String::from_utf8_lossy(&bytes);
        for s in secrets {
            assert!(!text.contains(s.as_str()), "secret {s:.8}… leaked into {}", f.display());
        }
    }
    let model = serde_json::to_string(net).expect("model serialises");
    for s in secrets {
        assert!(!model.contains(s.as_str()), "secret {s:.8}… in the model");
    }
}

fn manifest(root: &Path) -> ManifestRecord {
    serde_json::from_str(&fs::read_to_string(root.join("manifest.json")).expect("manifest")).expect("manifest parses")
}

#[test]
fn collects_a_namespace_and_reads_back_without_secrets() {
    if skip("collects_a_namespace_and_reads_back_without_secrets", true) {
        return;
    }
    let lab = Lab::new('a');
    let (ns, wg) = (lab.ns.clone(), lab.wg.clone());
    let out = tempfile::tempdir().expect("temp dir");
    let root = out.path().join("bundle");
    let redactor = Redactor::from_salt(SALT);
    let report = collect::collect_bundle(&[lab.target()], &root, false, &redactor, &opts()).expect("collects");

    // The report and the manifest agree, and say what happened.
    let host = &report.hosts[0];
    assert_eq!(host.name, "gw-1");
    let problems: Vec<_> = host.problems().map(|c| (c.artifact.clone(), c.status, c.error.clone())).collect();
    assert_eq!(
        problems,
        [(
            "hosts/gw-1/swanctl-list-sas.txt".to_string(),
            Status::Skipped,
            Some("no VICI socket at /nonexistent/nsh9/charon.vici (charon not running here?)".to_string())
        )]
    );
    let m = manifest(&root);
    assert_eq!(m.format, "netsleuth-bundle/1");
    assert_eq!(m.salt_id, redactor.salt_id());
    assert!(netsleuth_ingest::bundle::parse_rfc3339(&m.collected_at).is_some(), "{}", m.collected_at);
    assert_eq!(m.hosts[0].netns.as_deref(), Some(ns.as_str()));
    assert_eq!(m.commands, host.commands);
    let link = m.commands.iter().find(|c| c.artifact == "hosts/gw-1/ip-link.json").expect("ip link record");
    assert_eq!((link.status, link.exit_status, link.written), (Status::Ok, Some(0), true));
    assert_eq!(link.command.as_deref(), Some("ip -j -d link show"));
    assert_eq!(link.argv[1..4], ["netns", "exec", ns.as_str()]);
    let dumps: Vec<_> = m.commands.iter().filter(|c| c.artifact == "hosts/gw-1/wg-dump.txt").collect();
    assert_eq!(dumps[1].command.as_deref(), Some(format!("wg show {wg} dump").as_str()));
    assert_eq!(dumps.last().map(|d| d.redactions), Some(2), "private and preshared key");
    for a in
        ["host.json", "nft.json", "sysctl.txt", "resolv.conf", "cni/10-nsh9.conflist", "swanctl/conf.d/secrets.conf"]
    {
        assert!(m.hosts[0].artifacts.contains(&format!("hosts/gw-1/{a}")), "{a} missing: {:?}", m.hosts[0].artifacts);
    }
    assert!(!root.join("hosts/gw-1/wireguard/private.key").exists());
    assert!(!root.join("hosts/gw-1/cni/calico-kubeconfig").exists());

    // The files carry fingerprints under the collect key.
    let dump = fs::read_to_string(root.join("hosts/gw-1/wg-dump.txt")).expect("wg dump");
    assert!(dump.starts_with(&format!("{wg}\t<redacted:{}>\t", redactor.fingerprint(&lab.keys.private))), "{dump}");
    assert!(
        dump.contains(&format!(
            "\t{}\t<redacted:{}>\t10.99.0.2:51820\t10.98.0.0/16\t",
            lab.keys.peer_public,
            redactor.fingerprint(&lab.keys.preshared)
        )),
        "{dump}"
    );
    let conf = fs::read_to_string(root.join(format!("hosts/gw-1/wireguard/{wg}.conf"))).expect("wg conf");
    assert!(
        conf.contains(&format!("PresharedKey = <redacted:{}>", redactor.fingerprint(&lab.keys.preshared))),
        "{conf}"
    );
    let secrets = fs::read_to_string(root.join("hosts/gw-1/swanctl/conf.d/secrets.conf")).expect("secrets.conf");
    assert!(secrets.contains(&format!("secret = <redacted:{}>", redactor.fingerprint(SWAN_PSK))), "{secrets}");

    // The bundle reader sees everything.
    let net = read(&root);
    assert!(net.ingest_issues.is_empty(), "ingest issues: {:#?}", net.ingest_issues);
    assert_eq!(net.manifest.salt_id.as_deref(), Some(redactor.salt_id()));
    let h = net.host("gw-1").expect("host gw-1");
    assert_eq!((h.role, h.node.as_deref()), (Some(HostRole::Gateway), Some("node-1")));
    let veth = h.interfaces.iter().find(|i| i.name == lab.veth).expect("veth");
    assert!(veth.up);
    assert!(veth.addresses.contains(&"10.99.0.1/24".parse::<ipnet::IpNet>().expect("net")), "{:?}", veth.addresses);
    let wgi = h.interfaces.iter().find(|i| i.name == wg).expect("wg link");
    assert_eq!(wgi.kind, InterfaceKind::WireGuard);
    let route = h.routes.routes.iter().find(|r| r.dst.to_string() == "10.98.0.0/16").expect("route");
    assert_eq!(route.gateway.map(|g| g.to_string()).as_deref(), Some("10.99.0.2"));
    assert_eq!(h.sysctls.get_i64("net.ipv4.ip_forward"), Some(1));
    let rules = h.nftables.as_ref().and_then(|r| r.chain("inet", "nsh9", "fw")).map(|c| c.rules.len());
    assert_eq!(rules, Some(1));
    let w = h.wireguard.iter().find(|w| w.name == wg).expect("wireguard state");
    assert!(w.from_runtime);
    assert_eq!(w.listen_port, Some(lab.port));
    assert_eq!(w.addresses, ["10.97.0.1/24".parse::<ipnet::IpNet>().expect("net")], "from the wg-quick config");
    assert_eq!(w.peers.len(), 1);
    let peer = &w.peers[0];
    assert_eq!(peer.public_key, lab.keys.peer_public);
    assert_eq!(peer.allowed_ips, ["10.98.0.0/16".parse::<ipnet::IpNet>().expect("net")]);
    assert_eq!(peer.endpoint.as_deref(), Some("10.99.0.2:51820"));
    assert!(peer.preshared_key.is_some() && w.private_key.is_some());
    assert_eq!(h.ipsec.secrets.len(), 1);
    assert!(h.ipsec.secrets[0].secret.is_some());
    assert!(!h.ipsec.sas_collected, "no VICI socket: SAs not collected");
    assert_eq!(h.resolv.as_ref().map(|r| r.nameservers.len()), Some(1));
    assert_eq!(h.cni.len(), 1);

    // Same secret, same fingerprint, whichever artifact it came from.
    let fp = |kind: RedactionKind, file: &str| -> Vec<String> {
        net.redactions
            .iter()
            .filter(|r| r.kind == kind && r.location.path().is_some_and(|p| p.ends_with(file)))
            .map(|r| r.secret.fingerprint.clone())
            .collect()
    };
    let psk_dump = fp(RedactionKind::WireguardPresharedKey, "wg-dump.txt");
    assert_eq!(psk_dump.len(), 1);
    assert_eq!(psk_dump, fp(RedactionKind::WireguardPresharedKey, &format!("{wg}.conf")));
    assert_eq!(
        fp(RedactionKind::WireguardPrivateKey, "wg-dump.txt"),
        fp(RedactionKind::WireguardPrivateKey, &format!("{wg}.conf"))
    );

    assert_no_leak(&root, &net, &lab.secrets());
    drop(lab);
    assert_cleaned(&ns, &wg);
}

/// A folder with links to every tool collect uses except `wg`, plus `extra` scripts.
fn tools_without_wg(dir: &Path, extra: &[(&str, &str)]) -> OsString {
    let std_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for tool in ["ip", "nft", "iptables-save", "ip6tables-save", "sysctl", "conntrack", "cat", "swanctl", "nsenter"] {
        // A stand-in replaces the tool: no link to the real one is made (writing the
        // script through such a link would overwrite the installed tool).
        if extra.iter().any(|(name, _)| *name == tool) {
            continue;
        }
        let found = std::env::split_paths(std_path).map(|d| d.join(tool)).find(|p| p.exists());
        if let Some(p) = found {
            std::os::unix::fs::symlink(p, dir.join(tool)).expect("symlink");
        }
    }
    for (name, script) in extra {
        // create_new: never follows or replaces an existing file or link.
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(dir.join(name))
            .expect("create script");
        f.write_all(script.as_bytes()).expect("write script");
    }
    dir.as_os_str().to_owned()
}

#[test]
fn missing_wg_is_recorded_and_the_rest_collected() {
    if skip("missing_wg_is_recorded_and_the_rest_collected", true) {
        return;
    }
    let lab = Lab::new('b');
    let (ns, wg) = (lab.ns.clone(), lab.wg.clone());
    let out = tempfile::tempdir().expect("temp dir");
    let bin = tempfile::tempdir().expect("temp dir");
    let root = out.path().join("bundle");
    let opts = CollectOptions { search_path: Some(tools_without_wg(bin.path(), &[])), ..opts() };
    assert!(!collect::tool_available("wg", &opts));
    collect::collect_bundle(&[lab.target()], &root, false, &Redactor::from_salt(SALT), &opts).expect("collects");

    let m = manifest(&root);
    let wg_rec = m.commands.iter().find(|c| c.artifact == "hosts/gw-1/wg-dump.txt").expect("wg record");
    assert_eq!(wg_rec.status, Status::MissingTool);
    assert_eq!(wg_rec.command.as_deref(), Some("wg show interfaces"));
    assert!(wg_rec.error.as_deref().is_some_and(|e| e.starts_with("`wg` not found")), "{wg_rec:?}");
    assert!(!root.join("hosts/gw-1/wg-dump.txt").exists());
    let link = m.commands.iter().find(|c| c.artifact == "hosts/gw-1/ip-link.json").expect("ip link record");
    assert_eq!(link.status, Status::Ok);

    let net = read(&root);
    assert!(net.ingest_issues.is_empty(), "{:#?}", net.ingest_issues);
    let h = net.host("gw-1").expect("host");
    // Only the config is left to describe the tunnel.
    let w = h.wireguard.iter().find(|w| w.name == wg).expect("wireguard from config");
    assert!(!w.from_runtime);
    assert_no_leak(&root, &net, &lab.secrets());
    drop(lab);
    assert_cleaned(&ns, &wg);
}

#[test]
fn tarball_round_trips_and_is_not_overwritten_without_force() {
    if skip("tarball_round_trips_and_is_not_overwritten_without_force", true) {
        return;
    }
    let lab = Lab::new('c');
    let (ns, wg) = (lab.ns.clone(), lab.wg.clone());
    let out = tempfile::tempdir().expect("temp dir");
    let file = out.path().join("gw-1.tar.gz");
    let redactor = Redactor::from_salt(SALT);
    let report = collect::collect_bundle(&[lab.target()], &file, false, &redactor, &opts()).expect("collects");
    assert!(report.tarball);
    assert_eq!(fs::metadata(&file).expect("tarball").permissions().mode() & 0o777, 0o600);

    let unpacked = out.path().join("x");
    let gz = flate2::read::GzDecoder::new(fs::File::open(&file).expect("open"));
    let mut archive = tar::Archive::new(gz);
    let names: Vec<String> = archive
        .entries()
        .expect("entries")
        .map(|e| e.expect("entry").path().expect("path").to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"manifest.json".to_string()) && names.contains(&"hosts/gw-1/ip-link.json".to_string()),
        "{names:?}"
    );
    let gz = flate2::read::GzDecoder::new(fs::File::open(&file).expect("open"));
    tar::Archive::new(gz).unpack(&unpacked).expect("unpack");
    let net = read(&unpacked);
    assert!(net.ingest_issues.is_empty(), "{:#?}", net.ingest_issues);
    let h = net.host("gw-1").expect("host");
    assert!(h.interfaces.iter().any(|i| i.name == lab.veth));
    assert_eq!(h.wireguard.iter().find(|w| w.name == wg).map(|w| w.peers.len()), Some(1));
    assert_no_leak(&unpacked, &net, &lab.secrets());

    let again = collect::collect_bundle(&[lab.target()], &file, false, &redactor, &opts());
    assert!(matches!(again, Err(CollectError::OutputExists { .. })), "{again:?}");
    let before = fs::metadata(&file).expect("meta").modified().expect("mtime");
    std::thread::sleep(Duration::from_millis(20));
    collect::collect_bundle(&[lab.target()], &file, true, &redactor, &opts()).expect("forced");
    assert!(fs::metadata(&file).expect("meta").modified().expect("mtime") > before);
    // Nothing but the tarball is left next to it (no partial file).
    let siblings: Vec<_> = fs::read_dir(out.path()).expect("list").map(|e| e.expect("e").file_name()).collect();
    assert_eq!(siblings.len(), 2, "{siblings:?}");
    drop(lab);
    assert_cleaned(&ns, &wg);
}

#[test]
fn a_hanging_tool_times_out_and_collect_goes_on() {
    // Runs in the caller's namespace and only reads: no root needed.
    let out = tempfile::tempdir().expect("temp dir");
    let bin = tempfile::tempdir().expect("temp dir");
    let etc = tempfile::tempdir().expect("temp dir");
    // The search path holds only the tools: the script names sleep by its full path.
    let sleep = sh(&["sh", "-c", "command -v sleep"]).expect("sleep");
    let script = format!("#!/bin/sh\n{0} 30 &\n{0} 30\n", sleep.trim());
    let path = tools_without_wg(bin.path(), &[("wg", &script)]);
    let opts = CollectOptions { timeout: Duration::from_millis(700), search_path: Some(path), ..opts() };
    let target = CollectTarget { etc_dir: Some(etc.path().to_path_buf()), ..CollectTarget::host("h") };
    let t = Instant::now();
    let report =
        collect::collect_bundle(&[target], &out.path().join("b"), false, &Redactor::random(), &opts).expect("collects");
    assert!(t.elapsed() < Duration::from_secs(8), "took {:?}", t.elapsed());
    let wg = report.hosts[0].commands.iter().find(|c| c.artifact == "hosts/h/wg-dump.txt").expect("wg record");
    assert_eq!(wg.status, Status::Timeout, "{wg:?}");
    assert!(wg.duration_ms >= 600 && wg.duration_ms < 5000, "{}", wg.duration_ms);
    assert!(report.hosts[0].commands.iter().any(|c| c.artifact == "hosts/h/sysctl.txt" && c.status == Status::Ok));
    // The fake wg's children were killed with it.
    let procs = sh(&["ps", "-eo", "args"]).unwrap_or_default();
    assert!(!procs.lines().any(|l| l.contains(&bin.path().join("wg").to_string_lossy().into_owned())), "{procs}");
}

#[test]
fn a_non_empty_folder_needs_force_which_keeps_other_files() {
    let out = tempfile::tempdir().expect("temp dir");
    let empty = tempfile::tempdir().expect("temp dir");
    let root = out.path().join("b");
    fs::create_dir_all(root.join("kubernetes")).expect("mkdir");
    fs::write(root.join("kubernetes/cluster.json"), "{}").expect("write");
    fs::create_dir_all(root.join("hosts/h")).expect("mkdir");
    fs::write(root.join("hosts/h/stale.txt"), "old").expect("write");
    // No tools at all: quick, and still a bundle.
    let opts = CollectOptions { search_path: Some(empty.path().as_os_str().to_owned()), ..opts() };
    let target = CollectTarget { etc_dir: Some(empty.path().to_path_buf()), ..CollectTarget::host("h") };
    let r = collect::collect_bundle(std::slice::from_ref(&target), &root, false, &Redactor::random(), &opts);
    assert!(matches!(r, Err(CollectError::OutputNotEmpty { .. })), "{r:?}");
    assert!(root.join("hosts/h/stale.txt").exists(), "refusal changes nothing");
    collect::collect_bundle(&[target], &root, true, &Redactor::random(), &opts).expect("forced");
    assert!(root.join("kubernetes/cluster.json").exists());
    assert!(!root.join("hosts/h/stale.txt").exists(), "the host folder is replaced");
    assert!(root.join("hosts/h/host.json").exists() && root.join("manifest.json").exists());
    let m = manifest(&root);
    assert!(m.commands.iter().all(|c| matches!(c.status, Status::MissingTool | Status::Absent | Status::Skipped)));

    let dup = collect::collect_bundle(
        &[CollectTarget::host("x"), CollectTarget::host("x")],
        &out.path().join("c"),
        false,
        &Redactor::random(),
        &opts,
    );
    assert!(matches!(dup, Err(CollectError::DuplicateHost { .. })), "{dup:?}");
    assert!(!out.path().join("c").exists(), "nothing written on a refused target list");
}

#[test]
fn swanctl_is_asked_when_its_socket_is_there() {
    let out = tempfile::tempdir().expect("temp dir");
    let bin = tempfile::tempdir().expect("temp dir");
    let etc = tempfile::tempdir().expect("temp dir");
    // A stand-in for charon's socket (collect only checks that it exists) and for swanctl,
    // which records its arguments and prints no SA (valid `--list-sas` output).
    let socket = out.path().join("charon.vici");
    fs::write(&socket, "").expect("socket stand-in");
    let args_log = out.path().join("swanctl-args");
    let script = format!("#!/bin/sh\necho \"$@\" > {}\n", args_log.display());
    let path = tools_without_wg(bin.path(), &[("swanctl", &script)]);
    let uri = format!("unix://{}", socket.display());
    let opts = CollectOptions { swanctl_uri: Some(uri.clone()), search_path: Some(path), ..CollectOptions::default() };
    let mut target = CollectTarget { etc_dir: Some(etc.path().to_path_buf()), ..CollectTarget::host("h") };
    if is_root() {
        // Our own mount namespace, entered through nsenter as for a lab charon.
        target.mount_ns_pid = Some(std::process::id());
    }
    let root = out.path().join("b");
    let report = collect::collect_bundle(&[target], &root, false, &Redactor::random(), &opts).expect("collects");
    let rec =
        report.hosts[0].commands.iter().find(|c| c.artifact == "hosts/h/swanctl-list-sas.txt").expect("swanctl record");
    assert_eq!((rec.status, rec.written), (Status::Ok, true), "{rec:?}");
    assert_eq!(rec.command.as_deref(), Some(format!("swanctl --list-sas --uri {uri}").as_str()));
    assert_eq!(rec.argv.iter().any(|a| a.ends_with("nsenter")), is_root(), "{:?}", rec.argv);
    assert_eq!(fs::read_to_string(&args_log).expect("swanctl ran").trim(), format!("--list-sas --uri {uri}"));
    let net = read(&root);
    assert!(net.ingest_issues.is_empty(), "{:#?}", net.ingest_issues);
    assert!(net.host("h").expect("host").ipsec.sas_collected);

    // No socket: not asked, and the manifest says why.
    fs::remove_file(&socket).expect("rm");
    fs::remove_file(&args_log).expect("rm");
    let report = collect::collect_bundle(
        &[CollectTarget { etc_dir: Some(etc.path().to_path_buf()), ..CollectTarget::host("h") }],
        &out.path().join("b2"),
        false,
        &Redactor::random(),
        &opts,
    )
    .expect("collects");
    let rec =
        report.hosts[0].commands.iter().find(|c| c.artifact == "hosts/h/swanctl-list-sas.txt").expect("swanctl record");
    assert_eq!(rec.status, Status::Skipped);
    assert!(!args_log.exists(), "swanctl must not run without a socket");
}
