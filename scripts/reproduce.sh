#!/usr/bin/env bash
# `make reproduce`: train every method (supervised and every prior in configs/prior/) on the reporting seeds
# under the tuned recipe (and, with PRESETS="tuned paper", Fig. 1's three under Appendix D's), evaluate them on the
# validation and test videos, draw Fig. 1 and the priors' P(z'|z), run `rpm theory`, and write
# $OUT/REPORT.md. The layout and the seeds come from rpm_cli/reproduction.py. Re-running skips finished runs
# and resumes killed ones.
#   SEEDS="100 101 102"  PRESETS="tuned" (or "tuned paper")  PRIORS="all" (or e.g. "gaussian laplace")  JOBS=2  EXTRA="..."
set -euo pipefail
cd "$(dirname "$0")/.."
export OUT=${OUT:-outputs/reproduce}
SEEDS=${SEEDS:-$(python -c "from rpm_cli.reproduction import REPORTING_SEEDS as s; print(*s)")}
PRESETS=${PRESETS:-tuned}  # add paper for Appendix D on the reporting seeds (+9 runs of 30 epochs, ~12 min)
PRIORS=${PRIORS:-all}
JOBS=${JOBS:-2}
export EXTRA=${EXTRA:-}
export THREADS=$(( $(nproc) / JOBS > 0 ? $(nproc) / JOBS : 1 ))
mkdir -p "$OUT/logs"
start=$(date +%s)

run_one() {  # preset method seed dir overrides...
  local preset=$1 method=$2 seed=$3 dir=$4
  shift 4
  local log="$OUT/logs/$preset-$method-seed-$seed.log"
  if [ -f "$dir/evaluation.json" ]; then  # done earlier: `rpm evaluate` only recomputes an out-of-date file
    rpm evaluate run_dir="$dir" >>"$log" 2>&1 || { echo "FAILED evaluating $preset $method seed $seed: see $log" >&2; return 1; }
    return 0
  fi
  if [ -f "$dir/checkpoint.pt" ]; then  # killed earlier: finish it (a finished run just says so)
    rpm train resume="$dir" trainer.progress=false >>"$log" 2>&1 || true
  else
    # shellcheck disable=SC2086
    rpm train "$@" seed="$seed" trainer.threads="$THREADS" trainer.progress=false hydra.run.dir="$dir" $EXTRA \
      >>"$log" 2>&1 || { echo "FAILED training $preset $method seed $seed: see $log" >&2; return 1; }
  fi
  rpm evaluate run_dir="$dir" >>"$log" 2>&1 || { echo "FAILED evaluating $preset $method seed $seed: see $log" >&2; return 1; }
  echo "done $preset $method seed $seed"
}
export -f run_one

plan() {  # preset methods: one line per run
  python -m rpm_cli.reproduction "$OUT" --presets "$1" --methods "$2" --seeds "$SEEDS"
}
train_plan() {  # the runs on stdin, JOBS at a time; exits non-zero if any run failed
  xargs -P "$JOBS" -L 1 bash -c 'run_one "$@"' _
}
fig1_methods=$(python -c "from rpm_cli.reproduction import FIG1_METHODS as m; print(*m)")
all_methods=$(python -c "from rpm_cli.reproduction import all_methods as m; print(*m())")
[ "$PRIORS" = all ] && tuned_methods=$all_methods || tuned_methods="$fig1_methods $PRIORS"
tuned_extra=$(for m in $tuned_methods; do echo "$fig1_methods" | grep -qw "$m" || echo "$m"; done | sort -u | xargs)

reused=0  # runs finished by an earlier `make reproduce`: the wall time below does not include them
for d in $(for p in $PRESETS; do plan "$p" "$all_methods"; done | awk '{print $4}'); do
  if [ -f "$d/evaluation.json" ]; then reused=$((reused + 1)); fi
done

# Fig. 1 shows the tuned preset: its three methods go first, and the figure is drawn as soon as they are done.
figure_preset=$(echo " $PRESETS " | grep -q " tuned " && echo tuned || echo "${PRESETS%% *}")
plan "$figure_preset" "$fig1_methods" | train_plan
rpm figures reproduce_dir="$OUT" preset="$figure_preset" hydra.run.dir="$OUT/figures"
figure_seconds=$(( $(date +%s) - start ))
echo "Fig. 1 ($figure_preset preset): $OUT/figures/fig1.png after $(( figure_seconds / 60 )) min"
[ "$figure_preset" = tuned ] && [ -n "$tuned_extra" ] && plan tuned "$tuned_extra" | train_plan
for preset in $PRESETS; do
  [ "$preset" = "$figure_preset" ] || plan "$preset" "$fig1_methods" | train_plan
done
rpm figures reproduce_dir="$OUT" preset="$figure_preset" hydra.run.dir="$OUT/figures" >/dev/null  # + priors.png
first_seed=${SEEDS%% *}
for method in gaussian linear; do  # the pictures of one run each, for the README
  run="$OUT/$figure_preset/$method/seed-$first_seed"
  [ -f "$run/maps.png" ] && mkdir -p "$OUT/figures/run-$method" && cp "$run"/{curves.png,maps.png,tracking.gif} "$OUT/figures/run-$method/"
done
rpm theory hydra.run.dir="$OUT/theory" >"$OUT/logs/theory.log" 2>&1 || { echo "FAILED rpm theory: see $OUT/logs/theory.log" >&2; exit 1; }
rpm report "$OUT" --wall-seconds $(( $(date +%s) - start )) --figure-seconds "$figure_seconds" --jobs "$JOBS" --reused "$reused"
echo "report: $OUT/REPORT.md"
