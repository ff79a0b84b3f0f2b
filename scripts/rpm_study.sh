#!/usr/bin/env bash
# The RPM-against-InfoNCE study (README, "objective=rpm"; configs/rpm_protocol.yaml): objective=rpm under each
# registered posterior and prior, the registered study's tuned recipe, on the first N reporting seeds, evaluated;
# `rpm report` reads $OUT/rpm/<posterior>/<prior>/seed-N beside the InfoNCE runs in $OUT/tuned/<prior>/. One `rpm train -m` sweep
# per cell, JOBS cells at a time, 1 thread each; re-running skips finished runs.
#   OUT=outputs/reproduce  SEEDS=10 (the registered count; or a list)  JOBS=2
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/reproduce}
SEEDS=${SEEDS:-$(python -c "from rpm_cli.reproduction import RPM_PROTOCOL; print(RPM_PROTOCOL.n_seeds)")}
JOBS=${JOBS:-2}
# The registered recipe (configs/protocol.yaml `recipes`): the InfoNCE runs these are paired with were trained by it.
RECIPE=$(python -c "from rpm_cli.reproduction import RPM_PROTOCOL, STUDY_RECIPES; print(STUDY_RECIPES[RPM_PROTOCOL.preset])")
export RECIPE  # assigned first: `export X=$(...)` would hide a failure from set -e
source scripts/reporting_seeds.sh
mkdir -p "$OUT/logs"
python -c "
from rpm_cli.reproduction import RPM_PROTOCOL, rpm_dir
for q in RPM_PROTOCOL.posteriors:
    for p in RPM_PROTOCOL.priors:
        print(q, p, rpm_dir('$OUT', q, p))" |
  xargs -P "$JOBS" -L 1 bash -c '
    if rpm train -m $RECIPE objective=rpm posterior="$0" prior="$1" seed='"$seeds"' evaluate=true trainer.threads=1 \
        trainer.progress=false hydra.sweep.dir="$2" "hydra.sweep.subdir=seed-\${seed}" >>"'"$OUT"'/logs/rpm-$0-$1.log" 2>&1
    then echo "done rpm $0 $1"; else echo "FAILED rpm $0 $1: see '"$OUT"'/logs/rpm-$0-$1.log" >&2; exit 1; fi'
