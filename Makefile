# cachelab: `make demo` and `make test` are the two commands a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Most tests wait on real processes and sockets, so three workers on two cores roughly halve the suite's time;
# each test file stays on one worker (--dist loadfile), so a file's stack fixtures are started once.
PYTEST_WORKERS ?= 3

.PHONY: help venv demo test lint typecheck pytest bench tools clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

venv: $(STAMP) ## create or update .venv/ from pyproject.toml (with the dev extras)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: venv ## the guided one-minute experiment on the native stack (no Docker), with a printed summary
	@scripts/ensure-tools.sh --optional redis-server
	$(BIN)/cachelab demo $(DEMO_ARGS)

tools: ## install the system tools the tests need (redis-server, chromium) when missing
	@scripts/ensure-tools.sh

lint: venv ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv ## mypy (strict)
	$(BIN)/mypy

pytest: venv tools ## the pytest suite but the compose stack (make test-compose-stack runs that after it, alone)
	$(BIN)/pytest -q -ra -n $(PYTEST_WORKERS) --dist loadfile --ignore=$(COMPOSE_STACK_TESTS); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

test: venv tools lint typecheck pytest test-compose-stack ## everything CI runs: tools, ruff, mypy, pytest, the compose stack

bench: venv tools ## micro-benchmark: warm-hit handler time vs a bare redis-py GET, side by side
	$(BIN)/python -m bench.bench_hit

clean: ## remove the venv and caches
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# Each area keeps its own targets in mk/<area>.mk (sam, stub, load, ...).
-include mk/*.mk
