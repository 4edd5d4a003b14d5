# Reliability and security (tests/reliability/): faults under load, hostile input, Redis Cluster, IAM policies.
#   make chaos                   every fault under load, full profile (~4 min): the table in docs/reliability.md
#   make test-reliability        the whole reliability suite as `make test` runs it (quick fault profile, about 2.5 min)
CHAOS_OUT ?= results/chaos-$(shell date +%Y%m%d-%H%M%S)

.PHONY: chaos test-reliability

chaos: venv tools ## faults under load, full profile: prints the figures table, writes CHAOS_OUT/figures.{md,json}
	CACHELAB_CHAOS_PROFILE=full CACHELAB_CHAOS_OUT=$(CHAOS_OUT) $(BIN)/pytest -q -m chaos tests/reliability

test-reliability: venv tools ## hostile input, secrets, IAM, Redis Cluster and the quick fault suite
	$(BIN)/pytest -q tests/reliability
