//! `netsleuth trace BUNDLE --from SRC --to DST`: follows one packet hop by hop through a
//! bundle and prints the hops and how the trace ends (text table or JSON).

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use netsleuth_ingest::BundleOptions;
use netsleuth_trace::path::{Action, Destination, DispositionKind, Endpoint, Trace, TraceOptions, Tracer};

use crate::app::Outcome;
use crate::args::ColorWhen;

pub(crate) const TRACE_EXAMPLES: &str = "\
Examples:
  netsleuth trace bundle/ --from pod:shop/web-7d4b9c --to 10.20.1.10:443
  netsleuth trace bundle/ --from pod:shop/web-7d4b9c --to svc:kube-system/kube-dns:dns
  netsleuth trace bundle/ --from host:node-1 --to 10.244.2.20:9090/tcp --format json
  netsleuth trace bundle/ --from 10.0.1.15 --to 192.168.10.5   # ICMP echo without a port

Sources: pod:NS/NAME, host:NAME (a folder under hosts/), or an IP address.
Destinations: IP[:PORT[/tcp|udp|sctp]], svc:NS/NAME[:PORT|:PORTNAME], pod:NS/NAME[:PORT[/PROTO]],
  host:NAME[:PORT[/PROTO]].
Packet size: --size BYTES (default: the source's egress MTU), --no-df to let routers fragment.
Dispositions: delivered, dropped, no-route, loop, exits-network, ambiguous, insufficient-info.
Exit codes: 0 delivered or exits-network, 1 any other disposition, 2 usage or input error.";

#[derive(Debug, Args)]
pub(crate) struct TraceArgs {
    /// Bundle folder to trace in.
    #[arg(value_name = "BUNDLE")]
    pub(crate) bundle: PathBuf,

    /// Where the packet starts: pod:NS/NAME, host:NAME or an IP address.
    #[arg(long, value_name = "SRC")]
    pub(crate) from: String,

    /// Where it goes: IP[:PORT[/PROTO]], svc:NS/NAME[:PORT], pod:NS/NAME or host:NAME.
    #[arg(long, value_name = "DST")]
    pub(crate) to: String,

    /// Source port (stateless return-path checks such as AWS network ACLs use it).
    #[arg(long, value_name = "PORT")]
    pub(crate) src_port: Option<u16>,

    /// IP packet size in bytes to trace against every MTU on the path (default: the MTU of
    /// the source's egress interface; TCP: capped by the MSS the path settles on).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(28..=65535))]
    pub(crate) size: Option<u32>,

    /// Send without the don't-fragment bit (routers fragment instead of answering ICMP
    /// fragmentation-needed). Default: DF set, as Linux sends with path MTU discovery.
    #[arg(long)]
    pub(crate) no_df: bool,

    /// Output format.
    #[arg(long, short, value_enum, default_value_t = TraceFormat::Text)]
    pub(crate) format: TraceFormat,

    /// Salt for secret fingerprints (as for `analyze`).
    #[arg(long, env = "NETSLEUTH_SALT", hide_env_values = true)]
    pub(crate) salt: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TraceFormat {
    /// A hop table and the disposition.
    Text,
    /// `{"packet", "hops": [...], "disposition": {"kind", "at", "reason"}, "assumptions", "missing"}`.
    Json,
}

pub(crate) fn run(args: &TraceArgs, color: ColorWhen) -> Result<Outcome> {
    // Both ends are checked before the bundle is read: a typo fails fast.
    let from: Endpoint = args.from.parse().context("--from")?;
    let to: Destination = args.to.parse().context("--to")?;
    let options = BundleOptions { salt: args.salt.clone(), ..BundleOptions::default() };
    let net = netsleuth_ingest::read_bundle(&args.bundle, &options)?;
    let tracer = Tracer::new(&net);
    let opts = TraceOptions { src_port: args.src_port, size: args.size, no_df: args.no_df, ..TraceOptions::default() };
    let trace = tracer.trace(&from, &to, &opts)?;
    let stdout = io::stdout();
    let color = crate::app::wants_color(color, &stdout);
    crate::app::write_stdout(|w| match args.format {
        TraceFormat::Text => render_text(&trace, color, w),
        TraceFormat::Json => {
            serde_json::to_writer_pretty(&mut *w, &trace)?;
            w.write_all(b"\n")
        }
    })?;
    Ok(if trace.disposition.kind.is_success() { Outcome::Clean } else { Outcome::Findings })
}

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

fn paint(s: &str, code: &str, color: bool) -> String {
    if color {
        format!("{code}{s}{RESET}")
    } else {
        s.to_string()
    }
}

fn action_color(a: Action) -> &'static str {
    match a {
        Action::Forward => "",
        Action::Deliver => GREEN,
        Action::Drop => RED,
        Action::Unknown => YELLOW,
    }
}

/// Renders the hop table: one row per hop (layer, component, action, reason), each
/// evidence on its own indented line, then the disposition, assumptions and missing data.
pub(crate) fn render_text(t: &Trace, color: bool, w: &mut dyn Write) -> io::Result<()> {
    let port = t.packet.dst_port.map(|p| format!(":{p}")).unwrap_or_default();
    let size =
        t.packet.size.map(|s| format!(", {s} bytes{}", if t.packet.df { ", DF" } else { "" })).unwrap_or_default();
    writeln!(w, "trace {} → {}{port} ({}{size})", t.packet.src, t.packet.dst, t.packet.protocol)?;
    let wl = t.hops.iter().map(|h| h.layer.as_str().len()).max().unwrap_or(5).max(5);
    let wc = t.hops.iter().map(|h| h.component.chars().count()).max().unwrap_or(9).clamp(9, 60);
    writeln!(w, "{:>3}  {:<wl$}  {:<wc$}  {:<7}  reason", "#", "layer", "component", "action")?;
    for (i, h) in t.hops.iter().enumerate() {
        let action = format!("{:<7}", h.action.as_str());
        let action =
            if action_color(h.action).is_empty() { action } else { paint(&action, action_color(h.action), color) };
        writeln!(w, "{:>3}  {:<wl$}  {:<wc$}  {action}  {}", i + 1, h.layer.as_str(), h.component, h.reason)?;
        for e in &h.evidence {
            writeln!(w, "{:>3}  {:<wl$}  {:<wc$}  {:<7}  ↳ {}: {}", "", "", "", "", e.location, e.excerpt)?;
        }
        if let Some(m) = &h.mtu {
            let side = |x: &Option<netsleuth_trace::path::IfaceMtu>| {
                x.as_ref().map(|i| format!("{} {} mtu {}", i.host, i.interface, i.mtu))
            };
            // The receiving side is shown when known (not for tunnels, or next hops
            // outside the bundle).
            let path = match (side(&m.egress), side(&m.ingress)) {
                (Some(o), Some(i)) => format!("out {o} → in {i}"),
                (Some(o), None) => format!("out {o}"),
                (None, Some(i)) => format!("in {i}"),
                (None, None) => String::new(),
            };
            writeln!(w, "{:>3}  {:<wl$}  {:<wc$}  {:<7}  ↳ size {} bytes: {path}", "", "", "", "", m.size)?;
        }
    }
    let kind = t.disposition.kind;
    let code = match kind {
        DispositionKind::Delivered | DispositionKind::ExitsNetwork => GREEN,
        DispositionKind::Ambiguous | DispositionKind::InsufficientInfo => YELLOW,
        _ => RED,
    };
    writeln!(w)?;
    let head = paint(&format!("{kind}"), &format!("{BOLD}{code}"), color);
    if t.disposition.at.is_empty() {
        writeln!(w, "disposition: {head}: {}", t.disposition.reason)?;
    } else {
        writeln!(w, "disposition: {head} at {}: {}", t.disposition.at, t.disposition.reason)?;
    }
    if !t.assumptions.is_empty() {
        writeln!(w, "assumptions:")?;
        for a in &t.assumptions {
            writeln!(w, "  - {a}")?;
        }
    }
    if !t.missing.is_empty() {
        writeln!(w, "missing from the bundle:")?;
        for m in &t.missing {
            writeln!(w, "  - {m}")?;
        }
    }
    Ok(())
}
