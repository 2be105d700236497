#!/usr/bin/env bash
# The README's flash-sale figures in one go: the closed loop N times (server pinned to core
# 0, the bench on the other cores), then the open loop at 70 % of the closed loop's median
# ops/s, N times. Prints each run's line and the medians (the CPU ratios: ceiling / scenario
# CPU per request of the server and of the bench client, each what the ceiling ratio would be
# if that side's CPU were the only limit). Every run is audited; a failed audit stops the
# script.
# Usage: scripts/bench-flash-sale.sh [runs, default 5] [extra bench flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
shift || true
cargo build --release -q -p taquilla
bin=./target/release/taquilla

median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

closed_ops=() ratios=() closed_hold_p99=() busy_ratios=() cpu_ratios=() client_ratios=()
for i in $(seq "$runs"); do
  out=$("$bin" bench flash-sale --server-cores 0 "$@" 2>/dev/null)
  grep -q '^result: PASS' <<<"$out" || { echo "$out"; echo "audit failed" >&2; exit 1; }
  ops=$(awk '/^total/{print $3}' <<<"$out")
  ceiling=$(awk -F": " "/^ceiling/{print \$2}" <<<"$out" | awk "{print \$1}")
  ratio=$(awk '/^ceiling/{print $NF}' <<<"$out")
  p99=$(awk '/^hold /{print $6}' <<<"$out")
  # All requests over the busy time (the figure before the rush was the headline), and the
  # server's CPU ratio.
  busy=$(awk '/^  all requests:/{print $3}' <<<"$out")
  busy_ratio=$(awk -v b="$busy" -v c="$ceiling" 'BEGIN{printf "%.2f", b / c}')
  cpu_ratio=$(grep -o 'server CPU ratio [0-9.]*' <<<"$out" | awk '{print $NF}')
  client_ratio=$(grep -o 'client CPU ratio [0-9.]*' <<<"$out" | awk '{print $NF}')
  echo "closed loop run $i: $ops ops/s, ceiling $ceiling ops/s, ratio $ratio, hold p99 $p99 ms;" \
    "all requests over busy time $busy ops/s (ratio $busy_ratio); CPU ratio server $cpu_ratio, client $client_ratio"
  closed_ops+=("$ops") ratios+=("$ratio") closed_hold_p99+=("$p99") busy_ratios+=("$busy_ratio")
  cpu_ratios+=("$cpu_ratio") client_ratios+=("$client_ratio")
done
m_ops=$(printf '%s\n' "${closed_ops[@]}" | median)
m_ratio=$(printf '%s\n' "${ratios[@]}" | median)
echo "closed loop median: $m_ops ops/s, ratio $m_ratio; busy-time ratio" \
  "$(printf '%s\n' "${busy_ratios[@]}" | median); CPU ratio server $(printf '%s\n' "${cpu_ratios[@]}" | median)," \
  "client $(printf '%s\n' "${client_ratios[@]}" | median)"

rate=$(awk -v m="$m_ops" 'BEGIN{printf "%d", m * 0.7}')
hold_p99=() read_p99=()
for i in $(seq "$runs"); do
  out=$("$bin" bench flash-sale --server-cores 0 --ceiling-secs 0 --rate "$rate" "$@" 2>/dev/null)
  grep -q '^result: PASS' <<<"$out" || { echo "$out"; echo "audit failed" >&2; exit 1; }
  hp=$(awk '/^hold /{print $6}' <<<"$out")
  hp50=$(awk '/^hold /{print $4}' <<<"$out")
  rp=$(awk '/^read /{print $6}' <<<"$out")
  echo "open loop run $i at $rate req/s: hold p50 $hp50 ms, p99 $hp ms; read p99 $rp ms"
  hold_p99+=("$hp") read_p99+=("$rp")
done
echo "open loop median at $rate req/s: hold p99 $(printf '%s\n' "${hold_p99[@]}" | median) ms," \
  "read p99 $(printf '%s\n' "${read_p99[@]}" | median) ms"
