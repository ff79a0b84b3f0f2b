"""Learning θ by maximising I_N on minibatches (torch, Adam on log θ), and E[I_N(θ)] on fixed batches."""
import math

import numpy as np

from rpm_cli.theory import montecarlo
from rpm_cli.theory.critics import GaussianCritic
from rpm_cli.theory.linalg import golden_section_max
from rpm_cli.theory.montecarlo import _batched_log_f, sample_pairs


def learn_theta(model, batch_size: int, steps: int, lr: float, theta_init: float, seeds,
                average_last: float = 0.5) -> list[dict]:
    """Maximise I_N (N = batch_size - 1, Eq. 6) over the Gaussian critic's log θ with Adam on fresh minibatches,
    one independent run per seed, with the training loss of `rpm_cli.objectives.info_nce`. The runs are one
    vector of log θ (Adam acts per coordinate and each coordinate's loss sees only its own minibatch). The step
    size decays as lr / sqrt(1 + t/100) so the Polyak average over the last `average_last` of the steps settles.
    Returns per seed the trajectory and the averaged θ."""
    import torch

    from rpm_cli.objectives import info_nce

    threads = torch.get_num_threads()
    torch.set_num_threads(1)                            # tiny tensors: threads only add overhead
    try:
        rngs = [np.random.default_rng(s) for s in seeds]
        log_theta = torch.full((len(seeds),), math.log(theta_init), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([log_theta], lr=lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / math.sqrt(1.0 + t / 100.0))
        traj = np.zeros((steps, len(seeds)))
        for t in range(steps):
            pairs = [sample_pairs(model, batch_size, r) for r in rngs]
            z = torch.from_numpy(np.stack([p[0] for p in pairs]))
            zp = torch.from_numpy(np.stack([p[1] for p in pairs]))
            log_f = -0.5 * torch.cdist(z, zp).pow(2) / torch.exp(2 * log_theta)[:, None, None]
            loss = sum(info_nce(log_f[k]) for k in range(len(seeds)))      # each = log N - I_N on its batch
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            traj[t] = log_theta.detach().numpy()
    finally:
        torch.set_num_threads(threads)
    start = int(steps * (1 - average_last))
    return [{"seed": int(s), "theta": math.exp(float(traj[start:, k].mean())),
             "theta_final": math.exp(float(traj[-1, k])), "log_theta_trajectory": traj[:, k].tolist()}
            for k, s in enumerate(seeds)]


class FiniteNObjective:
    """E[I_N(θ)] for the Gaussian critic on one fixed set of batches (common random numbers): a smooth,
    deterministic function of θ whose maximiser estimates argmax_θ E[I_N(θ)], what minibatch training targets."""

    def __init__(self, model, N: int, batches: int, rng):
        B = montecarlo.pairs_per_batch(N)
        z, zp = sample_pairs(model, batches * B, rng)
        self.d2 = -2.0 * _batched_log_f(GaussianCritic(1.0), z.reshape(batches, B, -1), zp.reshape(batches, B, -1))
        self.N = N

    def per_batch(self, theta: float) -> np.ndarray:
        lf = self.d2 * (-0.5 / theta ** 2)
        return np.mean(montecarlo.info_nce_rows(lf, np.diagonal(lf, axis1=1, axis2=2), self.N), axis=1)

    def __call__(self, theta: float) -> float:
        return float(np.mean(self.per_batch(theta)))

    def argmax(self, lo: float, hi: float, iters: int = 30) -> dict:
        """Golden-section search on log θ in [lo, hi]; the SE of the maximiser by the delta method,
        SE(θ̂) = SE(mean_b g_b'(θ̂)) / |g''(θ̂)|, derivatives by central differences in log θ."""
        u = golden_section_max(lambda v: self(math.exp(v)), math.log(lo), math.log(hi), iters)
        h = 0.02
        gm, g0, gp = (self.per_batch(math.exp(u + k * h)) for k in (-1, 0, 1))
        d1 = (gp - gm) / (2 * h)
        d2 = float(np.mean(gp - 2 * g0 + gm)) / h ** 2
        se_u = float(d1.std(ddof=1) / math.sqrt(d1.size)) / abs(d2)
        return {"theta": math.exp(u), "se": math.exp(u) * se_u}
