# compose.yaml: the offline demo with LocalStack (docker compose up), and its tests.
#   make compose-up SCENARIO=outage   ->  LOCUST_SCENARIO=outage docker compose up --build
#   make test-compose                 the static checks and the real stack (tests/compose)
#   make test-compose-stack           the real stack only: what `make test` adds after the rest of the suite
# The stack tests run when a Docker engine answers and are skipped, with one line saying why, when none does;
# CACHELAB_COMPOSE_TESTS=required (.ci/run) fails instead, =off skips them.
COMPOSE ?= docker compose
COMPOSE_STACK_TESTS := tests/compose/test_stack.py

.PHONY: test-compose test-compose-stack bench-compose compose-up compose-down

test-compose: venv ## compose.yaml for real (LocalStack, deploy, the checks through API Gateway) and its static checks
	$(BIN)/pytest -q -ra tests/compose

# pytest's status 5 ("no tests collected") is the module skipping itself without Docker: its SKIPPED line says why.
test-compose-stack: venv ## only the real compose stack (one project on free ports, about 8 minutes; skipped without Docker)
	$(BIN)/pytest -q -ra $(COMPOSE_STACK_TESTS); rc=$$?; if [ $$rc -eq 5 ]; then exit 0; fi; exit $$rc

bench-compose: venv tools ## compose up -> first answer, HIT p50/p95 via LocalStack next to `cachelab gateway`, 3 runs
	$(BIN)/python -m bench.bench_compose $(BENCH_ARGS)

compose-up: ## docker compose up --build: LocalStack, Redis, stub, deploy, Locust UI on 127.0.0.1:8089 (SCENARIO)
	@command -v docker >/dev/null 2>&1 || { echo "compose-up needs Docker with Compose v2: https://docs.docker.com/get-docker/" >&2; exit 1; }
	LOCUST_SCENARIO=$(SCENARIO) $(COMPOSE) up --build

compose-down: ## docker compose down -v: remove the containers, the network and the volumes
	$(COMPOSE) --profile jupyter down -v --remove-orphans
