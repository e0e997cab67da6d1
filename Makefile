# Every target sets itself up: a fresh clone needs only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck pytest browser demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

# The report's browser test needs headless Chromium; set up here, not by the tests.
browser:
	@.ci/install-chromium

pytest: $(STAMP) browser
	$(BIN)/pytest

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/dialogsim generate --dialogues 12 --seed 7 --out demo-out

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache
