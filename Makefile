# transitcast: `make demo` runs the whole job on the simulated world, `make test` runs the tests.
# Both create the environment (.venv, installed with uv from PyPI) when it is missing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.stamp-dev
BENCH_STAMP := $(VENV)/.stamp-bench
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export MLFLOW_DISABLE_TELEMETRY ?= true
export DVC_NO_ANALYTICS ?= 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90
export OMP_WAIT_POLICY ?= passive

.PHONY: setup demo test test-all bench lint lock contract-docs clean

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1"

# Installs exactly the versions in uv.lock (`make lock` refreshes it after a change to pyproject.toml).
$(STAMP): pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --quiet --locked --inexact --extra dev --python $(PY)
	touch $(STAMP)

$(BENCH_STAMP): pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --quiet --locked --inexact --extra dev --extra bench --python $(PY)
	touch $(BENCH_STAMP) $(STAMP)

lock: | $(UV)
	$(UV) lock --python $(PY)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/transitcast demo

test: setup
	$(PY) -m pytest

test-all: setup
	$(PY) -m pytest -m "" 

bench: $(BENCH_STAMP)
	$(VENV)/bin/transitcast bench all

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

contract-docs: setup
	$(VENV)/bin/transitcast contract --markdown > docs/data-contract.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
