PYTHON ?= python

.PHONY: install test lint run figures bench

install:  ## install the package with its dev tools (torch/torchvision pinned in pyproject)
	$(PYTHON) -m pip install -e ".[dev]"

test:  ## what CI runs
	$(PYTHON) -m pytest

lint:
	$(PYTHON) -m ruff check alharness scripts tests run.py

run:  ## the default experiment: digits, small CNN, margin, 3 seeds
	$(PYTHON) run.py

figures:  ## report over everything under results/
	$(PYTHON) -m alharness.report results/ --out figures/

bench:  ## selection speed/memory table on synthetic pools
	$(PYTHON) scripts/bench_selection.py --strategy all --n 10000 100000 --dim 128 --batch 1000
