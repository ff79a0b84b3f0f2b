"""The reference training step: the paper's encoder and Gaussian InfoNCE written the obvious way, float32
frames. The equivalence test checks rpm's step against it; scripts/bench.py times it."""
import torch
from torch import nn


class PlainEagerStep:
    """The reference: the paper's encoder and Gaussian InfoNCE written the obvious way, float32 frames."""

    def __init__(self, lengthscale=32 / 256, lr=0.005):
        self.net = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
            nn.Conv2d(6, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.Sigmoid())
        self.log_lengthscale = nn.Parameter(torch.tensor(lengthscale).log())
        self.optimizer = torch.optim.SGD([*self.net.parameters(), self.log_lengthscale], lr=lr)

    def loss(self, frames):  # frames: float32 in [0, 1], (2B, 3, H, W)
        maps = self.net(frames)
        h, w = maps.shape[-2:]
        px = (torch.arange(w) + 0.5) / w
        py = (torch.arange(h) + 0.5) / h
        mass = maps.sum(dim=(2, 3))
        x = (maps.sum(dim=2) * px).sum(-1) / mass
        y = (maps.sum(dim=3) * py).sum(-1) / mass
        z = torch.stack([x, y], -1).flatten(1)
        base, nxt = z.chunk(2)
        log_f = -((base[:, None] - nxt[None]) ** 2).sum(-1) / (2 * self.log_lengthscale.exp() ** 2)
        return nn.functional.cross_entropy(log_f, torch.arange(len(base)))

    def step(self, frames):
        loss = self.loss(frames)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss
