# whatif: predict hit ratio, upstream savings and cost per TTL from an access log (cachelab whatif).
#   make whatif LOG=access.log TTLS=10,60,300
LOG ?=
TTLS ?= 10,30,60,120,300,600,1800,3600

.PHONY: whatif bench-whatif

whatif: venv ## simulate the proxy over an access log per TTL (LOG=..., TTLS=...)
	@test -n "$(LOG)" || { echo "usage: make whatif LOG=path/to/access.log [TTLS=10,60,300]"; exit 2; }
	$(BIN)/cachelab whatif "$(LOG)" --ttl "$(TTLS)"

bench-whatif: venv ## whatif on a generated 1-million-line log: time and peak memory over 3 runs
	$(BIN)/python -m bench.bench_whatif --lines 1000000 --runs 3
