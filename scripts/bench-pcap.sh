#!/usr/bin/env bash
# Benchmarks `netsleuth pcap` on a large generated capture against `cat FILE > /dev/null`
# (page cache) and tshark computing the same counts, and checks the counts agree.
#
# Usage: scripts/bench-pcap.sh [FILE] [MIB]
#   FILE  capture to use; generated with crates/capture/examples/gen_capture.rs when missing
#         (default /tmp/netsleuth-bench/bench.pcap, MIB default 1024)
#   env: SKIP_TSHARK=1  skip the (slow) tshark run; RUNS=N  netsleuth/cat repetitions (default 3)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FILE=${1:-/tmp/netsleuth-bench/bench.pcap}
MIB=${2:-1024}
RUNS=${RUNS:-3}
cd "$ROOT"
cargo build -q --release -p netsleuth -p netsleuth-capture --example gen_capture
if [ ! -f "$FILE" ]; then
    mkdir -p "$(dirname "$FILE")"
    target/release/examples/gen_capture "$FILE" "$MIB"
fi
BIN=$ROOT/target/release/netsleuth
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# Seconds (wall) of the best of RUNS runs of a command.
best() {
    local best="" t
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f "%e" -o "$OUT/time" "$@" >/dev/null 2>&1 || true
        t=$(tail -n 1 "$OUT/time")
        if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$t; fi
    done
    echo "$best"
}

echo "file: $FILE ($(stat -c %s "$FILE") bytes)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$FILE" >/dev/null # into the page cache
CAT=$(best cat "$FILE")
# netsleuth exits 1 when it has findings; `time` still reports.
NS=$(best "$BIN" pcap "$FILE" --format json)
"$BIN" pcap "$FILE" --format json >"$OUT/ns.json" || true
echo "cat (page cache):  ${CAT} s"
echo "netsleuth pcap:    ${NS} s  ($(awk -v a="$NS" -v b="$CAT" 'BEGIN { printf "%.1f", a / b }')x cat)"
# Reading and analysis run on two threads: CPU time above the wall time is that overlap; a
# busy second core (see the load) shows as a wall time close to user + sys.
/usr/bin/time -f "%U %S" -o "$OUT/cpu" "$BIN" pcap "$FILE" --format json >/dev/null 2>&1 || true
echo "netsleuth cpu:     user $(tail -n 1 "$OUT/cpu" | cut -d' ' -f1) s, sys $(tail -n 1 "$OUT/cpu" | cut -d' ' -f2) s (one run; load now $(cut -d' ' -f1 /proc/loadavg))"
if [ "${SKIP_TSHARK:-0}" != 1 ]; then
    FILTERS="tcp.analysis.retransmission,tcp.analysis.duplicate_ack,tcp.analysis.zero_window,dns.flags.response == 0 && udp.port == 53,dns.flags.response == 1 && udp.port == 53,(icmp.type == 3 && icmp.code == 4) || icmpv6.type == 2"
    /usr/bin/time -f "%e" -o "$OUT/time" tshark -n -q -r "$FILE" -z "io,stat,0,$FILTERS" >"$OUT/io.txt" 2>/dev/null
    TS=$(tail -n 1 "$OUT/time")
    echo "tshark io,stat:    ${TS} s  ($(awk -v a="$TS" -v b="$NS" 'BEGIN { printf "%.0f", a / b }')x netsleuth)"
    python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
c = json.load(open(f"{out}/ns.json"))["captures"][0]["counts"]
row = next(l for l in open(f"{out}/io.txt") if "<>" in l)
cells = [x.strip() for x in row.split("|")[2:] if x.strip()]
t = [int(x) for x in cells[0::2]]
keys = ["tcp_retransmissions", "tcp_duplicate_acks", "tcp_zero_windows", "dns_queries", "dns_responses", "icmp_too_big"]
bad = False
for k, v in zip(keys, t):
    mark = "ok" if c[k] == v else "DIFF"
    bad |= c[k] != v
    print(f"  {mark:4} {k}: netsleuth {c[k]}, tshark {v}")
sys.exit(1 if bad else 0)
PY
fi
