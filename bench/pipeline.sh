#!/usr/bin/env bash
# Throughput and peak memory of `posbridge run` (generic NDJSON -> generic NDJSON, SQLite
# state, exactly-once ledger on) for growing inputs, with a release build. Memory must stay
# flat as the input grows and throughput must not fall as the ledger grows; the figures go to
# docs/performance.md.
#
# Usage: bench/pipeline.sh [SIZES...]   (default: 10000 100000; 1000000 works too)
# Env:   BATCH_SIZE (default 1000), MODES (default "per_sale daily_summary"),
#        BENCH_DATA=DIR keeps the generated inputs there between runs.
# Each size also shows the floor of reading the input once (`cat FILE > /dev/null`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p posbridge -p posbridge-connector-generic
BIN=target/release/posbridge
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DATA=${BENCH_DATA:-$WORK}
mkdir -p "$DATA"
# Only the generic connector: a folder of its own, so other libraries are not loaded.
generic_plugins "$WORK/plugins"
SIZES=("${@:-10000 100000}")
BATCH_SIZE=${BATCH_SIZE:-1000}
MODES=${MODES:-per_sale daily_summary}
printf "%-9s %-14s %-8s %-10s %-9s %-8s %-8s\n" records mode seconds records/s us/record MB/s rss_MiB
for n in ${SIZES[@]}; do
  input="$DATA/sales-$n-seed7.ndjson"
  [ -s "$input" ] || "$BIN" sandbox generate --sales "$n" --seed 7 --out "$input" 2>/dev/null
  bytes=$(wc -c < "$input")
  /usr/bin/time -f "%e %M" -o "$WORK/time" cat "$input" > /dev/null
  read -r secs rss_kb < "$WORK/time"
  awk -v n="$n" -v s="$secs" -v b="$bytes" -v k="$rss_kb" 'BEGIN { s = (s > 0 ? s : 0.01);
    printf "%-9s %-14s %-8s %-10.0f %-9.2f %-8.0f %-8.1f\n", n, "(cat)", s, n / s, s * 1e6 / n, b / s / 1e6, k / 1024 }'
  for mode in $MODES; do
    rm -f "$WORK/out.ndjson" "$WORK/out.ndjson.posbridge-ledger" "$WORK/s.db"*
    stream=sales; [ "$mode" = daily_summary ] && stream=closures
    cat > "$WORK/p.yaml" <<YAML
name: bench
source: {connector: generic, config: {path: $input}}
sink: {connector: generic, mode: $mode, config: {path: $WORK/out.ndjson, stream: $stream}}
delivery: {batch_size: $BATCH_SIZE}
YAML
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$BIN" --plugin-dir "$WORK/plugins" run "$WORK/p.yaml" \
      --state "sqlite:$WORK/s.db" > "$WORK/run.out" 2>&1 || { cat "$WORK/run.out" >&2; exit 1; }
    read -r secs rss_kb < "$WORK/time"
    awk -v n="$n" -v m="$mode" -v s="$secs" -v b="$bytes" -v k="$rss_kb" 'BEGIN { s = (s > 0 ? s : 0.01);
      printf "%-9s %-14s %-8s %-10.0f %-9.2f %-8.0f %-8.1f\n", n, m, s, n / s, s * 1e6 / n, b / s / 1e6, k / 1024 }'
  done
done
