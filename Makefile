# Two entry points for a fresh machine; each sets itself up (virtualenv, install).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test setup clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

setup: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'

## demo: build a realistic Kutai Timur ledger and its report in ./demo
demo: setup
	$(BIN)/dinsos-ledger demo --dir demo

## test: run the whole test suite (PostgreSQL tests need DINSOS_LEDGER_TEST_POSTGRES)
test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) demo .pytest_cache .hypothesis
