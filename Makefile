# The two commands a new user needs: `make dev` (local stack on 127.0.0.1:3000) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: dev test test-browser test-all lint format typecheck template-check build openapi bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)  ## serve the API on 127.0.0.1:$${PORT:-3000} with emulated AWS and the demo seed
	$(BIN)/appengine-dev

test: $(STAMP)  ## the README's test command: unit, integration and contract tests
	$(BIN)/pytest -n 2

BROWSER_STAMP := $(VENV)/.installed-browser
CHROMIUM ?= /usr/bin/chromium

$(BROWSER_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,browser]'
	touch $(BROWSER_STAMP)

$(CHROMIUM):
	@# Debian's Chromium (Playwright drives it; it downloads no browser of its own).
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

test-browser: $(BROWSER_STAMP) $(CHROMIUM)  ## a real browser on the local stack: dev mailbox and Swagger UI
	APPENGINE_CHROMIUM=$(CHROMIUM) $(BIN)/pytest -p no:xdist tests/browser

lint: $(STAMP)  ## ruff, and the wings' import contracts (docs/architecture.md)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PYTHONPATH=shared $(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

template-check: $(STAMP)  ## cfn-lint, sam validate --lint and sam build (arm64 / python3.13 wheels)
	$(BIN)/cfn-lint template.yaml
	$(BIN)/sam validate --lint --template-file template.yaml
	mkdir -p .aws-sam && set -o pipefail && $(BIN)/sam build --template-file template.yaml --build-dir .aws-sam/build 2>&1 | tee .aws-sam/build.log
	$(BIN)/python -m bench.sizes --check --build-log .aws-sam/build.log

build: template-check

openapi: $(STAMP)  ## regenerate functions/platform/openapi.json from every function's routes
	$(BIN)/python -m appengine_local.openapi --write

bench: $(STAMP)  ## benchmarks, printed as ratios against baselines measured in the same run
	$(BIN)/python -m bench

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
