"""f_θ priors: values against hand computations, gradients at extremes, config validation, YAMLs, old configs."""
import inspect
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from rpm_cli.errors import UserError
from rpm_cli.models.priors import (CosinePrior, DynamicsPrior, GaussianPrior, GaussianSlotsPrior, LaplacePrior,
                                   LinearPrior, MLPPrior, Prior, StudentTPrior, build_prior)
from rpm_cli.objectives import info_nce
from rpm_cli.runs import upgrade_state

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "prior"
NAMES = ("gaussian", "gaussian_slots", "laplace", "student_t", "cosine", "linear", "dynamics", "mlp")
DIM, SCALE, DIAMETER = 6, 256.0, 32

# One valid config per prior (plus a second laplace, p = 3, to exercise the general L_p path).
CONFIGS = {
    "gaussian": {"name": "gaussian", "lengthscale": 32, "learn_lengthscale": True},
    "gaussian_slots": {"name": "gaussian_slots", "lengthscale": 32, "per": "slot", "learn_lengthscale": True},
    "laplace": {"name": "laplace", "lengthscale": 32, "p": 1, "learn_lengthscale": True},
    "laplace_p3": {"name": "laplace", "lengthscale": 32, "p": 3, "learn_lengthscale": True},
    "student_t": {"name": "student_t", "lengthscale": 32, "dof": 3, "learn_lengthscale": True, "learn_dof": True},
    "cosine": {"name": "cosine", "temperature": 0.1, "learn_temperature": True},
    "linear": {"name": "linear", "init_std": 0.1},
    "dynamics": {"name": "dynamics", "lengthscale": 32, "learn_lengthscale": True},
    "mlp": {"name": "mlp", "hidden": 8, "layers": 2},
}
# Parameters are created in float32 (the default dtype) and then cast, so log θ carries float32 rounding.
RTOL = 1e-6
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def make(key, dtype=torch.float64, device="cpu", dim=DIM) -> Prior:
    torch.manual_seed(0)
    return build_prior(CONFIGS[key], dim, SCALE).to(device=device, dtype=dtype)


def batch(rows=3, seed=0):
    return np.random.default_rng(seed).uniform(0.05, 0.95, size=(rows, DIM))


def t64(a):
    return torch.tensor(a, dtype=torch.float64)


def logits(prior, z, z2):
    with torch.no_grad():
        return prior(t64(z), t64(z2)).numpy()


# ---- values against hand computations (NumPy, pair by pair) ------------------------------------------------

def test_gaussian_matches_hand_computation():
    prior, z, z2 = make("gaussian"), batch(), batch(seed=1)
    theta = DIAMETER / SCALE
    want = np.array([[-np.sum((z[i] - z2[j]) ** 2) / (2 * theta**2) for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(logits(prior, z, z2), want, rtol=RTOL)
    assert prior.summary() == pytest.approx({"lengthscale_px": 32.0})


@pytest.mark.parametrize("per", ["slot", "dim"])
def test_gaussian_slots_matches_hand_computation(per):
    prior = build_prior({**CONFIGS["gaussian_slots"], "per": per}, DIM, SCALE).double()
    theta = np.array([0.1, 0.2, 0.3]) if per == "slot" else np.array([0.1, 0.15, 0.2, 0.25, 0.3, 0.35])
    with torch.no_grad():
        prior.log_lengthscale.copy_(t64(np.log(theta)))
    z, z2 = batch(), batch(seed=1)
    want = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            for d in range(DIM):
                th = theta[d // 2] if per == "slot" else theta[d]
                want[i, j] -= (z[i, d] - z2[j, d]) ** 2 / (2 * th**2)
    np.testing.assert_allclose(logits(prior, z, z2), want, rtol=1e-12)
    summary = prior.summary()
    assert summary["lengthscale_px_0"] == pytest.approx(0.1 * SCALE)
    assert summary["lengthscale_px_mean"] == pytest.approx(theta.mean() * SCALE)


@pytest.mark.parametrize("per", ["slot", "dim"])
def test_gaussian_slots_with_equal_lengthscales_is_gaussian(per):
    slots = build_prior({**CONFIGS["gaussian_slots"], "lengthscale": 20, "per": per}, DIM, SCALE).double()
    plain = build_prior({**CONFIGS["gaussian"], "lengthscale": 20}, DIM, SCALE).double()
    z, z2 = batch(4), batch(5, seed=1)
    np.testing.assert_allclose(logits(slots, z, z2), logits(plain, z, z2), rtol=RTOL)


@pytest.mark.parametrize("p", [1, 3])
def test_laplace_matches_hand_computation(p):
    prior, z, z2 = make("laplace" if p == 1 else "laplace_p3"), batch(), batch(seed=1)
    theta = DIAMETER / SCALE
    want = np.array([[-np.sum(np.abs(z[i] - z2[j]) ** p) ** (1 / p) / theta for j in range(3)] for i in range(3)])
    # The smoothing δ = 1e-12 moves each |d| by at most ~1e-6 latent units.
    np.testing.assert_allclose(logits(prior, z, z2), want, rtol=1e-6, atol=1e-4)


def test_student_t_matches_hand_computation():
    prior, z, z2 = make("student_t"), batch(), batch(seed=1)
    theta, nu = DIAMETER / SCALE, 3.0
    want = np.array([[-(nu + DIM) / 2 * np.log(1 + np.sum((z[i] - z2[j]) ** 2) / (nu * theta**2))
                      for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(logits(prior, z, z2), want, rtol=RTOL)
    assert prior.summary() == pytest.approx({"lengthscale_px": 32.0, "dof": 3.0})


def test_cosine_matches_hand_computation():
    prior, z, z2 = make("cosine"), batch(), batch(seed=1)
    want = np.array([[z[i] @ z2[j] / (np.linalg.norm(z[i]) * np.linalg.norm(z2[j]) * 0.1) for j in range(3)]
                     for i in range(3)])
    np.testing.assert_allclose(logits(prior, z, z2), want, rtol=RTOL)
    assert prior.summary() == pytest.approx({"temperature": 0.1})


def test_linear_matches_hand_computation():
    prior, z, z2 = make("linear"), batch(), batch(seed=1)
    w = prior.weight.detach().numpy()
    want = np.array([[sum(z[i, a] * w[a, b] * z2[j, b] for a in range(DIM) for b in range(DIM)) for j in range(3)]
                     for i in range(3)])
    np.testing.assert_allclose(logits(prior, z, z2), want, rtol=1e-12)
    assert prior.summary()["weight_norm"] == pytest.approx(np.linalg.norm(w))


def test_dynamics_matches_hand_computation():
    prior, z, z2 = make("dynamics"), batch(), batch(seed=1)
    rng = np.random.default_rng(2)
    a, b = np.eye(DIM) + 0.1 * rng.standard_normal((DIM, DIM)), 0.05 * rng.standard_normal(DIM)
    with torch.no_grad():
        prior.transition.copy_(t64(a))
        prior.offset.copy_(t64(b))
    theta = DIAMETER / SCALE
    want = np.array([[-np.sum((z2[j] - (a @ z[i] + b)) ** 2) / (2 * theta**2) for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(logits(prior, z, z2), want, rtol=RTOL)
    summary = prior.summary()
    assert summary["transition_dev"] == pytest.approx(np.linalg.norm(a - np.eye(DIM)))
    assert summary["offset_px"] == pytest.approx(np.linalg.norm(b) * SCALE)


def test_dynamics_starts_as_gaussian():
    z, z2 = batch(), batch(seed=1)
    np.testing.assert_allclose(logits(make("dynamics"), z, z2), logits(make("gaussian"), z, z2), rtol=1e-12)


def test_mlp_matches_hand_computation():
    prior, z, z2 = make("mlp"), batch(), batch(seed=1)
    layers = [m for m in prior.net if isinstance(m, torch.nn.Linear)]
    weights = [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in layers]
    assert len(weights) == 3 and weights[0][0].shape == (8, 2 * DIM)

    def g(x):
        for k, (w, b) in enumerate(weights):
            x = w @ x + b
            if k < len(weights) - 1:
                x = x / (1 + np.exp(-x))  # SiLU
        return x[0]

    want = np.array([[g(np.concatenate([z[i], z2[j]])) for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(logits(prior, z, z2), want, rtol=1e-10)


# ---- shapes, dtypes, devices, gradients --------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("key", CONFIGS)
def test_rectangular_batches_on_every_device_and_dtype(key, dtype, device):
    prior = make(key, dtype, device)
    z = torch.rand(3, DIM, dtype=dtype, device=device)
    out = prior(z, torch.rand(5, DIM, dtype=dtype, device=device))
    assert out.shape == (3, 5) and out.dtype == dtype and out.device.type == device
    assert torch.isfinite(out).all()
    summary = prior.summary()
    assert summary and all(isinstance(v, float) and math.isfinite(v) for v in summary.values())


def extreme_pairs(dtype):
    z = torch.rand(3, DIM, dtype=dtype)
    return {
        "equal": (z, z.clone()),
        "far": (z * 1e3, torch.rand(3, DIM, dtype=dtype) * 1e3 + 1e3),
        "zero": (torch.zeros(3, DIM, dtype=dtype), torch.zeros(3, DIM, dtype=dtype)),
        "one_zero": (torch.zeros(3, DIM, dtype=dtype), z),
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("key", CONFIGS)
def test_gradients_finite_at_extremes(key, dtype):
    prior = make(key, dtype)
    for case, (z, z2) in extreme_pairs(dtype).items():
        prior.zero_grad()
        z, z2 = z.clone().requires_grad_(), z2.clone().requires_grad_()
        log_f = prior(z, z2)
        assert torch.isfinite(log_f).all(), case
        (info_nce(log_f) + log_f.mean()).backward()
        grads = {"z": z.grad, "z_next": z2.grad, **{n: p.grad for n, p in prior.named_parameters()}}
        for name, grad in grads.items():
            assert grad is not None and torch.isfinite(grad).all(), (case, name)


@pytest.mark.parametrize("key", CONFIGS)
def test_adam_steps_lower_the_info_nce_loss(key):
    torch.manual_seed(1)
    z = torch.rand(32, DIM)
    z2 = z + 0.01 * torch.randn_like(z)
    prior = make(key, torch.float32)
    opt = torch.optim.Adam(prior.parameters(), lr=0.05)
    before = info_nce(prior(z, z2)).item()
    for _ in range(20):
        opt.zero_grad()
        info_nce(prior(z, z2)).backward()
        opt.step()
    assert info_nce(prior(z, z2)).item() < 0.9 * before


# ---- configs: YAMLs, old configs, validation ---------------------------------------------------------------

def load_yaml(name):
    yaml = OmegaConf.load(CONFIG_DIR / f"{name}.yaml")
    return OmegaConf.merge({"data": {"prior_lengthscale": DIAMETER}}, {"prior": yaml}).prior


def test_every_prior_has_a_yaml():
    assert sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_yaml_builds_and_names_every_hyper_parameter(name):
    cfg = load_yaml(name)
    assert cfg.name == name and cfg._target_.startswith("rpm_cli.models.priors.")
    prior = build_prior(cfg, DIM, SCALE)
    assert type(prior).name == name
    params = set(list(inspect.signature(type(prior).__init__).parameters)[3:])  # after self, dim, scale
    assert set(cfg) - {"_target_", "name"} == params  # every hyper-parameter is visible in the config
    if "lengthscale" in cfg:
        assert prior.summary()[next(k for k in prior.summary() if k.startswith("lengthscale_px"))] == \
            pytest.approx(DIAMETER)


def test_a_gaussian_checkpoint_with_critic_weights_loads_as_prior():
    old = {"name": "gaussian", "lengthscale": 32, "learn_lengthscale": False}
    model = torch.nn.Module()
    model.prior = build_prior(OmegaConf.create(old), DIM, SCALE)
    assert isinstance(model.prior, GaussianPrior) and not model.prior.log_lengthscale.requires_grad
    model.load_state_dict(upgrade_state({"model": {"critic.log_lengthscale": torch.tensor(math.log(0.2))}})["model"])
    assert model.prior.summary()["lengthscale_px"] == pytest.approx(0.2 * SCALE)


def test_a_linear_checkpoint_with_critic_weights_loads_as_prior():
    model = torch.nn.Module()
    model.prior = build_prior({"name": "linear", "init_std": 0.1}, DIM, SCALE)
    assert isinstance(model.prior, LinearPrior)
    weight = torch.randn(DIM, DIM)
    model.load_state_dict(upgrade_state({"model": {"critic.weight": weight}})["model"])
    assert torch.equal(model.prior.weight, weight)


def test_target_and_name_configs_build_the_same_class():
    for name in NAMES:
        old = {k: v for k, v in OmegaConf.to_container(load_yaml(name), resolve=True).items() if k != "_target_"}
        assert type(build_prior(old, DIM, SCALE)) is type(build_prior(load_yaml(name), DIM, SCALE))


def test_direct_construction_converts_pixels():
    assert GaussianPrior(DIM, SCALE, lengthscale=64).log_lengthscale.item() == pytest.approx(math.log(0.25))
    for cls in (GaussianSlotsPrior, LaplacePrior, StudentTPrior, DynamicsPrior):
        assert cls(DIM, SCALE, lengthscale=64).summary()[
            "lengthscale_px_mean" if cls is GaussianSlotsPrior else "lengthscale_px"] == pytest.approx(64)
    assert CosinePrior(DIM, SCALE).summary() == pytest.approx({"temperature": 0.1})
    assert MLPPrior(DIM, SCALE, hidden=4, layers=1)(torch.rand(2, DIM), torch.rand(3, DIM)).shape == (2, 3)


NAN, INF = float("nan"), float("inf")
BAD = [  # (prior, key, bad value)
    *[("gaussian", "lengthscale", v) for v in (-1, 0, NAN, INF, -INF, "32", True, None)],
    *[("gaussian", "learn_lengthscale", v) for v in ("true", 1, 0, None)],
    *[("gaussian_slots", "per", v) for v in ("ball", "", 1, None)],
    ("gaussian_slots", "lengthscale", 0), ("gaussian_slots", "learn_lengthscale", "yes"),
    *[("laplace", "p", v) for v in (0.5, 0, -1, NAN, INF, "1")],
    ("laplace", "lengthscale", -3), ("laplace", "learn_lengthscale", 1),
    *[("student_t", "dof", v) for v in (0, -1, NAN, INF, False)],
    ("student_t", "lengthscale", INF), ("student_t", "learn_dof", "no"),
    *[("cosine", "temperature", v) for v in (0, -0.1, NAN, INF, "0.1")],
    ("cosine", "learn_temperature", 0),
    *[("linear", "init_std", v) for v in (-0.1, NAN, INF, "0.1", True)],
    *[("dynamics", "lengthscale", v) for v in (0, NAN)], ("dynamics", "learn_lengthscale", "false"),
    *[("mlp", "hidden", v) for v in (0, -4, 2.5, True, "32", NAN)],
    *[("mlp", "layers", v) for v in (0, -1, 1.0, None)],
    *[(name, "foo", 1) for name in NAMES],            # unknown key
    ("gaussian", "dim", 4), ("gaussian", "_partial_", True),
]


def assert_one_line_error(cfg, key, dim=DIM):
    with pytest.raises(UserError) as info:
        build_prior(cfg, dim, SCALE)
    message = str(info.value)
    assert "\n" not in message and f"prior.{key}" in message, message
    return message


@pytest.mark.parametrize("name,key,value", BAD, ids=[f"{n}-{k}-{v!r}" for n, k, v in BAD])
def test_bad_hyper_parameter_is_one_line_user_error(name, key, value):
    assert_one_line_error({**OmegaConf.to_container(load_yaml(name), resolve=True), key: value}, key)


def test_unknown_key_lists_allowed_keys():
    message = assert_one_line_error({**CONFIGS["gaussian"], "foo": 1}, "foo")
    assert message == "prior.foo is not a parameter of GaussianPrior (allowed: lengthscale, learn_lengthscale)"


def test_odd_dim_needs_per_dim():
    assert_one_line_error(CONFIGS["gaussian_slots"], "per", dim=5)
    assert build_prior({**CONFIGS["gaussian_slots"], "per": "dim"}, 5, SCALE).log_lengthscale.shape == (5,)


@pytest.mark.parametrize("target", ["rpm_cli.models.priors.NoSuchPrior", "no_such_module.Prior", "gaussian",
                                    "torch.nn.Linear", "os.system", "rpm_cli.models.priors.build_prior",
                                    "rpm_cli.models.priors.Prior", "", 3, None])
def test_bad_target_is_one_line_user_error(target):
    assert_one_line_error({"_target_": target, "lengthscale": 32}, "_target_")


def test_missing_and_unresolvable_keys():
    assert_one_line_error({"name": "gaussian"}, "lengthscale")
    assert_one_line_error({"name": "no_such_prior"}, "name")
    cfg = OmegaConf.create({"prior": {"_target_": "rpm_cli.models.priors.GaussianPrior", "lengthscale": "${data.x}"}})
    assert_one_line_error(cfg.prior, "lengthscale")
