"""The ablation sections of REPORT.md (`make ablations`): tables read from the sweeps under
<root>/ablations/<part>/<sweep>/."""
from pathlib import Path

from rpm_cli.layout import RUNTIME_KEYS
from rpm_cli.reproduction import TUNED_SHIFT
from rpm_cli.report.records import fmt, mean_of, sweeps_under
from rpm_cli.report.verdicts import FAIL_FRACTION, SLOT_TARGET_PX, choice_verdict, selected, works

RECIPE_CHANGES = {"adam": "Adam at lr 0.02", "shift": "last BatchNorm shift {shift:g}", "restarts": "best of 5 starts"}
CHOICES = {  # sweep suffix: (what the paper leaves open, rpm's choice, the alternative)
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


def _cell(rows, key) -> str:
    return fmt([r[key] for r in rows]) if rows else "—"


def _earlier_recipe_note(sweeps: dict[str, list[dict]]) -> str:
    """Sweeps measured before the tuning's validation rerun moved trainer=tuned's shift say so (read from their rows)."""
    earlier = {name: sorted({float(r["map_bias_init"]) for r in rows} - {TUNED_SHIFT}) for name, rows in sweeps.items()}
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
    sweeps = _sweeps(root, "recipe")
    if not sweeps:
        return None
    lines = ["| prior | setting | seeds | val slot L2 (px) | val joint L2 (px) | seeds with every ball tracked |",
             "|---|---|---|---|---|---|"]
    sentences = []
    for prior in ("gaussian", "linear"):
        rows = {name.removeprefix(prior + "-"): r for name, r in sweeps.items() if name.startswith(prior + "-")}
        shifted = rows.get("paper+shift") or [{"map_bias_init": TUNED_SHIFT}]  # the shift those runs used
        changes = {**RECIPE_CHANGES, "shift": RECIPE_CHANGES["shift"].format(shift=float(shifted[0]["map_bias_init"]))}
        for setting, rs in rows.items():
            lines.append(f"| {prior} | {setting} | {', '.join(str(r['seed']) for r in rs)} | {_cell(rs, 'slot_l2_px')} "
                         f"| {_cell(rs, 'readout_l2_px')} | {_all_tracked(rs)} |")

        def setting_works(setting):
            return works(rows[setting]) if rows.get(setting) else None
        if setting_works("tuned") is False:
            sentences.append(f"- {prior}: the tuned recipe itself does not work with this prior, so no change is "
                             f"necessary for it; " + ("some single change from Appendix D works: " + ", ".join(
                                 w for c, w in changes.items() if setting_works(f"paper+{c}")) if any(
                                 setting_works(f"paper+{c}") for c in changes) else "no single change from Appendix D works either") + ".")
            continue
        for change, words in changes.items():
            alone, without = setting_works(f"paper+{change}"), setting_works(f"tuned-{change}")
            if alone is None or without is None:
                continue
            sentences.append(f"- {prior}: {words} is {'sufficient' if alone else 'not sufficient'} on its own "
                             f"and {'not necessary' if without else 'necessary'} in the tuned recipe.")
    return ("## Ablations of the recipe (validation video, tuning seeds)\n\nOne change at a time, from Appendix D "
            "(`paper+change`) and from the tuned recipe (`tuned-change`). A setting *works* when its mean validation "
            f"slot L2 is below {SLOT_TARGET_PX:g} px.\n\n" + "\n".join(lines) + "\n\n" + "\n".join(sentences)
            + _earlier_recipe_note({name: rs for name, rs in sweeps.items()
                                    if name.endswith(("-tuned", "-tuned-adam", "-tuned-restarts", "+shift"))}))


def beyond_section(root: Path) -> str | None:
    sweeps = _sweeps(root, "beyond")
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
    sweeps = _sweeps(root, "lengthscale")
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
    picture = "".join(f"\n\n![lengthscale sweep, {'learned' if name == 'true' else 'fixed'} θ, validation video]"
                      f"(ablations/lengthscale/{name}/sweep_summary.png)"
                      for name in sweeps) + "\n\n(The plots show the validation video, as every sweep summary does.)"
    return ("## The lengthscale sweep (Gaussian f_θ, test video, reporting seeds, tuned recipe)\n\n"
            + "\n".join(lines) + "\n\n" + text + picture)


def choices_section(root: Path) -> str | None:
    sweeps = _sweeps(root, "choices")
    if not sweeps:
        return None
    lines = ["| choice the paper leaves open | rpm's choice | alternative | recipe | val slot L2, rpm's (px) "
             "| val slot L2, alternative (px) | every ball tracked, alternative | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    deciding = {"paper": [], "tuned": []}
    for recipe in ("paper", "tuned"):
        default = sweeps.get(f"{recipe}-default", [])
        for key, (what, ours, alternative) in CHOICES.items():
            rows = sweeps.get(f"{recipe}-{key}")
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
