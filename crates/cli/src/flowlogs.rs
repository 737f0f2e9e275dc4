//! `netsleuth flowlogs FILE...`: analyses AWS VPC flow logs (default or custom format, plain
//! or gzip) and reports rejected VPN/ESP/VXLAN/DNS/BGP traffic, asymmetric flows and top rejects.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use netsleuth_capture::flowlogs::{self, FlowlogReport, Format, FormatOrigin, Options, RejectedFlow, Settings};
use netsleuth_model::Severity;
use netsleuth_report::{IngestSummary, Report, RuleInfo};

use crate::app::Outcome;
use crate::args::ColorWhen;

pub(crate) const FLOWLOGS_EXAMPLES: &str = "\
Examples:
  netsleuth flowlogs 123456789010_vpcflowlogs_eu-west-1_fl-0abc_20240101T0000Z_1a2b3c4d.log.gz
  netsleuth flowlogs logs/*.log.gz --top 20 --format json
  netsleuth flowlogs export.log --format-fields '${version} ${vpc-id} ${srcaddr} ${dstaddr} ...'
  netsleuth flowlogs node-a.log node-b.log --vpn-port 51821     # WireGuard on a non-default port
  aws s3 cp s3://BUCKET/AWSLogs/.../file.log.gz - | netsleuth flowlogs -

Files as delivered to S3 start with a header line naming the fields; CloudWatch exports have
none and are read as the default version 2 format when the first line has 14 fields starting
with `2`, otherwise give --format-fields. `-` means absent, never zero.

Exit codes: 0 no finding of medium severity or higher, 1 such findings, 2 usage error or a
file that cannot be opened. Malformed lines and truncated files are findings (FLOW-001).";

#[derive(Debug, Args)]
pub(crate) struct FlowlogsArgs {
    /// Flow-log files, plain text or gzip (detected by content); each may have its own format.
    /// `-` reads standard input.
    #[arg(value_name = "FILE", required = true)]
    pub(crate) files: Vec<PathBuf>,

    /// Output format.
    #[arg(long, short, value_enum, default_value_t = FlowlogsFormat::Text)]
    pub(crate) format: FlowlogsFormat,

    /// Rows in the top rejected flows tables (by bytes and by packets); 0 hides them.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub(crate) top: usize,

    /// Field list of files without a header line, as in the flow log's format string
    /// (`${version} ${srcaddr} ...`) or plain names; a header line in the file wins.
    #[arg(long, value_name = "FIELDS")]
    pub(crate) format_fields: Option<String>,

    /// Another UDP port that carries VPN traffic (besides 500, 4500, 51820); repeatable.
    #[arg(long = "vpn-port", visible_alias = "wireguard-port", value_name = "PORT")]
    pub(crate) vpn_ports: Vec<u16>,

    /// Most distinct 5-tuples kept per table (accepted, rejected), 40-80 bytes each; beyond
    /// it records are counted but not matched, and a finding says so. 0: counts only.
    #[arg(long, value_name = "N", default_value_t = 4_000_000)]
    pub(crate) max_flows: usize,

    /// Seconds an accepted flow and its rejected reverse may be apart and still be matched.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub(crate) window: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FlowlogsFormat {
    /// Human-readable, grouped by layer, then the top rejected flows.
    Text,
    /// The report as JSON (netsleuth.report/v1) with `files`, `records`, `malformed`,
    /// `totals`, `categories`, `top_rejected` and `asymmetric` added.
    Json,
}

fn options(args: &FlowlogsArgs) -> Result<Options> {
    let format_fields = match &args.format_fields {
        Some(spec) => match Format::parse_fields(spec, FormatOrigin::Given) {
            Ok(f) => Some(f),
            Err(e) => bail!("--format-fields: {e}"),
        },
        None => None,
    };
    if args.files.len() > flowlogs::analysis::At::MAX_FILES {
        bail!("at most {} files per run", flowlogs::analysis::At::MAX_FILES);
    }
    let mut vpn_ports = flowlogs::analysis::VPN_PORTS.to_vec();
    for p in &args.vpn_ports {
        if !vpn_ports.contains(p) {
            vpn_ports.push(*p);
        }
    }
    Ok(Options {
        settings: Settings { vpn_ports, max_flows: args.max_flows, window_slack: args.window, top: args.top },
        format_fields,
    })
}

pub(crate) fn run(args: &FlowlogsArgs, color: ColorWhen) -> Result<Outcome> {
    let options = options(args)?;
    let result = match flowlogs::analyze_files(&args.files, options) {
        Ok(r) => r,
        Err((path, e)) => bail!("cannot open {}: {e}", path.display()),
    };
    let report = build_report(args, &result);
    let outcome = crate::app::decide(&report.findings, Some(Severity::Medium));
    let stdout = io::stdout();
    let color = crate::app::wants_color(color, &stdout);
    crate::app::write_stdout(|w| match args.format {
        FlowlogsFormat::Text => {
            netsleuth_report::text::render(&report, &netsleuth_report::text::TextOptions { color }, w)?;
            render_files(&result, w)?;
            if args.top > 0 {
                render_top("by bytes", &result.top_by_bytes, w)?;
                render_top("by packets", &result.top_by_packets, w)?;
            }
            Ok(())
        }
        FlowlogsFormat::Json => {
            let mut value = netsleuth_report::json::to_value(&report);
            if let Some(obj) = value.as_object_mut() {
                for (k, v) in flowlogs_value(&result) {
                    obj.insert(k, v);
                }
            }
            serde_json::to_writer_pretty(&mut *w, &value)?;
            w.write_all(b"\n")
        }
    })?;
    Ok(outcome)
}

/// The catalog entries of the flow-log rules.
pub(crate) fn rule_infos() -> Vec<RuleInfo> {
    crate::app::capture_rule_infos(flowlogs::RULES)
}

fn build_report(args: &FlowlogsArgs, result: &FlowlogReport) -> Report {
    let ingest = IngestSummary {
        artifacts: result.files.len(),
        ingest_issues: result.files.iter().filter(|f| f.has_problem()).count(),
        ..IngestSummary::default()
    };
    crate::app::files_report(&args.files, result.findings.clone(), ingest, rule_infos())
}

/// The flow-log specific members of the JSON output.
fn flowlogs_value(result: &FlowlogReport) -> Vec<(String, serde_json::Value)> {
    let v = |x: serde_json::Result<serde_json::Value>| x.unwrap_or(serde_json::Value::Null);
    vec![
        ("records".to_string(), result.totals.records.into()),
        ("malformed".to_string(), result.totals.malformed.into()),
        ("totals".to_string(), v(serde_json::to_value(&result.totals))),
        ("files".to_string(), v(serde_json::to_value(&result.files))),
        ("categories".to_string(), v(serde_json::to_value(&result.categories))),
        (
            "top_rejected".to_string(),
            serde_json::json!({
                "by_bytes": v(serde_json::to_value(&result.top_by_bytes)),
                "by_packets": v(serde_json::to_value(&result.top_by_packets)),
            }),
        ),
        ("asymmetric".to_string(), v(serde_json::to_value(&result.asymmetric))),
        ("limit_reached".to_string(), result.limit_reached.into()),
    ]
}

fn render_files(result: &FlowlogReport, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "\nFlow-log files ({}):", result.files.len())?;
    for f in &result.files {
        writeln!(
            w,
            "  {}{}: {} line(s), {} record(s): {} accepted, {} rejected, {} NODATA, {} SKIPDATA; {} malformed{}; format: {}",
            f.path,
            if f.gzip { " (gzip)" } else { "" },
            f.lines,
            f.records,
            f.accepted,
            f.rejected,
            f.nodata,
            f.skipdata,
            f.malformed,
            if f.incomplete > 0 { format!(", {} incomplete", f.incomplete) } else { String::new() },
            f.format.as_deref().unwrap_or("unknown"),
        )?;
        if let Some(e) = &f.read_error {
            writeln!(w, "    read error: {e}")?;
        }
        if let Some(p) = &f.format_problem {
            writeln!(w, "    format: {p}")?;
        }
    }
    Ok(())
}

fn render_top(by: &str, rows: &[RejectedFlow], w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "\nTop rejected flows {by} ({}):", rows.len())?;
    if rows.is_empty() {
        return writeln!(w, "  (none)");
    }
    writeln!(
        w,
        "  {:<39} {:<39} {:>5} {:<6} {:>8} {:>10} {:>12} {:>6}  {:<22} first",
        "source", "destination", "port", "proto", "records", "packets", "bytes", "sports", "interface"
    )?;
    for r in rows {
        let plus = if r.partial_volume { "+" } else { "" };
        writeln!(
            w,
            "  {:<39} {:<39} {:>5} {:<6} {:>8} {:>10} {:>12} {:>6}  {:<22} {}",
            r.src,
            r.dst,
            r.dst_port,
            r.protocol,
            r.records,
            format!("{}{plus}", r.packets),
            format!("{}{plus}", r.bytes),
            r.src_ports,
            format!(
                "{}{}",
                r.interface.as_deref().unwrap_or("-"),
                r.direction.map(|d| format!(" {d}")).unwrap_or_default()
            ),
            r.first
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/flowlogs").join(name)
    }

    fn args(files: &[&str]) -> FlowlogsArgs {
        FlowlogsArgs {
            files: files.iter().map(|f| fixture(f)).collect(),
            format: FlowlogsFormat::Text,
            top: 3,
            format_fields: None,
            vpn_ports: vec![51821],
            max_flows: 1000,
            window: 600,
        }
    }

    #[test]
    fn options_merge_ports_and_check_fields() {
        let mut a = args(&["default-v2.log"]);
        a.vpn_ports = vec![500, 51821];
        let o = options(&a).unwrap();
        assert_eq!(o.settings.vpn_ports, vec![500, 4500, 51820, 51821]);
        a.format_fields = Some("${version} ${srcaddr".to_string());
        let e = options(&a).unwrap_err().to_string();
        assert!(e.starts_with("--format-fields: "), "{e}");
    }

    #[test]
    fn report_and_tables() {
        let a = args(&["default-v2.log", "custom-v5.log.gz"]);
        let result = flowlogs::analyze_files(&a.files, options(&a).unwrap()).unwrap();
        let report = build_report(&a, &result);
        assert_eq!(crate::app::decide(&report.findings, Some(Severity::Medium)), Outcome::Findings);
        assert_eq!(report.ingest.artifacts, 2);
        assert_eq!(report.rules.len(), flowlogs::RULES.len());
        let mut out = Vec::new();
        render_top("by bytes", &result.top_by_bytes, &mut out).unwrap();
        render_files(&result, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Top rejected flows by bytes (3):"), "{text}");
        assert!(text.contains("10.0.2.30") && text.contains("75000"), "{text}");
        assert!(text.contains("custom-v5.log.gz (gzip): 10 line(s), 9 record(s): 5 accepted, 3 rejected"), "{text}");
        let json: serde_json::Map<String, serde_json::Value> = flowlogs_value(&result).into_iter().collect();
        assert_eq!(json["records"], 29);
        assert_eq!(json["malformed"], 0);
        assert_eq!(json["top_rejected"]["by_bytes"][0]["bytes"], 75000);
        assert_eq!(json["top_rejected"]["by_packets"].as_array().unwrap().len(), 3);
    }
}
