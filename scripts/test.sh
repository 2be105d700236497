#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, every test (unit, property,
# integration, crash tests with real processes), then the API contract checked from outside
# by schemathesis against a real server (scripts/contract.sh). Needs a Rust toolchain and
# python3; installs cargo-nextest and a pinned schemathesis (in target/) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest" >&2
  cargo install --locked cargo-nextest
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --doc --quiet
status=0
cargo nextest run --workspace --locked --no-fail-fast || status=$?
scripts/contract.sh || status=$?
exit $status
