#!/usr/bin/env bash
# Runs Hearth: builds the web app if needed, then the server in release mode.
# Embedded defaults: SQLite in ./data, in-process bus, http://127.0.0.1:8080.
# Extra arguments go to `hearth serve` (e.g. --listen 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

build_web || say "the web app could not be built; the server will start without it"
say "building and starting hearth"
exec cargo run --release --quiet --bin hearth -- serve "$@"
