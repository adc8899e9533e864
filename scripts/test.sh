#!/usr/bin/env bash
# Set up from source, check the code (rustfmt, clippy, eslint, tsc), then run
# every test: Rust (native core) and Node (the built wasm package, through the host).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "==> cargo fmt --check, cargo clippy (warnings are errors)" >&2
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
cargo fmt --check
cargo clippy --quiet --all-targets -- -D warnings
echo "==> eslint, tsc --checkJs (host/ against the generated types)" >&2
npm run --silent lint
npm run --silent typecheck
echo "==> cargo test" >&2
cargo test --all-targets
echo "==> node --test (wasm package + host; every plan checked against pkg/schema/plan.schema.json)" >&2
NODE_OPTIONS="--import=$PWD/host/test-support/check-plans.js ${NODE_OPTIONS:-}" node --test host/test/
