//! The rule catalog for people and programs: the `netsleuth rules` table or JSON, and the
//! `netsleuth explain` page of one rule.

use std::io::{self, Write};

use comfy_table::{presets, ContentArrangement, Table};
use serde_json::json;

use crate::text::{layer_title, Palette};
use crate::RuleInfo;

/// The `schema` value of `netsleuth rules --format json`.
pub const SCHEMA: &str = "netsleuth.rules/v1";

/// The catalog as a table: id, layer, severity, title.
pub fn render_table(rules: &[RuleInfo], out: &mut dyn Write) -> io::Result<()> {
    let mut table = Table::new();
    // Plain aligned columns, like kubectl: no borders, and no wrapping, so ids and titles
    // stay on one line whatever the terminal width.
    table.load_preset(presets::NOTHING).set_content_arrangement(ContentArrangement::Disabled);
    table.set_header(["ID", "LAYER", "SEVERITY", "TITLE"]);
    for r in rules {
        table.add_row([r.id.as_str(), r.layer.as_str(), r.severity.as_str(), r.title.as_str()]);
    }
    for line in table.lines() {
        // Cells are padded to the column width; the last column's padding is noise.
        writeln!(out, "{}", line.trim_end())?;
    }
    writeln!(out, "{} rules. `netsleuth explain ID` shows why a rule matters and an example.", rules.len())
}

/// The catalog as JSON (`netsleuth.rules/v1`).
pub fn to_value(rules: &[RuleInfo]) -> serde_json::Value {
    json!({
        "schema": SCHEMA,
        "rules": rules.iter().map(rule_value).collect::<Vec<_>>(),
    })
}

/// Writes the catalog as pretty-printed JSON followed by a newline.
pub fn render_json(rules: &[RuleInfo], out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(rules))?;
    out.write_all(b"\n")
}

/// One rule as JSON: the same object as an entry of the catalog.
pub fn rule_value(r: &RuleInfo) -> serde_json::Value {
    json!({
        "id": r.id,
        "layer": r.layer.as_str(),
        "severity": r.severity.as_str(),
        "title": r.title,
        "rationale": r.rationale,
        "references": r.references,
        "example": r.example,
    })
}

/// The explain page of one rule.
pub fn render_explain(rule: &RuleInfo, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let p = Palette::new(color);
    let b = p.bold();
    let h = p.heading();
    let sev = p.severity(rule.severity);
    writeln!(out, "{b}{}{b:#}  {}", rule.id, rule.title)?;
    writeln!(
        out,
        "layer: {} ({})   default severity: {sev}{}{sev:#}",
        layer_title(rule.layer),
        rule.layer,
        rule.severity
    )?;
    writeln!(out, "\n{h}Why it matters{h:#}\n{}", rule.rationale)?;
    if !rule.references.is_empty() {
        writeln!(out, "\n{h}References{h:#}")?;
        for r in &rule.references {
            writeln!(out, "  - {r}")?;
        }
    }
    if !rule.example.is_empty() {
        writeln!(out, "\n{h}Example{h:#}")?;
        for line in rule.example.lines() {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn table_lists_every_rule_on_one_line() {
        let rules = testdata::report().rules;
        let mut out = Vec::new();
        render_table(&rules, &mut out).expect("render");
        let text = String::from_utf8(out).expect("utf-8");
        let line = text.lines().find(|l| l.contains("ING-001")).expect("ING-001 row");
        assert!(line.contains("ingest") && line.contains("medium") && line.contains("Artifact could not be parsed"));
        assert!(text.starts_with(" ID "), "{text}");
        assert!(text.lines().next().is_some_and(|l| l.ends_with("TITLE")), "{text}");
        assert!(text.lines().all(|l| !l.ends_with(' ')), "no trailing blanks:\n{text}");
        assert!(text.contains("2 rules."), "{text}");
    }

    #[test]
    fn json_catalog() {
        let v = to_value(&testdata::report().rules);
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["rules"][1]["id"], "ING-001");
        assert_eq!(v["rules"][1]["layer"], "ingest");
        assert_eq!(v["rules"][1]["references"][0], "docs/bundle-format.md");
    }

    #[test]
    fn explain_page() {
        let rules = testdata::report().rules;
        let mut out = Vec::new();
        render_explain(&rules[1], false, &mut out).expect("render");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.starts_with("ING-001  Artifact could not be parsed\n"), "{text}");
        assert!(text.contains("layer: Ingest (ingest)   default severity: medium"), "{text}");
        assert!(text.contains("Why it matters\nA file could not be parsed."), "{text}");
        assert!(text.contains("  - docs/bundle-format.md"), "{text}");
        assert!(text.contains("Example\n  hosts/gw-1/nft.json:3:17: invalid JSON"), "{text}");
    }
}
