"""The report's ablation tables (`make ablations`) read sweep rows; here the rows are made by hand so that each
verdict can be checked against a known answer without training."""

from rpm_cli.report import ablations as report


def _row(seed, slot, **extra):
    return {"seed": seed, "slot_l2_px": slot, "readout_l2_px": slot / 10, "balls_tracked": 3 if slot < 5 else 2,
            "n_balls": 3, "map_bias_init": report.TUNED_SHIFT, "epochs": report.TUNED_EPOCHS, **extra}


def _rows(*slots, **extra):
    return [_row(10 + i, s, **extra) for i, s in enumerate(slots)]


TRACKED, UNTRACKED = [0.5] * 10, [60.0] * 10  # ten seeds that track every ball, ten that track none
# Exact McNemar on 10 discordant seeds: p = 2 * 0.5**10; Holm multiplies the smallest of m by m.
P10 = 2 * 0.5**10


def _table(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]


def test_choices_section_tests_each_alternative_against_rpms_choice(monkeypatch):
    sweeps = {
        "tuned-default": _rows(*TRACKED),
        "tuned-shift": _rows(*UNTRACKED, **{"override:encoder.map_bias_init": "0"}),
        "tuned-units": _rows(*[0.4] * 10, **{"override:encoder.latent_units": "pixels"})
        + _rows(*UNTRACKED, **{"override:encoder.latent_units": "signed"}),
        "paper-default": _rows(*UNTRACKED),
        "paper-shift": _rows(*TRACKED, **{"override:encoder.map_bias_init": "-8"}),
    }
    monkeypatch.setattr(report, "_sweeps", lambda root, part: sweeps if part == "choices" else {})
    text = report.choices_section(None)
    rows = _table(text)
    assert len(rows) == 4  # units splits into its two values
    pixels = next(r for r in rows if "| `encoder.latent_units=pixels` |" in r)
    # Both track every ball on all 10 seeds: no discordant seed; how precisely: 0.4 against 0.5 px on every seed.
    assert "| no difference detectable at n = 10 (p = 1, Holm 1) |" in pixels
    assert pixels.endswith(f"| more precise on all 10 seeds both track (Holm p = {2 / 2**10:.2g}) |")
    signed = next(r for r in rows if "| `encoder.latent_units=signed` |" in r)
    assert f"tracks every ball less often than rpm's choice (Holm p = {3 * P10:.2g})" in signed  # 3 in the family
    assert "| 10/10, 100% [72%, 100%] | 0/10, 0% [0%, 28%] |" in signed
    paper = next(r for r in rows if "| paper |" in r)
    assert f"tracks every ball more often than rpm's choice (Holm p = {P10:.2g})" in paper
    tuned = next(line for line in text.splitlines() if line.startswith("- Under the tuned recipe"))
    assert "initial shift (`encoder.map_bias_init=0`: less often, 0/10 against 10/10" in tuned
    assert "latent units f_θ sees (`encoder.latent_units=signed`: less often" in tuned
    assert "pixels" not in tuned
    sweeps["tuned-shift"] = _rows(*UNTRACKED[:3], **{"override:encoder.map_bias_init": "0"})
    text = report.choices_section(None)  # 3 seeds: 3 discordant seeds give p = 0.25, never a difference
    assert "no difference detectable at n = 3 (p = 0.25" in text and "Cells with 3 seeds are anecdotes" in text
    shift = next(r for r in _table(text) if "| `encoder.map_bias_init=0` |" in r)
    assert "| 10–12 | 3/3, 100% [44%, 100%] | 0/3, 0% [0%, 56%] |" in shift  # rpm's choice on the row's seeds


def test_a_sweep_another_part_trains_is_read_there_and_named(monkeypatch):
    def lengthscale(theta0, slots):
        return _rows(*slots, **{"override:prior.lengthscale": theta0, "override:prior.learn_lengthscale": True})
    sweeps = {"lengthscale": {"true": lengthscale(8, UNTRACKED) + lengthscale(32, TRACKED)},
              "choices": {"tuned-units": _rows(*TRACKED, **{"override:encoder.latent_units": "pixels"})}}
    monkeypatch.setattr(report, "_sweeps", lambda root, part: sweeps.get(part, {}))
    planned = report._planned(None, "choices")
    assert {s.name: [r["slot_l2_px"] for r in rs] for s, rs in planned.items()} == {
        "tuned-default": TRACKED, "tuned-units": TRACKED, "tuned-theta0": UNTRACKED}
    text = report.choices_section(None)
    assert ("`choices/tuned-default` are the runs of `lengthscale/true` at `prior.lengthscale=32`; "
            "`choices/tuned-theta0` are the runs of `lengthscale/true` at `prior.lengthscale=8`.") in text
    assert len(_table(text)) == 2  # units and θ0; rpm's choice is each row's reference, not a row
    assert "| `prior.lengthscale=8` | tuned |" in text  # what the borrowed sweep overrides, not what it shares
    sweeps["choices"]["tuned-default"] = _rows(*UNTRACKED)  # its own folder, when a run made one, comes first
    planned = report._planned(None, "choices")
    assert [[r["slot_l2_px"] for r in rs] for s, rs in planned.items() if s.name == "tuned-default"] == [UNTRACKED]
    assert "`choices/tuned-default` are the runs" not in report.choices_section(None)


def test_recipe_section_calls_a_change_necessary_and_sufficient_by_the_test(monkeypatch):
    sweeps = {"gaussian-paper": _rows(*UNTRACKED), "gaussian-paper+shift": _rows(*TRACKED),
              "gaussian-tuned": _rows(*TRACKED), "gaussian-tuned-shift": _rows(*UNTRACKED),
              "gaussian-paper+adam": _rows(*UNTRACKED), "gaussian-tuned-adam": _rows(*[1.0] * 10)}
    monkeypatch.setattr(report, "_sweeps", lambda root, part: sweeps if part == "recipe" else {})
    text = report.recipe_section(None)
    holm2 = f"{2 * P10:.2g}"  # two changes against each recipe
    assert (f"last BatchNorm shift {report.TUNED_SHIFT:g} is sufficient on its own (10/10 against 0/10, Holm p = "
            f"{holm2}) and necessary in the tuned recipe (0/10 against 10/10, Holm p = {holm2})") in text
    assert ("Adam at lr 0.02 is not shown sufficient on its own (0/10 against 0/10, Holm p = 1) and not shown "
            "necessary in the tuned recipe (10/10 against 10/10, Holm p = 1)") in text
    adam = next(r for r in _table(text) if "| tuned-adam |" in r)
    assert adam.endswith(f"| less precise on all 10 seeds both track (Holm p = {2 / 2**10:.2g}) |")
    assert "best of 5 starts" not in text.split("\n\n")[-1]  # not measured: no sentence
    assert "earlier `trainer=tuned`" not in text
    sweeps["gaussian-tuned-adam"] = _rows(*[1.0] * 10, epochs=6)  # trained before the recipe study
    assert ("**Trained under an earlier `trainer=tuned` (6 epochs; today's trains "
            f"{report.TUNED_EPOCHS},") in report.recipe_section(None)
    assert "`gaussian-tuned-adam`. Set beside rows" in report.recipe_section(None)


def test_recipe_section_says_when_its_runs_used_an_earlier_shift(monkeypatch):
    earlier = report.TUNED_SHIFT - 2
    sweeps = {"gaussian-paper": _rows(70, 71, 72, map_bias_init=0.0),
              "gaussian-paper+shift": _rows(1, 1, 1, map_bias_init=earlier),
              "gaussian-tuned": _rows(0.5, 0.5, 0.5, map_bias_init=earlier),
              "gaussian-tuned-shift": _rows(64, 64, 64, map_bias_init=0.0)}
    monkeypatch.setattr(report, "_sweeps", lambda root, part: sweeps if part == "recipe" else {})
    text = report.recipe_section(None)
    assert f"last BatchNorm shift {earlier:g} is not shown sufficient" in text  # 3 seeds: never shown
    assert f"earlier initial shift ({earlier:g}): `gaussian-paper+shift`, `gaussian-tuned`;" in text
    sweeps.update({k: [dict(r, map_bias_init=report.TUNED_SHIFT) for r in sweeps[k]]
                   for k in ("gaussian-paper+shift", "gaussian-tuned")})
    assert "earlier initial shift" not in report.recipe_section(None)


def test_lengthscale_section_selects_on_validation_and_tests_each_cell_against_the_default(monkeypatch):
    def rows(theta0, learn, slots, finals, test=0.1):
        return [dict(_row(10 + i, slot, initial_lengthscale_px=theta0, learn_lengthscale=learn,
                          final_lengthscale_px=final, test_slot_l2_px=test, test_balls_tracked=3,
                          motion_lengthscale_px=22.63)) for i, (slot, final) in enumerate(zip(slots, finals))]
    # The default (32 px, learned) tracks every ball on 10 of 10 seeds; θ0 = 4 on 0 of 10 (the same seeds:
    # 10 discordant seeds, exact McNemar p = 2 * 0.5**10); θ0 = 16 fixed on 9 of 10 (p = 1). θ0 = 4's test
    # score is the best, and must not count: selection reads validation only.
    sweeps = {"true": rows(4, True, [30.0] * 10, [6.0] * 5 + [7.0] * 5, test=0.01)
              + rows(32, True, [1.0] * 9 + [0.5], [20.0, 22.0] * 5),
              "false": rows(16, False, [2.0 + i / 10 for i in range(9)] + [9.0], [16.0] * 10)}
    monkeypatch.setattr(report, "_sweeps", lambda root, part: sweeps if part == "lengthscale" else {})
    text = report.lengthscale_section(None)
    table = {line.split(" | ")[0] + " " + line.split(" | ")[1]: line for line in text.splitlines()
             if line.startswith("| ") and "---" not in line}
    assert "| 4 | learned | 10 | 0/10, 0% [0%, 28%] | 30.00 [30.00, 30.00] | 6.5 |" in table["| 4 learned"]
    assert f"less often than the default (θ0 = 32 px, learned) (Holm p = {2 * 2 * 0.5**10:.2g})" in table["| 4 learned"]
    assert "10/10, 100% [72%, 100%]" in table["| 32 learned"] and "the reference" in table["| 32 learned"]
    assert "no difference detectable at n = 10 (p = 1, Holm 1)" in table["| 16 fixed"]
    # How precisely, apart: on the 9 seeds both track, θ0 = 16 is worse on each (exact signed-rank p = 2 / 2**9);
    # θ0 = 4 tracks no seed, so it is no test and leaves the Holm family.
    assert table["| 16 fixed"].endswith(f"| less precise on all 9 seeds both track (Holm p = {2 / 2**9:.2g}) |")
    assert table["| 4 learned"].endswith("| no seed where both track every ball |")
    assert "4 → 6.5, 32 → 21.0" in text and "θ = 22.6 px" in text and "Seeds 10–19 (tuning seeds)" in text
    assert "Selected on these seeds (most seeds with every ball tracked, then the lowest median slot L2): " \
           "θ0 = 32 px, learned." in text
    assert "anecdotes" not in text
    sweeps["false"] = sweeps["false"][:3]
    assert "Cells with 3 seeds are anecdotes" in report.lengthscale_section(None)


def test_recipe_section_names_the_changes_that_rescue_a_recipe_that_fails(monkeypatch):
    sweeps = {"linear-paper": _rows(*UNTRACKED), "linear-tuned": _rows(*UNTRACKED),
              "linear-paper+adam": _rows(*TRACKED), "linear-paper+restarts": _rows(*TRACKED),
              "linear-paper+shift": _rows(*UNTRACKED)}
    monkeypatch.setattr(report, "_sweeps", lambda root, part: sweeps if part == "recipe" else {})
    text = report.recipe_section(None)
    assert f"- linear: Adam at lr 0.02 is sufficient on its own (10/10 against 0/10, Holm p = {3 * P10:.2g})." in text
    assert "- linear: last BatchNorm shift" in text and "is not shown sufficient on its own (0/10" in text
    assert "| linear | paper+adam |" in text and "necessary" not in text.split("\n\n")[-1]


def test_beyond_section_tests_the_gaussian_against_the_linear_critic_by_how_often(monkeypatch):
    small = {"override:data.image_size": "128", "random_init_slot_l2_px": 40.0}
    four = [dict(r, n_balls=4, balls_tracked=4 if r["slot_l2_px"] < 5 else 1, random_init_slot_l2_px=50.0)
            for r in _rows(*[0.5] * 5, *[60.0] * 5, prior="gaussian")]
    sweeps = {"gaussian-small": _rows(*TRACKED, prior="gaussian", **small),
              "linear-small": _rows(*UNTRACKED, prior="linear", **small),
              "gaussian-balls": four,
              "linear-balls": [dict(r, seed=100 + i, n_balls=4, balls_tracked=1) for i, r in
                               enumerate(_rows(60.0, 60.0, 60.0, prior="linear", random_init_slot_l2_px=50.0))]}
    monkeypatch.setattr(report, "_sweeps", lambda root, part: sweeps if part == "beyond" else {})
    rows = {line.split(" | ")[0][2:]: line for line in _table(report.beyond_section(None))}
    # 10 discordant seeds of 10 shared, Holm over the two settings with both critics.
    assert rows["3 balls, 128² frames"].endswith(
        f"| **holds**: the Gaussian tracks every ball more often (10/10 against 0/10, exact McNemar on the shared "
        f"seeds, p = {P10:.2g}, Holm {2 * P10:.2g}) |")
    # No shared seeds: two-sided Fisher on 5/10 against 0/3 is (56 + 10)/286 = 0.23 (hypergeometric: tables no likelier than this one).
    four_balls = rows["4 balls, 256² frames"]
    assert "not shown: no difference detectable (5/10 against 0/3, Fisher, no shared seeds" in four_balls
    assert "| 10–19 | 5/10, 50% [24%, 76%] |" in four_balls and "| 100–102 | 0/3, 0% [0%, 56%] |" in four_balls
    only_linear_rows = {**sweeps, "gaussian-balls": []}
    monkeypatch.setattr(report, "_sweeps", lambda root, part: only_linear_rows if part == "beyond" else {})
    assert "not tested: one critic only" in report.beyond_section(None)
    assert "anecdotes" in report.beyond_section(None)  # three linear seeds
