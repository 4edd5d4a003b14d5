# sam/: validate, build, deploy and delete the SAM template (included by the top-level Makefile).
# `sam build` runs without Docker: it needs the template's Python runtime (python3.13) on PATH, so the sam targets
# put pyenv's 3.13 interpreter folder first when there is one.
.PHONY: sam-validate sam-build sam-test deploy-localstack deploy-aws sam-delete

SAM_PY_DIR := $(firstword $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.13*/bin))
SAM_ENV := PATH="$(if $(SAM_PY_DIR),$(SAM_PY_DIR):)$(CURDIR)/$(BIN):$$PATH" SAM_CLI_TELEMETRY=0
# validate and build need a region, not an account
SAM_REGION := AWS_DEFAULT_REGION="$${AWS_DEFAULT_REGION:-us-east-1}"
STACK ?= cachelab
TARGET ?= localstack
# Template parameters for the deploy targets, e.g. make deploy-aws PARAMS="MultiAZ=true CacheNodeType=cache.t4g.small"
PARAMS ?=
SAM_PARAMS := $(foreach p,$(PARAMS),--param $(p))

sam-validate: venv ## sam validate --lint of sam/template.yaml (needs only a region)
	cd sam && $(SAM_ENV) $(SAM_REGION) sam validate --lint --template-file template.yaml

sam-build: venv ## sam build (no Docker) into sam/.aws-sam/build
	cd sam && $(SAM_ENV) $(SAM_REGION) sam build --template-file template.yaml

sam-test: venv tools ## the template's tests: lint (every RedisMode x MultiAZ), build, offline deploy in moto, handlers
	$(BIN)/pytest -q tests/sam

deploy-localstack: venv ## build + deploy to LocalStack (http://localhost:4566, RedisMode=external); prints the API URL
	$(SAM_ENV) $(BIN)/cachelab deploy --target localstack --stack-name $(STACK) $(SAM_PARAMS)

deploy-aws: venv ## build + deploy to AWS (RedisMode=elasticache: NAT + ElastiCache cost money by the hour)
	$(SAM_ENV) $(BIN)/cachelab deploy --target aws --stack-name $(STACK) $(SAM_PARAMS)

sam-delete: venv ## delete the stack: make sam-delete TARGET=localstack|aws STACK=cachelab
	$(SAM_ENV) $(BIN)/cachelab deploy --target $(TARGET) --stack-name $(STACK) --delete
