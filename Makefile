# Two commands on a fresh clone: `make run` and `make test`. Everything else is optional.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export CDP_LANDING_DIR ?= data/landing
export CDP_WAREHOUSE ?= data/warehouse.duckdb
# Runs started by `cdp run` and by `make ui` share one Dagster instance, so the UI shows both.
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# The virtualenv's tools (dbt, dagster) first, without having to activate it.
export PATH := $(CURDIR)/$(BIN):$(PATH)

# One pytest worker per core of the 2-core machines CI runs on; 0 runs the suite serially.
TEST_WORKERS ?= 2

# The project's importable packages (pyproject.toml's [tool.setuptools.packages.find]).
PACKAGES := demo_data warehouse_engine ingestion identity quality predictions privacy overview orchestration

DEMO_CUSTOMERS ?= 2000
DEMO_DAYS ?= 14
DEMO_SEED ?= 7

.PHONY: setup run test ui lint demo bench chaos clean help

help:  ## list the commands
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv and install the pinned dependencies (idempotent)

$(STAMP): pyproject.toml requirements.lock orchestration/dagster.yaml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	@# The instance settings: copied when missing, and brought up to date when the copy is
	@# unchanged since make setup wrote it (.dagster.yaml.installed); an edited one is kept.
	@mkdir -p $(DAGSTER_HOME)
	@if ! test -f $(DAGSTER_HOME)/dagster.yaml || cmp -s $(DAGSTER_HOME)/dagster.yaml $(DAGSTER_HOME)/.dagster.yaml.installed; then \
		cp orchestration/dagster.yaml $(DAGSTER_HOME)/dagster.yaml; \
		cp orchestration/dagster.yaml $(DAGSTER_HOME)/.dagster.yaml.installed; \
	elif ! cmp -s orchestration/dagster.yaml $(DAGSTER_HOME)/dagster.yaml; then \
		echo "note: $(DAGSTER_HOME)/dagster.yaml differs from orchestration/dagster.yaml and was kept; if you never edited it, copy the new one over (cp orchestration/dagster.yaml $(DAGSTER_HOME)/)"; \
	fi
	@# Parse the dbt project once here (dbt_project/target), as a build step, rather than in
	@# the first run: runs re-parse only what changed since (orchestration/assets/dbt.py).
	@$(BIN)/python -c "import orchestration.assets.dbt"
	@# Bytecode for the project's own packages: where PYTHONDONTWRITEBYTECODE is set (as in
	@# many CI and container images) every `cdp` process would otherwise compile them again.
	@$(BIN)/python -m compileall -q -j 0 $(PACKAGES)
	@touch $(STAMP)

demo: setup  ## generate the demo landing zone (if absent)
	@test -d $(CDP_LANDING_DIR) || $(BIN)/cdp generate --out $(CDP_LANDING_DIR) --customers $(DEMO_CUSTOMERS) --days $(DEMO_DAYS) --seed $(DEMO_SEED) --erasure-requests 3 --markers

run: demo  ## set up, generate demo data if absent, run the whole pipeline
	@$(BIN)/cdp run --landing $(CDP_LANDING_DIR) --warehouse $(CDP_WAREHOUSE)

test: setup  ## set up and run the test suite (on TEST_WORKERS workers, default 2)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

ui: setup  ## open the Dagster UI on http://127.0.0.1:3000
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

lint:  setup ## ruff + dbt parse
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup  ## run the benchmarks (1,000,000 customers; takes a while)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev,bench]"
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/identity.py
	$(BIN)/python bench/marts.py
	$(BIN)/python bench/predictions.py

chaos: setup  ## SIGKILL random runs next to another run and a BI reader (20 seeded rounds; ~40 min)
	$(BIN)/python bench/chaos.py $(CHAOS_ARGS)

clean:  ## remove generated data and the Dagster home (keeps .venv)
	rm -rf data .dagster_home dbt_project/target dbt_project/logs
