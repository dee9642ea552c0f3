#!/usr/bin/env bash
# A real OpenID Connect provider for the "Sign in with ..." tests: panva's
# oidc-provider (npm, pinned in scripts/oidc/package.json, installed in
# scripts/oidc/node_modules) running scripts/oidc-provider.mjs on
# 127.0.0.1:9400, issuer http://127.0.0.1:9400. One client, hearth-test /
# hearth-test-secret, redirect_uri http://127.0.0.1:<any port>/api/v1/auth/oidc/callback;
# a GET of the authorization URL with login_hint=<id> answers 302 straight to
# the redirect_uri with a code for the account <id> (<id>@oidc.test);
# POST /test/mode makes the token endpoint hand out defective ID tokens (see
# the script). State, signing key included, is in memory only: a restart
# means a new key.
# Installs the npm packages if missing; does nothing if the port already
# listens. Pidfile and log: /var/tmp/hearth-oidc/oidc-provider-<port>.{pid,log}.
#
#   scripts/oidc.sh          ensure it runs
#   scripts/oidc.sh stop     stop the one this script started
#
# The OIDC tests read HEARTH_TEST_OIDC (default 127.0.0.1:9400) and fail when
# the provider is absent; scripts/oidc-selftest.mjs checks the provider itself.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ADDR="${HEARTH_TEST_OIDC:-127.0.0.1:9400}"
HOST="${ADDR%:*}"
PORT="${ADDR##*:}"
STATE_DIR=/var/tmp/hearth-oidc
# Named by port, so that a second provider on another address keeps its own.
PIDFILE="$STATE_DIR/oidc-provider-$PORT.pid"
LOG="$STATE_DIR/oidc-provider-$PORT.log"

listening() {
  (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
}

# service_verb's stop returns as soon as the signal is sent, and a start
# right after would find the old process still listening and do nothing;
# wait for the port to close so `stop; start` is a real restart.
if [ "${1:-start}" = stop ] && [ -f "$PIDFILE" ]; then
  kill "$(cat "$PIDFILE")" 2>/dev/null || true
  rm -f "$PIDFILE"
  for _ in $(seq 1 40); do listening || exit 0; sleep 0.25; done
  die "the OIDC provider still listens on $HOST:$PORT after being stopped"
fi
service_verb oidc "$PIDFILE" "${1:-start}" "$HOST" "$PORT"
command -v node >/dev/null || die "node is needed for the OIDC provider (install Node.js 20+)"
# Reinstall when the lock file changed since the last install, as build_web does.
if [ ! -d scripts/oidc/node_modules ] || [ scripts/oidc/package-lock.json -nt scripts/oidc/node_modules/.package-lock.json ]; then
  say "installing the OIDC provider's npm packages"
  (cd scripts/oidc && npm ci --no-audit --no-fund --loglevel=error)
fi
mkdir -p "$STATE_DIR"
say "starting the OIDC provider on $HOST:$PORT (log in $LOG)"
HOST="$HOST" PORT="$PORT" setsid node scripts/oidc-provider.mjs \
  >"$LOG" 2>&1 </dev/null &
echo $! >"$PIDFILE"
# Generating the RSA key and loading the package take a few seconds.
for _ in $(seq 1 60); do listening && exit 0; sleep 0.25; done
die "the OIDC provider is not listening on $HOST:$PORT (see $LOG)"
