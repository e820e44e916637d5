# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BASE_STAMP := $(VENV)/.installed-base
TEST_STAMP := $(VENV)/.installed-test
JARS_STAMP := build/spark-jars/.fetched
CLI_STAMP  := build/bin/.databricks-cli
NODE_STAMP := build/node-opcua/.installed

.PHONY: setup setup-test demo test test-fast lint format simulate bench screenshots clean

# `make demo` needs only the base package (no compiler, no system library): its pinned dependencies.
# `make test` adds the Debian packages the tests start (tools/system-deps.sh), every extra at the versions
# in requirements.txt, the Delta Lake jars for local Spark (tools/spark-jars.sh, Maven) and the official
# Databricks CLI that validates the bundle (tools/databricks-cli.sh, built from its Go module) and node-opcua,
# the second OPC UA server of the edge tests (tools/node-opcua.sh, npm, versions in tools/node-opcua/).
setup: $(BASE_STAMP)

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed, $(PYTHON) is " + sys.version.split()[0] + ": run make PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(BASE_STAMP): requirements.txt setup.py pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet --constraint requirements.txt setuptools wheel
	$(PY) -m pip install --quiet --constraint requirements.txt --no-build-isolation -e .
	touch $(BASE_STAMP)

setup-test: $(TEST_STAMP) $(JARS_STAMP) $(CLI_STAMP) $(NODE_STAMP)

$(TEST_STAMP): requirements.txt setup.py pyproject.toml tools/system-deps.sh $(BASE_STAMP)
	bash tools/system-deps.sh
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(TEST_STAMP)

$(JARS_STAMP): tools/spark-jars/pom.xml tools/spark-jars.sh
	bash tools/spark-jars.sh
	touch $(JARS_STAMP)

$(CLI_STAMP): tools/databricks-cli.sh
	bash tools/databricks-cli.sh
	touch $(CLI_STAMP)

$(NODE_STAMP): tools/node-opcua.sh tools/node-opcua/package.json tools/node-opcua/package-lock.json | $(TEST_STAMP)
	bash tools/node-opcua.sh
	touch $(NODE_STAMP)

demo: setup
	$(PY) -m osipi_connector.demo

test: setup-test
	bash tools/system-deps.sh
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest

test-fast: setup-test
	$(PY) -m pytest -m "not slow"

lint: setup-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: setup-test
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

simulate: setup
	$(VENV)/bin/osipi-connector simulate --host 127.0.0.1 --port 8443 --tags 1000

screenshots: setup-test  ## refresh docs/screenshots from the browser tests
	SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest tests/web/test_browser.py -q

bench: setup-test
	$(PY) benchmarks/simulator.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache .mypy_cache demo-output
