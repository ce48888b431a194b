# One venv, built from the pinned dev constraints (torch comes from this machine's disk).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= synthaug-demo

.PHONY: venv demo test docs lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/dev-constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements/dev-constraints.txt -e '.[all,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/synthaug demo --out $(OUT)

# The API reference and the pages of docs/, built with warnings as errors (part of `make test`).
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet --site-dir site

# Two pytest-xdist workers, one per core of the CI machine, each test on one torch thread
# (the networks are small: more threads only spin against the other worker); the Ray tests
# share one worker (tests/conftest.py).
test: docs
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check synthaug tests benchmarks

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache site
