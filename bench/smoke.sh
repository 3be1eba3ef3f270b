#!/usr/bin/env bash
# Checks that the benchmark scripts run, on tiny inputs with the debug build (CI runs it after
# the tests, so nothing is compiled here beyond what the tests built). No figures: those come
# from release builds (docs/performance.md). Not covered: the Python peers of peers.sh (they
# need PyPI); it is only parsed
# (`bash -n`). pipeline.sh and export_api.sh build release binaries: not run here.
set -euo pipefail
cd "$(dirname "$0")"
export BENCH_PROFILE=debug
bash -n peers.sh
BENCH_PEERS=0 ROUNDS=1 ./peers.sh 200
ROUNDS=1 DAYS=2 ./http_source.sh 200
./startup.sh 2
./export.sh 200
