# Shared setup for bin/test, bin/demo and bin/bench (sourced, not run): installs what is missing,
# idempotently, and returns at once when everything is already there. Every function prints what
# went wrong and returns non-zero on failure.

PGOFFSITE_CACHE=${PGOFFSITE_CACHE:-$HOME/.cache/pgoffsite}
export PGOFFSITE_CACHE
# Pinned; internal/testenv names the same versions in its messages.
MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
TOXIPROXY_MODULE=github.com/Shopify/toxiproxy/v2
TOXIPROXY_VERSION=v2.5.0
HEROKU_CLI_VERSION=11.10.0
FAKE_GCS_MODULE=github.com/fsouza/fake-gcs-server
FAKE_GCS_VERSION=v1.56.1
SEAWEEDFS_MODULE=github.com/seaweedfs/seaweedfs
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6

_setup_fail() { echo "setup: $*" >&2; return 1; }

# _as_root CMD...: runs CMD as root, through sudo when not root.
_as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else _setup_fail "need root (or sudo) to run: $*"
  fi
}

# pg_bindir prints the directory of the PostgreSQL server and client programs: pg_config's,
# else the newest /usr/lib/postgresql/N/bin.
pg_bindir() {
  local d
  _pg_complete() { [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ] && [ -x "$1/psql" ] && [ -x "$1/pg_dump" ] && [ -x "$1/pg_restore" ]; }
  if command -v pg_config >/dev/null && d=$(pg_config --bindir 2>/dev/null) && _pg_complete "$d"; then
    echo "$d"
    return 0
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -n -r); do
    _pg_complete "$d" && { echo "$d"; return 0; }
  done
  return 1
}

# ensure_packages [awscli]: the Debian packages the tests and the demo need — PostgreSQL 15
# (server and client tools), curl, python3, an OpenSSH server, age and chromium — and with "awscli" those the benchmarks add (the
# AWS CLI to compare with, GNU time to measure). apt-get update runs only when something is missing.
ensure_packages() {
  local want=() log
  pg_bindir >/dev/null || want+=(postgresql)
  command -v curl >/dev/null || want+=(curl)
  command -v python3 >/dev/null || want+=(python3)
  # An SSH server for the SFTP destination's tests, and age: the reference decrypter.
  [ -x /usr/sbin/sshd ] || want+=(openssh-server)
  command -v ssh-keygen >/dev/null || want+=(openssh-client)
  command -v age >/dev/null || want+=(age)
  # A real browser for the HTML status report's tests.
  command -v chromium >/dev/null || want+=(chromium)
  if [ "${1:-}" = awscli ]; then
    [ -x /usr/bin/aws ] || want+=(awscli)
    [ -x /usr/bin/time ] || want+=(time)
  fi
  _apt_install "${want[@]}"
}

# ensure_demo_packages: only what bin/demo uses — PostgreSQL (server and client tools) and
# python3 (a free port) — nothing the tests alone need (no browser, no SSH server).
ensure_demo_packages() {
  local want=()
  pg_bindir >/dev/null || want+=(postgresql)
  command -v python3 >/dev/null || want+=(python3)
  _apt_install "${want[@]}"
}

# _apt_install PACKAGE...: installs the Debian packages named (none: returns at once), without
# leaving their servers running or enabled as system services: the tests and the demo start
# their own PostgreSQL and sshd, on ports of their own.
_apt_install() {
  local log
  [ $# -eq 0 ] && return 0
  echo "==> apt-get install $*"
  log=$(mktemp)
  if ! { _as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
         _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    _setup_fail "apt-get install $* failed (output above)"
    return 1
  fi
  rm -f "$log"
  # Debian starts a cluster of its own on install; the tests start theirs.
  if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
      _as_root pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
    done
  fi
  # openssh-server enables and starts sshd as a system service: the SFTP tests run their own.
  case " $* " in *" openssh-server "*)
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      _as_root systemctl disable --now ssh.service >/dev/null 2>&1 || true
    elif [ -x /usr/sbin/service ]; then
      _as_root service ssh stop >/dev/null 2>&1 || true
      _as_root update-rc.d ssh disable >/dev/null 2>&1 || true
    fi
    ;;
  esac
  pg_bindir >/dev/null || { _setup_fail "postgresql installed but initdb/pg_ctl/psql/pg_dump/pg_restore not found"; return 1; }
}

# _go_install NAME MODULE PACKAGE VERSION [GOFLAGS]: builds PACKAGE@VERSION into
# $PGOFFSITE_CACHE/bin/NAME unless that binary is already that module version.
_go_install() {
  local name=$1 module=$2 pkg=$3 version=$4 flags=${5:-} bin tmp log
  bin=$PGOFFSITE_CACHE/bin/$name
  if [ -x "$bin" ] && go version -m "$bin" 2>/dev/null | awk -v m="$module" -v v="$version" '$1=="mod" && $2==m && $3==v {ok=1} END {exit !ok}'; then
    return 0
  fi
  command -v go >/dev/null || { _setup_fail "go not found on PATH: needed to build $pkg@$version"; return 1; }
  echo "==> building $pkg@$version into $PGOFFSITE_CACHE/bin (once; MinIO takes about five minutes)"
  mkdir -p "$PGOFFSITE_CACHE/bin" || return 1
  # In an empty directory outside the repository, so the repository's go.mod is untouched.
  tmp=$(mktemp -d) log=$(mktemp)
  if ! (cd "$tmp" && GOBIN="$PGOFFSITE_CACHE/bin" GOFLAGS="$flags" go install "$pkg@$version") >"$log" 2>&1; then
    cat "$log" >&2
    rm -rf "$tmp" "$log"
    _setup_fail "go install $pkg@$version failed (output above)"
    return 1
  fi
  rm -rf "$tmp" "$log"
}

# ensure_minio: the MinIO server the tests use; exports PGOFFSITE_MINIO_BIN.
ensure_minio() {
  _go_install minio "$MINIO_MODULE" "$MINIO_MODULE" "$MINIO_VERSION" -mod=mod || return 1
  export PGOFFSITE_MINIO_BIN="$PGOFFSITE_CACHE/bin/minio"
}

# ensure_toxiproxy: the Toxiproxy server the tests use; exports PGOFFSITE_TOXIPROXY_BIN.
ensure_toxiproxy() {
  _go_install server "$TOXIPROXY_MODULE" "$TOXIPROXY_MODULE/cmd/server" "$TOXIPROXY_VERSION" || return 1
  export PGOFFSITE_TOXIPROXY_BIN="$PGOFFSITE_CACHE/bin/server"
}

# ensure_heroku_cli: the real Heroku CLI (npm package heroku@$HEROKU_CLI_VERSION) in
# $PGOFFSITE_CACHE/heroku-cli, which the simulator's test drives; exports PGOFFSITE_HEROKU_CLI.
# Needs Node.js 20 or later and npm; returns at once when that version is already there.
ensure_heroku_cli() {
  local dir=$PGOFFSITE_CACHE/heroku-cli log have
  local bin=$dir/node_modules/.bin/heroku pkg=$dir/node_modules/heroku/package.json
  if [ -x "$bin" ] && [ -f "$pkg" ] && command -v node >/dev/null; then
    have=$(node -p 'require(process.argv[1]).version' "$pkg" 2>/dev/null) || have=
    if [ "$have" = "$HEROKU_CLI_VERSION" ]; then
      export PGOFFSITE_HEROKU_CLI="$bin"
      return 0
    fi
  fi
  command -v node >/dev/null && command -v npm >/dev/null ||
    { _setup_fail "node and npm not found on PATH: install Node.js 20 or later, needed for the Heroku CLI test"; return 1; }
  echo "==> npm install heroku@$HEROKU_CLI_VERSION into $dir (once)"
  mkdir -p "$dir" || return 1
  log=$(mktemp)
  if ! timeout 900 npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "heroku@$HEROKU_CLI_VERSION" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    _setup_fail "npm install heroku@$HEROKU_CLI_VERSION failed (output above)"
    return 1
  fi
  rm -f "$log"
  [ -x "$bin" ] || { _setup_fail "npm installed heroku@$HEROKU_CLI_VERSION but $bin is missing"; return 1; }
  export PGOFFSITE_HEROKU_CLI="$bin"
}

# ensure_azurite: Azure Blob Storage's emulator (npm package azurite@$AZURITE_VERSION) in
# $PGOFFSITE_CACHE/azurite, which internal/azstore's tests run; exports PGOFFSITE_AZURITE_BLOB.
# Needs Node.js and npm; returns at once when that version is already there.
AZURITE_VERSION=3.37.0
ensure_azurite() {
  local dir=$PGOFFSITE_CACHE/azurite log have
  local bin=$dir/node_modules/.bin/azurite-blob pkg=$dir/node_modules/azurite/package.json
  if [ -x "$bin" ] && [ -f "$pkg" ] && command -v node >/dev/null; then
    have=$(node -p 'require(process.argv[1]).version' "$pkg" 2>/dev/null) || have=
    if [ "$have" = "$AZURITE_VERSION" ]; then
      export PGOFFSITE_AZURITE_BLOB="$bin"
      return 0
    fi
  fi
  command -v node >/dev/null && command -v npm >/dev/null ||
    { _setup_fail "node and npm not found on PATH: install Node.js 20 or later, needed for the Azurite tests"; return 1; }
  echo "==> npm install azurite@$AZURITE_VERSION into $dir (once)"
  mkdir -p "$dir" || return 1
  log=$(mktemp)
  if ! timeout 900 npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    _setup_fail "npm install azurite@$AZURITE_VERSION failed (output above)"
    return 1
  fi
  rm -f "$log"
  [ -x "$bin" ] || { _setup_fail "npm installed azurite@$AZURITE_VERSION but $bin is missing"; return 1; }
  export PGOFFSITE_AZURITE_BLOB="$bin"
}

# ensure_fake_gcs: Google Cloud Storage's emulator, fake-gcs-server, which the gs:// destination's
# tests use; exports PGOFFSITE_FAKE_GCS_BIN.
ensure_fake_gcs() {
  _go_install fake-gcs-server "$FAKE_GCS_MODULE" "$FAKE_GCS_MODULE" "$FAKE_GCS_VERSION" || return 1
  export PGOFFSITE_FAKE_GCS_BIN="$PGOFFSITE_CACHE/bin/fake-gcs-server"
}

# ensure_seaweedfs: SeaweedFS's server (weed), whose S3 gateway the tests run as a second S3
# implementation beside MinIO; exports PGOFFSITE_WEED_BIN. Its go.mod has replace directives, which
# `go install pkg@version` refuses, so it is built inside its downloaded module, and a stamp beside
# the binary names the version (the binary itself then says only "devel"). No build tag leaves
# out its many backends (they are imported by default), so the build is long: bin/test runs it in
# the background (start_seaweedfs) while the tests that do not need it run.
ensure_seaweedfs() {
  local bin=$PGOFFSITE_CACHE/bin/weed stamp=$PGOFFSITE_CACHE/bin/weed.version dir log
  if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$SEAWEEDFS_VERSION" ]; then
    export PGOFFSITE_WEED_BIN="$bin"
    return 0
  fi
  command -v go >/dev/null || { _setup_fail "go not found on PATH: needed to build $SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION"; return 1; }
  echo "==> building $SEAWEEDFS_MODULE/weed@$SEAWEEDFS_VERSION into $PGOFFSITE_CACHE/bin (once; see docs/TESTING.md for how long)"
  mkdir -p "$PGOFFSITE_CACHE/bin" || return 1
  log=$(mktemp)
  dir=$(go env GOMODCACHE)/$SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION
  # Downloaded from an empty directory outside the repository, so the repository's go.mod is
  # untouched; linked without debug information, which only lengthens the link.
  if ! { (cd "$(dirname "$log")" && GOFLAGS= go mod download "$SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION") &&
         (cd "$dir" && GOFLAGS= go build -ldflags='-s -w' -o "$bin.tmp" ./weed); } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log" "$bin.tmp"
    _setup_fail "building $SEAWEEDFS_MODULE/weed@$SEAWEEDFS_VERSION failed (output above)"
    return 1
  fi
  rm -f "$log"
  mv "$bin.tmp" "$bin" && echo "$SEAWEEDFS_VERSION" >"$stamp" || return 1
  export PGOFFSITE_WEED_BIN="$bin"
}

# start_seaweedfs: ensure_seaweedfs in the background, its output held in a file; exports
# PGOFFSITE_WEED_BIN (where the binary will be) and what wait_seaweedfs needs, so that the jobs
# bin/test starts can wait for it.
start_seaweedfs() {
  PGOFFSITE_WEED_BUILD=$(mktemp) || return 1
  ( ensure_seaweedfs >"$PGOFFSITE_WEED_BUILD" 2>&1; echo $? >"$PGOFFSITE_WEED_BUILD.rc" ) &
  PGOFFSITE_WEED_BUILD_PID=$!
  PGOFFSITE_WEED_BIN=$PGOFFSITE_CACHE/bin/weed
  export PGOFFSITE_WEED_BUILD PGOFFSITE_WEED_BUILD_PID PGOFFSITE_WEED_BIN
}

# wait_seaweedfs: waits for start_seaweedfs's build (at most as long as its process lives),
# prints what it said and fails as it did. Without start_seaweedfs, it runs ensure_seaweedfs.
wait_seaweedfs() {
  local rc
  [ -n "${PGOFFSITE_WEED_BUILD:-}" ] || { ensure_seaweedfs; return; }
  while [ ! -f "$PGOFFSITE_WEED_BUILD.rc" ] && kill -0 "$PGOFFSITE_WEED_BUILD_PID" 2>/dev/null; do
    sleep 2
  done
  cat "$PGOFFSITE_WEED_BUILD"
  rc=$(cat "$PGOFFSITE_WEED_BUILD.rc" 2>/dev/null) || rc=
  [ "$rc" = 0 ] || { _setup_fail "the SeaweedFS build (start_seaweedfs) ended without success (status ${rc:-unknown})"; return 1; }
}
