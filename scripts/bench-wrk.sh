#!/usr/bin/env bash
# External load generator check (issue 3): POST /v1/events/{id}/holds with wrk against a
# release server pinned to one core, next to the same server's /healthz rate in the same run.
# Needs wrk (Debian package `wrk`; installed if missing and apt-get is available).
# Usage: scripts/bench-wrk.sh [duration, default 10s] [connections, default 64]
# One host at full speed is what the rate limits stop: they are off unless RATE_LIMIT (per second,
# with RATE_LIMIT_BURST) is set, e.g. RATE_LIMIT=1000000 RATE_LIMIT_BURST=1000000 to measure their cost.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
connections=${2:-64}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release -q -p taquilla
dir=$(mktemp -d)
admin=bench-admin-token-0123456789
trap 'kill $server 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
./target/release/taquilla serve --listen 127.0.0.1:0 --data-dir "$dir/data" --cpu 0 --worker-threads 1 \
  --admin-token "$admin" --buyer-secret bench-buyer-secret-0123456789 \
  --rate-limit-buyer "${RATE_LIMIT:-off}" --rate-limit-buyer-burst "${RATE_LIMIT_BURST:-30}" \
  --rate-limit-address "${RATE_LIMIT:-off}" --rate-limit-address-burst "${RATE_LIMIT_BURST:-1000}" \
  > "$dir/out" 2> "$dir/err" &
server=$!
for _ in $(seq 100); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*' "$dir/out" | head -1)
for _ in $(seq 100); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.1; done
auth=(-H "Authorization: Bearer $admin" -H 'Content-Type: application/json')
event=$(curl -sf "${auth[@]}" -d '{"name":"wrk","currency":"EUR","hold_ttl_secs":86400}' "$url/v1/admin/events" | sed 's/.*"id":"\([^"]*\)".*/\1/')
curl -sf "${auth[@]}" -d '{"name":"ga","price_minor":1000}' "$url/v1/admin/events/$event/ticket-types" >/dev/null
curl -sf "${auth[@]}" -d '{"name":"all","capacity":100000000,"ticket_type_ids":[0]}' "$url/v1/admin/events/$event/quotas" >/dev/null
curl -sf "${auth[@]}" -X POST "$url/v1/admin/events/$event/open" >/dev/null
for i in $(seq 200); do
  token=$(curl -sf "${auth[@]}" -d "{\"buyer_id\":\"wrk-$i\"}" "$url/v1/admin/buyer-tokens" | sed 's/.*"token":"\([^"]*\)".*/\1/')
  echo "$token"
done > "$dir/tokens"
echo "== GET /healthz (server on core 0, wrk on core 1, $connections connections, $duration)"
taskset -c 1 wrk -t1 -c"$connections" -d"$duration" "$url/healthz"
echo "== POST $url/v1/events/$event/holds (durable: each 201 after its fsync)"
taskset -c 1 wrk -t1 -c"$connections" -d"$duration" -s scripts/wrk/holds.lua "$url" -- "$event" "$dir/tokens"
echo "== stats"
curl -sf "${auth[@]}" "$url/v1/admin/events/$event/stats" | head -c 300; echo
