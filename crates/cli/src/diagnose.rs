//! `netsleuth diagnose --to TARGET[:PORT]`: walks the layers inside-out from this host and
//! names the first broken one with evidence and a fix (the engine is in netsleuth-probe).

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use netsleuth_probe::diagnose::{self, DiagnoseError, DiagnoseRequest, Proto};

use crate::app::{wants_color, write_stdout, Outcome};
use crate::args::ColorWhen;

pub(crate) const DIAGNOSE_EXAMPLES: &str = "\
Examples:
  netsleuth diagnose --to 10.20.1.10:5000
  netsleuth diagnose --to api.default.svc.cluster.local:8080 --proto http
  netsleuth diagnose --to 10.10.1.10:5001 --proto udp --format json
  netsleuth diagnose --to db.corp.example:5432 --samples 20 --interval 500ms
  ip netns exec pod-a netsleuth diagnose --to 10.20.1.10:5000   # from a pod's namespace

Probes go only to the target, the next hop of its route and the resolvers of resolv.conf;
each is bounded in count and time. Raw ICMP probes need root (or CAP_NET_RAW).
Exit codes: 0 healthy (no cause found), 1 a cause was found, 2 usage error.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProtoArg {
    Tcp,
    Udp,
    Icmp,
    Http,
    Dns,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DiagnoseFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct DiagnoseArgs {
    /// The target: ADDRESS, NAME, ADDRESS:PORT, NAME:PORT or [IPV6]:PORT.
    #[arg(long, value_name = "TARGET[:PORT]")]
    pub(crate) to: String,

    /// Transport probe: tcp connect, http GET, udp request/response, icmp echo, dns query.
    /// Default: tcp with a port, icmp without.
    #[arg(long, value_enum)]
    pub(crate) proto: Option<ProtoArg>,

    /// Output format.
    #[arg(long, short, value_enum, default_value_t = DiagnoseFormat::Text)]
    pub(crate) format: DiagnoseFormat,

    /// Overall time limit (e.g. 30s, 1m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,

    /// Time limit of one probe attempt.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub(crate) probe_timeout: Duration,

    /// Repeat the transport and next-hop probes N times (1-100) to measure loss and latency.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) samples: u32,

    /// Pause between samples (e.g. 200ms, 1s).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub(crate) interval: Duration,

    /// resolv.conf to take the resolvers and search list from.
    #[arg(long, default_value = "/etc/resolv.conf", value_name = "FILE")]
    pub(crate) resolv_conf: PathBuf,

    /// HTTP path requested with --proto http.
    #[arg(long, default_value = "/")]
    pub(crate) path: String,

    /// charon's VICI socket (`unix:///path`) when it is not the default one.
    #[arg(long, value_name = "URI")]
    pub(crate) swanctl_uri: Option<String>,

    /// swanctl.conf to read instead of /etc/swanctl/swanctl.conf.
    #[arg(long, value_name = "FILE")]
    pub(crate) swanctl_conf: Option<PathBuf>,

    /// charon's log file: its last IKE errors become evidence of the tunnel layer.
    #[arg(long, value_name = "FILE")]
    pub(crate) charon_log: Option<PathBuf>,

    /// Skip collecting the local state (interfaces, routes, firewall, tunnels) and its rules.
    #[arg(long)]
    pub(crate) no_local_state: bool,

    /// Skip the path MTU search.
    #[arg(long)]
    pub(crate) no_pmtu: bool,
}

/// `500ms`, `2s`, `1.5s`, `1m`, or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.trim().parse().map_err(|_| format!("{s:?} is not a duration (e.g. 500ms, 2s, 1m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m)")),
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 3600.0 {
        return Err(format!("{s:?} is outside 1 ms .. 1 h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub(crate) fn run(args: &DiagnoseArgs, color: ColorWhen) -> Result<Outcome> {
    let (target, port) =
        diagnose::parse_target(&args.to).map_err(|DiagnoseError::Usage(m)| anyhow::anyhow!("--to: {m}"))?;
    let proto = match (args.proto, port) {
        (Some(ProtoArg::Tcp), _) => Proto::Tcp,
        (Some(ProtoArg::Udp), _) => Proto::Udp,
        (Some(ProtoArg::Icmp), _) => Proto::Icmp,
        (Some(ProtoArg::Http), _) => Proto::Http,
        (Some(ProtoArg::Dns), _) => Proto::Dns,
        (None, Some(_)) => Proto::Tcp,
        (None, None) => Proto::Icmp,
    };
    if args.probe_timeout > args.timeout {
        bail!("--probe-timeout ({:?}) is longer than --timeout ({:?})", args.probe_timeout, args.timeout);
    }
    if !args.path.starts_with('/') || args.path.chars().any(|c| c.is_control() || c == ' ') {
        bail!("--path must start with '/' and contain no spaces or control characters");
    }
    // Files named on the command line must exist (the default resolv.conf may be absent:
    // that is a finding of the DNS probe, not a usage error).
    let given = [
        (args.resolv_conf != Path::new("/etc/resolv.conf")).then_some(("--resolv-conf", args.resolv_conf.as_path())),
        args.swanctl_conf.as_deref().map(|p| ("--swanctl-conf", p)),
        args.charon_log.as_deref().map(|p| ("--charon-log", p)),
    ];
    for (flag, path) in given.into_iter().flatten() {
        if !path.is_file() {
            bail!("{flag} {}: no such file", path.display());
        }
    }
    let mut req = DiagnoseRequest::new(target, port, proto);
    req.timeout = args.timeout;
    req.probe_timeout = args.probe_timeout;
    req.samples = args.samples;
    req.interval = args.interval;
    req.resolv_conf = args.resolv_conf.clone();
    req.local_state = !args.no_local_state;
    req.pmtu = !args.no_pmtu;
    req.http_path = args.path.clone();
    req.swanctl_uri = args.swanctl_uri.clone();
    req.swanctl_conf = args.swanctl_conf.clone();
    req.charon_log = args.charon_log.clone();

    let tty = io::stderr().is_terminal();
    let progress = |msg: &str| {
        if tty {
            let _ = write!(io::stderr().lock(), "\r\x1b[2Knetsleuth diagnose: {msg} …");
        }
    };
    let result = diagnose::run(&req, &progress);
    if tty {
        let _ = write!(io::stderr().lock(), "\r\x1b[2K");
    }
    let report = result.map_err(|DiagnoseError::Usage(m)| anyhow::anyhow!(m))?;
    let text = match args.format {
        DiagnoseFormat::Json => diagnose::render_json(&report),
        DiagnoseFormat::Text => diagnose::render_text(&report, wants_color(color, &io::stdout())),
    };
    write_stdout(|w| w.write_all(text.as_bytes()))?;
    Ok(if report.healthy() { Outcome::Clean } else { Outcome::Findings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("2h").is_err());
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("NaNs").is_err());
    }
}
