#!/usr/bin/env bash
# `make ablations`: the measurements behind REPORT.md's ablation, open-choice, beyond-the-setting and
# lengthscale tables. Each part is one or more Hydra multiruns (2 jobs at a time with the joblib launcher
# when installed), every run evaluated inline; `rpm report` includes each table whose sweeps are present.
#   PARTS="recipe beyond lengthscale choices" (in this order by default)  OUT=outputs/reproduce/ablations
# Ablations and open choices select nothing, but they are about choices: they read the validation video and
# run on tuning seeds. Beyond-the-setting and the lengthscale sweep are results: test video, reporting seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/reproduce/ablations}
PARTS=${PARTS:-"recipe beyond lengthscale choices"}
tuning_seeds=$(python -c "from rpm_cli.reproduction import TUNING_SEEDS as s; print(','.join(map(str, s[1:4])))")
reporting_seeds=$(python -c "from rpm_cli.reproduction import REPORTING_SEEDS as s; print(','.join(map(str, s)))")
common=(evaluate=true trainer.threads=1 trainer.progress=false)
launcher=()
python -c "import hydra_plugins.hydra_joblib_launcher" 2>/dev/null && launcher=(hydra/launcher=rpm_joblib)

sweep() {  # part, name, then overrides; skipped when its summary exists (rerun: delete the sweep dir)
  local dir="$OUT/$1/$2"
  shift 2
  [ -f "$dir/sweep_summary.csv" ] && return 0
  rpm train -m "${launcher[@]}" "${common[@]}" "$@" hydra.sweep.dir="$dir"
  rpm figures sweep_dir="$dir" >/dev/null
  echo "done $dir"
}

for part in $PARTS; do
  case $part in
    recipe)  # Appendix D plus each change alone; the tuned recipe minus each change; both critics
      for prior in gaussian linear; do
        s=(prior=$prior seed=$tuning_seeds)
        sweep recipe "$prior-paper" experiment=paper "${s[@]}"
        sweep recipe "$prior-paper+adam" experiment=paper trainer.optimizer=adam trainer.lr=0.02 "${s[@]}"
        sweep recipe "$prior-paper+shift" experiment=paper encoder.map_bias_init=-8 "${s[@]}"
        sweep recipe "$prior-paper+restarts" experiment=paper trainer.restarts=5 trainer.restart_epochs=2 "${s[@]}"
        sweep recipe "$prior-tuned" trainer=tuned "${s[@]}"
        sweep recipe "$prior-tuned-adam" trainer=tuned trainer.optimizer=sgd trainer.lr=0.005 "${s[@]}"
        sweep recipe "$prior-tuned-shift" trainer=tuned encoder.map_bias_init=0 "${s[@]}"
        sweep recipe "$prior-tuned-restarts" trainer=tuned trainer.restarts=1 "${s[@]}"
      done ;;
    beyond)  # the claim with other numbers of balls and at 128² with 16-px balls: same recipe, no retuning
      s=(prior=gaussian,linear seed=$reporting_seeds)
      sweep beyond balls data.n_balls=2,4,5 "${s[@]}"
      sweep beyond small data.image_size=128 data.ball_diameter=16 "${s[@]}" ;;
    lengthscale)  # θ0 in px, learned or fixed (README's sweep, run for real)
      sweep lengthscale gaussian prior=gaussian prior.lengthscale=2,4,8,16,32,64 prior.learn_lengthscale=true,false \
        seed=$reporting_seeds
      rpm figures sweep_dir="$OUT/lengthscale/gaussian" x_key=prior.lengthscale >/dev/null ;;
    choices)  # what the paper leaves open: rpm's choice vs one alternative, under both recipes, Gaussian f_θ
      for recipe in paper tuned; do
        s=(trainer=$recipe prior=gaussian seed=$tuning_seeds)
        sweep choices "$recipe-default" "${s[@]}"
        sweep choices "$recipe-units" encoder.latent_units=pixels,signed "${s[@]}"
        sweep choices "$recipe-batchnorm" trainer.batchnorm_batch=separate "${s[@]}"
        sweep choices "$recipe-theta0" prior.lengthscale=8 "${s[@]}"
        sweep choices "$recipe-sum" trainer.loss_reduction=sum "${s[@]}"
        [ "$recipe" = paper ] && shift_alt=-8 || shift_alt=0
        sweep choices "$recipe-shift" encoder.map_bias_init=$shift_alt "${s[@]}"
        sweep choices "$recipe-background" data.background=white "${s[@]}"
        sweep choices "$recipe-antialias" data.antialias=false "${s[@]}"
      done ;;
    *) echo "unknown part '$part' (allowed: recipe beyond lengthscale choices)" >&2; exit 2 ;;
  esac
done
