# Every target runs inside the project's own virtual environment, made by `make install`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: install test test-fast lint smoke bench clean

install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"

test:
	$(BIN)/python -m pytest -q

# Everything but the end-to-end fits (marked slow): under a minute on 2 cores.
test-fast:
	$(BIN)/python -m pytest -q -m "not slow"

lint:
	$(BIN)/ruff check dltrain tests bench tools
	$(BIN)/mypy dltrain
	$(BIN)/python tools/check_layers.py

# `dltrain show` and a --smoke fit of every shipped config, on local data.
smoke:
	$(BIN)/python -m pytest -q tests/test_shipped_configs.py

bench:
	$(BIN)/python bench/run.py

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
