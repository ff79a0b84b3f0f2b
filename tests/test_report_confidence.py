"""The registered study's section (rpm_cli/report/confidence.py) on run records built by hand."""
import pytest

from rpm_cli import stats
from rpm_cli.report import confidence


def _runs(errors_by_seed: dict[int, list[float]], slot=0.5) -> list[dict]:
    return [{"seed": s, "test": {"slot_matched_px": e, "slot_l2_px": slot if max(e) < 5 else 30.0}}
            for s, e in errors_by_seed.items()]


SEEDS = range(300, 325)
GAUSSIAN = _runs({s: [0.5, 0.4, 0.3] for s in SEEDS})  # 25 of 25
# 10 of 25: 10 marginal failures (6 px) and 5 catastrophic (40 px, a map on no ball)
LINEAR = _runs({s: [0.5, 0.5, 6.0 if i < 10 else (40.0 if i < 15 else 0.5)] for i, s in enumerate(SEEDS)})


def test_an_arm_row_counts_successes_and_splits_failures():
    row = confidence.arm_row("linear", LINEAR)
    low, high = stats.wilson(10, 25)
    assert "| 25 | 10/25 | 40% " in row and f"[{low:.0%}, {high:.0%}]" in row
    assert "| 10 | 5 |" in row  # marginal, catastrophic


def test_each_prior_against_the_gaussian_is_a_corrected_exact_test_in_words():
    lines = confidence.comparisons({"tuned": {"gaussian": GAUSSIAN, "linear": LINEAR, "cosine": GAUSSIAN}})
    linear = next(line for line in lines if line.startswith("| linear against"))
    p = stats.mcnemar_exact(0, 15)  # 15 seeds tracked by the Gaussian only
    assert f"| {p:.3g} | {min(1, 2 * p):.3g} | tracks every ball less often than the Gaussian |" in linear
    cosine = next(line for line in lines if line.startswith("| cosine against"))
    assert "no difference detectable at n = 25" in cosine


def test_tuned_against_appendix_d_joins_the_success_family_paired_on_seeds():
    paper_gaussian = _runs({s: [40.0, 0.5, 0.5] for s in list(SEEDS)[:10]})  # Appendix D: a map on no ball
    arms = {"tuned": {"gaussian": GAUSSIAN, "linear": LINEAR}, "paper": {"gaussian": paper_gaussian}}
    rows = confidence.registered_comparisons(arms)
    assert [r["label"] for r in rows] == ["linear against the Gaussian", "gaussian: tuned recipe against Appendix D"]
    recipe = rows[1]
    assert recipe["success_p"] == pytest.approx(stats.mcnemar_exact(10, 0))  # the 10 shared seeds
    smallest, largest = sorted(r["success_p"] for r in rows)
    assert recipe["success_p"] == largest and recipe["success_p_holm"] == pytest.approx(max(2 * smallest, largest))
    line = next(x for x in confidence.comparisons(arms) if x.startswith("| gaussian: tuned"))
    assert "tracks every ball more often than Appendix D" in line


def test_a_quick_look_says_it_cannot_support_a_comparison():
    few = {"gaussian": GAUSSIAN[:3], "linear": LINEAR[:3]}
    text = confidence.study_section({"tuned": few})
    assert "tuned: 3 seeds per arm, not the registered 25" in text and "not even when the rate falls to 0" in text
    paper = _runs({s: [40.0, 0.5, 0.5] for s in list(SEEDS)[:10]})  # Appendix D's registered 10 seeds
    full = confidence.study_section({"tuned": {"gaussian": GAUSSIAN, "linear": LINEAR}, "paper": {"gaussian": paper}})
    assert "not the registered" not in full and "n = 25 seeds per arm" in full
    assert "`tuned` (50 runs), `paper` (10 runs)" in full and "100, 101, 102 saw two recipes" in full


@pytest.mark.parametrize("worst,tracked", [(4.99, True), (5.0, False)])
def test_the_threshold_is_strict(worst, tracked):
    assert confidence.tracked({"test": {"slot_matched_px": [0.1, worst]}}, 5.0) is tracked


def test_only_reporting_seeds_enter_the_registered_study():
    from rpm_cli.report.reproduction import registered_arms

    spent = _runs({100: [0.1, 0.1, 0.1]})  # an earlier report's seed
    found = {"tuned": {"gaussian": GAUSSIAN + spent, "linear": spent}}
    arms = registered_arms(found)
    assert list(arms["tuned"]) == ["gaussian"] and len(arms["tuned"]["gaussian"]) == 25
