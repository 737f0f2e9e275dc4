//! What each subcommand does: read, analyse, assemble the report, render, and decide the
//! exit code. Small functions so that the decisions can be unit-tested without a process.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anstream::{stream::RawStream, AutoStream, ColorChoice};
use anyhow::{Context as _, Result};
use clap::CommandFactory;
use netsleuth_analyze::{AnalyzeOptions, Rule};
use netsleuth_ingest::BundleOptions;
use netsleuth_model::{Finding, Network, Severity};
use netsleuth_report::{IngestSummary, Report, RuleInfo, Tool};

use crate::args::{
    AnalyzeConfig, Cli, ColorWhen, Command, CompletionsArgs, ExplainArgs, ListFormat, ReportFormat, RulesArgs,
};

/// How a successful run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing at or above `--fail-on`.
    Clean,
    /// At least one finding at or above `--fail-on`.
    Findings,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> ExitCode {
        match o {
            Outcome::Clean => ExitCode::SUCCESS,
            Outcome::Findings => ExitCode::from(1),
        }
    }
}

/// Exit code of usage and input errors.
pub(crate) const EXIT_ERROR: u8 = 2;

/// Runs the parsed command line.
pub(crate) fn run(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Command::Analyze(args) => analyze(&AnalyzeConfig::new(args, cli.color)),
        Command::Rules(args) => rules(&args),
        Command::Explain(args) => explain(&args, cli.color),
        Command::Completions(args) => completions(&args),
        Command::Collect(args) => crate::collect::run(&args),
        Command::Lab(args) => crate::lab::run(args),
        Command::Pcap(args) => crate::pcap::run(&args, cli.color),
        Command::Flowlogs(args) => crate::flowlogs::run(&args, cli.color),
        Command::Trace(args) => crate::trace::run(&args, cli.color),
        Command::Reach(args) => crate::reach::run(&args, cli.color),
        Command::Diagnose(args) => crate::diagnose::run(&args, cli.color),
    }
}

fn analyze(cfg: &AnalyzeConfig) -> Result<Outcome> {
    let status = Status::new();
    status.show(&format!("netsleuth: reading bundle {} …", cfg.bundle.display()));
    let options = BundleOptions { salt: cfg.salt.clone(), ..BundleOptions::default() };
    let net = netsleuth_ingest::read_bundle(&cfg.bundle, &options)?;
    let n = net.hosts.len();
    status.show(&format!("netsleuth: analysing {n} host{} …", if n == 1 { "" } else { "s" }));
    let findings = netsleuth_analyze::analyze(&net, &AnalyzeOptions { now: cfg.now, only: cfg.rules.clone() });
    status.clear();

    let report = build_report(cfg, &net, findings);
    let outcome = decide(&report.findings, cfg.fail_on);
    match &cfg.output {
        Some(path) => {
            let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let color = wants_color(cfg.color, &file);
            let mut w = BufWriter::new(file);
            render(&report, cfg.format, color, &mut w)
                .and_then(|()| w.flush())
                .with_context(|| format!("cannot write the report to {}", path.display()))?;
        }
        None => {
            let stdout = io::stdout();
            let color = wants_color(cfg.color, &stdout);
            write_stdout(|w| render(&report, cfg.format, color, w))?;
        }
    }
    Ok(outcome)
}

fn render(report: &Report, format: ReportFormat, color: bool, w: &mut dyn Write) -> io::Result<()> {
    match format {
        ReportFormat::Text => netsleuth_report::text::render(report, &netsleuth_report::text::TextOptions { color }, w),
        ReportFormat::Json => netsleuth_report::json::render(report, w),
        ReportFormat::Sarif => netsleuth_report::sarif::render(report, w),
    }
}

fn rules(args: &RulesArgs) -> Result<Outcome> {
    let rules = all_rules();
    let infos: Vec<RuleInfo> = rules.iter().map(|(r, _)| r.clone()).collect();
    write_stdout(|w| match args.format {
        ListFormat::Text => netsleuth_report::catalog::render_table(&infos, w),
        ListFormat::Json => {
            let mut value = netsleuth_report::catalog::to_value(&infos);
            // Where each rule applies: `netsleuth analyze` (bundle), `pcap` (capture) or `flowlogs`.
            if let Some(list) = value.get_mut("rules").and_then(|v| v.as_array_mut()) {
                for (entry, (_, source)) in list.iter_mut().zip(&rules) {
                    if let Some(obj) = entry.as_object_mut() {
                        obj.insert("source".to_string(), serde_json::Value::from(*source));
                    }
                }
            }
            serde_json::to_writer_pretty(&mut *w, &value)?;
            w.write_all(b"\n")
        }
    })?;
    Ok(Outcome::Clean)
}

/// Every rule the tool has, in id order, with its source: "bundle" (`analyze`), "capture"
/// (`pcap`) or "flowlogs" (`flowlogs`).
fn all_rules() -> Vec<(RuleInfo, &'static str)> {
    let mut all: Vec<(RuleInfo, &'static str)> = catalog_info().into_iter().map(|r| (r, "bundle")).collect();
    all.extend(crate::pcap::rule_infos().into_iter().map(|r| (r, "capture")));
    all.extend(crate::flowlogs::rule_infos().into_iter().map(|r| (r, "flowlogs")));
    all.extend(diagnose_cause_infos().into_iter().map(|r| (r, "diagnose")));
    all.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    all
}

/// Catalog entries of capture or flow-log rules (what `rules` lists and reports embed).
pub(crate) fn capture_rule_infos(rules: &[netsleuth_capture::CaptureRule]) -> Vec<RuleInfo> {
    rules
        .iter()
        .map(|r| RuleInfo {
            id: r.id.to_string(),
            layer: r.layer,
            severity: r.severity,
            title: r.title.to_string(),
            rationale: r.rationale.to_string(),
            references: Vec::new(),
            example: String::new(),
        })
        .collect()
}

/// The report of a command that reads input files rather than a bundle (`pcap`, `flowlogs`):
/// the files stand where the bundle path goes.
pub(crate) fn files_report(
    files: &[std::path::PathBuf],
    findings: Vec<Finding>,
    ingest: IngestSummary,
    rules: Vec<RuleInfo>,
) -> Report {
    Report {
        tool: tool(),
        bundle: files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(" "),
        bundle_uri: None,
        collected_at: None,
        salt_id: None,
        findings,
        skipped_files: Vec::new(),
        ingest,
        rules,
    }
}

/// The explain entry of a capture or flow-log rule: its catalog text plus what to change.
fn capture_rule_info(id: &str) -> Option<RuleInfo> {
    let rule = netsleuth_capture::RULES
        .iter()
        .chain(netsleuth_capture::flowlogs::RULES)
        .find(|r| r.id.eq_ignore_ascii_case(id))?;
    Some(RuleInfo {
        id: rule.id.to_string(),
        layer: rule.layer,
        severity: rule.severity,
        title: rule.title.to_string(),
        rationale: format!("{}\n\nWhat to change: {}", rule.rationale, rule.fix),
        references: Vec::new(),
        example: String::new(),
    })
}

/// The causes `netsleuth diagnose` can name (DIAG-*), as catalog entries. The DNS and
/// path-MTU probes keep their own short lists; their severity depends on what was observed,
/// so the catalog shows the highest they report.
fn diagnose_cause_infos() -> Vec<RuleInfo> {
    use netsleuth_probe::diagnose::{causes, dns, pmtu};
    let mut infos: Vec<RuleInfo> = causes::catalog()
        .iter()
        .map(|c| RuleInfo {
            id: c.id.to_string(),
            layer: c.layer,
            severity: c.severity,
            title: c.title.to_string(),
            rationale: format!("Observed: {}\n\nWhat to change: {}", c.observed, c.fix),
            references: Vec::new(),
            example: String::new(),
        })
        .collect();
    let probes = dns::CAUSES
        .iter()
        .map(|c| (c, netsleuth_model::Layer::Dns))
        .chain(pmtu::CAUSES.iter().map(|c| (c, netsleuth_model::Layer::Overlay)));
    infos.extend(probes.map(|((id, title), layer)| RuleInfo {
        id: (*id).to_string(),
        layer,
        severity: Severity::High,
        title: (*title).to_string(),
        rationale: format!(
            "Reported by the live probe of `netsleuth diagnose` ({}); see docs/diagnose.md.",
            layer.as_str()
        ),
        references: Vec::new(),
        example: String::new(),
    }));
    infos
}

fn explain(args: &ExplainArgs, color: ColorWhen) -> Result<Outcome> {
    let id = args.id.trim();
    let info = match netsleuth_analyze::find_rule(id) {
        Some(rule) => rule_info(rule),
        None => capture_rule_info(id)
            .or_else(|| diagnose_cause_infos().into_iter().find(|r| r.id.eq_ignore_ascii_case(id)))
            .ok_or_else(|| anyhow::anyhow!("{}", unknown_rule_message(&args.id)))?,
    };
    let color = wants_color(color, &io::stdout());
    write_stdout(|w| match args.format {
        ListFormat::Text => netsleuth_report::catalog::render_explain(&info, color, w),
        ListFormat::Json => {
            serde_json::to_writer_pretty(&mut *w, &netsleuth_report::catalog::rule_value(&info))?;
            w.write_all(b"\n")
        }
    })?;
    Ok(Outcome::Clean)
}

fn completions(args: &CompletionsArgs) -> Result<Outcome> {
    let mut cmd = Cli::command();
    write_stdout(|w| {
        clap_complete::generate(args.shell, &mut cmd, "netsleuth", w);
        Ok(())
    })?;
    Ok(Outcome::Clean)
}

/// Writes to standard output through a buffer. A closed pipe (`netsleuth rules | head`)
/// is not an error: the reader has what it wanted.
pub(crate) fn write_stdout(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
    let mut w = BufWriter::new(io::stdout().lock());
    match f(&mut w).and_then(|()| w.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
    }
}

/// Whether to colour output written to `stream`.
pub(crate) fn wants_color<S: RawStream>(when: ColorWhen, stream: &S) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => AutoStream::choice(stream) != ColorChoice::Never,
    }
}

/// The exit decision: any finding at or above the threshold fails the run.
pub(crate) fn decide(findings: &[Finding], fail_on: Option<Severity>) -> Outcome {
    match fail_on {
        Some(min) if findings.iter().any(|f| f.severity >= min) => Outcome::Findings,
        _ => Outcome::Clean,
    }
}

/// Assembles what the renderers show.
pub(crate) fn build_report(cfg: &AnalyzeConfig, net: &Network, findings: Vec<Finding>) -> Report {
    let rules = catalog_info()
        .into_iter()
        .filter(|r| cfg.rules.is_empty() || cfg.rules.iter().any(|id| id.eq_ignore_ascii_case(&r.id)))
        .collect();
    Report {
        tool: tool(),
        bundle: cfg.bundle.display().to_string(),
        bundle_uri: bundle_uri(&cfg.bundle),
        collected_at: cfg.now.or(net.manifest.collected_at),
        salt_id: net.manifest.salt_id.clone(),
        findings,
        skipped_files: net.skipped_files.clone(),
        ingest: ingest_summary(net),
        rules,
    }
}

pub(crate) fn tool() -> Tool {
    Tool {
        name: env!("CARGO_PKG_NAME").to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        information_uri: env!("CARGO_PKG_REPOSITORY").to_string(),
    }
}

/// Absolute `file://` URI of the bundle folder, when it can be resolved.
fn bundle_uri(bundle: &Path) -> Option<String> {
    let abs = std::fs::canonicalize(bundle).ok()?;
    Some(netsleuth_report::sarif::dir_uri(abs.to_str()?))
}

/// What the bundle held, in numbers.
pub(crate) fn ingest_summary(net: &Network) -> IngestSummary {
    let k = &net.kubernetes;
    let typed = k.namespaces.len()
        + k.nodes.len()
        + k.pods.len()
        + k.services.len()
        + k.endpoint_slices.len()
        + k.network_policies.len()
        + k.config_maps.len()
        + k.secrets.len()
        + k.workloads.len()
        + k.hpas.len()
        + k.pdbs.len()
        + k.peer_authentications.len()
        + k.sidecars.len()
        + k.service_entries.len();
    let untyped: u64 = k.skipped_kinds.values().sum();
    let a = &net.aws;
    IngestSummary {
        hosts: net.hosts.len(),
        artifacts: net.hosts.iter().map(|h| h.artifacts.iter().filter(|p| !p.ends_with('/')).count()).sum(),
        kubernetes_objects: typed.saturating_add(usize::try_from(untyped).unwrap_or(usize::MAX)),
        aws_objects: a.vpcs.len()
            + a.subnets.len()
            + a.route_tables.len()
            + a.security_groups.len()
            + a.network_acls.len()
            + a.vpn_connections.len()
            + a.instances.len()
            + a.transit_gateway_route_tables.len(),
        ingest_issues: net.ingest_issues.len(),
        redactions: net.redactions.len(),
    }
}

/// The whole catalog as renderer input.
pub(crate) fn catalog_info() -> Vec<RuleInfo> {
    netsleuth_analyze::catalog().into_iter().map(rule_info).collect()
}

pub(crate) fn rule_info(rule: &Rule) -> RuleInfo {
    RuleInfo {
        id: rule.id.to_string(),
        layer: rule.layer,
        severity: rule.severity,
        title: rule.title.to_string(),
        rationale: rule.rationale.to_string(),
        references: rule.references.iter().map(|r| r.to_string()).collect(),
        example: rule.example.to_string(),
    }
}

/// `unknown rule id "X"`, with the closest ids of the catalog when there are any.
pub(crate) fn unknown_rule_message(id: &str) -> String {
    let ids: Vec<&str> = netsleuth_analyze::catalog()
        .into_iter()
        .map(|r| r.id)
        .chain(netsleuth_capture::RULES.iter().map(|r| r.id))
        .chain(netsleuth_capture::flowlogs::RULES.iter().map(|r| r.id))
        .chain(netsleuth_probe::diagnose::causes::catalog().iter().map(|c| c.id))
        .chain(netsleuth_probe::diagnose::dns::CAUSES.iter().map(|c| c.0))
        .chain(netsleuth_probe::diagnose::pmtu::CAUSES.iter().map(|c| c.0))
        .collect();
    let close = suggestions(id, &ids);
    if close.is_empty() {
        format!("unknown rule id {id:?}; `netsleuth rules` lists the catalog")
    } else {
        format!("unknown rule id {id:?}; did you mean {}? (`netsleuth rules` lists the catalog)", close.join(", "))
    }
}

/// Up to three ids close to `id`: within edit distance 2 (case-insensitive), or with the
/// same prefix (`DNS-9` → the DNS rules), nearest first.
pub(crate) fn suggestions<'a>(id: &str, ids: &[&'a str]) -> Vec<&'a str> {
    let wanted = id.trim().to_ascii_uppercase();
    let prefix = wanted.split('-').next().unwrap_or("");
    let mut scored: Vec<(usize, &str)> = ids
        .iter()
        .filter_map(|&candidate| {
            let d = edit_distance(&wanted, candidate);
            let same_prefix = !prefix.is_empty() && candidate.split('-').next() == Some(prefix);
            (d <= 2 || same_prefix).then_some((d, candidate))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let subst = prev.get(j).copied().unwrap_or(usize::MAX).saturating_add(usize::from(ca != *cb));
            let del = prev.get(j + 1).copied().unwrap_or(usize::MAX).saturating_add(1);
            let ins = cur.get(j).copied().unwrap_or(usize::MAX).saturating_add(1);
            cur.push(subst.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

/// A one-line status on standard error, only when it is a terminal (so logs and pipes
/// stay clean); cleared when analysis ends or the value is dropped.
struct Status {
    enabled: bool,
}

impl Status {
    fn new() -> Status {
        Status { enabled: io::stderr().is_terminal() }
    }

    fn show(&self, msg: &str) {
        if self.enabled {
            // \r + erase line: the next message replaces this one.
            let _ = write!(io::stderr().lock(), "\r\x1b[2K{msg}");
        }
    }

    fn clear(&self) {
        if self.enabled {
            let _ = write!(io::stderr().lock(), "\r\x1b[2K");
        }
    }
}

impl Drop for Status {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsleuth_model::{Confidence, IngestIssue, Layer, Location};
    use std::path::PathBuf;

    fn finding(severity: Severity) -> Finding {
        Finding {
            rule: "ING-001".into(),
            severity,
            layer: Layer::Ingest,
            subject: "bundle/x".into(),
            title: "t".into(),
            detail: String::new(),
            evidence: Vec::new(),
            fix: String::new(),
            confidence: Confidence::Confirmed,
        }
    }

    fn config() -> AnalyzeConfig {
        AnalyzeConfig {
            bundle: PathBuf::from("/nonexistent/bundle"),
            format: ReportFormat::Json,
            output: None,
            fail_on: Some(Severity::Medium),
            salt: None,
            rules: Vec::new(),
            now: None,
            color: ColorWhen::Never,
        }
    }

    #[test]
    fn exit_decision_uses_the_threshold() {
        let findings = [finding(Severity::Low), finding(Severity::Medium)];
        assert_eq!(decide(&findings, Some(Severity::Medium)), Outcome::Findings);
        assert_eq!(decide(&findings, Some(Severity::High)), Outcome::Clean);
        assert_eq!(decide(&findings, Some(Severity::Info)), Outcome::Findings);
        assert_eq!(decide(&findings, None), Outcome::Clean);
        assert_eq!(decide(&[], Some(Severity::Info)), Outcome::Clean);
    }

    #[test]
    fn close_ids_are_suggested() {
        let ids = ["DNS-001", "DNS-002", "ING-001", "TUN-003"];
        assert_eq!(suggestions("ing-01", &ids), ["ING-001"]);
        assert_eq!(suggestions("DNS-9", &ids), ["DNS-001", "DNS-002"]);
        assert_eq!(suggestions("TUN-004", &ids), ["TUN-003"]);
        assert!(suggestions("WHATEVER", &ids).is_empty());
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn unknown_rule_message_names_a_close_id() {
        let msg = unknown_rule_message("ING-01");
        assert!(msg.contains("did you mean ING-001"), "{msg}");
    }

    #[test]
    fn report_takes_now_over_collected_at_and_counts_ingest() {
        let mut net = Network::default();
        net.manifest.collected_at = Some(100);
        net.manifest.salt_id = Some("abc".into());
        net.skipped_files.push("notes.txt".into());
        net.ingest_issues
            .push(IngestIssue { location: Location::line("hosts/a/sysctl.txt", 2), message: "bad".into() });
        net.hosts.push(netsleuth_model::host::Host {
            name: "a".into(),
            artifacts: vec!["hosts/a/sysctl.txt".into(), "hosts/a/cni/".into()],
            ..Default::default()
        });

        let mut cfg = config();
        let report = build_report(&cfg, &net, vec![finding(Severity::High)]);
        assert_eq!(report.collected_at, Some(100));
        assert_eq!(report.salt_id.as_deref(), Some("abc"));
        assert_eq!(report.skipped_files, ["notes.txt"]);
        assert_eq!(report.ingest.ingest_issues, 1);
        assert_eq!(report.ingest.hosts, 1);
        assert_eq!(report.ingest.artifacts, 1, "the cni/ folder marker is not a file");
        assert_eq!(report.rules.len(), netsleuth_analyze::catalog().len());
        assert!(report.bundle_uri.is_none(), "a missing folder has no URI");

        cfg.now = Some(5);
        cfg.rules = vec!["ING-001".into()];
        let report = build_report(&cfg, &net, Vec::new());
        assert_eq!(report.collected_at, Some(5));
        assert_eq!(report.rules.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["ING-001"]);
    }

    #[test]
    fn bundle_uri_of_an_existing_folder() {
        let dir = std::env::temp_dir();
        let uri = bundle_uri(&dir).expect("temp dir resolves");
        assert!(uri.starts_with("file:///") && uri.ends_with('/'), "{uri}");
    }
}
