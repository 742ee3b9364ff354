# Two commands for a newcomer: `make demo` and `make test`. Everything else is set up here.
#
# Installs are reproducible: requirements.lock holds the exact version of every package the
# venv gets (tested together), and every install below is constrained by it. pyproject.toml keeps
# compatible ranges for people who install the package into their own environment.
# `make upgrade` is the one deliberate step forward: it resolves the newest releases in a
# separate venv, runs the whole suite there, and rewrites requirements.lock only if it passes.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PYTHON  ?= python3
LOCK    := requirements.lock
EXTRAS  := .[tensorflow,bench,llm,dev]
# torch is pinned and installed first: an unpinned torch pulls a multi-GB CUDA build.
TORCH   := torch==2.13.0
NEXT    := .venv-upgrade

.PHONY: setup demo test test-fast lint format upgrade clean

setup: $(STAMP)

# pip byte-compiles one file at a time (a minute of the set-up); compileall does it afterwards
# on every core, skipping what no run imports (package test suites, torch's internal test
# helpers, the transformers architectures the toolkit does not build). A file left out or that
# cannot compile (templates shipped as .py) only loses its cache, so the exit status is ignored.
SKIP_COMPILE := /tests/|/torch/testing/_internal/|/transformers/models/(?!(auto|bert|gpt2|resnet|vit|convnext|llama|qwen2|qwen3|mistral|phi|phi3|gemma|gemma2|gemma3)/)
$(STAMP): pyproject.toml Makefile $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-compile --constraint $(LOCK) pip
	$(PY) -m pip install --quiet --no-compile --constraint $(LOCK) $(TORCH)
	$(PY) -m pip install --quiet --no-compile --constraint $(LOCK) -e "$(EXTRAS)"
	-$(PY) -m compileall -q -j 0 -x '$(SKIP_COMPILE)' $(VENV)/lib > /dev/null 2>&1
	touch $(STAMP)

demo: setup
	$(VENV)/bin/compress apply recipes/quickstart.yaml

# Tests run on every core (one pytest-xdist worker each; PYTEST_WORKERS=0 runs them serially);
# `worksteal` lets an idle worker take queued tests from a busy one, so a few long tests do not
# leave the other core idle at the end; the 25 slowest tests are listed at the end. Tiers and
# their rules: docs/testing.md.
PYTEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
PYTEST_XDIST   := -n $(PYTEST_WORKERS) --dist worksteal --durations=25

test: setup
	$(PY) -m pytest $(PYTEST_XDIST)

test-fast: setup
	$(PY) -m pytest $(PYTEST_XDIST) -m "not e2e"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The newest releases pyproject.toml allows (torch stays at $(TORCH)), tested before they are
# locked: on success requirements.lock is rewritten; review its diff and commit it.
upgrade:
	rm -rf $(NEXT)
	$(PYTHON) -m venv $(NEXT)
	$(NEXT)/bin/python -m pip install --quiet --upgrade pip
	echo "$(TORCH)" > $(NEXT)/torch-pin.txt  # eager upgrades would pull a CUDA torch otherwise
	$(NEXT)/bin/python -m pip install --quiet --constraint $(NEXT)/torch-pin.txt $(TORCH)
	$(NEXT)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager \
		--constraint $(NEXT)/torch-pin.txt -e "$(EXTRAS)"
	COMPRESS_UNLOCKED=1 $(NEXT)/bin/python -m pytest
	$(NEXT)/bin/python tools/write_lock.py $(LOCK)
	rm -rf $(NEXT)
	@echo "requirements.lock updated: review 'git diff $(LOCK)', then commit it"

clean:
	rm -rf $(VENV) $(NEXT) out build *.egg-info
