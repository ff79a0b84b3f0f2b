# rpm: one-line set-up, run and test. PYTHON may point at a virtualenv's python.
PYTHON ?= python3
PIP = $(PYTHON) -m pip

.PHONY: install install-sweep test test-slow bench reproduce clean

install:  ## torch 2.13.0 unless a torch is already installed, then the package (editable) with its test tools
	$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install "torch==2.13.0"
	$(PIP) install -e ".[test]"

install-sweep: install  ## optional Hydra plugins: joblib and submitit launchers, optuna sweeper
	$(PIP) install -e ".[test,sweep]"

test:  ## the default suite (tiny configs), a few minutes on 2 cores
	$(PYTHON) -m pytest -q

test-slow:  ## the slow tests too (multi-process launchers, kill-and-resume)
	$(PYTHON) -m pytest -q -m ""

bench:  ## training-step, video, evaluation speed and peak memory at the paper size
	$(PYTHON) scripts/bench.py

reproduce:  ## Fig. 1 and outputs/reproduce/REPORT.md from scratch
	bash scripts/reproduce.sh

clean:
	rm -rf outputs/train outputs/evaluate outputs/figures outputs/cache
