"""rpm_cli/stats.py against textbook values and hand computations."""
import math

import pytest

from rpm_cli import stats


@pytest.mark.parametrize("k,n,low,high", [(0, 3, 0.0, 0.5615), (3, 3, 0.4385, 1.0), (24, 25, 0.8046, 0.9929),
                                          (5, 10, 0.2366, 0.7634)])
def test_wilson_interval_matches_the_textbook(k, n, low, high):
    assert stats.wilson(k, n) == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))


def test_exact_mcnemar_is_a_binomial_test_on_the_discordant_seeds():
    assert stats.mcnemar_exact(0, 5) == pytest.approx(2 * 0.5 ** 5)
    assert stats.mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)  # 2 P(X <= 1), X ~ Bin(10, 1/2)
    assert stats.mcnemar_exact(4, 4) == 1.0 and stats.mcnemar_exact(0, 0) == 1.0


def test_three_seeds_against_three_cannot_reach_five_percent():
    assert stats.fisher(3, 3, 0, 3) == pytest.approx(0.1)  # the best any split of 3 against 3 can do
    assert stats.mann_whitney([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)  # 2 of the 20 orderings
    assert stats.fisher_power(0.95, 0.0, 3, 0.05) == 0.0


def test_holm_adjusts_step_down_and_keeps_order():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = stats.holm([0.01, math.nan, 0.02])
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.02)
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_bootstrap_median_is_seeded_and_brackets_the_median():
    values = [0.1, 0.3, 0.2, 5.0, 0.25, 0.15, 40.0]
    median, low, high = stats.bootstrap_median(values)
    assert median == 0.25 and low <= median <= high
    assert stats.bootstrap_median(values) == (median, low, high)
    assert stats.bootstrap_median([2.0] * 5) == (2.0, 2.0, 2.0)
    assert all(math.isnan(v) for v in stats.bootstrap_median([]))


def test_twenty_five_seeds_detect_a_drop_from_95_to_about_60_percent():
    """The issue's arithmetic: 95 % against 60 % needs about 25 seeds per arm at 80 % power."""
    drop = stats.smallest_detectable_drop(0.95, 25, 0.05)
    assert 0.3 <= drop <= 0.4
    assert stats.fisher_power(0.95, 0.95 - drop, 25, 0.05) >= 0.8 > stats.fisher_power(0.95, 0.96 - drop, 25, 0.05)


def test_threshold_range_is_the_run_around_the_registered_threshold():
    grid = [1, 2, 3, 5, 7, 9]
    assert stats.threshold_range(lambda x: 2 < x < 8, grid, 5) == (3.0, 7.0)
    assert stats.threshold_range(lambda x: x in (1, 5), grid, 5) == (5.0, 5.0)
    assert stats.threshold_range(lambda x: x < 3, grid, 5) is None


def test_wilcoxon_signed_rank_textbook_values():
    # Every one of 10 paired differences positive: the exact two-sided p is 2 / 2**10.
    assert stats.wilcoxon_signed_rank([k + 1.5 for k in range(10)], [0] * 10) == pytest.approx(2 / 2**10)
    # Differences +1, -2, +3, -4, +5: W+ = 9, W- = 6; by enumeration 26 of the 32 sign patterns are at least as
    # extreme (W+ <= 6 or >= 9), so p = 26 / 32.
    assert stats.wilcoxon_signed_rank([1, -2, 3, -4, 5], [0] * 5) == pytest.approx(26 / 32)
    assert stats.wilcoxon_signed_rank([1, 2], [1, 2]) == 1.0
