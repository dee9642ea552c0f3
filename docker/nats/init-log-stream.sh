#!/bin/sh
# Creates the bus log stream replicated on three servers before any node
# starts (a node creates it with one replica when it is missing, and uses an
# existing one as it is). Runs in the natsio/nats-box image; idempotent.
set -eu
S="${NATS_URL:-nats://nats-1:4222}"
STREAM="${HEARTH_LOG_STREAM:-HEARTH_LOG}"
i=0
until nats --server "$S" account info >/dev/null 2>&1; do
  i=$((i + 1)); [ "$i" -lt 60 ] || { echo "JetStream not ready at $S" >&2; exit 1; }
  sleep 1
done
if nats --server "$S" stream info "$STREAM" >/dev/null 2>&1; then
  echo "stream $STREAM exists"
else
  nats --server "$S" stream add "$STREAM" --config /etc/hearth/log-stream.json
fi
