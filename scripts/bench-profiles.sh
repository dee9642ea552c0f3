#!/usr/bin/env bash
# Two hearth builds side by side (issue 14: the release profile before and after
# tuning): message sends (64 senders, SQLite) and gateway fan-out (2,000
# connections over 200 accounts in one channel, 50 msg/s), the same load generator for both,
# runs alternating A, B, A, B... so drift on this noisy machine falls on both.
#
#   scripts/bench-profiles.sh BIN_A BIN_B [RUNS=3] [LOADGEN]
#
# Prints each run and, per binary and scenario, the median with min-max of
# throughput and p99; JSON per run in $OUT (default /tmp/hearth-profiles).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

A="${1:?binary A}"
B="${2:?binary B}"
RUNS="${3:-3}"
L="${4:-$CARGO_TARGET_DIR/release/hearth-loadgen}"
OUT="${OUT:-/tmp/hearth-profiles}"
mkdir -p "$OUT"
ulimit -n 20000

run() { # run NAME BIN SCENARIO RUN
  local name="$1" bin="$2" scenario="$3" i="$4" args=()
  case "$scenario" in
    sends) args=(--scenario sends --duration 15 --pin) ;;
    # gw-rising at one step: 2,000 connections over 200 accounts in one channel (the
    # shape gw-fanout now has too; the recorded pair was run this way).
    fanout) args=(--scenario gw-rising --connections 2000 --users 200 --steps 50 --step-secs 15 --pin) ;;
  esac
  "$L" --server-bin "$bin" "${args[@]}" --json "$OUT/$name-$scenario-$i.json" >"$OUT/$name-$scenario-$i.log" 2>&1 ||
    die "$name $scenario run $i failed: $(tail -n 5 "$OUT/$name-$scenario-$i.log")"
  python3 - "$OUT/$name-$scenario-$i.json" "$name" "$scenario" "$i" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))[0]
print(f"{sys.argv[2]:>4} {sys.argv[3]:<6} run {sys.argv[4]}: {r['per_second']:,.0f}/s p50 {r['latency_ms']['p50']:.1f} ms p99 {r['latency_ms']['p99']:.1f} ms errors {r['errors']} RSS {r['server_rss_kib']/1024:.0f} MiB")
EOF
}

for i in $(seq 1 "$RUNS"); do
  for scenario in sends fanout; do
    run A "$A" "$scenario" "$i"
    run B "$B" "$scenario" "$i"
  done
done

python3 - "$OUT" "$RUNS" <<'EOF'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
for scenario in ("sends", "fanout"):
    for name in ("A", "B"):
        rs = [json.load(open(f"{out}/{name}-{scenario}-{i}.json"))[0] for i in range(1, runs + 1)]
        t = [r["per_second"] for r in rs]
        p = [r["latency_ms"]["p99"] for r in rs]
        print(f"{scenario:<6} {name}: {statistics.median(t):,.0f}/s ({min(t):,.0f}-{max(t):,.0f}), "
              f"p99 {statistics.median(p):.1f} ms ({min(p):.1f}-{max(p):.1f})")
EOF
