# The stub external API (stub_api/): run it, test it.
STUB_PORT ?= 8081

.PHONY: stub test-stub bench-stub

stub: venv ## run the stub API in the foreground on STUB_PORT (default 8081); control page at /__admin/
	$(BIN)/cachelab stub --port $(STUB_PORT)

test-stub: venv tools ## the stub API's tests (real server processes, headless Chromium for the control page)
	$(BIN)/pytest -q tests/stub_api

bench-stub: venv ## the stub's latency as a client measures it, next to the latency it drew; wall time of held requests
	$(BIN)/python -m bench.bench_stub
