"""The installed `rpm` script: the end-to-end path in subprocesses, every user error in one line with exit
code 2 (in this process, and a few through the script itself)."""
import json
import math

import pytest

from tests.helpers import TINY, run_rpm, run_rpm_here

pytestmark = pytest.mark.usefixtures("rpm_available")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run trained and evaluated through the CLI, shared by the tests below."""
    cwd = tmp_path_factory.mktemp("cli")
    train = run_rpm(["train", *TINY], cwd, check=True)
    evaluate = run_rpm(["evaluate"], cwd, check=True)
    return cwd, train, evaluate


def test_train_then_evaluate_writes_the_promised_files(trained):
    cwd, _, evaluate = trained
    run = (cwd / "outputs/train/latest").resolve()
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "checkpoint.pt", "metrics.jsonl", "evaluation.json",
                 "curves.png", "maps.png", "tracking.gif"):
        assert (run / name).is_file(), name
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    result = json.loads((run / "evaluation.json").read_text())
    for role in ("val", "test"):
        scores = result[role]
        for key in ("readout_l2_px", "slot_l2_px"):
            assert key in scores and key in scores["chance"] and key in scores["random_init"]
        assert scores["n_frames"] == 40 and scores["negatives_batch"] == 9 and scores["negatives_all"] == 38
        assert scores["infonce_estimate_batch"] <= math.log(9) and scores["infonce_estimate_all"] <= math.log(38)
        assert 0 <= scores["retrieval_top1"] <= scores["retrieval_mrr"] <= 1
    assert result["val"]["slot_l2_px"] != result["test"]["slot_l2_px"]  # two different videos
    # TINY: 12-px balls stepping 12 px: the motion implies θ = 12 / √2 per coordinate
    assert math.isclose(result["motion_lengthscale_px"], 12 / math.sqrt(2), rel_tol=1e-5)
    for words in ("validation trained", "test trained", "random-init", "retrieval top-1", "the motion implies"):
        assert words in evaluate.stdout


def test_evaluate_accepts_an_explicit_run_dir(trained):
    cwd, _, _ = trained
    run = (cwd / "outputs/train/latest").resolve()
    again = run_rpm(["evaluate", f"run_dir={run}"], cwd, check=True)
    assert str(run) in again.stdout


def test_hydra_behaviour_survives_the_dispatcher(tmp_path):
    cfg = run_rpm(["train", "prior=linear", "--cfg", "job"], tmp_path, check=True)
    assert "name: linear" in cfg.stdout and "optimizer: adam" in cfg.stdout  # the tuned recipe by default
    assert "map_bias_init: -6.0" in cfg.stdout and "name: paper" not in cfg.stdout
    for preset in ("experiment=paper", "trainer=paper"):
        paper = run_rpm(["train", preset, "--cfg", "job"], tmp_path, check=True).stdout
        assert "optimizer: sgd" in paper and "lr: 0.005" in paper and "epochs: 30" in paper
        assert "map_bias_init: 0.0" in paper and "restarts: 1" in paper
    supervised = run_rpm(["train", "objective=supervised", "--cfg", "job"], tmp_path, check=True).stdout
    assert "\nprior:" not in supervised and "name: supervised" in supervised
    assert "Powered by Hydra" in run_rpm(["train", "--help"], tmp_path, check=True).stdout
    assert "train" in run_rpm(["--help"], tmp_path, check=True).stdout
    assert not (tmp_path / "outputs").exists()


BAD_TRAIN = [
    (["prior=nosuch"], "prior must be one of: cosine, dynamics, gaussian, gaussian_slots, laplace, linear, mlp"),
    (["trainer=nosuch"], "trainer must be one of: clica, paper, tuned"),
    (["experiment=nosuch"], "experiment must be one of: paper"),
    (["objective=nosuch"], "objective must be one of: infonce, rpm, supervised"),
    (["objective=supervised", "prior=linear"], "prior must be null with objective=supervised"),
    (["prior.lengthscale=-1"], "prior.lengthscale must be a finite number > 0 (got -1)"),
    (["prior.lengthscale=0"], "prior.lengthscale must be a finite number > 0"),
    (["prior.learn_lengthscale=maybe"], "prior.learn_lengthscale must be true or false"),
    (["prior=linear", "prior.init_std=-0.1"], "prior.init_std must be a finite number >= 0"),
    (["trainer.epochs=0"], "trainer.epochs must be an integer from 1 to 100000 (got 0)"),
    (["trainer.epochs=1.5"], "trainer.epochs must be an integer from 1"),
    (["trainer.lr=0"], "trainer.lr must be a finite number > 0"),
    (["trainer.lr=-0.1"], "trainer.lr must be a finite number > 0"),
    (["trainer.lr=inf"], "trainer.lr must be a finite number > 0 and <= 10 (got inf)"),
    (["trainer.momentum=1.5"], "trainer.momentum must be a finite number >= 0 and < 1"),
    (["trainer.restarts=0"], "trainer.restarts must be an integer from 1 to 1000 (1 = a single start) (got 0)"),
    (["trainer.restarts=3", "trainer.restart_epochs=2"],
     "trainer.restart_epochs must be an integer from 1 to 100000, and to trainer.epochs - 1 (1) when trainer.restarts > 1"),
    (["trainer.batch_size=1"], "trainer.batch_size must be an integer from 2"),
    (["trainer.batch_size=1000"], "trainer.batch_size must be an integer from 2 to the number of training pairs, data.n_frames - 1 (59)"),
    (["trainer.optimizer=rmsprop"], "trainer.optimizer must be one of: sgd, adam"),
    (["trainer.loss_reduction=median"], "trainer.loss_reduction must be one of: mean, sum"),
    (["trainer.device=tpu"], "trainer.device must be one of: auto, cpu, cuda"),
    (["trainer.threads=-1"], "trainer.threads must be an integer from 0"),
    (["trainer.epoch=3"], "unknown key trainer.epoch (did you mean trainer.epochs?)"),
    (["nosuchkey=1"], "unknown key nosuchkey"),
    (["seed=-1"], "seed must be an integer from 0 to 4294967295 (got -1)"),
    (["seed=1.5"], "seed must be an integer"),
    (["data.n_balls=0"], "data.n_balls must be an integer from 1 to 8 (got 0)"),
    (["data.n_balls=9"], "data.n_balls must be an integer from 1 to 8"),
    (["data.image_size=8"], "data.image_size must be an integer from 16 to 4096 (got 8)"),
    (["data.image_size=200000"], "data.image_size must be an integer from 16 to 4096 (got 200000)"),
    (["data.n_frames=2000000000"], "data.n_frames must be an integer from 3 to 1000000"),
    (["data.image_size=4096", "data.ball_diameter=32", "data.n_frames=1000000"], "the run would need about"),
    (["max_memory_gb=0.001"], "more than max_memory_gb=0.001"),
    (["data.ball_diameter=0"], "data.ball_diameter must be a number > 0"),
    (["data.ball_diameter=64"], "data.ball_diameter must be a number > 0 and < data.image_size"),
    (["data.n_balls=8", "data.ball_diameter=30"], "too crowded"),
    (["data.n_balls=8", "data.image_size=16", "data.ball_diameter=4"],  # jammed the generator at frame 1
     "data.n_balls, data.image_size, data.ball_diameter, data.step: 8 balls of diameter 4 are too crowded"),
    (["data.step=60"], "a step of 60 px does not fit"),
    (["+trainer.epochs=3"], "+trainer.epochs adds a key, but trainer.epochs exists"),
    (["+trainer.threadsx=1"], "unknown key trainer.threadsx: nothing reads it (did you mean trainer.threads?)"),
    (["debug=3"], "debug must be true or false (got 3)"),
    (["data.n_frames=2"], "data.n_frames must be an integer from 3"),
    (["data.step=0"], "data.step must be a number > 0"),
    (["data.heading_noise_deg=-1"], "data.heading_noise_deg must be a finite number >= 0 and <= 180"),
    (["data.heading_noise_deg=nan"], "data.heading_noise_deg must be a finite number"),
    (["data.test_seed=0"], "data.test_seed must be an integer from 0 to 2**32 - 1, different from data.seed"),
    (["data.val_seed=1000"], "data.val_seed must be an integer from 0 to 2**32 - 1, different from data.seed and"),
    (["encoder.hidden_channels=0"], "encoder.hidden_channels must be an integer from 1"),
    (["encoder.map_bias_init=high"], "encoder.map_bias_init must be a finite number"),
    (["encoder.map_bias_init=inf"], "encoder.map_bias_init must be a finite number >= -50 and <= 50 (got inf)"),
    (["encoder.skip_background=maybe"], "encoder.skip_background must be true or false"),
    (["sweep_metric=foo"], "sweep_metric must be one of"),
    (["logger=nosuch"], "logger must be one of: jsonl, tensorboard"),
    (["resume=/no/such/dir"], "resume must be a run dir holding checkpoint.pt"),
    (["hydra.run.dir=/proc/rpm-cannot-create-this"], "cannot create or write the output dir"),
]


def assert_refused(code: int, stderr: str, message: str) -> None:
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("overrides,message", BAD_TRAIN, ids=[" ".join(o) for o, _ in BAD_TRAIN])
def test_bad_train_input_fails_cleanly_before_any_work(tmp_path, overrides, message, monkeypatch, capsys):
    assert_refused(*run_rpm_here(["train", *TINY, *overrides], tmp_path, monkeypatch, capsys), message)
    assert not (tmp_path / "outputs").exists(), "a failed run left a directory behind"


# One of each way a bad command line is caught (the dispatcher's override check, the app's validation before
# training, the memory budget), through the installed script with its allocator re-exec.
SCRIPT_CASES = [case for case in BAD_TRAIN if case[0] in (["nosuchkey=1"], ["trainer.lr=0"], ["max_memory_gb=0.001"])]


@pytest.mark.parametrize("overrides,message", SCRIPT_CASES, ids=[" ".join(o) for o, _ in SCRIPT_CASES])
def test_the_script_refuses_bad_input_in_one_line_with_exit_code_2(tmp_path, overrides, message):
    proc = run_rpm(["train", *TINY, *overrides], tmp_path)
    assert_refused(proc.returncode, proc.stderr, message)
    assert not (tmp_path / "outputs").exists(), "a failed run left a directory behind"


def test_bad_evaluate_input_fails_cleanly(tmp_path, trained, monkeypatch, capsys):
    empty = tmp_path / "empty_run"
    empty.mkdir()
    corrupt = tmp_path / "corrupt_run"
    corrupt.mkdir()
    (corrupt / "checkpoint.pt").write_bytes(b"not a checkpoint at all")
    cases = [
        (["run_dir=/no/such/dir"], "run_dir /no/such/dir does not exist"),
        ([f"run_dir={empty}"], "has no checkpoint.pt"),
        ([f"run_dir={corrupt}"], "is truncated, corrupt or not an rpm checkpoint"),
        ([], "no latest run"),
        ([f"sweep_dir={empty}"], "holds no trained runs"),
        ([f"run_dir={(trained[0] / 'outputs/train/latest').resolve()}", "batch_size=0"], "batch_size must be"),
    ]
    for args, message in cases:
        assert_refused(*run_rpm_here(["evaluate", *args], tmp_path, monkeypatch, capsys), message)
    assert not (corrupt / "evaluation.json").exists()


@pytest.mark.parametrize("args,message", [
    (["report"], "the following arguments are required: root"),
    (["report", "--jobs", "two", "x"], "argument --jobs: invalid int value"),
    (["figures", "debug=3"], "debug must be true or false (got 3)"),
    (["evaluate", "+run_dir=/proc"], "+run_dir adds a key, but run_dir exists"),
    (["figures", "~supervised_run"], "supervised_run cannot be deleted"),
    (["figures", "nosuch=1", "--help"], "unknown key nosuch"),
    (["figures", "+foo=1", "run_dir=."], "unknown key foo: nothing reads it"),  # --help composes the overrides too
])
def test_other_commands_refuse_bad_command_lines_in_one_line(tmp_path, args, message, monkeypatch, capsys):
    assert_refused(*run_rpm_here(args, tmp_path, monkeypatch, capsys), message)


def test_unknown_command(tmp_path):
    proc = run_rpm(["trian"], tmp_path)
    assert proc.returncode == 2 and "unknown command 'trian'" in proc.stderr
