# Shared setup for bin/test, bin/demo and bin/bench (sourced, not run): installs what is missing,
# idempotently and quickly when everything is already there.

PGOFFSITE_CACHE=${PGOFFSITE_CACHE:-$HOME/.cache/pgoffsite}
export PGOFFSITE_CACHE
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
TOXIPROXY_VERSION=v2.5.0

_sudo() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

# pg_bindir prints the directory of the PostgreSQL server programs.
pg_bindir() {
  local d
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  return 1
}

# ensure_packages [awscli]: Debian packages the tests and the demo need.
ensure_packages() {
  local want=() missing=()
  pg_bindir >/dev/null 2>&1 || want+=(postgresql)
  command -v curl >/dev/null || want+=(curl)
  command -v python3 >/dev/null || want+=(python3)
  [ -x /usr/bin/time ] || want+=(time)
  if [ "${1:-}" = awscli ] && [ ! -x /usr/bin/aws ]; then want+=(awscli); fi
  [ ${#want[@]} -eq 0 ] && return 0
  echo "==> installing ${want[*]} (apt)"
  _sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive _sudo apt-get install -y -qq "${want[@]}" >/dev/null ||
    { echo "apt-get install ${want[*]} failed" >&2; return 1; }
  # Debian starts a cluster on install; the tests run their own.
  command -v pg_ctlcluster >/dev/null && _sudo pg_ctlcluster --force 15 main stop >/dev/null 2>&1 || true
}

_go_install() { # _go_install BINARY-NAME MODULE@VERSION [GOFLAGS]
  local name=$1 mod=$2 flags=${3:-} tmp
  [ -x "$PGOFFSITE_CACHE/bin/$name" ] && return 0
  echo "==> building $mod (once; cached in $PGOFFSITE_CACHE/bin)"
  mkdir -p "$PGOFFSITE_CACHE/bin"
  tmp=$(mktemp -d)
  # Outside the repository, so its go.mod is untouched.
  (cd "$tmp" && GOBIN="$PGOFFSITE_CACHE/bin" GOFLAGS="$flags" go install "$mod") || { rm -rf "$tmp"; return 1; }
  rm -rf "$tmp"
}

ensure_minio() {
  _go_install minio "github.com/minio/minio@$MINIO_VERSION" -mod=mod || return 1
  export PGOFFSITE_MINIO_BIN="$PGOFFSITE_CACHE/bin/minio"
}

ensure_toxiproxy() {
  _go_install server "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION" || return 1
  export PGOFFSITE_TOXIPROXY_BIN="$PGOFFSITE_CACHE/bin/server"
}
