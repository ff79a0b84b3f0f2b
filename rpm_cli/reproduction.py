"""The layout of `make reproduce`, defined once: `<root>/<preset>/<method>/seed-<N>`; and the sweeps of
`make ablations`, defined once: `<out>/<part>/<name>` and the overrides that run each.

A preset is a recipe (`tuned`, `paper`); a method is a prior's name (`prior=<name>`) or `supervised`
(`objective=supervised`). scripts/reproduce.sh and scripts/ablations.sh ask this module for their plans
(`python -m rpm_cli.reproduction ROOT ...`, `python -m rpm_cli.reproduction ablations OUT ...`); the report
and Fig. 1 read runs and sweeps back through it.
"""
import argparse
import sys
from pathlib import Path
from typing import NamedTuple

from omegaconf import OmegaConf

from rpm_cli import CONFIG_DIR

PRESETS = {"tuned": "trainer=tuned", "paper": "experiment=paper"}
FIG1_METHODS = ("supervised", "gaussian", "linear")
# Seed roles, fixed before any run by the pre-registration (configs/protocol.yaml); tests/test_protocol.py
# checks that they are disjoint and keep clear of the seeds reserved for independent checks.
PROTOCOL = OmegaConf.load(CONFIG_DIR / "protocol.yaml")


def _seed_range(role) -> tuple[int, ...]:
    return tuple(range(role.first, role.last + 1))


REPORTING_SEEDS = _seed_range(PROTOCOL.seeds.reporting)  # only reported, never selected on
# The registered study's recipes: each preset's overrides as they trained its runs (PRESETS are today's, which the
# ablations on tuning seeds use; trainer=tuned has changed since the study ran, so its changed keys are pinned).
STUDY_RECIPES = dict(PROTOCOL.recipes)


def study_pins(preset: str = "tuned") -> dict:
    """The trainer keys the registered study's recipe sets beyond its preset (configs/protocol.yaml `recipes`), as
    {key: value}: the keys `trainer=tuned` changed after the study ran, at their values then."""
    pinned = OmegaConf.from_dotlist(STUDY_RECIPES[preset].split()[1:])  # the first word names the preset
    return OmegaConf.to_container(pinned).get("trainer", {})


# Everything that selects; seed 0 too, on which scripts/tune.sh's first sweeps ran.
TUNING_SEEDS = (0, *_seed_range(PROTOCOL.seeds.tuning))
SPENT_SEEDS = tuple(PROTOCOL.seeds.spent)  # earlier reports' reporting seeds: they saw two recipes
SPEED_SEEDS = _seed_range(PROTOCOL.seeds.speed)  # timings only: `make bench`, `make seed-study`
# Fewer seeds per arm or cell than this are an anecdote, said beside each table: no test at that n separates
# arms that differ by less than everything. `make reproduce` with fewer is a quick look (scripts/reproduce.sh).
MIN_SEEDS_FOR_A_CLAIM = 10
# The tuned recipe's initial shift of the last BatchNorm, read from its config: the ablations vary it, the report names it.
TUNED = OmegaConf.load(CONFIG_DIR / "trainer" / "tuned.yaml")
TUNED_SHIFT = float(TUNED.encoder.map_bias_init)
TUNED_EPOCHS = int(TUNED.trainer.epochs)  # 6 before the recipe study of issue 25: the report marks such runs


# The second world (data=clica): every conditional against the priors with a predicted outcome, on the reporting
# seeds; `<root>/clica/<conditional>/<prior>/seed-<N>` (scripts/clica_grid.sh).
CLICA_CONDITIONALS = ("laplace", "normal")
CLICA_PRIORS = ("laplace", "gaussian", "linear")


def clica_dir(root, conditional: str, prior: str) -> Path:
    return Path(root) / "clica" / conditional / prior


# objective=rpm against InfoNCE (configs/rpm_protocol.yaml, scripts/rpm_study.sh):
# `<root>/rpm/<posterior>/<prior>/seed-<N>`, beside the InfoNCE runs of `<root>/tuned/<prior>/`.
RPM_PROTOCOL = OmegaConf.load(CONFIG_DIR / "rpm_protocol.yaml")


def rpm_dir(root, posterior: str, prior: str) -> Path:
    return Path(root) / "rpm" / posterior / prior


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


def preset_seeds(preset: str, seeds) -> list[int]:
    """The seeds a preset runs on: all of them, except Appendix D's 30-epoch runs on the registered first few."""
    return list(seeds)[:PROTOCOL.appendix_d.n_seeds] if preset == PROTOCOL.appendix_d.preset else list(seeds)


def plan(root, presets, methods, seeds) -> list[str]:
    """One line per run: preset, method, seed, run dir and the overrides that train it."""
    return [f"{preset} {method} {seed} {run_dir(root, preset, method, seed)} {STUDY_RECIPES[preset]} {method_override(method)}"
            for preset in presets for method in methods for seed in preset_seeds(preset, seeds)]


def method_sweeps(root, presets, methods, seeds, chunk: int | None = None) -> list[str]:
    """One line per preset and method (per `chunk` of its seeds, if given): preset, method, the seeds
    (comma-separated), the dir holding their run dirs, and the overrides; scripts/reproduce.sh trains each line
    as one `rpm train -m` sweep. Sweeps of one seed spread a few runs evenly over the jobs."""
    lines = []
    for preset in presets:
        for method in methods:
            own = preset_seeds(preset, seeds)
            size = chunk or len(own)
            lines += [f"{preset} {method} {','.join(map(str, own[i:i + size]))} "
                      f"{run_dir(root, preset, method, 0).parent} {STUDY_RECIPES[preset]} {method_override(method)}"
                      for i in range(0, len(own), size)]
    return lines


# `make seed-study` (scripts/seed_study.sh): what a 25-seed study of every method costs at today's default recipe,
# `<root>/default/<method>/seed-<N>` on the speed seeds (timing only: their scores are never reported).
SEED_STUDY_PRESET = "default"


def lane_sweeps(root, methods, seeds, jobs: int) -> list[str]:
    """Every method on every seed, in `jobs` lanes of nearly equal run counts, as few `rpm train -m` sweeps as can
    be (each sweep pays start-up once): the priors of a lane in one sweep over its share of the seeds, and the
    supervised baseline's seeds dealt to even the lanes up. One line per sweep: `lane label seeds(comma-separated)
    sweep-dir sub-dir overrides`, with run dirs `<root>/default/<method>/seed-<N>` (the layout of run_dir)."""
    seeds, priors = list(seeds), [m for m in methods if m != "supervised"]
    shares = [seeds[lane::jobs] for lane in range(jobs)]
    load = [len(priors) * len(share) for share in shares]
    supervised = [[] for _ in range(jobs)]
    for seed in seeds if "supervised" in methods else []:  # each to the lane with the fewest runs so far
        lane = load.index(min(load))
        supervised[lane].append(seed)
        load[lane] += 1
    base = Path(root) / SEED_STUDY_PRESET
    lines = []
    for lane in range(jobs):
        if priors and shares[lane]:
            lines.append(f"{lane} priors-{lane} {','.join(map(str, shares[lane]))} {base} ${{prior.name}}/seed-${{seed}} "
                         f"prior={','.join(priors)}")
        if supervised[lane]:
            lines.append(f"{lane} supervised-{lane} {','.join(map(str, supervised[lane]))} {base / 'supervised'} "
                         f"seed-${{seed}} {method_override('supervised')}")
    return lines


# `make ablations`: every part on tuning seeds, read on the validation video (issue 24: 10 seeds per cell, as
# every committed summary has since 2026-12-02); the report gives each cell's n and seeds, and a part is re-run
# by deleting its folder.
ABLATION_PARTS = ("recipe", "beyond", "lengthscale", "choices")  # the order they run in by default
ABLATION_PRIORS = ("gaussian", "linear")  # the recipe and beyond parts' priors by default
ABLATION_RECIPES = ("tuned", "paper")  # the choices part's recipes by default
ABLATION_SEEDS = TUNING_SEEDS[1:11]  # 10-19
# The tuned recipe's changes to Appendix D, each as the overrides that add it to `paper` (sweep `paper+<change>`)
# and that take it out of `tuned` (sweep `tuned-<change>`).
RECIPE_CHANGES = {
    "adam": {"paper": "trainer.optimizer=adam trainer.lr=0.02", "tuned": "trainer.optimizer=sgd trainer.lr=0.005"},
    "shift": {"paper": f"encoder.map_bias_init={TUNED_SHIFT}", "tuned": "encoder.map_bias_init=0"},
    "restarts": {"paper": "trainer.restarts=5 trainer.restart_epochs=2", "tuned": "trainer.restarts=1"},
}
CHANGE_SIGN = {"paper": "+", "tuned": "-"}


def open_choices(recipe: str) -> dict[str, str]:
    """What the paper leaves open, by name: the overrides of the alternative to rpm's choice under this recipe."""
    return {"units": "encoder.latent_units=pixels,signed", "batchnorm": "trainer.batchnorm_batch=separate",
            "theta0": "prior.lengthscale=8", "sum": "trainer.loss_reduction=sum",
            "shift": f"encoder.map_bias_init={TUNED_SHIFT if recipe == 'paper' else 0}",  # the other recipe's
            "background": "data.background=white", "antialias": "data.antialias=false"}


class Sweep(NamedTuple):
    """One Hydra multirun of `make ablations`, in <out>/<part>/<name>."""
    part: str
    name: str
    setting: str  # its name within its prior (recipe, beyond) or recipe (choices): `paper+shift`, `units`, ...
    prior: str
    recipe: str  # tuned or paper; in the recipe part, the recipe a change is made to
    change: str  # a RECIPE_CHANGES or open_choices name, learned/fixed θ (lengthscale), or "" for none
    overrides: str
    same_as: "SameRuns | None" = None  # another sweep trains this one's config on these seeds


class SameRuns(NamedTuple):
    """Where the runs of a sweep that another part already trains are: that sweep (part, name), and in a sweep
    over several values the one that is this sweep's (an override key and its value)."""
    part: str
    name: str
    key: str = ""
    value: str = ""

    def picks(self, row: dict) -> bool:
        return not self.key or str(row.get(f"override:{self.key}")) == self.value

    def words(self) -> str:
        return f"`{self.part}/{self.name}`" + (f" at `{self.key}={self.value}`" if self.key else "")


# Sweeps whose config and seeds another part's sweep trains (tests/test_ablation_plan.py composes both and
# checks they are the same config): the script trains them once, the report shows them once and says where.
SAME_RUNS = {
    ("recipe", "gaussian-tuned"): SameRuns("lengthscale", "true", "prior.lengthscale", "32"),
    ("choices", "tuned-default"): SameRuns("lengthscale", "true", "prior.lengthscale", "32"),
    ("choices", "tuned-theta0"): SameRuns("lengthscale", "true", "prior.lengthscale", "8"),
    ("choices", "tuned-shift"): SameRuns("recipe", "gaussian-tuned-shift"),
    ("choices", "paper-default"): SameRuns("recipe", "gaussian-paper"),
    ("choices", "paper-shift"): SameRuns("recipe", "gaussian-paper+shift"),
}


def ablation_plan(parts=ABLATION_PARTS, recipes=ABLATION_RECIPES, priors=ABLATION_PRIORS) -> list[Sweep]:
    """The sweeps of `make ablations`, in the order they run."""
    tuning = f"seed={','.join(map(str, ABLATION_SEEDS))}"
    plan = []
    for part in parts:
        if part == "recipe":  # Appendix D plus each change alone; the tuned recipe minus each change
            for prior in priors:
                tail = f"prior={prior} {tuning}"
                for recipe in ("paper", "tuned"):
                    plan.append(Sweep(part, f"{prior}-{recipe}", recipe, prior, recipe, "",
                                      f"{PRESETS[recipe]} {tail}"))
                    for change, overrides in RECIPE_CHANGES.items():
                        setting = f"{recipe}{CHANGE_SIGN[recipe]}{change}"
                        plan.append(Sweep(part, f"{prior}-{setting}", setting, prior, recipe, change,
                                          f"{PRESETS[recipe]} {overrides[recipe]} {tail}"))
        elif part == "beyond":  # other numbers of balls, and 128² frames with 16-px balls: no retuning
            for prior in priors:
                for setting, overrides in (("balls", "data.n_balls=2,4,5"),
                                           ("small", "data.image_size=128 data.ball_diameter=16")):
                    plan.append(Sweep(part, f"{prior}-{setting}", setting, prior, "tuned", "",
                                      f"{overrides} prior={prior} {tuning}"))
        elif part == "lengthscale":  # θ0 in px, learned or fixed: the README's sweep, run for real
            for learn in ("true", "false"):
                plan.append(Sweep(part, learn, learn, "gaussian", "tuned", "learned" if learn == "true" else "fixed",
                                  f"prior=gaussian prior.lengthscale=2,4,8,16,32,64 prior.learn_lengthscale={learn} "
                                  f"{tuning}"))
        elif part == "choices":  # rpm's choice vs an alternative, Gaussian f_θ
            for recipe in recipes:
                base = f"trainer={recipe} prior=gaussian {tuning}"
                plan.append(Sweep(part, f"{recipe}-default", "default", "gaussian", recipe, "", base))
                plan += [Sweep(part, f"{recipe}-{choice}", choice, "gaussian", recipe, choice, f"{overrides} {base}")
                         for choice, overrides in open_choices(recipe).items()]
        else:
            raise ValueError(f"unknown part {part!r} (allowed: {' '.join(ABLATION_PARTS)})")
    return [s._replace(same_as=SAME_RUNS.get((s.part, s.name))) for s in plan]


def sweeps_to_train(plan: list[Sweep]) -> list[Sweep]:
    """The plan less the sweeps whose runs another sweep of this plan trains."""
    names = {(s.part, s.name) for s in plan}
    return [s for s in plan if not (s.same_as and (s.same_as.part, s.same_as.name) in names)]


def ablations_main(argv) -> None:
    parser = argparse.ArgumentParser(prog="python -m rpm_cli.reproduction ablations",
                                     description="print the sweeps of `make ablations`, one per line: "
                                                 "part, name, folder, overrides")
    parser.add_argument("out")
    # Empty means the default, as the script's PARTS, RECIPES and PRIORS do.
    parser.add_argument("--parts", default="", help=f"default: {' '.join(ABLATION_PARTS)}")
    parser.add_argument("--recipes", default="", help=f"default: {' '.join(ABLATION_RECIPES)}")
    parser.add_argument("--priors", default="", help=f"default: {' '.join(ABLATION_PRIORS)}")
    args = parser.parse_args(argv)
    chosen = {}
    for key, allowed, default in (("parts", ABLATION_PARTS, ABLATION_PARTS),
                                  ("recipes", tuple(PRESETS), ABLATION_RECIPES),
                                  ("priors", tuple(prior_names()), ABLATION_PRIORS)):
        chosen[key] = getattr(args, key).split() or list(default)
        unknown = [v for v in chosen[key] if v not in allowed]
        if unknown:
            parser.error(f"{key.upper()} must be among: {' '.join(allowed)} (got {unknown[0]})")
    for s in sweeps_to_train(ablation_plan(**chosen)):
        print(f"{s.part} {s.name} {Path(args.out) / s.part / s.name} {s.overrides}")


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ablations"]:  # so a reproduction root named `ablations` is written ./ablations
        return ablations_main(argv[1:])
    parser = argparse.ArgumentParser(description="print the runs of `make reproduce`, one per line")
    parser.add_argument("root")
    parser.add_argument("--presets", default="tuned paper")
    parser.add_argument("--methods", default=None, help="default: every method")
    parser.add_argument("--seeds", default=" ".join(map(str, REPORTING_SEEDS)))
    parser.add_argument("--by-method", action="store_true", help="one line per preset and method (a sweep)")
    parser.add_argument("--chunk", type=int, default=None, help="with --by-method: at most this many seeds a line")
    parser.add_argument("--lanes", type=int, default=None, help="`make seed-study`'s plan for this many lanes")
    args = parser.parse_args(argv)
    if args.lanes:  # timing only: the speed seeds, whose scores are never reported
        methods = args.methods.split() if args.methods else list(all_methods())
        seeds = [int(s) for s in args.seeds.split()]
        if not seeds or any(s not in SPEED_SEEDS for s in seeds):
            parser.error(f"SEEDS for the seed study must be speed seeds, {SPEED_SEEDS[0]}-{SPEED_SEEDS[-1]} "
                         f"(configs/protocol.yaml), or a count up to {len(SPEED_SEEDS)} (got {args.seeds})")
        print("\n".join(lane_sweeps(args.root, methods, seeds, args.lanes)))
        return
    presets = args.presets.split()
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        parser.error(f"PRESETS must be among: {', '.join(PRESETS)} (got {unknown[0]})")
    methods = args.methods.split() if args.methods else list(all_methods())
    seeds = [int(s) for s in args.seeds.split()]
    lines = (method_sweeps(args.root, presets, methods, seeds, args.chunk) if args.by_method
             else plan(args.root, presets, methods, seeds))
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
