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
# More pytest arguments for the test targets, e.g. PYTEST_ARGS="-x -k stale"
PYTEST_ARGS ?=
# pytest $(1), where "no tests collected" (exit code 5: a typo in -k or a path) is a failure that says so.
run_pytest = $(BIN)/pytest $(1) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

.PHONY: help venv demo test test-fast test-under-load test-each-file lint typecheck pytest bench tools clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ name[NR] = $$1; text[NR] = $$2; \
		if (length($$1) > width) width = length($$1) } \
		END { format = "  make %-" width "s  %s\n"; for (i = 1; i <= NR; i++) printf format, name[i], text[i] }'

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

lint: venv ## ruff, and the notebooks committed stripped
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m analysis.notebooks check notebooks/*.ipynb

typecheck: venv ## mypy (strict)
	$(BIN)/mypy

pytest: venv tools ## the whole pytest suite but the compose stack (PYTEST_WORKERS processes; test-compose-stack runs that)
	$(call run_pytest,-q -ra -n $(PYTEST_WORKERS) --dist loadfile --ignore=$(COMPOSE_STACK_TESTS))

test: venv tools lint typecheck pytest test-compose-stack ## everything CI runs: tools, ruff, mypy, pytest, the compose stack

test-fast: venv ## the edit-test loop (~20 s): unit tests and the store contract on fakeredis; starts no process
	$(call run_pytest,-q -m "unit and not redis_server")

test-under-load: venv tools ## the whole pytest suite while CPU hogs (stress-ng) compete for every core
	scripts/test-under-load.sh $(MAKE) --no-print-directory pytest

test-each-file: venv tools ## every test file alone, one after the other (finds files that depend on another)
	PYTEST=$(BIN)/pytest scripts/test-each-file.sh

bench: venv tools ## micro-benchmark: warm-hit handler time vs a bare redis-py GET, side by side
	$(BIN)/python -m bench.bench_hit

clean: ## remove the venv and caches
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# Each area keeps its own targets in mk/<area>.mk (sam, stub, load, ...).
-include mk/*.mk
