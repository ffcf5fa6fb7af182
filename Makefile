# The commands people run. `make` sets up .venv; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# nbgrader shells out to `alembic` and `jupyter`: the venv's tools must be on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)

SUBMISSIONS ?= demo/submissions
OUT ?= demo/out
NB ?= notebooks
N ?= 12
# Test processes (pytest-xdist): a session fixture is built once per run, the tests of a module fixture share one (tests/conftest.py).
TEST_PROCESSES ?= 2

LOCK := constraints.txt
# The installer itself, pinned like everything it installs.
PIP_VERSION := 26.3

.PHONY: all lock wheel test test-fast release lab validate demo screenshots bench bench-notebook clean

all: $(VENV)/.installed

# Every package at its locked version: the project with its dev and cluster extras, within constraints.txt.
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet 'pip==$(PIP_VERSION)'
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[dev,cluster]'
	touch $@

# Refresh the lock after changing pyproject.toml's dependencies: one universal resolution (Linux, macOS,
# Windows; CUDA or not) from the package index, keeping every locked version that still fits
# (`make lock LOCK_FLAGS=--upgrade` moves everything to its newest); then `make` installs it.
LOCK_FLAGS ?=
lock:
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet -c $(LOCK) uv; }
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra cluster --universal --python-version 3.11 \
		--quiet $(LOCK_FLAGS) --output-file $(LOCK)

# The wheel (and sdist) of the grader, in dist/
wheel: all
	$(BIN)/python -m build --outdir dist

test: all
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadgroup --no-loadscope-reorder

test-fast: all
	$(BIN)/python -m pytest -m 'not slow'

release: all
	$(BIN)/python -m grader release

lab: all
	$(BIN)/python -m grader lab $(NB)

validate: all
	$(BIN)/python -m grader validate $(NB)

demo: all
	$(BIN)/python -m grader demo --out $(OUT)

# README pictures (docs/screenshots/*.png) of the demo's report and one feedback page
screenshots: demo
	$(BIN)/python -m devtools screenshots --out $(OUT)

bench: all
	$(BIN)/python -m devtools bench --students $(N)

# notebook 4 in full beside notebook 2, median of 3 (the README's "about a minute and a half")
bench-notebook: all
	$(BIN)/python -m devtools notebook-time --notebook attention --beside seq2seq
	$(BIN)/python -m devtools notebook-time --notebook pos_tagging --beside attention

clean:
	rm -rf dist demo/out .pytest_cache
