#!/usr/bin/env bash
# posbridge against its Python peers on the same file (issue 11, "Peers, reproducibly"):
#   - posbridge `run`, generic NDJSON -> generic NDJSON (per_sale), SQLite state, ledger on;
#   - Singer: `tap-jsonl | target-jsonl` (PyPI);
#   - Airbyte: `source-file read` (PyPI `airbyte-source-file`, local JSONL) piped to a file.
# All read the file `posbridge sandbox generate --sales N --seed 7` writes. The commands run
# alternating (posbridge, Singer, Airbyte, posbridge, ...) for ROUNDS rounds; the table shows the
# median wall time, records/s, the ratio of posbridge's throughput to each, and the median peak
# RSS (for a pipe of two processes: the sum of both peaks, as they run at the same time).
#
# The peers are installed on first use into bench/.venv/<package> (one virtual environment per
# package: target-jsonl pins an old jsonschema that tap-jsonl's singer-sdk cannot import).
#
# Usage: bench/peers.sh [N]            (default 100000)
#        ROUNDS=5 bench/peers.sh 100000
#        BENCH_PEERS=0 bench/peers.sh 1000   posbridge only (no Python, no network)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
N=${1:-100000}
ROUNDS=${ROUNDS:-3}
PEERS=${BENCH_PEERS:-1}
VENV="$BENCH_ROOT/bench/.venv"

bench_build
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
generic_plugins "$WORK/plugins"

# Installs PACKAGE into its own venv; prints nothing on success, the reason on failure.
install_peer() {
  local pkg=$1
  [ -x "$VENV/$pkg/bin/python" ] && "$VENV/$pkg/bin/pip" show -q "$pkg" >/dev/null 2>&1 && return 0
  python3 -m venv "$VENV/$pkg"
  "$VENV/$pkg/bin/pip" install --quiet --disable-pip-version-check "$pkg" >"$WORK/pip-$pkg.log" 2>&1 || {
    echo "cannot install $pkg from PyPI:" >&2
    tail -n 5 "$WORK/pip-$pkg.log" >&2
    return 1
  }
}

"$BIN" sandbox generate --sales "$N" --seed 7 --out "$WORK/in.ndjson" 2>/dev/null
records=$(wc -l <"$WORK/in.ndjson")
bytes=$(stat -c %s "$WORK/in.ndjson")

# Tools present: posbridge always; the peers when they install.
tools=(posbridge)
if [ "$PEERS" != 0 ]; then
  install_peer tap-jsonl && install_peer target-jsonl && tools+=(singer)
  if install_peer airbyte-source-file; then
    tools+=(airbyte)
    # The configured catalog, discovered (untimed) from the first records of the same file.
    head -n 1000 "$WORK/in.ndjson" >"$WORK/sample.ndjson"
    ab_config() { echo "{\"dataset_name\": \"sales\", \"format\": \"jsonl\", \"url\": \"$1\", \"provider\": {\"storage\": \"local\"}}"; }
    ab_config "$WORK/sample.ndjson" >"$WORK/ab-discover.json"
    ab_config "$WORK/in.ndjson" >"$WORK/ab.json"
    "$VENV/airbyte-source-file/bin/source-file" discover --config "$WORK/ab-discover.json" \
      | grep '"CATALOG"' | "$VENV/airbyte-source-file/bin/python" -c '
import json, sys
cat = json.load(sys.stdin)["catalog"]
print(json.dumps({"streams": [{"stream": s, "sync_mode": "full_refresh",
                               "destination_sync_mode": "overwrite"} for s in cat["streams"]]}))' \
      >"$WORK/ab-catalog.json"
  fi
fi

sales_pipeline "$WORK/p.yaml" peers "$WORK/in.ndjson" "$WORK/out/posbridge.ndjson"
echo "{\"path\": \"$WORK/in.ndjson\", \"stream_name\": \"sales\"}" >"$WORK/tap.json"
echo "{\"destination_path\": \"$WORK/out\", \"do_timestamp_file\": false}" >"$WORK/target.json"

# run_one TOOL ROUND: one timed run from a clean output folder and state; appends
# "wall rss_kib" to $WORK/TOOL.times. The clock runs around the tool's command alone: the
# output's records are counted after it stops. Before it starts, `sync` writes back what the
# previous tool left dirty, so that no tool pays for another's writes.
run_one() {
  local tool=$1 t="$WORK/$1.$2"
  rm -rf "$WORK/out" "$WORK/s.db"*
  mkdir -p "$WORK/out"
  sync
  local start end rss
  start=$(date +%s.%N)
  case $tool in
    posbridge)
      timed "$t" "$BIN" --plugin-dir "$PLUGINS" run "$WORK/p.yaml" --state "sqlite:$WORK/s.db" --json
      end=$(date +%s.%N)
      rss=$(awk '{ print $2 }' "$t")
      out=$(wc -l <"$WORK/out/posbridge.ndjson")
      ;;
    singer)
      /usr/bin/time -f "%M" -o "$t.tap" "$VENV/tap-jsonl/bin/tap-jsonl" --config "$WORK/tap.json" 2>"$t.tap.log" \
        | /usr/bin/time -f "%M" -o "$t.target" "$VENV/target-jsonl/bin/target-jsonl" --config "$WORK/target.json" >/dev/null 2>"$t.target.log"
      end=$(date +%s.%N)
      rss=$(($(tail -n 1 "$t.tap") + $(tail -n 1 "$t.target")))
      out=$(wc -l <"$WORK/out/sales.jsonl")
      ;;
    airbyte)
      /usr/bin/time -f "%M" -o "$t.ab" "$VENV/airbyte-source-file/bin/source-file" read \
        --config "$WORK/ab.json" --catalog "$WORK/ab-catalog.json" >"$WORK/out/airbyte.jsonl" 2>"$t.ab.log"
      end=$(date +%s.%N)
      rss=$(tail -n 1 "$t.ab")
      out=$(grep -c '"type": "RECORD"' "$WORK/out/airbyte.jsonl" || true)
      ;;
  esac
  if [ "$out" != "$records" ]; then
    echo "$tool wrote $out records of $records" >&2
    exit 1
  fi
  echo "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') $rss" >>"$WORK/$tool.times"
}

for round in $(seq "$ROUNDS"); do
  for tool in "${tools[@]}"; do
    run_one "$tool" "$round"
  done
done

echo "input: $records sales, $(mib $((bytes / 1024))) MiB; $ROUNDS rounds, alternating; medians"
printf "%-10s %-10s %-12s %-12s %-16s %-14s\n" tool wall_s records_per_s mb_per_s posbridge_speedup peak_rss_mib
pb_wall=$(median $(awk '{ print $1 }' "$WORK/posbridge.times"))
for tool in "${tools[@]}"; do
  wall=$(median $(awk '{ print $1 }' "$WORK/$tool.times"))
  rss=$(median $(awk '{ print $2 }' "$WORK/$tool.times"))
  mbs=$(awk -v b="$bytes" -v s="$wall" 'BEGIN { printf "%.1f", b / 1e6 / (s > 0 ? s : 0.001) }')
  printf "%-10s %-10s %-12s %-12s %-16s %-14s\n" "$tool" "$wall" "$(per_s "$records" "$wall")" "$mbs" \
    "$(ratio "$wall" "$pb_wall")" "$(mib "$rss")"
done
