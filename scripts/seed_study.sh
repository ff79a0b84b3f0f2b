#!/usr/bin/env bash
# `make seed-study`: what a 25-seed study costs. Every method (the supervised baseline and every prior in
# configs/prior/) on the 25 speed seeds of configs/protocol.yaml, 225 runs at today's default recipe and paper
# size, trained and evaluated on the validation and test videos, JOBS lanes side by side; prints the wall time
# and runs per hour and writes $OUT/timing.json. Timing only: the speed seeds' scores are never reported or
# selected on. Re-running skips finished runs and resumes killed ones (the time and rate then cover the new ones).
#   OUT=outputs/seed-study  SEEDS=25 (the first N speed seeds, or a list "900 901")  METHODS="all" (or a list)
#   JOBS=2  EXTRA="..." (more overrides for every run)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/seed-study}
SEEDS=${SEEDS:-25}
if [[ $SEEDS =~ ^[0-9]+$ ]] && [ "$SEEDS" -le 25 ]; then  # a count: the first N speed seeds
  SEEDS=$(python -c "from rpm_cli.reproduction import SPEED_SEEDS as s; print(*s[:$SEEDS])")
fi
METHODS=${METHODS:-all}
[ "$METHODS" = all ] && METHODS=$(python -c "from rpm_cli.reproduction import all_methods as m; print(*m())")
JOBS=${JOBS:-2}
EXTRA=${EXTRA:-}
THREADS=$(( $(nproc) / JOBS > 0 ? $(nproc) / JOBS : 1 ))
mkdir -p "$OUT/logs"
plan=$(python -m rpm_cli.reproduction "$OUT" --lanes "$JOBS" --methods "$METHODS" --seeds "$SEEDS") || exit 2
runs=$(wc -w <<<"$SEEDS")
runs=$(( runs * $(wc -w <<<"$METHODS") ))
reused=$(python -c "import pathlib, sys; print(len(list(pathlib.Path(sys.argv[1]).glob('default/*/seed-*/evaluation.json'))))" "$OUT")
echo "seed study: $runs runs in $JOBS lanes ($THREADS thread(s) each) under $OUT ($reused done before: not timed)"
start=$(date +%s)

lane() {  # one lane's sweeps (its priors, then its supervised runs), one after the other; a failed sweep is
  # reported and the rest go on (within a sweep, a run that diverges does not stop the others)
  local failed=0
  while read -r _ label seeds parent subdir override; do
    # shellcheck disable=SC2086
    if ! rpm train -m "$override" seed="$seeds" evaluate=true trainer.threads="$THREADS" trainer.progress=false \
        hydra.sweep.dir="$parent" hydra.sweep.subdir="$subdir" $EXTRA >>"$OUT/logs/$label.log" 2>&1 </dev/null; then
      echo "FAILED $label seeds $seeds: see $OUT/logs/$label.log" >&2
      failed=1
    fi
  done
  return $failed
}

pids=()
for i in $(seq 0 $(( JOBS - 1 ))); do
  { grep "^$i " <<<"$plan" || true; } | lane &  # a lane may have nothing to do (fewer runs than lanes)
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
wall=$(( $(date +%s) - start ))
python - "$OUT" "$wall" "$runs" "$JOBS" "$reused" <<'PY'
import sys
from pathlib import Path
from rpm_cli.atomic import write_json
out, (wall, runs, jobs, reused) = Path(sys.argv[1]), map(int, sys.argv[2:])
evaluated = len(list(out.glob("default/*/seed-*/evaluation.json")))
timed = evaluated - reused  # the runs this start trained and evaluated
rate = round(timed * 3600 / wall, 1) if wall and timed else None
write_json(out / "timing.json", {"wall_seconds": wall, "runs": runs, "evaluated": evaluated, "reused": reused,
                                 "jobs": jobs, "runs_per_hour": rate})
print(f"seed study: {evaluated} of {runs} runs evaluated ({timed} by this start in {wall // 60} min {wall % 60} s"
      + (f": {rate:.0f} runs per hour)" if rate else ")"))
PY
exit $status
