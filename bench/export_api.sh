#!/usr/bin/env bash
# `posbridge serve` answering from the hub, with a release build:
# - exportSalesData of a store's whole period (JSON and CSV): time to first byte, total time,
#   response size, and the server's peak RSS, for growing hub sizes (memory must stay flat:
#   the export is streamed);
# - exportReceiptData with 16 concurrent connections: sustained requests per second and latency
#   percentiles, measured by the HTTP load generator `oha` (installed from crates.io into
#   bench/.tools when missing), each request a POST with a JSON body and the Bearer key.
# The hub is filled by a pipeline run (generic NDJSON -> hub) on the server's state file.
#
# Usage: bench/export_api.sh [SIZES...]   (default: 100000 1000000)
#        RECEIPT_REQUESTS=50000 to change the receipt load (default 20000 requests).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
OHA="$PWD/bench/.tools/bin/oha"
if [ ! -x "$OHA" ]; then
  echo "installing the load generator oha into bench/.tools (once) ..." >&2
  # native-tls: the system's OpenSSL, quicker to build than rustls' aws-lc; only plain HTTP is used.
  cargo install --locked --quiet oha --no-default-features --features native-tls --root "$PWD/bench/.tools"
fi
BIN="$PWD/target/release/posbridge"
PLUGINS="$PWD/target/release"
WORK=$(mktemp -d)
SERVER=
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"' EXIT
SIZES=("${@:-100000 1000000}")
REQUESTS=${RECEIPT_REQUESTS:-20000}
CONNECTIONS=16
export POSBRIDGE_MASTER_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf "%-9s %-6s %-10s %-10s %-10s %-12s %-14s %s\n" sales format ttfb_s total_s mib_out server_rss receipts_per_s "receipt_latency_ms(p50/p95/p99/max)"
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
    rps=- lat=-
    if [ "$format" = csv ]; then
      # 2,000 receipts spread over the file, one JSON body a line (oha -Z takes the bodies
      # from the lines), $REQUESTS requests over 16 connections; every answer must be 200.
      awk -v step=$(( n >= 2000 ? n / 2000 : 1 )) 'NR % step == 0' "$WORK/in.ndjson" | grep -o '^{"id":"[^"]*"' \
        | cut -d'"' -f4 | awk '{ printf "{\"receiptId\": \"%s\"}\n", $0 }' > "$WORK/bodies"
      "$OHA" --no-tui --output-format json -n "$REQUESTS" -c "$CONNECTIONS" -m POST \
        -H "Authorization: Bearer $KEY" -T application/json -Z "$WORK/bodies" \
        "$URL/api/v1/exportReceiptData" > "$WORK/oha.json"
      jq -e --argjson n "$REQUESTS" '.statusCodeDistribution["200"] == $n' "$WORK/oha.json" >/dev/null \
        || { echo "exportReceiptData: not every answer was 200:" >&2; jq '.statusCodeDistribution, .errorDistribution' "$WORK/oha.json" >&2; exit 1; }
      rps=$(jq '.summary.requestsPerSec | floor' "$WORK/oha.json")
      lat=$(jq -r '[.latencyPercentiles.p50, .latencyPercentiles.p95, .latencyPercentiles.p99, .summary.slowest]
        | map(. * 1000 * 100 | round / 100 | tostring) | join("/")' "$WORK/oha.json")
    fi
    printf "%-9s %-6s %-10s %-10s %-10s %-12s %-14s %s\n" "$n" "$format" "$ttfb" "$total" "$mib" "$rss" "$rps" "$lat"
  done
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
done
