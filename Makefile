# Two commands: `make demo` and `make test`.  Both set up .venv first and are safe to repeat.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
# What the builds need, installed first so the project installs without build isolation (setuptools
# >= 70.1 builds the few dependencies published only as source, e.g. antlr4-python3-runtime).
BUILD_DEPS := "setuptools>=70.1" "hatchling>=1.5" "hatch-jupyter-builder>=0.9" "hatch-nodejs-version>=0.3.2" editables "jupyterlab>=4.6,<5"
SOURCES := $(wildcard labextension/src/*.ts labextension/src/*/*.ts labextension/style/*) package.json tsconfig.json pyproject.toml

.PHONY: demo test lint format setup lab build clean bench

setup: $(VENV)/.installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python $(SOURCES)
	$(BIN)/pip install -q $(BUILD_DEPS)
	$(BIN)/pip install -q --no-build-isolation -e ".[test,bench]"
	$(BIN)/jupyter labextension develop --overwrite . >/dev/null
	touch $@

build: setup
	jlpm build

demo: setup
	$(BIN)/jupyter lab --notebook-dir=demo_notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

# Formatting and lint are part of the tests: ruff for Python, prettier and eslint for the front end.
lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/jlpm lint

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(BIN)/jlpm lint:fix

test: lint
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/tracking.py
	$(BIN)/python bench/drift.py
	$(BIN)/python bench/ui_api.py
	$(BIN)/python bench/features.py
	$(BIN)/python bench/serving.py

clean:
	rm -rf $(VENV) node_modules labextension/lib mlops_lab/labextension tsconfig.tsbuildinfo
