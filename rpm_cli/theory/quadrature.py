"""Gauss-Hermite quadrature for the 1-D model (dx = dz = 1): an independent value of I_N at N = 1 and N = 2
(Eq. 6), and of MI and I_∞, to pin the Monte Carlo I_N and catch column or log N off-by-ones.

I_N = E[log f(z, z'₊) - log(f(z, z'₊) + Σ_{j≤N} f(z, z'_j))] + log N over R(z, z'₊) Π_j R(z'_j): a
(2 + N)-dimensional Gaussian integral of a smooth function, done on a tensor grid of Gauss-Hermite nodes in the
standard normal draws (x, ξ, η, η'₊ and one (x'_j, η'_j) pair per negative, each negative z'_j = a'x'_j + εη'_j
collapsed to one standard normal since it is a sum of independent Gaussians)."""
import math

import numpy as np

from rpm_cli.theory.linalg import logsumexp


def hermite_normal(order: int):
    """Nodes and weights for E[g(u)], u ~ N(0, 1)."""
    t, w = np.polynomial.hermite_e.hermegauss(order)
    return t, w / math.sqrt(2 * math.pi)


def i_n_quadrature(rho: float, eps: float, a: float, ap: float, log_f, N: int, order: int) -> float:
    """I_N on the 1-D model z = a x + ε η, z' = a' x' + ε η' (x' = ρx + sqrt(1-ρ²)ξ) for a critic log_f(z, z')
    (vectorised), N ∈ {1, 2}: the positive pair needs (x, ξ, η, η') but z' depends on them only through
    a'(ρx + sqrt(1-ρ²)ξ) + εη' = a'ρ x + s v, s² = a'²(1-ρ²) + ε²; z = a x + ε η. So the positive pair is
    3 standard normals (x, η, v) and each negative z'_j ~ N(0, a'² + ε²) one more."""
    t, w = hermite_normal(order)
    s = math.sqrt(ap ** 2 * (1 - rho ** 2) + eps ** 2)
    sn = math.sqrt(ap ** 2 + eps ** 2)
    grids = np.meshgrid(*([t] * (3 + N)), indexing="ij", sparse=True)
    weights = np.meshgrid(*([w] * (3 + N)), indexing="ij", sparse=True)
    x, eta, v = grids[:3]
    z = a * x + eps * eta
    zp = ap * rho * x + s * v
    terms = [log_f(z, zp)] + [log_f(z, sn * u) for u in grids[3:]]
    pos = terms[0]
    lse = logsumexp(np.stack(np.broadcast_arrays(*terms)), axis=0)
    weight = math.prod(weights[k] for k in range(len(weights)))
    return float(np.sum(weight * (pos - lse))) + math.log(N)


def i_n_quadrature_converged(rho, eps, a, ap, log_f, N: int, orders=(24, 32)) -> dict:
    """I_N at two quadrature orders; the change between them is reported as the quadrature's error."""
    lo, hi = (i_n_quadrature(rho, eps, a, ap, log_f, N, k) for k in orders)
    return {"value": hi, "error": abs(hi - lo), "orders": list(orders)}
