#!/usr/bin/env bash
# `make ablations`: the measurements behind REPORT.md's ablation, beyond-the-setting, lengthscale and
# open-choice tables. Each sweep is one Hydra multirun (its seeds one after another, each run evaluated inline);
# JOBS sweeps run at a time. The sweeps (names, folders, overrides, seeds) come from rpm_cli/reproduction.py
# (`python -m rpm_cli.reproduction ablations OUT` prints them), which `rpm report` reads too: it includes each
# table whose sweeps are present (their runs, or in a fresh clone their committed sweep_summary.csv).
# Re-running continues: finished sweeps are skipped, finished runs reused, killed runs resumed.
#   PARTS="recipe beyond lengthscale choices" (this order by default)  RECIPES="tuned paper" (for choices)
#   PRIORS="gaussian linear" (for recipe and beyond)  JOBS=2  OUT=outputs/reproduce/ablations
# Every part runs on ten tuning seeds (rpm_cli/reproduction.py: ABLATION_SEEDS) and its tables read the validation video.
# A sweep whose config and seeds another planned sweep trains (reproduction.SAME_RUNS) is not trained again:
# the report reads those runs and says where they come from.
set -euo pipefail
cd "$(dirname "$0")/.."
export OUT=${OUT:-outputs/reproduce/ablations}
JOBS=${JOBS:-2}

sweep() {  # part name dir overrides...: skipped when its summary exists (to redo one, delete its dir)
  local log="$OUT/logs/$1-$2.log" dir=$3
  shift 3
  [ -f "$dir/sweep_summary.csv" ] && return 0
  mkdir -p "$OUT/logs"
  rpm train -m evaluate=true trainer.threads=1 trainer.progress=false "$@" hydra.sweep.dir="$dir" >>"$log" 2>&1 &&
    rpm figures sweep_dir="$dir" >>"$log" 2>&1 || { echo "FAILED $dir: see $log" >&2; return 1; }
  echo "done $dir"
}
export -f sweep

# The whole plan first, so that a misspelt part, recipe or prior stops the script before any sweep starts.
# Empty PARTS, RECIPES or PRIORS mean the defaults above.
plan=$(python -m rpm_cli.reproduction ablations "$OUT" --parts "${PARTS:-}" --recipes "${RECIPES:-}" --priors "${PRIORS:-}")
printf '%s\n' "$plan" | xargs -P "$JOBS" -L 1 bash -c 'sweep "$@"' _
