#!/usr/bin/env bash
# Set up from source, then run every test: Rust (native core) and Node (the
# built wasm package, through the host).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "==> cargo test" >&2
cargo test --all-targets
echo "==> node --test (wasm package + host)" >&2
node --test host/test/
