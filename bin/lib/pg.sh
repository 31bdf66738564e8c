# Shell helpers to run a throwaway PostgreSQL for bin/demo and bin/bench (sourced, not run).
# initdb refuses to run as root, so as root the server runs as the postgres user.

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

_pg_as() { # run a command as the server's owner
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}

# pg_start DIR PORT: initdb into DIR/data and start on 127.0.0.1:PORT (socket in DIR).
pg_start() {
  local dir=$1 port=$2 bin
  bin=$(pg_bindir)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  _pg_as "'$bin/initdb' -D '$dir/data' -U postgres --auth=trust -E UTF8 >'$dir/initdb.log' 2>&1" ||
    { cat "$dir/initdb.log"; return 1; }
  _pg_as "'$bin/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c fsync=off\" start >/dev/null" ||
    { cat "$dir/server.log"; return 1; }
}

# pg_stop DIR
pg_stop() {
  _pg_as "'$(pg_bindir)/pg_ctl' -D '$1/data' -m fast -w stop"
}

# psql_as PORT DB [psql args...]
psql_as() {
  local port=$1 db=$2
  shift 2
  "$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"
}
