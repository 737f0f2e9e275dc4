//! `netsleuth pcap FILE...`: analyses packet captures (pcap, pcapng, gzip) and reports the
//! findings through the same renderers as `analyze`, optionally with a per-flow table.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use netsleuth_capture::{CaptureReport, FlowSummary};
use netsleuth_model::finding::sort_findings;
use netsleuth_model::{Finding, Severity};
use netsleuth_report::{IngestSummary, Report, RuleInfo};

use crate::app::Outcome;
use crate::args::ColorWhen;

pub(crate) const PCAP_EXAMPLES: &str = "\
Examples:
  netsleuth pcap capture.pcap
  netsleuth pcap node-a.pcapng node-b.pcap.gz --format json
  netsleuth pcap capture.pcap --flows
  netsleuth pcap vxlan-underlay.pcap --mtu 1450    # report DF packets over the path MTU
  tcpdump -i any -s 200 -c 1000 -w capture.pcap   # make a capture to analyse

Exit codes: 0 no finding of medium severity or higher, 1 such findings, 2 usage error or a
file that cannot be opened. Damaged captures are findings (PCAP-001), read up to the damage.";

#[derive(Debug, Args)]
pub(crate) struct PcapArgs {
    /// Capture files: pcap or pcapng, optionally gzip-compressed; read as a stream.
    #[arg(value_name = "FILE", required = true)]
    pub(crate) files: Vec<PathBuf>,

    /// Output format.
    #[arg(long, short, value_enum, default_value_t = PcapFormat::Text)]
    pub(crate) format: PcapFormat,

    /// Also show a per-flow summary (packets, bytes, retransmissions, handshake RTT, MSS).
    #[arg(long)]
    pub(crate) flows: bool,

    /// Path MTU to check against: don't-fragment packets larger than this are reported
    /// (PCAP-013). Without it, MTUs announced by ICMP too-big messages in the capture are used.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(68..=65535))]
    pub(crate) mtu: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PcapFormat {
    /// Human-readable, grouped by layer.
    Text,
    /// The report as JSON (netsleuth.report/v1) with `flows` and `captures` added.
    Json,
}

pub(crate) fn run(args: &PcapArgs, color: ColorWhen) -> Result<Outcome> {
    let mut results = Vec::new();
    for file in &args.files {
        let options = netsleuth_capture::Options { mtu: args.mtu };
        match netsleuth_capture::analyze_file_with(file, options) {
            Ok(r) => results.push((file.display().to_string(), r)),
            Err(e) => bail!("cannot open {}: {e}", file.display()),
        }
    }
    let report = build_report(args, &results);
    let outcome = crate::app::decide(&report.findings, Some(Severity::Medium));
    let stdout = io::stdout();
    let color = crate::app::wants_color(color, &stdout);
    crate::app::write_stdout(|w| match args.format {
        PcapFormat::Text => {
            netsleuth_report::text::render(&report, &netsleuth_report::text::TextOptions { color }, w)?;
            if args.flows {
                for (name, r) in &results {
                    render_flows(name, &r.flows, w)?;
                }
            }
            Ok(())
        }
        PcapFormat::Json => {
            let mut value = netsleuth_report::json::to_value(&report);
            if let Some(obj) = value.as_object_mut() {
                obj.insert("captures".to_string(), captures_value(&results, args.flows));
            }
            serde_json::to_writer_pretty(&mut *w, &value)?;
            w.write_all(b"\n")
        }
    })?;
    Ok(outcome)
}

/// The rule catalog entries of the capture rules.
pub(crate) fn rule_infos() -> Vec<RuleInfo> {
    crate::app::capture_rule_infos(netsleuth_capture::RULES)
}

fn build_report(args: &PcapArgs, results: &[(String, CaptureReport)]) -> Report {
    let mut findings: Vec<Finding> = results.iter().flat_map(|(_, r)| r.findings.iter().cloned()).collect();
    sort_findings(&mut findings);
    let ingest = IngestSummary {
        artifacts: results.len(),
        ingest_issues: results.iter().filter(|(_, r)| r.stats.issue.is_some()).count(),
        ..IngestSummary::default()
    };
    crate::app::files_report(&args.files, findings, ingest, rule_infos())
}

fn captures_value(results: &[(String, CaptureReport)], flows: bool) -> serde_json::Value {
    results
        .iter()
        .map(|(name, r)| {
            let mut v = serde_json::json!({
                "file": name,
                "packets": r.stats.packets,
                "bytes": r.stats.bytes,
                "snaplen_cut": r.stats.snaplen_cut,
                "counts": r.counts,
            });
            if flows {
                v["flows"] = serde_json::to_value(&r.flows).unwrap_or_default();
            }
            v
        })
        .collect()
}

fn render_flows(name: &str, flows: &[FlowSummary], w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "\nFlows in {name} ({}):", flows.len())?;
    writeln!(
        w,
        "  {:<5} {:<46} {:<46} {:>8} {:>10} {:>7} {:>7} {:>7} {:>9} {:>5}",
        "proto", "client", "server", "packets", "bytes", "retrans", "dupack", "zerowin", "rtt_ms", "mss"
    )?;
    for f in flows {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
        writeln!(
            w,
            "  {:<5} {:<46} {:<46} {:>8} {:>10} {:>7} {:>7} {:>7} {:>9} {:>5}{}",
            f.protocol,
            f.client,
            f.server,
            f.packets,
            f.bytes,
            opt(f.retransmissions.map(|n| n.to_string())),
            opt(f.duplicate_acks.map(|n| n.to_string())),
            opt(f.zero_windows.map(|n| n.to_string())),
            opt(f.handshake_rtt_ms.map(|n| format!("{n:.3}"))),
            opt(f.mss.map(|n| n.to_string())),
            if f.vxlan { "  (in VXLAN)" } else { "" }
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/captures").join(name)
    }

    fn load(names: &[&str]) -> (PcapArgs, Vec<(String, CaptureReport)>) {
        let files: Vec<PathBuf> = names.iter().map(|n| fixture(n)).collect();
        let results = files
            .iter()
            .map(|f| (f.display().to_string(), netsleuth_capture::analyze_file(f).expect("fixture")))
            .collect();
        (PcapArgs { files, format: PcapFormat::Text, flows: true, mtu: None }, results)
    }

    #[test]
    fn report_merges_files_sorted_inside_out() {
        let (args, results) = load(&["wg-blocked.pcap", "dns-down.pcap"]);
        let report = build_report(&args, &results);
        let layers: Vec<_> = report.findings.iter().map(|f| f.layer).collect();
        let mut sorted = layers.clone();
        sorted.sort();
        assert_eq!(layers, sorted);
        assert_eq!(layers.first(), Some(&netsleuth_model::Layer::Dns));
        assert!(report.findings.iter().any(|f| f.rule == "PCAP-008"));
        assert_eq!(report.rules.len(), netsleuth_capture::RULES.len());
        assert_eq!(crate::app::decide(&report.findings, Some(Severity::Medium)), Outcome::Findings);
    }

    #[test]
    fn flows_table_and_json_captures() {
        let (_, results) = load(&["tcp-healthy.pcap"]);
        let mut out = Vec::new();
        render_flows("x.pcap", &results[0].1.flows, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Flows in x.pcap (1):"), "{text}");
        assert!(text.contains("10.214.0.2:8080") && text.contains("1460"), "{text}");
        let v = captures_value(&results, true);
        assert_eq!(v[0]["counts"]["tcp_retransmissions"], 0);
        assert_eq!(v[0]["flows"][0]["protocol"], "tcp");
        assert_eq!(captures_value(&results, false)[0].get("flows"), None);
    }
}
