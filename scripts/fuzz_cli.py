"""A fuzz campaign through the real `rpm` command line: drawn commands must end well.

Each drawn command line (train, evaluate, figures, theory, report; known and unknown keys, odd values and
paths) runs as a user would run it, in a fresh working dir. It passes when it exits 0, or 2 / 3 with exactly
one line `error: ...` on stderr, and never prints a traceback or hits the time limit. The draw is seeded, so
a campaign can be repeated exactly; a failing command is printed whole, to be rerun by hand.

    python scripts/fuzz_cli.py --commands 500 --jobs 2 --seed 20261130 --out fuzz.json   (`make fuzz`)
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from rpm_cli.config import leaf_keys  # noqa: E402
from tests.helpers import TINY, compose_cfg  # noqa: E402  (the suite's tiny config: accepted runs stay fast)

VALUES = ["-1", "0", "1", "2", "3", "7", "1.5", "0.001", "1e9", "1e-12", "nan", "inf", "-inf", "abc", "''",
          "' '", "[1,2]", "[]", "{a:1}", "null", "true", "false", "100000", "4294967296", "${seed}",
          "${nosuch.key}", "ü", "a=b", "\\", "/tmp", "/proc/x", "%", "0x10", "1_000"]
PATH_VALUES = ["/nonexistent/run", "/proc", "/dev/null", ".", "''", "null", "outputs", "{good_run}",
               "{bad_checkpoint}", "{text_file}", "{empty_dir}", "{good_run}/checkpoint.pt", "~", "{unfinished_run}"]


def known_keys(config_name: str) -> list[str]:
    cfg = compose_cfg(config_name=config_name) if config_name == "train" else compose_plain(config_name)
    return sorted(k for k in leaf_keys(cfg) if not k.startswith("hydra"))


def compose_plain(config_name: str):
    from hydra import compose, initialize_config_dir

    from rpm_cli import CONFIG_DIR
    from rpm_cli.resolvers import register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=config_name)


def fixtures(root: Path) -> dict:
    """Paths the draws point at: a finished tiny run, an unfinished one, a random-bytes checkpoint, ..."""
    good = root / "good_run"
    subprocess.run(["rpm", "train", *TINY, "trainer.epochs=1", f"hydra.run.dir={good}",
                    f"data.cache_dir={root / 'cache'}"], check=True, capture_output=True, cwd=root)
    unfinished = root / "unfinished_run"
    subprocess.run(["cp", "-r", str(good), str(unfinished)], check=True)
    subprocess.run([sys.executable, "-c", "import sys, torch; p = sys.argv[1]; s = torch.load(p, weights_only=True);"
                    "s['finished'] = False; torch.save(s, p)", str(unfinished / "checkpoint.pt")], check=True)
    bad = root / "bad_checkpoint"
    bad.mkdir()
    (bad / "checkpoint.pt").write_bytes(random.Random(0).randbytes(4096))
    (root / "text_file").write_text("not a run\n")
    (root / "empty_dir").mkdir()
    return {"good_run": good, "unfinished_run": unfinished, "bad_checkpoint": bad,
            "text_file": root / "text_file", "empty_dir": root / "empty_dir"}


def fill(value: str, paths: dict) -> str:
    for name, path in paths.items():
        value = value.replace("{" + name + "}", str(path))
    return value


def draw(rng: random.Random, keys: dict, paths: dict) -> list[str]:
    command = rng.choice(["train", "train", "train", "evaluate", "figures", "theory", "report"])
    if command == "report":
        return ["report", *[fill(rng.choice(PATH_VALUES), paths) for _ in range(rng.choice([0, 1, 1, 2]))]]
    args = [command]
    if command == "train":
        args += [*TINY, "trainer.epochs=1"]
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        if roll < 0.6:
            key = rng.choice(keys[command])
        elif roll < 0.75:  # a key that does not exist, or a near miss of one that does
            key = rng.choice(keys[command]) + rng.choice(["x", "s", ".extra", ""]) + rng.choice(["", "_"])
        else:
            key = rng.choice(["run_dir", "sweep_dir", "resume", "gaussian_run", "data.cache_dir", "nosuch"])
        value = fill(rng.choice(PATH_VALUES if "dir" in key or "run" in key or "resume" in key else VALUES), paths)
        prefix = rng.choice(["", "", "", "+", "++", "~"])
        args.append(f"{prefix}{key}" if prefix == "~" and rng.random() < 0.5 else f"{prefix}{key}={value}")
    if rng.random() < 0.1:
        args.append(rng.choice(["-m", "--cfg", "--cfg job", "--info", "--help", "-c"]).split()[0])
    return args


def run_one(args: list[str], timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="rpm-fuzz-") as cwd:
        started = time.perf_counter()
        try:
            proc = subprocess.run(["rpm", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
        except subprocess.TimeoutExpired:
            return {"args": args, "rc": None, "seconds": timeout, "problem": f"no answer in {timeout:g} s"}
    seconds, err = time.perf_counter() - started, proc.stderr.strip()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    problem = None
    if "Traceback" in proc.stderr:
        problem = "traceback"
    elif proc.returncode not in (0, 2, 3):
        problem = f"exit code {proc.returncode}"
    elif proc.returncode and not (len(lines) == 1 and lines[0].startswith("error: ")):
        problem = f"{len(lines)} lines on stderr for exit {proc.returncode}"
    return {"args": args, "rc": proc.returncode, "seconds": round(seconds, 2), "problem": problem,
            "stderr_tail": lines[-3:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--out", type=Path, default=None, help="write every result here (JSON)")
    opts = parser.parse_args()
    rng = random.Random(opts.seed)
    keys = {name: known_keys(name) for name in ("train", "evaluate", "figures", "theory")}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rpm-fuzz-fixtures-") as root:
        paths = fixtures(Path(root))
        commands = [draw(rng, keys, paths) for _ in range(opts.commands)]
        with ThreadPoolExecutor(opts.jobs) as pool:
            results = []
            for i, result in enumerate(pool.map(lambda a: run_one(a, opts.timeout), commands), 1):
                results.append(result)
                if result["problem"]:
                    print(f"FAIL ({result['problem']}): rpm {' '.join(result['args'])}\n  {result['stderr_tail']}",
                          flush=True)
                if i % 50 == 0:
                    print(f"{i}/{len(commands)} commands, {time.perf_counter() - started:.0f} s", flush=True)
    failures = [r for r in results if r["problem"]]
    codes = {str(c): sum(r["rc"] == c for r in results) for c in sorted({r["rc"] for r in results}, key=str)}
    summary = {"commands": len(results), "failures": len(failures), "exit_codes": codes,
               "seconds": round(time.perf_counter() - started, 1), "seed": opts.seed, "jobs": opts.jobs}
    if opts.out:
        opts.out.write_text(json.dumps({"summary": summary, "results": results}, indent=1))
    print(json.dumps(summary))
    print(f"fuzz: {len(results) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
