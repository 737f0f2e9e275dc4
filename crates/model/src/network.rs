//! The whole network as one bundle describes it: hosts, the Kubernetes cluster, cloud
//! objects, and what could not be read.

use serde::{Deserialize, Serialize};

use crate::cloud::Aws;
use crate::finding::Location;
use crate::host::Host;
use crate::kubernetes::Cluster;
use crate::secret::Redaction;

/// `manifest.json` of a bundle (all fields optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub format: Option<String>,
    /// Unix seconds when the bundle was collected: the clock for age checks.
    pub collected_at: Option<i64>,
    pub cluster: Option<String>,
    pub salt_id: Option<String>,
    pub tool_version: Option<String>,
}

/// A file (or part of one) that could not be parsed; becomes an `ingest` finding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestIssue {
    pub location: Location,
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Network {
    pub manifest: Manifest,
    pub hosts: Vec<Host>,
    pub kubernetes: Cluster,
    pub aws: Aws,
    /// Every secret the parsers redacted, and where.
    pub redactions: Vec<Redaction>,
    pub ingest_issues: Vec<IngestIssue>,
    /// Bundle-relative paths of files that no parser claims.
    pub skipped_files: Vec<String>,
}

impl Network {
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }
}
