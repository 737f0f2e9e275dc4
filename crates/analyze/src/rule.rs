//! The rule engine: a rule is metadata plus a check over the model; `analyze` runs the
//! whole catalog and returns findings sorted inside-out.

use netsleuth_model::finding::sort_findings;
use netsleuth_model::{Confidence, Evidence, Finding, Layer, Network, Severity};

/// What a check sees: the model and the clock to measure ages against.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub net: &'a Network,
    /// Unix seconds "now": the bundle's `collected_at` offline, the host clock live.
    /// None means age-dependent checks must report unknown rather than guess.
    pub now: Option<i64>,
}

/// Options of `analyze`.
#[derive(Debug, Clone, Default)]
pub struct AnalyzeOptions {
    /// Overrides the bundle's `collected_at` as "now".
    pub now: Option<i64>,
    /// Only run these rule ids (empty: all).
    pub only: Vec<String>,
}

/// One rule of the catalog.
pub struct Rule {
    /// Stable id, e.g. `TUN-003`.
    pub id: &'static str,
    pub layer: Layer,
    /// Default severity; a finding may raise or lower it with a reason in its detail.
    pub severity: Severity,
    pub title: &'static str,
    /// Why this matters: the failure it causes and how it shows.
    pub rationale: &'static str,
    /// Upstream docs and issues (owner/repo#N or URLs).
    pub references: &'static [&'static str],
    /// An example of what the rule reports, for `netsleuth explain`.
    pub example: &'static str,
    pub check: fn(&Context<'_>, &Rule, &mut Vec<Finding>),
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Rule {
    /// A finding of this rule with its default layer and severity.
    pub fn finding(
        &self,
        subject: impl Into<String>,
        title: impl Into<String>,
        detail: impl Into<String>,
        evidence: Vec<Evidence>,
        fix: impl Into<String>,
        confidence: Confidence,
    ) -> Finding {
        Finding {
            rule: self.id.to_string(),
            severity: self.severity,
            layer: self.layer,
            subject: subject.into(),
            title: title.into(),
            detail: detail.into(),
            evidence,
            fix: fix.into(),
            confidence,
        }
    }
}

/// The whole catalog, in id order.
pub fn catalog() -> Vec<&'static Rule> {
    let mut all: Vec<&'static Rule> = crate::rules::ALL.iter().flat_map(|m| m.iter()).collect();
    all.sort_by_key(|r| r.id);
    all
}

/// The rule with this id (case-insensitive).
pub fn find_rule(id: &str) -> Option<&'static Rule> {
    catalog().into_iter().find(|r| r.id.eq_ignore_ascii_case(id))
}

/// Runs the catalog over the model; findings come sorted inside-out by layer, then by
/// severity (highest first).
pub fn analyze(net: &Network, options: &AnalyzeOptions) -> Vec<Finding> {
    let ctx = Context { net, now: options.now.or(net.manifest.collected_at) };
    let mut findings = Vec::new();
    for rule in catalog() {
        if !options.only.is_empty() && !options.only.iter().any(|o| o.eq_ignore_ascii_case(rule.id)) {
            continue;
        }
        (rule.check)(&ctx, rule, &mut findings);
    }
    sort_findings(&mut findings);
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_ids_are_unique_and_well_formed() {
        let all = catalog();
        assert!(all.len() >= 13, "catalog has {} rules", all.len());
        let mut ids: Vec<_> = all.iter().map(|r| r.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), all.len(), "duplicate rule ids");
        for r in all {
            let (prefix, num) = r.id.split_once('-').expect("ID-NNN");
            assert!(prefix.chars().all(|c| c.is_ascii_uppercase()), "{}", r.id);
            assert_eq!(num.len(), 3, "{}", r.id);
            assert!(!r.rationale.is_empty() && !r.title.is_empty(), "{}", r.id);
        }
    }
}
