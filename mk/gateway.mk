# The local API Gateway (cachelab/gateway/): run it, test it, benchmark it against nginx proxy_cache.
GATEWAY_PORT ?= 3000
# Template parameters for `make gateway`; the default points the proxy at a local Redis.
GATEWAY_PARAMS ?= RedisMode=external RedisUrl=redis://127.0.0.1:6379/0

.PHONY: gateway test-gateway bench-gateway

gateway: venv ## run the proxy Lambda of sam/template.yaml behind a local API Gateway on GATEWAY_PORT (3000)
	$(BIN)/cachelab gateway --port $(GATEWAY_PORT) $(foreach p,$(GATEWAY_PARAMS),--param $(p))

test-gateway: venv tools ## the gateway's tests (real gateway, worker, redis-server and stub processes over HTTP)
	$(BIN)/pytest -q tests/gateway

bench-gateway: venv tools ## gateway HIT latency vs nginx proxy_cache, side by side (installs nginx when missing, as root)
	@PATH="$$PATH:/usr/sbin" scripts/ensure-tools.sh nginx
	$(BIN)/python -m bench.bench_gateway
