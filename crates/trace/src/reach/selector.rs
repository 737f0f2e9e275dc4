//! Endpoint selectors of `netsleuth reach` (`all`, `ns:NAME`, `pod:NS/NAME`, `NS/*`,
//! `ip:ADDR`, each optionally followed by label terms `,k=v`, `,k!=v`, `,k`, `,!k`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use netsleuth_model::kubernetes::{LabelSelector, LabelSelectorRequirement, Pod};

/// Which pods (or which address) a selector names, before its label terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every pod of every namespace.
    All,
    /// Every pod of one namespace.
    Namespace(String),
    /// One pod.
    Pod { namespace: String, name: String },
    /// An address outside the bundle's pods (for `ipBlock` rules).
    Ip(IpAddr),
}

/// A parsed endpoint selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub scope: Scope,
    /// Label terms, with Kubernetes label-selector semantics (empty = every pod).
    pub labels: LabelSelector,
    /// The text it was parsed from, for messages.
    pub text: String,
}

/// Why a selector could not be parsed; names the offending term and its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector {text:?}: term {term} ({part:?}): {reason}")]
pub struct SelectorError {
    pub text: String,
    /// 1-based position of the comma-separated term.
    pub term: usize,
    pub part: String,
    pub reason: String,
}

impl Selector {
    /// Whether the selector picks this pod.
    pub fn matches(&self, pod: &Pod) -> bool {
        let in_scope = match &self.scope {
            Scope::All => true,
            Scope::Namespace(ns) => pod.meta.namespace == *ns,
            Scope::Pod { namespace, name } => pod.meta.namespace == *namespace && pod.meta.name == *name,
            Scope::Ip(_) => false,
        };
        in_scope && self.labels.matches(&pod.meta.labels)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(text: &str) -> Result<Selector, SelectorError> {
        let err = |term: usize, part: &str, reason: &str| SelectorError {
            text: text.to_string(),
            term,
            part: part.to_string(),
            reason: reason.to_string(),
        };
        let mut terms = text.split(',').map(str::trim).enumerate().map(|(i, t)| (i + 1, t)).peekable();
        let (first_pos, first) = terms.next().unwrap_or((1, ""));
        if first.is_empty() {
            return Err(err(first_pos, first, "empty term"));
        }
        let mut labels = LabelSelector::default();
        let scope = if first == "all" || first == "*" {
            Scope::All
        } else if let Some(ns) = first.strip_prefix("ns:") {
            check_name(ns).map_err(|r| err(first_pos, first, &r))?;
            Scope::Namespace(ns.to_string())
        } else if let Some(addr) = first.strip_prefix("ip:") {
            let ip = addr.parse().map_err(|_| err(first_pos, first, "not an IPv4 or IPv6 address"))?;
            Scope::Ip(ip)
        } else if let Some(rest) = first
            .strip_prefix("pod:")
            // `NS/NAME`, unless it is a label term whose key has a prefix (`app.kubernetes.io/name=x`).
            .or_else(|| (first.contains('/') && !first.contains('=') && !first.starts_with('!')).then_some(first))
        {
            let Some((ns, name)) = rest.split_once('/') else {
                return Err(err(first_pos, first, "expected NAMESPACE/NAME"));
            };
            check_name(ns).map_err(|r| err(first_pos, first, &r))?;
            if name == "*" {
                Scope::Namespace(ns.to_string())
            } else {
                check_name(name).map_err(|r| err(first_pos, first, &r))?;
                Scope::Pod { namespace: ns.to_string(), name: name.to_string() }
            }
        } else {
            // A selector may start with label terms alone: every namespace.
            add_term(&mut labels, first).map_err(|r| {
                err(
                    first_pos,
                    first,
                    &format!("{r} (a selector starts with all, ns:NAME, pod:NS/NAME, NS/*, ip:ADDR or a label term)"),
                )
            })?;
            Scope::All
        };
        for (pos, term) in terms {
            if matches!(scope, Scope::Ip(_)) {
                return Err(err(pos, term, "an ip: selector takes no label terms"));
            }
            add_term(&mut labels, term).map_err(|r| err(pos, term, &r))?;
        }
        Ok(Selector { scope, labels, text: text.to_string() })
    }
}

/// Adds one label term: `k=v` (also `k==v`), `k!=v`, `k` (exists) or `!k` (absent).
fn add_term(labels: &mut LabelSelector, term: &str) -> Result<(), String> {
    if term.is_empty() {
        return Err("empty term".into());
    }
    let req = |key: &str, operator: &str, values: Vec<String>| LabelSelectorRequirement {
        key: key.to_string(),
        operator: operator.to_string(),
        values,
    };
    if let Some((k, v)) = term.split_once("!=") {
        check_key(k)?;
        labels.match_expressions.push(req(k, "NotIn", vec![v.to_string()]));
    } else if let Some((k, v)) = term.split_once('=') {
        let v = v.strip_prefix('=').unwrap_or(v);
        check_key(k)?;
        if let Some(old) = labels.match_labels.insert(k.to_string(), v.to_string()) {
            if old != v {
                return Err(format!("label {k} is required to be both {old:?} and {v:?}"));
            }
        }
    } else if let Some(k) = term.strip_prefix('!') {
        check_key(k)?;
        labels.match_expressions.push(req(k, "DoesNotExist", vec![]));
    } else {
        check_key(term)?;
        labels.match_expressions.push(req(term, "Exists", vec![]));
    }
    Ok(())
}

fn check_key(k: &str) -> Result<(), String> {
    if k.is_empty() {
        return Err("empty label key".into());
    }
    if let Some(c) = k.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))) {
        return Err(format!("label key {k:?} contains {c:?}"));
    }
    Ok(())
}

fn check_name(n: &str) -> Result<(), String> {
    if n.is_empty() {
        return Err("empty name".into());
    }
    if let Some(c) = n.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))) {
        return Err(format!("name {n:?} contains {c:?}"));
    }
    Ok(())
}

/// Parses `all`-style selectors, returning the first error.
pub fn parse_all<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Selector>, SelectorError> {
    texts.iter().map(|t| t.as_ref().parse()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    fn sel(s: &str) -> Selector {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn scopes() {
        assert_eq!(sel("all").scope, Scope::All);
        assert_eq!(sel("ns:prod").scope, Scope::Namespace("prod".into()));
        assert_eq!(sel("prod/*").scope, Scope::Namespace("prod".into()));
        assert_eq!(sel("pod:prod/web-1").scope, Scope::Pod { namespace: "prod".into(), name: "web-1".into() });
        assert_eq!(sel("prod/web-1").scope, Scope::Pod { namespace: "prod".into(), name: "web-1".into() });
        assert_eq!(sel("ip:10.0.0.1").scope, Scope::Ip("10.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))));
    }

    #[test]
    fn label_terms() {
        let s = sel("ns:prod, app=web,tier!=db,canary,!legacy");
        assert_eq!(s.labels.match_labels, labels(&[("app", "web")]));
        let ops: Vec<&str> = s.labels.match_expressions.iter().map(|e| e.operator.as_str()).collect();
        assert_eq!(ops, ["NotIn", "Exists", "DoesNotExist"]);
        assert!(s.labels.matches(&labels(&[("app", "web"), ("canary", "")])));
        assert!(!s.labels.matches(&labels(&[("app", "web"), ("canary", ""), ("legacy", "1")])));
        assert!(!s.labels.matches(&labels(&[("app", "web"), ("canary", ""), ("tier", "db")])));
        // Label terms alone select across namespaces.
        assert_eq!(sel("app=web").scope, Scope::All);
        let prefixed = sel("app.kubernetes.io/name=web");
        assert_eq!(prefixed.scope, Scope::All);
        assert_eq!(prefixed.labels.match_labels, labels(&[("app.kubernetes.io/name", "web")]));
    }

    #[test]
    fn errors_name_the_term() {
        let e = "ns:prod,app=web,=x".parse::<Selector>().err();
        assert_eq!(e.as_ref().map(|e| e.term), Some(3));
        assert!(e.is_some_and(|e| e.to_string().contains("empty label key")));
        assert!("".parse::<Selector>().is_err());
        assert!("ip:10.0.0.300".parse::<Selector>().is_err());
        assert!("ip:10.0.0.1,app=x".parse::<Selector>().is_err());
        assert!("ns:".parse::<Selector>().is_err());
        assert!("pod:prod".parse::<Selector>().is_err());
        assert!("ns:prod,app=a,app=b".parse::<Selector>().is_err());
        assert!("ns:pr od".parse::<Selector>().is_err());
    }
}
