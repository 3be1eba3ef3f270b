#!/usr/bin/env bash
# The cost of loading connectors as libraries (issue 11, target 4): the same file pipeline
# (generic NDJSON -> generic NDJSON, per_sale, SQLite state, ledger on) run by
#   - cdylib: the release host loading libposbridge_generic.so from a plugin folder;
#   - static: a bench-only build of the host (cargo feature `bench-static`) with the generic
#     connector linked in, called through the same root module and ABI object, no library file
#     (its plugin folder is empty).
# Alternating, ROUNDS rounds; the table shows median wall time, records/s and the static build's
# advantage (target: the cdylib at most 5 % slower). Peak RSS beside it.
#
# The static binary is built into target/release too (other features, so other artifacts) and
# kept as target/release/posbridge-static; the default binary is then restored.
#
# Usage: bench/abi_cost.sh [N]         (default 100000)
#        ROUNDS=7 bench/abi_cost.sh 100000
set -euo pipefail
source "$(dirname "$0")/lib.sh"
N=${1:-100000}
ROUNDS=${ROUNDS:-5}
STATIC="$PLUGINS/posbridge-static"

if [ -z "${BENCH_NO_BUILD:-}" ]; then
  (cd "$BENCH_ROOT" && cargo build --release --quiet -p posbridge --features bench-static &&
    cp target/release/posbridge target/release/posbridge-static.new &&
    mv target/release/posbridge-static.new target/release/posbridge-static)
fi
bench_build
[ -x "$STATIC" ] || { echo "no static build at $STATIC (run without BENCH_NO_BUILD)" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/cdylib" "$WORK/static"
cp "$PLUGINS/libposbridge_generic.so" "$WORK/cdylib/"

# Each build must find generic where it is expected to.
"$STATIC" --plugin-dir "$WORK/static" plugins list | grep -q '^generic .*statically linked' ||
  { echo "$STATIC has no statically linked generic connector" >&2; exit 1; }
"$BIN" --plugin-dir "$WORK/cdylib" plugins list | grep -q '^generic .*libposbridge_generic.so' ||
  { echo "$BIN does not load generic from its library" >&2; exit 1; }

"$BIN" sandbox generate --sales "$N" --seed 7 --out "$WORK/in.ndjson" 2>/dev/null
records=$(wc -l <"$WORK/in.ndjson")
sales_pipeline "$WORK/p.yaml" abi-cost "$WORK/in.ndjson" "$WORK/out.ndjson"

run_one() {
  local build=$1 bin=$BIN
  [ "$build" = static ] && bin=$STATIC
  rm -f "$WORK/out.ndjson"* "$WORK/s.db"*
  timed "$WORK/t" "$bin" --plugin-dir "$WORK/$build" run "$WORK/p.yaml" --state "sqlite:$WORK/s.db" --json
  [ "$(wc -l <"$WORK/out.ndjson")" = "$records" ] || { echo "$build wrote a short file" >&2; exit 1; }
  cat "$WORK/t" >>"$WORK/$build.times"
}

for _ in $(seq "$ROUNDS"); do
  run_one cdylib
  run_one static
done
printf "%-8s %-8s %-8s %-12s %-12s\n" build records wall_s records_per_s peak_rss_mib
for build in cdylib static; do
  wall=$(median $(awk '{ print $1 }' "$WORK/$build.times"))
  printf "%-8s %-8s %-8s %-12s %-12s\n" "$build" "$records" "$wall" "$(per_s "$records" "$wall")" \
    "$(mib "$(median $(awk '{ print $2 }' "$WORK/$build.times"))")"
done
cd_wall=$(median $(awk '{ print $1 }' "$WORK/cdylib.times"))
st_wall=$(median $(awk '{ print $1 }' "$WORK/static.times"))
echo "cdylib / static wall time: $(awk -v a="$cd_wall" -v b="$st_wall" 'BEGIN { printf "%+.1f %%", (a / b - 1) * 100 }') (ROUNDS=$ROUNDS)"
