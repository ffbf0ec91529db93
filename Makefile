.PHONY: run test ci lint bench
run:  ## serve CoinLink on 127.0.0.1:8000
	scripts/run
test: ## run the whole suite
	scripts/test
ci:   ## what CI runs, against the local PostgreSQL and Redis
	bash .ci/run
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy
bench: ## the SLA verdict as ratios, then the mixed-workload load test, on loopback (production topology; docs/performance.md). BENCH_MIXED=0 for the verdict only; BENCH_ARGS="--users 50 --ws-total 200 --ramp 10 --hold 30" for a quick mixed run
	bench/run_load.sh $(BENCH_ARGS)
