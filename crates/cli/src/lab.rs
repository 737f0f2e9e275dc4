//! `netsleuth lab ...`: real networks in network namespaces from a scenario, with faults
//! injected and cleared by name. Arguments and output here; the work is in netsleuth-lab.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand, ValueEnum};
use netsleuth_lab::faults::{self, FaultRequest, StaticVisibility};
use netsleuth_lab::{scenario, Lab, LabStatus, StateDir, UpOptions};

use crate::app::Outcome;

pub(crate) const LAB_EXAMPLES: &str = "\
Examples:
  netsleuth lab scenarios
  netsleuth lab faults
  id=$(netsleuth lab up k8s-wireguard-site --fault udp-block:51820)
  netsleuth lab status --lab \"$id\"
  netsleuth lab exec --lab \"$id\" pod-a -- ping -c 3 10.20.1.10
  netsleuth lab inject --lab \"$id\" mtu-mismatch:mtu=1500
  netsleuth lab clear --lab \"$id\"
  netsleuth lab collect --lab \"$id\" -o bundle/
  netsleuth lab down --lab \"$id\"
  netsleuth lab cleanup

Needs root (network namespaces). Everything a lab makes is named nsl-<6 hex>-...; `lab down`
removes it, and `lab cleanup` removes what crashed runs left. See docs/lab.md.";

#[derive(Debug, Args)]
pub(crate) struct LabArgs {
    #[command(subcommand)]
    pub(crate) command: LabCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LabCommand {
    /// List the shipped scenarios.
    Scenarios(FormatArgs),
    /// The fault catalog: name, layer, what breaks, the diagnosis it should get.
    Faults(FormatArgs),
    /// Build a scenario in fresh namespaces and print the lab id (it runs until `lab down`).
    Up(UpArgs),
    /// Running labs, or one lab in detail.
    Status(StatusArgs),
    /// Run a command inside a lab host's network namespace; exits with its status.
    Exec(ExecArgs),
    /// Inject a fault (again with the same parameters: verified, not doubled).
    Inject(InjectArgs),
    /// Clear one fault, or all of them.
    Clear(ClearArgs),
    /// Tear a lab down: processes, namespaces, sockets, state.
    Down(DownArgs),
    /// Remove what crashed labs left behind (labs with a live owner or detached are kept).
    Cleanup(FormatArgs),
    /// Collect every host of a lab into one bundle (hosts/<host>/).
    Collect(CollectArgs),
    /// The lab's echo service and client (run inside lab namespaces).
    #[command(hide = true)]
    Echo(EchoArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct FormatArgs {
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// A shipped scenario name (`netsleuth lab scenarios`) or a scenario file.
    #[arg(value_name = "SCENARIO")]
    pub(crate) scenario: String,

    /// Inject a fault once the lab is up: NAME, NAME:VALUE or NAME:key=value,... (repeatable).
    #[arg(long = "fault", value_name = "NAME[:ARGS]", value_parser = parse_fault)]
    pub(crate) faults: Vec<FaultRequest>,

    /// Stay in the foreground and tear the lab down on Ctrl-C instead of leaving it running.
    #[arg(long)]
    pub(crate) hold: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LabSelect {
    /// The lab (`nsl-xxxxxx`); may be left out when only one lab runs.
    #[arg(long = "lab", value_name = "ID")]
    pub(crate) lab: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) select: LabSelect,
    #[command(flatten)]
    pub(crate) format: FormatArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    #[command(flatten)]
    pub(crate) select: LabSelect,
    /// The host (as named in the scenario).
    #[arg(value_name = "HOST")]
    pub(crate) host: String,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub(crate) cmd: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct InjectArgs {
    #[command(flatten)]
    pub(crate) select: LabSelect,
    /// NAME, NAME:VALUE or NAME:key=value,... (`netsleuth lab faults` lists them).
    #[arg(value_name = "FAULT", value_parser = parse_fault)]
    pub(crate) fault: FaultRequest,
}

#[derive(Debug, Args)]
pub(crate) struct ClearArgs {
    #[command(flatten)]
    pub(crate) select: LabSelect,
    /// The fault to clear (default: all active faults).
    #[arg(value_name = "FAULT")]
    pub(crate) fault: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct DownArgs {
    /// The lab (`nsl-xxxxxx`); may be left out when only one lab runs.
    #[arg(long = "lab", value_name = "ID", conflicts_with = "all")]
    pub(crate) lab: Option<String>,
    /// Tear down every lab.
    #[arg(long)]
    pub(crate) all: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CollectArgs {
    #[command(flatten)]
    pub(crate) select: LabSelect,
    /// Output: a bundle folder, or a gzip tarball when the name ends in .tar.gz or .tgz.
    #[arg(long, short, value_name = "DIR|FILE.tar.gz")]
    pub(crate) output: PathBuf,
    /// Write into a non-empty folder or replace an existing tarball.
    #[arg(long)]
    pub(crate) force: bool,
    /// Salt of the key that fingerprints redacted secrets.
    #[arg(long, env = "NETSLEUTH_SALT", hide_env_values = true, value_name = "SALT")]
    pub(crate) salt: Option<String>,
    /// Time limit of each command, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600), value_name = "SECS")]
    pub(crate) timeout: u64,
}

#[derive(Debug, Args)]
pub(crate) struct EchoArgs {
    /// serve|tcp|udp|http|udp-flows and their flags (see `netsleuth lab echo --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
    pub(crate) args: Vec<String>,
}

fn parse_fault(s: &str) -> Result<FaultRequest, String> {
    s.parse()
}

/// Runs `netsleuth lab ...`.
pub(crate) fn run(args: LabArgs) -> Result<Outcome> {
    match args.command {
        LabCommand::Scenarios(a) => scenarios(a.format),
        LabCommand::Faults(a) => fault_catalog(a.format),
        LabCommand::Up(a) => up(a),
        LabCommand::Status(a) => status(&a),
        LabCommand::Exec(a) => exec(&a),
        LabCommand::Inject(a) => inject(&a),
        LabCommand::Clear(a) => clear(&a),
        LabCommand::Down(a) => down(&a),
        LabCommand::Cleanup(a) => cleanup(a.format),
        LabCommand::Collect(a) => collect(&a),
        LabCommand::Echo(a) => {
            // The echo service runs until killed; the client exits with its own status
            // (0 success, 1 failed exchange, 2 usage), which scripts rely on.
            let code = netsleuth_lab::echo::main_with_args(&a.args);
            std::process::exit(code);
        }
    }
}

/// Writes to standard output; a closed pipe is not an error.
fn out(text: &str) -> Result<()> {
    let mut w = io::stdout().lock();
    match w.write_all(text.as_bytes()).and_then(|()| w.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write to standard output"))
        }
        _ => Ok(()),
    }
}

fn note(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

fn json(v: serde_json::Value) -> Result<String> {
    Ok(format!("{}\n", serde_json::to_string_pretty(&v)?))
}

fn require_root() -> Result<()> {
    if netsleuth_lab::is_root() {
        Ok(())
    } else {
        Err(netsleuth_lab::LabError::NotRoot.into())
    }
}

fn attach(select: &LabSelect) -> Result<Lab> {
    let dir = StateDir::default();
    Ok(match &select.lab {
        Some(id) => Lab::attach(&dir, id)?,
        None => Lab::attach_only(&dir)?,
    })
}

/// `netsleuth lab echo` as a program path plus arguments, for the echo processes.
fn echo_command() -> Result<Vec<String>> {
    let exe = std::env::current_exe().context("cannot tell where the netsleuth binary is")?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let exe = exe.to_str().context("the path of the netsleuth binary is not UTF-8")?.to_string();
    Ok(vec![exe, "lab".into(), "echo".into()])
}

fn scenarios(format: Format) -> Result<Outcome> {
    let mut rows = Vec::new();
    for name in scenario::builtin_names() {
        let s = scenario::load(name)?;
        rows.push((name, s.scenario.hosts.len(), s.scenario.description.clone()));
    }
    match format {
        Format::Json => out(&json(serde_json::Value::Array(
            rows.iter().map(|(n, h, d)| serde_json::json!({"name": n, "hosts": h, "description": d})).collect(),
        ))?)?,
        Format::Text => {
            let mut t = String::from("NAME                 HOSTS  DESCRIPTION\n");
            for (n, h, d) in rows {
                t.push_str(&format!("{n:<20} {h:>5}  {d}\n"));
            }
            t.push_str("Scenario files can also be given by path: netsleuth lab up ./my-scenario.yaml\n");
            out(&t)?;
        }
    }
    Ok(Outcome::Clean)
}

fn fault_catalog(format: Format) -> Result<Outcome> {
    let catalog = faults::catalog();
    if format == Format::Json {
        out(&json(serde_json::to_value(catalog)?)?)?;
        return Ok(Outcome::Clean);
    }
    let mut t = String::from("NAME                   LAYER    STATIC RULES          EXPECTED DIAGNOSIS\n");
    for f in catalog {
        let rules = if f.expected_rules.is_empty() { "-".to_string() } else { f.expected_rules.join(",") };
        let when = match f.static_visibility {
            StaticVisibility::Immediate => "",
            StaticVisibility::FromUp => " (at up)",
            StaticVisibility::None => " (live)",
        };
        t.push_str(&format!(
            "{:<22} {:<8} {:<21} {}\n",
            f.name,
            f.layer.as_str(),
            format!("{rules}{when}"),
            f.diagnosis
        ));
        t.push_str(&format!("    breaks: {}\n", f.breaks));
        let params: Vec<String> = f
            .params
            .iter()
            .map(|p| match (p.default, p.optional) {
                (Some(d), _) => format!("{}={d}", p.name),
                (None, true) => format!("[{}]", p.name),
                (None, false) => p.name.to_string(),
            })
            .collect();
        let primary = f.primary.map(|p| format!("; {}:VALUE sets {p}", f.name)).unwrap_or_default();
        t.push_str(&format!("    params: {}{primary}\n", params.join(" ")));
    }
    t.push_str(
        "STATIC RULES: what `netsleuth analyze` reports on a bundle collected from the lab; (at up): only when the \
         fault was there before the tunnel came up; (live): only traffic shows it.\n",
    );
    out(&t)?;
    Ok(Outcome::Clean)
}

fn up(a: UpArgs) -> Result<Outcome> {
    require_root()?;
    let sc = scenario::load(&a.scenario)?;
    let cancel = netsleuth_lab::interrupt::install().context("cannot install the Ctrl-C handler")?;
    let mut opts = UpOptions::new(echo_command()?);
    opts.faults = a.faults.clone();
    opts.cancel = Some(cancel.clone());
    let started = Instant::now();
    note(&format!("netsleuth: building {} ({} hosts) …", sc.scenario.name(), sc.scenario.hosts.len()));
    let lab = Lab::up(&sc, &opts)?;
    let id = lab.id().to_string();
    let mut details = format!("lab {id} is up: {} in {:.1} s", sc.scenario.name(), started.elapsed().as_secs_f64());
    if let Some(p) = &sc.scenario.path {
        details.push_str(&format!("\n  path: {} → {}", p.value.source, p.value.target));
    }
    for f in lab.faults() {
        let params: Vec<String> = f.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        details.push_str(&format!("\n  fault: {} ({})", f.name, params.join(", ")));
    }
    if a.hold {
        out(&format!("{id}\n"))?;
        note(&format!("{details}\n  Ctrl-C tears it down."));
        // Waits for the user, not for the network: nothing is sent meanwhile.
        while !cancel.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
        }
        let report = lab.down()?;
        note(&format!(
            "lab {id} removed: {} namespaces, {} processes",
            report.namespaces_removed, report.processes_stopped
        ));
        return Ok(Outcome::Clean);
    }
    let id = lab.detach()?;
    out(&format!("{id}\n"))?;
    note(&format!(
        "{details}\n  next: netsleuth lab status --lab {id}\n        netsleuth lab exec --lab {id} HOST -- CMD\n        \
         netsleuth lab down --lab {id}"
    ));
    Ok(Outcome::Clean)
}

fn age(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        _ => format!("{}h", secs / 3600),
    }
}

fn status_line(s: &LabStatus) -> String {
    let present = s.hosts.iter().filter(|h| h.present).count();
    let alive = s.processes.iter().filter(|p| p.alive).count();
    let faults: Vec<&str> = s.faults.iter().map(|f| f.name.as_str()).collect();
    let owner = if s.orphaned {
        "ORPHANED (owner died; `netsleuth lab cleanup` removes it)"
    } else if s.detached {
        "detached"
    } else {
        "owned by a running process"
    };
    format!(
        "{}  {}  up {}  {}  {present}/{} namespaces  {alive}/{} processes  faults: {}{}\n",
        s.id,
        s.scenario,
        age(s.age_s),
        owner,
        s.hosts.len(),
        s.processes.len(),
        if faults.is_empty() { "none".to_string() } else { faults.join(",") },
        if s.ready { "" } else { "  (setup did not finish)" }
    )
}

fn status(a: &StatusArgs) -> Result<Outcome> {
    if !netsleuth_lab::is_root() {
        note("note: not root: WireGuard handshakes cannot be read and are not shown");
    }
    let dir = StateDir::default();
    let Some(id) = &a.select.lab else {
        let mut all = Vec::new();
        let mut problems = Vec::new();
        for id in dir.list() {
            match Lab::attach(&dir, &id) {
                Ok(l) => all.push(l.status()),
                Err(e) => problems.push(format!("{id}: {e}")),
            }
        }
        match a.format.format {
            Format::Json => out(&json(serde_json::to_value(&all)?)?)?,
            Format::Text if all.is_empty() => out("no lab is running\n")?,
            Format::Text => out(&all.iter().map(status_line).collect::<String>())?,
        }
        for p in problems {
            note(&format!("warning: {p}"));
        }
        return Ok(Outcome::Clean);
    };
    let s = Lab::attach(&dir, id)?.status();
    if a.format.format == Format::Json {
        out(&json(serde_json::to_value(&s)?)?)?;
        return Ok(Outcome::Clean);
    }
    let mut t = status_line(&s);
    t.push_str(&format!("scenario: {}\n", s.scenario_source));
    if let Some((src, dst)) = &s.path {
        t.push_str(&format!("path: {src} → {dst}\n"));
    }
    t.push_str("hosts:\n");
    for h in &s.hosts {
        t.push_str(&format!(
            "  {:<10} {:<8} {}{}\n",
            h.name,
            h.role.as_deref().unwrap_or("-"),
            h.netns,
            if h.present { "" } else { "  MISSING" }
        ));
    }
    t.push_str("processes:\n");
    for p in &s.processes {
        t.push_str(&format!(
            "  {:<10} {:<32} pid {:<8} {}\n",
            p.host,
            p.what,
            p.pid,
            if p.alive { "running" } else { "GONE" }
        ));
    }
    for w in &s.wireguard {
        t.push_str(&format!("wireguard {} on {} ({}), public key {}\n", w.name, w.host, w.ifname, w.public_key));
        for p in &w.peers {
            let hs = p.handshake_age_s.map_or_else(|| "never".to_string(), |a| format!("{} ago", age(a)));
            t.push_str(&format!("  peer {}  handshake {hs}\n", p.public_key));
        }
    }
    for f in &s.faults {
        let params: Vec<String> = f.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        t.push_str(&format!("fault {} ({})\n", f.name, params.join(", ")));
    }
    out(&t)?;
    Ok(Outcome::Clean)
}

fn exec(a: &ExecArgs) -> Result<Outcome> {
    require_root()?;
    let lab = attach(&a.select)?;
    let ns = lab.netns(&a.host)?.to_string();
    // Interactive: the command gets the terminal (and Ctrl-C) directly.
    let status = std::process::Command::new("ip")
        .args(["netns", "exec", &ns])
        .args(&a.cmd)
        .status()
        .with_context(|| format!("cannot run ip netns exec {ns}"))?;
    match status.code() {
        Some(0) => Ok(Outcome::Clean),
        Some(code) => std::process::exit(code),
        None => bail!("{} was killed by a signal", a.cmd.first().map_or("the command", String::as_str)),
    }
}

fn inject(a: &InjectArgs) -> Result<Outcome> {
    require_root()?;
    let mut lab = attach(&a.select)?;
    let params = lab.inject(&a.fault)?;
    let p: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    out(&format!("injected {} ({}) into {}\n", a.fault.name, p.join(", "), lab.id()))?;
    Ok(Outcome::Clean)
}

fn clear(a: &ClearArgs) -> Result<Outcome> {
    require_root()?;
    let mut lab = attach(&a.select)?;
    let cleared = lab.clear(a.fault.as_deref())?;
    if cleared.is_empty() {
        out(&format!("nothing to clear in {}\n", lab.id()))?;
    } else {
        out(&format!("cleared {} in {}\n", cleared.join(", "), lab.id()))?;
    }
    Ok(Outcome::Clean)
}

fn down(a: &DownArgs) -> Result<Outcome> {
    require_root()?;
    let dir = StateDir::default();
    let results = if a.all {
        netsleuth_lab::down_all(&dir)
    } else {
        let lab = match &a.lab {
            Some(id) => Lab::attach(&dir, id)?,
            None => Lab::attach_only(&dir)?,
        };
        vec![lab.down()]
    };
    if results.is_empty() {
        out("no lab is running\n")?;
    }
    let mut failed = false;
    for r in results {
        match r {
            Ok(rep) => {
                out(&format!(
                    "removed lab {}: {} namespaces, {} processes, {} sockets\n",
                    rep.id, rep.namespaces_removed, rep.processes_stopped, rep.sockets_removed
                ))?;
                for p in &rep.problems {
                    note(&format!("warning: {p}"));
                    failed = true;
                }
            }
            Err(e) => {
                note(&format!("error: {e}"));
                failed = true;
            }
        }
    }
    if failed {
        bail!("some lab objects could not be removed (see above); `netsleuth lab cleanup` retries");
    }
    Ok(Outcome::Clean)
}

fn cleanup(format: Format) -> Result<Outcome> {
    require_root()?;
    let r = netsleuth_lab::cleanup_leftovers(&StateDir::default())?;
    if format == Format::Json {
        out(&json(serde_json::to_value(&r)?)?)?;
    } else {
        let mut t = String::new();
        for l in &r.orphaned_labs {
            t.push_str(&format!(
                "removed orphaned lab {}: {} namespaces, {} processes\n",
                l.id, l.namespaces_removed, l.processes_stopped
            ));
        }
        if !r.stray_ids.is_empty() {
            t.push_str(&format!(
                "removed leftovers of {}: {} namespaces, {} processes, {} sockets\n",
                r.stray_ids.join(", "),
                r.namespaces_removed,
                r.processes_stopped,
                r.sockets_removed
            ));
        }
        if !r.removed_anything() {
            t.push_str("nothing left behind\n");
        }
        if !r.live_labs.is_empty() {
            t.push_str(&format!("kept running labs: {} (`netsleuth lab down` removes them)\n", r.live_labs.join(", ")));
        }
        out(&t)?;
    }
    for p in &r.problems {
        note(&format!("warning: {p}"));
    }
    Ok(Outcome::Clean)
}

fn collect(a: &CollectArgs) -> Result<Outcome> {
    use netsleuth_probe::collect::{collect_bundle, CollectOptions};
    require_root()?;
    let lab = attach(&a.select)?;
    let targets = lab.collect_targets();
    let redactor = match &a.salt {
        Some(s) => netsleuth_ingest::Redactor::from_salt(s),
        None => netsleuth_ingest::Redactor::random(),
    };
    let opts = CollectOptions { timeout: Duration::from_secs(a.timeout), ..CollectOptions::default() };
    let report = collect_bundle(&targets, &a.output, a.force, &redactor, &opts)?;
    let problems: usize = report.hosts.iter().map(|h| h.problems().count()).sum();
    out(&format!(
        "collected {} hosts of lab {} into {} ({problems} commands not collected; manifest.json says which)\n",
        report.hosts.len(),
        lab.id(),
        report.output.display()
    ))?;
    Ok(Outcome::Clean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn lab(args: &[&str]) -> LabCommand {
        let mut all = vec!["netsleuth", "lab"];
        all.extend_from_slice(args);
        let cli = Cli::try_parse_from(all).unwrap_or_else(|e| panic!("{e}"));
        match cli.command {
            Command::Lab(l) => l.command,
            other => panic!("lab expected, got {other:?}"),
        }
    }

    #[test]
    fn lab_commands_parse() {
        let LabCommand::Up(u) =
            lab(&["up", "k8s-wireguard-site", "--fault", "udp-block:51820", "--fault", "ip-forward-off"])
        else {
            panic!("up")
        };
        assert_eq!(u.scenario, "k8s-wireguard-site");
        assert_eq!(u.faults.len(), 2);
        assert_eq!(u.faults[0].positional.as_deref(), Some("51820"));
        let LabCommand::Exec(e) = lab(&["exec", "--lab", "nsl-abcdef", "pod-a", "--", "ping", "-c", "1", "10.20.1.10"])
        else {
            panic!("exec")
        };
        assert_eq!((e.select.lab.as_deref(), e.host.as_str()), (Some("nsl-abcdef"), "pod-a"));
        assert_eq!(e.cmd, ["ping", "-c", "1", "10.20.1.10"]);
        let LabCommand::Inject(i) = lab(&["inject", "wg-allowedips-wrong:allowed=10.99.0.2/32,10.21.0.0/16"]) else {
            panic!("inject")
        };
        assert_eq!(i.fault.params.get("allowed").map(String::as_str), Some("10.99.0.2/32,10.21.0.0/16"));
        let LabCommand::Down(d) = lab(&["down", "--all"]) else { panic!("down") };
        assert!(d.all && d.lab.is_none());
        let LabCommand::Echo(e) = lab(&["echo", "tcp", "10.0.0.1:5", "--bytes", "3"]) else { panic!("echo") };
        assert_eq!(e.args, ["tcp", "10.0.0.1:5", "--bytes", "3"]);
        assert!(matches!(lab(&["clear"]), LabCommand::Clear(ClearArgs { fault: None, .. })));
    }

    #[test]
    fn bad_lab_arguments_are_usage_errors() {
        for bad in [
            vec!["netsleuth", "lab", "up", "k8s-wireguard-site", "--fault", "cosmic-rays"],
            vec!["netsleuth", "lab", "exec", "pod-a"],
            vec!["netsleuth", "lab", "down", "--all", "--lab", "nsl-abcdef"],
            vec!["netsleuth", "lab", "inject"],
        ] {
            let err = Cli::try_parse_from(&bad).expect_err("must be rejected");
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn catalog_and_scenarios_render() {
        assert_eq!(fault_catalog(Format::Json).ok(), Some(Outcome::Clean));
        assert_eq!(scenarios(Format::Text).ok(), Some(Outcome::Clean));
        assert_eq!(age(59), "59s");
        assert_eq!(age(600), "10m");
        assert_eq!(age(7200), "2h");
    }
}
