.PHONY: run test ci lint bench
run:  ## serve CoinLink on 127.0.0.1:8000
	scripts/run
test: ## run the whole suite
	scripts/test
ci:   ## what CI runs, against the local PostgreSQL and Redis
	bash .ci/run
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
