# Two entry points for a fresh machine; each sets itself up (virtualenv, install).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LINTED := src tests benchmarks scripts
# Everything the suite and the linters need: every extra, the test and the dev tools.
ALL_EXTRAS := test,dev,postgres,report,parquet

.PHONY: demo test lint setup clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files: an install is redone only when pyproject.toml changes (or the venv is new).
# The demo needs the report's charts only; the suite needs everything.
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[report]'
	touch $@

$(VENV)/.installed-all: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$(ALL_EXTRAS)]'
	touch $@ $(VENV)/.installed-demo

setup: $(VENV)/.installed-all

## demo: build a realistic Kutai Timur ledger and its report in ./demo
demo: $(VENV)/.installed-demo
	$(BIN)/dinsos-ledger demo --dir demo

## test: run the whole test suite with branch coverage
## (PostgreSQL tests need DINSOS_LEDGER_TEST_POSTGRES)
test: setup
	$(BIN)/python -m pytest --cov=dinsos_ledger --cov-branch --cov-report=term:skip-covered $(PYTEST_ARGS)

## lint: ruff (rules and formatting) on all Python files, mypy --strict on src/
lint: setup
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) demo .pytest_cache .hypothesis .mypy_cache .ruff_cache .coverage
