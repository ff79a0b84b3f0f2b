"""The ablation sections of REPORT.md (`make ablations`): tables read from the sweeps under
<root>/ablations/<part>/<sweep>/. Which sweep is which comes from rpm_cli.reproduction's plan, the one
scripts/ablations.sh runs."""
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rpm_cli import stats
from rpm_cli.layout import RUNTIME_KEYS
from rpm_cli.readout import TRACKED_PX
from rpm_cli.reproduction import (ABLATION_PRIORS, ABLATION_RECIPES, ABLATION_SEEDS, MIN_SEEDS_FOR_A_CLAIM,
                                  PRESETS, PROTOCOL, RECIPE_CHANGES, SPENT_SEEDS, TUNED_EPOCHS, TUNED_SHIFT, Sweep,
                                  ablation_plan, prior_names)
from rpm_cli.report.records import sweeps_under

DEFAULT_THETA0_PX = 32.0  # the Gaussian's initial θ by default: one ball diameter (configs/data/balls.yaml)

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
    """The sweeps of this part found under root that the plan names (any prior, either recipe), in plan order. A
    sweep without its own folder whose runs another part trains reads them there and keeps `same_as`, which the
    tables name; every other sweep has `same_as` None."""
    found = _sweeps(root, part)
    out = {}
    for sweep in ablation_plan([part], recipes=tuple(PRESETS), priors=prior_names()):
        if sweep.name in found:
            out[sweep._replace(same_as=None)] = found[sweep.name]
        elif sweep.same_as and (rows := [r for r in _sweeps(root, sweep.same_as.part).get(sweep.same_as.name, [])
                                         if sweep.same_as.picks(r)]):
            out[sweep] = rows
    return out


def _shown_again_note(sweeps) -> str:
    again = [f"`{s.part}/{s.name}` are the runs of {s.same_as.words()}" for s in sweeps if s.same_as]
    return (f" Rows shown again from another table (the same config and seeds, trained once): {'; '.join(again)}."
            if again else "")


def _starts_at_tuned_shift(sweep: Sweep) -> bool:
    """The tuned recipe, unless the sweep takes the shift out; Appendix D, if the sweep adds it."""
    return (sweep.recipe == "tuned") != (sweep.change == "shift")


def _earlier(sweeps: dict[Sweep, list[dict]], key: str, today) -> dict[str, list]:
    """{sweep name: the values of key in its rows other than today's}, for the sweeps that have such values."""
    found = {s.name: sorted({type(today)(r[key]) for r in rows} - {today}) for s, rows in sweeps.items()}
    return {name: values for name, values in found.items() if values}


def _earlier_recipe_note(sweeps: dict[Sweep, list[dict]]) -> str:
    """Sweeps measured before the tuning's validation rerun moved trainer=tuned's shift say so (read from their rows)."""
    earlier = _earlier(sweeps, "map_bias_init", TUNED_SHIFT)
    if not earlier:
        return ""
    shifts = sorted({s for values in earlier.values() for s in values})
    return (f"\n\n**Measured with the tuned recipe's earlier initial shift ({', '.join(f'{s:g}' for s in shifts)}): "
            f"{', '.join(f'`{name}`' for name in earlier)}; `trainer=tuned` now starts it at {TUNED_SHIFT:g}.** "
            f"To remeasure, delete those sweeps and run `make ablations`.")


def _earlier_epochs_note(sweeps: dict[Sweep, list[dict]]) -> str:
    """Tuned-recipe sweeps trained before the recipe study (issue 25) set today's trainer=tuned say so: their
    epochs (read from their rows) are not today's, and they are no fair match for the rows of today's recipe."""
    earlier = _earlier({s: rows for s, rows in sweeps.items() if s.recipe == "tuned"}, "epochs", TUNED_EPOCHS)
    if not earlier:
        return ""
    epochs = sorted({e for values in earlier.values() for e in values})
    return (f"\n\n**Trained under an earlier `trainer=tuned` ({', '.join(map(str, epochs))} epochs; today's trains "
            f"{TUNED_EPOCHS}, re-seeds empty maps and ends on the least-leak epoch, RECIPE.md): "
            f"{', '.join(f'`{n}`' for n in earlier)}. Set beside rows of today's recipe they differ by two recipes, "
            "not one change.** To remeasure, delete those sweeps and run `make ablations`.")


def recipe_section(root: Path) -> str | None:
    sweeps = _planned(root, "recipe")
    if not sweeps:
        return None
    lines = ["| prior | setting | seeds | every ball tracked, k/n [95 % CI] | slot L2 (px), median [95 % CI] "
             "| how often, against its recipe | how precisely when both track, against its recipe |",
             "|---|---|---|---|---|---|---|"]
    sentences = []
    for prior in ABLATION_PRIORS:
        found = {s: rs for s, rs in sweeps.items() if s.prior == prior}
        shifted = [rs for s, rs in found.items() if (s.recipe, s.change) == ("paper", "shift")]
        shift = float(shifted[0][0]["map_bias_init"]) if shifted else TUNED_SHIFT  # the shift those runs used
        words = {**CHANGE_WORDS, "shift": CHANGE_WORDS["shift"].format(shift=shift)}
        tests = {}  # recipe -> {change: Paired against that recipe}
        for recipe, reference in (("paper", "Appendix D"), ("tuned", "the tuned recipe")):
            cells = {s.change: rs for s, rs in found.items() if s.recipe == recipe}
            if "" not in cells:
                continue
            tests[recipe] = how_often(cells, "")
            often, precise = paired_against(tests[recipe], "", reference), precision_against(cells, "")
            for s, rs in found.items():
                if s.recipe == recipe:
                    lines.append(f"| {prior} | {s.setting} | {_seed_list(r['seed'] for r in rs)} | {rate_cell(rs)} "
                                 f"| {median_cell(rs, 'slot_l2_px')} | {often[s.change]} | {precise[s.change]} |")
        for change in RECIPE_CHANGES:
            alone, without = tests.get("paper", {}).get(change), tests.get("tuned", {}).get(change)
            parts = []
            if alone:
                parts.append(("sufficient on its own" if alone.differs and alone.more else
                              "not shown sufficient on its own") + f" ({alone.counts()})")
            if without:
                parts.append(("necessary in the tuned recipe" if without.differs and not without.more else
                              "not shown necessary in the tuned recipe") + f" ({without.counts()})")
            if parts:
                sentences.append(f"- {prior}: {words[change]} is {' and '.join(parts)}.")
    return ("## Ablations of the recipe (validation video, tuning seeds)\n\nOne change at a time, from Appendix D "
            "(`paper+change`) and from the tuned recipe (`tuned-change`), each against its recipe on the seeds both "
            "ran. How often: exact McNemar on every ball tracked; how precisely: Wilcoxon signed-rank on the slot L2 "
            "of the seeds where both track every ball; each Holm-corrected over one prior's changes to one recipe. "
            "A change is *sufficient* when it makes Appendix D track every ball more often and *necessary* when "
            "taking it out makes the tuned recipe track every ball less often, each by that test."
            + _n_note(sweeps) + _shown_again_note(sweeps) + "\n\n" + "\n".join(lines) + "\n\n"
            + "\n".join(sentences)
            + _earlier_recipe_note({s: rs for s, rs in sweeps.items() if _starts_at_tuned_shift(s)})
            + _earlier_epochs_note(sweeps))


def beyond_section(root: Path) -> str | None:
    sweeps = _planned(root, "beyond")
    if not sweeps:
        return None
    groups = {}
    for rows in sweeps.values():
        for r in rows:
            setting = f"{r['n_balls']} balls, {r.get('override:data.image_size', '256')}² frames"
            groups.setdefault(setting, {}).setdefault(r["prior"], []).append(r)
    tests = {setting: gaussian_against_linear(by_prior["gaussian"], by_prior["linear"])
             for setting, by_prior in groups.items() if by_prior.get("gaussian") and by_prior.get("linear")}
    adjusted = dict(zip(tests, stats.holm([t.p for t in tests.values()])))
    lines = ["| setting | Gaussian seeds | Gaussian: every ball tracked, k/n [95 % CI] "
             "| Gaussian slot L2 (px), median [95 % CI] | linear seeds | linear: every ball tracked, k/n [95 % CI] "
             "| linear slot L2 (px), median [95 % CI] | random-init slot L2 (px), median "
             "| the Gaussian against the linear critic, how often |", "|---|---|---|---|---|---|---|---|---|"]
    for setting, by_prior in groups.items():
        g, lin = by_prior.get("gaussian", []), by_prior.get("linear", [])
        random = float(np.median([r["random_init_slot_l2_px"] for r in g + lin]))
        verdict = tests[setting]._replace(p_holm=adjusted[setting]).words() if setting in tests else \
            "not tested: one critic only"
        lines.append(f"| {setting} | {_seed_list(r['seed'] for r in g) or '—'} | {rate_cell(g) if g else '—'} "
                     f"| {median_cell(g, 'slot_l2_px') if g else '—'} | {_seed_list(r['seed'] for r in lin) or '—'} "
                     f"| {rate_cell(lin) if lin else '—'} | {median_cell(lin, 'slot_l2_px') if lin else '—'} "
                     f"| {random:.2f} | {verdict} |")
    on_spent = [s.name for s, rows in sweeps.items() if {r["seed"] for r in rows} & set(SPENT_SEEDS)]
    spent_note = (f" {', '.join(f'`{n}`' for n in on_spent)}: on seeds {_seed_list(SPENT_SEEDS)}, an earlier "
                  f"report's reporting seeds (spent); `make ablations` runs them on tuning seeds "
                  f"{_seed_list(ABLATION_SEEDS)} once their folders are deleted." if on_spent else "")
    return ("## Beyond the paper's setting (validation video, tuned recipe, no retuning)\n\nThe paper's claim, "
            "the Gaussian recovers the balls and the linear critic does not, *holds* in a setting when the Gaussian "
            "tracks every ball more often than the linear critic: exact McNemar on the seeds both ran (Fisher's "
            "exact test where they share none), Holm-corrected over the settings. Every ball tracked: each ball's "
            f"matched error below {TRACKED_PX:g} px."
            + _n_note({(setting, prior): rows for setting, by_prior in groups.items() for prior, rows in by_prior.items()})
            + spent_note + "\n\n" + "\n".join(lines) + _earlier_recipe_note(sweeps) + _earlier_epochs_note(sweeps))


class Against(NamedTuple):
    """The Gaussian against the linear critic in one setting, on every ball tracked."""
    gaussian: tuple[int, int]  # (k, n) over the seeds the test reads
    linear: tuple[int, int]
    test: str  # which test, in words
    p: float
    p_holm: float = float("nan")

    def words(self) -> str:
        (kg, ng), (kl, nl) = self.gaussian, self.linear
        counts = f"{kg}/{ng} against {kl}/{nl}, {self.test}, p = {self.p:.2g}, Holm {self.p_holm:.2g}"
        if self.p_holm > PROTOCOL.alpha:
            return f"not shown: no difference detectable ({counts})"
        return (f"**holds**: the Gaussian tracks every ball more often ({counts})" if kg / ng > kl / nl else
                f"**reversed**: the linear critic tracks every ball more often ({counts})")


def gaussian_against_linear(gaussian: list[dict], linear: list[dict]) -> Against:
    """Paired on the seeds both critics ran when there are any (exact McNemar); Fisher's exact test otherwise."""
    n, kg, kl, p = _mcnemar_on_shared(gaussian, linear)
    if n:
        return Against((kg, n), (kl, n), "exact McNemar on the shared seeds", p)
    kg, kl = sum(map(every_ball, gaussian)), sum(map(every_ball, linear))
    return Against((kg, len(gaussian)), (kl, len(linear)), "Fisher, no shared seeds",
                   stats.fisher(kg, len(gaussian), kl, len(linear)))


def every_ball(row: dict) -> bool:
    return row["balls_tracked"] == row["n_balls"]


def rate_cell(rows) -> str:
    """k/n seeds with every ball tracked, with its Wilson 95 % interval."""
    n, k = len(rows), sum(map(every_ball, rows))
    low, high = stats.wilson(k, n)
    return f"{k}/{n}, {k / n:.0%} [{low:.0%}, {high:.0%}]"


def median_cell(rows, key: str) -> str:
    """The median of key over rows with its bootstrap 95 % interval."""
    median, low, high = stats.bootstrap_median([r[key] for r in rows])
    return f"{median:.2f} [{low:.2f}, {high:.2f}]"


class Paired(NamedTuple):
    """One cell against the reference on the seeds both ran, by exact McNemar on every ball tracked."""
    n: int  # seeds both ran
    own: int  # of those, the seeds where the cell tracks every ball
    ref: int  # and where the reference does
    p: float
    p_holm: float  # Holm-adjusted over the family

    @property
    def more(self) -> bool:
        return self.own > self.ref

    @property
    def differs(self) -> bool:
        return self.p_holm <= PROTOCOL.alpha

    def counts(self) -> str:
        return f"{self.own}/{self.n} against {self.ref}/{self.n}, Holm p = {self.p_holm:.2g}"


def _mcnemar_on_shared(own_rows: list[dict], ref_rows: list[dict]) -> tuple:
    """(seeds both ran, of those the seeds where own tracks every ball, where ref does, exact McNemar p)."""
    own, ref = ({r["seed"]: every_ball(r) for r in rows} for rows in (own_rows, ref_rows))
    shared = own.keys() & ref.keys()
    only_own, only_ref = sum(own[s] and not ref[s] for s in shared), sum(ref[s] and not own[s] for s in shared)
    return (len(shared), sum(own[s] for s in shared), sum(ref[s] for s in shared),
            stats.mcnemar_exact(only_own, only_ref))


def how_often(cells: dict, reference) -> dict:
    """Each cell but the reference against it: a Paired per cell, Holm-corrected over the cells."""
    keys = [key for key in cells if key != reference]
    found = [_mcnemar_on_shared(cells[key], cells[reference]) for key in keys]
    return {key: Paired(*counts, p_adj) for key, counts, p_adj in zip(keys, found, stats.holm([f[-1] for f in found]))}


def paired_against(tests: dict, reference, words: str) -> dict:
    """how_often's results in words: what the test says, against the reference named by words."""
    out = {reference: "the reference"}
    for key, t in tests.items():
        if not t.differs:
            out[key] = f"no difference detectable at n = {t.n} (p = {t.p:.2g}, Holm {t.p_holm:.2g})"
        else:
            out[key] = f"tracks every ball {'more' if t.more else 'less'} often than {words} (Holm p = {t.p_holm:.2g})"
    return out


def precision_against(cells: dict, reference) -> dict:
    """How precisely, kept apart from how often: each cell's slot L2 against the reference's on the seeds where
    both track every ball, Wilcoxon signed-rank, Holm-corrected over the cells with such seeds."""
    ref = {r["seed"]: r["slot_l2_px"] for r in cells[reference] if every_ball(r)}
    keys = [key for key in cells if key != reference]
    pairs = []
    for key in keys:
        own = {r["seed"]: r["slot_l2_px"] for r in cells[key] if every_ball(r)}
        pairs.append([(own[s], ref[s]) for s in sorted(own.keys() & ref.keys())])
    raw = [stats.wilcoxon_signed_rank(*zip(*both)) if both else float("nan") for both in pairs]
    out = {reference: "the reference"}
    for key, both, p_raw, p_adj in zip(keys, pairs, raw, stats.holm(raw)):
        if not both:
            out[key] = "no seed where both track every ball"
        elif p_adj > PROTOCOL.alpha:
            out[key] = f"no difference detectable at n = {len(both)} (p = {p_raw:.2g}, Holm {p_adj:.2g})"
        else:
            lower = float(np.median([a - b for a, b in both])) < 0
            out[key] = (f"{'more' if lower else 'less'} precise on all {len(both)} seeds both track" if
                        all((a < b) == lower for a, b in both) else f"{'more' if lower else 'less'} precise") + \
                f" (Holm p = {p_adj:.2g})"
    return out


def _n_note(cells: dict) -> str:
    counts = {len({r["seed"] for r in rs}) for rs in cells.values()}  # seeds, not runs: a sweep may hold two values
    small = sorted(n for n in counts if n < MIN_SEEDS_FOR_A_CLAIM)
    return (f" Cells with {', '.join(map(str, small))} seeds are anecdotes: no test at that n separates them."
            if small else "")


def lengthscale_section(root: Path) -> str | None:
    sweeps = _planned(root, "lengthscale")
    rows = [r for rs in sweeps.values() for r in rs]
    if not rows:
        return None
    grid = {}
    for r in rows:
        grid.setdefault((float(r["initial_lengthscale_px"]), str(r["learn_lengthscale"]) == "True"), []).append(r)
    grid = dict(sorted(grid.items()))
    default = (DEFAULT_THETA0_PX, True)
    against = (paired_against(how_often(grid, default), default, f"the default (θ0 = {default[0]:g} px, learned)")
               if default in grid else {})
    precise = precision_against(grid, default) if default in grid else {}
    seeds = sorted({r["seed"] for r in rows})
    lines = ["| θ0 (px) | θ | seeds | every ball tracked (validation), k/n [95 % CI] "
             "| slot L2 (px), median [95 % CI] | final θ (px), median | how often, against the default "
             "| how precisely when both track, against the default |", "|---|---|---|---|---|---|---|---|"]
    for (theta0, learned), rs in grid.items():
        lines.append(f"| {theta0:g} | {'learned' if learned else 'fixed'} | {len(rs)} | {rate_cell(rs)} "
                     f"| {median_cell(rs, 'slot_l2_px')} | {np.median([r['final_lengthscale_px'] for r in rs]):.1f} "
                     f"| {against.get((theta0, learned), '—')} | {precise.get((theta0, learned), '—')} |")
    # Selection, on tuning seeds and the validation video: most seeds with every ball tracked, then the lowest
    # median slot L2.
    best = min(grid, key=lambda key: (-sum(map(every_ball, grid[key])), np.median([r["slot_l2_px"] for r in grid[key]])))
    motion = rows[0]["motion_lengthscale_px"]
    ends = ", ".join(f"{theta0:g} → {np.median([r['final_lengthscale_px'] for r in rs]):.1f}"
                     for (theta0, learned), rs in grid.items() if learned)
    text = (f"Seeds {_seed_list(seeds)} (tuning seeds), each cell scored on the validation video; the test video is "
            f"not read. Every ball tracked: each ball's matched error below {TRACKED_PX:g} px. Where learned θ ends, "
            f"by θ0 (px, median over seeds): {ends}; the simulated motion implies θ = {motion:.1f} px (one step of a "
            f"ball's 2-D move per coordinate: step/√2). Selected on these seeds (most seeds with every ball tracked, "
            f"then the lowest median slot L2): θ0 = {best[0]:g} px, {'learned' if best[1] else 'fixed'}. The "
            f"default's cell is the default recipe on these seeds: the configs and seeds of RECIPE.md's frozen "
            f"default (`leastleak`) Gaussian runs on seeds {_seed_list(seeds)}, trained again here. How often: exact McNemar on the "
            f"shared seeds; how precisely: Wilcoxon signed-rank on the seeds where both track every ball; each "
            f"Holm-corrected over its column." + _n_note(grid))
    picture = "".join(f"\n\n![lengthscale sweep, {s.change} θ, validation video]"
                      f"(ablations/lengthscale/{s.name}/sweep_summary.png)" for s in sweeps)
    return ("## The lengthscale sweep (Gaussian f_θ, tuning seeds, validation video, the default recipe)\n\n"
            + "\n".join(lines) + "\n\n" + text + picture)


def _seed_list(seeds) -> str:
    """10–19 for a run of consecutive seeds, else the seeds (each once)."""
    seeds = sorted(set(seeds))
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def choices_section(root: Path) -> str | None:
    sweeps = _planned(root, "choices")
    if not sweeps:
        return None
    lines = ["| choice the paper leaves open | rpm's choice | alternative | recipe | seeds "
             "| every ball tracked, rpm's choice, k/n [95 % CI] | every ball tracked, alternative, k/n [95 % CI] "
             "| slot L2 (px), alternative, median [95 % CI] | how often, against rpm's choice "
             "| how precisely when both track, against rpm's choice |", "|---|---|---|---|---|---|---|---|---|---|"]
    deciding = {}
    for recipe in ABLATION_RECIPES:
        found = {s.change: rs for s, rs in sweeps.items() if s.recipe == recipe}
        if "" not in found:
            continue
        ours = ("", "")  # rpm's choice: the reference cell
        cells, words = {ours: found[""]}, {}
        for sweep, rows in sweeps.items():
            if sweep.recipe != recipe or not sweep.change:
                continue
            # The alternative is what the sweep overrides besides the recipe, the prior and the runtime keys (and
            # of a row shown again from a wider sweep, only what this sweep itself overrides).
            keys = {o.split("=", 1)[0] for o in sweep.overrides.split()} - {*RUNTIME_KEYS, "trainer", "prior"}
            for r in rows:
                value = " ".join(f"`{k.split(':', 1)[1]}={v}`" for k, v in r.items() if k.startswith("override:")
                                 and k.split(":", 1)[1] in keys)
                cells.setdefault((sweep.change, value), []).append(r)
                words[sweep.change, value] = value or CHOICE_WORDS[sweep.change][2]
        tests = how_often(cells, ours)
        often, precise = paired_against(tests, ours, "rpm's choice"), precision_against(cells, ours)
        deciding[recipe] = [f"{CHOICE_WORDS[key][0]} ({words[key, value]}: {'more' if t.more else 'less'} often, "
                            f"{t.counts()})" for (key, value), t in tests.items() if t.differs]
        for (key, value), rs in cells.items():
            if key:
                what, rpms, _ = CHOICE_WORDS[key]
                seeds = {r["seed"] for r in rs}  # rpm's choice on the same seeds, the ones the test pairs
                lines.append(f"| {what} | {rpms} | {words[key, value]} | {recipe} | {_seed_list(seeds)} "
                             f"| {rate_cell([r for r in cells[ours] if r['seed'] in seeds])} | {rate_cell(rs)} "
                             f"| {median_cell(rs, 'slot_l2_px')} "
                             f"| {often[key, value]} | {precise[key, value]} |")
    summary = "\n".join(f"- Under the {'tuned recipe' if recipe == 'tuned' else 'Appendix D recipe'}, "
                        + (f"the choices that change how often every ball is tracked: {'; '.join(found)}."
                           if found else "no choice here changes detectably how often every ball is tracked.")
                        for recipe, found in deciding.items())
    return ("## What the paper leaves open, measured (validation video, tuning seeds, Gaussian f_θ)\n\n"
            "Each alternative changes one choice from rpm's and leaves the rest of the recipe as it is; it is "
            "compared with rpm's choice on the seeds both ran. How often: exact McNemar on every ball tracked; how "
            "precisely: Wilcoxon signed-rank on the slot L2 of the seeds where both track every ball; each "
            "Holm-corrected over one recipe's alternatives."
            + _n_note(sweeps) + _shown_again_note(sweeps) + "\n\n" + "\n".join(lines) + "\n\n" + summary
            + _earlier_epochs_note(sweeps))


def ablation_sections(root: Path) -> list[str]:
    sections = [f(root) for f in (recipe_section, beyond_section, lengthscale_section, choices_section)]
    return [s for s in sections if s]
