#!/usr/bin/env bash
# `make reproduce`: train every method (supervised and every prior in configs/prior/) on the reporting seeds
# of the pre-registered study (configs/protocol.yaml: 25 seeds) under its tuned recipe (`recipes`: trainer=tuned
# with the keys changed since pinned as the study ran them) (and, with
# PRESETS="tuned paper", Fig. 1's three under Appendix D's on the first 10), evaluate them on the validation and
# test videos, draw Fig. 1 and the priors' P(z'|z), run the second world's grid (scripts/clica_grid.sh), run
# `rpm theory`, and write $OUT/REPORT.md. The layout and
# the seeds come from rpm_cli/reproduction.py. Re-running skips finished runs and resumes killed ones.
#   SEEDS=25 (the first N reporting seeds, or a list "300 301")  PRESETS="tuned" (or "tuned paper")
#   PRIORS="all" (or e.g. "gaussian laplace", or "none": Fig. 1's three only)  CLICA=1  JOBS=2  EXTRA="..."
# Fewer seeds than a claim needs (reproduction.MIN_SEEDS_FOR_A_CLAIM, 10) make a quick look (`SEEDS=3`): Fig. 1's
# three methods (PRIORS=none) without the second world's grid (CLICA=0) unless PRIORS or CLICA say otherwise,
# one sweep per run and JOBS=3, so that its 9 runs share the cores evenly (two jobs leave one lane a run behind
# at the end); its report says, in its verdicts, that 3 seeds support no comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
export OUT=${OUT:-outputs/reproduce}
SEEDS=${SEEDS:-25}
if [[ $SEEDS =~ ^[0-9]+$ ]] && [ "$SEEDS" -le 25 ]; then  # a count: the first N reporting seeds
  SEEDS=$(python -c "from rpm_cli.reproduction import REPORTING_SEEDS as s; print(*s[:$SEEDS])")
fi
PRESETS=${PRESETS:-tuned}  # add paper for Appendix D (Fig. 1's three, 30 epochs each, on the first 10 seeds)
quick=$(python -c "from rpm_cli.reproduction import MIN_SEEDS_FOR_A_CLAIM as m; print(int($(wc -w <<<"$SEEDS") < m))")
if [ "$quick" = 1 ]; then
  PRIORS=${PRIORS:-none} CLICA=${CLICA:-0} JOBS=${JOBS:-3} chunk="--chunk 1"
  echo "a quick look: $(wc -w <<<"$SEEDS") seeds, PRIORS=$PRIORS CLICA=$CLICA JOBS=$JOBS (SEEDS=25 for the registered study)"
fi
PRIORS=${PRIORS:-all}
CLICA=${CLICA:-1}
JOBS=${JOBS:-2}
export EXTRA=${EXTRA:-}
export THREADS=$(( $(nproc) / JOBS > 0 ? $(nproc) / JOBS : 1 ))
mkdir -p "$OUT/logs"
start=$(date +%s)

run_group() {  # preset method seeds(comma-separated) parent-dir overrides...: every seed of one method in one
  # process (`rpm train -m`, jobs one after another: start-up, imports and the validation and test videos are
  # paid once per method, not once per run). A sweep started again continues killed runs and skips finished
  # ones; a diverged run is reported and the others go on.
  local preset=$1 method=$2 seeds=$3 parent=$4
  shift 4
  local log="$OUT/logs/$preset-$method.log"
  # shellcheck disable=SC2086
  if rpm train -m "$@" seed="$seeds" evaluate=true trainer.threads="$THREADS" trainer.progress=false \
      hydra.sweep.dir="$parent" 'hydra.sweep.subdir=seed-${seed}' $EXTRA >>"$log" 2>&1; then
    echo "done $preset $method seeds $seeds"
  else
    echo "FAILED $preset $method: see $log" >&2
    return 1
  fi
}
export -f run_group

plan() {  # preset methods: one line per run
  python -m rpm_cli.reproduction "$OUT" --presets "$1" --methods "$2" --seeds "$SEEDS"
}
train_plan() {  # preset methods: one sweep per method, JOBS at a time; exits non-zero if any failed
  # shellcheck disable=SC2086
  python -m rpm_cli.reproduction "$OUT" --presets "$1" --methods "$2" --seeds "$SEEDS" --by-method ${chunk:-} |
    xargs -P "$JOBS" -L 1 bash -c 'run_group "$@"' _
}
fig1_methods=$(python -c "from rpm_cli.reproduction import FIG1_METHODS as m; print(*m)")
all_methods=$(python -c "from rpm_cli.reproduction import all_methods as m; print(*m())")
case $PRIORS in all) tuned_methods=$all_methods ;; none) tuned_methods=$fig1_methods ;;
  *) tuned_methods="$fig1_methods $PRIORS" ;; esac
tuned_extra=$(for m in $tuned_methods; do echo "$fig1_methods" | grep -qw "$m" || echo "$m"; done | sort -u | xargs)

reused=0  # runs finished by an earlier `make reproduce`: the wall time below does not include them
for d in $(for p in $PRESETS; do plan "$p" "$all_methods"; done | awk '{print $4}'); do
  if [ -f "$d/evaluation.json" ]; then reused=$((reused + 1)); fi
done

# `rpm theory` needs no run: it starts now at the lowest priority and takes the CPU the training leaves idle.
nice -n 19 rpm theory hydra.run.dir="$OUT/theory" >"$OUT/logs/theory.log" 2>&1 &
theory=$!
# Fig. 1 shows the tuned preset: its three methods go first, and the figure is drawn as soon as they are done.
figure_preset=$(echo " $PRESETS " | grep -q " tuned " && echo tuned || echo "${PRESETS%% *}")
train_plan "$figure_preset" "$fig1_methods"
rpm figures reproduce_dir="$OUT" preset="$figure_preset" hydra.run.dir="$OUT/figures"
figure_seconds=$(( $(date +%s) - start ))
echo "Fig. 1 ($figure_preset preset): $OUT/figures/fig1.png after $(( figure_seconds / 60 )) min"
[ "$figure_preset" = tuned ] && [ -n "$tuned_extra" ] && train_plan tuned "$tuned_extra"
for preset in $PRESETS; do
  [ "$preset" = "$figure_preset" ] || train_plan "$preset" "$fig1_methods"
done
if [ -n "$tuned_extra" ] && [ "$figure_preset" = tuned ]; then  # again with the other priors: + priors.png
  rpm figures reproduce_dir="$OUT" preset="$figure_preset" hydra.run.dir="$OUT/figures" >/dev/null
fi
first_seed=${SEEDS%% *}
for method in gaussian linear; do  # the pictures of one run each, for the README
  run="$OUT/$figure_preset/$method/seed-$first_seed"
  [ -f "$run/checkpoint.pt" ] && [ ! -f "$run/maps.png" ] && rpm evaluate run_dir="$run" >/dev/null  # sweeps draw none
  [ -f "$run/maps.png" ] && mkdir -p "$OUT/figures/run-$method" && cp "$run"/{curves.png,maps.png,tracking.gif} "$OUT/figures/run-$method/"
done
[ "$CLICA" = 1 ] && OUT="$OUT" SEEDS="$SEEDS" JOBS="$JOBS" bash scripts/clica_grid.sh  # the second world's grid
wait "$theory" || { echo "FAILED rpm theory: see $OUT/logs/theory.log" >&2; exit 1; }
rpm report "$OUT" --wall-seconds $(( $(date +%s) - start )) --figure-seconds "$figure_seconds" --jobs "$JOBS" --reused "$reused"
echo "report: $OUT/REPORT.md"
