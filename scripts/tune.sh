#!/usr/bin/env bash
# The documented search behind `experiment=tuned`: Gaussian prior, full size, seed 0, evaluated inline.
# Optimizer x learning rate x loss reduction, run two at a time; summary in $OUT/sweep_summary.{csv,png}.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/reproduce/tuning}
EPOCHS=${EPOCHS:-30}
common=(prior=gaussian seed=0 evaluate=true trainer.epochs="$EPOCHS" trainer.threads=1 trainer.progress=false)
launcher=()
python -c "import hydra_plugins.hydra_joblib_launcher" 2>/dev/null && launcher=(hydra/launcher=rpm_joblib)
rpm train -m "${launcher[@]}" "${common[@]}" trainer.optimizer=adam trainer.lr=0.001,0.005,0.02 \
  hydra.sweep.dir="$OUT/adam"
rpm train -m "${launcher[@]}" "${common[@]}" trainer.optimizer=sgd trainer.lr=0.005 trainer.loss_reduction=sum \
  hydra.sweep.dir="$OUT/sgd-sum"
rpm figures sweep_dir="$OUT/adam" x_key=trainer.lr
rpm figures sweep_dir="$OUT/sgd-sum"
