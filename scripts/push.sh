#!/usr/bin/env bash
# A real Web Push service for the push tests: scripts/push-sink.py (http-ece
# and cryptography from PyPI, in the venv /var/tmp/hearth-venv) on
# 127.0.0.1:8089. It hands out browser-shaped subscriptions (POST
# /subscriptions), and on each push checks the TTL header, the VAPID
# signature and claims (RFC 8292) and decrypts the aes128gcm payload
# (RFC 8291) with the subscription's own keys before storing it; a
# subscription's mode makes it answer 410, 404, 500, 307, hang or fail a
# few times instead (see the script). State is in memory only.
# Installs http-ece and cryptography if missing; does nothing if the port
# already listens.
#
#   scripts/push.sh          ensure it runs
#   scripts/push.sh stop     stop the one this script started
#
# The push tests read HEARTH_TEST_PUSH (default 127.0.0.1:8089) and fail when
# the sink is absent; scripts/push-sink-selftest.py checks the sink itself.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

VENV="$HEARTH_VENV"
ADDR="${HEARTH_TEST_PUSH:-127.0.0.1:8089}"
HOST="${ADDR%:*}"
PORT="${ADDR##*:}"
STATE_DIR=/var/tmp/hearth-push
PIDFILE="$STATE_DIR/push-sink.pid"

listening() {
  (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
}

service_verb push "$PIDFILE" "${1:-start}" "$HOST" "$PORT"
ensure_venv
"$VENV/bin/python" -c 'import http_ece' 2>/dev/null ||
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "http-ece==1.2.1" "cryptography==50.0.2"
mkdir -p "$STATE_DIR"
say "starting the push sink on $HOST:$PORT (log in $STATE_DIR/push-sink.log)"
setsid "$VENV/bin/python" scripts/push-sink.py --host "$HOST" --port "$PORT" \
  >"$STATE_DIR/push-sink.log" 2>&1 </dev/null &
echo $! >"$PIDFILE"
for _ in $(seq 1 40); do listening && exit 0; sleep 0.25; done
die "the push sink is not listening on $HOST:$PORT (see $STATE_DIR/push-sink.log)"
