# EnMS Stream. `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: help setup demo test test-unit test-integration bench fuzz lint lint-imports typecheck check fmt topics clean

help: ## show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  make %-17s %s\n", $$1, $$2}'

setup: ## install everything needed (venv, packages, Java, Maven, Redis, Kafka jars, chromium)
	scripts/setup.sh --browser

demo: ## run Kafka, Redis, a worker, the API and the simulator; dashboard on :8080
	scripts/demo.sh

test: setup check ## the checks, then the whole suite; starts its own Kafka and Redis on free ports
	$(PY) -m pytest

test-unit: ## tests that need no Kafka, Redis or browser
	$(PY) -m pytest -m "not integration and not browser"

test-integration: setup ## only the tests on real Kafka and Redis
	$(PY) -m pytest -m integration

bench: setup ## end-to-end latency and throughput; figures go to bench/results/
	$(PY) -m bench

fuzz: setup ## Kafka and API fuzzers on a stack of their own (at most 10 min); figures to bench/results/
	$(PY) -m fuzz

check: lint lint-imports typecheck ## ruff, the layer contracts and mypy (what make test runs first)

lint: ## ruff (changes nothing)
	$(PY) -m ruff check .

lint-imports: ## the layer contracts of .importlinter (which package may import which)
	.venv/bin/lint-imports

typecheck: ## mypy: strict on schemas/ and detectors/, normal elsewhere (pyproject.toml)
	$(PY) -m mypy

fmt: ## ruff format
	$(PY) -m ruff format .

clean: ## remove run data (.run) and caches; keeps .venv and the Kafka jars
	rm -rf .run .pytest_cache
