//! Where the time of `netsleuth analyze` goes: the whole `read_bundle`, each Kubernetes
//! file's parse, the catalog, and every rule alone (slowest first).
//! `cargo run --release -p netsleuth-synth --example profile -- BUNDLE [TOP]`

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;

use netsleuth_analyze::{analyze, catalog, AnalyzeOptions};
use netsleuth_ingest::{kubernetes, read_bundle, BundleOptions, ParseContext, Source};

/// Peak resident set size of this process so far, in MiB (Linux `VmHWM`).
fn peak_rss_mib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// Prints the profile of the bundle at `root` to `out`; `top` rules by time.
fn profile(root: &Path, top: usize, out: &mut dyn Write) -> anyhow::Result<()> {
    let options = BundleOptions { salt: Some("profile".into()), ..BundleOptions::default() };
    let t = Instant::now();
    let net = read_bundle(root, &options)?;
    let read_s = t.elapsed().as_secs_f64();
    let c = &net.kubernetes;
    writeln!(
        out,
        "read_bundle        {read_s:8.3} s   peak RSS {:>6} MiB   ({} nodes, {} pods, {} services, {} slices, {} policies, {} hosts, {} ingest issues)",
        peak_rss_mib().map_or("?".into(), |m| m.to_string()),
        c.nodes.len(),
        c.pods.len(),
        c.services.len(),
        c.endpoint_slices.len(),
        c.network_policies.len(),
        net.hosts.len(),
        net.ingest_issues.len()
    )?;
    for issue in net.ingest_issues.iter().take(5) {
        writeln!(out, "  ingest issue: {:?}: {}", issue.location, issue.message)?;
    }

    // Each Kubernetes file on its own: file read vs parse.
    let kdir = root.join("kubernetes");
    let mut files: Vec<_> = fs::read_dir(&kdir).map(|it| it.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    for path in files.iter().filter(|p| p.is_file()) {
        let t = Instant::now();
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                writeln!(out, "  {}: {e}", path.display())?;
                continue;
            }
        };
        let io_s = t.elapsed().as_secs_f64();
        let rel = format!("kubernetes/{}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        let mut cluster = netsleuth_model::kubernetes::Cluster::default();
        let mut ctx = ParseContext::default();
        let t = Instant::now();
        let r = kubernetes::parse(&Source::new(&rel, &text), &mut cluster, &mut ctx);
        let parse_s = t.elapsed().as_secs_f64();
        writeln!(
            out,
            "  {rel:<32} {:>8.1} MiB  read {io_s:6.3} s  parse {parse_s:6.3} s  ({:.0} MiB/s){}",
            text.len() as f64 / 1048576.0,
            text.len() as f64 / 1048576.0 / parse_s.max(1e-9),
            if r.is_err() { "  PARSE ERROR" } else { "" }
        )?;
    }

    let t = Instant::now();
    let findings = analyze(&net, &AnalyzeOptions::default());
    let analyze_s = t.elapsed().as_secs_f64();
    writeln!(out, "analyze (all rules) {analyze_s:8.3} s   {} findings", findings.len())?;

    let mut per_rule = Vec::new();
    for rule in catalog() {
        let t = Instant::now();
        let n = analyze(&net, &AnalyzeOptions { only: vec![rule.id.to_string()], ..AnalyzeOptions::default() }).len();
        per_rule.push((t.elapsed().as_secs_f64(), rule.id, n));
    }
    per_rule.sort_by(|a, b| b.0.total_cmp(&a.0));
    writeln!(out, "slowest rules (each run alone):")?;
    for (s, id, n) in per_rule.iter().take(top) {
        writeln!(out, "  {id:<10} {s:8.3} s   {n} findings")?;
    }
    writeln!(out, "peak RSS {} MiB", peak_rss_mib().map_or("?".into(), |m| m.to_string()))?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let Some(bundle) = args.next() else {
        anyhow::bail!("usage: profile BUNDLE [TOP]");
    };
    let top = match args.next() {
        Some(t) => t.to_string_lossy().parse()?,
        None => 10,
    };
    profile(Path::new(&bundle), top, &mut io::stdout().lock())
}
