#!/usr/bin/env bash
# Runs `netsleuth reach` and IBM's network-config-analyzer (NCA) on every case of
# tests/nca-corpus and fails on any disagreement not explained in the allow-list
# (tests/nca-corpus/allow-list.tsv, reasons in docs/nca-agreement.md).
#
# Usage: scripts/nca-agree.sh [nca-agree.py options: --case GLOB, --verbose]
#   env: NETSLEUTH (a netsleuth binary; default: builds target/debug/netsleuth),
#        NCA (default: nca on PATH; `pip install network-config-analyzer==2.1.0`).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${NCA:-}" ]; then
  if command -v nca >/dev/null 2>&1; then NCA=nca
  elif python3 -c 'import nca' 2>/dev/null; then NCA="python3 -m nca"
  else NCA=nca
  fi
fi
if [ "$NCA" != "python3 -m nca" ] && ! command -v "$NCA" >/dev/null 2>&1; then
  echo "nca-agree: $NCA not found; pip install network-config-analyzer==2.1.0" >&2
  exit 2
fi
if [ -z "${NETSLEUTH:-}" ]; then
  (cd "$ROOT" && cargo build -q -p netsleuth)
  NETSLEUTH=${CARGO_TARGET_DIR:-$ROOT/target}/debug/netsleuth
fi
exec python3 "$ROOT/scripts/nca-agree.py" --netsleuth "$NETSLEUTH" --nca "$NCA" "$@"
