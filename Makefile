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

.PHONY: all test test-fast release lab validate demo screenshots bench clean

all: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

test: all
	$(BIN)/python -m pytest

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

clean:
	rm -rf dist demo/out .pytest_cache
