#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for SECONDS each (default 120), one after another
# at low priority, seeded from fuzz/seeds/<target>/ plus the matching files under
# tests/fixtures/. Crashes are grouped by panic message, one per group is minimised
# (libFuzzer -minimize_crash), and all are listed at the end.
#
# Usage: scripts/fuzz-all.sh [SECONDS] [TARGET...]
#   env: FUZZ_ARGS  extra libFuzzer flags (e.g. "-dict=...")
# Needs cargo-fuzz (`cargo install cargo-fuzz`); runs on stable through RUSTC_BOOTSTRAP=1.
# Built without a sanitizer (-s none: the code under test is safe Rust) and with debug
# assertions (-a), so integer overflow panics like it does in tests.
set -euo pipefail

SECS=${1:-120}
shift || true
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FUZZ=$ROOT/fuzz
FIXTURES=$ROOT/tests/fixtures
LOGS=$FUZZ/logs
export RUSTC_BOOTSTRAP=1
mkdir -p "$LOGS"

if [ $# -gt 0 ]; then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(awk '/^\[\[bin\]\]/ {b = 1; next} b && /^name = / {gsub(/"/, "", $3); print $3; b = 0}' "$FUZZ/Cargo.toml")
fi

# find(1) name patterns of the fixtures that are inputs of each target
fixture_patterns() {
  case $1 in
    ip_link) echo 'ip-link*.json' ;;
    ip_addr) echo 'ip-addr*.json' ;;
    ip_route) echo 'ip-route*.json' ;;
    ip_rule) echo 'ip-rule*.json' ;;
    sysctl) echo 'sysctl*.txt' ;;
    resolv) echo 'resolv*.conf' ;;
    conntrack_stats) echo 'conntrack-stats*.txt' ;;
    conntrack_count) echo 'conntrack-count*.txt' ;;
    cni) echo '*.conflist' ;;
    wg_dump) echo 'wg-dump*.txt' ;;
    wg_config) echo 'wg*.conf' ;;
    nft) echo 'nft*.json' ;;
    iptables) echo 'ip*tables*save*.txt' ;;
    swanctl_conf) echo 'swanctl*.conf' ;;
    swanctl_sas) echo '*list-sas*.txt' ;;
    kubernetes_json | analyze_kubernetes) echo 'k8s*.json kubernetes*.json pods*.json *policies*.json services*.json' ;;
    kubernetes_yaml) echo '*.yaml *.yml' ;;
    aws) echo 'describe-*.json' ;;
    bundle) echo 'manifest.json host.json' ;;
  esac
}

# The byte the iptables and aws targets read first to choose the family / describe kind.
prefix_byte() {
  local target=$1 file=$2
  case $target in
    iptables) case $(basename "$file") in ip6*) echo 1 ;; *) echo 0 ;; esac ;;
    aws)
      local kinds=(route-tables security-groups network-acls vpn-connections subnets vpcs instances transit-gateway-route-tables)
      local name i
      name=$(basename "$file" .json)
      name=${name#describe-}
      for i in "${!kinds[@]}"; do [ "${kinds[$i]}" = "$name" ] && echo "$i" && return; done
      echo 8 ;;
  esac
}

seed_corpus() {
  local target=$1 corpus=$FUZZ/corpus/$1 pat f dest p
  mkdir -p "$corpus"
  [ -d "$FIXTURES" ] || return 0
  for pat in $(fixture_patterns "$target"); do
    while IFS= read -r -d '' f; do
      # Seeds over 256 KiB slow libFuzzer down more than they help.
      [ "$(stat -c %s "$f")" -le 262144 ] || continue
      dest=$corpus/fixture-$(sha1sum "$f" | cut -c1-16)
      p=$(prefix_byte "$target" "$f")
      if [ -n "$p" ]; then
        { printf "\\x$(printf %02x "$p")"; cat "$f"; } >"$dest"
      else
        cp "$f" "$dest"
      fi
    done < <(find "$FIXTURES" -type f -name "$pat" -print0)
  done
}

# Fuzz the dependency versions the product ships: start from the workspace's lock file
# (cargo adds libFuzzer's own packages to it).
cp "$ROOT/Cargo.lock" "$FUZZ/Cargo.lock"
echo "== building all fuzz targets (debug assertions on)" >&2
(cd "$FUZZ" && CARGO_BUILD_JOBS=1 nice -n 19 cargo fuzz build -a -s none 2>&1 | tail -n 3)

# The binaries are run directly after one build: `cargo fuzz run` would rebuild whenever a
# crate changed in between (this tree is edited by several people at once), so targets
# would fuzz different code and the time would go to compiling.
BIN=$FUZZ/target/$(rustc -vV | sed -n 's/^host: //p')/release

# The panic message of one input, digits masked, as the key that groups crashes.
panic_key() {
  (cd "$FUZZ" && timeout 60 "$BIN/$1" "$2" 2>&1) |
    { grep -A1 -m1 'panicked at' || true; } | tail -n 1 | sed 's/[0-9]\+/N/g' | cut -c1-160
}

SUMMARY=$LOGS/summary.txt
printf '%-20s %12s %8s %7s %s\n' target executions corpus crashes result >"$SUMMARY"
for t in "${TARGETS[@]}"; do
  seed_corpus "$t"
  mkdir -p "$FUZZ/seeds/$t" "$FUZZ/artifacts/$t"
  log=$LOGS/$t.log
  stamp=$LOGS/.$t.start
  touch "$stamp"
  echo "== $t for ${SECS}s" >&2
  # Fork mode with -ignore_crashes: one crash does not end the run, every distinct input
  # that fails lands in artifacts/<target>/.
  set +e
  # shellcheck disable=SC2086
  (cd "$FUZZ" && nice -n 19 "$BIN/$t" -artifact_prefix="artifacts/$t/" "corpus/$t" "seeds/$t" \
    -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -max_total_time="$SECS" -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 ${FUZZ_ARGS:-}) >"$log" 2>&1
  set -e
  last=$(grep -E '^#[0-9]+:' "$log" | tail -n 1 || true)
  execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
  size=$(find "$FUZZ/corpus/$t" -type f | wc -l)
  mapfile -t crashes < <(find "$FUZZ/artifacts/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \) -newer "$stamp")
  result=ok
  if [ "${#crashes[@]}" -gt 0 ]; then
    result=""
    declare -A seen=()
    for a in "${crashes[@]}"; do
      key=$(panic_key "$t" "$a" || true)
      [ -n "$key" ] || key="(no panic message: $(basename "$a"))"
      [ -n "${seen[$key]:-}" ] && continue
      seen[$key]=1
      min=$FUZZ/artifacts/$t/minimized-from-$(basename "$a")
      (cd "$FUZZ" && timeout 300 nice -n 19 "$BIN/$t" -minimize_crash=1 -max_total_time=120 -runs=20000 \
        -exact_artifact_path="$min" "$a") >"$LOGS/$t.tmin.log" 2>&1 || true
      [ -s "$min" ] || min=$a
      result="$result [$key] ${min#"$FUZZ"/}"
    done
    unset seen
  fi
  printf '%-20s %12s %8s %7s %s\n' "$t" "${execs:-?}" "$size" "${#crashes[@]}" "$result" | tee -a "$SUMMARY" >&2
  rm -f "$stamp"
done
echo
cat "$SUMMARY"
! grep -q '\[' "$SUMMARY"
