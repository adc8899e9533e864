#!/usr/bin/env bash
# proxbox-api.sh - the original Proxbox backend (proxbox-api 0.0.30 from PyPI), the peer that
# proxbox-planner's migration test and benchmark run against the same test servers.
#
#   proxbox-api.sh install        venv at ${PROXBOX_TEST_CACHE:-$HOME/.cache/proxbox-planner}/proxbox-api-0.0.30/venv
#                                 (idempotent, flock'ed; prints the venv path)
#   proxbox-api.sh start          uvicorn on a free loopback port with its own database in RUN_DIR; waits until
#                                 it answers, writes $RUN_DIR/proxbox-api.env and prints its path
#   proxbox-api.sh stop RUN_DIR   stops the server started in RUN_DIR and removes RUN_DIR
#
# Environment for `start` (all optional):
#   RUN_DIR                    directory for the database, log and env file (default: a new mktemp -d, removed
#                              again when the start fails)
#   PROXBOX_API_PORT           port to listen on (default: a free port)
#   PROXBOX_API_START_TIMEOUT  seconds to wait for it to answer (default 300; it takes 30-90 s on 2 busy cores,
#                              nearly all of it importing its generated Proxmox models)
#   PROXBOX_API_PYTHON         Python 3.12 or 3.13 to build the venv (default: pyenv's newest 3.12, else python3.12)
#
# proxbox-api keeps its whole configuration (API key, NetBox and Proxmox endpoints) in its own SQLite
# database, not in environment variables: configuring it is host/test-support/peer.js's job.
# PROXBOX_ALLOW_PLAINTEXT_CREDENTIALS=1 lets it store the endpoint tokens without a key store (loopback
# test servers only). What else it takes to run on this stack is in host/test-support/peer.js and in
# /work/shared/research/proxbox-api-on-the-test-stack.md.
#
# proxbox-api.env is KEY=VALUE lines (no quoting, no spaces in values): bash `source`-able and dotenv-parsable.
set -euo pipefail

PROXBOX_API_LINE=0.0.30
PROXBOX_API_SPEC="proxbox-api>=0.0.30,<0.0.31"
CACHE_ROOT=${PROXBOX_TEST_CACHE:-$HOME/.cache/proxbox-planner}
PREFIX=$CACHE_ROOT/proxbox-api-$PROXBOX_API_LINE
VENV=$PREFIX/venv
VPY=$VENV/bin/python

log() { printf '[proxbox-api.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

find_python() {
  local p
  if [[ -n ${PROXBOX_API_PYTHON:-} ]]; then echo "$PROXBOX_API_PYTHON"; return; fi
  for p in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin/python 2>/dev/null | sort -V -r) \
           "$(command -v python3.12 || true)" \
           $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13.*/bin/python 2>/dev/null | sort -V -r); do
    [[ -n $p && -x $p ]] || continue
    # The wheel says Requires-Python >=3.12,<3.14.
    if "$p" -c 'import sys; sys.exit(0 if (3, 12) <= sys.version_info[:2] < (3, 14) else 1)' 2>/dev/null; then
      echo "$p"; return
    fi
  done
  return 1
}

venv_ok() {
  [[ -x $VPY && -f $VENV/.ok && $(cat "$VENV/.ok") == "$PROXBOX_API_SPEC" ]] \
    && "$VPY" -c 'import proxbox_api.main, uvicorn' >/dev/null 2>&1
}

installed_version() {
  "$VPY" -c 'from importlib import metadata; print(metadata.version("proxbox-api"))'
}

cmd_install() {
  mkdir -p "$PREFIX"
  if venv_ok; then echo "$VENV"; return 0; fi
  # One installer at a time (parallel test runs share the cache).
  exec 9>"$PREFIX/.install.lock"
  flock 9
  if ! venv_ok; then
    local py t0=$SECONDS
    py=$(find_python) || die "no Python 3.12/3.13 found (set PROXBOX_API_PYTHON)"
    log "creating venv with $py ($("$py" --version 2>&1))"
    rm -rf "$VENV"
    "$py" -m venv "$VENV" >&2
    "$VPY" -m pip install -q --disable-pip-version-check --upgrade pip >&2
    log "pip install '$PROXBOX_API_SPEC'"
    "$VPY" -m pip install -q --disable-pip-version-check "$PROXBOX_API_SPEC" >&2 \
      || die "pip install '$PROXBOX_API_SPEC' into $VENV failed"
    "$VPY" -m pip check >&2 || die "pip check failed in $VENV"
    echo "$PROXBOX_API_SPEC" >"$VENV/.ok"
    venv_ok || die "proxbox_api still not importable from $VPY after install"
    log "installed proxbox-api $(installed_version) in $((SECONDS - t0)) s"
  fi
  exec 9>&-
  echo "$VENV"
}

free_port() {
  "$VPY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# True if PID is alive and is our uvicorn (guards against a recycled pid).
is_ours() {
  local pid=$1
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'proxbox_api.main:app'
}

stop_pid() {  # stop_pid PID: the whole process group (setsid), TERM then KILL after 10 s
  local pid=$1 i
  is_ours "$pid" || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "pid $pid ignored SIGTERM; sending SIGKILL"
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

cmd_start() {
  [[ $# -eq 0 ]] || usage
  command -v curl >/dev/null 2>&1 || die "curl is needed to check that proxbox-api answers"
  cmd_install >/dev/null
  local run=${RUN_DIR:-}
  START_RUN_CREATED=''
  if [[ -z $run ]]; then
    run=$(mktemp -d "${TMPDIR:-/tmp}/proxbox-api.XXXXXX")
    START_RUN_CREATED=$run
  else
    mkdir -p "$run"
    run=$(cd "$run" && pwd)
  fi
  [[ $run =~ ^[A-Za-z0-9_./+-]+$ ]] || die "RUN_DIR must not contain spaces or shell characters: $run"
  if [[ -f $run/proxbox-api.pid ]] && is_ours "$(cat "$run/proxbox-api.pid")"; then
    die "a proxbox-api is already running from $run (pid $(cat "$run/proxbox-api.pid")); stop it first"
  fi
  touch "$run/.proxbox-api-run"
  rm -f "$run/proxbox-api.env"

  local port=${PROXBOX_API_PORT:-$(free_port)} timeout=${PROXBOX_API_START_TIMEOUT:-300}
  [[ $port =~ ^[0-9]+$ ]] || die "PROXBOX_API_PORT must be a number: $port"
  local url="http://127.0.0.1:$port" t0=$SECONDS
  log "starting proxbox-api $(installed_version) on $url"
  # setsid: its own process group, so stop reaches uvicorn's children too. cwd = RUN_DIR: anything it
  # writes next to itself stays in the run directory.
  (cd "$run" && exec setsid env PROXBOX_DATABASE_PATH="$run/proxbox.db" PROXBOX_ALLOW_PLAINTEXT_CREDENTIALS=1 \
      PYTHONUNBUFFERED=1 "$VENV/bin/uvicorn" proxbox_api.main:app --host 127.0.0.1 --port "$port" --no-access-log \
      </dev/null >"$run/proxbox-api.log" 2>&1) &
  local pid=$!
  echo "$pid" >"$run/proxbox-api.pid"

  local answered=0
  while ((SECONDS - t0 < timeout)); do
    kill -0 "$pid" 2>/dev/null || start_failed "$run" "$pid" "proxbox-api exited during start-up"
    if curl -fsS --max-time 3 -o /dev/null "$url/auth/bootstrap-status" 2>/dev/null; then answered=1; break; fi
    sleep 0.5
  done
  ((answered)) || start_failed "$run" "$pid" "proxbox-api did not answer within ${timeout}s"

  {
    echo "PROXBOX_API_URL=$url"
    echo "PROXBOX_API_PORT=$port"
    echo "PROXBOX_API_VERSION=$(installed_version)"
    echo "PROXBOX_API_PID=$pid"
    echo "PROXBOX_API_LOG=$run/proxbox-api.log"
    echo "PROXBOX_API_DATABASE=$run/proxbox.db"
    echo "RUN_DIR=$run"
  } >"$run/proxbox-api.env.tmp"
  mv "$run/proxbox-api.env.tmp" "$run/proxbox-api.env"
  log "proxbox-api up at $url in $((SECONDS - t0)) s"
  echo "$run/proxbox-api.env"
}

start_failed() {  # start_failed RUN_DIR PID MESSAGE: log tail, stop, remove a run dir we made, exit 1
  log "start failed; the last lines of $1/proxbox-api.log:"
  tail -n 30 "$1/proxbox-api.log" >&2 || true
  stop_pid "$2"
  rm -f "$1/proxbox-api.pid"
  if [[ $1 == "$START_RUN_CREATED" ]]; then rm -rf "$1"; fi
  die "$3"
}

cmd_stop() {
  [[ $# -eq 1 ]] || usage
  local run=$1
  [[ -f $run ]] && run=$(dirname "$run") # the env file's path works too
  [[ -f $run/.proxbox-api-run ]] || die "$run is not a proxbox-api.sh run directory"
  if [[ -f $run/proxbox-api.pid ]]; then stop_pid "$(cat "$run/proxbox-api.pid")"; fi
  rm -rf "$run"
}

case ${1:-} in
  install) shift; [[ $# -eq 0 ]] || usage; cmd_install ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) usage ;;
esac
