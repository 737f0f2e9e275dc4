//! SARIF 2.1.0 output, for code-scanning dashboards: one run, the catalog as
//! `tool.driver.rules`, one result per finding with locations relative to the bundle.

use std::io::{self, Write};

use netsleuth_model::{Evidence, Finding, Location, Severity};
use serde_json::{json, Map, Value};

use crate::{format_rfc3339, Report, RuleInfo};

/// URI of the official SARIF 2.1.0 schema (OASIS errata 01), written as `$schema`.
pub const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// The `uriBaseId` of every artifact location: the bundle folder.
pub const BUNDLE_BASE_ID: &str = "BUNDLE";

/// Key of the fingerprint in `partialFingerprints`; the version changes if the hash input does.
pub const FINGERPRINT_KEY: &str = "netsleuth/ruleSubject/v1";

/// SARIF level of a severity: critical/high are errors, medium a warning, low/info notes.
pub fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// Stable fingerprint of a finding's identity (rule + subject), the same across runs and
/// machines: 64-bit FNV-1a as 16 hex digits.
pub fn fingerprint(rule: &str, subject: &str) -> String {
    // The NUL separator keeps ("AB", "C") and ("A", "BC") apart.
    let h = fnv1a64(rule.bytes().chain(std::iter::once(0)).chain(subject.bytes()));
    format!("{h:016x}")
}

fn fnv1a64(bytes: impl Iterator<Item = u8>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// `file://` URI of an absolute directory path, ending in `/` as SARIF requires of a base.
pub fn dir_uri(absolute: &str) -> String {
    let mut uri = String::from("file://");
    if !absolute.starts_with('/') {
        uri.push('/');
    }
    uri.push_str(&percent_encode(absolute));
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// Percent-encodes a path for a URI, keeping unreserved characters and `/`.
pub fn percent_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The SARIF log as a JSON value.
pub fn to_value(report: &Report) -> Value {
    let rules: Vec<Value> = report.rules.iter().map(rule_descriptor).collect();
    let results: Vec<Value> = report.findings.iter().map(|f| result(report, f)).collect();

    let mut driver = Map::new();
    driver.insert("name".into(), json!(report.tool.name));
    driver.insert("version".into(), json!(report.tool.version));
    driver.insert("informationUri".into(), json!(report.tool.information_uri));
    driver.insert("rules".into(), Value::Array(rules));

    let mut run = Map::new();
    run.insert("tool".into(), json!({ "driver": Value::Object(driver) }));
    if let Some(uri) = &report.bundle_uri {
        run.insert(
            "originalUriBaseIds".into(),
            json!({ BUNDLE_BASE_ID: { "uri": uri, "description": { "text": "The bundle folder." } } }),
        );
    }
    run.insert("results".into(), Value::Array(results));
    run.insert("columnKind".into(), json!("unicodeCodePoints"));
    let mut props = Map::new();
    props.insert("bundle".into(), json!(report.bundle));
    if let Some(t) = report.collected_at.and_then(format_rfc3339) {
        props.insert("collectedAt".into(), json!(t));
    }
    if let Some(s) = &report.salt_id {
        props.insert("saltId".into(), json!(s));
    }
    props.insert("skippedFiles".into(), json!(report.skipped_files));
    run.insert("properties".into(), Value::Object(props));

    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [Value::Object(run)],
    })
}

/// Writes the SARIF log as pretty-printed JSON followed by a newline.
pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(report))?;
    out.write_all(b"\n")
}

fn rule_descriptor(rule: &RuleInfo) -> Value {
    let mut help = format!("{}\n\nWhy: {}", rule.title, rule.rationale);
    if !rule.references.is_empty() {
        help.push_str("\n\nReferences:");
        for r in &rule.references {
            help.push_str("\n- ");
            help.push_str(r);
        }
    }
    if !rule.example.is_empty() {
        help.push_str("\n\nExample: ");
        help.push_str(&rule.example);
    }
    json!({
        "id": rule.id,
        "name": pascal_case(&rule.title),
        "shortDescription": { "text": rule.title },
        "fullDescription": { "text": rule.rationale },
        "help": { "text": help },
        "defaultConfiguration": { "level": level(rule.severity) },
        "properties": {
            "layer": rule.layer.as_str(),
            "severity": rule.severity.as_str(),
            "references": rule.references,
            "tags": ["netsleuth", rule.layer.as_str()],
        },
    })
}

fn result(report: &Report, f: &Finding) -> Value {
    let mut r = Map::new();
    r.insert("ruleId".into(), json!(f.rule));
    if let Some(i) = report.rules.iter().position(|rule| rule.id == f.rule) {
        r.insert("ruleIndex".into(), json!(i));
    }
    r.insert("level".into(), json!(level(f.severity)));
    let text = if f.detail.is_empty() { f.title.clone() } else { format!("{}: {}", f.title, f.detail) };
    r.insert("message".into(), json!({ "text": text }));

    // SARIF wants one primary location; further evidence goes to relatedLocations, each
    // with its own id (which also keeps that uniqueItems array unique).
    let mut evidence = f.evidence.iter();
    let primary = evidence.next().map_or_else(|| subject_location(f), location);
    r.insert("locations".into(), json!([primary]));
    let related: Vec<Value> = evidence
        .enumerate()
        .map(|(i, e)| {
            let mut l = location(e);
            if let Value::Object(m) = &mut l {
                m.insert("id".into(), json!(i + 1));
            }
            l
        })
        .collect();
    if !related.is_empty() {
        r.insert("relatedLocations".into(), Value::Array(related));
    }
    r.insert("partialFingerprints".into(), json!({ FINGERPRINT_KEY: fingerprint(&f.rule, &f.subject) }));
    r.insert(
        "properties".into(),
        json!({
            "layer": f.layer.as_str(),
            "severity": f.severity.as_str(),
            "confidence": confidence(f),
            "subject": f.subject,
            "title": f.title,
            "fix": f.fix,
        }),
    );
    Value::Object(r)
}

fn confidence(f: &Finding) -> &'static str {
    match f.confidence {
        netsleuth_model::Confidence::Confirmed => "confirmed",
        netsleuth_model::Confidence::Likely => "likely",
        netsleuth_model::Confidence::Possible => "possible",
    }
}

/// A location for a finding without evidence: the subject as a logical location.
fn subject_location(f: &Finding) -> Value {
    json!({
        "logicalLocations": [{ "fullyQualifiedName": f.subject, "kind": "resource" }],
        "message": { "text": f.title },
    })
}

fn artifact(path: &str) -> Value {
    json!({ "uri": percent_encode(path), "uriBaseId": BUNDLE_BASE_ID })
}

fn location(e: &Evidence) -> Value {
    let mut l = Map::new();
    let mut props = Map::new();
    match &e.location {
        Location::File { path, line, column } => {
            let mut phys = Map::new();
            phys.insert("artifactLocation".into(), artifact(path));
            // A region needs a start line; a column alone says nothing in SARIF.
            if let Some(line) = line.filter(|l| *l >= 1) {
                let mut region = Map::new();
                region.insert("startLine".into(), json!(line));
                if let Some(col) = column.filter(|c| *c >= 1) {
                    region.insert("startColumn".into(), json!(col));
                }
                phys.insert("region".into(), Value::Object(region));
            }
            l.insert("physicalLocation".into(), Value::Object(phys));
        }
        Location::Json { path, pointer } => {
            l.insert("physicalLocation".into(), json!({ "artifactLocation": artifact(path) }));
            l.insert("logicalLocations".into(), json!([{ "fullyQualifiedName": pointer, "kind": "object" }]));
            props.insert("jsonPointer".into(), json!(pointer));
        }
        Location::Packet { path, number, timestamp } => {
            l.insert("physicalLocation".into(), json!({ "artifactLocation": artifact(path) }));
            props.insert("packet".into(), json!(number));
            if let Some(t) = timestamp {
                props.insert("packetTimestamp".into(), json!(t));
            }
        }
        Location::Probe { probe } => {
            l.insert("logicalLocations".into(), json!([{ "fullyQualifiedName": probe, "kind": "resource" }]));
            props.insert("probe".into(), json!(probe));
        }
        Location::Derived => {
            props.insert("derived".into(), json!(true));
        }
    }
    l.insert("message".into(), json!({ "text": e.excerpt }));
    if !props.is_empty() {
        l.insert("properties".into(), Value::Object(props));
    }
    Value::Object(l)
}

/// `Artifact could not be parsed` → `ArtifactCouldNotBeParsed` (SARIF `name`).
fn pascal_case(title: &str) -> String {
    title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(first) => first.to_uppercase().chain(cs).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn levels() {
        assert_eq!(level(Severity::Critical), "error");
        assert_eq!(level(Severity::High), "error");
        assert_eq!(level(Severity::Medium), "warning");
        assert_eq!(level(Severity::Low), "note");
        assert_eq!(level(Severity::Info), "note");
    }

    #[test]
    fn fingerprint_is_stable_and_separates_fields() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64("".bytes()), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64("a".bytes()), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64("foobar".bytes()), 0x8594_4171_f739_67e8);
        assert_eq!(fingerprint("ING-001", "x"), fingerprint("ING-001", "x"));
        assert_ne!(fingerprint("AB", "C"), fingerprint("A", "BC"));
        assert_eq!(fingerprint("a", "").len(), 16);
    }

    #[test]
    fn uris() {
        assert_eq!(dir_uri("/tmp/my bundle"), "file:///tmp/my%20bundle/");
        assert_eq!(dir_uri("/tmp/b/"), "file:///tmp/b/");
        assert_eq!(percent_encode("hosts/gw-1/ip-link.json"), "hosts/gw-1/ip-link.json");
        assert_eq!(percent_encode("a#b?c"), "a%23b%3Fc");
    }

    #[test]
    fn driver_and_rules() {
        let v = to_value(&testdata::report());
        assert_eq!(v["version"], "2.1.0");
        let driver = &v["runs"][0]["tool"]["driver"];
        assert_eq!(driver["name"], "netsleuth");
        assert_eq!(driver["informationUri"], "https://example.invalid/netsleuth");
        assert_eq!(driver["rules"][1]["id"], "ING-001");
        assert_eq!(driver["rules"][1]["name"], "ArtifactCouldNotBeParsed");
        assert_eq!(driver["rules"][1]["defaultConfiguration"]["level"], "warning");
        assert_eq!(driver["rules"][1]["properties"]["layer"], "ingest");
        assert_eq!(v["runs"][0]["originalUriBaseIds"]["BUNDLE"]["uri"], "file:///tmp/my%20bundle/");
    }

    #[test]
    fn results_map_findings() {
        let v = to_value(&testdata::report());
        let results = v["runs"][0]["results"].as_array().expect("results");
        assert_eq!(results.len(), 2);
        let ing = &results[0];
        assert_eq!(ing["ruleId"], "ING-001");
        assert_eq!(ing["ruleIndex"], 1);
        assert_eq!(ing["level"], "warning");
        let phys = &ing["locations"][0]["physicalLocation"];
        assert_eq!(phys["artifactLocation"]["uri"], "hosts/a/nft.json");
        assert_eq!(phys["artifactLocation"]["uriBaseId"], "BUNDLE");
        assert_eq!(phys["region"]["startLine"], 3);
        assert_eq!(phys["region"]["startColumn"], 17);
        assert_eq!(ing["partialFingerprints"][FINGERPRINT_KEY], fingerprint("ING-001", "bundle/hosts/a/nft.json"));
        assert_eq!(ing["properties"]["confidence"], "confirmed");

        let dns = &results[1];
        assert_eq!(dns["level"], "error");
        assert_eq!(dns["ruleIndex"], 0);
        assert_eq!(dns["locations"][0]["logicalLocations"][0]["fullyQualifiedName"], "/items/0/spec/dnsConfig");
        assert_eq!(dns["locations"][0]["properties"]["jsonPointer"], "/items/0/spec/dnsConfig");
        assert!(dns["locations"][0]["physicalLocation"]["region"].is_null(), "no line for a pointer");
        assert_eq!(dns["relatedLocations"][0]["id"], 1);
        assert_eq!(dns["relatedLocations"][0]["properties"]["derived"], true);
        assert_eq!(dns["properties"]["subject"], "host/node-1/resolv");
    }

    #[test]
    fn finding_of_unlisted_rule_has_no_rule_index_and_no_evidence_uses_subject() {
        let mut r = testdata::report();
        r.rules.clear();
        r.findings[0].evidence.clear();
        let v = to_value(&r);
        let res = &v["runs"][0]["results"][0];
        assert!(res.get("ruleIndex").is_none());
        assert_eq!(res["locations"][0]["logicalLocations"][0]["fullyQualifiedName"], "bundle/hosts/a/nft.json");
    }
}
