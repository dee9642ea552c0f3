#!/usr/bin/env bash
# One file to ship (issue 14): a `hearth` built with the embed-web feature serves the
# whole web app from memory, started in an empty directory with nothing beside it.
#
#   scripts/embedded-web-check.sh [BINARY]
#
# Without BINARY it builds one (debug, `--features hearth/embed-web`; the web app must be
# built, as scripts/test.sh does first) and afterwards puts the plain debug binary back
# at $CARGO_TARGET_DIR/debug/hearth (cargo keeps both builds; that is a relink at most).
# Every file of web/out is fetched and compared byte for byte, gzip-decoded where the
# server compressed it; HTML pages carry the same CSP as from disk (their inline
# scripts' hashes); revalidation answers 304; unknown paths get the app's 404 page.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

[ -f web/out/index.html ] || die "web/out is not built: npm --prefix web ci && npm --prefix web run build"
command -v curl >/dev/null || apt_install curl

work="$(mktemp -d /tmp/hearth-embed.XXXXXX)"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

bin="${1:-}"
if [ -z "$bin" ]; then
  say "building hearth with the web app compiled in (debug)"
  # Named explicitly, so the build is this checkout's: two checkouts sharing one
  # CARGO_TARGET_DIR build the same units, and cargo would otherwise take the other
  # checkout's embedded app as fresh (its build script watched that checkout's web/out).
  HEARTH_EMBED_WEB_DIR="$PWD/web/out" cargo build --quiet --bin hearth --features hearth/embed-web
  cp "$CARGO_TARGET_DIR/debug/hearth" "$work/hearth"
  cargo build --quiet --bin hearth
  bin="$work/hearth"
fi

# An empty directory: no web/out beside it, no config file.
mkdir -p "$work/run"
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
(cd "$work/run" && HEARTH_LISTEN="127.0.0.1:$port" HEARTH_DATA_DIR="$work/run/data" \
  HEARTH_LOG_LEVEL=warn exec "$bin" serve) >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sf -o /dev/null "$base/readyz" && break; sleep 0.2; done
curl -sf -o /dev/null "$base/readyz" || die "hearth did not start: $(tail -n 20 "$work/server.log")"

fail() { die "$*"; }
checked=0 gz=0
while IFS= read -r -d '' f; do
  rel="${f#web/out/}"
  url="$base/$rel"
  curl -s -D "$work/h" -o "$work/body" -H 'Accept-Encoding: gzip' "$url"
  status=$(head -n 1 "$work/h" | awk '{print $2}')
  [ "$status" = 200 ] || fail "$rel: status $status"
  if grep -qi '^content-encoding: gzip' "$work/h"; then
    gzip -dc <"$work/body" >"$work/plain" || fail "$rel: not valid gzip"
    gz=$((gz + 1))
  else
    mv "$work/body" "$work/plain"
  fi
  cmp -s "$work/plain" "$f" || fail "$rel: the bytes served differ from web/out"
  checked=$((checked + 1))
done < <(find web/out -type f -print0)
echo "embedded: all $checked files of web/out served identically ($gz gzip-encoded)"

# A page by its route: HTML with the strict policy, its inline scripts' hashes allowed.
curl -s -D "$work/h" -o "$work/login" "$base/login"
grep -qi '^content-type: text/html' "$work/h" || fail "/login is not HTML"
csp=$(grep -i '^content-security-policy:' "$work/h" | tr -d '\r')
[[ $csp == *"object-src 'none'"* && $csp == *"frame-ancestors 'none'"* ]] || fail "/login: no strict CSP ($csp)"
cmp -s "$work/login" web/out/login.html || fail "/login is not web/out/login.html"
hashes=$(grep -o "'sha256-[^']*'" <<<"$csp" | wc -l)
[ "$hashes" -gt 0 ] || fail "/login: the CSP allows no inline script hashes"
grep -qi '^cache-control: no-cache' "$work/h" || fail "/login: HTML must be revalidated (no-cache)"
echo "embedded: /login is HTML with the strict CSP ($hashes inline script hashes)"

# Revalidation: the ETag answers 304 without a body.
etag=$(grep -i '^etag:' "$work/h" | cut -d' ' -f2- | tr -d '\r')
[ -n "$etag" ] || fail "/login: no ETag"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$base/login")
[ "$code" = 304 ] || fail "/login with If-None-Match: $code, not 304"
echo "embedded: If-None-Match answers 304"

# Hashed assets are kept for a year; a client without gzip gets the plain bytes.
asset=$(find web/out/_next/static -name '*.js' -size +2k | head -n 1)
curl -s -D "$work/h" -o "$work/plain" "$base/${asset#web/out/}"
grep -qi '^cache-control: public, max-age=31536000, immutable' "$work/h" || fail "$asset: not cached as immutable"
grep -qi '^content-encoding' "$work/h" && fail "$asset: encoded for a client that asked for none"
cmp -s "$work/plain" "$asset" || fail "$asset: plain bytes differ"

# An unknown path: the app's own 404 page, with status 404.
code=$(curl -s -o "$work/404" -w '%{http_code}' "$base/no/such/page")
[ "$code" = 404 ] || fail "/no/such/page: $code, not 404"
cmp -s "$work/404" web/out/404.html || fail "/no/such/page is not the app's 404 page"

# The API is there too.
curl -sf "$base/api/v1/openapi.json" -o /dev/null || fail "no API beside the embedded app"
echo "embedded: ok ($(du -h "$bin" | cut -f1) binary, run from an empty directory)"
