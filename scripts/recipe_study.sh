#!/usr/bin/env bash
# The default recipe's robustness study (configs/recipe_protocol.yaml): each candidate recipe on every prior of
# the protocol, tuning seeds 10-34, evaluated (the choice reads the validation video); `rpm report` reads
# $OUT/recipe/<candidate>/<prior>/seed-N. Run the conditional candidate (reseed) before the baseline: the
# baseline then runs only where the candidate fired; and a candidate that `extends` another after it (its
# runs start as copies of the other's finished ones, extended in place). CANDIDATES=confirmation, once a
# recipe is frozen in trainer=tuned: the protocol's target prior under the committed default on that recipe's
# fresh seeds ($OUT/recipe_confirmation/<recipe>/<prior>/seed-N, scored on the test video). One `rpm train -m`
# sweep per prior, JOBS at a time, 1 thread each; re-running skips finished runs. Then $OUT/RECIPE.md.
#   OUT=outputs/reproduce  CANDIDATES="reseed default leastleak"  PRIORS="" (all)  JOBS=2
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/reproduce}
CANDIDATES=${CANDIDATES:-reseed default leastleak}
PRIORS=${PRIORS:-}
JOBS=${JOBS:-2}
mkdir -p "$OUT/logs"
for candidate in $CANDIDATES; do
  python -m rpm_cli.recipe_study "$OUT" "$candidate" --priors "$PRIORS" |
    xargs -P "$JOBS" -L 1 bash -c '
      prior=$0 seeds=$1 dir=$2; shift 2  # "$@" are the overrides of the candidate
      if rpm train -m prior="$prior" seed="$seeds" "$@" evaluate=true trainer.threads=1 trainer.progress=false \
          hydra.sweep.dir="$dir" "hydra.sweep.subdir=seed-\${seed}" >>"'"$OUT"'/logs/recipe-'"$candidate"'-$prior.log" 2>&1
      then echo "done recipe '"$candidate"' $prior"; else echo "FAILED recipe '"$candidate"' $prior" >&2; exit 1; fi'
done
python -m rpm_cli.report.recipe "$OUT"
