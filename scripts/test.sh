#!/usr/bin/env bash
# The whole test suite. Brings up what it needs: Postgres (127.0.0.1:5432),
# NATS with JetStream (127.0.0.1:4222) and Redis (127.0.0.1:6379), each
# started if stopped and installed if missing, then
# runs every Rust test against both SQLite and Postgres, and the web app's
# unit and end-to-end tests in Debian's Chromium.
#
#   scripts/test.sh            everything
#   scripts/test.sh rust       only the Rust workspace (tests, schemathesis, and the
#                              gateway under overload: scripts/overload.sh)
#   scripts/test.sh web        only the web app
#   scripts/test.sh deploy     only the deployment files and the cluster: promtool
#                              check/test rules, dashboard, compose and Helm checks
#                              (scripts/check-deploy.sh), the web app compiled into the
#                              binary (scripts/embedded-web-check.sh), Redis and Postgres
#                              restarted and a node frozen under a cluster's clients (scripts/cluster-faults.sh),
#                              a three-node cluster behind
#                              nginx (scripts/cluster-check.sh, ~25 s) and the alerts
#                              firing in a real Prometheus (scripts/alerts-live.sh, ~40 s)
#                              and a rolling restart of that cluster under load, nothing
#                              lost (scripts/rolling-restart.sh, ~60 s)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

what="${1:-all}"
PG_URL="${HEARTH_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export HEARTH_TEST_DATABASE_URL="$PG_URL"

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null && ! command -v pg_isready >/dev/null; then
    apt_install postgresql postgresql-client
  fi
  if ! pg_up; then
    if [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
      apt_install postgresql
    fi
    local ver; ver="$(ls /etc/postgresql | sort -V | tail -n 1)"
    # Tests connect as postgres over TCP without a password: trust local TCP on a test machine.
    local hba="/etc/postgresql/$ver/main/pg_hba.conf"
    if [ -f "$hba" ] && ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
      as_root sed -i '1ihost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    say "starting PostgreSQL $ver"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
  fi
  pg_up || die "PostgreSQL is not reachable at 127.0.0.1:5432"
  # Drop databases left by earlier runs that were killed mid-test.
  psql "$PG_URL" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'hearth\_%'" 2>/dev/null |
    while read -r db; do psql "$PG_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true; done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  return 1
}

ensure_nats() {
  port_open 4222 && return 0
  command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || apt_install nats-server
  local bin; bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
  say "starting NATS with JetStream"
  as_root mkdir -p /var/lib/nats-server
  as_root start-stop-daemon --start --oknodo --background --exec "$bin" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_port 4222 || die "NATS is not reachable at 127.0.0.1:4222"
}

ensure_redis() {
  port_open 6379 && return 0
  command -v redis-server >/dev/null || apt_install redis-server
  say "starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port 6379 || die "Redis is not reachable at 127.0.0.1:6379"
}

# coturn for the voice e2e (relay-only calls); scripts/coturn.sh has the test config.
ensure_coturn() {
  export HEARTH_E2E_TURN_SECRET="${HEARTH_E2E_TURN_SECRET:-hearth-e2e-turn-secret}"
  scripts/coturn.sh start
}

# moto in server mode, the S3-compatible server the blob-store tests run against.
ensure_moto() {
  export HEARTH_TEST_S3_URL="${HEARTH_TEST_S3_URL:-http://127.0.0.1:${HEARTH_MOTO_PORT:-5055}}"
  scripts/moto.sh start
}

# A real SMTP server for the mail tests; scripts/smtp.sh has the details.
ensure_smtp() {
  scripts/smtp.sh start
}

# A real Web Push service for the push tests (checks VAPID, decrypts with
# http-ece); scripts/push.sh has the details.
ensure_push() {
  scripts/push.sh start
}

# A real OpenID Connect provider for the sign-in tests (panva's
# oidc-provider from npm); scripts/oidc.sh has the details.
ensure_oidc() {
  command -v node >/dev/null || die "node is needed for the OpenID provider the tests sign in with"
  scripts/oidc.sh start
}

# ffmpeg/ffprobe (Debian): video posters and audio/video durations in the
# media pipeline; the media tests fail (never skip) without them.
ensure_ffmpeg() {
  command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || apt_install --no-install-recommends ffmpeg
}

ensure_chromium() {
  command -v chromium >/dev/null || apt_install chromium
}

# Streams that killed test runs left on the local NATS each reserve storage;
# enough of them make new streams fail. Delete those older than 20 minutes
# (a whole Rust run takes about 5; several runs an hour left 60 behind).
nats_gc() {
  local venv="$HEARTH_VENV"
  ensure_venv
  "$venv/bin/python" -c 'import nats' 2>/dev/null ||
    "$venv/bin/pip" install --quiet --disable-pip-version-check "nats-py==2.9.0"
  "$venv/bin/python" scripts/nats-gc.py --older-than 20
}

run_rust() {
  command -v cargo >/dev/null || die "cargo is needed (https://rustup.rs)"
  ensure_postgres
  ensure_nats
  nats_gc
  ensure_redis
  ensure_moto
  ensure_smtp
  ensure_push
  ensure_oidc
  ensure_ffmpeg
  say "Rust: formatting"
  cargo fmt --all -- --check
  say "Rust: tests (SQLite and Postgres)"
  cargo test --workspace --quiet 2>&1 | tee /tmp/hearth-rust-tests.log
  local passed failed
  passed=$(grep -Eo '[0-9]+ passed' /tmp/hearth-rust-tests.log | awk '{s+=$1} END {print s+0}')
  failed=$(grep -Eo '[0-9]+ failed' /tmp/hearth-rust-tests.log | awk '{s+=$1} END {print s+0}')
  say "Rust: $passed passed, $failed failed"
  RUST_PASSED=$passed
  say "API: schemathesis against a real hearth"
  cargo build --quiet --bin hearth
  scripts/schemathesis.sh
  say "gateway: overload without silent gaps (scripts/overload.sh, ~60 s)"
  scripts/overload.sh
}

run_web() {
  [ -f web/package.json ] || { say "no web app yet"; return 0; }
  command -v npm >/dev/null || die "npm is needed for the web tests"
  ensure_chromium
  ensure_coturn
  ensure_smtp
  ensure_oidc
  ensure_ffmpeg
  build_web
  say "web: unit tests"
  (cd web && npm test --silent)
  say "web: end-to-end tests in Chromium against a real hearth"
  cargo build --quiet --bin hearth
  (cd web && HEARTH_BIN="$CARGO_TARGET_DIR/debug/hearth" npm run --silent e2e)
}

run_deploy() {
  ensure_postgres
  ensure_redis
  say "deploy: rules, dashboard, compose file, Helm chart"
  scripts/check-deploy.sh
  say "deploy: one file to ship: the web app compiled into hearth, served from an empty directory"
  build_web
  scripts/embedded-web-check.sh
  say "deploy: a cluster on one machine (scripts/cluster.sh)"
  scripts/cluster-check.sh
  say "deploy: Redis and Postgres restarted, a node frozen 10 s, under a cluster's clients (scripts/cluster-faults.sh, ~50 s)"
  scripts/cluster-faults.sh
  say "deploy: alerts in a real Prometheus"
  scripts/alerts-live.sh
  say "deploy: a rolling restart under load (scripts/rolling-restart.sh, ~60 s)"
  scripts/rolling-restart.sh
}

RUST_PASSED=0
case "$what" in
  all) run_rust; run_web; run_deploy ;;
  rust) run_rust ;;
  web) run_web ;;
  deploy) run_deploy ;;
  *) die "unknown part '$what' (all, rust, web, deploy)" ;;
esac
say "all tests passed"
