# The commands CI and the README use. `make help` lists them.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
BENCH_SH ?= ../shared/bench/bench.sh

.PHONY: help setup system-deps ohif run test lint bench

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[test]'
	touch $@

setup: $(BIN)/.installed  ## create .venv with the pinned dependencies

system-deps:  ## install the Debian packages the tests need (Orthanc, PostgreSQL, nginx, Chromium, wrk, npm)
	scripts/install-system-deps.sh

ohif: system-deps  ## install the prebuilt OHIF viewer the end-to-end tests open (pinned, npm ci)
	scripts/install-ohif.sh >/dev/null

run: setup  ## run the token service (:8000) and the landing (:8001) on embedded defaults
	$(BIN)/orthanc-share serve --embedded-defaults

lint: setup  ## ruff and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: system-deps ohif setup lint  ## the whole test suite, real Orthanc and browser included
	$(BIN)/pytest

bench: system-deps setup  ## load tests: token service vs bare ASGI app; anonymizer vs Orthanc
	$(BIN)/python -m bench.run --bench-sh $(BENCH_SH)
	$(BIN)/python -m bench.anonymizer
