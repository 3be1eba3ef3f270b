#!/usr/bin/env bash
# Start-up (issue 11, target 5): wall time of `posbridge plugins list` with all seven connector
# libraries in the plugin folder (and the built-in hub), release build. Runs it RUNS times after
# one warm-up call (files in the page cache, as on a server that has run before) and prints the
# median, the fastest and the slowest call in milliseconds. Target: median <= 50 ms.
#
# Usage: bench/startup.sh [RUNS]       (default 30)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RUNS=${1:-30}

bench_build
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/plugins"
# The connectors of plugins/ (not the test fixtures that share the target folder).
for crate in "$BENCH_ROOT"/plugins/*/; do
  cp "$PLUGINS/libposbridge_$(basename "$crate").so" "$WORK/plugins/"
done
libs=$(ls "$WORK/plugins" | wc -l)

list() { "$BIN" --plugin-dir "$WORK/plugins" plugins list; }
list >"$WORK/list.txt" 2>"$WORK/list.err"
loaded=$(($(wc -l <"$WORK/list.txt") - 1))
# Every library must load (no "skipped" warning), else the figure would flatter.
if [ -s "$WORK/list.err" ] || [ "$loaded" -ne $((libs + 1)) ]; then
  echo "expected $libs libraries and the hub to load, got $loaded:" >&2
  cat "$WORK/list.txt" "$WORK/list.err" >&2
  exit 1
fi
for _ in $(seq "$RUNS"); do
  start=$(date +%s%N)
  list >/dev/null
  end=$(date +%s%N)
  echo $(((end - start) / 1000)) >>"$WORK/us"
done
ms() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }
printf "%-12s %-6s %-10s %-8s %-8s\n" connectors runs median_ms min_ms max_ms
printf "%-12s %-6s %-10s %-8s %-8s\n" "$loaded" "$RUNS" "$(ms "$(median $(cat "$WORK/us"))")" \
  "$(ms "$(sort -n "$WORK/us" | head -n 1)")" "$(ms "$(sort -n "$WORK/us" | tail -n 1)")"
