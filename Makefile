# Two commands for a fresh machine: `make demo` and `make test` (each sets up .venv first).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: install system-deps demo test test-fast lab clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	$(PY) -m ipykernel install --sys-prefix --name roga-workbench --display-name "RoGA workbench"
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium drives plotly static export (kaleido) and the JupyterLab browser test.
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; \
	  else echo "note: chromium not found and cannot be installed here; browser/static-export tests will be skipped"; fi; }

demo: install
	$(PY) -m workbench demo

test: install system-deps
	$(PY) -m pytest --durations=15

test-fast: install
	$(PY) -m pytest -m "not slow and not browser"

# JupyterLab on 127.0.0.1; prints the URL with the token (passed in the environment, not the process list).
lab: install
	$(PY) -m workbench lab

clean:
	rm -rf runs reports figures .cache .pytest_cache
