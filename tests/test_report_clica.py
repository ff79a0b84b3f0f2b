"""The second world's report section follows its registration: a `high` prediction holds only when the
Wilson interval of the recovery rate lies above one half, a `below` one only on a Holm-corrected paired test."""
from rpm_cli.report.clica import CLICA_PROTOCOL, cell_table, verdicts

SEEDS = range(300, 325)


def _run(mcc, r2):
    return {"test": {"mcc": mcc, "r2": r2, "random_init": {"mcc": 0.4, "r2": 0.45},
                     "chance": {"mcc": 0.02, "r2": -0.001}}}


def _cells(scores):
    """Every registered cell, each seed scoring `scores[cell]` = (mcc, r2), or a function of the seed giving
    them; 0.95 for both otherwise."""
    def value(cell, seed):
        v = scores.get(cell, (0.95, 0.95))
        return v(seed) if callable(v) else v

    return {cell: {s: _run(*value(cell, s)) for s in SEEDS}
            for cell in ((c.conditional, c.prior) for c in CLICA_PROTOCOL.cells)}


def _line(lines, start):
    return next(line for line in lines if line.startswith(start))


def test_a_high_prediction_holds_only_above_one_half():
    good = verdicts(_cells({("laplace", "laplace"): (0.95, 0.99), ("laplace", "linear"): (0.5, 0.6)}))
    assert "25/25 seeds ≥ 0.9" in _line(good, "- laplace conditional, laplace prior, MCC") and "**holds**" in \
        _line(good, "- laplace conditional, laplace prior, MCC")
    # 12 of 25 at 0.95, the rest at 0.5: Wilson's lower bound is far below one half.
    half = verdicts(_cells({("laplace", "laplace"): lambda s: (0.95 if s < 312 else 0.5, 0.99)}))
    assert "**fails**" in _line(half, "- laplace conditional, laplace prior, MCC")


def test_below_needs_a_corrected_paired_difference():
    lower = verdicts(_cells({("laplace", "linear"): (0.5, 0.6), ("normal", "linear"): (0.5, 0.6)}))
    line = _line(lower, "- laplace conditional, linear prior, MCC")
    assert "lower than the laplace prior's on the same 25 seeds" in line and "**holds**" in line
    same = verdicts(_cells({}))  # linear as good as the matched prior on every seed
    line = _line(same, "- laplace conditional, linear prior, MCC")
    assert "not detectably lower" in line and "**fails**" in line


def test_the_table_has_a_row_per_cell_with_intervals():
    table = cell_table(_cells({}))
    assert table.count("\n") == 1 + len(CLICA_PROTOCOL.cells)
    assert "25/25 [0.87, 1.00]" in table  # Wilson for 25/25
