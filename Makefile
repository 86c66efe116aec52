# Two commands from a fresh clone: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test dev docs validate bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	cd dbt_project && ../$(BIN)/dbt parse --quiet --project-dir . --profiles-dir .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tally demo

# --dist loadfile: a file's tests run on one worker, so a module fixture (a whole sequence of runs)
# is built once. (loadgroup's xdist_group marks are ignored under pytest 9.2: xdist 3.8 renames
# node ids in a way pytest 9.2 no longer reads.)
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadfile

validate: $(STAMP)
	$(BIN)/tally validate

dev: $(STAMP)
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.dagster} && mkdir -p $$DAGSTER_HOME && \
	(test -f $$DAGSTER_HOME/dagster.yaml || cp dagster_project/dagster.yaml $$DAGSTER_HOME/) && \
	DAGSTER_HOME=$$DAGSTER_HOME $(BIN)/dagster dev

# dbt's documentation of every model and column, from the warehouse `make demo` (or TALLY_WAREHOUSE) wrote:
# http://localhost:8080 (DOCS_PORT to change it)
docs: $(STAMP)
	cd dbt_project && TALLY_WAREHOUSE=$${TALLY_WAREHOUSE:-$(CURDIR)/warehouse/tally.duckdb} \
		../$(BIN)/dbt docs generate --quiet --project-dir . --profiles-dir . --target-path target/docs && \
		../$(BIN)/dbt docs serve --project-dir . --profiles-dir . --target-path target/docs \
		--port $${DOCS_PORT:-8080} --no-browser

bench: $(STAMP)
	$(BIN)/python bench/run_benchmark.py

clean:
	rm -rf warehouse invoices/*/ dbt_project/target dbt_project/logs .dagster
