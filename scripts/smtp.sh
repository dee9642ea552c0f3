#!/usr/bin/env bash
# A real SMTP server for the mail tests: aiosmtpd (PyPI, in the venv
# /var/tmp/hearth-venv) running scripts/smtp-sink.py on 127.0.0.1:2526. It
# stores every accepted message as a file in $HEARTH_TEST_MAIL_DIR
# (default /var/tmp/hearth-smtp/mail) and answers 550 for recipients whose
# local part starts with `bounce`, 451 for `tempfail` (see the script).
# Installs aiosmtpd if missing; does nothing if the port already listens.
#
#   scripts/smtp.sh          ensure it runs
#   scripts/smtp.sh stop     stop the one this script started
#
# The API tests (tests/api/mail.rs) read HEARTH_TEST_SMTP (default
# 127.0.0.1:2526) and HEARTH_TEST_MAIL_DIR, and fail when the sink is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

VENV="$HEARTH_VENV"
ADDR="${HEARTH_TEST_SMTP:-127.0.0.1:2526}"
HOST="${ADDR%:*}"
PORT="${ADDR##*:}"
MAIL_DIR="${HEARTH_TEST_MAIL_DIR:-/var/tmp/hearth-smtp/mail}"
STATE_DIR="$(dirname "$MAIL_DIR")"
PIDFILE="$STATE_DIR/smtp-sink.pid"

listening() {
  (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
}

service_verb smtp "$PIDFILE" "${1:-start}" "$HOST" "$PORT"
ensure_venv
"$VENV/bin/python" -c 'import aiosmtpd' 2>/dev/null ||
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==1.4.6"
mkdir -p "$MAIL_DIR"
# Messages from earlier runs older than a day go; tests look only at their own.
find "$MAIL_DIR" -name '*.eml' -mmin +1440 -delete 2>/dev/null || true
say "starting the SMTP sink on $HOST:$PORT (mail in $MAIL_DIR)"
setsid "$VENV/bin/python" scripts/smtp-sink.py --host "$HOST" --port "$PORT" --dir "$MAIL_DIR" \
  >"$STATE_DIR/smtp-sink.log" 2>&1 </dev/null &
echo $! >"$PIDFILE"
for _ in $(seq 1 40); do listening && exit 0; sleep 0.25; done
die "the SMTP sink is not listening on $HOST:$PORT (see $STATE_DIR/smtp-sink.log)"
