# Two commands do all the set-up on a fresh machine with Python 3.10+ and make:
#   make demo   runs the main job end to end on the local MPS emulator
#   make test   runs lint, type checks and the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The Airflow version matrix (tests/matrix/run.py): one cached venv per supported Airflow line in
# .venv-matrix/<version>. MATRIX_LINES="2.11.2 3.3.2" (or oldest / newest) picks some lines only;
# MATRIX_COVERED_BY=.venv (.ci/run, after make test) leaves the suite of .venv's Airflow line to it.
MATRIX := $(PYTHON) -m tests.matrix.run --python $(PYTHON)
MATRIX_LINES ?=
MATRIX_COVERED_BY ?=

.PHONY: help install lint format typecheck test test-heavy test-browser test-distributed test-openlineage docs-images test-matrix test-oldest demo bench bench-triggerer \
	bench-parse-matrix emulator ui clean

help:
	@echo "make demo        run the scheduled example DAG end to end on the local emulator"
	@echo "make test        lint, type-check and run the whole test suite (newest Airflow, .venv)"
	@echo "make test-heavy  the long load tests (500 deferred tasks in one triggerer; 1000 in a real one)"
	@echo "make test-browser the browser tests (Chromium against a real Airflow)"
	@echo "make test-distributed  CeleryExecutor, PostgreSQL, Redis, 2 workers, 2 triggerers (~7 min)"
	@echo "make docs-images regenerate docs/images/ from the browser tests"
	@echo "make test-matrix on every Airflow line 2.11-3.3: pip check, unit suite, airflow dags test"
	@echo "make test-oldest the same on the oldest supported Airflow only"
	@echo "make bench       the benchmarks in bench/, results in bench/RESULTS.md"
	@echo "make bench-triggerer  a real triggerer's blocked-loop warnings: 1000 MPS triggers vs Airflow's own"
	@echo "make bench-parse-matrix  the parse-cost benchmark on the oldest and newest Airflow lines"
	@echo "make emulator    run the local MPS emulator on 127.0.0.1:9100"
	@echo "make ui          the Airflow UI with every example on the emulator, until Ctrl-C"

$(STAMP): pyproject.toml
	scripts/setup-system.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite in three runs: most of it in four pytest-xdist workers (each with its own Airflow home,
# database and emulator); then, one test at a time, the real Airflow deployments (scheduler,
# triggerer and API server as subprocesses) and the load and benchmark tests, which measure rates.
test: lint typecheck
	$(BIN)/python -m pytest -q -ra -n 4 --dist loadfile -m "not heavy and not integration" \
		--ignore=tests/load --ignore=tests/bench
	$(BIN)/python -m pytest -q -ra -m "integration and not heavy"
	$(BIN)/python -m pytest -q -ra tests/load tests/bench

test-heavy: $(STAMP)
	$(BIN)/python -m pytest -q -ra -m heavy

# OpenLineage events of the operators, with apache-airflow-providers-openlineage (the `openlineage`
# extra) and a file transport. Kept out of the main suite: its listener runs after every task event.
test-openlineage: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,openlineage]'
	$(BIN)/python -m pytest -q -ra tests/openlineage

# Chromium (Debian's, driven by Playwright) against a real Airflow on loopback; see tests/browser.
test-browser: $(STAMP)
	scripts/setup-browser.sh
	$(BIN)/python -m pytest -q -ra -m browser tests/browser

# CeleryExecutor on PostgreSQL and Redis with 2 workers and 2 triggerers, on loopback, in the shared
# quota mode (tests/distributed). scripts/setup-distributed.sh installs Debian's postgresql and
# redis-server and the Celery provider. About 7 minutes on the 2-core machine with 100 deferred
# tasks; MPS_DISTRIBUTED_SCALE=full runs issue 13's 400.
test-distributed: $(STAMP)
	scripts/setup-distributed.sh
	$(BIN)/python -m pytest -q -ra -m distributed --timeout 1200 tests/distributed

# The screenshots in docs/images, taken by the browser tests.
docs-images: $(STAMP)
	scripts/setup-browser.sh
	MPS_DOCS_SCREENSHOTS=docs/images $(BIN)/python -m pytest -q -ra -m browser tests/browser

# Each line's venv is rebuilt only when pyproject.toml or the line's constraints change.
test-matrix:
	$(MATRIX) $(if $(MATRIX_LINES),--lines "$(MATRIX_LINES)") $(if $(MATRIX_COVERED_BY),--covered-by $(MATRIX_COVERED_BY))

test-oldest:
	$(MATRIX) --lines oldest

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# The `bench` extra: the dbt Cloud provider that bench/parse_vs_dbt_cloud.py compares the operators with.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.run_all

# A real triggerer's blocked-loop warnings with 1000 MPS triggers beside 1000 of Airflow's own
# (two deployments one after the other, about 6 minutes; figures in bench/RESULTS.md by hand).
bench-triggerer: $(STAMP)
	$(BIN)/python -m bench.triggerer

# Figures in bench/out/parse_cost-airflow-<version>.md (make bench covers the newest line in .venv).
bench-parse-matrix:
	$(MATRIX) --lines oldest,newest --phases install,check,bench-parse

emulator: $(STAMP)
	$(BIN)/mps-emulator --host 127.0.0.1 --port 9100

# A real Airflow (UI on http://127.0.0.1:8080) with every example, on the emulator; state in .ui/.
ui: $(STAMP)
	$(BIN)/python scripts/ui.py

clean:
	rm -rf $(VENV) .venv-matrix .venv-oldest .airflow .demo .ui build dist *.egg-info .mypy_cache .ruff_cache
