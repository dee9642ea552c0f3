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

# The Python venv the test tools share ($HEARTH_VENV, default
# /var/tmp/hearth-venv), made (with python3-venv installed) if missing.
HEARTH_VENV="${HEARTH_VENV:-/var/tmp/hearth-venv}"
ensure_venv() {
  [ -x "$HEARTH_VENV/bin/python" ] && return 0
  command -v python3 >/dev/null || apt_install python3 python3-venv
  python3 -m venv "$HEARTH_VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$HEARTH_VENV"; }
}

# For the scripts that run a local test service (coturn, moto, the SMTP
# sink): `service_verb NAME PIDFILE VERB HOST PORT` stops it for `stop`
# (exiting), exits for `start` when HOST:PORT already listens, returns
# to start it otherwise.
service_verb() {
  local name=$1 pidfile=$2 verb=$3 host=$4 port=$5
  case "$verb" in
    stop)
      if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; rm -f "$pidfile"; fi
      exit 0
      ;;
    start) ;;
    *) die "usage: scripts/$name.sh [start|stop]" ;;
  esac
  if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then exit 0; fi
}
