#!/usr/bin/env bash
# A rolling restart under load, on a throwaway cluster (scripts/cluster.sh
# with ports +200: nginx 8290, nodes 8281-8283, NATS 4431-4433; its own state
# dir, database and subject root). hearth-loadgen's gw-rolling scenario
# connects ROLLING_CLIENTS gateway clients (distinct accounts) through nginx,
# spread over ROLLING_CHANNELS communities (one channel each; default 1), and
# sends ROLLING_RATE messages a second through it (spread the same way), while
# `scripts/cluster.sh restart` restarts every node in turn. It fails on any
# message lost, repeated or out of order, any client that had to identify
# again, or any send never acknowledged; it prints the resume times and the
# send latency. Run by scripts/test.sh deploy at a small size; the figures in
# docs/benchmarks.md come from a release build:
#
#   HEARTH_BIN=/var/tmp/hearth-target/release/hearth \
#   LOADGEN_BIN=/var/tmp/hearth-target/release/hearth-loadgen \
#   ROLLING_RATE=500 ROLLING_CLIENTS=300 ROLLING_CHANNELS=30 ROLLING_JSON=docs/bench/rolling.json \
#   scripts/rolling-restart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

export HEARTH_CLUSTER_DIR="${ROLLING_DIR:-/var/tmp/hearth-cluster-rolling}"
export HEARTH_CLUSTER_PORT_OFFSET=200
export HEARTH_CLUSTER_DB=hearthrolling
export HEARTH_CLUSTER_ROOT=hearthrolling
# The load comes from one machine and one sender: per-user and per-address
# limits would refuse it. Cheap password hashing keeps the setup short.
export HEARTH_RATE_LIMIT_ENABLED=false
export HEARTH_PASSWORD_HASH_MEMORY_KIB=1024
export HEARTH_PASSWORD_HASH_ITERATIONS=1
export HEARTH_LOG_LEVEL="${HEARTH_LOG_LEVEL:-info}"
RATE="${ROLLING_RATE:-100}"
CLIENTS="${ROLLING_CLIENTS:-100}"
CHANNELS="${ROLLING_CHANNELS:-1}"
SECS="${ROLLING_SECS:-45}"
LB=http://127.0.0.1:8290
S="$HEARTH_CLUSTER_DIR"
t0=$SECONDS

if [ -z "${LOADGEN_BIN:-}" ]; then
  cargo build --quiet --bin hearth-loadgen
  LOADGEN_BIN="$CARGO_TARGET_DIR/debug/hearth-loadgen"
fi
ulimit -n 20000 2>/dev/null || true

cleanup() { scripts/cluster.sh down --purge >/dev/null 2>&1 || true; }
on_exit() {
  local rc=$?
  [ -n "${LG_PID:-}" ] && kill "$LG_PID" 2>/dev/null || true
  if [ "$rc" = 0 ]; then cleanup; else
    scripts/cluster.sh down >/dev/null 2>&1 || true
    say "rolling restart failed: logs in $S (loadgen: $S.loadgen.log)"
  fi
}
trap on_exit EXIT
cleanup

say "rolling restart: cluster up"
scripts/cluster.sh up

say "rolling restart: $CLIENTS clients in $CHANNELS communities, $RATE msg/s for ${SECS}s through nginx"
json_args=()
[ -n "${ROLLING_JSON:-}" ] && json_args=(--json "$ROLLING_JSON")
"$LOADGEN_BIN" --external "$LB" --scenario gw-rolling --connections "$CLIENTS" \
  --channels "$CHANNELS" --rate "$RATE" --duration "$SECS" "${json_args[@]}" >"$S.loadgen.log" 2>&1 &
LG_PID=$!
for _ in $(seq 1 1200); do
  grep -q "sending" "$S.loadgen.log" 2>/dev/null && break
  kill -0 "$LG_PID" 2>/dev/null || { cat "$S.loadgen.log" >&2; die "the load generator stopped before sending"; }
  sleep 0.1
done
grep -q "sending" "$S.loadgen.log" || die "the load generator did not start sending in 120 s"
sleep 3

say "rolling restart: restarting every node in turn under load"
scripts/cluster.sh restart
kill -0 "$LG_PID" 2>/dev/null || die "the load ended before the restarts did (raise ROLLING_SECS)"

rc=0
wait "$LG_PID" || rc=$?
LG_PID=""
cat "$S.loadgen.log"
[ "$rc" = 0 ] || die "the load generator failed (exit $rc): see above"
say "rolling restart passed in $((SECONDS - t0))s: nothing lost, repeated or out of order; no client identified again"
