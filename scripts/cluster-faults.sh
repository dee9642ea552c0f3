#!/usr/bin/env bash
# Redis and Postgres restarted, one NATS server killed and one node frozen (SIGSTOP)
# for 10 s under a running three-node cluster (issue 14, faults),
# with what the clients see checked by scripts/cluster-faults.mjs (see there). The
# cluster (scripts/cluster.sh, ports +300: nginx 8390, nodes 8381-8383, NATS 4531-4533)
# runs on its own Redis (port 6499) and its own Postgres (port 5499, a throwaway
# initdb), which this script stops and starts, so the machine's shared servers, and
# tests using them, are never touched. About a minute and a half. Run by
# scripts/test.sh deploy.
#
#   scripts/cluster-faults.sh                 the whole check
#   scripts/cluster-faults.sh _fault WHAT     (called back) redis-stop|redis-start|pg-stop|pg-start|
#                                             nats-kill|nats-start|node-freeze|node-thaw
#
# FAULTS_JSON=FILE appends the figures (time until whole again, per fault) to FILE.
# FAULTS_KEEP=1 keeps the nodes' logs after a run that passed (a failed one always does).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

export HEARTH_CLUSTER_DIR="${FAULTS_DIR:-/var/tmp/hearth-cluster-faults}"
export HEARTH_CLUSTER_PORT_OFFSET=300
export HEARTH_CLUSTER_DB=hearthfaults
export HEARTH_CLUSTER_ROOT=hearthfaults
PG_PORT="${FAULTS_PG_PORT:-5499}"
REDIS_PORT="${FAULTS_REDIS_PORT:-6499}"
export HEARTH_CLUSTER_PG="postgres://postgres@127.0.0.1:$PG_PORT"
export HEARTH_CLUSTER_REDIS="redis://127.0.0.1:$REDIS_PORT"
# A few users from one address: the per-address limits are not under test here.
export HEARTH_RATE_LIMIT_ENABLED=false
export HEARTH_PASSWORD_HASH_MEMORY_KIB=1024
export HEARTH_PASSWORD_HASH_ITERATIONS=1
export HEARTH_LOG_LEVEL="${HEARTH_LOG_LEVEL:-info}"
# Beside the cluster's state dir, not in it: `cluster.sh down --purge` deletes that.
DEPS="$HEARTH_CLUSTER_DIR-deps"
LB=http://127.0.0.1:8390

PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_ctl_() { as_pg "$PGBIN/pg_ctl" -D "$DEPS/pg" "$@"; }

redis_start() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize yes --pidfile "$DEPS/redis.pid" --logfile "$DEPS/redis.log" --dir "$DEPS" >/dev/null
  for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "Redis did not start on :$REDIS_PORT: $(tail -n 5 "$DEPS/redis.log")"
}
# Restarted empty, as a Redis without persistence (or a new replica) comes back.
redis_stop() { redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; }

pg_start() {
  pg_ctl_ -w -t 30 -l "$DEPS/pg.log" \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $DEPS -c fsync=off" start >/dev/null
}
# Fast shutdown: connections are cut, as in a restart or failover.
pg_stop() { pg_ctl_ -w -t 30 -m fast stop >/dev/null 2>&1 || true; }

if [ "${1:-}" = _fault ]; then
  case "${2:-}" in
    redis-stop) redis_stop ;;
    redis-start) redis_start ;;
    pg-stop) pg_stop ;;
    pg-start) pg_start ;;
    # NATS server 2 killed outright (no clean shutdown); started again by `up`,
    # which starts whatever part of the cluster is missing.
    nats-kill) kill -KILL "$(cat "$HEARTH_CLUSTER_DIR/run/nats-2.pid")" ;;
    nats-start) scripts/cluster.sh up >/dev/null ;;
    # Node 3 frozen and woken, as a long GC pause or a stalled VM would.
    node-freeze) kill -STOP "$(cat "$HEARTH_CLUSTER_DIR/run/node-3.pid")" ;;
    node-thaw) kill -CONT "$(cat "$HEARTH_CLUSTER_DIR/run/node-3.pid")" ;;
    *) die "unknown fault '${2:-}'" ;;
  esac
  exit 0
fi

[ -n "$PGBIN" ] || apt_install postgresql
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
command -v redis-server >/dev/null || apt_install redis-server
command -v node >/dev/null || die "node is needed for the fault clients"

stop_all() { # stop_all [--purge]: the cluster, its Redis and Postgres (and their files)
  scripts/cluster.sh down "$@" >/dev/null 2>&1 || true
  redis_stop
  if [ -f "$DEPS/pg/PG_VERSION" ]; then pg_stop; fi
  if [ "${1:-}" = --purge ]; then rm -rf "$DEPS"; fi
}
cleanup() { stop_all --purge; }
on_exit() {
  local rc=$?
  if [ "$rc" = 0 ] && [ "${FAULTS_KEEP:-}" != 1 ]; then cleanup; else
    stop_all
    if [ "$rc" = 0 ]; then say "cluster faults: logs kept in $HEARTH_CLUSTER_DIR and $DEPS"
    else say "cluster faults failed: logs in $HEARTH_CLUSTER_DIR and $DEPS"; fi
  fi
}
trap on_exit EXIT
cleanup
t0=$SECONDS

say "cluster faults: its own Redis (:$REDIS_PORT) and Postgres (:$PG_PORT)"
mkdir -p "$DEPS"
chmod 755 "$DEPS"
[ "$(id -u)" = 0 ] && chown postgres "$DEPS"
as_pg "$PGBIN/initdb" -D "$DEPS/pg" -U postgres --auth=trust -E UTF8 >/dev/null
pg_start
redis_start

say "cluster faults: cluster up"
scripts/cluster.sh up

say "cluster faults: Redis restarted empty, Postgres restarted, a NATS server killed, a node frozen, under connected clients"
out="$HEARTH_CLUSTER_DIR.out"
node --experimental-websocket --no-warnings scripts/cluster-faults.mjs "$LB" scripts/cluster-faults.sh \
  8381 8382 8383 | tee "$out" || die "the fault clients failed (above)"
scripts/cluster.sh status >/dev/null || { scripts/cluster.sh status || true; die "a part of the cluster is down after the faults"; }
echo "cluster faults: every node still running and ready"
if [ -n "${FAULTS_JSON:-}" ]; then tail -n 1 "$out" >>"$FAULTS_JSON"; fi
say "cluster faults passed in $((SECONDS - t0))s"
