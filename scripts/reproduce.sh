#!/usr/bin/env bash
# `make reproduce`: train supervised / Gaussian / linear for every seed under the paper and tuned presets,
# evaluate them, draw Fig. 1 and write $OUT/REPORT.md. Re-running skips finished runs and resumes killed ones.
#   SEEDS="0 1 2"  PRESETS="tuned paper"  JOBS=2 (parallel runs)  EXTRA="..." (overrides for every run)
set -euo pipefail
cd "$(dirname "$0")/.."
export OUT=${OUT:-outputs/reproduce}
SEEDS=${SEEDS:-"0 1 2"}
PRESETS=${PRESETS:-"tuned paper"}
JOBS=${JOBS:-2}
export EXTRA=${EXTRA:-}
export THREADS=$(( $(nproc) / JOBS > 0 ? $(nproc) / JOBS : 1 ))
mkdir -p "$OUT/logs"
start=$(date +%s)

run_one() {  # preset method seed
  local dir="$OUT/$1/$2/seed-$3" log="$OUT/logs/$1-$2-seed-$3.log" method
  case $2 in
    gaussian) method="prior=gaussian" ;;
    linear) method="prior=linear" ;;
    supervised) method="trainer=supervised" ;;
  esac
  [ -f "$dir/evaluation.json" ] && return 0
  if [ -f "$dir/checkpoint.pt" ]; then  # killed earlier: finish it (a finished run just says so)
    rpm train resume="$dir" >>"$log" 2>&1 || true
  else
    # shellcheck disable=SC2086
    rpm train experiment="$1" $method seed="$3" trainer.threads="$THREADS" trainer.progress=false \
      hydra.run.dir="$dir" $EXTRA >>"$log" 2>&1 || { echo "FAILED training $1 $2 seed $3: see $log" >&2; return 1; }
  fi
  rpm evaluate run_dir="$dir" >>"$log" 2>&1 || { echo "FAILED evaluating $1 $2 seed $3: see $log" >&2; return 1; }
  echo "done $1 $2 seed $3"
}
export -f run_one

train_preset() {  # every method and seed of one preset, JOBS at a time
  for method in supervised gaussian linear; do for seed in $SEEDS; do
    echo "$1 $method $seed"
  done; done | xargs -P "$JOBS" -L 1 bash -c 'run_one "$0" "$1" "$2"'  # exits non-zero if any run failed
}

reused=0  # runs finished by an earlier `make reproduce`: the wall time below does not include them
for preset in $PRESETS; do for method in supervised gaussian linear; do for seed in $SEEDS; do
  [ -f "$OUT/$preset/$method/seed-$seed/evaluation.json" ] && reused=$((reused + 1))
done; done; done

# Fig. 1 shows the tuned preset: train it first and draw the figure as soon as its runs are done.
figure_preset=$(echo " $PRESETS " | grep -q " tuned " && echo tuned || echo "${PRESETS%% *}")
train_preset "$figure_preset"
rpm figures reproduce_dir="$OUT" preset="$figure_preset" hydra.run.dir="$OUT/figures"
figure_seconds=$(( $(date +%s) - start ))
echo "Fig. 1 ($figure_preset preset): $OUT/figures/fig1.png after $(( figure_seconds / 60 )) min"
for preset in $PRESETS; do
  [ "$preset" = "$figure_preset" ] || train_preset "$preset"
done
python -m rpm_cli.report "$OUT" --wall-seconds $(( $(date +%s) - start )) --figure-seconds "$figure_seconds" \
  --jobs "$JOBS" --reused "$reused"
echo "report: $OUT/REPORT.md"
