//! ING-001: files (or parts of files) the bundle reader could not parse. Reported first,
//! because every other rule is blind where these are.

use netsleuth_model::{Confidence, Evidence, Finding, Layer, Severity};

use crate::rule::{Context, Rule};

pub(crate) const RULES: &[Rule] = &[Rule {
    id: "ING-001",
    layer: Layer::Ingest,
    severity: Severity::Medium,
    title: "Artifact could not be parsed",
    rationale: "A file of the bundle could not be read or parsed. The rest of the bundle is \
                still analysed, but every rule that needs this file cannot see what it holds, \
                so a clean report does not clear that part of the network.",
    references: &["docs/bundle-format.md"],
    example: "hosts/gw-1/nft.json:3:17: invalid JSON: expected `,` or `}`",
    check,
}];

fn check(ctx: &Context<'_>, rule: &Rule, out: &mut Vec<Finding>) {
    for issue in &ctx.net.ingest_issues {
        let subject = match issue.location.path() {
            Some(p) => format!("bundle/{p}"),
            None => "bundle".to_string(),
        };
        out.push(rule.finding(
            subject,
            format!("Cannot parse {}", issue.location),
            issue.message.clone(),
            vec![Evidence::new(issue.location.clone(), issue.message.clone())],
            "Re-collect the file with the command given in docs/bundle-format.md, unmodified \
             (no hand edits, no truncation), or remove it from the bundle.",
            Confidence::Confirmed,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsleuth_model::{IngestIssue, Location, Network};

    #[test]
    fn reports_each_issue_with_its_location() {
        let mut net = Network::default();
        net.ingest_issues
            .push(IngestIssue { location: Location::line("hosts/a/sysctl.txt", 7), message: "bad line".into() });
        let mut out = Vec::new();
        check(&Context { net: &net, now: None }, &RULES[0], &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].evidence[0].location, Location::line("hosts/a/sysctl.txt", 7));
        assert_eq!(out[0].subject, "bundle/hosts/a/sysctl.txt");
    }

    #[test]
    fn clean_bundle_has_no_ingest_findings() {
        let net = Network::default();
        let mut out = Vec::new();
        check(&Context { net: &net, now: None }, &RULES[0], &mut out);
        assert!(out.is_empty());
    }
}
