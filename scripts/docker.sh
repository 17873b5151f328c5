# Sourced by scripts/services.sh: a real dockerd and the test base image for tests/docker.
#
# _launch_start_docker: use $DOCKER_HOST when it answers; else start dockerd (Debian
#   docker.io) with its own data-root, exec-root, socket and pidfile under
#   $LAUNCH_DOCKER_ROOT (outside the repo), and export DOCKER_HOST.
#   Then make sure the base image $LAUNCH_JUPYTER_TEST_DOCKER_BASE exists: imported from a
#   debootstrap rootfs tarball cached in $LAUNCH_DOCKER_CACHE (built once, ~30-60 s).
# _launch_start_registry: Debian's docker-registry on 127.0.0.1 (dockerd trusts loopback
#   registries over plain HTTP); exports LAUNCH_JUPYTER_TEST_REGISTRY=127.0.0.1:PORT.
# Under CI=true missing packages (docker.io, debootstrap, docker-registry) are apt-installed.
# _launch_stop_docker: stop the dockerd and registry started here (by pid); call it from the
#   EXIT trap.
# With CI=true a failure exits 1 with the reason; elsewhere it warns and tests/docker skips.
# Needs _launch_fail_or_warn from services.sh (a fallback is defined when sourced alone).

LAUNCH_DOCKER_ROOT="${LAUNCH_DOCKER_ROOT:-/var/tmp/launch-jupyter-docker}"
LAUNCH_DOCKER_CACHE="${LAUNCH_DOCKER_CACHE:-/var/cache/launch-jupyter}"
export LAUNCH_JUPYTER_TEST_DOCKER_BASE="${LAUNCH_JUPYTER_TEST_DOCKER_BASE:-launch-jupyter-test-base:bookworm}"
LAUNCH_DOCKER_REGISTRY_PORT="${LAUNCH_DOCKER_REGISTRY_PORT:-5055}"
_launch_started_dockerd=""
_launch_started_registry=""

if ! declare -F _launch_fail_or_warn >/dev/null; then
  _launch_fail_or_warn() {
    if [ "${CI:-}" = "true" ]; then
      echo "scripts/docker.sh: $1 (CI=true, so the run fails)" >&2
      exit 1
    fi
    echo "scripts/docker.sh: $1; tests that need it will be skipped" >&2
  }
fi

_launch_docker_answers() {
  docker -H "$1" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

_launch_stop_docker() {
  if [ -n "$_launch_started_registry" ]; then
    kill -TERM "$_launch_started_registry" 2>/dev/null || true
    _launch_started_registry=""
  fi
  local pid="$_launch_started_dockerd"
  [ -n "$pid" ] || return 0
  _launch_started_dockerd=""
  kill -TERM "$pid" 2>/dev/null || return 0
  local i
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "scripts/docker.sh: dockerd $pid did not stop in 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # dockerd leaves its default network namespace mounted under the exec-root
  umount "$LAUNCH_DOCKER_ROOT/exec/netns/default" 2>/dev/null || true
}

_launch_mirror() {
  # The Debian mirror apt uses (deb822 or one-line sources), for debootstrap.
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
          | awk '{print $2}' | grep -v security | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | grep -v security | awk '{print $2}' | head -n1 || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

_launch_build_base_tarball() {
  # debootstrap once; the tarball is cached outside the repo for every later run.
  local tarball="$1" root
  command -v debootstrap >/dev/null 2>&1 || {
    echo "debootstrap is not installed (apt-get install debootstrap)"; return 1; }
  mkdir -p "$(dirname "$tarball")"
  root=$(mktemp -d /var/tmp/launch-jupyter-rootfs.XXXXXX)
  echo "scripts/docker.sh: building the base rootfs with debootstrap (once; ~1 min)" >&2
  # python3-cffi-backend, libboost-regex1.74.0: needed through virtual packages, which
  # debootstrap does not resolve (python3-zmq, gdb's libsource-highlight)
  if ! debootstrap --variant=minbase \
        --include=python3-minimal,python3-ipykernel,python3-nbclient,python3-pip,python3-cffi-backend,libboost-regex1.74.0 \
        bookworm "$root" "$(_launch_mirror)" >"$LAUNCH_DOCKER_ROOT/debootstrap.log" 2>&1; then
    cp "$root/debootstrap/debootstrap.log" "$LAUNCH_DOCKER_ROOT/debootstrap-detail.log" 2>/dev/null || true
    rm -rf "$root"
    echo "debootstrap failed (see $LAUNCH_DOCKER_ROOT/debootstrap.log)"
    return 1
  fi
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . >"$tarball.tmp" && mv "$tarball.tmp" "$tarball"
  local rc=$?
  rm -rf "$root"
  return $rc
}

_launch_docker_base_image() {
  local host="$1" image="$LAUNCH_JUPYTER_TEST_DOCKER_BASE"
  local tarball="$LAUNCH_DOCKER_CACHE/bookworm-python.tar"
  if docker -H "$host" image inspect "$image" >/dev/null 2>&1; then
    return 0
  fi
  if [ ! -s "$tarball" ]; then
    local why
    why=$(_launch_build_base_tarball "$tarball") || {
      _launch_fail_or_warn "could not build the Docker base image: $why"; return 1; }
  fi
  docker -H "$host" import "$tarball" "$image" >/dev/null \
    || { _launch_fail_or_warn "docker import of $tarball as $image failed"; return 1; }
}

_launch_docker_install() {
  # Under CI, install what is missing (Debian packages); elsewhere only say what is missing.
  local missing=""
  command -v dockerd >/dev/null 2>&1 || missing="$missing docker.io"
  command -v debootstrap >/dev/null 2>&1 || missing="$missing debootstrap"
  command -v docker-registry >/dev/null 2>&1 || missing="$missing docker-registry"
  if [ -n "$missing" ] && [ "${CI:-}" = "true" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing) \
      >/dev/null 2>&1 || _launch_fail_or_warn "could not install$missing with apt-get"
  fi
}

_launch_start_docker() {
  _launch_docker_install
  if [ -n "${DOCKER_HOST:-}" ] && _launch_docker_answers "$DOCKER_HOST"; then
    _launch_docker_base_image "$DOCKER_HOST" || true
    _launch_start_registry
    return 0
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    _launch_fail_or_warn "dockerd is not installed (apt-get install docker.io)"
    return 0
  fi
  mkdir -p "$LAUNCH_DOCKER_ROOT" || {
    _launch_fail_or_warn "cannot create $LAUNCH_DOCKER_ROOT for dockerd"; return 0; }
  local sock="$LAUNCH_DOCKER_ROOT/docker.sock" pidfile="$LAUNCH_DOCKER_ROOT/dockerd.pid"
  local host="unix://$sock"
  if _launch_docker_answers "$host"; then
    # A dockerd left by an earlier run (it was not stopped): use it, and stop it at exit.
    _launch_started_dockerd=$(cat "$pidfile" 2>/dev/null || true)
  else
    rm -f "$sock" "$pidfile"
    nohup dockerd --storage-driver=overlay2 --iptables=false --ip6tables=false --bridge=none \
      --data-root "$LAUNCH_DOCKER_ROOT/data" --exec-root "$LAUNCH_DOCKER_ROOT/exec" \
      --pidfile "$pidfile" -H "$host" >"$LAUNCH_DOCKER_ROOT/dockerd.log" 2>&1 &
    _launch_started_dockerd=$!
    local i
    for i in $(seq 1 300); do
      _launch_docker_answers "$host" && break
      kill -0 "$_launch_started_dockerd" 2>/dev/null || break
      sleep 0.1
    done
    if ! _launch_docker_answers "$host"; then
      _launch_stop_docker
      _launch_fail_or_warn "dockerd did not start: $(tail -n 3 "$LAUNCH_DOCKER_ROOT/dockerd.log" | tr '\n' ' ')"
      return 0
    fi
  fi
  export DOCKER_HOST="$host"
  _launch_docker_base_image "$host" || true
  _launch_start_registry
}

_launch_start_registry() {
  if [ -n "${LAUNCH_JUPYTER_TEST_REGISTRY:-}" ]; then
    return 0
  fi
  if ! command -v docker-registry >/dev/null 2>&1; then
    _launch_fail_or_warn "docker-registry is not installed (apt-get install docker-registry)"
    return 0
  fi
  local dir="$LAUNCH_DOCKER_ROOT/registry" addr="127.0.0.1:$LAUNCH_DOCKER_REGISTRY_PORT"
  mkdir -p "$dir/data"
  if ! curl -fsS "http://$addr/v2/" >/dev/null 2>&1; then
    cat >"$dir/config.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $addr
YAML
    nohup docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
    _launch_started_registry=$!
    local i
    for i in $(seq 1 100); do
      curl -fsS "http://$addr/v2/" >/dev/null 2>&1 && break
      sleep 0.1
    done
    if ! curl -fsS "http://$addr/v2/" >/dev/null 2>&1; then
      kill -TERM "$_launch_started_registry" 2>/dev/null || true
      _launch_started_registry=""
      _launch_fail_or_warn "docker-registry did not start: $(tail -n 2 "$dir/registry.log")"
      return 0
    fi
  fi
  export LAUNCH_JUPYTER_TEST_REGISTRY="$addr"
}
