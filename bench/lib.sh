# Helpers shared by the benchmark scripts (sourced, not run).
#
# BENCH_PROFILE=debug uses (and builds) the debug binaries instead of the release ones: only for
# checking that a script runs (bench/smoke.sh), never for figures. BENCH_NO_BUILD=1 skips the
# build and uses the binaries as they are.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_PROFILE=${BENCH_PROFILE:-release}
# Where cargo builds: CARGO_TARGET_DIR when set (relative to the repository, where cargo runs).
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR="$BENCH_ROOT/$TARGET_DIR" ;; esac
BIN="$TARGET_DIR/$BENCH_PROFILE/posbridge"
PLUGINS="$TARGET_DIR/$BENCH_PROFILE"

# Builds the host and every connector, unless BENCH_NO_BUILD is set.
bench_build() {
  if [ -z "${BENCH_NO_BUILD:-}" ]; then
    if [ "$BENCH_PROFILE" = debug ]; then
      # What the end-to-end tests build (tests/src/lib.rs), so that after them this is a no-op.
      local pkgs=(-p posbridge) crate
      for crate in "$BENCH_ROOT"/plugins/*/Cargo.toml; do
        pkgs+=(-p "$(sed -n 's/^name = "\(.*\)"/\1/p' "$crate" | head -n 1)")
      done
      (cd "$BENCH_ROOT" && cargo build --quiet "${pkgs[@]}")
    else
      (cd "$BENCH_ROOT" && cargo build --release --quiet)
    fi
  fi
  [ -x "$BIN" ] || { echo "no release build at $BIN" >&2; exit 1; }
}

# generic_plugins DIR: a plugin folder DIR holding the generic connector's library alone (after a
# workspace build the profile's folder also holds the test fixtures' libraries); sets PLUGINS.
generic_plugins() {
  mkdir -p "$1"
  cp "$PLUGINS"/libposbridge_generic.so "$1/" 2>/dev/null ||
    cp "$PLUGINS"/libposbridge_generic.dylib "$1/"
  PLUGINS="$1"
}

# timed FILE CMD...: runs CMD with /usr/bin/time, writing "wall_seconds peak_rss_kib" to FILE.
# CMD's stdout and stderr go to FILE.log. Fails if CMD fails.
timed() {
  local out=$1
  shift
  /usr/bin/time -f "%e %M" -o "$out" "$@" >"$out.log" 2>&1 || {
    echo "failed: $*" >&2
    tail -n 20 "$out.log" >&2
    return 1
  }
}

# median N...: the median of the numbers (the middle one; for an even count the lower middle).
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# mib KIB: KiB as MiB with one decimal.
mib() {
  awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'
}

# per_s COUNT SECONDS: COUNT / SECONDS, rounded.
per_s() {
  awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / (s > 0 ? s : 0.001) }'
}

# ratio A B: A / B with two decimals.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / (b > 0 ? b : 0.001) }'
}

# sales_pipeline FILE NAME IN OUT: a generic NDJSON -> generic NDJSON (per_sale) pipeline file.
sales_pipeline() {
  cat >"$1" <<YAML
name: $2
source: {connector: generic, config: {path: $3}}
sink: {connector: generic, mode: per_sale, config: {path: $4, stream: sales}}
delivery: {batch_size: 1000}
YAML
}
