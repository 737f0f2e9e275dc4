//! Renderers of reachability matrices: a readable text grid (a per-source list when the
//! matrix is too wide to read), CSV with one row per pair, and JSON (`netsleuth.reach/v1`).

use std::io::{self, Write};

use serde_json::{json, Value};

use super::{Aggregate, Cell, Matrix, Side};

/// Text grids wider than this many targets are printed as per-source lists.
pub const GRID_MAX_TARGETS: usize = 24;

/// In the per-source list, at most this many denied targets are named per source.
pub const LIST_MAX_NAMES: usize = 10;

fn symbol(c: Cell) -> &'static str {
    match c {
        Cell::Allowed | Cell::SelfTraffic | Cell::SameNode => "Y",
        Cell::DeniedEgress => "e",
        Cell::DeniedIngress => "i",
        Cell::DeniedBoth => "b",
        Cell::Unknown => "?",
    }
}

/// Text: a header, then a grid (Y allowed; e/i/b denied by egress, ingress or both) or,
/// for wide matrices, one line per source naming the denied targets.
pub fn text(m: &Matrix<'_>, explain: bool, issues: &[String], w: &mut dyn Write) -> io::Result<()> {
    let pairs = m.source_count() * m.target_count();
    writeln!(
        w,
        "{} {}: {} of {} pairs allowed ({} sources x {} targets)",
        m.protocol,
        m.port,
        m.allowed_count(),
        pairs,
        m.source_count(),
        m.target_count()
    )?;
    issues_text(issues, w)?;
    let sources: Vec<String> = m.sources().map(|e| e.name()).collect();
    let targets: Vec<String> = m.targets().map(|e| e.name()).collect();
    if m.target_count() <= GRID_MAX_TARGETS {
        writeln!(w, "legend: Y allowed, e denied by egress, i denied by ingress, b by both, ? unknown")?;
        for (j, t) in targets.iter().enumerate() {
            writeln!(w, "  [{}] {t}", j + 1)?;
        }
        let name_w = sources.iter().map(String::len).max().unwrap_or(0).max(6);
        let col_w = (targets.len().to_string().len() + 2).max(3);
        write!(w, "{:name_w$}", "source")?;
        for j in 0..targets.len() {
            write!(w, " {:>col_w$}", format!("[{}]", j + 1))?;
        }
        writeln!(w)?;
        for (i, s) in sources.iter().enumerate() {
            write!(w, "{s:name_w$}")?;
            for c in m.row(i) {
                write!(w, " {:>col_w$}", symbol(*c))?;
            }
            writeln!(w)?;
        }
    } else {
        for (i, s) in sources.iter().enumerate() {
            let row = m.row(i);
            let denied: Vec<usize> = (0..row.len()).filter(|j| !row[*j].is_allowed()).collect();
            write!(w, "{s}: {} of {} allowed", row.len() - denied.len(), row.len())?;
            if !denied.is_empty() {
                let names: Vec<String> = denied
                    .iter()
                    .take(LIST_MAX_NAMES)
                    .map(|j| format!("{} ({})", targets[*j], row[*j].reason()))
                    .collect();
                write!(w, "; denied: {}", names.join(", "))?;
                if denied.len() > LIST_MAX_NAMES {
                    write!(w, " and {} more (use --format csv for all)", denied.len() - LIST_MAX_NAMES)?;
                }
            }
            writeln!(w)?;
        }
    }
    if explain {
        writeln!(w, "denied pairs:")?;
        for (i, s) in sources.iter().enumerate() {
            for (j, t) in targets.iter().enumerate() {
                let Some(x) = m.explain(i, j).filter(|x| !x.cell.is_allowed()) else { continue };
                writeln!(w, "  {s} -> {t}: {}", describe(&x.egress, &x.ingress))?;
            }
        }
    }
    Ok(())
}

/// Input problems, stated before the matrix they may have made incomplete.
fn issues_text(issues: &[String], w: &mut dyn Write) -> io::Result<()> {
    if !issues.is_empty() {
        writeln!(w, "warning: {} input problem(s) may make this incomplete:", issues.len())?;
        for i in issues {
            writeln!(w, "  {i}")?;
        }
    }
    Ok(())
}

fn side_text(s: &Side) -> String {
    match s {
        Side::NotIsolated => "not isolated".into(),
        Side::AllowedBy { policy, rule } => format!("allowed by {policy} {rule}"),
        Side::DeniedBy(ps) => format!("denied (isolated by {})", ps.join(", ")),
    }
}

fn describe(egress: &Side, ingress: &Side) -> String {
    format!("egress {}; ingress {}", side_text(egress), side_text(ingress))
}

fn side_json(s: &Side) -> Value {
    match s {
        Side::NotIsolated => json!({"verdict": "not-isolated"}),
        Side::AllowedBy { policy, rule } => json!({"verdict": "allowed", "policy": policy, "rule": rule}),
        Side::DeniedBy(ps) => json!({"verdict": "denied", "policies": ps}),
    }
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// CSV: `source,target,protocol,port,allowed,reason[,egress,ingress]`, one row per pair.
pub fn csv(m: &Matrix<'_>, explain: bool, w: &mut dyn Write) -> io::Result<()> {
    write!(w, "source,target,protocol,port,allowed,reason")?;
    if explain {
        write!(w, ",egress,ingress")?;
    }
    writeln!(w)?;
    let sources: Vec<String> = m.sources().map(|e| csv_field(&e.name())).collect();
    let targets: Vec<String> = m.targets().map(|e| csv_field(&e.name())).collect();
    for (i, s) in sources.iter().enumerate() {
        for (j, (t, c)) in targets.iter().zip(m.row(i)).enumerate() {
            write!(w, "{s},{t},{},{},{},{}", m.protocol, m.port, c.is_allowed(), c.reason())?;
            if let Some(x) = explain.then(|| m.explain(i, j)).flatten() {
                write!(w, ",{},{}", csv_field(&side_text(&x.egress)), csv_field(&side_text(&x.ingress)))?;
            }
            writeln!(w)?;
        }
    }
    Ok(())
}

/// JSON `netsleuth.reach/v1`: names, a boolean matrix, a reason matrix, and with
/// `explain` the policies behind each denied pair.
pub fn json(m: &Matrix<'_>, explain: bool, issues: &[String], w: &mut dyn Write) -> io::Result<()> {
    let allowed: Vec<Value> = (0..m.source_count())
        .map(|i| Value::from(m.row(i).iter().map(|c| c.is_allowed()).collect::<Vec<_>>()))
        .collect();
    let reasons: Vec<Value> =
        (0..m.source_count()).map(|i| Value::from(m.row(i).iter().map(|c| c.reason()).collect::<Vec<_>>())).collect();
    let mut doc = json!({
        "format": "netsleuth.reach/v1",
        "protocol": m.protocol.as_str(),
        "port": m.port,
        "sources": m.sources().map(|e| e.name()).collect::<Vec<_>>(),
        "targets": m.targets().map(|e| e.name()).collect::<Vec<_>>(),
        "allowed": allowed,
        "reasons": reasons,
        "summary": {"pairs": m.source_count() * m.target_count(), "allowed": m.allowed_count()},
        "input_issues": issues,
    });
    if explain {
        let mut denied = Vec::new();
        for i in 0..m.source_count() {
            for j in 0..m.target_count() {
                if let Some(x) = m.explain(i, j).filter(|x| !x.cell.is_allowed()) {
                    denied.push(json!({
                        "source": i, "target": j, "reason": x.cell.reason(),
                        "egress": side_json(&x.egress), "ingress": side_json(&x.ingress),
                    }));
                }
            }
        }
        doc["denied"] = Value::from(denied);
    }
    serde_json::to_writer(&mut *w, &doc)?;
    writeln!(w)
}

/// Text of an aggregate: `allowed/total` per group pair.
pub fn aggregate_text(a: &Aggregate, issues: &[String], w: &mut dyn Write) -> io::Result<()> {
    let allowed: u64 = a.allowed.iter().sum();
    let total: u64 = a.total.iter().sum();
    writeln!(w, "{} {}: {allowed} of {total} pod pairs allowed, by namespace (allowed/pairs)", a.protocol, a.port)?;
    issues_text(issues, w)?;
    let name_w = a.rows.iter().map(String::len).max().unwrap_or(0).max(6);
    let col_w = a.cols.iter().map(String::len).max().unwrap_or(0).max(9);
    write!(w, "{:name_w$}", "source")?;
    for c in &a.cols {
        write!(w, " {c:>col_w$}")?;
    }
    writeln!(w)?;
    for (i, r) in a.rows.iter().enumerate() {
        write!(w, "{r:name_w$}")?;
        for j in 0..a.cols.len() {
            let (n, t) = a.get(i, j);
            write!(w, " {:>col_w$}", format!("{n}/{t}"))?;
        }
        writeln!(w)?;
    }
    Ok(())
}

/// CSV of an aggregate: `source_group,target_group,protocol,port,allowed_pairs,pairs`.
pub fn aggregate_csv(a: &Aggregate, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "source_group,target_group,protocol,port,allowed_pairs,pairs")?;
    for (i, r) in a.rows.iter().enumerate() {
        for (j, c) in a.cols.iter().enumerate() {
            let (n, t) = a.get(i, j);
            writeln!(w, "{},{},{},{},{n},{t}", csv_field(r), csv_field(c), a.protocol, a.port)?;
        }
    }
    Ok(())
}

/// JSON of an aggregate (`netsleuth.reach/v1`, `"by": "namespace"`).
pub fn aggregate_json(a: &Aggregate, issues: &[String], w: &mut dyn Write) -> io::Result<()> {
    let grid = |v: &[u64]| -> Vec<Value> {
        (0..a.rows.len())
            .map(|i| Value::from(v.get(i * a.cols.len()..(i + 1) * a.cols.len()).unwrap_or(&[]).to_vec()))
            .collect()
    };
    let doc = json!({
        "format": "netsleuth.reach/v1",
        "by": "namespace",
        "protocol": a.protocol.as_str(),
        "port": a.port,
        "sources": a.rows,
        "targets": a.cols,
        "allowed_pairs": grid(&a.allowed),
        "pairs": grid(&a.total),
        "input_issues": issues,
    });
    serde_json::to_writer(&mut *w, &doc)?;
    writeln!(w)
}
