//! Command-line arguments: the clap definitions (what the user typed) and, for `analyze`,
//! the validated `AnalyzeConfig` that the rest of the program uses.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use netsleuth_model::Severity;

const ABOUT: &str = "Find out why traffic fails in cloud-native networks, from a bundle of command outputs.";

const EXAMPLES: &str = "\
Examples:
  netsleuth analyze ./bundle
  netsleuth analyze ./bundle --format sarif --output netsleuth.sarif
  netsleuth analyze ./bundle --format json --fail-on high --now 2026-11-23T01:10:09Z
  netsleuth rules
  netsleuth explain ING-001

Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it, 2 usage or input error.";

const ANALYZE_EXAMPLES: &str = "\
Examples:
  netsleuth analyze ./bundle
  netsleuth analyze ./bundle --fail-on high
  netsleuth analyze ./bundle --format json --output report.json
  netsleuth analyze ./bundle --format sarif > netsleuth.sarif
  netsleuth analyze ./bundle --rules DNS-001,ING-001 --now 1795396209
  NETSLEUTH_SALT=team-secret netsleuth analyze ./bundle --format json

Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it, 2 usage or input
error (bundle missing or not a folder, bad flag). Files in the bundle that cannot be
parsed are findings (ING-001), not errors.";

#[derive(Debug, Parser)]
#[command(name = "netsleuth", version, about = ABOUT, after_help = EXAMPLES, propagate_version = true)]
pub(crate) struct Cli {
    /// When to colour output: auto (only on a terminal, honouring NO_COLOR and
    /// CLICOLOR/CLICOLOR_FORCE), always, or never.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, global = true, value_name = "WHEN")]
    pub(crate) color: ColorWhen,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Analyse a bundle and report findings inside-out (DNS, pod, mesh, policy, node, CNI,
    /// overlay, tunnel, cloud).
    #[command(after_help = ANALYZE_EXAMPLES)]
    Analyze(AnalyzeArgs),
    /// List the rule catalog: id, layer, default severity, title.
    #[command(after_help = "Examples:\n  netsleuth rules\n  netsleuth rules --format json")]
    Rules(RulesArgs),
    /// Explain one rule: why it matters, references, an example.
    #[command(after_help = "Examples:\n  netsleuth explain ING-001\n  netsleuth explain ing-001 --format json")]
    Explain(ExplainArgs),
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  netsleuth completions bash > /etc/bash_completion.d/netsleuth\n  \
                            netsleuth completions zsh > \"${fpath[1]}/_netsleuth\"")]
    Completions(CompletionsArgs),
    /// Collect this host (or a network namespace) into a bundle, secrets redacted.
    #[command(after_help = crate::collect::COLLECT_EXAMPLES)]
    Collect(crate::collect::CollectArgs),
    /// Real networks in network namespaces with injectable faults (needs root).
    #[command(after_help = crate::lab::LAB_EXAMPLES)]
    Lab(crate::lab::LabArgs),
    /// Analyse packet captures (pcap, pcapng, .gz): retransmissions, lost DNS answers, ICMP
    /// too-big, unanswered WireGuard and IKE handshakes.
    #[command(after_help = crate::pcap::PCAP_EXAMPLES)]
    Pcap(crate::pcap::PcapArgs),
    /// Analyse cloud flow logs (AWS VPC flow logs, default or custom format, .gz): rejected
    /// VPN/ESP/VXLAN/DNS/BGP traffic, asymmetric flows, top rejected flows.
    #[command(after_help = crate::flowlogs::FLOWLOGS_EXAMPLES)]
    Flowlogs(crate::flowlogs::FlowlogsArgs),
    /// Trace one packet hop by hop through a bundle: policy, sidecar, routes, firewall,
    /// overlay, tunnel, cloud; names the component that drops it.
    #[command(after_help = crate::trace::TRACE_EXAMPLES)]
    Trace(crate::trace::TraceArgs),
    /// Reachability matrix between pods or namespaces on one port, from a bundle.
    #[command(after_help = crate::reach::REACH_EXAMPLES)]
    Reach(crate::reach::ReachArgs),
    /// Probe live, inside-out (DNS, gateway, tunnel, path MTU, transport) and name the
    /// broken layer with evidence and a fix.
    #[command(after_help = crate::diagnose::DIAGNOSE_EXAMPLES)]
    Diagnose(crate::diagnose::DiagnoseArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AnalyzeArgs {
    /// The bundle folder (format netsleuth-bundle/1).
    #[arg(value_name = "BUNDLE")]
    pub(crate) bundle: PathBuf,

    /// Output format.
    #[arg(long, short, value_enum, default_value_t = ReportFormat::Text)]
    pub(crate) format: ReportFormat,

    /// Write the report to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    /// Exit with 1 when a finding has this severity or higher; `none` always exits 0 after
    /// a successful analysis.
    #[arg(long, value_enum, default_value_t = FailOn::Medium, value_name = "SEVERITY")]
    pub(crate) fail_on: FailOn,

    /// Salt of the key that fingerprints redacted secrets. Give two bundles the same salt to
    /// compare their fingerprints; by default every run uses a random key.
    #[arg(long, env = "NETSLEUTH_SALT", hide_env_values = true, value_name = "SALT")]
    pub(crate) salt: Option<String>,

    /// Run only these rules (comma-separated ids, see `netsleuth rules`).
    #[arg(long, value_delimiter = ',', value_parser = parse_rule_id, value_name = "ID,ID")]
    pub(crate) rules: Vec<String>,

    /// The time age checks measure against, instead of the bundle's collected_at: unix
    /// seconds or an RFC 3339 time such as 2026-11-23T01:10:09Z.
    #[arg(long, value_parser = parse_now, value_name = "RFC3339|UNIX")]
    pub(crate) now: Option<i64>,
}

#[derive(Debug, Args)]
pub(crate) struct RulesArgs {
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = ListFormat::Text)]
    pub(crate) format: ListFormat,
}

#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// The rule id, e.g. ING-001 (case does not matter).
    #[arg(value_name = "ID")]
    pub(crate) id: String,

    /// Output format.
    #[arg(long, short, value_enum, default_value_t = ListFormat::Text)]
    pub(crate) format: ListFormat,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    /// Human-readable, grouped by layer.
    Text,
    /// Versioned JSON (netsleuth.report/v1, docs/report-format.md).
    Json,
    /// SARIF 2.1.0 for code-scanning dashboards.
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ListFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FailOn {
    Critical,
    High,
    Medium,
    Low,
    Info,
    None,
}

impl FailOn {
    /// The lowest severity that fails the run; None never fails.
    pub(crate) fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Critical => Some(Severity::Critical),
            FailOn::High => Some(Severity::High),
            FailOn::Medium => Some(Severity::Medium),
            FailOn::Low => Some(Severity::Low),
            FailOn::Info => Some(Severity::Info),
            FailOn::None => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// `analyze` arguments, validated and ready to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AnalyzeConfig {
    pub(crate) bundle: PathBuf,
    pub(crate) format: ReportFormat,
    pub(crate) output: Option<PathBuf>,
    pub(crate) fail_on: Option<Severity>,
    pub(crate) salt: Option<String>,
    /// Canonical rule ids to run (empty: all).
    pub(crate) rules: Vec<String>,
    pub(crate) now: Option<i64>,
    pub(crate) color: ColorWhen,
}

impl AnalyzeConfig {
    /// Builds the configuration; values were already checked by their parsers, so what
    /// remains is normalisation (duplicate rule ids).
    pub(crate) fn new(args: AnalyzeArgs, color: ColorWhen) -> AnalyzeConfig {
        let mut rules = args.rules;
        rules.sort();
        rules.dedup();
        AnalyzeConfig {
            bundle: args.bundle,
            format: args.format,
            output: args.output,
            fail_on: args.fail_on.threshold(),
            salt: args.salt,
            rules,
            now: args.now,
            color,
        }
    }
}

/// A known rule id, returned in its catalog spelling; unknown ids name close ones.
fn parse_rule_id(s: &str) -> Result<String, String> {
    let s = s.trim();
    match netsleuth_analyze::find_rule(s) {
        Some(rule) => Ok(rule.id.to_string()),
        None => Err(crate::app::unknown_rule_message(s)),
    }
}

/// `--now`: unix seconds or an RFC 3339 time.
pub(crate) fn parse_now(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    // The RFC 3339 parser slices by byte offsets; only hand it ASCII.
    let parsed = if s.is_ascii() { netsleuth_ingest::bundle::parse_rfc3339(s) } else { None };
    parsed.ok_or_else(|| format!("expected unix seconds or an RFC 3339 time such as 2026-11-23T01:10:09Z, got {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn now_accepts_unix_and_rfc3339() {
        assert_eq!(parse_now("1795396209"), Ok(1_795_396_209));
        assert_eq!(parse_now("2026-11-23T01:10:09Z"), Ok(1_795_396_209));
        assert_eq!(parse_now("-5"), Ok(-5));
        assert!(parse_now("yesterday").unwrap_err().contains("RFC 3339"));
        assert!(parse_now("+0é000000000000000000000").is_err());
    }

    #[test]
    fn analyze_flags_become_a_config() {
        let cli = Cli::try_parse_from([
            "netsleuth",
            "analyze",
            "b",
            "--rules",
            "ing-001,ING-001",
            "--fail-on",
            "high",
            "--now",
            "0",
            "--color",
            "never",
        ])
        .expect("valid flags");
        let Command::Analyze(args) = cli.command else { panic!("analyze expected") };
        let cfg = AnalyzeConfig::new(args, cli.color);
        assert_eq!(cfg.rules, ["ING-001"]);
        assert_eq!(cfg.fail_on, Some(Severity::High));
        assert_eq!(cfg.now, Some(0));
        assert_eq!(cfg.color, ColorWhen::Never);
        assert_eq!(cfg.format, ReportFormat::Text);
    }

    #[test]
    fn bad_flag_values_are_usage_errors() {
        for bad in [
            vec!["netsleuth", "analyze", "b", "--rules", "NOPE-999"],
            vec!["netsleuth", "analyze", "b", "--now", "soon"],
            vec!["netsleuth", "analyze", "b", "--fail-on", "urgent"],
            vec!["netsleuth", "analyze", "b", "--format", "xml"],
        ] {
            let err = Cli::try_parse_from(&bad).expect_err("must be rejected");
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn fail_on_none_has_no_threshold() {
        assert_eq!(FailOn::None.threshold(), None);
        assert_eq!(FailOn::Info.threshold(), Some(Severity::Info));
    }
}
