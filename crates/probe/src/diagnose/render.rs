//! Output of a diagnosis: the layer-by-layer table, the verdict and fix, causes with evidence
//! (text, optional colour), or JSON (`{"target", "layers", "causes", ...}`).

use std::fmt::Write as _;

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};

use super::engine::{confidence_str, DiagnoseReport};
use super::types::LayerStatus;

fn paint(s: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn status_cell(s: LayerStatus, color: bool) -> String {
    let code = match s {
        LayerStatus::Ok => "32",
        LayerStatus::Fail => "1;31",
        LayerStatus::Warn => "1;33",
        LayerStatus::Unknown => "35",
        LayerStatus::Skipped => "2",
    };
    paint(s.as_str(), code, color)
}

/// The human report.
pub fn render_text(r: &DiagnoseReport, color: bool) -> String {
    let mut out = String::new();
    let target = match (r.address, r.port) {
        (Some(a), Some(p)) if a.to_string() != r.target => format!("{} ({a}) port {p}", r.target),
        (Some(a), None) if a.to_string() != r.target => format!("{} ({a})", r.target),
        (_, Some(p)) => format!("{} port {p}", r.target),
        _ => r.target.clone(),
    };
    let _ = writeln!(out, "{} {target} over {}", paint("diagnose", "1", color), r.proto.as_str());
    if let Some(rt) = &r.route {
        let _ = writeln!(out, "route: {rt}");
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic).set_width(120);
    t.set_header(vec!["probe", "layer", "status", "observed", "ms"]);
    for l in &r.layers {
        t.add_row(vec![
            l.probe.clone(),
            l.layer.as_str().to_string(),
            status_cell(l.status, color),
            l.summary.clone(),
            format!("{:.0}", l.duration.as_secs_f64() * 1000.0),
        ]);
    }
    let _ = writeln!(out, "{t}");
    // The evidence of rows that did not pass (the table keeps one line per probe).
    for l in
        r.layers.iter().filter(|l| matches!(l.status, LayerStatus::Fail | LayerStatus::Warn | LayerStatus::Unknown))
    {
        for e in l.evidence.iter().take(6) {
            let _ = writeln!(out, "  {} {e}", paint(&format!("{}:", l.probe), "2", color));
        }
    }
    if r.causes.is_empty() {
        let _ = writeln!(out, "{} {}", paint("verdict:", "1;32", color), r.verdict);
    } else {
        let _ = writeln!(out, "{}", paint("verdict (most likely cause first):", "1;31", color));
        for (i, c) in r.causes.iter().enumerate() {
            let _ = writeln!(
                out,
                "{}. [{}] {} — {} ({} confidence, layer {})",
                i + 1,
                c.rule,
                paint(&c.title, "1", color),
                c.subject,
                confidence_str(c.confidence),
                c.layer.as_str()
            );
            let _ = writeln!(out, "   {}", c.detail);
            for e in c.evidence.iter().take(12) {
                let _ = writeln!(out, "   evidence ({}): {}", e.location, e.excerpt);
            }
            if !c.fix.is_empty() {
                let _ = writeln!(out, "   {} {}", paint("fix:", "1", color), c.fix);
            }
        }
    }
    if !r.other_findings.is_empty() {
        let _ = writeln!(out, "other findings (not breaking this path):");
        for f in &r.other_findings {
            let _ = writeln!(out, "  [{}] {} {}: {}", f.rule, f.severity.as_str(), f.subject, f.title);
        }
    }
    let _ = writeln!(out, "done in {:.0} ms", r.duration_ms);
    out
}

/// The JSON report (pretty-printed, one document).
pub fn render_json(r: &DiagnoseReport) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::transport::Proto;
    use crate::diagnose::types::LayerResult;
    use netsleuth_model::{Confidence, Finding, Layer, Severity};
    use std::time::Duration;

    fn report(causes: Vec<Finding>) -> DiagnoseReport {
        DiagnoseReport {
            target: "10.0.0.9".into(),
            address: Some("10.0.0.9".parse().expect("ip")),
            port: Some(80),
            proto: Proto::Tcp,
            route: Some("10.0.0.9 via 10.0.0.1 dev eth0".into()),
            layers: vec![LayerResult {
                layer: Layer::Remote,
                probe: "transport".into(),
                status: LayerStatus::Fail,
                summary: "refused".into(),
                evidence: vec!["tcp 10.0.0.9:80: Refused".into()],
                duration: Duration::from_millis(3),
            }],
            causes,
            other_findings: vec![],
            verdict: "v".into(),
            duration_ms: 12.0,
            details: Default::default(),
        }
    }

    #[test]
    fn text_and_json_shapes() {
        let c = Finding {
            rule: "DIAG-TCP-001".into(),
            severity: Severity::High,
            layer: Layer::Remote,
            subject: "diagnose/10.0.0.9:80".into(),
            title: "nothing listens".into(),
            detail: "d".into(),
            evidence: vec![],
            fix: "start it".into(),
            confidence: Confidence::Confirmed,
        };
        let r = report(vec![c]);
        let text = render_text(&r, false);
        assert!(text.contains("transport") && text.contains("fail"), "{text}");
        assert!(text.contains("1. [DIAG-TCP-001] nothing listens"), "{text}");
        assert!(text.contains("fix: start it"));
        assert!(text.contains("  transport: tcp 10.0.0.9:80: Refused"), "evidence of failed rows: {text}");
        assert!(!text.contains('\x1b'), "no colour unless asked");
        assert!(render_text(&r, true).contains('\x1b'));
        let v: serde_json::Value = serde_json::from_str(&render_json(&r)).expect("json");
        assert_eq!(v["target"], "10.0.0.9");
        assert_eq!(v["layers"][0]["status"], "fail");
        assert_eq!(v["causes"][0]["rule"], "DIAG-TCP-001");
        assert_eq!(v["causes"][0]["confidence"], "confirmed");
        let healthy = render_json(&report(vec![]));
        let v: serde_json::Value = serde_json::from_str(&healthy).expect("json");
        assert_eq!(v["causes"].as_array().map(Vec::len), Some(0));
    }
}
