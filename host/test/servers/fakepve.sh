#!/usr/bin/env bash
# fakepve.sh - the Proxmox VE simulator (fakepve 0.5.0 from PyPI) for proxbox-planner's e2e tests.
#
#   fakepve.sh install            venv at ${PROXBOX_TEST_CACHE:-$HOME/.cache/proxbox-planner}/fakepve-0.5.0/venv
#                                 (idempotent; prints the venv path)
#   fakepve.sh start SEED_FILE    serve the seed on 127.0.0.1, wait until the API answers with the token,
#                                 write $RUN_DIR/fakepve.env and print its path
#   fakepve.sh stop RUN_DIR       stop the server started in RUN_DIR (only that pid)
#
# Environment for `start` (all optional):
#   RUN_DIR            directory for fakepve.env/.pid/.log/.crt (default: a new mktemp -d under $TMPDIR)
#   PVE_PORT           port to listen on (default: a free port picked by the system)
#   FAKEPVE_HOST       address to bind (default 127.0.0.1; keep it on loopback)
#   FAKEPVE_TLS        1 (default): HTTPS with a self-signed cert written to RUN_DIR; 0: plain HTTP
#   PVE_TOKEN_ID       API token id to register (default root@pam!proxbox)
#   PVE_TOKEN_SECRET   its secret (default: a fresh UUID)
#   FAKEPVE_TIME_SCALE real seconds per PVE second (default 0: tasks finish before the request returns)
#   FAKEPVE_START_TIMEOUT  seconds to wait for the API (default 30)
#   PYTHON             interpreter used to create the venv (default python3, needs >= 3.10)
#
# fakepve.env is KEY=VALUE lines (no quoting, no spaces in values): bash `source`-able and dotenv-parsable.
set -euo pipefail

FAKEPVE_VERSION=0.5.0
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${PROXBOX_TEST_CACHE:-$HOME/.cache/proxbox-planner}
PREFIX=$CACHE/fakepve-$FAKEPVE_VERSION
VENV=$PREFIX/venv
VPY=$VENV/bin/python
SHIM=$HERE/fakepve_seeded.py

die() { echo "fakepve.sh: $*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

venv_ok() {
  [[ -x $VPY ]] && "$VPY" - "$FAKEPVE_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib import metadata
assert metadata.version('fakepve') == sys.argv[1]
import aiohttp, cryptography, fakepve, fakepve.certs  # noqa: F401
EOF
}

cmd_install() {
  mkdir -p "$PREFIX"
  if venv_ok; then echo "$VENV"; return 0; fi
  # One installer at a time (parallel test runs share the cache).
  exec 9>"$PREFIX/.install.lock"
  if command -v flock >/dev/null 2>&1; then flock 9; fi
  if ! venv_ok; then
    local py=${PYTHON:-python3}
    "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
      || die "$py is older than 3.10; fakepve $FAKEPVE_VERSION needs >= 3.10 (set PYTHON=...)"
    if [[ ! -x $VPY ]]; then
      rm -rf "$VENV"
      "$py" -m venv "$VENV" >&2
    fi
    "$VPY" -m pip install --disable-pip-version-check --quiet "fakepve[crypto]==$FAKEPVE_VERSION" >&2 \
      || die "pip install 'fakepve[crypto]==$FAKEPVE_VERSION' into $VENV failed"
    venv_ok || die "fakepve $FAKEPVE_VERSION still not importable from $VPY after install"
  fi
  exec 9>&-
  echo "$VENV"
}

# True if PID is alive and runs our shim (guards against a recycled pid).
is_ours() {
  local pid=$1
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r /proc/$pid/cmdline ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'fakepve_seeded.py'
  fi
}

probe() {  # probe URL CAFILE TOKEN -> 0 when GET /version answers 200 with data
  local url=$1 ca=$2 token=$3
  local curl_tls=()
  [[ -n $ca ]] && curl_tls=(--cacert "$ca")
  curl -fsS --max-time 3 "${curl_tls[@]}" -H "Authorization: PVEAPIToken=$token" \
    "$url/api2/json/version" 2>/dev/null | grep -q '"version"'
}

cmd_start() {
  [[ $# -eq 1 ]] || usage
  local seed=$1
  [[ -f $seed ]] || die "seed file not found: $seed"
  seed=$(cd "$(dirname "$seed")" && pwd)/$(basename "$seed")
  command -v curl >/dev/null 2>&1 || die "curl is needed to check that fakepve answers"
  cmd_install >/dev/null

  local run_dir=${RUN_DIR:-}
  if [[ -z $run_dir ]]; then
    run_dir=$(mktemp -d "${TMPDIR:-/tmp}/fakepve.XXXXXX")
  else
    mkdir -p "$run_dir"
    run_dir=$(cd "$run_dir" && pwd)
  fi
  [[ $run_dir =~ ^[A-Za-z0-9_./+-]+$ ]] || die "RUN_DIR must not contain spaces or shell characters: $run_dir"
  if [[ -f $run_dir/fakepve.pid ]] && is_ours "$(cat "$run_dir/fakepve.pid")"; then
    die "a fakepve is already running from $run_dir (pid $(cat "$run_dir/fakepve.pid")); stop it first"
  fi
  rm -f "$run_dir/fakepve.ready" "$run_dir/fakepve.env" "$run_dir/fakepve.pid"

  local host=${FAKEPVE_HOST:-127.0.0.1}
  local port=${PVE_PORT:-0}
  local tls=${FAKEPVE_TLS:-1}
  local token_id=${PVE_TOKEN_ID:-root@pam!proxbox}
  local token_secret=${PVE_TOKEN_SECRET:-$("$VPY" -c 'import uuid; print(uuid.uuid4())')}
  local scale=${FAKEPVE_TIME_SCALE:-0}
  local timeout=${FAKEPVE_START_TIMEOUT:-30}
  [[ $port =~ ^[0-9]+$ ]] || die "PVE_PORT must be a number: $port"
  [[ $token_id =~ ^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+![A-Za-z][A-Za-z0-9._-]*$ ]] \
    || die "PVE_TOKEN_ID must look like user@realm!tokenid: $token_id"
  [[ $token_secret =~ ^[A-Za-z0-9._:-]+$ ]] || die "PVE_TOKEN_SECRET may only hold [A-Za-z0-9._:-]"

  local args=("$SHIM" "$seed" --run-dir "$run_dir" --host "$host" --port "$port"
              --token "$token_id=$token_secret" --time-scale "$scale")
  if [[ $tls == 0 ]]; then args+=(--no-tls); fi

  # Detached from our stdio, so a caller that reads our stdout sees EOF when we exit.
  nohup "$VPY" "${args[@]}" >"$run_dir/fakepve.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$run_dir/fakepve.pid"

  local deadline=$((SECONDS + timeout)) url='' ca='' answered=0
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "fakepve.sh: fakepve exited during start-up; log $run_dir/fakepve.log:" >&2
      tail -n 30 "$run_dir/fakepve.log" >&2 || true
      rm -f "$run_dir/fakepve.pid"
      exit 1
    fi
    if [[ -z $url && -s $run_dir/fakepve.ready ]]; then
      url=$("$VPY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$run_dir/fakepve.ready")
      ca=$("$VPY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["cafile"] or "")' "$run_dir/fakepve.ready")
    fi
    if [[ -n $url ]] && probe "$url" "$ca" "$token_id=$token_secret"; then
      answered=1
      break
    fi
    sleep 0.2
  done
  if ((!answered)); then
    echo "fakepve.sh: fakepve did not answer within ${timeout}s; log $run_dir/fakepve.log:" >&2
    tail -n 30 "$run_dir/fakepve.log" >&2 || true
    kill "$pid" 2>/dev/null || true
    rm -f "$run_dir/fakepve.pid"
    exit 1
  fi

  local port_real=${url##*:}
  {
    echo "PVE_URL=$url"
    echo "PVE_API_URL=$url/api2/json"
    echo "PVE_HOST=$host"
    echo "PVE_PORT=$port_real"
    echo "PVE_TOKEN=$token_id=$token_secret"
    echo "PVE_TOKEN_ID=$token_id"
    echo "PVE_TOKEN_SECRET=$token_secret"
    echo "PVE_AUTH_HEADER=PVEAPIToken=$token_id=$token_secret"
    echo "PVE_USER=${PVE_USER:-root@pam}"
    echo "PVE_PASSWORD=${PVE_PASS:-secret}"
    if [[ $tls == 0 ]]; then
      echo "PVE_TLS=0"
      echo "PVE_CA_FILE="
    else
      echo "PVE_TLS=1"
      echo "PVE_CA_FILE=$ca"
    fi
    # The generated certificate names 127.0.0.1 and localhost, so verifying against PVE_CA_FILE works;
    # no client needs to skip verification.
    echo "PVE_TLS_INSECURE=0"
    echo "FAKEPVE_PID=$pid"
    echo "FAKEPVE_LOG=$run_dir/fakepve.log"
    echo "FAKEPVE_SEED=$seed"
    echo "FAKEPVE_VERSION=$FAKEPVE_VERSION"
    echo "RUN_DIR=$run_dir"
  } >"$run_dir/fakepve.env.tmp"
  mv "$run_dir/fakepve.env.tmp" "$run_dir/fakepve.env"
  echo "$run_dir/fakepve.env"
}

cmd_stop() {
  [[ $# -eq 1 ]] || usage
  local run_dir=$1
  [[ -d $run_dir ]] || die "no such run dir: $run_dir"
  local pidfile=$run_dir/fakepve.pid
  if [[ ! -f $pidfile ]]; then
    echo "fakepve.sh: nothing running in $run_dir" >&2
    return 0
  fi
  local pid
  pid=$(cat "$pidfile")
  if is_ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "fakepve.sh: pid $pid ignored SIGTERM; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  else
    echo "fakepve.sh: pid $pid from $pidfile is not running (or not fakepve); cleaning up" >&2
  fi
  rm -f "$pidfile" "$run_dir/fakepve.ready" "$run_dir/fakepve.key" "$run_dir/fakepve.env"
}

case ${1:-} in
  install) shift; [[ $# -eq 0 ]] || usage; cmd_install ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  -h | --help | help | '') usage ;;
  *) usage ;;
esac
