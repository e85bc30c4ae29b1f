# Patron — `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.DEFAULT_GOAL := help
.PHONY: help install run test lint typecheck unit bench clean browser spark-deps

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

# uv installs the same versions as pip from the same index, in half the time (50 s against 108 s for a new venv here).
# Unlike pip, it writes no bytecode unless asked: where PYTHONDONTWRITEBYTECODE is set (as on this machine and in CI),
# every process would compile its libraries' sources again (`patron --help` 1.0 s instead of 0.3 s).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv>=0.13,<1"
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -e ".[dev]"
	touch $(STAMP)

# HTMX, Swagger UI and Plotly's basic build come from the npm registry and are served from the package's static folder
# (nothing from a CDN); Plotly's full build is the Python package's own.
HTMX_JS := src/patron/web/static/vendor/htmx.min.js
$(HTMX_JS): package-lock.json
	@command -v npm >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm)
	npm ci --no-audit --no-fund --ignore-scripts --silent
	mkdir -p $(dir $@)
	mkdir -p $(dir $@)swagger
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css $(dir $@)swagger/
	cp node_modules/plotly.js-basic-dist-min/plotly-basic.min.js $(dir $@)
	cp node_modules/htmx.org/dist/htmx.min.js $@

install: $(STAMP) $(HTMX_JS) ## Create .venv and install Patron with its development tools and the pages' HTMX
	@$(BIN)/python -m compileall -q src  # Patron's own bytecode, for the same reason (only what changed)

run: install ## Install, load the demo data into the embedded store if it is empty, and serve the app
	$(BIN)/patron demo --if-empty
	$(BIN)/patron value score --if-unscored
	$(BIN)/patron serve --host $(HOST) --port $(PORT)

lint: install ## ruff (lint and formatting), the layer contracts (import-linter) and the one-place checks
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports --no-cache
	@bash .ci/one-place

typecheck: install ## mypy --strict over src/patron and tests
	$(BIN)/mypy

# The page tests drive Debian's Chromium (Playwright's own browser download does not work here).
browser: ## Install Debian's Chromium for the page tests, if missing
	@test -x /usr/bin/chromium || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

# The Spark tests need a Java runtime and the PostgreSQL JDBC driver, both from Debian's packages.
spark-deps: ## Install Java 17 and the PostgreSQL JDBC driver for the Spark path, if missing
	@command -v java >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless)
	@test -f /usr/share/java/postgresql.jar || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libpostgresql-jdbc-java)

unit: install browser spark-deps ## pytest (SQLite, the local PostgreSQL server, Chromium for the pages)
	$(BIN)/pytest -n 2 --dist loadgroup

test: lint typecheck unit ## Everything CI runs: lint, types, tests

ANCHORS := bench/.venv-anchors
ANCHORS_STAMP := $(ANCHORS)/.install-stamp

# The libraries Patron is compared with live in their own environment, never in Patron's dependencies.
$(ANCHORS_STAMP): bench/anchors-requirements.txt
	$(PYTHON) -m venv $(ANCHORS)
	$(ANCHORS)/bin/python -m pip install --quiet --upgrade pip
	$(ANCHORS)/bin/python -m pip install --quiet -r bench/anchors-requirements.txt
	touch $(ANCHORS_STAMP)

bench: install $(ANCHORS_STAMP) ## Run the benchmarks in bench/ (with lifetimes, pymc-marketing, pandas) and write bench/out/results.md
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python bench/run.py

clean: ## Remove the virtual environment and caches (keeps patron-data/)
	rm -rf $(VENV) $(ANCHORS) node_modules $(dir $(HTMX_JS)) .pytest_cache .mypy_cache .ruff_cache
