# Two entry points for a fresh machine; each sets itself up (virtualenv, install).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LINTED := src tests benchmarks scripts

.PHONY: demo test lint setup clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

setup: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'

## demo: build a realistic Kutai Timur ledger and its report in ./demo
demo: setup
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
