//! `netsleuth-synth`: writes synthetic netsleuth bundles (and the same cluster as a
//! k8s-netinspect snapshot) for benchmarks and fuzz seeds.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use netsleuth_synth::{generate, write_netinspect_snapshot, Spec, Summary};

#[derive(Parser)]
#[command(name = "netsleuth-synth", version, about = "Generate synthetic netsleuth bundles")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a bundle of a synthetic cluster (deterministic for a seed)
    Gen {
        /// Kubernetes nodes
        #[arg(long, default_value_t = 10)]
        nodes: u32,
        /// Pods in total (CoreDNS's two included)
        #[arg(long, default_value_t = 100)]
        pods: u32,
        /// NetworkPolicies
        #[arg(long, default_value_t = 20)]
        policies: u32,
        /// Application namespaces (system namespaces come on top); default pods/300
        #[arg(long)]
        namespaces: Option<u32>,
        /// Seed of the generator
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also write host folders for the first H nodes
        #[arg(long, default_value_t = 0, value_name = "H")]
        hosts: u32,
        /// One line per file instead of kubectl's indented JSON
        #[arg(long)]
        compact: bool,
        /// Replace an earlier synthetic bundle in DIR
        #[arg(long)]
        force: bool,
        /// Bundle folder to write (created; must be empty)
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
        /// Also write the cluster as a k8s-netinspect `--from-snapshot` file
        #[arg(long, value_name = "FILE")]
        netinspect_snapshot: Option<PathBuf>,
    },
}

fn report(what: &str, s: &Summary, secs: f64) -> std::io::Result<()> {
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "{what}: {} namespaces, {} nodes, {} pods, {} services, {} endpointslices, {} networkpolicies, {} hosts; \
         {:.1} MiB in {secs:.1} s",
        s.namespaces,
        s.nodes,
        s.pods,
        s.services,
        s.endpoint_slices,
        s.network_policies,
        s.hosts,
        s.bytes as f64 / (1024.0 * 1024.0)
    )
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the context chain on one line, without a backtrace.
            let _ = writeln!(std::io::stderr(), "netsleuth-synth: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Gen {
            nodes,
            pods,
            policies,
            namespaces,
            seed,
            hosts,
            compact,
            force,
            output,
            netinspect_snapshot,
        } => {
            let spec = Spec {
                nodes,
                pods,
                policies,
                namespaces: namespaces.unwrap_or_else(|| Spec::default_namespaces(pods)),
                seed,
                hosts,
                pretty: !compact,
            };
            let t = Instant::now();
            let s = generate(&spec, &output, force).with_context(|| format!("writing bundle {}", output.display()))?;
            report(&output.display().to_string(), &s, t.elapsed().as_secs_f64())?;
            if let Some(file) = netinspect_snapshot {
                let t = Instant::now();
                let s = write_netinspect_snapshot(&spec, &file)
                    .with_context(|| format!("writing snapshot {}", file.display()))?;
                report(&file.display().to_string(), &s, t.elapsed().as_secs_f64())?;
            }
        }
    }
    Ok(())
}
