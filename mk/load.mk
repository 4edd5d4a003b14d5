# loadtests/: Locust scenarios against a running stack, their tests, and the load generator's own ceiling.
#   make load SCENARIO=outage LOAD_HOST=http://127.0.0.1:3000 LOAD_STUB_ADMIN=http://127.0.0.1:8081 LOAD_USERS=20
SCENARIO ?= steady
LOAD_HOST ?= http://127.0.0.1:3000
LOAD_STUB_ADMIN ?= http://127.0.0.1:8081
LOAD_USERS ?= 20
LOAD_DURATION ?= 60s
LOAD_PROCESSES ?= 1
# More `cachelab load` flags, e.g. LOAD_ARGS="--rate 200 --zipf-s 1.2 --fail-below-hit-ratio 0.8"
LOAD_ARGS ?=

.PHONY: load test-load bench-load

load: venv ## run a Locust scenario headless: SCENARIO, LOAD_HOST, LOAD_STUB_ADMIN, LOAD_USERS, LOAD_DURATION, LOAD_ARGS
	$(BIN)/cachelab load $(SCENARIO) --host $(LOAD_HOST) --stub-admin $(LOAD_STUB_ADMIN) \
		--users $(LOAD_USERS) --duration $(LOAD_DURATION) --processes $(LOAD_PROCESSES) $(LOAD_ARGS)

test-load: venv tools ## the load tests' tests: summary math, and every scenario against redis + stub + gateway
	$(BIN)/pytest -q tests/loadtests

bench-load: venv ## requests/s one Locust process (and two) can generate here, against the stub and nginx
	@PATH="$$PATH:/usr/sbin" scripts/ensure-tools.sh --optional nginx
	$(BIN)/python -m bench.bench_load
