# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-fast lint format simulate bench screenshots clean

setup: $(STAMP)

$(STAMP): requirements.txt setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: setup
	$(PY) -m osipi_connector.demo

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: setup
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

simulate: setup
	$(VENV)/bin/osipi-connector simulate --host 127.0.0.1 --port 8443 --tags 1000

screenshots: setup  ## refresh docs/screenshots from the browser tests
	SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest tests/web/test_browser.py -q

bench: setup
	$(PY) benchmarks/simulator.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache demo-output
