"""A user's own prior, one class and one YAML outside the repo, trains and evaluates through the CLI;
and every shipped prior passes one tiny train + evaluate."""
import json
import textwrap

import pytest

from rpm_cli.reproduction import prior_names
from tests.helpers import TINY, run_rpm, run_rpm_here

PLUGIN = '''
import torch
from rpm_cli.models.priors.base import Prior, log_length, log_parameter, pairwise_diff

class CauchyPrior(Prior):
    """log f = -log(1 + |z - z'|^2 / theta^2)"""
    def __init__(self, dim, scale, lengthscale):
        super().__init__(dim, scale)
        self.log_lengthscale = log_parameter(log_length("lengthscale", lengthscale, self.scale), True)

    def log_f(self, z, z_next):
        return -torch.log1p(pairwise_diff(z, z_next).pow(2).sum(-1) * torch.exp(-2 * self.log_lengthscale))

    def summary(self):
        return {"lengthscale_px": float(self.log_lengthscale.exp()) * self.scale}
'''


def test_a_prior_added_outside_the_repo_trains_through_the_cli(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_priors.py").write_text(textwrap.dedent(PLUGIN))
    (tmp_path / "conf" / "prior").mkdir(parents=True)
    (tmp_path / "conf" / "prior" / "cauchy.yaml").write_text(
        "_target_: my_priors.CauchyPrior\nname: cauchy\nlengthscale: ${data.ball_diameter}\n")
    env = {"PYTHONPATH": str(tmp_path)}
    run = tmp_path / "run"
    run_rpm(["train", "--config-dir", str(tmp_path / "conf"), "prior=cauchy", *TINY, f"hydra.run.dir={run}"],
            tmp_path, check=True, env=env)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and "lengthscale_px" in lines[-1]
    run_rpm(["evaluate", f"run_dir={run}"], tmp_path, check=True, env=env)
    assert "retrieval_top1" in json.loads((run / "evaluation.json").read_text())["test"]
    monkeypatch.syspath_prepend(str(tmp_path))  # the refusal in this process, as PYTHONPATH gives the script
    code, stderr = run_rpm_here(["train", "--config-dir", str(tmp_path / "conf"), "prior=cauchy",
                                 "prior.lengthscale=-3", *TINY], tmp_path, monkeypatch, capsys)
    assert code == 2 and stderr.strip() == "error: prior.lengthscale must be a finite number > 0 (got -3)"


@pytest.mark.slow  # 8 CLI trainings; test_priors.py steps every prior under Adam in-process
def test_every_prior_trains_and_evaluates_from_the_cli(tmp_path):
    """One sweep over every prior in configs/prior/ (one process: the priors, not the start-up, are tested)."""
    sweep = tmp_path / "sweep"
    run_rpm(["train", "-m", f"prior={','.join(prior_names())}", *TINY, "trainer.epochs=1", "evaluate=true",
             f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${prior.name}"], tmp_path, check=True)
    for prior in prior_names():
        result = json.loads((sweep / prior / "evaluation.json").read_text())
        assert result["final_train"]["loss"] < 10 and 0 <= result["test"]["retrieval_top1"] <= 1, prior
