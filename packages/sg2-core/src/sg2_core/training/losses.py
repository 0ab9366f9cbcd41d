"""StyleGAN2's losses and regularisers: non-saturating logistic loss, R1, path length, lazy intervals.

Formulas follow the StyleGAN2 paper and NVIDIA's ``training/loss.py`` (tested against values computed
with it): the penalties are returned per sample, before their weights (``gamma / 2``, ``pl_weight``),
so the training loop decides how to weight and scale them for lazy regularisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator: ``softplus(D(fake)) + softplus(-D(real))``, averaged."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator: ``softplus(-D(G(z)))``, averaged."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_images: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """Per-sample ``||dD(x)/dx||²`` on reals (``real_images`` must require grad); differentiable again."""
    if not real_images.requires_grad:
        raise ValueError("real_images must require grad (call .requires_grad_() before running D on them)")
    (grads,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grads.square().sum(dim=[1, 2, 3])


class PathLengthRegularizer(nn.Module):
    """Path-length regularisation: keeps ``||J_w^T y||`` for random image-space ``y`` near its running mean.

    ``pl_mean`` is an exponential moving average (``decay``) of the observed lengths, started at 0 and
    kept as a buffer so it is saved with checkpoints.
    """

    def __init__(self, decay: float = 0.01):
        super().__init__()
        self.decay = decay
        self.register_buffer("pl_mean", torch.zeros([]))

    @staticmethod
    def lengths(images: torch.Tensor, ws: torch.Tensor, probe: torch.Tensor | None = None) -> torch.Tensor:
        """``sqrt(mean over W+ entries of ||d(sum(images * y))/dw||²)`` per sample, ``y ~ N(0, 1) / sqrt(H W)``."""
        if probe is None:
            probe = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
        (grads,) = torch.autograd.grad((images * probe).sum(), ws, create_graph=True)
        return grads.square().sum(dim=2).mean(dim=1).sqrt()

    def forward(self, images: torch.Tensor, ws: torch.Tensor, probe: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample penalty ``(length - pl_mean)²``; updates ``pl_mean`` first, as the references do."""
        lengths = self.lengths(images, ws, probe)
        with torch.no_grad():
            self.pl_mean.copy_(self.pl_mean.lerp(lengths.mean(), self.decay))
        return (lengths - self.pl_mean).square()


def lazy_optimizer_settings(lr: float, betas: tuple[float, float], interval: int | None) -> dict:
    """Adam settings for a network whose regulariser runs every ``interval`` steps (StyleGAN2, App. C).

    With ``c = interval / (interval + 1)`` the learning rate becomes ``lr * c`` and the betas ``beta ** c``;
    the regulariser's loss is multiplied by ``interval`` where it runs.
    """
    if not interval:
        return {"lr": lr, "betas": betas}
    ratio = interval / (interval + 1)
    return {"lr": lr * ratio, "betas": (betas[0] ** ratio, betas[1] ** ratio)}
