# Two commands: `make serve` and `make test`. Both build .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint install clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/dataloft serve

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The house rules: ruff, mypy --strict, the import layers, and the AST checks (two-way
# imports, SQL only in repositories, module and function sizes).
lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/house_rules.py

clean:
	rm -rf $(VENV) .dataloft
