#!/usr/bin/env bash
# Build everything a newcomer needs from source, on a fresh Debian 12 with only
# rustup, Node 20 and npm: the wasm target, the matching wasm-bindgen-cli,
# the release wasm, the npm package in pkg/ and the host's npm dependencies.
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
command -v node >/dev/null || { echo "node not found: install Node.js 20 first" >&2; exit 1; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

[ -f Cargo.lock ] || cargo generate-lockfile
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$bindgen_version" ]; then
  say "installing wasm-bindgen-cli $bindgen_version (takes 2-3 minutes, once)"
  # Not --locked: the registry mirror lacks one of the CLI's locked dependency versions.
  cargo install wasm-bindgen-cli --version "$bindgen_version"
fi

node scripts/write-pkg-json.mjs
if [ ! -d node_modules ] || [ package.json -nt node_modules ] || [ package-lock.json -nt node_modules ]; then
  say "installing the host's npm dependencies (and binaryen's wasm-opt)"
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules
fi

say "building the wasm (profile wasm: the release profile at opt-level s)"
cargo build --profile wasm --lib --target wasm32-unknown-unknown
wasm=target/wasm32-unknown-unknown/wasm/proxbox_planner.wasm

# One build for every consumer: pkg/node.js instantiates this same .wasm in Node.
bg=pkg/web/proxbox_planner_bg.wasm
if [ ! "$bg" -nt "$wasm" ]; then
  say "wasm-bindgen --target web + wasm-opt"
  rm -rf pkg/web pkg/nodejs
  wasm-bindgen "$wasm" --target web --out-dir pkg/web
  # wasm-opt from npm's binaryen: Debian 12's is too old for reference types.
  # -Os, like the profile's opt-level (see Cargo.toml).
  node_modules/.bin/wasm-opt -Os "$bg" -o "$bg.opt"
  mv "$bg.opt" "$bg"
fi
say "pkg/ is ready: $(du -h "$bg" | cut -f1) of wasm"
