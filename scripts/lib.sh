# Shared helpers for scripts/run.sh and scripts/test.sh. Sourced, not run.

# Builds are the scarce resource: keep them outside the clone so every clone reuses them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hearth-target}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi
}

apt_install() {
  say "installing $*"
  if [ -z "${HEARTH_APT_UPDATED:-}" ]; then as_root apt-get update -qq >/dev/null; export HEARTH_APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# Builds the web app when its sources are newer than the last build.
build_web() {
  [ -f web/package.json ] || return 0
  command -v npm >/dev/null || die "npm is needed to build the web app (install Node.js 20+)"
  local stamp=web/out/index.html
  if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
    say "installing web dependencies"
    (cd web && npm ci --no-audit --no-fund --loglevel=error)
  fi
  if [ ! -f "$stamp" ] || [ -n "$(find web/src web/app web/public web/next.config.* web/package.json docs/openapi.json -newer "$stamp" 2>/dev/null | head -n 1)" ]; then
    say "building the web app"
    (cd web && npm run --silent build)
  fi
}
