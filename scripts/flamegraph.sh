#!/usr/bin/env bash
# A flame graph of a hearth server under one load-generator scenario (issue 15,
# "find where the time goes"): the load generator starts the server (on CPU 0
# with --pin); after WARM seconds perf samples that server for SECS seconds
# with DWARF call graphs (release builds keep no frame pointers), and inferno
# folds the stacks and draws them.
#
#   scripts/flamegraph.sh OUT.svg [WARM] [SECS] -- LOADGEN-ARGS...
#   scripts/flamegraph.sh docs/profiles/gw-fanout.svg 12 6 -- \
#     --scenario gw-fanout --connections 2000 --rate 50 --duration 15 --pin
#
# Writes OUT.svg and OUT.txt (perf's flat profile: the functions over 0.5 %). Needs perf (Debian: linux-perf) and
# inferno (cargo install inferno; installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hearth-target}"

OUT="${1:?OUT.svg}"
shift
WARM=10
SECS=6
if [ "${1:-}" != "--" ]; then WARM="$1"; shift; fi
if [ "${1:-}" != "--" ]; then SECS="$1"; shift; fi
[ "${1:-}" = "--" ] || { echo "usage: $0 OUT.svg [WARM] [SECS] -- LOADGEN-ARGS..." >&2; exit 2; }
shift

command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 2; }
if ! command -v inferno-flamegraph >/dev/null; then
  cargo install --quiet --locked inferno
fi
L="${LOADGEN:-$CARGO_TARGET_DIR/release/hearth-loadgen}"
[ -x "$L" ] || { echo "no load generator at $L (cargo build --release -p hearth-loadgen)" >&2; exit 2; }

ulimit -n 20000
base="${OUT%.svg}"
mkdir -p "$(dirname "$OUT")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$L" "$@" > "$tmp/loadgen.log" 2>&1 &
lg=$!
sleep "$WARM"
# The server is the load generator's child (taskset execs it under --pin).
pid="$(pgrep -P "$lg" -f hearth | head -n 1 || true)"
if [ -z "$pid" ]; then
  echo "no hearth server under the load generator ($lg)" >&2
  cat "$tmp/loadgen.log" >&2
  kill "$lg" 2>/dev/null || true
  exit 1
fi
perf record -q -F 499 --call-graph dwarf,32768 -p "$pid" -o "$tmp/perf.data" -- sleep "$SECS" 2>/dev/null
wait "$lg" || true
tail -n 20 "$tmp/loadgen.log"

perf script -i "$tmp/perf.data" 2>/dev/null | inferno-collapse-perf > "$tmp/folded"
inferno-flamegraph --title "hearth: $*" --width 1600 < "$tmp/folded" > "$OUT"
perf report -i "$tmp/perf.data" --no-children --percent-limit 0.5 --stdio 2>/dev/null |
  grep -E '^ +[0-9]' > "$base.txt" || true
echo "wrote $OUT and $base.txt"
