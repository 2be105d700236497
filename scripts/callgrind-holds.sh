#!/usr/bin/env bash
# Server instructions per hold request under callgrind, instrumentation on only while the
# client sends N holds over one keep-alive connection.
# Usage: scripts/callgrind-holds.sh BIN N [serve flags...], e.g. for the rate limits' cost
# (on, never refusing): ... --rate-limit-buyer 1000000 --rate-limit-buyer-burst 1000000 ...
# SUBSCRIBERS=N keeps N live-push subscribers of the sale reading throughout (the push hub's cost).
# Needs valgrind, curl and python3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$1; n=$2; shift 2
dir=$(mktemp -d)
admin=bench-admin-token-0123456789
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/cg.out" \
  "$bin" serve --listen 127.0.0.1:0 --data-dir "$dir/data" --worker-threads 1 \
  --admin-token "$admin" --buyer-secret bench-buyer-secret-0123456789 "$@" > "$dir/out" 2> "$dir/err" &
vg=$!
for _ in $(seq 600); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.2; done
url=$(grep -o 'http://[0-9.:]*' "$dir/out" | head -1)
for _ in $(seq 600); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.2; done
auth=(-H "Authorization: Bearer $admin" -H 'Content-Type: application/json')
event=$(curl -sf "${auth[@]}" -d '{"name":"ab","currency":"EUR","hold_ttl_secs":86400}' "$url/v1/admin/events" | sed 's/.*"id":"\([^"]*\)".*/\1/')
curl -sf "${auth[@]}" -d '{"name":"ga","price_minor":1000}' "$url/v1/admin/events/$event/ticket-types" >/dev/null
curl -sf "${auth[@]}" -d '{"name":"all","capacity":100000000,"ticket_type_ids":[0]}' "$url/v1/admin/events/$event/quotas" >/dev/null
curl -sf "${auth[@]}" -X POST "$url/v1/admin/events/$event/open" >/dev/null
for i in $(seq 200); do
  echo "$(curl -sf "${auth[@]}" -d "{\"buyer_id\":\"ab-$i\"}" "$url/v1/admin/buyer-tokens" | sed 's/.*"token":"\([^"]*\)".*/\1/')"
done > "$dir/tokens"
hostport=${url#http://}
sub=
if [ "${SUBSCRIBERS:-0}" -gt 0 ]; then
  python3 "$here/callgrind/subscribers.py" "${hostport%:*}" "${hostport##*:}" "$event" "$SUBSCRIBERS" > "$dir/subs" &
  sub=$!
  for _ in $(seq 600); do grep -q subscribed "$dir/subs" 2>/dev/null && break; sleep 0.2; done
  cat "$dir/subs"
fi
# Warm-up (connection, first-use allocations), then measure.
python3 "$here/callgrind/holds.py" "${hostport%:*}" "${hostport##*:}" "$event" 200 "$dir/tokens" >/dev/null
callgrind_control -i on "$vg" >/dev/null
python3 "$here/callgrind/holds.py" "${hostport%:*}" "${hostport##*:}" "$event" "$n" "$dir/tokens"
callgrind_control -i off "$vg" >/dev/null
if [ -n "$sub" ]; then kill -TERM "$sub"; wait "$sub" || true; tail -1 "$dir/subs"; fi
kill -TERM "$vg"; wait "$vg" || true
callgrind_annotate "$dir/cg.out" > "$dir/annotate" 2>/dev/null || true
total=$(grep -m1 'PROGRAM TOTALS' "$dir/annotate" | awk '{gsub(",","",$1); print $1}')
echo "instructions: $total  per request: $((total / n))"
rm -rf "$dir"
