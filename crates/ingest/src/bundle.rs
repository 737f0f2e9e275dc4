//! The bundle reader: walks a `netsleuth-bundle/1` folder, hands each known file to its
//! parser, and collects what failed as ingest issues so the rest is still analysed.

use std::fs;
use std::path::{Path, PathBuf};

use netsleuth_model::host::{Conntrack, Host, HostRole, InterfaceKind};
use netsleuth_model::{IngestIssue, Location, Manifest, Network};

use crate::error::{BundleError, ParseError};
use crate::{aws, firewall, host as hostp, ipsec, kubernetes, ParseContext, Redactor, Source};

/// Options of `read_bundle`.
#[derive(Debug, Clone)]
pub struct BundleOptions {
    /// Salt of the redaction key; None = a random key per run.
    pub salt: Option<String>,
    /// Files larger than this are not read (an ingest issue says so).
    pub max_file_bytes: u64,
}

impl Default for BundleOptions {
    fn default() -> Self {
        BundleOptions { salt: None, max_file_bytes: 2 << 30 }
    }
}

/// Reads the bundle at `root` into a network model. Only a missing or unreadable root is
/// an error; every file-level problem becomes an `IngestIssue` in the model.
pub fn read_bundle(root: &Path, options: &BundleOptions) -> Result<Network, BundleError> {
    let meta = fs::metadata(root).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => BundleError::NotFound { path: root.to_path_buf() },
        _ => BundleError::Io { path: root.to_path_buf(), source: e },
    })?;
    if !meta.is_dir() {
        return Err(BundleError::NotADirectory { path: root.to_path_buf() });
    }
    let redactor = match &options.salt {
        Some(salt) => Redactor::from_salt(salt),
        None => Redactor::random(),
    };
    let mut reader = Reader {
        root: root.to_path_buf(),
        options: options.clone(),
        ctx: ParseContext::new(redactor),
        net: Network::default(),
    };
    reader.read_root()?;
    let Reader { mut net, ctx, .. } = reader;
    net.redactions.extend(ctx.redactions);
    net.ingest_issues.extend(ctx.issues);
    if net.manifest.salt_id.is_none() {
        net.manifest.salt_id = Some(ctx.redactor.salt_id().to_string());
    }
    Ok(net)
}

struct Reader {
    root: PathBuf,
    options: BundleOptions,
    ctx: ParseContext,
    net: Network,
}

impl Reader {
    fn read_root(&mut self) -> Result<(), BundleError> {
        let root = self.root.clone();
        let entries = self.list(&root).map_err(|e| BundleError::Io { path: root.clone(), source: e })?;
        for entry in entries {
            let name = file_name(&entry);
            let is_dir = entry.is_dir();
            match (name.as_str(), is_dir) {
                ("manifest.json", false) => self.read_manifest(&entry),
                ("kubernetes", true) => self.read_kubernetes(&entry),
                ("hosts", true) => self.read_hosts(&entry),
                ("cloud", true) => self.read_cloud(&entry),
                _ => self.skip_tree(&entry),
            }
        }
        Ok(())
    }

    /// Directory entries sorted by name; symlinks are skipped (a bundle is plain files).
    fn list(&mut self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let ft = entry.file_type()?;
            if ft.is_symlink() {
                let rel = self.rel(&entry.path());
                self.net.skipped_files.push(rel);
                continue;
            }
            out.push(entry.path());
        }
        out.sort();
        Ok(out)
    }

    fn rel(&self, path: &Path) -> String {
        path.strip_prefix(&self.root).unwrap_or(path).to_string_lossy().replace('\\', "/")
    }

    fn skip_tree(&mut self, path: &Path) {
        if path.is_dir() {
            match self.list(path) {
                Ok(entries) => entries.iter().for_each(|e| self.skip_tree(e)),
                Err(e) => self.io_issue(path, &e),
            }
        } else {
            let rel = self.rel(path);
            self.net.skipped_files.push(rel);
        }
    }

    fn io_issue(&mut self, path: &Path, err: &std::io::Error) {
        let rel = self.rel(path);
        self.net
            .ingest_issues
            .push(IngestIssue { location: Location::file(rel), message: format!("cannot read: {err}") });
    }

    fn parse_issue(&mut self, err: ParseError) {
        self.net.ingest_issues.push(IngestIssue { location: err.location(), message: err.message });
    }

    /// Reads a file as UTF-8 text within the size limit; problems become ingest issues.
    fn read_text(&mut self, path: &Path) -> Option<(String, String)> {
        let rel = self.rel(path);
        let size = match fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) => {
                self.io_issue(path, &e);
                return None;
            }
        };
        if size > self.options.max_file_bytes {
            self.parse_issue(ParseError::new(
                rel,
                None,
                None,
                format!("file is {size} bytes, over the limit of {} bytes; not read", self.options.max_file_bytes),
            ));
            return None;
        }
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                self.io_issue(path, &e);
                return None;
            }
        };
        match String::from_utf8(bytes) {
            Ok(text) => Some((rel, text)),
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let bytes = e.as_bytes();
                let line = bytes[..valid].iter().filter(|b| **b == b'\n').count() + 1;
                let column = valid - bytes[..valid].iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1) + 1;
                self.parse_issue(ParseError::new(
                    rel,
                    Some(line),
                    Some(column),
                    format!("not UTF-8 text (invalid byte at offset {valid}); binary file?"),
                ));
                None
            }
        }
    }

    fn read_manifest(&mut self, path: &Path) {
        let Some((rel, text)) = self.read_text(path) else {
            return;
        };
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => {
                let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
                let collected_at = match v.get("collected_at") {
                    Some(serde_json::Value::Number(n)) => n.as_i64(),
                    Some(serde_json::Value::String(t)) => parse_rfc3339(t),
                    _ => None,
                };
                if v.get("collected_at").is_some() && collected_at.is_none() {
                    self.ctx.warn(
                        Location::json(&rel, "/collected_at"),
                        "collected_at is neither unix seconds nor an RFC 3339 UTC time; age checks will say unknown",
                    );
                }
                self.net.manifest = Manifest {
                    format: s("format"),
                    collected_at,
                    cluster: s("cluster"),
                    salt_id: s("salt_id"),
                    tool_version: s("tool_version"),
                };
            }
            Err(e) => self.parse_issue(ParseError::from_json(&rel, &e)),
        }
    }

    fn read_kubernetes(&mut self, dir: &Path) {
        let entries = match self.list(dir) {
            Ok(e) => e,
            Err(e) => return self.io_issue(dir, &e),
        };
        for entry in entries {
            if entry.is_dir() {
                self.read_kubernetes(&entry);
                continue;
            }
            let name = file_name(&entry);
            if !(name.ends_with(".json") || name.ends_with(".yaml") || name.ends_with(".yml")) {
                self.skip_tree(&entry);
                continue;
            }
            let Some((rel, text)) = self.read_text(&entry) else {
                continue;
            };
            let src = Source::new(&rel, &text);
            if let Err(e) = kubernetes::parse(&src, &mut self.net.kubernetes, &mut self.ctx) {
                self.parse_issue(e);
            }
        }
    }

    fn read_cloud(&mut self, dir: &Path) {
        let entries = match self.list(dir) {
            Ok(e) => e,
            Err(e) => return self.io_issue(dir, &e),
        };
        for entry in entries {
            if file_name(&entry) != "aws" || !entry.is_dir() {
                self.skip_tree(&entry);
                continue;
            }
            let files = match self.list(&entry) {
                Ok(e) => e,
                Err(e) => {
                    self.io_issue(&entry, &e);
                    continue;
                }
            };
            for file in files {
                let name = file_name(&file);
                let Some(what) = name.strip_prefix("describe-").and_then(|n| n.strip_suffix(".json")) else {
                    self.skip_tree(&file);
                    continue;
                };
                let what = what.to_string();
                let Some((rel, text)) = self.read_text(&file) else {
                    continue;
                };
                let src = Source::new(&rel, &text);
                match aws::parse(&src, &what, &mut self.net.aws, &mut self.ctx) {
                    Ok(true) => {}
                    Ok(false) => self.net.skipped_files.push(rel),
                    Err(e) => self.parse_issue(e),
                }
            }
        }
    }

    fn read_hosts(&mut self, dir: &Path) {
        let entries = match self.list(dir) {
            Ok(e) => e,
            Err(e) => return self.io_issue(dir, &e),
        };
        for entry in entries {
            if entry.is_dir() {
                let host = self.read_host(&entry);
                self.net.hosts.push(host);
            } else {
                self.skip_tree(&entry);
            }
        }
    }

    fn read_host(&mut self, dir: &Path) -> Host {
        let mut host = Host { name: file_name(dir), ..Host::default() };
        let mut links = None;
        let mut addrs = None;
        let mut wg_runtime = Vec::new();
        let mut wg_configs = Vec::new();
        let mut conntrack = Conntrack::default();
        let mut have_conntrack = false;
        let entries = match self.list(dir) {
            Ok(e) => e,
            Err(e) => {
                self.io_issue(dir, &e);
                return host;
            }
        };
        for entry in entries {
            let name = file_name(&entry);
            if entry.is_dir() {
                match name.as_str() {
                    "wireguard" => wg_configs.extend(self.read_wireguard_configs(&entry, &mut host)),
                    "swanctl" => self.read_swanctl_dir(&entry, &mut host),
                    "cni" => self.read_cni_dir(&entry, &mut host),
                    _ => self.skip_tree(&entry),
                }
                continue;
            }
            let known = matches!(
                name.as_str(),
                "host.json"
                    | "ip-link.json"
                    | "ip-addr.json"
                    | "ip-route.json"
                    | "ip-route6.json"
                    | "ip-rule.json"
                    | "ip-rule6.json"
                    | "nft.json"
                    | "iptables-save.txt"
                    | "ip6tables-save.txt"
                    | "wg-dump.txt"
                    | "swanctl-list-sas.txt"
                    | "sysctl.txt"
                    | "resolv.conf"
                    | "conntrack-stats.txt"
                    | "conntrack-count.txt"
            );
            if !known {
                self.skip_tree(&entry);
                continue;
            }
            let Some((rel, text)) = self.read_text(&entry) else {
                continue;
            };
            host.artifacts.push(rel.clone());
            let src = Source::new(&rel, &text);
            let ctx = &mut self.ctx;
            let result: Result<(), ParseError> = match name.as_str() {
                "host.json" => parse_host_json(&src, &mut host),
                "ip-link.json" => hostp::ip::parse_links(&src, ctx).map(|v| links = Some(v)),
                "ip-addr.json" => hostp::ip::parse_addrs(&src, ctx).map(|v| addrs = Some(v)),
                "ip-route.json" | "ip-route6.json" => {
                    hostp::ip::parse_routes(&src, ctx).map(|v| host.routes.routes.extend(v))
                }
                "ip-rule.json" | "ip-rule6.json" => hostp::ip::parse_rules(&src, ctx).map(|v| host.rules.extend(v)),
                "nft.json" => firewall::nft::parse(&src, ctx).map(|r| host.nftables = Some(r)),
                "iptables-save.txt" | "ip6tables-save.txt" => {
                    let family = if name.starts_with("ip6") { "ip6" } else { "ip" };
                    firewall::iptables::parse(&src, family, ctx).map(|r| match &mut host.iptables {
                        Some(existing) => existing.tables.extend(r.tables),
                        None => host.iptables = Some(r),
                    })
                }
                "wg-dump.txt" => hostp::wireguard::parse_dump(&src, ctx).map(|v| wg_runtime = v),
                "swanctl-list-sas.txt" => ipsec::swanctl_sas::parse(&src, ctx).map(|v| {
                    host.ipsec.sas = v;
                    host.ipsec.sas_collected = true;
                }),
                "sysctl.txt" => hostp::sysctl::parse(&src, ctx).map(|s| host.sysctls = s),
                "resolv.conf" => hostp::resolv::parse(&src, ctx).map(|r| host.resolv = Some(r)),
                "conntrack-stats.txt" => hostp::conntrack::parse_stats(&src, ctx).map(|s| {
                    have_conntrack = true;
                    conntrack.stats = s;
                    conntrack.stats_origin = Some(Location::file(&rel));
                }),
                "conntrack-count.txt" => hostp::conntrack::parse_count(&src, ctx).map(|c| {
                    have_conntrack = true;
                    conntrack.count = Some(c);
                    conntrack.count_origin = Some(Location::line(&rel, 1));
                }),
                _ => Ok(()),
            };
            if let Err(e) = result {
                self.parse_issue(e);
            }
        }
        host.interfaces = match (links, addrs) {
            (Some(l), Some(a)) => hostp::ip::merge_interfaces(l, a),
            (Some(l), None) => l,
            (None, Some(a)) => a,
            (None, None) => Vec::new(),
        };
        // `ip -j route show table all` without -4 lists IPv6 routes too, which ip-route6.json
        // repeats: keep one of each.
        host.routes.routes = hostp::ip::dedup_routes(std::mem::take(&mut host.routes.routes));
        let mut wireguard = hostp::wireguard::merge(wg_runtime, wg_configs);
        // With wireguard-go, `wg show all dump` reaches every control socket on the machine,
        // whatever namespace its interface lives in: keep only this host's interfaces when
        // its link list is known.
        if !host.interfaces.is_empty() {
            wireguard.retain(|w| !w.from_runtime || host.interfaces.iter().any(|i| i.name == w.name));
        }
        host.wireguard = wireguard;
        // wireguard-go (userspace) shows up in `ip -d link` as a plain TUN device; the
        // WireGuard state names it, so the model says what it really is.
        for iface in &mut host.interfaces {
            if iface.kind == InterfaceKind::Tun && host.wireguard.iter().any(|w| w.name == iface.name) {
                iface.kind = InterfaceKind::WireGuard;
            }
        }
        if let Some(max) = host.sysctls.get_i64("net.netfilter.nf_conntrack_max") {
            conntrack.max = u64::try_from(max).ok();
            have_conntrack |= conntrack.count.is_some();
        }
        if have_conntrack {
            host.conntrack = Some(conntrack);
        }
        host
    }

    fn read_wireguard_configs(
        &mut self,
        dir: &Path,
        host: &mut Host,
    ) -> Vec<netsleuth_model::wireguard::WireGuardInterface> {
        let mut out = Vec::new();
        let entries = match self.list(dir) {
            Ok(e) => e,
            Err(e) => {
                self.io_issue(dir, &e);
                return out;
            }
        };
        for entry in entries {
            let name = file_name(&entry);
            let Some(stem) = name.strip_suffix(".conf").map(str::to_string) else {
                self.skip_tree(&entry);
                continue;
            };
            let Some((rel, text)) = self.read_text(&entry) else {
                continue;
            };
            host.artifacts.push(rel.clone());
            match hostp::wireguard::parse_config(&Source::new(&rel, &text), &stem, &mut self.ctx) {
                Ok(i) => out.push(i),
                Err(e) => self.parse_issue(e),
            }
        }
        out
    }

    fn read_swanctl_dir(&mut self, dir: &Path, host: &mut Host) {
        let entries = match self.list(dir) {
            Ok(e) => e,
            Err(e) => return self.io_issue(dir, &e),
        };
        // swanctl.conf first, then sub-folders (conf.d), as strongSwan's include would.
        let (files, dirs): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| !e.is_dir());
        for entry in files {
            if !file_name(&entry).ends_with(".conf") {
                self.skip_tree(&entry);
                continue;
            }
            let Some((rel, text)) = self.read_text(&entry) else {
                continue;
            };
            host.artifacts.push(rel.clone());
            match ipsec::swanctl_conf::parse(&Source::new(&rel, &text), &mut self.ctx) {
                Ok(c) => {
                    host.ipsec.connections.extend(c.connections);
                    host.ipsec.secrets.extend(c.secrets);
                }
                Err(e) => self.parse_issue(e),
            }
        }
        for d in dirs {
            self.read_swanctl_dir(&d, host);
        }
    }

    fn read_cni_dir(&mut self, dir: &Path, host: &mut Host) {
        let entries = match self.list(dir) {
            Ok(e) => e,
            Err(e) => return self.io_issue(dir, &e),
        };
        host.artifacts.push(format!("{}/", self.rel(dir)));
        for entry in entries {
            let name = file_name(&entry);
            if entry.is_dir() || !(name.ends_with(".conf") || name.ends_with(".conflist") || name.ends_with(".json")) {
                self.skip_tree(&entry);
                continue;
            }
            let Some((rel, text)) = self.read_text(&entry) else {
                continue;
            };
            host.artifacts.push(rel.clone());
            match hostp::cni::parse(&Source::new(&rel, &text), &mut self.ctx) {
                Ok(c) => host.cni.push(c),
                Err(e) => self.parse_issue(e),
            }
        }
    }
}

fn parse_host_json(src: &Source<'_>, host: &mut Host) -> Result<(), ParseError> {
    let v: serde_json::Value = serde_json::from_str(src.text).map_err(|e| ParseError::from_json(src.path, &e))?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    host.role = match s("role").as_deref() {
        None => None,
        Some("node") => Some(HostRole::Node),
        Some("gateway") => Some(HostRole::Gateway),
        Some("pod") => Some(HostRole::Pod),
        Some(other) => return Err(src.error(format!("unknown role {other:?} (expected node, gateway or pod)"))),
    };
    host.node = s("node");
    host.pod = s("pod");
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|+00:00)` into unix seconds (UTC offsets honoured).
pub fn parse_rfc3339(t: &str) -> Option<i64> {
    let t = t.trim();
    // Everything below indexes bytes: only ASCII input can be a valid timestamp.
    if !t.is_ascii() || t.len() < 19 {
        return None;
    }
    let b = t.as_bytes();
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, s) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let mut rest = t.get(19..)?;
    if let Some(r) = rest.strip_prefix('.') {
        rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" | "" => 0,
        r if r.len() == 6 && (r.starts_with('+') || r.starts_with('-')) && r.as_bytes()[3] == b':' => {
            let sign = if r.starts_with('-') { -1 } else { 1 };
            sign * (r.get(1..3)?.parse::<i64>().ok()? * 3600 + r.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_wireguard_go_interfaces_are_dropped_and_tun_reclassified() {
        let dir = tempfile::tempdir().unwrap();
        let h = dir.path().join("hosts/gw");
        fs::create_dir_all(&h).unwrap();
        fs::write(
            h.join("ip-link.json"),
            r#"[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP"],"mtu":65536,"operstate":"UNKNOWN","link_type":"loopback"},
               {"ifindex":5,"ifname":"wg0","flags":["POINTOPOINT","UP"],"mtu":1420,"operstate":"UNKNOWN","link_type":"none","linkinfo":{"info_kind":"tun"}}]"#,
        )
        .unwrap();
        let key = "MPAdKT6T7LqCl2Lkc0S4h0umDmhcaqjp9LGfJk8aG04=";
        let pubkey = "lNXyceRdVMxmCU0HB9G4zSqT7E9Y8+CooPUeBwm3YlY=";
        fs::write(
            h.join("wg-dump.txt"),
            format!("wg0\t{key}\t{pubkey}\t51820\toff\nwg-other\t{key}\t{pubkey}\t51821\toff\n"),
        )
        .unwrap();
        let net = read_bundle(dir.path(), &BundleOptions::default()).unwrap();
        assert!(net.ingest_issues.is_empty(), "{:?}", net.ingest_issues);
        let host = net.host("gw").unwrap();
        assert_eq!(host.wireguard.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(), ["wg0"]);
        assert_eq!(host.interface("wg0").unwrap().kind, InterfaceKind::WireGuard);
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-11-23T01:10:09Z"), Some(1_795_396_209));
        assert_eq!(parse_rfc3339("2026-11-23T02:10:09+01:00"), Some(1_795_396_209));
        assert_eq!(parse_rfc3339("2026-11-23T01:10:09.5Z"), Some(1_795_396_209));
        assert_eq!(parse_rfc3339("yesterday"), None);
        // Non-ASCII must not panic on byte slicing.
        assert_eq!(parse_rfc3339("2026-11-23T01:10:09+0\u{e9}00"), None);
        assert_eq!(parse_rfc3339("\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}"), None);
    }
}
