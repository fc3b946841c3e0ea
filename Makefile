# The two commands that do all set-up on a fresh machine:
#   make demo   creates .venv, installs posetok, runs the demo (report/ folder)
#   make test   creates .venv, installs posetok with the dev extras, runs ruff, lint-imports (the layering
#               contracts in pyproject.toml, docs/architecture.md) and pytest
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test install install-dev lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(PIP) install -e ".[dev,export]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(VENV)/bin/posetok demo --out report

lint: install-dev
	$(VENV)/bin/ruff check posetok tests
	$(VENV)/bin/lint-imports --no-cache

test: lint
	$(VENV)/bin/pytest

clean:
	rm -rf report runs .pytest_cache .ruff_cache
