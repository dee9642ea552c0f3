#!/usr/bin/env bash
# Upload throughput and server RSS: N clients upload SIZE_MIB each at once to a
# fresh hearth (SQLite, disk blobs in a temp dir), RSS sampled every 100 ms.
# Streaming means RSS should not grow with SIZE_MIB.
#
#   scripts/bench-uploads.sh [hearth binary] [clients=20] [size_mib=100]
set -euo pipefail
BIN="${1:-target/release/hearth}"
N="${2:-20}"
SIZE="${3:-100}"
PORT="${HEARTH_BENCH_PORT:-18431}"
WORK="$(mktemp -d /var/tmp/hearth-bench-uploads.XXXXXX)"
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
head -c "$((SIZE * 1024 * 1024))" /dev/urandom >"$WORK/file.bin"
HEARTH_MEDIA_MAX_UPLOAD_BYTES=$(((SIZE + 1) * 1024 * 1024)) HEARTH_RATE_LIMIT_ENABLED=false \
HEARTH_LOG_LEVEL=warn "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" >"$WORK/server.log" 2>&1 &
PID=$!
B="http://127.0.0.1:$PORT/api/v1"
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -sf -H 'content-type: application/json' -d '{"username":"bench","password":"benchbench1"}' "$B/auth/register" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
CID=$(curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"name":"bench"}' "$B/communities" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
CH=$(curl -sf -H "authorization: Bearer $TOKEN" "$B/communities/$CID/channels" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
rss() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
IDLE=$(rss)
(while kill -0 "$PID" 2>/dev/null; do rss; sleep 0.1; done) >"$WORK/rss" &
SAMPLER=$!
START=$(date +%s.%N)
PIDS=()
for i in $(seq 1 "$N"); do
  curl -s -o "$WORK/out.$i" -w '%{http_code}\n' -H "authorization: Bearer $TOKEN" \
    -F "file=@$WORK/file.bin;type=application/octet-stream" "$B/channels/$CH/attachments" >"$WORK/code.$i" &
  PIDS+=($!)
done
wait "${PIDS[@]}" || true
END=$(date +%s.%N)
kill "$SAMPLER" 2>/dev/null || true
OK=$(cat "$WORK"/code.* | grep -c '^201$' || true)
PEAK=$(sort -n "$WORK/rss" | tail -1)
python3 - "$N" "$SIZE" "$START" "$END" "$OK" "$IDLE" "$PEAK" <<'PY'
import sys
n, size, start, end, ok, idle, peak = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
secs = end - start
print(f"{ok}/{n} uploads of {size} MiB in {secs:.1f} s: {n*size/secs:.0f} MiB/s; server RSS idle {idle/1024:.0f} MiB, peak {peak/1024:.0f} MiB")
PY
