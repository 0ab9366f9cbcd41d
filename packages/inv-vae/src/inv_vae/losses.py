"""The VAE encoder's prior term: the KL divergence of its per-layer Gaussians from N(0, I)."""

from __future__ import annotations

import torch

__all__ = ["KL_WEIGHT", "kl_divergence"]

KL_WEIGHT = 5e-4  # mmgeneration's KLloss weight (FaceStylor trains with it switched off)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per z, summed over its dimensions and averaged over all ``N * n_styles``
    rows: ``mean(-0.5 * sum_d(1 + logvar - mu^2 - exp(logvar)))``, a scalar."""
    if mu.shape != logvar.shape or mu.ndim < 2:
        raise ValueError(
            f"mu and logvar must have one shape [..., z_dim], got {list(mu.shape)} and {list(logvar.shape)}"
        )
    per_row = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=-1)
    return per_row.mean()
