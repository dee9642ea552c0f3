#!/usr/bin/env bash
# A Hearth cluster on one machine: three `hearth` nodes behind nginx, a
# three-server NATS JetStream cluster (the bus log stream replicated R3), the
# local Postgres (database `hearthcluster`) and Redis (key prefix
# `hearthcluster:`).
#
#   scripts/cluster.sh up        start everything (or what is not running), wait until ready
#   scripts/cluster.sh status    health of every part (exit 1 if any part is down)
#   scripts/cluster.sh restart   rolling restart (or upgrade, with a new HEARTH_BIN): one
#                                node at a time out of nginx's rotation, SIGTERM (it drains:
#                                its gateway clients resume on the others), started again,
#                                back in rotation
#   scripts/cluster.sh down      stop everything this script started, nothing else
#   scripts/cluster.sh down --purge   ... and delete the state dir and drop the database
#
# Ports (all on 127.0.0.1): nginx 8090 (the cluster's address; scripts/run.sh
# keeps 8080), nodes 8081-8083, NATS clients 4231-4233, NATS routes 6231-6233,
# NATS monitoring 8231-8233. State (configs, logs, pid files, data) lives in
# $HEARTH_CLUSTER_DIR (default /var/tmp/hearth-cluster).
#
# Environment: HEARTH_BIN (the binary to run; default: build the debug binary,
# or use the last one built if the build fails), HEARTH_CLUSTER_DIR,
# HEARTH_CLUSTER_PORT (nginx, default 8090), HEARTH_CLUSTER_PG (server URL
# without database, default postgres://postgres@127.0.0.1:5432),
# HEARTH_CLUSTER_DB (default hearthcluster), HEARTH_CLUSTER_REDIS (default
# redis://127.0.0.1:6379), HEARTH_CLUSTER_ROOT (NATS subject root and Redis key
# prefix, default hearthcluster), HEARTH_CLUSTER_PORT_OFFSET (added to every
# port, default 0: a second cluster beside the first, as scripts/cluster-check.sh does).
#
# nginx (open source) has passive health checks only (max_fails/fail_timeout:
# a node that refuses connections or answers 502/504 is skipped for
# fail_timeout). The active check is a small loop started by `up`: every 2 s it
# asks each node's /readyz and, when the set of ready nodes changes, rewrites
# the upstream list (a failing node is marked `down`) and reloads nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

STATE="${HEARTH_CLUSTER_DIR:-/var/tmp/hearth-cluster}"
[ "${1:-}" = _readiness-loop ] && [ -n "${2:-}" ] && STATE="$2"
LB_PORT="${HEARTH_CLUSTER_PORT:-8090}"
PG_SERVER="${HEARTH_CLUSTER_PG:-postgres://postgres@127.0.0.1:5432}"
DB_NAME="${HEARTH_CLUSTER_DB:-hearthcluster}"
REDIS_URL="${HEARTH_CLUSTER_REDIS:-redis://127.0.0.1:6379}"
SUBJECT_ROOT="${HEARTH_CLUSTER_ROOT:-hearthcluster}" # NATS subject root and Redis key prefix
LOG_STREAM="$(tr '[:lower:]' '[:upper:]' <<<"$SUBJECT_ROOT" | tr -c 'A-Z0-9\n' '_')_LOG"
OFF="${HEARTH_CLUSTER_PORT_OFFSET:-0}" # added to every port below (a second cluster, tests)
LB_PORT=$((LB_PORT + OFF))
NODES=(1 2 3)
node_port() { echo $((8080 + OFF + $1)); }
nats_port() { echo $((4230 + OFF + $1)); }
route_port() { echo $((6230 + OFF + $1)); }
mon_port() { echo $((8230 + OFF + $1)); }
# The log stream's limits, as the server would create it (apps/server/src/app.rs:
# max age = 2 x gateway_resume_secs; crates/bus/src/nats/mod.rs: 256 MiB, 1 MiB
# messages, 2 min duplicate window), plus three replicas.
RESUME_SECS="${HEARTH_GATEWAY_RESUME_SECS:-120}"
REPLICAS=3

RUN="$STATE/run"

# --- processes -------------------------------------------------------------

# A pid file's process if it is alive and still ours (its command line names
# the state dir), so a recycled pid is never signalled.
live_pid() {
  local f="$RUN/$1.pid" pid
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$STATE" || return 1
  echo "$pid"
}

# start NAME LOGFILE CMD...: a detached process (own session), pid in $RUN/NAME.pid.
start_proc() {
  local name="$1" log="$2"
  shift 2
  setsid "$@" >>"$log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

# Running (a zombie waiting for whoever adopted it to reap it counts as stopped).
running() { [ -r "/proc/$1/stat" ] && ! sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'; }

stop_proc() {
  local name="$1" pid
  pid="$(live_pid "$name")" || { rm -f "$RUN/$name.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do running "$pid" || break; sleep 0.1; done
  if running "$pid"; then
    say "$name did not stop in 10 s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$name.pid"
}

node_ready() { [ "$(http_code "http://127.0.0.1:$(node_port "$1")/readyz")" = 200 ]; }
lb_ready() { [ "$(http_code "http://127.0.0.1:$LB_PORT/readyz")" = 200 ]; }
all_in_rotation() { [ "$(cat "$STATE/nginx/ready-nodes" 2>/dev/null)" = "${NODES[*]}" ]; }
out_of_rotation() { [[ " $(cat "$STATE/nginx/ready-nodes" 2>/dev/null) " != *" $1 "* ]]; }

http_code() { curl -s -o /dev/null -m "${2:-2}" -w '%{http_code}' "$1" 2>/dev/null || true; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || die "$what: not ready after ${secs}s (logs in $STATE)"
    sleep 0.3
  done
}

# --- dependencies ------------------------------------------------------------

need_tools() {
  local missing=()
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
  command -v psql >/dev/null || missing+=(postgresql-client)
  command -v curl >/dev/null || missing+=(curl)
  command -v python3 >/dev/null || missing+=(python3)
  command -v jq >/dev/null || missing+=(jq)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
NATS_SERVER="$(command -v nats-server || echo /usr/sbin/nats-server)"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_shared() {
  pg_isready -q -d "$PG_SERVER/postgres" 2>/dev/null ||
    die "Postgres is not reachable at $PG_SERVER (scripts/test.sh rust starts the local one)"
  local rport="${REDIS_URL##*:}"
  rport="${rport%%/*}"
  port_open "$rport" || die "Redis is not reachable at $REDIS_URL (scripts/test.sh rust starts the local one)"
}

hearth_bin() {
  if [ -n "${HEARTH_BIN:-}" ]; then
    echo "$HEARTH_BIN"
    return
  fi
  local built="$CARGO_TARGET_DIR/debug/hearth"
  if command -v cargo >/dev/null && cargo build --quiet --bin hearth >&2; then
    echo "$built"
  elif [ -x "$built" ]; then
    say "cargo build failed: using the last built $built"
    echo "$built"
  else
    die "no hearth binary (set HEARTH_BIN or fix the build)"
  fi
}

# --- NATS --------------------------------------------------------------------

nats_conf() {
  local i="$1" routes=""
  for j in "${NODES[@]}"; do
    [ "$j" = "$i" ] || routes+="    nats-route://127.0.0.1:$(route_port "$j")"$'\n'
  done
  cat <<EOF
server_name: hearth-nats-$i
listen: 127.0.0.1:$(nats_port "$i")
http: 127.0.0.1:$(mon_port "$i")
jetstream {
  store_dir: "$STATE/nats-$i"
  max_memory_store: 256MB
  max_file_store: 2GB
}
cluster {
  name: hearth-cluster
  listen: 127.0.0.1:$(route_port "$i")
  routes: [
$routes  ]
}
EOF
}

# NATS request/reply in the text protocol (no client library needed):
# nats_request PORT SUBJECT JSON → prints the reply.
nats_request() {
  python3 - "$@" <<'PY'
import json, socket, sys, time
port, subject, payload = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
s = socket.create_connection(("127.0.0.1", port), timeout=10)
f = s.makefile("rb")
f.readline()  # INFO
inbox = "_INBOX.cluster_sh.%d" % time.time_ns()
s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"name":"cluster.sh"}\r\n')
s.sendall(b"SUB %s 1\r\n" % inbox.encode())
s.sendall(b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), inbox.encode(), len(payload), payload))
while True:
    line = f.readline()
    if not line:
        sys.exit("connection closed")
    if line.startswith(b"PING"):
        s.sendall(b"PONG\r\n")
    elif line.startswith(b"-ERR"):
        sys.exit(line.decode().strip())
    elif line.startswith(b"MSG"):
        n = int(line.split()[-1])
        sys.stdout.write(f.read(n + 2)[:-2].decode())
        break
PY
}

stream_config() {
  python3 - "$SUBJECT_ROOT" "$LOG_STREAM" "$RESUME_SECS" "$REPLICAS" <<'PY'
import json, sys
root, name, resume, replicas = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ns = 1_000_000_000
print(json.dumps({
    "name": name, "subjects": [root + ".chat.>"], "retention": "limits",
    "max_consumers": -1, "max_msgs": -1, "max_msgs_per_subject": -1,
    "max_bytes": 256 << 20, "max_age": max(resume, 60) * 2 * ns,
    "max_msg_size": 1 << 20, "storage": "file", "discard": "old",
    "num_replicas": replicas, "duplicate_window": 120 * ns,
}))
PY
}

# The server creates the log stream with the library default of one replica
# when it is missing and uses an existing one as it is, so the stream is made
# here first, replicated on all three servers (or scaled up if it exists with fewer).
ensure_log_stream() {
  local port; port="$(nats_port 1)"
  local info replicas
  info="$(nats_request "$port" "\$JS.API.STREAM.INFO.$LOG_STREAM" '' 2>/dev/null || true)"
  replicas="$(jq -r '.config.num_replicas // empty' <<<"$info" 2>/dev/null || true)"
  if [ -z "$replicas" ]; then
    local reply
    reply="$(nats_request "$port" "\$JS.API.STREAM.CREATE.$LOG_STREAM" "$(stream_config)")"
    jq -e '.error == null' <<<"$reply" >/dev/null || { echo "$reply" >&2; return 1; }
    say "created stream $LOG_STREAM (R$REPLICAS)"
  elif [ "$replicas" -lt "$REPLICAS" ]; then
    local cfg reply
    cfg="$(jq -c ".config | .num_replicas = $REPLICAS" <<<"$info")"
    reply="$(nats_request "$port" "\$JS.API.STREAM.UPDATE.$LOG_STREAM" "$cfg")"
    jq -e '.error == null' <<<"$reply" >/dev/null || { echo "$reply" >&2; return 1; }
    say "scaled stream $LOG_STREAM from R$replicas to R$REPLICAS"
  fi
}

nats_ready() { # JetStream answers on every server (the meta group has a leader)
  local i
  for i in "${NODES[@]}"; do
    curl -sf -m 2 "http://127.0.0.1:$(mon_port "$i")/healthz" >/dev/null || return 1
  done
  nats_request "$(nats_port 1)" "\$JS.API.INFO" '' 2>/dev/null | jq -e '.error == null' >/dev/null
}

# --- nginx -------------------------------------------------------------------

nginx_conf() {
  cat <<EOF
# Generated by scripts/cluster.sh: the cluster's one address.
worker_processes 1;
pid $STATE/nginx/nginx.pid;
error_log $STATE/nginx/error.log notice;
events { worker_connections 4096; }
http {
  access_log $STATE/nginx/access.log;
  client_body_temp_path $STATE/nginx/tmp/body;
  proxy_temp_path $STATE/nginx/tmp/proxy;
  fastcgi_temp_path $STATE/nginx/tmp/fastcgi;
  uwsgi_temp_path $STATE/nginx/tmp/uwsgi;
  scgi_temp_path $STATE/nginx/tmp/scgi;
  client_max_body_size 2m;

  map \$http_upgrade \$connection_upgrade {
    default upgrade;
    ''      '';
  }

  upstream hearth {
    # One line per node, rewritten by the readiness loop (a node whose
    # /readyz fails is marked down). Passive checks: 2 failures (errors,
    # timeouts, 502/504) take a node out for 10 s.
    include $STATE/nginx/upstream.conf;
    keepalive 32;
  }

  # Sends to one channel go to one node (the same nodes, hashed by channel),
  # so the channel's ordering lease stays where its messages are written
  # instead of changing hands on nearly every message; a node out of
  # rotation moves only its own channels.
  upstream hearth_by_channel {
    hash \$hearth_channel consistent;
    include $STATE/nginx/upstream.conf;
    keepalive 32;
  }

  server {
    listen 127.0.0.1:$LB_PORT;
    proxy_http_version 1.1;
    proxy_set_header Host \$http_host;
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto \$scheme;
    # Not http_503: a node answers 503 "unavailable" when a part every node shares
    # (Postgres, Redis) is down. Counted as failures, those would take every node out
    # and leave nginx's own 502; a node that is itself unready leaves the rotation
    # through the readiness check instead.
    proxy_next_upstream error timeout http_502 http_504;
    proxy_next_upstream_tries 3;
    proxy_connect_timeout 2s;

    # The WebSocket gateway: upgrade, and hold idle connections longer than
    # the heartbeat interval.
    location = /api/v1/gateway {
      proxy_pass http://hearth;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
      proxy_buffering off;
    }

    location ~ ^/api/v1/channels/(?<hearth_channel>[0-9]+)/messages\$ {
      proxy_pass http://hearth_by_channel;
      proxy_set_header Connection "";
      proxy_read_timeout 30s;
    }

    # The balancer's own answer (is nginx up), not a node's.
    location = /nginx-health { access_log off; return 200 "ok\n"; }

    # 30 s, not nginx's 60: the longest a node takes to answer on purpose is
    # a send (5 s for the channel's ordering lease, 12 s for its event to be
    # stored, then 503) or an upload's processing (ffmpeg is stopped at 20 s).
    # A request passed to a node that then hangs fails after this; GETs go on
    # to another node, POSTs do not (a send retried with its nonce is safe).
    location / {
      proxy_pass http://hearth;
      proxy_set_header Connection "";
      proxy_read_timeout 30s;
    }
  }
}
EOF
}

upstream_lines() { # upstream_lines "1 3" → ready nodes 1 and 3, the others down
  local ready=" $1 " i
  # None ready: a part every node shares (Postgres, Redis, NATS) is down. Keep them all
  # in: each answers 503 "unavailable" in the API's shape (nginx alone would answer 502
  # with its own page), and the first to recover serves at once.
  if [ -z "$1" ]; then ready=" ${NODES[*]} "; fi
  for i in "${NODES[@]}"; do
    if [[ "$ready" == *" $i "* ]]; then
      echo "server 127.0.0.1:$(node_port "$i") max_fails=2 fail_timeout=10s;"
    else
      echo "server 127.0.0.1:$(node_port "$i") max_fails=2 fail_timeout=10s down; # /readyz failed"
    fi
  done
}

nginx_cmd() { "$NGINX" -p "$STATE/nginx" -c "$STATE/nginx/nginx.conf" -e "$STATE/nginx/error.log" "$@"; }

# Reloads nginx and returns once a worker with the new configuration runs
# (the old workers then take no new connections), at most 5 s.
reload_nginx() {
  local master old w
  master="$(live_pid nginx)" || return 1
  old=" $(pgrep -P "$master" | tr '\n' ' ')"
  nginx_cmd -s reload 2>/dev/null || return 1
  for _ in $(seq 1 50); do
    for w in $(pgrep -P "$master"); do
      # A new worker runs; the master now tells the old ones to stop accepting.
      [[ "$old" == *" $w "* ]] || { sleep 0.5; return 0; }
    done
    sleep 0.1
  done
  return 1
}

# The active health check: `scripts/cluster.sh _readiness-loop STATE`.
readiness_loop() {
  local last="" ready i
  while :; do
    ready=""
    for i in "${NODES[@]}"; do
      # A node in maintenance (a restart under way) is out, ready or not.
      grep -qx "$i" "$STATE/nginx/maintenance" 2>/dev/null && continue
      [ "$(http_code "http://127.0.0.1:$(node_port "$i")/readyz" 2)" = 200 ] && ready+="$i "
    done
    ready="${ready% }"
    if [ "$ready" != "$last" ]; then
      upstream_lines "$ready" >"$STATE/nginx/upstream.conf.new"
      mv "$STATE/nginx/upstream.conf.new" "$STATE/nginx/upstream.conf"
      if reload_nginx; then
        echo "$ready" >"$STATE/nginx/ready-nodes"
        echo "$(date -Is) ready nodes: [${ready}] (nginx reloaded)"
        last="$ready"
      else
        echo "$(date -Is) ready nodes: [${ready}] (nginx reload failed; retrying)"
      fi
    fi
    sleep 2
  done
}

# --- commands ----------------------------------------------------------------

# start_node I BIN: node I on its port and data dir, configured for the cluster.
start_node() {
  local i="$1" bin="$2"
  mkdir -p "$STATE/node-$i/data"
  (
    cd "$STATE/node-$i"
    export HEARTH_DATABASE_URL="$PG_SERVER/$DB_NAME"
    # Every NATS server, this node's own first: the client starts there and
    # fails over to the others; streams the node creates are R3.
    HEARTH_NATS_URL="nats://127.0.0.1:$(nats_port "$i")"
    for j in 1 2 3; do
      [ "$j" = "$i" ] || HEARTH_NATS_URL="$HEARTH_NATS_URL,nats://127.0.0.1:$(nats_port "$j")"
    done
    export HEARTH_NATS_URL
    export HEARTH_NATS_STREAM_REPLICAS=3
    export HEARTH_NATS_SUBJECT_ROOT="$SUBJECT_ROOT"
    export HEARTH_REDIS_URL="$REDIS_URL"
    HEARTH_JWT_SECRET="$(cat "$STATE/jwt-secret")"
    export HEARTH_JWT_SECRET
    export HEARTH_PUBLIC_URL="http://127.0.0.1:$LB_PORT"
    export HEARTH_TRUST_FORWARDED_FOR=true
    [ -d "$ROOT/web/out" ] && export HEARTH_WEB_DIR="$ROOT/web/out"
    unset DATABASE_URL NATS_URL REDIS_URL
    start_proc "node-$i" "$STATE/node-$i/hearth.log" "$bin" serve \
      --listen "127.0.0.1:$(node_port "$i")" --data-dir "$STATE/node-$i/data"
  )
}

cmd_up() {
  local t0=$SECONDS
  need_tools
  check_shared
  mkdir -p "$RUN" "$STATE/nginx/tmp"
  [ -s "$STATE/jwt-secret" ] || { umask 077; head -c 48 /dev/urandom | base64 | tr -d '\n=' >"$STATE/jwt-secret"; }
  chmod 600 "$STATE/jwt-secret"

  # Postgres: the cluster's own database (the test suite drops hearth_* databases).
  if [ -z "$(psql "$PG_SERVER/postgres" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" ]; then
    psql "$PG_SERVER/postgres" -qc "CREATE DATABASE \"$DB_NAME\"" >/dev/null
    say "created database $DB_NAME"
  fi

  # NATS: three servers, one JetStream cluster.
  local i
  for i in "${NODES[@]}"; do
    mkdir -p "$STATE/nats-$i"
    nats_conf "$i" >"$STATE/nats-$i.conf"
    live_pid "nats-$i" >/dev/null || start_proc "nats-$i" "$STATE/nats-$i.log" "$NATS_SERVER" -c "$STATE/nats-$i.conf"
  done
  wait_for 60 "NATS JetStream cluster" nats_ready
  wait_for 30 "log stream $LOG_STREAM" ensure_log_stream

  # Hearth nodes.
  local bin=""
  for i in "${NODES[@]}"; do
    live_pid "node-$i" >/dev/null && continue
    if [ -z "$bin" ]; then
      bin="$(hearth_bin)"
      mkdir -p "$STATE/bin"
      cp -f "$bin" "$STATE/bin/hearth.new" && mv -f "$STATE/bin/hearth.new" "$STATE/bin/hearth"
      bin="$STATE/bin/hearth"
    fi
    start_node "$i" "$bin"
  done
  for i in "${NODES[@]}"; do
    wait_for 90 "node $i (/readyz on $(node_port "$i"))" node_ready "$i"
  done

  # nginx and the readiness loop.
  nginx_conf >"$STATE/nginx/nginx.conf"
  [ -f "$STATE/nginx/upstream.conf" ] || upstream_lines "${NODES[*]}" >"$STATE/nginx/upstream.conf"
  nginx_cmd -t -q 2>>"$STATE/nginx/error.log" || die "nginx rejected $STATE/nginx/nginx.conf (see $STATE/nginx/error.log)"
  if ! live_pid nginx >/dev/null; then
    start_proc nginx "$STATE/nginx/stdout.log" "$NGINX" -p "$STATE/nginx" -c "$STATE/nginx/nginx.conf" \
      -e "$STATE/nginx/error.log" -g 'daemon off;'
  else
    nginx_cmd -s reload
  fi
  live_pid readiness >/dev/null ||
    start_proc readiness "$STATE/readiness.log" bash "$ROOT/scripts/cluster.sh" _readiness-loop "$STATE"
  wait_for 30 "nginx on $LB_PORT" lb_ready
  wait_for 15 "every node in nginx's rotation" all_in_rotation
  say "cluster up in $((SECONDS - t0))s: http://127.0.0.1:$LB_PORT (nodes $(node_port 1)-$(node_port 3), state in $STATE)"
}

# Rolling restart: each node in turn leaves nginx's rotation (new requests
# and gateway connections go to the others), gets SIGTERM (it drains: op
# reconnect and close 1012 to its gateway clients, which resume on the other
# nodes through nginx; requests in flight finish), is started again (from
# HEARTH_BIN or a fresh build: a rolling upgrade) and rejoins the rotation.
cmd_restart() {
  local t0=$SECONDS i pid bin
  live_pid nginx >/dev/null && live_pid readiness >/dev/null ||
    die "the cluster is not up (scripts/cluster.sh up)"
  bin="$(hearth_bin)"
  mkdir -p "$STATE/bin"
  cp -f "$bin" "$STATE/bin/hearth.new" && mv -f "$STATE/bin/hearth.new" "$STATE/bin/hearth"
  bin="$STATE/bin/hearth"
  for i in "${NODES[@]}"; do
    local t1=$SECONDS
    echo "$i" >"$STATE/nginx/maintenance"
    wait_for 15 "node $i out of nginx's rotation" out_of_rotation "$i"
    if pid="$(live_pid "node-$i")"; then
      kill -TERM "$pid" 2>/dev/null || true
      # drain_secs (10 by default) and requests in flight, then a kill.
      for _ in $(seq 1 300); do running "$pid" || break; sleep 0.1; done
      if running "$pid"; then
        say "node $i did not stop in 30 s: killing it"
        kill -KILL "$pid" 2>/dev/null || true
      fi
      rm -f "$RUN/node-$i.pid"
    fi
    start_node "$i" "$bin"
    wait_for 90 "node $i (/readyz on $(node_port "$i"))" node_ready "$i"
    rm -f "$STATE/nginx/maintenance"
    wait_for 15 "node $i back in nginx's rotation" all_in_rotation
    say "node $i restarted in $((SECONDS - t1))s"
  done
  say "rolling restart done in $((SECONDS - t0))s"
}

cmd_status() {
  local bad=0 i code pid
  printf '%-12s %-8s %-7s %s\n' PART PID HEALTH DETAIL
  for i in "${NODES[@]}"; do
    pid="$(live_pid "nats-$i" || echo -)"
    if [ "$(http_code "http://127.0.0.1:$(mon_port "$i")/healthz")" = 200 ]; then
      printf '%-12s %-8s %-7s %s\n' "nats-$i" "$pid" ok "client :$(nats_port "$i"), routes :$(route_port "$i")"
    else
      printf '%-12s %-8s %-7s %s\n' "nats-$i" "$pid" DOWN "monitoring :$(mon_port "$i")/healthz"
      bad=1
    fi
  done
  local info
  info="$(nats_request "$(nats_port 1)" "\$JS.API.STREAM.INFO.$LOG_STREAM" '' 2>/dev/null ||
    nats_request "$(nats_port 2)" "\$JS.API.STREAM.INFO.$LOG_STREAM" '' 2>/dev/null || true)"
  if [ -n "$info" ] && jq -e '.config' <<<"$info" >/dev/null 2>&1; then
    printf '%-12s %-8s %-7s %s\n' stream - ok "$(jq -r '"\(.config.name) R\(.config.num_replicas), leader \(.cluster.leader // "-"), replicas \([.cluster.replicas[]? | "\(.name)\(if .offline then "(offline)" elif .current then "" else "(behind)" end)"] | join(",")), \(.state.messages) messages"' <<<"$info")"
  else
    printf '%-12s %-8s %-7s %s\n' stream - DOWN "$LOG_STREAM: no answer"
    bad=1
  fi
  for i in "${NODES[@]}"; do
    pid="$(live_pid "node-$i" || echo -)"
    code="$(http_code "http://127.0.0.1:$(node_port "$i")/readyz")"
    if [ "$code" = 200 ]; then
      printf '%-12s %-8s %-7s %s\n' "node-$i" "$pid" ok ":$(node_port "$i")/readyz 200"
    else
      printf '%-12s %-8s %-7s %s\n' "node-$i" "$pid" DOWN ":$(node_port "$i")/readyz ${code:-000} $(curl -s -m 2 "http://127.0.0.1:$(node_port "$i")/readyz" 2>/dev/null | head -c 200)"
      bad=1
    fi
  done
  pid="$(live_pid nginx || echo -)"
  code="$(http_code "http://127.0.0.1:$LB_PORT/nginx-health")"
  if [ "$code" = 200 ]; then
    printf '%-12s %-8s %-7s %s\n' nginx "$pid" ok ":$LB_PORT, in rotation: [$(cat "$STATE/nginx/ready-nodes" 2>/dev/null || echo "${NODES[*]}")]"
  else
    printf '%-12s %-8s %-7s %s\n' nginx "$pid" DOWN ":$LB_PORT"
    bad=1
  fi
  pid="$(live_pid readiness || echo -)"
  if [ "$pid" != - ]; then
    printf '%-12s %-8s %-7s %s\n' readiness "$pid" ok "checks /readyz every 2 s ($STATE/readiness.log)"
  else
    printf '%-12s %-8s %-7s %s\n' readiness - DOWN "not running"
    bad=1
  fi
  if pg_isready -q -d "$PG_SERVER/$DB_NAME" 2>/dev/null; then
    printf '%-12s %-8s %-7s %s\n' postgres - ok "database $DB_NAME (shared server)"
  else
    printf '%-12s %-8s %-7s %s\n' postgres - DOWN "$PG_SERVER/$DB_NAME"
    bad=1
  fi
  local rport="${REDIS_URL##*:}"
  rport="${rport%%/*}"
  if port_open "$rport"; then
    printf '%-12s %-8s %-7s %s\n' redis - ok "key prefix $SUBJECT_ROOT: (shared server)"
  else
    printf '%-12s %-8s %-7s %s\n' redis - DOWN "$REDIS_URL"
    bad=1
  fi
  return "$bad"
}

cmd_down() {
  local purge="${1:-}" i
  stop_proc readiness
  if live_pid nginx >/dev/null; then nginx_cmd -s quit 2>/dev/null || true; fi
  stop_proc nginx
  for i in "${NODES[@]}"; do stop_proc "node-$i"; done
  for i in "${NODES[@]}"; do stop_proc "nats-$i"; done
  say "cluster stopped"
  if [ "$purge" = --purge ]; then
    psql "$PG_SERVER/postgres" -qc "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1 || true
    if command -v redis-cli >/dev/null; then
      local h="${REDIS_URL#redis://}" host port
      host="${h%%:*}"
      port="${h##*:}"
      port="${port%%/*}"
      redis-cli -h "$host" -p "$port" --scan --pattern "$SUBJECT_ROOT:*" 2>/dev/null |
        xargs -r -n 500 redis-cli -h "$host" -p "$port" DEL >/dev/null 2>&1 || true
    fi
    rm -rf "$STATE"
    say "removed $STATE, database $DB_NAME and Redis keys $SUBJECT_ROOT:*"
  fi
}

case "${1:-}" in
  up) cmd_up ;;
  status) cmd_status ;;
  restart) cmd_restart ;;
  down) cmd_down "${2:-}" ;;
  _readiness-loop) readiness_loop ;;
  *) die "usage: scripts/cluster.sh up|status|restart|down [--purge]" ;;
esac
