//! Flow-log throughput: parsing alone and the full analysis over generated default-format
//! records (a realistic mix: mostly accepted, some rejected, many distinct flows).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use netsleuth_capture::flowlogs::{self, parse, Format, FormatOrigin, Options};

/// Deterministic records: 50 interfaces, ~20% distinct flows repeated across windows,
/// 15% of flows rejected, 2% NODATA records; the same mix as scripts/bench-flowlogs.sh.
fn generate(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 110);
    out.extend_from_slice(flowlogs::format::DEFAULT_FIELDS.join(" ").as_bytes());
    out.push(b'\n');
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    use std::io::Write;
    for i in 0..n {
        let r = next();
        let flow = r % (n as u64 / 5 + 1);
        let eni = flow % 50;
        let start = 1_700_000_000 + (i as u64 / 1000) * 60;
        let kind = (r >> 40) % 100;
        if kind < 2 {
            writeln!(out, "2 123456789010 eni-0a1b2c3d4e5f{eni:05} - - - - - - - {start} {} - NODATA", start + 60)
                .unwrap();
            continue;
        }
        let src = 0x0a00_0000u32 | (flow as u32 & 0xffff);
        let dst = 0x0a01_0000u32 | ((flow >> 16) as u32 & 0xffff);
        let sport = 32768 + (flow % 28000) as u16;
        let dport = [443u16, 80, 53, 5432, 500, 4500, 8472, 179, 22, 6443][(flow % 10) as usize];
        let proto = if matches!(dport, 53 | 500 | 4500 | 8472) { 17 } else { 6 };
        // Security groups and NACLs decide per flow, not per record.
        let action = if (flow.wrapping_mul(2_654_435_761) % 100) < 15 { "REJECT" } else { "ACCEPT" };
        let packets = 1 + (r >> 20) % 200;
        writeln!(
            out,
            "2 123456789010 eni-0a1b2c3d4e5f{eni:05} {}.{}.{}.{} {}.{}.{}.{} {sport} {dport} {proto} {packets} {} {start} {} {action} OK",
            src >> 24,
            (src >> 16) & 255,
            (src >> 8) & 255,
            src & 255,
            dst >> 24,
            (dst >> 16) & 255,
            (dst >> 8) & 255,
            dst & 255,
            packets * 120,
            start + 59
        )
        .unwrap();
    }
    out
}

/// CPU time of this thread in nanoseconds (`/proc/thread-self/schedstat`), so the numbers
/// are per core even when other builds share the machine; wall time where unavailable.
fn cpu_ns(wall: std::time::Instant) -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or_else(|| wall.elapsed().as_nanos() as u64)
}

/// Runs `f` `iters` times and returns the CPU time it took.
fn cpu_time<R>(iters: u64, mut f: impl FnMut() -> R) -> std::time::Duration {
    let wall = std::time::Instant::now();
    let t0 = cpu_ns(wall);
    for _ in 0..iters {
        std::hint::black_box(f());
    }
    std::time::Duration::from_nanos(cpu_ns(wall).saturating_sub(t0))
}

fn bench(c: &mut Criterion) {
    let n = 200_000;
    let data = generate(n);
    let mut g = c.benchmark_group("flowlogs");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(20);
    let format = Format::default_v2(FormatOrigin::Given);
    g.bench_function(BenchmarkId::new("parse_lines", n), |b| {
        b.iter_custom(|iters| {
            cpu_time(iters, || {
                let mut ok = 0u64;
                for line in data.split(|b| *b == b'\n').skip(1) {
                    ok += u64::from(parse::parse_line(&format, line).is_ok());
                }
                ok
            })
        })
    });
    g.bench_function(BenchmarkId::new("analyze", n), |b| {
        b.iter_custom(|iters| {
            cpu_time(iters, || flowlogs::analyze_bytes("bench.log", &data, Options::default()).totals.records)
        })
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &data).unwrap();
    let gz = gz.finish().unwrap();
    g.bench_function(BenchmarkId::new("analyze_gzip", n), |b| {
        b.iter_custom(|iters| {
            cpu_time(iters, || flowlogs::analyze_bytes("bench.log.gz", &gz, Options::default()).totals.records)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
