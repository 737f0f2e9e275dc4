//! `netsleuth reach BUNDLE --from SEL --to SEL --port P`: the reachability matrix between
//! pods (or namespaces) of a bundle under its NetworkPolicies, as text, CSV or JSON.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use clap::{Args, ValueEnum};
use netsleuth_ingest::BundleOptions;
use netsleuth_model::{Location, Network};
use netsleuth_trace::reach::{render, Matrix, Protocol, Selector};

use crate::app::Outcome;
use crate::args::ColorWhen;

pub(crate) const REACH_EXAMPLES: &str = "\
Selectors (--from/--to, repeatable, unioned):
  all                      every pod            ns:prod        every pod of namespace prod
  prod/*                   same as ns:prod      pod:prod/web-0 one pod (also prod/web-0)
  ns:prod,app=web          pods of prod labelled app=web; terms: k=v  k!=v  k (exists)  !k (absent)
  app=web                  pods labelled app=web in every namespace
  ip:203.0.113.7           an address outside the cluster (evaluated against ipBlock rules)

Examples:
  netsleuth reach bundle/ --from ns:frontend --to ns:backend,app=api --port 8080
  netsleuth reach bundle/ --from all --to all --port 53 --protocol udp --by namespace
  netsleuth reach bundle/ --from prod/web-0 --to ip:10.20.0.5 --port 443 --explain
  netsleuth reach bundle/ --from all --to ns:db --port 5432 --format csv > matrix.csv
  netsleuth reach bundle/ --from ns:ci --to ns:prod --port 22 --expect denied   # CI gate

Semantics: Kubernetes NetworkPolicy (networking.k8s.io/v1): a pair is allowed when the
source's egress and the target's ingress both allow it. A pod always reaches itself;
host-network pods count as their node (not isolated, matched only by ipBlock), and a node
(ip:NODE-ADDRESS or a host-network pod on it) and the pods on it always reach each other.
Pods in phase Succeeded/Failed are left out.

Input problems (a Kubernetes file or object that could not be read) are listed on stderr
and in the JSON (`input_issues`); --strict makes them an error.

Exit codes: 0 matrix printed (and --expect met), 1 --expect not met, 2 usage error, an
unreadable bundle, a selector matching nothing, a matrix of more than 250,000,000 pairs,
or input problems with --strict.";

#[derive(Debug, Args)]
pub(crate) struct ReachArgs {
    /// Bundle folder (netsleuth-bundle/1) with kubernetes/*.json|yaml.
    #[arg(value_name = "BUNDLE")]
    pub(crate) bundle: PathBuf,

    /// Source selector (repeatable).
    #[arg(long = "from", value_name = "SELECTOR", required = true)]
    pub(crate) from: Vec<String>,

    /// Target selector (repeatable).
    #[arg(long = "to", value_name = "SELECTOR", required = true)]
    pub(crate) to: Vec<String>,

    /// Destination port; `53/udp` also sets the protocol.
    #[arg(long, value_name = "PORT[/PROTO]")]
    pub(crate) port: String,

    /// Transport protocol (when --port does not name one).
    #[arg(long, value_name = "PROTO", default_value = "tcp")]
    pub(crate) protocol: String,

    /// Output format.
    #[arg(long, short, value_enum, default_value_t = ReachFormat::Text)]
    pub(crate) format: ReachFormat,

    /// Aggregate pods into groups (allowed pairs / pairs per group pair).
    #[arg(long, value_enum, value_name = "GROUP")]
    pub(crate) by: Option<ReachBy>,

    /// Name the policies (and rule) behind each denied pair.
    #[arg(long)]
    pub(crate) explain: bool,

    /// Exit 1 unless every pair is allowed (or every pair denied).
    #[arg(long, value_enum, value_name = "VERDICT")]
    pub(crate) expect: Option<Expect>,

    /// Fail (exit 2) when a Kubernetes file or object of the bundle could not be read.
    #[arg(long)]
    pub(crate) strict: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReachFormat {
    /// A grid (Y allowed; e/i/b denied by egress, ingress, both), or per-source lists when wide.
    Text,
    /// One row per pair: source,target,protocol,port,allowed,reason.
    Csv,
    /// netsleuth.reach/v1: names, boolean matrix, reasons.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReachBy {
    /// Every pod its own row/column (the default).
    Pod,
    /// One row/column per namespace.
    Namespace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Expect {
    Allowed,
    Denied,
}

/// `80`, `53/udp`, `8080/TCP` → (port, protocol); the protocol flag is the default.
fn parse_port(port: &str, protocol: &str) -> Result<(u16, Protocol)> {
    let (num, proto) = match port.split_once('/') {
        Some((n, p)) => (n, p),
        None => (port, protocol),
    };
    let proto: Protocol = proto.parse().map_err(|e: String| anyhow::anyhow!("--port {port:?}: {e}"))?;
    let n: u16 = num.trim().parse().ok().filter(|n| *n > 0).with_context(|| {
        format!("--port {port:?}: expected a port number 1-65535 (named ports resolve per pod; give the number)")
    })?;
    Ok((n, proto))
}

fn location_path(l: &Location) -> Option<&str> {
    match l {
        Location::File { path, .. } | Location::Json { path, .. } | Location::Packet { path, .. } => Some(path),
        Location::Probe { .. } | Location::Derived => None,
    }
}

/// Problems reading the bundle's Kubernetes files: they may make the matrix incomplete,
/// so they are always shown, and with `--strict` they stop the run.
fn input_issues(net: &Network, strict: bool) -> Result<Vec<String>> {
    let issues: Vec<String> = net
        .ingest_issues
        .iter()
        .filter(|i| location_path(&i.location).is_none_or(|p| p.starts_with("kubernetes")))
        .map(|i| format!("{}: {}", i.location, i.message))
        .collect();
    if issues.is_empty() {
        return Ok(issues);
    }
    let list = issues.join("\n  ");
    if strict {
        bail!("--strict: the bundle's Kubernetes input has problems:\n  {list}");
    }
    let _ = writeln!(std::io::stderr(), "warning: the matrix may be incomplete; input problems:\n  {list}");
    Ok(issues)
}

pub(crate) fn run(args: &ReachArgs, _color: ColorWhen) -> Result<Outcome> {
    let (port, protocol) = parse_port(&args.port, &args.protocol)?;
    let sources = parse_selectors(&args.from, "--from")?;
    let targets = parse_selectors(&args.to, "--to")?;
    let options = BundleOptions::default();
    let net = netsleuth_ingest::read_bundle(&args.bundle, &options)
        .with_context(|| format!("cannot read bundle {}", args.bundle.display()))?;
    let issues = input_issues(&net, args.strict)?;
    let matrix = Matrix::compute(&net.kubernetes, &sources, &targets, protocol, port)
        .with_context(|| format!("in bundle {}", args.bundle.display()))?;
    let explain = args.explain;
    if args.by == Some(ReachBy::Namespace) {
        let agg = matrix.by_namespace();
        crate::app::write_stdout(|w| match args.format {
            ReachFormat::Text => render::aggregate_text(&agg, &issues, w),
            ReachFormat::Csv => render::aggregate_csv(&agg, w),
            ReachFormat::Json => render::aggregate_json(&agg, &issues, w),
        })?;
    } else {
        crate::app::write_stdout(|w| match args.format {
            ReachFormat::Text => render::text(&matrix, explain, &issues, w),
            ReachFormat::Csv => render::csv(&matrix, explain, w),
            ReachFormat::Json => render::json(&matrix, explain, &issues, w),
        })?;
    }
    let allowed = matrix.allowed_count();
    let pairs = matrix.source_count() * matrix.target_count();
    Ok(match args.expect {
        Some(Expect::Allowed) if allowed != pairs => Outcome::Findings,
        Some(Expect::Denied) if allowed != 0 => Outcome::Findings,
        _ => Outcome::Clean,
    })
}

fn parse_selectors(texts: &[String], flag: &str) -> Result<Vec<Selector>> {
    texts.iter().map(|t| t.parse::<Selector>().with_context(|| flag.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_protocols() {
        assert_eq!(parse_port("80", "tcp").ok(), Some((80, Protocol::Tcp)));
        assert_eq!(parse_port("53/udp", "tcp").ok(), Some((53, Protocol::Udp)));
        assert_eq!(parse_port("53", "UDP").ok(), Some((53, Protocol::Udp)));
        assert!(parse_port("0", "tcp").is_err());
        assert!(parse_port("70000", "tcp").is_err());
        assert!(parse_port("http", "tcp").is_err());
        assert!(parse_port("80/icmp", "tcp").is_err());
    }
}
