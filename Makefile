# The two commands a new user needs: `make rehearse` and `make test`.
# Each creates .venv from the pinned requirements.txt on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: rehearse test lint format reliability bench nbval nbval-refresh browser runbooks clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing pinned requirements into $(VENV) (first run only)…"
	@$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	@$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

rehearse: $(STAMP)
	$(BIN)/deploybook rehearse

test: $(STAMP)
	$(BIN)/python -m pytest -q

reliability: $(STAMP)
	$(BIN)/python -m pytest -q -m reliability

lint: $(STAMP)
	$(BIN)/ruff check lib tests scripts bench runbooks
	$(BIN)/ruff format --check lib tests scripts bench runbooks

format: $(STAMP)
	$(BIN)/ruff format lib tests scripts bench runbooks
	$(BIN)/ruff check --fix lib tests scripts bench runbooks

# Rewrite runbooks/*.ipynb from their jupytext sources runbooks/*.py (nbval references of
# unchanged cells are kept).
runbooks: $(STAMP)
	$(BIN)/python scripts/sync_runbooks.py

# Benchmarks against the plain tools (pg_dump/pg_restore, psql -f, single requests);
# builds a >1 GB database under bench/data/ on first use, writes bench/results.md.
bench: $(STAMP)
	$(BIN)/python -m bench.run

RUNBOOKS ?= 01-preconditions 02-migration-dry-run 03-rollout 04-smoke 05-rollback

# Re-execute runbooks against a fresh prepared sandbox and store their outputs as nbval references.
nbval-refresh: $(STAMP)
	$(BIN)/python scripts/refresh_references.py $(RUNBOOKS)

nbval: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_nbval.py

browser: $(STAMP)
	$(BIN)/python -m pytest -q -m browser

clean:
	$(BIN)/deploybook sandbox down --purge || true
