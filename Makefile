# Two commands for a newcomer: `make demo` and `make test`. Both do all set-up themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SYSSTAMP := $(VENV)/.system-deps-stamp
export NEURALANNOT_CACHE ?= $(HOME)/.cache/neuralannot
export ANNY_CACHE_DIR ?= $(NEURALANNOT_CACHE)/anny
DEMO_OUT ?= out/demo
DEMO_ARGS ?=

.PHONY: setup system-deps demo test test-all lint bench clean

setup: $(STAMP) $(SYSSTAMP)

# Python environment: pinned versions from requirements.lock (torch 2.14.1 / torchvision 0.29.1 incl.).
$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

# System libraries for headless rendering (EGL/llvmpipe) and the browser used by report tests.
$(SYSSTAMP): scripts/install_system_deps.sh
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	bash scripts/install_system_deps.sh --browser
	@touch $@

system-deps: $(SYSSTAMP)

demo: setup
	$(VENV)/bin/neuralannot demo --out $(DEMO_OUT) $(DEMO_ARGS)

# pytest exit code 5 (no tests collected) is a failure, never a pass.
test: setup
	$(VENV)/bin/ruff check src tests bench scripts
	@$(PY) -m pytest -q -m "not slow"; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "ERROR: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-all: setup
	@$(PY) -m pytest -q; rc=$$?; [ $$rc -eq 5 ] && exit 1; exit $$rc

lint: setup
	$(VENV)/bin/ruff check src tests bench scripts

bench: setup
	$(PY) bench/body_forward.py

clean:
	rm -rf out .pytest_cache .ruff_cache
