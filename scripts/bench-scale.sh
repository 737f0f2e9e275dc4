#!/usr/bin/env bash
# Scale benchmark: `netsleuth analyze` on a synthetic bundle (DESIGN.md target: 5,000 nodes,
# 150,000 pods, 20,000 NetworkPolicies in under 10 s and 4 GiB peak RSS on 2 cores) and
# `k8s-netinspect diagnose --from-snapshot` on the same cluster; prints wall time, peak RSS
# and the ratio. Data goes to $WORK (default /tmp/netsleuth-bench), never into the repo.
#
# Usage: scripts/bench-scale.sh [NODES [PODS [POLICIES]]]
#   env: RUNS of netsleuth (default 3), NI_RUNS of k8s-netinspect (default 1: it takes
#        minutes at full scale), SEED (1), HOSTS (0), WORK, NETINSPECT (its path),
#        PROFILE=1 also times each phase and each rule (examples/profile.rs).
set -euo pipefail

NODES=${1:-5000}
PODS=${2:-150000}
POLICIES=${3:-20000}
RUNS=${RUNS:-3}
NI_RUNS=${NI_RUNS:-1}
SEED=${SEED:-1}
HOSTS=${HOSTS:-0}
WORK=${WORK:-/tmp/netsleuth-bench}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
NETINSPECT=${NETINSPECT:-$(command -v k8s-netinspect || echo "$HOME/.cargo/bin/k8s-netinspect")}

case "$WORK/" in
  "$ROOT"/*) echo "bench-scale: WORK=$WORK is inside the repository; use a folder outside it" >&2; exit 2 ;;
esac
if [ ! -x /usr/bin/time ]; then
  echo "bench-scale: installing GNU time (apt-get install time)" >&2
  apt-get install -y -qq time >/dev/null
fi

echo "== building netsleuth and netsleuth-synth (release)" >&2
(cd "$ROOT" && nice -n 10 cargo build --release -q -p netsleuth -p netsleuth-synth)
SYNTH=$TARGET/release/netsleuth-synth
NETSLEUTH=$TARGET/release/netsleuth

NAME=n$NODES-p$PODS-k$POLICIES-s$SEED-h$HOSTS
BUNDLE=$WORK/$NAME
SNAP=$WORK/$NAME.netinspect.json
mkdir -p "$WORK"
if [ ! -f "$BUNDLE/manifest.json" ] || [ ! -s "$SNAP" ]; then
  echo "== generating $BUNDLE" >&2
  rm -rf -- "$BUNDLE" "$SNAP"
  "$SYNTH" gen --nodes "$NODES" --pods "$PODS" --policies "$POLICIES" --seed "$SEED" --hosts "$HOSTS" \
    -o "$BUNDLE" --netinspect-snapshot "$SNAP"
fi
echo "bundle: $(du -sh "$BUNDLE" | cut -f1)  snapshot: $(du -sh "$SNAP" | cut -f1)" >&2

# Warm the page cache so both tools are measured on CPU and memory, not on the disk.
find "$BUNDLE" -type f -exec cat {} + >/dev/null
cat "$SNAP" >/dev/null

# seconds of GNU time's "Elapsed (wall clock) time" (h:mm:ss or m:ss.ss)
to_seconds() { awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.2f", s }'; }

# measure LABEL OK_CODES COMMAND...: one run; appends "label wall_s rss_mib rc" to $RESULTS
RESULTS=$WORK/results.$$
: >"$RESULTS"
measure() {
  local label=$1 ok=$2
  shift 2
  local log=$WORK/$label.time rc
  set +e
  /usr/bin/time -v -o "$log" "$@" >"$WORK/$label.out" 2>"$WORK/$label.err"
  rc=$?
  set -e
  if ! grep -qw -- "$rc" <<<"$ok"; then
    echo "bench-scale: $label exited $rc; stderr:" >&2
    tail -n 20 "$WORK/$label.err" >&2
    return 1
  fi
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log" | to_seconds)
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$log")
  echo "$label $wall $rss $rc" >>"$RESULTS"
  printf '%-12s wall %7.2f s   peak RSS %6d MiB   exit %d\n' "$label" "$wall" "$rss" "$rc" >&2
}

echo "== netsleuth analyze ($RUNS runs)" >&2
for i in $(seq "$RUNS"); do
  measure netsleuth "0 1" "$NETSLEUTH" analyze "$BUNDLE" --format json -o "$WORK/netsleuth-report.json" --fail-on none
done
have_netinspect=0
if [ -x "$NETINSPECT" ]; then
  have_netinspect=1
  echo "== k8s-netinspect diagnose --from-snapshot ($NI_RUNS runs)" >&2
  for i in $(seq "$NI_RUNS"); do
    measure netinspect "0 7" "$NETINSPECT" diagnose --from-snapshot "$SNAP" --output json
  done
else
  echo "bench-scale: k8s-netinspect not found (set NETINSPECT=...); skipping the comparison" >&2
fi

median() { grep "^$1 " "$RESULTS" | awk -v c="$2" '{print $c}' | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
findings() { python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
f=d.get("findings", d if isinstance(d, list) else [])
print(len(f))' "$1" 2>/dev/null || echo "?"; }

ns_wall=$(median netsleuth 2)
ns_rss=$(median netsleuth 3)
echo
echo "cluster: $NODES nodes, $PODS pods, $POLICIES NetworkPolicies (seed $SEED, $HOSTS host folders)"
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(free -h | awk '/Mem:/ {print $2}') RAM, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'netsleuth   median wall %6.2f s  median peak RSS %6d MiB  findings %s\n' "$ns_wall" "$ns_rss" "$(findings "$WORK/netsleuth-report.json")"
verdict=PASS
awk -v w="$ns_wall" -v r="$ns_rss" 'BEGIN { exit !(w < 10 && r < 4096) }' || verdict=FAIL
echo "target (< 10 s, < 4096 MiB): $verdict"
if [ "$have_netinspect" = 1 ]; then
  ni_wall=$(median netinspect 2)
  ni_rss=$(median netinspect 3)
  printf 'netinspect  median wall %6.2f s  median peak RSS %6d MiB  findings %s\n' "$ni_wall" "$ni_rss" "$(findings "$WORK/netinspect.out")"
  awk -v a="$ni_wall" -v b="$ns_wall" -v c="$ni_rss" -v d="$ns_rss" \
    'BEGIN { printf "ratio netinspect/netsleuth: wall %.2fx, peak RSS %.2fx\n", (b > 0 ? a / b : 0), (d > 0 ? c / d : 0) }'
fi
if [ "${PROFILE:-0}" = 1 ]; then
  echo "== per-phase profile (examples/profile.rs)" >&2
  (cd "$ROOT" && cargo run --release -q -p netsleuth-synth --example profile -- "$BUNDLE" 15)
fi
rm -f "$RESULTS"
[ "$verdict" = PASS ]
