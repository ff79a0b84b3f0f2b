#!/usr/bin/env bash
# The documented search behind `experiment=tuned`: Gaussian prior, full size, seed 0, evaluated inline,
# starting from Appendix D's settings (experiment=paper) and changing one thing at a time, as it was run.
# Each sweep writes $OUT/<name>/sweep_summary.{csv,png}; the report lists every run.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/reproduce/tuning}
common=(experiment=paper prior=gaussian seed=0 evaluate=true trainer.threads=1 trainer.progress=false)
launcher=()
python -c "import hydra_plugins.hydra_joblib_launcher" 2>/dev/null && launcher=(hydra/launcher=rpm_joblib)
sweep() {  # name, then overrides
  local name=$1
  shift
  rpm train -m "${launcher[@]}" "${common[@]}" "$@" hydra.sweep.dir="$OUT/$name"
}
# 1. Optimizer and learning rate (10 epochs).
sweep adam trainer.epochs=10 trainer.optimizer=adam trainer.lr=0.001,0.005,0.02
sweep sgd-sum trainer.epochs=10 trainer.optimizer=sgd trainer.lr=0.005 trainer.loss_reduction=sum
# 2. Adam plateaued with a shrinking θ: hold θ fixed (5 epochs).
sweep fixed-theta trainer.epochs=5 trainer.optimizer=adam trainer.lr=0.02 \
  prior.learn_lengthscale=false prior.lengthscale=16,32,64
# 3. The maps stayed diffuse: start the last BatchNorm's shift low (5 epochs).
sweep map-bias trainer.epochs=5 trainer.optimizer=adam trainer.lr=0.02,0.005 encoder.map_bias_init=-4,-8
rpm figures sweep_dir="$OUT/adam" x_key=trainer.lr
for name in sgd-sum fixed-theta map-bias; do
  rpm figures sweep_dir="$OUT/$name"
done
