//! Types shared by every live probe of `netsleuth diagnose`: the per-layer result shown in
//! the layer table, and the probe outcome (layer result + candidate causes as findings).

use std::time::Duration;

use netsleuth_model::{Finding, Layer};
use serde::Serialize;

/// What a probe concluded about its layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerStatus {
    /// The layer works for this target.
    Ok,
    /// The layer is broken (a cause is named).
    Fail,
    /// Degraded: works, but with loss, latency or a risk that explains intermittent trouble.
    Warn,
    /// The probe could not tell (no permission, timeout of the probe itself, missing tool).
    Unknown,
    /// Not applicable to this target (e.g. DNS for an IP address, tunnel for a local route).
    Skipped,
}

impl LayerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LayerStatus::Ok => "ok",
            LayerStatus::Fail => "fail",
            LayerStatus::Warn => "warn",
            LayerStatus::Unknown => "unknown",
            LayerStatus::Skipped => "skipped",
        }
    }
}

/// One row of the layer-by-layer table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerResult {
    /// The finding layer this probe speaks for.
    #[serde(serialize_with = "layer_str")]
    pub layer: Layer,
    /// The probe's name as shown in the table: `local-state`, `dns`, `gateway`, `tunnel`,
    /// `path-mtu`, `transport`, `sampling`.
    pub probe: String,
    pub status: LayerStatus,
    /// One line: what was observed (`3/3 replies from 10.0.0.1, rtt p50 0.3 ms`).
    pub summary: String,
    /// Observations backing the summary, one per line (addresses, counters, log lines).
    pub evidence: Vec<String>,
    /// Wall time the probe took.
    #[serde(serialize_with = "duration_ms")]
    pub duration: Duration,
}

/// What one probe returns: its table row, the causes it can name (findings whose `rule`
/// is a diagnose cause id such as `DIAG-DNS-001`, evidence with `Location::Probe`), and
/// nothing else; ranking across probes is done by the engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeOutcome<D> {
    pub layer: LayerResult,
    pub causes: Vec<Finding>,
    /// Probe-specific detail, serialised into the JSON report.
    pub detail: D,
}

fn layer_str<S: serde::Serializer>(l: &Layer, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(l.as_str())
}

fn duration_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0)
}
