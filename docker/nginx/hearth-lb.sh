#!/bin/bash
# Entrypoint of the nginx container in docker/compose.yml: nginx plus an
# active readiness check, which open-source nginx lacks. Every 2 s each node's
# /readyz is asked (plain bash, no curl needed); when the set of ready nodes
# changes the upstream list is rewritten (a failing node marked `down`, a name
# that does not resolve left out; when none is ready, all stay in) and nginx reloaded.
#   HEARTH_NODES        "host:port ..." (default: hearth-1:8080 hearth-2:8080 hearth-3:8080)
#   HEARTH_SEARCH_NODES the nodes in the search role, which keep a search index and answer
#                       the search endpoints (default: every node of HEARTH_NODES; see
#                       docs/operations.md, "The search role")
#   HEARTH_UPSTREAM     the file nginx.conf includes (default /etc/nginx/hearth/upstream.conf)
#   HEARTH_SEARCH_UPSTREAM  the search nodes' list (default: search-upstream.conf beside it)
#   NGINX               nginx command line (default: nginx)
set -u
NODES="${HEARTH_NODES:-hearth-1:8080 hearth-2:8080 hearth-3:8080}"
UPSTREAM="${HEARTH_UPSTREAM:-/etc/nginx/hearth/upstream.conf}"
SEARCH_NODES="${HEARTH_SEARCH_NODES:-$NODES}"
SEARCH_UPSTREAM="${HEARTH_SEARCH_UPSTREAM:-$(dirname "$UPSTREAM")/search-upstream.conf}"
# Every node checked once, whichever lists it is on.
# shellcheck disable=SC2086 # the lists are split into names on purpose
read -r -a CHECKED <<<"$(printf '%s\n' $NODES $SEARCH_NODES | awk '!seen[$0]++' | tr '\n' ' ')"
read -r -a NGINX <<<"${NGINX:-nginx}"
INTERVAL="${HEARTH_CHECK_INTERVAL:-2}"

ready() { # ready host:port → /readyz answered 200 within 2 s
  local host="${1%:*}" port="${1##*:}"
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "GET /readyz HTTP/1.0\r\nHost: %s\r\n\r\n" "$0" >&3
    IFS= read -r status <&3
    case "$status" in "HTTP/1."?" 200"*) exit 0 ;; *) exit 1 ;; esac
  ' "$host" "$port" 2>/dev/null
}

resolves() { getent hosts "${1%:*}" >/dev/null 2>&1; }

write_list() { # write_list FILE "nodes" "ready nodes"
  local file="$1" nodes="$2" n any="" out="" ready=" $3 "
  # None of them ready: a part every node shares (Postgres, Redis, NATS) is down. Keep
  # them all in: each answers 503 `unavailable` in the API's shape (nginx alone would
  # answer 502 with its own page), and the first to recover serves at once.
  ready_here "$nodes" "$3" || ready=" $nodes "
  for n in $nodes; do
    if ! resolves "$n"; then
      out+="# server $n: name does not resolve"$'\n'
    elif [[ "$ready" == *" $n "* ]]; then
      out+="server $n max_fails=2 fail_timeout=10s;"$'\n'
      any=1
    else
      out+="server $n max_fails=2 fail_timeout=10s down; # /readyz failed"$'\n'
      any=1
    fi
  done
  # An upstream needs a server: with none resolvable, one that is down.
  [ -n "$any" ] || out+="server 127.0.0.1:9 down;"$'\n'
  mkdir -p "$(dirname "$file")"
  printf '%s' "$out" >"$file.new" && mv -f "$file.new" "$file"
}

ready_here() { # ready_here "nodes" "ready nodes" → is any of the nodes ready
  local n
  for n in $1; do [[ " $2 " == *" $n "* ]] && return 0; done
  return 1
}

write_upstream() { # write_upstream "ready nodes": both lists
  write_list "$UPSTREAM" "$NODES" "$1"
  write_list "$SEARCH_UPSTREAM" "$SEARCH_NODES" "$1"
}

check_all() {
  local n r=""
  for n in "${CHECKED[@]}"; do ready "$n" && r+="$n "; done
  echo "${r% }"
}

last="$(check_all)"
write_upstream "$last"
echo "hearth-lb: ready nodes: [$last]"
"${NGINX[@]}" -g 'daemon off;' &
nginx_pid=$!
trap 'kill -QUIT "$nginx_pid" 2>/dev/null; wait "$nginx_pid"; exit 0' TERM INT QUIT

while kill -0 "$nginx_pid" 2>/dev/null; do
  sleep "$INTERVAL" &
  wait $!
  now="$(check_all)"
  if [ "$now" != "$last" ]; then
    write_upstream "$now"
    if "${NGINX[@]}" -s reload; then
      echo "hearth-lb: ready nodes: [$now] (reloaded)"
      last="$now"
    else
      echo "hearth-lb: ready nodes: [$now] (reload failed: nginx keeps the previous list; retrying)"
    fi
  fi
done
wait "$nginx_pid"
