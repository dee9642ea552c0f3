#!/usr/bin/env bash
# The file to ship: `hearth` with the web app compiled in, built with the `dist` profile
# (release + fat LTO, one codegen unit, debug info stripped; Cargo.toml), checked by
# serving every file of the app from an empty directory (scripts/embedded-web-check.sh).
#
#   scripts/release.sh            builds $CARGO_TARGET_DIR/dist/hearth and checks it
#
# A cold build takes a while on a small machine (docs/benchmarks.md has the time).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

build_web
say "building hearth (dist profile, web app embedded)"
start=$(date +%s)
# This checkout's web/out, named (see scripts/embedded-web-check.sh).
HEARTH_EMBED_WEB_DIR="$PWD/web/out" cargo build --locked --profile dist --bin hearth --features hearth/embed-web
bin="$CARGO_TARGET_DIR/dist/hearth"
say "built in $(( $(date +%s) - start )) s: $bin, $(stat -c %s "$bin") bytes"
scripts/embedded-web-check.sh "$bin"
