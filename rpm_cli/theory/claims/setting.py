"""What every claim shares: the model, the two critics of the paper and the random streams (keys model.*,
critic.*, seed, plot.*)."""
import math
from dataclasses import dataclass

import numpy as np

from rpm_cli.theory import critics as CR
from rpm_cli.theory import gaussian as G
from rpm_cli.theory.checks import stream
from rpm_cli.domains import BOOLEAN, SEED, integer, list_of, optional
from rpm_cli.theory.keys import number

MAX_DIM = 32

KEYS = {
    "seed": SEED,
    "debug": BOOLEAN,
    "model.rho": number(0, 1, lo_open=True, hi_open=True),
    "model.dx": integer(1, MAX_DIM),
    "model.dz": integer(1, MAX_DIM),
    "model.eps": number(1e-4, 100, lo_open=False),
    "model.encoder_seed": SEED,
    "model.shared_encoder": BOOLEAN,
    "model.encoder_offset": number(0, 100, lo_open=False),
    "model.encoder_scale": number(0, 100),
    "critic.theta": optional(number(0, 1e4)),
    "critic.linear_scale": number(0, 100),
    "plot.theta_range": list_of(number(0, 1e4), 2, 2),
    "plot.theta_points": integer(10, 2000),
}


@dataclass(frozen=True, eq=False)
class Setting:
    cfg: dict
    model: G.LinearGaussianRPM
    gauss: G.GaussianCritic      # Eq. 27, θ from the config or the maximiser of I_∞(θ)
    linear: G.LinearCritic       # Eq. 8, W = linear_scale · W*
    theta_star: float

    def rng(self, name: str) -> np.random.Generator:
        return stream(self.cfg["seed"], name)

    def gauss_at(self, theta) -> G.GaussianCritic:
        """The Gaussian critic at lengthscale theta (None: the configured critic's θ)."""
        return self.gauss if theta is None else G.GaussianCritic(float(theta))

    @property
    def shared(self) -> bool:
        return self.cfg["model"]["shared_encoder"]


def build(c: dict) -> Setting:
    m = c["model"]
    A, Ap = G.make_encoders(m["dx"], m["dz"], m["encoder_seed"], m["shared_encoder"], m["encoder_scale"],
                            m["encoder_offset"])
    model = G.LinearGaussianRPM(float(m["rho"]), float(m["eps"]), A, Ap)
    theta_star = G.argmax_theta(model)
    theta = c["critic"]["theta"]
    gauss = G.GaussianCritic(float(theta) if theta is not None else theta_star)
    linear = G.LinearCritic(float(c["critic"]["linear_scale"]) * CR.optimal_linear_W(model))
    return Setting(c, model, gauss, linear, theta_star)


def describe(s: Setting) -> dict:
    """The model and critics as numbers, for theory.json."""
    m = s.model
    return {"rho": m.rho, "eps": m.eps, "eps_is": "standard deviation (the paper's Eq. 46 ε is the variance ε²)",
            "dx": m.dx, "dz": m.dz, "A": m.A, "Ap": m.Ap, "shared_encoder": s.shared,
            "encoder_seed": s.cfg["model"]["encoder_seed"], "cov_joint": m.cov_joint,
            "theta": s.gauss.theta, "theta_star": s.theta_star, "theta_is_argmax": s.cfg["critic"]["theta"] is None,
            "W": s.linear.W, "W_asymmetry": float(np.linalg.norm(s.linear.W - s.linear.W.T)
                                                   / max(np.linalg.norm(s.linear.W), 1e-300))}


def fmt(x, p=4) -> str:
    return f"{x:.{p}g}" if math.isfinite(x) else str(x)
