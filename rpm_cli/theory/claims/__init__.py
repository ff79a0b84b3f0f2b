"""The lab's claims, one module per numbered relation of the paper, in the order of THEORY.md. Each module
declares KEYS (its config keys' domains) and run(setting) -> ClaimResult."""
from rpm_cli.theory.claims import (deterministic_limit, elbo_decomposition, empirical_marginal, finite_n,
                                   free_posterior, infonce_prior, learned_theta, likelihood_bound, optimal_prior)

CLAIMS = (elbo_decomposition, optimal_prior, infonce_prior, finite_n, learned_theta, deterministic_limit,
          likelihood_bound, empirical_marginal, free_posterior)
