# rpm: one-line set-up, run and test. PYTHON may point at a virtualenv's python.
PYTHON ?= python3
PIP = $(PYTHON) -m pip

.PHONY: install install-sweep install-all test test-slow fuzz flake-check lint-imports bench seed-study reproduce ablations studies theory clean

install:  ## torch 2.13.0 unless a torch is already installed, then the package (editable) with its test tools
	$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install "torch==2.13.0"
	$(PIP) install -e ".[test]"

install-sweep: install  ## optional Hydra plugins: joblib and submitit launchers, optuna sweeper
	$(PIP) install -e ".[test,sweep]"

install-all: install  ## every optional extra (sweep plugins, TensorBoard), as CI runs
	$(PIP) install -e ".[test,sweep,tensorboard]"

test:  ## the default suite (tiny configs), a few minutes on 2 cores
	$(PYTHON) -m pytest -q

test-slow:  ## the slow tests too (multi-process launchers, fuzzed command lines)
	$(PYTHON) -m pytest -q -m ""

fuzz:  ## exploratory fuzzing: fresh hypothesis examples (20x the default counts), then 500 drawn `rpm` command lines
	HYPOTHESIS_PROFILE=explore $(PYTHON) -m pytest -q -m fuzz
	$(PYTHON) scripts/fuzz_cli.py --commands 500 --jobs 2

lint-imports:  ## the import layers and no cycles (contracts in pyproject.toml; CI runs this)
	$(PYTHON) -c "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"

flake-check:  ## the default suite's property-based tests twice: the same examples both times (CI runs this)
	$(PYTHON) scripts/flake_check.py

bench:  ## training-step, video, evaluation speed and peak memory at the paper size
	$(PYTHON) scripts/bench.py

seed-study:  ## what a 25-seed study costs: every method x 25 speed seeds at the default recipe (225 runs), timed
	bash scripts/seed_study.sh

reproduce:  ## every prior on the reporting seeds, Fig. 1, rpm theory and outputs/reproduce/REPORT.md from scratch
	bash scripts/reproduce.sh

ablations:  ## recipe ablations, beyond-the-setting, lengthscale sweep, open choices (long); then `rpm report`
	bash scripts/ablations.sh
	rpm report outputs/reproduce

studies:  ## the registered studies beside the headline: data=clica's grid and objective=rpm against InfoNCE; then `rpm report`
	bash scripts/clica_grid.sh
	bash scripts/rpm_study.sh
	rpm report outputs/reproduce

theory:  ## the paper's relations checked on a closed-form model (~50 s)
	rpm theory

clean:
	rm -rf outputs/train outputs/evaluate outputs/figures outputs/theory outputs/cache
