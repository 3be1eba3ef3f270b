#!/usr/bin/env bash
# Throughput and peak memory of `posbridge run` (generic NDJSON -> generic NDJSON, SQLite
# state) for growing inputs, with a release build. Memory must stay flat as the input grows
# (pages flow through a bounded channel); the figures go to docs/performance.md.
#
# Usage: bench/pipeline.sh [SIZES...]   (default: 10000 50000 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN=target/release/posbridge
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
SIZES=("${@:-10000 50000 200000}")
printf "%-10s %-10s %-12s %-14s %-12s\n" records mode seconds records_per_s max_rss_mib
for n in ${SIZES[@]}; do
  "$BIN" sandbox generate --sales "$n" --seed 1 --out "$WORK/in-$n.ndjson" 2>/dev/null
  for mode in per_sale daily_summary; do
    rm -f "$WORK/out.ndjson" "$WORK/out.ndjson.posbridge-ledger" "$WORK/s.db"*
    stream=sales; [ "$mode" = daily_summary ] && stream=closures
    cat > "$WORK/p.yaml" <<YAML
name: bench
source: {connector: generic, config: {path: $WORK/in-$n.ndjson}}
sink: {connector: generic, mode: $mode, config: {path: $WORK/out.ndjson, stream: $stream}}
delivery: {batch_size: 1000}
YAML
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$BIN" --plugin-dir target/release run "$WORK/p.yaml" --state "sqlite:$WORK/s.db" >/dev/null 2>&1
    read -r secs rss_kb < "$WORK/time"
    rate=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / (s > 0 ? s : 0.01) }')
    rss=$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')
    printf "%-10s %-10s %-12s %-14s %-12s\n" "$n" "$mode" "$secs" "$rate" "$rss"
  done
done
