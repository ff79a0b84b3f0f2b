"""The layout of `make reproduce`, defined once: `<root>/<preset>/<method>/seed-<N>`.

A preset is a recipe (`tuned`, `paper`); a method is a prior's name (`prior=<name>`) or `supervised`
(`objective=supervised`). scripts/reproduce.sh asks this module for its plan, the report and Fig. 1 read
runs back through it.
"""
import argparse
from pathlib import Path

from omegaconf import OmegaConf

from rpm_cli import CONFIG_DIR

PRESETS = {"tuned": "trainer=tuned", "paper": "experiment=paper"}
FIG1_METHODS = ("supervised", "gaussian", "linear")
REPORTING_SEEDS = (100, 101, 102)  # never used by tuning (scripts/tune.sh uses TUNING_SEEDS)
TUNING_SEEDS = (0, 10, 11, 12, 13, 14, 15)
# The tuned recipe's initial shift of the last BatchNorm, read from its config: the ablations vary it, the report names it.
TUNED_SHIFT = float(OmegaConf.load(CONFIG_DIR / "trainer" / "tuned.yaml").encoder.map_bias_init)


def prior_names() -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / "prior").glob("*.yaml"))


def all_methods() -> tuple[str, ...]:
    """Fig. 1's three methods first, then every other prior in configs/prior/."""
    return FIG1_METHODS + tuple(p for p in prior_names() if p not in FIG1_METHODS)


def method_override(method: str) -> str:
    return "objective=supervised" if method == "supervised" else f"prior={method}"


def run_dir(root, preset: str, method: str, seed: int) -> Path:
    return Path(root) / preset / method / f"seed-{seed}"


def parse_run_dir(path) -> tuple[str, str, int]:
    """(preset, method, seed) of a run dir in this layout."""
    path = Path(path)
    return path.parent.parent.name, path.parent.name, int(path.name.removeprefix("seed-"))


def find_reproduction_runs(root, preset: str, methods=None) -> dict[str, list[Path]]:
    """{method: [run dirs holding a checkpoint]} under root/preset, in seed order."""
    base = Path(root) / preset
    if methods is None:
        methods = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    found = {}
    for method in methods:
        dirs = sorted((p.parent for p in (base / method).glob("seed-*/checkpoint.pt")),
                      key=lambda d: parse_run_dir(d)[2])
        if dirs:
            found[method] = dirs
    return found


def plan(root, presets, methods, seeds) -> list[str]:
    """One line per run: preset, method, seed, run dir and the overrides that train it."""
    return [f"{preset} {method} {seed} {run_dir(root, preset, method, seed)} {PRESETS[preset]} {method_override(method)}"
            for preset in presets for method in methods for seed in seeds]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="print the runs of `make reproduce`, one per line")
    parser.add_argument("root")
    parser.add_argument("--presets", default="tuned paper")
    parser.add_argument("--methods", default=None, help="default: every method")
    parser.add_argument("--seeds", default=" ".join(map(str, REPORTING_SEEDS)))
    args = parser.parse_args(argv)
    presets = args.presets.split()
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        parser.error(f"PRESETS must be among: {', '.join(PRESETS)} (got {unknown[0]})")
    methods = args.methods.split() if args.methods else list(all_methods())
    for line in plan(args.root, presets, methods, [int(s) for s in args.seeds.split()]):
        print(line)


if __name__ == "__main__":
    main()
