#!/usr/bin/env bash
# `posbridge export` (issue 11, target 6): one generated NDJSON file of N sales
# (`posbridge sandbox generate --seed 7`) exported through the generic connector to CSV and to a
# JSON array, release build; wall time, records/s and peak RSS per size and format. Memory must
# stay flat (<= 64 MiB) from 100 k to 1 M sales: records are written as they are read.
#
# Usage: bench/export.sh [SIZES...]    (default: 100000 1000000)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SIZES=("${@:-100000 1000000}")

bench_build
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
generic_plugins "$WORK/plugins"
printf "%-9s %-6s %-9s %-12s %-10s %-12s\n" sales format seconds records_per_s out_mib peak_rss_mib
for n in ${SIZES[@]}; do
  "$BIN" sandbox generate --sales "$n" --seed 7 --out "$WORK/in.ndjson" 2>/dev/null
  records=$(wc -l <"$WORK/in.ndjson")
  echo "{\"path\": \"$WORK/in.ndjson\"}" >"$WORK/config.json"
  for format in csv json; do
    rm -f "$WORK/out"
    timed "$WORK/t" "$BIN" --plugin-dir "$PLUGINS" export --connector generic --config "$WORK/config.json" \
      --format "$format" --output "$WORK/out"
    read -r secs rss_kb <"$WORK/t"
    grep -q "^exported $records sales records" "$WORK/t.log" || { cat "$WORK/t.log" >&2; exit 1; }
    printf "%-9s %-6s %-9s %-12s %-10s %-12s\n" "$records" "$format" "$secs" "$(per_s "$records" "$secs")" \
      "$(mib $(($(stat -c %s "$WORK/out") / 1024)))" "$(mib "$rss_kb")"
  done
  rm -f "$WORK/in.ndjson"
done
