#!/usr/bin/env bash
# What loading connectors as libraries costs (issue 11, target 4: cdylib ≤ 1.05 × static).
# The same pipeline file (generic NDJSON -> generic NDJSON, per_sale, SQLite state, ledger on,
# `batch_size: 1000`) on the same generated input, run by
#   - cdylib: the usual host, loading libposbridge_generic from a plugin folder;
#   - static: a bench-only host built with the feature `bench-static-connectors`, which has the
#     generic connector linked in and registers it from the root module its library exports
#     (docs/decisions/011-static-connectors-for-benchmarks.md); its plugin folder is empty.
# Both run alternating (the first of each round alternates too) for ROUNDS rounds, each with a
# fresh state database and output. The table shows the medians of wall time, CPU seconds (user +
# system) and peak RSS, and cdylib / static. Every run's output must be byte-identical to the
# first one's, and the static host must list `generic` as linked, ahead of the library in the
# same folder the cdylib host uses.
#
# Usage: bench/abi.sh [N]              (default 100000)
# Env:   ROUNDS (default 3), BENCH_DATA=DIR keeps the generated input there between runs,
#        BENCH_NO_BUILD=1, BENCH_PROFILE=debug (lib.sh). The static host is built into
#        $TARGET_DIR/static (its own target directory: it never replaces target/release/posbridge).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
N=${1:-100000}
ROUNDS=${ROUNDS:-3}
STATIC_TARGET="$TARGET_DIR/static"
STATIC_BIN="$STATIC_TARGET/$BENCH_PROFILE/posbridge"

bench_build
if [ -z "${BENCH_NO_BUILD:-}" ]; then
  profile=(--release)
  [ "$BENCH_PROFILE" = debug ] && profile=()
  (cd "$BENCH_ROOT" && cargo build --quiet "${profile[@]}" -p posbridge \
    --features bench-static-connectors --target-dir "$STATIC_TARGET")
fi
[ -x "$STATIC_BIN" ] || { echo "no static build at $STATIC_BIN" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DATA=${BENCH_DATA:-$WORK}
mkdir -p "$DATA"
input="$DATA/sales-$N-seed7.ndjson"
[ -s "$input" ] || "$BIN" sandbox generate --sales "$N" --seed 7 --out "$input" 2>/dev/null
records=$(wc -l <"$input")
bytes=$(stat -L -c %s "$input")

# The cdylib host's folder holds only the generic library; the static host's is empty.
mkdir -p "$WORK/plugins" "$WORK/none"
cp "$PLUGINS"/libposbridge_generic.so "$WORK/plugins/" 2>/dev/null ||
  cp "$PLUGINS"/libposbridge_generic.dylib "$WORK/plugins/"
sales_pipeline "$WORK/p.yaml" abi "$input" "$WORK/out/sales.ndjson"

# generic_file BIN DIR: the FILE column of `plugins list` for generic.
generic_file() {
  "$1" --plugin-dir "$2" plugins list 2>/dev/null | awk '$1 == "generic" { print $NF }'
}
case $(generic_file "$BIN" "$WORK/plugins") in
  */libposbridge_generic.*) ;;
  *) echo "the cdylib host does not load generic from $WORK/plugins" >&2; exit 1 ;;
esac
# Even with the library beside it, the static host runs the linked code.
for dir in "$WORK/plugins" "$WORK/none"; do
  if [ "$(generic_file "$STATIC_BIN" "$dir")" != linked-static ]; then
    echo "the static host does not list generic as linked-static (plugin folder $dir):" >&2
    "$STATIC_BIN" --plugin-dir "$dir" plugins list >&2 || true
    exit 1
  fi
done
if [ -n "$(generic_file "$BIN" "$WORK/none")" ]; then
  echo "the cdylib host finds generic without its library" >&2
  exit 1
fi

# run_one VARIANT ROUND: one timed run from a fresh output and state; appends
# "wall rss_kib" to $WORK/VARIANT.times and checks the output against the first run's.
run_one() {
  local variant=$1 t="$WORK/$1.$2" bin dir
  case $variant in
    cdylib) bin=$BIN dir="$WORK/plugins" ;;
    static) bin=$STATIC_BIN dir="$WORK/none" ;;
  esac
  rm -rf "$WORK/out" "$WORK/s.db"*
  mkdir -p "$WORK/out"
  # Wall, peak RSS and CPU seconds (user + system: steadier than wall on a shared machine).
  /usr/bin/time -f "%e %M %U %S" -o "$t" "$bin" --plugin-dir "$dir" run "$WORK/p.yaml" \
    --state "sqlite:$WORK/s.db" >"$t.log" 2>&1 || { tail -n 20 "$t.log" >&2; exit 1; }
  awk '{ printf "%s %s %.2f\n", $1, $2, $3 + $4 }' "$t" >>"$WORK/$variant.times"
  local out
  out=$(wc -l <"$WORK/out/sales.ndjson")
  if [ "$out" != "$records" ]; then
    echo "$variant wrote $out records of $records" >&2
    exit 1
  fi
  if [ -e "$WORK/reference.ndjson" ]; then
    cmp "$WORK/reference.ndjson" "$WORK/out/sales.ndjson" >&2 || {
      echo "$variant (round $2) wrote another output than the first run" >&2
      exit 1
    }
  else
    mv "$WORK/out/sales.ndjson" "$WORK/reference.ndjson"
  fi
}

for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order=(cdylib static); else order=(static cdylib); fi
  for variant in "${order[@]}"; do
    run_one "$variant" "$round"
  done
done

echo "input: $records sales, $(mib $((bytes / 1024))) MiB; $ROUNDS rounds, alternating; outputs identical"
printf "%-8s %-8s %-8s %-10s %-14s %s\n" variant wall_s cpu_s sales_per_s peak_rss_mib "walls (every round)"
for variant in static cdylib; do
  col() { median $(awk -v c="$1" '{ print $c }' "$WORK/$variant.times"); }
  wall=$(col 1)
  printf "%-8s %-8s %-8s %-10s %-14s %s\n" "$variant" "$wall" "$(col 3)" "$(per_s "$records" "$wall")" \
    "$(mib "$(col 2)")" "$(awk '{ print $1 }' "$WORK/$variant.times" | paste -sd ' ')"
done
med() { median $(awk -v c="$2" '{ print $c }' "$WORK/$1.times"); }
echo "cdylib / static, median wall: $(ratio "$(med cdylib 1)" "$(med static 1)"); median CPU: \
$(ratio "$(med cdylib 3)" "$(med static 3)") (target: wall ≤ 1.05)"
