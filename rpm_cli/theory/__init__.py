"""Closed-form linear-Gaussian RPM theory lab (Sec. 3-4, App. A-C of Aitchison & Ganev, TMLR 2024).

Closed forms: `linalg`, `critics`, `gaussian`, `elbo_likelihood_slope` (the general-Q ELBO, the pair likelihood
F(x, x'), the finite-N slope b), `limits`, `posterior` (Eq. 12 with a free Gaussian Q, the exact posterior and
log P(x, x') per data pair). Independent code paths: `montecarlo`, `empirical`, `quadrature`,
`training`. The claims (`claims/`, one module per relation) return checks,
bookkeeping, verdicts, prose and figures; `lab` runs them, `render` writes THEORY.md, `mutations` lists the
bugs the checks must catch.
"""
