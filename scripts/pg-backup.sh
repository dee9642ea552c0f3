#!/usr/bin/env bash
# Backups of a Hearth Postgres database with pg_dump / pg_restore (the SQLite
# backend has `hearth backup` / `hearth restore` instead).
#
#   scripts/pg-backup.sh backup  <database-url> <file>
#   scripts/pg-backup.sh restore <file> <database-url>
#
# backup: `pg_dump --format=custom` (compressed; one consistent snapshot, so
#   it can run while the nodes serve) into <file>.partial, checked by reading
#   its table of contents back (`pg_restore --list`) and by finding Hearth's
#   `schema_migrations` in it, then renamed to <file>. An existing <file> is
#   refused, so a good backup is never overwritten by a failed one.
# restore: checks the file the same way, refuses a target database that has
#   any table (create an empty one: `createdb hearth_restored`), and restores
#   in one transaction (`--single-transaction --exit-on-error`), so a failure
#   leaves the target empty. Ownership and grants are not restored
#   (`--no-owner --no-privileges`): the tables belong to the user restoring.
#   A backup from a newer hearth restores, and the nodes then refuse to start
#   on it ("newer than this binary knows"): restore with the hearth that made it.
#
# Needs pg_dump/pg_restore/psql of the server's major version or newer
# (Debian: postgresql-client). URLs may carry the password; they are passed
# to the tools as arguments, so prefer ~/.pgpass or PGPASSWORD on shared hosts.
set -euo pipefail

die() { printf 'pg-backup: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 is needed (Debian: apt-get install postgresql-client)"; }

check_dump() {
  local file=$1 toc
  [ -s "$file" ] || die "$file is missing or empty"
  toc=$(pg_restore --list "$file" 2>&1) || die "$file is not a usable pg_dump archive: ${toc%%$'\n'*}"
  grep -q 'TABLE DATA [^ ]* schema_migrations ' <<<"$toc" \
    || die "$file has no schema_migrations table: not a Hearth backup"
}

cmd=${1:-}
case "$cmd" in
  backup)
    [ $# -eq 3 ] || die "usage: $0 backup <database-url> <file>"
    need pg_dump; need pg_restore
    url=$2 file=$3
    [ -e "$file" ] && die "$file already exists; choose another file or remove it"
    mkdir -p "$(dirname "$file")"
    start=$(date +%s%N)
    trap 'rm -f "$file.partial"' EXIT
    pg_dump --format=custom --no-owner --no-privileges --file="$file.partial" "$url"
    check_dump "$file.partial"
    sync "$file.partial" 2>/dev/null || sync
    mv "$file.partial" "$file"
    trap - EXIT
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    printf 'backed up to %s (%s bytes) in %d.%03d s\n' "$file" "$(stat -c %s "$file")" $((ms / 1000)) $((ms % 1000))
    ;;
  restore)
    [ $# -eq 3 ] || die "usage: $0 restore <file> <database-url>"
    need pg_restore; need psql
    file=$2 url=$3
    check_dump "$file"
    tables=$(psql "$url" -XAtq -c "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()") \
      || die "cannot reach the target database"
    [ "$tables" = 0 ] || die "the target database has $tables tables: restore into an empty database (createdb a new one); nothing was changed"
    pg_restore --no-owner --no-privileges --single-transaction --exit-on-error --dbname="$url" "$file"
    printf 'restored %s; start the nodes with database_url pointing at it\n' "$file"
    ;;
  *)
    die "usage: $0 backup <database-url> <file> | restore <file> <database-url>"
    ;;
esac
