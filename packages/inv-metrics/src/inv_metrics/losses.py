"""The losses the inversion families train with, written once.

pSp/e4e/ReStyle/HyperInverter style: ``l2`` (pixel MSE), LPIPS or the small-domain perceptual distance through
``perceptual`` / :class:`PerceptualLoss`, the identity loss :class:`IDLoss`, the latent-norm regulariser
``w_norm`` and e4e's ``delta_regularizer``. All return scalar tensors averaged over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def l2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every element (``nn.MSELoss()``, as pSp)."""
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    return F.mse_loss(x, y)


def perceptual(distance: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Batch mean of a per-image distance from :func:`inv_metrics.load_distance` (LPIPS, fmnist perceptual)."""
    return distance(x, y).mean()


class PerceptualLoss(nn.Module):
    """``PerceptualLoss(load_distance('lpips-alex'))(y_hat, y)``: a frozen distance as a batch-mean loss."""

    def __init__(self, distance: nn.Module):
        super().__init__()
        self.distance = distance.eval().requires_grad_(False)
        self.name = getattr(distance, "name", type(distance).__name__)

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return perceptual(self.distance, y_hat, y)


class IDLoss(nn.Module):
    """pSp's identity loss: mean over the batch of 1 - <f(y_hat), f(y)> for a unit-norm face embedder ``f``
    (e.g. ``load_id_network('arcface-ir-se50')``, which applies pSp's crop and pooling)."""

    def __init__(self, embedder: nn.Module):
        super().__init__()
        self.embedder = embedder.eval().requires_grad_(False)

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # the target's embedding is a constant, as in pSp
            target = self.embedder(y)
        return (1 - (self.embedder(y_hat) * target).sum(dim=1)).mean()


def _check_w_plus(w_plus: torch.Tensor) -> None:
    if w_plus.ndim != 3:
        raise ValueError(f"latents must be w+ codes [N, num_ws, w_dim], got shape {tuple(w_plus.shape)}")


def w_norm(w_plus: torch.Tensor, w_avg: torch.Tensor | None = None) -> torch.Tensor:
    """pSp's latent-norm regulariser: batch mean of ||w+ - w_avg|| (Frobenius over layers and channels).

    ``w_avg`` [w_dim] or [num_ws, w_dim]; without it the norm of the codes themselves (pSp without
    ``start_from_latent_avg``)."""
    _check_w_plus(w_plus)
    if w_avg is not None:
        w_plus = w_plus - w_avg
    return w_plus.norm(p=2, dim=(1, 2)).mean()


def delta_regularizer(w_plus: torch.Tensor, num_deltas: int | None = None) -> torch.Tensor:
    """e4e's delta regulariser: sum over the layers i = 1..num_deltas of mean_batch ||w_i - w_0||.

    ``num_deltas`` follows e4e's progressive stage (how many deltas are active); default: all of them."""
    _check_w_plus(w_plus)
    num_deltas = w_plus.shape[1] - 1 if num_deltas is None else num_deltas
    if not 0 <= num_deltas < w_plus.shape[1]:
        raise ValueError(f"num_deltas must be in [0, {w_plus.shape[1] - 1}], got {num_deltas}")
    deltas = w_plus[:, 1:num_deltas + 1] - w_plus[:, :1]
    return deltas.norm(p=2, dim=2).mean(dim=0).sum()
