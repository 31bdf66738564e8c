# Shell helpers to run a throwaway PostgreSQL for bin/demo and bin/bench (sourced after
# setup.sh, not run). initdb refuses to run as root, so as root the server runs as the postgres user.

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

_pg_as() { # run a shell command line as the server's owner
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}

# pg_start DIR PORT: initdb into DIR/data and start on 127.0.0.1:PORT (socket in DIR).
pg_start() {
  local dir=$1 port=$2 bin
  bin=$(pg_bindir) || { echo "pg_start: PostgreSQL programs not found (ensure_packages installs them)" >&2; return 1; }
  mkdir -p "$dir" || return 1
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$dir" || return 1
    # The postgres user must get through the caller's (often private) temporary directory.
    chmod a+x "$(dirname "$dir")"
    _pg_as "test -w '$dir'" || { echo "pg_start: the postgres user cannot write to $dir (a parent directory is private)" >&2; return 1; }
  fi
  # Logs are written by this shell, so they exist even when the postgres user cannot write.
  _pg_as "'$bin/initdb' -D '$dir/data' -U postgres --auth=trust -E UTF8 --no-sync" >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; echo "pg_start: initdb failed" >&2; return 1; }
  _pg_as "'$bin/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c fsync=off\" start" >"$dir/pg_ctl.log" 2>&1 ||
    { cat "$dir/pg_ctl.log" "$dir/server.log" >&2 2>/dev/null; echo "pg_start: pg_ctl start failed" >&2; return 1; }
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
