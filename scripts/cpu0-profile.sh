#!/usr/bin/env bash
# A flat profile of CPU 0 under a pinned load-generator scenario: whatever
# runs there (the hearth server, or gw-floor's bare writer), kernel included,
# sampled by perf without call graphs (cheap enough not to move the figures
# much, unlike scripts/flamegraph.sh's DWARF stacks).
#
#   scripts/cpu0-profile.sh OUT.txt WARM SECS -- LOADGEN-ARGS... (with --pin)
#   scripts/cpu0-profile.sh docs/profiles/gw-floor-20.txt 20 4 -- \
#     --scenario gw-floor --connections 10000 --steps 20 --step-secs 15 --pin
#
# WARM counts from the load generator's start (setting up 10,000
# connections takes 10–15 s of it). OUT.txt gets who ran on CPU 0
# (process and binary) and the symbols over 0.3 %. Needs perf (Debian:
# linux-perf).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hearth-target}"

OUT="${1:?OUT.txt}"
WARM="${2:?WARM seconds}"
SECS="${3:?SECS}"
shift 3
[ "${1:-}" = "--" ] || { echo "usage: $0 OUT.txt WARM SECS -- LOADGEN-ARGS..." >&2; exit 2; }
shift
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 2; }
L="${LOADGEN:-$CARGO_TARGET_DIR/release/hearth-loadgen}"
[ -x "$L" ] || { echo "no load generator at $L (cargo build --release -p hearth-loadgen)" >&2; exit 2; }

ulimit -n 20000
mkdir -p "$(dirname "$OUT")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$L" "$@" > "$tmp/loadgen.log" 2>&1 &
lg=$!
sleep "$WARM"
perf record -q -a -C 0 -F 999 -o "$tmp/perf.data" -- sleep "$SECS" 2>/dev/null
wait "$lg" || true
tail -n 20 "$tmp/loadgen.log"

{
  echo "# scripts/cpu0-profile.sh $OUT $WARM $SECS -- $*"
  echo "# $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(date -u +%Y-%m-%d)"
  echo "## who ran on CPU 0"
  perf report -i "$tmp/perf.data" --sort comm,dso --percent-limit 0.3 --stdio 2>/dev/null | grep -E '^ +[0-9]' || true
  echo "## symbols"
  perf report -i "$tmp/perf.data" --sort comm,sym --percent-limit 0.3 --stdio 2>/dev/null | grep -E '^ +[0-9]' || true
} > "$OUT"
echo "wrote $OUT"
