#!/usr/bin/env bash
# Flow-log throughput benchmark: generates a large default-format flow log (not committed),
# runs the release `netsleuth flowlogs` on it plain and gzip, and prints records per second
# of wall time and per CPU second (user+sys: the per-core number, robust to a busy machine).
#
#   scripts/bench-flowlogs.sh [RECORDS]        # default 20000000; needs python3, gzip
#   KEEP=1 OUT=/tmp/fl scripts/bench-flowlogs.sh   # keep the generated files in $OUT
#   REUSE=1 KEEP=1 OUT=/tmp/fl BUILD=0 scripts/bench-flowlogs.sh   # run again on them
#   PER_FLOW=1.5 scripts/bench-flowlogs.sh     # records per distinct 5-tuple (default 5); short
#                                              # connections make it near 1 in real logs
set -euo pipefail

records=${1:-20000000}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$(mktemp -d /tmp/netsleuth-flowlogs-bench.XXXXXX)}
mkdir -p "$out"
bin="$root/target/release/netsleuth"

cleanup() { if [ "${KEEP:-0}" != 1 ]; then rm -rf "$out"; fi; }
trap cleanup EXIT

if [ ! -x "$bin" ] || [ "${BUILD:-1}" = 1 ]; then
  (cd "$root" && cargo build --release -p netsleuth >/dev/null)
fi

log="$out/flows.log"
if [ "${REUSE:-0}" = 1 ] && [ -s "$log" ] && [ -s "$log.gz" ]; then
  echo "reusing $log" >&2
else
echo "generating $records records into $log ..." >&2
# The same mix as crates/capture/benches/flowlogs.rs: 50 interfaces, one distinct 5-tuple per
# five records, 15% of flows rejected, 2% NODATA records; a header line as S3 writes it.
python3 - "$records" "$log" "${PER_FLOW:-5}" <<'PY'
import random, sys
n, path, per_flow = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
rnd = random.Random(42)
ports = [443, 80, 53, 5432, 500, 4500, 8472, 179, 22, 6443]
udp = {53, 500, 4500, 8472}
flows = int(n / per_flow) + 1
with open(path, "w", buffering=1 << 22) as f:
    f.write("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n")
    out = []
    for i in range(n):
        r = rnd.getrandbits(63)
        flow = r % flows
        eni = flow % 50
        start = 1700000000 + (i // 1000) * 60
        kind = (r >> 40) % 100
        if kind < 2:
            out.append(f"2 123456789010 eni-0a1b2c3d4e5f{eni:05d} - - - - - - - {start} {start + 60} - NODATA\n")
        else:
            s, d = flow & 0xFFFF, (flow >> 16) & 0xFFFF
            dport = ports[flow % 10]
            proto = 17 if dport in udp else 6
            pk = 1 + (r >> 20) % 200
            action = "REJECT" if (flow * 2654435761) % 100 < 15 else "ACCEPT"
            out.append(f"2 123456789010 eni-0a1b2c3d4e5f{eni:05d} 10.0.{s >> 8}.{s & 255} 10.1.{d >> 8}.{d & 255} "
                       f"{32768 + flow % 28000} {dport} {proto} {pk} {pk * 120} {start} {start + 59} {action} OK\n")
        if len(out) >= 100000:
            f.write("".join(out))
            out.clear()
    f.write("".join(out))
PY
gzip -1 -c "$log" > "$log.gz"
fi
size=$(stat -c %s "$log")
gzsize=$(stat -c %s "$log.gz")

run() {
  local file=$1
  local status=0
  /usr/bin/time -o "$out/time.txt" -f "%e %U %S %M" "$bin" flowlogs "$file" --format json --top 10 >"$out/out.json" 2>"$out/err.txt" || status=$?
  if [ "$status" -gt 1 ]; then cat "$out/err.txt" >&2; exit "$status"; fi
  read -r wall user sys maxrss < <(tail -1 "$out/time.txt")
  local recs
  recs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["records"])' "$out/out.json")
  python3 - "$file" "$recs" "$wall" "$user" "$sys" "$maxrss" <<'PY'
import sys
f, recs, wall, user, sys_, rss = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
cpu = user + sys_
print(f"{f.rsplit('/', 1)[-1]:<14} records {recs:>10}  wall {wall:6.2f} s  cpu {cpu:6.2f} s  "
      f"{recs / wall / 1e6:6.2f} M records/s wall  {recs / cpu / 1e6:6.2f} M records/s per CPU-second  max RSS {rss // 1024} MiB")
PY
}

echo "machine: $(nproc) CPU(s), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "input: $records records, $((size / 1048576)) MiB plain, $((gzsize / 1048576)) MiB gzip"
run "$log"
run "$log.gz"
