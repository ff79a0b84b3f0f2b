#!/usr/bin/env python
"""Speed and memory at the paper size (900 frames of 256x256, batches of 30 pairs).

Measured in one run, each number in a fresh child process (glibc reads its allocator settings only at
process start, and that setting is part of what is measured):

* plain eager: a straightforward PyTorch training step of the same math (tests/eager_reference.py),
  default allocator;
* plain eager + rpm allocator: the same step with the allocator settings `rpm` runs under;
* rpm: the project's real training step (rpm_cli.models.model.Model) as `rpm train` runs it, which computes
  only near the balls (rpm_cli/models/sparse.py); and the same step through the encoder's dense pass;
* video generation (simulate + render, no cache), `rpm evaluate` on a full-size run, and the peak RSS
  of one full-size training epoch.

Prints a table and ends with `background_skipping_speedup=<ratio>` (rpm vs its dense pass) and
`train_speedup_vs_eager=<ratio>` (rpm vs plain eager).
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
from tests.eager_reference import PlainEagerStep  # noqa: E402  (the reference the equivalence test checks)

BATCH_PAIRS, REPEATS, WARMUP = 30, 7, 2
PAPER = ["experiment=paper", "data.n_frames=900", "data.image_size=256", "trainer.batch_size=30", "trainer.progress=false"]


def paper_cfg(*extra):
    from hydra import compose, initialize_config_dir

    from rpm_cli import CONFIG_DIR
    from rpm_cli.resolvers import register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=[*PAPER, *extra])


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
    elif kind in ("rpm", "rpm-dense"):
        from rpm_cli.models.model import Model
        from rpm_cli.train import make_optimizer

        model = Model(paper_cfg(f"encoder.skip_background={str(kind == 'rpm').lower()}"))
        optimizer = make_optimizer(model.parameters(), cfg.trainer)
        frames, centres = torch.from_numpy(video.frames), torch.from_numpy(video.centres)

        def step():
            loss = model.loss(frames[index], centres[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        seconds = median_seconds(step)
    elif kind == "epoch":  # one real full-size epoch through train(): time and peak memory
        from rpm_cli.train import train

        run_dir = Path(tempfile.mkdtemp()) / "run"
        start = time.perf_counter()
        train(paper_cfg(f"data.cache_dir={tempfile.gettempdir()}/rpm-bench-cache", "trainer.epochs=1"), run_dir)
        return {"seconds": time.perf_counter() - start, "run_dir": str(run_dir),
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    elif kind.startswith("evaluate:"):
        from rpm_cli.evaluate import evaluate_run

        start = time.perf_counter()
        evaluate_run(kind.split(":", 1)[1], force=True)
        return {"seconds": time.perf_counter() - start}
    else:
        raise SystemExit(f"unknown child {kind}")
    return {"seconds": seconds, "frames_per_s": 2 * BATCH_PAIRS / seconds}


def run_child(kind: str, fast_allocator: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in allocator.FAST_ALLOCATOR_ENV}
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
    rpm = run_child("rpm", fast_allocator=True)
    rpm_dense = run_child("rpm-dense", fast_allocator=True)
    epoch = run_child("epoch", fast_allocator=True)
    evaluate = run_child(f"evaluate:{epoch['run_dir']}", fast_allocator=True)
    steps_per_run = 30 * (899 // BATCH_PAIRS)
    rows = [
        ("plain eager step (default allocator)", f"{plain['frames_per_s']:.0f} frames/s", f"{plain['seconds'] * 1e3:.0f} ms/step"),
        ("plain eager step (rpm allocator)", f"{plain_fast['frames_per_s']:.0f} frames/s", f"{plain_fast['seconds'] * 1e3:.0f} ms/step"),
        ("rpm training step, dense pass", f"{rpm_dense['frames_per_s']:.0f} frames/s", f"{rpm_dense['seconds'] * 1e3:.0f} ms/step"),
        ("rpm training step", f"{rpm['frames_per_s']:.0f} frames/s", f"{rpm['seconds'] * 1e3:.0f} ms/step"),
        ("30-epoch run at rpm step speed", f"{steps_per_run * rpm['seconds'] / 60:.1f} min", f"{steps_per_run} steps"),
        ("one full epoch via train()", f"{epoch['seconds']:.1f} s", "incl. video load"),
        ("video generation (900 x 256²)", f"{video['seconds']:.2f} s", "simulate + render"),
        ("rpm evaluate, full-size run", f"{evaluate['seconds']:.1f} s", "2 encoders, 3 videos, pictures"),
        ("peak RSS, full-size training", f"{epoch['peak_rss_mib']:.0f} MiB", ""),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>14}  {note}")
    print(f"background_skipping_speedup={rpm['frames_per_s'] / rpm_dense['frames_per_s']:.2f}")
    print(f"train_speedup_vs_eager={rpm['frames_per_s'] / plain['frames_per_s']:.2f}")


if __name__ == "__main__":
    main()
