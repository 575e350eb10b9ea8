# Set-up and entry points. `make demo` and `make test` create .venv on first use.
#
# Overrides (examples):
#   make demo PYTHON=python3.12
#   make demo PIP_EXTRA="--index-url https://download.pytorch.org/whl/cpu"
#   make test TORCH_SPEC="torch==2.5.1"
#
# TORCH_SPEC is pinned on purpose: an unpinned `torch` pulls gigabytes of CUDA
# packages. torch is installed first, so that `pip install -e .` finds it satisfied.
# PIP_EXTRA is passed to the torch install only (a torch index has no pytest).

PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
PIP_EXTRA ?=

VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean

demo: $(STAMP)
	$(VENV)/bin/rnnkit demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest tests

venv: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Redone only when pyproject.toml changes (or after `make clean`).
$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install $(PIP_EXTRA) '$(TORCH_SPEC)'
	$(VENV)/bin/pip install -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
