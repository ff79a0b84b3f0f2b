"""objective=rpm against hand computations and against InfoNCE (σ → 0), its posteriors' algebra, and the
objective plug-in's refusals."""
import math

import pytest
import torch

from rpm_cli.config import validate_train
from rpm_cli.errors import UserError
from rpm_cli.models.model import Model
from rpm_cli.models.objectives.posteriors import (AmortizedPosterior, GaussianQ, analytic_q, kl_to_recognition,
                                                  recognition_q)
from rpm_cli.models.objectives.rpm import elbo_per_pair, pair_probabilities
from rpm_cli.models.priors import DynamicsPrior, GaussianPrior, GaussianSlotsPrior, LinearPrior
from rpm_cli.objectives import info_nce

DIM = 4


def _priors():
    torch.manual_seed(20)
    dynamics = DynamicsPrior(DIM, 64.0, lengthscale=20.0)
    with torch.no_grad():
        dynamics.transition.add_(0.2 * torch.randn(DIM, DIM))
        dynamics.offset.add_(0.1 * torch.randn(DIM))
    slots = GaussianSlotsPrior(DIM, 64.0, lengthscale=20.0, per="dim")
    with torch.no_grad():
        slots.log_lengthscale.add_(0.3 * torch.randn(DIM))
    return [GaussianPrior(DIM, 64.0, lengthscale=20.0), slots, dynamics, LinearPrior(DIM, 64.0, init_std=0.5)]


@pytest.mark.parametrize("prior", _priors(), ids=lambda p: p.name)
def test_log_expected_f_is_the_gaussian_average_of_f(prior):
    """E_{z' ~ N(μ, diag v)} f(z, z') in closed form within 5 standard errors of 400 000 draws of z', and
    log f itself at v = 0."""
    prior = prior.double()
    gen = torch.Generator().manual_seed(21)
    z, mean_next = torch.rand(3, DIM, generator=gen).double(), torch.rand(2, DIM, generator=gen).double()
    var = torch.tensor([0.01, 0.04, 0.02, 0.03], dtype=torch.float64)
    closed = prior.log_expected_f(z, mean_next, var)
    draws = mean_next[:, None] + var.sqrt() * torch.randn(2, 400_000, DIM, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        f = torch.stack([prior.log_f(z, draws[j]).exp() for j in range(2)], dim=1)  # (3, 2, draws)
        error = (closed.exp() - f.mean(-1)).abs() / (f.std(-1) / math.sqrt(f.shape[-1]))
    assert float(error.max()) < 5
    with torch.no_grad():
        assert torch.allclose(prior.log_expected_f(z, mean_next, torch.zeros(DIM, dtype=torch.float64)),
                              prior.log_f(z, mean_next), atol=1e-12)


def test_kl_to_recognition_matches_torch_distributions():
    gen = torch.Generator().manual_seed(22)
    n = 2 * DIM
    raw = torch.randn(3, n, n, generator=gen, dtype=torch.float64)
    tril = torch.tril(raw, -1) + torch.diag_embed(torch.rand(3, n, generator=gen, dtype=torch.float64) + 0.2)
    q = GaussianQ(torch.randn(3, n, generator=gen, dtype=torch.float64), tril)
    mean_r = torch.randn(3, n, generator=gen, dtype=torch.float64)
    var = torch.rand(DIM, generator=gen, dtype=torch.float64) + 0.1
    ours = kl_to_recognition(q, mean_r, var)
    reference = torch.distributions.kl_divergence(
        torch.distributions.MultivariateNormal(q.mean, scale_tril=q.scale_tril),
        torch.distributions.MultivariateNormal(mean_r, covariance_matrix=torch.diag(var.repeat(2))))
    assert torch.allclose(ours, reference, atol=1e-10)
    eq14 = recognition_q(mean_r, var)
    assert torch.allclose(kl_to_recognition(eq14, mean_r, var), torch.zeros(3, dtype=torch.float64))


@pytest.mark.parametrize("prior", _priors()[:3], ids=lambda p: p.name)
def test_analytic_posterior_is_proportional_to_recognition_times_f(prior):
    """log Q(w) - log R(z|x) R(z'|x') - log f(z, z') is one constant over random w = (z, z')."""
    prior = prior.double()
    gen = torch.Generator().manual_seed(23)
    mean_r = torch.rand(1, 2 * DIM, generator=gen, dtype=torch.float64)
    var = torch.full((DIM,), 0.02, dtype=torch.float64)
    with torch.no_grad():
        q = analytic_q(prior, mean_r, var)
        w = mean_r + 0.3 * torch.randn(50, 2 * DIM, generator=gen, dtype=torch.float64)
        log_q = torch.distributions.MultivariateNormal(q.mean[0], scale_tril=q.scale_tril[0]).log_prob(w)
        log_r = torch.distributions.Normal(mean_r[0], var.repeat(2).sqrt()).log_prob(w).sum(-1)
        log_f = torch.stack([prior.log_f(wi[None, :DIM], wi[None, DIM:])[0, 0] for wi in w])
    gap = log_q - log_r - log_f
    assert float(gap.max() - gap.min()) < 1e-9


def test_amortized_posterior_starts_at_eq14():
    torch.manual_seed(24)
    net = AmortizedPosterior(DIM, 16)
    mean_r, var = torch.rand(5, 2 * DIM), torch.full((DIM,), 0.01)
    q, eq14 = net(mean_r, var), recognition_q(mean_r, var)
    assert torch.equal(q.mean, eq14.mean)
    assert torch.allclose(q.scale_tril, eq14.scale_tril.expand(5, -1, -1))


@pytest.mark.parametrize("prior", _priors(), ids=lambda p: p.name)
def test_pair_probabilities_sum_to_one_and_match_a_double_monte_carlo(prior):
    """P_ij (Eq. 31-34) sums to 1 over a batch; its closed inner expectation agrees with sampling z' too; at
    σ → 0 it is InfoNCE's softmax over the batch divided by B."""
    prior = prior.double()
    gen = torch.Generator().manual_seed(25)
    batch = 6
    mean, mean_next = torch.rand(batch, DIM, generator=gen).double(), torch.rand(batch, DIM, generator=gen).double()
    var = torch.full((DIM,), 0.02, dtype=torch.float64)  # σ ≈ 9 px against θ = 20 px: Z's spread matters
    torch.manual_seed(26)
    with torch.no_grad():
        p = pair_probabilities(prior, mean, mean_next, var, samples=4000)
        assert math.isclose(float(p.sum()), 1.0, abs_tol=1e-12)
        # Both expectations by sampling: 300 draws of z, each against 2000 draws of every z'_j.
        brute = torch.zeros(batch, batch, dtype=torch.float64)
        for _ in range(300):
            z = mean + var.sqrt() * torch.randn(batch, DIM, generator=gen, dtype=torch.float64)
            z_next = mean_next + var.sqrt() * torch.randn(2000, batch, DIM, generator=gen, dtype=torch.float64)
            expected = prior.log_f(z, z_next.reshape(-1, DIM)).exp().reshape(batch, 2000, batch).mean(1)
            brute += expected / expected.mean(1, keepdim=True) / 300
        brute /= batch ** 2
        assert torch.allclose(p, brute, rtol=0.1, atol=0.02 / batch ** 2)
        sharp = pair_probabilities(prior, mean, mean_next, torch.full((DIM,), 1e-16, dtype=torch.float64), 3)
        assert torch.allclose(sharp, prior.log_f(mean, mean_next).softmax(1) / batch, atol=1e-7)


def _twin_models(tiny_cfg, *rpm_overrides):
    """An InfoNCE model and an objective=rpm one with the same encoder and prior weights."""
    infonce = Model(tiny_cfg("prior=gaussian"))
    rpm = Model(tiny_cfg("prior=gaussian", "objective=rpm", *rpm_overrides))
    rpm.load_state_dict({**rpm.state_dict(), **infonce.state_dict()})
    return infonce, rpm


def test_rpm_with_eq14_at_zero_noise_is_infonce_plus_log_b(tiny_cfg):
    """With Q of Eq. 14 and σ → 0: loss_rpm = InfoNCE's mean cross-entropy + log B, and the same gradients
    (log B: the empirical bases' -2 log B plus Z's 1/B; see rpm_cli/models/objectives/rpm.py)."""
    infonce, rpm = _twin_models(tiny_cfg, "objective.sigma_px=1e-7")
    torch.manual_seed(27)
    frames = torch.rand(12, 3, 64, 64)
    z = infonce.encode_pairs(frames)
    ours, theirs = rpm.objective.loss_terms(rpm, z, None)[0], info_nce(infonce.prior_logits(*z.chunk(2)))
    assert math.isclose(ours.item(), theirs.item() + math.log(6), rel_tol=1e-6)
    grads = [torch.autograd.grad(loss, [z, model.prior.log_lengthscale], retain_graph=True)
             for loss, model in ((ours, rpm), (theirs, infonce))]
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)


def test_rpm_elbo_falls_below_eq14_only_by_noise_for_recognition(tiny_cfg):
    """With Q of Eq. 14 the logged elbo_eq14 is the elbo itself: q_gain is exactly 0."""
    _, rpm = _twin_models(tiny_cfg)
    z = rpm.encode_pairs(torch.rand(12, 3, 64, 64))
    _, terms = rpm.objective.loss_terms(rpm, z, None)
    assert float(terms["q_gain"]) == 0.0


def test_analytic_posterior_raises_the_elbo_of_a_gaussian_prior_with_noise():
    """Where f_θ is sharp against σ the posterior Q ∝ R R f sits where f puts its mass, and its ELBO is
    above Eq. 14's (averaged over many draws so that the Monte Carlo error is far below the gap)."""
    prior = GaussianPrior(2, 64.0, lengthscale=2.0).double()  # θ = 2 px, σ = 3 px
    gen = torch.Generator().manual_seed(28)
    mean = torch.rand(8, 2, generator=gen, dtype=torch.float64)
    mean_r = torch.cat([mean, mean + 0.02 * torch.randn(8, 2, generator=gen, dtype=torch.float64)], 1)
    var = torch.full((2,), (3 / 64) ** 2, dtype=torch.float64)
    torch.manual_seed(29)
    with torch.no_grad():
        analytic = elbo_per_pair(prior, analytic_q(prior, mean_r, var), mean_r, var, 20_000).mean()
        eq14 = elbo_per_pair(prior, recognition_q(mean_r, var), mean_r, var, 20_000).mean()
    assert float(analytic - eq14) > 0.5


@pytest.mark.parametrize("overrides, message", [
    (["objective=rpm", "prior=laplace"], "objective=rpm needs a prior whose Z(z) has a closed form"),
    (["objective=rpm", "posterior=analytic", "prior=linear"], "objective.posterior=analytic needs a prior"),
    (["objective=rpm", "objective.samples=0"], "objective.samples must be an integer from 1 to 1000"),
    (["objective=rpm", "objective.sigma_px=0"], "objective.sigma_px must be"),
    (["objective=rpm", "objective.posterior=exact"], "objective.posterior must be one of"),
    (["posterior=amortized"], "objective.posterior is not a parameter of InfoNCE"),
    (["objective=supervised", "prior=gaussian"], "prior must be null with objective=supervised"),
])
def test_bad_objective_configs_fail_in_one_line(tiny_cfg, overrides, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        validate_train(tiny_cfg(*overrides))
    assert "\n" not in str(info.value)


def test_a_learned_sigma_moves_and_is_logged_in_pixels(tiny_cfg, tmp_path):
    from rpm_cli.train import train

    cfg = tiny_cfg("objective=rpm", "posterior=amortized", "objective.learn_sigma=true", "objective.sigma_px=2")
    metrics = train(cfg, tmp_path / "run")
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["model"]
    assert state["noise.log_sigma"].shape == (4,)  # one σ per latent dimension: 2 maps × (x, y)
    assert metrics["sigma_px"] != 2.0 and math.isfinite(metrics["sigma_px"])
    assert {"elbo", "elbo_eq14", "q_gain"} <= set(metrics)
    fixed = train(tiny_cfg("objective=rpm", "objective.sigma_px=2"), tmp_path / "fixed")
    assert fixed["sigma_px"] == pytest.approx(2.0)
