//! `netsleuth collect`: the arguments and the wiring to `netsleuth_probe::collect`, which
//! turns this host (or a network namespace) into a bundle.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{ArgGroup, Args, ValueEnum};
use netsleuth_ingest::Redactor;
use netsleuth_model::host::HostRole;
use netsleuth_probe::collect::{self, CollectOptions, CollectTarget, Status};

use crate::app::Outcome;

pub(crate) const COLLECT_EXAMPLES: &str = "\
Examples:
  netsleuth collect --host -o bundle/
  netsleuth collect --host --role gateway --name gw-1 -o gw-1.tar.gz
  netsleuth collect --host --netns blue --role pod --node node-1 -o bundle/ --force
  NETSLEUTH_SALT=team-secret netsleuth collect --host -o bundle/

Run as root. A missing tool or failing command is recorded in manifest.json, not fatal.
Secrets (WireGuard private/preshared keys, strongSwan secrets, PEM private keys) are
written as <redacted:FINGERPRINT>. See docs/collect.md.";

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["host"])))]
pub(crate) struct CollectArgs {
    /// Collect host networking state (links, addresses, routes, rules, firewall,
    /// WireGuard, strongSwan, sysctls, DNS, CNI, conntrack).
    #[arg(long)]
    pub(crate) host: bool,

    /// Collect inside this network namespace (`ip netns exec NAME`), as listed by `ip netns list`.
    #[arg(long, value_name = "NAME")]
    pub(crate) netns: Option<String>,

    /// Folder name under hosts/ (default: the namespace name, else the host name).
    #[arg(long, value_name = "HOSTNAME")]
    pub(crate) name: Option<String>,

    /// The host's role, written to host.json.
    #[arg(long, value_enum)]
    pub(crate) role: Option<RoleArg>,

    /// The node this host (pod namespace) runs on, written to host.json.
    #[arg(long, value_name = "NODE")]
    pub(crate) node: Option<String>,

    /// The pod (`namespace/name`) this network namespace belongs to, written to host.json.
    #[arg(long, value_name = "NS/NAME")]
    pub(crate) pod: Option<String>,

    /// Output: a bundle folder, or a gzip tarball when the name ends in .tar.gz or .tgz.
    #[arg(long, short, value_name = "DIR|FILE.tar.gz")]
    pub(crate) output: PathBuf,

    /// Write into a non-empty folder (replacing manifest.json and this host's folder) or
    /// replace an existing tarball.
    #[arg(long)]
    pub(crate) force: bool,

    /// Salt of the key that fingerprints redacted secrets; use the same salt to compare
    /// bundles. By default every run uses a random key.
    #[arg(long, env = "NETSLEUTH_SALT", hide_env_values = true, value_name = "SALT")]
    pub(crate) salt: Option<String>,

    /// VICI socket of charon for `swanctl --list-sas` (default unix:///var/run/charon.vici).
    #[arg(long, value_name = "URI")]
    pub(crate) swanctl_uri: Option<String>,

    /// Time limit of each command, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600), value_name = "SECS")]
    pub(crate) timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RoleArg {
    Node,
    Gateway,
    Pod,
}

impl From<RoleArg> for HostRole {
    fn from(r: RoleArg) -> HostRole {
        match r {
            RoleArg::Node => HostRole::Node,
            RoleArg::Gateway => HostRole::Gateway,
            RoleArg::Pod => HostRole::Pod,
        }
    }
}

/// Runs `netsleuth collect`: exit 0 once the bundle is written, whatever single commands
/// did (the manifest and the summary say); errors only when nothing could be written.
pub(crate) fn run(args: &CollectArgs) -> Result<Outcome> {
    let name = match &args.name {
        Some(n) => n.clone(),
        None => collect::default_host_name(args.netns.as_deref())
            .context("cannot tell the host name; give one with --name")?,
    };
    let target = CollectTarget {
        name,
        netns: args.netns.clone(),
        role: args.role.map(HostRole::from),
        node: args.node.clone(),
        pod: args.pod.clone(),
        ..CollectTarget::default()
    };
    let redactor = match &args.salt {
        Some(salt) => Redactor::from_salt(salt),
        None => Redactor::random(),
    };
    let opts = CollectOptions {
        timeout: Duration::from_secs(args.timeout),
        swanctl_uri: args.swanctl_uri.clone(),
        ..CollectOptions::default()
    };
    let report = collect::collect_bundle(std::slice::from_ref(&target), &args.output, args.force, &redactor, &opts)?;

    let mut out = Vec::new();
    for host in &report.hosts {
        let problems: Vec<_> = host.problems().collect();
        let _ = writeln!(
            out,
            "collected host {} ({} files{}) into {}",
            host.name,
            host.artifacts.len(),
            if problems.is_empty() { String::new() } else { format!(", {} not collected", problems.len()) },
            report.output.display()
        );
        for p in problems {
            let what = p.command.as_deref().or(p.file.as_deref()).unwrap_or(&p.artifact);
            let status = match p.status {
                Status::Failed => "failed",
                Status::Timeout => "timed out",
                Status::MissingTool => "tool missing",
                Status::Skipped => "skipped",
                Status::Ok | Status::Absent => continue,
            };
            let _ = writeln!(out, "  {status}: {what}: {}", p.error.as_deref().unwrap_or("-"));
        }
    }
    let _ = writeln!(out, "manifest.json records every command; salt id {}", report.salt_id);
    let mut stdout = io::stdout().lock();
    match stdout.write_all(&out).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            return Err(anyhow::Error::new(e).context("cannot write to standard output"))
        }
        _ => {}
    }
    Ok(Outcome::Clean)
}
