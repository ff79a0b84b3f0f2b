#!/usr/bin/env python
"""Speed and memory at the paper size (900 frames of 256x256, batches of 30 pairs).

Measured in one run, each number in a fresh child process (glibc reads its allocator settings only at
process start, and that setting is part of what is measured):

* plain eager: a straightforward PyTorch training step of the same math (tests/eager_reference.py),
  default allocator;
* plain eager + rpm allocator: the same step with the allocator settings `rpm` runs under;
* rpm: the project's real training step (rpm_cli.models.model.Model) as `rpm train` runs it, which computes
  only near the balls, from crops found once per video (rpm_cli/models/sparse.py), with rpm's CPU kernels
  (rpm_cli/models/native.c); the same step with torch's operations instead (RPM_NATIVE=0); and the same step
  through the encoder's dense pass;
* the anchor: the plain eager step on a tensor packed with only the active area (the pixels of the batch's
  active tiles, as one square per frame): what the same dense kernels cost on just the pixels that matter;
* video generation (simulate + render, no cache), `rpm evaluate` on a full-size run (scores only, and the
  pictures a single run adds), and the peak RSS of one full-size training epoch;
* a default run end to end (`rpm train evaluate=true` at paper size, the default recipe) and its breakdown;
* runs per hour: JOBS lanes side by side (as `make reproduce` runs, one thread each), each a `rpm train -m`
  sweep of RUNS_PER_LANE seeds, every phase included (start-up, videos, training, evaluation).

Prints a table and ends with `background_skipping_speedup=<ratio>` (rpm vs its dense pass),
`native_kernels_speedup=<ratio>` (rpm's kernels vs torch's operations in the same step),
`step_vs_anchor=<ratio>` (rpm's step time over the anchor's), `train_speedup_vs_eager=<ratio>` (rpm vs plain
eager) and `runs_per_hour=<n>`.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from rpm_cli import allocator  # noqa: E402
from rpm_cli.reproduction import SPEED_SEEDS as BENCH_SEEDS  # noqa: E402  (timing only: never reported or selected on)
from tests.eager_reference import PlainEagerStep  # noqa: E402  (the reference the equivalence test checks)

BATCH_PAIRS, REPEATS, WARMUP = 30, 7, 2
JOBS, RUNS_PER_LANE = 2, 2
PAPER = ["experiment=paper", "data.n_frames=900", "data.image_size=256", "trainer.batch_size=30", "trainer.progress=false"]


def compose_train(*overrides):
    """`rpm train`'s config with these overrides, as the CLI composes it."""
    from hydra import compose, initialize_config_dir

    from rpm_cli import CONFIG_DIR
    from rpm_cli.resolvers import register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def paper_cfg(*extra):
    return compose_train(*PAPER, *extra)


def default_trainer():
    """The default recipe's trainer settings (`rpm train` with no overrides)."""
    return compose_train().trainer


def batch_index(n_frames=900):
    base = torch.randperm(n_frames - 1, generator=torch.Generator().manual_seed(0))[:BATCH_PAIRS]
    return torch.cat([base, base + 1])


def median_seconds(fn):
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def child(kind: str) -> dict:
    from rpm_cli.data.balls import load_video

    cfg = paper_cfg(f"data.cache_dir={tempfile.gettempdir()}/rpm-bench-cache")
    if kind == "video":
        from rpm_cli.data.balls import generate, video_key

        key = video_key(cfg.data, seed=0, n_frames=900)
        return {"seconds": median_seconds(lambda: generate(key))}
    video = load_video(cfg.data, seed=0, n_frames=900)
    index = batch_index()
    torch.manual_seed(0)
    if kind == "plain":
        step = PlainEagerStep()
        frames = torch.from_numpy(video.frames).float() / 255  # the whole video as float32, as one would
        seconds = median_seconds(lambda: step.step(frames[index]))
    elif kind == "anchor":
        from rpm_cli.models import sparse

        tile = sparse.TILE[cfg.encoder.kernels]
        active = int(sparse.active_tiles(torch.from_numpy(video.frames)[index], tile).sum()) * tile ** 2
        side = round((active / len(index)) ** 0.5)
        step = PlainEagerStep()
        packed = torch.rand(len(index), 3, side, side, generator=torch.Generator().manual_seed(0))
        return {"seconds": median_seconds(lambda: step.step(packed)), "side": side,
                "fraction": active / (len(index) * 256 * 256)}
    elif kind in ("rpm", "rpm-dense"):
        from rpm_cli.models.build import batch_source
        from rpm_cli.models.model import Model
        from rpm_cli.train import make_optimizer

        step_cfg = paper_cfg(f"encoder.skip_background={str(kind == 'rpm').lower()}")
        model = Model(step_cfg)
        optimizer = make_optimizer(model.parameters(), cfg.trainer)
        frames, centres = torch.from_numpy(video.frames), torch.from_numpy(video.centres)
        start = time.perf_counter()
        batch = batch_source(model.encoder, frames)  # as rpm train does, once per video
        prepare = time.perf_counter() - start

        def step():
            loss = model.loss(batch(index), centres[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        seconds = median_seconds(step)
        return {"seconds": seconds, "frames_per_s": 2 * BATCH_PAIRS / seconds, "prepare_seconds": prepare}
    elif kind == "epoch":  # one real full-size epoch through train(): time and peak memory
        from rpm_cli.train import train

        run_dir = Path(tempfile.mkdtemp()) / "run"
        start = time.perf_counter()
        train(paper_cfg(f"data.cache_dir={tempfile.gettempdir()}/rpm-bench-cache", "trainer.epochs=1"), run_dir)
        return {"seconds": time.perf_counter() - start, "run_dir": str(run_dir),
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    elif kind.startswith("evaluate:"):
        from rpm_cli.evaluate import evaluate_run
        from rpm_cli.figures.run import run_pictures
        from rpm_cli.runs import load_run

        run_dir = kind.split(":", 1)[1]
        load_run(run_dir)  # imports and the checkpoint read once, outside the timings
        start = time.perf_counter()
        run = load_run(run_dir)
        evaluate_run(run_dir, force=True, run=run)
        scores = time.perf_counter() - start
        run_pictures(run)
        return {"seconds": scores, "pictures_seconds": time.perf_counter() - start - scores}
    else:
        raise SystemExit(f"unknown child {kind}")
    return {"seconds": seconds, "frames_per_s": 2 * BATCH_PAIRS / seconds}


def rpm_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "rpm_cli", *args]


def default_run(out: Path, cache: Path) -> dict:
    """One default run at paper size through the CLI, as a user starts it: wall time and the phases its
    files record (each start's and epoch's seconds)."""
    run_dir = out / "single"
    start = time.perf_counter()
    subprocess.run(rpm_command("train", f"seed={BENCH_SEEDS[0]}", "evaluate=true", "trainer.progress=false",
                               f"data.cache_dir={cache}", f"hydra.run.dir={run_dir}"),
                   check=True, capture_output=True, cwd=ROOT)
    wall = time.perf_counter() - start
    starts = json.loads((run_dir / "starts.json").read_text())["starts"]
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    restarts = sum(s["seconds"] for s in starts)
    continued = sum(m["seconds"] for m in epochs[len(starts[0]["losses"]):])
    return {"wall": wall, "restarts": restarts, "n_starts": len(starts), "continued": continued,
            "n_continued": len(epochs) - len(starts[0]["losses"])}


def runs_per_hour(out: Path, cache: Path) -> dict:
    """JOBS lanes at once, each one `rpm train -m` sweep of RUNS_PER_LANE seeds with evaluation (one thread
    each), from a cold video cache: every phase of a study as `make reproduce` runs it."""
    seeds = BENCH_SEEDS[1:1 + JOBS * RUNS_PER_LANE]
    lanes = [",".join(map(str, seeds[i::JOBS])) for i in range(JOBS)]
    start = time.perf_counter()
    procs = [subprocess.Popen(rpm_command("train", "-m", f"seed={lane}", "evaluate=true", "trainer.threads=1",
                                          "trainer.progress=false", f"data.cache_dir={cache}",
                                          f"hydra.sweep.dir={out / f'lane-{i}'}", "hydra.sweep.subdir=seed-${seed}"),
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for i, lane in enumerate(lanes)]
    for proc in procs:
        if proc.wait():
            raise SystemExit(f"a lane failed:\n{proc.stderr.read()}")
    wall = time.perf_counter() - start
    return {"wall": wall, "runs": len(seeds), "runs_per_hour": len(seeds) * 3600 / wall}


def run_child(kind: str, fast_allocator: bool, **extra_env: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in allocator.FAST_ALLOCATOR_ENV} | extra_env
    if fast_allocator:
        env = allocator.environment(env)
    out = subprocess.run([sys.executable, __file__, "--child", kind], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"child {kind} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores", flush=True)
    video = run_child("video", fast_allocator=True)
    plain = run_child("plain", fast_allocator=False)
    plain_fast = run_child("plain", fast_allocator=True)
    anchor = run_child("anchor", fast_allocator=True)
    rpm = run_child("rpm", fast_allocator=True)
    rpm_torch = run_child("rpm", fast_allocator=True, RPM_NATIVE="0")
    rpm_dense = run_child("rpm-dense", fast_allocator=True)
    epoch = run_child("epoch", fast_allocator=True)
    evaluate = run_child(f"evaluate:{epoch['run_dir']}", fast_allocator=True)
    with tempfile.TemporaryDirectory() as tmp:
        single = default_run(Path(tmp), Path(tmp) / "cache")
        lanes = runs_per_hour(Path(tmp), Path(tmp) / "cache-lanes")
    from rpm_cli.train import total_epochs

    epochs_per_run = total_epochs(default_trainer())
    steps_per_run = epochs_per_run * (899 // BATCH_PAIRS)
    phases = single["restarts"] + single["continued"] + evaluate["seconds"] + evaluate["pictures_seconds"]
    ms = "ms/step"
    rows = [
        ("plain eager step (default allocator)", f"{plain['frames_per_s']:.0f} frames/s", f"{plain['seconds'] * 1e3:.0f} {ms}"),
        ("plain eager step (rpm allocator)", f"{plain_fast['frames_per_s']:.0f} frames/s", f"{plain_fast['seconds'] * 1e3:.0f} {ms}"),
        ("anchor: plain eager on the active area only", f"{anchor['seconds'] * 1e3:.0f} {ms}",
         f"60 x 3 x {anchor['side']}² ({anchor['fraction']:.1%} of the pixels), rpm allocator"),
        ("rpm training step, dense pass", f"{rpm_dense['frames_per_s']:.0f} frames/s", f"{rpm_dense['seconds'] * 1e3:.0f} {ms}"),
        ("rpm training step, torch's operations (RPM_NATIVE=0)", f"{rpm_torch['frames_per_s']:.0f} frames/s",
         f"{rpm_torch['seconds'] * 1e3:.0f} {ms}"),
        ("rpm training step", f"{rpm['frames_per_s']:.0f} frames/s", f"{rpm['seconds'] * 1e3:.0f} {ms}"),
        ("crops of a 900-frame video (once per run)", f"{rpm['prepare_seconds']:.2f} s", ""),
        (f"{epochs_per_run} epochs (the default recipe) at rpm's step speed", f"{steps_per_run * rpm['seconds']:.1f} s",
         f"{steps_per_run} steps"),
        ("one full epoch via train()", f"{epoch['seconds']:.1f} s", "incl. video load"),
        ("video generation (900 x 256²)", f"{video['seconds']:.2f} s", "simulate + render"),
        ("rpm evaluate, full-size run: scores", f"{evaluate['seconds']:.1f} s", "2 encoders, 3 videos"),
        ("rpm evaluate, full-size run: pictures", f"{evaluate['pictures_seconds']:.1f} s", "single runs only"),
        ("peak RSS, full-size training", f"{epoch['peak_rss_mib']:.0f} MiB", ""),
        ("default run, `rpm train evaluate=true`", f"{single['wall']:.1f} s", "wall, 2 threads, cold video cache"),
        (f"  {single['n_starts']} starts x 2 epochs", f"{single['restarts']:.1f} s", ""),
        (f"  {single['n_continued']} epochs continuing the best", f"{single['continued']:.1f} s", ""),
        ("  evaluation + pictures (measured above)", f"{evaluate['seconds'] + evaluate['pictures_seconds']:.1f} s", ""),
        ("  start-up, imports, videos, checkpoints", f"{single['wall'] - phases:.1f} s", "the rest of the wall time"),
        (f"{JOBS} lanes x {RUNS_PER_LANE} runs (`rpm train -m`)", f"{lanes['wall']:.0f} s", "1 thread each, every phase"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>14}  {note}")
    print(f"background_skipping_speedup={rpm['frames_per_s'] / rpm_dense['frames_per_s']:.2f}")
    print(f"native_kernels_speedup={rpm_torch['seconds'] / rpm['seconds']:.2f}")
    print(f"step_vs_anchor={rpm['seconds'] / anchor['seconds']:.2f}")
    print(f"train_speedup_vs_eager={rpm['frames_per_s'] / plain['frames_per_s']:.2f}")
    print(f"runs_per_hour={lanes['runs_per_hour']:.0f}")


if __name__ == "__main__":
    main()
