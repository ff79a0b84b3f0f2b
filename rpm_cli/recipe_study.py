"""The default recipe's robustness study (configs/recipe_protocol.yaml, issue 25), defined once: runs live in
`<root>/recipe/<candidate>/<prior>/seed-<N>`, confirmations in `<root>/recipe_confirmation/<candidate>/<prior>/
seed-<N>`; scripts/recipe_study.sh asks this module for its sweeps (`python -m rpm_cli.recipe_study ROOT
CANDIDATE`) and the report reads the runs back through it.
"""
import argparse
import json
import shutil
from pathlib import Path

from omegaconf import OmegaConf

from rpm_cli import CONFIG_DIR
from rpm_cli.layout import EVALUATION, METRICS

RECIPE_PROTOCOL = P = OmegaConf.load(CONFIG_DIR / "recipe_protocol.yaml")
RECIPE_SEEDS = tuple(range(RECIPE_PROTOCOL.seeds.first, RECIPE_PROTOCOL.seeds.last + 1))
# Each frozen default's fresh seeds, in the order the defaults were frozen; the last is today's trainer=tuned.
CONFIRMATIONS = {recipe: tuple(range(seeds.first, seeds.last + 1)) for recipe, seeds in P.confirmations.items()}
LATEST = list(CONFIRMATIONS)[-1]
CHECK_SEEDS = tuple(RECIPE_PROTOCOL.check_seeds)
# The baseline is the default recipe as it was before any remedy, whatever trainer=tuned holds later.
BASELINE_OVERRIDES = "trainer.reseed_below=0 trainer.epochs=6 trainer.keep_from=0"
# The arithmetic every run of the study was trained with (before rpm had its CPU kernels): re-runs give them back.
ARITHMETIC = "encoder.kernels=torch"
# Once a recipe is frozen in trainer=tuned: the default as committed, on its fresh reporting seeds.
CONFIRMATION = "confirmation"


def study_priors() -> tuple[str, ...]:
    return (*RECIPE_PROTOCOL.selection_priors, *RECIPE_PROTOCOL.reported_priors)


def candidates() -> tuple[str, ...]:
    return (RECIPE_PROTOCOL.baseline, *RECIPE_PROTOCOL.candidates)


def confirmation_dir(root, recipe: str, prior: str) -> Path:
    return Path(root) / "recipe_confirmation" / recipe / prior


def recipe_dir(root, candidate: str, prior: str) -> Path:
    return Path(root) / "recipe" / candidate / prior


def overrides(candidate: str) -> str:
    if candidate == RECIPE_PROTOCOL.baseline:
        return BASELINE_OVERRIDES
    return RECIPE_PROTOCOL.candidates[candidate].overrides


def against(candidate: str) -> str:
    """The recipe a candidate is compared with: the baseline, or the recipe it was built on."""
    return RECIPE_PROTOCOL.candidates[candidate].get("against", RECIPE_PROTOCOL.baseline)


def extend_finished_runs(root, candidate: str, prior: str) -> None:
    """A candidate that `extends` another starts from copies of that recipe's evaluated runs: its sweep then
    finds a run in each dir and extends it (trainer.epochs, keep_from) instead of training it again, with the
    same numbers (tests/test_map_health.py). A seed whose run is missing trains from the start."""
    base = RECIPE_PROTOCOL.candidates[candidate].get("extends")
    if base is None:
        return
    for seed in RECIPE_SEEDS:
        source, target = (recipe_dir(root, c, prior) / f"seed-{seed}" for c in (base, candidate))
        if not target.exists() and fired(source) is not None:
            partial = target.with_name(target.name + ".copying")  # a killed copy is never taken for a run
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(source, partial)
            (partial / EVALUATION).unlink()
            partial.rename(target)


def fired(run_dir) -> bool | None:
    """Whether a conditional candidate's run re-seeded a map (None until it is evaluated)."""
    path = Path(run_dir) / METRICS
    if not (Path(run_dir) / EVALUATION).exists():  # unfinished, killed or diverged: not known yet
        return None
    return any("reseeded_maps" in json.loads(line) for line in path.read_text().splitlines() if line)


def baseline_seeds(root, prior: str) -> list[int]:
    """The seeds the baseline must run itself: those where a conditional candidate that ran on this prior fired
    or has not run yet (elsewhere its run is the candidate's, bit for bit); every seed when none has run."""
    ran = {c: {s: fired(recipe_dir(root, c, prior) / f"seed-{s}") for s in RECIPE_SEEDS} for c in P.conditional}
    ran = {c: seeds for c, seeds in ran.items() if any(f is not None for f in seeds.values())}
    if not ran:
        return list(RECIPE_SEEDS)
    return sorted({s for seeds in ran.values() for s, f in seeds.items() if f is not False})


def sweeps(root, candidate: str, priors) -> list[str]:
    """One line per prior with something to run: prior, comma-separated seeds, the folder of its run dirs,
    the candidate's overrides."""
    if candidate == CONFIRMATION:  # the target prior only, under the default recipe as committed, on the last
        seeds = CONFIRMATIONS[LATEST]  # frozen recipe's seeds; two halves, so that two jobs share the work
        return [f"{P.target.prior} {','.join(map(str, part))} {confirmation_dir(root, LATEST, P.target.prior)} "
                f"{ARITHMETIC}" for part in (seeds[:len(seeds) // 2], seeds[len(seeds) // 2:])]
    lines = []
    for prior in priors:
        seeds = baseline_seeds(root, prior) if candidate == RECIPE_PROTOCOL.baseline else list(RECIPE_SEEDS)
        if seeds:
            lines.append(f"{prior} {','.join(map(str, seeds))} {recipe_dir(root, candidate, prior)} "
                         f"{overrides(candidate)} {ARITHMETIC}")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rpm_cli.recipe_study",
                                     description="print the sweeps of scripts/recipe_study.sh, one per prior")
    parser.add_argument("root")
    parser.add_argument("candidate", choices=(*candidates(), CONFIRMATION))
    parser.add_argument("--priors", default="", help=f"default: {' '.join(study_priors())}")
    args = parser.parse_args(argv)
    priors = args.priors.split() or list(study_priors())
    unknown = [p for p in priors if p not in study_priors()]
    if unknown:
        parser.error(f"PRIORS must be among: {' '.join(study_priors())} (got {unknown[0]})")
    if args.candidate in RECIPE_PROTOCOL.candidates:
        for prior in priors:
            extend_finished_runs(args.root, args.candidate, prior)
    for line in sweeps(args.root, args.candidate, priors):
        print(line)


if __name__ == "__main__":
    main()
