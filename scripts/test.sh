#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, every test (unit, property,
# integration, crash tests with real processes). Needs only a Rust toolchain; installs
# cargo-nextest if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest" >&2
  cargo install --locked cargo-nextest
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --doc --quiet
# Last, so its summary line closes the output.
cargo nextest run --workspace --locked --no-fail-fast
