# Sourced by the grid scripts (clica_grid.sh, rpm_study.sh): SEEDS, a count (the first N reporting seeds of
# configs/protocol.yaml) or a list of seeds, becomes $seeds, comma-separated for `rpm train -m seed=...`.
if [[ $SEEDS =~ ^[0-9]+$ ]] && [ "$SEEDS" -le 25 ]; then
  SEEDS=$(python -c "from rpm_cli.reproduction import REPORTING_SEEDS as s; print(*s[:$SEEDS])")
fi
seeds=$(echo $SEEDS | tr ' ' ',')
