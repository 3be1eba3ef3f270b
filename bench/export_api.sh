#!/usr/bin/env bash
# `posbridge serve` answering from the hub, with a release build:
# - exportSalesData of a store's whole period (JSON and CSV): time to first byte, total time,
#   response size, and the server's peak RSS, for growing hub sizes (memory must stay flat:
#   the export is streamed);
# - exportReceiptData with 16 concurrent clients: sustained requests per second.
# The hub is filled by a pipeline run (generic NDJSON -> hub) on the server's state file.
#
# Usage: bench/export_api.sh [SIZES...]   (default: 100000 1000000)
#        RECEIPT_REQUESTS=4000 to change the receipt load.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN="$PWD/target/release/posbridge"
PLUGINS="$PWD/target/release"
WORK=$(mktemp -d)
SERVER=
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"' EXIT
SIZES=("${@:-100000 1000000}")
REQUESTS=${RECEIPT_REQUESTS:-2000}
export POSBRIDGE_MASTER_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf "%-9s %-6s %-10s %-10s %-10s %-12s %-14s\n" sales format ttfb_s total_s mib_out server_rss receipts_per_s
for n in ${SIZES[@]}; do
  rm -f "$WORK"/s.db*
  "$BIN" sandbox generate --sales "$n" --seed 7 --out "$WORK/in.ndjson" 2>/dev/null
  cat > "$WORK/p.yaml" <<YAML
name: fill
source: {connector: generic, config: {path: $WORK/in.ndjson}}
sink: {connector: hub, config: {store_id: bench}}
delivery: {batch_size: 1000}
YAML
  "$BIN" --plugin-dir "$PLUGINS" run "$WORK/p.yaml" --state "sqlite:$WORK/s.db" >/dev/null 2>&1
  KEY=$("$BIN" apikey create --admin --state "sqlite:$WORK/s.db")
  "$BIN" --plugin-dir "$PLUGINS" serve --listen 127.0.0.1:0 --state "sqlite:$WORK/s.db" \
    --rate-limit 0 --request-timeout-secs 3600 > "$WORK/serve.out" 2>/dev/null &
  SERVER=$!
  for _ in $(seq 100); do grep -q "listening on" "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
  URL=$(sed -n 's/^listening on //p' "$WORK/serve.out")
  curl -sf -X POST "$URL/api/v1/stores" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d '{"storeId": "bench", "name": "Bench"}' >/dev/null
  for format in json csv; do
    read -r ttfb total size < <(curl -s -o /dev/null -w '%{time_starttransfer} %{time_total} %{size_download}\n' \
      -X POST "$URL/api/v1/exportSalesData" -H "Authorization: Bearer $KEY" \
      -H 'Content-Type: application/json' \
      -d "{\"storeId\": \"bench\", \"from\": \"2000-01-01\", \"to\": \"2100-12-31\", \"format\": \"$format\"}")
    rss=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER/status")
    mib=$(awk -v b="$size" 'BEGIN { printf "%.1f", b / 1048576 }')
    rps=-
    if [ "$format" = csv ]; then
      # Receipt ids of the generated file, cycled to $REQUESTS requests.
      head -n 2000 "$WORK/in.ndjson" | grep -o '^{"id":"[^"]*"' | cut -d'"' -f4 \
        | awk -v n="$REQUESTS" '{ id[NR] = $0 } END { for (i = 0; i < n; i++) print id[i % NR + 1] }' > "$WORK/ids"
      start=$(date +%s.%N)
      xargs < "$WORK/ids" -P 16 -I{} curl -sf -o /dev/null -X POST "$URL/api/v1/exportReceiptData" \
          -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d '{"receiptId": "{}"}'
      end=$(date +%s.%N)
      rps=$(awk -v n="$REQUESTS" -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", n / (b - a) }')
    fi
    printf "%-9s %-6s %-10s %-10s %-10s %-12s %-14s\n" "$n" "$format" "$ttfb" "$total" "$mib" "$rss" "$rps"
  done
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
done
