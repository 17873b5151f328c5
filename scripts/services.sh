# Sourced by scripts/test.sh: start the real services the tests use, stop them on exit.
#
# PostgreSQL: use LAUNCH_JUPYTER_TEST_POSTGRES when set; else start the machine's cluster
# (Debian's pg_ctlcluster) if it is down, create a role and database, export the URL.
# Chromium: installed with apt-get under CI when missing (the browser tests need it).
# Docker: a private dockerd, a debootstrap base image and a local registry (scripts/docker.sh).
# With CI=true a service that cannot start fails the run; elsewhere its tests skip.

_launch_started_pg=""

_launch_fail_or_warn() {
  if [ "${CI:-}" = "true" ]; then
    echo "scripts/test.sh: $1 (CI=true, so the run fails)" >&2
    exit 1
  fi
  echo "scripts/test.sh: $1; tests that need it will be skipped" >&2
}

# shellcheck source=scripts/docker.sh
source scripts/docker.sh

_launch_stop_services() {
  _launch_stop_docker || true
  if [ -n "$_launch_started_pg" ]; then
    pg_ctlcluster $_launch_started_pg stop || true
  fi
}
trap _launch_stop_services EXIT

_launch_start_postgres() {
  if [ -n "${LAUNCH_JUPYTER_TEST_POSTGRES:-}" ]; then
    return 0
  fi
  if ! command -v pg_lsclusters >/dev/null 2>&1; then
    _launch_fail_or_warn "PostgreSQL is not installed (apt-get install postgresql)"
    return 0
  fi
  local cluster status
  cluster=$(pg_lsclusters --no-header | awk 'NR==1 {print $1" "$2}')
  status=$(pg_lsclusters --no-header | awk 'NR==1 {print $4}')
  if [ -z "$cluster" ]; then
    _launch_fail_or_warn "no PostgreSQL cluster found (pg_createcluster 15 main)"
    return 0
  fi
  if [ "$status" != "online" ]; then
    if pg_ctlcluster $cluster start; then
      _launch_started_pg="$cluster"
    else
      _launch_fail_or_warn "PostgreSQL cluster $cluster did not start"
      return 0
    fi
  fi
  local port
  port=$(pg_lsclusters --no-header | awk 'NR==1 {print $3}')
  su postgres -c "psql -qtAc \"DO \\\$\\\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='launch') THEN CREATE ROLE launch LOGIN CREATEDB PASSWORD 'launch'; END IF; END\\\$\\\$\"" >/dev/null \
    || { _launch_fail_or_warn "could not create the PostgreSQL role 'launch'"; return 0; }
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='launch'\"" | grep -q 1 \
    || su postgres -c "createdb -O launch launch" \
    || { _launch_fail_or_warn "could not create the PostgreSQL database 'launch'"; return 0; }
  export LAUNCH_JUPYTER_TEST_POSTGRES="postgresql://launch:launch@127.0.0.1:${port}/launch"
  # The restart test may bounce this cluster: only ever one the test run controls.
  if [ -n "$_launch_started_pg" ] || [ "${CI:-}" = "true" ]; then
    export LAUNCH_JUPYTER_TEST_POSTGRES_RESTART="pg_ctlcluster $cluster restart"
  fi
}

_launch_install_chromium() {
  if command -v chromium >/dev/null 2>&1 || [ "${CI:-}" != "true" ]; then
    return 0
  fi
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
    >/dev/null 2>&1 || _launch_fail_or_warn "could not install chromium with apt-get"
}

_launch_start_postgres
_launch_install_chromium
_launch_start_docker
