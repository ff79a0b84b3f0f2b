"""InfoNCE from a matrix of log f_θ values, and the finite-N estimator I_N of Eq. 6 (Sec. 3.2, 4.5).

Convention, used everywhere in rpm (training metric, `rpm evaluate`, `rpm theory`): Eq. 6 as the paper
writes it. Each anchor z_i is scored against its positive z'_i and N negatives; in a batch of B pairs the
negatives are the other B - 1 next frames, so N = B - 1 and

    I_N = E[log f(z_i, z'_i) - log Σ_j f(z_i, z'_j)] + log N   (the sum runs over all B columns)

which is at most log N, and tends to I_∞ (Eq. 24) as N grows.
"""
import math

import torch
import torch.nn.functional as F


def info_nce(log_f: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of picking the true next frame among the batch (App. D).

    log_f[i, j] = log f_θ(z_i, z'_j); row i's positive is column i, the other columns (the second frames of
    the other pairs) are its negatives. With `reduction="mean"` this is log N - I_N (Eq. 6) on the batch;
    "sum" scales it by B.
    """
    targets = torch.arange(log_f.shape[0], device=log_f.device)
    return F.cross_entropy(log_f, targets, reduction=reduction)


def negatives(batch_size: int) -> int:
    """N of Eq. 6 for a batch of B pairs: every other pair's next frame."""
    return batch_size - 1


def info_nce_estimate(mean_loss: float, batch_size: int) -> float:
    """I_N (Eq. 6) from the mean InfoNCE cross-entropy of batches of B pairs: log(B - 1) - loss."""
    return math.log(negatives(batch_size)) - mean_loss


def info_nce_estimate_full(log_f: torch.Tensor) -> float:
    """I_N (Eq. 6) of one square matrix of log f values, every row an anchor: N = rows - 1."""
    return info_nce_estimate(float(info_nce(log_f.double())), log_f.shape[0])
