# Two commands do all the set-up on a fresh machine with Python 3.10+ and make:
#   make demo   runs the main job end to end on the local MPS emulator
#   make test   runs lint, type checks and the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The oldest Airflow this provider declares and keeps green (see pyproject.toml).
OLDEST_AIRFLOW := 3.3.0
OLDEST_VENV := .venv-oldest

.PHONY: help install lint format typecheck test test-heavy test-oldest demo bench emulator clean

help:
	@echo "make demo        run the scheduled example DAG end to end on the local emulator"
	@echo "make test        lint, type-check and run the whole test suite"
	@echo "make test-heavy  the long load tests (500 deferred tasks in one triggerer)"
	@echo "make test-oldest the unit suite on the oldest supported Airflow ($(OLDEST_AIRFLOW))"
	@echo "make bench       the benchmarks in bench/, results in bench/RESULTS.md"
	@echo "make emulator    run the local MPS emulator on 127.0.0.1:9100"

$(STAMP): pyproject.toml
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

test: lint typecheck
	$(BIN)/python -m pytest -q -ra

test-heavy: $(STAMP)
	$(BIN)/python -m pytest -q -ra -m heavy

$(OLDEST_VENV)/.installed: pyproject.toml
	test -x $(OLDEST_VENV)/bin/python || $(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install --quiet 'apache-airflow==$(OLDEST_AIRFLOW)' -e '.[dev]'
	touch $@

test-oldest: $(OLDEST_VENV)/.installed
	$(OLDEST_VENV)/bin/python -m pytest -q -ra -m 'not integration and not heavy'

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

emulator: $(STAMP)
	$(BIN)/mps-emulator --host 127.0.0.1 --port 9100

clean:
	rm -rf $(VENV) $(OLDEST_VENV) .airflow .demo build dist *.egg-info .mypy_cache .ruff_cache
