"""InfoNCE from a matrix of log f_θ values, and its bound (Sec. 3.2, 4.5)."""
import math

import torch
import torch.nn.functional as F


def info_nce(log_f: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of picking the true next frame among the batch (App. D).

    log_f[i, j] = log f_θ(z_i, z'_j); row i's positive is column i, the other columns (the second frames of
    the other pairs) are its negatives. With `reduction="mean"` this is -I_N + log B of Eq. (6) estimated
    on the batch; "sum" scales it by B.
    """
    targets = torch.arange(log_f.shape[0], device=log_f.device)
    return F.cross_entropy(log_f, targets, reduction=reduction)


def info_nce_bound(mean_loss: float, batch_size: int) -> float:
    """log B - loss: the InfoNCE lower bound on the MI, equal to the RPM ELBO up to a constant (Sec. 4.5)."""
    return math.log(batch_size) - mean_loss
