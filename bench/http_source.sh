#!/usr/bin/env bash
# The HTTP source (issue 11, target 3): the Kassandro simulator on loopback (no added latency),
# read by
#   - posbridge `run`: kassandro connector -> generic NDJSON sink, SQLite state, ledger on;
#   - a plain HTTP client: one curl process fetching the same receipt pages (`/receipts/count`,
#     then `GET /receipts?limit=1000&offset=…&withitems=true` of the same window, one kept-alive
#     connection) into a file.
# Both against the same simulator process, alternating, ROUNDS rounds; the table shows median
# wall time, receipts/s and posbridge's share of the plain client's throughput (target >= 50 %).
# The simulator holds N receipts: 2 stores x 2 registers x DAYS days, N / (4 x DAYS) per register
# and day.
#
# Usage: bench/http_source.sh [N]      (default 100000)
#        ROUNDS=5 DAYS=10 bench/http_source.sh 50000
set -euo pipefail
source "$(dirname "$0")/lib.sh"
N=${1:-100000}
ROUNDS=${ROUNDS:-3}
DAYS=${DAYS:-25}
PER_DAY=$(((N + 4 * DAYS - 1) / (4 * DAYS)))
FIRST=2026-01-05
LAST=$(date -d "$FIRST + $((DAYS - 1)) days" +%F)

bench_build
WORK=$(mktemp -d)
SIM=
trap '[ -n "$SIM" ] && kill "$SIM" 2>/dev/null; rm -rf "$WORK"' EXIT

"$BIN" sandbox --vendor kassandro --seed 7 --stores 2 --registers-per-store 2 --days "$DAYS" \
  --sales-per-day "$PER_DAY" --start "$FIRST" --data-dir "$WORK/sim" >"$WORK/sim.out" 2>&1 &
SIM=$!
for _ in $(seq 600); do grep -q '^base_url: ' "$WORK/sim.out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^base_url: //p' "$WORK/sim.out")
KEY=$(sed -n 's/^api_key: //p' "$WORK/sim.out")
[ -n "$URL" ] || { cat "$WORK/sim.out" >&2; exit 1; }

cat >"$WORK/p.yaml" <<YAML
name: http-source
source:
  connector: kassandro
  config: {base_url: "$URL", api_key: "$KEY", page_size: 1000}
  start: $FIRST
  page_size: 1000
sink: {connector: generic, mode: per_sale, config: {path: $WORK/out/posbridge/sales.ndjson, stream: sales}}
delivery: {batch_size: 1000}
YAML

# The plain client: token, count, then every page of the window in one curl process.
TOKEN=$(curl -sf "$URL/v1.0/createtoken?type=account&key=$KEY" | grep -o '"token": *"[^"]*"' | cut -d'"' -f4)
[ -n "$TOKEN" ] || TOKEN=$(curl -sf "$URL/v1.0/gettoken?key=$KEY" | grep -o '"accountToken": *"[^"]*"' | cut -d'"' -f4)
plain_client() {
  local total
  total=$(curl -sf -H "kassandro-token: $TOKEN" \
    "$URL/v1.0/receipts/count?dateFrom=${FIRST}T00:00:00&dateTo=${LAST}T23:59:59" | grep -o '"count": *[0-9]*' | grep -o '[0-9]*$')
  local urls=()
  for ((off = 0; off < total; off += 1000)); do
    urls+=("$URL/v1.0/receipts?datefrom=$FIRST&dateto=$LAST&limit=1000&offset=$off&withitems=true")
  done
  curl -sf -H "kassandro-token: $TOKEN" "${urls[@]}" >"$WORK/out/plain/pages.json"
  echo "$total" >"$WORK/receipts"
}

run_one() {
  local tool=$1
  rm -rf "$WORK/out/$tool" "$WORK/s.db"*
  mkdir -p "$WORK/out/$tool"
  local start end
  start=$(date +%s.%N)
  case $tool in
    posbridge) "$BIN" --plugin-dir "$PLUGINS" run "$WORK/p.yaml" --state "sqlite:$WORK/s.db" \
      --to "$LAST" --json >"$WORK/run.log" 2>&1 || { tail -n 20 "$WORK/run.log" >&2; exit 1; } ;;
    plain) plain_client ;;
  esac
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }' >>"$WORK/$tool.times"
}

for _ in $(seq "$ROUNDS"); do
  run_one posbridge
  run_one plain
done
sales=$(wc -l <"$WORK/out/posbridge/sales.ndjson")
receipts=$(cat "$WORK/receipts")
[ "$sales" -gt 0 ] || { echo "posbridge read no sales" >&2; exit 1; }

pb=$(median $(cat "$WORK/posbridge.times"))
plain=$(median $(cat "$WORK/plain.times"))
echo "kassandro simulator, $receipts receipts over $DAYS days; $ROUNDS rounds, alternating; medians"
printf "%-10s %-10s %-10s %-12s %-10s\n" client records wall_s records_per_s share
printf "%-10s %-10s %-10s %-12s %-10s\n" plain "$receipts" "$plain" "$(per_s "$receipts" "$plain")" 1.00
printf "%-10s %-10s %-10s %-12s %-10s\n" posbridge "$sales" "$pb" "$(per_s "$sales" "$pb")" \
  "$(awk -v s="$sales" -v p="$pb" -v r="$receipts" -v q="$plain" 'BEGIN { printf "%.2f", (s / p) / (r / q) }')"
