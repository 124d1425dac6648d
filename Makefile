# Kalends: `make run` starts the whole system, `make test` runs every test against real servers.
SHELL := /bin/bash
PY := .venv/bin/python
# Parallel test processes for `make test` (the machine this is built on has 2 cores).
TEST_WORKERS ?= 2

.PHONY: run test test-faults test-cluster lint demo bench bootstrap clean

bootstrap:
	@scripts/bootstrap.sh

run: bootstrap
	@$(PY) -m scripts.run

test: bootstrap
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check --quiet . || { echo "ruff format: run '.venv/bin/ruff format .'"; exit 1; }
	@$(PY) -m mypy
	@# Two phases, to keep the whole run within its 20-minute budget on two cores: first every test that
	@# shares the machine, in $(TEST_WORKERS) processes (pytest-xdist, one test file per process at a time, so
	@# a module's service stack starts once); then the `serial` ones alone (they restart the shared broker or
	@# time private clusters under load). pytest exits 5 when a phase collected nothing: that is fine for one
	@# phase (PYTEST_ARGS may pick one kind), a failure of `make test` for both, said plainly.
	@$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile -m "not serial" -rs --durations=30 $(PYTEST_ARGS); first=$$?; \
	  $(PY) -m pytest -q -p no:cacheprovider -m serial -rs --durations=10 $(PYTEST_ARGS); second=$$?; \
	  if [[ $$first -eq 5 && $$second -eq 5 ]]; then echo "make test: pytest collected no tests (PYTEST_ARGS='$(PYTEST_ARGS)')" >&2; exit 1; fi; \
	  for status in $$first $$second; do if [[ $$status -ne 0 && $$status -ne 5 ]]; then exit $$status; fi; done

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
