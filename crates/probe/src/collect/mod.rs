//! `netsleuth collect`: runs the standard commands on a host or inside a network namespace
//! and writes their outputs, secrets redacted, as `hosts/<name>/` of a bundle with a manifest.
//!
//! Layout and file names follow `docs/bundle-format.md`. Every command has a timeout; a
//! missing tool or a failing command is recorded in the manifest, never fatal. Only the
//! output (cannot write, folder not empty) and an unknown namespace are errors.

mod exec;
mod output;
mod scrub;
mod time;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use netsleuth_ingest::{ParseContext, Redactor};
use netsleuth_model::host::HostRole;
use serde::{Deserialize, Serialize};

pub use output::{
    collect_bundle, is_tarball, write_manifest, write_tarball, BundleReport, ManifestHost, ManifestRecord,
    BUNDLE_FORMAT,
};

/// Default time limit of one command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What to collect: a host (the root network namespace) or a named network namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectTarget {
    /// Folder name under `hosts/` (letters, digits, `.`, `_`, `-`).
    pub name: String,
    /// Run every command inside `ip netns exec NETNS`; `None` is the caller's namespace.
    pub netns: Option<String>,
    /// `host.json` fields.
    pub role: Option<HostRole>,
    pub node: Option<String>,
    pub pod: Option<String>,
    /// Read configuration files (resolv.conf, wireguard/, swanctl/, cni/net.d/) from this
    /// folder instead of `/etc`. Without it: `/proc/PID/root/etc` when `mount_ns_pid` is
    /// set, else `/etc/netns/NETNS/<entry>` where it exists (what `ip netns exec` shows),
    /// else `/etc`.
    pub etc_dir: Option<PathBuf>,
    /// A process in this host's mount namespace (a lab charon with a private `/run`):
    /// `swanctl` runs there (`nsenter -t PID -m`) and its VICI socket is looked up there.
    pub mount_ns_pid: Option<u32>,
    /// The VICI socket of this host's charon (`unix:///path`) for `swanctl --list-sas`;
    /// overrides [`CollectOptions::swanctl_uri`] for this host (a lab charon per namespace).
    pub swanctl_uri: Option<String>,
    /// Single /etc entries of this host kept elsewhere, by entry (`resolv.conf`,
    /// `swanctl/swanctl.conf`): read from the given file instead; before `etc_dir`.
    pub etc_files: BTreeMap<String, PathBuf>,
}

impl CollectTarget {
    /// The caller's own network namespace, named `name`.
    pub fn host(name: impl Into<String>) -> CollectTarget {
        CollectTarget { name: name.into(), ..CollectTarget::default() }
    }

    /// The network namespace `netns` (as listed by `ip netns list`), named `name`.
    pub fn netns(name: impl Into<String>, netns: impl Into<String>) -> CollectTarget {
        CollectTarget { name: name.into(), netns: Some(netns.into()), ..CollectTarget::default() }
    }
}

/// How to collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectOptions {
    /// Time limit of each command; at the limit its whole process group is killed.
    pub timeout: Duration,
    /// `swanctl --uri` (VICI socket); default `unix:///var/run/charon.vici`.
    pub swanctl_uri: Option<String>,
    /// Where tools are looked up (colon-separated). Default: `$PATH` plus the sbin folders.
    pub search_path: Option<OsString>,
    /// Largest command output kept; a longer one is recorded as failed, not written.
    pub max_output_bytes: usize,
    /// Largest configuration file copied.
    pub max_file_bytes: u64,
    /// `manifest.json` `cluster`.
    pub cluster: Option<String>,
}

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions {
            timeout: DEFAULT_TIMEOUT,
            swanctl_uri: None,
            search_path: None,
            max_output_bytes: 512 << 20,
            max_file_bytes: 16 << 20,
            cluster: None,
        }
    }
}

/// How collecting one artifact went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Ran (or was read) and its output was written.
    Ok,
    /// Exited with a failure, or could not be started or read.
    Failed,
    /// Killed at the time limit.
    Timeout,
    /// The tool is not installed (not in the search path).
    MissingTool,
    /// The configuration file or folder does not exist (normal for optional ones).
    Absent,
    /// Not attempted, with the reason (no VICI socket, no interface list).
    Skipped,
}

/// One command run or file read, as `manifest.json` `commands[]` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// Host folder name.
    pub host: String,
    /// Bundle-relative path of the artifact this fed (`hosts/gw-1/wg-dump.txt`).
    pub artifact: String,
    /// The command as one would type it (`ip -j -d link show`); absent for file copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// What was executed exactly, namespace wrappers and absolute paths included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub argv: Vec<String>,
    /// The file or folder read, for copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// RFC 3339 UTC, milliseconds.
    pub started_at: String,
    pub duration_ms: u64,
    /// Exit code; absent when the command did not exit by itself (or was not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
    pub status: Status,
    /// Why it failed or was skipped (the start of the command's standard error, secrets
    /// redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether the artifact was written (a failed command's partial output is kept).
    pub written: bool,
    /// Bytes captured (before redaction).
    pub bytes: u64,
    /// Secrets replaced by `<redacted:…>` in what was written.
    pub redactions: usize,
}

/// What collecting one host did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReport {
    pub name: String,
    pub netns: Option<String>,
    pub role: Option<HostRole>,
    /// The host folder (`<bundle>/hosts/<name>`).
    pub dir: PathBuf,
    /// Bundle-relative paths of the files written, in order.
    pub artifacts: Vec<String>,
    pub commands: Vec<CommandRecord>,
}

impl HostReport {
    /// Records that did not go well: failed, timed out, missing tool or skipped (absent
    /// optional files are normal and not listed).
    pub fn problems(&self) -> impl Iterator<Item = &CommandRecord> {
        self.commands.iter().filter(|c| !matches!(c.status, Status::Ok | Status::Absent))
    }
}

/// Errors that stop a collection: everything about one command is a [`CommandRecord`].
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("invalid host name {name:?}: {reason}")]
    InvalidHostName { name: String, reason: &'static str },
    #[error("invalid network namespace name {name:?}: a name as `ip netns add` takes, without `/`")]
    InvalidNetns { name: String },
    #[error("network namespace {name:?} not found in /run/netns (see `ip netns list`)")]
    NetnsNotFound { name: String },
    #[error("two hosts are named {name:?}; give each a different --name")]
    DuplicateHost { name: String },
    #[error("nothing to collect: no hosts given")]
    NoTargets,
    #[error(
        "{}: the folder is not empty; pass --force to write into it (manifest.json and the \
         collected hosts' folders are replaced, other files kept)",
        path.display()
    )]
    OutputNotEmpty { path: PathBuf },
    #[error("{}: already exists; pass --force to replace it", path.display())]
    OutputExists { path: PathBuf },
    #[error("{}: not a folder", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{}: a folder; a .tar.gz output must be a file", path.display())]
    IsADirectory { path: PathBuf },
    #[error("{}: the host folder exists and is not empty", path.display())]
    HostExists { path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CollectError {
    fn io(path: &Path, source: std::io::Error) -> CollectError {
        CollectError::Io { path: path.to_path_buf(), source }
    }
}

/// The default host folder name: the namespace name, else the kernel host name.
pub fn default_host_name(netns: Option<&str>) -> Option<String> {
    if let Some(ns) = netns {
        return Some(ns.to_string());
    }
    let name = fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// Checks a host folder name: non-empty, at most 253 bytes, letters, digits, `.`, `_`
/// and `-`, not starting with `.` (so never `..` or a hidden folder).
pub fn check_host_name(name: &str) -> Result<(), CollectError> {
    let bad = |reason| Err(CollectError::InvalidHostName { name: name.to_string(), reason });
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 253 {
        return bad("longer than 253 bytes");
    }
    if name.starts_with('.') {
        return bad("starts with `.`");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return bad("only letters, digits, `.`, `_` and `-` are allowed in a folder name");
    }
    Ok(())
}

/// Checks that `netns` is a valid name and exists (`ip netns` keeps them in /run/netns).
pub fn check_netns(netns: &str) -> Result<(), CollectError> {
    if netns.is_empty() || netns.len() > 255 || netns.contains('/') || netns == "." || netns == ".." {
        return Err(CollectError::InvalidNetns { name: netns.to_string() });
    }
    let found = ["/run/netns", "/var/run/netns"].iter().any(|d| Path::new(d).join(netns).exists());
    if found {
        Ok(())
    } else {
        Err(CollectError::NetnsNotFound { name: netns.to_string() })
    }
}

/// `$PATH` plus the folders root's tools live in (a user's PATH often lacks sbin).
fn default_search_path() -> OsString {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    for extra in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        if !dirs.iter().any(|d| d == Path::new(extra)) {
            dirs.push(PathBuf::from(extra));
        }
    }
    std::env::join_paths(dirs).unwrap_or_else(|_| OsString::from("/usr/sbin:/usr/bin:/sbin:/bin"))
}

/// Collects `target` into `<bundle_root>/hosts/<name>/`, which must not exist or be empty.
/// Writes `host.json` and every artifact that could be gathered; failures are in the
/// returned report (for [`write_manifest`]), not errors.
pub fn collect_host(
    target: &CollectTarget,
    bundle_root: &Path,
    redactor: &Redactor,
    opts: &CollectOptions,
) -> Result<HostReport, CollectError> {
    check_host_name(&target.name)?;
    if let Some(ns) = &target.netns {
        check_netns(ns)?;
    }
    let dir = bundle_root.join("hosts").join(&target.name);
    if fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(CollectError::HostExists { path: dir });
    }
    fs::create_dir_all(&dir).map_err(|e| CollectError::io(&dir, e))?;
    let mut c = Collector::new(target, opts, dir, redactor);
    c.host_json()?;
    let links = c.simple("ip-link.json", "ip", &["-j", "-d", "link", "show"], Scrub::None)?;
    c.simple("ip-addr.json", "ip", &["-j", "addr", "show"], Scrub::None)?;
    c.simple("ip-route.json", "ip", &["-4", "-j", "route", "show", "table", "all"], Scrub::None)?;
    c.simple("ip-route6.json", "ip", &["-6", "-j", "route", "show", "table", "all"], Scrub::None)?;
    c.simple("ip-rule.json", "ip", &["-j", "rule", "show"], Scrub::None)?;
    c.simple("ip-rule6.json", "ip", &["-6", "-j", "rule", "show"], Scrub::None)?;
    c.simple("nft.json", "nft", &["-j", "list", "ruleset"], Scrub::None)?;
    c.simple("iptables-save.txt", "iptables-save", &["-c"], Scrub::None)?;
    c.simple("ip6tables-save.txt", "ip6tables-save", &["-c"], Scrub::None)?;
    // Only a complete interface list says which WireGuard interfaces are this namespace's.
    let links = links.as_deref().and_then(link_names);
    c.wireguard(links.clone())?;
    c.swanctl_sas()?;
    // `sysctl -a` holds a few secrets too (tcp_fastopen_key, stable_secret).
    c.simple("sysctl.txt", "sysctl", &["-a"], Scrub::Sysctl)?;
    c.simple("conntrack-stats.txt", "conntrack", &["-S"], Scrub::None)?;
    c.simple("conntrack-count.txt", "cat", &["/proc/sys/net/netfilter/nf_conntrack_count"], Scrub::None)?;
    c.copy_file("resolv.conf", "resolv.conf", Scrub::None)?;
    c.wireguard_configs(links.as_deref())?;
    c.copy_file("swanctl/swanctl.conf", "swanctl/swanctl.conf", Scrub::Swanctl)?;
    c.copy_dir("swanctl/conf.d", "swanctl/conf.d", &[".conf"], Scrub::Swanctl, None)?;
    // Only CNI configs: other files there (calico-kubeconfig) hold tokens.
    c.copy_dir("cni/net.d", "cni", &[".conf", ".conflist", ".json"], Scrub::FreeText, None)?;
    Ok(c.report)
}

/// Interface names in `ip -j link show` output; None when it is not a JSON array.
fn link_names(json: &[u8]) -> Option<Vec<String>> {
    let Ok(serde_json::Value::Array(links)) = serde_json::from_slice::<serde_json::Value>(json) else {
        return None;
    };
    Some(links.iter().filter_map(|l| l.get("ifname")?.as_str().map(str::to_string)).collect())
}

/// How an artifact is redacted before it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scrub {
    /// Structured output without secrets: written unmodified.
    None,
    FreeText,
    Sysctl,
    WgQuick,
    Swanctl,
}

struct Collector<'a> {
    target: &'a CollectTarget,
    opts: &'a CollectOptions,
    dir: PathBuf,
    /// `hosts/<name>`.
    rel: String,
    ctx: ParseContext,
    search_path: OsString,
    report: HostReport,
}

/// A command to run: the tool and its arguments.
struct Cmd<'c> {
    tool: &'c str,
    args: Vec<OsString>,
    /// Run in the target's mount namespace (swanctl) when it has one.
    mount_ns: bool,
}

impl<'a> Collector<'a> {
    fn new(target: &'a CollectTarget, opts: &'a CollectOptions, dir: PathBuf, redactor: &Redactor) -> Collector<'a> {
        Collector {
            target,
            opts,
            dir: dir.clone(),
            rel: format!("hosts/{}", target.name),
            ctx: ParseContext::new(redactor.clone()),
            search_path: opts.search_path.clone().unwrap_or_else(default_search_path),
            report: HostReport {
                name: target.name.clone(),
                netns: target.netns.clone(),
                role: target.role,
                dir,
                artifacts: Vec::new(),
                commands: Vec::new(),
            },
        }
    }

    fn host_json(&mut self) -> Result<(), CollectError> {
        let mut v = serde_json::Map::new();
        if let Some(role) = self.target.role {
            v.insert("role".into(), serde_json::to_value(role).unwrap_or(serde_json::Value::Null));
        }
        for (k, val) in [("node", &self.target.node), ("pod", &self.target.pod), ("netns", &self.target.netns)] {
            if let Some(val) = val {
                v.insert(k.into(), serde_json::Value::String(val.clone()));
            }
        }
        let mut text = serde_json::to_string_pretty(&serde_json::Value::Object(v)).unwrap_or_else(|_| "{}".into());
        text.push('\n');
        self.write("host.json", text.as_bytes())
    }

    fn write(&mut self, rel_in_host: &str, bytes: &[u8]) -> Result<(), CollectError> {
        let path = self.dir.join(rel_in_host);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| CollectError::io(parent, e))?;
        }
        // create_new: the host folder started empty, so every file is new; an existing
        // file or a symlink planted in the output is an error, never followed.
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| f.write_all(bytes))
            .map_err(|e| CollectError::io(&path, e))?;
        self.report.artifacts.push(format!("{}/{rel_in_host}", self.rel));
        Ok(())
    }

    fn record(&self, artifact: &str, started: SystemTime, status: Status) -> CommandRecord {
        CommandRecord {
            host: self.target.name.clone(),
            artifact: format!("{}/{artifact}", self.rel),
            command: None,
            argv: Vec::new(),
            file: None,
            started_at: time::rfc3339(started, true),
            duration_ms: 0,
            exit_status: None,
            status,
            error: None,
            written: false,
            bytes: 0,
            redactions: 0,
        }
    }

    /// Redacts `bytes` (as text) for `artifact`; returns what to write and how many
    /// secrets were replaced.
    fn scrub(&mut self, artifact: &str, bytes: Vec<u8>, how: Scrub) -> (Vec<u8>, usize) {
        if how == Scrub::None {
            return (bytes, 0);
        }
        let before = self.ctx.redactions.len();
        let rel = format!("{}/{artifact}", self.rel);
        // Lossy: a config that is not UTF-8 is unreadable for the parsers anyway, and a
        // secret must not slip through because the text around it was odd.
        let text = String::from_utf8_lossy(&bytes);
        let out = match how {
            Scrub::None | Scrub::FreeText => scrub::free_text(&mut self.ctx, &rel, &text),
            Scrub::Sysctl => scrub::sysctl(&mut self.ctx, &rel, &text),
            Scrub::WgQuick => scrub::wg_quick(&mut self.ctx, &rel, &text),
            Scrub::Swanctl => scrub::swanctl(&mut self.ctx, &rel, &text),
        };
        (out.into_bytes(), self.ctx.redactions.len() - before)
    }

    /// The executable and arguments for `cmd`, with the namespace wrappers; or the
    /// missing tool.
    fn argv(&self, cmd: &Cmd<'_>) -> Result<(PathBuf, Vec<OsString>), String> {
        let find = |tool: &str| exec::which(tool, &self.search_path).ok_or_else(|| tool.to_string());
        let tool = find(cmd.tool)?;
        let mut prefix: Vec<OsString> = Vec::new();
        if let Some(ns) = &self.target.netns {
            prefix.push(find("ip")?.into_os_string());
            prefix.extend(["netns".into(), "exec".into(), ns.into()]);
        }
        if let (true, Some(pid)) = (cmd.mount_ns, self.target.mount_ns_pid) {
            prefix.push(find("nsenter")?.into_os_string());
            prefix.extend(["-t".into(), pid.to_string().into(), "-m".into(), "--".into()]);
        }
        prefix.push(tool.into_os_string());
        prefix.extend(cmd.args.iter().cloned());
        let mut it = prefix.into_iter();
        let program = it.next().map(PathBuf::from).unwrap_or_default();
        Ok((program, it.collect()))
    }

    /// Runs `cmd` for `artifact`; returns its record and, when it produced output, the
    /// output. Never fails: what went wrong is in the record.
    fn run(&mut self, artifact: &str, cmd: &Cmd<'_>) -> (CommandRecord, Option<Vec<u8>>) {
        let shown = std::iter::once(cmd.tool.to_string())
            .chain(cmd.args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        let mut rec = self.record(artifact, SystemTime::now(), Status::Ok);
        rec.command = Some(shown);
        let (program, args) = match self.argv(cmd) {
            Ok(a) => a,
            Err(missing) => {
                rec.status = Status::MissingTool;
                rec.error =
                    Some(format!("`{missing}` not found in the search path {}", self.search_path.to_string_lossy()));
                return (rec, None);
            }
        };
        rec.argv = std::iter::once(program.as_os_str())
            .chain(args.iter().map(OsString::as_os_str))
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let run = exec::run(&program, &args, &self.search_path, self.opts.timeout, self.opts.max_output_bytes);
        rec.started_at = time::rfc3339(run.started, true);
        rec.duration_ms = u64::try_from(run.duration.as_millis()).unwrap_or(u64::MAX);
        rec.exit_status = run.code();
        rec.bytes = u64::try_from(run.stdout.len()).unwrap_or(u64::MAX);
        let stderr = self.excerpt(artifact, &run.stderr);
        match &run.end {
            exec::End::SpawnFailed(e) => {
                rec.status = Status::Failed;
                rec.error = Some(format!("cannot run {}: {e}", program.display()));
                return (rec, None);
            }
            exec::End::TimedOut => {
                rec.status = Status::Timeout;
                rec.error = Some(format!(
                    "no result within {} s; killed{}",
                    self.opts.timeout.as_secs_f64(),
                    stderr.map(|s| format!(" (stderr: {s})")).unwrap_or_default()
                ));
                return (rec, None);
            }
            exec::End::Exited(status) if !status.success() => {
                rec.status = Status::Failed;
                let why = match (run.code(), run.signal()) {
                    (Some(code), _) => format!("exit status {code}"),
                    (None, Some(sig)) => format!("killed by signal {sig}"),
                    (None, None) => "failed".to_string(),
                };
                rec.error = Some(match stderr {
                    Some(s) => format!("{why}: {s}"),
                    None => why,
                });
            }
            exec::End::Exited(_) => {}
        }
        if run.stdout_truncated {
            rec.status = Status::Failed;
            rec.error = Some(format!("output longer than {} bytes; not written", self.opts.max_output_bytes));
            return (rec, None);
        }
        if run.pipes_abandoned {
            rec.status = Status::Failed;
            rec.error = Some("output pipe held open by a leftover process; output may be incomplete".into());
        }
        // A failed command's output is kept only when it said something.
        if rec.status != Status::Ok && run.stdout.is_empty() {
            return (rec, None);
        }
        (rec, Some(run.stdout))
    }

    /// The start of a command's standard error for the manifest: one line of at most 300
    /// characters, secrets redacted; None when it was silent.
    fn excerpt(&mut self, artifact: &str, stderr: &[u8]) -> Option<String> {
        let text = String::from_utf8_lossy(stderr);
        let joined = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" | ");
        if joined.is_empty() {
            return None;
        }
        let cut: String = joined.chars().take(300).collect();
        let rel = format!("{}/{artifact}", self.rel);
        // A throwaway context: these redactions are not part of any artifact.
        let mut ctx = ParseContext::new(self.ctx.redactor.clone());
        Some(scrub::free_text(&mut ctx, &rel, &cut))
    }

    /// Runs one command into one artifact. Returns what was written when the command
    /// succeeded.
    fn simple(
        &mut self,
        artifact: &str,
        tool: &str,
        args: &[&str],
        how: Scrub,
    ) -> Result<Option<Vec<u8>>, CollectError> {
        let cmd = Cmd { tool, args: args.iter().map(OsString::from).collect(), mount_ns: false };
        let (mut rec, out) = self.run(artifact, &cmd);
        let Some(out) = out else {
            self.report.commands.push(rec);
            return Ok(None);
        };
        let ok = rec.status == Status::Ok;
        let (bytes, n) = self.scrub(artifact, out, how);
        rec.redactions = n;
        let written = self.write(artifact, &bytes);
        rec.written = written.is_ok();
        self.report.commands.push(rec);
        written?;
        // A failed command's partial output is written for people, not used further.
        Ok(ok.then_some(bytes))
    }

    /// `wg-dump.txt`: `wg show all dump` restricted to this namespace's interfaces.
    ///
    /// With wireguard-go, `wg show all` talks to every socket in /var/run/wireguard, those
    /// of other namespaces included (and may hang on a stale one). So: `wg show
    /// interfaces`, keep the names that are links here, and `wg show IFACE dump` each,
    /// prefixing the interface column as `all dump` does.
    fn wireguard(&mut self, links: Option<Vec<String>>) -> Result<(), CollectError> {
        let artifact = "wg-dump.txt";
        let Some(links) = links else {
            let mut rec = self.record(artifact, SystemTime::now(), Status::Skipped);
            rec.command = Some("wg show all dump".into());
            rec.error = Some(
                "the interface list (ip -j -d link show) is missing, so this namespace's WireGuard \
                              interfaces are unknown"
                    .into(),
            );
            self.report.commands.push(rec);
            return Ok(());
        };
        let list = Cmd { tool: "wg", args: vec!["show".into(), "interfaces".into()], mount_ns: false };
        let (rec, out) = self.run(artifact, &list);
        let ok = rec.status == Status::Ok;
        self.report.commands.push(rec);
        let Some(out) = out.filter(|_| ok) else {
            return Ok(());
        };
        let mut names: Vec<String> = Vec::new();
        for name in String::from_utf8_lossy(&out).split_whitespace() {
            if links.iter().any(|l| l == name) && !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        let mut dump = String::new();
        let mut bytes = 0u64;
        for name in &names {
            let cmd = Cmd { tool: "wg", args: vec!["show".into(), name.into(), "dump".into()], mount_ns: false };
            let (rec, out) = self.run(artifact, &cmd);
            let ok = rec.status == Status::Ok;
            bytes = bytes.saturating_add(rec.bytes);
            self.report.commands.push(rec);
            // A failed dump is not half-kept: a peer list cut short would read as complete.
            if let Some(out) = out.filter(|_| ok) {
                for line in String::from_utf8_lossy(&out).lines().filter(|l| !l.trim().is_empty()) {
                    let _ = writeln!(dump, "{name}\t{line}");
                }
            }
        }
        let rel = format!("{}/{artifact}", self.rel);
        let before = self.ctx.redactions.len();
        let (text, report) = scrub::wg_dump(&mut self.ctx, &rel, &dump);
        let redactions = self.ctx.redactions.len() - before;
        let started = SystemTime::now();
        let written = self.write(artifact, text.as_bytes());
        // The assembled file gets its own record so the manifest says it was written.
        let mut rec =
            self.record(artifact, started, if report.dropped_lines == 0 { Status::Ok } else { Status::Failed });
        rec.command = Some(format!("wg show all dump (as wg show IFACE dump for {})", describe_list(&names)));
        rec.written = written.is_ok();
        rec.bytes = bytes;
        rec.redactions = redactions;
        if report.dropped_lines > 0 {
            rec.error =
                Some(format!("{} line(s) were not `wg show dump` lines and were left out", report.dropped_lines));
        }
        self.report.commands.push(rec);
        written
    }

    /// `swanctl-list-sas.txt`, when a VICI socket is there to ask.
    fn swanctl_sas(&mut self) -> Result<(), CollectError> {
        let artifact = "swanctl-list-sas.txt";
        let uri = self.target.swanctl_uri.clone().or_else(|| self.opts.swanctl_uri.clone());
        if uri.is_none() && self.target.mount_ns_pid.is_none() {
            if let Some(ns) = &self.target.netns {
                // /run is shared: the default socket is the host's charon, whose SAs
                // would be reported as this namespace's.
                let mut rec = self.record(artifact, SystemTime::now(), Status::Skipped);
                rec.command = Some("swanctl --list-sas".into());
                rec.error = Some(format!(
                    "the default VICI socket belongs to the host's charon, not to namespace {ns}; give \
                     --swanctl-uri to ask a charon of this namespace"
                ));
                self.report.commands.push(rec);
                return Ok(());
            }
        }
        let socket = match uri.as_deref() {
            None => Some("/var/run/charon.vici".to_string()),
            Some(u) => u.strip_prefix("unix://").map(str::to_string),
        };
        if let Some(socket) = socket {
            let seen = match self.target.mount_ns_pid {
                Some(pid) => PathBuf::from(format!("/proc/{pid}/root")).join(socket.trim_start_matches('/')),
                None => PathBuf::from(&socket),
            };
            if !seen.exists() {
                let mut rec = self.record(artifact, SystemTime::now(), Status::Skipped);
                rec.command = Some("swanctl --list-sas".into());
                rec.error = Some(format!("no VICI socket at {socket} (charon not running here?)"));
                self.report.commands.push(rec);
                return Ok(());
            }
        }
        let mut args: Vec<OsString> = vec!["--list-sas".into()];
        if let Some(u) = &uri {
            args.extend(["--uri".into(), u.into()]);
        }
        let cmd = Cmd { tool: "swanctl", args, mount_ns: true };
        let (mut rec, out) = self.run(artifact, &cmd);
        if let Some(out) = out {
            let written = self.write(artifact, &out);
            rec.written = written.is_ok();
            self.report.commands.push(rec);
            return written;
        }
        self.report.commands.push(rec);
        Ok(())
    }

    /// Where `entry` (`resolv.conf`, `wireguard`, `cni/net.d`) of this host's /etc is.
    fn etc(&self, entry: &str) -> PathBuf {
        if let Some(file) = self.target.etc_files.get(entry) {
            return file.clone();
        }
        if let Some(dir) = &self.target.etc_dir {
            return dir.join(entry);
        }
        if let Some(pid) = self.target.mount_ns_pid {
            return PathBuf::from(format!("/proc/{pid}/root/etc")).join(entry);
        }
        if let Some(ns) = &self.target.netns {
            // `ip netns exec` bind-mounts each entry of /etc/netns/NS over /etc.
            let top = entry.split('/').next().unwrap_or(entry);
            let overlay = Path::new("/etc/netns").join(ns);
            if overlay.join(top).exists() {
                return overlay.join(entry);
            }
        }
        Path::new("/etc").join(entry)
    }

    /// Whether `entry` of a namespace's /etc is really the host's (no /etc/netns overlay,
    /// no folder or mount namespace of its own).
    fn etc_is_the_hosts(&self, entry: &str) -> bool {
        let Some(ns) = &self.target.netns else {
            return false;
        };
        self.target.etc_dir.is_none()
            && self.target.mount_ns_pid.is_none()
            && !Path::new("/etc/netns").join(ns).join(entry.split('/').next().unwrap_or(entry)).exists()
    }

    /// `wireguard/*.conf`. A namespace that sees the host's /etc/wireguard only gets the
    /// configs of its own interfaces: the others describe the host's tunnels and would
    /// read as configured-but-not-running interfaces of the namespace.
    fn wireguard_configs(&mut self, links: Option<&[String]>) -> Result<(), CollectError> {
        let only = match (self.etc_is_the_hosts("wireguard"), links) {
            (false, _) => None,
            (true, Some(links)) => Some(links.to_vec()),
            (true, None) => Some(Vec::new()),
        };
        self.copy_dir("wireguard", "wireguard", &[".conf"], Scrub::WgQuick, only.as_deref())
    }

    /// Copies the file `etc_entry` to `artifact`, redacted as `how` says.
    fn copy_file(&mut self, etc_entry: &str, artifact: &str, how: Scrub) -> Result<(), CollectError> {
        let path = self.etc(etc_entry);
        self.copy_path(&path, artifact, how)
    }

    fn copy_path(&mut self, path: &Path, artifact: &str, how: Scrub) -> Result<(), CollectError> {
        let clock = Instant::now();
        let mut rec = self.record(artifact, SystemTime::now(), Status::Ok);
        rec.file = Some(path.display().to_string());
        let data = match read_limited(path, self.opts.max_file_bytes) {
            Ok(d) => d,
            Err(ReadError::Absent) => {
                rec.status = Status::Absent;
                self.report.commands.push(rec);
                return Ok(());
            }
            Err(ReadError::Other(msg)) => {
                rec.status = Status::Failed;
                rec.error = Some(msg);
                self.report.commands.push(rec);
                return Ok(());
            }
        };
        rec.bytes = u64::try_from(data.len()).unwrap_or(u64::MAX);
        let (bytes, n) = self.scrub(artifact, data, how);
        rec.redactions = n;
        let written = self.write(artifact, &bytes);
        rec.written = written.is_ok();
        rec.duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.report.commands.push(rec);
        written
    }

    /// Copies the regular files of folder `etc_entry` whose names end in one of
    /// `suffixes` to `artifact_dir/`.
    fn copy_dir(
        &mut self,
        etc_entry: &str,
        artifact_dir: &str,
        suffixes: &[&str],
        how: Scrub,
        only_stems: Option<&[String]>,
    ) -> Result<(), CollectError> {
        let dir = self.etc(etc_entry);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                let absent = e.kind() == std::io::ErrorKind::NotFound;
                let mut rec = self.record(
                    &format!("{artifact_dir}/"),
                    SystemTime::now(),
                    if absent { Status::Absent } else { Status::Failed },
                );
                rec.file = Some(dir.display().to_string());
                if !absent {
                    rec.error = Some(format!("cannot list: {e}"));
                }
                self.report.commands.push(rec);
                return Ok(());
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.') && suffixes.iter().any(|s| n.ends_with(s)))
            // Same rule as host names: the name becomes a path inside the bundle.
            .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+')))
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            // Follows symlinks (configs are often linked); only regular files are copied.
            if !fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                continue;
            }
            let stem = suffixes.iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
            if only_stems.is_some_and(|only| !only.iter().any(|o| o == stem)) {
                let mut rec = self.record(&format!("{artifact_dir}/{name}"), SystemTime::now(), Status::Skipped);
                rec.file = Some(path.display().to_string());
                rec.error = Some(format!(
                    "{stem} is not an interface of this namespace; the host's {} is not copied into it",
                    dir.display()
                ));
                self.report.commands.push(rec);
                continue;
            }
            self.copy_path(&path, &format!("{artifact_dir}/{name}"), how)?;
        }
        Ok(())
    }
}

fn describe_list(names: &[String]) -> String {
    if names.is_empty() {
        "no interface of this namespace".to_string()
    } else {
        names.join(", ")
    }
}

enum ReadError {
    Absent,
    Other(String),
}

fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadError::Absent),
        Err(e) => return Err(ReadError::Other(format!("cannot read: {e}"))),
    };
    if !meta.is_file() {
        return Err(ReadError::Other("not a regular file".into()));
    }
    if meta.len() > max {
        return Err(ReadError::Other(format!("{} bytes, over the limit of {max} bytes; not copied", meta.len())));
    }
    fs::read(path).map_err(|e| ReadError::Other(format!("cannot read: {e}")))
}

/// Whether `tool` is found in the search path `opts` would use.
pub fn tool_available(tool: &str, opts: &CollectOptions) -> bool {
    let path = opts.search_path.clone().unwrap_or_else(default_search_path);
    exec::which(tool, OsStr::new(&path)).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        for ok in ["node-1", "gw_1.example", "a"] {
            assert!(check_host_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", ".hidden", "a/b", "ns/pod", "with space", &"x".repeat(254)] {
            assert!(matches!(check_host_name(bad), Err(CollectError::InvalidHostName { .. })), "{bad}");
        }
    }

    #[test]
    fn netns_names() {
        assert!(matches!(check_netns("a/b"), Err(CollectError::InvalidNetns { .. })));
        assert!(matches!(check_netns(".."), Err(CollectError::InvalidNetns { .. })));
        assert!(matches!(check_netns("netsleuth-no-such-namespace-xyz"), Err(CollectError::NetnsNotFound { .. })));
    }

    #[test]
    fn link_names_of_ip_json() {
        let names = link_names(br#"[{"ifname":"lo"},{"ifname":"wg0","x":1},{"no":"name"}]"#);
        assert_eq!(names.as_deref(), Some(&["lo".to_string(), "wg0".to_string()][..]));
        assert_eq!(link_names(b"[{\"ifname\":\"lo\"}"), None, "cut short");
        assert_eq!(link_names(br#"{"ifname":"lo"}"#), None);
    }

    #[test]
    fn only_the_namespaces_own_wireguard_configs_when_etc_is_the_hosts() {
        let etc = tempfile::tempdir().expect("temp dir");
        let out = tempfile::tempdir().expect("temp dir");
        fs::create_dir_all(etc.path().join("wireguard")).expect("mkdir");
        for name in ["wg0.conf", "wg1.conf", "wg0.key"] {
            fs::write(etc.path().join("wireguard").join(name), "[Interface]\nListenPort = 1\n").expect("write");
        }
        let target = CollectTarget { etc_dir: Some(etc.path().to_path_buf()), ..CollectTarget::host("h") };
        let opts = CollectOptions::default();
        let mut c = Collector::new(&target, &opts, out.path().join("hosts/h"), &Redactor::from_salt("t"));
        c.copy_dir("wireguard", "wireguard", &[".conf"], Scrub::WgQuick, Some(&["wg0".to_string()])).expect("copies");
        assert_eq!(c.report.artifacts, ["hosts/h/wireguard/wg0.conf"]);
        let skipped: Vec<_> = c.report.commands.iter().filter(|r| r.status == Status::Skipped).collect();
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].artifact, "hosts/h/wireguard/wg1.conf");
        assert!(!out.path().join("hosts/h/wireguard/wg1.conf").exists());

        // Whose /etc a target sees.
        assert!(!c.etc_is_the_hosts("wireguard"), "own etc_dir");
        let ns = CollectTarget::netns("p", "nsh9-no-such-namespace-overlay");
        let c2 = Collector::new(&ns, &opts, out.path().join("hosts/p"), &Redactor::from_salt("t"));
        assert!(c2.etc_is_the_hosts("wireguard"));
        assert_eq!(c2.etc("cni/net.d"), Path::new("/etc/cni/net.d"));
        let host = CollectTarget::host("x");
        let c3 = Collector::new(&host, &opts, out.path().join("hosts/x"), &Redactor::from_salt("t"));
        assert!(!c3.etc_is_the_hosts("wireguard"));
        let pid = CollectTarget { mount_ns_pid: Some(42), ..CollectTarget::netns("m", "nsh9-x") };
        let c4 = Collector::new(&pid, &opts, out.path().join("hosts/m"), &Redactor::from_salt("t"));
        assert_eq!(c4.etc("swanctl/swanctl.conf"), Path::new("/proc/42/root/etc/swanctl/swanctl.conf"));
    }

    #[test]
    fn per_target_files_and_vici_socket() {
        let etc = tempfile::tempdir().expect("temp dir");
        let out = tempfile::tempdir().expect("temp dir");
        let resolv = etc.path().join("pod-a.resolv.conf");
        fs::write(&resolv, "nameserver 10.0.0.53\noptions ndots:5\n").expect("write");
        let sock = etc.path().join("run/charon.vici");
        let target = CollectTarget {
            etc_files: BTreeMap::from([("resolv.conf".to_string(), resolv.clone())]),
            swanctl_uri: Some(format!("unix://{}", sock.display())),
            ..CollectTarget::netns("p", "nsh9-no-such-namespace-files")
        };
        let opts = CollectOptions { swanctl_uri: Some("unix:///nsh9/global.vici".into()), ..CollectOptions::default() };
        let mut c = Collector::new(&target, &opts, out.path().join("hosts/p"), &Redactor::from_salt("t"));
        assert_eq!(c.etc("resolv.conf"), resolv, "the per-target file wins");
        assert_eq!(c.etc("swanctl/swanctl.conf"), Path::new("/etc/swanctl/swanctl.conf"), "other entries unchanged");
        c.copy_file("resolv.conf", "resolv.conf", Scrub::None).expect("copies");
        let copied = fs::read_to_string(out.path().join("hosts/p/resolv.conf")).expect("written");
        assert_eq!(copied, "nameserver 10.0.0.53\noptions ndots:5\n");
        // The target's socket, not the option's, is looked for (and it is not there).
        c.swanctl_sas().expect("records");
        let rec = c.report.commands.last().expect("a record");
        assert_eq!((rec.artifact.as_str(), rec.status), ("hosts/p/swanctl-list-sas.txt", Status::Skipped));
        let want = format!("no VICI socket at {}", sock.display());
        assert!(rec.error.as_deref().is_some_and(|e| e.starts_with(&want)), "{rec:?}");
    }

    #[test]
    fn missing_tool_is_recorded_not_fatal() {
        let root = tempfile::tempdir().expect("temp dir");
        let empty = tempfile::tempdir().expect("temp dir");
        let opts =
            CollectOptions { search_path: Some(empty.path().as_os_str().to_owned()), ..CollectOptions::default() };
        let target = CollectTarget { etc_dir: Some(empty.path().to_path_buf()), ..CollectTarget::host("h1") };
        let report = collect_host(&target, root.path(), &Redactor::from_salt("t"), &opts).expect("collects");
        assert_eq!(report.artifacts, ["hosts/h1/host.json"]);
        let ip = report.commands.iter().find(|c| c.artifact == "hosts/h1/ip-link.json").expect("ip link record");
        assert_eq!(ip.status, Status::MissingTool);
        assert!(ip.error.as_deref().is_some_and(|e| e.contains("`ip` not found")), "{ip:?}");
        let wg = report.commands.iter().find(|c| c.artifact == "hosts/h1/wg-dump.txt").expect("wg record");
        assert_eq!(wg.status, Status::Skipped);
        let resolv = report.commands.iter().find(|c| c.artifact == "hosts/h1/resolv.conf").expect("resolv record");
        assert_eq!(resolv.status, Status::Absent);
        // A second collection of the same host into the same bundle is refused.
        let again = collect_host(&target, root.path(), &Redactor::from_salt("t"), &opts);
        assert!(matches!(again, Err(CollectError::HostExists { .. })), "{again:?}");
    }
}
