//! Renderers of netsleuth results: human text, versioned JSON (`netsleuth.report/v1`) and
//! SARIF 2.1.0. Renderers never decide: they show the `Report` the caller assembled.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod json;
pub mod sarif;
pub mod text;

use netsleuth_model::{Finding, Layer, Severity};

/// The program that produced a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    pub name: String,
    pub version: String,
    /// Absolute URI with information about the tool (SARIF `informationUri`).
    pub information_uri: String,
}

/// One rule of the catalog as renderers need it (SARIF `rules`, `netsleuth rules`,
/// `netsleuth explain`). The CLI fills it from the analysis catalog, so this crate does
/// not depend on the analyses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    pub id: String,
    pub layer: Layer,
    /// Default severity; a finding may carry another one.
    pub severity: Severity,
    pub title: String,
    pub rationale: String,
    /// Upstream docs and issues (owner/repo#N or URLs).
    pub references: Vec<String>,
    /// An example of what the rule reports.
    pub example: String,
}

/// What was read from the bundle, in numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestSummary {
    /// Host folders under `hosts/`.
    pub hosts: usize,
    /// Files handed to a parser (whether or not they parsed).
    pub artifacts: usize,
    /// Kubernetes objects read (typed or only counted by kind).
    pub kubernetes_objects: usize,
    /// AWS objects read.
    pub aws_objects: usize,
    /// Files or parts of files that could not be parsed (each is an ING-001 finding).
    pub ingest_issues: usize,
    /// Secrets replaced by fingerprints while reading.
    pub redactions: usize,
}

/// Everything a renderer shows, assembled by the caller: findings already filtered and
/// sorted inside-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub tool: Tool,
    /// The bundle path as the user gave it.
    pub bundle: String,
    /// Absolute `file://` URI of the bundle folder, ending in `/` (SARIF `BUNDLE` base);
    /// None when it could not be resolved.
    pub bundle_uri: Option<String>,
    /// Unix seconds that age checks were measured against: the bundle's `collected_at`,
    /// or the `--now` override. None: unknown.
    pub collected_at: Option<i64>,
    /// Id of the redaction key (same id: fingerprints of two bundles are comparable).
    pub salt_id: Option<String>,
    pub findings: Vec<Finding>,
    /// Bundle-relative paths of files no parser claimed.
    pub skipped_files: Vec<String>,
    pub ingest: IngestSummary,
    /// The rules that were run, in catalog order.
    pub rules: Vec<RuleInfo>,
}

/// Findings per severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeverityCounts {
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub info: usize,
}

impl SeverityCounts {
    pub fn of(findings: &[Finding]) -> SeverityCounts {
        let mut c = SeverityCounts::default();
        for f in findings {
            match f.severity {
                Severity::Critical => c.critical += 1,
                Severity::High => c.high += 1,
                Severity::Medium => c.medium += 1,
                Severity::Low => c.low += 1,
                Severity::Info => c.info += 1,
            }
        }
        c
    }

    pub fn total(&self) -> usize {
        self.critical + self.high + self.medium + self.low + self.info
    }
}

/// Formats unix seconds as an RFC 3339 UTC time (`2026-11-23T01:10:09Z`); None for times
/// outside years 0000–9999, which RFC 3339 cannot express.
pub fn format_rfc3339(secs: i64) -> Option<String> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil from days (Howard Hinnant's algorithm), shifted so the era starts in March.
    let z = days.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe.checked_add(era.checked_mul(400)?)? + i64::from(m <= 2);
    if !(0..=9999).contains(&y) {
        return None;
    }
    Some(format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"))
}

/// Replaces control characters (other than newline and tab) with visible `\xNN` escapes, so
/// text copied from an artifact cannot move the cursor or recolour a terminal.
pub(crate) fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
pub(crate) mod testdata {
    use super::*;
    use netsleuth_model::{Confidence, Evidence, Location};

    /// A report with one ingest finding (file + line + column), one DNS finding with two
    /// pieces of evidence (a JSON pointer and a derived fact), and a skipped file.
    pub(crate) fn report() -> Report {
        Report {
            tool: Tool {
                name: "netsleuth".into(),
                version: "0.1.0".into(),
                information_uri: "https://example.invalid/netsleuth".into(),
            },
            bundle: "./bundle".into(),
            bundle_uri: Some("file:///tmp/my%20bundle/".into()),
            collected_at: Some(1_795_396_209),
            salt_id: Some("ab12cd34".into()),
            findings: vec![
                Finding {
                    rule: "ING-001".into(),
                    severity: Severity::Medium,
                    layer: Layer::Ingest,
                    subject: "bundle/hosts/a/nft.json".into(),
                    title: "Cannot parse hosts/a/nft.json:3:17".into(),
                    detail: "invalid JSON: expected `,` or `}`".into(),
                    evidence: vec![Evidence::new(
                        Location::File { path: "hosts/a/nft.json".into(), line: Some(3), column: Some(17) },
                        "invalid JSON\u{1b}[2J",
                    )],
                    fix: "Re-collect with `nft -j list ruleset`.".into(),
                    confidence: Confidence::Confirmed,
                },
                Finding {
                    rule: "DNS-001".into(),
                    severity: Severity::High,
                    layer: Layer::Dns,
                    subject: "host/node-1/resolv".into(),
                    title: "ndots:5 with 3 search domains".into(),
                    detail: "Every external name costs 4 extra queries.\nSecond line.".into(),
                    evidence: vec![
                        Evidence::new(Location::json("kubernetes/pods.json", "/items/0/spec/dnsConfig"), "ndots: 5"),
                        Evidence::new(Location::Derived, "3 search domains"),
                    ],
                    fix: "kubectl patch deploy web -p '{\"spec\":{}}'\nkubectl rollout status deploy/web".into(),
                    confidence: Confidence::Likely,
                },
            ],
            skipped_files: vec!["notes.txt".into()],
            ingest: IngestSummary {
                hosts: 1,
                artifacts: 2,
                kubernetes_objects: 3,
                aws_objects: 0,
                ingest_issues: 1,
                redactions: 0,
            },
            rules: vec![
                RuleInfo {
                    id: "DNS-001".into(),
                    layer: Layer::Dns,
                    severity: Severity::Medium,
                    title: "ndots amplification".into(),
                    rationale: "Many queries per lookup.".into(),
                    references: vec!["https://example.invalid/dns".into()],
                    example: "ndots:5".into(),
                },
                RuleInfo {
                    id: "ING-001".into(),
                    layer: Layer::Ingest,
                    severity: Severity::Medium,
                    title: "Artifact could not be parsed".into(),
                    rationale: "A file could not be parsed.".into(),
                    references: vec!["docs/bundle-format.md".into()],
                    example: "hosts/gw-1/nft.json:3:17: invalid JSON".into(),
                },
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(format_rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(format_rfc3339(1_795_396_209).as_deref(), Some("2026-11-23T01:10:09Z"));
        assert_eq!(format_rfc3339(951_782_400).as_deref(), Some("2000-02-29T00:00:00Z"));
        assert_eq!(format_rfc3339(-1).as_deref(), Some("1969-12-31T23:59:59Z"));
        assert_eq!(format_rfc3339(i64::MAX), None);
        assert_eq!(format_rfc3339(i64::MIN), None);
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("a\u{1b}[31mb\tc\nd"), "a\\x1b[31mb\tc\nd");
        assert!(matches!(printable("plain"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn severity_counts() {
        let r = testdata::report();
        let c = SeverityCounts::of(&r.findings);
        assert_eq!((c.high, c.medium, c.total()), (1, 1, 2));
    }
}
