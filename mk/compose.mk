# compose.yaml: the offline demo with LocalStack (docker compose up), and its checks that need no Docker engine.
#   make compose-up SCENARIO=outage   ->  LOCUST_SCENARIO=outage docker compose up --build
COMPOSE ?= docker compose

.PHONY: test-compose compose-up compose-down

test-compose: venv ## compose.yaml, Dockerfiles and their scripts, checked without Docker (schema, cross-checks, hadolint)
	$(BIN)/pytest -q tests/compose

compose-up: ## docker compose up --build: LocalStack, Redis, stub, deploy, Locust UI on 127.0.0.1:8089 (SCENARIO)
	@command -v docker >/dev/null 2>&1 || { echo "compose-up needs Docker with Compose v2: https://docs.docker.com/get-docker/" >&2; exit 1; }
	LOCUST_SCENARIO=$(SCENARIO) $(COMPOSE) up --build

compose-down: ## docker compose down -v: remove the containers, the network and the volumes
	$(COMPOSE) --profile jupyter down -v --remove-orphans
