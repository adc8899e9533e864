#!/usr/bin/env bash
# Builds the wasm variants the benchmark compares (size and planJson speed side
# by side): each one from the current source, with one profile or codegen
# change, as a wasm-bindgen web build in .cache/bench/wasm/NAME/.
#   host/bench/wasm-variants.sh NAME ...     (no NAME: list the variants)
# then: BENCH_VARIANTS=NAME,... node host/bench/bench.js 10000
# The builds share target/variants (not the release build's target dir, so
# scripts/setup.sh's pkg/ stays as it is); one build at a time.
set -euo pipefail
cd "$(dirname "$0")/../.."

# NAME -> cargo --config overrides of the release profile | wasm-opt flags | RUSTFLAGS.
# (bulk-memory, sign-ext and the other post-MVP features Node 20 has are
# already on by default for wasm32-unknown-unknown since Rust 1.87;
# panic = "abort" is that target's default too.)
declare -A VARIANTS=(
  [o3]='opt-level=3|-O3|'
  [o2]='opt-level=2|-O2|'
  [os]='opt-level="s"|-Os|'
  [oz]='opt-level="z"|-Oz|'
  [os-wasm-opt-o3]='opt-level="s"|-O3|'
  [oz-wasm-opt-o3]='opt-level="z"|-O3|'
  [oz-converge]='opt-level="z"|-Oz --converge|'
  [o3-abort]='opt-level=3,panic="abort"|-O3|'
  [oz-abort]='opt-level="z",panic="abort"|-Oz|'
  [os-serde-o3]='opt-level="s",package.serde_json.opt-level=3,package.serde_core.opt-level=3|-Os|'
  [oz-serde-o3]='opt-level="z",package.serde_json.opt-level=3,package.serde_core.opt-level=3|-Oz|'
  [o3-inline-25]='opt-level=3|-O3|-C llvm-args=-inline-threshold=25'
  [o2-inline-25]='opt-level=2|-O2|-C llvm-args=-inline-threshold=25'
  [os-inline-100]='opt-level="s"|-Os|-C llvm-args=-inline-threshold=100'
)

if [ $# -eq 0 ]; then
  for name in $(printf '%s\n' "${!VARIANTS[@]}" | sort); do
    IFS='|' read -r profile opt flags <<<"${VARIANTS[$name]}"
    printf '%-16s profile.release: %s; wasm-opt %s%s\n' "$name" "$profile" "$opt" "${flags:+; RUSTFLAGS $flags}"
  done
  exit 0
fi

for name in "$@"; do
  [ -n "${VARIANTS[$name]:-}" ] || { echo "unknown variant $name (run without arguments for the list)" >&2; exit 1; }
  IFS='|' read -r profile opt flags <<<"${VARIANTS[$name]}"
  config=()
  IFS=',' read -ra settings <<<"$profile"
  for setting in "${settings[@]}"; do config+=(--config "profile.release.$setting"); done
  echo "==> $name: ${config[*]}, wasm-opt $opt${flags:+, RUSTFLAGS $flags}" >&2
  RUSTFLAGS="$flags" CARGO_TARGET_DIR=target/variants \
    cargo build --quiet --release --lib --target wasm32-unknown-unknown "${config[@]}"
  out=.cache/bench/wasm/$name
  rm -rf "$out"
  wasm-bindgen target/variants/wasm32-unknown-unknown/release/proxbox_planner.wasm --target web --out-dir "$out"
  # shellcheck disable=SC2086 # $opt is a list of flags
  node_modules/.bin/wasm-opt $opt "$out/proxbox_planner_bg.wasm" -o "$out/opt.wasm"
  mv "$out/opt.wasm" "$out/proxbox_planner_bg.wasm"
  echo "    $(du -k "$out/proxbox_planner_bg.wasm" | cut -f1) KiB" >&2
done
