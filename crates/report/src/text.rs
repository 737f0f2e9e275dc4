//! The human report: findings grouped by layer in inside-out order, each with its evidence
//! and fix, then a summary. Colour is optional and never wraps or splits a line.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use netsleuth_model::{Confidence, Finding, Layer, Severity};

use crate::{format_rfc3339, printable, Report, SeverityCounts};

/// How to render text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextOptions {
    /// Emit ANSI colour and bold. The caller decides (terminal, NO_COLOR, `--color`).
    pub color: bool,
}

/// Styles of the text output; all plain when colour is off.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Palette {
    color: bool,
}

impl Palette {
    pub(crate) fn new(color: bool) -> Palette {
        Palette { color }
    }

    fn pick(&self, style: Style) -> Style {
        if self.color {
            style
        } else {
            Style::new()
        }
    }

    pub(crate) fn severity(&self, s: Severity) -> Style {
        let style = match s {
            Severity::Critical => {
                Style::new().bold().fg_color(Some(AnsiColor::BrightWhite.into())).bg_color(Some(AnsiColor::Red.into()))
            }
            Severity::High => Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
            Severity::Medium => Style::new().bold().fg_color(Some(AnsiColor::Yellow.into())),
            Severity::Low => Style::new().fg_color(Some(AnsiColor::Cyan.into())),
            Severity::Info => Style::new().fg_color(Some(AnsiColor::Blue.into())),
        };
        self.pick(style)
    }

    pub(crate) fn bold(&self) -> Style {
        self.pick(Style::new().bold())
    }

    pub(crate) fn dim(&self) -> Style {
        self.pick(Style::new().dimmed())
    }

    pub(crate) fn heading(&self) -> Style {
        self.pick(Style::new().bold().underline())
    }
}

/// Width of the labels (`subject:`, `evidence:` …) so values line up.
const LABEL_WIDTH: usize = 12;

/// Writes the report as text.
pub fn render(report: &Report, options: &TextOptions, out: &mut dyn Write) -> io::Result<()> {
    let p = Palette::new(options.color);
    header(report, &p, out)?;
    if report.findings.is_empty() {
        writeln!(out, "\nNo findings.")?;
    }
    // Group by layer inside-out, keeping the caller's order inside each layer.
    for layer in Layer::ALL {
        let in_layer: Vec<&Finding> = report.findings.iter().filter(|f| f.layer == layer).collect();
        if in_layer.is_empty() {
            continue;
        }
        let h = p.heading();
        let n = in_layer.len();
        writeln!(out, "\n{h}{} ({n} finding{}){h:#}", layer_title(layer), plural(n))?;
        for f in in_layer {
            finding(f, &p, out)?;
        }
    }
    summary(report, &p, out)
}

fn header(report: &Report, p: &Palette, out: &mut dyn Write) -> io::Result<()> {
    let b = p.bold();
    let d = p.dim();
    writeln!(
        out,
        "{b}{} {}{b:#} report for bundle {}",
        report.tool.name,
        report.tool.version,
        printable(&report.bundle)
    )?;
    let clock = match report.collected_at.and_then(format_rfc3339) {
        Some(t) => t,
        None => "unknown (age checks say unknown)".to_string(),
    };
    let salt = report.salt_id.as_deref().map(printable).unwrap_or_else(|| "unknown".into());
    writeln!(out, "{d}snapshot time: {clock}   salt id: {salt}{d:#}")
}

fn finding(f: &Finding, p: &Palette, out: &mut dyn Write) -> io::Result<()> {
    let sev = p.severity(f.severity);
    let b = p.bold();
    writeln!(
        out,
        "\n{sev}{:<8}{sev:#} {b}{}{b:#}  {}",
        f.severity.as_str().to_ascii_uppercase(),
        printable(&f.rule),
        printable(&f.title)
    )?;
    field(out, p, "subject", &f.subject)?;
    if !f.detail.is_empty() {
        field(out, p, "detail", &f.detail)?;
    }
    for (i, e) in f.evidence.iter().enumerate() {
        let label = if i == 0 { "evidence" } else { "" };
        let line =
            if e.excerpt.is_empty() { e.location.to_string() } else { format!("{} — {}", e.location, e.excerpt) };
        field(out, p, label, &line)?;
    }
    if !f.fix.is_empty() {
        if f.fix.contains('\n') {
            // A multi-line fix (a patch, a YAML snippet, several commands) is printed
            // verbatim and unindented, so it can be copied and pasted as it is.
            let d = p.dim();
            writeln!(out, "  {d}fix:{d:#}")?;
            for line in f.fix.lines() {
                writeln!(out, "{}", printable(line))?;
            }
        } else {
            field(out, p, "fix", &f.fix)?;
        }
    }
    field(out, p, "confidence", confidence(f.confidence))
}

/// `  label:      value`, continuation lines aligned under the value.
fn field(out: &mut dyn Write, p: &Palette, label: &str, value: &str) -> io::Result<()> {
    let d = p.dim();
    let label = if label.is_empty() { String::new() } else { format!("{label}:") };
    let mut lines = value.split('\n');
    let first = lines.next().unwrap_or("");
    writeln!(out, "  {d}{label:<LABEL_WIDTH$}{d:#}{}", printable(first))?;
    for line in lines {
        writeln!(out, "  {:LABEL_WIDTH$}{}", "", printable(line))?;
    }
    Ok(())
}

fn summary(report: &Report, p: &Palette, out: &mut dyn Write) -> io::Result<()> {
    let c = SeverityCounts::of(&report.findings);
    let h = p.heading();
    let i = &report.ingest;
    writeln!(out, "\n{h}Summary{h:#}")?;
    let mut parts = Vec::new();
    for (s, n) in [
        (Severity::Critical, c.critical),
        (Severity::High, c.high),
        (Severity::Medium, c.medium),
        (Severity::Low, c.low),
        (Severity::Info, c.info),
    ] {
        let st = if n > 0 { p.severity(s) } else { Style::new() };
        parts.push(format!("{st}{n} {}{st:#}", s.as_str()));
    }
    writeln!(out, "  {:<16}{} ({})", "findings:", c.total(), parts.join(", "))?;
    writeln!(out, "  {:<16}{} (files that could not be parsed; see ING-001)", "ingest issues:", i.ingest_issues)?;
    writeln!(
        out,
        "  {:<16}{} (no parser claims them; listed in --format json)",
        "skipped files:",
        report.skipped_files.len()
    )?;
    writeln!(
        out,
        "  {:<16}{} hosts, {} artifacts, {} Kubernetes objects, {} AWS objects, {} secrets redacted",
        "read:", i.hosts, i.artifacts, i.kubernetes_objects, i.aws_objects, i.redactions
    )?;
    writeln!(out, "  {:<16}{}", "rules run:", report.rules.len())
}

pub(crate) fn layer_title(layer: Layer) -> &'static str {
    match layer {
        Layer::Ingest => "Ingest",
        Layer::Dns => "DNS",
        Layer::Pod => "Pod",
        Layer::Mesh => "Mesh",
        Layer::Policy => "Policy",
        Layer::Node => "Node",
        Layer::Cni => "CNI",
        Layer::Overlay => "Overlay",
        Layer::Tunnel => "Tunnel",
        Layer::Cloud => "Cloud",
        Layer::Remote => "Remote",
    }
}

fn confidence(c: Confidence) -> &'static str {
    match c {
        Confidence::Confirmed => "confirmed",
        Confidence::Likely => "likely",
        Confidence::Possible => "possible",
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    fn render_to_string(report: &Report, color: bool) -> String {
        let mut out = Vec::new();
        render(report, &TextOptions { color }, &mut out).expect("render");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn layers_inside_out_with_headers() {
        let text = render_to_string(&testdata::report(), false);
        let ingest = text.find("Ingest (1 finding)").expect("ingest header");
        let dns = text.find("DNS (1 finding)").expect("dns header");
        assert!(ingest < dns, "ingest comes before dns:\n{text}");
        assert!(text.contains("MEDIUM   ING-001  Cannot parse hosts/a/nft.json:3:17"), "{text}");
        assert!(text.contains("  subject:    bundle/hosts/a/nft.json"), "{text}");
        assert!(text.contains("  confidence: likely"), "{text}");
    }

    #[test]
    fn evidence_lines_and_escaped_controls() {
        let text = render_to_string(&testdata::report(), false);
        assert!(text.contains("  evidence:   hosts/a/nft.json:3:17 — invalid JSON\\x1b[2J"), "{text}");
        assert!(text.contains("  evidence:   kubernetes/pods.json#/items/0/spec/dnsConfig — ndots: 5"), "{text}");
        assert!(text.contains("              (derived) — 3 search domains"), "{text}");
        assert!(!text.contains('\u{1b}'), "no raw escape without colour");
    }

    #[test]
    fn multi_line_detail_is_aligned_and_multi_line_fix_is_verbatim() {
        let text = render_to_string(&testdata::report(), false);
        assert!(text.contains("  detail:     Every external name costs 4 extra queries.\n              Second line.\n"));
        assert!(
            text.contains("  fix:\nkubectl patch deploy web -p '{\"spec\":{}}'\nkubectl rollout status deploy/web\n")
        );
        assert!(text.contains("  fix:        Re-collect with `nft -j list ruleset`.\n"));
    }

    #[test]
    fn summary_counts() {
        let text = render_to_string(&testdata::report(), false);
        assert!(text.contains("findings:       2 (0 critical, 1 high, 1 medium, 0 low, 0 info)"), "{text}");
        assert!(text.contains("ingest issues:  1"), "{text}");
        assert!(text.contains("skipped files:  1"), "{text}");
        assert!(text.contains("snapshot time: 2026-11-23T01:10:09Z   salt id: ab12cd34"), "{text}");
    }

    #[test]
    fn colour_only_when_asked() {
        let coloured = render_to_string(&testdata::report(), true);
        assert!(coloured.contains("\u{1b}["), "colour codes expected");
        let plain = render_to_string(&testdata::report(), false);
        assert!(!plain.contains('\u{1b}'));
    }

    #[test]
    fn empty_report() {
        let mut r = testdata::report();
        r.findings.clear();
        r.collected_at = None;
        let text = render_to_string(&r, false);
        assert!(text.contains("\nNo findings.\n"), "{text}");
        assert!(text.contains("snapshot time: unknown"), "{text}");
        assert!(!text.contains("Ingest ("), "{text}");
    }
}
