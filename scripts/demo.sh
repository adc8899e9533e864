#!/usr/bin/env bash
# Set up from source, then plan the bundled sample cluster and print the plan.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >&2
exec node host/cli.js demo "$@"
