# Two entry points for a newcomer: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck docs-examples unit docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/multichannel demo

test: $(STAMP) lint typecheck docs-examples unit docs

lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools

typecheck: $(STAMP)
	$(BIN)/mypy --strict src tools

# Every Python example in README.md, docs/ and examples/, type-checked as users see it:
# mypy --strict without the pydantic plugin. tests/test_docs_examples.py runs them.
docs-examples: $(STAMP)
	$(BIN)/python tools/docs_examples.py check

unit: $(STAMP)
	$(BIN)/pytest

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir $(VENV)/site

# bench/sends.py prints every figure of the speed work beside its reference, in one table
# (a few minutes on 2 cores; --quick checks it runs, --plan-rows N sizes the plan rows).
# It needs the dev extras (provider SDKs, aiohttp, uvicorn) and uses PostgreSQL when it answers.
bench: $(STAMP)
	$(BIN)/python bench/import_time.py
	$(BIN)/python bench/strategy.py
	$(BIN)/python bench/sends.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .coverage .hypothesis
