"""The default recipe's robustness study (configs/recipe_protocol.yaml, issue 25), defined once: runs live in
`<root>/recipe/<candidate>/<prior>/seed-<N>`; scripts/recipe_study.sh asks this module for its sweeps
(`python -m rpm_cli.recipe_study ROOT CANDIDATE`) and the report reads the runs back through it.
"""
import argparse
import json
from pathlib import Path

from omegaconf import OmegaConf

from rpm_cli import CONFIG_DIR
from rpm_cli.layout import EVALUATION, METRICS

RECIPE_PROTOCOL = P = OmegaConf.load(CONFIG_DIR / "recipe_protocol.yaml")
RECIPE_SEEDS = tuple(range(RECIPE_PROTOCOL.seeds.first, RECIPE_PROTOCOL.seeds.last + 1))
CONFIRMATION_SEEDS = tuple(range(RECIPE_PROTOCOL.confirmation_seeds.first,
                                 RECIPE_PROTOCOL.confirmation_seeds.last + 1))
CHECK_SEEDS = tuple(RECIPE_PROTOCOL.check_seeds)
# The baseline is the default recipe as it was before any remedy, whatever trainer=tuned holds later.
BASELINE_OVERRIDES = "trainer.reseed_below=0"
# Once the recipe is frozen in trainer=tuned: the default as committed, on the fresh reporting seeds.
CONFIRMATION = "confirmation"


def study_priors() -> tuple[str, ...]:
    return (*RECIPE_PROTOCOL.selection_priors, *RECIPE_PROTOCOL.reported_priors)


def candidates() -> tuple[str, ...]:
    return (RECIPE_PROTOCOL.baseline, *RECIPE_PROTOCOL.candidates)


def confirmation_dir(root, prior: str) -> Path:
    return Path(root) / "recipe_confirmation" / prior


def recipe_dir(root, candidate: str, prior: str) -> Path:
    return Path(root) / "recipe" / candidate / prior


def overrides(candidate: str) -> str:
    if candidate == RECIPE_PROTOCOL.baseline:
        return BASELINE_OVERRIDES
    return RECIPE_PROTOCOL.candidates[candidate].overrides


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
    if candidate == CONFIRMATION:  # the target prior only, under the default recipe as committed; two halves,
        half = len(CONFIRMATION_SEEDS) // 2  # so that two jobs share the work
        return [f"{P.target.prior} {','.join(map(str, seeds))} {confirmation_dir(root, P.target.prior)}"
                for seeds in (CONFIRMATION_SEEDS[:half], CONFIRMATION_SEEDS[half:])]
    lines = []
    for prior in priors:
        seeds = baseline_seeds(root, prior) if candidate == RECIPE_PROTOCOL.baseline else list(RECIPE_SEEDS)
        if seeds:
            lines.append(f"{prior} {','.join(map(str, seeds))} {recipe_dir(root, candidate, prior)} "
                         f"{overrides(candidate)}")
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
    for line in sweeps(args.root, args.candidate, priors):
        print(line)


if __name__ == "__main__":
    main()
