# `make demo` and `make test` do all the set-up on a fresh Debian machine with Python 3.11.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: install system-deps lint test test-fast demo bench clean docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	@./scripts/ensure-system-deps.sh

lint: install
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/mypy

test: install system-deps lint
	RINGFENCE_NEED_CHROMIUM=1 ./scripts/ensure-system-deps.sh  # the browser tests drive Debian's chromium
	# Two workers, a test file each at a time: most of the suite waits on real servers and clients.
	$(VENV)/bin/pytest -n 2 --dist loadfile

test-fast: install
	$(VENV)/bin/pytest tests/unit tests/contract -m "not postgres"

demo: install
	$(VENV)/bin/ringfence demo

bench: install
	RINGFENCE_NEED_REDIS=1 RINGFENCE_NEED_WRK=1 ./scripts/ensure-system-deps.sh
	$(PY) -m pip install -q redis  # the Redis reference of bench/propagation.py only
	$(PY) -m pip install -q UnleashClient growthbook openfeature-sdk  # the peers of bench/sdk_read.py only
	$(PY) bench/store_write.py
	$(PY) bench/propagation.py
	$(PY) bench/ingest.py
	$(PY) bench/sdk_read.py
	$(PY) bench/sdk_track.py
	$(PY) bench/canary_eval.py
	$(PY) bench/calibration.py

docs: install
	$(PY) -m ringfence.server.settings > docs/reference/settings.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
