PYTHON ?= python
# pytest-xdist processes: the suite is mostly single-threaded runs and subprocesses
PYTEST_WORKERS ?= 2
LINTED = alharness hydra_plugins scripts tests examples run.py setup.py

.PHONY: install test test-fast lint docs docs-serve wheel-check run figures bench

install:  ## the package, editable, with its dev and docs tools (torch/torchvision pinned in pyproject)
	$(PYTHON) -m pip install -e ".[dev,docs]"

test:  ## the whole suite, what CI runs (PYTEST_WORKERS=1 for one process)
	$(PYTHON) -m pytest -n $(PYTEST_WORKERS)

test-fast:  ## everything but the end-to-end runs marked slow: for development
	$(PYTHON) -m pytest -m "not slow" -n $(PYTEST_WORKERS)

lint:
	$(PYTHON) -m ruff check $(LINTED)

docs:  ## the documentation site into site/ (fails on any warning, as CI does)
	$(PYTHON) -m mkdocs build --strict

docs-serve:  ## the documentation at http://127.0.0.1:8000, rebuilt on every edit
	$(PYTHON) -m mkdocs serve

wheel-check:  ## build the wheel, install it in a fresh venv, run it from an empty directory
	bash scripts/check_wheel.sh

run:  ## the default experiment: digits, small CNN, margin, 3 seeds
	$(PYTHON) run.py

figures:  ## report over everything under results/
	$(PYTHON) -m alharness.report results/ --out figures/

bench:  ## selection speed/memory table on synthetic pools
	$(PYTHON) scripts/bench_selection.py --strategy all --n 10000 100000 --dim 128 --batch 1000
