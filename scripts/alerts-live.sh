#!/usr/bin/env bash
# The alert rules against a real Prometheus scraping a real node (about 60 s):
# a hearth node (SQLite, its own Redis on :6391), a load balancer's polling
# of /readyz, and Prometheus on :9391 (scrape and evaluation every second)
# with deploy/prometheus/alerts.yml, its windows and `for:` durations shrunk
# from minutes to seconds. Then:
#   Redis stopped   → /readyz 503 and API requests 503 → HearthNodeNotReady and
#                     HearthHighErrorRate fire (and nothing fires before)
#   node stopped    → HearthNodeDown fires
# Everything it starts it stops (its own processes only). Run by
# scripts/test.sh deploy.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

T="${HEARTH_ALERTS_DIR:-/var/tmp/hearth-alerts-live}"
NODE_PORT=8281
REDIS_PORT=6391
PROM_PORT=9391
PROM="http://127.0.0.1:$PROM_PORT"
NODE="http://127.0.0.1:$NODE_PORT"
t0=$SECONDS

command -v prometheus >/dev/null || apt_install prometheus
command -v redis-server >/dev/null || apt_install redis-server
command -v jq >/dev/null || apt_install jq

pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
rm -rf "$T"
mkdir -p "$T/node" "$T/prom"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $NODE_PORT $REDIS_PORT $PROM_PORT; do port_free "$p" || die "port $p is in use"; done

bin="${HEARTH_BIN:-}"
if [ -z "$bin" ]; then
  bin="$CARGO_TARGET_DIR/debug/hearth"
  cargo build --quiet --bin hearth || [ -x "$bin" ] || die "no hearth binary"
fi
cp -f "$bin" "$T/hearth"

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$T" \
  --logfile "$T/redis.log" &
redis_pid=$!
pids+=("$redis_pid")

(
  cd "$T/node"
  unset DATABASE_URL NATS_URL REDIS_URL HEARTH_DATABASE_URL HEARTH_NATS_URL
  exec env HEARTH_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" HEARTH_NATS_SUBJECT_ROOT=alertslive \
    HEARTH_JWT_SECRET=alerts-live-test-secret-0123456789abcdef \
    "$T/hearth" serve --listen "127.0.0.1:$NODE_PORT" --data-dir "$T/node/data" >"$T/node.log" 2>&1
) &
node_pid=$!
pids+=("$node_pid")

# The rules as shipped, with time shrunk: windows and `for:` in seconds.
sed -E -e 's/\[15m\]/[30s]/g; s/\[5m\]/[15s]/g; s/\[2m\]/[10s]/g' \
  -e 's/^( *)for: [0-9]+m$/\1for: 3s/' deploy/prometheus/alerts.yml >"$T/prom/alerts.yml"
cat >"$T/prom/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [alerts.yml]
scrape_configs:
  - job_name: hearth
    static_configs:
      - targets: ["127.0.0.1:$NODE_PORT"]
EOF
promtool check config "$T/prom/prometheus.yml" >/dev/null
prometheus --config.file="$T/prom/prometheus.yml" --storage.tsdb.path="$T/prom/data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$T/prometheus.log" 2>&1 &
pids+=($!)

wait_until() { # wait_until SECONDS WHAT COMMAND...
  local secs="$1" what="$2"
  shift 2
  local end=$((SECONDS + secs))
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || die "$what: not after ${secs}s (logs in $T)"
    sleep 0.5
  done
}
code() { curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" || true; }
node_ready() { [ "$(code "$NODE/readyz")" = 200 ]; }
prom_ready() { [ "$(code "$PROM/-/ready")" = 200 ]; }
scraped() { curl -s "$PROM/api/v1/query?query=up%7Bjob%3D%22hearth%22%7D" | jq -e '.data.result[0].value[1] == "1"' >/dev/null; }
firing() { # firing ALERT → the alert is firing
  curl -s "$PROM/api/v1/alerts" | jq -e --arg a "$1" '[.data.alerts[] | select(.labels.alertname == $a and .state == "firing")] | length > 0' >/dev/null
}
firing_names() { curl -s "$PROM/api/v1/alerts" | jq -r '[.data.alerts[] | select(.state == "firing") | .labels.alertname] | unique | join(",")'; }

wait_until 60 "node ready" node_ready
wait_until 30 "Prometheus ready" prom_ready
wait_until 30 "Prometheus scraping the node" scraped

# Traffic: a load balancer's readiness polls and a user reading and sending
# (a send needs Redis on a cluster node: cross-node ordering).
B="$NODE/api/v1"
token="$(curl -sf "$B/auth/register" -H 'content-type: application/json' \
  -d '{"username":"alerts","password":"correct horse battery"}' | jq -r .access_token)"
auth=(-H "authorization: Bearer $token" -H 'content-type: application/json')
community="$(curl -sf "$B/communities" "${auth[@]}" -d '{"name":"Alerts"}' | jq -r .id)"
channel="$(curl -sf "$B/communities/$community/channels" "${auth[@]}" | jq -r '.[0].id')"
(
  i=0
  while :; do
    i=$((i + 1))
    curl -s -o /dev/null -m 2 "$NODE/readyz" || true
    curl -s -o /dev/null -m 2 "${auth[@]}" "$B/users/@me" || true
    curl -s -o /dev/null -m 2 "${auth[@]}" -d "{\"content\":\"message $i\"}" "$B/channels/$channel/messages" || true
    sleep 0.2
  done
) &
pids+=($!)

say "alerts live: healthy node, 15 s: nothing may fire"
sleep 15
[ -z "$(firing_names)" ] || die "alerts firing on a healthy node: $(firing_names)"

say "alerts live: Redis stopped"
kill "$redis_pid"
wait "$redis_pid" 2>/dev/null || true
node_unready() { [ "$(code "$NODE/readyz")" = 503 ]; }
wait_until 30 "/readyz answering 503" node_unready
wait_until 45 "HearthNodeNotReady firing" firing HearthNodeNotReady
wait_until 45 "HearthHighErrorRate firing" firing HearthHighErrorRate
say "alerts live: firing: $(firing_names)"

say "alerts live: node stopped"
kill "$node_pid"
wait "$node_pid" 2>/dev/null || true
wait_until 30 "HearthNodeDown firing" firing HearthNodeDown
say "alerts live: firing: $(firing_names)"
say "alerts live passed in $((SECONDS - t0))s"
