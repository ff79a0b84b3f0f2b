#!/usr/bin/env bash
# The second world's grid (README, "A second world"): data=clica under each conditional in
# rpm_cli.reproduction.CLICA_CONDITIONALS against each prior in CLICA_PRIORS, on the reporting seeds, evaluated;
# `rpm report` reads $OUT/clica. One `rpm train -m` sweep per cell, JOBS cells at a time, 1 thread each;
# re-running skips finished runs.   OUT=outputs/reproduce  SEEDS=25 (the first N reporting seeds, or a list)  JOBS=2
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/reproduce}
SEEDS=${SEEDS:-25}
JOBS=${JOBS:-2}
source scripts/reporting_seeds.sh
mkdir -p "$OUT/logs"
python -c "
from rpm_cli.reproduction import CLICA_CONDITIONALS, CLICA_PRIORS, clica_dir
for c in CLICA_CONDITIONALS:
    for p in CLICA_PRIORS:
        print(c, p, clica_dir('$OUT', c, p))" |
  xargs -P "$JOBS" -L 1 bash -c '
    if rpm train -m data=clica data.conditional="$0" prior="$1" seed='"$seeds"' evaluate=true trainer.threads=1 \
        trainer.progress=false hydra.sweep.dir="$2" "hydra.sweep.subdir=seed-\${seed}" >>"'"$OUT"'/logs/clica-$0-$1.log" 2>&1
    then echo "done clica $0 $1"; else echo "FAILED clica $0 $1: see '"$OUT"'/logs/clica-$0-$1.log" >&2; exit 1; fi'
