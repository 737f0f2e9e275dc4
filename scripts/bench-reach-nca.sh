#!/usr/bin/env bash
# Side-by-side benchmark of `netsleuth reach` and IBM's network-config-analyzer (NCA).
#
# For each size in SIZES (pods; nodes = pods/30, NetworkPolicies = pods*2/15, the 150k-pod
# scale ratio) it writes a synthetic bundle, runs NCA's connectivity map on its pods,
# namespaces and NetworkPolicies files (`timeout $LIMIT`, default 600 s), and stops at the
# first size NCA does not finish. On the largest size NCA finished, netsleuth computes the
# full all-pods x all-pods matrix on one port (a superset of a 1,000 x 1,000 matrix) from
# the same files, RUNS times; the script prints both times and the ratio. Last, netsleuth
# alone computes a >= 1,000 x 1,000 matrix on the 150,000-pod bundle (BIG_PODS).
# Data goes to $WORK (default /tmp/netsleuth-reach-bench), never into the repository.
#
# Usage: scripts/bench-reach-nca.sh
#   env: SIZES ("300 1000 3000 10000 30000"), LIMIT (600), RUNS (3), PORT (8080),
#        BIG_PODS (150000; 0 skips), NCA (nca), WORK, SEED (1)
set -euo pipefail

SIZES=${SIZES:-"300 1000 3000 10000 30000"}
LIMIT=${LIMIT:-600}
RUNS=${RUNS:-3}
PORT=${PORT:-8080}
BIG_PODS=${BIG_PODS:-150000}
NCA=${NCA:-nca}
SEED=${SEED:-1}
WORK=${WORK:-/tmp/netsleuth-reach-bench}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

case "$WORK/" in
  "$ROOT"/*) echo "bench-reach-nca: WORK=$WORK is inside the repository; use a folder outside it" >&2; exit 2 ;;
esac
command -v "$NCA" >/dev/null || { echo "bench-reach-nca: $NCA not found (pip install network-config-analyzer)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench-reach-nca: needs GNU time (apt-get install time)" >&2; exit 2; }

echo "== building netsleuth and netsleuth-synth (release)" >&2
(cd "$ROOT" && nice -n 10 cargo build --release -q -p netsleuth -p netsleuth-synth)
SYNTH=$TARGET/release/netsleuth-synth
NETSLEUTH=$TARGET/release/netsleuth
mkdir -p "$WORK"

to_seconds() { awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.2f", s }'; }

# run LOG COMMAND...: runs under GNU time; sets WALL, CPU (user + system s), RSS (MiB), RC.
run() {
  local log=$1
  shift
  set +e
  /usr/bin/time -v -o "$log.time" "$@" >"$log.out" 2>"$log.err"
  RC=$?
  set -e
  WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log.time" | to_seconds)
  RSS=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$log.time")
  CPU=$(awk -F': ' '/(User|System) time \(seconds\)/ {s += $2} END {printf "%.2f", s}' "$log.time")
}

bundle() { # bundle PODS: generates (once) and prints the bundle folder
  local pods=$1 dir=$WORK/p$1-s$SEED
  if [ ! -f "$dir/manifest.json" ]; then
    rm -rf -- "$dir"
    "$SYNTH" gen --nodes $((pods / 30 > 0 ? pods / 30 : 1)) --pods "$pods" --policies $((pods * 2 / 15)) \
      --seed "$SEED" --compact -o "$dir" >&2
  fi
  find "$dir" -type f -exec cat {} + >/dev/null # warm the page cache
  echo "$dir"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

best=""
best_nca=""
best_nca_rss=""
for pods in $SIZES; do
  dir=$(bundle "$pods")
  k=$dir/kubernetes
  echo "== NCA connectivity map, $pods pods (limit ${LIMIT}s)" >&2
  run "$WORK/nca-$pods" timeout "$LIMIT" "$NCA" --connectivity "$k/networkpolicies.json" \
    --pod_list "$k/pods.json" --ns_list "$k/namespaces.json" --output_format txt_no_fw_rules
  if [ "$RC" != 0 ]; then
    echo "   NCA did not finish (exit $RC after ${WALL}s): $(tail -n 1 "$WORK/nca-$pods.err")" >&2
    break
  fi
  printf '   NCA: %.2f s wall, %.2f s CPU, peak RSS %d MiB, %d output lines\n' "$WALL" "$CPU" "$RSS" \
    "$(wc -l <"$WORK/nca-$pods.out")" >&2
  best=$pods best_nca=$WALL best_nca_rss=$RSS best_nca_cpu=$CPU
done
[ -n "$best" ] || { echo "bench-reach-nca: NCA finished no size" >&2; exit 1; }

dir=$WORK/p$best-s$SEED
echo "== netsleuth reach, all x all pods, TCP $PORT, $best pods ($RUNS runs)" >&2
walls="" cpus=""
for i in $(seq "$RUNS"); do
  run "$WORK/netsleuth-$best" "$NETSLEUTH" reach "$dir" --from all --to all --port "$PORT" --by namespace --format json
  [ "$RC" = 0 ] || { cat "$WORK/netsleuth-$best.err" >&2; exit 1; }
  walls="$walls $WALL" cpus="$cpus $CPU"
  ns_rss=$RSS
done
ns_wall=$(tr ' ' '\n' <<<"$walls" | grep . | median)
ns_cpu=$(tr ' ' '\n' <<<"$cpus" | grep . | median)
pairs=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(map(sum, d["pairs"])))' "$WORK/netsleuth-$best.out")

echo
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$("$NCA" --version 2>&1 | grep -m1 -i version); largest synthetic input finished within ${LIMIT}s: $best pods"
printf 'NCA connectivity map (all pairs, all ports):    wall %8.2f s  CPU %8.2f s  peak RSS %6d MiB\n' \
  "$best_nca" "$best_nca_cpu" "$best_nca_rss"
printf 'netsleuth reach all x all (%s pairs), one port: wall %8.2f s  CPU %8.2f s  peak RSS %6d MiB (median of %d)\n' \
  "$pairs" "$ns_wall" "$ns_cpu" "$ns_rss" "$RUNS"
awk -v a="$best_nca" -v b="$ns_wall" -v c="$best_nca_cpu" -v d="$ns_cpu" 'BEGIN {
  printf "ratio NCA / netsleuth: wall %.0fx, CPU %.0fx (target >= 100x): %s\n", a / b, c / d, (a / b >= 100 ? "PASS" : "FAIL") }'

if [ "$BIG_PODS" -gt 0 ]; then
  big=$(bundle "$BIG_PODS")
  # Four application namespaces (~300 pods each) as sources, the next four as targets.
  mapfile -t nss < <(python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
names=[i["metadata"]["name"] for i in d["items"]]
system={"default","kube-system","kube-public","kube-node-lease","monitoring"}
print("\n".join([n for n in names if n not in system][:8]))' "$big/kubernetes/namespaces.json")
  from=() to=()
  for n in "${nss[@]:0:4}"; do from+=(--from "ns:$n"); done
  for n in "${nss[@]:4:4}"; do to+=(--to "ns:$n"); done
  echo "== netsleuth reach on $BIG_PODS pods: ${nss[*]:0:4} -> ${nss[*]:4:4}, TCP $PORT" >&2
  run "$WORK/netsleuth-big" "$NETSLEUTH" reach "$big" "${from[@]}" "${to[@]}" --port "$PORT" --format json
  [ "$RC" = 0 ] || { cat "$WORK/netsleuth-big.err" >&2; exit 1; }
  dims=$(python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
print("%d x %d (%d allowed)" % (len(d["sources"]), len(d["targets"]), d["summary"]["allowed"]))' "$WORK/netsleuth-big.out")
  printf 'netsleuth reach %s on %s pods (read + matrix + JSON): wall %.2f s  CPU %.2f s  peak RSS %d MiB\n' \
    "$dims" "$BIG_PODS" "$WALL" "$CPU" "$RSS"
  echo "(matrix alone: cargo bench -p netsleuth-trace --bench reach)"
fi
