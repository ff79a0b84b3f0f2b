"""The objective=rpm section of REPORT.md (rpm_cli/report/rpm_objective.py) on run records built by hand."""
from rpm_cli import stats
from rpm_cli.report import rpm_objective

SEEDS = range(300, 310)


def _runs(tracked_seeds, gain=0.0, slot=0.5) -> list[dict]:
    return [{"seed": s, "final_train": {"q_gain": gain + 0.001 * i},
             "config": {"objective": {"sigma_px": 1.0}},
             "test": {"slot_matched_px": [0.5, 0.4, 0.3] if s in tracked_seeds else [0.5, 0.4, 40.0],
                      "slot_l2_px": slot if s in tracked_seeds else 30.0}}
            for i, s in enumerate(SEEDS)]


EVERY = set(SEEDS)
CELLS = {("recognition", "gaussian"): _runs(EVERY), ("amortized", "gaussian"): _runs(EVERY, gain=0.02, slot=0.3),
         ("recognition", "linear"): _runs(set()), ("amortized", "linear"): _runs({300}, gain=0.05)}
INFONCE = {"gaussian": _runs(EVERY - {300, 301}), "linear": _runs(set())}


def test_each_rpm_arm_is_tested_against_infonce_with_the_same_prior_and_seeds():
    rows = rpm_objective._comparisons(CELLS, INFONCE)
    assert [r["label"] for r in rows] == ["rpm (recognition Q), gaussian", "rpm (amortized Q), gaussian",
                                          "rpm (recognition Q), linear", "rpm (amortized Q), linear"]
    gaussian = rows[0]
    assert gaussian["success_p"] == stats.mcnemar_exact(2, 0)  # seeds 300, 301 tracked by the RPM only
    assert gaussian["success_p_holm"] == min(1.0, 4 * stats.mcnemar_exact(2, 0))
    assert all(r["precision_p"] != r["precision_p"] for r in rows[2:])  # NaN: fewer than 3 tracked seeds


def test_predictions_are_marked_held_or_failed_by_their_registered_rules(monkeypatch):
    rows = rpm_objective._comparisons(CELLS, INFONCE)
    lines = rpm_objective._predictions(CELLS, rows, rpm_objective._gain_tests(CELLS))
    linear = [line for line in lines if line.startswith("- linear not rescued")]
    assert len(linear) == 2 and all("**held**" in line for line in linear)  # 0/10 and 1/10: Wilson high < 50 %
    gain = next(line for line in lines if "q_gain of the amortized Q under gaussian" in line)
    assert "**held**" in gain  # 0.02-0.029 nats, all positive: p = 0.002 (exact, n = 10)
    monkeypatch.setattr(rpm_objective.RPM_PROTOCOL, "small_gain_nats", 0.01)
    lines = rpm_objective._predictions(CELLS, rows, rpm_objective._gain_tests(CELLS))
    assert "**failed**" in next(line for line in lines if "q_gain of the amortized Q under gaussian" in line)


def test_the_section_has_infonce_beside_each_rpm_arm(monkeypatch):
    monkeypatch.setattr(rpm_objective, "collect_rpm", lambda root: CELLS)
    text = rpm_objective.rpm_section("outputs/x", INFONCE)
    arms = next(block for block in text.split("\n\n") if block.startswith("| arm |"))
    table = [line for line in arms.splitlines() if line.startswith(("| InfoNCE", "| rpm ("))]
    assert len(table) == 6
    assert table[0].startswith("| InfoNCE, gaussian | 10 | 8/10 |")
    assert table[2].startswith("| rpm (amortized Q), gaussian | 10 | 10/10 |") and table[2].endswith("] |")
    assert all(line.count("|") == 9 for line in table)  # 8 columns
    assert "Registered predictions:" in text and "Incomplete" not in text
