#!/usr/bin/env bash
# `make ablations`: the measurements behind REPORT.md's ablation, beyond-the-setting, lengthscale and
# open-choice tables. Each sweep is one Hydra multirun (its seeds one after another, each run evaluated inline);
# JOBS sweeps run at a time. `rpm report` includes each table whose sweeps are present (their runs, or in a
# fresh clone their committed sweep_summary.csv). Re-running continues: finished sweeps are skipped, finished
# runs reused, killed runs resumed.
#   PARTS="recipe beyond lengthscale choices" (this order by default)  RECIPES="tuned paper" (for choices)
#   PRIORS="gaussian linear" (for recipe and beyond)  JOBS=2  OUT=outputs/reproduce/ablations
# Ablations and open choices are about choices: they read the validation video and run on tuning seeds.
# Beyond-the-setting and the lengthscale sweep are results: test video, reporting seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
export OUT=${OUT:-outputs/reproduce/ablations}
PARTS=${PARTS:-"recipe beyond lengthscale choices"}
JOBS=${JOBS:-2}
RECIPES=${RECIPES:-"tuned paper"}
PRIORS=${PRIORS:-"gaussian linear"}
tuning_seeds=$(python -c "from rpm_cli.reproduction import TUNING_SEEDS as s; print(','.join(map(str, s[1:4])))")
reporting_seeds=$(python -c "from rpm_cli.reproduction import REPORTING_SEEDS as s; print(','.join(map(str, s)))")
tuned_shift=$(python -c "from rpm_cli.reproduction import TUNED_SHIFT; print(TUNED_SHIFT)")  # the tuned recipe's

sweep() {  # part/name, then overrides; skipped when its summary exists (to redo one, delete its dir)
  local dir="$OUT/$1" log="$OUT/logs/${1//\//-}.log"
  shift
  [ -f "$dir/sweep_summary.csv" ] && return 0
  mkdir -p "$OUT/logs"
  rpm train -m evaluate=true trainer.threads=1 trainer.progress=false "$@" hydra.sweep.dir="$dir" >>"$log" 2>&1 &&
    rpm figures sweep_dir="$dir" >>"$log" 2>&1 || { echo "FAILED $dir: see $log" >&2; return 1; }
  echo "done $dir"
}
export -f sweep

plan() {  # one line per sweep: part/name overrides...
  for part in $PARTS; do
    case $part in
      recipe)  # Appendix D plus each change alone; the tuned recipe minus each change; both priors
        for prior in $PRIORS; do
          s="prior=$prior seed=$tuning_seeds"
          echo "recipe/$prior-paper experiment=paper $s"
          echo "recipe/$prior-paper+adam experiment=paper trainer.optimizer=adam trainer.lr=0.02 $s"
          echo "recipe/$prior-paper+shift experiment=paper encoder.map_bias_init=$tuned_shift $s"
          echo "recipe/$prior-paper+restarts experiment=paper trainer.restarts=5 trainer.restart_epochs=2 $s"
          echo "recipe/$prior-tuned trainer=tuned $s"
          echo "recipe/$prior-tuned-adam trainer=tuned trainer.optimizer=sgd trainer.lr=0.005 $s"
          echo "recipe/$prior-tuned-shift trainer=tuned encoder.map_bias_init=0 $s"
          echo "recipe/$prior-tuned-restarts trainer=tuned trainer.restarts=1 $s"
        done ;;
      beyond)  # other numbers of balls, and 128² frames with 16-px balls: the same recipe, no retuning
        for prior in $PRIORS; do
          echo "beyond/$prior-balls data.n_balls=2,4,5 prior=$prior seed=$reporting_seeds"
          echo "beyond/$prior-small data.image_size=128 data.ball_diameter=16 prior=$prior seed=$reporting_seeds"
        done ;;
      lengthscale)  # θ0 in px, learned or fixed: the README's sweep, run for real
        for learn in true false; do
          echo "lengthscale/$learn prior=gaussian prior.lengthscale=2,4,8,16,32,64 prior.learn_lengthscale=$learn seed=$reporting_seeds"
        done ;;
      choices)  # what the paper leaves open: rpm's choice vs an alternative, under both recipes, Gaussian f_θ
        for recipe in $RECIPES; do
          s="trainer=$recipe prior=gaussian seed=$tuning_seeds"
          [ "$recipe" = paper ] && shift_alt=$tuned_shift || shift_alt=0
          echo "choices/$recipe-default $s"
          echo "choices/$recipe-units encoder.latent_units=pixels,signed $s"
          echo "choices/$recipe-batchnorm trainer.batchnorm_batch=separate $s"
          echo "choices/$recipe-theta0 prior.lengthscale=8 $s"
          echo "choices/$recipe-sum trainer.loss_reduction=sum $s"
          echo "choices/$recipe-shift encoder.map_bias_init=$shift_alt $s"
          echo "choices/$recipe-background data.background=white $s"
          echo "choices/$recipe-antialias data.antialias=false $s"
        done ;;
      *) echo "unknown part '$part' (allowed: recipe beyond lengthscale choices)" >&2; exit 2 ;;
    esac
  done
}

plan | xargs -P "$JOBS" -L 1 bash -c 'sweep "$@"' _
