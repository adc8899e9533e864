#!/usr/bin/env bash
# Real NetBox + Proxbox plugin on loopback, for proxbox-planner's end-to-end tests.
#
#   netbox.sh install        idempotent: apt packages, venv, pip, initdb + migrate, all cached
#   netbox.sh start          fresh copy of the cached DB, PostgreSQL + Redis + NetBox on free
#                            loopback ports; prints the path of $RUN_DIR/netbox.env
#                            (NETBOX_RQWORKER=1: also `netbox rqworker`, the job runner)
#   netbox.sh stop RUN_DIR   stops what `start` started and removes RUN_DIR
#   netbox.sh shell RUN_DIR  runs the Python code on stdin in `netbox shell` against that run
#   netbox.sh paths          prints NETBOX_VENV=, NETBOX_ROOT= and NETBOX_BASE_PYTHON= of the cache
#
# Cache: ${PROXBOX_TEST_CACHE:-$HOME/.cache/proxbox-planner}/netbox-<nb>-proxbox-<pb>/
#   venv/             Python 3.12 venv with netbox + netbox-proxbox
#   root/             NETBOX_ROOT (conf/configuration.py; ports come from the environment)
#   pgdata-pg<N>/     stopped, migrated PostgreSQL <N> data directory (admin user + tokens seeded)
# `start` restores the DB with a plain `cp -a` of that data directory (about a second).
#
# Environment: NETBOX_PORT (fixed port for NetBox), PROXBOX_TEST_CACHE, NETBOX_PYTHON
# (python >= 3.12 to build the venv), NETBOX_KEEP_FAILED=1 (keep RUN_DIR when start fails),
# NETBOX_RQWORKER=1 (start also runs `netbox rqworker`, which executes background jobs such
# as the Proxbox sync; its log is $RUN_DIR/rqworker.log; stop stops it first).
# Opt-in for `start` (plugins of our own, from their source tree; the cache stays as it is):
#   NETBOX_EXTRA_PLUGINS=mod1,mod2    appended to PLUGINS for this run (the worker's too)
#   NETBOX_EXTRA_PYTHONPATH=dir1:dir2 where those modules are (prepended to PYTHONPATH)
set -euo pipefail

NETBOX_VERSION=4.7.3
PROXBOX_VERSION=0.0.29.post6
# Bump when the seeded content of the cached DB changes.
SEED_VERSION=1

CACHE_ROOT=${PROXBOX_TEST_CACHE:-$HOME/.cache/proxbox-planner}
CACHE=$CACHE_ROOT/netbox-$NETBOX_VERSION-proxbox-$PROXBOX_VERSION
VENV=$CACHE/venv
NBROOT=$CACHE/root

# Fixed test credentials (loopback only). The tokens live in the cached DB.
ADMIN_USER='admin'
ADMIN_PASSWORD=proxbox-planner-admin
TOKEN_V1=0123456789abcdef0123456789abcdef01234567
TOKEN_V2_KEY=proxboxplan2
TOKEN_V2_SECRET=ProxboxPlannerE2eV2TokenSecret0123456789
TOKEN_V2=nbt_$TOKEN_V2_KEY.$TOKEN_V2_SECRET
PEPPER='proxbox-planner-test-pepper-0123456789-0123456789-0123456789'
SECRET_KEY='proxbox-planner-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz'

log() { printf '[netbox.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- helpers

APT_UPDATED=0
apt_install() {
  [ "$(id -u)" = 0 ] || die "need root to apt-get install $*"
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

pg_bindir() {
  local d
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  done
  return 1
}

ensure_system_packages() {
  local pkgs=()
  pg_bindir >/dev/null 2>&1 || pkgs+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
  command -v curl >/dev/null 2>&1 || pkgs+=(curl)
  if [ ! -f "$VENV/.ok" ]; then
    # pip builds psycopg-c (netbox's psycopg[c]) from source: needs pg_config and a C compiler.
    command -v pg_config >/dev/null 2>&1 || pkgs+=(libpq-dev)
    command -v gcc >/dev/null 2>&1 || pkgs+=(gcc)
  fi
  command -v runuser >/dev/null 2>&1 || pkgs+=(util-linux)
  if [ "${#pkgs[@]}" -gt 0 ]; then apt_install "${pkgs[@]}"; fi
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    die "no 'postgres' user (install the Debian postgresql package)"
  fi
  # Debian's redis-server package may start a system instance; we never use it.
}

find_python() {
  local p
  if [ -n "${NETBOX_PYTHON:-}" ]; then echo "$NETBOX_PYTHON"; return; fi
  for p in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin/python /root/.pyenv/versions/3.12.*/bin/python 2>/dev/null | sort -V -r) \
           "$(command -v python3.12 || true)" \
           $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[3-9].*/bin/python 2>/dev/null | sort -V); do
    [ -n "$p" ] && [ -x "$p" ] || continue
    if "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      echo "$p"; return
    fi
  done
  return 1
}

# Run a PostgreSQL program as the 'postgres' user when we are root (initdb refuses root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_chown() {
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$@"; fi
}

free_port() {
  "$VENV/bin/python" - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# pg_start DATADIR SOCKDIR PORT LOGFILE
pg_start() {
  local bin; bin=$(pg_bindir)
  touch "$4"; pg_chown "$4"
  as_pg "$bin/pg_ctl" -D "$1" -l "$4" -w -t 120 -s \
    -o "-c listen_addresses=127.0.0.1 -p $3 -k $2 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >&2
}
pg_stop() {
  local bin; bin=$(pg_bindir)
  as_pg "$bin/pg_ctl" -D "$1" -m fast -w -t 60 -s stop >&2
}

# redis_start DIR PORT
redis_start() {
  redis-server --bind 127.0.0.1 --port "$2" --save '' --appendonly no --daemonize yes \
    --dir "$1" --pidfile "$1/redis.pid" --logfile "$1/redis.log" >&2
  for _ in $(seq 1 100); do
    if redis-cli -h 127.0.0.1 -p "$2" ping 2>/dev/null | grep -q PONG; then return 0; fi
    sleep 0.1
  done
  die "redis did not answer on port $2 (see $1/redis.log)"
}
redis_stop() {  # redis_stop PORT PIDFILE
  redis-cli -h 127.0.0.1 -p "$1" shutdown nosave >/dev/null 2>&1 || true
  if [ -f "$2" ]; then
    local pid; pid=$(cat "$2" 2>/dev/null || true)
    if [ -n "$pid" ]; then wait_gone "$pid" 50 || kill -9 "$pid" 2>/dev/null || true; fi
  fi
}

wait_gone() {  # wait_gone PID TENTHS
  for _ in $(seq 1 "$2"); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}

# nb_env: environment for running the netbox CLI against given ports
nb() {  # nb PGPORT REDISPORT netbox-args...
  local pgport=$1 rport=$2; shift 2
  env NETBOX_ROOT="$NBROOT" PROXBOX_NB_DB_PORT="$pgport" PROXBOX_NB_REDIS_PORT="$rport" \
    PYTHONUNBUFFERED=1 "$VENV/bin/netbox" "$@"
}

# The environment that adds NETBOX_EXTRA_PLUGINS to one run: NETBOX_CONFIGURATION names a
# wrapper module (netbox_extra_plugins.py, next to this script) that loads the cached
# configuration.py and extends PLUGINS, so the shared cache is never rewritten.
extra_plugins_env() {
  [ -n "${NETBOX_EXTRA_PLUGINS:-}" ] || return 0
  local here; here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  echo "NETBOX_CONFIGURATION=netbox_extra_plugins"
  echo "PROXBOX_NB_BASE_CONFIGURATION=$NBROOT/conf/configuration.py"
  echo "NETBOX_EXTRA_PLUGINS=$NETBOX_EXTRA_PLUGINS"
  echo "PYTHONPATH=$here${NETBOX_EXTRA_PYTHONPATH:+:$NETBOX_EXTRA_PYTHONPATH}"
}

# ---------------------------------------------------------------- install

write_configuration() {
  local conf=$NBROOT/conf/configuration.py marker='# --- proxbox-planner test overrides (netbox.sh) ---'
  if [ ! -f "$conf" ]; then
    "$VENV/bin/netbox" setup --target "$NBROOT" >&2
  fi
  grep -qF "$marker" "$conf" && return 0
  log "appending test overrides to $conf"
  cat >>"$conf" <<EOF

$marker
# Ports are per run and come from the environment (set by netbox.sh).
import os as _os

ALLOWED_HOSTS = ['*']
DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.postgresql',
        'NAME': 'netbox',
        'USER': 'netbox',
        'PASSWORD': '',
        'HOST': _os.environ.get('PROXBOX_NB_DB_HOST', '127.0.0.1'),
        'PORT': _os.environ.get('PROXBOX_NB_DB_PORT', '5432'),
        'CONN_MAX_AGE': 300,
    }
}
_redis_port = int(_os.environ.get('PROXBOX_NB_REDIS_PORT', '6379'))
REDIS = {
    'tasks': {'HOST': '127.0.0.1', 'PORT': _redis_port, 'USERNAME': '', 'PASSWORD': '', 'DATABASE': 0, 'SSL': False},
    'caching': {'HOST': '127.0.0.1', 'PORT': _redis_port, 'USERNAME': '', 'PASSWORD': '', 'DATABASE': 1, 'SSL': False},
}
SECRET_KEY = '$SECRET_KEY'
API_TOKEN_PEPPERS = {1: '$PEPPER'}
AUTH_PASSWORD_VALIDATORS = []
PLUGINS = ['netbox_proxbox']
# The plugin's startup thread would try to reach a proxbox-api backend; there is none.
PLUGINS_CONFIG = {'netbox_proxbox': {'automatic_background_tasks': False}}
CENSUS_REPORTING_ENABLED = False
RELEASE_CHECK_URL = None
DEBUG = False
EOF
}

install_venv() {
  local want="netbox==$NETBOX_VERSION netbox-proxbox==$PROXBOX_VERSION"
  if [ -f "$VENV/.ok" ] && [ "$(cat "$VENV/.ok")" = "$want" ] && [ -x "$VENV/bin/netbox" ]; then
    log "venv cached: $VENV"
    return 0
  fi
  local py; py=$(find_python) || die "no Python >= 3.12 found (set NETBOX_PYTHON)"
  log "creating venv with $py ($("$py" --version 2>&1))"
  rm -rf "$VENV"
  "$py" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
  log "pip install $want"
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check $want >&2
  "$VENV/bin/python" -m pip check >&2
  echo "$want" >"$VENV/.ok"
}

seed_python() {
  cat <<EOF
from users.models import User, Token
u = User.objects.filter(username='$ADMIN_USER').first()
if u is None:
    u = User.objects.create_superuser('$ADMIN_USER', 'admin@example.invalid', '$ADMIN_PASSWORD')
Token.objects.filter(plaintext='$TOKEN_V1').delete()
Token.objects.filter(key='$TOKEN_V2_KEY').delete()
Token(user=u, version=1, token='$TOKEN_V1', description='proxbox-planner e2e v1').save()
Token(user=u, version=2, key='$TOKEN_V2_KEY', token='$TOKEN_V2_SECRET', description='proxbox-planner e2e v2').save()
print('seeded', u.username, Token.objects.filter(user=u).count(), 'tokens')
EOF
}

install_db() {
  local bin major pgcache
  bin=$(pg_bindir) || die "PostgreSQL server binaries not found"
  major=$("$bin/pg_ctl" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')
  pgcache=$CACHE/pgdata-pg$major
  if [ -f "$pgcache.ok" ] && [ "$(cat "$pgcache.ok")" = "seed=$SEED_VERSION" ] && [ -f "$pgcache/PG_VERSION" ]; then
    log "migrated DB cached: $pgcache"
    return 0
  fi
  rm -rf "$pgcache" "$pgcache.ok"
  local work pgport rport t0
  work=$(mktemp -d "${TMPDIR:-/tmp}/proxbox-netbox-install.XXXXXX")
  chmod 755 "$work"
  mkdir -p "$work/pgdata" "$work/sock"
  pg_chown "$work/pgdata" "$work/sock"
  # shellcheck disable=SC2064
  trap "pg_stop '$work/pgdata' 2>/dev/null || true; redis_stop \${rport:-0} '$work/redis.pid'; rm -rf '$work'" EXIT
  log "initdb (PostgreSQL $major) in $work/pgdata"
  as_pg "$bin/initdb" -D "$work/pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 \
    || { cat "$work/initdb.log" >&2; die "initdb failed"; }
  pgport=$(free_port); rport=$(free_port)
  pg_start "$work/pgdata" "$work/sock" "$pgport" "$work/postgres.log"
  local psql="$bin/psql"; [ -x "$psql" ] || psql=psql
  "$psql" -h 127.0.0.1 -p "$pgport" -U postgres -q -v ON_ERROR_STOP=1 \
    -c "CREATE USER netbox" -c "CREATE DATABASE netbox OWNER netbox" >&2
  redis_start "$work" "$rport"
  t0=$(date +%s)
  log "netbox migrate (slow: ~10+ minutes on 2 cores; log: $CACHE/migrate.log)"
  nb "$pgport" "$rport" migrate --no-input >"$CACHE/migrate.log" 2>&1 \
    || { tail -n 40 "$CACHE/migrate.log" >&2; die "migrate failed"; }
  log "migrate took $(( $(date +%s) - t0 ))s"
  log "seeding admin user and API tokens"
  nb "$pgport" "$rport" shell -c "$(seed_python)" >&2
  redis_stop "$rport" "$work/redis.pid"
  pg_stop "$work/pgdata"
  rm -f "$work/pgdata/postmaster.pid" "$work/pgdata/postmaster.opts"
  mv "$work/pgdata" "$pgcache.tmp"
  mv "$pgcache.tmp" "$pgcache"
  echo "seed=$SEED_VERSION" >"$pgcache.ok"
  trap - EXIT
  rm -rf "$work"
  log "cached migrated DB: $pgcache ($(du -sh "$pgcache" | cut -f1))"
}

cmd_install() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.install.lock"
  flock 9
  local t0; t0=$(date +%s)
  ensure_system_packages
  install_venv
  write_configuration
  install_db
  log "install complete in $(( $(date +%s) - t0 ))s (cache: $CACHE)"
  exec 9>&-
}

install_complete() {
  local bin major
  bin=$(pg_bindir 2>/dev/null) || return 1
  major=$("$bin/pg_ctl" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')
  [ -f "$VENV/.ok" ] && [ -f "$NBROOT/conf/configuration.py" ] \
    && [ "$(cat "$CACHE/pgdata-pg$major.ok" 2>/dev/null)" = "seed=$SEED_VERSION" ] \
    && command -v redis-server >/dev/null 2>&1
}

# ---------------------------------------------------------------- start / stop

cmd_start() {
  if ! install_complete; then
    log "cache incomplete; running install first"
    cmd_install
  fi
  local t0 bin major run pgport rport port nbpid
  t0=$(date +%s%3N)
  bin=$(pg_bindir)
  major=$("$bin/pg_ctl" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')
  run=$(mktemp -d "${TMPDIR:-/tmp}/proxbox-netbox.XXXXXX")
  chmod 755 "$run"
  touch "$run/.proxbox-netbox-run"
  START_RUN=$run
  trap 'start_failed' EXIT

  cp -a "$CACHE/pgdata-pg$major" "$run/pgdata"
  mkdir -p "$run/pgsock"
  pg_chown "$run/pgdata" "$run/pgsock"
  chmod 700 "$run/pgdata"
  pgport=$(free_port); rport=$(free_port)
  port=${NETBOX_PORT:-$(free_port)}
  {
    echo "RUN_DIR=$run"
    echo "PG_PORT=$pgport"
    echo "PG_SOCKET_DIR=$run/pgsock"
    echo "REDIS_PORT=$rport"
  } >"$run/state.env"

  pg_start "$run/pgdata" "$run/pgsock" "$pgport" "$run/postgres.log"
  redis_start "$run" "$rport"

  local extra=()
  mapfile -t extra < <(extra_plugins_env)
  [ "${#extra[@]}" -eq 0 ] || log "extra plugins for this run: $NETBOX_EXTRA_PLUGINS"
  log "starting NetBox runserver on 127.0.0.1:$port"
  # setsid: own process group, so stop can signal all of it.
  setsid env NETBOX_ROOT="$NBROOT" PROXBOX_NB_DB_PORT="$pgport" PROXBOX_NB_REDIS_PORT="$rport" "${extra[@]}" \
    PYTHONUNBUFFERED=1 "$VENV/bin/netbox" runserver "127.0.0.1:$port" --insecure --noreload --skip-checks \
    </dev/null >"$run/netbox.log" 2>&1 &
  nbpid=$!
  echo "NETBOX_PID=$nbpid" >>"$run/state.env"

  local url="http://127.0.0.1:$port" code
  for _ in $(seq 1 600); do
    kill -0 "$nbpid" 2>/dev/null || { tail -n 40 "$run/netbox.log" >&2; die "NetBox exited during startup"; }
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Token $TOKEN_V1" "$url/api/status/" || true)
    [ "$code" = 200 ] && break
    sleep 0.2
  done
  [ "$code" = 200 ] || { tail -n 40 "$run/netbox.log" >&2; die "GET /api/status/ never answered 200 (last: $code)"; }
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN_V2" "$url/api/users/tokens/")
  [ "$code" = 200 ] || die "v2 token rejected (HTTP $code)"

  local rqpid=''
  if [ "${NETBOX_RQWORKER:-0}" = 1 ]; then
    start_rqworker "$run" "$pgport" "$rport"
    rqpid=$(sed -n 's/^RQWORKER_PID=//p' "$run/state.env")
  fi

  local pgpid redispid
  pgpid=$(head -n 1 "$run/pgdata/postmaster.pid")
  redispid=$(cat "$run/redis.pid")
  cat >"$run/netbox.env" <<EOF
NETBOX_URL=$url
NETBOX_TOKEN=$TOKEN_V1
NETBOX_TOKEN_V2=$TOKEN_V2
NETBOX_USERNAME=$ADMIN_USER
NETBOX_PASSWORD=$ADMIN_PASSWORD
NETBOX_VERSION=$NETBOX_VERSION
PROXBOX_VERSION=$PROXBOX_VERSION
NETBOX_PID=$nbpid
POSTGRES_PID=$pgpid
REDIS_PID=$redispid
PG_PORT=$pgport
REDIS_PORT=$rport
RQWORKER_PID=$rqpid
RUN_DIR=$run
NETBOX_ROOT=$NBROOT
NETBOX_VENV=$VENV
EOF
  # What a second process of this run (netbox rqworker, netbox shell) needs for the same plugins.
  extra_plugins_env >>"$run/netbox.env"
  trap - EXIT
  log "NetBox up at $url in $(( $(date +%s%3N) - t0 )) ms"
  echo "$run/netbox.env"
}

# start_rqworker RUN PGPORT REDISPORT: the job runner, in its own process group, recorded in
# state.env; returns once it listens on its queues.
start_rqworker() {
  local run=$1 pid extra=()
  mapfile -t extra < <(extra_plugins_env)
  setsid env NETBOX_ROOT="$NBROOT" PROXBOX_NB_DB_PORT="$2" PROXBOX_NB_REDIS_PORT="$3" "${extra[@]}" \
    PYTHONUNBUFFERED=1 "$VENV/bin/netbox" rqworker </dev/null >"$run/rqworker.log" 2>&1 &
  pid=$!
  echo "RQWORKER_PID=$pid" >>"$run/state.env"
  for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || { tail -n 40 "$run/rqworker.log" >&2; die "netbox rqworker exited during startup"; }
    grep -q 'Listening on' "$run/rqworker.log" 2>/dev/null && return 0
    sleep 0.1
  done
  tail -n 40 "$run/rqworker.log" >&2
  die "netbox rqworker did not start listening (see $run/rqworker.log)"
}

stop_group() {  # stop_group PID: TERM its process group, KILL it after 10 s
  local pid=$1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$pid" 100 || kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

start_failed() {
  local rc=$?
  [ -n "${START_RUN:-}" ] || exit "$rc"
  log "start failed; cleaning up $START_RUN"
  stop_run "$START_RUN" "${NETBOX_KEEP_FAILED:-0}"
  exit "$rc"
}

stop_run() {  # stop_run RUN_DIR KEEP
  # shellcheck disable=SC2034  # PG_PORT comes from state.env
  local run=$1 keep=${2:-0} NETBOX_PID='' RQWORKER_PID='' PG_PORT='' REDIS_PORT=''
  # shellcheck disable=SC1091
  [ -f "$run/state.env" ] && . "$run/state.env"
  # The worker first: it holds database connections and may be in the middle of a job.
  stop_group "$RQWORKER_PID"
  stop_group "$NETBOX_PID"
  [ -n "$REDIS_PORT" ] && redis_stop "$REDIS_PORT" "$run/redis.pid"
  if [ -f "$run/pgdata/postmaster.pid" ]; then
    pg_stop "$run/pgdata" 2>/dev/null || {
      local pid; pid=$(head -n 1 "$run/pgdata/postmaster.pid" 2>/dev/null || true)
      [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null || true
    }
  fi
  if [ "$keep" = 1 ]; then log "kept $run"; else rm -rf "$run"; fi
}

cmd_stop() {
  local run=${1:-}
  [ -n "$run" ] || die "usage: $0 stop RUN_DIR"
  # Accept the env file path too.
  [ -f "$run" ] && run=$(dirname "$run")
  [ -f "$run/.proxbox-netbox-run" ] || die "$run is not a netbox.sh run directory"
  stop_run "$run" 0
  log "stopped and removed $run"
}

cmd_shell() {
  local run=${1:-} PG_PORT='' REDIS_PORT=''
  [ -n "$run" ] || die "usage: $0 shell RUN_DIR < code.py"
  [ -f "$run" ] && run=$(dirname "$run")
  [ -f "$run/.proxbox-netbox-run" ] || die "$run is not a netbox.sh run directory"
  # shellcheck disable=SC1091
  . "$run/state.env"
  nb "$PG_PORT" "$REDIS_PORT" shell --no-imports -c "$(cat)"
}

cmd_paths() {
  echo "NETBOX_VENV=$VENV"
  echo "NETBOX_ROOT=$NBROOT"
  echo "NETBOX_BASE_PYTHON=$("$VENV/bin/python" -c 'import sys; print(sys._base_executable)')"
}

case "${1:-}" in
  install) cmd_install ;;
  paths) cmd_paths ;;
  start) cmd_start ;;
  stop) shift; cmd_stop "$@" ;;
  shell) shift; cmd_shell "$@" ;;
  *) echo "usage: $0 install | start | stop RUN_DIR | shell RUN_DIR < code.py | paths" >&2; exit 2 ;;
esac
