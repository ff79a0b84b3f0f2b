"""The ablation sections of REPORT.md (`make ablations`): tables read from the sweeps under
<root>/ablations/<part>/<sweep>/. Which sweep is which comes from rpm_cli.reproduction's plan, the one
scripts/ablations.sh runs."""
from pathlib import Path

from rpm_cli.layout import RUNTIME_KEYS
from rpm_cli.reproduction import (ABLATION_PRIORS, PRESETS, RECIPE_CHANGES, TUNED_SHIFT, Sweep, ablation_plan,
                                  open_choices, prior_names)
from rpm_cli.report.records import fmt, mean_of, sweeps_under
from rpm_cli.report.verdicts import FAIL_FRACTION, SLOT_TARGET_PX, choice_verdict, selected, works

# The report's words for the plan's recipe changes and open choices, by their names there.
CHANGE_WORDS = {"adam": "Adam at lr 0.02", "shift": "last BatchNorm shift {shift:g}", "restarts": "best of 5 starts"}
CHOICE_WORDS = {  # (what the paper leaves open, rpm's choice, the alternative)
    "units": ("latent units f_θ sees", "image size = 1 (z in (0, 1))", "pixels; [-1, 1]"),
    "batchnorm": ("base and next frames in one BatchNorm batch", "one batch of 2B", "two batches of B"),
    "theta0": ("initial θ", "one ball diameter (32 px)", "8 px"),
    "sum": ("mean vs summed loss", "mean over the batch", "sum"),
    "shift": ("the last BatchNorm's initial shift", f"the recipe's (0 paper, {TUNED_SHIFT:g} tuned)",
              f"the other ({TUNED_SHIFT:g} / 0)"),
    "background": ("background colour", "black", "white"),
    "antialias": ("anti-aliased ball edges", "yes", "no"),
}


def _sweeps(root: Path, part: str) -> dict[str, list[dict]]:
    return sweeps_under(root / "ablations" / part)


def _planned(root: Path, part: str) -> dict[Sweep, list[dict]]:
    """The sweeps of this part found under root that the plan names (any prior, either recipe), in folder order."""
    plan = {s.name: s for s in ablation_plan([part], recipes=tuple(PRESETS), priors=prior_names())}
    return {plan[name]: rows for name, rows in _sweeps(root, part).items() if name in plan}


def _starts_at_tuned_shift(sweep: Sweep) -> bool:
    """The tuned recipe, unless the sweep takes the shift out; Appendix D, if the sweep adds it."""
    return (sweep.recipe == "tuned") != (sweep.change == "shift")


def _cell(rows, key) -> str:
    return fmt([r[key] for r in rows]) if rows else "—"


def _earlier_recipe_note(sweeps: dict[Sweep, list[dict]]) -> str:
    """Sweeps measured before the tuning's validation rerun moved trainer=tuned's shift say so (read from their rows)."""
    earlier = {s.name: sorted({float(r["map_bias_init"]) for r in rows} - {TUNED_SHIFT}) for s, rows in sweeps.items()}
    earlier = {name: shifts for name, shifts in earlier.items() if shifts}
    if not earlier:
        return ""
    shifts = sorted({s for values in earlier.values() for s in values})
    return (f"\n\n**Measured with the tuned recipe's earlier initial shift ({', '.join(f'{s:g}' for s in shifts)}): "
            f"{', '.join(f'`{name}`' for name in earlier)}; `trainer=tuned` now starts it at {TUNED_SHIFT:g}.** "
            f"To remeasure, delete those sweeps and run `make ablations`.")


def _all_tracked(rows, prefix="") -> str:
    return f"{sum(r[prefix + 'balls_tracked'] == r['n_balls'] for r in rows)} of {len(rows)}"


def recipe_section(root: Path) -> str | None:
    sweeps = _planned(root, "recipe")
    if not sweeps:
        return None
    lines = ["| prior | setting | seeds | val slot L2 (px) | val joint L2 (px) | seeds with every ball tracked |",
             "|---|---|---|---|---|---|"]
    sentences = []
    for prior in ABLATION_PRIORS:
        found = {s: rs for s, rs in sweeps.items() if s.prior == prior}
        rows = {(s.recipe, s.change): rs for s, rs in found.items()}
        shifted = rows.get(("paper", "shift")) or [{"map_bias_init": TUNED_SHIFT}]  # the shift those runs used
        words = {**CHANGE_WORDS, "shift": CHANGE_WORDS["shift"].format(shift=float(shifted[0]["map_bias_init"]))}
        for s, rs in found.items():
            lines.append(f"| {prior} | {s.setting} | {', '.join(str(r['seed']) for r in rs)} "
                         f"| {_cell(rs, 'slot_l2_px')} | {_cell(rs, 'readout_l2_px')} | {_all_tracked(rs)} |")

        def setting_works(recipe, change=""):
            return works(rows[recipe, change]) if rows.get((recipe, change)) else None
        if setting_works("tuned") is False:
            enough = [words[c] for c in RECIPE_CHANGES if setting_works("paper", c)]
            sentences.append(f"- {prior}: the tuned recipe itself does not work with this prior, so no change is "
                             f"necessary for it; " + ("some single change from Appendix D works: " + ", ".join(enough)
                                                      if enough else "no single change from Appendix D works either")
                             + ".")
            continue
        for change in RECIPE_CHANGES:
            alone, without = setting_works("paper", change), setting_works("tuned", change)
            if alone is None or without is None:
                continue
            sentences.append(f"- {prior}: {words[change]} is {'sufficient' if alone else 'not sufficient'} on its own "
                             f"and {'not necessary' if without else 'necessary'} in the tuned recipe.")
    return ("## Ablations of the recipe (validation video, tuning seeds)\n\nOne change at a time, from Appendix D "
            "(`paper+change`) and from the tuned recipe (`tuned-change`). A setting *works* when its mean validation "
            f"slot L2 is below {SLOT_TARGET_PX:g} px.\n\n" + "\n".join(lines) + "\n\n" + "\n".join(sentences)
            + _earlier_recipe_note({s: rs for s, rs in sweeps.items() if _starts_at_tuned_shift(s)}))


def beyond_section(root: Path) -> str | None:
    sweeps = _planned(root, "beyond")
    if not sweeps:
        return None
    groups = {}
    for rows in sweeps.values():
        for r in rows:
            setting = f"{r['n_balls']} balls, {r.get('override:data.image_size', '256')}² frames"
            groups.setdefault(setting, {}).setdefault(r["prior"], []).append(r)
    lines = ["| setting | Gaussian test slot L2 | every ball tracked | linear test slot L2 | random-init slot L2 | verdict |",
             "|---|---|---|---|---|---|"]
    for setting, by_prior in groups.items():
        g, lin = by_prior.get("gaussian", []), by_prior.get("linear", [])
        every = g + lin
        random = mean_of(every, "test_random_init_slot_l2_px")
        holds = bool(g) and mean_of(g, "test_slot_l2_px") < SLOT_TARGET_PX and (
            not lin or mean_of(lin, "test_slot_l2_px") >= FAIL_FRACTION * random)
        lines.append(f"| {setting} | {_cell(g, 'test_slot_l2_px')} | {_all_tracked(g, 'test_') if g else '—'} "
                     f"| {_cell(lin, 'test_slot_l2_px')} | {random:.2f} | {'holds' if holds else 'does not hold'} |")
    return ("## Beyond the paper's setting (test video, reporting seeds, tuned recipe, no retuning)\n\nThe claim "
            f"*holds* when the Gaussian's mean slot L2 is below {SLOT_TARGET_PX:g} px and the linear critic's at least "
            f"{FAIL_FRACTION:g}× the random-init encoder's.\n\n" + "\n".join(lines)
            + _earlier_recipe_note(sweeps))


def lengthscale_section(root: Path) -> str | None:
    sweeps = _planned(root, "lengthscale")
    rows = [r for rs in sweeps.values() for r in rs]
    if not rows:
        return None
    grid = {}
    for r in rows:
        grid.setdefault((float(r["initial_lengthscale_px"]), str(r["learn_lengthscale"])), []).append(r)
    lines = ["| θ0 (px) | θ | test slot L2 (px) | test joint L2 (px) | every ball tracked | final θ (px) |",
             "|---|---|---|---|---|---|"]
    for (theta0, learned), rs in sorted(grid.items()):
        lines.append(f"| {theta0:g} | {'learned' if learned == 'True' else 'fixed'} | {_cell(rs, 'test_slot_l2_px')} "
                     f"| {_cell(rs, 'test_readout_l2_px')} | {_all_tracked(rs, 'test_')} "
                     f"| {_cell(rs, 'final_lengthscale_px')} |")
    learned = [r for r in rows if str(r["learn_lengthscale"]) == "True"]
    fixed = [r for r in rows if str(r["learn_lengthscale"]) != "True"]
    best = selected(grid)
    motion = rows[0]["motion_lengthscale_px"]
    ends = ", ".join(f"{theta0:g} → {mean_of(rs, 'final_lengthscale_px'):.1f}"
                     for (theta0, learn), rs in sorted(grid.items()) if learn == "True")
    text = (f"Where learned θ ends, by θ0 (px, mean over seeds): {ends}; the simulated motion implies "
            f"θ = {motion:.1f} px (one step of a ball's 2-D move per coordinate: step/√2). "
            f"Lowest mean validation slot L2: θ0 = {best[0]:g} px, "
            f"{'learned' if best[1] == 'True' else 'fixed'} (test {fmt([r['test_slot_l2_px'] for r in grid[best]])} px). "
            f"Fixed θ: mean slot L2 {fmt([r['test_slot_l2_px'] for r in fixed])} px; learned: "
            f"{fmt([r['test_slot_l2_px'] for r in learned])} px.")
    picture = "".join(f"\n\n![lengthscale sweep, {s.change} θ, validation video]"
                      f"(ablations/lengthscale/{s.name}/sweep_summary.png)"
                      for s in sweeps) + "\n\n(The plots show the validation video, as every sweep summary does.)"
    return ("## The lengthscale sweep (Gaussian f_θ, test video, reporting seeds, tuned recipe)\n\n"
            + "\n".join(lines) + "\n\n" + text + picture)


def choices_section(root: Path) -> str | None:
    sweeps = {(s.recipe, s.change): rows for s, rows in _planned(root, "choices").items()}
    if not sweeps:
        return None
    lines = ["| choice the paper leaves open | rpm's choice | alternative | recipe | val slot L2, rpm's (px) "
             "| val slot L2, alternative (px) | every ball tracked, alternative | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    deciding = {"paper": [], "tuned": []}
    for recipe in ("paper", "tuned"):
        default = sweeps.get((recipe, ""), [])
        for key in open_choices(recipe):
            what, ours, alternative = CHOICE_WORDS[key]
            rows = sweeps.get((recipe, key))
            if not rows or not default:
                continue
            by_value = {}
            for r in rows:
                # The alternative is what the sweep overrides besides the recipe, the prior and the runtime keys.
                value = " ".join(f"`{k.split(':', 1)[1]}={v}`" for k, v in r.items() if k.startswith("override:")
                                 and k.split(":", 1)[1] not in (*RUNTIME_KEYS, "trainer", "prior"))
                by_value.setdefault(value, []).append(r)
            for value, rs in by_value.items():
                verdict = choice_verdict(default, rs)
                if verdict.startswith("**decides"):
                    deciding[recipe].append(f"{what} ({value or alternative})")
                lines.append(f"| {what} | {ours} | {value or alternative} | {recipe} | {_cell(default, 'slot_l2_px')} "
                             f"| {_cell(rs, 'slot_l2_px')} | {_all_tracked(rs)} | {verdict} |")
    summary = "\n".join(f"- Under the {'tuned recipe' if recipe == 'tuned' else 'Appendix D recipe'}, "
                        + (f"the choices that decide whether the result appears: {'; '.join(found)}."
                           if found else "no single choice here decides whether the result appears.")
                        for recipe, found in deciding.items())
    return ("## What the paper leaves open, measured (validation video, tuning seeds, Gaussian f_θ)\n\n"
            f"Each alternative changes one choice from rpm's and leaves the rest of the recipe as it is. A setting "
            f"*works* when its mean validation slot L2 is below {SLOT_TARGET_PX:g} px; a choice *decides* when "
            f"rpm's setting and the alternative fall on different sides of that line.\n\n"
            + "\n".join(lines) + "\n\n" + summary)


def ablation_sections(root: Path) -> list[str]:
    sections = [f(root) for f in (recipe_section, beyond_section, lengthscale_section, choices_section)]
    return [s for s in sections if s]
