//! Findings: what a rule reports, with the layer it broke, evidence and a fix.
//! Shared by bundle analysis, live diagnosis, path tracing and capture analysis.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The layer a finding belongs to, in inside-out order: the order a packet leaves a
/// workload (DNS first, because everything that needs a name needs it). `Ord` follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// Problems with the input itself (unparsable files).
    Ingest,
    Dns,
    Pod,
    Mesh,
    Policy,
    Node,
    Cni,
    Overlay,
    Tunnel,
    Cloud,
    Remote,
}

impl Layer {
    pub const ALL: [Layer; 11] = [
        Layer::Ingest,
        Layer::Dns,
        Layer::Pod,
        Layer::Mesh,
        Layer::Policy,
        Layer::Node,
        Layer::Cni,
        Layer::Overlay,
        Layer::Tunnel,
        Layer::Cloud,
        Layer::Remote,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Ingest => "ingest",
            Layer::Dns => "dns",
            Layer::Pod => "pod",
            Layer::Mesh => "mesh",
            Layer::Policy => "policy",
            Layer::Node => "node",
            Layer::Cni => "cni",
            Layer::Overlay => "overlay",
            Layer::Tunnel => "tunnel",
            Layer::Cloud => "cloud",
            Layer::Remote => "remote",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Severity; `Ord` puts `Info` lowest and `Critical` highest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses `critical|high|medium|low|info` (case-insensitive).
    pub fn parse(s: &str) -> Option<Severity> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Some(Severity::Info),
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How sure a finding is: confirmed (observed), likely (configuration proves it unless
/// something outside the bundle compensates), possible (a risk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Possible,
    Likely,
    Confirmed,
}

/// Where a fact came from. Every model object that rules report on carries one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Location {
    /// A line (1-based) and optional column in a text file, path relative to the bundle.
    File {
        path: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        column: Option<u32>,
    },
    /// A JSON pointer (RFC 6901) into a JSON or YAML document. For multi-document YAML
    /// the pointer starts with the document index: `/2/spec/...`.
    Json { path: String, pointer: String },
    /// A packet in a capture (1-based number as in Wireshark).
    Packet {
        path: String,
        number: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        /// Seconds since the epoch as written by the capture (`1700000000.123456`).
        timestamp: Option<String>,
    },
    /// An active probe's observation.
    Probe { probe: String },
    /// Computed from other facts, or not tied to one file.
    #[default]
    Derived,
}

impl Location {
    pub fn file(path: impl Into<String>) -> Location {
        Location::File { path: path.into(), line: None, column: None }
    }

    pub fn line(path: impl Into<String>, line: u32) -> Location {
        Location::File { path: path.into(), line: Some(line), column: None }
    }

    pub fn json(path: impl Into<String>, pointer: impl Into<String>) -> Location {
        Location::Json { path: path.into(), pointer: pointer.into() }
    }

    /// The same file with a JSON pointer extended by `suffix` (which starts with `/`);
    /// other locations are returned unchanged.
    pub fn child(&self, suffix: &str) -> Location {
        match self {
            Location::Json { path, pointer } => {
                Location::Json { path: path.clone(), pointer: format!("{pointer}{suffix}") }
            }
            other => other.clone(),
        }
    }

    /// The bundle-relative path, if the location is in a file.
    pub fn path(&self) -> Option<&str> {
        match self {
            Location::File { path, .. } | Location::Json { path, .. } | Location::Packet { path, .. } => Some(path),
            Location::Probe { .. } | Location::Derived => None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File { path, line: Some(l), column: Some(c) } => write!(f, "{path}:{l}:{c}"),
            Location::File { path, line: Some(l), column: None } => write!(f, "{path}:{l}"),
            Location::File { path, .. } => f.write_str(path),
            Location::Json { path, pointer } => write!(f, "{path}#{pointer}"),
            Location::Packet { path, number, .. } => write!(f, "{path} packet {number}"),
            Location::Probe { probe } => write!(f, "probe {probe}"),
            Location::Derived => f.write_str("(derived)"),
        }
    }
}

/// One piece of evidence: where, and what was seen there (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub location: Location,
    /// What the artifact says at that place, e.g. `mtu 1500` or `"policyTypes": ["Egress"]`.
    pub excerpt: String,
}

impl Evidence {
    pub fn new(location: Location, excerpt: impl Into<String>) -> Evidence {
        Evidence { location, excerpt: excerpt.into() }
    }
}

/// A finding: one thing wrong, its layer and severity, evidence and a fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule id, e.g. `TUN-003`.
    pub rule: String,
    pub severity: Severity,
    pub layer: Layer,
    /// What is wrong, as a path: `host/gw-1/iface/wg0`, `k8s/NetworkPolicy/prod/default-deny`.
    pub subject: String,
    pub title: String,
    /// The explanation with the numbers involved.
    pub detail: String,
    pub evidence: Vec<Evidence>,
    /// What to change: a command or a patch where one can be given.
    pub fix: String,
    pub confidence: Confidence,
}

impl Finding {
    /// Sort key: layer inside-out, then severity (highest first), rule, subject.
    pub fn sort_key(&self) -> (Layer, std::cmp::Reverse<Severity>, &str, &str) {
        (self.layer, std::cmp::Reverse(self.severity), &self.rule, &self.subject)
    }
}

/// Sorts findings inside-out by layer, then by severity (highest first), rule and subject.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
}
