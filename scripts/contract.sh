#!/usr/bin/env bash
# The API contract, checked from outside: schemathesis (pinned, in its own virtualenv under
# target/) with every check, every phase (examples, coverage, fuzzing, stateful through the
# document's links), against a real `taquilla serve` on a free port with a data dir of its
# own, authenticated as the admin and as a buyer. Any failure fails the script.
#
# SCHEMATHESIS_MAX_EXAMPLES (default 25) bounds the cases per operation and phase;
# SCHEMATHESIS_SEED (default fixed) makes a run repeatable. Needs python3 with venv (installed
# with apt when missing and run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV=target/schemathesis-venv
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-25}
SEED=${SCHEMATHESIS_SEED:-20261129}

if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing python3-venv" >&2
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  else
    echo "python3 with the venv module is needed (apt-get install python3-venv)" >&2
    exit 1
  fi
fi
if [ "$("$VENV/bin/st" --version 2>/dev/null)" != "st, version $SCHEMATHESIS_VERSION" ]; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION into $VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build --locked --quiet -p taquilla
WORK=$(mktemp -d)
SERVER_PID=
stop() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap stop EXIT

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
export TAQUILLA_ADMIN_TOKEN=contract-admin-token-$RANDOM$RANDOM
./target/debug/taquilla serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" \
  --admin-token "$TAQUILLA_ADMIN_TOKEN" --buyer-secret "contract-buyer-secret-$RANDOM$RANDOM" \
  --allow-test-payments --body-limit-bytes 65536 >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!

# A sale that takes any hold the schema allows (no per-buyer or per-order limit), and a buyer.
export TAQUILLA_BUYER_TOKEN TAQUILLA_EVENT_ID
read -r TAQUILLA_EVENT_ID TAQUILLA_BUYER_TOKEN < <(python3 scripts/schemathesis/setup.py "$BASE" "$TAQUILLA_ADMIN_TOKEN")
export TAQUILLA_SCHEMATHESIS_HOOKS=$PWD/scripts/schemathesis/hooks.py

status=0
"$VENV/bin/st" --config-file scripts/schemathesis/schemathesis.toml run "$BASE/openapi.json" \
  --checks all --phases examples,coverage,fuzzing,stateful \
  --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers 1 \
  --report junit --report-dir target/schemathesis-report || status=$?
if grep -q "panicked" "$WORK/serve.log"; then
  echo "the server panicked:" >&2
  grep -A5 "panicked" "$WORK/serve.log" >&2
  status=1
fi
exit $status
