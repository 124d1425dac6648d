# Kalends: `make run` starts the whole system, `make test` runs every test against real servers.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: run test test-faults test-cluster lint demo bench bootstrap clean

bootstrap:
	@scripts/bootstrap.sh

run: bootstrap
	@$(PY) -m scripts.run

test: bootstrap
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check --quiet . || { echo "ruff format: run '.venv/bin/ruff format .'"; exit 1; }
	@$(PY) -m mypy
	@# pytest exits 5 when it collected nothing: that is a failure of `make test`, said plainly.
	@# The 30 slowest tests are listed at the end, to keep the whole run within its 20-minute budget.
	@$(PY) -m pytest -q -p no:cacheprovider --durations=30 $(PYTEST_ARGS); status=$$?; \
	  if [[ $$status -eq 5 ]]; then echo "make test: pytest collected no tests (PYTEST_ARGS='$(PYTEST_ARGS)')" >&2; exit 1; fi; \
	  exit $$status

# The fault runs alone (private PostgreSQL and RabbitMQ restarted under load); `make test` runs them too.
test-faults: bootstrap
	@$(PY) -m pytest -q -p no:cacheprovider tests/faults

# A private 3-node RabbitMQ cluster and a PostgreSQL streaming replica (about 2 minutes); `make test`
# runs them too unless KALENDS_TEST_CLUSTER=0.
test-cluster: bootstrap
	@$(PY) -m pytest -q -p no:cacheprovider tests/cluster

lint: bootstrap
	@$(PY) -m ruff check . && $(PY) -m ruff format --check . && $(PY) -m mypy

demo: bootstrap
	@$(PY) -m scripts.demo

bench: bootstrap
	@$(PY) -m bench

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
