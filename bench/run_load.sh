#!/usr/bin/env bash
# The mixed-workload load test (docs/performance.md, "Mixed workload (SLA proof)"), end to end:
# brings up the production topology on loopback (bench/stack.py), runs the load (bench/load/run.py),
# always tears the stack down, and leaves results.json + load.png in the run directory.
#
#   bench/run_load.sh                                  # the SLA run: 1,000 REST users, 5,000 WebSockets
#   bench/run_load.sh --users 50 --ws-total 200 --ramp 10 --hold 30     # a quick try
#   STACK_ARGS="--web-workers 3" bench/run_load.sh     # stack options (bench/stack.py up --help)
#
# Runs under `flock /tmp/coinlink-bench.lock` so two benchmarks never share the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN_DIR=${RUN_DIR:-bench/results/load-$(date -u +%Y%m%dT%H%M%SZ)}
export RUN_DIR STACK_ARGS="${STACK_ARGS:-}"
# Thousands of sockets on each side: raise the open-files limit as far as this host allows.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "run dir: $RUN_DIR (open files limit $(ulimit -n))"

exec flock /tmp/coinlink-bench.lock bash -c '
  set -euo pipefail
  trap ".venv/bin/python bench/stack.py down --run-dir \"$RUN_DIR\"" EXIT
  # shellcheck disable=SC2086
  .venv/bin/python bench/stack.py up --run-dir "$RUN_DIR" --fresh $STACK_ARGS
  .venv/bin/python -m bench.load.run --stack-dir "$RUN_DIR" "$@"
' bash "${@:---profile}"
