#!/usr/bin/env bash
# The load test (docs/performance.md), end to end: brings up the production topology on loopback
# with the bare DRF floor beside it (bench/stack.py up --floor), then
#   1. the SLA verdict as ratios (bench/load/verdict.py): CPU per signed-in call vs the floor, the
#      sustainable REST rate vs the bare mix's saturation, feed p95 vs a bare websockets broadcast;
#      verdict.md + verdict.json;
#   2. the mixed workload (bench/load/run.py): results.json + load.png;
# always tears the stack down. Everything lands in the run directory.
#
#   bench/run_load.sh                                  # both: the verdict, then 1,000 REST users + 5,000 sockets
#   BENCH_MIXED=0 bench/run_load.sh                    # the verdict only (~15 min)
#   VERDICT_ARGS=--quick BENCH_MIXED=0 bench/run_load.sh                # a quick try of the verdict
#   BENCH_VERDICT=0 bench/run_load.sh --users 50 --ws-total 200 --ramp 10 --hold 30   # a quick mixed run
#   STACK_ARGS="--web-workers 3" bench/run_load.sh     # stack options (bench/stack.py up --help)
#
# Runs under `flock /tmp/coinlink-bench.lock` so two benchmarks never share the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN_DIR=${RUN_DIR:-bench/results/load-$(date -u +%Y%m%dT%H%M%SZ)}
export RUN_DIR STACK_ARGS="${STACK_ARGS:-}" VERDICT_ARGS="${VERDICT_ARGS:-}"
export BENCH_VERDICT="${BENCH_VERDICT:-1}" BENCH_MIXED="${BENCH_MIXED:-1}"
# Thousands of sockets on each side: raise the open-files limit as far as this host allows.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "run dir: $RUN_DIR (open files limit $(ulimit -n))"

exec flock /tmp/coinlink-bench.lock bash -c '
  set -euo pipefail
  trap ".venv/bin/python bench/stack.py down --run-dir \"$RUN_DIR\"" EXIT
  # shellcheck disable=SC2086
  .venv/bin/python bench/stack.py up --run-dir "$RUN_DIR" --fresh --floor $STACK_ARGS
  if [ "$BENCH_VERDICT" = 1 ]; then
    # shellcheck disable=SC2086
    .venv/bin/python -m bench.load.verdict --stack-dir "$RUN_DIR" $VERDICT_ARGS
  fi
  if [ "$BENCH_MIXED" = 1 ]; then
    .venv/bin/python -m bench.load.run --stack-dir "$RUN_DIR" "$@"
  fi
' bash "${@:---profile}"
