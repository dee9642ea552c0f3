#!/usr/bin/env bash
# An S3-compatible server for the blob-store tests: moto in server mode (PyPI
# `moto[server]`, in the venv the test command shares) on 127.0.0.1:${HEARTH_MOTO_PORT:-5055}.
# Installs moto into the venv if missing; does nothing if the port is already listening.
# The tests read the endpoint from HEARTH_TEST_S3_URL (default http://127.0.0.1:5055);
# each test makes its own bucket.
#
#   scripts/moto.sh          ensure it runs
#   scripts/moto.sh stop     stop the one this script started
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

PORT="${HEARTH_MOTO_PORT:-5055}"
VENV="$HEARTH_VENV"
LOG_DIR="${HEARTH_MOTO_LOG_DIR:-/tmp/hearth-moto}"
PIDFILE="$LOG_DIR/moto.pid"
MOTO_VERSION="5.2.5"

listening() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

service_verb moto "$PIDFILE" "${1:-start}" 127.0.0.1 "$PORT"
ensure_venv
[ -x "$VENV/bin/moto_server" ] ||
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
mkdir -p "$LOG_DIR"
say "starting moto (S3) on 127.0.0.1:$PORT (logs in $LOG_DIR)"
# setsid so it outlives this shell; its pid is what `stop` kills.
setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$LOG_DIR/moto.log" 2>&1 </dev/null &
echo $! >"$PIDFILE"
for _ in $(seq 1 80); do listening && exit 0; sleep 0.25; done
die "moto is not listening on 127.0.0.1:$PORT (see $LOG_DIR)"
