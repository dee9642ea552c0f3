#!/usr/bin/env bash
# A TURN server for the voice tests: coturn on 127.0.0.1:3478 (UDP and TCP, no TLS),
# TURN REST credentials (use-auth-secret) with a fixed test secret, relays on
# 127.0.0.1:49160-49200, loopback peers allowed (the SFU listens on 127.0.0.1).
# Installs Debian's coturn if missing; does nothing if 3478 is already listening.
#
#   scripts/coturn.sh          ensure it runs (prints the secret's env line)
#   scripts/coturn.sh stop     stop the one this script started
#
# The e2e suite passes the same secret to hearth (HEARTH_TURN_SECRET) and reads it
# from HEARTH_E2E_TURN_SECRET (default below).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

SECRET="${HEARTH_E2E_TURN_SECRET:-hearth-e2e-turn-secret}"
LOG_DIR="${HEARTH_COTURN_LOG_DIR:-/tmp/hearth-coturn}"
PIDFILE="$LOG_DIR/turnserver.pid"

listening() {
  # UDP can't be probed with /dev/tcp; coturn also listens on TCP 3478.
  (exec 3<>/dev/tcp/127.0.0.1/3478) 2>/dev/null
}

# UDP can't be probed with /dev/tcp; coturn also listens on TCP 3478.
service_verb coturn "$PIDFILE" "${1:-start}" 127.0.0.1 3478
command -v turnserver >/dev/null || apt_install coturn
mkdir -p "$LOG_DIR"
say "starting coturn on 127.0.0.1:3478 (logs in $LOG_DIR)"
# In the background with its log on stdout (coturn's own --log-file/--daemon pair wrote
# nowhere here); setsid so it outlives this shell.
setsid turnserver \
  --listening-ip=127.0.0.1 --listening-port=3478 --relay-ip=127.0.0.1 \
  --use-auth-secret --static-auth-secret="$SECRET" --realm=hearth.test \
  --no-tls --no-dtls --no-cli --allow-loopback-peers --fingerprint \
  --min-port=49160 --max-port=49200 \
  --log-file=stdout --pidfile="$PIDFILE" \
  >"$LOG_DIR/turnserver.log" 2>&1 </dev/null &
for _ in $(seq 1 40); do listening && exit 0; sleep 0.25; done
die "coturn is not listening on 127.0.0.1:3478 (see $LOG_DIR)"
