//! The JSON report, format `netsleuth.report/v1` (docs/report-format.md, schema in
//! docs/schemas/report-v1.schema.json): the stable machine interface of `analyze`.

use std::io::{self, Write};

use netsleuth_model::Finding;
use serde::Serialize;

use crate::{format_rfc3339, Report, SeverityCounts};

/// The `schema` value of this format. A change that removes or retypes a field gets a new
/// version; new optional fields may be added within v1.
pub const SCHEMA: &str = "netsleuth.report/v1";

#[derive(Debug, Serialize)]
struct Document<'a> {
    schema: &'static str,
    tool: ToolDoc<'a>,
    bundle: &'a str,
    collected_at: Option<String>,
    salt_id: Option<&'a str>,
    summary: Summary,
    findings: &'a [Finding],
    skipped_files: &'a [String],
}

#[derive(Debug, Serialize)]
struct ToolDoc<'a> {
    name: &'a str,
    version: &'a str,
}

#[derive(Debug, Serialize)]
struct Summary {
    findings: usize,
    by_severity: BySeverity,
    rules_run: usize,
    hosts: usize,
    artifacts: usize,
    kubernetes_objects: usize,
    aws_objects: usize,
    ingest_issues: usize,
    redactions: usize,
    skipped_files: usize,
}

#[derive(Debug, Serialize)]
struct BySeverity {
    critical: usize,
    high: usize,
    medium: usize,
    low: usize,
    info: usize,
}

/// The report as a JSON value.
pub fn to_value(report: &Report) -> serde_json::Value {
    // Serialising plain structs of strings and numbers cannot fail.
    serde_json::to_value(document(report)).unwrap_or(serde_json::Value::Null)
}

/// Writes the report as pretty-printed JSON followed by a newline.
pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &document(report))?;
    out.write_all(b"\n")
}

fn document(report: &Report) -> Document<'_> {
    let c = SeverityCounts::of(&report.findings);
    Document {
        schema: SCHEMA,
        tool: ToolDoc { name: &report.tool.name, version: &report.tool.version },
        bundle: &report.bundle,
        collected_at: report.collected_at.and_then(format_rfc3339),
        salt_id: report.salt_id.as_deref(),
        summary: Summary {
            findings: c.total(),
            by_severity: BySeverity { critical: c.critical, high: c.high, medium: c.medium, low: c.low, info: c.info },
            rules_run: report.rules.len(),
            hosts: report.ingest.hosts,
            artifacts: report.ingest.artifacts,
            kubernetes_objects: report.ingest.kubernetes_objects,
            aws_objects: report.ingest.aws_objects,
            ingest_issues: report.ingest.ingest_issues,
            redactions: report.ingest.redactions,
            skipped_files: report.skipped_files.len(),
        },
        findings: &report.findings,
        skipped_files: &report.skipped_files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn top_level_shape() {
        let v = to_value(&testdata::report());
        assert_eq!(v["schema"], "netsleuth.report/v1");
        assert_eq!(v["tool"]["name"], "netsleuth");
        assert_eq!(v["collected_at"], "2026-11-23T01:10:09Z");
        assert_eq!(v["salt_id"], "ab12cd34");
        assert_eq!(v["summary"]["findings"], 2);
        assert_eq!(v["summary"]["by_severity"]["high"], 1);
        assert_eq!(v["summary"]["skipped_files"], 1);
        assert_eq!(v["skipped_files"][0], "notes.txt");
    }

    #[test]
    fn findings_have_exactly_the_documented_keys() {
        let v = to_value(&testdata::report());
        let f = v["findings"][0].as_object().expect("finding object");
        let mut keys: Vec<&str> = f.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["confidence", "detail", "evidence", "fix", "layer", "rule", "severity", "subject", "title"]);
        assert_eq!(f["evidence"][0]["location"]["kind"], "file");
        assert_eq!(f["evidence"][0]["location"]["line"], 3);
        assert_eq!(v["findings"][1]["evidence"][0]["location"]["pointer"], "/items/0/spec/dnsConfig");
        assert_eq!(v["findings"][1]["confidence"], "likely");
    }

    #[test]
    fn unknown_clock_is_null() {
        let mut r = testdata::report();
        r.collected_at = None;
        r.salt_id = None;
        let v = to_value(&r);
        assert!(v["collected_at"].is_null() && v["salt_id"].is_null());
    }

    #[test]
    fn render_ends_with_newline_and_parses() {
        let mut out = Vec::new();
        render(&testdata::report(), &mut out).expect("render");
        assert_eq!(out.last(), Some(&b'\n'));
        let back: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(back, to_value(&testdata::report()));
    }
}
