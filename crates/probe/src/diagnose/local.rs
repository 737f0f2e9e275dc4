//! Local state: this namespace collected live into a temporary bundle (the `collect` code),
//! read into the model, and the foundation's rule catalog run on it.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netsleuth_analyze::{analyze, AnalyzeOptions};
use netsleuth_ingest::{read_bundle, BundleOptions, Redactor};
use netsleuth_model::host::Host;
use netsleuth_model::{Finding, Severity};

use crate::collect::{collect_host, write_manifest, CollectOptions, CollectTarget};

/// Name of the host folder in the temporary bundle (findings' subjects say `host/local`).
pub(crate) const HOST_NAME: &str = "local";

/// The live model of this namespace and what the rules say about it.
#[derive(Debug, Default)]
pub(crate) struct LocalState {
    pub(crate) host: Option<Host>,
    pub(crate) findings: Vec<Finding>,
    /// Artifacts that could not be collected (tool missing, failed, timed out).
    pub(crate) problems: Vec<String>,
    pub(crate) duration: Duration,
}

/// A temporary folder removed on drop (the bundle holds no secrets: collect redacts them,
/// but it is still removed at once).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Collects the current namespace (each command limited to `per_command`) and analyses it.
/// Where configuration and daemons are, when not in the default places.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    /// The file the DNS probe uses (read instead of `/etc/resolv.conf`).
    pub(crate) resolv_conf: PathBuf,
    pub(crate) swanctl_uri: Option<String>,
    pub(crate) swanctl_conf: Option<PathBuf>,
}

pub(crate) fn collect(per_command: Duration, sources: &Sources) -> Result<LocalState, String> {
    let t = Instant::now();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = TempDir(std::env::temp_dir().join(format!("netsleuth-diagnose-{}-{nanos}", std::process::id())));
    fs::create_dir_all(&dir.0).map_err(|e| format!("cannot create {}: {e}", dir.0.display()))?;
    let redactor = Redactor::random();
    let opts = CollectOptions { timeout: per_command, ..CollectOptions::default() };
    let mut target = CollectTarget::host(HOST_NAME);
    if sources.resolv_conf != Path::new("/etc/resolv.conf") {
        target.etc_files.insert("resolv.conf".into(), sources.resolv_conf.clone());
    }
    if let Some(conf) = &sources.swanctl_conf {
        target.etc_files.insert("swanctl/swanctl.conf".into(), conf.clone());
    }
    target.swanctl_uri = sources.swanctl_uri.clone();
    let report = collect_host(&target, &dir.0, &redactor, &opts).map_err(|e| e.to_string())?;
    let problems = report.problems().map(|c| format!("{}: {:?}", c.artifact, c.status)).collect();
    write_manifest(&dir.0, SystemTime::now(), None, &redactor, std::slice::from_ref(&report))
        .map_err(|e| e.to_string())?;
    let net = read_bundle(&dir.0, &BundleOptions::default()).map_err(|e| e.to_string())?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).ok();
    let findings = analyze(&net, &AnalyzeOptions { now, ..AnalyzeOptions::default() });
    let host = net.hosts.into_iter().find(|h| h.name == HOST_NAME);
    Ok(LocalState { host, findings, problems, duration: t.elapsed() })
}

/// Whether a local finding bears on traffic to `target` leaving through `egress`: it names
/// the egress interface, or a prefix containing the target, or the target itself.
pub(crate) fn concerns_path(f: &Finding, target: IpAddr, egress: Option<&str>) -> bool {
    let mut texts: Vec<&str> = vec![&f.subject, &f.detail, &f.title];
    texts.extend(f.evidence.iter().map(|e| e.excerpt.as_str()));
    let iface_hit = egress.is_some_and(|dev| {
        texts.iter().any(|t| {
            t.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' || c == '@'))
                .any(|w| w == dev)
        })
    });
    iface_hit || texts.iter().any(|t| mentions_prefix_of(t, target))
}

/// Whether `text` contains an address equal to `target` or a CIDR prefix containing it
/// (the default route `0.0.0.0/0` does not count: it contains everything).
fn mentions_prefix_of(text: &str, target: IpAddr) -> bool {
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':' || c == '/'))
        .filter(|w| w.contains('.') || w.contains(':'))
        .any(|w| {
            let w = w.trim_matches(|c| c == '.' || c == ':');
            match w.split_once('/') {
                Some((a, len)) => {
                    let (Ok(a), Ok(len)) = (a.parse::<IpAddr>(), len.parse::<u8>()) else { return false };
                    len > 0 && prefix_contains(a, len, target)
                }
                None => w.parse::<IpAddr>().is_ok_and(|a| a == target),
            }
        })
}

fn prefix_contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if len <= 128 => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// Findings serious enough to break traffic (high and critical), the rest is context.
pub(crate) fn breaks_traffic(f: &Finding) -> bool {
    f.severity >= Severity::High
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsleuth_model::{Confidence, Evidence, Layer, Location};

    fn finding(subject: &str, detail: &str, excerpt: &str) -> Finding {
        Finding {
            rule: "TUN-003".into(),
            severity: Severity::High,
            layer: Layer::Tunnel,
            subject: subject.into(),
            title: "t".into(),
            detail: detail.into(),
            evidence: vec![Evidence::new(Location::Derived, excerpt)],
            fix: String::new(),
            confidence: Confidence::Likely,
        }
    }

    #[test]
    fn path_relevance() {
        let t: IpAddr = "10.20.1.10".parse().expect("ip");
        assert!(concerns_path(&finding("host/gw/iface/wg0", "", ""), t, Some("wg0")));
        assert!(!concerns_path(&finding("host/gw/iface/wg01", "", ""), t, Some("wg0")));
        assert!(concerns_path(&finding("host/gw", "no route for 10.20.0.0/16.", ""), t, None));
        assert!(concerns_path(&finding("host/gw", "", "peer allowed 10.20.1.10"), t, None));
        assert!(!concerns_path(&finding("host/gw", "route 10.21.0.0/16 and default 0.0.0.0/0", ""), t, None));
        assert!(!concerns_path(&finding("host/gw", "mtu 1500 on eth1", ""), t, Some("eth0")));
        assert!(prefix_contains("fd00::".parse().expect("ip"), 8, "fd12::1".parse().expect("ip")));
        assert!(!prefix_contains("10.0.0.0".parse().expect("ip"), 8, "fd12::1".parse().expect("ip")));
    }
}
