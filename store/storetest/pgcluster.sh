#!/usr/bin/env bash
# pgcluster.sh start DIR | stop DIR
#
# Runs a throwaway PostgreSQL cluster for tests, everything under DIR (data
# directory, Unix socket, log): trust auth, superuser postgres, on
# 127.0.0.1 at a free port, with durability off for speed. "start" prints
# the server's URL as its last line on stdout; "stop" shuts it down fast if
# it runs, and removes nothing. Run as root, the server runs as the user
# postgres (initdb refuses root) and DIR is given to that user.
#
# Binaries: $HERALD_PG_BINDIR if set (only there), else the newest
# /usr/lib/postgresql/*/bin (Debian), else `pg_config --bindir`, else PATH.
# Exit status 3 means no PostgreSQL binaries were found.
set -euo pipefail

die() { echo "pgcluster.sh: $*" >&2; exit 1; }

[ $# -eq 2 ] && { [ "$1" = start ] || [ "$1" = stop ]; } || die "usage: pgcluster.sh start|stop DIR"
cmd=$1
[ -d "$2" ] || die "$2 is not a directory"
dir=$(cd "$2" 2>/dev/null && pwd) || die "cannot enter $2"

find_bindir() {
  local d
  if [ -n "${HERALD_PG_BINDIR:-}" ]; then
    [ -x "$HERALD_PG_BINDIR/initdb" ] && echo "$HERALD_PG_BINDIR"
    return
  fi
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1) || true
  [ -n "$d" ] && [ -x "$d/initdb" ] && { echo "$d"; return; }
  d=$(pg_config --bindir 2>/dev/null) && [ -x "$d/initdb" ] && { echo "$d"; return; }
  d=$(command -v initdb 2>/dev/null) && dirname "$d"
}
bin=$(find_bindir) || true
for b in initdb pg_ctl pg_isready; do
  if [ -z "$bin" ] || [ ! -x "$bin/$b" ]; then
    echo "pgcluster.sh: PostgreSQL binaries not found in ${HERALD_PG_BINDIR:-/usr/lib/postgresql/*/bin, pg_config --bindir or PATH}: apt-get install postgresql" >&2
    exit 3
  fi
done

# as: the prefix that runs a command as the cluster's owner.
as=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || die "running as root needs a user postgres to run the server (Debian's postgresql package creates it)"
  if command -v runuser >/dev/null; then as=(runuser -u postgres --)
  else as=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  fi
fi

data=$dir/data log=$dir/postgres.log
if [ "$cmd" = stop ]; then
  "${as[@]}" "$bin/pg_ctl" status -D "$data" >/dev/null 2>&1 || exit 0 # nothing to stop
  "${as[@]}" "$bin/pg_ctl" stop -D "$data" -m fast -w >/dev/null
  exit 0
fi

[ -e "$data" ] && die "$data already exists"
[ ${#as[@]} -eq 0 ] || chown postgres: "$dir"
"${as[@]}" test -w "$dir" || die "user $("${as[@]}" id -un) cannot write $dir (is a parent directory closed to it?)"
"${as[@]}" mkdir -p "$dir/socket"
"${as[@]}" touch "$log"
show_log() { [ -f "$log" ] && tail -n 30 "$log" >&2; die "$1 (log: $log)"; }

locale=--no-locale
locale -a 2>/dev/null | grep -qix 'c.utf-\?8' && locale=--locale=C.UTF-8
"${as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 "$locale" --no-sync >>"$log" 2>&1 ||
  show_log "initdb failed"
cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/socket'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF

# Pick a port nothing answers on; if another process binds it first, try
# again with another.
for attempt in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 40000))
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
  if "${as[@]}" "$bin/pg_ctl" start -D "$data" -l "$log" -o "-p $port" -w -t 60 >/dev/null 2>&1; then
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 30 || show_log "server on port $port is not accepting connections"
    echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
    exit 0
  fi
  tail -n 5 "$log" | grep -q 'could not bind\|Address already in use' || show_log "server failed to start"
done
show_log "no free port found"
