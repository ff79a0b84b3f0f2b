"""The f_θ interface every prior implements, plus the checks their constructors share (rpm's one validation
vocabulary, rpm_cli/domains.py, with keys named `prior.<key>`).

A prior scores every (z_i, z'_j) pair of a batch: `log_f(z, z_next)` returns the (B, B') matrix of
log f_θ(z_i, z'_j) that InfoNCE (Eq. 6) takes, row i's positive being column i. Latents z are centres of
mass in units of the image size; hyper-parameters arrive in pixels and `scale` (the image size in pixels)
converts them, so configs stay readable and do not change when the image size does.
"""
import abc
import math

import torch
from torch import nn

from rpm_cli.domains import BOOLEAN, Domain, integer, number, require
from rpm_cli.domains import one_of as domain_one_of
from rpm_cli.errors import UserError


def _checked(key: str, value, domain: Domain):
    """One-line UserError naming the config key, so a bad hyper-parameter never surfaces as a traceback."""
    return require(f"prior.{key}", value, domain)


def positive(key: str, value) -> float:
    return float(_checked(key, value, number(0, lo_open=True)))


def non_negative(key: str, value) -> float:
    return float(_checked(key, value, number(0)))


def at_least(key: str, value, low: float) -> float:
    return float(_checked(key, value, number(low)))


def count(key: str, value, low: int = 1, high: int | None = None) -> int:
    return int(_checked(key, value, integer(low, high)))


def flag(key: str, value) -> bool:
    return _checked(key, value, BOOLEAN)


def one_of(key: str, value, options: tuple) -> str:
    return _checked(key, value, domain_one_of(*options))


def log_length(key: str, pixels, scale: float) -> float:
    """log(θ / scale): a length given in pixels, as the log of latent units (the ratio is finite for finite
    positive pixels and a scale >= 16, and is what runs before the prior family computed)."""
    ratio = positive(key, pixels) / scale
    if not 0 < ratio < math.inf:  # a subnormal length underflows
        raise UserError(f"prior.{key} must be a length in pixels between 1e-300 and 1e300 (got {pixels!r})")
    return math.log(ratio)


def log_parameter(value: float, learn: bool) -> nn.Parameter:
    """A positive quantity stored as its log so gradient steps cannot make it <= 0; `learn=False` freezes it."""
    return nn.Parameter(torch.tensor(value), requires_grad=learn)


def pairwise_diff(z: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
    """(B, B', dim) of z'_j - z_i. Explicit differences rather than ‖a‖² + ‖b‖² - 2ab: exact at z = z'
    (no cancellation, so no negative squared distances) and dim is tiny, so the memory does not matter."""
    return z_next[None, :, :] - z[:, None, :]


class Prior(nn.Module, abc.ABC):
    """f_θ of Eq. 21 / Sec. 3.2: log f_θ(z, z') for every pair of a batch of anchors and next frames."""

    #: The config's `name`, used to map old configs (no `_target_`) to the class.
    name: str = ""

    def __init__(self, dim: int, scale: float):
        super().__init__()
        self.dim = count("dim", dim)
        self.scale = positive("scale", scale)

    @abc.abstractmethod
    def log_f(self, z: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
        """(B, dim), (B', dim) -> (B, B') matrix of log f_θ(z_i, z'_j)."""

    def forward(self, z: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
        # A method, not `forward = log_f`: the alias would bind this abstract log_f, not the subclass's.
        return self.log_f(z, z_next)

    @abc.abstractmethod
    def summary(self) -> dict[str, float]:
        """Learned parameters in readable units (pixels for lengths), for logs and metrics."""


class ClosedFormZ(Prior):
    """A prior whose average under a Gaussian has a closed form, so objective=rpm can train it."""

    @abc.abstractmethod
    def log_expected_f(self, z: torch.Tensor, mean_next: torch.Tensor, var_next: torch.Tensor) -> torch.Tensor:
        """(B, dim), (B', dim), (dim,) -> (B, B') of log E_{z' ~ N(mean_next_j, diag var_next)} f_θ(z_i, z'):
        the terms of Z(z) (Eq. 22) under a Gaussian encoder."""


class GaussianTransition(ClosedFormZ):
    """f_θ a Gaussian in z' around an affine map of z, so R R f_θ is Gaussian in (z, z') (posterior=analytic)."""

    @abc.abstractmethod
    def gaussian_form(self) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        """(M, c, p) with log f_θ(z, z') = -½ Σ_d p_d (z' - Mz - c)_d², M = None meaning the identity and
        c = None zero."""

    def log_expected_f(self, z: torch.Tensor, mean_next: torch.Tensor, var_next: torch.Tensor) -> torch.Tensor:
        # Per dimension, E exp(-½p(z' - m)²) = (1 + vp)^(-1/2) exp(-½p(μ - m)² / (1 + vp)): a Gaussian
        # convolution.
        m, c, p = self.gaussian_form()
        predicted = z if m is None else z @ m.T
        predicted = predicted if c is None else predicted + c
        spread = 1 + var_next * p
        return -0.5 * (torch.log(spread) + p * pairwise_diff(predicted, mean_next).pow(2) / spread).sum(-1)
