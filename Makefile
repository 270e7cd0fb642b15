# The two commands a new user types: `make run` and `make test`. Each creates .venv
# when missing and installs the package into it, so either works alone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast check lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	@echo "dfu-tui is installed in $(BIN): run $(BIN)/dfu-tui --help, or . $(BIN)/activate first"
	$(BIN)/dfu-tui validate configs/default.toml
	$(BIN)/dfu-tui --config configs/default.toml

# The suite starts some hundreds of Python processes that import this package: they write
# and reuse its bytecode (`__pycache__/`, ignored by git) even where the environment sets
# PYTHONDONTWRITEBYTECODE, and pytest keeps its rewritten test modules the same way.
TEST_ENV := TF_CPP_MIN_LOG_LEVEL=2 PYTHONDONTWRITEBYTECODE=

# Test processes: one more than the cores (at most 8; `make test TEST_PROCS=N` to choose).
# Every test process spends part of its time waiting (for a detached run's next event, a
# dashboard to go idle, Ray to start), so one per core leaves cores idle: on 2 cores, 2
# processes keep them 80 % busy, 3 keep them 93 % busy (benchmarks/suite.py).
TEST_PROCS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n < 8 ? n + 1 : 8 )))
# A test process that crashes fails the suite at once: pytest-xdist 3.8 replacing it under
# `--dist loadgroup` can leave the others waiting for work that never comes (pytest-xdist
# issues 1323, 1327, 1378).
XDIST := -n $(TEST_PROCS) --dist loadgroup --max-worker-restart=0

# Everything that gates a commit: format, lint, types (the benchmarks' too), the layers
# contract, every test.
test: lint
	$(TEST_ENV) $(BIN)/python -m pytest -q $(XDIST)

# The same checks and every test that trains no model (1.5-3 minutes on 2 cores).
test-fast: lint
	$(TEST_ENV) $(BIN)/python -m pytest -q $(XDIST) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff format --check dfu_tui tests benchmarks
	$(BIN)/ruff check dfu_tui tests benchmarks
	$(BIN)/mypy dfu_tui tests
	cd benchmarks && ../$(BIN)/mypy --config-file ../pyproject.toml --explicit-package-bases *.py
	$(BIN)/lint-imports

check: test

format: $(STAMP)
	$(BIN)/ruff format dfu_tui tests benchmarks
	$(BIN)/ruff check --fix dfu_tui tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
