#!/usr/bin/env bash
# Validates the deployment files without Docker or Kubernetes:
#   rules      promtool check rules + promtool test rules (deploy/prometheus)
#   dashboard  deploy/grafana/hearth.json is JSON, every expression parses as
#              PromQL (promtool) and names only metrics that exist
#              (deploy/check_metrics.py)
#   compose    docker/compose.yml: `docker-compose config` (Debian's 1.29,
#              no engine needed) and the compose-spec parser (PyPI compose-spec,
#              strict) on the result; nginx -t on docker/nginx/nginx.conf
#   helm       deploy/helm/check.py: Helm's own lint --strict and template
#              (PyPI helm-python-sdk, Helm v4 as a library) and the Kubernetes
#              schemas (PyPI kubernetes-validate), for the default values and
#              every ci/*-values.yaml
#   scripts/check-deploy.sh [rules|dashboard|compose|helm]...   (default: all)
# Tools are installed when missing: Debian packages with apt, Python packages
# in virtualenvs under /var/tmp/hearth-tools.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

TOOLS=/var/tmp/hearth-tools
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(rules dashboard compose helm)

need_promtool() { command -v promtool >/dev/null || apt_install prometheus; }

# A virtualenv with the given packages; its python on stdout. $1: minimum Python minor (3.x).
venv() {
  local name="$1" minor="$2"
  shift 2
  local dir="$TOOLS/$name" py=""
  if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import sys; sys.exit(0)' 2>/dev/null; then
    local c
    for c in python3 python3.13 python3.12 "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3; do
      if command -v "$c" >/dev/null 2>&1 && "$c" -c "import sys, venv; sys.exit(sys.version_info < (3, $minor))" 2>/dev/null; then
        py="$(command -v "$c")"
        break
      fi
    done
    [ -n "$py" ] || die "no Python 3.$minor+ with venv for $name (install python3-venv or a newer Python)"
    say "creating $dir ($("$py" --version))"
    "$py" -m venv "$dir" >&2
  fi
  "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@" >&2
  echo "$dir/bin/python"
}

check_rules() {
  need_promtool
  say "prometheus: promtool check rules / test rules"
  promtool check rules deploy/prometheus/alerts.yml
  promtool test rules deploy/prometheus/alerts_test.yml
}

check_dashboard() {
  need_promtool
  say "grafana: dashboard JSON, PromQL and metric names"
  local tmp
  tmp="$(mktemp -d)"
  # Every panel expression as a recording rule, so promtool parses it
  # (Grafana's variables replaced by what they expand to).
  python3 - "$tmp/dashboard-rules.yml" <<'PY'
import json, sys
dash = json.load(open("deploy/grafana/hearth.json"))
def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))
rules = []
for p in panels(dash["panels"]):
    for t in p.get("targets", []):
        e = t["expr"].replace("$__rate_interval", "5m").replace("$instance", ".*")
        rules.append({"record": "dashboard:panel_%d_%s" % (p["id"], t["refId"]), "expr": e})
json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[1], "w"))
print(f"dashboard: {len(rules)} expressions")
PY
  promtool check rules "$tmp/dashboard-rules.yml"
  rm -rf "$tmp"
  python3 deploy/check_metrics.py
}

check_compose() {
  say "compose: docker-compose config, compose-spec, nginx -t"
  command -v docker-compose >/dev/null || apt_install docker-compose
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx
  local py tmp
  py="$(venv compose 10 compose-spec)"
  tmp="$(mktemp -d)"
  HEARTH_JWT_SECRET=0123456789abcdef0123456789abcdef-validation \
    docker-compose -f docker/compose.yml config >"$tmp/compose.yml"
  "$py" - "$tmp/compose.yml" <<'PY'
import sys
from compose_spec import PyCompose
c = PyCompose.from_yaml(open(sys.argv[1]).read())
print(f"compose-spec: valid, services: {', '.join(sorted(c.service_names()))}")
PY
  # The container's nginx.conf with local paths (names resolved by the
  # container's DNS become 127.0.0.1 here).
  mkdir -p "$tmp/nginx"
  sed -e "s#/etc/nginx/hearth/upstream.conf#$tmp/nginx/upstream.conf#" -e "s#pid /tmp/nginx.pid#pid $tmp/nginx/nginx.pid#" \
    -e "s#/etc/nginx/hearth/search-upstream.conf#$tmp/nginx/search-upstream.conf#" \
    -e "s#/dev/stderr#$tmp/nginx/error.log#" -e "s#/dev/stdout#$tmp/nginx/access.log#" \
    docker/nginx/nginx.conf >"$tmp/nginx/nginx.conf"
  printf 'server 127.0.0.1:8081 max_fails=2 fail_timeout=10s;\nserver 127.0.0.1:8082 down;\n' >"$tmp/nginx/upstream.conf"
  printf 'server 127.0.0.1:8081 max_fails=2 fail_timeout=10s;\n' >"$tmp/nginx/search-upstream.conf"
  "$(command -v nginx || echo /usr/sbin/nginx)" -t -q -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" 2>/dev/null ||
    die "nginx -t rejected docker/nginx/nginx.conf: $(cat "$tmp/nginx/error.log")"
  echo "nginx -t: docker/nginx/nginx.conf ok"
  check_routes "$tmp"
  python3 -c 'import json; json.load(open("docker/nats/log-stream.json"))'
  rm -rf "$tmp"
}

# The container's nginx.conf, run: searches reach the search role's nodes, everything else
# the node list. Two stand-in nodes (Python's http.server) say who answered.
check_routes() {
  local tmp="$1" nginx port a b pids=() who
  nginx="$(command -v nginx || echo /usr/sbin/nginx)"
  read -r port a b < <(python3 -c 'import socket
ps = []
for _ in range(3):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ps.append(s)
print(*[s.getsockname()[1] for s in ps])')
  for n in a b; do
    local root="$tmp/node-$n"
    mkdir -p "$root/api/v1/communities/7/messages" "$root/api/v1/dms/messages" "$root/api/v1/channels/9"
    for f in api/v1/communities/7/messages/search api/v1/dms/messages/search api/v1/channels/9/messages api/v1/users; do
      echo "$n" >"$root/$f"
    done
  done
  python3 -m http.server "$a" --bind 127.0.0.1 --directory "$tmp/node-a" >/dev/null 2>&1 & pids+=($!)
  python3 -m http.server "$b" --bind 127.0.0.1 --directory "$tmp/node-b" >/dev/null 2>&1 & pids+=($!)
  local p
  for p in "$a" "$b"; do
    for _ in $(seq 100); do
      curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/api/v1/users" && break
      sleep 0.1
    done
  done
  printf 'server 127.0.0.1:%s;\n' "$a" >"$tmp/nginx/upstream.conf"
  printf 'server 127.0.0.1:%s;\n' "$b" >"$tmp/nginx/search-upstream.conf"
  sed -e "s#listen 8090;#listen 127.0.0.1:$port;#" "$tmp/nginx/nginx.conf" >"$tmp/nginx/routes.conf"
  "$nginx" -p "$tmp/nginx" -c "$tmp/nginx/routes.conf" -e "$tmp/nginx/error.log" 2>/dev/null ||
    { kill "${pids[@]}"; die "nginx did not start: $(cat "$tmp/nginx/error.log")"; }
  pids+=("$(cat "$tmp/nginx/nginx.pid")")
  local path want bad=""
  for path in communities/7/messages/search:b dms/messages/search:b channels/9/messages:a users:a; do
    want="${path##*:}"
    path="/api/v1/${path%:*}"
    who="$(curl -s --max-time 5 "http://127.0.0.1:$port$path?q=x" || true)"
    [ "$who" = "$want" ] || bad+=" $path→'$who' (want $want)"
  done
  # hearth-lb.sh's lists (NGINX=true: it writes them and stops): a, whose /readyz
  # answers, is up; b, whose does not, is down on the node list and kept on the search
  # list, where it is the only node (none ready: all stay in).
  echo ok >"$tmp/node-a/readyz"
  HEARTH_NODES="127.0.0.1:$a 127.0.0.1:$b" HEARTH_SEARCH_NODES="127.0.0.1:$b" \
    HEARTH_UPSTREAM="$tmp/lb/upstream.conf" NGINX=true bash docker/nginx/hearth-lb.sh >/dev/null
  grep -qx "server 127.0.0.1:$a max_fails=2 fail_timeout=10s;" "$tmp/lb/upstream.conf" &&
    grep -q "^server 127.0.0.1:$b .* down;" "$tmp/lb/upstream.conf" &&
    grep -qx "server 127.0.0.1:$b max_fails=2 fail_timeout=10s;" "$tmp/lb/search-upstream.conf" &&
    [ "$(wc -l <"$tmp/lb/search-upstream.conf")" = 1 ] ||
    bad+=" hearth-lb.sh wrote: $(cat "$tmp/lb/upstream.conf" "$tmp/lb/search-upstream.conf")"
  kill "${pids[@]}" 2>/dev/null || true
  [ -z "$bad" ] || die "nginx routes:$bad"
  echo "nginx routes: searches to the search role, the rest to every node; hearth-lb.sh writes both lists"
}

check_helm() {
  say "helm: lint --strict, template, Kubernetes schemas"
  local py
  py="$(venv helm 12 helm-python-sdk kubernetes-validate pyyaml)"
  "$py" deploy/helm/check.py
}

for p in "${parts[@]}"; do
  case "$p" in
    rules) check_rules ;;
    dashboard) check_dashboard ;;
    compose) check_compose ;;
    helm) check_helm ;;
    *) die "unknown part '$p' (rules, dashboard, compose, helm)" ;;
  esac
done
say "deployment files valid (${parts[*]})"
