# Every target does its own setup from a fresh clone: a .venv with this package installed.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test bench clean

$(VENV)/.core: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (set PYTHON=...)"; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.dev: pyproject.toml runtime/pyproject.toml $(VENV)/.core
	# adopter-kernels (runtime/), the package patched code imports, editable: the verify extra needs it
	$(PY) -m pip install -q -e runtime/
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps python-graphs==1.2.3
	touch $@

demo: $(VENV)/.core
	@echo "== adopter check examples/  (findings; exit 1 means opportunities were found)"
	-$(VENV)/bin/adopter check examples/
	@echo
	@echo "== adopter fix --diff examples/  (the patches; nothing is written)"
	-$(VENV)/bin/adopter fix --diff examples/

test: $(VENV)/.dev
	$(PY) -m pytest -q -n 2

bench: $(VENV)/.core
	$(PY) benchmarks/paper.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
